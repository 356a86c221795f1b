//! HTTP errors: a status and `{"code": "<stable code>", "message": "<human text>"}`.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `malformed` | the CBOR message does not decode |
//! | 400 | `invalid_json` | the JSON body does not parse or lacks a field |
//! | 400 | `invalid_input` | a field's value is refused (amount, currency, id, base64, query) |
//! | 401 | `unauthorized` | operator call without the right bearer token |
//! | 403 | `enrollment_token` | enrollment token unknown, used or expired |
//! | 404 | `unknown_wallet`, `unknown_customer` | no such wallet or customer |
//! | 404 | `not_found` | no such route |
//! | 405 | `method_not_allowed` | the route exists, not with this method |
//! | 409 | `customer_exists`, `wallet_exists` | already there |
//! | 409 | `replay` | report seq or idempotency key already used for another request |
//! | 409 | `insufficient_funds` | not enough online money |
//! | 409 | `wallet_not_active` | the wallet is locked or revoked |
//! | 409 | `unknown_checkpoint` | the report builds on a checkpoint never issued |
//! | 409 | `scheme` | a member-issuer operation refused (detail: `offpay_issuer::SchemeProblem::code`) |
//! | 409 | `not_member` | the scheme link's routes on a standalone issuer |
//! | 502 | `scheme_unavailable`, `scheme_bad_answer` | the scheme link's round failed at the scheme |
//! | 413 | `body_too_large` | body over the route's limit |
//! | 415 | `unsupported_media_type` | wrong `Content-Type` |
//! | 422 | `bad_signature` | a signature does not verify |
//! | 422 | `certificate_refused` | the CSR or a certificate is refused |
//! | 422 | `limit` | a risk limit refuses the amount |
//! | 500 | `storage`, `invariant`, `randomness`, `master_key`, `not_initialised`, `internal` | server fault (details in the log only) |
//! | 503 | `conflict` | the transaction kept losing races: retry (`Retry-After: 1`) |
//!
//! Inside a code, `offpay_issuer::IssuerError::detail` names the exact reason
//! (logged and counted in `offpay_issuer_errors_total{code,detail}`):
//! `invalid_input`: `customer_id`, `customer_name`, `idempotency_key`,
//! `zero_amount`, `amount_too_large`, `currency`, `entry_malformed`,
//! `foreign_outgoing_entry`, `unknown_payer_certificate`,
//! `payer_certificate_mismatch`, `unknown_payee`; `bad_signature`: `report`,
//! `outgoing_entry`, `incoming_payment`, `evidence`, `redeem`;
//! `enrollment_token`: `unknown`, `used`, `expired`; `limit`:
//! `load_over_holding`, `holding`; `wallet_not_active`: `locked`, `revoked`;
//! `invariant`: see `offpay_issuer::error::Invariant`. A sync that locks a
//! wallet counts each `ReportProblem` code in
//! `offpay_sync_report_problems_total{code}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offpay_issuer::IssuerError;
use offpay_issuer::store::StoreError;

pub use offpay_api::ErrorBody;

/// An error answer.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message for the client.
    pub message: String,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    /// 400 `invalid_input`.
    pub fn invalid_input(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }
    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }
    /// 401 `unauthorized`.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "operator bearer token missing or wrong",
        )
    }
    /// 413 `body_too_large`.
    pub fn body_too_large(limit: usize) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body over the limit of {limit} bytes"),
        )
    }
    /// 415 `unsupported_media_type`.
    pub fn unsupported_media_type(expected: &str) -> ApiError {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {expected}"),
        )
    }
    /// 500 `internal` (details go to the log, not to the client).
    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

