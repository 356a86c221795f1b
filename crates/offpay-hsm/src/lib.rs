//! offpay keys in a PKCS#11 token (an HSM, or SoftHSM2 in tests): the
//! issuer's CA keys ([`HsmSigner`]) and a wallet's vault ([`HsmVault`], in
//! [`vault`]: the TA's signing keys are token key pairs, its state is sealed
//! with AES-256-GCM under a token-held secret key, the PIN is the token's;
//! the secure-element stand-in).
//!
//! The token's module is loaded at run time (`dlopen` through `cryptoki`):
//! nothing is linked at build time. An [`HsmSigner`] implements
//! [`offpay_protocol::Signer`]: Ed25519 through `CKM_EDDSA`, P-256 through
//! `CKM_ECDSA` over the SHA-256 digest computed here (output `r || s`, the
//! COSE form). Keys are created in the token as `CKA_TOKEN`, `CKA_PRIVATE`,
//! `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`, and found by `CKA_LABEL`; a key
//! already in the token under the label is adopted (its public key is read
//! from `CKA_EC_POINT`). The private key never leaves the token.
//!
//! Each signer holds one logged-in session behind a mutex. When the token
//! answers `CKR_SESSION_HANDLE_INVALID`, `CKR_DEVICE_REMOVED` or
//! `CKR_USER_NOT_LOGGED_IN` (or a stale key handle after a logout), the
//! session is re-opened, logged in again and the key found again once; a second failure is returned with its `CKR_*` code.
//!
//! Objects are created and destroyed under one process-wide lock: SoftHSM2's
//! file object store answers concurrent creates in one token with
//! `CKR_GENERAL_ERROR`, and a find-then-create must not race another.

mod config;
mod rv;
pub mod vault;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use offpay_protocol::suite::SignatureError;
use offpay_protocol::{PublicKey, SignError, Signer, Suite};
use sha2::{Digest, Sha256};

pub use config::{HsmConfig, PinSource, TokenRef};
pub use rv::ckr_code;
pub use vault::HsmVault;

/// DER of the Ed25519 curve OID 1.3.101.112 (`CKA_EC_PARAMS`).
const ED25519_PARAMS: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the P-256 curve OID 1.2.840.10045.3.1.7 (`CKA_EC_PARAMS`).
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// Why the token could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmError {
    /// The `[hsm]` configuration or `--hsm` spec is wrong.
    Config(String),
    /// The PIN could not be read from its source.
    Pin(String),
    /// The PKCS#11 module could not be loaded or initialized.
    Module {
        /// The module's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No slot holds a token with this label or slot id.
    TokenNotFound(String),
    /// The token refused the PIN (`CKR_PIN_INCORRECT` and kin).
    Login {
        /// The `CKR_*` value.
        code: u64,
    },
    /// No key pair with this label is in the token (and creating was not asked).
    KeyNotFound(String),
    /// The key under the label is not of the expected suite, or its public
    /// key is not the one stored.
    KeyMismatch(String),
    /// The token failed at a step.
    Device {
        /// The step.
        what: &'static str,
        /// The `CKR_*` value (0 when the failure was not a `CKR_*`).
        code: u64,
        /// The library's description.
        detail: String,
    },
}

impl std::fmt::Display for HsmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HsmError::Config(m) => write!(f, "hsm configuration: {m}"),
            HsmError::Pin(m) => write!(f, "hsm pin: {m}"),
            HsmError::Module { path, reason } => {
                write!(f, "PKCS#11 module {}: {reason}", path.display())
            }
            HsmError::TokenNotFound(t) => write!(f, "no PKCS#11 token {t} in any slot"),
            HsmError::Login { code } => match *code {
                cryptoki_sys::CKR_PIN_INCORRECT => {
                    write!(
                        f,
                        "token refused the login: wrong PIN (CKR_PIN_INCORRECT, {code:#x})"
                    )
                }
                cryptoki_sys::CKR_PIN_LOCKED => {
                    write!(
                        f,
                        "token refused the login: the PIN is locked (CKR_PIN_LOCKED, {code:#x})"
                    )
                }
                _ => write!(f, "token refused the login (CKR {code:#x})"),
            },
            HsmError::KeyNotFound(l) => write!(f, "no key labelled {l:?} in the token"),
            HsmError::KeyMismatch(m) => write!(f, "token key mismatch: {m}"),
            HsmError::Device { what, code, detail } => {
                write!(f, "token failed at {what} (CKR {code:#x}): {detail}")
            }
        }
    }
}
impl std::error::Error for HsmError {}

