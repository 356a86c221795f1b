//! Why the issuer refused a request, and why it locked a wallet: one variant per
//! reason, each with a stable machine-readable code.
//!
//! [`IssuerError::code`] is the coarse code an HTTP client matches on (its set
//! is the table in `offpay-server/src/error.rs`); [`IssuerError::detail`] names
//! the exact reason inside it (`"customer_id"` inside `invalid_input`...). A
//! sync that finds a report inconsistent does not refuse it: it records what
//! it carries and locks the wallet, with a [`LockReason`] made of
//! [`ReportProblem`]s. All codes are snake_case and never change meaning;
//! new ones may be added.

use core::fmt;

use offpay_protocol::cbor::DecodeError;
use offpay_protocol::pki::PkiError;
use offpay_protocol::{Amount, Currency, Hash32, IssuerId, SignError, WalletId};

use crate::store::{CaseState, StoreError, WalletState};

/// A field of a request the issuer refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// A customer id is not 1 to `CUSTOMER_ID_BYTES_MAX` characters of `[A-Za-z0-9._-]`.
    CustomerId,
    /// A customer name is longer than `CUSTOMER_NAME_BYTES_MAX` bytes.
    CustomerName,
    /// An idempotency key is not 1 to `IDEMPOTENCY_KEY_BYTES_MAX` printable ASCII characters.
    IdempotencyKey,
    /// An amount is zero.
    ZeroAmount,
    /// An amount does not fit the ledger's signed 64-bit minor units.
    AmountTooLarge,
    /// An operator amount is above what one operation may move
    /// (`AMOUNT_MINOR_MAX`).
    AmountAboveMax {
        /// The amount asked for.
        amount: Amount,
        /// The most one operation may move.
        max: Amount,
    },
    /// An amount or a report is in another currency than the issuer's.
    Currency {
        /// The issuer's currency.
        expected: Currency,
    },
    /// A chain entry of a report does not decode (its index in the report's list).
    Entry {
        /// Which list of the report.
        list: EntryList,
        /// Its index.
        index: usize,
        /// Why it does not decode.
        error: DecodeError,
    },
    /// An outgoing entry of a report is of another wallet than the reporter.
    ForeignOutgoing {
        /// Its index.
        index: usize,
    },
    /// A report is signed by a key generation the issuer does not hold for
    /// the wallet (only the current and, after a re-key, the previous one).
    UnknownKeyGeneration {
        /// The report's.
        got: u32,
        /// The wallet's current generation.
        current: u32,
    },
    /// An outgoing entry lies below the first seq of the oldest key the
    /// issuer holds for the wallet.
    EntryBeforeKey {
        /// Its seq.
        seq: u64,
    },
    /// The CSR in a report is malformed, names another wallet, or certifies
    /// the key already in use.
    RekeyCsr(&'static str),
    /// A payment names a certificate (by reference) the issuer never issued to its payer.
    UnknownPayerCertificate {
        /// The payer.
        payer: WalletId,
    },
    /// A payment carries the certificate of another wallet than its payer.
    PayerCertificateMismatch {
        /// The payer the payment names.
        payer: WalletId,
        /// The wallet the certificate names.
        certified: WalletId,
    },
    /// A payment is addressed to a wallet the issuer does not know.
    UnknownPayee {
        /// The payee.
        payee: WalletId,
    },
    /// A PIN-locked request carries the unlock grant of another wallet.
    UnlockGrantForeign,
    /// The operator approves a PIN unlock no wallet asked for.
    NoPinUnlockRequest,
    /// A return window shorter than a payment request lives (or over a year).
    ReturnWindow {
        /// The shortest window.
        min: u64,
    },
    /// A retention window longer than the longest one kept.
    RetentionWindow {
        /// The longest window (seconds).
        max: u64,
    },
}

