//! Reconciliation: verify a SyncReport, record every entry once, settle every
//! payment once, prove double spends, cover their losses, and answer.
//!
//! The work is split in two: signatures are checked (in one batch) before any
//! database transaction starts, so the transaction only holds locks for the
//! bookkeeping; and everything a report changes is then written in one
//! transaction.

use std::collections::HashMap;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    CertField, ChainEntry, Checkpoint, Payment, SyncReport, SyncResponse, WalletCommand,
};
use offpay_protocol::pki::{self, Certificate, PkiError, WalletProfile};
use offpay_protocol::suite::{BatchItem, verify_batch, verify_each};
use offpay_protocol::{Amount, Hash32, PublicKey, Suite, UnixSeconds, WalletId};

use crate::certificates;
use crate::error::{
    EntryList, InputError, Invariant, IssuerError, LockReason, ReportProblem, SchemeProblem,
    Signature, Sum, reason_text,
};
use crate::issuer::{Issuer, SyncOutcome};
use crate::ledger::{Account, to_i64};
use crate::limits::{CERT_CACHE_MAX, LOCK_REASON_CHARS_MAX};
use crate::report::{CachedCert, SyncJob, VerifiedReport};
use crate::settle::{RecordStats, Source, record_and_settle};
use crate::store::{CheckpointRecord, Store, StoreError, Tx, WalletRecord, WalletState};

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
                    .ok_or(InputError::UnknownPayerCertificate { payer: b.payer })?
            }
        };
        let cert = Certificate::from_der(&der)?;
        let of = cert.issuer_id();
        if self.is_member() && of != self.issuer_id() {
            // Another issuer's wallet: its certificate must chain to an
            // admitted issuer of the installed directory (finality rests on
            // the payer's signature alone: status and revocation do not matter).
            let installed = self.installed();
            let trust = installed
                .as_deref()
                .map(|d| &d.trust)
                .ok_or(SchemeProblem::UnknownIssuer { issuer: of })?;
            trust.verify_wallet_signed(&cert).map_err(|e| match e {
                PkiError::UnknownIssuer => SchemeProblem::UnknownIssuer { issuer: of }.into(),
                e => IssuerError::Certificate(e),
            })?;
        } else {
            cert.verify_signed_by(&self.ca.issuer)?;
        }
        let wallet = cert
            .wallet_id()
            .ok_or(IssuerError::Certificate(PkiError::NotAWalletCertificate))?;
        let c = (
            wallet,
            cert.serial(),
            cert.public_key().clone(),
            cert.not_before(),
            cert.not_after(),
            cert.wallet_profile(),
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
        let (wkey, older) = report_keys(&wallet, &wcert, r)?;
        let mut keys: Vec<PublicKey> = vec![wkey.clone()];
        let mut what: Vec<Signature> = vec![Signature::Report];
        let mut msgs: Vec<Vec<u8>> = vec![report.sig_structure()];
        let mut sigs: Vec<Vec<u8>> = vec![report.signature().to_vec()];
        let mut anomalies = Vec::new();

        let mut outgoing = Vec::with_capacity(r.outgoing.len());
        for (i, b) in r.outgoing.iter().enumerate() {
            let e = outgoing_entry(i, b, r.wallet)?;
            keys.push(match (e.seq() >= r.key_since, &older) {
                (true, _) => wkey.clone(),
                (false, Some(k)) => k.clone(),
                (false, None) => return Err(InputError::EntryBeforeKey { seq: e.seq() }.into()),
            });
            what.push(Signature::Entry {
                list: EntryList::Outgoing,
                index: i,
            });
            msgs.push(e.sig_structure());
            sigs.push(e.signature().to_vec());
            outgoing.push(e);
        }
        let mut payments =
            |list: &[Vec<u8>], name: EntryList| -> Result<Vec<ChainEntry>, IssuerError> {
                let mut out = Vec::with_capacity(list.len());
                for (i, b) in list.iter().enumerate() {
                    let p = Signed::<Payment>::decode(b).map_err(|error| InputError::Entry {
                        list: name,
                        index: i,
                        error,
                    })?;
                    let (payer, _serial, key, nb, na, profile) = self.payer_cert(&p)?;
                    let t = p.body().time;
                    if t < nb || t > na {
                        anomalies.push((
                            payer,
                            LockReason::PaymentOutsideValidity { seq: p.body().seq },
                        ));
                    }
                    if profile == WalletProfile::Terminal {
                        anomalies.push((payer, LockReason::TerminalPaid { seq: p.body().seq }));
                    }
                    keys.push(key);
                    what.push(Signature::Entry {
                        list: name,
                        index: i,
                    });
                    msgs.push(p.sig_structure());
                    sigs.push(p.signature().to_vec());
                    out.push(ChainEntry::Payment(p));
                }
                Ok(out)
            };
        let incoming = payments(&r.incoming, EntryList::Incoming)?;
        let evidence = payments(&r.evidence, EntryList::Evidence)?;

        // keys[0] is the report's own signature; entries follow in the same order.
        let mut keep = vec![true];
        keep.extend(self.unverified(&outgoing, &incoming, &evidence)?);

        let items: Vec<BatchItem<'_>> = keys
            .iter()
            .zip(&msgs)
            .zip(&sigs)
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(((key, msg), sig), _)| BatchItem { key, msg, sig })
            .collect();
        let names: Vec<Signature> = what
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(w, _)| *w)
            .collect();
        if verify_batch(&items).is_err() {
            let bad = verify_each(&items)
                .iter()
                .position(Result::is_err)
                .unwrap_or(0);
            return Err(IssuerError::BadSignature(
                names.get(bad).copied().unwrap_or(Signature::Report),
            ));
        }
        let csr = report_csr(r)?;
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
            profile: wcert.wallet_profile(),
            csr,
        })
    }

    /// For each entry (outgoing, then incoming, then evidence), whether its
    /// signature must be checked: false when the issuer already recorded its
    /// exact bytes.
    fn unverified(
        &self,
        outgoing: &[ChainEntry],
        incoming: &[ChainEntry],
        evidence: &[ChainEntry],
    ) -> Result<Vec<bool>, IssuerError> {
        // An entry whose exact bytes the issuer already recorded was verified
        // when it was recorded: each payment arrives twice (from its payer and
        // from its payee), and only the first copy needs its signature checked.
        let mut keys_at: Vec<(WalletId, u64)> = outgoing
            .iter()
            .chain(incoming)
            .chain(evidence)
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
        let mut keep = vec![true; outgoing.len() + incoming.len() + evidence.len()];
        for (k, e) in outgoing.iter().chain(incoming).chain(evidence).enumerate() {
            if recorded
                .get(&(e.payer(), e.seq()))
                .is_some_and(|b| b.as_slice() == e.bytes())
            {
                keep[k] = false;
            }
        }
        Ok(keep)
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
                r.unwrap_or({
                    Err(IssuerError::Invariant(
                        crate::error::Invariant::GroupNoResult,
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
        let mut problems: Vec<ReportProblem> = Vec::new();
        let mut reused_seq = false;
        if r.report_seq <= w.report_seq {
            match tx.report(&id, r.report_seq)? {
                Some((h, resp)) if h == v.hash => {
                    return Ok(SyncOutcome {
                        response: resp,
                        replayed: true,
                        stranded: crate::stranded::stored(tx, &id)?,
                        ..SyncOutcome::default()
                    });
                }
                // A different report under a number already used: the TA's state
                // was restored from an old copy. Process it (its entries still
                // count) but lock the wallet.
                _ => {
                    reused_seq = true;
                    problems.push(ReportProblem::ReportSeqReused {
                        report_seq: r.report_seq,
                    });
                }
            }
        }
        self.check_report(tx, v, &w, &mut problems)?;

        // Record and settle everything the report carries.
        let mut stats = RecordStats::default();
        let mut batch: Vec<(ChainEntry, Source)> = Vec::new();
        batch.extend(v.outgoing.iter().cloned().map(|e| (e, Source::Own)));
        batch.extend(v.incoming.iter().cloned().map(|e| (e, Source::Payee)));
        batch.extend(v.evidence.iter().cloned().map(|e| (e, Source::Evidence)));
        let installed = self.installed();
        let member = self.member_ctx(&installed, crate::store::ClaimState::Outbox);
        record_and_settle(&self.ca, member.as_ref(), tx, &batch, now, &mut stats)?;
        for (payer, why) in &v.anomalies {
            if let Some(mut p) = tx.wallet(payer, true)?
                && p.state == WalletState::Active
            {
                p.state = WalletState::Locked;
                p.reason = Some(why.to_string());
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
            let why = LockReason::Report(problems);
            w.state = WalletState::Locked;
            w.reason = Some(
                why.to_string()
                    .chars()
                    .take(LOCK_REASON_CHARS_MAX)
                    .collect(),
            );
            w.unlock_pending = false;
            locked_now = Some(why);
        }

        // What settled to this wallet that its TA never reported, once its
        // window has closed, goes back to the payers (lifecycle.rs).
        let returned = if w.state.is_revoked() {
            crate::lifecycle::Returned::default()
        } else {
            crate::lifecycle::return_stranded(tx, &id, r.time, now)?
        };
        let (response, stranded) = self.answer(tx, r, v.csr.as_ref(), &mut w, now)?;
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
            stranded,
            returned,
        })
    }

    /// Check a report against what the issuer knows: its base checkpoint and
    /// currency (refused when wrong), then the chain's continuity, the loads,
    /// the balance equation and rollbacks (each inconsistency a problem: the
    /// wallet will be locked, the entries still count).
    fn check_report(
        &self,
        tx: &mut dyn Tx,
        v: &VerifiedReport,
        w: &WalletRecord,
        problems: &mut Vec<ReportProblem>,
    ) -> Result<(), IssuerError> {
        let r = v.report.body();
        let id = r.wallet;
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
            return Err(InputError::Currency {
                expected: self.currency(),
            }
            .into());
        }

        // Chain continuity from the base checkpoint.
        let mut seq = base.seq;
        let mut head = base.head;
        for e in &v.outgoing {
            if e.seq() != seq + 1 || e.prev() != head {
                problems.push(ReportProblem::ChainGap { seq: e.seq() });
                break;
            }
            seq = e.seq();
            head = e.hash();
        }
        if problems.is_empty() && (seq != r.seq || head != r.head) {
            problems.push(ReportProblem::HeadMismatch {
                reported: r.seq,
                entries: seq,
            });
        }
        // Loads: contiguous after the base, and issued.
        let expected: Vec<u64> = (base.load_seq + 1..=r.load_seq).collect();
        if r.loads != expected {
            problems.push(ReportProblem::LoadsNotContiguous);
        }
        if r.load_seq > w.load_seq {
            problems.push(ReportProblem::LoadNeverIssued {
                load_seq: r.load_seq,
            });
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
                    problems.push(ReportProblem::IncomingMisaddressed {
                        payee: p.body().payee,
                    });
                }
                in_sum += p.body().amount.minor as i128;
            }
        }
        let expected_balance = base.balance as i128 + loads - out_sum + in_sum;
        if expected_balance != r.balance.minor as i128 {
            let currency = self.currency();
            let sum = |minor: i128| Sum { minor, currency };
            problems.push(ReportProblem::BalanceEquation {
                checkpoint: sum(i128::from(base.balance)),
                loads: sum(loads),
                outgoing: sum(out_sum),
                incoming: sum(in_sum),
                expected: sum(expected_balance),
                reported: r.balance,
            });
        }
        // A chain behind what the issuer already recorded: a restored (rolled back) state.
        let recorded = tx.max_seq(&id)?;
        if r.seq < recorded {
            problems.push(ReportProblem::RolledBack {
                reported: r.seq,
                recorded,
            });
        }
        if r.locked && w.state == WalletState::Active && !w.unlock_pending {
            problems.push(ReportProblem::SelfLocked);
        }
        // A terminal's chain holds redeems (its sweeps) only.
        if v.profile == WalletProfile::Terminal
            && let Some(e) = v
                .outgoing
                .iter()
                .find(|e| matches!(e, ChainEntry::Payment(_)))
        {
            problems.push(ReportProblem::TerminalPayment { seq: e.seq() });
        }
        Ok(())
    }

    /// The signed SyncResponse: the next checkpoint (the issuer's own after an
    /// unlock), the vouchers not applied yet, the CRL, a renewed certificate or
    /// the new policy when due, and the command. Updates `w` and stores the
    /// checkpoint; with the wallet's stranded money as of that checkpoint.
    fn answer(
        &self,
        tx: &mut dyn Tx,
        r: &SyncReport,
        csr: Option<&pki::Csr>,
        w: &mut WalletRecord,
        now: UnixSeconds,
    ) -> Result<(Vec<u8>, crate::stranded::Stranded), IssuerError> {
        let id = r.wallet;
        let number = w.checkpoint + 1;
        let (checkpoint, command) = if w.unlock_pending && w.state == WalletState::Active {
            let max = tx.max_seq(&id)?;
            let head = match tx.entries_at(&id, &[max])?.first() {
                Some(e) => e.hash,
                None => Hash32::ZERO,
            };
            let balance = tx
                .balance(&Account::Wallet(id).to_string())?
                .unwrap_or(0)
                .max(0);
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
            let cmd = state_command(w);
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
        let pending = tx.vouchers(&id, checkpoint.load_seq + 1, w.load_seq)?;
        let unapplied: i128 = pending.iter().map(|(_, a, _)| i128::from(*a)).sum();
        let vouchers: Vec<Vec<u8>> = pending.into_iter().map(|(_, _, b)| b).collect();
        let (mut certificate, rekey) = self.rekey(tx, r, csr, w, now)?;
        if certificate.is_none()
            && w.state == WalletState::Active
            && w.cert_not_after.since(now) < self.policy.cert_validity_seconds / 2
        {
            let old = Certificate::from_der(&w.cert_der)?;
            // A renewed certificate keeps the wallet's profile.
            let (cert, serial) = certificates::issue_wallet_certificate(
                &self.ca,
                &self.policy,
                tx,
                old.public_key(),
                id,
                old.wallet_profile(),
                now,
            )?;
            w.cert_der = cert.der().to_vec();
            w.cert_serial = serial;
            w.cert_not_after = cert.not_after();
            certificate = Some(w.cert_der.clone());
        }
        let policy = (w.policy_epoch != self.policy.epoch).then(|| self.policy_bytes.clone());
        w.policy_epoch = self.policy.epoch;
        let crl = certificates::crl_for_sync(&self.ca, tx, r.crl_number, now)?;
        let response = Signed::try_sign(
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
                crl: crl.complete,
                crl_delta: crl.delta,
                certificate,
                policy,
                command,
                directory: self.directory_update(r.directory_version),
                rekey,
            },
            self.ca.signer(),
        )?
        .into_bytes();
        tx.insert_checkpoint(&checkpoint)?;
        w.checkpoint = number;
        let stranded = crate::stranded::after_report(tx, &id, &checkpoint, unapplied)?;
        Ok((response, stranded))
    }
}

