//! The client against local listeners that answer what a test needs: canned
//! responses on one keep-alive connection, silence, refusals, broken bodies.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use offpay_client::{Client, Error, Phase, Timeouts};

/// Read one request (head and Content-Length body) from `r`; false at EOF.
fn read_request(r: &mut BufReader<TcpStream>) -> bool {
    let mut len = 0;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if line.trim_end().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut b = vec![0; len];
    r.read_exact(&mut b).unwrap();
    true
}

/// A server that accepts connections and answers each request with the
/// canned responses in turn; the number of connections it accepted.
fn serve(answers: Vec<&'static str>) -> (SocketAddr, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let conns = Arc::new(Mutex::new(0));
    let c = conns.clone();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for s in l.incoming() {
            *c.lock().unwrap() += 1;
            let mut r = BufReader::new(s.unwrap());
            while read_request(&mut r) {
                match answers.next() {
                    Some(a) => r.get_mut().write_all(a.as_bytes()).unwrap(),
                    None => return,
                }
            }
        }
    });
    (addr, conns)
}

fn json_ok(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn one_connection_carries_many_typed_requests() {
    let roots = r#"{"root_pem":"R","issuer_pem":"I","currency":"EUR"}"#;
    let (addr, conns) = serve(vec![
        leak(json_ok(roots)),
        "HTTP/1.1 200 OK\r\nContent-Type: application/cbor\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        leak(json_ok(r#"{"status":"ok","backend":"sqlite"}"#)),
    ]);
    let c = Client::for_addr(addr);
    let r = c.roots().unwrap();
    assert_eq!((r.currency.as_str(), r.root_pem.as_str()), ("EUR", "R"));
    assert_eq!(c.sync(b"report").unwrap(), b"abcde");
    assert_eq!(c.health().unwrap().backend, "sqlite");
    assert_eq!(*conns.lock().unwrap(), 1, "keep-alive: one connection");
}

#[test]
fn a_connection_closed_while_idle_is_reopened_once() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let body = r#"{"status":"ok","backend":"sqlite"}"#;
    std::thread::spawn(move || {
        // First connection: one answer, then close (idle timeout).
        for _ in 0..2 {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            assert!(read_request(&mut r));
            r.get_mut().write_all(json_ok(body).as_bytes()).unwrap();
        }
    });
    let c = Client::for_addr(addr);
    c.health().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(c.health().unwrap().status, "ok");
}

#[test]
fn a_server_that_accepts_and_never_answers_times_out_waiting_for_the_answer() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let c = Client::for_addr(addr)
        .with_timeouts(Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_millis(600),
            notice_after: Some(Duration::from_millis(150)),
        })
        .on_waiting(move |w| s.lock().unwrap().push((w.what.clone(), w.phase)));
    let e = c.sync(b"report").unwrap_err();
    match &e {
        Error::Timeout {
            phase, after, what, ..
        } => {
            assert_eq!(*phase, Phase::Head);
            assert_eq!(*after, Duration::from_millis(600));
            assert_eq!(what, "the sync");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(e.code(), "timeout");
    assert!(e.to_string().contains("did not answer the sync"), "{e}");
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("the sync".to_string(), Phase::Head)],
        "one notice, while waiting for the answer"
    );
}

#[test]
fn nothing_listening_is_unreachable() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // The listener is dropped: the port refuses.
    let e = Client::for_addr(addr).roots().unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    assert_eq!(e.code(), "network");
    assert!(
        e.to_string()
            .starts_with("cannot reach the server at http://127.0.0.1:"),
        "{e}"
    );
}

#[test]
fn error_bodies_carry_the_servers_code_and_message() {
    let body = r#"{"code":"insufficient_funds","message":"not enough"}"#;
    let (addr, _) = serve(vec![
        leak(format!(
            "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )),
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\noops",
    ]);
    let c = Client::for_addr(addr);
    let e = c.customer("alice").unwrap_err();
    assert_eq!(
        e,
        Error::Http {
            status: 409,
            code: "insufficient_funds".into(),
            message: "not enough".into()
        }
    );
    assert_eq!(e.to_string(), "the server refused (HTTP 409): not enough");
    let e = c.customer("alice").unwrap_err();
    assert_eq!(e.code(), "http_502");
}

#[test]
fn a_missing_or_mistyped_field_is_malformed_not_a_default() {
    let (addr, _) = serve(vec![
        leak(json_ok(r#"{"id":"alice","currency":"EUR"}"#)),
        leak(json_ok(
            r#"{"id":"alice","balance_minor":"12","currency":"EUR"}"#,
        )),
        leak(json_ok(
            r#"{"id":"alice","balance_minor":12,"currency":"EUR"}"#,
        )),
    ]);
    let c = Client::for_addr(addr);
    for _ in 0..2 {
        let e = c.customer("alice").unwrap_err();
        assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
        assert_eq!(e.code(), "bad_response");
    }
    assert_eq!(c.customer("alice").unwrap().balance_minor, 12);
}

#[test]
fn oversized_and_garbage_answers_are_malformed() {
    let (addr, _) = serve(vec!["HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n"]);
    let e = Client::for_addr(addr).crl_der().unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
    let (addr, _) = serve(vec!["SMTP ready\r\n\r\n"]);
    let e = Client::for_addr(addr).crl_der().unwrap_err();
    assert!(matches!(e, Error::Malformed { .. }), "{e:?}");
}

#[test]
fn urls_are_checked() {
    let c = Client::new("http://127.0.0.1:8080").unwrap();
    assert_eq!(c.url(), "http://127.0.0.1:8080");
    let c = Client::new("http://example.invalid/offpay/").unwrap();
    assert_eq!(c.url(), "http://example.invalid:80/offpay");
    let c = Client::new("http://[::1]:9000").unwrap();
    assert_eq!(c.url(), "http://[::1]:9000");
    for bad in [
        "https://x",
        "ftp://x",
        "127.0.0.1:8080",
        "http://",
        "http://u:p@x",
        "http://x:99999",
        "http://x y",
    ] {
        let e = Client::new(bad).unwrap_err();
        assert_eq!(e.code(), "bad_url", "{bad}");
    }
}
