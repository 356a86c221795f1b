//! Enrollment: PKCS#10 certification requests (RFC 2986).

use super::asn1::{self, Reader, tag};
use super::x509;
use super::{CSR_BYTES_MAX, PkiError};
use crate::suite::{PublicKey, Signer};
use crate::types::WalletId;

/// A verified certification request: the wallet proved it holds the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csr {
    /// The key to certify.
    pub public_key: PublicKey,
    /// The wallet id the request names (subject `CN=<32 lower-case hex>`).
    pub wallet_id: WalletId,
}

/// Build a wallet's PKCS#10 request (DER): version 0, subject
/// `CN=<wallet id hex>`, the key, no attributes, self-signed with `key`.
pub fn build_csr(key: &dyn Signer, wallet_id: WalletId) -> Result<Vec<u8>, PkiError> {
    let info = asn1::seq(&[
        &asn1::uint(0),
        &x509::encode_name(&wallet_id.to_hex()),
        &x509::encode_spki(&key.public_key()),
        &[tag::ctx_cons(0), 0],
    ]);
    let der = x509::sign(key, &info)?;
    if der.len() > CSR_BYTES_MAX {
        return Err(PkiError::TooLarge {
            len: der.len(),
            max: CSR_BYTES_MAX,
        });
    }
    Ok(der)
}

/// Parse a PKCS#10 request and verify its self-signature. The subject's
/// commonName must be a wallet id (32 lower-case hex); other name attributes
/// and the request attributes are accepted and ignored (the issuer decides
/// the certificate's subject and every extension).
///
/// Errors: [`PkiError::TooLarge`] over [`CSR_BYTES_MAX`], [`PkiError::Malformed`],
/// [`PkiError::UnsupportedAlgorithm`], [`PkiError::InvalidPublicKey`], and
/// [`PkiError::BadSignature`] when the signature
/// does not verify with the enclosed key.
pub fn parse_csr(der: &[u8]) -> Result<Csr, PkiError> {
    let (public_key, cn) = parse_signed_request(der)?;
    let lower_hex = cn.len() == 32 && cn.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !lower_hex {
        return Err(PkiError::Malformed(
            "CSR subject commonName must be a wallet id (32 lower-case hex)",
        ));
    }
    let wallet_id = WalletId::from_hex(&cn).ok_or(PkiError::Malformed("CSR wallet id"))?;
    Ok(Csr {
        public_key,
        wallet_id,
    })
}

/// Parse a request's structure and verify its self-signature: the key and the
/// subject's commonName.
fn parse_signed_request(der: &[u8]) -> Result<(PublicKey, String), PkiError> {
    if der.len() > CSR_BYTES_MAX {
        return Err(PkiError::TooLarge {
            len: der.len(),
            max: CSR_BYTES_MAX,
        });
    }
    let signed = x509::parse_signed(der, "certification request")?;
    let mut r = Reader::new(signed.tbs.value);
    if r.expect(tag::INTEGER, "CSR version")? != [0] {
        return Err(PkiError::Malformed("CSR version (must be 0)"));
    }
    let subject = r.expect_tlv(tag::SEQUENCE, "CSR subject")?;
    let cn = x509::parse_name(subject.value)?;
    let public_key = x509::parse_spki(r.expect(tag::SEQUENCE, "CSR subjectPublicKeyInfo")?)?;
    r.expect(tag::ctx_cons(0), "CSR attributes")?;
    r.finish("certificationRequestInfo")?;

    if !x509::verify(&public_key, signed.suite, signed.tbs.raw, &signed.sig) {
        return Err(PkiError::BadSignature);
    }
    Ok((public_key, cn))
}

/// Longest issuer code (the issuer CA's commonName in a scheme).
pub const ISSUER_CODE_BYTES_MAX: usize = 32;

/// Whether `code` is a valid issuer code: `[a-z0-9-]{1,32}`.
pub fn is_issuer_code(code: &str) -> bool {
    (1..=ISSUER_CODE_BYTES_MAX).contains(&code.len())
        && code
            .bytes()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// A verified issuer CA certification request (a member issuer asking the
/// scheme to certify its CA key): the issuer proved it holds the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCsr {
    /// The CA key to certify.
    pub public_key: PublicKey,
    /// The issuer code the request names (subject `CN=<code>`, `[a-z0-9-]{1,32}`).
    pub common_name: String,
}

/// Build an issuer CA's PKCS#10 request (DER): version 0, subject
/// `CN=<common_name>`, the key, no attributes, self-signed with `key`.
/// `common_name` must be an issuer code (`[a-z0-9-]{1,32}`,
/// [`PkiError::InvalidArgument`] otherwise). Deterministic for Ed25519 keys:
/// the same key and code give the same bytes.
pub fn build_ca_csr(key: &dyn Signer, common_name: &str) -> Result<Vec<u8>, PkiError> {
    if !is_issuer_code(common_name) {
        return Err(PkiError::InvalidArgument(
            "issuer code must be [a-z0-9-]{1,32}",
        ));
    }
    let info = asn1::seq(&[
        &asn1::uint(0),
        &x509::encode_name(common_name),
        &x509::encode_spki(&key.public_key()),
        &[tag::ctx_cons(0), 0],
    ]);
    let der = x509::sign(key, &info)?;
    if der.len() > CSR_BYTES_MAX {
        return Err(PkiError::TooLarge {
            len: der.len(),
            max: CSR_BYTES_MAX,
        });
    }
    Ok(der)
}

/// Parse an issuer CA's PKCS#10 request and verify its self-signature. The
/// subject's commonName must be an issuer code (`[a-z0-9-]{1,32}`); other
/// name attributes and the request attributes are ignored (the scheme decides
/// the certificate). Errors as [`parse_csr`], and [`PkiError::Malformed`]
/// for a commonName that is not an issuer code.
pub fn parse_ca_csr(der: &[u8]) -> Result<CaCsr, PkiError> {
    let (public_key, common_name) = parse_signed_request(der)?;
    if !is_issuer_code(&common_name) {
        return Err(PkiError::Malformed(
            "CSR subject commonName must be an issuer code ([a-z0-9-]{1,32})",
        ));
    }
    Ok(CaCsr {
        public_key,
        common_name,
    })
}