impl<S: Store> Issuer<S> {
    /// Re-keying at sync: certify the report's CSR (the key the wallet made
    /// when a previous response asked for it), or ask for a new key: the
    /// operator's request ([`Issuer::request_rekey`]) or the policy's
    /// required suite. Returns the certificate to send and the suite to ask
    /// for; updates `w` (the previous key's certificate is kept: the
    /// wallet's entries below the new key's first seq verify under it).
    fn rekey(
        &self,
        tx: &mut dyn Tx,
        r: &SyncReport,
        csr: Option<&pki::Csr>,
        w: &mut WalletRecord,
        now: UnixSeconds,
    ) -> Result<(Option<Vec<u8>>, Option<Suite>), IssuerError> {
        if w.state != WalletState::Active
            || (csr.is_none() && w.rekey_suite.is_none() && self.policy.required_suite.is_none())
        {
            // Nothing to certify or ask for: no certificate parse on the sync path.
            return Ok((None, None));
        }
        let current = Certificate::from_der(&w.cert_der)?;
        let wanted = w.rekey_suite.or_else(|| {
            self.policy
                .required_suite
                .map(|q| q.suite)
                .filter(|s| *s != current.suite())
        });
        let Some(csr) = csr else {
            return Ok((None, wanted));
        };
        if csr.public_key == *current.public_key() {
            if r.key_generation.checked_add(1) == Some(w.key_generation) {
                // Certified already; the TA did not get that response: again.
                return Ok((Some(w.cert_der.clone()), None));
            }
            return Err(InputError::RekeyCsr("it certifies the key in use").into());
        }
        if r.key_generation != w.key_generation {
            return Err(InputError::RekeyCsr("the report is signed by a retired key").into());
        }
        if wanted.is_some_and(|s| s != csr.public_key.suite()) {
            // A key of a suite no longer asked for: ask for the right one.
            return Ok((None, wanted));
        }
        let (cert, serial) = certificates::issue_wallet_certificate(
            &self.ca,
            &self.policy,
            tx,
            &csr.public_key,
            w.id,
            current.wallet_profile(),
            now,
        )?;
        w.prev_cert_der = Some(std::mem::replace(&mut w.cert_der, cert.der().to_vec()));
        w.cert_serial = serial;
        w.cert_not_after = cert.not_after();
        w.key_generation = w
            .key_generation
            .checked_add(1)
            .ok_or(InputError::RekeyCsr("key generation overflow"))?;
        w.rekey_suite = None;
        Ok((Some(w.cert_der.clone()), None))
    }
}

