//! The scheme's storage contract: what [`crate::Scheme`] needs from a
//! database, implemented once in portable SQL by `offpay-store`
//! (`src/scheme.rs`, SQLite and PostgreSQL). Every method runs inside one
//! transaction ([`SchemeTx`]); dropping it without `commit` rolls back.

use core::fmt;

use offpay_protocol::{Hash32, IssuerId, UnixSeconds, WalletId};

/// A database failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeStoreError {
    /// A concurrent transaction won (serialization failure, deadlock, unique
    /// race): the whole operation may be retried.
    Conflict(String),
    /// A unique key already exists.
    Duplicate(String),
    /// The database failed.
    Database(String),
    /// A stored value does not decode.
    Corrupt(String),
}

impl SchemeStoreError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SchemeStoreError::Conflict(_) => "conflict",
            SchemeStoreError::Duplicate(_) => "duplicate",
            SchemeStoreError::Database(_) => "database",
            SchemeStoreError::Corrupt(_) => "corrupt",
        }
    }
}

impl fmt::Display for SchemeStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeStoreError::Conflict(d)
            | SchemeStoreError::Duplicate(d)
            | SchemeStoreError::Database(d)
            | SchemeStoreError::Corrupt(d) => write!(f, "{}: {d}", self.code()),
        }
    }
}

impl std::error::Error for SchemeStoreError {}

/// An admitted issuer's status, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredStatus {
    /// Active.
    Active,
    /// Suspended (certificateHold on the issuer CRL).
    Suspended,
    /// Revoked (final).
    Revoked,
}

impl StoredStatus {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            StoredStatus::Active => "active",
            StoredStatus::Suspended => "suspended",
            StoredStatus::Revoked => "revoked",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<StoredStatus> {
        Some(match s {
            "active" => StoredStatus::Active,
            "suspended" => StoredStatus::Suspended,
            "revoked" => StoredStatus::Revoked,
            _ => return None,
        })
    }
}

/// An admitted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerRecord {
    /// Its id (of its CA certificate's subject).
    pub id: IssuerId,
    /// Its code (the CA certificate's commonName).
    pub code: String,
    /// Its CA certificate, issued by the root.
    pub ca_cert: Vec<u8>,
    /// The CA certificate's serial number (unique in the scheme).
    pub serial: u64,
    /// Status.
    pub status: StoredStatus,
    /// When the status was last set (the revocation date on the issuer CRL).
    pub status_time: UnixSeconds,
    /// Directory version of the entry's last change.
    pub changed: u64,
    /// SHA-256 of the issuer's bearer token secret.
    pub token_hash: Hash32,
    /// The issuer's latest CRL (DER), signed by its CA.
    pub crl: Option<Vec<u8>>,
    /// That CRL's number (0 = none).
    pub crl_number: u64,
    /// When it was admitted.
    pub admitted: UnixSeconds,
}

/// One party's side of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The party does not hold it yet (it is in its inbox).
    None,
    /// The party submitted it.
    Submitted,
    /// The party acknowledged it from its inbox (accepted or already known).
    Acked,
    /// The party refused it on acknowledgement: the claim is disputed.
    Refused,
}

impl Side {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::None => "none",
            Side::Submitted => "submitted",
            Side::Acked => "acked",
            Side::Refused => "refused",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<Side> {
        Some(match s {
            "none" => Side::None,
            "submitted" => Side::Submitted,
            "acked" => Side::Acked,
            "refused" => Side::Refused,
            _ => return None,
        })
    }
    /// The party holds the claim (it counts for netting on this side).
    pub fn holds(self) -> bool {
        matches!(self, Side::Submitted | Side::Acked)
    }
}

/// Which party of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    /// The payer's issuer (the debtor).
    Payer,
    /// The payee's issuer (the creditor).
    Payee,
}

/// A claim: one payment entry between wallets of two issuers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The entry hash.
    pub id: Hash32,
    /// The payer's issuer (owes the amount).
    pub payer_issuer: IssuerId,
    /// The payee's issuer (is owed the amount).
    pub payee_issuer: IssuerId,
    /// The paying wallet.
    pub payer: WalletId,
    /// The payer's sequence number.
    pub seq: u64,
    /// The paid wallet.
    pub payee: WalletId,
    /// Minor units, positive.
    pub amount: i64,
    /// The payer TA's time of payment.
    pub time: UnixSeconds,
    /// The signed payment.
    pub bytes: Vec<u8>,
    /// The payer's issuer's side.
    pub payer_side: Side,
    /// The payee's issuer's side.
    pub payee_side: Side,
    /// Why the payer's issuer refused it, if it did.
    pub payer_refusal: Option<String>,
    /// Why the payee's issuer refused it, if it did.
    pub payee_refusal: Option<String>,
    /// The cycle it was netted in.
    pub cycle: Option<u64>,
    /// When the scheme first saw it.
    pub created: UnixSeconds,
    /// When a side last changed.
    pub updated: UnixSeconds,
}

