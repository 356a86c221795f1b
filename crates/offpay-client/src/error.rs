//! Why a request failed: one variant per kind, each naming the server and,
//! for timeouts and I/O, the phase of the exchange.

use std::fmt;
use std::time::Duration;

/// The phase of an exchange a timeout or an I/O error happened in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Opening the TCP connection.
    Connect,
    /// Sending the request.
    Send,
    /// Waiting for the status line and headers.
    Head,
    /// Reading the body.
    Body,
}

impl Phase {
    /// What the client was doing, in words.
    pub fn doing(self) -> &'static str {
        match self {
            Phase::Connect => "connecting",
            Phase::Send => "sending the request",
            Phase::Head => "waiting for the answer",
            Phase::Body => "reading the answer",
        }
    }
}

/// A failed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The server URL is not one this client can use.
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The host name does not resolve, or nothing accepts the connection
    /// (refused, unreachable).
    Unreachable {
        /// The server.
        url: String,
        /// The system's reason.
        error: String,
    },
    /// No answer in time.
    Timeout {
        /// The server.
        url: String,
        /// What the request was for ("the sync", "GET /v1/roots").
        what: String,
        /// Where the exchange was when the time ran out.
        phase: Phase,
        /// The limit that ran out.
        after: Duration,
    },
    /// The connection broke (reset, closed early).
    Io {
        /// The server.
        url: String,
        /// Where the exchange was.
        phase: Phase,
        /// The system's reason.
        error: String,
    },
    /// The server answered with an error status and its `{"code", "message"}`.
    Http {
        /// HTTP status.
        status: u16,
        /// The server's stable code (`http_<status>` when the body has none).
        code: String,
        /// The server's message (the start of the body when it has none).
        message: String,
    },
    /// The answer is not what the API defines: not HTTP, over a size limit,
    /// not the expected JSON (a field missing or of another type).
    Malformed {
        /// The server.
        url: String,
        /// What is wrong.
        what: String,
    },
}

impl Error {
    /// A stable code: the server's own for [`Error::Http`], else `bad_url`,
    /// `network`, `timeout` or `bad_response`.
    pub fn code(&self) -> &str {
        match self {
            Error::Url { .. } => "bad_url",
            Error::Unreachable { .. } | Error::Io { .. } => "network",
            Error::Timeout { .. } => "timeout",
            Error::Http { code, .. } => code,
            Error::Malformed { .. } => "bad_response",
        }
    }
}

fn secs(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url { url, why } => write!(f, "server URL {url:?}: {why}"),
            Error::Unreachable { url, error } => {
                write!(f, "cannot reach the server at {url}: {error}")
            }
            Error::Timeout {
                url,
                what,
                phase,
                after,
            } => write!(
                f,
                "the server at {url} did not answer {what} in time: gave up {} after {}",
                phase.doing(),
                secs(*after)
            ),
            Error::Io { url, phase, error } => {
                write!(
                    f,
                    "cannot reach the server at {url}: {error} ({})",
                    phase.doing()
                )
            }
            Error::Http {
                status, message, ..
            } => write!(f, "the server refused (HTTP {status}): {message}"),
            Error::Malformed { url, what } => {
                write!(f, "the answer of the server at {url} is malformed: {what}")
            }
        }
    }
}

impl std::error::Error for Error {}
