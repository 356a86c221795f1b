//! HTTP/1.1 on a `TcpStream`: one request out, one bounded response in,
//! every read and write against the request's deadline.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::Phase;

/// A response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Every header, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Size limits of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Status line and headers together.
    pub head_bytes: usize,
    /// The body (after de-chunking).
    pub body_bytes: usize,
}

/// Called once when an exchange has waited `notice_after` with no answer.
pub(crate) type Notice<'a> = &'a mut dyn FnMut(Phase, Duration);

/// A stream whose reads and writes end at a deadline, and that calls a
/// notice once when a read has waited long.
pub(crate) struct Timed {
    stream: TcpStream,
    deadline: Instant,
    notice_at: Option<Instant>,
    started: Instant,
    phase: Phase,
    notice: Option<Box<dyn FnMut(Phase, Duration) + Send>>,
}

impl Timed {
    pub(crate) fn new(stream: TcpStream) -> Timed {
        let now = Instant::now();
        Timed {
            stream,
            deadline: now,
            notice_at: None,
            started: now,
            phase: Phase::Send,
            notice: None,
        }
    }

    /// Arm for one exchange.
    pub(crate) fn arm(
        &mut self,
        deadline: Instant,
        notice_at: Option<Instant>,
        notice: Option<Box<dyn FnMut(Phase, Duration) + Send>>,
    ) {
        self.started = Instant::now();
        self.deadline = deadline;
        self.notice_at = notice_at;
        self.notice = notice;
        self.phase = Phase::Send;
    }

    pub(crate) fn set_phase(&mut self, phase: Phase) {
        self.phase = phase;
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    fn remaining(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
        } else {
            Ok(left)
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let left = self.remaining()?;
            let now = Instant::now();
            let wait = match self.notice_at {
                Some(at) if at > now => left.min(at - now),
                _ => left,
            };
            self.stream.set_read_timeout(Some(wait))?;
            match self.stream.read(buf) {
                Err(e) if is_timeout(&e) => {
                    if self.notice_at.is_some_and(|at| Instant::now() >= at) {
                        self.notice_at = None;
                        let waited = self.started.elapsed();
                        if let Some(f) = self.notice.as_mut() {
                            f(self.phase, waited);
                        }
                    }
                }
                r => return r,
            }
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.remaining()?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Open a connection to one of `addrs` within `timeout`; `notice` is
/// called once if it takes longer than `notice_after`.
pub(crate) fn connect(
    addrs: &[SocketAddr],
    timeout: Duration,
    notice_after: Option<Duration>,
    notice: Notice<'_>,
) -> io::Result<TcpStream> {
    let start = Instant::now();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    let mut noticed = false;
    for a in addrs {
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"));
            }
            // Wait up to the notice first, then the rest (a new attempt).
            let wait = match notice_after {
                Some(n) if !noticed && n > start.elapsed() => left.min(n - start.elapsed()),
                _ => left,
            };
            match TcpStream::connect_timeout(a, wait) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    return Ok(s);
                }
                Err(e) if is_timeout(&e) && wait < left => {
                    noticed = true;
                    notice(Phase::Connect, start.elapsed());
                }
                Err(e) if is_timeout(&e) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timeout"));
                }
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
    }
    Err(last)
}

/// What went wrong reading a response.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing at all came back: on a reused connection, the server closed it
    /// while idle.
    Nothing(io::Error),
    /// The connection failed after the answer began, or timed out.
    Io(io::Error),
    /// Not HTTP/1.x, or over a limit.
    Malformed(String),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

/// Read one line (up to `\n`), counting against `budget`.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> Result<String, ReadError> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n > *budget {
        return Err(ReadError::Malformed("response head too large".into()));
    }
    *budget -= n;
    if !line.ends_with(b"\n") {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in the response head",
        )));
    }
    String::from_utf8(line)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|_| ReadError::Malformed("response head is not UTF-8".into()))
}

/// The response head: status, headers that matter.
struct Head {
    status: u16,
    content_type: Option<String>,
    headers: Vec<(String, String)>,
    length: Option<usize>,
    chunked: bool,
    keep_alive: bool,
}

