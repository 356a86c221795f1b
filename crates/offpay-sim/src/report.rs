//! The report of a run: serializable to JSON with stable field names.
//!
//! Every field is a count, an amount in minor units or a virtual time in
//! seconds since the start of the run, all driven by the seeded PRNG: no wall
//! clock, no wallet id, key or other OS-random value, so the same seed gives
//! the same JSON byte for byte. Maps are `BTreeMap`s (sorted keys).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the report format; bumped when a field changes meaning or goes away.
pub const REPORT_SCHEMA: &str = "offpay-sim/1";

/// The configuration as run (echoed in the report).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigEcho {
    /// Customers (one wallet each at a time).
    pub wallets: u64,
    /// Merchants among them.
    pub merchants: u64,
    /// Simulated days.
    pub days: u32,
    /// The seed.
    pub seed: u64,
    /// Attack kind -> rate.
    pub attacks: BTreeMap<String, f64>,
    /// Attack kind -> what its rate counts ("wallet-day" or "payment").
    pub attack_rate_units: BTreeMap<String, String>,
    /// Share of merchants asked for.
    pub merchants_fraction: f64,
    /// Payments a consumer starts per day, on average.
    pub payments_per_day: f64,
    /// Mean hours a consumer stays offline between syncs.
    pub consumer_offline_hours: u64,
    /// Mean hours a merchant stays offline between syncs.
    pub merchant_offline_hours: u64,
    /// "sqlite-memory" or "sqlite-file".
    pub store: String,
    /// Hours between full checks.
    pub full_check_hours: u32,
    /// Issuers (only in the JSON when more than one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub issuers: u64,
    /// Hours between settlement cycles (only with several issuers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle_hours: Option<u32>,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// What the scheme's lifecycle rules did over the run (offpay-issuer's
/// `lifecycle.rs`): dead wallets retired and closed, their money paid out or
/// forfeited, payments their payee never held returned to the payer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRecord {
    /// Wallets retired as lost (their device was lost).
    pub retired_lost: u64,
    /// Wallets retired as broken (their vault was tampered with).
    pub retired_broken: u64,
    /// Revoked wallets closed in the closing phase.
    pub closed: u64,
    /// Paid out to customers' online accounts at close.
    pub paid_out_minor: u64,
    /// Forfeited to the reserve at close (lost wallets, no-refund rule).
    pub forfeited_to_reserve_minor: u64,
    /// Payments settled to a payee that never held them, returned to the payer.
    pub returned: u64,
    /// Their sum.
    pub returned_minor: u64,
    /// The reserve's balance at the end (negative: it paid late reports).
    pub reserve_minor: i64,
    /// What honest customers got back through these rules (their online
    /// balance above what their own operations explain).
    pub honest_credits_minor: u64,
    /// The seconds the closing phase moved the clock past the run's end.
    pub closing_after_s: u64,
}

/// The dispute cases of the run (offpay-issuer's `cases.rs`): honest payers
/// complain about payments their payee never accepted (and about a lost
/// wallet), the operator decides and resolves by the liability rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasesRecord {
    /// Cases opened.
    pub opened: u64,
    /// Cases resolved (the customer was right: money back, or back already).
    pub resolved: u64,
    /// Cases rejected by the rules.
    pub rejected: u64,
    /// Still open after the closing phase (a violation when not 0).
    pub open_at_end: u64,
    /// What the resolutions paid customers.
    pub paid_minor: u64,
    /// Complaints never opened: the payer never brought the payment to the
    /// issuer within the tries.
    pub never_opened: u64,
    /// Opened, by kind.
    pub by_kind: BTreeMap<String, u64>,
    /// Closed, by decision.
    pub by_decision: BTreeMap<String, u64>,
}

/// The risk limits in force (the issuer's signed policy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest offline balance.
    pub holding_limit_minor: u64,
    /// Largest single payment.
    pub max_payment_minor: u64,
    /// Most spent offline between syncs.
    pub max_offline_spend_minor: u64,
    /// Most payments offline between syncs.
    pub max_offline_payments: u32,
    /// Longest time offline before paying is refused.
    pub max_offline_seconds: u64,
    /// DESIGN.md §8's bound on the loss from one broken wallet: holding limit
    /// plus the offline spend limit.
    pub loss_bound_per_wallet_minor: u64,
}

