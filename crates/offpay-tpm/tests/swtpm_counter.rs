//! TpmCounter against a real swtpm started by each test (skipped with a
//! printed reason when swtpm is not installed, unless OFFPAY_REQUIRE_TPM=1).

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.
use offpay_protocol::entropy::OsEntropy;
use offpay_tpm::command::{Tpm, attr};
use offpay_tpm::swtpm::{self, Swtpm};
use offpay_tpm::transport::{Endpoint, Transport};
use offpay_tpm::{COUNTER_ATTRS, TpmCounter, TpmCounterConfig};
use offpay_wallet::vault::{DirStore, KdfParams, MonotonicCounter, SealedVault, Vault, VaultError};

const INDEX: u32 = 0x0150_0010;

fn start(name: &str, dir: &std::path::Path) -> Option<Swtpm> {
    if !swtpm::installed() {
        assert!(
            !swtpm::required(),
            "[{name}] swtpm required (OFFPAY_REQUIRE_TPM=1) but not installed"
        );
        eprintln!("[{name}] SKIPPED: swtpm not installed (bash .ci/tpm installs it)");
        return None;
    }
    Some(Swtpm::start(dir).unwrap())
}

fn config(t: &Swtpm) -> TpmCounterConfig {
    TpmCounterConfig::new(Endpoint::parse(&t.endpoint()).unwrap(), INDEX).unwrap()
}

fn raw_tpm(t: &Swtpm) -> Tpm {
    let mut tpm = Tpm::new(Transport::connect(&Endpoint::parse(&t.endpoint()).unwrap()).unwrap());
    tpm.startup().unwrap();
    tpm
}

fn device_err(r: Result<impl std::fmt::Debug, VaultError>, needle: &str) {
    match r {
        Err(VaultError::CounterDevice { reason, .. }) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!("expected CounterDevice({needle}), got {other:?}"),
    }
}

#[test]
fn tpm_counter_read_advance_and_persist() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut t) = start(
        "tpm_counter_read_advance_and_persist",
        &tmp.path().join("s"),
    ) else {
        return;
    };
    let mut c = TpmCounter::create(config(&t)).unwrap();
    assert_eq!(c.read(), Ok(0));
    c.advance_to(0).unwrap();
    c.advance_to(3).unwrap();
    assert_eq!(c.read(), Ok(3));
    assert_eq!(c.advance_to(2), Err(VaultError::CounterRegressed));
    assert_eq!(c.read(), Ok(3));
    // Defining the same index again is refused.
    device_err(TpmCounter::create(config(&t)), "already defined");
    // Reconnect.
    drop(c);
    let mut c = TpmCounter::open(config(&t)).unwrap();
    assert_eq!(c.read(), Ok(3));
    c.advance_to(5).unwrap();
    // swtpm restarted on the same state directory (and port): same value,
    // and the old handle reconnects by itself.
    let port = t.port();
    t.stop();
    device_err(c.read(), "");
    let t2 = Swtpm::start_on(tmp.path().join("s").as_path(), port).unwrap();
    assert_eq!(c.read(), Ok(5));
    let mut c2 = TpmCounter::open(config(&t2)).unwrap();
    assert_eq!(c2.read(), Ok(5));
    c2.destroy().unwrap();
    device_err(TpmCounter::open(config(&t2)), "not defined");
}

#[test]
fn tpm_counter_absent_tpm_is_a_clear_error() {
    // A port nobody listens on, and a device path that does not exist. A
    // privileged port: an ephemeral one freed here could be taken at once by
    // the swtpm another test of this binary starts (seen: "connection to the
    // TPM lost" instead of refused).
    let port = 1;
    let cfg = TpmCounterConfig::new(
        Endpoint::parse(&format!("tpm:127.0.0.1:{port}")).unwrap(),
        INDEX,
    )
    .unwrap();
    device_err(TpmCounter::open(cfg.clone()), "connection refused");
    device_err(TpmCounter::create(cfg), "connection refused");
    let dev =
        TpmCounterConfig::new(Endpoint::parse("tpm:/nonexistent/tpmrm0").unwrap(), INDEX).unwrap();
    device_err(TpmCounter::open(dev), "cannot be opened");
    assert!(TpmCounterConfig::new(Endpoint::Device("/dev/tpmrm0".into()), 7).is_err());
}

#[test]
fn tpm_counter_wiped_tpm_and_wrong_type_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut t) = start(
        "tpm_counter_wiped_tpm_and_wrong_type_are_refused",
        &tmp.path().join("a"),
    ) else {
        return;
    };
    let mut c = TpmCounter::create(config(&t)).unwrap();
    c.advance_to(2).unwrap();
    let port = t.port();
    t.stop();
    // Restarted with an empty state: the index is gone.
    let t = Swtpm::start_on(&tmp.path().join("empty"), port).unwrap();
    device_err(c.read(), "not defined");
    device_err(c.advance_to(3), "not defined");
    device_err(TpmCounter::open(config(&t)), "not defined");
    // The host puts an ordinary index (and a base) at the wallet's index.
    let mut tpm = raw_tpm(&t);
    tpm.nv_define(
        b"",
        INDEX,
        b"",
        attr::AUTHREAD | attr::AUTHWRITE | attr::NO_DA,
        8,
    )
    .unwrap();
    tpm.nv_write(INDEX, b"", &0u64.to_be_bytes()).unwrap();
    drop(tpm);
    device_err(TpmCounter::open(config(&t)), "not a TPM_NT_COUNTER");
    device_err(c.read(), "not a TPM_NT_COUNTER");
    let mut tpm = raw_tpm(&t);
    // A real counter there but an unlocked base: refused too.
    tpm.nv_undefine(b"", INDEX).unwrap();
    tpm.nv_define(b"", INDEX, b"", COUNTER_ATTRS, 8).unwrap();
    tpm.nv_increment(INDEX, b"").unwrap();
    tpm.nv_define(
        b"",
        INDEX + 1,
        b"",
        attr::AUTHREAD | attr::AUTHWRITE | attr::NO_DA,
        8,
    )
    .unwrap();
    tpm.nv_write(INDEX + 1, b"", &0u64.to_be_bytes()).unwrap();
    drop(tpm);
    device_err(TpmCounter::open(config(&t)), "write-locked");
}

