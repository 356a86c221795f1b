//! The records and enums the SDK hands to the app (plain values, copied).

use offpay_protocol::Amount;
use offpay_protocol::messages::RiskPolicy;
use offpay_wallet::vault::KdfParams;
use offpay_wallet::{HistoryItem, LockReason, SyncApplied, WalletStatus};

use crate::OffpayError;

/// An amount of money: integer minor units (cents) of an ISO 4217 currency.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Money {
    /// Minor units (e.g. cents).
    pub minor: u64,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
}

impl From<Amount> for Money {
    fn from(a: Amount) -> Self {
        Money {
            minor: a.minor,
            currency: a.currency.to_string(),
        }
    }
}

/// The cost of the PIN key derivation (Argon2id, one lane) for a new
/// wallet. The app picks what its slowest supported device does in about
/// half a second; [`kdf_settings_interactive`] is OWASP's minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Record)]
pub struct KdfSettings {
    /// Memory cost in KiB: 8 to 1,048,576 (1 GiB).
    pub memory_kib: u32,
    /// Passes (time cost): 1 to 16.
    pub passes: u32,
}

impl KdfSettings {
    /// The vault's parameters, checked.
    pub(crate) fn params(self) -> Result<KdfParams, OffpayError> {
        let p = KdfParams {
            m_kib: self.memory_kib,
            t: self.passes,
            p: 1,
        };
        p.validate().map_err(|_| OffpayError::InvalidKdfParams)?;
        Ok(p)
    }
}

/// OWASP's minimum for Argon2id (19 MiB, 2 passes): the settings to use on a
/// phone unless it measured something stronger.
#[uniffi::export]
pub fn kdf_settings_interactive() -> KdfSettings {
    KdfSettings {
        memory_kib: KdfParams::INTERACTIVE.m_kib,
        passes: KdfParams::INTERACTIVE.t,
    }
}

/// What a history line records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum HistoryKind {
    /// Paid another wallet.
    Paid,
    /// Received from another wallet.
    Received,
    /// Loaded from the online account.
    Loaded,
    /// Redeemed to the online account.
    Redeemed,
}

/// One line of the wallet's history (the most recent 256, oldest first).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct HistoryEntry {
    /// What happened.
    pub kind: HistoryKind,
    /// The amount.
    pub amount: Money,
    /// The other wallet (hex id), for payments.
    pub counterparty: Option<String>,
    /// The wallet's time then, seconds since the Unix epoch.
    pub time_unix_seconds: u64,
    /// The payment id or chain entry hash (hex); all zero for loads.
    pub id: String,
}

impl HistoryEntry {
    pub(crate) fn from_item(item: &HistoryItem, currency: &str) -> Self {
        use offpay_wallet::HistoryKind as K;
        HistoryEntry {
            kind: match item.kind {
                K::Paid => HistoryKind::Paid,
                K::Received => HistoryKind::Received,
                K::Loaded => HistoryKind::Loaded,
                K::Redeemed => HistoryKind::Redeemed,
            },
            amount: Money {
                minor: item.amount_minor,
                currency: currency.to_string(),
            },
            counterparty: item.counterparty.map(|w| w.to_hex()),
            time_unix_seconds: item.time.0,
            id: item.id.to_hex(),
        }
    }
}

/// Why a wallet is locked.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum WalletLock {
    /// Its stored state was rolled back (restored from an old copy, or the
    /// counter is ahead of it): it can only sync until the issuer unlocks it.
    RolledBack,
    /// The issuer locked it at a sync.
    Issuer {
        /// The issuer's reason.
        reason: String,
    },
}

impl From<&LockReason> for WalletLock {
    fn from(r: &LockReason) -> Self {
        match r {
            LockReason::RolledBack => WalletLock::RolledBack,
            LockReason::Issuer(reason) => WalletLock::Issuer {
                reason: reason.clone(),
            },
        }
    }
}

