//! `offpay scheme ...` and `offpay admin scheme ...` as real processes: a
//! scheme server and a member issuer server on loopback ports (SQLite in
//! temp dirs), an issuer admitted from its CSR, joined, and its link run.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// The binary with no offpay variable of the caller's environment.
fn offpay() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_offpay"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OFFPAY_") || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c.env("OFFPAY_KDF", "test").stdin(Stdio::null());
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let o = offpay().args(args).output().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[track_caller]
fn ok(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(
        r.code,
        0,
        "offpay {}: {}\n{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    v
}

#[track_caller]
fn fails(args: &[&str], exit: i32, code: &str) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let r = run(&a);
    assert_eq!(
        r.code,
        exit,
        "offpay {}: {}\n{}",
        args.join(" "),
        r.stdout,
        r.stderr
    );
    let v: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    v
}

/// A server process; killed with SIGKILL when dropped.
struct Proc {
    child: Child,
    url: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    let mut child = offpay()
        .arg("--json")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(v["event"], "listening", "{v}");
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
    });
    Proc {
        child,
        url: v["url"].as_str().unwrap().to_string(),
    }
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

#[test]
fn an_issuer_joins_a_scheme_and_its_link_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sdir = p(t, "scheme");
    let adir = p(t, "bank-a");
    let init = ok(&[
        "scheme",
        "init",
        "--data-dir",
        &sdir,
        "--root-cn",
        "test scheme root",
    ]);
    assert_eq!(init["initialised"], true);
    assert!(
        init["root_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(
        ok(&["scheme", "init", "--data-dir", &sdir])["initialised"],
        false
    );
    let scheme = spawn(&[
        "scheme",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &sdir,
    ]);
    let remote = ["--server", scheme.url.as_str(), "--data-dir", sdir.as_str()];

    let (id, adm) = admission(t, &remote, &adir);

    // Join, and run the member server with its link.
    let joined = ok(&[
        "admin",
        "--data-dir",
        &adir,
        "scheme",
        "join",
        "--admission",
        &adm,
    ]);
    assert_eq!(joined["issuer"], id.as_str());
    let token: String = serde_json::from_str::<Value>(&std::fs::read_to_string(&adm).unwrap())
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .into();
    let member = spawn(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &adir,
        "--scheme-url",
        &scheme.url,
        "--scheme-token",
        &token,
        "--scheme-interval-ms",
        "100",
    ]);
    let admin = |args: &[&str]| {
        let mut a = vec![
            "admin",
            "--server",
            member.url.as_str(),
            "--data-dir",
            adir.as_str(),
        ];
        a.extend_from_slice(args);
        ok(&a)
    };
    let round = admin(&["scheme", "sync"]);
    assert!(round["directory_version"].as_u64().unwrap() >= 2, "{round}");
    assert_eq!(round["submitted"], 0);
    let status = admin(&["scheme", "status"]);
    assert_eq!(status["member"], true, "{status}");
    assert_eq!(status["issuer"], id.as_str());
    assert_eq!(status["last_error"], Value::Null, "{status}");
    assert_eq!(status["directory_version"], round["directory_version"]);

    let v = operator_actions(
        t,
        &remote,
        &scheme.url,
        &member.url,
        &adir,
        (&id, &token),
        &round,
    );

    restart_after_kill(member, &scheme.url, &adir, &token, v);
}

/// The CSR (the same key gives the same CSR) and the admission; a second
/// admission is refused and writes nothing. Returns (issuer id, admission file).
fn admission(t: &Path, remote: &[&str], adir: &str) -> (String, String) {
    // The issuer's CSR: the same key gives the same CSR.
    let csr = p(t, "a.csr");
    ok(&[
        "admin",
        "--data-dir",
        adir,
        "scheme",
        "csr",
        "--code",
        "bank-a",
        "--out",
        &csr,
    ]);
    let first = std::fs::read(&csr).unwrap();
    ok(&[
        "admin",
        "--data-dir",
        adir,
        "scheme",
        "csr",
        "--code",
        "bank-a",
        "--out",
        &csr,
    ]);
    assert_eq!(std::fs::read(&csr).unwrap(), first);

    // Admission, then the same again is refused and changes nothing.
    let adm = p(t, "a.json");
    let mut a = vec!["scheme", "admit", "bank-a", "--csr", &csr, "--out", &adm];
    a.extend_from_slice(remote);
    let admitted = ok(&a);
    let id = admitted["issuer"].as_str().unwrap().to_string();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&adm).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the admission file holds a token: owner only"
        );
    }
    let adm2 = p(t, "a2.json");
    let mut again = vec!["scheme", "admit", "bank-a", "--csr", &csr, "--out", &adm2];
    again.extend_from_slice(remote);
    fails(&again, 1, "issuer_exists");
    assert!(!Path::new(&adm2).exists());
    let mut bad = vec!["scheme", "admit", "Bank A", "--csr", &csr, "--out", &adm2];
    bad.extend_from_slice(remote);
    fails(&bad, 2, "usage");

    (id, adm)
}

