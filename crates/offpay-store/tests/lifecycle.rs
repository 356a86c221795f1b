//! The end of a wallet's life, on SQLite and on PostgreSQL
//! (offpay-issuer's `lifecycle.rs`): a wallet reported lost or broken is
//! revoked at once and paid out (or forfeits, by the scheme's rule) once its
//! certificate expired and the payees' offline limit passed; a late report
//! after that is paid from the reserve; a payment its payee never held goes
//! back to the payer's customer when the payee's window closes; a clawback
//! is refunded to the customer when later settlements allow it.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::store::{Retirement, Store, WalletState};
use offpay_issuer::{Account, Issuer, IssuerConfig, IssuerError, LifecycleRules};
use offpay_protocol::pki::{Crl, WalletProfile};
use offpay_protocol::{Currency, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

mod common;
use common::{T0, customer_with_wallet, enrolled_wallet, on_every_backend_with, sync};

const DAY: u64 = 86_400;

fn config() -> IssuerConfig {
    IssuerConfig::default_for(Currency::new("EUR").unwrap())
}

fn sub(issuer: &Issuer<AnyStore>, w: &Wallet<MemoryVault>) -> i64 {
    issuer.wallet_balance(&w.wallet_id()).unwrap()
}

fn reserve(issuer: &Issuer<AnyStore>) -> i64 {
    let mut tx = issuer.store().begin().unwrap();
    tx.balance(&Account::Reserve.to_string()).unwrap().unwrap()
}

fn assert_books(issuer: &Issuer<AnyStore>) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
}

/// Alice (10,000 online, 10,000 offline) pays Bob 2,000 and Carol 1,000,
/// then loses her phone. Returns the three wallets.
fn alice_loses_her_phone(issuer: &Issuer<AnyStore>, why: Retirement) -> [Wallet<MemoryVault>; 3] {
    let mut alice = customer_with_wallet(issuer, "alice", 10_000, 10_000);
    let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
    let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
    pay(&mut alice, &mut bob, 2_000, T0.plus(10));
    pay(&mut alice, &mut carol, 1_000, T0.plus(11));
    let rec = issuer
        .retire(&alice.wallet_id(), why, "reported by phone", T0.plus(100))
        .unwrap();
    assert_eq!(rec.state, WalletState::Revoked);
    assert_eq!(rec.retired, Some(why));
    let crl = Crl::from_der(&issuer.crl().unwrap()).unwrap();
    assert!(
        crl.is_revoked(rec.cert_serial).is_some(),
        "on the CRL at once"
    );
    // A new wallet for the same customer, at once.
    let fresh = enrolled_wallet(issuer, "alice", WalletProfile::Personal, Suite::Ed25519);
    assert_eq!(
        issuer.wallet(&fresh.wallet_id()).unwrap().state,
        WalletState::Active
    );
    [alice, bob, carol]
}

/// When a wallet retired at T0 + 100 becomes due.
fn due(issuer: &Issuer<AnyStore>, w: &Wallet<MemoryVault>) -> UnixSeconds {
    let rec = issuer.wallet(&w.wallet_id()).unwrap();
    let at = issuer.closes_at(&rec).unwrap();
    assert_eq!(
        at,
        rec.cert_not_after.plus(issuer.policy().max_offline_seconds)
    );
    at
}

