//! offpay's PKI: standard X.509 v3 certificates and v2 CRLs (RFC 5280), so
//! that operators can inspect and verify everything with OpenSSL.
//!
//! Three levels: the scheme's self-signed root CA → issuer CAs (one per bank
//! or PSP backend) → one wallet certificate per wallet trusted application.
//!
//! - Algorithms: Ed25519 (RFC 8410: AlgorithmIdentifier 1.3.101.112, no
//!   parameters) and ECDSA P-256 with SHA-256 (ecdsa-with-SHA256
//!   1.2.840.10045.4.3.2 without parameters; keys id-ecPublicKey with
//!   namedCurve prime256v1, uncompressed points; signatures DER
//!   `ECDSA-Sig-Value`, converted from and to [`crate::suite`]'s 64-byte form).
//!   Levels may mix suites (a P-256 root over Ed25519 wallets).
//! - Root and issuer CA certificates carry basicConstraints cA (critical;
//!   the issuer CA with pathLenConstraint 0), keyUsage keyCertSign + cRLSign
//!   (critical) and a subjectKeyIdentifier; issuer CAs also an
//!   authorityKeyIdentifier. Key identifiers are the leftmost 160 bits of
//!   SHA-256 of the subjectPublicKey (RFC 7093 method 1).
//! - A wallet certificate is small (it travels inline in payments that must fit
//!   one QR code): subject `CN=<wallet id as 32 lower-case hex>`, keyUsage
//!   digitalSignature (critical), an authorityKeyIdentifier, and the
//!   risk-policy reference in offpay's private, non-critical extension
//!   [`OFFPAY_POLICY_REF_OID`]. No subjectKeyIdentifier (RFC 5280 only
//!   recommends it for end entities; nothing chains below a wallet).
//! - Times: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280).
//! - CRLs: v2, nextUpdate, cRLNumber, authorityKeyIdentifier; per entry a
//!   revocationDate and a reasonCode (left out when unspecified, as RFC 5280 asks).
//!   Delta CRLs ([`DeltaCrl`], RFC 5280 5.2.4) add the critical
//!   deltaCRLIndicator and removeFromCRL entries; a holder keeps a complete
//!   CRL with the deltas applied to it ([`CrlState`]).
//! - Enrollment: the wallet sends a PKCS#10 request ([`build_csr`]); the
//!   backend checks it ([`parse_csr`]) and issues ([`issue_wallet`]).
//!
//! Everything here is a pure function of its arguments: no clock is read
//! (`now` is an argument), and no input bytes can cause a panic; every
//! refusal is a [`PkiError`].
//!
//! This module has its own small, strict DER reader rather than `x509-cert`'s
//! decoder, because `const-oid` 0.10 refuses OID arcs over 32 bits and
//! offpay's extension OID (a `2.25` UUID arc) has a 128-bit one.

mod asn1;
mod cert;
mod crl;
mod csr;
mod scheme;
mod x509;

#[cfg(test)]
mod scheme_tests;
#[cfg(test)]
mod tests;

use core::fmt;

pub use cert::{
    Certificate, WalletCertificate, issue_issuer_ca, issue_root, issue_wallet,
    issue_wallet_certificate,
};
pub use crl::{
    CRL_DELTAS_HELD_MAX, Crl, CrlChanges, CrlState, DeltaCrl, RevocationReason, RevokedEntry,
    issue_crl, issue_crl_der_unbounded, issue_delta_crl,
};
pub use csr::{
    CaCsr, Csr, ISSUER_CODE_BYTES_MAX, build_ca_csr, build_csr, is_issuer_code, parse_ca_csr,
    parse_csr,
};
pub use scheme::SchemeTrust;

use crate::suite::SignError;
use crate::types::{UnixSeconds, WalletId};

/// Largest DER certificate accepted (checked before parsing): room for an
/// ML-DSA-44 key (1312 bytes) under an ML-DSA-44 signature (2420 bytes) with
/// the longest names and every extension.
pub const CERTIFICATE_BYTES_MAX: usize = 5664;
/// Largest DER CRL accepted (checked before parsing): about 25 000 entries.
pub const CRL_BYTES_MAX: usize = 1 << 20;
/// Largest DER certification request accepted (checked before parsing): an
/// ML-DSA-44 key and self-signature.
pub const CSR_BYTES_MAX: usize = 5664;

