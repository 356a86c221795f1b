//! The issuer with its root and issuer CA keys in a SoftHSM2 token, on
//! SQLite: enroll, load, pay, sync, redeem and a double spend, then a
//! restart that re-adopts the token's keys; a token holding other keys, or
//! a sealed-key open of a token-backed store, is a clear startup error; a
//! token that fails mid-run writes nothing.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.

use std::sync::Arc;

use offpay_hsm::{HsmSigner, KeyMode};
use offpay_issuer::{Issuer, IssuerConfig, IssuerError};
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Currency, OsEntropy, Signer, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

mod common;
use common::{must, must_err, open, token};

const T0: UnixSeconds = UnixSeconds(1_795_000_000);

fn config(suite: Suite) -> IssuerConfig {
    let mut c = IssuerConfig::default_for(must(Currency::new("EUR").ok_or("EUR"), "currency"));
    c.suite = suite;
    c
}

fn wallet(issuer: &Issuer<AnyStore>, id: &str, online: u64, offline: u64) -> Wallet<MemoryVault> {
    must(issuer.create_customer(id, id, T0), "customer");
    if online > 0 {
        must(
            issuer.deposit(id, eur(online), &format!("dep-{id}"), T0),
            "deposit",
        );
    }
    let t = must(
        issuer.create_enrollment_token_for(id, WalletProfile::Personal, T0),
        "token",
    );
    let mut w = must(
        Wallet::create(
            MemoryVault::new(),
            Suite::Ed25519,
            issuer.root_certificate().der(),
            T0,
        ),
        "wallet",
    );
    let e = must(issuer.enroll(&t, &must(w.csr(), "csr"), T0), "enroll");
    must(
        w.enroll(
            &e.issuer_certificate,
            &e.certificate,
            &e.policy,
            Some(&e.crl),
            T0,
        ),
        "wallet enroll",
    );
    if offline > 0 {
        let v = must(
            issuer.load(&w.wallet_id(), eur(offline), &format!("load-{id}"), T0),
            "load",
        );
        must(w.apply_voucher(&v, T0), "voucher");
    }
    w
}

fn sync(
    issuer: &Issuer<AnyStore>,
    w: &mut Wallet<MemoryVault>,
    now: UnixSeconds,
) -> offpay_issuer::SyncOutcome {
    let report = must(w.sync_report(now), "report");
    let out = must(issuer.sync(&report, now), "sync");
    must(w.apply_sync_response(&out.response, now), "apply sync");
    out
}

fn signers(t: &offpay_hsm::Token, suite: Suite, mode: KeyMode) -> (Arc<HsmSigner>, Arc<HsmSigner>) {
    (
        Arc::new(must(t.signer("offpay-root", suite, mode), "root key")),
        Arc::new(must(
            t.signer("offpay-issuer-ca", suite, mode),
            "issuer key",
        )),
    )
}

fn flow(name: &str, suite: Suite) {
    let Some(tref) = token(name) else { return };
    let dir = must(tempfile::tempdir(), "dir");
    let db = dir.path().join("offpay.sqlite");
    let tok = open(&tref);
    let (root, ca) = signers(&tok, suite, KeyMode::CreateOrAdopt);
    let key_ref =
        format!("token={name};issuer-key=offpay-issuer-ca;root-key=offpay-root;suite={suite}");
    let issuer = must(
        Issuer::init_with_signers(
            must(offpay_store::open_sqlite(&db), "sqlite"),
            root.clone(),
            ca.clone(),
            &key_ref,
            &config(suite),
            T0,
            OsEntropy::shared(),
        ),
        "init",
    );
    assert_eq!(issuer.root_certificate().public_key(), &root.public_key());
    let mut alice = wallet(&issuer, "alice", 6_000, 5_000);
    let mut bob = wallet(&issuer, "bob", 0, 0);
    let mut carol = wallet(&issuer, "carol", 0, 0);
    let mut clone = must(Wallet::open(alice.vault().clone()), "clone");
    pay(&mut alice, &mut bob, 2_000, T0.plus(10));
    pay(&mut clone, &mut carol, 1_500, T0.plus(11));
    assert!(
        sync(&issuer, &mut bob, T0.plus(100))
            .double_spends
            .is_empty()
    );
    let out = sync(&issuer, &mut carol, T0.plus(101));
    assert_eq!(out.double_spends, vec![(alice.wallet_id(), 1)]);
    let redeem = must(bob.redeem(eur(1_000), T0.plus(200)), "redeem");
    assert!(must(issuer.redeem(&redeem, T0.plus(200)), "redeem").newly_settled);
    assert_eq!(must(issuer.customer_balance("bob"), "balance"), 1_000);
    assert!(must(issuer.invariants(), "invariants").ok);
    drop(issuer);

    // A sealed-key open of this store is refused: its keys are in a token.
    let e = must_err(
        Issuer::open(must(offpay_store::open_sqlite(&db), "sqlite"), &[7u8; 32]),
        "refusal",
    );
    assert!(matches!(e, IssuerError::DeviceKey(_)), "{e}");
    // Restart: a new token session adopts the same keys and goes on.
    assert_eq!(
        must(
            Issuer::device_reference(&must(offpay_store::open_sqlite(&db), "sqlite")),
            "ref"
        ),
        Some(key_ref)
    );
    let tok = open(&tref);
    let (root2, ca2) = signers(&tok, suite, KeyMode::AdoptOnly);
    let issuer = must(
        Issuer::open_with_signers(
            must(offpay_store::open_sqlite(&db), "sqlite"),
            Some(root2),
            ca2.clone(),
            OsEntropy::shared(),
        ),
        "reopen",
    );
    sync(&issuer, &mut carol, T0.plus(300));
    // The token's issuer key swapped for another: a clear startup error.
    let other = Arc::new(must(
        tok.signer("other", suite, KeyMode::CreateOrAdopt),
        "other key",
    ));
    let e = must_err(
        Issuer::open_with_signers(
            must(offpay_store::open_sqlite(&db), "sqlite"),
            None,
            other,
            OsEntropy::shared(),
        ),
        "refusal",
    );
    assert!(matches!(e, IssuerError::DeviceKey(_)), "{e}");
    // The token loses the issuer key mid-run: the load is refused with a
    // device error and nothing is written (the balance stays).
    let before = must(issuer.customer_balance("bob"), "balance");
    must(tok.destroy_key_pair("offpay-issuer-ca"), "destroy");
    ca2.close_session();
    let e = must_err(
        issuer.load(&bob.wallet_id(), eur(100), "load-after-loss", T0.plus(400)),
        "refusal",
    );
    assert!(matches!(e, IssuerError::SigningDevice(_)), "{e}");
    assert_eq!(must(issuer.customer_balance("bob"), "balance"), before);
    assert!(must(issuer.invariants(), "invariants").ok);
}

#[test]
fn ed25519_issuer_in_the_token() {
    flow("flow_ed25519", Suite::Ed25519);
}

#[test]
fn p256_issuer_in_the_token() {
    flow("flow_p256", Suite::P256);
}
