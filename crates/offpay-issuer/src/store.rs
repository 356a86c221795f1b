//! The storage contract of the issuer: what the domain needs from a database.
//!
//! One [`Tx`] is one database transaction: everything a sync, a load or a
//! redeem writes is committed together or not at all. Implementations live in
//! `offpay-store` (SQLite and PostgreSQL); they run the same SQL and the same
//! test suite.

use core::fmt;

use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Hash32, IssuerId, Suite, UnixSeconds, WalletId};

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The database refused or failed; the message is for the operator's log.
    Database(String),
    /// The transaction lost a race (serialization failure, deadlock, busy): retry it.
    Conflict(String),
    /// A unique key already exists.
    Duplicate(String),
    /// Stored data fails its own invariants.
    Corrupt(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Database(m) => write!(f, "database error: {m}"),
            StoreError::Conflict(m) => write!(f, "transaction conflict: {m}"),
            StoreError::Duplicate(m) => write!(f, "duplicate key: {m}"),
            StoreError::Corrupt(m) => write!(f, "stored data corrupt: {m}"),
        }
    }
}
impl std::error::Error for StoreError {}

/// Which book a posting belongs to. The general ledger holds online money
/// (customers, the offline pool, the guarantee fund, the outside world); the
/// offline book splits the pool into one sub-account per wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Book {
    /// The general ledger.
    General,
    /// The offline sub-ledger (wallet sub-accounts against `issuance`).
    Offline,
}

impl Book {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Book::General => "gl",
            Book::Offline => "offline",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<Book> {
        match s {
            "gl" => Some(Book::General),
            "offline" => Some(Book::Offline),
            _ => None,
        }
    }
}

/// One balanced, immutable posting: `amount` moves from `debit` to `credit`.
/// An account's balance is its credits minus its debits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    /// The book.
    pub book: Book,
    /// Account debited.
    pub debit: String,
    /// Account credited.
    pub credit: String,
    /// Minor units, positive.
    pub amount: i64,
    /// What caused it: "deposit", "withdraw", "load", "settle", "redeem", "clawback", "guarantee", "refund".
    pub kind: &'static str,
    /// The cause's id (payment id, voucher, idempotency key...).
    pub reference: String,
    /// Time.
    pub time: UnixSeconds,
}

/// A wallet's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalletState {
    /// Pays and receives.
    Active,
    /// Locked by the issuer (rollback, broken chain, operator); may sync.
    Locked,
    /// Revoked (double spend, operator, or retired as lost or broken): its
    /// certificate is on the CRL.
    Revoked,
    /// Closed: revoked, and no payment of it can arrive any more within the
    /// rules (its certificate expired and the payees' offline limit passed);
    /// its sub-account was paid out, and is kept at zero from then on.
    Closed,
}

impl WalletState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WalletState::Active => "active",
            WalletState::Locked => "locked",
            WalletState::Revoked => "revoked",
            WalletState::Closed => "closed",
        }
    }
    /// Revoked or closed: its certificate is on the CRL for good.
    pub fn is_revoked(self) -> bool {
        matches!(self, WalletState::Revoked | WalletState::Closed)
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<WalletState> {
        match s {
            "active" => Some(WalletState::Active),
            "locked" => Some(WalletState::Locked),
            "revoked" => Some(WalletState::Revoked),
            "closed" => Some(WalletState::Closed),
            _ => None,
        }
    }
}

/// Why a wallet was retired by its customer or the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retirement {
    /// The device was lost or stolen: whoever holds it may still pay until
    /// its certificate expires.
    Lost,
    /// The device is broken (tampered vault, failed counter) but was handed in
    /// or still opens; retired the same way.
    Broken,
}

impl Retirement {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Retirement::Lost => "lost",
            Retirement::Broken => "broken",
        }
    }
    /// From the stored (or requested) name.
    pub fn parse(s: &str) -> Option<Retirement> {
        match s {
            "lost" => Some(Retirement::Lost),
            "broken" => Some(Retirement::Broken),
            _ => None,
        }
    }
}

/// A settlement the payee's TA has not been seen to hold: settled from its
/// payer's report, never carried by a report of the payee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSettlement {
    /// The payer.
    pub payer: WalletId,
    /// The entry hash.
    pub hash: Hash32,
    /// The payee.
    pub payee: WalletId,
    /// Minor units.
    pub amount: i64,
    /// When it was settled (issuer time).
    pub time: UnixSeconds,
}

/// A settlement to record: entry hash, payer, payee (payments), amount, and
/// whether the payee's TA is known to hold it.
pub type NewSettlement = (Hash32, WalletId, Option<WalletId>, i64, bool);

