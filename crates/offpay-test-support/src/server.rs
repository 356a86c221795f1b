//! A real server on a loopback port (its own runtime thread, SQLite in a
//! temporary directory or a fresh PostgreSQL database), and requests to it
//! through `offpay-client`: the typed story helpers on one keep-alive
//! connection, any request through [`Req`], and deliberately broken ones
//! (a declared body never sent, a chunked body) on a raw socket.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

pub use offpay_client::api::{b64 as b64e, b64_decode};
pub use offpay_client::{Client, Limits, Response as Resp, Timeouts};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_server::ServerConfig;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;
use serde_json::{Value, json};

use crate::postgres::Database;

/// The server's clock (the one its answers are stamped with).
pub fn now() -> UnixSeconds {
    offpay_server::api::now()
}

/// Standard base64, decoded (a test's answer must be base64).
pub fn b64d(s: &str) -> Vec<u8> {
    b64_decode(s).unwrap()
}

/// The DER inside a PEM block.
pub fn pem_to_der(pem: &str) -> Vec<u8> {
    let b: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    b64d(&b)
}

/// Generous timeouts: tests share two cores with everything else.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(30),
    request: Duration::from_secs(120),
    notice_after: None,
};

/// A multi-threaded tokio runtime of two workers, as the tests run servers on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A server running on its own runtime in a background thread.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The operator token.
    pub token: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// A client on one keep-alive connection (no token).
    pub client: Client,
    /// The same with the operator token.
    pub operator: Client,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// SQLite in a temporary directory.
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut s = TestServer::start_in(&data_dir, None);
        s._dir = Some(dir);
        s
    }

    /// SQLite in `data_dir`, with `token` (else the one the server makes).
    pub fn start_in(data_dir: &Path, token: Option<&str>) -> TestServer {
        let mut config = ServerConfig::with_data_dir(data_dir);
        config.operator_token = token.map(str::to_string);
        TestServer::start_with(config)
    }

    /// A server on a fresh PostgreSQL database, dropped with the guard; `None`
    /// (with a printed reason) when no server answers, unless
    /// `OFFPAY_REQUIRE_POSTGRES=1`.
    pub fn start_postgres(name: &str) -> Option<(TestServer, Database)> {
        let db = Database::fresh(name)?;
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
        config.database_url = Some(db.url.clone());
        let mut s = TestServer::start_with(config);
        s._dir = Some(dir);
        Some((s, db))
    }

    /// `config` on a free loopback port.
    pub fn start_with(mut config: ServerConfig) -> TestServer {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let data_dir = config.data_dir.clone();
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let running = match offpay_server::spawn(config).await {
                    Ok(r) => r,
                    Err(e) => {
                        tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                tx.send(Ok((running.addr, running.operator_token.clone())))
                    .unwrap();
                let _ = stop_rx.await;
                running.shutdown().await.unwrap();
            });
        });
        let (addr, token) = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap()
            .expect("server starts");
        let client = Client::for_addr(addr).with_timeouts(TIMEOUTS);
        TestServer {
            addr,
            operator: client.clone().with_token(&token),
            client,
            token,
            data_dir,
            _dir: None,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Stop gracefully and wait for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.client.close();
        self.operator.close();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Any request (built with [`Req`]'s methods, sent with [`Req::send`]).
    pub fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            server: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET path`, no token.
    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path).send()
    }

    /// `GET path` with the operator token.
    pub fn admin_get(&self, path: &str) -> Resp {
        self.req("GET", path).auth(&self.token).send()
    }

    /// `POST path` with the operator token and a JSON body.
    pub fn admin_post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path).auth(&self.token).json(&body).send()
    }

    /// `POST path` with a CBOR body.
    pub fn post_cbor(&self, path: &str, body: &[u8]) -> Resp {
        self.req("POST", path)
            .header("Content-Type", "application/cbor")
            .body(body)
            .send()
    }

    // ---- the story helpers -----------------------------------------------------------------

    /// A customer `id` with `deposit` minor units online.
    pub fn create_customer(&self, id: &str, deposit: u64) {
        self.operator
            .create_customer(&offpay_client::api::CreateCustomerRequest {
                id: id.to_string(),
                name: format!("Customer {id}"),
            })
            .unwrap();
        if deposit > 0 {
            self.operator
                .deposit(
                    id,
                    &offpay_client::api::MoneyRequest {
                        amount_minor: deposit,
                        currency: "EUR".into(),
                        idempotency_key: format!("dep-{id}"),
                    },
                )
                .unwrap();
        }
    }

    /// The scheme root (DER).
    pub fn root_der(&self) -> Vec<u8> {
        pem_to_der(&self.client.roots().unwrap().root_pem)
    }

    /// A new wallet enrolled through HTTP for `customer`; returns it and the enrollment JSON.
    pub fn enroll_wallet(&self, customer: &str) -> (Wallet<MemoryVault>, Value) {
        let t = now();
        let token = self.operator.enrollment_token(customer).unwrap().token;
        let mut w =
            Wallet::create(MemoryVault::new(), Suite::Ed25519, &self.root_der(), t).unwrap();
        let csr = w.csr().unwrap();
        let e = self
            .req("POST", "/v1/enroll")
            .json(&json!({"token": token, "csr": b64e(&csr)}))
            .send()
            .expect(200)
            .json();
        assert_eq!(e["wallet_id"], w.wallet_id().to_hex());
        w.enroll(
            &b64d(e["issuer_certificate"].as_str().unwrap()),
            &b64d(e["certificate"].as_str().unwrap()),
            &b64d(e["policy"].as_str().unwrap()),
            Some(&b64d(e["crl"].as_str().unwrap())),
            // After the answer: the certificate's notBefore is the server's clock then.
            now(),
        )
        .unwrap();
        (w, e)
    }

    /// Load a wallet through the admin endpoint and apply the voucher.
    pub fn load(&self, w: &mut Wallet<MemoryVault>, minor: u64, key: &str) -> Value {
        let r = self
            .admin_post(
                &format!("/v1/admin/wallets/{}/load", w.wallet_id().to_hex()),
                json!({"amount_minor": minor, "currency": "EUR", "idempotency_key": key}),
            )
            .expect(200)
            .json();
        w.apply_voucher(&b64d(r["voucher"].as_str().unwrap()), now())
            .unwrap();
        r
    }

    /// Sync a wallet over /v1/sync and apply the response (checked to be CBOR).
    pub fn sync(&self, w: &mut Wallet<MemoryVault>) -> Vec<u8> {
        let report = w.sync_report(now()).unwrap();
        let body = self.client.sync(&report).unwrap();
        w.apply_sync_response(&body, now()).unwrap();
        body
    }

    /// A customer's online balance, minor units.
    pub fn customer_balance(&self, id: &str) -> i64 {
        self.operator.customer(id).unwrap().balance_minor
    }

    /// The issuer's view of a wallet, as JSON.
    pub fn wallet(&self, w: &Wallet<MemoryVault>) -> Value {
        self.admin_get(&format!("/v1/admin/wallets/{}", w.wallet_id().to_hex()))
            .expect(200)
            .json()
    }

    /// The ledger invariants hold; their report.
    pub fn assert_invariants(&self) -> Value {
        let inv = self.admin_get("/v1/admin/invariants").expect(200).json();
        assert_eq!(inv["ok"], true, "invariants: {inv}");
        inv
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A request being built.
pub struct Req<'a> {
    server: &'a TestServer,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req<'_> {
    /// Add a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    /// `Authorization: Bearer <token>`.
    pub fn auth(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    /// A JSON body.
    pub fn json(self, v: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(v.to_string().as_bytes())
    }
    /// A body.
    pub fn body(mut self, b: &[u8]) -> Self {
        self.body = b.to_vec();
        self
    }

    /// Send it through the server's client; any status comes back.
    pub fn send(self) -> Resp {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let what = format!("{} {}", self.method, self.path);
        self.server
            .client
            .request_with(&what, &self.method, &self.path, &headers, &self.body)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// The head as sent on a raw socket (`Connection: close`).
    fn raw_head(&self, extra: &str) -> String {
        let mut s = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}",
            self.method, self.path, self.server.addr
        );
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s
    }

    fn raw(&self, msg: &[u8]) -> Resp {
        let mut s = TcpStream::connect(self.server.addr).unwrap();
        s.set_read_timeout(Some(TIMEOUTS.request)).unwrap();
        s.write_all(msg).unwrap();
        offpay_client::parse_response(&mut BufReader::new(s), &Limits::default()).unwrap()
    }

    /// Declare `declared` bytes of body but send none: the server must answer at once.
    pub fn send_declaring(self, declared: usize) -> Resp {
        let head = self.raw_head(&format!("Content-Length: {declared}\r\n"));
        self.raw(head.as_bytes())
    }

    /// Send the body chunked (no Content-Length).
    pub fn send_chunked(self) -> Resp {
        let mut msg = self.raw_head("Transfer-Encoding: chunked\r\n").into_bytes();
        msg.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
        msg.extend_from_slice(&self.body);
        msg.extend_from_slice(b"\r\n0\r\n\r\n");
        self.raw(&msg)
    }
}

/// What tests check of an answer.
pub trait RespExt: Sized {
    /// The body as text (lossy).
    fn text(&self) -> String;
    /// The body as JSON (a panic when it is not).
    fn json(&self) -> Value;
    /// The status must be `status`.
    fn expect(self, status: u16) -> Self;
    /// An error answer: `status`, a JSON `{"code", "message"}` with `code`.
    fn expect_error(self, status: u16, code: &str) -> Self;
}

impl RespExt for Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    #[track_caller]
    fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
    #[track_caller]
    fn expect_error(self, status: u16, code: &str) -> Self {
        let s = self.expect(status);
        assert!(
            s.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error bodies are JSON: {:?}",
            s.headers
        );
        let v = s.json();
        assert_eq!(v["code"], code, "error body: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error body has a message: {v}"
        );
        s
    }
}
