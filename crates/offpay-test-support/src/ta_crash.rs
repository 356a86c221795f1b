//! Crash consistency of whole TA operations, the parts shared by every
//! vault backend (offpay-wallet's `tests/ta_crash.rs` runs them on the
//! sealed file vault with fault-injected file systems and on the memory
//! vault; [`crash_host`] on any [`HostVault`] over a [`MemoryBlobStore`],
//! crashing at every blob replace, before or after it is applied).
//!
//! For each [`Op`]: the reopened vault must hold exactly the state before or
//! exactly the state after the operation ([`classify`]: the plaintext byte
//! for byte, and everything the app can observe), and finishing the
//! exchange ([`finish`]: retry, or the next step) must neither create nor
//! lose money.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{SyncReport, WalletCommand};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_wallet::vault::{
    BlobCrashPoint, MemoryBlobStore, MemoryCounter, MemoryVault, Vault, VaultError,
};
use offpay_wallet::{LockReason, Wallet, WalletError};

use crate::host::HostVault;
use crate::{Scheme, T0, WalletObs, eur, observe, pay};

/// When the operation under test runs (and the retries after the crash).
pub fn now() -> UnixSeconds {
    T0.plus(100)
}

/// The TA operations crashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `apply_voucher`.
    ApplyVoucher,
    /// `request`.
    Request,
    /// `pay`.
    Pay,
    /// `receive`.
    Receive,
    /// `confirm`.
    Confirm,
    /// `redeem`.
    Redeem,
    /// `sync_report`.
    SyncReport,
    /// `apply_sync_response`.
    ApplySyncResponse,
    /// `receive` of a payment from a payer whose seq was already seen: it
    /// commits the evidence and refuses.
    ReceiveEvidence,
    /// `Wallet::open` of a rolled-back state: it commits the lock.
    OpenRolledBack,
}

/// The wallet under test (W) and its counterparty (P, in memory) just
/// before the operation.
pub struct Case {
    /// The operation.
    pub op: Op,
    /// W's and P's suite.
    pub suite: Suite,
    /// P's vault before the operation.
    pub peer: MemoryVault,
    /// The operation's input (voucher, request, payment, receipt, response).
    pub input: Vec<u8>,
    /// W's sealed plaintext before the operation.
    pub before_plain: Vec<u8>,
    /// Its version.
    pub before_version: u64,
    /// What the app observes of W before the operation.
    pub before_obs: WalletObs,
    /// W + P balances before the operation, plus money in flight between them.
    pub total: u64,
}

/// The operation run without a fault.
pub struct Reference {
    /// What it returned.
    pub out: Result<Vec<u8>, WalletError>,
    /// W's plaintext after it.
    pub after_plain: Vec<u8>,
    /// What the app observes of W after it.
    pub after_obs: WalletObs,
    /// The sealed version after the operation.
    pub after_version: u64,
    /// Mutating operations (file operations, blob replaces) it does.
    pub ops: usize,
}

/// W's balance.
pub fn balance<V: Vault>(w: &Wallet<V>) -> u64 {
    w.balance().unwrap().minor
}

/// Bring W (the wallet under test) and P (its peer) to just before `op`
/// at `t`; returns the operation's input (voucher, request, payment,
/// receipt, response; empty when it takes none). `Op::OpenRolledBack`
/// needs the vault's own storage: the caller prepares it.
pub fn prepare<V: Vault>(
    op: Op,
    s: &mut Scheme,
    w: &mut Wallet<V>,
    p: &mut Wallet<MemoryVault>,
    t: UnixSeconds,
) -> Vec<u8> {
    match op {
        Op::ApplyVoucher => {
            s.load(w, 5_000, t);
            s.voucher(w.wallet_id(), 3_000, t)
        }
        Op::Request => {
            s.load(p, 10_000, t);
            Vec::new()
        }
        Op::Pay => {
            s.load(w, 10_000, t);
            p.request(eur(2_500), 3600, t).unwrap()
        }
        Op::Receive => {
            s.load(p, 10_000, t);
            let req = w.request(eur(2_500), 3600, t).unwrap();
            p.pay(&req, t).unwrap()
        }
        Op::Confirm => {
            s.load(w, 10_000, t);
            let req = p.request(eur(2_500), 3600, t).unwrap();
            let payment = w.pay(&req, t).unwrap();
            p.receive(&payment, t).unwrap()
        }
        Op::Redeem => {
            s.load(w, 10_000, t);
            Vec::new()
        }
        Op::SyncReport => {
            s.load(w, 10_000, t);
            pay(w, p, 1_000, t);
            Vec::new()
        }
        Op::ApplySyncResponse => {
            s.load(w, 10_000, t);
            pay(w, p, 1_000, t);
            let report = w.sync_report(t).unwrap();
            let v = s.voucher(w.wallet_id(), 2_000, t);
            s.respond(&report, t, WalletCommand::None, vec![v], None)
        }
        Op::ReceiveEvidence => {
            s.load(p, 10_000, t);
            let mut clone = Wallet::open(p.vault().clone()).unwrap();
            pay(p, w, 1_000, t);
            let req = w.request(eur(500), 3600, t).unwrap();
            clone.pay(&req, t).unwrap()
        }
        Op::OpenRolledBack => panic!("OpenRolledBack is prepared on the vault's storage"),
    }
}

