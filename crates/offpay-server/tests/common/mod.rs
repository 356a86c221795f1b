//! A real server on a loopback port (its own runtime thread, SQLite in a temp
//! dir) and a tiny blocking HTTP/1.1 client over `std::net::TcpStream`.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use offpay_protocol::{Amount, Currency, Suite, UnixSeconds};
use offpay_server::ServerConfig;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;
use serde_json::{Value, json};

pub fn now() -> UnixSeconds {
    offpay_server::api::now()
}

pub fn eur(minor: u64) -> Amount {
    Amount::new(minor, Currency::new("EUR").unwrap())
}

pub fn b64d(s: &str) -> Vec<u8> {
    STANDARD.decode(s).unwrap()
}

pub fn b64e(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// A server running on its own runtime in a background thread.
pub struct TestServer {
    pub addr: SocketAddr,
    pub token: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut s = TestServer::start_in(&data_dir, None);
        s._dir = Some(dir);
        s
    }

    pub fn start_in(data_dir: &Path, token: Option<&str>) -> TestServer {
        let mut config = ServerConfig::with_data_dir(data_dir);
        config.operator_token = token.map(str::to_string);
        TestServer::start_with(config)
    }

    /// A server on a fresh PostgreSQL database (`OFFPAY_TEST_POSTGRES_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`), dropped with the guard. `None`
    /// (with a printed reason) when no server answers, unless `OFFPAY_REQUIRE_POSTGRES=1`.
    pub fn start_postgres(name: &str) -> Option<(TestServer, PgDatabase)> {
        let url = std::env::var("OFFPAY_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let required = std::env::var("OFFPAY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        let mut admin = match postgres::Client::connect(&url, postgres::NoTls) {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    !required,
                    "[{name}] PostgreSQL required (OFFPAY_REQUIRE_POSTGRES=1) but {url} does not answer: {e}"
                );
                eprintln!("[{name}] SKIPPED on PostgreSQL: {url} does not answer ({e})");
                return None;
            }
        };
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).unwrap();
        let hex: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
        let db = format!("offpay_srv_{name}_{hex}");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
        let guard = PgDatabase {
            admin_url: url.clone(),
            name: db.clone(),
        };
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url.as_str(), String::new()),
        };
        let server = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::with_data_dir(dir.path().join("data"));
        config.database_url = Some(format!("{server}/{db}{query}"));
        let mut s = TestServer::start_with(config);
        s._dir = Some(dir);
        Some((s, guard))
    }

    pub fn start_with(mut config: ServerConfig) -> TestServer {
        config.listen = "127.0.0.1:0".parse().unwrap();
        let data_dir = config.data_dir.clone();
        let (tx, rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
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
        TestServer {
            addr,
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
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            server: self,
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path).send()
    }

    pub fn admin_get(&self, path: &str) -> Resp {
        self.req("GET", path).auth(&self.token).send()
    }

    pub fn admin_post(&self, path: &str, body: Value) -> Resp {
        self.req("POST", path).auth(&self.token).json(&body).send()
    }

    pub fn post_cbor(&self, path: &str, body: &[u8]) -> Resp {
        self.req("POST", path)
            .header("Content-Type", "application/cbor")
            .body(body)
            .send()
    }

    // ---- the story helpers -----------------------------------------------------------------

    pub fn create_customer(&self, id: &str, deposit: u64) {
        let r = self.admin_post(
            "/v1/admin/customers",
            json!({"id": id, "name": format!("Customer {id}")}),
        );
        r.expect(201);
        if deposit > 0 {
            let r = self.admin_post(
                &format!("/v1/admin/customers/{id}/deposit"),
                json!({"amount_minor": deposit, "currency": "EUR", "idempotency_key": format!("dep-{id}")}),
            );
            r.expect(200);
        }
    }

    pub fn root_der(&self) -> Vec<u8> {
        let roots = self.get("/v1/roots").expect(200).json();
        pem_to_der(roots["root_pem"].as_str().unwrap())
    }

    /// A new wallet enrolled through HTTP for `customer`; returns it and the enrollment JSON.
    pub fn enroll_wallet(&self, customer: &str) -> (Wallet<MemoryVault>, Value) {
        let t = now();
        let token = self
            .req(
                "POST",
                &format!("/v1/admin/customers/{customer}/enrollment-tokens"),
            )
            .auth(&self.token)
            .send();
        let token = token.expect(201).json()["token"]
            .as_str()
            .unwrap()
            .to_string();
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

    /// Sync a wallet over /v1/sync and apply the response.
    pub fn sync(&self, w: &mut Wallet<MemoryVault>) -> Vec<u8> {
        let report = w.sync_report(now()).unwrap();
        let r = self.post_cbor("/v1/sync", &report).expect(200);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/cbor")
        );
        w.apply_sync_response(&r.body, now()).unwrap();
        r.body
    }

    pub fn customer_balance(&self, id: &str) -> i64 {
        self.admin_get(&format!("/v1/admin/customers/{id}"))
            .expect(200)
            .json()["balance_minor"]
            .as_i64()
            .unwrap()
    }

    pub fn wallet(&self, w: &Wallet<MemoryVault>) -> Value {
        self.admin_get(&format!("/v1/admin/wallets/{}", w.wallet_id().to_hex()))
            .expect(200)
            .json()
    }

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

/// A PostgreSQL database made for one test; dropped at the end.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// An offline payment: request, pay, receive, confirm.
pub fn pay(
    payer: &mut Wallet<MemoryVault>,
    payee: &mut Wallet<MemoryVault>,
    minor: u64,
) -> Vec<u8> {
    let t = now();
    let req = payee.request(eur(minor), 300, t).unwrap();
    let p = payer.pay(&req, t).unwrap();
    let r = payee.receive(&p, t).unwrap();
    payer.confirm(&r).unwrap();
    p
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    let b: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    b64d(&b)
}

pub struct Req<'a> {
    server: &'a TestServer,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req<'_> {
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn auth(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
    pub fn json(self, v: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(v.to_string().as_bytes())
    }
    pub fn body(mut self, b: &[u8]) -> Self {
        self.body = b.to_vec();
        self
    }

    fn head(&self, content_length: Option<usize>) -> String {
        let mut s = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.method, self.path, self.server.addr
        );
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = content_length {
            s.push_str(&format!("Content-Length: {n}\r\n"));
        }
        s.push_str("\r\n");
        s
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }

    pub fn send(self) -> Resp {
        let mut s = self.connect();
        let mut msg = self.head(Some(self.body.len())).into_bytes();
        msg.extend_from_slice(&self.body);
        s.write_all(&msg).unwrap();
        read_response(s)
    }

    /// Declare `declared` bytes of body but send none: the server must answer at once.
    pub fn send_declaring(self, declared: usize) -> Resp {
        let mut s = self.connect();
        s.write_all(self.head(Some(declared)).as_bytes()).unwrap();
        read_response(s)
    }

    /// Send the body chunked (no Content-Length).
    pub fn send_chunked(self) -> Resp {
        let mut s = self.connect();
        let mut msg = self
            .head(None)
            .replace(
                "Connection: close\r\n",
                "Connection: close\r\nTransfer-Encoding: chunked\r\n",
            )
            .into_bytes();
        msg.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
        msg.extend_from_slice(&self.body);
        msg.extend_from_slice(b"\r\n0\r\n\r\n");
        s.write_all(&msg).unwrap();
        read_response(s)
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
    /// Assert an error answer: status, JSON `{"code", "message"}`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Resp {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error bodies are JSON: {:?}",
            self.headers
        );
        let v = self.json();
        assert_eq!(v["code"], code, "error body: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error body has a message: {v}"
        );
        self
    }
}

fn read_response(mut s: TcpStream) -> Resp {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {raw:?}"));
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..eol])
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}
