//! The scheme operator's storage: [`offpay_scheme::store::SchemeTx`] in the
//! same portable SQL as the issuer's (`$n` parameters, `ON CONFLICT`, no
//! sequences), over the same drivers, with its own tables (`scheme_*`) and
//! migrations (`migrations/scheme/{sqlite,postgres}`, numbered from 101 so a
//! scheme may share a database with an issuer). A scheme database opened
//! with [`SchemeDb`] holds the scheme's tables only.

use std::path::Path;

use offpay_issuer::store::StoreError;
use offpay_protocol::entropy::SharedEntropy;
use offpay_protocol::{Hash32, IssuerId, UnixSeconds, WalletId};
use offpay_scheme::store::{
    ClaimCounts, ClaimQuery, ClaimRecord, CycleRecord, IssuerRecord, LineRecord, NettedClaim,
    Party, RefusalRecord, SchemeStore, SchemeStoreError, SchemeTx, Side, StatementRecord,
    StoredStatus,
};

use crate::postgres::PostgresStore;
use crate::sql::{Conn, Dialect, Value};
use crate::sqlite::SqliteStore;

const SQLITE_MIGRATIONS: &[(i64, &str)] = &[(
    101,
    include_str!("../migrations/scheme/sqlite/0101_scheme.sql"),
)];
const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[(
    101,
    include_str!("../migrations/scheme/postgres/0101_scheme.sql"),
)];

/// Ids per `IN (...)` query.
const IDS_PER_QUERY_MAX: usize = 256;

/// A scheme database, either backend.
#[derive(Debug)]
pub enum SchemeDb {
    /// SQLite.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PostgresStore),
}

fn store_err(e: StoreError) -> SchemeStoreError {
    match e {
        StoreError::Conflict(d) => SchemeStoreError::Conflict(d),
        StoreError::Duplicate(d) => SchemeStoreError::Duplicate(d),
        StoreError::Corrupt(d) => SchemeStoreError::Corrupt(d),
        other => SchemeStoreError::Database(other.to_string()),
    }
}

impl SchemeDb {
    /// Open a `postgres://` (or `postgresql://`) URL, or else a SQLite file
    /// path (`sqlite://` prefix optional), creating and migrating the scheme tables.
    pub fn open(url_or_path: &str) -> Result<SchemeDb, SchemeStoreError> {
        if url_or_path.starts_with("postgres://") || url_or_path.starts_with("postgresql://") {
            SchemeDb::open_postgres(url_or_path, None)
        } else {
            SchemeDb::open_sqlite(Path::new(
                url_or_path.strip_prefix("sqlite://").unwrap_or(url_or_path),
            ))
        }
    }

    /// Open (creating) a SQLite scheme database file.
    pub fn open_sqlite(path: &Path) -> Result<SchemeDb, SchemeStoreError> {
        SqliteStore::open_with(path, SQLITE_MIGRATIONS)
            .map(SchemeDb::Sqlite)
            .map_err(store_err)
    }

    /// A private in-memory SQLite scheme database.
    pub fn open_sqlite_memory() -> Result<SchemeDb, SchemeStoreError> {
        SqliteStore::open_memory_with(SQLITE_MIGRATIONS)
            .map(SchemeDb::Sqlite)
            .map_err(store_err)
    }

    /// Connect to PostgreSQL, with every table in `schema` if given.
    pub fn open_postgres(url: &str, schema: Option<&str>) -> Result<SchemeDb, SchemeStoreError> {
        PostgresStore::open_with(url, schema, POSTGRES_MIGRATIONS)
            .map(SchemeDb::Postgres)
            .map_err(store_err)
    }

    /// Draw the random part of refusal ids from `entropy`.
    pub fn set_entropy(&mut self, entropy: SharedEntropy) {
        match self {
            SchemeDb::Sqlite(s) => s.set_entropy(entropy),
            SchemeDb::Postgres(s) => s.set_entropy(entropy),
        }
    }
}

