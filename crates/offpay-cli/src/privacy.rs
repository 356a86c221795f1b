//! `offpay admin retention run` and `offpay admin export WALLET`: privacy
//! by retention and data-subject access, over the operator API.

use std::path::Path;

use clap::Subcommand;
use offpay_client::api::RetentionRunRequest;
use offpay_protocol::WalletId;
use serde_json::json;

use crate::http::Client;
use crate::out::{Done, Failure, Outcome, to_json};
use crate::walletdir::write_atomic;

#[derive(Subcommand, Debug)]
pub(crate) enum RetentionCmd {
    /// Delete the payer-payee pairing of settled payments older than the
    /// window (`[privacy] retention_seconds`), once delivered and both
    /// wallets are checkpointed past them (the server also does it every
    /// retention interval). One batch; run again while `more`.
    Run {
        /// At most this many payments (1 to 1,000).
        #[arg(long)]
        limit: Option<u32>,
    },
}

pub(crate) fn run_retention(cmd: &RetentionCmd, op: &Client) -> Outcome {
    let RetentionCmd::Run { limit } = cmd;
    let r = op.run_retention(&RetentionRunRequest { limit: *limit })?;
    let h = if !r.enabled {
        "no retention window is set ([privacy] retention_seconds): every payment is kept"
            .to_string()
    } else {
        let more = if r.more {
            " (more are due: run it again)"
        } else {
            ""
        };
        format!(
            "deleted the payer-payee pairing of {} payment(s) older than {} s ({} posting(s) folded into {} summary posting(s); {} kept for open cases){more}",
            r.pruned,
            r.retention_seconds.unwrap_or_default(),
            r.postings_folded,
            r.summaries,
            r.held_by_cases
        )
    };
    Ok(Done::new(h, to_json(&r)?))
}

pub(crate) fn export(op: &Client, wallet: WalletId, out: Option<&Path>) -> Outcome {
    let x = op.export_wallet(&wallet.to_hex())?;
    let v = to_json(&x)?;
    let mut h = format!(
        "wallet {wallet} of customer {}: {} certificate(s), {} load(s), {} checkpoint(s), {} entry(ies) ({} pruned), {} settlement(s), {} posting(s){}",
        x.customer,
        x.certificates.len(),
        x.vouchers.len(),
        x.checkpoints.len(),
        x.entries.len(),
        x.entries.iter().filter(|e| e.pruned).count(),
        x.settlements.len(),
        x.wallet_postings.len() + x.customer_postings.len(),
        if x.truncated {
            " (lists cut at 10,000 rows)"
        } else {
            ""
        }
    );
    if let Some(p) = out {
        let text = serde_json::to_vec_pretty(&v)
            .map_err(|e| Failure::refused("json", format!("cannot render the export: {e}")))?;
        write_atomic(p, &text)?;
        h.push_str(&format!("\n  written to {}", p.display()));
        return Ok(Done::new(
            h,
            json!({"file": p.display().to_string(), "export": v}),
        ));
    }
    Ok(Done::new(h, v))
}
