//! `offpay sim`: thousands of wallets over days of simulated time on the real
//! wallet and issuer code, with attacks injected; a report, and plots of
//! exposure and detection ([`offpay_sim`]).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use clap::Args;
use offpay_sim::{AttackSpec, SimConfig, StoreChoice, run as simulate, write_plots};
use serde_json::{Value, json};

use crate::out::{Done, Failure, Outcome};
use crate::walletdir::write_atomic;

/// Violations quoted in a failure message.
const VIOLATIONS_QUOTED_MAX: usize = 5;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Customers, each with one wallet.
    #[arg(long, default_value_t = 100)]
    wallets: usize,
    /// Simulated days.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Seed: the same seed gives the same report, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// An attack and its rate, KIND=RATE (repeatable). Kinds: rollback, clone,
    /// replay, tamper, unknown-ca, revoked-pay, torn, lost-device, crash. The
    /// rate is a probability per payment (torn, replay) or per wallet-day.
    #[arg(long, value_name = "KIND=RATE")]
    attack: Vec<String>,
    /// Share of customers that are merchants (0 to 0.9).
    #[arg(long, value_name = "FRACTION")]
    merchants: Option<f64>,
    /// Payments a consumer starts per day, on average.
    #[arg(long, value_name = "N")]
    payments_per_day: Option<f64>,
    /// Run the full checks (ledger invariants, every balance) every H simulated hours.
    #[arg(long, value_name = "H")]
    full_check_hours: Option<u32>,
    /// Inject issuer-side faults driven by the seed: failed statements,
    /// conflicts, crashes before commit and issuer restarts mid-sync (counted
    /// in the report's `faults`). A failing seed replays the failure exactly.
    #[arg(long)]
    faults: bool,
    /// Keep the issuer's SQLite database in FILE (default: in memory).
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
    /// Write the JSON report to FILE.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the canonical dump of the issuer's database at the end (every
    /// table, every column, sorted) to FILE: the same seed gives the same dump.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Draw exposure.png, detection_delay.png and loss_vs_limit.png into DIR.
    #[arg(long, value_name = "DIR")]
    plot: Option<PathBuf>,
}

pub fn run(a: SimArgs, as_json: bool) -> Outcome {
    let mut config = SimConfig {
        wallets: a.wallets,
        days: a.days,
        seed: a.seed,
        ..SimConfig::default()
    };
    for s in &a.attack {
        let spec: AttackSpec = s.parse().map_err(|e| Failure::usage(format!("{e}")))?;
        config.attacks.push(spec.into());
    }
    if let Some(m) = a.merchants {
        config.merchants_fraction = m;
    }
    if let Some(p) = a.payments_per_day {
        config.payments_per_day = p;
    }
    if let Some(h) = a.full_check_hours {
        config.full_check_hours = h;
    }
    if let Some(f) = a.store {
        config.store = StoreChoice::File(f);
    }
    config.dump_store = a.dump.is_some();
    config.faults = a.faults;
    let seed = a.seed;
    // The same command line replays the same run, failure included.
    let replay = std::env::args().collect::<Vec<_>>().join(" ");
    config.validate().map_err(Failure::usage)?;
    let show_progress = std::io::stderr().is_terminal();
    let mut last = u64::MAX;
    let report = simulate(config, |p| {
        let pct = (p.fraction() * 100.0) as u64;
        if show_progress && (pct != last || p.finishing) {
            last = pct;
            eprint!(
                "\r  day {}/{}  {pct:>3}%  payments {}  syncs {}  double spends detected {}   ",
                p.day, p.days, p.payments, p.syncs, p.double_spends_detected
            );
            let _ = std::io::stderr().flush();
        }
    })
    .map_err(|e| {
        Failure::refused(
            "sim",
            format!("the simulation failed with seed {seed}: {e}\n  replay it with: {replay}"),
        )
    })?;
    if show_progress {
        eprintln!();
    }
    let text = report.to_json();
    let mut human = report.summary_table();
    if let Some(p) = &a.out {
        write_atomic(p, text.as_bytes())?;
        human.push_str(&format!("report written to {}\n", p.display()));
    }
    if let (Some(p), Some(d)) = (&a.dump, &report.store_dump) {
        write_atomic(p, d.as_bytes())?;
        human.push_str(&format!("database dump written to {}\n", p.display()));
    }
    let mut plots = Vec::new();
    if let Some(dir) = &a.plot {
        let files = write_plots(&report, dir)
            .map_err(|e| Failure::refused("plot", format!("cannot draw the plots: {e}")))?;
        for f in files {
            human.push_str(&format!("plot {}\n", f.display()));
            plots.push(f.display().to_string());
        }
    }
    if !report.invariant_violations.is_empty() {
        let quoted: Vec<&str> = report
            .invariant_violations
            .iter()
            .take(VIOLATIONS_QUOTED_MAX)
            .map(String::as_str)
            .collect();
        return Err(Failure::refused(
            "invariants_violated",
            format!(
                "{} invariant violation(s) with seed {seed}, e.g.:\n  {}\n  replay it with: {replay}",
                report.invariant_violations.len(),
                quoted.join("\n  ")
            ),
        ));
    }
    let mut v: Value =
        serde_json::from_str(&text).map_err(|e| Failure::refused("sim", format!("report: {e}")))?;
    v["plots"] = json!(plots);
    v["report_file"] = json!(a.out.map(|p| p.display().to_string()));
    v["dump_file"] = json!(a.dump.map(|p| p.display().to_string()));
    let _ = as_json;
    Ok(Done::new(human, v))
}
