//! The auditor: the cheap checks after every event and hour, the full checks
//! (the issuer's ledger invariants, every balance), the daily records, and the
//! final reconciliation and report (double spends against proofs, losses
//! against the bound, honest parties whole).

use super::*;

impl<'a, P: FnMut(Progress)> Sim<'a, P> {
    // ---- checks -----------------------------------------------------------------------------------

    pub(super) fn cheap_check(&mut self, hour: u64) {
        self.r.invariant_checks += 1;
        let lhs = self.ta_sum as i128
            + self.in_flight as i128
            + self.discarded as i128
            + self.ta_redeemed as i128;
        let rhs = self.loads_applied as i128 + self.copied as i128;
        if lhs != rhs {
            self.violation(format!(
                "conservation at hour {hour}: offline balances {} + in flight {} + discarded {} + redeemed {} != loads applied {} + copied {}",
                self.ta_sum, self.in_flight, self.discarded, self.ta_redeemed, self.loads_applied, self.copied
            ));
        }
    }

    pub(super) fn full_check(&mut self, hour: u64) -> Result<(), SimError> {
        self.r.invariant_checks += 1;
        let mut total = 0i128;
        for k in self.nodes.indices() {
            let inv = self.nodes[k].issuer.invariants()?;
            let who = self.issuer_label(k);
            if !inv.ok {
                self.violation(format!(
                    "{who}invariants at hour {hour}: {}",
                    inv.violations.join("; ")
                ));
            }
            let n = &self.nodes[k];
            let supply = n.deposited as i128 - n.withdrawn as i128;
            if self.nodes.len() > 1 && inv.supply != supply {
                self.violation(format!(
                    "supply at hour {hour}: {who}{} != its deposits - withdrawals {supply}",
                    inv.supply
                ));
            }
            total += inv.supply;
        }
        let supply = self.r.deposited_minor as i128 - self.r.withdrawn_minor as i128;
        if total != supply {
            self.violation(format!(
                "supply at hour {hour}: issuer {total} != deposits - withdrawals {supply}"
            ));
        }
        let sum: u64 = self.devices.indices().map(|d| self.actual_balance(d)).sum();
        if sum != self.ta_sum {
            self.violation(format!(
                "conservation at hour {hour}: live devices hold {sum}, the simulator counted {}",
                self.ta_sum
            ));
        }
        self.scheme_check(hour)?;
        Ok(())
    }

    /// `"issuer "` alone, or `"issuer bank-1 "` when the run has several.
    pub(super) fn issuer_label(&self, k: IssuerIdx) -> String {
        if self.nodes.len() == 1 {
            "issuer ".into()
        } else {
            format!("issuer {} ", self.nodes[k].code)
        }
    }

    /// The double spends proven so far, at the payer's issuer (a proof kept
    /// by another issuer, of a foreign payer, is checked in `finish`).
    pub(super) fn refresh_detected(
        &mut self,
    ) -> Result<Vec<offpay_issuer::store::DoubleSpendRecord>, SimError> {
        let mut all = Vec::new();
        for k in self.nodes.indices() {
            let recs = self.nodes[k].issuer.double_spends(None, u32::MAX)?;
            for rec in recs {
                let Some(&cust) = self.owner.get(&rec.payer) else {
                    all.push(rec);
                    continue;
                };
                if self.customers[cust].issuer != k {
                    continue;
                }
                let t = Self::now_s(rec.detected);
                let e = self.detected.entry((cust, rec.seq)).or_insert(t);
                *e = (*e).min(t);
                all.push(rec);
            }
        }
        Ok(all)
    }

    /// (released double spends, exposure): (payer, seq) with at least two
    /// released entries, and the value of all but the first of those not detected.
    pub(super) fn exposure(&self) -> (u64, u64) {
        let mut released = 0;
        let mut exposure = 0;
        for (key, ts) in &self.chains {
            if ts.len() < 2 {
                continue;
            }
            released += 1;
            if self.detected.contains_key(key) {
                continue;
            }
            let mut v: Vec<&Tracked> = ts.iter().map(|&t| &self.tracked[t]).collect();
            v.sort_by_key(|t| t.released);
            exposure += v[1..].iter().map(|t| t.amount).sum::<u64>();
        }
        (released, exposure)
    }

