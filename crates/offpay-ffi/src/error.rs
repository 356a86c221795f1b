//! [`OffpayError`]: every refusal of the SDK, one variant each.
//!
//! One variant per [`WalletError`] variant, with the same name (the mapping
//! is an exhaustive match without a wildcard: a new TA refusal does not
//! compile until it has its variant here), the vault's refusals as their own
//! variants in place of `WalletError::Vault`, and the SDK's own: a failed
//! host callback, a bad argument, the sync client's network and server
//! failures, and a caught panic.
//!
//! Fields are flat (numbers, strings, hex ids) so that every language gets
//! them as plain properties. No field is named `message` or `cause`: Kotlin
//! exceptions already have those; human text is in `reason`, and every
//! variant's `Display` (the exception's message) says what happened.

use offpay_protocol::Amount;
use offpay_wallet::vault::VaultError;
use offpay_wallet::{LockReason, WalletError};

/// Why an SDK call failed. A refused call changes nothing in the wallet
/// (balance, counters, log), except [`OffpayError::PayerRolledBack`], which
/// keeps the offending payment as evidence for the next sync.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Error)]
pub enum OffpayError {
    // ---- the TA's refusals (offpay_wallet::WalletError), same names -------------
    /// The wallet is locked; only sync is possible (which lifts an issuer's or
    /// a rollback lock once the issuer agrees).
    Locked {
        /// Locked because its stored state was rolled back (restored from an
        /// old copy); otherwise the issuer locked it.
        rolled_back: bool,
        /// Why, in words (the issuer's reason for an issuer lock).
        reason: String,
    },
    /// The wallet has no certificate yet: enroll it.
    NotEnrolled,
    /// The wallet is already enrolled.
    AlreadyEnrolled,
    /// The message bytes are not a valid message of the expected type.
    Malformed {
        /// What is wrong with them.
        reason: String,
    },
    /// A message signature does not verify.
    BadSignature,
    /// The peer's certificate does not chain to the trusted root, is
    /// expired, or is malformed.
    PeerCertificate {
        /// What is wrong with it.
        reason: String,
    },
    /// The peer's certificate is on the revocation list.
    PeerRevoked {
        /// The revoked certificate's serial.
        serial: u64,
    },
    /// The peer's issuer is suspended by the scheme.
    PeerIssuerSuspended {
        /// The issuer (hex id).
        issuer: String,
    },
    /// The peer's issuer is revoked by the scheme.
    PeerIssuerRevoked {
        /// The issuer (hex id).
        issuer: String,
    },
    /// The payment names another issuer as the payee's than this wallet's.
    WrongPayeeIssuer {
        /// This wallet's issuer (hex id).
        expected: String,
        /// The payment's payee issuer (hex id).
        got: String,
    },
    /// A scheme directory update from the issuer was refused; nothing was applied.
    DirectoryRefused {
        /// What is wrong with it.
        reason: String,
    },
    /// A directory update that does not move the wallet's directory forward.
    StaleDirectory {
        /// The version held.
        held: u64,
        /// The update's version.
        got: u64,
    },
    /// A directory update that would make the wallet hold too many issuers.
    DirectoryFull {
        /// The limit.
        max: u64,
    },
    /// A directory update that would make the wallet's directory too large.
    DirectoryTooLarge {
        /// The directory's size after the update.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A message refers to a certificate the wallet does not hold.
    UnknownCertificate,
    /// The certificate names another wallet than the message.
    CertificateWalletMismatch,
    /// A certificate, CRL or policy from the issuer does not verify against
    /// the trusted root.
    IssuerMaterial {
        /// What is wrong with it.
        reason: String,
    },
    /// A delta CRL from the issuer is not on the CRL number the wallet holds.
    CrlDeltaBaseMismatch {
        /// The CRL number held (`None`: none).
        held: Option<u64>,
        /// The delta's base CRL number.
        base: u64,
    },
    /// A delta CRL from the issuer was refused (malformed, another
    /// issuer's, bad signature, too many held); nothing was applied.
    CrlDeltaRefused {
        /// What is wrong with it.
        reason: String,
    },
    /// This wallet's certificate has expired: sync to renew it.
    OwnCertificateExpired,
    /// The payment request has expired.
    RequestExpired,
    /// The payment request is valid for longer than a request may be.
    RequestValidityTooLong {
        /// The longest validity accepted.
        max_seconds: u64,
    },
    /// The payment request is dated too far ahead of this device's clock.
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
        /// Balance now, minor units.
        balance_minor: u64,
        /// Amount asked, minor units.
        needed_minor: u64,
        /// ISO 4217 currency.
        currency: String,
    },
    /// Risk limit: largest single payment.
    LimitPerPayment {
        /// The limit, minor units.
        max_minor: u64,
        /// ISO 4217 currency.
        currency: String,
    },
    /// Risk limit: holding (largest offline balance).
    LimitHolding {
        /// The limit, minor units.
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
    /// This wallet is a receive-only terminal: it never pays (its takings
    /// leave it by the sweep at sync, or a redeem).
    TerminalCannotPay,
    /// The payer's certificate names a receive-only terminal: no wallet
    /// accepts a payment from one.
    PayerIsTerminal {
        /// The terminal (hex id).
        payer: String,
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
    /// No pending request has this nonce (never issued, already used:
    /// a replayed payment, or expired and dropped).
    NonceUnknown,
    /// The payment's amount differs from the request's.
    AmountMismatch {
        /// Requested, minor units.
        requested_minor: u64,
        /// Paid, minor units.
        paid_minor: u64,
        /// ISO 4217 currency of the request.
        currency: String,
    },
    /// The payer already paid this wallet with this seq or a higher one: its
    /// state was rolled back or cloned. The payment is kept as evidence.
    PayerRolledBack {
        /// The payer (hex id).
        payer: String,
        /// Highest seq seen from it.
        seen: u64,
        /// Seq of the refused payment.
        got: u64,
    },
    /// A receipt for a payment this wallet did not make.
    ReceiptUnknownPayment,
    /// A voucher or a sync response for another wallet.
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
    /// A checkpoint that contradicts the wallet's own chain.
    CheckpointMismatch,
    /// A policy older than the one in force.
    StalePolicy,
    /// Amount arithmetic overflowed.
    Overflow,
    /// The random source failed.
    Randomness,
    /// The key device (a hardware token) failed to sign; nothing was committed.
    KeyDevice {
        /// What failed.
        reason: String,
    },
    /// The policy requires another signature suite: this key (or the
    /// payer's) is of a retired suite; sync to re-key.
    SuiteRetired {
        /// The key's suite.
        suite: String,
        /// The suite required.
        required: String,
    },

    // ---- the vault's refusals (offpay_wallet::vault::VaultError) --------------
    /// The PIN is wrong; this attempt was counted.
    WrongPin {
        /// Further wrong attempts allowed before every PIN is refused.
        attempts_left: u32,
    },
    /// Too many wrong PINs: every PIN is refused until the issuer unlocks the wallet.
    PinAttemptsExhausted,
    /// The PIN attempt counter blob is missing or malformed: every PIN is
    /// refused until the issuer unlocks the wallet.
    PinAttemptsUnreadable,
    /// The device secret does not belong to this wallet (no attempt counted).
    WrongDeviceSecret,
    /// The key device (a PKCS#11 token) refused the user PIN; the token
    /// counts the attempts. `locked`: it refuses every PIN until its
    /// security officer unlocks it.
    TokenPinRefused {
        /// The token refuses every PIN.
        locked: bool,
    },
    /// The sealed state failed authentication: it was edited, truncated or replaced.
    Tampered,
    /// The stored blobs and the counter disagree in a way no crash can produce.
    Corrupt {
        /// What disagrees.
        reason: String,
    },
    /// The host's monotonic counter went (or would go) backwards.
    CounterRegressed,
    /// `create` needs a fresh counter (value 0): make one counter per wallet.
    CounterNotFresh,
    /// No wallet in this storage (nothing was committed yet).
    VaultNotFound,
    /// A wallet already exists in this storage.
    VaultAlreadyExists,
    /// The wallet state is larger than the vault may seal.
    StateTooLarge,
    /// Argon2id settings out of the accepted range.
    InvalidKdfParams,
    /// The key derivation failed (out of memory).
    Kdf,
    /// Another vault failure (an I/O error of a storage that is not the host's).
    Vault {
        /// What failed.
        reason: String,
    },

    // ---- the SDK's own ----------------------------------------------------------
    /// A host callback (storage, counter, platform) failed; nothing was
    /// committed past what the vault guarantees (the old or the new state).
    Host {
        /// Which callback and what it said.
        reason: String,
    },
    /// An argument is not acceptable (empty PIN, bad currency code, zero
    /// validity, bad server URL, iteration count out of range).
    InvalidArgument {
        /// What is wrong.
        reason: String,
    },
    /// The sync client could not reach the server (refused, unreachable,
    /// timeout, broken connection).
    Network {
        /// What happened.
        reason: String,
    },
    /// The server refused the request.
    Server {
        /// HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
        /// The server's message.
        reason: String,
    },
    /// The server's answer is not what the API defines.
    BadResponse {
        /// What is wrong with it.
        reason: String,
    },
    /// An internal error (a caught panic). The wallet object is unusable
    /// from then on: drop it and open the wallet again.
    Internal {
        /// What happened.
        reason: String,
    },
}

/// The text of the TA's refusals of a peer's or an issuer's material
/// (certificates, directory, CRL), the variants [`fmt_refusal`] hands here.
fn fmt_trust_refusal(e: &OffpayError, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    use OffpayError::*;
    match e {
        PeerCertificate { reason } => write!(f, "peer certificate refused: {reason}"),
        PeerRevoked { serial } => write!(f, "peer certificate revoked (serial {serial})"),
        PeerIssuerSuspended { issuer } => write!(f, "peer's issuer {issuer} is suspended"),
        PeerIssuerRevoked { issuer } => write!(f, "peer's issuer {issuer} is revoked"),
        WrongPayeeIssuer { expected, got } => write!(
            f,
            "payment names payee issuer {got}, this wallet's is {expected}"
        ),
        DirectoryRefused { reason } => write!(f, "scheme directory update refused: {reason}"),
        StaleDirectory { held, got } => {
            write!(f, "directory update {got} does not follow version {held}")
        }
        DirectoryFull { max } => write!(f, "directory would exceed {max} issuers"),
        DirectoryTooLarge { bytes, max } => {
            write!(f, "directory of {bytes} bytes would exceed {max}")
        }
        UnknownCertificate => f.write_str("certificate reference unknown to this wallet"),
        CertificateWalletMismatch => f.write_str("certificate belongs to another wallet"),
        IssuerMaterial { reason } => {
            write!(f, "issuer certificate, CRL or policy refused: {reason}")
        }
        CrlDeltaBaseMismatch {
            held: Some(h),
            base,
        } => write!(f, "delta CRL on base {base}, but this wallet holds CRL {h}"),
        CrlDeltaBaseMismatch { held: None, base } => {
            write!(f, "delta CRL on base {base}, but this wallet holds no CRL")
        }
        CrlDeltaRefused { reason } => write!(f, "delta CRL refused: {reason}"),
        other => write!(f, "{other:?}"),
    }
}

/// The text of the TA's refusals (the first section of [`OffpayError`]).
fn fmt_refusal(e: &OffpayError, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
    use OffpayError::*;
    match e {
        Locked { reason, .. } => write!(f, "wallet locked: {reason}"),
        NotEnrolled => f.write_str("wallet not enrolled"),
        AlreadyEnrolled => f.write_str("wallet already enrolled"),
        Malformed { reason } => write!(f, "malformed message: {reason}"),
        BadSignature => f.write_str("signature does not verify"),
        PeerCertificate { .. }
        | PeerRevoked { .. }
        | PeerIssuerSuspended { .. }
        | PeerIssuerRevoked { .. }
        | WrongPayeeIssuer { .. }
        | DirectoryRefused { .. }
        | StaleDirectory { .. }
        | DirectoryFull { .. }
        | DirectoryTooLarge { .. }
        | UnknownCertificate
        | CertificateWalletMismatch
        | IssuerMaterial { .. }
        | CrlDeltaBaseMismatch { .. }
        | CrlDeltaRefused { .. } => fmt_trust_refusal(e, f),
        OwnCertificateExpired => f.write_str("this wallet's certificate expired: sync to renew"),
        RequestExpired => f.write_str("payment request expired"),
        RequestValidityTooLong { max_seconds } => {
            write!(f, "payment request valid for longer than {max_seconds} s")
        }
        ClockSkew { ahead_seconds } => write!(
            f,
            "payment request dated {ahead_seconds} s ahead of this device's clock"
        ),
        CurrencyMismatch => f.write_str("currency mismatch"),
        SelfPayment => f.write_str("payment to oneself"),
        InsufficientFunds {
            balance_minor,
            needed_minor,
            currency,
        } => write!(
            f,
            "insufficient funds: balance {balance_minor}, needed {needed_minor} (minor units of {currency})"
        ),
        LimitPerPayment {
            max_minor,
            currency,
        } => write!(
            f,
            "limit: per-payment amount (max {max_minor} minor units of {currency})"
        ),
        LimitHolding { max_minor } => {
            write!(f, "limit: holding balance (max {max_minor} minor units)")
        }
        LimitOfflineSpend { left_minor } => {
            write!(f, "limit: offline spend ({left_minor} minor units left)")
        }
        LimitOfflineCount { max } => write!(f, "limit: offline payments count (max {max})"),
        LimitOfflineTime {
            offline_seconds,
            max_seconds,
        } => write!(
            f,
            "limit: offline {offline_seconds} s, max {max_seconds} s: sync first"
        ),
        LogFull { max } => write!(f, "unsynced log full ({max} entries): sync first"),
        TooManyPendingRequests => f.write_str("too many pending payment requests"),
        ZeroAmount => f.write_str("amount must be positive"),
        WrongPayee => f.write_str("payment addressed to another wallet"),
        NonceUnknown => {
            f.write_str("no pending request with this nonce (replayed, unknown or expired)")
        }
        AmountMismatch {
            requested_minor,
            paid_minor,
            currency,
        } => write!(
            f,
            "amount mismatch: requested {requested_minor}, paid {paid_minor} (minor units of {currency})"
        ),
        PayerRolledBack { payer, seen, got } => write!(
            f,
            "payer {payer} rolled back: seq {got} after seq {seen} (kept as evidence)"
        ),
        ReceiptUnknownPayment => f.write_str("receipt for an unknown payment"),
        WrongWallet => f.write_str("message addressed to another wallet"),
        VoucherReplayed { load_seq } => write!(f, "load voucher {load_seq} already applied"),
        VoucherOutOfOrder { expected, got } => {
            write!(f, "load voucher {got} out of order (next is {expected})")
        }
        StaleSyncResponse => f.write_str("sync response does not answer the last report"),
        CheckpointMismatch => f.write_str("checkpoint contradicts the wallet's chain"),
        StalePolicy => f.write_str("risk policy older than the one in force"),
        Overflow => f.write_str("amount overflow"),
        Randomness => f.write_str("random source failed"),
        // The other sections are written by Display itself.
        other => write!(f, "{other:?}"),
    }
}

impl core::fmt::Display for OffpayError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use OffpayError::*;
        match self {
            WrongPin { attempts_left } => write!(f, "wrong PIN ({attempts_left} left)"),
            PinAttemptsExhausted => f.write_str(
                "too many wrong PINs: every PIN is refused until the issuer unlocks the wallet",
            ),
            PinAttemptsUnreadable => f.write_str(
                "the PIN attempt counter is missing or malformed: every PIN is refused until the issuer unlocks the wallet",
            ),
            WrongDeviceSecret => {
                f.write_str("the device secret does not belong to this wallet (no attempt counted)")
            }
            TokenPinRefused { locked: false } => {
                f.write_str("the token refused the PIN (the token counts the attempt)")
            }
            TokenPinRefused { locked: true } => {
                f.write_str("the token's PIN is locked: its security officer must unlock it")
            }
            Tampered => f.write_str("the sealed wallet state failed authentication (tampered)"),
            Corrupt { reason } => write!(f, "wallet storage corrupt: {reason}"),
            CounterRegressed => f.write_str("the monotonic counter went backwards"),
            CounterNotFresh => {
                f.write_str("a new wallet needs a fresh monotonic counter (value 0)")
            }
            VaultNotFound => f.write_str("no wallet in this storage"),
            VaultAlreadyExists => f.write_str("a wallet already exists in this storage"),
            StateTooLarge => f.write_str("wallet state too large to seal"),
            InvalidKdfParams => f.write_str("Argon2id settings out of range"),
            Kdf => f.write_str("key derivation failed"),
            Vault { reason } => write!(f, "vault: {reason}"),
            Host { reason } => write!(f, "host callback failed: {reason}"),
            InvalidArgument { reason } => write!(f, "invalid argument: {reason}"),
            Network { reason } => write!(f, "network: {reason}"),
            Server {
                status,
                code,
                reason,
            } => write!(f, "the server refused (HTTP {status}, {code}): {reason}"),
            BadResponse { reason } => write!(f, "bad server answer: {reason}"),
            Internal { reason } => write!(f, "internal error: {reason}"),
            TerminalCannotPay => f.write_str("a receive-only terminal never pays"),
            PayerIsTerminal { payer } => write!(f, "payer {payer} is a receive-only terminal"),
            LimitReceiveCount { max } => write!(f, "limit: received payments count (max {max})"),
            LimitReceiveAmount { left_minor } => {
                write!(f, "limit: received amount ({left_minor} minor units left)")
            }
            KeyDevice { reason } => write!(f, "key device: {reason}"),
            SuiteRetired { suite, required } => {
                write!(f, "{suite} keys are retired (the policy requires {required}): sync to re-key")
            }
            refusal => fmt_refusal(refusal, f),
        }
    }
}

