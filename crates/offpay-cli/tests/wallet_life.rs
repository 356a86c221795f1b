//! No dead ends in a wallet's life (issue 11): one wallet used by many
//! processes at once, a replaced device secret, a lost PIN attempt counter,
//! and the way back from a PIN lockout through the issuer.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::process::Stdio;

use common::*;

/// One wallet, many commands at once (a phone with a background sync does
/// this): each one either does its work or says "wallet is busy" (exit 75),
/// none fails with an I/O error, and the wallet is consistent afterwards.
#[test]
fn many_commands_on_one_wallet_at_once() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("alice", "100.00");
    let alice = tmp.path().join("alice");
    let id = s.wallet("alice", &alice);
    s.load(&id, &alice, "50.00");
    let before = balance(&alice);

    let dir = alice.to_str().unwrap().to_string();
    let mut children = Vec::new();
    for i in 0..16 {
        let req = p(tmp.path(), &format!("req-{i}.bin"));
        let args: Vec<String> = match i % 4 {
            0 => vec!["balance".into()],
            1 => vec!["status".into()],
            2 => vec!["sync".into()],
            _ => vec!["request".into(), "1.00".into(), "--out".into(), req],
        };
        let mut c = offpay();
        c.args(["--json", "wallet", "--dir", &dir])
            .args(&args)
            // Short enough that some may really be busy, long enough that most wait.
            .env("OFFPAY_WALLET_WAIT", if i % 2 == 0 { "60" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push((args, c.spawn().unwrap()));
    }
    let mut done = 0;
    let mut busy = 0;
    for (args, child) in children {
        let r = Run::from(child.wait_with_output().unwrap());
        let v = r.json();
        match r.code {
            0 => {
                assert_eq!(v["ok"], true, "{args:?}: {r:?}");
                done += 1;
            }
            75 => {
                assert_eq!(v["error"]["code"], "wallet_busy", "{args:?}: {r:?}");
                assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("wallet is busy"),
                    "{r:?}"
                );
                busy += 1;
            }
            _ => panic!("{args:?} neither succeeded nor said busy: {r:?}"),
        }
    }
    eprintln!("16 concurrent commands on one wallet: {done} done, {busy} busy");
    assert_eq!(done + busy, 16);
    // Every command that waited long enough did its work.
    assert!(done >= 8, "done {done}, busy {busy}");
    // The state is consistent: nothing was paid, the issuer agrees, and no
    // temporary file was left behind.
    assert_eq!(balance(&alice), before);
    w(&alice, &["sync"]);
    assert_eq!(s.sub_account_minor(&id), before as i64);
    s.assert_invariants();
    for dir in [alice.clone(), alice.join("vault")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.ends_with(".tmp"), "{name} left in {}", dir.display());
        }
    }
}

