//! X.509 v3 certificates: parsing, accessors, and the three issuing functions.

use core::fmt;
use core::ops::Range;

use super::asn1::{self, Reader, tag};
use super::x509::{
    self, KU_CRL_SIGN, KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN, encode_extension, oid,
};
use super::{
    CERTIFICATE_BYTES_MAX, CertRole, OFFPAY_POLICY_REF_OID_DER, OFFPAY_WALLET_PROFILE_OID_DER,
    PkiError, PolicyRef, WalletProfile,
};
use crate::suite::{PublicKey, Signer, Suite};
use crate::types::{Hash32, IssuerId, UnixSeconds, WalletId};

/// An X.509 v3 certificate: the exact DER it was parsed from, and its fields.
///
/// Parsing ([`Certificate::from_der`]) is strict DER and checks structure only:
/// signatures, validity and roles are checked by [`Certificate::verify_signed_by`]
/// and [`super::validate_wallet_chain`]. Accepted algorithms: Ed25519 (RFC 8410)
/// and ECDSA P-256 with SHA-256, for both the subject key and the signature.
///
/// Serial numbers: offpay issues, and parsing accepts, only positive serials
/// that fit in a `u64` (1 ..= 2^64-1; RFC 5280 allows up to 20 octets). So a
/// CA certificate from an operator's existing CA must be issued with a serial
/// of at most 64 bits; in exchange serials are plain `u64` everywhere (CRL
/// lookups, evidence, the ledger).
///
/// Names: any Name is accepted; its commonName (UTF8String or PrintableString;
/// at most one) is exposed, "" if absent. Issuer/subject chaining compares the
/// Names' DER byte for byte. Unknown non-critical extensions are ignored;
/// unknown critical ones are refused ([`PkiError::UnsupportedCriticalExtension`]).
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    serial: u64,
    sig_suite: Suite,
    signature: Vec<u8>,
    pub(crate) issuer_name: Vec<u8>,
    pub(crate) subject_name: Vec<u8>,
    issuer_cn: String,
    subject_cn: String,
    not_before: UnixSeconds,
    not_after: UnixSeconds,
    public_key: PublicKey,
    ca: bool,
    path_len: Option<u64>,
    key_usage: Option<u16>,
    skid: Option<Vec<u8>>,
    akid: Option<Vec<u8>>,
    policy: Option<PolicyRef>,
    profile: WalletProfile,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject_cn", &self.subject_cn)
            .field("issuer_cn", &self.issuer_cn)
            .field("serial", &self.serial)
            .field("suite", &self.public_key.suite())
            .field("signature_suite", &self.sig_suite)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("ca", &self.ca)
            .field("policy", &self.policy)
            .field("profile", &self.profile)
            .field("reference", &self.reference())
            .finish()
    }
}

