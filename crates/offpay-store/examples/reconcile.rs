//! Reconciliation throughput: N wallets make P offline payments among
//! themselves (real TAs, in memory), then every wallet syncs, so each payment
//! is reported by both its payer and its payee. Prints payments settled per
//! second and the Ed25519 batch-verify bound measured in the same run.
//!
//! `cargo run --release -p offpay-store --example reconcile -- [sqlite|postgres] [wallets] [payments] [threads]`

use std::time::Instant;

use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::suite::{BatchItem, verify_batch};
use offpay_protocol::{Amount, Currency, SigningKey, Suite, UnixSeconds};
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

const T0: UnixSeconds = UnixSeconds(1_795_000_000);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args
        .get(1)
        .map(String::as_str)
        .unwrap_or("sqlite")
        .to_string();
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let p: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let threads: usize = args.get(4).and_then(|s| s.parse().ok()).unwrap_or(2);
    // Payments per wallet between two syncs (each wallet pays about half of them).
    let per_round: usize = args.get(5).and_then(|s| s.parse().ok()).unwrap_or(200);
    let eur = Currency::new("EUR").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = match backend.as_str() {
        "postgres" => {
            let url = std::env::var("OFFPAY_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let schema = format!("bench_{}", std::process::id());
            let s = offpay_store::open_postgres_schema(&url, &schema).unwrap();
            eprintln!("postgres schema {schema} (drop it afterwards)");
            s
        }
        _ => offpay_store::open_sqlite(&dir.path().join("bench.sqlite")).unwrap(),
    };
    let mut config = IssuerConfig::default_for(eur);
    config.policy.max_offline_payments = 10_000;
    config.policy.max_log_entries = 4_000;
    config.policy.max_offline_spend_minor = u64::MAX / 4;
    let issuer = Issuer::init(store, &[1u8; 32], &config, T0).unwrap();

    let t = Instant::now();
    let mut wallets: Vec<Wallet<MemoryVault>> = (0..n)
        .map(|k| {
            let c = format!("c{k}");
            issuer.create_customer(&c, &c, T0).unwrap();
            issuer
                .deposit(&c, Amount::new(100_000, eur), &c, T0)
                .unwrap();
            let token = issuer.create_enrollment_token(&c, T0).unwrap();
            let mut w = Wallet::create(
                MemoryVault::new(),
                Suite::Ed25519,
                issuer.root_certificate().der(),
                T0,
            )
            .unwrap();
            let e = issuer.enroll(&token, &w.csr().unwrap(), T0).unwrap();
            w.enroll(
                &e.issuer_certificate,
                &e.certificate,
                &e.policy,
                Some(&e.crl),
                T0,
            )
            .unwrap();
            let v = issuer
                .load(&w.wallet_id(), Amount::new(50_000, eur), &c, T0)
                .unwrap();
            w.apply_voucher(&v, T0).unwrap();
            w
        })
        .collect();
    eprintln!(
        "{n} wallets enrolled and loaded in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The bound: Ed25519 batch verification of 2 signatures per payment (each payment is reported twice).
    let key = SigningKey::from_seed(Suite::Ed25519, &[3; 32]).unwrap();
    let pk = key.public_key();
    let msgs: Vec<Vec<u8>> = (0..64u32).map(|i| i.to_be_bytes().repeat(40)).collect();
    let sigs: Vec<[u8; 64]> = msgs.iter().map(|m| key.sign(m)).collect();
    let items: Vec<BatchItem<'_>> = msgs
        .iter()
        .zip(&sigs)
        .map(|(m, s)| BatchItem {
            key: &pk,
            msg: m,
            sig: s,
        })
        .collect();
    let t = Instant::now();
    let rounds = 200;
    for _ in 0..rounds {
        verify_batch(&items).unwrap();
    }
    let per_s = (rounds * items.len()) as f64 / t.elapsed().as_secs_f64();
    let bound = per_s
        * threads.min(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        ) as f64
        / 2.0;

    // Payments are made in rounds of about `per_round` payments per wallet; after
    // each round every wallet syncs (timed), as wallets would reconnect now and then.
    let rounds_n = p.div_ceil(n * per_round / 2).max(1);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut made = 0usize;
    let mut gen_secs = 0.0;
    let mut secs = 0.0;
    let mut cpu = 0.0;
    let cpu_now = || -> f64 {
        let st = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = st.rsplit_once(')').unwrap().1.split_whitespace().collect();
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
    };
    let mut settled = 0usize;
    let mut report_bytes = 0usize;
    for round in 0..rounds_n {
        let t = Instant::now();
        let in_round = (p - made).min(n * per_round / 2);
        for k in 0..in_round {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let a = (x % n as u64) as usize;
            let b = ((x >> 20) % (n as u64 - 1)) as usize;
            let b = if b >= a { b + 1 } else { b };
            let now = T0.plus(10 + (round * 1000 + k / 1000) as u64);
            let (pa, pb) = if a < b {
                let (l, r) = wallets.split_at_mut(b);
                (&mut l[a], &mut r[0])
            } else {
                let (l, r) = wallets.split_at_mut(a);
                (&mut r[0], &mut l[b])
            };
            let req = pb.request(Amount::new(1 + x % 50, eur), 300, now).unwrap();
            let pay = pa.pay(&req, now).unwrap();
            let rec = pb.receive(&pay, now).unwrap();
            pa.confirm(&rec).unwrap();
        }
        made += in_round;
        let now = T0.plus(900 + round as u64 * 1000);
        let reports: Vec<Vec<u8>> = wallets
            .iter_mut()
            .map(|w| w.sync_report(now).unwrap())
            .collect();
        report_bytes += reports.iter().map(Vec::len).sum::<usize>();
        gen_secs += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let c0 = cpu_now();
        let chunks: Vec<&[Vec<u8>]> = reports.chunks(reports.len().div_ceil(threads)).collect();
        let responses: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
            let hs: Vec<_> = chunks
                .iter()
                .map(|c| {
                    s.spawn(|| {
                        c.iter()
                            .map(|r| {
                                let o = issuer.sync(r, now).unwrap();
                                (o.settled, o.response)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        secs += t.elapsed().as_secs_f64();
        cpu += cpu_now() - c0;
        for (w, (s, r)) in wallets.iter_mut().zip(responses) {
            settled += s;
            w.apply_sync_response(&r, now).unwrap();
        }
        eprintln!(
            "round {}/{rounds_n}: {made} payments, reconcile {secs:.1} s so far",
            round + 1
        );
    }
    eprintln!("{p} offline payments made (and reports built) in {gen_secs:.1} s");
    let inv = issuer.invariants().unwrap();
    assert!(inv.ok, "{:?}", inv.violations);
    assert_eq!(settled, p, "every payment settled exactly once");
    let rate = p as f64 / secs;
    println!("backend={backend} wallets={n} payments={p} threads={threads}");
    println!(
        "reports: {} bytes total, {:.0} bytes per payment-report",
        report_bytes,
        report_bytes as f64 / (2 * p) as f64
    );
    println!(
        "reconciled {p} payments (each reported by payer and payee) in {secs:.2} s: {rate:.0} payments/s"
    );
    println!(
        "ed25519 batch verify: {per_s:.0} signatures/s per core; bound for {threads} thread(s) at 2 signatures per payment: {bound:.0} payments/s"
    );
    println!("ratio to the bound: {:.2}", rate / bound);
    println!(
        "CPU in reconcile: {cpu:.2} s ({:.0} us per payment)",
        cpu * 1e6 / p as f64
    );
}
