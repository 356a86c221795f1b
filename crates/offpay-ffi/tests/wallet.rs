//! The SDK's wallet through its exported API, with Rust implementations of
//! the host traits and the test issuer: the story both ways, typed refusals
//! that change nothing, a rolled-back state blob, a caught panic, threads.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

mod common;

use std::sync::Arc;

use common::*;
use offpay_ffi::{HistoryKind, OffpayError, OffpayWallet, WalletLock, WalletStatusInfo};
use offpay_protocol::UnixSeconds;
use offpay_test_support::Scheme;

fn now_of(p: &TestPlatform) -> UnixSeconds {
    UnixSeconds(p.now.load(std::sync::atomic::Ordering::SeqCst))
}

fn two_wallets() -> (
    Scheme,
    TestPlatform,
    Host,
    Arc<OffpayWallet>,
    Host,
    Arc<OffpayWallet>,
) {
    let (mut s, p) = start();
    let (ha, hb) = (Host::new(&p), Host::new(&p));
    let a = enrolled(&mut s, &ha);
    let b = enrolled(&mut s, &hb);
    load(&mut s, &a, 10_000, now_of(&p));
    load(&mut s, &b, 5_000, now_of(&p));
    (s, p, ha, a, hb, b)
}

#[test]
fn story_both_ways_then_sync_and_reopen() {
    let (mut s, p, ha, a, hb, b) = two_wallets();
    pay(&a, &b, 2_500);
    pay(&b, &a, 1_000);
    assert_eq!(balance(&a), 8_500);
    assert_eq!(balance(&b), 6_500);
    let kinds: Vec<HistoryKind> = a.history().unwrap().iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        vec![
            HistoryKind::Loaded,
            HistoryKind::Paid,
            HistoryKind::Received
        ]
    );
    let paid = &a.history().unwrap()[1];
    assert_eq!(paid.amount.minor, 2_500);
    assert_eq!(paid.amount.currency, "EUR");
    assert_eq!(paid.counterparty, Some(b.wallet_id().unwrap()));

    let st = a.status().unwrap();
    assert!(st.enrolled && st.lock.is_none());
    assert_eq!((st.seq, st.load_seq, st.unsynced_entries), (1, 1, 3));
    assert_eq!(st.policy.unwrap().currency, "EUR");
    assert!(a.certificate_der().unwrap().is_some());

    sync(&mut s, &a, now_of(&p));
    sync(&mut s, &b, now_of(&p));
    assert_eq!(a.status().unwrap().unsynced_entries, 0);

    // Redeem: a signed entry, debited at once.
    let entry = a.redeem(500).unwrap();
    assert!(!entry.is_empty());
    assert_eq!(balance(&a), 8_000);

    // Everything is in the host's storage: reopened, the wallets are the same.
    let id = a.wallet_id().unwrap();
    drop(a);
    let a = ha.open().unwrap();
    assert_eq!(a.wallet_id().unwrap(), id);
    assert_eq!(balance(&a), 8_000);
    assert_eq!(balance(&hb.open().unwrap()), 6_500);
    assert_eq!(
        ha.storage.snapshot().keys().cloned().collect::<Vec<_>>(),
        vec!["device-check", "pin-attempts", "state.sealed"]
    );
    // The anti-rollback counter moved with every commit.
    assert!(ha.counter.value() >= 6, "{}", ha.counter.value());
}

/// A refusal through the API: its typed error, and nothing changed.
#[track_caller]
fn refused(w: &OffpayWallet, f: impl FnOnce() -> Result<Vec<u8>, OffpayError>) -> OffpayError {
    let before: WalletStatusInfo = w.status().unwrap();
    let history = w.history().unwrap();
    let e = f().expect_err("refused");
    assert_eq!(w.status().unwrap(), before, "{e}");
    assert_eq!(w.history().unwrap(), history, "{e}");
    e
}

