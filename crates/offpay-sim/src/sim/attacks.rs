//! The attacks: scheduling them per wallet-day, and each kind injected through
//! the real code paths (rollback, clone, tamper, unknown CA, revoked pay,
//! lost device, crash; torn and replay are per payment, in `workload.rs`).

use super::*;

impl<'a, P: FnMut(Progress)> Sim<'a, P> {
    // ---- attacks -----------------------------------------------------------------------------------

    pub(super) fn schedule_attacks(&mut self, day: u64) {
        for kind in AttackKind::ALL {
            if kind.rate_unit() != "wallet-day" {
                continue;
            }
            let rate = self.cfg.rate(kind);
            if rate <= 0.0 {
                continue;
            }
            for cust in self.customers.indices() {
                if self.arng.chance(rate) {
                    let t = day * DAY + self.arng.below(DAY);
                    self.push(t, Ev::Attack { kind, cust });
                }
            }
        }
    }

    pub(super) fn mark_attacker(
        &mut self,
        cust: CustomerIdx,
        kind: AttackKind,
        now: UnixSeconds,
        balance: u64,
    ) {
        self.customers[cust].attacker = Some(kind);
        self.customers[cust].attacker_rec = Some(self.r.attackers.len());
        self.r.attackers.push(AttackerRecord {
            customer: cust.as_u64(),
            kind: kind.name().into(),
            time_s: Self::now_s(now),
            balance_at_attack_minor: balance,
            double_spends_injected: 0,
            double_spends_detected: 0,
            first_detection_delay_s: None,
            issuer_state: String::new(),
            clawed_back_minor: 0,
            guaranteed_minor: 0,
            loss_minor: 0,
        });
    }

