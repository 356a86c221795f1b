//! A scheme of many issuers on loopback, as real `offpay` processes: one
//! scheme server and two member issuer servers (`bank-a`, `bank-b`), each
//! with its own database (SQLite files in temporary directories, or fresh
//! PostgreSQL databases), admitted through the scheme's HTTP API. Each
//! process can be killed with SIGKILL and restarted on the same port and
//! database ([`Node::kill9`], [`Node::restart`]); wallets are in-process
//! [`Wallet`]s in memory that talk to their issuer over HTTP (a cloned wallet
//! is `Wallet::open(w.vault().clone())`).
//!
//! The binary is the caller's (`env!("CARGO_BIN_EXE_offpay")` in the CLI's
//! tests): this crate only drives it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use offpay_client::Client;
use offpay_protocol::Suite;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;
use serde_json::{Value, json};

use crate::postgres::Database;
use crate::server::{RespExt, b64d, b64e, now, pem_to_der};

/// Where the three servers keep their data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file per server in its data directory.
    Sqlite,
    /// One fresh PostgreSQL database per server (dropped at the end).
    Postgres,
}

impl Backend {
    /// `"sqlite"` or `"postgres"` (for test names).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The scheme operator's server (`offpay scheme serve`).
    Scheme,
    /// A member issuer (`offpay server`), with its issuer code.
    Issuer(String),
}

/// Generous timeouts: the tests share two cores with everything else.
const TIMEOUTS: offpay_client::Timeouts = offpay_client::Timeouts {
    connect: Duration::from_secs(30),
    request: Duration::from_secs(120),
    notice_after: None,
};

/// How often a member issuer's background link runs a round by itself.
pub const LINK_INTERVAL_QUIET_MS: u64 = 3_600_000;

/// Most link rounds [`Node::link`] runs before it calls the link stuck.
pub const LINK_ROUNDS_MAX: usize = 100;

