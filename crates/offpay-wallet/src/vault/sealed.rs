//! The sealed vault: [`SealedVault`] over host-provided storage (a
//! [`BlobStore`] and a [`MonotonicCounter`]), and [`SealedFileVault`], the
//! same vault over a directory and a [`FileCounter`].
//!
//! # Blobs and files
//!
//! | name | blob of [`SealedVault`]? | content | written |
//! | --- | --- | --- | --- |
//! | `state.sealed` | yes | the sealed state (format below) | replaced at create and every commit |
//! | `pin-attempts` | yes | consecutive wrong PINs, plain u32 LE (4 bytes) | replaced at create and twice per right open (count, reset), once per wrong one |
//! | `device-check` | yes | 16 bytes, see "Device check" | replaced at create (and at the first right open of a vault from before it) |
//! | `counter` | no: the counter | the [`FileCounter`]: `b"OFPC"` + u64 LE | file vault only: atomically at create and after each state write |
//! | `recovery.sealed` | no | the PIN recovery record ([`crate::recovery`]) | file vault only: atomically, after enrollment and at each unlock request |
//!
//! A [`SealedVault`] writes its blobs in the same order and the same bytes
//! as the file vault writes its files, so a directory's `state.sealed`,
//! `pin-attempts` and `device-check`, copied into any blob store with the
//! counter's value, open as the same vault. Write order at create:
//! `pin-attempts`, `device-check`, (file vault: `counter` = 0),
//! `state.sealed`; at commit: `state.sealed`, then the counter.
//!
//! In the file vault, "atomically" = write `NAME.PID.N.tmp` (a name unique
//! to the process and the write), fsync it, rename it over `NAME`, fsync the
//! directory. A crash leaves `NAME` old or new, never partial; a stale
//! temporary file is ignored.
//!
//! **What the host must guarantee** for a [`SealedVault`]:
//!
//! - [`BlobStore::replace`] is durable and atomic: after `Ok` the new
//!   content survives power loss; after an error or a crash the blob holds
//!   the old or the new content, never a mix, never nothing (on a file
//!   system: the temporary file, fsync, rename, fsync of the directory
//!   above). [`BlobStore::read`] returns what the last replace left.
//! - The counter's [`advance_to`](MonotonicCounter::advance_to) is durable
//!   before it returns `Ok`; the counter never goes back; it lives apart
//!   from the blobs (a backup or an attacker who restores the blobs must
//!   not restore it); [`SealedVault::create`] gets a fresh one (0).
//! - One writer at a time (the SDK holds a lock per wallet).
//!
//! The store needs no secrecy or integrity of its own: every blob the vault
//! reads is authenticated or bounded (a lost or edited `pin-attempts` fails
//! closed, an edited `device-check` refuses the device secret, an edited or
//! restored `state.sealed` is [`VaultError::Tampered`] or a reported
//! rollback).
//!
//! # Sealed file format (`state.sealed`, format version 1)
//!
//! All integers little-endian. Offsets in bytes.
//!
//! | offset | length | field |
//! | ---: | ---: | --- |
//! | 0 | 4 | magic `b"OFPV"` |
//! | 4 | 1 | format version, `0x01` |
//! | 5 | 4 | Argon2id memory cost `m_kib` (u32, KiB) |
//! | 9 | 4 | Argon2id passes `t` (u32) |
//! | 13 | 4 | Argon2id lanes `p` (u32) |
//! | 17 | 16 | salt: random, drawn once at [`SealedVault::create`] |
//! | 33 | 16 | PIN check value: `SHA-256("offpay vault v1 pin check" ‖ key)[0..16]` |
//! | 49 | 8 | state version (u64): 0 = nothing committed, +1 per commit |
//! | 57 | 24 | XChaCha20-Poly1305 nonce: random, fresh for every write |
//! | 81 | n + 16 | ciphertext of the n-byte state, then the 16-byte Poly1305 tag |
//!
//! The 81-byte header (offsets 0..81) is the AEAD associated data: changing
//! any header byte (version, parameters, salt, check value, nonce) makes
//! authentication fail. Version 0 always seals the empty plaintext and means
//! "nothing committed" (`Loaded::state == None`); committed states have
//! version >= 1, so an empty committed state is `Some(vec![])`. A file shorter
//! than 97 bytes, longer than `81 + STATE_BYTES_MAX + 16` bytes, with another
//! magic or format version, or with Argon2id parameters outside
//! [`KdfParams::validate`] is malformed: [`VaultError::Tampered`].
//!
//! # Key
//!
//! `key = Argon2id(v0x13, password = PIN, salt = salt, secret = device
//! secret, m_kib, t, p) -> 32 bytes`, derived once at create/open and kept in
//! memory ([`Zeroizing`], wiped on drop). The PIN check value lets `open`
//! tell a wrong PIN ([`VaultError::WrongPin`], counted) from a file whose
//! ciphertext or nonce was edited ([`VaultError::Tampered`]). It gives an
//! attacker nothing the ciphertext does not already give: testing a PIN
//! guess either way costs one Argon2id derivation and needs the device
//! secret. Editing the salt, the parameters or the check value itself makes
//! `open` report `WrongPin` (they feed the key derivation or the check
//! before the AEAD is tried); on an open vault, [`Vault::load`] reports any
//! edit as `Tampered`.
//!
//! # Commit protocol and recovery
//!
//! `commit`: (1) write `state.sealed` with version `counter + 1`
//! atomically, (2) advance the counter to that version. On `load`, with `v`
//! the authenticated state version and `c` the counter:
//!
//! - `v < c`: a restored old state: returned with `rollback: Some(..)`;
//! - `v == c`: normal;
//! - `v == c + 1`: a crash between (1) and (2): the counter is advanced now;
//! - `v > c + 1`: impossible honestly (the counter is advanced right after
//!   every state write, and a failed commit makes the next operation
//!   re-read and repair first): someone restored an old counter file:
//!   [`VaultError::Corrupt`].
//!
//! # PIN attempts
//!
//! `open` increments `pin-attempts` durably *before* deriving the key, so
//! killing the process during the slow derivation does not give a free
//! guess, and resets it to 0 after a right PIN. On a software vault this
//! file is honest bookkeeping, not a security boundary: the attacker can
//! reset it (a hardware vault would keep it in the TPM / secure element). A
//! missing or malformed `pin-attempts` fails closed with its own error
//! ([`VaultError::PinAttemptsUnreadable`]); both it and an exhausted count
//! are cleared only by an issuer-signed unlock token ([`crate::recovery`]).
//!
//! # Device check
//!
//! `device-check` (16 bytes) is `SHA-256("offpay vault v1 device check" ‖
//! device secret)[0..16]`, written at create. `open` compares it
//! before counting an attempt: a changed device secret is
//! [`VaultError::WrongDeviceSecret`], never a counted wrong PIN. A vault
//! created before this file existed gets it at its next right open.

