//! Re-keying a wallet whose keys live in a SoftHSM2 token (`HsmVault`),
//! against the real issuer on SQLite: the issuer asks for a P-256 key, the
//! token makes it (a new non-extractable pair of the next generation), the
//! CSR is certified at the next sync and the TA signs with the token's new
//! key, its chain continuing; the old pair is destroyed. A suite the token
//! does not hold (ML-DSA-44) is reported as refused and the wallet keeps
//! syncing and paying with its key.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_hsm::{HsmError, HsmVault, KeyMode, Token};
use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::Payment;
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Currency, Signer, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use offpay_wallet::vault::{MemoryBlobStore, MemoryCounter, MemoryVault, Vault};

mod common;
use common::{open, token};

const T0: UnixSeconds = UnixSeconds(1_795_000_000);

fn enrolled<V: Vault>(issuer: &Issuer<AnyStore>, id: &str, vault: V, load: u64) -> Wallet<V> {
    issuer.create_customer(id, id, T0).unwrap();
    issuer
        .deposit(id, eur(load.max(1)), &format!("dep-{id}"), T0)
        .unwrap();
    let t = issuer
        .create_enrollment_token_for(id, WalletProfile::Personal, T0)
        .unwrap();
    let mut w = Wallet::create(vault, Suite::Ed25519, issuer.root_certificate().der(), T0).unwrap();
    let e = issuer.enroll(&t, &w.csr().unwrap(), T0).unwrap();
    w.enroll(
        &e.issuer_certificate,
        &e.certificate,
        &e.policy,
        Some(&e.crl),
        T0,
    )
    .unwrap();
    if load > 0 {
        let v = issuer
            .load(&w.wallet_id(), eur(load), &format!("load-{id}"), T0)
            .unwrap();
        w.apply_voucher(&v, T0).unwrap();
    }
    w
}

fn sync<V: Vault>(
    issuer: &Issuer<AnyStore>,
    w: &mut Wallet<V>,
    now: UnixSeconds,
) -> offpay_wallet::SyncApplied {
    let report = w.sync_report(now).unwrap();
    let out = issuer.sync(&report, now).unwrap();
    w.apply_sync_response(&out.response, now).unwrap()
}

fn hsm(tok: &Token, label: &str) -> HsmVault<MemoryBlobStore, MemoryCounter> {
    HsmVault::create(tok, label, MemoryBlobStore::new(), MemoryCounter::new(0)).unwrap()
}

#[test]
fn a_token_wallet_re_keys_inside_the_token() {
    let Some(t) = token("rekey_token") else {
        return;
    };
    let tok = open(&t);
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    let cfg = IssuerConfig::default_for(Currency::new("EUR").unwrap());
    let issuer = Issuer::init(store, &[3u8; 32], &cfg, T0).unwrap();
    let mut alice = enrolled(&issuer, "alice", hsm(&tok, "alice"), 10_000);
    let mut bob = enrolled(&issuer, "bob", MemoryVault::new(), 0);
    let old_key = alice.public_key();
    let last_old = pay(&mut alice, &mut bob, 1_000, T0.plus(1));

    // A suite the token does not hold: refused by name, nothing changes.
    issuer
        .request_rekey(&alice.wallet_id(), Some(Suite::MlDsa44))
        .unwrap();
    let a = sync(&issuer, &mut alice, T0.plus(2));
    assert!(a.rekey_refused.is_some(), "{a:?}");
    assert_eq!(a.rekey_started, None);
    assert_eq!(alice.public_key(), old_key);
    pay(&mut alice, &mut bob, 100, T0.plus(3));

    // P-256: made in the token, certified at the next sync.
    issuer
        .request_rekey(&alice.wallet_id(), Some(Suite::P256))
        .unwrap();
    let a = sync(&issuer, &mut alice, T0.plus(4));
    assert_eq!(a.rekey_started, Some(Suite::P256));
    let before_switch = pay(&mut alice, &mut bob, 200, T0.plus(5));
    let a = sync(&issuer, &mut alice, T0.plus(6));
    assert_eq!(a.rekeyed, Some(Suite::P256));
    assert_eq!(alice.public_key().suite(), Suite::P256);
    assert_eq!(
        alice.public_key(),
        *alice.certificate().unwrap().public_key()
    );
    let first_new = pay(&mut alice, &mut bob, 300, T0.plus(7));
    let vault_cert_key = &alice.certificate().unwrap().public_key().clone();
    let old = Signed::<Payment>::decode(&before_switch).unwrap();
    let new = Signed::<Payment>::decode(&first_new).unwrap();
    assert_eq!(new.body().prev, old.payload_hash(), "the chain continues");
    new.verify(alice.certificate().unwrap().public_key())
        .unwrap();
    old.verify(&old_key).unwrap();
    Signed::<Payment>::decode(&last_old)
        .unwrap()
        .verify(&old_key)
        .unwrap();

    // The old pair is gone from the token, the new one is there.
    let vault = alice.into_vault();
    assert!(matches!(
        tok.signer(
            &vault.device_key_label(0),
            Suite::Ed25519,
            KeyMode::AdoptOnly
        ),
        Err(HsmError::KeyNotFound(_))
    ));
    assert_eq!(
        tok.signer(&vault.device_key_label(1), Suite::P256, KeyMode::AdoptOnly)
            .unwrap()
            .public_key(),
        *vault_cert_key
    );
    // The wallet reopens on the token's generation-1 key.
    let mut alice = Wallet::open(vault).unwrap();
    assert_eq!(alice.public_key().suite(), Suite::P256);
    pay(&mut alice, &mut bob, 400, T0.plus(8));
    sync(&issuer, &mut alice, T0.plus(9));
    sync(&issuer, &mut bob, T0.plus(9));
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "{:?}", inv.violations);
    assert_eq!(
        issuer.wallet_balance(&alice.wallet_id()).unwrap(),
        alice.balance().unwrap().minor as i64
    );
    assert_eq!(alice.balance().unwrap().minor, 10_000 - 2_000);
    assert_eq!(bob.balance().unwrap().minor, 2_000);
}
