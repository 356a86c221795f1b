//! SQLite: the embedded default. One file, WAL, durable commits
//! (`synchronous = FULL`), writers serialized by `BEGIN IMMEDIATE`.

use std::path::Path;

use offpay_issuer::store::{Store, StoreError, Tx};
use offpay_protocol::entropy::{OsEntropy, SharedEntropy};
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, ErrorCode};

use crate::pool::{Pool, Pooled};
use crate::sql::{Conn, Dialect, SqlTx, Value};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../migrations/sqlite/0002_scheme_member.sql"),
    ),
    (3, include_str!("../migrations/sqlite/0003_terminal.sql")),
    (4, include_str!("../migrations/sqlite/0004_rekey.sql")),
    (5, include_str!("../migrations/sqlite/0005_lifecycle.sql")),
    (6, include_str!("../migrations/sqlite/0006_cases.sql")),
    (
        7,
        include_str!("../migrations/sqlite/0007_compact_revocation.sql"),
    ),
    (8, include_str!("../migrations/sqlite/0008_retention.sql")),
];
/// Connections in the pool of a file database.
pub const SQLITE_CONNECTIONS_MAX: usize = 4;
/// How long a writer waits for the lock before the transaction is retried.
pub const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

fn err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                StoreError::Conflict(e.to_string())
            }
            ErrorCode::ConstraintViolation => StoreError::Duplicate(e.to_string()),
            _ => StoreError::Database(e.to_string()),
        },
        _ => StoreError::Database(e.to_string()),
    }
}

/// SQLite page cache per connection, in KiB (a sync touches index pages all over a large database).
pub const SQLITE_CACHE_KIB: u32 = 65_536;

/// Prepared statements kept per connection (the SQL layer emits a bounded
/// number of statement shapes; see `padded_len` in `sql.rs`).
pub const SQLITE_STATEMENT_CACHE_MAX: usize = 512;

/// The SQLite store.
pub struct SqliteStore {
    pool: Pool<Connection>,
    /// SQLite has one writer. Writers queue here, in process, instead of in
    /// SQLite's busy handler, which sleeps (1, 2, 5, 10 ... ms) between retries.
    writer: std::sync::Mutex<()>,
    /// The random part of posting ids.
    entropy: SharedEntropy,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn configure(c: &Connection) -> Result<(), StoreError> {
    c.busy_timeout(std::time::Duration::from_millis(SQLITE_BUSY_TIMEOUT_MS))
        .map_err(err)?;
    c.set_prepared_statement_cache_capacity(SQLITE_STATEMENT_CACHE_MAX);
    c.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{SQLITE_CACHE_KIB}; PRAGMA wal_autocheckpoint = 16384;"
    ))
    .map_err(err)?;
    Ok(())
}

fn migrate(c: &mut Connection, migrations: &[(i64, &str)]) -> Result<(), StoreError> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)")
        .map_err(err)?;
    for (version, sql) in migrations {
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let done: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM schema_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )
            .map_err(err)?;
        if done == 0 {
            tx.execute_batch(sql).map_err(err)?;
            tx.execute("INSERT INTO schema_migrations (version, applied) VALUES (?1, strftime('%s','now'))", [version])
                .map_err(err)?;
        }
        tx.commit().map_err(err)?;
    }
    Ok(())
}

impl SqliteStore {
    /// Draw the random part of posting ids from `entropy` (the operating
    /// system's source by default; the simulator passes a seeded one).
    pub fn set_entropy(&mut self, entropy: SharedEntropy) {
        self.entropy = entropy;
    }

    /// The canonical dump of every table (see [`crate::dump`]), read in one
    /// snapshot.
    pub fn dump(&self) -> Result<String, StoreError> {
        let mut c = self.pool.get()?;
        c.conn().execute_batch("BEGIN DEFERRED").map_err(err)?;
        let mut tx = SqlTx::new(
            SqliteConn {
                c,
                open: true,
                _writer: None,
            },
            self.entropy.clone(),
        );
        tx.dump()
    }

