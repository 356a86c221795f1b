//! What the fuzz targets share: the decoder checks, a fixture built with the
//! real wallet TA and the real issuer on SQLite, and the input modes.
//!
//! Every stateful target reads its input in one of two modes, chosen by the
//! lowest bit of the first byte:
//!
//! * **raw** (bit clear): the rest of the input is the message.
//! * **patched** (bit set): the rest is a list of 4-byte edits
//!   (`op, offset low, offset high, value`) applied to the fixture's valid
//!   message for this target, so the fuzzer reaches the checks behind the
//!   signature even though the fixture's keys are new in every process.
//!
//! The fixture is built once per process, with the real code only: an issuer
//! initialised on a SQLite file in a temporary directory, two wallets enrolled
//! through it, a load, a payment, a redeem and a sync report. Targets restore
//! the wallet vaults (a [`MemoryVault`] clone) and the issuer database (a
//! copy of the file) before every input, so each input runs against the same
//! state.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use offpay_issuer::store::{DoubleSpendRecord, LedgerTotals, WalletRecord};
use offpay_issuer::{Issuer, IssuerConfig};
use offpay_protocol::cbor::{DecodeError, Decoder, Encoder};
use offpay_protocol::envelope::{Body, Signed};
use offpay_protocol::{Amount, Currency, Hash32, Suite, UnixSeconds, WalletId};
use offpay_store::SqliteStore;
use offpay_wallet::vault::{MemorySnapshot, MemoryVault};
use offpay_wallet::{HistoryItem, Wallet, WalletError, WalletStatus};

/// The fixture's start time (the protocol vectors' epoch).
pub const T0: UnixSeconds = UnixSeconds(1_795_000_000);
/// The operator's master key of the fixture issuer.
pub const MASTER: [u8; 32] = [0x4d; 32];
/// The fixture's operator token (HTTP target).
pub const OPERATOR_TOKEN: &str = "fuzz-operator-token";

// ---- decoders -----------------------------------------------------------------------------

/// Decode an envelope of `T`; whatever decodes is its own canonical encoding,
/// within the limit, and its body re-encodes to the payload byte for byte.
pub fn check_envelope<T: Body>(data: &[u8]) -> Option<Signed<T>> {
    let signed = Signed::<T>::decode(data).ok()?;
    assert!(
        data.len() <= T::BYTES_MAX,
        "{} over its limit decoded",
        T::NAME
    );
    assert_eq!(signed.bytes(), data, "{} keeps other bytes", T::NAME);
    assert_eq!(
        signed.body().to_payload(),
        signed.payload(),
        "{} decoded from a non-canonical payload",
        T::NAME
    );
    assert_eq!(
        T::from_payload(signed.payload())
            .ok()
            .map(|b| b.to_payload()),
        Some(signed.payload().to_vec()),
        "{} payload decodes differently alone",
        T::NAME
    );
    Some(signed)
}

/// Deepest tag nesting [`walk_cbor`] follows (the decoder's own depth limit
/// covers arrays and maps).
const TAG_DEPTH_MAX: usize = 16;

/// Walk one CBOR value of any shape with the strict decoder's public calls,
/// re-encoding what it reads: a value that decodes re-encodes to the very
/// same bytes (one valid encoding per value).
pub fn walk_cbor(d: &mut Decoder<'_>, e: &mut Encoder, tags: usize) -> Result<(), DecodeError> {
    match d.peek_major()? {
        0 => {
            e.uint(d.uint("uint")?);
        }
        1 => {
            e.int(d.int("int")?);
        }
        2 => {
            e.bytes(d.bytes("bytes", 1 << 20)?);
        }
        3 => {
            e.text(d.text("text", 1 << 20)?);
        }
        4 => {
            let n = d.array("array", 1 << 12)?;
            e.array(n);
            for _ in 0..n {
                walk_cbor(d, e, tags)?;
            }
            d.leave();
        }
        5 => {
            let mut m = d.map("map", 64)?;
            let mut pairs = Vec::new();
            for key in 0..=255u64 {
                if let Some(v) = m.optional(key)? {
                    let mut sub = Encoder::new();
                    walk_cbor(v, &mut sub, tags)?;
                    pairs.push((key, sub.finish()));
                }
            }
            m.end()?;
            e.map(pairs.len());
            for (k, v) in pairs {
                e.uint(k).raw(&v);
            }
        }
        6 => {
            if tags >= TAG_DEPTH_MAX {
                return Err(DecodeError::TooDeep);
            }
            e.tag(d.tag("tag")?);
            walk_cbor(d, e, tags + 1)?;
        }
        _ => {
            e.bool(d.bool("bool")?);
        }
    }
    Ok(())
}