/// A settled payment the retention rule may prune: delivered or returned,
/// both wallets checkpointed past it, settled at or before the cut-off, in no
/// double-spend record and no claim on another issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionCandidate {
    /// The payer.
    pub payer: WalletId,
    /// The entry's seq.
    pub seq: u64,
    /// The entry hash (payment id).
    pub hash: Hash32,
    /// The payee.
    pub payee: WalletId,
    /// When it was settled.
    pub settled: UnixSeconds,
}

/// A posting as stored, for the retention fold and the data-subject export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPosting {
    /// The book.
    pub book: Book,
    /// Account debited.
    pub debit: String,
    /// Account credited.
    pub credit: String,
    /// Minor units, positive.
    pub amount: i64,
    /// Its kind.
    pub kind: String,
    /// Its reference.
    pub reference: String,
    /// Time.
    pub time: UnixSeconds,
}

/// A stored enrollment token (the token itself is kept as its SHA-256 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollmentTokenRecord {
    /// The customer whose wallet it enrolls (the sweep's account, for a terminal).
    pub customer: String,
    /// The profile the wallet's certificate will name.
    pub profile: WalletProfile,
    /// When it stops being accepted.
    pub expires: UnixSeconds,
    /// The wallet it enrolled, once used.
    pub wallet: Option<WalletId>,
}

/// A wallet as the issuer knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletRecord {
    /// The wallet.
    pub id: WalletId,
    /// The customer who owns it (its online account is `customer:<id>`).
    pub customer: String,
    /// Current certificate (DER).
    pub cert_der: Vec<u8>,
    /// Its serial.
    pub cert_serial: u64,
    /// Its expiry.
    pub cert_not_after: UnixSeconds,
    /// Lifecycle state.
    pub state: WalletState,
    /// Why it is locked or revoked.
    pub reason: Option<String>,
    /// Load vouchers issued so far (the last load seq).
    pub load_seq: u64,
    /// Last checkpoint number issued.
    pub checkpoint: u64,
    /// Last report seq processed.
    pub report_seq: u64,
    /// Policy epoch the wallet was last given.
    pub policy_epoch: u32,
    /// The operator unlocked it: the next sync response carries the unlock.
    pub unlock_pending: bool,
    /// Clawed back from the customer for this wallet's double spends, less
    /// what later settlements refunded to the customer.
    pub clawed_back: i64,
    /// Charged to the guarantee fund for this wallet's double spends, less
    /// what later settlements refunded to the fund.
    pub guaranteed: i64,
    /// Enrollment time.
    pub created: UnixSeconds,
    /// The generation of the current certificate's key (0: the first;
    /// +1 at each re-key).
    pub key_generation: u32,
    /// The certificate of the previous key (`None` until a re-key): the
    /// wallet's reports and redeems below the new key's first seq are signed by it.
    pub prev_cert_der: Option<Vec<u8>>,
    /// A re-key asked for and not completed: the suite of the new key.
    pub rekey_suite: Option<Suite>,
    /// Retired by its customer or the operator, and why.
    pub retired: Option<Retirement>,
    /// When it was closed (state [`WalletState::Closed`]).
    pub closed_at: Option<UnixSeconds>,
}

/// One outgoing chain entry, recorded once under (payer, seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRecord {
    /// The wallet whose chain it is.
    pub payer: WalletId,
    /// Its seq.
    pub seq: u64,
    /// Entry hash (payment id).
    pub hash: Hash32,
    /// Previous entry hash.
    pub prev: Hash32,
    /// "payment" or "redeem".
    pub kind: &'static str,
    /// Payee wallet, for payments.
    pub payee: Option<WalletId>,
    /// Minor units.
    pub amount: i64,
    /// Payer TA time.
    pub time: UnixSeconds,
    /// The signed envelope (empty once pruned by the retention rule: then
    /// only payer, seq, hash, prev and kind are kept).
    pub bytes: Vec<u8>,
    /// When the issuer first saw it.
    pub recorded: UnixSeconds,
}

impl EntryRecord {
    /// Pruned by the retention rule: its bytes, payee and amount are gone.
    pub fn is_pruned(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// A checkpoint as stored (the issuer's signed statement of a wallet's state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// The wallet.
    pub wallet: WalletId,
    /// Its number (0 is the implicit genesis).
    pub number: u64,
    /// Chain seq.
    pub seq: u64,
    /// Chain head.
    pub head: Hash32,
    /// Balance minor units.
    pub balance: i64,
    /// Load seq.
    pub load_seq: u64,
    /// Time.
    pub time: UnixSeconds,
}

/// A detected double spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleSpendRecord {
    /// The cheating wallet.
    pub payer: WalletId,
    /// The conflicting seq.
    pub seq: u64,
    /// The two entry hashes, sorted.
    pub entries: [Hash32; 2],
    /// The encoded [`offpay_protocol::messages::DoubleSpendProof`].
    pub proof: Vec<u8>,
    /// When detected.
    pub detected: UnixSeconds,
}