/// A wallet held by one command: the next says busy at once with
/// `OFFPAY_WALLET_WAIT=0`, with its own exit code, and changes nothing.
#[test]
fn a_held_wallet_is_busy_not_broken() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("bob", "0");
    let bob = tmp.path().join("bob");
    s.wallet("bob", &bob);
    // A tap receiver holds the wallet while it listens.
    let mut listener = offpay()
        .args(["--json", "wallet", "--dir", bob.to_str().unwrap()])
        .args(["receive", "--listen", "127.0.0.1:0", "--amount", "1.00"])
        .args(["--timeout", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says where it listens once the wallet is open and its request sealed.
    let mut err = std::io::BufReader::new(listener.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut err, &mut line).unwrap();
    assert!(line.contains("on the tap at"), "{line}");
    let lock = bob.join("wallet.lock");
    let f = std::fs::File::open(&lock).unwrap();
    assert!(matches!(
        f.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    ));
    let vault_files = || {
        ["state.sealed", "counter", "pin-attempts"]
            .map(|n| std::fs::read(bob.join("vault").join(n)).unwrap())
    };
    let before_files = vault_files();
    let before = std::fs::read(bob.join("vault/pin-attempts")).unwrap();
    let r = run_with(
        {
            let mut c = offpay();
            c.env("OFFPAY_WALLET_WAIT", "0");
            c
        },
        &[
            "--json",
            "wallet",
            "--dir",
            bob.to_str().unwrap(),
            "balance",
        ],
    );
    assert_eq!(r.code, 75, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "wallet_busy");
    assert_eq!(
        std::fs::read(bob.join("vault/pin-attempts")).unwrap(),
        before
    );
    assert_eq!(vault_files(), before_files);
    // Our own child, by its handle.
    let _ = listener.kill();
    let _ = listener.wait();
    // Let go: the wallet opens again.
    assert_eq!(balance(&bob), 0);
}

/// A replaced device secret is told apart from a wrong PIN and burns no PIN
/// attempt: putting the right one back opens the wallet at once.
#[test]
fn a_replaced_device_secret_is_not_a_wrong_pin() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("carol", "0");
    let carol = tmp.path().join("carol");
    s.wallet("carol", &carol);
    let secret = carol.join("device.secret");
    let right = std::fs::read(&secret).unwrap();
    let mut wrong = right.clone();
    wrong[0] ^= 1;
    std::fs::write(&secret, &wrong).unwrap();
    for _ in 0..8 {
        let v = w_refused(&carol, &["balance"], "wrong_device_secret");
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.contains("device.secret"), "{m}");
        assert!(m.contains("no PIN attempt was counted"), "{m}");
    }
    std::fs::write(&secret, &right).unwrap();
    assert_eq!(balance(&carol), 0);
}

/// `offpay --json wallet --dir DIR ARGS` with another PIN.
fn with_pin(pin: &str, dir: &std::path::Path, args: &[&str]) -> Run {
    let mut c = offpay();
    c.env("OFFPAY_PIN", pin);
    let mut a = vec!["--json", "wallet", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    run_with(c, &a)
}

/// Five wrong PINs, then the whole way back: the locked vault asks the
/// issuer (no PIN), the request waits for the operator, the operator
/// approves after the customer re-authenticated, the vault applies the
/// issuer-signed unlock and takes the PIN again. An approval unlocks one
/// lockout only; the app alone cannot reset the count.
#[test]
fn a_pin_locked_wallet_comes_back_through_the_issuer() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("dave", "100.00");
    let dave = tmp.path().join("dave");
    let id = s.wallet("dave", &dave);
    s.load(&id, &dave, "20.00");

    // Not locked: nothing to ask for.
    w_refused(&dave, &["unlock"], "not_pin_locked");

    let lock_out = || {
        for left in (0..5).rev() {
            let r = with_pin("0000", &dave, &["balance"]);
            assert_eq!(r.code, 1, "{r:?}");
            assert_eq!(r.json()["error"]["code"], "wrong_pin", "{r:?}");
            let words = if left == 1 {
                "1 attempt left".to_string()
            } else {
                format!("{left} attempts left")
            };
            assert!(r.stdout.contains(&words), "{r:?}");
        }
        // Now even the right PIN is refused, and the message says what to do.
        let v = w_refused(&dave, &["balance"], "pin_attempts_exhausted");
        let m = v["error"]["message"].as_str().unwrap().to_string();
        assert!(m.contains("unlock"), "{m}");
        assert!(!m.contains("until unlocked by the backend"), "{m}");
    };
    lock_out();

    // Nobody approved the operator side: pending, and asking twice is the same request.
    let first = w(&dave, &["unlock"]);
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(first["attempts"], 5);
    let again = w(&dave, &["unlock"]);
    assert_eq!(again["status"], "pending");
    assert_eq!(again["requested_at"], first["requested_at"]);
    w_refused(&dave, &["balance"], "pin_attempts_exhausted");

    // The operator approves (after the bank re-authenticated the customer).
    let a = s.admin(&["unlock-pin", &id]);
    assert_eq!(a["wallet_id"], id);
    assert_eq!(a["attempts"], 5);
    let done = w(&dave, &["unlock"]);
    assert_eq!(done["status"], "unlocked", "{done}");
    assert_eq!(balance(&dave), 2_000);
    // Applied once: nothing is pending any more.
    w_refused(&dave, &["unlock"], "not_pin_locked");

    // A second lockout needs a second approval: the old one is for another nonce.
    lock_out();
    let second = w(&dave, &["unlock"]);
    assert_eq!(second["status"], "pending", "{second}");
    w_refused(&dave, &["balance"], "pin_attempts_exhausted");
    s.admin(&["unlock-pin", &id]);
    assert_eq!(w(&dave, &["unlock"])["status"], "unlocked");

    // A lost attempt counter says so (not "too many wrong PINs"), and the
    // same way back works for it.
    std::fs::remove_file(dave.join("vault/pin-attempts")).unwrap();
    let v = w_refused(&dave, &["balance"], "pin_attempts_unreadable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing or malformed"),
        "{v}"
    );
    assert_eq!(w(&dave, &["unlock"])["status"], "pending");
    s.admin(&["unlock-pin", &id]);
    assert_eq!(w(&dave, &["unlock"])["status"], "unlocked");
    assert_eq!(balance(&dave), 2_000);
    w(&dave, &["sync"]);
    s.assert_invariants();
}