/// Run the operation on the wallet in `vault`. Returns its result and the wallet
/// (`None` if the operation is the open and it failed).
pub fn run<V: Vault>(
    op: Op,
    vault: V,
    input: &[u8],
) -> (Result<Vec<u8>, WalletError>, Option<Wallet<V>>) {
    let t = now();
    if op == Op::OpenRolledBack {
        return match Wallet::open(vault) {
            Ok(w) => (Ok(Vec::new()), Some(w)),
            Err(e) => (Err(e), None),
        };
    }
    let mut w = Wallet::open(vault).unwrap();
    let r = match op {
        Op::ApplyVoucher => w
            .apply_voucher(input, t)
            .map(|a| a.minor.to_le_bytes().to_vec()),
        Op::Request => w.request(eur(700), 300, t),
        Op::Pay => w.pay(input, t),
        Op::Receive | Op::ReceiveEvidence => w.receive(input, t),
        Op::Confirm => w.confirm(input).map(|()| Vec::new()),
        Op::Redeem => w.redeem(eur(4_000), t),
        Op::SyncReport => w.sync_report(t),
        Op::ApplySyncResponse => w
            .apply_sync_response(input, t)
            .map(|a| format!("{a:?}").into_bytes()),
        Op::OpenRolledBack => unreachable!(),
    };
    (r, Some(w))
}

