//! Dispute cases from the command line: `offpay admin case open|list|show|
//! decide|resolve|bundle`, and `offpay evidence verify` on the bundle (a
//! tampered one refused).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use common::*;

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_case_is_opened_decided_resolved_and_its_bundle_verifies_offline() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    server.customer("alice", "100.00");
    server.customer("bob", "0");
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let alice_id = server.wallet("alice", &alice);
    server.wallet("bob", &bob);
    server.load(&alice_id, &alice, "20.00");
    let file = |n: &str| p(tmp.path(), n);
    w(&bob, &["request", "4.00", "--out", &file("req.bin")]);
    let paid = w(
        &alice,
        &["pay", &file("req.bin"), "--out", &file("pay.bin")],
    );
    let seq = paid["seq"].as_u64().unwrap().to_string();
    w(
        &bob,
        &["receive", &file("pay.bin"), "--out", &file("rcpt.bin")],
    );
    w(&alice, &["confirm", &file("rcpt.bin")]);
    w(&bob, &["sync"]);
    w(&alice, &["sync"]);
    let online = server.online_minor("alice");

    // Refusals name their reason and open nothing.
    let open = |kind: &str, seq: &str| {
        vec![
            "case", "open", "--kind", kind, "--wallet", &alice_id, "--seq", seq, "--by", "ops",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let bad_kind = open("refund_me", &seq);
    server.admin_refused(&args(&bad_kind), "invalid_input");
    let bad_seq = open("paid_not_received", "99");
    server.admin_refused(&args(&bad_seq), "case");
    assert_eq!(
        server.admin(&["case", "list"])["cases"],
        serde_json::json!([])
    );

    let good = open("paid_not_received", &seq);
    let case = server.admin(&args(&good));
    assert_eq!(case["state"], "open");
    let id = case["id"].as_u64().unwrap().to_string();
    server.admin_refused(&args(&good), "case");
    server.admin_refused(&["case", "resolve", &id, "--by", "ops"], "case");
    let decided = server.admin(&["case", "decide", &id, "--by", "ops", "--note", "rules"]);
    assert_eq!(decided["decision"], "payee_holds");
    let resolved = server.admin(&["case", "resolve", &id, "--by", "ops"]);
    assert_eq!(resolved["state"], "rejected");
    server.admin_refused(&["case", "resolve", &id, "--by", "ops"], "case");
    let shown = server.admin(&["case", "show", &id]);
    assert_eq!(shown["events"].as_array().unwrap().len(), 3);
    let listed = server.admin(&["case", "list", "--state", "rejected"]);
    assert_eq!(listed["cases"].as_array().unwrap().len(), 1);
    assert_eq!(server.online_minor("alice"), online, "nothing paid");
    server.assert_invariants();

    // The bundle verifies with the root alone; a tampered copy does not.
    let bundle = file("case.bundle");
    server.admin(&["case", "bundle", &id, "--out", &bundle]);
    let pki = tmp.path().join("pki");
    server.admin(&["pki", "export", pki.to_str().unwrap()]);
    let root = p(&pki, "root.pem");
    let v = ok(&["evidence", "verify", &bundle, "--root", &root]);
    assert_eq!(v["type"], "evidence_bundle");
    assert_eq!(v["case_id"].to_string(), id);
    assert_eq!(v["decision"], "payee_holds");
    assert_eq!(v["delivery"], "delivered");
    let statements = v["statements"].as_array().unwrap();
    assert!(
        statements
            .iter()
            .any(|s| s.as_str().unwrap().starts_with("payer signed the entry")),
        "{v}"
    );
    assert!(
        statements
            .iter()
            .any(|s| s.as_str().unwrap().contains("payee's TA reported")),
        "{v}"
    );
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(file("bad.bundle"), &bytes).unwrap();
    refused(
        &["evidence", "verify", &file("bad.bundle"), "--root", &root],
        "bundle_bad_issuer_signature",
    );
    let text = run(&["evidence", "verify", &bundle, "--root", &root]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains("valid evidence bundle of case"),
        "{text:?}"
    );
}
