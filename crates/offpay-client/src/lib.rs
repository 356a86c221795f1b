//! A typed, bounded, blocking HTTP/1.1 client for the offpay issuer API,
//! over the server's own types ([`offpay_api`]): one method per endpoint.
//!
//! * **Keep-alive**: one connection is reused for every request of a
//!   [`Client`]; a reused connection the server closed while idle (nothing
//!   came back) is retried once on a new one.
//! * **Bounded**: the response head and body have size limits ([`Limits`]);
//!   connecting and each whole request have timeouts ([`Timeouts`]). A
//!   [`Waiting`] notice fires once when a request waits longer than
//!   `Timeouts::notice_after`, so a program can say what it is waiting for.
//! * **Clear errors** ([`Error`]): unreachable, timeout (with its phase), the
//!   server's `{"code", "message"}`, a malformed answer. A typed answer with a
//!   field missing or of another type is [`Error::Malformed`], never a default.
//!
//! Plain `http://` only: put a TLS-terminating proxy in front of a remote server.

mod error;
mod scheme;
mod wire;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::io::{BufReader, Write};

pub use offpay_api as api;
use offpay_api::{
    CaseActionRequest, CaseBundle, CaseList, CaseOpenRequest, CaseView, CasesQuery,
    CloseReportView, CloseRequest, CreateCustomerRequest, CustomerBalance, DoubleSpendList,
    DoubleSpendsQuery, EnrollRequest, EnrollResponse, EnrollmentTokenQuery,
    EnrollmentTokenResponse, ErrorBody, Health, InvariantView, LifecycleRulesView, LoadResponse,
    LockRequest, MoneyRequest, PinUnlockApproval, PinUnlockPending, RedeemResponse, RekeyRequest,
    RetentionReportView, RetentionRunRequest, RetireRequest, RevokeRequest, RootsResponse,
    WalletExportView, WalletList, WalletView, WalletsQuery,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{Error, Phase};
pub use scheme::PKIX_CRL;
pub use wire::{Limits, Response, parse_response};
use wire::{ReadError, Timed};

/// Default time to open a connection.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(5);
/// Default time for a whole request (send, wait, read the answer).
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// Largest response head (status line and headers).
pub const HEAD_BYTES_MAX: usize = 16 << 10;
/// Largest response body: a SyncResponse plus room.
pub const BODY_BYTES_MAX: usize = offpay_protocol::messages::SYNC_RESPONSE_BYTES_MAX + (64 << 10);
/// Longest server URL accepted.
pub const URL_BYTES_MAX: usize = 2048;
/// `Content-Type` of the signed protocol messages.
pub const CBOR: &str = "application/cbor";
/// `Content-Type` of JSON bodies.
pub const JSON: &str = "application/json";

/// How long a client waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection.
    pub connect: Duration,
    /// For a whole request once connected: sending it, waiting for the answer
    /// and reading it.
    pub request: Duration,
    /// When to fire the [`Waiting`] notice (none when `None` or longer than
    /// the timeouts).
    pub notice_after: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: CONNECT_TIMEOUT_DEFAULT,
            request: REQUEST_TIMEOUT_DEFAULT,
            notice_after: None,
        }
    }
}

impl Timeouts {
    /// Connect and request timeouts both `t`.
    pub fn both(t: Duration) -> Timeouts {
        Timeouts {
            connect: t,
            request: t,
            notice_after: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            head_bytes: HEAD_BYTES_MAX,
            body_bytes: BODY_BYTES_MAX,
        }
    }
}

/// A request that has waited long, handed to the notice callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The server.
    pub url: String,
    /// What the request is for ("the sync", "GET /v1/roots").
    pub what: String,
    /// Where the exchange is.
    pub phase: Phase,
    /// How long it has waited.
    pub waited: Duration,
    /// The limit it waits up to.
    pub timeout: Duration,
}

type NoticeFn = Arc<dyn Fn(&Waiting) + Send + Sync>;

/// A client of one server. Cheap to clone (a clone opens its own connection).
pub struct Client {
    host: String,
    port: u16,
    /// Path prefix without a trailing slash ("" or "/offpay").
    prefix: String,
    token: Option<String>,
    timeouts: Timeouts,
    limits: Limits,
    user_agent: String,
    notice: Option<NoticeFn>,
    conn: Mutex<Option<BufReader<Timed>>>,
}