impl std::error::Error for OffpayError {}

fn insufficient(balance: &Amount, needed: &Amount) -> OffpayError {
    OffpayError::InsufficientFunds {
        balance_minor: balance.minor,
        needed_minor: needed.minor,
        currency: needed.currency.to_string(),
    }
}

fn limit_per_payment(max: &Amount) -> OffpayError {
    OffpayError::LimitPerPayment {
        max_minor: max.minor,
        currency: max.currency.to_string(),
    }
}

fn amount_mismatch(requested: &Amount, paid: &Amount) -> OffpayError {
    OffpayError::AmountMismatch {
        requested_minor: requested.minor,
        paid_minor: paid.minor,
        currency: requested.currency.to_string(),
    }
}

impl OffpayError {
    /// An [`OffpayError::InvalidArgument`].
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        OffpayError::InvalidArgument {
            reason: reason.into(),
        }
    }

    /// The TA's refusal, with the message of a failed host callback (if one
    /// failed during the operation) in place of the vault's I/O code.
    pub(crate) fn from_wallet(e: WalletError, host_failure: Option<String>) -> Self {
        let host_caused = matches!(
            e,
            WalletError::Randomness | WalletError::Vault(VaultError::Io { .. } | VaultError::Rng)
        );
        match host_failure {
            Some(reason) if host_caused => OffpayError::Host { reason },
            _ => e.into(),
        }
    }

    /// The vault's refusal, with the host's message as for [`Self::from_wallet`].
    pub(crate) fn from_vault(e: VaultError, host_failure: Option<String>) -> Self {
        Self::from_wallet(WalletError::Vault(e), host_failure)
    }
}

