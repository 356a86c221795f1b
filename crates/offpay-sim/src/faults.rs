//! Faults on the issuer side: a [`Store`] wrapper around the real store that,
//! driven by the run's seed, fails the Nth statement (a database error), makes
//! it lose a race ([`StoreError::Conflict`]), or "crashes" before a commit
//! (the transaction is dropped, so rolled back, and the simulator restarts
//! the issuer on the same store). Faults are only injected while the
//! simulator has armed the plan (around the issuer operations it retries);
//! every one is counted in [`FaultStats`].

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use offpay_issuer::store::{
    Book, CaseCountRow, CaseEvent, CaseRecord, CaseState, CheckpointRecord, ClaimFilter,
    ClaimRecord, ClaimState, ClaimSums, DoubleSpendRecord, EnrollmentTokenRecord, EntryRecord,
    LedgerTotals, NewSettlement, PendingSettlement, Posting, RetentionCandidate, RevocationRecord,
    SettlementRecord, StatementRecord, Store, StoreError, StoredPosting, Tx, WalletRecord,
};
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Hash32, UnixSeconds, WalletId};
use offpay_store::AnyStore;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Prefix of every injected error message.
pub const INJECTED: &str = "injected fault";

/// Faults injected and how the run got through them (in the JSON report as
/// `faults` when the run has `--faults`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Statements armed (each could have failed).
    pub statements: u64,
    /// Statements failed with a database error.
    pub statement_failures: u64,
    /// Statements failed with a conflict (the issuer retries the transaction).
    pub conflicts: u64,
    /// Commits dropped ("crashed" before commit); the issuer is restarted.
    pub crashes_before_commit: u64,
    /// Issuer restarts on the same store (after a crash, or mid-sync with the
    /// response lost: the device sends the same report again).
    pub issuer_restarts: u64,
    /// Restarts after a committed sync whose response was lost.
    pub restarts_mid_sync: u64,
    /// Operations the simulator sent again after an injected failure.
    pub retries: u64,
    /// Operations that succeeded although a fault was injected inside them
    /// (the issuer's own retry or group-commit fallback absorbed it).
    pub absorbed: u64,
    /// Group commits of several reports (`Issuer::sync_group`).
    pub group_commits: u64,
    /// Group commits with a fault injected inside them.
    pub group_commits_faulted: u64,
}

/// What the wrapper injects, shared between the simulator and the store.
#[derive(Debug)]
pub struct FaultPlan {
    rng: Rng,
    /// Mean statements between two faults (0: never).
    mean_gap: u64,
    countdown: u64,
    armed: bool,
    /// Faults injected since the plan was last armed.
    pub injected_since_arm: u64,
    /// A commit was dropped since the plan was last armed: restart the issuer.
    pub crashed: bool,
    /// The counts.
    pub stats: FaultStats,
}

impl FaultPlan {
    /// A plan drawing from `rng`, one fault every `mean_gap` armed statements
    /// on average (0 never injects).
    pub fn new(mut rng: Rng, mean_gap: u64) -> FaultPlan {
        let countdown = Self::gap(&mut rng, mean_gap);
        FaultPlan {
            rng,
            mean_gap,
            countdown,
            armed: false,
            injected_since_arm: 0,
            crashed: false,
            stats: FaultStats::default(),
        }
    }

    fn gap(rng: &mut Rng, mean: u64) -> u64 {
        if mean == 0 {
            u64::MAX
        } else {
            1 + rng.below(2 * mean)
        }
    }

    /// Whether faults are configured at all.
    pub fn enabled(&self) -> bool {
        self.mean_gap > 0
    }

    /// Start injecting (no-op when disabled).
    pub fn arm(&mut self) {
        self.armed = self.enabled();
        self.injected_since_arm = 0;
        self.crashed = false;
    }

    /// Stop injecting.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// A draw from the plan's stream (for the simulator's own fault choices).
    pub fn chance(&mut self, p: f64) -> bool {
        self.enabled() && self.rng.chance(p)
    }

    /// One statement: `Err` when it is the one to fail.
    fn statement(&mut self, commit: bool) -> Result<(), StoreError> {
        if !self.armed {
            return Ok(());
        }
        self.stats.statements += 1;
        self.countdown = self.countdown.saturating_sub(1);
        if self.countdown > 0 {
            return Ok(());
        }
        self.countdown = Self::gap(&mut self.rng, self.mean_gap);
        self.injected_since_arm += 1;
        let n = self.stats.statements;
        if commit && self.rng.chance(0.5) {
            self.stats.crashes_before_commit += 1;
            self.crashed = true;
            return Err(StoreError::Database(format!(
                "{INJECTED}: crashed before commit (statement {n})"
            )));
        }
        if self.rng.chance(0.5) {
            self.stats.conflicts += 1;
            Err(StoreError::Conflict(format!(
                "{INJECTED}: conflict at statement {n}"
            )))
        } else {
            self.stats.statement_failures += 1;
            Err(StoreError::Database(format!(
                "{INJECTED}: statement {n} failed"
            )))
        }
    }
}