/// A distribution of non-negative integers (seconds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// Samples.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Median (nearest rank).
    pub p50: u64,
    /// 90th percentile (nearest rank).
    pub p90: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest.
    pub max: u64,
    /// Mean, rounded down.
    pub mean: u64,
}

impl Distribution {
    /// The distribution of `samples`.
    pub fn of(samples: &[u64]) -> Distribution {
        if samples.is_empty() {
            return Distribution::default();
        }
        let mut s = samples.to_vec();
        s.sort_unstable();
        let rank = |p: u64| -> u64 {
            // Nearest rank: ceil(p/100 * n), 1-based.
            let n = s.len() as u64;
            let r = (p * n).div_ceil(100).clamp(1, n);
            s[(r - 1) as usize]
        };
        let sum: u128 = s.iter().map(|&x| x as u128).sum();
        Distribution {
            count: s.len() as u64,
            min: s[0],
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: s[s.len() - 1],
            mean: (sum / s.len() as u128) as u64,
        }
    }
}

/// What one attack kind did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackStats {
    /// The rate asked for.
    pub rate: f64,
    /// "wallet-day" or "payment".
    pub rate_unit: String,
    /// Attacks injected.
    pub injected: u64,
    /// What happened, by outcome name (see docs/SIMULATION.md).
    pub outcomes: BTreeMap<String, u64>,
}

/// One attacker (a customer whose wallet was rolled back, cloned, tampered
/// with or revoked while it kept paying).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerRecord {
    /// Customer index.
    pub customer: u64,
    /// The attack.
    pub kind: String,
    /// When (seconds since the start).
    pub time_s: u64,
    /// Offline balance when the attack started (after loading to the limit,
    /// for the double-spending kinds).
    pub balance_at_attack_minor: u64,
    /// Double spends of this wallet that reached the issuer.
    pub double_spends_injected: u64,
    /// Double spends of this wallet the issuer detected and proved.
    pub double_spends_detected: u64,
    /// Seconds from the first double spend to its detection.
    pub first_detection_delay_s: Option<u64>,
    /// The issuer's state of the wallet at the end ("active", "locked", "revoked").
    pub issuer_state: String,
    /// Clawed back from the holder's online account.
    pub clawed_back_minor: u64,
    /// Charged to the guarantee account (net of refunds).
    pub guaranteed_minor: u64,
    /// clawed back + guaranteed: the overspend the issuer had to cover.
    pub loss_minor: u64,
}

/// One double spend (two entries with the same payer and seq that both reached the issuer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoubleSpendRecord {
    /// The payer's customer index.
    pub customer: u64,
    /// The attack that caused it.
    pub kind: String,
    /// The conflicting seq.
    pub seq: u64,
    /// When the second entry was signed (seconds since the start).
    pub attack_s: u64,
    /// When the issuer detected it (seconds since the start), if it did.
    pub detected_s: Option<u64>,
    /// detected_s - attack_s.
    pub delay_s: Option<u64>,
    /// Value of every entry at that seq but the first signed.
    pub overspend_minor: u64,
}

/// The state at the end of one simulated day.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRecord {
    /// Day number, from 1.
    pub day: u32,
    /// Payments accepted by payees that day.
    pub payments: u64,
    /// Their value.
    pub value_moved_minor: u64,
    /// Syncs that day.
    pub syncs: u64,
    /// Refusals that day (every reason).
    pub refusals: u64,
    /// Sum of every live device's offline balance at the end of the day.
    pub offline_balance_minor: u64,
    /// Paid by payers but not accepted by payees (so far).
    pub in_flight_minor: u64,
    /// Double-spent value released and not yet detected: the exposure.
    pub exposure_minor: u64,
    /// Loss charged to the guarantee account so far (net of refunds).
    pub guarantee_loss_minor: u64,
    /// Double spends released so far (both entries signed and handed over).
    pub double_spends_released: u64,
    /// Double spends detected so far.
    pub double_spends_detected: u64,
    /// Money supply at the issuer (deposits - withdrawals).
    pub supply_minor: i64,
    /// With several issuers: each issuer's figures at the end of the day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<DayIssuer>,
}

