//! The simulation engine: a population of real wallet TAs and one real issuer,
//! driven by a seeded PRNG on a virtual clock, with attacks injected through
//! the real code paths and invariants checked as it goes.
//!
//! This module is the driver (the world's state, devices and their crashes,
//! the event queue and main loop, `run`); `workload.rs` is what honest
//! customers do, `attacks.rs` what attackers do, `auditor.rs` what is
//! checked and reported, `index.rs` the typed indices of their tables
//! (customers, devices, messages, tracked entries: one cannot index another).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use offpay_issuer::store::{Retirement, Store, WalletState};
use offpay_issuer::{Issuer, IssuerConfig, IssuerError, SyncOutcome};
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::messages::{
    CertField, ChainEntry, LoadVoucher, Payment, PaymentRequest, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{self, Certificate, PolicyRef, RevocationReason};
use offpay_protocol::{
    Amount, Currency, Hash32, SeededEntropy, SharedEntropy, SigningKey, Suite, UnixSeconds,
    WalletId,
};
use offpay_store::AnyStore;
use offpay_wallet::vault::{
    CrashPoint, KdfParams, MemoryVault, RealFs, SealedFileVault, Vault, VaultError,
};
use offpay_wallet::{LockReason, Wallet, WalletError};

use crate::config::{AttackKind, Sabotage, SimConfig, StoreChoice};
use crate::faults::{FaultPlan, FaultStore, SharedPlan, lock};
use crate::report::{
    AttackStats, AttackerRecord, ConfigEcho, DayRecord, Distribution, DoubleSpendRecord,
    LedgerSummary, Limits, MachineStats, REPORT_SCHEMA, SimReport,
};
use crate::rng::Rng;
use crate::{Progress, SimError};

mod attacks;
mod auditor;
mod disputes;
mod index;
mod scheme;
mod workload;

use index::{
    CustomerIdx, DeviceIdx, Idx, IssuerIdx, MsgIdx, SavedIdx, Table, TrackedIdx, UndeliveredIdx,
};

type W = Wallet<MemoryVault>;

/// Virtual time of the start of every run.
pub const T0: UnixSeconds = UnixSeconds(1_800_000_000);
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;
const MASTER: [u8; 32] = [0x5e; 32];
const PIN: &[u8] = b"2468";
/// Most violations kept in the report (the rest are counted in one line).
const VIOLATIONS_MAX: usize = 1000;
/// Validity asked for every payment request.
const REQUEST_SECONDS: u64 = 300;
/// Regular merchants of a consumer (90% of its shopping goes there).
const FAVORITE_MERCHANTS: usize = 6;
/// Consumers a consumer pays in person.
const FRIENDS: usize = 5;
/// Mean statements between two injected store faults with `--faults`.
const FAULT_MEAN_STATEMENTS: u64 = 60;
/// Chance that a committed sync's response is lost to an issuer restart (`--faults`).
const RESTART_MID_SYNC: f64 = 0.02;
/// Times an operation is sent again after injected faults before giving up.
const FAULT_RETRIES_MAX: u32 = 32;
/// Reports in one group commit at the final sync.
const GROUP_MAX: usize = 8;

fn eur() -> Currency {
    Currency::new("EUR").unwrap_or_else(|| unreachable!("EUR is a valid currency code"))
}

/// `WalletError` variant name (with the inner variant for wrappers), no data:
/// stable and free of ids.
pub fn error_name<E: std::fmt::Debug>(e: &E) -> String {
    let s = format!("{e:?}");
    let ident = |t: &str| -> String {
        t.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let outer = ident(&s);
    match s[outer.len()..].strip_prefix('(') {
        Some(rest) => {
            let inner = ident(rest);
            if inner.is_empty()
                || inner
                    .chars()
                    .next()
                    .is_some_and(|c| !c.is_ascii_uppercase())
            {
                outer
            } else {
                format!("{outer}({inner})")
            }
        }
        None => outer,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A customer's own payment (habit).
    Pay { cust: CustomerIdx },
    /// A customer's device comes online and syncs (habit).
    Sync { cust: CustomerIdx },
    /// An attack starts.
    Attack { kind: AttackKind, cust: CustomerIdx },
    /// One payment of an attacker's spree from a given device.
    Spree {
        dev: DeviceIdx,
        left: u32,
        gap: u64,
        kind: AttackKind,
    },
    /// Restore the vault copy kept by a rollback attacker.
    Restore { cust: CustomerIdx, saved: SavedIdx },
    /// A delayed message (torn channel, replay).
    Msg { id: MsgIdx },
    /// A payer complains about a payment its payee never accepted.
    Dispute { u: UndeliveredIdx, tries: u8 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsgKind {
    /// A lost Payment reaches its payee after all.
    LatePayment,
    /// The payer retries after a lost Receipt.
    ReceiptRetry,
    /// An old Payment is sent to its payee again.
    Replay,
}

struct Msg {
    kind: MsgKind,
    payer_dev: DeviceIdx,
    payee_dev: DeviceIdx,
    amount: u64,
    request: Vec<u8>,
    payment: Vec<u8>,
    /// Index into `undelivered` for a payment not accepted yet.
    undelivered: Option<UndeliveredIdx>,
}

/// A payment its payee did not accept (yet): refused, lost, or late.
struct Undelivered {
    payee_dev: DeviceIdx,
    /// The payee wallet (payments).
    payee: Option<WalletId>,
    payer: WalletId,
    hash: Hash32,
    /// The payer's seq of the entry.
    seq: u64,
    amount: u64,
    accepted: bool,
    /// The payee's TA refused it (else it never reached the payee).
    refused: bool,
}

struct Device {
    wallet: Option<W>,
    cust: CustomerIdx,
    /// Last observed TA balance (shadow).
    balance: u64,
    /// Tracked attacker entries this device holds and has not reported.
    held: Vec<TrackedIdx>,
    /// With several issuers: tracked entries of another issuer's payer this
    /// payee refused and keeps as evidence (its issuer does not forward
    /// evidence to the payer's issuer: see `Tracked::foreign_evidence`).
    evidence: Vec<TrackedIdx>,
    /// Vouchers issued to this device and not applied yet: (load seq, amount).
    vouchers: Vec<(u64, u64)>,
    /// A crash has been armed in its vault.
    crash_armed: bool,
    /// The TA's random source: seeded by the run's seed and the device index,
    /// kept when the TA reopens.
    entropy: SharedEntropy,
}

impl Device {
    fn alive(&self) -> bool {
        self.wallet.is_some()
    }
}

struct Customer {
    id: String,
    /// Its issuer (its online account and every wallet it holds live there).
    issuer: IssuerIdx,
    merchant: bool,
    device: DeviceIdx,
    attacker: Option<AttackKind>,
    attacker_rec: Option<usize>,
    wallets: Vec<WalletId>,
    /// Online balance the simulator expects (deposits - loads + redeems - withdrawals).
    online_expected: i64,
    /// The customer lost a device or re-provisioned at least once.
    reprovisioned: u32,
    /// Merchants a consumer usually pays, and consumers it pays in person.
    favorites: Vec<CustomerIdx>,
    friends: Vec<CustomerIdx>,
}

/// An outgoing entry of an attacker, tracked to count double spends exactly.
struct Tracked {
    amount: u64,
    released: u64,
    reported: Option<u64>,
    /// The issuer of the payee it was handed to (a payment).
    payee_issuer: Option<IssuerIdx>,
    /// Kept as evidence by a payee of another issuer than the payer's, and
    /// reported there: it reached an issuer, not the payer's.
    foreign_evidence: bool,
}

struct Foreign {
    issuer_key: SigningKey,
    issuer: Certificate,
    serial: u64,
}

/// One issuer of the run: its backend over its own store.
struct Node {
    issuer: Issuer<FaultStore>,
    /// The real store under the issuer (kept across issuer restarts).
    base: Arc<AnyStore>,
    entropy: SharedEntropy,
    /// Its issuer code (`bank-0`, ...): the commonName of its CA at the scheme.
    code: String,
    /// Its database file, if it has one (for the store size).
    file: Option<std::path::PathBuf>,
    /// Money deposited into and withdrawn from its customers' online accounts.
    deposited: u64,
    withdrawn: u64,
}

/// The whole simulated world.
struct Sim<'a, P: FnMut(Progress)> {
    cfg: SimConfig,
    /// The issuers (one unless `SimConfig::issuers` says more).
    nodes: Table<IssuerIdx, Node>,
    /// The scheme the issuers are members of (runs with several issuers).
    scheme: Option<scheme::SchemeWorld>,
    /// Issuer-side faults (armed around issuer operations when `--faults`),
    /// one plan for every issuer's store.
    plan: SharedPlan,
    /// The root every wallet trusts (the issuer's own, or the scheme's).
    root_der: Vec<u8>,
    policy_max_payment: u64,
    holding: u64,
    limits: Limits,
    /// Behaviour (habits, payments) and attacks draw from separate streams so
    /// that enabling an attack does not reshuffle the baseline population.
    rng: Rng,
    arng: Rng,
    /// Disputes draw from their own stream too.
    drng: Rng,
    /// The cases the customers opened.
    cases: Vec<disputes::SimCase>,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    qseq: u64,
    devices: Table<DeviceIdx, Device>,
    customers: Table<CustomerIdx, Customer>,
    merchants: Vec<CustomerIdx>,
    consumers: Vec<CustomerIdx>,
    owner: HashMap<WalletId, CustomerIdx>,
    msgs: Table<MsgIdx, Option<Msg>>,
    undelivered: Table<UndeliveredIdx, Undelivered>,
    tracked: Table<TrackedIdx, Tracked>,
    tracked_by_hash: HashMap<Hash32, TrackedIdx>,
    chains: BTreeMap<(CustomerIdx, u64), Vec<TrackedIdx>>,
    /// Vault copies kept by rollback attackers, with the tracked entries their logs hold.
    saved: Table<SavedIdx, Option<(MemoryVault, Vec<TrackedIdx>)>>,
    foreign: Option<Foreign>,
    tmp: Option<tempfile::TempDir>,
    op: u64,
    // TA-side conservation (shadow ledger).
    ta_sum: u64,
    in_flight: u64,
    discarded: u64,
    loads_applied: u64,
    ta_redeemed: u64,
    copied: u64,
    // Report.
    r: SimReport,
    violations_dropped: u64,
    day: DayRecord,
    detected: BTreeMap<(CustomerIdx, u64), u64>,
    ds_seen_in_syncs: u64,
    /// Payments accepted between wallets of different issuers, and their value.
    cross_payments: u64,
    cross_value: u64,
    /// The `SimConfig::sabotage` bug was injected.
    sabotaged: bool,
    progress: &'a mut P,
}

impl<'a, P: FnMut(Progress)> Sim<'a, P> {
    fn violation(&mut self, v: String) {
        if self.r.invariant_violations.len() < VIOLATIONS_MAX {
            self.r.invariant_violations.push(v);
        } else {
            self.violations_dropped += 1;
        }
    }

    fn now_s(t: UnixSeconds) -> u64 {
        t.since(T0)
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.qseq += 1;
        self.queue.push(Reverse((t, self.qseq, ev)));
    }

    fn next_op(&mut self) -> u64 {
        self.op += 1;
        self.op
    }

    fn refusal(&mut self, name: String) {
        *self.r.refusals.entry(name).or_default() += 1;
        self.day.refusals += 1;
    }

    fn issuer_refusal(&mut self, op: &str, e: &IssuerError) {
        *self
            .r
            .issuer_refusals
            .entry(format!("{op}:{}", e.code()))
            .or_default() += 1;
    }

    fn outcome(&mut self, kind: AttackKind, what: &str) {
        *self
            .r
            .attacks
            .entry(kind.name().into())
            .or_default()
            .outcomes
            .entry(what.into())
            .or_default() += 1;
    }

    fn injected(&mut self, kind: AttackKind) {
        self.r
            .attacks
            .entry(kind.name().into())
            .or_default()
            .injected += 1;
    }

    /// The issuer of a customer.
    fn iss(&self, cust: CustomerIdx) -> &Issuer<FaultStore> {
        &self.nodes[self.customers[cust].issuer].issuer
    }

    /// The issuer of a device's customer.
    fn dev_node(&self, dev: DeviceIdx) -> IssuerIdx {
        self.customers[self.devices[dev].cust].issuer
    }

    fn honest(&self, cust: CustomerIdx) -> bool {
        self.customers[cust].attacker.is_none()
    }

    fn wallet(&mut self, dev: DeviceIdx) -> &mut W {
        self.devices[dev]
            .wallet
            .as_mut()
            .unwrap_or_else(|| unreachable!("device {dev} is checked alive before use"))
    }

    fn actual_balance(&self, dev: DeviceIdx) -> u64 {
        self.devices[dev]
            .wallet
            .as_ref()
            .and_then(|w| w.balance())
            .map_or(0, |a| a.minor)
    }

    /// Observe a device's balance after an operation: it must have moved by
    /// exactly `expected` (a signed delta). Updates the shadow and the TA sum.
    fn settle_balance(&mut self, dev: DeviceIdx, expected: i128, what: &str) {
        self.r.invariant_checks += 1;
        let before = self.devices[dev].balance;
        let after = self.actual_balance(dev);
        let delta = after as i128 - before as i128;
        if delta != expected {
            let c = self.devices[dev].cust;
            self.violation(format!(
                "conservation: {what} moved customer {c}'s offline balance by {delta}, expected {expected}"
            ));
        }
        self.devices[dev].balance = after;
        self.ta_sum = (self.ta_sum as i128 + delta).max(0) as u64;
    }

    // ---- devices and crashes ---------------------------------------------------------------

    /// Restart a crashed device: its vault keeps what the crash left, the TA reopens.
    fn recover(&mut self, dev: DeviceIdx) -> Result<(), SimError> {
        let Some(w) = self.devices[dev].wallet.take() else {
            return Ok(());
        };
        let mut vault = w.into_vault();
        vault.restart();
        match Wallet::open_with_entropy(vault, self.devices[dev].entropy.clone()) {
            Ok(w) => {
                let cust = self.devices[dev].cust;
                if w.lock().is_some() {
                    self.violation(format!(
                        "crash: customer {cust}'s wallet reopened locked after a crash"
                    ));
                }
                self.devices[dev].wallet = Some(w);
                self.devices[dev].crash_armed = false;
                self.outcome(AttackKind::Crash, "crashed_and_recovered");
                Ok(())
            }
            Err(e) => Err(SimError::Wallet(format!(
                "a crashed wallet does not reopen: {}",
                error_name(&e)
            ))),
        }
    }

    /// Run a TA operation; after an injected crash, restart the device and try
    /// once more (what an app does). Returns the result and whether it crashed.
    fn op<T>(
        &mut self,
        dev: DeviceIdx,
        f: impl Fn(&mut W) -> Result<T, WalletError>,
    ) -> Result<(Result<T, WalletError>, bool), SimError> {
        match f(self.wallet(dev)) {
            Err(WalletError::Vault(VaultError::Crashed)) => {
                self.recover(dev)?;
                Ok((f(self.wallet(dev)), true))
            }
            r => Ok((r, false)),
        }
    }

    /// The random source of the device that will get index `dev`.
    fn device_entropy(&self, dev: DeviceIdx) -> SharedEntropy {
        SeededEntropy::shared(self.cfg.seed, &format!("device {dev}"))
    }

    /// The random source of the next new device.
    fn next_device_entropy(&self) -> SharedEntropy {
        self.device_entropy(self.devices.next_idx())
    }

    fn new_device(&mut self, w: W, cust: CustomerIdx, entropy: SharedEntropy) -> DeviceIdx {
        let balance = w.balance().map_or(0, |a| a.minor);
        let dev = self.devices.push(Device {
            entropy,
            wallet: Some(w),
            cust,
            balance,
            held: Vec::new(),
            evidence: Vec::new(),
            vouchers: Vec::new(),
            crash_armed: false,
        });
        self.ta_sum += balance;
        dev
    }

    /// A device dies (lost, tampered, thrown away): its balance leaves the TAs.
    fn kill(&mut self, dev: DeviceIdx) -> u64 {
        let bal = self.actual_balance(dev);
        self.settle_balance(dev, 0, "a device's death");
        self.devices[dev].wallet = None;
        self.devices[dev].held.clear();
        self.devices[dev].evidence.clear();
        self.ta_sum -= bal.min(self.ta_sum);
        self.discarded += bal;
        self.devices[dev].balance = 0;
        bal
    }

    /// The customer (or the operator) reports `id` lost or broken: the
    /// issuer revokes it at once and pays it out when it closes.
    fn retire(&mut self, cust: CustomerIdx, id: &WalletId, why: Retirement, now: UnixSeconds) {
        match self
            .iss(cust)
            .retire(id, why, "reported by the customer", now)
        {
            Ok(_) => match why {
                Retirement::Lost => self.r.lifecycle.retired_lost += 1,
                Retirement::Broken => self.r.lifecycle.retired_broken += 1,
            },
            Err(e) => self.issuer_refusal("retire", &e),
        }
    }

    /// A new wallet for `cust`, enrolled with the issuer, as its primary device.
    fn provision(&mut self, cust: CustomerIdx, now: UnixSeconds) -> Result<DeviceIdx, SimError> {
        let id = self.customers[cust].id.clone();
        let k = self.customers[cust].issuer;
        let token = self.faulted(k, |i| i.create_enrollment_token(&id, now))??;
        let entropy = self.next_device_entropy();
        let mut w = Wallet::create_with_entropy(
            MemoryVault::new(),
            Suite::Ed25519,
            &self.root_der,
            now,
            entropy.clone(),
        )
        .map_err(|e| SimError::Wallet(format!("create: {}", error_name(&e))))?;
        let csr = w
            .csr()
            .map_err(|e| SimError::Wallet(format!("csr: {}", error_name(&e))))?;
        let e = self.faulted(k, |i| i.enroll(&token, &csr, now))??;
        w.enroll(
            &e.issuer_certificate,
            &e.certificate,
            &e.policy,
            Some(&e.crl),
            now,
        )
        .map_err(|e| SimError::Wallet(format!("enroll: {}", error_name(&e))))?;
        self.owner.insert(w.wallet_id(), cust);
        self.customers[cust].wallets.push(w.wallet_id());
        let dev = self.new_device(w, cust, entropy);
        self.customers[cust].device = dev;
        if self.scheme.is_some() {
            // A member issuer's new wallet syncs at once: its first answer
            // carries the scheme's directory (every other issuer's CA and
            // CRL), without which it could pay and be paid only at home.
            self.sync_device(dev, now)?;
        }
        Ok(dev)
    }
}

/// Run one simulation. `progress` is called after every simulated hour.
pub fn run(config: SimConfig, mut progress: impl FnMut(Progress)) -> Result<SimReport, SimError> {
    config.validate().map_err(SimError::Config)?;
    let db_dir = match &config.store {
        StoreChoice::Memory => ram_dir(),
        _ => None,
    };
    let mut ic = IssuerConfig::default_for(eur());
    let o = &config.policy;
    if let Some(v) = o.holding_limit_minor {
        ic.policy.max_balance_minor = v;
    }
    if let Some(v) = o.max_payment_minor {
        ic.policy.max_payment = Amount::new(v, eur());
    }
    if let Some(v) = o.max_offline_spend_minor {
        ic.policy.max_offline_spend_minor = v;
    }
    if let Some(v) = o.max_offline_payments {
        ic.policy.max_offline_payments = v;
    }
    if let Some(v) = o.max_offline_seconds {
        ic.policy.max_offline_seconds = v;
    }
    let mut seed_rng = Rng::new(config.seed);
    let rng = seed_rng.fork(1);
    let arng = seed_rng.fork(2);
    let frng = seed_rng.fork(3);
    let drng = seed_rng.fork(4);
    let gap = if config.faults {
        FAULT_MEAN_STATEMENTS
    } else {
        0
    };
    let plan: SharedPlan = Arc::new(Mutex::new(FaultPlan::new(frng, gap)));
    let mut nodes: Table<IssuerIdx, Node> = Table::with_capacity(config.issuers);
    let mut scheme = None;
    if config.issuers == 1 {
        // One standalone issuer: its own root and issuer CA (today's world).
        let (base, file) = open_store(
            &config.store,
            db_dir.as_ref(),
            "issuer",
            config.seed,
            "store",
        )?;
        let entropy = SeededEntropy::shared(config.seed, "issuer");
        let issuer = Issuer::init_with_entropy(
            FaultStore::new(base.clone(), plan.clone()),
            &MASTER,
            &ic,
            T0,
            entropy.clone(),
        )?;
        apply_rules(&issuer, &config)?;
        nodes.push(Node {
            issuer,
            base,
            entropy,
            code: "issuer".into(),
            file,
            deposited: 0,
            withdrawn: 0,
        });
    } else {
        scheme = Some(scheme::SchemeWorld::create(
            &config,
            db_dir.as_ref(),
            &ic,
            &plan,
            &mut nodes,
        )?);
    }
    let p = ic.policy.clone();
    let limits = Limits {
        holding_limit_minor: p.max_balance_minor,
        max_payment_minor: p.max_payment.minor,
        max_offline_spend_minor: p.max_offline_spend_minor,
        max_offline_payments: p.max_offline_payments,
        max_offline_seconds: p.max_offline_seconds,
        loss_bound_per_wallet_minor: p
            .max_balance_minor
            .saturating_add(p.max_offline_spend_minor),
    };
    let n = config.wallets;
    let n_merchants = ((n as f64 * config.merchants_fraction).round() as usize).clamp(1, n - 2);
    let mut attacks = BTreeMap::new();
    let mut units = BTreeMap::new();
    let mut stats = BTreeMap::new();
    for k in AttackKind::ALL {
        let r = config.rate(k);
        if r > 0.0 {
            attacks.insert(k.name().to_string(), r);
            units.insert(k.name().to_string(), k.rate_unit().to_string());
            stats.insert(
                k.name().to_string(),
                AttackStats {
                    rate: r,
                    rate_unit: k.rate_unit().into(),
                    ..AttackStats::default()
                },
            );
        }
    }
    let report = SimReport {
        schema: REPORT_SCHEMA.into(),
        currency: eur().to_string(),
        config: ConfigEcho {
            wallets: n as u64,
            merchants: n_merchants as u64,
            days: config.days,
            seed: config.seed,
            attacks,
            attack_rate_units: units,
            merchants_fraction: config.merchants_fraction,
            payments_per_day: config.payments_per_day,
            consumer_offline_hours: config.consumer_offline_hours,
            merchant_offline_hours: config.merchant_offline_hours,
            store: match config.store {
                StoreChoice::Memory => "memory".into(),
                StoreChoice::SqliteMemory => "sqlite-memory".into(),
                StoreChoice::File(_) => "sqlite-file".into(),
            },
            full_check_hours: config.full_check_hours,
            issuers: config.issuers as u64,
            cycle_hours: (config.issuers > 1).then_some(config.cycle_hours),
        },
        invariant_violations: Vec::new(),
        invariant_checks: 0,
        payments: 0,
        payments_attempted: 0,
        value_moved_minor: 0,
        syncs: 0,
        loads: 0,
        loaded_minor: 0,
        redeems: 0,
        redeemed_minor: 0,
        deposited_minor: 0,
        withdrawn_minor: 0,
        double_spends_injected: 0,
        double_spends_detected: 0,
        double_spends_undetectable: 0,
        double_spend_proofs_verified: 0,
        detection_delay_s: Distribution::default(),
        honest_loss_minor: 0,
        guarantee_loss_minor: 0,
        clawed_back_minor: 0,
        lost_device_minor: 0,
        forfeited_minor: 0,
        stranded_minor: 0,
        unclaimed_minor: 0,
        lifecycle: Default::default(),
        cases: Default::default(),
        limits: limits.clone(),
        max_loss_per_attacker_minor: 0,
        refusals: BTreeMap::new(),
        issuer_refusals: BTreeMap::new(),
        attacks: stats,
        attackers: Vec::new(),
        double_spends: Vec::new(),
        daily: Vec::new(),
        ledger: LedgerSummary::default(),
        machine: MachineStats::default(),
        store_dump: None,
        faults: None,
        scheme: None,
    };
    let root_der = nodes[IssuerIdx::new(0)]
        .issuer
        .root_certificate()
        .der()
        .to_vec();
    let mut sim = Sim {
        policy_max_payment: p.max_payment.minor,
        holding: p.max_balance_minor,
        limits,
        cfg: config,
        nodes,
        scheme,
        plan,
        root_der,
        rng,
        arng,
        drng,
        cases: Vec::new(),
        queue: BinaryHeap::new(),
        qseq: 0,
        devices: Table::with_capacity(n + n / 8),
        customers: Table::with_capacity(n),
        merchants: (0..n_merchants).map(CustomerIdx::new).collect(),
        consumers: (n_merchants..n).map(CustomerIdx::new).collect(),
        owner: HashMap::with_capacity(n + n / 8),
        msgs: Table::new(),
        undelivered: Table::new(),
        tracked: Table::new(),
        tracked_by_hash: HashMap::new(),
        chains: BTreeMap::new(),
        saved: Table::new(),
        foreign: None,
        tmp: None,
        op: 0,
        ta_sum: 0,
        in_flight: 0,
        discarded: 0,
        loads_applied: 0,
        ta_redeemed: 0,
        copied: 0,
        r: report,
        violations_dropped: 0,
        day: DayRecord::default(),
        detected: BTreeMap::new(),
        ds_seen_in_syncs: 0,
        cross_payments: 0,
        cross_value: 0,
        sabotaged: false,
        progress: &mut progress,
    };
    sim.populate()?;
    sim.main_loop()?;
    let mut report = sim.r;
    // Not in the JSON: machine-dependent.
    let mut files: Vec<PathBuf> = sim.nodes.iter().filter_map(|n| n.file.clone()).collect();
    if let Some(f) = sim.scheme.as_ref().and_then(|s| s.file.clone()) {
        files.push(f);
    }
    if !files.is_empty() {
        report.machine.store_bytes = Some(
            files
                .iter()
                .flat_map(|f| {
                    ["", "-wal", "-shm"]
                        .iter()
                        .filter_map(move |x| std::fs::metadata(format!("{}{x}", f.display())).ok())
                })
                .map(|m| m.len())
                .sum(),
        );
    }
    if sim.cfg.faults {
        report.faults = Some(lock(&sim.plan).stats.clone());
    }
    if sim.cfg.dump_store {
        report.store_dump = Some(if sim.nodes.len() == 1 {
            sim.nodes[IssuerIdx::new(0)].base.dump()?
        } else {
            let mut out = String::new();
            for n in sim.nodes.iter() {
                out.push_str(&format!("database of issuer {}\n", n.code));
                out.push_str(&n.base.dump()?);
            }
            if let Some(s) = &sim.scheme {
                out.push_str("database of the scheme\n");
                out.push_str(&s.dump()?);
            }
            out
        });
    }
    drop(sim.nodes);
    drop(sim.scheme);
    drop(db_dir);
    Ok(report)
}

/// Open the SQLite store `name` where the configuration says, with its
/// seeded entropy stream. Returns the store and its file, if any.
/// The scheme's lifecycle rules of the run on a new issuer.
pub(super) fn apply_rules(issuer: &Issuer<FaultStore>, config: &SimConfig) -> Result<(), SimError> {
    let rules = offpay_issuer::LifecycleRules {
        refund_lost: config.refund_lost,
        ..issuer.lifecycle_rules()?
    };
    issuer.set_lifecycle_rules(&rules)?;
    Ok(())
}

fn open_store(
    choice: &StoreChoice,
    ram: Option<&tempfile::TempDir>,
    name: &str,
    seed: u64,
    stream: &str,
) -> Result<(Arc<AnyStore>, Option<PathBuf>), SimError> {
    let (mut store, file) = match choice {
        StoreChoice::Memory => match ram {
            Some(dir) => {
                let file = dir.path().join(format!("{name}.sqlite"));
                (offpay_store::open_sqlite(&file)?, Some(file))
            }
            None => (offpay_store::open_sqlite_memory()?, None),
        },
        StoreChoice::SqliteMemory => (offpay_store::open_sqlite_memory()?, None),
        StoreChoice::File(p) => {
            let file = store_file(p, name);
            (offpay_store::open_sqlite(&file)?, Some(file))
        }
    };
    store.set_entropy(SeededEntropy::shared(seed, stream));
    Ok((Arc::new(store), file))
}

/// The file of store `name` for `--store FILE`: FILE itself for the one
/// issuer of a run; `FILE.<name>` for each database of a run with a scheme.
fn store_file(p: &std::path::Path, name: &str) -> PathBuf {
    if name == "issuer" {
        p.to_path_buf()
    } else {
        let mut s = p.as_os_str().to_os_string();
        s.push(format!(".{name}"));
        PathBuf::from(s)
    }
}

/// A fresh private directory on the RAM file system, if the machine has one.
fn ram_dir() -> Option<tempfile::TempDir> {
    let shm = std::path::Path::new("/dev/shm");
    if !shm.is_dir() {
        return None;
    }
    tempfile::Builder::new()
        .prefix("offpay-sim-")
        .tempdir_in(shm)
        .ok()
}

impl<P: FnMut(Progress)> Sim<'_, P> {
    fn populate(&mut self) -> Result<(), SimError> {
        let n = self.cfg.wallets;
        let holding = self.holding;
        for i in 0..n {
            let merchant = i < self.merchants.len();
            let id = format!("c{i}");
            let issuer = IssuerIdx::new(i % self.nodes.len());
            self.nodes[issuer].issuer.create_customer(&id, &id, T0)?;
            let cust = self.customers.push(Customer {
                id,
                issuer,
                merchant,
                device: DeviceIdx::NONE,
                attacker: None,
                attacker_rec: None,
                wallets: Vec::new(),
                online_expected: 0,
                reprovisioned: 0,
                favorites: Vec::new(),
                friends: Vec::new(),
            });
            if !merchant {
                for _ in 0..FAVORITE_MERCHANTS {
                    if let Some(m) = self.pick(true, Some(cust)) {
                        self.customers[cust].favorites.push(m);
                    }
                }
                for _ in 0..FRIENDS {
                    if let Some(f) = self.pick(false, Some(cust)) {
                        self.customers[cust].friends.push(f);
                    }
                }
            }
            let online = if merchant { 50_000 } else { 300_000 };
            self.deposit(cust, online, T0)?;
            let dev = self.provision(cust, T0)?;
            let load = if merchant { holding / 10 } else { holding / 2 }.min(online);
            if load >= 100 {
                self.load(dev, load, T0)?;
            }
            let per_day = if merchant {
                0.1
            } else {
                self.cfg.payments_per_day
            };
            if per_day > 0.0 {
                let mean = (DAY as f64 / per_day) as u64;
                let t = 1 + self.rng.wait(mean);
                self.push(t, Ev::Pay { cust });
            }
            let mean_h = if merchant {
                self.cfg.merchant_offline_hours
            } else {
                self.cfg.consumer_offline_hours
            };
            let t = 60 + self.rng.below(mean_h * HOUR);
            self.push(t, Ev::Sync { cust });
        }
        Ok(())
    }

    fn main_loop(&mut self) -> Result<(), SimError> {
        let days = u64::from(self.cfg.days);
        let hours = days * 24;
        self.schedule_attacks(0);
        for hour in 0..hours {
            let end = (hour + 1) * HOUR;
            while let Some(Reverse((t, _, _))) = self.queue.peek() {
                if *t >= end {
                    break;
                }
                let Some(Reverse((t, _, ev))) = self.queue.pop() else {
                    break;
                };
                let now = T0.plus(t);
                match ev {
                    Ev::Pay { cust } => self.on_pay(cust, now)?,
                    Ev::Sync { cust } => self.on_sync(cust, now)?,
                    Ev::Attack { kind, cust } => self.on_attack(kind, cust, now)?,
                    Ev::Spree {
                        dev,
                        left,
                        gap,
                        kind,
                    } => self.on_spree(dev, left, gap, kind, now)?,
                    Ev::Restore { cust, saved } => self.on_restore(cust, saved, now)?,
                    Ev::Msg { id } => self.on_msg(id, now)?,
                    Ev::Dispute { u, tries } => self.on_dispute(u, tries, now),
                }
            }
            if self.scheme.is_some() {
                let close = (hour + 1) % u64::from(self.cfg.cycle_hours) == 0;
                self.scheme_round(T0.plus(end), close)?;
            }
            self.cheap_check(hour + 1);
            if (hour + 1) % u64::from(self.cfg.full_check_hours) == 0 {
                self.full_check(hour + 1)?;
            }
            if (hour + 1) % 24 == 0 {
                let day = ((hour + 1) / 24) as u32;
                self.work_cases(T0.plus(end))?;
                self.end_of_day(day)?;
                if u64::from(day) < days {
                    self.schedule_attacks(u64::from(day));
                }
            }
            let p = Progress {
                hour: hour + 1,
                hours,
                day: (hour / 24) as u32 + 1,
                days: self.cfg.days,
                payments: self.r.payments,
                syncs: self.r.syncs,
                double_spends_detected: self.ds_seen_in_syncs,
                violations: self.r.invariant_violations.len() as u64,
                finishing: false,
            };
            (self.progress)(p);
        }
        self.finish(T0.plus(hours * HOUR))?;
        let p = Progress {
            hour: hours,
            hours,
            day: self.cfg.days,
            days: self.cfg.days,
            payments: self.r.payments,
            syncs: self.r.syncs,
            double_spends_detected: self.r.double_spends_detected,
            violations: self.r.invariant_violations.len() as u64,
            finishing: true,
        };
        (self.progress)(p);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_stable_and_id_free() {
        assert_eq!(error_name(&WalletError::NonceUnknown), "NonceUnknown");
        assert_eq!(
            error_name(&WalletError::Vault(VaultError::Tampered)),
            "Vault(Tampered)"
        );
        assert_eq!(
            error_name(&WalletError::LimitHolding { max_minor: 5 }),
            "LimitHolding"
        );
        assert_eq!(
            error_name(&WalletError::PeerRevoked { serial: 7 }),
            "PeerRevoked"
        );
    }
}
