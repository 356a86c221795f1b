//! Privacy by retention: the issuer forgets who paid whom.
//!
//! The ECB's line for the digital euro (Art. 37): only funding and defunding
//! are tied to identity. Once a payment between two of our wallets is
//! settled, delivered to the payee's TA (or returned to the payer), both
//! wallets have been checkpointed past it, and it is older than the
//! retention window ([`Issuer::retention_seconds`]; none by default: keep
//! forever), [`Issuer::run_retention`] deletes what links its payer and
//! payee, and keeps only what double-spend detection and the ledger need:
//!
//! - **entries**: the entry keeps (payer, seq, hash, prev, kind): its chain
//!   position, so a later different entry at that seq or with that prev is
//!   still a double spend. Its payee, amount, times and signed bytes are
//!   cleared (`EntryRecord::is_pruned`).
//! - **settlements**: (payer, hash, delivery) stay, so the payment is never
//!   settled twice; payee, amount and time are cleared.
//! - **postings**: the payment's postings (the settlement `wallet:P ->
//!   wallet:Q`, and a return or late delivery) are replaced by one summary
//!   posting per account against the book's clearing account
//!   (`retention:gl`, `retention:offline`), kind `retention`, reference
//!   `retention:<UTC day number>:<account>`; a later batch of the same day
//!   folds an account's summary of the day again with its new payments, so
//!   each account keeps one summary per day. Every balance, both books'
//!   sums and `Issuer::invariants` stay exact, and each clearing account
//!   nets to zero after every batch. An account with a single pruned
//!   payment in a day keeps a summary of that payment's amount: the fold
//!   hides a payment among the others of its accounts' day only
//!   (docs/THREAT-MODEL.md).
//!
//! Kept whole: pending settlements (the lifecycle rules still return or
//! deliver them), entries held by a double-spend record or by an open case
//! (`Tx::entries_held_by_cases`), payments with a claim on another issuer
//! (the scheme's settlement needs them), redeems and loads (defunding and
//! funding, tied to identity by the rules), and refused evidence entries.
//!
//! Cost: each batch asks for the oldest unpruned settlements that qualify
//! (the partial index `settlements_retention`); old ones that do not yet
//! (pending, a wallet not checkpointed, held) are passed over again by every
//! batch until they do.
//!
//! A later entry at a pruned (payer, seq) is detected by hash (`settle.rs`)
//! and proven by a [`offpay_protocol::messages::RetainedDoubleSpendProof`]:
//! the payer-signed new entry and the issuer CA's signed statement of the
//! retained hash. That proof rests on the issuer's signature for the pruned
//! side.

use std::collections::{BTreeMap, BTreeSet};

use offpay_protocol::{UnixSeconds, WalletId};

use crate::error::{InputError, Invariant, IssuerError};
use crate::issuer::{Issuer, RETENTION_WINDOW_KEY};
use crate::store::{Book, Posting, RetentionCandidate, Store, StoredPosting, Tx};

/// Payments pruned per [`Issuer::run_retention`] call at most (one transaction).
pub const RETENTION_BATCH_MAX: u32 = 1_000;
pub use crate::issuer::RETENTION_SECONDS_MAX;
/// Seconds per day: summary postings are named by their UTC day.
const DAY_SECONDS: u64 = 86_400;
/// The clearing account of the general ledger's folded postings.
pub const CLEARING_GENERAL: &str = "retention:gl";
/// The clearing account of the offline book's folded postings.
pub const CLEARING_OFFLINE: &str = "retention:offline";

/// What one retention batch did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RetentionReport {
    /// Payments pruned.
    pub pruned: u32,
    /// Postings folded away (replaced by `summaries`).
    pub postings_folded: u32,
    /// Summary postings written.
    pub summaries: u32,
    /// Candidates kept because an open case holds them.
    pub held_by_cases: u32,
    /// More payments are due: call again.
    pub more: bool,
    /// Whether a retention window is set (false: nothing is ever pruned).
    pub enabled: bool,
}

