//! A wallet on disk: the directory given with `offpay wallet --dir DIR`.
//!
//! | file | what |
//! | --- | --- |
//! | `vault/` | the [`SealedFileVault`]: `state.sealed`, `counter`, `pin-attempts`, `device-check`, and `recovery.sealed` (the PIN recovery record, [`recovery`]) |
//! | `device.secret` | 32 random bytes, mode 0600: the device half of the vault key. It stands in for the OS keystore (Android Keystore, iOS Keychain, a TPM) that would hold it on a phone. |
//! | `wallet.json` | the app side: server URL, wallet id, currency. Nothing secret, nothing trusted by the TA. |
//! | `wallet.lock` | empty; the lock a command holds while it uses the wallet |
//! | `counter.tpm` | only for a wallet created with `--counter tpm:...`: the TPM's endpoint and the counter's NV index (`0x…`), never its value; `vault/` then has no `counter` file, and the vault is sealed under the device secret bound to the index (SHA-256 of a label, the secret and the index), so deleting this file and writing a `vault/counter` does not reopen the vault with a file counter (`WrongDeviceSecret`) |
//!
//! **One process at a time.** Every command that opens the vault holds an
//! exclusive lock on `wallet.lock` (`File::try_lock`, released when the
//! process ends, even by a crash) from before it opens the vault until it
//! exits. Opening is itself a write (the PIN attempt count), so there is no
//! read-only command that could share the lock; reading `wallet.json` needs
//! none (it is replaced atomically). A second command waits up to
//! `OFFPAY_WALLET_WAIT` seconds (default [`LOCK_WAIT_SECONDS_DEFAULT`]),
//! then stops with "wallet is busy" (code `wallet_busy`, exit
//! [`crate::out::EXIT_BUSY`]), having changed nothing.
//!
//! The vault key is Argon2id(PIN, device secret): both are needed to open it.
//! `OFFPAY_KDF=test` makes new vaults use fast, **insecure** Argon2id
//! parameters (for tests and the demo only).

use std::cell::OnceCell;
use std::fs::{File, TryLockError};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use offpay_protocol::WalletId;
use offpay_protocol::entropy::OsEntropy;
use offpay_tpm::transport::Endpoint;
use offpay_tpm::{TpmCounter, TpmCounterConfig};
use offpay_wallet::recovery::{self, RecoveryError};
use offpay_wallet::vault::{
    DirStore, KdfParams, Loaded, SealedFileVault, SealedVault, Vault, VaultError,
};
use offpay_wallet::{Wallet, WalletError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::out::Failure;

/// The vault's subdirectory.
pub(crate) const VAULT_DIR: &str = "vault";
/// The device secret file.
pub(crate) const DEVICE_SECRET_FILE: &str = "device.secret";
/// The app-side configuration.
pub(crate) const CONFIG_FILE: &str = "wallet.json";
/// The file a command locks while it uses the wallet.
pub(crate) const LOCK_FILE: &str = "wallet.lock";
/// How long a command waits for another one to let go of the wallet, by
/// default (`OFFPAY_WALLET_WAIT`).
pub(crate) const LOCK_WAIT_SECONDS_DEFAULT: u64 = 30;
/// Longest wait `OFFPAY_WALLET_WAIT` may ask for.
pub(crate) const LOCK_WAIT_SECONDS_MAX: u64 = 3600;
/// Pause between two tries to take the lock.
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Length of the device secret.
pub(crate) const DEVICE_SECRET_BYTES: usize = 32;
/// Shortest PIN accepted at creation.
pub(crate) const PIN_CHARS_MIN: usize = 4;
/// Longest PIN accepted.
pub(crate) const PIN_BYTES_MAX: usize = 128;
/// Largest `wallet.json` read.
const CONFIG_BYTES_MAX: u64 = 64 << 10;
/// Format of `wallet.json`.
const CONFIG_FORMAT: u64 = 1;

/// A wallet opened from its directory.
pub(crate) type DiskWallet = Wallet<DiskVault>;

/// What the app remembers next to the vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct WalletConfig {
    /// The issuer's server URL.
    pub server: String,
    /// The wallet id.
    pub wallet_id: WalletId,
    /// The wallet's currency.
    pub currency: String,
}

