//! Trust in a scheme of many issuers: the root, every admitted issuer CA, each
//! issuer's CRL of wallet certificates, and the root-signed CRL of issuer CAs.

use std::collections::BTreeMap;

use super::cert::Certificate;
use super::crl::{Crl, CrlState, DeltaCrl, RevocationReason};
use super::{PkiError, check_leaf};
use crate::types::{IssuerId, IssuerStatus, UnixSeconds, WalletId};

/// What a wallet, an issuer or the scheme trusts: the scheme root, the issuer
/// CA certificates it admitted (each verified against the root when added),
/// their CRLs (each verified against its issuer CA, complete or complete with
/// the delta CRLs applied to it: a [`CrlState`]) and the root-signed issuer
/// CRL (suspensions and revocations of issuer CAs). One implementation for
/// every holder; a standalone issuer is a scheme of one.
///
/// Every setter verifies before it changes anything: on error the trust is as
/// it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemeTrust {
    root: Certificate,
    issuer_crl: Option<Crl>,
    issuers: BTreeMap<IssuerId, (Certificate, Option<CrlState>)>,
}

impl SchemeTrust {
    /// Trust in `root` alone (the caller has it from a trusted source: the
    /// embedded anchor, the enrollment).
    pub fn new(root: Certificate) -> SchemeTrust {
        SchemeTrust {
            root,
            issuer_crl: None,
            issuers: BTreeMap::new(),
        }
    }

    /// Admit an issuer CA certificate: not the root, issued and signed by the
    /// root, allowed by the root's path length, a CA that may sign
    /// certificates. Its id ([`Certificate::subject_issuer_id`]). Adding the
    /// same certificate again changes nothing; a different certificate for the
    /// same id (a renewed CA) replaces it, keeping the CRL only if the new
    /// certificate verifies it (its base and every delta).
    pub fn add_issuer(&mut self, ca: Certificate) -> Result<IssuerId, PkiError> {
        if ca == self.root {
            return Err(PkiError::WrongIssuer);
        }
        ca.verify_signed_by(&self.root)?;
        if self.root.path_len() == Some(0) {
            return Err(PkiError::PathLenExceeded);
        }
        if !ca.may_sign_certificates() {
            return Err(PkiError::NotACa);
        }
        let id = ca.subject_issuer_id();
        let crl = match self.issuers.remove(&id) {
            Some((old, crl)) if old == ca => crl,
            Some((_, crl)) => crl.filter(|c| {
                c.base().verify_signed_by(&ca).is_ok()
                    && c.deltas().iter().all(|d| d.verify_signed_by(&ca).is_ok())
            }),
            None => None,
        };
        self.issuers.insert(id, (ca, crl));
        Ok(id)
    }

    /// Install the root-signed CRL of issuer CAs. `Ok(true)` if it replaced an
    /// older one (greater cRLNumber) or was the first; `Ok(false)` if it is not
    /// newer than the one held (kept unchanged: a stale or replayed CRL is ignored).
    pub fn set_issuer_crl(&mut self, crl: Crl) -> Result<bool, PkiError> {
        crl.verify_signed_by(&self.root)?;
        if let Some(cur) = &self.issuer_crl
            && crl.number() <= cur.number()
        {
            return Ok(false);
        }
        self.issuer_crl = Some(crl);
        Ok(true)
    }

    /// Install an issuer's complete CRL of wallet certificates, signed by an
    /// admitted issuer CA ([`PkiError::UnknownIssuer`] otherwise). `Ok(true)`
    /// if newer (greater cRLNumber) than the one held or the first, or of the
    /// number a held CRL reached by deltas (the complete CRL replaces the
    /// base and its deltas); `Ok(false)` if not (ignored).
    pub fn set_crl(&mut self, crl: Crl) -> Result<bool, PkiError> {
        let id = crl.issuer_id();
        let (ca, held) = self.issuers.get_mut(&id).ok_or(PkiError::UnknownIssuer)?;
        crl.verify_signed_by(ca)?;
        if let Some(cur) = held
            && (crl.number() < cur.number()
                || (crl.number() == cur.number() && cur.deltas().is_empty()))
        {
            return Ok(false);
        }
        *held = Some(CrlState::new(crl));
        Ok(true)
    }

    /// Install a holder's CRL state of one issuer (a complete CRL with the
    /// deltas applied to it), its base and every delta signed by that
    /// admitted issuer CA. `Ok(true)` if it stands at a number at least the
    /// one held (or none is held), `Ok(false)` if older (ignored).
    pub fn set_crl_state(&mut self, state: CrlState) -> Result<bool, PkiError> {
        let id = state.base().issuer_id();
        let (ca, held) = self.issuers.get_mut(&id).ok_or(PkiError::UnknownIssuer)?;
        state.base().verify_signed_by(ca)?;
        for d in state.deltas() {
            d.verify_signed_by(ca)?;
        }
        if held
            .as_ref()
            .is_some_and(|cur| state.number() < cur.number())
        {
            return Ok(false);
        }
        *held = Some(state);
        Ok(true)
    }

    /// Apply a delta CRL to the CRL held of its issuer: signed by that
    /// admitted issuer CA ([`PkiError::UnknownIssuer`],
    /// [`PkiError::CrlWrongIssuer`], [`PkiError::CrlBadSignature`]), on the
    /// number held ([`PkiError::CrlDeltaBaseMismatch`]; held 0 when no CRL
    /// of that issuer is held), within [`super::CRL_DELTAS_HELD_MAX`]
    /// ([`PkiError::CrlDeltasFull`]). On error nothing changes.
    pub fn apply_crl_delta(&mut self, delta: DeltaCrl) -> Result<(), PkiError> {
        let id = delta.issuer_id();
        let (ca, held) = self.issuers.get_mut(&id).ok_or(PkiError::UnknownIssuer)?;
        delta.verify_signed_by(ca)?;
        match held {
            Some(cur) => cur.apply(delta),
            None => Err(PkiError::CrlDeltaBaseMismatch {
                held: 0,
                base: delta.base_number(),
            }),
        }
    }