/// The stored retention window.
pub(crate) fn window(tx: &mut dyn Tx) -> Result<Option<u64>, IssuerError> {
    match tx.setting(RETENTION_WINDOW_KEY)? {
        None => Ok(None),
        Some(b) => {
            let b: [u8; 8] = b
                .as_slice()
                .try_into()
                .map_err(|_| IssuerError::Invariant(Invariant::RetentionRecord))?;
            // u64::MAX is "keep forever" set explicitly (see set_window).
            Ok(Some(u64::from_be_bytes(b)).filter(|s| *s != u64::MAX))
        }
    }
}

/// Refuse a window over [`RETENTION_SECONDS_MAX`].
pub(crate) fn check_window(seconds: Option<u64>) -> Result<(), IssuerError> {
    match seconds {
        Some(s) if s > RETENTION_SECONDS_MAX => Err(InputError::RetentionWindow {
            max: RETENTION_SECONDS_MAX,
        }
        .into()),
        _ => Ok(()),
    }
}

/// Store the window (`None`: keep forever).
pub(crate) fn set_window(tx: &mut dyn Tx, seconds: Option<u64>) -> Result<(), IssuerError> {
    check_window(seconds)?;
    match seconds {
        Some(s) => tx.set_setting(RETENTION_WINDOW_KEY, &s.to_be_bytes())?,
        // "Keep forever" after a window was set: the key holds u64::MAX,
        // which reads back as no window.
        None => tx.set_setting(RETENTION_WINDOW_KEY, &u64::MAX.to_be_bytes())?,
    }
    Ok(())
}

/// The clearing account of a book.
fn clearing(book: Book) -> &'static str {
    match book {
        Book::General => CLEARING_GENERAL,
        Book::Offline => CLEARING_OFFLINE,
    }
}

