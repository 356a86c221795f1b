//! CA keys in a PKCS#11 token (offpay-hsm) against keys in process, on
//! SoftHSM2: signatures per second through the token and in process
//! (Ed25519, P-256), and the reconciliation throughput of an issuer whose
//! CA keys are in the token (it signs each report's SyncResponse there)
//! next to the same run with the sealed in-process CA key.
//!
//! Runs only when the module is found ([`module`]); else the figures are
//! `null` and the reason is printed. The token lives in a private token
//! directory (a fresh `SOFTHSM2_CONF`, see [`TokenDir`]) that is removed at
//! the end: nothing outside it is touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use offpay_hsm::{KeyMode, Token, TokenRef};
use offpay_issuer::Issuer;
use offpay_protocol::{OsEntropy, Signer, SigningKey, Suite};

use crate::reconcile::{self, Params, Run};
use crate::setup::{self, err};
use crate::sys;

/// The module used when `OFFPAY_HSM_MODULE` is not set.
pub const MODULE_DEFAULT: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// Environment variable naming the PKCS#11 module (as in offpay-hsm's tests).
pub const MODULE_ENV: &str = "OFFPAY_HSM_MODULE";
/// Time spent on each signing rate.
pub const RATE_BUDGET: Duration = Duration::from_millis(1_000);
/// Fewest signatures of each rate.
pub const RATE_SIGNATURES_MIN: usize = 50;
/// Security officer PIN of the benchmark token (a benchmark secret).
const SO_PIN: &str = "bench-so-pin-5678";
/// User PIN of the benchmark token.
const PIN: &str = "bench-user-pin-1234";

/// The PKCS#11 module: `$OFFPAY_HSM_MODULE`, else [`MODULE_DEFAULT`].
pub fn module() -> PathBuf {
    std::env::var_os(MODULE_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| MODULE_DEFAULT.into(), PathBuf::from)
}

/// A private SoftHSM2 token directory and its configuration, named by
/// `SOFTHSM2_CONF` for the module; removed when dropped.
pub struct TokenDir {
    _dir: tempfile::TempDir,
}

/// Why the HSM part cannot run here, if it cannot: the module is missing.
pub fn unavailable() -> Option<String> {
    let m = module();
    (!m.is_file()).then(|| {
        format!(
            "PKCS#11 module {} not found (install softhsm2, or set {MODULE_ENV})",
            m.display()
        )
    })
}

impl TokenDir {
    /// Make the directory and point `SOFTHSM2_CONF` at its configuration.
    /// Call it before the process starts a second thread: the environment
    /// is only changed when this process has exactly one thread (counted in
    /// `/proc/self/status`), else the reason is returned.
    pub fn new(base: &Path) -> Result<TokenDir, String> {
        let dir = tempfile::Builder::new()
            .prefix("offpay-bench-hsm-")
            .tempdir_in(base)
            .map_err(err(format!("temporary directory in {}", base.display())))?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).map_err(err(format!("create {}", tokens.display())))?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .map_err(err(format!("write {}", conf.display())))?;
        let threads = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:"))
                    .and_then(|n| n.trim().parse::<usize>().ok())
            });
        if threads != Some(1) {
            return Err(format!(
                "SOFTHSM2_CONF can only be set while the process has one thread (it has {})",
                threads.map_or("an unknown number of".into(), |n| n.to_string())
            ));
        }
        set_conf(&conf);
        Ok(TokenDir { _dir: dir })
    }
}

#[allow(unsafe_code)]
fn set_conf(conf: &Path) {
    // SAFETY: the caller checked that this process has exactly one thread,
    // so nothing reads or writes the environment concurrently.
    unsafe { std::env::set_var("SOFTHSM2_CONF", conf) };
}

/// Signatures per second of one key, through the token and in process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SignRates {
    /// The suite.
    pub suite: Suite,
    /// Through the token (`HsmSigner::try_sign`: the token signs, the
    /// signature is verified here before it is released).
    pub token_per_s: f64,
    /// In process, sign only (`SigningKey::try_sign`).
    pub in_process_per_s: f64,
    /// In process, sign then verify: what the token path does besides the
    /// token's own work (its bound).
    pub in_process_verified_per_s: f64,
}

