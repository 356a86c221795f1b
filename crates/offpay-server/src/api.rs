//! The handlers. Every issuer call is blocking (synchronous database drivers)
//! and runs on tokio's blocking pool.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use offpay_issuer::{Issuer, IssuerError};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::LoadVoucher;
use offpay_protocol::pki::{Crl, RevocationReason, WalletProfile};
use offpay_protocol::{Amount, Currency, Suite, UnixSeconds, WalletId};
use offpay_store::AnyStore;

use crate::AppState;
use crate::dto::*;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{
    BODY_BYTES_MAX, CBOR, CborBody, JsonBody, PathId, QueryParams, SYNC_BODY_BYTES_MAX,
};

/// Default page size of the list endpoints.
pub const LIST_LIMIT_DEFAULT: u32 = 100;
/// Largest page size of the list endpoints.
pub const LIST_LIMIT_MAX: u32 = 1000;

/// The clock's edge: the domain takes time as an argument.
pub fn now() -> UnixSeconds {
    UnixSeconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

/// Run an issuer call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&Issuer<AnyStore>) -> Result<T, IssuerError> + Send + 'static,
) -> Result<T, ApiError> {
    let issuer = st.issuer.clone();
    match tokio::task::spawn_blocking(move || f(&issuer)).await {
        Ok(r) => r.map_err(|e| {
            st.metrics.issuer_error(&e);
            ApiError::from(e)
        }),
        Err(e) => {
            tracing::error!(error = %e, "blocking task failed");
            Err(ApiError::internal())
        }
    }
}

pub(crate) fn wallet_id(s: &str) -> Result<WalletId, ApiError> {
    WalletId::from_hex(s)
        .ok_or_else(|| ApiError::invalid_input("wallet id must be 32 hexadecimal characters"))
}

fn amount(st: &AppState, minor: u64, currency: &str) -> Result<Amount, ApiError> {
    let c = Currency::new(currency)
        .ok_or_else(|| ApiError::invalid_input("currency must be an ISO 4217 code such as EUR"))?;
    if c != st.issuer.currency() {
        return Err(ApiError::invalid_input(format!(
            "currency must be {}",
            st.issuer.currency()
        )));
    }
    let a = Amount::new(minor, c);
    if minor > st.operator_amount_max_minor {
        return Err(ApiError::invalid_input(format!(
            "amount {a} is over the operator amount cap of {} (operator_amount_max_minor in the server configuration)",
            Amount::new(st.operator_amount_max_minor, c)
        )));
    }
    Ok(a)
}

fn limit(l: Option<u32>) -> Result<u32, ApiError> {
    match l {
        None => Ok(LIST_LIMIT_DEFAULT),
        Some(0) => Err(ApiError::invalid_input("limit must be at least 1")),
        Some(n) => Ok(n.min(LIST_LIMIT_MAX)),
    }
}

fn cbor_response(bytes: Vec<u8>) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CBOR))],
        bytes,
    )
        .into_response()
}

pub(crate) fn view(issuer: &Issuer<AnyStore>, id: &WalletId) -> Result<WalletView, IssuerError> {
    let w = issuer.wallet(id)?;
    let bal = issuer.wallet_balance(id)?;
    Ok(WalletView::new(&w, bal, issuer.currency().as_str())
        .with_stranded(&issuer.stranded(id)?)
        .with_closes_at(issuer.closes_at(&w).map(|t| t.0)))
}

/// The `/v1/sync` answer's header carrying [`offpay_issuer::Stranded::minor`].
pub use offpay_api::STRANDED_HEADER;

// ---- wallet endpoints ------------------------------------------------------------------------

