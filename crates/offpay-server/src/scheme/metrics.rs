//! The scheme server's counters and their Prometheus exposition.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use offpay_protocol::IssuerId;

use crate::metrics::{escape, status_class};

/// Upper bounds (seconds) of the open-claim age buckets; the last is +Inf.
pub const OPEN_AGE_BUCKETS: &[(u64, &str)] = &[
    (3_600, "1h"),
    (86_400, "1d"),
    (7 * 86_400, "7d"),
    (u64::MAX, "older"),
];

/// What `/metrics` reads from the database: the ages (seconds) of the
/// claims not netted yet, and the open net position per issuer.
#[derive(Debug, Clone, Default)]
pub struct OpenClaims {
    /// Age of each claim not netted yet.
    pub ages: Vec<u64>,
    /// Net of the claims both parties hold, per issuer (positive: owed to it).
    pub positions: Vec<(IssuerId, i128)>,
}

/// The scheme server's counters.
#[derive(Debug, Default)]
pub struct SchemeMetrics {
    requests: Mutex<BTreeMap<(String, &'static str), u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    claims_in: Mutex<BTreeMap<&'static str, u64>>,
    acks: Mutex<BTreeMap<&'static str, u64>>,
    claims_out: Mutex<u64>,
    last_cycle: Mutex<(u64, Vec<(IssuerId, i128)>)>,
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, n: u64) {
    if let Ok(mut m) = m.lock() {
        *m.entry(k).or_insert(0) += n;
    }
}

impl SchemeMetrics {
    /// Count one answered request.
    pub fn request(&self, route: &str, status: u16) {
        bump(&self.requests, (route.to_string(), status_class(status)), 1);
    }
    /// Count a refusal or failure by its stable code.
    pub fn error(&self, code: &'static str) {
        bump(&self.errors, code, 1);
    }
    /// Count one submitted claim by its result code.
    pub fn claim_in(&self, result: &'static str) {
        bump(&self.claims_in, result, 1);
    }
    /// Count one acknowledgement by its result code.
    pub fn ack(&self, result: &'static str) {
        bump(&self.acks, result, 1);
    }
    /// Count claims handed out in inboxes.
    pub fn claims_out(&self, n: u64) {
        if let Ok(mut c) = self.claims_out.lock() {
            *c += n;
        }
    }
    /// Remember the last closed cycle's positions.
    pub fn cycle_closed(&self, cycle: u64, positions: &[(IssuerId, i128)]) {
        if let Ok(mut c) = self.last_cycle.lock() {
            *c = (cycle, positions.to_vec());
        }
    }

    /// The Prometheus text. `open`: the ages (seconds) of the claims not
    /// netted yet and the open net position per issuer, when the database answered.
    pub fn render(&self, backend: &str, open: Option<&OpenClaims>) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_info The scheme server.\n# TYPE offpay_scheme_info gauge"
        );
        let _ = writeln!(s, "offpay_scheme_info{{backend=\"{}\"}} 1", escape(backend));
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_http_requests_total Answered requests by route and status class.\n# TYPE offpay_scheme_http_requests_total counter"
        );
        if let Ok(m) = self.requests.lock() {
            for ((route, class), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "offpay_scheme_http_requests_total{{route=\"{}\",status=\"{class}\"}} {n}",
                    escape(route)
                );
            }
        }
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_errors_total Refusals and failures by code.\n# TYPE offpay_scheme_errors_total counter"
        );
        if let Ok(m) = self.errors.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(s, "offpay_scheme_errors_total{{code=\"{code}\"}} {n}");
            }
        }
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_claims_in_total Submitted claims by result.\n# TYPE offpay_scheme_claims_in_total counter"
        );
        if let Ok(m) = self.claims_in.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(s, "offpay_scheme_claims_in_total{{result=\"{code}\"}} {n}");
            }
        }
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_claims_out_total Claims handed out in inboxes.\n# TYPE offpay_scheme_claims_out_total counter"
        );
        let out = self.claims_out.lock().map(|c| *c).unwrap_or(0);
        let _ = writeln!(s, "offpay_scheme_claims_out_total {out}");
        let _ = writeln!(
            s,
            "# HELP offpay_scheme_acks_total Inbox acknowledgements by result.\n# TYPE offpay_scheme_acks_total counter"
        );
        if let Ok(m) = self.acks.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(s, "offpay_scheme_acks_total{{result=\"{code}\"}} {n}");
            }
        }
        if let Some(OpenClaims { ages, positions }) = open {
            let _ = writeln!(
                s,
                "# HELP offpay_scheme_open_claims Claims not netted yet, by age.\n# TYPE offpay_scheme_open_claims gauge"
            );
            for (i, (max, name)) in OPEN_AGE_BUCKETS.iter().enumerate() {
                let min = if i == 0 { 0 } else { OPEN_AGE_BUCKETS[i - 1].0 };
                let n = ages.iter().filter(|a| **a >= min && **a < *max).count();
                let _ = writeln!(s, "offpay_scheme_open_claims{{age=\"{name}\"}} {n}");
            }
            let _ = writeln!(
                s,
                "# HELP offpay_scheme_open_net_position_minor Net of the claims both parties hold, not netted yet, per issuer (positive: owed to it).\n# TYPE offpay_scheme_open_net_position_minor gauge"
            );
            for (id, n) in positions {
                let _ = writeln!(
                    s,
                    "offpay_scheme_open_net_position_minor{{issuer=\"{id}\"}} {n}"
                );
            }
        }
        if let Ok(c) = self.last_cycle.lock()
            && c.0 > 0
        {
            let _ = writeln!(
                s,
                "# HELP offpay_scheme_cycle_net_position_minor Net position per issuer in the last cycle closed by this process.\n# TYPE offpay_scheme_cycle_net_position_minor gauge"
            );
            for (id, n) in &c.1 {
                let _ = writeln!(
                    s,
                    "offpay_scheme_cycle_net_position_minor{{cycle=\"{}\",issuer=\"{id}\"}} {n}",
                    c.0
                );
            }
        }
        s
    }
}
