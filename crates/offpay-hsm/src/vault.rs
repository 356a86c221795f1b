//! [`HsmVault`]: the wallet vault whose keys live in a PKCS#11 token (the
//! secure-element stand-in; SoftHSM2 in tests).
//!
//! - **Signing keys**: the TA's keys are token key pairs (Ed25519 through
//!   `CKM_EDDSA`, P-256 through `CKM_ECDSA`), `CKA_SENSITIVE`, not
//!   `CKA_EXTRACTABLE`, labelled `"<vault label>/key/<generation>"`, made at
//!   [`Wallet::create`](offpay_wallet::Wallet::create) and at each re-key
//!   through [`Vault::device_key`], destroyed by
//!   [`Vault::retire_device_key`]. The state records only the generation
//!   (`key.device`); [`Wallet::open`](offpay_wallet::Wallet::open) adopts the
//!   pair under the label. ML-DSA-44 is refused
//!   ([`VaultError::KeyDevice`], `CKR_MECHANISM_INVALID`): SoftHSM2 2.6 has
//!   no `CKM_ML_DSA`.
//! - **Sealing key**: the state is sealed with AES-256-GCM (`CKM_AES_GCM`,
//!   128-bit tag) under a token-held secret key (`CKM_AES_KEY_GEN`, 32 bytes,
//!   `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`)
//!   labelled `"<vault label>/seal"`, with a random 16-byte `CKA_ID`. The
//!   AES key never leaves the token: every seal and unseal is a token
//!   operation. The 12-byte IV of every write comes fresh from the token's
//!   RNG (`C_GenerateRandom`); with random IVs a key seals at most 2^32
//!   states (NIST SP 800-38D), about a thousand years of a commit a minute.
//! - **PIN**: the token's user PIN (the login). A wrong PIN is
//!   [`VaultError::TokenPinRefused`]; the token counts and locks
//!   (`locked: true`), not a file the host can reset.
//! - **Storage and rollback**: the sealed state is one blob, `state.hsm`, of
//!   a host [`BlobStore`]; the version follows a [`MonotonicCounter`] kept
//!   apart, by the same rules as
//!   [`SealedVault`](offpay_wallet::vault::SealedVault) (offpay-wallet's
//!   [`reconcile`]): commit writes `state.hsm` with version `counter + 1`
//!   then advances the counter; `load` reports an older state as a
//!   rollback, completes an interrupted commit, and refuses a state two
//!   versions ahead ([`VaultError::Corrupt`]). The token does not stop a
//!   rollback of the blob: that still needs the counter (a TPM NV counter,
//!   offpay-tpm, or the platform's).
//!
//! # `state.hsm` (format version 1)
//!
//! | offset | length | field |
//! | ---: | ---: | --- |
//! | 0 | 4 | magic `b"OFPH"` |
//! | 4 | 1 | format version `0x01` |
//! | 5 | 16 | `CKA_ID` of the sealing key that sealed it |
//! | 21 | 8 | state version (u64 LE): 0 = nothing committed, +1 per commit |
//! | 29 | 12 | AES-GCM IV, fresh for every write |
//! | 41 | n + 16 | ciphertext of the n-byte state, then the 16-byte tag |
//!
//! The AES-GCM additional data is `b"offpay hsm vault v1"`, the vault
//! label's length (one byte) and bytes, the blob name `state.hsm`, and the
//! 41-byte header: an edit of any header byte, a blob of another vault
//! label, or a blob renamed into place fails authentication
//! ([`VaultError::Tampered`]). A state sealed by another token's key (or a
//! key made again under the label) is told apart before decryption by the
//! key id: [`VaultError::WrongDeviceSecret`]; no sealing key under the label
//! at all is [`VaultError::KeyDevice`] (`"find sealing key"`).
//!
//! # What the host must guarantee
//!
//! As for `SealedVault`: [`BlobStore::replace`] durable and atomic, the
//! counter durable, never going back and fresh (0) at
//! [`HsmVault::create`], one writer at a time; and one vault label per
//! wallet in a token.

use core::fmt;

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use offpay_protocol::Suite;
use offpay_wallet::vault::{
    BlobStore, DeviceKey, Loaded, MonotonicCounter, STATE_BYTES_MAX, Vault, VaultError,
    load_against_counter, write_then_count,
};