    /// The attacker fills its wallet to the holding limit (with its own money),
    /// then empties its online account so that nothing can be clawed back.
    pub(super) fn max_out(&mut self, dev: DeviceIdx, now: UnixSeconds) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        let wid = self.wallet(dev).wallet_id();
        let balance = self.devices[dev].balance;
        let sub = self.iss(cust).wallet_balance(&wid)?.max(0) as u64;
        let want = self.holding.saturating_sub(balance.max(sub));
        let id = self.customers[cust].id.clone();
        if want >= 100 {
            let online = self.iss(cust).customer_balance(&id)?.max(0) as u64;
            if online < want {
                self.deposit(cust, want - online, now)?;
            }
            self.load(dev, want, now)?;
        }
        let online = self.iss(cust).customer_balance(&id)?.max(0) as u64;
        if online > 0 {
            let key = format!("wd-{cust}-{}", self.next_op());
            match self
                .iss(cust)
                .withdraw(&id, Amount::new(online, eur()), &key, now)
            {
                Ok(_) => {
                    self.customers[cust].online_expected -= online as i64;
                    self.r.withdrawn_minor += online;
                    let k = self.customers[cust].issuer;
                    self.nodes[k].withdrawn += online;
                }
                Err(e) => self.issuer_refusal("withdraw", &e),
            }
        }
        Ok(())
    }

    pub(super) fn on_attack(
        &mut self,
        kind: AttackKind,
        cust: CustomerIdx,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let dev = self.customers[cust].device;
        if !self.devices[dev].alive() {
            return Ok(());
        }
        // One identity-changing attack per customer; an attacker's wallet is not
        // also lost or crashed (its accounting is the attacker's). A foreign
        // payer is no customer: `cust` only spreads those attacks over time.
        if kind != AttackKind::UnknownCa && self.customers[cust].attacker.is_some() {
            return Ok(());
        }
        let t = Self::now_s(now);
        match kind {
            AttackKind::Clone => {
                self.injected(kind);
                self.mark_attacker(cust, kind, now, 0);
                self.max_out(dev, now)?;
                let b = self.devices[dev].balance;
                self.set_attack_balance(cust, b);
                let copy = self.wallet(dev).vault().clone();
                let entropy = self.next_device_entropy();
                let w = Wallet::open_with_entropy(copy, entropy.clone())
                    .map_err(|e| SimError::Wallet(format!("clone: {}", error_name(&e))))?;
                if w.lock().is_some() {
                    self.violation(format!("clone: customer {cust}'s copy opened locked"));
                }
                self.copied += w.balance().map_or(0, |a| a.minor);
                let clone_dev = self.new_device(w, cust, entropy);
                // The copy's log holds what the original's held.
                self.devices[clone_dev].held = self.devices[dev].held.clone();
                self.outcome(kind, "device_cloned");
                let (k1, k2) = (self.arng.range(1, 4) as u32, self.arng.range(1, 4) as u32);
                let (d1, d2) = (self.arng.range(60, 1800), self.arng.range(60, 1800));
                self.push(
                    t + d1,
                    Ev::Spree {
                        dev,
                        left: k1,
                        gap: HOUR,
                        kind,
                    },
                );
                self.push(
                    t + d2,
                    Ev::Spree {
                        dev: clone_dev,
                        left: k2,
                        gap: HOUR,
                        kind,
                    },
                );
            }
            AttackKind::Rollback => {
                self.injected(kind);
                self.mark_attacker(cust, kind, now, 0);
                self.max_out(dev, now)?;
                let b = self.devices[dev].balance;
                self.set_attack_balance(cust, b);
                // A copy of the whole vault: state *and* counter, as an attacker
                // who restores both files of a software vault.
                let copy = self.wallet(dev).vault().clone();
                let held = self.devices[dev].held.clone();
                let saved = self.saved.push(Some((copy, held)));
                let k = self.arng.range(1, 4) as u32;
                let (d1, d2) = (
                    self.arng.range(60, 600),
                    self.arng.range(3 * HOUR, 8 * HOUR),
                );
                self.push(
                    t + d1,
                    Ev::Spree {
                        dev,
                        left: k,
                        gap: 1800,
                        kind,
                    },
                );
                self.push(t + d2, Ev::Restore { cust, saved });
            }
            AttackKind::RevokedPay => {
                let wid = self.wallet(dev).wallet_id();
                self.injected(kind);
                let b = self.devices[dev].balance;
                self.mark_attacker(cust, kind, now, b);
                match self.iss(cust).revoke(
                    &wid,
                    RevocationReason::PrivilegeWithdrawn,
                    "operator: revoked (simulation)",
                    now,
                ) {
                    Ok(()) => self.outcome(kind, "revoked_by_operator"),
                    Err(e) => self.issuer_refusal("revoke", &e),
                }
                let k = self.arng.range(2, 5) as u32;
                let d = self.arng.range(600, 3 * HOUR);
                self.push(
                    t + d,
                    Ev::Spree {
                        dev,
                        left: k,
                        gap: 4 * HOUR,
                        kind,
                    },
                );
            }
            AttackKind::Tamper => {
                self.injected(kind);
                let b = self.devices[dev].balance;
                self.mark_attacker(cust, kind, now, b);
                self.tamper(dev, now)?;
            }
            AttackKind::UnknownCa => {
                self.injected(kind);
                self.unknown_ca(cust, now)?;
            }
            AttackKind::LostDevice => {
                self.injected(kind);
                let lost = self.devices[dev].wallet.as_ref().map(|w| w.wallet_id());
                let b = self.kill(dev);
                self.r.lost_device_minor += b;
                // The customer reports it: revoked at once, paid out at its close.
                if let Some(id) = lost {
                    self.retire(cust, &id, Retirement::Lost, now);
                    self.maybe_dispute_wallet(cust, id, now);
                }
                self.outcome(kind, "device_lost");
                self.customers[cust].reprovisioned += 1;
                self.provision(cust, now)?;
                self.outcome(kind, "customer_reprovisioned");
            }
            AttackKind::Crash => {
                if self.devices[dev].crash_armed {
                    return Ok(());
                }
                self.injected(kind);
                let n = self.arng.below(4);
                let point = match self.arng.below(3) {
                    0 => CrashPoint::BeforeWrite,
                    1 => CrashPoint::AfterStateWrite,
                    _ => CrashPoint::AfterCounter,
                };
                let Some(w) = self.devices[dev].wallet.take() else {
                    return Ok(());
                };
                let mut vault = w.into_vault();
                vault.fail_commit_at_with(n, point);
                let w = Wallet::open_with_entropy(vault, self.devices[dev].entropy.clone())
                    .map_err(|e| SimError::Wallet(format!("crash arm: {}", error_name(&e))))?;
                self.devices[dev].wallet = Some(w);
                self.devices[dev].crash_armed = true;
                self.outcome(kind, "armed");
            }
            AttackKind::Replay | AttackKind::Torn => {}
        }
        Ok(())
    }

    pub(super) fn set_attack_balance(&mut self, cust: CustomerIdx, b: u64) {
        if let Some(a) = self.customers[cust].attacker_rec {
            self.r.attackers[a].balance_at_attack_minor = b;
        }
    }

    pub(super) fn on_spree(
        &mut self,
        dev: DeviceIdx,
        left: u32,
        gap: u64,
        kind: AttackKind,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        if !self.devices[dev].alive() || left == 0 {
            return Ok(());
        }
        let cust = self.devices[dev].cust;
        let balance = self.devices[dev].balance;
        if balance >= 100 {
            let share = 0.3 + 0.7 * self.arng.unit();
            let minor = ((balance as f64 * share) as u64)
                .max(100)
                .min(balance)
                .min(self.policy_max_payment);
            if let Some(payee) = self.pick(true, Some(cust)) {
                let payee_dev = self.customers[payee].device;
                self.outcome(kind, "spree_payment");
                self.payment(dev, payee_dev, minor, now, Some(kind))?;
            }
        }
        if left > 1 {
            let next = Self::now_s(now) + self.arng.range(60, gap.max(61));
            self.push(
                next,
                Ev::Spree {
                    dev,
                    left: left - 1,
                    gap,
                    kind,
                },
            );
        }
        Ok(())
    }

    pub(super) fn on_restore(
        &mut self,
        cust: CustomerIdx,
        saved: SavedIdx,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        let Some((vault, held)) = self.saved[saved].take() else {
            return Ok(());
        };
        let old = self.customers[cust].device;
        if !self.devices[old].alive() {
            return Ok(());
        }
        // Three times in ten the attacker restores the old state file only
        // (`MemoryVault::restore`), not the monotonic counter: the vault sees the
        // rollback and the TA opens locked. Otherwise it continues from the full
        // copy (state and counter), which no vault can see.
        let state_only = self.arng.chance(0.3);
        let mut older = true;
        let vault = if state_only {
            let mut current = self.wallet(old).vault().clone();
            let snap = vault.snapshot();
            // Nothing was committed since the copy: restoring it changes nothing.
            older = snap.version() < current.counter();
            current.restore(&snap);
            current
        } else {
            vault
        };
        // The attacker throws the current state away and continues from the copy.
        self.kill(old);
        let entropy = self.next_device_entropy();
        let w = Wallet::open_with_entropy(vault, entropy.clone())
            .map_err(|e| SimError::Wallet(format!("restore: {}", error_name(&e))))?;
        match (state_only, w.lock()) {
            (true, Some(LockReason::RolledBack)) => {
                self.outcome(AttackKind::Rollback, "state_only_restore_opened_locked")
            }
            (true, None) if !older => self.outcome(
                AttackKind::Rollback,
                "state_only_restore_of_the_current_state",
            ),
            (true, _) => self.violation(format!(
                "rollback: customer {cust}'s restored old state file opened unlocked"
            )),
            (false, None) => self.outcome(AttackKind::Rollback, "restored_and_respending"),
            (false, Some(_)) => self.outcome(AttackKind::Rollback, "full_copy_opened_locked"),
        }
        self.copied += w.balance().map_or(0, |a| a.minor);
        let dev = self.new_device(w, cust, entropy);
        self.customers[cust].device = dev;
        // The restored log holds again what it held when it was copied (those
        // entries reported since are marked already; marking again is harmless).
        self.devices[dev].held = held;
        let k = self.arng.range(1, 4) as u32;
        let t = Self::now_s(now) + self.arng.range(60, 600);
        self.push(
            t,
            Ev::Spree {
                dev,
                left: k,
                gap: 1800,
                kind: AttackKind::Rollback,
            },
        );
        Ok(())
    }

    /// Move the wallet's state into a real sealed file vault, flip one byte of
    /// the sealed file, and open it again: the AEAD must refuse it.
    pub(super) fn tamper(&mut self, dev: DeviceIdx, now: UnixSeconds) -> Result<(), SimError> {
        let cust = self.devices[dev].cust;
        if self.tmp.is_none() {
            self.tmp = Some(tempfile::tempdir().map_err(|e| SimError::Io(e.to_string()))?);
        }
        let dir = self
            .tmp
            .as_ref()
            .map(|t| t.path().join(format!("vault-{cust}-{}", self.op)))
            .unwrap_or_default();
        self.op += 1;
        std::fs::create_dir_all(&dir).map_err(|e| SimError::Io(e.to_string()))?;
        let secret: [u8; 32] = self.arng.bytes();
        let mut copy = self.wallet(dev).vault().clone();
        let state = copy
            .load()
            .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?
            .state
            .unwrap_or_default();
        let mut sealed = SealedFileVault::create_with_entropy(
            &dir,
            PIN,
            &secret,
            KdfParams::TEST,
            Box::new(RealFs),
            self.device_entropy(dev),
        )
        .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?;
        sealed
            .commit(&state)
            .map_err(|e| SimError::Wallet(format!("tamper: {}", error_name(&e))))?;
        // The sealed copy opens as the same wallet before it is touched.
        let id_before = self.wallet(dev).wallet_id();
        match Wallet::open(sealed) {
            Ok(w) if w.wallet_id() == id_before => {}
            _ => self.violation(format!(
                "tamper: customer {cust}'s intact sealed state does not open"
            )),
        }
        let file = dir.join("state.sealed");
        let mut bytes = std::fs::read(&file).map_err(|e| SimError::Io(e.to_string()))?;
        let at = 81
            + self
                .arng
                .below((bytes.len() as u64).saturating_sub(81).max(1)) as usize;
        let at = at.min(bytes.len() - 1);
        bytes[at] ^= 1 << self.arng.below(8);
        std::fs::write(&file, &bytes).map_err(|e| SimError::Io(e.to_string()))?;
        let reopened = SealedFileVault::open(&dir, PIN, &secret)
            .map_err(WalletError::Vault)
            .and_then(Wallet::open);
        match reopened {
            Err(WalletError::Vault(VaultError::Tampered)) => {
                self.outcome(AttackKind::Tamper, "refused:Tampered")
            }
            Err(e) => self.outcome(AttackKind::Tamper, &format!("refused:{}", error_name(&e))),
            Ok(_) => self.violation(format!(
                "tamper: customer {cust}'s tampered state file was accepted"
            )),
        }
        let _ = std::fs::remove_dir_all(&dir);
        // The wallet is dead: its holder loses the offline balance from the
        // device; the issuer pays its sub-account out when it closes.
        let broken = self.devices[dev].wallet.as_ref().map(|w| w.wallet_id());
        let b = self.kill(dev);
        self.r.forfeited_minor += b;
        // The customer hands it in as broken: revoked, paid out at its close.
        if let Some(id) = broken {
            self.retire(cust, &id, Retirement::Broken, now);
        }
        self.customers[cust].reprovisioned += 1;
        self.provision(cust, now)?;
        self.outcome(AttackKind::Tamper, "customer_reprovisioned");
        Ok(())
    }

    /// A payer from a foreign scheme (own root, own issuer CA) pays an honest merchant.
    pub(super) fn unknown_ca(
        &mut self,
        _cust: CustomerIdx,
        now: UnixSeconds,
    ) -> Result<(), SimError> {
        if self.foreign.is_none() {
            let rk = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
                .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
            let ik = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
                .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
            // Same names as the real scheme: only the keys tell them apart.
            let root = pki::issue_root(&rk, "offpay scheme root", 1, T0, T0.plus(3650 * DAY))
                .map_err(|e| SimError::Wallet(format!("foreign root: {e:?}")))?;
            let issuer = pki::issue_issuer_ca(
                &rk,
                &root,
                &ik.public_key(),
                "offpay issuer",
                2,
                T0,
                T0.plus(1825 * DAY),
            )
            .map_err(|e| SimError::Wallet(format!("foreign issuer: {e:?}")))?;
            self.foreign = Some(Foreign {
                issuer_key: ik,
                issuer,
                serial: 1u64 << 62,
            });
        }
        let Some(payee) = self.pick(true, None) else {
            self.outcome(AttackKind::UnknownCa, "no_payee");
            return Ok(());
        };
        let payee_dev = self.customers[payee].device;
        if !self.devices[payee_dev].alive() {
            self.outcome(AttackKind::UnknownCa, "no_payee");
            return Ok(());
        }
        // Half the time the forger claims an existing wallet's id.
        let victim = CustomerIdx::new(self.arng.below(self.customers.len() as u64) as usize);
        let wid = if self.arng.chance(0.5) {
            let d = self.customers[victim].device;
            match &self.devices[d].wallet {
                Some(w) => w.wallet_id(),
                None => WalletId(self.arng.bytes()),
            }
        } else {
            WalletId(self.arng.bytes())
        };
        let wk = SigningKey::from_seed(Suite::Ed25519, &self.arng.bytes())
            .map_err(|e| SimError::Wallet(format!("foreign key: {e:?}")))?;
        let f = self.foreign.as_mut().unwrap_or_else(|| unreachable!());
        f.serial += 1;
        let cert = pki::issue_wallet(
            &f.issuer_key,
            &f.issuer,
            &wk.public_key(),
            wid,
            PolicyRef { id: 1, epoch: 1 },
            f.serial,
            now,
            now.plus(30 * DAY),
        )
        .map_err(|e| SimError::Wallet(format!("foreign wallet: {e:?}")))?;
        let minor = self.amount_draw();
        let (req, _) = self.op(payee_dev, |w| {
            w.request(Amount::new(minor, eur()), REQUEST_SECONDS, now)
        })?;
        let Ok(req) = req else {
            // The merchant cannot ask for a payment now (e.g. it is locked).
            self.outcome(AttackKind::UnknownCa, "no_request");
            return Ok(());
        };
        let r = Signed::<PaymentRequest>::decode(&req)
            .map_err(|e| SimError::Wallet(format!("request: {e}")))?;
        // The attacker names the payee's real issuer (from its request).
        let payee_issuer = match &r.body().payee_cert {
            CertField::Inline(der) => pki::Certificate::from_der(der)
                .map_err(|e| SimError::Wallet(format!("payee certificate: {e}")))?
                .issuer_id(),
            CertField::Reference(_) => {
                return Err(SimError::Wallet("request without its certificate".into()));
            }
        };
        let payment = Signed::sign(
            Payment {
                payer: wid,
                seq: 1,
                prev: Hash32::ZERO,
                payee: r.body().payee,
                amount: r.body().amount,
                nonce: r.body().nonce,
                time: now,
                payer_cert: CertField::Inline(cert.der().to_vec()),
                payee_issuer,
            },
            &wk,
        )
        .into_bytes();
        let (res, _) = self.op(payee_dev, |w| w.receive(&payment, now))?;
        self.settle_balance(payee_dev, 0, "a payment from a foreign CA");
        match res {
            Ok(_) => self.violation(format!(
                "unknown-ca: customer {payee} accepted a payment certified by a foreign CA"
            )),
            Err(e) => {
                let name = error_name(&e);
                self.outcome(AttackKind::UnknownCa, &format!("refused:{name}"));
                self.refusal(name);
            }
        }
        Ok(())
    }
}