#[test]
fn tpm_counter_refused_increment_leaves_value() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = start(
        "tpm_counter_refused_increment_leaves_value",
        &tmp.path().join("s"),
    ) else {
        return;
    };
    let mut c = TpmCounter::create(config(&t)).unwrap();
    c.advance_to(1).unwrap();
    // Wrong auth: every read and increment refused, nothing moves.
    let mut wrong = config(&t);
    wrong.auth = b"not the auth".to_vec();
    device_err(TpmCounter::open(wrong), "authorization failed");
    assert_eq!(c.read(), Ok(1));
    // A counter that cannot be incremented (WRITEDEFINE + NV_WriteLock).
    let locked = INDEX + 0x100;
    let mut tpm = raw_tpm(&t);
    tpm.nv_define(b"", locked, b"", COUNTER_ATTRS | attr::WRITEDEFINE, 8)
        .unwrap();
    tpm.nv_increment(locked, b"").unwrap();
    let before = tpm.nv_read_u64(locked, b"").unwrap();
    tpm.nv_write_lock(locked, b"").unwrap();
    device_err(tpm.nv_increment(locked, b""), "locked");
    assert_eq!(tpm.nv_read_u64(locked, b""), Ok(before));
}

fn kdf() -> KdfParams {
    KdfParams::TEST
}

#[test]
fn tpm_counter_whole_directory_restore_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = start(
        "tpm_counter_whole_directory_restore_is_caught",
        &tmp.path().join("s"),
    ) else {
        return;
    };
    let wallet = tmp.path().join("wallet");
    std::fs::create_dir(&wallet).unwrap();
    let secret = [7u8; 32];
    let counter = TpmCounter::create(config(&t)).unwrap();
    let mut v = SealedVault::create(
        DirStore::new(&wallet),
        counter,
        b"1234",
        &secret,
        kdf(),
        OsEntropy::shared(),
    )
    .unwrap();
    v.commit(b"balance 100").unwrap();
    drop(v);
    // The attacker copies the whole directory.
    let copy = tmp.path().join("copy");
    copy_dir(&wallet, &copy);
    let open = |dir: &std::path::Path| {
        SealedVault::open(
            DirStore::new(dir),
            TpmCounter::open(config(&t)).unwrap(),
            b"1234",
            &secret,
            OsEntropy::shared(),
        )
        .unwrap()
    };
    let mut v = open(&wallet);
    v.commit(b"balance 40").unwrap();
    drop(v);
    // ... and restores it after spending.
    std::fs::remove_dir_all(&wallet).unwrap();
    copy_dir(&copy, &wallet);
    let mut v = open(&wallet);
    let l = v.load().unwrap();
    assert_eq!(l.state.as_deref(), Some(&b"balance 100"[..]));
    let rb = l.rollback.expect("rollback detected");
    assert_eq!((rb.state_version, rb.counter), (1, 2));
}

#[test]
fn tpm_counter_crash_between_state_write_and_increment() {
    // The crash point of vault_crash.rs that concerns counters: the state is
    // written, the counter not advanced (TPM unreachable at that moment).
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut t) = start(
        "tpm_counter_crash_between_state_write_and_increment",
        &tmp.path().join("s"),
    ) else {
        return;
    };
    let wallet = tmp.path().join("wallet");
    std::fs::create_dir(&wallet).unwrap();
    let secret = [9u8; 32];
    let mut v = SealedVault::create(
        DirStore::new(&wallet),
        TpmCounter::create(config(&t)).unwrap(),
        b"1234",
        &secret,
        kdf(),
        OsEntropy::shared(),
    )
    .unwrap();
    v.commit(b"one").unwrap();
    let port = t.port();
    t.stop();
    // The TPM is gone: the commit fails after the state write.
    device_err(v.commit(b"two"), "");
    device_err(v.load(), "");
    drop(v);
    let t = Swtpm::start_on(&tmp.path().join("s"), port).unwrap();
    let mut c = TpmCounter::open(config(&t)).unwrap();
    assert_eq!(c.read(), Ok(1));
    let mut v = SealedVault::open(
        DirStore::new(&wallet),
        c,
        b"1234",
        &secret,
        OsEntropy::shared(),
    )
    .unwrap();
    // Reopened: the interrupted commit is completed (counter advanced to 2).
    let l = v.load().unwrap();
    assert_eq!(
        (l.state.as_deref(), l.version, l.rollback),
        (Some(&b"two"[..]), 2, None)
    );
    assert_eq!(TpmCounter::open(config(&t)).unwrap().read(), Ok(2));
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}
