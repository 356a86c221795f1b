//! The simulation engine: a population of real wallet TAs and one real issuer,
//! driven by a seeded PRNG on a virtual clock, with attacks injected through
//! the real code paths and invariants checked as it goes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use offpay_issuer::store::{Store, WalletState};
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

use crate::config::{AttackKind, SimConfig, StoreChoice};
use crate::faults::{FaultPlan, FaultStore, SharedPlan, lock};
use crate::report::{
    AttackStats, AttackerRecord, ConfigEcho, DayRecord, Distribution, DoubleSpendRecord,
    LedgerSummary, Limits, MachineStats, REPORT_SCHEMA, SimReport,
};
use crate::rng::Rng;
use crate::{Progress, SimError};

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
    Pay { cust: usize },
    /// A customer's device comes online and syncs (habit).
    Sync { cust: usize },
    /// An attack starts.
    Attack { kind: AttackKind, cust: usize },
    /// One payment of an attacker's spree from a given device.
    Spree {
        dev: usize,
        left: u32,
        gap: u64,
        kind: AttackKind,
    },
    /// Restore the vault copy kept by a rollback attacker.
    Restore { cust: usize, saved: usize },
    /// A delayed message (torn channel, replay).
    Msg { id: usize },
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
    payer_dev: usize,
    payee_dev: usize,
    amount: u64,
    request: Vec<u8>,
    payment: Vec<u8>,
    /// Index into `undelivered` for a payment not accepted yet.
    undelivered: Option<usize>,
}

/// A payment its payee did not accept (yet): refused, lost, or late.
struct Undelivered {
    payee_dev: usize,
    payer: WalletId,
    hash: Hash32,
    amount: u64,
    accepted: bool,
}

struct Device {
    wallet: Option<W>,
    cust: usize,
    /// Last observed TA balance (shadow).
    balance: u64,
    /// Tracked attacker entries this device holds and has not reported.
    held: Vec<usize>,
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
    merchant: bool,
    device: usize,
    attacker: Option<AttackKind>,
    attacker_rec: Option<usize>,
    wallets: Vec<WalletId>,
    /// Online balance the simulator expects (deposits - loads + redeems - withdrawals).
    online_expected: i64,
    /// The customer lost a device or re-provisioned at least once.
    reprovisioned: u32,
    /// Merchants a consumer usually pays, and consumers it pays in person.
    favorites: Vec<usize>,
    friends: Vec<usize>,
}

/// An outgoing entry of an attacker, tracked to count double spends exactly.
struct Tracked {
    amount: u64,
    released: u64,
    reported: Option<u64>,
}

struct Foreign {
    issuer_key: SigningKey,
    issuer: Certificate,
    serial: u64,
}

