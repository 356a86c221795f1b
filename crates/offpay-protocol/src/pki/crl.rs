//! X.509 v2 certificate revocation lists (RFC 5280 section 5).

use core::fmt;
use core::ops::Range;

use super::asn1::{self, Reader, tag};
use super::cert::Certificate;
use super::x509::{self, encode_extension, oid};
use super::{CRL_BYTES_MAX, PkiError};
use crate::suite::{Signer, Suite};
use crate::types::{Hash32, IssuerId, UnixSeconds};

/// Why a certificate was revoked: the RFC 5280 `CRLReason` codes (all but
/// `removeFromCRL`, code 8, which only a delta CRL uses, for a certificate
/// that left the CRL: see [`DeltaCrl::removed`]).
///
/// offpay uses [`RevocationReason::KeyCompromise`] for a wallet caught
/// double-spending or cloned (its key can no longer be trusted), and
/// [`RevocationReason::Superseded`] for a wallet re-keyed at sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// unspecified (0). Encoded by omitting the reasonCode entry extension, as RFC 5280 asks.
    Unspecified,
    /// keyCompromise (1); offpay: detected double spend or clone.
    KeyCompromise,
    /// cACompromise (2).
    CaCompromise,
    /// affiliationChanged (3).
    AffiliationChanged,
    /// superseded (4): replaced by a new certificate.
    Superseded,
    /// cessationOfOperation (5): the wallet was closed.
    CessationOfOperation,
    /// certificateHold (6): suspended.
    CertificateHold,
    /// privilegeWithdrawn (9).
    PrivilegeWithdrawn,
    /// aACompromise (10).
    AaCompromise,
}

impl RevocationReason {
    /// The RFC 5280 `CRLReason` code.
    pub const fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
        }
    }

    /// The reason for a `CRLReason` code (`None` for 7, unused, 8,
    /// removeFromCRL, and unknown codes).
    pub const fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => RevocationReason::Unspecified,
            1 => RevocationReason::KeyCompromise,
            2 => RevocationReason::CaCompromise,
            3 => RevocationReason::AffiliationChanged,
            4 => RevocationReason::Superseded,
            5 => RevocationReason::CessationOfOperation,
            6 => RevocationReason::CertificateHold,
            9 => RevocationReason::PrivilegeWithdrawn,
            10 => RevocationReason::AaCompromise,
            _ => return None,
        })
    }
}

impl fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key compromise",
            RevocationReason::CaCompromise => "CA compromise",
            RevocationReason::AffiliationChanged => "affiliation changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation of operation",
            RevocationReason::CertificateHold => "certificate hold",
            RevocationReason::PrivilegeWithdrawn => "privilege withdrawn",
            RevocationReason::AaCompromise => "AA compromise",
        })
    }
}

/// One revoked certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RevokedEntry {
    /// The revoked certificate's serial number (wallet serials are `u64`).
    pub serial: u64,
    /// When it was revoked (revocationDate).
    pub revoked_at: UnixSeconds,
    /// Why (reasonCode entry extension; absent means unspecified).
    pub reason: RevocationReason,
}

/// A parsed X.509 v2 CRL: the exact DER and its fields, entries sorted by serial.
///
/// Parsing requires version v2, `nextUpdate`, and the cRLNumber extension
/// (fitting a `u64`); revoked serials must be positive and fit a `u64`, and
/// appear once. Unknown critical extensions (CRL or entry level: e.g.
/// issuing distribution point, certificate issuer of indirect CRLs) are
/// refused. A delta CRL (deltaCRLIndicator) is not a `Crl`
/// ([`PkiError::CrlIsDelta`]): it is a [`DeltaCrl`], so that a list of
/// changes can never be taken for the whole list. A CRL past its
/// `nextUpdate` is still a valid CRL: offline wallets hold old ones; see
/// [`Crl::is_stale_at`].
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs: Range<usize>,
    sig_suite: Suite,
    signature: Vec<u8>,
    issuer_name: Vec<u8>,
    issuer_cn: String,
    number: u64,
    this_update: UnixSeconds,
    next_update: UnixSeconds,
    akid: Option<Vec<u8>>,
    entries: Vec<RevokedEntry>,
}

