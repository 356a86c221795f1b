//! The workload: online money (deposits, loads, redeems), payments and the
//! delivery of delayed messages, the customers' habits (paying, syncing, topping
//! up), and the issuer calls under the fault plan (retries, restarts, group
//! commits).

use super::*;

impl<'a, P: FnMut(Progress)> Sim<'a, P> {
    // ---- online money ------------------------------------------------------------------------

    pub(super) fn deposit(
        &mut self,
        cust: CustomerIdx,
        minor: u64,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let key = format!("dep-{cust}-{}", self.next_op());
        let id = self.customers[cust].id.clone();
        let k = self.customers[cust].issuer;
        self.faulted(k, |i| i.deposit(&id, Amount::new(minor, eur()), &key, now))??;
        self.customers[cust].online_expected += minor as i64;
        self.r.deposited_minor += minor;
        self.nodes[k].deposited += minor;
        Ok(())
    }

    /// Load `minor` into `dev` (voucher from the issuer, applied by the TA).
    pub(super) fn load(
        &mut self,
        dev: DeviceIdx,
        minor: u64,
        now: UnixSeconds,
    ) -> Result<bool, SimError> {
        let cust = self.devices[dev].cust;
        let wid = self.wallet(dev).wallet_id();
        let key = format!("load-{cust}-{}", self.next_op());
        let k = self.customers[cust].issuer;
        let voucher =
            match self.faulted(k, |i| i.load(&wid, Amount::new(minor, eur()), &key, now))? {
                Ok(v) => v,
                Err(e) => {
                    self.issuer_refusal("load", &e);
                    return Ok(false);
                }
            };
        let seq = Signed::<LoadVoucher>::decode(&voucher)
            .map(|v| v.body().load_seq)
            .map_err(|e| SimError::Wallet(format!("voucher: {e}")))?;
        self.customers[cust].online_expected -= minor as i64;
        self.r.loads += 1;
        self.r.loaded_minor += minor;
        self.devices[dev].vouchers.push((seq, minor));
        let (res, crashed) = self.op(dev, |w| w.apply_voucher(&voucher, now))?;
        match res {
            Ok(_) => {}
            Err(WalletError::VoucherReplayed { .. }) if crashed => {}
            Err(e) => self.refusal(error_name(&e)),
        }
        self.account_vouchers(dev, "a load");
        Ok(true)
    }

    /// Credit the vouchers the TA now holds (by its load seq) and check the balance.
    pub(super) fn account_vouchers(&mut self, dev: DeviceIdx, what: &str) {
        let now_seq = self.wallet(dev).status(T0).load_seq;
        let mut expected = 0u64;
        self.devices[dev].vouchers.retain(|(s, a)| {
            if *s <= now_seq {
                expected += a;
                false
            } else {
                true
            }
        });
        self.loads_applied += expected;
        self.settle_balance(dev, expected as i128, what);
    }

    /// Redeem `minor` from `dev` to its customer's online account.
    pub(super) fn redeem(
        &mut self,
        dev: DeviceIdx,
        minor: u64,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        let before = self.actual_balance(dev);
        let amount = Amount::new(minor, eur());
        let bytes = match self.wallet(dev).redeem(amount, now) {
            Ok(b) => Some(b),
            Err(WalletError::Vault(VaultError::Crashed)) => {
                self.recover(dev)?;
                if self.actual_balance(dev) + minor == before {
                    // Committed before the crash: the entry is in the log; submit it.
                    self.wallet(dev)
                        .unsynced_outgoing()
                        .into_iter()
                        .rev()
                        .find(|b| matches!(ChainEntry::decode(b), Ok(ChainEntry::Redeem(_))))
                } else {
                    match self.wallet(dev).redeem(amount, now) {
                        Ok(b) => Some(b),
                        Err(e) => {
                            self.refusal(error_name(&e));
                            None
                        }
                    }
                }
            }
            Err(e) => {
                self.refusal(error_name(&e));
                None
            }
        };
        let Some(bytes) = bytes else {
            self.settle_balance(dev, 0, "a refused redeem");
            return Ok(());
        };
        self.settle_balance(dev, -(minor as i128), "a redeem");
        self.ta_redeemed += minor;
        if let Ok(e) = ChainEntry::decode(&bytes) {
            self.track_own(dev, &e, now);
            if let Some(&t) = self.tracked_by_hash.get(&e.hash()) {
                self.tracked[t].reported.get_or_insert(Self::now_s(now));
            }
        }
        let k = self.customers[cust].issuer;
        match self.faulted(k, |i| i.redeem(&bytes, now))? {
            Ok(_) => {
                self.customers[cust].online_expected += minor as i64;
                self.r.redeems += 1;
                self.r.redeemed_minor += minor;
            }
            Err(e) => {
                // Still in the log: settled at the next sync.
                self.issuer_refusal("redeem", &e);
                self.customers[cust].online_expected += minor as i64;
            }
        }
        Ok(())
    }

