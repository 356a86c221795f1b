//! A member issuer's link to its scheme: one background thread per server
//! (see [`SchemeLink::spawn`]) running rounds, or [`SchemeLink::run_once`]
//! driven by a test, the demo or `POST /v1/admin/scheme/sync`.
//!
//! One round, each step in bounded batches ([`LINK_BATCH`] claims,
//! [`LINK_BATCHES_PER_ROUND`] batches per step):
//! 1. push our CRL when it changed since the last push;
//! 2. pull the root-signed directory and install it (monotone);
//! 3. submit the outbox, record the scheme's outcomes;
//! 4. pull the inbox, apply it (one transaction per batch), ack the results;
//! 5. pull the statements after the last posted cycle, with their claim
//!    ids, and post them.
//!
//! No database transaction is held across an HTTP request: each domain
//! call is its own transaction, between requests. Exactly once comes from
//! the domain calls being idempotent: a claim submitted twice is
//! `already_known`; an inbox claim applied twice is `AlreadyKnown` and
//! changes nothing; a statement posted twice is a no-op per cycle. So a
//! round cut anywhere (crash, kill -9, network) is safely run again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use offpay_api::{ClaimOutcome, InboxQuery, SchemeRound, StatementsQuery, b64_decode};
use offpay_client::Client;
use offpay_issuer::{ClaimAck, Issuer, IssuerError};
use offpay_protocol::Hash32;
use offpay_store::AnyStore;

/// Claims per submit, inbox page and ack.
pub const LINK_BATCH: usize = offpay_api::CLAIMS_PER_REQUEST_MAX;
/// Batches per step of one round (the rest waits for the next round).
pub const LINK_BATCHES_PER_ROUND: usize = 16;
/// Longest pause after failed rounds (the backoff doubles up to it).
pub const LINK_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Largest scheme answer the link reads: a whole directory, plus room.
pub const LINK_BODY_BYTES_MAX: usize = offpay_protocol::messages::DIRECTORY_BYTES_MAX + (64 << 10);
/// Time per scheme request.
pub const LINK_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a round stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The issuer is not a member of a scheme (standalone).
    NotMember,
    /// A scheme request failed.
    Scheme(offpay_client::Error),
    /// The scheme's answer is malformed.
    BadAnswer(String),
    /// The issuer refused or failed.
    Issuer(IssuerError),
    /// Another round is running.
    Busy,
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::NotMember => f.write_str("this issuer is not a member of a scheme"),
            LinkError::Scheme(e) => write!(f, "scheme: {e}"),
            LinkError::BadAnswer(w) => write!(f, "scheme answer: {w}"),
            LinkError::Issuer(e) => write!(f, "issuer: {e}"),
            LinkError::Busy => f.write_str("another round of the scheme link is running"),
        }
    }
}

impl std::error::Error for LinkError {}

impl LinkError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::NotMember => "not_member",
            LinkError::Scheme(_) => "scheme_unavailable",
            LinkError::BadAnswer(_) => "scheme_bad_answer",
            LinkError::Issuer(e) => e.code(),
            LinkError::Busy => "busy",
        }
    }
}

impl From<offpay_client::Error> for LinkError {
    fn from(e: offpay_client::Error) -> Self {
        LinkError::Scheme(e)
    }
}

impl From<IssuerError> for LinkError {
    fn from(e: IssuerError) -> Self {
        LinkError::Issuer(e)
    }
}

/// What the link has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStatus {
    /// Rounds run.
    pub rounds: u64,
    /// When the last round ended well.
    pub last_success: Option<u64>,
    /// The last round's error, if it failed.
    pub last_error: Option<String>,
    /// The last round's figures.
    pub last_round: SchemeRound,
    /// Claims submitted, by result code.
    pub claims_out: std::collections::BTreeMap<String, u64>,
    /// Inbox claims applied, by result code.
    pub claims_in: std::collections::BTreeMap<String, u64>,
}

/// A member issuer's link to its scheme.
pub struct SchemeLink {
    issuer: Arc<Issuer<AnyStore>>,
    client: Client,
    url: String,
    round: Mutex<()>,
    status: Mutex<LinkStatus>,
    last_crl: Mutex<Option<Hash32>>,
    metrics: Option<Arc<crate::Metrics>>,
}

impl std::fmt::Debug for SchemeLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemeLink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn ack_of(o: &ClaimOutcome) -> Option<ClaimAck> {
    match (o.result.as_str(), &o.code) {
        ("accepted", _) => Some(ClaimAck::Accepted),
        ("already_known", _) => Some(ClaimAck::AlreadyKnown),
        ("refused", Some(c)) => Some(ClaimAck::Refused { code: c.clone() }),
        _ => None,
    }
}

