//! A tiny blocking HTTP/1.1 client over `std::net::TcpStream`: one request
//! per connection (`Connection: close`), `Content-Length` bodies, bounded
//! responses and timeouts. Plain `http://` only: put a TLS-terminating proxy
//! in front of a remote server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

use crate::out::Failure;

/// Connect timeout.
pub const CONNECT_SECONDS_MAX: u64 = 10;
/// Read and write timeout (a large sync may take a while on a busy server).
pub const IO_SECONDS_MAX: u64 = 120;
/// Largest response head (status line and headers).
pub const HEAD_BYTES_MAX: usize = 16 << 10;
/// Largest response body: a SyncResponse plus room.
pub const BODY_BYTES_MAX: usize = offpay_protocol::messages::SYNC_RESPONSE_BYTES_MAX + (64 << 10);
/// Longest server URL accepted.
const URL_BYTES_MAX: usize = 2048;

/// Where the server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    host: String,
    port: u16,
    /// Path prefix without a trailing slash ("" or "/offpay").
    prefix: String,
    /// Operator bearer token for `/v1/admin/...`.
    token: Option<String>,
}

/// An answer.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// `offpay-stranded-minor` (the `/v1/sync` answer): money the issuer
    /// credited to the wallet that its TA does not hold.
    pub stranded_minor: Option<i64>,
}

fn net(url: &str, e: impl std::fmt::Display) -> Failure {
    Failure::refused("network", format!("cannot reach the server at {url}: {e}"))
}

impl Client {
    /// A client for `http://host[:port][/prefix]`.
    pub fn new(url: &str) -> Result<Client, Failure> {
        let bad = |why: &str| Failure::usage(format!("server URL {url:?}: {why}"));
        if url.len() > URL_BYTES_MAX {
            return Err(bad("too long"));
        }
        let rest = match url.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(bad(
                    "https is not supported by this client: use http:// on loopback or behind a TLS proxy",
                ));
            }
            _ => return Err(bad("expected http://HOST[:PORT]")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("expected http://HOST[:PORT]"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("bad IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad("bad port"))?,
                None if after.is_empty() => 80,
                None => return Err(bad("bad port")),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:_".contains(&b))
        {
            return Err(bad("bad host"));
        }
        if !path
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
        {
            return Err(bad("bad path"));
        }
        Ok(Client {
            host,
            port,
            prefix: path.to_string(),
            token: None,
        })
    }

    /// The same client sending `Authorization: Bearer <token>`.
    pub fn with_token(mut self, token: &str) -> Client {
        self.token = Some(token.to_string());
        self
    }

    /// The base URL.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.prefix)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.prefix)
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Result<Response, Failure> {
        self.send("GET", path, None, &[])
    }

    /// POST a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> Result<Response, Failure> {
        self.send(
            "POST",
            path,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    /// POST a CBOR message.
    pub fn post_cbor(&self, path: &str, body: &[u8]) -> Result<Response, Failure> {
        self.send("POST", path, Some("application/cbor"), body)
    }

    /// GET and expect a JSON object (2xx), or fail with the server's reason.
    pub fn get_json(&self, path: &str) -> Result<Value, Failure> {
        self.get(path)?.json()
    }

    /// POST JSON and expect a JSON object (2xx), or fail with the server's reason.
    pub fn post_json_ok(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.post_json(path, body)?.json()
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, Failure> {
        let url = self.url();
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| net(&url, e))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(CONNECT_SECONDS_MAX)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(net(&url, e)),
            (None, None) => return Err(net(&url, "no address")),
        };
        let timeout = Some(Duration::from_secs(IO_SECONDS_MAX));
        stream.set_read_timeout(timeout).map_err(|e| net(&url, e))?;
        stream
            .set_write_timeout(timeout)
            .map_err(|e| net(&url, e))?;
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json, application/cbor\r\nUser-Agent: offpay-cli/{}\r\nContent-Length: {}\r\n",
            self.prefix,
            env!("CARGO_PKG_VERSION"),
            body.len()
        );
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if let Some(t) = &self.token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        msg.extend_from_slice(body);
        stream.write_all(&msg).map_err(|e| net(&url, e))?;
        stream.flush().map_err(|e| net(&url, e))?;
        read_response(BufReader::new(stream)).map_err(|e| net(&url, e))
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as a JSON object (2xx), or the server's refusal.
    pub fn json(self) -> Result<Value, Failure> {
        self.success()?;
        serde_json::from_slice(&self.body).map_err(|e| {
            Failure::refused(
                "bad_response",
                format!("the server's answer is not JSON: {e}"),
            )
        })
    }

    /// Ok for 2xx; otherwise the refusal the error body states.
    pub fn success(&self) -> Result<(), Failure> {
        if self.is_success() {
            return Ok(());
        }
        let parsed: Option<Value> = serde_json::from_slice(&self.body).ok();
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let code = field("code").unwrap_or_else(|| format!("http_{}", self.status));
        let message = field("message").unwrap_or_else(|| {
            String::from_utf8_lossy(&self.body[..self.body.len().min(200)]).into_owned()
        });
        Err(Failure::refused(
            code,
            format!("the server refused (HTTP {}): {message}", self.status),
        ))
    }
}

fn read_line_bounded(r: &mut impl BufRead, budget: &mut usize) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if n > *budget {
        return Err(std::io::Error::other("response head too large"));
    }
    *budget -= n;
    if !line.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed in the response head",
        ));
    }
    String::from_utf8(line)
        .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
        .map_err(|_| std::io::Error::other("response head is not UTF-8"))
}

