//! offpay-bench: measure offpay's performance, each figure next to the bound
//! it is held against, measured in the same run (`offpay bench`).
//!
//! One run measures, in this order:
//!
//! 1. **Crypto bound** ([`crypto`]): Ed25519 sign, verify and batch verify
//!    (64 signatures) and P-256 sign and verify, per signature, through
//!    offpay-protocol's own keys and `verify_batch`: the median over about
//!    0.3 s per figure, on a 300-byte message (about a payment's COSE
//!    Sig_structure). Then for each suite (Ed25519, P-256, ML-DSA-44) every
//!    signature timed alone, over 16 keys and a new message each (about
//!    0.6 s of signing per suite, at least 200 signatures), and each of those
//!    signatures verified once, timed alone: median, p99 and maximum.
//!    ML-DSA signing is rejection-sampled (the tries depend on key and
//!    message) and its verification varies with the signature, so one
//!    repeated message would hide the tail. ML-DSA-44's bounds use these
//!    medians; Ed25519's and P-256's the batched medians above.
//! 2. **Offline payment** ([`offline`]): two wallets in one process,
//!    request → pay → receive → confirm, each payment timed; the vault in
//!    memory, then sealed on disk (real fsync; fast Argon2 parameters, which
//!    only matter when a vault is opened). Held against
//!    `3 × sign + 3 × verify` (the payee signs the request and the receipt,
//!    the payer the payment; the payer verifies the request and the receipt,
//!    the payee the payment; certificates are cached after the first
//!    payment) and, on disk, that plus 4 commits × 2 atomic writes. Once per
//!    suite (wallets and issuer CA of one suite: Ed25519, P-256, ML-DSA-44),
//!    each against its own suite's bound.
//! 3. **Message sizes** ([`sizes`]): the first payment of a fresh wallet,
//!    12.50 EUR, as in docs/PROTOCOL.md §10; per chain (the three pure
//!    suites, ML-DSA-44 wallets under an Ed25519 CA, Ed25519 wallets under
//!    an ML-DSA-44 CA) each QR-carried message really encoded: one code up
//!    to 666 bytes (version 20-M), else multi-part codes (PROTOCOL §14),
//!    with its QR version and code count.
//! 4. **Reconciliation** ([`reconcile`]): `wallets` wallets make `payments`
//!    payments among themselves in rounds; after each round every wallet
//!    syncs, so each payment is reported twice. Only the syncs are timed, on
//!    `threads` threads, on a SQLite file, on PostgreSQL (skipped when it does
//!    not answer) and over HTTP to the real server in this process. Held
//!    against the batch-verify bound `verify_batch_per_s × min(threads,
//!    cores) / 2`. Every run checks the ledger invariants, that every payment
//!    settled exactly once and that the issuer agrees with every wallet's
//!    balance.
//! 5. **Scheme** ([`scheme`]): a scheme and two member issuers (SQLite
//!    files), `wallets / 2` payers at bank A paying `wallets / 2` payees at
//!    bank B, `payments` payments in rounds; timed separately: bank B's payee
//!    syncs (one issuer's sync throughput) and the claims' way through the
//!    scheme (submit, inbox, apply at the payer's issuer, ack, cycle close,
//!    statements posted at both). Checks every claim once, positions summing
//!    to zero and all three ledgers' invariants.
//! 6. **Suites** ([`reconcile::sqlite_suite`]): the reconciliation run on a
//!    SQLite file with P-256 wallets and CA, then ML-DSA-44 ones,
//!    `suite_payments` payments each (fewer than the Ed25519 runs: a P-256
//!    or ML-DSA-44 payment costs more, an ML-DSA-44 report ~12 times the
//!    bytes). Held against that suite's verify bound: `verify rate × min(threads,
//!    cores) / 2`, the verify rate being single verification (`1e6 /
//!    verify median`) for these suites, which have no batch equation.
//! 7. **HSM** ([`hsm`]): only when the PKCS#11 module is found
//!    (`$OFFPAY_HSM_MODULE`, else `/usr/lib/softhsm/libsofthsm2.so`; else
//!    `null` and the reason). A fresh SoftHSM2 token in a private directory
//!    (`SOFTHSM2_CONF` set at the start of the run, while the process has
//!    one thread). Ed25519 and P-256 signatures per second through the
//!    token (offpay-hsm verifies each before releasing it) next to in
//!    process, sign alone and sign + verify (the token path's bound); then
//!    the Ed25519 reconciliation run on SQLite (`suite_payments` payments)
//!    with the issuer's root and CA keys in the token (each report's
//!    SyncResponse is signed there, through one session) next to the same
//!    run with the sealed in-process keys.
//!
//! # JSON report (schema `offpay-bench/1`)
//!
//! [`Report::to_json`] gives one object; every figure that was not measured
//! (a part left out with `only`, PostgreSQL not answering) is `null`. Times
//! are microseconds (`_us`) or seconds (`_seconds`), rates per second
//! (`_per_s`), memory MiB (`_mib`), sizes bytes (`_bytes`).
//!
//! | field | unit | meaning |
//! | --- | --- | --- |
//! | `schema` | | `"offpay-bench/1"` |
//! | `parameters` | | `wallets`, `payments`, `threads`, `per_round`, `offline_payments`, `suite_payments`, `parts`, `postgres_url` (password redacted), `temp_dir` |
//! | `machine_cores` | | cores this process may use |
//! | `crypto_message_bytes` | bytes | size of each signed message |
//! | `ed25519_sign_us`, `ed25519_verify_us` | µs | one Ed25519 signature, median |
//! | `ed25519_verify_batch_us` | µs | per signature, in batches of 64 |
//! | `p256_sign_us`, `p256_verify_us` | µs | one ECDSA P-256 signature, median |
//! | `verify_batch_per_s` | 1/s | Ed25519 signatures batch-verified per second on one core (`1e6 / ed25519_verify_batch_us`) |
//! | `mldsa44_sign_us`, `mldsa44_verify_us` | µs | one ML-DSA-44 signature / verification: the median of the single-signature timings (= `mldsa44_sign_p50_us`, `mldsa44_verify_p50_us`) |
//! | `crypto_dist_keys` | | keys the single-signature timings go round (16) |
//! | `S_dist_samples` | | signatures timed alone for suite `S` (`ed25519`, `p256`, `mldsa44`), each over a new message; each verified once |
//! | `S_sign_p50_us`, `S_sign_p99_us`, `S_sign_max_us` | µs | one signature of suite `S`, timed alone: median, 99th percentile, maximum |
//! | `S_verify_p50_us`, `S_verify_p99_us`, `S_verify_max_us` | µs | the same for verifying those signatures |
//! | `offline_payments` | | payments timed per variant |
//! | `offline_payment_p50_us`, `offline_payment_p99_us` | µs | one payment, vault in memory |
//! | `offline_payment_durable_p50_us`, `offline_payment_durable_p99_us` | µs | one payment, sealed vaults on disk |
//! | `offline_payment_bound_us` | µs | `3 × ed25519_sign_us + 3 × ed25519_verify_us` |
//! | `offline_payment_bound_signs`, `offline_payment_bound_verifies` | | 3 and 3 |
//! | `atomic_write_us` | µs | one atomic durable write of 4 KiB in the vaults' directory (tmp, fsync, rename, fsync dir), median of 50 spread over the on-disk payments |
//! | `offline_payment_commits` | | 4 (request, pay, receive, confirm), 2 atomic writes each |
//! | `offline_payment_durable_bound_us` | µs | `offline_payment_bound_us + 4 × 2 × atomic_write_us` |
//! | `offline_payment_ratio_to_bound` | | `offline_payment_bound_us / offline_payment_p50_us` (1 = at the bound) |
//! | `offline_payment_durable_ratio_to_bound` | | `offline_payment_durable_bound_us / offline_payment_durable_p50_us` |
//! | `offline_by_suite` | | one object per suite (`ed25519`, `p256`, `ml-dsa-44`; wallets and CA of that suite): `suite`, `payments`, `p50_us`, `p99_us`, `bound_us` (`3 × sign + 3 × verify` of the suite), `ratio_to_bound`, `durable_p50_us`, `durable_p99_us`, `atomic_write_us`, `durable_bound_us`, `durable_ratio_to_bound`; the first is the same run as the `offline_payment_*` fields |
//! | `request_bytes` | bytes | PaymentRequest, payee certificate inline |
//! | `payment_bytes_with_cert` | bytes | Payment, payer certificate inline (what wallets send) |
//! | `payment_bytes` | bytes | Payment with a certificate reference |
//! | `receipt_bytes`, `voucher_bytes` | bytes | Receipt, LoadVoucher |
//! | `qr_version` | | smallest QR version for `payment_bytes_with_cert` (binary, level M) |
//! | `payment_bytes_with_cert_p256`, `qr_version_p256` | bytes, version | the same in a P-256 scheme (varies by a byte or two: DER ECDSA signatures in certificates) |
//! | `sizes_by_suite` | | one object per chain: `suite` (the wallets'), `ca_suite` (the issuer CA's), and for `request`, `payment_inline`, `payment_reference`, `receipt` each `{bytes, qr_version, qr_codes}` (`qr_codes` 1: one code; more: multi-part codes, all of version `qr_version`). Chains in order: ed25519/ed25519, p256/p256, ml-dsa-44/ml-dsa-44, ml-dsa-44/ed25519, ed25519/ml-dsa-44 |
//! | `sync_report_bytes_per_payment` | bytes | sync report bytes per payment (each payment is in two reports) |
//! | `sync_payments_per_s_sqlite`, `_postgres`, `_http` | 1/s | payments settled per second of sync time |
//! | `sync_seconds_sqlite`, `_postgres`, `_http` | s | time spent in syncs |
//! | `sync_settled_sqlite`, `_postgres`, `_http` | | payments settled (always `payments`) |
//! | `sync_verify_bound_per_s` | 1/s | `verify_batch_per_s × min(threads, machine_cores) / 2` |
//! | `sync_ratio_to_verify_bound_sqlite`, `_postgres`, `_http` | | `sync_payments_per_s_X / sync_verify_bound_per_s` |
//! | `sync_rss_mib_by_round` | MiB | `{"sqlite": [...], "postgres": [...], "http": [...]}`: this process's RSS after each round |
//! | `sync_rss_growth_mib_by_round` | MiB | the same shape: what each round's syncs added to the RSS (after minus before) |
//! | `sync_peak_rss_mib` | MiB | this process's peak RSS: the larger of VmHWM at the end of the reconciliation runs and every RSS sample |
//! | `postgres_skipped` | | why PostgreSQL was skipped, else `null` |
//! | `sync_by_suite` | | one object per SQLite reconciliation run by suite (the Ed25519 run of part `sqlite` first, then part `suites`' P-256 and ML-DSA-44): `suite`, `backend`, `payments` (settled), `payments_per_s`, `sync_seconds`, `verify_rate_per_s` (one core: Ed25519 batch, others single verify), `verify_bound_per_s` (`verify_rate_per_s × min(threads, cores) / 2`), `ratio_to_verify_bound`, `report_bytes_per_payment` |
//! | `hsm_skipped` | | why the HSM part did not run (module missing), else `null` |
//! | `hsm_module` | | the PKCS#11 module's path |
//! | `hsm_S_sign_per_s` | 1/s | signatures through the token, suite `S` (`ed25519`, `p256`), verified before release as offpay-hsm does |
//! | `in_process_S_sign_per_s`, `in_process_S_sign_verify_per_s` | 1/s | the same key in process: sign alone; sign then verify (the token path's bound) |
//! | `hsm_S_ratio_to_in_process` | | `hsm_S_sign_per_s / in_process_S_sign_verify_per_s` |
//! | `hsm_payments`, `hsm_sync_reports` | | payments settled (= `suite_payments`) and reports of the token-keyed run |
//! | `hsm_sync_payments_per_s` | 1/s | Ed25519 reconciliation on SQLite, issuer root and CA keys in the token |
//! | `hsm_sealed_sync_payments_per_s` | 1/s | the same run, sealed in-process CA keys |
//! | `hsm_sync_ratio_to_sealed` | | `hsm_sync_payments_per_s / hsm_sealed_sync_payments_per_s` |
//! | `scheme_claims_per_s` | 1/s | claims carried per second of claim time (submit + deliver + cycle + statements) |
//! | `scheme_claims`, `scheme_cycles` | | claims carried (= payments), cycles closed (one per round) |
//! | `scheme_claim_seconds` | s | claim time; of which `scheme_submit_seconds`, `scheme_deliver_seconds`, `scheme_cycle_seconds` |
//! | `scheme_sync_payments_per_s` | 1/s | payments settled per second of the payee issuer's syncs, same run |
//! | `scheme_sync_seconds`, `scheme_sync_settled` | s, | those syncs' time and payments settled (= payments) |
//! | `scheme_claims_to_sync_ratio` | | `scheme_claims_per_s / scheme_sync_payments_per_s` |
// One unsafe call: pointing SOFTHSM2_CONF at the HSM part's private token
// directory while the process has one thread (`hsm::TokenDir`).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod hsm;
pub mod offline;
pub mod reconcile;
mod report;
pub mod scheme;
pub mod setup;
pub mod sizes;
pub mod stats;
pub mod sys;