impl WalletConfig {
    fn to_json(&self) -> Value {
        json!({
            "format": CONFIG_FORMAT,
            "server": self.server,
            "wallet_id": self.wallet_id.to_hex(),
            "currency": self.currency,
        })
    }

    fn from_json(v: &Value) -> Option<WalletConfig> {
        if v.get("format")?.as_u64()? != CONFIG_FORMAT {
            return None;
        }
        Some(WalletConfig {
            server: v.get("server")?.as_str()?.to_string(),
            wallet_id: WalletId::from_hex(v.get("wallet_id")?.as_str()?)?,
            currency: v.get("currency")?.as_str()?.to_string(),
        })
    }
}

/// Which Argon2id parameters new vaults get: `OFFPAY_KDF` unset or
/// `interactive` (OWASP minimum), or `test` (fast, insecure).
pub(crate) fn kdf_from_env() -> Result<(KdfParams, &'static str), Failure> {
    match std::env::var("OFFPAY_KDF").ok().as_deref() {
        None | Some("") | Some("interactive") => Ok((KdfParams::INTERACTIVE, "interactive")),
        Some("test") => Ok((KdfParams::TEST, "test")),
        Some(other) => Err(Failure::usage(format!(
            "OFFPAY_KDF={other:?}: expected interactive (default) or test (fast and insecure, for tests only)"
        ))),
    }
}

/// The PIN: `OFFPAY_PIN`, else a prompt on the terminal without echo.
/// Without a terminal and without `OFFPAY_PIN`, a usage error.
pub(crate) fn pin(confirm: bool) -> Result<Zeroizing<String>, Failure> {
    if let Ok(p) = std::env::var("OFFPAY_PIN") {
        return check_pin_length(Zeroizing::new(p));
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "no PIN: set OFFPAY_PIN, or run in a terminal to be asked for it",
        ));
    }
    let first = prompt("Wallet PIN: ")?;
    if confirm {
        let again = prompt("Same PIN again: ")?;
        if *again != *first {
            return Err(Failure::refused("pin_mismatch", "the two PINs differ"));
        }
    }
    check_pin_length(first)
}

fn check_pin_length(p: Zeroizing<String>) -> Result<Zeroizing<String>, Failure> {
    if p.is_empty() || p.len() > PIN_BYTES_MAX {
        return Err(Failure::usage(format!(
            "the PIN must be 1 to {PIN_BYTES_MAX} bytes"
        )));
    }
    Ok(p)
}

/// Read a line from the terminal with echo off (`stty -echo`; no unsafe code).
fn prompt(label: &str) -> Result<Zeroizing<String>, Failure> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    eprint!("{label}");
    let _ = std::io::stderr().flush();
    let silenced = stty("-echo");
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().read_line(&mut line);
    if silenced {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| Failure::io("reading the PIN", &e))?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    Ok(trimmed)
}

