//! kill -9 of each server of a scheme in turn (the scheme, bank-a, bank-b:
//! real `offpay` processes, each with its own database) while claims travel
//! between them: the issuers' links run by themselves every 40 ms and wallets
//! keep syncing payments in. After the last restart every payee has every
//! cent once, every claim exists exactly once at the scheme, and a cycle nets
//! the exact amounts; invariants hold on all three. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::path::Path;
use std::time::{Duration, Instant};

use offpay_test_support::cluster::{Backend, Cluster, Node};
use offpay_test_support::server::now;
use offpay_test_support::test_bytes;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;
use serde_json::Value;

/// Payments each way per round (so every link round has claims to carry).
const PER_ROUND: usize = 8;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_offpay"))
}

/// Sync `w` at `n` when it runs; a refused or cut sync changes nothing in the
/// wallet (it is retried at the next round). Whether it went through.
fn try_sync(n: &Node, w: &mut Wallet<MemoryVault>) -> bool {
    if !n.running() {
        return false;
    }
    let Ok(report) = w.sync_report(now()) else {
        return false;
    };
    match n.client.sync(&report) {
        Ok(body) => w.apply_sync_response(&body, now()).is_ok(),
        Err(_) => false,
    }
}

/// The scheme's claims, each id once (the list must have no duplicate).
fn scheme_claim_ids(c: &Cluster) -> Vec<String> {
    let v = c.scheme.get_json("/v1/scheme/claims?limit=1000");
    let mut ids: Vec<String> = v["claims"]
        .as_array()
        .unwrap_or_else(|| panic!("no claims in {v}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "a claim twice at the scheme");
    ids
}

/// Link rounds until neither issuer has anything open towards the scheme.
fn drain(c: &Cluster) -> Value {
    let end = Instant::now() + Duration::from_secs(120);
    loop {
        c.link_all();
        let (sa, sb) = (c.a.scheme_status(), c.b.scheme_status());
        let open = |s: &Value| s["outbox"].as_u64().unwrap_or(u64::MAX);
        if open(&sa) == 0 && open(&sb) == 0 {
            return serde_json::json!({"a": sa, "b": sb});
        }
        assert!(Instant::now() < end, "the links never drained: {sa} {sb}");
    }
}

fn kill_each_server_in_turn(backend: Backend) {
    let Some(mut c) = Cluster::start_with(bin(), backend, &format!("kill_{}", backend.name()), 40)
    else {
        return;
    };
    // Two payers and two payees at each bank.
    let mut a_pay: Vec<_> = (0..2)
        .map(|i| c.a.customer_with_wallet(&format!("ap{i}"), 0, 50_000))
        .collect();
    let mut a_get: Vec<_> = (0..2)
        .map(|i| c.a.customer_with_wallet(&format!("ag{i}"), 0, 0))
        .collect();
    let mut b_pay: Vec<_> = (0..2)
        .map(|i| c.b.customer_with_wallet(&format!("bp{i}"), 0, 50_000))
        .collect();
    let mut b_get: Vec<_> = (0..2)
        .map(|i| c.b.customer_with_wallet(&format!("bg{i}"), 0, 0))
        .collect();
    let jitter = test_bytes(64, 12);
    let (mut a_to_b, mut b_to_a, mut payments) = (0u64, 0u64, 0usize);
    let order = ["scheme", "bank-a", "bank-b", "scheme", "bank-a", "bank-b"];
    for (round, victim) in order.iter().enumerate() {
        // Payments of this round (offline).
        for k in 0..PER_ROUND {
            let i = k % 2;
            let x = 100 + (round * PER_ROUND + k) as u64;
            offpay_test_support::pay(&mut a_pay[i], &mut b_get[i], x, now());
            offpay_test_support::pay(&mut b_pay[i], &mut a_get[i], x + 1, now());
            a_to_b += x;
            b_to_a += x + 1;
            payments += 2;
        }
        // Half of the payees sync (claims start travelling), then the victim
        // dies at some point of the links' traffic, the rest sync meanwhile.
        try_sync(&c.b, &mut b_get[0]);
        try_sync(&c.a, &mut a_get[0]);
        std::thread::sleep(Duration::from_millis(u64::from(jitter[round]) % 120));
        c.node_mut(victim).kill9();
        try_sync(&c.b, &mut b_get[1]);
        try_sync(&c.a, &mut a_get[1]);
        for w in &mut a_pay {
            try_sync(&c.a, w);
        }
        for w in &mut b_pay {
            try_sync(&c.b, w);
        }
        std::thread::sleep(Duration::from_millis(150));
        c.node_mut(victim).restart();
    }
    // Everybody syncs once more with everything running; then drain.
    for w in a_pay.iter_mut().chain(a_get.iter_mut()) {
        assert!(try_sync(&c.a, w));
    }
    for w in b_pay.iter_mut().chain(b_get.iter_mut()) {
        assert!(try_sync(&c.b, w));
    }
    drain(&c);

    let got_a: i64 = a_get.iter().map(|w| c.a.sub_account(w)).sum();
    let got_b: i64 = b_get.iter().map(|w| c.b.sub_account(w)).sum();
    let left_a: i64 = a_pay.iter().map(|w| c.a.sub_account(w)).sum();
    let left_b: i64 = b_pay.iter().map(|w| c.b.sub_account(w)).sum();
    assert_eq!(got_b, a_to_b as i64, "bank-b's payees: every cent once");
    assert_eq!(got_a, b_to_a as i64, "bank-a's payees: every cent once");
    assert_eq!(left_a, 100_000 - a_to_b as i64);
    assert_eq!(left_b, 100_000 - b_to_a as i64);
    assert_eq!(scheme_claim_ids(&c).len(), payments, "every claim once");
    let net = a_to_b as i64 - b_to_a as i64;
    assert_eq!(c.a.peer_account(&c.b.issuer_id), net);
    assert_eq!(c.b.peer_account(&c.a.issuer_id), -net);
    let cycle = c.close_cycle();
    assert_eq!(cycle["claims"], payments as u64, "{cycle}");
    assert_eq!(c.a.peer_account(&c.b.issuer_id), 0);
    assert_eq!(c.b.peer_account(&c.a.issuer_id), 0);
    c.assert_invariants();
}

#[test]
fn kill_each_server_in_turn_sqlite() {
    kill_each_server_in_turn(Backend::Sqlite);
}

#[test]
fn kill_each_server_in_turn_postgres() {
    kill_each_server_in_turn(Backend::Postgres);
}
