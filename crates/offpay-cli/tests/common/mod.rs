//! Drive the built `offpay` binary: a server on a loopback port (`offpay
//! server --listen 127.0.0.1:0`, whose first stdout line says where), and
//! wallets in temporary directories (OFFPAY_PIN, OFFPAY_KDF=test).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const PIN: &str = "4711";

/// The binary, with a clean, test-friendly environment.
pub fn offpay() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_offpay"));
    for k in [
        "OFFPAY_SERVER",
        "OFFPAY_OPERATOR_TOKEN",
        "OFFPAY_DATA_DIR",
        "OFFPAY_WALLET_DIR",
        "OFFPAY_LISTEN",
        "OFFPAY_DATABASE_URL",
        "OFFPAY_CONFIG",
        "OFFPAY_TIMEOUT",
        "RUST_LOG",
    ] {
        c.env_remove(k);
    }
    c.env("OFFPAY_PIN", PIN)
        .env("OFFPAY_KDF", "test")
        .stdin(Stdio::null());
    c
}

/// What a run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {self:?}"))
    }
}

/// Run `offpay ARGS`.
pub fn run(args: &[&str]) -> Run {
    run_with(offpay(), args)
}

pub fn run_with(mut c: Command, args: &[&str]) -> Run {
    Run::from(c.args(args).output().expect("run offpay"))
}

/// `offpay --json ARGS`, expected to succeed: its JSON.
#[track_caller]
pub fn ok(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(r.code, 0, "offpay {} failed: {r:?}", args.join(" "));
    let v = r.json();
    assert_eq!(v["ok"], true, "{v}");
    v
}

/// `offpay --json ARGS`, expected to be refused (exit 1) with `code`.
#[track_caller]
pub fn refused(args: &[&str], code: &str) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(
        r.code,
        1,
        "offpay {} should be refused: {r:?}",
        args.join(" ")
    );
    let v = r.json();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
        "a refusal says why: {v}"
    );
    v
}

/// `offpay ARGS` in text mode, expected to be refused: its stderr.
#[track_caller]
pub fn refused_text(args: &[&str]) -> String {
    let r = run(args);
    assert_eq!(
        r.code,
        1,
        "offpay {} should be refused: {r:?}",
        args.join(" ")
    );
    assert!(r.stderr.starts_with("offpay: refused: "), "{r:?}");
    r.stderr
}

