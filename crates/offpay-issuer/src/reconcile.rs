//! Reconciliation: verify a SyncReport, record every entry once, settle every
//! payment once, prove double spends, cover their losses, and answer.
//!
//! The work is split in two: signatures are checked (in one batch) before any
//! database transaction starts, so the transaction only holds locks for the
//! bookkeeping; and everything a report changes is then written in one
//! transaction.

use std::collections::{BTreeSet, HashMap};

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, ChainEntry, Checkpoint, DoubleSpendProof, Payment, SyncReport, SyncResponse,
    WalletCommand,
};
use offpay_protocol::pki::{Certificate, PolicyRef, RevocationReason};
use offpay_protocol::suite::{BatchItem, verify_batch, verify_each};
use offpay_protocol::{Amount, Hash32, PublicKey, UnixSeconds, WalletId};

use crate::error::IssuerError;
use crate::issuer::{
    CERT_CACHE_MAX, GUARANTEE, ISSUANCE, Issuer, POOL, SyncOutcome, customer_account, to_i64,
    wallet_account,
};
use crate::store::{
    Book, CheckpointRecord, DoubleSpendRecord, EntryRecord, Posting, Store, StoreError, Tx,
    WalletRecord, WalletState,
};

/// Where an entry came from in a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The payer's own outgoing chain: settles.
    Own,
    /// A payee's accepted incoming payment: settles (finality).
    Payee,
    /// A payment a payee refused as a rollback: recorded as evidence, never settled.
    Evidence,
}

#[derive(Default, Debug)]
pub(crate) struct RecordStats {
    pub recorded: usize,
    pub settled: usize,
    pub double_spends: Vec<(WalletId, u64)>,
}

/// A verified report waiting for its transaction (group commit).
pub(crate) struct SyncJob {
    v: VerifiedReport,
    now: UnixSeconds,
}

/// A report whose every signature has been checked.
struct VerifiedReport {
    report: Signed<SyncReport>,
    hash: Hash32,
    wallet: WalletRecord,
    outgoing: Vec<ChainEntry>,
    incoming: Vec<ChainEntry>,
    evidence: Vec<ChainEntry>,
    /// Payers whose certificate was not valid at an entry's time: (payer, why).
    anomalies: Vec<(WalletId, String)>,
}

use crate::issuer::CachedCert;

impl<S: Store> Issuer<S> {
    /// The key of a payment's payer, from its inline certificate (checked against
    /// the issuer CA, cached) or its reference (looked up).
    fn payer_cert(&self, p: &Signed<Payment>) -> Result<CachedCert, IssuerError> {
        let b = p.body();
        let reference = b.payer_cert.reference();
        if let Some(c) = self
            .cert_cache
            .lock()
            .map_err(|_| poisoned())?
            .get(&reference)
        {
            return check_wallet(c.clone(), b.payer);
        }
        let der = match &b.payer_cert {
            CertField::Inline(der) => der.clone(),
            CertField::Reference(h) => {
                let certs = self.store.begin_read()?.certificates_of(&b.payer)?;
                certs
                    .into_iter()
                    .map(|(_, d)| d)
                    .find(|d| Hash32::digest(d) == *h)
                    .ok_or_else(|| {
                        IssuerError::InvalidInput(format!(
                            "payment of {} names an unknown certificate",
                            b.payer
                        ))
                    })?
            }
        };
        let cert = Certificate::from_der(&der)?;
        cert.verify_signed_by(&self.ca.issuer)?;
        let wallet = cert.wallet_id().ok_or(IssuerError::Certificate(
            offpay_protocol::pki::PkiError::NotAWalletCertificate,
        ))?;
        let c = (
            wallet,
            cert.serial(),
            cert.public_key().clone(),
            cert.not_before(),
            cert.not_after(),
        );
        let mut cache = self.cert_cache.lock().map_err(|_| poisoned())?;
        if cache.len() >= CERT_CACHE_MAX {
            cache.clear();
        }
        cache.insert(reference, c.clone());
        check_wallet(c, b.payer)
    }

