//! Two wallets paying each other with the built binary, against a server on
//! a loopback port: through files, through QR code PNGs, over the tap socket
//! (and a torn tap exchange resumed), a load voucher file, a redeem, and a
//! rollback attack caught and proven through the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::io::BufRead;
use std::net::TcpListener;

use common::*;
use offpay_transport::tap::{FrameType, read_frame, write_frame};

struct Pair {
    s: Server,
    tmp: tempfile::TempDir,
    alice: std::path::PathBuf,
    bob: std::path::PathBuf,
    alice_id: String,
    bob_id: String,
}

/// A server, Alice (100.00 loaded) and Bob (empty wallet).
fn pair() -> Pair {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("alice", "500.00");
    s.customer("bob", "0");
    let alice = tmp.path().join("alice");
    let bob = tmp.path().join("bob");
    let alice_id = s.wallet("alice", &alice);
    let bob_id = s.wallet("bob", &bob);
    s.load(&alice_id, &alice, "100.00");
    assert_eq!(balance(&alice), 10_000);
    assert_eq!(s.online_minor("alice"), 40_000);
    Pair {
        s,
        tmp,
        alice,
        bob,
        alice_id,
        bob_id,
    }
}

impl Pair {
    fn f(&self, name: &str) -> String {
        p(self.tmp.path(), name)
    }

    fn sync_both_and_check(&self) {
        w(&self.alice, &["sync"]);
        w(&self.bob, &["sync"]);
        assert_eq!(
            self.s.sub_account_minor(&self.alice_id),
            balance(&self.alice) as i64
        );
        assert_eq!(
            self.s.sub_account_minor(&self.bob_id),
            balance(&self.bob) as i64
        );
        self.s.assert_invariants();
    }
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn two_wallets_pay_through_files() {
    let t = pair();
    let (req, pay, rcpt) = (t.f("req.bin"), t.f("pay.bin"), t.f("rcpt.bin"));
    let r = w(&t.bob, &["request", "12.50", "--out", &req]);
    assert_eq!(r["amount_minor"], 1250);
    assert_eq!(r["currency"], "EUR");
    assert_eq!(r["out"], req);
    assert!(r["expires_at"].as_u64().unwrap() > r["created_at"].as_u64().unwrap());
    let p = w(&t.alice, &["pay", &req, "--expect", "12.50", "--out", &pay]);
    assert_eq!(p["payee"], t.bob_id);
    assert_eq!(p["seq"], 1);
    assert_eq!(p["balance_minor"], 8_750);
    assert_eq!(p["repeated"], false);
    let rc = w(&t.bob, &["receive", &pay, "--out", &rcpt]);
    assert_eq!(rc["payer"], t.alice_id);
    assert_eq!(rc["balance_minor"], 1_250);
    assert_eq!(rc["payment_id"], p["payment_id"]);
    let c = w(&t.alice, &["confirm", &rcpt]);
    assert_eq!(c["payment_id"], p["payment_id"]);

    // Paying the same request again gives the same payment, not a second debit.
    let again = w(&t.alice, &["pay", &req, "--out", &t.f("pay2.bin")]);
    assert_eq!(again["repeated"], true);
    assert_eq!(
        std::fs::read(&pay).unwrap(),
        std::fs::read(t.f("pay2.bin")).unwrap()
    );
    assert_eq!(balance(&t.alice), 8_750);

    // Both ways, and Bob spends on what he received, still offline (minor units too).
    w(&t.alice, &["request", "250", "--minor", "--out", &req]);
    w(&t.bob, &["pay", &req, "--out", &pay]);
    w(&t.alice, &["receive", &pay, "--out", &rcpt]);
    w(&t.bob, &["confirm", &rcpt]);
    assert_eq!(balance(&t.alice), 9_000);
    assert_eq!(balance(&t.bob), 1_000);

    let h = w(&t.alice, &["history"]);
    let kinds: Vec<&str> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["loaded", "paid", "received"]);
    let st = w(&t.alice, &["status"]);
    assert_eq!(st["locked"], false);
    assert_eq!(st["seq"], 1);
    assert_eq!(st["offline_payments_left"], 199);
    assert!(st["seconds_until_sync_required"].as_u64().unwrap() > 6 * 86_400);

