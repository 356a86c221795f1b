//! `offpay bench`: crypto bounds, offline payment latency, message sizes,
//! reconciliation throughput (SQLite, PostgreSQL, HTTP, per suite), claims
//! through a scheme and CA keys in an HSM in one run, each
//! figure next to the bound measured in the same run ([`offpay_bench`]).
//! Progress goes to stderr; the table (or with `--json` one object, schema
//! `offpay-bench/1`) to stdout.

use std::path::PathBuf;

use clap::Args;
use offpay_bench::{BenchConfig, BenchError, Parts};

use crate::out::{Done, Failure, Outcome};

/// Environment variable naming the PostgreSQL server (as in the store's tests).
const POSTGRES_ENV: &str = "OFFPAY_TEST_POSTGRES_URL";

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    /// Wallets of the reconciliation runs.
    #[arg(long, default_value_t = offpay_bench::WALLETS_DEFAULT)]
    wallets: usize,
    /// Payments of the reconciliation runs.
    #[arg(long, default_value_t = offpay_bench::PAYMENTS_DEFAULT)]
    payments: usize,
    /// Sync worker threads (and HTTP client connections).
    #[arg(long, default_value_t = offpay_bench::THREADS_DEFAULT)]
    threads: usize,
    /// Payments each wallet takes part in between two syncs, on average.
    #[arg(long, value_name = "N", default_value_t = offpay_bench::PER_ROUND_DEFAULT)]
    per_round: usize,
    /// Payments timed in each offline variant (memory, disk).
    #[arg(long, value_name = "N", default_value_t = offpay_bench::OFFLINE_PAYMENTS_DEFAULT)]
    offline_payments: usize,
    /// Payments of each extra-suite reconciliation run (part suites:
    /// P-256 and ML-DSA-44 wallets on SQLite) and of each run of part hsm.
    #[arg(long, value_name = "N", default_value_t = offpay_bench::SUITE_PAYMENTS_DEFAULT)]
    suite_payments: usize,
    /// Parts to run, comma-separated: crypto, offline, sizes, sqlite,
    /// postgres, http (reconcile = these three), scheme, suites, hsm
    /// (skipped, saying why, when no PKCS#11 module is found). Default: all.
    #[arg(long, value_name = "PARTS")]
    only: Option<String>,
    /// PostgreSQL server (default: $OFFPAY_TEST_POSTGRES_URL, else
    /// postgres://postgres@127.0.0.1:5432/test). A fresh schema is made and dropped.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Fail when PostgreSQL does not answer (default: skip it and say why).
    #[arg(long)]
    require_postgres: bool,
    /// Make the temporary directories (sealed vaults, SQLite files) in DIR.
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
}

pub(crate) fn run(a: BenchArgs) -> Outcome {
    let parts = match &a.only {
        Some(list) => Parts::parse(list).map_err(Failure::usage)?,
        None => Parts::all(),
    };
    let postgres_url = a
        .postgres
        .or_else(|| std::env::var(POSTGRES_ENV).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| offpay_bench::POSTGRES_URL_DEFAULT.into());
    let config = BenchConfig {
        wallets: a.wallets,
        payments: a.payments,
        threads: a.threads,
        per_round: a.per_round,
        offline_payments: a.offline_payments,
        suite_payments: a.suite_payments,
        parts,
        postgres_url,
        require_postgres: a.require_postgres,
        temp_dir: a.temp_dir,
    };
    let report = offpay_bench::run(&config, &mut |line| eprintln!("offpay bench: {line}"))
        .map_err(|e| match e {
            BenchError::Config(m) => Failure::usage(m),
            BenchError::Failed(m) => Failure::refused("bench", m),
        })?;
    Ok(Done::new(report.table(), report.to_json()))
}