    fn verify_report(&self, bytes: &[u8]) -> Result<VerifiedReport, IssuerError> {
        let report = Signed::<SyncReport>::decode(bytes)?;
        let r = report.body();
        let wallet = self.wallet(&r.wallet)?;
        let wcert = Certificate::from_der(&wallet.cert_der)?;
        let wkey = wcert.public_key().clone();
        let mut keys: Vec<PublicKey> = vec![wkey.clone()];
        let mut what: Vec<String> = vec!["report".into()];
        let mut msgs: Vec<Vec<u8>> = vec![report.sig_structure()];
        let mut sigs: Vec<Vec<u8>> = vec![report.signature().to_vec()];
        let mut anomalies = Vec::new();

        let mut outgoing = Vec::with_capacity(r.outgoing.len());
        for (i, b) in r.outgoing.iter().enumerate() {
            let e = ChainEntry::decode(b)
                .map_err(|e| IssuerError::InvalidInput(format!("outgoing entry {i}: {e}")))?;
            if e.payer() != r.wallet {
                return Err(IssuerError::InvalidInput(format!(
                    "outgoing entry {i} is of another wallet"
                )));
            }
            keys.push(wkey.clone());
            what.push(format!("outgoing entry {i}"));
            msgs.push(e.sig_structure());
            sigs.push(e.signature().to_vec());
            outgoing.push(e);
        }
        let mut payments = |list: &[Vec<u8>], name: &str| -> Result<Vec<ChainEntry>, IssuerError> {
            let mut out = Vec::with_capacity(list.len());
            for (i, b) in list.iter().enumerate() {
                let p = Signed::<Payment>::decode(b)
                    .map_err(|e| IssuerError::InvalidInput(format!("{name} {i}: {e}")))?;
                let (payer, _serial, key, nb, na) = self.payer_cert(&p)?;
                let t = p.body().time;
                if t < nb || t > na {
                    anomalies.push((
                        payer,
                        format!(
                            "payment seq {} dated outside its certificate's validity",
                            p.body().seq
                        ),
                    ));
                }
                keys.push(key);
                what.push(format!("{name} {i}"));
                msgs.push(p.sig_structure());
                sigs.push(p.signature().to_vec());
                out.push(ChainEntry::Payment(p));
            }
            Ok(out)
        };
        let incoming = payments(&r.incoming, "incoming payment")?;
        let evidence = payments(&r.evidence, "evidence")?;

        // An entry whose exact bytes the issuer already recorded was verified
        // when it was recorded: each payment arrives twice (from its payer and
        // from its payee), and only the first copy needs its signature checked.
        let mut keys_at: Vec<(WalletId, u64)> = outgoing
            .iter()
            .chain(&incoming)
            .chain(&evidence)
            .map(|e| (e.payer(), e.seq()))
            .collect();
        keys_at.sort();
        keys_at.dedup();
        let recorded: HashMap<(WalletId, u64), Vec<u8>> = if keys_at.is_empty() {
            HashMap::new()
        } else {
            self.store
                .begin_read()?
                .entries_at_keys(&keys_at)?
                .into_iter()
                .map(|e| ((e.payer, e.seq), e.bytes))
                .collect()
        };
        // keys[0] is the report's own signature; entries follow in the same order.
        let mut keep = vec![true; keys.len()];
        for (k, e) in outgoing
            .iter()
            .chain(&incoming)
            .chain(&evidence)
            .enumerate()
        {
            if recorded
                .get(&(e.payer(), e.seq()))
                .is_some_and(|b| b.as_slice() == e.bytes())
            {
                keep[k + 1] = false;
            }
        }

        let items: Vec<BatchItem<'_>> = keys
            .iter()
            .zip(&msgs)
            .zip(&sigs)
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(((key, msg), sig), _)| BatchItem { key, msg, sig })
            .collect();
        let names: Vec<&String> = what
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| w)
            .collect();
        if verify_batch(&items).is_err() {
            let bad = verify_each(&items)
                .iter()
                .position(Result::is_err)
                .unwrap_or(0);
            return Err(IssuerError::BadSignature(names[bad].clone()));
        }
        // The payload identifies the report: a re-encoded (malleated) P-256 signature is the same report.
        let hash = report.payload_hash();
        Ok(VerifiedReport {
            report,
            hash,
            wallet,
            outgoing,
            incoming,
            evidence,
            anomalies,
        })
    }

    /// Reconcile one SyncReport and answer it. The same report processed again
    /// returns the same response and changes nothing.
    ///
    /// Signatures are checked first, outside any transaction. On a store with a
    /// single writer (SQLite), concurrent syncs are then applied together in one
    /// transaction (group commit, `group.rs`), each inside its own savepoint, so
    /// one report's refusal never touches another's.
    pub fn sync(&self, bytes: &[u8], now: UnixSeconds) -> Result<SyncOutcome, IssuerError> {
        let v = self.verify_report(bytes)?;
        if !self.store.single_writer() {
            return self.with_tx(|tx| self.apply_report(tx, &v, now));
        }
        self.group
            .submit(SyncJob { v, now }, |jobs| self.apply_group(jobs))
    }

    /// Reconcile several reports as one group commit, in order, one result
    /// each: what concurrent [`Issuer::sync`] calls do on a single-writer
    /// store, without the threads. The simulator uses it to run the savepoint
    /// and fallback paths deterministically. A report that does not verify
    /// gets its error and joins no group.
    pub fn sync_group(
        &self,
        reports: &[(&[u8], UnixSeconds)],
    ) -> Vec<Result<SyncOutcome, IssuerError>> {
        let mut out: Vec<Option<Result<SyncOutcome, IssuerError>>> = Vec::new();
        let mut jobs = Vec::new();
        let mut slots = Vec::new();
        for (bytes, now) in reports {
            match self.verify_report(bytes) {
                Ok(v) => {
                    slots.push(out.len());
                    out.push(None);
                    jobs.push(SyncJob { v, now: *now });
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let results = if jobs.is_empty() {
            Vec::new()
        } else if self.store.single_writer() {
            self.apply_group(jobs)
        } else {
            jobs.iter()
                .map(|j| self.with_tx(|tx| self.apply_report(tx, &j.v, j.now)))
                .collect()
        };
        for (slot, r) in slots.into_iter().zip(results) {
            out[slot] = Some(r);
        }
        out.into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(IssuerError::Invariant(
                        "a group commit gave fewer results than reports".into(),
                    ))
                })
            })
            .collect()
    }

    /// Apply a group of verified reports in one transaction; one result each.
    fn apply_group(&self, jobs: Vec<SyncJob>) -> Vec<Result<SyncOutcome, IssuerError>> {
        let solo = |j: &SyncJob| self.with_tx(|tx| self.apply_report(tx, &j.v, j.now));
        if jobs.len() == 1 {
            return jobs.iter().map(solo).collect();
        }
        let grouped = (|| -> Result<Vec<Result<SyncOutcome, IssuerError>>, IssuerError> {
            let mut tx = self.store.begin()?;
            let mut out = Vec::with_capacity(jobs.len());
            for j in &jobs {
                tx.savepoint()?;
                match self.apply_report(tx.as_mut(), &j.v, j.now) {
                    Ok(o) => {
                        tx.release_savepoint()?;
                        out.push(Ok(o));
                    }
                    Err(e) => {
                        tx.rollback_to_savepoint()?;
                        out.push(Err(e));
                    }
                }
            }
            tx.commit()?;
            Ok(out)
        })();
        match grouped {
            // A lost race is retried alone (with_tx retries with back-off).
            Ok(out) => out
                .into_iter()
                .zip(&jobs)
                .map(|(r, j)| match r {
                    Err(IssuerError::Store(StoreError::Conflict(_))) => solo(j),
                    r => r,
                })
                .collect(),
            // Nothing of the group was committed: each report goes alone.
            Err(_) => jobs.iter().map(solo).collect(),
        }
    }

    fn apply_report(
        &self,
        tx: &mut dyn Tx,
        v: &VerifiedReport,
        now: UnixSeconds,
    ) -> Result<SyncOutcome, IssuerError> {
        let r = v.report.body();
        let id = r.wallet;
        let mut w = tx.wallet(&id, true)?.ok_or(IssuerError::UnknownWallet)?;
        if w.cert_serial != v.wallet.cert_serial {
            return Err(IssuerError::Store(StoreError::Conflict(
                "certificate renewed during sync".into(),
            )));
        }
        let mut problems: Vec<String> = Vec::new();
        let mut reused_seq = false;
        if r.report_seq <= w.report_seq {
            match tx.report(&id, r.report_seq)? {
                Some((h, resp)) if h == v.hash => {
                    return Ok(SyncOutcome {
                        response: resp,
                        replayed: true,
                        ..SyncOutcome::default()
                    });
                }
                // A different report under a number already used: the TA's state
                // was restored from an old copy. Process it (its entries still
                // count) but lock the wallet.
                _ => {
                    reused_seq = true;
                    problems.push(format!(
                        "report seq {} reused: the wallet state was rolled back",
                        r.report_seq
                    ));
                }
            }
        }
        if r.base_checkpoint > w.checkpoint {
            return Err(IssuerError::UnknownCheckpoint);
        }
        let base = if r.base_checkpoint == 0 {
            CheckpointRecord {
                wallet: id,
                number: 0,
                seq: 0,
                head: Hash32::ZERO,
                balance: 0,
                load_seq: 0,
                time: w.created,
            }
        } else {
            tx.checkpoint(&id, r.base_checkpoint)?
                .ok_or(IssuerError::UnknownCheckpoint)?
        };
        if r.balance.currency != self.currency() {
            return Err(IssuerError::InvalidInput(format!(
                "report currency must be {}",
                self.currency()
            )));
        }

        // Chain continuity from the base checkpoint.
        let mut seq = base.seq;
        let mut head = base.head;
        for e in &v.outgoing {
            if e.seq() != seq + 1 || e.prev() != head {
                problems.push(format!(
                    "gap or fork in the outgoing chain at seq {}",
                    e.seq()
                ));
                break;
            }
            seq = e.seq();
            head = e.hash();
        }
        if problems.is_empty() && (seq != r.seq || head != r.head) {
            problems.push(format!(
                "reported chain head (seq {}) does not match its entries (seq {seq})",
                r.seq
            ));
        }
        // Loads: contiguous after the base, and issued.
        let expected: Vec<u64> = (base.load_seq + 1..=r.load_seq).collect();
        if r.loads != expected {
            problems.push("applied loads are not contiguous after the checkpoint".into());
        }
        if r.load_seq > w.load_seq {
            problems.push(format!("applied load {} that was never issued", r.load_seq));
        }
        let loads: i128 = tx
            .vouchers(&id, base.load_seq + 1, r.load_seq.min(w.load_seq))?
            .iter()
            .map(|(_, a, _)| *a as i128)
            .sum();
        // The balance equation.
        let out_sum: i128 = v.outgoing.iter().map(|e| e.amount().minor as i128).sum();
        let mut in_sum: i128 = 0;
        for e in &v.incoming {
            if let ChainEntry::Payment(p) = e {
                if p.body().payee != id {
                    problems.push(format!("incoming payment addressed to {}", p.body().payee));
                }
                in_sum += p.body().amount.minor as i128;
            }
        }
        let expected_balance = base.balance as i128 + loads - out_sum + in_sum;
        if expected_balance != r.balance.minor as i128 {
            problems.push(format!(
                "balance equation broken: checkpoint {} + loads {loads} - outgoing {out_sum} + incoming {in_sum} = {expected_balance}, reported {}",
                base.balance, r.balance.minor
            ));
        }
        // A chain behind what the issuer already recorded: a restored (rolled back) state.
        let recorded = tx.max_seq(&id)?;
        if r.seq < recorded {
            problems.push(format!(
                "state rolled back: chain at seq {}, issuer has recorded seq {recorded}",
                r.seq
            ));
        }
        if r.locked && w.state == WalletState::Active && !w.unlock_pending {
            problems
                .push("the wallet reports itself locked (its vault detected a rollback)".into());
        }

        // Record and settle everything the report carries.
        let mut stats = RecordStats::default();
        let mut batch: Vec<(ChainEntry, Source)> = Vec::new();
        batch.extend(v.outgoing.iter().cloned().map(|e| (e, Source::Own)));
        batch.extend(v.incoming.iter().cloned().map(|e| (e, Source::Payee)));
        batch.extend(v.evidence.iter().cloned().map(|e| (e, Source::Evidence)));
        record_and_settle(self, tx, &batch, now, &mut stats)?;
        for (payer, why) in &v.anomalies {
            if let Some(mut p) = tx.wallet(payer, true)?
                && p.state == WalletState::Active
            {
                p.state = WalletState::Locked;
                p.reason = Some(why.clone());
                tx.update_wallet(&p)?;
            }
        }

        // The reporting wallet may have been revoked by what was just recorded.
        let fresh = tx.wallet(&id, true)?.ok_or(IssuerError::UnknownWallet)?;
        w.state = fresh.state;
        w.reason = fresh.reason.clone();
        w.clawed_back = fresh.clawed_back;
        w.guaranteed = fresh.guaranteed;
        let mut locked_now = None;
        if w.unlock_pending {
            // The operator has unlocked this wallet: the response replaces its state
            // with the issuer's checkpoint, so the discrepancies of the old state are moot.
            problems.clear();
        }
        if !problems.is_empty() && w.state == WalletState::Active {
            let why = problems.join("; ");
            w.state = WalletState::Locked;
            w.reason = Some(why.chars().take(480).collect());
            w.unlock_pending = false;
            locked_now = Some(why);
        }

        // The answer.
        let number = w.checkpoint + 1;
        let (checkpoint, command) = if w.unlock_pending && w.state == WalletState::Active {
            let max = tx.max_seq(&id)?;
            let head = match tx.entries_at(&id, &[max])?.first() {
                Some(e) => e.hash,
                None => Hash32::ZERO,
            };
            let balance = tx.balance(&wallet_account(&id))?.unwrap_or(0).max(0);
            w.unlock_pending = false;
            (
                CheckpointRecord {
                    wallet: id,
                    number,
                    seq: max,
                    head,
                    balance,
                    load_seq: w.load_seq,
                    time: now,
                },
                WalletCommand::Unlock,
            )
        } else {
            let cmd = match w.state {
                WalletState::Active => WalletCommand::None,
                _ => WalletCommand::Lock {
                    reason: crate::issuer::reason_text(
                        w.reason.as_deref().unwrap_or(w.state.as_str()),
                    ),
                },
            };
            (
                CheckpointRecord {
                    wallet: id,
                    number,
                    seq: r.seq,
                    head: r.head,
                    balance: to_i64(r.balance.minor)?,
                    load_seq: r.load_seq,
                    time: now,
                },
                cmd,
            )
        };
        let vouchers: Vec<Vec<u8>> = tx
            .vouchers(&id, checkpoint.load_seq + 1, w.load_seq)?
            .into_iter()
            .map(|(_, _, b)| b)
            .collect();
        let mut certificate = None;
        if w.state == WalletState::Active
            && w.cert_not_after.since(now) < self.policy.cert_validity_seconds / 2
        {
            let old = Certificate::from_der(&w.cert_der)?;
            let serial = tx.next_counter("serial")?;
            let cert = self.ca.issue_wallet(
                old.public_key(),
                id,
                PolicyRef {
                    id: self.policy.id,
                    epoch: self.policy.epoch,
                },
                serial,
                now,
                self.policy.cert_validity_seconds,
            )?;
            tx.insert_certificate(serial, &id, cert.der())?;
            w.cert_der = cert.der().to_vec();
            w.cert_serial = serial;
            w.cert_not_after = cert.not_after();
            certificate = Some(w.cert_der.clone());
        }
        let policy = (w.policy_epoch != self.policy.epoch).then(|| self.policy_bytes.clone());
        w.policy_epoch = self.policy.epoch;
        let response = Signed::sign(
            SyncResponse {
                wallet: id,
                report_seq: r.report_seq,
                time: now,
                checkpoint: Checkpoint {
                    number,
                    seq: checkpoint.seq,
                    head: checkpoint.head,
                    balance: Amount::new(checkpoint.balance as u64, self.currency()),
                    load_seq: checkpoint.load_seq,
                    time: now,
                    report_seq: w.report_seq.max(r.report_seq),
                },
                vouchers,
                crl: tx.setting("crl")?,
                certificate,
                policy,
                command,
            },
            self.ca.signing_key(),
        )
        .into_bytes();
        tx.insert_checkpoint(&checkpoint)?;
        w.checkpoint = number;
        w.report_seq = w.report_seq.max(r.report_seq);
        tx.update_wallet(&w)?;
        if !reused_seq {
            tx.insert_report(&id, r.report_seq, &v.hash, &response, now)?;
        }
        Ok(SyncOutcome {
            response,
            entries_recorded: stats.recorded,
            settled: stats.settled,
            double_spends: stats.double_spends,
            locked: locked_now,
            replayed: false,
        })
    }
}

