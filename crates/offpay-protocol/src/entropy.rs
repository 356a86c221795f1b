//! Randomness is an input: every random byte offpay uses (signing keys, wallet
//! ids, nonces, enrollment tokens, CA sealing nonces, vault salts, posting ids)
//! is drawn from an [`Entropy`] source handed in by the caller, like time.
//!
//! Production code uses [`OsEntropy`] (the operating system's random source,
//! the default everywhere). [`SeededEntropy`] is a deterministic stream for
//! the simulator and tests only: the same seed and the same sequence of
//! requests give the same bytes, so one seed replays a whole run, ids, keys
//! and proofs included. It is **not** a secure random source for real money:
//! anyone who knows the seed knows every key.

use core::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// The random source failed (the operating system's source is unavailable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntropyError;

impl fmt::Display for EntropyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("random source failed")
    }
}

impl std::error::Error for EntropyError {}

/// A source of random bytes, shared by reference between threads.
pub trait Entropy: Send + Sync {
    /// Fill `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError>;
}

/// A shared handle to an entropy source (what the wallet, the issuer and the
/// store keep).
pub type SharedEntropy = Arc<dyn Entropy>;

/// `N` random bytes from `e`.
pub fn random<const N: usize>(e: &dyn Entropy) -> Result<[u8; N], EntropyError> {
    let mut out = [0u8; N];
    e.fill(&mut out)?;
    Ok(out)
}

/// The operating system's random source (`getrandom`): the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl OsEntropy {
    /// A shared handle to the operating system's source.
    pub fn shared() -> SharedEntropy {
        Arc::new(OsEntropy)
    }
}

impl Entropy for OsEntropy {
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError> {
        getrandom::fill(dest).map_err(|_| EntropyError)
    }
}

/// A deterministic stream for the simulator and tests only (never for real
/// keys): block `i` is `SHA-256("offpay seeded entropy" || seed || i)`, and
/// every request starts on a fresh block, so the bytes depend only on the
/// seed and the order and sizes of the requests.
pub struct SeededEntropy {
    seed: [u8; 32],
    block: AtomicU64,
}

impl fmt::Debug for SeededEntropy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededEntropy")
            .field("block", &self.block.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

const SEEDED_LABEL: &[u8] = b"offpay seeded entropy";

impl SeededEntropy {
    /// A stream from a 32-byte seed.
    pub fn new(seed: [u8; 32]) -> SeededEntropy {
        SeededEntropy {
            seed,
            block: AtomicU64::new(0),
        }
    }

    /// A stream from a 64-bit seed and a purpose label (so that two purposes
    /// of one run draw independent streams).
    pub fn from_u64(seed: u64, purpose: &str) -> SeededEntropy {
        let d = Sha256::new()
            .chain_update(SEEDED_LABEL)
            .chain_update(seed.to_be_bytes())
            .chain_update(purpose.as_bytes())
            .finalize();
        SeededEntropy::new(d.into())
    }

    /// A shared handle to a stream from a 64-bit seed and a purpose label.
    pub fn shared(seed: u64, purpose: &str) -> SharedEntropy {
        Arc::new(SeededEntropy::from_u64(seed, purpose))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError> {
        let blocks = dest.len().div_ceil(32) as u64;
        let first = self.block.fetch_add(blocks.max(1), Ordering::Relaxed);
        for (i, chunk) in dest.chunks_mut(32).enumerate() {
            let d = Sha256::new()
                .chain_update(SEEDED_LABEL)
                .chain_update(self.seed)
                .chain_update(first.wrapping_add(i as u64).to_be_bytes())
                .finalize();
            chunk.copy_from_slice(&d[..chunk.len()]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_deterministic_and_seed_dependent() {
        let a = SeededEntropy::from_u64(7, "x");
        let b = SeededEntropy::from_u64(7, "x");
        let (x1, x2): ([u8; 40], [u8; 40]) = (random(&a).unwrap(), random(&b).unwrap());
        assert_eq!(x1, x2);
        let y1: [u8; 16] = random(&a).unwrap();
        assert_ne!(&y1[..], &x1[..16], "the stream moves on");
        let c = SeededEntropy::from_u64(8, "x");
        let d = SeededEntropy::from_u64(7, "y");
        let (z1, z2): ([u8; 40], [u8; 40]) = (random(&c).unwrap(), random(&d).unwrap());
        assert_ne!(z1, x1);
        assert_ne!(z2, x1);
    }

    #[test]
    fn os_entropy_fills() {
        let a: [u8; 32] = random(&OsEntropy).unwrap();
        let b: [u8; 32] = random(&OsEntropy).unwrap();
        assert_ne!(a, b);
    }
}
