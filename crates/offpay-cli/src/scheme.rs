//! `offpay scheme ...`: the scheme operator. `init` and `serve` run the
//! scheme server's store and HTTP API here; the other commands talk to a
//! running scheme server over HTTP with the scheme operator token
//! (`--token`, `OFFPAY_SCHEME_OPERATOR_TOKEN`, or DATA_DIR/operator-token of
//! the scheme's data directory), except `statements`, which is an issuer's
//! view and takes that issuer's token (`--issuer-token`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use offpay_client::api::{SchemeClaimsQuery, StatementsQuery};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::SettlementStatement;
use offpay_server::config::{OPERATOR_TOKEN_FILE, redact_url};
use offpay_server::scheme::config::SCHEME_DEFAULT_DATA_DIR;
use offpay_server::scheme::{SchemeArgs, SchemeServerConfig};
use serde_json::json;

use crate::http::{self, Client};
use crate::out::to_json;
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::{read_bounded, write_atomic};

/// Default scheme server URL.
pub(crate) const DEFAULT_SCHEME_SERVER: &str = "http://127.0.0.1:8090";
/// Largest CSR or admission file read.
const FILE_BYTES_MAX: u64 = 64 << 10;

#[derive(Args, Debug)]
pub(crate) struct SchemeCliArgs {
    #[command(subcommand)]
    cmd: SchemeCmd,
}

/// How to reach a running scheme server.
#[derive(Args, Debug, Clone)]
pub(crate) struct Remote {
    /// Scheme server URL [env: OFFPAY_SCHEME_SERVER] [default: http://127.0.0.1:8090].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Scheme operator token [env: OFFPAY_SCHEME_OPERATOR_TOKEN] [default: read DATA_DIR/operator-token].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// The scheme server's data directory, where its operator token file is [env: OFFPAY_SCHEME_DATA_DIR] [default: ./offpay-scheme-data].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum SchemeCmd {
    /// Create the scheme (root key sealed under the master key, root
    /// certificate, empty directory) and exit; `serve` does it too at its first start.
    Init(SchemeArgs),
    /// Run the scheme server's HTTP API. Prints its URL on the first line.
    Serve(SchemeArgs),
    /// Admit an issuer from its CA CSR (`offpay admin scheme csr`): writes the
    /// admission (CA certificate, root, and the issuer's token, shown once)
    /// for `offpay admin scheme join`.
    Admit {
        /// Issuer code: 1 to 32 characters of a-z 0-9 - (its CA's commonName).
        code: String,
        /// The CSR file (DER).
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// Write the admission JSON here (mode 600: it holds the token).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Suspend an issuer: its wallets are refused after the payees' next sync.
    Suspend {
        /// Issuer code.
        code: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reinstate a suspended issuer.
    Reinstate {
        /// Issuer code.
        code: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Revoke an issuer for good.
    Revoke {
        /// Issuer code.
        code: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The admitted issuers and their status; with --out, also the signed directory.
    Directory {
        /// Write the root-signed Directory (CBOR) here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Claims the scheme holds, oldest first.
    Claims {
        /// Only claims this issuer (32 hex characters) is party to.
        #[arg(long, value_name = "ID")]
        issuer: Option<String>,
        /// Only disputed claims.
        #[arg(long)]
        disputed: bool,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Settlement cycles.
    Cycle {
        #[command(subcommand)]
        cmd: CycleCmd,
    },
    /// An issuer's settlement statements (with that issuer's token).
    Statements {
        /// Only cycles after this one.
        #[arg(long, value_name = "CYCLE")]
        after: Option<u64>,
        /// The issuer's token from its admission [env: OFFPAY_SCHEME_ISSUER_TOKEN].
        #[arg(long, value_name = "TOKEN")]
        issuer_token: Option<String>,
        /// Scheme server URL [env: OFFPAY_SCHEME_SERVER] [default: http://127.0.0.1:8090].
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CycleCmd {
    /// Close a cycle: net every claim both parties hold into root-signed statements.
    Close {
        #[command(flatten)]
        remote: Remote,
    },
}

fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

fn scheme_url(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| env_nonempty("OFFPAY_SCHEME_SERVER"))
        .unwrap_or_else(|| DEFAULT_SCHEME_SERVER.to_string())
}

impl Remote {
    fn operator(&self) -> Result<Client, Failure> {
        let token = match self
            .token
            .clone()
            .or_else(|| env_nonempty("OFFPAY_SCHEME_OPERATOR_TOKEN"))
        {
            Some(t) => t,
            None => {
                let dir = self
                    .data_dir
                    .clone()
                    .or_else(|| env_nonempty("OFFPAY_SCHEME_DATA_DIR").map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(SCHEME_DEFAULT_DATA_DIR));
                let p = dir.join(OPERATOR_TOKEN_FILE);
                match read_bounded(&p, 4096) {
                    Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Failure::usage(format!(
                            "no scheme operator token: pass --token, set OFFPAY_SCHEME_OPERATOR_TOKEN, or point --data-dir at the scheme's data directory ({} does not exist)",
                            p.display()
                        )));
                    }
                    Err(e) => return Err(Failure::io(format!("cannot read {}", p.display()), &e)),
                }
            }
        };
        Ok(http::client(&scheme_url(self.server.as_deref()))?.with_token(&token))
    }
}

fn issuer_code(s: &str) -> Result<&str, Failure> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s)
    } else {
        Err(Failure::usage(format!(
            "issuer code {s:?}: 1 to 32 characters of a-z 0-9 -"
        )))
    }
}

/// Write a file only its owner can read.
pub(crate) fn write_private(path: &std::path::Path, contents: &[u8]) -> Result<(), Failure> {
    write_atomic(path, contents)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Failure::io(format!("cannot chmod 600 {}", path.display()), &e))?;
    }
    Ok(())
}

