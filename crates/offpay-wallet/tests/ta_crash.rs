//! Crash consistency of whole TA operations (DESIGN.md §4, §5).
//!
//! For each operation (apply_voucher, request, pay, receive, confirm, redeem,
//! sync_report, apply_sync_response, plus receive of a rolled-back payer's
//! payment and the open of a rolled-back state, which both commit), the wallet
//! under test runs on a [`SealedFileVault`] whose file system fails the k-th
//! mutating operation and every one after it (a dead process, optionally with
//! a torn write), for k = 0, 1, 2, ... until the operation completes without
//! the fault firing. The directory is then reopened with the real file system
//! and the wallet must hold exactly the state before or exactly the state
//! after the operation (the sealed plaintext, byte for byte, and everything the
//! app can observe), and finishing the exchange (retry, or the next step)
//! must neither create nor lose money: a payer left debited gets the
//! byte-identical Payment back on retry, a payee left credited the same
//! Receipt, a voucher is credited once, a redeem entry stays in the log for
//! the issuer. The same with [`MemoryVault::fail_commit_at_with`] at every
//! [`CrashPoint`], and on host storage: the same directory's blobs copied
//! into a [`MemoryBlobStore`] with a [`MemoryCounter`] at the counter file's
//! value (`SealedVault`), crashing at every blob replace, before or after it
//! is applied ([`BlobCrashPoint`]).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};

use offpay_protocol::entropy::OsEntropy;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{SyncReport, WalletCommand};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_test_support::*;
use offpay_wallet::vault::{
    BlobCrashPoint, CrashPoint, FaultyFs, KdfParams, MemoryBlobStore, MemoryCounter, MemoryVault,
    SealedFileVault, SealedVault, Vault, VaultError,
};
use offpay_wallet::{LockReason, Wallet, WalletError};

const PIN: &[u8] = b"8642";
const SECRET: [u8; 32] = [0x3c; 32];
const SUITES: [Suite; 2] = [Suite::Ed25519, Suite::P256];

/// When the operation under test runs (and the retries after the crash).
fn now() -> UnixSeconds {
    T0.plus(100)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    ApplyVoucher,
    Request,
    Pay,
    Receive,
    Confirm,
    Redeem,
    SyncReport,
    ApplySyncResponse,
    /// `receive` of a payment from a payer whose seq was already seen: it
    /// commits the evidence and refuses.
    ReceiveEvidence,
    /// `Wallet::open` of a rolled-back state: it commits the lock.
    OpenRolledBack,
}

/// The wallet under test (W, sealed on disk) and its counterparty (P, in
/// memory) just before the operation.
struct Setup {
    op: Op,
    suite: Suite,
    _tmp: tempfile::TempDir,
    /// W's vault directory before the operation (copied for every run).
    base: PathBuf,
    /// P's vault before the operation.
    peer: MemoryVault,
    /// The operation's input (voucher, request, payment, receipt, response).
    input: Vec<u8>,
    /// W's sealed plaintext before the operation, and its version.
    before_plain: Vec<u8>,
    before_version: u64,
    before_obs: WalletObs,
    /// W + P balances before the operation, plus money in flight between them.
    total: u64,
}

/// The operation run without a fault.
struct Reference {
    out: Result<Vec<u8>, WalletError>,
    after_plain: Vec<u8>,
    after_obs: WalletObs,
    /// The sealed version after the operation.
    after_version: u64,
    /// Mutating file operations the operation does.
    ops: usize,
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn open_vault(dir: &Path) -> SealedFileVault {
    SealedFileVault::open(dir, PIN, &SECRET).unwrap()
}

/// A wallet over a memory vault holding exactly `plain` (to observe a state).
fn wallet_of(plain: &[u8]) -> Wallet<MemoryVault> {
    let mut v = MemoryVault::new();
    v.commit(plain).unwrap();
    Wallet::open(v).unwrap()
}

fn balance<V: Vault>(w: &Wallet<V>) -> u64 {
    w.balance().unwrap().minor
}

/// A scratch directory: in memory (`/dev/shm`) where there is one, as the runs
/// do thousands of fsyncs; a process crash (what `FaultyFs` models) keeps the
/// page cache either way.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("offpay-ta-crash")
            .tempdir_in(shm)
    {
        return d;
    }
    tempfile::tempdir().unwrap()
}