/// One issuer's figures at the end of a day (runs with several issuers).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayIssuer {
    /// Its issuer code.
    pub issuer: String,
    /// Double-spent value released by its wallets and not yet detected.
    pub exposure_minor: u64,
    /// Claims it holds that no posted cycle covers yet: receivable (owed to
    /// it by other issuers) and payable (it owes), and how many.
    pub open_receivable_minor: i64,
    /// See `open_receivable_minor`.
    pub open_payable_minor: i64,
    /// Open claims (both directions).
    pub open_claims: u64,
    /// Net of its accounts with the other issuers (`issuer:<id>`; positive:
    /// it owes them).
    pub peer_accounts_minor: i64,
    /// Its settlement account at the scheme (`settlement`).
    pub settlement_minor: i64,
    /// Money supply at this issuer (its deposits - withdrawals).
    pub supply_minor: i64,
}

/// A settlement cycle closed by the scheme.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleReport {
    /// The cycle number.
    pub cycle: u64,
    /// When it was closed (virtual seconds since the start).
    pub time_s: u64,
    /// Claims netted in it.
    pub claims: u64,
    /// Issuer code -> net position (positive: the issuer receives).
    pub positions: BTreeMap<String, i64>,
}

/// One member issuer of a run with a scheme, at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerReport {
    /// Its issuer code.
    pub code: String,
    /// Its issuer id (hex).
    pub id: String,
    /// Customers it serves.
    pub customers: u64,
    /// Claims it submitted to the scheme, and the scheme's answers.
    pub claims_submitted: u64,
    /// Claims the scheme delivered to it (its inbox), and its answers.
    pub claims_received: u64,
    /// Scheme claims it refused (by code).
    pub claims_refused: BTreeMap<String, u64>,
    /// Statements it posted.
    pub statements_posted: u64,
    /// Double spends proven here (its own wallets only).
    pub double_spends_proven: u64,
    /// Loss charged to its guarantee account (net of refunds).
    pub guarantee_loss_minor: u64,
    /// Money supply at this issuer (deposits - withdrawals).
    pub supply_minor: i64,
    /// Sum of its settlement positions over every cycle (positive: received).
    pub settled_minor: i64,
    /// What each other issuer owes it (negative) or it owes (positive) at
    /// quiescence, by issuer code: its `issuer:<id>` accounts.
    pub peer_accounts_minor: BTreeMap<String, i64>,
}

/// The scheme of a run with several issuers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeReport {
    /// The member issuers.
    pub issuers: Vec<IssuerReport>,
    /// Every settlement cycle closed.
    pub cycles: Vec<CycleReport>,
    /// Claim exchange rounds run (one per simulated hour, more at the end).
    pub rounds: u64,
    /// Claims the scheme holds at the end.
    pub claims: u64,
    /// Claims submitted, by the scheme's answer (`accepted`, `already_known`, `refused:<code>`).
    pub submit_results: BTreeMap<String, u64>,
    /// Payments between wallets of different issuers, accepted by payees.
    pub cross_issuer_payments: u64,
    /// Their value.
    pub cross_issuer_value_minor: u64,
    /// Double spends whose entries went to payees of more than one issuer.
    pub double_spends_across_issuers: u64,
    /// Directory versions published.
    pub directory_version: u64,
    /// Forks that reached an issuer only through evidence (a payment a
    /// payee of another issuer refused and kept): that issuer does not
    /// forward evidence, so the payer's issuer cannot prove them (no money
    /// moved on the refused entry; counted as undetectable, see
    /// docs/SIMULATION.md "Known gaps").
    pub forks_only_in_foreign_evidence: u64,
    /// Proofs a payee's issuer holds of a foreign payer's fork that the
    /// payer's issuer did not prove (the same gap, seen from the proofs).
    pub proofs_left_at_payee_issuer: u64,
    /// With faults: answers to submissions and inbox acknowledgements lost
    /// on the way (the claims went again and came back `AlreadyKnown`).
    pub link_messages_lost: u64,
}

