//! Data-subject access: everything the issuer still holds about one wallet
//! and its customer, for the operator to hand to the customer.
//!
//! What the retention rule pruned (`retention.rs`) is gone and is not in
//! the export: a pruned entry appears with its chain position and hash only.

use offpay_protocol::WalletId;

use crate::error::IssuerError;
use crate::issuer::Issuer;
use crate::ledger::Account;
use crate::store::{
    CheckpointRecord, DoubleSpendRecord, EntryRecord, RevocationRecord, SettlementRecord, Store,
    StoredPosting, WalletRecord,
};

/// Rows of each kind an export lists at most (the newest checkpoints, the
/// oldest of the others): a wallet's log is bounded by its policy, its
/// postings are not.
pub const EXPORT_ROWS_MAX: u32 = 10_000;

/// What the issuer holds about a wallet and its customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletExport {
    /// The wallet's record (certificate, state, counters).
    pub wallet: WalletRecord,
    /// Its customer's display name.
    pub customer_name: Option<String>,
    /// Every certificate issued to it (serial, DER).
    pub certificates: Vec<(u64, Vec<u8>)>,
    /// Its load vouchers (load seq, amount, bytes).
    pub vouchers: Vec<(u64, i64, Vec<u8>)>,
    /// Its checkpoints, oldest first (at most [`EXPORT_ROWS_MAX`], the newest).
    pub checkpoints: Vec<CheckpointRecord>,
    /// Its outgoing chain entries, by seq (pruned ones without payee, amount or bytes).
    pub entries: Vec<EntryRecord>,
    /// Settlements it is the payer or the payee of.
    pub settlements: Vec<SettlementRecord>,
    /// Postings of its sub-account.
    pub wallet_postings: Vec<StoredPosting>,
    /// Postings of its customer's online account.
    pub customer_postings: Vec<StoredPosting>,
    /// Its double spends.
    pub double_spends: Vec<DoubleSpendRecord>,
    /// Revocations of its certificates.
    pub revocations: Vec<RevocationRecord>,
    /// Whether a list was cut at [`EXPORT_ROWS_MAX`].
    pub truncated: bool,
}

impl<S: Store> Issuer<S> {
    /// Everything the issuer still holds about `wallet` and its customer
    /// (read-only).
    pub fn export_wallet(&self, wallet: &WalletId) -> Result<WalletExport, IssuerError> {
        let mut tx = self.store.begin_read()?;
        let tx = tx.as_mut();
        let w = tx
            .wallet(wallet, false)?
            .ok_or(IssuerError::UnknownWallet)?;
        let max = u64::from(EXPORT_ROWS_MAX);
        let first_checkpoint = w.checkpoint.saturating_sub(max - 1).max(1);
        let mut checkpoints = Vec::new();
        for n in first_checkpoint..=w.checkpoint {
            if let Some(c) = tx.checkpoint(wallet, n)? {
                checkpoints.push(c);
            }
        }
        let top = tx.max_seq(wallet)?;
        let seqs: Vec<u64> = (1..=top.min(max)).collect();
        let mut entries = tx.entries_at(wallet, &seqs)?;
        entries.sort_by_key(|e| e.seq);
        let settlements = tx.settlements_of(wallet, EXPORT_ROWS_MAX)?;
        let wallet_postings =
            tx.postings_of_account(&Account::Wallet(*wallet).to_string(), EXPORT_ROWS_MAX)?;
        let customer_postings = tx.postings_of_account(
            &Account::Customer(w.customer.clone()).to_string(),
            EXPORT_ROWS_MAX,
        )?;
        let double_spends = tx.double_spends(Some(wallet), EXPORT_ROWS_MAX)?;
        let revocations: Vec<RevocationRecord> = tx
            .revocations()?
            .into_iter()
            .filter(|r| r.wallet == *wallet)
            .collect();
        let full = |n: usize| n >= EXPORT_ROWS_MAX as usize;
        let truncated = w.checkpoint > max
            || top > max
            || full(settlements.len())
            || full(wallet_postings.len())
            || full(customer_postings.len())
            || full(double_spends.len());
        Ok(WalletExport {
            customer_name: tx.customer(&w.customer)?,
            certificates: tx.certificates_of(wallet)?,
            vouchers: tx.vouchers(wallet, 1, w.load_seq)?,
            checkpoints,
            entries,
            settlements,
            wallet_postings,
            customer_postings,
            double_spends,
            revocations,
            truncated,
            wallet: w,
        })
    }
}
