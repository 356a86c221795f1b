//! One implementation of the issuer's [`Tx`] in portable SQL, over a minimal
//! connection trait that both drivers implement. The same statements run on
//! SQLite and PostgreSQL (and PostgreSQL-compatible distributed databases):
//! `$n` parameters, `ON CONFLICT`, no sequences, no stored procedures.

use offpay_issuer::store::{
    Book, CaseCountRow, CaseEvent, CaseRecord, CaseState, CheckpointRecord, ClaimDirection,
    ClaimFilter, ClaimRecord, ClaimState, ClaimSums, DoubleSpendRecord, EnrollmentTokenRecord,
    EntryRecord, LedgerTotals, NewSettlement, PendingSettlement, Posting, RetentionCandidate,
    Retirement, RevocationRecord, SettlementRecord, StatementRecord, StoreError, StoredPosting, Tx,
    WalletRecord, WalletState,
};
use offpay_protocol::entropy::{Entropy, SharedEntropy};
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Hash32, IssuerId, Suite, UnixSeconds, WalletId};

/// A SQL value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// NULL.
    Null,
}

/// The SQL dialect, for the few places they differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: one writer; `BEGIN IMMEDIATE` already serializes, no row locks.
    Sqlite,
    /// PostgreSQL: `SELECT ... FOR UPDATE` row locks.
    Postgres,
}

/// What a driver provides: statements inside an open transaction.
pub trait Conn {
    /// The dialect.
    fn dialect(&self) -> Dialect;
    /// Run a statement; rows affected.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError>;
    /// Run a query; all rows.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, StoreError>;
    /// Commit the open transaction.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Roll back the open transaction (on drop without commit).
    fn rollback(&mut self);
}

/// A transaction over a connection.
pub struct SqlTx<C: Conn> {
    pub(crate) conn: C,
    done: bool,
    /// The random part of posting ids.
    entropy: SharedEntropy,
}

impl<C: Conn> SqlTx<C> {
    /// Insert postings (each positive, between two accounts) in chunks,
    /// leaving the cached balances to the caller: `post` moves them, the
    /// retention fold keeps every net.
    fn insert_postings(&mut self, postings: &[Posting]) -> Result<(), StoreError> {
        for chunk in shaped_chunks(postings, INSERT_ROWS_MAX) {
            let mut params = Vec::with_capacity(chunk.len() * 8);
            for p in chunk {
                if p.amount <= 0 || p.debit == p.credit {
                    return Err(StoreError::Corrupt(format!("invalid posting {p:?}")));
                }
                params.extend([
                    Value::Text(posting_id(p.time, self.entropy.as_ref())?),
                    t(p.book.as_str()),
                    t(&p.debit),
                    t(&p.credit),
                    Value::Int(p.amount),
                    t(p.kind),
                    t(&p.reference),
                    time(p.time)?,
                ]);
            }
            let sql = format!(
                "INSERT INTO postings (id, book, debit, credit, amount, kind, reference, time) VALUES {}",
                placeholders(chunk.len(), 8)
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }
    /// Wrap a connection whose transaction is already open; posting ids draw
    /// their random part from `entropy`.
    pub fn new(conn: C, entropy: SharedEntropy) -> SqlTx<C> {
        SqlTx {
            conn,
            done: false,
            entropy,
        }
    }
    pub(crate) fn lock(&self) -> &'static str {
        match self.conn.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
    /// Which of `ids` are wallets in `state`.
    fn wallets_in_state(
        &mut self,
        ids: &[WalletId],
        state: &str,
    ) -> Result<Vec<WalletId>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(ids, INSERT_ROWS_MAX) {
            let mut params: Vec<Value> = chunk.iter().map(w).collect();
            params.push(t(state));
            let sql = format!(
                "SELECT id FROM wallets WHERE state = ${} AND id IN ({})",
                chunk.len() + 1,
                list(1, chunk.len())
            );
            for r in self.conn.query(&sql, &params)? {
                out.push(wallet(&r[0])?);
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
    fn one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Vec<Value>>, StoreError> {
        Ok(self.conn.query(sql, params)?.into_iter().next())
    }
    /// `{select} (a = $1 AND b = $2) OR (a = $3 AND b = $4) ...` over pairs of
    /// keys, in chunks: one round trip per chunk, one index lookup per pair.
    /// (Not the row-value `(a, b) IN (...)`: SQLite answers that with a table scan.)
    fn by_pairs<T>(
        &mut self,
        select: &str,
        (a, b): (&str, &str),
        pairs: &[(Value, Value)],
        row: impl Fn(&[Value]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(pairs, PAIRS_PER_QUERY_MAX) {
            let n = chunk.len();
            let params: Vec<Value> = chunk.into_iter().flat_map(|(x, y)| [x, y]).collect();
            let terms: Vec<String> = (0..n)
                .map(|k| format!("({a} = ${} AND {b} = ${})", 2 * k + 1, 2 * k + 2))
                .collect();
            let sql = format!("{select} ({})", terms.join(" OR "));
            for r in self.conn.query(&sql, &params)? {
                out.push(row(&r)?);
            }
        }
        Ok(out)
    }
}

impl<C: Conn> Drop for SqlTx<C> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.rollback();
        }
    }
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
pub(crate) fn int(v: &Value) -> Result<i64, StoreError> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("expected an integer")),
    }
}
pub(crate) fn uint(v: &Value) -> Result<u64, StoreError> {
    u64::try_from(int(v)?).map_err(|_| corrupt("negative counter"))
}
pub(crate) fn text(v: &Value) -> Result<String, StoreError> {
    match v {
        Value::Text(s) => Ok(s.clone()),
        _ => Err(corrupt("expected text")),
    }
}
fn opt_text(v: &Value) -> Result<Option<String>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => text(v).map(Some),
    }
}
pub(crate) fn bytes(v: &Value) -> Result<Vec<u8>, StoreError> {
    match v {
        Value::Bytes(b) => Ok(b.clone()),
        _ => Err(corrupt("expected bytes")),
    }
}
pub(crate) fn hash(v: &Value) -> Result<Hash32, StoreError> {
    Hash32::from_slice(&bytes(v)?).ok_or_else(|| corrupt("hash length"))
}
pub(crate) fn wallet(v: &Value) -> Result<WalletId, StoreError> {
    WalletId::from_slice(&bytes(v)?).ok_or_else(|| corrupt("wallet id length"))
}
pub(crate) fn opt_wallet(v: &Value) -> Result<Option<WalletId>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => wallet(v).map(Some),
    }
}
fn issuer(v: &Value) -> Result<IssuerId, StoreError> {
    IssuerId::from_slice(&bytes(v)?).ok_or_else(|| corrupt("issuer id length"))
}
pub(crate) fn i(v: u64) -> Result<Value, StoreError> {
    i64::try_from(v)
        .map(Value::Int)
        .map_err(|_| StoreError::Database(format!("{v} does not fit a signed 64-bit column")))
}
pub(crate) fn b(v: &[u8]) -> Value {
    Value::Bytes(v.to_vec())
}
pub(crate) fn t(v: &str) -> Value {
    Value::Text(v.to_string())
}
pub(crate) fn w(v: &WalletId) -> Value {
    Value::Bytes(v.0.to_vec())
}
pub(crate) fn time(v: UnixSeconds) -> Result<Value, StoreError> {
    i(v.0)
}