/// Enroll a wallet with a customer's one-time token and the wallet's CSR.
#[utoipa::path(
    post, path = "/v1/enroll", tag = "wallet",
    request_body(content = EnrollRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Certificate, CA chain, CRL and risk policy", body = EnrollResponse),
        (status = 400, description = "`invalid_json`, `invalid_input` (base64)", body = ErrorBody),
        (status = 403, description = "`enrollment_token`: unknown, used or expired", body = ErrorBody),
        (status = 409, description = "`wallet_exists`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`certificate_refused`: the CSR is refused", body = ErrorBody),
    )
)]
pub async fn enroll(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Json<EnrollResponse>, ApiError> {
    let csr = STANDARD
        .decode(req.csr.trim())
        .map_err(|_| ApiError::invalid_input("csr must be standard base64 of the DER CSR"))?;
    let token = req.token;
    let e = blocking(&st, move |i| i.enroll(&token, &csr, now())).await?;
    st.metrics.enrollments.fetch_add(1, Ordering::Relaxed);
    tracing::info!(wallet = %e.wallet, "wallet enrolled");
    Ok(Json(e.into()))
}

/// Reconcile a wallet's signed SyncReport; answers the signed SyncResponse.
#[utoipa::path(
    post, path = "/v1/sync", tag = "wallet",
    request_body(content = inline(CborMessage), content_type = "application/cbor", description = "The signed SyncReport"),
    responses(
        (status = 200, description = "The signed SyncResponse", content_type = "application/cbor", body = inline(CborMessage),
            headers(("offpay-stranded-minor" = i64, description = "Money the issuer credited to this wallet that its TA does not hold, minor units, as of this sync (unsigned information: see PROTOCOL.md)"))),
        (status = 400, description = "`malformed`, `invalid_input`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`replay` (report seq used by another report), `unknown_checkpoint`", body = ErrorBody),
        (status = 413, description = "`body_too_large` (over SYNC_REPORT_BYTES_MAX)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`bad_signature`, `certificate_refused`", body = ErrorBody),
        (status = 503, description = "`conflict`: retry", body = ErrorBody),
    )
)]
pub async fn sync(
    State(st): State<AppState>,
    CborBody(body): CborBody<SYNC_BODY_BYTES_MAX>,
) -> Result<Response, ApiError> {
    let out = blocking(&st, move |i| i.sync(&body, now())).await?;
    st.metrics.sync(&out);
    tracing::info!(
        entries = out.entries_recorded,
        settled = out.settled,
        double_spends = out.double_spends.len(),
        replayed = out.replayed,
        locked = out
            .locked
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        "sync"
    );
    for (payer, seq) in &out.double_spends {
        tracing::warn!(payer = %payer, seq, "double spend detected");
    }
    let mut resp = cbor_response(out.response);
    resp.headers_mut()
        .insert(STRANDED_HEADER, HeaderValue::from(out.stranded.minor));
    Ok(resp)
}

/// Settle a wallet's signed Redeem entry online (exactly once).
#[utoipa::path(
    post, path = "/v1/redeem", tag = "wallet",
    request_body(content = inline(CborMessage), content_type = "application/cbor", description = "The signed Redeem entry"),
    responses(
        (status = 200, description = "Settled (or already settled)", body = RedeemResponse),
        (status = 400, description = "`malformed`, `invalid_input`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`, `replay`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`bad_signature`", body = ErrorBody),
    )
)]
pub async fn redeem(
    State(st): State<AppState>,
    CborBody(body): CborBody<BODY_BYTES_MAX>,
) -> Result<Json<RedeemResponse>, ApiError> {
    let out = blocking(&st, move |i| i.redeem(&body, now())).await?;
    st.metrics.redeems.fetch_add(1, Ordering::Relaxed);
    if out.newly_settled {
        st.metrics.payments_settled.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Json(out.into()))
}

// ---- operator: customers -----------------------------------------------------------------------

/// Create a customer with an empty online account.
#[utoipa::path(
    post, path = "/v1/admin/customers", tag = "operator", security(("operator_token" = [])),
    request_body(content = CreateCustomerRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CustomerBalance),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`customer_exists`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn create_customer(
    State(st): State<AppState>,
    JsonBody(req): JsonBody<CreateCustomerRequest>,
) -> Result<(StatusCode, Json<CustomerBalance>), ApiError> {
    let id = req.id.clone();
    blocking(&st, move |i| i.create_customer(&req.id, &req.name, now())).await?;
    Ok((
        StatusCode::CREATED,
        Json(CustomerBalance {
            id,
            balance_minor: 0,
            currency: st.issuer.currency().to_string(),
        }),
    ))
}

