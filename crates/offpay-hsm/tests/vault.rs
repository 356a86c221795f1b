//! `HsmVault` against SoftHSM2: the wallet's signing keys and the sealing
//! key are token keys that never leave it; a state sealed in one token does
//! not open with another (or without its key); what the token signs
//! verifies with the wallet certificate; a token that fails mid-operation
//! moves no money and leaves the committed state intact; a restart adopts
//! the keys (a new login, and a new process over a directory and a file
//! counter); every refusal is its own error.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use cryptoki::object::ObjectClass;
use offpay_hsm::vault::{STATE_BLOB, login};
use offpay_hsm::{HsmVault, KeyMode, Token, TokenRef};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{Payment, Receipt};
use offpay_protocol::{SignError, Signer, Suite};
use offpay_test_support::*;
use offpay_wallet::vault::{
    DirStore, FileCounter, MemoryBlobStore, MemoryCounter, MemoryVault, Vault, VaultError,
};
use offpay_wallet::{Wallet, WalletError};

mod common;
use common::{PIN, module, open, token};

type V = HsmVault<MemoryBlobStore, MemoryCounter>;

fn create(tok: &Token, label: &str, store: &MemoryBlobStore, counter: &MemoryCounter) -> V {
    HsmVault::create(tok, label, store.clone(), counter.clone()).unwrap()
}

fn reopen(tok: &Token, label: &str, store: &MemoryBlobStore, counter: &MemoryCounter) -> V {
    HsmVault::open(tok, label, store.clone(), counter.clone()).unwrap()
}

