//! Conservation of money across random sequences of TA operations among 2 to 6
//! wallets (DESIGN.md §1 "Security": money is created or destroyed only by
//! load/redeem at the issuer).
//!
//! Operations: load (voucher, possibly over the holding limit), bad vouchers
//! (replayed, out of order), full payments (request -> pay -> receive ->
//! confirm), torn payments (the Payment is lost: money "in flight", paid but
//! not received), late delivery of a lost payment (to its payee or to a wrong
//! wallet), replays of a received payment and of a paid request, redeem, sync
//! (with or without a voucher), and time passing (expired requests). Each step
//! is checked against a model that predicts the exact result (which refusal,
//! with which fields). After every step:
//!
//! - sum of balances + in flight = loads - redeems;
//! - every wallet's balance, seq and evidence count are the model's;
//! - no balance exceeds the holding limit;
//! - a refused operation left everything the app can observe of that wallet
//!   unchanged (a `PayerRolledBack` refusal only adds the evidence).
//!
//! Deterministic: every time is `T0` plus model time; the proptest seed is
//! fixed unless `PROPTEST_RNG_SEED` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::collections::{BTreeMap, HashMap};

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{Payment, RiskPolicy, SyncReport, WalletCommand};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_test_support::*;
use offpay_wallet::ta::{EVIDENCE_MAX, PENDING_REQUESTS_MAX, REQUEST_SECONDS_MAX};
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{Wallet, WalletError};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestRunner};

const MAX_PAYMENT: u64 = 10_000;
const MAX_BALANCE: u64 = 25_000;
const MAX_OFFLINE_SPEND: u64 = 12_000;
const MAX_OFFLINE_PAYMENTS: u32 = 4;

/// Tight limits, so that random amounts hit every one of them.
fn tight_policy() -> RiskPolicy {
    RiskPolicy {
        required_suite: None,
        id: 1,
        epoch: 1,
        max_payment: eur(MAX_PAYMENT),
        max_balance_minor: MAX_BALANCE,
        max_offline_spend_minor: MAX_OFFLINE_SPEND,
        max_offline_payments: MAX_OFFLINE_PAYMENTS,
        max_offline_seconds: 7 * DAY,
        max_log_entries: 1000,
        cert_validity_seconds: 30 * DAY,
        terminal: None,
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Apply a fresh voucher (refused over the holding limit).
    Load {
        w: usize,
        minor: u64,
    },
    /// Replay the last applied voucher, or skip a load seq.
    BadVoucher {
        w: usize,
        replay: bool,
    },
    /// request -> pay -> (unless lost) receive -> confirm. With `expire`, the
    /// payer only gets the request after it expired. `to` is an offset from
    /// `from` (another wallet), unless `to_self`.
    Pay {
        from: usize,
        to: usize,
        to_self: bool,
        minor: u64,
        valid: u64,
        expire: bool,
        lose: bool,
    },
    /// `count` payment requests nobody pays (a terminal showing QR codes that
    /// nobody scans): they stay pending until they expire.
    Ask {
        w: usize,
        minor: u64,
        valid: u64,
        count: usize,
    },
    /// Deliver a lost payment (index among those in flight), to its payee or
    /// to another wallet.
    Deliver {
        i: usize,
        to: Option<usize>,
    },
    /// Deliver a received payment again.
    Redeliver {
        i: usize,
    },
    /// Pay an already paid request again.
    Repay {
        i: usize,
    },
    Redeem {
        w: usize,
        minor: u64,
    },
    /// Sync, the response carrying a voucher or not.
    Sync {
        w: usize,
        voucher: Option<u64>,
    },
    Wait {
        secs: u64,
    },
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 1u64..=3_000,
        2 => 1u64..=12_000,
        1 => 10_000u64..=30_000,
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let w = || 0usize..6;
    prop_oneof![
        4 => (w(), amount()).prop_map(|(w, minor)| Step::Load { w, minor }),
        1 => (w(), any::<bool>()).prop_map(|(w, replay)| Step::BadVoucher { w, replay }),
        8 => (
            (w(), w(), prop::bool::weighted(0.03)),
            amount(),
            prop_oneof![30u64..=600, 600u64..=7200],
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.3),
        )
            .prop_map(|((from, to, to_self), minor, valid, expire, lose)| Step::Pay {
                from,
                to,
                to_self,
                minor,
                valid,
                expire,
                lose,
            }),
        2 => (w(), amount(), 600u64..=7200, prop_oneof![3 => 1usize..=3, 1 => 8usize..=18])
            .prop_map(|(w, minor, valid, count)| Step::Ask {
                w,
                minor,
                valid,
                count
            }),
        3 => (0usize..64, prop::option::weighted(0.2, w()))
            .prop_map(|(i, to)| Step::Deliver { i, to }),
        1 => (0usize..64).prop_map(|i| Step::Redeliver { i }),
        1 => (0usize..64).prop_map(|i| Step::Repay { i }),
        2 => (w(), amount()).prop_map(|(w, minor)| Step::Redeem { w, minor }),
        2 => (w(), prop::option::weighted(0.5, amount()))
            .prop_map(|(w, voucher)| Step::Sync { w, voucher }),
        1 => (1u64..=900).prop_map(|secs| Step::Wait { secs }),
    ]
}