impl Certificate {
    /// Parse a DER certificate. Refuses inputs over [`CERTIFICATE_BYTES_MAX`],
    /// trailing bytes, non-DER encodings, versions other than v3, algorithms
    /// other than Ed25519 / ECDSA P-256 SHA-256, a signature algorithm in the
    /// TBS differing from the outer one, and unknown critical extensions.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        if der.len() > CERTIFICATE_BYTES_MAX {
            return Err(PkiError::TooLarge {
                len: der.len(),
                max: CERTIFICATE_BYTES_MAX,
            });
        }
        let signed = x509::parse_signed(der, "certificate")?;
        let mut r = Reader::new(signed.tbs.value);

        let version = r.expect(tag::ctx_cons(0), "certificate version")?;
        if version != [tag::INTEGER, 1, 2] {
            return Err(PkiError::Malformed("certificate version (v3 required)"));
        }
        const SERIAL: &str = "serial number (positive, at most 64 bits)";
        let serial = asn1::uint_u64(r.expect(tag::INTEGER, SERIAL)?, SERIAL)?;
        if serial == 0 {
            return Err(PkiError::Malformed(SERIAL));
        }
        let alg = r.expect_tlv(tag::SEQUENCE, "TBS signature algorithm")?;
        if alg.raw != signed.alg {
            return Err(PkiError::Malformed(
                "TBS and outer signature algorithms differ",
            ));
        }
        let issuer = r.expect_tlv(tag::SEQUENCE, "issuer")?;
        let issuer_cn = x509::parse_name(issuer.value)?;
        let mut validity = Reader::new(r.expect(tag::SEQUENCE, "validity")?);
        let not_before = asn1::time(validity.any("notBefore")?, "notBefore")?;
        let not_after = asn1::time(validity.any("notAfter")?, "notAfter")?;
        validity.finish("validity")?;
        let subject = r.expect_tlv(tag::SEQUENCE, "subject")?;
        let subject_cn = x509::parse_name(subject.value)?;
        let public_key = x509::parse_spki(r.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?)?;
        // Unique identifiers (RFC 5280: CAs must not generate them): skipped.
        r.optional(tag::ctx_prim(1), "issuerUniqueID")?;
        r.optional(tag::ctx_prim(2), "subjectUniqueID")?;

        let mut cert = Certificate {
            der: der.to_vec(),
            tbs: signed.tbs_range.clone(),
            serial,
            sig_suite: signed.suite,
            signature: signed.sig,
            issuer_name: issuer.raw.to_vec(),
            subject_name: subject.raw.to_vec(),
            issuer_cn,
            subject_cn,
            not_before,
            not_after,
            public_key,
            ca: false,
            path_len: None,
            key_usage: None,
            skid: None,
            akid: None,
            policy: None,
            profile: WalletProfile::Personal,
        };
        if let Some(exts) = r.optional(tag::ctx_cons(3), "extensions")? {
            let list = asn1::single(exts.value, tag::SEQUENCE, "extensions")?;
            for e in x509::parse_extensions(list)? {
                cert.apply_extension(&e)?;
            }
        }
        r.finish("tbsCertificate")?;
        Ok(cert)
    }

    fn apply_extension(&mut self, e: &x509::Extension<'_>) -> Result<(), PkiError> {
        match e.oid {
            oid::BASIC_CONSTRAINTS => {
                const WHAT: &str = "basicConstraints";
                let mut r = Reader::new(asn1::single(e.value, tag::SEQUENCE, WHAT)?);
                if let Some(b) = r.optional(tag::BOOLEAN, WHAT)? {
                    // DEFAULT FALSE: DER encodes it only when TRUE.
                    if !asn1::boolean(b.value, WHAT)? {
                        return Err(PkiError::Malformed(WHAT));
                    }
                    self.ca = true;
                }
                if let Some(p) = r.optional(tag::INTEGER, WHAT)? {
                    if !self.ca {
                        return Err(PkiError::Malformed(WHAT));
                    }
                    self.path_len = Some(asn1::uint_u64(p.value, WHAT)?);
                }
                r.finish(WHAT)?;
            }
            oid::KEY_USAGE => self.key_usage = Some(parse_key_usage(e.value)?),
            oid::SKID => self.skid = Some(x509::parse_skid(e.value)?),
            oid::AKID => self.akid = x509::parse_akid(e.value)?,
            OFFPAY_POLICY_REF_OID_DER => self.policy = Some(x509::parse_policy_ref(e.value)?),
            OFFPAY_WALLET_PROFILE_OID_DER => self.profile = x509::parse_wallet_profile(e.value)?,
            _ if e.critical => return Err(PkiError::UnsupportedCriticalExtension),
            _ => {}
        }
        Ok(())
    }

    /// The [`IssuerId`] of this certificate's issuer Name: for a wallet
    /// certificate, its issuer's id (for an issuer CA, the root's Name hash).
    pub fn issuer_id(&self) -> IssuerId {
        IssuerId::of_name_der(&self.issuer_name)
    }

    /// The [`IssuerId`] of this certificate's own subject Name: for an issuer
    /// CA certificate, the issuer's id.
    pub fn subject_issuer_id(&self) -> IssuerId {
        IssuerId::of_name_der(&self.subject_name)
    }

    /// Parse a PEM certificate (label `CERTIFICATE`).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(&x509::from_pem(pem, "CERTIFICATE", CERTIFICATE_BYTES_MAX)?)
    }

    /// The exact DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (label `CERTIFICATE`, LF line endings).
    pub fn to_pem(&self) -> String {
        x509::to_pem("CERTIFICATE", &self.der)
    }

    /// SHA-256 of the DER: the compact certificate reference messages carry.
    pub fn reference(&self) -> Hash32 {
        Hash32::digest(&self.der)
    }

    /// The serial number (positive).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The subject's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The suite of the subject's key.
    pub fn suite(&self) -> Suite {
        self.public_key.suite()
    }

    /// The suite the issuer signed this certificate with (the issuer key's suite).
    pub fn signature_suite(&self) -> Suite {
        self.sig_suite
    }

    /// Start of validity (inclusive).
    pub fn not_before(&self) -> UnixSeconds {
        self.not_before
    }

    /// End of validity (inclusive, RFC 5280).
    pub fn not_after(&self) -> UnixSeconds {
        self.not_after
    }

    /// The subject's commonName ("" if none).
    pub fn subject_cn(&self) -> &str {
        &self.subject_cn
    }

    /// The issuer's commonName ("" if none).
    pub fn issuer_cn(&self) -> &str {
        &self.issuer_cn
    }

    /// basicConstraints says cA TRUE.
    pub fn is_ca(&self) -> bool {
        self.ca
    }

    /// The wallet id of a wallet certificate: `Some` when the certificate is
    /// not a CA and its subject commonName is exactly 32 lower-case
    /// hexadecimal characters.
    pub fn wallet_id(&self) -> Option<WalletId> {
        let cn = self.subject_cn.as_bytes();
        let lower_hex = cn.len() == 32 && cn.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if self.ca || !lower_hex {
            return None;
        }
        WalletId::from_hex(&self.subject_cn)
    }

    /// The risk-policy reference (offpay's private extension, see
    /// [`super::OFFPAY_POLICY_REF_OID`]), if present.
    pub fn policy_ref(&self) -> Option<PolicyRef> {
        self.policy
    }

    /// The wallet profile the certificate names (offpay's private extension,
    /// see [`super::OFFPAY_WALLET_PROFILE_OID`]): [`WalletProfile::Personal`]
    /// when absent.
    pub fn wallet_profile(&self) -> WalletProfile {
        self.profile
    }

    /// Check that `issuer` issued this certificate: this certificate's issuer
    /// Name equals `issuer`'s subject Name (DER, byte for byte), its
    /// authorityKeyIdentifier (if both are present) equals `issuer`'s
    /// subjectKeyIdentifier, and the signature verifies with `issuer`'s key.
    ///
    /// Errors: [`PkiError::WrongIssuer`], [`PkiError::BadSignature`]. This
    /// checks neither roles (CA or not), key usage nor validity times: use
    /// [`super::validate_wallet_chain`] for that. A root: `root.verify_signed_by(root)`.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        if self.issuer_name != issuer.subject_name {
            return Err(PkiError::WrongIssuer);
        }
        if let (Some(a), Some(s)) = (&self.akid, &issuer.skid)
            && a != s
        {
            return Err(PkiError::WrongIssuer);
        }
        if !x509::verify(
            &issuer.public_key,
            self.sig_suite,
            self.tbs_bytes(),
            &self.signature,
        ) {
            return Err(PkiError::BadSignature);
        }
        Ok(())
    }

    /// The role this certificate has by its content: a self-issued CA is a
    /// [`CertRole::Root`], another CA an [`CertRole::IssuerCa`], anything
    /// else a [`CertRole::Wallet`] (which [`Certificate::wallet_id`] may still refuse).
    pub fn role(&self) -> CertRole {
        match (self.ca, self.issuer_name == self.subject_name) {
            (true, true) => CertRole::Root,
            (true, false) => CertRole::IssuerCa,
            (false, _) => CertRole::Wallet,
        }
    }

    fn tbs_bytes(&self) -> &[u8] {
        self.der.get(self.tbs.clone()).unwrap_or_default()
    }

    /// `not_before <= now <= not_after` (RFC 5280: inclusive), else
    /// [`PkiError::NotYetValid`] or [`PkiError::Expired`].
    pub fn check_validity(&self, now: UnixSeconds) -> Result<(), PkiError> {
        if now < self.not_before {
            Err(PkiError::NotYetValid)
        } else if now > self.not_after {
            Err(PkiError::Expired)
        } else {
            Ok(())
        }
    }

    /// A CA whose key usage (if present) allows signing certificates.
    pub(crate) fn may_sign_certificates(&self) -> bool {
        self.ca && self.key_usage.is_none_or(|k| k & KU_KEY_CERT_SIGN != 0)
    }

    /// A CA whose key usage (if present) allows signing CRLs.
    pub(crate) fn may_sign_crls(&self) -> bool {
        self.ca && self.key_usage.is_none_or(|k| k & KU_CRL_SIGN != 0)
    }

    /// A wallet certificate: wallet id, policy reference, key usage (if
    /// present) allowing digital signatures.
    pub(crate) fn wallet_identity(&self) -> Result<(WalletId, PolicyRef), PkiError> {
        let ku_ok = self.key_usage.is_none_or(|k| k & KU_DIGITAL_SIGNATURE != 0);
        match (self.wallet_id(), self.policy, ku_ok) {
            (Some(id), Some(p), true) => Ok((id, p)),
            _ => Err(PkiError::NotAWalletCertificate),
        }
    }

    pub(crate) fn path_len(&self) -> Option<u64> {
        self.path_len
    }

    /// The key identifier CRLs and certificates issued by this one name in
    /// their authorityKeyIdentifier: its subjectKeyIdentifier, else computed.
    pub(crate) fn key_identifier(&self) -> Vec<u8> {
        self.skid
            .clone()
            .unwrap_or_else(|| x509::key_id(&self.public_key))
    }

    pub(crate) fn subject_key_id(&self) -> Option<&[u8]> {
        self.skid.as_deref()
    }
}

