//! The scheme server's handlers. Every scheme call is blocking (synchronous
//! database drivers) and runs on tokio's blocking pool. Bad input is a 4xx
//! with a stable code, decided before the scheme is called where the HTTP
//! layer can tell (base64, hex, counts), and by the scheme otherwise; a
//! refused request posts nothing.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use offpay_api::{
    AckRequest, AckResponse, AdmissionResponse, AdmitRequest, ClaimOutcome, ClaimOutcomes,
    CycleClaims, CycleView, DirectoryChange, ErrorBody, Health, Inbox, InboxClaim, InboxQuery,
    IssuerList, IssuerView, NetPosition, SchemeClaimList, SchemeClaimView, SchemeClaimsQuery,
    SchemeInvariantView, SchemeRoots, StatementList, StatementView, StatementsQuery,
    SubmitClaimsRequest, b64, b64_decode,
};
use offpay_protocol::{Hash32, IssuerId};
use offpay_scheme::store::SchemeStoreError;
use offpay_scheme::{ClaimQuery, ClaimResult, Scheme, SchemeError, SchemeStore};
use offpay_store::scheme::SchemeDb;

use super::{CLAIMS_BODY_BYTES_MAX, SchemeState, bearer};
use crate::api::now;
use crate::error::ApiError;
use crate::extract::{CBOR, CrlBody, JsonBody, JsonBodyMax, PathId, QueryParams};

/// Most claims in one submit, inbox page or ack over HTTP.
pub const CLAIMS_PER_REQUEST_MAX: usize = offpay_api::CLAIMS_PER_REQUEST_MAX;
/// Default and largest page of `GET /v1/scheme/claims`.
pub const CLAIM_LIST_MAX: u32 = 1000;
/// Default page of `GET /v1/scheme/claims`.
pub const CLAIM_LIST_DEFAULT: u32 = 100;

/// The status a scheme error is answered with.
pub fn status_of(e: &SchemeError) -> StatusCode {
    match e {
        SchemeError::InvalidCode | SchemeError::InvalidCsr(_) => StatusCode::BAD_REQUEST,
        SchemeError::InvalidCrl(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SchemeError::TooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
        SchemeError::Unauthorized => StatusCode::UNAUTHORIZED,
        SchemeError::IssuerRevoked => StatusCode::FORBIDDEN,
        SchemeError::UnknownIssuer | SchemeError::UnknownClaim => StatusCode::NOT_FOUND,
        SchemeError::IssuerExists
        | SchemeError::InvalidTransition { .. }
        | SchemeError::AlreadyInitialized => StatusCode::CONFLICT,
        SchemeError::Store(SchemeStoreError::Conflict(_)) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A scheme error as an answer (server faults without their details).
pub fn scheme_error(e: SchemeError) -> ApiError {
    let mut status = status_of(&e);
    if !e.is_client_error() && status.is_client_error() {
        status = StatusCode::INTERNAL_SERVER_ERROR;
    }
    let message = if status == StatusCode::SERVICE_UNAVAILABLE {
        tracing::warn!(code = e.code(), error = %e, "scheme transaction kept conflicting");
        "the request conflicted with concurrent requests; retry".to_string()
    } else if status.is_server_error() {
        tracing::error!(code = e.code(), error = %e, "scheme server error");
        "internal error".to_string()
    } else {
        e.to_string()
    };
    ApiError {
        status,
        code: if status == StatusCode::INTERNAL_SERVER_ERROR && e.is_client_error() {
            "internal"
        } else {
            e.code()
        },
        message,
    }
}

async fn blocking<T: Send + 'static>(
    st: &SchemeState,
    f: impl FnOnce(&Scheme<SchemeDb>) -> Result<T, SchemeError> + Send + 'static,
) -> Result<T, ApiError> {
    let scheme = st.scheme.clone();
    match tokio::task::spawn_blocking(move || f(&scheme)).await {
        Ok(r) => r.map_err(|e| {
            st.metrics.error(e.code());
            scheme_error(e)
        }),
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(ApiError::internal())
        }
    }
}

/// The issuer a request's bearer token names (issuer routes). An operator
/// token, a malformed or an unknown token is 401 `unauthorized`.
#[derive(Debug, Clone, Copy)]
pub struct AuthIssuer(pub IssuerId);

fn unauthorized_issuer() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "issuer bearer token missing or wrong",
    )
}

