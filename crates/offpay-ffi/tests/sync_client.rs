//! The SDK's built-in sync client against a real offpay server on loopback
//! (in process, SQLite in a temporary directory): enroll, load, pay both
//! ways offline, sync, redeem; the network and server failures are typed.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::sync::Arc;

use common::*;
use offpay_client::api::MoneyRequest;
use offpay_ffi::{OffpayError, OffpayWallet, SyncClient, WalletProfile};
use offpay_test_support::server::{TestServer, b64d};

fn url(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

fn enroll(server: &TestServer, client: &SyncClient, customer: &str) -> (Host, Arc<OffpayWallet>) {
    let host = Host::new(&TestPlatform::real());
    let w = host.create(&server.root_der()).unwrap();
    let token = server.operator.enrollment_token(customer).unwrap().token;
    client.enroll(w.clone(), token).unwrap();
    (host, w)
}

fn load(server: &TestServer, w: &OffpayWallet, minor: u64, key: &str) {
    let r = server
        .operator
        .load(
            &w.wallet_id().unwrap(),
            &MoneyRequest {
                amount_minor: minor,
                currency: "EUR".into(),
                idempotency_key: key.into(),
            },
        )
        .unwrap();
    assert_eq!(w.apply_voucher(b64d(&r.voucher)).unwrap(), minor);
}

#[test]
fn story_against_a_real_server() {
    let server = TestServer::start();
    server.create_customer("alice", 50_000);
    server.create_customer("bob", 20_000);
    let client = SyncClient::new(url(&server)).unwrap();
    let (_ha, a) = enroll(&server, &client, "alice");
    let (hb, b) = enroll(&server, &client, "bob");
    assert!(a.status().unwrap().enrolled);
    load(&server, &a, 10_000, "load-a");
    load(&server, &b, 5_000, "load-b");

    pay(&a, &b, 2_500);
    pay(&b, &a, 1_000);

    let out = client.sync(a.clone()).unwrap();
    assert!(out.checkpoint >= 1);
    assert_eq!(out.balance.unwrap().minor, 8_500);
    client.sync(b.clone()).unwrap();
    assert_eq!(a.status().unwrap().unsynced_entries, 0);

    let r = client.redeem(a.clone(), 500).unwrap();
    assert!(r.settled, "{r:?}");
    assert_eq!(r.balance.minor, 8_000);
    assert_eq!(r.customer_balance_minor, Some(50_000 - 10_000 + 500));
    assert_eq!(server.customer_balance("alice"), 40_500);

    // An enrollment token works once.
    let token = server.operator.enrollment_token("bob").unwrap().token;
    let fresh = Host::new(&TestPlatform::real())
        .create(&server.root_der())
        .unwrap();
    client.enroll(fresh.clone(), token.clone()).unwrap();
    let again = Host::new(&TestPlatform::real())
        .create(&server.root_der())
        .unwrap();
    let e = client.enroll(again.clone(), token).unwrap_err();
    assert!(
        matches!(e, OffpayError::Server { status, .. } if (400..500).contains(&status)),
        "{e:?}"
    );
    assert!(!again.status().unwrap().enrolled);

    // A wallet enrolled once refuses a second enrollment.
    let token = server.operator.enrollment_token("bob").unwrap().token;
    assert!(client.enroll(b.clone(), token).is_err());
    assert_eq!(balance(&hb.open().unwrap()), 6_500);

    server.assert_invariants();
}

#[test]
fn redeem_without_the_server_settles_at_the_next_sync() {
    let server = TestServer::start();
    server.create_customer("carol", 30_000);
    let client = SyncClient::new(url(&server)).unwrap();
    let (_h, w) = enroll(&server, &client, "carol");
    load(&server, &w, 10_000, "load-c");

    // Nothing listens on this port (bound, then closed).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let offline = SyncClient::new(dead_url).unwrap();
    let r = offline.redeem(w.clone(), 1_500).unwrap();
    assert!(!r.settled);
    assert!(r.reason.is_some());
    assert_eq!(r.balance.minor, 8_500);
    assert!(matches!(
        offline.sync(w.clone()),
        Err(OffpayError::Network { .. })
    ));
    assert_eq!(server.customer_balance("carol"), 20_000);

    // The redeem entry is in the log: the next sync settles it, once.
    client.sync(w.clone()).unwrap();
    assert_eq!(server.customer_balance("carol"), 21_500);
    client.sync(w.clone()).unwrap();
    assert_eq!(server.customer_balance("carol"), 21_500);
    assert_eq!(balance(&w), 8_500);
    server.assert_invariants();
}

#[test]
fn bad_urls_are_invalid_arguments() {
    for bad in [
        "",
        "ftp://x",
        "https://example.org",
        "http://",
        "http://a b",
    ] {
        assert!(
            matches!(
                SyncClient::new(bad.into()),
                Err(OffpayError::InvalidArgument { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn a_terminal_enrolls_receives_and_never_pays() {
    let server = TestServer::start();
    server.create_customer("shop", 0);
    server.create_customer("dave", 30_000);
    let client = SyncClient::new(url(&server)).unwrap();
    let (_hd, d) = enroll(&server, &client, "dave");
    load(&server, &d, 10_000, "load-d");

    let host = Host::new(&TestPlatform::real());
    let t = host.create(&server.root_der()).unwrap();
    let token = server
        .operator
        .enrollment_token_for(
            "shop",
            &offpay_client::api::EnrollmentTokenQuery {
                profile: Some("terminal".into()),
            },
        )
        .unwrap()
        .token;
    client.enroll(t.clone(), token).unwrap();
    assert_eq!(t.status().unwrap().profile, WalletProfile::Terminal);
    assert_eq!(d.status().unwrap().profile, WalletProfile::Personal);

    let before = t.status().unwrap();
    assert_eq!(before.sweep_due_minor, 0);
    pay(&d, &t, 1_200);
    assert_eq!(balance(&t), 1_200);
    let after = t.status().unwrap();
    // The receive limits count down; the whole taking is due to the shop
    // (the issuer's default float is 0).
    assert_eq!(
        after.receive_payments_left.unwrap() + 1,
        before.receive_payments_left.unwrap()
    );
    assert_eq!(
        after.receive_left_minor.unwrap() + 1_200,
        before.receive_left_minor.unwrap()
    );
    assert_eq!(after.sweep_due_minor, 1_200);
    assert_eq!(d.status().unwrap().sweep_due_minor, 0);
    let req = d.request(100, "EUR".into(), 300).unwrap();
    assert_eq!(t.pay(req).unwrap_err(), OffpayError::TerminalCannotPay);
    assert_eq!(balance(&t), 1_200);
    // The sync sweeps the takings to the shop's online account.
    client.sync(t.clone()).unwrap();
    assert_eq!(balance(&t), 0);
    assert_eq!(t.status().unwrap().sweep_due_minor, 0);
    assert_eq!(
        server.operator.customer("shop").unwrap().balance_minor,
        1_200
    );
    client.sync(d.clone()).unwrap();
    server.assert_invariants();
}