    t.sync_both_and_check();

    // Redeem online: the offline money goes back to Bob's account once.
    let r = w(&t.bob, &["redeem", "7.50"]);
    assert_eq!(r["settled"], true);
    assert_eq!(r["customer_balance_minor"], 750);
    assert_eq!(balance(&t.bob), 250);
    assert_eq!(t.s.online_minor("bob"), 750);
    t.sync_both_and_check();
    assert_eq!(t.s.online_minor("bob"), 750, "a synced redeem settles once");
}

#[test]
fn two_wallets_pay_through_qr_pngs() {
    let t = pair();
    let (req, pay, rcpt) = (t.f("req.png"), t.f("pay.png"), t.f("rcpt.png"));
    let r = w(&t.bob, &["request", "20", "--qr", &req, "--show-qr"]);
    assert!(r["qr_version"].as_u64().unwrap() >= 1);
    assert!(r["qr_text"].as_str().unwrap().contains('▀'));
    assert!(std::fs::read(&req).unwrap().starts_with(b"\x89PNG"));
    w(&t.alice, &["pay", "--from-qr", &req, "--qr", &pay]);
    w(&t.bob, &["receive", "--from-qr", &pay, "--qr", &rcpt]);
    w(&t.alice, &["confirm", "--from-qr", &rcpt]);
    assert_eq!(balance(&t.alice), 8_000);
    assert_eq!(balance(&t.bob), 2_000);
    // The human form draws the code on the terminal.
    let run = run(&[
        "wallet",
        "--dir",
        t.bob.to_str().unwrap(),
        "request",
        "1",
        "--show-qr",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("payment request for 1.00 EUR"),
        "{run:?}"
    );
    assert!(run.stdout.lines().filter(|l| l.contains('█')).count() > 10);
    // A PNG without a QR code is refused.
    std::fs::write(t.f("blank.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    w_refused(
        &t.alice,
        &[
            "pay",
            "--from-qr",
            &t.f("blank.png"),
            "--out",
            &t.f("x.bin"),
        ],
        "qr_unreadable",
    );
    t.sync_both_and_check();
}

#[test]
fn two_wallets_pay_through_multi_part_qr_codes() {
    let t = pair();
    let (req, pay, rcpt) = (t.f("req.png"), t.f("pay.png"), t.f("rcpt.png"));
    // Codes of at most 200 bytes: the request and the payment need several.
    let asked = w(
        &t.bob,
        &[
            "request",
            "3",
            "--qr",
            &req,
            "--qr-part-bytes",
            "200",
            "--show-qr",
        ],
    );
    let req_parts = asked["qr_parts"].as_u64().unwrap();
    assert!(req_parts >= 2, "{asked}");
    assert_eq!(
        asked["qr_files"].as_array().unwrap().len() as u64,
        req_parts
    );
    assert!(asked["qr_text"].as_str().unwrap().contains("QR part 2 of"));
    let paid = w(
        &t.alice,
        &[
            "pay",
            "--from-qr",
            &req,
            "--qr",
            &pay,
            "--qr-part-bytes",
            "200",
        ],
    );
    let files: Vec<String> = paid["qr_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert!(files.len() >= 3, "{paid}");
    assert!(files[0].ends_with(&format!("pay-1-of-{}.png", files.len())));
    // The payee scans the parts out of order, one twice, and one missing first.
    let mut args = vec!["receive".to_string(), "--from-qr".into()];
    args.extend(files.iter().skip(1).rev().cloned());
    args.extend(["--out".into(), t.f("r.bin")]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let e = w_refused(&t.bob, &argv, "qr_unreadable");
    assert!(e.to_string().contains("missing: 1 of"), "{e}");
    assert_eq!(balance(&t.bob), 0, "nothing received");
    let mut args = vec!["receive".to_string(), "--from-qr".into()];
    args.extend(files.iter().rev().cloned());
    args.push(files[1].clone());
    args.extend(["--qr".into(), rcpt.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    w(&t.bob, &argv);
    w(&t.alice, &["confirm", "--from-qr", &rcpt]);
    assert_eq!(balance(&t.alice), 9_700);
    assert_eq!(balance(&t.bob), 300);
    // The animated PNG carries the same payment: the payee already took it.
    let again = w(
        &t.bob,
        &["receive", "--from-qr", &pay, "--out", &t.f("r2.bin")],
    );
    assert_eq!(again["payment_id"], paid["payment_id"], "{again}");
    assert_eq!(balance(&t.bob), 300, "a payment is received once");
    // A part size out of range is refused before the wallet acts.
    let before = state(&t.bob);
    let bad = run(&[
        "wallet",
        "--dir",
        t.bob.to_str().unwrap(),
        "request",
        "1",
        "--qr",
        &t.f("x.png"),
        "--qr-part-bytes",
        "5",
    ]);
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.contains("--qr-part-bytes 5 is out of range"),
        "{bad:?}"
    );
    assert!(!std::path::Path::new(&t.f("x.png")).exists());
    assert_eq!(state(&t.bob), before);
    t.sync_both_and_check();
}

/// Start `wallet receive --listen 127.0.0.1:0`; the address it announces on stderr.
fn listen(dir: &std::path::Path, amount: &str) -> (std::process::Child, String) {
    let (child, addr, mut err) = tap_receiver(dir, &["--amount", amount, "--valid", "60"]);
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).is_ok_and(|n| n > 0) {}
    });
    (child, addr)
}

#[test]
fn two_wallets_pay_over_the_tap_socket() {
    let t = pair();
    let (payee, addr) = listen(&t.bob, "7.00");
    let paid = w(&t.alice, &["pay", "--tap", &addr, "--expect", "7.00"]);
    assert_eq!(paid["amount_minor"], 700);
    assert_eq!(paid["receipt"], true);
    assert_eq!(paid["attempts"], 1);
    let out = payee.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["payer"], t.alice_id);
    assert_eq!(got["payment_id"], paid["payment_id"]);
    assert_eq!(balance(&t.alice), 9_300);
    assert_eq!(balance(&t.bob), 700);

    // A payer expecting another amount refuses; the payee is told, nothing moves.
    let (payee, addr) = listen(&t.bob, "9.99");
    let before = state(&t.alice);
    w_refused(
        &t.alice,
        &["pay", "--tap", &addr, "--expect", "1.00"],
        "amount_not_expected",
    );
    let out = payee.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["code"], "peer_refused", "{v}");
    assert_eq!(state(&t.alice), before);
    assert_eq!(balance(&t.bob), 700);

    // Nobody listening: a timely, specific refusal.
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    w_refused(&t.alice, &["pay", "--tap", &free.to_string()], "tap");
    t.sync_both_and_check();
}