// ---- input modes -----------------------------------------------------------------------------

/// The message an input stands for: raw bytes, or edits to `valid`.
pub fn message(data: &[u8], valid: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else {
        return Vec::new();
    };
    if mode & 1 == 0 {
        return rest.to_vec();
    }
    let mut m = valid.to_vec();
    for edit in rest.chunks_exact(4) {
        let at = usize::from(u16::from_le_bytes([edit[1], edit[2]]));
        let value = edit[3];
        match edit[0] % 4 {
            0 => {
                let at = at % m.len().max(1);
                if let Some(b) = m.get_mut(at) {
                    *b ^= value.max(1);
                }
            }
            1 => m.insert(at % (m.len() + 1), value),
            2 => {
                if !m.is_empty() {
                    m.remove(at % m.len());
                }
            }
            _ => m.truncate(at % (m.len() + 1)),
        }
    }
    m
}

/// A seed for the patched mode that changes nothing (the valid message itself).
pub const PATCHED_UNCHANGED: &[u8] = &[1];

// ---- the fixture ------------------------------------------------------------------------------

/// A wallet's vault at one moment and the valid message fed to it next.
#[derive(Clone)]
pub struct WalletCase {
    /// The vault before the operation.
    pub vault: MemoryVault,
    /// The valid message for the operation.
    pub message: Vec<u8>,
    /// The time the operation runs at.
    pub now: UnixSeconds,
}

/// Everything the targets start from.
pub struct Fixture {
    /// Keeps the issuer's files alive.
    _dir: tempfile::TempDir,
    /// The issuer database (file bytes) before the payer's report.
    pub db: Vec<u8>,
    /// The payer's valid SyncReport and the time it is sent.
    pub report: Vec<u8>,
    /// When the report is sent.
    pub report_at: UnixSeconds,
    /// The payer.
    pub payer: WalletId,
    /// The payee.
    pub payee: WalletId,
    /// The payee before receiving the payer's payment.
    pub receive: WalletCase,
    /// The payer before confirming the payee's receipt.
    pub confirm: WalletCase,
    /// The payer before applying a second load voucher.
    pub voucher: WalletCase,
    /// The payer before applying the issuer's answer to its report.
    pub response: WalletCase,
    /// Other valid messages, by seed directory: requests, redeems, the policy,
    /// certificates, the CRL and the CSR.
    pub extra: Vec<(&'static str, Vec<u8>)>,
    next_db: AtomicU64,
}

/// A step of the fixture failed (the real code refused what it should accept).
#[derive(Debug)]
pub struct FixtureError(pub String);

fn step<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) -> Result<T, FixtureError> {
    r.map_err(|e| FixtureError(format!("{what}: {e:?}")))
}

fn eur(minor: u64) -> Result<Amount, FixtureError> {
    Ok(Amount::new(
        minor,
        step("currency", Currency::new("EUR").ok_or("EUR"))?,
    ))
}