impl FromRequestParts<SchemeState> for AuthIssuer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &SchemeState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers)
            .ok_or_else(unauthorized_issuer)?
            .to_string();
        let scheme = st.scheme.clone();
        match tokio::task::spawn_blocking(move || scheme.authenticate(&token)).await {
            Ok(Ok(id)) => Ok(AuthIssuer(id)),
            Ok(Err(SchemeError::Unauthorized)) | Ok(Err(SchemeError::UnknownIssuer)) => {
                st.metrics.error("unauthorized");
                Err(unauthorized_issuer())
            }
            Ok(Err(e)) => Err(scheme_error(e)),
            Err(_) => Err(ApiError::internal()),
        }
    }
}

/// The scheme operator (for routes that share a path with an issuer route).
#[derive(Debug, Clone, Copy)]
pub struct Operator;

impl FromRequestParts<SchemeState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &SchemeState,
    ) -> Result<Self, Self::Rejection> {
        match bearer(&parts.headers) {
            Some(t) if st.is_operator_token(t) => Ok(Operator),
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "scheme operator bearer token missing or wrong",
            )),
        }
    }
}

fn issuer_hex(s: &str, what: &str) -> Result<IssuerId, ApiError> {
    IssuerId::from_hex(s)
        .ok_or_else(|| ApiError::invalid_input(format!("{what} must be 32 hexadecimal characters")))
}

fn claim_hex(s: &str, index: usize) -> Result<Hash32, ApiError> {
    Hash32::from_hex(s).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "acks[{index}].id must be 64 hexadecimal characters"
        ))
    })
}

fn outcome(id: &Hash32, r: &ClaimResult) -> ClaimOutcome {
    let (result, code) = match r {
        ClaimResult::Accepted => ("accepted", None),
        ClaimResult::AlreadyKnown => ("already_known", None),
        ClaimResult::Refused { code } => ("refused", Some((*code).to_string())),
    };
    ClaimOutcome {
        id: id.to_hex(),
        result: result.into(),
        code,
    }
}

/// An issuer's outcome (an ack) as the scheme's result.
pub fn parse_outcome(o: &ClaimOutcome, index: usize) -> Result<(Hash32, ClaimResult), ApiError> {
    let id = claim_hex(&o.id, index)?;
    let r = match (o.result.as_str(), o.code.as_deref()) {
        ("accepted", None) => ClaimResult::Accepted,
        ("already_known", None) => ClaimResult::AlreadyKnown,
        ("refused", Some(code)) => match ClaimResult::from_code(code) {
            Some(r @ ClaimResult::Refused { .. }) => r,
            _ => {
                return Err(ApiError::invalid_input(format!(
                    "acks[{index}].code must be a snake_case refusal code"
                )));
            }
        },
        _ => {
            return Err(ApiError::invalid_input(format!(
                "acks[{index}]: result must be accepted or already_known (no code), or refused with a code"
            )));
        }
    };
    Ok((id, r))
}

fn positions(p: &[(IssuerId, i128)]) -> Vec<NetPosition> {
    p.iter()
        .map(|(id, n)| NetPosition {
            issuer: id.to_hex(),
            net_minor: n.to_string(),
        })
        .collect()
}

fn cbor_response(bytes: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CBOR))],
        bytes,
    )
        .into_response()
}

// ---- operator ------------------------------------------------------------------------------

