//! Disputes: honest payers complain about payments their payee never
//! accepted, and the operator decides and resolves the cases by the issuer's
//! liability rules (offpay-issuer's `cases.rs`, docs/LIABILITY.md).
//!
//! With probability [`SimConfig::dispute_rate`] an honest payer whose payment
//! was refused or lost opens a case 2 to 24 hours later (`refused_but_debited`
//! or `paid_not_received`), unless the payment reached its payee in the
//! meantime; a case cannot be opened before the payer's report brought the
//! payment to the issuer, so the customer tries again every 12 hours (at most
//! [`OPEN_TRIES_MAX`] times). A customer whose device was lost says "not my
//! payment" about the lost wallet at the same rate. The operator works the
//! open cases at the end of every day and once more in the closing phase:
//! decide (the evidence may not decide yet: the payee's window is open), then
//! resolve. At the end every case must be closed, and a case about a payment
//! its payee never accepted must have brought the money back to the payer.

use offpay_issuer::store::{CaseKind, CaseRecord, CaseState};
use offpay_issuer::{CaseOpening, CaseProblem};

use super::*;

/// Times a customer tries to open a case on a payment the issuer has not seen yet.
pub(super) const OPEN_TRIES_MAX: u8 = 6;

/// The operator's name on every case.
const OPERATOR: &str = "sim-operator";

/// A case the simulation opened.
pub(super) struct SimCase {
    cust: CustomerIdx,
    id: u64,
    /// The payment it is about (None: a wallet case).
    undelivered: Option<UndeliveredIdx>,
    done: bool,
}

impl<'a, P: FnMut(Progress)> Sim<'a, P> {
    /// A payment just went undelivered: maybe its payer will complain.
    pub(super) fn maybe_dispute(&mut self, u: UndeliveredIdx, now: UnixSeconds) {
        let Some(&cust) = self.owner.get(&self.undelivered[u].payer) else {
            return;
        };
        if self.undelivered[u].payee.is_none()
            || !self.honest(cust)
            || !self.drng.chance(self.cfg.dispute_rate)
        {
            return;
        }
        let later = Self::now_s(now) + self.drng.range(2 * HOUR, 24 * HOUR);
        self.push(later, Ev::Dispute { u, tries: 0 });
    }

    /// A customer's device was lost: maybe they dispute what it may pay.
    pub(super) fn maybe_dispute_wallet(
        &mut self,
        cust: CustomerIdx,
        id: WalletId,
        now: UnixSeconds,
    ) {
        if !self.honest(cust) || !self.drng.chance(self.cfg.dispute_rate) {
            return;
        }
        let opening = CaseOpening {
            kind: CaseKind::NotMyPayment,
            payer: id,
            seq: None,
            opened_by: OPERATOR.into(),
            note: "my phone is lost: none of its payments from now on are mine".into(),
        };
        let res = self.iss(cust).open_case(&opening, now);
        self.opened(cust, res, None);
    }

    /// The payer complains (the event `maybe_dispute` scheduled).
    pub(super) fn on_dispute(&mut self, u: UndeliveredIdx, tries: u8, now: UnixSeconds) {
        let d = &self.undelivered[u];
        if d.accepted {
            return;
        }
        let Some(&cust) = self.owner.get(&d.payer) else {
            return;
        };
        let opening = CaseOpening {
            kind: if d.refused {
                CaseKind::RefusedButDebited
            } else {
                CaseKind::PaidNotReceived
            },
            payer: d.payer,
            seq: Some(d.seq),
            opened_by: OPERATOR.into(),
            note: "I paid, the shop says it has nothing".into(),
        };
        match self.iss(cust).open_case(&opening, now) {
            Err(IssuerError::Case(CaseProblem::UnknownPayment { .. })) => {
                if tries + 1 < OPEN_TRIES_MAX {
                    let later = Self::now_s(now) + 12 * HOUR;
                    self.push(
                        later,
                        Ev::Dispute {
                            u,
                            tries: tries + 1,
                        },
                    );
                } else {
                    self.r.cases.never_opened += 1;
                }
            }
            res => self.opened(cust, res, Some(u)),
        }
    }

