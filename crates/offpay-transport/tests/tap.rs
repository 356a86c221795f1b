//! The tap socket: full exchanges between real wallets over 127.0.0.1, torn
//! exchanges and their retry, and hostile or broken peers.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use offpay_protocol::Suite;
use offpay_protocol::messages::{PAYMENT_REQUEST_BYTES_MAX, RECEIPT_BYTES_MAX};
use offpay_test_support::*;
use offpay_transport::tap::{
    self, Decline, Declined, FrameType, Step, TapError, TapListener, TapOutcome, encode_frame,
    read_frame, serve_one, tap_connect, write_frame,
};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

const SHORT: Duration = Duration::from_millis(300);

fn listener() -> (TapListener, SocketAddr) {
    let l = TapListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    assert!(a.ip().is_loopback());
    (l, a)
}

fn payer_cb(
    w: &mut Wallet<MemoryVault>,
    now: offpay_protocol::UnixSeconds,
) -> impl FnOnce(&[u8]) -> Result<Vec<u8>, Decline> + '_ {
    move |req| w.pay(req, now).map_err(|e| e.to_string().into())
}

fn payee_cb(
    w: &mut Wallet<MemoryVault>,
    now: offpay_protocol::UnixSeconds,
) -> impl FnOnce(&[u8]) -> Result<Vec<u8>, Decline> + '_ {
    move |p| w.receive(p, now).map_err(|e| e.to_string().into())
}

#[test]
fn full_exchange_moves_money_both_suites() {
    for suite in [Suite::Ed25519, Suite::P256] {
        let mut s = Scheme::new(suite);
        let mut alice = s.memory_wallet(suite);
        let mut bob = s.memory_wallet(suite);
        s.load(&mut alice, 10_000, T0);
        let (l, addr) = listener();
        let now = T0.plus(60);
        let req = bob.request(eur(2_500), 300, now).unwrap();

        let (served, paid) = thread::scope(|sc| {
            let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now)));
            let paid = tap::pay_over_tap(addr, payer_cb(&mut alice, now));
            (payee.join().unwrap(), paid)
        });
        let served: TapOutcome = served.unwrap();
        let paid = paid.unwrap();
        assert_eq!(served.payment, paid.payment);
        assert_eq!(served.receipt, paid.receipt);
        assert!(served.peer.ip().is_loopback());
        alice.confirm(&paid.receipt).unwrap();
        assert_eq!(alice.balance().unwrap().minor, 7_500);
        assert_eq!(bob.balance().unwrap().minor, 2_500);

        // The listener serves the next exchange too (Bob pays back, roles swapped
        // on a fresh listener for Alice).
        let (l2, addr2) = listener();
        let req2 = alice.request(eur(1_000), 300, now.plus(10)).unwrap();
        let (served2, paid2) = thread::scope(|sc| {
            let payee = sc.spawn(|| serve_one(&l2, &req2, payee_cb(&mut alice, now.plus(10))));
            let paid = tap_connect(addr2, Duration::from_secs(5))
                .unwrap()
                .pay(payer_cb(&mut bob, now.plus(10)));
            (payee.join().unwrap(), paid)
        });
        served2.unwrap();
        bob.confirm(&paid2.unwrap().receipt).unwrap();
        assert_eq!(alice.balance().unwrap().minor, 8_500);
        assert_eq!(bob.balance().unwrap().minor, 1_500);
    }
}

