//! What a command hands back: a result for people and for scripts, or a
//! failure with its exit code.
//!
//! Exit codes: 0 done, 1 refused (the reason is printed), 2 usage error,
//! 75 wallet busy (another command holds the wallet; nothing changed, try
//! again: `EX_TEMPFAIL` of sysexits.h).
//! With `--json`, stdout carries exactly one JSON object: `{"ok": true, ...}`
//! on success, `{"ok": false, "error": {"code", "message"}}` on failure.

use std::fmt;

use serde_json::{Map, Value, json};

/// Exit code of a refused operation.
pub const EXIT_REFUSED: u8 = 1;
/// Exit code of a usage error (what clap uses too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of "wallet is busy" (code `wallet_busy`): another process holds
/// the wallet; nothing changed; try again (`EX_TEMPFAIL`).
pub const EXIT_BUSY: u8 = 75;

/// Why a command did not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The operation was refused: by the wallet, the server, a file or the
    /// network (exit 1). `code` is stable, `message` is for people.
    Refused {
        /// Stable snake_case code.
        code: String,
        /// What went wrong, in words.
        message: String,
    },
}

impl Failure {
    /// A refusal.
    pub fn refused(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::Refused {
            code: code.into(),
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    /// An I/O failure on a named path.
    pub fn io(what: impl fmt::Display, e: &std::io::Error) -> Failure {
        Failure::refused("io", format!("{what}: {e}"))
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            Failure::Usage(_) => "usage",
            Failure::Refused { code, .. } => code,
        }
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Refused { code, .. } if code == "wallet_busy" => EXIT_BUSY,
            Failure::Refused { .. } => EXIT_REFUSED,
        }
    }

    /// The JSON object printed with `--json`.
    pub fn to_json(&self) -> Value {
        let message = match self {
            Failure::Usage(m) => m,
            Failure::Refused { message, .. } => message,
        };
        json!({"ok": false, "error": {"code": self.code(), "message": message}})
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "usage: {m}"),
            Failure::Refused { message, .. } => write!(f, "refused: {message}"),
        }
    }
}

/// A finished command: lines for people and an object for scripts.
#[derive(Debug, Default)]
pub struct Done {
    /// Printed without `--json`.
    pub human: String,
    /// Printed with `--json` (an object; `"ok": true` is added).
    pub json: Map<String, Value>,
}

impl Done {
    /// A result with its human text and JSON fields.
    pub fn new(human: impl Into<String>, json: Value) -> Done {
        let json = match json {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("result".into(), other);
                m
            }
        };
        Done {
            human: human.into(),
            json,
        }
    }

    /// Print it.
    pub fn print(self, as_json: bool) {
        if as_json {
            let mut m = Map::new();
            m.insert("ok".into(), Value::Bool(true));
            m.extend(self.json);
            println!("{}", Value::Object(m));
        } else if !self.human.is_empty() {
            if self.human.ends_with('\n') {
                print!("{}", self.human);
            } else {
                println!("{}", self.human);
            }
        }
    }
}

/// Print a failure where it belongs: stdout as JSON, or stderr as text.
pub fn print_failure(f: &Failure, as_json: bool) {
    if as_json {
        println!("{}", f.to_json());
    } else {
        eprintln!("offpay: {f}");
    }
}

/// The result of every command.
pub type Outcome = Result<Done, Failure>;
