//! Dispute cases on SQLite and on PostgreSQL (offpay-issuer's `cases.rs`,
//! docs/LIABILITY.md): every kind, each decision path, the refusals (which
//! change nothing), no payment paid twice (a case after or alongside the
//! lifecycle's return, a second case on a refunded payment), the lifecycle
//! leaving a held payment to its case, and the ledger invariants after each.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_issuer::error::CaseProblem;
use offpay_issuer::store::{CaseKind, CaseRecord, CaseState, Retirement, Store};
use offpay_issuer::{
    Account, CaseOpening, Decision, Issuer, IssuerConfig, IssuerError, LifecycleRules,
};
use offpay_protocol::bundle::BundleDelivery;
use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::verify_bundle;
use offpay_protocol::messages::Payment;
use offpay_protocol::{Currency, UnixSeconds, WalletId};
use offpay_store::AnyStore;
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

mod common;
use common::{T0, customer_with_wallet, on_every_backend_with, sync};

fn config() -> IssuerConfig {
    IssuerConfig::default_for(Currency::new("EUR").unwrap())
}

fn assert_books(issuer: &Issuer<AnyStore>) {
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "invariants violated: {:?}", inv.violations);
}

fn seq_of(payment: &[u8]) -> u64 {
    Signed::<Payment>::decode(payment).unwrap().body().seq
}

fn guarantee(issuer: &Issuer<AnyStore>) -> i64 {
    let mut tx = issuer.store().begin().unwrap();
    tx.balance(&Account::Guarantee.to_string())
        .unwrap()
        .unwrap()
}

fn opening(kind: CaseKind, payer: &Wallet<MemoryVault>, seq: Option<u64>) -> CaseOpening {
    CaseOpening {
        kind,
        payer: payer.wallet_id(),
        seq,
        opened_by: "ops-ana".into(),
        note: "customer called".into(),
    }
}

fn decision(c: &CaseRecord) -> Decision {
    Decision::parse(c.decision.as_deref().unwrap()).unwrap()
}

/// The stored bundle verifies against the root and says what the case says.
fn check_bundle(issuer: &Issuer<AnyStore>, c: &CaseRecord, delivery: BundleDelivery) {
    let v = verify_bundle(&c.bundle, issuer.root_certificate()).unwrap();
    assert_eq!(v.bundle.case_id, c.id);
    assert_eq!(v.bundle.state, c.state.as_str());
    assert_eq!(v.bundle.decision, c.decision.clone().unwrap_or_default());
    assert_eq!(v.bundle.delivery, delivery);
    assert_eq!(v.bundle.paid_minor, c.paid as u64);
    assert_eq!(v.entry.is_some(), c.seq.is_some());
    let mut tampered = c.bundle.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 1;
    assert!(verify_bundle(&tampered, issuer.root_certificate()).is_err());
}

/// Decide and resolve; returns the resolved case.
fn decide_and_resolve(issuer: &Issuer<AnyStore>, id: u64, now: UnixSeconds) -> CaseRecord {
    let d = issuer
        .decide_case(id, "ops-ben", "by the rules", now)
        .unwrap();
    assert_eq!(d.state, CaseState::Decided);
    let r = issuer
        .resolve_case(id, "ops-ben", "done", now.plus(1))
        .unwrap();
    assert_eq!(r.decision, d.decision);
    assert_eq!(r.resolved_at, Some(now.plus(1)));
    // Resolving twice is refused and changes nothing.
    let again = issuer.resolve_case(id, "ops-ben", "again", now.plus(2));
    assert!(
        matches!(
            again,
            Err(IssuerError::Case(CaseProblem::WrongState { .. }))
        ),
        "{again:?}"
    );
    let (stored, events) = issuer.case(id).unwrap();
    assert_eq!(stored, r);
    let states: Vec<_> = events.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(
        states,
        [
            (None, CaseState::Open),
            (Some(CaseState::Open), CaseState::Decided),
            (Some(CaseState::Decided), r.state),
        ]
    );
    r
}

