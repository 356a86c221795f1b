//! Every reason the TA refuses an operation, one variant each.

use core::fmt;

use offpay_protocol::cbor::DecodeError;
use offpay_protocol::pki::PkiError;
use offpay_protocol::{Amount, IssuerId, WalletId};

use crate::vault::VaultError;

/// Why the wallet is locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockReason {
    /// The vault returned a state older than its monotonic counter.
    RolledBack,
    /// The issuer locked the wallet at sync.
    Issuer(String),
}

impl fmt::Display for LockReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockReason::RolledBack => f.write_str("the wallet state was rolled back"),
            LockReason::Issuer(r) => write!(f, "locked by the issuer: {r}"),
        }
    }
}

/// A refused wallet operation. Every refusal leaves the wallet's state exactly as it was
/// (balance, counters, log), except [`WalletError::PayerRolledBack`], which keeps the
/// offending payment as evidence for the next sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletError {
    /// The wallet is locked; only sync is possible.
    Locked(LockReason),
    /// The wallet has no certificate yet.
    NotEnrolled,
    /// The wallet is already enrolled.
    AlreadyEnrolled,
    /// The message bytes are not a valid message of the expected type.
    Malformed(DecodeError),
    /// A message signature does not verify, or uses another suite than its signer's key.
    BadSignature,
    /// The peer's certificate does not chain to the trusted root, is expired, or is malformed.
    PeerCertificate(PkiError),
    /// The peer's certificate is on the CRL.
    PeerRevoked {
        /// The revoked certificate's serial.
        serial: u64,
    },
    /// The peer's issuer is suspended by the scheme (per the directory this
    /// wallet holds): its wallets are refused until it is reinstated.
    PeerIssuerSuspended {
        /// The suspended issuer.
        issuer: IssuerId,
    },
    /// The peer's issuer is revoked by the scheme: its wallets are refused.
    PeerIssuerRevoked {
        /// The revoked issuer.
        issuer: IssuerId,
    },
    /// The payment names another issuer as the payee's than this wallet's issuer.
    WrongPayeeIssuer {
        /// This wallet's issuer.
        expected: IssuerId,
        /// The payment's `payee_issuer`.
        got: IssuerId,
    },
    /// A scheme directory update from the issuer was refused (an issuer CA
    /// that does not chain to the root, a CRL its CA did not sign, an issuer
    /// CRL not signed by the root, malformed DER); nothing was applied.
    DirectoryRefused(PkiError),
    /// A directory update that does not move the wallet's directory forward.
    StaleDirectory {
        /// The version held.
        held: u64,
        /// The update's version.
        got: u64,
    },
    /// A directory update that would make the wallet hold more issuers than it may.
    DirectoryFull {
        /// The limit.
        max: usize,
    },
    /// A directory update that would make the wallet's directory (its
    /// certificates and CRLs) larger than it may seal.
    DirectoryTooLarge {
        /// The directory's size after the update.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A message refers to a certificate the wallet does not hold.
    UnknownCertificate,
    /// The certificate names another wallet than the message.
    CertificateWalletMismatch,
    /// A certificate, CRL or policy from the issuer does not verify against the trusted root.
    IssuerMaterial(PkiError),
    /// A delta CRL from the issuer is not on the CRL number this wallet
    /// holds (`held`; `None`: it holds no CRL); nothing was applied.
    CrlDeltaBaseMismatch {
        /// The CRL number held.
        held: Option<u64>,
        /// The delta's base CRL number.
        base: u64,
    },
    /// A delta CRL from the issuer was refused: malformed or a complete
    /// CRL, another issuer's, its signature does not verify, or the wallet
    /// already holds the most deltas it may; nothing was applied.
    CrlDeltaRefused(PkiError),
    /// The wallet's own certificate has expired: sync to renew it.
    OwnCertificateExpired,
    /// The payment request has expired.
    RequestExpired,
    /// The payment request is valid for longer than a request may be.
    RequestValidityTooLong {
        /// The longest validity accepted.
        max_seconds: u64,
    },
    /// The payment request is dated too far ahead of this device's clock: set the clock, or sync.
    ClockSkew {
        /// How far ahead.
        ahead_seconds: u64,
    },
    /// The amount is in another currency than the wallet's.
    CurrencyMismatch,
    /// A payment to oneself.
    SelfPayment,
    /// Not enough offline balance.
    InsufficientFunds {
        /// Balance now.
        balance: Amount,
        /// Amount asked.
        needed: Amount,
    },
    /// Risk limit: largest single payment.
    LimitPerPayment {
        /// The limit.
        max: Amount,
    },
    /// Risk limit: holding (largest offline balance).
    LimitHolding {
        /// The limit in minor units.
        max_minor: u64,
    },
    /// Risk limit: total offline spend since the last sync.
    LimitOfflineSpend {
        /// Minor units left.
        left_minor: u64,
    },
    /// Risk limit: number of offline payments since the last sync.
    LimitOfflineCount {
        /// The limit.
        max: u32,
    },
    /// Risk limit: too long since the last sync.
    LimitOfflineTime {
        /// Seconds since the last sync.
        offline_seconds: u64,
        /// The limit.
        max_seconds: u64,
    },
    /// This wallet is a receive-only terminal (its certificate's profile):
    /// it never pays. Its takings leave it by the sweep at sync, or a redeem.
    TerminalCannotPay,
    /// The payer's certificate names a receive-only terminal: no wallet
    /// accepts a payment from one (nothing was recorded, not even as evidence).
    PayerIsTerminal {
        /// The terminal.
        payer: WalletId,
    },
    /// Terminal risk limit: payments received since the last sync.
    LimitReceiveCount {
        /// The limit.
        max: u32,
    },
    /// Terminal risk limit: total received since the last sync.
    LimitReceiveAmount {
        /// Minor units that may still be received before a sync.
        left_minor: u64,
    },
    /// The unsynced log is full: sync first.
    LogFull {
        /// The limit.
        max: u32,
    },
    /// Too many outstanding payment requests.
    TooManyPendingRequests,
    /// The amount must be positive.
    ZeroAmount,
    /// The payment is addressed to another wallet.
    WrongPayee,
    /// No pending request has this nonce (never issued, already used, or expired and dropped).
    NonceUnknown,
    /// The payment's amount differs from the request's.
    AmountMismatch {
        /// Requested.
        requested: Amount,
        /// Paid.
        paid: Amount,
    },
    /// The payer already paid this wallet with this seq or a higher one: its state was
    /// rolled back or cloned. The payment is kept as evidence for the next sync.
    PayerRolledBack {
        /// The payer.
        payer: WalletId,
        /// Highest seq seen from it.
        seen: u64,
        /// Seq of the refused payment.
        got: u64,
    },
    /// A receipt for a payment this wallet did not make.
    ReceiptUnknownPayment,
    /// A voucher for another wallet, or a sync response for another wallet.
    WrongWallet,
    /// A voucher already applied.
    VoucherReplayed {
        /// Its load seq.
        load_seq: u64,
    },
    /// A voucher that skips one: apply the earlier ones first.
    VoucherOutOfOrder {
        /// The next load seq expected.
        expected: u64,
        /// The voucher's.
        got: u64,
    },
    /// A sync response that does not answer the last report.
    StaleSyncResponse,
    /// A checkpoint that contradicts the wallet's own chain (the issuer and the TA disagree).
    CheckpointMismatch,
    /// A policy older than the one in force.
    StalePolicy,
    /// The vault failed; nothing was committed.
    Vault(VaultError),
    /// Amount arithmetic overflowed.
    Overflow,
    /// The OS random source failed.
    Randomness,
    /// The vault's key device (a PKCS#11 token) failed to sign, or its
    /// signature did not verify; nothing was committed.
    KeyDevice(offpay_protocol::SignError),
    /// The issuer's policy requires another signature suite for wallets
    /// from a date that has passed: this wallet (as payer) or the payer
    /// (as payee) holds a key of a retired suite. Sync to re-key.
    SuiteRetired {
        /// The suite the key is in.
        suite: offpay_protocol::Suite,
        /// The suite the policy requires.
        required: offpay_protocol::Suite,
    },
}

