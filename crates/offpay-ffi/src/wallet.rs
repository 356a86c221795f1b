//! [`OffpayWallet`]: the trusted application over the host's storage.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};

use offpay_protocol::entropy::SharedEntropy;
use offpay_protocol::pki::Certificate;
use offpay_protocol::{Amount, Currency, Suite, UnixSeconds};
use offpay_wallet::Wallet;
use offpay_wallet::vault::SealedVault;
use zeroize::Zeroizing;

use crate::host::{
    HostBlobStore, HostCounter, HostEntropy, HostFailures, HostMonotonicCounter, HostPlatform,
    HostStorage,
};
use crate::types::{HistoryEntry, KdfSettings, Money, SyncOutcome, WalletStatusInfo};
use crate::{OffpayError, guarded, panic_reason};

/// Longest PIN accepted, in bytes (UTF-8).
pub const PIN_BYTES_MAX: usize = 1024;
/// Length of the device secret the platform must return.
pub const DEVICE_SECRET_BYTES: usize = 32;

/// The TA over the host's storage and counter.
pub(crate) type HostWallet = Wallet<SealedVault<HostBlobStore, HostMonotonicCounter>>;

/// The wallet behind the lock: `None` once a panic made it unusable.
struct Slot {
    wallet: Option<HostWallet>,
    /// Why it is unusable.
    broken: Option<String>,
}

/// One offline wallet: its trusted application (keys, balance, limits, the
/// hash chain), sealed in the host's storage under the PIN and the device
/// secret, with the host's counter as the anti-rollback anchor.
///
/// Messages are bytes in and out (request, payment, receipt, voucher, sync
/// report and response): the app carries them over NFC, BLE, QR codes or
/// files. Every money-moving message leaves the wallet only after the change
/// is durably committed to the host's storage; asking again for the same
/// payment or receipt returns the same bytes, so a torn exchange is resumed
/// by retrying.
///
/// **Threads**: the object is safe to share between threads. It runs one
/// operation at a time: a call made while another runs on another thread
/// waits for it (calls are short: a few signatures and one storage write;
/// run them off the UI thread, as they do I/O through the host's storage).
/// Host callbacks are called on the calling thread, while the wallet is held.
///
/// **Errors**: every method throws [`OffpayError`]; a refused call changes
/// nothing. If an internal error (a panic) is caught, the call throws
/// [`OffpayError::Internal`] and the object refuses every later call: open
/// the wallet again from its storage.
#[derive(uniffi::Object)]
pub struct OffpayWallet {
    slot: Mutex<Slot>,
    platform: Arc<dyn HostPlatform>,
    failures: HostFailures,
}

impl core::fmt::Debug for OffpayWallet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OffpayWallet").finish_non_exhaustive()
    }
}

fn check_pin(pin: &str) -> Result<(), OffpayError> {
    if pin.is_empty() {
        return Err(OffpayError::invalid("the PIN is empty"));
    }
    if pin.len() > PIN_BYTES_MAX {
        return Err(OffpayError::invalid(format!(
            "the PIN is longer than {PIN_BYTES_MAX} bytes"
        )));
    }
    Ok(())
}

/// The device secret from the platform, checked to be 32 bytes.
fn device_secret(
    platform: &dyn HostPlatform,
) -> Result<Zeroizing<[u8; DEVICE_SECRET_BYTES]>, OffpayError> {
    let bytes = Zeroizing::new(platform.device_secret().map_err(|e| OffpayError::Host {
        reason: format!("host device_secret failed: {e}"),
    })?);
    let mut secret = Zeroizing::new([0u8; DEVICE_SECRET_BYTES]);
    if bytes.len() != DEVICE_SECRET_BYTES {
        return Err(OffpayError::Host {
            reason: format!(
                "host device_secret returned {} bytes, not {DEVICE_SECRET_BYTES}",
                bytes.len()
            ),
        });
    }
    secret.copy_from_slice(&bytes);
    Ok(secret)
}

struct Parts {
    store: HostBlobStore,
    counter: HostMonotonicCounter,
    entropy: SharedEntropy,
    failures: HostFailures,
}