/// A directory in memory when there is one (the issuer's files are rewritten per input).
/// `OFFPAY_FUZZ_SCRATCH` names it (.ci/fuzz sets one and removes it: libFuzzer
/// exits without running destructors).
fn scratch_dir() -> Result<tempfile::TempDir, FixtureError> {
    if let Some(d) = std::env::var_os("OFFPAY_FUZZ_SCRATCH") {
        return step(
            "scratch directory",
            tempfile::Builder::new().prefix("offpay-fuzz").tempdir_in(d),
        );
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(d) = tempfile::Builder::new()
            .prefix("offpay-fuzz")
            .tempdir_in(shm)
    {
        return Ok(d);
    }
    step("temporary directory", tempfile::tempdir())
}

impl Fixture {
    /// Build the fixture at `t0` (the HTTP target uses the wall clock, as the server does).
    pub fn build(t0: UnixSeconds) -> Result<Fixture, FixtureError> {
        let dir = scratch_dir()?;
        let path = dir.path().join("template.sqlite");
        let config =
            IssuerConfig::default_for(step("currency", Currency::new("EUR").ok_or("EUR"))?);
        let store = step("open store", SqliteStore::open(&path))?;
        let issuer = step("init issuer", Issuer::init(store, &MASTER, &config, t0))?;
        step("customer", issuer.create_customer("alice", "Alice", t0))?;
        step(
            "deposit",
            issuer.deposit("alice", eur(100_000)?, "deposit-1", t0),
        )?;
        let enroll = |now: UnixSeconds| -> Result<Wallet<MemoryVault>, FixtureError> {
            let mut w = step(
                "create wallet",
                Wallet::create(
                    MemoryVault::new(),
                    Suite::Ed25519,
                    issuer.root_certificate().der(),
                    now,
                ),
            )?;
            let token = step("token", issuer.create_enrollment_token("alice", now))?;
            let csr = step("csr", w.csr())?;
            let e = step("enroll", issuer.enroll(&token, &csr, now))?;
            step(
                "wallet enroll",
                w.enroll(
                    &e.issuer_certificate,
                    &e.certificate,
                    &e.policy,
                    Some(&e.crl),
                    now,
                ),
            )?;
            Ok(w)
        };
        let mut payer = enroll(t0)?;
        let mut payee = enroll(t0)?;
        let csr = step("csr", payer.csr())?;
        let v1 = step(
            "load",
            issuer.load(&payer.wallet_id(), eur(10_000)?, "load-1", t0),
        )?;
        step("apply voucher", payer.apply_voucher(&v1, t0.plus(1)))?;

        let t = t0.plus(10);
        let request = step("request", payee.request(eur(1_250)?, 300, t))?;
        let receive_vault = payee.vault().clone();
        let payment = step("pay", payer.pay(&request, t.plus(1)))?;
        let confirm_vault = payer.vault().clone();
        let receipt = step("receive", payee.receive(&payment, t.plus(2)))?;
        step("confirm", payer.confirm(&receipt))?;
        let v2 = step(
            "load",
            issuer.load(&payer.wallet_id(), eur(5_000)?, "load-2", t.plus(3)),
        )?;
        let voucher_vault = payer.vault().clone();
        let redeem = step("redeem", payer.redeem(eur(500)?, t.plus(4)))?;
        let report_at = t.plus(5);
        let report = step("report", payer.sync_report(report_at))?;
        let response_vault = payer.vault().clone();
        let policy = issuer.policy_bytes().to_vec();
        let crl = step("crl", issuer.crl())?;
        let root = issuer.root_certificate().der().to_vec();
        let ca = issuer.issuer_certificate().der().to_vec();
        let cert = payer
            .certificate()
            .map(|c| c.der().to_vec())
            .ok_or_else(|| FixtureError("payer has no certificate".into()))?;
        drop(issuer);
        let db = step("read template", std::fs::read(&path))?;
        let issuer = step("reopen", open_issuer(&path))?;
        let response = step("sync", issuer.sync(&report, report_at.plus(1)))?.response;
        drop(issuer);

        Ok(Fixture {
            _dir: dir,
            db,
            report,
            report_at,
            payer: payer.wallet_id(),
            payee: payee.wallet_id(),
            receive: WalletCase {
                vault: receive_vault,
                message: payment.clone(),
                now: t.plus(2),
            },
            confirm: WalletCase {
                vault: confirm_vault,
                message: receipt.clone(),
                now: t.plus(2),
            },
            voucher: WalletCase {
                vault: voucher_vault,
                message: v2.clone(),
                now: t.plus(4),
            },
            response: WalletCase {
                vault: response_vault,
                message: response.clone(),
                now: report_at.plus(2),
            },
            extra: vec![
                ("decode_payment_request", request),
                ("decode_payment", payment.clone()),
                ("decode_chain_entry", payment),
                ("decode_receipt", receipt),
                ("decode_load_voucher", v1),
                ("decode_load_voucher", v2),
                ("decode_redeem", redeem.clone()),
                ("decode_chain_entry", redeem),
                ("decode_risk_policy", policy),
                ("decode_sync_response", response),
                ("decode_crl", crl),
                ("decode_certificate", root),
                ("decode_certificate", ca),
                ("decode_certificate", cert),
                ("decode_csr", csr),
            ],
            next_db: AtomicU64::new(0),
        })
    }

    /// A new copy of the issuer database, as it was before the payer's report.
    pub fn fresh_db(&self) -> Result<PathBuf, FixtureError> {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let path = self._dir.path().join(format!("db-{}.sqlite", n % 2));
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(p));
        }
        step("write db", std::fs::write(&path, &self.db))?;
        Ok(path)
    }
}