impl InputError {
    /// The stable code (the detail of `invalid_input`).
    pub fn code(&self) -> &'static str {
        match self {
            InputError::CustomerId => "customer_id",
            InputError::CustomerName => "customer_name",
            InputError::IdempotencyKey => "idempotency_key",
            InputError::ZeroAmount => "zero_amount",
            InputError::ReturnWindow { .. } => "return_window",
            InputError::RetentionWindow { .. } => "retention_window",
            InputError::AmountTooLarge => "amount_too_large",
            InputError::AmountAboveMax { .. } => "amount_above_max",
            InputError::Currency { .. } => "currency",
            InputError::Entry { .. } => "entry_malformed",
            InputError::ForeignOutgoing { .. } => "foreign_outgoing_entry",
            InputError::UnknownPayerCertificate { .. } => "unknown_payer_certificate",
            InputError::UnknownKeyGeneration { .. } => "unknown_key_generation",
            InputError::EntryBeforeKey { .. } => "entry_before_key",
            InputError::RekeyCsr(_) => "rekey_csr",
            InputError::PayerCertificateMismatch { .. } => "payer_certificate_mismatch",
            InputError::UnknownPayee { .. } => "unknown_payee",
            InputError::UnlockGrantForeign => "unlock_grant_foreign",
            InputError::NoPinUnlockRequest => "no_pin_unlock_request",
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::CustomerId => write!(
                f,
                "customer id must be 1 to {} characters of [A-Za-z0-9._-]",
                crate::limits::CUSTOMER_ID_BYTES_MAX
            ),
            InputError::CustomerName => write!(
                f,
                "name longer than {} bytes",
                crate::limits::CUSTOMER_NAME_BYTES_MAX
            ),
            InputError::IdempotencyKey => write!(
                f,
                "idempotency key must be 1 to {} printable ASCII characters",
                crate::limits::IDEMPOTENCY_KEY_BYTES_MAX
            ),
            InputError::ZeroAmount => f.write_str("amount must be positive"),
            InputError::ReturnWindow { min } => write!(
                f,
                "the return window must be {min} seconds (the longest a payment request lives) to one year"
            ),
            InputError::RetentionWindow { max } => {
                write!(f, "the retention window must be at most {max} seconds")
            }
            InputError::AmountTooLarge => f.write_str("amount too large"),
            InputError::AmountAboveMax { amount, max } => write!(
                f,
                "amount {amount} is larger than one operation may move ({max})"
            ),
            InputError::Currency { expected } => write!(f, "currency must be {expected}"),
            InputError::Entry { list, index, error } => write!(f, "{list} {index}: {error}"),
            InputError::ForeignOutgoing { index } => {
                write!(f, "outgoing entry {index} is of another wallet")
            }
            InputError::UnknownPayerCertificate { payer } => {
                write!(f, "payment of {payer} names an unknown certificate")
            }
            InputError::UnknownKeyGeneration { got, current } => write!(
                f,
                "report signed by key generation {got}; the wallet's is {current} (or the one before)"
            ),
            InputError::EntryBeforeKey { seq } => write!(
                f,
                "outgoing entry {seq} lies before the oldest key held for the wallet"
            ),
            InputError::RekeyCsr(why) => write!(f, "re-key CSR refused: {why}"),
            InputError::PayerCertificateMismatch { payer, certified } => {
                write!(
                    f,
                    "payment of {payer} carries the certificate of {certified}"
                )
            }
            InputError::UnknownPayee { payee } => {
                write!(f, "payment to an unknown wallet ({payee})")
            }
            InputError::UnlockGrantForeign => f.write_str("the unlock grant names another wallet"),
            InputError::NoPinUnlockRequest => f.write_str(
                "this wallet has not asked for a PIN unlock: run `offpay wallet unlock` on the device first",
            ),
        }
    }
}

/// The lists of a SyncReport that carry chain entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryList {
    /// The reporter's own outgoing chain.
    Outgoing,
    /// Payments the reporter accepted.
    Incoming,
    /// Payments the reporter refused as a payer's rollback.
    Evidence,
}

impl fmt::Display for EntryList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntryList::Outgoing => "outgoing entry",
            EntryList::Incoming => "incoming payment",
            EntryList::Evidence => "evidence",
        })
    }
}

/// Which signature of a request does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// The SyncReport's own signature.
    Report,
    /// An entry of one of the report's lists.
    Entry {
        /// The list.
        list: EntryList,
        /// Its index.
        index: usize,
    },
    /// An online Redeem.
    Redeem,
    /// A PIN unlock grant (signed by the wallet key).
    UnlockGrant,
    /// The unlock key a grant names (not a valid Ed25519 key).
    UnlockKey,
    /// A PIN-locked request (signed by the granted unlock key).
    PinLockedRequest,
    /// A scheme directory (signed by the scheme root).
    Directory,
    /// A settlement statement (signed by the scheme root).
    Statement,
    /// A claim's payment (signed by its payer).
    Claim,
}

impl Signature {
    /// The stable code (the detail of `bad_signature`).
    pub fn code(&self) -> &'static str {
        match self {
            Signature::Report => "report",
            Signature::Entry {
                list: EntryList::Outgoing,
                ..
            } => "outgoing_entry",
            Signature::Entry {
                list: EntryList::Incoming,
                ..
            } => "incoming_payment",
            Signature::Entry {
                list: EntryList::Evidence,
                ..
            } => "evidence",
            Signature::Redeem => "redeem",
            Signature::UnlockGrant => "unlock_grant",
            Signature::UnlockKey => "unlock_key",
            Signature::PinLockedRequest => "pin_locked_request",
            Signature::Directory => "directory",
            Signature::Statement => "statement",
            Signature::Claim => "claim",
        }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signature::Report => f.write_str("report"),
            Signature::Entry { list, index } => write!(f, "{list} {index}"),
            Signature::Redeem => f.write_str("redeem"),
            Signature::UnlockGrant => f.write_str("unlock grant (wallet key)"),
            Signature::UnlockKey => f.write_str("unlock key"),
            Signature::PinLockedRequest => f.write_str("PIN-locked request (unlock key)"),
            Signature::Directory => f.write_str("scheme directory (scheme root)"),
            Signature::Statement => f.write_str("settlement statement (scheme root)"),
            Signature::Claim => f.write_str("claim (payer wallet)"),
        }
    }
}

/// Why an enrollment token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Never issued (or longer than any token).
    Unknown,
    /// Already used by another wallet or key.
    Used,
    /// Past its validity.
    Expired,
}

impl TokenProblem {
    /// The stable code (the detail of `enrollment_token`).
    pub fn code(&self) -> &'static str {
        match self {
            TokenProblem::Unknown => "unknown",
            TokenProblem::Used => "used",
            TokenProblem::Expired => "expired",
        }
    }
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenProblem::Unknown => "unknown",
            TokenProblem::Used => "already used",
            TokenProblem::Expired => "expired",
        })
    }
}

