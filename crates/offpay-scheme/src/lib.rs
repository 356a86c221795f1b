//! offpay-scheme: the scheme operator of many issuers, sans HTTP.
//!
//! The scheme holds the root key (sealed under the operator's master key),
//! admits issuers by certifying their issuer CA from a CSR, suspends,
//! reinstates and revokes them, publishes a root-signed, versioned
//! [`Directory`](offpay_protocol::messages::Directory), routes cross-issuer
//! claims (each a payer's signed payment entry) between the payer's and the
//! payee's issuer, and closes net settlement cycles into root-signed
//! statements. Storage is behind [`store::SchemeStore`] (implemented by
//! `offpay-store` on SQLite and PostgreSQL). See docs/SCHEME.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod claims;
mod cycle;
pub mod error;
mod scheme;
pub mod seal;
pub mod store;
pub mod token;

pub use crate::claims::{ACK_MAX, ClaimResult, INBOX_MAX, SUBMIT_CLAIMS_MAX};
pub use crate::cycle::{CycleSummary, STATEMENTS_PAGE_MAX, SchemeInvariants};
pub use crate::error::SchemeError;
pub use crate::scheme::{
    Admission, ClaimInfo, DIRECTORY_VERSIONS_KEPT, ISSUER_CRL_VALIDITY_SECONDS,
    ISSUER_VALIDITY_SECONDS, IssuerInfo, ROOT_VALIDITY_SECONDS, Scheme, SchemeConfig, valid_code,
};
pub use crate::store::{ClaimQuery, RefusalRecord, SchemeStore, SchemeStoreError, SchemeTx};