fn parts(
    storage: Arc<dyn HostStorage>,
    counter: Arc<dyn HostCounter>,
    platform: &Arc<dyn HostPlatform>,
) -> Parts {
    let failures = HostFailures::default();
    Parts {
        store: HostBlobStore::new(storage, failures.clone()),
        counter: HostMonotonicCounter::new(counter, failures.clone()),
        entropy: Arc::new(HostEntropy::new(platform.clone(), failures.clone())),
        failures,
    }
}

impl OffpayWallet {
    fn ready(wallet: HostWallet, platform: Arc<dyn HostPlatform>, failures: HostFailures) -> Self {
        OffpayWallet {
            slot: Mutex::new(Slot {
                wallet: Some(wallet),
                broken: None,
            }),
            platform,
            failures,
        }
    }

    /// Run `op` on the wallet, one at a time, at the platform's time; a
    /// panic inside is caught, makes the wallet unusable and is reported as
    /// [`OffpayError::Internal`].
    pub(crate) fn with<T>(
        &self,
        op: impl FnOnce(&mut HostWallet, UnixSeconds) -> Result<T, OffpayError>,
    ) -> Result<T, OffpayError> {
        // A panic is caught below while the lock is held, so the lock is never
        // poisoned by our code; accept it anyway rather than panic.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut *slot;
        let Some(wallet) = slot.wallet.as_mut() else {
            return Err(OffpayError::Internal {
                reason: format!(
                    "this wallet object is unusable after an internal error ({}): open the wallet again",
                    slot.broken.as_deref().unwrap_or("unknown")
                ),
            });
        };
        self.failures.clear();
        let platform = &self.platform;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let now = UnixSeconds(platform.now_unix_seconds());
            op(wallet, now)
        }));
        match result {
            Ok(r) => r,
            Err(panic) => {
                let reason = panic_reason(panic.as_ref());
                slot.wallet = None;
                slot.broken = Some(reason.clone());
                Err(OffpayError::Internal { reason })
            }
        }
    }

    /// Run a TA operation, mapping its refusal (with the host's message when
    /// a callback caused it).
    fn ta<T>(
        &self,
        op: impl FnOnce(&mut HostWallet, UnixSeconds) -> Result<T, offpay_wallet::WalletError>,
    ) -> Result<T, OffpayError> {
        let failures = self.failures.clone();
        self.with(move |w, now| {
            op(w, now).map_err(|e| OffpayError::from_wallet(e, failures.take()))
        })
    }

    /// The wallet's currency (from its policy): `NotEnrolled` before enrollment.
    fn currency(w: &HostWallet) -> Result<Currency, OffpayError> {
        w.balance()
            .map(|b| b.currency)
            .ok_or(OffpayError::NotEnrolled)
    }

    /// The trusted root's DER (for the sync client's enrollment check).
    pub(crate) fn root_der(&self) -> Result<Vec<u8>, OffpayError> {
        self.with(|w, _| Ok(w.root_certificate().der().to_vec()))
    }
}