/// Admit an issuer from its CA CSR: its CA certificate (signed by the root),
/// the root, and its bearer token (shown once).
#[utoipa::path(
    post, path = "/v1/scheme/issuers", tag = "scheme operator",
    request_body(content = AdmitRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Admitted", body = AdmissionResponse),
        (status = 400, description = "`invalid_json`, `invalid_input` (base64), `invalid_code`, `invalid_csr`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`issuer_exists`", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn admit(
    State(st): State<SchemeState>,
    JsonBody(req): JsonBody<AdmitRequest>,
) -> Result<(StatusCode, Json<AdmissionResponse>), ApiError> {
    let csr = b64_decode(&req.csr).map_err(|_| ApiError::invalid_input("csr must be base64"))?;
    let code = req.code;
    let a = blocking(&st, move |s| s.admit(&code, &csr, now())).await?;
    tracing::info!(issuer = %a.issuer, code = %a.code, "issuer admitted");
    Ok((
        StatusCode::CREATED,
        Json(AdmissionResponse {
            issuer: a.issuer.to_hex(),
            code: a.code.clone(),
            ca_cert: b64(&a.ca_cert),
            root_cert: b64(&a.root_cert),
            token: a.token.clone(),
        }),
    ))
}

/// Every admitted issuer.
#[utoipa::path(
    get, path = "/v1/scheme/issuers", tag = "scheme operator",
    responses((status = 200, body = IssuerList), (status = 401, description = "`unauthorized`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn list_issuers(State(st): State<SchemeState>) -> Result<Json<IssuerList>, ApiError> {
    let list = blocking(&st, |s| s.issuers()).await?;
    Ok(Json(IssuerList {
        issuers: list
            .iter()
            .map(|i| IssuerView {
                issuer: i.id.to_hex(),
                code: i.code.clone(),
                status: i.status.as_str().into(),
                changed: i.changed,
            })
            .collect(),
    }))
}

#[derive(Clone, Copy)]
enum Action {
    Suspend,
    Reinstate,
    Revoke,
}

async fn status_change(
    st: SchemeState,
    code: String,
    action: Action,
) -> Result<Json<DirectoryChange>, ApiError> {
    if !offpay_scheme::valid_code(&code) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_code",
            "issuer code must be 1 to 32 characters of a-z 0-9 -",
        ));
    }
    let (id, version) = blocking(&st, move |s| {
        let id = s.issuer_id(&code)?;
        let t = now();
        let v = match action {
            Action::Suspend => s.suspend(&id, t)?,
            Action::Reinstate => s.reinstate(&id, t)?,
            Action::Revoke => s.revoke(&id, t)?,
        };
        Ok((id, v))
    })
    .await?;
    Ok(Json(DirectoryChange {
        issuer: id.to_hex(),
        directory_version: version,
    }))
}