impl PartialEq for Crl {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Crl {}

impl fmt::Debug for Crl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crl")
            .field("issuer_cn", &self.issuer_cn)
            .field("number", &self.number)
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("entries", &self.entries.len())
            .field("bytes", &self.der.len())
            .finish()
    }
}

impl Crl {
    /// Parse a DER CRL (at most [`CRL_BYTES_MAX`] bytes, no trailing bytes).
    /// A delta CRL is refused ([`PkiError::CrlIsDelta`]; [`DeltaCrl::from_der`]).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        match Self::parse(der)? {
            (crl, None, _) => Ok(crl),
            (_, Some(_), _) => Err(PkiError::CrlIsDelta),
        }
    }

    /// Parse a complete or a delta CRL: the CRL (its entries the revoked
    /// ones), the base CRL number of a delta, and the serials a delta
    /// removes (entries with reasonCode removeFromCRL; refused in a
    /// complete CRL).
    fn parse(der: &[u8]) -> Result<(Self, Option<u64>, Vec<u64>), PkiError> {
        if der.len() > CRL_BYTES_MAX {
            return Err(PkiError::TooLarge {
                len: der.len(),
                max: CRL_BYTES_MAX,
            });
        }
        let signed = x509::parse_signed(der, "CRL")?;
        let mut r = Reader::new(signed.tbs.value);
        if r.expect(tag::INTEGER, "CRL version (v2 required)")? != [1] {
            return Err(PkiError::Malformed("CRL version (v2 required)"));
        }
        let alg = r.expect_tlv(tag::SEQUENCE, "TBS signature algorithm")?;
        if alg.raw != signed.alg {
            return Err(PkiError::Malformed(
                "TBS and outer signature algorithms differ",
            ));
        }
        let issuer = r.expect_tlv(tag::SEQUENCE, "CRL issuer")?;
        let issuer_cn = x509::parse_name(issuer.value)?;
        let this_update = asn1::time(r.any("thisUpdate")?, "thisUpdate")?;
        let next_update = match r.peek_tag() {
            Some(tag::UTC_TIME | tag::GENERALIZED_TIME) => {
                asn1::time(r.any("nextUpdate")?, "nextUpdate")?
            }
            _ => return Err(PkiError::Malformed("nextUpdate missing")),
        };
        let mut entries = Vec::new();
        let mut removed = Vec::new();
        if let Some(list) = r.optional(tag::SEQUENCE, "revokedCertificates")? {
            let mut lr = Reader::new(list.value);
            if lr.is_empty() {
                // RFC 5280: absent, not empty, when nothing is revoked.
                return Err(PkiError::Malformed("empty revokedCertificates"));
            }
            while !lr.is_empty() {
                match parse_entry(lr.expect(tag::SEQUENCE, "revoked certificate")?)? {
                    Listed::Revoked(e) => entries.push(e),
                    Listed::Removed(serial) => removed.push(serial),
                }
            }
        }
        let exts = r.expect(tag::ctx_cons(0), "crlExtensions (cRLNumber required)")?;
        r.finish("tbsCertList")?;

        let CrlExtensions { number, base, akid } = parse_crl_extensions(exts)?;

        if base.is_none() && !removed.is_empty() {
            return Err(PkiError::Malformed("removeFromCRL outside a delta CRL"));
        }
        if base.is_some_and(|b| b >= number) {
            return Err(PkiError::Malformed(
                "delta CRL number not above its base CRL number",
            ));
        }
        entries.sort_unstable_by_key(|e| e.serial);
        removed.sort_unstable();
        if entries.windows(2).any(|w| w[0].serial == w[1].serial)
            || removed.windows(2).any(|w| w[0] == w[1])
            || removed
                .iter()
                .any(|s| entries.binary_search_by_key(s, |e| e.serial).is_ok())
        {
            return Err(PkiError::Malformed("serial listed twice in CRL"));
        }
        let crl = Crl {
            der: der.to_vec(),
            tbs: signed.tbs_range.clone(),
            sig_suite: signed.suite,
            signature: signed.sig,
            issuer_name: issuer.raw.to_vec(),
            issuer_cn,
            number,
            this_update,
            next_update,
            akid,
            entries,
        };
        Ok((crl, base, removed))
    }

    /// Parse a PEM CRL (label `X509 CRL`).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        Self::from_der(&x509::from_pem(pem, "X509 CRL", CRL_BYTES_MAX)?)
    }

    /// The exact DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM (label `X509 CRL`, LF line endings).
    pub fn to_pem(&self) -> String {
        x509::to_pem("X509 CRL", &self.der)
    }

    /// SHA-256 of the DER.
    pub fn reference(&self) -> Hash32 {
        Hash32::digest(&self.der)
    }

    /// The cRLNumber: grows with every CRL an issuer publishes.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The issuer's commonName ("" if none).
    pub fn issuer_cn(&self) -> &str {
        &self.issuer_cn
    }

    /// The [`IssuerId`] of this CRL's issuer Name (the CA that signed it).
    pub fn issuer_id(&self) -> IssuerId {
        IssuerId::of_name_der(&self.issuer_name)
    }

    /// When this CRL was issued.
    pub fn this_update(&self) -> UnixSeconds {
        self.this_update
    }

    /// When the next CRL is due. Not enforced: see [`Crl::is_stale_at`].
    pub fn next_update(&self) -> UnixSeconds {
        self.next_update
    }

    /// `now` is past `next_update`: a newer CRL should exist. Offline wallets
    /// keep using a stale CRL (it still lists what it lists); the risk policy
    /// bounds how long a wallet may stay offline.
    pub fn is_stale_at(&self, now: UnixSeconds) -> bool {
        now > self.next_update
    }

    /// The revoked certificates, sorted by serial.
    pub fn entries(&self) -> &[RevokedEntry] {
        &self.entries
    }

    /// The entry for `serial`, if revoked (binary search).
    pub fn is_revoked(&self, serial: u64) -> Option<&RevokedEntry> {
        self.entries
            .binary_search_by_key(&serial, |e| e.serial)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// Check that `issuer` signed this CRL: issuer Name equal to `issuer`'s
    /// subject (DER) and, if both present, authorityKeyIdentifier equal to its
    /// subjectKeyIdentifier ([`PkiError::CrlWrongIssuer`]); `issuer` is a CA
    /// allowed to sign CRLs ([`PkiError::NotACrlIssuer`]); the signature
    /// verifies ([`PkiError::CrlBadSignature`]).
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        if self.issuer_name != issuer.subject_name {
            return Err(PkiError::CrlWrongIssuer);
        }
        if let (Some(a), Some(s)) = (self.akid.as_deref(), issuer.subject_key_id())
            && a != s
        {
            return Err(PkiError::CrlWrongIssuer);
        }
        if !issuer.may_sign_crls() {
            return Err(PkiError::NotACrlIssuer);
        }
        let tbs = self.der.get(self.tbs.clone()).unwrap_or_default();
        if !x509::verify(issuer.public_key(), self.sig_suite, tbs, &self.signature) {
            return Err(PkiError::CrlBadSignature);
        }
        Ok(())
    }
}