impl ClaimRecord {
    /// The side of `party`.
    pub fn side(&self, party: Party) -> Side {
        match party {
            Party::Payer => self.payer_side,
            Party::Payee => self.payee_side,
        }
    }
    /// Which party `issuer` is, if any.
    pub fn party(&self, issuer: &IssuerId) -> Option<Party> {
        if *issuer == self.payer_issuer {
            Some(Party::Payer)
        } else if *issuer == self.payee_issuer {
            Some(Party::Payee)
        } else {
            None
        }
    }
    /// Both parties hold it: it counts for netting.
    pub fn held_by_both(&self) -> bool {
        self.payer_side.holds() && self.payee_side.holds()
    }
    /// A party refused it.
    pub fn disputed(&self) -> bool {
        self.payer_side == Side::Refused || self.payee_side == Side::Refused
    }
}

/// Claims by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimCounts {
    /// In a cycle but not held by both parties, or disputed: must be 0.
    pub netted_not_held: u64,
    /// Held by both parties, not disputed, in no cycle yet.
    pub open: u64,
    /// One party does not hold it yet (and none disputes it).
    pub waiting: u64,
    /// A party refused it.
    pub disputed: u64,
}

/// A claim netted in a cycle, as the invariants read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NettedClaim {
    /// The cycle.
    pub cycle: u64,
    /// The payer's issuer (debtor).
    pub payer_issuer: IssuerId,
    /// The payee's issuer (creditor).
    pub payee_issuer: IssuerId,
    /// Minor units.
    pub amount: i64,
    /// The claim id.
    pub id: Hash32,
}

/// A refused submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalRecord {
    /// Unique id (time then random).
    pub id: String,
    /// The authenticated issuer that submitted it.
    pub submitter: IssuerId,
    /// The entry hash, when the bytes decoded far enough.
    pub claim: Option<Hash32>,
    /// SHA-256 of the submitted bytes.
    pub bytes_hash: Hash32,
    /// Their length.
    pub bytes_len: u64,
    /// The refusal code.
    pub code: String,
    /// Its detail.
    pub detail: String,
    /// When.
    pub time: UnixSeconds,
}

/// A closed cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleRecord {
    /// Its number (1, 2, ...).
    pub cycle: u64,
    /// When it was closed.
    pub time: UnixSeconds,
    /// Claims netted.
    pub claims: u64,
    /// Their gross amount.
    pub gross: i64,
}

/// A line of a stored statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRecord {
    /// The cycle.
    pub cycle: u64,
    /// The statement's issuer.
    pub issuer: IssuerId,
    /// The counterparty.
    pub counterparty: IssuerId,
    /// What the counterparty owes the issuer (its wallets paid ours).
    pub receivable: i64,
    /// What the issuer owes the counterparty.
    pub payable: i64,
    /// Claims in the line.
    pub claims: u64,
    /// `statement_digest` of the line's claim ids.
    pub digest: Hash32,
}

/// A stored statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRecord {
    /// The cycle.
    pub cycle: u64,
    /// The issuer.
    pub issuer: IssuerId,
    /// Receivable - payable over every line.
    pub net: i64,
    /// The root-signed `SettlementStatement`.
    pub signed: Vec<u8>,
}

/// Which claims to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimQuery {
    /// Only claims this issuer is a party to.
    pub issuer: Option<IssuerId>,
    /// Only claims of this cycle (`Some(0)`: not netted yet).
    pub cycle: Option<u64>,
    /// Only disputed claims.
    pub disputed: bool,
    /// At most this many, oldest first.
    pub limit: usize,
}

/// A database holding a scheme.
pub trait SchemeStore: Send + Sync {
    /// A read-write transaction.
    fn begin_scheme(&self) -> Result<Box<dyn SchemeTx + '_>, SchemeStoreError>;
    /// A transaction that only reads (on SQLite a snapshot that does not
    /// take the write lock). By default a read-write one.
    fn begin_scheme_read(&self) -> Result<Box<dyn SchemeTx + '_>, SchemeStoreError> {
        self.begin_scheme()
    }
    /// "sqlite" or "postgres".
    fn scheme_backend(&self) -> &'static str;
}

/// One transaction.
pub trait SchemeTx {
    /// Commit.
    fn commit(self: Box<Self>) -> Result<(), SchemeStoreError>;
    /// Serialize with every other locking transaction of the scheme
    /// (admissions, status changes, CRLs, cycles): a row lock on PostgreSQL,
    /// nothing on SQLite (one writer).
    fn lock_scheme(&mut self) -> Result<(), SchemeStoreError>;

    /// A setting.
    fn setting(&mut self, key: &str) -> Result<Option<Vec<u8>>, SchemeStoreError>;
    /// Set a setting.
    fn set_setting(&mut self, key: &str, value: &[u8]) -> Result<(), SchemeStoreError>;

