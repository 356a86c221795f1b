//! offpay-issuer: the issuer backend's domain.
//!
//! A double-entry ledger (general ledger plus an offline sub-ledger with one
//! account per wallet), the certificate factory (scheme root and issuer CA,
//! sealed at rest), enrollment, loads, redeems, and reconciliation: every
//! SyncReport is verified (signatures in batches, chain continuity, the
//! balance equation), every chain entry is recorded once under (payer, seq),
//! every payment is settled once, and two entries for one (payer, seq) become
//! a [`offpay_protocol::messages::DoubleSpendProof`], a revocation and a
//! covered loss. Storage is the [`store::Store`] trait (offpay-store).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod cases;
mod certificates;
pub mod claims;
mod directory;
pub mod error;
pub mod export;
mod group;
pub mod issuer;
pub mod ledger;
pub mod lifecycle;
mod limits;
pub mod member;
mod reconcile;
mod report;
pub mod retention;
mod settle;
pub mod store;
pub mod stranded;
pub mod unlock;

pub use cases::{CaseCounts, CaseOpening, Decision};
pub use claims::{ClaimAck, PeerPosition, StatementOutcome};
pub use error::{CaseProblem, IssuerError, LockReason, ReportProblem, SchemeProblem};
pub use issuer::{
    AMOUNT_MINOR_MAX, Enrollment, InvariantReport, Issuer, IssuerConfig, RedeemOutcome, SyncOutcome,
};
pub use ledger::Account;
pub use lifecycle::{CloseReport, LifecycleRules, Returned};
pub use retention::RetentionReport;
pub use store::{ClaimDirection, ClaimFilter, ClaimRecord, ClaimState};
pub use stranded::Stranded;
pub use unlock::{PinUnlockAnswer, PinUnlockRequest};
