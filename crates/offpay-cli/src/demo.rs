//! `offpay demo`: the whole story, on the embedded default, in plain words.
//!
//! The real thing end to end: the issuer's HTTP server in-process on a free
//! loopback port with SQLite in a directory, wallets in sealed file vaults in
//! their own directories, and every message passed as bytes (also written as
//! files, a QR code PNG, and carried once over the tap socket). Every step is
//! checked; the demo exits non-zero if any did not behave as told.
//!
//! The last chapters tell a scheme of two banks: a scheme server and two
//! member issuer servers, in-process too, each with its own SQLite database
//! (under `two-banks/`); wallets of both banks pay each other, a cloned
//! wallet double-spends across the banks, and a settlement cycle is closed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use offpay_protocol::evidence::verify_double_spend_bytes;
use offpay_protocol::pki::{Certificate, Crl};
use offpay_protocol::{Amount, Currency, Suite};
use offpay_server::ServerConfig;
use offpay_transport::{qr, tap};
use offpay_wallet::vault::KdfParams;
use serde_json::{Value, json};

use offpay_client::api::{CreateCustomerRequest, DoubleSpendsQuery, MoneyRequest};

use crate::admin;
use crate::http;
use crate::money::{show, show_u};
use crate::out::{Done, Failure, Outcome};
use crate::wallet::{self, Opened};
use crate::walletdir::{WalletDir, kdf_from_env};

/// The demo's wallet PIN (the vault key also needs each wallet's device secret).
const DEMO_PIN: &str = "2468";

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {
    /// Keep everything in DIR (issuer data, wallets, message files, the proof)
    /// instead of a temporary directory; DIR must be new or empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The narrator: prints as the story goes (text mode) and keeps score.
struct Story {
    json: bool,
    /// Whether the demo's directory is kept (`--dir`), so its files can be
    /// pointed at.
    kept: bool,
    chapter: usize,
    chapters: Vec<Value>,
    failed: Vec<String>,
}

impl Story {
    fn chapter(&mut self, title: &str) {
        self.chapter += 1;
        if !self.json {
            say!("\n{}. {title}", self.chapter);
        }
        self.chapters
            .push(json!({"chapter": self.chapter, "title": title, "checks": []}));
    }

    fn say(&self, text: impl AsRef<str>) {
        if !self.json {
            for line in text.as_ref().lines() {
                say!("   {line}");
            }
        }
    }

    fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        let what = what.into();
        if !self.json {
            say!("   {} {what}", if ok { "ok  " } else { "FAIL" });
        }
        if let Some(Value::Array(c)) = self.chapters.last_mut().and_then(|c| c.get_mut("checks")) {
            c.push(json!({"what": what, "ok": ok}));
        }
        if !ok {
            self.failed.push(format!("{}: {what}", self.chapter));
        }
        ok
    }
}

/// One customer of the story.
struct Person {
    name: &'static str,
    w: Opened,
}

impl Person {
    fn balance(&self) -> u64 {
        self.w.balance_minor()
    }
    fn id(&self) -> String {
        self.w.wallet.wallet_id().to_hex()
    }
}