use core::fmt;
use std::path::Path;
use std::sync::Arc;

use argon2::{Algorithm, Argon2, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use offpay_protocol::entropy::{Entropy, OsEntropy, SharedEntropy};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::blob::{BlobStore, DirStore, read_optional};
use super::counter::{FileCounter, MonotonicCounter};
use super::fs::{RealFs, VaultFs, atomic_write};
use super::{
    Loaded, PIN_ATTEMPTS_MAX, STATE_BYTES_MAX, Vault, VaultError, load_against_counter,
    write_then_count,
};

const MAGIC: &[u8; 4] = b"OFPV";
const FORMAT_VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const CHECK_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_LEN: usize = 32;
/// Header length: magic 4 + format 1 + KDF 12 + salt 16 + check 16 +
/// version 8 + nonce 24.
const HEADER_LEN: usize = 4 + 1 + 12 + SALT_LEN + CHECK_LEN + 8 + NONCE_LEN;
/// Largest well-formed sealed file.
const SEALED_LEN_MAX: usize = HEADER_LEN + STATE_BYTES_MAX + TAG_LEN;
const CHECK_LABEL: &[u8] = b"offpay vault v1 pin check";
const DEVICE_CHECK_LABEL: &[u8] = b"offpay vault v1 device check";
const DEVICE_KEY_LABEL: &[u8] = b"offpay vault v1 device key";

const STATE_FILE: &str = "state.sealed";
const COUNTER_FILE: &str = "counter";
const ATTEMPTS_FILE: &str = "pin-attempts";
const DEVICE_CHECK_FILE: &str = "device-check";
/// Length of the `device-check` file.
const DEVICE_CHECK_LEN: usize = 16;

/// Argon2id cost parameters, stored in the sealed file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_kib: u32,
    /// Number of passes (time cost).
    pub t: u32,
    /// Degree of parallelism (lanes).
    pub p: u32,
}

