//! The scheme server over HTTP, in-process on a loopback port (SQLite in a
//! temp dir): authentication of every route kind, bad input on every
//! endpoint (a 4xx with a stable code that posts nothing), the OpenAPI
//! document listing every route, metrics.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_client::{Client, Response};
use offpay_protocol::{SigningKey, Suite, pki};
use offpay_server::scheme::{RunningScheme, SchemeServerConfig};
use serde_json::{Value, json};

const OPERATOR: &str = "scheme-operator-token-0123456789";

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: Option<RunningScheme>,
    _dir: tempfile::TempDir,
    url: String,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::start_on(None)
    }

    /// On SQLite in a temp dir, or on the PostgreSQL database at `url`.
    fn start_on(url: Option<&str>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SchemeServerConfig::with_data_dir(dir.path().join("scheme"));
        config.database_url = url.map(str::to_string);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.operator_token = Some(OPERATOR.into());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = rt.block_on(offpay_server::scheme::spawn(config)).unwrap();
        let url = server.url();
        Fixture {
            rt,
            server: Some(server),
            _dir: dir,
            url,
        }
    }

    fn client(&self, token: Option<&str>) -> Client {
        let c = Client::new(&self.url).unwrap();
        match token {
            Some(t) => c.with_token(t),
            None => c,
        }
    }

    fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> Response {
        let c = self.client(token);
        let (ct, b) = body.map_or((None, &[][..]), |(ct, b)| (Some(ct), b));
        c.request(path, method, path, ct, b).unwrap()
    }

    fn json(&self, token: Option<&str>, method: &str, path: &str, body: &Value) -> Response {
        let b = serde_json::to_vec(body).unwrap();
        self.call(token, method, path, Some(("application/json", &b)))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.shutdown()).unwrap();
        }
    }
}

