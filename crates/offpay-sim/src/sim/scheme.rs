//! Runs with several issuers: the scheme operator (a real `offpay_scheme::Scheme`
//! on its own store), the member issuers' admission (CSR, certificate, the
//! directory), the claims moved between the issuers and the scheme with the
//! domain calls (no HTTP: what the issuer server's scheme link does, one
//! round every simulated hour), the settlement cycles, and the checks across
//! issuers (each issuer's statement against its own ledger, receivable and
//! payable of every pair at quiescence, positions summing to zero).
//!
//! With one issuer none of this runs: the world is today's standalone issuer.

use offpay_issuer::{Account, ClaimAck, ClaimDirection, ClaimFilter};
use offpay_protocol::IssuerId;
use offpay_protocol::messages::{SettlementStatement, statement_digest};
use offpay_scheme::{ClaimQuery, ClaimResult, Scheme, SchemeConfig};

use super::*;
use crate::report::{CycleReport, DayIssuer, IssuerReport, SchemeReport};

/// The scheme operator's store.
type SchemeStoreOf = offpay_store::scheme::SchemeDb;

/// The scheme's master key (seals its root key), distinct from the issuers'.
const SCHEME_MASTER: [u8; 32] = [0x5c; 32];
/// Claims moved in one call (a bounded batch, as the issuer's link sends).
const CLAIM_BATCH: usize = 64;
/// With `--faults`: chance that the scheme's answer to a submission, or an
/// issuer's acknowledgement of its inbox, is lost on the way (the claims go
/// again at the next round and must come back `AlreadyKnown`).
const LINK_LOSS: f64 = 0.05;
/// Rounds at the end after which claims still moving are a violation.
const QUIET_ROUNDS_MAX: u32 = 64;

/// The scheme of a run with several issuers.
pub(super) struct SchemeWorld {
    scheme: Scheme<SchemeStoreOf>,
    /// Its database file, if it has one (for the store size).
    pub(super) file: Option<PathBuf>,
    /// Each node's issuer id (by node index).
    ids: Vec<IssuerId>,
    /// The CRL each node last published to the scheme.
    published_crl: Vec<Vec<u8>>,
    /// Directory version the scheme published last.
    directory_version: u64,
    report: SchemeReport,
}

