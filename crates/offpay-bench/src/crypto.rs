//! The crypto bound: what one signature costs on one core, through
//! offpay-protocol's own [`SigningKey`], [`PublicKey`] and [`verify_batch`]
//! (the code paths the wallet and the issuer run).
//!
//! Two kinds of figure. The medians of [`CryptoFigures`] (Ed25519, P-256)
//! time [`OPS_PER_SAMPLE`] operations per sample over a few messages, as
//! before. The distributions of [`SuiteCrypto`] (every suite) time each
//! signature alone, over [`DIST_KEYS`] keys and a new message per
//! signature, and verify exactly those signatures: ML-DSA signing is
//! rejection-sampled (the number of tries depends on key and message) and
//! its verification time varies with the signature, so one message
//! repeated would hide the tail. They give the median, the 99th percentile
//! and the maximum.

use std::hint::black_box;
use std::time::Duration;

use offpay_protocol::suite::{BatchItem, verify_batch};
use offpay_protocol::{PublicKey, SigningKey, Suite};

use std::time::Instant;

use crate::stats::{median_us_per_op, percentile};

/// Bytes of each signed message: about a payment's COSE Sig_structure.
pub const MESSAGE_BYTES: usize = 300;
/// Signatures per batch verification (about one report's worth).
pub const BATCH: usize = 64;
/// Time spent measuring each figure.
pub const FIGURE_BUDGET: Duration = Duration::from_millis(300);
/// Single operations timed together in one sample (the medians).
pub const OPS_PER_SAMPLE: usize = 8;
/// Keys of each distribution (signatures go round them).
pub const DIST_KEYS: usize = 16;
/// Time spent on each suite's signing distribution (its verification
/// distribution verifies the same signatures once each).
pub const DIST_BUDGET: Duration = Duration::from_millis(600);
/// Fewest signatures of a distribution, whatever the budget (a p99 needs some).
pub const DIST_SAMPLES_MIN: usize = 200;
/// Most signatures of a distribution.
pub const DIST_SAMPLES_MAX: usize = 20_000;

/// One operation timed alone over many keys and messages, microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dist {
    /// Operations timed.
    pub samples: usize,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile (nearest rank).
    pub p99_us: f64,
    /// The slowest.
    pub max_us: f64,
}

impl Dist {
    fn of(samples: &[f64]) -> Dist {
        Dist {
            samples: samples.len(),
            p50_us: percentile(samples, 50.0).unwrap_or(f64::NAN),
            p99_us: percentile(samples, 99.0).unwrap_or(f64::NAN),
            max_us: percentile(samples, 100.0).unwrap_or(f64::NAN),
        }
    }
}

/// Sign and verify of one suite, each signature timed alone.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SuiteCrypto {
    /// The suite.
    pub suite: Suite,
    /// Signing, each over a message never signed before.
    pub sign: Dist,
    /// Verifying those very signatures, once each.
    pub verify: Dist,
}

/// Median cost of one signature operation, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CryptoFigures {
    /// Ed25519 sign.
    pub ed25519_sign_us: f64,
    /// Ed25519 verify (strict).
    pub ed25519_verify_us: f64,
    /// Ed25519 batch verification of [`BATCH`] signatures, per signature.
    pub ed25519_verify_batch_us: f64,
    /// ECDSA P-256 sign.
    pub p256_sign_us: f64,
    /// ECDSA P-256 verify.
    pub p256_verify_us: f64,
    /// Per suite (Ed25519, P-256, ML-DSA-44, in [`Suite::ALL`] order):
    /// median, p99 and maximum of single signatures.
    pub by_suite: [SuiteCrypto; 3],
}

impl CryptoFigures {
    /// Ed25519 signatures batch-verified per second on one core.
    pub fn verify_batch_per_s(&self) -> f64 {
        1e6 / self.ed25519_verify_batch_us
    }

    /// The distributions of `suite`.
    pub fn suite(&self, suite: Suite) -> &SuiteCrypto {
        match suite {
            Suite::Ed25519 => &self.by_suite[0],
            Suite::P256 => &self.by_suite[1],
            Suite::MlDsa44 => &self.by_suite[2],
        }
    }

    /// Median microseconds of one signature and one verification of
    /// `suite`, as the bounds use them: the batched medians for Ed25519 and
    /// P-256 (as before), the single-signature median for ML-DSA-44 (its
    /// cost varies with the message, so only the many-message figure is
    /// honest).
    pub fn sign_verify_us(&self, suite: Suite) -> (f64, f64) {
        match suite {
            Suite::Ed25519 => (self.ed25519_sign_us, self.ed25519_verify_us),
            Suite::P256 => (self.p256_sign_us, self.p256_verify_us),
            Suite::MlDsa44 => {
                let s = self.suite(suite);
                (s.sign.p50_us, s.verify.p50_us)
            }
        }
    }

    /// Signatures of `suite` one core verifies per second, as the
    /// reconciliation bound counts them: batch verification for Ed25519,
    /// single verification (`1e6 / verify median`) for the suites without
    /// a batch equation.
    pub fn verify_rate_per_s(&self, suite: Suite) -> f64 {
        match suite {
            Suite::Ed25519 => self.verify_batch_per_s(),
            _ => 1e6 / self.sign_verify_us(suite).1,
        }
    }
}

/// `n` distinct messages of [`MESSAGE_BYTES`].
fn messages(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            (0..MESSAGE_BYTES)
                .map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8)
                .collect()
        })
        .collect()
}