pub(crate) fn run(a: DemoArgs, as_json: bool) -> Outcome {
    let (kdf, kdf_name) = kdf_from_env()?;
    let _tmp;
    let a_dir_kept = a.dir.is_some();
    let base = match a.dir {
        Some(d) => {
            if d.exists()
                && std::fs::read_dir(&d)
                    .map_err(|e| Failure::io(format!("cannot read {}", d.display()), &e))?
                    .next()
                    .is_some()
            {
                return Err(Failure::usage(format!(
                    "--dir {}: the demo needs a new or empty directory",
                    d.display()
                )));
            }
            std::fs::create_dir_all(&d)
                .map_err(|e| Failure::io(format!("cannot create {}", d.display()), &e))?;
            d
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("offpay-demo-")
                .tempdir()
                .map_err(|e| Failure::io("cannot make a temporary directory", &e))?;
            let p = t.path().to_path_buf();
            _tmp = t;
            p
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the async runtime", &e))?;
    let started = Instant::now();
    let mut config = ServerConfig::with_data_dir(base.join("issuer"));
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let server = rt
        .block_on(offpay_server::spawn(config))
        .map_err(|e| Failure::refused("server_start", e.to_string()))?;
    let mut story = Story {
        json: as_json,
        kept: a_dir_kept,
        chapter: 0,
        chapters: Vec::new(),
        failed: Vec::new(),
    };
    if !as_json {
        say!(
            "offpay demo: offline payments, end to end, on the embedded default\n(issuer on {}, everything under {})",
            server.url(),
            base.display()
        );
    }
    let result = tell(
        &mut story,
        &base,
        &server.url(),
        &server.operator_token,
        kdf,
        kdf_name,
    );
    let _ = rt.block_on(server.shutdown());
    let table = result?;
    let banks = tell_two_banks(&mut story, &base, &rt, kdf)?;
    let elapsed = started.elapsed();
    if !story.failed.is_empty() {
        return Err(Failure::refused(
            "demo_failed",
            format!(
                "{} step(s) did not behave as told:\n  {}",
                story.failed.len(),
                story.failed.join("\n  ")
            ),
        ));
    }
    let checks: usize = story
        .chapters
        .iter()
        .map(|c| c["checks"].as_array().map_or(0, Vec::len))
        .sum();
    Ok(Done::new(
        format!(
            "{}\nEvery step behaved as told ({checks} checks, {:.1} s).",
            table.0,
            elapsed.as_secs_f64()
        ),
        json!({
            "dir": base.display().to_string(),
            "kdf": kdf_name,
            "chapters": story.chapters,
            "checks": checks,
            "final": table.1,
            "two_banks": banks,
            "seconds": elapsed.as_secs_f64(),
        }),
    ))
}

/// Write a message next to the story (best effort: the bytes are what count).
fn keep(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    let _ = std::fs::write(&p, bytes);
    p.display().to_string()
}

/// An offline payment by files: request, payment, receipt. Returns the
/// message sizes (request, payment, receipt).
fn pay_by_files(
    story: &mut Story,
    msgs: &Path,
    n: &mut usize,
    payer: &mut Person,
    payee: &mut Person,
    minor: u64,
    currency: Currency,
) -> Result<(usize, usize, usize), Failure> {
    *n += 1;
    let req = payee
        .w
        .wallet
        .request(Amount::new(minor, currency), 300, crate::now())
        .map_err(crate::walletdir::wallet_failure)?;
    keep(msgs, &format!("{n:02}-request.bin"), &req);
    let (payment, p, _) = wallet::pay_request(&mut payer.w.wallet, &req, Some(minor))?;
    keep(msgs, &format!("{n:02}-payment.bin"), &payment);
    let (receipt, _, _) = wallet::receive_payment(&mut payee.w.wallet, &payment)?;
    keep(msgs, &format!("{n:02}-receipt.bin"), &receipt);
    wallet::confirm_receipt(&mut payer.w.wallet, &receipt)?;
    story.say(format!(
        "{} pays {} {} (seq {} of {}'s chain): request {} B, payment {} B, receipt {} B, as files {:02}-*.bin",
        payer.name,
        payee.name,
        p.amount,
        p.seq,
        payer.name,
        req.len(),
        payment.len(),
        receipt.len(),
        n
    ));
    Ok((req.len(), payment.len(), receipt.len()))
}

/// The story. Returns the final table (text, JSON).
#[expect(clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed
fn tell(
    story: &mut Story,
    base: &Path,
    url: &str,
    token: &str,
    kdf: KdfParams,
    kdf_name: &str,
) -> Result<(String, Value), Failure> {
    let public = http::client(url)?;
    let op = public.clone().with_token(token);
    let msgs = base.join("messages");
    std::fs::create_dir_all(&msgs)
        .map_err(|e| Failure::io(format!("cannot create {}", msgs.display()), &e))?;
    let mut n = 0usize;

    // ---- 1 -------------------------------------------------------------------------------
    story.chapter("The issuer sets up");
    let health = public.health()?;
    let roots = public.roots()?;
    let root = Certificate::from_pem(&roots.root_pem)
        .map_err(|e| Failure::refused("bad_response", format!("root certificate: {e}")))?;
    let issuer_cert = Certificate::from_pem(&roots.issuer_pem)
        .map_err(|e| Failure::refused("bad_response", format!("issuer certificate: {e}")))?;
    let currency = Currency::new(&roots.currency).ok_or_else(|| {
        Failure::refused(
            "bad_response",
            format!(
                "the server's currency {:?} is not an ISO 4217 code",
                roots.currency
            ),
        )
    })?;
    let cur = currency.as_str().to_string();
    story.say(format!(
        "A bank runs the offpay issuer: a double-entry ledger in {} ({}),\n\
         a scheme root CA \"{}\" and an issuer CA \"{}\" that certifies wallets.\n\
         The HTTP API listens on {url}.",
        if health.backend == "sqlite" {
            "SQLite"
        } else {
            "PostgreSQL"
        },
        base.join("issuer").display(),
        root.subject_cn(),
        issuer_cert.subject_cn(),
    ));
    story.check(
        health.status == "ok" && issuer_cert.verify_signed_by(&root).is_ok(),
        "the server answers and the issuer CA chains to the scheme root",
    );

    // ---- 2 -------------------------------------------------------------------------------
    story.chapter("Customers open online accounts");
    let people = [("alice", 25_000u64), ("bob", 20_000), ("carol", 0)];
    for (id, deposit) in people {
        op.create_customer(&CreateCustomerRequest {
            id: id.to_string(),
            name: format!("{}{}", id[..1].to_uppercase(), &id[1..]),
        })?;
        if deposit > 0 {
            op.deposit(
                id,
                &MoneyRequest {
                    amount_minor: deposit,
                    currency: cur.clone(),
                    idempotency_key: format!("demo-deposit-{id}"),
                },
            )?;
        }
    }
    story.say(format!(
        "Alice deposits {} and Bob {}; Carol, who runs a market stall, starts at zero.",
        show_u(25_000, &cur),
        show_u(20_000, &cur)
    ));
    let online =
        |id: &str| -> Result<i128, Failure> { Ok(i128::from(op.customer(id)?.balance_minor)) };
    let ok = online("alice")? == 25_000 && online("bob")? == 20_000 && online("carol")? == 0;
    story.check(ok, "online balances: Alice 250.00, Bob 200.00, Carol 0.00");

    // ---- 3 -------------------------------------------------------------------------------
    story.chapter("Each gets a wallet");
    story.say(format!(
        "A wallet is a trusted application with a sealed vault (Argon2id of PIN and device\n\
         secret, XChaCha20-Poly1305, a monotonic counter).\n\
         Key derivation: {kdf_name}{}.",
        if kdf_name == "test" {
            " (OFFPAY_KDF=test: fast and insecure, for tests only)"
        } else {
            " (OWASP's minimum: 19 MiB, 2 passes)"
        }
    ));
    let mut enrolled = Vec::new();
    for (id, _) in people {
        let t = op.enrollment_token(id)?;
        let e = wallet::enroll(
            WalletDir::new(base.join(format!("wallet-{id}"))),
            &public,
            &t.token,
            DEMO_PIN,
            kdf,
            Suite::Ed25519,
            Some(root.der().to_vec()),
        )?;
        let name: &'static str = match id {
            "alice" => "Alice",
            "bob" => "Bob",
            _ => "Carol",
        };
        let cert = e.opened.wallet.certificate().cloned();
        story.say(format!(
            "{name}'s wallet {} enrolled with a one-time token: certificate serial {}",
            e.opened.wallet.wallet_id(),
            cert.as_ref().map(|c| c.serial()).unwrap_or(0)
        ));
        enrolled.push(Person { name, w: e.opened });
    }
    let mut it = enrolled.into_iter();
    let (mut alice, mut bob, mut carol) = match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(Failure::refused("demo", "wallets missing")),
    };
    let policy = alice.w.wallet.status(crate::now()).policy;
    if let Some(p) = &policy {
        story.say(format!(
            "Risk limits signed by the issuer: {} per payment, {} held, {} and {}\nbetween syncs, {} offline at most.",
            p.max_payment,
            show_u(p.max_balance_minor, &cur),
            show_u(p.max_offline_spend_minor, &cur),
            crate::wallet::plural(u64::from(p.max_offline_payments), "payment", "payments"),
            crate::wallet::plural(p.max_offline_seconds / 86_400, "day", "days")
        ));
    }
    story.check(
        [&alice, &bob, &carol]
            .iter()
            .all(|p| p.w.wallet.certificate().is_some() && p.balance() == 0),
        "three wallets enrolled, each with a certificate and an empty balance",
    );

    // ---- 4 -------------------------------------------------------------------------------
    story.chapter("Loading offline money");
    for (p, minor) in [(&alice, 20_000u64), (&bob, 2_000)] {
        op.load(
            &p.id(),
            &MoneyRequest {
                amount_minor: minor,
                currency: cur.clone(),
                idempotency_key: format!("demo-load-{}", p.name),
            },
        )?;
    }
    story.say(format!(
        "The bank moves {} of Alice's and {} of Bob's online money into their wallets:\n\
         the issuer signs numbered load vouchers; each wallet picks its voucher up when it syncs.",
        show_u(20_000, &cur),
        show_u(2_000, &cur)
    ));
    for p in [&mut alice, &mut bob, &mut carol] {
        let client = p.w.client(None)?;
        wallet::sync(&mut p.w.wallet, &client)?;
    }
    story.check(
        alice.balance() == 20_000 && bob.balance() == 2_000,
        "wallets hold Alice 200.00, Bob 20.00",
    );
    story.check(
        online("alice")? == 5_000 && online("bob")? == 18_000,
        "online accounts now Alice 50.00, Bob 180.00",
    );

    // ---- 5 -------------------------------------------------------------------------------
    story.chapter("Offline: payments both ways, and money spent on at once");
    story.say(
        "No network from here on: each payment is three signed messages (the payee's request\n\
         with a fresh nonce, the payer's payment, the payee's receipt), checked offline\n\
         against the certificates and the revocation list each wallet holds.",
    );
    let sizes1 = pay_by_files(story, &msgs, &mut n, &mut alice, &mut bob, 3_000, currency)?;

    // Bob pays Alice back over the tap socket (standing in for NFC/BLE).
    n += 1;
    let tap_req = alice
        .w
        .wallet
        .request(Amount::new(500, currency), 300, crate::now())
        .map_err(crate::walletdir::wallet_failure)?;
    let listener = tap::TapListener::bind("127.0.0.1:0")
        .map_err(|e| Failure::refused("tap", e.to_string()))?;
    let tap_addr = listener
        .local_addr()
        .map_err(|e| Failure::refused("tap", e.to_string()))?;
    let alice_w = &mut alice.w.wallet;
    let bob_w = &mut bob.w.wallet;
    let (served, paid) = std::thread::scope(|s| {
        let payee = s.spawn(|| {
            tap::serve_one(&listener, &tap_req, |payment| {
                wallet::receive_payment(alice_w, payment)
                    .map(|(r, _, _)| r)
                    .map_err(|f| tap::Decline::from(f.to_string()))
            })
        });
        let paid = tap::pay_over_tap(tap_addr, |request| {
            wallet::pay_request(bob_w, request, Some(500))
                .map(|(b, _, _)| b)
                .map_err(|f| tap::Decline::from(f.to_string()))
        });
        (payee.join(), paid)
    });
    let tap_ok = match (served, paid) {
        (Ok(Ok(_)), Ok(paid)) => {
            wallet::confirm_receipt(&mut bob.w.wallet, &paid.receipt)?;
            keep(&msgs, &format!("{n:02}-payment-tap.bin"), &paid.payment);
            true
        }
        (s, p) => {
            story.say(format!("tap exchange failed: {s:?} / {:?}", p.err()));
            false
        }
    };
    story.say(format!(
        "Bob pays Alice {} back over the tap socket (request, payment, receipt in one exchange on {tap_addr}).",
        show_u(500, &cur)
    ));
    story.check(
        tap_ok,
        "the tap exchange completed and Bob recorded the receipt",
    );

    // Carol shows her request as a QR code; Bob scans it and pays with money he just received.
    n += 1;
    let bob_before = bob.balance();
    let carol_req = carol
        .w
        .wallet
        .request(Amount::new(4_000, currency), 300, crate::now())
        .map_err(crate::walletdir::wallet_failure)?;
    let png = msgs.join(format!("{n:02}-request.png"));
    let info = qr::encode_png_file(&carol_req, &png, qr::QR_SCALE_DEFAULT)
        .map_err(|e| Failure::refused("qr", e.to_string()))?;
    let scanned = qr::decode_png_file(&png).map_err(|e| Failure::refused("qr", e.to_string()))?;
    story.check(
        scanned == carol_req,
        format!(
            "Carol's request travels as a QR code (version {}, {}) and scans back byte for byte",
            info.version,
            png.display()
        ),
    );
    let (payment, p, _) = wallet::pay_request(&mut bob.w.wallet, &scanned, Some(4_000))?;
    keep(&msgs, &format!("{n:02}-payment.bin"), &payment);
    let (receipt, _, _) = wallet::receive_payment(&mut carol.w.wallet, &payment)?;
    wallet::confirm_receipt(&mut bob.w.wallet, &receipt)?;
    story.say(format!(
        "Bob had loaded only {}; he pays Carol {} (seq {}), most of it Alice's money, still offline.",
        show_u(2_000, &cur),
        p.amount,
        p.seq
    ));
    story.check(
        bob_before == 4_500 && bob.balance() == 500 && carol.balance() == 4_000,
        "transitivity: Bob 45.00 -> 5.00, Carol 40.00, with no sync in between",
    );
    story.check(
        payment.len() == sizes1.1,
        format!(
            "a payment is {} bytes at every hop (no growth with transitivity)",
            payment.len()
        ),
    );
    story.check(
        alice.balance() == 17_500,
        "Alice: 200.00 - 30.00 + 5.00 = 175.00",
    );

    // ---- 6 -------------------------------------------------------------------------------
    story.chapter("Back online: sync");
    story.say(
        "Each wallet sends a signed report (its chain entries, payments received, loads);\n\
         the issuer checks every signature, the chain and the balance equation, records each\n\
         entry once under (payer, seq), settles, and answers with a signed checkpoint.",
    );
    for p in [&mut carol, &mut bob, &mut alice] {
        let client = p.w.client(None)?;
        wallet::sync(&mut p.w.wallet, &client)?;
    }
    let sub = |p: &Person| -> Result<i128, Failure> {
        Ok(i128::from(op.wallet(&p.id())?.offline_balance_minor))
    };
    // A payment the payee refused (or never got) is still credited to its
    // sub-account: count that money explicitly instead of assuming there is none.
    let mut all = true;
    let mut stranded: i128 = 0;
    for p in [&alice, &bob, &carol] {
        let v = op.wallet(&p.id())?;
        let s = i128::from(v.stranded_minor);
        stranded += s;
        all &= i128::from(v.offline_balance_minor) == i128::from(p.balance()) + s;
    }
    story.check(
        all,
        format!(
            "each wallet's sub-account at the issuer equals the balance its TA holds plus the money credited but not held (stranded: {} in all)",
            show(stranded, &cur)
        ),
    );
    let inv = op.invariants()?;
    story.check(inv.ok, "ledger invariants hold");

    // ---- 7 -------------------------------------------------------------------------------
    story.chapter("Carol redeems");
    let client = carol.w.client(None)?;
    wallet::redeem(&mut carol.w, &client, 4_000)?;
    story.say(format!(
        "Carol moves her {} takings back to her online account (a signed redeem entry, settled once).",
        show_u(4_000, &cur)
    ));
    story.check(
        carol.balance() == 0 && online("carol")? == 4_000 && sub(&carol)? == 0,
        "Carol: wallet 0.00, online 40.00",
    );

    // ---- 8 -------------------------------------------------------------------------------
    story.chapter("An attack: Alice rolls her wallet back and pays twice");
    story.say(
        "Alice copies her whole vault directory, sealed state AND monotonic counter. A software\n\
         vault cannot tell a restored pair from the real one (a TPM or secure element could).",
    );
    let alice_dir = alice.w.dir.clone();
    let vault = alice_dir.vault_dir();
    let copy = base.join("alice-vault-copy");
    copy_dir(&vault, &copy)?;
    let seq_before = alice.w.wallet.chain_head().0;
    let (_, p1) = {
        let (b, p) = pay_once(&mut alice, &mut bob, 15_000, currency)?;
        keep(&msgs, "attack-payment-to-bob.bin", &b);
        (b, p)
    };
    story.say(format!(
        "Alice pays Bob {} (seq {}); her wallet now holds {}.",
        p1.amount,
        p1.seq,
        show_u(alice.balance(), &cur)
    ));
    // Restore the copy: close the wallet, put the old files back, open again.
    drop(alice);
    std::fs::remove_dir_all(&vault)
        .map_err(|e| Failure::io(format!("cannot remove {}", vault.display()), &e))?;
    copy_dir(&copy, &vault)?;
    let mut alice = Person {
        name: "Alice",
        w: Opened::open(alice_dir, DEMO_PIN)?,
    };
    story.check(
        alice.w.wallet.lock().is_none() && alice.balance() == 17_500,
        "the restored wallet opens unlocked with 175.00 again: the rollback is invisible offline",
    );
    let (b2, p2) = pay_once(&mut alice, &mut carol, 15_000, currency)?;
    keep(&msgs, "attack-payment-to-carol.bin", &b2);
    story.say(format!(
        "She pays Carol {} with the same seq {}: Carol has never seen Alice's chain, so she accepts.",
        p2.amount, p2.seq
    ));
    story.check(
        p1.seq == p2.seq && p1.seq == seq_before + 1 && p1.payee != p2.payee,
        "two different payments with one (payer, seq): a fork in Alice's hash chain",
    );
    for p in [&mut bob, &mut carol] {
        let client = p.w.client(None)?;
        wallet::sync(&mut p.w.wallet, &client)?;
    }
    story.say("Bob and Carol go online and sync.");
    let list = op
        .double_spends(&DoubleSpendsQuery {
            payer: Some(alice.id()),
            limit: None,
        })?
        .double_spends;
    story.check(
        list.len() == 1 && list[0].seq == p1.seq,
        format!("the issuer detected the double spend of seq {}", p1.seq),
    );
    let proof = match list.first() {
        Some(d) => http::b64_field("the double-spend proof", &d.proof)?,
        None => Vec::new(),
    };
    let proof_file = keep(base, "alice-double-spend.proof", &proof);
    std::fs::write(base.join("root.pem"), root.to_pem())
        .map_err(|e| Failure::io("cannot write root.pem", &e))?;
    let proven = verify_double_spend_bytes(&proof, &root);
    let proven_ok = proven
        .as_ref()
        .is_ok_and(|p| p.payer == alice.w.wallet.wallet_id() && p.seq == p1.seq);
    story.check(
        proven_ok,
        format!(
            "the proof ({} bytes: both entries, Alice's certificate, the issuer CA) verifies against the root alone",
            proof.len()
        ),
    );
    if story.kept {
        story.say(format!(
            "Anyone can check it offline: offpay evidence verify {proof_file} --root {}\n(the wallets in {} open with PIN {DEMO_PIN}: offpay wallet --dir {} status)",
            base.join("root.pem").display(),
            base.display(),
            base.join("wallet-bob").display(),
        ));
    } else {
        story.say(
            "Anyone can check it offline with `offpay evidence verify PROOF --root root.pem`\n(run `offpay demo --dir DIR` to keep the proof, the root and the wallets).",
        );
    }
    let alice_view = op.wallet(&alice.id())?;
    let crl = Crl::from_der(&public.crl_der()?)
        .map_err(|e| Failure::refused("bad_response", format!("CRL: {e}")))?;
    let serial: u64 = alice_view.cert_serial.parse().map_err(|_| {
        Failure::refused(
            "bad_response",
            format!(
                "the server's answer is malformed: certificate serial {:?}",
                alice_view.cert_serial
            ),
        )
    })?;
    story.check(
        alice_view.state == "revoked" && crl.is_revoked(serial).is_some(),
        format!(
            "Alice's wallet is revoked: certificate serial {} is on CRL number {}",
            crate::show::serial_hex(serial),
            crl.number()
        ),
    );
    story.check(
        sub(&bob)? == i128::from(bob.balance()) && sub(&carol)? == i128::from(carol.balance()),
        "finality: Bob and Carol are each credited the full 150.00",
    );
    let clawed = i128::from(alice_view.clawed_back_minor);
    let guaranteed = i128::from(alice_view.guaranteed_minor);
    story.say(format!(
        "The overspend is covered: {} clawed back from Alice's online account, {} from the guarantee fund.",
        show(clawed, &cur),
        show(guaranteed, &cur)
    ));
    story.check(
        clawed + guaranteed == 12_500,
        "overspend 300.00 - 175.00 = 125.00 fully covered",
    );
    let client = alice.w.client(None)?;
    wallet::sync(&mut alice.w.wallet, &client)?;
    let locked = alice.w.wallet.lock().map(|r| r.to_string());
    story.say(format!(
        "Alice's wallet syncs and is told to lock: {}",
        locked.as_deref().unwrap_or("(not locked)")
    ));
    let refused = alice
        .w
        .wallet
        .request(Amount::new(100, currency), 300, crate::now())
        .is_err();
    story.check(
        locked.is_some() && refused,
        "her wallet is locked and refuses to do business",
    );

    tpm_chapter(story, base, (&op, &public), kdf, &root, currency)?;

    // ---- 9 -------------------------------------------------------------------------------
    story.chapter("Where the money is");
    let inv = op.invariants()?;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "   {:<7} {:>16} {:>16} {:>22}  wallet state",
        "", "online account", "wallet (TA)", "sub-account (issuer)"
    );
    let mut rows = Vec::new();
    let mut stranded_now: i128 = 0;
    for p in [&alice, &bob, &carol] {
        let v = op.wallet(&p.id())?;
        let id = p.name.to_lowercase();
        let on = online(&id)?;
        let _ = writeln!(
            t,
            "   {:<7} {:>16} {:>16} {:>22}  {}",
            p.name,
            show(on, &cur),
            show_u(p.balance(), &cur),
            show(i128::from(v.offline_balance_minor), &cur),
            v.state
        );
        rows.push(json!({
            "customer": id,
            "wallet_id": p.id(),
            "online_balance_minor": on,
            "wallet_balance_minor": p.balance(),
            "sub_account_minor": v.offline_balance_minor,
            "stranded_minor": v.stranded_minor,
            "state": v.state,
        }));
        stranded_now += i128::from(v.stranded_minor);
    }
    let guarantee = admin::sum("guarantee", &inv.totals.guarantee)?;
    let pool = admin::sum("pool", &inv.totals.pool)?;
    let supply = admin::sum("supply", &inv.supply)?;
    let _ = writeln!(
        t,
        "   guarantee account {} (the fraud loss the bank carries)",
        show(guarantee, &cur),
    );
    let _ = writeln!(
        t,
        "   credited by the issuer but held by no wallet (payments refused or never received) {}",
        show(stranded_now, &cur),
    );
    let _ = writeln!(
        t,
        "   Alice's locked wallet still shows what her rolled-back copy held; the issuer's\n   sub-account is what counts, and the wallet adopts it if the bank ever unlocks it."
    );
    let _ = write!(t, "{}", indent(&admin::invariants_text(&inv, &cur)?));
    if !story.json {
        say!("{t}");
    }
    story.check(inv.ok, "ledger invariants hold after the attack");
    story.check(
        guarantee == -guaranteed,
        "the guarantee account carries exactly the loss not clawed back",
    );
    Ok((
        String::new(),
        json!({
            "currency": cur,
            "customers": rows,
            "guarantee_minor": i64::try_from(guarantee).ok(),
            "pool_minor": i64::try_from(pool).ok(),
            "supply_minor": i64::try_from(supply).ok(),
            "invariants_ok": inv.ok,
        }),
    ))
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   {l}\n")).collect()
}