fn suite() -> impl Strategy<Value = Suite> {
    prop_oneof![7 => Just(Suite::Ed25519), 1 => Just(Suite::P256)]
}

/// A payment request as the payee's TA remembers it.
#[derive(Clone, Debug)]
struct Req {
    bytes: Vec<u8>,
    expires: UnixSeconds,
}

/// A payment made by a payer's TA.
#[derive(Clone, Debug)]
struct Made {
    payer: usize,
    payee: usize,
    amount: u64,
    seq: u64,
    req: Req,
    payment: Vec<u8>,
    /// The payer's sync epoch when it paid (its log holds the entry until it syncs).
    payer_epoch: u64,
    /// The receipt, and the payee's sync epoch when it received.
    received: Option<(Vec<u8>, u64)>,
}

/// What the TAs should hold.
#[derive(Default)]
struct Model {
    now: u64,
    balance: Vec<u64>,
    seq: Vec<u64>,
    load_seq: Vec<u64>,
    last_voucher: Vec<Option<(u64, Vec<u8>)>>,
    /// Pending requests of each payee.
    pending: Vec<Vec<Req>>,
    /// Paid requests each payer remembers (idempotent pay).
    paid: Vec<Vec<Req>>,
    /// Offline payments (count, minor units) since the last sync.
    spend: Vec<(u32, u64)>,
    /// payee -> payer -> highest seq accepted.
    seen: Vec<HashMap<usize, u64>>,
    evidence: Vec<Vec<Vec<u8>>>,
    epoch: Vec<u64>,
    made: Vec<Made>,
    loads: u64,
    redeems: u64,
}

impl Model {
    fn now(&self) -> UnixSeconds {
        T0.plus(self.now)
    }
    fn in_flight(&self) -> u64 {
        self.made
            .iter()
            .filter(|m| m.received.is_none())
            .map(|m| m.amount)
            .sum()
    }
}

struct World {
    s: Scheme,
    w: Vec<Wallet<MemoryVault>>,
    m: Model,
    /// Operations done, and refusals by kind, for the report.
    done: u64,
    refused: BTreeMap<String, u64>,
}

impl World {
    fn new(n: usize, suite: Suite) -> World {
        let mut s = Scheme::with_policy(suite, tight_policy());
        let w: Vec<_> = (0..n)
            .map(|_| s.enroll(MemoryVault::new(), suite, T0))
            .collect();
        let m = Model {
            balance: vec![0; n],
            seq: vec![0; n],
            load_seq: vec![0; n],
            last_voucher: vec![None; n],
            pending: vec![Vec::new(); n],
            paid: vec![Vec::new(); n],
            spend: vec![(0, 0); n],
            seen: vec![HashMap::new(); n],
            evidence: vec![Vec::new(); n],
            epoch: vec![0; n],
            ..Model::default()
        };
        World {
            s,
            w,
            m,
            done: 0,
            refused: BTreeMap::new(),
        }
    }

    fn n(&self) -> usize {
        self.w.len()
    }