#[test]
fn a_payment_the_payee_reported_is_the_payees_and_the_claim_is_rejected() {
    on_every_backend_with("cases_payee_holds", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let p = pay(&mut alice, &mut bob, 1_200, T0.plus(10));
        sync(issuer, &mut alice, T0.plus(20));
        sync(issuer, &mut bob, T0.plus(30));
        let online = issuer.customer_balance("alice").unwrap();
        for kind in [CaseKind::PaidNotReceived, CaseKind::RefusedButDebited] {
            let c = issuer
                .open_case(&opening(kind, &alice, Some(seq_of(&p))), T0.plus(40))
                .unwrap();
            assert_eq!(c.state, CaseState::Open);
            assert_eq!(c.amount, 1_200);
            check_bundle(issuer, &c, BundleDelivery::Delivered);
            let r = decide_and_resolve(issuer, c.id, T0.plus(50));
            assert_eq!(decision(&r), Decision::PayeeHolds);
            assert_eq!(r.state, CaseState::Rejected);
            assert_eq!(r.paid, 0);
            check_bundle(issuer, &r, BundleDelivery::Delivered);
        }
        assert_eq!(issuer.customer_balance("alice").unwrap(), online);
        assert_eq!(issuer.wallet_balance(&bob.wallet_id()).unwrap(), 1_200);
        let counts = issuer.case_counts().unwrap();
        assert_eq!((counts.opened, counts.resolved, counts.rejected), (2, 0, 2));
        assert_books(issuer);
    });
}

/// Bob's TA refused Alice's payment (its request had expired). The case
/// holds it: Bob's sync after the window returns nothing, notes the window
/// closed, and the case returns it to Alice, once.
#[test]
fn a_refused_payment_held_by_a_case_is_returned_by_the_case_once() {
    on_every_backend_with("cases_return", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let t = T0.plus(10);
        let late = bob.request(eur(350), 60, t).unwrap();
        let p = alice.pay(&late, t).unwrap();
        assert!(bob.receive(&p, t.plus(61)).is_err());
        sync(issuer, &mut alice, t.plus(100));
        let seq = seq_of(&p);
        let c = issuer
            .open_case(
                &opening(CaseKind::RefusedButDebited, &alice, Some(seq)),
                t.plus(200),
            )
            .unwrap();
        check_bundle(issuer, &c, BundleDelivery::Pending);
        assert_eq!(
            issuer
                .store()
                .begin()
                .unwrap()
                .entries_held_by_cases()
                .unwrap(),
            vec![(alice.wallet_id(), seq)]
        );
        // The payee's window is open: the evidence does not decide yet.
        let early = issuer.decide_case(c.id, "ops-ben", "", t.plus(300));
        assert!(matches!(
            early,
            Err(IssuerError::Case(CaseProblem::AwaitingPayee))
        ));
        assert_eq!(issuer.case(c.id).unwrap().0, c, "nothing changed");
        let window = issuer.lifecycle_rules().unwrap().return_after_seconds;
        let out = sync(issuer, &mut bob, t.plus(window + 500));
        assert_eq!(out.returned.count, 0, "the case holds it");
        assert_eq!(out.stranded.minor, 350);
        let online = issuer.customer_balance("alice").unwrap();
        let r = decide_and_resolve(issuer, c.id, t.plus(window + 600));
        assert_eq!(decision(&r), Decision::ReturnToPayer);
        assert_eq!(r.state, CaseState::Resolved);
        assert_eq!(r.paid, 350);
        assert!(r.window_closed_at.is_some());
        check_bundle(issuer, &r, BundleDelivery::Returned);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 350);
        assert_eq!(issuer.wallet_balance(&bob.wallet_id()).unwrap(), 0);
        // The lifecycle does not return it again; nothing is held any more.
        let out = sync(issuer, &mut bob, t.plus(window + 700));
        assert_eq!(out.returned.count, 0);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 350);
        assert!(
            issuer
                .store()
                .begin()
                .unwrap()
                .entries_held_by_cases()
                .unwrap()
                .is_empty()
        );
        assert_books(issuer);
    });
}