impl SchemeStore for SchemeDb {
    fn begin_scheme(&self) -> Result<Box<dyn SchemeTx + '_>, SchemeStoreError> {
        match self {
            SchemeDb::Sqlite(s) => {
                let (conn, entropy) = s.begin_conn().map_err(store_err)?;
                Ok(Box::new(SchemeSqlTx::new(conn, entropy)))
            }
            SchemeDb::Postgres(s) => {
                let (conn, entropy) = s.begin_conn().map_err(store_err)?;
                Ok(Box::new(SchemeSqlTx::new(conn, entropy)))
            }
        }
    }
    fn begin_scheme_read(&self) -> Result<Box<dyn SchemeTx + '_>, SchemeStoreError> {
        match self {
            SchemeDb::Sqlite(s) => {
                let (conn, entropy) = s.begin_read_conn().map_err(store_err)?;
                Ok(Box::new(SchemeSqlTx::new(conn, entropy)))
            }
            SchemeDb::Postgres(_) => self.begin_scheme(),
        }
    }
    fn scheme_backend(&self) -> &'static str {
        match self {
            SchemeDb::Sqlite(_) => "sqlite",
            SchemeDb::Postgres(_) => "postgres",
        }
    }
}

/// A scheme transaction over a connection.
struct SchemeSqlTx<C: Conn> {
    conn: C,
    done: bool,
    entropy: SharedEntropy,
}

impl<C: Conn> SchemeSqlTx<C> {
    fn new(conn: C, entropy: SharedEntropy) -> SchemeSqlTx<C> {
        SchemeSqlTx {
            conn,
            done: false,
            entropy,
        }
    }
    fn exec(&mut self, sql: &str, params: &[Value]) -> Result<u64, SchemeStoreError> {
        self.conn.execute(sql, params).map_err(store_err)
    }
    fn rows(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, SchemeStoreError> {
        self.conn.query(sql, params).map_err(store_err)
    }
    fn lock_clause(&self) -> &'static str {
        match self.conn.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
    /// Refusal ids: 12 hex digits of the time in microseconds, 20 random.
    fn row_id(&self, time: UnixSeconds) -> Result<String, SchemeStoreError> {
        let mut r = [0u8; 16];
        self.entropy
            .fill(&mut r[6..])
            .map_err(|_| SchemeStoreError::Database("random source failed".into()))?;
        let micros = u128::from(time.0).saturating_mul(1_000_000);
        Ok(format!(
            "{:012x}{:020x}",
            micros & 0xffff_ffff_ffff,
            u128::from_be_bytes(r)
        ))
    }
}

impl<C: Conn> Drop for SchemeSqlTx<C> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.rollback();
        }
    }
}

fn corrupt(what: &str) -> SchemeStoreError {
    SchemeStoreError::Corrupt(what.to_string())
}
fn int(v: &Value) -> Result<i64, SchemeStoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("expected an integer")),
    }
}
fn uint(v: &Value) -> Result<u64, SchemeStoreError> {
    u64::try_from(int(v)?).map_err(|_| corrupt("negative counter"))
}
fn text(v: &Value) -> Result<String, SchemeStoreError> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        _ => Err(corrupt("expected text")),
    }
}
fn opt_text(v: &Value) -> Result<Option<String>, SchemeStoreError> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(Some),
    }
}
fn bytes(v: &Value) -> Result<Vec<u8>, SchemeStoreError> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        _ => Err(corrupt("expected bytes")),
    }
}
fn opt_bytes(v: &Value) -> Result<Option<Vec<u8>>, SchemeStoreError> {
    match v {
        Value::Null => Ok(None),
        v => bytes(v).map(Some),
    }
}
fn hash(v: &Value) -> Result<Hash32, SchemeStoreError> {
    Hash32::from_slice(&bytes(v)?).ok_or_else(|| corrupt("hash length"))
}
fn opt_hash(v: &Value) -> Result<Option<Hash32>, SchemeStoreError> {
    match v {
        Value::Null => Ok(None),
        v => hash(v).map(Some),
    }
}
fn issuer_id(v: &Value) -> Result<IssuerId, SchemeStoreError> {
    let b = bytes(v)?;
    let a: [u8; 16] = b
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("issuer id length"))?;
    Ok(IssuerId(a))
}
fn wallet(v: &Value) -> Result<WalletId, SchemeStoreError> {
    WalletId::from_slice(&bytes(v)?).ok_or_else(|| corrupt("wallet id length"))
}
fn side(v: &Value) -> Result<Side, SchemeStoreError> {
    Side::parse(&text(v)?).ok_or_else(|| corrupt("claim side"))
}
fn i(v: u64) -> Result<Value, SchemeStoreError> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| SchemeStoreError::Database(format!("{v} does not fit a signed 64-bit column")))
}
fn b(v: &[u8]) -> Value {
    Value::Bytes(v.to_vec())
}
fn t(v: &str) -> Value {
    Value::Text(v.to_string())
}
fn id(v: &IssuerId) -> Value {
    Value::Bytes(v.0.to_vec())
}
fn h(v: &Hash32) -> Value {
    Value::Bytes(v.0.to_vec())
}
fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}
fn list(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(", ")
}
/// `ids` in chunks padded to a power of two (repeating the last), so that
/// `IN` lists come in a few statement shapes.
fn padded(ids: &[Hash32]) -> impl Iterator<Item = Vec<Hash32>> + '_ {
    ids.chunks(IDS_PER_QUERY_MAX).map(|c| {
        let mut v = c.to_vec();
        v.resize(c.len().next_power_of_two(), c[c.len() - 1]);
        v
    })
}