/// A whole offline payment between two wallets (bytes passed in memory).
fn pay_once(
    payer: &mut Person,
    payee: &mut Person,
    minor: u64,
    currency: Currency,
) -> Result<(Vec<u8>, offpay_protocol::messages::Payment), Failure> {
    let req = payee
        .w
        .wallet
        .request(Amount::new(minor, currency), 300, crate::now())
        .map_err(crate::walletdir::wallet_failure)?;
    let (payment, p, _) = wallet::pay_request(&mut payer.w.wallet, &req, Some(minor))?;
    let (receipt, _, _) = wallet::receive_payment(&mut payee.w.wallet, &payment)?;
    wallet::confirm_receipt(&mut payer.w.wallet, &receipt)?;
    Ok((payment, p))
}

/// Copy the files of a directory (the vault has no subdirectories).
fn copy_dir(from: &Path, to: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(to)
        .map_err(|e| Failure::io(format!("cannot create {}", to.display()), &e))?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| Failure::io(format!("cannot read {}", from.display()), &e))?;
    for e in entries {
        let e = e.map_err(|e| Failure::io(format!("cannot read {}", from.display()), &e))?;
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name()))
                .map_err(|err| Failure::io(format!("cannot copy {}", e.path().display()), &err))?;
        }
    }
    Ok(())
}