/// A revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRecord {
    /// Certificate serial.
    pub serial: u64,
    /// The wallet.
    pub wallet: WalletId,
    /// RFC 5280 reason code.
    pub reason_code: u8,
    /// Why, in words.
    pub reason: String,
    /// When.
    pub time: UnixSeconds,
    /// The revoked certificate's notAfter: it leaves the CRL once expired
    /// (`None`: recorded before expiries were kept, filled in at the next CRL).
    pub not_after: Option<UnixSeconds>,
    /// The number of the first CRL that listed it (`None`: none yet).
    pub crl_added: Option<u64>,
    /// The number of the CRL that dropped it (`None`: still listed).
    pub crl_removed: Option<u64>,
}

/// Sums over the books, for the invariants.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LedgerTotals {
    /// Sum of all general-ledger balances (must be 0).
    pub general_sum: i128,
    /// Sum of all offline-book balances (must be 0).
    pub offline_sum: i128,
    /// The pool account's balance (general ledger).
    pub pool: i128,
    /// Sum of the wallet sub-accounts (offline book).
    pub wallets: i128,
    /// The external account's balance: minus the money that came in from outside.
    pub external: i128,
    /// The guarantee account's balance.
    pub guarantee: i128,
    /// Sum of customer accounts.
    pub customers: i128,
    /// Accounts whose cached balance differs from the sum of their postings.
    pub drifted_accounts: Vec<String>,
    /// Deposits minus withdrawals, summed from postings.
    pub net_external_postings: i128,
}

/// Which way a claim between two issuers runs, seen from this issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimDirection {
    /// A wallet of the counterparty paid one of ours: the counterparty owes us.
    Receivable,
    /// One of our wallets paid a wallet of the counterparty: we owe it.
    Payable,
}

impl ClaimDirection {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimDirection::Receivable => "receivable",
            ClaimDirection::Payable => "payable",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<ClaimDirection> {
        match s {
            "receivable" => Some(ClaimDirection::Receivable),
            "payable" => Some(ClaimDirection::Payable),
            _ => None,
        }
    }
}

/// Where a claim is in its life at this issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClaimState {
    /// Written by a sync; not yet submitted to the scheme.
    Outbox,
    /// Submitted; the scheme accepted it (or already knew it).
    Submitted,
    /// Received from the scheme (the other party submitted it) and acknowledged.
    Known,
    /// Submitted; the scheme refused it (disputed: listed for operators).
    Refused,
}

impl ClaimState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Outbox => "outbox",
            ClaimState::Submitted => "submitted",
            ClaimState::Known => "known",
            ClaimState::Refused => "refused",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<ClaimState> {
        match s {
            "outbox" => Some(ClaimState::Outbox),
            "submitted" => Some(ClaimState::Submitted),
            "known" => Some(ClaimState::Known),
            "refused" => Some(ClaimState::Refused),
            _ => None,
        }
    }
}

/// A claim between this issuer and another one: one cross-issuer payment,
/// identified by its entry hash, whose postings this issuer has made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    /// The payment's entry hash.
    pub id: Hash32,
    /// The other issuer.
    pub counterparty: IssuerId,
    /// Which way it runs.
    pub direction: ClaimDirection,
    /// Minor units, positive.
    pub amount: i64,
    /// Its state.
    pub state: ClaimState,
    /// The scheme's refusal code, when refused.
    pub refusal: Option<String>,
    /// The settlement cycle it was posted in.
    pub cycle: Option<u64>,
    /// The payer wallet (the entry is recorded under (payer, seq)).
    pub payer: WalletId,
    /// The entry's seq.
    pub seq: u64,
    /// When it was written.
    pub created: UnixSeconds,
}

/// Which claims to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFilter {
    /// Only with this counterparty.
    pub counterparty: Option<IssuerId>,
    /// Only in this state.
    pub state: Option<ClaimState>,
    /// Only claims in no posted cycle.
    pub open_only: bool,
    /// At most this many (oldest first); 0 = no limit.
    pub limit: u32,
}

/// Sums of the claims with one counterparty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimSums {
    /// The counterparty.
    pub counterparty: IssuerId,
    /// Receivable claims in no posted cycle.
    pub open_receivable: i128,
    /// Payable claims in no posted cycle.
    pub open_payable: i128,
    /// Every receivable claim.
    pub all_receivable: i128,
    /// Every payable claim.
    pub all_payable: i128,
    /// Creation time of the oldest claim in no posted cycle.
    pub oldest_open: Option<UnixSeconds>,
}

/// A posted settlement statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementRecord {
    /// The cycle.
    pub cycle: u64,
    /// SHA-256 of the signed statement's payload.
    pub hash: Hash32,
    /// The net of the statement (receivable - payable), minor units.
    pub net: i64,
    /// The signed statement.
    pub bytes: Vec<u8>,
    /// When it was posted.
    pub posted: UnixSeconds,
}