/// Operations whose outcome is a pure function of the state and input (no random
/// nonce): their "after" plaintext is byte-identical to the reference run's.
pub fn deterministic(op: Op) -> bool {
    op != Op::Request
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
/// Which state a reopened vault holds.
pub enum Outcome {
    /// The state before the operation.
    Before,
    /// The state after it.
    After,
}

/// Which of the two states the reopened vault holds (panics on anything else).
pub fn classify(
    su: &Case,
    r: &Reference,
    plain: &[u8],
    version: u64,
    versions: (u64, u64),
    label: &str,
    view: &dyn Fn(&[u8]) -> WalletObs,
) -> Outcome {
    if plain == su.before_plain.as_slice() {
        assert_eq!(version, versions.0, "{label}: before state, wrong version");
        Outcome::Before
    } else {
        if deterministic(su.op) {
            assert!(
                plain == r.after_plain.as_slice(),
                "{label}: neither the state before nor the state after"
            );
        } else {
            // A request's nonce is random: same shape, and the same observables.
            assert_eq!(
                plain.len(),
                r.after_plain.len(),
                "{label}: not the state after"
            );
            assert_eq!(view(plain), r.after_obs, "{label}");
        }
        assert_eq!(version, versions.1, "{label}: after state, wrong version");
        Outcome::After
    }
}

/// Finish the exchange from the reopened wallet `w` (state `outcome`; `out` is
/// what the crashed or completed operation returned) and check that money is
/// conserved.
#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one scenario told end to end; short names follow the fixtures and formulas
pub fn finish<V: Vault>(
    su: &Case,
    r: &Reference,
    w: &mut Wallet<V>,
    outcome: Outcome,
    out: &Result<Vec<u8>, WalletError>,
    label: &str,
) {
    let t = now();
    let mut p = Wallet::open(su.peer.clone()).unwrap();
    let before_w = su.before_obs.status.balance.unwrap().minor;
    let expected_obs = match outcome {
        // Reopening a rolled-back state seals the lock again: the same state as after.
        _ if su.op == Op::OpenRolledBack => &r.after_obs,
        Outcome::Before => &su.before_obs,
        Outcome::After => &r.after_obs,
    };
    assert_eq!(&observe(w, t), expected_obs, "{label}: observables");
    if su.op != Op::OpenRolledBack {
        assert_eq!(w.lock(), None, "{label}: locked after a crash");
    }
    let ref_out = r.out.as_ref();
    match su.op {
        Op::ApplyVoucher => {
            let again = w.apply_voucher(&su.input, t);
            match outcome {
                Outcome::Before => assert_eq!(again.map(|a| a.minor), Ok(3_000), "{label}"),
                Outcome::After => assert_eq!(
                    again,
                    Err(WalletError::VoucherReplayed { load_seq: 2 }),
                    "{label}"
                ),
            }
            assert_eq!(balance(w), before_w + 3_000, "{label}: credited once");
        }
        Op::Request => {
            let req = match out {
                Ok(req) => req.clone(),
                // The request never reached the app: ask again.
                Err(_) => w.request(eur(700), 300, t).unwrap(),
            };
            let payment = p.pay(&req, t).unwrap();
            let receipt = w.receive(&payment, t).unwrap();
            p.confirm(&receipt).unwrap();
            assert_eq!(balance(w), before_w + 700, "{label}");
            assert_eq!(balance(w) + balance(&p), su.total, "{label}: conservation");
        }
        Op::Pay => {
            if outcome == Outcome::After {
                assert_eq!(balance(w), before_w - 2_500, "{label}: debited");
            }
            // The payee asks again with the same request: the same Payment, debited once.
            let payment = w.pay(&su.input, t).unwrap();
            assert_eq!(Ok(&payment), ref_out, "{label}: not the same Payment");
            if let Ok(o) = out {
                assert_eq!(o, &payment, "{label}");
            }
            assert_eq!(balance(w), before_w - 2_500, "{label}: debited once");
            let receipt = p.receive(&payment, t).unwrap();
            w.confirm(&receipt).unwrap();
            assert_eq!(balance(w) + balance(&p), su.total, "{label}: conservation");
        }
        Op::Receive => {
            if outcome == Outcome::After {
                assert_eq!(balance(w), before_w + 2_500, "{label}: credited");
            }
            let receipt = w.receive(&su.input, t).unwrap();
            assert_eq!(Ok(&receipt), ref_out, "{label}: not the same Receipt");
            assert_eq!(balance(w), before_w + 2_500, "{label}: credited once");
            p.confirm(&receipt).unwrap();
            assert_eq!(balance(w) + balance(&p), su.total, "{label}: conservation");
        }
        Op::Confirm => {
            w.confirm(&su.input).unwrap();
            assert_eq!(observe(w, t), r.after_obs, "{label}");
            assert_eq!(balance(w) + balance(&p), su.total, "{label}: conservation");
        }
        Op::Redeem => {
            let redeem = ref_out.unwrap().clone();
            match outcome {
                // The Redeem entry is sealed in the log: the app recovers it there,
                // and the sync report carries it to the issuer.
                Outcome::After => assert!(w.unsynced_outgoing().contains(&redeem), "{label}"),
                Outcome::Before => {
                    assert_eq!(w.redeem(eur(4_000), t).unwrap(), redeem, "{label}");
                }
            }
            if let Ok(o) = out {
                assert_eq!(o, &redeem, "{label}");
            }
            let report = w.sync_report(t).unwrap();
            let rep = Signed::<SyncReport>::decode(&report).unwrap();
            let redeems = rep.body().outgoing.iter().filter(|e| **e == redeem).count();
            assert_eq!(redeems, 1, "{label}: the issuer sees the redeem once");
            assert_eq!(rep.body().outgoing.len(), 1, "{label}: no other redeem");
            assert_eq!(balance(w), before_w - 4_000, "{label}: debited once");
        }
        Op::SyncReport => {
            let report = w.sync_report(t).unwrap();
            let rep = Signed::<SyncReport>::decode(&report).unwrap();
            let expect_seq = match outcome {
                Outcome::Before => 1,
                Outcome::After => 2,
            };
            assert_eq!(rep.body().report_seq, expect_seq, "{label}");
            let mut s = Scheme::new(su.suite);
            let resp = s.respond(&report, t, WalletCommand::None, vec![], None);
            w.apply_sync_response(&resp, t).unwrap();
            assert_eq!(balance(w), before_w, "{label}");
            assert_eq!(w.status(t).unsynced_entries, 0, "{label}");
        }
        Op::ApplySyncResponse => {
            let again = w.apply_sync_response(&su.input, t);
            match outcome {
                Outcome::Before => {
                    assert_eq!(again.unwrap().vouchers_applied, vec![2], "{label}");
                }
                Outcome::After => assert_eq!(again, Err(WalletError::StaleSyncResponse)),
            }
            assert_eq!(
                balance(w),
                before_w + 2_000,
                "{label}: voucher credited once"
            );
            // Only the voucher's load, applied after the report, is left to sync.
            assert_eq!(w.status(t).unsynced_entries, 1, "{label}");
        }
        Op::ReceiveEvidence => {
            let again = w.receive(&su.input, t);
            assert!(
                matches!(
                    again,
                    Err(WalletError::PayerRolledBack {
                        seen: 1,
                        got: 1,
                        ..
                    })
                ),
                "{label}: {again:?}"
            );
            assert_eq!(
                w.evidence(),
                std::slice::from_ref(&su.input),
                "{label}: evidence kept once"
            );
            assert_eq!(balance(w), before_w, "{label}: no credit");
        }
        Op::OpenRolledBack => {
            // Whatever the crash left, the restored state opens locked.
            assert_eq!(w.lock(), Some(&LockReason::RolledBack), "{label}");
            let req = p.request(eur(10), 60, t).unwrap();
            assert_eq!(
                w.pay(&req, t),
                Err(WalletError::Locked(LockReason::RolledBack)),
                "{label}"
            );
            let report = w.sync_report(t).unwrap();
            assert!(Signed::<SyncReport>::decode(&report).unwrap().body().locked);
            assert_eq!(balance(w), before_w, "{label}");
        }
    }
}

/// A copy of host storage (as a restart after the crash sees it, or a run's
/// own copy of the state before the operation).
fn copy_host(store: &MemoryBlobStore, counter: &MemoryCounter) -> (MemoryBlobStore, MemoryCounter) {
    let copy = MemoryBlobStore::new();
    for name in store.names() {
        copy.put(&name, &store.get(&name).unwrap());
    }
    (copy, MemoryCounter::new(counter.value()))
}

/// W on the host vault `h` and P in memory, prepared for `op`; returns the
/// case and W's storage before the operation.
fn host_case<H: HostVault>(h: &H, op: Op, suite: Suite) -> (Case, MemoryBlobStore, MemoryCounter) {
    let mut s = Scheme::new(suite);
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut w = s.enroll(h.create(&store, counter.clone()).unwrap(), suite, T0);
    let mut p = s.enroll(MemoryVault::new(), suite, T0);
    let t = T0.plus(10);
    let (input, in_flight) = if op == Op::OpenRolledBack {
        s.load(&mut w, 10_000, t);
        let aside = store.get(h.state_blob()).unwrap();
        pay(&mut w, &mut p, 1_000, t);
        drop(w);
        store.put(h.state_blob(), &aside);
        (Vec::new(), None)
    } else {
        let input = prepare(op, &mut s, &mut w, &mut p, t);
        let in_flight = if op == Op::Receive { 2_500 } else { 0 };
        // W + P + the payment paid but not yet received.
        let total = balance(&w) + balance(&p) + in_flight;
        drop(w);
        (input, Some(total))
    };
    let loaded = h.open(&store, counter.clone()).unwrap().load().unwrap();
    assert_eq!(loaded.rollback.is_some(), op == Op::OpenRolledBack);
    let plain = loaded.state.unwrap();
    let before_obs = observe(&Wallet::open(h.holding(&plain)).unwrap(), now());
    let peer = p.into_vault();
    let total = in_flight.unwrap_or_else(|| {
        before_obs.status.balance.unwrap().minor + balance(&Wallet::open(peer.clone()).unwrap())
    });
    let case = Case {
        op,
        suite,
        peer,
        input,
        before_plain: plain,
        before_version: loaded.version,
        before_obs,
        total,
    };
    (case, store, counter)
}

/// Every blob replace of `op` (suite `suite`) on the host vault `h`, before
/// and after it is applied: after the crash and a restart the vault holds
/// the state before or after, and the exchange finishes with no money made
/// or lost. Returns the crashes (2: one commit is one replace). The
/// signatures of `suite` on `h` must be deterministic (a retry re-signs and
/// is compared byte for byte): Ed25519 always is.
pub fn crash_host<H: HostVault>(h: &H, op: Op, suite: Suite) -> usize {
    let (su, base_store, base_counter) = host_case(h, op, suite);
    let view = |plain: &[u8]| observe(&Wallet::open(h.holding(plain)).unwrap(), now());
    let open =
        |store: &MemoryBlobStore, counter: &MemoryCounter| h.open(store, counter.clone()).unwrap();

    // The reference: the operation without a fault.
    let (store, counter) = copy_host(&base_store, &base_counter);
    let vault = open(&store, &counter);
    // Count the operation's replaces only (not the open's).
    store.fail_replace_at(u64::MAX, BlobCrashPoint::BeforeReplace);
    let (out, w) = run(op, vault, &su.input);
    drop(w);
    let ops = usize::try_from(store.replaces()).unwrap();
    let loaded = open(&store, &counter).load().unwrap();
    assert_eq!(loaded.rollback, None, "{}: reference", h.name());
    let after_plain = loaded.state.unwrap();
    let r = Reference {
        out,
        after_obs: view(&after_plain),
        after_plain,
        after_version: loaded.version,
        ops,
    };
    assert_eq!(r.ops, 1, "{}/{op:?}: one commit, one replace", h.name());
    match op {
        Op::ReceiveEvidence => assert!(matches!(r.out, Err(WalletError::PayerRolledBack { .. }))),
        Op::OpenRolledBack => {
            assert_eq!(r.after_obs.status.locked, Some(LockReason::RolledBack));
        }
        _ => assert!(r.out.is_ok(), "{op:?}: {:?}", r.out),
    }

    let mut fired = 0;
    for point in [BlobCrashPoint::BeforeReplace, BlobCrashPoint::AfterReplace] {
        for n in 0.. {
            let label = format!("{op:?}/{suite}/{}/{point:?}/n={n}", h.name());
            let (store, counter) = copy_host(&base_store, &base_counter);
            let vault = open(&store, &counter);
            store.fail_replace_at(n, point);
            let (out, w) = run(op, vault, &su.input);
            drop(w);
            let crashed = store.is_crashed();
            if crashed {
                assert_eq!(out, Err(WalletError::Vault(VaultError::Crashed)), "{label}");
                store.restart();
            } else {
                assert_eq!(n, 1, "{label}: one commit, one replace");
                if deterministic(op) {
                    assert_eq!(out, r.out, "{label}");
                }
            }
            // Disarm: the finish commits again.
            store.fail_replace_at(u64::MAX, point);
            let mut v = open(&store, &counter);
            let loaded = v.load().unwrap_or_else(|e| panic!("{label}: load: {e}"));
            if op != Op::OpenRolledBack {
                assert_eq!(loaded.rollback, None, "{label}: false rollback");
            }
            let outcome = classify(
                &su,
                &r,
                loaded.state.as_deref().unwrap(),
                loaded.version,
                (su.before_version, r.after_version),
                &label,
                &view,
            );
            let expect = match (crashed, point) {
                (true, BlobCrashPoint::BeforeReplace) => Outcome::Before,
                _ => Outcome::After,
            };
            assert_eq!(outcome, expect, "{label}");
            let mut w = Wallet::open(v).unwrap_or_else(|e| panic!("{label}: open: {e}"));
            finish(&su, &r, &mut w, outcome, &out, &label);
            let end = observe(&w, now());
            drop(w);
            let w = Wallet::open(open(&store, &counter)).unwrap();
            assert_eq!(observe(&w, now()), end, "{label}: finish not durable");
            if !crashed {
                break;
            }
            fired += 1;
        }
    }
    fired
}