// ---- the two-bank chapters -------------------------------------------------------------------

/// The link of the demo's member banks runs when the demo says so (one
/// round per step, deterministic), not by itself.
const DEMO_LINK_INTERVAL_MS: u64 = 3_600_000;

/// A member bank of the two-bank chapters: its server in this process.
struct Bank {
    code: &'static str,
    id: String,
    server: offpay_server::RunningServer,
    public: offpay_client::Client,
    op: offpay_client::Client,
}

impl Bank {
    /// Link rounds until the link says no work is left.
    fn link(&self) -> Result<(), Failure> {
        for _ in 0..100 {
            if !self.op.admin_scheme_sync()?.more {
                return Ok(());
            }
        }
        Err(Failure::refused(
            "demo",
            format!("{}: the scheme link never finished its work", self.code),
        ))
    }

    /// Its `issuer:<peer>` account (positive: it owes the peer), minor units.
    fn owes(&self, peer: &Bank) -> Result<i64, Failure> {
        Ok(self
            .op
            .admin_scheme_status()?
            .positions
            .iter()
            .find(|p| p.peer == peer.id)
            .map_or(0, |p| p.account_minor))
    }

    fn sub(&self, p: &Person) -> Result<i64, Failure> {
        Ok(self.op.wallet(&p.id())?.offline_balance_minor)
    }
}

