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
    let server = Server::start_with(&[
        "--retention-seconds",
        "1",
        "--retention-interval-seconds",
        "0",
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let f = |name: &str| p(dir, name);
    let (alice, bob, carol) = (dir.join("alice"), dir.join("bob"), dir.join("carol"));
    server.customer("alice", "100.00");
    server.customer("bob", "0");
    server.customer("carol", "0");
    let alice_id = server.wallet("alice", &alice);
    let bob_id = server.wallet("bob", &bob);
    server.wallet("carol", &carol);
    server.load(&alice_id, &alice, "50.00");
    // A copy of Alice's whole wallet before she pays.
    let copy = dir.join("alice-copy");
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
    let before = server.admin(&["export", &alice_id]);
    assert!(before.to_string().contains(&bob_id), "{before}");
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let report = server.admin(&["retention", "run"]);
    assert_eq!(report["pruned"], 1, "{report}");
    assert_eq!(report["enabled"], true);
    let out = f("alice-export.json");
    let after = server.admin(&["export", &alice_id, "--out", &out]);
    assert!(!after.to_string().contains(&bob_id), "{after}");
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.contains(&alice_id) && !file.contains(&bob_id));
    assert_eq!(server.sub_account_minor(&bob_id), 1_250);
    server.assert_invariants();
    // The copy pays Carol with the same seq: proven against the retained hash.
    w(&carol, &["request", "6.00", "--out", &f("r2.bin")]);
    w(&copy, &["pay", &f("r2.bin"), "--out", &f("p2.bin")]);
    w(&carol, &["receive", &f("p2.bin"), "--out", &f("c2.bin")]);
    w(&carol, &["sync"]);
    let proofs = dir.join("proofs");
    let ds = server.admin(&["double-spends", "--out-dir", proofs.to_str().unwrap()]);
    assert_eq!(ds["double_spends"][0]["proof_verified"], true, "{ds}");
    let proof = ds["double_spends"][0]["proof_file"]
        .as_str()
        .unwrap()
        .to_string();
    let pki = dir.join("pki");
    server.admin(&["pki", "export", pki.to_str().unwrap()]);
    let proven = ok(&["evidence", "verify", &proof, "--root", &p(&pki, "root.pem")]);
    assert_eq!(proven["valid"], true, "{proven}");
    assert_eq!(proven["kind"], "retained");
    assert_eq!(proven["payer"], alice_id.as_str());
    assert_eq!(proven["amount_minor"], 600);
    assert_eq!(proven["rests_on_issuer_signature"], true);
    // A tampered proof is refused.
    let mut bytes = std::fs::read(&proof).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(f("bad.proof"), &bytes).unwrap();
    let report = run(&[
        "--json",
        "evidence",
        "verify",
        &f("bad.proof"),
        "--root",
        &p(&pki, "root.pem"),
    ]);
    assert_ne!(report.code, 0, "{report:?}");
    server.assert_invariants();
}