use crate::{HsmError, KeyMode, Token, find_one, reconnectable, rv};

/// The blob that holds the sealed state.
pub const STATE_BLOB: &str = "state.hsm";
/// Longest vault label, in bytes.
pub const LABEL_MAX: usize = 64;

const MAGIC: &[u8; 4] = b"OFPH";
const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 16;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 4 + 1 + KEY_ID_LEN + 8 + IV_LEN;
const SEALED_LEN_MAX: usize = HEADER_LEN + STATE_BYTES_MAX + TAG_LEN;
const AAD_LABEL: &[u8] = b"offpay hsm vault v1";
const AES_KEY_LEN: u64 = 32;

const NO_SEALING_KEY: &str =
    "the token holds no sealing key under this vault's label (deleted, or another token)";

fn code32(code: u64) -> u32 {
    u32::try_from(code).unwrap_or(u32::MAX)
}

/// A token's error as a vault error: a refused PIN is
/// [`VaultError::TokenPinRefused`], everything else
/// [`VaultError::KeyDevice`].
#[must_use]
pub fn vault_error(e: &HsmError) -> VaultError {
    let device = |op, reason, rc| VaultError::KeyDevice { op, reason, rc };
    match e {
        HsmError::Login { code } => VaultError::TokenPinRefused {
            locked: *code == rv::CKR_PIN_LOCKED,
            rc: code32(*code),
        },
        HsmError::Device { what, code, .. } => device(*what, "the token refused", code32(*code)),
        HsmError::Module { .. } => device("load module", "the PKCS#11 module cannot be loaded", 0),
        HsmError::TokenNotFound(_) => device("find token", "no slot holds the token", 0),
        HsmError::KeyNotFound(_) => device("find key", "no key under the label", 0),
        HsmError::KeyMismatch(_) => device(
            "find key",
            "the key under the label is not of the expected kind",
            0,
        ),
        HsmError::Config(_) | HsmError::Pin(_) => {
            device("configure", "the token configuration is wrong", 0)
        }
    }
}

fn ck(op: &'static str) -> impl Fn(CkError) -> VaultError {
    move |e| VaultError::KeyDevice {
        op,
        reason: "the token refused",
        rc: code32(rv::error_code(&e)),
    }
}

/// The wallet vault whose signing keys and sealing key are in a PKCS#11
/// token; see the [module documentation](self).
pub struct HsmVault<S: BlobStore, C: MonotonicCounter> {
    token: Token,
    label: String,
    store: S,
    counter: C,
    /// The session sealing runs in and the sealing key's handle (re-opened
    /// once when the token drops the session or logs it out).
    session: Option<(Session, ObjectHandle)>,
    /// `CKA_ID` of the sealing key.
    key_id: [u8; KEY_ID_LEN],
    /// When `synced`: the version of the stored state (or the counter, if
    /// the stored state was rolled back).
    version: u64,
    /// `false` after open and after a failed commit: the store is re-read
    /// (and an interrupted commit completed) before the next commit.
    synced: bool,
}

impl<S: BlobStore, C: MonotonicCounter> fmt::Debug for HsmVault<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmVault")
            .field("token", &self.token)
            .field("label", &self.label)
            .field("store", &self.store)
            .field("version", &self.version)
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

/// Log in to the token `token` of `module` with the user PIN `pin`: the
/// vault's PIN check.
///
/// # Errors
/// [`VaultError::TokenPinRefused`] for a PIN the token refuses (counted by
/// the token); [`VaultError::KeyDevice`] when the module or the token is
/// missing or fails.
pub fn login(
    module: &std::path::Path,
    token: &crate::TokenRef,
    pin: &str,
) -> Result<Token, VaultError> {
    Token::open_with_pin(module, token, pin.to_string()).map_err(|e| vault_error(&e))
}

fn check_label(label: &str) -> Result<(), VaultError> {
    if label.is_empty() || label.len() > LABEL_MAX || label.contains('/') {
        return Err(VaultError::KeyDevice {
            op: "vault label",
            reason: "a vault label is 1 to 64 bytes without '/'",
            rc: 0,
        });
    }
    Ok(())
}

