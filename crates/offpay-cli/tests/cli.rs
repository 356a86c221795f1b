//! The binary as a person and a script meet it: the demo, the server's first
//! start, the PKI export checked by OpenSSL, usage errors (exit 2) and
//! refusals (exit 1, a specific message, no state changed).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn the_demo_tells_the_whole_story() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let r = run(&["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for words in [
        "1. The issuer sets up",
        "Bob had loaded only",
        "over the tap socket",
        "the issuer detected the double spend",
        "verifies against the root alone",
        "is on CRL number",
        "ledger invariants: ok",
        "Every step behaved as told",
    ] {
        assert!(r.stdout.contains(words), "{words:?} missing:\n{}", r.stdout);
    }
    assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    // What it left behind can be checked by anyone.
    let v = ok(&[
        "evidence",
        "verify",
        &p(&dir, "alice-double-spend.proof"),
        "--root",
        &p(&dir, "root.pem"),
    ]);
    assert_eq!(v["valid"], true);
    // It says how, and with which PIN its wallets open.
    assert!(
        r.stdout.contains(&format!(
            "offpay evidence verify {}",
            p(&dir, "alice-double-spend.proof")
        )),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("PIN 2468"), "{}", r.stdout);
    let mut c = offpay();
    c.env("OFFPAY_PIN", "2468");
    let bob = run_with(
        c,
        &[
            "--json",
            "wallet",
            "--dir",
            &p(&dir, "wallet-bob"),
            "balance",
        ],
    );
    assert_eq!(bob.code, 0, "the demo's PIN opens its wallets: {bob:?}");
    assert!(dir.join("messages/01-payment.bin").exists());
    assert!(dir.join("messages/03-request.png").exists());
    // The directory is now in use: a second run refuses it (usage).
    let again = run(&["demo", "--dir", dir.to_str().unwrap()]);
    assert_eq!(again.code, 2, "{again:?}");
    // Without --dir everything is deleted at the end: no path to a file
    // that will not exist is printed.
    let r = run(&["demo"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        !r.stdout.contains("alice-double-spend.proof"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("offpay demo --dir DIR"), "{}", r.stdout);
}

#[test]
fn the_demo_speaks_json_too() {
    let v = ok(&["demo"]);
    assert!(v["checks"].as_u64().unwrap() >= 20, "{v}");
    assert_eq!(v["final"]["invariants_ok"], true);
    let customers = v["final"]["customers"].as_array().unwrap();
    assert_eq!(customers.len(), 3);
    assert_eq!(customers[0]["state"], "revoked");
    for c in v["chapters"].as_array().unwrap() {
        for check in c["checks"].as_array().unwrap() {
            assert_eq!(check["ok"], true, "{check}");
        }
    }
}

#[test]
fn the_first_start_says_where_the_operator_token_is() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    {
        let s = Server::start_in(&data, false);
        assert!(s.url.starts_with("http://127.0.0.1:"), "{}", s.url);
        assert!(data.join("operator-token").exists());
    }
    // The second start on the same data is not a first start.
    let s = Server::start_in(&data, true);
    let v: serde_json::Value = serde_json::from_str(&s.first_line).unwrap();
    assert_eq!(v["first_start"], false);
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(
        v["operator_token_file"],
        data.join("operator-token").to_str().unwrap()
    );
    s.customer("dora", "1.00");
    assert_eq!(s.online_minor("dora"), 100);
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed (apt-get install openssl)");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn exported_pki_passes_openssl_verify_with_crl_check() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    s.customer("erin", "0");
    let wallet = d.join("erin");
    let id = s.wallet("erin", &wallet);
    let c = w(&wallet, &["cert", "--out", &p(d, "wallet.pem")]);
    assert!(
        c["pem"]
            .as_str()
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let e = s.admin(&["pki", "export", d.to_str().unwrap()]);
    assert_eq!(e["crl_number"], 1);
    let verify = || {
        openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "issuer.pem",
                "-crl_check",
                "-CRLfile",
                "crl.pem",
                "wallet.pem",
            ],
        )
    };
    let (good, out) = verify();
    assert!(good && out.contains("wallet.pem: OK"), "{out}");
    // The issuer CA chains to the root (the root key signs no CRL: it signs only
    // the issuer CA certificate, so -crl_check applies to wallet certificates).
    let (good, out) = openssl(d, &["verify", "-CAfile", "root.pem", "issuer.pem"]);
    assert!(good && out.contains("issuer.pem: OK"), "{out}");

    // Revoked: the next export's CRL lists it, and OpenSSL refuses the certificate.
    let r = s.admin(&["revoke", &id, "--reason", "lost phone"]);
    assert_eq!(r["state"], "revoked");
    let e = s.admin(&["pki", "export", d.to_str().unwrap()]);
    assert_eq!(e["revoked_serials"][0], c["serial"]);
    let (good, out) = verify();
    assert!(!good && out.contains("certificate revoked"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for args in [
        vec!["frobnicate"],
        vec!["wallet", "balance"],
        vec!["wallet", "--dir", d, "request", "12.505", "--out", "x"],
        vec!["wallet", "--dir", d, "request", "-3", "--out", "x"],
        vec!["wallet", "--dir", d, "request", "1.00"],
        vec!["wallet", "--dir", d, "pay", "--tap"],
        vec!["admin", "--server", "https://example.invalid", "invariants"],
        vec![
            "admin",
            "--server",
            "http://127.0.0.1:9",
            "--data-dir",
            d,
            "invariants",
        ],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(!r.stderr.is_empty(), "{args:?} says why");
        let mut j = vec!["--json"];
        j.extend_from_slice(&args);
        let r = run(&j);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert_eq!(r.json()["error"]["code"], "usage", "{args:?}");
    }
    // No PIN and no terminal to ask on.
    let mut c = offpay();
    c.env_remove("OFFPAY_PIN");
    let s = Server::start();
    s.customer("fay", "0");
    let wallet = tmp.path().join("fay");
    s.wallet("fay", &wallet);
    let r = run_with(c, &["wallet", "--dir", wallet.to_str().unwrap(), "balance"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("OFFPAY_PIN"), "{r:?}");
    // --help is not an error.
    assert_eq!(run(&["--help"]).code, 0);
    assert_eq!(run(&["wallet", "--help"]).code, 0);
}

/// Each refusal exits 1 with a specific message and leaves the wallet as it was.
#[test]
#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one scenario told end to end; short names follow the fixtures and formulas
fn refusals_say_why_and_change_nothing() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    s.customer("gil", "100.00");
    s.customer("hal", "0");
    let gil = d.join("gil");
    let hal = d.join("hal");
    let gil_id = s.wallet("gil", &gil);
    s.wallet("hal", &hal);
    s.load(&gil_id, &gil, "50.00");
    let f = |n: &str| p(d, n);

    // Pay more than the balance.
    w(&hal, &["request", "60.00", "--out", &f("big.bin")]);
    let (g0, h0) = (state(&gil), state(&hal));
    let e = w_refused(
        &gil,
        &["pay", &f("big.bin"), "--out", &f("x.bin")],
        "insufficient_funds",
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("insufficient funds")
    );
    let text = refused_text(&[
        "wallet",
        "--dir",
        gil.to_str().unwrap(),
        "pay",
        &f("big.bin"),
        "--out",
        &f("x.bin"),
    ]);
    assert!(
        text.contains("balance 50.00 EUR, needed 60.00 EUR"),
        "{text}"
    );
    assert_eq!(state(&gil), g0);
    assert!(!Path::new(&f("x.bin")).exists());

    // Pay an amount other than the one expected.
    w(&hal, &["request", "5.00", "--out", &f("req.bin")]);
    let (g0, h0b) = (state(&gil), state(&hal));
    w_refused(
        &gil,
        &[
            "pay",
            &f("req.bin"),
            "--expect",
            "4.00",
            "--out",
            &f("x.bin"),
        ],
        "amount_not_expected",
    );
    assert_eq!(state(&gil), g0);

    // A good payment, then the same payment replayed: before the payee syncs
    // it gets the same receipt (not a second credit); after, a refusal.
    w(&gil, &["pay", &f("req.bin"), "--out", &f("pay.bin")]);
    w(&hal, &["receive", &f("pay.bin"), "--out", &f("rcpt.bin")]);
    let again = w(&hal, &["receive", &f("pay.bin"), "--out", &f("rcpt2.bin")]);
    assert_eq!(again["repeated"], true);
    assert_eq!(again["balance_minor"], 500);
    assert_eq!(
        std::fs::read(f("rcpt.bin")).unwrap(),
        std::fs::read(f("rcpt2.bin")).unwrap()
    );
    w(&hal, &["sync"]);
    let h1 = state(&hal);
    assert_ne!(h1, h0b);
    let e = w_refused(
        &hal,
        &["receive", &f("pay.bin"), "--out", &f("x.bin")],
        "nonce_unknown",
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("replayed"),
        "{e}"
    );
    assert_eq!(state(&hal), h1);
    let _ = h0;

    // A receipt for a payment this wallet never made.
    let h2 = state(&hal);
    w_refused(
        &hal,
        &["confirm", &f("rcpt.bin")],
        "receipt_unknown_payment",
    );
    assert_eq!(state(&hal), h2);

    // Malformed files: garbage, the wrong message type, a missing file.
    std::fs::write(f("junk.bin"), b"\xa1\x00\x01not a message").unwrap();
    let g1 = state(&gil);
    let e = w_refused(
        &gil,
        &["pay", &f("junk.bin"), "--out", &f("x.bin")],
        "malformed",
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a payment request"),
        "{e}"
    );
    // Another message than the one expected is named for what it is, in
    // words (not "wrong message type: expected 1, found 3", not a size limit).
    let e = w_refused(
        &gil,
        &["pay", &f("rcpt.bin"), "--out", &f("x.bin")],
        "wrong_message",
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("this is a receipt, not a payment request"),
        "{e}"
    );
    let e = w_refused(&gil, &["confirm", &f("pay.bin")], "wrong_message");
    let m = e["error"]["message"].as_str().unwrap();
    assert!(m.starts_with("this is a payment, not a receipt"), "{e}");
    assert!(!m.contains("limit") && !m.contains("type"), "{e}");
    w_refused(&gil, &["confirm", &f("junk.bin")], "malformed");
    w_refused(&gil, &["load", "--voucher", &f("pay.bin")], "wrong_message");
    // A PNG (a QR code) given as a message file: the flag is suggested.
    let png = f("req.png");
    w(&hal, &["request", "1.00", "--qr", &png]);
    let r = run(&[
        "--json",
        "wallet",
        "--dir",
        gil.to_str().unwrap(),
        "pay",
        &png,
        "--out",
        &f("x.bin"),
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--from-qr"),
        "{r:?}"
    );
    // A payment whose --out cannot be written is refused before the wallet
    // pays: exit 1 means nothing changed.
    w(&hal, &["request", "1.00", "--out", &f("req2.bin")]);
    let e = w_refused(
        &gil,
        &["pay", &f("req2.bin"), "--out", &f("missing/pay.bin")],
        "io",
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was done"),
        "{e}"
    );
    w_refused(
        &gil,
        &["pay", &f("req2.bin"), "--out", d.to_str().unwrap()],
        "io",
    );
    w_refused(
        &gil,
        &["pay", &f("missing.bin"), "--out", &f("x.bin")],
        "io",
    );
    assert_eq!(state(&gil), g1);

    // A wrong PIN: refused, counted, and nothing else changes.
    let mut c = offpay();
    c.env("OFFPAY_PIN", "0000");
    let r = run_with(
        c,
        &[
            "--json",
            "wallet",
            "--dir",
            gil.to_str().unwrap(),
            "balance",
        ],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["error"]["code"], "wrong_pin");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("attempts left"),
        "{v}"
    );
    assert_eq!(state(&gil), g1);

    // Redeem more than the balance.
    w_refused(&gil, &["redeem", "1000"], "insufficient_funds");
    assert_eq!(state(&gil), g1);

    // Operator refusals: no such customer, wrong token, an unknown wallet.
    s.admin_refused(&["deposit", "nobody", "1.00"], "unknown_customer");
    s.admin_refused(
        &["wallet", "00112233445566778899aabbccddeeff"],
        "unknown_wallet",
    );
    let r = run(&[
        "--json",
        "admin",
        "--server",
        &s.url,
        "--token",
        "wrong-token-0123456789",
        "invariants",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "unauthorized");

    // A used enrollment token: refused, and no wallet is left behind.
    let token = s.admin(&["enrollment-token", "hal"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let one = d.join("one");
    ok(&[
        "wallet",
        "--dir",
        one.to_str().unwrap(),
        "create",
        "--server",
        &s.url,
        "--token",
        &token,
    ]);
    let two = d.join("two");
    refused(
        &[
            "wallet",
            "--dir",
            two.to_str().unwrap(),
            "create",
            "--server",
            &s.url,
            "--token",
            &token,
        ],
        "enrollment_token",
    );
    assert!(!two.exists(), "a refused enrollment leaves nothing");
    // A directory that already holds a wallet.
    refused(
        &[
            "wallet",
            "--dir",
            one.to_str().unwrap(),
            "create",
            "--server",
            &s.url,
            "--token",
            &token,
        ],
        "wallet_exists",
    );
    // No wallet at all.
    w_refused(&d.join("nowhere"), &["balance"], "no_wallet");
    // The server is down: a network refusal that changes nothing.
    let g2 = state(&gil);
    drop(s);
    w_refused(&gil, &["sync"], "network");
    let after = state(&gil);
    // A sync that never reached the server leaves balance, chain and log as they were.
    for k in [
        "balance_minor",
        "seq",
        "load_seq",
        "unsynced_entries",
        "locked",
        "history",
    ] {
        assert_eq!(after[k], g2[k], "{k}");
    }
}

#[test]
fn sim_runs_a_small_population_with_attacks() {
    let tmp = tempfile::tempdir().unwrap();
    let plots = tmp.path().join("plots");
    let report = tmp.path().join("report.json");
    let v = ok(&[
        "sim",
        "--wallets",
        "20",
        "--days",
        "2",
        "--seed",
        "7",
        "--attack",
        "clone=0.05",
        "--attack",
        "torn=0.05",
        "--plot",
        plots.to_str().unwrap(),
        "--out",
        report.to_str().unwrap(),
    ]);
    assert_eq!(v["schema"], "offpay-sim/1");
    assert_eq!(v["honest_loss_minor"], 0);
    assert_eq!(v["invariant_violations"], serde_json::json!([]));
    assert_eq!(v["plots"].as_array().unwrap().len(), 3);
    assert!(plots.join("exposure.png").exists());
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(saved["payments"], v["payments"]);
    let r = run(&["sim", "--attack", "teleport=0.1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("unknown attack kind"), "{r:?}");
}

#[test]
fn sim_checks_its_outputs_before_running_and_says_what_ran() {
    let tmp = tempfile::tempdir().unwrap();
    // A run of a million wallet-years: refused at once for a bad --out or
    // --plot, before any simulating (else this test would not end).
    let huge = ["sim", "--wallets", "1000000", "--days", "3650"];
    let missing = tmp.path().join("no/such/dir/report.json");
    let r = run(&[&huge[..], &["--out", missing.to_str().unwrap()]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not exist"), "{r:?}");
    let r = run(&[&huge[..], &["--out", tmp.path().to_str().unwrap()]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is a directory"), "{r:?}");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let r = run(&[&huge[..], &["--plot", file.to_str().unwrap()]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--plot"), "{r:?}");
    // Without an attack the output says none ran; stderr is not a terminal
    // here and still gets progress lines; the run time is printed.
    let r = run(&["sim", "--wallets", "8", "--days", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("no attack ran"), "{r:?}");
    assert!(r.stdout.contains("run time"), "{r:?}");
    assert!(r.stderr.contains("day 1/1"), "{r:?}");
    assert!(!r.stdout.contains("Some("), "{r:?}");
    // The documented default mix runs every kind.
    let v = ok(&[
        "sim",
        "--wallets",
        "8",
        "--days",
        "1",
        "--attacks",
        "default",
    ]);
    let attacks = v["config"]["attacks"].as_object().unwrap();
    assert_eq!(attacks.len(), 9, "{v}");
    assert_eq!(v["currency"], "EUR");
    let r = run(&["sim", "--attacks", "everything"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("expected \"default\""), "{r:?}");
}

/// `offpay server --hsm SPEC`: the scheme root and issuer CA keys are made
/// in a SoftHSM2 token at the first start and adopted at the next; wallets
/// enroll, load, pay and sync through it; the same data directory without
/// the token, a wrong PIN, or a spec with a missing part is a clear startup
/// error. Skipped (with the reason) without SoftHSM2 unless
/// `OFFPAY_REQUIRE_HSM=1`.
#[test]
fn the_server_keeps_its_ca_keys_in_a_pkcs11_token() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    if !std::path::Path::new(module).is_file() || which("softhsm2-util").is_none() {
        assert!(
            std::env::var("OFFPAY_REQUIRE_HSM").as_deref() != Ok("1"),
            "SoftHSM2 required (OFFPAY_REQUIRE_HSM=1) but not installed"
        );
        eprintln!("SKIPPED: SoftHSM2 not installed (apt-get install softhsm2)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let tokens = tmp.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = tmp.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\n",
            tokens.display()
        ),
    )
    .unwrap();
    let conf = conf.to_str().unwrap().to_string();
    let init = std::process::Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            "offpay",
            "--so-pin",
            "5678",
            "--pin",
            "1234",
        ])
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let spec = format!(
        "module={module},token=offpay,pin=env:OFFPAY_HSM_PIN,issuer-key=offpay-issuer-ca,root-key=offpay-root"
    );
    let data = tmp.path().join("data");
    let env = [("SOFTHSM2_CONF", conf.as_str()), ("OFFPAY_HSM_PIN", "1234")];
    let args = ["--hsm", spec.as_str()];
    let story = |s: &Server, name: &str| {
        s.customer(name, "50.00");
        let dir = tmp.path().join(name);
        let id = s.wallet(name, &dir);
        s.load(&id, &dir, "10.00");
        dir
    };
    let s = Server::start_in_env(&data, true, &args, &env);
    let alice = story(&s, "alice");
    let bob = story(&s, "bob");
    let req = p(tmp.path(), "req");
    let pay = p(tmp.path(), "pay");
    w(&bob, &["request", "3.00", "--out", &req]);
    w(&alice, &["pay", &req, "--out", &pay]);
    w(&bob, &["receive", &pay, "--out", &p(tmp.path(), "rcpt")]);
    drop(s);
    // The next start adopts the token's keys; the wallets sync through it.
    let s = Server::start_in_env(&data, true, &args, &env);
    w(&alice, &["sync", "--server", &s.url]);
    w(&bob, &["sync", "--server", &s.url]);
    assert_eq!(balance(&alice), 700);
    assert_eq!(balance(&bob), 1_300);
    s.assert_invariants();
    drop(s);
    let start = |extra_env: &[(&str, &str)], args: &[&str]| {
        let mut c = offpay();
        c.envs(extra_env.iter().copied());
        let mut a = vec!["--json", "server", "--listen", "127.0.0.1:0", "--data-dir"];
        a.push(data.to_str().unwrap());
        a.extend_from_slice(args);
        run_with(c, &a)
    };
    // Without the token, the same data directory does not start.
    let r = start(&env, &[]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("token"), "{r:?}");
    // A wrong PIN, a spec without its root key: each its own error.
    let r = start(
        &[("SOFTHSM2_CONF", &conf), ("OFFPAY_HSM_PIN", "0000")],
        &args,
    );
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stdout.to_lowercase().contains("pin"), "{r:?}");
    let no_root = format!("module={module},token=offpay,pin=env:OFFPAY_HSM_PIN,issuer-key=x");
    let r = start(&env, &["--hsm", &no_root]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("root-key"), "{r:?}");
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(bin))
        .find(|p| p.is_file())
}