/// The key that signed a report and the one before it: the report names
/// the generation of its key, the current one or (a report made before the
/// TA installed its re-keyed certificate) the one before. Entries below that
/// key's first seq were signed by the generation before it.
fn report_keys(
    wallet: &WalletRecord,
    wcert: &Certificate,
    r: &SyncReport,
) -> Result<(PublicKey, Option<PublicKey>), IssuerError> {
    let prev = match &wallet.prev_cert_der {
        Some(d) => Some(Certificate::from_der(d)?.public_key().clone()),
        None => None,
    };
    if r.key_generation == wallet.key_generation {
        Ok((wcert.public_key().clone(), prev))
    } else if r.key_generation.checked_add(1) == Some(wallet.key_generation)
        && let Some(p) = prev
    {
        Ok((p, None))
    } else {
        Err(InputError::UnknownKeyGeneration {
            got: r.key_generation,
            current: wallet.key_generation,
        }
        .into())
    }
}

/// Outgoing entry `i` of a report by `wallet`: decoded, and of that wallet.
fn outgoing_entry(i: usize, b: &[u8], wallet: WalletId) -> Result<ChainEntry, IssuerError> {
    let e = ChainEntry::decode(b).map_err(|error| InputError::Entry {
        list: EntryList::Outgoing,
        index: i,
        error,
    })?;
    if e.payer() != wallet {
        return Err(InputError::ForeignOutgoing { index: i }.into());
    }
    Ok(e)
}

