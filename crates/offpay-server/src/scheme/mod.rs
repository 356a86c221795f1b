//! The scheme operator's HTTP server: its own router, OpenAPI document and
//! metrics, over [`offpay_scheme::Scheme`].
//!
//! Three kinds of routes:
//! * operator routes need `Authorization: Bearer <scheme operator token>`;
//! * issuer routes need the issuer's own token (from its admission): the
//!   token names the issuer, and every issuer route acts as that issuer only
//!   (it can claim only as itself, read only its own inbox and statements);
//! * public routes need nothing.
//!
//! | method | path | auth | body -> answer |
//! |---|---|---|---|
//! | POST | `/v1/scheme/issuers` | operator | `{code, csr}` -> admission (201) |
//! | GET | `/v1/scheme/issuers` | operator | issuers |
//! | POST | `/v1/scheme/issuers/{code}/suspend` | operator | -> directory change |
//! | POST | `/v1/scheme/issuers/{code}/reinstate` | operator | -> directory change |
//! | POST | `/v1/scheme/issuers/{code}/revoke` | operator | -> directory change |
//! | POST | `/v1/scheme/cycles` | operator | -> the closed cycle |
//! | GET | `/v1/scheme/claims?issuer=&disputed=&limit=` | operator | claims |
//! | GET | `/v1/scheme/invariants` | operator | invariant report |
//! | POST | `/v1/scheme/claims` | issuer | `{entries}` -> one outcome per entry |
//! | GET | `/v1/scheme/inbox?limit=` | issuer | claims to apply |
//! | POST | `/v1/scheme/inbox/ack` | issuer | `{acks}` -> count |
//! | PUT | `/v1/scheme/crl` | issuer | CRL (DER) -> directory change |
//! | GET | `/v1/scheme/statements?after=` | issuer | its signed statements |
//! | GET | `/v1/scheme/cycles/{n}/claims` | issuer | its claim ids in cycle n |
//! | GET | `/v1/scheme/directory` | - | the signed Directory (cbor) |
//! | GET | `/v1/roots` | - | `{root_pem, currency}` |
//! | GET | `/healthz`, `/metrics`, `/openapi.json` | - | |

pub mod api;
pub mod config;
pub mod metrics;
pub mod openapi;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use offpay_protocol::Hash32;
use offpay_scheme::{Scheme, SchemeConfig, SchemeError};
use offpay_store::scheme::SchemeDb;
use tokio::sync::oneshot;

pub use self::config::{SchemeArgs, SchemeServerConfig};
pub use self::metrics::SchemeMetrics;
use crate::error::ApiError;
use crate::extract::BODY_BYTES_MAX;
use crate::{ServerError, startup};

/// Largest body of `POST /v1/scheme/claims` (a full batch of payments in base64).
pub const CLAIMS_BODY_BYTES_MAX: usize = 2 << 20;

/// What every scheme handler shares.
#[derive(Clone)]
pub struct SchemeState {
    /// The scheme.
    pub scheme: Arc<Scheme<SchemeDb>>,
    operator_token_hash: Hash32,
    /// Counters.
    pub metrics: Arc<SchemeMetrics>,
}

impl fmt::Debug for SchemeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemeState").finish_non_exhaustive()
    }
}

impl SchemeState {
    /// State over a scheme with an operator token.
    pub fn new(scheme: Arc<Scheme<SchemeDb>>, operator_token: &str) -> SchemeState {
        SchemeState {
            scheme,
            operator_token_hash: Hash32::digest(operator_token.as_bytes()),
            metrics: Arc::new(SchemeMetrics::default()),
        }
    }

