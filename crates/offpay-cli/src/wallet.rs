//! `offpay wallet --dir DIR ...`: one wallet, living in a directory.
//!
//! An offline payment is three messages: the payee's request, the payer's
//! payment, the payee's receipt.
//!
//! ```text
//! payee: offpay wallet --dir bob   request 12.50 --out req.bin
//! payer: offpay wallet --dir alice pay req.bin --out pay.bin
//! payee: offpay wallet --dir bob   receive pay.bin --out rcpt.bin
//! payer: offpay wallet --dir alice confirm rcpt.bin
//! ```
//!
//! or, in one exchange over the tap socket:
//!
//! ```text
//! payee: offpay wallet --dir bob   receive --listen 127.0.0.1:7000 --amount 12.50
//! payer: offpay wallet --dir alice pay --tap 127.0.0.1:7000
//! ```

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use offpay_protocol::cbor::DecodeError;
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{LoadVoucher, Payment, PaymentRequest, Receipt};
use offpay_protocol::pki::{Certificate, WalletProfile};
use offpay_protocol::{Amount, Currency, Hash32, Nonce, Suite};
use offpay_transport::tap::{self, Decline, Declined, TapError, TapListener};
use offpay_wallet::ta::{PENDING_REQUESTS_MAX, REQUEST_SECONDS_MAX};
use offpay_wallet::vault::KdfParams;
use offpay_wallet::{HistoryKind, SyncApplied, Wallet, WalletError};
use serde_json::{Value, json};

use crate::admin::{AmountArgs, roots, server_url};
use crate::evidence::read_root;
use offpay_client::Error as ClientError;
use offpay_client::api::EnrollRequest;

use crate::http::{self, Client};
use crate::money::{self, show_u};
use crate::msgio::{InArgs, OutArgs, Written, mismatch};
use crate::now;
use crate::out::{Done, Failure, Outcome, stderr_line};
use crate::show::{date, serial_hex};
use crate::walletdir::{self, DiskWallet, WalletConfig, WalletDir, kdf_from_env, wallet_failure};

/// Default validity of a payment request, seconds.
pub(crate) const REQUEST_SECONDS_DEFAULT: u64 = 300;
/// Default per-message timeout of a tap exchange, seconds.
pub(crate) const TAP_TIMEOUT_SECONDS_DEFAULT: u64 = 10;
/// Most attempts of one tap exchange (the first and its retries after a tear).
pub(crate) const TAP_ATTEMPTS_MAX: u32 = 4;
/// Pause between a payer's tap attempts.
const TAP_RETRY_PAUSE: Duration = Duration::from_millis(250);

