//! A scheme of two issuers on loopback (issue 12's acceptance): three real
//! `offpay` processes (the scheme, `bank-a`, `bank-b`), each with its own
//! database, on SQLite and on PostgreSQL. Wallets are in-process and talk to
//! their own issuer over HTTP only.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::path::Path;

use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::pki::Certificate;
use offpay_test_support::cluster::{Backend, Cluster};
use offpay_test_support::server::{RespExt, b64d, now};
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;
use serde_json::Value;

/// A wallet's offline balance, minor units.
pub fn bal(w: &Wallet<MemoryVault>) -> u64 {
    w.balance().map_or(0, |a| a.minor)
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_offpay"))
}

/// The scheme's claims (every state), as JSON objects.
pub fn scheme_claims(c: &Cluster) -> Vec<Value> {
    let v = c.scheme.get_json("/v1/scheme/claims?limit=1000");
    v["claims"]
        .as_array()
        .unwrap_or_else(|| panic!("no claims in {v}"))
        .clone()
}

/// A cycle's positions by issuer id (hex), checked to sum to zero.
pub fn positions(cycle: &Value) -> Vec<(String, i128)> {
    let ps: Vec<(String, i128)> = cycle["positions"]
        .as_array()
        .unwrap_or_else(|| panic!("no positions in {cycle}"))
        .iter()
        .map(|p| {
            let n = &p["net_minor"];
            let net = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
                .unwrap_or_else(|| panic!("net_minor of {p}"));
            (p["issuer"].as_str().unwrap().to_string(), net)
        })
        .collect();
    assert_eq!(
        ps.iter().map(|(_, n)| n).sum::<i128>(),
        0,
        "positions sum to zero: {cycle}"
    );
    ps
}

fn position_of(ps: &[(String, i128)], issuer: &str) -> i128 {
    ps.iter().find(|(i, _)| i == issuer).map_or(0, |(_, n)| *n)
}

/// Cross-issuer payments both ways and A -> B -> A (bob spends at bank A the
/// money he received from bank A): every payee is paid once, however often
/// wallets sync and links run; each issuer's ledger and its peer account
/// agree with the other's; a settlement cycle nets them to zero and each
/// statement is posted against the settlement account.
fn both_ways_settle_once_and_net_to_zero(backend: Backend) {
    let Some(c) = Cluster::start(bin(), backend, &format!("both_{}", backend.name())) else {
        return;
    };
    let (a_id, b_id) = (c.a.issuer_id.clone(), c.b.issuer_id.clone());
    assert_ne!(a_id, b_id);
    assert_eq!(
        c.a.root_der(),
        c.root,
        "bank-a's wallets trust the scheme root"
    );
    assert_eq!(
        c.b.root_der(),
        c.root,
        "bank-b's wallets trust the scheme root"
    );
    let mut alice = c.a.customer_with_wallet("alice", 0, 10_000);
    let mut carol = c.a.customer_with_wallet("carol", 0, 0);
    let mut bob = c.b.customer_with_wallet("bob", 0, 0);
    let mut dave = c.b.customer_with_wallet("dave", 0, 4_000);

    // A -> B, then B -> A with the same money (transitivity), then B -> A.
    pay(&mut alice, &mut bob, 3_000, now());
    pay(&mut bob, &mut carol, 2_000, now());
    pay(&mut dave, &mut alice, 500, now());
    for _ in 0..2 {
        for w in [&mut alice, &mut carol] {
            c.a.sync(w);
        }
        for w in [&mut bob, &mut dave] {
            c.b.sync(w);
        }
        c.link_all();
    }
    assert_eq!(bal(&alice), 7_500);
    assert_eq!(c.a.sub_account(&alice), 7_500);
    assert_eq!(c.a.sub_account(&carol), 2_000);
    assert_eq!(c.b.sub_account(&bob), 1_000);
    assert_eq!(c.b.sub_account(&dave), 3_500);
    // One claim per cross-issuer payment, at the scheme and at both issuers.
    let claims = scheme_claims(&c);
    assert_eq!(claims.len(), 3, "{claims:?}");
    // A's wallets paid 3000 to B's, B's paid 2500 to A's: A owes B 500.
    assert_eq!(c.a.peer_account(&b_id), 500);
    assert_eq!(c.b.peer_account(&a_id), -500);
    c.assert_invariants();

    let cycle = c.close_cycle();
    assert_eq!(cycle["claims"], 3, "{cycle}");
    let ps = positions(&cycle);
    assert_eq!(position_of(&ps, &a_id).abs(), 500, "{cycle}");
    assert_eq!(position_of(&ps, &a_id), -position_of(&ps, &b_id));
    // Each issuer posted its statement: nothing open with the other any more.
    assert_eq!(c.a.peer_account(&b_id), 0, "{}", c.a.scheme_status());
    assert_eq!(c.b.peer_account(&a_id), 0, "{}", c.b.scheme_status());
    for n in [&c.a, &c.b] {
        let st = n.scheme_status();
        assert_eq!(st["last_statement_cycle"], cycle["cycle"], "{st}");
    }
    // A cycle with nothing new in it changes nothing.
    let again = c.close_cycle();
    assert_eq!(again["claims"], 0, "{again}");
    assert_eq!(c.a.sub_account(&alice), 7_500);
    assert_eq!(c.b.sub_account(&bob), 1_000);
    c.assert_invariants();
}

#[test]
fn both_ways_settle_once_and_net_to_zero_sqlite() {
    both_ways_settle_once_and_net_to_zero(Backend::Sqlite);
}

#[test]
fn both_ways_settle_once_and_net_to_zero_postgres() {
    both_ways_settle_once_and_net_to_zero(Backend::Postgres);
}

