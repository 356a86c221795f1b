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
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{LoadVoucher, Payment, PaymentRequest, Receipt};
use offpay_protocol::pki::Certificate;
use offpay_protocol::{Amount, Currency, Hash32, Suite};
use offpay_transport::tap::{self, TapError, TapListener};
use offpay_wallet::ta::REQUEST_SECONDS_MAX;
use offpay_wallet::vault::KdfParams;
use offpay_wallet::{HistoryKind, SyncApplied, Wallet, WalletError};
use serde_json::{Value, json};

use crate::admin::{AmountArgs, roots, server_url};
use crate::evidence::read_root;
use crate::http::Client;
use crate::money::{self, show_u};
use crate::msgio::{InArgs, OutArgs, Written};
use crate::now;
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::{self, DiskWallet, WalletConfig, WalletDir, kdf_from_env, wallet_failure};

/// Default validity of a payment request, seconds.
pub const REQUEST_SECONDS_DEFAULT: u64 = 300;
/// Default per-message timeout of a tap exchange, seconds.
pub const TAP_TIMEOUT_SECONDS_DEFAULT: u64 = 10;
/// Most attempts of one tap exchange (the first and its retries after a tear).
pub const TAP_ATTEMPTS_MAX: u32 = 4;
/// Pause between a payer's tap attempts.
const TAP_RETRY_PAUSE: Duration = Duration::from_millis(250);

#[derive(Args, Debug)]
pub struct WalletArgs {
    /// The wallet's directory: vault/, device.secret, wallet.json [env: OFFPAY_WALLET_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: WalletCmd,
}

#[derive(Subcommand, Debug)]
enum WalletCmd {
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
    /// Locked or not, time left before a sync is required, limits left.
    Status,
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
struct CreateArgs {
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
    /// Signature suite of the wallet key: ed25519 or p256.
    #[arg(long, default_value = "ed25519")]
    suite: String,
}

#[derive(Args, Debug)]
struct RequestArgs {
    #[command(flatten)]
    amount: AmountArgs,
    /// Seconds the request stays valid (at most 3600).
    #[arg(long, default_value_t = REQUEST_SECONDS_DEFAULT, value_name = "SECONDS")]
    valid: u64,
    #[command(flatten)]
    out: OutArgs,
}

#[derive(Args, Debug)]
struct PayArgs {
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
struct ReceiveArgs {
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
pub struct Opened {
    /// Its directory.
    pub dir: WalletDir,
    /// `wallet.json`.
    pub config: WalletConfig,
    /// The TA.
    pub wallet: DiskWallet,
}

impl Opened {
    /// Open the wallet in `dir` with `pin`.
    pub fn open(dir: WalletDir, pin: &str) -> Result<Opened, Failure> {
        let config = dir.config()?;
        let wallet = dir.open(pin)?;
        Ok(Opened {
            dir,
            config,
            wallet,
        })
    }

    /// The wallet's currency.
    pub fn currency(&self) -> Result<Currency, Failure> {
        match self.wallet.balance() {
            Some(b) => Ok(b.currency),
            None => Currency::new(&self.config.currency).ok_or_else(|| {
                Failure::refused("bad_config", "wallet.json names no valid currency")
            }),
        }
    }

    /// The offline balance in minor units.
    pub fn balance_minor(&self) -> u64 {
        self.wallet.balance().map_or(0, |b| b.minor)
    }