/// The TA's refusals of a peer's or an issuer's material, the variants
/// `From<WalletError>` hands here.
fn trust_refusal(e: WalletError) -> OffpayError {
    use OffpayError as O;
    match e {
        WalletError::PeerCertificate(p) => O::PeerCertificate {
            reason: p.to_string(),
        },
        WalletError::PeerRevoked { serial } => O::PeerRevoked { serial },
        WalletError::PeerIssuerSuspended { issuer } => O::PeerIssuerSuspended {
            issuer: issuer.to_hex(),
        },
        WalletError::PeerIssuerRevoked { issuer } => O::PeerIssuerRevoked {
            issuer: issuer.to_hex(),
        },
        WalletError::WrongPayeeIssuer { expected, got } => O::WrongPayeeIssuer {
            expected: expected.to_hex(),
            got: got.to_hex(),
        },
        WalletError::DirectoryRefused(p) => O::DirectoryRefused {
            reason: p.to_string(),
        },
        WalletError::StaleDirectory { held, got } => O::StaleDirectory { held, got },
        WalletError::DirectoryFull { max } => O::DirectoryFull { max: max as u64 },
        WalletError::DirectoryTooLarge { bytes, max } => O::DirectoryTooLarge {
            bytes: bytes as u64,
            max: max as u64,
        },
        WalletError::UnknownCertificate => O::UnknownCertificate,
        WalletError::CertificateWalletMismatch => O::CertificateWalletMismatch,
        WalletError::IssuerMaterial(p) => O::IssuerMaterial {
            reason: p.to_string(),
        },
        WalletError::CrlDeltaBaseMismatch { held, base } => O::CrlDeltaBaseMismatch { held, base },
        WalletError::CrlDeltaRefused(p) => O::CrlDeltaRefused {
            reason: p.to_string(),
        },
        other => O::Internal {
            reason: format!("refusal without its mapping: {other}"),
        },
    }
}