/// Whether the payee's TA holds a settled payment (the `delivery` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Settled from the payer's report only.
    Pending,
    /// A report of the payee carried it, or the payee is another issuer's.
    Delivered,
    /// Returned to the payer's customer after the payee's window closed (lifecycle rule 2).
    Returned,
}

impl Delivery {
    /// Stored code.
    pub fn code(self) -> i64 {
        match self {
            Delivery::Pending => 0,
            Delivery::Delivered => 1,
            Delivery::Returned => 2,
        }
    }
    /// From the stored code.
    pub fn from_code(c: i64) -> Option<Delivery> {
        match c {
            0 => Some(Delivery::Pending),
            1 => Some(Delivery::Delivered),
            2 => Some(Delivery::Returned),
            _ => None,
        }
    }
}

/// A settlement as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettlementRecord {
    /// The payer.
    pub payer: WalletId,
    /// The entry hash.
    pub hash: Hash32,
    /// The payee (None: a redeem).
    pub payee: Option<WalletId>,
    /// Minor units.
    pub amount: i64,
    /// When it was settled (issuer time).
    pub time: UnixSeconds,
    /// Whether the payee's TA holds it.
    pub delivery: Delivery,
    /// Pruned by the retention rule (payee None, amount and time 0).
    pub pruned: bool,
}

/// What a customer says about a payment or a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseKind {
    /// "I paid but the merchant says no."
    PaidNotReceived,
    /// "Not my payment" (on a payment, or on a wallet).
    NotMyPayment,
    /// "The merchant refused but I was debited."
    RefusedButDebited,
}

impl CaseKind {
    /// Every kind.
    pub const ALL: [CaseKind; 3] = [
        CaseKind::PaidNotReceived,
        CaseKind::NotMyPayment,
        CaseKind::RefusedButDebited,
    ];
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::PaidNotReceived => "paid_not_received",
            CaseKind::NotMyPayment => "not_my_payment",
            CaseKind::RefusedButDebited => "refused_but_debited",
        }
    }
    /// From the stored (or requested) name.
    pub fn parse(s: &str) -> Option<CaseKind> {
        CaseKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where a case is: open -> decided -> resolved (or rejected).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CaseState {
    /// Opened; its evidence attached.
    Open,
    /// Decided by the liability rules; nothing posted yet.
    Decided,
    /// Resolved: the decision's postings (if any) are made.
    Resolved,
    /// Closed with the customer's claim rejected by the rules; nothing posted.
    Rejected,
}

impl CaseState {
    /// Every state.
    pub const ALL: [CaseState; 4] = [
        CaseState::Open,
        CaseState::Decided,
        CaseState::Resolved,
        CaseState::Rejected,
    ];
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Open => "open",
            CaseState::Decided => "decided",
            CaseState::Resolved => "resolved",
            CaseState::Rejected => "rejected",
        }
    }
    /// From the stored (or requested) name.
    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Open or decided: the case holds its payment (lifecycle does not return it).
    pub fn holds(self) -> bool {
        matches!(self, CaseState::Open | CaseState::Decided)
    }
}

/// A dispute case as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRecord {
    /// Case id (1, 2, ...).
    pub id: u64,
    /// What the customer says.
    pub kind: CaseKind,
    /// Where it is.
    pub state: CaseState,
    /// The payer of the payment, or the wallet the case is about.
    pub payer: WalletId,
    /// The payment's seq (None: a case on a wallet).
    pub seq: Option<u64>,
    /// The payment's entry hash (None: a case on a wallet).
    pub entry: Option<Hash32>,
    /// When it was opened.
    pub opened_at: UnixSeconds,
    /// Who opened it (the operator).
    pub opened_by: String,
    /// The customer's words, as the operator took them.
    pub note: String,
    /// The decision's stored name (None while open).
    pub decision: Option<String>,
    /// When it was resolved or rejected.
    pub resolved_at: Option<UnixSeconds>,
    /// The amount in dispute, minor units.
    pub amount: i64,
    /// What the resolution paid the customer, minor units.
    pub paid: i64,
    /// When a report of the payee made after its window closed did not carry
    /// the payment (lifecycle rule 2 would have returned it, had the case not held it).
    pub window_closed_at: Option<UnixSeconds>,
    /// The signed evidence bundle as of the last state change.
    pub bundle: Vec<u8>,
}

/// One state change of a case (rows are never updated or deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseEvent {
    /// The case.
    pub case_id: u64,
    /// Its number within the case (1, 2, ...).
    pub n: u64,
    /// When.
    pub at: UnixSeconds,
    /// The state before (None: the opening).
    pub from: Option<CaseState>,
    /// The state after.
    pub to: CaseState,
    /// Who.
    pub actor: String,
    /// Why.
    pub note: String,
}