/// The payee's side played by hand: the first exchange tears after the
/// payment (no receipt); the payer retries by itself, sends the same payment,
/// and gets the receipt the payee's wallet gives for it. Money moves once.
#[test]
fn a_torn_tap_exchange_is_resumed() {
    let t = pair();
    let req = t.f("req.bin");
    w(&t.bob, &["request", "3.00", "--out", &req]);
    let request = std::fs::read(&req).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let bob = t.bob.clone();
    let pay_file = t.f("pay.bin");
    let rcpt_file = t.f("rcpt.bin");
    let payee = std::thread::spawn(move || {
        // 1st tap: request out, payment in, then the connection drops.
        let (mut s, _) = listener.accept().unwrap();
        write_frame(&mut s, FrameType::Request, &request).unwrap();
        let (ty, first) = read_frame(&mut s).unwrap();
        assert_eq!(ty, FrameType::Payment);
        drop(s);
        // 2nd tap: the same request; the payer's TA resends the same payment.
        let (mut s, _) = listener.accept().unwrap();
        write_frame(&mut s, FrameType::Request, &request).unwrap();
        let (_, second) = read_frame(&mut s).unwrap();
        assert_eq!(
            first, second,
            "the retried payment is byte for byte the same"
        );
        std::fs::write(&pay_file, &second).unwrap();
        w(&bob, &["receive", &pay_file, "--out", &rcpt_file]);
        let receipt = std::fs::read(&rcpt_file).unwrap();
        write_frame(&mut s, FrameType::Receipt, &receipt).unwrap();
    });
    let paid = w(&t.alice, &["pay", "--tap", &addr]);
    payee.join().unwrap();
    assert_eq!(paid["attempts"], 2);
    assert_eq!(paid["seq"], 1);
    assert_eq!(balance(&t.alice), 9_700, "debited once");
    assert_eq!(balance(&t.bob), 300, "credited once");
    t.sync_both_and_check();
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn a_load_voucher_travels_as_a_file() {
    let t = pair();
    let v = t.f("voucher.bin");
    let l = t.s.admin(&["load", &t.alice_id, "15.00", "--out", &v]);
    assert_eq!(l["load_seq"], 2);
    assert_eq!(t.s.online_minor("alice"), 38_500);
    let a = w(&t.alice, &["load", "--voucher", &v]);
    assert_eq!(a["amount_minor"], 1_500);
    assert_eq!(a["balance_minor"], 11_500);
    let before = state(&t.alice);
    w_refused(&t.alice, &["load", "--voucher", &v], "voucher_replayed");
    assert_eq!(state(&t.alice), before);
    // Bob's wallet refuses a voucher made for Alice's.
    let b = state(&t.bob);
    w_refused(&t.bob, &["load", "--voucher", &v], "wrong_wallet");
    assert_eq!(state(&t.bob), b);
    // The sync that follows does not apply it twice.
    w(&t.alice, &["sync"]);
    assert_eq!(balance(&t.alice), 11_500);
    t.sync_both_and_check();
}

/// The attack of the demo, through the CLI: restore an old copy of the wallet
/// directory, pay again with the same seq; syncs prove it.
#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn a_rolled_back_wallet_is_caught_and_proven() {
    let t = pair();
    t.s.customer("carol", "0");
    let carol = t.tmp.path().join("carol");
    let carol_id = t.s.wallet("carol", &carol);
    let copy = t.tmp.path().join("alice-copy");
    copy_dir(&t.alice, &copy);
    for (payee, file) in [(&t.bob, "b"), (&carol, "c")] {
        if file == "c" {
            std::fs::remove_dir_all(&t.alice).unwrap();
            copy_dir(&copy, &t.alice);
        }
        let (req, pay, rcpt) = (
            t.f(&format!("{file}-req.bin")),
            t.f(&format!("{file}-pay.bin")),
            t.f(&format!("{file}-rcpt.bin")),
        );
        w(payee, &["request", "80.00", "--out", &req]);
        let p = w(&t.alice, &["pay", &req, "--out", &pay]);
        assert_eq!(p["seq"], 1);
        w(payee, &["receive", &pay, "--out", &rcpt]);
        w(&t.alice, &["confirm", &rcpt]);
    }
    w(&t.bob, &["sync"]);
    w(&carol, &["sync"]);
    let proofs = t.tmp.path().join("proofs");
    let ds =
        t.s.admin(&["double-spends", "--out-dir", proofs.to_str().unwrap()]);
    let list = ds["double_spends"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{ds}");
    assert_eq!(list[0]["payer"], t.alice_id);
    assert_eq!(list[0]["proof_verified"], true);
    let pki = t.tmp.path().join("pki");
    t.s.admin(&["pki", "export", pki.to_str().unwrap()]);
    let proof = list[0]["proof_file"].as_str().unwrap();
    let root = p(&pki, "root.pem");
    let v = ok(&["evidence", "verify", proof, "--root", &root]);
    assert_eq!(v["payer"], t.alice_id);
    assert_eq!(v["seq"], 1);
    assert_eq!(v["amounts_minor"], serde_json::json!([8_000, 8_000]));
    // The issuer certificate given instead of the root: said so, and the
    // proof is not called invalid.
    let r = run(&[
        "evidence",
        "verify",
        proof,
        "--root",
        &p(&pki, "issuer.pem"),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not the scheme root"), "{r:?}");
    assert!(!r.stderr.contains("not a valid"), "{r:?}");
    // A damaged proof is refused with a reason.
    let mut bytes = std::fs::read(proof).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 1;
    std::fs::write(t.f("bad.proof"), &bytes).unwrap();
    let r = run(&["evidence", "verify", &t.f("bad.proof"), "--root", &root]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("is not a valid double-spend proof"),
        "{r:?}"
    );
    // Finality for both payees; the payer is revoked and, at its sync, locked.
    assert_eq!(t.s.sub_account_minor(&t.bob_id), 8_000);
    assert_eq!(t.s.sub_account_minor(&carol_id), 8_000);
    assert_eq!(t.s.admin(&["wallet", &t.alice_id])["state"], "revoked");
    let s = w(&t.alice, &["sync"]);
    assert_eq!(s["locked"], true, "{s}");
    w_refused(
        &t.alice,
        &["request", "1", "--out", &t.f("x.bin")],
        "locked",
    );
    t.s.assert_invariants();
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A post-quantum issuer from the CLI: `server --suite ml-dsa-44` makes an
/// ML-DSA-44 root and issuer CA; an ML-DSA-44 wallet and an Ed25519 wallet
/// (a mixed chain) pay each other through QR codes, which the CLI splits
/// into several parts when one code cannot hold the message; both sync and
/// the books balance.
#[test]
fn an_ml_dsa_issuer_and_mixed_wallets_pay_through_multi_part_qr() {
    let s = Server::start_with(&["--suite", "ml-dsa-44"]);
    let tmp = tempfile::tempdir().unwrap();
    s.customer("quinn", "100.00");
    s.customer("ruth", "100.00");
    let (quinn, ruth) = (tmp.path().join("quinn"), tmp.path().join("ruth"));
    let q = s.wallet_of_suite("quinn", &quinn, "ml-dsa-44");
    let r = s.wallet_of_suite("ruth", &ruth, "ed25519");
    s.load(&q, &quinn, "40.00");
    s.load(&r, &ruth, "40.00");
    let cert = w(&quinn, &["cert"]);
    assert!(
        cert["pem"].as_str().unwrap().contains("BEGIN CERTIFICATE"),
        "{cert}"
    );
    let f = |n: &str| p(tmp.path(), n);
    // Ruth asks, Quinn (ML-DSA) pays: the payment with its certificate
    // inline does not fit one code.
    w(&ruth, &["request", "5.00", "--qr", &f("r1.png")]);
    let paid = w(
        &quinn,
        &["pay", "--from-qr", &f("r1.png"), "--qr", &f("p1.png")],
    );
    assert!(paid["qr_parts"].as_u64().unwrap() >= 2, "{paid}");
    let got = w(
        &ruth,
        &["receive", "--from-qr", &f("p1.png"), "--qr", &f("c1.png")],
    );
    assert_eq!(got["payer"], q, "{got}");
    w(&quinn, &["confirm", "--from-qr", &f("c1.png")]);
    // And back: the Ed25519 wallet pays the ML-DSA wallet.
    w(&quinn, &["request", "2.00", "--qr", &f("r2.png")]);
    w(
        &ruth,
        &["pay", "--from-qr", &f("r2.png"), "--qr", &f("p2.png")],
    );
    w(
        &quinn,
        &["receive", "--from-qr", &f("p2.png"), "--qr", &f("c2.png")],
    );
    w(&ruth, &["confirm", "--from-qr", &f("c2.png")]);
    w(&quinn, &["sync"]);
    w(&ruth, &["sync"]);
    assert_eq!(balance(&quinn), 3_700);
    assert_eq!(balance(&ruth), 4_300);
    assert_eq!(s.sub_account_minor(&q), 3_700);
    assert_eq!(s.sub_account_minor(&r), 4_300);
    s.assert_invariants();
}