#[test]
fn a_lost_wallet_is_paid_out_once_no_payment_of_it_can_arrive_and_late_ones_come_from_the_reserve()
{
    on_every_backend_with("lifecycle_lost_refund", &config(), |issuer| {
        let [alice, mut bob, mut carol] = alice_loses_her_phone(issuer, Retirement::Lost);
        // Bob reports Alice's payment in time.
        sync(issuer, &mut bob, T0.plus(1_000));
        assert_eq!(sub(issuer, &alice), 8_000);
        let at = due(issuer, &alice);
        // Not yet: a payee may still accept her certificate, or not have synced.
        let early = issuer.close_due(UnixSeconds(at.0 - 1), 100).unwrap();
        assert_eq!(early.closed, 0);
        assert_eq!(sub(issuer, &alice), 8_000);
        let online = issuer.customer_balance("alice").unwrap();
        let report = issuer.close_due(at, 100).unwrap();
        assert_eq!(report.closed, 1);
        assert_eq!(report.paid_out_minor, 8_000);
        assert_eq!(report.forfeited_minor, 0);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 8_000);
        assert_eq!(sub(issuer, &alice), 0);
        let rec = issuer.wallet(&alice.wallet_id()).unwrap();
        assert_eq!(rec.state, WalletState::Closed);
        assert_eq!(rec.closed_at, Some(at));
        assert_books(issuer);
        // Closing again does nothing.
        assert_eq!(issuer.close_due(at.plus(10), 100).unwrap().closed, 0);
        // Carol stayed offline beyond the limit: her report still settles in
        // full (finality); the reserve pays, not Alice.
        let out = sync(issuer, &mut carol, at.plus(DAY));
        assert_eq!(out.settled, 1);
        assert_eq!(sub(issuer, &carol), 1_000);
        assert_eq!(sub(issuer, &alice), 0, "a closed wallet stays at zero");
        assert_eq!(reserve(issuer), -1_000);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 8_000);
        assert_books(issuer);
        // A closed wallet is not revoked again, loaded, unlocked or retired.
        for r in [
            issuer.retire(&alice.wallet_id(), Retirement::Broken, "", at.plus(DAY)),
            issuer
                .revoke(
                    &alice.wallet_id(),
                    offpay_protocol::pki::RevocationReason::Unspecified,
                    "x",
                    at.plus(DAY),
                )
                .map(|_| issuer.wallet(&alice.wallet_id()).unwrap()),
        ] {
            assert!(
                matches!(
                    r,
                    Err(IssuerError::WalletNotActive {
                        state: WalletState::Closed,
                        ..
                    })
                ),
                "{r:?}"
            );
        }
        assert!(issuer.unlock(&alice.wallet_id()).is_err());
        assert!(
            issuer
                .load(&alice.wallet_id(), eur(100), "late-load", at.plus(DAY))
                .is_err()
        );
        assert_eq!(
            issuer.wallet(&alice.wallet_id()).unwrap().state,
            WalletState::Closed
        );
        assert_books(issuer);
    });
}

#[test]
fn where_the_scheme_does_not_refund_lost_wallets_their_money_goes_to_the_reserve_but_broken_ones_are_paid_out()
 {
    on_every_backend_with("lifecycle_no_refund", &config(), |issuer| {
        issuer
            .set_lifecycle_rules(&LifecycleRules {
                refund_lost: false,
                ..LifecycleRules::default()
            })
            .unwrap();
        let [alice, mut bob, mut carol] = alice_loses_her_phone(issuer, Retirement::Lost);
        sync(issuer, &mut bob, T0.plus(1_000));
        sync(issuer, &mut carol, T0.plus(1_000));
        // Dave's wallet is broken (its vault no longer opens) and handed in.
        let dave = customer_with_wallet(issuer, "dave", 4_000, 4_000);
        issuer
            .retire(
                &dave.wallet_id(),
                Retirement::Broken,
                "vault tampered",
                T0.plus(200),
            )
            .unwrap();
        let online_alice = issuer.customer_balance("alice").unwrap();
        let at = due(issuer, &alice).max(due(issuer, &dave));
        let report = issuer.close_due(at, 100).unwrap();
        assert_eq!(report.closed, 2);
        assert_eq!(report.forfeited_minor, 7_000);
        assert_eq!(report.paid_out_minor, 4_000);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online_alice);
        assert_eq!(issuer.customer_balance("dave").unwrap(), 4_000);
        assert_eq!(reserve(issuer), 7_000);
        assert_eq!(sub(issuer, &alice), 0);
        assert_eq!(sub(issuer, &dave), 0);
        assert_books(issuer);
    });
}

#[test]
fn the_rules_refuse_a_return_window_a_request_outlives_and_change_nothing() {
    on_every_backend_with("lifecycle_rules", &config(), |issuer| {
        let before = issuer.lifecycle_rules().unwrap();
        assert_eq!(before, LifecycleRules::default());
        let bad = LifecycleRules {
            return_after_seconds: 60,
            ..before
        };
        assert!(matches!(
            issuer.set_lifecycle_rules(&bad),
            Err(IssuerError::InvalidInput(
                offpay_issuer::error::InputError::ReturnWindow { .. }
            ))
        ));
        assert_eq!(issuer.lifecycle_rules().unwrap(), before);
        let unknown = offpay_protocol::WalletId([9; 16]);
        assert!(matches!(
            issuer.retire(&unknown, Retirement::Lost, "", T0),
            Err(IssuerError::UnknownWallet)
        ));
    });
}

