//! PIN lockout recovery, the issuer's half (the wallet's half and the whole
//! story: `offpay_wallet::recovery`).
//!
//! A PIN-locked wallet sends a [`PinLockedRequest`]: its id, its wrong-PIN
//! count and a fresh nonce, signed by an unlock key that the wallet key
//! granted ([`PinUnlockGrant`]). The issuer verifies both signatures against
//! the wallet's certificate and records the request, one per wallet (a new
//! nonce replaces an older request and its approval). The operator approves
//! it once the customer re-authenticated with the bank
//! ([`Issuer::approve_pin_unlock`]); from then on the same request is
//! answered with a [`PinUnlock`] signed by the issuer CA key, bound to that
//! wallet, that count and that nonce. Nothing else changes: no money moves,
//! the wallet's lifecycle state is untouched.
//!
//! Stored in the settings table under `pin-unlock:<wallet hex>`: nonce (16
//! bytes), attempts, requested, approved (0 = not yet), each a u64 LE (40
//! bytes).

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{PinLockedRequest, PinUnlock, PinUnlockGrant};
use offpay_protocol::pki::Certificate;
use offpay_protocol::{Nonce, PublicKey, Suite, UnixSeconds, WalletId};

use crate::error::{InputError, IssuerError, Signature};
use crate::issuer::Issuer;
use crate::store::{Store, Tx};

/// Length of a stored unlock request.
const RECORD_BYTES: usize = 16 + 8 * 3;

/// A PIN unlock request as the issuer keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinUnlockRequest {
    /// The wallet.
    pub wallet: WalletId,
    /// The wallet's fresh nonce.
    pub nonce: Nonce,
    /// The wrong-PIN count it reported.
    pub attempts: u64,
    /// When it arrived (first time).
    pub requested: UnixSeconds,
    /// When the operator approved it.
    pub approved: Option<UnixSeconds>,
}

/// The answer to a [`PinLockedRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinUnlockAnswer {
    /// Recorded; the operator has not approved it yet.
    Pending(PinUnlockRequest),
    /// Approved: the signed [`PinUnlock`] envelope.
    Unlocked(Vec<u8>),
}

fn key(wallet: &WalletId) -> String {
    format!("pin-unlock:{}", wallet.to_hex())
}

fn encode(r: &PinUnlockRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_BYTES);
    out.extend_from_slice(&r.nonce.0);
    out.extend_from_slice(&r.attempts.to_le_bytes());
    out.extend_from_slice(&r.requested.0.to_le_bytes());
    out.extend_from_slice(&r.approved.map_or(0, |t| t.0).to_le_bytes());
    out
}