use std::fmt;
use std::path::PathBuf;

use offpay_protocol::Suite;

pub use crate::report::{REQUIRED_FIELDS, Report, SCHEMA};

/// Default wallets of the reconciliation runs.
pub const WALLETS_DEFAULT: usize = 1_000;
/// Default payments of the reconciliation runs.
pub const PAYMENTS_DEFAULT: usize = 100_000;
/// Default sync threads.
pub const THREADS_DEFAULT: usize = 2;
/// Default payments each wallet takes part in between two syncs.
pub const PER_ROUND_DEFAULT: usize = 50;
/// Default payments of each extra-suite reconciliation run (part `suites`):
/// fewer than the Ed25519 runs, as a P-256 or ML-DSA-44 payment costs the
/// issuer several times more and an ML-DSA-44 report ~12 times the bytes.
pub const SUITE_PAYMENTS_DEFAULT: usize = 10_000;
/// Default payments timed in the offline part.
pub const OFFLINE_PAYMENTS_DEFAULT: usize = 1_000;
/// PostgreSQL used when none is given (`--postgres`, `OFFPAY_TEST_POSTGRES_URL`).
pub const POSTGRES_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Most wallets.
pub const WALLETS_MAX: usize = 100_000;
/// Most payments.
pub const PAYMENTS_MAX: usize = 10_000_000;
/// Most threads.
pub const THREADS_MAX: usize = 256;
/// Most payments per wallet between two syncs (well inside the policy's log limit).
pub const PER_ROUND_MAX: usize = 1_000;
/// Fewest offline payments timed (a p99 needs some).
pub const OFFLINE_PAYMENTS_MIN: usize = 10;
/// Most offline payments timed.
pub const OFFLINE_PAYMENTS_MAX: usize = 100_000;

