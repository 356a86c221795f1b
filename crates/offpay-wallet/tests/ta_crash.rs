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
//! [`CrashPoint`], and on host storage: `offpay_test_support::ta_crash::crash_host`
//! (the suite every vault backend runs, offpay-hsm's too) on a `SealedVault`
//! over a `MemoryBlobStore`, the same operation prepared there, crashing at
//! every blob replace, before or after it is applied.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::fs;
use std::path::{Path, PathBuf};

use offpay_protocol::Suite;
use offpay_test_support::host::SealedHost;
use offpay_test_support::ta_crash::{
    Case, Op, Outcome, Reference, balance, classify, crash_host, deterministic, finish, now,
    prepare, run,
};
use offpay_test_support::*;
use offpay_wallet::vault::{
    CrashPoint, FaultyFs, KdfParams, MemoryVault, SealedFileVault, Vault, VaultError,
};
use offpay_wallet::{LockReason, Wallet, WalletError};

const PIN: &[u8] = b"8642";
const SECRET: [u8; 32] = [0x3c; 32];
const SUITES: [Suite; 2] = [Suite::Ed25519, Suite::P256];

/// The wallet under test (W, sealed on disk) and its counterparty (P, in
/// memory) just before the operation.
struct Setup {
    case: Case,
    _tmp: tempfile::TempDir,
    /// W's vault directory before the operation (copied for every run).
    base: PathBuf,
}

impl std::ops::Deref for Setup {
    type Target = Case;
    fn deref(&self) -> &Case {
        &self.case
    }
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
                case: Case {
                    op,
                    suite,
                    total: before_obs.status.balance.unwrap().minor + balance(&pw),
                    peer,
                    input: Vec::new(),
                    before_plain: plain,
                    before_version: loaded.version,
                    before_obs,
                },
                _tmp: tmp,
                base,
            };
        }
        _ => prepare(op, &mut s, &mut w, &mut p, t),
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
        case: Case {
            op,
            suite,
            peer: p.into_vault(),
            input,
            before_plain: plain,
            before_version: loaded.version,
            before_obs,
            total,
        },
        _tmp: tmp,
        base,
    }
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

/// All write points of one operation on the sealed vault; returns the number of
/// (write point, torn) combinations exercised (the fault fired in each).
fn crash_sealed(su: &Setup, r: &Reference) -> usize {
    let view = |plain: &[u8]| observe(&wallet_of(plain), now());
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
                &view,
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
    let view = |plain: &[u8]| observe(&wallet_of(plain), now());
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
                &view,
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
        let b = crash_host(&SealedHost, op, suite);
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
