//! PostgreSQL: for production. A pool of connections; READ COMMITTED
//! transactions that lock the wallet row they work on (`FOR UPDATE`), so
//! syncs of one wallet serialize and syncs of different wallets run in
//! parallel. Serialization failures, deadlocks and unique-key races are
//! reported as [`StoreError::Conflict`] and retried by the issuer.

use std::error::Error as _;

use offpay_issuer::store::{Store, StoreError, Tx};
use offpay_protocol::entropy::{OsEntropy, SharedEntropy};
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use crate::pool::{Pool, Pooled};
use crate::sql::{Conn, Dialect, SqlTx, Value};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../migrations/postgres/0002_scheme_member.sql"),
    ),
    (3, include_str!("../migrations/postgres/0003_terminal.sql")),
    (4, include_str!("../migrations/postgres/0004_rekey.sql")),
    (5, include_str!("../migrations/postgres/0005_lifecycle.sql")),
    (6, include_str!("../migrations/postgres/0006_cases.sql")),
    (
        7,
        include_str!("../migrations/postgres/0007_compact_revocation.sql"),
    ),
    (8, include_str!("../migrations/postgres/0008_retention.sql")),
];
/// Connections in the pool.
pub const POSTGRES_CONNECTIONS_MAX: usize = 16;

fn err(e: postgres::Error) -> StoreError {
    use postgres::error::SqlState;
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION =>
        {
            StoreError::Conflict(e.to_string())
        }
        _ => {
            let detail = e.source().map(|s| s.to_string()).unwrap_or_default();
            StoreError::Database(format!("{e} {detail}"))
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Int(i) if *ty == Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
            Value::Int(i) => i.to_sql(ty, out),
            Value::Text(s) => s.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
            Value::Null => Ok(IsNull::Yes),
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

/// Prepared statements kept per connection, by SQL text. The SQL layer emits
/// a bounded number of shapes (see `padded_len` in `sql.rs`), so after warm-up
/// a statement costs one round trip instead of two (parse, then execute).
pub const POSTGRES_STATEMENT_CACHE_MAX: usize = 512;

/// A connection and its prepared statements.
struct PgClient {
    client: Client,
    statements: std::collections::HashMap<String, Statement>,
}

impl PgClient {
    fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql).map_err(err)?;
        if self.statements.len() >= POSTGRES_STATEMENT_CACHE_MAX {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool<PgClient>,
    /// The random part of posting ids.
    entropy: SharedEntropy,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PostgresStore")
    }
}

fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PostgresStore {
    /// Draw the random part of posting ids from `entropy` (the operating
    /// system's source by default).
    pub fn set_entropy(&mut self, entropy: SharedEntropy) {
        self.entropy = entropy;
    }

    /// The canonical dump of every table (see [`crate::dump`]), read in one
    /// snapshot (REPEATABLE READ).
    pub fn dump(&self) -> Result<String, StoreError> {
        let mut c = self.pool.get()?;
        if let Err(e) = c
            .conn()
            .client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        {
            c.broken = true;
            return Err(err(e));
        }
        let mut tx = SqlTx::new(PgConn { c, open: true }, self.entropy.clone());
        tx.dump()
    }

    /// Connect (and migrate). With `schema`, every table lives in that schema
    /// (created if missing): tests use one schema each to run in parallel.
    pub fn open(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_with(url, schema, MIGRATIONS)
    }

    /// Connect and run these migrations (the scheme's own, for a scheme database).
    pub(crate) fn open_with(
        url: &str,
        schema: Option<&str>,
        migrations: &[(i64, &str)],
    ) -> Result<PostgresStore, StoreError> {
        if let Some(s) = schema
            && !valid_schema(s)
        {
            return Err(StoreError::Database(format!("invalid schema name {s:?}")));
        }
        let url = url.to_string();
        let schema = schema.map(str::to_string);
        let connect = move || -> Result<Client, StoreError> {
            let mut c = Client::connect(&url, NoTls).map_err(err)?;
            // Statements stay prepared (see PgClient), but each execution is
            // planned for its parameters: a generic plan chosen while the
            // tables were small would keep scanning them once they are large.
            c.batch_execute("SET plan_cache_mode = force_custom_plan")
                .map_err(err)?;
            if let Some(s) = &schema {
                c.batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(err)?;
            }
            Ok(c)
        };
        let mut first = connect()?;
        first
            .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
            .map_err(err)?;
        for (version, sql) in migrations {
            let mut tx = first.transaction().map_err(err)?;
            let done: i64 = tx
                .query_one(
                    "SELECT COUNT(*) FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .map_err(err)?
                .get(0);
            if done == 0 {
                tx.batch_execute(sql).map_err(err)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied) VALUES ($1, CAST(EXTRACT(EPOCH FROM now()) AS BIGINT))",
                    &[version],
                )
                .map_err(err)?;
            }
            tx.commit().map_err(err)?;
        }
        let first = std::sync::Mutex::new(Some(first));
        let pool = Pool::new(
            POSTGRES_CONNECTIONS_MAX,
            Box::new(move || {
                let client = match first.lock().ok().and_then(|mut f| f.take()) {
                    Some(c) => c,
                    None => connect()?,
                };
                Ok(PgClient {
                    client,
                    statements: std::collections::HashMap::new(),
                })
            }),
        );
        Ok(PostgresStore {
            pool,
            entropy: OsEntropy::shared(),
        })
    }
}