fn device(what: &'static str) -> impl Fn(CkError) -> HsmError {
    move |e| HsmError::Device {
        what,
        code: rv::error_code(&e),
        detail: e.to_string(),
    }
}

/// Object creation and destruction in tokens, serialized within the
/// process: SoftHSM2's file object store answers concurrent creates in one
/// token with `CKR_GENERAL_ERROR`, and a find-then-create must not race
/// another (two keys under one label).
pub(crate) fn object_writes() -> std::sync::MutexGuard<'static, ()> {
    static WRITES: Mutex<()> = Mutex::new(());
    // The guarded data is (): a panic elsewhere leaves nothing inconsistent.
    WRITES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One initialized context per module path for the whole process:
/// `C_Initialize` is process-wide.
fn context(module: &Path) -> Result<Pkcs11, HsmError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let map = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().map_err(|_| HsmError::Module {
        path: module.to_path_buf(),
        reason: "module registry poisoned".into(),
    })?;
    if let Some(c) = map.get(module) {
        return Ok(c.clone());
    }
    if !module.is_file() {
        return Err(HsmError::Module {
            path: module.to_path_buf(),
            reason: "no such file".into(),
        });
    }
    let ctx = Pkcs11::new(module).map_err(|e| HsmError::Module {
        path: module.to_path_buf(),
        reason: format!("cannot load: {e}"),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(HsmError::Module {
                path: module.to_path_buf(),
                reason: format!("C_Initialize: {e}"),
            });
        }
    }
    map.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// A logged-in token: the module, its slot and the user PIN.
#[derive(Clone)]
pub struct Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: Arc<AuthPin>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?}, slot {})", self.label, self.slot.id())
    }
}

/// How a key in the token is protected ([`Token::key_protection`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyProtection {
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// The token hands out a non-empty `CKA_VALUE`.
    pub value_readable: bool,
}

/// What to do when the token has no key under a label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyMode {
    /// Adopt the key under the label, or generate one in the token.
    CreateOrAdopt,
    /// Adopt only: a missing key is [`HsmError::KeyNotFound`].
    AdoptOnly,
}

impl Token {
    /// Load the module, find the token, check the PIN with one login.
    pub fn open(cfg: &HsmConfig) -> Result<Token, HsmError> {
        let pin = cfg.pin.read()?;
        Token::open_with_pin(&cfg.module, &cfg.token, pin)
    }

    /// [`Token::open`] with the PIN given.
    pub fn open_with_pin(module: &Path, token: &TokenRef, pin: String) -> Result<Token, HsmError> {
        let ctx = context(module)?;
        let slots = ctx
            .get_slots_with_initialized_token()
            .map_err(device("list slots"))?;
        let mut found = None;
        for slot in slots {
            let info = ctx.get_token_info(slot).map_err(device("token info"))?;
            let hit = match token {
                TokenRef::Label(l) => info.label().trim_end() == l,
                TokenRef::Slot(id) => slot.id() == *id,
            };
            if hit {
                found = Some((slot, info.label().trim_end().to_string()));
                break;
            }
        }
        let (slot, label) = found.ok_or_else(|| HsmError::TokenNotFound(token.to_string()))?;
        let t = Token {
            ctx,
            slot,
            label,
            pin: Arc::new(AuthPin::from(pin)),
        };
        drop(t.session()?);
        Ok(t)
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A fresh read-write session, logged in as the user.
    fn session(&self) -> Result<Session, HsmError> {
        let s = self
            .ctx
            .open_rw_session(self.slot)
            .map_err(device("open session"))?;
        match s.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
            Err(
                e @ CkError::Pkcs11(
                    RvError::PinIncorrect
                    | RvError::PinInvalid
                    | RvError::PinLenRange
                    | RvError::PinLocked
                    | RvError::PinExpired,
                    _,
                ),
            ) => Err(HsmError::Login {
                code: rv::error_code(&e),
            }),
            Err(e) => Err(device("log in")(e)),
        }
    }

