//! Building blocks shared by certificates, CRLs and CSRs: algorithm
//! identifiers, SubjectPublicKeyInfo, signature values, names, extensions and
//! the outer `SEQUENCE { tbs, signatureAlgorithm, signature }` of a signed object.

use core::ops::Range;

use super::asn1::{self, Reader, Res, Tlv, tag};
use super::{OFFPAY_POLICY_REF_OID_DER, OFFPAY_WALLET_PROFILE_OID_DER, PkiError, WalletProfile};
use crate::suite::{PublicKey, SignError, Signer, Suite};
use crate::types::Hash32;

/// AlgorithmIdentifier `id-Ed25519` (1.3.101.112), parameters absent (RFC 8410).
pub(crate) const ALG_ED25519: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
/// AlgorithmIdentifier `ecdsa-with-SHA256` (1.2.840.10045.4.3.2), parameters absent (RFC 5758).
pub(crate) const ALG_ECDSA_SHA256: &[u8] = &[
    0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
];
/// AlgorithmIdentifier `id-ml-dsa-44` (2.16.840.1.101.3.4.3.17), parameters
/// absent (RFC 9881): the signature algorithm and the SPKI algorithm alike.
pub(crate) const ALG_ML_DSA_44: &[u8] = &[
    0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x11,
];
/// SPKI AlgorithmIdentifier `id-ecPublicKey` (1.2.840.10045.2.1) with namedCurve
/// `prime256v1` (1.2.840.10045.3.1.7) (RFC 5480).
pub(crate) const SPKI_ALG_P256: &[u8] = &[
    0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
    0xce, 0x3d, 0x03, 0x01, 0x07,
];

/// Contents of the OBJECT IDENTIFIERs used here.
pub(crate) mod oid {
    /// 2.5.4.3 commonName
    pub(crate) const CN: &[u8] = &[0x55, 0x04, 0x03];
    /// 2.5.29.14 subjectKeyIdentifier
    pub(crate) const SKID: &[u8] = &[0x55, 0x1d, 0x0e];
    /// 2.5.29.15 keyUsage
    pub(crate) const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    /// 2.5.29.19 basicConstraints
    pub(crate) const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    /// 2.5.29.20 cRLNumber
    pub(crate) const CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
    /// 2.5.29.21 reasonCode
    pub(crate) const REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
    /// 2.5.29.27 deltaCRLIndicator
    pub(crate) const DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
    /// 2.5.29.35 authorityKeyIdentifier
    pub(crate) const AKID: &[u8] = &[0x55, 0x1d, 0x23];
}

/// Key usage bits (RFC 5280 4.2.1.3), bit `n` of the BIT STRING is `1 << n`.
pub(crate) const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
pub(crate) const KU_KEY_CERT_SIGN: u16 = 1 << 5;
pub(crate) const KU_CRL_SIGN: u16 = 1 << 6;

/// The signature AlgorithmIdentifier (whole DER) of a suite.
pub(crate) fn signature_algorithm(suite: Suite) -> &'static [u8] {
    match suite {
        Suite::Ed25519 => ALG_ED25519,
        Suite::P256 => ALG_ECDSA_SHA256,
        Suite::MlDsa44 => ALG_ML_DSA_44,
    }
}

/// The suite named by a signature AlgorithmIdentifier (whole DER, byte-exact).
pub(crate) fn suite_of_signature_algorithm(raw: &[u8]) -> Res<Suite> {
    if raw == ALG_ED25519 {
        Ok(Suite::Ed25519)
    } else if raw == ALG_ECDSA_SHA256 {
        Ok(Suite::P256)
    } else if raw == ALG_ML_DSA_44 {
        Ok(Suite::MlDsa44)
    } else {
        Err(PkiError::UnsupportedAlgorithm)
    }
}

/// The signatureValue BIT STRING (whole DER) for a COSE-form signature:
/// Ed25519 the 64 bytes (RFC 8410), P-256 a DER `ECDSA-Sig-Value` (RFC 5480),
/// ML-DSA-44 the 2420 bytes (RFC 9881).
pub(crate) fn encode_signature_value(suite: Suite, sig: &[u8]) -> Vec<u8> {
    match suite {
        Suite::Ed25519 | Suite::MlDsa44 => asn1::bit_string(sig),
        Suite::P256 => {
            let (r, s) = sig.split_at(sig.len() / 2);
            asn1::bit_string(&asn1::seq(&[
                &asn1::uint_from_be(r),
                &asn1::uint_from_be(s),
            ]))
        }
    }
}