    /// Whether `token` is the operator token (constant time in its content).
    pub fn is_operator_token(&self, token: &str) -> bool {
        let h = Hash32::digest(token.as_bytes());
        h.0.iter()
            .zip(self.operator_token_hash.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The bearer token of a request, if any.
pub(crate) fn bearer(req_headers: &axum::http::HeaderMap) -> Option<&str> {
    req_headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

async fn require_operator(State(st): State<SchemeState>, req: Request, next: Next) -> Response {
    match bearer(req.headers()) {
        Some(t) if st.is_operator_token(t) => next.run(req).await,
        _ => ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "scheme operator bearer token missing or wrong",
        )
        .into_response(),
    }
}

async fn track(State(st): State<SchemeState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    st.metrics.request(&route, status);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if status >= 500 {
        tracing::warn!(%method, %route, status, latency_ms = ms, "scheme request failed");
    } else {
        tracing::info!(%method, %route, status, latency_ms = ms, "scheme request");
    }
    resp
}

/// The scheme server's whole API over a state (tests mount it directly).
pub fn router(state: SchemeState) -> Router {
    let operator = Router::new()
        .route(
            "/v1/scheme/issuers",
            post(api::admit).get(api::list_issuers),
        )
        .route("/v1/scheme/issuers/{code}/suspend", post(api::suspend))
        .route("/v1/scheme/issuers/{code}/reinstate", post(api::reinstate))
        .route("/v1/scheme/issuers/{code}/revoke", post(api::revoke))
        .route("/v1/scheme/cycles", post(api::close_cycle))
        .route("/v1/scheme/invariants", get(api::invariants))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_operator,
        ));
    Router::new()
        // GET is the operator's list, POST the issuer's submission: each
        // handler authenticates itself (see api::list_claims, api::submit_claims).
        .route(
            "/v1/scheme/claims",
            get(api::list_claims)
                .post(api::submit_claims)
                .layer(DefaultBodyLimit::max(CLAIMS_BODY_BYTES_MAX)),
        )
        .route("/v1/scheme/inbox", get(api::inbox))
        .route(
            "/v1/scheme/inbox/ack",
            post(api::ack).layer(DefaultBodyLimit::max(CLAIMS_BODY_BYTES_MAX)),
        )
        .route(
            "/v1/scheme/crl",
            put(api::put_crl).layer(DefaultBodyLimit::max(crate::extract::CRL_BODY_BYTES_MAX)),
        )
        .route("/v1/scheme/statements", get(api::statements))
        .route("/v1/scheme/cycles/{n}/claims", get(api::cycle_claims))
        .route("/v1/scheme/directory", get(api::directory))
        .route("/v1/roots", get(api::roots))
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/openapi.json", get(openapi::serve))
        .merge(operator)
        .fallback(crate::api::not_found)
        .method_not_allowed_fallback(crate::api::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// What [`prepare`] found or created.
#[derive(Clone, Debug)]
pub struct SchemePrepared {
    /// The operator token in force.
    pub operator_token: String,
    /// Where it is stored (`None`: it came from the configuration).
    pub operator_token_file: Option<std::path::PathBuf>,
    /// The master key file.
    pub master_key_file: std::path::PathBuf,
    /// Whether the scheme was initialised by this start.
    pub initialised: bool,
}

/// Open the data directory, the master key, the operator token, the scheme
/// database and the scheme (initialising it when the database holds none).
/// Blocking.
pub fn prepare_blocking(
    config: &SchemeServerConfig,
) -> Result<(SchemeState, SchemePrepared), ServerError> {
    startup::ensure_dir(&config.data_dir)?;
    let (master, master_key_file, _) = startup::master_key(&config.master_key_path())?;
    let (token, token_file) =
        startup::operator_token_in(config.operator_token.as_ref(), &config.data_dir)?;
    let target = config.database_target();
    tracing::info!(database = %crate::config::redact_url(&target), "opening the scheme database");
    let db = SchemeDb::open(&target).map_err(|e| ServerError::Scheme(SchemeError::Store(e)))?;
    let entropy = offpay_protocol::OsEntropy::shared();
    let now = crate::api::now();
    let (scheme, initialised) = match Scheme::open(db, &master, entropy.clone()) {
        Ok(s) => (s, false),
        Err(SchemeError::NotInitialized) => {
            let db =
                SchemeDb::open(&target).map_err(|e| ServerError::Scheme(SchemeError::Store(e)))?;
            let sc = SchemeConfig {
                suite: config.suite,
                root_cn: config.root_cn.clone(),
                currency: config.currency,
            };
            let s = Scheme::init(db, &master, &sc, now, entropy).map_err(ServerError::Scheme)?;
            tracing::info!(currency = %config.currency, suite = %config.suite, "scheme initialised: new root key and certificate");
            (s, true)
        }
        Err(e) => return Err(ServerError::Scheme(e)),
    };
    if !initialised && scheme.currency() != config.currency {
        tracing::warn!(configured = %config.currency, scheme = %scheme.currency(), "the scheme was initialised with another currency; the configured one is ignored");
    }
    let state = SchemeState::new(Arc::new(scheme), &token);
    Ok((
        state,
        SchemePrepared {
            operator_token: token,
            operator_token_file: token_file,
            master_key_file,
            initialised,
        },
    ))
}

/// [`prepare_blocking`] on the blocking pool.
pub async fn prepare(
    config: &SchemeServerConfig,
) -> Result<(SchemeState, SchemePrepared), ServerError> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || prepare_blocking(&config))
        .await
        .map_err(|e| ServerError::Io("startup task".into(), std::io::Error::other(e.to_string())))?
}

/// A scheme server running in the background.
#[derive(Debug)]
pub struct RunningScheme {
    /// The bound address.
    pub addr: SocketAddr,
    /// What [`prepare`] found or created.
    pub prepared: SchemePrepared,
    /// The shared state.
    pub state: SchemeState,
    /// The serving task.
    pub handle: tokio::task::JoinHandle<Result<(), ServerError>>,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningScheme {
    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish the requests in flight, wait for the end. The
    /// scheme (and its database connections, whose synchronous drivers block
    /// when they close) is dropped on the blocking pool.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        let RunningScheme {
            state,
            mut handle,
            stop,
            ..
        } = self;
        if let Some(s) = stop {
            let _ = s.send(());
        }
        let r = match (&mut handle).await {
            Ok(r) => r,
            Err(e) => Err(ServerError::Io(
                "server task".into(),
                std::io::Error::other(e.to_string()),
            )),
        };
        let _ = tokio::task::spawn_blocking(move || drop(state)).await;
        r
    }
}

/// Prepare, bind (port 0 allowed) and serve in the background.
pub async fn spawn(config: SchemeServerConfig) -> Result<RunningScheme, ServerError> {
    let (state, prepared) = prepare(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Io(format!("cannot listen on {}", config.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io("local address".into(), e))?;
    tracing::info!(%addr, "offpay scheme server listening");
    let (handle, tx) = crate::serve_in_background(listener, router(state.clone()));
    Ok(RunningScheme {
        addr,
        prepared,
        state,
        handle,
        stop: Some(tx),
    })
}
