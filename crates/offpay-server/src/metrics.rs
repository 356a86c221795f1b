//! Counters kept by the server and the Prometheus text exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use offpay_issuer::{InvariantReport, IssuerError, SyncOutcome};

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Issuer refusals and failures by (code, detail).
    issuer_errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Report problems that locked a wallet at sync, by problem code.
    report_problems: Mutex<BTreeMap<&'static str, u64>>,
    /// Sync reports answered (including replays).
    pub syncs: AtomicU64,
    /// Sync reports answered from the stored response.
    pub sync_replays: AtomicU64,
    /// Chain entries newly recorded.
    pub entries_recorded: AtomicU64,
    /// Payments and redeems newly settled.
    pub payments_settled: AtomicU64,
    /// Double spends newly detected.
    pub double_spends: AtomicU64,
    /// Wallets locked by a sync.
    pub wallets_locked: AtomicU64,
    /// Wallets enrolled (or enrollments replayed).
    pub enrollments: AtomicU64,
    /// Load vouchers handed out.
    pub loads: AtomicU64,
    /// Redeem requests answered.
    pub redeems: AtomicU64,
    /// Rounds of the scheme link that ended well.
    pub scheme_rounds: AtomicU64,
    /// Rounds of the scheme link that failed.
    pub scheme_round_errors: AtomicU64,
    /// Claims through the scheme link by (direction, result code).
    scheme_claims: Mutex<BTreeMap<(&'static str, String), u64>>,
}

pub(crate) fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