fn read_response(mut r: impl BufRead) -> std::io::Result<Response> {
    let mut budget = HEAD_BYTES_MAX;
    let status_line = read_line_bounded(&mut r, &mut budget)?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut content_length = None;
    let mut chunked = false;
    let mut content_type = None;
    let mut stranded_minor = None;
    loop {
        let line = read_line_bounded(&mut r, &mut budget)?;
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = Some(
                    v.parse::<usize>()
                        .map_err(|_| std::io::Error::other("bad Content-Length"))?,
                );
            }
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "content-type" => content_type = Some(v.to_string()),
            "offpay-stranded-minor" => stranded_minor = v.parse::<i64>().ok(),
            _ => {}
        }
    }
    let too_large = || std::io::Error::other(format!("response body over {BODY_BYTES_MAX} bytes"));
    let body = if chunked {
        let mut body = Vec::new();
        loop {
            let mut line_budget = 1024;
            let size_line = read_line_bounded(&mut r, &mut line_budget)?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() + size > BODY_BYTES_MAX {
                return Err(too_large());
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
        body
    } else if let Some(n) = content_length {
        if n > BODY_BYTES_MAX {
            return Err(too_large());
        }
        let mut body = vec![0u8; n];
        r.read_exact(&mut body)?;
        body
    } else {
        let mut body = Vec::new();
        r.take(BODY_BYTES_MAX as u64 + 1).read_to_end(&mut body)?;
        if body.len() > BODY_BYTES_MAX {
            return Err(too_large());
        }
        body
    };
    Ok(Response {
        status,
        content_type,
        body,
        stranded_minor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let c = Client::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(c.url(), "http://127.0.0.1:8080");
        let c = Client::new("http://example.invalid/offpay/").unwrap();
        assert_eq!(c.url(), "http://example.invalid:80/offpay");
        let c = Client::new("http://[::1]:9000").unwrap();
        assert_eq!(c.url(), "http://[::1]:9000");
        for bad in [
            "https://x",
            "ftp://x",
            "127.0.0.1:8080",
            "http://",
            "http://u:p@x",
            "http://x:99999",
            "http://x y",
        ] {
            assert!(Client::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_length_chunked_and_close_delimited_bodies() {
        let r = read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"[..]).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let r = read_response(
            &b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"abcde"[..]));
        let r = read_response(&b"HTTP/1.0 200 OK\r\n\r\nrest"[..]).unwrap();
        assert_eq!(r.body, b"rest");
    }

    #[test]
    fn refuses_oversized_and_broken_responses() {
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            BODY_BYTES_MAX + 1
        );
        assert!(read_response(big.as_bytes()).is_err());
        let long_head = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(HEAD_BYTES_MAX)
        );
        assert!(read_response(long_head.as_bytes()).is_err());
        assert!(read_response(&b"garbage\r\n\r\n"[..]).is_err());
        assert!(read_response(&b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab"[..]).is_err());
    }

    #[test]
    fn error_bodies_become_refusals() {
        let r = Response {
            status: 409,
            content_type: Some("application/json".into()),
            body: br#"{"code":"insufficient_funds","message":"not enough"}"#.to_vec(),
            stranded_minor: None,
        };
        let e = r.json().unwrap_err();
        assert_eq!(e.code(), "insufficient_funds");
        assert!(e.to_string().contains("not enough"));
    }
}
