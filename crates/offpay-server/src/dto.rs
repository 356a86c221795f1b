//! The JSON bodies of the API (and their OpenAPI schemas).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use offpay_issuer::store::{DoubleSpendRecord, WalletRecord};
use offpay_issuer::{Enrollment, InvariantReport, RedeemOutcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A signed protocol message (COSE_Sign1 in deterministic CBOR), sent as the raw body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "application/cbor")]
pub struct CborMessage(pub Vec<u8>);

/// A DER-encoded X.509 CRL, sent as the raw body.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, content_media_type = "application/pkix-crl")]
pub struct CrlDer(pub Vec<u8>);

/// `POST /v1/enroll`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EnrollRequest {
    /// The one-time enrollment token the customer was given.
    pub token: String,
    /// The wallet's PKCS#10 CSR, DER, standard base64.
    #[schema(format = Byte)]
    pub csr: String,
}

/// Everything a wallet needs after enrollment.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EnrollResponse {
    /// The wallet id, hex.
    pub wallet_id: String,
    /// The wallet certificate, DER, base64.
    #[schema(format = Byte)]
    pub certificate: String,
    /// The issuer CA certificate, DER, base64.
    #[schema(format = Byte)]
    pub issuer_certificate: String,
    /// The scheme root certificate, DER, base64.
    #[schema(format = Byte)]
    pub root_certificate: String,
    /// The current CRL, DER, base64.
    #[schema(format = Byte)]
    pub crl: String,
    /// The signed RiskPolicy, CBOR, base64.
    #[schema(format = Byte)]
    pub policy: String,
}

impl From<Enrollment> for EnrollResponse {
    fn from(e: Enrollment) -> Self {
        EnrollResponse {
            wallet_id: e.wallet.to_hex(),
            certificate: b64(&e.certificate),
            issuer_certificate: b64(&e.issuer_certificate),
            root_certificate: b64(&e.root_certificate),
            crl: b64(&e.crl),
            policy: b64(&e.policy),
        }
    }
}

/// The result of `POST /v1/redeem`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RedeemResponse {
    /// The wallet, hex.
    pub wallet_id: String,
    /// Amount credited, minor units.
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: String,
    /// The customer's online balance after it, minor units.
    pub customer_balance_minor: i64,
    /// False when this redeem had already been settled (a retry).
    pub newly_settled: bool,
}

impl From<RedeemOutcome> for RedeemResponse {
    fn from(r: RedeemOutcome) -> Self {
        RedeemResponse {
            wallet_id: r.wallet.to_hex(),
            amount_minor: r.amount.minor,
            currency: r.amount.currency.to_string(),
            customer_balance_minor: r.customer_balance,
            newly_settled: r.newly_settled,
        }
    }
}

/// `POST /v1/admin/customers`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CreateCustomerRequest {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A customer's online account.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct CustomerBalance {
    /// The customer id.
    pub id: String,
    /// Online balance, minor units.
    pub balance_minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// A deposit, withdrawal or load.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct MoneyRequest {
    /// Minor units, positive.
    pub amount_minor: u64,
    /// ISO 4217 currency (the issuer's).
    #[schema(example = "EUR")]
    pub currency: String,
    /// The same key with the same request returns the first answer; with another request, 409 `replay`.
    pub idempotency_key: String,
}

/// A new enrollment token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EnrollmentTokenResponse {
    /// The one-time token (shown once).
    pub token: String,
    /// The customer it enrolls a wallet for.
    pub customer: String,
}

/// A wallet as the issuer knows it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct WalletView {
    /// The wallet, hex.
    pub wallet_id: String,
    /// The owning customer.
    pub customer: String,
    /// `active`, `locked` or `revoked`.
    pub state: String,
    /// Why it is locked or revoked.
    pub reason: Option<String>,
    /// Current certificate serial (decimal string: it exceeds 2^53).
    pub cert_serial: String,
    /// Current certificate expiry, Unix seconds.
    pub cert_not_after: u64,
    /// The wallet's offline sub-account balance, minor units.
    pub offline_balance_minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// Last load voucher sequence number issued.
    pub load_seq: u64,
    /// Last checkpoint number issued.
    pub checkpoint: u64,
    /// Last sync report sequence number processed.
    pub report_seq: u64,
    /// Unlocked by the operator; the next sync response carries the unlock.
    pub unlock_pending: bool,
    /// Clawed back from the customer for this wallet's double spends, minor units.
    pub clawed_back_minor: i64,
    /// Charged to the guarantee fund for this wallet's double spends, minor units.
    pub guaranteed_minor: i64,
    /// Enrollment time, Unix seconds.
    pub created: u64,
}

impl WalletView {
    /// From the record and the sub-account balance.
    pub fn new(w: &WalletRecord, offline_balance_minor: i64, currency: &str) -> WalletView {
        WalletView {
            wallet_id: w.id.to_hex(),
            customer: w.customer.clone(),
            state: w.state.as_str().to_string(),
            reason: w.reason.clone(),
            cert_serial: w.cert_serial.to_string(),
            cert_not_after: w.cert_not_after.0,
            offline_balance_minor,
            currency: currency.to_string(),
            load_seq: w.load_seq,
            checkpoint: w.checkpoint,
            report_seq: w.report_seq,
            unlock_pending: w.unlock_pending,
            clawed_back_minor: w.clawed_back,
            guaranteed_minor: w.guaranteed,
            created: w.created.0,
        }
    }
}