    /// The signer for the key pair labelled `label` of `suite`: adopted when
    /// the token holds it, else generated in the token (under
    /// [`KeyMode::CreateOrAdopt`]).
    pub fn signer(&self, label: &str, suite: Suite, mode: KeyMode) -> Result<HsmSigner, HsmError> {
        let session = self.session()?;
        let writes = object_writes();
        let (private, public) = match find_pair(&session, label)? {
            Some(pair) => pair,
            None if mode == KeyMode::CreateOrAdopt => generate(&session, label, suite)?,
            None => return Err(HsmError::KeyNotFound(label.to_string())),
        };
        drop(writes);
        let public = read_public(&session, public, suite, label)?;
        Ok(HsmSigner {
            token: self.clone(),
            label: label.to_string(),
            suite,
            public,
            state: Mutex::new(Some((session, private))),
        })
    }

    /// Whether the private key labelled `label` gives out `CKA_VALUE` (it
    /// must not: the token refuses, or marks it sensitive).
    pub fn private_value_readable(&self, label: &str) -> Result<bool, HsmError> {
        let s = self.session()?;
        let (private, _) =
            find_pair(&s, label)?.ok_or_else(|| HsmError::KeyNotFound(label.into()))?;
        match s.get_attributes(private, &[AttributeType::Value]) {
            Ok(attrs) => Ok(attrs
                .iter()
                .any(|a| matches!(a, Attribute::Value(v) if !v.is_empty()))),
            Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => Ok(false),
            Err(e) => Err(device("read attribute")(e)),
        }
    }
}

fn find_one(
    s: &Session,
    label: &str,
    class: ObjectClass,
) -> Result<Option<ObjectHandle>, HsmError> {
    let found = s
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Token(true),
        ])
        .map_err(device("find key"))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(HsmError::KeyMismatch(format!(
            "{} objects labelled {label:?} of one class",
            found.len()
        ))),
    }
}

fn find_pair(s: &Session, label: &str) -> Result<Option<(ObjectHandle, ObjectHandle)>, HsmError> {
    let private = find_one(s, label, ObjectClass::PRIVATE_KEY)?;
    let public = find_one(s, label, ObjectClass::PUBLIC_KEY)?;
    match (private, public) {
        (Some(p), Some(q)) => Ok(Some((p, q))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(HsmError::KeyMismatch(format!(
            "private key {label:?} has no public key object"
        ))),
        (None, Some(_)) => Err(HsmError::KeyMismatch(format!(
            "public key {label:?} has no private key in the token"
        ))),
    }
}

/// ML-DSA in a token: PKCS#11 3.2 names CKM_ML_DSA, SoftHSM2 2.6 has no
/// mechanism for it, so a key of that suite is refused here, by name.
fn unsupported(suite: Suite) -> HsmError {
    HsmError::Config(format!(
        "suite {suite} is not supported in a PKCS#11 token (Ed25519 and P-256 are)"
    ))
}

fn generate(
    s: &Session,
    label: &str,
    suite: Suite,
) -> Result<(ObjectHandle, ObjectHandle), HsmError> {
    let (mech, params) = match suite {
        Suite::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, ED25519_PARAMS),
        Suite::P256 => (Mechanism::EccKeyPairGen, P256_PARAMS),
        Suite::MlDsa44 => return Err(unsupported(suite)),
    };
    let label = label.as_bytes().to_vec();
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params.to_vec()),
        Attribute::Label(label.clone()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
    ];
    let (pubh, privh) = s
        .generate_key_pair(&mech, &public, &private)
        .map_err(device("generate key"))?;
    Ok((privh, pubh))
}