impl From<WalletError> for OffpayError {
    fn from(e: WalletError) -> Self {
        use OffpayError as O;
        // Exhaustive, no wildcard: a new refusal of the TA needs its variant here.
        match e {
            WalletError::Locked(reason) => O::Locked {
                rolled_back: reason == LockReason::RolledBack,
                reason: reason.to_string(),
            },
            WalletError::NotEnrolled => O::NotEnrolled,
            WalletError::AlreadyEnrolled => O::AlreadyEnrolled,
            WalletError::Malformed(d) => O::Malformed {
                reason: d.to_string(),
            },
            WalletError::BadSignature => O::BadSignature,
            e @ (WalletError::PeerCertificate(_)
            | WalletError::PeerRevoked { .. }
            | WalletError::PeerIssuerSuspended { .. }
            | WalletError::PeerIssuerRevoked { .. }
            | WalletError::WrongPayeeIssuer { .. }
            | WalletError::DirectoryRefused(_)
            | WalletError::StaleDirectory { .. }
            | WalletError::DirectoryFull { .. }
            | WalletError::DirectoryTooLarge { .. }
            | WalletError::UnknownCertificate
            | WalletError::CertificateWalletMismatch
            | WalletError::IssuerMaterial(_)
            | WalletError::CrlDeltaBaseMismatch { .. }
            | WalletError::CrlDeltaRefused(_)) => trust_refusal(e),
            WalletError::OwnCertificateExpired => O::OwnCertificateExpired,
            WalletError::RequestExpired => O::RequestExpired,
            WalletError::RequestValidityTooLong { max_seconds } => {
                O::RequestValidityTooLong { max_seconds }
            }
            WalletError::ClockSkew { ahead_seconds } => O::ClockSkew { ahead_seconds },
            WalletError::CurrencyMismatch => O::CurrencyMismatch,
            WalletError::SelfPayment => O::SelfPayment,
            WalletError::InsufficientFunds { balance, needed } => insufficient(&balance, &needed),
            WalletError::LimitPerPayment { max } => limit_per_payment(&max),
            WalletError::LimitHolding { max_minor } => O::LimitHolding { max_minor },
            WalletError::LimitOfflineSpend { left_minor } => O::LimitOfflineSpend { left_minor },
            WalletError::LimitOfflineCount { max } => O::LimitOfflineCount { max },
            WalletError::LimitOfflineTime {
                offline_seconds,
                max_seconds,
            } => O::LimitOfflineTime {
                offline_seconds,
                max_seconds,
            },
            WalletError::TerminalCannotPay => O::TerminalCannotPay,
            WalletError::PayerIsTerminal { payer } => O::PayerIsTerminal {
                payer: payer.to_hex(),
            },
            WalletError::LimitReceiveCount { max } => O::LimitReceiveCount { max },
            WalletError::LimitReceiveAmount { left_minor } => O::LimitReceiveAmount { left_minor },
            WalletError::LogFull { max } => O::LogFull { max },
            WalletError::TooManyPendingRequests => O::TooManyPendingRequests,
            WalletError::ZeroAmount => O::ZeroAmount,
            WalletError::WrongPayee => O::WrongPayee,
            WalletError::NonceUnknown => O::NonceUnknown,
            WalletError::AmountMismatch { requested, paid } => amount_mismatch(&requested, &paid),
            WalletError::PayerRolledBack { payer, seen, got } => O::PayerRolledBack {
                payer: payer.to_hex(),
                seen,
                got,
            },
            WalletError::ReceiptUnknownPayment => O::ReceiptUnknownPayment,
            WalletError::WrongWallet => O::WrongWallet,
            WalletError::VoucherReplayed { load_seq } => O::VoucherReplayed { load_seq },
            WalletError::VoucherOutOfOrder { expected, got } => {
                O::VoucherOutOfOrder { expected, got }
            }
            WalletError::StaleSyncResponse => O::StaleSyncResponse,
            WalletError::CheckpointMismatch => O::CheckpointMismatch,
            WalletError::StalePolicy => O::StalePolicy,
            WalletError::Vault(v) => v.into(),
            WalletError::Overflow => O::Overflow,
            WalletError::Randomness => O::Randomness,
            WalletError::KeyDevice(e) => O::KeyDevice {
                reason: e.to_string(),
            },
            WalletError::SuiteRetired { suite, required } => O::SuiteRetired {
                suite: suite.name().to_string(),
                required: required.name().to_string(),
            },
        }
    }
}

