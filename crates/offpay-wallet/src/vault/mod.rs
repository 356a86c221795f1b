//! The vault: sealed, durable, atomic and rollback-detecting storage of the
//! trusted application's (TA) state.
//!
//! The TA serializes its whole state (keys, balance, counters, ...) into one
//! opaque byte string. A [`Vault`] stores that byte string so that:
//!
//! - **durable**: [`Vault::commit`] returning `Ok` means the new state
//!   survives a crash or power loss (the TA commits *before* it releases any
//!   money-moving message);
//! - **atomic**: after a failed or interrupted commit, reopening yields
//!   either the old or the new state, never a mix and never nothing;
//! - **sealed** ([`SealedVault`], [`SealedFileVault`]): confidential and
//!   authenticated under a key derived from the user PIN and a device
//!   secret; any change to the sealed state is detected
//!   ([`VaultError::Tampered`]);
//! - **rollback-detecting**: every committed state carries a version that a
//!   [`MonotonicCounter`] kept apart from the state follows; a state older
//!   than the counter is reported in [`Loaded::rollback`] (the TA then locks
//!   itself until it is back online).
//!
//! Implementations:
//!
//! - [`SealedVault`]: the sealed vault over host-provided storage, a
//!   [`BlobStore`] (named blobs with durable atomic replace: an app's files
//!   directory) and a [`MonotonicCounter`] (on a phone: KeyMint/StrongBox,
//!   the Keychain); what the SDK (offpay-ffi) runs on. The blobs, the
//!   byte-by-byte sealed format and the commit protocol are documented in
//!   [`sealed`]. [`MemoryBlobStore`] is an in-memory store with crash
//!   injection ([`MemoryBlobStore::fail_replace_at`]).
//! - [`SealedFileVault`]: the software vault (DESIGN.md §5, "app-integrated
//!   TRE"), a [`SealedVault`] over a directory and a [`FileCounter`]: one
//!   sealing and commit implementation for both.
//! - offpay-hsm's `HsmVault` (a crate of its own: this one links no PKCS#11):
//!   the same version/counter rules ([`reconcile`]) over a [`BlobStore`] and
//!   a [`MonotonicCounter`], the state sealed with AES-256-GCM under a
//!   non-extractable key in a PKCS#11 token, and the TA's signing keys held
//!   there too ([`Vault::device_key`]).
//! - [`MemoryVault`]: in memory, for tests and the simulator, with the same
//!   version/counter semantics, rollback simulation
//!   ([`MemoryVault::snapshot`]/[`MemoryVault::restore`]) and crash injection
//!   ([`MemoryVault::fail_commit_at`]).
//!
//! All file I/O goes through [`VaultFs`] so that crashes can be injected at
//! every mutating operation ([`FaultyFs`]).
//!
//! # Threat model (DESIGN.md §8) and its limits
//!
//! The attacker owns the OS: it can read, copy, restore, truncate and edit
//! every file in the vault directory. Parsing never panics on any bytes;
//! oversized files are refused before they are read whole. What a software
//! vault *cannot* do:
//!
//! - The [`FileCounter`] is a file too: an attacker who restores an old
//!   `state.sealed` **and** the matching old `counter` file together is not
//!   detected here. On a real device the counter is a TPM 2.0 NV counter or
//!   eMMC RPMB; for the software vault the backend checkpoint and the hash
//!   chain are the second line (a rolled-back wallet that spends again forks
//!   its chain, which reconciliation proves).
//! - The `pin-attempts` file is plain and can be reset by the attacker, which
//!   then gets unlimited *online* PIN guesses (each costing one Argon2id
//!   derivation). Offline guessing also needs the device secret.
//! - A single writer is assumed: the vault takes no inter-process lock; the
//!   app serializes access (`offpay-cli` holds an exclusive lock on the
//!   wallet directory while a command runs). Temporary files get unique
//!   names, so even unserialized writers never rename each other's files.

mod blob;
mod counter;
mod fs;
mod memory;
pub mod sealed;

use core::fmt;

use offpay_protocol::Suite;

/// A signing key held by a vault's hardware: it signs, it never leaves.
pub type DeviceKey = Box<dyn offpay_protocol::Signer>;

pub use blob::{BlobCrashPoint, BlobStore, DirStore, MemoryBlobStore};
pub use counter::{FileCounter, MemoryCounter, MonotonicCounter};
pub(crate) use fs::atomic_write as fs_atomic_write;
pub use fs::{FaultyFs, RealFs, SimulatedCrash, VaultFs};
pub use memory::{CrashPoint, MemorySnapshot, MemoryVault};
pub use sealed::{KdfParams, SealedFileVault, SealedVault};

