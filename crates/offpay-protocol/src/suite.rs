//! Signature suites: Ed25519 (default) and ECDSA P-256 with SHA-256.
//!
//! The suite is named in every key, certificate and message (the COSE `alg`
//! header). Signatures are carried in their COSE form: 64 bytes for both
//! suites (Ed25519 `R || S`, P-256 `r || s`). X.509 uses the DER form for
//! ECDSA; [`crate::pki`] converts.

use core::fmt;

use ed25519_dalek as ed;
use p256::ecdsa as ec;
use signature::{Signer as _, Verifier};
use zeroize::Zeroizing;

/// Length in bytes of a signature in COSE form (both suites).
pub const SIGNATURE_BYTES: usize = 64;
/// Length in bytes of a secret key seed (both suites).
pub const SECRET_KEY_BYTES: usize = 32;

/// A signature algorithm offpay speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// Ed25519 (RFC 8032), COSE alg EdDSA (-8). The default.
    Ed25519,
    /// ECDSA over P-256 with SHA-256, COSE alg ES256 (-7): what secure elements and HSMs offer.
    P256,
}

impl Suite {
    /// The COSE algorithm identifier (RFC 9053).
    pub const fn cose_alg(self) -> i64 {
        match self {
            Suite::Ed25519 => -8,
            Suite::P256 => -7,
        }
    }
    /// The suite for a COSE algorithm identifier.
    pub fn from_cose_alg(alg: i64) -> Option<Suite> {
        match alg {
            -8 => Some(Suite::Ed25519),
            -7 => Some(Suite::P256),
            _ => None,
        }
    }
    /// A short name for logs, configuration and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::P256 => "p256",
        }
    }
    /// Parse [`Suite::name`].
    pub fn from_name(s: &str) -> Option<Suite> {
        match s {
            "ed25519" => Some(Suite::Ed25519),
            "p256" => Some(Suite::P256),
            _ => None,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key or signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    /// The public key bytes are not a valid point (or a weak Ed25519 key).
    InvalidPublicKey,
    /// The secret key bytes are out of range for the suite.
    InvalidSecretKey,
    /// The signature bytes are malformed or do not verify.
    BadSignature,
    /// The signature's suite is not the key's suite.
    SuiteMismatch,
    /// The operating system's random source failed.
    Randomness,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureError::InvalidPublicKey => "invalid public key",
            SignatureError::InvalidSecretKey => "invalid secret key",
            SignatureError::BadSignature => "signature does not verify",
            SignatureError::SuiteMismatch => "signature suite does not match the key",
            SignatureError::Randomness => "random source failed",
        })
    }
}
impl std::error::Error for SignatureError {}

/// A verifying (public) key of some suite.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519: 32 bytes.
    Ed25519(ed::VerifyingKey),
    /// P-256: the uncompressed SEC1 point (65 bytes) on the wire.
    P256(ec::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey({}, {})",
            self.suite(),
            crate::types::hex_lower(&self.to_bytes())
        )
    }
}

impl PublicKey {
    /// The key's suite.
    pub fn suite(&self) -> Suite {
        match self {
            PublicKey::Ed25519(_) => Suite::Ed25519,
            PublicKey::P256(_) => Suite::P256,
        }
    }

    /// Raw public key bytes: Ed25519 32 bytes, P-256 uncompressed SEC1 (65 bytes).
    /// This is also the content of the X.509 `subjectPublicKey` BIT STRING.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
            PublicKey::P256(k) => k.to_sec1_bytes().to_vec(),
        }
    }

    /// Parse raw public key bytes of a suite. Weak (small-order) Ed25519 keys are refused.
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<PublicKey, SignatureError> {
        match suite {
            Suite::Ed25519 => {
                let b: &[u8; 32] = bytes
                    .try_into()
                    .map_err(|_| SignatureError::InvalidPublicKey)?;
                let k = ed::VerifyingKey::from_bytes(b)
                    .map_err(|_| SignatureError::InvalidPublicKey)?;
                if k.is_weak() {
                    return Err(SignatureError::InvalidPublicKey);
                }
                Ok(PublicKey::Ed25519(k))
            }
            Suite::P256 => {
                if bytes.len() != 65 || bytes[0] != 4 {
                    return Err(SignatureError::InvalidPublicKey);
                }
                ec::VerifyingKey::from_sec1_bytes(bytes)
                    .map(PublicKey::P256)
                    .map_err(|_| SignatureError::InvalidPublicKey)
            }
        }
    }

    /// Verify a COSE-form signature over `msg`. Ed25519 uses strict verification.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        match self {
            PublicKey::Ed25519(k) => {
                let s = ed::Signature::from_slice(sig).map_err(|_| SignatureError::BadSignature)?;
                k.verify_strict(msg, &s)
                    .map_err(|_| SignatureError::BadSignature)
            }
            PublicKey::P256(k) => {
                let s = ec::Signature::from_slice(sig).map_err(|_| SignatureError::BadSignature)?;
                k.verify(msg, &s).map_err(|_| SignatureError::BadSignature)
            }
        }
    }
}

