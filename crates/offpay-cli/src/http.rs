//! The CLI's side of `offpay-client`: one client per server URL, with the
//! timeouts of `--timeout` / `OFFPAY_TIMEOUT`, a line on stderr (text mode)
//! when a request waits long, and the client's errors as refusals.

use std::sync::OnceLock;
use std::time::Duration;

pub(crate) use offpay_client::Client;
use offpay_client::{Error, Phase, Timeouts, Waiting};

use crate::out::Failure;

/// Default `--timeout`: seconds for a whole request.
pub(crate) const TIMEOUT_SECONDS_DEFAULT: u64 = 30;
/// Largest `--timeout`.
pub(crate) const TIMEOUT_SECONDS_MAX: u64 = 3600;
/// Longest wait for a connection (the request timeout when that is shorter).
const CONNECT_SECONDS_MAX: u64 = 5;
/// After this long without an answer, say what we are waiting for.
const NOTICE_AFTER: Duration = Duration::from_millis(1500);

/// How this process talks to servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Seconds for a whole request.
    pub timeout_seconds: u64,
    /// `--json`: no notices on stderr.
    pub json: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Parse a `--timeout` / `OFFPAY_TIMEOUT` value: whole seconds, 1 to [`TIMEOUT_SECONDS_MAX`].
pub(crate) fn parse_timeout(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=TIMEOUT_SECONDS_MAX).contains(&n) => Ok(n),
        _ => Err(format!(
            "timeout {s:?}: expected whole seconds from 1 to {TIMEOUT_SECONDS_MAX}"
        )),
    }
}

/// Set once, in `main`, before any request.
pub(crate) fn configure(s: Settings) {
    let _ = SETTINGS.set(s);
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        timeout_seconds: TIMEOUT_SECONDS_DEFAULT,
        json: true,
    })
}

/// The timeouts of this process.
pub(crate) fn timeouts() -> Timeouts {
    let secs = settings().timeout_seconds;
    Timeouts {
        connect: Duration::from_secs(secs.min(CONNECT_SECONDS_MAX)),
        request: Duration::from_secs(secs),
        notice_after: Some(NOTICE_AFTER),
    }
}

fn notice(w: &Waiting) {
    let doing = match w.phase {
        Phase::Connect => "to accept the connection for",
        Phase::Send => "to take",
        Phase::Head | Phase::Body => "to answer",
    };
    // A closed stderr is no reason to fail the request.
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "offpay: waiting for the server at {} {doing} {} (up to {} s; --timeout or OFFPAY_TIMEOUT changes it)",
        w.url,
        w.what,
        w.timeout.as_secs()
    );
}

/// A client for `url` with this process's timeouts (and notices in text mode).
pub(crate) fn client(url: &str) -> Result<Client, Failure> {
    let c = Client::new(url)
        .map_err(|e| Failure::usage(e.to_string()))?
        .with_timeouts(timeouts())
        .with_user_agent(concat!("offpay-cli/", env!("CARGO_PKG_VERSION")));
    Ok(if settings().json {
        c
    } else {
        c.on_waiting(notice)
    })
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        match e {
            Error::Url { .. } => Failure::usage(e.to_string()),
            _ => Failure::refused(e.code().to_string(), e.to_string()),
        }
    }
}

/// A binary field of an answer (standard base64), or a refusal naming it.
pub(crate) fn b64_field(what: &str, s: &str) -> Result<Vec<u8>, Failure> {
    offpay_client::api::b64_decode(s).map_err(|_| {
        Failure::refused(
            "bad_response",
            format!("the server's answer is malformed: {what} is not base64"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_whole_seconds_in_range() {
        assert_eq!(parse_timeout("5"), Ok(5));
        assert_eq!(parse_timeout(" 3600 "), Ok(3600));
        for bad in ["0", "3601", "-1", "1.5", "", "ten"] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_errors_keep_their_codes() {
        let f = Failure::from(Error::Http {
            status: 409,
            code: "insufficient_funds".into(),
            message: "not enough".into(),
        });
        assert_eq!(f.code(), "insufficient_funds");
        assert!(f.to_string().contains("not enough"));
        let f = Failure::from(Error::Timeout {
            url: "http://127.0.0.1:1".into(),
            what: "the sync".into(),
            phase: Phase::Head,
            after: Duration::from_secs(2),
        });
        assert_eq!(f.code(), "timeout");
        assert_eq!(f.exit_code(), crate::out::EXIT_REFUSED);
        assert_eq!(
            Failure::from(Client::new("ftp://x").unwrap_err()).exit_code(),
            crate::out::EXIT_USAGE
        );
    }
}