fn read_public(
    s: &Session,
    h: ObjectHandle,
    suite: Suite,
    label: &str,
) -> Result<PublicKey, HsmError> {
    let attrs = s
        .get_attributes(
            h,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(device("read public key"))?;
    let mut kt = None;
    let mut params = None;
    let mut point = None;
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kt = Some(k),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let (want_kt, want_params) = match suite {
        Suite::Ed25519 => (KeyType::EC_EDWARDS, ED25519_PARAMS),
        Suite::P256 => (KeyType::EC, P256_PARAMS),
        Suite::MlDsa44 => return Err(unsupported(suite)),
    };
    if kt != Some(want_kt) || params.as_deref() != Some(want_params) {
        return Err(HsmError::KeyMismatch(format!(
            "key {label:?} in the token is not a {suite} key"
        )));
    }
    let point =
        point.ok_or_else(|| HsmError::KeyMismatch(format!("key {label:?} has no CKA_EC_POINT")))?;
    let raw = unwrap_point(&point, suite);
    PublicKey::from_bytes(suite, raw)
        .map_err(|e| HsmError::KeyMismatch(format!("key {label:?}: CKA_EC_POINT: {e}")))
}

/// `CKA_EC_POINT` is the DER OCTET STRING of the point (some modules give
/// the raw point): strip the header when the length says it is there.
fn unwrap_point(p: &[u8], suite: Suite) -> &[u8] {
    let raw_len = suite.public_key_len();
    if p.len() == raw_len + 2 && p[0] == 0x04 && usize::from(p[1]) == raw_len {
        &p[2..]
    } else {
        p
    }
}

/// A key pair in a PKCS#11 token that signs for offpay.
pub struct HsmSigner {
    token: Token,
    label: String,
    suite: Suite,
    public: PublicKey,
    state: Mutex<Option<(Session, ObjectHandle)>>,
}

impl std::fmt::Debug for HsmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HsmSigner({:?} in {:?}, {:?})",
            self.label, self.token, self.public
        )
    }
}

/// The codes after which a fresh session is worth one more try.
fn reconnectable(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::UserNotLoggedIn
                // A logged-out session no longer sees the private key: its
                // handle is found again after the new login.
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid,
            _
        )
    )
}

fn sign_error(what: &'static str) -> impl Fn(HsmError) -> SignError {
    move |e| match e {
        HsmError::Login { code } | HsmError::Device { code, .. } => {
            SignError::Device { what, code }
        }
        _ => SignError::Device { what, code: 0 },
    }
}

impl HsmSigner {
    /// The key's label in the token.
    pub fn label(&self) -> &str {
        &self.label
    }
    /// The token's label.
    pub fn token_label(&self) -> &str {
        self.token.label()
    }

    fn reopen(&self) -> Result<(Session, ObjectHandle), SignError> {
        let s = self.token.session().map_err(sign_error("reconnect"))?;
        let h = find_one(&s, &self.label, ObjectClass::PRIVATE_KEY)
            .map_err(sign_error("find key"))?
            .ok_or(SignError::Device {
                what: "find key",
                code: rv::CKR_KEY_HANDLE_INVALID,
            })?;
        Ok((s, h))
    }

    fn sign_raw(&self, s: &Session, key: ObjectHandle, msg: &[u8]) -> Result<Vec<u8>, CkError> {
        match self.suite {
            Suite::Ed25519 => s.sign(
                &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                key,
                msg,
            ),
            Suite::P256 => s.sign(&Mechanism::Ecdsa, key, &Sha256::digest(msg)),
            // No signer of this suite is ever built (`unsupported`).
            Suite::MlDsa44 => Err(CkError::NotSupported),
        }
    }

