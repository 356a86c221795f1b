//! `offpay admin ...`: the operator's commands over the HTTP API.
//!
//! The operator token comes from `--token`, `OFFPAY_OPERATOR_TOKEN`, or the
//! server's data directory (`--data-dir`, `OFFPAY_DATA_DIR`, default
//! `./offpay-data`: the file `operator-token` the first start wrote).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use offpay_protocol::WalletId;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::pki::{Certificate, Crl};
use offpay_server::config::{DEFAULT_DATA_DIR, OPERATOR_TOKEN_FILE};
use serde_json::{Value, json};

use crate::http::Client;
use crate::money::{self, show};
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::{read_bounded, write_atomic};

/// Default server URL.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Server URL [env: OFFPAY_SERVER] [default: http://127.0.0.1:8080].
    #[arg(long, global = true, value_name = "URL")]
    server: Option<String>,
    /// Operator token [env: OFFPAY_OPERATOR_TOKEN] [default: read DATA_DIR/operator-token].
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// The server's data directory, where the operator token file is [env: OFFPAY_DATA_DIR] [default: ./offpay-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: AdminCmd,
}

/// An amount: decimal major units ("12.50") or, with --minor, minor units.
#[derive(Args, Debug, Clone)]
pub struct AmountArgs {
    /// Amount in major units, e.g. 12.50 (two decimals at most).
    #[arg(value_name = "AMOUNT", allow_hyphen_values = true)]
    pub amount: String,
    /// The amount is in minor units (e.g. 1250 for 12.50).
    #[arg(long)]
    pub minor: bool,
}

impl AmountArgs {
    /// Minor units.
    pub fn minor_units(&self) -> Result<u64, Failure> {
        money::parse(&self.amount, self.minor)
    }
}