/// A signing (secret) key of some suite. The secret never leaves the vault
/// that holds it except sealed; `Debug` does not print it.
#[derive(Clone)]
pub enum SigningKey {
    /// Ed25519.
    Ed25519(ed::SigningKey),
    /// ECDSA P-256 (deterministic nonces, RFC 6979).
    P256(ec::SigningKey),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey({}, public {:?})",
            self.suite(),
            self.public_key()
        )
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random source.
    pub fn generate(suite: Suite) -> Result<SigningKey, SignatureError> {
        SigningKey::generate_with(suite, &crate::entropy::OsEntropy)
    }

    /// A fresh key from `entropy`.
    pub fn generate_with(
        suite: Suite,
        entropy: &dyn crate::entropy::Entropy,
    ) -> Result<SigningKey, SignatureError> {
        for _ in 0..8 {
            let mut seed = Zeroizing::new([0u8; SECRET_KEY_BYTES]);
            entropy
                .fill(seed.as_mut())
                .map_err(|_| SignatureError::Randomness)?;
            // A P-256 seed is out of range with probability ~2^-32; draw again.
            if let Ok(k) = SigningKey::from_seed(suite, &seed) {
                return Ok(k);
            }
        }
        Err(SignatureError::Randomness)
    }

    /// The key for a 32-byte seed (Ed25519 secret key, or P-256 scalar).
    pub fn from_seed(
        suite: Suite,
        seed: &[u8; SECRET_KEY_BYTES],
    ) -> Result<SigningKey, SignatureError> {
        match suite {
            Suite::Ed25519 => Ok(SigningKey::Ed25519(ed::SigningKey::from_bytes(seed))),
            Suite::P256 => ec::SigningKey::from_slice(seed)
                .map(SigningKey::P256)
                .map_err(|_| SignatureError::InvalidSecretKey),
        }
    }

    /// The 32-byte seed, for sealing inside a vault only.
    pub fn to_seed(&self) -> Zeroizing<[u8; SECRET_KEY_BYTES]> {
        match self {
            SigningKey::Ed25519(k) => Zeroizing::new(k.to_bytes()),
            SigningKey::P256(k) => {
                let mut out = Zeroizing::new([0u8; SECRET_KEY_BYTES]);
                out.copy_from_slice(&k.to_bytes());
                out
            }
        }
    }

    /// The key's suite.
    pub fn suite(&self) -> Suite {
        match self {
            SigningKey::Ed25519(_) => Suite::Ed25519,
            SigningKey::P256(_) => Suite::P256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            SigningKey::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// Sign `msg`; the COSE-form signature (64 bytes). Deterministic for both suites.
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_BYTES] {
        match self {
            SigningKey::Ed25519(k) => k.sign(msg).to_bytes(),
            SigningKey::P256(k) => {
                let s: ec::Signature = k.sign(msg);
                let mut out = [0u8; SIGNATURE_BYTES];
                out.copy_from_slice(&s.to_bytes());
                out
            }
        }
    }
}

/// Why a [`Signer`] could not sign. A key in process always signs; a key
/// held in a device (a PKCS#11 HSM, a secure element) may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignError {
    /// The device holding the key failed or refused. `what` names the step
    /// (open session, log in, find key, sign), `code` is the device's own
    /// return value (a PKCS#11 `CKR_*`; 0 when it gave none).
    Device {
        /// The step that failed.
        what: &'static str,
        /// The device's return value.
        code: u64,
    },
    /// The device returned a signature that does not verify with its public
    /// key, or one of the wrong length for the suite: nothing is released.
    BadOutput,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Device { what, code } => {
                write!(f, "signing device failed at {what} (code {code:#x})")
            }
            SignError::BadOutput => f.write_str("signing device returned an invalid signature"),
        }
    }
}
impl std::error::Error for SignError {}

/// A key that signs: an in-process [`SigningKey`], or a key held in a device
/// (a PKCS#11 token, a secure element) that never leaves it. Everything that
/// issuers and the scheme sign (certificates, CRLs, requests, envelopes) can
/// be signed through one.
pub trait Signer: Send + Sync {
    /// The key's suite.
    fn suite(&self) -> Suite;
    /// The matching public key.
    fn public_key(&self) -> PublicKey;
    /// Sign `msg`: the signature in COSE form for the suite.
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError>;
}