    /// The scheme root.
    pub fn root(&self) -> &Certificate {
        &self.root
    }

    /// The root-signed issuer CRL held, if any.
    pub fn issuer_crl(&self) -> Option<&Crl> {
        self.issuer_crl.as_ref()
    }

    /// An admitted issuer's CA certificate.
    pub fn issuer(&self, id: &IssuerId) -> Option<&Certificate> {
        self.issuers.get(id).map(|(c, _)| c)
    }

    /// An admitted issuer's complete CRL of wallet certificates held, if
    /// any (the base of [`SchemeTrust::crl_state`]).
    pub fn crl(&self, id: &IssuerId) -> Option<&Crl> {
        self.crl_state(id).map(CrlState::base)
    }

    /// An admitted issuer's CRL held with the deltas applied to it, if any.
    pub fn crl_state(&self, id: &IssuerId) -> Option<&CrlState> {
        self.issuers.get(id).and_then(|(_, c)| c.as_ref())
    }

    /// The admitted issuers' ids, ascending.
    pub fn issuer_ids(&self) -> impl Iterator<Item = &IssuerId> + '_ {
        self.issuers.keys()
    }

    /// Number of admitted issuers held.
    pub fn issuer_count(&self) -> usize {
        self.issuers.len()
    }

    /// An admitted issuer's standing per the issuer CRL held (`None`: not
    /// admitted). No issuer CRL held: every admitted issuer is active.
    pub fn issuer_status(&self, id: &IssuerId) -> Option<IssuerStatus> {
        let (ca, _) = self.issuers.get(id)?;
        Some(
            match self
                .issuer_crl
                .as_ref()
                .and_then(|c| c.is_revoked(ca.serial()))
            {
                None => IssuerStatus::Active,
                Some(e) if e.reason == RevocationReason::CertificateHold => IssuerStatus::Suspended,
                Some(_) => IssuerStatus::Revoked,
            },
        )
    }

    /// The full offline check of a peer's wallet certificate at `now`: its
    /// issuer CA admitted ([`PkiError::UnknownIssuer`]) and active
    /// ([`PkiError::IssuerSuspended`] / [`PkiError::IssuerRevoked`]), the
    /// root and the issuer CA valid at `now`, the leaf signed by the issuer
    /// CA, a wallet certificate valid at `now`, and not on that issuer's CRL
    /// ([`PkiError::Revoked`]; a stale CRL still counts). The wallet id and
    /// the issuer id.
    pub fn validate_wallet(
        &self,
        cert: &Certificate,
        now: UnixSeconds,
    ) -> Result<(WalletId, IssuerId), PkiError> {
        let (id, ca, crl) = self.active_issuer_of(cert, now)?;
        let wallet = check_leaf(ca, cert, now)?;
        not_revoked(crl, cert)?;
        Ok((wallet, id))
    }

    /// [`SchemeTrust::validate_wallet`] for a certificate that passed it
    /// before (a holder's cache): everything again but the leaf's signature
    /// (the issuer's status, the validity periods at `now`, the CRL held now).
    pub fn revalidate_wallet(
        &self,
        cert: &Certificate,
        now: UnixSeconds,
    ) -> Result<(WalletId, IssuerId), PkiError> {
        let (id, _, crl) = self.active_issuer_of(cert, now)?;
        let (wallet, _policy) = cert.wallet_identity()?;
        cert.check_validity(now)?;
        not_revoked(crl, cert)?;
        Ok((wallet, id))
    }

    /// The issuer CA of `cert` (by its issuer name), admitted and active, the
    /// root and that CA valid at `now`: what both validations start with.
    fn active_issuer_of(
        &self,
        cert: &Certificate,
        now: UnixSeconds,
    ) -> Result<(IssuerId, &Certificate, Option<&CrlState>), PkiError> {
        let id = cert.issuer_id();
        let (ca, crl) = self.issuers.get(&id).ok_or(PkiError::UnknownIssuer)?;
        match self.issuer_status(&id) {
            Some(IssuerStatus::Active) => {}
            Some(IssuerStatus::Suspended) => return Err(PkiError::IssuerSuspended),
            Some(IssuerStatus::Revoked) | None => return Err(PkiError::IssuerRevoked),
        }
        self.root.check_validity(now)?;
        ca.check_validity(now)?;
        Ok((id, ca, crl.as_ref()))
    }

    /// The chain only: `cert` is a wallet certificate signed by an admitted
    /// issuer CA, whatever that issuer's status, the validity periods and the
    /// leaf's revocation. What a backend needs to settle a payment on the
    /// payer's signature alone (finality: a payment accepted offline stays
    /// owed).
    pub fn verify_wallet_signed(
        &self,
        cert: &Certificate,
    ) -> Result<(WalletId, IssuerId), PkiError> {
        let id = cert.issuer_id();
        let (ca, _) = self.issuers.get(&id).ok_or(PkiError::UnknownIssuer)?;
        cert.verify_signed_by(ca)?;
        let (wallet, _policy) = cert.wallet_identity()?;
        Ok((wallet, id))
    }
}

/// `cert` is not on `crl` (the held state of its issuer's CRL).
fn not_revoked(crl: Option<&CrlState>, cert: &Certificate) -> Result<(), PkiError> {
    match crl.and_then(|c| c.is_revoked(cert.serial())) {
        Some(e) => Err(PkiError::Revoked { serial: e.serial }),
        None => Ok(()),
    }
}
