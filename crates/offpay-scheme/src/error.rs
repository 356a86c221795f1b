//! Why the scheme refused a request: one variant per reason, each with a
//! stable snake_case [`SchemeError::code`] (what an HTTP client matches on)
//! and a [`SchemeError::detail`] naming the exact reason inside it. Codes
//! never change meaning; new ones may be added.

use core::fmt;

use offpay_protocol::pki::PkiError;

use crate::store::SchemeStoreError;

/// A refusal or failure of the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeError {
    /// The scheme database holds no scheme yet (`open` before `init`).
    NotInitialized,
    /// `init` on a database that already holds a scheme.
    AlreadyInitialized,
    /// The master key does not open the sealed root key (or the seal is damaged).
    MasterKey,
    /// The random source failed.
    Randomness,
    /// The scheme's configuration is refused (the root's commonName).
    InvalidConfig(&'static str),
    /// An issuer code is not `[a-z0-9-]{1,32}`.
    InvalidCode,
    /// The CSR does not parse, is not a CA request, or names another code.
    InvalidCsr(String),
    /// An issuer with this code, key or id is already admitted.
    IssuerExists,
    /// No admitted issuer by that id or code.
    UnknownIssuer,
    /// The bearer token is malformed or does not match.
    Unauthorized,
    /// The transition is not allowed from the issuer's status (e.g. reinstate a revoked issuer).
    InvalidTransition {
        /// The issuer's status.
        from: &'static str,
        /// What was asked.
        to: &'static str,
    },
    /// A revoked issuer cannot act (publish a CRL, submit claims...).
    IssuerRevoked,
    /// A published CRL does not parse, is not signed by the issuer's CA, or is not newer.
    InvalidCrl(String),
    /// A request is too large (what, the limit).
    TooLarge(&'static str, usize),
    /// An acknowledgement names a claim the issuer is not a party to, or that
    /// is not waiting for its acknowledgement.
    UnknownClaim,
    /// A figure overflowed (sums are i128; a statement line must fit u64).
    Overflow,
    /// A certificate, CRL or signature could not be produced or read.
    Pki(String),
    /// Stored data does not decode: the database was damaged or edited.
    Corrupt(String),
    /// The database failed.
    Store(SchemeStoreError),
}

impl SchemeError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            SchemeError::NotInitialized => "not_initialized",
            SchemeError::AlreadyInitialized => "already_initialized",
            SchemeError::MasterKey => "master_key",
            SchemeError::Randomness => "randomness",
            SchemeError::InvalidConfig(_) => "invalid_config",
            SchemeError::InvalidCode => "invalid_code",
            SchemeError::InvalidCsr(_) => "invalid_csr",
            SchemeError::IssuerExists => "issuer_exists",
            SchemeError::UnknownIssuer => "unknown_issuer",
            SchemeError::Unauthorized => "unauthorized",
            SchemeError::InvalidTransition { .. } => "invalid_transition",
            SchemeError::IssuerRevoked => "issuer_revoked",
            SchemeError::InvalidCrl(_) => "invalid_crl",
            SchemeError::TooLarge(..) => "too_large",
            SchemeError::UnknownClaim => "unknown_claim",
            SchemeError::Overflow => "overflow",
            SchemeError::Pki(_) => "pki",
            SchemeError::Corrupt(_) => "corrupt",
            SchemeError::Store(e) => e.code(),
        }
    }

    /// The exact reason, for logs and the error body's `detail`.
    pub fn detail(&self) -> String {
        match self {
            SchemeError::InvalidCsr(d)
            | SchemeError::InvalidCrl(d)
            | SchemeError::Pki(d)
            | SchemeError::Corrupt(d) => d.clone(),
            SchemeError::InvalidTransition { from, to } => format!("{from} -> {to}"),
            SchemeError::TooLarge(what, max) => format!("{what} over {max}"),
            SchemeError::InvalidConfig(what) => (*what).to_string(),
            SchemeError::Store(e) => e.to_string(),
            other => other.code().to_string(),
        }
    }

    /// Whether the caller's input is at fault (a 4xx), as opposed to the
    /// scheme itself (a 5xx: database, randomness, damaged data).
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            SchemeError::Randomness
                | SchemeError::MasterKey
                | SchemeError::Pki(_)
                | SchemeError::Corrupt(_)
                | SchemeError::Store(_)
                | SchemeError::NotInitialized
                | SchemeError::Overflow
        )
    }
}

impl fmt::Display for SchemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail())
    }
}

impl std::error::Error for SchemeError {}

impl From<SchemeStoreError> for SchemeError {
    fn from(e: SchemeStoreError) -> Self {
        SchemeError::Store(e)
    }
}

impl From<PkiError> for SchemeError {
    fn from(e: PkiError) -> Self {
        SchemeError::Pki(e.to_string())
    }
}