/// Both banks' links, twice (what one sends, the other then receives).
fn link_both(a: &Bank, b: &Bank) -> Result<(), Failure> {
    for _ in 0..2 {
        a.link()?;
        b.link()?;
    }
    Ok(())
}

/// A member bank `code` admitted by the scheme at `scheme_url`.
fn start_bank(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    code: &'static str,
    scheme_url: &str,
    sop: &offpay_client::Client,
) -> Result<Bank, Failure> {
    let mut config = ServerConfig::with_data_dir(base.join(code));
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let csr = offpay_server::member_csr(&config, code)
        .map_err(|e| Failure::refused("member_csr", e.to_string()))?;
    let adm = sop.scheme_admit(code, &csr)?;
    let root = http::b64_field("the scheme root", &adm.root_cert)?;
    let ca = http::b64_field("the issuer CA certificate", &adm.ca_cert)?;
    let id = offpay_server::join_scheme(&config, &root, &ca)
        .map_err(|e| Failure::refused("join", e.to_string()))?;
    config.scheme.url = Some(scheme_url.to_string());
    config.scheme.token = Some(adm.token.clone());
    config.scheme.interval_ms = DEMO_LINK_INTERVAL_MS;
    let server = rt
        .block_on(offpay_server::spawn(config))
        .map_err(|e| Failure::refused("server_start", e.to_string()))?;
    let public = http::client(&server.url())?;
    let op = public.clone().with_token(&server.operator_token);
    Ok(Bank {
        code,
        id: id.to_hex(),
        server,
        public,
        op,
    })
}

