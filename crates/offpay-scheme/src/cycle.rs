//! Net settlement: a cycle nets every claim held by both parties and in no
//! cycle yet into one root-signed statement per issuer (a line per
//! counterparty), in one transaction; the positions sum to zero. And the
//! scheme's invariants over its own ledger (claims, cycles, statements).

use std::collections::BTreeMap;

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    STATEMENT_LINES_MAX, SettlementStatement, StatementLine, statement_digest,
};
use offpay_protocol::{Hash32, IssuerId, UnixSeconds};

use crate::error::SchemeError;
use crate::scheme::{K_CYCLE, K_DIRECTORY_VERSION, Scheme, get_u64, set_u64};
use crate::store::{
    CycleRecord, LineRecord, NettedClaim, SchemeStore, SchemeStoreError, SchemeTx, StatementRecord,
};

/// Statements per `statements` page.
pub const STATEMENTS_PAGE_MAX: usize = 64;

/// What a closed cycle netted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleSummary {
    /// Its number.
    pub cycle: u64,
    /// Claims netted.
    pub claims: u64,
    /// Net position per issuer with claims in it (receivable - payable:
    /// positive = the scheme pays the issuer), by id; they sum to zero.
    pub positions: Vec<(IssuerId, i128)>,
}

/// The result of [`Scheme::invariants`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeInvariants {
    /// No violation.
    pub ok: bool,
    /// Every violation found, in words.
    pub violations: Vec<String>,
    /// Admitted issuers (any status).
    pub issuers: u64,
    /// Cycles closed.
    pub cycles: u64,
    /// Claims netted in a cycle.
    pub claims_netted: u64,
    /// Claims held by both parties, not netted yet.
    pub claims_open: u64,
    /// Claims one party does not hold yet.
    pub claims_waiting: u64,
    /// Disputed claims.
    pub claims_disputed: u64,
}

/// One issuer's lines in a cycle being closed, by counterparty:
/// (receivable, payable, claim ids).
type Lines = BTreeMap<IssuerId, (u64, u64, Vec<Hash32>)>;

fn add(a: u64, b: i64) -> Result<u64, SchemeError> {
    u64::try_from(b)
        .ok()
        .and_then(|b| a.checked_add(b))
        .ok_or(SchemeError::Overflow)
}

impl<S: SchemeStore> Scheme<S> {
    /// Close the next cycle: net every claim both parties hold, in no cycle
    /// and not disputed; sign one statement per issuer with claims in it. An
    /// issuer with none gets no statement; a cycle with no claims is still
    /// closed (cycles follow the operator's schedule).
    pub fn close_cycle(&self, now: UnixSeconds) -> Result<CycleSummary, SchemeError> {
        self.with_tx(|tx| {
            tx.lock_scheme()?;
            let cycle = get_u64(tx, K_CYCLE)? + 1;
            let claims = tx.claims_to_net()?;
            let mut by_issuer: BTreeMap<IssuerId, Lines> = BTreeMap::new();
            let mut gross: i64 = 0;
            for c in &claims {
                gross = gross.checked_add(c.amount).ok_or(SchemeError::Overflow)?;
                let creditor = by_issuer
                    .entry(c.payee_issuer)
                    .or_default()
                    .entry(c.payer_issuer)
                    .or_default();
                creditor.0 = add(creditor.0, c.amount)?;
                creditor.2.push(c.id);
                let debtor = by_issuer
                    .entry(c.payer_issuer)
                    .or_default()
                    .entry(c.payee_issuer)
                    .or_default();
                debtor.1 = add(debtor.1, c.amount)?;
                debtor.2.push(c.id);
            }
            let ids: Vec<Hash32> = claims.iter().map(|c| c.id).collect();
            if tx.assign_cycle(&ids, cycle)? != ids.len() as u64 {
                return Err(SchemeError::Store(SchemeStoreError::Conflict(
                    "a claim was netted concurrently".into(),
                )));
            }
            tx.insert_cycle(&CycleRecord {
                cycle,
                time: now,
                claims: ids.len() as u64,
                gross,
            })?;
            let mut positions = Vec::with_capacity(by_issuer.len());
            let mut total: i128 = 0;
            for (issuer, lines) in by_issuer {
                if lines.len() > STATEMENT_LINES_MAX {
                    return Err(SchemeError::TooLarge(
                        "statement lines",
                        STATEMENT_LINES_MAX,
                    ));
                }
                let mut body_lines = Vec::with_capacity(lines.len());
                let mut records = Vec::with_capacity(lines.len());
                let mut net: i128 = 0;
                for (counterparty, (receivable, payable, mut claim_ids)) in lines {
                    let digest = statement_digest(&mut claim_ids);
                    net += i128::from(receivable) - i128::from(payable);
                    body_lines.push(StatementLine {
                        counterparty,
                        receivable_minor: receivable,
                        payable_minor: payable,
                        claims: claim_ids.len() as u64,
                        digest,
                    });
                    records.push(LineRecord {
                        cycle,
                        issuer,
                        counterparty,
                        receivable: i64::try_from(receivable).map_err(|_| SchemeError::Overflow)?,
                        payable: i64::try_from(payable).map_err(|_| SchemeError::Overflow)?,
                        claims: claim_ids.len() as u64,
                        digest,
                    });
                }
                let body = SettlementStatement {
                    cycle,
                    issuer,
                    time: now,
                    currency: self.currency,
                    lines: body_lines,
                };
                let signed = Signed::sign(body, &self.root_key).into_bytes();
                tx.insert_statement(
                    &StatementRecord {
                        cycle,
                        issuer,
                        net: i64::try_from(net).map_err(|_| SchemeError::Overflow)?,
                        signed,
                    },
                    &records,
                )?;
                total += net;
                positions.push((issuer, net));
            }
            if total != 0 {
                return Err(SchemeError::Corrupt(format!(
                    "cycle {cycle} positions sum to {total}"
                )));
            }
            set_u64(tx, K_CYCLE, cycle)?;
            Ok(CycleSummary {
                cycle,
                claims: ids.len() as u64,
                positions,
            })
        })
    }

