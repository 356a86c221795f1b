//! Money the issuer credits but the payee's wallet never holds, made visible
//! (payee's refusal, sync and status; payer's history; the operator's views),
//! and a merchant's pending requests (listed, cancelled, counted, checked).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::path::Path;

use common::*;

fn text(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["wallet", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 0, "{r:?}");
    r.stdout
}

fn refused_stderr(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["wallet", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    refused_text(&a)
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: one story with its fixtures (s, d, ...)
fn a_second_payment_of_one_request_is_shown_as_credited_but_not_held() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("alice", "100.00");
    s.customer("carol", "100.00");
    s.customer("bob", "0");
    let (alice, carol, bob) = (
        tmp.path().join("alice"),
        tmp.path().join("carol"),
        tmp.path().join("bob"),
    );
    let alice_id = s.wallet("alice", &alice);
    let carol_id = s.wallet("carol", &carol);
    let bob_id = s.wallet("bob", &bob);
    s.load(&alice_id, &alice, "20.00");
    s.load(&carol_id, &carol, "20.00");
    let f = |n: &str| p(tmp.path(), n);
    // One QR request, paid by two customers.
    w(&bob, &["request", "3.50", "--out", &f("req.bin")]);
    w(&alice, &["pay", &f("req.bin"), "--out", &f("pay1.bin")]);
    w(&bob, &["receive", &f("pay1.bin"), "--out", &f("rcpt1.bin")]);
    w(&alice, &["confirm", &f("rcpt1.bin")]);
    w(&carol, &["pay", &f("req.bin"), "--out", &f("pay2.bin")]);
    let v = w_refused(
        &bob,
        &["receive", &f("pay2.bin"), "--out", &f("rcpt2.bin")],
        "nonce_unknown",
    );
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("the issuer still credits 3.50 EUR to this wallet"),
        "the refusal says the issuer credits it anyway: {msg}"
    );
    // Carol's history says her payment has no receipt, and what happens to it.
    let h = w(&carol, &["history"]);
    let paid = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "paid")
        .unwrap()
        .clone();
    assert_eq!(paid["without_receipt"], true);
    assert!(
        text(&carol, &["history"])
            .contains("no receipt: the issuer credits the payee at settlement anyway")
    );
    let h = w(&alice, &["history"]);
    assert!(
        h["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["kind"] == "paid")
            .all(|i| i["without_receipt"] == false),
        "Alice's payment has its receipt: {h}"
    );
    // The payers sync (the issuer settles both payments to Bob), then Bob.
    w(&alice, &["sync"]);
    w(&carol, &["sync"]);
    let out = text(&bob, &["sync"]);
    assert!(
        out.contains("credited by the issuer, not in this wallet: 3.50 EUR"),
        "{out}"
    );
    assert_eq!(w(&bob, &["sync"])["stranded_minor"], 350);
    let st = w(&bob, &["status"]);
    assert_eq!(st["stranded_minor"], 350);
    assert_eq!(st["balance_minor"], 350);
    assert!(
        text(&bob, &["status"]).contains("credited by the issuer, not in this wallet: 3.50 EUR")
    );
    assert!(
        !text(&alice, &["status"]).contains("credited by the issuer"),
        "nothing stranded for Alice"
    );
    // The operator sees it too, and the books still balance.
    let v = s.admin(&["wallet", &bob_id]);
    assert_eq!(v["stranded_minor"], 350);
    assert_eq!(v["offline_balance_minor"], 700);
    let list = s.admin(&["wallets"]);
    let b = list["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["wallet_id"] == bob_id)
        .unwrap()
        .clone();
    assert_eq!(b["stranded_minor"], 350);
    let mut a = vec![
        "admin",
        "--server",
        &s.url,
        "--data-dir",
        s.data_dir.to_str().unwrap(),
        "wallet",
        &bob_id,
    ];
    let r = run(&a);
    assert!(r.stdout.contains("not in the wallet: 3.50 EUR"), "{r:?}");
    a.truncate(5);
    a.push("wallets");
    let r = run(&a);
    assert!(r.stdout.contains("not in the wallet: 3.50 EUR"), "{r:?}");
    s.assert_invariants();
}

#[test]
fn a_merchant_lists_counts_and_cancels_pending_requests() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("alice", "100.00");
    s.customer("bob", "0");
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let alice_id = s.wallet("alice", &alice);
    s.wallet("bob", &bob);
    s.load(&alice_id, &alice, "20.00");
    let f = |n: &str| p(tmp.path(), n);
    assert_eq!(w(&bob, &["status"])["pending_requests"], 0);
    let r1 = w(&bob, &["request", "1.00", "--out", &f("r1.bin")]);
    let r2 = w(
        &bob,
        &["request", "2.00", "--valid", "60", "--out", &f("r2.bin")],
    );
    let list = w(&bob, &["requests"]);
    let pending = list["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0]["id"], r2["nonce"], "soonest to expire first");
    assert_eq!(pending[0]["amount_minor"], 200);
    assert_eq!(pending[0]["expires_at"], r2["expires_at"]);
    assert_eq!(pending[1]["id"], r1["nonce"]);
    let st = w(&bob, &["status"]);
    assert_eq!(st["pending_requests"], 2);
    assert_eq!(st["pending_requests_max"], 16);
    assert_eq!(st["pending_request_next_expiry_at"], r2["expires_at"]);
    assert!(text(&bob, &["status"]).contains("pending requests:    2 of 16, the next expires in"));
    // Cancel by a prefix of its id, durably: a payment for it is then refused.
    let id1 = r1["nonce"].as_str().unwrap();
    let c = w(&bob, &["requests", "cancel", &id1[..8]]);
    assert_eq!(c["cancelled"], id1);
    assert_eq!(c["amount_minor"], 100);
    assert_eq!(
        w(&bob, &["requests"])["pending"].as_array().unwrap().len(),
        1
    );
    w_refused(&bob, &["requests", "--cancel", id1], "nonce_unknown");
    w(&alice, &["pay", &f("r1.bin"), "--out", &f("p1.bin")]);
    w_refused(
        &bob,
        &["receive", &f("p1.bin"), "--out", &f("x.bin")],
        "nonce_unknown",
    );
    let id2 = r2["nonce"].as_str().unwrap().to_string();
    w(&bob, &["requests", "--cancel", &id2]);
    assert_eq!(w(&bob, &["status"])["pending_requests"], 0);
    // Blocked at 16: the refusal says how many, and when the oldest expires.
    for i in 0..16 {
        let out = f(&format!("q{i}.bin"));
        w(&bob, &["request", "0.10", "--out", &out]);
    }
    let msg = refused_stderr(&bob, &["request", "0.10", "--out", &f("q16.bin")]);
    assert!(
        msg.contains("16 of 16 payment requests are pending"),
        "{msg}"
    );
    assert!(msg.contains("the oldest expires in"), "{msg}");
    assert!(msg.contains("wallet requests"), "{msg}");
}

#[test]
fn a_request_no_payer_could_pay_or_this_wallet_could_not_hold_is_refused_at_request() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("bob", "1000.00");
    let bob = tmp.path().join("bob");
    let bob_id = s.wallet("bob", &bob);
    let f = |n: &str| p(tmp.path(), n);
    // The default scheme: 500.00 per payment, 1 000.00 held at most.
    let v = w_refused(
        &bob,
        &["request", "500.01", "--out", &f("big.bin")],
        "limit_per_payment",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("per-payment limit of 500.00 EUR")
    );
    assert!(!Path::new(&f("big.bin")).exists(), "no request written");
    assert_eq!(w(&bob, &["status"])["pending_requests"], 0);
    s.load(&bob_id, &bob, "800.00");
    let v = w_refused(
        &bob,
        &["request", "250.00", "--out", &f("room.bin")],
        "limit_holding",
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("room for 200.00 EUR")
    );
    // Fits now, but not together with what is already pending: a warning.
    w(&bob, &["request", "150.00", "--out", &f("a.bin")]);
    let r = w(&bob, &["request", "100.00", "--out", &f("b.bin")]);
    assert!(
        r["warning"]
            .as_str()
            .is_some_and(|m| m.contains("not all of them can be accepted")),
        "{r}"
    );
    assert_eq!(w(&bob, &["status"])["pending_requests"], 2);
}