/// A customer of `bank` with `deposit` online, a wallet in `base/wallet-<id>`
/// and `load` of it loaded (picked up with a sync).
fn bank_customer(
    bank: &Bank,
    base: &Path,
    (id, name): (&str, &'static str),
    deposit: u64,
    load: u64,
    kdf: KdfParams,
    cur: &str,
) -> Result<Person, Failure> {
    bank.op.create_customer(&CreateCustomerRequest {
        id: id.to_string(),
        name: name.to_string(),
    })?;
    if deposit > 0 {
        bank.op.deposit(
            id,
            &MoneyRequest {
                amount_minor: deposit,
                currency: cur.to_string(),
                idempotency_key: format!("demo-deposit-{id}"),
            },
        )?;
    }
    let t = bank.op.enrollment_token(id)?;
    let e = wallet::enroll(
        WalletDir::new(base.join(format!("wallet-{id}"))),
        &bank.public,
        &t.token,
        DEMO_PIN,
        kdf,
        Suite::Ed25519,
        None,
    )?;
    let mut p = Person { name, w: e.opened };
    if load > 0 {
        bank.op.load(
            &p.id(),
            &MoneyRequest {
                amount_minor: load,
                currency: cur.to_string(),
                idempotency_key: format!("demo-load-{id}"),
            },
        )?;
    }
    wallet::sync(&mut p.w.wallet, &bank.public)?;
    Ok(p)
}

/// The rollback of chapter 8 again, on a wallet whose vault counter is a TPM
/// 2.0 NV counter (a swtpm started here): copying and restoring the whole
/// wallet directory is caught offline, the restored wallet opens locked.
fn tpm_chapter(
    story: &mut Story,
    base: &Path,
    (op, public): (&offpay_client::Client, &offpay_client::Client),
    kdf: KdfParams,
    root: &Certificate,
    currency: Currency,
) -> Result<(), Failure> {
    story.chapter("The same attack on a wallet with a TPM counter");
    if !offpay_tpm::swtpm::installed() {
        story.say("skipped: swtpm not installed (bash .ci/tpm installs it)");
        return Ok(());
    }
    let tpm_state = base.join("swtpm-state");
    let tpm = offpay_tpm::swtpm::Swtpm::start(&tpm_state)
        .map_err(|e| Failure::refused("swtpm", format!("cannot start swtpm: {e}")))?;
    story.say(format!(
        "Dave's vault keeps its monotonic counter in a TPM 2.0 NV counter (swtpm on {}),\n\
         not in a file: nothing in his wallet directory holds the counter's value.",
        tpm.endpoint()
    ));
    op.create_customer(&CreateCustomerRequest {
        id: "dave".to_string(),
        name: "Dave".to_string(),
    })?;
    let t = op.enrollment_token("dave")?;
    let dir = WalletDir::new(base.join("wallet-dave")).with_counter(Some(&tpm.endpoint()))?;
    let e = wallet::enroll(
        dir,
        public,
        &t.token,
        DEMO_PIN,
        kdf,
        Suite::Ed25519,
        Some(root.der().to_vec()),
    )?;
    let dave_dir = e.opened.dir.clone();
    let mut dave = e.opened;
    drop(dave);
    let copy = base.join("dave-wallet-copy");
    clone_wallet(dave_dir.path(), &copy)?;
    story.say(
        "Dave copies his whole wallet directory: sealed state, device secret, counter record.",
    );
    dave = Opened::open(dave_dir.clone(), DEMO_PIN)?;
    let asked = dave
        .wallet
        .request(Amount::new(100, currency), 300, crate::now())
        .is_ok();
    let seq = dave.wallet.chain_head().0;
    drop(dave);
    story.check(
        asked,
        "his wallet moves on (a payment request, a new sealed state and a TPM increment)",
    );
    let path = dave_dir.path().to_path_buf();
    std::fs::remove_dir_all(&path)
        .map_err(|e| Failure::io(format!("cannot remove {}", path.display()), &e))?;
    clone_wallet(&copy, &path)?;
    let dave = Opened::open(WalletDir::new(&path), DEMO_PIN)?;
    let lock = dave.wallet.lock().map(ToString::to_string);
    story.say(format!(
        "He restores the copy and opens it: {}",
        lock.as_deref().unwrap_or("(not locked)")
    ));
    story.check(
        matches!(dave.wallet.lock(), Some(offpay_wallet::LockReason::RolledBack))
            && dave.wallet.chain_head().0 == seq,
        "the restored wallet opens locked (rolled back), offline: the TPM's counter did not go back",
    );
    Ok(())
}

/// Copy a wallet directory and its vault (the attacker's clone).
fn clone_wallet(from: &Path, to: &Path) -> Result<(), Failure> {
    copy_dir(from, to)?;
    let v = WalletDir::new(from).vault_dir();
    let name = v
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    copy_dir(&v, &to.join(name))
}

/// The two-bank chapters: a scheme and two member banks, payments both ways
/// with transitivity, a cross-bank double spend caught at the payer's bank,
/// a settlement cycle closed. Their final figures (JSON).
fn tell_two_banks(
    story: &mut Story,
    base: &Path,
    rt: &tokio::runtime::Runtime,
    kdf: KdfParams,
) -> Result<Value, Failure> {
    let base = base.join("two-banks");
    std::fs::create_dir_all(&base)
        .map_err(|e| Failure::io(format!("cannot create {}", base.display()), &e))?;
    // ---- 10 ------------------------------------------------------------------------------
    story.chapter("Two banks, one scheme");
    let mut sconfig = offpay_server::scheme::SchemeServerConfig::with_data_dir(base.join("scheme"));
    sconfig.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let scheme = rt
        .block_on(offpay_server::scheme::spawn(sconfig))
        .map_err(|e| Failure::refused("server_start", e.to_string()))?;
    let spub = http::client(&scheme.url())?;
    let sop = spub.clone().with_token(&scheme.prepared.operator_token);
    let result = (|| {
        let a = start_bank(rt, &base, "bank-a", &scheme.url(), &sop)?;
        let b = start_bank(rt, &base, "bank-b", &scheme.url(), &sop)?;
        let r = two_banks_story(story, &base, kdf, &sop, &spub, &a, &b);
        for bank in [a, b] {
            let _ = rt.block_on(bank.server.shutdown());
        }
        r
    })();
    let _ = rt.block_on(scheme.shutdown());
    result
}

fn two_banks_story(
    story: &mut Story,
    base: &Path,
    kdf: KdfParams,
    sop: &offpay_client::Client,
    spub: &offpay_client::Client,
    a: &Bank,
    b: &Bank,
) -> Result<Value, Failure> {
    let sroots = spub.scheme_roots()?;
    let root = Certificate::from_pem(&sroots.root_pem)
        .map_err(|e| Failure::refused("bad_response", format!("scheme root: {e}")))?;
    let cur = sroots.currency.clone();
    let currency = Currency::new(&cur).ok_or_else(|| {
        Failure::refused("bad_response", format!("the scheme's currency {cur:?}"))
    })?;
    story.say(format!(
        "Now the real shape of a scheme: a scheme operator holds the root key \"{}\" and runs\n\
         its own server and database; two banks, bank-a and bank-b, each run their own issuer\n\
         (own server, own SQLite database). Each bank makes its CA key itself and sends a CSR;\n\
         the scheme certifies it. The root key never exists at a bank.",
        root.subject_cn()
    ));
    let mut chained = true;
    for bank in [a, b] {
        let r = bank.public.roots()?;
        let ca = Certificate::from_pem(&r.issuer_pem)
            .map_err(|e| Failure::refused("bad_response", format!("issuer CA: {e}")))?;
        chained &= r.root_pem.trim() == sroots.root_pem.trim()
            && ca.verify_signed_by(&root).is_ok()
            && ca.subject_cn() == bank.code;
    }
    link_both(a, b)?;
    let issuers = sop.scheme_issuers()?.issuers;
    story.check(
        chained,
        "both banks' CA certificates chain to the scheme root, and their wallets trust that root",
    );
    story.check(
        issuers.len() == 2 && issuers.iter().all(|i| i.status == "active"),
        "the signed directory lists two active issuers; both banks installed it",
    );

    // ---- 11 ------------------------------------------------------------------------------
    story.chapter("Paying across banks, both ways, and on again");
    let mut dan = bank_customer(a, base, ("dan", "Dan"), 10_000, 8_000, kdf, &cur)?;
    let mut frank = bank_customer(a, base, ("frank", "Frank"), 0, 0, kdf, &cur)?;
    let mut erin = bank_customer(b, base, ("erin", "Erin"), 0, 0, kdf, &cur)?;
    story.say(format!(
        "Dan and Frank bank with bank-a, Erin with bank-b. Dan's wallet holds {}.",
        show_u(dan.balance(), &cur)
    ));
    let (_, p1) = pay_once(&mut dan, &mut erin, 3_000, currency)?;
    let (_, p2) = pay_once(&mut erin, &mut frank, 2_000, currency)?;
    story.say(format!(
        "Offline, Dan (bank-a) pays Erin (bank-b) {}; Erin pays Frank (bank-a) {} of that money\n\
         at once: her wallet verified Dan's certificate against bank-a's CA from the directory.",
        p1.amount, p2.amount
    ));
    wallet::sync(&mut erin.w.wallet, &b.public)?;
    wallet::sync(&mut frank.w.wallet, &a.public)?;
    wallet::sync(&mut dan.w.wallet, &a.public)?;
    link_both(a, b)?;
    story.say(
        "They sync, each with their own bank. Each payee's bank settles at once on the payer's\n\
         signature and files a claim on the payer's bank; the claims travel through the scheme.",
    );
    story.check(
        b.sub(&erin)? == 1_000 && a.sub(&frank)? == 2_000 && a.sub(&dan)? == 5_000,
        "sub-accounts: Dan 50.00 and Frank 20.00 at bank-a, Erin 10.00 at bank-b: each payment settled once",
    );
    let (owes_ab, owes_ba) = (a.owes(b)?, b.owes(a)?);
    story.check(
        owes_ab == 1_000 && owes_ba == -1_000,
        format!(
            "bank-a owes bank-b {} net (30.00 out, 20.00 in); bank-b's ledger says the same from its side",
            show(i128::from(owes_ab), &cur)
        ),
    );
    let claims = sop
        .scheme_claims(&offpay_client::api::SchemeClaimsQuery::default())?
        .claims;
    story.check(
        claims.len() == 2,
        "the scheme holds exactly two claims, one per cross-bank payment",
    );

    let ctx = SchemeCtx {
        sop,
        a,
        b,
        root,
        cur,
        currency,
    };
    fork_chapter(story, base, &ctx, (&mut dan, &mut erin, &mut frank))?;
    settle_chapter(story, &ctx)
}

/// What the two-bank chapters share.
struct SchemeCtx<'a> {
    sop: &'a offpay_client::Client,
    a: &'a Bank,
    b: &'a Bank,
    root: Certificate,
    cur: String,
    currency: Currency,
}