pub(crate) fn run(a: SchemeCliArgs, as_json: bool) -> Outcome {
    match a.cmd {
        SchemeCmd::Init(args) => init(&args),
        SchemeCmd::Serve(args) => serve(&args, as_json),
        SchemeCmd::Admit {
            code,
            csr,
            out,
            remote,
        } => {
            let code = issuer_code(&code)?;
            let der = read_bounded(&csr, FILE_BYTES_MAX)
                .map_err(|e| Failure::io(format!("cannot read {}", csr.display()), &e))?;
            let adm = remote.operator()?.scheme_admit(code, &der)?;
            let text = serde_json::to_vec_pretty(&adm)
                .map_err(|e| Failure::refused("internal", format!("cannot encode: {e}")))?;
            write_private(&out, &text)?;
            Ok(Done::new(
                format!(
                    "admitted issuer {code} (id {})\n  admission (CA certificate, root, token) written to {}\n  next, at the issuer: offpay admin scheme join --admission {}; then run its server with --scheme-url URL --scheme-token TOKEN",
                    adm.issuer,
                    out.display(),
                    out.display()
                ),
                json!({"issuer": adm.issuer, "code": adm.code, "admission_file": out.display().to_string()}),
            ))
        }
        SchemeCmd::Suspend { code, remote } => action(&remote, &code, "suspend", "suspended"),
        SchemeCmd::Reinstate { code, remote } => action(&remote, &code, "reinstate", "reinstated"),
        SchemeCmd::Revoke { code, remote } => action(&remote, &code, "revoke", "revoked"),
        SchemeCmd::Directory { out, remote } => directory(out.as_deref(), &remote),
        SchemeCmd::Claims {
            issuer,
            disputed,
            limit,
            remote,
        } => {
            if let Some(i) = &issuer
                && offpay_protocol::IssuerId::from_hex(i).is_none()
            {
                return Err(Failure::usage(format!(
                    "issuer id {i:?}: expected 32 hex characters"
                )));
            }
            let v = remote.operator()?.scheme_claims(&SchemeClaimsQuery {
                issuer,
                disputed: disputed.then_some(true),
                limit,
            })?;
            let mut h = format!("{} claim(s)\n", v.claims.len());
            for c in &v.claims {
                h.push_str(&format!(
                    "  {} {} -> {} {} minor {}{}\n",
                    &c.id[..16.min(c.id.len())],
                    c.payer_issuer,
                    c.payee_issuer,
                    c.amount_minor,
                    c.state,
                    c.cycle.map(|n| format!(" (cycle {n})")).unwrap_or_default()
                ));
            }
            Ok(Done::new(h, to_json(&v)?))
        }
        SchemeCmd::Cycle {
            cmd: CycleCmd::Close { remote },
        } => {
            let v = remote.operator()?.scheme_close_cycle()?;
            let mut h = format!("closed cycle {}: {} claim(s) netted\n", v.cycle, v.claims);
            for p in &v.positions {
                h.push_str(&format!("  {} net {} minor\n", p.issuer, p.net_minor));
            }
            Ok(Done::new(h, to_json(&v)?))
        }
        SchemeCmd::Statements {
            after,
            issuer_token,
            server,
        } => statements(after, issuer_token, server.as_deref()),
    }
}