/// The lifecycle returned the payment before the case: the case records it
/// and pays nothing. A case decided before a lifecycle return (the payee
/// closed) is refused at resolve (the evidence changed), then decided again.
#[test]
fn a_payment_the_lifecycle_returned_is_never_paid_again_by_a_case() {
    on_every_backend_with("cases_no_double_pay", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let t = T0.plus(10);
        let r1 = bob.request(eur(100), 60, t).unwrap();
        let p1 = alice.pay(&r1, t).unwrap();
        let r2 = bob.request(eur(250), 60, t.plus(1)).unwrap();
        let p2 = alice.pay(&r2, t.plus(1)).unwrap();
        sync(issuer, &mut alice, t.plus(100));
        let window = issuer.lifecycle_rules().unwrap().return_after_seconds;
        // p1: a case decided once Bob's window closed.
        let c2 = issuer
            .open_case(
                &opening(CaseKind::PaidNotReceived, &alice, Some(seq_of(&p2))),
                t.plus(150),
            )
            .unwrap();
        let out = sync(issuer, &mut bob, t.plus(window + 500));
        assert_eq!(
            (out.returned.count, out.returned.minor),
            (1, 100),
            "p1 by rule 2"
        );
        let online = issuer.customer_balance("alice").unwrap();
        let c1 = issuer
            .open_case(
                &opening(CaseKind::PaidNotReceived, &alice, Some(seq_of(&p1))),
                t.plus(window + 600),
            )
            .unwrap();
        check_bundle(issuer, &c1, BundleDelivery::Returned);
        let r = decide_and_resolve(issuer, c1.id, t.plus(window + 700));
        assert_eq!(decision(&r), Decision::ReturnedByRule);
        assert_eq!((r.state, r.paid), (CaseState::Resolved, 0));
        assert_eq!(issuer.customer_balance("alice").unwrap(), online);
        // p2: decided (return to payer), then Bob's wallet is retired and
        // closed, which returns it by rule: resolve is refused, nothing paid.
        let d = issuer
            .decide_case(c2.id, "ops-ben", "", t.plus(window + 800))
            .unwrap();
        assert_eq!(decision(&d), Decision::ReturnToPayer);
        issuer
            .retire(
                &bob.wallet_id(),
                Retirement::Broken,
                "",
                t.plus(window + 900),
            )
            .unwrap();
        let rec = issuer.wallet(&bob.wallet_id()).unwrap();
        let due = issuer.closes_at(&rec).unwrap();
        let closed = issuer.close_due(due, 10).unwrap();
        assert_eq!((closed.closed, closed.returned_minor), (1, 250));
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 250);
        let refused = issuer.resolve_case(c2.id, "ops-ben", "", due.plus(1));
        assert!(
            matches!(
                refused,
                Err(IssuerError::Case(CaseProblem::EvidenceChanged { .. }))
            ),
            "{refused:?}"
        );
        assert_eq!(issuer.case(c2.id).unwrap().0.state, CaseState::Decided);
        let d = issuer
            .decide_case(c2.id, "ops-ben", "again", due.plus(2))
            .unwrap();
        assert_eq!(decision(&d), Decision::ReturnedByRule);
        let r = issuer
            .resolve_case(c2.id, "ops-ben", "", due.plus(3))
            .unwrap();
        assert_eq!((r.state, r.paid), (CaseState::Resolved, 0));
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 250);
        assert_books(issuer);
    });
}

