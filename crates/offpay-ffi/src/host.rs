//! What the host app supplies (foreign traits the app implements in Kotlin,
//! Swift or Python), and their adapters to the vault's and the protocol's
//! traits: [`HostBlobStore`] is a [`BlobStore`], [`HostMonotonicCounter`] a
//! [`MonotonicCounter`], [`HostEntropy`] an [`Entropy`].
//!
//! A host callback's own message cannot travel through the vault's errors
//! (they are `Copy` codes), so each adapter also records the first failure of
//! the running operation in a shared [`HostFailures`]; the wallet object turns
//! the vault error it gets back into [`crate::OffpayError::Host`] with that
//! message.

use std::sync::{Arc, Mutex, PoisonError};

use offpay_protocol::entropy::{Entropy, EntropyError};
use offpay_wallet::vault::{BlobStore, MonotonicCounter, VaultError};

/// A host callback failed. The app returns (Kotlin, Swift: throws; Python:
/// raises) one of these from its [`HostStorage`], [`HostCounter`] or
/// [`HostPlatform`]; any other exception a callback throws arrives as
/// [`HostError::Unavailable`].
///
/// The field is `reason`, not `message`: Kotlin exceptions already have a
/// `message`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Error)]
pub enum HostError {
    /// A storage or counter operation failed (disk full, I/O error).
    Io {
        /// What failed, in words.
        reason: String,
    },
    /// The platform service is not available (keystore locked, no secure
    /// hardware, the callback threw something unexpected).
    Unavailable {
        /// What failed, in words.
        reason: String,
    },
}

impl core::fmt::Display for HostError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HostError::Io { reason } => write!(f, "I/O error: {reason}"),
            HostError::Unavailable { reason } => write!(f, "unavailable: {reason}"),
        }
    }
}

impl std::error::Error for HostError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for HostError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HostError::Unavailable {
            reason: format!("the callback failed unexpectedly: {}", e.reason),
        }
    }
}

/// The app's durable storage of named blobs: what an app has in its private
/// files directory. The wallet keeps three blobs, `state.sealed`,
/// `pin-attempts` and `device-check` (the sealed vault's formats); the app
/// never interprets them.
///
/// `replace` must be **durable and atomic**: after it returns, the new
/// content survives a crash or power loss; if it fails or the process dies
/// inside it, the blob holds the old or the new content, never a mix, never
/// nothing. On Android and the JVM: write `NAME.tmp`, `FileChannel.force`,
/// `Files.move(.., ATOMIC_MOVE)`; on iOS: `Data.write(options: .atomic)`.
#[uniffi::export(foreign)]
pub trait HostStorage: Send + Sync {
    /// The blob `name`, or `None` if there is none.
    fn read(&self, name: String) -> Result<Option<Vec<u8>>, HostError>;
    /// Durably and atomically replace the blob `name` by `data`.
    fn replace(&self, name: String, data: Vec<u8>) -> Result<(), HostError>;
}

/// A monotonic counter kept apart from the storage, one per wallet: the
/// anti-rollback anchor (Android KeyMint/StrongBox, the iOS Keychain with a
/// hardware-backed item, a TPM NV counter). The wallet detects a state blob
/// restored from an old copy because its version is below this counter.
#[uniffi::export(foreign)]
pub trait HostCounter: Send + Sync {
    /// The counter's value (0 when new).
    fn read(&self) -> Result<u64, HostError>;
    /// Durably raise the counter to `value` (never called with a lower value;
    /// an equal value is a no-op).
    fn advance_to(&self, value: u64) -> Result<(), HostError>;
}

/// The platform: the keystore-held device secret, the clock and the secure
/// random source.
#[uniffi::export(foreign)]
pub trait HostPlatform: Send + Sync {
    /// The device secret: exactly 32 bytes, the same on every call, kept in
    /// the platform keystore (not in the storage). With the PIN it derives
    /// the key that seals the wallet.
    fn device_secret(&self) -> Result<Vec<u8>, HostError>;
    /// The device clock, seconds since the Unix epoch. The wallet never lets
    /// its own time go backwards, whatever this returns.
    fn now_unix_seconds(&self) -> u64;
    /// `len` bytes from the platform's secure random source
    /// (`SecureRandom`, `SecRandomCopyBytes`, `os.urandom`).
    fn random_bytes(&self, len: u32) -> Result<Vec<u8>, HostError>;
}

/// The first host failure of the running operation, shared by the adapters
/// and the wallet object (which clears it before each operation).
#[derive(Clone, Debug, Default)]
pub(crate) struct HostFailures(Arc<Mutex<Option<String>>>);

impl HostFailures {
    /// Forget the previous operation's failure.
    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Record a failure (the first of an operation is kept: it is the cause).
    pub(crate) fn record(&self, what: String) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(what);
        }
    }

    /// The recorded failure, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The vault's error for a failed host callback: an I/O error whose message