/// A delta CRL (RFC 5280 5.2.4): the changes from a base CRL, numbered
/// [`DeltaCrl::base_number`], to the CRL numbered [`DeltaCrl::number`]. It
/// carries the critical deltaCRLIndicator; its entries are the certificates
/// revoked since the base ([`DeltaCrl::revoked`]) and, with reasonCode
/// removeFromCRL, those that left the list since ([`DeltaCrl::removed`]:
/// offpay drops a revoked certificate once it has expired, RFC 5280
/// 5.1.2.6). Parsed like a [`Crl`] (same limits and refusals); a complete
/// CRL is not a delta ([`PkiError::CrlNotDelta`]). Applied to a held CRL by
/// [`CrlState::apply`].
#[derive(Clone, PartialEq, Eq)]
pub struct DeltaCrl {
    crl: Crl,
    base: u64,
    removed: Vec<u64>,
}

impl fmt::Debug for DeltaCrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaCrl")
            .field("issuer_cn", &self.crl.issuer_cn)
            .field("number", &self.crl.number)
            .field("base", &self.base)
            .field("revoked", &self.crl.entries.len())
            .field("removed", &self.removed.len())
            .field("bytes", &self.crl.der.len())
            .finish()
    }
}

impl DeltaCrl {
    /// Parse a DER delta CRL (at most [`CRL_BYTES_MAX`] bytes); a complete
    /// CRL is refused ([`PkiError::CrlNotDelta`]).
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        match Crl::parse(der)? {
            (crl, Some(base), removed) => Ok(DeltaCrl { crl, base, removed }),
            (_, None, _) => Err(PkiError::CrlNotDelta),
        }
    }

    /// The exact DER.
    pub fn der(&self) -> &[u8] {
        &self.crl.der
    }

    /// PEM (label `X509 CRL`, LF line endings).
    pub fn to_pem(&self) -> String {
        self.crl.to_pem()
    }

    /// The cRLNumber of the CRL this delta brings its base up to.
    pub fn number(&self) -> u64 {
        self.crl.number
    }

    /// The BaseCRLNumber of its deltaCRLIndicator: the CRL it applies to.
    pub fn base_number(&self) -> u64 {
        self.base
    }

    /// The [`IssuerId`] of its issuer Name.
    pub fn issuer_id(&self) -> IssuerId {
        self.crl.issuer_id()
    }

    /// When it was issued.
    pub fn this_update(&self) -> UnixSeconds {
        self.crl.this_update
    }

    /// Certificates revoked since the base, sorted by serial.
    pub fn revoked(&self) -> &[RevokedEntry] {
        &self.crl.entries
    }

    /// Serials that left the list since the base (removeFromCRL), ascending.
    pub fn removed(&self) -> &[u64] {
        &self.removed
    }

    /// Check that `issuer` signed it, as [`Crl::verify_signed_by`].
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        self.crl.verify_signed_by(issuer)
    }
}