/// A customer's online balance.
#[utoipa::path(
    get, path = "/v1/admin/customers/{id}", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    responses(
        (status = 200, description = "Balance", body = CustomerBalance),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_customer`", body = ErrorBody),
    )
)]
pub async fn get_customer(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<CustomerBalance>, ApiError> {
    let c = id.clone();
    let balance_minor = blocking(&st, move |i| i.customer_balance(&c)).await?;
    Ok(Json(CustomerBalance {
        id,
        balance_minor,
        currency: st.issuer.currency().to_string(),
    }))
}

async fn move_money(
    st: AppState,
    id: String,
    req: MoneyRequest,
    deposit: bool,
) -> Result<Json<CustomerBalance>, ApiError> {
    let amt = amount(&st, req.amount_minor, &req.currency)?;
    let c = id.clone();
    let balance_minor = blocking(&st, move |i| {
        if deposit {
            i.deposit(&c, amt, &req.idempotency_key, now())
        } else {
            i.withdraw(&c, amt, &req.idempotency_key, now())
        }
    })
    .await?;
    Ok(Json(CustomerBalance {
        id,
        balance_minor,
        currency: st.issuer.currency().to_string(),
    }))
}

/// Online money in from outside (exactly once per idempotency key).
#[utoipa::path(
    post, path = "/v1/admin/customers/{id}/deposit", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    request_body(content = MoneyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Balance after it", body = CustomerBalance),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_customer`", body = ErrorBody),
        (status = 409, description = "`replay`: idempotency key used for another request", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn deposit(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<MoneyRequest>,
) -> Result<Json<CustomerBalance>, ApiError> {
    move_money(st, id, req, true).await
}

/// Online money out (exactly once per idempotency key).
#[utoipa::path(
    post, path = "/v1/admin/customers/{id}/withdraw", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Customer id")),
    request_body(content = MoneyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Balance after it", body = CustomerBalance),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_customer`", body = ErrorBody),
        (status = 409, description = "`insufficient_funds`, `replay`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn withdraw(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<MoneyRequest>,
) -> Result<Json<CustomerBalance>, ApiError> {
    move_money(st, id, req, false).await
}

/// A one-time enrollment token for one of the customer's wallets; with
/// `?profile=terminal`, for a receive-only merchant terminal.
#[utoipa::path(
    post, path = "/v1/admin/customers/{id}/enrollment-tokens", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Customer id"), EnrollmentTokenQuery),
    responses(
        (status = 201, description = "The token (shown once)", body = EnrollmentTokenResponse),
        (status = 400, description = "`invalid_input` (also: an unknown profile)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_customer`", body = ErrorBody),
    )
)]
pub async fn enrollment_token(
    State(st): State<AppState>,
    PathId(id): PathId,
    QueryParams(q): QueryParams<EnrollmentTokenQuery>,
) -> Result<(StatusCode, Json<EnrollmentTokenResponse>), ApiError> {
    let profile = match q.profile.as_deref() {
        None => WalletProfile::Personal,
        Some(p) => WalletProfile::from_code(p)
            .ok_or_else(|| ApiError::invalid_input("profile must be personal or terminal"))?,
    };
    let c = id.clone();
    let token = blocking(&st, move |i| {
        i.create_enrollment_token_for(&c, profile, now())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollmentTokenResponse {
            token,
            customer: id,
            profile: profile.code().to_string(),
        }),
    ))
}

// ---- operator: wallets ---------------------------------------------------------------------------

/// Wallets, optionally of one customer, in enrollment order.
#[utoipa::path(
    get, path = "/v1/admin/wallets", tag = "operator", security(("operator_token" = [])),
    params(WalletsQuery),
    responses(
        (status = 200, description = "Wallets", body = WalletList),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    )
)]
pub async fn list_wallets(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<WalletsQuery>,
) -> Result<Json<WalletList>, ApiError> {
    let n = limit(q.limit)?;
    let wallets = blocking(&st, move |i| {
        let recs = i.wallets(q.customer.as_deref(), n)?;
        let cur = i.currency();
        recs.iter()
            .map(|w| {
                Ok(WalletView::new(w, i.wallet_balance(&w.id)?, cur.as_str())
                    .with_stranded(&i.stranded(&w.id)?))
            })
            .collect::<Result<Vec<_>, IssuerError>>()
    })
    .await?;
    Ok(Json(WalletList { wallets }))
}