    /// Drop the session (the next signature opens a new one): for tests of
    /// the reconnect path and for operators after a token swap.
    pub fn close_session(&self) {
        if let Ok(mut g) = self.state.lock() {
            *g = None;
        }
    }

    /// Log the signer's session out, as a token reset would: the next
    /// signature meets `CKR_USER_NOT_LOGGED_IN` and reconnects.
    pub fn logout_session(&self) -> Result<(), HsmError> {
        let g = self
            .state
            .lock()
            .map_err(|_| HsmError::Config("signer lock poisoned".into()))?;
        if let Some((s, _)) = g.as_ref() {
            s.logout().map_err(device("log out"))?;
        }
        Ok(())
    }
}

impl Signer for HsmSigner {
    fn suite(&self) -> Suite {
        self.suite
    }
    fn public_key(&self) -> PublicKey {
        self.public.clone()
    }
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut g = self.state.lock().map_err(|_| SignError::Device {
            what: "lock session",
            code: 0,
        })?;
        if g.is_none() {
            *g = Some(self.reopen()?);
        }
        let first = match g.as_ref() {
            Some((s, k)) => self.sign_raw(s, *k, msg),
            None => {
                return Err(SignError::Device {
                    what: "open session",
                    code: 0,
                });
            }
        };
        let sig = match first {
            Ok(sig) => sig,
            Err(e) if reconnectable(&e) => {
                *g = None;
                let (s, k) = self.reopen()?;
                let sig = self.sign_raw(&s, k, msg).map_err(|e| SignError::Device {
                    what: "sign",
                    code: rv::error_code(&e),
                })?;
                *g = Some((s, k));
                sig
            }
            Err(e) => {
                return Err(SignError::Device {
                    what: "sign",
                    code: rv::error_code(&e),
                });
            }
        };
        drop(g);
        if sig.len() != self.suite.signature_len() {
            return Err(SignError::BadOutput);
        }
        self.public.verify(msg, &sig).map_err(|e: SignatureError| {
            let _ = e;
            SignError::BadOutput
        })?;
        Ok(sig)
    }
}

/// Initialize the first free (uninitialized) token of `module` with a label,
/// an SO PIN and a user PIN, as `softhsm2-util --init-token --free` does.
/// For provisioning a software token (SoftHSM2) and for tests; a hardware
/// HSM is initialized with its vendor's tools.
pub fn init_free_token(
    module: &Path,
    label: &str,
    so_pin: &str,
    user_pin: &str,
) -> Result<(), HsmError> {
    static INIT: Mutex<()> = Mutex::new(());
    let _g = INIT
        .lock()
        .map_err(|_| HsmError::Config("token init lock poisoned".into()))?;
    let ctx = context(module)?;
    let mut free = None;
    for slot in ctx.get_all_slots().map_err(device("list slots"))? {
        let info = ctx.get_token_info(slot).map_err(device("token info"))?;
        if !info.token_initialized() {
            free = Some(slot);
            break;
        }
    }
    let slot = free.ok_or_else(|| HsmError::TokenNotFound("uninitialized (free)".into()))?;
    let so = AuthPin::from(so_pin.to_string());
    ctx.init_token(slot, &so, label)
        .map_err(device("init token"))?;
    let s = ctx.open_rw_session(slot).map_err(device("open session"))?;
    s.login(UserType::So, Some(&so))
        .map_err(device("log in as SO"))?;
    s.init_pin(&AuthPin::from(user_pin.to_string()))
        .map_err(device("init user pin"))?;
    Ok(())
}

impl Token {
    /// Change the token's user PIN from the one this handle logged in with
    /// to `new_pin` (`C_SetPIN`). Sessions logged in stay logged in; a new
    /// login (this handle's included) needs the new PIN.
    pub fn change_pin(&self, new_pin: &str) -> Result<(), HsmError> {
        let s = self.session()?;
        s.set_pin(&self.pin, &AuthPin::from(new_pin.to_string()))
            .map_err(device("set pin"))
    }