/// Most deltas a [`CrlState`] holds on its base. A holder at this bound
/// asks for the complete CRL at its next sync (which replaces the base and
/// drops the deltas), so its sealed state stays bounded.
pub const CRL_DELTAS_HELD_MAX: usize = 16;

/// An issuer's revocation list as a holder keeps it: a signed complete CRL
/// and the signed deltas applied to it, in order (each one's base number the
/// number reached before it), with the list they add up to. Every part is
/// the issuer's signed DER, so the state can be verified again from its
/// parts at any time ([`CrlState::from_parts`]); nothing unsigned changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlState {
    base: Crl,
    deltas: Vec<DeltaCrl>,
    /// The list after the deltas (`None`: no delta, the base's entries).
    merged: Option<Vec<RevokedEntry>>,
}

impl CrlState {
    /// The state of a complete CRL alone (the caller has verified it).
    pub fn new(base: Crl) -> CrlState {
        CrlState {
            base,
            deltas: Vec::new(),
            merged: None,
        }
    }

    /// A base and its deltas, each signed by `issuer` and applied in order
    /// ([`CrlState::apply`]); the first refusal is returned.
    pub fn from_parts(
        base: Crl,
        deltas: Vec<DeltaCrl>,
        issuer: &Certificate,
    ) -> Result<CrlState, PkiError> {
        base.verify_signed_by(issuer)?;
        let mut s = CrlState::new(base);
        for d in deltas {
            d.verify_signed_by(issuer)?;
            s.apply(d)?;
        }
        Ok(s)
    }

    /// The CRL number this state stands at: the last delta's, else the base's.
    pub fn number(&self) -> u64 {
        self.deltas
            .last()
            .map_or(self.base.number, DeltaCrl::number)
    }

    /// The complete CRL the deltas apply to.
    pub fn base(&self) -> &Crl {
        &self.base
    }

    /// The deltas applied, in order.
    pub fn deltas(&self) -> &[DeltaCrl] {
        &self.deltas
    }

    /// The revoked certificates after every delta, sorted by serial.
    pub fn entries(&self) -> &[RevokedEntry] {
        self.merged.as_deref().unwrap_or(&self.base.entries)
    }