#[uniffi::export]
impl OffpayWallet {
    /// Create a new wallet in empty host storage: the wallet key is generated
    /// inside (from the platform's random source) and never leaves it
    /// unsealed. `root_der` is the scheme root certificate the app ships
    /// with (its trust anchor); `kdf` the PIN derivation's cost. `counter`
    /// must be fresh (value 0): one counter per wallet.
    ///
    /// If create fails on a host error after the storage was first written,
    /// the storage may hold an empty vault (`open` says
    /// [`OffpayError::VaultNotFound`], a second `create`
    /// [`OffpayError::VaultAlreadyExists`]): delete the wallet's blobs and
    /// counter and create again.
    #[uniffi::constructor]
    pub fn create(
        storage: Arc<dyn HostStorage>,
        counter: Arc<dyn HostCounter>,
        platform: Arc<dyn HostPlatform>,
        pin: String,
        root_der: Vec<u8>,
        kdf: KdfSettings,
    ) -> Result<Arc<Self>, OffpayError> {
        let pin = Zeroizing::new(pin);
        guarded(move || {
            check_pin(&pin)?;
            let kdf = kdf.params()?;
            // Check the trust anchor before anything is written.
            let root =
                Certificate::from_der(&root_der).map_err(|e| OffpayError::IssuerMaterial {
                    reason: e.to_string(),
                })?;
            root.verify_signed_by(&root)
                .map_err(|e| OffpayError::IssuerMaterial {
                    reason: e.to_string(),
                })?;
            let secret = device_secret(platform.as_ref())?;
            let p = parts(storage, counter, &platform);
            let now = UnixSeconds(platform.now_unix_seconds());
            let vault = SealedVault::create(
                p.store,
                p.counter,
                pin.as_bytes(),
                &secret,
                kdf,
                p.entropy.clone(),
            )
            .map_err(|e| OffpayError::from_vault(e, p.failures.take()))?;
            let wallet =
                Wallet::create_with_entropy(vault, Suite::Ed25519, &root_der, now, p.entropy)
                    .map_err(|e| OffpayError::from_wallet(e, p.failures.take()))?;
            Ok(Arc::new(OffpayWallet::ready(wallet, platform, p.failures)))
        })
    }

    /// Open the wallet in the host's storage with the PIN. A wrong PIN is
    /// counted ([`OffpayError::WrongPin`], then
    /// [`OffpayError::PinAttemptsExhausted`]). A state older than the host
    /// counter (a restored copy of the storage) opens **locked**
    /// ([`WalletStatusInfo::lock`] is `RolledBack`): it can only sync.
    #[uniffi::constructor]
    pub fn open(
        storage: Arc<dyn HostStorage>,
        counter: Arc<dyn HostCounter>,
        platform: Arc<dyn HostPlatform>,
        pin: String,
    ) -> Result<Arc<Self>, OffpayError> {
        let pin = Zeroizing::new(pin);
        guarded(move || {
            check_pin(&pin)?;
            let secret = device_secret(platform.as_ref())?;
            let p = parts(storage, counter, &platform);
            let vault = SealedVault::open(
                p.store,
                p.counter,
                pin.as_bytes(),
                &secret,
                p.entropy.clone(),
            )
            .map_err(|e| OffpayError::from_vault(e, p.failures.take()))?;
            let wallet = Wallet::open_with_entropy(vault, p.entropy)
                .map_err(|e| OffpayError::from_wallet(e, p.failures.take()))?;
            Ok(Arc::new(OffpayWallet::ready(wallet, platform, p.failures)))
        })
    }

    /// The wallet id (32 lower-case hex digits).
    pub fn wallet_id(&self) -> Result<String, OffpayError> {
        self.with(|w, _| Ok(w.wallet_id().to_hex()))
    }

    /// A PKCS#10 certificate signing request for this wallet's key (DER), for
    /// the issuer's enrollment (`POST /v1/enroll`).
    pub fn csr(&self) -> Result<Vec<u8>, OffpayError> {
        self.ta(|w, _| w.csr())
    }

    /// Install what enrollment returned: the issuer CA certificate, this
    /// wallet's certificate, the signed risk policy and the CRL, all checked
    /// against the trusted root.
    pub fn enroll(
        &self,
        issuer_der: Vec<u8>,
        cert_der: Vec<u8>,
        policy: Vec<u8>,
        crl_der: Option<Vec<u8>>,
    ) -> Result<(), OffpayError> {
        self.ta(|w, now| w.enroll(&issuer_der, &cert_der, &policy, crl_der.as_deref(), now))
    }

    /// As payee: a signed payment request for `amount_minor` of `currency`,
    /// valid `valid_seconds` (at most an hour), with a fresh nonce. Hand the
    /// bytes to the payer.
    pub fn request(
        &self,
        amount_minor: u64,
        currency: String,
        valid_seconds: u64,
    ) -> Result<Vec<u8>, OffpayError> {
        guarded(|| {
            let currency = Currency::new(&currency).ok_or_else(|| {
                OffpayError::invalid(format!(
                    "{:?} is not an ISO 4217 currency code (three capital letters)",
                    currency.chars().take(16).collect::<String>()
                ))
            })?;
            if valid_seconds == 0 {
                return Err(OffpayError::invalid("valid_seconds must be at least 1"));
            }
            self.ta(|w, now| w.request(Amount::new(amount_minor, currency), valid_seconds, now))
        })
    }