fn decode(wallet: WalletId, b: &[u8]) -> Result<PinUnlockRequest, IssuerError> {
    let corrupt = || IssuerError::Store(crate::store::StoreError::Corrupt("pin unlock".into()));
    if b.len() != RECORD_BYTES {
        return Err(corrupt());
    }
    let u = |at: usize| -> Result<u64, IssuerError> {
        b.get(at..at + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
            .ok_or_else(corrupt)
    };
    let nonce = b
        .get(..16)
        .and_then(|s| <[u8; 16]>::try_from(s).ok())
        .ok_or_else(corrupt)?;
    let approved = u(32)?;
    Ok(PinUnlockRequest {
        wallet,
        nonce: Nonce(nonce),
        attempts: u(16)?,
        requested: UnixSeconds(u(24)?),
        approved: (approved != 0).then_some(UnixSeconds(approved)),
    })
}

fn stored(tx: &mut dyn Tx, wallet: &WalletId) -> Result<Option<PinUnlockRequest>, IssuerError> {
    tx.setting(&key(wallet))?
        .map(|b| decode(*wallet, &b))
        .transpose()
}

impl<S: Store> Issuer<S> {
    /// Verify a [`PinLockedRequest`] envelope, record it, and answer it: the
    /// signed [`PinUnlock`] if the operator approved this request, else
    /// [`PinUnlockAnswer::Pending`].
    ///
    /// # Errors
    /// [`IssuerError::Malformed`], [`IssuerError::UnknownWallet`],
    /// [`IssuerError::BadSignature`] (which signature), [`IssuerError::InvalidInput`]
    /// (a grant for another wallet), [`IssuerError::WalletNotActive`] for a
    /// revoked wallet; storage errors.
    pub fn pin_locked_request(
        &self,
        bytes: &[u8],
        now: UnixSeconds,
    ) -> Result<PinUnlockAnswer, IssuerError> {
        let request = Signed::<PinLockedRequest>::decode(bytes).map_err(IssuerError::Malformed)?;
        let body = request.body().clone();
        let grant =
            Signed::<PinUnlockGrant>::decode(&body.grant).map_err(IssuerError::Malformed)?;
        if grant.body().wallet != body.wallet {
            return Err(InputError::UnlockGrantForeign.into());
        }
        self.with_tx(|tx| {
            let w = tx
                .wallet(&body.wallet, true)?
                .ok_or(IssuerError::UnknownWallet)?;
            if w.state.is_revoked() {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            let cert = Certificate::from_der(&w.cert_der).map_err(IssuerError::Certificate)?;
            grant
                .verify(cert.public_key())
                .map_err(|_| IssuerError::BadSignature(Signature::UnlockGrant))?;
            let unlock_key = PublicKey::from_bytes(Suite::Ed25519, &grant.body().unlock_key)
                .map_err(|_| IssuerError::BadSignature(Signature::UnlockKey))?;
            request
                .verify(&unlock_key)
                .map_err(|_| IssuerError::BadSignature(Signature::PinLockedRequest))?;
            let record = match stored(tx, &body.wallet)? {
                Some(r) if r.nonce == body.nonce && r.attempts == body.attempts => r,
                _ => {
                    let r = PinUnlockRequest {
                        wallet: body.wallet,
                        nonce: body.nonce,
                        attempts: body.attempts,
                        requested: now,
                        approved: None,
                    };
                    tx.set_setting(&key(&body.wallet), &encode(&r))?;
                    r
                }
            };
            Ok(match record.approved {
                None => PinUnlockAnswer::Pending(record),
                Some(issued) => PinUnlockAnswer::Unlocked(
                    Signed::try_sign(
                        PinUnlock {
                            wallet: record.wallet,
                            attempts: record.attempts,
                            nonce: record.nonce,
                            issued,
                        },
                        self.ca.signer(),
                    )?
                    .into_bytes(),
                ),
            })
        })
    }

    /// The operator approves the wallet's waiting PIN unlock request, after
    /// the customer re-authenticated with the bank. Approving twice keeps
    /// the first approval.
    ///
    /// # Errors
    /// [`IssuerError::UnknownWallet`], [`IssuerError::InvalidInput`] if the
    /// wallet has sent no request, [`IssuerError::WalletNotActive`] for a
    /// revoked wallet; storage errors.
    pub fn approve_pin_unlock(
        &self,
        wallet: &WalletId,
        now: UnixSeconds,
    ) -> Result<PinUnlockRequest, IssuerError> {
        self.with_tx(|tx| {
            let w = tx.wallet(wallet, true)?.ok_or(IssuerError::UnknownWallet)?;
            if w.state.is_revoked() {
                return Err(IssuerError::WalletNotActive {
                    state: w.state,
                    reason: w.reason.clone(),
                });
            }
            let mut r = stored(tx, wallet)?.ok_or(InputError::NoPinUnlockRequest)?;
            if r.approved.is_none() {
                r.approved = Some(UnixSeconds(now.0.max(1)));
                tx.set_setting(&key(wallet), &encode(&r))?;
            }
            Ok(r)
        })
    }

    /// The wallet's latest PIN unlock request, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn pin_unlock_request(
        &self,
        wallet: &WalletId,
    ) -> Result<Option<PinUnlockRequest>, IssuerError> {
        self.with_tx(|tx| stored(tx, wallet))
    }
}
