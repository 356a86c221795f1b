//! The request and response bodies of the offpay issuer HTTP API: one
//! definition, used by the server (`offpay-server`), its client
//! (`offpay-client`), the CLI, the benchmark and the tests.
//!
//! Binary fields travel as standard base64 strings ([`b64`], [`b64_decode`]);
//! 128-bit sums as decimal strings. The feature `server` adds the OpenAPI
//! schemas (utoipa) and the conversions from the issuer's records.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

mod cases;
mod privacy;
mod scheme;
pub use cases::*;
pub use privacy::*;
pub use scheme::*;

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable machine-readable code.
    #[cfg_attr(feature = "server", schema(example = "unknown_wallet"))]
    pub code: String,
    /// Human-readable explanation.
    #[cfg_attr(feature = "server", schema(example = "unknown wallet"))]
    pub message: String,
}

/// Standard base64 with padding.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decode standard base64 (padding required).
pub fn b64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(s.trim())
}

/// A signed protocol message (COSE_Sign1 in deterministic CBOR), sent as the raw body.
#[cfg(feature = "server")]
#[derive(utoipa::ToSchema)]
#[cfg_attr(feature = "server", schema(value_type = String, format = Binary, content_media_type = "application/cbor"))]
pub struct CborMessage(pub Vec<u8>);

/// A DER-encoded X.509 CRL, sent as the raw body.
#[cfg(feature = "server")]
#[derive(utoipa::ToSchema)]
#[cfg_attr(feature = "server", schema(value_type = String, format = Binary, content_media_type = "application/pkix-crl"))]
pub struct CrlDer(pub Vec<u8>);

/// `POST /v1/enroll`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    /// The one-time enrollment token the customer was given.
    pub token: String,
    /// The wallet's PKCS#10 CSR, DER, standard base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub csr: String,
}

/// Everything a wallet needs after enrollment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct EnrollResponse {
    /// The wallet id, hex.
    pub wallet_id: String,
    /// The wallet certificate, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub certificate: String,
    /// The issuer CA certificate, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub issuer_certificate: String,
    /// The scheme root certificate, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub root_certificate: String,
    /// The current CRL, DER, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub crl: String,
    /// The signed RiskPolicy, CBOR, base64.
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub policy: String,
}

/// The result of `POST /v1/redeem`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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

/// `POST /v1/admin/customers`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CreateCustomerRequest {
    /// 1 to 64 characters of `[A-Za-z0-9._-]`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A customer's online account.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CustomerBalance {
    /// The customer id.
    pub id: String,
    /// Online balance, minor units.
    pub balance_minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// A deposit, withdrawal or load.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct MoneyRequest {
    /// Minor units, positive.
    pub amount_minor: u64,
    /// ISO 4217 currency (the issuer's).
    #[cfg_attr(feature = "server", schema(example = "EUR"))]
    pub currency: String,
    /// The same key with the same request returns the first answer; with another request, 409 `replay`.
    pub idempotency_key: String,
}

/// `POST /v1/admin/customers/{id}/enrollment-tokens` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct EnrollmentTokenQuery {
    /// `personal` (default) or `terminal`: a receive-only merchant terminal,
    /// whose certificate names the profile and whose takings are swept to
    /// this customer's online account at each sync.
    pub profile: Option<String>,
}

/// A new enrollment token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct EnrollmentTokenResponse {
    /// The one-time token (shown once).
    pub token: String,
    /// The customer it enrolls a wallet for.
    pub customer: String,
    /// The profile of the wallet it enrolls: `personal` or `terminal`.
    #[serde(default = "personal")]
    pub profile: String,
}

fn personal() -> String {
    "personal".to_string()
}

/// The response header of `POST /v1/sync` carrying the issuer's stranded
/// figure for the syncing wallet (minor units): money credited to the wallet's
/// sub-account that its TA does not hold. Unsigned information beside the
/// signed SyncResponse (PROTOCOL.md 12.4).
pub const STRANDED_HEADER: &str = "offpay-stranded-minor";

/// A wallet as the issuer knows it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
    /// Money the issuer credited to this sub-account that the wallet's TA did
    /// not hold at its last sync, minor units (see `WalletView::with_stranded`).
    #[serde(default)]
    pub stranded_minor: i64,
    /// The checkpoint that figure is as of (0: never synced).
    #[serde(default)]
    pub stranded_checkpoint: u64,
    /// When it was computed (the last sync), Unix seconds.
    #[serde(default)]
    pub stranded_at: u64,
    /// The generation of the wallet's key (0: its first; +1 at each re-key).
    #[serde(default)]
    pub key_generation: u32,
    /// A re-key asked for and not completed: the new key's suite
    /// (`ed25519`, `p-256`, `ml-dsa-44`).
    #[serde(default)]
    pub rekey_suite: Option<String>,
    /// Retired by its customer or the operator: `lost` or `broken`.
    #[serde(default)]
    pub retired: Option<String>,
    /// When a revoked wallet becomes due to close (its certificate's expiry
    /// plus the payees' offline limit), Unix seconds.
    #[serde(default)]
    pub closes_at: Option<u64>,
    /// When it was closed (state `closed`), Unix seconds.
    #[serde(default)]
    pub closed_at: Option<u64>,
}