/// The parsed header of `state.hsm`.
struct Header {
    key_id: [u8; KEY_ID_LEN],
    version: u64,
    iv: [u8; IV_LEN],
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let parts: [&[u8]; 5] = [
            MAGIC,
            &[FORMAT_VERSION],
            &self.key_id,
            &self.version.to_le_bytes(),
            &self.iv,
        ];
        let mut pos = 0;
        for p in parts {
            if let Some(dst) = out.get_mut(pos..pos + p.len()) {
                dst.copy_from_slice(p);
            }
            pos += p.len();
        }
        out
    }

    /// Parse a whole blob: the header and the ciphertext (with tag).
    fn parse(blob: &[u8]) -> Result<(Self, &[u8]), VaultError> {
        if blob.len() < HEADER_LEN + TAG_LEN || blob.len() > SEALED_LEN_MAX {
            return Err(VaultError::Tampered);
        }
        let (head, ciphertext) = blob.split_at(HEADER_LEN);
        let field = |from: usize, to: usize| head.get(from..to).ok_or(VaultError::Tampered);
        if field(0, 4)? != MAGIC || field(4, 5)? != [FORMAT_VERSION] {
            return Err(VaultError::Tampered);
        }
        let bad = |_| VaultError::Tampered;
        Ok((
            Self {
                key_id: field(5, 21)?.try_into().map_err(bad)?,
                version: u64::from_le_bytes(field(21, 29)?.try_into().map_err(bad)?),
                iv: field(29, 41)?.try_into().map_err(bad)?,
            },
            ciphertext,
        ))
    }
}

impl<S: BlobStore, C: MonotonicCounter> HsmVault<S, C> {
    /// Create the vault labelled `label` in `store` with the fresh `counter`,
    /// its sealing key in `token` (a logged-in [`Token`], see [`login`]):
    /// generates the AES key (or adopts the one an interrupted create of
    /// this label left, when `store` holds no state), then writes
    /// `state.hsm` (version 0, nothing committed) by one
    /// [`BlobStore::replace`]. The signing key is made by the TA's first
    /// [`Vault::device_key`] call ([`offpay_wallet::Wallet::create`]).
    ///
    /// # Errors
    /// [`VaultError::AlreadyExists`] if `store` holds a state;
    /// [`VaultError::CounterNotFresh`] if the counter is not at 0;
    /// [`VaultError::KeyDevice`] for a bad label, a key under the label
    /// that is not a non-extractable 256-bit AES key, or a token failure;
    /// the store's and counter's errors. Nothing is written before the
    /// checks pass.
    pub fn create(
        token: &Token,
        label: &str,
        mut store: S,
        mut counter: C,
    ) -> Result<Self, VaultError> {
        check_label(label)?;
        if store.read(STATE_BLOB, SEALED_LEN_MAX)?.is_some() {
            return Err(VaultError::AlreadyExists);
        }
        if counter.read()? != 0 {
            return Err(VaultError::CounterNotFresh);
        }
        let session = token.session().map_err(|e| vault_error(&e))?;
        let writes = crate::object_writes();
        let key = match find_one(&session, &sealing_label(label), ObjectClass::SECRET_KEY)
            .map_err(|e| vault_error(&e))?
        {
            Some(k) => k,
            None => generate_sealing_key(&session, label)?,
        };
        drop(writes);
        let key_id = check_sealing_key(&session, key)?;
        let mut vault = Self {
            token: token.clone(),
            label: label.to_string(),
            store,
            counter,
            session: Some((session, key)),
            key_id,
            version: 0,
            synced: false,
        };
        let sealed = vault.seal(0, &[])?;
        vault.store.replace(STATE_BLOB, &sealed)?;
        vault.synced = true;
        Ok(vault)
    }