fn poisoned() -> IssuerError {
    IssuerError::Invariant("certificate cache lock poisoned".into())
}

fn check_wallet(c: CachedCert, payer: WalletId) -> Result<CachedCert, IssuerError> {
    if c.0 != payer {
        return Err(IssuerError::InvalidInput(format!(
            "payment of {payer} carries the certificate of {}",
            c.0
        )));
    }
    Ok(c)
}

fn entry_record(e: &ChainEntry, now: UnixSeconds) -> Result<EntryRecord, IssuerError> {
    let (kind, payee) = match e {
        ChainEntry::Payment(p) => ("payment", Some(p.body().payee)),
        ChainEntry::Redeem(_) => ("redeem", None),
    };
    Ok(EntryRecord {
        payer: e.payer(),
        seq: e.seq(),
        hash: e.hash(),
        prev: e.prev(),
        kind,
        payee,
        amount: to_i64(e.amount().minor)?,
        time: e.time(),
        bytes: e.bytes().to_vec(),
        recorded: now,
    })
}

/// Record entries under (payer, seq), detect conflicts, settle each payment
/// and redeem once, and cover the losses of revoked payers. Returns the
/// number of entries newly settled. A constant number of round trips per
/// call, whatever the number of entries and payers.
pub(crate) fn record_and_settle<S: Store>(
    issuer: &Issuer<S>,
    tx: &mut dyn Tx,
    batch: &[(ChainEntry, Source)],
    now: UnixSeconds,
    stats: &mut RecordStats,
) -> Result<usize, IssuerError> {
    // 1. What is already recorded at these keys, and (for new keys) at these prevs.
    let mut keys: Vec<(WalletId, u64)> = batch.iter().map(|(e, _)| (e.payer(), e.seq())).collect();
    keys.sort();
    keys.dedup();
    let mut known: HashMap<(WalletId, u64), EntryRecord> = tx
        .entries_at_keys(&keys)?
        .into_iter()
        .map(|e| ((e.payer, e.seq), e))
        .collect();
    let mut prevs: Vec<(WalletId, Hash32)> = batch
        .iter()
        .filter(|(e, _)| !known.contains_key(&(e.payer(), e.seq())))
        .map(|(e, _)| (e.payer(), e.prev()))
        .collect();
    prevs.sort();
    prevs.dedup();
    let mut by_prev: HashMap<(WalletId, Hash32), EntryRecord> = tx
        .entries_by_prevs(&prevs)?
        .into_iter()
        .map(|e| ((e.payer, e.prev), e))
        .collect();

    // 2. Classify: known, new, or in conflict (a double spend).
    let mut new_entries: Vec<EntryRecord> = Vec::new();
    let mut conflicts: Vec<(WalletId, Vec<u8>, Vec<u8>, u64)> = Vec::new();
    for (e, _) in batch {
        let (payer, h) = (e.payer(), e.hash());
        match known.get(&(payer, e.seq())) {
            Some(k) if k.hash == h => {}
            Some(k) => conflicts.push((payer, k.bytes.clone(), e.bytes().to_vec(), e.seq())),
            None => {
                if let Some(k) = by_prev.get(&(payer, e.prev()))
                    && k.hash != h
                {
                    conflicts.push((payer, k.bytes.clone(), e.bytes().to_vec(), e.seq()));
                    continue;
                }
                let rec = entry_record(e, now)?;
                known.insert((payer, rec.seq), rec.clone());
                by_prev.insert((payer, rec.prev), rec.clone());
                new_entries.push(rec);
            }
        }
    }
    stats.recorded += new_entries.len();
    tx.insert_entries(&new_entries)?;

    // 3. Settle payments and redeems seen by their payer or payee, once each.
    let mut to_settle: Vec<&ChainEntry> = Vec::new();
    let mut seen = BTreeSet::new();
    for (e, s) in batch {
        if *s != Source::Evidence && seen.insert((e.payer(), e.hash())) {
            to_settle.push(e);
        }
    }
    let settle_keys: Vec<(WalletId, Hash32)> =
        to_settle.iter().map(|e| (e.payer(), e.hash())).collect();
    let already: BTreeSet<(WalletId, Hash32)> =
        tx.settled_keys(&settle_keys)?.into_iter().collect();
    let to_settle: Vec<&ChainEntry> = to_settle
        .into_iter()
        .filter(|e| !already.contains(&(e.payer(), e.hash())))
        .collect();
    let mut payee_accounts: Vec<String> = to_settle
        .iter()
        .filter_map(|e| match e {
            ChainEntry::Payment(p) => Some(wallet_account(&p.body().payee)),
            ChainEntry::Redeem(_) => None,
        })
        .collect();
    payee_accounts.sort();
    payee_accounts.dedup();
    let existing: BTreeSet<String> = tx.existing_accounts(&payee_accounts)?.into_iter().collect();
    if let Some(missing) = payee_accounts.iter().find(|a| !existing.contains(*a)) {
        return Err(IssuerError::InvalidInput(format!(
            "payment to an unknown wallet ({missing})"
        )));
    }
    let mut owners: HashMap<WalletId, String> = HashMap::new();
    let mut postings = Vec::with_capacity(to_settle.len());
    let mut settlements = Vec::with_capacity(to_settle.len());
    for e in to_settle {
        let (payer, h) = (e.payer(), e.hash());
        let amount = to_i64(e.amount().minor)?;
        let reference = h.to_hex();
        match e {
            ChainEntry::Payment(p) => {
                let payee = p.body().payee;
                postings.push(Posting {
                    book: Book::Offline,
                    debit: wallet_account(&payer),
                    credit: wallet_account(&payee),
                    amount,
                    kind: "settle",
                    reference,
                    time: now,
                });
                settlements.push((h, payer, Some(payee), amount));
            }
            ChainEntry::Redeem(_) => {
                let owner = match owners.entry(payer) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => v.insert(
                        tx.wallet(&payer, false)?
                            .ok_or(IssuerError::UnknownWallet)?
                            .customer,
                    ),
                };
                let customer = customer_account(owner);
                postings.push(Posting {
                    book: Book::General,
                    debit: POOL.into(),
                    credit: customer,
                    amount,
                    kind: "redeem",
                    reference: reference.clone(),
                    time: now,
                });
                postings.push(Posting {
                    book: Book::Offline,
                    debit: wallet_account(&payer),
                    credit: ISSUANCE.into(),
                    amount,
                    kind: "redeem",
                    reference,
                    time: now,
                });
                settlements.push((h, payer, None, amount));
            }
        }
    }
    tx.post(&postings)?;
    tx.insert_settlements(&settlements, now)?;
    let settled_total = settlements.len();

    // 4. Double spends: keep the proof, revoke and lock the payer.
    for (payer, a, b, seq) in conflicts {
        let proof = build_proof(issuer, tx, &payer, &a, &b)?;
        let ea = ChainEntry::decode(&a)?.hash();
        let eb = ChainEntry::decode(&b)?.hash();
        let entries = if ea <= eb { [ea, eb] } else { [eb, ea] };
        let fresh = tx.insert_double_spend(&DoubleSpendRecord {
            payer,
            seq,
            entries,
            proof,
            detected: now,
        })?;
        if fresh {
            stats.double_spends.push((payer, seq));
            let mut w = tx.wallet(&payer, true)?.ok_or(IssuerError::UnknownWallet)?;
            issuer.revoke_in(
                tx,
                &mut w,
                RevocationReason::KeyCompromise,
                &format!("double spend at seq {seq}"),
                now,
            )?;
            tx.update_wallet(&w)?;
        }
    }

    // 5. Cover the losses of every revoked payer touched.
    let mut payers: Vec<WalletId> = keys.iter().map(|(p, _)| *p).collect();
    payers.dedup();
    for payer in tx.revoked_among(&payers)? {
        cover_losses(tx, &payer, now)?;
    }
    stats.settled += settled_total;
    Ok(settled_total)
}