fn directory(out: Option<&std::path::Path>, remote: &Remote) -> Outcome {
    let c = remote.operator()?;
    let list = c.scheme_issuers()?;
    let mut h = format!("{} issuer(s)\n", list.issuers.len());
    for i in &list.issuers {
        h.push_str(&format!(
            "  {:<16} {}  {:<9} changed at version {}\n",
            i.code, i.issuer, i.status, i.changed
        ));
    }
    let mut j = to_json(&list)?;
    if let Some(p) = out {
        let d = c.scheme_directory()?;
        write_atomic(p, &d)?;
        h.push_str(&format!(
            "  signed directory ({} bytes) written to {}\n",
            d.len(),
            p.display()
        ));
        j["directory_file"] = json!(p.display().to_string());
    }
    Ok(Done::new(h, j))
}

fn statements(after: Option<u64>, issuer_token: Option<String>, server: Option<&str>) -> Outcome {
    let token = issuer_token
        .or_else(|| env_nonempty("OFFPAY_SCHEME_ISSUER_TOKEN"))
        .ok_or_else(|| {
            Failure::usage(
                "statements are an issuer's: pass --issuer-token or set OFFPAY_SCHEME_ISSUER_TOKEN",
            )
        })?;
    let c = http::client(&scheme_url(server))?.with_token(&token);
    let root = offpay_protocol::pki::Certificate::from_pem(&c.scheme_roots()?.root_pem)
        .map_err(|e| Failure::refused("bad_response", format!("the scheme root: {e}")))?;
    let v = c.scheme_statements(&StatementsQuery { after })?;
    let mut h = format!("{} statement(s)\n", v.statements.len());
    let mut list = Vec::new();
    for s in &v.statements {
        let bytes = http::b64_field("statement", &s.statement)?;
        let signed = Signed::<SettlementStatement>::decode(&bytes).map_err(|e| {
            Failure::refused(
                "bad_response",
                format!("statement of cycle {}: {e}", s.cycle),
            )
        })?;
        signed.verify(root.public_key()).map_err(|e| {
            Failure::refused(
                "bad_signature",
                format!(
                    "statement of cycle {} is not signed by the scheme root: {e}",
                    s.cycle
                ),
            )
        })?;
        let st = signed.body();
        h.push_str(&format!(
            "  cycle {}: net {} minor {} over {} line(s) (positive: the scheme pays this issuer)\n",
            st.cycle,
            st.net(),
            st.currency,
            st.lines.len()
        ));
        let lines: Vec<_> = st
            .lines
            .iter()
            .map(|l| {
                h.push_str(&format!(
                    "    with {}: receivable {} payable {} ({} claims)\n",
                    l.counterparty, l.receivable_minor, l.payable_minor, l.claims
                ));
                json!({
                    "counterparty": l.counterparty.to_hex(),
                    "receivable_minor": l.receivable_minor,
                    "payable_minor": l.payable_minor,
                    "claims": l.claims,
                    "digest": l.digest.to_hex(),
                })
            })
            .collect();
        list.push(json!({
            "cycle": st.cycle,
            "issuer": st.issuer.to_hex(),
            "currency": st.currency.as_str(),
            "net_minor": st.net().to_string(),
            "lines": lines,
            "statement": s.statement,
        }));
    }
    Ok(Done::new(h, json!({ "statements": list })))
}