#[test]
fn refusals_travel_as_error_frames_without_the_reason() {
    let suite = Suite::Ed25519;
    let mut s = Scheme::new(suite);
    let mut alice = s.memory_wallet(suite);
    let mut bob = s.memory_wallet(suite);
    s.load(&mut alice, 1_000, T0);
    let now = T0.plus(60);
    // More than Alice holds: her TA refuses; Bob hears that she declined,
    // never her balance or her limits.
    let req = bob.request(eur(5_000), 300, now).unwrap();
    let (l, addr) = listener();
    let (served, paid) = thread::scope(|sc| {
        let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now)));
        let paid = tap::pay_over_tap(addr, payer_cb(&mut alice, now));
        (payee.join().unwrap(), paid)
    });
    let TapError::Refused { reason } = paid.unwrap_err() else {
        panic!("payer refused")
    };
    assert!(reason.contains("10.00"), "the payer's own reason: {reason}");
    match served.unwrap_err() {
        TapError::PeerRefused {
            reason: heard,
            payment_sent: false,
        } => {
            assert_eq!(heard, Declined::Unwilling.text());
            for secret in ["10.00", "balance", "funds", "limit", "1000"] {
                assert!(
                    !heard.contains(secret),
                    "the payee learns {secret:?}: {heard}"
                );
            }
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(alice.balance().unwrap().minor, 1_000);

    // The payee refuses: it keeps its reason, the payer hears the category.
    let long = "x".repeat(1000);
    let (served, paid) = thread::scope(|sc| {
        let payee = sc.spawn(|| {
            serve_one(&l, b"some request", |_| {
                Err(Decline::new(long.clone(), Declined::NotAcceptable))
            })
        });
        let paid = tap::pay_over_tap(addr, |_| Ok(b"a payment".to_vec()));
        (payee.join().unwrap(), paid)
    });
    assert!(matches!(served, Err(TapError::Refused { reason }) if reason == long));
    match paid.unwrap_err() {
        TapError::PeerRefused {
            reason,
            payment_sent: true,
        } => assert_eq!(reason, Declined::NotAcceptable.text()),
        e => panic!("{e:?}"),
    }
}

/// A raw payee: accept, send the REQUEST, read the PAYMENT, hand it to `then`, drop.
fn raw_payee_once(
    l: &TcpListener,
    request: &[u8],
    then: impl FnOnce(&[u8], &mut TcpStream),
) -> Vec<u8> {
    let (mut s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write_frame(&mut s, FrameType::Request, request).unwrap();
    let (t, payment) = read_frame(&mut s).unwrap();
    assert_eq!(t, FrameType::Payment);
    then(&payment, &mut s);
    payment
}

#[test]
fn torn_after_payee_credited_retry_gives_same_bytes_money_moves_once() {
    let suite = Suite::Ed25519;
    let mut s = Scheme::new(suite);
    let mut alice = s.memory_wallet(suite);
    let mut bob = s.memory_wallet(suite);
    s.load(&mut alice, 10_000, T0);
    let now = T0.plus(60);
    let req = bob.request(eur(2_500), 300, now).unwrap();

    // Attempt 1: the payee credits, then the connection drops before the RECEIPT.
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let raw_addr = raw.local_addr().unwrap();
    let mut first_receipt = Vec::new();
    let (payment1, torn) = thread::scope(|sc| {
        let payee = sc.spawn(|| {
            raw_payee_once(&raw, &req, |p, _s| {
                first_receipt = bob.receive(p, now).unwrap();
            })
        });
        let paid = tap::pay_over_tap(raw_addr, payer_cb(&mut alice, now));
        (payee.join().unwrap(), paid)
    });
    match torn.unwrap_err() {
        TapError::Torn {
            payment_sent: true,
            cause,
        } => assert!(
            matches!(
                *cause,
                TapError::Closed {
                    step: Step::AwaitReceipt
                }
            ),
            "{cause:?}"
        ),
        e => panic!("{e:?}"),
    }
    assert_eq!(alice.balance().unwrap().minor, 7_500, "debited once");
    assert_eq!(bob.balance().unwrap().minor, 2_500, "credited once");

    // Attempt 2: same request served again; the payer retries.
    let (l, addr) = listener();
    let (served, paid) = thread::scope(|sc| {
        let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now.plus(5))));
        let paid = tap::pay_over_tap(addr, payer_cb(&mut alice, now.plus(5)));
        (payee.join().unwrap(), paid)
    });
    let (served, paid) = (served.unwrap(), paid.unwrap());
    assert_eq!(paid.payment, payment1, "same payment bytes");
    assert_eq!(paid.receipt, first_receipt, "same receipt bytes");
    assert_eq!(served.receipt, first_receipt);
    alice.confirm(&paid.receipt).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 7_500, "money moved once");
    assert_eq!(bob.balance().unwrap().minor, 2_500, "money moved once");
}