#[test]
fn refusals_are_typed_and_change_nothing() {
    let (mut scheme, platform, _ha, a, _hb, b) = two_wallets();

    let req = b.request(20_000, "EUR".into(), 300).unwrap();
    let err = refused(&a, || a.pay(req.clone()));
    assert_eq!(
        err,
        OffpayError::InsufficientFunds {
            balance_minor: 10_000,
            needed_minor: 20_000,
            currency: "EUR".into()
        }
    );

    // The test policy allows 50,000 per payment: load up, ask more.
    load(&mut scheme, &a, 90_000, now_of(&platform));
    let req = b.request(60_000, "EUR".into(), 300).unwrap();
    let err = refused(&a, || a.pay(req.clone()));
    assert_eq!(
        err,
        OffpayError::LimitPerPayment {
            max_minor: 50_000,
            currency: "EUR".into()
        }
    );

    // A replayed payment credits once: the payee answers with the same receipt.
    let request = b.request(100, "EUR".into(), 300).unwrap();
    let payment = a.pay(request).unwrap();
    let receipt = b.receive(payment.clone()).unwrap();
    let credited = balance(&b);
    assert_eq!(b.receive(payment).unwrap(), receipt);
    assert_eq!(balance(&b), credited);
    a.confirm(receipt).unwrap();

    // An expired request (the host's clock moves on).
    let req = b.request(100, "EUR".into(), 60).unwrap();
    platform.advance(120);
    let err = refused(&a, || a.pay(req.clone()));
    assert_eq!(err, OffpayError::RequestExpired);

    // Bytes that are not a message.
    let err = refused(&a, || a.pay(vec![0xff, 0x00, 0x13]));
    assert!(matches!(err, OffpayError::Malformed { .. }), "{err:?}");

    // Arguments.
    let err = refused(&b, || b.request(100, "euro".into(), 60));
    assert!(
        matches!(err, OffpayError::InvalidArgument { .. }),
        "{err:?}"
    );
    let err = refused(&b, || b.request(100, "EUR".into(), 0));
    assert!(
        matches!(err, OffpayError::InvalidArgument { .. }),
        "{err:?}"
    );
    let err = refused(&b, || b.request(0, "EUR".into(), 60));
    assert_eq!(err, OffpayError::ZeroAmount);
    let err = refused(&b, || b.request(100, "USD".into(), 60));
    assert_eq!(err, OffpayError::CurrencyMismatch);
    let err = refused(&a, || a.redeem(0));
    assert_eq!(err, OffpayError::ZeroAmount);
}

#[test]
fn wrong_pin_is_counted_then_exhausted() {
    let (mut s, p) = start();
    let h = Host::new(&p);
    drop(enrolled(&mut s, &h));
    for left in (0..5).rev() {
        let e = h.open_with("0000").unwrap_err();
        assert_eq!(
            e,
            OffpayError::WrongPin {
                attempts_left: left
            }
        );
    }
    assert_eq!(h.open().unwrap_err(), OffpayError::PinAttemptsExhausted);
}

#[test]
fn bad_arguments_and_host_values_are_refused_before_anything_is_written() {
    let (s, p) = start();
    let h = Host::new(&p);
    let create = |pin: &str, root: Vec<u8>, kdf| {
        OffpayWallet::create(
            Arc::new(h.storage.clone()),
            Arc::new(h.counter.clone()),
            Arc::new(h.platform.clone()),
            pin.into(),
            root,
            kdf,
        )
        .map(|_| ())
    };
    let root = s.root.der().to_vec();
    assert!(matches!(
        create("", root.clone(), KDF),
        Err(OffpayError::InvalidArgument { .. })
    ));
    assert_eq!(
        create(
            PIN,
            root.clone(),
            offpay_ffi::KdfSettings {
                memory_kib: 4,
                passes: 1
            }
        ),
        Err(OffpayError::InvalidKdfParams)
    );
    assert!(matches!(
        create(PIN, vec![1, 2, 3], KDF),
        Err(OffpayError::IssuerMaterial { .. })
    ));
    // A device secret of the wrong length.
    let mut bad = h.clone();
    bad.platform.secret = vec![1; 31];
    assert!(matches!(
        bad.create(&root),
        Err(OffpayError::Host { reason }) if reason.contains("31 bytes")
    ));
    assert!(h.storage.snapshot().is_empty());
    assert_eq!(h.faults.writes(), 0);

    // A used counter: CounterNotFresh, nothing written.
    let used = Host {
        counter: MemCounter::at(3, h.faults.clone()),
        ..h.clone()
    };
    assert_eq!(
        used.create(&root).unwrap_err(),
        OffpayError::CounterNotFresh
    );
    assert!(h.storage.snapshot().is_empty());

    // Then it works, and a second create on the same storage is refused.
    h.create(&root).unwrap();
    assert_eq!(
        h.create(&root).unwrap_err(),
        OffpayError::VaultAlreadyExists
    );
    // Another device secret: refused without counting a PIN attempt.
    let mut other = h.clone();
    other.platform.secret = vec![7; 32];
    assert_eq!(other.open().unwrap_err(), OffpayError::WrongDeviceSecret);
    h.open().unwrap();
}

#[test]
fn a_restored_state_blob_opens_locked() {
    let (_s, _p, ha, a, _hb, b) = two_wallets();
    let old_state = ha.storage.get("state.sealed").unwrap();
    pay(&a, &b, 3_000);
    assert_eq!(balance(&a), 7_000);
    drop(a);
    // The attacker restores the old state blob (the counter is elsewhere).
    ha.storage.put("state.sealed", &old_state);
    let a = ha.open().unwrap();
    let st = a.status().unwrap();
    assert_eq!(st.lock, Some(WalletLock::RolledBack));
    let req = b.request(1_000, "EUR".into(), 300).unwrap();
    assert!(matches!(
        a.pay(req),
        Err(OffpayError::Locked {
            rolled_back: true,
            ..
        })
    ));
    // It can still report to the issuer, which decides.
    assert!(!a.sync_report().unwrap().is_empty());
    // Reopened again, it stays locked (the lock is sealed at a newer version).
    drop(a);
    assert_eq!(
        ha.open().unwrap().status().unwrap().lock,
        Some(WalletLock::RolledBack)
    );
}