#[derive(Args, Debug)]
pub(crate) struct WalletArgs {
    /// The wallet's directory: vault/, device.secret, wallet.json [env: OFFPAY_WALLET_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: WalletCmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum WalletCmd {
    /// Create the wallet and enroll it with the issuer, with a one-time token
    /// from `offpay admin enrollment-token CUSTOMER`.
    Create(CreateArgs),
    /// Apply a load voucher file. Loading is the customer's bank action: the
    /// operator runs `offpay admin load WALLET AMOUNT`, and the voucher reaches
    /// the wallet at its next `offpay wallet sync`, or as a file
    /// (`admin load --out FILE`) applied here.
    Load {
        /// The voucher file.
        #[arg(long, value_name = "FILE")]
        voucher: PathBuf,
    },
    /// Payee, step 1 of 3: ask for AMOUNT with a signed request (fresh nonce).
    Request(RequestArgs),
    /// Payer, step 2 of 3: pay a request (from a file or a QR PNG), or run the
    /// whole exchange with a listening payee (--tap ADDR).
    Pay(PayArgs),
    /// Payee, step 3 of 3: accept a payment and answer with a receipt; or
    /// with --listen ADDR --amount AMOUNT, run the whole exchange over the tap socket.
    Receive(ReceiveArgs),
    /// Payer: record the payee's receipt.
    Confirm(InArgs),
    /// Reconcile with the issuer: report everything since the last sync; pick
    /// up load vouchers, the CRL, a renewed certificate, a lock or an unlock.
    Sync {
        /// Server URL (default: the one the wallet was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// Move offline money back to the customer's online account.
    Redeem {
        #[command(flatten)]
        amount: AmountArgs,
        /// Server URL (default: the one the wallet was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// The offline balance.
    Balance,
    /// Recent payments, loads and redeems, oldest first.
    History,
    /// Locked or not, time left before a sync is required, limits left,
    /// pending requests, money the issuer credited but this wallet does not hold.
    Status,
    /// Payee: the payment requests this wallet still accepts (at most 16), or
    /// cancel one (`--cancel ID`, or `requests cancel ID`).
    Requests(RequestsArgs),
    /// PIN-locked (too many wrong PINs)? Ask the issuer to unlock the vault
    /// (no PIN needed); run it again once your bank approved the unlock.
    Unlock {
        /// Server URL (default: the one the wallet was enrolled with).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// The wallet certificate (PEM).
    Cert {
        /// Also write it to FILE.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub(crate) struct CreateArgs {
    /// The issuer's server URL [env: OFFPAY_SERVER] [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// The one-time enrollment token.
    #[arg(long, value_name = "TOKEN")]
    token: String,
    /// The scheme root certificate to trust (PEM or DER), as an app would ship
    /// it. Default: fetched from the server, and its fingerprint printed.
    #[arg(long, value_name = "ROOT.pem")]
    root: Option<PathBuf>,
    /// Signature suite of the wallet key: ed25519, p256 or ml-dsa-44.
    #[arg(long, default_value = "ed25519")]
    suite: String,
    /// The vault's anti-rollback counter: `file` (default), or a TPM 2.0 NV
    /// counter at `tpm:HOST:PORT` (swtpm / simulator) or `tpm:/dev/tpmrm0`;
    /// every later command opens the wallet with the same counter.
    #[arg(long, value_name = "COUNTER")]
    counter: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RequestArgs {
    #[command(flatten)]
    amount: AmountArgs,
    /// Seconds the request stays valid (at most 3600).
    #[arg(long, default_value_t = REQUEST_SECONDS_DEFAULT, value_name = "SECONDS")]
    valid: u64,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args, Debug)]
pub(crate) struct RequestsArgs {
    /// Cancel the pending request with this id (its nonce, as listed; a unique
    /// prefix of at least 6 hex digits will do).
    #[arg(long, value_name = "ID")]
    cancel: Option<String>,
    #[command(subcommand)]
    cmd: Option<RequestsCmd>,
}

#[derive(Subcommand, Debug)]
enum RequestsCmd {
    /// Cancel the pending request ID (same as `requests --cancel ID`).
    Cancel {
        /// The request's id (its nonce), or a unique prefix of at least 6 hex digits.
        id: String,
    },
}

#[derive(Args, Debug)]
pub(crate) struct PayArgs {
    #[command(flatten)]
    input: InArgs,
    /// Pay the payee listening on ADDR (`receive --listen ADDR`): request,
    /// payment and receipt in one exchange.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["file", "from_qr"])]
    tap: Option<String>,
    /// Refuse unless the request asks exactly this amount.
    #[arg(long, value_name = "AMOUNT")]
    expect: Option<String>,
    /// --expect is in minor units.
    #[arg(long)]
    minor: bool,
    /// Tap: seconds each message may take.
    #[arg(long, default_value_t = TAP_TIMEOUT_SECONDS_DEFAULT, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args, Debug)]
pub(crate) struct ReceiveArgs {
    #[command(flatten)]
    input: InArgs,
    /// Listen on ADDR for one payer (`pay --tap ADDR`) and run the whole
    /// exchange: request, payment, receipt. Needs --amount.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["file", "from_qr"], requires = "amount")]
    listen: Option<String>,
    /// With --listen: the amount to ask for.
    #[arg(long, value_name = "AMOUNT")]
    amount: Option<String>,
    /// --amount is in minor units.
    #[arg(long)]
    minor: bool,
    /// With --listen: seconds the request stays valid (and the payee waits).
    #[arg(long, default_value_t = REQUEST_SECONDS_DEFAULT, value_name = "SECONDS")]
    valid: u64,
    /// With --listen: seconds each message may take.
    #[arg(long, default_value_t = TAP_TIMEOUT_SECONDS_DEFAULT, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    out: OutArgs,
}

// ---- shared with the demo ------------------------------------------------------------------

/// A wallet opened for a command.
pub(crate) struct Opened {
    /// Its directory.
    pub dir: WalletDir,
    /// `wallet.json`.
    pub config: WalletConfig,
    /// The TA.
    pub wallet: DiskWallet,
}

impl Opened {
    /// Open the wallet in `dir` with `pin`.
    pub(crate) fn open(dir: WalletDir, pin: &str) -> Result<Opened, Failure> {
        let config = dir.config()?;
        let wallet = dir.open(pin)?;
        Ok(Opened {
            dir,
            config,
            wallet,
        })
    }

    /// The wallet's currency.
    pub(crate) fn currency(&self) -> Result<Currency, Failure> {
        match self.wallet.balance() {
            Some(b) => Ok(b.currency),
            None => Currency::new(&self.config.currency).ok_or_else(|| {
                Failure::refused("bad_config", "wallet.json names no valid currency")
            }),
        }
    }

    /// The offline balance in minor units.
    pub(crate) fn balance_minor(&self) -> u64 {
        self.wallet.balance().map_or(0, |b| b.minor)
    }

    /// A client for the wallet's server (or `server` if given).
    pub(crate) fn client(&self, server: Option<&str>) -> Result<Client, Failure> {
        http::client(server.unwrap_or(&self.config.server))
    }
}

/// What enrollment produced.
pub(crate) struct Enrolled {
    /// The opened wallet.
    pub opened: Opened,
    /// SHA-256 of the trusted root certificate (hex).
    pub root_fingerprint: String,
    /// Whether the root came from the server (trust on first use).
    pub root_from_server: bool,
}

/// Create and enroll a wallet in `dir`.
pub(crate) fn enroll(
    dir: WalletDir,
    client: &Client,
    token: &str,
    pin: &str,
    kdf: KdfParams,
    suite: Suite,
    root_der: Option<Vec<u8>>,
) -> Result<Enrolled, Failure> {
    let anchors = roots(client)?;
    let currency = anchors.currency;
    let root_from_server = root_der.is_none();
    let root_der = match root_der {
        Some(d) => d,
        None => Certificate::from_pem(&anchors.root_pem)
            .map_err(|e| {
                Failure::refused(
                    "bad_response",
                    format!("the server's root certificate: {e}"),
                )
            })?
            .der()
            .to_vec(),
    };
    let (vault, mut created) = dir.create_vault(pin, kdf)?;
    let result = (|| {
        let mut w = Wallet::create(vault, suite, &root_der, now()).map_err(wallet_failure)?;
        let csr = w.csr().map_err(wallet_failure)?;
        let e = client.enroll(&EnrollRequest {
            token: token.to_string(),
            csr: STANDARD.encode(&csr),
        })?;
        let field = |k: &str, v: &str| http::b64_field(&format!("the enrollment's {k}"), v);
        if field("root_certificate", &e.root_certificate)? != root_der {
            return Err(Failure::refused(
                "root_mismatch",
                "the server's scheme root is not the root this wallet trusts",
            ));
        }
        // After the answer: the certificate's notBefore is the server's clock then.
        w.enroll(
            &field("issuer_certificate", &e.issuer_certificate)?,
            &field("certificate", &e.certificate)?,
            &field("policy", &e.policy)?,
            Some(&field("crl", &e.crl)?),
            now(),
        )
        .map_err(wallet_failure)?;
        let config = WalletConfig {
            server: client.url(),
            wallet_id: w.wallet_id(),
            currency: w
                .balance()
                .map(|b| b.currency.to_string())
                .unwrap_or(currency),
        };
        dir.save_recovery(&w)?;
        dir.config_created(&mut created);
        dir.write_config(&config)?;
        Ok((w, config))
    })();
    match result {
        Ok((wallet, config)) => Ok(Enrolled {
            opened: Opened {
                dir,
                config,
                wallet,
            },
            root_fingerprint: Hash32::digest(&root_der).to_hex(),
            root_from_server,
        }),
        Err(e) => {
            created.undo();
            Err(e)
        }
    }
}

/// What a sync did.
pub(crate) struct Synced {
    /// The TA's account of it.
    pub applied: SyncApplied,
    /// Refused payments reported as rollback evidence.
    pub evidence_reported: usize,
    /// Whether the wallet was locked before this sync.
    pub was_locked: bool,
    /// Money the issuer credited to this wallet that its TA does not hold
    /// (a payment it refused or never received), if the server said.
    pub stranded_minor: Option<i64>,
    /// A terminal: what this sync swept to the merchant's online account
    /// (the redeem its report carried), minor units; 0 for a personal wallet.
    pub swept_minor: u64,
}

/// Sync over `POST /v1/sync` and apply the answer.
pub(crate) fn sync(w: &mut DiskWallet, client: &Client) -> Result<Synced, Failure> {
    let evidence_reported = w.evidence().len();
    let was_locked = w.lock().is_some();
    let swept_minor = w.sweep_due_minor();
    let report = w.sync_report(now()).map_err(wallet_failure)?;
    let answer = client.sync_answer(&report)?;
    let applied = w
        .apply_sync_response(&answer.response, now())
        .map_err(wallet_failure)?;
    Ok(Synced {
        applied,
        evidence_reported,
        was_locked,
        stranded_minor: answer.stranded_minor,
        swept_minor,
    })
}

/// Bytes that do not decode as the `what` expected: named for what they
/// are when they are another message ("this is a payment, not a payment
/// request"), else the decoder's reason.
pub(crate) fn not_a(bytes: &[u8], what: &str, e: DecodeError) -> Failure {
    match mismatch(bytes, what) {
        Some(m) => Failure::refused("wrong_message", m),
        None => {
            wallet_failure(WalletError::Malformed(e)).with_prefix(&format!("this is not a {what}"))
        }
    }
}

/// The payee's view of a request it is about to pay.
pub(crate) fn describe_request(bytes: &[u8]) -> Result<PaymentRequest, Failure> {
    Signed::<PaymentRequest>::decode(bytes)
        .map(|s| s.body().clone())
        .map_err(|e| not_a(bytes, "payment request", e))
}

impl Failure {
    /// The same failure, its words changed by `f` (code and kind kept).
    fn map_message(self, f: impl FnOnce(&str) -> String) -> Failure {
        match self {
            Failure::Refused { code, message } => Failure::Refused {
                code,
                message: f(&message),
            },
            Failure::Usage(m) => Failure::Usage(f(&m)),
            Failure::Undelivered {
                code,
                message,
                done,
            } => Failure::Undelivered {
                code,
                message: f(&message),
                done,
            },
        }
    }

    /// The same failure with words after it.
    pub(crate) fn with_suffix(self, suffix: &str) -> Failure {
        self.map_message(|m| format!("{m}: {suffix}"))
    }

    /// The same failure with words in front.
    pub(crate) fn with_prefix(self, prefix: &str) -> Failure {
        self.map_message(|m| format!("{prefix}: {m}"))
    }
}

/// Pay a request: (payment bytes, payment body, whether it was paid before).
pub(crate) fn pay_request(
    w: &mut DiskWallet,
    request: &[u8],
    expect_minor: Option<u64>,
) -> Result<(Vec<u8>, Payment, bool), Failure> {
    let r = describe_request(request)?;
    if let Some(m) = expect_minor
        && m != r.amount.minor
    {
        return Err(Failure::refused(
            "amount_not_expected",
            format!(
                "the request asks {}, not the {} you expected: nothing paid",
                r.amount,
                Amount::new(m, r.amount.currency)
            ),
        ));
    }
    let seq_before = w.chain_head().0;
    let bytes = w.pay(request, now()).map_err(wallet_failure)?;
    let repeated = w.chain_head().0 == seq_before;
    let p = Signed::<Payment>::decode(&bytes)
        .map_err(|e| wallet_failure(WalletError::Malformed(e)))?
        .body()
        .clone();
    Ok((bytes, p, repeated))
}

/// Accept a payment: (receipt bytes, payment body, whether it was received before).
pub(crate) fn receive_payment(
    w: &mut DiskWallet,
    payment: &[u8],
) -> Result<(Vec<u8>, Payment, bool), Failure> {
    let p = Signed::<Payment>::decode(payment)
        .map_err(|e| not_a(payment, "payment", e))?
        .body()
        .clone();
    let before = w.balance().map_or(0, |b| b.minor);
    let receipt = w.receive(payment, now()).map_err(|e| {
        let credited_anyway = matches!(
            e,
            WalletError::NonceUnknown
                | WalletError::RequestExpired
                | WalletError::AmountMismatch { .. }
                | WalletError::LimitHolding { .. }
                | WalletError::LogFull { .. }
        );
        let f = wallet_failure(e);
        if credited_anyway {
            f.with_suffix(&format!(
                "not credited to this wallet; but the payer's wallet was debited, and when it syncs the issuer still credits {} to this wallet's account at the issuer: `wallet sync` and `wallet status` then show it as credited by the issuer, not in this wallet",
                p.amount
            ))
        } else {
            f
        }
    })?;
    let repeated = w.balance().map_or(0, |b| b.minor) == before;
    Ok((receipt, p, repeated))
}

/// Record a receipt; returns its payment id.
pub(crate) fn confirm_receipt(w: &mut DiskWallet, receipt: &[u8]) -> Result<Receipt, Failure> {
    let r = Signed::<Receipt>::decode(receipt)
        .map_err(|e| not_a(receipt, "receipt", e))?
        .body()
        .clone();
    w.confirm(receipt).map_err(wallet_failure)?;
    Ok(r)
}

// ---- the commands ---------------------------------------------------------------------------

impl WalletArgs {
    /// `cmd` on the wallet in `dir` (`offpay terminal` runs its commands so).
    pub(crate) fn new(dir: Option<PathBuf>, cmd: WalletCmd) -> WalletArgs {
        WalletArgs { dir, cmd }
    }
}

fn wallet_dir(a: &WalletArgs) -> Result<WalletDir, Failure> {
    a.dir
        .clone()
        .or_else(|| {
            std::env::var("OFFPAY_WALLET_DIR")
                .ok()
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .map(WalletDir::new)
        .ok_or_else(|| Failure::usage("say which wallet: offpay wallet --dir DIR ..."))
}

fn open(dir: WalletDir) -> Result<Opened, Failure> {
    // No PIN prompt for a directory without a wallet.
    dir.config()?;
    let pin = walletdir::pin(false)?;
    Opened::open(dir, &pin)
}

fn minor_opt(text: &Option<String>, minor: bool) -> Result<Option<u64>, Failure> {
    text.as_deref().map(|t| money::parse(t, minor)).transpose()
}

#[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
pub(crate) fn run(a: WalletArgs) -> Outcome {
    let dir = wallet_dir(&a)?;
    match a.cmd {
        WalletCmd::Create(c) => create(dir, c),
        WalletCmd::Load { voucher } => load(open(dir)?, &voucher),
        WalletCmd::Request(r) => {
            let minor = r.amount.minor_units()?;
            if r.valid == 0 || r.valid > REQUEST_SECONDS_MAX {
                return Err(Failure::usage(format!(
                    "--valid must be 1 to {REQUEST_SECONDS_MAX} seconds"
                )));
            }
            r.out.require("payment request")?;
            r.out.check("payment request")?;
            let mut o = open(dir)?;
            let warning = request_checks(&o, minor)?;
            let bytes = make_request(&mut o, minor, r.valid)?;
            let req = describe_request(&bytes)?;
            let written = r.out.write(&bytes, "payment request")?;
            let mut d = Done::new(
                format!(
                    "payment request for {} to wallet {} (valid until {}, id {})\n{}{}",
                    req.amount,
                    req.payee,
                    date(req.expires.0),
                    req.nonce.to_hex(),
                    written.human,
                    warning
                        .as_deref()
                        .map(|w| format!("\nwarning: {w}"))
                        .unwrap_or_default()
                ),
                json!({
                    "wallet_id": req.payee.to_hex(),
                    "amount_minor": req.amount.minor,
                    "currency": req.amount.currency.to_string(),
                    "nonce": req.nonce.to_hex(),
                    "created_at": req.created.0,
                    "expires_at": req.expires.0,
                    "warning": warning,
                }),
            );
            d.json.extend(written.json);
            Ok(d)
        }
        WalletCmd::Pay(p) => pay(dir, p),
        WalletCmd::Receive(r) => receive(dir, r),
        WalletCmd::Confirm(input) => {
            let bytes = input.read("receipt")?;
            let mut o = open(dir)?;
            let r = confirm_receipt(&mut o.wallet, &bytes)?;
            Ok(Done::new(
                format!(
                    "receipt recorded: wallet {} confirmed payment {} (seq {})",
                    r.payee, r.payment_id, r.seq
                ),
                json!({
                    "wallet_id": o.wallet.wallet_id().to_hex(),
                    "payee": r.payee.to_hex(),
                    "payment_id": r.payment_id.to_hex(),
                    "seq": r.seq,
                }),
            ))
        }
        WalletCmd::Sync { server } => {
            let mut o = open(dir)?;
            let client = o.client(server.as_deref())?;
            let s = sync(&mut o.wallet, &client)?;
            remember_stranded(&o, &s)?;
            if s.applied.rekeyed.is_some() {
                // The PIN recovery grant is signed by the wallet key: renew it.
                o.dir.save_recovery(&o.wallet)?;
            }
            Ok(sync_done(&o, &s))
        }
        WalletCmd::Redeem { amount, server } => {
            let minor = amount.minor_units()?;
            let mut o = open(dir)?;
            let client = o.client(server.as_deref())?;
            redeem(&mut o, &client, minor)
        }
        WalletCmd::Balance => {
            let o = open(dir)?;
            let cur = o.currency()?.to_string();
            let b = o.balance_minor();
            Ok(Done::new(
                format!("offline balance: {}", show_u(b, &cur)),
                json!({"wallet_id": o.wallet.wallet_id().to_hex(), "balance_minor": b, "currency": cur}),
            ))
        }
        WalletCmd::History => {
            let o = open(dir)?;
            let cur = o.currency()?.to_string();
            let mut h = String::new();
            let mut items = Vec::new();
            let unreceipted = o.wallet.payments_without_receipt();
            for it in o.wallet.history() {
                let no_receipt = it.kind == HistoryKind::Paid && unreceipted.contains(&it.id);
                let (kind, sign, prep) = match it.kind {
                    HistoryKind::Paid => ("paid", "-", "to"),
                    HistoryKind::Received => ("received", "+", "from"),
                    HistoryKind::Loaded => ("loaded", "+", ""),
                    HistoryKind::Redeemed => ("redeemed", "-", ""),
                };
                let who = it
                    .counterparty
                    .map(|c| format!(" {prep} {c}"))
                    .unwrap_or_default();
                h.push_str(&format!(
                    "{}  {:<9} {sign}{}{who}{}\n",
                    date(it.time.0),
                    kind,
                    show_u(it.amount_minor, &cur),
                    if no_receipt {
                        "  (no receipt: the issuer credits the payee at settlement anyway)"
                    } else {
                        ""
                    }
                ));
                items.push(json!({
                    "kind": kind,
                    "amount_minor": it.amount_minor,
                    "counterparty": it.counterparty.map(|c| c.to_hex()),
                    "currency": cur,
                    "occurred_at": it.time.0,
                    "id": it.id.to_hex(),
                    "without_receipt": no_receipt,
                }));
            }
            if items.is_empty() {
                h.push_str("no history yet\n");
            }
            Ok(Done::new(
                h,
                json!({"wallet_id": o.wallet.wallet_id().to_hex(), "currency": cur, "items": items}),
            ))
        }
        WalletCmd::Unlock { server } => crate::unlock::wallet_unlock(dir, server.as_deref()),
        WalletCmd::Status => {
            let o = open(dir)?;
            Ok(status(&o))
        }
        WalletCmd::Requests(r) => {
            let cancel = match (r.cancel, r.cmd) {
                (Some(_), Some(_)) => {
                    return Err(Failure::usage(
                        "say `requests --cancel ID` or `requests cancel ID`, not both",
                    ));
                }
                (Some(id), None) | (None, Some(RequestsCmd::Cancel { id })) => Some(id),
                (None, None) => None,
            };
            let mut o = open(dir)?;
            match cancel {
                Some(id) => cancel_request(&mut o, &id),
                None => Ok(requests_list(&o)),
            }
        }
        WalletCmd::Cert { out } => {
            let o = open(dir)?;
            let c = o
                .wallet
                .certificate()
                .ok_or_else(|| wallet_failure(WalletError::NotEnrolled))?;
            let pem = c.to_pem();
            let mut h = pem.clone();
            if let Some(p) = &out {
                walletdir::write_atomic(p, pem.as_bytes())?;
                h.push_str(&format!("written to {}\n", p.display()));
            }
            Ok(Done::new(
                h,
                json!({
                    "wallet_id": o.wallet.wallet_id().to_hex(),
                    "serial": serial_hex(c.serial()),
                    "not_before_at": c.not_before().0,
                    "not_after_at": c.not_after().0,
                    "issuer": c.issuer_cn(),
                    "pem": pem,
                    "out": out.map(|p| p.display().to_string()),
                }),
            ))
        }
    }
}

fn create(dir: WalletDir, c: CreateArgs) -> Outcome {
    let suite = Suite::from_name(&c.suite).ok_or_else(|| {
        Failure::usage(format!("--suite {:?}: ed25519, p256 or ml-dsa-44", c.suite))
    })?;
    let client = http::client(&server_url(c.server.as_deref()))?;
    let root_der = c
        .root
        .as_deref()
        .map(|p| {
            let r = read_root(p)?;
            crate::evidence::require_root(&r, p)?;
            Ok::<_, Failure>(r.der().to_vec())
        })
        .transpose()?;
    let (kdf, kdf_name) = kdf_from_env()?;
    if dir.exists() {
        return Err(Failure::refused(
            "wallet_exists",
            format!("{} already holds a wallet", dir.path().display()),
        ));
    }
    let dir = dir.with_counter(c.counter.as_deref())?;
    let pin = walletdir::pin(true)?;
    let e = enroll(dir, &client, &c.token, &pin, kdf, suite, root_der)?;
    let o = &e.opened;
    let cert = o.wallet.certificate();
    let cur = o.currency()?.to_string();
    let mut h = format!(
        "wallet {} created in {} and enrolled with {}\n  certificate serial {}, valid until {}\n  currency {}, key {}",
        o.wallet.wallet_id(),
        o.dir.path().display(),
        client.url(),
        cert.map(|c| serial_hex(c.serial())).unwrap_or_default(),
        cert.map(|c| date(c.not_after().0)).unwrap_or_default(),
        cur,
        suite,
    );
    let profile = o.wallet.profile();
    if profile == WalletProfile::Terminal {
        h.push_str("\n  a receive-only merchant terminal: it requests and receives, never pays, and sweeps its takings to the merchant's account at each sync");
    }
    if e.root_from_server {
        h.push_str(&format!(
            "\n  trusting the server's scheme root (SHA-256 {}): compare it with the one your scheme publishes, or pass --root",
            e.root_fingerprint
        ));
    }
    if kdf_name == "test" {
        h.push_str(
            "\n  OFFPAY_KDF=test: the vault key derivation is fast and INSECURE (tests only)",
        );
    }
    Ok(Done::new(
        h,
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "dir": o.dir.path().display().to_string(),
            "server": client.url(),
            "currency": cur,
            "suite": suite.to_string(),
            "certificate_serial": cert.map(|c| serial_hex(c.serial())),
            "certificate_expires_at": cert.map(|c| c.not_after().0),
            "root_sha256": e.root_fingerprint,
            "root_from_server": e.root_from_server,
            "kdf": kdf_name,
            "profile": profile.code(),
        }),
    ))
}

fn load(mut o: Opened, voucher: &std::path::Path) -> Outcome {
    let bytes = walletdir::read_bounded(voucher, crate::msgio::MESSAGE_FILE_BYTES_MAX)
        .map_err(|e| Failure::io(format!("cannot read {}", voucher.display()), &e))?;
    let v = Signed::<LoadVoucher>::decode(&bytes).map_err(|e| not_a(&bytes, "load voucher", e))?;
    let amount = o
        .wallet
        .apply_voucher(&bytes, now())
        .map_err(wallet_failure)?;
    let cur = amount.currency.to_string();
    Ok(Done::new(
        format!(
            "loaded {} (voucher {}): offline balance {}",
            amount,
            v.body().load_seq,
            show_u(o.balance_minor(), &cur)
        ),
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "load_seq": v.body().load_seq,
            "amount_minor": amount.minor,
            "currency": cur,
            "balance_minor": o.balance_minor(),
        }),
    ))
}

fn payment_json(o: &Opened, p: &Payment, repeated: bool) -> Value {
    json!({
        "wallet_id": o.wallet.wallet_id().to_hex(),
        "payer": p.payer.to_hex(),
        "payee": p.payee.to_hex(),
        "amount_minor": p.amount.minor,
        "currency": p.amount.currency.to_string(),
        "seq": p.seq,
        "repeated": repeated,
        "balance_minor": o.balance_minor(),
    })
}

fn with_id(mut v: Value, payment: &[u8]) -> Value {
    if let Ok(s) = Signed::<Payment>::decode(payment) {
        v["payment_id"] = json!(s.payload_hash().to_hex());
    }
    v
}

fn pay(dir: WalletDir, a: PayArgs) -> Outcome {
    let expect = minor_opt(&a.expect, a.minor)?;
    if let Some(addr) = &a.tap {
        return pay_tap(dir, addr, expect, a.timeout);
    }
    let request = a.input.read("payment request")?;
    a.out.require("payment")?;
    a.out.check("payment")?;
    let mut o = open(dir)?;
    let (bytes, p, repeated) = pay_request(&mut o.wallet, &request, expect)?;
    let said = if repeated {
        "already paid: the same payment again,"
    } else {
        "paid"
    };
    let peer = format!("to wallet {}", p.payee);
    let written = a.out.write(&bytes, "payment").map_err(|f| {
        let done = payment_done(&o, &p, repeated, said, &peer, &bytes, Written::default());
        Failure::undelivered(
            "not_written",
            format!(
                "{}; but the payment was not written: {}. The debit stands; the payee needs the payment to be paid now, and the issuer settles it to the payee when this wallet syncs",
                done.human.trim_end(),
                f.message()
            ),
            Value::Object(done.json),
        )
    })?;
    Ok(payment_done(&o, &p, repeated, said, &peer, &bytes, written))
}

/// What `pay` and `receive` report: the payment, the balance now, what was written.
fn payment_done(
    o: &Opened,
    p: &Payment,
    repeated: bool,
    said: &str,
    peer: &str,
    payment: &[u8],
    written: Written,
) -> Done {
    let cur = p.amount.currency.to_string();
    let mut d = Done::new(
        format!(
            "{said} {} {peer} (seq {}): offline balance {}\n{}",
            p.amount,
            p.seq,
            show_u(o.balance_minor(), &cur),
            written.human
        ),
        with_id(payment_json(o, p, repeated), payment),
    );
    d.json.extend(written.json);
    d
}

fn receive(dir: WalletDir, a: ReceiveArgs) -> Outcome {
    if let Some(addr) = &a.listen {
        let minor = money::parse(a.amount.as_deref().unwrap_or(""), a.minor)?;
        if a.valid == 0 || a.valid > REQUEST_SECONDS_MAX {
            return Err(Failure::usage(format!(
                "--valid must be 1 to {REQUEST_SECONDS_MAX} seconds"
            )));
        }
        return receive_tap(dir, addr, minor, a.valid, a.timeout);
    }
    if a.amount.is_some() {
        return Err(Failure::usage(
            "--amount goes with --listen (a payment file carries its amount)",
        ));
    }
    let payment = a.input.read("payment")?;
    a.out.require("receipt")?;
    a.out.check("receipt")?;
    let mut o = open(dir)?;
    let (receipt, p, repeated) = receive_payment(&mut o.wallet, &payment)?;
    let said = if repeated {
        "already received (not credited again): the same receipt,"
    } else {
        "received"
    };
    let peer = format!("from wallet {}", p.payer);
    let written = a.out.write(&receipt, "receipt").map_err(|f| {
        let done = payment_done(&o, &p, repeated, said, &peer, &payment, Written::default());
        Failure::undelivered(
            "not_written",
            format!(
                "{}; but the receipt was not written: {}. The credit stands",
                done.human.trim_end(),
                f.message()
            ),
            Value::Object(done.json),
        )
    })?;
    Ok(payment_done(
        &o, &p, repeated, said, &peer, &payment, written,
    ))
}

fn tap_timeout(seconds: u64) -> Result<Duration, Failure> {
    if seconds == 0 || seconds > 3600 {
        return Err(Failure::usage("--timeout must be 1 to 3600 seconds"));
    }
    Ok(Duration::from_secs(seconds))
}

fn tap_failure(e: &TapError) -> Failure {
    let code = match e {
        TapError::Timeout { .. } => "tap_timeout",
        TapError::Closed { .. } => "tap_closed",
        TapError::PeerRefused { .. } => "peer_refused",
        TapError::Torn { .. } => "tap_torn",
        TapError::Refused { .. } => "refused",
        _ => "tap",
    };
    Failure::refused(code, e.to_string())
}

/// What a peer over the tap hears when this wallet declines (see
/// [`tap::Declined`]): its message was not acceptable, or this wallet will
/// not go on; never its balance, limits or state.
fn decline(f: Failure) -> Decline {
    const NOT_ACCEPTABLE: &[&str] = &[
        "malformed",
        "wrong_message",
        "bad_signature",
        "peer_certificate",
        "peer_revoked",
        "peer_issuer_suspended",
        "peer_issuer_revoked",
        "wrong_payee_issuer",
        "unknown_certificate",
        "certificate_wallet_mismatch",
        "request_expired",
        "request_validity_too_long",
        "clock_skew",
        "currency_mismatch",
        "self_payment",
        "wrong_payee",
        "nonce_unknown",
        "amount_mismatch",
        "amount_not_expected",
        "payer_rolled_back",
        "payer_is_terminal",
    ];
    let general = if NOT_ACCEPTABLE.contains(&f.code()) {
        Declined::NotAcceptable
    } else {
        Declined::Unwilling
    };
    Decline::new(f.message(), general)
}

fn attempts_words(n: u32) -> String {
    if n == 1 {
        "1 attempt".into()
    } else {
        format!("{n} attempts")
    }
}

#[expect(clippy::too_many_lines)] // lint-exception: the payer's side of a tap exchange with its retries, read top to bottom
fn pay_tap(dir: WalletDir, addr: &str, expect: Option<u64>, timeout: u64) -> Outcome {
    let timeout = tap_timeout(timeout)?;
    let mut o = open(dir)?;
    let mut last: Option<TapError> = None;
    // The payment this wallet made (and debited) in an earlier attempt: from
    // then on, nothing is "refused" any more; only its delivery is open.
    let mut made_before: Option<(Payment, bool, Vec<u8>)> = None;
    let mut attempt = 0;
    while attempt < TAP_ATTEMPTS_MAX {
        attempt += 1;
        let refusal: RefCell<Option<Failure>> = RefCell::new(None);
        let made: RefCell<Option<(Payment, bool, Vec<u8>)>> = RefCell::new(None);
        let result = tap::tap_connect(addr, timeout).and_then(|conn| {
            conn.pay(
                |request| match pay_request(&mut o.wallet, request, expect) {
                    Ok((bytes, p, repeated)) => {
                        *made.borrow_mut() = Some((p, repeated, bytes.clone()));
                        Ok(bytes)
                    }
                    Err(f) => {
                        let d = decline(f.clone());
                        *refusal.borrow_mut() = Some(f);
                        Err(d)
                    }
                },
            )
        });
        if let Some(m) = made.into_inner()
            && made_before.is_none()
        {
            made_before = Some(m);
        }
        match result {
            Ok(paid) => {
                confirm_receipt(&mut o.wallet, &paid.receipt)?;
                let (p, repeated, _) = made_before.ok_or_else(|| {
                    Failure::refused("tap", "the exchange ended without a payment")
                })?;
                let cur = p.amount.currency.to_string();
                let mut v = with_id(payment_json(&o, &p, repeated), &paid.payment);
                v["attempts"] = json!(attempt);
                v["receipt"] = json!(true);
                return Ok(Done::new(
                    format!(
                        "paid {} to wallet {} over the tap at {addr} (seq {}); receipt recorded{}\n  offline balance {}",
                        p.amount,
                        p.payee,
                        p.seq,
                        if attempt > 1 {
                            format!(
                                " after {} (the torn exchange was resumed, paid once)",
                                attempts_words(attempt)
                            )
                        } else {
                            String::new()
                        },
                        show_u(o.balance_minor(), &cur)
                    ),
                    v,
                ));
            }
            Err(TapError::Refused { .. }) if made_before.is_none() => {
                return Err(refusal
                    .into_inner()
                    .unwrap_or_else(|| Failure::refused("refused", "the payment was refused")));
            }
            Err(e @ TapError::PeerRefused { .. }) if made_before.is_none() => {
                return Err(tap_failure(&e));
            }
            Err(e) if made_before.is_none() && !e.is_torn() => return Err(tap_failure(&e)),
            Err(e) => {
                // Paid (debited) in this attempt or an earlier one: try to
                // deliver it, all attempts, whatever broke this time.
                if attempt < TAP_ATTEMPTS_MAX && !matches!(e, TapError::PeerRefused { .. }) {
                    stderr_line(&format!(
                        "offpay: {e}: the payment is made, retrying to deliver it ({attempt}/{})",
                        TAP_ATTEMPTS_MAX - 1
                    ));
                    std::thread::sleep(TAP_RETRY_PAUSE);
                    last = Some(e);
                    continue;
                }
                last = Some(e);
                break;
            }
        }
    }
    let Some((p, repeated, bytes)) = made_before else {
        return Err(last.map_or_else(
            || Failure::refused("tap", "the exchange did not happen"),
            |e| tap_failure(&e),
        ));
    };
    let why = match &last {
        Some(TapError::PeerRefused { reason, .. }) => {
            format!("the payee's wallet answered: {reason}")
        }
        Some(e) => e.to_string(),
        None => "the exchange ended early".into(),
    };
    let mut v = with_id(payment_json(&o, &p, repeated), &bytes);
    v["attempts"] = json!(attempt);
    v["receipt"] = json!(false);
    Err(Failure::undelivered(
        "tap_undelivered",
        format!(
            "paid {} to wallet {} (seq {}), offline balance {}; the receipt did not arrive after {} ({why}). \
The debit stands and the payment is final: the issuer settles it to the payee when either wallet syncs. \
Next: if the payee did not get it, run the same command again while the payee listens (the same payment is sent, never a second one), or sync",
            p.amount,
            p.payee,
            p.seq,
            show_u(o.balance_minor(), p.amount.currency.as_str()),
            attempts_words(attempt),
        ),
        v,
    ))
}

#[expect(clippy::too_many_lines)] // lint-exception: the payee's side of a tap exchange, read top to bottom
fn receive_tap(dir: WalletDir, addr: &str, minor: u64, valid: u64, timeout: u64) -> Outcome {
    let timeout = tap_timeout(timeout)?;
    let mut o = open(dir)?;
    if let Some(w) = request_checks(&o, minor)? {
        eprintln!("offpay: warning: {w}");
    }
    let request = make_request(&mut o, minor, valid)?;
    let req = describe_request(&request)?;
    let deadline = Instant::now() + Duration::from_secs(valid);
    let mut listener = TapListener::bind(addr)
        .and_then(|l| l.with_timeout(timeout))
        .map_err(|e| tap_failure(&e))?;
    let local = listener.local_addr().map_err(|e| tap_failure(&e))?;
    stderr_line(&format!(
        "offpay: asking {} on the tap at {local} until {}: pay with `offpay wallet --dir PAYER pay --tap {local}`",
        req.amount,
        date(req.expires.0)
    ));
    // A payment credited in an exchange whose receipt was lost (torn).
    let mut credited: Option<(Payment, bool)> = None;
    let mut attempts = 0;
    for attempt in 1..=TAP_ATTEMPTS_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        attempts = attempt;
        listener = listener.with_accept_timeout(Some(left));
        let refusal: RefCell<Option<Failure>> = RefCell::new(None);
        let got: RefCell<Option<(Payment, bool)>> = RefCell::new(None);
        let result = tap::serve_one(&listener, &request, |payment| {
            match receive_payment(&mut o.wallet, payment) {
                Ok((receipt, p, repeated)) => {
                    *got.borrow_mut() = Some((p, repeated));
                    Ok(receipt)
                }
                Err(f) => {
                    let d = decline(f.clone());
                    *refusal.borrow_mut() = Some(f);
                    Err(d)
                }
            }
        });
        match result {
            Ok(outcome) => {
                let (p, repeated) = got.into_inner().ok_or_else(|| {
                    Failure::refused("tap", "the exchange ended without a payment")
                })?;
                let cur = p.amount.currency.to_string();
                let mut v = with_id(payment_json(&o, &p, repeated), &outcome.payment);
                v["attempts"] = json!(attempt);
                v["listen"] = json!(local.to_string());
                return Ok(Done::new(
                    format!(
                        "received {} from wallet {} over the tap (seq {}); receipt sent{}\n  offline balance {}",
                        p.amount,
                        p.payer,
                        p.seq,
                        if attempt > 1 {
                            format!(" after {} (credited once)", attempts_words(attempt))
                        } else {
                            String::new()
                        },
                        show_u(o.balance_minor(), &cur)
                    ),
                    v,
                ));
            }
            Err(TapError::Refused { .. }) if credited.is_none() => {
                return Err(refusal
                    .into_inner()
                    .unwrap_or_else(|| Failure::refused("refused", "the payment was refused")));
            }
            Err(TapError::PeerRefused { reason, .. }) if credited.is_none() => {
                return Err(Failure::refused(
                    "peer_refused",
                    format!("the payer's wallet did not pay: {reason}; nothing was received"),
                ));
            }
            Err(e) => {
                // Torn (credited, receipt lost) or a payer that went away: keep
                // offering the same request; the payer's retry gets the same receipt.
                if let Some((p, repeated)) = got.into_inner()
                    && credited.is_none()
                {
                    credited = Some((p, repeated));
                }
                if matches!(
                    e,
                    TapError::Timeout {
                        step: tap::Step::Accept
                    }
                ) {
                    break;
                }
                stderr_line(&format!("offpay: {e}: waiting for the payer to try again"));
            }
        }
    }
    match credited {
        Some((p, repeated)) => {
            let mut v = payment_json(&o, &p, repeated);
            v["attempts"] = json!(attempts);
            v["listen"] = json!(local.to_string());
            Err(Failure::undelivered(
                "tap_undelivered",
                format!(
                    "received {} from wallet {} (seq {}), offline balance {}; but the receipt never reached the payer. \
The credit stands and the payment settles at sync; nothing to do here: the payer is debited and its receipt is only its proof of delivery",
                    p.amount,
                    p.payer,
                    p.seq,
                    show_u(o.balance_minor(), p.amount.currency.as_str()),
                ),
                v,
            ))
        }
        None => Err(Failure::refused(
            "tap_timeout",
            "no payer completed the exchange before the request expired: nothing received",
        )),
    }
}

/// The output of a sync.
pub(crate) fn sync_done(o: &Opened, s: &Synced) -> Done {
    let a = &s.applied;
    let cur = o.currency().map(|c| c.to_string()).unwrap_or_default();
    let lock = o.wallet.lock().map(|r| r.to_string());
    let mut h = format!(
        "synced with {}: checkpoint {}",
        o.config.server, a.checkpoint
    );
    if !a.vouchers_applied.is_empty() {
        h.push_str(&format!(
            "\n  load vouchers applied: {:?}",
            a.vouchers_applied
        ));
    }
    if !a.vouchers_deferred.is_empty() {
        h.push_str(&format!(
            "\n  load vouchers left for later (holding limit): {:?}",
            a.vouchers_deferred
        ));
    }
    if s.swept_minor > 0 {
        h.push_str(&format!(
            "\n  swept {} to the merchant's online account (terminal)",
            show_u(s.swept_minor, &cur)
        ));
    }
    if s.evidence_reported > 0 {
        h.push_str(&format!(
            "\n  reported {} refused payment(s) as rollback evidence",
            s.evidence_reported
        ));
    }
    if let Some(s) = a.rekey_started {
        h.push_str(&format!(
            "\n  the issuer asked for a new {s} key: made; the next sync certifies it"
        ));
    }
    if let Some(e) = &a.rekey_refused {
        h.push_str(&format!(
            "\n  the key device could not make the new key: {e}"
        ));
    }
    if let Some(s) = a.rekeyed {
        h.push_str(&format!(
            "\n  RE-KEYED: the wallet now signs with its new {s} key"
        ));
    } else if a.certificate_renewed {
        h.push_str("\n  certificate renewed");
    }
    if a.policy_updated {
        h.push_str("\n  risk policy updated");
    }
    if a.crl_updated {
        h.push_str("\n  revocation list updated");
    }
    if a.unlocked && s.was_locked {
        h.push_str("\n  UNLOCKED by the issuer: the wallet adopted the issuer's checkpoint");
    } else if a.unlocked {
        h.push_str("\n  the issuer's checkpoint was adopted (the wallet was not locked)");
    }
    if let Some(r) = &lock {
        h.push_str(&format!("\n  LOCKED: {r}"));
    }
    h.push_str(&format!(
        "\n  offline balance {}",
        show_u(o.balance_minor(), &cur)
    ));
    if let Some(n) = s.stranded_minor.filter(|n| *n > 0) {
        h.push_str(&format!("\n  {}", stranded_words(n, &cur)));
    }
    Done::new(
        h,
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "stranded_minor": s.stranded_minor,
            "checkpoint": a.checkpoint,
            "vouchers_applied": a.vouchers_applied,
            "vouchers_deferred": a.vouchers_deferred,
            "evidence_reported": s.evidence_reported,
            "profile": o.wallet.profile().code(),
            "swept_minor": s.swept_minor,
            "certificate_renewed": a.certificate_renewed,
            "rekey_started": a.rekey_started.map(|s| s.name()),
            "rekey_refused": a.rekey_refused.map(|e| e.to_string()),
            "rekeyed": a.rekeyed.map(|s| s.name()),
            "suite": o.wallet.public_key().suite().name(),
            "policy_updated": a.policy_updated,
            "crl_updated": a.crl_updated,
            "unlocked": a.unlocked && s.was_locked,
            "locked": lock.is_some(),
            "lock_reason": lock,
            "balance_minor": o.balance_minor(),
            "currency": cur,
        }),
    )
}

