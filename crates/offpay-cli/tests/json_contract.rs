//! The JSON contract (README, "Scripts: the JSON contract"), checked on the
//! output of every command: `"ok"` first of all; amounts as integers in
//! `*_minor` fields with a `currency` beside them (or above them); times as
//! Unix seconds in `*_at` fields and nowhere else; failures as
//! `{"ok": false, "error": {"code", "message"}}`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use common::*;
use serde_json::Value;

/// Keys that name a time but not as `*_at`.
const TIME_WORDS: &[&str] = &[
    "at",
    "time",
    "created",
    "expires",
    "detected",
    "not_after",
    "not_before",
    "cert_not_after",
    "timestamp",
];

/// Keys that hold money by their name (ledger accounts and sums).
const MONEY_WORDS: &[&str] = &[
    "pool",
    "wallets_sum",
    "external",
    "guarantee",
    "customers",
    "general_sum",
    "offline_sum",
    "supply",
    "net_external_postings",
];

/// Every way `v` breaks the conventions, as `path: why`.
fn violations(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if !v["ok"].is_boolean() {
        out.push("$: no boolean \"ok\"".into());
    }
    if v["ok"] == false {
        let e = &v["error"];
        if !e["code"].is_string() || !e["message"].is_string() {
            out.push("$.error: not {code, message}".into());
        }
    }
    walk("$", v, false, &mut out);
    out
}