/// The parts of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Signature costs.
    pub crypto: bool,
    /// Offline payment latency.
    pub offline: bool,
    /// Message sizes.
    pub sizes: bool,
    /// Reconciliation on a SQLite file.
    pub sqlite: bool,
    /// Reconciliation on PostgreSQL.
    pub postgres: bool,
    /// Reconciliation over HTTP.
    pub http: bool,
    /// Claims through a scheme of two issuers, next to one issuer's syncs.
    pub scheme: bool,
    /// Reconciliation of P-256 and ML-DSA-44 wallets (SQLite file), each
    /// against its own suite's verify bound.
    pub suites: bool,
    /// CA keys in a PKCS#11 token (SoftHSM2) against keys in process.
    pub hsm: bool,
}

impl Parts {
    /// The names, in run order.
    pub const NAMES: [&'static str; 9] = [
        "crypto", "offline", "sizes", "sqlite", "postgres", "http", "scheme", "suites", "hsm",
    ];

    /// Everything.
    pub const fn all() -> Parts {
        Parts {
            crypto: true,
            offline: true,
            sizes: true,
            sqlite: true,
            postgres: true,
            http: true,
            scheme: true,
            suites: true,
            hsm: true,
        }
    }

    /// A comma-separated list of part names, e.g. `crypto,sizes,sqlite`.
    pub fn parse(list: &str) -> Result<Parts, String> {
        let mut p = Parts {
            crypto: false,
            offline: false,
            sizes: false,
            sqlite: false,
            postgres: false,
            http: false,
            scheme: false,
            suites: false,
            hsm: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "crypto" => p.crypto = true,
                "offline" => p.offline = true,
                "sizes" => p.sizes = true,
                "sqlite" => p.sqlite = true,
                "postgres" => p.postgres = true,
                "http" => p.http = true,
                "scheme" => p.scheme = true,
                "suites" => p.suites = true,
                "hsm" => p.hsm = true,
                "reconcile" => {
                    p.sqlite = true;
                    p.postgres = true;
                    p.http = true;
                }
                other => {
                    return Err(format!(
                        "unknown part {other:?} (parts: {}, reconcile)",
                        Parts::NAMES.join(", ")
                    ));
                }
            }
        }
        Ok(p)
    }

    /// The names of the parts selected.
    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.crypto,
            self.offline,
            self.sizes,
            self.sqlite,
            self.postgres,
            self.http,
            self.scheme,
            self.suites,
            self.hsm,
        ];
        Parts::NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether any reconciliation run is selected.
    pub fn reconcile(&self) -> bool {
        self.sqlite || self.postgres || self.http
    }

    /// The crypto figures are measured when asked for and whenever a part
    /// held against them runs (offline payment, reconciliation).
    pub fn needs_crypto(&self) -> bool {
        self.crypto || self.offline || self.reconcile() || self.suites
    }
}

