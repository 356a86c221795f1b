//! Certificates the issuer hands out and takes back: a wallet certificate
//! (at enrollment and when a sync renews it) and a revocation with its new
//! CRL (by the operator, or when a sync proves a double spend).

use offpay_protocol::messages::RiskPolicy;
use offpay_protocol::pki::{Certificate, PolicyRef, RevocationReason, RevokedEntry, WalletProfile};
use offpay_protocol::{PublicKey, UnixSeconds, WalletId};

use crate::ca::CertificateFactory;
use crate::error::{IssuerError, reason_text};
use crate::store::{RevocationRecord, Tx, WalletRecord, WalletState};

/// Issue the next wallet certificate for `key` (of `profile`) under the
/// policy in force and record it; returns it with its serial.
pub(crate) fn issue_wallet_certificate(
    ca: &CertificateFactory,
    policy: &RiskPolicy,
    tx: &mut dyn Tx,
    key: &PublicKey,
    wallet: WalletId,
    profile: WalletProfile,
    now: UnixSeconds,
) -> Result<(Certificate, u64), IssuerError> {
    let serial = tx.next_counter("serial")?;
    let cert = ca.issue_wallet(
        key,
        wallet,
        PolicyRef {
            id: policy.id,
            epoch: policy.epoch,
        },
        profile,
        serial,
        now,
        policy.cert_validity_seconds,
    )?;
    tx.insert_certificate(serial, &wallet, cert.der())?;
    Ok((cert, serial))
}

/// Revoke every certificate of `w` (the caller writes `w` back) and publish a
/// new CRL if any was not revoked yet.
pub(crate) fn revoke(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    w: &mut WalletRecord,
    reason: RevocationReason,
    why: &str,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    if w.state != WalletState::Closed {
        w.state = WalletState::Revoked;
    }
    w.reason = Some(reason_text(why));
    w.unlock_pending = false;
    let mut changed = false;
    for (serial, der) in tx.certificates_of(&w.id)? {
        changed |= tx.insert_revocation(&RevocationRecord {
            serial,
            wallet: w.id,
            reason_code: reason.code(),
            reason: reason_text(why),
            time: now,
            not_after: Some(Certificate::from_der(&der)?.not_after()),
            crl_added: None,
            crl_removed: None,
        })?;
    }
    if changed {
        publish_crl(ca, tx, now)?;
    }
    Ok(())
}

/// The setting holding the lowest CRL number a delta may be based on: every
/// revocation has its CRL numbers from that CRL on. Set by the first CRL
/// published with them: 1 when no revocation was recorded before (every CRL
/// until then was empty), else that CRL's number (revocations recorded
/// before migration 0007 have no CRL numbers: a wallet holding an older CRL
/// gets the complete one).
const DELTA_FLOOR: &str = "crl.delta_floor";
/// The setting holding the earliest notAfter of a certificate the current
/// CRL lists (absent: it lists none with a known expiry).
const NEXT_EXPIRY: &str = "crl.next_expiry";
/// The setting holding the number of entries of the current CRL.
const ENTRIES: &str = "crl.entries";
/// How many CRL numbers back a delta may be based: a wallet holding an
/// older CRL gets the complete one.
pub(crate) const CRL_DELTA_BASES_MAX: u64 = 4096;

fn setting_u64(tx: &mut dyn Tx, key: &str) -> Result<Option<u64>, IssuerError> {
    match tx.setting(key)? {
        None => Ok(None),
        Some(v) => Ok(Some(u64::from_be_bytes(v.as_slice().try_into().map_err(
            |_| IssuerError::Store(crate::store::StoreError::Corrupt(format!("setting {key}"))),
        )?))),
    }
}

fn entry(r: &RevocationRecord) -> RevokedEntry {
    RevokedEntry {
        serial: r.serial,
        revoked_at: r.time,
        reason: RevocationReason::from_code(u64::from(r.reason_code))
            .unwrap_or(RevocationReason::Unspecified),
    }
}

