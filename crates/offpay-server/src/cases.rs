//! Operator endpoints for dispute cases (offpay-issuer's `cases.rs`,
//! docs/LIABILITY.md): open a case on a payment or a wallet, list and show
//! cases, decide by the liability rules, resolve (balanced postings or
//! none), and fetch the signed evidence bundle. Bad input is a specific 4xx
//! and writes nothing.

use axum::Json;
use axum::extract::State;
use offpay_issuer::CaseOpening;
use offpay_issuer::cases::CASES_LISTED_MAX;
use offpay_issuer::store::{CaseKind, CaseState};

use crate::AppState;
use crate::api::{blocking, now, wallet_id};
use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathId, QueryParams};

/// Cases listed when the request names no limit.
const CASES_LISTED_DEFAULT: u32 = 100;

fn case_id(s: &str) -> Result<u64, ApiError> {
    s.parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| ApiError::invalid_input("case id must be a positive integer"))
}

fn kind(s: &str) -> Result<CaseKind, ApiError> {
    CaseKind::parse(s).ok_or_else(|| {
        ApiError::invalid_input(
            "kind must be paid_not_received, not_my_payment or refused_but_debited",
        )
    })
}

/// Open a case: what a customer says about a payment (payer, seq) or, for
/// `not_my_payment`, a wallet. The system's evidence is attached at once.
#[utoipa::path(
    post, path = "/v1/admin/cases", tag = "operator", security(("operator_token" = [])),
    request_body(content = CaseOpenRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The case, open", body = CaseView),
        (status = 400, description = "`invalid_json`, `invalid_input`: kind, wallet id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`; `case` (`unknown_payment`): no recorded entry at this seq", body = ErrorBody),
        (status = 409, description = "`case` (`already_open`): a case on it is open or decided", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`case` (`kind_needs_payment`, `not_a_payment`, `text`)", body = ErrorBody),
    )
)]
pub async fn open(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<CaseOpenRequest>,
) -> Result<(axum::http::StatusCode, Json<CaseView>), ApiError> {
    let opening = CaseOpening {
        kind: kind(&req.kind)?,
        payer: wallet_id(&req.wallet_id)?,
        seq: req.seq,
        opened_by: req.opened_by,
        note: req.note.unwrap_or_default(),
    };
    let c = blocking(&st, move |i| i.open_case(&opening, now())).await?;
    tracing::info!(case = c.id, kind = c.kind.as_str(), wallet = %c.payer, "case opened");
    Ok((
        axum::http::StatusCode::CREATED,
        Json(CaseView::new(&c, &[])),
    ))
}

/// Cases by id, optionally in one state.
#[utoipa::path(
    get, path = "/v1/admin/cases", tag = "operator", security(("operator_token" = [])),
    params(CasesQuery),
    responses(
        (status = 200, description = "Cases", body = CaseList),
        (status = 400, description = "`invalid_input`: state, limit", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<CasesQuery>,
) -> Result<Json<CaseList>, ApiError> {
    let state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(CaseState::parse(s).ok_or_else(|| {
            ApiError::invalid_input("state must be open, decided, resolved or rejected")
        })?),
    };
    let limit = q.limit.unwrap_or(CASES_LISTED_DEFAULT);
    if limit == 0 || limit > CASES_LISTED_MAX {
        return Err(ApiError::invalid_input(format!(
            "limit must be 1 to {CASES_LISTED_MAX}"
        )));
    }
    let after = q.after.unwrap_or(0);
    let cases = blocking(&st, move |i| i.cases(state, after, limit)).await?;
    Ok(Json(CaseList {
        cases: cases.iter().map(|c| CaseView::new(c, &[])).collect(),
    }))
}

/// One case and its state changes.
#[utoipa::path(
    get, path = "/v1/admin/cases/{id}", tag = "operator", security(("operator_token" = [])),
    params(("id" = u64, Path, description = "Case id")),
    responses(
        (status = 200, description = "The case with its events", body = CaseView),
        (status = 400, description = "`invalid_input`: case id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`case` (`unknown_case`)", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<CaseView>, ApiError> {
    let id = case_id(&id)?;
    let (c, events) = blocking(&st, move |i| i.case(id)).await?;
    Ok(Json(CaseView::new(&c, &events)))
}

/// Decide a case by the liability rules, on the evidence as it is now.
#[utoipa::path(
    post, path = "/v1/admin/cases/{id}/decide", tag = "operator", security(("operator_token" = [])),
    params(("id" = u64, Path, description = "Case id")),
    request_body(content = CaseActionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The case, decided", body = CaseView),
        (status = 400, description = "`invalid_json`, `invalid_input`: case id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`case` (`unknown_case`)", body = ErrorBody),
        (status = 409, description = "`case` (`wrong_state`, `awaiting_payee`: the payee's window is open)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`case` (`text`): actor or note", body = ErrorBody),
    )
)]
pub async fn decide(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<CaseActionRequest>,
) -> Result<Json<CaseView>, ApiError> {
    let id = case_id(&id)?;
    let note = req.note.unwrap_or_default();
    let c = blocking(&st, move |i| i.decide_case(id, &req.actor, &note, now())).await?;
    tracing::info!(
        case = c.id,
        decision = c.decision.as_deref(),
        "case decided"
    );
    Ok(Json(CaseView::new(&c, &[])))
}

/// Resolve a decided case: the decision's balanced postings (or none), then
/// resolved or rejected. Never pays a payment twice.
#[utoipa::path(
    post, path = "/v1/admin/cases/{id}/resolve", tag = "operator", security(("operator_token" = [])),
    params(("id" = u64, Path, description = "Case id")),
    request_body(content = CaseActionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The case, resolved or rejected", body = CaseView),
        (status = 400, description = "`invalid_json`, `invalid_input`: case id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`case` (`unknown_case`)", body = ErrorBody),
        (status = 409, description = "`case` (`wrong_state`, `evidence_changed`: decide again, `already_refunded`)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`case` (`text`): actor or note", body = ErrorBody),
    )
)]
pub async fn resolve(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<CaseActionRequest>,
) -> Result<Json<CaseView>, ApiError> {
    let id = case_id(&id)?;
    let note = req.note.unwrap_or_default();
    let c = blocking(&st, move |i| i.resolve_case(id, &req.actor, &note, now())).await?;
    tracing::warn!(
        case = c.id,
        state = c.state.as_str(),
        paid = c.paid,
        "case resolved"
    );
    Ok(Json(CaseView::new(&c, &[])))
}

/// The case's signed evidence bundle (message type 16) as of its last state
/// change: verifies offline against the scheme root.
#[utoipa::path(
    get, path = "/v1/admin/cases/{id}/bundle", tag = "operator", security(("operator_token" = [])),
    params(("id" = u64, Path, description = "Case id")),
    responses(
        (status = 200, description = "The bundle, base64", body = CaseBundle),
        (status = 400, description = "`invalid_input`: case id", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`case` (`unknown_case`)", body = ErrorBody),
    )
)]
pub async fn bundle(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<CaseBundle>, ApiError> {
    let id = case_id(&id)?;
    let (c, _) = blocking(&st, move |i| i.case(id)).await?;
    Ok(Json(CaseBundle {
        id: c.id,
        bundle: b64(&c.bundle),
    }))
}