/// Redeem `minor` to the online account: the TA debits durably, then the
/// server settles it. If the server cannot be reached, the redeem stays in
/// the wallet's log and settles at the next sync.
pub(crate) fn redeem(o: &mut Opened, client: &Client, minor: u64) -> Outcome {
    let cur = o.currency()?;
    let bytes = o
        .wallet
        .redeem(Amount::new(minor, cur), now())
        .map_err(wallet_failure)?;
    let mut v = json!({
        "wallet_id": o.wallet.wallet_id().to_hex(),
        "amount_minor": minor,
        "currency": cur.to_string(),
        "balance_minor": o.balance_minor(),
    });
    let amount = show_u(minor, cur.as_str());
    let balance = show_u(o.balance_minor(), cur.as_str());
    match client.redeem(&bytes) {
        Ok(ans) => {
            v["settled"] = json!(true);
            v["customer_balance_minor"] = json!(ans.customer_balance_minor);
            Ok(Done::new(
                format!(
                    "redeemed {amount} to the online account (online balance {})\n  offline balance {balance}",
                    crate::money::show(i128::from(ans.customer_balance_minor), cur.as_str())
                ),
                v,
            ))
        }
        Err(e @ (ClientError::Http { .. } | ClientError::Malformed { .. })) => {
            Err(Failure::from(e).with_prefix(&format!(
                "the wallet debited {amount} for the redeem (it is in its log and is reported at the next sync)"
            )))
        }
        Err(e) => {
            let f = Failure::from(e);
            v["settled"] = json!(false);
            v["reason"] = json!(f.message());
            Err(Failure::undelivered(
                "redeem_unsettled",
                format!(
                    "redeemed {amount} from the wallet (offline balance {balance}), but the server did not confirm it ({}). \
The redeem is in the wallet's log: it settles to the online account at the next `offpay wallet sync`, once",
                    f.message()
                ),
                v,
            ))
        }
    }
}

