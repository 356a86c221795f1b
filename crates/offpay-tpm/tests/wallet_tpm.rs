//! A wallet whose vault counter is a TPM (a real swtpm): the whole-directory
//! copy-and-restore attack opens locked, and a payment whose counter cannot
//! advance fails without moving the balance or the chain.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::path::Path;

use offpay_protocol::Suite;
use offpay_protocol::entropy::OsEntropy;
use offpay_test_support::*;
use offpay_tpm::swtpm::{self, Swtpm};
use offpay_tpm::transport::Endpoint;
use offpay_tpm::{TpmCounter, TpmCounterConfig};
use offpay_wallet::vault::{DirStore, KdfParams, MemoryVault, SealedVault};
use offpay_wallet::{LockReason, Wallet, WalletError};

const PIN: &[u8] = b"1357";
const SECRET: [u8; 32] = [0x7e; 32];
const INDEX: u32 = 0x0150_0200;

type TpmVault = SealedVault<DirStore, TpmCounter>;

fn start(name: &str, dir: &Path) -> Option<Swtpm> {
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

fn create(dir: &Path, t: &Swtpm) -> TpmVault {
    std::fs::create_dir_all(dir).unwrap();
    let c = TpmCounter::create(config(t)).unwrap();
    SealedVault::create(
        DirStore::new(dir),
        c,
        PIN,
        &SECRET,
        KdfParams::TEST,
        OsEntropy::shared(),
    )
    .unwrap()
}

fn open(dir: &Path, t: &Swtpm) -> Wallet<TpmVault> {
    let c = TpmCounter::open(config(t)).unwrap();
    let v = SealedVault::open(DirStore::new(dir), c, PIN, &SECRET, OsEntropy::shared()).unwrap();
    Wallet::open(v).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn tpm_wallet_whole_directory_restore_opens_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(t) = start(
        "tpm_wallet_whole_directory_restore_opens_locked",
        &tmp.path().join("tpm"),
    ) else {
        return;
    };
    let da = tmp.path().join("alice");
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(create(&da, &t), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    drop(alice);
    // The attacker copies the whole wallet directory (every file the host has) ...
    let copy = tmp.path().join("copy");
    copy_dir(&da, &copy);
    // ... pays ...
    let mut alice = open(&da, &t);
    pay(&mut alice, &mut bob, 1_000, T0.plus(10));
    assert_eq!(alice.balance().unwrap().minor, 9_000);
    drop(alice);
    // ... and restores all of it to spend the money again: caught offline.
    std::fs::remove_dir_all(&da).unwrap();
    copy_dir(&copy, &da);
    let mut alice = open(&da, &t);
    assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
    assert_eq!(alice.balance().unwrap().minor, 10_000, "the restored state");
    let req = bob.request(eur(1_000), 60, T0.plus(20)).unwrap();
    assert_eq!(
        alice.pay(&req, T0.plus(20)),
        Err(WalletError::Locked(LockReason::RolledBack))
    );
}

#[test]
fn tpm_wallet_never_pays_past_a_counter_it_cannot_advance() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut t) = start(
        "tpm_wallet_never_pays_past_a_counter_it_cannot_advance",
        &tmp.path().join("tpm"),
    ) else {
        return;
    };
    let da = tmp.path().join("alice");
    let mut s = Scheme::new(Suite::Ed25519);
    let mut alice = s.enroll(create(&da, &t), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    pay(&mut alice, &mut bob, 1_000, T0.plus(5));
    let (balance, head) = (alice.balance().unwrap().minor, alice.chain_head());
    // The TPM goes away (unplugged, reset, host refuses): no payment leaves.
    t.stop();
    for i in 0..3 {
        let req = bob.request(eur(500), 60, T0.plus(10 + i)).unwrap();
        assert!(alice.pay(&req, T0.plus(10 + i)).is_err(), "attempt {i}");
        assert_eq!(alice.balance().unwrap().minor, balance);
        assert_eq!(alice.chain_head(), head);
    }
    assert_eq!(bob.balance().unwrap().minor, 1_000);
}