#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one scenario told end to end; short names follow the fixtures and formulas
fn setup(op: Op, suite: Suite) -> Setup {
    let tmp = scratch();
    let base = tmp.path().join("base");
    fs::create_dir_all(&base).unwrap();
    let mut s = Scheme::new(suite);
    let vault = SealedFileVault::create(&base, PIN, &SECRET, KdfParams::TEST).unwrap();
    let mut w = s.enroll(vault, suite, T0);
    let mut p = s.enroll(MemoryVault::new(), suite, T0);
    let t = T0.plus(10);
    let input = match op {
        Op::ApplyVoucher => {
            s.load(&mut w, 5_000, t);
            s.voucher(w.wallet_id(), 3_000, t)
        }
        Op::Request => {
            s.load(&mut p, 10_000, t);
            Vec::new()
        }
        Op::Pay => {
            s.load(&mut w, 10_000, t);
            p.request(eur(2_500), 3600, t).unwrap()
        }
        Op::Receive => {
            s.load(&mut p, 10_000, t);
            let req = w.request(eur(2_500), 3600, t).unwrap();
            p.pay(&req, t).unwrap()
        }
        Op::Confirm => {
            s.load(&mut w, 10_000, t);
            let req = p.request(eur(2_500), 3600, t).unwrap();
            let payment = w.pay(&req, t).unwrap();
            p.receive(&payment, t).unwrap()
        }
        Op::Redeem => {
            s.load(&mut w, 10_000, t);
            Vec::new()
        }
        Op::SyncReport => {
            s.load(&mut w, 10_000, t);
            pay(&mut w, &mut p, 1_000, t);
            Vec::new()
        }
        Op::ApplySyncResponse => {
            s.load(&mut w, 10_000, t);
            pay(&mut w, &mut p, 1_000, t);
            let report = w.sync_report(t).unwrap();
            let v = s.voucher(w.wallet_id(), 2_000, t);
            s.respond(&report, t, WalletCommand::None, vec![v], None)
        }
        Op::ReceiveEvidence => {
            s.load(&mut p, 10_000, t);
            let mut clone = Wallet::open(p.vault().clone()).unwrap();
            pay(&mut p, &mut w, 1_000, t);
            let req = w.request(eur(500), 3600, t).unwrap();
            clone.pay(&req, t).unwrap()
        }
        Op::OpenRolledBack => {
            s.load(&mut w, 10_000, t);
            let aside = tmp.path().join("old.sealed");
            fs::copy(base.join("state.sealed"), &aside).unwrap();
            pay(&mut w, &mut p, 1_000, t);
            drop(w);
            fs::copy(&aside, base.join("state.sealed")).unwrap();
            let loaded = open_vault(&base).load().unwrap();
            assert!(loaded.rollback.is_some());
            let plain = loaded.state.unwrap();
            let peer = p.into_vault();
            let pw = Wallet::open(peer.clone()).unwrap();
            let before_obs = observe(&wallet_of(&plain), now());
            return Setup {
                op,
                suite,
                total: before_obs.status.balance.unwrap().minor + balance(&pw),
                _tmp: tmp,
                base,
                peer,
                input: Vec::new(),
                before_plain: plain,
                before_version: loaded.version,
                before_obs,
            };
        }
    };
    let in_flight = if op == Op::Receive { 2_500 } else { 0 };
    // W + P + the payment paid but not yet received.
    let total = balance(&w) + balance(&p) + in_flight;
    drop(w);
    let loaded = open_vault(&base).load().unwrap();
    assert_eq!(loaded.rollback, None);
    let plain = loaded.state.unwrap();
    let before_obs = observe(&wallet_of(&plain), now());
    Setup {
        op,
        suite,
        _tmp: tmp,
        base,
        peer: p.into_vault(),
        input,
        before_plain: plain,
        before_version: loaded.version,
        before_obs,
        total,
    }
}