/// The wallet's state for people: active, locked (and what resolves it), or
/// revoked (which nothing resolves).
fn state_words(lock: Option<&str>, enrolled: bool) -> String {
    match lock {
        Some(r) if r.starts_with("locked by the issuer: revoked") => format!(
            "REVOKED ({r}): this wallet can no longer pay; what it holds is settled by the issuer, ask the issuer"
        ),
        Some(r) if r.contains("rolled back") => format!(
            "LOCKED ({r}): only the issuer can unlock it (`offpay admin unlock`), then sync"
        ),
        Some(r) => format!("LOCKED ({r}): sync after the issuer unlocks it"),
        None if enrolled => "active (not locked)".into(),
        None => "not enrolled".into(),
    }
}

pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn duration_words(s: u64) -> String {
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min {} s", s % 60)
    }
}

/// `wallet status`.
pub(crate) fn status(o: &Opened) -> Done {
    let mut d = general_status(o);
    let st = o.wallet.status(now());
    let cur = o.currency().map(|c| c.to_string()).unwrap_or_default();
    if st.profile == WalletProfile::Terminal {
        d.human.push_str(
            "\n  profile:             receive-only terminal (never pays; sweeps at sync)",
        );
        if let (Some(minor), Some(n)) = (st.receive_left_minor, st.receive_payments_left) {
            d.human.push_str(&format!(
                "\n  may still receive:   {} in {} before a sync",
                show_u(minor, &cur),
                plural(u64::from(n), "payment", "payments")
            ));
        }
        d.human.push_str(&format!(
            "\n  sweep at next sync:  {}",
            show_u(o.wallet.sweep_due_minor(), &cur)
        ));
    }
    d.json.insert("profile".into(), json!(st.profile.code()));
    d.json
        .insert("receive_left_minor".into(), json!(st.receive_left_minor));
    d.json.insert(
        "receive_payments_left".into(),
        json!(st.receive_payments_left),
    );
    d.json
        .insert("sweep_due_minor".into(), json!(o.wallet.sweep_due_minor()));
    d
}