impl From<VaultError> for OffpayError {
    fn from(e: VaultError) -> Self {
        use OffpayError as O;
        // VaultError is non_exhaustive: a variant added later arrives as `Vault`.
        match e {
            VaultError::Tampered => O::Tampered,
            VaultError::WrongPin { attempts_left } => O::WrongPin { attempts_left },
            VaultError::PinAttemptsExhausted => O::PinAttemptsExhausted,
            VaultError::PinAttemptsUnreadable => O::PinAttemptsUnreadable,
            VaultError::WrongDeviceSecret => O::WrongDeviceSecret,
            VaultError::NotFound => O::VaultNotFound,
            VaultError::AlreadyExists => O::VaultAlreadyExists,
            VaultError::Corrupt(what) => O::Corrupt {
                reason: what.to_string(),
            },
            VaultError::CounterRegressed => O::CounterRegressed,
            VaultError::CounterNotFresh => O::CounterNotFresh,
            VaultError::TooLarge => O::StateTooLarge,
            VaultError::InvalidKdfParams => O::InvalidKdfParams,
            VaultError::Kdf => O::Kdf,
            VaultError::Rng => O::Randomness,
            VaultError::TokenPinRefused { locked, .. } => O::TokenPinRefused { locked },
            // The same variant as the TA's own key-device refusal.
            e @ VaultError::KeyDevice { .. } => O::KeyDevice {
                reason: e.to_string(),
            },
            // Io (a storage that is not the host's), Crashed (fault injection).
            other => O::Vault {
                reason: other.to_string(),
            },
        }
    }
}