/// The operator cannot approve what no wallet asked for.
#[test]
fn an_unlock_nobody_asked_for_is_refused() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("erin", "0");
    let erin = tmp.path().join("erin");
    let id = s.wallet("erin", &erin);
    s.admin_refused(&["unlock-pin", &id], "invalid_input");
}

/// The operator re-keys a wallet to ML-DSA-44 through the CLI: the next
/// sync makes the key, the one after certifies it, the wallet pays with it
/// (the payee accepts its certificate), a PIN lockout still comes back
/// through the issuer (the recovery grant was renewed under the new key),
/// and the books balance. A bad suite is refused by name.
#[test]
fn the_operator_re_keys_a_wallet_to_ml_dsa() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    s.customer("erin", "100.00");
    s.customer("finn", "1.00");
    let erin = tmp.path().join("erin");
    let finn = tmp.path().join("finn");
    let id = s.wallet("erin", &erin);
    s.wallet("finn", &finn);
    s.load(&id, &erin, "30.00");

    let e = s.admin_refused(&["rekey", &id, "--suite", "rsa-2048"], "invalid_input");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ml-dsa-44"),
        "{e}"
    );
    let v = s.admin(&["rekey", &id, "--suite", "ml-dsa-44"]);
    assert_eq!(v["rekey_suite"], "ml-dsa-44", "{v}");
    let first = w(&erin, &["sync"]);
    assert_eq!(first["rekey_started"], "ml-dsa-44", "{first}");
    assert_eq!(first["suite"], "ed25519");
    let second = w(&erin, &["sync"]);
    assert_eq!(second["rekeyed"], "ml-dsa-44", "{second}");
    assert_eq!(second["suite"], "ml-dsa-44");
    let after = s.admin(&["wallet", &id]);
    assert_eq!(after["key_generation"], 1, "{after}");
    assert_eq!(after["rekey_suite"], serde_json::Value::Null);

    let (req, pay, rcpt) = (
        p(tmp.path(), "req"),
        p(tmp.path(), "pay"),
        p(tmp.path(), "rcpt"),
    );
    w(&finn, &["request", "7.00", "--out", &req]);
    w(&erin, &["pay", &req, "--out", &pay]);
    w(&finn, &["receive", &pay, "--out", &rcpt]);
    w(&erin, &["confirm", &rcpt]);
    w(&erin, &["sync"]);
    w(&finn, &["sync"]);
    assert_eq!(balance(&erin), 2_300);
    assert_eq!(balance(&finn), 700);
    assert_eq!(s.sub_account_minor(&id), 2_300);

    // A PIN lockout after the re-key comes back through the issuer.
    for _ in 0..5 {
        with_pin("0000", &erin, &["balance"]);
    }
    w_refused(&erin, &["balance"], "pin_attempts_exhausted");
    assert_eq!(w(&erin, &["unlock"])["status"], "pending");
    s.admin(&["unlock-pin", &id]);
    assert_eq!(w(&erin, &["unlock"])["status"], "unlocked");
    assert_eq!(balance(&erin), 2_300);
    s.assert_invariants();
}
