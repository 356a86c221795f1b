//! A signing key sealed at rest under an operator's 32-byte master key: the
//! issuer's CA keys and the scheme's root key use this one format,
//! `OFPK || suite || nonce(24) || XChaCha20-Poly1305(seed)`, with AAD = the
//! first 5 bytes and a label naming the key's role (so that a sealed key can
//! never be opened as a key of another role). Pure computation: the caller
//! stores the bytes and supplies the randomness.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::entropy::{Entropy, random};
use crate::suite::{SigningKey, Suite};

/// Length of the operator's master key.
pub const MASTER_KEY_BYTES: usize = 32;
/// Length of a sealed key.
pub const SEALED_KEY_BYTES: usize = 5 + 24 + 32 + 16;

const SEAL_MAGIC: &[u8; 4] = b"OFPK";

/// Why a key could not be sealed or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// The random source failed (sealing).
    Randomness,
    /// Wrong master key, wrong label, or damaged bytes (opening).
    Open,
}

impl core::fmt::Display for SealError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            SealError::Randomness => "random source failed",
            SealError::Open => "sealed key does not open (wrong master key, label or bytes)",
        })
    }
}
impl std::error::Error for SealError {}

fn aad(header: &[u8], label: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(label.as_bytes());
    aad
}

/// Seal `key`'s seed under `master` for the role `label`.
pub fn seal_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    key: &SigningKey,
    entropy: &dyn Entropy,
) -> Result<Vec<u8>, SealError> {
    let cipher = XChaCha20Poly1305::new(master.into());
    let nonce: [u8; 24] = random(entropy).map_err(|_| SealError::Randomness)?;
    let mut header = SEAL_MAGIC.to_vec();
    header.push(match key.suite() {
        Suite::Ed25519 => 0,
        Suite::P256 => 1,
        Suite::MlDsa44 => 2,
    });
    let seed = key.to_seed();
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &aad(&header, label),
            },
        )
        .map_err(|_| SealError::Open)?;
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open a key sealed by [`seal_key`] under `master` for the role `label`.
pub fn open_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    sealed: &[u8],
) -> Result<SigningKey, SealError> {
    if sealed.len() != SEALED_KEY_BYTES || &sealed[..4] != SEAL_MAGIC {
        return Err(SealError::Open);
    }
    let suite = match sealed[4] {
        0 => Suite::Ed25519,
        1 => Suite::P256,
        2 => Suite::MlDsa44,
        _ => return Err(SealError::Open),
    };
    let cipher = XChaCha20Poly1305::new(master.into());
    let nonce: [u8; 24] = sealed[5..29].try_into().map_err(|_| SealError::Open)?;
    let seed = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[29..],
                    aad: &aad(&sealed[..5], label),
                },
            )
            .map_err(|_| SealError::Open)?,
    );
    let seed: &[u8; 32] = seed.as_slice().try_into().map_err(|_| SealError::Open)?;
    SigningKey::from_seed(suite, seed).map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededEntropy;

    #[test]
    fn round_trip_and_every_refusal() {
        let e = SeededEntropy::from_u64(1, "seal");
        for suite in Suite::ALL {
            let key = SigningKey::generate_with(suite, &e).unwrap();
            let master = [9u8; 32];
            let sealed = seal_key(&master, "root", &key, &e).unwrap();
            assert_eq!(sealed.len(), SEALED_KEY_BYTES);
            let back = open_key(&master, "root", &sealed).unwrap();
            assert_eq!(back.public_key(), key.public_key());
            assert_eq!(
                open_key(&[8u8; 32], "root", &sealed).err(),
                Some(SealError::Open)
            );
            assert_eq!(
                open_key(&master, "issuer", &sealed).err(),
                Some(SealError::Open)
            );
            for i in 0..sealed.len() {
                let mut bad = sealed.clone();
                bad[i] ^= 1;
                assert_eq!(
                    open_key(&master, "root", &bad).err(),
                    Some(SealError::Open),
                    "byte {i}"
                );
            }
            assert_eq!(
                open_key(&master, "root", &sealed[..10]).err(),
                Some(SealError::Open)
            );
        }
    }
}