#[test]
fn an_edited_state_blob_is_tampered_and_changes_nothing() {
    let (_s, _p, ha, a, _hb, _b) = two_wallets();
    drop(a);
    let sealed = ha.storage.get("state.sealed").unwrap();
    // One bit of the ciphertext, then one of the header's version: the AEAD
    // refuses both (the host sees only sealed bytes).
    for offset in [sealed.len() - 20, 50] {
        let mut edited = sealed.clone();
        edited[offset] ^= 0x01;
        ha.storage.put("state.sealed", &edited);
        assert_eq!(
            ha.open().unwrap_err(),
            OffpayError::Tampered,
            "edit at byte {offset}"
        );
    }
    // The original opens again, balance intact.
    ha.storage.put("state.sealed", &sealed);
    assert_eq!(balance(&ha.open().unwrap()), 10_000);
}

#[test]
fn a_counter_two_versions_behind_the_state_is_corrupt() {
    let (_s, _p, ha, a, _hb, _b) = two_wallets();
    drop(a);
    // A counter two versions behind the state: no crash produces that.
    let behind = Host {
        counter: MemCounter::at(ha.counter.value() - 2, ha.faults.clone()),
        ..ha.clone()
    };
    assert!(matches!(behind.open(), Err(OffpayError::Corrupt { .. })));
}

#[test]
fn a_failing_host_write_is_a_host_error_and_the_wallet_goes_on() {
    let (_s, _p, ha, a, _hb, b) = two_wallets();
    let req = b.request(1_000, "EUR".into(), 300).unwrap();
    // The next host write (the state blob of the debit) fails; the process lives on.
    ha.faults.arm(0, Strike::Before);
    let e = a.pay(req.clone()).unwrap_err();
    assert!(
        matches!(&e, OffpayError::Host { reason } if reason.contains("replace(state.sealed)")),
        "{e:?}"
    );
    assert_eq!(balance(&a), 10_000);
    ha.faults.disarm();
    // The same object retries: the payment goes through once.
    let payment = a.pay(req).unwrap();
    let receipt = b.receive(payment).unwrap();
    a.confirm(receipt).unwrap();
    assert_eq!((balance(&a), balance(&b)), (9_000, 6_000));
    drop(a);
    assert_eq!(balance(&ha.open().unwrap()), 9_000);
}

#[test]
fn a_panic_is_internal_and_the_object_refuses_everything_after() {
    let (_s, _p, ha, a, _hb, b) = two_wallets();
    let req = b.request(1_000, "EUR".into(), 300).unwrap();
    ha.faults.arm_panic(0);
    let e = a.pay(req.clone()).unwrap_err();
    assert!(
        matches!(&e, OffpayError::Internal { reason } if reason.contains("injected panic")),
        "{e:?}"
    );
    ha.faults.disarm();
    assert!(matches!(a.balance(), Err(OffpayError::Internal { .. })));
    assert!(matches!(
        a.pay(req.clone()),
        Err(OffpayError::Internal { .. })
    ));
    drop(a);
    // Reopened from storage: nothing was debited (the write never happened).
    let a = ha.open().unwrap();
    assert_eq!(balance(&a), 10_000);
    let payment = a.pay(req).unwrap();
    b.receive(payment).unwrap();
    assert_eq!((balance(&a), balance(&b)), (9_000, 6_000));
}

#[test]
fn threads_share_one_wallet_one_operation_at_a_time() {
    // One payer shared by the threads, one payee each: a payee takes a
    // payer's payments in seq order (a lower seq after a higher one is a
    // rolled-back payer), so each thread's exchanges go to its own payee.
    let (mut s, p, _ha, a, _hb, _b) = two_wallets();
    const THREADS: u64 = 4;
    const PAYMENTS: u64 = 8;
    let payees: Vec<_> = (0..THREADS)
        .map(|_| enrolled(&mut s, &Host::new(&p)))
        .collect();
    let workers: Vec<_> = payees
        .iter()
        .map(|b| {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for _ in 0..PAYMENTS {
                    pay(&a, &b, 10);
                    assert!(a.status().unwrap().seq <= THREADS * PAYMENTS);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let n = THREADS * PAYMENTS;
    assert_eq!(balance(&a), 10_000 - 10 * n);
    for b in &payees {
        assert_eq!(balance(b), 10 * PAYMENTS);
        assert_eq!(b.status().unwrap().unsynced_entries, PAYMENTS);
    }
    assert_eq!(a.status().unwrap().seq, n);
}

#[test]
fn the_baseline_measures_the_round_in_rust() {
    let r = offpay_ffi::rust_payment_baseline(60).unwrap();
    assert_eq!(r.iterations, 60);
    assert!(r.median_us > 0.0 && r.median_us <= r.p99_us, "{r:?}");
    assert!(r.mean_us > 0.0);
    assert!(matches!(
        offpay_ffi::rust_payment_baseline(0),
        Err(OffpayError::InvalidArgument { .. })
    ));
    assert!(matches!(
        offpay_ffi::rust_payment_baseline(offpay_ffi::BASELINE_ITERATIONS_MAX + 1),
        Err(OffpayError::InvalidArgument { .. })
    ));
}