/// A shared [`FaultPlan`].
pub type SharedPlan = Arc<Mutex<FaultPlan>>;

/// Lock the plan (a poisoned lock still holds valid counts).
pub fn lock(plan: &SharedPlan) -> MutexGuard<'_, FaultPlan> {
    plan.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The real store with faults from a [`FaultPlan`]. Cloning shares the store
/// and the plan (a restarted issuer gets a clone).
#[derive(Clone, Debug)]
pub struct FaultStore {
    inner: Arc<AnyStore>,
    plan: SharedPlan,
}

impl FaultStore {
    /// Wrap `inner`.
    pub fn new(inner: Arc<AnyStore>, plan: SharedPlan) -> FaultStore {
        FaultStore { inner, plan }
    }

    /// The real store underneath.
    pub fn inner(&self) -> &AnyStore {
        &self.inner
    }
}

impl Store for FaultStore {
    fn begin(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        lock(&self.plan).statement(false)?;
        Ok(Box::new(FaultTx {
            inner: self.inner.begin()?,
            plan: &self.plan,
        }))
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn begin_read(&self) -> Result<Box<dyn Tx + '_>, StoreError> {
        lock(&self.plan).statement(false)?;
        Ok(Box::new(FaultTx {
            inner: self.inner.begin_read()?,
            plan: &self.plan,
        }))
    }
    fn single_writer(&self) -> bool {
        self.inner.single_writer()
    }
}

struct FaultTx<'a> {
    inner: Box<dyn Tx + 'a>,
    plan: &'a Mutex<FaultPlan>,
}

impl FaultTx<'_> {
    fn tick(&self) -> Result<(), StoreError> {
        self.plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .statement(false)
    }
}

/// Forward a `Tx` method after a possible fault.
macro_rules! forward {
    ($( fn $name:ident(&mut self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&mut self $(, $arg: $ty)*) -> Result<$ret, StoreError> {
                self.tick()?;
                self.inner.$name($($arg),*)
            }
        )*
    };
}