/// is in [`HostFailures`].
const fn host_io(op: &'static str) -> VaultError {
    VaultError::Io {
        op,
        kind: std::io::ErrorKind::Other,
    }
}

/// [`HostStorage`] as the vault's [`BlobStore`].
pub(crate) struct HostBlobStore {
    storage: Arc<dyn HostStorage>,
    failures: HostFailures,
}

impl HostBlobStore {
    pub(crate) fn new(storage: Arc<dyn HostStorage>, failures: HostFailures) -> Self {
        Self { storage, failures }
    }
}

impl core::fmt::Debug for HostBlobStore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostBlobStore").finish_non_exhaustive()
    }
}

impl BlobStore for HostBlobStore {
    fn read(&mut self, name: &str, _limit: usize) -> Result<Option<Vec<u8>>, VaultError> {
        // The host reads the whole blob; the vault refuses one over its limit.
        self.storage.read(name.to_string()).map_err(|e| {
            self.failures
                .record(format!("host storage read({name}) failed: {e}"));
            host_io("host storage read")
        })
    }

    fn replace(&mut self, name: &str, data: &[u8]) -> Result<(), VaultError> {
        self.storage
            .replace(name.to_string(), data.to_vec())
            .map_err(|e| {
                self.failures
                    .record(format!("host storage replace({name}) failed: {e}"));
                host_io("host storage replace")
            })
    }
}

/// [`HostCounter`] as the vault's [`MonotonicCounter`]. Like the file
/// counter, the handle remembers the highest value it saw or wrote and
/// refuses a counter seen to go below it ([`VaultError::CounterRegressed`]),
/// and never asks the host to lower it.
pub(crate) struct HostMonotonicCounter {
    counter: Arc<dyn HostCounter>,
    failures: HostFailures,
    /// Highest value seen or written through this handle.
    floor: u64,
}

impl HostMonotonicCounter {
    pub(crate) fn new(counter: Arc<dyn HostCounter>, failures: HostFailures) -> Self {
        Self {
            counter,
            failures,
            floor: 0,
        }
    }
}

impl core::fmt::Debug for HostMonotonicCounter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HostMonotonicCounter")
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl MonotonicCounter for HostMonotonicCounter {
    fn read(&mut self) -> Result<u64, VaultError> {
        let value = self.counter.read().map_err(|e| {
            self.failures
                .record(format!("host counter read failed: {e}"));
            host_io("host counter read")
        })?;
        if value < self.floor {
            // A counter seen going backwards: its own refusal, not a host failure.
            return Err(VaultError::CounterRegressed);
        }
        self.floor = value;
        Ok(value)
    }

    fn advance_to(&mut self, value: u64) -> Result<(), VaultError> {
        if value < self.floor {
            return Err(VaultError::CounterRegressed);
        }
        self.counter.advance_to(value).map_err(|e| {
            self.failures
                .record(format!("host counter advance_to({value}) failed: {e}"));
            host_io("host counter advance")
        })?;
        self.floor = value;
        Ok(())
    }
}

/// Requests of at least this many bytes that come back all zero are refused
/// as a broken random source (the chance for a working one is 2^-128).
const ZERO_CHECK_BYTES_MIN: usize = 16;

/// [`HostPlatform::random_bytes`] as the protocol's [`Entropy`]: every key,
/// wallet id, nonce and vault salt of the wallet comes from the host.
pub(crate) struct HostEntropy {
    platform: Arc<dyn HostPlatform>,
    failures: HostFailures,
}

impl HostEntropy {
    pub(crate) fn new(platform: Arc<dyn HostPlatform>, failures: HostFailures) -> Self {
        Self { platform, failures }
    }
}

impl Entropy for HostEntropy {
    fn fill(&self, dest: &mut [u8]) -> Result<(), EntropyError> {
        let Ok(len) = u32::try_from(dest.len()) else {
            self.failures
                .record(format!("{} random bytes asked: too many", dest.len()));
            return Err(EntropyError);
        };
        let bytes = zeroize::Zeroizing::new(self.platform.random_bytes(len).map_err(|e| {
            self.failures
                .record(format!("host random_bytes({len}) failed: {e}"));
            EntropyError
        })?);
        if bytes.len() != dest.len() {
            self.failures.record(format!(
                "host random_bytes({len}) returned {} bytes",
                bytes.len()
            ));
            return Err(EntropyError);
        }
        if bytes.len() >= ZERO_CHECK_BYTES_MIN && bytes.iter().all(|b| *b == 0) {
            self.failures.record(format!(
                "host random_bytes({len}) returned only zero bytes: not a random source"
            ));
            return Err(EntropyError);
        }
        dest.copy_from_slice(&bytes);
        Ok(())
    }
}
