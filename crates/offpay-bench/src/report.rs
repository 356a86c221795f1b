//! The report: one JSON object (field names documented in the crate docs and
//! docs/PERFORMANCE.md) and a table for people.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use offpay_protocol::Suite;

use crate::crypto::{self, CryptoFigures, Dist, SuiteCrypto};
use crate::hsm::HsmFigures;
use crate::offline::OfflineFigures;
use crate::reconcile::Run;
use crate::scheme::SchemeRun;
use crate::setup::redact;
use crate::sizes::Sizes;
use crate::{BenchConfig, sys};

/// The report's schema name.
pub const SCHEMA: &str = "offpay-bench/1";

/// Signatures in the offline payment bound.
pub(crate) const BOUND_SIGNS: u32 = 3;
/// Verifications in the offline payment bound.
pub(crate) const BOUND_VERIFIES: u32 = 3;
/// Vault commits of one offline payment (request, pay, receive, confirm).
pub(crate) const COMMITS_PER_PAYMENT: u32 = 4;
/// Atomic writes of one sealed-vault commit (state, then counter).
pub(crate) const WRITES_PER_COMMIT: u32 = 2;
/// Signatures each payment costs the issuer (it is in two reports).
pub(crate) const SIGNATURES_PER_PAYMENT: f64 = 2.0;

/// Fields every report carries (`null` when not measured).
pub const REQUIRED_FIELDS: [&str; 14] = [
    "payment_bytes",
    "payment_bytes_with_cert",
    "request_bytes",
    "receipt_bytes",
    "offline_payment_p50_us",
    "offline_payment_durable_p50_us",
    "offline_payment_bound_us",
    "verify_batch_per_s",
    "sync_payments_per_s_sqlite",
    "sync_payments_per_s_postgres",
    "sync_payments_per_s_http",
    "sync_ratio_to_verify_bound_sqlite",
    "sync_ratio_to_verify_bound_postgres",
    "sync_peak_rss_mib",
];

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// What was asked.
    pub config: BenchConfig,
    /// Cores this process may use.
    pub cores: usize,
    /// Signature costs.
    pub crypto: Option<CryptoFigures>,
    /// Offline payment latency, Ed25519 (the first of `offline_by_suite`).
    pub offline: Option<OfflineFigures>,
    /// Offline payment latency per suite, in [`Suite::ALL`] order.
    pub offline_by_suite: Vec<OfflineFigures>,
    /// Message sizes.
    pub sizes: Option<Sizes>,
    /// Reconciliation on SQLite.
    pub sqlite: Option<Run>,
    /// Reconciliation on PostgreSQL.
    pub postgres: Option<Run>,
    /// Why PostgreSQL was skipped.
    pub postgres_skipped: Option<String>,
    /// Reconciliation over HTTP.
    pub http: Option<Run>,
    /// Peak RSS (VmHWM) after the reconciliation runs, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Claims through a scheme of two issuers.
    pub scheme: Option<SchemeRun>,
    /// Reconciliation of the extra suites' wallets (SQLite file), in run order.
    pub suite_runs: Vec<(Suite, Run)>,
    /// CA keys in a PKCS#11 token against keys in process.
    pub hsm: Option<HsmFigures>,
    /// Why the HSM part did not run.
    pub hsm_skipped: Option<String>,
}

/// A suite's prefix in the JSON field names: `ed25519`, `p256`, `mldsa44`.
pub(crate) fn prefix(suite: Suite) -> &'static str {
    match suite {
        Suite::Ed25519 => "ed25519",
        Suite::P256 => "p256",
        Suite::MlDsa44 => "mldsa44",
    }
}

/// A suite's name in the table.
pub(crate) fn display(suite: Suite) -> &'static str {
    match suite {
        Suite::Ed25519 => "Ed25519",
        Suite::P256 => "P-256",
        Suite::MlDsa44 => "ML-DSA-44",
    }
}

/// A float for JSON: `null` when absent or not finite.
fn num(v: Option<f64>) -> Value {
    match v {
        Some(x) if x.is_finite() => json!(x),
        _ => Value::Null,
    }
}