/// Counts of cases by kind and state: (kind, state, count).
pub type CaseCountRow = (CaseKind, CaseState, u64);

/// A storage backend: hands out transactions.
pub trait Store: Send + Sync {
    /// Begin a transaction (IMMEDIATE on SQLite, READ COMMITTED plus row locks on PostgreSQL).
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError>;
    /// The backend's name for logs and metrics ("sqlite", "postgres").
    fn backend(&self) -> &'static str;
    /// A transaction that only reads: it takes no write lock (a snapshot on
    /// SQLite in WAL mode). Writing in it is an error or is rolled back.
    fn begin_read(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        self.begin()
    }
    /// Whether writers are serialized by the store (SQLite): the issuer then
    /// groups concurrent syncs into one transaction (see `group.rs`).
    fn single_writer(&self) -> bool {
        false
    }
}

/// One transaction. Dropping it without [`Tx::commit`] rolls it back.
pub trait Tx {
    /// Commit everything.
    fn commit(self: Box<Self>) -> Result<(), StoreError>;
    /// Mark a point that [`Tx::rollback_to_savepoint`] returns to (not nested).
    fn savepoint(&mut self) -> Result<(), StoreError>;
    /// Keep everything since the savepoint and forget it.
    fn release_savepoint(&mut self) -> Result<(), StoreError>;
    /// Undo everything since the savepoint and forget it; the transaction goes on.
    fn rollback_to_savepoint(&mut self) -> Result<(), StoreError>;