/// Suspend an issuer: its wallets are refused after the payees' next sync;
/// claims on payments made before stay owed.
#[utoipa::path(
    post, path = "/v1/scheme/issuers/{code}/suspend", tag = "scheme operator",
    params(("code" = String, Path, description = "Issuer code")),
    responses(
        (status = 200, body = DirectoryChange),
        (status = 400, description = "`invalid_code`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_issuer`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn suspend(
    State(st): State<SchemeState>,
    PathId(code): PathId,
) -> Result<Json<DirectoryChange>, ApiError> {
    status_change(st, code, Action::Suspend).await
}

/// Reinstate a suspended issuer.
#[utoipa::path(
    post, path = "/v1/scheme/issuers/{code}/reinstate", tag = "scheme operator",
    params(("code" = String, Path, description = "Issuer code")),
    responses(
        (status = 200, body = DirectoryChange),
        (status = 400, description = "`invalid_code`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_issuer`", body = ErrorBody),
        (status = 409, description = "`invalid_transition` (a revoked issuer)", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn reinstate(
    State(st): State<SchemeState>,
    PathId(code): PathId,
) -> Result<Json<DirectoryChange>, ApiError> {
    status_change(st, code, Action::Reinstate).await
}

/// Revoke an issuer for good.
#[utoipa::path(
    post, path = "/v1/scheme/issuers/{code}/revoke", tag = "scheme operator",
    params(("code" = String, Path, description = "Issuer code")),
    responses(
        (status = 200, body = DirectoryChange),
        (status = 400, description = "`invalid_code`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_issuer`", body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn revoke(
    State(st): State<SchemeState>,
    PathId(code): PathId,
) -> Result<Json<DirectoryChange>, ApiError> {
    status_change(st, code, Action::Revoke).await
}

/// Close a settlement cycle: net every claim both parties hold into one
/// root-signed statement per issuer.
#[utoipa::path(
    post, path = "/v1/scheme/cycles", tag = "scheme operator",
    responses((status = 200, body = CycleView), (status = 401, description = "`unauthorized`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn close_cycle(State(st): State<SchemeState>) -> Result<Json<CycleView>, ApiError> {
    let c = blocking(&st, |s| s.close_cycle(now())).await?;
    tracing::info!(
        cycle = c.cycle,
        claims = c.claims,
        "settlement cycle closed"
    );
    st.metrics.cycle_closed(c.cycle, &c.positions);
    Ok(Json(CycleView {
        cycle: c.cycle,
        claims: c.claims,
        positions: positions(&c.positions),
    }))
}

/// Claims, oldest first (operator).
#[utoipa::path(
    get, path = "/v1/scheme/claims", tag = "scheme operator",
    params(SchemeClaimsQuery),
    responses(
        (status = 200, body = SchemeClaimList),
        (status = 400, description = "`invalid_input` (issuer, limit)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn list_claims(
    _op: Operator,
    State(st): State<SchemeState>,
    QueryParams(q): QueryParams<SchemeClaimsQuery>,
) -> Result<Json<SchemeClaimList>, ApiError> {
    let issuer = q
        .issuer
        .as_deref()
        .map(|s| issuer_hex(s, "issuer"))
        .transpose()?;
    let limit = match q.limit {
        None => CLAIM_LIST_DEFAULT,
        Some(0) => return Err(ApiError::invalid_input("limit must be at least 1")),
        Some(n) => n.min(CLAIM_LIST_MAX),
    };
    let query = ClaimQuery {
        issuer,
        cycle: None,
        disputed: q.disputed.unwrap_or(false),
        limit: limit as usize,
    };
    let claims = blocking(&st, move |s| s.claims(&query)).await?;
    Ok(Json(SchemeClaimList {
        claims: claims
            .iter()
            .map(|c| SchemeClaimView {
                id: c.id.to_hex(),
                payer_issuer: c.payer_issuer.to_hex(),
                payee_issuer: c.payee_issuer.to_hex(),
                amount_minor: u64::try_from(c.amount).unwrap_or(0),
                state: if c.cycle.is_some() {
                    "netted"
                } else if c.disputed() {
                    "disputed"
                } else if c.held_by_both() {
                    "both_sides"
                } else {
                    "one_side"
                }
                .into(),
                cycle: c.cycle,
                created: c.created.0,
                dispute: c.payer_refusal.clone().or_else(|| c.payee_refusal.clone()),
            })
            .collect(),
    }))
}

/// Check the scheme's ledger invariants now.
#[utoipa::path(
    get, path = "/v1/scheme/invariants", tag = "scheme operator",
    responses((status = 200, body = SchemeInvariantView), (status = 401, description = "`unauthorized`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn invariants(
    State(st): State<SchemeState>,
) -> Result<Json<SchemeInvariantView>, ApiError> {
    let r = blocking(&st, |s| s.invariants()).await?;
    if !r.ok {
        tracing::error!(violations = ?r.violations, "scheme invariants violated");
    }
    Ok(Json(SchemeInvariantView {
        ok: r.ok,
        violations: r.violations,
    }))
}

// ---- issuer (its own token) ----------------------------------------------------------------

/// Submit claims: signed Payment entries between a wallet of ours and a
/// wallet of another issuer. One outcome per entry, in order; a refused
/// entry is recorded and changes nothing else.
#[utoipa::path(
    post, path = "/v1/scheme/claims", tag = "scheme issuer",
    request_body(content = SubmitClaimsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One outcome per entry", body = ClaimOutcomes),
        (status = 400, description = "`invalid_json`, `invalid_input` (base64, count)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`issuer_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn submit_claims(
    AuthIssuer(from): AuthIssuer,
    State(st): State<SchemeState>,
    JsonBodyMax(req): JsonBodyMax<SubmitClaimsRequest, CLAIMS_BODY_BYTES_MAX>,
) -> Result<Json<ClaimOutcomes>, ApiError> {
    if req.entries.is_empty() || req.entries.len() > CLAIMS_PER_REQUEST_MAX {
        return Err(ApiError::invalid_input(format!(
            "entries must hold 1 to {CLAIMS_PER_REQUEST_MAX} claims"
        )));
    }
    let mut entries = Vec::with_capacity(req.entries.len());
    for (i, e) in req.entries.iter().enumerate() {
        entries.push(
            b64_decode(e)
                .map_err(|_| ApiError::invalid_input(format!("entries[{i}] must be base64")))?,
        );
    }
    let results = blocking(&st, move |s| s.submit_claims(&from, &entries, now())).await?;
    for (_, r) in &results {
        st.metrics.claim_in(r.code());
    }
    Ok(Json(ClaimOutcomes {
        results: results.iter().map(|(id, r)| outcome(id, r)).collect(),
    }))
}

/// The claims the other party submitted and this issuer has not acked yet, oldest first.
#[utoipa::path(
    get, path = "/v1/scheme/inbox", tag = "scheme issuer",
    params(InboxQuery),
    responses(
        (status = 200, body = Inbox),
        (status = 400, description = "`invalid_input` (limit)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn inbox(
    AuthIssuer(me): AuthIssuer,
    State(st): State<SchemeState>,
    QueryParams(q): QueryParams<InboxQuery>,
) -> Result<Json<Inbox>, ApiError> {
    let limit = match q.limit {
        None => CLAIMS_PER_REQUEST_MAX,
        Some(0) => return Err(ApiError::invalid_input("limit must be at least 1")),
        Some(n) => (n as usize).min(CLAIMS_PER_REQUEST_MAX),
    };
    let claims = blocking(&st, move |s| s.inbox(&me, limit)).await?;
    st.metrics.claims_out(claims.len() as u64);
    Ok(Json(Inbox {
        claims: claims
            .iter()
            .map(|(id, bytes)| InboxClaim {
                id: id.to_hex(),
                entry: b64(bytes),
            })
            .collect(),
    }))
}

/// Acknowledge inbox claims: accepted/already_known = this issuer holds it;
/// refused (with a code) = it disputes it. Every id must be a claim of this
/// issuer, or nothing is recorded (404 `unknown_claim`).
#[utoipa::path(
    post, path = "/v1/scheme/inbox/ack", tag = "scheme issuer",
    request_body(content = AckRequest, content_type = "application/json"),
    responses(
        (status = 200, body = AckResponse),
        (status = 400, description = "`invalid_json`, `invalid_input` (id, result, code, count)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_claim`", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn ack(
    AuthIssuer(me): AuthIssuer,
    State(st): State<SchemeState>,
    JsonBodyMax(req): JsonBodyMax<AckRequest, CLAIMS_BODY_BYTES_MAX>,
) -> Result<Json<AckResponse>, ApiError> {
    if req.acks.is_empty() || req.acks.len() > CLAIMS_PER_REQUEST_MAX {
        return Err(ApiError::invalid_input(format!(
            "acks must hold 1 to {CLAIMS_PER_REQUEST_MAX} acknowledgements"
        )));
    }
    let acks = req
        .acks
        .iter()
        .enumerate()
        .map(|(i, o)| parse_outcome(o, i))
        .collect::<Result<Vec<_>, _>>()?;
    let n = acks.len() as u64;
    let codes: Vec<&'static str> = acks.iter().map(|(_, r)| r.code()).collect();
    blocking(&st, move |s| s.ack(&me, &acks, now())).await?;
    for c in codes {
        st.metrics.ack(c);
    }
    Ok(Json(AckResponse { acked: n }))
}

/// Publish this issuer's CRL (signed by its CA, newer than the last): it
/// goes into the directory.
#[utoipa::path(
    put, path = "/v1/scheme/crl", tag = "scheme issuer",
    request_body(content = inline(offpay_api::CrlDer), content_type = "application/pkix-crl"),
    responses(
        (status = 200, body = DirectoryChange),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`issuer_revoked`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_crl`: not DER, not signed by this issuer's CA, or not newer", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn put_crl(
    AuthIssuer(me): AuthIssuer,
    State(st): State<SchemeState>,
    CrlBody(der): CrlBody,
) -> Result<Json<DirectoryChange>, ApiError> {
    let der = der.to_vec();
    let v = blocking(&st, move |s| s.publish_crl(&me, &der, now())).await?;
    Ok(Json(DirectoryChange {
        issuer: me.to_hex(),
        directory_version: v,
    }))
}

/// This issuer's root-signed settlement statements after a cycle, oldest first.
#[utoipa::path(
    get, path = "/v1/scheme/statements", tag = "scheme issuer",
    params(StatementsQuery),
    responses(
        (status = 200, body = StatementList),
        (status = 400, description = "`invalid_input` (after)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn statements(
    AuthIssuer(me): AuthIssuer,
    State(st): State<SchemeState>,
    QueryParams(q): QueryParams<StatementsQuery>,
) -> Result<Json<StatementList>, ApiError> {
    let after = q.after.unwrap_or(0);
    let list = blocking(&st, move |s| s.statements(&me, after)).await?;
    Ok(Json(StatementList {
        statements: list
            .into_iter()
            .map(|(cycle, bytes)| StatementView {
                cycle,
                statement: b64(&bytes),
            })
            .collect(),
    }))
}

/// This issuer's claim ids in a cycle (what its statement's digests are over).
#[utoipa::path(
    get, path = "/v1/scheme/cycles/{n}/claims", tag = "scheme issuer",
    params(("n" = u64, Path, description = "Cycle number")),
    responses(
        (status = 200, body = CycleClaims),
        (status = 400, description = "`invalid_input` (n)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("issuer_token" = []))
)]
pub async fn cycle_claims(
    AuthIssuer(me): AuthIssuer,
    State(st): State<SchemeState>,
    PathId(n): PathId,
) -> Result<Json<CycleClaims>, ApiError> {
    let cycle: u64 = n
        .parse()
        .ok()
        .filter(|c| *c > 0)
        .ok_or_else(|| ApiError::invalid_input("cycle must be a positive whole number"))?;
    let ids = blocking(&st, move |s| s.cycle_claims(&me, cycle)).await?;
    Ok(Json(CycleClaims {
        cycle,
        claims: ids.iter().map(Hash32::to_hex).collect(),
    }))
}

// ---- public --------------------------------------------------------------------------------

/// The root-signed directory: every admitted issuer's CA certificate, CRL and
/// status, and the root-signed issuer CRL.
#[utoipa::path(
    get, path = "/v1/scheme/directory", tag = "public",
    responses((status = 200, description = "Signed Directory", content_type = "application/cbor", body = inline(offpay_api::CborMessage)))
)]
pub async fn directory(State(st): State<SchemeState>) -> Result<Response, ApiError> {
    let d = blocking(&st, |s| s.directory()).await?;
    Ok(cbor_response(d))
}

/// The scheme root certificate and currency.
#[utoipa::path(
    get, path = "/v1/roots", tag = "public",
    responses((status = 200, body = SchemeRoots))
)]
pub async fn roots(State(st): State<SchemeState>) -> Json<SchemeRoots> {
    Json(SchemeRoots {
        root_pem: st.scheme.root_certificate().to_pem(),
        currency: st.scheme.currency().as_str().into(),
    })
}

/// Health: the database answers.
#[utoipa::path(
    get, path = "/healthz", tag = "public",
    responses((status = 200, body = Health), (status = 500, body = ErrorBody))
)]
pub async fn healthz(State(st): State<SchemeState>) -> Result<Json<Health>, ApiError> {
    blocking(&st, |s| s.directory_version()).await?;
    Ok(Json(Health {
        status: "ok".into(),
        backend: st.scheme.store().scheme_backend().into(),
    }))
}

/// Prometheus metrics: requests, claims in and out by result, open claims by
/// age, net position per issuer.
#[utoipa::path(
    get, path = "/metrics", tag = "public",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(st): State<SchemeState>) -> Response {
    let t = now();
    let open = blocking(&st, move |s| {
        let claims = s.claims(&ClaimQuery {
            issuer: None,
            cycle: Some(0),
            disputed: false,
            limit: usize::MAX,
        })?;
        let ages: Vec<u64> = claims
            .iter()
            .map(|c| t.0.saturating_sub(c.created.0))
            .collect();
        Ok(super::metrics::OpenClaims {
            ages,
            positions: s.open_positions()?,
        })
    })
    .await
    .ok();
    let text = st
        .metrics
        .render(st.scheme.store().scheme_backend(), open.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