impl KdfParams {
    /// OWASP's recommended minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    pub const INTERACTIVE: Self = Self {
        m_kib: 19_456,
        t: 2,
        p: 1,
    };

    /// Fast, **insecure** parameters for tests (64 KiB, 1 pass, 1 lane).
    /// Never use them in production: they make PIN guessing almost free for
    /// anyone holding the device secret.
    pub const TEST: Self = Self {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    /// Largest accepted memory cost (1 GiB). Parameters come from an
    /// attacker-editable header, so they are bounded before use.
    pub const M_KIB_MAX: u32 = 1 << 20;
    /// Largest accepted number of passes.
    pub const T_MAX: u32 = 16;
    /// Largest accepted number of lanes.
    pub const P_MAX: u32 = 16;

    /// Check the parameters: `1 <= p <= P_MAX`, `1 <= t <= T_MAX`,
    /// `8 * p <= m_kib <= M_KIB_MAX`.
    ///
    /// # Errors
    /// [`VaultError::InvalidKdfParams`] otherwise.
    pub fn validate(&self) -> Result<(), VaultError> {
        let ok = (1..=Self::P_MAX).contains(&self.p)
            && (1..=Self::T_MAX).contains(&self.t)
            && self.m_kib >= 8 * self.p
            && self.m_kib <= Self::M_KIB_MAX;
        if ok {
            Ok(())
        } else {
            Err(VaultError::InvalidKdfParams)
        }
    }
}

/// The parsed header of a sealed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    check: [u8; CHECK_LEN],
    version: u64,
    nonce: [u8; NONCE_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer {
            buf: &mut out,
            pos: 0,
        };
        w.put(MAGIC);
        w.put(&[FORMAT_VERSION]);
        w.put(&self.kdf.m_kib.to_le_bytes());
        w.put(&self.kdf.t.to_le_bytes());
        w.put(&self.kdf.p.to_le_bytes());
        w.put(&self.salt);
        w.put(&self.check);
        w.put(&self.version.to_le_bytes());
        w.put(&self.nonce);
        out
    }

    /// Parse a whole sealed file: the header and the ciphertext (with tag).
    fn parse(file: &[u8]) -> Result<(Self, &[u8], &[u8]), VaultError> {
        if file.len() < HEADER_LEN + TAG_LEN || file.len() > SEALED_LEN_MAX {
            return Err(VaultError::Tampered);
        }
        let (aad, ciphertext) = file
            .split_at_checked(HEADER_LEN)
            .ok_or(VaultError::Tampered)?;
        let mut r = Reader { buf: aad };
        if r.take::<4>()? != *MAGIC || r.take::<1>()? != [FORMAT_VERSION] {
            return Err(VaultError::Tampered);
        }
        let kdf = KdfParams {
            m_kib: u32::from_le_bytes(r.take()?),
            t: u32::from_le_bytes(r.take()?),
            p: u32::from_le_bytes(r.take()?),
        };
        kdf.validate().map_err(|_| VaultError::Tampered)?;
        let header = Self {
            kdf,
            salt: r.take()?,
            check: r.take()?,
            version: u64::from_le_bytes(r.take()?),
            nonce: r.take()?,
        };
        Ok((header, aad, ciphertext))
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
        }
        self.pos = end;
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], VaultError> {
        let (head, rest) = self.buf.split_at_checked(N).ok_or(VaultError::Tampered)?;
        self.buf = rest;
        head.try_into().map_err(|_| VaultError::Tampered)
    }
}

/// Argon2id(password = `pin`, `salt`, secret = `device_secret`) -> 32 bytes.
pub(super) fn derive_key(
    pin: &[u8],
    device_secret: &[u8; 32],
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    kdf.validate()?;
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(KEY_LEN))
        .map_err(|_| VaultError::InvalidKdfParams)?;
    let argon = Argon2::new_with_secret(device_secret, Algorithm::Argon2id, Version::V0x13, params)
        .map_err(|_| VaultError::Kdf)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    argon
        .hash_password_into(pin, salt, key.as_mut_slice())
        .map_err(|_| VaultError::Kdf)?;
    Ok(key)
}

