//! The root key sealed at rest under the operator's master key, in the same
//! format as the issuer's CA keys (`offpay-issuer/src/ca.rs`):
//! `OFPK || suite || nonce(24) || XChaCha20-Poly1305(seed)`, AAD = the first 5
//! bytes and a label (here `scheme-root`, so that an issuer's sealed key can
//! never be opened as the scheme root, nor the reverse).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use offpay_protocol::entropy::Entropy;
use offpay_protocol::{SigningKey, Suite};
use zeroize::Zeroizing;

use crate::error::SchemeError;

/// Length of the operator's master key.
pub const MASTER_KEY_BYTES: usize = 32;
/// The label bound into the seal of the scheme root key.
pub const ROOT_KEY_LABEL: &str = "scheme-root";

const SEAL_MAGIC: &[u8; 4] = b"OFPK";
const SEALED_BYTES: usize = 5 + 24 + 32 + 16;

/// Seal a key seed under `master`.
pub fn seal_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    key: &SigningKey,
    entropy: &dyn Entropy,
) -> Result<Vec<u8>, SchemeError> {
    let cipher = XChaCha20Poly1305::new(master.into());
    let nonce: [u8; 24] =
        offpay_protocol::entropy::random(entropy).map_err(|_| SchemeError::Randomness)?;
    let mut header = SEAL_MAGIC.to_vec();
    header.push(match key.suite() {
        Suite::Ed25519 => 0,
        Suite::P256 => 1,
    });
    let mut aad = header.clone();
    aad.extend_from_slice(label.as_bytes());
    let seed = key.to_seed();
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| SchemeError::MasterKey)?;
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open a sealed key: [`SchemeError::MasterKey`] for a wrong master key, a
/// wrong label or damaged bytes.
pub fn open_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    sealed: &[u8],
) -> Result<SigningKey, SchemeError> {
    if sealed.len() != SEALED_BYTES || &sealed[..4] != SEAL_MAGIC {
        return Err(SchemeError::MasterKey);
    }
    let suite = match sealed[4] {
        0 => Suite::Ed25519,
        1 => Suite::P256,
        _ => return Err(SchemeError::MasterKey),
    };
    let mut aad = sealed[..5].to_vec();
    aad.extend_from_slice(label.as_bytes());
    let cipher = XChaCha20Poly1305::new(master.into());
    let nonce: [u8; 24] = sealed[5..29]
        .try_into()
        .map_err(|_| SchemeError::MasterKey)?;
    let seed = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &sealed[29..],
                    aad: &aad,
                },
            )
            .map_err(|_| SchemeError::MasterKey)?,
    );
    let seed: &[u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| SchemeError::MasterKey)?;
    SigningKey::from_seed(suite, seed).map_err(|_| SchemeError::MasterKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let e = offpay_protocol::SeededEntropy::from_u64(1, "seal");
        let key = SigningKey::generate_with(Suite::Ed25519, &e).unwrap();
        let master = [9u8; 32];
        let sealed = seal_key(&master, ROOT_KEY_LABEL, &key, &e).unwrap();
        let back = open_key(&master, ROOT_KEY_LABEL, &sealed).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        assert_eq!(
            open_key(&[8u8; 32], ROOT_KEY_LABEL, &sealed).err(),
            Some(SchemeError::MasterKey)
        );
        assert_eq!(
            open_key(&master, "root", &sealed).err(),
            Some(SchemeError::MasterKey)
        );
        let mut bad = sealed.clone();
        bad[40] ^= 1;
        assert_eq!(
            open_key(&master, ROOT_KEY_LABEL, &bad).err(),
            Some(SchemeError::MasterKey)
        );
        assert_eq!(
            open_key(&master, ROOT_KEY_LABEL, &sealed[..10]).err(),
            Some(SchemeError::MasterKey)
        );
    }
}