/// Sign and store the next CRL: every revocation whose certificate has not
/// expired at `now` (an expired one leaves the list, RFC 5280 5.1.2.6: the
/// payee refuses an expired certificate anyway). Fills in the notAfter of
/// revocations recorded before it was kept, from their certificates.
pub(crate) fn publish_crl(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let number = tx.next_counter("crl")?;
    let unknown: Vec<RevocationRecord> = tx
        .listed_revocations()?
        .into_iter()
        .filter(|r| r.not_after.is_none())
        .collect();
    let legacy = !unknown.is_empty();
    let mut wallets: Vec<_> = unknown.iter().map(|r| r.wallet).collect();
    wallets.sort_unstable();
    wallets.dedup();
    for wallet in wallets {
        for (serial, der) in tx.certificates_of(&wallet)? {
            if unknown.iter().any(|r| r.serial == serial) {
                let not_after = Certificate::from_der(&der)?.not_after();
                tx.set_revocation_not_after(serial, not_after)?;
            }
        }
    }
    tx.mark_crl(number, now)?;
    let listed = tx.listed_revocations()?;
    let entries: Vec<RevokedEntry> = listed.iter().map(entry).collect();
    let crl = ca.issue_crl(number, now, &entries)?;
    tx.set_setting("crl", crl.der())?;
    tx.set_setting(ENTRIES, &(entries.len() as u64).to_be_bytes())?;
    let expiry = listed.iter().filter_map(|r| r.not_after).min();
    tx.set_setting(NEXT_EXPIRY, &expiry.map_or(u64::MAX, |t| t.0).to_be_bytes())?;
    if tx.setting(DELTA_FLOOR)?.is_none() {
        let floor = if legacy { number } else { 1 };
        tx.set_setting(DELTA_FLOOR, &floor.to_be_bytes())?;
    }
    Ok(())
}

/// What a sync response carries of our CRL: at most one of the two.
#[derive(Debug, Default)]
pub(crate) struct CrlPart {
    /// The complete CRL (DER).
    pub(crate) complete: Option<Vec<u8>>,
    /// A delta CRL (DER) on the wallet's number.
    pub(crate) delta: Option<Vec<u8>>,
}

/// The CRL part of a sync response for a wallet holding our CRL numbered
/// `held` (`None`: none, or it wants the complete one). First, if a certificate the current CRL lists has
/// expired, the next CRL is published without it. Then: nothing when `held`
/// is the current number; a delta CRL on `held` when `held` is at or above
/// the delta floor, at most [`CRL_DELTA_BASES_MAX`] numbers back, and the
/// delta has no more entries than the complete CRL; else the complete CRL.
pub(crate) fn crl_for_sync(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    held: Option<u64>,
    now: UnixSeconds,
) -> Result<CrlPart, IssuerError> {
    if setting_u64(tx, NEXT_EXPIRY)?.is_some_and(|e| e < now.0) {
        publish_crl(ca, tx, now)?;
    }
    let number = setting_u64(tx, "counter.crl")?.ok_or(IssuerError::NotInitialised)?;
    if let Some(h) = held {
        if h == number {
            return Ok(CrlPart::default());
        }
        let floor = setting_u64(tx, DELTA_FLOOR)?;
        if h < number && floor.is_some_and(|f| h >= f) && number - h <= CRL_DELTA_BASES_MAX {
            let (added, removed) = tx.crl_changes(h)?;
            let listed = setting_u64(tx, ENTRIES)?.unwrap_or(0);
            if (added.len() + removed.len()) as u64 <= listed {
                let revoked: Vec<RevokedEntry> = added.iter().map(entry).collect();
                let d = ca.issue_delta_crl(number, h, now, &revoked, &removed)?;
                return Ok(CrlPart {
                    complete: None,
                    delta: Some(d.der().to_vec()),
                });
            }
        }
    }
    Ok(CrlPart {
        complete: tx.setting("crl")?,
        delta: None,
    })
}
