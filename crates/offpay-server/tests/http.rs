//! The HTTP API against a real server on a loopback port (SQLite in a temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::process::Command;

use offpay_protocol::envelope::Signed;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::messages::{SYNC_REPORT_BYTES_MAX, SyncResponse};
use offpay_protocol::pki::{Certificate, Crl};
use offpay_test_support::server::*;
use offpay_test_support::{eur, pay};
use offpay_wallet::Wallet;
use serde_json::{Value, json};

const KIB64: usize = 64 << 10;

/// Flip the last byte of a COSE_Sign1 message: its signature's.
fn flip_signature(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let n = m.len() - 1;
    m[n] ^= 0x01;
    m
}

/// Every route of the API (method, OpenAPI path, a concrete path).
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/admin/customers"),
    ("GET", "/v1/admin/customers/alice"),
    ("POST", "/v1/admin/customers/alice/deposit"),
    ("POST", "/v1/admin/customers/alice/withdraw"),
    ("POST", "/v1/admin/customers/alice/enrollment-tokens"),
    ("GET", "/v1/admin/wallets"),
    ("GET", "/v1/admin/wallets/00112233445566778899aabbccddeeff"),
    (
        "POST",
        "/v1/admin/wallets/00112233445566778899aabbccddeeff/load",
    ),
    (
        "POST",
        "/v1/admin/wallets/00112233445566778899aabbccddeeff/revoke",
    ),
    (
        "POST",
        "/v1/admin/wallets/00112233445566778899aabbccddeeff/lock",
    ),
    (
        "POST",
        "/v1/admin/wallets/00112233445566778899aabbccddeeff/unlock",
    ),
    ("GET", "/v1/admin/double-spends"),
    ("GET", "/v1/admin/invariants"),
    ("GET", "/v1/admin/scheme"),
    ("POST", "/v1/admin/scheme/sync"),
    ("POST", "/v1/admin/cases"),
    ("GET", "/v1/admin/cases"),
    ("GET", "/v1/admin/cases/1"),
    ("POST", "/v1/admin/cases/1/decide"),
    ("POST", "/v1/admin/cases/1/resolve"),
    ("GET", "/v1/admin/cases/1/bundle"),
    ("POST", "/v1/admin/retention/run"),
    (
        "GET",
        "/v1/admin/wallets/00112233445566778899aabbccddeeff/export",
    ),
];

const OPENAPI_ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/enroll"),
    ("post", "/v1/sync"),
    ("post", "/v1/redeem"),
    ("post", "/v1/admin/customers"),
    ("get", "/v1/admin/customers/{id}"),
    ("post", "/v1/admin/customers/{id}/deposit"),
    ("post", "/v1/admin/customers/{id}/withdraw"),
    ("post", "/v1/admin/customers/{id}/enrollment-tokens"),
    ("get", "/v1/admin/wallets"),
    ("get", "/v1/admin/wallets/{id}"),
    ("post", "/v1/admin/wallets/{id}/load"),
    ("post", "/v1/admin/wallets/{id}/revoke"),
    ("post", "/v1/admin/wallets/{id}/lock"),
    ("post", "/v1/admin/wallets/{id}/rekey"),
    ("post", "/v1/admin/wallets/{id}/unlock"),
    ("post", "/v1/admin/wallets/{id}/retire"),
    ("post", "/v1/admin/lifecycle/close"),
    ("get", "/v1/admin/lifecycle/rules"),
    ("post", "/v1/admin/cases"),
    ("get", "/v1/admin/cases"),
    ("get", "/v1/admin/cases/{id}"),
    ("post", "/v1/admin/cases/{id}/decide"),
    ("post", "/v1/admin/cases/{id}/resolve"),
    ("get", "/v1/admin/cases/{id}/bundle"),
    ("post", "/v1/admin/retention/run"),
    ("get", "/v1/admin/wallets/{id}/export"),
    ("post", "/v1/admin/wallets/{id}/pin-unlock"),
    ("post", "/v1/pin-unlock"),
    ("get", "/v1/admin/double-spends"),
    ("get", "/v1/admin/invariants"),
    ("get", "/v1/admin/scheme"),
    ("post", "/v1/admin/scheme/sync"),
    ("get", "/v1/crl"),
    ("get", "/v1/roots"),
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

#[test]
fn full_story_through_http() {
    story(&TestServer::start(), "sqlite");
}

#[test]
fn full_story_through_http_on_postgres() {
    // The server (and its connections) stops before the database is dropped.
    if let Some((s, _db)) = TestServer::start_postgres("story") {
        story(&s, "postgres");
        s.stop();
    }
}

