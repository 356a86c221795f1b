//! `offpay admin ...`: the operator's commands over the HTTP API.
//!
//! The operator token comes from `--token`, `OFFPAY_OPERATOR_TOKEN`, or the
//! server's data directory (`--data-dir`, `OFFPAY_DATA_DIR`, default
//! `./offpay-data`: the file `operator-token` the first start wrote).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use offpay_client::api::{
    CloseRequest, CreateCustomerRequest, CustomerBalance, DoubleSpendsQuery, InvariantView,
    LockRequest, MoneyRequest, RekeyRequest, RetireRequest, RevokeRequest, RootsResponse,
    WalletView, WalletsQuery,
};
use offpay_protocol::pki::{Certificate, Crl};
use offpay_server::config::{DEFAULT_DATA_DIR, OPERATOR_TOKEN_FILE};
use serde_json::{Value, json};

use crate::http::{self, Client};
use crate::money::{self, show};
use crate::out::{Done, Failure, Outcome, to_json, wallet_id};
use crate::walletdir::{read_bounded, write_atomic};

/// Default server URL.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Args, Debug)]
pub(crate) struct AdminArgs {
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
pub(crate) struct AmountArgs {
    /// Amount in major units, e.g. 12.50 (two decimals at most).
    #[arg(value_name = "AMOUNT", allow_hyphen_values = true)]
    pub amount: String,
    /// The amount is in minor units (e.g. 1250 for 12.50).
    #[arg(long)]
    pub minor: bool,
}

impl AmountArgs {
    /// Minor units.
    pub(crate) fn minor_units(&self) -> Result<u64, Failure> {
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
    /// (`offpay wallet --dir DIR create --token TOKEN`); with --terminal, for
    /// a receive-only merchant terminal of that customer (`offpay terminal
    /// --dir DIR create --token TOKEN`), whose takings are swept to the
    /// customer's online account at each sync.
    EnrollmentToken {
        /// Customer id.
        customer: String,
        /// Enroll a receive-only merchant terminal, not a personal wallet.
        #[arg(long)]
        terminal: bool,
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
    /// Retire a wallet reported lost or broken: revoked at once, its money
    /// paid out when it closes (certificate expiry plus the payees' offline
    /// limit). Enroll the customer's new wallet right away.
    Retire {
        /// Wallet id.
        wallet: String,
        /// Lost or stolen.
        #[arg(long, conflicts_with = "broken", required_unless_present = "broken")]
        lost: bool,
        /// Broken (tampered vault, failed counter).
        #[arg(long)]
        broken: bool,
        /// A note for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// Close the revoked wallets due now (the server also does it every
    /// close interval): return what their TA never held, pay them out.
    CloseDue {
        /// At most this many (1 to 1,000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// The scheme's rules for money no TA holds (set in the server's configuration).
    Lifecycle,
    /// Lock a wallet (its next sync tells it to lock).
    Lock {
        /// Wallet id.
        wallet: String,
        /// Why, in words.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ask a wallet for a new key (its next sync tells it to make one; the
    /// sync after certifies it), or cancel such a request.
    Rekey {
        /// Wallet id.
        wallet: String,
        /// The new key's suite: ed25519, p-256 or ml-dsa-44 (default: the
        /// suite of its current key).
        #[arg(long, conflicts_with = "cancel")]
        suite: Option<String>,
        /// Withdraw a re-key request not yet completed.
        #[arg(long)]
        cancel: bool,
    },
    /// Unlock a locked wallet (its next sync unlocks it and adopts the
    /// issuer's checkpoint).
    Unlock {
        /// Wallet id.
        wallet: String,
    },
    /// Approve a PIN-locked wallet's unlock request (sent by `offpay wallet
    /// unlock`), only after the customer re-authenticated with the bank.
    UnlockPin {
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
    /// Dispute cases: open, list, show, decide, resolve, bundle.
    Case {
        #[command(subcommand)]
        cmd: crate::case::CaseCmd,
    },
    /// This issuer as a member of a scheme: csr, join, status, sync.
    Scheme {
        #[command(subcommand)]
        cmd: crate::member::MemberCmd,
    },
    /// Privacy by retention: delete the payer-payee pairing of old payments.
    Retention {
        #[command(subcommand)]
        cmd: crate::privacy::RetentionCmd,
    },
    /// Everything the issuer holds about a wallet and its customer, as JSON
    /// for the customer (data-subject access).
    Export {
        /// Wallet id.
        wallet: String,
        /// Write the JSON export to this file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// `offpay admin unlock-pin WALLET`.
pub(crate) fn admin_unlock_pin(op: &Client, wallet: &str) -> Outcome {
    let id = wallet_id(wallet)?;
    let v = op.approve_pin_unlock(&id.to_hex())?;
    Ok(Done::new(
        format!(
            "approved the PIN unlock of wallet {id} ({} wrong PINs): its next `offpay wallet unlock` receives the signed unlock",
            v.attempts
        ),
        to_json(&v)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_minor_units_become_major_units() {
        assert_eq!(
            in_major_units(
                "insufficient funds: balance 2500, needed 100000 (minor units)",
                "EUR"
            ),
            "insufficient funds: balance 25.00 EUR, needed 1000.00 EUR"
        );
        assert_eq!(
            in_major_units("no such customer", "EUR"),
            "no such customer"
        );
    }
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
pub(crate) fn server_url(flag: Option<&str>) -> String {
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

/// A fresh idempotency key.
fn fresh_key(prefix: &str) -> Result<String, Failure> {
    let b: [u8; 12] = offpay_protocol::entropy::random(&offpay_protocol::OsEntropy)
        .map_err(|e| Failure::refused("randomness", format!("random source: {e}")))?;
    Ok(format!(
        "{prefix}-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

/// A 128-bit sum of the invariant report (a decimal string), or a refusal naming it.
pub(crate) fn sum(what: &str, s: &str) -> Result<i128, Failure> {
    s.parse().map_err(|_| {
        Failure::refused(
            "bad_response",
            format!("the server's answer is malformed: {what} {s:?} is not a whole number"),
        )
    })
}

/// The issuer's currency and trust anchors (`GET /v1/roots`).
pub(crate) fn roots(c: &Client) -> Result<RootsResponse, Failure> {
    Ok(c.roots()?)
}

fn money_request(minor: u64, currency: String, key: &str) -> MoneyRequest {
    MoneyRequest {
        amount_minor: minor,
        currency,
        idempotency_key: key.to_string(),
    }
}

/// The server's JSON in the CLI's conventions (README, "The JSON
/// contract"): times in `*_at` fields, certificate serials in hex as OpenSSL
/// prints them.
pub(crate) fn conventions(mut v: Value) -> Value {
    const RENAMED: &[(&str, &str)] = &[
        ("created", "created_at"),
        ("detected", "detected_at"),
        ("cert_not_after", "cert_not_after_at"),
    ];
    match &mut v {
        Value::Object(m) => {
            for (from, to) in RENAMED {
                if let Some(x) = m.remove(*from) {
                    m.insert((*to).into(), x);
                }
            }
            if let Some(Value::String(serial)) = m.get_mut("cert_serial")
                && let Ok(n) = serial.parse::<u64>()
            {
                *serial = crate::show::serial_hex(n);
            }
            for x in m.values_mut() {
                *x = conventions(std::mem::take(x));
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                *x = conventions(std::mem::take(x));
            }
        }
        _ => {}
    }
    v
}

/// A ledger sum (a 128-bit decimal string from the server) as a JSON
/// integer of minor units; a sum beyond 64 bits (impossible under the
/// amount cap) stays a decimal string rather than lose digits.
fn sum_minor(x: &Value) -> Value {
    match x.as_str().and_then(|t| t.parse::<i128>().ok()) {
        Some(n) => i64::try_from(n).map_or_else(|_| json!(n.to_string()), |n| json!(n)),
        None => x.clone(),
    }
}

/// `admin invariants` in the JSON conventions: every sum an integer in a
/// `*_minor` field, next to `currency`.
fn invariants_json(v: &Value, currency: &str) -> Value {
    let t = &v["totals"];
    let mut totals = serde_json::Map::new();
    for k in [
        "general_sum",
        "offline_sum",
        "pool",
        "wallets",
        "external",
        "guarantee",
        "customers",
        "net_external_postings",
    ] {
        totals.insert(format!("{k}_minor"), sum_minor(&t[k]));
    }
    totals.insert("drifted_accounts".into(), t["drifted_accounts"].clone());
    json!({
        "invariants_ok": v["ok"],
        "violations": v["violations"],
        "currency": currency,
        "totals": totals,
        "supply_minor": sum_minor(&v["supply"]),
    })
}

/// A server message that speaks minor units ("balance 2500, needed 100000
/// (minor units)") in the major units the CLI speaks ("balance 25.00 EUR,
/// needed 1000.00 EUR").
pub(crate) fn in_major_units(message: &str, currency: &str) -> String {
    let Some(head) = message.strip_suffix(" (minor units)") else {
        return message.to_string();
    };
    let mut out = Vec::new();
    for word in head.split(' ') {
        let (num, tail) = match word.strip_suffix(',') {
            Some(n) => (n, ","),
            None => (word, ""),
        };
        match num.parse::<i128>() {
            Ok(n) => out.push(format!("{}{tail}", show(n, currency))),
            Err(_) => out.push(word.to_string()),
        }
    }
    out.join(" ")
}

pub(crate) fn run(a: AdminArgs) -> Outcome {
    let base = http::client(&server_url(a.server.as_deref()))?;
    let result = run_raw(a).map_err(|f| match f {
        Failure::Refused { code, message } if message.ends_with("(minor units)") => {
            let cur = roots(&base).map(|r| r.currency).unwrap_or_default();
            Failure::Refused {
                code,
                message: in_major_units(&message, &cur),
            }
        }
        f => f,
    });
    result.map(|mut d| {
        let v = conventions(Value::Object(std::mem::take(&mut d.json)));
        if let Value::Object(m) = v {
            d.json = m;
        }
        d
    })
}

#[expect(clippy::too_many_lines, clippy::many_single_char_names)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
fn run_raw(a: AdminArgs) -> Outcome {
    let base = http::client(&server_url(a.server.as_deref()))?;
    let op = || -> Result<Client, Failure> { Ok(base.clone().with_token(&operator_token(&a)?)) };
    match &a.cmd {
        AdminCmd::Scheme { cmd } => crate::member::run(cmd, a.data_dir.as_ref(), op),
        AdminCmd::Case { cmd } => crate::case::run(cmd, op),
        AdminCmd::Retention { cmd } => crate::privacy::run_retention(cmd, &op()?),
        AdminCmd::Export { wallet, out } => {
            crate::privacy::export(&op()?, wallet_id(wallet)?, out.as_deref())
        }
        AdminCmd::CreateAccount { customer, name } => {
            let id = customer_id(customer)?;
            let v = op()?.create_customer(&CreateCustomerRequest {
                id: id.to_string(),
                name: name.clone().unwrap_or_default(),
            })?;
            Ok(Done::new(
                format!("created customer {id} (online balance {})", balance_of(&v)),
                to_json(&v)?,
            ))
        }
        AdminCmd::Account { customer } => {
            let id = customer_id(customer)?;
            let v = op()?.customer(id)?;
            Ok(Done::new(
                format!("customer {id}: online balance {}", balance_of(&v)),
                to_json(&v)?,
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
            let currency = roots(&c)?.currency;
            let verb = if deposit { "deposit" } else { "withdraw" };
            let key = match idempotency_key {
                Some(k) => k.clone(),
                None => fresh_key(verb)?,
            };
            let req = money_request(minor, currency.clone(), &key);
            let v = if deposit {
                c.deposit(id, &req)?
            } else {
                c.withdraw(id, &req)?
            };
            let mut out = to_json(&v)?;
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
        AdminCmd::EnrollmentToken { customer, terminal } => {
            let terminal = *terminal;
            let id = customer_id(customer)?;
            let q = offpay_client::api::EnrollmentTokenQuery {
                profile: terminal.then(|| "terminal".to_string()),
            };
            let v = op()?.enrollment_token_for(id, &q)?;
            let (what, command) = if terminal {
                ("terminal enrollment token", "terminal")
            } else {
                ("enrollment token", "wallet")
            };
            Ok(Done::new(
                format!(
                    "{what} for {id} (one use): {}\n  offpay {command} --dir DIR create --server {} --token {}",
                    v.token,
                    base.url(),
                    v.token
                ),
                to_json(&v)?,
            ))
        }
        AdminCmd::Wallets { customer, limit } => {
            let customer = match customer {
                Some(cu) => Some(customer_id(cu)?.to_string()),
                None => None,
            };
            let v = op()?.wallets(&WalletsQuery {
                customer,
                limit: *limit,
            })?;
            let mut h = format!("{} wallet(s)\n", v.wallets.len());
            for w in &v.wallets {
                h.push_str(&wallet_line(w));
                h.push('\n');
            }
            Ok(Done::new(h, to_json(&v)?))
        }
        AdminCmd::Wallet { wallet } => {
            let id = wallet_id(wallet)?;
            let v = op()?.wallet(&id.to_hex())?;
            Ok(Done::new(wallet_details(&v), to_json(&v)?))
        }
        AdminCmd::Load {
            wallet,
            amount,
            out,
            idempotency_key,
        } => {
            let id = wallet_id(wallet)?;
            let minor = amount.minor_units()?;
            if let Some(p) = out {
                crate::msgio::check_writable(p).map_err(|why| {
                    Failure::refused(
                        "io",
                        format!(
                            "cannot write the voucher to {}: {why}; nothing was loaded",
                            p.display()
                        ),
                    )
                })?;
            }
            let c = op()?;
            let currency = roots(&c)?.currency;
            let key = match idempotency_key {
                Some(k) => k.clone(),
                None => fresh_key("load")?,
            };
            let r = c.load(&id.to_hex(), &money_request(minor, currency.clone(), &key))?;
            let mut h = format!(
                "loaded {} into wallet {} (voucher {}): the wallet applies it at its next `offpay wallet sync`",
                money::show_u(minor, &currency),
                id,
                r.load_seq
            );
            let mut v = to_json(&r)?;
            if let Some(p) = out {
                let bytes = http::b64_field("the voucher", &r.voucher)?;
                if let Err(f) = write_atomic(p, &bytes) {
                    v["idempotency_key"] = json!(key);
                    return Err(Failure::undelivered(
                        "not_written",
                        format!(
                            "{h}; but the voucher file was not written: {}. The load stands: the wallet applies it at its next sync (or run the same command with --idempotency-key {key} to get the voucher again, not a second load)",
                            f.message()
                        ),
                        v,
                    ));
                }
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
            let v = op()?.revoke(
                &id.to_hex(),
                &RevokeRequest {
                    reason: reason.clone(),
                    reason_code: None,
                },
            )?;
            Ok(Done::new(
                format!(
                    "revoked wallet {id}: certificate serial {} is on the CRL from now on",
                    serial_text(&v.cert_serial)
                ),
                to_json(&v)?,
            ))
        }
        AdminCmd::Retire {
            wallet,
            lost,
            broken: _,
            note,
        } => {
            let id = wallet_id(wallet)?;
            let reason = if *lost { "lost" } else { "broken" };
            let v = op()?.retire(
                &id.to_hex(),
                &RetireRequest {
                    reason: reason.into(),
                    note: note.clone(),
                },
            )?;
            let when = v
                .closes_at
                .map(|t| {
                    format!("; its money is paid out by the scheme's rules from {t} (Unix time)")
                })
                .unwrap_or_default();
            Ok(Done::new(
                format!(
                    "retired wallet {id} as {reason}: certificate serial {} is on the CRL from now on{when}",
                    serial_text(&v.cert_serial)
                ),
                to_json(&v)?,
            ))
        }
        AdminCmd::CloseDue { limit } => {
            let c = op()?;
            let r = c.close_due(&CloseRequest { limit: *limit })?;
            let currency = roots(&c)?.currency;
            let cur = currency.as_str();
            let more = if r.more {
                " (more are due: run it again)"
            } else {
                ""
            };
            Ok(Done::new(
                format!(
                    "closed {} wallet(s): paid out {}, forfeited to the reserve {}, returned {} payment(s) of {} to their payers{more}",
                    r.closed,
                    show(i128::from(r.paid_out_minor), cur),
                    show(i128::from(r.forfeited_minor), cur),
                    r.returned,
                    show(i128::from(r.returned_minor), cur),
                ),
                {
                    let mut v = to_json(&r)?;
                    v["currency"] = json!(cur);
                    v
                },
            ))
        }
        AdminCmd::Lifecycle => {
            let r = op()?.lifecycle_rules()?;
            Ok(Done::new(
                format!(
                    "lost wallets: {}; a payment its payee never held goes back to the payer after {} s",
                    if r.refund_lost {
                        "paid out to the customer at close"
                    } else {
                        "not refunded (their money goes to the reserve)"
                    },
                    r.return_after_seconds
                ),
                to_json(&r)?,
            ))
        }
        AdminCmd::Lock { wallet, reason } => {
            let id = wallet_id(wallet)?;
            let v = op()?.lock(
                &id.to_hex(),
                &LockRequest {
                    reason: reason.clone(),
                },
            )?;
            Ok(Done::new(
                format!("locked wallet {id}: its next sync tells it to lock"),
                to_json(&v)?,
            ))
        }
        AdminCmd::Rekey {
            wallet,
            suite,
            cancel,
        } => {
            let id = wallet_id(wallet)?;
            let v = op()?.rekey(
                &id.to_hex(),
                &RekeyRequest {
                    suite: suite.clone(),
                    cancel: *cancel,
                },
            )?;
            let what = match &v.rekey_suite {
                Some(s) => format!(
                    "re-key of wallet {id} to {s} requested: its next sync makes the key, the one after certifies it"
                ),
                None => format!("re-key of wallet {id} cancelled"),
            };
            Ok(Done::new(what, to_json(&v)?))
        }
        AdminCmd::Unlock { wallet } => {
            let id = wallet_id(wallet)?;
            let v = op()?.unlock(&id.to_hex())?;
            Ok(Done::new(
                format!(
                    "unlocked wallet {id}: its next sync unlocks it and adopts the issuer's checkpoint"
                ),
                to_json(&v)?,
            ))
        }
        AdminCmd::UnlockPin { wallet } => admin_unlock_pin(&op()?, wallet),
        AdminCmd::DoubleSpends {
            payer,
            limit,
            out_dir,
        } => double_spends(&op()?, payer.as_deref(), *limit, out_dir.as_deref()),
        AdminCmd::Invariants => {
            let c = op()?;
            let v = c.invariants()?;
            let currency = roots(&c)?.currency;
            let h = invariants_text(&v, &currency)?;
            if v.ok {
                Ok(Done::new(h, invariants_json(&to_json(&v)?, &currency)))
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

fn balance_of(v: &CustomerBalance) -> String {
    show(i128::from(v.balance_minor), &v.currency)
}

fn wallet_line(w: &WalletView) -> String {
    let stranded = i128::from(w.stranded_minor);
    format!(
        "{}  {:<12} {:<8} sub-account {:>14}  load seq {}  checkpoint {}{}",
        w.wallet_id,
        w.customer,
        w.state,
        show(i128::from(w.offline_balance_minor), &w.currency),
        w.load_seq,
        w.checkpoint,
        if stranded != 0 {
            format!("  not in the wallet: {}", show(stranded, &w.currency))
        } else {
            String::new()
        }
    )
}

/// A decimal serial from the server in hex, as OpenSSL prints it.
fn serial_text(decimal: &str) -> String {
    decimal
        .parse::<u64>()
        .map_or_else(|_| decimal.to_string(), crate::show::serial_hex)
}

fn wallet_details(w: &WalletView) -> String {
    let cur = w.currency.as_str();
    let mut h = format!(
        "wallet {}\n  customer:        {}\n  state:           {}\n",
        w.wallet_id, w.customer, w.state
    );
    if let Some(r) = &w.reason {
        h.push_str(&format!("  reason:          {r}\n"));
    }
    h.push_str(&format!(
        "  sub-account:     {}\n  certificate:     serial {}, expires {}\n  load seq:        {}\n  checkpoint:      {}\n  report seq:      {}\n  clawed back:     {}\n  guarantee paid:  {}",
        show(i128::from(w.offline_balance_minor), cur),
        serial_text(&w.cert_serial),
        crate::show::date(w.cert_not_after),
        w.load_seq,
        w.checkpoint,
        w.report_seq,
        show(i128::from(w.clawed_back_minor), cur),
        show(i128::from(w.guaranteed_minor), cur),
    ));
    let stranded = i128::from(w.stranded_minor);
    if stranded != 0 {
        h.push_str(&format!(
            "\n  not in the wallet: {} of the sub-account, as of checkpoint {}: payments settled to this wallet that its TA refused or never received (the TA holds the sub-account minus this, minus vouchers not yet applied)",
            show(stranded, cur),
            w.stranded_checkpoint,
        ));
    }
    h
}

/// The invariant report in words (the sums are 128-bit decimal strings).
pub(crate) fn invariants_text(v: &InvariantView, currency: &str) -> Result<String, Failure> {
    let t = &v.totals;
    let m = |what: &str, x: &str| -> Result<String, Failure> { Ok(show(sum(what, x)?, currency)) };
    let mut h = format!(
        "ledger invariants: {}\n  general ledger sums to {}, offline book sums to {}\n  offline pool {} = wallet sub-accounts {}\n  customers {}, guarantee {}, money in circulation {}",
        if v.ok { "ok" } else { "VIOLATED" },
        m("general_sum", &t.general_sum)?,
        m("offline_sum", &t.offline_sum)?,
        m("pool", &t.pool)?,
        m("wallets", &t.wallets)?,
        m("customers", &t.customers)?,
        m("guarantee", &t.guarantee)?,
        m("supply", &v.supply)?,
    );
    if !t.drifted_accounts.is_empty() {
        h.push_str(&format!("\n  drifted accounts: {:?}", t.drifted_accounts));
    }
    for x in &v.violations {
        h.push_str(&format!("\n  violation: {x}"));
    }
    Ok(h)
}

fn double_spends(
    c: &Client,
    payer: Option<&str>,
    limit: Option<u32>,
    out_dir: Option<&Path>,
) -> Outcome {
    let payer = match payer {
        Some(p) => Some(wallet_id(p)?.to_hex()),
        None => None,
    };
    let found = c.double_spends(&DoubleSpendsQuery { payer, limit })?;
    let root_pem = roots(c)?.root_pem;
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
    let mut h = format!("{} double spend(s)\n", found.double_spends.len());
    let mut list = Vec::with_capacity(found.double_spends.len());
    for d in &found.double_spends {
        let proof = http::b64_field("a double-spend proof", &d.proof)?;
        let (verified, check) = crate::evidence::proof_check(&proof, &root);
        h.push_str(&format!(
            "payer {} used seq {} twice (detected {})\n  entries: {}\n  proof: {} bytes, {check}\n",
            d.payer,
            d.seq,
            crate::show::date(d.detected),
            d.entries.join(", "),
            proof.len(),
        ));
        let mut j = to_json(d)?;
        j["proof_verified"] = json!(verified);
        if let Some(dir) = out_dir {
            let f = dir.join(format!("{}-{}.proof", d.payer, d.seq));
            write_atomic(&f, &proof)?;
            h.push_str(&format!(
                "  written to {} (offpay evidence verify {} --root root.pem)\n",
                f.display(),
                f.display()
            ));
            j["proof_file"] = json!(f.display().to_string());
        }
        list.push(j);
    }
    Ok(Done::new(h, json!({ "double_spends": list })))
}

fn pki_export(c: &Client, dir: &Path) -> Outcome {
    let r = roots(c)?;
    let crl_pem = c.crl_pem()?;
    // Parse everything before writing anything.
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Failure::refused("bad_response", format!("the server's {what}: {e}"))
    };
    let root = Certificate::from_pem(&r.root_pem).map_err(|e| bad("root certificate", &e))?;
    let issuer = Certificate::from_pem(&r.issuer_pem).map_err(|e| bad("issuer certificate", &e))?;
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
            "revoked_serials": crl.entries().iter().map(|e| crate::show::serial_hex(e.serial)).collect::<Vec<_>>(),
        }),
    ))
}
