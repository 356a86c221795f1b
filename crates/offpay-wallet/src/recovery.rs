//! The way back from a PIN lockout: the one thing a PIN-locked vault can do.
//!
//! After [`PIN_ATTEMPTS_MAX`](crate::vault::PIN_ATTEMPTS_MAX) wrong PINs (or a
//! lost `pin-attempts` file) the sealed vault refuses every PIN, so the TA
//! cannot open and cannot sync. Recovery goes through the issuer, and only
//! after the customer re-authenticated with the bank:
//!
//! 1. While the vault is open (after enrollment) the TA grants an **unlock
//!    key** ([`Wallet::pin_recovery`](crate::Wallet::pin_recovery)): an
//!    Ed25519 key derived from the wallet key's seed, named in a
//!    [`PinUnlockGrant`] signed by the wallet key. The grant, the unlock key
//!    and the issuer CA public key are kept in `recovery.sealed`, sealed
//!    under the device secret alone ([`save`]).
//! 2. Locked, the vault signs with the unlock key a [`PinLockedRequest`]
//!    carrying the wallet id, its attempt count and a fresh nonce it
//!    remembers ([`locked_request`]). The unlock key signs nothing else, and
//!    the issuer accepts it for nothing else: it cannot pay.
//! 3. The issuer verifies the grant against the wallet's certificate and the
//!    request against the granted key, records it, and answers with a
//!    [`PinUnlock`] signed by the issuer CA key, bound to that wallet, that
//!    attempt count and that nonce, only once its operator approved it
//!    (`offpay admin unlock-pin WALLET`, after the customer re-authenticated).
//! 4. The vault verifies the unlock ([`apply_unlock`]) and resets the count.
//!
//! The app can never reset the count alone: the count is reset only here,
//! after an issuer signature over this vault's own nonce. What the software
//! vault cannot stop (docs/THREAT-MODEL.md): an attacker who owns the OS can
//! edit `pin-attempts` or `recovery.sealed` directly; a hardware vault keeps
//! the count, the nonce and the issuer key inside the secure element.
//!
//! # `recovery.sealed`
//!
//! `b"OFPR"`, format `0x01`, a 24-byte random nonce, then the
//! XChaCha20-Poly1305 ciphertext (and tag) of a deterministic CBOR map with
//! the first 29 bytes as associated data: 1 wallet id (16 bytes), 2 unlock
//! key seed (32), 3 grant envelope, 4 issuer key suite (COSE alg), 5 issuer
//! public key, 6 pending nonce (16, optional). Key:
//! `SHA-256("offpay vault v1 device key" ‖ device secret)`.

use core::fmt;
use std::io;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use offpay_protocol::cbor::{DecodeError, Decoder, Encoder};
use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{
    PIN_ATTEMPTS_FIELD_MAX, PIN_UNLOCK_GRANT_BYTES_MAX, PinLockedRequest, PinUnlock, PinUnlockGrant,
};
use offpay_protocol::{Nonce, PublicKey, SigningKey, Suite, UnixSeconds, WalletId};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::vault::sealed::{device_key, read_attempts};
use crate::vault::{PIN_ATTEMPTS_MAX, RealFs, SealedFileVault, VaultError, VaultFs};

/// The recovery record's file in the vault directory.
pub const RECOVERY_FILE: &str = "recovery.sealed";
const MAGIC: &[u8; 4] = b"OFPR";
const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 4 + 1 + NONCE_LEN;
/// Largest recovery file read: the header, the AEAD tag and a record with
/// the largest grant (an ML-DSA-44 wallet key's) and issuer key (an
/// ML-DSA-44 CA's), with room for the map's keys and lengths.
const RECOVERY_BYTES_MAX: usize = HEADER_LEN
    + 16
    + 128
    + offpay_protocol::messages::PIN_UNLOCK_GRANT_BYTES_MAX
    + offpay_protocol::suite::PUBLIC_KEY_BYTES_MAX;
/// Label of the unlock key's derivation from the wallet key's seed.
const UNLOCK_KEY_LABEL: &[u8] = b"offpay pin unlock key v1";