#[derive(Subcommand, Debug)]
enum AdminCmd {
    /// Create a customer with an empty online account.
    CreateAccount {
        /// Customer id: 1 to 64 characters of A-Z a-z 0-9 . _ -
        customer: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// A customer's online balance.
    Account {
        /// Customer id.
        customer: String,
    },
    /// Deposit online money from outside into a customer's account.
    Deposit {
        /// Customer id.
        customer: String,
        #[command(flatten)]
        amount: AmountArgs,
        /// Makes a retry exactly-once (default: a fresh random key).
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Withdraw online money from a customer's account to outside.
    Withdraw {
        /// Customer id.
        customer: String,
        #[command(flatten)]
        amount: AmountArgs,
        /// Makes a retry exactly-once (default: a fresh random key).
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// A one-time enrollment token for one of a customer's wallets
    /// (`offpay wallet --dir DIR create --token TOKEN`).
    EnrollmentToken {
        /// Customer id.
        customer: String,
    },
    /// Wallets, in enrollment order.
    Wallets {
        /// Only this customer's.
        #[arg(long)]
        customer: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One wallet as the issuer knows it.
    Wallet {
        /// Wallet id (32 hex characters).
        wallet: String,
    },
    /// Load a wallet from its customer's online account (the customer's bank
    /// action): the issuer signs a load voucher, which the wallet picks up at
    /// its next `offpay wallet sync`, or from a file with `offpay wallet load
    /// --voucher FILE`.
    Load {
        /// Wallet id.
        wallet: String,
        #[command(flatten)]
        amount: AmountArgs,
        /// Also write the voucher to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Makes a retry exactly-once (default: a fresh random key).
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Revoke a wallet: its certificate goes on the CRL.
    Revoke {
        /// Wallet id.
        wallet: String,
        /// Why, in words.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lock a wallet (its next sync tells it to lock).
    Lock {
        /// Wallet id.
        wallet: String,
        /// Why, in words.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Unlock a locked wallet (its next sync unlocks it and adopts the
    /// issuer's checkpoint).
    Unlock {
        /// Wallet id.
        wallet: String,
    },
    /// Detected double spends, newest first, each with its proof (checked
    /// here against the scheme root).
    DoubleSpends {
        /// Only this payer's.
        #[arg(long, value_name = "WALLET")]
        payer: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// Write each proof to DIR/<payer>-<seq>.proof (for `offpay evidence verify`).
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Check the ledger invariants now (exit 1 if one is violated).
    Invariants,
    /// The scheme's PKI.
    Pki {
        #[command(subcommand)]
        cmd: PkiCmd,
    },
}

#[derive(Subcommand, Debug)]
enum PkiCmd {
    /// Write root.pem, issuer.pem and crl.pem into DIR (for OpenSSL and
    /// `offpay evidence verify --root DIR/root.pem`).
    Export {
        /// Target directory (created if needed).
        dir: PathBuf,
    },
}

fn env_nonempty(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// The server URL from the flag, `OFFPAY_SERVER`, or the default.
pub fn server_url(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| env_nonempty("OFFPAY_SERVER"))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string())
}

fn operator_token(a: &AdminArgs) -> Result<String, Failure> {
    if let Some(t) = a
        .token
        .clone()
        .or_else(|| env_nonempty("OFFPAY_OPERATOR_TOKEN"))
    {
        return Ok(t);
    }
    let dir = a
        .data_dir
        .clone()
        .or_else(|| env_nonempty("OFFPAY_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let p = dir.join(OPERATOR_TOKEN_FILE);
    match read_bounded(&p, 4096) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::usage(format!(
            "no operator token: pass --token, set OFFPAY_OPERATOR_TOKEN, or point --data-dir at the server's data directory ({} does not exist)",
            p.display()
        ))),
        Err(e) => Err(Failure::io(format!("cannot read {}", p.display()), &e)),
    }
}

fn customer_id(s: &str) -> Result<&str, Failure> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(s)
    } else {
        Err(Failure::usage(format!(
            "customer id {s:?}: 1 to 64 characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// A wallet id as typed.
pub fn wallet_id(s: &str) -> Result<WalletId, Failure> {
    WalletId::from_hex(s.trim())
        .ok_or_else(|| Failure::usage(format!("wallet id {s:?}: expected 32 hex characters")))
}

/// A fresh idempotency key.
fn fresh_key(prefix: &str) -> Result<String, Failure> {
    let b: [u8; 12] = offpay_protocol::entropy::random(&offpay_protocol::OsEntropy)
        .map_err(|e| Failure::refused("randomness", format!("random source: {e}")))?;
    Ok(format!(
        "{prefix}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}
fn i(v: &Value, k: &str) -> i128 {
    v.get(k)
        .and_then(|x| x.as_i64().map(i128::from).or(x.as_u64().map(i128::from)))
        .or_else(|| {
            v.get(k)
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
        })
        .unwrap_or(0)
}

/// The issuer's currency and trust anchors (`GET /v1/roots`).
pub fn roots(c: &Client) -> Result<Value, Failure> {
    c.get_json("/v1/roots")
}

pub fn run(a: AdminArgs) -> Outcome {
    let base = Client::new(&server_url(a.server.as_deref()))?;
    let op = || -> Result<Client, Failure> { Ok(base.clone().with_token(&operator_token(&a)?)) };
    match &a.cmd {
        AdminCmd::CreateAccount { customer, name } => {
            let id = customer_id(customer)?;
            let v = op()?.post_json_ok(
                "/v1/admin/customers",
                &json!({"id": id, "name": name.clone().unwrap_or_default()}),
            )?;
            Ok(Done::new(
                format!("created customer {id} (online balance {})", balance_of(&v)),
                v,
            ))
        }
        AdminCmd::Account { customer } => {
            let id = customer_id(customer)?;
            let v = op()?.get_json(&format!("/v1/admin/customers/{id}"))?;
            Ok(Done::new(
                format!("customer {id}: online balance {}", balance_of(&v)),
                v,
            ))
        }
        AdminCmd::Deposit {
            customer,
            amount,
            idempotency_key,
        }
        | AdminCmd::Withdraw {
            customer,
            amount,
            idempotency_key,
        } => {
            let deposit = matches!(a.cmd, AdminCmd::Deposit { .. });
            let id = customer_id(customer)?;
            let minor = amount.minor_units()?;
            let c = op()?;
            let currency = s(&roots(&c)?, "currency").to_string();
            let verb = if deposit { "deposit" } else { "withdraw" };
            let key = match idempotency_key {
                Some(k) => k.clone(),
                None => fresh_key(verb)?,
            };
            let v = c.post_json_ok(
                &format!("/v1/admin/customers/{id}/{verb}"),
                &json!({"amount_minor": minor, "currency": currency, "idempotency_key": key}),
            )?;
            let mut out = v.clone();
            out["amount_minor"] = json!(minor);
            out["idempotency_key"] = json!(key);
            Ok(Done::new(
                format!(
                    "{} {} {} {id}: online balance {}",
                    if deposit { "deposited" } else { "withdrew" },
                    money::show_u(minor, &currency),
                    if deposit { "into" } else { "from" },
                    balance_of(&v)
                ),
                out,
            ))
        }
        AdminCmd::EnrollmentToken { customer } => {
            let id = customer_id(customer)?;
            let v = op()?.post_json_ok(
                &format!("/v1/admin/customers/{id}/enrollment-tokens"),
                &json!({}),
            )?;
            Ok(Done::new(
                format!(
                    "enrollment token for {id} (one use): {}\n  offpay wallet --dir DIR create --server {} --token {}",
                    s(&v, "token"),
                    base.url(),
                    s(&v, "token")
                ),
                v,
            ))
        }
        AdminCmd::Wallets { customer, limit } => {
            let mut q = Vec::new();
            if let Some(cu) = customer {
                q.push(format!("customer={}", customer_id(cu)?));
            }
            if let Some(l) = limit {
                q.push(format!("limit={l}"));
            }
            let path = if q.is_empty() {
                "/v1/admin/wallets".to_string()
            } else {
                format!("/v1/admin/wallets?{}", q.join("&"))
            };
            let v = op()?.get_json(&path)?;
            let list = v["wallets"].as_array().cloned().unwrap_or_default();
            let mut h = format!("{} wallet(s)\n", list.len());
            for w in &list {
                h.push_str(&wallet_line(w));
                h.push('\n');
            }
            Ok(Done::new(h, v))
        }
        AdminCmd::Wallet { wallet } => {
            let id = wallet_id(wallet)?;
            let v = op()?.get_json(&format!("/v1/admin/wallets/{}", id.to_hex()))?;
            Ok(Done::new(wallet_details(&v), v))
        }
        AdminCmd::Load {
            wallet,
            amount,
            out,
            idempotency_key,
        } => {
            let id = wallet_id(wallet)?;
            let minor = amount.minor_units()?;
            let c = op()?;
            let currency = s(&roots(&c)?, "currency").to_string();
            let key = match idempotency_key {
                Some(k) => k.clone(),
                None => fresh_key("load")?,
            };
            let mut v = c.post_json_ok(
                &format!("/v1/admin/wallets/{}/load", id.to_hex()),
                &json!({"amount_minor": minor, "currency": currency, "idempotency_key": key}),
            )?;
            let mut h = format!(
                "loaded {} into wallet {} (voucher {}): the wallet applies it at its next `offpay wallet sync`",
                money::show_u(minor, &currency),
                id,
                v["load_seq"]
            );
            if let Some(p) = out {
                let bytes = STANDARD.decode(s(&v, "voucher")).map_err(|_| {
                    Failure::refused("bad_response", "the voucher in the answer is not base64")
                })?;
                write_atomic(p, &bytes)?;
                h.push_str(&format!(
                    "\n  voucher written to {} (`offpay wallet --dir DIR load --voucher {}`)",
                    p.display(),
                    p.display()
                ));
                v["voucher_file"] = json!(p.display().to_string());
            }
            v["idempotency_key"] = json!(key);
            Ok(Done::new(h, v))
        }
        AdminCmd::Revoke { wallet, reason } => {
            let id = wallet_id(wallet)?;
            let v = op()?.post_json_ok(
                &format!("/v1/admin/wallets/{}/revoke", id.to_hex()),
                &json!({"reason": reason}),
            )?;
            Ok(Done::new(
                format!(
                    "revoked wallet {id}: certificate {} is on the CRL from now on",
                    s(&v, "cert_serial")
                ),
                v,
            ))
        }
        AdminCmd::Lock { wallet, reason } => {
            let id = wallet_id(wallet)?;
            let v = op()?.post_json_ok(
                &format!("/v1/admin/wallets/{}/lock", id.to_hex()),
                &json!({"reason": reason}),
            )?;
            Ok(Done::new(
                format!("locked wallet {id}: its next sync tells it to lock"),
                v,
            ))
        }
        AdminCmd::Unlock { wallet } => {
            let id = wallet_id(wallet)?;
            let v = op()?.post_json_ok(
                &format!("/v1/admin/wallets/{}/unlock", id.to_hex()),
                &json!({}),
            )?;
            Ok(Done::new(
                format!(
                    "unlocked wallet {id}: its next sync unlocks it and adopts the issuer's checkpoint"
                ),
                v,
            ))
        }
        AdminCmd::DoubleSpends {
            payer,
            limit,
            out_dir,
        } => double_spends(&op()?, payer.as_deref(), *limit, out_dir.as_deref()),
        AdminCmd::Invariants => {
            let c = op()?;
            let v = c.get_json("/v1/admin/invariants")?;
            let h = invariants_text(&v, s(&roots(&c)?, "currency"));
            if v["ok"] == json!(true) {
                Ok(Done::new(h, v))
            } else {
                Err(Failure::refused(
                    "invariants_violated",
                    format!("ledger invariants violated:\n{h}"),
                ))
            }
        }
        AdminCmd::Pki {
            cmd: PkiCmd::Export { dir },
        } => pki_export(&base, dir),
    }
}

fn balance_of(v: &Value) -> String {
    show(i(v, "balance_minor"), s(v, "currency"))
}

fn wallet_line(w: &Value) -> String {
    format!(
        "{}  {:<12} {:<8} sub-account {:>14}  load seq {}  checkpoint {}",
        s(w, "wallet_id"),
        s(w, "customer"),
        s(w, "state"),
        show(i(w, "offline_balance_minor"), s(w, "currency")),
        w["load_seq"],
        w["checkpoint"],
    )
}

fn wallet_details(w: &Value) -> String {
    let cur = s(w, "currency");
    let mut h = format!(
        "wallet {}\n  customer:        {}\n  state:           {}\n",
        s(w, "wallet_id"),
        s(w, "customer"),
        s(w, "state")
    );
    if let Some(r) = w["reason"].as_str() {
        h.push_str(&format!("  reason:          {r}\n"));
    }
    h.push_str(&format!(
        "  sub-account:     {}\n  certificate:     serial {}, expires {}\n  load seq:        {}\n  checkpoint:      {}\n  report seq:      {}\n  clawed back:     {}\n  guarantee paid:  {}",
        show(i(w, "offline_balance_minor"), cur),
        s(w, "cert_serial"),
        w["cert_not_after"],
        w["load_seq"],
        w["checkpoint"],
        w["report_seq"],
        show(i(w, "clawed_back_minor"), cur),
        show(i(w, "guaranteed_minor"), cur),
    ));
    h
}

/// The invariant report in words (the sums are 128-bit decimal strings).
pub fn invariants_text(v: &Value, currency: &str) -> String {
    let t = &v["totals"];
    let m = |x: &Value| -> String {
        x.as_str()
            .and_then(|s| s.parse::<i128>().ok())
            .map_or_else(|| "?".into(), |n| show(n, currency))
    };
    let mut h = format!(
        "ledger invariants: {}\n  general ledger sums to {}, offline book sums to {}\n  offline pool {} = wallet sub-accounts {}\n  customers {}, guarantee {}, money in circulation {}",
        if v["ok"] == json!(true) {
            "ok"
        } else {
            "VIOLATED"
        },
        m(&t["general_sum"]),
        m(&t["offline_sum"]),
        m(&t["pool"]),
        m(&t["wallets"]),
        m(&t["customers"]),
        m(&t["guarantee"]),
        m(&v["supply"]),
    );
    if let Some(d) = t["drifted_accounts"].as_array().filter(|d| !d.is_empty()) {
        h.push_str(&format!("\n  drifted accounts: {d:?}"));
    }
    for x in v["violations"].as_array().into_iter().flatten() {
        h.push_str(&format!("\n  violation: {}", x.as_str().unwrap_or("")));
    }
    h
}

fn double_spends(
    c: &Client,
    payer: Option<&str>,
    limit: Option<u32>,
    out_dir: Option<&Path>,
) -> Outcome {
    let mut q = Vec::new();
    if let Some(p) = payer {
        q.push(format!("payer={}", wallet_id(p)?.to_hex()));
    }
    if let Some(l) = limit {
        q.push(format!("limit={l}"));
    }
    let path = if q.is_empty() {
        "/v1/admin/double-spends".to_string()
    } else {
        format!("/v1/admin/double-spends?{}", q.join("&"))
    };
    let mut v = c.get_json(&path)?;
    let root_pem = s(&roots(c)?, "root_pem").to_string();
    let root = Certificate::from_pem(&root_pem).map_err(|e| {
        Failure::refused(
            "bad_response",
            format!("the server's root certificate: {e}"),
        )
    })?;
    if let Some(d) = out_dir {
        std::fs::create_dir_all(d)
            .map_err(|e| Failure::io(format!("cannot create {}", d.display()), &e))?;
    }
    let list = v["double_spends"].as_array_mut().map(std::mem::take);
    let mut list = list.unwrap_or_default();
    let mut h = format!("{} double spend(s)\n", list.len());
    for d in &mut list {
        let proof = STANDARD.decode(s(d, "proof")).unwrap_or_default();
        let check = verify_double_spend_bytes(&proof, &root);
        h.push_str(&format!(
            "payer {} used seq {} twice (detected at {})\n  entries: {}\n  proof: {} bytes, {}\n",
            s(d, "payer"),
            d["seq"],
            d["detected"],
            d["entries"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            proof.len(),
            match &check {
                Ok(p) => format!(
                    "verifies against the scheme root (certificate serial {}, amounts {} and {})",
                    p.payer_serial, p.amounts[0], p.amounts[1]
                ),
                Err(e) => format!("DOES NOT VERIFY: {e}"),
            }
        ));
        d["proof_verified"] = json!(check.is_ok());
        if let Some(dir) = out_dir {
            let f = dir.join(format!("{}-{}.proof", s(d, "payer"), d["seq"]));
            write_atomic(&f, &proof)?;
            h.push_str(&format!(
                "  written to {} (offpay evidence verify {} --root root.pem)\n",
                f.display(),
                f.display()
            ));
            d["proof_file"] = json!(f.display().to_string());
        }
    }
    v["double_spends"] = Value::Array(list);
    Ok(Done::new(h, v))
}

fn pki_export(c: &Client, dir: &Path) -> Outcome {
    let r = roots(c)?;
    let crl = c.get("/v1/crl?format=pem")?;
    crl.success()?;
    let crl_pem = String::from_utf8(crl.body)
        .map_err(|_| Failure::refused("bad_response", "the CRL answer is not PEM text"))?;
    // Parse everything before writing anything.
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Failure::refused("bad_response", format!("the server's {what}: {e}"))
    };
    let root = Certificate::from_pem(s(&r, "root_pem")).map_err(|e| bad("root certificate", &e))?;
    let issuer =
        Certificate::from_pem(s(&r, "issuer_pem")).map_err(|e| bad("issuer certificate", &e))?;
    let crl = Crl::from_pem(&crl_pem).map_err(|e| bad("CRL", &e))?;
    issuer
        .verify_signed_by(&root)
        .map_err(|e| bad("issuer certificate", &e))?;
    crl.verify_signed_by(&issuer).map_err(|e| bad("CRL", &e))?;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(format!("cannot create {}", dir.display()), &e))?;
    let files = [
        ("root.pem", root.to_pem()),
        ("issuer.pem", issuer.to_pem()),
        ("crl.pem", crl.to_pem()),
    ];
    for (name, pem) in &files {
        write_atomic(&dir.join(name), pem.as_bytes())?;
    }
    let p = |n: &str| dir.join(n).display().to_string();
    Ok(Done::new(
        format!(
            "wrote {}, {} and {} (CRL number {}, {} revoked)\n  check a wallet certificate: openssl verify -CAfile {} -untrusted {} -crl_check -CRLfile {} wallet.pem",
            p("root.pem"),
            p("issuer.pem"),
            p("crl.pem"),
            crl.number(),
            crl.entries().len(),
            p("root.pem"),
            p("issuer.pem"),
            p("crl.pem"),
        ),
        json!({
            "dir": dir.display().to_string(),
            "root": p("root.pem"),
            "issuer": p("issuer.pem"),
            "crl": p("crl.pem"),
            "crl_number": crl.number(),
            "revoked_serials": crl.entries().iter().map(|e| e.serial.to_string()).collect::<Vec<_>>(),
        }),
    ))
}