fn hex(id: &IssuerId) -> String {
    hex_bytes(&id.0)
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// The issuer's answer to a claim, as the scheme takes it (an issuer's
/// refusal code the scheme does not know becomes `refused_by_issuer`).
fn to_result(a: &ClaimAck) -> ClaimResult {
    match a {
        ClaimAck::Accepted => ClaimResult::Accepted,
        ClaimAck::AlreadyKnown => ClaimResult::AlreadyKnown,
        ClaimAck::Refused { code } => {
            ClaimResult::from_code(code).unwrap_or(ClaimResult::Refused {
                code: "refused_by_issuer",
            })
        }
    }
}

/// The scheme's answer to a claim, as the issuer takes it.
fn to_ack(r: &ClaimResult) -> ClaimAck {
    match r {
        ClaimResult::Accepted => ClaimAck::Accepted,
        ClaimResult::AlreadyKnown => ClaimAck::AlreadyKnown,
        ClaimResult::Refused { code } => ClaimAck::Refused {
            code: (*code).to_string(),
        },
    }
}

fn result_name(r: &ClaimResult) -> String {
    match r {
        ClaimResult::Refused { code } => format!("refused:{code}"),
        r => r.code().to_string(),
    }
}

impl SchemeWorld {
    /// The scheme and its member issuers (pushed onto `nodes`): each issuer
    /// makes its CA key and CSR, the scheme admits it (certifies the CA under
    /// its root), the issuer starts as a member, publishes its CRL, and every
    /// issuer installs the directory that lists them all.
    pub(super) fn create(
        config: &SimConfig,
        ram: Option<&tempfile::TempDir>,
        ic: &IssuerConfig,
        plan: &SharedPlan,
        nodes: &mut Table<IssuerIdx, Node>,
    ) -> Result<SchemeWorld, SimError> {
        let seed = config.seed;
        let (store, file) = open_scheme_store(&config.store, ram, seed)?;
        let sc = SchemeConfig {
            suite: Suite::Ed25519,
            root_cn: "offpay scheme root".into(),
            currency: eur(),
        };
        let scheme = Scheme::init(
            store,
            &SCHEME_MASTER,
            &sc,
            T0,
            SeededEntropy::shared(seed, "scheme"),
        )
        .map_err(|e| SimError::Scheme(e.to_string()))?;
        let mut ids = Vec::with_capacity(config.issuers);
        let mut published_crl = Vec::with_capacity(config.issuers);
        for k in 0..config.issuers {
            let code = format!("bank-{k}");
            let (base, file) = open_store(
                &config.store,
                ram,
                &format!("issuer-{code}"),
                seed,
                &format!("store {code}"),
            )?;
            let entropy = SeededEntropy::shared(seed, &format!("issuer {code}"));
            let store = FaultStore::new(base.clone(), plan.clone());
            let csr = Issuer::member_csr(&store, &MASTER, ic, &code, entropy.clone())?;
            let adm = scheme
                .admit(&code, &csr, T0)
                .map_err(|e| SimError::Scheme(format!("admit {code}: {e}")))?;
            let issuer = Issuer::init_member(
                store,
                &MASTER,
                ic,
                &adm.root_cert,
                &adm.ca_cert,
                T0,
                entropy.clone(),
            )?;
            super::apply_rules(&issuer, config)?;
            let crl = issuer.crl()?;
            scheme
                .publish_crl(&adm.issuer, &crl, T0)
                .map_err(|e| SimError::Scheme(format!("crl of {code}: {e}")))?;
            ids.push(issuer.issuer_id());
            published_crl.push(crl);
            nodes.push(Node {
                issuer,
                base,
                entropy,
                code,
                file,
                deposited: 0,
                withdrawn: 0,
            });
        }
        let dir = scheme
            .directory()
            .map_err(|e| SimError::Scheme(format!("directory: {e}")))?;
        for k in nodes.indices() {
            nodes[k].issuer.install_directory(&dir, T0)?;
        }
        let directory_version = scheme
            .directory_version()
            .map_err(|e| SimError::Scheme(format!("directory: {e}")))?;
        let report = SchemeReport {
            issuers: nodes
                .iter()
                .zip(&ids)
                .map(|(n, id)| IssuerReport {
                    code: n.code.clone(),
                    id: hex(id),
                    ..IssuerReport::default()
                })
                .collect(),
            directory_version,
            ..SchemeReport::default()
        };
        Ok(SchemeWorld {
            scheme,
            file,
            ids,
            published_crl,
            directory_version,
            report,
        })
    }

    /// What the scheme's database holds, read through the scheme (its
    /// issuers, its directory, every claim, every statement): the same seed
    /// gives the same text.
    pub(super) fn dump(&self) -> Result<String, SimError> {
        let e = |e: offpay_scheme::SchemeError| SimError::Scheme(format!("dump: {e}"));
        let mut out = String::new();
        for i in self.scheme.issuers().map_err(e)? {
            out.push_str(&format!("issuer {i:?}\n"));
        }
        let dir = self.scheme.directory().map_err(e)?;
        out.push_str(&format!("directory {}\n", hex_bytes(&dir)));
        let all = ClaimQuery {
            limit: usize::MAX,
            ..ClaimQuery::default()
        };
        for c in self.scheme.claims(&all).map_err(e)? {
            out.push_str(&format!("claim {c:?}\n"));
        }
        for id in &self.ids {
            let mut after = 0;
            loop {
                let page = self.scheme.statements(id, after).map_err(e)?;
                let Some(&(last, _)) = page.last() else {
                    break;
                };
                for (cycle, st) in page {
                    out.push_str(&format!(
                        "statement {} {cycle} {}\n",
                        hex(id),
                        hex_bytes(&st)
                    ));
                }
                after = last;
            }
        }
        Ok(out)
    }

    fn node_of(&self, id: &IssuerId) -> Option<IssuerIdx> {
        self.ids.iter().position(|x| x == id).map(IssuerIdx::new)
    }
}

/// The scheme's store where the configuration says (`scheme.sqlite`).
fn open_scheme_store(
    choice: &StoreChoice,
    ram: Option<&tempfile::TempDir>,
    seed: u64,
) -> Result<(SchemeStoreOf, Option<PathBuf>), SimError> {
    let err = |e: offpay_scheme::SchemeStoreError| SimError::Scheme(format!("scheme store: {e}"));
    let (mut store, file) = match choice {
        StoreChoice::Memory => match ram {
            Some(dir) => {
                let file = dir.path().join("scheme.sqlite");
                (SchemeStoreOf::open_sqlite(&file).map_err(err)?, Some(file))
            }
            None => (SchemeStoreOf::open_sqlite_memory().map_err(err)?, None),
        },
        StoreChoice::SqliteMemory => (SchemeStoreOf::open_sqlite_memory().map_err(err)?, None),
        StoreChoice::File(p) => {
            let file = store_file(p, "scheme");
            (SchemeStoreOf::open_sqlite(&file).map_err(err)?, Some(file))
        }
    };
    store.set_entropy(SeededEntropy::shared(seed, "scheme store"));
    Ok((store, file))
}

impl<P: FnMut(Progress)> Sim<'_, P> {
    fn sw(&mut self) -> Option<&mut SchemeWorld> {
        self.scheme.as_mut()
    }

    /// One round of the scheme link at every issuer, in issuer order: push
    /// its CRL when it changed, install a newer directory, submit its
    /// outbox, apply its inbox and acknowledge it. Then, when a cycle is due,
    /// the scheme closes it and every issuer posts its statements. Returns
    /// the claims moved (submitted or delivered).
    pub(super) fn scheme_round(
        &mut self,
        now: UnixSeconds,
        close_cycle: bool,
    ) -> Result<u64, SimError> {
        if self.scheme.is_none() {
            return Ok(0);
        }
        let mut moved = 0;
        for k in self.nodes.indices() {
            self.push_crl(k, now)?;
        }
        for k in self.nodes.indices() {
            self.pull_directory(k, now)?;
            moved += self.submit_outbox(k, now)?;
            moved += self.apply_inbox(k, now)?;
        }
        if close_cycle {
            self.close_cycle(now)?;
        }
        for k in self.nodes.indices() {
            self.post_statements(k, now)?;
        }
        if let Some(sw) = self.sw() {
            sw.report.rounds += 1;
        }
        Ok(moved)
    }

    fn scheme_err(e: impl std::fmt::Display) -> SimError {
        SimError::Scheme(e.to_string())
    }

    fn push_crl(&mut self, k: IssuerIdx, now: UnixSeconds) -> Result<(), SimError> {
        let crl = match self.faulted(k, |i| i.crl())? {
            Ok(c) => c,
            Err(e) => {
                self.issuer_refusal("crl", &e);
                return Ok(());
            }
        };
        let Some(sw) = self.scheme.as_mut() else {
            return Ok(());
        };
        if sw.published_crl[k.get()] == crl {
            return Ok(());
        }
        let id = sw.ids[k.get()];
        let v = sw
            .scheme
            .publish_crl(&id, &crl, now)
            .map_err(Self::scheme_err)?;
        sw.published_crl[k.get()] = crl;
        sw.directory_version = v;
        sw.report.directory_version = v;
        Ok(())
    }

    fn pull_directory(&mut self, k: IssuerIdx, now: UnixSeconds) -> Result<(), SimError> {
        let Some(sw) = self.scheme.as_ref() else {
            return Ok(());
        };
        if self.nodes[k].issuer.directory_version() >= sw.directory_version {
            return Ok(());
        }
        let dir = sw.scheme.directory().map_err(Self::scheme_err)?;
        match self.faulted(k, |i| i.install_directory(&dir, now))? {
            Ok(_) => {}
            Err(e) => {
                let who = self.issuer_label(k);
                self.violation(format!("{who}refused the scheme's directory: {}", e.code()));
            }
        }
        Ok(())
    }

    fn submit_outbox(&mut self, k: IssuerIdx, now: UnixSeconds) -> Result<u64, SimError> {
        let mut moved = 0;
        loop {
            let batch = self.faulted(k, |i| i.claims_to_submit(CLAIM_BATCH))??;
            if batch.is_empty() {
                return Ok(moved);
            }
            let Some(sw) = self.scheme.as_mut() else {
                return Ok(moved);
            };
            let id = sw.ids[k.get()];
            let entries: Vec<Vec<u8>> = batch.iter().map(|(_, b)| b.clone()).collect();
            let results = sw
                .scheme
                .submit_claims(&id, &entries, now)
                .map_err(Self::scheme_err)?;
            let acks: Vec<(Hash32, ClaimAck)> =
                results.iter().map(|(h, r)| (*h, to_ack(r))).collect();
            sw.report.issuers[k.get()].claims_submitted += results.len() as u64;
            for (_, r) in &results {
                *sw.report.submit_results.entry(result_name(r)).or_default() += 1;
            }
            let refused: Vec<String> = results
                .iter()
                .filter_map(|(_, r)| match r {
                    ClaimResult::Refused { code } => Some((*code).to_string()),
                    _ => None,
                })
                .collect();
            // Every claim an issuer makes from its own records is cross-issuer,
            // signed and party to it: a refusal is a bug on one side.
            for code in refused {
                let who = self.issuer_label(k);
                self.violation(format!("the scheme refused a claim of {who}: {code}"));
            }
            let n = batch.len() as u64;
            if lock(&self.plan).chance(LINK_LOSS) {
                // The scheme's answer is lost: the outbox still holds these.
                if let Some(sw) = self.sw() {
                    sw.report.link_messages_lost += 1;
                }
                return Ok(moved + n);
            }
            self.faulted(k, |i| i.claims_submitted(&acks, now))??;
            moved += n;
            if (n as usize) < CLAIM_BATCH {
                return Ok(moved);
            }
        }
    }

    fn apply_inbox(&mut self, k: IssuerIdx, now: UnixSeconds) -> Result<u64, SimError> {
        let mut moved = 0;
        loop {
            let Some(sw) = self.scheme.as_ref() else {
                return Ok(moved);
            };
            let id = sw.ids[k.get()];
            let batch = sw
                .scheme
                .inbox(&id, CLAIM_BATCH)
                .map_err(Self::scheme_err)?;
            if batch.is_empty() {
                return Ok(moved);
            }
            let mut batch = batch;
            let mut lost = Vec::new();
            if self.cfg.sabotage == Some(Sabotage::AckWithoutApplying) && !self.sabotaged {
                // The broken link on purpose: the first claim delivered is
                // acknowledged to the scheme and never applied.
                self.sabotaged = true;
                let (h, _) = batch.remove(0);
                lost.push((h, ClaimAck::Accepted));
            }
            let mut acks = if batch.is_empty() {
                Vec::new()
            } else {
                self.faulted(k, |i| i.apply_scheme_claims(&batch, now))??
            };
            let n_delivered = (batch.len() + lost.len()) as u64;
            acks.extend(lost);
            let results: Vec<(Hash32, ClaimResult)> =
                acks.iter().map(|(h, a)| (*h, to_result(a))).collect();
            let mut refused = Vec::new();
            for (_, a) in &acks {
                if let ClaimAck::Refused { code } = a {
                    refused.push(code.clone());
                }
            }
            if lock(&self.plan).chance(LINK_LOSS) {
                // The acknowledgement is lost: the scheme delivers them again.
                if let Some(sw) = self.sw() {
                    sw.report.link_messages_lost += 1;
                }
                return Ok(moved + n_delivered);
            }
            let Some(sw) = self.scheme.as_mut() else {
                return Ok(moved);
            };
            sw.scheme
                .ack(&id, &results, now)
                .map_err(Self::scheme_err)?;
            let rep = &mut sw.report.issuers[k.get()];
            rep.claims_received += n_delivered;
            for code in &refused {
                *rep.claims_refused.entry(code.clone()).or_default() += 1;
            }
            for code in refused {
                let who = self.issuer_label(k);
                self.violation(format!("{who}refused a claim from the scheme: {code}"));
            }
            moved += n_delivered;
            if (n_delivered as usize) < CLAIM_BATCH {
                return Ok(moved);
            }
        }
    }

    fn close_cycle(&mut self, now: UnixSeconds) -> Result<(), SimError> {
        let t = Self::now_s(now);
        let Some(sw) = self.scheme.as_mut() else {
            return Ok(());
        };
        let summary = sw.scheme.close_cycle(now).map_err(Self::scheme_err)?;
        if summary.claims == 0 {
            return Ok(());
        }
        let mut positions = BTreeMap::new();
        let mut sum = 0i128;
        let mut unknown = false;
        for (id, net) in &summary.positions {
            sum += net;
            match sw.node_of(id) {
                Some(k) => {
                    sw.report.issuers[k.get()].settled_minor += *net as i64;
                    positions.insert(self.nodes[k].code.clone(), *net as i64);
                }
                None => unknown = true,
            }
        }
        let cycle = summary.cycle;
        sw.report.cycles.push(CycleReport {
            cycle,
            time_s: t,
            claims: summary.claims,
            positions,
        });
        if sum != 0 {
            self.violation(format!(
                "cycle {cycle}: the positions sum to {sum}, not zero"
            ));
        }
        if unknown {
            self.violation(format!("cycle {cycle}: a position of an unknown issuer"));
        }
        Ok(())
    }

    /// Post every statement the scheme has for issuer `k` after its last
    /// one, and check each against the issuer's own claims of that cycle.
    fn post_statements(&mut self, k: IssuerIdx, now: UnixSeconds) -> Result<(), SimError> {
        let after = self.faulted(k, |i| i.last_statement_cycle())??;
        let Some(sw) = self.scheme.as_ref() else {
            return Ok(());
        };
        let id = sw.ids[k.get()];
        let statements = sw.scheme.statements(&id, after).map_err(Self::scheme_err)?;
        for (cycle, bytes) in statements {
            let Some(sw) = self.scheme.as_ref() else {
                return Ok(());
            };
            let ids = sw
                .scheme
                .cycle_claims(&id, cycle)
                .map_err(Self::scheme_err)?;
            match self.faulted(k, |i| i.apply_statement(&bytes, &ids, now))? {
                Ok(_) => {
                    if let Some(sw) = self.sw() {
                        sw.report.issuers[k.get()].statements_posted += 1;
                    }
                }
                Err(e) => {
                    let who = self.issuer_label(k);
                    self.violation(format!(
                        "{who}refused the statement of cycle {cycle}: {}",
                        e.code()
                    ));
                    continue;
                }
            }
            self.check_statement(k, cycle, &bytes)?;
        }
        Ok(())
    }

    /// The statement of `cycle` for issuer `k` equals its own ledger: per
    /// counterparty, the claims the issuer put in that cycle, their sums in
    /// each direction and the digest of their ids.
    fn check_statement(&mut self, k: IssuerIdx, cycle: u64, bytes: &[u8]) -> Result<(), SimError> {
        let who = self.issuer_label(k);
        let st = match Signed::<SettlementStatement>::decode(bytes) {
            Ok(s) => s,
            Err(e) => {
                self.violation(format!(
                    "{who}statement of cycle {cycle} does not decode: {e}"
                ));
                return Ok(());
            }
        };
        let claims: Vec<_> = self.nodes[k]
            .issuer
            .claims(&ClaimFilter::default())?
            .into_iter()
            .filter(|c| c.cycle == Some(cycle))
            .collect();
        // counterparty -> (receivable, payable, ids)
        let mut own: BTreeMap<IssuerId, (u64, u64, Vec<Hash32>)> = BTreeMap::new();
        for c in &claims {
            let e = own.entry(c.counterparty).or_default();
            match c.direction {
                ClaimDirection::Receivable => e.0 += c.amount.max(0) as u64,
                ClaimDirection::Payable => e.1 += c.amount.max(0) as u64,
            }
            e.2.push(c.id);
        }
        let body = st.body();
        if body.issuer != self.scheme.as_ref().map_or(body.issuer, |s| s.ids[k.get()]) {
            self.violation(format!(
                "{who}got the statement of another issuer (cycle {cycle})"
            ));
        }
        let mut lines = 0;
        for line in &body.lines {
            lines += 1;
            let Some((r, p, ids)) = own.get_mut(&line.counterparty) else {
                self.violation(format!(
                    "{who}statement of cycle {cycle}: a line with {} that its ledger has no claim with",
                    hex(&line.counterparty)
                ));
                continue;
            };
            let digest = statement_digest(ids);
            if (*r, *p, ids.len() as u64, digest)
                != (
                    line.receivable_minor,
                    line.payable_minor,
                    line.claims,
                    line.digest,
                )
            {
                self.violation(format!(
                    "{who}statement of cycle {cycle} with {}: receivable {} payable {} claims {} != its ledger's {r} / {p} / {}",
                    hex(&line.counterparty),
                    line.receivable_minor,
                    line.payable_minor,
                    line.claims,
                    ids.len()
                ));
            }
        }
        if lines != own.len() {
            self.violation(format!(
                "{who}statement of cycle {cycle} has {lines} lines, its ledger {} counterparties",
                own.len()
            ));
        }
        Ok(())
    }

    /// The scheme's checks at a full check: its own invariants.
    pub(super) fn scheme_check(&mut self, hour: u64) -> Result<(), SimError> {
        let Some(sw) = self.scheme.as_ref() else {
            return Ok(());
        };
        let inv = sw.scheme.invariants().map_err(Self::scheme_err)?;
        if !inv.ok {
            self.violation(format!(
                "scheme invariants at hour {hour}: {}",
                inv.violations.join("; ")
            ));
        }
        Ok(())
    }

    /// Per-issuer figures of the day (runs with several issuers).
    pub(super) fn day_issuers(&mut self, rec: &mut DayRecord) -> Result<(), SimError> {
        if self.scheme.is_none() {
            return Ok(());
        }
        let exposure = self.exposure_by_issuer();
        for k in self.nodes.indices() {
            let d = self.issuer_day(k, exposure[k.get()])?;
            rec.issuers.push(d);
        }
        Ok(())
    }

    fn issuer_day(&self, k: IssuerIdx, exposure: u64) -> Result<DayIssuer, SimError> {
        let n = &self.nodes[k];
        let inv = n.issuer.invariants()?;
        let mut d = DayIssuer {
            issuer: n.code.clone(),
            exposure_minor: exposure,
            supply_minor: inv.supply as i64,
            ..DayIssuer::default()
        };
        for p in n.issuer.peer_positions()? {
            d.open_receivable_minor += p.open_receivable;
            d.open_payable_minor += p.open_payable;
            d.peer_accounts_minor += p.account;
        }
        let open = ClaimFilter {
            open_only: true,
            ..ClaimFilter::default()
        };
        d.open_claims = n.issuer.claims(&open)?.len() as u64;
        let mut tx = n.issuer.store().begin_read()?;
        d.settlement_minor = tx.balance(&Account::Settlement.to_string())?.unwrap_or(0);
        Ok(d)
    }

    /// Undetected double-spent value, by the payer's issuer.
    fn exposure_by_issuer(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.nodes.len()];
        for (key, ts) in &self.chains {
            if ts.len() < 2 || self.detected.contains_key(key) {
                continue;
            }
            let mut v: Vec<&Tracked> = ts.iter().map(|&t| &self.tracked[t]).collect();
            v.sort_by_key(|t| t.released);
            out[self.customers[key.0].issuer.get()] += v[1..].iter().map(|t| t.amount).sum::<u64>();
        }
        out
    }

    /// Move claims and close cycles until nothing is in flight between the
    /// issuers: rounds until one moves nothing, then a last cycle and its
    /// statements (nothing to do with one issuer).
    pub(super) fn settle_until_quiet(&mut self, now: UnixSeconds) -> Result<(), SimError> {
        if self.scheme.is_none() {
            return Ok(());
        }
        let mut rounds = 0;
        while self.scheme_round(now, false)? > 0 {
            rounds += 1;
            if rounds >= QUIET_ROUNDS_MAX {
                self.violation(format!(
                    "claims still moving after {QUIET_ROUNDS_MAX} rounds at the end"
                ));
                break;
            }
        }
        self.scheme_round(now, true)?;
        Ok(())
    }

    /// The final checks across issuers, at quiescence: receivable and
    /// payable of every pair agree, every claim is in a posted cycle, each
    /// issuer's double spends are its own wallets' (proven where the payer
    /// is), and the scheme report.
    pub(super) fn scheme_finish(&mut self) -> Result<(), SimError> {
        let Some(sw) = self.scheme.as_ref() else {
            return Ok(());
        };
        let ids = sw.ids.clone();
        let n = self.nodes.len();
        // positions[a][b]: a's view of b.
        let mut views: Vec<BTreeMap<IssuerId, (i64, i64, i64)>> = Vec::with_capacity(n);
        for k in self.nodes.indices() {
            let mut m = BTreeMap::new();
            for p in self.nodes[k].issuer.peer_positions()? {
                m.insert(p.peer, (p.open_receivable, p.open_payable, p.account));
            }
            views.push(m);
        }
        for a in 0..n {
            for b in (a + 1)..n {
                let (ar, ap, aa) = views[a].get(&ids[b]).copied().unwrap_or_default();
                let (br, bp, ba) = views[b].get(&ids[a]).copied().unwrap_or_default();
                let ca = self.nodes[IssuerIdx::new(a)].code.clone();
                let cb = self.nodes[IssuerIdx::new(b)].code.clone();
                if aa + ba != 0 {
                    self.violation(format!(
                        "at quiescence {ca} owes {cb} {aa} but {cb} owes {ca} {ba}: they do not sum to zero"
                    ));
                }
                if ar != bp || ap != br {
                    self.violation(format!(
                        "at quiescence {ca} has receivable {ar} / payable {ap} open with {cb}, {cb} has payable {bp} / receivable {br} with {ca}"
                    ));
                }
                if ar != 0 || ap != 0 {
                    self.violation(format!(
                        "at quiescence {ca} still has claims with {cb} in no posted cycle ({ar} receivable, {ap} payable)"
                    ));
                }
            }
        }
        // Double spends: each proven at the payer's issuer (a payee's issuer
        // may keep the proof of a foreign payer's fork, but the payer's own
        // issuer must have proven it too).
        let mut left_at_payee_issuer = 0;
        for k in self.nodes.indices() {
            let recs = self.nodes[k].issuer.double_spends(None, u32::MAX)?;
            let mut own = 0;
            for rec in recs {
                match self.owner.get(&rec.payer) {
                    Some(&c) if self.customers[c].issuer == k => own += 1,
                    // A fork this payee's issuer proved from evidence its
                    // payee kept (a refused payment): evidence is not a
                    // claim, so it never reaches the payer's issuer.
                    Some(&c) if !self.detected.contains_key(&(c, rec.seq)) => {
                        left_at_payee_issuer += 1;
                    }
                    _ => {}
                }
            }
            if let Some(sw) = self.scheme.as_mut() {
                sw.report.issuers[k.get()].double_spends_proven = own;
            }
        }
        // Each issuer's figures.
        for k in self.nodes.indices() {
            let inv = self.nodes[k].issuer.invariants()?;
            let customers = self.customers.iter().filter(|c| c.issuer == k).count() as u64;
            let mut accounts = BTreeMap::new();
            for (id, (_, _, acc)) in &views[k.get()] {
                if let Some(j) = ids.iter().position(|x| x == id) {
                    accounts.insert(self.nodes[IssuerIdx::new(j)].code.clone(), *acc);
                }
            }
            if let Some(sw) = self.scheme.as_mut() {
                let r = &mut sw.report.issuers[k.get()];
                r.customers = customers;
                r.supply_minor = inv.supply as i64;
                r.guarantee_loss_minor = (-inv.totals.guarantee).max(0) as u64;
                r.peer_accounts_minor = accounts;
            }
        }
        let across = self.double_spends_across_issuers();
        let evidence_only = self.forks_only_in_foreign_evidence();
        let (cp, cv) = (self.cross_payments, self.cross_value);
        let Some(sw) = self.scheme.as_mut() else {
            return Ok(());
        };
        let all = ClaimQuery {
            limit: usize::MAX,
            ..ClaimQuery::default()
        };
        sw.report.claims = sw.scheme.claims(&all).map_err(Self::scheme_err)?.len() as u64;
        sw.report.cross_issuer_payments = cp;
        sw.report.cross_issuer_value_minor = cv;
        sw.report.double_spends_across_issuers = across;
        sw.report.forks_only_in_foreign_evidence = evidence_only;
        sw.report.proofs_left_at_payee_issuer = left_at_payee_issuer;
        let rep = sw.report.clone();
        self.scheme_check(u64::from(self.cfg.days) * 24)?;
        self.r.scheme = Some(rep);
        Ok(())
    }

    /// Forks (two entries of one (payer, seq) released) that would have
    /// reached the payer's issuer but for an entry kept as evidence by a
    /// payee of another issuer.
    fn forks_only_in_foreign_evidence(&self) -> u64 {
        self.chains
            .values()
            .filter(|ts| {
                let reported = ts
                    .iter()
                    .filter(|&&t| self.tracked[t].reported.is_some())
                    .count();
                let evidence = ts
                    .iter()
                    .filter(|&&t| {
                        self.tracked[t].reported.is_none() && self.tracked[t].foreign_evidence
                    })
                    .count();
                reported < 2 && reported + evidence >= 2
            })
            .count() as u64
    }

    /// Double spends (two entries of one (payer, seq) that reached an
    /// issuer) whose entries went to payees of different issuers.
    fn double_spends_across_issuers(&self) -> u64 {
        self.chains
            .values()
            .filter(|ts| ts.len() >= 2)
            .filter(|ts| {
                let mut issuers: Vec<IssuerIdx> = ts
                    .iter()
                    .filter_map(|&t| self.tracked[t].payee_issuer)
                    .collect();
                issuers.sort();
                issuers.dedup();
                issuers.len() > 1
            })
            .count() as u64
    }
}
