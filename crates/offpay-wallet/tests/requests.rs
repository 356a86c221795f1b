//! A payee's pending payment requests: listed, counted in the status with
//! the time their slots free up, and cancelled durably.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::PaymentRequest;
use offpay_protocol::{Nonce, Suite};
use offpay_test_support::*;
use offpay_wallet::ta::PENDING_REQUESTS_MAX;
use offpay_wallet::vault::MemoryVault;
use offpay_wallet::{Wallet, WalletError};

const ED: Suite = Suite::Ed25519;

fn nonce_of(req: &[u8]) -> Nonce {
    Signed::<PaymentRequest>::decode(req).unwrap().body().nonce
}

fn world() -> (Scheme, Wallet<MemoryVault>, Wallet<MemoryVault>) {
    let mut s = Scheme::new(ED);
    let mut alice = s.enroll(MemoryVault::new(), ED, T0);
    let bob = s.enroll(MemoryVault::new(), ED, T0);
    s.load(&mut alice, 10_000, T0);
    (s, alice, bob)
}

#[test]
fn pending_requests_are_listed_soonest_first_and_counted_in_the_status() {
    let (_s, _alice, mut bob) = world();
    assert!(bob.pending_requests(T0).is_empty());
    assert_eq!(bob.status(T0).pending_requests, 0);
    assert_eq!(bob.status(T0).pending_request_next_expiry, None);
    let long = bob.request(eur(100), 600, T0).unwrap();
    let short = bob.request(eur(200), 60, T0.plus(1)).unwrap();
    let list = bob.pending_requests(T0.plus(2));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].nonce, nonce_of(&short));
    assert_eq!(list[0].amount, eur(200));
    assert_eq!(list[0].expires, T0.plus(61));
    assert_eq!(list[0].bytes, short);
    assert_eq!(list[1].nonce, nonce_of(&long));
    let st = bob.status(T0.plus(2));
    assert_eq!(st.pending_requests, 2);
    assert_eq!(st.pending_request_next_expiry, Some(T0.plus(61)));
    // Once the short one expired, it is neither listed nor counted.
    assert_eq!(bob.pending_requests(T0.plus(62)).len(), 1);
    let st = bob.status(T0.plus(62));
    assert_eq!(st.pending_requests, 1);
    assert_eq!(st.pending_request_next_expiry, Some(T0.plus(600)));
}

#[test]
fn a_cancelled_request_stays_cancelled_across_a_reopen_and_frees_its_slot() {
    let (_s, mut alice, mut bob) = world();
    let mut reqs = Vec::new();
    for i in 0..PENDING_REQUESTS_MAX as u64 {
        reqs.push(bob.request(eur(100 + i), 300, T0).unwrap());
    }
    assert_eq!(
        bob.request(eur(1), 300, T0),
        Err(WalletError::TooManyPendingRequests)
    );
    let version = bob.vault().version();
    let amount = bob.cancel_request(&nonce_of(&reqs[3]), T0).unwrap();
    assert_eq!(amount, eur(103));
    assert!(bob.vault().version() > version, "the cancel was committed");
    // Durable: a reopened TA does not accept the cancelled request either.
    let mut bob = Wallet::open(bob.into_vault()).unwrap();
    assert_eq!(bob.pending_requests(T0).len(), PENDING_REQUESTS_MAX - 1);
    assert!(
        bob.pending_requests(T0)
            .iter()
            .all(|r| r.nonce != nonce_of(&reqs[3]))
    );
    let payment = alice.pay(&reqs[3], T0).unwrap();
    let before = bob.balance();
    assert_eq!(bob.receive(&payment, T0), Err(WalletError::NonceUnknown));
    assert_eq!(bob.balance(), before);
    // Its slot is free; the other requests are still paid normally.
    bob.request(eur(1), 300, T0).unwrap();
    let p = alice.pay(&reqs[4], T0).unwrap();
    bob.receive(&p, T0).unwrap();
    assert_eq!(bob.balance(), Some(eur(104)));
}

#[test]
fn cancelling_an_unknown_or_expired_request_is_refused_and_changes_nothing() {
    let (_s, _alice, mut bob) = world();
    let req = bob.request(eur(100), 60, T0).unwrap();
    let version = bob.vault().version();
    assert_eq!(
        bob.cancel_request(&Nonce([7u8; 16]), T0),
        Err(WalletError::NonceUnknown)
    );
    assert_eq!(
        bob.cancel_request(&nonce_of(&req), T0.plus(61)),
        Err(WalletError::NonceUnknown)
    );
    assert_eq!(bob.vault().version(), version, "nothing was written");
    assert_eq!(bob.pending_requests(T0).len(), 1);
    // A second cancel of the same request is refused too.
    bob.cancel_request(&nonce_of(&req), T0).unwrap();
    assert_eq!(
        bob.cancel_request(&nonce_of(&req), T0),
        Err(WalletError::NonceUnknown)
    );
}

#[test]
fn payments_without_a_receipt_are_listed_until_confirmed() {
    let (_s, mut alice, mut bob) = world();
    let req = bob.request(eur(350), 300, T0).unwrap();
    let payment = alice.pay(&req, T0).unwrap();
    let id = Signed::<offpay_protocol::messages::Payment>::decode(&payment)
        .unwrap()
        .payload_hash();
    assert_eq!(alice.payments_without_receipt(), vec![id]);
    let receipt = bob.receive(&payment, T0).unwrap();
    alice.confirm(&receipt).unwrap();
    assert!(alice.payments_without_receipt().is_empty());
    // A redeem has no payee and needs no receipt.
    alice.redeem(eur(10), T0).unwrap();
    assert!(alice.payments_without_receipt().is_empty());
}
