//! Privacy by retention through the CLI against a real server: `offpay admin
//! retention run` deletes the pairing of an old payment, `offpay admin
//! export` no longer names the counterparty, and a later double spend on the
//! pruned seq is proven by a RetainedDoubleSpendProof that `offpay evidence
//! verify` accepts with the scheme root alone.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use common::*;

#[test]
fn retention_export_and_a_retained_proof_through_the_cli() {
    let s = Server::start_with(&[
        "--retention-seconds",
        "1",
        "--retention-interval-seconds",
        "0",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let f = |n: &str| p(d, n);
    let (alice, bob, carol) = (d.join("alice"), d.join("bob"), d.join("carol"));
    s.customer("alice", "100.00");
    s.customer("bob", "0");
    s.customer("carol", "0");
    let alice_id = s.wallet("alice", &alice);
    let bob_id = s.wallet("bob", &bob);
    s.wallet("carol", &carol);
    s.load(&alice_id, &alice, "50.00");
    // A copy of Alice's whole wallet before she pays.
    let copy = d.join("alice-copy");
    assert!(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&alice)
            .arg(&copy)
            .status()
            .unwrap()
            .success()
    );
    w(&bob, &["request", "12.50", "--out", &f("r.bin")]);
    w(&alice, &["pay", &f("r.bin"), "--out", &f("p.bin")]);
    w(&bob, &["receive", &f("p.bin"), "--out", &f("c.bin")]);
    w(&alice, &["confirm", &f("c.bin")]);
    w(&alice, &["sync"]);
    w(&bob, &["sync"]);
    let before = s.admin(&["export", &alice_id]);
    assert!(before.to_string().contains(&bob_id), "{before}");
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let r = s.admin(&["retention", "run"]);
    assert_eq!(r["pruned"], 1, "{r}");
    assert_eq!(r["enabled"], true);
    let out = f("alice-export.json");
    let after = s.admin(&["export", &alice_id, "--out", &out]);
    assert!(!after.to_string().contains(&bob_id), "{after}");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.contains(&alice_id) && !file.contains(&bob_id));
    assert_eq!(s.sub_account_minor(&bob_id), 1_250);
    s.assert_invariants();
    // The copy pays Carol with the same seq: proven against the retained hash.
    w(&carol, &["request", "6.00", "--out", &f("r2.bin")]);
    w(&copy, &["pay", &f("r2.bin"), "--out", &f("p2.bin")]);
    w(&carol, &["receive", &f("p2.bin"), "--out", &f("c2.bin")]);
    w(&carol, &["sync"]);
    let proofs = d.join("proofs");
    let ds = s.admin(&["double-spends", "--out-dir", proofs.to_str().unwrap()]);
    assert_eq!(ds["double_spends"][0]["proof_verified"], true, "{ds}");
    let proof = ds["double_spends"][0]["proof_file"]
        .as_str()
        .unwrap()
        .to_string();
    let pki = d.join("pki");
    s.admin(&["pki", "export", pki.to_str().unwrap()]);
    let v = ok(&["evidence", "verify", &proof, "--root", &p(&pki, "root.pem")]);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["kind"], "retained");
    assert_eq!(v["payer"], alice_id.as_str());
    assert_eq!(v["amount_minor"], 600);
    assert_eq!(v["rests_on_issuer_signature"], true);
    // A tampered proof is refused.
    let mut bytes = std::fs::read(&proof).unwrap();
    let n = bytes.len() - 1;
    bytes[n] ^= 1;
    std::fs::write(f("bad.proof"), &bytes).unwrap();
    let r = run(&[
        "--json",
        "evidence",
        "verify",
        &f("bad.proof"),
        "--root",
        &p(&pki, "root.pem"),
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    s.assert_invariants();
}
