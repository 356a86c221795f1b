//! The `[hsm]` configuration: module, token, PIN source, key labels.

use std::fmt;
use std::path::PathBuf;

use crate::HsmError;

/// Which token: by label (`token=offpay`) or slot id (`slot=0x1234`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    /// `CKA_LABEL` of the token (trailing blanks ignored).
    Label(String),
    /// The slot id.
    Slot(u64),
}

impl fmt::Display for TokenRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenRef::Label(l) => write!(f, "labelled {l:?}"),
            TokenRef::Slot(s) => write!(f, "in slot {s:#x}"),
        }
    }
}

/// Where the user PIN is read from: never the configuration itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinSource {
    /// `env:VAR`: an environment variable.
    Env(String),
    /// `file:PATH`: the first line of a file.
    File(PathBuf),
}

impl PinSource {
    /// Parse `env:VAR` or `file:PATH`.
    pub fn parse(s: &str) -> Result<PinSource, HsmError> {
        if let Some(v) = s.strip_prefix("env:") {
            if v.is_empty() {
                return Err(HsmError::Config("pin=env: needs a variable name".into()));
            }
            Ok(PinSource::Env(v.into()))
        } else if let Some(p) = s.strip_prefix("file:") {
            if p.is_empty() {
                return Err(HsmError::Config("pin=file: needs a path".into()));
            }
            Ok(PinSource::File(p.into()))
        } else {
            Err(HsmError::Config(format!(
                "pin must be env:VAR or file:PATH (a PIN is never written in the configuration), got {s:?}"
            )))
        }
    }

    /// The PIN.
    pub fn read(&self) -> Result<String, HsmError> {
        let pin = match self {
            PinSource::Env(v) => std::env::var(v)
                .map_err(|_| HsmError::Pin(format!("environment variable {v} is not set")))?,
            PinSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| HsmError::Pin(format!("cannot read {}: {e}", p.display())))?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
        };
        if pin.is_empty() {
            return Err(HsmError::Pin(format!("{self} gives an empty PIN")));
        }
        Ok(pin)
    }
}

impl fmt::Display for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::Env(v) => write!(f, "env:{v}"),
            PinSource::File(p) => write!(f, "file:{}", p.display()),
        }
    }
}

/// The token holding an issuer's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HsmConfig {
    /// The PKCS#11 module (`.so`), loaded at run time.
    pub module: PathBuf,
    /// The token.
    pub token: TokenRef,
    /// Where the user PIN comes from.
    pub pin: PinSource,
    /// Label of the issuer CA key pair.
    pub issuer_key: String,
    /// Label of the root key pair (a standalone issuer), if in the token.
    pub root_key: Option<String>,
}

impl HsmConfig {
    /// Parse the `--hsm` spec:
    /// `module=PATH,token=LABEL|slot=ID,pin=env:VAR|file:PATH,issuer-key=LABEL[,root-key=LABEL]`.
    pub fn parse(spec: &str) -> Result<HsmConfig, HsmError> {
        let mut module = None;
        let mut token = None;
        let mut pin = None;
        let mut issuer_key = None;
        let mut root_key = None;
        for part in spec.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| HsmError::Config(format!("{part:?} is not key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            if v.is_empty() {
                return Err(HsmError::Config(format!("{k}= is empty")));
            }
            let dup = match k {
                "module" => module.replace(PathBuf::from(v)).is_some(),
                "token" => token.replace(TokenRef::Label(v.into())).is_some(),
                "slot" => token.replace(TokenRef::Slot(parse_slot(v)?)).is_some(),
                "pin" => pin.replace(PinSource::parse(v)?).is_some(),
                "issuer-key" => issuer_key.replace(v.to_string()).is_some(),
                "root-key" => root_key.replace(v.to_string()).is_some(),
                _ => {
                    return Err(HsmError::Config(format!(
                        "unknown key {k:?} (module, token, slot, pin, issuer-key, root-key)"
                    )));
                }
            };
            if dup {
                return Err(HsmError::Config(format!(
                    "{k} given twice (token and slot exclude each other)"
                )));
            }
        }
        Ok(HsmConfig {
            module: module.ok_or_else(|| HsmError::Config("module= is missing".into()))?,
            token: token.ok_or_else(|| HsmError::Config("token= or slot= is missing".into()))?,
            pin: pin.ok_or_else(|| HsmError::Config("pin= is missing".into()))?,
            issuer_key: issuer_key
                .ok_or_else(|| HsmError::Config("issuer-key= is missing".into()))?,
            root_key,
        })
    }
}

fn parse_slot(v: &str) -> Result<u64, HsmError> {
    let r = match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => v.parse(),
    };
    r.map_err(|_| HsmError::Config(format!("slot={v} is not a number")))
}