fn general_status(o: &Opened) -> Done {
    let st = o.wallet.status(now());
    let cur = o.currency().map(|c| c.to_string()).unwrap_or_default();
    let lock = st.locked.as_ref().map(|r| r.to_string());
    let p = st.policy.as_ref();
    let mut h = format!(
        "wallet {}\n  state:               {}\n  offline balance:     {}",
        st.wallet_id,
        state_words(lock.as_deref(), st.enrolled),
        show_u(st.balance.map_or(0, |b| b.minor), &cur)
    );
    if let Some(s) = st.seconds_until_sync_required {
        h.push_str(&format!(
            "\n  sync required in:    {}{}",
            duration_words(s),
            if s == 0 {
                " (now: payments are refused)"
            } else {
                ""
            }
        ));
    }
    if let (Some(spend), Some(n)) = (st.offline_spend_left_minor, st.offline_payments_left) {
        h.push_str(&format!(
            "\n  left before a sync:  {} in {}",
            show_u(spend, &cur),
            plural(u64::from(n), "payment", "payments")
        ));
    }
    if let Some(p) = p {
        h.push_str(&format!(
            "\n  limits:              {} per payment, {} held at most",
            p.max_payment,
            show_u(p.max_balance_minor, &cur)
        ));
    }
    h.push_str(&format!(
        "\n  chain:               seq {}, load seq {}, {} unsynced entr{}",
        st.seq,
        st.load_seq,
        st.unsynced_entries,
        if st.unsynced_entries == 1 { "y" } else { "ies" }
    ));
    if st.evidence > 0 {
        h.push_str(&format!(
            "\n  evidence:            {} to report at the next sync",
            plural(st.evidence as u64, "refused payment", "refused payments")
        ));
    }
    if let Some(t) = st.certificate_expires {
        h.push_str(&format!("\n  certificate expires: {}", date(t.0)));
    }
    h.push_str(&format!(
        "\n  pending requests:    {} of {PENDING_REQUESTS_MAX}{}",
        st.pending_requests,
        match st.pending_request_next_expiry {
            Some(t) => format!(
                ", the next expires in {} (`wallet requests` lists them)",
                duration_words(t.since(now()))
            ),
            None => String::new(),
        }
    ));
    let stranded = read_stranded(o);
    if let Some((n, at)) = stranded.filter(|(n, _)| *n > 0) {
        h.push_str(&format!(
            "\n  {} (as of the sync at {})",
            stranded_words(n, &cur),
            date(at)
        ));
    }
    Done::new(
        h,
        json!({
            "pending_requests": st.pending_requests,
            "pending_requests_max": PENDING_REQUESTS_MAX,
            "pending_request_next_expiry_at": st.pending_request_next_expiry.map(|t| t.0),
            "stranded_minor": stranded.map(|(n, _)| n),
            "stranded_at": stranded.map(|(_, t)| t),
            "wallet_id": st.wallet_id.to_hex(),
            "enrolled": st.enrolled,
            "locked": lock.is_some(),
            "lock_reason": lock,
            "balance_minor": st.balance.map(|b| b.minor),
            "currency": cur,
            "seq": st.seq,
            "load_seq": st.load_seq,
            "unsynced_entries": st.unsynced_entries,
            "seconds_until_sync_required": st.seconds_until_sync_required,
            "offline_spend_left_minor": st.offline_spend_left_minor,
            "offline_payments_left": st.offline_payments_left,
            "max_payment_minor": p.map(|p| p.max_payment.minor),
            "max_balance_minor": p.map(|p| p.max_balance_minor),
            "certificate_expires_at": st.certificate_expires.map(|t| t.0),
            "evidence": st.evidence,
        }),
    )
}

