//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::dto::*;
use crate::error::ErrorBody;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "offpay issuer API",
        description = "Offline digital payments: wallet enrollment, sync (reconciliation and settlement), redeem; \
            operator endpoints (customers, loads, wallets, revocation, double spends, ledger invariants); \
            public CRL, trust anchors, health and metrics. Errors are `{\"code\", \"message\"}` with a stable code."
    ),
    paths(
        api::enroll,
        api::sync,
        api::redeem,
        api::create_customer,
        api::get_customer,
        api::deposit,
        api::withdraw,
        api::enrollment_token,
        api::list_wallets,
        api::get_wallet,
        api::load,
        api::revoke,
        api::lock,
        api::rekey,
        api::unlock,
        crate::lifecycle::retire,
        crate::lifecycle::close,
        crate::lifecycle::rules,
        crate::cases::open,
        crate::cases::list,
        crate::cases::show,
        crate::cases::decide,
        crate::cases::resolve,
        crate::cases::bundle,
        crate::privacy::run,
        crate::privacy::export,
        api::pin_unlock,
        api::approve_pin_unlock,
        api::double_spends,
        api::invariants,
        api::crl,
        api::roots,
        api::healthz,
        api::metrics,
        crate::admin_scheme::status,
        crate::admin_scheme::sync,
        serve,
    ),
    components(schemas(
        ErrorBody,
        EnrollRequest,
        EnrollResponse,
        RedeemResponse,
        CreateCustomerRequest,
        CustomerBalance,
        MoneyRequest,
        EnrollmentTokenResponse,
        WalletView,
        WalletList,
        PinUnlockPending,
        PinUnlockApproval,
        LoadResponse,
        RevokeRequest,
        LockRequest,
        RekeyRequest,
        RetireRequest,
        CloseRequest,
        CloseReportView,
        LifecycleRulesView,
        CaseOpenRequest,
        CaseActionRequest,
        CaseEventView,
        CaseView,
        CaseList,
        CaseBundle,
        RetentionRunRequest,
        RetentionReportView,
        WalletExportView,
        ExportCertificate,
        ExportVoucher,
        ExportCheckpoint,
        ExportEntry,
        ExportSettlement,
        ExportPosting,
        ExportDoubleSpend,
        ExportRevocation,
        DoubleSpendView,
        DoubleSpendList,
        LedgerTotalsView,
        InvariantView,
        RootsResponse,
        Health,
        SchemeStatus,
        PeerPositionView,
        SchemeRound,
    )),
    modifiers(&OperatorToken),
    tags(
        (name = "wallet", description = "Called by wallets; bodies are signed protocol messages"),
        (name = "operator", description = "Need `Authorization: Bearer <operator token>`"),
        (name = "public", description = "No authentication"),
    )
)]
pub struct ApiDoc;

struct OperatorToken;

impl Modify for OperatorToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON (built once).
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".into())
    })
    .clone()
}

/// This document: OpenAPI 3.1, generated from the code.
#[utoipa::path(
    get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn serve() -> Response {
    json_document(document_json())
}

/// An OpenAPI document as an `application/json` answer (the issuer's and the scheme's).
pub(crate) fn json_document(doc: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc,
    )
        .into_response()
}