    /// Record what opening a case gave.
    fn opened(
        &mut self,
        cust: CustomerIdx,
        res: Result<CaseRecord, IssuerError>,
        undelivered: Option<UndeliveredIdx>,
    ) {
        match res {
            Ok(c) => {
                self.r.cases.opened += 1;
                *self
                    .r
                    .cases
                    .by_kind
                    .entry(c.kind.as_str().into())
                    .or_default() += 1;
                self.cases.push(SimCase {
                    cust,
                    id: c.id,
                    undelivered,
                    done: false,
                });
            }
            Err(e) => self.issuer_refusal("open_case", &e),
        }
    }

    /// The operator works every open case: decide, then resolve. Returns the
    /// cases still waiting for evidence.
    pub(super) fn work_cases(&mut self, now: UnixSeconds) -> Result<u64, SimError> {
        let mut waiting = 0;
        for k in 0..self.cases.len() {
            if self.cases[k].done {
                continue;
            }
            let (cust, id) = (self.cases[k].cust, self.cases[k].id);
            // Open or decided before the evidence changed: decide (again).
            match self
                .iss(cust)
                .decide_case(id, OPERATOR, "by the rules", now)
            {
                Ok(_) => {}
                Err(IssuerError::Case(CaseProblem::AwaitingPayee)) => {
                    waiting += 1;
                    continue;
                }
                // A store fault (`--faults`): nothing was written; next round.
                Err(e) => {
                    self.issuer_refusal("decide_case", &e);
                    waiting += 1;
                    continue;
                }
            }
            let c = match self
                .iss(cust)
                .resolve_case(id, OPERATOR, "by the rules", now)
            {
                Ok(c) => c,
                // The payee reported it or the lifecycle returned it since
                // the decision (evidence_changed), or a store fault: the next
                // round decides again.
                Err(e) => {
                    self.issuer_refusal("resolve_case", &e);
                    waiting += 1;
                    continue;
                }
            };
            self.case_closed(k, &c);
        }
        Ok(waiting)
    }

    fn case_closed(&mut self, k: usize, c: &CaseRecord) {
        self.cases[k].done = true;
        let decision = c.decision.clone().unwrap_or_default();
        *self
            .r
            .cases
            .by_decision
            .entry(decision.clone())
            .or_default() += 1;
        match c.state {
            CaseState::Resolved => self.r.cases.resolved += 1,
            _ => self.r.cases.rejected += 1,
        }
        self.r.cases.paid_minor += c.paid.max(0) as u64;
        if let Some(u) = self.cases[k].undelivered {
            // The payee never accepted it: the rules must bring it back,
            // unless the payee is another issuer's wallet (that issuer's
            // books hold it: docs/LIABILITY.md).
            let d = &self.undelivered[u];
            let foreign = self.dev_node(d.payee_dev) != self.customers[self.cases[k].cust].issuer;
            let back = match decision.as_str() {
                "return_to_payer" | "returned_by_rule" => true,
                "other_issuer" => foreign,
                _ => false,
            };
            if !d.accepted && !back {
                self.violation(format!(
                    "case {} on a payment its payee never accepted was decided {decision}",
                    c.id
                ));
            }
        }
    }

    /// The last round, after the closing phase: every case must be closed.
    pub(super) fn finish_cases(&mut self, now: UnixSeconds) -> Result<(), SimError> {
        // A few rounds: a store fault (`--faults`) only delays a case.
        let mut waiting = self.work_cases(now)?;
        for _ in 0..8 {
            if waiting == 0 {
                break;
            }
            waiting = self.work_cases(now)?;
        }
        self.r.cases.open_at_end = waiting;
        if waiting > 0 {
            self.violation(format!(
                "{waiting} cases still open after the closing phase"
            ));
        }
        let mut counted = (0, 0, 0);
        for k in self.nodes.indices() {
            let n = self.nodes[k].issuer.case_counts()?;
            counted.0 += n.opened;
            counted.1 += n.resolved;
            counted.2 += n.rejected;
        }
        let c = &self.r.cases;
        if counted != (c.opened, c.resolved, c.rejected) {
            let mine = (c.opened, c.resolved, c.rejected);
            self.violation(format!(
                "the issuers count cases (opened, resolved, rejected) {counted:?}, the simulation {mine:?}"
            ));
        }
        Ok(())
    }
}