/// The issuer's ledger at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSummary {
    /// Money in circulation: deposits minus withdrawals.
    pub supply_minor: i64,
    /// The offline pool (liability for all offline money).
    pub pool_minor: i64,
    /// Sum of the wallet sub-accounts (equals the pool).
    pub wallets_minor: i64,
    /// Sum of the customers' online accounts.
    pub customers_minor: i64,
    /// The guarantee account (negative: losses it absorbed).
    pub guarantee_minor: i64,
    /// Sum of every live device's offline balance (the TAs' view).
    pub devices_minor: u64,
    /// Paid by payers, never accepted by payees.
    pub in_flight_minor: u64,
}

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// [`REPORT_SCHEMA`].
    pub schema: String,
    /// The ISO 4217 code of every `*_minor` amount in the report.
    pub currency: String,
    /// The configuration as run.
    pub config: ConfigEcho,
    /// Every invariant violation seen (empty when all held), in order.
    pub invariant_violations: Vec<String>,
    /// Invariant checks run (per event, per hour, full).
    pub invariant_checks: u64,
    /// Payments accepted by their payee.
    pub payments: u64,
    /// Payments started (a request was asked for).
    pub payments_attempted: u64,
    /// Value of the accepted payments.
    pub value_moved_minor: u64,
    /// Syncs answered by the issuer.
    pub syncs: u64,
    /// Loads (vouchers issued).
    pub loads: u64,
    /// Their value.
    pub loaded_minor: u64,
    /// Redeems settled online.
    pub redeems: u64,
    /// Their value.
    pub redeemed_minor: u64,
    /// Money deposited into online accounts.
    pub deposited_minor: u64,
    /// Money withdrawn from online accounts.
    pub withdrawn_minor: u64,
    /// Double spends that reached the issuer (both entries reported by someone).
    pub double_spends_injected: u64,
    /// Of those, detected by the issuer (with a stored proof).
    pub double_spends_detected: u64,
    /// Double spends released offline whose second entry never reached the
    /// issuer (e.g. the only holder was lost): undetectable by design.
    pub double_spends_undetectable: u64,
    /// Stored double-spend proofs that verify against the root alone.
    pub double_spend_proofs_verified: u64,
    /// Seconds from a double spend to its detection.
    pub detection_delay_s: Distribution,
    /// What honest parties lost (must be 0).
    pub honest_loss_minor: u64,
    /// Loss absorbed by the guarantee account (net of refunds).
    pub guarantee_loss_minor: u64,
    /// Clawed back from attackers' online accounts.
    pub clawed_back_minor: u64,
    /// Offline balances of lost devices (their owners' loss, not a protocol loss).
    pub lost_device_minor: u64,
    /// Offline balances of wallets whose state file was tampered with (the
    /// tamperer's own loss).
    pub forfeited_minor: u64,
    /// Payments a payee refused or never received that were settled to the
    /// payee's sub-account from the payer's report (not in the payee's device).
    pub stranded_minor: u64,
    /// Sub-account balances of wallets no device holds any more (lost,
    /// tampered) left at the end, after the closing phase paid them out:
    /// 0 unless a rule keeps them.
    pub unclaimed_minor: u64,
    /// The end of wallets' lives: retirements, closes, payouts, returns.
    #[serde(default)]
    pub lifecycle: LifecycleRecord,
    /// Dispute cases opened, decided and resolved.
    #[serde(default)]
    pub cases: CasesRecord,
    /// The risk limits in force.
    pub limits: Limits,
    /// Largest loss one attacker caused.
    pub max_loss_per_attacker_minor: u64,
    /// Refusals by the wallet TAs, by `WalletError` variant.
    pub refusals: BTreeMap<String, u64>,
    /// Refusals by the issuer, by operation and `IssuerError::code`.
    pub issuer_refusals: BTreeMap<String, u64>,
    /// Per attack kind.
    pub attacks: BTreeMap<String, AttackStats>,
    /// Every attacker, in order of attack.
    pub attackers: Vec<AttackerRecord>,
    /// Every double spend that reached the issuer, in order of (customer, seq).
    pub double_spends: Vec<DoubleSpendRecord>,
    /// One record per simulated day.
    pub daily: Vec<DayRecord>,
    /// The ledger at the end.
    pub ledger: LedgerSummary,
    /// With several issuers: the scheme, its cycles and each member issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<SchemeReport>,
    /// Issuer-side faults injected and how the run got through them (only
    /// with [`crate::SimConfig::faults`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<crate::faults::FaultStats>,
    /// Machine-dependent figures: never in the JSON (so that the same seed
    /// gives the same JSON everywhere); zero after deserializing.
    #[serde(skip)]
    pub machine: MachineStats,
    /// The canonical dump of the issuer's database at the end
    /// (`offpay_store::AnyStore::dump`), when [`crate::SimConfig::dump_store`]
    /// asked for it; not in the JSON.
    #[serde(skip)]
    pub store_dump: Option<String>,
}