    /// Open (creating and migrating) a database file.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, MIGRATIONS)
    }

    /// Open a database file with these migrations (the scheme's own, for a scheme database).
    pub(crate) fn open_with(
        path: &Path,
        migrations: &[(i64, &str)],
    ) -> Result<SqliteStore, StoreError> {
        let mut first = Connection::open(path).map_err(err)?;
        configure(&first)?;
        migrate(&mut first, migrations)?;
        let path = path.to_path_buf();
        let pool = Pool::new(
            SQLITE_CONNECTIONS_MAX,
            Box::new(move || {
                let c = Connection::open(&path).map_err(err)?;
                configure(&c)?;
                Ok(c)
            }),
        );
        Ok(SqliteStore {
            pool,
            writer: std::sync::Mutex::new(()),
            entropy: OsEntropy::shared(),
        })
    }

    /// A private in-memory database (one connection; for tests and the simulator).
    pub fn open_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::open_memory_with(MIGRATIONS)
    }

    /// A private in-memory database with these migrations.
    pub(crate) fn open_memory_with(migrations: &[(i64, &str)]) -> Result<SqliteStore, StoreError> {
        let mut c = Connection::open_in_memory().map_err(err)?;
        c.execute_batch("PRAGMA foreign_keys = ON;").map_err(err)?;
        migrate(&mut c, migrations)?;
        let cell = std::sync::Mutex::new(Some(c));
        let pool = Pool::new(
            1,
            Box::new(move || {
                cell.lock()
                    .map_err(|_| StoreError::Database("lock poisoned".into()))?
                    .take()
                    .ok_or_else(|| {
                        StoreError::Database(
                            "the in-memory database's only connection was lost".into(),
                        )
                    })
            }),
        );
        Ok(SqliteStore {
            pool,
            writer: std::sync::Mutex::new(()),
            entropy: OsEntropy::shared(),
        })
    }
}

pub(crate) struct SqliteConn<'a> {
    c: Pooled<'a, Connection>,
    open: bool,
    /// Held until the transaction ends (declared after `c`: released after
    /// the connection is back in the pool).
    _writer: Option<std::sync::MutexGuard<'a, ()>>,
}

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
        Value::Null => SqlValue::Null,
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        let sql = sql.replace('$', "?");
        let mut st = self.c.conn().prepare_cached(&sql).map_err(err)?;
        let n = st
            .execute(rusqlite::params_from_iter(params.iter().map(to_sql)))
            .map_err(err)?;
        Ok(n as u64)
    }
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let sql = sql.replace('$', "?");
        let mut st = self.c.conn().prepare_cached(&sql).map_err(err)?;
        let cols = st.column_count();
        let mut rows = st
            .query(rusqlite::params_from_iter(params.iter().map(to_sql)))
            .map_err(err)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next().map_err(err)? {
            let mut row = Vec::with_capacity(cols);
            for k in 0..cols {
                row.push(match r.get_ref(k).map_err(err)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Int(i),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
                    ValueRef::Real(_) => return Err(StoreError::Corrupt("unexpected REAL".into())),
                });
            }
            out.push(row);
        }
        Ok(out)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.open = false;
        self.c.conn().execute_batch("COMMIT").map_err(|e| {
            let _ = self.c.conn().execute_batch("ROLLBACK");
            err(e)
        })
    }
    fn rollback(&mut self) {
        if self.open {
            self.open = false;
            if self.c.conn().execute_batch("ROLLBACK").is_err() {
                self.c.broken = true;
            }
        }
    }
}

impl SqliteStore {
    /// A connection in an open write transaction (`BEGIN IMMEDIATE`), and the entropy source.
    pub(crate) fn begin_conn(&self) -> Result<(SqliteConn<'_>, SharedEntropy), StoreError> {
        // A panic in another writer cannot leave SQLite inconsistent (its
        // transaction rolls back on drop), so a poisoned lock is still usable.
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut c = self.pool.get()?;
        c.conn().execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        Ok((
            SqliteConn {
                c,
                open: true,
                _writer: Some(writer),
            },
            self.entropy.clone(),
        ))
    }
}

impl SqliteStore {
    /// A connection in an open read transaction: a deferred transaction that
    /// only reads holds a WAL snapshot, not the write lock.
    pub(crate) fn begin_read_conn(&self) -> Result<(SqliteConn<'_>, SharedEntropy), StoreError> {
        let mut c = self.pool.get()?;
        c.conn().execute_batch("BEGIN DEFERRED").map_err(err)?;
        Ok((
            SqliteConn {
                c,
                open: true,
                _writer: None,
            },
            self.entropy.clone(),
        ))
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        let (conn, entropy) = self.begin_conn()?;
        Ok(Box::new(SqlTx::new(conn, entropy)))
    }
    fn begin_read(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        let (conn, entropy) = self.begin_read_conn()?;
        Ok(Box::new(SqlTx::new(conn, entropy)))
    }
    fn single_writer(&self) -> bool {
        true
    }
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}
