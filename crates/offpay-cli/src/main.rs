//! `offpay`: the command-line face of offpay.
//!
//! ```text
//! offpay demo                      the whole story on the embedded default
//! offpay server                    the issuer's HTTP API
//! offpay admin ...                 operator commands over the HTTP API
//! offpay scheme ...                the scheme operator of many issuers
//! offpay wallet --dir DIR ...      a wallet: create, load, request, pay, receive, ...
//! offpay terminal --dir DIR ...    a receive-only merchant terminal: request, receive, sync (sweep)
//! offpay evidence verify FILE      check a double-spend proof offline
//! offpay sim                       many wallets, days, attacks: a report and plots
//! offpay bench                     performance, each figure next to its bound
//! ```
//!
//! Every command prints text for people, or with `--json` one JSON object
//! for scripts. Exit codes: 0 done, 1 refused (the reason is printed, and
//! nothing changed), 2 usage error, 3 done but not delivered (see [`out`]).
#![forbid(unsafe_code)]

/// `println!` that never panics: a closed stdout (`offpay ... | head -1`)
/// is ignored, because what a command did stays done.
macro_rules! say {
    ($($t:tt)*) => {
        $crate::out::stdout_line(&format!($($t)*))
    };
}

mod admin;
mod bench;
mod case;
mod demo;
mod evidence;
mod http;
mod member;
mod money;
mod msgio;
mod out;
mod privacy;
mod scheme;
mod server;
mod show;
mod sim;
mod terminal;
mod unlock;
mod wallet;
mod walletdir;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::out::{EXIT_USAGE, Failure, print_failure};

const AFTER_HELP: &str = "\
Every command prints text for people, or with --json one JSON object on stdout
({\"ok\": true, ...} or {\"ok\": false, \"error\": {\"code\", \"message\"}});
`server --json` prints one JSON object per line (events). Amounts are integer
minor units in *_minor fields next to `currency`, times Unix seconds in *_at.
Exit codes: 0 done; 1 refused (the reason is printed, nothing changed);
2 usage error; 3 done, but not delivered (the wallet acted, money moved, and
writing or sending its answer failed: repeat the same command to get the same
message again, or sync); 75 wallet busy (another command holds the wallet;
nothing changed: try again).

Environment: OFFPAY_PIN (wallet PIN; else a prompt), OFFPAY_SERVER and
OFFPAY_OPERATOR_TOKEN (admin), OFFPAY_SCHEME_SERVER, OFFPAY_SCHEME_OPERATOR_TOKEN,
OFFPAY_SCHEME_DATA_DIR and OFFPAY_SCHEME_ISSUER_TOKEN (scheme), OFFPAY_WALLET_DIR (wallet --dir),
OFFPAY_TIMEOUT (seconds per server request, as --timeout),
OFFPAY_KDF=test (fast, INSECURE vault key derivation: tests and demos only),
OFFPAY_WALLET_WAIT (seconds to wait for a busy wallet, default 30),
OFFPAY_TEST_POSTGRES_URL (the PostgreSQL server of offpay bench).";

/// Offline digital payments: wallets that pay each other with no network,
/// reconciled with the issuer's ledger when they reconnect.
#[derive(Parser, Debug)]
#[command(name = "offpay", version, after_help = AFTER_HELP)]
struct Cli {
    /// Print one JSON object on stdout (stable field names) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for the server on each request (default 30; also
    /// OFFPAY_TIMEOUT). A request waiting longer than a second or two says so on stderr.
    #[arg(long, global = true, value_name = "SECS", value_parser = http::parse_timeout)]
    timeout: Option<u64>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The whole story in one command: issuer, customers, wallets, offline
    /// payments, sync, redeem, and a rolled-back wallet caught double-spending.
    Demo(demo::DemoArgs),
    /// Run the issuer's HTTP API: SQLite in ./offpay-data by default,
    /// PostgreSQL with --database-url. Prints its URL on the first line.
    Server(offpay_server::ServerArgs),
    /// Operator commands over the HTTP API: accounts, deposits, enrollment
    /// tokens, loads, wallets, revocation, double spends, invariants, PKI export.
    Admin(admin::AdminArgs),
    /// A wallet living in a directory: create, load, request, pay, receive,
    /// confirm, sync, redeem, balance, history, status, cert.
    Wallet(wallet::WalletArgs),
    /// A receive-only merchant terminal (a wallet directory whose certificate
    /// names the terminal profile): create, request, receive (also over the
    /// tap), sync (sweeps the takings to the merchant's account), status.
    Terminal(terminal::TerminalArgs),
    /// The scheme operator of many issuers: init, serve (HTTP API), admit,
    /// suspend, reinstate, revoke, directory, claims, cycle close, statements.
    Scheme(scheme::SchemeCliArgs),
    /// Double-spend evidence.
    Evidence(evidence::EvidenceArgs),
    /// Simulate thousands of wallets over days, with the attacks you ask for
    /// (none unless --attacks default or --attack KIND=RATE): a report of
    /// exposure, detection and losses, and plots.
    Sim(sim::SimArgs),
    /// Measure performance: signature costs, offline payment latency (memory
    /// and disk), message sizes, and reconciliation throughput on SQLite,
    /// PostgreSQL and HTTP, each next to its bound measured in the same run.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            if !usage {
                return ExitCode::SUCCESS; // --help, --version
            }
            if std::env::args().any(|a| a == "--json") {
                let msg = usage_message(&e.to_string());
                out::stdout_line(&Failure::usage(msg).to_json().to_string());
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let json = cli.json;
    let timeout_seconds = match cli.timeout {
        Some(t) => t,
        None => match std::env::var("OFFPAY_TIMEOUT")
            .ok()
            .filter(|v| !v.is_empty())
        {
            None => http::TIMEOUT_SECONDS_DEFAULT,
            Some(v) => match http::parse_timeout(&v) {
                Ok(t) => t,
                Err(e) => {
                    let f = Failure::usage(format!("OFFPAY_TIMEOUT: {e}"));
                    print_failure(&f, json);
                    return ExitCode::from(f.exit_code());
                }
            },
        },
    };
    http::configure(http::Settings {
        timeout_seconds,
        json,
    });
    let result = match cli.command {
        Command::Demo(a) => demo::run(a, json),
        Command::Server(a) => server::run(a, json),
        Command::Admin(a) => admin::run(a),
        Command::Wallet(a) => wallet::run(a),
        Command::Terminal(a) => terminal::run(a),
        Command::Scheme(a) => scheme::run(a, json),
        Command::Evidence(a) => evidence::run(a),
        Command::Sim(a) => sim::run(a, json),
        Command::Bench(a) => bench::run(a),
    };
    match result {
        Ok(done) => {
            done.print(json);
            ExitCode::SUCCESS
        }
        Err(f) => {
            print_failure(&f, json);
            ExitCode::from(f.exit_code())
        }
    }
}

/// A clap error in one line, keeping what it names (the missing argument,
/// the suggestion) and leaving out the usage and help lines.
fn usage_message(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let t = line.trim();
        if t.starts_with("Usage:") || t.starts_with("For more information") {
            break;
        }
        if !t.is_empty() {
            parts.push(t.strip_prefix("error: ").unwrap_or(t));
        }
    }
    if parts.is_empty() {
        "usage error".into()
    } else {
        parts.join(" ")
    }
}

/// The clock's edge: the protocol and the TA take time as an argument.
pub fn now() -> offpay_protocol::UnixSeconds {
    offpay_protocol::UnixSeconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}