    // ---- attacker entry tracking ----------------------------------------------------------------

    /// Track an outgoing entry signed by `dev` if its customer is an attacker.
    pub(super) fn track_own(&mut self, dev: DeviceIdx, e: &ChainEntry, now: UnixSeconds) {
        let cust = self.devices[dev].cust;
        if self.customers[cust].attacker.is_none() {
            return;
        }
        let h = e.hash();
        if self.tracked_by_hash.contains_key(&h) {
            return;
        }
        let t = self.tracked.push(Tracked {
            amount: e.amount().minor,
            released: Self::now_s(now),
            reported: None,
            payee_issuer: None,
            foreign_evidence: false,
        });
        self.tracked_by_hash.insert(h, t);
        self.chains.entry((cust, e.seq())).or_default().push(t);
        self.devices[dev].held.push(t);
    }

    /// `dev` now holds (accepted or kept as evidence) the tracked entry `h`.
    pub(super) fn hold(&mut self, dev: DeviceIdx, h: &Hash32) {
        if let Some(&t) = self.tracked_by_hash.get(h) {
            self.devices[dev].held.push(t);
        }
    }

    // ---- payments ------------------------------------------------------------------------------

    pub(super) fn amount_draw(&mut self) -> u64 {
        let u = self.rng.unit();
        100 + (u * u * 6000.0) as u64
    }

    /// A random merchant (or consumer) other than `not`.
    pub(super) fn pick(
        &mut self,
        from_merchants: bool,
        not: Option<CustomerIdx>,
    ) -> Option<CustomerIdx> {
        let list = if from_merchants && !self.merchants.is_empty() {
            &self.merchants
        } else {
            &self.consumers
        };
        if list.len() < 2 && not.is_some() && list.first().copied() == not {
            return None;
        }
        for _ in 0..8 {
            let c = list[self.rng.below(list.len() as u64) as usize];
            if Some(c) != not {
                return Some(c);
            }
        }
        None
    }