impl Tx for FaultTx<'_> {
    fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let r = self
            .plan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .statement(true);
        match r {
            // Dropping the inner transaction rolls it back: nothing of it stays.
            Err(e) => Err(e),
            Ok(()) => self.inner.commit(),
        }
    }

    forward! {
        fn savepoint(&mut self) -> ();
        fn release_savepoint(&mut self) -> ();
        fn rollback_to_savepoint(&mut self) -> ();
        fn setting(&mut self, key: &str) -> Option<Vec<u8>>;
        fn set_setting(&mut self, key: &str, value: &[u8]) -> ();
        fn next_counter(&mut self, name: &str) -> u64;
        fn create_account(&mut self, id: &str, book: Book, kind: &str, now: UnixSeconds) -> ();
        fn balance(&mut self, id: &str) -> Option<i64>;
        fn post(&mut self, postings: &[Posting]) -> ();
        fn totals(&mut self) -> LedgerTotals;
        fn create_customer(&mut self, id: &str, name: &str, now: UnixSeconds) -> ();
        fn customer(&mut self, id: &str) -> Option<String>;
        fn insert_enrollment_token(&mut self, hash: &Hash32, customer: &str, profile: WalletProfile, expires: UnixSeconds) -> ();
        fn enrollment_token(&mut self, hash: &Hash32) -> Option<EnrollmentTokenRecord>;
        fn use_enrollment_token(&mut self, hash: &Hash32, wallet: &WalletId) -> ();
        fn insert_wallet(&mut self, w: &WalletRecord) -> ();
        fn wallet(&mut self, id: &WalletId, for_update: bool) -> Option<WalletRecord>;
        fn update_wallet(&mut self, w: &WalletRecord) -> ();
        fn wallets(&mut self, customer: Option<&str>, limit: u32) -> Vec<WalletRecord>;
        fn insert_certificate(&mut self, serial: u64, wallet: &WalletId, der: &[u8]) -> ();
        fn certificates_of(&mut self, wallet: &WalletId) -> Vec<(u64, Vec<u8>)>;
        fn insert_voucher(&mut self, wallet: &WalletId, load_seq: u64, amount: i64, bytes: &[u8], now: UnixSeconds) -> ();
        fn vouchers(&mut self, wallet: &WalletId, from: u64, to: u64) -> Vec<(u64, i64, Vec<u8>)>;
        fn entries_at(&mut self, payer: &WalletId, seqs: &[u64]) -> Vec<EntryRecord>;
        fn entries_at_keys(&mut self, keys: &[(WalletId, u64)]) -> Vec<EntryRecord>;
        fn entries_by_prevs(&mut self, keys: &[(WalletId, Hash32)]) -> Vec<EntryRecord>;
        fn settled_keys(&mut self, keys: &[(WalletId, Hash32)]) -> Vec<(WalletId, Hash32)>;
        fn existing_accounts(&mut self, ids: &[String]) -> Vec<String>;
        fn revoked_among(&mut self, ids: &[WalletId]) -> Vec<WalletId>;
        fn max_seq(&mut self, payer: &WalletId) -> u64;
        fn insert_entries(&mut self, entries: &[EntryRecord]) -> ();
        fn settled(&mut self, payer: &WalletId, hashes: &[Hash32]) -> Vec<Hash32>;
        fn insert_settlements(&mut self, s: &[NewSettlement], now: UnixSeconds) -> ();
        fn deliver(&mut self, keys: &[(WalletId, Hash32)]) -> Vec<PendingSettlement>;
        fn pending_to(&mut self, payee: &WalletId, settled_by: UnixSeconds, limit: u32) -> Vec<PendingSettlement>;
        fn set_returned(&mut self, keys: &[(WalletId, Hash32)]) -> ();
        fn closing_due(&mut self, not_after_by: UnixSeconds, limit: u32) -> Vec<WalletId>;
        fn closed_among(&mut self, ids: &[WalletId]) -> Vec<WalletId>;
        fn checkpoint(&mut self, wallet: &WalletId, number: u64) -> Option<CheckpointRecord>;
        fn insert_checkpoint(&mut self, c: &CheckpointRecord) -> ();
        fn report(&mut self, wallet: &WalletId, report_seq: u64) -> Option<(Hash32, Vec<u8>)>;
        fn insert_report(&mut self, wallet: &WalletId, report_seq: u64, hash: &Hash32, response: &[u8], now: UnixSeconds) -> ();
        fn insert_double_spend(&mut self, d: &DoubleSpendRecord) -> bool;
        fn double_spends(&mut self, payer: Option<&WalletId>, limit: u32) -> Vec<DoubleSpendRecord>;
        fn insert_revocation(&mut self, r: &RevocationRecord) -> bool;
        fn revocations(&mut self) -> Vec<RevocationRecord>;
        fn listed_revocations(&mut self) -> Vec<RevocationRecord>;
        fn mark_crl(&mut self, number: u64, now: UnixSeconds) -> ();
        fn crl_changes(&mut self, base: u64) -> (Vec<RevocationRecord>, Vec<u64>);
        fn set_revocation_not_after(&mut self, serial: u64, not_after: UnixSeconds) -> ();
        fn idempotent(&mut self, key: &str) -> Option<(Hash32, Vec<u8>)>;
        fn insert_idempotent(&mut self, key: &str, request: &Hash32, response: &[u8], now: UnixSeconds) -> ();
        fn insert_claims(&mut self, claims: &[(ClaimRecord, Vec<u8>)]) -> Vec<Hash32>;
        fn claims_by_ids(&mut self, ids: &[Hash32]) -> Vec<ClaimRecord>;
        fn claims(&mut self, filter: &ClaimFilter) -> Vec<ClaimRecord>;
        fn outbox(&mut self, limit: u32) -> Vec<(Hash32, Vec<u8>)>;
        fn set_claim_state(&mut self, id: &Hash32, state: ClaimState, refusal: Option<&str>) -> ();
        fn set_claims_cycle(&mut self, ids: &[Hash32], cycle: u64) -> ();
        fn claim_sums(&mut self) -> Vec<ClaimSums>;
        fn claim_refusal(&mut self, id: &Hash32) -> Option<String>;
        fn insert_claim_refusal(&mut self, id: &Hash32, code: &str, bytes: &[u8], now: UnixSeconds) -> ();
        fn statement(&mut self, cycle: u64) -> Option<StatementRecord>;
        fn insert_statement(&mut self, s: &StatementRecord) -> ();
        fn statement_totals(&mut self) -> (u64, i128);
        fn balances_of_kind(&mut self, kind: &str) -> Vec<(String, i64)>;
        fn settlement(&mut self, payer: &WalletId, hash: &Hash32) -> Option<SettlementRecord>;
        fn entries_from(&mut self, payer: &WalletId, from: UnixSeconds, limit: u32) -> Vec<EntryRecord>;
        fn revocations_of(&mut self, wallet: &WalletId) -> Vec<RevocationRecord>;
        fn checkpoint_covering(&mut self, wallet: &WalletId, seq: u64) -> Option<CheckpointRecord>;
        fn insert_case(&mut self, c: &CaseRecord) -> ();
        fn case(&mut self, id: u64, for_update: bool) -> Option<CaseRecord>;
        fn update_case(&mut self, c: &CaseRecord) -> ();
        fn cases(&mut self, state: Option<CaseState>, after: u64, limit: u32) -> Vec<CaseRecord>;
        fn active_case_on(&mut self, payer: &WalletId, seq: Option<u64>) -> Option<u64>;
        fn insert_case_event(&mut self, e: &CaseEvent) -> ();
        fn case_events(&mut self, id: u64) -> Vec<CaseEvent>;
        fn held_by_cases(&mut self, keys: &[(WalletId, Hash32)]) -> Vec<(WalletId, Hash32)>;
        fn note_case_window_closed(&mut self, keys: &[(WalletId, Hash32)], at: UnixSeconds) -> ();
        fn entries_held_by_cases(&mut self) -> Vec<(WalletId, u64)>;
        fn insert_case_refund(&mut self, payer: &WalletId, seq: u64, case_id: u64, amount: i64) -> bool;
        fn case_refund(&mut self, payer: &WalletId, seq: u64) -> Option<u64>;
        fn case_counts(&mut self) -> Vec<CaseCountRow>;
        fn retention_candidates(&mut self, settled_by: UnixSeconds, limit: u32) -> Vec<RetentionCandidate>;
        fn postings_by_references(&mut self, references: &[String]) -> Vec<StoredPosting>;
        fn fold_postings(&mut self, references: &[String], summaries: &[Posting]) -> ();
        fn prune_payments(&mut self, keys: &[(WalletId, Hash32)]) -> ();
        fn pruned_returned(&mut self, keys: &[(WalletId, Hash32)]) -> Vec<(WalletId, Hash32)>;
        fn postings_of_account(&mut self, account: &str, limit: u32) -> Vec<StoredPosting>;
        fn settlements_of(&mut self, wallet: &WalletId, limit: u32) -> Vec<SettlementRecord>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(mean_gap: u64) -> (FaultStore, SharedPlan) {
        let inner = Arc::new(offpay_store::open_sqlite_memory().unwrap());
        let plan = Arc::new(Mutex::new(FaultPlan::new(Rng::new(3), mean_gap)));
        (FaultStore::new(inner, plan.clone()), plan)
    }

    #[test]
    fn unarmed_or_disabled_plans_inject_nothing() {
        let (s, plan) = store(1);
        for _ in 0..50 {
            let mut tx = s.begin().unwrap();
            tx.set_setting("k", b"v").unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(lock(&plan).stats, FaultStats::default());
        let (s, plan) = store(0);
        lock(&plan).arm();
        for _ in 0..50 {
            let mut tx = s.begin().unwrap();
            tx.set_setting("k", b"v").unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(lock(&plan).stats.statements, 0);
    }

    #[test]
    fn armed_faults_fail_statements_and_drop_commits_and_replay_by_seed() {
        let run = || {
            let (s, plan) = store(3);
            lock(&plan).arm();
            let mut committed = Vec::new();
            for i in 0..200u32 {
                let key = format!("k{i}");
                let r = (|| {
                    let mut tx = s.begin()?;
                    tx.set_setting(&key, b"v")?;
                    tx.commit()
                })();
                if r.is_ok() {
                    committed.push(key);
                }
            }
            lock(&plan).disarm();
            // Exactly the committed writes are in the store: a failed statement
            // or a dropped commit leaves nothing behind.
            let mut tx = s.begin().unwrap();
            for i in 0..200u32 {
                let key = format!("k{i}");
                assert_eq!(
                    tx.setting(&key).unwrap().is_some(),
                    committed.contains(&key)
                );
            }
            let st = lock(&plan).stats.clone();
            (committed, st)
        };
        let (a, sa) = run();
        let (b, sb) = run();
        assert_eq!(
            (a.clone(), sa.clone()),
            (b, sb),
            "the same seed injects the same faults"
        );
        assert!(sa.statement_failures > 0 && sa.conflicts > 0 && sa.crashes_before_commit > 0);
        assert!(a.len() < 200 && !a.is_empty());
    }
}