/// A risk limit of the issuer's policy that refuses an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// One load larger than the holding limit.
    LoadOverHolding {
        /// The holding limit.
        max: Amount,
    },
    /// The wallet's offline balance would exceed the holding limit.
    Holding {
        /// The holding limit.
        max: Amount,
        /// The wallet's offline balance now.
        balance: Amount,
    },
}

impl Limit {
    /// The stable code (the detail of `limit`).
    pub fn code(&self) -> &'static str {
        match self {
            Limit::LoadOverHolding { .. } => "load_over_holding",
            Limit::Holding { .. } => "holding",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::LoadOverHolding { max } => {
                write!(f, "holding: load larger than the holding limit of {max}")
            }
            Limit::Holding { max, balance } => write!(
                f,
                "holding: the wallet's offline balance ({balance}) would exceed the holding limit of {max}"
            ),
        }
    }
}

/// A ledger or process invariant that would break: nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invariant {
    /// No certificate of a payer verifies its recorded entry (double-spend proof).
    NoCertificateVerifies {
        /// The payer.
        payer: WalletId,
    },
    /// A deficit too large to negate.
    DeficitOverflow,
    /// A balance that must not be negative is.
    NegativeBalance {
        /// The account.
        account: String,
    },
    /// A posting between accounts of two books.
    CrossBookPosting,
    /// The verified-certificate cache lock was poisoned by a panic.
    CachePoisoned,
    /// Group commit: a job got no result.
    GroupNoResult,
    /// Group commit: the transaction's leader panicked.
    GroupLeaderPanicked,
    /// A stored stranded-money figure does not decode.
    StrandedRecord,
    /// The stored lifecycle rules do not decode.
    LifecycleRecord,
    /// The stored retention window does not decode.
    RetentionRecord,
    /// A stranded-money figure does not fit 64 bits.
    StrandedOverflow {
        /// The wallet.
        wallet: WalletId,
    },
}

impl Invariant {
    /// The stable code (the detail of `invariant`).
    pub fn code(&self) -> &'static str {
        match self {
            Invariant::NoCertificateVerifies { .. } => "no_certificate_verifies",
            Invariant::DeficitOverflow => "deficit_overflow",
            Invariant::NegativeBalance { .. } => "negative_balance",
            Invariant::CrossBookPosting => "cross_book_posting",
            Invariant::CachePoisoned => "cache_poisoned",
            Invariant::GroupNoResult => "group_no_result",
            Invariant::GroupLeaderPanicked => "group_leader_panicked",
            Invariant::StrandedRecord => "stranded_record",
            Invariant::LifecycleRecord => "lifecycle_record",
            Invariant::RetentionRecord => "retention_record",
            Invariant::StrandedOverflow { .. } => "stranded_overflow",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invariant::NoCertificateVerifies { payer } => {
                write!(f, "no certificate of {payer} verifies its entry")
            }
            Invariant::DeficitOverflow => f.write_str("deficit overflow"),
            Invariant::NegativeBalance { account } => {
                write!(f, "account {account} has a negative balance")
            }
            Invariant::CrossBookPosting => f.write_str("a posting between two books"),
            Invariant::CachePoisoned => f.write_str("certificate cache lock poisoned"),
            Invariant::GroupNoResult => f.write_str("group commit: a job got no result"),
            Invariant::StrandedRecord => {
                f.write_str("a stored stranded-money figure has a bad length")
            }
            Invariant::LifecycleRecord => f.write_str("the stored lifecycle rules do not decode"),
            Invariant::RetentionRecord => {
                f.write_str("the stored retention window does not decode")
            }
            Invariant::StrandedOverflow { wallet } => {
                write!(f, "the stranded-money figure of {wallet} overflows")
            }
            Invariant::GroupLeaderPanicked => {
                f.write_str("group commit: the transaction's leader panicked")
            }
        }
    }
}

/// An amount in minor units that may be negative or beyond `u64` (sums in the
/// balance equation), printed like [`Amount`] in major units with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sum {
    /// Minor units.
    pub minor: i128,
    /// Currency.
    pub currency: Currency,
}

impl fmt::Display for Sum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

/// Something a SyncReport shows that the issuer will not accept from an honest
/// wallet. The report's entries still count; the wallet is locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportProblem {
    /// A different report under a report seq already used: the state was restored from a copy.
    ReportSeqReused {
        /// The reused seq.
        report_seq: u64,
    },
    /// The outgoing chain skips a seq or forks from the base checkpoint.
    ChainGap {
        /// The seq where it breaks.
        seq: u64,
    },
    /// The reported chain head is not the last of its entries.
    HeadMismatch {
        /// The seq reported.
        reported: u64,
        /// The seq the entries reach.
        entries: u64,
    },
    /// The applied loads are not contiguous after the checkpoint.
    LoadsNotContiguous,
    /// A load applied that the issuer never issued.
    LoadNeverIssued {
        /// Its load seq.
        load_seq: u64,
    },
    /// An incoming payment addressed to another wallet.
    IncomingMisaddressed {
        /// Its payee.
        payee: WalletId,
    },
    /// checkpoint + loads - outgoing + incoming differs from the reported balance.
    BalanceEquation {
        /// The base checkpoint's balance.
        checkpoint: Sum,
        /// Loads applied since.
        loads: Sum,
        /// Paid out.
        outgoing: Sum,
        /// Received.
        incoming: Sum,
        /// What the equation gives.
        expected: Sum,
        /// What the wallet reports.
        reported: Amount,
    },
    /// The chain is behind what the issuer already recorded: a restored state.
    RolledBack {
        /// The seq reported.
        reported: u64,
        /// The highest seq recorded.
        recorded: u64,
    },
    /// The wallet reports itself locked (its vault detected a rollback).
    SelfLocked,
    /// A receive-only terminal reports an outgoing payment (its certificate
    /// names the terminal profile; an intact terminal TA never signs one).
    /// The entry still settles to its payee (finality), from the terminal's
    /// own sub-account; the terminal is locked.
    TerminalPayment {
        /// The payment's seq on the terminal's chain.
        seq: u64,
    },
}

