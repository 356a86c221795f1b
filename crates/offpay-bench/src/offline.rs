//! Offline payment latency: two wallets in one process pay each other,
//! request → pay → receive → confirm, each payment timed. Once with the
//! vault in memory ([`MemoryVault`]) and once sealed on disk
//! ([`SealedFileVault`], real fsync). For each suite: the wallets and the
//! issuer's CA keys of one suite ([`measure`] for Ed25519, P-256 and
//! ML-DSA-44 in turn).

use std::path::Path;
use std::time::Instant;

use offpay_issuer::Issuer;
use offpay_protocol::{Amount, Suite, UnixSeconds};
use offpay_store::AnyStore;
use offpay_wallet::Wallet;
use offpay_wallet::vault::{KdfParams, MemoryVault, SealedFileVault, Vault};

use crate::setup::{self, err};
use crate::stats::percentile;
use crate::sys;

/// Untimed payments first (both directions), so that both wallets have
/// cached each other's certificate.
pub const WARMUP_PAYMENTS: usize = 10;
/// Both wallets sync with the issuer (untimed) after this many payments, so
/// their logs stay the size they would be between two syncs.
pub const SYNC_EVERY: usize = 100;
/// Seconds the simulated clock advances per payment (a busy checkout lane):
/// a request expires after 30 payments, so the payer's list of paid requests
/// stays small, as on a real device.
pub const SECONDS_PER_PAYMENT: u64 = 10;
/// Minor units of each payment.
pub const AMOUNT_MINOR: u64 = 100;
/// PIN of the sealed vaults.
const PIN: &[u8] = b"4711";
/// Device secret of the sealed vaults.
const DEVICE_SECRET: [u8; 32] = [0x5d; 32];

/// What the offline part measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OfflineFigures {
    /// The wallets' (and the issuer CA's) suite.
    pub suite: Suite,
    /// Timed payments per variant.
    pub payments: usize,
    /// In memory: median microseconds per payment.
    pub memory_p50_us: f64,
    /// In memory: 99th percentile.
    pub memory_p99_us: f64,
    /// Sealed on disk: median microseconds per payment.
    pub durable_p50_us: f64,
    /// Sealed on disk: 99th percentile.
    pub durable_p99_us: f64,
    /// Median microseconds of one atomic durable write of 4 KiB in the same
    /// directory, 50 writes spread over the on-disk payments.
    pub atomic_write_us: f64,
}

/// Time `payments` payments between `a` and `b`, alternating direction;
/// `between(j)` runs (untimed) after timed payment `j`.
fn run<V: Vault>(
    issuer: &Issuer<AnyStore>,
    a: &mut Wallet<V>,
    b: &mut Wallet<V>,
    payments: usize,
    t0: UnixSeconds,
    between: &mut dyn FnMut(usize) -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let amount = Amount::new(AMOUNT_MINOR, issuer.currency());
    let mut t = t0;
    let mut samples = Vec::with_capacity(payments);
    let mut settled = 0;
    for i in 0..WARMUP_PAYMENTS + payments {
        let timed = i >= WARMUP_PAYMENTS;
        if let Some(j) = i.checked_sub(WARMUP_PAYMENTS)
            && j % SYNC_EVERY == 0
        {
            settled += setup::sync(issuer, a, t)?;
            settled += setup::sync(issuer, b, t)?;
        }
        t = t.plus(SECONDS_PER_PAYMENT);
        let start = Instant::now();
        if i.is_multiple_of(2) {
            setup::pay(a, b, amount, t)?;
        } else {
            setup::pay(b, a, amount, t)?;
        }
        if timed {
            samples.push(start.elapsed().as_secs_f64() * 1e6);
            between(i - WARMUP_PAYMENTS)?;
        }
    }
    settled += setup::sync(issuer, a, t)?;
    settled += setup::sync(issuer, b, t)?;
    setup::check_invariants(issuer)?;
    if settled != WARMUP_PAYMENTS + payments {
        return Err(format!(
            "offline part: {settled} payments settled, expected {}",
            WARMUP_PAYMENTS + payments
        ));
    }
    Ok(samples)
}

fn p50_p99(samples: &[f64]) -> (f64, f64) {
    (
        percentile(samples, 50.0).unwrap_or(f64::NAN),
        percentile(samples, 99.0).unwrap_or(f64::NAN),
    )
}

/// Measure both variants for each suite of [`Suite::ALL`], in that order.
pub fn measure_all(payments: usize, base: &Path) -> Result<Vec<OfflineFigures>, String> {
    Suite::ALL
        .into_iter()
        .map(|suite| measure(suite, payments, base))
        .collect()
}

/// Measure both variants with wallets and CA keys of `suite`; the sealed
/// vaults and the atomic-write probe live in a fresh directory under `base`.
pub fn measure(suite: Suite, payments: usize, base: &Path) -> Result<OfflineFigures, String> {
    let t0 = sys::now();
    let store = offpay_store::open_sqlite_memory().map_err(err("in-memory store"))?;
    let issuer = setup::issuer(store, suite, t0)?;

    let mut a = setup::wallet(&issuer, MemoryVault::new(), suite, "mem-a", t0)?;
    let mut b = setup::wallet(&issuer, MemoryVault::new(), suite, "mem-b", t0)?;
    let (memory_p50_us, memory_p99_us) = p50_p99(&run(
        &issuer,
        &mut a,
        &mut b,
        payments,
        t0,
        &mut |_| Ok(()),
    )?);

    let dir = tempfile::Builder::new()
        .prefix("offpay-bench-offline-")
        .tempdir_in(base)
        .map_err(err(format!("temporary directory in {}", base.display())))?;
    let vault = |name: &str| -> Result<SealedFileVault, String> {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).map_err(err(format!("create {}", d.display())))?;
        SealedFileVault::create(&d, PIN, &DEVICE_SECRET, KdfParams::TEST)
            .map_err(err("sealed vault"))
    };
    let t1 = t0.plus(SECONDS_PER_PAYMENT * (WARMUP_PAYMENTS + payments + 1) as u64);
    let mut a = setup::wallet(&issuer, vault("a")?, suite, "disk-a", t1)?;
    let mut b = setup::wallet(&issuer, vault("b")?, suite, "disk-b", t1)?;
    // The atomic writes are timed in the same directory, spread over the
    // on-disk payments (the disk's load changes over time: the bound must
    // see the same disk the payments saw).
    let probe_err = || err(format!("atomic write in {}", dir.path().display()));
    let mut probe = sys::AtomicWriteProbe::new(dir.path()).map_err(probe_err())?;
    let every = (payments / sys::ATOMIC_WRITE_REPS).max(1);
    let samples = run(&issuer, &mut a, &mut b, payments, t1, &mut |j| {
        if j % every == 0 && probe.count() < sys::ATOMIC_WRITE_REPS {
            probe.sample().map_err(probe_err())?;
        }
        Ok(())
    })?;
    let (durable_p50_us, durable_p99_us) = p50_p99(&samples);
    while probe.count() < sys::ATOMIC_WRITE_REPS {
        probe.sample().map_err(probe_err())?;
    }
    let atomic_write_us = probe.finish().map_err(probe_err())?;
    Ok(OfflineFigures {
        suite,
        payments,
        memory_p50_us,
        memory_p99_us,
        durable_p50_us,
        durable_p99_us,
        atomic_write_us,
    })
}