/// offpay's OID arc: `2.25.<UUID 9e7ee409-35b4-46b3-9428-59daf2a0d212 as an
/// integer>` (ITU-T X.667 / RFC 4122 UUID-based OIDs need no registration).
/// Sub-arc `.1` is [`OFFPAY_POLICY_REF_OID`].
pub const OFFPAY_OID_ARC: &str = "2.25.210676877857255837455590850053590274578";

/// The wallet certificate extension carrying the risk-policy reference,
/// `2.25.210676877857255837455590850053590274578.1`, always non-critical (so
/// that OpenSSL and other verifiers accept the certificate). Its value is
/// `SEQUENCE { id INTEGER (0..2^32-1), epoch INTEGER (0..2^32-1) }`.
pub const OFFPAY_POLICY_REF_OID: &str = "2.25.210676877857255837455590850053590274578.1";

/// The wallet certificate extension naming the wallet's profile,
/// `2.25.210676877857255837455590850053590274578.2`, non-critical. Its value
/// is `ENUMERATED { terminal (1) }`. Absent means [`WalletProfile::Personal`]
/// (every certificate issued before the extension existed, and every personal
/// wallet's: their bytes, and so every payment's size, are unchanged);
/// personal is never written explicitly, so each profile has one encoding.
/// Non-critical so that verifiers that do not know it (OpenSSL, older
/// wallets paying a terminal) still accept the certificate: the refusals it
/// drives are offpay's own (`PayerIsTerminal`, the issuer's sync check).
pub const OFFPAY_WALLET_PROFILE_OID: &str = "2.25.210676877857255837455590850053590274578.2";

/// DER contents of [`OFFPAY_POLICY_REF_OID`].
pub(crate) const OFFPAY_POLICY_REF_OID_DER: &[u8] = &[
    0x69, 0x82, 0xbc, 0xfe, 0xf2, 0x82, 0xa6, 0xdb, 0xa2, 0x9a, 0xe7, 0x94, 0x94, 0x96, 0xbb, 0xaf,
    0x95, 0x83, 0xa4, 0x12, 0x01,
];

/// DER contents of [`OFFPAY_WALLET_PROFILE_OID`].
pub(crate) const OFFPAY_WALLET_PROFILE_OID_DER: &[u8] = &[
    0x69, 0x82, 0xbc, 0xfe, 0xf2, 0x82, 0xa6, 0xdb, 0xa2, 0x9a, 0xe7, 0x94, 0x94, 0x96, 0xbb, 0xaf,
    0x95, 0x83, 0xa4, 0x12, 0x02,
];

/// What a wallet may do, as its certificate names it
/// ([`OFFPAY_WALLET_PROFILE_OID`]; [`Certificate::wallet_profile`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WalletProfile {
    /// A person's wallet: pays and receives (no extension in the certificate).
    #[default]
    Personal,
    /// A receive-only merchant terminal: requests and receives, never pays;
    /// its takings above a float go to the merchant's online account at each
    /// sync (the sweep, a redeem entry on its chain).
    Terminal,
}

impl WalletProfile {
    /// The stable name (`personal`, `terminal`): CLI, JSON and the store.
    pub fn code(self) -> &'static str {
        match self {
            WalletProfile::Personal => "personal",
            WalletProfile::Terminal => "terminal",
        }
    }

    /// The profile named `code` ([`WalletProfile::code`]), if any.
    pub fn from_code(code: &str) -> Option<WalletProfile> {
        match code {
            "personal" => Some(WalletProfile::Personal),
            "terminal" => Some(WalletProfile::Terminal),
            _ => None,
        }
    }
}

impl fmt::Display for WalletProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The place of a certificate in a chain ([`Certificate::role`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// The scheme's self-signed root CA (the trust anchor).
    Root,
    /// An issuer CA (a bank's or PSP's backend).
    IssuerCa,
    /// A wallet certificate (the leaf).
    Wallet,
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertRole::Root => "root CA",
            CertRole::IssuerCa => "issuer CA",
            CertRole::Wallet => "wallet",
        })
    }
}

/// The risk policy a wallet certificate names (see `messages::RiskPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyRef {
    /// Policy id.
    pub id: u32,
    /// Policy epoch (version).
    pub epoch: u32,
}