impl ReportProblem {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ReportProblem::ReportSeqReused { .. } => "report_seq_reused",
            ReportProblem::ChainGap { .. } => "chain_gap",
            ReportProblem::HeadMismatch { .. } => "head_mismatch",
            ReportProblem::LoadsNotContiguous => "loads_not_contiguous",
            ReportProblem::LoadNeverIssued { .. } => "load_never_issued",
            ReportProblem::IncomingMisaddressed { .. } => "incoming_misaddressed",
            ReportProblem::BalanceEquation { .. } => "balance_equation",
            ReportProblem::RolledBack { .. } => "rolled_back",
            ReportProblem::SelfLocked => "self_locked",
            ReportProblem::TerminalPayment { .. } => "terminal_payment",
        }
    }
}

impl fmt::Display for ReportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportProblem::ReportSeqReused { report_seq } => write!(
                f,
                "report seq {report_seq} reused: the wallet state was rolled back"
            ),
            ReportProblem::ChainGap { seq } => {
                write!(f, "gap or fork in the outgoing chain at seq {seq}")
            }
            ReportProblem::HeadMismatch { reported, entries } => write!(
                f,
                "reported chain head (seq {reported}) does not match its entries (seq {entries})"
            ),
            ReportProblem::LoadsNotContiguous => {
                f.write_str("applied loads are not contiguous after the checkpoint")
            }
            ReportProblem::LoadNeverIssued { load_seq } => {
                write!(f, "applied load {load_seq} that was never issued")
            }
            ReportProblem::IncomingMisaddressed { payee } => {
                write!(f, "incoming payment addressed to {payee}")
            }
            ReportProblem::BalanceEquation {
                checkpoint,
                loads,
                outgoing,
                incoming,
                expected,
                reported,
            } => write!(
                f,
                "balance equation broken: checkpoint {checkpoint} + loads {loads} - outgoing {outgoing} + incoming {incoming} = {expected}, reported {reported}"
            ),
            ReportProblem::RolledBack { reported, recorded } => write!(
                f,
                "state rolled back: chain at seq {reported}, issuer has recorded seq {recorded}"
            ),
            ReportProblem::SelfLocked => {
                f.write_str("the wallet reports itself locked (its vault detected a rollback)")
            }
            ReportProblem::TerminalPayment { seq } => write!(
                f,
                "a receive-only terminal made an outgoing payment (seq {seq})"
            ),
        }
    }
}

/// Why a sync locked a wallet. Its text (cut to what a SyncResponse carries)
/// is stored as the wallet's reason and sent to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockReason {
    /// The reporter's own report is inconsistent (never empty).
    Report(Vec<ReportProblem>),
    /// A payer's payment is dated outside its certificate's validity.
    PaymentOutsideValidity {
        /// The payment's seq.
        seq: u64,
    },
    /// A payer whose certificate names the terminal profile made a payment
    /// (reported by its payee): a terminal never pays.
    TerminalPaid {
        /// The payment's seq.
        seq: u64,
    },
}

impl LockReason {
    /// The stable code: `report`, `payment_outside_validity` or `terminal_paid`.
    pub fn code(&self) -> &'static str {
        match self {
            LockReason::Report(_) => "report",
            LockReason::PaymentOutsideValidity { .. } => "payment_outside_validity",
            LockReason::TerminalPaid { .. } => "terminal_paid",
        }
    }

    /// The problems of a report (empty for other reasons).
    pub fn problems(&self) -> &[ReportProblem] {
        match self {
            LockReason::Report(p) => p,
            LockReason::PaymentOutsideValidity { .. } | LockReason::TerminalPaid { .. } => &[],
        }
    }
}

impl fmt::Display for LockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockReason::Report(problems) => {
                for (i, p) in problems.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    write!(f, "{p}")?;
                }
                Ok(())
            }
            LockReason::PaymentOutsideValidity { seq } => write!(
                f,
                "payment seq {seq} dated outside its certificate's validity"
            ),
            LockReason::TerminalPaid { seq } => {
                write!(f, "payment seq {seq} made by a receive-only terminal")
            }
        }
    }
}