/// The COSE-form signature in a signatureValue BIT STRING's contents. The
/// scalars' range is checked when verifying, not here.
pub(crate) fn decode_signature_value(suite: Suite, bits: &[u8]) -> Res<Vec<u8>> {
    let octets = asn1::bit_string_octets(bits, "signature value")?;
    let mut out = vec![0u8; suite.signature_len()];
    match suite {
        Suite::Ed25519 => {
            if octets.len() != out.len() {
                return Err(PkiError::Malformed("Ed25519 signature length"));
            }
            out.copy_from_slice(octets);
        }
        Suite::MlDsa44 => {
            if octets.len() != out.len() {
                return Err(PkiError::Malformed("ML-DSA-44 signature length"));
            }
            out.copy_from_slice(octets);
        }
        Suite::P256 => {
            const WHAT: &str = "ECDSA-Sig-Value";
            let mut r = Reader::new(asn1::single(octets, tag::SEQUENCE, WHAT)?);
            let half_len = out.len() / 2;
            for half in out.chunks_exact_mut(half_len) {
                let m = asn1::uint_magnitude(r.expect(tag::INTEGER, WHAT)?, WHAT)?;
                if m.len() > half.len() {
                    return Err(PkiError::Malformed(WHAT));
                }
                let at = half.len() - m.len();
                half[at..].copy_from_slice(m);
            }
            r.finish(WHAT)?;
        }
    }
    Ok(out)
}

/// Verify `sig` over `msg` with `key`, which must be of the signature's suite.
pub(crate) fn verify(key: &PublicKey, sig_suite: Suite, msg: &[u8], sig: &[u8]) -> bool {
    key.suite() == sig_suite && key.verify(msg, sig).is_ok()
}

/// SubjectPublicKeyInfo (whole DER).
pub(crate) fn encode_spki(key: &PublicKey) -> Vec<u8> {
    let alg = match key.suite() {
        Suite::Ed25519 => ALG_ED25519,
        Suite::P256 => SPKI_ALG_P256,
        Suite::MlDsa44 => ALG_ML_DSA_44,
    };
    asn1::seq(&[alg, &asn1::bit_string(&key.to_bytes())])
}

/// Parse a SubjectPublicKeyInfo's contents.
pub(crate) fn parse_spki(value: &[u8]) -> Res<PublicKey> {
    let mut r = Reader::new(value);
    let alg = r.expect_tlv(tag::SEQUENCE, "subjectPublicKeyInfo algorithm")?;
    let bits = r.expect(tag::BIT_STRING, "subjectPublicKey")?;
    r.finish("subjectPublicKeyInfo")?;
    let suite = if alg.raw == ALG_ED25519 {
        Suite::Ed25519
    } else if alg.raw == SPKI_ALG_P256 {
        Suite::P256
    } else if alg.raw == ALG_ML_DSA_44 {
        Suite::MlDsa44
    } else {
        return Err(PkiError::UnsupportedAlgorithm);
    };
    let key = asn1::bit_string_octets(bits, "subjectPublicKey")?;
    PublicKey::from_bytes(suite, key).map_err(|_| PkiError::InvalidPublicKey)
}

/// Key identifier: the leftmost 160 bits of SHA-256 of the subjectPublicKey
/// BIT STRING's value (RFC 7093 section 2, method 1).
pub(crate) fn key_id(key: &PublicKey) -> Vec<u8> {
    Hash32::digest(&key.to_bytes()).0[..20].to_vec()
}

/// A Name made of one commonName (UTF8String).
pub(crate) fn encode_name(cn: &str) -> Vec<u8> {
    let atv = asn1::seq(&[
        &asn1::tlv(tag::OID, oid::CN),
        &asn1::tlv(tag::UTF8_STRING, cn.as_bytes()),
    ]);
    asn1::seq(&[&asn1::cons(tag::SET, &[&atv])])
}

/// Longest common name we issue (ub-common-name, RFC 5280 appendix A).
pub(crate) const COMMON_NAME_BYTES_MAX: usize = 64;

/// Names we issue: 1 to 64 bytes of UTF-8 without control characters.
pub(crate) fn check_common_name(cn: &str) -> Res<()> {
    if cn.is_empty() || cn.len() > COMMON_NAME_BYTES_MAX || cn.chars().any(char::is_control) {
        Err(PkiError::InvalidArgument(
            "common name must be 1 to 64 bytes without control characters",
        ))
    } else {
        Ok(())
    }
}

/// Parse a Name's contents (any RDNs); its commonName, or "" if it has none.
/// More than one commonName is refused.
pub(crate) fn parse_name(value: &[u8]) -> Res<String> {
    let mut r = Reader::new(value);
    let mut cn = None;
    while !r.is_empty() {
        let mut rdn = Reader::new(r.expect(tag::SET, "name RDN")?);
        if rdn.is_empty() {
            return Err(PkiError::Malformed("name RDN"));
        }
        while !rdn.is_empty() {
            let mut atv = Reader::new(rdn.expect(tag::SEQUENCE, "name attribute")?);
            let t = atv.expect(tag::OID, "name attribute type")?;
            asn1::check_oid(t, "name attribute type")?;
            let v = atv.any("name attribute value")?;
            atv.finish("name attribute")?;
            if t == oid::CN {
                if cn.is_some() {
                    return Err(PkiError::Malformed("name has more than one commonName"));
                }
                cn = Some(directory_string(v)?);
            }
        }
    }
    Ok(cn.unwrap_or_default())
}