const ISSUER_COLUMNS: &str = "id, code, ca_cert, serial, status, status_time, changed, token_hash, crl, crl_number, admitted";

fn issuer_row(r: &[Value]) -> Result<IssuerRecord, SchemeStoreError> {
    Ok(IssuerRecord {
        id: issuer_id(&r[0])?,
        code: text(&r[1])?,
        ca_cert: bytes(&r[2])?,
        serial: uint(&r[3])?,
        status: StoredStatus::parse(&text(&r[4])?).ok_or_else(|| corrupt("issuer status"))?,
        status_time: UnixSeconds(uint(&r[5])?),
        changed: uint(&r[6])?,
        token_hash: hash(&r[7])?,
        crl: opt_bytes(&r[8])?,
        crl_number: uint(&r[9])?,
        admitted: UnixSeconds(uint(&r[10])?),
    })
}

const CLAIM_COLUMNS: &str = "id, payer_issuer, payee_issuer, payer, seq, payee, amount, time, bytes, payer_side, payee_side, payer_refusal, payee_refusal, cycle, created, updated";

fn claim_row(r: &[Value]) -> Result<ClaimRecord, SchemeStoreError> {
    Ok(ClaimRecord {
        id: hash(&r[0])?,
        payer_issuer: issuer_id(&r[1])?,
        payee_issuer: issuer_id(&r[2])?,
        payer: wallet(&r[3])?,
        seq: uint(&r[4])?,
        payee: wallet(&r[5])?,
        amount: int(&r[6])?,
        time: UnixSeconds(uint(&r[7])?),
        bytes: bytes(&r[8])?,
        payer_side: side(&r[9])?,
        payee_side: side(&r[10])?,
        payer_refusal: opt_text(&r[11])?,
        payee_refusal: opt_text(&r[12])?,
        cycle: match &r[13] {
            Value::Null => None,
            v => Some(uint(v)?),
        },
        created: UnixSeconds(uint(&r[14])?),
        updated: UnixSeconds(uint(&r[15])?),
    })
}

const REFUSAL_COLUMNS: &str = "id, submitter, claim, bytes_hash, bytes_len, code, detail, time";

fn refusal_row(r: &[Value]) -> Result<RefusalRecord, SchemeStoreError> {
    Ok(RefusalRecord {
        id: text(&r[0])?,
        submitter: issuer_id(&r[1])?,
        claim: opt_hash(&r[2])?,
        bytes_hash: hash(&r[3])?,
        bytes_len: uint(&r[4])?,
        code: text(&r[5])?,
        detail: text(&r[6])?,
        time: UnixSeconds(uint(&r[7])?),
    })
}

const LINE_COLUMNS: &str = "cycle, issuer, counterparty, receivable, payable, claims, digest";

fn line_row(r: &[Value]) -> Result<LineRecord, SchemeStoreError> {
    Ok(LineRecord {
        cycle: uint(&r[0])?,
        issuer: issuer_id(&r[1])?,
        counterparty: issuer_id(&r[2])?,
        receivable: int(&r[3])?,
        payable: int(&r[4])?,
        claims: uint(&r[5])?,
        digest: hash(&r[6])?,
    })
}

fn party_columns(p: Party) -> (&'static str, &'static str) {
    match p {
        Party::Payer => ("payer_side", "payer_refusal"),
        Party::Payee => ("payee_side", "payee_refusal"),
    }
}