/// The risk policy in force (signed by the issuer, changed at syncs).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct PolicyInfo {
    /// Policy id.
    pub id: u32,
    /// Policy version.
    pub epoch: u32,
    /// ISO 4217 currency of the wallet.
    pub currency: String,
    /// Largest single payment, minor units.
    pub max_payment_minor: u64,
    /// Holding limit: largest offline balance, minor units.
    pub max_balance_minor: u64,
    /// Largest total paid between two syncs, minor units.
    pub max_offline_spend_minor: u64,
    /// Most payments between two syncs.
    pub max_offline_payments: u32,
    /// Longest time without a sync before the wallet refuses to pay.
    pub max_offline_seconds: u64,
    /// Most unsynced log entries.
    pub max_log_entries: u32,
    /// Validity of certificates under this policy.
    pub cert_validity_seconds: u64,
}

impl From<&RiskPolicy> for PolicyInfo {
    fn from(p: &RiskPolicy) -> Self {
        PolicyInfo {
            id: p.id,
            epoch: p.epoch,
            currency: p.currency().to_string(),
            max_payment_minor: p.max_payment.minor,
            max_balance_minor: p.max_balance_minor,
            max_offline_spend_minor: p.max_offline_spend_minor,
            max_offline_payments: p.max_offline_payments,
            max_offline_seconds: p.max_offline_seconds,
            max_log_entries: p.max_log_entries,
            cert_validity_seconds: p.cert_validity_seconds,
        }
    }
}

/// The role a wallet's certificate names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum WalletProfile {
    /// A person's wallet: pays and receives (also before enrollment).
    Personal,
    /// A receive-only merchant terminal: requests and receives, never pays
    /// ([`crate::OffpayError::TerminalCannotPay`]); its takings above its
    /// float go to the merchant's online account at each sync.
    Terminal,
}

impl From<offpay_protocol::pki::WalletProfile> for WalletProfile {
    fn from(p: offpay_protocol::pki::WalletProfile) -> Self {
        match p {
            offpay_protocol::pki::WalletProfile::Personal => WalletProfile::Personal,
            offpay_protocol::pki::WalletProfile::Terminal => WalletProfile::Terminal,
        }
    }
}

/// Everything the app may show about a wallet.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct WalletStatusInfo {
    /// The wallet (hex id).
    pub wallet_id: String,
    /// Enrolled (holds a certificate).
    pub enrolled: bool,
    /// Personal wallet or receive-only terminal (from its certificate).
    pub profile: WalletProfile,
    /// Why it is locked, if it is.
    pub lock: Option<WalletLock>,
    /// Offline balance (none before enrollment).
    pub balance: Option<Money>,
    /// Outgoing chain length.
    pub seq: u64,
    /// Last applied load voucher.
    pub load_seq: u64,
    /// Unsynced log entries.
    pub unsynced_entries: u64,
    /// Seconds left before the wallet refuses to pay until it syncs.
    pub seconds_until_sync_required: Option<u64>,
    /// Minor units that may still be paid before a sync.
    pub offline_spend_left_minor: Option<u64>,
    /// Payments that may still be made before a sync.
    pub offline_payments_left: Option<u32>,
    /// The certificate's expiry, seconds since the Unix epoch.
    pub certificate_expires_unix_seconds: Option<u64>,
    /// Refused payments kept as evidence for the next sync.
    pub evidence: u64,
    /// The risk policy in force.
    pub policy: Option<PolicyInfo>,
    /// Payment requests issued and still accepted.
    pub pending_requests: u64,
    /// When the soonest-expiring pending request expires.
    pub pending_request_next_expiry_unix_seconds: Option<u64>,
    /// A terminal: payments it may still receive before a sync (none for a
    /// personal wallet or a policy without terminal limits).
    pub receive_payments_left: Option<u32>,
    /// A terminal: minor units it may still receive before a sync.
    pub receive_left_minor: Option<u64>,
    /// A terminal: what its next sync report sweeps to the merchant's online
    /// account (its balance above the policy's float); 0 for a personal wallet.
    pub sweep_due_minor: u64,
}