/// A cloned wallet of bank A pays bob at bank B and carol at bank A with the
/// same sequence number: bank A sees carol's entry from her sync and bob's
/// through the scheme, proves the fork, revokes the payer; both payees keep
/// every cent; the losses stay with bank A.
fn cross_issuer_double_spend(backend: Backend) {
    let Some(c) = Cluster::start(bin(), backend, &format!("fork_{}", backend.name())) else {
        return;
    };
    let mut alice = c.a.customer_with_wallet("alice", 1_000, 5_000);
    let mut carol = c.a.customer_with_wallet("carol", 0, 0);
    let mut bob = c.b.customer_with_wallet("bob", 0, 0);
    let mut clone = Wallet::open(alice.vault().clone()).unwrap();
    pay(&mut alice, &mut bob, 5_000, now());
    pay(&mut clone, &mut carol, 4_000, now());
    c.b.sync(&mut bob);
    c.a.sync(&mut carol);
    c.link_all();

    assert_eq!(c.b.sub_account(&bob), 5_000, "bob is paid in full");
    assert_eq!(c.a.sub_account(&carol), 4_000, "carol is paid in full");
    let wa = c.a.wallet_view(&alice);
    assert_eq!(wa["state"], "revoked", "{wa}");
    assert_eq!(wa["clawed_back_minor"], 1_000, "{wa}");
    assert_eq!(wa["guaranteed_minor"], 3_000, "{wa}");
    let ds = c.a.get_json("/v1/admin/double-spends?limit=5");
    let list = ds["double_spends"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{ds}");
    assert_eq!(list[0]["payer"], alice.wallet_id().to_hex());
    let root = Certificate::from_der(&c.root).unwrap();
    let proven =
        verify_double_spend_bytes(&b64d(list[0]["proof"].as_str().unwrap()), &root).unwrap();
    assert_eq!(proven.payer, alice.wallet_id());
    // Bank B saw one entry only: no proof there.
    let ds_b = c.b.get_json("/v1/admin/double-spends?limit=5");
    assert_eq!(ds_b["double_spends"].as_array().unwrap().len(), 0, "{ds_b}");
    // Bank A owes bank B the whole 5000 and settles it.
    assert_eq!(c.a.peer_account(&c.b.issuer_id), 5_000);
    assert_eq!(c.b.peer_account(&c.a.issuer_id), -5_000);
    let cycle = c.close_cycle();
    let ps = positions(&cycle);
    assert_eq!(position_of(&ps, &c.a.issuer_id).abs(), 5_000, "{cycle}");
    assert_eq!(c.a.peer_account(&c.b.issuer_id), 0);
    c.assert_invariants();
}

#[test]
fn cross_issuer_double_spend_sqlite() {
    cross_issuer_double_spend(Backend::Sqlite);
}

#[test]
fn cross_issuer_double_spend_postgres() {
    cross_issuer_double_spend(Backend::Postgres);
}

/// The scheme suspends bank A. A payment made before stays good (bob is paid,
/// bank A owes it); after bank B's wallets' next sync they refuse bank A's
/// wallets offline, both as payer and as payee; reinstated, they accept again.
fn suspended_issuer_is_refused(backend: Backend) {
    let Some(c) = Cluster::start(bin(), backend, &format!("susp_{}", backend.name())) else {
        return;
    };
    let mut alice = c.a.customer_with_wallet("alice", 0, 5_000);
    let mut bob = c.b.customer_with_wallet("bob", 0, 0);
    let mut dave = c.b.customer_with_wallet("dave", 0, 2_000);
    // Before: accepted.
    let before = pay(&mut alice, &mut bob, 1_000, now());
    assert!(!before.is_empty());

    c.scheme
        .op("POST", "/v1/scheme/issuers/bank-a/suspend", None)
        .expect(200);
    c.link_all();
    // Bob has not synced since: he still accepts (offline, he cannot know).
    pay(&mut alice, &mut bob, 500, now());
    c.b.sync(&mut bob);
    c.b.sync(&mut dave);
    assert_eq!(
        c.b.sub_account(&bob),
        1_500,
        "payments made before stay owed"
    );

    // After the sync: a payment from bank A's wallet is refused by bob.
    let req = bob.request(eur(700), 300, now()).unwrap();
    let payment = alice.pay(&req, now()).unwrap();
    let bob_before = bal(&bob);
    let refused = bob.receive(&payment, now());
    assert!(refused.is_err(), "a suspended issuer's payer is refused");
    assert!(
        format!("{:?}", refused.unwrap_err())
            .to_lowercase()
            .contains("suspend"),
        "the refusal names the suspension"
    );
    assert_eq!(bal(&bob), bob_before, "nothing received");
    // And dave will not pay alice.
    let req = alice.request(eur(300), 300, now()).unwrap();
    assert!(
        dave.pay(&req, now()).is_err(),
        "a suspended issuer's payee is refused"
    );
    assert_eq!(bal(&dave), 2_000);

    // Reinstated: after the next sync, accepted again.
    c.scheme
        .op("POST", "/v1/scheme/issuers/bank-a/reinstate", None)
        .expect(200);
    c.link_all();
    c.b.sync(&mut dave);
    pay(&mut dave, &mut alice, 300, now());
    c.b.sync(&mut dave);
    c.a.sync(&mut alice);
    c.link_all();
    let cycle = c.close_cycle();
    positions(&cycle);
    c.assert_invariants();
}

#[test]
fn suspended_issuer_is_refused_sqlite() {
    suspended_issuer_is_refused(Backend::Sqlite);
}

#[test]
fn suspended_issuer_is_refused_postgres() {
    suspended_issuer_is_refused(Backend::Postgres);
}