    /// Request, pay, receive, confirm between two devices, with torn channels
    /// and replays injected at their per-payment rates.
    pub(super) fn payment(
        &mut self,
        payer_dev: DeviceIdx,
        payee_dev: DeviceIdx,
        minor: u64,
        now: UnixSeconds,
        attack: Option<AttackKind>,
    ) -> Result<bool, SimError> {
        if !self.devices[payer_dev].alive() || !self.devices[payee_dev].alive() {
            return Ok(false);
        }
        self.r.payments_attempted += 1;
        let amount = Amount::new(minor, eur());
        let (req, _) = self.op(payee_dev, |w| w.request(amount, REQUEST_SECONDS, now))?;
        self.settle_balance(payee_dev, 0, "a request");
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                self.refusal(error_name(&e));
                return Ok(false);
            }
        };
        let (paid, _) = self.op(payer_dev, |w| w.pay(&req, now))?;
        let payment = match paid {
            Ok(p) => p,
            Err(e) => {
                if let Some(k) = attack {
                    self.outcome(k, &format!("payer_refused:{}", error_name(&e)));
                }
                self.refusal(error_name(&e));
                self.settle_balance(payer_dev, 0, "a refused payment");
                return Ok(false);
            }
        };
        self.settle_balance(payer_dev, -(minor as i128), "a payment");
        self.in_flight += minor;
        let entry =
            ChainEntry::decode(&payment).map_err(|e| SimError::Wallet(format!("payment: {e}")))?;
        self.track_own(payer_dev, &entry, now);
        if let Some(&t) = self.tracked_by_hash.get(&entry.hash()) {
            let k = self.dev_node(payee_dev);
            self.tracked[t].payee_issuer.get_or_insert(k);
        }

        let torn_rate = self.cfg.rate(AttackKind::Torn);
        if attack.is_none() && torn_rate > 0.0 && self.arng.chance(torn_rate) {
            self.injected(AttackKind::Torn);
            if self.arng.chance(0.5) {
                // The Payment is lost on the way.
                let u = self.undelivered_add(payee_dev, &entry, minor, false, now);
                if self.arng.chance(0.5) {
                    let later = Self::now_s(now) + self.arng.range(10, 600);
                    let id = self.msg(Msg {
                        kind: MsgKind::LatePayment,
                        payer_dev,
                        payee_dev,
                        amount: minor,
                        request: req,
                        payment,
                        undelivered: Some(u),
                    });
                    self.push(later, Ev::Msg { id });
                    self.outcome(AttackKind::Torn, "payment_lost_delivered_later");
                } else {
                    self.outcome(AttackKind::Torn, "payment_lost_for_good");
                }
                return Ok(false);
            }
            // The Receipt is lost: the payee has the money, the payer no receipt.
            return match self.deliver(payer_dev, payee_dev, &payment, minor, now, None)? {
                Some(_) => {
                    if self.arng.chance(0.5) {
                        let later = Self::now_s(now) + self.arng.range(5, 250);
                        let id = self.msg(Msg {
                            kind: MsgKind::ReceiptRetry,
                            payer_dev,
                            payee_dev,
                            amount: minor,
                            request: req,
                            payment,
                            undelivered: None,
                        });
                        self.push(later, Ev::Msg { id });
                        self.outcome(AttackKind::Torn, "receipt_lost_retried_later");
                    } else {
                        self.outcome(AttackKind::Torn, "receipt_lost_for_good");
                    }
                    Ok(true)
                }
                None => Ok(false),
            };
        }
        let accepted = self.deliver(payer_dev, payee_dev, &payment, minor, now, attack)?;
        let Some(receipt) = accepted else {
            return Ok(false);
        };
        let (c, _) = self.op(payer_dev, |w| w.confirm(&receipt))?;
        if let Err(e) = c {
            self.violation(format!(
                "confirm: a genuine receipt was refused ({})",
                error_name(&e)
            ));
        }
        let replay_rate = self.cfg.rate(AttackKind::Replay);
        if attack.is_none() && replay_rate > 0.0 && self.arng.chance(replay_rate) {
            self.injected(AttackKind::Replay);
            let later = Self::now_s(now) + self.arng.range(30, 2 * DAY);
            let id = self.msg(Msg {
                kind: MsgKind::Replay,
                payer_dev,
                payee_dev,
                amount: minor,
                request: req,
                payment,
                undelivered: None,
            });
            self.push(later, Ev::Msg { id });
        }
        Ok(true)
    }

    pub(super) fn msg(&mut self, m: Msg) -> MsgIdx {
        self.msgs.push(Some(m))
    }

    pub(super) fn undelivered_add(
        &mut self,
        payee_dev: DeviceIdx,
        e: &ChainEntry,
        amount: u64,
        refused: bool,
        now: UnixSeconds,
    ) -> UndeliveredIdx {
        let payee = match e {
            ChainEntry::Payment(p) => Some(p.body().payee),
            ChainEntry::Redeem(_) => None,
        };
        let u = self.undelivered.push(Undelivered {
            payee_dev,
            payee,
            payer: e.payer(),
            hash: e.hash(),
            seq: e.seq(),
            amount,
            accepted: false,
            refused,
        });
        self.maybe_dispute(u, now);
        u
    }

    /// Hand a Payment to its payee. Returns the receipt if accepted.
    pub(super) fn deliver(
        &mut self,
        payer_dev: DeviceIdx,
        payee_dev: DeviceIdx,
        payment: &[u8],
        minor: u64,
        now: UnixSeconds,
        attack: Option<AttackKind>,
    ) -> Result<Option<Vec<u8>>, SimError> {
        let entry =
            ChainEntry::decode(payment).map_err(|e| SimError::Wallet(format!("payment: {e}")))?;
        if !self.devices[payee_dev].alive() {
            self.undelivered_add(payee_dev, &entry, minor, false, now);
            return Ok(None);
        }
        let evidence_before = self.wallet(payee_dev).evidence().len();
        let (res, _) = self.op(payee_dev, |w| w.receive(payment, now))?;
        match res {
            Ok(receipt) => {
                self.settle_balance(payee_dev, minor as i128, "a received payment");
                self.in_flight -= minor.min(self.in_flight);
                self.r.payments += 1;
                self.r.value_moved_minor += minor;
                self.day.payments += 1;
                self.day.value_moved_minor += minor;
                if self.dev_node(payer_dev) != self.dev_node(payee_dev) {
                    self.cross_payments += 1;
                    self.cross_value += minor;
                }
                self.hold(payee_dev, &entry.hash());
                if let Some(k) = attack {
                    self.outcome(k, "payment_accepted");
                }
                Ok(Some(receipt))
            }
            Err(e) => {
                let name = error_name(&e);
                if let Some(k) = attack {
                    self.outcome(k, &format!("payee_refused:{name}"));
                }
                self.refusal(name);
                self.settle_balance(payee_dev, 0, "a refused payment");
                if self.wallet(payee_dev).evidence().len() > evidence_before {
                    let foreign = self.dev_node(payer_dev) != self.dev_node(payee_dev);
                    match self.tracked_by_hash.get(&entry.hash()) {
                        Some(&t) if foreign => self.devices[payee_dev].evidence.push(t),
                        _ => self.hold(payee_dev, &entry.hash()),
                    }
                }
                self.undelivered_add(payee_dev, &entry, minor, true, now);
                Ok(None)
            }
        }
    }

    pub(super) fn on_msg(&mut self, id: MsgIdx, now: UnixSeconds) -> Result<(), SimError> {
        let Some(m) = self.msgs[id].take() else {
            return Ok(());
        };
        match m.kind {
            MsgKind::LatePayment => {
                if !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Torn, "late_payment_payee_gone");
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&m.payment, now))?;
                match res {
                    Ok(receipt) => {
                        self.settle_balance(m.payee_dev, m.amount as i128, "a late payment");
                        self.in_flight -= m.amount.min(self.in_flight);
                        self.r.payments += 1;
                        self.r.value_moved_minor += m.amount;
                        self.day.payments += 1;
                        self.day.value_moved_minor += m.amount;
                        if let Some(u) = m.undelivered {
                            self.undelivered[u].accepted = true;
                        }
                        if let Ok(e) = ChainEntry::decode(&m.payment) {
                            self.hold(m.payee_dev, &e.hash());
                        }
                        self.outcome(AttackKind::Torn, "late_payment_accepted");
                        if self.devices[m.payer_dev].alive() {
                            let (c, _) = self.op(m.payer_dev, |w| w.confirm(&receipt))?;
                            match c {
                                Ok(()) => {}
                                // The payer synced meanwhile: the entry left its log,
                                // settled; the receipt has nothing left to confirm.
                                Err(WalletError::ReceiptUnknownPayment) => self.outcome(
                                    AttackKind::Torn,
                                    "late_receipt_after_the_payer_synced",
                                ),
                                Err(e) => self.violation(format!(
                                    "confirm: a late genuine receipt was refused ({})",
                                    error_name(&e)
                                )),
                            }
                        }
                    }
                    Err(e) => {
                        let name = error_name(&e);
                        self.outcome(AttackKind::Torn, &format!("late_payment_refused:{name}"));
                        self.refusal(name);
                        self.settle_balance(m.payee_dev, 0, "a refused late payment");
                    }
                }
            }
            MsgKind::ReceiptRetry => {
                if !self.devices[m.payer_dev].alive() || !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Torn, "receipt_retry_device_gone");
                    return Ok(());
                }
                // The payer presents the same request again: the same Payment
                // comes back (idempotent) and the payee answers with the same Receipt.
                let (again, _) = self.op(m.payer_dev, |w| w.pay(&m.request, now))?;
                self.settle_balance(m.payer_dev, 0, "a repeated payment");
                let again = match again {
                    Ok(p) => p,
                    Err(e) => {
                        self.outcome(
                            AttackKind::Torn,
                            &format!("receipt_retry_payer:{}", error_name(&e)),
                        );
                        return Ok(());
                    }
                };
                if again != m.payment {
                    self.violation(
                        "torn: paying the same request again gave another payment".into(),
                    );
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&again, now))?;
                self.settle_balance(m.payee_dev, 0, "a repeated payment");
                match res {
                    Ok(receipt) => {
                        let (c, _) = self.op(m.payer_dev, |w| w.confirm(&receipt))?;
                        match c {
                            Ok(()) => self.outcome(AttackKind::Torn, "receipt_retry_confirmed"),
                            Err(WalletError::ReceiptUnknownPayment) => self
                                .outcome(AttackKind::Torn, "receipt_retry_after_the_payer_synced"),
                            Err(e) => self.violation(format!(
                                "torn: the retried receipt was refused ({})",
                                error_name(&e)
                            )),
                        }
                    }
                    Err(e) => self.outcome(
                        AttackKind::Torn,
                        &format!("receipt_retry_payee:{}", error_name(&e)),
                    ),
                }
            }
            MsgKind::Replay => {
                if !self.devices[m.payee_dev].alive() {
                    self.outcome(AttackKind::Replay, "payee_gone");
                    return Ok(());
                }
                let (res, _) = self.op(m.payee_dev, |w| w.receive(&m.payment, now))?;
                self.settle_balance(m.payee_dev, 0, "a replayed payment");
                match res {
                    Ok(_) => self.outcome(AttackKind::Replay, "same_receipt_no_money"),
                    Err(e) => {
                        let name = error_name(&e);
                        self.outcome(AttackKind::Replay, &format!("refused:{name}"));
                        self.refusal(name);
                    }
                }
            }
        }
        Ok(())
    }

    // ---- habits ----------------------------------------------------------------------------------

    pub(super) fn on_pay(&mut self, cust: CustomerIdx, now: UnixSeconds) -> Result<(), SimError> {
        let merchant = self.customers[cust].merchant;
        let per_day = if merchant {
            0.1
        } else {
            self.cfg.payments_per_day
        };
        if per_day > 0.0 {
            let mean = (DAY as f64 / per_day) as u64;
            let next = Self::now_s(now) + 1 + self.rng.wait(mean);
            self.push(next, Ev::Pay { cust });
        }
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        // Consumers shop mostly at their regular merchants and pay friends now
        // and then (which also keeps the TAs' peer-certificate caches warm, as
        // in life); merchants pay other merchants (suppliers).
        let payee = if merchant {
            self.pick(true, Some(cust))
        } else if self.rng.chance(0.8) {
            let fav = &self.customers[cust].favorites;
            if !fav.is_empty() && self.rng.chance(0.9) {
                Some(fav[self.rng.below(fav.len() as u64) as usize])
            } else {
                self.pick(true, Some(cust))
            }
        } else {
            let fr = &self.customers[cust].friends;
            if fr.is_empty() {
                self.pick(false, Some(cust))
            } else {
                Some(fr[self.rng.below(fr.len() as u64) as usize])
            }
        };
        let Some(payee) = payee else {
            return Ok(());
        };
        let balance = self.devices[dev].balance;
        let minor = self.amount_draw().min(balance).min(self.policy_max_payment);
        if minor < 100 {
            return Ok(());
        }
        let payee_dev = self.customers[payee].device;
        self.payment(dev, payee_dev, minor, now, None)?;
        Ok(())
    }

    pub(super) fn on_sync(&mut self, cust: CustomerIdx, now: UnixSeconds) -> Result<(), SimError> {
        let mean_h = if self.customers[cust].merchant {
            self.cfg.merchant_offline_hours
        } else {
            self.cfg.consumer_offline_hours
        };
        // Stay well inside the time-offline limit: honest wallets never hit it.
        let cap = self
            .limits
            .max_offline_seconds
            .saturating_sub(6 * HOUR)
            .max(HOUR);
        let wait = (60 + self.rng.wait(mean_h * HOUR)).min(cap);
        self.push(Self::now_s(now) + wait, Ev::Sync { cust });
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        self.sync_device(dev, now)?;
        if !self.honest(cust) || self.wallet(dev).lock().is_some() {
            return Ok(());
        }
        let balance = self.devices[dev].balance;
        if self.customers[cust].merchant {
            if balance > self.holding * 4 / 10 {
                self.redeem(dev, balance - self.holding / 20, now)?;
            }
        } else if balance < self.holding * 15 / 100 {
            let target = self.holding / 2;
            let wid = self.wallet(dev).wallet_id();
            let sub = self.iss(cust).wallet_balance(&wid)?.max(0) as u64;
            let room = self.holding.saturating_sub(balance.max(sub));
            let mut want = (target - balance).min(room);
            let id = self.customers[cust].id.clone();
            let mut online = self.iss(cust).customer_balance(&id)?.max(0) as u64;
            if online < 20_000 {
                self.deposit(cust, 200_000, now)?;
                online += 200_000;
            }
            want = want.min(online);
            if want >= 100 {
                self.load(dev, want, now)?;
            }
        }
        Ok(())
    }

    /// Report, reconcile, apply. Marks what the device held as reported.
    pub(super) fn sync_device(
        &mut self,
        dev: DeviceIdx,
        now: UnixSeconds,
    ) -> Result<bool, SimError> {
        let Some(report) = self.sync_report(dev, now)? else {
            return Ok(false);
        };
        let k = self.dev_node(dev);
        let out = match self.faulted(k, |i| i.sync(&report, now))? {
            Ok(o) => o,
            Err(e) => {
                self.issuer_refusal("sync", &e);
                return Ok(false);
            }
        };
        self.maybe_lose_response(k, &report, &out, now)?;
        self.apply_sync(dev, out, now)?;
        Ok(true)
    }

    /// The device's SyncReport, or `None` if its TA refuses to make one.
    pub(super) fn sync_report(
        &mut self,
        dev: DeviceIdx,
        now: UnixSeconds,
    ) -> Result<Option<Vec<u8>>, SimError> {
        let (report, _) = self.op(dev, |w| w.sync_report(now))?;
        self.settle_balance(dev, 0, "a sync report");
        match report {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                self.refusal(error_name(&e));
                Ok(None)
            }
        }
    }

    /// With faults on: now and then the issuer restarts after committing a
    /// sync and before its response reaches the device, which sends the same
    /// report again and must get the same response.
    pub(super) fn maybe_lose_response(
        &mut self,
        k: IssuerIdx,
        report: &[u8],
        out: &SyncOutcome,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        if !lock(&self.plan).chance(RESTART_MID_SYNC) {
            return Ok(());
        }
        self.restart_issuer(k)?;
        lock(&self.plan).stats.restarts_mid_sync += 1;
        match self.faulted(k, |i| i.sync(report, now))? {
            Ok(again) if again.response == out.response && (again.replayed || out.replayed) => {}
            Ok(_) => self.violation(
                "a report sent again after an issuer restart got a different response".into(),
            ),
            Err(e) => self.violation(format!(
                "a report sent again after an issuer restart was refused: {}",
                e.code()
            )),
        }
        Ok(())
    }

    /// The final syncs in group commits of up to `GROUP_MAX` reports
    /// (`Issuer::sync_group`: one transaction, one savepoint per report, and
    /// the fallback to one transaction each when the group fails).
    pub(super) fn sync_grouped(
        &mut self,
        k: IssuerIdx,
        devs: &[DeviceIdx],
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        for chunk in devs.chunks(GROUP_MAX) {
            let mut reports = Vec::with_capacity(chunk.len());
            for &dev in chunk {
                if let Some(r) = self.sync_report(dev, now)? {
                    reports.push((dev, r));
                }
            }
            let batch: Vec<(&[u8], UnixSeconds)> =
                reports.iter().map(|(_, r)| (r.as_slice(), now)).collect();
            lock(&self.plan).arm();
            let results = self.nodes[k].issuer.sync_group(&batch);
            let (injected, crashed) = {
                let mut p = lock(&self.plan);
                p.disarm();
                p.stats.group_commits += 1;
                if p.injected_since_arm > 0 {
                    p.stats.group_commits_faulted += 1;
                }
                (p.injected_since_arm, p.crashed)
            };
            if crashed {
                self.restart_issuer(k)?;
            }
            for ((dev, report), r) in reports.into_iter().zip(results) {
                let r = match r {
                    Err(IssuerError::Store(_)) if injected > 0 => {
                        lock(&self.plan).stats.retries += 1;
                        self.faulted(k, |i| i.sync(&report, now))?
                    }
                    r => r,
                };
                match r {
                    Ok(out) => self.apply_sync(dev, out, now)?,
                    Err(e) => self.issuer_refusal("sync", &e),
                }
            }
        }
        Ok(())
    }

    /// Run an issuer operation with the fault plan armed. An operation that
    /// failed on an injected fault is sent again (what a client does after a
    /// failed request); after a "crash" the issuer restarts on the same store
    /// first. Without faults this is just `f(&issuer)`.
    pub(super) fn faulted<T>(
        &mut self,
        k: IssuerIdx,
        f: impl Fn(&Issuer<FaultStore>) -> Result<T, IssuerError>,
    ) -> Result<Result<T, IssuerError>, SimError> {
        let mut attempt = 0;
        loop {
            lock(&self.plan).arm();
            let r = f(&self.nodes[k].issuer);
            let (injected, crashed) = {
                let mut p = lock(&self.plan);
                p.disarm();
                (p.injected_since_arm, p.crashed)
            };
            if crashed {
                self.restart_issuer(k)?;
            }
            match r {
                Err(IssuerError::Store(_)) if injected > 0 && attempt < FAULT_RETRIES_MAX => {
                    attempt += 1;
                    lock(&self.plan).stats.retries += 1;
                }
                Ok(v) => {
                    if injected > 0 {
                        lock(&self.plan).stats.absorbed += 1;
                    }
                    return Ok(Ok(v));
                }
                r => return Ok(r),
            }
        }
    }

    /// Drop the issuer and open it again on the same store (a server restart).
    pub(super) fn restart_issuer(&mut self, k: IssuerIdx) -> Result<(), SimError> {
        let node = &mut self.nodes[k];
        let store = FaultStore::new(node.base.clone(), self.plan.clone());
        node.issuer = Issuer::open_with_entropy(store, &MASTER, node.entropy.clone())?;
        lock(&self.plan).stats.issuer_restarts += 1;
        Ok(())
    }

    /// Apply a sync's outcome on the device. Marks what it held as reported.
    pub(super) fn apply_sync(
        &mut self,
        dev: DeviceIdx,
        out: SyncOutcome,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        self.r.lifecycle.returned += u64::from(out.returned.count);
        self.r.lifecycle.returned_minor += out.returned.minor.max(0) as u64;
        self.r.syncs += 1;
        self.day.syncs += 1;
        self.ds_seen_in_syncs += out.double_spends.len() as u64;
        let t = Self::now_s(now);
        for h in std::mem::take(&mut self.devices[dev].held) {
            self.tracked[h].reported.get_or_insert(t);
        }
        for h in std::mem::take(&mut self.devices[dev].evidence) {
            self.tracked[h].foreign_evidence = true;
        }
        let honest = self.honest(cust);
        if honest && out.locked.is_some() {
            self.violation(format!(
                "honest customer {cust}'s wallet was locked at sync: {}",
                out.locked
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default()
            ));
        }
        let (applied, crashed) = self.op(dev, |w| w.apply_sync_response(&out.response, now))?;
        match applied {
            Ok(a) => {
                if honest && a.locked {
                    let why = Signed::<SyncResponse>::decode(&out.response)
                        .ok()
                        .and_then(|r| match &r.body().command {
                            WalletCommand::Lock { reason } => Some(reason.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    self.violation(format!(
                        "honest customer {cust}'s wallet was told to lock: {why}"
                    ));
                }
            }
            Err(WalletError::StaleSyncResponse) if crashed => {}
            Err(e) => {
                let name = error_name(&e);
                if honest {
                    self.violation(format!(
                        "honest customer {cust}'s wallet refused its sync response: {name}"
                    ));
                }
                self.refusal(name);
            }
        }
        self.account_vouchers(dev, "a sync");
        Ok(())
    }
}