/// Run the operation on the wallet in `vault`. Returns its result and the wallet
/// (`None` if the operation is the open and it failed).
fn run<V: Vault>(
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
fn deterministic(op: Op) -> bool {
    op != Op::Request
}

fn reference(su: &Setup) -> Reference {
    let dir = su._tmp.path().join("reference");
    copy_dir(&su.base, &dir);
    let probe = FaultyFs::new(usize::MAX);
    let vault = open_vault(&dir).with_fs(Box::new(probe.clone()));
    let (out, w) = run(su.op, vault, &su.input);
    assert!(!probe.fired());
    drop(w);
    let loaded = open_vault(&dir).load().unwrap();
    assert_eq!(loaded.rollback, None);
    let after_version = su_after_version(su);
    assert_eq!(loaded.version, after_version);
    let after_plain = loaded.state.unwrap();
    let after_obs = observe(&wallet_of(&after_plain), now());
    match su.op {
        Op::ReceiveEvidence => assert!(matches!(out, Err(WalletError::PayerRolledBack { .. }))),
        Op::OpenRolledBack => {
            assert_eq!(after_obs.status.locked, Some(LockReason::RolledBack));
        }
        _ => {
            assert!(out.is_ok(), "{:?}: {out:?}", su.op);
        }
    }
    // The same operation on a memory vault seals the same plaintext.
    if su.op != Op::OpenRolledBack {
        let mut mv = MemoryVault::new();
        mv.commit(&su.before_plain).unwrap();
        let (mout, w) = run(su.op, mv, &su.input);
        let mut mv = w.unwrap().into_vault();
        let mplain = mv.load().unwrap().state.unwrap();
        if deterministic(su.op) {
            assert_eq!(mout, out, "{:?}", su.op);
            assert_eq!(mplain, after_plain, "{:?}", su.op);
        }
    }
    Reference {
        out,
        after_plain,
        after_obs,
        after_version,
        ops: probe.ops(),
    }
}

/// The sealed version after the operation: one commit on top of the counter.
fn su_after_version(su: &Setup) -> u64 {
    if su.op == Op::OpenRolledBack {
        // The counter is ahead of the restored state: the lock is sealed above it.
        let mut v = open_vault(&su.base);
        let l = v.load().unwrap();
        l.rollback.unwrap().counter + 1
    } else {
        su.before_version + 1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Before,
    After,
}

/// Which of the two states the reopened vault holds (panics on anything else).
fn classify(
    su: &Setup,
    r: &Reference,
    plain: &[u8],
    version: u64,
    versions: (u64, u64),
    label: &str,
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
            assert_eq!(observe(&wallet_of(plain), now()), r.after_obs, "{label}");
        }
        assert_eq!(version, versions.1, "{label}: after state, wrong version");
        Outcome::After
    }
}

