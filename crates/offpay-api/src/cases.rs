//! Dispute cases (`/v1/admin/cases`, offpay-issuer's `cases.rs`).

use serde::{Deserialize, Serialize};

/// `POST /v1/admin/cases`: open a case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseOpenRequest {
    /// `paid_not_received`, `not_my_payment` or `refused_but_debited`.
    pub kind: String,
    /// The payer of the payment (hex), or the wallet the case is about.
    pub wallet_id: String,
    /// The payment's seq; absent: a case on the wallet (`not_my_payment` only).
    #[serde(default)]
    pub seq: Option<u64>,
    /// The operator opening it.
    pub opened_by: String,
    /// The customer's words.
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/admin/cases/{id}/decide` and `/resolve`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseActionRequest {
    /// The operator.
    pub actor: String,
    /// Why, for the record.
    #[serde(default)]
    pub note: Option<String>,
}

/// One state change of a case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseEventView {
    /// Its number within the case.
    pub n: u64,
    /// When, Unix seconds.
    pub at: u64,
    /// The state before (absent: the opening).
    #[serde(default)]
    pub from: Option<String>,
    /// The state after.
    pub to: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub note: String,
}

/// A case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseView {
    /// Case id.
    pub id: u64,
    /// What the customer says.
    pub kind: String,
    /// `open`, `decided`, `resolved` or `rejected`.
    pub state: String,
    /// The payer of the payment, or the wallet (hex).
    pub wallet_id: String,
    /// The payment's seq (absent: a case on the wallet).
    #[serde(default)]
    pub seq: Option<u64>,
    /// The payment id (entry hash, hex).
    #[serde(default)]
    pub payment_id: Option<String>,
    /// When it was opened, Unix seconds.
    pub opened_at: u64,
    /// Who opened it.
    pub opened_by: String,
    /// The customer's words.
    pub note: String,
    /// The decision by the liability rules (absent while open).
    #[serde(default)]
    pub decision: Option<String>,
    /// When it was resolved or rejected, Unix seconds.
    #[serde(default)]
    pub resolved_at: Option<u64>,
    /// The amount in dispute, minor units.
    pub amount_minor: i64,
    /// What the resolution paid the customer, minor units.
    pub paid_minor: i64,
    /// When the payee's window was seen closed without its TA reporting the payment.
    #[serde(default)]
    pub window_closed_at: Option<u64>,
    /// Its state changes (`GET /v1/admin/cases/{id}` only).
    #[serde(default)]
    pub events: Vec<CaseEventView>,
}

/// Cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseList {
    /// By id.
    pub cases: Vec<CaseView>,
}

/// `GET /v1/admin/cases` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct CasesQuery {
    /// Only cases in this state.
    pub state: Option<String>,
    /// Only cases with a larger id (paging).
    pub after: Option<u64>,
    /// At most this many (1 to 1,000; default 100).
    pub limit: Option<u32>,
}

/// `GET /v1/admin/cases/{id}/bundle`: the signed evidence bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CaseBundle {
    /// Case id.
    pub id: u64,
    /// The EvidenceBundle envelope (message type 16), base64: verify it
    /// with `offpay evidence verify FILE --root ROOT`.
    pub bundle: String,
}

#[cfg(feature = "server")]
mod convert {
    use offpay_issuer::store::{CaseEvent, CaseRecord};

    use super::*;

    impl From<&CaseEvent> for CaseEventView {
        fn from(e: &CaseEvent) -> CaseEventView {
            CaseEventView {
                n: e.n,
                at: e.at.0,
                from: e.from.map(|s| s.as_str().to_string()),
                to: e.to.as_str().to_string(),
                actor: e.actor.clone(),
                note: e.note.clone(),
            }
        }
    }

    impl CaseView {
        /// From the record and its events (none in lists).
        pub fn new(c: &CaseRecord, events: &[CaseEvent]) -> CaseView {
            CaseView {
                id: c.id,
                kind: c.kind.as_str().to_string(),
                state: c.state.as_str().to_string(),
                wallet_id: c.payer.to_hex(),
                seq: c.seq,
                payment_id: c.entry.map(|h| h.to_hex()),
                opened_at: c.opened_at.0,
                opened_by: c.opened_by.clone(),
                note: c.note.clone(),
                decision: c.decision.clone(),
                resolved_at: c.resolved_at.map(|t| t.0),
                amount_minor: c.amount,
                paid_minor: c.paid,
                window_closed_at: c.window_closed_at.map(|t| t.0),
                events: events.iter().map(CaseEventView::from).collect(),
            }
        }
    }
}
