//! The issuer: every operation of the backend, each one database transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use offpay_protocol::entropy::{OsEntropy, SharedEntropy};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{LoadVoucher, Redeem, RiskPolicy, TerminalLimits};
use offpay_protocol::pki::{self, Certificate, RevocationReason, WalletProfile};
use offpay_protocol::{Amount, Currency, Hash32, Signer, Suite, UnixSeconds, WalletId};

use crate::ca::{CertificateFactory, MASTER_KEY_BYTES};
use crate::certificates;
use crate::error::{
    InputError, IssuerError, Limit, LockReason, Signature, TokenProblem, reason_text,
};
use crate::ledger::{Account, posting, to_amount, to_i64};
use crate::limits::ENROLLMENT_TOKEN_BYTES_MAX;
pub use crate::limits::{
    CERT_CACHE_MAX, CUSTOMER_ID_BYTES_MAX, CUSTOMER_NAME_BYTES_MAX, IDEMPOTENCY_KEY_BYTES_MAX,
    TX_RETRIES_MAX,
};
use crate::report::{CachedCert, SyncJob};
use crate::settle::{RecordStats, Source, record_and_settle};
use crate::store::{
    DoubleSpendRecord, LedgerTotals, Retirement, Store, StoreError, Tx, WalletRecord, WalletState,
};

/// How an issuer is set up at its first start.
#[derive(Clone, Debug)]
pub struct IssuerConfig {
    /// Signature suite of the CA keys.
    pub suite: Suite,
    /// Common name of the scheme root.
    pub root_cn: String,
    /// Common name of the issuer CA.
    pub issuer_cn: String,
    /// The risk policy given to wallets (its currency is the issuer's).
    pub policy: RiskPolicy,
    /// How long an enrollment token is valid.
    pub enrollment_token_seconds: u64,
    /// How long a settled payment's pairing of payer and payee is kept
    /// (`None`: forever, the default); see `retention.rs`.
    pub retention_seconds: Option<u64>,
}

impl IssuerConfig {
    /// A sensible default in `currency`: 500.00 per payment, 1,000.00 holding,
    /// 2,000.00 and 200 payments between syncs, 7 days offline, 30-day
    /// certificates; a terminal receives at most 500 payments and 1,000.00
    /// between syncs and sweeps everything (float 0).
    pub fn default_for(currency: Currency) -> IssuerConfig {
        IssuerConfig {
            suite: Suite::Ed25519,
            root_cn: "offpay scheme root".into(),
            issuer_cn: "offpay issuer".into(),
            policy: RiskPolicy {
                id: 1,
                epoch: 1,
                max_payment: Amount::new(50_000, currency),
                max_balance_minor: 100_000,
                max_offline_spend_minor: 200_000,
                max_offline_payments: 200,
                max_offline_seconds: 7 * 86_400,
                max_log_entries: 1_000,
                cert_validity_seconds: 30 * 86_400,
                terminal: Some(TerminalLimits {
                    max_receive_payments: 500,
                    max_receive_minor: 100_000,
                    sweep_float_minor: 0,
                }),
                required_suite: None,
            },
            enrollment_token_seconds: 86_400,
            retention_seconds: None,
        }
    }
}

/// What a wallet receives at enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enrollment {
    /// The wallet.
    pub wallet: WalletId,
    /// Its certificate (DER).
    pub certificate: Vec<u8>,
    /// The issuer CA certificate (DER).
    pub issuer_certificate: Vec<u8>,
    /// The scheme root certificate (DER).
    pub root_certificate: Vec<u8>,
    /// The signed RiskPolicy.
    pub policy: Vec<u8>,
    /// The current CRL (DER).
    pub crl: Vec<u8>,
}

/// The result of an online redeem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedeemOutcome {
    /// The wallet.
    pub wallet: WalletId,
    /// Amount credited to the customer.
    pub amount: Amount,
    /// The customer's online balance after it.
    pub customer_balance: i64,
    /// Whether this call settled it (false: it was already settled).
    pub newly_settled: bool,
}

/// What a sync did, besides the response bytes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SyncOutcome {
    /// The signed SyncResponse.
    pub response: Vec<u8>,
    /// Entries newly recorded.
    pub entries_recorded: usize,
    /// Payments and redeems newly settled.
    pub settled: usize,
    /// Double spends newly detected (payer, seq).
    pub double_spends: Vec<(WalletId, u64)>,
    /// The reporting wallet was locked by this sync, and why.
    pub locked: Option<LockReason>,
    /// The response was a replay of a stored one.
    pub replayed: bool,
    /// Money credited to the reporting wallet that its TA does not hold
    /// (`stranded.rs`), as of this sync.
    pub stranded: crate::stranded::Stranded,
    /// Payments settled to the reporting wallet that its TA never reported,
    /// returned to their payers by this sync (`lifecycle.rs`).
    pub returned: crate::lifecycle::Returned,
}

/// The ledger invariants at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantReport {
    /// True when every invariant holds.
    pub ok: bool,
    /// What is violated.
    pub violations: Vec<String>,
    /// The sums they are computed from.
    pub totals: LedgerTotals,
    /// Money in circulation: everything that came in from outside, net.
    pub supply: i128,
}