#[test]
fn torn_before_payee_processed_retry_completes() {
    let suite = Suite::Ed25519;
    let mut s = Scheme::new(suite);
    let mut alice = s.memory_wallet(suite);
    let mut bob = s.memory_wallet(suite);
    s.load(&mut alice, 10_000, T0);
    let now = T0.plus(60);
    let req = bob.request(eur(1_234), 300, now).unwrap();

    // The payee reads the PAYMENT and goes away without processing it.
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let raw_addr = raw.local_addr().unwrap();
    let (payment1, torn) = thread::scope(|sc| {
        let payee = sc.spawn(|| raw_payee_once(&raw, &req, |_, _| {}));
        let paid = tap::pay_over_tap(raw_addr, payer_cb(&mut alice, now));
        (payee.join().unwrap(), paid)
    });
    assert!(torn.unwrap_err().is_torn());
    assert_eq!(alice.balance().unwrap().minor, 10_000 - 1_234);
    assert!(bob.balance().unwrap().minor == 0);

    let (l, addr) = listener();
    let (served, paid) = thread::scope(|sc| {
        let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now.plus(5))));
        let paid = tap::pay_over_tap(addr, payer_cb(&mut alice, now.plus(5)));
        (payee.join().unwrap(), paid)
    });
    served.unwrap();
    let paid = paid.unwrap();
    assert_eq!(paid.payment, payment1);
    alice.confirm(&paid.receipt).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 10_000 - 1_234);
    assert_eq!(bob.balance().unwrap().minor, 1_234);
}

#[test]
#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn payer_vanishing_after_payment_then_retrying_gets_the_same_receipt() {
    let suite = Suite::Ed25519;
    let mut s = Scheme::new(suite);
    let mut alice = s.memory_wallet(suite);
    let mut bob = s.memory_wallet(suite);
    s.load(&mut alice, 10_000, T0);
    let now = T0.plus(60);
    let req = bob.request(eur(700), 300, now).unwrap();
    let (l, addr) = listener();

    // A raw payer: reads the REQUEST, sends the PAYMENT, hangs up at once.
    let (served, payment1) = thread::scope(|sc| {
        let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now)));
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (t, r) = read_frame(&mut c).unwrap();
        assert_eq!((t, r.as_slice()), (FrameType::Request, req.as_slice()));
        let payment = alice.pay(&r, now).unwrap();
        write_frame(&mut c, FrameType::Payment, &payment).unwrap();
        drop(c);
        (payee.join().unwrap(), payment)
    });
    // The payee credited; its RECEIPT may or may not have gone out.
    let first_receipt = match served {
        Ok(o) => o.receipt,
        Err(TapError::Torn {
            payment_sent: true, ..
        }) => bob.receive(&payment1, now).unwrap(),
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(bob.balance().unwrap().minor, 700);

    let (served, paid) = thread::scope(|sc| {
        let payee = sc.spawn(|| serve_one(&l, &req, payee_cb(&mut bob, now.plus(1))));
        let paid = tap::pay_over_tap(addr, payer_cb(&mut alice, now.plus(1)));
        (payee.join().unwrap(), paid)
    });
    served.unwrap();
    let paid = paid.unwrap();
    assert_eq!(paid.payment, payment1);
    assert_eq!(paid.receipt, first_receipt);
    alice.confirm(&paid.receipt).unwrap();
    assert_eq!(alice.balance().unwrap().minor, 9_300);
    assert_eq!(bob.balance().unwrap().minor, 700);
}

// ---- hostile or broken payees (payer side) --------------------------------