/// What the HSM part measured.
#[derive(Clone, Debug, PartialEq)]
pub struct HsmFigures {
    /// The module's path.
    pub module: String,
    /// Ed25519, then P-256.
    pub rates: [SignRates; 2],
    /// Reconciliation, CA keys (Ed25519) in the token.
    pub token_run: Run,
    /// The same run with the sealed in-process CA keys.
    pub sealed_run: Run,
}

/// Signatures per second of `sign` over new messages, for about [`RATE_BUDGET`].
fn rate(mut sign: impl FnMut(&[u8]) -> Result<(), String>) -> Result<f64, String> {
    let mut msg = vec![0x5a_u8; crate::crypto::MESSAGE_BYTES];
    sign(&msg)?;
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < RATE_BUDGET || n < RATE_SIGNATURES_MIN {
        msg[..8].copy_from_slice(&(n as u64).to_be_bytes());
        sign(&msg)?;
        n += 1;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn sign_rates(token: &Token, suite: Suite) -> Result<SignRates, String> {
    let signer = token
        .signer(&format!("bench-{suite}"), suite, KeyMode::CreateOrAdopt)
        .map_err(err(format!("{suite} key in the token")))?;
    let token_per_s = rate(|m| {
        signer
            .try_sign(m)
            .map(drop)
            .map_err(err(format!("{suite} token signature")))
    })?;
    let key = SigningKey::from_seed(suite, &[0x33; 32]).map_err(err("in-process key"))?;
    let pk = key.public_key();
    let in_process_per_s = rate(|m| {
        Signer::try_sign(&key, m)
            .map(drop)
            .map_err(err("in-process signature"))
    })?;
    let in_process_verified_per_s = rate(|m| {
        let sig = Signer::try_sign(&key, m).map_err(err("in-process signature"))?;
        pk.verify(m, &sig).map_err(err("in-process verify"))
    })?;
    Ok(SignRates {
        suite,
        token_per_s,
        in_process_per_s,
        in_process_verified_per_s,
    })
}

/// Measure everything on a fresh token in the private directory `SOFTHSM2_CONF`
/// names ([`TokenDir`]); the reconciliation runs (`p`) on SQLite files under `base`.
pub fn measure(
    p: &Params,
    base: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<HsmFigures, String> {
    let m = module();
    let label = format!("offpay-bench-{}", std::process::id());
    offpay_hsm::init_free_token(&m, &label, SO_PIN, PIN).map_err(err("initialise the token"))?;
    let token = Token::open_with_pin(&m, &TokenRef::Label(label.clone()), PIN.into())
        .map_err(err("open the token"))?;
    progress("hsm: signatures per second through the token and in process");
    let rates = [
        sign_rates(&token, Suite::Ed25519)?,
        sign_rates(&token, Suite::P256)?,
    ];

    progress(&format!(
        "hsm: {} payments, {} wallets: issuer CA keys in the token",
        p.payments, p.wallets
    ));
    let suite = Suite::Ed25519;
    let dir = tempfile::Builder::new()
        .prefix("offpay-bench-hsm-sqlite-")
        .tempdir_in(base)
        .map_err(err(format!("temporary directory in {}", base.display())))?;
    let root: Arc<dyn Signer> = Arc::new(
        token
            .signer("offpay-root", suite, KeyMode::CreateOrAdopt)
            .map_err(err("root key in the token"))?,
    );
    let ca: Arc<dyn Signer> = Arc::new(
        token
            .signer("offpay-issuer-ca", suite, KeyMode::CreateOrAdopt)
            .map_err(err("issuer CA key in the token"))?,
    );
    let key_ref =
        format!("token={label};issuer-key=offpay-issuer-ca;root-key=offpay-root;suite={suite}");
    let store =
        offpay_store::open_sqlite(&dir.path().join("token.sqlite")).map_err(err("open SQLite"))?;
    let issuer = Issuer::init_with_signers(
        store,
        root,
        ca,
        &key_ref,
        &setup::issuer_config(suite),
        sys::now(),
        OsEntropy::shared(),
    )
    .map_err(err("issuer init with the token's keys"))?;
    let token_run = reconcile::run_on(&issuer, suite, p, "hsm token", progress)?;
    drop(issuer);
    progress("hsm: the same run with the sealed in-process CA keys");
    let sealed_run = reconcile::sqlite_suite(suite, p, base, "hsm sealed", progress)?;
    Ok(HsmFigures {
        module: m.display().to_string(),
        rates,
        token_run,
        sealed_run,
    })
}