impl Default for Parts {
    fn default() -> Self {
        Parts::all()
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchConfig {
    /// Wallets of the reconciliation runs (2 to [`WALLETS_MAX`]).
    pub wallets: usize,
    /// Payments of the reconciliation runs (1 to [`PAYMENTS_MAX`]).
    pub payments: usize,
    /// Sync threads (1 to [`THREADS_MAX`]).
    pub threads: usize,
    /// Payments each wallet takes part in between two syncs, on average (2 to [`PER_ROUND_MAX`]).
    pub per_round: usize,
    /// Payments timed per offline variant.
    pub offline_payments: usize,
    /// Payments of each extra-suite reconciliation run (1 to [`PAYMENTS_MAX`]).
    pub suite_payments: usize,
    /// The parts to run.
    pub parts: Parts,
    /// PostgreSQL URL.
    pub postgres_url: String,
    /// Fail (instead of skipping) when PostgreSQL does not answer.
    pub require_postgres: bool,
    /// Where the temporary directories go (`None`: the system's temporary directory).
    pub temp_dir: Option<PathBuf>,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            wallets: WALLETS_DEFAULT,
            payments: PAYMENTS_DEFAULT,
            threads: THREADS_DEFAULT,
            per_round: PER_ROUND_DEFAULT,
            offline_payments: OFFLINE_PAYMENTS_DEFAULT,
            suite_payments: SUITE_PAYMENTS_DEFAULT,
            parts: Parts::all(),
            postgres_url: POSTGRES_URL_DEFAULT.into(),
            require_postgres: false,
            temp_dir: None,
        }
    }
}