/// Run the payer against a raw payee that does `payee` with the accepted socket.
fn payer_against(
    payee: impl FnOnce(TcpStream) + Send,
    timeout: Duration,
) -> (Result<tap::TapPaid, TapError>, bool) {
    let raw = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = raw.local_addr().unwrap();
    let mut called = false;
    let r = thread::scope(|sc| {
        let h = sc.spawn(move || {
            let (s, _) = raw.accept().unwrap();
            payee(s);
        });
        let r = tap_connect(addr, timeout).unwrap().pay(|_| {
            called = true;
            Ok(b"payment".to_vec())
        });
        h.join().unwrap();
        r
    });
    (r, called)
}

#[test]
fn payer_rejects_oversized_unknown_garbage_and_premature_eof() {
    let t = Duration::from_secs(5);
    // Oversized REQUEST announced: refused from the header, payload never read.
    let (r, called) = payer_against(
        |mut s| {
            let _ = s.write_all(&[0x01, 0x00, 0x00, 0x24, 0x00]);
            let _ = s.write_all(&[0u8; 64]);
        },
        t,
    );
    assert!(!called);
    match r.unwrap_err() {
        TapError::FrameTooLarge {
            frame: FrameType::Request,
            len: 9216,
            max,
        } => assert_eq!(max, PAYMENT_REQUEST_BYTES_MAX),
        e => panic!("{e:?}"),
    }
    let (r, _) = payer_against(
        |mut s| drop(s.write_all(&[0x01, 0xff, 0xff, 0xff, 0xff])),
        t,
    );
    assert!(matches!(
        r,
        Err(TapError::FrameTooLarge { len: u32::MAX, .. })
    ));
    // Unknown frame type.
    let (r, called) = payer_against(|mut s| drop(s.write_all(&[0x09, 0, 0, 0, 1, 0])), t);
    assert!(!called);
    assert!(matches!(
        r,
        Err(TapError::UnknownFrameType {
            byte: 0x09,
            step: Step::AwaitRequest
        })
    ));
    // Garbage (an HTTP request).
    let (r, _) = payer_against(
        |mut s| drop(s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")),
        t,
    );
    assert!(matches!(
        r,
        Err(TapError::UnknownFrameType { byte: b'G', .. })
    ));
    // Random garbage, many seeds: always an error, never a call, never a panic.
    for seed in 0..20 {
        let junk = test_bytes(300, seed);
        let (r, called) = payer_against(move |mut s| drop(s.write_all(&junk)), t);
        assert!(r.is_err() && !called, "seed {seed}: {r:?}");
    }
    // Wrong frame first.
    let (r, _) = payer_against(
        |mut s| drop(s.write_all(&encode_frame(FrameType::Receipt, b"r").unwrap())),
        t,
    );
    assert!(matches!(
        r,
        Err(TapError::UnexpectedFrame {
            expected: FrameType::Request,
            got: FrameType::Receipt
        })
    ));
    // Empty REQUEST.
    let (r, _) = payer_against(|mut s| drop(s.write_all(&[0x01, 0, 0, 0, 0])), t);
    assert!(matches!(
        r,
        Err(TapError::EmptyFrame {
            frame: FrameType::Request
        })
    ));
    // Premature EOF: immediately, inside the header, inside the payload.
    for bytes in [
        &[][..],
        &[0x01, 0, 0][..],
        &[0x01, 0, 0, 0, 100, 1, 2, 3][..],
    ] {
        let (r, called) = payer_against(move |mut s| drop(s.write_all(bytes)), t);
        assert!(!called);
        assert!(
            matches!(
                r,
                Err(TapError::Closed {
                    step: Step::AwaitRequest
                })
            ),
            "{bytes:?}: {r:?}"
        );
    }
    // An ERROR frame carrying terminal escapes: reported, sanitized.
    let (r, _) = payer_against(
        |mut s| drop(s.write_all(&encode_frame(FrameType::Error, b"busy\x1b[2J").unwrap())),
        t,
    );
    match r.unwrap_err() {
        TapError::PeerRefused {
            reason,
            payment_sent: false,
        } => assert_eq!(reason, "busy\u{fffd}[2J"),
        e => panic!("{e:?}"),
    }
}

#[test]
fn payer_times_out_on_a_silent_or_trickling_payee() {
    // Never answers.
    let start = Instant::now();
    let (r, called) = payer_against(
        |s| {
            thread::sleep(SHORT * 3);
            drop(s)
        },
        SHORT,
    );
    assert!(!called);
    assert!(
        matches!(
            r,
            Err(TapError::Timeout {
                step: Step::AwaitRequest
            })
        ),
        "{r:?}"
    );
    assert!(start.elapsed() >= SHORT);
    // Trickles one byte at a time, each in time, the frame as a whole too late.
    let (r, _) = payer_against(
        |mut s| {
            let f = encode_frame(FrameType::Request, &[7u8; 50]).unwrap();
            for b in f {
                if s.write_all(&[b]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(60));
            }
        },
        SHORT,
    );
    assert!(
        matches!(
            r,
            Err(TapError::Timeout {
                step: Step::AwaitRequest
            })
        ),
        "{r:?}"
    );
}

#[test]
fn failures_after_the_payment_are_torn() {
    let t = SHORT;
    // Silent after the PAYMENT: torn by timeout.
    let (r, called) = payer_against(
        |mut s| {
            write_frame(&mut s, FrameType::Request, b"req").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = read_frame(&mut s);
            thread::sleep(SHORT * 3);
        },
        t,
    );
    assert!(called);
    match r.unwrap_err() {
        TapError::Torn {
            payment_sent: true,
            cause,
        } => assert!(matches!(
            *cause,
            TapError::Timeout {
                step: Step::AwaitReceipt
            }
        )),
        e => panic!("{e:?}"),
    }
    // Garbage instead of a RECEIPT: torn, the cause says what.
    let (r, _) = payer_against(
        |mut s| {
            write_frame(&mut s, FrameType::Request, b"req").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = read_frame(&mut s);
            let _ = s.write_all(&[0x03, 0, 0, 0x10, 0]);
        },
        Duration::from_secs(5),
    );
    match r.unwrap_err() {
        TapError::Torn {
            payment_sent: true,
            cause,
        } => assert!(
            matches!(*cause, TapError::FrameTooLarge { frame: FrameType::Receipt, len: 4096, max } if max == RECEIPT_BYTES_MAX)
        ),
        e => panic!("{e:?}"),
    }
}

// ---- hostile or broken payers (payee side) --------------------------------

/// Run `serve_one` against a raw payer doing `payer` with the connected socket
/// (after reading the REQUEST).
fn payee_against(
    payer: impl FnOnce(TcpStream) + Send,
    timeout: Duration,
) -> (Result<TapOutcome, TapError>, bool) {
    let l = TapListener::bind("127.0.0.1:0")
        .unwrap()
        .with_timeout(timeout)
        .unwrap();
    let addr = l.local_addr().unwrap();
    let mut called = false;
    let r = thread::scope(|sc| {
        let h = sc.spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let (t, _) = read_frame(&mut s).unwrap();
            assert_eq!(t, FrameType::Request);
            payer(s);
        });
        let r = serve_one(&l, b"request", |_| {
            called = true;
            Ok(b"receipt".to_vec())
        });
        h.join().unwrap();
        r
    });
    (r, called)
}