/// Chapter 12: a cloned wallet of bank A pays at both banks.
fn fork_chapter(
    story: &mut Story,
    base: &Path,
    s: &SchemeCtx<'_>,
    (dan, erin, frank): (&mut Person, &mut Person, &mut Person),
) -> Result<(), Failure> {
    let (a, b, sop, cur, currency, root) = (s.a, s.b, s.sop, &s.cur, s.currency, &s.root);
    let _ = sop;
    // ---- 12 ------------------------------------------------------------------------------
    story.chapter("A cross-bank double spend");
    let dan_dir = base.join("wallet-dan");
    let clone_dir = base.join("wallet-dan-clone");
    clone_wallet(&dan_dir, &clone_dir)?;
    let mut clone = Person {
        name: "Dan's clone",
        w: Opened::open(WalletDir::new(&clone_dir), DEMO_PIN)?,
    };
    let (_, q1) = pay_once(dan, erin, 4_000, currency)?;
    let (_, q2) = pay_once(&mut clone, frank, 4_000, currency)?;
    story.say(format!(
        "Dan copies his wallet. He pays Erin at bank-b {} and, with the copy, Frank at bank-a {}:\n\
         both with seq {}. Neither payee can tell offline.",
        q1.amount, q2.amount, q1.seq
    ));
    wallet::sync(&mut erin.w.wallet, &b.public)?;
    wallet::sync(&mut frank.w.wallet, &a.public)?;
    link_both(a, b)?;
    let list =
        a.op.double_spends(&DoubleSpendsQuery {
            payer: Some(dan.id()),
            limit: None,
        })?
        .double_spends;
    let proof = match list.first() {
        Some(d) => http::b64_field("the double-spend proof", &d.proof)?,
        None => Vec::new(),
    };
    keep(base, "dan-double-spend.proof", &proof);
    let proven = verify_double_spend_bytes(&proof, root)
        .is_ok_and(|p| p.payer == dan.w.wallet.wallet_id() && p.seq == q1.seq);
    story.check(
        q1.seq == q2.seq && list.len() == 1 && proven,
        "bank-a, Dan's bank, saw Frank's entry from his sync and Erin's through the scheme: one DoubleSpendProof, verifiable with the scheme root",
    );
    let dv = a.op.wallet(&dan.id())?;
    story.check(
        dv.state == "revoked" && dv.clawed_back_minor + dv.guaranteed_minor == 3_000,
        format!(
            "Dan's wallet is revoked; bank-a carries the overspend (80.00 paid out of 50.00): {} clawed back from his account, {} from its guarantee",
            show(i128::from(dv.clawed_back_minor), cur),
            show(i128::from(dv.guaranteed_minor), cur)
        ),
    );
    story.check(
        b.sub(erin)? == 5_000 && a.sub(frank)? == 6_000,
        "both payees are paid in full: Erin 50.00 at bank-b, Frank 60.00 at bank-a",
    );

    Ok(())
}