fn check_value(key: &[u8; KEY_LEN]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECK_LABEL)
        .chain_update(key)
        .finalize();
    let mut out = [0u8; CHECK_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// `SHA-256("offpay vault v1 device check" ‖ device secret)[0..16]`: lets
/// `open` tell a wrong device secret from a wrong PIN without counting an
/// attempt. The device secret is 32 random bytes, so this value gives no
/// guessing foothold, and it says nothing about the PIN. (Not salted: an
/// edited header salt must still read as a wrong key, not a wrong device.)
fn device_check_value(device_secret: &[u8; 32]) -> [u8; DEVICE_CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(DEVICE_CHECK_LABEL)
        .chain_update(device_secret)
        .finalize();
    let mut out = [0u8; DEVICE_CHECK_LEN];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// `SHA-256("offpay vault v1 device key" ‖ device secret)`: the key of what
/// the vault keeps under the device secret alone (the PIN recovery record,
/// [`crate::recovery`]).
pub(crate) fn device_key(device_secret: &[u8; 32]) -> Zeroizing<[u8; KEY_LEN]> {
    let digest = Sha256::new()
        .chain_update(DEVICE_KEY_LABEL)
        .chain_update(device_secret)
        .finalize();
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}

/// Equality without an early exit.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random<const N: usize>(e: &dyn Entropy) -> Result<[u8; N], VaultError> {
    offpay_protocol::entropy::random(e).map_err(|_| VaultError::Rng)
}

fn cipher(key: &[u8; KEY_LEN]) -> Result<XChaCha20Poly1305, VaultError> {
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| VaultError::Kdf)
}

/// The sealed vault over host-provided storage: the state sealed with
/// XChaCha20-Poly1305 under a key derived with Argon2id from the user PIN and
/// a device secret, kept in a [`BlobStore`] (`state.sealed`, `pin-attempts`,
/// `device-check`, byte for byte the formats of the
/// [module documentation](self)), with a [`MonotonicCounter`] kept apart for
/// rollback detection.
///
/// This is the one sealing and commit implementation: [`SealedFileVault`] is
/// a `SealedVault` over a directory and a [`FileCounter`]. An app embedding
/// the wallet (the SDK) gives it its files directory as the store and a
/// hardware-backed counter (Android KeyMint/StrongBox, the iOS Keychain or
/// Secure Enclave) as the counter: then a restored old `state.sealed` is
/// detected even by an attacker who owns the OS and the files.
///
/// What the host must guarantee: [`BlobStore::replace`] is durable and
/// atomic (write a temporary file, fsync it, rename it over, fsync the
/// directory); [`MonotonicCounter::advance_to`] is durable before it returns
/// `Ok` and the counter never goes back; one counter per wallet, fresh (0) at
/// [`create`](SealedVault::create); one writer at a time.
///
/// While a handle is in sync (after a successful `load` or `commit`),
/// `commit` does not re-read `state.sealed`: the TA's memory is
/// authoritative, so a blob edited or restored behind the running vault's
/// back is simply replaced by the next commit (and reported by the next
/// `load` before that). After `open` or a failed commit, `commit` first
/// re-reads, authenticates and reconciles the stored state with the counter
/// (completing an interrupted commit) so that no version number is ever
/// sealed twice.
pub struct SealedVault<S: BlobStore, C: MonotonicCounter> {
    store: S,
    counter: C,
    key: Zeroizing<[u8; KEY_LEN]>,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    check: [u8; CHECK_LEN],
    /// When `synced`: the version of the stored state, equal to the counter
    /// (or the counter itself if the stored state was rolled back).
    version: u64,
    /// Where the salt and the sealing nonces come from.
    entropy: SharedEntropy,
    /// `false` after open and after a failed commit: the store must be
    /// re-read (and an interrupted commit completed) before the next commit.
    synced: bool,
}

impl<S: BlobStore, C: MonotonicCounter> fmt::Debug for SealedVault<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedVault")
            .field("store", &self.store)
            .field("kdf", &self.kdf)
            .field("version", &self.version)
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

