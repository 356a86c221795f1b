//! Operator endpoints for privacy by retention (offpay-issuer's
//! `retention.rs` and `export.rs`): run a retention batch, and export
//! everything the issuer holds about a wallet for its customer. The
//! background pass runs on the lifecycle module's periodic thread.

use axum::Json;
use axum::extract::State;
use offpay_issuer::Issuer;
use offpay_issuer::retention::RETENTION_BATCH_MAX;
use offpay_store::AnyStore;

use crate::AppState;
use crate::api::{blocking, now, wallet_id};
use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathId};

/// Delete the payer-payee pairing of settled payments older than the
/// retention window (`[privacy] retention_seconds`), once delivered (or
/// returned) and both wallets are checkpointed past them: one batch, one
/// transaction (the server also runs it every `retention_interval_seconds`).
#[utoipa::path(
    post, path = "/v1/admin/retention/run", tag = "operator", security(("operator_token" = [])),
    request_body(content = RetentionRunRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What was pruned; `more`: call again; `enabled` false: no window is set", body = RetentionReportView),
        (status = 400, description = "`invalid_json`, `invalid_input`: limit 0 or above 1,000", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn run(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<RetentionRunRequest>,
) -> Result<Json<RetentionReportView>, ApiError> {
    let limit = req.limit.unwrap_or(RETENTION_BATCH_MAX);
    if limit == 0 || limit > RETENTION_BATCH_MAX {
        return Err(ApiError::invalid_input(format!(
            "limit must be 1 to {RETENTION_BATCH_MAX}"
        )));
    }
    let (r, window) = blocking(&st, move |i| {
        Ok((i.run_retention(now(), limit)?, i.retention_seconds()?))
    })
    .await?;
    if r.pruned > 0 {
        tracing::info!(pruned = r.pruned, more = r.more, "payment pairings deleted");
    }
    Ok(Json(RetentionReportView::new(&r, window)))
}

/// Everything the issuer still holds about a wallet and its customer, for
/// the customer (data-subject access): the wallet's record, certificates,
/// loads, checkpoints, outgoing entries, settlements naming it, postings of
/// its sub-account and of its customer's account, double spends and
/// revocations. What the retention rule deleted is not in it.
#[utoipa::path(
    get, path = "/v1/admin/wallets/{id}/export", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    responses(
        (status = 200, description = "The export", body = WalletExportView),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
    )
)]
pub async fn export(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<WalletExportView>, ApiError> {
    let id = wallet_id(&id)?;
    let (x, currency) = blocking(&st, move |i| Ok((i.export_wallet(&id)?, i.currency()))).await?;
    tracing::info!(wallet = %id, "wallet data exported");
    Ok(Json(WalletExportView::new(&x, currency.as_str())))
}

/// One background pass: prune every due payment, a batch at a time.
pub(crate) fn prune_all_due(issuer: &Issuer<AnyStore>) {
    loop {
        match issuer.run_retention(now(), RETENTION_BATCH_MAX) {
            Ok(r) => {
                if r.pruned > 0 {
                    tracing::info!(pruned = r.pruned, "payment pairings deleted");
                }
                if !r.more {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention pass failed");
                return;
            }
        }
    }
}
