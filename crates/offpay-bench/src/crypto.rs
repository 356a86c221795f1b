//! The crypto bound: what one signature costs on one core, through
//! offpay-protocol's own [`SigningKey`], [`PublicKey`] and [`verify_batch`]
//! (the code paths the wallet and the issuer run).

use std::hint::black_box;
use std::time::Duration;

use offpay_protocol::suite::{BatchItem, verify_batch};
use offpay_protocol::{PublicKey, SigningKey, Suite};

use crate::stats::median_us_per_op;

/// Bytes of each signed message: about a payment's COSE Sig_structure.
pub const MESSAGE_BYTES: usize = 300;
/// Signatures per batch verification (about one report's worth).
pub const BATCH: usize = 64;
/// Time spent measuring each figure.
pub const FIGURE_BUDGET: Duration = Duration::from_millis(300);
/// Single operations timed together in one sample.
const OPS_PER_SAMPLE: usize = 8;

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
}

impl CryptoFigures {
    /// Ed25519 signatures batch-verified per second on one core.
    pub fn verify_batch_per_s(&self) -> f64 {
        1e6 / self.ed25519_verify_batch_us
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

/// Measure every figure, [`FIGURE_BUDGET`] each.
pub fn measure() -> Result<CryptoFigures, String> {
    let (ed25519_sign_us, ed25519_verify_us) = sign_verify(Suite::Ed25519, FIGURE_BUDGET)?;
    let ed25519_verify_batch_us = verify_batch_us(FIGURE_BUDGET)?;
    let (p256_sign_us, p256_verify_us) = sign_verify(Suite::P256, FIGURE_BUDGET)?;
    Ok(CryptoFigures {
        ed25519_sign_us,
        ed25519_verify_us,
        ed25519_verify_batch_us,
        p256_sign_us,
        p256_verify_us,
    })
}