/// Chapter 13: the scheme closes a cycle; both banks post their statements.
fn settle_chapter(story: &mut Story, s: &SchemeCtx<'_>) -> Result<Value, Failure> {
    let (a, b, sop, cur, currency, root) = (s.a, s.b, s.sop, &s.cur, s.currency, &s.root);
    let _ = currency;
    // ---- 13 ------------------------------------------------------------------------------
    story.chapter("Settlement");
    let owed = a.owes(b)?;
    let cycle = sop.scheme_close_cycle()?;
    link_both(a, b)?;
    let nets: Vec<i128> = cycle
        .positions
        .iter()
        .map(|p| p.net_minor.parse::<i128>().unwrap_or(i128::MAX))
        .collect();
    let net_a = cycle
        .positions
        .iter()
        .find(|p| p.issuer == a.id)
        .and_then(|p| p.net_minor.parse::<i128>().ok());
    story.say(format!(
        "The scheme closes cycle {}: {} claims netted into one position per bank, signed\n\
         statements sent; bank-a pays {} to bank-b through its settlement account.",
        cycle.cycle,
        cycle.claims,
        show(i128::from(owed), cur)
    ));
    story.check(
        nets.iter().sum::<i128>() == 0 && net_a == Some(-i128::from(owed)) && cycle.claims == 3,
        "three claims netted; the positions sum to zero; bank-a's is minus what it owed",
    );
    let (sa, sb) = (a.op.admin_scheme_status()?, b.op.admin_scheme_status()?);
    story.check(
        sa.last_statement_cycle == cycle.cycle
            && sb.last_statement_cycle == cycle.cycle
            && a.owes(b)? == 0
            && b.owes(a)? == 0,
        "each bank posted its statement against its settlement account: nothing left open between them",
    );
    let (ia, ib, is) = (
        a.op.invariants()?,
        b.op.invariants()?,
        sop.scheme_invariants()?,
    );
    story.check(
        ia.ok && ib.ok && is.ok,
        "ledger invariants hold at bank-a, at bank-b and at the scheme",
    );
    Ok(json!({
        "scheme_root": root.subject_cn(),
        "cycle": cycle.cycle,
        "claims": cycle.claims,
        "bank_a_paid_minor": owed,
        "currency": cur,
        "invariants_ok": ia.ok && ib.ok && is.ok,
    }))
}
