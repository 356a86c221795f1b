//! `offpay terminal --dir DIR ...`: a receive-only merchant terminal.
//!
//! A terminal is a wallet whose certificate names the terminal profile
//! (enrolled with `offpay admin enrollment-token CUSTOMER --terminal`): it
//! asks for payments and receives them, never pays, and at each sync sweeps
//! its takings above the policy's float to the merchant's online account.
//! Its directory is a wallet directory; these are the wallet commands a
//! terminal has (`offpay wallet --dir DIR pay` on it is refused by its TA,
//! `terminal_cannot_pay`).
//!
//! ```text
//! offpay admin enrollment-token shop --terminal
//! offpay terminal --dir till create --token TOKEN
//! offpay terminal --dir till receive --listen 127.0.0.1:7000 --amount 4.20
//! offpay terminal --dir till sync          # takings -> the shop's account
//! ```

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::admin::AmountArgs;
use crate::out::Outcome;
use crate::wallet::{
    self, CreateArgs, ReceiveArgs, RequestArgs, RequestsArgs, WalletArgs, WalletCmd,
};

#[derive(Args, Debug)]
pub(crate) struct TerminalArgs {
    /// The terminal's directory (a wallet directory) [env: OFFPAY_WALLET_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: TerminalCmd,
}

#[derive(Subcommand, Debug)]
enum TerminalCmd {
    /// Create the terminal and enroll it, with a one-time token from
    /// `offpay admin enrollment-token CUSTOMER --terminal`.
    Create(CreateArgs),
    /// Ask for AMOUNT with a signed request (a payment file or QR follows).
    Request(RequestArgs),
    /// Accept a payment and answer with a receipt; or with --listen ADDR
    /// --amount AMOUNT, take one payment over the tap socket.
    Receive(ReceiveArgs),
    /// The payment requests still accepted, or cancel one.
    Requests(RequestsArgs),
    /// Reconcile with the issuer, sweeping the takings above the float to
    /// the merchant's online account (a redeem the report carries).
    Sync {
        /// Server URL (default: the one the terminal was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Move takings to the merchant's online account now (an online redeem).
    Redeem {
        #[command(flatten)]
        amount: AmountArgs,
        /// Server URL (default: the one the terminal was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// The offline balance (the takings not swept yet).
    Balance,
    /// Payments received and sweeps, oldest first.
    History,
    /// Locked or not, receive limits left before a sync, the next sweep.
    Status,
    /// PIN-locked? Ask the issuer to unlock the vault.
    Unlock {
        /// Server URL (default: the one the terminal was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// The terminal certificate (PEM).
    Cert {
        /// Also write it to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Run a terminal command: the wallet command of the same name on the
/// terminal's directory.
pub(crate) fn run(a: TerminalArgs) -> Outcome {
    let cmd = match a.cmd {
        TerminalCmd::Create(c) => WalletCmd::Create(c),
        TerminalCmd::Request(r) => WalletCmd::Request(r),
        TerminalCmd::Receive(r) => WalletCmd::Receive(r),
        TerminalCmd::Requests(r) => WalletCmd::Requests(r),
        TerminalCmd::Sync { server } => WalletCmd::Sync { server },
        TerminalCmd::Redeem { amount, server } => WalletCmd::Redeem { amount, server },
        TerminalCmd::Balance => WalletCmd::Balance,
        TerminalCmd::History => WalletCmd::History,
        TerminalCmd::Status => WalletCmd::Status,
        TerminalCmd::Unlock { server } => WalletCmd::Unlock { server },
        TerminalCmd::Cert { out } => WalletCmd::Cert { out },
    };
    let created = matches!(cmd, WalletCmd::Create(_));
    let mut done = wallet::run(WalletArgs::new(a.dir, cmd))?;
    if created && done.json.get("profile").and_then(|p| p.as_str()) != Some("terminal") {
        // The token decides the profile: the issuer enrolled a personal wallet.
        done.human.push_str(
            "\n  warning: this token enrolled a personal wallet, not a terminal (ask for `offpay admin enrollment-token CUSTOMER --terminal`); use it with `offpay wallet`",
        );
        done.json
            .insert("warning".into(), "not a terminal: a personal wallet".into());
    }
    Ok(done)
}