/// What a vault keeps outside the PIN so that, PIN-locked, it can still ask
/// the issuer to unlock it. Made by [`Wallet::pin_recovery`](crate::Wallet::pin_recovery).
pub struct PinRecovery {
    /// The wallet.
    pub wallet: WalletId,
    /// The unlock key's Ed25519 seed.
    pub unlock_seed: Zeroizing<[u8; 32]>,
    /// The wallet key's [`PinUnlockGrant`] envelope naming the unlock key.
    pub grant: Vec<u8>,
    /// The issuer CA key that signs unlocks.
    pub issuer_key: PublicKey,
    /// The nonce of the request sent and not yet answered.
    pub pending: Option<Nonce>,
}

impl fmt::Debug for PinRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinRecovery")
            .field("wallet", &self.wallet)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

/// The unlock key for a wallet key seed:
/// Ed25519 seed `SHA-256("offpay pin unlock key v1" ‖ wallet seed)`.
pub(crate) fn unlock_key(wallet_seed: &[u8; 32]) -> Result<SigningKey, VaultError> {
    let digest = Sha256::new()
        .chain_update(UNLOCK_KEY_LABEL)
        .chain_update(wallet_seed)
        .finalize();
    let mut seed = Zeroizing::new([0u8; 32]);
    seed.copy_from_slice(&digest);
    SigningKey::from_seed(Suite::Ed25519, &seed).map_err(|_| VaultError::Kdf)
}

/// Why a recovery step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The vault is not PIN-locked: open it with the PIN.
    NotLocked {
        /// Wrong PINs so far.
        attempts: u32,
    },
    /// No recovery record: the wallet was never opened since it learned the
    /// issuer (a wallet from before PIN recovery existed).
    NoRecord,
    /// The unlock has no request waiting for it (already applied, or never asked).
    NoPendingRequest,
    /// The unlock's signature is not the issuer's.
    BadSignature,
    /// The unlock is for another wallet, another request or another count.
    Mismatch(&'static str),
    /// The bytes are not a PinUnlock.
    Malformed(DecodeError),
    /// The vault's files.
    Vault(VaultError),
}

