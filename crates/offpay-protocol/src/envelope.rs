//! COSE_Sign1 (RFC 9052) envelopes over deterministic CBOR.
//!
//! Every signed offpay message is exactly
//! `18([h'A1 01 <alg>', {}, h'<payload>', h'<signature>'])`:
//! the protected header holds only the algorithm, the unprotected header is
//! empty, the payload is the message body (a deterministic CBOR map whose key
//! 0 is the message type and key 1 the protocol version), and the signature is
//! over the COSE `Sig_structure`
//! `["Signature1", protected, h'', payload]`.

use core::marker::PhantomData;

use crate::cbor::{DecodeError, Decoder, Encoder, MapReader};
use crate::suite::{BatchItem, PublicKey, SignError, SignatureError, Signer, SigningKey, Suite};
use crate::types::Hash32;

/// The COSE_Sign1 tag.
pub const COSE_SIGN1_TAG: u64 = 18;
/// The protocol version every message carries (key 1).
pub const PROTOCOL_VERSION: u64 = 1;

/// A message body: its type, its size limit and its fields.
pub trait Body: Sized + Clone {
    /// The message type (key 0 of the payload).
    const TYPE: u64;
    /// The name used in errors and docs.
    const NAME: &'static str;
    /// The largest whole envelope, in bytes, the decoder accepts.
    const BYTES_MAX: usize;
    /// Number of fields the encoder writes after type and version.
    fn field_count(&self) -> usize;
    /// Write the fields after type (0) and version (1), in ascending key order.
    fn encode_fields(&self, e: &mut Encoder);
    /// Read the fields after type and version.
    fn decode_fields(m: &mut MapReader<'_, '_>) -> Result<Self, DecodeError>;

    /// The deterministic CBOR payload.
    fn to_payload(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(self.field_count() + 2);
        e.uint(0).uint(Self::TYPE);
        e.uint(1).uint(PROTOCOL_VERSION);
        self.encode_fields(&mut e);
        let payload = e.finish();
        // The map header promised field_count() + 2 pairs: exactly that many were written.
        debug_assert!(
            crate::cbor::is_one_value(&payload),
            "{} wrote a different number of fields than field_count()",
            Self::NAME
        );
        payload
    }

    /// Parse a payload (refusing every non-canonical form and trailing bytes).
    fn from_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder::new(payload);
        let body = {
            let mut m = d.map(Self::NAME, 32)?;
            read_type_version(&mut m, Self::TYPE)?;
            let b = Self::decode_fields(&mut m)?;
            m.end()?;
            b
        };
        d.finish()?;
        Ok(body)
    }
}

/// Read keys 0 (type) and 1 (version) and check them.
pub(crate) fn read_type_version(
    m: &mut MapReader<'_, '_>,
    expected: u64,
) -> Result<(), DecodeError> {
    let t = m.required(0, "type")?.uint("type")?;
    if t != expected {
        return Err(DecodeError::WrongMessageType { expected, found: t });
    }
    let v = m.required(1, "version")?.uint("version")?;
    if v != PROTOCOL_VERSION {
        return Err(DecodeError::UnknownVersion(v));
    }
    Ok(())
}

/// The message type of a payload, without decoding the rest.
pub fn peek_payload_type(payload: &[u8]) -> Result<u64, DecodeError> {
    let mut d = Decoder::new(payload);
    let mut m = d.map("payload", 32)?;
    m.required(0, "type")?.uint("type")
}

fn protected_header(suite: Suite) -> Vec<u8> {
    // {1: alg}: `A1 01 27` (EdDSA -8), `A1 01 26` (ES256 -7), `A1 01 38 2F` (ML-DSA-44 -48).
    let mut e = Encoder::new();
    e.map(1).uint(1).int(suite.cose_alg());
    e.finish()
}

/// Why a signed message was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// The bytes are not a valid message.
    Decode(DecodeError),
    /// The message is signed with another suite than the signer's key.
    SuiteMismatch,
    /// The signature does not verify.
    BadSignature,
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VerifyError::Decode(e) => write!(f, "{e}"),
            VerifyError::SuiteMismatch => {
                f.write_str("message suite does not match the signer's key")
            }
            VerifyError::BadSignature => f.write_str("signature does not verify"),
        }
    }
}
impl std::error::Error for VerifyError {}
impl From<DecodeError> for VerifyError {
    fn from(e: DecodeError) -> Self {
        VerifyError::Decode(e)
    }
}

/// A signed message: the exact envelope bytes plus the decoded body.
///
/// Decoding checks structure only; call [`Signed::verify`] with the signer's
/// key (found through its certificate) before trusting the body.
#[derive(Clone, Debug)]
pub struct Signed<T> {
    bytes: Vec<u8>,
    body: T,
    suite: Suite,
    payload: core::ops::Range<usize>,
    signature: core::ops::Range<usize>,
    _t: PhantomData<T>,
}

impl<T: Body> PartialEq for Signed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl<T: Body> Eq for Signed<T> {}

/// The COSE Sig_structure for a protected header and payload.
pub fn sig_structure(suite: Suite, payload: &[u8]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(4)
        .text("Signature1")
        .bytes(&protected_header(suite))
        .bytes(&[])
        .bytes(payload);
    e.finish()
}

impl<T: Body> Signed<T> {
    /// Sign `body` with `key`.
    pub fn sign(body: T, key: &SigningKey) -> Signed<T> {
        let payload = body.to_payload();
        let suite = key.suite();
        let sig = key.sign(&sig_structure(suite, &payload));
        Signed::assemble(body, suite, payload, &sig)
    }

