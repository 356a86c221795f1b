//! The end of a wallet's life, and the money no TA holds.
//!
//! Three rules, all balanced postings in both books, all in the transaction
//! of the event that triggers them (docs/LIABILITY.md states them for
//! operators):
//!
//! 1. **Retire and close.** A wallet reported lost, or broken, is revoked at
//!    once ([`Issuer::retire`]). Any revoked wallet (retired, revoked by the
//!    operator, or for a double spend) is *closed* once no payment of it can
//!    still be accepted within the rules: its certificate has expired (no
//!    payee accepts it later) and the payees' offline limit
//!    (`RiskPolicy::max_offline_seconds`) has passed since. Closing
//!    ([`Issuer::close_due`]) first returns the settlements to it that its TA
//!    never reported (rule 2), then pays its sub-account out: to its
//!    customer's online account, or, for a wallet retired as *lost* where the
//!    scheme does not refund lost wallets ([`LifecycleRules::refund_lost`]
//!    false), to the reserve. From then on a closed wallet's sub-account is
//!    kept at zero: a late report (a payee beyond its limit) that settles a
//!    payment *of* it is paid from the reserve; one *to* it (which its TA
//!    never reported: it is gone) is returned to the payer by rule 2.
//! 2. **Return stranded money.** A payment settled from its payer's report
//!    that the payee's TA never reported (refused, never delivered) is
//!    returned to the payer's customer once the payee's window has closed: at
//!    a sync of the payee whose TA time and issuer time are both at least
//!    [`LifecycleRules::return_after_seconds`] after the settlement. The
//!    payee's TA only accepts a payment against a request it issued, and a
//!    request lives at most an hour (`REQUEST_SECONDS_MAX` in offpay-wallet);
//!    a report made after that which does not carry the payment proves the
//!    TA will never hold it. Should the payee's TA report it after all (its
//!    clock was wrong), the payee is credited again from the guarantee fund:
//!    the payee's TA never holds money its sub-account lacks.
//!    A settlement that an open or decided dispute case holds is not
//!    returned here: the case notes that the payee's window closed and
//!    returns it when it is resolved (`cases.rs`).
//! 3. **Refund clawbacks** (`settle.rs`, `cover_losses`): when a revoked
//!    wallet's deficit was covered and later settlements bring its
//!    sub-account above zero, the guarantee fund is refunded first, then the
//!    customer what was clawed back.
//!
//! Only payments between two wallets of this issuer are returned: a
//! settlement whose other side is a wallet of another issuer is recorded as
//! delivered (that issuer's wallet is not ours to refund).

use offpay_protocol::pki::RevocationReason;
use offpay_protocol::{UnixSeconds, WalletId};

use crate::ca::CertificateFactory;
use crate::certificates;
use crate::error::{InputError, Invariant, IssuerError};
use crate::ledger::{Account, posting};
use crate::store::{PendingSettlement, Retirement, Tx, WalletRecord, WalletState};

/// The longest a payee's payment request lives (offpay-wallet's
/// `REQUEST_SECONDS_MAX`): the floor of [`LifecycleRules::return_after_seconds`].
pub const REQUEST_SECONDS_MAX: u64 = 3_600;

/// Settings key of the rules.
const RULES_KEY: &str = "lifecycle.rules";
/// Pending settlements returned per payee sync at most (the rest at the next one).
pub const RETURNS_PER_SYNC_MAX: u32 = 256;
/// Wallets closed per [`Issuer::close_due`] call at most.
pub const CLOSES_PER_CALL_MAX: u32 = 1_000;

/// The scheme's rules for money no TA holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleRules {
    /// Whether a wallet retired as lost is paid out to its customer at its
    /// close (true), or forfeits its offline money to the reserve (false: the
    /// EU Parliament's 2026 digital-euro text). Broken and revoked wallets
    /// are always paid out.
    pub refund_lost: bool,
    /// How long after a payment settled to a payee without the payee's TA
    /// reporting it the payee's window closes (at least
    /// [`REQUEST_SECONDS_MAX`]; the rest is the allowance for the TAs' clocks).
    pub return_after_seconds: u64,
}