/// The words for money the issuer credited that this wallet does not hold.
fn stranded_words(minor: i64, cur: &str) -> String {
    format!(
        "credited by the issuer, not in this wallet: {} (payments this wallet refused or never received; the issuer holds them in this wallet's account)",
        crate::money::show(i128::from(minor), cur)
    )
}

/// Where `wallet sync` keeps the issuer's last stranded figure for `status`.
const STRANDED_FILE: &str = "stranded.json";

fn remember_stranded(o: &Opened, s: &Synced) -> Result<(), Failure> {
    let Some(n) = s.stranded_minor else {
        return Ok(());
    };
    let v = json!({"stranded_minor": n, "checkpoint": s.applied.checkpoint, "at": now().0});
    walletdir::write_atomic(&o.dir.path().join(STRANDED_FILE), v.to_string().as_bytes())
}

/// (minor units, Unix seconds of the sync), if a sync recorded it.
fn read_stranded(o: &Opened) -> Option<(i64, u64)> {
    let b = walletdir::read_bounded(&o.dir.path().join(STRANDED_FILE), 4096).ok()?;
    let v: Value = serde_json::from_slice(&b).ok()?;
    Some((v["stranded_minor"].as_i64()?, v["at"].as_u64()?))
}

/// What `request` checks before the TA signs: a request the payer is sure to
/// refuse (over the scheme's per-payment limit) or that this wallet could not
/// accept now (over its holding room) is refused here; one that fits now but
/// not together with the other pending requests gets a warning.
fn request_checks(o: &Opened, minor: u64) -> Result<Option<String>, Failure> {
    let st = o.wallet.status(now());
    let Some(p) = st.policy.as_ref() else {
        return Ok(None);
    };
    let cur = p.currency().to_string();
    if minor > p.max_payment.minor {
        return Err(Failure::refused(
            "limit_per_payment",
            format!(
                "{} is over the scheme's per-payment limit of {}: no payer could pay this request; ask for at most {} per request",
                show_u(minor, &cur),
                p.max_payment,
                p.max_payment
            ),
        ));
    }
    let held = o.balance_minor();
    let room = p.max_balance_minor.saturating_sub(held);
    if minor > room {
        return Err(Failure::refused(
            "limit_holding",
            format!(
                "{} would take this wallet over its holding limit of {} (it holds {}, room for {}): the payment would be refused on arrival; spend, redeem or ask for less",
                show_u(minor, &cur),
                show_u(p.max_balance_minor, &cur),
                show_u(held, &cur),
                show_u(room, &cur)
            ),
        ));
    }
    let pending: u64 = o
        .wallet
        .pending_requests(now())
        .iter()
        .map(|r| r.amount.minor)
        .fold(0u64, u64::saturating_add);
    if pending.saturating_add(minor) > room {
        return Ok(Some(format!(
            "with the {} already asked in pending requests, not all of them can be accepted (room for {} before the holding limit of {})",
            show_u(pending, &cur),
            show_u(room, &cur),
            show_u(p.max_balance_minor, &cur)
        )));
    }
    Ok(None)
}