/// The issuer backend over a store.
pub struct Issuer<S: Store> {
    pub(crate) store: S,
    pub(crate) ca: CertificateFactory,
    pub(crate) policy: RiskPolicy,
    pub(crate) policy_bytes: Vec<u8>,
    pub(crate) enrollment_token_seconds: u64,
    /// Certificates already checked against the issuer CA, by reference.
    pub(crate) cert_cache: Mutex<HashMap<Hash32, CachedCert>>,
    /// Concurrent syncs grouped into one transaction (single-writer stores).
    pub(crate) group: crate::group::GroupCommit<SyncJob, SyncOutcome>,
    /// Where enrollment tokens come from (and, at init, the CA keys and sealing nonces).
    pub(crate) entropy: SharedEntropy,
    /// A member issuer's installed scheme directory (None: standalone, or none installed yet).
    pub(crate) directory: std::sync::RwLock<Option<std::sync::Arc<crate::directory::Installed>>>,
}

/// Settings key of the retention window (`retention.rs`; 8 bytes,
/// big-endian seconds; absent or `u64::MAX`: keep forever).
pub(crate) const RETENTION_WINDOW_KEY: &str = "retention.seconds";
/// The longest retention window accepted: 100 years.
pub const RETENTION_SECONDS_MAX: u64 = 100 * 365 * 86_400;

/// The setting whose presence marks a member issuer (its value: the scheme root's certificate hash).
pub(crate) const MEMBER_SETTING: &str = "scheme.member";

/// Store the CA material: the sealed keys (no root key at a member issuer) and both certificates.
/// The setting holding the reference to device-held CA keys (an issuer
/// set up by [`Issuer::init_with_signers`]); absent when they are sealed.
pub const DEVICE_SETTING: &str = "ca.device";

pub(crate) fn write_ca_settings(
    tx: &mut dyn Tx,
    ca: &CertificateFactory,
    root_sealed: Option<&[u8]>,
    issuer_sealed: &[u8],
) -> Result<(), IssuerError> {
    if tx.setting("ca.issuer.cert")?.is_some() {
        return Err(IssuerError::AlreadyInitialised);
    }
    if let Some(r) = root_sealed {
        tx.set_setting("ca.root.key", r)?;
    }
    tx.set_setting("ca.root.cert", ca.root.der())?;
    tx.set_setting("ca.issuer.key", issuer_sealed)?;
    tx.set_setting("ca.issuer.cert", ca.issuer.der())?;
    Ok(())
}

/// Store the policy, the first CRL, the counters and the system accounts.
pub(crate) fn write_initial_settings(
    tx: &mut dyn Tx,
    config: &IssuerConfig,
    policy_bytes: &[u8],
    crl_der: &[u8],
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    tx.set_setting("policy", policy_bytes)?;
    tx.set_setting(
        "enrollment.seconds",
        &config.enrollment_token_seconds.to_be_bytes(),
    )?;
    tx.set_setting("crl", crl_der)?;
    if let Some(seconds) = config.retention_seconds {
        if seconds > RETENTION_SECONDS_MAX {
            return Err(InputError::RetentionWindow {
                max: RETENTION_SECONDS_MAX,
            }
            .into());
        }
        tx.set_setting(RETENTION_WINDOW_KEY, &seconds.to_be_bytes())?;
    }
    // Serials 1 and 2 are the CA certificates; wallet serials are fixed-width (2^62 + n)
    // so that every Payment of a suite has the same size.
    tx.set_setting("counter.serial", &(1u64 << 62).to_be_bytes())?;
    tx.set_setting("counter.crl", &1u64.to_be_bytes())?;
    for a in Account::SYSTEM {
        tx.create_account(&a.to_string(), a.book(), a.kind(), now)?;
    }
    Ok(())
}

impl<S: Store> std::fmt::Debug for Issuer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("backend", &self.store.backend())
            .field("ca", &self.ca)
            .finish()
    }
}

/// Largest amount one operator operation (deposit, withdrawal, load) may
/// move, in minor units: 2^53, far below the 64-bit limits, so that sums of
/// many such amounts stay exact in every backend and are refused as input
/// rather than overflowing in storage.
pub const AMOUNT_MINOR_MAX: u64 = 1 << 53;

fn check_customer_id(id: &str) -> Result<(), IssuerError> {
    if id.is_empty()
        || id.len() > CUSTOMER_ID_BYTES_MAX
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(InputError::CustomerId.into());
    }
    Ok(())
}

fn check_idempotency_key(k: &str) -> Result<(), IssuerError> {
    if k.is_empty()
        || k.len() > IDEMPOTENCY_KEY_BYTES_MAX
        || !k.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(InputError::IdempotencyKey.into());
    }
    Ok(())
}