/// One `offpay` server process and how to start it again.
pub struct Node {
    /// Scheme or issuer.
    pub role: Role,
    /// Where it listens (the same after a restart).
    pub addr: SocketAddr,
    /// `http://addr`.
    pub url: String,
    /// Its data directory (master key, SQLite file).
    pub data_dir: PathBuf,
    /// Its PostgreSQL URL, if any.
    pub database_url: Option<String>,
    /// The operator token.
    pub token: String,
    /// A client with the operator token.
    pub operator: Client,
    /// A client without a token.
    pub client: Client,
    /// For a member issuer: its issuer id (hex) and its bearer token at the scheme.
    pub issuer_id: String,
    /// The bearer token the scheme gave this issuer at admission ("" for the scheme).
    pub scheme_token: String,
    /// The scheme's URL (for an issuer).
    pub scheme_url: String,
    /// The link's interval (for an issuer), milliseconds.
    pub interval_ms: u64,
    bin: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

/// A fresh random token of 32 hex digits.
fn fresh_token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The binary with a clean environment (nothing of the caller's leaks in).
fn offpay(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("OFFPAY_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("OFFPAY_KDF", "test").stdin(Stdio::null());
    c
}

/// Run `offpay --json ARGS` to completion; its JSON, which must say `ok`.
fn run_ok(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut c = offpay(bin);
    c.arg("--json").args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "offpay {} ({e}): stdout {stdout:?} stderr {:?}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && v["ok"] == true,
        "offpay {} failed: {v} stderr {:?}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    v
}

impl Node {
    fn new(role: Role, bin: &Path, data_dir: PathBuf, database_url: Option<String>) -> Node {
        let log = data_dir.with_extension("log");
        Node {
            role,
            addr: "127.0.0.1:0".parse().unwrap(),
            url: String::new(),
            data_dir,
            database_url,
            token: fresh_token(),
            operator: Client::for_addr("127.0.0.1:1".parse().unwrap()),
            client: Client::for_addr("127.0.0.1:1".parse().unwrap()),
            issuer_id: String::new(),
            scheme_token: String::new(),
            scheme_url: String::new(),
            interval_ms: LINK_INTERVAL_QUIET_MS,
            bin: bin.to_path_buf(),
            child: None,
            log,
        }
    }

    /// `--data-dir D [--database-url U]`.
    fn store_args(&self) -> Vec<String> {
        let mut a = vec![
            "--data-dir".to_string(),
            self.data_dir.display().to_string(),
        ];
        if let Some(u) = &self.database_url {
            a.push("--database-url".into());
            a.push(u.clone());
        }
        a
    }

    /// Start the process (on `self.addr`; port 0 the first time) and wait
    /// until it says where it listens.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut c = offpay(&self.bin);
        c.arg("--json");
        match &self.role {
            Role::Scheme => {
                c.args(["scheme", "serve"]);
            }
            Role::Issuer(_) => {
                c.arg("server");
                c.env("OFFPAY_SCHEME_URL", &self.scheme_url)
                    .env("OFFPAY_SCHEME_TOKEN", &self.scheme_token)
                    .env("OFFPAY_SCHEME_INTERVAL_MS", self.interval_ms.to_string());
            }
        }
        c.arg("--listen")
            .arg(self.addr.to_string())
            .args(self.store_args())
            .args(["--operator-token", &self.token]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start offpay");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let v: Value = serde_json::from_str(&first).unwrap_or_else(|e| {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{:?}: first line is not JSON ({e}): {first:?}; log: {}",
                self.role,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        assert_eq!(v["event"], "listening", "{v}");
        let listen: SocketAddr = v["listen"]
            .as_str()
            .unwrap_or_else(|| panic!("no listen address in {v}"))
            .parse()
            .unwrap();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        self.addr = listen;
        self.url = format!("http://{listen}");
        self.client = Client::for_addr(listen).with_timeouts(TIMEOUTS);
        self.operator = self.client.clone().with_token(&self.token);
        self.child = Some(child);
    }

    /// SIGKILL (no shutdown of any kind) and wait for the process to be gone.
    pub fn kill9(&mut self) {
        self.client.close();
        self.operator.close();
        if let Some(mut c) = self.child.take() {
            // Child::kill is SIGKILL on Unix.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again, on the same port, data directory and database.
    pub fn restart(&mut self) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            // The port is free once the killed process is gone; retry a
            // little in case the kernel has not let go of it yet.
            if std::net::TcpListener::bind(self.addr).is_ok() || Instant::now() > end {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }

    /// Whether its process is running.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// What it wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    // ---- HTTP -------------------------------------------------------------------------------

    /// `method path` with the operator token and an optional JSON body; the answer.
    pub fn op(&self, method: &str, path: &str, body: Option<&Value>) -> offpay_client::Response {
        let b = body.map(|v| v.to_string()).unwrap_or_default();
        let ct: &[(&str, &str)] = if body.is_some() {
            &[("Content-Type", "application/json")]
        } else {
            &[]
        };
        let what = format!("{method} {path}");
        self.operator
            .request_with(&what, method, path, ct, b.as_bytes())
            .unwrap_or_else(|e| panic!("{:?} {what}: {e}", self.role))
    }

    /// `GET path` as the operator, expected 200: its JSON.
    #[track_caller]
    pub fn get_json(&self, path: &str) -> Value {
        self.op("GET", path, None).expect(200).json()
    }

    /// `POST path` as the operator with `body`, expected 200: its JSON.
    #[track_caller]
    pub fn post_json(&self, path: &str, body: Value) -> Value {
        self.op("POST", path, Some(&body)).expect(200).json()
    }

    // ---- an issuer --------------------------------------------------------------------------

    /// The issuer code (`bank-a`), or "scheme".
    pub fn code(&self) -> &str {
        match &self.role {
            Role::Scheme => "scheme",
            Role::Issuer(c) => c,
        }
    }

    /// A customer `id` with `deposit` minor units online.
    pub fn customer(&self, id: &str, deposit: u64) {
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

    /// The root its wallets trust (the scheme root, for a member), DER.
    pub fn root_der(&self) -> Vec<u8> {
        pem_to_der(&self.client.roots().unwrap().root_pem)
    }

    /// A new wallet of `customer`, enrolled over HTTP.
    pub fn wallet(&self, customer: &str) -> Wallet<MemoryVault> {
        let t = now();
        let token = self.operator.enrollment_token(customer).unwrap().token;
        let mut w =
            Wallet::create(MemoryVault::new(), Suite::Ed25519, &self.root_der(), t).unwrap();
        let csr = w.csr().unwrap();
        let e = self
            .client
            .request(
                "enroll",
                "POST",
                "/v1/enroll",
                Some("application/json"),
                json!({"token": token, "csr": b64e(&csr)})
                    .to_string()
                    .as_bytes(),
            )
            .unwrap()
            .expect(200)
            .json();
        w.enroll(
            &b64d(e["issuer_certificate"].as_str().unwrap()),
            &b64d(e["certificate"].as_str().unwrap()),
            &b64d(e["policy"].as_str().unwrap()),
            Some(&b64d(e["crl"].as_str().unwrap())),
            now(),
        )
        .unwrap();
        w
    }

    /// A customer `id` with `online` minor units and a wallet loaded with
    /// `offline`, synced once (so it holds the directory).
    pub fn customer_with_wallet(&self, id: &str, online: u64, offline: u64) -> Wallet<MemoryVault> {
        self.customer(id, online + offline);
        let mut w = self.wallet(id);
        if offline > 0 {
            self.load(&mut w, offline, &format!("load-{id}"));
        }
        // The first sync brings the directory (the other issuers' CAs).
        self.sync(&mut w);
        w
    }

    /// Load `minor` onto a wallet and apply the voucher.
    pub fn load(&self, w: &mut Wallet<MemoryVault>, minor: u64, key: &str) {
        let r = self.post_json(
            &format!("/v1/admin/wallets/{}/load", w.wallet_id().to_hex()),
            json!({"amount_minor": minor, "currency": "EUR", "idempotency_key": key}),
        );
        w.apply_voucher(&b64d(r["voucher"].as_str().unwrap()), now())
            .unwrap();
    }

    /// Sync a wallet and apply the answer.
    pub fn sync(&self, w: &mut Wallet<MemoryVault>) {
        let report = w.sync_report(now()).unwrap();
        let body = self
            .client
            .sync(&report)
            .unwrap_or_else(|e| panic!("{} sync: {e}", self.code()));
        w.apply_sync_response(&body, now()).unwrap();
    }

    /// The issuer's view of a wallet.
    pub fn wallet_view(&self, w: &Wallet<MemoryVault>) -> Value {
        self.get_json(&format!("/v1/admin/wallets/{}", w.wallet_id().to_hex()))
    }

    /// A wallet's offline sub-account at its issuer, minor units.
    pub fn sub_account(&self, w: &Wallet<MemoryVault>) -> i64 {
        self.wallet_view(w)["offline_balance_minor"]
            .as_i64()
            .unwrap()
    }

    /// The ledger invariants hold (issuer or scheme); their report.
    #[track_caller]
    pub fn assert_invariants(&self) -> Value {
        let path = match self.role {
            Role::Scheme => "/v1/scheme/invariants",
            Role::Issuer(_) => "/v1/admin/invariants",
        };
        let inv = self.get_json(path);
        assert_eq!(inv["ok"], true, "{} invariants: {inv}", self.code());
        inv
    }

    /// Rounds of the issuer's link to the scheme, now, until one says no
    /// work is left (`more: false`); the last round's answer.
    #[track_caller]
    pub fn link(&self) -> Value {
        for _ in 0..LINK_ROUNDS_MAX {
            let r = self.post_json("/v1/admin/scheme/sync", json!({}));
            if r["more"] != true {
                return r;
            }
        }
        panic!(
            "{}: the link still has work after {LINK_ROUNDS_MAX} rounds",
            self.code()
        );
    }

    /// The issuer's scheme status (positions, open claims, directory version).
    pub fn scheme_status(&self) -> Value {
        self.get_json("/v1/admin/scheme")
    }

    /// The issuer's net position towards `peer` (hex id) as its ledger holds
    /// it: the `issuer:<peer>` account (positive: we owe it).
    pub fn peer_account(&self, peer: &str) -> i64 {
        let s = self.scheme_status();
        s["positions"]
            .as_array()
            .unwrap_or_else(|| panic!("no positions in {s}"))
            .iter()
            .find(|p| p["peer"] == peer)
            .map_or(0, |p| p["account_minor"].as_i64().unwrap())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The scheme and its two member issuers.
pub struct Cluster {
    /// The scheme operator's server.
    pub scheme: Node,
    /// Issuer `bank-a`.
    pub a: Node,
    /// Issuer `bank-b`.
    pub b: Node,
    /// Which backend.
    pub backend: Backend,
    /// The scheme root (DER).
    pub root: Vec<u8>,
    _dbs: Vec<Database>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Start the scheme, admit `bank-a` and `bank-b`, start them as members.
    /// `None` (printed why) when `backend` is PostgreSQL and none answers.
    pub fn start(bin: &Path, backend: Backend, test: &str) -> Option<Cluster> {
        Cluster::start_with(bin, backend, test, LINK_INTERVAL_QUIET_MS)
    }

    /// The same with the issuers' link running every `interval_ms` by itself.
    pub fn start_with(
        bin: &Path,
        backend: Backend,
        test: &str,
        interval_ms: u64,
    ) -> Option<Cluster> {
        let dir = tempfile::tempdir().unwrap();
        let mut dbs = Vec::new();
        let mut db_url = |who: &str| -> Option<Option<String>> {
            match backend {
                Backend::Sqlite => Some(None),
                Backend::Postgres => {
                    let d = Database::fresh(&format!("{test}_{who}"))?;
                    let u = d.url.clone();
                    dbs.push(d);
                    Some(Some(u))
                }
            }
        };
        let scheme_db = db_url("scheme")?;
        let a_db = db_url("a")?;
        let b_db = db_url("b")?;

        let mut scheme = Node::new(Role::Scheme, bin, dir.path().join("scheme"), scheme_db);
        let mut init = vec!["scheme".to_string(), "init".to_string()];
        init.extend(scheme.store_args());
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        run_ok(bin, &init, &[]);
        scheme.spawn();

        let mut root = Vec::new();
        let mut issuers = Vec::new();
        for (code, db) in [("bank-a", a_db), ("bank-b", b_db)] {
            let mut n = Node::new(
                Role::Issuer(code.to_string()),
                bin,
                dir.path().join(code),
                db,
            );
            n.scheme_url = scheme.url.clone();
            n.interval_ms = interval_ms;
            let csr_file = dir.path().join(format!("{code}.csr"));
            let mut a = vec!["admin".to_string(), "scheme".into(), "csr".into()];
            a.extend(n.store_args());
            a.extend(["--code".into(), code.into(), "--out".into()]);
            a.push(csr_file.display().to_string());
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run_ok(bin, &a, &[]);
            let csr = std::fs::read(&csr_file).unwrap();
            let adm = scheme
                .op(
                    "POST",
                    "/v1/scheme/issuers",
                    Some(&json!({"code": code, "csr": b64e(&csr)})),
                )
                .expect(201)
                .json();
            root = b64d(adm["root_cert"].as_str().unwrap());
            let adm_file = dir.path().join(format!("{code}.admission.json"));
            std::fs::write(&adm_file, adm.to_string()).unwrap();
            let mut j = vec!["admin".to_string(), "scheme".into(), "join".into()];
            j.extend(n.store_args());
            j.extend(["--admission".into(), adm_file.display().to_string()]);
            let j: Vec<&str> = j.iter().map(String::as_str).collect();
            run_ok(bin, &j, &[]);
            n.issuer_id = adm["issuer"].as_str().unwrap().to_string();
            n.scheme_token = adm["token"].as_str().unwrap().to_string();
            n.spawn();
            issuers.push(n);
        }
        let b = issuers.pop().unwrap();
        let a = issuers.pop().unwrap();
        let c = Cluster {
            scheme,
            a,
            b,
            backend,
            root,
            _dbs: dbs,
            _dir: dir,
        };
        // Both issuers learn the directory (each other's CA) before any wallet.
        c.link_all();
        Some(c)
    }

    /// One link round of each issuer, then again (so what one sent the other
    /// picks up): claims submitted, inboxes applied and acked.
    pub fn link_all(&self) {
        for _ in 0..2 {
            self.a.link();
            self.b.link();
        }
    }

    /// Close a settlement cycle at the scheme and let both issuers post
    /// their statements; the scheme's answer.
    pub fn close_cycle(&self) -> Value {
        self.link_all();
        let c = self.scheme.post_json("/v1/scheme/cycles", json!({}));
        self.link_all();
        c
    }

    /// Every node by name, for the kill loop.
    pub fn node_mut(&mut self, which: &str) -> &mut Node {
        match which {
            "scheme" => &mut self.scheme,
            "bank-a" => &mut self.a,
            "bank-b" => &mut self.b,
            other => panic!("no node {other}"),
        }
    }

    /// Invariants on all three.
    pub fn assert_invariants(&self) {
        self.scheme.assert_invariants();
        self.a.assert_invariants();
        self.b.assert_invariants();
    }
}