    /// The last closed cycle (0 = none).
    pub fn last_cycle(&self) -> Result<u64, SchemeError> {
        self.with_read(|tx| get_u64(tx, K_CYCLE))
    }

    /// `issuer`'s statements of the cycles after `after_cycle`, oldest first,
    /// at most [`STATEMENTS_PAGE_MAX`]: (cycle, `Signed<SettlementStatement>` bytes).
    pub fn statements(
        &self,
        issuer: &IssuerId,
        after_cycle: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, SchemeError> {
        self.with_read(|tx| {
            Ok(tx
                .statements(issuer, after_cycle, STATEMENTS_PAGE_MAX)?
                .into_iter()
                .map(|s| (s.cycle, s.signed))
                .collect())
        })
    }

    /// The ids of the claims of `cycle` that `issuer` is a party to, sorted:
    /// what its statement's line digests are computed over.
    pub fn cycle_claims(&self, issuer: &IssuerId, cycle: u64) -> Result<Vec<Hash32>, SchemeError> {
        self.with_read(|tx| Ok(tx.cycle_claims(issuer, cycle)?))
    }

    /// Net position per issuer over the claims both parties hold and no cycle
    /// has netted yet (receivable - payable), by id.
    pub fn open_positions(&self) -> Result<Vec<(IssuerId, i128)>, SchemeError> {
        self.with_tx(|tx| {
            let mut pos: BTreeMap<IssuerId, i128> = BTreeMap::new();
            for c in tx.claims_to_net()? {
                *pos.entry(c.payee_issuer).or_default() += i128::from(c.amount);
                *pos.entry(c.payer_issuer).or_default() -= i128::from(c.amount);
            }
            Ok(pos.into_iter().collect())
        })
    }

    /// Check the scheme's ledger: the positions of every cycle sum to zero;
    /// every statement's net is the sum of its lines; for every pair of
    /// issuers and cycle, the claims netted equal the statement lines both
    /// ways (amounts, counts, digests); every netted claim was held by both
    /// parties and not disputed; a cycle's record matches its claims; the
    /// directory's version is the latest stored one.
    pub fn invariants(&self) -> Result<SchemeInvariants, SchemeError> {
        self.with_tx(|tx| {
            // One view of the cycles (on PostgreSQL, READ COMMITTED reads
            // each statement anew: hold off close_cycle meanwhile).
            tx.lock_scheme()?;
            let mut v = Vec::new();
            let issuers = tx.issuers()?;
            let cycles = tx.cycles()?;
            let netted = tx.netted_claims()?;
            check_cycles(&netted, &cycles, &mut v);
            check_statements(
                &netted,
                &tx.statement_lines()?,
                &tx.statement_nets()?,
                &mut v,
            );
            let (claims_open, claims_waiting, claims_disputed) = check_claims(tx, &mut v)?;
            let version = get_u64(tx, K_DIRECTORY_VERSION)?;
            match tx.latest_directory()? {
                Some((latest, _)) if latest == version => {}
                other => v.push(format!(
                    "directory version {version}, latest stored {:?}",
                    other.map(|(l, _)| l)
                )),
            }
            for r in &issuers {
                if r.changed > version {
                    v.push(format!(
                        "issuer {} changed in future version {}",
                        r.code, r.changed
                    ));
                }
            }
            let last = get_u64(tx, K_CYCLE)?;
            if cycles.last().map_or(0, |c| c.cycle) != last || cycles.len() as u64 != last {
                v.push(format!(
                    "{} cycles recorded, last cycle {last}",
                    cycles.len()
                ));
            }
            Ok(SchemeInvariants {
                ok: v.is_empty(),
                violations: v,
                issuers: issuers.len() as u64,
                cycles: cycles.len() as u64,
                claims_netted: netted.len() as u64,
                claims_open,
                claims_waiting,
                claims_disputed,
            })
        })
    }
}

/// Each cycle's record matches the claims netted in it.
fn check_cycles(netted: &[NettedClaim], cycles: &[CycleRecord], v: &mut Vec<String>) {
    let mut per_cycle: BTreeMap<u64, (u64, i128)> = BTreeMap::new();
    for c in netted {
        let e = per_cycle.entry(c.cycle).or_default();
        e.0 += 1;
        e.1 += i128::from(c.amount);
    }
    for c in cycles {
        let (n, gross) = per_cycle.remove(&c.cycle).unwrap_or_default();
        if n != c.claims || gross != i128::from(c.gross) {
            v.push(format!(
                "cycle {}: recorded {} claims of {}, holds {n} of {gross}",
                c.cycle, c.claims, c.gross
            ));
        }
    }
    for cycle in per_cycle.keys() {
        v.push(format!(
            "claims are netted in cycle {cycle}, which was never closed"
        ));
    }
}

/// Expected statement lines from the netted claims, by (cycle, issuer,
/// counterparty): (receivable, payable, claim ids).
type ExpectedLines = BTreeMap<(u64, IssuerId, IssuerId), (i128, i128, Vec<Hash32>)>;

/// Lines match the claims both ways, statements net their lines, cycles net to zero.
fn check_statements(
    netted: &[NettedClaim],
    lines: &[LineRecord],
    nets: &[StatementRecord],
    v: &mut Vec<String>,
) {
    let mut expected = ExpectedLines::new();
    for c in netted {
        let e = expected
            .entry((c.cycle, c.payee_issuer, c.payer_issuer))
            .or_default();
        e.0 += i128::from(c.amount);
        e.2.push(c.id);
        let e = expected
            .entry((c.cycle, c.payer_issuer, c.payee_issuer))
            .or_default();
        e.1 += i128::from(c.amount);
        e.2.push(c.id);
    }
    let mut line_nets: BTreeMap<(u64, IssuerId), i128> = BTreeMap::new();
    for l in lines {
        *line_nets.entry((l.cycle, l.issuer)).or_default() +=
            i128::from(l.receivable) - i128::from(l.payable);
        match expected.remove(&(l.cycle, l.issuer, l.counterparty)) {
            None => v.push(format!(
                "cycle {}: line {} -> {} has no claims",
                l.cycle, l.issuer, l.counterparty
            )),
            Some((recv, pay, mut ids)) => {
                if recv != i128::from(l.receivable)
                    || pay != i128::from(l.payable)
                    || ids.len() as u64 != l.claims
                    || statement_digest(&mut ids) != l.digest
                {
                    v.push(format!(
                        "cycle {}: line {} -> {} does not match its claims",
                        l.cycle, l.issuer, l.counterparty
                    ));
                }
            }
        }
    }
    for (cycle, issuer, counterparty) in expected.keys() {
        v.push(format!(
            "cycle {cycle}: claims between {issuer} and {counterparty} are in no statement line"
        ));
    }
    let mut sums: BTreeMap<u64, i128> = BTreeMap::new();
    for s in nets {
        *sums.entry(s.cycle).or_default() += i128::from(s.net);
        if line_nets.remove(&(s.cycle, s.issuer)) != Some(i128::from(s.net)) {
            v.push(format!(
                "cycle {}: statement of {} nets {}, not the sum of its lines",
                s.cycle, s.issuer, s.net
            ));
        }
    }
    for (cycle, issuer) in line_nets.keys() {
        v.push(format!(
            "cycle {cycle}: lines of {issuer} without a statement"
        ));
    }
    for (cycle, sum) in sums {
        if sum != 0 {
            v.push(format!("cycle {cycle}: positions sum to {sum}"));
        }
    }
}

/// Every netted claim was held by both parties and not disputed; the counts
/// of open (held by both, not netted), waiting (one side missing) and
/// disputed claims.
fn check_claims(
    tx: &mut dyn SchemeTx,
    v: &mut Vec<String>,
) -> Result<(u64, u64, u64), SchemeError> {
    let c = tx.claim_counts()?;
    if c.netted_not_held > 0 {
        v.push(format!(
            "{} claims are netted but not held by both parties",
            c.netted_not_held
        ));
    }
    Ok((c.open, c.waiting, c.disputed))
}
