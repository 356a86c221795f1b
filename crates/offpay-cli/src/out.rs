//! What a command hands back: a result for people and for scripts, or a
//! failure with its exit code.
//!
//! Exit codes: 0 done; 1 refused (the reason is printed, and nothing
//! changed); 2 usage error; 3 done, but not delivered (the wallet acted, for
//! example debited a payment, and writing or sending its answer failed: the
//! message says what happened and the next step, which is always to repeat
//! the same command, or to sync); 75 wallet busy (another command holds
//! the wallet; nothing changed, try again: `EX_TEMPFAIL` of sysexits.h).
//! With `--json`, stdout carries exactly one JSON object: `{"ok": true, ...}`
//! on success, `{"ok": false, "error": {"code", "message"}}` on failure.

use std::fmt;

use serde_json::{Map, Value, json};

/// Exit code of a refused operation.
pub(crate) const EXIT_REFUSED: u8 = 1;
/// Exit code of a usage error (what clap uses too).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit code of an operation that was done, but whose result did not reach
/// its destination (a file, the peer over the tap, the server).
pub(crate) const EXIT_UNDELIVERED: u8 = 3;
/// Exit code of "wallet is busy" (code `wallet_busy`): another process holds
/// the wallet; nothing changed; try again (`EX_TEMPFAIL`).
pub(crate) const EXIT_BUSY: u8 = 75;

/// Why a command did not do what it was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
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
    /// The operation was done (money moved, durably) but its result was not
    /// delivered (exit 3). `message` says what was done, what failed and the
    /// next step; `done` carries the JSON fields of what was done.
    Undelivered {
        /// Stable snake_case code.
        code: String,
        /// What was done, what failed, what to do next.
        message: String,
        /// What was done (the fields a success would carry).
        done: Map<String, Value>,
    },
}

impl Failure {
    /// A refusal.
    pub(crate) fn refused(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure::Refused {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Done, but not delivered: `done` holds the JSON fields of what was done.
    pub(crate) fn undelivered(
        code: impl Into<String>,
        message: impl Into<String>,
        done: Value,
    ) -> Failure {
        let done = match done {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        Failure::Undelivered {
            code: code.into(),
            message: message.into(),
            done,
        }
    }

    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }

    /// An I/O failure on a named path.
    pub(crate) fn io(what: impl fmt::Display, e: &std::io::Error) -> Failure {
        Failure::refused("io", format!("{what}: {e}"))
    }

    /// The stable code.
    pub(crate) fn code(&self) -> &str {
        match self {
            Failure::Usage(_) => "usage",
            Failure::Refused { code, .. } | Failure::Undelivered { code, .. } => code,
        }
    }

    /// The words for people.
    pub(crate) fn message(&self) -> &str {
        match self {
            Failure::Usage(m) => m,
            Failure::Refused { message, .. } | Failure::Undelivered { message, .. } => message,
        }
    }

    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Refused { code, .. } if code == "wallet_busy" => EXIT_BUSY,
            Failure::Refused { .. } => EXIT_REFUSED,
            Failure::Undelivered { .. } => EXIT_UNDELIVERED,
        }
    }

    /// The JSON object printed with `--json`.
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({"ok": false, "error": {"code": self.code(), "message": self.message()}});
        if let Failure::Undelivered { done, .. } = self {
            v["done"] = Value::Object(done.clone());
        }
        v
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "usage: {m}"),
            Failure::Refused { message, .. } => write!(f, "refused: {message}"),
            Failure::Undelivered { message, .. } => write!(f, "done, but not delivered: {message}"),
        }
    }
}

/// A finished command: lines for people and an object for scripts.
#[derive(Debug, Default)]
pub(crate) struct Done {
    /// Printed without `--json`.
    pub human: String,
    /// Printed with `--json` (an object; `"ok": true` is added).
    pub json: Map<String, Value>,
}

impl Done {
    /// A result with its human text and JSON fields.
    pub(crate) fn new(human: impl Into<String>, json: Value) -> Done {
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

    /// Print it (a closed stdout is not an error: what was done stays done).
    pub(crate) fn print(self, as_json: bool) {
        if as_json {
            let mut m = Map::new();
            m.insert("ok".into(), Value::Bool(true));
            m.extend(self.json);
            stdout_line(&Value::Object(m).to_string());
        } else if !self.human.is_empty() {
            stdout_line(self.human.strip_suffix('\n').unwrap_or(&self.human));
        }
    }
}

/// Write `line` and a newline to stdout, ignoring a closed pipe
/// (`offpay ... | head -1`): output never panics.
pub(crate) fn stdout_line(line: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}").and_then(|()| o.flush());
}

/// Write `line` and a newline to stderr, ignoring a closed stderr.
pub(crate) fn stderr_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Print a failure where it belongs: stdout as JSON, or stderr as text.
pub(crate) fn print_failure(f: &Failure, as_json: bool) {
    if as_json {
        stdout_line(&f.to_json().to_string());
    } else {
        stderr_line(&format!("offpay: {f}"));
    }
}

/// The result of every command.
pub(crate) type Outcome = Result<Done, Failure>;

/// A typed answer as the JSON object a command prints.
pub(crate) fn to_json<T: serde::Serialize>(t: &T) -> Result<Value, Failure> {
    serde_json::to_value(t)
        .map_err(|e| Failure::refused("internal", format!("cannot encode the answer: {e}")))
}
