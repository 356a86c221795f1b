//! Why the issuer refused a request, with a stable machine-readable code.

use core::fmt;

use offpay_protocol::cbor::DecodeError;
use offpay_protocol::pki::PkiError;

use crate::store::StoreError;

/// An issuer error. [`IssuerError::code`] is stable: clients match on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssuerError {
    /// The request bytes are not a valid message.
    Malformed(DecodeError),
    /// A field of a request is invalid (amount, id, currency...).
    InvalidInput(String),
    /// A signature in the request does not verify (which one is said).
    BadSignature(String),
    /// A certificate or CSR is refused.
    Certificate(PkiError),
    /// No such wallet.
    UnknownWallet,
    /// No such customer.
    UnknownCustomer,
    /// The customer already exists.
    CustomerExists,
    /// The enrollment token is unknown, used or expired.
    EnrollmentToken(&'static str),
    /// The wallet id is already enrolled.
    WalletExists,
    /// Not enough money in the customer's online account.
    InsufficientFunds {
        /// Balance in minor units.
        balance: i64,
        /// Needed.
        needed: i64,
    },
    /// A risk limit refuses the operation.
    Limit(&'static str),
    /// The wallet is locked or revoked and cannot do this.
    WalletNotActive(String),
    /// A report older than one already processed, or an idempotency key reused for another request.
    Replay(&'static str),
    /// The report names a checkpoint the issuer never issued.
    UnknownCheckpoint,
    /// The issuer is not initialised.
    NotInitialised,
    /// The issuer is already initialised.
    AlreadyInitialised,
    /// The CA keys cannot be decrypted with this master key.
    MasterKey,
    /// Storage failed.
    Store(StoreError),
    /// A ledger invariant would break: nothing was written.
    Invariant(String),
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
            IssuerError::WalletNotActive(_) => "wallet_not_active",
            IssuerError::Replay(_) => "replay",
            IssuerError::UnknownCheckpoint => "unknown_checkpoint",
            IssuerError::NotInitialised => "not_initialised",
            IssuerError::AlreadyInitialised => "already_initialised",
            IssuerError::MasterKey => "master_key",
            IssuerError::Store(StoreError::Conflict(_)) => "conflict",
            IssuerError::Store(_) => "storage",
            IssuerError::Invariant(_) => "invariant",
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
        )
    }
}

impl fmt::Display for IssuerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IssuerError::Malformed(e) => write!(f, "malformed message: {e}"),
            IssuerError::InvalidInput(m) => write!(f, "invalid input: {m}"),
            IssuerError::BadSignature(m) => write!(f, "signature does not verify: {m}"),
            IssuerError::Certificate(e) => write!(f, "certificate refused: {e}"),
            IssuerError::UnknownWallet => f.write_str("unknown wallet"),
            IssuerError::UnknownCustomer => f.write_str("unknown customer"),
            IssuerError::CustomerExists => f.write_str("customer already exists"),
            IssuerError::EnrollmentToken(w) => write!(f, "enrollment token {w}"),
            IssuerError::WalletExists => f.write_str("wallet already enrolled"),
            IssuerError::InsufficientFunds { balance, needed } => {
                write!(
                    f,
                    "insufficient funds: balance {balance}, needed {needed} (minor units)"
                )
            }
            IssuerError::Limit(w) => write!(f, "limit: {w}"),
            IssuerError::WalletNotActive(r) => write!(f, "wallet not active: {r}"),
            IssuerError::Replay(w) => write!(f, "replay: {w}"),
            IssuerError::UnknownCheckpoint => f.write_str("report builds on an unknown checkpoint"),
            IssuerError::NotInitialised => f.write_str("issuer not initialised"),
            IssuerError::AlreadyInitialised => f.write_str("issuer already initialised"),
            IssuerError::MasterKey => {
                f.write_str("CA keys cannot be decrypted with this master key")
            }
            IssuerError::Store(e) => write!(f, "{e}"),
            IssuerError::Invariant(m) => write!(f, "ledger invariant: {m}"),
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
        IssuerError::Certificate(e)
    }
}
