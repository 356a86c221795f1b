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
    for (serial, _) in tx.certificates_of(&w.id)? {
        changed |= tx.insert_revocation(&RevocationRecord {
            serial,
            wallet: w.id,
            reason_code: reason.code(),
            reason: reason_text(why),
            time: now,
        })?;
    }
    if changed {
        publish_crl(ca, tx, now)?;
    }
    Ok(())
}

/// Sign and store the next CRL, listing every revocation.
fn publish_crl(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let number = tx.next_counter("crl")?;
    let entries: Vec<RevokedEntry> = tx
        .revocations()?
        .into_iter()
        .map(|r| RevokedEntry {
            serial: r.serial,
            revoked_at: r.time,
            reason: RevocationReason::from_code(r.reason_code as u64)
                .unwrap_or(RevocationReason::Unspecified),
        })
        .collect();
    let crl = ca.issue_crl(number, now, &entries)?;
    tx.set_setting("crl", crl.der())?;
    Ok(())
}