    /// The entry for `serial`, if revoked (binary search).
    pub fn is_revoked(&self, serial: u64) -> Option<&RevokedEntry> {
        let entries = self.entries();
        entries
            .binary_search_by_key(&serial, |e| e.serial)
            .ok()
            .and_then(|i| entries.get(i))
    }

    /// Whether this state may take one more delta ([`CRL_DELTAS_HELD_MAX`]).
    pub fn accepts_deltas(&self) -> bool {
        self.deltas.len() < CRL_DELTAS_HELD_MAX
    }

    /// Apply `delta`, whose signature the caller has verified against this
    /// state's issuer CA: its issuer Name is the base's
    /// ([`PkiError::CrlWrongIssuer`]), its base number is the number this
    /// state stands at ([`PkiError::CrlDeltaBaseMismatch`]), and the state
    /// holds fewer than [`CRL_DELTAS_HELD_MAX`] deltas
    /// ([`PkiError::CrlDeltasFull`]). On error nothing changes.
    pub fn apply(&mut self, delta: DeltaCrl) -> Result<(), PkiError> {
        if delta.crl.issuer_name != self.base.issuer_name {
            return Err(PkiError::CrlWrongIssuer);
        }
        let held = self.number();
        if delta.base != held {
            return Err(PkiError::CrlDeltaBaseMismatch {
                held,
                base: delta.base,
            });
        }
        if !self.accepts_deltas() {
            return Err(PkiError::CrlDeltasFull);
        }
        let mut next: Vec<RevokedEntry> = self
            .entries()
            .iter()
            .filter(|e| {
                delta.removed.binary_search(&e.serial).is_err()
                    && delta
                        .crl
                        .entries
                        .binary_search_by_key(&e.serial, |d| d.serial)
                        .is_err()
            })
            .copied()
            .collect();
        next.extend_from_slice(&delta.crl.entries);
        next.sort_unstable_by_key(|e| e.serial);
        self.merged = Some(next);
        self.deltas.push(delta);
        Ok(())
    }
}

/// The crlExtensions of a CRL: cRLNumber (required), the base CRL number of a
/// deltaCRLIndicator (critical), the authorityKeyIdentifier; any other
/// critical extension is refused.
struct CrlExtensions {
    number: u64,
    base: Option<u64>,
    akid: Option<Vec<u8>>,
}

fn parse_crl_extensions(exts: &[u8]) -> Result<CrlExtensions, PkiError> {
    let mut number = None;
    let mut base = None;
    let mut akid = None;
    for e in x509::parse_extensions(asn1::single(exts, tag::SEQUENCE, "crlExtensions")?)? {
        match e.oid {
            oid::CRL_NUMBER => {
                const WHAT: &str = "cRLNumber (must fit in 64 bits)";
                number = Some(asn1::uint_u64(
                    asn1::single(e.value, tag::INTEGER, WHAT)?,
                    WHAT,
                )?);
            }
            oid::DELTA_CRL_INDICATOR => {
                const WHAT: &str = "deltaCRLIndicator (critical, must fit in 64 bits)";
                if !e.critical {
                    return Err(PkiError::Malformed(WHAT));
                }
                base = Some(asn1::uint_u64(
                    asn1::single(e.value, tag::INTEGER, WHAT)?,
                    WHAT,
                )?);
            }
            oid::AKID => akid = x509::parse_akid(e.value)?,
            _ if e.critical => return Err(PkiError::UnsupportedCriticalExtension),
            _ => {}
        }
    }
    let number = number.ok_or(PkiError::Malformed("cRLNumber missing"))?;
    Ok(CrlExtensions { number, base, akid })
}

/// One entry of a CRL's list: a revocation, or (delta CRLs only) a removal.
enum Listed {
    Revoked(RevokedEntry),
    Removed(u64),
}

/// The removeFromCRL reason code (RFC 5280 5.3.1): delta CRLs only.
const REMOVE_FROM_CRL: u8 = 8;