/// "Not my payment": a payment Alice's key signed is hers; one her lost
/// phone signed after she reported it is refunded by the guarantee fund,
/// once (a second case, a wallet case); where the scheme does not refund
/// lost wallets it is rejected.
#[test]
fn not_my_payment_is_the_customers_unless_signed_after_the_wallet_was_reported_lost() {
    on_every_backend_with("cases_not_mine", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        // Dave stays offline until the end (his CRL never lists Alice).
        let mut dave = customer_with_wallet(issuer, "dave", 0, 0);
        let mine = pay(&mut alice, &mut carol, 300, T0.plus(10));
        issuer
            .retire(&alice.wallet_id(), Retirement::Lost, "stolen", T0.plus(100))
            .unwrap();
        // The thief pays Carol, offline (her CRL predates the report).
        let stolen1 = pay(&mut alice, &mut carol, 400, T0.plus(200));
        let stolen2 = pay(&mut alice, &mut carol, 500, T0.plus(201));
        sync(issuer, &mut carol, T0.plus(300));
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&mine))),
                T0.plus(400),
            )
            .unwrap();
        let v = verify_bundle(&c.bundle, issuer.root_certificate()).unwrap();
        assert_eq!(v.bundle.revoked_at, T0.plus(100));
        assert!(v.bundle.crl_number > 0);
        assert_eq!(v.bundle.retired, "lost");
        let r = decide_and_resolve(issuer, c.id, T0.plus(410));
        assert_eq!(
            (decision(&r), r.state),
            (Decision::PayerSigned, CaseState::Rejected)
        );
        let (online, fund) = (issuer.customer_balance("alice").unwrap(), guarantee(issuer));
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&stolen1))),
                T0.plus(500),
            )
            .unwrap();
        let r = decide_and_resolve(issuer, c.id, T0.plus(510));
        assert_eq!(
            (decision(&r), r.state, r.paid),
            (Decision::GuaranteeRefund, CaseState::Resolved, 400)
        );
        check_bundle(issuer, &r, BundleDelivery::Delivered);
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 400);
        assert_eq!(guarantee(issuer), fund - 400);
        // The same payment again: already refunded, nothing paid.
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&stolen1))),
                T0.plus(600),
            )
            .unwrap();
        let r = decide_and_resolve(issuer, c.id, T0.plus(610));
        assert_eq!((decision(&r), r.paid), (Decision::AlreadyRefunded, 0));
        // On the wallet: only the payment not refunded yet.
        let c = issuer
            .open_case(&opening(CaseKind::NotMyPayment, &alice, None), T0.plus(700))
            .unwrap();
        assert_eq!(c.amount, 900);
        // Retention keeps every entry of a wallet an open case is about.
        let held = issuer
            .store()
            .begin()
            .unwrap()
            .entries_held_by_cases()
            .unwrap();
        let seqs = [&mine, &stolen1, &stolen2].map(|p| (alice.wallet_id(), seq_of(p)));
        assert_eq!(held, seqs.to_vec());
        let r = decide_and_resolve(issuer, c.id, T0.plus(710));
        assert_eq!((decision(&r), r.paid), (Decision::GuaranteeRefund, 500));
        check_bundle(issuer, &r, BundleDelivery::None);
        let c = issuer
            .open_case(&opening(CaseKind::NotMyPayment, &alice, None), T0.plus(800))
            .unwrap();
        let r = decide_and_resolve(issuer, c.id, T0.plus(810));
        assert_eq!((decision(&r), r.paid), (Decision::NothingToRefund, 0));
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 900);
        assert_eq!(guarantee(issuer), fund - 900);
        assert_books(issuer);
        // Where lost wallets are not refunded, the claim is rejected.
        issuer
            .set_lifecycle_rules(&LifecycleRules {
                refund_lost: false,
                ..LifecycleRules::default()
            })
            .unwrap();
        let stolen3 = pay(&mut alice, &mut dave, 50, T0.plus(900));
        sync(issuer, &mut dave, T0.plus(950));
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&stolen3))),
                T0.plus(1_000),
            )
            .unwrap();
        let r = decide_and_resolve(issuer, c.id, T0.plus(1_010));
        assert_eq!(
            (decision(&r), r.state),
            (Decision::NoRefundRule, CaseState::Rejected)
        );
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 900);
        assert_books(issuer);
    });
}

/// A double spend of the wallet at the payment's seq: the clawback rules
/// settled it; the case rejects the claim and carries the proof.
#[test]
fn not_my_payment_on_a_double_spent_seq_follows_the_clawback_rules() {
    on_every_backend_with("cases_double_spend", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 6_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        let mut clone = Wallet::open(alice.vault().clone()).unwrap();
        let p = pay(&mut alice, &mut bob, 5_000, T0.plus(10));
        pay(&mut clone, &mut carol, 4_000, T0.plus(11));
        sync(issuer, &mut bob, T0.plus(100));
        let out = sync(issuer, &mut carol, T0.plus(101));
        assert_eq!(out.double_spends.len(), 1);
        let online = issuer.customer_balance("alice").unwrap();
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&p))),
                T0.plus(200),
            )
            .unwrap();
        let v = verify_bundle(&c.bundle, issuer.root_certificate()).unwrap();
        assert_eq!(v.double_spends.len(), 1);
        assert!(v.statements().iter().any(|s| s.contains("double spend")));
        let r = decide_and_resolve(issuer, c.id, T0.plus(210));
        assert_eq!(
            (decision(&r), r.state),
            (Decision::DoubleSpendRules, CaseState::Rejected)
        );
        assert_eq!(issuer.customer_balance("alice").unwrap(), online);
        assert_books(issuer);
    });
}