/// The stable code of a wallet refusal.
pub(crate) fn wallet_error_code(e: &WalletError) -> &'static str {
    use WalletError::*;
    #[allow(unreachable_patterns)]
    match e {
        Locked(_) => "locked",
        NotEnrolled => "not_enrolled",
        AlreadyEnrolled => "already_enrolled",
        Malformed(_) => "malformed",
        BadSignature => "bad_signature",
        PeerCertificate(_) => "peer_certificate",
        PeerRevoked { .. } => "peer_revoked",
        PeerIssuerSuspended { .. } => "peer_issuer_suspended",
        PeerIssuerRevoked { .. } => "peer_issuer_revoked",
        WrongPayeeIssuer { .. } => "wrong_payee_issuer",
        DirectoryRefused(_) => "directory_refused",
        StaleDirectory { .. } => "stale_directory",
        DirectoryFull { .. } => "directory_full",
        DirectoryTooLarge { .. } => "directory_too_large",
        UnknownCertificate => "unknown_certificate",
        CertificateWalletMismatch => "certificate_wallet_mismatch",
        IssuerMaterial(_) => "issuer_material",
        CrlDeltaBaseMismatch { .. } => "crl_delta_base_mismatch",
        CrlDeltaRefused(_) => "crl_delta_refused",
        OwnCertificateExpired => "own_certificate_expired",
        RequestExpired => "request_expired",
        RequestValidityTooLong { .. } => "request_validity_too_long",
        ClockSkew { .. } => "clock_skew",
        CurrencyMismatch => "currency_mismatch",
        SelfPayment => "self_payment",
        InsufficientFunds { .. } => "insufficient_funds",
        LimitPerPayment { .. } => "limit_per_payment",
        LimitHolding { .. } => "limit_holding",
        LimitOfflineSpend { .. } => "limit_offline_spend",
        LimitOfflineCount { .. } => "limit_offline_count",
        LimitOfflineTime { .. } => "limit_offline_time",
        TerminalCannotPay => "terminal_cannot_pay",
        PayerIsTerminal { .. } => "payer_is_terminal",
        LimitReceiveCount { .. } => "limit_receive_count",
        LimitReceiveAmount { .. } => "limit_receive_amount",
        LogFull { .. } => "log_full",
        TooManyPendingRequests => "too_many_pending_requests",
        ZeroAmount => "zero_amount",
        WrongPayee => "wrong_payee",
        NonceUnknown => "nonce_unknown",
        AmountMismatch { .. } => "amount_mismatch",
        PayerRolledBack { .. } => "payer_rolled_back",
        ReceiptUnknownPayment => "receipt_unknown_payment",
        WrongWallet => "wrong_wallet",
        VoucherReplayed { .. } => "voucher_replayed",
        VoucherOutOfOrder { .. } => "voucher_out_of_order",
        StaleSyncResponse => "stale_sync_response",
        CheckpointMismatch => "checkpoint_mismatch",
        StalePolicy => "stale_policy",
        Vault(v) => vault_error_code(v),
        Overflow => "overflow",
        Randomness => "randomness",
        KeyDevice(_) => "key_device",
        SuiteRetired { .. } => "suite_retired",
        _ => "refused",
    }
}

/// The stable code of a vault failure.
pub(crate) fn vault_error_code(e: &VaultError) -> &'static str {
    match e {
        VaultError::WrongPin { .. } => "wrong_pin",
        VaultError::PinAttemptsExhausted => "pin_attempts_exhausted",
        VaultError::PinAttemptsUnreadable => "pin_attempts_unreadable",
        VaultError::WrongDeviceSecret => "wrong_device_secret",
        VaultError::Tampered => "vault_tampered",
        VaultError::Corrupt(_) => "vault_corrupt",
        VaultError::NotFound => "no_wallet",
        VaultError::AlreadyExists => "wallet_exists",
        VaultError::Io { .. } => "vault_io",
        VaultError::KeyDevice { .. } => "key_device",
        VaultError::TokenPinRefused { locked: false, .. } => "wrong_pin",
        VaultError::TokenPinRefused { locked: true, .. } => "pin_attempts_exhausted",
        _ => "vault",
    }
}

/// A wallet refusal as a CLI failure.
pub(crate) fn wallet_failure(e: WalletError) -> Failure {
    Failure::refused(wallet_error_code(&e), e.to_string())
}

/// The wallet directory.
///
/// Clones share the directory lock once it is taken ([`WalletDir::lock`]):
/// it is released when the last of them is dropped.
#[derive(Clone, Debug)]
pub(crate) struct WalletDir {
    path: PathBuf,
    lock: OnceCell<Rc<File>>,
    /// The counter a new vault gets (`--counter`): `None` the file counter.
    counter: Option<Endpoint>,
}

/// Where a TPM wallet records its counter: the endpoint and the NV index
/// (not the value: that stays in the TPM).
pub(crate) const TPM_COUNTER_FILE: &str = "counter.tpm";
/// Lowest NV index a CLI wallet picks (the base index is the next one).
const TPM_INDEX_FIRST: u32 = 0x0140_0000;

/// The vault of a wallet directory: the file counter, or a TPM counter.
#[derive(Debug)]
pub(crate) enum DiskVault {
    /// [`SealedFileVault`]: the counter is the file `vault/counter`.
    File(SealedFileVault),
    /// A [`SealedVault`] over `vault/` with a [`TpmCounter`].
    Tpm(Box<SealedVault<DirStore, TpmCounter>>),
}

impl Vault for DiskVault {
    fn load(&mut self) -> Result<Loaded, VaultError> {
        match self {
            Self::File(v) => v.load(),
            Self::Tpm(v) => v.load(),
        }
    }

    fn commit(&mut self, state: &[u8]) -> Result<(), VaultError> {
        match self {
            Self::File(v) => v.commit(state),
            Self::Tpm(v) => v.commit(state),
        }
    }
}