impl fmt::Display for RecoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotLocked { attempts } => write!(
                f,
                "the wallet is not PIN-locked ({attempts} of {PIN_ATTEMPTS_MAX} wrong PINs so far): open it with the PIN"
            ),
            Self::NoRecord => f.write_str(
                "this vault holds no PIN recovery record (it has not been opened since enrollment with this version); it cannot ask the issuer for an unlock",
            ),
            Self::NoPendingRequest => {
                f.write_str("no unlock request is waiting: ask for one first")
            }
            Self::BadSignature => f.write_str("the unlock is not signed by this wallet's issuer"),
            Self::Mismatch(what) => write!(f, "the unlock does not answer this vault's request: {what}"),
            Self::Malformed(e) => write!(f, "the unlock is malformed: {e}"),
            Self::Vault(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RecoveryError {}

impl From<VaultError> for RecoveryError {
    fn from(e: VaultError) -> Self {
        Self::Vault(e)
    }
}

fn record_path(dir: &Path) -> std::path::PathBuf {
    dir.join(RECOVERY_FILE)
}

fn cipher(device_secret: &[u8; 32]) -> Result<XChaCha20Poly1305, VaultError> {
    XChaCha20Poly1305::new_from_slice(device_key(device_secret).as_slice())
        .map_err(|_| VaultError::Kdf)
}

fn encode_record(r: &PinRecovery) -> Zeroizing<Vec<u8>> {
    let mut e = Encoder::new();
    e.map(if r.pending.is_some() { 6 } else { 5 });
    e.uint(1).bytes(&r.wallet.0);
    e.uint(2).bytes(r.unlock_seed.as_slice());
    e.uint(3).bytes(&r.grant);
    e.uint(4).int(r.issuer_key.suite().cose_alg());
    e.uint(5).bytes(&r.issuer_key.to_bytes());
    if let Some(n) = &r.pending {
        e.uint(6).bytes(&n.0);
    }
    Zeroizing::new(e.finish())
}

fn decode_record(bytes: &[u8]) -> Result<PinRecovery, VaultError> {
    let bad = VaultError::Corrupt("recovery record malformed");
    let mut d = Decoder::new(bytes);
    let r = {
        let mut m = d.map("recovery record", 6).map_err(|_| bad)?;
        let wallet = WalletId(
            m.required(1, "wallet")
                .and_then(|d| d.fixed::<16>("wallet"))
                .map_err(|_| bad)?,
        );
        let unlock_seed = Zeroizing::new(
            m.required(2, "seed")
                .and_then(|d| d.fixed::<32>("seed"))
                .map_err(|_| bad)?,
        );
        let grant = m
            .required(3, "grant")
            .and_then(|d| d.bytes("grant", PIN_UNLOCK_GRANT_BYTES_MAX))
            .map_err(|_| bad)?
            .to_vec();
        let alg = m
            .required(4, "suite")
            .and_then(|d| d.int("suite"))
            .map_err(|_| bad)?;
        let suite = Suite::from_cose_alg(alg).ok_or(bad)?;
        let key = m
            .required(5, "issuer key")
            .and_then(|d| d.bytes("issuer key", 128))
            .map_err(|_| bad)?;
        let issuer_key = PublicKey::from_bytes(suite, key).map_err(|_| bad)?;
        let pending = match m.optional(6).map_err(|_| bad)? {
            Some(d) => Some(Nonce(d.fixed::<16>("nonce").map_err(|_| bad)?)),
            None => None,
        };
        m.end().map_err(|_| bad)?;
        PinRecovery {
            wallet,
            unlock_seed,
            grant,
            issuer_key,
            pending,
        }
    };
    d.finish().map_err(|_| bad)?;
    Ok(r)
}

/// Seal `record` into `recovery.sealed` in the vault directory `dir`
/// (atomically).
///
/// # Errors
/// I/O errors, [`VaultError::Rng`].
pub fn save(dir: &Path, device_secret: &[u8; 32], record: &PinRecovery) -> Result<(), VaultError> {
    // The record lives beside a sealed file vault on a device: OS entropy,
    // through the trait like every other random byte.
    let nonce: [u8; NONCE_LEN] =
        offpay_protocol::entropy::random(&offpay_protocol::entropy::OsEntropy)
            .map_err(|_| VaultError::Rng)?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.push(FORMAT_VERSION);
    header.extend_from_slice(&nonce);
    let plain = encode_record(record);
    let sealed = cipher(device_secret)?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plain.as_slice(),
                aad: &header,
            },
        )
        .map_err(|_| VaultError::TooLarge)?;
    header.extend_from_slice(&sealed);
    crate::vault::fs_atomic_write(&RealFs, &record_path(dir), &header)
}

/// Whether `dir` holds a recovery record.
pub fn has_record(dir: &Path) -> bool {
    record_path(dir).exists()
}

/// Read and unseal `recovery.sealed`.
///
/// # Errors
/// [`RecoveryError::NoRecord`] if there is none; [`VaultError::WrongDeviceSecret`]
/// if it does not authenticate under this device secret; I/O errors.
pub fn load(dir: &Path, device_secret: &[u8; 32]) -> Result<PinRecovery, RecoveryError> {
    let file = match RealFs.read_file(&record_path(dir), RECOVERY_BYTES_MAX) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(RecoveryError::NoRecord),
        Err(e) => return Err(VaultError::io("read recovery record")(e).into()),
    };
    if file.len() > RECOVERY_BYTES_MAX || file.len() < HEADER_LEN {
        return Err(VaultError::Corrupt("recovery record malformed").into());
    }
    let (header, sealed) = file.split_at(HEADER_LEN);
    if header.get(..4) != Some(MAGIC.as_slice()) || header.get(4) != Some(&FORMAT_VERSION) {
        return Err(VaultError::Corrupt("recovery record malformed").into());
    }
    let nonce: [u8; NONCE_LEN] = header
        .get(5..)
        .and_then(|n| n.try_into().ok())
        .ok_or(VaultError::Corrupt("recovery record malformed"))?;
    let plain = Zeroizing::new(
        cipher(device_secret)?
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: header,
                },
            )
            .map_err(|_| VaultError::WrongDeviceSecret)?,
    );
    Ok(decode_record(&plain)?)
}