/// The operator's views and actions, and the member's next round; returns
/// the directory version the member then holds.
fn operator_actions(
    t: &Path,
    remote: &[&str],
    scheme_url: &str,
    member_url: &str,
    adir: &str,
    ids: (&str, &str),
    round: &Value,
) -> u64 {
    let (id, token) = ids;
    let admin = |args: &[&str]| {
        let mut a = vec!["admin", "--server", member_url, "--data-dir", adir];
        a.extend_from_slice(args);
        ok(&a)
    };
    // The operator's views and actions.
    let mut d = vec!["scheme", "directory", "--out"];
    let dfile = p(t, "directory.cbor");
    d.push(&dfile);
    d.extend_from_slice(remote);
    let dir = ok(&d);
    assert_eq!(dir["issuers"][0]["code"], "bank-a");
    assert_eq!(dir["issuers"][0]["status"], "active");
    assert!(!std::fs::read(&dfile).unwrap().is_empty());
    for (verb, status) in [("suspend", "suspended"), ("reinstate", "active")] {
        let mut a = vec!["scheme", verb, "bank-a"];
        a.extend_from_slice(remote);
        assert!(ok(&a)["directory_version"].as_u64().unwrap() > 2);
        let mut d = vec!["scheme", "directory"];
        d.extend_from_slice(remote);
        assert_eq!(ok(&d)["issuers"][0]["status"], status);
    }
    // The member installs the newer directory at its next round.
    let v = admin(&["scheme", "sync"])["directory_version"]
        .as_u64()
        .unwrap();
    assert!(v > round["directory_version"].as_u64().unwrap());
    let mut c = vec!["scheme", "cycle", "close"];
    c.extend_from_slice(remote);
    assert_eq!(ok(&c)["claims"], 0);
    let mut cl = vec!["scheme", "claims", "--issuer", id];
    cl.extend_from_slice(remote);
    assert_eq!(ok(&cl)["claims"], serde_json::json!([]));
    let st = ok(&[
        "scheme",
        "statements",
        "--server",
        scheme_url,
        "--issuer-token",
        token,
    ]);
    assert_eq!(st["statements"], serde_json::json!([]));
    fails(
        &["scheme", "statements", "--server", scheme_url],
        2,
        "usage",
    );
    // Wrong tokens are refused with their code.
    fails(
        &[
            "scheme", "cycle", "close", "--server", scheme_url, "--token", token,
        ],
        1,
        "unauthorized",
    );
    fails(
        &[
            "scheme",
            "statements",
            "--server",
            scheme_url,
            "--issuer-token",
            "wrong-token-0123456789",
        ],
        1,
        "unauthorized",
    );
    let mut bad = vec!["scheme", "claims", "--issuer", "xyz"];
    bad.extend_from_slice(remote);
    fails(&bad, 2, "usage");

    v
}

#[test]
fn a_standalone_issuer_has_no_link() {
    let tmp = tempfile::tempdir().unwrap();
    let adir = p(tmp.path(), "solo");
    let s = spawn(&["server", "--listen", "127.0.0.1:0", "--data-dir", &adir]);
    fails(
        &[
            "admin",
            "--server",
            &s.url,
            "--data-dir",
            &adir,
            "scheme",
            "sync",
        ],
        1,
        "not_member",
    );
    let st = ok(&[
        "admin",
        "--server",
        &s.url,
        "--data-dir",
        &adir,
        "scheme",
        "status",
    ]);
    assert_eq!(st["member"], false);
    // A scheme URL without its token is a usage error.
    let r = run(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &adir,
        "--scheme-url",
        "http://127.0.0.1:1",
    ]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
}