/// The TA's request, with the pending-request limit explained when it is hit.
fn make_request(o: &mut Opened, minor: u64, valid: u64) -> Result<Vec<u8>, Failure> {
    let cur = o.currency()?;
    match o.wallet.request(Amount::new(minor, cur), valid, now()) {
        Ok(b) => Ok(b),
        Err(WalletError::TooManyPendingRequests) => {
            let next = o
                .wallet
                .status(now())
                .pending_request_next_expiry
                .map(|t| {
                    format!(
                        "; the oldest expires in {} ({})",
                        duration_words(t.since(now()).saturating_add(1)),
                        date(t.0)
                    )
                })
                .unwrap_or_default();
            Err(Failure::refused(
                "too_many_pending_requests",
                format!(
                    "{PENDING_REQUESTS_MAX} of {PENDING_REQUESTS_MAX} payment requests are pending{next}: list them with `offpay wallet requests`, cancel one with `offpay wallet requests cancel ID`"
                ),
            ))
        }
        Err(e) => Err(wallet_failure(e)),
    }
}

/// `wallet requests`.
fn requests_list(o: &Opened) -> Done {
    let t = now();
    let list = o.wallet.pending_requests(t);
    let mut h = format!(
        "{} of {PENDING_REQUESTS_MAX} payment request(s) pending{}\n",
        list.len(),
        if list.is_empty() {
            ""
        } else {
            ", soonest to expire first:"
        }
    );
    let mut items = Vec::new();
    for r in &list {
        h.push_str(&format!(
            "  {}  {:>14}  expires in {} ({})\n",
            r.nonce.to_hex(),
            r.amount.to_string(),
            duration_words(r.expires.since(t)),
            date(r.expires.0)
        ));
        items.push(json!({
            "id": r.nonce.to_hex(),
            "amount_minor": r.amount.minor,
            "currency": r.amount.currency.to_string(),
            "expires_at": r.expires.0,
        }));
    }
    if !list.is_empty() {
        h.push_str("cancel one with `offpay wallet requests cancel ID`\n");
    }
    Done::new(
        h,
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "pending": items,
            "pending_requests_max": PENDING_REQUESTS_MAX,
        }),
    )
}