/// Payments settled to Bob that Bob's TA never held (refused after the
/// request expired, a request paid twice, a file that never arrived) stay
/// stranded while Bob's window is open and go back to their payers'
/// customers at Bob's first sync after it closes.
#[test]
fn money_a_payee_never_held_goes_back_to_the_payer_when_its_window_closes() {
    on_every_backend_with("lifecycle_returns", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 10_000);
        let mut carol = customer_with_wallet(issuer, "carol", 10_000, 10_000);
        let mut dave = customer_with_wallet(issuer, "dave", 10_000, 10_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let t = T0.plus(10);
        pay(&mut alice, &mut bob, 1_000, t);
        let late = bob.request(eur(350), 60, t).unwrap();
        let p_late = alice.pay(&late, t).unwrap();
        assert!(bob.receive(&p_late, t.plus(61)).is_err());
        let shared = bob.request(eur(200), 300, t.plus(100)).unwrap();
        let p1 = alice.pay(&shared, t.plus(100)).unwrap();
        bob.receive(&p1, t.plus(100)).unwrap();
        let p2 = carol.pay(&shared, t.plus(101)).unwrap();
        assert!(bob.receive(&p2, t.plus(101)).is_err());
        let lost = bob.request(eur(25), 300, t.plus(102)).unwrap();
        dave.pay(&lost, t.plus(102)).unwrap();
        let at = t.plus(200);
        for w in [&mut alice, &mut carol, &mut dave] {
            sync(issuer, w, at);
        }
        let online = |c: &str| issuer.customer_balance(c).unwrap();
        let (a0, c0, d0) = (online("alice"), online("carol"), online("dave"));
        // Inside the window: the money is Bob's sub-account's, visible as stranded.
        let out = sync(issuer, &mut bob, at.plus(1));
        assert_eq!(out.returned.count, 0);
        assert_eq!(out.stranded.minor, 575);
        let window = issuer.lifecycle_rules().unwrap().return_after_seconds;
        let out = sync(issuer, &mut bob, at.plus(window - 10));
        assert_eq!(out.returned.count, 0, "still inside the window");
        // The first sync after it closes returns all three.
        let out = sync(issuer, &mut bob, at.plus(window + 10));
        assert_eq!(out.returned.count, 3);
        assert_eq!(out.returned.minor, 575);
        assert_eq!(out.stranded.minor, 0);
        assert_eq!(sub(issuer, &bob), bob.balance().unwrap().minor as i64);
        assert_eq!(online("alice"), a0 + 350);
        assert_eq!(online("carol"), c0 + 200);
        assert_eq!(online("dave"), d0 + 25);
        // Returned once: later syncs return nothing.
        let out = sync(issuer, &mut bob, at.plus(window + 100));
        assert_eq!(out.returned.count, 0);
        assert_eq!(online("alice"), a0 + 350);
        assert_books(issuer);
    });
}

/// A payment the payee holds is never returned, whichever side reports first.
#[test]
fn a_payment_the_payee_reported_is_never_returned() {
    on_every_backend_with("lifecycle_delivered", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 10_000, 10_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        pay(&mut alice, &mut bob, 700, T0.plus(10));
        // Payer first: pending, then delivered by Bob's report.
        sync(issuer, &mut alice, T0.plus(20));
        sync(issuer, &mut bob, T0.plus(30));
        // Payee first: delivered at once.
        pay(&mut alice, &mut bob, 300, T0.plus(40));
        sync(issuer, &mut bob, T0.plus(50));
        sync(issuer, &mut alice, T0.plus(60));
        let out = sync(issuer, &mut bob, T0.plus(10 * DAY));
        assert_eq!(out.returned.count, 0);
        assert_eq!(sub(issuer, &bob), 1_000);
        assert_eq!(out.stranded.minor, 0);
        assert_books(issuer);
    });
}

/// A cloned wallet overspends; its customer's online money covers part of the
/// deficit. A payment to the revoked wallet made before its revocation,
/// reported later, brings it back above zero: the guarantee fund is refunded
/// first, then the customer.
#[test]
fn a_clawback_is_refunded_to_the_customer_when_later_settlements_allow() {
    on_every_backend_with("lifecycle_clawback_refund", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 6_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        let mut erin = customer_with_wallet(issuer, "erin", 10_000, 10_000);
        let mut clone = Wallet::open(alice.vault().clone()).unwrap();
        // Erin pays Alice before anything is known (not reported yet).
        pay(&mut erin, &mut alice, 6_000, T0.plus(5));
        pay(&mut alice, &mut bob, 5_000, T0.plus(10));
        pay(&mut clone, &mut carol, 4_000, T0.plus(11));
        sync(issuer, &mut bob, T0.plus(100));
        let out = sync(issuer, &mut carol, T0.plus(101));
        assert_eq!(out.double_spends.len(), 1);
        let rec = issuer.wallet(&alice.wallet_id()).unwrap();
        assert_eq!((rec.clawed_back, rec.guaranteed), (1_000, 3_000));
        assert_eq!(issuer.customer_balance("alice").unwrap(), 0);
        // Erin's report settles 6,000 to Alice's revoked wallet.
        sync(issuer, &mut erin, T0.plus(200));
        let rec = issuer.wallet(&alice.wallet_id()).unwrap();
        assert_eq!((rec.clawed_back, rec.guaranteed), (0, 0));
        assert_eq!(issuer.customer_balance("alice").unwrap(), 1_000);
        assert_eq!(sub(issuer, &alice), 6_000 - 4_000);
        assert_books(issuer);
    });
}