/// Largest state (plaintext) a vault seals or unseals, in bytes (4 MiB).
pub const STATE_BYTES_MAX: usize = 4 << 20;

/// Consecutive wrong PINs after which [`SealedVault::open`] (and so
/// [`SealedFileVault::open`]) refuses
/// every PIN ([`VaultError::PinAttemptsExhausted`]) until an issuer-signed
/// unlock token is applied ([`crate::recovery`]).
pub const PIN_ATTEMPTS_MAX: u32 = 5;

/// A durable, atomic, rollback-detecting store for the TA's serialized state.
pub trait Vault {
    /// Open and return the latest committed state.
    ///
    /// `state` is `None` if the vault was created but nothing was committed
    /// yet. If the stored state is older than the monotonic counter (a
    /// restored old copy), the state is still returned together with
    /// `rollback: Some(..)`: the TA decides (it locks itself). If a previous
    /// commit was interrupted between writing the state and advancing the
    /// counter, `load` completes it (advances the counter).
    ///
    /// # Errors
    /// [`VaultError::Tampered`] if the sealed state fails authentication or
    /// is malformed, [`VaultError::Corrupt`] if the state and the counter
    /// disagree in a way no crash can produce, I/O errors, and
    /// [`VaultError::Crashed`] for a simulated dead process.
    fn load(&mut self) -> Result<Loaded, VaultError>;

    /// Durably and atomically replace the state.
    ///
    /// After `Ok`: a crash leaves the new state. After `Err`: reopening
    /// yields either the old or the new state, never a mix, never nothing.
    /// The new version is the counter value + 1; committing after a reported
    /// rollback therefore overwrites the rolled-back state with a newer
    /// version (this is how the TA persists its own "locked" flag), so the TA
    /// must [`load`](Vault::load) and act on [`Loaded::rollback`] first.
    ///
    /// # Errors
    /// [`VaultError::TooLarge`] if `state` is longer than
    /// [`STATE_BYTES_MAX`] (nothing is written), I/O errors,
    /// [`VaultError::Crashed`] for a simulated dead process, and the errors
    /// of [`Vault::load`] when the vault must first re-read its state after a
    /// previous failed commit.
    fn commit(&mut self, state: &[u8]) -> Result<(), VaultError>;

    /// The TA's signing key number `generation` (0 for the wallet's first
    /// key, +1 at each re-key) in `suite`, held by this vault's hardware
    /// (a PKCS#11 token: the secure-element stand-in), made first when
    /// `create` is set and it does not exist. The key never leaves the
    /// device; the TA signs through it.
    ///
    /// `Ok(None)`: this vault holds no keys, the TA keeps a software key
    /// (its seed sealed in the state). That is the default.
    ///
    /// # Errors
    /// The device's errors; a key that is absent when `create` is not set
    /// is [`VaultError::Corrupt`].
    fn device_key(
        &mut self,
        suite: Suite,
        generation: u32,
        create: bool,
    ) -> Result<Option<DeviceKey>, VaultError> {
        let _ = (suite, generation, create);
        Ok(None)
    }

    /// Destroy the device key `generation`: the TA calls it once a re-key's
    /// successor is certified and in use. The default does nothing.
    ///
    /// # Errors
    /// The device's errors (the TA ignores them: a key left behind signs
    /// nothing the issuer accepts after the switch).
    fn retire_device_key(&mut self, generation: u32) -> Result<(), VaultError> {
        let _ = generation;
        Ok(())
    }
}

/// The result of [`Vault::load`].
#[derive(Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The latest committed state, `None` if nothing was committed yet.
    pub state: Option<Vec<u8>>,
    /// The version of `state`: 0 for `None`, then +1 per commit.
    pub version: u64,
    /// `Some` if `state` is older than the monotonic counter: the stored
    /// state was rolled back (restored from an old copy).
    pub rollback: Option<RollbackDetected>,
}

impl fmt::Debug for Loaded {
    // The state holds keys: print only its length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loaded")
            .field("state_len", &self.state.as_ref().map(Vec::len))
            .field("version", &self.version)
            .field("rollback", &self.rollback)
            .finish()
    }
}

/// The stored state is older than the monotonic counter: it was rolled back.
/// The TA must lock itself until the backend has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RollbackDetected {
    /// Version found in the stored state.
    pub state_version: u64,
    /// Value of the monotonic counter (the version that should be there).
    pub counter: u64,
}