/// The secret a TPM wallet's vault is sealed under: the device secret bound
/// to the counter's NV index and to its base (the counter's raw value at
/// create, held in the TPM's write-locked base index). So the same vault
/// opened as a file-counter vault (after someone deleted `counter.tpm` and
/// wrote a `vault/counter`) fails as `WrongDeviceSecret` instead of opening
/// without the TPM; and a host that holds the TPM's owner auth, undefines
/// both indices and defines them again with a base of its choosing (to make
/// a restored state look current) changes the base, hence the key: the
/// restored vault does not open at all. It cannot pick the old base back: a
/// new TPM counter starts at or above every value any counter ever had.
fn tpm_vault_secret(
    secret: &[u8; DEVICE_SECRET_BYTES],
    index: u32,
    base: u64,
) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"offpay cli vault with a TPM counter v2");
    h.update(secret);
    h.update(index.to_be_bytes());
    h.update(base.to_be_bytes());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&h.finalize());
    out
}

/// Parse `counter.tpm`: `ENDPOINT\nINDEX-HEX\n`.
fn parse_tpm_record(text: &str) -> Option<(Endpoint, u32)> {
    let mut lines = text.lines();
    let ep = Endpoint::parse(lines.next()?).ok()?;
    let index = u32::from_str_radix(lines.next()?.strip_prefix("0x")?, 16).ok()?;
    if lines.next().is_some() {
        return None;
    }
    Some((ep, index))
}

/// Files `create` made, removed again if enrollment fails.
#[derive(Debug, Default)]
pub(crate) struct Created {
    paths: Vec<PathBuf>,
}