/// What a run cost on this machine (not part of the JSON report).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineStats {
    /// Size of the issuer's database files at the end, when file-backed
    /// (including on the RAM file system, which a process's resident memory
    /// does not count).
    pub store_bytes: Option<u64>,
}

impl SimReport {
    /// The report as pretty JSON (what `offpay sim --json` prints).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A human-readable summary table.
    pub fn summary_table(&self) -> String {
        let cur = &self.currency;
        let eur = |m: u64| format!("{}.{:02} {cur}", m / 100, m % 100);
        let hours = |s: u64| format!("{:.1}", s as f64 / 3600.0);
        let d = &self.detection_delay_s;
        let delay = if d.count == 0 {
            "n/a (no double spend detected)".to_string()
        } else {
            format!("{} / {} / {}", hours(d.p50), hours(d.p90), hours(d.max))
        };
        let attackers = self
            .attackers
            .iter()
            .filter(|a| a.double_spends_injected > 0)
            .count();
        let max_loss = if attackers == 0 {
            "n/a (no double spender)".to_string()
        } else {
            eur(self.max_loss_per_attacker_minor)
        };
        let mut rows: Vec<(String, String)> = vec![
            (
                "wallets / merchants / days / seed".into(),
                format!(
                    "{} / {} / {} / {}",
                    self.config.wallets, self.config.merchants, self.config.days, self.config.seed
                ),
            ),
            ("attacks".into(), attack_rates(&self.config)),
            ("payments accepted".into(), self.payments.to_string()),
            (
                "payments attempted".into(),
                self.payments_attempted.to_string(),
            ),
            ("value moved".into(), eur(self.value_moved_minor)),
            ("syncs".into(), self.syncs.to_string()),
            (
                "loads / redeems".into(),
                format!(
                    "{} ({}) / {} ({})",
                    self.loads,
                    eur(self.loaded_minor),
                    self.redeems,
                    eur(self.redeemed_minor)
                ),
            ),
            (
                "double spends injected / detected".into(),
                format!(
                    "{} / {}",
                    self.double_spends_injected, self.double_spends_detected
                ),
            ),
            (
                "double spends undetectable".into(),
                self.double_spends_undetectable.to_string(),
            ),
            (
                "proofs verified".into(),
                self.double_spend_proofs_verified.to_string(),
            ),
            ("detection delay p50 / p90 / max (h)".into(), delay),
            ("honest loss".into(), eur(self.honest_loss_minor)),
            ("guarantee loss".into(), eur(self.guarantee_loss_minor)),
            ("clawed back".into(), eur(self.clawed_back_minor)),
            (
                "max loss per attacker / bound".into(),
                format!(
                    "{} / {} (holding limit {})",
                    max_loss,
                    eur(self.limits.loss_bound_per_wallet_minor),
                    eur(self.limits.holding_limit_minor)
                ),
            ),
            ("lost with devices".into(), eur(self.lost_device_minor)),
            ("forfeited (tampered)".into(), eur(self.forfeited_minor)),
            (
                "stranded (refused/lost, settled)".into(),
                eur(self.stranded_minor),
            ),
            ("unclaimed (dead wallets)".into(), eur(self.unclaimed_minor)),
            (
                "retired lost / broken / closed".into(),
                format!(
                    "{} / {} / {}",
                    self.lifecycle.retired_lost,
                    self.lifecycle.retired_broken,
                    self.lifecycle.closed
                ),
            ),
            (
                "paid out / forfeited / returned at close".into(),
                format!(
                    "{} / {} / {} ({} payments)",
                    eur(self.lifecycle.paid_out_minor),
                    eur(self.lifecycle.forfeited_to_reserve_minor),
                    eur(self.lifecycle.returned_minor),
                    self.lifecycle.returned
                ),
            ),
            (
                "cases opened / resolved / rejected".into(),
                format!(
                    "{} / {} / {} ({} paid back)",
                    self.cases.opened,
                    self.cases.resolved,
                    self.cases.rejected,
                    eur(self.cases.paid_minor)
                ),
            ),
            (
                "invariant checks / violations".into(),
                format!(
                    "{} / {}",
                    self.invariant_checks,
                    self.invariant_violations.len()
                ),
            ),
        ];
        for (k, s) in &self.attacks {
            if s.injected > 0 || s.rate > 0.0 {
                let outcomes: Vec<String> = s
                    .outcomes
                    .iter()
                    .map(|(o, n)| format!("{} {n}", humanize(o)))
                    .collect();
                let what = if outcomes.is_empty() {
                    format!("{} injected", s.injected)
                } else {
                    format!("{} injected; {}", s.injected, outcomes.join(", "))
                };
                rows.push((
                    format!("attack {k} (rate {} per {})", s.rate, s.rate_unit),
                    what,
                ));
            }
        }
        let top: Vec<String> = {
            let mut v: Vec<(&String, &u64)> = self.refusals.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            v.iter()
                .take(6)
                .map(|(k, n)| format!("{} {n}", humanize(k)))
                .collect()
        };
        let top = if top.is_empty() {
            "none".to_string()
        } else {
            top.join(", ")
        };
        rows.push(("refusals (top)".into(), top));
        if let Some(sc) = &self.scheme {
            rows.push((
                "issuers / cycles / claims".into(),
                format!("{} / {} / {}", sc.issuers.len(), sc.cycles.len(), sc.claims),
            ));
            rows.push((
                "cross-issuer payments".into(),
                format!(
                    "{} ({})",
                    sc.cross_issuer_payments,
                    eur(sc.cross_issuer_value_minor)
                ),
            ));
            rows.push((
                "double spends across issuers".into(),
                sc.double_spends_across_issuers.to_string(),
            ));
            for i in &sc.issuers {
                let settled = if i.settled_minor < 0 {
                    format!("-{}", eur(i.settled_minor.unsigned_abs()))
                } else {
                    eur(i.settled_minor.unsigned_abs())
                };
                rows.push((
                    format!("issuer {}", i.code),
                    format!(
                        "{} customers, claims out {} / in {}, {} statements, net settled {settled}, {} double spends proven, guarantee loss {}",
                        i.customers,
                        i.claims_submitted,
                        i.claims_received,
                        i.statements_posted,
                        i.double_spends_proven,
                        eur(i.guarantee_loss_minor)
                    ),
                ));
            }
        }
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<w$}  {v}\n"));
        }
        for v in self.invariant_violations.iter().take(20) {
            out.push_str(&format!("VIOLATION: {v}\n"));
        }
        out
    }
}