/// Errors of the vault and its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultError {
    /// An operating-system I/O operation failed.
    Io {
        /// The operation that failed (e.g. `"write"`, `"rename"`).
        op: &'static str,
        /// The OS error kind.
        kind: std::io::ErrorKind,
    },
    /// The sealed state failed authentication (AEAD) or is malformed: it was
    /// edited, truncated or replaced. The TA locks itself.
    Tampered,
    /// The PIN is wrong (or, for a vault created before the device check
    /// value existed, the device secret); this attempt was counted.
    WrongPin {
        /// Further wrong attempts allowed before the vault refuses every PIN.
        attempts_left: u32,
    },
    /// [`PIN_ATTEMPTS_MAX`] consecutive wrong PINs: every PIN is refused
    /// until the issuer's unlock token is applied ([`crate::recovery`]).
    PinAttemptsExhausted,
    /// The PIN attempt counter (`pin-attempts`) is missing or malformed: the
    /// vault cannot know how many guesses were made, so it refuses every PIN
    /// until the issuer's unlock token is applied ([`crate::recovery`]),
    /// which writes a fresh counter.
    PinAttemptsUnreadable,
    /// The device secret does not belong to this vault (the device check
    /// value differs): not a PIN guess, so no attempt was counted.
    WrongDeviceSecret,

    /// No vault exists in this directory.
    NotFound,
    /// A vault already exists in this directory.
    AlreadyExists,
    /// Stored data is inconsistent in a way no crash can produce (e.g. the
    /// state is more than one version ahead of the counter, a counter file
    /// is malformed or missing). Treat like [`VaultError::Tampered`].
    Corrupt(&'static str),
    /// A monotonic counter would go (or went) backwards.
    CounterRegressed,
    /// [`SealedVault::create`] was given a counter that is not at 0: a
    /// counter already used by another (or an earlier) wallet. The app makes
    /// one new counter per wallet; nothing was written.
    CounterNotFresh,
    /// The counter device (a TPM) refused an operation, answered something
    /// malformed, or is not reachable; nothing was advanced.
    CounterDevice {
        /// The operation (e.g. `"NV_Increment"`, `"connect"`).
        op: &'static str,
        /// Why, in words.
        reason: &'static str,
        /// The device's response code (0 when there is none).
        rc: u32,
    },
    /// The vault's key device (a PKCS#11 token holding the wallet's signing
    /// keys and the sealing key, offpay-hsm's `HsmVault`) refused an
    /// operation, answered something malformed, or is not reachable; nothing
    /// was committed.
    KeyDevice {
        /// The operation (e.g. `"encrypt"`, `"generate key"`).
        op: &'static str,
        /// Why, in words.
        reason: &'static str,
        /// The token's `CKR_*` value (0 when there is none).
        rc: u32,
    },
    /// The key device (a PKCS#11 token) refused the user PIN: the token
    /// counts wrong PINs itself. `locked`: it refuses every PIN
    /// (`CKR_PIN_LOCKED`) until its security officer unlocks it.
    TokenPinRefused {
        /// The token refuses every PIN.
        locked: bool,
        /// The token's `CKR_*` value.
        rc: u32,
    },
    /// Fault injection: the simulated process is dead; restart it
    /// ([`MemoryVault::restart`], or reopen a [`SealedFileVault`]).
    Crashed,
    /// The state is larger than [`STATE_BYTES_MAX`].
    TooLarge,
    /// Argon2id parameters out of the accepted range
    /// ([`KdfParams::validate`]).
    InvalidKdfParams,
    /// The key derivation failed (e.g. out of memory).
    Kdf,
    /// The operating system's random number generator failed.
    Rng,
}