impl WalletStatusInfo {
    pub(crate) fn new(s: WalletStatus, profile: WalletProfile, sweep_due_minor: u64) -> Self {
        WalletStatusInfo {
            wallet_id: s.wallet_id.to_hex(),
            enrolled: s.enrolled,
            profile,
            lock: s.locked.as_ref().map(WalletLock::from),
            balance: s.balance.map(Money::from),
            seq: s.seq,
            load_seq: s.load_seq,
            unsynced_entries: s.unsynced_entries as u64,
            seconds_until_sync_required: s.seconds_until_sync_required,
            offline_spend_left_minor: s.offline_spend_left_minor,
            offline_payments_left: s.offline_payments_left,
            certificate_expires_unix_seconds: s.certificate_expires.map(|t| t.0),
            evidence: s.evidence as u64,
            policy: s.policy.as_ref().map(PolicyInfo::from),
            pending_requests: s.pending_requests as u64,
            pending_request_next_expiry_unix_seconds: s.pending_request_next_expiry.map(|t| t.0),
            receive_payments_left: s.receive_payments_left,
            receive_left_minor: s.receive_left_minor,
            sweep_due_minor,
        }
    }
}

/// What applying a sync response did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncOutcome {
    /// Checkpoint number now in force.
    pub checkpoint: u64,
    /// Load vouchers applied (their load seqs).
    pub vouchers_applied: Vec<u64>,
    /// Vouchers left for a later sync (holding limit).
    pub vouchers_deferred: Vec<u64>,
    /// A new certificate was installed.
    pub certificate_renewed: bool,
    /// A new policy was installed.
    pub policy_updated: bool,
    /// A newer revocation list was installed.
    pub crl_updated: bool,
    /// The issuer locked the wallet.
    pub locked: bool,
    /// The wallet was unlocked.
    pub unlocked: bool,
    /// A scheme directory update was installed (its version).
    pub directory_version: Option<u64>,
    /// The issuer asked for a new key of this suite and the wallet made it
    /// (the next sync certifies it).
    pub rekey_started: Option<String>,
    /// The key device could not make the key asked for (the issuer asks again).
    pub rekey_refused: Option<String>,
    /// The new key was certified: the wallet now signs with it (its suite).
    pub rekeyed: Option<String>,
    /// The offline balance after the sync.
    pub balance: Option<Money>,
}

impl SyncOutcome {
    pub(crate) fn new(a: SyncApplied, balance: Option<Amount>) -> Self {
        SyncOutcome {
            checkpoint: a.checkpoint,
            vouchers_applied: a.vouchers_applied,
            vouchers_deferred: a.vouchers_deferred,
            certificate_renewed: a.certificate_renewed,
            policy_updated: a.policy_updated,
            crl_updated: a.crl_updated,
            locked: a.locked,
            unlocked: a.unlocked,
            directory_version: a.directory_version,
            rekey_started: a.rekey_started.map(|s| s.name().to_string()),
            rekey_refused: a.rekey_refused.map(|e| e.to_string()),
            rekeyed: a.rekeyed.map(|s| s.name().to_string()),
            balance: balance.map(Money::from),
        }
    }
}

/// What [`crate::SyncClient::redeem`] did.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct RedeemOutcome {
    /// The amount taken from the offline balance.
    pub amount: Money,
    /// The offline balance after it.
    pub balance: Money,
    /// The server credited the online account. When false the redeem entry
    /// stays in the wallet's log and settles at the next sync, exactly once.
    pub settled: bool,
    /// The customer's online balance after it, minor units (when settled).
    pub customer_balance_minor: Option<i64>,
    /// Why it did not settle now (when not settled).
    pub reason: Option<String>,
}

/// The Rust-only payment round measured by [`crate::rust_payment_baseline`].
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct PaymentBaseline {
    /// Rounds measured.
    pub iterations: u32,
    /// Median time of one round (request, pay, receive, confirm), microseconds.
    pub median_us: f64,
    /// 99th percentile, microseconds.
    pub p99_us: f64,
    /// Mean, microseconds.
    pub mean_us: f64,
}