/// An issuer error. [`IssuerError::code`] is stable: clients match on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerError {
    /// The request bytes are not a valid message.
    Malformed(DecodeError),
    /// A field of a request is invalid (amount, id, currency...).
    InvalidInput(InputError),
    /// A signature in the request does not verify (which one is said).
    BadSignature(Signature),
    /// A certificate or CSR is refused.
    Certificate(PkiError),
    /// No such wallet.
    UnknownWallet,
    /// No such customer.
    UnknownCustomer,
    /// The customer already exists.
    CustomerExists,
    /// The enrollment token is unknown, used or expired.
    EnrollmentToken(TokenProblem),
    /// The wallet id is already enrolled.
    WalletExists,
    /// Not enough money in the customer's online account.
    InsufficientFunds {
        /// The online balance.
        balance: Amount,
        /// Needed.
        needed: Amount,
    },
    /// A risk limit refuses the operation.
    Limit(Limit),
    /// The wallet is locked or revoked and cannot do this.
    WalletNotActive {
        /// Its state (never active).
        state: WalletState,
        /// Why, as stored (the operator's or the sync's reason).
        reason: Option<String>,
    },
    /// An idempotency key reused for another request.
    IdempotencyKeyReused,
    /// The report names a checkpoint the issuer never issued.
    UnknownCheckpoint,
    /// The issuer is not initialised.
    NotInitialised,
    /// The issuer is already initialised.
    AlreadyInitialised,
    /// The CA keys cannot be decrypted with this master key.
    MasterKey,
    /// The random source failed (a server fault).
    Randomness,
    /// The device holding a CA key (a PKCS#11 token) failed or refused to
    /// sign: nothing was written (a 503 at the HTTP layer).
    SigningDevice(SignError),
    /// A CA key is held by a device: it cannot be sealed into the database,
    /// and its token's key is not the one recorded (`what` says which).
    DeviceKey(&'static str),
    /// Storage failed.
    Store(StoreError),
    /// A ledger invariant would break: nothing was written.
    Invariant(Invariant),
    /// A scheme operation (member issuers) is refused: nothing was written.
    Scheme(SchemeProblem),
    /// A dispute-case operation is refused: nothing was written.
    Case(CaseProblem),
}

/// Why a dispute-case operation is refused ([`IssuerError::Case`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseProblem {
    /// No case with this id.
    UnknownCase {
        /// The id asked for.
        id: u64,
    },
    /// The payer has no recorded entry at this seq (sync the wallet first).
    UnknownPayment {
        /// The payer.
        payer: WalletId,
        /// The seq.
        seq: u64,
    },
    /// The entry at this seq is a redeem, not a payment.
    NotAPayment,
    /// Only `not_my_payment` may be opened on a wallet; the others need a payment.
    KindNeedsPayment,
    /// A case on this payment (or wallet) is already open or decided.
    AlreadyOpen {
        /// Its id.
        id: u64,
    },
    /// The operation does not apply in the case's state.
    WrongState {
        /// The case's state.
        state: CaseState,
        /// What was asked.
        action: &'static str,
    },
    /// The evidence does not decide yet: the payee's window is open and its
    /// TA has not reported the payment (decide after its next sync).
    AwaitingPayee,
    /// The operator name or the note is empty, too long or not printable.
    Text {
        /// Which.
        field: &'static str,
    },
    /// A case already refunded this payment: nothing is paid twice.
    AlreadyRefunded {
        /// The case that refunded it.
        by: u64,
    },
    /// Since the decision the evidence changed (the payee reported the
    /// payment, the lifecycle returned it...): decide again.
    EvidenceChanged {
        /// The decision taken.
        decided: String,
        /// The decision the evidence leads to now.
        now: &'static str,
    },
}

impl CaseProblem {
    /// The stable code (the `detail` of [`IssuerError::Case`]).
    pub fn code(&self) -> &'static str {
        match self {
            CaseProblem::UnknownCase { .. } => "unknown_case",
            CaseProblem::UnknownPayment { .. } => "unknown_payment",
            CaseProblem::NotAPayment => "not_a_payment",
            CaseProblem::KindNeedsPayment => "kind_needs_payment",
            CaseProblem::AlreadyOpen { .. } => "already_open",
            CaseProblem::WrongState { .. } => "wrong_state",
            CaseProblem::AwaitingPayee => "awaiting_payee",
            CaseProblem::Text { .. } => "text",
            CaseProblem::AlreadyRefunded { .. } => "already_refunded",
            CaseProblem::EvidenceChanged { .. } => "evidence_changed",
        }
    }
}

impl fmt::Display for CaseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseProblem::UnknownCase { id } => write!(f, "no case {id}"),
            CaseProblem::UnknownPayment { payer, seq } => write!(
                f,
                "no recorded entry of wallet {} at seq {seq} (sync the wallet first)",
                payer.to_hex()
            ),
            CaseProblem::NotAPayment => f.write_str("the entry is a redeem, not a payment"),
            CaseProblem::KindNeedsPayment => {
                f.write_str("only not_my_payment may be opened on a wallet; give the payment's seq")
            }
            CaseProblem::AlreadyOpen { id } => write!(f, "case {id} is already open on it"),
            CaseProblem::WrongState { state, action } => {
                write!(f, "cannot {action} a case that is {}", state.as_str())
            }
            CaseProblem::AwaitingPayee => f.write_str(
                "the payee's window is open and its TA has not reported the payment: decide after its next sync",
            ),
            CaseProblem::Text { field } => {
                write!(f, "{field} must be 1 to 256 printable characters")
            }
            CaseProblem::AlreadyRefunded { by } => {
                write!(f, "case {by} already refunded this payment")
            }
            CaseProblem::EvidenceChanged { decided, now } => write!(
                f,
                "decided {decided}, but the evidence now leads to {now}: decide again"
            ),
        }
    }
}