impl Signer for SigningKey {
    fn suite(&self) -> Suite {
        SigningKey::suite(self)
    }
    fn public_key(&self) -> PublicKey {
        SigningKey::public_key(self)
    }
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.sign(msg).to_vec())
    }
}

/// One signature to check in a batch.
pub struct BatchItem<'a> {
    /// The signer's key.
    pub key: &'a PublicKey,
    /// The signed bytes.
    pub msg: &'a [u8],
    /// The COSE-form signature.
    pub sig: &'a [u8],
}

/// Verify many signatures at once. Ed25519 signatures are checked together with
/// one multi-scalar multiplication (about twice the single-verify rate); P-256
/// ones one by one. `Ok` only if every signature verifies; on `Err` the caller
/// re-checks one by one to name the culprit ([`verify_each`]).
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), SignatureError> {
    let mut msgs: Vec<&[u8]> = Vec::with_capacity(items.len());
    let mut sigs = Vec::with_capacity(items.len());
    let mut keys = Vec::with_capacity(items.len());
    for it in items {
        match it.key {
            PublicKey::Ed25519(k) => {
                let s =
                    ed::Signature::from_slice(it.sig).map_err(|_| SignatureError::BadSignature)?;
                msgs.push(it.msg);
                sigs.push(s);
                keys.push(*k);
            }
            PublicKey::P256(_) => it.key.verify(it.msg, it.sig)?,
        }
    }
    match msgs.len() {
        0 => Ok(()),
        1 => PublicKey::Ed25519(keys[0]).verify(msgs[0], &sigs[0].to_bytes()),
        _ => ed::verify_batch(&msgs, &sigs, &keys).map_err(|_| SignatureError::BadSignature),
    }
}

/// Verify each signature alone; one result per item, in order.
pub fn verify_each(items: &[BatchItem<'_>]) -> Vec<Result<(), SignatureError>> {
    items
        .iter()
        .map(|it| it.key.verify(it.msg, it.sig))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_both_suites() {
        for suite in [Suite::Ed25519, Suite::P256] {
            let k = SigningKey::from_seed(suite, &[7u8; 32]).unwrap();
            let sig = k.sign(b"hello");
            let pk = k.public_key();
            pk.verify(b"hello", &sig).unwrap();
            assert_eq!(pk.verify(b"hellp", &sig), Err(SignatureError::BadSignature));
            let pk2 = PublicKey::from_bytes(suite, &pk.to_bytes()).unwrap();
            assert_eq!(pk, pk2);
            assert_eq!(Suite::from_cose_alg(suite.cose_alg()), Some(suite));
            // Deterministic signatures: same key, same message, same bytes.
            assert_eq!(sig, k.sign(b"hello"));
            let k2 = SigningKey::from_seed(suite, &k.to_seed()).unwrap();
            assert_eq!(k2.public_key(), pk);
        }
    }

    #[test]
    fn batch_names_failure() {
        let keys: Vec<SigningKey> = (0..5u8)
            .map(|i| SigningKey::from_seed(Suite::Ed25519, &[i + 1; 32]).unwrap())
            .collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<[u8; 64]> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let items = |sigs: &[[u8; 64]]| -> Vec<(usize, [u8; 64])> {
            sigs.iter().copied().enumerate().collect()
        };
        let check = |sigs: &[[u8; 64]]| {
            let v = items(sigs);
            let batch: Vec<BatchItem<'_>> = v
                .iter()
                .map(|(i, s)| BatchItem {
                    key: &pks[*i],
                    msg: &msgs[*i],
                    sig: &s[..],
                })
                .collect();
            (verify_batch(&batch), verify_each(&batch))
        };
        assert_eq!(check(&sigs).0, Ok(()));
        sigs[3][0] ^= 1;
        let (b, each) = check(&sigs);
        assert!(b.is_err());
        assert!(each[3].is_err() && each.iter().filter(|r| r.is_err()).count() == 1);
    }

    #[test]
    fn malformed_keys_refused() {
        assert!(PublicKey::from_bytes(Suite::Ed25519, &[0u8; 31]).is_err());
        assert!(PublicKey::from_bytes(Suite::Ed25519, &[0u8; 32]).is_err()); // small order
        assert!(PublicKey::from_bytes(Suite::P256, &[4u8; 65]).is_err());
        assert!(SigningKey::from_seed(Suite::P256, &[0u8; 32]).is_err());
    }
}
