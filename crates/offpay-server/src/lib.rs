//! offpay-server: the issuer's HTTP API (axum).
//!
//! Wallet endpoints carry the signed protocol messages (`application/cbor`);
//! operator endpoints need `Authorization: Bearer <operator token>`; the CRL,
//! trust anchors, health, Prometheus metrics and the OpenAPI 3.1 document are
//! public. Every error is `{"code": "<stable code>", "message": "..."}` (see
//! [`error`] for the status table); a client's mistake is never a 500 and
//! posts nothing.
//!
//! Routes (all JSON unless said):
//!
//! | method | path | auth | body -> answer |
//! |---|---|---|---|
//! | POST | `/v1/enroll` | - | `{token, csr}` -> certificate, CA chain, CRL, policy |
//! | POST | `/v1/sync` | - | SyncReport (cbor) -> SyncResponse (cbor) |
//! | POST | `/v1/redeem` | - | Redeem (cbor) -> settlement |
//! | POST | `/v1/admin/customers` | operator | `{id, name}` -> balance (201) |
//! | GET | `/v1/admin/customers/{id}` | operator | balance |
//! | POST | `/v1/admin/customers/{id}/deposit` | operator | `{amount_minor, currency, idempotency_key}` -> balance |
//! | POST | `/v1/admin/customers/{id}/withdraw` | operator | same -> balance |
//! | POST | `/v1/admin/customers/{id}/enrollment-tokens` | operator | -> `{token}` (201) |
//! | GET | `/v1/admin/wallets?customer=&limit=` | operator | wallets |
//! | GET | `/v1/admin/wallets/{id}` | operator | wallet |
//! | POST | `/v1/admin/wallets/{id}/load` | operator | `{amount_minor, currency, idempotency_key}` -> `{voucher, load_seq}` |
//! | POST | `/v1/admin/wallets/{id}/revoke` | operator | `{reason, reason_code?}` -> wallet |
//! | POST | `/v1/admin/wallets/{id}/lock` | operator | `{reason}` -> wallet |
//! | POST | `/v1/admin/wallets/{id}/rekey` | operator | `{suite?, cancel?}` -> wallet |
//! | POST | `/v1/admin/wallets/{id}/unlock` | operator | -> wallet |
//! | POST | `/v1/admin/wallets/{id}/retire` | operator | `{reason: lost\|broken, note?}` -> wallet |
//! | POST | `/v1/admin/lifecycle/close` | operator | `{limit?}` -> what was closed |
//! | GET | `/v1/admin/lifecycle/rules` | operator | the rules for money no TA holds |
//! | POST | `/v1/admin/cases` | operator | `{kind, wallet_id, seq?, opened_by, note?}` -> case (201) |
//! | GET | `/v1/admin/cases` | operator | `?state=&after=&limit=` -> cases |
//! | GET | `/v1/admin/cases/{id}` | operator | case with its events |
//! | POST | `/v1/admin/cases/{id}/decide` | operator | `{actor, note?}` -> case, decided by the liability rules |
//! | POST | `/v1/admin/cases/{id}/resolve` | operator | `{actor, note?}` -> case, resolved or rejected |
//! | GET | `/v1/admin/cases/{id}/bundle` | operator | the signed evidence bundle (base64) |
//! | GET | `/v1/admin/double-spends?payer=&limit=` | operator | double spends with proofs |
//! | GET | `/v1/admin/invariants` | operator | invariant report |
//! | GET | `/v1/admin/scheme` | operator | a member issuer's scheme link status |
//! | POST | `/v1/admin/scheme/sync` | operator | one round of the scheme link now |
//! | GET | `/v1/crl[?format=pem]` | - | CRL (`application/pkix-crl` or PEM) |
//! | GET | `/v1/roots` | - | `{root_pem, issuer_pem}` |
//! | GET | `/healthz` | - | `{status, backend}` |
//! | GET | `/metrics` | - | Prometheus text |
//! | GET | `/openapi.json` | - | OpenAPI 3.1 |
//!
//! A member issuer (configured `scheme.url` and `scheme.token`) runs its
//! [`SchemeLink`] on a background thread (see [`link`]); the scheme
//! operator's own server is [`scheme`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin_scheme;
pub mod api;
pub mod cases;
pub mod config;
pub mod dto;
pub mod error;
pub mod extract;
pub mod lifecycle;
pub mod link;
pub mod metrics;
pub mod openapi;
pub mod privacy;
pub mod scheme;
mod startup;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use offpay_issuer::{Issuer, IssuerError};
use offpay_protocol::Hash32;
use offpay_store::AnyStore;
use tokio::sync::oneshot;
use tracing::Instrument;