impl WalletError {
    /// The message of a refusal of a peer's or an issuer's material
    /// (certificates, directory, CRL), the variants [`fmt::Display`] hands
    /// here.
    fn fmt_trust(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WalletError::*;
        match self {
            PeerCertificate(e) => write!(f, "peer certificate refused: {e}"),
            PeerRevoked { serial } => write!(f, "peer certificate revoked (serial {serial})"),
            PeerIssuerSuspended { issuer } => write!(f, "peer's issuer {issuer} is suspended"),
            PeerIssuerRevoked { issuer } => write!(f, "peer's issuer {issuer} is revoked"),
            WrongPayeeIssuer { expected, got } => {
                write!(
                    f,
                    "payment names payee issuer {got}, this wallet's is {expected}"
                )
            }
            DirectoryRefused(e) => write!(f, "scheme directory update refused: {e}"),
            StaleDirectory { held, got } => {
                write!(f, "directory update {got} does not follow version {held}")
            }
            DirectoryFull { max } => write!(f, "directory would exceed {max} issuers"),
            DirectoryTooLarge { bytes, max } => {
                write!(f, "directory of {bytes} bytes would exceed {max}")
            }
            UnknownCertificate => f.write_str("certificate reference unknown to this wallet"),
            CertificateWalletMismatch => f.write_str("certificate belongs to another wallet"),
            IssuerMaterial(e) => write!(f, "issuer certificate, CRL or policy refused: {e}"),
            CrlDeltaBaseMismatch {
                held: Some(h),
                base,
            } => {
                write!(f, "delta CRL on base {base}, but this wallet holds CRL {h}")
            }
            CrlDeltaBaseMismatch { held: None, base } => {
                write!(f, "delta CRL on base {base}, but this wallet holds no CRL")
            }
            CrlDeltaRefused(e) => write!(f, "delta CRL refused: {e}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl fmt::Display for WalletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use WalletError::*;
        match self {
            PeerCertificate(_)
            | PeerRevoked { .. }
            | PeerIssuerSuspended { .. }
            | PeerIssuerRevoked { .. }
            | WrongPayeeIssuer { .. }
            | DirectoryRefused(_)
            | StaleDirectory { .. }
            | DirectoryFull { .. }
            | DirectoryTooLarge { .. }
            | UnknownCertificate
            | CertificateWalletMismatch
            | IssuerMaterial(_)
            | CrlDeltaBaseMismatch { .. }
            | CrlDeltaRefused(_) => self.fmt_trust(f),
            Locked(r) => write!(f, "wallet locked: {r}"),
            NotEnrolled => f.write_str("wallet not enrolled"),
            AlreadyEnrolled => f.write_str("wallet already enrolled"),
            Malformed(e) => write!(f, "malformed message: {e}"),
            BadSignature => f.write_str("signature does not verify"),
            OwnCertificateExpired => {
                f.write_str("this wallet's certificate expired: sync to renew")
            }
            RequestExpired => f.write_str("payment request expired"),
            RequestValidityTooLong { max_seconds } => {
                write!(f, "payment request valid for longer than {max_seconds} s")
            }
            ClockSkew { ahead_seconds } => {
                write!(
                    f,
                    "payment request dated {ahead_seconds} s ahead of this device's clock: set the clock or sync"
                )
            }
            CurrencyMismatch => f.write_str("currency mismatch"),
            SelfPayment => f.write_str("payment to oneself"),
            InsufficientFunds { balance, needed } => {
                write!(f, "insufficient funds: balance {balance}, needed {needed}")
            }
            LimitPerPayment { max } => write!(f, "limit: per-payment amount (max {max})"),
            LimitHolding { max_minor } => {
                write!(f, "limit: holding balance (max {max_minor} minor units)")
            }
            LimitOfflineSpend { left_minor } => {
                write!(f, "limit: offline spend ({left_minor} minor units left)")
            }
            LimitOfflineCount { max } => write!(f, "limit: offline payments count (max {max})"),
            TerminalCannotPay => f.write_str("a receive-only terminal never pays"),
            PayerIsTerminal { payer } => write!(f, "payer {payer} is a receive-only terminal"),
            LimitReceiveCount { max } => write!(f, "limit: received payments count (max {max})"),
            LimitReceiveAmount { left_minor } => {
                write!(f, "limit: received amount ({left_minor} minor units left)")
            }
            LimitOfflineTime {
                offline_seconds,
                max_seconds,
            } => {
                write!(
                    f,
                    "limit: offline {offline_seconds} s, max {max_seconds} s: sync first"
                )
            }
            LogFull { max } => write!(f, "unsynced log full ({max} entries): sync first"),
            TooManyPendingRequests => f.write_str("too many pending payment requests"),
            ZeroAmount => f.write_str("amount must be positive"),
            WrongPayee => f.write_str("payment addressed to another wallet"),
            NonceUnknown => {
                f.write_str("no pending request with this nonce (replayed, unknown or expired)")
            }
            AmountMismatch { requested, paid } => {
                write!(f, "amount mismatch: requested {requested}, paid {paid}")
            }
            PayerRolledBack { payer, seen, got } => {
                write!(
                    f,
                    "payer {payer} rolled back: seq {got} after seq {seen} (kept as evidence)"
                )
            }
            ReceiptUnknownPayment => f.write_str("receipt for an unknown payment"),
            WrongWallet => f.write_str("message addressed to another wallet"),
            VoucherReplayed { load_seq } => write!(f, "load voucher {load_seq} already applied"),
            VoucherOutOfOrder { expected, got } => {
                write!(f, "load voucher {got} out of order (next is {expected})")
            }
            StaleSyncResponse => f.write_str("sync response does not answer the last report"),
            CheckpointMismatch => f.write_str("checkpoint contradicts the wallet's chain"),
            StalePolicy => f.write_str("risk policy older than the one in force"),
            Vault(e) => write!(f, "vault: {e}"),
            Overflow => f.write_str("amount overflow"),
            Randomness => f.write_str("random source failed"),
            KeyDevice(e) => write!(f, "key device: {e}"),
            SuiteRetired { suite, required } => write!(f, "{suite} retired for {required}: re-key"),
        }
    }
}

impl std::error::Error for WalletError {}

impl From<VaultError> for WalletError {
    fn from(e: VaultError) -> Self {
        WalletError::Vault(e)
    }
}
impl From<DecodeError> for WalletError {
    fn from(e: DecodeError) -> Self {
        WalletError::Malformed(e)
    }
}