pub(crate) fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Count one answered request.
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_string(), status_class(status)))
                .or_insert(0) += 1;
        }
    }

    /// Count an issuer error by its stable code and detail.
    pub fn issuer_error(&self, e: &IssuerError) {
        if let Ok(mut m) = self.issuer_errors.lock() {
            *m.entry((e.code(), e.detail().unwrap_or(""))).or_insert(0) += 1;
        }
    }

    /// Count one round of the scheme link (`None`: it failed).
    pub fn scheme_round(&self, r: Option<&offpay_api::SchemeRound>) {
        match r {
            Some(_) => self.scheme_rounds.fetch_add(1, Ordering::Relaxed),
            None => self.scheme_round_errors.fetch_add(1, Ordering::Relaxed),
        };
    }

    /// Count claims through the scheme link: `inbound` = applied from the
    /// inbox (else submitted), by result code.
    pub fn scheme_claims(&self, inbound: bool, code: &str, n: u64) {
        if let Ok(mut m) = self.scheme_claims.lock() {
            *m.entry((if inbound { "in" } else { "out" }, code.to_string()))
                .or_insert(0) += n;
        }
    }

    /// The dispute cases by kind and state (`offpay_issuer::Issuer::case_counts`).
    pub fn render_cases(&self, counts: &offpay_issuer::CaseCounts) -> String {
        let mut out = String::from(
            "# HELP offpay_cases Dispute cases by kind and state.\n# TYPE offpay_cases gauge\n",
        );
        for (kind, state, n) in &counts.by_kind_state {
            let _ = writeln!(
                out,
                "offpay_cases{{kind=\"{}\",state=\"{}\"}} {n}",
                kind.as_str(),
                state.as_str()
            );
        }
        out
    }

    /// The scheme link's series of a member issuer: claims in/out by result,
    /// rounds, and per other issuer its open claims, the age of the oldest
    /// and the net position (`issuer:<hex>` balance, positive: we owe it).
    pub fn render_scheme(&self, positions: &[offpay_issuer::PeerPosition], now: u64) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP offpay_scheme_link_rounds_total Rounds of the scheme link by result.\n# TYPE offpay_scheme_link_rounds_total counter"
        );
        let _ = writeln!(
            out,
            "offpay_scheme_link_rounds_total{{result=\"ok\"}} {}",
            self.scheme_rounds.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "offpay_scheme_link_rounds_total{{result=\"error\"}} {}",
            self.scheme_round_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP offpay_scheme_claims_total Claims through the scheme link by direction (out: submitted, in: applied from the inbox) and result.\n# TYPE offpay_scheme_claims_total counter"
        );
        if let Ok(m) = self.scheme_claims.lock() {
            for ((dir, code), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "offpay_scheme_claims_total{{direction=\"{dir}\",result=\"{}\"}} {n}",
                    escape(code)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP offpay_scheme_open_claims_minor Claims not yet in a posted cycle, per other issuer and side, minor units.\n# TYPE offpay_scheme_open_claims_minor gauge"
        );
        for p in positions {
            let _ = writeln!(
                out,
                "offpay_scheme_open_claims_minor{{peer=\"{}\",side=\"receivable\"}} {}",
                p.peer, p.open_receivable
            );
            let _ = writeln!(
                out,
                "offpay_scheme_open_claims_minor{{peer=\"{}\",side=\"payable\"}} {}",
                p.peer, p.open_payable
            );
        }
        let _ = writeln!(
            out,
            "# HELP offpay_scheme_oldest_open_claim_age_seconds Age of the oldest open claim per other issuer.\n# TYPE offpay_scheme_oldest_open_claim_age_seconds gauge"
        );
        for p in positions {
            if let Some(t) = p.oldest_open {
                let _ = writeln!(
                    out,
                    "offpay_scheme_oldest_open_claim_age_seconds{{peer=\"{}\"}} {}",
                    p.peer,
                    now.saturating_sub(t.0)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP offpay_scheme_net_position_minor The issuer:<peer> account per other issuer (positive: we owe it).\n# TYPE offpay_scheme_net_position_minor gauge"
        );
        for p in positions {
            let _ = writeln!(
                out,
                "offpay_scheme_net_position_minor{{peer=\"{}\"}} {}",
                p.peer, p.account
            );
        }
        out
    }

    /// Count what a sync did.
    pub fn sync(&self, o: &SyncOutcome) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if o.replayed {
            self.sync_replays.fetch_add(1, Ordering::Relaxed);
        }
        self.entries_recorded
            .fetch_add(o.entries_recorded as u64, Ordering::Relaxed);
        self.payments_settled
            .fetch_add(o.settled as u64, Ordering::Relaxed);
        self.double_spends
            .fetch_add(o.double_spends.len() as u64, Ordering::Relaxed);
        if let Some(reason) = &o.locked {
            self.wallets_locked.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut m) = self.report_problems.lock() {
                for p in reason.problems() {
                    *m.entry(p.code()).or_insert(0) += 1;
                }
            }
        }
    }

    /// The Prometheus text format: the counters, and the ledger gauges when
    /// `ledger` is given (`None`: the store could not be read).
    pub fn render(&self, backend: &str, ledger: Option<&InvariantReport>) -> String {
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        };
        counter(
            "offpay_syncs_total",
            "Sync reports answered, replays included.",
            &self.syncs,
        );
        counter(
            "offpay_sync_replays_total",
            "Sync reports answered from the stored response.",
            &self.sync_replays,
        );
        counter(
            "offpay_entries_recorded_total",
            "Chain entries newly recorded.",
            &self.entries_recorded,
        );
        counter(
            "offpay_payments_settled_total",
            "Payments and redeems newly settled.",
            &self.payments_settled,
        );
        counter(
            "offpay_double_spends_detected_total",
            "Double spends newly detected.",
            &self.double_spends,
        );
        counter(
            "offpay_wallets_locked_total",
            "Wallets locked by a sync.",
            &self.wallets_locked,
        );
        counter(
            "offpay_enrollments_total",
            "Enrollment requests answered.",
            &self.enrollments,
        );
        counter("offpay_loads_total", "Load requests answered.", &self.loads);
        counter(
            "offpay_redeems_total",
            "Redeem requests answered.",
            &self.redeems,
        );

        out.push_str("# HELP offpay_http_requests_total HTTP requests answered, by route and status class.\n");
        out.push_str("# TYPE offpay_http_requests_total counter\n");
        if let Ok(m) = self.requests.lock() {
            for ((route, class), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "offpay_http_requests_total{{route=\"{}\",status=\"{class}\"}} {n}",
                    escape(route)
                );
            }
        }

        out.push_str("# HELP offpay_issuer_errors_total Issuer refusals and failures, by stable code and detail.\n");
        out.push_str("# TYPE offpay_issuer_errors_total counter\n");
        if let Ok(m) = self.issuer_errors.lock() {
            for ((code, detail), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "offpay_issuer_errors_total{{code=\"{code}\",detail=\"{detail}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP offpay_sync_report_problems_total Report problems that locked a wallet at sync, by code.\n");
        out.push_str("# TYPE offpay_sync_report_problems_total counter\n");
        if let Ok(m) = self.report_problems.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "offpay_sync_report_problems_total{{code=\"{code}\"}} {n}"
                );
            }
        }

        let _ = writeln!(
            out,
            "# HELP offpay_store_up Whether the store answered the ledger query.\n# TYPE offpay_store_up gauge\noffpay_store_up{{backend=\"{}\"}} {}",
            escape(backend),
            u8::from(ledger.is_some())
        );
        if let Some(r) = ledger {
            ledger_gauges(&mut out, r);
        }
        out
    }
}