    /// Insert an issuer (`Duplicate` if its id, code or serial exists).
    fn insert_issuer(&mut self, r: &IssuerRecord) -> Result<(), SchemeStoreError>;
    /// An issuer by id.
    fn issuer(&mut self, id: &IssuerId) -> Result<Option<IssuerRecord>, SchemeStoreError>;
    /// An issuer by code.
    fn issuer_by_code(&mut self, code: &str) -> Result<Option<IssuerRecord>, SchemeStoreError>;
    /// Every issuer, by admission then id.
    fn issuers(&mut self) -> Result<Vec<IssuerRecord>, SchemeStoreError>;
    /// Set an issuer's status.
    fn set_issuer_status(
        &mut self,
        id: &IssuerId,
        status: StoredStatus,
        time: UnixSeconds,
        changed: u64,
    ) -> Result<(), SchemeStoreError>;
    /// Set an issuer's CRL.
    fn set_issuer_crl(
        &mut self,
        id: &IssuerId,
        crl: &[u8],
        number: u64,
        changed: u64,
    ) -> Result<(), SchemeStoreError>;

    /// Store a directory version (`Duplicate` if it exists).
    fn insert_directory(
        &mut self,
        version: u64,
        time: UnixSeconds,
        signed: &[u8],
    ) -> Result<(), SchemeStoreError>;
    /// The latest directory version and its signed bytes.
    fn latest_directory(&mut self) -> Result<Option<(u64, Vec<u8>)>, SchemeStoreError>;
    /// Delete the stored directory versions below `version`; how many.
    fn prune_directory(&mut self, version: u64) -> Result<u64, SchemeStoreError>;

    /// Claims by id (those that exist).
    fn claims_by_id(&mut self, ids: &[Hash32]) -> Result<Vec<ClaimRecord>, SchemeStoreError>;
    /// Insert a new claim (`Duplicate`/`Conflict` if it exists).
    fn insert_claim(&mut self, r: &ClaimRecord) -> Result<(), SchemeStoreError>;
    /// Set `party`'s side of claim `id` if it is still `from`; whether it changed.
    fn set_side(
        &mut self,
        id: &Hash32,
        party: Party,
        from: Side,
        to: Side,
        refusal: Option<&str>,
        now: UnixSeconds,
    ) -> Result<bool, SchemeStoreError>;
    /// Claims `issuer` is a party to whose side is `none`, oldest first.
    fn inbox(
        &mut self,
        issuer: &IssuerId,
        limit: usize,
    ) -> Result<Vec<ClaimRecord>, SchemeStoreError>;
    /// Claims held by both parties, in no cycle, not disputed (locked on PostgreSQL).
    fn claims_to_net(&mut self) -> Result<Vec<ClaimRecord>, SchemeStoreError>;
    /// Put claims in a cycle (only those in none yet); how many moved.
    fn assign_cycle(&mut self, ids: &[Hash32], cycle: u64) -> Result<u64, SchemeStoreError>;
    /// Claims as asked.
    fn claims(&mut self, q: &ClaimQuery) -> Result<Vec<ClaimRecord>, SchemeStoreError>;
    /// Claim counts by state, in SQL (the invariants' input).
    fn claim_counts(&mut self) -> Result<ClaimCounts, SchemeStoreError>;
    /// Every netted claim: the invariants' input.
    fn netted_claims(&mut self) -> Result<Vec<NettedClaim>, SchemeStoreError>;

    /// Record a refused submission.
    fn insert_refusal(&mut self, r: &RefusalRecord) -> Result<(), SchemeStoreError>;
    /// Refusals, newest first (optionally of one submitter).
    fn refusals(
        &mut self,
        submitter: Option<&IssuerId>,
        limit: usize,
    ) -> Result<Vec<RefusalRecord>, SchemeStoreError>;

    /// Store a closed cycle.
    fn insert_cycle(&mut self, r: &CycleRecord) -> Result<(), SchemeStoreError>;
    /// Every cycle, in order.
    fn cycles(&mut self) -> Result<Vec<CycleRecord>, SchemeStoreError>;
    /// Store a statement and its lines.
    fn insert_statement(
        &mut self,
        s: &StatementRecord,
        lines: &[LineRecord],
    ) -> Result<(), SchemeStoreError>;
    /// An issuer's statements of cycles after `after`, in order, at most `limit`.
    fn statements(
        &mut self,
        issuer: &IssuerId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StatementRecord>, SchemeStoreError>;
    /// Every statement (net figures only; `signed` empty), for the invariants.
    fn statement_nets(&mut self) -> Result<Vec<StatementRecord>, SchemeStoreError>;
    /// Every statement line.
    fn statement_lines(&mut self) -> Result<Vec<LineRecord>, SchemeStoreError>;
    /// The ids of the claims of `cycle` that `issuer` is a party to, sorted.
    fn cycle_claims(
        &mut self,
        issuer: &IssuerId,
        cycle: u64,
    ) -> Result<Vec<Hash32>, SchemeStoreError>;
}