/// The run's attacks and their rates in words, e.g. `clone 0.001 per
/// wallet-day, torn 0.01 per payment`, or `none` (used by the table and by
/// every plot's title).
pub fn attack_rates(config: &ConfigEcho) -> String {
    let rates: Vec<String> = config
        .attacks
        .iter()
        .filter(|(_, r)| **r > 0.0)
        .map(|(k, r)| {
            let unit = config
                .attack_rate_units
                .get(k)
                .map_or("wallet-day", String::as_str);
            format!("{k} {r} per {unit}")
        })
        .collect();
    if rates.is_empty() {
        "none".into()
    } else {
        rates.join(", ")
    }
}

/// A stable machine name (`payer_refused:PeerCertificate(BadSignature)`,
/// `PeerRevoked`) in words for people (`payer refused: peer certificate: bad
/// signature`, `peer revoked`): the JSON keeps the names, the table speaks.
pub fn humanize(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        match c {
            '_' | '-' => {
                out.push(' ');
                prev_lower = false;
            }
            ':' | '(' => {
                out.push_str(": ");
                prev_lower = false;
            }
            ')' => prev_lower = false,
            c if c.is_ascii_uppercase() => {
                if prev_lower {
                    out.push(' ');
                }
                out.push(c.to_ascii_lowercase());
                prev_lower = false;
            }
            c => {
                out.push(c);
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_nearest_rank() {
        let d = Distribution::of(&[5, 1, 4, 2, 3]);
        assert_eq!(
            (d.count, d.min, d.p50, d.p90, d.max, d.mean),
            (5, 1, 3, 5, 5, 3)
        );
        assert_eq!(Distribution::of(&[]), Distribution::default());
        let v: Vec<u64> = (1..=100).collect();
        let d = Distribution::of(&v);
        assert_eq!((d.p50, d.p90, d.p99), (50, 90, 99));
    }
}