/// Rounded to `digits` decimals (JSON stays readable).
fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Report {
    /// An empty report for `config`.
    pub fn new(config: &BenchConfig) -> Report {
        Report {
            config: config.clone(),
            cores: sys::cores(),
            crypto: None,
            offline: None,
            offline_by_suite: Vec::new(),
            sizes: None,
            sqlite: None,
            postgres: None,
            postgres_skipped: None,
            http: None,
            peak_rss_mib: None,
            scheme: None,
            suite_runs: Vec::new(),
            hsm: None,
            hsm_skipped: None,
        }
    }

    /// Ed25519 batch-verified signatures per second on one core.
    pub fn verify_batch_per_s(&self) -> Option<f64> {
        self.crypto.map(|c| c.verify_batch_per_s())
    }

    /// `3 × sign + 3 × verify` (Ed25519), microseconds.
    pub fn offline_bound_us(&self) -> Option<f64> {
        self.suite_offline_bound_us(Suite::Ed25519)
    }

    /// The bound plus 4 commits × 2 atomic writes, microseconds.
    pub fn offline_durable_bound_us(&self) -> Option<f64> {
        self.suite_offline_durable_bound_us(self.offline.as_ref()?)
    }

    /// `3 × sign + 3 × verify` of `suite` ([`CryptoFigures::sign_verify_us`]), microseconds.
    pub fn suite_offline_bound_us(&self, suite: Suite) -> Option<f64> {
        self.crypto.map(|c| {
            let (sign, verify) = c.sign_verify_us(suite);
            f64::from(BOUND_SIGNS) * sign + f64::from(BOUND_VERIFIES) * verify
        })
    }

    /// The bound of `o`'s suite plus 4 commits × 2 of `o`'s atomic writes, microseconds.
    pub fn suite_offline_durable_bound_us(&self, o: &OfflineFigures) -> Option<f64> {
        Some(
            self.suite_offline_bound_us(o.suite)?
                + f64::from(COMMITS_PER_PAYMENT * WRITES_PER_COMMIT) * o.atomic_write_us,
        )
    }

    /// Payments per second the issuer could settle if it did nothing but
    /// batch-verify: `verify_batch_per_s × min(threads, cores) / 2`.
    pub fn verify_bound_per_s(&self) -> Option<f64> {
        let usable = self.config.threads.min(self.cores) as f64;
        Some(self.verify_batch_per_s()? * usable / SIGNATURES_PER_PAYMENT)
    }

    /// Payments per second an issuer with wallets of `suite` could settle
    /// if it did nothing but verify: `verify_rate_per_s(suite) ×
    /// min(threads, cores) / 2` (batch verification for Ed25519, single
    /// verification for the suites without a batch equation).
    pub fn suite_verify_bound_per_s(&self, suite: Suite) -> Option<f64> {
        let usable = self.config.threads.min(self.cores) as f64;
        Some(self.crypto?.verify_rate_per_s(suite) * usable / SIGNATURES_PER_PAYMENT)
    }

    /// Every SQLite reconciliation run by suite: the Ed25519 one (part
    /// `sqlite`) first, then the extra suites'.
    fn sqlite_by_suite(&self) -> Vec<(Suite, &Run)> {
        self.sqlite
            .iter()
            .map(|r| (Suite::Ed25519, r))
            .chain(self.suite_runs.iter().map(|(s, r)| (*s, r)))
            .collect()
    }

    fn ratio(&self, run: &Option<Run>) -> Option<f64> {
        Some(run.as_ref()?.payments_per_s / self.verify_bound_per_s()?)
    }

    /// The first reconciliation run that ran.
    fn any_run(&self) -> Option<&Run> {
        self.sqlite
            .as_ref()
            .or(self.postgres.as_ref())
            .or(self.http.as_ref())
    }

    /// The JSON object (schema [`SCHEMA`]).
    #[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed; short names follow the fixtures and formulas
    pub fn to_json(&self) -> Value {
        let c = self.crypto;
        let o = self.offline;
        let s = self.sizes;
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let us = |v: Option<f64>| num(v.map(|x| round(x, 2)));
        let rate = |v: Option<f64>| num(v.map(|x| round(x, 1)));
        let ratio = |v: Option<f64>| num(v.map(|x| round(x, 4)));
        put("schema", json!(SCHEMA));
        put(
            "parameters",
            json!({
                "wallets": self.config.wallets,
                "payments": self.config.payments,
                "threads": self.config.threads,
                "per_round": self.config.per_round,
                "offline_payments": self.config.offline_payments,
                "suite_payments": self.config.suite_payments,
                "parts": self.config.parts.names(),
                "postgres_url": redact(&self.config.postgres_url),
                "temp_dir": self.config.temp_base().display().to_string(),
            }),
        );
        put("machine_cores", json!(self.cores));
        // Crypto.
        put("crypto_message_bytes", json!(crypto::MESSAGE_BYTES));
        put("ed25519_sign_us", us(c.map(|c| c.ed25519_sign_us)));
        put("ed25519_verify_us", us(c.map(|c| c.ed25519_verify_us)));
        put(
            "ed25519_verify_batch_us",
            us(c.map(|c| c.ed25519_verify_batch_us)),
        );
        put("p256_sign_us", us(c.map(|c| c.p256_sign_us)));
        put("p256_verify_us", us(c.map(|c| c.p256_verify_us)));
        put("verify_batch_per_s", rate(self.verify_batch_per_s()));
        put(
            "mldsa44_sign_us",
            us(c.map(|c| c.sign_verify_us(Suite::MlDsa44).0)),
        );
        put(
            "mldsa44_verify_us",
            us(c.map(|c| c.sign_verify_us(Suite::MlDsa44).1)),
        );
        put("crypto_dist_keys", json!(crypto::DIST_KEYS));
        for suite in Suite::ALL {
            let d = c.map(|c| *c.suite(suite));
            let p = prefix(suite);
            put(
                &format!("{p}_dist_samples"),
                json!(d.map(|d| d.sign.samples)),
            );
            for (op, f) in [
                (
                    "sign",
                    (|d: &SuiteCrypto| d.sign) as fn(&SuiteCrypto) -> Dist,
                ),
                ("verify", |d| d.verify),
            ] {
                put(&format!("{p}_{op}_p50_us"), us(d.map(|d| f(&d).p50_us)));
                put(&format!("{p}_{op}_p99_us"), us(d.map(|d| f(&d).p99_us)));
                put(&format!("{p}_{op}_max_us"), us(d.map(|d| f(&d).max_us)));
            }
        }
        // Offline payment.
        put("offline_payments", json!(o.map(|o| o.payments)));
        put("offline_payment_p50_us", us(o.map(|o| o.memory_p50_us)));
        put("offline_payment_p99_us", us(o.map(|o| o.memory_p99_us)));
        put(
            "offline_payment_durable_p50_us",
            us(o.map(|o| o.durable_p50_us)),
        );
        put(
            "offline_payment_durable_p99_us",
            us(o.map(|o| o.durable_p99_us)),
        );
        put("offline_payment_bound_us", us(self.offline_bound_us()));
        put("offline_payment_bound_signs", json!(BOUND_SIGNS));
        put("offline_payment_bound_verifies", json!(BOUND_VERIFIES));
        put("atomic_write_us", us(o.map(|o| o.atomic_write_us)));
        put("offline_payment_commits", json!(COMMITS_PER_PAYMENT));
        put(
            "offline_payment_durable_bound_us",
            us(self.offline_durable_bound_us()),
        );
        put(
            "offline_payment_ratio_to_bound",
            ratio(o.and_then(|o| Some(self.offline_bound_us()? / o.memory_p50_us))),
        );
        put(
            "offline_payment_durable_ratio_to_bound",
            ratio(o.and_then(|o| Some(self.offline_durable_bound_us()? / o.durable_p50_us))),
        );
        put(
            "offline_by_suite",
            Value::Array(
                self.offline_by_suite
                    .iter()
                    .map(|o| {
                        let bound = self.suite_offline_bound_us(o.suite);
                        let dbound = self.suite_offline_durable_bound_us(o);
                        json!({
                            "suite": o.suite.name(),
                            "payments": o.payments,
                            "p50_us": us(Some(o.memory_p50_us)),
                            "p99_us": us(Some(o.memory_p99_us)),
                            "bound_us": us(bound),
                            "ratio_to_bound": ratio(bound.map(|b| b / o.memory_p50_us)),
                            "durable_p50_us": us(Some(o.durable_p50_us)),
                            "durable_p99_us": us(Some(o.durable_p99_us)),
                            "atomic_write_us": us(Some(o.atomic_write_us)),
                            "durable_bound_us": us(dbound),
                            "durable_ratio_to_bound": ratio(dbound.map(|b| b / o.durable_p50_us)),
                        })
                    })
                    .collect(),
            ),
        );
        // Sizes.
        put("request_bytes", json!(s.map(|s| s.request_bytes)));
        put(
            "payment_bytes_with_cert",
            json!(s.map(|s| s.payment_bytes_with_cert)),
        );
        put("payment_bytes", json!(s.map(|s| s.payment_bytes)));
        put("receipt_bytes", json!(s.map(|s| s.receipt_bytes)));
        put("voucher_bytes", json!(s.map(|s| s.voucher_bytes)));
        put("qr_version", json!(s.map(|s| s.qr_version)));
        put(
            "payment_bytes_with_cert_p256",
            json!(s.map(|s| s.payment_bytes_with_cert_p256)),
        );
        put("qr_version_p256", json!(s.map(|s| s.qr_version_p256)));
        put(
            "sizes_by_suite",
            json!(s.map(|s| {
                s
                .by_suite
                .iter()
                .map(|x| {
                    let l = |l: crate::sizes::QrLayout| {
                        json!({"bytes": l.bytes, "qr_version": l.version, "qr_codes": l.codes})
                    };
                    json!({
                        "suite": x.suite,
                        "ca_suite": x.ca_suite,
                        "request": l(x.request),
                        "payment_inline": l(x.payment_inline),
                        "payment_reference": l(x.payment_reference),
                        "receipt": l(x.receipt),
                    })
                })
                .collect::<Vec<_>>()
            })),
        );
        put(
            "sync_report_bytes_per_payment",
            num(self
                .any_run()
                .map(|r| round(r.report_bytes as f64 / self.config.payments as f64, 1))),
        );
        // Reconciliation.
        put("sync_verify_bound_per_s", rate(self.verify_bound_per_s()));
        let mut by_round = Map::new();
        let mut growth = Map::new();
        for (name, run) in [
            ("sqlite", &self.sqlite),
            ("postgres", &self.postgres),
            ("http", &self.http),
        ] {
            let r = run.as_ref();
            put(
                &format!("sync_payments_per_s_{name}"),
                rate(r.map(|r| r.payments_per_s)),
            );
            put(
                &format!("sync_seconds_{name}"),
                num(r.map(|r| round(r.sync_seconds, 3))),
            );
            put(&format!("sync_settled_{name}"), json!(r.map(|r| r.settled)));
            put(
                &format!("sync_ratio_to_verify_bound_{name}"),
                ratio(self.ratio(run)),
            );
            let series =
                |v: &[f64]| -> Value { v.iter().map(|&x| num(Some(round(x, 1)))).collect() };
            by_round.insert(
                name.to_string(),
                r.map_or(Value::Null, |r| series(&r.rss_mib_by_round)),
            );
            growth.insert(
                name.to_string(),
                r.map_or(Value::Null, |r| series(&r.rss_growth_mib_by_round)),
            );
        }
        put("sync_rss_mib_by_round", Value::Object(by_round));
        put("sync_rss_growth_mib_by_round", Value::Object(growth));
        put(
            "sync_peak_rss_mib",
            num(self.peak_rss_mib.map(|x| round(x, 1))),
        );
        put("postgres_skipped", json!(self.postgres_skipped));
        put(
            "sync_by_suite",
            Value::Array(
                self.sqlite_by_suite()
                    .into_iter()
                    .map(|(suite, r)| {
                        let bound = self.suite_verify_bound_per_s(suite);
                        let payments = r.settled as f64;
                        json!({
                            "suite": suite.name(),
                            "backend": "sqlite",
                            "payments": r.settled,
                            "payments_per_s": rate(Some(r.payments_per_s)),
                            "sync_seconds": num(Some(round(r.sync_seconds, 3))),
                            "verify_rate_per_s": rate(self.crypto.map(|c| c.verify_rate_per_s(suite))),
                            "verify_bound_per_s": rate(bound),
                            "ratio_to_verify_bound": ratio(bound.map(|b| r.payments_per_s / b)),
                            "report_bytes_per_payment": num(Some(round(r.report_bytes as f64 / payments, 1))),
                        })
                    })
                    .collect(),
            ),
        );
        // HSM.
        let h = self.hsm.as_ref();
        put("hsm_skipped", json!(self.hsm_skipped));
        put("hsm_module", json!(h.map(|h| h.module.clone())));
        for (i, suite) in [Suite::Ed25519, Suite::P256].into_iter().enumerate() {
            let r = h.map(|h| h.rates[i]);
            let p = prefix(suite);
            put(
                &format!("hsm_{p}_sign_per_s"),
                rate(r.map(|r| r.token_per_s)),
            );
            put(
                &format!("in_process_{p}_sign_per_s"),
                rate(r.map(|r| r.in_process_per_s)),
            );
            put(
                &format!("in_process_{p}_sign_verify_per_s"),
                rate(r.map(|r| r.in_process_verified_per_s)),
            );
            put(
                &format!("hsm_{p}_ratio_to_in_process"),
                ratio(r.map(|r| r.token_per_s / r.in_process_verified_per_s)),
            );
        }
        put("hsm_payments", json!(h.map(|h| h.token_run.settled)));
        put(
            "hsm_sync_payments_per_s",
            rate(h.map(|h| h.token_run.payments_per_s)),
        );
        put(
            "hsm_sealed_sync_payments_per_s",
            rate(h.map(|h| h.sealed_run.payments_per_s)),
        );
        put(
            "hsm_sync_ratio_to_sealed",
            ratio(h.map(|h| h.token_run.payments_per_s / h.sealed_run.payments_per_s)),
        );
        put("hsm_sync_reports", json!(h.map(|h| h.token_run.reports)));
        // Scheme.
        let sc = self.scheme.as_ref();
        let secs = |v: Option<f64>| num(v.map(|x| round(x, 3)));
        put("scheme_claims", json!(sc.map(|r| r.claims)));
        put("scheme_cycles", json!(sc.map(|r| r.cycles)));
        put("scheme_claims_per_s", rate(sc.map(|r| r.claims_per_s)));
        put("scheme_claim_seconds", secs(sc.map(|r| r.claim_seconds)));
        put("scheme_submit_seconds", secs(sc.map(|r| r.submit_seconds)));
        put(
            "scheme_deliver_seconds",
            secs(sc.map(|r| r.deliver_seconds)),
        );
        put("scheme_cycle_seconds", secs(sc.map(|r| r.cycle_seconds)));
        put(
            "scheme_sync_payments_per_s",
            rate(sc.map(|r| r.sync_payments_per_s)),
        );
        put("scheme_sync_seconds", secs(sc.map(|r| r.sync_seconds)));
        put("scheme_sync_settled", json!(sc.map(|r| r.settled)));
        put(
            "scheme_claims_to_sync_ratio",
            ratio(sc.map(|r| r.claims_per_s / r.sync_payments_per_s)),
        );
        Value::Object(m)
    }

    /// The table for people.
    #[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
    pub fn table(&self) -> String {
        let mut t = String::new();
        let f1 = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
        let f2 = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.2}"));
        let f0 = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
        let _ = writeln!(
            t,
            "offpay bench ({SCHEMA}): {} cores; parts: {}",
            self.cores,
            self.config.parts.names().join(", ")
        );
        if let Some(c) = self.crypto {
            let _ = writeln!(
                t,
                "\ncrypto (median per signature, {}-byte message)",
                crypto::MESSAGE_BYTES
            );
            for (name, v) in [
                ("Ed25519 sign", c.ed25519_sign_us),
                ("Ed25519 verify", c.ed25519_verify_us),
                ("Ed25519 batch verify (64)", c.ed25519_verify_batch_us),
                ("P-256 sign", c.p256_sign_us),
                ("P-256 verify", c.p256_verify_us),
            ] {
                let _ = writeln!(t, "  {name:<28} {v:>10.1} µs");
            }
            let _ = writeln!(
                t,
                "  {:<28} {:>10.0} signatures/s (one core)",
                "Ed25519 batch verify rate",
                c.verify_batch_per_s()
            );
            let _ = writeln!(
                t,
                "  each signature timed alone, {} keys, a new message each (µs):",
                crypto::DIST_KEYS
            );
            let _ = writeln!(
                t,
                "  {:<18} {:>8} {:>10} {:>10} {:>10}",
                "", "samples", "median", "p99", "max"
            );
            for d in &c.by_suite {
                for (op, x) in [("sign", d.sign), ("verify", d.verify)] {
                    let _ = writeln!(
                        t,
                        "  {:<18} {:>8} {:>10.1} {:>10.1} {:>10.1}",
                        format!("{} {op}", display(d.suite)),
                        x.samples,
                        x.p50_us,
                        x.p99_us,
                        x.max_us
                    );
                }
            }
        }
        if let Some(o) = self.offline {
            let _ = writeln!(
                t,
                "\noffline payment (request → pay → receive → confirm, {} payments each; wallets and CA of one suite)",
                o.payments
            );
            let _ = writeln!(
                t,
                "  {:<10} {:<13} {:>10} {:>10} {:>12} {:>8}",
                "suite", "vault", "p50 µs", "p99 µs", "bound µs", "ratio"
            );
            for o in &self.offline_by_suite {
                let bound = self.suite_offline_bound_us(o.suite);
                let dbound = self.suite_offline_durable_bound_us(o);
                for (vault, p50, p99, b) in [
                    ("in memory", o.memory_p50_us, o.memory_p99_us, bound),
                    ("sealed, disk", o.durable_p50_us, o.durable_p99_us, dbound),
                ] {
                    let _ = writeln!(
                        t,
                        "  {:<10} {vault:<13} {p50:>10.1} {p99:>10.1} {:>12} {:>8}",
                        display(o.suite),
                        f1(b),
                        f2(b.map(|b| b / p50))
                    );
                }
            }
            let writes: Vec<String> = self
                .offline_by_suite
                .iter()
                .map(|o| format!("{:.1}", o.atomic_write_us))
                .collect();
            let _ = writeln!(
                t,
                "  bound = {BOUND_SIGNS} signs + {BOUND_VERIFIES} verifies of the suite; on disk + {COMMITS_PER_PAYMENT} commits × {WRITES_PER_COMMIT} atomic writes of 4 KiB ({} µs each, per suite's run); ratio = bound / p50",
                writes.join(" / ")
            );
        }
        if let Some(s) = self.sizes {
            let _ = writeln!(t, "\nmessage sizes (bytes)");
            for (name, v) in [
                ("PaymentRequest (cert inline)", s.request_bytes),
                ("Payment (cert inline)", s.payment_bytes_with_cert),
                ("Payment (cert reference)", s.payment_bytes),
                ("Receipt", s.receipt_bytes),
                ("LoadVoucher", s.voucher_bytes),
                (
                    "Payment, P-256 (cert inline)",
                    s.payment_bytes_with_cert_p256,
                ),
            ] {
                let _ = writeln!(t, "  {name:<30} {v:>6}");
            }
            let _ = writeln!(
                t,
                "  QR code (binary, level M): version {} (P-256: {})",
                s.qr_version, s.qr_version_p256
            );
            let _ = writeln!(
                t,
                "  per chain (wallet suite / CA suite): bytes / QR version / codes (one code up to 666 bytes, version 20-M; else multi-part codes, PROTOCOL §14)"
            );
            for x in &s.by_suite {
                for (name, l) in [
                    ("PaymentRequest (cert inline)", x.request),
                    ("Payment (cert inline)", x.payment_inline),
                    ("Payment (cert reference)", x.payment_reference),
                    ("Receipt", x.receipt),
                ] {
                    let _ = writeln!(
                        t,
                        "  {:<19} {name:<30} {:>6} B  v{:<2} x{}",
                        format!("{}/{}", x.suite, x.ca_suite),
                        l.bytes,
                        l.version,
                        l.codes
                    );
                }
            }
        }
        if self.config.parts.reconcile() {
            let _ = writeln!(
                t,
                "\nreconciliation ({} wallets, {} payments, {} per wallet between syncs, {} threads)",
                self.config.wallets,
                self.config.payments,
                self.config.per_round,
                self.config.threads
            );
            let _ = writeln!(
                t,
                "  {:<9} {:>11} {:>7} {:>9} {:>9}  RSS MiB after each round (+ added by its syncs)",
                "backend", "payments/s", "ratio", "settled", "sync s"
            );
            for (name, run) in [
                ("sqlite", &self.sqlite),
                ("postgres", &self.postgres),
                ("http", &self.http),
            ] {
                match run {
                    Some(r) => {
                        let rss: Vec<String> = r
                            .rss_mib_by_round
                            .iter()
                            .zip(&r.rss_growth_mib_by_round)
                            .map(|(x, g)| format!("{x:.0} ({g:+.0})"))
                            .collect();
                        let _ = writeln!(
                            t,
                            "  {name:<9} {:>11.0} {:>7} {:>9} {:>9.2}  {}",
                            r.payments_per_s,
                            f2(self.ratio(run)),
                            r.settled,
                            r.sync_seconds,
                            rss.join(" ")
                        );
                    }
                    None if name == "postgres" && self.postgres_skipped.is_some() => {
                        let _ = writeln!(
                            t,
                            "  {name:<9} skipped: {}",
                            self.postgres_skipped.as_deref().unwrap_or("")
                        );
                    }
                    None => {}
                }
            }
            let _ = writeln!(
                t,
                "  bound: {} signatures/s × min({}, {} cores) / 2 = {} payments/s; ratio = payments/s / bound",
                f0(self.verify_batch_per_s()),
                self.config.threads,
                self.cores,
                f0(self.verify_bound_per_s())
            );
            if let Some(r) = self.any_run() {
                let _ = writeln!(
                    t,
                    "  sync reports: {:.0} bytes per payment (each payment is in two reports)",
                    r.report_bytes as f64 / self.config.payments as f64
                );
            }
            let _ = writeln!(t, "  peak RSS: {} MiB", f0(self.peak_rss_mib));
        }
        let by_suite = self.sqlite_by_suite();
        if !self.suite_runs.is_empty() {
            let _ = writeln!(
                t,
                "\nreconciliation per suite (SQLite file; wallets and CA of one suite; {} wallets, {} threads)",
                self.config.wallets, self.config.threads
            );
            let _ = writeln!(
                t,
                "  {:<10} {:>9} {:>11} {:>14} {:>11} {:>7} {:>12}",
                "suite",
                "payments",
                "payments/s",
                "verify/s/core",
                "bound",
                "ratio",
                "report B/pay"
            );
            for (suite, r) in &by_suite {
                let bound = self.suite_verify_bound_per_s(*suite);
                let _ = writeln!(
                    t,
                    "  {:<10} {:>9} {:>11.0} {:>14} {:>11} {:>7} {:>12.0}",
                    display(*suite),
                    r.settled,
                    r.payments_per_s,
                    f0(self.crypto.map(|c| c.verify_rate_per_s(*suite))),
                    f0(bound),
                    f2(bound.map(|b| r.payments_per_s / b)),
                    r.report_bytes as f64 / r.settled.max(1) as f64
                );
            }
            let _ = writeln!(
                t,
                "  bound = verify/s/core × min({}, {} cores) / 2; verify/s/core: Ed25519 batch verification, P-256 and ML-DSA-44 single verification (no batch equation)",
                self.config.threads, self.cores
            );
        }
        if let Some(why) = &self.hsm_skipped {
            let _ = writeln!(t, "\nHSM: skipped: {why}");
        }
        if let Some(h) = &self.hsm {
            let _ = writeln!(
                t,
                "\nHSM ({}; a fresh token in a private directory)",
                h.module
            );
            let _ = writeln!(
                t,
                "  {:<9} {:>12} {:>12} {:>16} {:>7}",
                "signing", "token /s", "in process", "+ verify (bound)", "ratio"
            );
            for r in &h.rates {
                let _ = writeln!(
                    t,
                    "  {:<9} {:>12.0} {:>12.0} {:>16.0} {:>7.2}",
                    display(r.suite),
                    r.token_per_s,
                    r.in_process_per_s,
                    r.in_process_verified_per_s,
                    r.token_per_s / r.in_process_verified_per_s
                );
            }
            let _ = writeln!(
                t,
                "  the token path verifies each signature before releasing it: its bound is in-process sign + verify; ratio = token / bound"
            );
            let _ = writeln!(
                t,
                "  reconciliation, SQLite, Ed25519, {} payments, {} reports: CA keys in the token {:.0} payments/s, sealed in process {:.0}; ratio {:.2}",
                h.token_run.settled,
                h.token_run.reports,
                h.token_run.payments_per_s,
                h.sealed_run.payments_per_s,
                h.token_run.payments_per_s / h.sealed_run.payments_per_s
            );
        }
        if let Some(r) = &self.scheme {
            let _ = writeln!(
                t,
                "\nscheme (a scheme and two member issuers on SQLite; {} wallets, {} cross-issuer payments, {} cycles)",
                r.wallets, r.claims, r.cycles
            );
            let _ = writeln!(t, "  {:<44} {:>10} {:>9}", "", "per s", "seconds");
            let _ = writeln!(
                t,
                "  {:<44} {:>10.0} {:>9.2}",
                "payee issuer's syncs (payments settled)", r.sync_payments_per_s, r.sync_seconds
            );
            let _ = writeln!(
                t,
                "  {:<44} {:>10.0} {:>9.2}",
                "claims through the scheme", r.claims_per_s, r.claim_seconds
            );
            for (name, v) in [
                ("  submit (payee issuer -> scheme)", r.submit_seconds),
                (
                    "  deliver (inbox, apply at payer's, ack)",
                    r.deliver_seconds,
                ),
                ("  cycle close + statements posted", r.cycle_seconds),
            ] {
                let _ = writeln!(t, "  {name:<44} {:>10.0} {v:>9.2}", r.claims as f64 / v);
            }
            let _ = writeln!(
                t,
                "  claims/s ÷ syncs' payments/s = {:.2}",
                r.claims_per_s / r.sync_payments_per_s
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Parts;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=h user=u"), "host=h user=u");
    }

    #[test]
    fn an_empty_report_has_every_field_as_null() {
        let config = BenchConfig {
            parts: Parts::parse("sizes").unwrap(),
            ..BenchConfig::default()
        };
        let v = Report::new(&config).to_json();
        assert_eq!(v["schema"], SCHEMA);
        for f in REQUIRED_FIELDS {
            assert!(v.get(f).is_some_and(Value::is_null), "{f}: {v}");
        }
        assert_eq!(v["parameters"]["parts"], json!(["sizes"]));
        assert!(!Report::new(&config).table().is_empty());
    }
}