impl<S: BlobStore, C: MonotonicCounter> SealedVault<S, C> {
    /// Create a new vault in `store` with the fresh `counter`: draws a random
    /// salt from `entropy`, derives the key from `pin` and `device_secret`
    /// with `kdf`, and writes the blobs `pin-attempts` (0), `device-check`
    /// and `state.sealed` (version 0, nothing committed), in that order, each
    /// by one [`BlobStore::replace`]. The vault exists once `state.sealed`
    /// does; a create interrupted before that can simply be repeated (the
    /// counter is not written at create).
    ///
    /// # Errors
    /// [`VaultError::InvalidKdfParams`]; [`VaultError::AlreadyExists`] if
    /// `state.sealed` exists; [`VaultError::CounterNotFresh`] if
    /// `counter.read()` is not 0 (one counter per wallet: a used one would
    /// make the new vault look rolled back, or let an old state pass);
    /// [`VaultError::Kdf`], [`VaultError::Rng`], the store's and the
    /// counter's errors. Nothing is written before these checks pass.
    pub fn create(
        mut store: S,
        mut counter: C,
        pin: &[u8],
        device_secret: &[u8; 32],
        kdf: KdfParams,
        entropy: SharedEntropy,
    ) -> Result<Self, VaultError> {
        Self::check_new(&mut store, kdf)?;
        if counter.read()? != 0 {
            return Err(VaultError::CounterNotFresh);
        }
        Self::create_with(store, counter, pin, device_secret, kdf, entropy, |_| Ok(()))
    }

    /// The checks of create before anything is written: valid parameters,
    /// no vault in `store` yet.
    fn check_new(store: &mut S, kdf: KdfParams) -> Result<(), VaultError> {
        kdf.validate()?;
        if store.read(STATE_FILE, SEALED_LEN_MAX)?.is_some() {
            return Err(VaultError::AlreadyExists);
        }
        Ok(())
    }

    /// The create protocol after [`SealedVault::check_new`]; `init_counter`
    /// runs between the `device-check` and the `state.sealed` writes.
    fn create_with(
        mut store: S,
        mut counter: C,
        pin: &[u8],
        device_secret: &[u8; 32],
        kdf: KdfParams,
        entropy: SharedEntropy,
        init_counter: impl FnOnce(&mut C) -> Result<(), VaultError>,
    ) -> Result<Self, VaultError> {
        let salt = random::<SALT_LEN>(entropy.as_ref())?;
        let key = derive_key(pin, device_secret, kdf, &salt)?;
        let check = check_value(&key);
        store.replace(ATTEMPTS_FILE, &0u32.to_le_bytes())?;
        store.replace(DEVICE_CHECK_FILE, &device_check_value(device_secret))?;
        init_counter(&mut counter)?;
        let mut vault = Self {
            store,
            counter,
            key,
            kdf,
            salt,
            check,
            version: 0,
            synced: false,
            entropy,
        };
        let sealed = vault.seal(0, &[])?;
        vault.store.replace(STATE_FILE, &sealed)?;
        vault.synced = true;
        Ok(vault)
    }

    /// Open the vault in `store` with `counter`, `pin` and `device_secret`;
    /// later commits draw their sealing nonces from `entropy`.
    ///
    /// Checks the device secret (`device-check`, not counted as a PIN
    /// guess), counts the attempt in `pin-attempts` first, derives the key
    /// with the parameters and salt of the stored header, checks it (PIN
    /// check value) and unseals the stored state. A right PIN resets the
    /// count. The counter is not read here: [`Vault::load`] reconciles.
    ///
    /// # Errors
    /// [`VaultError::NotFound`] if there is no `state.sealed`;
    /// [`VaultError::PinAttemptsExhausted`] after [`PIN_ATTEMPTS_MAX`]
    /// consecutive failures (even for the right PIN, until an issuer unlock
    /// token is applied, [`crate::recovery`]);
    /// [`VaultError::WrongDeviceSecret`] for a device secret that does not
    /// belong to this vault (not counted); [`VaultError::PinAttemptsUnreadable`]
    /// if `pin-attempts` is missing or malformed;
    /// [`VaultError::WrongPin`] for a wrong PIN (counted);
    /// [`VaultError::Tampered`] if `state.sealed` is malformed or fails
    /// authentication under the right key; the store's and KDF errors.
    pub fn open(
        mut store: S,
        counter: C,
        pin: &[u8],
        device_secret: &[u8; 32],
        entropy: SharedEntropy,
    ) -> Result<Self, VaultError> {
        let file = store
            .read(STATE_FILE, SEALED_LEN_MAX)?
            .ok_or(VaultError::NotFound)?;
        let (header, _, _) = Header::parse(&file)?;

        // The device secret first: a wrong one is not a PIN guess.
        let device_check = device_check_value(device_secret);
        // None: a vault from before the device check, written after a right open.
        let device_check_stored = store.read(DEVICE_CHECK_FILE, DEVICE_CHECK_LEN)?;
        match &device_check_stored {
            Some(stored) if stored.len() != DEVICE_CHECK_LEN => {
                return Err(VaultError::Corrupt("device-check file malformed"));
            }
            Some(stored) if !ct_eq(stored, &device_check) => {
                return Err(VaultError::WrongDeviceSecret);
            }
            Some(_) | None => {}
        }

        let attempts = parse_attempts(store.read(ATTEMPTS_FILE, 4)?)?;
        if attempts >= PIN_ATTEMPTS_MAX {
            return Err(VaultError::PinAttemptsExhausted);
        }
        let attempts = attempts + 1;
        store.replace(ATTEMPTS_FILE, &attempts.to_le_bytes())?;

        let key = derive_key(pin, device_secret, header.kdf, &header.salt)?;
        if !ct_eq(&check_value(&key), &header.check) {
            return Err(VaultError::WrongPin {
                attempts_left: PIN_ATTEMPTS_MAX - attempts,
            });
        }
        store.replace(ATTEMPTS_FILE, &0u32.to_le_bytes())?;
        if device_check_stored.is_none() {
            store.replace(DEVICE_CHECK_FILE, &device_check)?;
        }

        let vault = Self {
            store,
            counter,
            key,
            kdf: header.kdf,
            salt: header.salt,
            check: header.check,
            version: header.version,
            synced: false,
            entropy,
        };
        // Right key: the state must authenticate.
        vault.unseal(&file)?;
        Ok(vault)
    }