/// Wallets.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct WalletList {
    /// In enrollment order.
    pub wallets: Vec<WalletView>,
}

/// `GET /v1/admin/wallets` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WalletsQuery {
    /// Only this customer's wallets.
    pub customer: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A load voucher handed out.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LoadResponse {
    /// The wallet, hex.
    pub wallet_id: String,
    /// The signed LoadVoucher, CBOR, base64 (the wallet also receives it at its next sync).
    #[schema(format = Byte)]
    pub voucher: String,
    /// Its load sequence number.
    pub load_seq: u64,
    /// Minor units.
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// `POST /v1/admin/wallets/{id}/revoke`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct RevokeRequest {
    /// Why, in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 5280 CRLReason code (default 1, keyCompromise).
    #[serde(default)]
    pub reason_code: Option<u8>,
}

/// `POST /v1/admin/wallets/{id}/lock`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct LockRequest {
    /// Why, in words.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A detected double spend.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct DoubleSpendView {
    /// The cheating wallet, hex.
    pub payer: String,
    /// The chain sequence number used twice.
    pub seq: u64,
    /// The two entry hashes, hex, sorted.
    pub entries: Vec<String>,
    /// Detection time, Unix seconds.
    pub detected: u64,
    /// The DoubleSpendProof encoding (CBOR), base64: verifiable with the scheme root alone.
    #[schema(format = Byte)]
    pub proof: String,
}

impl From<&DoubleSpendRecord> for DoubleSpendView {
    fn from(d: &DoubleSpendRecord) -> Self {
        DoubleSpendView {
            payer: d.payer.to_hex(),
            seq: d.seq,
            entries: d.entries.iter().map(|h| h.to_hex()).collect(),
            detected: d.detected.0,
            proof: b64(&d.proof),
        }
    }
}

/// Double spends, newest first.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct DoubleSpendList {
    /// Newest first.
    pub double_spends: Vec<DoubleSpendView>,
}

/// `GET /v1/admin/double-spends` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DoubleSpendsQuery {
    /// Only this payer's (wallet id, hex).
    pub payer: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Ledger sums (decimal strings: they are 128-bit).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct LedgerTotalsView {
    /// Sum of all general-ledger balances (must be 0).
    pub general_sum: String,
    /// Sum of all offline-book balances (must be 0).
    pub offline_sum: String,
    /// The offline pool.
    pub pool: String,
    /// Sum of the wallet sub-accounts.
    pub wallets: String,
    /// The external account (minus the money that came in).
    pub external: String,
    /// The guarantee account.
    pub guarantee: String,
    /// Sum of the customer accounts.
    pub customers: String,
    /// Deposits minus withdrawals, summed from the postings.
    pub net_external_postings: String,
    /// Accounts whose cached balance differs from their postings.
    pub drifted_accounts: Vec<String>,
}

/// The ledger invariants now.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct InvariantView {
    /// True when every invariant holds.
    pub ok: bool,
    /// What is violated.
    pub violations: Vec<String>,
    /// The sums.
    pub totals: LedgerTotalsView,
    /// Money in circulation (decimal string).
    pub supply: String,
}

impl From<&InvariantReport> for InvariantView {
    fn from(r: &InvariantReport) -> Self {
        let t = &r.totals;
        InvariantView {
            ok: r.ok,
            violations: r.violations.clone(),
            totals: LedgerTotalsView {
                general_sum: t.general_sum.to_string(),
                offline_sum: t.offline_sum.to_string(),
                pool: t.pool.to_string(),
                wallets: t.wallets.to_string(),
                external: t.external.to_string(),
                guarantee: t.guarantee.to_string(),
                customers: t.customers.to_string(),
                net_external_postings: t.net_external_postings.to_string(),
                drifted_accounts: t.drifted_accounts.clone(),
            },
            supply: r.supply.to_string(),
        }
    }
}

/// The scheme's trust anchors.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct RootsResponse {
    /// The scheme root certificate, PEM.
    pub root_pem: String,
    /// The issuer CA certificate, PEM.
    pub issuer_pem: String,
    /// The issuer's currency.
    pub currency: String,
}

/// `GET /v1/crl` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CrlQuery {
    /// `der` (default) or `pem`.
    pub format: Option<String>,
}

/// `GET /healthz`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
}

/// `POST /v1/pin-unlock` before the operator approved: the request is recorded.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PinUnlockPending {
    /// `pending`.
    pub status: String,
    /// The wallet (32 hex digits).
    pub wallet_id: String,
    /// The wrong-PIN count the wallet reported.
    pub attempts: u64,
    /// When the issuer first saw this request (Unix seconds).
    pub requested_at: u64,
}

/// `POST /v1/admin/wallets/{id}/pin-unlock`: the approved request.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct PinUnlockApproval {
    /// The wallet (32 hex digits).
    pub wallet_id: String,
    /// The wrong-PIN count the wallet reported.
    pub attempts: u64,
    /// When the issuer first saw the request (Unix seconds).
    pub requested_at: u64,
    /// When the operator approved it (Unix seconds).
    pub approved_at: u64,
}