#[test]
fn help_documents_the_process_flags() {
    let h = run(&["scheme", "serve", "--help"]).stdout;
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--master-key-file",
        "--operator-token",
        "OFFPAY_SCHEME_DATABASE_URL",
    ] {
        assert!(h.contains(flag), "scheme serve --help lacks {flag}:\n{h}");
    }
    let h = run(&["server", "--help"]).stdout;
    for flag in [
        "--scheme-url",
        "--scheme-token",
        "--scheme-interval-ms",
        "--master-key-file",
        "OFFPAY_SCHEME_URL",
    ] {
        assert!(h.contains(flag), "server --help lacks {flag}:\n{h}");
    }
}

/// kill -9 the member server mid-life: a restart runs the link again and
/// holds the same directory.
fn restart_after_kill(member: Proc, scheme_url: &str, adir: &str, token: &str, v: u64) {
    // kill -9 the member server mid-life: a restart runs the link again.
    drop(member);
    let member = spawn(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        adir,
        "--scheme-url",
        scheme_url,
        "--scheme-token",
        token,
    ]);
    let r = ok(&[
        "admin",
        "--server",
        &member.url,
        "--data-dir",
        adir,
        "scheme",
        "sync",
    ]);
    assert_eq!(r["directory_version"].as_u64().unwrap(), v);
}

/// A payment of `minor` EUR to wallet `payee` at issuer `payee_issuer`, from a
/// wallet of an issuer whose CA key the test holds (seed 9, admitted as `ca_der`).
fn foreign_payment(ca_der: &[u8], payee: &str, payee_issuer: &str, minor: u64) -> Vec<u8> {
    use offpay_protocol::messages::{CertField, Payment};
    use offpay_protocol::{Amount, Currency, Hash32, IssuerId, Nonce, SigningKey, Suite, WalletId};
    let ca_key = SigningKey::from_seed(Suite::Ed25519, &[9; 32]).unwrap();
    let ca = offpay_protocol::pki::Certificate::from_der(ca_der).unwrap();
    let key = SigningKey::from_seed(Suite::Ed25519, &[0x41; 32]).unwrap();
    let id = WalletId([0x41; 16]);
    let now = offpay_protocol::UnixSeconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let cert = offpay_protocol::pki::issue_wallet(
        &ca_key,
        &ca,
        &key.public_key(),
        id,
        offpay_protocol::pki::PolicyRef { id: 1, epoch: 1 },
        77,
        offpay_protocol::UnixSeconds(now.0 - 60),
        now.plus(86_400),
    )
    .unwrap();
    let p = Payment {
        payer: id,
        seq: 1,
        prev: Hash32::ZERO,
        payee: WalletId::from_hex(payee).unwrap(),
        amount: Amount::new(minor, Currency::EUR),
        nonce: Nonce([3; 16]),
        time: now,
        payer_cert: CertField::Inline(cert.der().to_vec()),
        payee_issuer: IssuerId::from_hex(payee_issuer).unwrap(),
    };
    offpay_protocol::envelope::Signed::sign(p, &key).into_bytes()
}