fn parse_entry(value: &[u8]) -> Result<Listed, PkiError> {
    const SERIAL: &str = "revoked serial (positive, must fit in 64 bits)";
    let mut r = Reader::new(value);
    let serial = asn1::uint_u64(r.expect(tag::INTEGER, SERIAL)?, SERIAL)?;
    if serial == 0 {
        return Err(PkiError::Malformed(SERIAL));
    }
    let revoked_at = asn1::time(r.any("revocationDate")?, "revocationDate")?;
    let mut reason = RevocationReason::Unspecified;
    let mut removal = false;
    if let Some(exts) = r.optional(tag::SEQUENCE, "crlEntryExtensions")? {
        for e in x509::parse_extensions(exts.value)? {
            match e.oid {
                oid::REASON_CODE => {
                    const WHAT: &str = "reasonCode";
                    let code = asn1::uint_u64(asn1::single(e.value, tag::ENUMERATED, WHAT)?, WHAT)?;
                    if code == u64::from(REMOVE_FROM_CRL) {
                        removal = true;
                    } else {
                        reason =
                            RevocationReason::from_code(code).ok_or(PkiError::Malformed(WHAT))?;
                    }
                }
                _ if e.critical => return Err(PkiError::UnsupportedCriticalExtension),
                _ => {}
            }
        }
    }
    r.finish("revoked certificate")?;
    if removal {
        return Ok(Listed::Removed(serial));
    }
    Ok(Listed::Revoked(RevokedEntry {
        serial,
        revoked_at,
        reason,
    }))
}

/// Issue a full CRL signed by an issuer CA: version v2, `thisUpdate`,
/// `nextUpdate`, cRLNumber `number`, authorityKeyIdentifier; each entry with
/// its revocationDate and, unless unspecified, a reasonCode. Entries are
/// written sorted by serial; a serial listed twice or zero is refused
/// ([`PkiError::InvalidArgument`]), and so is a result over [`CRL_BYTES_MAX`]
/// ([`PkiError::TooLarge`]; about 25 000 entries).
pub fn issue_crl(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    number: u64,
    this_update: UnixSeconds,
    next_update: UnixSeconds,
    revoked: &[RevokedEntry],
) -> Result<Crl, PkiError> {
    let der = build_crl(
        issuer_key,
        issuer,
        number,
        this_update,
        next_update,
        revoked,
        None,
    )?;
    check_size(&der)?;
    Crl::from_der(&der)
}

/// What a delta CRL lists: the certificates revoked since its base and the
/// serials that left the list since.
#[derive(Clone, Copy, Debug)]
pub struct CrlChanges<'a> {
    /// Revoked since the base CRL.
    pub revoked: &'a [RevokedEntry],
    /// Left the list since the base CRL (expired), as removeFromCRL entries.
    pub removed: &'a [u64],
}

/// Issue a delta CRL (RFC 5280 5.2.4) signed by an issuer CA: what changed
/// from the CRL numbered `base` to the CRL numbered `number` (> `base`).
/// Like [`issue_crl`] plus the critical deltaCRLIndicator naming `base`;
/// `changes.revoked` are the certificates revoked since, `changes.removed`
/// the serials that left the list since (each an entry with revocationDate `this_update` and
/// reasonCode removeFromCRL). A serial in both lists, twice or zero, or
/// `number <= base`, is refused ([`PkiError::InvalidArgument`]).
pub fn issue_delta_crl(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    number: u64,
    base: u64,
    this_update: UnixSeconds,
    next_update: UnixSeconds,
    changes: CrlChanges<'_>,
) -> Result<DeltaCrl, PkiError> {
    let CrlChanges { revoked, removed } = changes;
    if number <= base {
        return Err(PkiError::InvalidArgument(
            "delta CRL number must exceed its base",
        ));
    }
    let der = build_crl(
        issuer_key,
        issuer,
        number,
        this_update,
        next_update,
        revoked,
        Some((base, removed)),
    )?;
    check_size(&der)?;
    DeltaCrl::from_der(&der)
}

