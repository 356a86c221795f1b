//! A server that accepts connections and never answers: the command says
//! what it is waiting for, ends with `timeout` within `--timeout` /
//! `OFFPAY_TIMEOUT`, and leaves the wallet as it was.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

/// A loopback listener that accepts every connection and never answers (the
/// connections stay open until the test process ends); its URL.
fn silent_server() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    url
}

/// A wallet enrolled with a real server and loaded with 10.00.
fn wallet(s: &Server, dir: &std::path::Path) {
    s.customer("alice", "50.00");
    let id = s.wallet("alice", dir);
    s.load(&id, dir, "10.00");
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: one story with its fixtures (s, d, ...)
fn a_sync_against_a_silent_server_says_what_it_waits_for_and_times_out() {
    let s = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    wallet(&s, &dir);
    let before = state(&dir);
    let silent = silent_server();

    let sync = |first: &[&str]| {
        let mut a = first.to_vec();
        a.extend_from_slice(&["wallet", "--dir", dir.to_str().unwrap(), "sync", "--server"]);
        a.push(&silent);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };

    // Text mode: a line on stderr while waiting, then the refusal.
    let t = Instant::now();
    let args = sync(&["--timeout", "3"]);
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let took = t.elapsed();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "offpay: waiting for the server at {silent} to answer the sync (up to 3 s"
        )),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "offpay: refused: the server at {silent} did not answer the sync in time: gave up waiting for the answer after 3 s"
        )),
        "{r:?}"
    );
    assert!(
        took >= Duration::from_secs(3),
        "it waited the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(30),
        "and not much longer: {took:?}"
    );
    assert_eq!(state(&dir), before, "nothing changed in the wallet");

    // JSON mode, timeout from the environment: the code says what happened, no notice.
    let mut c = offpay();
    c.env("OFFPAY_TIMEOUT", "2");
    let args = sync(&["--json"]);
    let r = run_with(c, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.code, 1, "{r:?}");
    let v = r.json();
    assert_eq!(v["error"]["code"], "timeout", "{v}");
    assert!(!r.stderr.contains("waiting for"), "{r:?}");
    assert_eq!(state(&dir), before, "nothing changed in the wallet");

    // The real server still syncs it.
    w(&dir, &["sync"]);
    assert_eq!(balance(&dir), 1_000);
}

#[test]
fn a_bad_timeout_is_a_usage_error() {
    for t in ["0", "-1", "1.5", "3601", "soon"] {
        let r = run(&["--timeout", t, "wallet", "--dir", "/nonexistent", "balance"]);
        assert_eq!(r.code, 2, "--timeout {t}: {r:?}");
        let mut c = offpay();
        c.env("OFFPAY_TIMEOUT", t);
        let r = run_with(c, &["--json", "wallet", "--dir", "/nonexistent", "balance"]);
        assert_eq!(r.code, 2, "OFFPAY_TIMEOUT={t}: {r:?}");
        let v = r.json();
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("OFFPAY_TIMEOUT")),
            "{v}"
        );
    }
}