impl<C: Conn> SchemeTx for SchemeSqlTx<C> {
    fn commit(mut self: Box<Self>) -> Result<(), SchemeStoreError> {
        self.done = true;
        self.conn.commit().map_err(store_err)
    }

    fn lock_scheme(&mut self) -> Result<(), SchemeStoreError> {
        if self.conn.dialect() == Dialect::Postgres {
            // The row is written once at init; locking it serializes the
            // scheme's state changes (directory versions, cycles).
            self.rows(
                "SELECT key FROM scheme_settings WHERE key = 'lock' FOR UPDATE",
                &[],
            )?;
        }
        Ok(())
    }

    fn setting(&mut self, key: &str) -> Result<Option<Vec<u8>>, SchemeStoreError> {
        match self
            .rows(
                "SELECT value FROM scheme_settings WHERE key = $1",
                &[t(key)],
            )?
            .first()
        {
            Some(r) => Ok(Some(bytes(&r[0])?)),
            None => Ok(None),
        }
    }

    fn set_setting(&mut self, key: &str, value: &[u8]) -> Result<(), SchemeStoreError> {
        self.exec(
            "INSERT INTO scheme_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[t(key), b(value)],
        )
        .map(drop)
    }

    fn insert_issuer(&mut self, r: &IssuerRecord) -> Result<(), SchemeStoreError> {
        let n = self.exec(
            &format!(
                "INSERT INTO scheme_issuers ({ISSUER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
            ),
            &[
                id(&r.id),
                t(&r.code),
                b(&r.ca_cert),
                i(r.serial)?,
                t(r.status.as_str()),
                i(r.status_time.0)?,
                i(r.changed)?,
                h(&r.token_hash),
                opt(r.crl.as_deref(), b),
                i(r.crl_number)?,
                i(r.admitted.0)?,
            ],
        )?;
        if n == 0 {
            return Err(SchemeStoreError::Duplicate(
                "an issuer with this id, code or serial exists".into(),
            ));
        }
        Ok(())
    }

    fn issuer(&mut self, issuer: &IssuerId) -> Result<Option<IssuerRecord>, SchemeStoreError> {
        let rows = self.rows(
            &format!("SELECT {ISSUER_COLUMNS} FROM scheme_issuers WHERE id = $1"),
            &[id(issuer)],
        )?;
        rows.first().map(|r| issuer_row(r)).transpose()
    }

    fn issuer_by_code(&mut self, code: &str) -> Result<Option<IssuerRecord>, SchemeStoreError> {
        let rows = self.rows(
            &format!("SELECT {ISSUER_COLUMNS} FROM scheme_issuers WHERE code = $1"),
            &[t(code)],
        )?;
        rows.first().map(|r| issuer_row(r)).transpose()
    }

    fn issuers(&mut self) -> Result<Vec<IssuerRecord>, SchemeStoreError> {
        self.rows(
            &format!("SELECT {ISSUER_COLUMNS} FROM scheme_issuers ORDER BY serial"),
            &[],
        )?
        .iter()
        .map(|r| issuer_row(r))
        .collect()
    }

    fn set_issuer_status(
        &mut self,
        issuer: &IssuerId,
        status: StoredStatus,
        time: UnixSeconds,
        changed: u64,
    ) -> Result<(), SchemeStoreError> {
        let n = self.exec(
            "UPDATE scheme_issuers SET status = $2, status_time = $3, changed = $4 WHERE id = $1",
            &[id(issuer), t(status.as_str()), i(time.0)?, i(changed)?],
        )?;
        if n != 1 {
            return Err(SchemeStoreError::Database("no such issuer".into()));
        }
        Ok(())
    }

    fn set_issuer_crl(
        &mut self,
        issuer: &IssuerId,
        crl: &[u8],
        number: u64,
        changed: u64,
    ) -> Result<(), SchemeStoreError> {
        let n = self.exec(
            "UPDATE scheme_issuers SET crl = $2, crl_number = $3, changed = $4 WHERE id = $1",
            &[id(issuer), b(crl), i(number)?, i(changed)?],
        )?;
        if n != 1 {
            return Err(SchemeStoreError::Database("no such issuer".into()));
        }
        Ok(())
    }