fn key(suite: Suite, i: usize) -> Result<SigningKey, String> {
    let mut seed = [0x11u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    SigningKey::from_seed(suite, &seed).map_err(|e| format!("test key: {e}"))
}

fn sign_verify(suite: Suite, budget: Duration) -> Result<(f64, f64), String> {
    let k = key(suite, 0)?;
    let pk = k.public_key();
    let msgs = messages(OPS_PER_SAMPLE);
    let sigs: Vec<Vec<u8>> = msgs.iter().map(|m| k.sign(m)).collect();
    for (m, s) in msgs.iter().zip(&sigs) {
        pk.verify(m, s)
            .map_err(|e| format!("{suite} self-check: {e}"))?;
    }
    let sign = median_us_per_op(budget, msgs.len(), || {
        for m in &msgs {
            black_box(k.sign(black_box(m)));
        }
    });
    let mut ok = true;
    let verify = median_us_per_op(budget, msgs.len(), || {
        for (m, s) in msgs.iter().zip(&sigs) {
            ok &= black_box(pk.verify(black_box(m), black_box(s))).is_ok();
        }
    });
    if !ok {
        return Err(format!("{suite}: a valid signature did not verify"));
    }
    Ok((sign, verify))
}

/// Median per-signature cost of [`verify_batch`] over [`BATCH`] signatures
/// by [`BATCH`] different keys.
pub fn verify_batch_us(budget: Duration) -> Result<f64, String> {
    let keys: Vec<SigningKey> = (0..BATCH)
        .map(|i| key(Suite::Ed25519, i))
        .collect::<Result<_, _>>()?;
    let pks: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
    let msgs = messages(BATCH);
    let sigs: Vec<Vec<u8>> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let items: Vec<BatchItem<'_>> = pks
        .iter()
        .zip(&msgs)
        .zip(&sigs)
        .map(|((key, msg), sig)| BatchItem { key, msg, sig })
        .collect();
    verify_batch(&items).map_err(|e| format!("batch self-check: {e}"))?;
    let mut ok = true;
    let us = median_us_per_op(budget, BATCH, || {
        ok &= black_box(verify_batch(black_box(&items))).is_ok();
    });
    if !ok {
        return Err("a valid batch did not verify".into());
    }
    Ok(us)
}

/// Sign new messages with [`DIST_KEYS`] keys in turn, each signature
/// timed alone, for about `budget` (within [`DIST_SAMPLES_MIN`] and
/// [`DIST_SAMPLES_MAX`] signatures); then verify each of those signatures
/// once, each timed alone. Every signature is checked.
pub fn distribution(suite: Suite, budget: Duration) -> Result<SuiteCrypto, String> {
    let keys: Vec<SigningKey> = (0..DIST_KEYS)
        .map(|i| key(suite, 100 + i))
        .collect::<Result<_, _>>()?;
    let pks: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
    let mut msg = messages(1).remove(0);
    // Warm-up: one signature per key (caches, lazy tables).
    for k in &keys {
        black_box(k.sign(&msg));
    }
    let mut signed: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut sign_us = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < budget || signed.len() < DIST_SAMPLES_MIN)
        && signed.len() < DIST_SAMPLES_MAX
    {
        let i = signed.len();
        // A new message every time: the signature's index in its first bytes.
        msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let k = i % DIST_KEYS;
        let t = Instant::now();
        let sig = black_box(keys[k].sign(black_box(&msg)));
        sign_us.push(t.elapsed().as_secs_f64() * 1e6);
        signed.push((k, msg.clone(), sig));
    }
    let mut verify_us = Vec::with_capacity(signed.len());
    for (k, m, sig) in &signed {
        let t = Instant::now();
        let r = black_box(pks[*k].verify(black_box(m), black_box(sig)));
        verify_us.push(t.elapsed().as_secs_f64() * 1e6);
        r.map_err(|e| format!("{suite}: a valid signature did not verify: {e}"))?;
    }
    Ok(SuiteCrypto {
        suite,
        sign: Dist::of(&sign_us),
        verify: Dist::of(&verify_us),
    })
}

/// Measure every figure, [`FIGURE_BUDGET`] each median and
/// [`DIST_BUDGET`] each suite's distributions.
pub fn measure() -> Result<CryptoFigures, String> {
    let (ed25519_sign_us, ed25519_verify_us) = sign_verify(Suite::Ed25519, FIGURE_BUDGET)?;
    let ed25519_verify_batch_us = verify_batch_us(FIGURE_BUDGET)?;
    let (p256_sign_us, p256_verify_us) = sign_verify(Suite::P256, FIGURE_BUDGET)?;
    let by_suite = [
        distribution(Suite::Ed25519, DIST_BUDGET)?,
        distribution(Suite::P256, DIST_BUDGET)?,
        distribution(Suite::MlDsa44, DIST_BUDGET)?,
    ];
    Ok(CryptoFigures {
        ed25519_sign_us,
        ed25519_verify_us,
        ed25519_verify_batch_us,
        p256_sign_us,
        p256_verify_us,
        by_suite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_sign_new_messages_and_verify_each() {
        for suite in Suite::ALL {
            let d = distribution(suite, Duration::ZERO).unwrap();
            assert_eq!(d.suite, suite);
            assert_eq!(d.sign.samples, DIST_SAMPLES_MIN);
            assert_eq!(d.verify.samples, DIST_SAMPLES_MIN);
            for x in [d.sign, d.verify] {
                assert!(0.0 < x.p50_us && x.p50_us <= x.p99_us && x.p99_us <= x.max_us);
            }
        }
    }
}