    /// The Argon2id parameters of this vault.
    #[must_use]
    pub fn kdf_params(&self) -> KdfParams {
        self.kdf
    }

    /// Draw the sealing nonces of later commits from `entropy`.
    pub fn set_entropy(&mut self, entropy: SharedEntropy) {
        self.entropy = entropy;
    }

    /// The blob store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The monotonic counter.
    #[must_use]
    pub fn counter(&self) -> &C {
        &self.counter
    }

    /// The store and the counter back (the key is wiped).
    #[must_use]
    pub fn into_parts(self) -> (S, C) {
        (self.store, self.counter)
    }

    fn seal(&self, version: u64, state: &[u8]) -> Result<Vec<u8>, VaultError> {
        if state.len() > STATE_BYTES_MAX {
            return Err(VaultError::TooLarge);
        }
        let header = Header {
            kdf: self.kdf,
            salt: self.salt,
            check: self.check,
            version,
            nonce: random::<NONCE_LEN>(self.entropy.as_ref())?,
        };
        let aad = header.encode();
        let ciphertext = cipher(&self.key)?
            .encrypt(
                &XNonce::from(header.nonce),
                Payload {
                    msg: state,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::TooLarge)?;
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.extend_from_slice(&aad);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Authenticate and decrypt a whole sealed file: (version, plaintext).
    fn unseal(&self, file: &[u8]) -> Result<(u64, Vec<u8>), VaultError> {
        let (header, aad, ciphertext) = Header::parse(file)?;
        let plaintext = cipher(&self.key)?
            .decrypt(
                &XNonce::from(header.nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Tampered)?;
        if header.version == 0 && !plaintext.is_empty() {
            // Authentic but never written by this code.
            return Err(VaultError::Corrupt("state version 0 is not empty"));
        }
        Ok((header.version, plaintext))
    }

    /// Read and unseal the stored state, reconcile it with the counter
    /// (completing an interrupted commit), and remember where we are.
    fn sync(&mut self) -> Result<Loaded, VaultError> {
        // The vault was opened, so the blob was there: someone removed it.
        let file = self
            .store
            .read(STATE_FILE, SEALED_LEN_MAX)?
            .ok_or(VaultError::Tampered)?;
        let (version, plaintext) = self.unseal(&file)?;
        let (loaded, next) = load_against_counter(
            &mut self.counter,
            version,
            plaintext,
            "counter file missing",
        )?;
        self.version = next;
        self.synced = true;
        Ok(loaded)
    }
}

impl<S: BlobStore, C: MonotonicCounter> Vault for SealedVault<S, C> {
    fn load(&mut self) -> Result<Loaded, VaultError> {
        self.sync()
    }

    fn commit(&mut self, state: &[u8]) -> Result<(), VaultError> {
        if state.len() > STATE_BYTES_MAX {
            return Err(VaultError::TooLarge);
        }
        if !self.synced {
            self.sync()?;
        }
        let version = self
            .version
            .checked_add(1)
            .ok_or(VaultError::Corrupt("version overflow"))?;
        let sealed = self.seal(version, state)?;
        // Until both steps succeed we do not know what the store holds.
        self.synced = false;
        write_then_count(
            &mut self.store,
            &mut self.counter,
            STATE_FILE,
            &sealed,
            version,
        )?;
        self.version = version;
        self.synced = true;
        Ok(())
    }
}

/// The software sealed vault: a [`SealedVault`] over a directory (every
/// blob a file, replaced atomically) with a [`FileCounter`] in the file
/// `counter`.
///
/// The file format and protocol are documented byte by byte in the
/// [module documentation](self); in short: `OFPV`, format version `1`,
/// `m_kib`, `t`, `p` (u32 LE each), 16-byte salt, 16-byte PIN check value,
/// state version (u64 LE), 24-byte nonce, ciphertext ‖ 16-byte tag; the
/// 81-byte header is the AEAD associated data.
///
/// The directory must exist; one process at a time (no file lock). The
/// commit and re-read rules are [`SealedVault`]'s.
pub struct SealedFileVault {
    inner: SealedVault<DirStore, FileCounter>,
}

impl fmt::Debug for SealedFileVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedFileVault")
            .field("dir", &self.inner.store.dir)
            .field("kdf", &self.inner.kdf)
            .field("version", &self.inner.version)
            .field("synced", &self.inner.synced)
            .finish_non_exhaustive()
    }
}

impl SealedFileVault {
    /// Create a new vault in the existing directory `dir`: draws a random
    /// salt, derives the key from `pin` and `device_secret` with `kdf`, and
    /// writes `pin-attempts` (0), `device-check`, `counter` (0) and
    /// `state.sealed` (version 0, nothing committed), in that order, each
    /// atomically. The vault exists once `state.sealed` does; a create
    /// interrupted before that can simply be repeated.
    ///
    /// # Errors
    /// [`VaultError::AlreadyExists`] if `state.sealed` exists,
    /// [`VaultError::InvalidKdfParams`], [`VaultError::Kdf`],
    /// [`VaultError::Rng`], I/O errors.
    pub fn create(
        dir: &Path,
        pin: &[u8],
        device_secret: &[u8; 32],
        kdf: KdfParams,
    ) -> Result<Self, VaultError> {
        Self::create_with_fs(dir, pin, device_secret, kdf, Box::new(RealFs))
    }