    /// Check a wallet operation's result against the prediction. A refusal
    /// must leave the wallet's observable state as `before` (`after_refusal`).
    fn expect<T: PartialEq + std::fmt::Debug>(
        &mut self,
        who: usize,
        before: &WalletObs,
        got: Result<T, WalletError>,
        want: Result<(), WalletError>,
        what: &str,
    ) -> Option<T> {
        match (got, want) {
            (Ok(v), Ok(())) => {
                self.done += 1;
                Some(v)
            }
            (Err(e), Err(w)) => {
                assert_eq!(e, w, "{what}: refused for another reason");
                let kind = format!("{e:?}");
                let kind = kind.split([' ', '(', '{']).next().unwrap_or_default();
                *self.refused.entry(kind.to_string()).or_default() += 1;
                let mut expect = before.clone();
                if let WalletError::PayerRolledBack { .. } = e {
                    expect.evidence = self.m.evidence[who].clone();
                    expect.status.evidence = expect.evidence.len();
                }
                assert_eq!(
                    observe(&self.w[who], self.m.now()),
                    expect,
                    "{what}: the refusal ({e}) changed the wallet"
                );
                None
            }
            (got, want) => panic!("{what}: got {got:?}, model says {want:?}"),
        }
    }

    fn check_invariants(&self, ctx: &str) {
        let now = self.m.now();
        let mut sum = 0u64;
        for (i, w) in self.w.iter().enumerate() {
            let b = w.balance().unwrap().minor;
            assert_eq!(b, self.m.balance[i], "{ctx}: wallet {i} balance");
            assert!(b <= MAX_BALANCE, "{ctx}: wallet {i} over the holding limit");
            assert_eq!(w.chain_head().0, self.m.seq[i], "{ctx}: wallet {i} seq");
            let st = w.status(now);
            assert_eq!(st.evidence, self.m.evidence[i].len(), "{ctx}: wallet {i}");
            assert_eq!(st.load_seq, self.m.load_seq[i], "{ctx}: wallet {i}");
            assert_eq!(
                st.offline_payments_left,
                Some(MAX_OFFLINE_PAYMENTS - self.m.spend[i].0),
                "{ctx}: wallet {i}"
            );
            assert_eq!(st.locked, None, "{ctx}: wallet {i}");
            sum += b;
        }
        assert_eq!(
            sum + self.m.in_flight(),
            self.m.loads - self.m.redeems,
            "{ctx}: balances + in flight != loads - redeems"
        );
    }

    fn apply(&mut self, step: &Step) {
        self.m.now += 1;
        let n = self.n();
        match *step {
            Step::Load { w, minor } => self.load(w % n, minor),
            Step::BadVoucher { w, replay } => self.bad_voucher(w % n, replay),
            Step::Pay {
                from,
                to,
                to_self,
                minor,
                valid,
                expire,
                lose,
            } => {
                let from = from % n;
                let to = if to_self {
                    from
                } else {
                    (from + 1 + to % (n - 1)) % n
                };
                self.pay(from, to, minor, valid, expire, lose);
            }
            Step::Ask {
                w,
                minor,
                valid,
                count,
            } => {
                for _ in 0..count {
                    self.request(w % n, minor, valid);
                }
            }
            Step::Deliver { i, to } => {
                let flying: Vec<usize> = (0..self.m.made.len())
                    .filter(|&k| self.m.made[k].received.is_none())
                    .collect();
                if !flying.is_empty() {
                    let k = flying[i % flying.len()];
                    let to = to.map_or(self.m.made[k].payee, |t| t % n);
                    self.deliver(k, to);
                }
            }
            Step::Redeliver { i } => {
                let got: Vec<usize> = (0..self.m.made.len())
                    .filter(|&k| self.m.made[k].received.is_some())
                    .collect();
                if !got.is_empty() {
                    let k = got[i % got.len()];
                    let to = self.m.made[k].payee;
                    self.deliver(k, to);
                }
            }
            Step::Repay { i } => {
                if !self.m.made.is_empty() {
                    self.repay(i % self.m.made.len());
                }
            }
            Step::Redeem { w, minor } => self.redeem(w % n, minor),
            Step::Sync { w, voucher } => self.sync(w % n, voucher),
            Step::Wait { secs } => self.m.now += secs,
        }
    }