pub(crate) struct PgConn<'a> {
    c: Pooled<'a, PgClient>,
    open: bool,
}

fn params(v: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    v.iter().map(|x| x as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
    fn execute(&mut self, sql: &str, p: &[Value]) -> Result<u64, StoreError> {
        let c = self.c.conn();
        let st = c.prepare(sql)?;
        c.client.execute(&st, &params(p)).map_err(err)
    }
    fn query(&mut self, sql: &str, p: &[Value]) -> Result<Vec<Vec<Value>>, StoreError> {
        let c = self.c.conn();
        let st = c.prepare(sql)?;
        let rows = c.client.query(&st, &params(p)).map_err(err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut row = Vec::with_capacity(r.len());
            for (k, col) in r.columns().iter().enumerate() {
                let v = match *col.type_() {
                    Type::INT8 => r.try_get::<_, Option<i64>>(k).map_err(err)?.map(Value::Int),
                    Type::INT4 => r
                        .try_get::<_, Option<i32>>(k)
                        .map_err(err)?
                        .map(|i| Value::Int(i as i64)),
                    Type::TEXT | Type::VARCHAR | Type::NAME => r
                        .try_get::<_, Option<String>>(k)
                        .map_err(err)?
                        .map(Value::Text),
                    Type::BYTEA => r
                        .try_get::<_, Option<Vec<u8>>>(k)
                        .map_err(err)?
                        .map(Value::Bytes),
                    ref t => {
                        return Err(StoreError::Corrupt(format!("unexpected column type {t}")));
                    }
                };
                row.push(v.unwrap_or(Value::Null));
            }
            out.push(row);
        }
        Ok(out)
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.open = false;
        self.c.conn().client.batch_execute("COMMIT").map_err(|e| {
            self.c.broken = true;
            err(e)
        })
    }
    fn rollback(&mut self) {
        if self.open {
            self.open = false;
            if self.c.conn().client.batch_execute("ROLLBACK").is_err() {
                self.c.broken = true;
            }
        }
    }
}

impl PostgresStore {
    /// A connection in an open READ COMMITTED transaction, and the entropy source.
    pub(crate) fn begin_conn(&self) -> Result<(PgConn<'_>, SharedEntropy), StoreError> {
        let mut c = self.pool.get()?;
        if let Err(e) = c
            .conn()
            .client
            .batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED")
        {
            c.broken = true;
            return Err(err(e));
        }
        Ok((PgConn { c, open: true }, self.entropy.clone()))
    }
}

impl Store for PostgresStore {
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        let (conn, entropy) = self.begin_conn()?;
        Ok(Box::new(SqlTx::new(conn, entropy)))
    }
    fn backend(&self) -> &'static str {
        "postgres"
    }
}