    pub(super) fn end_of_day(&mut self, day: u32) -> Result<(), SimError> {
        self.refresh_detected()?;
        let (mut guarantee, mut supply) = (0i128, 0i128);
        for k in self.nodes.indices() {
            let inv = self.nodes[k].issuer.invariants()?;
            guarantee += inv.totals.guarantee;
            supply += inv.supply;
        }
        let (released, exposure) = self.exposure();
        let mut rec = std::mem::take(&mut self.day);
        rec.day = day;
        rec.offline_balance_minor = self.ta_sum;
        rec.in_flight_minor = self.in_flight;
        rec.exposure_minor = exposure;
        rec.guarantee_loss_minor = (-guarantee).max(0) as u64;
        rec.double_spends_released = released;
        rec.double_spends_detected = self.detected.len() as u64;
        rec.supply_minor = supply as i64;
        self.day_issuers(&mut rec)?;
        self.r.daily.push(rec);
        Ok(())
    }

    // ---- the end ---------------------------------------------------------------------------------

    /// After the run, the scheme's rules close the books: the clock moves
    /// on until the last revoked wallet is due to close and the payees'
    /// return window after the final sync has passed; every live device
    /// syncs once more (what its TA never held goes back to the payers), and
    /// every due wallet is closed (paid out, or forfeited by the rules).
    pub(super) fn closing_phase(&mut self, end: UnixSeconds) -> Result<(), SimError> {
        let mut at = end;
        for k in self.nodes.indices() {
            let r = self.nodes[k].issuer.lifecycle_rules()?;
            at = at.max(end.plus(r.return_after_seconds + 1));
        }
        for c in self.customers.indices() {
            for w in self.customers[c].wallets.clone() {
                let rec = self.iss(c).wallet(&w)?;
                if let Some(t) = self.iss(c).closes_at(&rec) {
                    at = at.max(t);
                }
            }
        }
        let live: Vec<DeviceIdx> = self
            .customers
            .indices()
            .map(|c| self.customers[c].device)
            .filter(|&d| self.devices[d].alive())
            .collect();
        for k in self.nodes.indices() {
            let devs: Vec<DeviceIdx> = live
                .iter()
                .copied()
                .filter(|&d| self.dev_node(d) == k)
                .collect();
            self.sync_grouped(k, &devs, at)?;
        }
        self.settle_until_quiet(at)?;
        for k in self.nodes.indices() {
            loop {
                let r = self.nodes[k].issuer.close_due(at, 1_000)?;
                let l = &mut self.r.lifecycle;
                l.closed += u64::from(r.closed);
                l.paid_out_minor += r.paid_out_minor.max(0) as u64;
                l.forfeited_to_reserve_minor += r.forfeited_minor.max(0) as u64;
                l.returned += u64::from(r.returned);
                l.returned_minor += r.returned_minor.max(0) as u64;
                if !r.more {
                    break;
                }
            }
            let mut tx = self.nodes[k].issuer.store().begin()?;
            self.r.lifecycle.reserve_minor += tx
                .balance(&offpay_issuer::Account::Reserve.to_string())?
                .unwrap_or(0);
        }
        self.r.lifecycle.closing_after_s = at.since(end);
        Ok(())
    }

