//! A minimal blocking HTTP/1.1 client with keep-alive, for the benchmark's
//! sync clients: one connection reused for many requests, `Content-Length`
//! request bodies, `Content-Length` or chunked response bodies, bounded
//! heads and bodies, and timeouts. Plain `http://` on loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connect timeout.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read and write timeout.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(120);
/// Largest response head (status line and headers).
pub(crate) const HEAD_BYTES_MAX: usize = 16 << 10;
/// Largest response body: a SyncResponse plus room.
pub(crate) const BODY_BYTES_MAX: usize =
    offpay_protocol::messages::SYNC_RESPONSE_BYTES_MAX + (64 << 10);

/// A response.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// One keep-alive connection to a server (reconnects when the server closed it).
#[derive(Debug)]
pub(crate) struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl Connection {
    /// A connection to `addr` (opened at the first request).
    pub(crate) fn new(addr: SocketAddr) -> Connection {
        Connection { addr, stream: None }
    }

    fn connect(&self) -> Result<BufReader<TcpStream>, String> {
        let s = TcpStream::connect_timeout(&self.addr, CONNECT_TIMEOUT)
            .map_err(io("cannot connect to the server"))?;
        s.set_nodelay(true).map_err(io("TCP_NODELAY"))?;
        s.set_read_timeout(Some(IO_TIMEOUT))
            .map_err(io("read timeout"))?;
        s.set_write_timeout(Some(IO_TIMEOUT))
            .map_err(io("write timeout"))?;
        Ok(BufReader::new(s))
    }

    /// `POST path` with `body` of `content_type`. A reused connection that
    /// turns out closed before any answer byte is retried once on a new one.
    pub(crate) fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Response, String> {
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
            self.addr,
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.exchange(&req) {
            Err(Attempt::Stale) if reused => {
                self.stream = None;
                self.exchange(&req).map_err(Attempt::into_message)
            }
            r => r.map_err(Attempt::into_message),
        }
    }

    fn exchange(&mut self, req: &[u8]) -> Result<Response, Attempt> {
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => self.connect().map_err(Attempt::Failed)?,
        };
        if stream.get_mut().write_all(req).is_err() {
            return Err(Attempt::Stale);
        }
        let (resp, keep) = read_response(&mut stream)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(resp)
    }
}

/// Why an exchange failed.
enum Attempt {
    /// The connection was closed before any byte of an answer.
    Stale,
    /// Anything else.
    Failed(String),
}

impl Attempt {
    fn into_message(self) -> String {
        match self {
            Attempt::Stale => "the server closed the connection without answering".into(),
            Attempt::Failed(m) => m,
        }
    }
}

/// Read one line (up to `\n`) into `line`, counting against `budget`.
fn read_line(r: &mut impl BufRead, line: &mut String, budget: &mut usize) -> Result<usize, String> {
    line.clear();
    let n = r
        .take(*budget as u64 + 1)
        .read_line(line)
        .map_err(io("reading the response"))?;
    if n > *budget {
        return Err("response head too large".into());
    }
    *budget -= n;
    Ok(n)
}

fn read_response(r: &mut BufReader<TcpStream>) -> Result<(Response, bool), Attempt> {
    let mut budget = HEAD_BYTES_MAX;
    let mut line = String::new();
    // Nothing at all (closed, reset) on a reused connection: the server
    // closed it while idle. Retrying is safe for a sync: the issuer answers a
    // report it already reconciled with the same response.
    if !matches!(read_line(r, &mut line, &mut budget), Ok(n) if n > 0) {
        return Err(Attempt::Stale);
    }
    let fail = |m: String| Attempt::Failed(m);
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| fail(format!("bad status line {:?}", line.trim_end())))?;
    if !version.starts_with("HTTP/1.") {
        return Err(fail(format!("not HTTP/1.x: {:?}", line.trim_end())));
    }
    let mut length = None;
    let mut chunked = false;
    let mut keep = version == "HTTP/1.1";
    loop {
        let n = read_line(r, &mut line, &mut budget).map_err(fail)?;
        if n == 0 {
            return Err(fail("connection closed in the response head".into()));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(fail(format!("bad header line {l:?}")));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let v: usize = value
                .parse()
                .map_err(|_| fail(format!("bad Content-Length {value:?}")))?;
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                keep = false;
            } else if v.contains("keep-alive") {
                keep = true;
            }
        }
    }
    let body = if chunked {
        read_chunked(r).map_err(fail)?
    } else if let Some(n) = length {
        if n > BODY_BYTES_MAX {
            return Err(fail(format!("response body of {n} bytes is too large")));
        }
        let mut b = vec![0; n];
        r.read_exact(&mut b)
            .map_err(io("reading the body"))
            .map_err(fail)?;
        b
    } else if status == 204 || status == 304 || status < 200 {
        Vec::new()
    } else {
        // No length: the body runs to the end of the connection.
        keep = false;
        let mut b = Vec::new();
        r.take(BODY_BYTES_MAX as u64 + 1)
            .read_to_end(&mut b)
            .map_err(io("reading the body"))
            .map_err(fail)?;
        if b.len() > BODY_BYTES_MAX {
            return Err(fail("response body too large".into()));
        }
        b
    };
    Ok((Response { status, body }, keep))
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut line = String::new();
    let mut budget = HEAD_BYTES_MAX;
    loop {
        read_line(r, &mut line, &mut budget)?;
        let size = line.trim_end().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| format!("bad chunk size {:?}", line.trim_end()))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                if read_line(r, &mut line, &mut budget)? == 0 || line.trim_end().is_empty() {
                    return Ok(body);
                }
            }
        }
        if size > BODY_BYTES_MAX - body.len() {
            return Err("response body too large".into());
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(io("reading a chunk"))?;
        read_line(r, &mut line, &mut budget)?;
        if !line.trim_end().is_empty() {
            return Err("chunk not followed by CRLF".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers each request on one connection with the canned responses in turn.
    fn serve(answers: Vec<&'static str>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            for a in answers {
                let mut len = 0;
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).unwrap();
                    if line.trim_end().is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut b = vec![0; len];
                r.read_exact(&mut b).unwrap();
                r.get_mut().write_all(a.as_bytes()).unwrap();
            }
        });
        addr
    }

    #[test]
    fn keep_alive_length_and_chunked_bodies() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}",
        ]);
        let mut c = Connection::new(addr);
        let r = c.post("/v1/sync", "application/cbor", b"report").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = c.post("/v1/sync", "application/cbor", b"").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = c.post("/v1/sync", "application/cbor", b"x").unwrap();
        assert_eq!(r.status, 503);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let addr = serve(vec!["SMTP ready\r\n\r\n"]);
        let mut c = Connection::new(addr);
        assert!(c.post("/", "text/plain", b"").is_err());
    }
}
