//! `offpay admin case open|list|show|decide|resolve|bundle`: dispute cases
//! over the HTTP API (docs/LIABILITY.md has the rules that decide them).

use std::path::PathBuf;

use clap::Subcommand;
use offpay_client::api::{CaseActionRequest, CaseOpenRequest, CaseView, CasesQuery, b64_decode};

use offpay_protocol::WalletId;
use serde_json::Value;

use crate::http::Client;
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::write_atomic;

#[derive(Subcommand, Debug)]
pub(crate) enum CaseCmd {
    /// Open a case on a payment (--wallet is its payer, --seq its seq) or,
    /// for not_my_payment, on a wallet (no --seq). The system's own evidence
    /// is attached at once.
    Open {
        /// paid_not_received, not_my_payment or refused_but_debited.
        #[arg(long)]
        kind: String,
        /// The payer of the payment, or the wallet (hex).
        #[arg(long)]
        wallet: String,
        /// The payment's seq.
        #[arg(long)]
        seq: Option<u64>,
        /// The operator opening it.
        #[arg(long = "by", value_name = "NAME")]
        by: String,
        /// The customer's words.
        #[arg(long)]
        note: Option<String>,
    },
    /// Cases by id, optionally in one state.
    List {
        /// open, decided, resolved or rejected.
        #[arg(long)]
        state: Option<String>,
        /// Only cases with a larger id.
        #[arg(long)]
        after: Option<u64>,
        /// At most this many (1 to 1,000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// One case with its state changes.
    Show {
        /// Case id.
        id: u64,
    },
    /// Decide a case by the liability rules, on the evidence as it is now.
    Decide {
        /// Case id.
        id: u64,
        /// The operator.
        #[arg(long = "by", value_name = "NAME")]
        by: String,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// Resolve a decided case: its postings (if any), then resolved or rejected.
    Resolve {
        /// Case id.
        id: u64,
        /// The operator.
        #[arg(long = "by", value_name = "NAME")]
        by: String,
        /// Why, for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// Write the case's signed evidence bundle to a file (verify it with
    /// `offpay evidence verify FILE --root ROOT.pem`).
    Bundle {
        /// Case id.
        id: u64,
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

fn wallet_id(s: &str) -> Result<WalletId, Failure> {
    WalletId::from_hex(s.trim())
        .ok_or_else(|| Failure::usage(format!("wallet id {s:?}: expected 32 hex characters")))
}

fn to_json<T: serde::Serialize>(t: &T) -> Result<Value, Failure> {
    serde_json::to_value(t)
        .map_err(|e| Failure::refused("internal", format!("cannot encode the answer: {e}")))
}

fn line(c: &CaseView) -> String {
    let subject = match c.seq {
        Some(seq) => format!("payment {} seq {seq}", c.wallet_id),
        None => format!("wallet {}", c.wallet_id),
    };
    let decision = c
        .decision
        .as_deref()
        .map(|d| format!(", decision {d}"))
        .unwrap_or_default();
    format!(
        "case {} {} on {subject}: {}{decision}, {} minor in dispute, {} minor paid",
        c.id, c.kind, c.state, c.amount_minor, c.paid_minor
    )
}

fn answer(c: &CaseView) -> Outcome {
    Ok(Done::new(line(c), to_json(c)?))
}

pub(crate) fn run(cmd: &CaseCmd, op: impl Fn() -> Result<Client, Failure>) -> Outcome {
    match cmd {
        CaseCmd::Open {
            kind,
            wallet,
            seq,
            by,
            note,
        } => {
            let id = wallet_id(wallet)?;
            answer(&op()?.open_case(&CaseOpenRequest {
                kind: kind.clone(),
                wallet_id: id.to_hex(),
                seq: *seq,
                opened_by: by.clone(),
                note: note.clone(),
            })?)
        }
        CaseCmd::List {
            state,
            after,
            limit,
        } => {
            let l = op()?.cases(&CasesQuery {
                state: state.clone(),
                after: *after,
                limit: *limit,
            })?;
            let text = if l.cases.is_empty() {
                "no cases".to_string()
            } else {
                l.cases.iter().map(line).collect::<Vec<_>>().join("\n")
            };
            Ok(Done::new(text, to_json(&l)?))
        }
        CaseCmd::Show { id } => {
            let c = op()?.case(*id)?;
            let mut text = line(&c);
            for e in &c.events {
                text.push_str(&format!(
                    "\n  {} at {}: {} -> {} by {}{}",
                    e.n,
                    e.at,
                    e.from.as_deref().unwrap_or("(opened)"),
                    e.to,
                    e.actor,
                    if e.note.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.note)
                    }
                ));
            }
            Ok(Done::new(text, to_json(&c)?))
        }
        CaseCmd::Decide { id, by, note } => answer(&op()?.decide_case(
            *id,
            &CaseActionRequest {
                actor: by.clone(),
                note: note.clone(),
            },
        )?),
        CaseCmd::Resolve { id, by, note } => answer(&op()?.resolve_case(
            *id,
            &CaseActionRequest {
                actor: by.clone(),
                note: note.clone(),
            },
        )?),
        CaseCmd::Bundle { id, out } => {
            let b = op()?.case_bundle(*id)?;
            let bytes = b64_decode(&b.bundle).map_err(|e| {
                Failure::refused("malformed_answer", format!("the bundle is not base64: {e}"))
            })?;
            write_atomic(out, &bytes)?;
            Ok(Done::new(
                format!(
                    "wrote the evidence bundle of case {id} ({} bytes) to {}",
                    bytes.len(),
                    out.display()
                ),
                serde_json::json!({"id": id, "file": out.display().to_string(), "bytes": bytes.len()}),
            ))
        }
    }
}