/// The whole simulated world.
struct Sim<'a, P: FnMut(Progress)> {
    cfg: SimConfig,
    issuer: Issuer<FaultStore>,
    /// The real store under the issuer (kept across issuer restarts).
    base: Arc<AnyStore>,
    /// Issuer-side faults (armed around issuer operations when `--faults`).
    plan: SharedPlan,
    issuer_entropy: SharedEntropy,
    root_der: Vec<u8>,
    policy_max_payment: u64,
    holding: u64,
    limits: Limits,
    /// Behaviour (habits, payments) and attacks draw from separate streams so
    /// that enabling an attack does not reshuffle the baseline population.
    rng: Rng,
    arng: Rng,
    queue: BinaryHeap<Reverse<(u64, u64, Ev)>>,
    qseq: u64,
    devices: Vec<Device>,
    customers: Vec<Customer>,
    merchants: Vec<usize>,
    consumers: Vec<usize>,
    owner: HashMap<WalletId, usize>,
    msgs: Vec<Option<Msg>>,
    undelivered: Vec<Undelivered>,
    tracked: Vec<Tracked>,
    tracked_by_hash: HashMap<Hash32, usize>,
    chains: BTreeMap<(usize, u64), Vec<usize>>,
    /// Vault copies kept by rollback attackers, with the tracked entries their logs hold.
    saved: Vec<Option<(MemoryVault, Vec<usize>)>>,
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
    detected: BTreeMap<(usize, u64), u64>,
    ds_seen_in_syncs: u64,
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

    fn honest(&self, cust: usize) -> bool {
        self.customers[cust].attacker.is_none()
    }

    fn wallet(&mut self, dev: usize) -> &mut W {
        self.devices[dev]
            .wallet
            .as_mut()
            .unwrap_or_else(|| unreachable!("device {dev} is checked alive before use"))
    }

    fn actual_balance(&self, dev: usize) -> u64 {
        self.devices[dev]
            .wallet
            .as_ref()
            .and_then(|w| w.balance())
            .map_or(0, |a| a.minor)
    }

    /// Observe a device's balance after an operation: it must have moved by
    /// exactly `expected` (a signed delta). Updates the shadow and the TA sum.
    fn settle_balance(&mut self, dev: usize, expected: i128, what: &str) {
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
    fn recover(&mut self, dev: usize) -> Result<(), SimError> {
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
        dev: usize,
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
    fn device_entropy(&self, dev: usize) -> SharedEntropy {
        SeededEntropy::shared(self.cfg.seed, &format!("device {dev}"))
    }

    /// The random source of the next new device.
    fn next_device_entropy(&self) -> SharedEntropy {
        self.device_entropy(self.devices.len())
    }

    fn new_device(&mut self, w: W, cust: usize, entropy: SharedEntropy) -> usize {
        let balance = w.balance().map_or(0, |a| a.minor);
        self.devices.push(Device {
            entropy,
            wallet: Some(w),
            cust,
            balance,
            held: Vec::new(),
            vouchers: Vec::new(),
            crash_armed: false,
        });
        self.ta_sum += balance;
        self.devices.len() - 1
    }

    /// A device dies (lost, tampered, thrown away): its balance leaves the TAs.
    fn kill(&mut self, dev: usize) -> u64 {
        let bal = self.actual_balance(dev);
        self.settle_balance(dev, 0, "a device's death");
        self.devices[dev].wallet = None;
        self.devices[dev].held.clear();
        self.ta_sum -= bal.min(self.ta_sum);
        self.discarded += bal;
        self.devices[dev].balance = 0;
        bal
    }

    /// A new wallet for `cust`, enrolled with the issuer, as its primary device.
    fn provision(&mut self, cust: usize, now: UnixSeconds) -> Result<usize, SimError> {
        let id = self.customers[cust].id.clone();
        let token = self.faulted(|i| i.create_enrollment_token(&id, now))??;
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
        let e = self.faulted(|i| i.enroll(&token, &csr, now))??;
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
        Ok(dev)
    }

    // ---- online money ------------------------------------------------------------------------

    fn deposit(&mut self, cust: usize, minor: u64, now: UnixSeconds) -> Result<(), SimError> {
        let key = format!("dep-{cust}-{}", self.next_op());
        let id = self.customers[cust].id.clone();
        self.faulted(|i| i.deposit(&id, Amount::new(minor, eur()), &key, now))??;
        self.customers[cust].online_expected += minor as i64;
        self.r.deposited_minor += minor;
        Ok(())
    }

    /// Load `minor` into `dev` (voucher from the issuer, applied by the TA).
    fn load(&mut self, dev: usize, minor: u64, now: UnixSeconds) -> Result<bool, SimError> {
        let cust = self.devices[dev].cust;
        let wid = self.wallet(dev).wallet_id();
        let key = format!("load-{cust}-{}", self.next_op());
        let voucher = match self.faulted(|i| i.load(&wid, Amount::new(minor, eur()), &key, now))? {
            Ok(v) => v,
            Err(e) => {
                self.issuer_refusal("load", &e);
                return Ok(false);
            }
        };
        let seq = Signed::<LoadVoucher>::decode(&voucher)
            .map(|v| v.body().load_seq)
            .map_err(|e| SimError::Wallet(format!("voucher: {e}")))?;
        self.customers[cust].online_expected -= minor as i64;
        self.r.loads += 1;
        self.r.loaded_minor += minor;
        self.devices[dev].vouchers.push((seq, minor));
        let (res, crashed) = self.op(dev, |w| w.apply_voucher(&voucher, now))?;
        match res {
            Ok(_) => {}
            Err(WalletError::VoucherReplayed { .. }) if crashed => {}
            Err(e) => self.refusal(error_name(&e)),
        }
        self.account_vouchers(dev, "a load");
        Ok(true)
    }

    /// Credit the vouchers the TA now holds (by its load seq) and check the balance.
    fn account_vouchers(&mut self, dev: usize, what: &str) {
        let now_seq = self.wallet(dev).status(T0).load_seq;
        let mut expected = 0u64;
        self.devices[dev].vouchers.retain(|(s, a)| {
            if *s <= now_seq {
                expected += a;
                false
            } else {
                true
            }
        });
        self.loads_applied += expected;
        self.settle_balance(dev, expected as i128, what);
    }

    /// Redeem `minor` from `dev` to its customer's online account.
    fn redeem(&mut self, dev: usize, minor: u64, now: UnixSeconds) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        let before = self.actual_balance(dev);
        let amount = Amount::new(minor, eur());
        let bytes = match self.wallet(dev).redeem(amount, now) {
            Ok(b) => Some(b),
            Err(WalletError::Vault(VaultError::Crashed)) => {
                self.recover(dev)?;
                if self.actual_balance(dev) + minor == before {
                    // Committed before the crash: the entry is in the log; submit it.
                    self.wallet(dev)
                        .unsynced_outgoing()
                        .into_iter()
                        .rev()
                        .find(|b| matches!(ChainEntry::decode(b), Ok(ChainEntry::Redeem(_))))
                } else {
                    match self.wallet(dev).redeem(amount, now) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            self.refusal(error_name(&e));
                            None
                        }
                    }
                }
            }
            Err(e) => {
                self.refusal(error_name(&e));
                None
            }
        };
        let Some(bytes) = bytes else {
            self.settle_balance(dev, 0, "a refused redeem");
            return Ok(());
        };
        self.settle_balance(dev, -(minor as i128), "a redeem");
        self.ta_redeemed += minor;
        if let Ok(e) = ChainEntry::decode(&bytes) {
            self.track_own(dev, &e, now);
            if let Some(&t) = self.tracked_by_hash.get(&e.hash()) {
                self.tracked[t].reported.get_or_insert(Self::now_s(now));
            }
        }
        match self.faulted(|i| i.redeem(&bytes, now))? {
            Ok(_) => {
                self.customers[cust].online_expected += minor as i64;
                self.r.redeems += 1;
                self.r.redeemed_minor += minor;
            }
            Err(e) => {
                // Still in the log: settled at the next sync.
                self.issuer_refusal("redeem", &e);
                self.customers[cust].online_expected += minor as i64;
            }
        }
        Ok(())
    }

    // ---- attacker entry tracking ----------------------------------------------------------------

    /// Track an outgoing entry signed by `dev` if its customer is an attacker.
    fn track_own(&mut self, dev: usize, e: &ChainEntry, now: UnixSeconds) {
        let cust = self.devices[dev].cust;
        if self.customers[cust].attacker.is_none() {
            return;
        }
        let h = e.hash();
        if self.tracked_by_hash.contains_key(&h) {
            return;
        }
        let t = self.tracked.len();
        self.tracked.push(Tracked {
            amount: e.amount().minor,
            released: Self::now_s(now),
            reported: None,
        });
        self.tracked_by_hash.insert(h, t);
        self.chains.entry((cust, e.seq())).or_default().push(t);
        self.devices[dev].held.push(t);
    }

    /// `dev` now holds (accepted or kept as evidence) the tracked entry `h`.
    fn hold(&mut self, dev: usize, h: &Hash32) {
        if let Some(&t) = self.tracked_by_hash.get(h) {
            self.devices[dev].held.push(t);
        }
    }

    // ---- payments ------------------------------------------------------------------------------

    fn amount_draw(&mut self) -> u64 {
        let u = self.rng.unit();
        100 + (u * u * 6000.0) as u64
    }

    fn pick(&mut self, from_merchants: bool, not: usize) -> Option<usize> {
        let list = if from_merchants && !self.merchants.is_empty() {
            &self.merchants
        } else {
            &self.consumers
        };
        if list.len() < 2 && list.first() == Some(&not) {
            return None;
        }
        for _ in 0..8 {
            let c = list[self.rng.below(list.len() as u64) as usize];
            if c != not {
                return Some(c);
            }
        }
        None
    }

    /// Request, pay, receive, confirm between two devices, with torn channels
    /// and replays injected at their per-payment rates.
    fn payment(
        &mut self,
        payer_dev: usize,
        payee_dev: usize,
        minor: u64,
        now: UnixSeconds,
        attack: Option<AttackKind>,
    ) -> Result<bool, SimError> {
        if !self.devices[payer_dev].alive() || !self.devices[payee_dev].alive() {
            return Ok(false);
        }
        self.r.payments_attempted += 1;
        let amount = Amount::new(minor, eur());
        let (req, _) = self.op(payee_dev, |w| w.request(amount, REQUEST_SECONDS, now))?;
        self.settle_balance(payee_dev, 0, "a request");
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.refusal(error_name(&e));
                return Ok(false);
            }
        };
        let (paid, _) = self.op(payer_dev, |w| w.pay(&req, now))?;
        let payment = match paid {
            Ok(p) => p,
            Err(e) => {
                if let Some(k) = attack {
                    self.outcome(k, &format!("payer_refused:{}", error_name(&e)));
                }
                self.refusal(error_name(&e));
                self.settle_balance(payer_dev, 0, "a refused payment");
                return Ok(false);
            }
        };
        self.settle_balance(payer_dev, -(minor as i128), "a payment");
        self.in_flight += minor;
        let entry =
            ChainEntry::decode(&payment).map_err(|e| SimError::Wallet(format!("payment: {e}")))?;
        self.track_own(payer_dev, &entry, now);

        let torn_rate = self.cfg.rate(AttackKind::Torn);
        if attack.is_none() && torn_rate > 0.0 && self.arng.chance(torn_rate) {
            self.injected(AttackKind::Torn);
            if self.arng.chance(0.5) {
                // The Payment is lost on the way.
                let u = self.undelivered_add(payee_dev, &entry, minor);
                if self.arng.chance(0.5) {
                    let later = Self::now_s(now) + self.arng.range(10, 600);
                    let id = self.msg(Msg {
                        kind: MsgKind::LatePayment,
                        payer_dev,
                        payee_dev,
                        amount: minor,
                        request: req,
                        payment,
                        undelivered: Some(u),
                    });
                    self.push(later, Ev::Msg { id });
                    self.outcome(AttackKind::Torn, "payment_lost_delivered_later");
                } else {
                    self.outcome(AttackKind::Torn, "payment_lost_for_good");
                }
                return Ok(false);
            }
            // The Receipt is lost: the payee has the money, the payer no receipt.
            return match self.deliver(payer_dev, payee_dev, &payment, minor, now, None)? {
                Some(_) => {
                    if self.arng.chance(0.5) {
                        let later = Self::now_s(now) + self.arng.range(5, 250);
                        let id = self.msg(Msg {
                            kind: MsgKind::ReceiptRetry,
                            payer_dev,
                            payee_dev,
                            amount: minor,
                            request: req,
                            payment,
                            undelivered: None,
                        });
                        self.push(later, Ev::Msg { id });
                        self.outcome(AttackKind::Torn, "receipt_lost_retried_later");
                    } else {
                        self.outcome(AttackKind::Torn, "receipt_lost_for_good");
                    }
                    Ok(true)
                }
                None => Ok(false),
            };
        }
        let accepted = self.deliver(payer_dev, payee_dev, &payment, minor, now, attack)?;
        let Some(receipt) = accepted else {
            return Ok(false);
        };
        let (c, _) = self.op(payer_dev, |w| w.confirm(&receipt))?;
        if let Err(e) = c {
            self.violation(format!(
                "confirm: a genuine receipt was refused ({})",
                error_name(&e)
            ));
        }
        let replay_rate = self.cfg.rate(AttackKind::Replay);
        if attack.is_none() && replay_rate > 0.0 && self.arng.chance(replay_rate) {
            self.injected(AttackKind::Replay);
            let later = Self::now_s(now) + self.arng.range(30, 2 * DAY);
            let id = self.msg(Msg {
                kind: MsgKind::Replay,
                payer_dev,
                payee_dev,
                amount: minor,
                request: req,
                payment,
                undelivered: None,
            });
            self.push(later, Ev::Msg { id });
        }
        Ok(true)
    }

    fn msg(&mut self, m: Msg) -> usize {
        self.msgs.push(Some(m));
        self.msgs.len() - 1
    }

    fn undelivered_add(&mut self, payee_dev: usize, e: &ChainEntry, amount: u64) -> usize {
        self.undelivered.push(Undelivered {
            payee_dev,
            payer: e.payer(),
            hash: e.hash(),
            amount,
            accepted: false,
        });
        self.undelivered.len() - 1
    }

    /// Hand a Payment to its payee. Returns the receipt if accepted.
    fn deliver(
        &mut self,
        _payer_dev: usize,
        payee_dev: usize,
        payment: &[u8],
        minor: u64,
        now: UnixSeconds,
        attack: Option<AttackKind>,
    ) -> Result<Option<Vec<u8>>, SimError> {
        let entry =
            ChainEntry::decode(payment).map_err(|e| SimError::Wallet(format!("payment: {e}")))?;
        if !self.devices[payee_dev].alive() {
            self.undelivered_add(payee_dev, &entry, minor);
            return Ok(None);
        }
        let evidence_before = self.wallet(payee_dev).evidence().len();
        let (res, _) = self.op(payee_dev, |w| w.receive(payment, now))?;
        match res {
            Ok(receipt) => {
                self.settle_balance(payee_dev, minor as i128, "a received payment");
                self.in_flight -= minor.min(self.in_flight);
                self.r.payments += 1;
                self.r.value_moved_minor += minor;
                self.day.payments += 1;
                self.day.value_moved_minor += minor;
                self.hold(payee_dev, &entry.hash());
                if let Some(k) = attack {
                    self.outcome(k, "payment_accepted");
                }
                Ok(Some(receipt))
            }
            Err(e) => {
                let name = error_name(&e);
                if let Some(k) = attack {
                    self.outcome(k, &format!("payee_refused:{name}"));
                }
                self.refusal(name);
                self.settle_balance(payee_dev, 0, "a refused payment");
                if self.wallet(payee_dev).evidence().len() > evidence_before {
                    self.hold(payee_dev, &entry.hash());
                }
                self.undelivered_add(payee_dev, &entry, minor);
                Ok(None)
            }
        }
    }

    fn on_msg(&mut self, id: usize, now: UnixSeconds) -> Result<(), SimError> {
        let Some(m) = self.msgs[id].take() else {
            return Ok(());
        };
        match m.kind {
            MsgKind::LatePayment => {
                if !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Torn, "late_payment_payee_gone");
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&m.payment, now))?;
                match res {
                    Ok(receipt) => {
                        self.settle_balance(m.payee_dev, m.amount as i128, "a late payment");
                        self.in_flight -= m.amount.min(self.in_flight);
                        self.r.payments += 1;
                        self.r.value_moved_minor += m.amount;
                        self.day.payments += 1;
                        self.day.value_moved_minor += m.amount;
                        if let Some(u) = m.undelivered {
                            self.undelivered[u].accepted = true;
                        }
                        if let Ok(e) = ChainEntry::decode(&m.payment) {
                            self.hold(m.payee_dev, &e.hash());
                        }
                        self.outcome(AttackKind::Torn, "late_payment_accepted");
                        if self.devices[m.payer_dev].alive() {
                            let (c, _) = self.op(m.payer_dev, |w| w.confirm(&receipt))?;
                            match c {
                                Ok(()) => {}
                                // The payer synced meanwhile: the entry left its log,
                                // settled; the receipt has nothing left to confirm.
                                Err(WalletError::ReceiptUnknownPayment) => self.outcome(
                                    AttackKind::Torn,
                                    "late_receipt_after_the_payer_synced",
                                ),
                                Err(e) => self.violation(format!(
                                    "confirm: a late genuine receipt was refused ({})",
                                    error_name(&e)
                                )),
                            }
                        }
                    }
                    Err(e) => {
                        let name = error_name(&e);
                        self.outcome(AttackKind::Torn, &format!("late_payment_refused:{name}"));
                        self.refusal(name);
                        self.settle_balance(m.payee_dev, 0, "a refused late payment");
                    }
                }
            }
            MsgKind::ReceiptRetry => {
                if !self.devices[m.payer_dev].alive() || !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Torn, "receipt_retry_device_gone");
                    return Ok(());
                }
                // The payer presents the same request again: the same Payment
                // comes back (idempotent) and the payee answers with the same Receipt.
                let (again, _) = self.op(m.payer_dev, |w| w.pay(&m.request, now))?;
                self.settle_balance(m.payer_dev, 0, "a repeated payment");
                let again = match again {
                    Ok(p) => p,
                    Err(e) => {
                        self.outcome(
                            AttackKind::Torn,
                            &format!("receipt_retry_payer:{}", error_name(&e)),
                        );
                        return Ok(());
                    }
                };
                if again != m.payment {
                    self.violation(
                        "torn: paying the same request again gave another payment".into(),
                    );
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&again, now))?;
                self.settle_balance(m.payee_dev, 0, "a repeated payment");
                match res {
                    Ok(receipt) => {
                        let (c, _) = self.op(m.payer_dev, |w| w.confirm(&receipt))?;
                        match c {
                            Ok(()) => self.outcome(AttackKind::Torn, "receipt_retry_confirmed"),
                            Err(WalletError::ReceiptUnknownPayment) => self
                                .outcome(AttackKind::Torn, "receipt_retry_after_the_payer_synced"),
                            Err(e) => self.violation(format!(
                                "torn: the retried receipt was refused ({})",
                                error_name(&e)
                            )),
                        }
                    }
                    Err(e) => self.outcome(
                        AttackKind::Torn,
                        &format!("receipt_retry_payee:{}", error_name(&e)),
                    ),
                }
            }
            MsgKind::Replay => {
                if !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Replay, "payee_gone");
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&m.payment, now))?;
                self.settle_balance(m.payee_dev, 0, "a replayed payment");
                match res {
                    Ok(_) => self.outcome(AttackKind::Replay, "same_receipt_no_money"),
                    Err(e) => {
                        let name = error_name(&e);
                        self.outcome(AttackKind::Replay, &format!("refused:{name}"));
                        self.refusal(name);
                    }
                }
            }
        }
        Ok(())
    }

    // ---- habits ----------------------------------------------------------------------------------

    fn on_pay(&mut self, cust: usize, now: UnixSeconds) -> Result<(), SimError> {
        let merchant = self.customers[cust].merchant;
        let per_day = if merchant {
            0.1
        } else {
            self.cfg.payments_per_day
        };
        if per_day > 0.0 {
            let mean = (DAY as f64 / per_day) as u64;
            let next = Self::now_s(now) + 1 + self.rng.wait(mean);
            self.push(next, Ev::Pay { cust });
        }
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        // Consumers shop mostly at their regular merchants and pay friends now
        // and then (which also keeps the TAs' peer-certificate caches warm, as
        // in life); merchants pay other merchants (suppliers).
        let payee = if merchant {
            self.pick(true, cust)
        } else if self.rng.chance(0.8) {
            let fav = &self.customers[cust].favorites;
            if !fav.is_empty() && self.rng.chance(0.9) {
                Some(fav[self.rng.below(fav.len() as u64) as usize])
            } else {
                self.pick(true, cust)
            }
        } else {
            let fr = &self.customers[cust].friends;
            if fr.is_empty() {
                self.pick(false, cust)
            } else {
                Some(fr[self.rng.below(fr.len() as u64) as usize])
            }
        };
        let Some(payee) = payee else {
            return Ok(());
        };
        let balance = self.devices[dev].balance;
        let minor = self.amount_draw().min(balance).min(self.policy_max_payment);
        if minor < 100 {
            return Ok(());
        }
        let payee_dev = self.customers[payee].device;
        self.payment(dev, payee_dev, minor, now, None)?;
        Ok(())
    }

    fn on_sync(&mut self, cust: usize, now: UnixSeconds) -> Result<(), SimError> {
        let mean_h = if self.customers[cust].merchant {
            self.cfg.merchant_offline_hours
        } else {
            self.cfg.consumer_offline_hours
        };
        // Stay well inside the time-offline limit: honest wallets never hit it.
        let cap = self
            .limits
            .max_offline_seconds
            .saturating_sub(6 * HOUR)
            .max(HOUR);
        let wait = (60 + self.rng.wait(mean_h * HOUR)).min(cap);
        self.push(Self::now_s(now) + wait, Ev::Sync { cust });
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        self.sync_device(dev, now)?;
        if !self.honest(cust) || self.wallet(dev).lock().is_some() {
            return Ok(());
        }
        let balance = self.devices[dev].balance;
        if self.customers[cust].merchant {
            if balance > self.holding * 4 / 10 {
                self.redeem(dev, balance - self.holding / 20, now)?;
            }
        } else if balance < self.holding * 15 / 100 {
            let target = self.holding / 2;
            let wid = self.wallet(dev).wallet_id();
            let sub = self.issuer.wallet_balance(&wid)?.max(0) as u64;
            let room = self.holding.saturating_sub(balance.max(sub));
            let mut want = (target - balance).min(room);
            let id = self.customers[cust].id.clone();
            let mut online = self.issuer.customer_balance(&id)?.max(0) as u64;
            if online < 20_000 {
                self.deposit(cust, 200_000, now)?;
                online += 200_000;
            }
            want = want.min(online);
            if want >= 100 {
                self.load(dev, want, now)?;
            }
        }
        Ok(())
    }

    /// Report, reconcile, apply. Marks what the device held as reported.
    fn sync_device(&mut self, dev: usize, now: UnixSeconds) -> Result<bool, SimError> {
        let Some(report) = self.sync_report(dev, now)? else {
            return Ok(false);
        };
        let out = match self.faulted(|i| i.sync(&report, now))? {
            Ok(o) => o,
            Err(e) => {
                self.issuer_refusal("sync", &e);
                return Ok(false);
            }
        };
        self.maybe_lose_response(&report, &out, now)?;
        self.apply_sync(dev, out, now)?;
        Ok(true)
    }

    /// The device's SyncReport, or `None` if its TA refuses to make one.
    fn sync_report(&mut self, dev: usize, now: UnixSeconds) -> Result<Option<Vec<u8>>, SimError> {
        let (report, _) = self.op(dev, |w| w.sync_report(now))?;
        self.settle_balance(dev, 0, "a sync report");
        match report {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                self.refusal(error_name(&e));
                Ok(None)
            }
        }
    }

    /// With faults on: now and then the issuer restarts after committing a
    /// sync and before its response reaches the device, which sends the same
    /// report again and must get the same response.
    fn maybe_lose_response(
        &mut self,
        report: &[u8],
        out: &SyncOutcome,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        if !lock(&self.plan).chance(RESTART_MID_SYNC) {
            return Ok(());
        }
        self.restart_issuer()?;
        lock(&self.plan).stats.restarts_mid_sync += 1;
        match self.faulted(|i| i.sync(report, now))? {
            Ok(again) if again.response == out.response && (again.replayed || out.replayed) => {}
            Ok(_) => self.violation(
                "a report sent again after an issuer restart got a different response".into(),
            ),
            Err(e) => self.violation(format!(
                "a report sent again after an issuer restart was refused: {}",
                e.code()
            )),
        }
        Ok(())
    }

    /// The final syncs in group commits of up to `GROUP_MAX` reports
    /// (`Issuer::sync_group`: one transaction, one savepoint per report, and
    /// the fallback to one transaction each when the group fails).
    fn sync_grouped(&mut self, devs: &[usize], now: UnixSeconds) -> Result<(), SimError> {
        for chunk in devs.chunks(GROUP_MAX) {
            let mut reports = Vec::with_capacity(chunk.len());
            for &dev in chunk {
                if let Some(r) = self.sync_report(dev, now)? {
                    reports.push((dev, r));
                }
            }
            let batch: Vec<(&[u8], UnixSeconds)> =
                reports.iter().map(|(_, r)| (r.as_slice(), now)).collect();
            lock(&self.plan).arm();
            let results = self.issuer.sync_group(&batch);
            let (injected, crashed) = {
                let mut p = lock(&self.plan);
                p.disarm();
                p.stats.group_commits += 1;
                if p.injected_since_arm > 0 {
                    p.stats.group_commits_faulted += 1;
                }
                (p.injected_since_arm, p.crashed)
            };
            if crashed {
                self.restart_issuer()?;
            }
            for ((dev, report), r) in reports.into_iter().zip(results) {
                let r = match r {
                    Err(IssuerError::Store(_)) if injected > 0 => {
                        lock(&self.plan).stats.retries += 1;
                        self.faulted(|i| i.sync(&report, now))?
                    }
                    r => r,
                };
                match r {
                    Ok(out) => self.apply_sync(dev, out, now)?,
                    Err(e) => self.issuer_refusal("sync", &e),
                }
            }
        }
        Ok(())
    }

    /// Run an issuer operation with the fault plan armed. An operation that
    /// failed on an injected fault is sent again (what a client does after a
    /// failed request); after a "crash" the issuer restarts on the same store
    /// first. Without faults this is just `f(&issuer)`.
    fn faulted<T>(
        &mut self,
        f: impl Fn(&Issuer<FaultStore>) -> Result<T, IssuerError>,
    ) -> Result<Result<T, IssuerError>, SimError> {
        let mut attempt = 0;
        loop {
            lock(&self.plan).arm();
            let r = f(&self.issuer);
            let (injected, crashed) = {
                let mut p = lock(&self.plan);
                p.disarm();
                (p.injected_since_arm, p.crashed)
            };
            if crashed {
                self.restart_issuer()?;
            }
            match r {
                Err(IssuerError::Store(_)) if injected > 0 && attempt < FAULT_RETRIES_MAX => {
                    attempt += 1;
                    lock(&self.plan).stats.retries += 1;
                }
                Ok(v) => {
                    if injected > 0 {
                        lock(&self.plan).stats.absorbed += 1;
                    }
                    return Ok(Ok(v));
                }
                r => return Ok(r),
            }
        }
    }

    /// Drop the issuer and open it again on the same store (a server restart).
    fn restart_issuer(&mut self) -> Result<(), SimError> {
        let store = FaultStore::new(self.base.clone(), self.plan.clone());
        self.issuer = Issuer::open_with_entropy(store, &MASTER, self.issuer_entropy.clone())?;
        lock(&self.plan).stats.issuer_restarts += 1;
        Ok(())
    }

    /// Apply a sync's outcome on the device. Marks what it held as reported.
    fn apply_sync(
        &mut self,
        dev: usize,
        out: SyncOutcome,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        self.r.syncs += 1;
        self.day.syncs += 1;
        self.ds_seen_in_syncs += out.double_spends.len() as u64;
        let t = Self::now_s(now);
        for h in std::mem::take(&mut self.devices[dev].held) {
            self.tracked[h].reported.get_or_insert(t);
        }
        let honest = self.honest(cust);
        if honest && out.locked.is_some() {
            self.violation(format!(
                "honest customer {cust}'s wallet was locked at sync: {}",
                out.locked.clone().unwrap_or_default()
            ));
        }
        let (applied, crashed) = self.op(dev, |w| w.apply_sync_response(&out.response, now))?;
        match applied {
            Ok(a) => {
                if honest && a.locked {
                    let why = Signed::<SyncResponse>::decode(&out.response)
                        .ok()
                        .and_then(|r| match &r.body().command {
                            WalletCommand::Lock { reason } => Some(reason.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    self.violation(format!(
                        "honest customer {cust}'s wallet was told to lock: {why}"
                    ));
                }
            }
            Err(WalletError::StaleSyncResponse) if crashed => {}
            Err(e) => {
                let name = error_name(&e);
                if honest {
                    self.violation(format!(
                        "honest customer {cust}'s wallet refused its sync response: {name}"
                    ));
                }
                self.refusal(name);
            }
        }
        self.account_vouchers(dev, "a sync");
        Ok(())
    }

    // ---- attacks -----------------------------------------------------------------------------------

    fn schedule_attacks(&mut self, day: u64) {
        for kind in AttackKind::ALL {
            if kind.rate_unit() != "wallet-day" {
                continue;
            }
            let rate = self.cfg.rate(kind);
            if rate <= 0.0 {
                continue;
            }
            for cust in 0..self.customers.len() {
                if self.arng.chance(rate) {
                    let t = day * DAY + self.arng.below(DAY);
                    self.push(t, Ev::Attack { kind, cust });
                }
            }
        }
    }

    fn mark_attacker(&mut self, cust: usize, kind: AttackKind, now: UnixSeconds, balance: u64) {
        self.customers[cust].attacker = Some(kind);
        self.customers[cust].attacker_rec = Some(self.r.attackers.len());
        self.r.attackers.push(AttackerRecord {
            customer: cust as u64,
            kind: kind.name().into(),
            time_s: Self::now_s(now),
            balance_at_attack_minor: balance,
            double_spends_injected: 0,
            double_spends_detected: 0,
            first_detection_delay_s: None,
            issuer_state: String::new(),
            clawed_back_minor: 0,
            guaranteed_minor: 0,
            loss_minor: 0,
        });
    }

    /// The attacker fills its wallet to the holding limit (with its own money),
    /// then empties its online account so that nothing can be clawed back.
    fn max_out(&mut self, dev: usize, now: UnixSeconds) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        let wid = self.wallet(dev).wallet_id();
        let balance = self.devices[dev].balance;
        let sub = self.issuer.wallet_balance(&wid)?.max(0) as u64;
        let want = self.holding.saturating_sub(balance.max(sub));
        let id = self.customers[cust].id.clone();
        if want >= 100 {
            let online = self.issuer.customer_balance(&id)?.max(0) as u64;
            if online < want {
                self.deposit(cust, want - online, now)?;
            }
            self.load(dev, want, now)?;
        }
        let online = self.issuer.customer_balance(&id)?.max(0) as u64;
        if online > 0 {
            let key = format!("wd-{cust}-{}", self.next_op());
            match self
                .issuer
                .withdraw(&id, Amount::new(online, eur()), &key, now)
            {
                Ok(_) => {
                    self.customers[cust].online_expected -= online as i64;
                    self.r.withdrawn_minor += online;
                }
                Err(e) => self.issuer_refusal("withdraw", &e),
            }
        }
        Ok(())
    }

    fn on_attack(
        &mut self,
        kind: AttackKind,
        cust: usize,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        // One identity-changing attack per customer; an attacker's wallet is not
        // also lost or crashed (its accounting is the attacker's). A foreign
        // payer is no customer: `cust` only spreads those attacks over time.
        if kind != AttackKind::UnknownCa && self.customers[cust].attacker.is_some() {
            return Ok(());
        }
        let t = Self::now_s(now);
        match kind {
            AttackKind::Clone => {
                self.injected(kind);
                self.mark_attacker(cust, kind, now, 0);
                self.max_out(dev, now)?;
                let b = self.devices[dev].balance;
                self.set_attack_balance(cust, b);
                let copy = self.wallet(dev).vault().clone();
                let entropy = self.next_device_entropy();
                let w = Wallet::open_with_entropy(copy, entropy.clone())
                    .map_err(|e| SimError::Wallet(format!("clone: {}", error_name(&e))))?;
                if w.lock().is_some() {
                    self.violation(format!("clone: customer {cust}'s copy opened locked"));
                }
                self.copied += w.balance().map_or(0, |a| a.minor);
                let clone_dev = self.new_device(w, cust, entropy);
                // The copy's log holds what the original's held.
                self.devices[clone_dev].held = self.devices[dev].held.clone();
                self.outcome(kind, "device_cloned");
                let (k1, k2) = (self.arng.range(1, 4) as u32, self.arng.range(1, 4) as u32);
                let (d1, d2) = (self.arng.range(60, 1800), self.arng.range(60, 1800));
                self.push(
                    t + d1,
                    Ev::Spree {
                        dev,
                        left: k1,
                        gap: HOUR,
                        kind,
                    },
                );
                self.push(
                    t + d2,
                    Ev::Spree {
                        dev: clone_dev,
                        left: k2,
                        gap: HOUR,
                        kind,
                    },
                );
            }
            AttackKind::Rollback => {
                self.injected(kind);
                self.mark_attacker(cust, kind, now, 0);
                self.max_out(dev, now)?;
                let b = self.devices[dev].balance;
                self.set_attack_balance(cust, b);
                // A copy of the whole vault: state *and* counter, as an attacker
                // who restores both files of a software vault.
                let copy = self.wallet(dev).vault().clone();
                let held = self.devices[dev].held.clone();
                self.saved.push(Some((copy, held)));
                let saved = self.saved.len() - 1;
                let k = self.arng.range(1, 4) as u32;
                let (d1, d2) = (
                    self.arng.range(60, 600),
                    self.arng.range(3 * HOUR, 8 * HOUR),
                );
                self.push(
                    t + d1,
                    Ev::Spree {
                        dev,
                        left: k,
                        gap: 1800,
                        kind,
                    },
                );
                self.push(t + d2, Ev::Restore { cust, saved });
            }
            AttackKind::RevokedPay => {
                let wid = self.wallet(dev).wallet_id();
                self.injected(kind);
                let b = self.devices[dev].balance;
                self.mark_attacker(cust, kind, now, b);
                match self.issuer.revoke(
                    &wid,
                    RevocationReason::PrivilegeWithdrawn,
                    "operator: revoked (simulation)",
                    now,
                ) {
                    Ok(()) => self.outcome(kind, "revoked_by_operator"),
                    Err(e) => self.issuer_refusal("revoke", &e),
                }
                let k = self.arng.range(2, 5) as u32;
                let d = self.arng.range(600, 3 * HOUR);
                self.push(
                    t + d,
                    Ev::Spree {
                        dev,
                        left: k,
                        gap: 4 * HOUR,
                        kind,
                    },
                );
            }
            AttackKind::Tamper => {
                self.injected(kind);
                let b = self.devices[dev].balance;
                self.mark_attacker(cust, kind, now, b);
                self.tamper(dev, now)?;
            }
            AttackKind::UnknownCa => {
                self.injected(kind);
                self.unknown_ca(cust, now)?;
            }
            AttackKind::LostDevice => {
                self.injected(kind);
                let b = self.kill(dev);
                self.r.lost_device_minor += b;
                self.outcome(kind, "device_lost");
                self.customers[cust].reprovisioned += 1;
                self.provision(cust, now)?;
                self.outcome(kind, "customer_reprovisioned");
            }
            AttackKind::Crash => {
                if self.devices[dev].crash_armed {
                    return Ok(());
                }
                self.injected(kind);
                let n = self.arng.below(4);
                let point = match self.arng.below(3) {
                    0 => CrashPoint::BeforeWrite,
                    1 => CrashPoint::AfterStateWrite,
                    _ => CrashPoint::AfterCounter,
                };
                let Some(w) = self.devices[dev].wallet.take() else {
                    return Ok(());
                };
                let mut vault = w.into_vault();
                vault.fail_commit_at_with(n, point);
                let w = Wallet::open_with_entropy(vault, self.devices[dev].entropy.clone())
                    .map_err(|e| SimError::Wallet(format!("crash arm: {}", error_name(&e))))?;
                self.devices[dev].wallet = Some(w);
                self.devices[dev].crash_armed = true;
                self.outcome(kind, "armed");
            }
            AttackKind::Replay | AttackKind::Torn => {}
        }
        Ok(())
    }

    fn set_attack_balance(&mut self, cust: usize, b: u64) {
        if let Some(a) = self.customers[cust].attacker_rec {
            self.r.attackers[a].balance_at_attack_minor = b;
        }
    }

    fn on_spree(
        &mut self,
        dev: usize,
        left: u32,
        gap: u64,
        kind: AttackKind,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        if !self.devices[dev].alive() || left == 0 {
            return Ok(());
        }
        let cust = self.devices[dev].cust;
        let balance = self.devices[dev].balance;
        if balance >= 100 {
            let share = 0.3 + 0.7 * self.arng.unit();
            let minor = ((balance as f64 * share) as u64)
                .max(100)
                .min(balance)
                .min(self.policy_max_payment);
            if let Some(payee) = self.pick(true, cust) {
                let payee_dev = self.customers[payee].device;
                self.outcome(kind, "spree_payment");
                self.payment(dev, payee_dev, minor, now, Some(kind))?;
            }
        }
        if left > 1 {
            let next = Self::now_s(now) + self.arng.range(60, gap.max(61));
            self.push(
                next,
                Ev::Spree {
                    dev,
                    left: left - 1,
                    gap,
                    kind,
                },
            );
        }
        Ok(())
    }

    fn on_restore(&mut self, cust: usize, saved: usize, now: UnixSeconds) -> Result<(), SimError> {
        let Some((vault, held)) = self.saved[saved].take() else {
            return Ok(());
        };
        let old = self.customers[cust].device;
        if !self.devices[old].alive() {
            return Ok(());
        }
        // Three times in ten the attacker restores the old state file only
        // (`MemoryVault::restore`), not the monotonic counter: the vault sees the
        // rollback and the TA opens locked. Otherwise it continues from the full
        // copy (state and counter), which no vault can see.
        let state_only = self.arng.chance(0.3);
        let mut older = true;
        let vault = if state_only {
            let mut current = self.wallet(old).vault().clone();
            let snap = vault.snapshot();
            // Nothing was committed since the copy: restoring it changes nothing.
            older = snap.version() < current.counter();
            current.restore(&snap);
            current
        } else {
            vault
        };
        // The attacker throws the current state away and continues from the copy.
        self.kill(old);
        let entropy = self.next_device_entropy();
        let w = Wallet::open_with_entropy(vault, entropy.clone())
            .map_err(|e| SimError::Wallet(format!("restore: {}", error_name(&e))))?;
        match (state_only, w.lock()) {
            (true, Some(LockReason::RolledBack)) => {
                self.outcome(AttackKind::Rollback, "state_only_restore_opened_locked")
            }
            (true, None) if !older => self.outcome(
                AttackKind::Rollback,
                "state_only_restore_of_the_current_state",
            ),
            (true, _) => self.violation(format!(
                "rollback: customer {cust}'s restored old state file opened unlocked"
            )),
            (false, None) => self.outcome(AttackKind::Rollback, "restored_and_respending"),
            (false, Some(_)) => self.outcome(AttackKind::Rollback, "full_copy_opened_locked"),
        }
        self.copied += w.balance().map_or(0, |a| a.minor);
        let dev = self.new_device(w, cust, entropy);
        self.customers[cust].device = dev;
        // The restored log holds again what it held when it was copied (those
        // entries reported since are marked already; marking again is harmless).
        self.devices[dev].held = held;
        let k = self.arng.range(1, 4) as u32;
        let t = Self::now_s(now) + self.arng.range(60, 600);
        self.push(
            t,
            Ev::Spree {
                dev,
                left: k,
                gap: 1800,
                kind: AttackKind::Rollback,
            },
        );
        Ok(())
    }

    /// Move the wallet's state into a real sealed file vault, flip one byte of
    /// the sealed file, and open it again: the AEAD must refuse it.
    fn tamper(&mut self, dev: usize, now: UnixSeconds) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        if self.tmp.is_none() {
            self.tmp = Some(tempfile::tempdir().map_err(|e| SimError::Io(e.to_string()))?);
        }
        let dir = self
            .tmp
            .as_ref()
            .map(|t| t.path().join(format!("vault-{cust}-{}", self.op)))
            .unwrap_or_default();
        self.op += 1;
        std::fs::create_dir_all(&dir).map_err(|e| SimError::Io(e.to_string()))?;
        let secret: [u8; 32] = self.arng.bytes();
        let mut copy = self.wallet(dev).vault().clone();
        let state = copy
            .load()
            .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?
            .state
            .unwrap_or_default();
        let mut sealed = SealedFileVault::create_with_entropy(
            &dir,
            PIN,
            &secret,
            KdfParams::TEST,
            Box::new(RealFs),
            self.device_entropy(dev),
        )
        .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?;
        sealed
            .commit(&state)
            .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?;
        // The sealed copy opens as the same wallet before it is touched.
        let id_before = self.wallet(dev).wallet_id();
        match Wallet::open(sealed) {
            Ok(w) if w.wallet_id() == id_before => {}
            _ => self.violation(format!(
                "tamper: customer {cust}'s intact sealed state does not open"
            )),
        }
        let file = dir.join("state.sealed");
        let mut bytes = std::fs::read(&file).map_err(|e| SimError::Io(e.to_string()))?;
        let at = 81
            + self
                .arng
                .below((bytes.len() as u64).saturating_sub(81).max(1)) as usize;
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 1 << self.arng.below(8);
        std::fs::write(&file, &bytes).map_err(|e| SimError::Io(e.to_string()))?;
        let reopened = SealedFileVault::open(&dir, PIN, &secret)
            .map_err(WalletError::Vault)
            .and_then(Wallet::open);
        match reopened {
            Err(WalletError::Vault(VaultError::Tampered)) => {
                self.outcome(AttackKind::Tamper, "refused:Tampered")
            }
            Err(e) => self.outcome(AttackKind::Tamper, &format!("refused:{}", error_name(&e))),
            Ok(_) => self.violation(format!(
                "tamper: customer {cust}'s tampered state file was accepted"
            )),
        }
        let _ = std::fs::remove_dir_all(&dir);
        // The wallet is dead: its holder forfeits the offline balance (until an
        // operator pays out the sub-account: see the known gaps).
        let b = self.kill(dev);
        self.r.forfeited_minor += b;
        self.customers[cust].reprovisioned += 1;
        self.provision(cust, now)?;
        self.outcome(AttackKind::Tamper, "customer_reprovisioned");
        Ok(())
    }

    /// A payer from a foreign scheme (own root, own issuer CA) pays an honest merchant.
    fn unknown_ca(&mut self, _cust: usize, now: UnixSeconds) -> Result<(), SimError> {
        if self.foreign.is_none() {
            let rk = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
                .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
            let ik = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
                .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
            // Same names as the real scheme: only the keys tell them apart.
            let root = pki::issue_root(&rk, "offpay scheme root", 1, T0, T0.plus(3650 * DAY))
                .map_err(|e| SimError::Wallet(format!("foreign root: {e:?}")))?;
            let issuer = pki::issue_issuer_ca(
                &rk,
                &root,
                &ik.public_key(),
                "offpay issuer",
                2,
                T0,
                T0.plus(1825 * DAY),
            )
            .map_err(|e| SimError::Wallet(format!("foreign issuer: {e:?}")))?;
            self.foreign = Some(Foreign {
                issuer_key: ik,
                issuer,
                serial: 1u64 << 62,
            });
        }
        let Some(payee) = self.pick(true, usize::MAX) else {
            self.outcome(AttackKind::UnknownCa, "no_payee");
            return Ok(());
        };
        let payee_dev = self.customers[payee].device;
        if !self.devices[payee_dev].alive() {
            self.outcome(AttackKind::UnknownCa, "no_payee");
            return Ok(());
        }
        // Half the time the forger claims an existing wallet's id.
        let victim = self.arng.below(self.customers.len() as u64) as usize;
        let wid = if self.arng.chance(0.5) {
            let d = self.customers[victim].device;
            match &self.devices[d].wallet {
                Some(w) => w.wallet_id(),
                None => WalletId(self.arng.bytes()),
            }
        } else {
            WalletId(self.arng.bytes())
        };
        let wk = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
            .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
        let f = self.foreign.as_mut().unwrap_or_else(|| unreachable!());
        f.serial += 1;
        let cert = pki::issue_wallet(
            &f.issuer_key,
            &f.issuer,
            &wk.public_key(),
            wid,
            PolicyRef { id: 1, epoch: 1 },
            f.serial,
            now,
            now.plus(30 * DAY),
        )
        .map_err(|e| SimError::Wallet(format!("foreign wallet: {e:?}")))?;
        let minor = self.amount_draw();
        let (req, _) = self.op(payee_dev, |w| {
            w.request(Amount::new(minor, eur()), REQUEST_SECONDS, now)
        })?;
        let Ok(req) = req else {
            // The merchant cannot ask for a payment now (e.g. it is locked).
            self.outcome(AttackKind::UnknownCa, "no_request");
            return Ok(());
        };
        let r = Signed::<PaymentRequest>::decode(&req)
            .map_err(|e| SimError::Wallet(format!("request: {e}")))?;
        let payment = Signed::sign(
            Payment {
                payer: wid,
                seq: 1,
                prev: Hash32::ZERO,
                payee: r.body().payee,
                amount: r.body().amount,
                nonce: r.body().nonce,
                time: now,
                payer_cert: CertField::Inline(cert.der().to_vec()),
            },
            &wk,
        )
        .into_bytes();
        let (res, _) = self.op(payee_dev, |w| w.receive(&payment, now))?;
        self.settle_balance(payee_dev, 0, "a payment from a foreign CA");
        match res {
            Ok(_) => self.violation(format!(
                "unknown-ca: customer {payee} accepted a payment certified by a foreign CA"
            )),
            Err(e) => {
                let name = error_name(&e);
                self.outcome(AttackKind::UnknownCa, &format!("refused:{name}"));
                self.refusal(name);
            }
        }
        Ok(())
    }

    // ---- checks -----------------------------------------------------------------------------------

    fn cheap_check(&mut self, hour: u64) {
        self.r.invariant_checks += 1;
        let lhs = self.ta_sum as i128
            + self.in_flight as i128
            + self.discarded as i128
            + self.ta_redeemed as i128;
        let rhs = self.loads_applied as i128 + self.copied as i128;
        if lhs != rhs {
            self.violation(format!(
                "conservation at hour {hour}: offline balances {} + in flight {} + discarded {} + redeemed {} != loads applied {} + copied {}",
                self.ta_sum, self.in_flight, self.discarded, self.ta_redeemed, self.loads_applied, self.copied
            ));
        }
    }

    fn full_check(&mut self, hour: u64) -> Result<(), SimError> {
        self.r.invariant_checks += 1;
        let inv = self.issuer.invariants()?;
        if !inv.ok {
            self.violation(format!(
                "issuer invariants at hour {hour}: {}",
                inv.violations.join("; ")
            ));
        }
        let supply = self.r.deposited_minor as i128 - self.r.withdrawn_minor as i128;
        if inv.supply != supply {
            self.violation(format!(
                "supply at hour {hour}: issuer {} != deposits - withdrawals {supply}",
                inv.supply
            ));
        }
        let sum: u64 = (0..self.devices.len())
            .map(|d| self.actual_balance(d))
            .sum();
        if sum != self.ta_sum {
            self.violation(format!(
                "conservation at hour {hour}: live devices hold {sum}, the simulator counted {}",
                self.ta_sum
            ));
        }
        Ok(())
    }

    fn refresh_detected(
        &mut self,
    ) -> Result<Vec<offpay_issuer::store::DoubleSpendRecord>, SimError> {
        let recs = self.issuer.double_spends(None, u32::MAX)?;
        for rec in &recs {
            if let Some(&cust) = self.owner.get(&rec.payer) {
                let t = Self::now_s(rec.detected);
                let e = self.detected.entry((cust, rec.seq)).or_insert(t);
                *e = (*e).min(t);
            }
        }
        Ok(recs)
    }

    /// (released double spends, exposure): (payer, seq) with at least two
    /// released entries, and the value of all but the first of those not detected.
    fn exposure(&self) -> (u64, u64) {
        let mut released = 0;
        let mut exposure = 0;
        for (key, ts) in &self.chains {
            if ts.len() < 2 {
                continue;
            }
            released += 1;
            if self.detected.contains_key(key) {
                continue;
            }
            let mut v: Vec<&Tracked> = ts.iter().map(|&t| &self.tracked[t]).collect();
            v.sort_by_key(|t| t.released);
            exposure += v[1..].iter().map(|t| t.amount).sum::<u64>();
        }
        (released, exposure)
    }

    fn end_of_day(&mut self, day: u32) -> Result<(), SimError> {
        self.refresh_detected()?;
        let inv = self.issuer.invariants()?;
        let (released, exposure) = self.exposure();
        let mut rec = std::mem::take(&mut self.day);
        rec.day = day;
        rec.offline_balance_minor = self.ta_sum;
        rec.in_flight_minor = self.in_flight;
        rec.exposure_minor = exposure;
        rec.guarantee_loss_minor = (-inv.totals.guarantee).max(0) as u64;
        rec.double_spends_released = released;
        rec.double_spends_detected = self.detected.len() as u64;
        rec.supply_minor = inv.supply as i64;
        self.r.daily.push(rec);
        Ok(())
    }

    // ---- the end ---------------------------------------------------------------------------------

    fn finish(&mut self, end: UnixSeconds) -> Result<(), SimError> {
        // Messages still on their way when the run ends never arrive.
        for i in 0..self.msgs.len() {
            if let Some(m) = self.msgs[i].take() {
                let kind = match m.kind {
                    MsgKind::Replay => AttackKind::Replay,
                    _ => AttackKind::Torn,
                };
                self.outcome(kind, "still_on_the_way_at_the_end");
            }
        }
        // Every live primary device comes online one last time, at once: the
        // issuer group-commits their reports.
        let live: Vec<usize> = (0..self.customers.len())
            .map(|c| self.customers[c].device)
            .filter(|&d| self.devices[d].alive())
            .collect();
        self.sync_grouped(&live, end)?;
        let hours = u64::from(self.cfg.days) * 24;
        self.cheap_check(hours);
        self.full_check(hours)?;

        // Double spends: what reached the issuer against what it proved.
        let recs = self.refresh_detected()?;
        let root = self.issuer.root_certificate().clone();
        for rec in &recs {
            match verify_double_spend_bytes(&rec.proof, &root) {
                Ok(p) if p.payer == rec.payer => self.r.double_spend_proofs_verified += 1,
                _ => self.violation("a stored double-spend proof does not verify".into()),
            }
            match self.owner.get(&rec.payer) {
                Some(&c)
                    if self.customers[c]
                        .attacker
                        .is_some_and(AttackKind::double_spends) => {}
                Some(&c) => self.violation(format!(
                    "customer {c} (not a double spender) was found double-spending at seq {}",
                    rec.seq
                )),
                None => self.violation("a double spend by an unknown wallet".into()),
            }
        }
        let mut delays = Vec::new();
        let mut injected = 0u64;
        let mut undetectable = 0u64;
        let mut records = Vec::new();
        let keys: Vec<(usize, u64)> = self.chains.keys().copied().collect();
        for key in keys {
            let ts = &self.chains[&key];
            if ts.len() < 2 {
                continue;
            }
            let mut all: Vec<&Tracked> = ts.iter().map(|&t| &self.tracked[t]).collect();
            all.sort_by_key(|t| t.released);
            let mut reported: Vec<&Tracked> = all
                .iter()
                .copied()
                .filter(|t| t.reported.is_some())
                .collect();
            reported.sort_by_key(|t| t.released);
            let overspend: u64 = all[1..].iter().map(|t| t.amount).sum();
            let (cust, seq) = key;
            let kind = self.customers[cust]
                .attacker
                .map_or("", AttackKind::name)
                .to_string();
            let detected = self.detected.get(&key).copied();
            if reported.len() < 2 {
                undetectable += 1;
                if detected.is_some() {
                    self.violation(format!(
                        "customer {cust}'s double spend at seq {seq} was detected but the simulator saw it reach the issuer only once"
                    ));
                }
                continue;
            }
            injected += 1;
            let attack_s = reported[1].released;
            let delay = detected.map(|d| d.saturating_sub(attack_s));
            if let Some(d) = delay {
                delays.push(d);
            } else {
                self.violation(format!(
                    "customer {cust}'s double spend at seq {seq} reached the issuer and was not detected"
                ));
            }
            if let Some(a) = self.customers[cust].attacker_rec {
                let ar = &mut self.r.attackers[a];
                ar.double_spends_injected += 1;
                if let Some(d) = delay {
                    ar.double_spends_detected += 1;
                    if ar.first_detection_delay_s.is_none() {
                        ar.first_detection_delay_s = Some(d);
                    }
                }
            }
            records.push(DoubleSpendRecord {
                customer: cust as u64,
                kind,
                seq,
                attack_s,
                detected_s: detected,
                delay_s: delay,
                overspend_minor: overspend,
            });
        }
        for (key, _) in self.detected.clone() {
            let reached = self.chains.get(&key).is_some_and(|ts| {
                ts.iter()
                    .filter(|&&t| self.tracked[t].reported.is_some())
                    .count()
                    >= 2
            });
            if !reached {
                self.violation(format!(
                    "the issuer detected a double spend of customer {} at seq {} that the simulator did not inject",
                    key.0, key.1
                ));
            }
        }
        self.r.double_spends_injected = injected;
        self.r.double_spends_detected = delays.len() as u64;
        self.r.double_spends_undetectable = undetectable;
        self.r.detection_delay_s = Distribution::of(&delays);
        self.r.double_spends = records;

        // Attackers: what the issuer had to cover.
        let loss_bound = self.limits.loss_bound_per_wallet_minor;
        for i in 0..self.r.attackers.len() {
            let cust = self.r.attackers[i].customer as usize;
            let wid = self.customers[cust].wallets.last().copied();
            let mut state = String::new();
            let (mut claw, mut guar) = (0u64, 0u64);
            for w in self.customers[cust].wallets.clone() {
                let rec = self.issuer.wallet(&w)?;
                claw += rec.clawed_back.max(0) as u64;
                guar += rec.guaranteed.max(0) as u64;
                if Some(w) == wid || state.is_empty() {
                    state = rec.state.as_str().to_string();
                }
            }
            let a = &mut self.r.attackers[i];
            a.issuer_state = state;
            a.clawed_back_minor = claw;
            a.guaranteed_minor = guar;
            a.loss_minor = claw + guar;
            let loss = a.loss_minor;
            self.r.max_loss_per_attacker_minor = self.r.max_loss_per_attacker_minor.max(loss);
            if loss > loss_bound {
                self.violation(format!(
                    "customer {cust}'s loss {loss} exceeds the bound {loss_bound} (holding + offline spend limit)"
                ));
            }
        }

        // Honest parties: what they hold offline is backed at the issuer, their
        // online balances are what they should be, and none is locked.
        let mut stranded_to: HashMap<usize, u64> = HashMap::new();
        {
            let mut tx = self.issuer.store().begin()?;
            for u in &self.undelivered {
                if u.accepted {
                    continue;
                }
                if !tx.settled(&u.payer, &[u.hash])?.is_empty() {
                    *stranded_to.entry(u.payee_dev).or_default() += u.amount;
                    self.r.stranded_minor += u.amount;
                }
            }
        }
        let mut honest_loss: u64 = 0;
        for cust in 0..self.customers.len() {
            let dev = self.customers[cust].device;
            let honest = self.honest(cust);
            // Wallets no device holds any more.
            for w in self.customers[cust].wallets.clone() {
                let live = self.devices[dev]
                    .wallet
                    .as_ref()
                    .is_some_and(|x| x.wallet_id() == w);
                if !live {
                    self.r.unclaimed_minor += self.issuer.wallet_balance(&w)?.max(0) as u64;
                }
            }
            if !honest {
                continue;
            }
            let id = self.customers[cust].id.clone();
            let online = self.issuer.customer_balance(&id)?;
            let expected = self.customers[cust].online_expected;
            if online != expected {
                self.violation(format!(
                    "honest customer {cust}'s online balance is {online}, expected {expected}"
                ));
                honest_loss += (expected - online).max(0) as u64;
            }
            if !self.devices[dev].alive() {
                continue;
            }
            let wid = self.wallet(dev).wallet_id();
            if let Some(l) = self.wallet(dev).lock().map(error_name) {
                self.violation(format!("honest customer {cust}'s wallet is locked: {l}"));
            }
            let rec = self.issuer.wallet(&wid)?;
            if rec.state != WalletState::Active {
                self.violation(format!(
                    "honest customer {cust}'s wallet is {} at the issuer",
                    rec.state.as_str()
                ));
            }
            let sub = self.issuer.wallet_balance(&wid)?;
            let ta = self.actual_balance(dev) as i64;
            let pending: u64 = self.devices[dev].vouchers.iter().map(|(_, a)| a).sum();
            let surplus = stranded_to.get(&dev).copied().unwrap_or(0) + pending;
            if sub != ta + surplus as i64 {
                self.violation(format!(
                    "honest customer {cust}: sub-account {sub} != offline balance {ta} + settled-but-not-received {surplus}"
                ));
            }
            honest_loss += (ta - sub).max(0) as u64;
        }
        self.r.honest_loss_minor = honest_loss;
        if honest_loss > 0 {
            self.violation(format!("honest parties lost {honest_loss}"));
        }

        let inv = self.issuer.invariants()?;
        self.r.guarantee_loss_minor = (-inv.totals.guarantee).max(0) as u64;
        self.r.clawed_back_minor = self.r.attackers.iter().map(|a| a.clawed_back_minor).sum();
        self.r.ledger = LedgerSummary {
            supply_minor: inv.supply as i64,
            pool_minor: inv.totals.pool as i64,
            wallets_minor: inv.totals.wallets as i64,
            customers_minor: inv.totals.customers as i64,
            guarantee_minor: inv.totals.guarantee as i64,
            devices_minor: self.ta_sum,
            in_flight_minor: self.in_flight,
        };
        if self.violations_dropped > 0 {
            let n = self.violations_dropped;
            self.r
                .invariant_violations
                .push(format!("... and {n} more violations"));
        }
        Ok(())
    }
}