    /// A client for the wallet's server (or `server` if given).
    pub fn client(&self, server: Option<&str>) -> Result<Client, Failure> {
        Client::new(server.unwrap_or(&self.config.server))
    }
}

/// What enrollment produced.
pub struct Enrolled {
    /// The opened wallet.
    pub opened: Opened,
    /// SHA-256 of the trusted root certificate (hex).
    pub root_fingerprint: String,
    /// Whether the root came from the server (trust on first use).
    pub root_from_server: bool,
}

/// Create and enroll a wallet in `dir`.
pub fn enroll(
    dir: WalletDir,
    client: &Client,
    token: &str,
    pin: &str,
    kdf: KdfParams,
    suite: Suite,
    root_der: Option<Vec<u8>>,
) -> Result<Enrolled, Failure> {
    let anchors = roots(client)?;
    let currency = anchors["currency"].as_str().unwrap_or("").to_string();
    let root_from_server = root_der.is_none();
    let root_der = match root_der {
        Some(d) => d,
        None => Certificate::from_pem(anchors["root_pem"].as_str().unwrap_or(""))
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
        let e = client.post_json_ok(
            "/v1/enroll",
            &json!({"token": token, "csr": STANDARD.encode(&csr)}),
        )?;
        let field = |k: &str| -> Result<Vec<u8>, Failure> {
            STANDARD
                .decode(e[k].as_str().unwrap_or(""))
                .map_err(|_| Failure::refused("bad_response", format!("enrollment answer: {k}")))
        };
        if field("root_certificate")? != root_der {
            return Err(Failure::refused(
                "root_mismatch",
                "the server's scheme root is not the root this wallet trusts",
            ));
        }
        // After the answer: the certificate's notBefore is the server's clock then.
        w.enroll(
            &field("issuer_certificate")?,
            &field("certificate")?,
            &field("policy")?,
            Some(&field("crl")?),
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
pub struct Synced {
    /// The TA's account of it.
    pub applied: SyncApplied,
    /// Refused payments reported as rollback evidence.
    pub evidence_reported: usize,
}

/// Sync over `POST /v1/sync` and apply the answer.
pub fn sync(w: &mut DiskWallet, client: &Client) -> Result<Synced, Failure> {
    let evidence_reported = w.evidence().len();
    let report = w.sync_report(now()).map_err(wallet_failure)?;
    let resp = client.post_cbor("/v1/sync", &report)?;
    resp.success()?;
    if resp.content_type.as_deref() != Some("application/cbor") {
        return Err(Failure::refused(
            "bad_response",
            "the sync answer is not application/cbor",
        ));
    }
    let applied = w
        .apply_sync_response(&resp.body, now())
        .map_err(wallet_failure)?;
    Ok(Synced {
        applied,
        evidence_reported,
    })
}

/// The payee's view of a request it is about to pay.
pub fn describe_request(bytes: &[u8]) -> Result<PaymentRequest, Failure> {
    Signed::<PaymentRequest>::decode(bytes)
        .map(|s| s.body().clone())
        .map_err(|e| {
            wallet_failure(WalletError::Malformed(e)).with_prefix("this is not a payment request")
        })
}

impl Failure {
    /// The same failure with words in front.
    pub fn with_prefix(self, prefix: &str) -> Failure {
        match self {
            Failure::Refused { code, message } => Failure::Refused {
                code,
                message: format!("{prefix}: {message}"),
            },
            Failure::Usage(m) => Failure::Usage(format!("{prefix}: {m}")),
        }
    }
}

/// Pay a request: (payment bytes, payment body, whether it was paid before).
pub fn pay_request(
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
pub fn receive_payment(
    w: &mut DiskWallet,
    payment: &[u8],
) -> Result<(Vec<u8>, Payment, bool), Failure> {
    let p = Signed::<Payment>::decode(payment)
        .map_err(|e| {
            wallet_failure(WalletError::Malformed(e)).with_prefix("this is not a payment")
        })?
        .body()
        .clone();
    let before = w.balance().map_or(0, |b| b.minor);
    let receipt = w.receive(payment, now()).map_err(wallet_failure)?;
    let repeated = w.balance().map_or(0, |b| b.minor) == before;
    Ok((receipt, p, repeated))
}

/// Record a receipt; returns its payment id.
pub fn confirm_receipt(w: &mut DiskWallet, receipt: &[u8]) -> Result<Receipt, Failure> {
    let r = Signed::<Receipt>::decode(receipt)
        .map_err(|e| {
            wallet_failure(WalletError::Malformed(e)).with_prefix("this is not a receipt")
        })?
        .body()
        .clone();
    w.confirm(receipt).map_err(wallet_failure)?;
    Ok(r)
}

// ---- the commands ---------------------------------------------------------------------------

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

pub fn run(a: WalletArgs) -> Outcome {
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
            let mut o = open(dir)?;
            let bytes = o
                .wallet
                .request(Amount::new(minor, o.currency()?), r.valid, now())
                .map_err(wallet_failure)?;
            let req = describe_request(&bytes)?;
            let written = r.out.write(&bytes, "payment request")?;
            let mut d = Done::new(
                format!(
                    "payment request for {} to wallet {} (valid until {})\n{}",
                    req.amount,
                    req.payee,
                    date(req.expires.0),
                    written.human
                ),
                json!({
                    "wallet_id": req.payee.to_hex(),
                    "amount_minor": req.amount.minor,
                    "currency": req.amount.currency.to_string(),
                    "nonce": req.nonce.to_hex(),
                    "created_at": req.created.0,
                    "expires_at": req.expires.0,
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
            for it in o.wallet.history() {
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
                    "{}  {:<9} {sign}{}{who}\n",
                    date(it.time.0),
                    kind,
                    show_u(it.amount_minor, &cur)
                ));
                items.push(json!({
                    "kind": kind,
                    "amount_minor": it.amount_minor,
                    "counterparty": it.counterparty.map(|c| c.to_hex()),
                    "at": it.time.0,
                    "id": it.id.to_hex(),
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
                    "serial": c.serial().to_string(),
                    "not_before": c.not_before().0,
                    "not_after": c.not_after().0,
                    "issuer": c.issuer_cn(),
                    "pem": pem,
                    "out": out.map(|p| p.display().to_string()),
                }),
            ))
        }
    }
}

fn create(dir: WalletDir, c: CreateArgs) -> Outcome {
    let suite = Suite::from_name(&c.suite)
        .ok_or_else(|| Failure::usage(format!("--suite {:?}: ed25519 or p256", c.suite)))?;
    let client = Client::new(&server_url(c.server.as_deref()))?;
    let root_der = c
        .root
        .as_deref()
        .map(|p| read_root(p).map(|r| r.der().to_vec()))
        .transpose()?;
    let (kdf, kdf_name) = kdf_from_env()?;
    if dir.exists() {
        return Err(Failure::refused(
            "wallet_exists",
            format!("{} already holds a wallet", dir.path().display()),
        ));
    }
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
        cert.map(|c| c.serial().to_string()).unwrap_or_default(),
        cert.map(|c| date(c.not_after().0)).unwrap_or_default(),
        cur,
        suite,
    );
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
            "certificate_serial": cert.map(|c| c.serial().to_string()),
            "certificate_expires_at": cert.map(|c| c.not_after().0),
            "root_sha256": e.root_fingerprint,
            "root_from_server": e.root_from_server,
            "kdf": kdf_name,
        }),
    ))
}

fn load(mut o: Opened, voucher: &std::path::Path) -> Outcome {
    let bytes = walletdir::read_bounded(voucher, crate::msgio::MESSAGE_FILE_BYTES_MAX)
        .map_err(|e| Failure::io(format!("cannot read {}", voucher.display()), &e))?;
    let v = Signed::<LoadVoucher>::decode(&bytes).map_err(|e| {
        wallet_failure(WalletError::Malformed(e)).with_prefix("this is not a load voucher")
    })?;
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
    let mut o = open(dir)?;
    let (bytes, p, repeated) = pay_request(&mut o.wallet, &request, expect)?;
    let written = a.out.write(&bytes, "payment")?;
    let said = if repeated {
        "already paid: the same payment again,"
    } else {
        "paid"
    };
    let peer = format!("to wallet {}", p.payee);
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
    let mut o = open(dir)?;
    let (receipt, p, repeated) = receive_payment(&mut o.wallet, &payment)?;
    let written = a.out.write(&receipt, "receipt")?;
    let said = if repeated {
        "already received (not credited again): the same receipt,"
    } else {
        "received"
    };
    let peer = format!("from wallet {}", p.payer);
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

fn pay_tap(dir: WalletDir, addr: &str, expect: Option<u64>, timeout: u64) -> Outcome {
    let timeout = tap_timeout(timeout)?;
    let mut o = open(dir)?;
    let mut last = None;
    for attempt in 1..=TAP_ATTEMPTS_MAX {
        let refusal: RefCell<Option<Failure>> = RefCell::new(None);
        let made: RefCell<Option<(Payment, bool)>> = RefCell::new(None);
        let result = tap::tap_connect(addr, timeout).and_then(|conn| {
            conn.pay(
                |request| match pay_request(&mut o.wallet, request, expect) {
                    Ok((bytes, p, repeated)) => {
                        *made.borrow_mut() = Some((p, repeated));
                        Ok(bytes)
                    }
                    Err(f) => {
                        let reason = f.to_string();
                        *refusal.borrow_mut() = Some(f);
                        Err(reason)
                    }
                },
            )
        });
        match result {
            Ok(paid) => {
                confirm_receipt(&mut o.wallet, &paid.receipt)?;
                let (p, repeated) = made.into_inner().ok_or_else(|| {
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
                                " after {attempt} attempts (the torn exchange was resumed, paid once)"
                            )
                        } else {
                            String::new()
                        },
                        show_u(o.balance_minor(), &cur)
                    ),
                    v,
                ));
            }
            Err(TapError::Refused { .. }) => {
                return Err(refusal
                    .into_inner()
                    .unwrap_or_else(|| Failure::refused("refused", "the payment was refused")));
            }
            Err(e) if e.is_torn() && attempt < TAP_ATTEMPTS_MAX => {
                eprintln!("offpay: {e}: retrying ({attempt}/{})", TAP_ATTEMPTS_MAX - 1);
                last = Some(e);
                std::thread::sleep(TAP_RETRY_PAUSE);
            }
            Err(e) if e.is_torn() => {
                last = Some(e);
                break;
            }
            Err(e) => return Err(tap_failure(&e)),
        }
    }
    let e = last.map(|e| e.to_string()).unwrap_or_default();
    Err(Failure::refused(
        "tap_torn",
        format!(
            "{e}. The payment is debited and settles to the payee at sync even without a receipt; run the same command again while the payee still listens to collect the receipt"
        ),
    ))
}

