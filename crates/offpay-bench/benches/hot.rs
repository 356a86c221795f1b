//! Criterion micro-benchmarks of the hot paths, kept quick (small samples,
//! short measurement): `cargo bench -p offpay-bench --bench hot`.
//!
//! * Ed25519 sign, verify, batch verify of 64; P-256 verify (300-byte messages)
//! * CBOR decode of a Payment envelope (`Signed::<Payment>::decode`)
//! * one offline payment's pay + receive, vaults in memory
//! * `Issuer::sync` of one 100-entry report on in-memory SQLite
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use offpay_bench::setup;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::Payment;
use offpay_protocol::suite::{BatchItem, verify_batch};
use offpay_protocol::{Amount, PublicKey, SigningKey, Suite, UnixSeconds};
use offpay_wallet::vault::MemoryVault;

/// Seconds the simulated clock moves per payment (requests expire, as on a device).
const STEP: u64 = 10;

fn message(i: usize) -> Vec<u8> {
    (0..offpay_bench::crypto::MESSAGE_BYTES)
        .map(|j| (i * 31 + j * 7) as u8)
        .collect()
}

fn key(suite: Suite, i: u8) -> SigningKey {
    SigningKey::from_seed(suite, &[i.max(1); 32]).expect("test key")
}

fn signatures(c: &mut Criterion) {
    let msg = message(0);
    for (name, suite) in [("ed25519", Suite::Ed25519), ("p256", Suite::P256)] {
        let k = key(suite, 1);
        let pk = k.public_key();
        let sig = k.sign(&msg);
        if suite == Suite::Ed25519 {
            c.bench_function(&format!("{name}_sign"), |b| {
                b.iter(|| k.sign(black_box(&msg)))
            });
        }
        c.bench_function(&format!("{name}_verify"), |b| {
            b.iter(|| pk.verify(black_box(&msg), black_box(&sig)).is_ok())
        });
    }
    let keys: Vec<SigningKey> = (0..64).map(|i| key(Suite::Ed25519, i + 1)).collect();
    let pks: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
    let msgs: Vec<Vec<u8>> = (0..64).map(message).collect();
    let sigs: Vec<Vec<u8>> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items: Vec<BatchItem<'_>> = pks
        .iter()
        .zip(&msgs)
        .zip(&sigs)
        .map(|((key, msg), sig)| BatchItem { key, msg, sig })
        .collect();
    c.bench_function("ed25519_verify_batch_64", |b| {
        b.iter(|| verify_batch(black_box(&items)).is_ok())
    });
}

fn payment_decode(c: &mut Criterion) {
    let now = offpay_bench::sys::now();
    let store = offpay_store::open_sqlite_memory().expect("store");
    let issuer = setup::issuer(store, Suite::Ed25519, now).expect("issuer");
    let mut a = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "a", now).expect("a");
    let mut b = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "b", now).expect("b");
    let x = setup::pay(&mut a, &mut b, Amount::new(1250, issuer.currency()), now).expect("pay");
    c.bench_function("payment_decode", |bch| {
        bch.iter(|| Signed::<Payment>::decode(black_box(&x.payment)).is_ok())
    });
}

#[expect(clippy::many_single_char_names)] // lint-exception: short names follow the fixtures and formulas
fn pay_receive(c: &mut Criterion) {
    let t0 = offpay_bench::sys::now();
    let store = offpay_store::open_sqlite_memory().expect("store");
    let issuer = setup::issuer(store, Suite::Ed25519, t0).expect("issuer");
    let mut a = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "a", t0).expect("a");
    let mut b = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "b", t0).expect("b");
    let amount = Amount::new(1, issuer.currency());
    let mut t = t0;
    // Warm the peer certificate caches.
    setup::pay(&mut a, &mut b, amount, t).expect("pay");
    setup::pay(&mut b, &mut a, amount, t).expect("pay");
    let mut n: u64 = 0;
    c.bench_function("wallet_pay_receive", |bch| {
        bch.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                t = UnixSeconds(t.0 + STEP);
                if n.is_multiple_of(100) {
                    setup::sync(&issuer, &mut a, t).expect("sync");
                    setup::sync(&issuer, &mut b, t).expect("sync");
                }
                let (payer, payee) = if n.is_multiple_of(2) {
                    (&mut a, &mut b)
                } else {
                    (&mut b, &mut a)
                };
                let req = payee.request(amount, 300, t).expect("request");
                let start = Instant::now();
                let pay = payer.pay(&req, t).expect("pay");
                let rec = payee.receive(&pay, t).expect("receive");
                spent += start.elapsed();
                payer.confirm(&rec).expect("confirm");
            }
            spent
        })
    });
}

fn sync_100(c: &mut Criterion) {
    let t0 = offpay_bench::sys::now();
    let store = offpay_store::open_sqlite_memory().expect("store");
    let issuer = setup::issuer(store, Suite::Ed25519, t0).expect("issuer");
    let mut a = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "a", t0).expect("a");
    let mut b = setup::wallet(&issuer, MemoryVault::new(), Suite::Ed25519, "b", t0).expect("b");
    let amount = Amount::new(1, issuer.currency());
    let mut t = t0;
    c.bench_function("issuer_sync_100_entries", |bch| {
        bch.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                // 50 payments each way: a's report carries 100 entries.
                for i in 0..100u32 {
                    t = UnixSeconds(t.0 + STEP);
                    if i.is_multiple_of(2) {
                        setup::pay(&mut a, &mut b, amount, t).expect("pay");
                    } else {
                        setup::pay(&mut b, &mut a, amount, t).expect("pay");
                    }
                }
                let report = a.sync_report(t).expect("report");
                let start = Instant::now();
                let out = issuer.sync(&report, t).expect("sync");
                spent += start.elapsed();
                a.apply_sync_response(&out.response, t).expect("apply");
                setup::sync(&issuer, &mut b, t).expect("sync b");
            }
            spent
        })
    });
}

criterion_group! {
    name = hot;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = signatures, payment_decode, pay_receive, sync_100
}
criterion_main!(hot);