pub use crate::config::{ConfigError, LogFormat, ServerArgs, ServerConfig};
use crate::error::ApiError;
use crate::extract::{BODY_BYTES_MAX, SYNC_BODY_BYTES_MAX};
pub use crate::link::{LinkError, LinkStatus, SchemeLink};
pub use crate::metrics::Metrics;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The issuer.
    pub issuer: Arc<Issuer<AnyStore>>,
    /// SHA-256 of the operator token (compared in constant time).
    operator_token_hash: Hash32,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Largest operator deposit, withdrawal or load (minor units).
    pub operator_amount_max_minor: u64,
    /// The scheme link of a member issuer (`scheme.url` configured).
    pub link: Option<Arc<SchemeLink>>,
    /// Pause between two rounds of the link's background thread.
    pub link_interval: std::time::Duration,
    /// Pause between two runs closing the due wallets (zero: never).
    pub close_interval: std::time::Duration,
    /// Pause between two retention passes (zero: never).
    pub retention_interval: std::time::Duration,
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over an issuer with an operator token.
    pub fn new(issuer: Arc<Issuer<AnyStore>>, operator_token: &str) -> AppState {
        AppState {
            issuer,
            operator_token_hash: Hash32::digest(operator_token.as_bytes()),
            metrics: Arc::new(Metrics::default()),
            operator_amount_max_minor: config::OPERATOR_AMOUNT_MAX_MINOR_DEFAULT,
            link: None,
            link_interval: std::time::Duration::from_millis(config::SCHEME_INTERVAL_MS_DEFAULT),
            close_interval: std::time::Duration::from_secs(config::CLOSE_INTERVAL_SECONDS_DEFAULT),
            retention_interval: std::time::Duration::from_secs(
                config::RETENTION_INTERVAL_SECONDS_DEFAULT,
            ),
        }
    }

    /// The same with a link to the scheme at `url` with the issuer's `token`
    /// (its background thread starts with [`spawn`] or [`serve`]).
    pub fn with_scheme_link(mut self, url: &str, token: &str) -> Result<AppState, LinkError> {
        let link =
            SchemeLink::new(self.issuer.clone(), url, token)?.with_metrics(self.metrics.clone());
        self.link = Some(Arc::new(link));
        Ok(self)
    }

    /// The same with another operator amount cap.
    pub fn with_operator_amount_max(mut self, minor: u64) -> AppState {
        self.operator_amount_max_minor = minor;
        self
    }

    /// Whether `token` is the operator token (constant time in the token's content).
    pub fn is_operator_token(&self, token: &str) -> bool {
        let h = Hash32::digest(token.as_bytes());
        let diff =
            h.0.iter()
                .zip(self.operator_token_hash.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

async fn require_operator(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match presented {
        Some(t) if st.is_operator_token(t) => next.run(req).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// A span per request (method, route, status, latency) and the request counters.
async fn track(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        method = %method,
        route = %route,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty
    );
    let start = Instant::now();
    let resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let latency = start.elapsed();
    span.record("status", status);
    span.record("latency_ms", latency.as_secs_f64() * 1e3);
    st.metrics.request(&route, status);
    let _e = span.enter();
    if status >= 500 {
        tracing::warn!("request failed");
    } else {
        tracing::info!("request");
    }
    resp
}

/// The whole API over a state (tests mount it directly).
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/v1/admin/customers", post(api::create_customer))
        .route("/v1/admin/customers/{id}", get(api::get_customer))
        .route("/v1/admin/customers/{id}/deposit", post(api::deposit))
        .route("/v1/admin/customers/{id}/withdraw", post(api::withdraw))
        .route(
            "/v1/admin/customers/{id}/enrollment-tokens",
            post(api::enrollment_token),
        )
        .route("/v1/admin/wallets", get(api::list_wallets))
        .route("/v1/admin/wallets/{id}", get(api::get_wallet))
        .route("/v1/admin/wallets/{id}/load", post(api::load))
        .route("/v1/admin/wallets/{id}/revoke", post(api::revoke))
        .route("/v1/admin/wallets/{id}/lock", post(api::lock))
        .route("/v1/admin/wallets/{id}/rekey", post(api::rekey))
        .route("/v1/admin/wallets/{id}/unlock", post(api::unlock))
        .route(
            "/v1/admin/wallets/{id}/pin-unlock",
            post(api::approve_pin_unlock),
        )
        .route("/v1/admin/wallets/{id}/retire", post(lifecycle::retire))
        .route("/v1/admin/lifecycle/close", post(lifecycle::close))
        .route("/v1/admin/lifecycle/rules", get(lifecycle::rules))
        .route("/v1/admin/cases", post(cases::open).get(cases::list))
        .route("/v1/admin/cases/{id}", get(cases::show))
        .route("/v1/admin/cases/{id}/decide", post(cases::decide))
        .route("/v1/admin/cases/{id}/resolve", post(cases::resolve))
        .route("/v1/admin/cases/{id}/bundle", get(cases::bundle))
        .route("/v1/admin/retention/run", post(privacy::run))
        .route("/v1/admin/wallets/{id}/export", get(privacy::export))
        .route("/v1/admin/double-spends", get(api::double_spends))
        .route("/v1/admin/invariants", get(api::invariants))
        .route("/v1/admin/scheme", get(admin_scheme::status))
        .route("/v1/admin/scheme/sync", post(admin_scheme::sync))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_operator,
        ));
    Router::new()
        .route("/v1/enroll", post(api::enroll))
        .route(
            "/v1/sync",
            post(api::sync).layer(DefaultBodyLimit::max(SYNC_BODY_BYTES_MAX)),
        )
        .route("/v1/redeem", post(api::redeem))
        .route("/v1/pin-unlock", post(api::pin_unlock))
        .route("/v1/crl", get(api::crl))
        .route("/v1/roots", get(api::roots))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::serve))
        .merge(admin)
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Why the server could not start or stopped.
#[derive(Debug)]
pub enum ServerError {
    /// Configuration.
    Config(ConfigError),
    /// A file or socket.
    Io(String, std::io::Error),
    /// Opening the store.
    Store(offpay_issuer::store::StoreError),
    /// Opening or initialising the issuer.
    Issuer(IssuerError),
    /// Opening or initialising the scheme.
    Scheme(offpay_scheme::SchemeError),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Config(e) => write!(f, "configuration: {e}"),
            ServerError::Io(what, e) => write!(f, "{what}: {e}"),
            ServerError::Store(e) => write!(f, "store: {e}"),
            ServerError::Issuer(e) => write!(f, "issuer: {e}"),
            ServerError::Scheme(e) => write!(f, "scheme: {e}"),
        }
    }
}
impl std::error::Error for ServerError {}