    // --- key-value settings (CA material, CRL, counters) ---
    /// A setting.
    fn setting(&mut self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Set a setting.
    fn set_setting(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Increment a named counter and return its new value (serials, CRL numbers).
    fn next_counter(&mut self, name: &str) -> Result<u64, StoreError>;

    // --- accounts and postings ---
    /// Create an account with zero balance (no-op if it exists).
    fn create_account(
        &mut self,
        id: &str,
        book: Book,
        kind: &str,
        now: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// An account's balance, if it exists.
    fn balance(&mut self, id: &str) -> Result<Option<i64>, StoreError>;
    /// Apply postings: append them and update both accounts' balances.
    /// Accounts are locked in sorted order to avoid deadlocks.
    fn post(&mut self, postings: &[Posting]) -> Result<(), StoreError>;
    /// Sums for the invariants.
    fn totals(&mut self) -> Result<LedgerTotals, StoreError>;

    // --- customers and enrollment ---
    /// Create a customer (and its account); Duplicate if it exists.
    fn create_customer(&mut self, id: &str, name: &str, now: UnixSeconds)
    -> Result<(), StoreError>;
    /// Whether a customer exists; its display name.
    fn customer(&mut self, id: &str) -> Result<Option<String>, StoreError>;
    /// Store an enrollment token (its SHA-256) for a wallet of `profile`.
    fn insert_enrollment_token(
        &mut self,
        hash: &Hash32,
        customer: &str,
        profile: WalletProfile,
        expires: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// An enrollment token.
    fn enrollment_token(
        &mut self,
        hash: &Hash32,
    ) -> Result<Option<EnrollmentTokenRecord>, StoreError>;
    /// Mark a token used by a wallet.
    fn use_enrollment_token(&mut self, hash: &Hash32, wallet: &WalletId) -> Result<(), StoreError>;

    // --- wallets ---
    /// Insert a new wallet; Duplicate if the id exists.
    fn insert_wallet(&mut self, w: &WalletRecord) -> Result<(), StoreError>;
    /// A wallet; `for_update` locks its row until commit (serializes syncs of one wallet).
    fn wallet(
        &mut self,
        id: &WalletId,
        for_update: bool,
    ) -> Result<Option<WalletRecord>, StoreError>;
    /// Update every mutable field of a wallet.
    fn update_wallet(&mut self, w: &WalletRecord) -> Result<(), StoreError>;
    /// Wallets, optionally of one customer, ordered by creation.
    fn wallets(
        &mut self,
        customer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WalletRecord>, StoreError>;
    /// Remember a certificate issued to a wallet (for proofs after re-keying).
    fn insert_certificate(
        &mut self,
        serial: u64,
        wallet: &WalletId,
        der: &[u8],
    ) -> Result<(), StoreError>;
    /// Certificates of a wallet (serial, DER).
    fn certificates_of(&mut self, wallet: &WalletId) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;

    // --- vouchers ---
    /// Store an issued voucher.
    fn insert_voucher(
        &mut self,
        wallet: &WalletId,
        load_seq: u64,
        amount: i64,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// Vouchers of a wallet with load seq in `from..=to`: (load seq, amount, bytes).
    fn vouchers(
        &mut self,
        wallet: &WalletId,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, i64, Vec<u8>)>, StoreError>;

    // --- chain entries and settlement ---
    /// Entries of a payer at these seqs (any order).
    fn entries_at(
        &mut self,
        payer: &WalletId,
        seqs: &[u64],
    ) -> Result<Vec<EntryRecord>, StoreError>;
    /// Entries at these (payer, seq) keys, of any payers (any order): one round trip.
    fn entries_at_keys(&mut self, keys: &[(WalletId, u64)])
    -> Result<Vec<EntryRecord>, StoreError>;
    /// Entries whose (payer, prev) is one of these (any order): one round trip.
    fn entries_by_prevs(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<EntryRecord>, StoreError>;
    /// Which of these (payer, entry hash) are already settled.
    fn settled_keys(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError>;
    /// Which of these accounts exist.
    fn existing_accounts(&mut self, ids: &[String]) -> Result<Vec<String>, StoreError>;
    /// Which of these wallets are revoked.
    fn revoked_among(&mut self, ids: &[WalletId]) -> Result<Vec<WalletId>, StoreError>;
    /// The highest recorded seq of a payer (0 if none).
    fn max_seq(&mut self, payer: &WalletId) -> Result<u64, StoreError>;
    /// Record entries (Duplicate if (payer, seq) or (payer, prev) exists).
    fn insert_entries(&mut self, entries: &[EntryRecord]) -> Result<(), StoreError>;
    /// Which of these entry hashes are already settled.
    fn settled(&mut self, payer: &WalletId, hashes: &[Hash32]) -> Result<Vec<Hash32>, StoreError>;
    /// Mark entries settled (hash, payer, payee or None for redeem, amount,
    /// delivered: whether the payee's TA is known to hold it).
    fn insert_settlements(
        &mut self,
        s: &[NewSettlement],
        now: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// A report of the payee carried these settled entries: mark the pending
    /// ones delivered. Returns those that had been returned to their payer
    /// (the payee holds them after all: the caller credits it again), now
    /// marked delivered too.
    fn deliver(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<PendingSettlement>, StoreError>;
    /// Pending settlements to `payee` settled at or before `settled_by`,
    /// oldest first, at most `limit`.
    fn pending_to(
        &mut self,
        payee: &WalletId,
        settled_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<PendingSettlement>, StoreError>;
    /// Mark pending settlements returned to their payer.
    fn set_returned(&mut self, keys: &[(WalletId, Hash32)]) -> Result<(), StoreError>;
    /// Revoked wallets whose certificate expired at or before `not_after_by`,
    /// at most `limit`, oldest expiry first.
    fn closing_due(
        &mut self,
        not_after_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<WalletId>, StoreError>;
    /// Which of these wallets are closed.
    fn closed_among(&mut self, ids: &[WalletId]) -> Result<Vec<WalletId>, StoreError>;

    // --- checkpoints and reports ---
    /// A checkpoint of a wallet by number.
    fn checkpoint(
        &mut self,
        wallet: &WalletId,
        number: u64,
    ) -> Result<Option<CheckpointRecord>, StoreError>;
    /// Store a checkpoint.
    fn insert_checkpoint(&mut self, c: &CheckpointRecord) -> Result<(), StoreError>;
    /// A processed report: (SHA-256 of the report, response bytes).
    fn report(
        &mut self,
        wallet: &WalletId,
        report_seq: u64,
    ) -> Result<Option<(Hash32, Vec<u8>)>, StoreError>;
    /// Store a processed report and its response.
    fn insert_report(
        &mut self,
        wallet: &WalletId,
        report_seq: u64,
        hash: &Hash32,
        response: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError>;

    // --- double spends and revocation ---
    /// Store a double spend (no-op if the same pair is already stored).
    fn insert_double_spend(&mut self, d: &DoubleSpendRecord) -> Result<bool, StoreError>;
    /// Double spends, newest first, optionally of one payer.
    fn double_spends(
        &mut self,
        payer: Option<&WalletId>,
        limit: u32,
    ) -> Result<Vec<DoubleSpendRecord>, StoreError>;
    /// Revoke a certificate (no-op if already revoked).
    fn insert_revocation(&mut self, r: &RevocationRecord) -> Result<bool, StoreError>;
    /// All revocations, by serial.
    fn revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError>;
    /// The revocations the CRL lists (not dropped), by serial.
    fn listed_revocations(&mut self) -> Result<Vec<RevocationRecord>, StoreError>;
    /// Record the CRL numbered `number`, published at `now`: it adds the
    /// revocations on no CRL yet and drops the listed ones whose certificate
    /// expired before `now`.
    fn mark_crl(&mut self, number: u64, now: UnixSeconds) -> Result<(), StoreError>;
    /// What changed since the CRL numbered `base`: the revocations listed
    /// now that it did not list, by serial, and the serials it listed that
    /// were dropped since, ascending.
    fn crl_changes(&mut self, base: u64) -> Result<(Vec<RevocationRecord>, Vec<u64>), StoreError>;
    /// Set a revocation's certificate notAfter (a row recorded before they were kept).
    fn set_revocation_not_after(
        &mut self,
        serial: u64,
        not_after: UnixSeconds,
    ) -> Result<(), StoreError>;

    // --- privacy by retention (retention.rs) ---
    /// Settled payments the retention rule may prune (see
    /// [`RetentionCandidate`]), settled at or before `settled_by`, oldest
    /// first, at most `limit`.
    fn retention_candidates(
        &mut self,
        settled_by: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<RetentionCandidate>, StoreError>;
    /// The postings with these references (any order).
    fn postings_by_references(
        &mut self,
        references: &[String],
    ) -> Result<Vec<StoredPosting>, StoreError>;
    /// Replace the postings with these references by `summaries`, leaving
    /// every balance as it is: refused (Corrupt, nothing written) unless
    /// every account's net (credits - debits) over the removed postings
    /// equals its net over the summaries.
    fn fold_postings(
        &mut self,
        references: &[String],
        summaries: &[Posting],
    ) -> Result<(), StoreError>;
    /// Prune these settled payments (payer, entry hash): the entry keeps
    /// payer, seq, hash, prev and kind; its payee, amount, times and bytes
    /// are cleared; the settlement keeps payer, hash and delivery; a closed
    /// (resolved or rejected) dispute case about it keeps its kind, state,
    /// decision and what it paid, and drops its evidence bundle, entry hash
    /// and amount.
    fn prune_payments(&mut self, keys: &[(WalletId, Hash32)]) -> Result<(), StoreError>;
    /// Which of these (payer, entry hash) are pruned settlements returned to
    /// their payer (a late delivery of one is credited from the payee's report).
    fn pruned_returned(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError>;
    /// Postings debiting or crediting `account`, oldest first, at most `limit`.
    fn postings_of_account(
        &mut self,
        account: &str,
        limit: u32,
    ) -> Result<Vec<StoredPosting>, StoreError>;
    /// Settlements whose payer or payee is `wallet`, oldest first, at most `limit`.
    fn settlements_of(
        &mut self,
        wallet: &WalletId,
        limit: u32,
    ) -> Result<Vec<SettlementRecord>, StoreError>;

    // --- idempotency of operator and wallet requests ---
    /// A stored response for an idempotency key: (request hash, response).
    fn idempotent(&mut self, key: &str) -> Result<Option<(Hash32, Vec<u8>)>, StoreError>;
    /// Store the response for an idempotency key.
    fn insert_idempotent(
        &mut self,
        key: &str,
        request: &Hash32,
        response: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError>;

    // --- dispute cases ---
    /// A settlement by its (payer, entry hash).
    fn settlement(
        &mut self,
        payer: &WalletId,
        hash: &Hash32,
    ) -> Result<Option<SettlementRecord>, StoreError>;
    /// Entries of `payer` timed at or after `from` (payer TA time), by seq, at most `limit`.
    fn entries_from(
        &mut self,
        payer: &WalletId,
        from: UnixSeconds,
        limit: u32,
    ) -> Result<Vec<EntryRecord>, StoreError>;
    /// The revocations of one wallet, by serial.
    fn revocations_of(&mut self, wallet: &WalletId) -> Result<Vec<RevocationRecord>, StoreError>;
    /// The first checkpoint of `wallet` whose seq is at least `seq`.
    fn checkpoint_covering(
        &mut self,
        wallet: &WalletId,
        seq: u64,
    ) -> Result<Option<CheckpointRecord>, StoreError>;
    /// Insert a new case (Duplicate if its id exists).
    fn insert_case(&mut self, c: &CaseRecord) -> Result<(), StoreError>;
    /// A case; `for_update` locks its row until commit.
    fn case(&mut self, id: u64, for_update: bool) -> Result<Option<CaseRecord>, StoreError>;
    /// Update a case's state, decision, times, amounts and bundle.
    fn update_case(&mut self, c: &CaseRecord) -> Result<(), StoreError>;
    /// Cases, optionally in one state, by id from `after` (exclusive), at most `limit`.
    fn cases(
        &mut self,
        state: Option<CaseState>,
        after: u64,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError>;
    /// The case not yet resolved or rejected on this payment (seq) or wallet (None).
    fn active_case_on(
        &mut self,
        payer: &WalletId,
        seq: Option<u64>,
    ) -> Result<Option<u64>, StoreError>;
    /// Append a case event (Duplicate if (case, n) exists).
    fn insert_case_event(&mut self, e: &CaseEvent) -> Result<(), StoreError>;
    /// The events of a case, by n.
    fn case_events(&mut self, id: u64) -> Result<Vec<CaseEvent>, StoreError>;
    /// Which of these settlements (payer, entry hash) an open or decided case holds.
    fn held_by_cases(
        &mut self,
        keys: &[(WalletId, Hash32)],
    ) -> Result<Vec<(WalletId, Hash32)>, StoreError>;
    /// Note on the open or decided cases holding these settlements that the
    /// payee's window closed at `at` (kept if noted before).
    fn note_case_window_closed(
        &mut self,
        keys: &[(WalletId, Hash32)],
        at: UnixSeconds,
    ) -> Result<(), StoreError>;
    /// (payer, seq) of the payment of every case not yet resolved or
    /// rejected, and of every entry of a wallet such a case is about, by
    /// payer and seq (retention keeps those entries).
    fn entries_held_by_cases(&mut self) -> Result<Vec<(WalletId, u64)>, StoreError>;
    /// Record that case `case_id` refunded payment (payer, seq): false (and
    /// nothing written) if a case refunded it before. Each payment is
    /// refunded by a case at most once.
    fn insert_case_refund(
        &mut self,
        payer: &WalletId,
        seq: u64,
        case_id: u64,
        amount: i64,
    ) -> Result<bool, StoreError>;
    /// The case that refunded payment (payer, seq), if any.
    fn case_refund(&mut self, payer: &WalletId, seq: u64) -> Result<Option<u64>, StoreError>;
    /// Counts of cases per kind and state (rows with a count of 0 left out).
    fn case_counts(&mut self) -> Result<Vec<CaseCountRow>, StoreError>;

    // --- scheme membership: claims and settlement statements ---
    // (Default bodies refuse: a store without the scheme tables cannot serve a member issuer.)
    /// Insert claims with their entry bytes; an id already stored is left as
    /// it is. Returns the ids newly inserted.
    fn insert_claims(
        &mut self,
        claims: &[(ClaimRecord, Vec<u8>)],
    ) -> Result<Vec<Hash32>, StoreError> {
        let _ = claims;
        Err(no_scheme_tables())
    }
    /// The claims with these ids (any order).
    fn claims_by_ids(&mut self, ids: &[Hash32]) -> Result<Vec<ClaimRecord>, StoreError> {
        let _ = ids;
        Err(no_scheme_tables())
    }
    /// Claims matching a filter, oldest first (then by id).
    fn claims(&mut self, filter: &ClaimFilter) -> Result<Vec<ClaimRecord>, StoreError> {
        let _ = filter;
        Err(no_scheme_tables())
    }
    /// Outbox claims with their payment bytes, oldest first.
    fn outbox(&mut self, limit: u32) -> Result<Vec<(Hash32, Vec<u8>)>, StoreError> {
        let _ = limit;
        Err(no_scheme_tables())
    }
    /// Set a claim's state and refusal code.
    fn set_claim_state(
        &mut self,
        id: &Hash32,
        state: ClaimState,
        refusal: Option<&str>,
    ) -> Result<(), StoreError> {
        let _ = (id, state, refusal);
        Err(no_scheme_tables())
    }
    /// Put claims into a settlement cycle.
    fn set_claims_cycle(&mut self, ids: &[Hash32], cycle: u64) -> Result<(), StoreError> {
        let _ = (ids, cycle);
        Err(no_scheme_tables())
    }
    /// Sums of the claims per counterparty, by counterparty.
    fn claim_sums(&mut self) -> Result<Vec<ClaimSums>, StoreError> {
        Err(no_scheme_tables())
    }
    /// A claim this issuer refused (from the scheme's inbox): its code.
    fn claim_refusal(&mut self, id: &Hash32) -> Result<Option<String>, StoreError> {
        let _ = id;
        Err(no_scheme_tables())
    }
    /// Record the refusal of a claim from the scheme's inbox (no-op if recorded).
    fn insert_claim_refusal(
        &mut self,
        id: &Hash32,
        code: &str,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<(), StoreError> {
        let _ = (id, code, bytes, now);
        Err(no_scheme_tables())
    }
    /// A posted statement.
    fn statement(&mut self, cycle: u64) -> Result<Option<StatementRecord>, StoreError> {
        let _ = cycle;
        Err(no_scheme_tables())
    }
    /// Record a posted statement (Duplicate if the cycle exists).
    fn insert_statement(&mut self, s: &StatementRecord) -> Result<(), StoreError> {
        let _ = s;
        Err(no_scheme_tables())
    }
    /// (highest posted cycle or 0, sum of the nets of every posted statement).
    fn statement_totals(&mut self) -> Result<(u64, i128), StoreError> {
        Err(no_scheme_tables())
    }
    /// Balances of every account of a kind (`peer`, `foreign`...), by id.
    fn balances_of_kind(&mut self, kind: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let _ = kind;
        Err(no_scheme_tables())
    }
}

fn no_scheme_tables() -> StoreError {
    StoreError::Database("this store has no scheme member tables".into())
}