/// Run one simulation. `progress` is called after every simulated hour.
pub fn run(config: SimConfig, mut progress: impl FnMut(Progress)) -> Result<SimReport, SimError> {
    config.validate().map_err(SimError::Config)?;
    let (store, db_dir, db_file) = match &config.store {
        StoreChoice::Memory => match ram_dir() {
            Some(dir) => {
                let file = dir.path().join("issuer.sqlite");
                (offpay_store::open_sqlite(&file)?, Some(dir), Some(file))
            }
            None => (offpay_store::open_sqlite_memory()?, None, None),
        },
        StoreChoice::SqliteMemory => (offpay_store::open_sqlite_memory()?, None, None),
        StoreChoice::File(p) => (offpay_store::open_sqlite(p)?, None, Some(p.clone())),
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
    // Certificates outlive the run's syncs comfortably; renewal still happens at half life.
    let mut store = store;
    store.set_entropy(SeededEntropy::shared(config.seed, "store"));
    let base = Arc::new(store);
    let mut seed_rng = Rng::new(config.seed);
    let rng = seed_rng.fork(1);
    let arng = seed_rng.fork(2);
    let frng = seed_rng.fork(3);
    let gap = if config.faults {
        FAULT_MEAN_STATEMENTS
    } else {
        0
    };
    let plan: SharedPlan = Arc::new(Mutex::new(FaultPlan::new(frng, gap)));
    let issuer_entropy = SeededEntropy::shared(config.seed, "issuer");
    let issuer = Issuer::init_with_entropy(
        FaultStore::new(base.clone(), plan.clone()),
        &MASTER,
        &ic,
        T0,
        issuer_entropy.clone(),
    )?;
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
    };
    let root_der = issuer.root_certificate().der().to_vec();
    let mut sim = Sim {
        policy_max_payment: p.max_payment.minor,
        holding: p.max_balance_minor,
        limits,
        cfg: config,
        issuer,
        base,
        plan,
        issuer_entropy,
        root_der,
        rng,
        arng,
        queue: BinaryHeap::new(),
        qseq: 0,
        devices: Vec::with_capacity(n + n / 8),
        customers: Vec::with_capacity(n),
        merchants: (0..n_merchants).collect(),
        consumers: (n_merchants..n).collect(),
        owner: HashMap::with_capacity(n + n / 8),
        msgs: Vec::new(),
        undelivered: Vec::new(),
        tracked: Vec::new(),
        tracked_by_hash: HashMap::new(),
        chains: BTreeMap::new(),
        saved: Vec::new(),
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
        progress: &mut progress,
    };
    sim.populate()?;
    sim.main_loop()?;
    let mut report = sim.r;
    // Not in the JSON: machine-dependent.
    report.machine.store_bytes = db_file.map(|f| {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|x| std::fs::metadata(format!("{}{x}", f.display())).ok())
            .map(|m| m.len())
            .sum()
    });
    if sim.cfg.faults {
        report.faults = Some(lock(&sim.plan).stats.clone());
    }
    if sim.cfg.dump_store {
        report.store_dump = Some(sim.base.dump()?);
    }
    drop(sim.issuer);
    drop(db_dir);
    Ok(report)
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
        for cust in 0..n {
            let merchant = cust < self.merchants.len();
            let id = format!("c{cust}");
            self.issuer.create_customer(&id, &id, T0)?;
            self.customers.push(Customer {
                id,
                merchant,
                device: usize::MAX,
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
                    if let Some(m) = self.pick(true, cust) {
                        self.customers[cust].favorites.push(m);
                    }
                }
                for _ in 0..FRIENDS {
                    if let Some(f) = self.pick(false, cust) {
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
                }
            }
            self.cheap_check(hour + 1);
            if (hour + 1) % u64::from(self.cfg.full_check_hours) == 0 {
                self.full_check(hour + 1)?;
            }
            if (hour + 1) % 24 == 0 {
                let day = ((hour + 1) / 24) as u32;
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