    fn load(&mut self, w: usize, minor: u64) {
        let now = self.m.now();
        let seq = self.m.load_seq[w] + 1;
        let v = voucher_with_seq(&self.s, self.w[w].wallet_id(), seq, minor, now);
        let before = observe(&self.w[w], now);
        let want = if self.m.balance[w] + minor > MAX_BALANCE {
            Err(WalletError::LimitHolding {
                max_minor: MAX_BALANCE,
            })
        } else {
            Ok(())
        };
        let got = self.w[w].apply_voucher(&v, now);
        if let Some(a) = self.expect(w, &before, got, want, "load") {
            assert_eq!(a, eur(minor));
            self.m.balance[w] += minor;
            self.m.loads += minor;
            self.m.load_seq[w] = seq;
            self.m.last_voucher[w] = Some((seq, v));
        }
    }

    fn bad_voucher(&mut self, w: usize, replay: bool) {
        let now = self.m.now();
        let next = self.m.load_seq[w] + 1;
        let (v, want) = match (&self.m.last_voucher[w], replay) {
            (Some((seq, v)), true) => (v.clone(), WalletError::VoucherReplayed { load_seq: *seq }),
            _ => (
                voucher_with_seq(&self.s, self.w[w].wallet_id(), next + 1, 100, now),
                WalletError::VoucherOutOfOrder {
                    expected: next,
                    got: next + 1,
                },
            ),
        };
        let before = observe(&self.w[w], now);
        let got = self.w[w].apply_voucher(&v, now);
        self.expect(w, &before, got, Err(want), "bad voucher");
    }

    /// The payee `to` asks for `minor`; `None` if refused (too many pending).
    fn request(&mut self, to: usize, minor: u64, valid: u64) -> Option<Req> {
        let now = self.m.now();
        let live = self.m.pending[to]
            .iter()
            .filter(|r| r.expires >= now)
            .count();
        let want = if live >= PENDING_REQUESTS_MAX {
            Err(WalletError::TooManyPendingRequests)
        } else {
            Ok(())
        };
        let before = observe(&self.w[to], now);
        let got = self.w[to].request(eur(minor), valid, now);
        let bytes = self.expect(to, &before, got, want, "request")?;
        let req = Req {
            bytes,
            expires: now.plus(valid.min(REQUEST_SECONDS_MAX)),
        };
        self.m.pending[to].retain(|r| r.expires >= now);
        self.m.pending[to].push(req.clone());
        Some(req)
    }

    fn pay(&mut self, from: usize, to: usize, minor: u64, valid: u64, expire: bool, lose: bool) {
        let Some(req) = self.request(to, minor, valid) else {
            return;
        };
        if expire {
            self.m.now = req.expires.0 - T0.0 + 1;
        }

        // The payer pays it.
        let now = self.m.now();
        let (count, spent) = self.m.spend[from];
        let balance = self.m.balance[from];
        let want = if from == to {
            Err(WalletError::SelfPayment)
        } else if now > req.expires {
            Err(WalletError::RequestExpired)
        } else if minor > MAX_PAYMENT {
            Err(WalletError::LimitPerPayment {
                max: eur(MAX_PAYMENT),
            })
        } else if balance < minor {
            Err(WalletError::InsufficientFunds {
                balance: eur(balance),
                needed: eur(minor),
            })
        } else if count >= MAX_OFFLINE_PAYMENTS {
            Err(WalletError::LimitOfflineCount {
                max: MAX_OFFLINE_PAYMENTS,
            })
        } else if minor > MAX_OFFLINE_SPEND - spent {
            Err(WalletError::LimitOfflineSpend {
                left_minor: MAX_OFFLINE_SPEND - spent,
            })
        } else {
            Ok(())
        };
        let before = observe(&self.w[from], now);
        let got = self.w[from].pay(&req.bytes, now);
        let Some(payment) = self.expect(from, &before, got, want, "pay") else {
            return;
        };
        let p = Signed::<Payment>::decode(&payment).unwrap();
        self.m.seq[from] += 1;
        assert_eq!(p.body().seq, self.m.seq[from], "pay: seq");
        assert_eq!(p.body().amount, eur(minor));
        self.m.balance[from] -= minor;
        self.m.spend[from] = (count + 1, spent + minor);
        self.m.paid[from].retain(|r| r.expires >= now);
        self.m.paid[from].push(req.clone());
        self.m.made.push(Made {
            payer: from,
            payee: to,
            amount: minor,
            seq: p.body().seq,
            req,
            payment,
            payer_epoch: self.m.epoch[from],
            received: None,
        });
        if !lose {
            self.deliver(self.m.made.len() - 1, to);
        }
    }