/// The report's re-key CSR, its proof of possession verified, naming the reporter.
fn report_csr(r: &SyncReport) -> Result<Option<pki::Csr>, IssuerError> {
    let Some(der) = &r.csr else {
        return Ok(None);
    };
    let c = pki::parse_csr(der)
        .map_err(|_| InputError::RekeyCsr("malformed, or its signature does not verify"))?;
    if c.wallet_id != r.wallet {
        return Err(InputError::RekeyCsr("it names another wallet").into());
    }
    Ok(Some(c))
}

/// What a sync response tells a wallet that is not being unlocked: nothing
/// when active, else to lock with the stored reason (a revoked wallet is told
/// it is revoked, whatever the operator's reason).
fn state_command(w: &WalletRecord) -> WalletCommand {
    match w.state {
        WalletState::Active => WalletCommand::None,
        WalletState::Revoked | WalletState::Closed => WalletCommand::Lock {
            reason: reason_text(&match w.reason.as_deref() {
                Some(r) if !r.starts_with("revoked") => format!("revoked: {r}"),
                _ => w.reason.clone().unwrap_or_else(|| "revoked".into()),
            }),
        },
        _ => WalletCommand::Lock {
            reason: reason_text(w.reason.as_deref().unwrap_or(w.state.as_str())),
        },
    }
}

fn poisoned() -> IssuerError {
    Invariant::CachePoisoned.into()
}

fn check_wallet(c: CachedCert, payer: WalletId) -> Result<CachedCert, IssuerError> {
    if c.0 != payer {
        return Err(InputError::PayerCertificateMismatch {
            payer,
            certified: c.0,
        }
        .into());
    }
    Ok(c)
}
