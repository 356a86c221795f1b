//! The root key sealed at rest under the operator's master key, in the one
//! format of every sealed key ([`offpay_protocol::seal`], as the issuer's CA
//! keys), under the label `scheme-root`, so that an issuer's sealed key can
//! never be opened as the scheme root, nor the reverse.

use offpay_protocol::SigningKey;
use offpay_protocol::entropy::Entropy;
use offpay_protocol::seal::{self, SealError};

use crate::error::SchemeError;

/// Length of the operator's master key.
pub use offpay_protocol::seal::MASTER_KEY_BYTES;
/// The label bound into the seal of the scheme root key.
pub const ROOT_KEY_LABEL: &str = "scheme-root";

/// Seal a key seed under `master`.
pub fn seal_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    key: &SigningKey,
    entropy: &dyn Entropy,
) -> Result<Vec<u8>, SchemeError> {
    seal::seal_key(master, label, key, entropy).map_err(|e| match e {
        SealError::Randomness => SchemeError::Randomness,
        SealError::Open => SchemeError::MasterKey,
    })
}

/// Open a sealed key: [`SchemeError::MasterKey`] for a wrong master key, a
/// wrong label or damaged bytes.
pub fn open_key(
    master: &[u8; MASTER_KEY_BYTES],
    label: &str,
    sealed: &[u8],
) -> Result<SigningKey, SchemeError> {
    seal::open_key(master, label, sealed).map_err(|_| SchemeError::MasterKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use offpay_protocol::Suite;

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