fn body(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

/// The answer has this status and error code.
#[track_caller]
fn refused(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        body(r)["code"],
        code,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
}

fn csr(code: &str, seed: u8) -> Vec<u8> {
    let key = SigningKey::from_seed(Suite::Ed25519, &[seed; 32]).unwrap();
    pki::build_ca_csr(&key, code).unwrap()
}

fn admit(f: &Fixture, code: &str, seed: u8) -> Value {
    let r = f.json(
        Some(OPERATOR),
        "POST",
        "/v1/scheme/issuers",
        &json!({"code": code, "csr": offpay_api::b64(&csr(code, seed))}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    body(&r)
}

const OPERATOR_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/scheme/issuers"),
    ("GET", "/v1/scheme/issuers"),
    ("POST", "/v1/scheme/issuers/bank-a/suspend"),
    ("POST", "/v1/scheme/issuers/bank-a/reinstate"),
    ("POST", "/v1/scheme/issuers/bank-a/revoke"),
    ("POST", "/v1/scheme/cycles"),
    ("GET", "/v1/scheme/claims"),
    ("GET", "/v1/scheme/invariants"),
];

const ISSUER_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/scheme/claims"),
    ("GET", "/v1/scheme/inbox"),
    ("POST", "/v1/scheme/inbox/ack"),
    ("PUT", "/v1/scheme/crl"),
    ("GET", "/v1/scheme/statements"),
    ("GET", "/v1/scheme/cycles/1/claims"),
];

/// The state an operator sees: what a refused request must leave unchanged.
fn snapshot(f: &Fixture) -> (Value, Value, Vec<u8>) {
    let issuers = body(&f.call(Some(OPERATOR), "GET", "/v1/scheme/issuers", None));
    let claims = body(&f.call(Some(OPERATOR), "GET", "/v1/scheme/claims", None));
    let dir = f.call(None, "GET", "/v1/scheme/directory", None);
    assert_eq!(dir.status, 200);
    assert_eq!(dir.content_type.as_deref(), Some("application/cbor"));
    (issuers, claims, dir.body)
}

#[test]
fn tokens_act_only_where_they_belong() {
    let f = Fixture::start();
    let a = admit(&f, "bank-a", 1);
    let b = admit(&f, "bank-b", 2);
    let ta = a["token"].as_str().unwrap();
    let tb = b["token"].as_str().unwrap();
    assert_ne!(ta, tb);
    assert_eq!(a["issuer"].as_str().unwrap().len(), 32);
    assert!(
        !offpay_api::b64_decode(a["ca_cert"].as_str().unwrap())
            .unwrap()
            .is_empty()
    );
    let before = snapshot(&f);

    // Operator routes refuse issuer tokens, no token and a wrong one.
    for (m, p) in OPERATOR_ROUTES {
        for t in [Some(ta), Some(tb), None, Some("not-a-token-at-all-0123")] {
            refused(&f.call(t, m, p, None), 401, "unauthorized");
        }
    }
    // Issuer routes refuse the operator token, no token and a forged one.
    for (m, p) in ISSUER_ROUTES {
        for t in [Some(OPERATOR), None, Some("forged-issuer-token-0123456789")] {
            refused(&f.call(t, m, p, None), 401, "unauthorized");
        }
    }
    // A token names its issuer: each sees only its own (empty) statements and cycle claims.
    for t in [ta, tb] {
        let r = f.call(Some(t), "GET", "/v1/scheme/statements", None);
        assert_eq!(r.status, 200);
        assert_eq!(body(&r)["statements"], json!([]));
    }
    assert_eq!(snapshot(&f), before, "refused requests changed nothing");
}

#[test]
fn bad_operator_input_is_a_stable_4xx_and_posts_nothing() {
    let f = Fixture::start();
    admit(&f, "bank-a", 1);
    let op = Some(OPERATOR);
    let before = snapshot(&f);

    // Admission.
    let adm = |v: Value| f.json(op, "POST", "/v1/scheme/issuers", &v);
    refused(&adm(json!({"code": "bank-c"})), 400, "invalid_json");
    refused(
        &adm(json!({"code": "bank-c", "csr": "!!not base64"})),
        400,
        "invalid_input",
    );
    refused(
        &adm(json!({"code": "Bank C", "csr": offpay_api::b64(&csr("bank-c", 3))})),
        400,
        "invalid_code",
    );
    refused(
        &adm(json!({"code": "bank-c", "csr": offpay_api::b64(b"garbage")})),
        400,
        "invalid_csr",
    );
    refused(
        &adm(json!({"code": "bank-c", "csr": offpay_api::b64(&csr("bank-d", 3))})),
        400,
        "invalid_csr",
    );
    refused(
        &adm(json!({"code": "bank-a", "csr": offpay_api::b64(&csr("bank-a", 1))})),
        409,
        "issuer_exists",
    );
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers", Some(("text/plain", b"x"))),
        415,
        "unsupported_media_type",
    );
    // Status changes.
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers/NOPE!/suspend", None),
        400,
        "invalid_code",
    );
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers/bank-z/suspend", None),
        404,
        "unknown_issuer",
    );
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers/bank-z/reinstate", None),
        404,
        "unknown_issuer",
    );
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers/bank-z/revoke", None),
        404,
        "unknown_issuer",
    );
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?issuer=xyz", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?limit=0", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?limit=ten", None),
        400,
        "invalid_input",
    );
    assert_eq!(snapshot(&f), before, "nothing was posted");
}