/// The issuer over the database file at `path`.
pub fn open_issuer(path: &Path) -> Result<Issuer<SqliteStore>, FixtureError> {
    let store = step("open store", SqliteStore::open(path))?;
    step("open issuer", Issuer::open(store, &MASTER))
}

// ---- "nothing changed" ----------------------------------------------------------------------------

/// Everything observable about a wallet and its vault's stored bytes.
#[derive(Debug, PartialEq)]
pub struct WalletSnapshot {
    vault: MemorySnapshot,
    version: u64,
    status: WalletStatus,
    chain_head: (u64, Hash32),
    history: Vec<HistoryItem>,
    evidence: Vec<Vec<u8>>,
    unsynced_outgoing: Vec<Vec<u8>>,
}

impl WalletSnapshot {
    /// Take one (the status at `at`).
    pub fn of(w: &Wallet<MemoryVault>, at: UnixSeconds) -> WalletSnapshot {
        WalletSnapshot {
            vault: w.vault().snapshot(),
            version: w.vault().version(),
            status: w.status(at),
            chain_head: w.chain_head(),
            history: w.history().to_vec(),
            evidence: w.evidence().to_vec(),
            unsynced_outgoing: w.unsynced_outgoing(),
        }
    }
}

/// Run one TA operation on the wallet of `case` with the message `data`
/// stands for, and check invariant 4 of docs/ARCHITECTURE.md: a refusal
/// leaves the TA unchanged (the one exception, a rolled-back payer, only adds
/// evidence), and an acceptance never lowers the chain, the load sequence or
/// the vault version and adds at most `gain_max` minor units (the most any
/// validly signed message of the fixture carries: the fuzzer cannot forge
/// a signature, so nothing else may be accepted).
pub fn ta_case<T>(
    case: &WalletCase,
    data: &[u8],
    gain_max: u64,
    op: impl FnOnce(&mut Wallet<MemoryVault>, &[u8], UnixSeconds) -> Result<T, WalletError>,
) {
    let bytes = message(data, &case.message);
    let Ok(mut w) = Wallet::open(case.vault.clone()) else {
        panic!("the fixture's vault does not open");
    };
    let before = WalletSnapshot::of(&w, case.now);
    let result = op(&mut w, &bytes, case.now);
    let after = WalletSnapshot::of(&w, case.now);
    match result {
        Err(WalletError::PayerRolledBack { .. }) => {
            assert_eq!(after.status.balance, before.status.balance);
            assert_eq!(after.chain_head, before.chain_head);
            assert_eq!(after.history, before.history);
            assert_eq!(after.unsynced_outgoing, before.unsynced_outgoing);
        }
        Err(e) => {
            assert!(after == before, "refusal {e:?} changed the TA");
        }
        Ok(_) => {
            assert!(after.chain_head.0 >= before.chain_head.0, "seq went back");
            assert!(after.version >= before.version, "vault version went back");
            assert!(
                after.status.load_seq >= before.status.load_seq,
                "load seq went back"
            );
            let gained = after
                .status
                .balance
                .map_or(0, |a| a.minor)
                .saturating_sub(before.status.balance.map_or(0, |a| a.minor));
            assert!(
                gained <= gain_max,
                "an accepted message created {gained} minor units"
            );
        }
    }
    // The stored state opens again, equal to what the TA holds.
    let reopened = match Wallet::open(w.vault().clone()) {
        Ok(r) => r,
        Err(e) => panic!("the committed state does not open again: {e:?}"),
    };
    assert!(
        WalletSnapshot::of(&reopened, case.now) == after,
        "the reopened state differs from the live one"
    );
}