fn outcome_of(id: &Hash32, a: &ClaimAck) -> ClaimOutcome {
    let (result, code) = match a {
        ClaimAck::Accepted => ("accepted", None),
        ClaimAck::AlreadyKnown => ("already_known", None),
        ClaimAck::Refused { code } => ("refused", Some(code.clone())),
    };
    ClaimOutcome {
        id: id.to_hex(),
        result: result.into(),
        code,
    }
}

fn hash(s: &str, what: &str) -> Result<Hash32, LinkError> {
    Hash32::from_hex(s)
        .ok_or_else(|| LinkError::BadAnswer(format!("{what} {s:?} is not a claim id")))
}

impl SchemeLink {
    /// A link of `issuer` to the scheme at `url` with the issuer's `token`.
    pub fn new(
        issuer: Arc<Issuer<AnyStore>>,
        url: &str,
        token: &str,
    ) -> Result<SchemeLink, LinkError> {
        let client = Client::new(url)?
            .with_token(token)
            .with_limits(offpay_client::Limits {
                head_bytes: offpay_client::HEAD_BYTES_MAX,
                body_bytes: LINK_BODY_BYTES_MAX,
            })
            .with_timeouts(offpay_client::Timeouts::both(LINK_REQUEST_TIMEOUT))
            .with_user_agent(concat!("offpay-server-link/", env!("CARGO_PKG_VERSION")));
        Ok(SchemeLink {
            issuer,
            client,
            url: url.to_string(),
            round: Mutex::new(()),
            status: Mutex::new(LinkStatus::default()),
            last_crl: Mutex::new(None),
            metrics: None,
        })
    }

    /// Count rounds and claims in the server's metrics too.
    pub fn with_metrics(mut self, metrics: Arc<crate::Metrics>) -> SchemeLink {
        self.metrics = Some(metrics);
        self
    }

    /// The scheme URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the link has done so far.
    pub fn status(&self) -> LinkStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Run one round now (blocking). A round already running elsewhere makes
    /// this one wait for it, then run.
    pub fn run_once(&self) -> Result<SchemeRound, LinkError> {
        let _one = self.round.lock().map_err(|_| LinkError::Busy)?;
        let r = self.round_inner();
        if let Some(m) = &self.metrics {
            m.scheme_round(r.as_ref().ok());
        }
        if let Ok(mut s) = self.status.lock() {
            s.rounds += 1;
            match &r {
                Ok(round) => {
                    s.last_success = Some(crate::api::now().0);
                    s.last_error = None;
                    s.last_round = round.clone();
                }
                Err(e) => s.last_error = Some(e.to_string()),
            }
        }
        r
    }

    fn count(&self, inbound: bool, code: &str, n: u64) {
        if let Some(m) = &self.metrics {
            m.scheme_claims(inbound, code, n);
        }
        if let Ok(mut s) = self.status.lock() {
            let m = if inbound {
                &mut s.claims_in
            } else {
                &mut s.claims_out
            };
            *m.entry(code.to_string()).or_insert(0) += n;
        }
    }

    fn round_inner(&self) -> Result<SchemeRound, LinkError> {
        if !self.issuer.is_member() {
            return Err(LinkError::NotMember);
        }
        let mut round = SchemeRound {
            crl_pushed: self.push_crl()?,
            ..SchemeRound::default()
        };
        let dir = self.client.scheme_directory()?;
        round.directory_version = self.issuer.install_directory(&dir, crate::api::now())?;
        let outbox_more = self.outbox(&mut round)?;
        let inbox_more = self.inbox(&mut round)?;
        let statements_more = self.statements(&mut round)?;
        round.more = outbox_more || inbox_more || statements_more;
        Ok(round)
    }

    /// Our CRL, when it changed since the last push of this process.
    fn push_crl(&self) -> Result<bool, LinkError> {
        let crl = self.issuer.crl()?;
        let h = Hash32::digest(&crl);
        if self.last_crl.lock().map(|l| *l == Some(h)).unwrap_or(false) {
            return Ok(false);
        }
        let pushed = match self.client.scheme_put_crl(&crl) {
            Ok(_) => true,
            // Not newer than what the scheme holds: it already has this one.
            // (After a restart, the first push of the same CRL lands here.)
            Err(offpay_client::Error::Http { code, message, .. }) if code == "invalid_crl" => {
                tracing::info!(%message, "the scheme keeps its copy of our CRL");
                false
            }
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut l) = self.last_crl.lock() {
            *l = Some(h);
        }
        Ok(pushed)
    }