/// Bad input on the inbox, ack, CRL and statement routes (issuer token `t`).
fn bad_inbox_ack_crl_statements(f: &Fixture, t: Option<&str>) {
    // Inbox and acks.
    refused(
        &f.call(t, "GET", "/v1/scheme/inbox?limit=0", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(t, "GET", "/v1/scheme/inbox?limit=-1", None),
        400,
        "invalid_input",
    );
    let ack = |v: Value| f.json(t, "POST", "/v1/scheme/inbox/ack", &v);
    let id = "ab".repeat(32);
    refused(&ack(json!({"acks": []})), 400, "invalid_input");
    refused(
        &ack(json!({"acks": [{"id": "zz", "result": "accepted"}]})),
        400,
        "invalid_input",
    );
    refused(
        &ack(json!({"acks": [{"id": id, "result": "maybe"}]})),
        400,
        "invalid_input",
    );
    refused(
        &ack(json!({"acks": [{"id": id, "result": "refused"}]})),
        400,
        "invalid_input",
    );
    refused(
        &ack(json!({"acks": [{"id": id, "result": "refused", "code": "Not Snake"}]})),
        400,
        "invalid_input",
    );
    refused(
        &ack(json!({"acks": [{"id": id, "result": "accepted"}]})),
        404,
        "unknown_claim",
    );
    // CRL upload.
    refused(
        &f.call(t, "PUT", "/v1/scheme/crl", Some(("application/cbor", b"x"))),
        415,
        "unsupported_media_type",
    );
    refused(
        &f.call(
            t,
            "PUT",
            "/v1/scheme/crl",
            Some(("application/pkix-crl", b"not a crl")),
        ),
        422,
        "invalid_crl",
    );
    let big = vec![0x30; offpay_server::extract::CRL_BODY_BYTES_MAX + 1];
    refused(
        &f.call(
            t,
            "PUT",
            "/v1/scheme/crl",
            Some(("application/pkix-crl", &big)),
        ),
        413,
        "body_too_large",
    );
    // A CRL over the general body limit but within a CRL's is read (and judged).
    let mid = vec![0x30; 100 << 10];
    refused(
        &f.call(
            t,
            "PUT",
            "/v1/scheme/crl",
            Some(("application/pkix-crl", &mid)),
        ),
        422,
        "invalid_crl",
    );
    // Statements and cycle claims.
    refused(
        &f.call(t, "GET", "/v1/scheme/statements?after=soon", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(t, "GET", "/v1/scheme/cycles/zero/claims", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(t, "GET", "/v1/scheme/cycles/0/claims", None),
        400,
        "invalid_input",
    );
}

#[test]
fn bad_issuer_input_is_a_stable_4xx_and_posts_nothing() {
    let f = Fixture::start();
    let adm_a = admit(&f, "bank-a", 1);
    let ta = adm_a["token"].as_str().unwrap().to_string();
    let t = Some(ta.as_str());
    let op = Some(OPERATOR);
    let before = snapshot(&f);
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?issuer=xyz", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?limit=0", None),
        400,
        "invalid_input",
    );
    refused(
        &f.call(op, "GET", "/v1/scheme/claims?limit=ten", None),
        400,
        "invalid_input",
    );
    // Submit.
    let sub = |v: Value| f.json(t, "POST", "/v1/scheme/claims", &v);
    refused(&sub(json!({})), 400, "invalid_json");
    refused(&sub(json!({"entries": []})), 400, "invalid_input");
    refused(&sub(json!({"entries": ["%%%"]})), 400, "invalid_input");
    let many: Vec<String> = (0..257).map(|_| offpay_api::b64(b"x")).collect();
    refused(&sub(json!({"entries": many})), 400, "invalid_input");
    let big = vec![b'A'; offpay_server::scheme::CLAIMS_BODY_BYTES_MAX + 1];
    refused(
        &f.call(
            t,
            "POST",
            "/v1/scheme/claims",
            Some(("application/json", &big)),
        ),
        413,
        "body_too_large",
    );
    // A malformed entry is refused per claim, recorded, and posts nothing.
    let r = sub(json!({"entries": [offpay_api::b64(b"not a payment")]}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let res = &body(&r)["results"];
    assert_eq!(res.as_array().unwrap().len(), 1);
    assert_eq!(res[0]["result"], "refused");
    assert_eq!(res[0]["code"], "malformed_entry");
    bad_inbox_ack_crl_statements(&f, t);
    assert_eq!(snapshot(&f), before, "nothing was posted");
    let inv = body(&f.call(op, "GET", "/v1/scheme/invariants", None));
    assert_eq!(inv["ok"], true, "{inv}");
    // The refusal is counted.
    let m = String::from_utf8(f.call(None, "GET", "/metrics", None).body).unwrap();
    assert!(
        m.contains("offpay_scheme_claims_in_total{result=\"malformed_entry\"} 1"),
        "{m}"
    );
    assert!(m.contains("offpay_scheme_open_claims{age=\"1h\"} 0"), "{m}");
}

#[test]
fn lifecycle_of_an_issuer_and_an_empty_cycle() {
    let f = Fixture::start();
    let adm_a = admit(&f, "bank-a", 1);
    admit(&f, "bank-b", 2);
    let op = Some(OPERATOR);
    let list = body(&f.call(op, "GET", "/v1/scheme/issuers", None));
    let codes: Vec<&str> = list["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.contains(&"bank-a") && codes.contains(&"bank-b"));
    let d0 = f.call(None, "GET", "/v1/scheme/directory", None).body;
    let sus = body(&f.call(op, "POST", "/v1/scheme/issuers/bank-a/suspend", None));
    assert_eq!(sus["issuer"], adm_a["issuer"]);
    let v1 = sus["directory_version"].as_u64().unwrap();
    let r = body(&f.call(op, "POST", "/v1/scheme/issuers/bank-a/reinstate", None));
    assert!(r["directory_version"].as_u64().unwrap() > v1);
    let r = body(&f.call(op, "POST", "/v1/scheme/issuers/bank-a/revoke", None));
    assert!(r["directory_version"].as_u64().unwrap() > v1);
    assert_ne!(
        f.call(None, "GET", "/v1/scheme/directory", None).body,
        d0,
        "the directory changed"
    );
    let st = body(&f.call(op, "GET", "/v1/scheme/issuers", None));
    let a_now = st["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "bank-a")
        .unwrap()
        .clone();
    assert_eq!(a_now["status"], "revoked");
    refused(
        &f.call(op, "POST", "/v1/scheme/issuers/bank-a/reinstate", None),
        409,
        "invalid_transition",
    );
    // A revoked issuer still authenticates (claims on payments made before
    // stay owed: it winds down), and its entries are still checked one by one.
    let ta = adm_a["token"].as_str().unwrap();
    let r = f.json(
        Some(ta),
        "POST",
        "/v1/scheme/claims",
        &json!({"entries": [offpay_api::b64(b"x")]}),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(body(&r)["results"][0]["code"], "malformed_entry");
    // An empty cycle nets nothing.
    let c = body(&f.call(op, "POST", "/v1/scheme/cycles", None));
    assert_eq!(c["claims"], 0, "{c}");
    assert_eq!(c["positions"], json!([]));
    assert_eq!(
        body(&f.call(op, "GET", "/v1/scheme/invariants", None))["ok"],
        true
    );
    // Public routes.
    let roots = body(&f.call(None, "GET", "/v1/roots", None));
    assert!(
        roots["root_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(roots["currency"], "EUR");
    assert_eq!(
        body(&f.call(None, "GET", "/healthz", None))["backend"],
        "sqlite"
    );
}

#[test]
fn the_openapi_documents_list_every_new_route() {
    let f = Fixture::start();
    let doc = body(&f.call(None, "GET", "/openapi.json", None));
    let routes = [
        ("post", "/v1/scheme/issuers"),
        ("get", "/v1/scheme/issuers"),
        ("post", "/v1/scheme/issuers/{code}/suspend"),
        ("post", "/v1/scheme/issuers/{code}/reinstate"),
        ("post", "/v1/scheme/issuers/{code}/revoke"),
        ("post", "/v1/scheme/cycles"),
        ("get", "/v1/scheme/claims"),
        ("get", "/v1/scheme/invariants"),
        ("post", "/v1/scheme/claims"),
        ("get", "/v1/scheme/inbox"),
        ("post", "/v1/scheme/inbox/ack"),
        ("put", "/v1/scheme/crl"),
        ("get", "/v1/scheme/statements"),
        ("get", "/v1/scheme/cycles/{n}/claims"),
        ("get", "/v1/scheme/directory"),
        ("get", "/v1/roots"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    for (m, p) in routes {
        assert!(
            doc["paths"][p][m].is_object(),
            "scheme document lacks {m} {p}"
        );
    }
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        17,
        "no undocumented extras"
    );
    assert!(doc["components"]["securitySchemes"]["issuer_token"].is_object());
    // The issuer's document lists the member link's routes.
    let issuer: Value = serde_json::from_str(&offpay_server::openapi::document_json()).unwrap();
    assert!(issuer["paths"]["/v1/admin/scheme"]["get"].is_object());
    assert!(issuer["paths"]["/v1/admin/scheme/sync"]["post"].is_object());
}

/// A wallet certificate under an admitted issuer's CA key (`ca_seed` is the
/// seed its CSR was made with), and the wallet's key.
fn wallet_under(
    adm: &Value,
    ca_seed: u8,
    wallet_seed: u8,
) -> (SigningKey, offpay_protocol::WalletId, Vec<u8>) {
    let ca_key = SigningKey::from_seed(Suite::Ed25519, &[ca_seed; 32]).unwrap();
    let ca = pki::Certificate::from_der(
        &offpay_api::b64_decode(adm["ca_cert"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let key = SigningKey::from_seed(Suite::Ed25519, &[wallet_seed; 32]).unwrap();
    let id = offpay_protocol::WalletId([wallet_seed; 16]);
    let now = offpay_server::api::now();
    let cert = pki::issue_wallet(
        &ca_key,
        &ca,
        &key.public_key(),
        id,
        pki::PolicyRef { id: 1, epoch: 1 },
        u64::from(wallet_seed) + 100,
        offpay_protocol::UnixSeconds(now.0 - 60),
        now.plus(86_400),
    )
    .unwrap();
    (key, id, cert.der().to_vec())
}

/// A signed payment of `minor` EUR from a wallet of `payer_adm` (admitted
/// with the CSR of seed 1) to a wallet of `payee_adm`.
fn cross_payment(payer_adm: &Value, payee_adm: &Value, minor: u64) -> Vec<u8> {
    use offpay_protocol::messages::{CertField, Payment};
    let (pkey, pid, pcert) = wallet_under(payer_adm, 1, 0x31);
    let payment = Payment {
        payer: pid,
        seq: 1,
        prev: offpay_protocol::Hash32::ZERO,
        payee: offpay_protocol::WalletId([0x32; 16]),
        amount: offpay_protocol::Amount::new(minor, offpay_protocol::Currency::EUR),
        nonce: offpay_protocol::Nonce([7; 16]),
        time: offpay_server::api::now(),
        payer_cert: CertField::Inline(pcert),
        payee_issuer: offpay_protocol::IssuerId::from_hex(payee_adm["issuer"].as_str().unwrap())
            .unwrap(),
    };
    offpay_protocol::envelope::Signed::sign(payment, &pkey).into_bytes()
}

#[test]
fn an_issuer_claims_only_as_itself_and_reads_only_its_own_statements() {
    claims_story(&Fixture::start(), "sqlite");
}

#[test]
fn an_issuer_claims_only_as_itself_on_postgres() {
    if let Some(db) = offpay_test_support::postgres::Database::fresh("scheme_http") {
        let f = Fixture::start_on(Some(&db.url));
        claims_story(&f, "postgres");
        drop(f); // the server and its connections stop before the database is dropped
        drop(db);
    }
}

fn claims_story(f: &Fixture, backend: &str) {
    assert_eq!(
        body(&f.call(None, "GET", "/healthz", None))["backend"],
        backend
    );
    let adm_a = admit(f, "bank-a", 1);
    let adm_b = admit(f, "bank-b", 2);
    let adm_c = admit(f, "bank-c", 3);
    let (ta, tb, tc) = (
        adm_a["token"].as_str().unwrap(),
        adm_b["token"].as_str().unwrap(),
        adm_c["token"].as_str().unwrap(),
    );
    let entry = offpay_api::b64(&cross_payment(&adm_a, &adm_b, 1_234));
    let submit = |tok: &str| {
        let r = f.json(
            Some(tok),
            "POST",
            "/v1/scheme/claims",
            &json!({ "entries": [entry] }),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        body(&r)["results"][0].clone()
    };
    // A third issuer cannot claim on a payment between A and B.
    let by_c = submit(tc);
    assert_eq!(by_c["result"], "refused", "{by_c}");
    assert_eq!(by_c["code"], "not_a_party");
    let none = body(&f.call(Some(OPERATOR), "GET", "/v1/scheme/claims", None));
    assert_eq!(none["claims"], json!([]), "the refusal posted nothing");
    // The payer's issuer claims; again is already known.
    let by_a = submit(ta);
    assert_eq!(by_a["result"], "accepted", "{by_a}");
    assert_eq!(submit(ta)["result"], "already_known");
    let id = by_a["id"].as_str().unwrap().to_string();
    // Only B's inbox holds it.
    let inbox =
        |tok: &str| body(&f.call(Some(tok), "GET", "/v1/scheme/inbox", None))["claims"].clone();
    assert_eq!(inbox(ta), json!([]));
    assert_eq!(inbox(tc), json!([]));
    let ib = inbox(tb);
    assert_eq!(ib[0]["id"], id.as_str());
    assert_eq!(ib[0]["entry"], entry.as_str());
    // C cannot ack it (not its claim); B does.
    let ack = json!({"acks": [{"id": id, "result": "accepted"}]});
    refused(
        &f.json(Some(tc), "POST", "/v1/scheme/inbox/ack", &ack),
        404,
        "unknown_claim",
    );
    let r = f.json(Some(tb), "POST", "/v1/scheme/inbox/ack", &ack);
    assert_eq!(body(&r)["acked"], 1, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(inbox(tb), json!([]));
    // The cycle nets it: A owes B.
    let c = body(&f.call(Some(OPERATOR), "POST", "/v1/scheme/cycles", None));
    assert_eq!(c["claims"], 1, "{c}");
    let net = |adm: &Value| {
        c["positions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["issuer"] == adm["issuer"])
            .map(|p| p["net_minor"].as_str().unwrap().to_string())
    };
    assert_eq!(net(&adm_a).as_deref(), Some("-1234"));
    assert_eq!(net(&adm_b).as_deref(), Some("1234"));
    assert_eq!(net(&adm_c), None);
    let cycle = c["cycle"].as_u64().unwrap();
    // Each reads only its own statements and cycle claims.
    let statements = |tok: &str| {
        body(&f.call(Some(tok), "GET", "/v1/scheme/statements", None))["statements"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((statements(ta), statements(tb), statements(tc)), (1, 1, 0));
    let cc = |tok: &str| {
        body(&f.call(
            Some(tok),
            "GET",
            &format!("/v1/scheme/cycles/{cycle}/claims"),
            None,
        ))["claims"]
            .clone()
    };
    assert_eq!(cc(ta), json!([id]));
    assert_eq!(cc(tb), json!([id]));
    assert_eq!(cc(tc), json!([]));
    assert_eq!(
        body(&f.call(Some(OPERATOR), "GET", "/v1/scheme/invariants", None))["ok"],
        true
    );
    let m = String::from_utf8(f.call(None, "GET", "/metrics", None).body).unwrap();
    assert!(
        m.contains("offpay_scheme_claims_in_total{result=\"accepted\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("offpay_scheme_claims_in_total{result=\"not_a_party\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("offpay_scheme_acks_total{result=\"accepted\"} 1"),
        "{m}"
    );
    assert!(m.contains("offpay_scheme_cycle_net_position_minor{"), "{m}");
}

/// A member issuer server in-process: its CA CSR made in its store,
/// admitted at the scheme, joined, then served (with no background link:
/// the test runs the link's rounds itself). Returns the server, its link
/// and its admission.
fn member(
    f: &Fixture,
    dir: &std::path::Path,
    code: &str,
) -> (
    offpay_server::RunningServer,
    offpay_server::SchemeLink,
    Value,
) {
    let mut config = offpay_server::ServerConfig::with_data_dir(dir.join(code));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.operator_token = Some("member-operator-token-0123456789".into());
    let csr = offpay_server::member_csr(&config, code).unwrap();
    assert_eq!(
        offpay_server::member_csr(&config, code).unwrap(),
        csr,
        "the same key gives the same CSR"
    );
    let r = f.json(
        Some(OPERATOR),
        "POST",
        "/v1/scheme/issuers",
        &json!({"code": code, "csr": offpay_api::b64(&csr)}),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let adm = body(&r);
    let root = offpay_api::b64_decode(adm["root_cert"].as_str().unwrap()).unwrap();
    let ca = offpay_api::b64_decode(adm["ca_cert"].as_str().unwrap()).unwrap();
    let id = offpay_server::join_scheme(&config, &root, &ca).unwrap();
    assert_eq!(id.to_hex(), adm["issuer"].as_str().unwrap());
    let server = f.rt.block_on(offpay_server::spawn(config)).unwrap();
    let link = offpay_server::SchemeLink::new(
        server.state.issuer.clone(),
        &f.url,
        adm["token"].as_str().unwrap(),
    )
    .unwrap();
    (server, link, adm)
}

#[test]
fn the_member_link_applies_and_acks_its_inbox_exactly_once() {
    let f = Fixture::start();
    let tmp = tempfile::tempdir().unwrap();
    let (server_b, link_b, adm_b) = member(&f, tmp.path(), "bank-b");
    // A payer's issuer the test holds the CA key of (seed 1).
    let adm_c = admit(&f, "bank-c", 1);
    let first = link_b.run_once().unwrap();
    assert!(first.crl_pushed, "the first round pushes B's CRL");
    assert_eq!(first.inbox, 0);
    // C claims a payment of one of its wallets to a wallet B never enrolled.
    let entry = cross_payment(&adm_c, &adm_b, 700);
    let r = f.json(
        Some(adm_c["token"].as_str().unwrap()),
        "POST",
        "/v1/scheme/claims",
        &json!({ "entries": [offpay_api::b64(&entry)] }),
    );
    assert_eq!(
        body(&r)["results"][0]["result"],
        "accepted",
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // B's round: the directory with C, the inbox applied and acked: refused, unknown payee.
    let round = link_b.run_once().unwrap();
    assert!(!round.crl_pushed, "an unchanged CRL is not pushed again");
    assert_eq!(
        (round.inbox, round.submitted, round.statements),
        (1, 0, 0),
        "{round:?}"
    );
    let disputed = body(&f.call(
        Some(OPERATOR),
        "GET",
        "/v1/scheme/claims?disputed=true",
        None,
    ));
    assert_eq!(disputed["claims"][0]["state"], "disputed", "{disputed}");
    assert_eq!(
        disputed["claims"][0]["dispute"], "unknown_payee",
        "{disputed}"
    );
    // Exactly once: the next round finds nothing, and B posted nothing.
    let again = link_b.run_once().unwrap();
    assert_eq!((again.inbox, again.submitted), (0, 0), "{again:?}");
    let inv = f.rt.block_on(async {
        let issuer = server_b.state.issuer.clone();
        tokio::task::spawn_blocking(move || issuer.invariants())
            .await
            .unwrap()
    });
    assert!(inv.unwrap().ok);
    let status = link_b.status();
    assert_eq!(status.rounds, 3);
    assert_eq!(status.last_error, None);
    assert_eq!(
        status.claims_in.get("unknown_payee"),
        Some(&1),
        "{status:?}"
    );
    // The member's operator routes: status and a round over HTTP.
    let c = Client::new(&server_b.url())
        .unwrap()
        .with_token("member-operator-token-0123456789");
    let st = c.admin_scheme_status().unwrap();
    assert!(st.member);
    assert_eq!(st.issuer, adm_b["issuer"].as_str().unwrap());
    assert!(st.directory_version >= 3, "{st:?}");
    assert_eq!(st.outbox, 0);
    let e = c.admin_scheme_sync().unwrap_err();
    assert!(
        matches!(&e, offpay_client::Error::Http { status: 409, code, .. } if code == "not_member"),
        "no link configured here: {e:?}"
    );
    f.rt.block_on(server_b.shutdown()).unwrap();
}