/// One wallet: state, certificate, offline sub-account, load seq, checkpoint.
#[utoipa::path(
    get, path = "/v1/admin/wallets/{id}", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    responses(
        (status = 200, description = "The wallet", body = WalletView),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
    )
)]
pub async fn get_wallet(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    Ok(Json(blocking(&st, move |i| view(i, &id)).await?))
}

/// Load a wallet from its customer's online account: a signed LoadVoucher.
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/load", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    request_body(content = MoneyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The voucher (also delivered at the wallet's next sync)", body = LoadResponse),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`insufficient_funds`, `wallet_not_active`, `replay`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`limit`: over the holding limit", body = ErrorBody),
    )
)]
pub async fn load(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<MoneyRequest>,
) -> Result<Json<LoadResponse>, ApiError> {
    let id = wallet_id(&id)?;
    let amt = amount(&st, req.amount_minor, &req.currency)?;
    let voucher = blocking(&st, move |i| i.load(&id, amt, &req.idempotency_key, now())).await?;
    let v = Signed::<LoadVoucher>::decode(&voucher).map_err(|e| {
        tracing::error!(error = %e, "issuer returned an undecodable voucher");
        ApiError::internal()
    })?;
    st.metrics.loads.fetch_add(1, Ordering::Relaxed);
    let body = v.body();
    Ok(Json(LoadResponse {
        wallet_id: id.to_hex(),
        voucher: b64(&voucher),
        load_seq: body.load_seq,
        amount_minor: body.amount.minor,
        currency: body.amount.currency.to_string(),
    }))
}

/// Revoke a wallet's certificates and publish a new CRL.
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/revoke", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    request_body(content = RevokeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The wallet, revoked", body = WalletView),
        (status = 400, description = "`invalid_json`, `invalid_input` (reason_code)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<RevokeRequest>,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    let reason = match req.reason_code {
        None => RevocationReason::KeyCompromise,
        Some(c) => RevocationReason::from_code(u64::from(c)).ok_or_else(|| {
            ApiError::invalid_input(format!("reason_code {c} is not an RFC 5280 CRLReason"))
        })?,
    };
    let why = req
        .reason
        .unwrap_or_else(|| "revoked by the operator".into());
    let v = blocking(&st, move |i| {
        i.revoke(&id, reason, &why, now())?;
        view(i, &id)
    })
    .await?;
    tracing::warn!(wallet = %id, reason = %reason, "wallet revoked by the operator");
    Ok(Json(v))
}

/// Lock a wallet (its next sync response tells it to lock).
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/lock", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    request_body(content = LockRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The wallet, locked", body = WalletView),
        (status = 400, description = "`invalid_json`, `invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: revoked", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn lock(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<LockRequest>,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    let why = req
        .reason
        .unwrap_or_else(|| "locked by the operator".into());
    let v = blocking(&st, move |i| {
        i.lock(&id, &why)?;
        view(i, &id)
    })
    .await?;
    Ok(Json(v))
}

/// Ask a wallet for a new key: its next sync response tells it to make one,
/// the report after carries the CSR, and that report's response the new
/// certificate. `cancel` withdraws a request not yet completed.
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/rekey", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    request_body(content = RekeyRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The wallet, its re-key requested (`rekey_suite`) or cancelled", body = WalletView),
        (status = 400, description = "`invalid_json`, `invalid_input`: unknown suite, or a suite with `cancel`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: revoked", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
    )
)]
pub async fn rekey(
    State(st): State<AppState>,
    PathId(id): PathId,
    JsonBody(req): JsonBody<RekeyRequest>,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    let named =
        match req.suite.as_deref() {
            Some(n) => Some(Suite::from_name(n).ok_or_else(|| {
                ApiError::invalid_input("suite must be ed25519, p-256 or ml-dsa-44")
            })?),
            None => None,
        };
    if req.cancel && named.is_some() {
        return Err(ApiError::invalid_input("cancel takes no suite"));
    }
    let cancel = req.cancel;
    let v = blocking(&st, move |i| {
        let suite = if cancel {
            None
        } else {
            match named {
                Some(s) => Some(s),
                None => Some(
                    offpay_protocol::pki::Certificate::from_der(&i.wallet(&id)?.cert_der)?.suite(),
                ),
            }
        };
        i.request_rekey(&id, suite)?;
        view(i, &id)
    })
    .await?;
    tracing::info!(wallet = %id, suite = ?v.rekey_suite, "re-key requested by the operator");
    Ok(Json(v))
}