impl Default for LifecycleRules {
    fn default() -> LifecycleRules {
        LifecycleRules {
            refund_lost: true,
            return_after_seconds: 86_400,
        }
    }
}

impl LifecycleRules {
    /// Refuse rules that would return a payment its payee may still accept.
    pub fn check(&self) -> Result<(), IssuerError> {
        if self.return_after_seconds < REQUEST_SECONDS_MAX
            || self.return_after_seconds > 365 * 86_400
        {
            return Err(InputError::ReturnWindow {
                min: REQUEST_SECONDS_MAX,
            }
            .into());
        }
        Ok(())
    }

    fn encode(&self) -> [u8; 9] {
        let mut b = [0u8; 9];
        b[0] = u8::from(self.refund_lost);
        b[1..].copy_from_slice(&self.return_after_seconds.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<LifecycleRules, IssuerError> {
        let bad = || IssuerError::Invariant(Invariant::LifecycleRecord);
        let b: &[u8; 9] = b.try_into().map_err(|_| bad())?;
        let refund_lost = match b[0] {
            0 => false,
            1 => true,
            _ => return Err(bad()),
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[1..]);
        Ok(LifecycleRules {
            refund_lost,
            return_after_seconds: u64::from_be_bytes(w),
        })
    }
}

/// The rules in force (the defaults when never set).
pub(crate) fn rules(tx: &mut dyn Tx) -> Result<LifecycleRules, IssuerError> {
    match tx.setting(RULES_KEY)? {
        Some(b) => LifecycleRules::decode(&b),
        None => Ok(LifecycleRules::default()),
    }
}

/// Store the rules.
pub(crate) fn set_rules(tx: &mut dyn Tx, r: &LifecycleRules) -> Result<(), IssuerError> {
    r.check()?;
    tx.set_setting(RULES_KEY, &r.encode())?;
    Ok(())
}

/// What closing wallets did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CloseReport {
    /// Wallets closed.
    pub closed: u32,
    /// Paid out to customers' online accounts (minor units).
    pub paid_out_minor: i64,
    /// Forfeited to the reserve by lost wallets (no refund).
    pub forfeited_minor: i64,
    /// Settlements to the closed wallets returned to their payers.
    pub returned: u32,
    /// Their sum (minor units).
    pub returned_minor: i64,
    /// Revoked wallets not yet due (their certificate or the offline limit
    /// runs later); not counted in `closed`.
    pub more: bool,
}

/// What returning stranded payments did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Returned {
    /// Payments returned to their payers' customers.
    pub count: u32,
    /// Their sum (minor units).
    pub minor: i64,
}

/// Retire `w` (the caller writes it back): revoke it at once, remember why.
pub(crate) fn retire(
    ca: &CertificateFactory,
    tx: &mut dyn Tx,
    w: &mut WalletRecord,
    why: Retirement,
    note: &str,
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    if w.state == WalletState::Closed {
        return Err(IssuerError::WalletNotActive {
            state: w.state,
            reason: w.reason.clone(),
        });
    }
    let reason = match why {
        Retirement::Lost => RevocationReason::KeyCompromise,
        Retirement::Broken => RevocationReason::CessationOfOperation,
    };
    w.retired = Some(why);
    let text = if note.is_empty() {
        format!("retired: {}", why.as_str())
    } else {
        format!("retired: {}: {note}", why.as_str())
    };
    certificates::revoke(ca, tx, w, reason, &text, now)
}