impl fmt::Display for VaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, kind } => write!(f, "vault I/O error during {op}: {kind}"),
            Self::Tampered => f.write_str("sealed vault state failed authentication (tampered)"),
            Self::CounterDevice { op, reason, rc } => {
                write!(f, "counter device: {op} failed: {reason} (response code {rc:#x})")
            }
            Self::KeyDevice { op, reason, rc } => {
                write!(f, "key device: {op} failed: {reason} (CKR {rc:#x})")
            }
            Self::TokenPinRefused { locked: false, rc } => {
                write!(f, "the token refused the PIN (CKR {rc:#x}); the token counts the attempt")
            }
            Self::TokenPinRefused { locked: true, rc } => write!(
                f,
                "the token's PIN is locked (CKR {rc:#x}): its security officer must unlock it"
            ),
            Self::WrongPin { attempts_left } => {
                let s = if *attempts_left == 1 { "" } else { "s" };
                write!(f, "wrong PIN ({attempts_left} attempt{s} left)")
            }
            Self::PinAttemptsExhausted => f.write_str(
                "too many wrong PINs: the vault refuses every PIN until the issuer unlocks it",
            ),
            Self::PinAttemptsUnreadable => f.write_str(
                "the PIN attempt counter (pin-attempts) is missing or malformed: the vault refuses every PIN until the issuer unlocks it",
            ),
            Self::WrongDeviceSecret => f.write_str(
                "the device secret does not belong to this vault (it was changed or replaced); no PIN attempt was counted",
            ),

            Self::NotFound => f.write_str("no vault found"),
            Self::AlreadyExists => f.write_str("a vault already exists"),
            Self::Corrupt(what) => write!(f, "vault corrupt: {what}"),
            Self::CounterRegressed => f.write_str("monotonic counter would go backwards"),
            Self::CounterNotFresh => f.write_str(
                "the monotonic counter for a new vault is not fresh (not at 0): make one counter per wallet",
            ),
            Self::Crashed => f.write_str("simulated crash: the process is dead"),
            Self::TooLarge => write!(f, "state larger than {STATE_BYTES_MAX} bytes"),
            Self::InvalidKdfParams => f.write_str("Argon2id parameters out of range"),
            Self::Kdf => f.write_str("key derivation failed"),
            Self::Rng => f.write_str("random number generator failed"),
        }
    }
}

impl std::error::Error for VaultError {}

impl VaultError {
    /// Maps an I/O error of operation `op`; a [`SimulatedCrash`] becomes
    /// [`VaultError::Crashed`].
    pub(crate) fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> Self {
        move |e| {
            if e.get_ref()
                .is_some_and(|inner| inner.is::<SimulatedCrash>())
            {
                Self::Crashed
            } else {
                Self::Io { op, kind: e.kind() }
            }
        }
    }
}

/// The counter half of loading a vault that seals its state into one blob
/// ([`SealedVault`], `offpay_hsm::HsmVault`), once the blob was authenticated
/// at `version`: read the counter (absent: [`VaultError::Corrupt`]`(missing)`),
/// [`reconcile`] the two, finish an interrupted commit (advance the
/// counter), and return the loaded state with the version the next commit
/// builds on.
///
/// # Errors
/// The counter's, and [`reconcile`]'s.
pub fn load_against_counter<C: MonotonicCounter>(
    counter: &mut C,
    version: u64,
    plaintext: Vec<u8>,
    missing: &'static str,
) -> Result<(Loaded, u64), VaultError> {
    let value = counter.read().map_err(|e| match e {
        VaultError::NotFound => VaultError::Corrupt(missing),
        e => e,
    })?;
    let (rollback, advance) = reconcile(version, value)?;
    if advance {
        counter.advance_to(version)?;
    }
    let loaded = Loaded {
        state: (version != 0).then_some(plaintext),
        version,
        rollback,
    };
    Ok((loaded, version.max(value)))
}

/// The durable half of such a vault's commit, in the order the rollback
/// check relies on: replace the sealed blob, then advance the counter to
/// its `version` (a crash between the two is finished by the next load).
///
/// # Errors
/// The store's and the counter's; after an error the caller must reload
/// before the next commit (it does not know which of the two happened).
pub fn write_then_count<S: BlobStore, C: MonotonicCounter>(
    store: &mut S,
    counter: &mut C,
    blob: &str,
    sealed: &[u8],
    version: u64,
) -> Result<(), VaultError> {
    store.replace(blob, sealed)?;
    counter.advance_to(version)
}

/// Shared version/counter reconciliation of [`Vault::load`]: given the
/// authenticated version of the stored state and the counter value, decide
/// what to do. Returns the rollback report (if any) and whether the counter
/// must be advanced to `state_version` (interrupted commit).
///
/// Public so that a vault outside this crate (offpay-hsm's `HsmVault`)
/// follows exactly the rules of [`SealedVault`] (see
/// [`sealed`], "Commit protocol and recovery").
///
/// # Errors
/// [`VaultError::Corrupt`] when the state is more than one version ahead
/// of the counter.
pub fn reconcile(
    state_version: u64,
    counter: u64,
) -> Result<(Option<RollbackDetected>, bool), VaultError> {
    if state_version < counter {
        Ok((
            Some(RollbackDetected {
                state_version,
                counter,
            }),
            false,
        ))
    } else if state_version == counter {
        Ok((None, false))
    } else if Some(state_version) == counter.checked_add(1) {
        // Crash between "write state" and "advance counter": finish it.
        Ok((None, true))
    } else {
        // The counter is advanced right after every state write, so the
        // state can never honestly be two versions ahead: someone replaced
        // the counter file with an older one.
        Err(VaultError::Corrupt("state version ahead of the counter"))
    }
}

#[cfg(test)]
mod tests;