/// What the issuer holds that a sync may change.
#[derive(Debug, PartialEq)]
pub struct IssuerSnapshot {
    totals: LedgerTotals,
    supply: i128,
    payer: WalletRecord,
    payee: WalletRecord,
    double_spends: Vec<DoubleSpendRecord>,
}

impl IssuerSnapshot {
    /// Take one; the ledger invariants must hold.
    pub fn of(issuer: &Issuer<SqliteStore>, payer: &WalletId, payee: &WalletId) -> IssuerSnapshot {
        let report = match issuer.invariants() {
            Ok(r) => r,
            Err(e) => panic!("invariants unreadable: {e:?}"),
        };
        assert!(
            report.ok,
            "ledger invariants violated: {:?}",
            report.violations
        );
        let (Ok(payer), Ok(payee), Ok(double_spends)) = (
            issuer.wallet(payer),
            issuer.wallet(payee),
            issuer.double_spends(None, 1000),
        ) else {
            panic!("issuer records unreadable");
        };
        IssuerSnapshot {
            totals: report.totals,
            supply: report.supply,
            payer,
            payee,
            double_spends,
        }
    }
}

// ---- the protocol's test vectors ------------------------------------------------------------

/// docs/PROTOCOL.md, whose appendix C holds a test vector of every message.
const PROTOCOL_MD: &str = include_str!("../../docs/PROTOCOL.md");

/// Every ```` ```hex name=NAME ```` block of docs/PROTOCOL.md, decoded.
pub fn protocol_vectors() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut lines = PROTOCOL_MD.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line.strip_prefix("```hex name=") else {
            continue;
        };
        let mut hex = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            hex.push_str(l.trim());
        }
        if let Some(bytes) = unhex(&hex) {
            out.push((name.trim().to_string(), bytes));
        }
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [a, b] => Some(digit(*a)? << 4 | digit(*b)?),
            _ => None,
        })
        .collect()
}

/// The Ed25519 scheme root of the test vectors: proofs and certificates are
/// checked against it (the vectors' own proof verifies in full).
pub fn decoder_root() -> Option<&'static offpay_protocol::pki::Certificate> {
    static ROOT: std::sync::OnceLock<Option<offpay_protocol::pki::Certificate>> =
        std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let (_, der) = protocol_vectors()
            .into_iter()
            .find(|(n, _)| n == "cert-root-ed25519")?;
        offpay_protocol::pki::Certificate::from_der(&der).ok()
    })
    .as_ref()
}