#[test]
fn bad_requests_are_refused_with_their_reason_and_change_nothing() {
    on_every_backend_with("cases_refusals", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut bob = customer_with_wallet(issuer, "bob", 0, 0);
        let p = pay(&mut alice, &mut bob, 100, T0.plus(10));
        let unsynced = pay(&mut alice, &mut bob, 100, T0.plus(11));
        sync(issuer, &mut bob, T0.plus(20));
        let seq = seq_of(&p);
        let case = |e: &Result<CaseRecord, IssuerError>| match e {
            Err(IssuerError::Case(p)) => p.code(),
            other => panic!("{other:?}"),
        };
        let mut bad = opening(CaseKind::PaidNotReceived, &alice, None);
        assert_eq!(
            case(&issuer.open_case(&bad, T0.plus(30))),
            "kind_needs_payment"
        );
        bad.seq = Some(seq + 10);
        assert_eq!(
            case(&issuer.open_case(&bad, T0.plus(30))),
            "unknown_payment"
        );
        bad.seq = Some(seq);
        bad.opened_by = String::new();
        assert_eq!(case(&issuer.open_case(&bad, T0.plus(30))), "text");
        bad.opened_by = "ops".into();
        bad.note = "x".repeat(257);
        assert_eq!(case(&issuer.open_case(&bad, T0.plus(30))), "text");
        let mut unknown = opening(CaseKind::NotMyPayment, &alice, None);
        unknown.payer = WalletId([9; 16]);
        assert!(matches!(
            issuer.open_case(&unknown, T0.plus(30)),
            Err(IssuerError::UnknownWallet)
        ));
        assert_eq!(issuer.case_counts().unwrap().opened, 0);
        let c = issuer
            .open_case(
                &opening(CaseKind::PaidNotReceived, &alice, Some(seq)),
                T0.plus(30),
            )
            .unwrap();
        assert_eq!(
            case(&issuer.open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq)),
                T0.plus(31)
            )),
            "already_open"
        );
        assert_eq!(
            case(&issuer.resolve_case(c.id, "ops", "", T0.plus(32))),
            "wrong_state"
        );
        assert_eq!(case(&issuer.decide_case(c.id, "", "", T0.plus(32))), "text");
        assert_eq!(
            case(&issuer.decide_case(c.id + 100, "ops", "", T0.plus(32))),
            "unknown_case"
        );
        assert!(matches!(
            issuer.case(c.id + 100),
            Err(IssuerError::Case(CaseProblem::UnknownCase { .. }))
        ));
        let (stored, events) = issuer.case(c.id).unwrap();
        assert_eq!((stored, events.len()), (c.clone(), 1));
        assert_eq!(issuer.case_counts().unwrap().opened, 1);
        assert_eq!(
            issuer.cases(Some(CaseState::Open), 0, 10).unwrap(),
            vec![c.clone()]
        );
        assert!(
            issuer
                .cases(Some(CaseState::Resolved), 0, 10)
                .unwrap()
                .is_empty()
        );
        // The payment Bob reported but Alice did not yet: Bob's report recorded it.
        let _ = unsynced;
        assert_books(issuer);
    });
}

/// Operators resolving one case at once (four threads): one resolution
/// pays, the others are refused, the guarantee fund pays once.
#[test]
fn concurrent_resolutions_pay_once() {
    on_every_backend_with("cases_concurrent", &config(), |issuer| {
        let mut alice = customer_with_wallet(issuer, "alice", 5_000, 5_000);
        let mut carol = customer_with_wallet(issuer, "carol", 0, 0);
        issuer
            .retire(&alice.wallet_id(), Retirement::Lost, "stolen", T0.plus(100))
            .unwrap();
        let stolen = pay(&mut alice, &mut carol, 700, T0.plus(200));
        sync(issuer, &mut carol, T0.plus(300));
        let c = issuer
            .open_case(
                &opening(CaseKind::NotMyPayment, &alice, Some(seq_of(&stolen))),
                T0.plus(400),
            )
            .unwrap();
        issuer
            .decide_case(c.id, "ops-ana", "", T0.plus(410))
            .unwrap();
        let (online, fund) = (issuer.customer_balance("alice").unwrap(), guarantee(issuer));
        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|k| {
                    scope.spawn(move || {
                        issuer.resolve_case(c.id, &format!("ops-{k}"), "", T0.plus(420))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let paid: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(paid.len(), 1, "{results:?}");
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(
                matches!(r, Err(IssuerError::Case(CaseProblem::WrongState { .. }))),
                "{r:?}"
            );
        }
        assert_eq!(issuer.customer_balance("alice").unwrap(), online + 700);
        assert_eq!(guarantee(issuer), fund - 700);
        assert_eq!(issuer.case(c.id).unwrap().1.len(), 3);
        assert_books(issuer);
    });
}