/// Return `items` (pending settlements, each to one of our payees from one of
/// our payers) to their payers' customers (also a dispute case's return:
/// `cases.rs`).
pub(crate) fn return_pending(
    tx: &mut dyn Tx,
    items: &[PendingSettlement],
    now: UnixSeconds,
) -> Result<Returned, IssuerError> {
    let mut postings = Vec::with_capacity(items.len() * 2);
    let mut keys = Vec::with_capacity(items.len());
    let mut out = Returned::default();
    for s in items {
        let payer = tx
            .wallet(&s.payer, false)?
            .ok_or(IssuerError::UnknownWallet)?;
        let reference = format!("return:{}", s.hash.to_hex());
        postings.push(posting(
            &Account::Pool,
            &Account::Customer(payer.customer),
            s.amount,
            "return",
            reference.clone(),
            now,
        )?);
        postings.push(posting(
            &Account::Wallet(s.payee),
            &Account::Issuance,
            s.amount,
            "return",
            reference,
            now,
        )?);
        keys.push((s.payer, s.hash));
        out.count += 1;
        out.minor = out
            .minor
            .checked_add(s.amount)
            .ok_or(Invariant::DeficitOverflow)?;
    }
    if !postings.is_empty() {
        tx.post(&postings)?;
        tx.set_returned(&keys)?;
    }
    Ok(out)
}

/// At a sync of `payee` (its report made at TA time `report_time`, after the
/// report's entries were settled): return what settled to it long enough ago
/// that its TA would have reported it.
pub(crate) fn return_stranded(
    tx: &mut dyn Tx,
    payee: &WalletId,
    report_time: UnixSeconds,
    now: UnixSeconds,
) -> Result<Returned, IssuerError> {
    let r = rules(tx)?;
    let seen = UnixSeconds(report_time.0.min(now.0));
    let Some(by) = seen.0.checked_sub(r.return_after_seconds) else {
        return Ok(Returned::default());
    };
    let items = tx.pending_to(payee, UnixSeconds(by), RETURNS_PER_SYNC_MAX)?;
    let items = skip_held(tx, items, seen)?;
    return_pending(tx, &items, now)
}

/// Leave out the settlements an open or decided dispute case holds (the case
/// decides them: `cases.rs`), noting on the case that the payee's window
/// closed at `seen` without its TA reporting the payment.
fn skip_held(
    tx: &mut dyn Tx,
    items: Vec<PendingSettlement>,
    seen: UnixSeconds,
) -> Result<Vec<PendingSettlement>, IssuerError> {
    if items.is_empty() {
        return Ok(items);
    }
    let keys: Vec<(WalletId, offpay_protocol::Hash32)> =
        items.iter().map(|s| (s.payer, s.hash)).collect();
    let mut held = tx.held_by_cases(&keys)?;
    if held.is_empty() {
        return Ok(items);
    }
    held.sort_unstable();
    tx.note_case_window_closed(&held, seen)?;
    Ok(items
        .into_iter()
        .filter(|s| held.binary_search(&(s.payer, s.hash)).is_err())
        .collect())
}

/// A report of the payee carried settlements already returned to their
/// payers: the payee's TA holds them after all, so its sub-account is
/// credited again, from the guarantee fund.
pub(crate) fn credit_late_deliveries(
    tx: &mut dyn Tx,
    items: &[PendingSettlement],
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let mut postings = Vec::with_capacity(items.len() * 2);
    for s in items {
        let reference = format!("late:{}", s.hash.to_hex());
        postings.push(posting(
            &Account::Guarantee,
            &Account::Pool,
            s.amount,
            "late_delivery",
            reference.clone(),
            now,
        )?);
        postings.push(posting(
            &Account::Issuance,
            &Account::Wallet(s.payee),
            s.amount,
            "late_delivery",
            reference,
            now,
        )?);
    }
    if !postings.is_empty() {
        tx.post(&postings)?;
    }
    Ok(())
}