/// The fuzz target whose seeds a protocol vector belongs to, by its name.
pub fn vector_target(name: &str) -> Option<&'static str> {
    let stem = name
        .strip_suffix("-ed25519")
        .or_else(|| name.strip_suffix("-p256"))?;
    let t = match stem {
        s if s.starts_with("cert-") => "decode_certificate",
        s if s.starts_with("crl") => "decode_crl",
        s if s.starts_with("payment-request") => "decode_payment_request",
        "payment" | "payment-ref" | "payment-conflict" => "decode_payment",
        s if s.starts_with("receipt-sig") => return None,
        s if s.starts_with("receipt") => "decode_receipt",
        s if s.starts_with("load-voucher") => "decode_load_voucher",
        s if s.starts_with("redeem") => "decode_redeem",
        s if s.starts_with("risk-policy") => "decode_risk_policy",
        s if s.starts_with("sync-report") => "decode_sync_report",
        s if s.starts_with("sync-response") => "decode_sync_response",
        s if s.starts_with("double-spend-proof") => "decode_double_spend_proof",
        _ => return None,
    };
    Some(t)
}

// ---- seeds -----------------------------------------------------------------------------------

/// The routes of the HTTP target, as (method, path); `{w}` is the payer's id.
pub const HTTP_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/enroll"),
    ("POST", "/v1/sync"),
    ("POST", "/v1/redeem"),
    ("GET", "/v1/crl"),
    ("GET", "/v1/roots"),
    ("POST", "/v1/admin/customers"),
    ("GET", "/v1/admin/customers/alice"),
    ("POST", "/v1/admin/customers/alice/deposit"),
    ("POST", "/v1/admin/customers/alice/withdraw"),
    ("POST", "/v1/admin/customers/alice/enrollment-tokens"),
    ("GET", "/v1/admin/wallets"),
    ("GET", "/v1/admin/wallets/{w}"),
    ("POST", "/v1/admin/wallets/{w}/load"),
    ("POST", "/v1/admin/wallets/{w}/revoke"),
    ("POST", "/v1/admin/wallets/{w}/lock"),
    ("POST", "/v1/admin/wallets/{w}/unlock"),
    ("GET", "/v1/admin/double-spends"),
    ("GET", "/v1/admin/invariants"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("POST", "/v1/admin/cases"),
    ("GET", "/v1/admin/cases"),
    ("GET", "/v1/admin/cases/1"),
    ("POST", "/v1/admin/cases/1/decide"),
    ("POST", "/v1/admin/cases/1/resolve"),
    ("GET", "/v1/admin/cases/1/bundle"),
];

/// The content types the HTTP target sends (input byte 1, bits 0-1).
pub const HTTP_CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/cbor",
    "text/plain",
    "application/json; charset=utf-8",
];

