//! `offpay`: the command-line face of offpay.
//!
//! ```text
//! offpay demo                      the whole story on the embedded default
//! offpay server                    the issuer's HTTP API
//! offpay admin ...                 operator commands over the HTTP API
//! offpay wallet --dir DIR ...      a wallet: create, load, request, pay, receive, ...
//! offpay evidence verify FILE      check a double-spend proof offline
//! offpay sim                       many wallets, days, attacks: a report and plots
//! offpay bench                     performance, each figure next to its bound
//! ```
//!
//! Every command prints text for people, or with `--json` one JSON object
//! for scripts. Exit codes: 0 done, 1 refused (the reason is printed), 2
//! usage error.
#![forbid(unsafe_code)]

mod admin;
mod bench;
mod demo;
mod evidence;
mod http;
mod money;
mod msgio;
mod out;
mod server;
mod sim;
mod unlock;
mod wallet;
mod walletdir;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::out::{EXIT_USAGE, Failure, print_failure};

const AFTER_HELP: &str = "\
Every command prints text for people, or with --json one JSON object on stdout
({\"ok\": true, ...} or {\"ok\": false, \"error\": {\"code\", \"message\"}}).
Exit codes: 0 done, 1 refused (the reason is printed), 2 usage error,
75 wallet busy (another command holds the wallet; nothing changed).

Environment: OFFPAY_PIN (wallet PIN; else a prompt), OFFPAY_SERVER and
OFFPAY_OPERATOR_TOKEN (admin), OFFPAY_WALLET_DIR (wallet --dir),
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
    /// Double-spend evidence.
    Evidence(evidence::EvidenceArgs),
    /// Simulate thousands of wallets over days, with attacks: a report of
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
                let msg = e.to_string();
                let first = msg.lines().next().unwrap_or("usage error");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                println!("{}", Failure::usage(first).to_json());
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let json = cli.json;
    let result = match cli.command {
        Command::Demo(a) => demo::run(a, json),
        Command::Server(a) => server::run(a, json),
        Command::Admin(a) => admin::run(a),
        Command::Wallet(a) => wallet::run(a),
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

/// The clock's edge: the protocol and the TA take time as an argument.
pub fn now() -> offpay_protocol::UnixSeconds {
    offpay_protocol::UnixSeconds(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}