    /// [`SealedFileVault::create`] through the given file system (fault
    /// injection).
    ///
    /// # Errors
    /// As [`SealedFileVault::create`].
    pub fn create_with_fs(
        dir: &Path,
        pin: &[u8],
        device_secret: &[u8; 32],
        kdf: KdfParams,
        fs: Box<dyn VaultFs>,
    ) -> Result<Self, VaultError> {
        Self::create_with_entropy(dir, pin, device_secret, kdf, fs, OsEntropy::shared())
    }

    /// [`SealedFileVault::create_with_fs`] drawing the salt and every sealing
    /// nonce from `entropy` (the simulator and tests use a seeded one).
    ///
    /// # Errors
    /// As [`SealedFileVault::create`].
    pub fn create_with_entropy(
        dir: &Path,
        pin: &[u8],
        device_secret: &[u8; 32],
        kdf: KdfParams,
        fs: Box<dyn VaultFs>,
        entropy: SharedEntropy,
    ) -> Result<Self, VaultError> {
        let fs: Arc<dyn VaultFs> = Arc::from(fs);
        let mut store = DirStore {
            dir: dir.to_path_buf(),
            fs: Arc::clone(&fs),
        };
        SealedVault::<DirStore, FileCounter>::check_new(&mut store, kdf)?;
        let counter_path = dir.join(COUNTER_FILE);
        let counter = FileCounter::unchecked(&counter_path, Arc::clone(&fs), 0);
        // A counter file left by an interrupted create (or by a vault whose
        // state.sealed was removed) is replaced by a fresh one, at the same
        // point of the write order as always.
        let inner =
            SealedVault::create_with(store, counter, pin, device_secret, kdf, entropy, |c| {
                *c = FileCounter::init_with_fs(&counter_path, fs)?;
                Ok(())
            })?;
        Ok(Self { inner })
    }