    /// Deliver payment `k` to wallet `to`, then give its receipt to the payer.
    fn deliver(&mut self, k: usize, to: usize) {
        let now = self.m.now();
        let made = self.m.made[k].clone();
        let in_log = |m: &Model| matches!(&made.received, Some((_, e)) if made.payee == to && *e == m.epoch[to]);
        let pending = self.m.pending[to]
            .iter()
            .position(|r| r.bytes == made.req.bytes);
        let seen = self.m.seen[to].get(&made.payer).copied();
        let mut want = if in_log(&self.m) {
            Ok(())
        } else if made.payee != to {
            Err(WalletError::WrongPayee)
        } else if pending.is_none() {
            Err(WalletError::NonceUnknown)
        } else if now > made.req.expires {
            Err(WalletError::RequestExpired)
        } else if let Some(seen) = seen.filter(|&s| made.seq <= s) {
            Err(WalletError::PayerRolledBack {
                payer: self.w[made.payer].wallet_id(),
                seen,
                got: made.seq,
            })
        } else if self.m.balance[to] + made.amount > MAX_BALANCE {
            Err(WalletError::LimitHolding {
                max_minor: MAX_BALANCE,
            })
        } else {
            Ok(())
        };
        if let Err(WalletError::PayerRolledBack { .. }) = want {
            // Refused, but kept as evidence (an honest payer's lost payment that
            // arrives after a later one looks exactly like a rollback offline).
            let ev = &mut self.m.evidence[to];
            if !ev.contains(&made.payment) && ev.len() < EVIDENCE_MAX {
                ev.push(made.payment.clone());
            }
        }
        let before = observe(&self.w[to], now);
        let got = self.w[to].receive(&made.payment, now);
        let replay = in_log(&self.m);
        if replay {
            // Idempotent: the same receipt, nothing changes.
            let receipt = got.clone().unwrap();
            assert_eq!(Some(&receipt), made.received.as_ref().map(|r| &r.0));
            assert_eq!(
                observe(&self.w[to], now),
                before,
                "receive replay changed the payee"
            );
            want = Ok(());
        }
        let Some(receipt) = self.expect(to, &before, got, want, "receive") else {
            return;
        };
        if replay {
            return;
        }
        self.m.balance[to] += made.amount;
        self.m.pending[to].remove(pending.unwrap());
        self.m.seen[to].insert(made.payer, made.seq);
        self.m.made[k].received = Some((receipt.clone(), self.m.epoch[to]));
        // The receipt reaches the payer: recorded if the entry is still in its log.
        let payer = made.payer;
        let want = if made.payer_epoch == self.m.epoch[payer] {
            Ok(())
        } else {
            Err(WalletError::ReceiptUnknownPayment)
        };
        let before = observe(&self.w[payer], now);
        let got = self.w[payer].confirm(&receipt);
        if self.expect(payer, &before, got, want, "confirm").is_some() {
            assert_eq!(observe(&self.w[payer], now), before, "confirm moved money");
        }
    }

    fn repay(&mut self, k: usize) {
        let now = self.m.now();
        let made = self.m.made[k].clone();
        let remembered = self.m.paid[made.payer]
            .iter()
            .any(|r| r.bytes == made.req.bytes);
        let want = if remembered {
            Ok(())
        } else {
            // Forgotten only once expired.
            assert!(now > made.req.expires);
            Err(WalletError::RequestExpired)
        };
        let before = observe(&self.w[made.payer], now);
        let got = self.w[made.payer].pay(&made.req.bytes, now);
        if let Some(p) = self.expect(made.payer, &before, got, want, "pay again") {
            assert_eq!(p, made.payment, "pay again: not the same Payment");
            assert_eq!(
                observe(&self.w[made.payer], now),
                before,
                "pay again debited"
            );
        }
    }

    fn redeem(&mut self, w: usize, minor: u64) {
        let now = self.m.now();
        let balance = self.m.balance[w];
        let want = if balance < minor {
            Err(WalletError::InsufficientFunds {
                balance: eur(balance),
                needed: eur(minor),
            })
        } else {
            Ok(())
        };
        let before = observe(&self.w[w], now);
        let got = self.w[w].redeem(eur(minor), now);
        if self.expect(w, &before, got, want, "redeem").is_some() {
            self.m.balance[w] -= minor;
            self.m.seq[w] += 1;
            self.m.redeems += minor;
        }
    }