/// The ledger's gauges, from one invariant check.
fn ledger_gauges(out: &mut String, r: &InvariantReport) {
    let t = &r.totals;
    let mut gauge = |name: &str, help: &str, v: i128| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        "offpay_ledger_general_sum",
        "Sum of all general-ledger balances (must be 0).",
        t.general_sum,
    );
    gauge(
        "offpay_ledger_offline_sum",
        "Sum of all offline-book balances (must be 0).",
        t.offline_sum,
    );
    gauge(
        "offpay_pool_minor",
        "The offline pool's balance, minor units.",
        t.pool,
    );
    gauge(
        "offpay_wallets_minor",
        "Sum of the wallet sub-accounts, minor units.",
        t.wallets,
    );
    gauge(
        "offpay_customers_minor",
        "Sum of the customer online accounts, minor units.",
        t.customers,
    );
    gauge(
        "offpay_supply_minor",
        "Money in circulation (deposits minus withdrawals), minor units.",
        r.supply,
    );
    gauge(
        "offpay_guarantee_minor",
        "The guarantee (fraud-loss) account's balance, minor units.",
        t.guarantee,
    );
    gauge(
        "offpay_invariants_ok",
        "1 when every ledger invariant holds.",
        i128::from(r.ok),
    );
}

#[cfg(test)]
mod tests {
    use offpay_issuer::error::{InputError, LockReason, ReportProblem};

    use super::*;

    #[test]
    fn issuer_errors_and_report_problems_are_counted_by_code() {
        let m = Metrics::default();
        m.issuer_error(&IssuerError::InvalidInput(InputError::CustomerId));
        m.issuer_error(&IssuerError::InvalidInput(InputError::CustomerId));
        m.issuer_error(&IssuerError::UnknownWallet);
        m.sync(&SyncOutcome {
            locked: Some(LockReason::Report(vec![
                ReportProblem::LoadsNotContiguous,
                ReportProblem::SelfLocked,
            ])),
            ..SyncOutcome::default()
        });
        let text = m.render("sqlite", None);
        assert!(text.contains(
            "offpay_issuer_errors_total{code=\"invalid_input\",detail=\"customer_id\"} 2\n"
        ));
        assert!(
            text.contains("offpay_issuer_errors_total{code=\"unknown_wallet\",detail=\"\"} 1\n")
        );
        assert!(
            text.contains("offpay_sync_report_problems_total{code=\"loads_not_contiguous\"} 1\n")
        );
        assert!(text.contains("offpay_sync_report_problems_total{code=\"self_locked\"} 1\n"));
        assert!(text.contains("offpay_wallets_locked_total 1\n"));
    }

    #[test]
    fn cases_are_a_gauge_by_kind_and_state() {
        use offpay_issuer::store::{CaseKind, CaseState};
        let counts = offpay_issuer::CaseCounts {
            opened: 3,
            resolved: 1,
            rejected: 0,
            by_kind_state: vec![
                (CaseKind::NotMyPayment, CaseState::Open, 2),
                (CaseKind::PaidNotReceived, CaseState::Resolved, 1),
            ],
        };
        let text = Metrics::default().render_cases(&counts);
        assert!(text.contains("# TYPE offpay_cases gauge\n"));
        assert!(text.contains("offpay_cases{kind=\"not_my_payment\",state=\"open\"} 2\n"));
        assert!(text.contains("offpay_cases{kind=\"paid_not_received\",state=\"resolved\"} 1\n"));
    }
}