fn story(s: &TestServer, backend: &str) {
    assert_eq!(s.get("/healthz").expect(200).json()["backend"], backend);
    s.create_customer("alice", 50_000);
    s.create_customer("bob", 0);
    let (mut alice, enrollment) = s.enroll_wallet("alice");
    let (mut bob, _) = s.enroll_wallet("bob");
    for k in [
        "certificate",
        "issuer_certificate",
        "root_certificate",
        "crl",
    ] {
        assert!(!b64d(enrollment[k].as_str().unwrap()).is_empty(), "{k}");
    }

    // Load through the operator endpoint and apply the voucher.
    let l = s.load(&mut alice, 10_000, "load-alice-1");
    assert_eq!(l["load_seq"], 1);
    assert_eq!(l["amount_minor"], 10_000);
    assert_eq!(alice.balance().unwrap().minor, 10_000);
    assert_eq!(s.customer_balance("alice"), 40_000);
    let wa = s.wallet(&alice);
    assert_eq!(wa["offline_balance_minor"], 10_000);
    assert_eq!(wa["load_seq"], 1);
    assert_eq!(wa["state"], "active");
    assert_eq!(wa["customer"], "alice");

    // Offline: Alice pays Bob; the payee syncs first, then the payer.
    pay(&mut alice, &mut bob, 2_500, now());
    s.sync(&mut bob);
    s.sync(&mut alice);
    assert_eq!(s.wallet(&alice)["offline_balance_minor"], 7_500);
    assert_eq!(s.wallet(&bob)["offline_balance_minor"], 2_500);
    assert_eq!(s.wallet(&alice)["checkpoint"], 1);
    assert_eq!(alice.balance().unwrap().minor, 7_500);
    assert_eq!(bob.balance().unwrap().minor, 2_500);
    s.assert_invariants();

    // Redeem online over /v1/redeem, exactly once.
    let redeem = bob.redeem(eur(1_000), now()).unwrap();
    let r1 = s.post_cbor("/v1/redeem", &redeem).expect(200).json();
    assert_eq!(r1["customer_balance_minor"], 1_000);
    assert_eq!(r1["newly_settled"], true);
    assert_eq!(r1["amount_minor"], 1_000);
    assert_eq!(r1["currency"], "EUR");
    assert_eq!(r1["wallet_id"], bob.wallet_id().to_hex());
    let r2 = s.post_cbor("/v1/redeem", &redeem).expect(200).json();
    assert_eq!(r2["newly_settled"], false);
    assert_eq!(s.customer_balance("bob"), 1_000);
    s.sync(&mut bob);
    assert_eq!(
        s.customer_balance("bob"),
        1_000,
        "the synced redeem does not settle twice"
    );
    assert_eq!(s.wallet(&bob)["offline_balance_minor"], 1_500);

    // A voucher the wallet never applied arrives with its next sync.
    let l2 = s
        .admin_post(
            &format!("/v1/admin/wallets/{}/load", alice.wallet_id().to_hex()),
            json!({"amount_minor": 500, "currency": "EUR", "idempotency_key": "load-alice-2"}),
        )
        .expect(200)
        .json();
    assert_eq!(l2["load_seq"], 2);
    s.sync(&mut alice);
    assert_eq!(alice.balance().unwrap().minor, 8_000);
    assert_eq!(s.wallet(&alice)["offline_balance_minor"], 8_000);

    // Balances, lists and invariants.
    assert_eq!(s.customer_balance("alice"), 39_500);
    let inv = s.assert_invariants();
    assert_eq!(inv["supply"], "50000");
    assert_eq!(inv["totals"]["general_sum"], "0");
    assert_eq!(inv["totals"]["pool"], "9500");
    assert_eq!(inv["totals"]["wallets"], "9500");
    let list = s
        .admin_get("/v1/admin/wallets?customer=alice")
        .expect(200)
        .json();
    assert_eq!(list["wallets"].as_array().unwrap().len(), 1);
    assert_eq!(list["wallets"][0]["wallet_id"], alice.wallet_id().to_hex());
    let all = s.admin_get("/v1/admin/wallets?limit=10").expect(200).json();
    assert_eq!(all["wallets"].as_array().unwrap().len(), 2);
    let one = s.admin_get("/v1/admin/wallets?limit=1").expect(200).json();
    assert_eq!(one["wallets"].as_array().unwrap().len(), 1);
    let ds = s.admin_get("/v1/admin/double-spends").expect(200).json();
    assert_eq!(ds["double_spends"], json!([]));

    // The server's counters saw it all.
    let m = s.get("/metrics").expect(200).text();
    let value = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .unwrap_or_else(|| panic!("{name} missing in\n{m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(value("offpay_syncs_total"), 4.0);
    assert!(value("offpay_entries_recorded_total") >= 1.0);
    assert!(value("offpay_payments_settled_total") >= 2.0);
    assert_eq!(value("offpay_double_spends_detected_total"), 0.0);
    assert_eq!(value("offpay_supply_minor"), 50_000.0);
    assert_eq!(value("offpay_pool_minor"), 9_500.0);
    assert_eq!(value("offpay_invariants_ok"), 1.0);
    assert!(
        m.contains("offpay_http_requests_total{route=\"/v1/sync\",status=\"2xx\"} 4"),
        "{m}"
    );
}

#[test]
fn double_spend_by_a_cloned_wallet_through_http() {
    let s = TestServer::start();
    s.create_customer("alice", 6_000);
    s.create_customer("bob", 0);
    s.create_customer("carol", 0);
    let (mut alice, _) = s.enroll_wallet("alice");
    let (mut bob, _) = s.enroll_wallet("bob");
    let (mut carol, _) = s.enroll_wallet("carol");
    s.load(&mut alice, 5_000, "load-a");
    // The attacker copies the whole device before paying.
    let mut clone = Wallet::open(alice.vault().clone()).unwrap();
    pay(&mut alice, &mut bob, 5_000, now());
    pay(&mut clone, &mut carol, 4_000, now());
    s.sync(&mut bob);
    s.sync(&mut carol);
    // Both honest payees are paid; the payer is revoked; the proof is published.
    assert_eq!(s.wallet(&bob)["offline_balance_minor"], 5_000);
    assert_eq!(s.wallet(&carol)["offline_balance_minor"], 4_000);
    let wa = s.wallet(&alice);
    assert_eq!(wa["state"], "revoked");
    assert_eq!(wa["clawed_back_minor"], 1_000);
    assert_eq!(wa["guaranteed_minor"], 3_000);
    let ds = s
        .admin_get("/v1/admin/double-spends?limit=5")
        .expect(200)
        .json();
    let list = ds["double_spends"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["payer"], alice.wallet_id().to_hex());
    assert_eq!(list[0]["seq"], 1);
    assert_eq!(list[0]["entries"].as_array().unwrap().len(), 2);
    let root = Certificate::from_der(&s.root_der()).unwrap();
    let proven =
        verify_double_spend_bytes(&b64d(list[0]["proof"].as_str().unwrap()), &root).unwrap();
    assert_eq!(proven.payer, alice.wallet_id());
    let by_payer = s
        .admin_get(&format!(
            "/v1/admin/double-spends?payer={}",
            alice.wallet_id().to_hex()
        ))
        .expect(200)
        .json();
    assert_eq!(by_payer["double_spends"].as_array().unwrap().len(), 1);
    let by_other = s
        .admin_get(&format!(
            "/v1/admin/double-spends?payer={}",
            bob.wallet_id().to_hex()
        ))
        .expect(200)
        .json();
    assert_eq!(by_other["double_spends"], json!([]));
    let crl = Crl::from_der(&s.get("/v1/crl").expect(200).body).unwrap();
    let serial: u64 = wa["cert_serial"].as_str().unwrap().parse().unwrap();
    assert!(crl.is_revoked(serial).is_some());
    // The payer's own sync is answered with a lock.
    let report = alice.sync_report(now()).unwrap();
    let resp = s.post_cbor("/v1/sync", &report).expect(200).body;
    let resp = Signed::<SyncResponse>::decode(&resp).unwrap();
    assert!(matches!(
        resp.body().command,
        offpay_protocol::messages::WalletCommand::Lock { .. }
    ));
    s.assert_invariants();
    let m = s.get("/metrics").expect(200).text();
    assert!(m.contains("offpay_double_spends_detected_total 1"), "{m}");
    assert!(
        m.contains("offpay_guarantee_minor -3000") || m.contains("offpay_guarantee_minor 3000"),
        "{m}"
    );
}

#[test]
fn sync_errors_post_nothing() {
    let s = TestServer::start();
    s.create_customer("alice", 1_000);
    let (mut alice, _) = s.enroll_wallet("alice");
    // A copy of the device, taken before the report (for the replay below).
    let clone_vault = alice.vault().clone();
    let report = alice.sync_report(now()).unwrap();

    s.post_cbor("/v1/sync", b"\xa1\x01")
        .expect_error(400, "malformed");
    s.post_cbor("/v1/sync", b"not cbor at all")
        .expect_error(400, "malformed");
    s.post_cbor("/v1/sync", b"").expect_error(400, "malformed");
    s.req("POST", "/v1/sync")
        .header("Content-Type", "application/json")
        .body(&report)
        .send()
        .expect_error(415, "unsupported_media_type");
    s.req("POST", "/v1/sync")
        .body(&report)
        .send()
        .expect_error(415, "unsupported_media_type");
    s.post_cbor("/v1/sync", &flip_signature(&report))
        .expect_error(422, "bad_signature");
    s.req("POST", "/v1/sync")
        .header("Content-Type", "application/cbor")
        .send_declaring(SYNC_REPORT_BYTES_MAX + 1)
        .expect_error(413, "body_too_large");
    // The sync route's limit is SYNC_REPORT_BYTES_MAX, not the 64 KiB of the others.
    s.post_cbor("/v1/sync", &vec![0xa0; KIB64 * 2])
        .expect_error(400, "malformed");
    // Nothing was recorded by the refused requests.
    assert_eq!(s.wallet(&alice)["report_seq"], 0);
    assert_eq!(s.wallet(&alice)["checkpoint"], 0);

    // The real report: accepted; sent again: the same answer (idempotent).
    let a = s.post_cbor("/v1/sync", &report).expect(200).body;
    let b = s.post_cbor("/v1/sync", &report).expect(200).body;
    assert_eq!(a, b);
    alice.apply_sync_response(&a, now()).unwrap();
    assert_eq!(s.wallet(&alice)["report_seq"], 1);
    // Another report under the same report seq (a rolled-back or cloned device):
    // answered with a lock, and the wallet is locked at the issuer.
    let mut clone = Wallet::open(clone_vault).unwrap();
    let other = clone.sync_report(now().plus(5)).unwrap();
    assert_ne!(other, report);
    let resp = s.post_cbor("/v1/sync", &other).expect(200).body;
    let resp = Signed::<SyncResponse>::decode(&resp).unwrap();
    assert!(matches!(
        resp.body().command,
        offpay_protocol::messages::WalletCommand::Lock { .. }
    ));
    assert_eq!(s.wallet(&alice)["state"], "locked");

    // A wallet this issuer does not know (enrolled at another issuer).
    let other_issuer = TestServer::start();
    other_issuer.create_customer("zoe", 0);
    let (mut zoe, _) = other_issuer.enroll_wallet("zoe");
    let zr = zoe.sync_report(now()).unwrap();
    s.post_cbor("/v1/sync", &zr)
        .expect_error(404, "unknown_wallet");
    other_issuer.post_cbor("/v1/sync", &zr).expect(200);
    s.assert_invariants();
}

#[test]
fn redeem_errors_post_nothing() {
    let s = TestServer::start();
    s.create_customer("bob", 1_000);
    let (mut bob, _) = s.enroll_wallet("bob");
    s.load(&mut bob, 1_000, "load-bob");
    let redeem = bob.redeem(eur(300), now()).unwrap();

    s.post_cbor("/v1/redeem", b"\x00\x01\x02")
        .expect_error(400, "malformed");
    s.req("POST", "/v1/redeem")
        .header("Content-Type", "text/plain")
        .body(&redeem)
        .send()
        .expect_error(415, "unsupported_media_type");
    s.post_cbor("/v1/redeem", &flip_signature(&redeem))
        .expect_error(422, "bad_signature");
    s.req("POST", "/v1/redeem")
        .header("Content-Type", "application/cbor")
        .send_declaring(KIB64 + 1)
        .expect_error(413, "body_too_large");
    s.req("POST", "/v1/redeem")
        .header("Content-Type", "application/cbor")
        .body(&vec![0u8; KIB64 + 1])
        .send_chunked()
        .expect_error(413, "body_too_large");
    assert_eq!(
        s.customer_balance("bob"),
        0,
        "nothing credited by refused redeems"
    );

    let other_issuer = TestServer::start();
    other_issuer.create_customer("zoe", 500);
    let (mut zoe, _) = other_issuer.enroll_wallet("zoe");
    other_issuer.load(&mut zoe, 500, "load-zoe");
    let zr = zoe.redeem(eur(100), now()).unwrap();
    s.post_cbor("/v1/redeem", &zr)
        .expect_error(404, "unknown_wallet");

    let ok = s.post_cbor("/v1/redeem", &redeem).expect(200).json();
    assert_eq!(ok["customer_balance_minor"], 300);
    assert_eq!(s.wallet(&bob)["offline_balance_minor"], 700);
    s.assert_invariants();
}

#[test]
fn enrollment_tokens_name_the_profile() {
    let s = TestServer::start();
    s.create_customer("alice", 0);
    let personal = s
        .req("POST", "/v1/admin/customers/alice/enrollment-tokens")
        .auth(&s.token)
        .send()
        .expect(201)
        .json();
    assert_eq!(personal["profile"], "personal");
    // A terminal's token; an unknown profile is the client's mistake.
    let terminal = s
        .req(
            "POST",
            "/v1/admin/customers/alice/enrollment-tokens?profile=terminal",
        )
        .auth(&s.token)
        .send()
        .expect(201)
        .json();
    assert_eq!(terminal["profile"], "terminal");
    assert_ne!(terminal["token"], personal["token"]);
    s.req(
        "POST",
        "/v1/admin/customers/alice/enrollment-tokens?profile=merchant",
    )
    .auth(&s.token)
    .send()
    .expect_error(400, "invalid_input");
}

#[test]
fn enroll_errors() {
    let s = TestServer::start();
    s.create_customer("alice", 0);
    let token = s
        .req("POST", "/v1/admin/customers/alice/enrollment-tokens")
        .auth(&s.token)
        .send()
        .expect(201)
        .json();
    assert_eq!(token["customer"], "alice");
    let token = token["token"].as_str().unwrap().to_string();
    let w = Wallet::create(
        offpay_wallet::vault::MemoryVault::new(),
        offpay_protocol::Suite::Ed25519,
        &s.root_der(),
        now(),
    )
    .unwrap();
    let csr = b64e(&w.csr().unwrap());

    s.req("POST", "/v1/enroll")
        .header("Content-Type", "application/json")
        .body(b"{\"token\": ")
        .send()
        .expect_error(400, "invalid_json");
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": token}))
        .send()
        .expect_error(400, "invalid_json");
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": 5, "csr": csr}))
        .send()
        .expect_error(400, "invalid_json");
    s.req("POST", "/v1/enroll")
        .header("Content-Type", "text/plain")
        .body(b"{}")
        .send()
        .expect_error(415, "unsupported_media_type");
    s.req("POST", "/v1/enroll")
        .header("Content-Type", "application/cbor")
        .body(b"{}")
        .send()
        .expect_error(415, "unsupported_media_type");
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": token, "csr": "***"}))
        .send()
        .expect_error(400, "invalid_input");
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": token, "csr": b64e(b"not a csr")}))
        .send()
        .expect_error(422, "certificate_refused");
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": "0123456789abcdef", "csr": csr}))
        .send()
        .expect_error(403, "enrollment_token");
    s.req("POST", "/v1/enroll")
        .header("Content-Type", "application/json")
        .send_declaring(KIB64 + 1)
        .expect_error(413, "body_too_large");
    let big = json!({"token": "x".repeat(KIB64), "csr": csr});
    s.req("POST", "/v1/enroll")
        .json(&big)
        .send_chunked()
        .expect_error(413, "body_too_large");
    assert_eq!(
        s.admin_get("/v1/admin/wallets").expect(200).json()["wallets"],
        json!([]),
        "nothing enrolled"
    );

    // Success; the same request again returns the same enrollment; another wallet cannot reuse the token.
    let e1 = s
        .req("POST", "/v1/enroll")
        .json(&json!({"token": token, "csr": csr}))
        .send()
        .expect(200)
        .json();
    let e2 = s
        .req("POST", "/v1/enroll")
        .json(&json!({"token": token, "csr": csr}))
        .send()
        .expect(200)
        .json();
    assert_eq!(e1, e2);
    let w2 = Wallet::create(
        offpay_wallet::vault::MemoryVault::new(),
        offpay_protocol::Suite::Ed25519,
        &s.root_der(),
        now(),
    )
    .unwrap();
    s.req("POST", "/v1/enroll")
        .json(&json!({"token": token, "csr": b64e(&w2.csr().unwrap())}))
        .send()
        .expect_error(403, "enrollment_token");
    let cert = Certificate::from_der(&b64d(e1["certificate"].as_str().unwrap())).unwrap();
    assert_eq!(cert.wallet_id(), Some(w.wallet_id()));
}

#[test]
fn operator_endpoints_need_the_token() {
    let s = TestServer::start();
    for (method, path) in ADMIN_ROUTES {
        let body = json!({"id": "x", "amount_minor": 1, "currency": "EUR", "idempotency_key": "k"});
        let r = s.req(method, path).json(&body).send();
        let r = r.expect_error(401, "unauthorized");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer"),
            "{method} {path}"
        );
        s.req(method, path)
            .auth("wrong-token-0123456789")
            .json(&body)
            .send()
            .expect_error(401, "unauthorized");
        s.req(method, path)
            .auth(&format!("{}x", s.token))
            .json(&body)
            .send()
            .expect_error(401, "unauthorized");
        s.req(method, path)
            .header("Authorization", &format!("Basic {}", s.token))
            .json(&body)
            .send()
            .expect_error(401, "unauthorized");
        s.req(method, path)
            .header("Authorization", &s.token)
            .json(&body)
            .send()
            .expect_error(401, "unauthorized");
    }
    // Unauthenticated requests posted nothing.
    s.admin_get("/v1/admin/customers/x")
        .expect_error(404, "unknown_customer");
    // The lower-case scheme is accepted.
    s.req("GET", "/v1/admin/invariants")
        .header("Authorization", &format!("bearer {}", s.token))
        .send()
        .expect(200);

    // The generated token and the master key are private files in the data directory.
    let token_file = std::fs::read_to_string(s.data_dir.join("operator-token")).unwrap();
    assert_eq!(token_file.trim(), s.token);
    #[cfg(unix)]
    for f in ["operator-token", "master.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(s.data_dir.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn customer_endpoints() {
    let s = TestServer::start();
    let c = s
        .admin_post(
            "/v1/admin/customers",
            json!({"id": "alice", "name": "Alice"}),
        )
        .expect(201)
        .json();
    assert_eq!(
        c,
        json!({"id": "alice", "balance_minor": 0, "currency": "EUR"})
    );
    s.admin_post(
        "/v1/admin/customers",
        json!({"id": "alice", "name": "Alice"}),
    )
    .expect_error(409, "customer_exists");
    s.admin_post("/v1/admin/customers", json!({"id": "a b", "name": "x"}))
        .expect_error(400, "invalid_input");
    s.admin_post("/v1/admin/customers", json!({"name": "x"}))
        .expect_error(400, "invalid_json");
    s.req("POST", "/v1/admin/customers")
        .auth(&s.token)
        .header("Content-Type", "application/json")
        .body(b"[1,")
        .send()
        .expect_error(400, "invalid_json");
    s.req("POST", "/v1/admin/customers")
        .auth(&s.token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(b"id=x")
        .send()
        .expect_error(415, "unsupported_media_type");
    s.req("POST", "/v1/admin/customers")
        .auth(&s.token)
        .header("Content-Type", "application/json")
        .send_declaring(KIB64 + 1)
        .expect_error(413, "body_too_large");
    s.req("POST", "/v1/admin/customers")
        .auth(&s.token)
        .json(&json!({"id": "big", "name": "n".repeat(KIB64)}))
        .send_chunked()
        .expect_error(413, "body_too_large");
    s.admin_get("/v1/admin/customers/nobody")
        .expect_error(404, "unknown_customer");
    s.admin_get("/v1/admin/customers/bad%20id")
        .expect_error(400, "invalid_input");

    let dep = |key: &str, minor: i64| {
        s.admin_post(
            "/v1/admin/customers/alice/deposit",
            json!({"amount_minor": minor, "currency": "EUR", "idempotency_key": key}),
        )
    };
    assert_eq!(dep("d1", 1_000).expect(200).json()["balance_minor"], 1_000);
    assert_eq!(
        dep("d1", 1_000).expect(200).json()["balance_minor"],
        1_000,
        "the same request again posts nothing"
    );
    dep("d1", 2_000).expect_error(409, "replay");
    dep("d2", 0).expect_error(400, "invalid_input");
    dep("d3", -5).expect_error(400, "invalid_json");
    s.admin_post(
        "/v1/admin/customers/alice/deposit",
        json!({"amount_minor": 5, "currency": "USD", "idempotency_key": "d4"}),
    )
    .expect_error(400, "invalid_input");
    s.admin_post(
        "/v1/admin/customers/alice/deposit",
        json!({"amount_minor": 5, "currency": "euro", "idempotency_key": "d4"}),
    )
    .expect_error(400, "invalid_input");
    s.admin_post(
        "/v1/admin/customers/nobody/deposit",
        json!({"amount_minor": 5, "currency": "EUR", "idempotency_key": "d5"}),
    )
    .expect_error(404, "unknown_customer");
    assert_eq!(s.customer_balance("alice"), 1_000);

    let wd = |key: &str, minor: u64| {
        s.admin_post(
            "/v1/admin/customers/alice/withdraw",
            json!({"amount_minor": minor, "currency": "EUR", "idempotency_key": key}),
        )
    };
    assert_eq!(wd("w1", 400).expect(200).json()["balance_minor"], 600);
    wd("w2", 601).expect_error(409, "insufficient_funds");
    wd("w1", 300).expect_error(409, "replay");
    s.admin_post(
        "/v1/admin/customers/nobody/withdraw",
        json!({"amount_minor": 5, "currency": "EUR", "idempotency_key": "w3"}),
    )
    .expect_error(404, "unknown_customer");
    assert_eq!(s.customer_balance("alice"), 600);

    s.req("POST", "/v1/admin/customers/nobody/enrollment-tokens")
        .auth(&s.token)
        .send()
        .expect_error(404, "unknown_customer");
    let inv = s.assert_invariants();
    assert_eq!(inv["supply"], "600");
}

#[test]
#[expect(clippy::too_many_lines)] // lint-exception: one scenario told end to end
fn wallet_endpoints() {
    let s = TestServer::start();
    s.create_customer("alice", 200_000);
    s.create_customer("poor", 100);
    assert_eq!(
        s.admin_get("/v1/admin/wallets").expect(200).json()["wallets"],
        json!([])
    );
    let (mut alice, _) = s.enroll_wallet("alice");
    let (poor, _) = s.enroll_wallet("poor");
    let id = alice.wallet_id().to_hex();
    let unknown = "00112233445566778899aabbccddeeff";

    s.admin_get("/v1/admin/wallets?limit=0")
        .expect_error(400, "invalid_input");
    s.admin_get("/v1/admin/wallets?limit=abc")
        .expect_error(400, "invalid_input");
    s.admin_get("/v1/admin/wallets/xyz")
        .expect_error(400, "invalid_input");
    s.admin_get(&format!("/v1/admin/wallets/{unknown}"))
        .expect_error(404, "unknown_wallet");
    let w = s
        .admin_get(&format!("/v1/admin/wallets/{id}"))
        .expect(200)
        .json();
    assert_eq!(w["state"], "active");
    assert_eq!(w["reason"], Value::Null);
    assert!(w["cert_not_after"].as_u64().unwrap() > now().0);
    assert!(w["cert_serial"].as_str().unwrap().parse::<u64>().is_ok());

    let load = |wid: &str, minor: u64, key: &str| {
        s.admin_post(
            &format!("/v1/admin/wallets/{wid}/load"),
            json!({"amount_minor": minor, "currency": "EUR", "idempotency_key": key}),
        )
    };
    load(unknown, 100, "l0").expect_error(404, "unknown_wallet");
    load("nothex", 100, "l0").expect_error(400, "invalid_input");
    load(&id, 100_001, "l1").expect_error(422, "limit");
    load(&poor.wallet_id().to_hex(), 101, "l2").expect_error(409, "insufficient_funds");
    s.req("POST", &format!("/v1/admin/wallets/{id}/load"))
        .auth(&s.token)
        .header("Content-Type", "application/json")
        .body(b"{")
        .send()
        .expect_error(400, "invalid_json");
    let v1 = load(&id, 1_000, "l3").expect(200).json();
    let v2 = load(&id, 1_000, "l3").expect(200).json();
    assert_eq!(v1, v2, "the same load again returns the same voucher");
    load(&id, 2_000, "l3").expect_error(409, "replay");
    alice
        .apply_voucher(&b64d(v1["voucher"].as_str().unwrap()), now())
        .unwrap();
    assert_eq!(s.wallet(&alice)["offline_balance_minor"], 1_000);

    // Re-key: bad input is refused by name and changes nothing.
    let rekey =
        |body: serde_json::Value| s.admin_post(&format!("/v1/admin/wallets/{id}/rekey"), body);
    rekey(json!({"suite": "rsa"})).expect_error(400, "invalid_input");
    rekey(json!({"suite": "ed25519", "cancel": true})).expect_error(400, "invalid_input");
    rekey(json!({"suite": 7})).expect_error(400, "invalid_json");
    s.admin_post(&format!("/v1/admin/wallets/{unknown}/rekey"), json!({}))
        .expect_error(404, "unknown_wallet");
    assert_eq!(s.wallet(&alice)["rekey_suite"], serde_json::Value::Null);
    let asked = rekey(json!({"suite": "ml-dsa-44"})).expect(200).json();
    assert_eq!(asked["rekey_suite"], "ml-dsa-44");
    assert_eq!(asked["key_generation"], 0);
    let same = rekey(json!({})).expect(200).json();
    assert_eq!(
        same["rekey_suite"], "ed25519",
        "default: the current key's suite"
    );
    let cancelled = rekey(json!({"cancel": true})).expect(200).json();
    assert_eq!(cancelled["rekey_suite"], serde_json::Value::Null);

    // Lock, unlock, revoke.
    let locked = s
        .admin_post(
            &format!("/v1/admin/wallets/{id}/lock"),
            json!({"reason": "lost phone"}),
        )
        .expect(200)
        .json();
    assert_eq!(locked["state"], "locked");
    assert_eq!(locked["reason"], "lost phone");
    load(&id, 10, "l4").expect_error(409, "wallet_not_active");
    s.req("POST", &format!("/v1/admin/wallets/{id}/lock"))
        .auth(&s.token)
        .header("Content-Type", "application/json")
        .body(b"nope")
        .send()
        .expect_error(400, "invalid_json");
    s.admin_post(&format!("/v1/admin/wallets/{unknown}/lock"), json!({}))
        .expect_error(404, "unknown_wallet");
    let unlocked = s
        .req("POST", &format!("/v1/admin/wallets/{id}/unlock"))
        .auth(&s.token)
        .send()
        .expect(200)
        .json();
    assert_eq!(unlocked["state"], "active");
    assert_eq!(unlocked["unlock_pending"], true);
    s.req("POST", &format!("/v1/admin/wallets/{unknown}/unlock"))
        .auth(&s.token)
        .send()
        .expect_error(404, "unknown_wallet");

    s.admin_post(
        &format!("/v1/admin/wallets/{id}/revoke"),
        json!({"reason": "x", "reason_code": 7}),
    )
    .expect_error(400, "invalid_input");
    s.admin_post(
        &format!("/v1/admin/wallets/{id}/revoke"),
        json!({"reason_code": "one"}),
    )
    .expect_error(400, "invalid_json");
    s.admin_post(
        &format!("/v1/admin/wallets/{unknown}/revoke"),
        json!({"reason": "x"}),
    )
    .expect_error(404, "unknown_wallet");
    let crl_before = Crl::from_der(&s.get("/v1/crl").body).unwrap();
    let revoked = s
        .admin_post(
            &format!("/v1/admin/wallets/{id}/revoke"),
            json!({"reason": "closed", "reason_code": 5}),
        )
        .expect(200)
        .json();
    assert_eq!(revoked["state"], "revoked");
    let crl = Crl::from_der(&s.get("/v1/crl").body).unwrap();
    assert!(crl.number() > crl_before.number());
    let serial: u64 = revoked["cert_serial"].as_str().unwrap().parse().unwrap();
    let entry = crl.is_revoked(serial).expect("listed");
    assert_eq!(
        entry.reason,
        offpay_protocol::pki::RevocationReason::CessationOfOperation
    );
    s.req("POST", &format!("/v1/admin/wallets/{id}/unlock"))
        .auth(&s.token)
        .send()
        .expect_error(409, "wallet_not_active");
    s.admin_post(&format!("/v1/admin/wallets/{id}/lock"), json!({}))
        .expect_error(409, "wallet_not_active");
    load(&id, 10, "l5").expect_error(409, "wallet_not_active");

    // Retire (lost or broken), close the due wallets, the rules: bad input
    // is refused by name and changes nothing.
    let retire =
        |body: serde_json::Value| s.admin_post(&format!("/v1/admin/wallets/{id}/retire"), body);
    retire(json!({"reason": "stolen"})).expect_error(400, "invalid_input");
    retire(json!({"reason": 1})).expect_error(400, "invalid_json");
    retire(json!({})).expect_error(400, "invalid_json");
    retire(json!({"reason": "lost", "note": "x".repeat(201)})).expect_error(400, "invalid_input");
    retire(json!({"reason": "lost", "note": "a\u{7}b"})).expect_error(400, "invalid_input");
    s.admin_post(
        &format!("/v1/admin/wallets/{unknown}/retire"),
        json!({"reason": "lost"}),
    )
    .expect_error(404, "unknown_wallet");
    assert_eq!(s.wallet(&alice)["retired"], serde_json::Value::Null);
    let retired = retire(json!({"reason": "lost", "note": "reported at the branch"}))
        .expect(200)
        .json();
    assert_eq!(retired["state"], "revoked");
    assert_eq!(retired["retired"], "lost");
    assert_eq!(
        retired["closes_at"].as_u64().unwrap(),
        retired["cert_not_after"].as_u64().unwrap() + 7 * 86_400,
        "certificate expiry plus the payees' offline limit"
    );
    let close = |body: serde_json::Value| s.admin_post("/v1/admin/lifecycle/close", body);
    close(json!({"limit": 0})).expect_error(400, "invalid_input");
    close(json!({"limit": 1001})).expect_error(400, "invalid_input");
    close(json!({"limit": "all"})).expect_error(400, "invalid_json");
    let closed = close(json!({})).expect(200).json();
    assert_eq!(
        closed["closed"], 0,
        "not due before its certificate expires"
    );
    assert_eq!(s.wallet(&alice)["state"], "revoked");
    let rules = s.admin_get("/v1/admin/lifecycle/rules").expect(200).json();
    assert_eq!(rules["refund_lost"], true);
    assert_eq!(rules["return_after_seconds"], 86_400);
    // Revoking the other wallet without a code: keyCompromise.
    let r = s
        .admin_post(
            &format!("/v1/admin/wallets/{}/revoke", poor.wallet_id().to_hex()),
            json!({"reason": "stolen"}),
        )
        .expect(200)
        .json();
    let serial: u64 = r["cert_serial"].as_str().unwrap().parse().unwrap();
    let crl = Crl::from_der(&s.get("/v1/crl").body).unwrap();
    assert_eq!(
        crl.is_revoked(serial).unwrap().reason,
        offpay_protocol::pki::RevocationReason::KeyCompromise
    );

    s.admin_get("/v1/admin/double-spends?limit=0")
        .expect_error(400, "invalid_input");
    s.admin_get("/v1/admin/double-spends?payer=zz")
        .expect_error(400, "invalid_input");
    assert_eq!(
        s.admin_get("/v1/admin/double-spends").expect(200).json()["double_spends"],
        json!([])
    );
    s.assert_invariants();
}

#[test]
fn public_endpoints() {
    let s = TestServer::start();
    let crl = s.get("/v1/crl").expect(200);
    assert_eq!(crl.header("content-type"), Some("application/pkix-crl"));
    let parsed = Crl::from_der(&crl.body).unwrap();
    let issuer_pem = s.get("/v1/roots").expect(200).json()["issuer_pem"]
        .as_str()
        .unwrap()
        .to_string();
    let issuer = Certificate::from_pem(&issuer_pem).unwrap();
    parsed.verify_signed_by(&issuer).unwrap();
    let pem = s.get("/v1/crl?format=pem").expect(200).text();
    assert!(pem.starts_with("-----BEGIN X509 CRL-----"), "{pem}");
    assert_eq!(Crl::from_pem(&pem).unwrap().der(), crl.body.as_slice());
    assert_eq!(s.get("/v1/crl?format=der").expect(200).body, crl.body);
    s.get("/v1/crl?format=xml")
        .expect_error(400, "invalid_input");

    let roots = s.get("/v1/roots").expect(200).json();
    let root = Certificate::from_pem(roots["root_pem"].as_str().unwrap()).unwrap();
    issuer.verify_signed_by(&root).unwrap();
    assert_eq!(roots["currency"], "EUR");

    assert_eq!(
        s.get("/healthz").expect(200).json(),
        json!({"status": "ok", "backend": "sqlite"})
    );

    let m = s.get("/metrics").expect(200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let m = m.text();
    for g in [
        "offpay_ledger_general_sum",
        "offpay_ledger_offline_sum",
        "offpay_pool_minor",
        "offpay_wallets_minor",
        "offpay_supply_minor",
        "offpay_guarantee_minor",
        "offpay_invariants_ok",
        "offpay_syncs_total",
        "offpay_entries_recorded_total",
        "offpay_payments_settled_total",
        "offpay_double_spends_detected_total",
        "offpay_http_requests_total",
    ] {
        assert!(m.contains(&format!("# TYPE {g} ")), "{g} missing in\n{m}");
    }
    assert!(m.contains("offpay_invariants_ok 1"));
    assert!(
        m.contains("offpay_http_requests_total{route=\"/healthz\",status=\"2xx\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("offpay_http_requests_total{route=\"/v1/crl\",status=\"4xx\"} 1"),
        "{m}"
    );

    let doc = s.get("/openapi.json").expect(200).json();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    for (method, path) in OPENAPI_ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
    let distinct: std::collections::BTreeSet<&str> =
        OPENAPI_ROUTES.iter().map(|(_, p)| *p).collect();
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        distinct.len(),
        "no undocumented extra paths"
    );
    assert!(doc["components"]["securitySchemes"]["operator_token"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["paths"]["/v1/admin/invariants"]["get"]["security"].is_array());

    s.get("/v1/nothing").expect_error(404, "not_found");
    s.get("/v1/sync").expect_error(405, "method_not_allowed");
    s.req("DELETE", "/v1/admin/invariants")
        .auth(&s.token)
        .send()
        .expect_error(405, "method_not_allowed");
}

/// Bad case openings: each a specific 4xx, no case written.
fn case_open_refusals(server: &TestServer, good: &Value) {
    let open = |body: Value| server.admin_post("/v1/admin/cases", body);
    let with = |key: &str, value: Value| {
        let mut bad = good.clone();
        bad[key] = value;
        bad
    };
    open(with("kind", json!("refund_me"))).expect_error(400, "invalid_input");
    open(with("wallet_id", json!("zz"))).expect_error(400, "invalid_input");
    open(with("wallet_id", json!("00112233445566778899aabbccddeeff")))
        .expect_error(404, "unknown_wallet");
    let seq = good["seq"].as_u64().unwrap();
    open(with("seq", json!(seq + 5))).expect_error(404, "case");
    let mut no_seq = good.clone();
    no_seq.as_object_mut().unwrap().remove("seq");
    open(no_seq).expect_error(422, "case");
    open(with("opened_by", json!(""))).expect_error(422, "case");
    server
        .req("POST", "/v1/admin/cases")
        .auth(&server.token)
        .header("content-type", "application/json")
        .body(b"{not json")
        .send()
        .expect_error(400, "invalid_json");
    assert_eq!(
        server.admin_get("/v1/admin/cases").expect(200).json()["cases"],
        json!([])
    );
}

/// A dispute case through the API: opened on a payment Bob reported, decided
/// (Bob holds it), resolved (rejected, nothing posted), its bundle verifies
/// against the root; every bad request is a specific 4xx and writes nothing.
#[test]
fn cases_through_http() {
    let server = TestServer::start();
    server.create_customer("alice", 50_000);
    server.create_customer("bob", 0);
    let (mut alice, _) = server.enroll_wallet("alice");
    let (mut bob, _) = server.enroll_wallet("bob");
    server.load(&mut alice, 10_000, "load-alice");
    let payment = pay(&mut alice, &mut bob, 2_500, now());
    let seq = Signed::<offpay_protocol::messages::Payment>::decode(&payment)
        .unwrap()
        .body()
        .seq;
    server.sync(&mut bob);
    server.sync(&mut alice);
    let before = (server.customer_balance("alice"), server.assert_invariants());
    let good = json!({"kind": "paid_not_received", "wallet_id": alice.wallet_id().to_hex(), "seq": seq, "opened_by": "ops", "note": "called"});
    case_open_refusals(&server, &good);
    let opened = server
        .admin_post("/v1/admin/cases", good.clone())
        .expect(201)
        .json();
    assert_eq!(opened["state"], "open");
    assert_eq!(opened["amount_minor"], 2_500);
    let id = opened["id"].as_u64().unwrap();
    server
        .admin_post("/v1/admin/cases", good)
        .expect_error(409, "case");
    let path = |tail: &str| format!("/v1/admin/cases/{id}{tail}");
    let act = json!({"actor": "ops", "note": "by the rules"});
    server
        .admin_post(&path("/resolve"), act.clone())
        .expect_error(409, "case");
    server
        .admin_post(&path("/decide"), json!({"actor": ""}))
        .expect_error(422, "case");
    for (bad, status, code) in [
        ("/v1/admin/cases/x", 400, "invalid_input"),
        ("/v1/admin/cases/0", 400, "invalid_input"),
        ("/v1/admin/cases/999", 404, "case"),
        ("/v1/admin/cases?state=closed", 400, "invalid_input"),
        ("/v1/admin/cases?limit=0", 400, "invalid_input"),
    ] {
        server.admin_get(bad).expect_error(status, code);
    }
    let decided = server
        .admin_post(&path("/decide"), act.clone())
        .expect(200)
        .json();
    assert_eq!(decided["state"], "decided");
    assert_eq!(decided["decision"], "payee_holds");
    let resolved = server
        .admin_post(&path("/resolve"), act.clone())
        .expect(200)
        .json();
    assert_eq!(resolved["state"], "rejected");
    assert_eq!(resolved["paid_minor"], 0);
    server
        .admin_post(&path("/resolve"), act)
        .expect_error(409, "case");
    let shown = server.admin_get(&path("")).expect(200).json();
    assert_eq!(shown["events"].as_array().unwrap().len(), 3);
    assert_eq!(shown["payment_id"].as_str().map(str::len), Some(64));
    let listed = server
        .admin_get("/v1/admin/cases?state=rejected")
        .expect(200)
        .json();
    assert_eq!(listed["cases"].as_array().unwrap().len(), 1);
    let open_ones = server
        .admin_get("/v1/admin/cases?state=open")
        .expect(200)
        .json();
    assert_eq!(open_ones["cases"], json!([]));
    let bundle = server.admin_get(&path("/bundle")).expect(200).json();
    let bundle = b64d(bundle["bundle"].as_str().unwrap());
    let root = Certificate::from_der(&server.root_der()).unwrap();
    let verified = offpay_protocol::evidence::verify_bundle(&bundle, &root).unwrap();
    assert_eq!(verified.bundle.case_id, id);
    assert_eq!(verified.bundle.state, "rejected");
    assert!(verified.entry.is_some());
    // Nothing was posted by any of it.
    assert_eq!(
        (server.customer_balance("alice"), server.assert_invariants()),
        before
    );
    let metrics = server.get("/metrics").expect(200).text();
    assert!(
        metrics.contains("offpay_cases{kind=\"paid_not_received\",state=\"rejected\"} 1\n"),
        "{metrics}"
    );
    server.stop();
}

#[test]
fn restart_keeps_the_keys_the_token_and_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let s = TestServer::start_in(&data, None);
    let roots = s.get("/v1/roots").expect(200).json();
    let token = s.token.clone();
    s.create_customer("alice", 1_234);
    s.stop();
    let s = TestServer::start_in(&data, None);
    assert_eq!(s.token, token);
    assert_eq!(s.get("/v1/roots").expect(200).json(), roots);
    assert_eq!(s.customer_balance("alice"), 1_234);
    s.stop();
    // A configured token wins over the file.
    let s = TestServer::start_in(&data, Some("configured-token-0123456789"));
    assert_eq!(s.token, "configured-token-0123456789");
    s.req("GET", "/v1/admin/invariants")
        .auth(&token)
        .send()
        .expect_error(401, "unauthorized");
    s.admin_get("/v1/admin/invariants").expect(200);
}

fn openssl_verify(dir: &std::path::Path) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(["verify", "-CAfile", "root.pem", "-untrusted", "issuer.pem", "-crl_check", "-CRLfile", "crl.pem", "wallet.pem"])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): install it (Debian/Ubuntu: apt-get install -y openssl; or run scripts that install the project's tools)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_verifies_certificates_and_crl_from_the_server() {
    let s = TestServer::start();
    s.create_customer("alice", 0);
    let (alice, enrollment) = s.enroll_wallet("alice");
    let dir = tempfile::tempdir().unwrap();
    let roots = s.get("/v1/roots").expect(200).json();
    std::fs::write(
        dir.path().join("root.pem"),
        roots["root_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("issuer.pem"),
        roots["issuer_pem"].as_str().unwrap(),
    )
    .unwrap();
    let wallet_cert =
        Certificate::from_der(&b64d(enrollment["certificate"].as_str().unwrap())).unwrap();
    std::fs::write(dir.path().join("wallet.pem"), wallet_cert.to_pem()).unwrap();
    std::fs::write(
        dir.path().join("crl.pem"),
        s.get("/v1/crl?format=pem").expect(200).body,
    )
    .unwrap();
    let (ok, text) = openssl_verify(dir.path());
    assert!(
        ok && text.contains("wallet.pem: OK"),
        "openssl verify: {text}"
    );

    s.admin_post(
        &format!("/v1/admin/wallets/{}/revoke", alice.wallet_id().to_hex()),
        json!({"reason": "test"}),
    )
    .expect(200);
    std::fs::write(
        dir.path().join("crl.pem"),
        s.get("/v1/crl?format=pem").expect(200).body,
    )
    .unwrap();
    let (ok, text) = openssl_verify(dir.path());
    assert!(
        !ok && text.contains("certificate revoked"),
        "openssl verify after revocation: {text}"
    );
}

#[test]
fn serve_stops_gracefully_when_its_shutdown_future_resolves() {
    // serve() installs the configured subscriber unless one is set: keep the test output quiet.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = offpay_server::ServerConfig::with_data_dir(dir.path().join("d"));
    config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.operator_token = Some("serve-test-token-0123456789".into());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        runtime().block_on(offpay_server::serve(config, async {
            let _ = rx.await;
        }))
    });
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let client = Client::for_addr(addr);
    loop {
        match client.health() {
            Ok(h) => {
                assert_eq!(h.status, "ok");
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < deadline,
                "server did not come up: {e}"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    client.close();
    assert!(
        !dir.path().join("d/operator-token").exists(),
        "a configured token is not written to disk"
    );
    tx.send(()).unwrap();
    thread.join().unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "no longer listening"
    );
}

/// A payment the payee refused (its request expired) is still settled to the
/// payee's sub-account when the payer syncs: the payee's sync answer and the
/// operator's wallet view both say how much the TA does not hold.
#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: one story with its fixtures (s, d, ...)
fn stranded_money_is_shown_to_the_payee_and_the_operator() {
    let s = TestServer::start();
    s.create_customer("alice", 10_000);
    s.create_customer("bob", 0);
    let (mut alice, _) = s.enroll_wallet("alice");
    let (mut bob, _) = s.enroll_wallet("bob");
    s.load(&mut alice, 5_000, "load-alice");
    let t = now();
    let req = bob.request(eur(350), 1, t).unwrap();
    let p = alice.pay(&req, t).unwrap();
    assert!(bob.receive(&p, t.plus(2)).is_err(), "expired: refused");
    s.sync(&mut alice);
    let report = bob.sync_report(now()).unwrap();
    let r = s.post_cbor("/v1/sync", &report).expect(200);
    assert_eq!(r.header("offpay-stranded-minor"), Some("350"));
    bob.apply_sync_response(&r.body, now()).unwrap();
    let v = s.wallet(&bob);
    assert_eq!(v["offline_balance_minor"], 350);
    assert_eq!(v["stranded_minor"], 350);
    assert_eq!(v["stranded_checkpoint"], 1);
    assert!(v["stranded_at"].as_u64().unwrap() > 0);
    let list = s.admin_get("/v1/admin/wallets").expect(200).json();
    let bobs = list["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["wallet_id"] == bob.wallet_id().to_hex())
        .unwrap();
    assert_eq!(bobs["stranded_minor"], 350);
    assert_eq!(s.wallet(&alice)["stranded_minor"], 0);
    s.assert_invariants();
}

#[test]
fn retention_run_and_wallet_export_through_http() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = offpay_server::config::ServerConfig::with_data_dir(dir.path().join("data"));
    config.privacy.retention_seconds = Some(1);
    config.privacy.retention_interval_seconds = 0;
    let s = TestServer::start_with(config);
    s.create_customer("alice", 10_000);
    s.create_customer("bob", 0);
    let (mut alice, _) = s.enroll_wallet("alice");
    let (mut bob, _) = s.enroll_wallet("bob");
    s.load(&mut alice, 5_000, "load-alice");
    pay(&mut alice, &mut bob, 1_200, now());
    s.sync(&mut alice);
    s.sync(&mut bob);
    let alice_hex = alice.wallet_id().to_hex();
    let bob_hex = bob.wallet_id().to_hex();
    let export = |hex: &str| s.admin_get(&format!("/v1/admin/wallets/{hex}/export"));
    let before = export(&alice_hex).expect(200).json();
    assert_eq!(before["wallet_id"], alice_hex.as_str());
    assert_eq!(before["customer"], "alice");
    assert_eq!(before["vouchers"][0]["amount_minor"], 5_000);
    assert_eq!(before["entries"][0]["payee"], bob_hex.as_str());
    assert_eq!(before["entries"][0]["amount_minor"], 1_200);
    assert_eq!(before["entries"][0]["pruned"], false);
    assert!(before["entries"][0]["entry"].is_string());
    assert_eq!(before["settlements"][0]["delivery"], "delivered");
    assert!(!before["checkpoints"].as_array().unwrap().is_empty());
    assert!(before["customer_postings"].as_array().unwrap().len() >= 2);
    // Refusals change nothing.
    let run = |body: Value| s.admin_post("/v1/admin/retention/run", body);
    run(json!({"limit": 0})).expect_error(400, "invalid_input");
    run(json!({"limit": 1001})).expect_error(400, "invalid_input");
    run(json!({"limit": "all"})).expect_error(400, "invalid_json");
    export("zz").expect_error(400, "invalid_input");
    export("00112233445566778899aabbccddeeff").expect_error(404, "unknown_wallet");
    assert_eq!(export(&alice_hex).expect(200).json(), before);
    // After the one-second window: the pairing goes, the totals stay.
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let r = run(json!({})).expect(200).json();
    assert_eq!(r["enabled"], true);
    assert_eq!(r["retention_seconds"], 1);
    assert_eq!(r["pruned"], 1);
    assert_eq!(r["more"], false);
    assert_eq!(run(json!({"limit": 10})).expect(200).json()["pruned"], 0);
    let after = export(&alice_hex).expect(200).json();
    let e = &after["entries"][0];
    assert_eq!(e["pruned"], true);
    assert_eq!(e["payee"], Value::Null);
    assert_eq!(e["amount_minor"], 0);
    assert_eq!(e["entry"], Value::Null);
    assert_eq!(e["hash"], before["entries"][0]["hash"]);
    assert_eq!(after["settlements"][0]["pruned"], true);
    assert_eq!(after["settlements"][0]["payee"], Value::Null);
    let text = serde_json::to_string(&after).unwrap();
    assert!(
        !text.contains(&bob_hex),
        "the export of Alice no longer names Bob"
    );
    let bob_text = serde_json::to_string(&export(&bob_hex).expect(200).json()).unwrap();
    assert!(
        !bob_text.contains(&alice_hex),
        "the export of Bob no longer names Alice"
    );
    assert_eq!(s.wallet(&alice)["offline_balance_minor"], 3_800);
    assert_eq!(s.wallet(&bob)["offline_balance_minor"], 1_200);
    s.assert_invariants();
}