/// The DER of a complete CRL as [`issue_crl`] signs it, without the
/// [`CRL_BYTES_MAX`] limit: for measuring what a CRL of many entries would
/// weigh (such a CRL cannot be parsed or carried).
pub fn issue_crl_der_unbounded(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    number: u64,
    this_update: UnixSeconds,
    next_update: UnixSeconds,
    revoked: &[RevokedEntry],
) -> Result<Vec<u8>, PkiError> {
    build_crl(
        issuer_key,
        issuer,
        number,
        this_update,
        next_update,
        revoked,
        None,
    )
}

fn check_size(der: &[u8]) -> Result<(), PkiError> {
    if der.len() > CRL_BYTES_MAX {
        return Err(PkiError::TooLarge {
            len: der.len(),
            max: CRL_BYTES_MAX,
        });
    }
    Ok(())
}

/// Sign a complete CRL, or with `delta` (base number, removed serials) a
/// delta CRL.
fn build_crl(
    issuer_key: &dyn Signer,
    issuer: &Certificate,
    number: u64,
    this_update: UnixSeconds,
    next_update: UnixSeconds,
    revoked: &[RevokedEntry],
    delta: Option<(u64, &[u64])>,
) -> Result<Vec<u8>, PkiError> {
    if issuer_key.public_key() != *issuer.public_key() {
        return Err(PkiError::InvalidArgument(
            "signing key does not match the issuer certificate",
        ));
    }
    if !issuer.may_sign_crls() {
        return Err(PkiError::NotACrlIssuer);
    }
    if next_update < this_update {
        return Err(PkiError::InvalidArgument(
            "next_update is before this_update",
        ));
    }
    let removed = delta.map_or(&[][..], |(_, r)| r);
    let mut sorted: Vec<(u64, Option<&RevokedEntry>)> = revoked
        .iter()
        .map(|e| (e.serial, Some(e)))
        .chain(removed.iter().map(|s| (*s, None)))
        .collect();
    sorted.sort_unstable_by_key(|(serial, _)| *serial);
    if sorted.first().is_some_and(|(serial, _)| *serial == 0) {
        return Err(PkiError::InvalidArgument("revoked serial must be positive"));
    }
    if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(PkiError::InvalidArgument("serial listed twice"));
    }

    let mut list = Vec::with_capacity(sorted.len() * 40);
    for (serial, e) in &sorted {
        let mut entry = asn1::uint(*serial);
        let (at, code) = match e {
            Some(e) => (e.revoked_at, e.reason.code()),
            None => (this_update, REMOVE_FROM_CRL),
        };
        entry.extend_from_slice(&asn1::put_time(at)?);
        if code != RevocationReason::Unspecified.code() {
            let code = asn1::tlv(tag::ENUMERATED, &[code]);
            entry.extend_from_slice(&asn1::seq(&[&encode_extension(
                oid::REASON_CODE,
                false,
                &code,
            )]));
        }
        asn1::put(&mut list, tag::SEQUENCE, &entry);
    }
    let number_ext = encode_extension(oid::CRL_NUMBER, false, &asn1::uint(number));
    let akid_ext = encode_extension(
        oid::AKID,
        false,
        &x509::encode_akid(&issuer.key_identifier()),
    );
    let exts = match delta {
        None => asn1::seq(&[&number_ext, &akid_ext]),
        Some((base, _)) => asn1::seq(&[
            &number_ext,
            &encode_extension(oid::DELTA_CRL_INDICATOR, true, &asn1::uint(base)),
            &akid_ext,
        ]),
    };
    let mut tbs_body = Vec::with_capacity(list.len() + 256);
    tbs_body.extend_from_slice(&asn1::uint(1));
    tbs_body.extend_from_slice(x509::signature_algorithm(issuer_key.suite()));
    tbs_body.extend_from_slice(&issuer.subject_name);
    tbs_body.extend_from_slice(&asn1::put_time(this_update)?);
    tbs_body.extend_from_slice(&asn1::put_time(next_update)?);
    if !list.is_empty() {
        asn1::put(&mut tbs_body, tag::SEQUENCE, &list);
    }
    asn1::put(&mut tbs_body, tag::ctx_cons(0), &exts);
    let tbs = asn1::tlv(tag::SEQUENCE, &tbs_body);
    x509::sign(issuer_key, &tbs)
}