fn receive_tap(dir: WalletDir, addr: &str, minor: u64, valid: u64, timeout: u64) -> Outcome {
    let timeout = tap_timeout(timeout)?;
    let mut o = open(dir)?;
    let request = o
        .wallet
        .request(Amount::new(minor, o.currency()?), valid, now())
        .map_err(wallet_failure)?;
    let req = describe_request(&request)?;
    let deadline = Instant::now() + Duration::from_secs(valid);
    let mut listener = TapListener::bind(addr)
        .and_then(|l| l.with_timeout(timeout))
        .map_err(|e| tap_failure(&e))?;
    let local = listener.local_addr().map_err(|e| tap_failure(&e))?;
    eprintln!(
        "offpay: asking {} on the tap at {local}: pay with `offpay wallet --dir PAYER pay --tap {local}`",
        req.amount
    );
    // A payment credited in an exchange whose receipt was lost (torn).
    let mut credited: Option<Payment> = None;
    for attempt in 1..=TAP_ATTEMPTS_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
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
                    let reason = f.to_string();
                    *refusal.borrow_mut() = Some(f);
                    Err(reason)
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
                            format!(" after {attempt} attempts (credited once)")
                        } else {
                            String::new()
                        },
                        show_u(o.balance_minor(), &cur)
                    ),
                    v,
                ));
            }
            Err(TapError::Refused { .. }) => {
                return Err(refusal
                    .into_inner()
                    .unwrap_or_else(|| Failure::refused("refused", "the payment was refused")));
            }
            Err(e @ TapError::PeerRefused { .. }) => return Err(tap_failure(&e)),
            Err(e) => {
                // Torn (credited, receipt lost) or a payer that went away: keep
                // offering the same request; the payer's retry gets the same receipt.
                if let Some((p, _)) = got.into_inner() {
                    credited = Some(p);
                }
                if matches!(
                    e,
                    TapError::Timeout {
                        step: tap::Step::Accept
                    }
                ) {
                    break;
                }
                eprintln!("offpay: {e}: waiting for the payer to try again");
            }
        }
    }
    match credited {
        Some(p) => Err(Failure::refused(
            "tap_torn",
            format!(
                "received {} from wallet {} but the receipt never reached the payer; the credit stands, and the payment settles at sync",
                p.amount, p.payer
            ),
        )),
        None => Err(Failure::refused(
            "tap_timeout",
            "no payer completed the exchange before the request expired: nothing received",
        )),
    }
}