fn is_decimal_amount(s: &str) -> bool {
    let t = s.strip_prefix('-').unwrap_or(s);
    match t.split_once('.') {
        Some((w, f)) => {
            !w.is_empty()
                && f.len() == 2
                && w.bytes().all(|b| b.is_ascii_digit())
                && f.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

fn walk(path: &str, v: &Value, currency_above: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let currency = currency_above || m.get("currency").is_some_and(Value::is_string);
            for (k, x) in m {
                let p = format!("{path}.{k}");
                if k.ends_with("_minor") {
                    let ints = match x {
                        Value::Array(a) => a.iter().all(|y| y.is_i64() || y.is_u64()),
                        y => y.is_i64() || y.is_u64() || y.is_null(),
                    };
                    if !ints {
                        out.push(format!("{p}: an amount that is not an integer: {x}"));
                    }
                    if !currency {
                        out.push(format!("{p}: an amount without a currency"));
                    }
                } else if (k.contains("amount")
                    || k.contains("balance")
                    || MONEY_WORDS.contains(&k.as_str()))
                    && !(x.is_array() || x.is_object())
                {
                    out.push(format!("{p}: an amount outside a *_minor field"));
                }
                if k.ends_with("_at") && !(x.is_u64() || x.is_null()) {
                    out.push(format!("{p}: a time that is not Unix seconds: {x}"));
                }
                if TIME_WORDS.contains(&k.as_str()) {
                    out.push(format!("{p}: a time outside a *_at field"));
                }
                if let Some(n) = x.as_u64()
                    && (1_000_000_000..10_000_000_000).contains(&n)
                    && !k.ends_with("_at")
                    && !k.ends_with("_minor")
                {
                    out.push(format!(
                        "{p}: looks like Unix seconds outside a *_at field: {n}"
                    ));
                }
                walk(&p, x, currency, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                walk(&format!("{path}[{i}]"), x, currency_above, out);
            }
        }
        Value::String(s) if is_decimal_amount(s) => {
            out.push(format!("{path}: a decimal amount as a string: {s}"));
        }
        _ => {}
    }
}

#[test]
fn the_checker_catches_what_the_contract_forbids() {
    let bad = serde_json::json!({
        "ok": true,
        "totals": {"pool": "3000"},
        "created": 1_798_740_988u64,
        "amount_minor": 5,
        "items": [{"at": 1}],
        "price": "12.50",
    });
    let v = violations(&bad);
    for needle in [
        "totals.pool",
        "$.created",
        "$.amount_minor: an amount without",
        "items[0].at",
        "$.price",
    ] {
        assert!(
            v.iter().any(|x| x.contains(needle)),
            "{needle} not caught: {v:?}"
        );
    }
    let good = serde_json::json!({"ok": true, "currency": "EUR", "balance_minor": 5, "created_at": 1_798_740_988u64});
    assert!(violations(&good).is_empty(), "{:?}", violations(&good));
}

#[test]
#[expect(clippy::too_many_lines, clippy::many_single_char_names)] // lint-exception: one walk over every command, in the order a person meets them
fn every_command_keeps_the_json_contract() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let f = |n: &str| p(d, n);
    let data = s.data_dir.to_str().unwrap().to_string();
    let mut seen: Vec<(String, Value)> = Vec::new();
    let mut record = |label: &str, v: Value| seen.push((label.to_string(), v));
    let admin = |args: &[&str]| s.admin(args);

    record(
        "admin create-account",
        admin(&["create-account", "alice", "--name", "Alice"]),
    );
    admin(&["create-account", "bob"]);
    record("admin deposit", admin(&["deposit", "alice", "100.00"]));
    record("admin withdraw", admin(&["withdraw", "alice", "1.00"]));
    record("admin account", admin(&["account", "alice"]));
    let tok = admin(&["enrollment-token", "alice"]);
    record("admin enrollment-token", tok.clone());
    let alice = d.join("alice");
    let bob = d.join("bob");
    let mut a = vec!["wallet", "--dir", alice.to_str().unwrap(), "create"];
    a.extend_from_slice(&[
        "--server",
        &s.url,
        "--token",
        tok["token"].as_str().unwrap(),
    ]);
    let created = ok(&a);
    let alice_id = created["wallet_id"].as_str().unwrap().to_string();
    record("wallet create", created);
    let bob_id = s.wallet("bob", &bob);
    record(
        "admin load",
        admin(&["load", &alice_id, "40.00", "--out", &f("v.bin")]),
    );
    record(
        "wallet load",
        w(&alice, &["load", "--voucher", &f("v.bin")]),
    );
    record("admin load (sync)", admin(&["load", &alice_id, "10.00"]));
    record("wallet sync", w(&alice, &["sync"]));
    record(
        "wallet request",
        w(&bob, &["request", "12.50", "--out", &f("r.bin")]),
    );
    record(
        "wallet pay",
        w(&alice, &["pay", &f("r.bin"), "--out", &f("p.bin")]),
    );
    record(
        "wallet receive",
        w(&bob, &["receive", &f("p.bin"), "--out", &f("c.bin")]),
    );
    record("wallet confirm", w(&alice, &["confirm", &f("c.bin")]));
    record("wallet balance", w(&alice, &["balance"]));
    record("wallet history", w(&alice, &["history"]));
    record("wallet status", w(&alice, &["status"]));
    record("wallet cert", w(&alice, &["cert"]));
    w(&bob, &["sync"]);
    record("wallet redeem", w(&bob, &["redeem", "2.50"]));
    record("admin wallets", admin(&["wallets"]));
    record("admin wallet", admin(&["wallet", &alice_id]));
    record("admin invariants", admin(&["invariants"]));
    record("admin lock", admin(&["lock", &bob_id, "--reason", "test"]));
    record("admin unlock", admin(&["unlock", &bob_id]));

    // A double spend from a restored copy, for the proof commands.
    admin(&["create-account", "carol"]);
    let carol = d.join("carol");
    s.wallet("carol", &carol);
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
    w(&bob, &["request", "5.00", "--out", &f("r1.bin")]);
    w(&alice, &["pay", &f("r1.bin"), "--out", &f("p1.bin")]);
    w(&bob, &["receive", &f("p1.bin"), "--out", &f("c1.bin")]);
    w(&carol, &["request", "6.00", "--out", &f("r2.bin")]);
    w(&copy, &["pay", &f("r2.bin"), "--out", &f("p2.bin")]);
    w(&carol, &["receive", &f("p2.bin"), "--out", &f("c2.bin")]);
    w(&bob, &["sync"]);
    w(&carol, &["sync"]);
    let proofs = d.join("proofs");
    let ds = admin(&["double-spends", "--out-dir", proofs.to_str().unwrap()]);
    let proof = ds["double_spends"][0]["proof_file"]
        .as_str()
        .unwrap()
        .to_string();
    record("admin double-spends", ds);
    record("admin retention run", admin(&["retention", "run"]));
    let export = admin(&["export", &alice_id]);
    assert_eq!(export["wallet_id"], alice_id.as_str());
    assert!(!export["entries"].as_array().unwrap().is_empty());
    record("admin export", export);
    let pki = d.join("pki");
    record(
        "admin pki export",
        admin(&["pki", "export", pki.to_str().unwrap()]),
    );
    record(
        "evidence verify",
        ok(&["evidence", "verify", &proof, "--root", &p(&pki, "root.pem")]),
    );
    record("admin revoke", admin(&["revoke", &bob_id]));
    record("admin lifecycle", admin(&["lifecycle"]));
    let retired = admin(&["retire", &alice_id, "--lost", "--note", "phone stolen"]);
    assert_eq!(retired["retired"], "lost");
    record("admin retire", retired);
    let closed = admin(&["close-due"]);
    assert_eq!(
        closed["closed"], 0,
        "not due before the certificate expired"
    );
    record("admin close-due", closed);

    // Failures: refused, usage, done but not delivered.
    let r = run(&[
        "--json",
        "wallet",
        "--dir",
        alice.to_str().unwrap(),
        "redeem",
        "100000.00",
    ]);
    record("a refusal", r.json());
    let r = run(&["--json", "admin", "--data-dir", &data, "deposit"]);
    record("a usage error", r.json());
    let r = run(&[
        "--json",
        "wallet",
        "--dir",
        carol.to_str().unwrap(),
        "redeem",
        "1.00",
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert_eq!(r.code, 3, "{r:?}");
    record("done, not delivered", r.json());

    // `server --json`: one object per line, each in the conventions.
    let sd = tempfile::tempdir().unwrap();
    let mut child = offpay()
        .args(["--json", "server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(sd.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    record("server --json", serde_json::from_str(line.trim()).unwrap());

    record("demo", ok(&["demo"]));

    let mut broken = Vec::new();
    for (label, v) in &seen {
        for x in violations(v) {
            broken.push(format!("{label}: {x}"));
        }
    }
    assert!(
        broken.is_empty(),
        "the JSON contract is broken:\n{}",
        broken.join("\n")
    );
    assert!(seen.len() >= 30, "{} outputs checked", seen.len());
}