/// A posting id: 32 hex digits, the first 12 the posting's time (the
/// transaction's `now`) in microseconds since the Unix epoch (so new rows
/// append at the right edge of the primary-key B-tree instead of dirtying a
/// random page each), the last 20 random from the store's entropy source
/// (unique). No wall clock and no hidden randomness: a seeded source gives
/// the same ids.
fn posting_id(time: UnixSeconds, entropy: &dyn Entropy) -> Result<String, StoreError> {
    let mut r = [0u8; 16];
    entropy
        .fill(&mut r[6..])
        .map_err(|_| StoreError::Database("random source failed".into()))?;
    let micros = u128::from(time.0).saturating_mul(1_000_000);
    Ok(format!(
        "{:012x}{:020x}",
        micros & 0xffff_ffff_ffff,
        u128::from_be_bytes(r)
    ))
}

const WALLET_COLUMNS: &str = "id, customer, cert_der, cert_serial, cert_not_after, state, reason, load_seq, checkpoint, report_seq, policy_epoch, unlock_pending, clawed_back, guaranteed, created, key_generation, prev_cert_der, rekey_suite, retired, closed_at";

fn wallet_row(r: &[Value]) -> Result<WalletRecord, StoreError> {
    Ok(WalletRecord {
        id: wallet(&r[0])?,
        customer: text(&r[1])?,
        cert_der: bytes(&r[2])?,
        cert_serial: uint(&r[3])?,
        cert_not_after: UnixSeconds(uint(&r[4])?),
        state: WalletState::parse(&text(&r[5])?).ok_or_else(|| corrupt("wallet state"))?,
        reason: opt_text(&r[6])?,
        load_seq: uint(&r[7])?,
        checkpoint: uint(&r[8])?,
        report_seq: uint(&r[9])?,
        policy_epoch: u32::try_from(uint(&r[10])?).map_err(|_| corrupt("policy epoch"))?,
        unlock_pending: int(&r[11])? != 0,
        clawed_back: int(&r[12])?,
        guaranteed: int(&r[13])?,
        created: UnixSeconds(uint(&r[14])?),
        key_generation: u32::try_from(uint(&r[15])?).map_err(|_| corrupt("key generation"))?,
        prev_cert_der: match &r[16] {
            Value::Null => None,
            v => Some(bytes(v)?),
        },
        rekey_suite: match &r[17] {
            Value::Null => None,
            v => Some(Suite::from_cose_alg(int(v)?).ok_or_else(|| corrupt("re-key suite"))?),
        },
        retired: match &r[18] {
            Value::Null => None,
            v => Some(Retirement::parse(&text(v)?).ok_or_else(|| corrupt("retirement"))?),
        },
        closed_at: match &r[19] {
            Value::Null => None,
            v => Some(UnixSeconds(uint(v)?)),
        },
    })
}

fn pending_row(r: &[Value]) -> Result<PendingSettlement, StoreError> {
    Ok(PendingSettlement {
        payer: wallet(&r[0])?,
        hash: hash(&r[1])?,
        payee: opt_wallet(&r[2])?.ok_or_else(|| corrupt("settlement without payee"))?,
        amount: int(&r[3])?,
        time: UnixSeconds(uint(&r[4])?),
    })
}

pub(crate) const REVOCATION_COLUMNS: &str =
    "serial, wallet, reason_code, reason, time, not_after, crl_added, crl_removed";

pub(crate) fn opt_uint(v: &Value) -> Result<Option<u64>, StoreError> {
    match v {
        Value::Null => Ok(None),
        v => uint(v).map(Some),
    }
}

pub(crate) fn opt_i(v: Option<u64>) -> Result<Value, StoreError> {
    v.map_or(Ok(Value::Null), i)
}

pub(crate) fn revocation_row(r: &[Value]) -> Result<RevocationRecord, StoreError> {
    Ok(RevocationRecord {
        serial: uint(&r[0])?,
        wallet: wallet(&r[1])?,
        reason_code: u8::try_from(uint(&r[2])?).map_err(|_| corrupt("reason code"))?,
        reason: text(&r[3])?,
        time: UnixSeconds(uint(&r[4])?),
        not_after: opt_uint(&r[5])?.map(UnixSeconds),
        crl_added: opt_uint(&r[6])?,
        crl_removed: opt_uint(&r[7])?,
    })
}

const POSTING_COLUMNS: &str = "book, debit, credit, amount, kind, reference, time";

fn stored_posting_row(r: &[Value]) -> Result<StoredPosting, StoreError> {
    Ok(StoredPosting {
        book: Book::parse(&text(&r[0])?).ok_or_else(|| corrupt("posting book"))?,
        debit: text(&r[1])?,
        credit: text(&r[2])?,
        amount: int(&r[3])?,
        kind: text(&r[4])?,
        reference: text(&r[5])?,
        time: UnixSeconds(uint(&r[6])?),
    })
}

/// Each (book, account)'s net (credits - debits) over some postings.
fn nets<'a>(
    moves: impl Iterator<Item = (Book, &'a str, &'a str, i64)>,
) -> std::collections::BTreeMap<(&'static str, &'a str), i128> {
    let mut out = std::collections::BTreeMap::new();
    for (book, debit, credit, amount) in moves {
        *out.entry((book.as_str(), debit)).or_insert(0i128) -= i128::from(amount);
        *out.entry((book.as_str(), credit)).or_insert(0i128) += i128::from(amount);
    }
    out.retain(|_, v| *v != 0);
    out
}

pub(crate) const ENTRY_COLUMNS: &str =
    "payer, seq, hash, prev, kind, payee, amount, time, bytes, recorded";

pub(crate) fn entry_row(r: &[Value]) -> Result<EntryRecord, StoreError> {
    Ok(EntryRecord {
        payer: wallet(&r[0])?,
        seq: uint(&r[1])?,
        hash: hash(&r[2])?,
        prev: hash(&r[3])?,
        kind: match text(&r[4])?.as_str() {
            "payment" => "payment",
            "redeem" => "redeem",
            _ => return Err(corrupt("entry kind")),
        },
        payee: opt_wallet(&r[5])?,
        amount: int(&r[6])?,
        time: UnixSeconds(uint(&r[7])?),
        bytes: bytes(&r[8])?,
        recorded: UnixSeconds(uint(&r[9])?),
    })
}

const CLAIM_COLUMNS: &str =
    "id, counterparty, direction, amount, state, refusal, cycle, payer, seq, created";

fn claim_row(r: &[Value]) -> Result<ClaimRecord, StoreError> {
    Ok(ClaimRecord {
        id: hash(&r[0])?,
        counterparty: issuer(&r[1])?,
        direction: ClaimDirection::parse(&text(&r[2])?)
            .ok_or_else(|| corrupt("claim direction"))?,
        amount: int(&r[3])?,
        state: ClaimState::parse(&text(&r[4])?).ok_or_else(|| corrupt("claim state"))?,
        refusal: opt_text(&r[5])?,
        cycle: match &r[6] {
            Value::Null => None,
            v => Some(uint(v)?),
        },
        payer: wallet(&r[7])?,
        seq: uint(&r[8])?,
        created: UnixSeconds(uint(&r[9])?),
    })
}

/// `($1, $2, ...), ($k, ...)` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("${}", r * cols + c + 1));
        }
        s.push(')');
    }
    s
}