    /// Submit the outbox; true when a batch was full (more to do).
    fn outbox(&self, round: &mut SchemeRound) -> Result<bool, LinkError> {
        let mut more = false;
        for _ in 0..LINK_BATCHES_PER_ROUND {
            let batch = self.issuer.claims_to_submit(LINK_BATCH)?;
            if batch.is_empty() {
                return Ok(false);
            }
            let entries: Vec<Vec<u8>> = batch.iter().map(|(_, b)| b.clone()).collect();
            let out = self.client.scheme_submit(&entries)?;
            let mut results = Vec::with_capacity(batch.len());
            for ((id, _), o) in batch.iter().zip(out.results.iter()) {
                let a = ack_of(o)
                    .ok_or_else(|| LinkError::BadAnswer(format!("claim result {:?}", o.result)))?;
                if matches!(a, ClaimAck::Refused { .. }) {
                    round.refused += 1;
                    tracing::warn!(claim = %id, code = ?o.code, "the scheme refused a claim");
                }
                self.count(false, o.code.as_deref().unwrap_or(&o.result), 1);
                results.push((*id, a));
            }
            self.issuer.claims_submitted(&results, crate::api::now())?;
            round.submitted += batch.len() as u64;
            more = batch.len() == LINK_BATCH;
        }
        Ok(more)
    }

    /// Pull, apply and ack the inbox; true when a page was full.
    fn inbox(&self, round: &mut SchemeRound) -> Result<bool, LinkError> {
        let mut more = false;
        for _ in 0..LINK_BATCHES_PER_ROUND {
            let inbox = self.client.scheme_inbox(&InboxQuery {
                limit: u32::try_from(LINK_BATCH).ok(),
            })?;
            if inbox.claims.is_empty() {
                return Ok(false);
            }
            let mut claims = Vec::with_capacity(inbox.claims.len());
            for c in &inbox.claims {
                let id = hash(&c.id, "inbox claim")?;
                let entry = b64_decode(&c.entry)
                    .map_err(|_| LinkError::BadAnswer("an inbox entry is not base64".into()))?;
                claims.push((id, entry));
            }
            let acks = self
                .issuer
                .apply_scheme_claims(&claims, crate::api::now())?;
            let outcomes: Vec<ClaimOutcome> =
                acks.iter().map(|(id, a)| outcome_of(id, a)).collect();
            for o in &outcomes {
                self.count(true, o.code.as_deref().unwrap_or(&o.result), 1);
            }
            self.client.scheme_ack(&outcomes)?;
            round.inbox += claims.len() as u64;
            more = claims.len() == LINK_BATCH;
        }
        Ok(more)
    }

    /// Pull the statements after the last posted cycle and post them; true
    /// when pages are left.
    fn statements(&self, round: &mut SchemeRound) -> Result<bool, LinkError> {
        for _ in 0..LINK_BATCHES_PER_ROUND {
            let after = self.issuer.last_statement_cycle()?;
            let list = self
                .client
                .scheme_statements(&StatementsQuery { after: Some(after) })?;
            let fresh: Vec<_> = list.statements.iter().filter(|s| s.cycle > after).collect();
            if fresh.is_empty() {
                return Ok(false);
            }
            for s in fresh {
                let bytes = b64_decode(&s.statement)
                    .map_err(|_| LinkError::BadAnswer("a statement is not base64".into()))?;
                let cc = self.client.scheme_cycle_claims(s.cycle)?;
                let ids = cc
                    .claims
                    .iter()
                    .map(|c| hash(c, "cycle claim"))
                    .collect::<Result<Vec<_>, _>>()?;
                self.issuer
                    .apply_statement(&bytes, &ids, crate::api::now())?;
                round.statements += 1;
            }
        }
        Ok(true)
    }

    /// Run rounds on a background thread every `interval` (a failed round
    /// waits longer: doubling up to [`LINK_BACKOFF_MAX`]) until `stop` is set.
    pub fn spawn(
        self: Arc<Self>,
        interval: Duration,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("offpay-scheme-link".into())
            .spawn(move || {
                let mut wait = interval;
                while !stop.load(Ordering::Relaxed) {
                    match self.run_once() {
                        Ok(r) => {
                            if r.submitted + r.inbox + r.statements > 0 {
                                tracing::info!(
                                    submitted = r.submitted,
                                    refused = r.refused,
                                    inbox = r.inbox,
                                    statements = r.statements,
                                    directory = r.directory_version,
                                    "scheme link round"
                                );
                            }
                            wait = if r.more { Duration::ZERO } else { interval };
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "scheme link round failed; backing off");
                            wait = (wait.max(interval) * 2).min(LINK_BACKOFF_MAX.max(interval));
                        }
                    }
                    // Sleep in short steps so that a stop is seen quickly.
                    let mut left = wait;
                    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
                        let step = left.min(Duration::from_millis(50));
                        std::thread::sleep(step);
                        left -= step;
                    }
                }
            })
    }
}