    /// Open the vault in `dir` with `pin` and `device_secret`.
    ///
    /// Counts the attempt in `pin-attempts` first, derives the key with the
    /// parameters and salt of the stored header, checks it (PIN check value)
    /// and unseals the stored state. A right PIN resets the count.
    ///
    /// # Errors
    /// As [`SealedVault::open`]: [`VaultError::NotFound`] if there is no
    /// `state.sealed`; [`VaultError::PinAttemptsExhausted`],
    /// [`VaultError::WrongDeviceSecret`] (not counted),
    /// [`VaultError::PinAttemptsUnreadable`], [`VaultError::WrongPin`]
    /// (counted), [`VaultError::Tampered`]; I/O and KDF errors.
    pub fn open(dir: &Path, pin: &[u8], device_secret: &[u8; 32]) -> Result<Self, VaultError> {
        Self::open_with_fs(dir, pin, device_secret, Box::new(RealFs))
    }

    /// [`SealedFileVault::open`] through the given file system (fault
    /// injection).
    ///
    /// # Errors
    /// As [`SealedFileVault::open`].
    pub fn open_with_fs(
        dir: &Path,
        pin: &[u8],
        device_secret: &[u8; 32],
        fs: Box<dyn VaultFs>,
    ) -> Result<Self, VaultError> {
        let fs: Arc<dyn VaultFs> = Arc::from(fs);
        let counter = FileCounter::unchecked(&dir.join(COUNTER_FILE), Arc::clone(&fs), 0);
        let store = DirStore {
            dir: dir.to_path_buf(),
            fs,
        };
        let inner = SealedVault::open(store, counter, pin, device_secret, OsEntropy::shared())?;
        Ok(Self { inner })
    }

    /// Reset the consecutive wrong-PIN count of the vault in `dir` to 0.
    /// Not public: only [`crate::recovery`] calls it, after verifying an
    /// issuer-signed unlock token bound to this wallet, this count and the
    /// vault's own fresh nonce.
    pub(crate) fn reset_pin_attempts(dir: &Path) -> Result<(), VaultError> {
        atomic_write(&RealFs, &dir.join(ATTEMPTS_FILE), &0u32.to_le_bytes())
    }

    /// The same vault doing its file operations through `fs` from now on
    /// (fault injection). The state and counter paths are unchanged.
    #[must_use]
    pub fn with_fs(mut self, fs: Box<dyn VaultFs>) -> Self {
        let fs: Arc<dyn VaultFs> = Arc::from(fs);
        self.inner.counter = self.inner.counter.rebind(Arc::clone(&fs));
        self.inner.store.fs = fs;
        self
    }

    /// The vault directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.store.dir
    }

    /// The Argon2id parameters of this vault.
    #[must_use]
    pub fn kdf_params(&self) -> KdfParams {
        self.inner.kdf_params()
    }

    /// Draw the sealing nonces of later commits from `entropy` (an opened
    /// vault starts on the operating system's source).
    pub fn set_entropy(&mut self, entropy: SharedEntropy) {
        self.inner.set_entropy(entropy);
    }
}

/// Consecutive wrong PINs in a `pin-attempts` blob. A missing or malformed
/// blob fails closed, as its own error ([`VaultError::PinAttemptsUnreadable`]).
fn parse_attempts(bytes: Option<Vec<u8>>) -> Result<u32, VaultError> {
    let bytes = bytes.ok_or(VaultError::PinAttemptsUnreadable)?;
    <[u8; 4]>::try_from(bytes.as_slice())
        .map(u32::from_le_bytes)
        .map_err(|_| VaultError::PinAttemptsUnreadable)
}

/// Consecutive wrong PINs so far in the vault directory `dir`. A missing or
/// malformed file fails closed, as its own error
/// ([`VaultError::PinAttemptsUnreadable`]).
pub(crate) fn read_attempts(fs: &dyn VaultFs, dir: &Path) -> Result<u32, VaultError> {
    parse_attempts(read_optional(
        fs,
        &dir.join(ATTEMPTS_FILE),
        4,
        "read pin attempts",
    )?)
}

impl Vault for SealedFileVault {
    fn load(&mut self) -> Result<Loaded, VaultError> {
        self.inner.load()
    }

    fn commit(&mut self, state: &[u8]) -> Result<(), VaultError> {
        self.inner.commit(state)
    }
}