/// Finish the exchange from the reopened wallet `w` (state `outcome`; `out` is
/// what the crashed or completed operation returned) and check that money is
/// conserved.
#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one scenario told end to end; short names follow the fixtures and formulas
fn finish<V: Vault>(
    su: &Setup,
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

/// All write points of one operation on the sealed vault; returns the number of
/// (write point, torn) combinations exercised (the fault fired in each).
fn crash_sealed(su: &Setup, r: &Reference) -> usize {
    let mut fired = 0;
    let mut seen = Vec::new();
    for torn in [false, true] {
        let mut k = 0;
        loop {
            let label = format!("{:?}/{}/k={k}/torn={torn}", su.op, su.suite);
            let dir = su._tmp.path().join(format!("run-{k}-{torn}"));
            copy_dir(&su.base, &dir);
            let faulty = FaultyFs::new(k).torn(torn);
            let vault = open_vault(&dir).with_fs(Box::new(faulty.clone()));
            let (out, w) = run(su.op, vault, &su.input);
            drop(w);
            if faulty.fired() {
                assert_eq!(
                    out,
                    Err(WalletError::Vault(VaultError::Crashed)),
                    "{label}: a dead process returned something"
                );
            } else {
                assert_eq!(k, r.ops, "{label}: fewer write points than the reference");
                if deterministic(su.op) {
                    assert_eq!(out, r.out, "{label}");
                }
            }
            // Restart: reopen the directory with the real file system.
            let mut v = open_vault(&dir);
            let loaded = v.load().unwrap_or_else(|e| panic!("{label}: load: {e}"));
            if su.op != Op::OpenRolledBack {
                assert_eq!(loaded.rollback, None, "{label}: false rollback");
            }
            let outcome = classify(
                su,
                r,
                loaded.state.as_deref().unwrap(),
                loaded.version,
                (su.before_version, r.after_version),
                &label,
            );
            if faulty.fired() {
                seen.push(outcome);
            } else {
                assert_eq!(
                    outcome,
                    Outcome::After,
                    "{label}: completed but not applied"
                );
            }
            let mut w = Wallet::open(v).unwrap_or_else(|e| panic!("{label}: open: {e}"));
            finish(su, r, &mut w, outcome, &out, &label);
            // What the finish did is durable.
            let end = observe(&w, now());
            drop(w);
            let w = Wallet::open(open_vault(&dir)).unwrap();
            assert_eq!(observe(&w, now()), end, "{label}: finish not durable");
            fs::remove_dir_all(&dir).unwrap();
            if !faulty.fired() {
                break;
            }
            fired += 1;
            k += 1;
        }
    }
    // The write points straddle the commit: some crashes leave the old state, later
    // ones (after the rename of the new sealed file) the new one.
    assert!(
        seen.contains(&Outcome::Before) && seen.contains(&Outcome::After),
        "{:?}: {seen:?}",
        su.op
    );
    fired
}

/// The memory vault at every crash point; returns the combinations where it fired.
fn crash_memory(su: &Setup, r: &Reference) -> usize {
    let mut fired = 0;
    for point in [
        CrashPoint::BeforeWrite,
        CrashPoint::AfterStateWrite,
        CrashPoint::AfterCounter,
    ] {
        for n in 0.. {
            let label = format!("{:?}/{}/memory/{point:?}/n={n}", su.op, su.suite);
            let mut mv = MemoryVault::new();
            mv.commit(&su.before_plain).unwrap();
            mv.fail_commit_at_with(n, point);
            let (out, w) = run(su.op, mv, &su.input);
            let mut mv = w.unwrap().into_vault();
            let crashed = mv.is_crashed();
            // Disarm a fault that did not fire (the finish commits again).
            mv.fail_commit_at_with(u64::MAX, point);
            if crashed {
                assert_eq!(out, Err(WalletError::Vault(VaultError::Crashed)), "{label}");
                mv.restart();
            } else if deterministic(su.op) {
                assert_eq!(out, r.out, "{label}");
            }
            let loaded = mv.load().unwrap();
            assert_eq!(loaded.rollback, None, "{label}");
            let outcome = classify(
                su,
                r,
                loaded.state.as_deref().unwrap(),
                loaded.version,
                (1, 2),
                &label,
            );
            let expect = match (crashed, point) {
                (true, CrashPoint::BeforeWrite) => Outcome::Before,
                _ => Outcome::After,
            };
            assert_eq!(outcome, expect, "{label}");
            let mut w = Wallet::open(mv).unwrap();
            finish(su, r, &mut w, outcome, &out, &label);
            if !crashed {
                break;
            }
            fired += 1;
        }
    }
    fired
}

type BlobVault = SealedVault<MemoryBlobStore, MemoryCounter>;

/// The vault directory `dir` as host storage: its three blobs, byte for byte,
/// and a counter at the counter file's value.
fn blob_copy(dir: &Path) -> (MemoryBlobStore, MemoryCounter) {
    let store = MemoryBlobStore::new();
    for name in ["state.sealed", "pin-attempts", "device-check"] {
        store.put(name, &fs::read(dir.join(name)).unwrap());
    }
    let c = fs::read(dir.join("counter")).unwrap();
    assert_eq!(&c[..4], b"OFPC");
    let value = u64::from_le_bytes(c[4..].try_into().unwrap());
    (store, MemoryCounter::new(value))
}

fn open_blob(store: &MemoryBlobStore, counter: &MemoryCounter) -> BlobVault {
    SealedVault::open(
        store.clone(),
        counter.clone(),
        PIN,
        &SECRET,
        OsEntropy::shared(),
    )
    .unwrap()
}

/// Every blob replace of one operation on `SealedVault<MemoryBlobStore,
/// MemoryCounter>`, before and after it is applied; returns the crashes.
fn crash_blob(su: &Setup, r: &Reference) -> usize {
    let mut fired = 0;
    for point in [BlobCrashPoint::BeforeReplace, BlobCrashPoint::AfterReplace] {
        for n in 0.. {
            let label = format!("{:?}/{}/blob/{point:?}/n={n}", su.op, su.suite);
            let (store, counter) = blob_copy(&su.base);
            let vault = open_blob(&store, &counter);
            store.fail_replace_at(n, point);
            let (out, w) = run(su.op, vault, &su.input);
            drop(w);
            let crashed = store.is_crashed();
            if crashed {
                assert_eq!(out, Err(WalletError::Vault(VaultError::Crashed)), "{label}");
                store.restart();
            } else {
                assert_eq!(n, 1, "{label}: one commit, one replace");
                if deterministic(su.op) {
                    assert_eq!(out, r.out, "{label}");
                }
            }
            // Disarm: the finish commits again.
            store.fail_replace_at(u64::MAX, point);
            let mut v = open_blob(&store, &counter);
            let loaded = v.load().unwrap_or_else(|e| panic!("{label}: load: {e}"));
            if su.op != Op::OpenRolledBack {
                assert_eq!(loaded.rollback, None, "{label}: false rollback");
            }
            let outcome = classify(
                su,
                r,
                loaded.state.as_deref().unwrap(),
                loaded.version,
                (su.before_version, r.after_version),
                &label,
            );
            let expect = match (crashed, point) {
                (true, BlobCrashPoint::BeforeReplace) => Outcome::Before,
                _ => Outcome::After,
            };
            assert_eq!(outcome, expect, "{label}");
            let mut w = Wallet::open(v).unwrap_or_else(|e| panic!("{label}: open: {e}"));
            finish(su, r, &mut w, outcome, &out, &label);
            let end = observe(&w, now());
            drop(w);
            let w = Wallet::open(open_blob(&store, &counter)).unwrap();
            assert_eq!(observe(&w, now()), end, "{label}: finish not durable");
            if !crashed {
                break;
            }
            fired += 1;
        }
    }
    fired
}

/// All write points of `op`, both suites, sealed, host-storage and memory
/// vaults.
fn crash_op(op: Op) {
    let started = std::time::Instant::now();
    let mut sealed = 0;
    let mut memory = 0;
    let mut blob = 0;
    for suite in SUITES {
        let su = setup(op, suite);
        let r = reference(&su);
        let n = crash_sealed(&su, &r);
        assert_eq!(n, 2 * r.ops, "{op:?}/{suite}: every write point fired");
        assert!(
            r.ops >= 8,
            "{op:?}/{suite}: one commit is 8 file operations"
        );
        sealed += n;
        let b = crash_blob(&su, &r);
        assert_eq!(b, 2, "{op:?}/{suite}: one replace, two crash points");
        blob += b;
        if op != Op::OpenRolledBack {
            let m = crash_memory(&su, &r);
            assert_eq!(m, 3, "{op:?}/{suite}: one commit, three crash points");
            memory += m;
        }
        eprintln!(
            "{op:?}/{suite}: {} write points x (plain, torn) on the sealed vault",
            r.ops
        );
    }
    eprintln!(
        "{op:?}: {sealed} sealed-vault crashes, {blob} host-storage crashes, {memory} memory-vault crashes, {:?}",
        started.elapsed()
    );
}

#[test]
fn crash_apply_voucher() {
    crash_op(Op::ApplyVoucher);
}

#[test]
fn crash_request() {
    crash_op(Op::Request);
}

#[test]
fn crash_pay() {
    crash_op(Op::Pay);
}

#[test]
fn crash_receive() {
    crash_op(Op::Receive);
}

#[test]
fn crash_confirm() {
    crash_op(Op::Confirm);
}

#[test]
fn crash_redeem() {
    crash_op(Op::Redeem);
}

#[test]
fn crash_sync_report() {
    crash_op(Op::SyncReport);
}

#[test]
fn crash_apply_sync_response() {
    crash_op(Op::ApplySyncResponse);
}

#[test]
fn crash_receive_with_rollback_evidence() {
    crash_op(Op::ReceiveEvidence);
}

#[test]
fn crash_open_of_a_rolled_back_state() {
    crash_op(Op::OpenRolledBack);
}
