//! The scheme server's OpenAPI 3.1 document.

use std::sync::OnceLock;

use axum::response::Response;
use offpay_api::*;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api;

/// The scheme API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "offpay scheme API",
        description = "The scheme operator of many issuers: admission (CA CSR -> certificate), \
            issuer status, the root-signed directory, cross-issuer claims (submit, inbox, ack), \
            settlement cycles and root-signed statements. Errors are `{\"code\", \"message\"}` with a stable code."
    ),
    paths(
        api::admit,
        api::list_issuers,
        api::suspend,
        api::reinstate,
        api::revoke,
        api::close_cycle,
        api::list_claims,
        api::invariants,
        api::submit_claims,
        api::inbox,
        api::ack,
        api::put_crl,
        api::statements,
        api::cycle_claims,
        api::directory,
        api::roots,
        api::healthz,
        api::metrics,
        serve,
    ),
    components(schemas(
        ErrorBody, AdmitRequest, AdmissionResponse, IssuerView, IssuerList, DirectoryChange,
        NetPosition, CycleView, SchemeClaimView, SchemeClaimList, SchemeInvariantView,
        SubmitClaimsRequest, ClaimOutcome, ClaimOutcomes, InboxClaim, Inbox, AckRequest,
        AckResponse, StatementView, StatementList, CycleClaims, SchemeRoots, Health,
    )),
    modifiers(&Tokens),
    tags(
        (name = "scheme operator", description = "Need `Authorization: Bearer <scheme operator token>`"),
        (name = "scheme issuer", description = "Need `Authorization: Bearer <issuer token>` (from the admission): act as that issuer only"),
        (name = "public", description = "No authentication"),
    )
)]
pub struct SchemeApiDoc;

struct Tokens;

impl Modify for Tokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        c.add_security_scheme(
            "issuer_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document as JSON (built once).
pub fn document_json() -> String {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        SchemeApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|_| "{}".into())
    })
    .clone()
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "public",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub async fn serve() -> Response {
    crate::openapi::json_document(document_json())
}