impl BenchConfig {
    /// Check every parameter; the message says which and why.
    pub fn validate(&self) -> Result<(), String> {
        let range = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!("{name} must be {lo} to {hi}, not {v}"))
            }
        };
        range("wallets", self.wallets, 2, WALLETS_MAX)?;
        range("payments", self.payments, 1, PAYMENTS_MAX)?;
        range("suite-payments", self.suite_payments, 1, PAYMENTS_MAX)?;
        range("threads", self.threads, 1, THREADS_MAX)?;
        range("per-round", self.per_round, 2, PER_ROUND_MAX)?;
        range(
            "offline-payments",
            self.offline_payments,
            OFFLINE_PAYMENTS_MIN,
            OFFLINE_PAYMENTS_MAX,
        )?;
        if self.parts.names().is_empty() {
            return Err("no part selected".into());
        }
        if self.parts.postgres {
            self.postgres_url
                .parse::<postgres::Config>()
                .map_err(|e| format!("PostgreSQL URL: {e}"))?;
        }
        if let Some(d) = &self.temp_dir
            && !d.is_dir()
        {
            return Err(format!("{} is not a directory", d.display()));
        }
        Ok(())
    }

    /// The directory temporary directories are made in.
    pub fn temp_base(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The extra suites' reconciliation parameters: [`BenchConfig::suite_payments`] payments.
    pub fn suite_params(&self) -> reconcile::Params {
        reconcile::Params {
            payments: self.suite_payments,
            ..self.reconcile_params()
        }
    }

    /// The reconciliation parameters.
    pub fn reconcile_params(&self) -> reconcile::Params {
        reconcile::Params {
            wallets: self.wallets,
            payments: self.payments,
            threads: self.threads,
            per_round: self.per_round,
        }
    }
}