#[test]
fn payee_rejects_hostile_payers() {
    let t = Duration::from_secs(5);
    let (r, called) = payee_against(|mut s| drop(s.write_all(&[0x02, 0, 0, 0x24, 0])), t);
    assert!(!called);
    assert!(matches!(
        r,
        Err(TapError::FrameTooLarge {
            frame: FrameType::Payment,
            len: 9216,
            ..
        })
    ));
    let (r, called) = payee_against(|mut s| drop(s.write_all(&[0xee, 0, 0, 0, 1, 1])), t);
    assert!(!called);
    assert!(matches!(
        r,
        Err(TapError::UnknownFrameType {
            byte: 0xee,
            step: Step::AwaitPayment
        })
    ));
    let (r, called) = payee_against(|mut s| drop(s.write_all(&[0x02, 0, 0, 1, 0, 9, 9])), t);
    assert!(!called);
    assert!(matches!(
        r,
        Err(TapError::Closed {
            step: Step::AwaitPayment
        })
    ));
    let (r, called) = payee_against(drop, t);
    assert!(!called);
    assert!(matches!(
        r,
        Err(TapError::Closed {
            step: Step::AwaitPayment
        })
    ));
    let (r, _) = payee_against(
        |mut s| drop(s.write_all(&encode_frame(FrameType::Request, b"me too").unwrap())),
        t,
    );
    assert!(matches!(
        r,
        Err(TapError::UnexpectedFrame {
            expected: FrameType::Payment,
            got: FrameType::Request
        })
    ));
    for seed in 100..115 {
        let junk = test_bytes(200, seed);
        let (r, called) = payee_against(move |mut s| drop(s.write_all(&junk)), t);
        assert!(r.is_err() && !called, "seed {seed}: {r:?}");
    }
    // Silent payer: timeout, the callback never runs.
    let (r, called) = payee_against(
        |s| {
            thread::sleep(SHORT * 3);
            drop(s)
        },
        SHORT,
    );
    assert!(!called);
    assert!(
        matches!(
            r,
            Err(TapError::Timeout {
                step: Step::AwaitPayment
            })
        ),
        "{r:?}"
    );
}