#[test]
fn a_claim_settles_into_a_statement_the_member_posts() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let sdir = p(t, "scheme");
    let adir = p(t, "bank-a");
    let scheme = spawn(&[
        "scheme",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &sdir,
    ]);
    let remote = ["--server", scheme.url.as_str(), "--data-dir", sdir.as_str()];
    let (id_a, adm_a) = admission(t, &remote, &adir);
    ok(&[
        "admin",
        "--data-dir",
        &adir,
        "scheme",
        "join",
        "--admission",
        &adm_a,
    ]);
    let token_a: String = serde_json::from_str::<Value>(&std::fs::read_to_string(&adm_a).unwrap())
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .into();
    let adm_x = admit_held_key(t, &remote);
    // bank-a serves, with a customer and an enrolled wallet.
    let member = spawn(&[
        "server",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &adir,
        "--scheme-url",
        &scheme.url,
        "--scheme-token",
        &token_a,
        "--scheme-interval-ms",
        "60000",
    ]);
    let admin = |args: &[&str]| {
        let mut a = vec![
            "admin",
            "--server",
            member.url.as_str(),
            "--data-dir",
            adir.as_str(),
        ];
        a.extend_from_slice(args);
        ok(&a)
    };
    let carol = enroll(&member.url, &adir, t);
    admin(&["scheme", "sync"]);

    // bank-x claims a payment of its wallet to Carol's.
    let ca_x = offpay_client::api::b64_decode(adm_x["ca_cert"].as_str().unwrap()).unwrap();
    let entry = foreign_payment(&ca_x, &carol, &id_a, 1_500);
    let cx = offpay_client::Client::new(&scheme.url)
        .unwrap()
        .with_token(adm_x["token"].as_str().unwrap());
    let out = cx.scheme_submit(&[entry]).unwrap();
    assert_eq!(out.results[0].result, "accepted", "{out:?}");
    // bank-a applies it (Carol is credited: finality) and acks.
    let round = admin(&["scheme", "sync"]);
    assert_eq!(round["inbox"], 1, "{round}");
    assert_eq!(admin(&["wallet", &carol])["offline_balance_minor"], 1_500);
    let mut close = vec!["scheme", "cycle", "close"];
    close.extend_from_slice(&remote);
    let cycle = ok(&close);
    assert_eq!(cycle["claims"], 1, "{cycle}");
    // bank-a posts its statement: the scheme pays it 15.00.
    let round = admin(&["scheme", "sync"]);
    assert_eq!(round["statements"], 1, "{round}");
    let st = admin(&["scheme", "status"]);
    assert_eq!(st["last_statement_cycle"], cycle["cycle"], "{st}");
    let stmts = ok(&[
        "scheme",
        "statements",
        "--server",
        &scheme.url,
        "--issuer-token",
        &token_a,
    ]);
    assert_eq!(stmts["statements"][0]["net_minor"], "1500", "{stmts}");
    assert_eq!(
        stmts["statements"][0]["lines"][0]["counterparty"],
        adm_x["issuer"]
    );
    assert_eq!(
        stmts["statements"][0]["lines"][0]["receivable_minor"],
        1_500
    );
    // Exactly once: another round changes nothing; the books balance.
    let again = admin(&["scheme", "sync"]);
    assert_eq!(
        (again["inbox"].as_u64(), again["statements"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
    assert_eq!(admin(&["invariants"])["invariants_ok"], true);
    let mut claims = vec!["scheme", "claims"];
    claims.extend_from_slice(&remote);
    assert_eq!(ok(&claims)["claims"][0]["state"], "netted");
}

/// Admit `bank-x` from a CSR of the test-held CA key (seed 9); its admission.
fn admit_held_key(t: &Path, remote: &[&str]) -> Value {
    // A second issuer whose CA key the test holds: its CSR made here.
    let csr_x = p(t, "x.csr");
    let key_x =
        offpay_protocol::SigningKey::from_seed(offpay_protocol::Suite::Ed25519, &[9; 32]).unwrap();
    std::fs::write(
        &csr_x,
        offpay_protocol::pki::build_ca_csr(&key_x, "bank-x").unwrap(),
    )
    .unwrap();
    let adm_file = p(t, "x.json");
    let mut args = vec![
        "scheme", "admit", "bank-x", "--csr", &csr_x, "--out", &adm_file,
    ];
    args.extend_from_slice(remote);
    ok(&args);
    serde_json::from_str(&std::fs::read_to_string(&adm_file).unwrap()).unwrap()
}

/// A customer `carol` at the member server and her enrolled wallet; its id.
fn enroll(member_url: &str, adir: &str, t: &Path) -> String {
    let admin = |args: &[&str]| {
        let mut a = vec!["admin", "--server", member_url, "--data-dir", adir];
        a.extend_from_slice(args);
        ok(&a)
    };
    admin(&["create-account", "carol", "--name", "Carol"]);
    let et = admin(&["enrollment-token", "carol"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let wdir = p(t, "carol-wallet");
    let mut wc = offpay();
    wc.env("OFFPAY_PIN", "4711");
    let out = wc
        .args([
            "--json", "wallet", "--dir", &wdir, "create", "--server", member_url, "--token", &et,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let wallet: Value = serde_json::from_slice(&out.stdout).unwrap();
    wallet["wallet_id"].as_str().unwrap().to_string()
}