/// Why a run did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BenchError {
    /// A parameter is wrong.
    Config(String),
    /// Something failed or a correctness check did not hold.
    Failed(String),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Config(m) => write!(f, "{m}"),
            BenchError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// Run the selected parts; `progress` hears one line per step.
pub fn run(config: &BenchConfig, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    config.validate().map_err(BenchError::Config)?;
    let base = config.temp_base();
    let mut report = Report::new(config);
    let failed = BenchError::Failed;
    // The token directory first: SOFTHSM2_CONF is set while this process
    // has one thread.
    let token_dir = if config.parts.hsm {
        match hsm::unavailable().map_or_else(|| hsm::TokenDir::new(&base), Err) {
            Ok(d) => Some(d),
            Err(why) => {
                progress(&format!("hsm: skipped: {why}"));
                report.hsm_skipped = Some(why);
                None
            }
        }
    } else {
        None
    };
    if config.parts.needs_crypto() {
        progress(
            "crypto: Ed25519 and P-256 sign and verify, Ed25519 batch verify; each suite's single signatures over many keys and messages (ML-DSA-44 too)",
        );
        report.crypto = Some(crypto::measure().map_err(failed)?);
    }
    if config.parts.offline {
        progress(&format!(
            "offline: {} payments in memory, then {} on disk, for each of Ed25519, P-256, ML-DSA-44",
            config.offline_payments, config.offline_payments
        ));
        report.offline_by_suite =
            offline::measure_all(config.offline_payments, &base).map_err(failed)?;
        report.offline = report.offline_by_suite.first().copied();
    }
    if config.parts.sizes {
        progress("sizes: request, payment, receipt, voucher");
        report.sizes = Some(sizes::measure().map_err(failed)?);
    }
    let p = config.reconcile_params();
    if config.parts.sqlite {
        report.sqlite = Some(reconcile::sqlite(&p, &base, progress).map_err(failed)?);
    }
    if config.parts.postgres {
        match reconcile::postgres(&config.postgres_url, config.require_postgres, &p, progress)
            .map_err(failed)?
        {
            reconcile::Postgres::Ran(r) => report.postgres = Some(r),
            reconcile::Postgres::Skipped(why) => {
                progress(&format!("postgres: skipped: {why}"));
                report.postgres_skipped = Some(why);
            }
        }
    }
    if config.parts.http {
        report.http = Some(reconcile::http(&p, &base, progress).map_err(failed)?);
    }
    if config.parts.suites {
        let sp = config.suite_params();
        for suite in [Suite::P256, Suite::MlDsa44] {
            let label = format!("sqlite {suite}");
            progress(&format!(
                "{label}: {} payments among {} {suite} wallets (CA {suite}), SQLite file",
                sp.payments, sp.wallets
            ));
            let run =
                reconcile::sqlite_suite(suite, &sp, &base, &label, progress).map_err(failed)?;
            report.suite_runs.push((suite, run));
        }
    }
    if config.parts.scheme {
        progress(&format!(
            "scheme: {} cross-issuer payments, {} wallets, through a scheme of two issuers",
            config.payments, config.wallets
        ));
        report.scheme = Some(
            scheme::measure(config.wallets, config.payments, &base, progress).map_err(failed)?,
        );
    }
    if token_dir.is_some() {
        report.hsm = Some(hsm::measure(&config.suite_params(), &base, progress).map_err(failed)?);
    }
    drop(token_dir);
    if config.parts.reconcile() || config.parts.suites {
        // VmHWM is only updated now and then by the kernel: take the larger
        // of it and every RSS sample.
        let samples = [&report.sqlite, &report.postgres, &report.http]
            .into_iter()
            .flatten()
            .chain(report.suite_runs.iter().map(|(_, r)| r))
            .flat_map(|r| r.rss_mib_by_round.iter().copied());
        report.peak_rss_mib =
            sys::rss_mib().map(|(rss, hwm)| samples.chain([rss, hwm]).fold(f64::NAN, f64::max));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_parse_and_name() {
        assert_eq!(
            Parts::parse("crypto,sizes").unwrap().names(),
            ["crypto", "sizes"]
        );
        assert_eq!(
            Parts::parse("reconcile").unwrap().names(),
            ["sqlite", "postgres", "http"]
        );
        assert!(Parts::parse("crypto,warp").unwrap_err().contains("warp"));
        assert!(Parts::parse("").is_err());
        assert_eq!(Parts::all().names().len(), 9);
        assert!(Parts::parse("suites").unwrap().needs_crypto());
        assert_eq!(Parts::parse("scheme").unwrap().names(), ["scheme"]);
        assert!(Parts::parse("offline").unwrap().needs_crypto());
        assert!(!Parts::parse("sizes").unwrap().needs_crypto());
    }

    #[test]
    fn validation_names_the_parameter() {
        assert_eq!(BenchConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut BenchConfig)| {
            let mut c = BenchConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.wallets = 1).contains("wallets"));
        assert!(bad(|c| c.threads = 0).contains("threads"));
        assert!(bad(|c| c.payments = 0).contains("payments"));
        assert!(bad(|c| c.suite_payments = 0).contains("suite-payments"));
        assert!(bad(|c| c.per_round = 1).contains("per-round"));
        assert!(bad(|c| c.offline_payments = 3).contains("offline-payments"));
        assert!(bad(|c| c.postgres_url = "postgres://:@:99999999/x".into()).contains("PostgreSQL"));
        assert!(bad(|c| c.temp_dir = Some("/nonexistent/offpay".into())).contains("directory"));
    }

    #[test]
    fn rounds_cover_every_payment() {
        let p = reconcile::Params {
            wallets: 1000,
            payments: 100_000,
            threads: 2,
            per_round: 50,
        };
        assert_eq!((p.payments_per_round(), p.rounds()), (25_000, 4));
        let p = reconcile::Params {
            wallets: 2,
            payments: 7,
            threads: 1,
            per_round: 2,
        };
        assert_eq!((p.payments_per_round(), p.rounds()), (2, 4));
    }
}