    /// Open the vault labelled `label` in `store` with `counter`, its keys
    /// in `token`: finds the sealing key, checks that it is the one the
    /// stored state was sealed with, and unseals the state. The counter is
    /// not read here: [`Vault::load`] reconciles.
    ///
    /// # Errors
    /// [`VaultError::NotFound`] if `store` holds no state;
    /// [`VaultError::KeyDevice`] if the token holds no sealing key under
    /// the label (`"find sealing key"`) or fails;
    /// [`VaultError::WrongDeviceSecret`] if the token's sealing key is not
    /// the one that sealed the state (another token);
    /// [`VaultError::Tampered`] if the state is malformed or fails
    /// authentication; the store's errors.
    pub fn open(token: &Token, label: &str, mut store: S, counter: C) -> Result<Self, VaultError> {
        check_label(label)?;
        let blob = store
            .read(STATE_BLOB, SEALED_LEN_MAX)?
            .ok_or(VaultError::NotFound)?;
        let (header, _) = Header::parse(&blob)?;
        let session = token.session().map_err(|e| vault_error(&e))?;
        let key = find_one(&session, &sealing_label(label), ObjectClass::SECRET_KEY)
            .map_err(|e| vault_error(&e))?
            .ok_or(VaultError::KeyDevice {
                op: "find sealing key",
                reason: NO_SEALING_KEY,
                rc: 0,
            })?;
        let key_id = check_sealing_key(&session, key)?;
        if key_id != header.key_id {
            return Err(VaultError::WrongDeviceSecret);
        }
        let mut vault = Self {
            token: token.clone(),
            label: label.to_string(),
            store,
            counter,
            session: Some((session, key)),
            key_id,
            version: header.version,
            synced: false,
        };
        vault.unseal(&blob)?;
        Ok(vault)
    }

    /// The vault's label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The token.
    #[must_use]
    pub fn token(&self) -> &Token {
        &self.token
    }

    /// The label of the sealing key in the token: `"<label>/seal"`.
    #[must_use]
    pub fn sealing_key_label(&self) -> String {
        sealing_label(&self.label)
    }