fn directory_string(v: Tlv<'_>) -> Res<String> {
    const WHAT: &str = "commonName (UTF8String or PrintableString)";
    let printable = |b: &u8| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(b);
    match v.tag {
        tag::UTF8_STRING => core::str::from_utf8(v.value)
            .map(str::to_owned)
            .map_err(|_| PkiError::Malformed(WHAT)),
        tag::PRINTABLE_STRING if v.value.iter().all(printable) => {
            Ok(v.value.iter().map(|&b| b as char).collect())
        }
        _ => Err(PkiError::Malformed(WHAT)),
    }
}

/// One extension as found in an Extensions list.
pub(crate) struct Extension<'a> {
    pub oid: &'a [u8],
    pub critical: bool,
    pub value: &'a [u8],
}

/// Parse an `Extensions` SEQUENCE's contents: at least one, no duplicate OIDs,
/// `critical` encoded only when TRUE (DER).
pub(crate) fn parse_extensions<'a>(value: &'a [u8]) -> Res<Vec<Extension<'a>>> {
    let mut r = Reader::new(value);
    let mut out: Vec<Extension<'a>> = Vec::new();
    if r.is_empty() {
        return Err(PkiError::Malformed("empty extensions"));
    }
    while !r.is_empty() {
        let mut e = Reader::new(r.expect(tag::SEQUENCE, "extension")?);
        let oid = e.expect(tag::OID, "extension id")?;
        asn1::check_oid(oid, "extension id")?;
        let critical = match e.optional(tag::BOOLEAN, "extension critical")? {
            Some(b) if asn1::boolean(b.value, "extension critical")? => true,
            Some(_) => return Err(PkiError::Malformed("extension critical FALSE encoded")),
            None => false,
        };
        let value = e.expect(tag::OCTET_STRING, "extension value")?;
        e.finish("extension")?;
        if out.iter().any(|x| x.oid == oid) {
            return Err(PkiError::Malformed("duplicate extension"));
        }
        out.push(Extension {
            oid,
            critical,
            value,
        });
    }
    Ok(out)
}

/// One Extension (whole DER).
pub(crate) fn encode_extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let id = asn1::tlv(tag::OID, oid);
    let ev = asn1::tlv(tag::OCTET_STRING, value);
    if critical {
        asn1::seq(&[&id, &[tag::BOOLEAN, 1, 0xff], &ev])
    } else {
        asn1::seq(&[&id, &ev])
    }
}

/// AuthorityKeyIdentifier's value with only `keyIdentifier`.
pub(crate) fn encode_akid(key_id: &[u8]) -> Vec<u8> {
    asn1::seq(&[&asn1::tlv(tag::ctx_prim(0), key_id)])
}

/// The keyIdentifier of an AuthorityKeyIdentifier extension value, if any
/// (authorityCertIssuer and authorityCertSerialNumber are accepted and ignored).
pub(crate) fn parse_akid(value: &[u8]) -> Res<Option<Vec<u8>>> {
    const WHAT: &str = "authorityKeyIdentifier";
    let mut r = Reader::new(asn1::single(value, tag::SEQUENCE, WHAT)?);
    let id = r
        .optional(tag::ctx_prim(0), WHAT)?
        .map(|t| t.value.to_vec());
    r.optional(tag::ctx_cons(1), WHAT)?;
    r.optional(tag::ctx_prim(2), WHAT)?;
    r.finish(WHAT)?;
    Ok(id)
}

/// A SubjectKeyIdentifier extension value's key identifier.
pub(crate) fn parse_skid(value: &[u8]) -> Res<Vec<u8>> {
    let id = asn1::single(value, tag::OCTET_STRING, "subjectKeyIdentifier")?;
    Ok(id.to_vec())
}

/// The offpay policy-reference extension (whole DER, non-critical).
pub(crate) fn encode_policy_ref(p: super::PolicyRef) -> Vec<u8> {
    let value = asn1::seq(&[&asn1::uint(p.id.into()), &asn1::uint(p.epoch.into())]);
    encode_extension(OFFPAY_POLICY_REF_OID_DER, false, &value)
}