/// A server process on a loopback port with SQLite in a temp dir.
pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    pub first_line: String,
    child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server::start_in(&dir.path().join("data"), true);
        s._dir = Some(dir);
        s
    }

    /// [`Server::start`] with more server arguments (e.g. `--suite ml-dsa-44`).
    pub fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server::start_in_with(&dir.path().join("data"), true, args);
        s._dir = Some(dir);
        s
    }

    /// `offpay [--json] server --listen 127.0.0.1:0 --data-dir DIR`.
    pub fn start_in(data_dir: &Path, json: bool) -> Server {
        Server::start_in_with(data_dir, json, &[])
    }

    /// [`Server::start_in`] with more server arguments.
    pub fn start_in_with(data_dir: &Path, json: bool, args: &[&str]) -> Server {
        Server::start_in_env(data_dir, json, args, &[])
    }

    /// [`Server::start_in_with`] with environment variables for the server.
    pub fn start_in_env(
        data_dir: &Path,
        json: bool,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Server {
        let mut c = offpay();
        c.envs(envs.iter().copied());
        if json {
            c.arg("--json");
        }
        let mut child = c
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start offpay server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        out.read_line(&mut first_line).unwrap();
        let url = if json {
            let v: Value = serde_json::from_str(&first_line)
                .unwrap_or_else(|e| panic!("first line is not JSON ({e}): {first_line:?}"));
            assert_eq!(v["event"], "listening", "{v}");
            v["url"].as_str().unwrap().to_string()
        } else {
            first_line
                .trim()
                .strip_prefix("offpay server listening on ")
                .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
                .to_string()
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        Server {
            url,
            data_dir: data_dir.to_path_buf(),
            first_line,
            child,
            _dir: None,
        }
    }

    /// `offpay --json admin --server URL --data-dir DATA ARGS`, expected to succeed.
    #[track_caller]
    pub fn admin(&self, args: &[&str]) -> Value {
        let mut a = vec![
            "admin",
            "--server",
            &self.url,
            "--data-dir",
            self.data_dir.to_str().unwrap(),
        ];
        a.extend_from_slice(args);
        ok(&a)
    }

    /// The same, expected to be refused with `code`.
    #[track_caller]
    pub fn admin_refused(&self, args: &[&str], code: &str) -> Value {
        let mut a = vec![
            "admin",
            "--server",
            &self.url,
            "--data-dir",
            self.data_dir.to_str().unwrap(),
        ];
        a.extend_from_slice(args);
        refused(&a, code)
    }

    pub fn customer(&self, id: &str, deposit: &str) {
        self.admin(&["create-account", id, "--name", id]);
        if deposit != "0" {
            self.admin(&["deposit", id, deposit]);
        }
    }

    pub fn online_minor(&self, id: &str) -> i64 {
        self.admin(&["account", id])["balance_minor"]
            .as_i64()
            .unwrap()
    }

    pub fn sub_account_minor(&self, wallet_id: &str) -> i64 {
        self.admin(&["wallet", wallet_id])["offline_balance_minor"]
            .as_i64()
            .unwrap()
    }

    /// Enroll a new wallet for `customer` in `dir`; its id.
    pub fn wallet(&self, customer: &str, dir: &Path) -> String {
        self.wallet_of_suite(customer, dir, "ed25519")
    }

    /// [`Server::wallet`] with a key of `suite`.
    pub fn wallet_of_suite(&self, customer: &str, dir: &Path, suite: &str) -> String {
        let token = self.admin(&["enrollment-token", customer])["token"]
            .as_str()
            .unwrap()
            .to_string();
        let v = ok(&[
            "wallet",
            "--dir",
            dir.to_str().unwrap(),
            "create",
            "--server",
            &self.url,
            "--token",
            &token,
            "--suite",
            suite,
        ]);
        assert_eq!(v["kdf"], "test");
        assert_eq!(v["suite"], suite, "{v}");
        v["wallet_id"].as_str().unwrap().to_string()
    }

    /// Load through the operator and pick the voucher up with a sync.
    pub fn load(&self, wallet_id: &str, dir: &Path, amount: &str) {
        self.admin(&["load", wallet_id, amount]);
        w(dir, &["sync"]);
    }

    pub fn assert_invariants(&self) {
        let v = self.admin(&["invariants"]);
        assert_eq!(v["invariants_ok"], true, "{v}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `offpay --json wallet --dir DIR ARGS`, expected to succeed.
#[track_caller]
pub fn w(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["wallet", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    ok(&a)
}

/// The same, expected to be refused with `code`.
#[track_caller]
pub fn w_refused(dir: &Path, args: &[&str], code: &str) -> Value {
    let mut a = vec!["wallet", "--dir", dir.to_str().unwrap()];
    a.extend_from_slice(args);
    refused(&a, code)
}

pub fn balance(dir: &Path) -> u64 {
    w(dir, &["balance"])["balance_minor"].as_u64().unwrap()
}

/// The parts of `wallet status` that only a state change moves (not the clock).
pub fn state(dir: &Path) -> Value {
    let mut s = w(dir, &["status"]);
    let o = s.as_object_mut().unwrap();
    o.remove("seconds_until_sync_required");
    let mut h = w(dir, &["history"]);
    s["history"] = h["items"].take();
    s
}

pub fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// Wait until `f` returns Some, or panic after `secs`.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(std::time::Instant::now() < end, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `offpay --json wallet --dir DIR receive --listen 127.0.0.1:0 ARGS...` started
/// in the background: the child, the address it listens on (read from the
/// first stderr line, `... --tap ADDR`), and the rest of its stderr.
pub fn tap_receiver(dir: &Path, args: &[&str]) -> (Child, String, BufReader<ChildStderr>) {
    tap_receiver_as("wallet", dir, args)
}

/// [`tap_receiver`] with `offpay --json COMMAND --dir DIR receive ...`
/// (`wallet` or `terminal`).
pub fn tap_receiver_as(
    command: &str,
    dir: &Path,
    args: &[&str],
) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = offpay()
        .args(["--json", command, "--dir", dir.to_str().unwrap()])
        .args(["receive", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("--tap ")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .trim()
        .trim_end_matches('`')
        .to_string();
    (child, addr, err)
}