    fn sync(&mut self, w: usize, voucher: Option<u64>) {
        let now = self.m.now();
        let report = self.w[w].sync_report(now).unwrap();
        let r = Signed::<SyncReport>::decode(&report).unwrap();
        let b = r.body();
        assert_eq!(b.balance, eur(self.m.balance[w]), "report balance");
        assert_eq!(b.seq, self.m.seq[w], "report seq");
        assert_eq!(b.evidence, self.m.evidence[w], "report evidence");
        assert!(!b.locked);
        let seq = self.m.load_seq[w] + 1;
        let vouchers: Vec<Vec<u8>> = voucher
            .map(|minor| voucher_with_seq(&self.s, self.w[w].wallet_id(), seq, minor, now))
            .into_iter()
            .collect();
        let resp = self
            .s
            .respond(&report, now, WalletCommand::None, vouchers.clone(), None);
        let applied = self.w[w].apply_sync_response(&resp, now).unwrap();
        self.done += 1;
        self.m.epoch[w] += 1;
        self.m.spend[w] = (0, 0);
        self.m.evidence[w].clear();
        if let Some(minor) = voucher {
            if self.m.balance[w] + minor <= MAX_BALANCE {
                assert_eq!(applied.vouchers_applied, vec![seq]);
                self.m.balance[w] += minor;
                self.m.loads += minor;
                self.m.load_seq[w] = seq;
                self.m.last_voucher[w] = Some((seq, vouchers[0].clone()));
            } else {
                assert_eq!(applied.vouchers_deferred, vec![seq], "holding limit");
                assert!(applied.vouchers_applied.is_empty());
            }
        }
    }
}

fn config() -> ProptestConfig {
    let default = ProptestConfig::default();
    let rng_seed = match std::env::var("PROPTEST_RNG_SEED") {
        Ok(_) => default.rng_seed,
        Err(_) => RngSeed::Fixed(0x0ff_9a7),
    };
    ProptestConfig {
        cases: if std::env::var("PROPTEST_CASES").is_ok() {
            default.cases
        } else {
            64
        },
        rng_seed,
        failure_persistence: None,
        ..default
    }
}

/// One case: `n` wallets, `steps`; returns (operations done, refusals by kind,
/// payments left in flight).
fn run_case(n: usize, suite: Suite, steps: &[Step]) -> (u64, BTreeMap<String, u64>, u64) {
    let mut world = World::new(n, suite);
    world.check_invariants("start");
    for (i, st) in steps.iter().enumerate() {
        world.apply(st);
        world.check_invariants(&format!("step {i}: {st:?}"));
    }
    // Everything received is spendable and redeemable: drain every wallet.
    for w in 0..n {
        let b = world.m.balance[w];
        if b > 0 {
            world.redeem(w, b);
        }
    }
    world.check_invariants("drained");
    assert_eq!(world.m.in_flight(), world.m.loads - world.m.redeems);
    let flying = world.m.made.iter().filter(|m| m.received.is_none()).count();
    (world.done, world.refused, flying as u64)
}

#[test]
fn money_is_conserved_across_random_operations() {
    let stats = std::cell::RefCell::new(([0u64; 4], BTreeMap::<String, u64>::new()));
    let mut runner = TestRunner::new(config());
    let strategy = (2usize..=6, suite(), prop::collection::vec(step(), 1..80));
    let result = runner.run(&strategy, |(n, suite, steps)| {
        let (done, refused, flying) = run_case(n, suite, &steps);
        let mut s = stats.borrow_mut();
        s.0[0] += 1;
        s.0[1] += done;
        s.0[2] += flying;
        s.0[3] += u64::from(suite == Suite::P256);
        for (k, v) in refused {
            *s.1.entry(k).or_default() += v;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let ([cases, done, flying, p256], refused) = stats.into_inner();
    eprintln!(
        "conservation: {cases} cases ({p256} P-256), {done} operations done, \
         {} refused {refused:?}, {flying} payments left in flight",
        refused.values().sum::<u64>()
    );
    assert!(cases >= u64::from(config().cases));
    assert!(p256 > 0, "no P-256 case");
    assert!(done > 0 && refused.len() >= 8, "too few kinds of refusal");
}
