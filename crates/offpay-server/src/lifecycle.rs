//! Operator endpoints for the end of a wallet's life (offpay-issuer's
//! `lifecycle.rs`), and the background task that closes due wallets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use offpay_issuer::Issuer;
use offpay_issuer::lifecycle::CLOSES_PER_CALL_MAX;
use offpay_issuer::store::Retirement;
use offpay_store::AnyStore;

use crate::AppState;
use crate::api::{blocking, now, view, wallet_id};
use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathId};

/// Longest note kept with a retirement.
const NOTE_CHARS_MAX: usize = 200;

/// Retire a wallet reported lost or broken: it is revoked at once (its
/// certificate goes on the CRL) and its money is paid out when it closes
/// (`closes_at`: its certificate's expiry plus the payees' offline limit).
/// A new wallet of the same customer can be enrolled right away.
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/retire", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    request_body(content = RetireRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The wallet, revoked, with `retired` and `closes_at`", body = WalletView),
        (status = 400, description = "`invalid_json`, `invalid_input`: reason not `lost` or `broken`, note too long", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: already closed", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn retire(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<RetireRequest>,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    let why = Retirement::parse(&req.reason)
        .ok_or_else(|| ApiError::invalid_input("reason must be lost or broken"))?;
    let note = req.note.unwrap_or_default();
    if note.chars().count() > NOTE_CHARS_MAX || note.chars().any(char::is_control) {
        return Err(ApiError::invalid_input(format!(
            "note must be at most {NOTE_CHARS_MAX} characters without control characters"
        )));
    }
    let v = blocking(&st, move |i| {
        i.retire(&id, why, &note, now())?;
        view(i, &id)
    })
    .await?;
    tracing::warn!(wallet = %id, reason = why.as_str(), "wallet retired");
    Ok(Json(v))
}

/// Close the revoked wallets that are due now: return what settled to them
/// that their TA never held, pay their sub-accounts out by the scheme's
/// rules (the server also does this every `close_interval_seconds`).
#[utoipa::path(
    post, path = "/v1/admin/lifecycle/close", tag = "operator", security(("operator_token" = [])),
    request_body(content = CloseRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What was closed; `more`: call again", body = CloseReportView),
        (status = 400, description = "`invalid_json`, `invalid_input`: limit 0 or above 1,000", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn close(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<CloseRequest>,
) -> Result<Json<CloseReportView>, ApiError> {
    let limit = req.limit.unwrap_or(CLOSES_PER_CALL_MAX);
    if limit == 0 || limit > CLOSES_PER_CALL_MAX {
        return Err(ApiError::invalid_input(format!(
            "limit must be 1 to {CLOSES_PER_CALL_MAX}"
        )));
    }
    let r = blocking(&st, move |i| i.close_due(now(), limit)).await?;
    if r.closed > 0 {
        tracing::info!(
            closed = r.closed,
            paid_out = r.paid_out_minor,
            forfeited = r.forfeited_minor,
            "wallets closed"
        );
    }
    Ok(Json(CloseReportView::from(&r)))
}

/// The scheme's rules for money no TA holds (set in the server's
/// configuration, `[lifecycle]`).
#[utoipa::path(
    get, path = "/v1/admin/lifecycle/rules", tag = "operator", security(("operator_token" = [])),
    responses(
        (status = 200, description = "The rules in force", body = LifecycleRulesView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    )
)]
pub async fn rules(State(st): State<AppState>) -> Result<Json<LifecycleRulesView>, ApiError> {
    let r = blocking(&st, |i| i.lifecycle_rules()).await?;
    Ok(Json(LifecycleRulesView::from(&r)))
}

/// The thread closing due wallets every `interval`. It holds the issuer
/// weakly (the issuer and its connections are dropped outside any async
/// runtime, wherever the last server handle goes) and ends when asked, or
/// when the issuer is gone.
#[derive(Debug)]
pub(crate) struct Closer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

/// How often the thread looks at its stop flag.
const CLOSER_POLL: Duration = Duration::from_millis(100);

impl Closer {
    /// Start it (none when `interval` is zero).
    pub(crate) fn start(
        issuer: &Arc<Issuer<AnyStore>>,
        interval: Duration,
    ) -> std::io::Result<Option<Closer>> {
        Closer::periodic(issuer, interval, "offpay-closer", close_all_due)
    }

    /// A thread running `job` every `interval` on the issuer (none when
    /// `interval` is zero): the closer, and the retention pass (`privacy.rs`).
    pub(crate) fn periodic(
        issuer: &Arc<Issuer<AnyStore>>,
        interval: Duration,
        name: &str,
        job: fn(&Issuer<AnyStore>),
    ) -> std::io::Result<Option<Closer>> {
        if interval.is_zero() {
            return Ok(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let weak: Weak<Issuer<AnyStore>> = Arc::downgrade(issuer);
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut next = Instant::now() + interval;
                while !flag.load(Ordering::Relaxed) {
                    if Instant::now() < next {
                        std::thread::sleep(CLOSER_POLL.min(next - Instant::now()));
                        continue;
                    }
                    next = Instant::now() + interval;
                    let Some(issuer) = weak.upgrade() else {
                        return;
                    };
                    job(&issuer);
                }
            })?;
        Ok(Some(Closer { stop, handle }))
    }

    /// Ask it to end and wait for it.
    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle;
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
}

/// One run: close every wallet due now, a call's worth at a time.
fn close_all_due(issuer: &Issuer<AnyStore>) {
    loop {
        match issuer.close_due(now(), CLOSES_PER_CALL_MAX) {
            Ok(r) => {
                if r.closed > 0 {
                    tracing::info!(
                        closed = r.closed,
                        paid_out = r.paid_out_minor,
                        forfeited = r.forfeited_minor,
                        "wallets closed"
                    );
                }
                if !r.more {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "closing due wallets failed");
                return;
            }
        }
    }
}