impl Clone for Client {
    fn clone(&self) -> Client {
        Client {
            host: self.host.clone(),
            port: self.port,
            prefix: self.prefix.clone(),
            token: self.token.clone(),
            timeouts: self.timeouts,
            limits: self.limits,
            user_agent: self.user_agent.clone(),
            notice: self.notice.clone(),
            conn: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("timeouts", &self.timeouts)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Percent-encode one path segment (everything but RFC 3986 unreserved bytes).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from optional pairs (`?a=1&b=x`, or "" when none is set).
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", segment(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// What `POST /v1/pin-unlock` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinUnlockAnswer {
    /// Recorded; the operator has not approved it yet (HTTP 202).
    Pending(PinUnlockPending),
    /// The issuer's signed PinUnlock (HTTP 200, CBOR).
    Unlocked(Vec<u8>),
}

/// What `POST /v1/sync` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncAnswer {
    /// The signed SyncResponse.
    pub response: Vec<u8>,
    /// The issuer's stranded figure for the wallet ([`api::STRANDED_HEADER`]),
    /// when the server sent it.
    pub stranded_minor: Option<i64>,
}

impl Client {
    /// A client for `http://host[:port][/prefix]`, with the default timeouts and limits.
    pub fn new(url: &str) -> Result<Client, Error> {
        let bad = |why: &'static str| Error::Url {
            url: url.chars().take(200).collect(),
            why,
        };
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
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            user_agent: format!("offpay-client/{}", env!("CARGO_PKG_VERSION")),
            notice: None,
            conn: Mutex::new(None),
        })
    }

    /// A client for a local address.
    pub fn for_addr(addr: SocketAddr) -> Client {
        let host = addr.ip().to_string();
        Client {
            host,
            port: addr.port(),
            prefix: String::new(),
            token: None,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            user_agent: format!("offpay-client/{}", env!("CARGO_PKG_VERSION")),
            notice: None,
            conn: Mutex::new(None),
        }
    }

    /// Send `Authorization: Bearer <token>` (the operator endpoints need it).
    pub fn with_token(mut self, token: &str) -> Client {
        self.token = Some(token.to_string());
        self
    }

    /// Other timeouts.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Client {
        self.timeouts = timeouts;
        self
    }

    /// Other size limits.
    pub fn with_limits(mut self, limits: Limits) -> Client {
        self.limits = limits;
        self
    }

    /// Another `User-Agent`.
    pub fn with_user_agent(mut self, user_agent: &str) -> Client {
        self.user_agent = user_agent.to_string();
        self
    }

    /// Call `f` once per request that waits longer than `Timeouts::notice_after`.
    pub fn on_waiting(mut self, f: impl Fn(&Waiting) + Send + Sync + 'static) -> Client {
        self.notice = Some(Arc::new(f));
        self
    }

    /// Close the kept-alive connection, if any (the next request opens a new one).
    pub fn close(&self) {
        *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The timeouts in use.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The base URL.
    pub fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}", self.host, self.port, self.prefix)
        } else {
            format!("http://{}:{}{}", self.host, self.port, self.prefix)
        }
    }

    // ---- raw requests --------------------------------------------------------------------

    /// Send a request; any status comes back as a [`Response`]. `what` names it
    /// in notices and errors ("the sync"); `path` is below the URL's prefix.
    pub fn request(
        &self,
        what: &str,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Response, Error> {
        let ct: Vec<(&str, &str)> = content_type
            .map(|c| ("Content-Type", c))
            .into_iter()
            .collect();
        self.request_with(what, method, path, &ct, body)
    }

    /// [`Client::request`] with any extra headers (`Content-Type` among them).
    pub fn request_with(
        &self,
        what: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response, Error> {
        let url = self.url();
        let host = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\nAccept: application/json, application/cbor\r\nUser-Agent: {}\r\nContent-Length: {}\r\n",
            self.prefix,
            self.user_agent,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(t) = &self.token
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let mut msg = head.into_bytes();
        msg.extend_from_slice(body);

        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let reused = slot.is_some();
        match self.exchange(&mut slot, &msg, &url, what) {
            Err(Attempt::Stale(_)) if reused => {
                *slot = None;
                self.exchange(&mut slot, &msg, &url, what)
                    .map_err(|a| a.into_error(&url))
            }
            r => r.map_err(|a| a.into_error(&url)),
        }
    }

    fn notice_for(
        &self,
        url: &str,
        what: &str,
        timeout: Duration,
    ) -> Option<impl Fn(Phase, Duration) + Send + 'static> {
        let f = self.notice.clone()?;
        let (url, what) = (url.to_string(), what.to_string());
        Some(move |phase, waited| {
            f(&Waiting {
                url: url.clone(),
                what: what.clone(),
                phase,
                waited,
                timeout,
            })
        })
    }

    fn exchange(
        &self,
        slot: &mut Option<BufReader<Timed>>,
        msg: &[u8],
        url: &str,
        what: &str,
    ) -> Result<Response, Attempt> {
        let t = self.timeouts;
        let mut conn = match slot.take() {
            Some(c) => c,
            None => {
                let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
                    .to_socket_addrs()
                    .map_err(|e| {
                        Attempt::Failed(Error::Unreachable {
                            url: url.to_string(),
                            error: e.to_string(),
                        })
                    })?
                    .collect();
                let mut notice = self.notice_for(url, what, t.connect);
                let mut call = |p: Phase, d: Duration| {
                    if let Some(f) = notice.as_mut() {
                        f(p, d)
                    }
                };
                let s =
                    wire::connect(&addrs, t.connect, t.notice_after, &mut call).map_err(|e| {
                        Attempt::Failed(if e.kind() == std::io::ErrorKind::TimedOut {
                            Error::Timeout {
                                url: url.to_string(),
                                what: what.to_string(),
                                phase: Phase::Connect,
                                after: t.connect,
                            }
                        } else {
                            Error::Unreachable {
                                url: url.to_string(),
                                error: e.to_string(),
                            }
                        })
                    })?;
                BufReader::new(Timed::new(s))
            }
        };
        let start = Instant::now();
        let notice = self
            .notice_for(url, what, t.request)
            .map(|f| Box::new(f) as Box<dyn FnMut(Phase, Duration) + Send>);
        conn.get_mut()
            .arm(start + t.request, t.notice_after.map(|n| start + n), notice);
        let timeout = |phase| Error::Timeout {
            url: url.to_string(),
            what: what.to_string(),
            phase,
            after: t.request,
        };
        if let Err(e) = conn
            .get_mut()
            .write_all(msg)
            .and_then(|()| conn.get_mut().flush())
        {
            if e.kind() == std::io::ErrorKind::TimedOut {
                return Err(Attempt::Failed(timeout(Phase::Send)));
            }
            return Err(Attempt::Stale(Error::Io {
                url: url.to_string(),
                phase: Phase::Send,
                error: e.to_string(),
            }));
        }
        match wire::read_response(&mut conn, &self.limits) {
            Ok((resp, keep)) => {
                if keep {
                    *slot = Some(conn);
                }
                Ok(resp)
            }
            Err(ReadError::Nothing(e)) => Err(Attempt::Stale(Error::Io {
                url: url.to_string(),
                phase: Phase::Head,
                error: e.to_string(),
            })),
            Err(ReadError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) =>
            {
                Err(Attempt::Failed(timeout(conn.get_ref().phase())))
            }
            Err(ReadError::Io(e)) => Err(Attempt::Failed(Error::Io {
                url: url.to_string(),
                phase: conn.get_ref().phase(),
                error: e.to_string(),
            })),
            Err(ReadError::Malformed(what)) => Err(Attempt::Failed(Error::Malformed {
                url: url.to_string(),
                what,
            })),
        }
    }

    /// `GET path`, any status.
    pub fn get(&self, path: &str) -> Result<Response, Error> {
        self.request(&format!("GET {path}"), "GET", path, None, &[])
    }

    fn get_ok(&self, what: &str, path: &str) -> Result<Response, Error> {
        self.request(what, "GET", path, None, &[])?.ok()
    }

    fn get_typed<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, Error> {
        let url = self.url();
        self.get_ok(what, path)?.decode(&url)
    }

    fn post_typed<B: Serialize, T: DeserializeOwned>(
        &self,
        what: &str,
        path: &str,
        body: &B,
    ) -> Result<T, Error> {
        let url = self.url();
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Malformed {
            url: url.clone(),
            what: format!("the request body does not encode: {e}"),
        })?;
        self.request(what, "POST", path, Some(JSON), &bytes)?
            .ok()?
            .decode(&url)
    }

    fn post_empty_typed<T: DeserializeOwned>(&self, what: &str, path: &str) -> Result<T, Error> {
        let url = self.url();
        self.request(what, "POST", path, None, &[])?
            .ok()?
            .decode(&url)
    }

    fn post_cbor_ok(&self, what: &str, path: &str, body: &[u8]) -> Result<Response, Error> {
        self.request(what, "POST", path, Some(CBOR), body)?.ok()
    }

    // ---- the wallet endpoints ------------------------------------------------------------

    /// `GET /healthz`.
    pub fn health(&self) -> Result<Health, Error> {
        self.get_typed("the health check", "/healthz")
    }

    /// `GET /v1/roots`: the scheme's trust anchors and currency.
    pub fn roots(&self) -> Result<RootsResponse, Error> {
        self.get_typed("the trust anchors (GET /v1/roots)", "/v1/roots")
    }

    /// `POST /v1/enroll`.
    pub fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse, Error> {
        self.post_typed("the enrollment", "/v1/enroll", req)
    }

    /// `POST /v1/sync`: the signed SyncReport in, the signed SyncResponse out.
    pub fn sync(&self, report: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.sync_answer(report)?.response)
    }

    /// [`Client::sync`] with the unsigned information around the answer.
    pub fn sync_answer(&self, report: &[u8]) -> Result<SyncAnswer, Error> {
        let r = self.post_cbor_ok("the sync", "/v1/sync", report)?;
        let stranded_minor = match r.header(api::STRANDED_HEADER) {
            None => None,
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| Error::Malformed {
                url: self.url(),
                what: format!(
                    "the {} header is not an integer: {v:?}",
                    api::STRANDED_HEADER
                ),
            })?),
        };
        if r.content_type.as_deref() != Some(CBOR) {
            return Err(Error::Malformed {
                url: self.url(),
                what: format!(
                    "the sync answer is {}, not {CBOR}",
                    r.content_type.as_deref().unwrap_or("untyped")
                ),
            });
        }
        Ok(SyncAnswer {
            response: r.body,
            stranded_minor,
        })
    }

    /// `POST /v1/pin-unlock`: a PIN-locked wallet's signed request in; the
    /// issuer's signed PinUnlock out once the operator approved, else pending.
    pub fn pin_unlock(&self, request: &[u8]) -> Result<PinUnlockAnswer, Error> {
        let url = self.url();
        let r = self.post_cbor_ok("the PIN unlock request", "/v1/pin-unlock", request)?;
        if r.status == 202 {
            return Ok(PinUnlockAnswer::Pending(r.decode(&url)?));
        }
        if r.content_type.as_deref() != Some(CBOR) {
            return Err(Error::Malformed {
                url,
                what: format!(
                    "the PIN unlock answer is {}, not {CBOR}",
                    r.content_type.as_deref().unwrap_or("untyped")
                ),
            });
        }
        Ok(PinUnlockAnswer::Unlocked(r.body))
    }

    /// `POST /v1/redeem`: a signed redeem entry in.
    pub fn redeem(&self, redeem: &[u8]) -> Result<RedeemResponse, Error> {
        let url = self.url();
        self.post_cbor_ok("the redeem", "/v1/redeem", redeem)?
            .decode(&url)
    }

    /// `GET /v1/crl`: the current CRL, DER.
    pub fn crl_der(&self) -> Result<Vec<u8>, Error> {
        Ok(self.get_ok("the CRL", "/v1/crl")?.body)
    }

    /// `GET /v1/crl?format=pem`: the current CRL, PEM.
    pub fn crl_pem(&self) -> Result<String, Error> {
        let url = self.url();
        let r = self.get_ok("the CRL", "/v1/crl?format=pem")?;
        String::from_utf8(r.body).map_err(|_| Error::Malformed {
            url,
            what: "the PEM CRL is not UTF-8".into(),
        })
    }

    // ---- the operator endpoints ----------------------------------------------------------

    /// `POST /v1/admin/customers`.
    pub fn create_customer(&self, req: &CreateCustomerRequest) -> Result<CustomerBalance, Error> {
        self.post_typed("the new customer", "/v1/admin/customers", req)
    }

    /// `GET /v1/admin/customers/{id}`.
    pub fn customer(&self, id: &str) -> Result<CustomerBalance, Error> {
        self.get_typed(
            "the customer",
            &format!("/v1/admin/customers/{}", segment(id)),
        )
    }

    /// `POST /v1/admin/customers/{id}/deposit`.
    pub fn deposit(&self, id: &str, req: &MoneyRequest) -> Result<CustomerBalance, Error> {
        self.post_typed(
            "the deposit",
            &format!("/v1/admin/customers/{}/deposit", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/customers/{id}/withdraw`.
    pub fn withdraw(&self, id: &str, req: &MoneyRequest) -> Result<CustomerBalance, Error> {
        self.post_typed(
            "the withdrawal",
            &format!("/v1/admin/customers/{}/withdraw", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/customers/{id}/enrollment-tokens`: a personal wallet's token.
    pub fn enrollment_token(&self, customer: &str) -> Result<EnrollmentTokenResponse, Error> {
        self.enrollment_token_for(customer, &EnrollmentTokenQuery::default())
    }

    /// `POST /v1/admin/customers/{id}/enrollment-tokens?profile=...`: a token
    /// for a wallet of the profile asked (`terminal`: a receive-only merchant terminal).
    pub fn enrollment_token_for(
        &self,
        customer: &str,
        q: &EnrollmentTokenQuery,
    ) -> Result<EnrollmentTokenResponse, Error> {
        let qs = query(&[("profile", q.profile.clone())]);
        self.post_empty_typed(
            "the enrollment token",
            &format!(
                "/v1/admin/customers/{}/enrollment-tokens{qs}",
                segment(customer)
            ),
        )
    }

    /// `GET /v1/admin/wallets`.
    pub fn wallets(&self, q: &WalletsQuery) -> Result<WalletList, Error> {
        let qs = query(&[
            ("customer", q.customer.clone()),
            ("limit", q.limit.map(|l| l.to_string())),
        ]);
        self.get_typed("the wallet list", &format!("/v1/admin/wallets{qs}"))
    }

    /// `GET /v1/admin/wallets/{id}` (`id` in hex).
    pub fn wallet(&self, id: &str) -> Result<WalletView, Error> {
        self.get_typed("the wallet", &format!("/v1/admin/wallets/{}", segment(id)))
    }

    /// `POST /v1/admin/wallets/{id}/load`.
    pub fn load(&self, id: &str, req: &MoneyRequest) -> Result<LoadResponse, Error> {
        self.post_typed(
            "the load",
            &format!("/v1/admin/wallets/{}/load", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/wallets/{id}/revoke`.
    pub fn revoke(&self, id: &str, req: &RevokeRequest) -> Result<WalletView, Error> {
        self.post_typed(
            "the revocation",
            &format!("/v1/admin/wallets/{}/revoke", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/wallets/{id}/retire`.
    pub fn retire(&self, id: &str, req: &RetireRequest) -> Result<WalletView, Error> {
        self.post_typed(
            "the retirement",
            &format!("/v1/admin/wallets/{}/retire", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/lifecycle/close`.
    pub fn close_due(&self, req: &CloseRequest) -> Result<CloseReportView, Error> {
        self.post_typed("closing the due wallets", "/v1/admin/lifecycle/close", req)
    }

    /// `POST /v1/admin/retention/run`.
    pub fn run_retention(&self, req: &RetentionRunRequest) -> Result<RetentionReportView, Error> {
        self.post_typed("the retention pass", "/v1/admin/retention/run", req)
    }

    /// `GET /v1/admin/wallets/{id}/export`.
    pub fn export_wallet(&self, id: &str) -> Result<WalletExportView, Error> {
        self.get_typed(
            "the wallet's data",
            &format!("/v1/admin/wallets/{}/export", segment(id)),
        )
    }

    /// `GET /v1/admin/lifecycle/rules`.
    pub fn lifecycle_rules(&self) -> Result<LifecycleRulesView, Error> {
        self.get_typed("the lifecycle rules", "/v1/admin/lifecycle/rules")
    }

    /// `POST /v1/admin/cases`: open a dispute case.
    pub fn open_case(&self, req: &CaseOpenRequest) -> Result<CaseView, Error> {
        self.post_typed("the case", "/v1/admin/cases", req)
    }

    /// `GET /v1/admin/cases`.
    pub fn cases(&self, q: &CasesQuery) -> Result<CaseList, Error> {
        let qs = query(&[
            ("state", q.state.clone()),
            ("after", q.after.map(|a| a.to_string())),
            ("limit", q.limit.map(|l| l.to_string())),
        ]);
        self.get_typed("the case list", &format!("/v1/admin/cases{qs}"))
    }

    /// `GET /v1/admin/cases/{id}`: the case with its events.
    pub fn case(&self, id: u64) -> Result<CaseView, Error> {
        self.get_typed("the case", &format!("/v1/admin/cases/{id}"))
    }

    /// `POST /v1/admin/cases/{id}/decide`.
    pub fn decide_case(&self, id: u64, req: &CaseActionRequest) -> Result<CaseView, Error> {
        self.post_typed("the decision", &format!("/v1/admin/cases/{id}/decide"), req)
    }

    /// `POST /v1/admin/cases/{id}/resolve`.
    pub fn resolve_case(&self, id: u64, req: &CaseActionRequest) -> Result<CaseView, Error> {
        self.post_typed(
            "the resolution",
            &format!("/v1/admin/cases/{id}/resolve"),
            req,
        )
    }

    /// `GET /v1/admin/cases/{id}/bundle`: the signed evidence bundle.
    pub fn case_bundle(&self, id: u64) -> Result<CaseBundle, Error> {
        self.get_typed(
            "the evidence bundle",
            &format!("/v1/admin/cases/{id}/bundle"),
        )
    }

    /// `POST /v1/admin/wallets/{id}/rekey`.
    pub fn rekey(&self, id: &str, req: &RekeyRequest) -> Result<WalletView, Error> {
        self.post_typed(
            "the re-key request",
            &format!("/v1/admin/wallets/{}/rekey", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/wallets/{id}/lock`.
    pub fn lock(&self, id: &str, req: &LockRequest) -> Result<WalletView, Error> {
        self.post_typed(
            "the lock",
            &format!("/v1/admin/wallets/{}/lock", segment(id)),
            req,
        )
    }

    /// `POST /v1/admin/wallets/{id}/pin-unlock`: the operator approves the PIN
    /// unlock the wallet asked for (after the customer re-authenticated).
    pub fn approve_pin_unlock(&self, id: &str) -> Result<PinUnlockApproval, Error> {
        self.post_empty_typed(
            "the PIN unlock approval",
            &format!("/v1/admin/wallets/{}/pin-unlock", segment(id)),
        )
    }

    /// `POST /v1/admin/wallets/{id}/unlock`.
    pub fn unlock(&self, id: &str) -> Result<WalletView, Error> {
        self.post_empty_typed(
            "the unlock",
            &format!("/v1/admin/wallets/{}/unlock", segment(id)),
        )
    }

    /// `GET /v1/admin/double-spends`.
    pub fn double_spends(&self, q: &DoubleSpendsQuery) -> Result<DoubleSpendList, Error> {
        let qs = query(&[
            ("payer", q.payer.clone()),
            ("limit", q.limit.map(|l| l.to_string())),
        ]);
        self.get_typed("the double spends", &format!("/v1/admin/double-spends{qs}"))
    }

    /// `GET /v1/admin/invariants`.
    pub fn invariants(&self) -> Result<InvariantView, Error> {
        self.get_typed("the ledger invariants", "/v1/admin/invariants")
    }
}

/// Why one exchange failed.
enum Attempt {
    /// Nothing came back (or the request could not be written): on a reused
    /// connection, the server closed it while idle; safe to retry once.
    Stale(Error),
    /// Anything else.
    Failed(Error),
}

impl Attempt {
    fn into_error(self, url: &str) -> Error {
        match self {
            Attempt::Stale(Error::Io { error, phase, .. }) => Error::Io {
                url: url.to_string(),
                phase,
                error,
            },
            Attempt::Stale(e) | Attempt::Failed(e) => e,
        }
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Itself for 2xx; otherwise the error the body states ([`Error::Http`]).
    pub fn ok(self) -> Result<Response, Error> {
        if self.is_success() {
            return Ok(self);
        }
        Err(match serde_json::from_slice::<ErrorBody>(&self.body) {
            Ok(b) => Error::Http {
                status: self.status,
                code: b.code,
                message: b.message,
            },
            Err(_) => Error::Http {
                status: self.status,
                code: format!("http_{}", self.status),
                message: String::from_utf8_lossy(&self.body[..self.body.len().min(200)])
                    .into_owned(),
            },
        })
    }

    /// The body as `T` (JSON): every field present and of its type.
    pub fn decode<T: DeserializeOwned>(&self, url: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Malformed {
            url: url.to_string(),
            what: format!("not the expected JSON ({e})"),
        })
    }
}