/// Why a scheme operation of a member issuer is refused ([`IssuerError::Scheme`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeProblem {
    /// The operation needs a member issuer; this one is standalone.
    NotAMember,
    /// `init_member` before `member_csr`: no pending issuer CA key.
    NoPendingKey,
    /// `member_csr` again with another issuer code than the first time.
    CodeMismatch {
        /// The code of the pending CSR.
        pending: String,
    },
    /// The issuer code is not `[a-z0-9-]{1,32}`.
    BadCode,
    /// The issued CA certificate is not for the pending key.
    MemberKeyMismatch,
    /// The directory is not newer than the installed one.
    DirectoryNotNewer {
        /// Installed version.
        installed: u64,
        /// Offered version.
        offered: u64,
    },
    /// The directory, statement or claim is in another currency.
    Currency,
    /// The directory does not list this issuer.
    NotInDirectory,
    /// A payment by a wallet of an issuer the installed directory does not know.
    UnknownIssuer {
        /// The payer's issuer.
        issuer: IssuerId,
    },
    /// A settlement statement addressed to another issuer.
    StatementNotOurs,
    /// A settlement statement that disagrees with our claims (nothing posted).
    StatementMismatch {
        /// The counterparty of the line that disagrees (None: the claim list itself).
        counterparty: Option<IssuerId>,
        /// What disagrees.
        what: &'static str,
    },
    /// A statement cycle already posted with other contents.
    StatementConflict {
        /// The cycle.
        cycle: u64,
    },
    /// An acknowledgement names a claim this issuer does not hold.
    UnknownClaim {
        /// The claim id.
        id: Hash32,
    },
    /// A payment of which this issuer is neither the payer's nor the payee's issuer.
    NotAParty,
}

impl SchemeProblem {
    /// The stable code (the `detail` of [`IssuerError::Scheme`]).
    pub fn code(&self) -> &'static str {
        match self {
            SchemeProblem::NotAMember => "not_a_member",
            SchemeProblem::NoPendingKey => "no_pending_key",
            SchemeProblem::CodeMismatch { .. } => "code_mismatch",
            SchemeProblem::BadCode => "bad_code",
            SchemeProblem::MemberKeyMismatch => "member_key_mismatch",
            SchemeProblem::DirectoryNotNewer { .. } => "directory_not_newer",
            SchemeProblem::Currency => "currency",
            SchemeProblem::NotInDirectory => "not_in_directory",
            SchemeProblem::UnknownIssuer { .. } => "unknown_issuer",
            SchemeProblem::StatementNotOurs => "statement_not_ours",
            SchemeProblem::StatementMismatch { .. } => "statement_mismatch",
            SchemeProblem::StatementConflict { .. } => "statement_conflict",
            SchemeProblem::UnknownClaim { .. } => "unknown_claim",
            SchemeProblem::NotAParty => "not_a_party",
        }
    }
}

impl fmt::Display for SchemeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemeProblem::NotAMember => f.write_str("this issuer is not a scheme member"),
            SchemeProblem::NoPendingKey => {
                f.write_str("no pending issuer CA key: make the member CSR first")
            }
            SchemeProblem::CodeMismatch { pending } => {
                write!(f, "a CSR for issuer code {pending:?} is already pending")
            }
            SchemeProblem::BadCode => f.write_str("issuer code must be [a-z0-9-]{1,32}"),
            SchemeProblem::MemberKeyMismatch => {
                f.write_str("the issuer CA certificate is not for this issuer's pending key")
            }
            SchemeProblem::DirectoryNotNewer { installed, offered } => write!(
                f,
                "directory version {offered} is not newer than the installed {installed}"
            ),
            SchemeProblem::Currency => f.write_str("another currency than the issuer's"),
            SchemeProblem::NotInDirectory => f.write_str("the directory does not list this issuer"),
            SchemeProblem::UnknownIssuer { issuer } => {
                write!(
                    f,
                    "issuer {} is not in the installed directory",
                    issuer.to_hex()
                )
            }
            SchemeProblem::StatementNotOurs => {
                f.write_str("the settlement statement is for another issuer")
            }
            SchemeProblem::StatementMismatch { counterparty, what } => match counterparty {
                Some(c) => write!(f, "statement line for {} disagrees: {what}", c.to_hex()),
                None => write!(f, "statement disagrees with our claims: {what}"),
            },
            SchemeProblem::StatementConflict { cycle } => {
                write!(f, "cycle {cycle} is already posted with another statement")
            }
            SchemeProblem::UnknownClaim { id } => write!(f, "no claim {}", id.to_hex()),
            SchemeProblem::NotAParty => f.write_str(
                "this issuer is neither the payer's nor the payee's issuer of the payment",
            ),
        }
    }
}

