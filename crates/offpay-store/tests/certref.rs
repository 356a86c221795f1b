//! Certificate by reference (PaymentRequest key 10), on SQLite and on
//! PostgreSQL: a payee TA keeps the certificates of the payers of its own
//! issuer sealed (at most `KNOWN_PEERS_MAX`, least recently used dropped
//! first) and lists them in its requests; a listed payer sends only the
//! SHA-256 of its certificate. An ML-DSA-44 payment shrinks by its
//! certificate; the reference survives a reopen of the payee; a payee that
//! no longer holds the certificate refuses with nothing changed; the issuer
//! settles by-reference payments reported by either side.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::cbor::DecodeError;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{CertField, KNOWN_CERTS_MAX, Payment, PaymentRequest};
use offpay_protocol::{Currency, SigningKey, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::postgres::Schema;
use offpay_test_support::{eur, pay};
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{Wallet, WalletError};

mod common;
use common::{T0, customer_with_wallet, customer_with_wallet_of, sync};

/// Run `f` on SQLite (a temporary file) and on PostgreSQL (a fresh schema).
fn on_every_backend(name: &str, f: impl Fn(&Issuer<AnyStore>)) {
    let cfg = IssuerConfig::default_for(Currency::new("EUR").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = offpay_store::open_sqlite(&dir.path().join("offpay.sqlite")).unwrap();
    f(&Issuer::init(store, &[9u8; 32], &cfg, T0).unwrap());
    let Some(guard) = Schema::fresh(name) else {
        return;
    };
    let store = offpay_store::open_postgres_schema(&guard.url, &guard.name).unwrap();
    f(&Issuer::init(store, &[9u8; 32], &cfg, T0).unwrap());
}

fn cert_field(payment: &[u8]) -> CertField {
    Signed::<Payment>::decode(payment)
        .unwrap()
        .body()
        .payer_cert
        .clone()
}

fn assert_books(issuer: &Issuer<AnyStore>, ws: &[&Wallet<MemoryVault>]) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
    for w in ws {
        assert_eq!(
            issuer.wallet_balance(&w.wallet_id()).unwrap(),
            w.balance().unwrap().minor as i64
        );
    }
}

#[test]
fn a_known_ml_dsa_payer_pays_by_reference() {
    on_every_backend("certref_known", |issuer| {
        let mut alice = customer_with_wallet_of(issuer, "alice", 10_000, 10_000, Suite::MlDsa44);
        let mut bob = customer_with_wallet(issuer, "bob", 1, 0);
        // The first payment carries the certificate; Bob keeps it sealed.
        let first = pay(&mut alice, &mut bob, 100, T0.plus(1));
        assert!(matches!(cert_field(&first), CertField::Inline(_)));
        let req = bob.request(eur(200), 300, T0.plus(2)).unwrap();
        assert_eq!(
            Signed::<PaymentRequest>::decode(&req)
                .unwrap()
                .body()
                .known_certs
                .len(),
            1
        );
        let second = alice.pay(&req, T0.plus(2)).unwrap();
        let cert_len = alice.certificate().unwrap().der().len();
        assert!(matches!(cert_field(&second), CertField::Reference(_)));
        assert!(
            cert_len > 1_500,
            "an ML-DSA-44 key in its certificate: {cert_len} bytes"
        );
        // The certificate became its 32-byte hash (CBOR headers aside).
        let saved = first.len() - second.len();
        assert!(
            saved + 40 > cert_len && saved < cert_len,
            "saved {saved} of {cert_len}"
        );
        let rcpt = bob.receive(&second, T0.plus(2)).unwrap();
        alice.confirm(&rcpt).unwrap();
        // Bob reopens: the reference still resolves (sealed, not only in memory).
        let mut bob = Wallet::open(bob.into_vault()).unwrap();
        let third = pay(&mut alice, &mut bob, 300, T0.plus(3));
        assert!(matches!(cert_field(&third), CertField::Reference(_)));
        // The payee reports first, then the payer: each settles once.
        sync(issuer, &mut bob, T0.plus(10));
        sync(issuer, &mut alice, T0.plus(10));
        sync(issuer, &mut bob, T0.plus(11));
        assert_eq!(bob.balance().unwrap().minor, 600);
        assert_eq!(alice.balance().unwrap().minor, 9_400);
        assert_books(issuer, &[&alice, &bob]);
    });
}

/// Bob lists Alice's certificate, then sixteen other payers push it out of
/// his sealed cache; after a reopen he refuses Alice's by-reference payment
/// (`UnknownCertificate`) with his state unchanged, and her next payment to
/// a fresh request travels inline again.
#[test]
fn an_evicted_certificate_is_refused_and_nothing_changes() {
    on_every_backend("certref_evicted", |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 1, 0);
        pay(&mut alice, &mut bob, 100, T0.plus(1));
        let listed = bob.request(eur(50), 600, T0.plus(2)).unwrap();
        for i in 0..KNOWN_CERTS_MAX {
            let mut other = customer_with_wallet(issuer, &format!("o{i}"), 100, 100);
            pay(&mut other, &mut bob, 1, T0.plus(3));
        }
        let next = bob.request(eur(10), 600, T0.plus(4)).unwrap();
        let known = Signed::<PaymentRequest>::decode(&next)
            .unwrap()
            .body()
            .known_certs
            .clone();
        assert_eq!(known.len(), KNOWN_CERTS_MAX, "the cache is full");
        let by_ref = alice.pay(&listed, T0.plus(5)).unwrap();
        assert!(matches!(cert_field(&by_ref), CertField::Reference(_)));
        let mut bob = Wallet::open(bob.into_vault()).unwrap();
        let before = (bob.balance(), bob.history().len(), bob.vault().version());
        assert_eq!(
            bob.receive(&by_ref, T0.plus(5)).unwrap_err(),
            WalletError::UnknownCertificate
        );
        assert_eq!(
            (bob.balance(), bob.history().len(), bob.vault().version()),
            before
        );
        // Alice is no longer listed: inline again, and accepted.
        let inline = alice.pay(&next, T0.plus(6)).unwrap();
        assert!(matches!(cert_field(&inline), CertField::Inline(_)));
        bob.receive(&inline, T0.plus(6)).unwrap();
    });
}

/// A request listing more certificates than [`KNOWN_CERTS_MAX`] is refused
/// by the decoder, before any of it is used.
#[test]
fn a_request_listing_too_many_certificates_is_refused() {
    let key = SigningKey::generate(Suite::Ed25519).unwrap();
    let body = PaymentRequest {
        payee: offpay_protocol::WalletId([1; 16]),
        amount: eur(1),
        nonce: offpay_protocol::Nonce([2; 16]),
        created: UnixSeconds(10),
        expires: UnixSeconds(20),
        payee_cert: CertField::Reference(offpay_protocol::Hash32([3; 32])),
        known_certs: vec![[4; 8]; KNOWN_CERTS_MAX + 1],
    };
    let bytes = Signed::sign(body.clone(), &key).into_bytes();
    assert!(matches!(
        Signed::<PaymentRequest>::decode(&bytes).unwrap_err(),
        DecodeError::TooLarge {
            field: "known certificates",
            ..
        }
    ));
    let ok = PaymentRequest {
        known_certs: vec![[4; 8]; KNOWN_CERTS_MAX],
        ..body
    };
    let bytes = Signed::sign(ok.clone(), &key).into_bytes();
    assert_eq!(
        Signed::<PaymentRequest>::decode(&bytes).unwrap().body(),
        &ok
    );
}