    /// As payer: pay a request. Checks the payee's certificate, the request
    /// and every risk limit, durably debits, and returns the signed payment
    /// for the payee. Paying the same request again returns the same bytes.
    pub fn pay(&self, request: Vec<u8>) -> Result<Vec<u8>, OffpayError> {
        self.ta(|w, now| w.pay(&request, now))
    }

    /// As payee: accept a payment for one of this wallet's pending requests;
    /// durably credits and returns the signed receipt for the payer.
    /// Receiving the same payment again returns the same receipt.
    pub fn receive(&self, payment: Vec<u8>) -> Result<Vec<u8>, OffpayError> {
        self.ta(|w, now| w.receive(&payment, now))
    }

    /// As payer: record the payee's receipt for one of this wallet's payments.
    pub fn confirm(&self, receipt: Vec<u8>) -> Result<(), OffpayError> {
        self.ta(|w, _| w.confirm(&receipt))
    }

    /// Apply an issuer-signed load voucher (exactly once, in order); returns
    /// the amount loaded, minor units.
    pub fn apply_voucher(&self, voucher: Vec<u8>) -> Result<u64, OffpayError> {
        self.ta(|w, now| w.apply_voucher(&voucher, now).map(|a| a.minor))
    }

    /// Move `amount_minor` back to the online account: durably debits and
    /// returns the signed redeem entry for the issuer (`POST /v1/redeem`).
    /// If it never reaches the issuer, it settles at the next sync.
    pub fn redeem(&self, amount_minor: u64) -> Result<Vec<u8>, OffpayError> {
        self.with(|w, now| {
            let currency = Self::currency(w)?;
            w.redeem(Amount::new(amount_minor, currency), now)
                .map_err(|e| OffpayError::from_wallet(e, self.failures.take()))
        })
    }

    /// The signed sync report of everything since the last checkpoint, for
    /// the issuer (`POST /v1/sync`). Works on a locked wallet.
    pub fn sync_report(&self) -> Result<Vec<u8>, OffpayError> {
        self.ta(|w, now| w.sync_report(now))
    }

    /// Apply the issuer's answer to the last sync report.
    pub fn apply_sync_response(&self, bytes: Vec<u8>) -> Result<SyncOutcome, OffpayError> {
        self.ta(|w, now| {
            let applied = w.apply_sync_response(&bytes, now)?;
            Ok(SyncOutcome::new(applied, w.balance()))
        })
    }

    /// The offline balance (none before enrollment).
    pub fn balance(&self) -> Result<Option<Money>, OffpayError> {
        self.with(|w, _| Ok(w.balance().map(Money::from)))
    }

    /// The most recent history (at most 256 lines), oldest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, OffpayError> {
        self.with(|w, _| {
            let currency = w
                .balance()
                .map(|b| b.currency.to_string())
                .unwrap_or_default();
            Ok(w.history()
                .iter()
                .map(|item| HistoryEntry::from_item(item, &currency))
                .collect())
        })
    }

    /// Everything the app may show: balance, lock, limits left (a terminal's
    /// receive limits and its sweep due too), expiries.
    pub fn status(&self) -> Result<WalletStatusInfo, OffpayError> {
        self.with(|w, now| {
            Ok(WalletStatusInfo::new(
                w.status(now),
                w.profile().into(),
                w.sweep_due_minor(),
            ))
        })
    }

    /// This wallet's certificate (DER), once enrolled.
    pub fn certificate_der(&self) -> Result<Option<Vec<u8>>, OffpayError> {
        self.with(|w, _| Ok(w.certificate().map(|c| c.der().to_vec())))
    }
}