pub(crate) fn parse_key_usage(value: &[u8]) -> Result<u16, PkiError> {
    const WHAT: &str = "keyUsage";
    let bits = asn1::single(value, tag::BIT_STRING, WHAT)?;
    let (&unused, octets) = bits.split_first().ok_or(PkiError::Malformed(WHAT))?;
    let last = *octets.last().ok_or(PkiError::Malformed(WHAT))?;
    if unused > 7 || octets.len() > 2 || last & ((1u8 << unused) - 1) != 0 {
        return Err(PkiError::Malformed(WHAT));
    }
    let mut ku = 0u16;
    for (i, &byte) in octets.iter().enumerate() {
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                ku |= 1 << (i * 8 + b);
            }
        }
    }
    Ok(ku)
}

pub(crate) fn encode_key_usage(ku: u16) -> Vec<u8> {
    let top = 15usize.saturating_sub(ku.leading_zeros() as usize);
    let n = top / 8 + 1;
    let mut octets = vec![0u8; n];
    for bit in 0..=top {
        if ku & (1 << bit) != 0 {
            octets[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    let unused = (7 - top % 8) as u8;
    asn1::cons(tag::BIT_STRING, &[&[unused], &octets])
}

/// What goes into a certificate we issue.
pub(crate) struct CertTemplate<'a> {
    pub serial: u64,
    pub issuer_name: &'a [u8],
    pub subject_cn: &'a str,
    pub not_before: UnixSeconds,
    pub not_after: UnixSeconds,
    pub subject_key: &'a PublicKey,
    pub extensions: Vec<Vec<u8>>,
}

/// Encode, sign and re-parse (so that we never issue what we would not accept).
/// No role checks: the public issuing functions do those.
pub(crate) fn build_certificate(
    signer: &dyn Signer,
    t: CertTemplate<'_>,
) -> Result<Certificate, PkiError> {
    if t.serial == 0 {
        return Err(PkiError::InvalidArgument("serial must be positive"));
    }
    x509::check_common_name(t.subject_cn)?;
    if t.not_after < t.not_before {
        return Err(PkiError::InvalidArgument("not_after is before not_before"));
    }
    let exts: Vec<&[u8]> = t.extensions.iter().map(Vec::as_slice).collect();
    let tbs = asn1::seq(&[
        &asn1::cons(tag::ctx_cons(0), &[&asn1::uint(2)]),
        &asn1::uint(t.serial),
        x509::signature_algorithm(signer.suite()),
        t.issuer_name,
        &asn1::seq(&[
            &asn1::put_time(t.not_before)?,
            &asn1::put_time(t.not_after)?,
        ]),
        &x509::encode_name(t.subject_cn),
        &x509::encode_spki(t.subject_key),
        &asn1::cons(tag::ctx_cons(3), &[&asn1::seq(&exts)]),
    ]);
    Certificate::from_der(&x509::sign(signer, &tbs)?)
}

pub(crate) fn ca_extensions(
    subject_key: &PublicKey,
    path_len: Option<u8>,
    authority: Option<&[u8]>,
) -> Vec<Vec<u8>> {
    let bc = match path_len {
        None => asn1::seq(&[&[tag::BOOLEAN, 1, 0xff]]),
        Some(n) => asn1::seq(&[&[tag::BOOLEAN, 1, 0xff], &asn1::uint(n.into())]),
    };
    let mut v = vec![
        encode_extension(oid::BASIC_CONSTRAINTS, true, &bc),
        encode_extension(
            oid::KEY_USAGE,
            true,
            &encode_key_usage(KU_KEY_CERT_SIGN | KU_CRL_SIGN),
        ),
        encode_extension(
            oid::SKID,
            false,
            &asn1::tlv(tag::OCTET_STRING, &x509::key_id(subject_key)),
        ),
    ];
    if let Some(a) = authority {
        v.push(encode_extension(oid::AKID, false, &x509::encode_akid(a)));
    }
    v
}

/// `key` is `cert`'s key and `cert` may sign certificates.
fn check_signer(key: &dyn Signer, cert: &Certificate) -> Result<(), PkiError> {
    if key.public_key() != *cert.public_key() {
        return Err(PkiError::InvalidArgument(
            "signing key does not match the issuer certificate",
        ));
    }
    if !cert.may_sign_certificates() {
        return Err(PkiError::NotACa);
    }
    Ok(())
}

/// Issue the scheme's self-signed root CA certificate: subject = issuer =
/// `CN=common_name`; basicConstraints cA (critical, no path length limit),
/// keyUsage keyCertSign + cRLSign (critical), subjectKeyIdentifier.
pub fn issue_root(
    key: &dyn Signer,
    common_name: &str,
    serial: u64,
    not_before: UnixSeconds,
    not_after: UnixSeconds,
) -> Result<Certificate, PkiError> {
    x509::check_common_name(common_name)?;
    let pk = key.public_key();
    build_certificate(
        key,
        CertTemplate {
            serial,
            issuer_name: &x509::encode_name(common_name),
            subject_cn: common_name,
            not_before,
            not_after,
            subject_key: &pk,
            extensions: ca_extensions(&pk, None, None),
        },
    )
}

/// Issue an issuer CA certificate (a bank's or PSP's backend) under the root:
/// basicConstraints cA with pathLenConstraint 0 (critical), keyUsage
/// keyCertSign + cRLSign (critical), subject and authority key identifiers.
/// `root_key` must be `root`'s key and `root` a CA ([`PkiError::NotACa`]).
pub fn issue_issuer_ca(
    root_key: &dyn Signer,
    root: &Certificate,
    issuer_public: &PublicKey,
    common_name: &str,
    serial: u64,
    not_before: UnixSeconds,
    not_after: UnixSeconds,
) -> Result<Certificate, PkiError> {
    check_signer(root_key, root)?;
    build_certificate(
        root_key,
        CertTemplate {
            serial,
            issuer_name: &root.subject_name,
            subject_cn: common_name,
            not_before,
            not_after,
            subject_key: issuer_public,
            extensions: ca_extensions(issuer_public, Some(0), Some(&root.key_identifier())),
        },
    )
}

/// What a wallet certificate states ([`issue_wallet_certificate`]).
#[derive(Clone, Copy, Debug)]
pub struct WalletCertificate<'a> {
    /// The wallet's public key (from its CSR).
    pub wallet_public: &'a PublicKey,
    /// The wallet id (the subject commonName).
    pub wallet_id: WalletId,
    /// The risk policy it is under.
    pub policy: PolicyRef,
    /// What it may do ([`WalletProfile::Personal`] writes no extension).
    pub profile: WalletProfile,
    /// Serial (positive).
    pub serial: u64,
    /// Start of validity.
    pub not_before: UnixSeconds,
    /// End of validity.
    pub not_after: UnixSeconds,
}

/// Issue a personal wallet certificate: [`issue_wallet_certificate`] with
/// [`WalletProfile::Personal`].
#[allow(clippy::too_many_arguments)]
pub fn issue_wallet(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    wallet_public: &PublicKey,
    wallet_id: WalletId,
    policy: PolicyRef,
    serial: u64,
    not_before: UnixSeconds,
    not_after: UnixSeconds,
) -> Result<Certificate, PkiError> {
    issue_wallet_certificate(
        issuer_key,
        issuer,
        &WalletCertificate {
            wallet_public,
            wallet_id,
            policy,
            profile: WalletProfile::Personal,
            serial,
            not_before,
            not_after,
        },
    )
}

/// Issue a wallet certificate: subject `CN=<wallet id, 32 lower-case hex>`,
/// keyUsage digitalSignature (critical), authorityKeyIdentifier (RFC 5280
/// requires it; OpenSSL's `-x509_strict` checks it), the policy reference
/// (offpay's non-critical private extension) and, for a terminal only, the
/// wallet profile (another non-critical private extension, 6 bytes of value
/// plus its OID). Nothing else, to stay small: about 330 bytes (Ed25519) so
/// that it fits inline in a payment's QR code. `issuer_key` must be
/// `issuer`'s key and `issuer` a CA ([`PkiError::NotACa`]).
pub fn issue_wallet_certificate(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    w: &WalletCertificate<'_>,
) -> Result<Certificate, PkiError> {
    check_signer(issuer_key, issuer)?;
    build_certificate(
        issuer_key,
        CertTemplate {
            serial: w.serial,
            issuer_name: &issuer.subject_name,
            subject_cn: &w.wallet_id.to_hex(),
            not_before: w.not_before,
            not_after: w.not_after,
            subject_key: w.wallet_public,
            extensions: wallet_extensions(w.policy, w.profile, &issuer.key_identifier()),
        },
    )
}

pub(crate) fn wallet_extensions(
    policy: PolicyRef,
    profile: WalletProfile,
    authority_key_id: &[u8],
) -> Vec<Vec<u8>> {
    let mut extensions = vec![
        encode_extension(
            oid::KEY_USAGE,
            true,
            &encode_key_usage(KU_DIGITAL_SIGNATURE),
        ),
        encode_extension(oid::AKID, false, &x509::encode_akid(authority_key_id)),
        x509::encode_policy_ref(policy),
    ];
    if let Some(e) = x509::encode_wallet_profile(profile) {
        extensions.push(e);
    }
    extensions
}