impl<S: Store> Issuer<S> {
    /// Run `f` in one transaction, retrying when it loses a race.
    pub(crate) fn with_tx<T>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, IssuerError>,
    ) -> Result<T, IssuerError> {
        let mut attempt = 0;
        loop {
            let mut tx = self.store.begin()?;
            let r = f(tx.as_mut()).and_then(|v| tx.commit().map(|_| v).map_err(IssuerError::from));
            match r {
                Err(IssuerError::Store(StoreError::Conflict(_))) if attempt < TX_RETRIES_MAX => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(1 << attempt.min(6)));
                }
                r => return r,
            }
        }
    }

    /// Set up a new issuer: CA keys (sealed under `master`), system accounts, the
    /// signed policy and the first CRL.
    pub fn init(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &IssuerConfig,
        now: UnixSeconds,
    ) -> Result<Issuer<S>, IssuerError> {
        Issuer::init_with_entropy(store, master, config, now, OsEntropy::shared())
    }

    /// [`Issuer::init`] drawing every random byte (CA keys, sealing nonces,
    /// later enrollment tokens) from `entropy`.
    pub fn init_with_entropy(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &IssuerConfig,
        now: UnixSeconds,
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        let ca = CertificateFactory::generate(
            config.suite,
            &config.root_cn,
            &config.issuer_cn,
            now,
            entropy.as_ref(),
        )?;
        let (root_sealed, issuer_sealed) = ca.sealed_keys(master, entropy.as_ref())?;
        let policy_bytes = Signed::try_sign(config.policy.clone(), ca.signer())?.into_bytes();
        let crl = ca.issue_crl(1, now, &[])?;
        {
            let mut tx = store.begin()?;
            if tx.setting("ca.issuer.cert")?.is_some() {
                return Err(IssuerError::AlreadyInitialised);
            }
            write_ca_settings(tx.as_mut(), &ca, root_sealed.as_deref(), &issuer_sealed)?;
            write_initial_settings(tx.as_mut(), config, &policy_bytes, crl.der(), now)?;
            tx.commit()?;
        }
        Ok(Issuer::assemble(
            store,
            ca,
            config.policy.clone(),
            policy_bytes,
            config.enrollment_token_seconds,
            entropy,
        ))
    }

    /// The issuer over an opened or initialised store (no member directory loaded yet).
    pub(crate) fn assemble(
        store: S,
        ca: CertificateFactory,
        policy: RiskPolicy,
        policy_bytes: Vec<u8>,
        enrollment_token_seconds: u64,
        entropy: SharedEntropy,
    ) -> Issuer<S> {
        Issuer {
            store,
            ca,
            policy,
            policy_bytes,
            enrollment_token_seconds,
            cert_cache: Mutex::new(HashMap::new()),
            group: crate::group::GroupCommit::new(),
            entropy,
            directory: std::sync::RwLock::new(None),
        }
    }

    /// Open an initialised issuer.
    pub fn open(store: S, master: &[u8; MASTER_KEY_BYTES]) -> Result<Issuer<S>, IssuerError> {
        Issuer::open_with_entropy(store, master, OsEntropy::shared())
    }

    /// [`Issuer::open`] drawing every random byte from `entropy`.
    pub fn open_with_entropy(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        let (ca, policy_bytes, secs) = {
            let mut tx = store.begin()?;
            let get = |tx: &mut dyn Tx, k: &str| tx.setting(k)?.ok_or(IssuerError::NotInitialised);
            if tx.setting(DEVICE_SETTING)?.is_some() {
                return Err(IssuerError::DeviceKey(
                    "this issuer's CA keys are in a token: open it with its [hsm] configuration",
                ));
            }
            // A member issuer holds no root key; a standalone one must.
            let member = tx.setting(MEMBER_SETTING)?.is_some();
            let root_sealed = if member {
                None
            } else {
                Some(get(tx.as_mut(), "ca.root.key")?)
            };
            let ca = CertificateFactory::open(
                master,
                root_sealed.as_deref(),
                &get(tx.as_mut(), "ca.root.cert")?,
                &get(tx.as_mut(), "ca.issuer.key")?,
                &get(tx.as_mut(), "ca.issuer.cert")?,
            )?;
            let policy = get(tx.as_mut(), "policy")?;
            let secs = get(tx.as_mut(), "enrollment.seconds")?;
            (ca, policy, secs)
        };
        Issuer::finish_open(store, ca, policy_bytes, &secs, entropy)
    }

    /// The policy, the enrollment validity and the member directory around
    /// an opened CA.
    fn finish_open(
        store: S,
        ca: CertificateFactory,
        policy_bytes: Vec<u8>,
        secs: &[u8],
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        let policy = Signed::<RiskPolicy>::decode(&policy_bytes)
            .map_err(|e| IssuerError::Store(StoreError::Corrupt(format!("policy: {e}"))))?
            .body()
            .clone();
        let secs: [u8; 8] = secs
            .try_into()
            .map_err(|_| IssuerError::Store(StoreError::Corrupt("enrollment.seconds".into())))?;
        let issuer = Issuer::assemble(
            store,
            ca,
            policy,
            policy_bytes,
            u64::from_be_bytes(secs),
            entropy,
        );
        issuer.load_directory()?;
        Ok(issuer)
    }

    /// Set up a new issuer whose root and issuer CA keys are held by a
    /// device (a PKCS#11 token, `offpay-hsm`): the keys stay in the token;
    /// the store keeps `key_ref` (module-independent: token label, key
    /// labels, suite, public keys) and the certificates. A signing failure
    /// writes nothing.
    pub fn init_with_signers(
        store: S,
        root_key: Arc<dyn Signer>,
        issuer_key: Arc<dyn Signer>,
        key_ref: &str,
        config: &IssuerConfig,
        now: UnixSeconds,
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        if root_key.suite() != config.suite || issuer_key.suite() != config.suite {
            return Err(IssuerError::DeviceKey(
                "the token's keys are not of the configured suite",
            ));
        }
        let ca = CertificateFactory::generate_with_signers(
            root_key,
            issuer_key,
            &config.root_cn,
            &config.issuer_cn,
            now,
        )?;
        let policy_bytes = Signed::try_sign(config.policy.clone(), ca.signer())?.into_bytes();
        let crl = ca.issue_crl(1, now, &[])?;
        {
            let mut tx = store.begin()?;
            if tx.setting("ca.issuer.cert")?.is_some() {
                return Err(IssuerError::AlreadyInitialised);
            }
            tx.set_setting(DEVICE_SETTING, key_ref.as_bytes())?;
            tx.set_setting("ca.root.cert", ca.root.der())?;
            tx.set_setting("ca.issuer.cert", ca.issuer.der())?;
            write_initial_settings(tx.as_mut(), config, &policy_bytes, crl.der(), now)?;
            tx.commit()?;
        }
        Ok(Issuer::assemble(
            store,
            ca,
            config.policy.clone(),
            policy_bytes,
            config.enrollment_token_seconds,
            entropy,
        ))
    }

    /// The device key reference [`Issuer::init_with_signers`] stored, or
    /// `None` for an issuer whose keys are sealed in the store.
    pub fn device_reference(store: &S) -> Result<Option<String>, IssuerError> {
        let mut tx = store.begin()?;
        tx.setting(DEVICE_SETTING)?
            .map(|b| {
                String::from_utf8(b)
                    .map_err(|_| IssuerError::Store(StoreError::Corrupt(DEVICE_SETTING.into())))
            })
            .transpose()
    }

    /// Open an issuer set up by [`Issuer::init_with_signers`], on the keys
    /// the token holds: each must be the key of its stored certificate
    /// ([`IssuerError::DeviceKey`] otherwise).
    pub fn open_with_signers(
        store: S,
        root_key: Option<Arc<dyn Signer>>,
        issuer_key: Arc<dyn Signer>,
        entropy: SharedEntropy,
    ) -> Result<Issuer<S>, IssuerError> {
        let (ca, policy_bytes, secs) = {
            let mut tx = store.begin()?;
            let get = |tx: &mut dyn Tx, k: &str| tx.setting(k)?.ok_or(IssuerError::NotInitialised);
            if tx.setting(DEVICE_SETTING)?.is_none() {
                return Err(IssuerError::DeviceKey(
                    "this issuer's CA keys are sealed in the store, not in a token",
                ));
            }
            let ca = CertificateFactory::with_signers(
                root_key,
                &get(tx.as_mut(), "ca.root.cert")?,
                issuer_key,
                &get(tx.as_mut(), "ca.issuer.cert")?,
            )?;
            let policy = get(tx.as_mut(), "policy")?;
            let secs = get(tx.as_mut(), "enrollment.seconds")?;
            (ca, policy, secs)
        };
        Issuer::finish_open(store, ca, policy_bytes, &secs, entropy)
    }

    /// Open if initialised, else initialise.
    pub fn open_or_init(
        store: S,
        master: &[u8; MASTER_KEY_BYTES],
        config: &IssuerConfig,
        now: UnixSeconds,
    ) -> Result<Issuer<S>, IssuerError> {
        let initialised = {
            let mut tx = store.begin()?;
            tx.setting("ca.issuer.cert")?.is_some()
        };
        if initialised {
            Issuer::open(store, master)
        } else {
            Issuer::init(store, master, config, now)
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }
    /// The issuer's currency.
    pub fn currency(&self) -> Currency {
        self.policy.currency()
    }
    /// The policy in force.
    pub fn policy(&self) -> &RiskPolicy {
        &self.policy
    }
    /// The signed policy in force.
    pub fn policy_bytes(&self) -> &[u8] {
        &self.policy_bytes
    }
    /// The scheme root certificate.
    pub fn root_certificate(&self) -> &Certificate {
        &self.ca.root
    }
    /// The issuer CA certificate.
    pub fn issuer_certificate(&self) -> &Certificate {
        &self.ca.issuer
    }
    /// The current CRL (DER).
    pub fn crl(&self) -> Result<Vec<u8>, IssuerError> {
        self.with_tx(|tx| tx.setting("crl")?.ok_or(IssuerError::NotInitialised))
    }

    fn amount(&self, minor: u64, currency: Currency) -> Result<i64, IssuerError> {
        if currency != self.currency() {
            return Err(InputError::Currency {
                expected: self.currency(),
            }
            .into());
        }
        if minor == 0 {
            return Err(InputError::ZeroAmount.into());
        }
        if minor > AMOUNT_MINOR_MAX {
            return Err(InputError::AmountAboveMax {
                amount: Amount::new(minor, currency),
                max: Amount::new(AMOUNT_MINOR_MAX, currency),
            }
            .into());
        }
        to_i64(minor)
    }

    // ---- customers and online money ----------------------------------------------------

    /// Create a customer with an online account.
    pub fn create_customer(
        &self,
        id: &str,
        name: &str,
        now: UnixSeconds,
    ) -> Result<(), IssuerError> {
        check_customer_id(id)?;
        if name.len() > CUSTOMER_NAME_BYTES_MAX {
            return Err(InputError::CustomerName.into());
        }
        self.with_tx(|tx| {
            if tx.customer(id)?.is_some() {
                return Err(IssuerError::CustomerExists);
            }
            tx.create_customer(id, name, now)?;
            let a = Account::Customer(id.to_string());
            tx.create_account(&a.to_string(), a.book(), a.kind(), now)?;
            Ok(())
        })
    }

    /// A customer's online balance.
    pub fn customer_balance(&self, id: &str) -> Result<i64, IssuerError> {
        check_customer_id(id)?;
        self.with_tx(|tx| {
            tx.balance(&Account::Customer(id.to_string()).to_string())?
                .ok_or(IssuerError::UnknownCustomer)
        })
    }

    /// Online money in from the outside (the online rail): exactly once per idempotency key.
    pub fn deposit(
        &self,
        customer: &str,
        amount: Amount,
        key: &str,
        now: UnixSeconds,
    ) -> Result<i64, IssuerError> {
        self.external_move(customer, amount, key, now, true)
    }

    /// Online money out to the outside: exactly once per idempotency key.
    pub fn withdraw(
        &self,
        customer: &str,
        amount: Amount,
        key: &str,
        now: UnixSeconds,
    ) -> Result<i64, IssuerError> {
        self.external_move(customer, amount, key, now, false)
    }

    fn external_move(
        &self,
        customer: &str,
        amount: Amount,
        key: &str,
        now: UnixSeconds,
        deposit: bool,
    ) -> Result<i64, IssuerError> {
        check_customer_id(customer)?;
        check_idempotency_key(key)?;
        let minor = self.amount(amount.minor, amount.currency)?;
        let kind = if deposit { "deposit" } else { "withdraw" };
        let request = Hash32::digest(format!("{kind}|{customer}|{minor}").as_bytes());
        let idem = format!("{kind}:{key}");
        self.with_tx(|tx| {
            if let Some((h, resp)) = tx.idempotent(&idem)? {
                if h != request {
                    return Err(IssuerError::IdempotencyKeyReused);
                }
                let b: [u8; 8] = resp
                    .as_slice()
                    .try_into()
                    .map_err(|_| IssuerError::Store(StoreError::Corrupt("idempotent".into())))?;
                return Ok(i64::from_be_bytes(b));
            }
            let acct = Account::Customer(customer.to_string());
            let balance = tx
                .balance(&acct.to_string())?
                .ok_or(IssuerError::UnknownCustomer)?;
            let (debit, credit) = if deposit {
                (&Account::External, &acct)
            } else {
                (&acct, &Account::External)
            };
            if !deposit && balance < minor {
                return Err(IssuerError::InsufficientFunds {
                    balance: to_amount(balance, self.currency(), &acct)?,
                    needed: amount,
                });
            }
            tx.post(&[posting(debit, credit, minor, kind, key.to_string(), now)?])?;
            let after = tx
                .balance(&acct.to_string())?
                .ok_or(IssuerError::UnknownCustomer)?;
            tx.insert_idempotent(&idem, &request, &after.to_be_bytes(), now)?;
            Ok(after)
        })
    }

    // ---- enrollment ---------------------------------------------------------------------

    /// A one-time enrollment token for a customer's personal wallet (shown
    /// to the customer once).
    pub fn create_enrollment_token(
        &self,
        customer: &str,
        now: UnixSeconds,
    ) -> Result<String, IssuerError> {
        self.create_enrollment_token_for(customer, WalletProfile::Personal, now)
    }

    /// A one-time enrollment token for a wallet of `profile`: with
    /// [`WalletProfile::Terminal`], the wallet it enrolls gets a terminal
    /// certificate (it receives, never pays) and its sweeps are credited to
    /// `customer`'s online account (the merchant's).
    pub fn create_enrollment_token_for(
        &self,
        customer: &str,
        profile: WalletProfile,
        now: UnixSeconds,
    ) -> Result<String, IssuerError> {
        check_customer_id(customer)?;
        let raw: [u8; 16] = offpay_protocol::entropy::random(self.entropy.as_ref())
            .map_err(|_| IssuerError::Randomness)?;
        let token = Hash32(Hash32::digest(&raw).0).to_hex()[..32].to_string();
        let hash = Hash32::digest(token.as_bytes());
        self.with_tx(|tx| {
            tx.customer(customer)?.ok_or(IssuerError::UnknownCustomer)?;
            tx.insert_enrollment_token(
                &hash,
                customer,
                profile,
                now.plus(self.enrollment_token_seconds),
            )?;
            Ok(())
        })?;
        Ok(token)
    }

    /// Enroll a wallet: the customer's token and the wallet's CSR in, its
    /// certificate (of the token's profile) and everything it must trust
    /// out. Retrying with the same token and CSR returns the same enrollment.
    pub fn enroll(
        &self,
        token: &str,
        csr_der: &[u8],
        now: UnixSeconds,
    ) -> Result<Enrollment, IssuerError> {
        if token.len() > ENROLLMENT_TOKEN_BYTES_MAX {
            return Err(IssuerError::EnrollmentToken(TokenProblem::Unknown));
        }
        let csr = pki::parse_csr(csr_der)?;
        let hash = Hash32::digest(token.as_bytes());
        self.with_tx(|tx| {
            let token = tx
                .enrollment_token(&hash)?
                .ok_or(IssuerError::EnrollmentToken(TokenProblem::Unknown))?;
            if let Some(w) = token.wallet {
                // Idempotent retry by the same wallet with the same key.
                let rec = tx.wallet(&w, false)?.ok_or(IssuerError::UnknownWallet)?;
                let cert = Certificate::from_der(&rec.cert_der)?;
                if w == csr.wallet_id && *cert.public_key() == csr.public_key {
                    return self.enrollment_of(tx, &rec);
                }
                return Err(IssuerError::EnrollmentToken(TokenProblem::Used));
            }
            if now > token.expires {
                return Err(IssuerError::EnrollmentToken(TokenProblem::Expired));
            }
            if tx.wallet(&csr.wallet_id, false)?.is_some() {
                return Err(IssuerError::WalletExists);
            }
            let (cert, serial) = certificates::issue_wallet_certificate(
                &self.ca,
                &self.policy,
                tx,
                &csr.public_key,
                csr.wallet_id,
                token.profile,
                now,
            )?;
            let rec = WalletRecord {
                key_generation: 0,
                prev_cert_der: None,
                rekey_suite: None,
                retired: None,
                closed_at: None,
                id: csr.wallet_id,
                customer: token.customer.clone(),
                cert_der: cert.der().to_vec(),
                cert_serial: serial,
                cert_not_after: cert.not_after(),
                state: WalletState::Active,
                reason: None,
                load_seq: 0,
                checkpoint: 0,
                report_seq: 0,
                policy_epoch: self.policy.epoch,
                unlock_pending: false,
                clawed_back: 0,
                guaranteed: 0,
                created: now,
            };
            tx.insert_wallet(&rec)?;
            let a = Account::Wallet(rec.id);
            tx.create_account(&a.to_string(), a.book(), a.kind(), now)?;
            tx.use_enrollment_token(&hash, &rec.id)?;
            self.enrollment_of(tx, &rec)
        })
    }

    fn enrollment_of(
        &self,
        tx: &mut dyn Tx,
        rec: &WalletRecord,
    ) -> Result<Enrollment, IssuerError> {
        Ok(Enrollment {
            wallet: rec.id,
            certificate: rec.cert_der.clone(),
            issuer_certificate: self.ca.issuer.der().to_vec(),
            root_certificate: self.ca.root.der().to_vec(),
            policy: self.policy_bytes.clone(),
            crl: tx.setting("crl")?.ok_or(IssuerError::NotInitialised)?,
        })
    }

    /// A wallet's record.
    pub fn wallet(&self, id: &WalletId) -> Result<WalletRecord, IssuerError> {
        self.with_tx(|tx| tx.wallet(id, false)?.ok_or(IssuerError::UnknownWallet))
    }

    /// Wallets, optionally of one customer.
    pub fn wallets(
        &self,
        customer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WalletRecord>, IssuerError> {
        self.with_tx(|tx| Ok(tx.wallets(customer, limit)?))
    }

    /// The issuer's view of a wallet's offline balance (its sub-account).
    pub fn wallet_balance(&self, id: &WalletId) -> Result<i64, IssuerError> {
        self.with_tx(|tx| {
            tx.balance(&Account::Wallet(*id).to_string())?
                .ok_or(IssuerError::UnknownWallet)
        })
    }

    // ---- load and redeem -------------------------------------------------------------------

    /// Move online money into a wallet: debit the customer, credit the wallet's
    /// offline sub-account through the pool, and sign the next LoadVoucher.
    /// Exactly once per idempotency key (a retry returns the same voucher).
    pub fn load(
        &self,
        wallet: &WalletId,
        amount: Amount,
        key: &str,
        now: UnixSeconds,
    ) -> Result<Vec<u8>, IssuerError> {
        check_idempotency_key(key)?;
        let minor = self.amount(amount.minor, amount.currency)?;
        let request = Hash32::digest(format!("load|{wallet}|{minor}").as_bytes());
        let idem = format!("load:{key}");
        self.with_tx(|tx| {
            if let Some((h, resp)) = tx.idempotent(&idem)? {
                return if h == request {
                    Ok(resp)
                } else {
                    Err(IssuerError::IdempotencyKeyReused)
                };
            }
            let mut w = tx.wallet(wallet, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state != WalletState::Active {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            let max = Amount::new(self.policy.max_balance_minor, self.currency());
            if amount.minor > self.policy.max_balance_minor {
                return Err(IssuerError::Limit(Limit::LoadOverHolding { max }));
            }
            let sub_account = Account::Wallet(*wallet);
            let sub = tx
                .balance(&sub_account.to_string())?
                .ok_or(IssuerError::UnknownWallet)?;
            if (sub as i128) + (minor as i128) > self.policy.max_balance_minor as i128 {
                return Err(IssuerError::Limit(Limit::Holding {
                    max,
                    balance: to_amount(sub, self.currency(), &sub_account)?,
                }));
            }
            let acct = Account::Customer(w.customer.clone());
            let balance = tx
                .balance(&acct.to_string())?
                .ok_or(IssuerError::UnknownCustomer)?;
            if balance < minor {
                return Err(IssuerError::InsufficientFunds {
                    balance: to_amount(balance, self.currency(), &acct)?,
                    needed: amount,
                });
            }
            w.load_seq += 1;
            let voucher = Signed::try_sign(
                LoadVoucher {
                    wallet: *wallet,
                    load_seq: w.load_seq,
                    amount: Amount::new(amount.minor, self.currency()),
                    issued: now,
                },
                self.ca.signer(),
            )?
            .into_bytes();
            let reference = format!("{}/{}", wallet.to_hex(), w.load_seq);
            tx.post(&[
                posting(&acct, &Account::Pool, minor, "load", reference.clone(), now)?,
                posting(
                    &Account::Issuance,
                    &sub_account,
                    minor,
                    "load",
                    reference,
                    now,
                )?,
            ])?;
            tx.insert_voucher(wallet, w.load_seq, minor, &voucher, now)?;
            tx.update_wallet(&w)?;
            tx.insert_idempotent(&idem, &request, &voucher, now)?;
            Ok(voucher)
        })
    }

    /// Settle a wallet's Redeem entry online: credit the customer's account,
    /// exactly once (a retry reports the same settlement).
    pub fn redeem(&self, bytes: &[u8], now: UnixSeconds) -> Result<RedeemOutcome, IssuerError> {
        let r = Signed::<Redeem>::decode(bytes)?;
        let body = r.body().clone();
        self.amount(body.amount.minor, body.amount.currency)?;
        let rec = self.wallet(&body.wallet)?;
        let cert = Certificate::from_der(&rec.cert_der)?;
        r.verify(cert.public_key())
            .map_err(|_| IssuerError::BadSignature(Signature::Redeem))?;
        let entry = offpay_protocol::messages::ChainEntry::Redeem(r);
        self.with_tx(|tx| {
            let w = tx
                .wallet(&body.wallet, true)?
                .ok_or(IssuerError::UnknownWallet)?;
            if w.cert_serial != rec.cert_serial {
                return Err(IssuerError::Store(StoreError::Conflict(
                    "certificate renewed meanwhile".into(),
                )));
            }
            let mut stats = RecordStats::default();
            let installed = self.installed();
            let member = self.member_ctx(&installed, crate::store::ClaimState::Outbox);
            let newly = record_and_settle(
                &self.ca,
                member.as_ref(),
                tx,
                &[(entry.clone(), Source::Own)],
                now,
                &mut stats,
            )?;
            let customer_balance = tx
                .balance(&Account::Customer(w.customer.clone()).to_string())?
                .ok_or(IssuerError::UnknownCustomer)?;
            Ok(RedeemOutcome {
                wallet: body.wallet,
                amount: body.amount,
                customer_balance,
                newly_settled: newly > 0,
            })
        })
    }

    // ---- operator: lock, unlock, revoke --------------------------------------------------------

    /// Lock a wallet (it may still sync; its next response tells it to lock).
    pub fn lock(&self, id: &WalletId, reason: &str) -> Result<(), IssuerError> {
        self.with_tx(|tx| {
            let mut w = tx.wallet(id, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state.is_revoked() {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            w.state = WalletState::Locked;
            w.reason = Some(reason_text(reason));
            w.unlock_pending = false;
            tx.update_wallet(&w)?;
            Ok(())
        })
    }

    /// Ask a wallet to re-key: its next sync response tells it to make a new
    /// key in `suite` (the same as today's, or another); the CSR comes in the
    /// report after, and that report's response carries the new
    /// certificate. The wallet keeps paying with its current key meanwhile.
    /// `None` cancels a request not yet completed.
    pub fn request_rekey(&self, id: &WalletId, suite: Option<Suite>) -> Result<(), IssuerError> {
        self.with_tx(|tx| {
            let mut w = tx.wallet(id, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state.is_revoked() {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            w.rekey_suite = suite;
            tx.update_wallet(&w)?;
            Ok(())
        })
    }

    /// Unlock a locked wallet: its next sync response carries the unlock and the
    /// issuer's authoritative checkpoint. A revoked wallet cannot be unlocked.
    pub fn unlock(&self, id: &WalletId) -> Result<(), IssuerError> {
        self.with_tx(|tx| {
            let mut w = tx.wallet(id, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state.is_revoked() {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            w.state = WalletState::Active;
            w.reason = None;
            w.unlock_pending = true;
            tx.update_wallet(&w)?;
            Ok(())
        })
    }

    /// Revoke a wallet's certificate and publish a new CRL.
    pub fn revoke(
        &self,
        id: &WalletId,
        reason: RevocationReason,
        why: &str,
        now: UnixSeconds,
    ) -> Result<(), IssuerError> {
        self.with_tx(|tx| {
            let mut w = tx.wallet(id, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state == WalletState::Closed {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            certificates::revoke(&self.ca, tx, &mut w, reason, why, now)?;
            tx.update_wallet(&w)?;
            Ok(())
        })
    }

    // ---- the end of a wallet's life (lifecycle.rs) ----------------------------------------

    /// Retire a wallet reported lost or broken: its certificate goes on the
    /// CRL at once; its money is paid out by [`Issuer::close_due`] once no
    /// payment of it can still be accepted. A new wallet of the same customer
    /// can be enrolled right away. Retiring an already revoked wallet records
    /// why (the rule for its payout); a closed wallet is refused.
    pub fn retire(
        &self,
        id: &WalletId,
        why: Retirement,
        note: &str,
        now: UnixSeconds,
    ) -> Result<WalletRecord, IssuerError> {
        self.with_tx(|tx| {
            let mut w = tx.wallet(id, true)?.ok_or(IssuerError::UnknownWallet)?;
            crate::lifecycle::retire(&self.ca, tx, &mut w, why, note, now)?;
            tx.update_wallet(&w)?;
            Ok(w)
        })
    }

    /// When a revoked wallet becomes due to close: its certificate's expiry
    /// plus the payees' offline limit (`None`: not revoked, or closed).
    pub fn closes_at(&self, w: &WalletRecord) -> Option<UnixSeconds> {
        (w.state == WalletState::Revoked)
            .then(|| w.cert_not_after.plus(self.policy.max_offline_seconds))
    }

    /// Close the revoked wallets due at `now` (at most `limit`, capped at
    /// [`crate::lifecycle::CLOSES_PER_CALL_MAX`]), in one transaction.
    pub fn close_due(
        &self,
        now: UnixSeconds,
        limit: u32,
    ) -> Result<crate::lifecycle::CloseReport, IssuerError> {
        let limit = limit.min(crate::lifecycle::CLOSES_PER_CALL_MAX);
        let max_offline = self.policy.max_offline_seconds;
        self.with_tx(|tx| crate::lifecycle::close_due(tx, max_offline, now, limit))
    }

    /// The scheme's rules for money no TA holds.
    pub fn lifecycle_rules(&self) -> Result<crate::lifecycle::LifecycleRules, IssuerError> {
        self.with_tx(crate::lifecycle::rules)
    }

    /// Set the scheme's rules for money no TA holds (refused when the return
    /// window is shorter than a payment request lives).
    pub fn set_lifecycle_rules(
        &self,
        r: &crate::lifecycle::LifecycleRules,
    ) -> Result<(), IssuerError> {
        r.check()?;
        self.with_tx(|tx| crate::lifecycle::set_rules(tx, r))
    }

    /// Double spends, newest first.
    pub fn double_spends(
        &self,
        payer: Option<&WalletId>,
        limit: u32,
    ) -> Result<Vec<DoubleSpendRecord>, IssuerError> {
        self.with_tx(|tx| Ok(tx.double_spends(payer, limit)?))
    }

    /// Check every ledger invariant now.
    pub fn invariants(&self) -> Result<InvariantReport, IssuerError> {
        let member = self.is_member();
        let (totals, mut violations) = self.with_tx(|tx| {
            let totals = tx.totals()?;
            let v = if member {
                crate::ledger::member_violations(tx)?
            } else {
                Vec::new()
            };
            Ok((totals, v))
        })?;
        if totals.general_sum != 0 {
            violations.push(format!(
                "general ledger sums to {} instead of 0",
                totals.general_sum
            ));
        }
        if totals.offline_sum != 0 {
            violations.push(format!(
                "offline book sums to {} instead of 0",
                totals.offline_sum
            ));
        }
        if totals.pool != totals.wallets {
            violations.push(format!(
                "pool {} differs from the sum of wallet sub-accounts {}",
                totals.pool, totals.wallets
            ));
        }
        if -totals.external != totals.net_external_postings {
            violations.push(format!(
                "supply {} differs from deposits minus withdrawals {}",
                -totals.external, totals.net_external_postings
            ));
        }
        for a in &totals.drifted_accounts {
            violations.push(format!(
                "account {a}: cached balance differs from its postings"
            ));
        }
        Ok(InvariantReport {
            ok: violations.is_empty(),
            violations,
            supply: -totals.external,
            totals,
        })
    }
}
impl<S: Store> Issuer<S> {
    /// Money credited to `wallet`'s sub-account that its TA did not hold at
    /// its last sync (see the module documentation).
    pub fn stranded(&self, wallet: &WalletId) -> Result<crate::stranded::Stranded, IssuerError> {
        self.with_tx(|tx| {
            tx.wallet(wallet, false)?
                .ok_or(IssuerError::UnknownWallet)?;
            crate::stranded::stored(tx, wallet)
        })
    }
}