    pub(super) fn finish(&mut self, end: UnixSeconds) -> Result<(), SimError> {
        // Messages still on their way when the run ends never arrive.
        for i in self.msgs.indices() {
            if let Some(m) = self.msgs[i].take() {
                let kind = match m.kind {
                    MsgKind::Replay => AttackKind::Replay,
                    _ => AttackKind::Torn,
                };
                self.outcome(kind, "still_on_the_way_at_the_end");
            }
        }
        // Every live primary device comes online one last time, at once: the
        // issuer group-commits their reports.
        let live: Vec<DeviceIdx> = self
            .customers
            .indices()
            .map(|c| self.customers[c].device)
            .filter(|&d| self.devices[d].alive())
            .collect();
        for k in self.nodes.indices() {
            let devs: Vec<DeviceIdx> = live
                .iter()
                .copied()
                .filter(|&d| self.dev_node(d) == k)
                .collect();
            self.sync_grouped(k, &devs, end)?;
        }
        self.settle_until_quiet(end)?;
        self.closing_phase(end)?;
        let hours = u64::from(self.cfg.days) * 24;
        self.cheap_check(hours);
        self.full_check(hours)?;

        // Double spends: what reached the issuer against what it proved.
        let recs = self.refresh_detected()?;
        let root = Certificate::from_der(&self.root_der)
            .map_err(|e| SimError::Wallet(format!("root: {e:?}")))?;
        for rec in &recs {
            match verify_double_spend_bytes(&rec.proof, &root) {
                Ok(p) if p.payer == rec.payer => self.r.double_spend_proofs_verified += 1,
                _ => self.violation("a stored double-spend proof does not verify".into()),
            }
            match self.owner.get(&rec.payer) {
                Some(&c)
                    if self.customers[c]
                        .attacker
                        .is_some_and(AttackKind::double_spends) => {}
                Some(&c) => self.violation(format!(
                    "customer {c} (not a double spender) was found double-spending at seq {}",
                    rec.seq
                )),
                None => self.violation("a double spend by an unknown wallet".into()),
            }
        }
        let mut delays = Vec::new();
        let mut injected = 0u64;
        let mut undetectable = 0u64;
        let mut records = Vec::new();
        let keys: Vec<(CustomerIdx, u64)> = self.chains.keys().copied().collect();
        for key in keys {
            let ts = &self.chains[&key];
            if ts.len() < 2 {
                continue;
            }
            let mut all: Vec<&Tracked> = ts.iter().map(|&t| &self.tracked[t]).collect();
            all.sort_by_key(|t| t.released);
            let mut reported: Vec<&Tracked> = all
                .iter()
                .copied()
                .filter(|t| t.reported.is_some())
                .collect();
            reported.sort_by_key(|t| t.released);
            let overspend: u64 = all[1..].iter().map(|t| t.amount).sum();
            let (cust, seq) = key;
            let kind = self.customers[cust]
                .attacker
                .map_or("", AttackKind::name)
                .to_string();
            let detected = self.detected.get(&key).copied();
            if reported.len() < 2 {
                undetectable += 1;
                if detected.is_some() {
                    self.violation(format!(
                        "customer {cust}'s double spend at seq {seq} was detected but the simulator saw it reach the issuer only once"
                    ));
                }
                continue;
            }
            injected += 1;
            let attack_s = reported[1].released;
            let delay = detected.map(|d| d.saturating_sub(attack_s));
            if let Some(d) = delay {
                delays.push(d);
            } else {
                self.violation(format!(
                    "customer {cust}'s double spend at seq {seq} reached the issuer and was not detected"
                ));
            }
            if let Some(a) = self.customers[cust].attacker_rec {
                let ar = &mut self.r.attackers[a];
                ar.double_spends_injected += 1;
                if let Some(d) = delay {
                    ar.double_spends_detected += 1;
                    if ar.first_detection_delay_s.is_none() {
                        ar.first_detection_delay_s = Some(d);
                    }
                }
            }
            records.push(DoubleSpendRecord {
                customer: cust.as_u64(),
                kind,
                seq,
                attack_s,
                detected_s: detected,
                delay_s: delay,
                overspend_minor: overspend,
            });
        }
        for (key, _) in self.detected.clone() {
            let reached = self.chains.get(&key).is_some_and(|ts| {
                ts.iter()
                    .filter(|&&t| self.tracked[t].reported.is_some())
                    .count()
                    >= 2
            });
            if !reached {
                self.violation(format!(
                    "the issuer detected a double spend of customer {} at seq {} that the simulator did not inject",
                    key.0, key.1
                ));
            }
        }
        self.r.double_spends_injected = injected;
        self.r.double_spends_detected = delays.len() as u64;
        self.r.double_spends_undetectable = undetectable;
        self.r.detection_delay_s = Distribution::of(&delays);
        self.r.double_spends = records;

        // Attackers: what the issuer had to cover.
        let loss_bound = self.limits.loss_bound_per_wallet_minor;
        for i in 0..self.r.attackers.len() {
            let cust = CustomerIdx::new(self.r.attackers[i].customer as usize);
            let wid = self.customers[cust].wallets.last().copied();
            let mut state = String::new();
            let (mut claw, mut guar) = (0u64, 0u64);
            for w in self.customers[cust].wallets.clone() {
                let rec = self.iss(cust).wallet(&w)?;
                claw += rec.clawed_back.max(0) as u64;
                guar += rec.guaranteed.max(0) as u64;
                if Some(w) == wid || state.is_empty() {
                    state = rec.state.as_str().to_string();
                }
            }
            let a = &mut self.r.attackers[i];
            a.issuer_state = state;
            a.clawed_back_minor = claw;
            a.guaranteed_minor = guar;
            a.loss_minor = claw + guar;
            let loss = a.loss_minor;
            self.r.max_loss_per_attacker_minor = self.r.max_loss_per_attacker_minor.max(loss);
            if loss > loss_bound {
                self.violation(format!(
                    "customer {cust}'s loss {loss} exceeds the bound {loss_bound} (holding + offline spend limit)"
                ));
            }
        }

        // Honest parties: what they hold offline is backed at the issuer, their
        // online balances are what they should be, and none is locked.
        // Stranded: settled to a payee that never held it, and still there
        // (not returned to the payer by the lifecycle rules).
        let mut stranded_to: HashMap<DeviceIdx, u64> = HashMap::new();
        for k in self.nodes.indices() {
            let mut tx = self.nodes[k].issuer.store().begin()?;
            let mut pending: HashMap<WalletId, std::collections::HashSet<(WalletId, Hash32)>> =
                HashMap::new();
            for u in self.undelivered.iter() {
                let Some(payee) = u.payee else { continue };
                if u.accepted || self.customers[self.devices[u.payee_dev].cust].issuer != k {
                    continue;
                }
                if tx.settled(&u.payer, &[u.hash])?.is_empty() {
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = pending.entry(payee) {
                    let p = tx
                        .pending_to(&payee, UnixSeconds(i64::MAX as u64), u32::MAX)?
                        .into_iter()
                        .map(|s| (s.payer, s.hash))
                        .collect();
                    slot.insert(p);
                }
                // A payment of another issuer's wallet is not returned (that
                // issuer's customer): it stays, counted.
                if pending[&payee].contains(&(u.payer, u.hash))
                    || self
                        .owner
                        .get(&u.payer)
                        .is_none_or(|&c| self.customers[c].issuer != k)
                {
                    *stranded_to.entry(u.payee_dev).or_default() += u.amount;
                    self.r.stranded_minor += u.amount;
                }
            }
        }
        let mut honest_loss: u64 = 0;
        let mut honest_credits: u64 = 0;
        for cust in self.customers.indices() {
            let dev = self.customers[cust].device;
            let honest = self.honest(cust);
            // Wallets no device holds any more.
            for w in self.customers[cust].wallets.clone() {
                let live = self.devices[dev]
                    .wallet
                    .as_ref()
                    .is_some_and(|x| x.wallet_id() == w);
                if !live {
                    self.r.unclaimed_minor += self.iss(cust).wallet_balance(&w)?.max(0) as u64;
                }
            }
            if !honest {
                continue;
            }
            let id = self.customers[cust].id.clone();
            let online = self.iss(cust).customer_balance(&id)?;
            let expected = self.customers[cust].online_expected;
            if online < expected {
                self.violation(format!(
                    "honest customer {cust}'s online balance is {online}, expected {expected}"
                ));
                honest_loss += (expected - online) as u64;
            } else {
                // Paid out or returned by the lifecycle rules (checked against
                // what the issuer reported below).
                honest_credits += (online - expected) as u64;
            }
            if !self.devices[dev].alive() {
                continue;
            }
            let wid = self.wallet(dev).wallet_id();
            if let Some(l) = self.wallet(dev).lock().map(error_name) {
                self.violation(format!("honest customer {cust}'s wallet is locked: {l}"));
            }
            let rec = self.iss(cust).wallet(&wid)?;
            if rec.state != WalletState::Active {
                self.violation(format!(
                    "honest customer {cust}'s wallet is {} at the issuer",
                    rec.state.as_str()
                ));
            }
            let sub = self.iss(cust).wallet_balance(&wid)?;
            let ta = self.actual_balance(dev) as i64;
            let pending: u64 = self.devices[dev].vouchers.iter().map(|(_, a)| a).sum();
            let surplus = stranded_to.get(&dev).copied().unwrap_or(0) + pending;
            if sub != ta + surplus as i64 {
                self.violation(format!(
                    "honest customer {cust}: sub-account {sub} != offline balance {ta} + settled-but-not-received {surplus}"
                ));
            }
            honest_loss += (ta - sub).max(0) as u64;
        }
        self.r.honest_loss_minor = honest_loss;
        if honest_loss > 0 {
            self.violation(format!("honest parties lost {honest_loss}"));
        }
        self.r.lifecycle.honest_credits_minor = honest_credits;
        let credited = self.r.lifecycle.paid_out_minor + self.r.lifecycle.returned_minor;
        if honest_credits > credited {
            self.violation(format!(
                "honest customers hold {honest_credits} more online than their operations explain, but the issuers paid out and returned only {credited}"
            ));
        }

        let mut ledger = LedgerSummary {
            devices_minor: self.ta_sum,
            in_flight_minor: self.in_flight,
            ..LedgerSummary::default()
        };
        for k in self.nodes.indices() {
            let inv = self.nodes[k].issuer.invariants()?;
            ledger.supply_minor += inv.supply as i64;
            ledger.pool_minor += inv.totals.pool as i64;
            ledger.wallets_minor += inv.totals.wallets as i64;
            ledger.customers_minor += inv.totals.customers as i64;
            ledger.guarantee_minor += inv.totals.guarantee as i64;
        }
        self.r.guarantee_loss_minor = (-ledger.guarantee_minor).max(0) as u64;
        self.r.clawed_back_minor = self.r.attackers.iter().map(|a| a.clawed_back_minor).sum();
        self.r.ledger = ledger;
        self.scheme_finish()?;
        if self.violations_dropped > 0 {
            let n = self.violations_dropped;
            self.r
                .invariant_violations
                .push(format!("... and {n} more violations"));
        }
        Ok(())
    }
}