/// The status an issuer error is answered with.
pub fn status_of(e: &IssuerError) -> StatusCode {
    match e {
        IssuerError::Malformed(_) | IssuerError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        IssuerError::BadSignature(_) | IssuerError::Certificate(_) | IssuerError::Limit(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        IssuerError::EnrollmentToken(_) => StatusCode::FORBIDDEN,
        IssuerError::Scheme(
            offpay_issuer::SchemeProblem::UnknownIssuer { .. }
            | offpay_issuer::SchemeProblem::NotAParty
            | offpay_issuer::SchemeProblem::BadCode,
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        IssuerError::Scheme(_) => StatusCode::CONFLICT,
        IssuerError::Case(
            offpay_issuer::CaseProblem::UnknownCase { .. }
            | offpay_issuer::CaseProblem::UnknownPayment { .. },
        ) => StatusCode::NOT_FOUND,
        IssuerError::Case(
            offpay_issuer::CaseProblem::NotAPayment
            | offpay_issuer::CaseProblem::KindNeedsPayment
            | offpay_issuer::CaseProblem::Text { .. },
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        IssuerError::Case(_) => StatusCode::CONFLICT,
        IssuerError::UnknownWallet | IssuerError::UnknownCustomer => StatusCode::NOT_FOUND,
        IssuerError::CustomerExists
        | IssuerError::WalletExists
        | IssuerError::InsufficientFunds { .. }
        | IssuerError::WalletNotActive { .. }
        | IssuerError::IdempotencyKeyReused
        | IssuerError::UnknownCheckpoint
        | IssuerError::AlreadyInitialised => StatusCode::CONFLICT,
        IssuerError::Store(StoreError::Conflict(_)) => StatusCode::SERVICE_UNAVAILABLE,
        // The token holding the CA key failed: retry later, nothing was written.
        IssuerError::SigningDevice(_) => StatusCode::SERVICE_UNAVAILABLE,
        IssuerError::Store(_)
        | IssuerError::Invariant(_)
        | IssuerError::NotInitialised
        | IssuerError::MasterKey
        | IssuerError::Randomness
        | IssuerError::DeviceKey(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<IssuerError> for ApiError {
    fn from(e: IssuerError) -> ApiError {
        let mut status = status_of(&e);
        if !e.is_client_error() && status.is_client_error() {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
        let message = if status.is_server_error() {
            // The details are for the operator's log only.
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(code = e.code(), detail = e.detail(), error = %e, "transaction kept conflicting");
                "the request conflicted with concurrent requests; retry".to_string()
            } else {
                tracing::error!(code = e.code(), detail = e.detail(), error = %e, "server error");
                "internal error".to_string()
            }
        } else {
            e.to_string()
        };
        ApiError {
            status,
            code: e.code(),
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use offpay_issuer::error::{EntryList, InputError, Invariant, Limit, Signature, TokenProblem};
    use offpay_issuer::store::WalletState;
    use offpay_protocol::cbor::DecodeError;
    use offpay_protocol::{Amount, Currency, WalletId};

    use super::*;

    #[test]
    fn every_client_error_is_4xx_and_every_server_error_5xx() {
        let eur = Currency::new("EUR").expect("EUR");
        let w = WalletId([7; 16]);
        let all = [
            IssuerError::Malformed(DecodeError::Truncated),
            IssuerError::InvalidInput(InputError::CustomerId),
            IssuerError::InvalidInput(InputError::Entry {
                list: EntryList::Incoming,
                index: 3,
                error: DecodeError::Truncated,
            }),
            IssuerError::InvalidInput(InputError::UnknownPayee { payee: w }),
            IssuerError::BadSignature(Signature::Redeem),
            IssuerError::UnknownWallet,
            IssuerError::UnknownCustomer,
            IssuerError::CustomerExists,
            IssuerError::EnrollmentToken(TokenProblem::Unknown),
            IssuerError::WalletExists,
            IssuerError::InsufficientFunds {
                balance: Amount::new(1, eur),
                needed: Amount::new(2, eur),
            },
            IssuerError::Limit(Limit::LoadOverHolding {
                max: Amount::new(100_000, eur),
            }),
            IssuerError::WalletNotActive {
                state: WalletState::Locked,
                reason: Some("x".into()),
            },
            IssuerError::IdempotencyKeyReused,
            IssuerError::Case(offpay_issuer::CaseProblem::AwaitingPayee),
            IssuerError::Case(offpay_issuer::CaseProblem::UnknownCase { id: 4 }),
            IssuerError::Case(offpay_issuer::CaseProblem::Text { field: "note" }),
            IssuerError::UnknownCheckpoint,
            IssuerError::NotInitialised,
            IssuerError::AlreadyInitialised,
            IssuerError::MasterKey,
            IssuerError::Randomness,
            IssuerError::Store(StoreError::Conflict("x".into())),
            IssuerError::Store(StoreError::Database("secret detail".into())),
            IssuerError::Invariant(Invariant::NegativeBalance {
                account: "secret".into(),
            }),
        ];
        for e in all {
            let client = e.is_client_error();
            let a = ApiError::from(e.clone());
            assert_eq!(a.code, e.code());
            assert_eq!(a.status.is_client_error(), client, "{e:?} -> {}", a.status);
            assert_eq!(a.status.is_server_error(), !client, "{e:?} -> {}", a.status);
            if !client {
                assert!(
                    !a.message.contains("secret"),
                    "no details leak: {}",
                    a.message
                );
            }
        }
        assert_eq!(
            ApiError::from(IssuerError::Store(StoreError::Conflict("x".into()))).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        // A failing random source is the server's fault, never the client's.
        assert_eq!(
            ApiError::from(IssuerError::Randomness).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        // Amounts are told in major units with their currency.
        let e = ApiError::from(IssuerError::InsufficientFunds {
            balance: Amount::new(150, eur),
            needed: Amount::new(2_000, eur),
        });
        assert_eq!(
            e.message,
            "insufficient funds: balance 1.50 EUR, needed 20.00 EUR"
        );
    }
}