impl From<ConfigError> for ServerError {
    fn from(e: ConfigError) -> Self {
        ServerError::Config(e)
    }
}

/// Open the data directory, the store and the issuer (initialising them at
/// the first start) and build the state. Blocking work runs on the blocking pool.
pub async fn prepare(config: &ServerConfig) -> Result<(AppState, Prepared), ServerError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || startup::prepare(&config))
        .await
        .map_err(|e| ServerError::Io("startup task".into(), std::io::Error::other(e.to_string())))?
}

/// What [`prepare`] found or created.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The operator token in force.
    pub operator_token: String,
    /// Where it is stored (`None`: it came from the configuration).
    pub operator_token_file: Option<PathBuf>,
    /// The master key file.
    pub master_key_file: PathBuf,
    /// Whether the issuer was initialised by this start.
    pub initialised: bool,
}

/// A server running in the background.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address (the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// The operator token in force.
    pub operator_token: String,
    /// The shared state (issuer, metrics).
    pub state: AppState,
    /// The serving task; ends after [`RunningServer::shutdown`].
    pub handle: tokio::task::JoinHandle<Result<(), ServerError>>,
    stop: Option<oneshot::Sender<()>>,
    link: Option<LinkThread>,
    closer: Option<lifecycle::Closer>,
    retainer: Option<lifecycle::Closer>,
}

/// The scheme link's background thread and its stop flag.
#[derive(Debug)]
struct LinkThread {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<()>,
}

impl LinkThread {
    fn start(state: &AppState) -> Result<Option<LinkThread>, ServerError> {
        let Some(link) = state.link.clone() else {
            return Ok(None);
        };
        if !state.issuer.is_member() {
            tracing::warn!(
                scheme = link.url(),
                "scheme.url is set but this issuer is standalone: no link runs (offpay admin scheme join first)"
            );
            return Ok(None);
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let url = link.url().to_string();
        let handle = link
            .spawn(state.link_interval, stop.clone())
            .map_err(|e| ServerError::Io("cannot start the scheme link thread".into(), e))?;
        tracing::info!(scheme = %url, "scheme link started");
        Ok(Some(LinkThread { stop, handle }))
    }

    async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let h = self.handle;
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
}

impl RunningServer {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish the requests in flight, and wait for the end.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(c) = self.closer.take() {
            c.stop().await;
        }
        if let Some(c) = self.retainer.take() {
            c.stop().await;
        }
        if let Some(l) = self.link.take() {
            l.stop().await;
        }
        match (&mut self.handle).await {
            Ok(r) => r,
            Err(e) => Err(ServerError::Io(
                "server task".into(),
                std::io::Error::other(e.to_string()),
            )),
        }
    }
}