    fn insert_directory(
        &mut self,
        version: u64,
        time: UnixSeconds,
        signed: &[u8],
    ) -> Result<(), SchemeStoreError> {
        let n = self.exec(
            "INSERT INTO scheme_directory (version, time, signed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[i(version)?, i(time.0)?, b(signed)],
        )?;
        if n == 0 {
            return Err(SchemeStoreError::Duplicate(format!(
                "directory version {version} exists"
            )));
        }
        Ok(())
    }

    fn latest_directory(&mut self) -> Result<Option<(u64, Vec<u8>)>, SchemeStoreError> {
        let rows = self.rows(
            "SELECT version, signed FROM scheme_directory ORDER BY version DESC LIMIT 1",
            &[],
        )?;
        rows.first()
            .map(|r| Ok((uint(&r[0])?, bytes(&r[1])?)))
            .transpose()
    }

    fn prune_directory(&mut self, version: u64) -> Result<u64, SchemeStoreError> {
        self.exec(
            "DELETE FROM scheme_directory WHERE version < $1",
            &[i(version)?],
        )
    }

    fn claim_counts(&mut self) -> Result<ClaimCounts, SchemeStoreError> {
        const HELD: &str = "('submitted', 'acked')";
        let rows = self.rows(
            &format!(
                "SELECT \
                 COALESCE(SUM(CASE WHEN cycle IS NOT NULL AND NOT (payer_side IN {HELD} AND payee_side IN {HELD}) THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN cycle IS NULL AND payer_side IN {HELD} AND payee_side IN {HELD} THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN payer_side <> 'refused' AND payee_side <> 'refused' AND (payer_side = 'none' OR payee_side = 'none') THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN payer_side = 'refused' OR payee_side = 'refused' THEN 1 ELSE 0 END), 0) \
                 FROM scheme_claims"
            ),
            &[],
        )?;
        let r = rows.first().ok_or_else(|| corrupt("no claim counts"))?;
        Ok(ClaimCounts {
            netted_not_held: uint(&r[0])?,
            open: uint(&r[1])?,
            waiting: uint(&r[2])?,
            disputed: uint(&r[3])?,
        })
    }

    fn claims_by_id(&mut self, ids: &[Hash32]) -> Result<Vec<ClaimRecord>, SchemeStoreError> {
        let mut out = Vec::new();
        if ids.is_empty() {
            return Ok(out);
        }
        for chunk in padded(ids) {
            let sql = format!(
                "SELECT {CLAIM_COLUMNS} FROM scheme_claims WHERE id IN ({})",
                list(1, chunk.len())
            );
            let params: Vec<Value> = chunk.iter().map(h).collect();
            for r in self.rows(&sql, &params)? {
                out.push(claim_row(&r)?);
            }
        }
        Ok(out)
    }

    fn insert_claim(&mut self, r: &ClaimRecord) -> Result<(), SchemeStoreError> {
        let n = self.exec(
            &format!(
                "INSERT INTO scheme_claims ({CLAIM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING"
            ),
            &[
                h(&r.id),
                id(&r.payer_issuer),
                id(&r.payee_issuer),
                b(&r.payer.0),
                i(r.seq)?,
                b(&r.payee.0),
                Value::Int(r.amount),
                i(r.time.0)?,
                b(&r.bytes),
                t(r.payer_side.as_str()),
                t(r.payee_side.as_str()),
                opt(r.payer_refusal.as_deref(), t),
                opt(r.payee_refusal.as_deref(), t),
                match r.cycle {
                    Some(c) => i(c)?,
                    None => Value::Null,
                },
                i(r.created.0)?,
                i(r.updated.0)?,
            ],
        )?;
        if n == 0 {
            // A concurrent transaction inserted it first: retry sees it.
            return Err(SchemeStoreError::Conflict(
                "claim inserted concurrently".into(),
            ));
        }
        Ok(())
    }

    fn set_side(
        &mut self,
        claim: &Hash32,
        party: Party,
        from: Side,
        to: Side,
        refusal: Option<&str>,
        now: UnixSeconds,
    ) -> Result<bool, SchemeStoreError> {
        let (s, r) = party_columns(party);
        let n = self.exec(
            &format!(
                "UPDATE scheme_claims SET {s} = $3, {r} = $4, updated = $5 WHERE id = $1 AND {s} = $2 AND cycle IS NULL"
            ),
            &[
                h(claim),
                t(from.as_str()),
                t(to.as_str()),
                opt(refusal, t),
                i(now.0)?,
            ],
        )?;
        Ok(n == 1)
    }