/// Why a certificate, CRL or request was refused: one variant per reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PkiError {
    /// The input is larger than the limit for its kind (checked before parsing).
    TooLarge {
        /// Input length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not well-formed DER / PEM of the expected structure; names the field.
    Malformed(&'static str),
    /// A signature or key algorithm other than Ed25519 and ECDSA P-256 SHA-256.
    UnsupportedAlgorithm,
    /// An extension marked critical that offpay does not implement.
    UnsupportedCriticalExtension,
    /// The public key bytes are not a valid key (or a weak Ed25519 key).
    InvalidPublicKey,
    /// An issuing function was called with unusable arguments.
    InvalidArgument(&'static str),
    /// A certificate's (or request's) signature does not verify with the
    /// issuer's key, or that key is of another suite than the signature algorithm.
    BadSignature,
    /// A certificate's issuer Name (or authority key id) is not the presumed
    /// issuer's subject (or subject key id); also: a root that is not
    /// self-issued, or an issuer CA that is the root itself.
    WrongIssuer,
    /// A certificate used as a CA is not one (no basicConstraints cA, or
    /// keyUsage without keyCertSign).
    NotACa,
    /// A CA's pathLenConstraint forbids the CA below it.
    PathLenExceeded,
    /// `now` is after a certificate's notAfter.
    Expired,
    /// `now` is before a certificate's notBefore.
    NotYetValid,
    /// The leaf is not a wallet certificate: a CA, no wallet id in the
    /// subject, no policy reference, or keyUsage without digitalSignature.
    NotAWalletCertificate,
    /// The wallet certificate is on the CRL (the entry: [`Crl::is_revoked`]).
    Revoked {
        /// Its serial.
        serial: u64,
    },
    /// The CRL's issuer Name (or authority key id) is not the issuer CA's.
    CrlWrongIssuer,
    /// The CRL's signature does not verify with the issuer CA's key.
    CrlBadSignature,
    /// The certificate may not sign CRLs (not a CA, or keyUsage without cRLSign).
    NotACrlIssuer,
    /// A delta CRL where a complete CRL is expected.
    CrlIsDelta,
    /// A complete CRL where a delta CRL is expected.
    CrlNotDelta,
    /// A delta CRL whose base CRL number is not the number the holder's
    /// CRL stands at (or the holder has no CRL of that issuer: `held` 0).
    CrlDeltaBaseMismatch {
        /// The CRL number held.
        held: u64,
        /// The delta's base CRL number.
        base: u64,
    },
    /// The holder already holds [`CRL_DELTAS_HELD_MAX`] deltas on its base.
    CrlDeltasFull,
    /// The certificate (or CRL) names an issuer CA the scheme trust does not
    /// hold (not admitted, or not yet learnt by this holder).
    UnknownIssuer,
    /// The issuer CA is suspended (certificateHold on the root-signed issuer CRL).
    IssuerSuspended,
    /// The issuer CA is revoked (on the root-signed issuer CRL with another reason).
    IssuerRevoked,
    /// The signing key's device failed or returned an invalid signature
    /// (issuing only; nothing was issued).
    Signer(SignError),
}

impl fmt::Display for PkiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PkiError::TooLarge { len, max } => write!(f, "too large: {len} bytes (max {max})"),
            PkiError::Malformed(what) => write!(f, "malformed: {what}"),
            PkiError::UnsupportedAlgorithm => f.write_str("unsupported algorithm"),
            PkiError::UnsupportedCriticalExtension => f.write_str("unsupported critical extension"),
            PkiError::InvalidPublicKey => f.write_str("invalid public key"),
            PkiError::InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            PkiError::BadSignature => f.write_str("certificate signature does not verify"),
            PkiError::WrongIssuer => f.write_str("certificate not issued by the expected CA"),
            PkiError::NotACa => f.write_str("certificate is not a CA"),
            PkiError::PathLenExceeded => f.write_str("path length constraint exceeded"),
            PkiError::Expired => f.write_str("certificate expired"),
            PkiError::NotYetValid => f.write_str("certificate not yet valid"),
            PkiError::NotAWalletCertificate => f.write_str("not a wallet certificate"),
            PkiError::Revoked { serial } => write!(f, "certificate {serial} revoked"),
            PkiError::CrlWrongIssuer => f.write_str("CRL from another issuer"),
            PkiError::CrlBadSignature => f.write_str("CRL signature does not verify"),
            PkiError::NotACrlIssuer => f.write_str("certificate may not sign CRLs"),
            PkiError::CrlIsDelta => f.write_str("delta CRL where a complete CRL is expected"),
            PkiError::CrlNotDelta => f.write_str("complete CRL where a delta CRL is expected"),
            PkiError::CrlDeltaBaseMismatch { held, base } => {
                write!(f, "delta CRL on base {base}, but CRL {held} is held")
            }
            PkiError::CrlDeltasFull => write!(f, "{CRL_DELTAS_HELD_MAX} delta CRLs already held"),
            PkiError::UnknownIssuer => f.write_str("issuer not admitted to the scheme"),
            PkiError::IssuerSuspended => f.write_str("issuer suspended by the scheme"),
            PkiError::IssuerRevoked => f.write_str("issuer revoked by the scheme"),
            PkiError::Signer(e) => write!(f, "signing failed: {e}"),
        }
    }
}