    /// The label of the signing key pair of `generation`:
    /// `"<label>/key/<generation>"`.
    #[must_use]
    pub fn device_key_label(&self, generation: u32) -> String {
        format!("{}/key/{generation}", self.label)
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

    /// The store and the counter back.
    #[must_use]
    pub fn into_parts(self) -> (S, C) {
        (self.store, self.counter)
    }

    /// Run `f` on the sealing key's session; when the token dropped the
    /// session or logged it out, log in again, find the key again and try
    /// once more.
    fn with_key<T>(
        &mut self,
        op: &'static str,
        f: impl Fn(&Session, ObjectHandle) -> Result<T, CkError>,
    ) -> Result<T, VaultError> {
        if let Some((s, k)) = &self.session {
            match f(s, *k) {
                Ok(v) => return Ok(v),
                Err(e) if reconnectable(&e) => self.session = None,
                Err(e) => return Err(ck(op)(e)),
            }
        }
        let s = self.token.session().map_err(|e| vault_error(&e))?;
        let k = find_one(&s, &self.sealing_key_label(), ObjectClass::SECRET_KEY)
            .map_err(|e| vault_error(&e))?
            .ok_or(VaultError::KeyDevice {
                op: "find sealing key",
                reason: NO_SEALING_KEY,
                rc: 0,
            })?;
        if check_sealing_key(&s, k)? != self.key_id {
            return Err(VaultError::WrongDeviceSecret);
        }
        let v = f(&s, k).map_err(ck(op))?;
        self.session = Some((s, k));
        Ok(v)
    }

    fn aad(&self, header: &[u8; HEADER_LEN]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(AAD_LABEL.len() + 1 + LABEL_MAX + 16 + HEADER_LEN);
        aad.extend_from_slice(AAD_LABEL);
        // check_label: at most LABEL_MAX (64) bytes.
        aad.push(u8::try_from(self.label.len()).unwrap_or(u8::MAX));
        aad.extend_from_slice(self.label.as_bytes());
        aad.extend_from_slice(STATE_BLOB.as_bytes());
        aad.extend_from_slice(header);
        aad
    }

    fn seal(&mut self, version: u64, state: &[u8]) -> Result<Vec<u8>, VaultError> {
        if state.len() > STATE_BYTES_MAX {
            return Err(VaultError::TooLarge);
        }
        let iv = self.with_key("random", |s, _| s.generate_random_vec(12))?;
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| VaultError::KeyDevice {
            op: "random",
            reason: "the token returned another length than asked",
            rc: 0,
        })?;
        let header = Header {
            key_id: self.key_id,
            version,
            iv,
        }
        .encode();
        let aad = self.aad(&header);
        let ciphertext = self.with_key("encrypt", |s, k| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
            s.encrypt(&Mechanism::AesGcm(params), k, state)
        })?;
        if ciphertext.len() != state.len() + TAG_LEN {
            return Err(VaultError::KeyDevice {
                op: "encrypt",
                reason: "the token's AES-GCM output has the wrong length",
                rc: 0,
            });
        }
        let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Authenticate and decrypt a whole blob: (version, plaintext).
    fn unseal(&mut self, blob: &[u8]) -> Result<(u64, Vec<u8>), VaultError> {
        let (header, ciphertext) = Header::parse(blob)?;
        if header.key_id != self.key_id {
            // Sealed under another key: not this token's (or restored from
            // a vault made again under the label).
            return Err(VaultError::WrongDeviceSecret);
        }
        let aad = self.aad(&header.encode());
        let iv = header.iv;
        let out = self.with_key("decrypt", |s, k| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
            match s.decrypt(&Mechanism::AesGcm(params), k, ciphertext) {
                // Maybe the tag did not verify (SoftHSM2 answers that with
                // CKR_GENERAL_ERROR): the probe below tells.
                Err(CkError::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError
                    | RvError::FunctionFailed,
                    _,
                )) => Ok(None),
                other => other.map(Some),
            }
        })?;
        let Some(plaintext) = out else {
            // The token works (a probe seals and unseals under the same key)
            // so the blob is what failed: tampered; else the device failed.
            self.probe()?;
            return Err(VaultError::Tampered);
        };
        if header.version == 0 && !plaintext.is_empty() {
            return Err(VaultError::Corrupt("state version 0 is not empty"));
        }
        Ok((header.version, plaintext))
    }

    /// Seal and unseal a probe under the sealing key: `Ok` when the token's
    /// AES-GCM works, so that a failed unseal is the data's fault.
    fn probe(&mut self) -> Result<(), VaultError> {
        let failed = VaultError::KeyDevice {
            op: "decrypt",
            reason: "the token's AES-GCM fails on its own probe",
            rc: 0,
        };
        let iv = self.with_key("random", |s, _| s.generate_random_vec(12))?;
        let aad = b"offpay hsm vault probe";
        let probe = self.with_key("encrypt", |s, k| {
            let mut iv = iv.clone();
            let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())?;
            s.encrypt(&Mechanism::AesGcm(params), k, b"probe")
        })?;
        let back = self
            .with_key("decrypt", |s, k| {
                let mut iv = iv.clone();
                let params = GcmParams::new(&mut iv, aad, (TAG_LEN as u64 * 8).into())?;
                s.decrypt(&Mechanism::AesGcm(params), k, &probe)
            })
            .map_err(|_| failed)?;
        if back == b"probe" {
            Ok(())
        } else {
            Err(failed)
        }
    }

    /// Read and unseal the stored state, reconcile it with the counter (as
    /// `SealedVault` does), and remember where we are.
    fn sync(&mut self) -> Result<Loaded, VaultError> {
        let blob = self
            .store
            .read(STATE_BLOB, SEALED_LEN_MAX)?
            .ok_or(VaultError::Tampered)?;
        let (version, plaintext) = self.unseal(&blob)?;
        let (loaded, next) =
            load_against_counter(&mut self.counter, version, plaintext, "counter missing")?;
        self.version = next;
        self.synced = true;
        Ok(loaded)
    }
}

fn sealing_label(label: &str) -> String {
    format!("{label}/seal")
}

fn generate_sealing_key(s: &Session, label: &str) -> Result<ObjectHandle, VaultError> {
    let id = s
        .generate_random_vec(KEY_ID_LEN as u32)
        .map_err(ck("random"))?;
    s.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(AES_KEY_LEN.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Id(id),
            Attribute::Label(sealing_label(label).into_bytes()),
        ],
    )
    .map_err(ck("generate sealing key"))
}

