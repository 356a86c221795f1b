//! offpay-store: the issuer's storage. SQLite (one file, zero set-up: the
//! embedded default) and PostgreSQL (production), both implementing
//! [`offpay_issuer::store::Store`] with the same SQL ([`sql`]) and each with
//! its own migrations (`migrations/sqlite`, `migrations/postgres`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cases;
pub mod dump;
mod pool;
pub mod postgres;
pub mod scheme;
pub mod sql;
pub mod sqlite;

use std::path::Path;

use offpay_issuer::store::{Store, StoreError, Tx};

pub use crate::postgres::PostgresStore;
pub use crate::scheme::SchemeDb;
pub use crate::sqlite::SqliteStore;

/// Either backend, chosen at run time.
#[derive(Debug)]
pub enum AnyStore {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

impl Store for AnyStore {
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.begin(),
            AnyStore::Postgres(s) => s.begin(),
        }
    }
    fn begin_read(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.begin_read(),
            AnyStore::Postgres(s) => s.begin_read(),
        }
    }
    fn single_writer(&self) -> bool {
        match self {
            AnyStore::Sqlite(s) => s.single_writer(),
            AnyStore::Postgres(s) => s.single_writer(),
        }
    }
    fn backend(&self) -> &'static str {
        match self {
            AnyStore::Sqlite(s) => s.backend(),
            AnyStore::Postgres(s) => s.backend(),
        }
    }
}

impl AnyStore {
    /// Draw the random part of posting ids from `entropy` (the operating
    /// system's source by default; the simulator passes a seeded one).
    pub fn set_entropy(&mut self, entropy: offpay_protocol::SharedEntropy) {
        match self {
            AnyStore::Sqlite(s) => s.set_entropy(entropy),
            AnyStore::Postgres(s) => s.set_entropy(entropy),
        }
    }

    /// The canonical dump of every table (see [`dump`]): same database
    /// contents, same text.
    pub fn dump(&self) -> Result<String, StoreError> {
        match self {
            AnyStore::Sqlite(s) => s.dump(),
            AnyStore::Postgres(s) => s.dump(),
        }
    }
}

/// Open a `postgres://` (or `postgresql://`) URL, or else a SQLite file path.
pub fn open(url_or_path: &str) -> Result<AnyStore, StoreError> {
    if url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://") {
        open_postgres(url_or_path)
    } else {
        open_sqlite(Path::new(
            url_or_path.strip_prefix("sqlite://").unwrap_or(url_or_path),
        ))
    }
}

/// Open (creating) a SQLite database file.
pub fn open_sqlite(path: &Path) -> Result<AnyStore, StoreError> {
    SqliteStore::open(path).map(AnyStore::Sqlite)
}

/// A private in-memory SQLite database.
pub fn open_sqlite_memory() -> Result<AnyStore, StoreError> {
    SqliteStore::open_memory().map(AnyStore::Sqlite)
}

/// Connect to PostgreSQL (public schema).
pub fn open_postgres(url: &str) -> Result<AnyStore, StoreError> {
    PostgresStore::open(url, None).map(AnyStore::Postgres)
}

/// Connect to PostgreSQL, with every table in `schema`.
pub fn open_postgres_schema(url: &str, schema: &str) -> Result<AnyStore, StoreError> {
    PostgresStore::open(url, Some(schema)).map(AnyStore::Postgres)
}