    fn inbox(
        &mut self,
        issuer: &IssuerId,
        limit: usize,
    ) -> Result<Vec<ClaimRecord>, SchemeStoreError> {
        let mut out = Vec::new();
        for (who, s) in [
            ("payer_issuer", "payer_side"),
            ("payee_issuer", "payee_side"),
        ] {
            let rows = self.rows(
                &format!(
                    "SELECT {CLAIM_COLUMNS} FROM scheme_claims WHERE {who} = $1 AND {s} = 'none' ORDER BY created, id LIMIT $2"
                ),
                &[id(issuer), i(limit as u64)?],
            )?;
            for r in rows {
                out.push(claim_row(&r)?);
            }
        }
        // Both halves are oldest first; merged, the oldest `limit` of all.
        out.sort_by_key(|c| (c.created, c.id.0));
        out.truncate(limit);
        Ok(out)
    }

    fn claims_to_net(&mut self) -> Result<Vec<ClaimRecord>, SchemeStoreError> {
        let lock = self.lock_clause();
        self.rows(
            &format!(
                "SELECT {CLAIM_COLUMNS} FROM scheme_claims WHERE cycle IS NULL AND payer_side IN ('submitted', 'acked') AND payee_side IN ('submitted', 'acked') ORDER BY id{lock}"
            ),
            &[],
        )?
        .iter()
        .map(|r| claim_row(r))
        .collect()
    }

    fn assign_cycle(&mut self, ids: &[Hash32], cycle: u64) -> Result<u64, SchemeStoreError> {
        let mut n = 0;
        for chunk in ids.chunks(IDS_PER_QUERY_MAX) {
            let sql = format!(
                "UPDATE scheme_claims SET cycle = $1 WHERE cycle IS NULL AND id IN ({})",
                list(2, chunk.len())
            );
            let mut params = vec![i(cycle)?];
            params.extend(chunk.iter().map(h));
            n += self.exec(&sql, &params)?;
        }
        Ok(n)
    }