    /// Log the user out of the token (`C_Logout`): PKCS#11 login is per
    /// application, so every session of this process on the token is
    /// logged out, as a token reset would do; the next operation of a
    /// signer or a vault logs in again.
    pub fn logout(&self) -> Result<(), HsmError> {
        let s = self.session()?;
        s.logout().map_err(device("log out"))
    }

    /// How the key of `class` labelled `label` is protected (an audit: the
    /// vault's keys must be sensitive, not extractable, `CKA_VALUE` refused).
    pub fn key_protection(
        &self,
        label: &str,
        class: ObjectClass,
    ) -> Result<KeyProtection, HsmError> {
        let s = self.session()?;
        let h = find_one(&s, label, class)?.ok_or_else(|| HsmError::KeyNotFound(label.into()))?;
        let attrs = s
            .get_attributes(h, &[AttributeType::Sensitive, AttributeType::Extractable])
            .map_err(device("read attribute"))?;
        let mut p = KeyProtection {
            sensitive: false,
            extractable: true,
            value_readable: true,
        };
        for a in attrs {
            match a {
                Attribute::Sensitive(b) => p.sensitive = b,
                Attribute::Extractable(b) => p.extractable = b,
                _ => {}
            }
        }
        p.value_readable = match s.get_attributes(h, &[AttributeType::Value]) {
            Ok(attrs) => attrs
                .iter()
                .any(|a| matches!(a, Attribute::Value(v) if !v.is_empty())),
            Err(CkError::Pkcs11(RvError::AttributeSensitive, _)) => false,
            Err(e) => return Err(device("read attribute")(e)),
        };
        Ok(p)
    }

    /// Suspend (or resume) the use of the key of `class` labelled `label`
    /// without destroying it: `CKA_ENCRYPT`/`CKA_DECRYPT` of a secret key,
    /// `CKA_SIGN` of a private key set to `!suspended`. An operator's
    /// stop; while suspended, every operation with the key is refused by
    /// the token (`CKR_KEY_FUNCTION_NOT_PERMITTED`).
    pub fn suspend_key(
        &self,
        label: &str,
        class: ObjectClass,
        suspended: bool,
    ) -> Result<(), HsmError> {
        let s = self.session()?;
        let h = find_one(&s, label, class)?.ok_or_else(|| HsmError::KeyNotFound(label.into()))?;
        let attrs = if class == ObjectClass::SECRET_KEY {
            vec![
                Attribute::Encrypt(!suspended),
                Attribute::Decrypt(!suspended),
            ]
        } else {
            vec![Attribute::Sign(!suspended)]
        };
        s.update_attributes(h, &attrs)
            .map_err(device("set attribute"))
    }

    /// Destroy the secret key labelled `label` (decommissioning an
    /// [`HsmVault`]'s sealing key: what it sealed is lost).
    pub fn destroy_secret_key(&self, label: &str) -> Result<(), HsmError> {
        let s = self.session()?;
        let _writes = object_writes();
        let h = find_one(&s, label, ObjectClass::SECRET_KEY)?
            .ok_or_else(|| HsmError::KeyNotFound(label.into()))?;
        s.destroy_object(h).map_err(device("destroy key"))
    }

    /// Destroy the key pair labelled `label` (retiring a key). Signers of it
    /// fail with a device error from then on.
    pub fn destroy_key_pair(&self, label: &str) -> Result<(), HsmError> {
        let s = self.session()?;
        let _writes = object_writes();
        let (private, public) =
            find_pair(&s, label)?.ok_or_else(|| HsmError::KeyNotFound(label.into()))?;
        s.destroy_object(private).map_err(device("destroy key"))?;
        s.destroy_object(public).map_err(device("destroy key"))?;
        Ok(())
    }
}
