//! Signature suites: Ed25519 (default), ECDSA P-256 with SHA-256, and
//! ML-DSA-44 (FIPS 204, post-quantum).
//!
//! The suite is named in every key, certificate and message (the COSE `alg`
//! header). Signatures are carried in their COSE form, whose length depends
//! on the suite ([`Suite::signature_len`]): 64 bytes for Ed25519 (`R || S`)
//! and P-256 (`r || s`), 2420 bytes for ML-DSA-44. X.509 uses the DER form for
//! ECDSA; [`crate::pki`] converts.
//!
//! ML-DSA-44 keys come from the 32-byte seed xi (FIPS 204 `KeyGen_internal`),
//! so every suite stores one 32-byte secret. Signing is the deterministic
//! variant (FIPS 204 sec. 3.4) with the empty context string: the same key
//! and message give the same bytes, like Ed25519 and RFC 6979 ECDSA.

use core::fmt;

use ed25519_dalek as ed;
use ml_dsa as mldsa;
use p256::ecdsa as ec;
use signature::{Signer as _, Verifier};
use zeroize::Zeroizing;

/// Length in bytes of a secret key seed (every suite).
pub const SECRET_KEY_BYTES: usize = 32;
/// The longest signature in COSE form of any suite (ML-DSA-44: 2420 bytes).
pub const SIGNATURE_BYTES_MAX: usize = 2420;
/// The longest raw public key of any suite (ML-DSA-44: 1312 bytes).
pub const PUBLIC_KEY_BYTES_MAX: usize = 1312;

const _: () = {
    let mut i = 0;
    while i < Suite::ALL.len() {
        assert!(Suite::ALL[i].signature_len() <= SIGNATURE_BYTES_MAX);
        assert!(Suite::ALL[i].public_key_len() <= PUBLIC_KEY_BYTES_MAX);
        i += 1;
    }
};

type MlDsa44Signing = mldsa::SigningKey<mldsa::MlDsa44>;
type MlDsa44Verifying = mldsa::VerifyingKey<mldsa::MlDsa44>;
type MlDsa44Signature = mldsa::Signature<mldsa::MlDsa44>;

/// A signature algorithm offpay speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// Ed25519 (RFC 8032), COSE alg EdDSA (-8). The default.
    Ed25519,
    /// ECDSA over P-256 with SHA-256, COSE alg ES256 (-7): what secure elements and HSMs offer.
    P256,
    /// ML-DSA-44 (FIPS 204), COSE alg ML-DSA-44 (-48): post-quantum. Public key 1312 bytes,
    /// signature 2420 bytes; deterministic signing, empty context.
    MlDsa44,
}

impl Suite {
    /// Every suite, in the order of their wire codes.
    pub const ALL: [Suite; 3] = [Suite::Ed25519, Suite::P256, Suite::MlDsa44];