/// Seeds of every target, by target name: the protocol vectors of
/// docs/PROTOCOL.md appendix C, this fixture's valid messages (raw; for the
/// stateful targets also the unchanged patched form) and one request per
/// HTTP route. The decoder corpus of offpay-protocol adds its own with
/// `OFFPAY_FUZZ_SEEDS=fuzz/seeds cargo test -p offpay-protocol --test
/// decoder_corpus -- --ignored write_fuzz_seeds`.
pub fn seeds(f: &Fixture) -> Vec<(&'static str, Vec<u8>)> {
    let raw = |m: &[u8]| [&[0u8][..], m].concat();
    let mut out: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for (name, bytes) in protocol_vectors() {
        if let Some(t) = vector_target(&name) {
            out.push((t, bytes.clone()));
            if t == "decode_payment" || t == "decode_redeem" {
                out.push(("decode_chain_entry", bytes.clone()));
            }
            out.push(("decode_cbor", bytes));
        }
    }
    for (t, bytes) in &f.extra {
        out.push((t, bytes.clone()));
    }
    for (t, case) in [
        ("ta_receive", &f.receive),
        ("ta_confirm", &f.confirm),
        ("ta_apply_voucher", &f.voucher),
        ("ta_apply_sync_response", &f.response),
    ] {
        out.push((t, raw(&case.message)));
        out.push((t, PATCHED_UNCHANGED.to_vec()));
    }
    out.push(("issuer_sync", raw(&f.report)));
    out.push(("issuer_sync", PATCHED_UNCHANGED.to_vec()));
    for frame in [1u8, 2, 3, 4] {
        let payload = &f.receive.message[..f.receive.message.len().min(64)];
        let len = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
        out.push(("tap_frame", [&[frame][..], &len, payload].concat()));
    }
    let json: &[(&str, String)] = &[
        ("/v1/admin/customers", r#"{"id":"bob","name":"Bob"}"#.into()),
        (
            "/v1/admin/customers/alice/deposit",
            r#"{"amount_minor":100,"currency":"EUR","idempotency_key":"d-2"}"#.into(),
        ),
        (
            "/v1/admin/customers/alice/withdraw",
            r#"{"amount_minor":100,"currency":"EUR","idempotency_key":"w-1"}"#.into(),
        ),
        (
            "/v1/admin/wallets/{w}/load",
            r#"{"amount_minor":100,"currency":"EUR","idempotency_key":"l-3"}"#.into(),
        ),
        (
            "/v1/admin/wallets/{w}/revoke",
            r#"{"reason":"lost","reason_code":1}"#.into(),
        ),
        ("/v1/admin/wallets/{w}/lock", r#"{"reason":"fraud"}"#.into()),
        ("/v1/admin/wallets/{w}/unlock", "{}".into()),
        ("/v1/admin/customers/alice/enrollment-tokens", "{}".into()),
        ("/v1/enroll", r#"{"token":"00","csr":"AA=="}"#.into()),
    ];
    for (i, (method, path)) in HTTP_ROUTES.iter().enumerate() {
        let Ok(route) = u8::try_from(i) else { continue };
        let body: Vec<u8> = match *path {
            "/v1/sync" => f.report.clone(),
            "/v1/redeem" => f
                .extra
                .iter()
                .find(|(t, _)| *t == "decode_redeem")
                .map(|(_, b)| b.clone())
                .unwrap_or_default(),
            p => json
                .iter()
                .find(|(q, _)| *q == p)
                .map(|(_, b)| b.clone().into_bytes())
                .unwrap_or_default(),
        };
        let cbor = path.starts_with("/v1/sync") || path.starts_with("/v1/redeem");
        let flags = u8::from(cbor) | (u8::from(*method == "GET" || path.contains("admin")) << 2);
        out.push(("http_bodies", [&[route, flags][..], &body].concat()));
    }
    out
}

/// Write [`seeds`] under `dir/<target>/`, each file named by its content's hash.
pub fn write_seeds(f: &Fixture, dir: &Path) -> std::io::Result<usize> {
    let all = seeds(f);
    for (t, bytes) in &all {
        let d = dir.join(t);
        std::fs::create_dir_all(&d)?;
        let name = Hash32::digest(bytes).to_hex();
        std::fs::write(d.join(&name[..16]), bytes)?;
    }
    Ok(all.len())
}

/// The fixture of a target process, built once. With `OFFPAY_FUZZ_WRITE_SEEDS`
/// set to a directory, it also writes every target's seeds there (the seed
/// generator: `OFFPAY_FUZZ_WRITE_SEEDS=$PWD/fuzz/seeds cargo +nightly fuzz run
/// ta_receive -- -runs=0`).
/// The fixture at [`T0`], built once per process (the TA and issuer targets).
pub fn fixture() -> &'static Fixture {
    static F: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    F.get_or_init(|| build_fixture(T0))
}

pub fn build_fixture(t0: UnixSeconds) -> Fixture {
    let f = match Fixture::build(t0) {
        Ok(f) => f,
        Err(e) => panic!("fixture: {e:?}"),
    };
    if let Some(dir) = std::env::var_os("OFFPAY_FUZZ_WRITE_SEEDS") {
        match write_seeds(&f, Path::new(&dir)) {
            Ok(n) => eprintln!(
                "offpay-fuzz: wrote {n} seeds under {}",
                dir.to_string_lossy()
            ),
            Err(e) => panic!("writing seeds: {e}"),
        }
    }
    f
}