/// Unlock a locked wallet (its next sync response carries the unlock).
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/unlock", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id, hex")),
    responses(
        (status = 200, description = "The wallet, active", body = WalletView),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: revoked wallets cannot be unlocked", body = ErrorBody),
    )
)]
pub async fn unlock(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    let v = blocking(&st, move |i| {
        i.unlock(&id)?;
        view(i, &id)
    })
    .await?;
    Ok(Json(v))
}

/// Detected double spends, newest first, each with its proof.
#[utoipa::path(
    get, path = "/v1/admin/double-spends", tag = "operator", security(("operator_token" = [])),
    params(DoubleSpendsQuery),
    responses(
        (status = 200, description = "Double spends", body = DoubleSpendList),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    )
)]
pub async fn double_spends(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<DoubleSpendsQuery>,
) -> Result<Json<DoubleSpendList>, ApiError> {
    let n = limit(q.limit)?;
    let payer = q.payer.as_deref().map(wallet_id).transpose()?;
    let list = blocking(&st, move |i| i.double_spends(payer.as_ref(), n)).await?;
    Ok(Json(DoubleSpendList {
        double_spends: list.iter().map(DoubleSpendView::from).collect(),
    }))
}

/// The ledger invariants, checked now.
#[utoipa::path(
    get, path = "/v1/admin/invariants", tag = "operator", security(("operator_token" = [])),
    responses(
        (status = 200, description = "The invariant report (ok is false when one is violated)", body = InvariantView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    )
)]
pub async fn invariants(State(st): State<AppState>) -> Result<Json<InvariantView>, ApiError> {
    let r = blocking(&st, |i| i.invariants()).await?;
    if !r.ok {
        tracing::error!(violations = ?r.violations, "ledger invariants violated");
    }
    Ok(Json(InvariantView::from(&r)))
}

// ---- public ------------------------------------------------------------------------------------

/// The current CRL (DER, or PEM with `?format=pem`).
#[utoipa::path(
    get, path = "/v1/crl", tag = "public",
    params(CrlQuery),
    responses(
        (status = 200, description = "The CRL", content(
            (inline(CrlDer) = "application/pkix-crl"),
            (String = "application/x-pem-file"),
        )),
        (status = 400, description = "`invalid_input` (format)", body = ErrorBody),
    )
)]
pub async fn crl(
    State(st): State<AppState>,
    QueryParams(q): QueryParams<CrlQuery>,
) -> Result<Response, ApiError> {
    let pem = match q.format.as_deref() {
        None | Some("der") => false,
        Some("pem") => true,
        Some(_) => return Err(ApiError::invalid_input("format must be der or pem")),
    };
    let der = blocking(&st, |i| i.crl()).await?;
    if pem {
        let crl = Crl::from_der(&der).map_err(|e| {
            tracing::error!(error = %e, "stored CRL does not parse");
            ApiError::internal()
        })?;
        Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-pem-file"),
            )],
            crl.to_pem(),
        )
            .into_response())
    } else {
        Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pkix-crl"),
            )],
            der,
        )
            .into_response())
    }
}

/// The scheme root and issuer CA certificates (PEM).
#[utoipa::path(
    get, path = "/v1/roots", tag = "public",
    responses((status = 200, description = "Trust anchors", body = RootsResponse))
)]
pub async fn roots(State(st): State<AppState>) -> Json<RootsResponse> {
    Json(RootsResponse {
        root_pem: st.issuer.root_certificate().to_pem(),
        issuer_pem: st.issuer.issuer_certificate().to_pem(),
        currency: st.issuer.currency().to_string(),
    })
}

