//! `offpay sim`: thousands of wallets over days of simulated time on the real
//! wallet and issuer code, with attacks injected; a report, and plots of
//! exposure and detection ([`offpay_sim`]).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use offpay_sim::{AttackMix, AttackSpec, SimConfig, StoreChoice, run as simulate, write_plots};
use serde_json::{Value, json};

use crate::out::{Done, Failure, Outcome};
use crate::walletdir::write_atomic;

/// Violations quoted in a failure message.
const VIOLATIONS_QUOTED_MAX: usize = 5;
/// When stderr is not a terminal (a log, CI), a progress line this often.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(5);
/// Wallet-days simulated per second on one core of the reference machine
/// (2 cores, release build, `--attacks default`): measured 642 at 1,000
/// wallets x 7 days (10.9 s) and 607 at 3,000 wallets x 7 days (34.6 s). The
/// basis of the estimate printed before a large run.
const WALLET_DAYS_PER_SECOND: f64 = 600.0;
/// Runs estimated longer than this get the estimate printed before they start.
const ESTIMATE_ABOVE: Duration = Duration::from_secs(20);

#[derive(Args, Debug)]
pub(crate) struct SimArgs {
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
    /// Without --attack or --attacks no attack runs.
    #[arg(long, value_name = "KIND=RATE")]
    attack: Vec<String>,
    /// A named attack mix: "default" (every kind, at the rates listed in
    /// docs/SIMULATION.md) or "none". --attack KIND=RATE given too overrides
    /// that kind's rate.
    #[arg(long, value_name = "MIX")]
    attacks: Option<String>,
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
    /// The scheme does not refund lost wallets: a lost wallet's money is
    /// forfeited to the reserve at its close instead of paid out to its
    /// customer (the lifecycle rule `refund_lost`).
    #[arg(long)]
    no_refund_lost: bool,
    /// Share (0 to 1) of the payments an honest payer's payee never accepted
    /// that the payer disputes, and of lost devices whose customer disputes
    /// the lost wallet (default 0.5).
    #[arg(long, value_name = "R")]
    dispute_rate: Option<f64>,
    /// Issuers: 1 (the default) is one standalone issuer; N > 1 runs N member
    /// issuers under one in-process scheme, customers spread over them, claims
    /// and settlement cycles between them.
    #[arg(long, default_value_t = 1, value_name = "N")]
    issuers: usize,
    /// With --issuers > 1: close a settlement cycle every H simulated hours.
    #[arg(long, value_name = "H")]
    cycle_hours: Option<u32>,
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

/// The run the arguments ask for (validated by the caller).
fn config_of(a: &SimArgs) -> Result<SimConfig, Failure> {
    let mut config = SimConfig {
        wallets: a.wallets,
        days: a.days,
        seed: a.seed,
        ..SimConfig::default()
    };
    if let Some(mix) = &a.attacks {
        let mix: AttackMix = mix.parse().map_err(|e| Failure::usage(format!("{e}")))?;
        config.attacks.extend_from_slice(mix.attacks());
    }
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
    if let Some(f) = &a.store {
        config.store = StoreChoice::File(f.clone());
    }
    config.dump_store = a.dump.is_some();
    config.faults = a.faults;
    config.refund_lost = !a.no_refund_lost;
    if let Some(r) = a.dispute_rate {
        config.dispute_rate = r;
    }
    config.issuers = a.issuers;
    if let Some(h) = a.cycle_hours {
        config.cycle_hours = h;
    }
    Ok(config)
}

pub(crate) fn run(a: SimArgs, as_json: bool) -> Outcome {
    let config = config_of(&a)?;
    let seed = a.seed;
    // The same command line replays the same run, failure included.
    let replay = std::env::args().collect::<Vec<_>>().join(" ");
    config.validate().map_err(Failure::usage)?;
    before_the_run(&a, &config)?;
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let report = simulate(config, progress_printer(terminal, started)).map_err(|e| {
        Failure::refused(
            "sim",
            format!("the simulation failed with seed {seed}: {e}\n  replay it with: {replay}"),
        )
    })?;
    let elapsed = started.elapsed();
    if terminal {
        eprintln!();
    }
    let text = report.to_json();
    let mut human = report.summary_table();
    if report.config.attacks.values().all(|r| *r == 0.0) {
        human.push_str("no attack ran (add --attacks default, or --attack KIND=RATE)\n");
    }
    human.push_str(&format!(
        "run time {} (wall clock; not part of the report)\n",
        human_duration(elapsed)
    ));
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

/// What is checked and said before a run starts: a bad output path found after
/// an hour of simulation would throw the run away, so `--out` and `--plot` are
/// checked first; a large run gets its estimate.
fn before_the_run(a: &SimArgs, config: &SimConfig) -> Result<(), Failure> {
    if let Some(p) = &a.out {
        check_writable_file(p)?;
    }
    if let Some(dir) = &a.plot {
        check_writable_dir(dir)?;
    }
    let wallet_days = config.wallets as f64 * f64::from(config.days);
    let estimate = Duration::from_secs_f64(wallet_days / WALLET_DAYS_PER_SECOND);
    if estimate > ESTIMATE_ABOVE {
        eprintln!(
            "offpay sim: {} wallets over {} days: expect about {} on one core (progress below)",
            config.wallets,
            config.days,
            human_duration(estimate)
        );
    }
    Ok(())
}

/// Progress on stderr: one line updated in place on a terminal, a line every
/// [`PROGRESS_LINE_EVERY`] otherwise (a log, CI), each with the elapsed time.
fn progress_printer(terminal: bool, started: Instant) -> impl FnMut(offpay_sim::Progress) {
    let mut last_pct = u64::MAX;
    let mut last_line = Instant::now();
    move |p| {
        let pct = (p.fraction() * 100.0) as u64;
        let line = format!(
            "  day {}/{}  {pct:>3}%  payments {}  syncs {}  double spends detected {}  elapsed {}",
            p.day,
            p.days,
            p.payments,
            p.syncs,
            p.double_spends_detected,
            human_duration(started.elapsed())
        );
        if terminal {
            if pct != last_pct || p.finishing {
                last_pct = pct;
                eprint!("\r{line}   ");
                let _ = std::io::stderr().flush();
            }
        } else if last_line.elapsed() >= PROGRESS_LINE_EVERY || p.finishing {
            last_line = Instant::now();
            eprintln!("{}", line.trim_start());
        }
    }
}

/// `path` can be created or replaced as a file: its directory exists and takes
/// a new file, and it is not a directory itself.
fn check_writable_file(path: &Path) -> Result<(), Failure> {
    if path.is_dir() {
        return Err(Failure::usage(format!(
            "--out {}: is a directory, expected a file name",
            path.display()
        )));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Failure::usage(format!(
            "--out {}: the directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    probe(dir).map_err(|e| {
        Failure::usage(format!(
            "--out {}: cannot write into {}: {e}",
            path.display(),
            dir.display()
        ))
    })
}

/// `dir` exists (created if missing) and takes new files.
fn check_writable_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .and_then(|()| probe(dir))
        .map_err(|e| Failure::usage(format!("--plot {}: cannot write there: {e}", dir.display())))
}

/// Create and remove a file in `dir`.
fn probe(dir: &Path) -> std::io::Result<()> {
    let f = tempfile::NamedTempFile::new_in(dir)?;
    f.close()
}

/// `3.2 s`, `4 min 05 s`, `1 h 02 min`.
fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}