/// The output of a sync.
pub fn sync_done(o: &Opened, s: &Synced) -> Done {
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
    if s.evidence_reported > 0 {
        h.push_str(&format!(
            "\n  reported {} refused payment(s) as rollback evidence",
            s.evidence_reported
        ));
    }
    if a.certificate_renewed {
        h.push_str("\n  certificate renewed");
    }
    if a.policy_updated {
        h.push_str("\n  risk policy updated");
    }
    if a.crl_updated {
        h.push_str("\n  revocation list updated");
    }
    if a.unlocked {
        h.push_str("\n  UNLOCKED by the issuer: the wallet adopted the issuer's checkpoint");
    }
    if let Some(r) = &lock {
        h.push_str(&format!("\n  LOCKED: {r}"));
    }
    h.push_str(&format!(
        "\n  offline balance {}",
        show_u(o.balance_minor(), &cur)
    ));
    Done::new(
        h,
        json!({
            "wallet_id": o.wallet.wallet_id().to_hex(),
            "checkpoint": a.checkpoint,
            "vouchers_applied": a.vouchers_applied,
            "vouchers_deferred": a.vouchers_deferred,
            "evidence_reported": s.evidence_reported,
            "certificate_renewed": a.certificate_renewed,
            "policy_updated": a.policy_updated,
            "crl_updated": a.crl_updated,
            "unlocked": a.unlocked,
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
pub fn redeem(o: &mut Opened, client: &Client, minor: u64) -> Outcome {
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
    let answer = client.post_cbor("/v1/redeem", &bytes);
    match answer {
        Ok(r) => match r.json() {
            Ok(ans) => {
                v["settled"] = json!(true);
                v["customer_balance_minor"] = ans["customer_balance_minor"].clone();
                Ok(Done::new(
                    format!(
                        "redeemed {amount} to the online account (online balance {})\n  offline balance {balance}",
                        crate::money::show(
                            i128::from(ans["customer_balance_minor"].as_i64().unwrap_or(0)),
                            cur.as_str()
                        )
                    ),
                    v,
                ))
            }
            Err(f) => Err(f.with_prefix(&format!(
                "the wallet debited {amount} for the redeem (it is in its log and is reported at the next sync)"
            ))),
        },
        Err(f) => {
            v["settled"] = json!(false);
            v["reason"] = json!(f.to_string());
            Ok(Done::new(
                format!(
                    "redeemed {amount} offline: {f}; it settles to the online account at the next sync\n  offline balance {balance}"
                ),
                v,
            ))
        }
    }
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
pub fn status(o: &Opened) -> Done {
    let st = o.wallet.status(now());
    let cur = o.currency().map(|c| c.to_string()).unwrap_or_default();
    let lock = st.locked.as_ref().map(|r| r.to_string());
    let p = st.policy.as_ref();
    let mut h = format!(
        "wallet {}\n  state:               {}\n  offline balance:     {}",
        st.wallet_id,
        match &lock {
            Some(r) => format!("LOCKED ({r}): sync to resolve"),
            None if st.enrolled => "unlocked".into(),
            None => "not enrolled".into(),
        },
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
            "\n  left before a sync:  {} in {n} payment(s)",
            show_u(spend, &cur)
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
            "\n  evidence:            {} refused payment(s) to report at the next sync",
            st.evidence
        ));
    }
    if let Some(t) = st.certificate_expires {
        h.push_str(&format!("\n  certificate expires: {}", date(t.0)));
    }
    Done::new(
        h,
        json!({
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

/// "2026-01-31 12:34:56 UTC" from Unix seconds (proleptic Gregorian).
pub fn date(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
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
}