impl IssuerError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            IssuerError::Malformed(_) => "malformed",
            IssuerError::InvalidInput(_) => "invalid_input",
            IssuerError::BadSignature(_) => "bad_signature",
            IssuerError::Certificate(_) => "certificate_refused",
            IssuerError::UnknownWallet => "unknown_wallet",
            IssuerError::UnknownCustomer => "unknown_customer",
            IssuerError::CustomerExists => "customer_exists",
            IssuerError::EnrollmentToken(_) => "enrollment_token",
            IssuerError::WalletExists => "wallet_exists",
            IssuerError::InsufficientFunds { .. } => "insufficient_funds",
            IssuerError::Limit(_) => "limit",
            IssuerError::WalletNotActive { .. } => "wallet_not_active",
            IssuerError::IdempotencyKeyReused => "replay",
            IssuerError::UnknownCheckpoint => "unknown_checkpoint",
            IssuerError::NotInitialised => "not_initialised",
            IssuerError::AlreadyInitialised => "already_initialised",
            IssuerError::MasterKey => "master_key",
            IssuerError::Randomness => "randomness",
            IssuerError::SigningDevice(_) => "signing_device",
            IssuerError::DeviceKey(_) => "device_key",
            IssuerError::Store(StoreError::Conflict(_)) => "conflict",
            IssuerError::Store(_) => "storage",
            IssuerError::Invariant(_) => "invariant",
            IssuerError::Scheme(_) => "scheme",
            IssuerError::Case(_) => "case",
        }
    }

    /// The exact reason inside [`IssuerError::code`], where it has several
    /// (`invalid_input`, `bad_signature`, `enrollment_token`, `limit`,
    /// `wallet_not_active`, `invariant`); stable like the code.
    pub fn detail(&self) -> Option<&'static str> {
        match self {
            IssuerError::InvalidInput(e) => Some(e.code()),
            IssuerError::BadSignature(s) => Some(s.code()),
            IssuerError::EnrollmentToken(t) => Some(t.code()),
            IssuerError::Limit(l) => Some(l.code()),
            IssuerError::WalletNotActive { state, .. } => Some(state.as_str()),
            IssuerError::Invariant(i) => Some(i.code()),
            IssuerError::Scheme(p) => Some(p.code()),
            IssuerError::Case(p) => Some(p.code()),
            _ => None,
        }
    }

    /// Whether the client caused it (4xx) rather than the server (5xx).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            IssuerError::Store(_)
                | IssuerError::Invariant(_)
                | IssuerError::NotInitialised
                | IssuerError::MasterKey
                | IssuerError::Randomness
                | IssuerError::SigningDevice(_)
                | IssuerError::DeviceKey(_)
        )
    }
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerError::Malformed(e) => write!(f, "malformed message: {e}"),
            IssuerError::InvalidInput(e) => write!(f, "invalid input: {e}"),
            IssuerError::BadSignature(s) => write!(f, "signature does not verify: {s}"),
            IssuerError::Certificate(e) => write!(f, "certificate refused: {e}"),
            IssuerError::UnknownWallet => f.write_str("unknown wallet"),
            IssuerError::UnknownCustomer => f.write_str("unknown customer"),
            IssuerError::CustomerExists => f.write_str("customer already exists"),
            IssuerError::EnrollmentToken(t) => write!(f, "enrollment token {t}"),
            IssuerError::WalletExists => f.write_str("wallet already enrolled"),
            IssuerError::InsufficientFunds { balance, needed } => {
                write!(f, "insufficient funds: balance {balance}, needed {needed}")
            }
            IssuerError::Limit(l) => write!(f, "limit: {l}"),
            IssuerError::WalletNotActive { state, reason } => match reason {
                Some(r) => write!(f, "wallet not active: {} ({r})", state.as_str()),
                None => write!(f, "wallet not active: {}", state.as_str()),
            },
            IssuerError::IdempotencyKeyReused => {
                f.write_str("replay: idempotency key used for another request")
            }
            IssuerError::UnknownCheckpoint => f.write_str("report builds on an unknown checkpoint"),
            IssuerError::NotInitialised => f.write_str("issuer not initialised"),
            IssuerError::AlreadyInitialised => f.write_str("issuer already initialised"),
            IssuerError::MasterKey => {
                f.write_str("CA keys cannot be decrypted with this master key")
            }
            IssuerError::Randomness => f.write_str("the random source failed"),
            IssuerError::SigningDevice(e) => write!(f, "signing device unavailable: {e}"),
            IssuerError::DeviceKey(w) => write!(f, "CA key in a device: {w}"),
            IssuerError::Store(e) => write!(f, "{e}"),
            IssuerError::Invariant(i) => write!(f, "ledger invariant: {i}"),
            IssuerError::Scheme(p) => write!(f, "scheme: {p}"),
            IssuerError::Case(p) => write!(f, "case: {p}"),
        }
    }
}
impl std::error::Error for IssuerError {}

impl From<StoreError> for IssuerError {
    fn from(e: StoreError) -> Self {
        IssuerError::Store(e)
    }
}
impl From<DecodeError> for IssuerError {
    fn from(e: DecodeError) -> Self {
        IssuerError::Malformed(e)
    }
}
impl From<PkiError> for IssuerError {
    fn from(e: PkiError) -> Self {
        match e {
            // The CA key's device failed: not a refused certificate.
            PkiError::Signer(s) => IssuerError::SigningDevice(s),
            e => IssuerError::Certificate(e),
        }
    }
}
impl From<SignError> for IssuerError {
    fn from(e: SignError) -> Self {
        IssuerError::SigningDevice(e)
    }
}
impl From<InputError> for IssuerError {
    fn from(e: InputError) -> Self {
        IssuerError::InvalidInput(e)
    }
}
impl From<SchemeProblem> for IssuerError {
    fn from(p: SchemeProblem) -> Self {
        IssuerError::Scheme(p)
    }
}
impl From<CaseProblem> for IssuerError {
    fn from(p: CaseProblem) -> Self {
        IssuerError::Case(p)
    }
}
impl From<Invariant> for IssuerError {
    fn from(i: Invariant) -> Self {
        IssuerError::Invariant(i)
    }
}

