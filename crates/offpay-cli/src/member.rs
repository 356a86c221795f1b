//! `offpay admin scheme ...`: a member issuer's side of a scheme.
//!
//! `csr` and `join` work on the issuer's data directory and store directly
//! (the server need not run; stop it for `join`); `status` and `sync` ask
//! the running member server.

use std::path::PathBuf;

use clap::Subcommand;
use offpay_client::api::{AdmissionResponse, b64_decode};
use offpay_server::{ServerArgs, ServerConfig};
use serde_json::json;

use crate::http::Client;
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::{read_bounded, write_atomic};

/// A typed answer as the JSON object a command prints.
fn to_json<T: serde::Serialize>(t: &T) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(t)
        .map_err(|e| Failure::refused("internal", format!("cannot encode the answer: {e}")))
}

#[derive(Subcommand, Debug)]
pub(crate) enum MemberCmd {
    /// Make this issuer's CA key (once; sealed under the master key) and
    /// write its CSR for `offpay scheme admit`.
    Csr {
        /// The issuer code the scheme operator will admit it under.
        #[arg(long)]
        code: String,
        /// Write the CSR (DER) here.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Become a member: install the admission (`offpay scheme admit --out`).
    Join {
        /// The admission JSON file.
        #[arg(long, value_name = "FILE")]
        admission: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The running member server's link: directory version, positions, last error.
    Status,
    /// Run one round of the member server's scheme link now.
    Sync,
}

/// Where the issuer's store is (as `offpay server` takes it).
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct StoreArgs {
    /// PostgreSQL URL instead of SQLite in the data directory [env: OFFPAY_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The master key file [env: OFFPAY_MASTER_KEY_FILE] [default: DATA_DIR/master.key].
    #[arg(long, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// Currency of the issuer [env: OFFPAY_CURRENCY] [default: EUR].
    #[arg(long, value_name = "CODE")]
    currency: Option<String>,
    /// Suite of its CA key [env: OFFPAY_SUITE] [default: ed25519].
    #[arg(long, value_name = "SUITE")]
    suite: Option<String>,
}

fn config(s: &StoreArgs, data_dir: Option<&PathBuf>) -> Result<ServerConfig, Failure> {
    let args = ServerArgs {
        data_dir: data_dir.cloned(),
        database_url: s.database_url.clone(),
        master_key_file: s.master_key_file.clone(),
        currency: s.currency.clone(),
        suite: s.suite.clone(),
        ..ServerArgs::default()
    };
    ServerConfig::load(&args).map_err(|e| Failure::usage(e.to_string()))
}

pub(crate) fn run(
    cmd: &MemberCmd,
    data_dir: Option<&PathBuf>,
    op: impl Fn() -> Result<Client, Failure>,
) -> Outcome {
    match cmd {
        MemberCmd::Csr { code, out, store } => {
            let c = config(store, data_dir)?;
            let csr = offpay_server::member_csr(&c, code)
                .map_err(|e| Failure::refused("member_csr", e.to_string()))?;
            write_atomic(out, &csr)?;
            Ok(Done::new(
                format!(
                    "wrote the CA CSR of issuer {code} to {} ({} bytes)\n  next, at the scheme: offpay scheme admit {code} --csr {} --out admission.json",
                    out.display(),
                    csr.len(),
                    out.display()
                ),
                json!({"code": code, "csr_file": out.display().to_string(), "bytes": csr.len()}),
            ))
        }
        MemberCmd::Join { admission, store } => {
            let c = config(store, data_dir)?;
            let bytes = read_bounded(admission, 64 << 10)
                .map_err(|e| Failure::io(format!("cannot read {}", admission.display()), &e))?;
            let adm: AdmissionResponse = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::refused("bad_admission", format!("{}: {e}", admission.display()))
            })?;
            let root = b64_decode(&adm.root_cert)
                .map_err(|_| Failure::refused("bad_admission", "root_cert is not base64"))?;
            let ca = b64_decode(&adm.ca_cert)
                .map_err(|_| Failure::refused("bad_admission", "ca_cert is not base64"))?;
            let id = offpay_server::join_scheme(&c, &root, &ca)
                .map_err(|e| Failure::refused("join", e.to_string()))?;
            Ok(Done::new(
                format!(
                    "issuer {} joined the scheme as {id}\n  run its server with --scheme-url URL --scheme-token <the token in {}>",
                    adm.code,
                    admission.display()
                ),
                json!({"issuer": id.to_hex(), "code": adm.code}),
            ))
        }
        MemberCmd::Status => {
            let v = op()?.admin_scheme_status()?;
            let mut h = format!(
                "{} issuer {}: directory version {}, last cycle posted {}, outbox {}, rounds {}{}\n",
                if v.member { "member" } else { "standalone" },
                v.issuer,
                v.directory_version,
                v.last_statement_cycle,
                v.outbox,
                v.rounds,
                v.last_error
                    .as_ref()
                    .map(|e| format!(", last error: {e}"))
                    .unwrap_or_default()
            );
            for p in &v.positions {
                h.push_str(&format!(
                    "  {}: open receivable {} payable {}, account {}\n",
                    p.peer, p.open_receivable_minor, p.open_payable_minor, p.account_minor
                ));
            }
            Ok(Done::new(h, to_json(&v)?))
        }
        MemberCmd::Sync => {
            let v = op()?.admin_scheme_sync()?;
            Ok(Done::new(
                format!(
                    "scheme round: directory version {}, {} claim(s) submitted ({} refused), {} inbox claim(s) applied, {} statement(s) posted{}",
                    v.directory_version,
                    v.submitted,
                    v.refused,
                    v.inbox,
                    v.statements,
                    if v.more {
                        "; more to do: run it again"
                    } else {
                        ""
                    }
                ),
                to_json(&v)?,
            ))
        }
    }
}
