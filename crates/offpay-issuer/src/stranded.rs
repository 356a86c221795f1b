//! Stranded money: what the issuer credited to a wallet's sub-account that
//! the wallet's TA does not hold.
//!
//! Finality (a payment reported by its payer settles to its payee in full)
//! means the issuer credits a payee for every valid payment addressed to it,
//! whether or not the payee's TA accepted it: a payment received after its
//! request expired, the second customer paying one QR request, a cancelled
//! request, a payment file that never reached the payee. The payee's TA
//! refused (or never saw) that payment, so its balance does not include it,
//! while its sub-account does. Until the wallet lifecycle returns such money
//! (to the payee's online account), it is made visible instead.
//!
//! The figure is exact right after a payee's own report is applied: the
//! report carries the TA's balance and everything the TA accepted, and the
//! sync transaction holds the wallet's row, so
//!
//! ```text
//! stranded = sub-account − reported balance − vouchers issued but not yet applied
//! ```
//!
//! Between two syncs the sub-account moves with settlements the TA will
//! report later, so the figure is kept as of the wallet's last sync
//! (checkpoint number and time) and is recomputed at every sync.

use offpay_protocol::{UnixSeconds, WalletId};

use crate::error::{Invariant, IssuerError};
use crate::ledger::Account;
use crate::store::{CheckpointRecord, Tx};

/// Settings key prefix under which each wallet's figure is kept.
const KEY_PREFIX: &str = "stranded.";
/// Encoded size: minor units (i64), checkpoint number, time (u64 each), big-endian.
const ENCODED_BYTES: usize = 24;

/// Money credited to a wallet's sub-account that its TA does not hold, as of
/// the wallet's last sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stranded {
    /// Minor units: sub-account minus the reported TA balance minus vouchers
    /// not yet applied, at the sync. Positive: the issuer credited money the
    /// wallet never held. Zero when the wallet never synced.
    pub minor: i64,
    /// The checkpoint the figure was computed at (0: never synced).
    pub checkpoint: u64,
    /// When (the checkpoint's time; 0 when never synced).
    pub at: UnixSeconds,
}

impl Stranded {
    fn encode(&self) -> [u8; ENCODED_BYTES] {
        let mut b = [0u8; ENCODED_BYTES];
        b[..8].copy_from_slice(&self.minor.to_be_bytes());
        b[8..16].copy_from_slice(&self.checkpoint.to_be_bytes());
        b[16..].copy_from_slice(&self.at.0.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Stranded, IssuerError> {
        let b: &[u8; ENCODED_BYTES] = b
            .try_into()
            .map_err(|_| IssuerError::Invariant(Invariant::StrandedRecord))?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            w
        };
        Ok(Stranded {
            minor: i64::from_be_bytes(word(0)),
            checkpoint: u64::from_be_bytes(word(8)),
            at: UnixSeconds(u64::from_be_bytes(word(16))),
        })
    }
}

fn key(wallet: &WalletId) -> String {
    format!("{KEY_PREFIX}{}", wallet.to_hex())
}

/// Compute and keep the figure for `wallet` right after its report was
/// applied in `tx`: `checkpoint` is the checkpoint the response installs and
/// `unapplied` the sum of the vouchers the response carries (issued, not yet
/// applied by the TA; the caller read them for the response already).
pub(crate) fn after_report(
    tx: &mut dyn Tx,
    wallet: &WalletId,
    checkpoint: &CheckpointRecord,
    unapplied: i128,
) -> Result<Stranded, IssuerError> {
    let sub = tx
        .balance(&Account::Wallet(*wallet).to_string())?
        .ok_or(IssuerError::UnknownWallet)?;
    let minor = i128::from(sub) - i128::from(checkpoint.balance) - unapplied;
    let minor = i64::try_from(minor)
        .map_err(|_| IssuerError::Invariant(Invariant::StrandedOverflow { wallet: *wallet }))?;
    let s = Stranded {
        minor,
        checkpoint: checkpoint.number,
        at: checkpoint.time,
    };
    tx.set_setting(&key(wallet), &s.encode())?;
    Ok(s)
}

/// The figure kept for `wallet` (zero if it never synced).
pub(crate) fn stored(tx: &mut dyn Tx, wallet: &WalletId) -> Result<Stranded, IssuerError> {
    match tx.setting(&key(wallet))? {
        Some(b) => Stranded::decode(&b),
        None => Ok(Stranded::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_figure_round_trips_and_refuses_bad_lengths() {
        let s = Stranded {
            minor: -350,
            checkpoint: 7,
            at: UnixSeconds(1_795_000_000),
        };
        assert_eq!(Stranded::decode(&s.encode()).unwrap(), s);
        assert!(Stranded::decode(&s.encode()[..23]).is_err());
    }
}