    /// Sign `body` through `signer` (a key in process or in a device). A
    /// signature of the wrong length for the suite, or one that does not
    /// verify with the signer's public key, is refused
    /// ([`SignError::BadOutput`]): a device's output is checked before it is
    /// released.
    pub fn try_sign(body: T, signer: &dyn Signer) -> Result<Signed<T>, SignError> {
        let payload = body.to_payload();
        let suite = signer.suite();
        let msg = sig_structure(suite, &payload);
        let sig = signer.try_sign(&msg)?;
        if sig.len() != suite.signature_len() || signer.public_key().verify(&msg, &sig).is_err() {
            return Err(SignError::BadOutput);
        }
        Ok(Signed::assemble(body, suite, payload, &sig))
    }

    fn assemble(body: T, suite: Suite, payload: Vec<u8>, sig: &[u8]) -> Signed<T> {
        let mut e = Encoder::new();
        e.tag(COSE_SIGN1_TAG)
            .array(4)
            .bytes(&protected_header(suite))
            .map(0);
        let payload_start = e.len() + header_len(payload.len());
        e.bytes(&payload);
        let sig_start = e.len() + header_len(sig.len());
        e.bytes(sig);
        let bytes = e.finish();
        Signed {
            payload: payload_start..payload_start + payload.len(),
            signature: sig_start..sig_start + sig.len(),
            bytes,
            body,
            suite,
            _t: PhantomData,
        }
    }

    /// Parse an envelope: one canonical byte string, at most `T::BYTES_MAX`.
    pub fn decode(bytes: &[u8]) -> Result<Signed<T>, DecodeError> {
        let (suite, payload, signature) = decode_envelope(bytes, T::NAME, T::BYTES_MAX)?;
        let body = T::from_payload(&bytes[payload.clone()])?;
        Ok(Signed {
            bytes: bytes.to_vec(),
            body,
            suite,
            payload,
            signature,
            _t: PhantomData,
        })
    }

    /// Verify the signature with the signer's public key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), VerifyError> {
        if key.suite() != self.suite {
            return Err(VerifyError::SuiteMismatch);
        }
        key.verify(&self.sig_structure(), self.signature())
            .map_err(|e| match e {
                SignatureError::SuiteMismatch => VerifyError::SuiteMismatch,
                _ => VerifyError::BadSignature,
            })
    }

    /// The bytes that were signed (for batch verification).
    pub fn sig_structure(&self) -> Vec<u8> {
        sig_structure(self.suite, self.payload())
    }

    /// A batch item for [`crate::suite::verify_batch`]; `msg` must be [`Signed::sig_structure`].
    pub fn batch_item<'a>(&'a self, key: &'a PublicKey, msg: &'a [u8]) -> BatchItem<'a> {
        BatchItem {
            key,
            msg,
            sig: self.signature(),
        }
    }

    /// The decoded body.
    pub fn body(&self) -> &T {
        &self.body
    }
    /// The exact envelope bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The signed payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.bytes[self.payload.clone()]
    }
    /// The signature ([`Suite::signature_len`] bytes).
    pub fn signature(&self) -> &[u8] {
        &self.bytes[self.signature.clone()]
    }
    /// The signature suite named in the protected header.
    pub fn suite(&self) -> Suite {
        self.suite
    }
    /// SHA-256 of the payload: the message's identity (a payment's id, a chain entry's hash).
    pub fn payload_hash(&self) -> Hash32 {
        Hash32::digest(self.payload())
    }
    /// Consume into the envelope bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

fn header_len(len: usize) -> usize {
    match len {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        _ => 5,
    }
}

/// Parse the COSE_Sign1 structure; returns the suite and the payload and signature ranges.
pub fn decode_envelope(
    bytes: &[u8],
    name: &'static str,
    max: usize,
) -> Result<(Suite, core::ops::Range<usize>, core::ops::Range<usize>), DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            field: name,
            max: max as u64,
        });
    }
    let mut d = Decoder::new(bytes);
    if d.tag("COSE_Sign1 tag")? != COSE_SIGN1_TAG {
        return Err(DecodeError::InvalidValue("COSE_Sign1 tag"));
    }
    if d.array("COSE_Sign1", 4)? != 4 {
        return Err(DecodeError::BadLength {
            field: "COSE_Sign1",
        });
    }
    let protected = d.bytes("protected header", 16)?;
    let suite = {
        let mut h = Decoder::new(protected);
        let mut m = h.map("protected header", 1)?;
        let alg = m.required(1, "alg")?.int("alg")?;
        m.end()?;
        h.finish()?;
        let suite = Suite::from_cose_alg(alg).ok_or(DecodeError::UnknownSuite(alg))?;
        if protected != protected_header(suite) {
            return Err(DecodeError::NonCanonical("protected header"));
        }
        suite
    };
    d.map("unprotected header", 0)?.end()?;
    let payload_slice = d.bytes("payload", max)?;
    let payload_end = d.position();
    let payload = payload_end - payload_slice.len()..payload_end;
    // The suite fixes the length: longer is refused before it is read.
    let sig = d.bytes("signature", suite.signature_len())?;
    let sig_len = sig.len();
    if sig_len != suite.signature_len() {
        return Err(DecodeError::BadLength { field: "signature" });
    }
    let sig_end = d.position();
    d.leave();
    d.finish()?;
    Ok((suite, payload, sig_end - sig_len..sig_end))
}