/// Bring a closed (or closing) wallet's sub-account to zero by the rules:
/// a positive balance is paid out (or forfeited), a negative one (a payment
/// of it reported after its close) paid from the reserve. Returns (paid out,
/// forfeited).
fn sweep(
    tx: &mut dyn Tx,
    w: &WalletRecord,
    r: &LifecycleRules,
    now: UnixSeconds,
) -> Result<(i64, i64), IssuerError> {
    let sub_account = Account::Wallet(w.id);
    let sub = tx
        .balance(&sub_account.to_string())?
        .ok_or(IssuerError::UnknownWallet)?;
    let reference = format!("close:{}", w.id.to_hex());
    let forfeit = w.retired == Some(Retirement::Lost) && !r.refund_lost;
    let postings = if sub > 0 {
        let (to, kind) = if forfeit {
            (Account::Reserve, "forfeit")
        } else {
            (Account::Customer(w.customer.clone()), "payout")
        };
        vec![
            posting(&Account::Pool, &to, sub, kind, reference.clone(), now)?,
            posting(&sub_account, &Account::Issuance, sub, kind, reference, now)?,
        ]
    } else if sub < 0 {
        let cover = sub.checked_neg().ok_or(Invariant::DeficitOverflow)?;
        vec![
            posting(
                &Account::Reserve,
                &Account::Pool,
                cover,
                "reserve",
                reference.clone(),
                now,
            )?,
            posting(
                &Account::Issuance,
                &sub_account,
                cover,
                "reserve",
                reference,
                now,
            )?,
        ]
    } else {
        Vec::new()
    };
    if !postings.is_empty() {
        tx.post(&postings)?;
    }
    Ok(match (sub > 0, forfeit) {
        (true, false) => (sub, 0),
        (true, true) => (0, sub),
        _ => (0, 0),
    })
}

/// Keep the sub-accounts of the closed wallets among `ids` at zero after a
/// settlement touched them.
pub(crate) fn sweep_closed(
    tx: &mut dyn Tx,
    ids: &[WalletId],
    now: UnixSeconds,
) -> Result<(), IssuerError> {
    let closed = tx.closed_among(ids)?;
    if closed.is_empty() {
        return Ok(());
    }
    let r = rules(tx)?;
    for id in closed {
        let w = tx.wallet(&id, true)?.ok_or(IssuerError::UnknownWallet)?;
        let items = tx.pending_to(&id, now, u32::MAX)?;
        return_pending(tx, &items, now)?;
        sweep(tx, &w, &r, now)?;
    }
    Ok(())
}

/// Close the revoked wallets that are due at `now` under an offline limit of
/// `max_offline_seconds`, at most `limit` of them.
pub(crate) fn close_due(
    tx: &mut dyn Tx,
    max_offline_seconds: u64,
    now: UnixSeconds,
    limit: u32,
) -> Result<CloseReport, IssuerError> {
    let r = rules(tx)?;
    let mut report = CloseReport::default();
    let Some(by) = now.0.checked_sub(max_offline_seconds) else {
        return Ok(report);
    };
    let due = tx.closing_due(UnixSeconds(by), limit.saturating_add(1))?;
    report.more = due.len() > limit as usize;
    for id in due.into_iter().take(limit as usize) {
        let mut w = tx.wallet(&id, true)?.ok_or(IssuerError::UnknownWallet)?;
        if w.state != WalletState::Revoked {
            continue;
        }
        let items = tx.pending_to(&id, now, u32::MAX)?;
        let ret = return_pending(tx, &items, now)?;
        let (paid, forfeited) = sweep(tx, &w, &r, now)?;
        w.state = WalletState::Closed;
        w.closed_at = Some(now);
        tx.update_wallet(&w)?;
        report.closed += 1;
        report.returned += ret.count;
        report.returned_minor += ret.minor;
        report.paid_out_minor += paid;
        report.forfeited_minor += forfeited;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_and_refuse_bad_records_and_windows() {
        for r in [
            LifecycleRules::default(),
            LifecycleRules {
                refund_lost: false,
                return_after_seconds: REQUEST_SECONDS_MAX,
            },
        ] {
            assert_eq!(LifecycleRules::decode(&r.encode()), Ok(r));
            assert_eq!(r.check(), Ok(()));
        }
        let mut b = LifecycleRules::default().encode();
        b[0] = 2;
        assert!(LifecycleRules::decode(&b).is_err());
        assert!(LifecycleRules::decode(&b[..8]).is_err());
        let short = LifecycleRules {
            refund_lost: true,
            return_after_seconds: REQUEST_SECONDS_MAX - 1,
        };
        assert!(matches!(
            short.check(),
            Err(IssuerError::InvalidInput(InputError::ReturnWindow { .. }))
        ));
    }
}