fn action(remote: &Remote, code: &str, verb: &str, done: &str) -> Outcome {
    let code = issuer_code(code)?;
    let v = remote.operator()?.scheme_issuer_action(code, verb)?;
    Ok(Done::new(
        format!(
            "issuer {code} {done}: directory version {} (issuers pick it up at their next scheme round)",
            v.directory_version
        ),
        to_json(&v)?,
    ))
}

fn init(args: &SchemeArgs) -> Outcome {
    let config = SchemeServerConfig::load(args).map_err(|e| Failure::usage(e.to_string()))?;
    let (state, prepared) = offpay_server::scheme::prepare_blocking(&config)
        .map_err(|e| Failure::refused("scheme_init", e.to_string()))?;
    let root = state.scheme.root_certificate();
    Ok(Done::new(
        format!(
            "{} the scheme in {}\n  currency: {}\n  master key: {}\n  operator token: {}",
            if prepared.initialised {
                "created"
            } else {
                "opened the existing"
            },
            redact_url(&config.database_target()),
            state.scheme.currency(),
            prepared.master_key_file.display(),
            prepared
                .operator_token_file
                .as_ref()
                .map_or_else(|| "as configured".to_string(), |p| p.display().to_string())
        ),
        json!({
            "initialised": prepared.initialised,
            "database": redact_url(&config.database_target()),
            "currency": state.scheme.currency().as_str(),
            "master_key_file": prepared.master_key_file.display().to_string(),
            "operator_token_file": prepared.operator_token_file.as_ref().map(|p| p.display().to_string()),
            "root_pem": root.to_pem(),
        }),
    ))
}

fn serve(args: &SchemeArgs, as_json: bool) -> Outcome {
    let config = SchemeServerConfig::load(args).map_err(|e| Failure::usage(e.to_string()))?;
    offpay_server::init_logging(config.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the async runtime", &e))?;
    rt.block_on(async {
        let running = offpay_server::scheme::spawn(config.clone())
            .await
            .map_err(|e| Failure::refused("server_start", e.to_string()))?;
        let url = running.url();
        let token_file = running
            .prepared
            .operator_token_file
            .as_ref()
            .map(|p| p.display().to_string());
        if as_json {
            say!(
                "{}",
                json!({
                    "ok": true,
                    "event": "listening",
                    "url": url,
                    "listen": running.addr.to_string(),
                    "database": redact_url(&config.database_target()),
                    "data_dir": config.data_dir.display().to_string(),
                    "first_start": running.prepared.initialised,
                    "operator_token_file": token_file,
                })
            );
        } else {
            say!("offpay scheme server listening on {url}");
            say!("  database: {}", redact_url(&config.database_target()));
            if running.prepared.initialised {
                say!(
                    "  first start: created the scheme root (master key {})",
                    running.prepared.master_key_file.display()
                );
            }
            say!(
                "  operator token: {}",
                token_file.as_deref().unwrap_or("as configured")
            );
            say!("  stop with Ctrl-C");
        }
        offpay_server::shutdown_signal().await;
        running
            .shutdown()
            .await
            .map_err(|e| Failure::refused("server", e.to_string()))?;
        Ok(Done::new(
            "offpay scheme server stopped",
            json!({"event": "stopped", "url": url}),
        ))
    })
}