/// The attempt count as the request carries it: the count, or
/// [`PIN_ATTEMPTS_FIELD_MAX`] if the `pin-attempts` file is unreadable.
fn attempts_field(dir: &Path) -> Result<u64, VaultError> {
    match read_attempts(&RealFs, dir) {
        Ok(n) => Ok(u64::from(n)),
        Err(VaultError::PinAttemptsUnreadable) => Ok(PIN_ATTEMPTS_FIELD_MAX),
        Err(e) => Err(e),
    }
}

/// The PIN-locked vault in `dir` asks to be unlocked: a [`PinLockedRequest`]
/// envelope signed by the unlock key. The nonce is drawn once and kept until
/// an unlock answers it, so asking again sends the same request.
///
/// # Errors
/// [`RecoveryError::NotLocked`] if the vault still takes PINs,
/// [`RecoveryError::NoRecord`], vault errors.
pub fn locked_request(
    dir: &Path,
    device_secret: &[u8; 32],
    now: UnixSeconds,
) -> Result<Vec<u8>, RecoveryError> {
    let attempts = attempts_field(dir)?;
    if attempts < u64::from(PIN_ATTEMPTS_MAX) {
        return Err(RecoveryError::NotLocked {
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        });
    }
    let mut record = load(dir, device_secret)?;
    let nonce = match record.pending {
        Some(n) => n,
        None => {
            let n: [u8; 16] =
                offpay_protocol::entropy::random(&offpay_protocol::entropy::OsEntropy)
                    .map_err(|_| VaultError::Rng)?;
            record.pending = Some(Nonce(n));
            save(dir, device_secret, &record)?;
            Nonce(n)
        }
    };
    let key = SigningKey::from_seed(Suite::Ed25519, &record.unlock_seed)
        .map_err(|_| VaultError::Corrupt("recovery record malformed"))?;
    let body = PinLockedRequest {
        wallet: record.wallet,
        attempts,
        nonce,
        time: now,
        grant: record.grant.clone(),
    };
    Ok(Signed::sign(body, &key).into_bytes())
}

/// Apply the issuer's [`PinUnlock`] to the vault in `dir`: verify it against
/// the issuer key of the recovery record, the wallet id, the pending nonce
/// and the current attempt count, then reset the count to 0 and forget the
/// nonce (an unlock works once).
///
/// # Errors
/// [`RecoveryError::Malformed`], [`RecoveryError::BadSignature`],
/// [`RecoveryError::Mismatch`], [`RecoveryError::NoPendingRequest`], vault
/// errors. Nothing changes on any error.
pub fn apply_unlock(
    dir: &Path,
    device_secret: &[u8; 32],
    unlock: &[u8],
) -> Result<(), RecoveryError> {
    let signed = Signed::<PinUnlock>::decode(unlock).map_err(RecoveryError::Malformed)?;
    let mut record = load(dir, device_secret)?;
    signed
        .verify(&record.issuer_key)
        .map_err(|_| RecoveryError::BadSignature)?;
    let body = signed.body();
    if body.wallet != record.wallet {
        return Err(RecoveryError::Mismatch("another wallet"));
    }
    let pending = record.pending.ok_or(RecoveryError::NoPendingRequest)?;
    if body.nonce != pending {
        return Err(RecoveryError::Mismatch("another request (nonce)"));
    }
    if body.attempts != attempts_field(dir)? {
        return Err(RecoveryError::Mismatch("another attempt count"));
    }
    SealedFileVault::reset_pin_attempts(dir)?;
    record.pending = None;
    save(dir, device_secret, &record)?;
    Ok(())
}

/// Check a grant's structure (the issuer checks its signature).
pub fn decode_grant(bytes: &[u8]) -> Result<Signed<PinUnlockGrant>, DecodeError> {
    Signed::<PinUnlockGrant>::decode(bytes)
}
