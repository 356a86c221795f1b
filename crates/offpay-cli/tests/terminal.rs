//! One receive-only merchant terminal takes payments from many wallets over
//! the tap socket and sweeps them to the merchant's online account at sync,
//! through the `offpay` binary against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::io::BufRead;
use std::path::Path;

use common::*;
use serde_json::Value;

/// `offpay --json terminal --dir DIR ARGS`, expected to succeed.
#[track_caller]
fn t(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["terminal", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    ok(&a)
}

#[test]
fn one_terminal_takes_from_many_wallets_over_the_tap_and_sweeps_at_sync() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    server.customer("shop", "0");
    let token = server.admin(&["enrollment-token", "shop", "--terminal"]);
    assert_eq!(token["profile"], "terminal");
    let till = tmp.path().join("till");
    let created = t(
        &till,
        &[
            "create",
            "--server",
            &server.url,
            "--token",
            token["token"].as_str().unwrap(),
        ],
    );
    assert_eq!(created["profile"], "terminal");
    let till_id = created["wallet_id"].as_str().unwrap().to_string();

    let buyers: Vec<(String, std::path::PathBuf)> = (0..4)
        .map(|n| {
            let name = format!("buyer{n}");
            server.customer(&name, "50.00");
            let dir = tmp.path().join(&name);
            let id = server.wallet(&name, &dir);
            server.load(&id, &dir, "20.00");
            (id, dir)
        })
        .collect();

    // One terminal, one buyer after another at the till: request, payment
    // and receipt over the tap socket each time.
    let mut taken = 0u64;
    for (n, (id, dir)) in buyers.iter().enumerate() {
        let minor = 300 + 125 * n as u64;
        let amount = format!("{}.{:02}", minor / 100, minor % 100);
        let (child, addr, mut err) =
            tap_receiver_as("terminal", &till, &["--amount", &amount, "--valid", "60"]);
        std::thread::spawn(move || {
            let mut sink = String::new();
            while err.read_line(&mut sink).is_ok_and(|n| n > 0) {}
        });
        let paid = w(dir, &["pay", "--tap", &addr, "--expect", &amount]);
        assert_eq!(paid["amount_minor"], minor);
        assert_eq!(paid["receipt"], true);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got["payer"].as_str(), Some(id.as_str()));
        taken += minor;
    }
    assert_eq!(t(&till, &["balance"])["balance_minor"], taken);
    let status = t(&till, &["status"]);
    assert_eq!(status["profile"], "terminal");
    assert_eq!(status["sweep_due_minor"], taken);
    assert_eq!(status["receive_payments_left"], 500 - buyers.len() as u64);

    // A terminal never pays: its TA refuses, nothing changes.
    let req = p(&buyers[0].1, "req.bin");
    w(&buyers[0].1, &["request", "1.00", "--out", &req]);
    let before = state(&till);
    let out = p(&till, "pay.bin");
    w_refused(&till, &["pay", &req, "--out", &out], "terminal_cannot_pay");
    assert_eq!(state(&till), before);

    // The sync sweeps every cent above the float (0) to the shop's account.
    assert_eq!(server.online_minor("shop"), 0);
    let synced = t(&till, &["sync"]);
    assert_eq!(synced["swept_minor"], taken);
    assert_eq!(synced["balance_minor"], 0);
    assert_eq!(server.online_minor("shop"), taken as i64);
    assert_eq!(server.sub_account_minor(&till_id), 0);
    server.assert_invariants();
    // Syncing again sweeps nothing more.
    assert_eq!(t(&till, &["sync"])["swept_minor"], 0);
    assert_eq!(server.online_minor("shop"), taken as i64);
    for (_, dir) in &buyers {
        w(dir, &["sync"]);
    }
    let paid_out: u64 = buyers.iter().map(|(_, dir)| 2_000 - balance(dir)).sum();
    assert_eq!(paid_out, taken);
    server.assert_invariants();
    let invariants = server.admin(&["invariants"]);
    assert_eq!(
        invariants["supply_minor"],
        4 * 5_000,
        "money entered only by deposits"
    );
}

#[test]
fn a_personal_token_makes_no_terminal() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    server.customer("shop", "0");
    let token = server.admin(&["enrollment-token", "shop"]);
    assert_eq!(token["profile"], "personal");
    let dir = tmp.path().join("till");
    let created = t(
        &dir,
        &[
            "create",
            "--server",
            &server.url,
            "--token",
            token["token"].as_str().unwrap(),
        ],
    );
    assert_eq!(created["profile"], "personal");
    assert!(
        created["warning"]
            .as_str()
            .unwrap()
            .contains("not a terminal")
    );
}