#[test]
fn limits_on_what_we_send_and_how_we_wait() {
    let (l, addr) = listener();
    // A request too large (or empty) is refused before waiting for anyone.
    assert!(matches!(
        serve_one(&l, &vec![0u8; PAYMENT_REQUEST_BYTES_MAX + 1], |_| Ok(vec![
            1
        ])),
        Err(TapError::MessageTooLarge { .. })
    ));
    assert!(matches!(
        serve_one(&l, &[], |_| Ok(vec![1])),
        Err(TapError::MessageTooLarge { len: 0, .. })
    ));
    // A zero timeout is refused.
    assert!(matches!(
        tap_connect(addr, Duration::ZERO),
        Err(TapError::InvalidTimeout)
    ));
    let l = l.with_timeout(Duration::ZERO);
    assert!(matches!(l, Err(TapError::InvalidTimeout)));
    // Waiting for a payer can be bounded.
    let l = TapListener::bind("127.0.0.1:0")
        .unwrap()
        .with_accept_timeout(Some(Duration::from_millis(100)));
    let start = Instant::now();
    assert!(matches!(
        serve_one(&l, b"req", |_| Ok(vec![1])),
        Err(TapError::Timeout { step: Step::Accept })
    ));
    assert!(start.elapsed() >= Duration::from_millis(100));
    // ... and the listener still works afterwards.
    let addr = l.local_addr().unwrap();
    let (served, paid) = thread::scope(|sc| {
        let h = sc.spawn(|| serve_one(&l, b"req", |p| Ok([b"receipt for ", p].concat())));
        let paid = tap::pay_over_tap(addr, |r| Ok([b"paying ", r].concat()));
        (h.join().unwrap(), paid)
    });
    assert_eq!(served.unwrap().receipt, b"receipt for paying req");
    assert_eq!(paid.unwrap().receipt, b"receipt for paying req");
    // A receipt the payee's wallet made too large is not sent; the payer hears an ERROR.
    let (served, paid) = thread::scope(|sc| {
        let h = sc.spawn(|| serve_one(&l, b"req", |_| Ok(vec![0; RECEIPT_BYTES_MAX + 1])));
        let paid = tap::pay_over_tap(addr, |_| Ok(b"p".to_vec()));
        (h.join().unwrap(), paid)
    });
    assert!(matches!(served, Err(TapError::MessageTooLarge { .. })));
    assert!(matches!(
        paid,
        Err(TapError::PeerRefused {
            payment_sent: true,
            ..
        })
    ));
    // Nothing listening: a connect error, not a panic.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = tap_connect(closed, SHORT).unwrap_err();
    assert!(
        matches!(
            e,
            TapError::Io {
                step: Step::Connect,
                ..
            } | TapError::Closed { .. }
        ),
        "{e:?}"
    );
    // Error messages are readable.
    assert!(e.to_string().contains("connecting"), "{e}");
}