/// Liveness and database check (a cheap read).
#[utoipa::path(
    get, path = "/healthz", tag = "public",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 500, description = "The database does not answer", body = ErrorBody),
        (status = 503, description = "The database is busy", body = ErrorBody),
    )
)]
pub async fn healthz(State(st): State<AppState>) -> Result<Json<Health>, ApiError> {
    blocking(&st, |i| i.crl().map(|_| ())).await?;
    Ok(Json(Health {
        status: "ok".into(),
        backend: offpay_issuer::store::Store::backend(st.issuer.store()).into(),
    }))
}

/// Prometheus metrics: request counts, sync counters, ledger gauges.
#[utoipa::path(
    get, path = "/metrics", tag = "public",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(st): State<AppState>) -> Response {
    let ledger = blocking(&st, |i| i.invariants()).await.ok();
    let backend = offpay_issuer::store::Store::backend(st.issuer.store());
    let mut text = st.metrics.render(backend, ledger.as_ref());
    if let Ok(c) = blocking(&st, |i| i.case_counts()).await {
        text.push_str(&st.metrics.render_cases(&c));
    }
    if st.issuer.is_member()
        && let Ok(p) = blocking(&st, |i| i.peer_positions()).await
    {
        text.push_str(&st.metrics.render_scheme(&p, now().0));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// 404 for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// 405 for a known route with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

// ---- PIN lockout recovery (offpay_issuer::unlock) ------------------------------------------

/// A PIN-locked wallet asks to be unlocked: answered with the issuer-signed
/// PinUnlock once the operator approved the request, else 202 and the
/// recorded request. Asking again with the same request is safe.
#[utoipa::path(
    post, path = "/v1/pin-unlock", tag = "wallet",
    request_body(content = inline(CborMessage), content_type = "application/cbor", description = "The signed PinLockedRequest"),
    responses(
        (status = 200, description = "Approved: the signed PinUnlock", content_type = "application/cbor"),
        (status = 202, description = "Recorded, waiting for the operator's approval", body = PinUnlockPending),
        (status = 400, description = "`malformed`, `invalid_input`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: revoked", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`bad_signature`", body = ErrorBody),
    )
)]
pub async fn pin_unlock(
    State(st): State<AppState>,
    CborBody(body): CborBody<BODY_BYTES_MAX>,
) -> Result<Response, ApiError> {
    let answer = blocking(&st, move |i| i.pin_locked_request(&body, now())).await?;
    Ok(match answer {
        offpay_issuer::PinUnlockAnswer::Unlocked(bytes) => {
            tracing::info!("pin unlock delivered");
            cbor_response(bytes)
        }
        offpay_issuer::PinUnlockAnswer::Pending(r) => {
            tracing::info!(wallet = %r.wallet, attempts = r.attempts, "pin unlock requested");
            (
                StatusCode::ACCEPTED,
                Json(PinUnlockPending {
                    status: "pending".into(),
                    wallet_id: r.wallet.to_hex(),
                    attempts: r.attempts,
                    requested_at: r.requested.0,
                }),
            )
                .into_response()
        }
    })
}

/// Approve a wallet's PIN unlock request, once the customer re-authenticated
/// with the bank: the wallet's next `POST /v1/pin-unlock` gets the signed unlock.
#[utoipa::path(
    post, path = "/v1/admin/wallets/{id}/pin-unlock", tag = "operator", security(("operator_token" = [])),
    params(("id" = String, Path, description = "Wallet id (32 hex digits)")),
    responses(
        (status = 200, description = "Approved", body = PinUnlockApproval),
        (status = 400, description = "`invalid_input`: no request from this wallet", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`unknown_wallet`", body = ErrorBody),
        (status = 409, description = "`wallet_not_active`: revoked", body = ErrorBody),
    )
)]
pub async fn approve_pin_unlock(
    State(st): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<PinUnlockApproval>, ApiError> {
    let id = wallet_id(&id)?;
    let r = blocking(&st, move |i| i.approve_pin_unlock(&id, now())).await?;
    tracing::info!(wallet = %r.wallet, "pin unlock approved");
    Ok(Json(PinUnlockApproval {
        wallet_id: r.wallet.to_hex(),
        attempts: r.attempts,
        requested_at: r.requested.0,
        approved_at: r.approved.map_or(0, |t| t.0),
    }))
}