/// `$from, $from+1, ...` (`n` parameters).
fn list(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The number of keys a query is padded to: the next power of two. Queries
/// and multi-row statements come in a handful of shapes, so the drivers'
/// statement caches hit instead of parsing and planning every length anew.
fn padded_len(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// `items` in chunks of power-of-two lengths (at most `max`, itself a power of
/// two), largest first: one statement shape per length for multi-row writes.
fn shaped_chunks<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = max.min(1 << rest.len().ilog2());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// `items` as query keys: chunks of at most `max`, each padded to a power of
/// two by repeating its last item (an `IN` list or `OR` matches a row once).
pub(crate) fn padded_chunks<T: Clone>(
    items: &[T],
    max: usize,
) -> impl Iterator<Item = Vec<T>> + '_ {
    items.chunks(max).map(|c| {
        let mut v = c.to_vec();
        v.resize(padded_len(c.len()), c[c.len() - 1].clone());
        v
    })
}

/// Key pairs per OR-list query (SQLite's expression depth limit is 1000).
pub(crate) const PAIRS_PER_QUERY_MAX: usize = 128;

/// Rows per multi-row INSERT (keeps parameters under SQLite's 32766 limit).
const INSERT_ROWS_MAX: usize = 256;

impl<C: Conn> Tx for SqlTx<C> {
    fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.done = true;
        self.conn.commit()
    }

    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.conn.execute("SAVEPOINT offpay_group", &[]).map(drop)
    }

    fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("RELEASE SAVEPOINT offpay_group", &[])
            .map(drop)
    }

    fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("ROLLBACK TO SAVEPOINT offpay_group", &[])?;
        self.release_savepoint()
    }

    fn setting(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.one("SELECT value FROM settings WHERE key = $1", &[t(key)])? {
            Some(r) => Ok(Some(bytes(&r[0])?)),
            None => Ok(None),
        }
    }

    fn set_setting(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[t(key), b(value)],
        )?;
        Ok(())
    }

    fn next_counter(&mut self, name: &str) -> Result<u64, StoreError> {
        let key = format!("counter.{name}");
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[t(&key), b(&0u64.to_be_bytes())],
        )?;
        let sql = format!("SELECT value FROM settings WHERE key = $1{}", self.lock());
        let cur = self
            .one(&sql, &[t(&key)])?
            .ok_or_else(|| corrupt("counter"))?;
        let cur: [u8; 8] = bytes(&cur[0])?
            .try_into()
            .map_err(|_| corrupt("counter width"))?;
        let next = u64::from_be_bytes(cur)
            .checked_add(1)
            .ok_or_else(|| corrupt("counter overflow"))?;
        self.conn.execute(
            "UPDATE settings SET value = $1 WHERE key = $2",
            &[b(&next.to_be_bytes()), t(&key)],
        )?;
        Ok(next)
    }

    fn create_account(
        &mut self,
        id: &str,
        book: Book,
        kind: &str,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO accounts (id, book, kind, balance, created) VALUES ($1, $2, $3, 0, $4) ON CONFLICT (id) DO NOTHING",
            &[t(id), t(book.as_str()), t(kind), time(now)?],
        )?;
        Ok(())
    }

    fn balance(&mut self, id: &str) -> Result<Option<i64>, StoreError> {
        match self.one("SELECT balance FROM accounts WHERE id = $1", &[t(id)])? {
            Some(r) => Ok(Some(int(&r[0])?)),
            None => Ok(None),
        }
    }

    fn post(&mut self, postings: &[Posting]) -> Result<(), StoreError> {
        let mut deltas: std::collections::BTreeMap<&str, i128> = std::collections::BTreeMap::new();
        self.insert_postings(postings)?;
        for p in postings {
            *deltas.entry(&p.debit).or_default() -= p.amount as i128;
            *deltas.entry(&p.credit).or_default() += p.amount as i128;
        }
        // Balanced before anything is applied: what leaves one account enters
        // another (Issuer::invariants checks the stored sums again).
        debug_assert_eq!(deltas.values().sum::<i128>(), 0, "unbalanced postings");
        // One UPDATE per chunk of accounts, in sorted order: concurrent
        // transactions lock the rows they share in the same order.
        let changes: Vec<(&str, i64)> = deltas
            .into_iter()
            .filter(|(_, d)| *d != 0)
            .map(|(a, d)| {
                i64::try_from(d)
                    .map(|d| (a, d))
                    .map_err(|_| corrupt("balance delta overflow"))
            })
            .collect::<Result<_, _>>()?;
        for chunk in shaped_chunks(&changes, INSERT_ROWS_MAX / 2) {
            let mut params = Vec::with_capacity(chunk.len() * 3);
            let mut case = String::from("CASE id");
            for (k, (account, d)) in chunk.iter().enumerate() {
                case.push_str(&format!(
                    " WHEN ${} THEN CAST(${} AS BIGINT)",
                    2 * k + 1,
                    2 * k + 2
                ));
                params.push(t(account));
                params.push(Value::Int(*d));
            }
            case.push_str(" END");
            for (account, _) in chunk {
                params.push(t(account));
            }
            let sql = format!(
                "UPDATE accounts SET balance = balance + {case} WHERE id IN ({})",
                list(2 * chunk.len() + 1, chunk.len())
            );
            let n = self.conn.execute(&sql, &params)?;
            if n as usize != chunk.len() {
                return Err(StoreError::Corrupt("posting to an unknown account".into()));
            }
        }
        Ok(())
    }

    fn totals(&mut self) -> Result<LedgerTotals, StoreError> {
        let sum = |tx: &mut Self, sql: &str, p: &[Value]| -> Result<i128, StoreError> {
            Ok(tx
                .one(sql, p)?
                .map(|r| int(&r[0]))
                .transpose()?
                .unwrap_or(0) as i128)
        };
        let general_sum = sum(
            self,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts WHERE book = 'gl'",
            &[],
        )?;
        let offline_sum = sum(
            self,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts WHERE book = 'offline'",
            &[],
        )?;
        let pool = sum(self, "SELECT balance FROM accounts WHERE id = 'pool'", &[])?;
        let wallets = sum(
            self,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts WHERE kind = 'wallet'",
            &[],
        )?;
        let external = sum(
            self,
            "SELECT balance FROM accounts WHERE id = 'external'",
            &[],
        )?;
        let guarantee = sum(
            self,
            "SELECT balance FROM accounts WHERE id = 'guarantee'",
            &[],
        )?;
        let customers = sum(
            self,
            "SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM accounts WHERE kind = 'customer'",
            &[],
        )?;
        let deposits = sum(
            self,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings WHERE kind = 'deposit'",
            &[],
        )?;
        let withdrawals = sum(
            self,
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM postings WHERE kind = 'withdraw'",
            &[],
        )?;
        let drifted = self
            .conn
            .query(
                "SELECT a.id FROM accounts a LEFT JOIN (\
                   SELECT id, CAST(SUM(delta) AS BIGINT) AS total FROM (\
                     SELECT credit AS id, amount AS delta FROM postings \
                     UNION ALL SELECT debit AS id, -amount AS delta FROM postings) moves GROUP BY id\
                 ) p ON p.id = a.id WHERE a.balance <> COALESCE(p.total, 0) ORDER BY a.id",
                &[],
            )?
            .iter()
            .map(|r| text(&r[0]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LedgerTotals {
            general_sum,
            offline_sum,
            pool,
            wallets,
            external,
            guarantee,
            customers,
            drifted_accounts: drifted,
            net_external_postings: deposits - withdrawals,
        })
    }

    fn create_customer(
        &mut self,
        id: &str,
        name: &str,
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO customers (id, name, created) VALUES ($1, $2, $3)",
            &[t(id), t(name), time(now)?],
        )?;
        Ok(())
    }

    fn customer(&mut self, id: &str) -> Result<Option<String>, StoreError> {
        self.one("SELECT name FROM customers WHERE id = $1", &[t(id)])?
            .map(|r| text(&r[0]))
            .transpose()
    }

    fn insert_enrollment_token(
        &mut self,
        h: &Hash32,
        customer: &str,
        profile: WalletProfile,
        expires: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO enrollment_tokens (hash, customer, expires, wallet, profile) VALUES ($1, $2, $3, NULL, $4)",
            &[b(&h.0), t(customer), time(expires)?, t(profile.code())],
        )?;
        Ok(())
    }

    fn enrollment_token(
        &mut self,
        h: &Hash32,
    ) -> Result<Option<EnrollmentTokenRecord>, StoreError> {
        let sql = format!(
            "SELECT customer, expires, wallet, profile FROM enrollment_tokens WHERE hash = $1{}",
            self.lock()
        );
        match self.one(&sql, &[b(&h.0)])? {
            Some(r) => {
                let code = text(&r[3])?;
                let profile = WalletProfile::from_code(&code).ok_or_else(|| {
                    StoreError::Corrupt(format!("enrollment token profile {code:?}"))
                })?;
                Ok(Some(EnrollmentTokenRecord {
                    customer: text(&r[0])?,
                    profile,
                    expires: UnixSeconds(uint(&r[1])?),
                    wallet: opt_wallet(&r[2])?,
                }))
            }
            None => Ok(None),
        }
    }

    fn use_enrollment_token(&mut self, h: &Hash32, wallet: &WalletId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE enrollment_tokens SET wallet = $1 WHERE hash = $2",
            &[w(wallet), b(&h.0)],
        )?;
        Ok(())
    }

    fn insert_wallet(&mut self, r: &WalletRecord) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO wallets ({WALLET_COLUMNS}) VALUES {}",
            placeholders(1, 20)
        );
        self.conn.execute(
            &sql,
            &[
                w(&r.id),
                t(&r.customer),
                b(&r.cert_der),
                i(r.cert_serial)?,
                time(r.cert_not_after)?,
                t(r.state.as_str()),
                r.reason.as_deref().map(t).unwrap_or(Value::Null),
                i(r.load_seq)?,
                i(r.checkpoint)?,
                i(r.report_seq)?,
                Value::Int(r.policy_epoch as i64),
                Value::Int(r.unlock_pending as i64),
                Value::Int(r.clawed_back),
                Value::Int(r.guaranteed),
                time(r.created)?,
                Value::Int(i64::from(r.key_generation)),
                r.prev_cert_der.as_deref().map(b).unwrap_or(Value::Null),
                r.rekey_suite
                    .map_or(Value::Null, |s| Value::Int(s.cose_alg())),
                r.retired.map_or(Value::Null, |x| t(x.as_str())),
                r.closed_at.map(time).transpose()?.unwrap_or(Value::Null),
            ],
        )?;
        Ok(())
    }

    fn wallet(
        &mut self,
        id: &WalletId,
        for_update: bool,
    ) -> Result<Option<WalletRecord>, StoreError> {
        let lock = if for_update { self.lock() } else { "" };
        let sql = format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE id = $1{lock}");
        self.one(&sql, &[w(id)])?
            .map(|r| wallet_row(&r))
            .transpose()
    }

    fn update_wallet(&mut self, r: &WalletRecord) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE wallets SET cert_der = $1, cert_serial = $2, cert_not_after = $3, state = $4, reason = $5, load_seq = $6, \
             checkpoint = $7, report_seq = $8, policy_epoch = $9, unlock_pending = $10, clawed_back = $11, guaranteed = $12, \
             key_generation = $13, prev_cert_der = $14, rekey_suite = $15, retired = $16, closed_at = $17 WHERE id = $18",
            &[
                b(&r.cert_der),
                i(r.cert_serial)?,
                time(r.cert_not_after)?,
                t(r.state.as_str()),
                r.reason.as_deref().map(t).unwrap_or(Value::Null),
                i(r.load_seq)?,
                i(r.checkpoint)?,
                i(r.report_seq)?,
                Value::Int(r.policy_epoch as i64),
                Value::Int(r.unlock_pending as i64),
                Value::Int(r.clawed_back),
                Value::Int(r.guaranteed),
                Value::Int(i64::from(r.key_generation)),
                r.prev_cert_der.as_deref().map(b).unwrap_or(Value::Null),
                r.rekey_suite
                    .map_or(Value::Null, |s| Value::Int(s.cose_alg())),
                r.retired.map_or(Value::Null, |x| t(x.as_str())),
                r.closed_at.map(time).transpose()?.unwrap_or(Value::Null),
                w(&r.id),
            ],
        )?;
        if n != 1 {
            return Err(StoreError::Corrupt(format!(
                "update of unknown wallet {}",
                r.id
            )));
        }
        Ok(())
    }

    fn wallets(
        &mut self,
        customer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WalletRecord>, StoreError> {
        let rows = match customer {
            Some(c) => self.conn.query(
                &format!("SELECT {WALLET_COLUMNS} FROM wallets WHERE customer = $1 ORDER BY created, id LIMIT $2"),
                &[t(c), Value::Int(limit as i64)],
            )?,
            None => self.conn.query(
                &format!("SELECT {WALLET_COLUMNS} FROM wallets ORDER BY created, id LIMIT $1"),
                &[Value::Int(limit as i64)],
            )?,
        };
        rows.iter().map(|r| wallet_row(r)).collect()
    }

    fn insert_certificate(
        &mut self,
        serial: u64,
        wallet: &WalletId,
        der: &[u8],
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO certificates (serial, wallet, der) VALUES ($1, $2, $3)",
            &[i(serial)?, w(wallet), b(der)],
        )?;
        Ok(())
    }

    fn certificates_of(&mut self, wl: &WalletId) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.conn
            .query(
                "SELECT serial, der FROM certificates WHERE wallet = $1 ORDER BY serial",
                &[w(wl)],
            )?
            .iter()
            .map(|r| Ok((uint(&r[0])?, bytes(&r[1])?)))
            .collect()
    }

    fn insert_voucher(
        &mut self,
        wl: &WalletId,
        load_seq: u64,
        amount: i64,
        bytes_: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO vouchers (wallet, load_seq, amount, bytes, created) VALUES ($1, $2, $3, $4, $5)",
            &[w(wl), i(load_seq)?, Value::Int(amount), b(bytes_), time(now)?],
        )?;
        Ok(())
    }

    fn vouchers(
        &mut self,
        wl: &WalletId,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, i64, Vec<u8>)>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        self.conn
            .query(
                "SELECT load_seq, amount, bytes FROM vouchers WHERE wallet = $1 AND load_seq >= $2 AND load_seq <= $3 ORDER BY load_seq",
                &[w(wl), i(from)?, i(to)?],
            )?
            .iter()
            .map(|r| Ok((uint(&r[0])?, int(&r[1])?, bytes(&r[2])?)))
            .collect()
    }

    fn entries_at(
        &mut self,
        payer: &WalletId,
        seqs: &[u64],
    ) -> Result<Vec<EntryRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(seqs, INSERT_ROWS_MAX) {
            let mut params = vec![w(payer)];
            let mut list = String::new();
            for (k, s) in chunk.iter().enumerate() {
                if k > 0 {
                    list.push_str(", ");
                }
                list.push_str(&format!("${}", k + 2));
                params.push(i(*s)?);
            }
            let sql =
                format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE payer = $1 AND seq IN ({list})");
            for r in self.conn.query(&sql, &params)? {
                out.push(entry_row(&r)?);
            }
        }
        Ok(out)
    }

    fn entries_at_keys(
        &mut self,
        keys: &[(WalletId, u64)],
    ) -> Result<Vec<EntryRecord>, StoreError> {
        let pairs = keys
            .iter()
            .map(|(p, q)| Ok((w(p), i(*q)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.by_pairs(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE"),
            ("payer", "seq"),
            &pairs,
            entry_row,
        )
    }

    fn entries_by_prevs(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<EntryRecord>, StoreError> {
        let pairs: Vec<(Value, Value)> = keys.iter().map(|(p, h)| (w(p), b(&h.0))).collect();
        self.by_pairs(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries WHERE"),
            ("payer", "prev"),
            &pairs,
            entry_row,
        )
    }

    fn settled_keys(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError> {
        let pairs: Vec<(Value, Value)> = keys.iter().map(|(p, h)| (w(p), b(&h.0))).collect();
        self.by_pairs(
            "SELECT payer, hash FROM settlements WHERE",
            ("payer", "hash"),
            &pairs,
            |r| Ok((wallet(&r[0])?, hash(&r[1])?)),
        )
    }

    fn existing_accounts(&mut self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(ids, INSERT_ROWS_MAX) {
            let params: Vec<Value> = chunk.iter().map(|s| t(s)).collect();
            let sql = format!(
                "SELECT id FROM accounts WHERE id IN ({})",
                list(1, chunk.len())
            );
            for r in self.conn.query(&sql, &params)? {
                out.push(text(&r[0])?);
            }
        }
        Ok(out)
    }

    fn revoked_among(&mut self, ids: &[WalletId]) -> Result<Vec<WalletId>, StoreError> {
        self.wallets_in_state(ids, "revoked")
    }

    fn max_seq(&mut self, payer: &WalletId) -> Result<u64, StoreError> {
        match self.one(
            "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM entries WHERE payer = $1",
            &[w(payer)],
        )? {
            Some(r) => uint(&r[0]),
            None => Ok(0),
        }
    }

    fn insert_entries(&mut self, entries: &[EntryRecord]) -> Result<(), StoreError> {
        for chunk in shaped_chunks(entries, INSERT_ROWS_MAX / 4) {
            let mut params = Vec::with_capacity(chunk.len() * 10);
            for e in chunk {
                params.extend([
                    w(&e.payer),
                    i(e.seq)?,
                    b(&e.hash.0),
                    b(&e.prev.0),
                    t(e.kind),
                    e.payee.as_ref().map(w).unwrap_or(Value::Null),
                    Value::Int(e.amount),
                    time(e.time)?,
                    b(&e.bytes),
                    time(e.recorded)?,
                ]);
            }
            let sql = format!(
                "INSERT INTO entries ({ENTRY_COLUMNS}) VALUES {}",
                placeholders(chunk.len(), 10)
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    fn settled(&mut self, payer: &WalletId, hashes: &[Hash32]) -> Result<Vec<Hash32>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(hashes, INSERT_ROWS_MAX) {
            let mut params = vec![w(payer)];
            let mut list = String::new();
            for (k, h) in chunk.iter().enumerate() {
                if k > 0 {
                    list.push_str(", ");
                }
                list.push_str(&format!("${}", k + 2));
                params.push(b(&h.0));
            }
            let sql = format!("SELECT hash FROM settlements WHERE payer = $1 AND hash IN ({list})");
            for r in self.conn.query(&sql, &params)? {
                out.push(hash(&r[0])?);
            }
        }
        Ok(out)
    }

    fn insert_settlements(
        &mut self,
        s: &[NewSettlement],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        for chunk in shaped_chunks(s, INSERT_ROWS_MAX / 2) {
            let mut params = Vec::with_capacity(chunk.len() * 6);
            for (h, payer, payee, amount, delivered) in chunk {
                params.extend([
                    w(payer),
                    b(&h.0),
                    payee.as_ref().map(w).unwrap_or(Value::Null),
                    Value::Int(*amount),
                    time(now)?,
                    Value::Int(i64::from(*delivered)),
                ]);
            }
            let sql = format!(
                "INSERT INTO settlements (payer, hash, payee, amount, time, delivery) VALUES {}",
                placeholders(chunk.len(), 6)
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    fn deliver(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<PendingSettlement>, StoreError> {
        let pairs: Vec<(Value, Value)> = keys.iter().map(|(p, h)| (w(p), b(&h.0))).collect();
        let returned = self.by_pairs(
            "SELECT payer, hash, payee, amount, time FROM settlements WHERE delivery = 2 AND pruned = 0 AND",
            ("payer", "hash"),
            &pairs,
            pending_row,
        )?;
        for chunk in padded_chunks(&pairs, PAIRS_PER_QUERY_MAX) {
            let n = chunk.len();
            let params: Vec<Value> = chunk.into_iter().flat_map(|(x, y)| [x, y]).collect();
            let terms: Vec<String> = (0..n)
                .map(|k| format!("(payer = ${} AND hash = ${})", 2 * k + 1, 2 * k + 2))
                .collect();
            let sql = format!(
                "UPDATE settlements SET delivery = 1 WHERE delivery <> 1 AND ({})",
                terms.join(" OR ")
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(returned)
    }

    fn pending_to(
        &mut self,
        payee: &WalletId,
        settled_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<PendingSettlement>, StoreError> {
        self.conn
            .query(
                "SELECT payer, hash, payee, amount, time FROM settlements \
                 WHERE payee = $1 AND delivery = 0 AND time <= $2 ORDER BY time, payer, hash LIMIT $3",
                &[w(payee), time(settled_by)?, Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| pending_row(r))
            .collect()
    }

    fn set_returned(&mut self, keys: &[(WalletId, Hash32)]) -> Result<(), StoreError> {
        for (p, h) in keys {
            let n = self.conn.execute(
                "UPDATE settlements SET delivery = 2 WHERE payer = $1 AND hash = $2 AND delivery = 0",
                &[w(p), b(&h.0)],
            )?;
            if n != 1 {
                return Err(StoreError::Conflict(format!(
                    "settlement {} of {p} is not pending",
                    h.to_hex()
                )));
            }
        }
        Ok(())
    }

    fn closing_due(
        &mut self,
        not_after_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<WalletId>, StoreError> {
        self.conn
            .query(
                "SELECT id FROM wallets WHERE state = 'revoked' AND cert_not_after <= $1 \
                 ORDER BY cert_not_after, id LIMIT $2",
                &[time(not_after_by)?, Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| wallet(&r[0]))
            .collect()
    }

    fn closed_among(&mut self, ids: &[WalletId]) -> Result<Vec<WalletId>, StoreError> {
        self.wallets_in_state(ids, "closed")
    }

    fn checkpoint(
        &mut self,
        wl: &WalletId,
        number: u64,
    ) -> Result<Option<CheckpointRecord>, StoreError> {
        match self.one(
            "SELECT seq, head, balance, load_seq, time FROM checkpoints WHERE wallet = $1 AND number = $2",
            &[w(wl), i(number)?],
        )? {
            Some(r) => Ok(Some(CheckpointRecord {
                wallet: *wl,
                number,
                seq: uint(&r[0])?,
                head: hash(&r[1])?,
                balance: int(&r[2])?,
                load_seq: uint(&r[3])?,
                time: UnixSeconds(uint(&r[4])?),
            })),
            None => Ok(None),
        }
    }

    fn insert_checkpoint(&mut self, c: &CheckpointRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO checkpoints (wallet, number, seq, head, balance, load_seq, time) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[w(&c.wallet), i(c.number)?, i(c.seq)?, b(&c.head.0), Value::Int(c.balance), i(c.load_seq)?, time(c.time)?],
        )?;
        Ok(())
    }

    fn report(
        &mut self,
        wl: &WalletId,
        report_seq: u64,
    ) -> Result<Option<(Hash32, Vec<u8>)>, StoreError> {
        match self.one(
            "SELECT hash, response FROM reports WHERE wallet = $1 AND report_seq = $2",
            &[w(wl), i(report_seq)?],
        )? {
            Some(r) => Ok(Some((hash(&r[0])?, bytes(&r[1])?))),
            None => Ok(None),
        }
    }

    fn insert_report(
        &mut self,
        wl: &WalletId,
        report_seq: u64,
        h: &Hash32,
        response: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO reports (wallet, report_seq, hash, response, time) VALUES ($1, $2, $3, $4, $5)",
            &[w(wl), i(report_seq)?, b(&h.0), b(response), time(now)?],
        )?;
        Ok(())
    }

    fn insert_double_spend(&mut self, d: &DoubleSpendRecord) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO double_spends (payer, seq, entry_a, entry_b, proof, detected) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (payer, entry_a, entry_b) DO NOTHING",
            &[w(&d.payer), i(d.seq)?, b(&d.entries[0].0), b(&d.entries[1].0), b(&d.proof), time(d.detected)?],
        )?;
        Ok(n == 1)
    }

    fn double_spends(
        &mut self,
        payer: Option<&WalletId>,
        limit: u32,
    ) -> Result<Vec<DoubleSpendRecord>, StoreError> {
        let rows = match payer {
            Some(p) => self.conn.query(
                "SELECT payer, seq, entry_a, entry_b, proof, detected FROM double_spends WHERE payer = $1 ORDER BY detected DESC, seq DESC LIMIT $2",
                &[w(p), Value::Int(limit as i64)],
            )?,
            None => self.conn.query(
                "SELECT payer, seq, entry_a, entry_b, proof, detected FROM double_spends ORDER BY detected DESC, seq DESC LIMIT $1",
                &[Value::Int(limit as i64)],
            )?,
        };
        rows.iter()
            .map(|r| {
                Ok(DoubleSpendRecord {
                    payer: wallet(&r[0])?,
                    seq: uint(&r[1])?,
                    entries: [hash(&r[2])?, hash(&r[3])?],
                    proof: bytes(&r[4])?,
                    detected: UnixSeconds(uint(&r[5])?),
                })
            })
            .collect()
    }

    fn insert_revocation(&mut self, r: &RevocationRecord) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "INSERT INTO revocations (serial, wallet, reason_code, reason, time, not_after, crl_added, crl_removed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (serial) DO NOTHING",
            &[
                i(r.serial)?,
                w(&r.wallet),
                Value::Int(r.reason_code as i64),
                t(&r.reason),
                time(r.time)?,
                opt_i(r.not_after.map(|t| t.0))?,
                opt_i(r.crl_added)?,
                opt_i(r.crl_removed)?,
            ],
        )?;
        Ok(n == 1)
    }

    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        let sql = format!("SELECT {REVOCATION_COLUMNS} FROM revocations ORDER BY serial");
        self.conn
            .query(&sql, &[])?
            .iter()
            .map(|r| revocation_row(r))
            .collect()
    }

    fn listed_revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError> {
        let sql = format!(
            "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE crl_removed IS NULL ORDER BY serial"
        );
        self.conn
            .query(&sql, &[])?
            .iter()
            .map(|r| revocation_row(r))
            .collect()
    }

    fn mark_crl(&mut self, number: u64, now: UnixSeconds) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE revocations SET crl_added = $1 WHERE crl_added IS NULL",
            &[i(number)?],
        )?;
        self.conn.execute(
            "UPDATE revocations SET crl_removed = $1 WHERE crl_removed IS NULL AND not_after IS NOT NULL AND not_after < $2",
            &[i(number)?, time(now)?],
        )?;
        Ok(())
    }

    fn crl_changes(&mut self, base: u64) -> Result<(Vec<RevocationRecord>, Vec<u64>), StoreError> {
        let sql = format!(
            "SELECT {REVOCATION_COLUMNS} FROM revocations WHERE crl_added > $1 AND crl_removed IS NULL ORDER BY serial"
        );
        let added = self
            .conn
            .query(&sql, &[i(base)?])?
            .iter()
            .map(|r| revocation_row(r))
            .collect::<Result<Vec<_>, _>>()?;
        let removed = self
            .conn
            .query(
                "SELECT serial FROM revocations WHERE crl_removed > $1 AND crl_added <= $1 ORDER BY serial",
                &[i(base)?],
            )?
            .iter()
            .map(|r| uint(&r[0]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((added, removed))
    }

    fn set_revocation_not_after(
        &mut self,
        serial: u64,
        not_after: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE revocations SET not_after = $1 WHERE serial = $2",
            &[time(not_after)?, i(serial)?],
        )?;
        Ok(())
    }

    fn retention_candidates(
        &mut self,
        settled_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<RetentionCandidate>, StoreError> {
        // Delivered or returned; the payer's last checkpoint covers the
        // entry's seq and the payee's last checkpoint is no older than the
        // settlement; in no double spend and no claim on another issuer.
        self.conn
            .query(
                "SELECT s.payer, e.seq, s.hash, s.payee, s.time FROM settlements s \
                 JOIN entries e ON e.payer = s.payer AND e.hash = s.hash \
                 JOIN wallets pw ON pw.id = s.payer \
                 JOIN checkpoints pc ON pc.wallet = s.payer AND pc.number = pw.checkpoint \
                 JOIN wallets qw ON qw.id = s.payee \
                 JOIN checkpoints qc ON qc.wallet = s.payee AND qc.number = qw.checkpoint \
                 WHERE s.pruned = 0 AND s.delivery IN (1, 2) AND s.time <= $1 AND e.kind = 'payment' \
                 AND pc.seq >= e.seq AND qc.time >= s.time \
                 AND NOT EXISTS (SELECT 1 FROM double_spends d WHERE d.payer = s.payer AND d.seq = e.seq) \
                 AND NOT EXISTS (SELECT 1 FROM claims c WHERE c.id = s.hash) \
                 ORDER BY s.time, s.payer, s.hash LIMIT $2",
                &[time(settled_by)?, Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| {
                Ok(RetentionCandidate {
                    payer: wallet(&r[0])?,
                    seq: uint(&r[1])?,
                    hash: hash(&r[2])?,
                    payee: wallet(&r[3])?,
                    settled: UnixSeconds(uint(&r[4])?),
                })
            })
            .collect()
    }

    fn postings_by_references(
        &mut self,
        references: &[String],
    ) -> Result<Vec<StoredPosting>, StoreError> {
        let mut refs = references.to_vec();
        refs.sort();
        refs.dedup();
        let mut out = Vec::new();
        for chunk in padded_chunks(&refs, INSERT_ROWS_MAX) {
            let params: Vec<Value> = chunk.iter().map(|r| t(r)).collect();
            let sql = format!(
                "SELECT {POSTING_COLUMNS} FROM postings WHERE reference IN ({}) ORDER BY id",
                list(1, chunk.len())
            );
            for r in self.conn.query(&sql, &params)? {
                out.push(stored_posting_row(&r)?);
            }
        }
        Ok(out)
    }

    fn fold_postings(
        &mut self,
        references: &[String],
        summaries: &[Posting],
    ) -> Result<(), StoreError> {
        let removed = self.postings_by_references(references)?;
        let before = nets(
            removed
                .iter()
                .map(|p| (p.book, p.debit.as_str(), p.credit.as_str(), p.amount)),
        );
        let after = nets(
            summaries
                .iter()
                .map(|p| (p.book, p.debit.as_str(), p.credit.as_str(), p.amount)),
        );
        if before != after {
            return Err(StoreError::Corrupt(
                "folded postings would change a balance".into(),
            ));
        }
        let mut refs = references.to_vec();
        refs.sort();
        refs.dedup();
        for chunk in padded_chunks(&refs, INSERT_ROWS_MAX) {
            let params: Vec<Value> = chunk.iter().map(|r| t(r)).collect();
            let sql = format!(
                "DELETE FROM postings WHERE reference IN ({})",
                list(1, chunk.len())
            );
            self.conn.execute(&sql, &params)?;
        }
        self.insert_postings(summaries)?;
        Ok(())
    }

    fn prune_payments(&mut self, keys: &[(WalletId, Hash32)]) -> Result<(), StoreError> {
        for (p, h) in keys {
            let entries = self.conn.execute(
                "UPDATE entries SET payee = NULL, amount = 0, time = 0, bytes = $3, recorded = 0, pruned = 1 \
                 WHERE payer = $1 AND hash = $2 AND kind = 'payment'",
                &[w(p), b(&h.0), b(&[])],
            )?;
            let settlements = self.conn.execute(
                "UPDATE settlements SET payee = NULL, amount = 0, time = 0, pruned = 1 \
                 WHERE payer = $1 AND hash = $2 AND delivery <> 0",
                &[w(p), b(&h.0)],
            )?;
            if entries != 1 || settlements != 1 {
                return Err(StoreError::Conflict(format!(
                    "payment {} of {p} is not a settled, delivered payment",
                    h.to_hex()
                )));
            }
            // A closed case about it keeps its kind, decision and what it
            // paid, not its evidence (the bundle names the payee).
            self.conn.execute(
                "UPDATE cases SET bundle = $3, entry = NULL, amount = 0 \
                 WHERE payer = $1 AND entry = $2 AND state IN ('resolved', 'rejected')",
                &[w(p), b(&h.0), b(&[])],
            )?;
        }
        Ok(())
    }

    fn pruned_returned(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError> {
        let pairs: Vec<(Value, Value)> = keys.iter().map(|(p, h)| (w(p), b(&h.0))).collect();
        self.by_pairs(
            "SELECT payer, hash FROM settlements WHERE delivery = 2 AND pruned = 1 AND",
            ("payer", "hash"),
            &pairs,
            |r| Ok((wallet(&r[0])?, hash(&r[1])?)),
        )
    }

    fn postings_of_account(
        &mut self,
        account: &str,
        limit: u32,
    ) -> Result<Vec<StoredPosting>, StoreError> {
        self.conn
            .query(
                &format!(
                    "SELECT {POSTING_COLUMNS} FROM postings WHERE debit = $1 OR credit = $1 ORDER BY id LIMIT $2"
                ),
                &[t(account), Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| stored_posting_row(r))
            .collect()
    }

    fn settlements_of(
        &mut self,
        wl: &WalletId,
        limit: u32,
    ) -> Result<Vec<SettlementRecord>, StoreError> {
        self.conn
            .query(
                "SELECT payer, hash, payee, amount, time, delivery, pruned FROM settlements \
                 WHERE payer = $1 OR payee = $1 ORDER BY time, payer, hash LIMIT $2",
                &[w(wl), Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| {
                Ok(SettlementRecord {
                    payer: wallet(&r[0])?,
                    hash: hash(&r[1])?,
                    payee: opt_wallet(&r[2])?,
                    amount: int(&r[3])?,
                    time: UnixSeconds(uint(&r[4])?),
                    delivery: offpay_issuer::store::Delivery::from_code(int(&r[5])?)
                        .ok_or_else(|| corrupt("delivery"))?,
                    pruned: int(&r[6])? != 0,
                })
            })
            .collect()
    }

    fn idempotent(&mut self, key: &str) -> Result<Option<(Hash32, Vec<u8>)>, StoreError> {
        match self.one(
            "SELECT request, response FROM idempotency WHERE key = $1",
            &[t(key)],
        )? {
            Some(r) => Ok(Some((hash(&r[0])?, bytes(&r[1])?))),
            None => Ok(None),
        }
    }

    fn insert_idempotent(
        &mut self,
        key: &str,
        request: &Hash32,
        response: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO idempotency (key, request, response, time) VALUES ($1, $2, $3, $4)",
            &[t(key), b(&request.0), b(response), time(now)?],
        )?;
        Ok(())
    }

    fn settlement(
        &mut self,
        payer: &WalletId,
        h: &Hash32,
    ) -> Result<Option<SettlementRecord>, StoreError> {
        self.db_settlement(payer, h)
    }
    fn entries_from(
        &mut self,
        payer: &WalletId,
        from: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<EntryRecord>, StoreError> {
        self.db_entries_from(payer, from, limit)
    }
    fn revocations_of(&mut self, wl: &WalletId) -> Result<Vec<RevocationRecord>, StoreError> {
        self.db_revocations_of(wl)
    }
    fn checkpoint_covering(
        &mut self,
        wl: &WalletId,
        seq: u64,
    ) -> Result<Option<CheckpointRecord>, StoreError> {
        self.db_checkpoint_covering(wl, seq)
    }
    fn insert_case(&mut self, c: &CaseRecord) -> Result<(), StoreError> {
        self.db_insert_case(c)
    }
    fn case(&mut self, id: u64, for_update: bool) -> Result<Option<CaseRecord>, StoreError> {
        self.db_case(id, for_update)
    }
    fn update_case(&mut self, c: &CaseRecord) -> Result<(), StoreError> {
        self.db_update_case(c)
    }
    fn cases(
        &mut self,
        state: Option<CaseState>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        self.db_cases(state, after, limit)
    }
    fn active_case_on(
        &mut self,
        payer: &WalletId,
        seq: Option<u64>,
    ) -> Result<Option<u64>, StoreError> {
        self.db_active_case_on(payer, seq)
    }
    fn insert_case_event(&mut self, e: &CaseEvent) -> Result<(), StoreError> {
        self.db_insert_case_event(e)
    }
    fn case_events(&mut self, id: u64) -> Result<Vec<CaseEvent>, StoreError> {
        self.db_case_events(id)
    }
    fn held_by_cases(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError> {
        self.db_held_by_cases(keys)
    }
    fn note_case_window_closed(
        &mut self,
        keys: &[(WalletId, Hash32)],
        at: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.db_note_case_window_closed(keys, at)
    }
    fn entries_held_by_cases(&mut self) -> Result<Vec<(WalletId, u64)>, StoreError> {
        self.db_entries_held_by_cases()
    }
    fn insert_case_refund(
        &mut self,
        payer: &WalletId,
        seq: u64,
        case_id: u64,
        amount: i64,
    ) -> Result<bool, StoreError> {
        self.db_insert_case_refund(payer, seq, case_id, amount)
    }
    fn case_refund(&mut self, payer: &WalletId, seq: u64) -> Result<Option<u64>, StoreError> {
        self.db_case_refund(payer, seq)
    }
    fn case_counts(&mut self) -> Result<Vec<CaseCountRow>, StoreError> {
        self.db_case_counts()
    }

    fn insert_claims(
        &mut self,
        claims: &[(ClaimRecord, Vec<u8>)],
    ) -> Result<Vec<Hash32>, StoreError> {
        let mut fresh = Vec::new();
        for (c, entry) in claims {
            let n = self.conn.execute(
                "INSERT INTO claims (id, counterparty, direction, amount, state, refusal, cycle, payer, seq, bytes, created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING",
                &[
                    b(&c.id.0),
                    b(&c.counterparty.0),
                    t(c.direction.as_str()),
                    Value::Int(c.amount),
                    t(c.state.as_str()),
                    c.refusal.as_deref().map_or(Value::Null, t),
                    c.cycle.map_or(Ok(Value::Null), i)?,
                    w(&c.payer),
                    i(c.seq)?,
                    b(entry),
                    time(c.created)?,
                ],
            )?;
            if n == 1 {
                fresh.push(c.id);
            }
        }
        Ok(fresh)
    }

    fn claims_by_ids(&mut self, ids: &[Hash32]) -> Result<Vec<ClaimRecord>, StoreError> {
        let mut out = Vec::new();
        for chunk in padded_chunks(ids, PAIRS_PER_QUERY_MAX) {
            let params: Vec<Value> = chunk.iter().map(|h| b(&h.0)).collect();
            let sql = format!(
                "SELECT {CLAIM_COLUMNS} FROM claims WHERE id IN ({})",
                list(1, params.len())
            );
            for r in self.conn.query(&sql, &params)? {
                out.push(claim_row(&r)?);
            }
        }
        Ok(out)
    }

    fn claims(&mut self, filter: &ClaimFilter) -> Result<Vec<ClaimRecord>, StoreError> {
        let mut terms: Vec<String> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(c) = &filter.counterparty {
            params.push(b(&c.0));
            terms.push(format!("counterparty = ${}", params.len()));
        }
        if let Some(st) = filter.state {
            params.push(t(st.as_str()));
            terms.push(format!("state = ${}", params.len()));
        }
        if filter.open_only {
            terms.push("cycle IS NULL".into());
        }
        let mut sql = format!("SELECT {CLAIM_COLUMNS} FROM claims");
        if !terms.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&terms.join(" AND "));
        }
        sql.push_str(" ORDER BY created, id");
        if filter.limit > 0 {
            params.push(Value::Int(i64::from(filter.limit)));
            sql.push_str(&format!(" LIMIT ${}", params.len()));
        }
        self.conn
            .query(&sql, &params)?
            .iter()
            .map(|r| claim_row(r))
            .collect()
    }

    fn outbox(&mut self, limit: u32) -> Result<Vec<(Hash32, Vec<u8>)>, StoreError> {
        self.conn
            .query(
                "SELECT id, bytes FROM claims WHERE state = 'outbox' ORDER BY created, id LIMIT $1",
                &[Value::Int(i64::from(limit))],
            )?
            .iter()
            .map(|r| Ok((hash(&r[0])?, bytes(&r[1])?)))
            .collect()
    }

    fn set_claim_state(
        &mut self,
        id: &Hash32,
        state: ClaimState,
        refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE claims SET state = $1, refusal = $2 WHERE id = $3",
            &[t(state.as_str()), refusal.map_or(Value::Null, t), b(&id.0)],
        )?;
        Ok(())
    }

    fn set_claims_cycle(&mut self, ids: &[Hash32], cycle: u64) -> Result<(), StoreError> {
        for chunk in ids.chunks(PAIRS_PER_QUERY_MAX) {
            let mut params: Vec<Value> = vec![i(cycle)?];
            params.extend(chunk.iter().map(|h| b(&h.0)));
            let sql = format!(
                "UPDATE claims SET cycle = $1 WHERE cycle IS NULL AND id IN ({})",
                list(2, chunk.len())
            );
            self.conn.execute(&sql, &params)?;
        }
        Ok(())
    }

    fn claim_sums(&mut self) -> Result<Vec<ClaimSums>, StoreError> {
        self.conn
            .query(
                "SELECT counterparty, \
                   CAST(COALESCE(SUM(CASE WHEN direction = 'receivable' AND cycle IS NULL THEN amount ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN direction = 'payable' AND cycle IS NULL THEN amount ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN direction = 'receivable' THEN amount ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN direction = 'payable' THEN amount ELSE 0 END), 0) AS BIGINT), \
                   MIN(CASE WHEN cycle IS NULL THEN created END) \
                 FROM claims GROUP BY counterparty ORDER BY counterparty",
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(ClaimSums {
                    counterparty: issuer(&r[0])?,
                    open_receivable: i128::from(int(&r[1])?),
                    open_payable: i128::from(int(&r[2])?),
                    all_receivable: i128::from(int(&r[3])?),
                    all_payable: i128::from(int(&r[4])?),
                    oldest_open: match &r[5] {
                        Value::Null => None,
                        v => Some(UnixSeconds(uint(v)?)),
                    },
                })
            })
            .collect()
    }

    fn claim_refusal(&mut self, id: &Hash32) -> Result<Option<String>, StoreError> {
        self.one("SELECT code FROM claim_refusals WHERE id = $1", &[b(&id.0)])?
            .map(|r| text(&r[0]))
            .transpose()
    }

    fn insert_claim_refusal(
        &mut self,
        id: &Hash32,
        code: &str,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO claim_refusals (id, code, bytes, time) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
            &[b(&id.0), t(code), b(bytes), time(now)?],
        )?;
        Ok(())
    }

    fn statement(&mut self, cycle: u64) -> Result<Option<StatementRecord>, StoreError> {
        self.one(
            "SELECT cycle, hash, net, bytes, posted FROM statements WHERE cycle = $1",
            &[i(cycle)?],
        )?
        .map(|r| {
            Ok(StatementRecord {
                cycle: uint(&r[0])?,
                hash: hash(&r[1])?,
                net: int(&r[2])?,
                bytes: bytes(&r[3])?,
                posted: UnixSeconds(uint(&r[4])?),
            })
        })
        .transpose()
    }

    fn insert_statement(&mut self, s: &StatementRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO statements (cycle, hash, net, bytes, posted) VALUES ($1, $2, $3, $4, $5)",
            &[
                i(s.cycle)?,
                b(&s.hash.0),
                Value::Int(s.net),
                b(&s.bytes),
                time(s.posted)?,
            ],
        )?;
        Ok(())
    }

    fn statement_totals(&mut self) -> Result<(u64, i128), StoreError> {
        match self.one(
            "SELECT CAST(COALESCE(MAX(cycle), 0) AS BIGINT), CAST(COALESCE(SUM(net), 0) AS BIGINT) FROM statements",
            &[],
        )? {
            Some(r) => Ok((uint(&r[0])?, i128::from(int(&r[1])?))),
            None => Ok((0, 0)),
        }
    }

    fn balances_of_kind(&mut self, kind: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.conn
            .query(
                "SELECT id, balance FROM accounts WHERE kind = $1 ORDER BY id",
                &[t(kind)],
            )?
            .iter()
            .map(|r| Ok((text(&r[0])?, int(&r[1])?)))
            .collect()
    }
}