/// The summary postings that replace `removed`: per (book, account), its net
/// against the book's clearing account. Their nets equal those of `removed`
/// for every account but the clearing accounts, which net to zero (each
/// removed posting leaves its book balanced).
pub(crate) fn summaries(
    removed: &[StoredPosting],
    now: UnixSeconds,
) -> Result<Vec<Posting>, IssuerError> {
    let mut nets: BTreeMap<(&'static str, &str), (Book, i128)> = BTreeMap::new();
    for p in removed {
        let debit = nets
            .entry((p.book.as_str(), p.debit.as_str()))
            .or_insert((p.book, 0));
        debit.1 -= i128::from(p.amount);
        let credit = nets
            .entry((p.book.as_str(), p.credit.as_str()))
            .or_insert((p.book, 0));
        credit.1 += i128::from(p.amount);
    }
    let mut out = Vec::new();
    for ((_, account), (book, net)) in nets {
        if net == 0 || account == clearing(book) {
            // The clearing account is every summary's other side.
            continue;
        }
        let amount = i64::try_from(net.unsigned_abs()).map_err(|_| Invariant::DeficitOverflow)?;
        let (debit, credit) = if net > 0 {
            (clearing(book).to_string(), account.to_string())
        } else {
            (account.to_string(), clearing(book).to_string())
        };
        out.push(Posting {
            book,
            debit,
            credit,
            amount,
            kind: "retention",
            reference: summary_reference(now, account),
            time: now,
        });
    }
    Ok(out)
}

/// The reference of `account`'s summary posting of `now`'s UTC day: each
/// batch folds the day's earlier summary of every account it touches into
/// the new one, so an account keeps one summary per day.
fn summary_reference(now: UnixSeconds, account: &str) -> String {
    format!("retention:{}:{account}", now.0 / DAY_SECONDS)
}

/// Of the candidates (oldest first), the at most `limit` not held by a
/// case; how many were held; whether more are due than `limit`.
pub(crate) fn due_payments(
    candidates: Vec<RetentionCandidate>,
    held: &BTreeSet<(WalletId, u64)>,
    limit: u32,
) -> (Vec<RetentionCandidate>, u32, bool) {
    let mut held_count = 0u32;
    let mut due = Vec::new();
    for c in candidates {
        if held.contains(&(c.payer, c.seq)) {
            held_count = held_count.saturating_add(1);
        } else {
            due.push(c);
        }
    }
    let more = due.len() > limit as usize;
    due.truncate(limit as usize);
    (due, held_count, more)
}

/// One batch: find up to `limit` due payments, fold their postings, prune them.
fn prune_batch(
    tx: &mut dyn Tx,
    settled_by: UnixSeconds,
    limit: u32,
    now: UnixSeconds,
) -> Result<RetentionReport, IssuerError> {
    let held: BTreeSet<(WalletId, u64)> = tx.entries_held_by_cases()?.into_iter().collect();
    let ask = u32::try_from(held.len())
        .unwrap_or(u32::MAX)
        .saturating_add(limit)
        .saturating_add(1);
    let mut report = RetentionReport {
        enabled: true,
        ..RetentionReport::default()
    };
    let candidates = tx.retention_candidates(settled_by, ask)?;
    let (due, held_by_cases, more) = due_payments(candidates, &held, limit);
    report.held_by_cases = held_by_cases;
    report.more = more;
    if due.is_empty() {
        return Ok(report);
    }
    let mut references = Vec::with_capacity(due.len() * 3);
    for c in &due {
        let hex = c.hash.to_hex();
        references.push(format!("return:{hex}"));
        references.push(format!("late:{hex}"));
        references.push(hex);
    }
    // The day's earlier summaries of the accounts these payments touch are
    // folded again with them.
    let mut accounts = BTreeSet::new();
    for p in tx.postings_by_references(&references)? {
        accounts.insert(p.debit);
        accounts.insert(p.credit);
    }
    references.extend(accounts.iter().map(|a| summary_reference(now, a)));
    let removed = tx.postings_by_references(&references)?;
    let folded = summaries(&removed, now)?;
    tx.fold_postings(&references, &folded)?;
    let keys: Vec<_> = due.iter().map(|c| (c.payer, c.hash)).collect();
    tx.prune_payments(&keys)?;
    report.pruned = u32::try_from(due.len()).unwrap_or(u32::MAX);
    report.postings_folded = u32::try_from(removed.len()).unwrap_or(u32::MAX);
    report.summaries = u32::try_from(folded.len()).unwrap_or(u32::MAX);
    Ok(report)
}

impl<S: Store> Issuer<S> {
    /// The retention window in seconds (`None`: keep forever, the default).
    pub fn retention_seconds(&self) -> Result<Option<u64>, IssuerError> {
        self.with_tx(window)
    }

    /// Set the retention window (`None`: keep forever). Refused over
    /// [`RETENTION_SECONDS_MAX`].
    pub fn set_retention_seconds(&self, seconds: Option<u64>) -> Result<(), IssuerError> {
        check_window(seconds)?;
        self.with_tx(|tx| set_window(tx, seconds))
    }

    /// Prune up to `limit` (at most [`RETENTION_BATCH_MAX`]) settled payments
    /// older than the retention window, in one transaction (see the module
    /// documentation). Idempotent: a pruned payment is not a candidate again;
    /// `more` says whether another call has work. Without a window nothing
    /// is pruned.
    pub fn run_retention(
        &self,
        now: UnixSeconds,
        limit: u32,
    ) -> Result<RetentionReport, IssuerError> {
        let limit = limit.clamp(1, RETENTION_BATCH_MAX);
        self.with_tx(|tx| {
            let Some(seconds) = window(tx)? else {
                return Ok(RetentionReport::default());
            };
            let Some(by) = now.0.checked_sub(seconds) else {
                return Ok(RetentionReport {
                    enabled: true,
                    ..RetentionReport::default()
                });
            };
            prune_batch(tx, UnixSeconds(by), limit, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(book: Book, debit: &str, credit: &str, amount: i64) -> StoredPosting {
        StoredPosting {
            book,
            debit: debit.into(),
            credit: credit.into(),
            amount,
            kind: "settle".into(),
            reference: "r".into(),
            time: UnixSeconds(1),
        }
    }

    #[test]
    fn summaries_keep_every_net_and_name_one_wallet_each() {
        let removed = [
            stored(Book::Offline, "wallet:a", "wallet:b", 300),
            stored(Book::Offline, "wallet:b", "wallet:c", 100),
            stored(Book::Offline, "wallet:a", "wallet:c", 50),
            stored(Book::General, "pool", "customer:x", 70),
        ];
        let out = summaries(&removed, UnixSeconds(2 * DAY_SECONDS + 5)).unwrap();
        let net = |account: &str, ps: &mut dyn Iterator<Item = (&str, &str, i64)>| -> i128 {
            ps.map(|(d, c, a)| {
                i128::from(a) * (i128::from(c == account) - i128::from(d == account))
            })
            .sum()
        };
        for account in ["wallet:a", "wallet:b", "wallet:c", "pool", "customer:x"] {
            let before = net(
                account,
                &mut removed
                    .iter()
                    .map(|p| (p.debit.as_str(), p.credit.as_str(), p.amount)),
            );
            let after = net(
                account,
                &mut out
                    .iter()
                    .map(|p| (p.debit.as_str(), p.credit.as_str(), p.amount)),
            );
            assert_eq!(before, after, "{account}");
        }
        for c in [CLEARING_GENERAL, CLEARING_OFFLINE] {
            let n = net(
                c,
                &mut out
                    .iter()
                    .map(|p| (p.debit.as_str(), p.credit.as_str(), p.amount)),
            );
            assert_eq!(n, 0, "{c}");
        }
        for p in &out {
            assert!(
                p.debit.starts_with("retention:") || p.credit.starts_with("retention:"),
                "{p:?}"
            );
            assert!(
                p.reference.starts_with("retention:2:wallet:")
                    || p.reference.starts_with("retention:2:pool")
                    || p.reference.starts_with("retention:2:customer:"),
                "{p:?}"
            );
            assert_eq!(p.kind, "retention");
            assert!(clearing(p.book) == p.debit || clearing(p.book) == p.credit);
        }
        // wallet:a -350, wallet:b +200, wallet:c +150, pool -70, customer:x +70.
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn entries_held_by_a_case_are_never_due_and_do_not_block_the_others() {
        let c = |n: u8, seq: u64| RetentionCandidate {
            payer: WalletId([n; 16]),
            seq,
            hash: offpay_protocol::Hash32([n; 32]),
            payee: WalletId([0xee; 16]),
            settled: UnixSeconds(u64::from(n)),
        };
        let held: BTreeSet<(WalletId, u64)> =
            [(WalletId([1; 16]), 1), (WalletId([3; 16]), 7)].into();
        let all = vec![c(1, 1), c(2, 1), c(3, 7), c(3, 8), c(4, 1)];
        let (due, held_count, more) = due_payments(all.clone(), &held, 2);
        assert_eq!(due, vec![c(2, 1), c(3, 8)]);
        assert_eq!((held_count, more), (2, true));
        let (due, held_count, more) = due_payments(all, &held, 10);
        assert_eq!(due, vec![c(2, 1), c(3, 8), c(4, 1)]);
        assert_eq!((held_count, more), (2, false));
        // Held, whatever else: the same (payer, seq) of another payer is not.
        let (due, _, _) = due_payments(vec![c(1, 1), c(1, 2)], &held, 10);
        assert_eq!(due, vec![c(1, 2)]);
    }

    #[test]
    fn windows_over_the_maximum_are_refused() {
        assert!(check_window(None).is_ok());
        assert!(check_window(Some(RETENTION_SECONDS_MAX)).is_ok());
        assert!(matches!(
            check_window(Some(RETENTION_SECONDS_MAX + 1)),
            Err(IssuerError::InvalidInput(
                InputError::RetentionWindow { .. }
            ))
        ));
    }
}