    /// The COSE algorithm identifier (RFC 9053; ML-DSA-44 -48 from
    /// draft-ietf-cose-dilithium, IANA COSE Algorithms registry).
    pub const fn cose_alg(self) -> i64 {
        match self {
            Suite::Ed25519 => -8,
            Suite::P256 => -7,
            Suite::MlDsa44 => -48,
        }
    }
    /// The suite for a COSE algorithm identifier.
    pub fn from_cose_alg(alg: i64) -> Option<Suite> {
        match alg {
            -8 => Some(Suite::Ed25519),
            -7 => Some(Suite::P256),
            -48 => Some(Suite::MlDsa44),
            _ => None,
        }
    }
    /// A short name for logs, configuration and the CLI.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::Ed25519 => "ed25519",
            Suite::P256 => "p256",
            Suite::MlDsa44 => "ml-dsa-44",
        }
    }
    /// Parse [`Suite::name`].
    pub fn from_name(s: &str) -> Option<Suite> {
        match s {
            "ed25519" => Some(Suite::Ed25519),
            "p256" => Some(Suite::P256),
            "ml-dsa-44" => Some(Suite::MlDsa44),
            _ => None,
        }
    }
    /// Length in bytes of a signature in COSE form: 64 (Ed25519, P-256), 2420 (ML-DSA-44).
    pub const fn signature_len(self) -> usize {
        match self {
            Suite::Ed25519 | Suite::P256 => 64,
            Suite::MlDsa44 => 2420,
        }
    }
    /// Length in bytes of a raw public key ([`PublicKey::to_bytes`]): 32 (Ed25519),
    /// 65 (P-256 uncompressed SEC1), 1312 (ML-DSA-44).
    pub const fn public_key_len(self) -> usize {
        match self {
            Suite::Ed25519 => 32,
            Suite::P256 => 65,
            Suite::MlDsa44 => 1312,
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
#[derive(Clone)]
pub enum PublicKey {
    /// Ed25519: 32 bytes.
    Ed25519(ed::VerifyingKey),
    /// P-256: the uncompressed SEC1 point (65 bytes) on the wire.
    P256(ec::VerifyingKey),
    /// ML-DSA-44: the FIPS 204 `pkEncode` form (1312 bytes) on the wire. Boxed: the
    /// expanded matrix kept for verification is large.
    MlDsa44(Box<MlDsa44Verifying>),
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PublicKey::Ed25519(a), PublicKey::Ed25519(b)) => a == b,
            (PublicKey::P256(a), PublicKey::P256(b)) => a == b,
            (PublicKey::MlDsa44(a), PublicKey::MlDsa44(b)) => a.encode() == b.encode(),
            _ => false,
        }
    }
}
impl Eq for PublicKey {}

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
            PublicKey::MlDsa44(_) => Suite::MlDsa44,
        }
    }

    /// Raw public key bytes: Ed25519 32 bytes, P-256 uncompressed SEC1 (65 bytes),
    /// ML-DSA-44 `pkEncode` (1312 bytes).
    /// This is also the content of the X.509 `subjectPublicKey` BIT STRING.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(k) => k.to_bytes().to_vec(),
            PublicKey::P256(k) => k.to_sec1_bytes().to_vec(),
            PublicKey::MlDsa44(k) => k.encode().to_vec(),
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
            Suite::MlDsa44 => {
                let enc = mldsa::EncodedVerifyingKey::<mldsa::MlDsa44>::try_from(bytes)
                    .map_err(|_| SignatureError::InvalidPublicKey)?;
                // Every 1312-byte string decodes (rho || t1, 10-bit coefficients).
                Ok(PublicKey::MlDsa44(Box::new(MlDsa44Verifying::decode(&enc))))
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
            PublicKey::MlDsa44(k) => {
                let s =
                    MlDsa44Signature::try_from(sig).map_err(|_| SignatureError::BadSignature)?;
                if k.verify_with_context(msg, &[], &s) {
                    Ok(())
                } else {
                    Err(SignatureError::BadSignature)
                }
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
    /// ML-DSA-44 from its seed xi (deterministic signing, empty context). Boxed: large.
    MlDsa44(Box<MlDsa44Signing>),
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

    /// The key for a 32-byte seed (Ed25519 secret key, P-256 scalar, or the
    /// ML-DSA-44 seed xi of FIPS 204 `KeyGen_internal`).
    pub fn from_seed(
        suite: Suite,
        seed: &[u8; SECRET_KEY_BYTES],
    ) -> Result<SigningKey, SignatureError> {
        match suite {
            Suite::Ed25519 => Ok(SigningKey::Ed25519(ed::SigningKey::from_bytes(seed))),
            Suite::P256 => ec::SigningKey::from_slice(seed)
                .map(SigningKey::P256)
                .map_err(|_| SignatureError::InvalidSecretKey),
            Suite::MlDsa44 => Ok(SigningKey::MlDsa44(Box::new(MlDsa44Signing::from_seed(
                &mldsa::Seed::from(*seed),
            )))),
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
            SigningKey::MlDsa44(k) => {
                let mut out = Zeroizing::new([0u8; SECRET_KEY_BYTES]);
                out.copy_from_slice(k.as_seed());
                out
            }
        }
    }

    /// The key's suite.
    pub fn suite(&self) -> Suite {
        match self {
            SigningKey::Ed25519(_) => Suite::Ed25519,
            SigningKey::P256(_) => Suite::P256,
            SigningKey::MlDsa44(_) => Suite::MlDsa44,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Ed25519(k) => PublicKey::Ed25519(k.verifying_key()),
            SigningKey::P256(k) => PublicKey::P256(*k.verifying_key()),
            SigningKey::MlDsa44(k) => {
                PublicKey::MlDsa44(Box::new(signature::Keypair::verifying_key(k.as_ref())))
            }
        }
    }

    /// Sign `msg`; the COSE-form signature ([`Suite::signature_len`] bytes).
    /// Deterministic for every suite.
    ///
    /// ML-DSA signing is a rejection-sampling loop that FIPS 204 lets an
    /// implementation bound; the bound in `ml-dsa` (16,384 tries, each
    /// accepted with probability about 1/4) is exhausted with probability far
    /// below 2^-1000. Should it happen, the result is empty: every verifier
    /// and decoder refuses it, and [`Signer::try_sign`] reports
    /// [`SignError::BadOutput`].
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            SigningKey::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            SigningKey::P256(k) => {
                let s: ec::Signature = k.sign(msg);
                s.to_bytes().to_vec()
            }
            // `ml_dsa::SigningKey`'s `Signer`: deterministic, empty context.
            SigningKey::MlDsa44(k) => signature::Signer::<MlDsa44Signature>::try_sign(&**k, msg)
                .map(|s| s.encode().to_vec())
                .unwrap_or_default(),
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
        let sig = self.sign(msg);
        if sig.len() != self.suite().signature_len() {
            return Err(SignError::BadOutput);
        }
        Ok(sig)
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

/// Verify many signatures at once, grouped by suite: the Ed25519 signatures
/// are checked together with one multi-scalar multiplication (about twice the
/// single-verify rate); P-256 and ML-DSA-44 ones one by one (neither has a
/// batch equation). `Ok` only if every signature verifies; on `Err` the caller
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
            PublicKey::P256(_) | PublicKey::MlDsa44(_) => it.key.verify(it.msg, it.sig)?,
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
        for suite in Suite::ALL {
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
        // Every suite in one batch: the Ed25519 ones go through the
        // multi-scalar check, the others one by one.
        let keys: Vec<SigningKey> = (0..9u8)
            .map(|i| SigningKey::from_seed(Suite::ALL[usize::from(i % 3)], &[i + 1; 32]).unwrap())
            .collect();
        let pks: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let msgs: Vec<Vec<u8>> = (0..9u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Vec<u8>> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        let check = |sigs: &[Vec<u8>]| {
            let batch: Vec<BatchItem<'_>> = sigs
                .iter()
                .enumerate()
                .map(|(i, s)| BatchItem {
                    key: &pks[i],
                    msg: &msgs[i],
                    sig: &s[..],
                })
                .collect();
            (verify_batch(&batch), verify_each(&batch))
        };
        assert_eq!(check(&sigs).0, Ok(()));
        for culprit in [3, 4, 5] {
            let mut bad = sigs.clone();
            bad[culprit][0] ^= 1;
            let (b, each) = check(&bad);
            assert!(b.is_err(), "suite {}", keys[culprit].suite());
            assert!(each[culprit].is_err() && each.iter().filter(|r| r.is_err()).count() == 1);
        }
        // A truncated ML-DSA signature is refused, not a panic.
        sigs[5].pop();
        assert_eq!(check(&sigs).0, Err(SignatureError::BadSignature));
    }

    #[test]
    fn ml_dsa_44_sizes_and_names() {
        let k = SigningKey::from_seed(Suite::MlDsa44, &[9u8; 32]).unwrap();
        let pk = k.public_key();
        assert_eq!(pk.to_bytes().len(), 1312);
        let sig = k.sign(b"m");
        assert_eq!(sig.len(), 2420);
        assert_eq!(Suite::MlDsa44.cose_alg(), -48);
        assert_eq!(Suite::from_name("ml-dsa-44"), Some(Suite::MlDsa44));
        for suite in Suite::ALL {
            let k = SigningKey::from_seed(suite, &[3u8; 32]).unwrap();
            assert_eq!(k.sign(b"x").len(), suite.signature_len());
            assert_eq!(k.public_key().to_bytes().len(), suite.public_key_len());
            assert_eq!(Suite::from_name(suite.name()), Some(suite));
        }
        // Another seed, another key; a key of the wrong length is refused.
        let k2 = SigningKey::from_seed(Suite::MlDsa44, &[10u8; 32]).unwrap();
        assert_ne!(k2.public_key(), pk);
        assert_eq!(
            k2.public_key().verify(b"m", &sig),
            Err(SignatureError::BadSignature)
        );
        assert!(PublicKey::from_bytes(Suite::MlDsa44, &pk.to_bytes()[..1311]).is_err());
        assert!(pk.verify(b"m", &sig[..2419]).is_err());
        assert!(pk.verify(b"m", &[0u8; 2420]).is_err());
        // Keys of different suites never compare equal.
        let e = SigningKey::from_seed(Suite::Ed25519, &[9u8; 32]).unwrap();
        assert_ne!(e.public_key(), pk);
    }

    #[test]
    fn malformed_keys_refused() {
        assert!(PublicKey::from_bytes(Suite::Ed25519, &[0u8; 31]).is_err());
        assert!(PublicKey::from_bytes(Suite::Ed25519, &[0u8; 32]).is_err()); // small order
        assert!(PublicKey::from_bytes(Suite::P256, &[4u8; 65]).is_err());
        assert!(SigningKey::from_seed(Suite::P256, &[0u8; 32]).is_err());
    }
}