    fn claims(&mut self, q: &ClaimQuery) -> Result<Vec<ClaimRecord>, SchemeStoreError> {
        let mut terms = Vec::new();
        let mut params = Vec::new();
        if let Some(who) = &q.issuer {
            params.push(id(who));
            terms.push(format!(
                "(payer_issuer = ${n} OR payee_issuer = ${n})",
                n = params.len()
            ));
        }
        match q.cycle {
            Some(0) => terms.push("cycle IS NULL".to_string()),
            Some(c) => {
                params.push(i(c)?);
                terms.push(format!("cycle = ${}", params.len()));
            }
            None => {}
        }
        if q.disputed {
            terms.push("(payer_side = 'refused' OR payee_side = 'refused')".to_string());
        }
        params.push(i(q.limit as u64)?);
        let filter = if terms.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", terms.join(" AND "))
        };
        self.rows(
            &format!(
                "SELECT {CLAIM_COLUMNS} FROM scheme_claims {filter} ORDER BY created, id LIMIT ${}",
                params.len()
            ),
            &params,
        )?
        .iter()
        .map(|r| claim_row(r))
        .collect()
    }

    fn netted_claims(&mut self) -> Result<Vec<NettedClaim>, SchemeStoreError> {
        self.rows(
            "SELECT cycle, payer_issuer, payee_issuer, amount, id FROM scheme_claims WHERE cycle IS NOT NULL ORDER BY cycle, id",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(NettedClaim {
                cycle: uint(&r[0])?,
                payer_issuer: issuer_id(&r[1])?,
                payee_issuer: issuer_id(&r[2])?,
                amount: int(&r[3])?,
                id: hash(&r[4])?,
            })
        })
        .collect()
    }

    fn insert_refusal(&mut self, r: &RefusalRecord) -> Result<(), SchemeStoreError> {
        let rid = if r.id.is_empty() {
            self.row_id(r.time)?
        } else {
            r.id.clone()
        };
        self.exec(
            &format!(
                "INSERT INTO scheme_claim_refusals ({REFUSAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ),
            &[
                t(&rid),
                id(&r.submitter),
                opt(r.claim.as_ref(), h),
                h(&r.bytes_hash),
                i(r.bytes_len)?,
                t(&r.code),
                t(&r.detail),
                i(r.time.0)?,
            ],
        )
        .map(drop)
    }

    fn refusals(
        &mut self,
        submitter: Option<&IssuerId>,
        limit: usize,
    ) -> Result<Vec<RefusalRecord>, SchemeStoreError> {
        let limit = i(limit as u64)?;
        let rows = match submitter {
            Some(s) => self.rows(
                &format!(
                    "SELECT {REFUSAL_COLUMNS} FROM scheme_claim_refusals WHERE submitter = $1 ORDER BY id DESC LIMIT $2"
                ),
                &[id(s), limit],
            )?,
            None => self.rows(
                &format!(
                    "SELECT {REFUSAL_COLUMNS} FROM scheme_claim_refusals ORDER BY id DESC LIMIT $1"
                ),
                &[limit],
            )?,
        };
        rows.iter().map(|r| refusal_row(r)).collect()
    }

    fn insert_cycle(&mut self, r: &CycleRecord) -> Result<(), SchemeStoreError> {
        self.exec(
            "INSERT INTO scheme_cycles (cycle, time, claims, gross) VALUES ($1, $2, $3, $4)",
            &[i(r.cycle)?, i(r.time.0)?, i(r.claims)?, Value::Int(r.gross)],
        )
        .map(drop)
    }

    fn cycles(&mut self) -> Result<Vec<CycleRecord>, SchemeStoreError> {
        self.rows(
            "SELECT cycle, time, claims, gross FROM scheme_cycles ORDER BY cycle",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(CycleRecord {
                cycle: uint(&r[0])?,
                time: UnixSeconds(uint(&r[1])?),
                claims: uint(&r[2])?,
                gross: int(&r[3])?,
            })
        })
        .collect()
    }

    fn insert_statement(
        &mut self,
        s: &StatementRecord,
        lines: &[LineRecord],
    ) -> Result<(), SchemeStoreError> {
        self.exec(
            "INSERT INTO scheme_statements (cycle, issuer, net, signed) VALUES ($1, $2, $3, $4)",
            &[i(s.cycle)?, id(&s.issuer), Value::Int(s.net), b(&s.signed)],
        )?;
        for l in lines {
            self.exec(
                &format!(
                    "INSERT INTO scheme_statement_lines ({LINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ),
                &[
                    i(l.cycle)?,
                    id(&l.issuer),
                    id(&l.counterparty),
                    Value::Int(l.receivable),
                    Value::Int(l.payable),
                    i(l.claims)?,
                    h(&l.digest),
                ],
            )?;
        }
        Ok(())
    }

    fn statements(
        &mut self,
        issuer: &IssuerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StatementRecord>, SchemeStoreError> {
        self.rows(
            "SELECT cycle, issuer, net, signed FROM scheme_statements WHERE issuer = $1 AND cycle > $2 ORDER BY cycle LIMIT $3",
            &[id(issuer), i(after)?, i(limit as u64)?],
        )?
        .iter()
        .map(|r| {
            Ok(StatementRecord {
                cycle: uint(&r[0])?,
                issuer: issuer_id(&r[1])?,
                net: int(&r[2])?,
                signed: bytes(&r[3])?,
            })
        })
        .collect()
    }

    fn statement_nets(&mut self) -> Result<Vec<StatementRecord>, SchemeStoreError> {
        self.rows(
            "SELECT cycle, issuer, net FROM scheme_statements ORDER BY cycle, issuer",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(StatementRecord {
                cycle: uint(&r[0])?,
                issuer: issuer_id(&r[1])?,
                net: int(&r[2])?,
                signed: Vec::new(),
            })
        })
        .collect()
    }

    fn statement_lines(&mut self) -> Result<Vec<LineRecord>, SchemeStoreError> {
        self.rows(
            &format!(
                "SELECT {LINE_COLUMNS} FROM scheme_statement_lines ORDER BY cycle, issuer, counterparty"
            ),
            &[],
        )?
        .iter()
        .map(|r| line_row(r))
        .collect()
    }

    fn cycle_claims(
        &mut self,
        issuer: &IssuerId,
        cycle: u64,
    ) -> Result<Vec<Hash32>, SchemeStoreError> {
        self.rows(
            "SELECT id FROM scheme_claims WHERE cycle = $1 AND (payer_issuer = $2 OR payee_issuer = $2) ORDER BY id",
            &[i(cycle)?, id(issuer)],
        )?
        .iter()
        .map(|r| hash(&r[0]))
        .collect()
    }
}