/// A reason cut to what a SyncResponse may carry (whole UTF-8 characters within
/// [`offpay_protocol::messages::REASON_BYTES_MAX`] bytes).
pub fn reason_text(s: &str) -> String {
    let mut n = s.len().min(offpay_protocol::messages::REASON_BYTES_MAX);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    s[..n].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_print_in_major_units_with_their_sign() {
        let eur = Currency::new("EUR").expect("EUR");
        assert_eq!(
            Sum {
                minor: -1234,
                currency: eur
            }
            .to_string(),
            "-12.34 EUR"
        );
        assert_eq!(
            Sum {
                minor: 5,
                currency: eur
            }
            .to_string(),
            "0.05 EUR"
        );
    }

    fn snake(codes: &[&'static str]) {
        let mut seen = std::collections::BTreeSet::new();
        for c in codes {
            assert!(
                !c.is_empty() && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c}"
            );
            assert!(seen.insert(*c), "code {c} used twice");
        }
    }

    #[test]
    fn codes_are_snake_case_and_distinct() {
        let w = WalletId([1; 16]);
        let eur = Currency::new("EUR").expect("EUR");
        let sum = Sum {
            minor: 0,
            currency: eur,
        };
        snake(
            &[
                ReportProblem::ReportSeqReused { report_seq: 1 },
                ReportProblem::ChainGap { seq: 1 },
                ReportProblem::HeadMismatch {
                    reported: 1,
                    entries: 2,
                },
                ReportProblem::LoadsNotContiguous,
                ReportProblem::LoadNeverIssued { load_seq: 1 },
                ReportProblem::IncomingMisaddressed { payee: w },
                ReportProblem::BalanceEquation {
                    checkpoint: sum,
                    loads: sum,
                    outgoing: sum,
                    incoming: sum,
                    expected: sum,
                    reported: Amount::new(1, eur),
                },
                ReportProblem::RolledBack {
                    reported: 1,
                    recorded: 2,
                },
                ReportProblem::SelfLocked,
            ]
            .map(|p| p.code()),
        );
        snake(
            &[
                InputError::CustomerId,
                InputError::CustomerName,
                InputError::IdempotencyKey,
                InputError::ZeroAmount,
                InputError::ReturnWindow { min: 3600 },
                InputError::RetentionWindow { max: 1 },
                InputError::AmountTooLarge,
                InputError::Currency { expected: eur },
                InputError::Entry {
                    list: EntryList::Evidence,
                    index: 0,
                    error: DecodeError::Truncated,
                },
                InputError::ForeignOutgoing { index: 0 },
                InputError::UnknownPayerCertificate { payer: w },
                InputError::UnknownKeyGeneration { got: 2, current: 0 },
                InputError::EntryBeforeKey { seq: 1 },
                InputError::RekeyCsr("x"),
                InputError::PayerCertificateMismatch {
                    payer: w,
                    certified: w,
                },
                InputError::UnknownPayee { payee: w },
            ]
            .map(|e| e.code()),
        );
        snake(&[
            IssuerError::Randomness.code(),
            IssuerError::IdempotencyKeyReused.code(),
            LockReason::Report(vec![]).code(),
            LockReason::PaymentOutsideValidity { seq: 1 }.code(),
            TokenProblem::Expired.code(),
            Limit::Holding {
                max: Amount::new(1, eur),
                balance: Amount::new(1, eur),
            }
            .code(),
            Invariant::GroupNoResult.code(),
        ]);
    }

    #[test]
    fn scheme_codes_are_snake_case_and_distinct() {
        let i = IssuerId([2; 16]);
        snake(&[
            SchemeProblem::NotAMember.code(),
            SchemeProblem::NoPendingKey.code(),
            SchemeProblem::CodeMismatch {
                pending: "a".into(),
            }
            .code(),
            SchemeProblem::BadCode.code(),
            SchemeProblem::MemberKeyMismatch.code(),
            SchemeProblem::DirectoryNotNewer {
                installed: 2,
                offered: 1,
            }
            .code(),
            SchemeProblem::Currency.code(),
            SchemeProblem::NotInDirectory.code(),
            SchemeProblem::UnknownIssuer { issuer: i }.code(),
            SchemeProblem::StatementNotOurs.code(),
            SchemeProblem::StatementMismatch {
                counterparty: Some(i),
                what: "x",
            }
            .code(),
            SchemeProblem::StatementConflict { cycle: 1 }.code(),
            SchemeProblem::UnknownClaim {
                id: Hash32([0; 32]),
            }
            .code(),
            SchemeProblem::NotAParty.code(),
            Signature::Directory.code(),
            Signature::Statement.code(),
            Signature::Claim.code(),
        ]);
        assert_eq!(
            IssuerError::Scheme(SchemeProblem::NotAParty).code(),
            "scheme"
        );
        assert!(IssuerError::Scheme(SchemeProblem::NotAParty).is_client_error());
    }

    #[test]
    fn lock_reasons_join_their_problems() {
        let r = LockReason::Report(vec![
            ReportProblem::LoadsNotContiguous,
            ReportProblem::SelfLocked,
        ]);
        assert_eq!(
            r.to_string(),
            "applied loads are not contiguous after the checkpoint; the wallet reports itself locked (its vault detected a rollback)"
        );
        assert_eq!(r.code(), "report");
        assert_eq!(r.problems().len(), 2);
    }
}