/// The proof for two entries of `payer`, with the certificate whose key signed them.
fn build_proof<S: Store>(
    issuer: &Issuer<S>,
    tx: &mut dyn Tx,
    payer: &WalletId,
    a: &[u8],
    b: &[u8],
) -> Result<Vec<u8>, IssuerError> {
    let ea = ChainEntry::decode(a)?;
    let mut cert_der = None;
    if let ChainEntry::Payment(p) = &ea
        && let CertField::Inline(der) = &p.body().payer_cert
    {
        cert_der = Some(der.clone());
    }
    if cert_der.is_none() {
        for (_, der) in tx.certificates_of(payer)? {
            let c = Certificate::from_der(&der)?;
            if ea.verify(c.public_key()).is_ok() {
                cert_der = Some(der);
                break;
            }
        }
    }
    let cert_der = cert_der.ok_or_else(|| {
        IssuerError::Invariant(format!("no certificate of {payer} verifies its entry"))
    })?;
    Ok(DoubleSpendProof::new(
        a.to_vec(),
        b.to_vec(),
        cert_der,
        issuer.ca.issuer.der().to_vec(),
    )
    .encode())
}

/// A revoked payer whose sub-account is negative has spent money it did not
/// have: claw it back from its customer's online account, and charge the rest
/// to the guarantee fund. If later settlements bring it back above zero, the
/// guarantee fund is refunded first.
fn cover_losses(tx: &mut dyn Tx, payer: &WalletId, now: UnixSeconds) -> Result<(), IssuerError> {
    let mut w = tx.wallet(payer, true)?.ok_or(IssuerError::UnknownWallet)?;
    let sub = tx
        .balance(&wallet_account(payer))?
        .ok_or(IssuerError::UnknownWallet)?;
    let reference = format!("cover:{}", payer.to_hex());
    let mut postings = Vec::new();
    if sub < 0 {
        let deficit = sub
            .checked_neg()
            .ok_or(IssuerError::Invariant("deficit overflow".into()))?;
        let customer = customer_account(&w.customer);
        let online = tx.balance(&customer)?.unwrap_or(0).max(0);
        let claw = deficit.min(online);
        if claw > 0 {
            postings.push(Posting {
                book: Book::General,
                debit: customer,
                credit: POOL.into(),
                amount: claw,
                kind: "clawback",
                reference: reference.clone(),
                time: now,
            });
            postings.push(Posting {
                book: Book::Offline,
                debit: ISSUANCE.into(),
                credit: wallet_account(payer),
                amount: claw,
                kind: "clawback",
                reference: reference.clone(),
                time: now,
            });
            w.clawed_back += claw;
        }
        let rest = deficit - claw;
        if rest > 0 {
            postings.push(Posting {
                book: Book::General,
                debit: GUARANTEE.into(),
                credit: POOL.into(),
                amount: rest,
                kind: "guarantee",
                reference: reference.clone(),
                time: now,
            });
            postings.push(Posting {
                book: Book::Offline,
                debit: ISSUANCE.into(),
                credit: wallet_account(payer),
                amount: rest,
                kind: "guarantee",
                reference,
                time: now,
            });
            w.guaranteed += rest;
        }
    } else if sub > 0 && w.guaranteed > 0 {
        let refund = sub.min(w.guaranteed);
        postings.push(Posting {
            book: Book::General,
            debit: POOL.into(),
            credit: GUARANTEE.into(),
            amount: refund,
            kind: "refund",
            reference: reference.clone(),
            time: now,
        });
        postings.push(Posting {
            book: Book::Offline,
            debit: wallet_account(payer),
            credit: ISSUANCE.into(),
            amount: refund,
            kind: "refund",
            reference,
            time: now,
        });
        w.guaranteed -= refund;
    }
    if !postings.is_empty() {
        tx.post(&postings)?;
        tx.update_wallet(&w)?;
    }
    Ok(())
}