impl Created {
    /// Remove everything created, newest first (best effort).
    pub(crate) fn undo(self) {
        for p in self.paths.iter().rev() {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn random_secret() -> Result<Zeroizing<[u8; DEVICE_SECRET_BYTES]>, Failure> {
    let mut b = Zeroizing::new([0u8; DEVICE_SECRET_BYTES]);
    offpay_protocol::Entropy::fill(&offpay_protocol::OsEntropy, b.as_mut())
        .map_err(|e| Failure::refused("randomness", format!("random source: {e}")))?;
    Ok(b)
}

fn create_private_dir(p: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(p)
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// Temporary files written by this process so far (part of their names).
static TMP_WRITES: AtomicU64 = AtomicU64::new(0);

/// Replace a file atomically (write a temporary file named uniquely for this
/// process and write, fsync, rename): two processes writing one file never
/// rename each other's temporary file away.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Failure> {
    let n = TMP_WRITES.fetch_add(1, Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        // Best effort: the error is what matters.
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| Failure::io(format!("cannot write {}", path.display()), &e))
}

/// How long to wait for the wallet lock: `OFFPAY_WALLET_WAIT` seconds.
fn lock_wait() -> Result<Duration, Failure> {
    match std::env::var("OFFPAY_WALLET_WAIT").ok().as_deref() {
        None | Some("") => Ok(Duration::from_secs(LOCK_WAIT_SECONDS_DEFAULT)),
        Some(text) => match text.parse::<u64>() {
            Ok(s) if s <= LOCK_WAIT_SECONDS_MAX => Ok(Duration::from_secs(s)),
            _ => Err(Failure::usage(format!(
                "OFFPAY_WALLET_WAIT={text:?}: expected 0 to {LOCK_WAIT_SECONDS_MAX} seconds"
            ))),
        },
    }
}

impl WalletDir {
    /// The wallet in `path`.
    pub(crate) fn new(path: impl Into<PathBuf>) -> WalletDir {
        WalletDir {
            path: path.into(),
            lock: OnceCell::new(),
            counter: None,
        }
    }

    /// New vaults made through this handle use the TPM at `spec`
    /// (`tpm:HOST:PORT` or `tpm:/dev/tpmrm0`); `None` or `file`: the file counter.
    pub(crate) fn with_counter(mut self, spec: Option<&str>) -> Result<WalletDir, Failure> {
        self.counter = match spec {
            None | Some("file") => None,
            Some(s) => Some(Endpoint::parse(s).map_err(|e| {
                Failure::usage(format!(
                    "--counter {s:?}: expected file, tpm:HOST:PORT or tpm:/dev/tpmrm0 ({e})"
                ))
            })?),
        };
        Ok(self)
    }

    fn tpm_record_path(&self) -> PathBuf {
        self.path.join(TPM_COUNTER_FILE)
    }

    /// The TPM counter this wallet was created with, if any.
    fn tpm_record(&self) -> Result<Option<TpmCounterConfig>, Failure> {
        let p = self.tpm_record_path();
        let bytes = match read_bounded(&p, 4096) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Failure::io(format!("cannot read {}", p.display()), &e)),
        };
        let bad = || {
            Failure::refused(
                "bad_config",
                format!(
                    "{} is not a TPM counter record (ENDPOINT, then 0xINDEX)",
                    p.display()
                ),
            )
        };
        let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
        let (ep, index) = parse_tpm_record(text).ok_or_else(bad)?;
        TpmCounterConfig::new(ep, index)
            .map(Some)
            .map_err(|_| bad())
    }

    /// Take the exclusive lock on this wallet (`wallet.lock`) for as long as
    /// this `WalletDir` (or a clone) lives: wait up to `OFFPAY_WALLET_WAIT`
    /// seconds for another process to let go, then refuse with
    /// `wallet_busy`. The directory must exist. Taking it again is a no-op.
    pub(crate) fn lock(&self) -> Result<(), Failure> {
        if self.lock.get().is_some() {
            return Ok(());
        }
        let wait = lock_wait()?;
        let p = self.path.join(LOCK_FILE);
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            o.mode(0o600);
        }
        let file = o
            .open(&p)
            .map_err(|e| Failure::io(format!("cannot open {}", p.display()), &e))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY_PAUSE);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Failure::refused(
                        "wallet_busy",
                        format!(
                            "wallet is busy: another offpay command is using {} (waited {} s; nothing changed); try again when it is done, or wait longer with OFFPAY_WALLET_WAIT=SECONDS",
                            self.path.display(),
                            wait.as_secs()
                        ),
                    ));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Failure::io(format!("cannot lock {}", p.display()), &e));
                }
            }
        }
        // Cannot be set already: checked above, and `&self` is not shared
        // across threads (`Rc`).
        let _ = self.lock.set(Rc::new(file));
        Ok(())
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The vault directory.
    pub(crate) fn vault_dir(&self) -> PathBuf {
        self.path.join(VAULT_DIR)
    }

    fn secret_path(&self) -> PathBuf {
        self.path.join(DEVICE_SECRET_FILE)
    }

    fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    fn no_wallet(&self) -> Failure {
        Failure::refused(
            "no_wallet",
            format!(
                "no wallet in {}: create one with `offpay wallet --dir {} create --server URL --token TOKEN`",
                self.path.display(),
                self.path.display()
            ),
        )
    }

    /// Whether a wallet (its vault) exists here.
    pub(crate) fn exists(&self) -> bool {
        self.vault_dir().join("state.sealed").exists()
    }

    /// `wallet.json`.
    pub(crate) fn config(&self) -> Result<WalletConfig, Failure> {
        let p = self.config_path();
        let bytes = read_bounded(&p, CONFIG_BYTES_MAX).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                self.no_wallet()
            } else {
                Failure::io(format!("cannot read {}", p.display()), &e)
            }
        })?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .as_ref()
            .and_then(WalletConfig::from_json)
            .ok_or_else(|| {
                Failure::refused(
                    "bad_config",
                    format!("{} is not a wallet.json of this version", p.display()),
                )
            })
    }

    /// Write `wallet.json`.
    pub(crate) fn write_config(&self, c: &WalletConfig) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(&c.to_json()).unwrap_or_default() + "\n";
        write_atomic(&self.config_path(), text.as_bytes())
    }

    fn device_secret(&self) -> Result<Zeroizing<[u8; DEVICE_SECRET_BYTES]>, Failure> {
        let p = self.secret_path();
        let bytes = Zeroizing::new(read_bounded(&p, DEVICE_SECRET_BYTES as u64 + 1).map_err(
            |e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    if self.exists() {
                        Failure::refused(
                            "device_secret",
                            format!(
                                "{} is missing: without it the vault cannot be opened",
                                p.display()
                            ),
                        )
                    } else {
                        self.no_wallet()
                    }
                } else {
                    Failure::io(format!("cannot read {}", p.display()), &e)
                }
            },
        )?);
        let mut out = Zeroizing::new([0u8; DEVICE_SECRET_BYTES]);
        if bytes.len() != DEVICE_SECRET_BYTES {
            return Err(Failure::refused(
                "device_secret",
                format!(
                    "{} must hold exactly {DEVICE_SECRET_BYTES} bytes",
                    p.display()
                ),
            ));
        }
        out.copy_from_slice(&bytes);
        Ok(out)
    }

    /// Open the wallet with its PIN.
    pub(crate) fn open(&self, pin: &str) -> Result<DiskWallet, Failure> {
        if !self.exists() {
            return Err(self.no_wallet());
        }
        self.lock()?;
        let secret = self.device_secret()?;
        let opened = match self.tpm_record()? {
            None => SealedFileVault::open(&self.vault_dir(), pin.as_bytes(), &secret)
                .map(DiskVault::File),
            Some(cfg) => TpmCounter::open(cfg).and_then(|c| {
                let vs = tpm_vault_secret(&secret, c.config().index, c.base());
                SealedVault::open(
                    DirStore::new(&self.vault_dir()),
                    c,
                    pin.as_bytes(),
                    &vs,
                    OsEntropy::shared(),
                )
                .map(|v| DiskVault::Tpm(Box::new(v)))
            }),
        };
        let vault = opened.map_err(
            |e| match e {
                VaultError::NotFound => self.no_wallet(),
                VaultError::WrongDeviceSecret => Failure::refused(
                    vault_error_code(&e),
                    format!(
                        "cannot open the wallet: {} is not the device secret this vault was created with (was it replaced or copied from another wallet?); no PIN attempt was counted",
                        self.secret_path().display()
                    ),
                ),
                VaultError::PinAttemptsExhausted | VaultError::PinAttemptsUnreadable => {
                    Failure::refused(
                        vault_error_code(&e),
                        format!(
                            "cannot open the wallet: {e}.\nThe wallet is PIN-locked: run `offpay wallet --dir {dir} unlock` (no PIN needed), ask your bank to approve the unlock, then run `offpay wallet --dir {dir} unlock` again",
                            dir = self.path.display()
                        ),
                    )
                }
                e => Failure::refused(vault_error_code(&e), format!("cannot open the wallet: {e}")),
            },
        )?;
        let wallet = Wallet::open(vault).map_err(wallet_failure)?;
        // A wallet enrolled before PIN recovery existed gets its record now.
        if wallet.certificate().is_some() && !recovery::has_record(&self.vault_dir()) {
            self.save_recovery(&wallet)?;
        }
        Ok(wallet)
    }

    /// Keep the wallet's PIN recovery record next to the vault, sealed under
    /// the device secret ([`recovery`]): what lets it ask the issuer for an
    /// unlock once it is PIN-locked.
    pub(crate) fn save_recovery(&self, wallet: &DiskWallet) -> Result<(), Failure> {
        let record = wallet.pin_recovery().map_err(wallet_failure)?;
        let secret = self.device_secret()?;
        recovery::save(&self.vault_dir(), &secret, &record).map_err(|e| {
            Failure::refused(
                vault_error_code(&e),
                format!("cannot save the PIN recovery record: {e}"),
            )
        })
    }

    /// The PIN-locked vault's signed request to be unlocked (no PIN needed).
    pub(crate) fn pin_locked_request(
        &self,
        now: offpay_protocol::UnixSeconds,
    ) -> Result<Vec<u8>, Failure> {
        if !self.exists() {
            return Err(self.no_wallet());
        }
        self.lock()?;
        let secret = self.device_secret()?;
        recovery::locked_request(&self.vault_dir(), &secret, now)
            .map_err(|e| self.recovery_failure(&e))
    }

    /// Apply the issuer's signed unlock: the vault takes PINs again.
    pub(crate) fn apply_pin_unlock(&self, unlock: &[u8]) -> Result<(), Failure> {
        self.lock()?;
        let secret = self.device_secret()?;
        recovery::apply_unlock(&self.vault_dir(), &secret, unlock)
            .map_err(|e| self.recovery_failure(&e))
    }

    fn recovery_failure(&self, e: &RecoveryError) -> Failure {
        let code = match e {
            RecoveryError::NotLocked { .. } => "not_pin_locked",
            RecoveryError::NoRecord => "no_recovery_record",
            RecoveryError::NoPendingRequest => "no_unlock_request",
            RecoveryError::BadSignature => "bad_signature",
            RecoveryError::Mismatch(_) => "unlock_mismatch",
            RecoveryError::Malformed(_) => "malformed",
            RecoveryError::Vault(VaultError::WrongDeviceSecret) => {
                return Failure::refused(
                    "wrong_device_secret",
                    format!(
                        "{} is not the device secret this vault was created with",
                        self.secret_path().display()
                    ),
                );
            }
            RecoveryError::Vault(v) => vault_error_code(v),
            _ => "refused",
        };
        Failure::refused(code, e.to_string())
    }

    /// Make the directory, the device secret and an empty vault; the caller
    /// then creates the TA in it ([`Wallet::create`]). Refuses if a wallet is there.
    pub(crate) fn create_vault(
        &self,
        pin: &str,
        kdf: KdfParams,
    ) -> Result<(DiskVault, Created), Failure> {
        if self.exists() || self.secret_path().exists() || self.config_path().exists() {
            return Err(Failure::refused(
                "wallet_exists",
                format!("{} already holds a wallet", self.path.display()),
            ));
        }
        if pin.chars().count() < PIN_CHARS_MIN {
            return Err(Failure::usage(format!(
                "choose a PIN of at least {PIN_CHARS_MIN} characters"
            )));
        }
        let mut created = Created::default();
        if !self.path.exists() {
            create_private_dir(&self.path)
                .map_err(|e| Failure::io(format!("cannot create {}", self.path.display()), &e))?;
            created.paths.push(self.path.clone());
        }
        let result = (|| {
            self.lock()?;
            created.paths.push(self.path.join(LOCK_FILE));
            if self.exists() || self.secret_path().exists() {
                // Another process created a wallet here while we waited.
                return Err(Failure::refused(
                    "wallet_exists",
                    format!("{} already holds a wallet", self.path.display()),
                ));
            }
            let secret = random_secret()?;
            write_private(&self.secret_path(), secret.as_ref()).map_err(|e| {
                Failure::io(
                    format!("cannot create {}", self.secret_path().display()),
                    &e,
                )
            })?;
            created.paths.push(self.secret_path());
            let vd = self.vault_dir();
            create_private_dir(&vd)
                .map_err(|e| Failure::io(format!("cannot create {}", vd.display()), &e))?;
            created.paths.push(vd.clone());
            let refused = |e: VaultError| {
                Failure::refused(
                    vault_error_code(&e),
                    format!("cannot create the vault: {e}"),
                )
            };
            let Some(ep) = self.counter.clone() else {
                return SealedFileVault::create(&vd, pin.as_bytes(), &secret, kdf)
                    .map(DiskVault::File)
                    .map_err(refused);
            };
            // An NV index per wallet, drawn from the device secret (even:
            // the base index is the next one), recorded with the endpoint.
            let [a, b, ..] = *secret;
            let index = TPM_INDEX_FIRST + (u32::from(u16::from_be_bytes([a, b])) << 1);
            let cfg = TpmCounterConfig::new(ep, index).map_err(refused)?;
            let record = format!("{}\n{index:#010x}\n", cfg.endpoint);
            write_private(&self.tpm_record_path(), record.as_bytes()).map_err(|e| {
                Failure::io(
                    format!("cannot create {}", self.tpm_record_path().display()),
                    &e,
                )
            })?;
            created.paths.push(self.tpm_record_path());
            let counter = TpmCounter::create(cfg).map_err(refused)?;
            let vs = tpm_vault_secret(&secret, index, counter.base());
            SealedVault::create(
                DirStore::new(&vd),
                counter,
                pin.as_bytes(),
                &vs,
                kdf,
                OsEntropy::shared(),
            )
            .map(|v| DiskVault::Tpm(Box::new(v)))
            .map_err(refused)
        })();
        match result {
            Ok(v) => Ok((v, created)),
            Err(e) => {
                created.undo();
                Err(e)
            }
        }
    }

    /// Record `wallet.json` as part of what `create` made.
    pub(crate) fn config_created(&self, created: &mut Created) {
        created.paths.push(self.config_path());
    }
}

/// Read a whole file of at most `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut out = Vec::new();
    f.take(max + 1).read_to_end(&mut out)?;
    if out.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(out)
}