async fn bind(config: &ServerConfig) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Io(format!("cannot listen on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io("local address".into(), e))?;
    Ok((listener, addr))
}

/// Serve `app` on `listener` in a task until the returned sender fires (or
/// is dropped): then the server stops accepting and finishes what it serves.
/// The issuer server and the scheme server both run this way.
pub(crate) fn serve_in_background(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> (
    tokio::task::JoinHandle<Result<(), ServerError>>,
    oneshot::Sender<()>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .map_err(|e| ServerError::Io("serving".into(), e))
    });
    (handle, tx)
}

/// Prepare, bind (port 0 allowed) and serve in the background. The `offpay`
/// CLI's demo starts the server in-process this way on a free loopback port.
pub async fn spawn(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let (state, prepared) = prepare(&config).await?;
    let (listener, addr) = bind(&config).await?;
    tracing::info!(%addr, "offpay server listening");
    let link = LinkThread::start(&state)?;
    let closer = start_closer(&state)?;
    let retainer = start_retainer(&state)?;
    let (handle, tx) = serve_in_background(listener, router(state.clone()));
    Ok(RunningServer {
        addr,
        operator_token: prepared.operator_token,
        state,
        handle,
        stop: Some(tx),
        link,
        closer,
        retainer,
    })
}

/// Start the thread closing due wallets (none when the interval is zero).
fn start_closer(state: &AppState) -> Result<Option<lifecycle::Closer>, ServerError> {
    lifecycle::Closer::start(&state.issuer, state.close_interval)
        .map_err(|e| ServerError::Io("cannot start the closing thread".into(), e))
}

/// Start the thread running the retention pass (none when the interval is zero).
fn start_retainer(state: &AppState) -> Result<Option<lifecycle::Closer>, ServerError> {
    lifecycle::Closer::periodic(
        &state.issuer,
        state.retention_interval,
        "offpay-retention",
        privacy::prune_all_due,
    )
    .map_err(|e| ServerError::Io("cannot start the retention thread".into(), e))
}

/// Serve until `shutdown` resolves, then finish the requests in flight.
/// Installs the configured log format (unless a subscriber is already set).
pub async fn serve(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    init_logging(config.log_format);
    tracing::info!(config = ?config, "starting offpay server");
    let (state, _prepared) = prepare(&config).await?;
    let (listener, addr) = bind(&config).await?;
    tracing::info!(%addr, backend = offpay_issuer::store::Store::backend(state.issuer.store()), "offpay server listening");
    let link = LinkThread::start(&state)?;
    let closer = start_closer(&state)?;
    let retainer = start_retainer(&state)?;
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Io("serving".into(), e));
    if let Some(l) = link {
        l.stop().await;
    }
    if let Some(c) = closer {
        c.stop().await;
    }
    if let Some(c) = retainer {
        c.stop().await;
    }
    served?;
    tracing::info!("offpay server stopped");
    Ok(())
}

/// Serve until Ctrl-C or SIGTERM (what `offpay server` runs).
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    serve(config, shutdown_signal()).await
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C: shutting down"),
        _ = term => tracing::info!("SIGTERM: shutting down"),
    }
}

/// Install the global tracing subscriber: `RUST_LOG` filter (default `info`),
/// text or JSON lines on stderr. Does nothing if one is already installed.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// A member issuer's CA CSR (DER) for its admission to a scheme under
/// `code` (`offpay admin scheme csr`). Blocking; the server need not run.
pub fn member_csr(config: &ServerConfig, code: &str) -> Result<Vec<u8>, ServerError> {
    startup::member_csr(config, code)
}

/// Make the issuer of `config` a member of a scheme from its admission
/// (`offpay admin scheme join`): the root and the issuer CA certificate (DER).
/// Blocking; run it before the server's first start as a member.
pub fn join_scheme(
    config: &ServerConfig,
    root_der: &[u8],
    ca_cert_der: &[u8],
) -> Result<offpay_protocol::IssuerId, ServerError> {
    startup::join_scheme(config, root_der, ca_cert_der)
}