/// `POST /v1/admin/wallets/{id}/retire`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RetireRequest {
    /// `lost` (lost or stolen: whoever holds it may pay until its
    /// certificate expires) or `broken` (tampered vault, failed counter).
    pub reason: String,
    /// A note for the record (who reported it, how).
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /v1/admin/lifecycle/close`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CloseRequest {
    /// Close at most this many wallets (default and cap: 1,000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// What closing the due wallets did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct CloseReportView {
    /// Wallets closed.
    pub closed: u32,
    /// Paid out to customers' online accounts, minor units.
    pub paid_out_minor: i64,
    /// Forfeited to the reserve by lost wallets (where the scheme does not refund them).
    pub forfeited_minor: i64,
    /// Settlements to the closed wallets returned to their payers.
    pub returned: u32,
    /// Their sum, minor units.
    pub returned_minor: i64,
    /// More wallets are due than `limit` allowed: call again.
    pub more: bool,
}

/// The scheme's rules for money no TA holds (`GET`/`PUT /v1/admin/lifecycle/rules`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct LifecycleRulesView {
    /// Whether a wallet retired as lost is paid out to its customer at its
    /// close (else its money goes to the reserve). Broken and revoked
    /// wallets are always paid out.
    pub refund_lost: bool,
    /// Seconds after which a payment settled to a payee whose TA never
    /// reported it goes back to the payer (at least 3,600: the longest a
    /// payment request lives).
    pub return_after_seconds: u64,
}

/// Wallets.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct WalletList {
    /// In enrollment order.
    pub wallets: Vec<WalletView>,
}

/// `GET /v1/admin/wallets` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct WalletsQuery {
    /// Only this customer's wallets.
    pub customer: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A load voucher handed out.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct LoadResponse {
    /// The wallet, hex.
    pub wallet_id: String,
    /// The signed LoadVoucher, CBOR, base64 (the wallet also receives it at its next sync).
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub voucher: String,
    /// Its load sequence number.
    pub load_seq: u64,
    /// Minor units.
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: String,
}

/// `POST /v1/admin/wallets/{id}/revoke`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RevokeRequest {
    /// Why, in words.
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 5280 CRLReason code (default 1, keyCompromise).
    #[serde(default)]
    pub reason_code: Option<u8>,
}

/// `POST /v1/admin/wallets/{id}/rekey`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RekeyRequest {
    /// The new key's suite: `ed25519`, `p-256` or `ml-dsa-44` (default: the
    /// suite of the wallet's current key).
    #[serde(default)]
    pub suite: Option<String>,
    /// Cancel a re-key not yet completed instead.
    #[serde(default)]
    pub cancel: bool,
}

/// `POST /v1/admin/wallets/{id}/lock`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct LockRequest {
    /// Why, in words.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A detected double spend.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
    #[cfg_attr(feature = "server", schema(format = Byte))]
    pub proof: String,
}

/// Double spends, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct DoubleSpendList {
    /// Newest first.
    pub double_spends: Vec<DoubleSpendView>,
}

/// `GET /v1/admin/double-spends` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct DoubleSpendsQuery {
    /// Only this payer's (wallet id, hex).
    pub payer: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// Ledger sums (decimal strings: they are 128-bit).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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

/// The scheme's trust anchors.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct RootsResponse {
    /// The scheme root certificate, PEM.
    pub root_pem: String,
    /// The issuer CA certificate, PEM.
    pub issuer_pem: String,
    /// The issuer's currency.
    pub currency: String,
}

/// `GET /v1/crl` parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "server", into_params(parameter_in = Query))]
pub struct CrlQuery {
    /// `der` (default) or `pem`.
    pub format: Option<String>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
}

/// Conversions from the issuer's records (the server's side).
/// `POST /v1/pin-unlock` before the operator approved: the request is recorded.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "server", derive(utoipa::ToSchema))]
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

#[cfg(feature = "server")]
mod from_issuer {
    use offpay_issuer::store::{DoubleSpendRecord, WalletRecord};
    use offpay_issuer::{Enrollment, InvariantReport, RedeemOutcome};

    use super::*;

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
                stranded_minor: 0,
                stranded_checkpoint: 0,
                stranded_at: 0,
                key_generation: w.key_generation,
                rekey_suite: w.rekey_suite.map(|s| s.name().to_string()),
                retired: w.retired.map(|r| r.as_str().to_string()),
                closes_at: None,
                closed_at: w.closed_at.map(|t| t.0),
            }
        }

        /// With the time the wallet becomes due to close
        /// (`offpay_issuer::Issuer::closes_at`).
        pub fn with_closes_at(mut self, at: Option<u64>) -> WalletView {
            self.closes_at = at;
            self
        }

        /// With the issuer's stranded-money figure: money credited to the wallet
        /// that its TA does not hold (a payment it refused or never received),
        /// as of its last sync (`offpay_issuer::stranded`).
        pub fn with_stranded(mut self, s: &offpay_issuer::Stranded) -> WalletView {
            self.stranded_minor = s.minor;
            self.stranded_checkpoint = s.checkpoint;
            self.stranded_at = s.at.0;
            self
        }
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

    impl From<&offpay_issuer::CloseReport> for CloseReportView {
        fn from(r: &offpay_issuer::CloseReport) -> CloseReportView {
            CloseReportView {
                closed: r.closed,
                paid_out_minor: r.paid_out_minor,
                forfeited_minor: r.forfeited_minor,
                returned: r.returned,
                returned_minor: r.returned_minor,
                more: r.more,
            }
        }
    }

    impl From<&offpay_issuer::LifecycleRules> for LifecycleRulesView {
        fn from(r: &offpay_issuer::LifecycleRules) -> LifecycleRulesView {
            LifecycleRulesView {
                refund_lost: r.refund_lost,
                return_after_seconds: r.return_after_seconds,
            }
        }
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
}