/// Parse the offpay policy-reference extension value.
pub(crate) fn parse_policy_ref(value: &[u8]) -> Res<super::PolicyRef> {
    const WHAT: &str = "offpay policy reference";
    let mut r = Reader::new(asn1::single(value, tag::SEQUENCE, WHAT)?);
    let mut u32_field = || -> Res<u32> {
        let v = asn1::uint_u64(r.expect(tag::INTEGER, WHAT)?, WHAT)?;
        u32::try_from(v).map_err(|_| PkiError::Malformed(WHAT))
    };
    let id = u32_field()?;
    let epoch = u32_field()?;
    r.finish(WHAT)?;
    Ok(super::PolicyRef { id, epoch })
}

/// The offpay wallet-profile extension, or None for a personal wallet (absent).
pub(crate) fn encode_wallet_profile(p: WalletProfile) -> Option<Vec<u8>> {
    match p {
        WalletProfile::Personal => None,
        WalletProfile::Terminal => Some(encode_extension(
            OFFPAY_WALLET_PROFILE_OID_DER,
            false,
            &asn1::tlv(tag::ENUMERATED, &[1]),
        )),
    }
}

/// Parse the offpay wallet-profile extension value: `ENUMERATED 1`
/// (terminal). Personal is the extension's absence, so an explicit 0 (or any
/// other value) is refused: one encoding per profile.
pub(crate) fn parse_wallet_profile(value: &[u8]) -> Res<WalletProfile> {
    const WHAT: &str = "offpay wallet profile";
    match asn1::single(value, tag::ENUMERATED, WHAT)? {
        [1] => Ok(WalletProfile::Terminal),
        _ => Err(PkiError::Malformed(WHAT)),
    }
}

/// The outer structure of a signed object, parsed.
pub(crate) struct Signed<'a> {
    /// The to-be-signed element.
    pub tbs: Tlv<'a>,
    /// Where `tbs.raw` lies in the whole input.
    pub tbs_range: Range<usize>,
    /// The signatureAlgorithm (whole DER).
    pub alg: &'a [u8],
    /// Its suite.
    pub suite: Suite,
    /// The signature in COSE form.
    pub sig: Vec<u8>,
}

/// Parse `SEQUENCE { tbs SEQUENCE, signatureAlgorithm, signature BIT STRING }`,
/// which must span all of `der` (no trailing bytes).
pub(crate) fn parse_signed<'a>(der: &'a [u8], what: &'static str) -> Res<Signed<'a>> {
    let outer = asn1::single(der, tag::SEQUENCE, what)?;
    // No trailing bytes, so the contents end where the input ends.
    let start = der.len() - outer.len();
    let mut r = Reader::new(outer);
    let tbs = r.expect_tlv(tag::SEQUENCE, what)?;
    let alg = r.expect_tlv(tag::SEQUENCE, "signature algorithm")?.raw;
    let bits = r.expect(tag::BIT_STRING, "signature value")?;
    r.finish(what)?;
    let suite = suite_of_signature_algorithm(alg)?;
    let sig = decode_signature_value(suite, bits)?;
    Ok(Signed {
        tbs,
        tbs_range: start..start + tbs.raw.len(),
        alg,
        suite,
        sig,
    })
}

/// Sign a to-be-signed element (whole DER) and wrap it. A signature of the
/// wrong length for the signer's suite, or one that does not verify with its
/// public key, is refused ([`SignError::BadOutput`]): a device's output is
/// checked before it is released.
pub(crate) fn sign(key: &dyn Signer, tbs: &[u8]) -> Res<Vec<u8>> {
    let suite = key.suite();
    let sig = key.try_sign(tbs).map_err(PkiError::Signer)?;
    if sig.len() != suite.signature_len() || key.public_key().verify(tbs, &sig).is_err() {
        return Err(PkiError::Signer(SignError::BadOutput));
    }
    Ok(asn1::seq(&[
        tbs,
        signature_algorithm(suite),
        &encode_signature_value(suite, &sig),
    ]))
}

/// Base64 PEM with the given label.
#[expect(clippy::expect_used)] // lint-exception: PEM of bounded DER under a fixed label cannot fail; nine callers would carry a Result that is never Err
pub(crate) fn to_pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der)
        .expect("PEM encoding of a bounded DER object with a fixed label cannot fail")
}

/// The DER inside a PEM block with the given label; `max` bounds the DER size.
pub(crate) fn from_pem(pem: &str, label: &str, max: usize) -> Res<Vec<u8>> {
    // Base64 is 4/3 of the DER, plus line breaks and the two boundary lines.
    let pem_max = max / 3 * 4 + max / 24 + 256;
    if pem.len() > pem_max {
        return Err(PkiError::TooLarge {
            len: pem.len(),
            max: pem_max,
        });
    }
    let (found, der) =
        der::pem::decode_vec(pem.as_bytes()).map_err(|_| PkiError::Malformed("PEM"))?;
    if found != label {
        return Err(PkiError::Malformed("PEM label"));
    }
    Ok(der)
}