impl std::error::Error for PkiError {}

/// [`validate_wallet_chain`] for a holder that already verified its chain:
/// `issuer` was verified against `root`, and `crl` against `issuer`, when they
/// were installed (a TA does both at enrollment and at every sync, and keeps
/// them in its sealed state). Checks the validity periods of all three at
/// `now`, the leaf's signature, identity and revocation: one signature
/// verification instead of four.
pub fn validate_wallet_leaf(
    root: &Certificate,
    issuer: &Certificate,
    leaf: &Certificate,
    now: UnixSeconds,
    crl: Option<&Crl>,
) -> Result<WalletId, PkiError> {
    root.check_validity(now)?;
    issuer.check_validity(now)?;
    let wallet_id = check_leaf(issuer, leaf, now)?;
    not_revoked(crl, leaf)?;
    Ok(wallet_id)
}

/// The leaf's part of a chain check: signed by `issuer`, a wallet identity, valid at `now`.
pub(crate) fn check_leaf(
    issuer: &Certificate,
    leaf: &Certificate,
    now: UnixSeconds,
) -> Result<WalletId, PkiError> {
    leaf.verify_signed_by(issuer)?;
    let (wallet_id, _policy) = leaf.wallet_identity()?;
    leaf.check_validity(now)?;
    Ok(wallet_id)
}

/// `leaf` is not on `crl` (whose signature the caller has checked).
pub(crate) fn not_revoked(crl: Option<&Crl>, leaf: &Certificate) -> Result<(), PkiError> {
    match crl.and_then(|c| c.is_revoked(leaf.serial())) {
        Some(e) => Err(PkiError::Revoked { serial: e.serial }),
        None => Ok(()),
    }
}

/// The payee's offline check of a peer's certificate chain at time `now`;
/// the peer's wallet id if it passes. Checks, in this order (the first
/// failure is returned):
///
/// 1. `root` (the trusted anchor): a CA that may sign certificates
///    ([`PkiError::NotACa`]), self-issued and self-signed
///    ([`PkiError::WrongIssuer`] / [`PkiError::BadSignature`]), valid at `now`.
/// 2. `issuer`: not the root itself, issued and signed by `root`, allowed by
///    the root's path length, a CA that may sign certificates, valid at `now`.
/// 3. `leaf`: issued and signed by `issuer`, a wallet certificate (see
///    [`PkiError::NotAWalletCertificate`]), valid at `now`.
/// 4. `crl`, if given: issued and signed by `issuer`, which may sign CRLs;
///    the leaf's serial is not on it ([`PkiError::Revoked`]). A CRL whose
///    `next_update` has passed is still used (offline wallets hold old CRLs).
///
/// Validity is inclusive at both ends (RFC 5280). Revocation of the issuer
/// CA itself is not covered here (it would be a root-signed CRL).
pub fn validate_wallet_chain(
    root: &Certificate,
    issuer: &Certificate,
    leaf: &Certificate,
    now: UnixSeconds,
    crl: Option<&Crl>,
) -> Result<WalletId, PkiError> {
    if !root.may_sign_certificates() {
        return Err(PkiError::NotACa);
    }
    root.verify_signed_by(root)?;
    root.check_validity(now)?;

    if issuer == root {
        return Err(PkiError::WrongIssuer);
    }
    issuer.verify_signed_by(root)?;
    if root.path_len() == Some(0) {
        return Err(PkiError::PathLenExceeded);
    }
    if !issuer.may_sign_certificates() {
        return Err(PkiError::NotACa);
    }
    issuer.check_validity(now)?;

    let wallet_id = check_leaf(issuer, leaf, now)?;
    if let Some(crl) = crl {
        crl.verify_signed_by(issuer)?;
    }
    not_revoked(crl, leaf)?;
    Ok(wallet_id)
}