/// The sealing key must be a 256-bit AES key that is sensitive and not
/// extractable; returns its `CKA_ID`.
fn check_sealing_key(s: &Session, key: ObjectHandle) -> Result<[u8; KEY_ID_LEN], VaultError> {
    let attrs = s
        .get_attributes(
            key,
            &[
                AttributeType::KeyType,
                AttributeType::ValueLen,
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::Id,
            ],
        )
        .map_err(ck("read sealing key"))?;
    let (mut aes, mut len, mut sensitive, mut extractable, mut id) =
        (false, false, false, true, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => aes = k == KeyType::AES,
            Attribute::ValueLen(n) => len = u64::from(n) == AES_KEY_LEN,
            Attribute::Sensitive(b) => sensitive = b,
            Attribute::Extractable(b) => extractable = b,
            Attribute::Id(v) => id = <[u8; KEY_ID_LEN]>::try_from(v.as_slice()).ok(),
            _ => {}
        }
    }
    match id {
        Some(id) if aes && len && sensitive && !extractable => Ok(id),
        _ => Err(VaultError::KeyDevice {
            op: "read sealing key",
            reason: "the key under the label is not a sensitive, non-extractable 256-bit AES key with a 16-byte id",
            rc: 0,
        }),
    }
}

impl<S: BlobStore, C: MonotonicCounter> Vault for HsmVault<S, C> {
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
            STATE_BLOB,
            &sealed,
            version,
        )?;
        self.version = version;
        self.synced = true;
        Ok(())
    }

    fn device_key(
        &mut self,
        suite: Suite,
        generation: u32,
        create: bool,
    ) -> Result<Option<DeviceKey>, VaultError> {
        if suite == Suite::MlDsa44 {
            return Err(VaultError::KeyDevice {
                op: "device key",
                reason: "the token holds no ML-DSA-44 keys (PKCS#11 3.2 CKM_ML_DSA; SoftHSM2 2.6 has none)",
                rc: code32(rv::CKR_MECHANISM_INVALID),
            });
        }
        let mode = if create {
            KeyMode::CreateOrAdopt
        } else {
            KeyMode::AdoptOnly
        };
        match self
            .token
            .signer(&self.device_key_label(generation), suite, mode)
        {
            Ok(signer) => Ok(Some(Box::new(signer))),
            Err(HsmError::KeyNotFound(_)) => Err(VaultError::Corrupt(
                "the token holds no signing key of this wallet's generation",
            )),
            Err(e) => Err(vault_error(&e)),
        }
    }

    fn retire_device_key(&mut self, generation: u32) -> Result<(), VaultError> {
        match self
            .token
            .destroy_key_pair(&self.device_key_label(generation))
        {
            Ok(()) | Err(HsmError::KeyNotFound(_)) => Ok(()),
            Err(e) => Err(vault_error(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_map_to_specific_vault_errors() {
        let locked = rv::CKR_PIN_LOCKED;
        assert_eq!(
            vault_error(&HsmError::Login { code: locked }),
            VaultError::TokenPinRefused {
                locked: true,
                rc: code32(locked),
            }
        );
        assert_eq!(
            vault_error(&HsmError::Login { code: 0xa0 }),
            VaultError::TokenPinRefused {
                locked: false,
                rc: 0xa0,
            }
        );
        assert_eq!(
            vault_error(&HsmError::Device {
                what: "sign",
                code: 0x68,
                detail: String::new(),
            }),
            VaultError::KeyDevice {
                op: "sign",
                reason: "the token refused",
                rc: 0x68,
            }
        );
        assert!(matches!(
            vault_error(&HsmError::TokenNotFound("t".into())),
            VaultError::KeyDevice {
                op: "find token",
                ..
            }
        ));
        // A CKR value past u32 (none is defined) saturates, never wraps.
        assert_eq!(code32(u64::MAX), u32::MAX);
    }

    #[test]
    fn header_round_trips_and_short_blobs_are_tampered() {
        let h = Header {
            key_id: [3; KEY_ID_LEN],
            version: 0x0102_0304_0506_0708,
            iv: [9; IV_LEN],
        };
        let mut blob = h.encode().to_vec();
        blob.extend_from_slice(&[0; TAG_LEN]);
        let (back, ct) = Header::parse(&blob).unwrap();
        assert_eq!(
            (back.key_id, back.version, back.iv),
            (h.key_id, h.version, h.iv)
        );
        assert_eq!(ct.len(), TAG_LEN);
        assert!(matches!(
            Header::parse(&blob[..blob.len() - 1]),
            Err(VaultError::Tampered)
        ));
        let mut other = blob.clone();
        other[4] = 2;
        assert!(matches!(Header::parse(&other), Err(VaultError::Tampered)));
        assert!(check_label("w").is_ok());
        assert!(check_label("").is_err() && check_label("a/b").is_err());
    }
}