/// `wallet requests cancel ID`.
fn cancel_request(o: &mut Opened, id: &str) -> Outcome {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 6 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "request id {id:?}: the hex id `offpay wallet requests` lists (at least 6 digits)"
        )));
    }
    let list = o.wallet.pending_requests(now());
    let matching: Vec<Nonce> = list
        .iter()
        .map(|r| r.nonce)
        .filter(|n| n.to_hex().starts_with(&id))
        .collect();
    let nonce = match matching.as_slice() {
        [n] => *n,
        [] => {
            return Err(Failure::refused(
                "nonce_unknown",
                format!(
                    "no pending request {id} (already paid, cancelled or expired): `offpay wallet requests` lists the pending ones"
                ),
            ));
        }
        _ => {
            return Err(Failure::usage(format!(
                "request id {id} matches {} pending requests: give more digits",
                matching.len()
            )));
        }
    };
    let amount = o
        .wallet
        .cancel_request(&nonce, now())
        .map_err(wallet_failure)?;
    Ok(Done::new(
        format!(
            "cancelled the request {} for {amount}: this wallet now refuses a payment for it. A payer who already paid it is still debited, and the issuer credits that payment to this wallet's account when the payer syncs (shown as credited by the issuer, not in this wallet)",
            nonce.to_hex()
        ),
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "cancelled": nonce.to_hex(),
            "amount_minor": amount.minor,
            "currency": amount.currency.to_string(),
            "pending_requests": o.wallet.pending_requests(now()).len(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_767_225_599), "2025-12-31 23:59:59 UTC");
    }

    #[test]
    fn serials_print_as_openssl_does() {
        assert_eq!(serial_hex(4_611_686_018_427_387_905u64), "4000000000000001");
        assert_eq!(serial_hex(255u64), "FF");
        assert_eq!(serial_hex(256u64), "0100");
    }

    #[test]
    fn words_for_people() {
        assert_eq!(plural(1, "payment", "payments"), "1 payment");
        assert_eq!(plural(2, "payment", "payments"), "2 payments");
        assert_eq!(attempts_words(1), "1 attempt");
        assert_eq!(state_words(None, true), "active (not locked)");
        assert!(!state_words(Some("locked by the issuer: revoked: stolen"), true).contains("sync"));
    }
}