#[test]
fn commits_load_and_reopen_after_a_new_login() {
    let Some(t) = token("v_basic") else { return };
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut v = create(&open(&t), "w1", &store, &counter);
    assert_eq!(v.load().unwrap().state, None);
    v.commit(b"one").unwrap();
    v.commit(&[7; 10_000]).unwrap();
    assert_eq!(counter.value(), 2);
    drop(v);
    // A new login (as after a restart): the key is adopted, nothing is made.
    let tok = login(&module(), &t, PIN).unwrap();
    let mut v = reopen(&tok, "w1", &store, &counter);
    let l = v.load().unwrap();
    assert_eq!(
        (l.state, l.version, l.rollback),
        (Some(vec![7; 10_000]), 2, None)
    );
    // The blob holds no plaintext.
    let blob = store.get(STATE_BLOB).unwrap();
    assert_eq!(&blob[..4], b"OFPH");
    assert!(!blob.windows(64).any(|w| w == [7; 64]));
    // A create on a store that holds a state, or with a used counter, is refused.
    let e = HsmVault::create(&tok, "w1", store.clone(), MemoryCounter::new(0)).unwrap_err();
    assert_eq!(e, VaultError::AlreadyExists);
    let e = HsmVault::create(&tok, "w2", MemoryBlobStore::new(), counter.clone()).unwrap_err();
    assert_eq!(e, VaultError::CounterNotFresh);
    // Bad labels.
    for label in ["", "a/b", &"x".repeat(65)] {
        let e = HsmVault::create(&tok, label, MemoryBlobStore::new(), MemoryCounter::new(0))
            .unwrap_err();
        assert!(
            matches!(
                e,
                VaultError::KeyDevice {
                    op: "vault label",
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[test]
fn wrong_pin_is_the_token_refusing_it() {
    let Some(t) = token("v_pin") else { return };
    drop(create(
        &open(&t),
        "w",
        &MemoryBlobStore::new(),
        &MemoryCounter::new(0),
    ));
    let e = login(&module(), &t, "not-the-pin").unwrap_err();
    assert_eq!(
        e,
        VaultError::TokenPinRefused {
            locked: false,
            rc: 0xa0
        },
        "{e}"
    );
    assert!(e.to_string().contains("refused the PIN"), "{e}");
    let e = login(&module(), &TokenRef::Label("v_no_such".into()), PIN).unwrap_err();
    assert!(
        matches!(
            e,
            VaultError::KeyDevice {
                op: "find token",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn the_sealing_key_and_the_signing_key_are_not_extractable() {
    let Some(tref) = token("v_extract") else {
        return;
    };
    let tok = open(&tref);
    let mut scheme = Scheme::new(Suite::Ed25519);
    let vault = create(&tok, "w", &MemoryBlobStore::new(), &MemoryCounter::new(0));
    let w = scheme.enroll(vault, Suite::Ed25519, T0);
    let key_label = w.vault().device_key_label(0);
    let seal_label = w.vault().sealing_key_label();
    // The signing key: CKA_VALUE refused, CKA_EXTRACTABLE false, sensitive.
    assert!(!tok.private_value_readable(&key_label).unwrap());
    for (label, class) in [
        (&key_label, ObjectClass::PRIVATE_KEY),
        (&seal_label, ObjectClass::SECRET_KEY),
    ] {
        let a = tok.key_protection(label, class).unwrap();
        assert!(
            a.sensitive && !a.extractable && !a.value_readable,
            "{label}: {a:?}"
        );
    }
    // The wallet's certified key is the token's key.
    let signer = tok
        .signer(&key_label, Suite::Ed25519, KeyMode::AdoptOnly)
        .unwrap();
    assert_eq!(w.certificate().unwrap().public_key(), &signer.public_key());
    assert_eq!(w.public_key(), signer.public_key());
}

#[test]
fn payment_and_receipt_signed_by_the_token_verify_with_the_certificates() {
    for (name, suite) in [("v_sig_ed", Suite::Ed25519), ("v_sig_p256", Suite::P256)] {
        let Some(t) = token(name) else { return };
        let tok = open(&t);
        let mut s = Scheme::new(suite);
        let mut alice = s.enroll(
            create(
                &tok,
                "alice",
                &MemoryBlobStore::new(),
                &MemoryCounter::new(0),
            ),
            suite,
            T0,
        );
        let mut bob = s.enroll(
            create(&tok, "bob", &MemoryBlobStore::new(), &MemoryCounter::new(0)),
            suite,
            T0,
        );
        s.load(&mut alice, 10_000, T0);
        let t1 = T0.plus(5);
        let req = bob.request(eur(1_234), 300, t1).unwrap();
        let payment = alice.pay(&req, t1).unwrap();
        let receipt = bob.receive(&payment, t1).unwrap();
        alice.confirm(&receipt).unwrap();
        let p = Signed::<Payment>::decode(&payment).unwrap();
        p.verify(alice.certificate().unwrap().public_key()).unwrap();
        assert!(p.verify(bob.certificate().unwrap().public_key()).is_err());
        let r = Signed::<Receipt>::decode(&receipt).unwrap();
        r.verify(bob.certificate().unwrap().public_key()).unwrap();
        assert_eq!(alice.balance().unwrap().minor, 10_000 - 1_234);
        assert_eq!(bob.balance().unwrap().minor, 1_234);
        // Both keys are in the token, one per wallet vault.
        assert_ne!(alice.public_key(), bob.public_key());
    }
}

#[test]
fn ml_dsa_is_refused_by_name() {
    let Some(t) = token("v_mldsa") else { return };
    let s = Scheme::new(Suite::MlDsa44);
    let v = create(
        &open(&t),
        "w",
        &MemoryBlobStore::new(),
        &MemoryCounter::new(0),
    );
    let e = Wallet::create(v, Suite::MlDsa44, s.root.der(), T0)
        .err()
        .unwrap();
    assert!(
        matches!(
            e,
            WalletError::Vault(VaultError::KeyDevice {
                op: "device key",
                rc: 0x70,
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("ML-DSA-44"), "{e}");
}

#[test]
fn a_state_sealed_in_one_token_does_not_open_with_another_or_without_its_key() {
    let Some(t1) = token("v_tok_a") else { return };
    let Some(t2) = token("v_tok_b") else { return };
    let (a, b) = (open(&t1), open(&t2));
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut v = create(&a, "w", &store, &counter);
    v.commit(b"money").unwrap();
    drop(v);
    // The other token has no sealing key under the label.
    let e = HsmVault::open(&b, "w", store.clone(), counter.clone()).unwrap_err();
    assert!(
        matches!(
            e,
            VaultError::KeyDevice {
                op: "find sealing key",
                ..
            }
        ),
        "{e}"
    );
    // ... nor after it made one of its own under that label.
    drop(create(
        &b,
        "w",
        &MemoryBlobStore::new(),
        &MemoryCounter::new(0),
    ));
    let e = HsmVault::open(&b, "w", store.clone(), counter.clone()).unwrap_err();
    assert_eq!(e, VaultError::WrongDeviceSecret);
    // The blob under another vault label of the same token: not this vault's.
    drop(create(
        &a,
        "w2",
        &MemoryBlobStore::new(),
        &MemoryCounter::new(0),
    ));
    let e = HsmVault::open(&a, "w2", store.clone(), counter.clone()).unwrap_err();
    assert_eq!(e, VaultError::WrongDeviceSecret);
    // Edits of any byte are refused: the header (key id, version, IV), the
    // ciphertext and the tag.
    let blob = store.get(STATE_BLOB).unwrap();
    for i in [4, 5, 20, 21, 28, 29, 40, 41, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 1;
        store.put(STATE_BLOB, &bad);
        let e = HsmVault::open(&a, "w", store.clone(), counter.clone()).unwrap_err();
        let want = if (5..21).contains(&i) {
            VaultError::WrongDeviceSecret
        } else {
            VaultError::Tampered
        };
        assert_eq!(e, want, "byte {i}");
    }
    store.put(STATE_BLOB, &blob[..40]);
    assert_eq!(
        HsmVault::open(&a, "w", store.clone(), counter.clone()).unwrap_err(),
        VaultError::Tampered
    );
    store.put(STATE_BLOB, &blob);
    let mut v = reopen(&a, "w", &store, &counter);
    assert_eq!(v.load().unwrap().state.as_deref(), Some(&b"money"[..]));
    drop(v);
    // The sealing key deleted: the state cannot be opened any more.
    a.destroy_secret_key("w/seal").unwrap();
    let e = HsmVault::open(&a, "w", store.clone(), counter.clone()).unwrap_err();
    assert!(
        matches!(
            e,
            VaultError::KeyDevice {
                op: "find sealing key",
                ..
            }
        ),
        "{e}"
    );
}

/// A token, its reference, the scheme, Alice (HSM vault), Bob, Alice's store and counter.
type Funded = (
    Token,
    TokenRef,
    Scheme,
    Wallet<V>,
    Wallet<MemoryVault>,
    MemoryBlobStore,
    MemoryCounter,
);

/// Alice (HSM vault, Ed25519) with 10 000 loaded and one payment to Bob made.
fn funded(name: &str) -> Option<Funded> {
    let t = token(name)?;
    let tok = open(&t);
    let mut s = Scheme::new(Suite::Ed25519);
    let store = MemoryBlobStore::new();
    let counter = MemoryCounter::new(0);
    let mut alice = s.enroll(create(&tok, "alice", &store, &counter), Suite::Ed25519, T0);
    let mut bob = s.enroll(MemoryVault::new(), Suite::Ed25519, T0);
    s.load(&mut alice, 10_000, T0);
    pay(&mut alice, &mut bob, 1_000, T0.plus(1));
    Some((tok, t, s, alice, bob, store, counter))
}

#[test]
fn a_logged_out_token_is_logged_in_again_and_the_wallet_goes_on() {
    let Some((tok, _t, _s, mut alice, mut bob, store, counter)) = funded("v_logout") else {
        return;
    };
    // A token reset: every session of the process is logged out.
    tok.logout().unwrap();
    pay(&mut alice, &mut bob, 500, T0.plus(2));
    tok.logout().unwrap();
    drop(alice);
    let alice = Wallet::open(reopen(&tok, "alice", &store, &counter)).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 8_500);
    assert_eq!(bob.balance().unwrap().minor, 1_500);
}

#[test]
fn a_token_that_fails_mid_operation_moves_no_money() {
    let Some((tok, t, _s, mut alice, mut bob, store, counter)) = funded("v_midfail") else {
        return;
    };
    let committed = store.get(STATE_BLOB).unwrap();
    let before = observe(&alice, T0.plus(2));
    let t2 = T0.plus(2);

    // (1) The token refuses the next login (its PIN changed, then a reset):
    // the payment cannot be signed, nothing is committed, no Payment leaves.
    tok.change_pin("new-pin-9999").unwrap();
    tok.logout().unwrap();
    let req = bob.request(eur(700), 300, t2).unwrap();
    let e = alice.pay(&req, t2).unwrap_err();
    assert!(
        matches!(
            e,
            WalletError::KeyDevice(SignError::Device {
                what: "reconnect",
                code: 0xa0
            })
        ),
        "{e}"
    );
    assert_eq!(observe(&alice, t2), before, "the TA state is unchanged");
    assert_eq!(
        store.get(STATE_BLOB).unwrap(),
        committed,
        "nothing committed"
    );
    // The old PIN is refused, the new one opens the state committed before.
    assert!(matches!(
        login(&module(), &t, PIN),
        Err(VaultError::TokenPinRefused { locked: false, .. })
    ));
    let tok = login(&module(), &t, "new-pin-9999").unwrap();
    drop(alice);
    let mut alice = Wallet::open(reopen(&tok, "alice", &store, &counter)).unwrap();
    assert_eq!(observe(&alice, t2), before);

    // (2) The token refuses the sealing key after the payment was signed
    // (an operator suspended it): the commit fails, the Payment is not
    // released, the state stays as before.
    let req = bob.request(eur(700), 300, t2).unwrap();
    tok.suspend_key("alice/seal", ObjectClass::SECRET_KEY, true)
        .unwrap();
    let e = alice.pay(&req, t2).unwrap_err();
    assert!(
        matches!(
            e,
            WalletError::Vault(VaultError::KeyDevice {
                op: "encrypt",
                rc: 0x68,
                ..
            })
        ),
        "{e}"
    );
    assert_eq!(observe(&alice, t2), before, "the TA state is unchanged");
    assert_eq!(
        store.get(STATE_BLOB).unwrap(),
        committed,
        "nothing committed"
    );
    // (3) The signing key suspended: no signature, nothing committed.
    tok.suspend_key("alice/seal", ObjectClass::SECRET_KEY, false)
        .unwrap();
    tok.suspend_key("alice/key/0", ObjectClass::PRIVATE_KEY, true)
        .unwrap();
    let e = alice.pay(&req, t2).unwrap_err();
    assert!(
        matches!(
            e,
            WalletError::KeyDevice(SignError::Device {
                what: "sign",
                code: 0x68
            })
        ),
        "{e}"
    );
    assert_eq!(observe(&alice, t2), before, "the TA state is unchanged");
    assert_eq!(
        store.get(STATE_BLOB).unwrap(),
        committed,
        "nothing committed"
    );
    // Resumed: the payee asking again is paid once.
    tok.suspend_key("alice/key/0", ObjectClass::PRIVATE_KEY, false)
        .unwrap();
    let payment = alice.pay(&req, t2).unwrap();
    let receipt = bob.receive(&payment, t2).unwrap();
    alice.confirm(&receipt).unwrap();
    drop(alice);
    let alice = Wallet::open(reopen(&tok, "alice", &store, &counter)).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 9_000 - 700);
    assert_eq!(bob.balance().unwrap().minor, 1_700, "paid once");
}

#[test]
fn retire_destroys_the_key_pair_and_open_without_it_is_corrupt() {
    let Some((tok, _t, _s, alice, _bob, store, counter)) = funded("v_retire") else {
        return;
    };
    let mut v = alice.into_vault();
    let label = v.device_key_label(0);
    // A second key (a re-key's successor) and its retirement.
    let k1 = v.device_key(Suite::Ed25519, 1, true).unwrap().unwrap();
    let sig = k1.try_sign(b"next").unwrap();
    k1.public_key().verify(b"next", &sig).unwrap();
    v.retire_device_key(1).unwrap();
    assert!(
        k1.try_sign(b"after").is_err(),
        "a retired key signs nothing"
    );
    // Retiring twice is harmless.
    v.retire_device_key(1).unwrap();
    assert!(matches!(
        v.device_key(Suite::Ed25519, 1, false).err(),
        Some(VaultError::Corrupt(_))
    ));
    // The current key retired behind the wallet's back: it does not open.
    v.retire_device_key(0).unwrap();
    assert!(
        tok.key_protection(&label, ObjectClass::PRIVATE_KEY)
            .is_err()
    );
    drop(v);
    let e = Wallet::open(reopen(&tok, "alice", &store, &counter))
        .err()
        .unwrap();
    assert!(
        matches!(e, WalletError::Vault(VaultError::Corrupt(_))),
        "{e}"
    );
}

/// Where the parent test hands the child process its wallet directory.
const CHILD_DIR: &str = "OFFPAY_HSM_VAULT_CHILD_DIR";

#[test]
fn a_new_process_adopts_the_keys_and_opens_the_state() {
    let Some(t) = token("v_process") else { return };
    let tok = open(&t);
    let dir = tempfile::tempdir().unwrap();
    let counter_path = dir.path().join("counter");
    let mut s = Scheme::new(Suite::P256);
    let vault = HsmVault::create(
        &tok,
        "proc",
        DirStore::new(dir.path()),
        FileCounter::create(&counter_path).unwrap(),
    )
    .unwrap();
    let mut alice = s.enroll(vault, Suite::P256, T0);
    s.load(&mut alice, 4_321, T0);
    let cert = alice.certificate().unwrap().clone();
    drop(alice);
    // The same test binary, run again for the child test alone: a new
    // process, a new C_Initialize, the same token directory (SOFTHSM2_CONF
    // is inherited).
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_reopens_the_wallet",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
    // The child's report, signed in the token by the adopted key, verifies
    // with the wallet certificate.
    let report = std::fs::read(dir.path().join("report")).unwrap();
    let r = Signed::<offpay_protocol::messages::SyncReport>::decode(&report).unwrap();
    r.verify(cert.public_key()).unwrap();
    assert_eq!(r.body().balance, eur(4_321));
    // The child committed (the report is sealed in the state): seen here.
    let v = HsmVault::open(
        &tok,
        "proc",
        DirStore::new(dir.path()),
        FileCounter::open(&counter_path).unwrap(),
    )
    .unwrap();
    let alice = Wallet::open(v).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 4_321);
    assert_eq!(alice.status(T0.plus(60)).unsynced_entries, 1);
}

/// Run by [`a_new_process_adopts_the_keys_and_opens_the_state`] in a child
/// process; passes at once when run alone.
#[test]
#[ignore = "run in a child process by a_new_process_adopts_the_keys_and_opens_the_state"]
fn child_process_reopens_the_wallet() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let tok = login(&module(), &TokenRef::Label("v_process".into()), PIN).unwrap();
    let v = HsmVault::open(
        &tok,
        "proc",
        DirStore::new(&dir),
        FileCounter::open(&dir.join("counter")).unwrap(),
    )
    .unwrap();
    let mut alice = Wallet::open(v).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 4_321);
    let report = alice.sync_report(T0.plus(60)).unwrap();
    std::fs::write(dir.join("report"), report).unwrap();
}
