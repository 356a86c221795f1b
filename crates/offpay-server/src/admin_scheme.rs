//! A member issuer's operator routes for its scheme link:
//! `GET /v1/admin/scheme` (status) and `POST /v1/admin/scheme/sync` (one round now).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use offpay_api::{ErrorBody, PeerPositionView, SchemeRound, SchemeStatus};

use crate::AppState;
use crate::error::ApiError;
use crate::link::LinkError;

/// Most outbox claims counted by the status (the figure saturates there).
pub const OUTBOX_COUNT_MAX: u32 = 100_000;

fn link_error(e: LinkError) -> ApiError {
    match &e {
        LinkError::NotMember => ApiError::new(StatusCode::CONFLICT, "not_member", e.to_string()),
        LinkError::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()),
        LinkError::Scheme(_) | LinkError::BadAnswer(_) => {
            ApiError::new(StatusCode::BAD_GATEWAY, e.code(), e.to_string())
        }
        LinkError::Issuer(ie) => ApiError::from(ie.clone()),
    }
}

/// The member issuer's link to its scheme: directory version, last posted
/// cycle, outbox, positions per other issuer, the last round's error.
#[utoipa::path(
    get, path = "/v1/admin/scheme", tag = "operator",
    responses((status = 200, body = SchemeStatus), (status = 401, description = "`unauthorized`", body = ErrorBody)),
    security(("operator_token" = []))
)]
pub async fn status(State(st): State<AppState>) -> Result<Json<SchemeStatus>, ApiError> {
    let issuer = st.issuer.clone();
    let link = st.link.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<SchemeStatus, ApiError> {
        let member = issuer.is_member();
        let (positions, outbox, last_cycle) = if member {
            (
                issuer.peer_positions()?,
                issuer
                    .claims(&offpay_issuer::ClaimFilter {
                        state: Some(offpay_issuer::ClaimState::Outbox),
                        limit: OUTBOX_COUNT_MAX,
                        ..offpay_issuer::ClaimFilter::default()
                    })?
                    .len() as u64,
                issuer.last_statement_cycle()?,
            )
        } else {
            (Vec::new(), 0, 0)
        };
        let ls = link.as_ref().map(|l| l.status()).unwrap_or_default();
        Ok(SchemeStatus {
            member,
            issuer: issuer.issuer_id().to_hex(),
            scheme_url: link.as_ref().map(|l| l.url().to_string()),
            directory_version: issuer.directory_version(),
            last_statement_cycle: last_cycle,
            outbox,
            rounds: ls.rounds,
            last_success: ls.last_success,
            last_error: ls.last_error,
            positions: positions
                .iter()
                .map(|p| PeerPositionView {
                    peer: p.peer.to_hex(),
                    open_receivable_minor: p.open_receivable,
                    open_payable_minor: p.open_payable,
                    account_minor: p.account,
                    oldest_open: p.oldest_open.map(|t| t.0),
                })
                .collect(),
        })
    })
    .await
    .map_err(|_| ApiError::internal())??;
    Ok(Json(r))
}

/// Run one round of the scheme link now: push the CRL, pull the directory,
/// submit the outbox, apply and ack the inbox, post the statements.
#[utoipa::path(
    post, path = "/v1/admin/scheme/sync", tag = "operator",
    responses(
        (status = 200, description = "What the round did (`more`: run another)", body = SchemeRound),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`not_member`: standalone issuer, or no scheme.url configured", body = ErrorBody),
        (status = 502, description = "`scheme_unavailable`, `scheme_bad_answer`", body = ErrorBody),
    ),
    security(("operator_token" = []))
)]
pub async fn sync(State(st): State<AppState>) -> Result<Json<SchemeRound>, ApiError> {
    let Some(link) = st.link.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_member",
            "no scheme link: set scheme.url and scheme.token (a member issuer)",
        ));
    };
    let r = tokio::task::spawn_blocking(move || link.run_once())
        .await
        .map_err(|_| ApiError::internal())?;
    match r {
        Ok(round) => Ok(Json(round)),
        Err(e) => Err(link_error(e)),
    }
}