fn read_head(r: &mut impl BufRead, limits: &Limits) -> Result<Head, ReadError> {
    let mut budget = limits.head_bytes;
    let first = match r.fill_buf() {
        Ok([]) => {
            return Err(ReadError::Nothing(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection without answering",
            )));
        }
        Ok(_) => read_line(r, &mut budget)?,
        Err(e) if is_timeout(&e) => return Err(ReadError::Io(e)),
        Err(e) => return Err(ReadError::Nothing(e)),
    };
    let mut parts = first.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s));
    let Some(status) = status.filter(|_| version.starts_with("HTTP/1.")) else {
        return Err(ReadError::Malformed(format!(
            "not an HTTP/1.x status line: {:?}",
            first.chars().take(80).collect::<String>()
        )));
    };
    let mut head = Head {
        status,
        content_type: None,
        headers: Vec::new(),
        length: None,
        chunked: false,
        keep_alive: version == "HTTP/1.1",
    };
    loop {
        let line = read_line(r, &mut budget)?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed(format!("bad header line {line:?}")));
        };
        let value = value.trim();
        let name = name.trim().to_ascii_lowercase();
        head.headers.push((name.clone(), value.to_string()));
        match name.as_str() {
            "content-length" => {
                let n = value
                    .parse()
                    .map_err(|_| ReadError::Malformed(format!("bad Content-Length {value:?}")))?;
                head.length = Some(n);
            }
            "transfer-encoding" => {
                head.chunked = value.to_ascii_lowercase().contains("chunked");
            }
            "content-type" => head.content_type = Some(value.to_string()),
            "connection" => {
                let v = value.to_ascii_lowercase();
                if v.contains("close") {
                    head.keep_alive = false;
                } else if v.contains("keep-alive") {
                    head.keep_alive = true;
                }
            }
            _ => {}
        }
    }
}

fn too_large(limits: &Limits) -> ReadError {
    ReadError::Malformed(format!("response body over {} bytes", limits.body_bytes))
}

fn read_chunked(r: &mut impl BufRead, limits: &Limits) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut budget = limits.head_bytes;
    loop {
        let line = read_line(r, &mut budget)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ReadError::Malformed(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, &mut budget)?.is_empty() {}
            return Ok(body);
        }
        if size > limits.body_bytes - body.len() {
            return Err(too_large(limits));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line(r, &mut budget)?.is_empty() {
            return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

/// Read one response from a connection; with it, whether the connection can
/// carry another.
pub(crate) fn read_response(
    r: &mut BufReader<Timed>,
    limits: &Limits,
) -> Result<(Response, bool), ReadError> {
    r.get_mut().set_phase(Phase::Head);
    let head = read_head(r, limits)?;
    r.get_mut().set_phase(Phase::Body);
    read_body(r, head, limits)
}

/// Read one response from any byte stream (a test's raw socket), within `limits`.
pub fn parse_response(r: &mut impl BufRead, limits: &Limits) -> Result<Response, String> {
    let head = read_head(r, limits).map_err(|e| e.to_string())?;
    read_body(r, head, limits)
        .map(|(resp, _)| resp)
        .map_err(|e| e.to_string())
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Nothing(e) | ReadError::Io(e) => write!(f, "{e}"),
            ReadError::Malformed(m) => f.write_str(m),
        }
    }
}

fn read_body(
    r: &mut impl BufRead,
    head: Head,
    limits: &Limits,
) -> Result<(Response, bool), ReadError> {
    let mut keep = head.keep_alive;
    let body = if head.chunked {
        read_chunked(r, limits)?
    } else if let Some(n) = head.length {
        if n > limits.body_bytes {
            return Err(too_large(limits));
        }
        let mut b = vec![0; n];
        r.read_exact(&mut b)?;
        b
    } else if head.status == 204 || head.status == 304 || head.status < 200 {
        Vec::new()
    } else {
        // No length: the body runs to the end of the connection.
        keep = false;
        let mut b = Vec::new();
        r.take(limits.body_bytes as u64 + 1).read_to_end(&mut b)?;
        if b.len() > limits.body_bytes {
            return Err(too_large(limits));
        }
        b
    };
    Ok((
        Response {
            status: head.status,
            content_type: head.content_type,
            headers: head.headers,
            body,
        },
        keep,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        head_bytes: 16 << 10,
        body_bytes: 1 << 20,
    };

    fn parse(raw: &[u8]) -> Result<Response, ReadError> {
        let mut r = raw;
        let head = read_head(&mut r, &LIMITS)?;
        read_body(&mut r, head, &LIMITS).map(|(resp, _)| resp)
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let r = parse(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        let r = parse(b"HTTP/1.0 200 OK\r\nRetry-After: 1\r\n\r\nrest").unwrap();
        assert_eq!(r.body, b"rest");
        assert_eq!(r.header("retry-after"), Some("1"));
    }

    #[test]
    fn refuses_oversized_and_broken_responses() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            LIMITS.body_bytes + 1
        );
        assert!(matches!(
            parse(big.as_bytes()),
            Err(ReadError::Malformed(_))
        ));
        let big_chunk = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            LIMITS.body_bytes + 1
        );
        assert!(matches!(
            parse(big_chunk.as_bytes()),
            Err(ReadError::Malformed(_))
        ));
        let long_head = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(LIMITS.head_bytes)
        );
        assert!(matches!(
            parse(long_head.as_bytes()),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"garbage\r\n\r\n"),
            Err(ReadError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"),
            Err(ReadError::Io(_))
        ));
        assert!(matches!(parse(b""), Err(ReadError::Nothing(_))));
    }
}
