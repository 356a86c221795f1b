//! `offpay sim` without the CLI: run a simulation, print a summary (and the
//! JSON report, plots), plus the wall time and peak memory on stderr.
//!
//! `cargo run --release -p offpay-sim --example sim -- --wallets 10000 --days 30 --seed 1 \
//!     [--issuers N] [--cycle-hours H] [--attack KIND=RATE ...] [--json] [--out FILE] [--plot DIR] [--store FILE] [--full-check-hours H] [--no-refund-lost]`

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use offpay_sim::{AttackSpec, SimConfig, StoreChoice, run, write_plots};

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[expect(clippy::too_many_lines)] // lint-exception: the argument loop of an example, one arm per flag
fn main() {
    let mut config = SimConfig::default();
    let mut json = false;
    let mut out: Option<PathBuf> = None;
    let mut plot: Option<PathBuf> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let val = |i: usize| -> &str {
        args.get(i + 1).map(String::as_str).unwrap_or_else(|| {
            eprintln!("{} needs a value", args[i]);
            std::process::exit(2)
        })
    };
    while i < args.len() {
        let a = args[i].as_str();
        let bad = |what: &str| -> ! {
            eprintln!("bad {what}");
            std::process::exit(2)
        };
        match a {
            "--wallets" => config.wallets = val(i).parse().unwrap_or_else(|_| bad(a)),
            "--days" => config.days = val(i).parse().unwrap_or_else(|_| bad(a)),
            "--seed" => config.seed = val(i).parse().unwrap_or_else(|_| bad(a)),
            "--issuers" => config.issuers = val(i).parse().unwrap_or_else(|_| bad(a)),
            "--cycle-hours" => config.cycle_hours = val(i).parse().unwrap_or_else(|_| bad(a)),
            "--full-check-hours" => {
                config.full_check_hours = val(i).parse().unwrap_or_else(|_| bad(a))
            }
            "--payments-per-day" => {
                config.payments_per_day = val(i).parse().unwrap_or_else(|_| bad(a))
            }
            "--attack" => {
                let s: AttackSpec = val(i).parse().unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(2)
                });
                config.attacks.push(s.into());
            }
            "--store" => {
                config.store = match val(i) {
                    "memory" => StoreChoice::Memory,
                    "sqlite-memory" => StoreChoice::SqliteMemory,
                    path => StoreChoice::File(PathBuf::from(path)),
                }
            }
            "--out" => out = Some(PathBuf::from(val(i))),
            "--plot" => plot = Some(PathBuf::from(val(i))),
            "--no-refund-lost" => {
                config.refund_lost = false;
                i += 1;
                continue;
            }
            "--json" => {
                json = true;
                i += 1;
                continue;
            }
            _ => bad(&format!("argument {a}")),
        }
        i += 2;
    }
    let started = Instant::now();
    let mut last = 0u64;
    let report = run(config, |p| {
        let pct = (p.fraction() * 100.0) as u64;
        if pct != last || p.finishing {
            last = pct;
            let bar: String = (0..40)
                .map(|k| if k * 100 < pct * 40 { '#' } else { '.' })
                .collect();
            eprint!(
                "\r[{bar}] {pct:>3}% day {}/{} payments {} syncs {} double spends detected {}  ",
                p.day, p.days, p.payments, p.syncs, p.double_spends_detected
            );
            let _ = std::io::stderr().flush();
        }
    })
    .unwrap_or_else(|e| {
        eprintln!("\nsimulation failed: {e}");
        std::process::exit(1)
    });
    let secs = started.elapsed().as_secs_f64();
    eprintln!();
    eprint!("{}", report.summary_table());
    eprintln!(
        "runtime {secs:.1} s (wall clock, not in the report); peak resident memory {} MiB; issuer database {} MiB",
        peak_rss_kib().map_or("?".into(), |k| (k / 1024).to_string()),
        report
            .machine
            .store_bytes
            .map_or("(in process)".into(), |b| (b >> 20).to_string())
    );
    if let Some(p) = out {
        if let Err(e) = std::fs::write(&p, report.to_json()) {
            eprintln!("cannot write the report to {}: {e}", p.display());
            std::process::exit(1)
        }
        eprintln!("report written to {}", p.display());
    }
    if json {
        println!("{}", report.to_json());
    }
    if let Some(dir) = plot {
        match write_plots(&report, &dir) {
            Ok(files) => {
                for f in files {
                    eprintln!("plot {}", f.display());
                }
            }
            Err(e) => eprintln!("plots: {e}"),
        }
    }
    if !report.invariant_violations.is_empty() {
        std::process::exit(3);
    }
}
