//! Reconciliation throughput: N wallets (real TAs, vaults in memory) make P
//! offline payments among themselves in rounds; after each round every
//! wallet syncs, so each payment is reported by its payer and by its payee.
//! Only the sync calls are timed, run by `threads` worker threads, directly
//! through the domain API (SQLite file, PostgreSQL) or as HTTP requests to
//! the real server running in this process.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use offpay_issuer::Issuer;
use offpay_protocol::{Amount, Suite};
use offpay_store::AnyStore;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

use offpay_client::{Client, Timeouts};

use crate::setup::{self, err};
use crate::sys;

/// The HTTP sync clients' timeouts: a large round on a busy machine takes a while.
const HTTP_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(10),
    request: Duration::from_secs(120),
    notice_after: None,
};
/// How long to wait for PostgreSQL to answer before skipping it.
pub const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest payment, in minor units (amounts are 1 to this).
pub const AMOUNT_MINOR_MAX: u64 = 50;
/// Validity of the payment requests. The run follows the real clock but
/// packs what would be days of payments into minutes; a payer keeps each
/// paid request (with its payment) until the request expires, so requests
/// valid for the usual minutes would make every wallet carry all its
/// payments of the run in its state. Ten seconds keeps that list as short
/// as on a device (payment follows request within microseconds here).
pub const REQUEST_SECONDS: u64 = 10;

/// The shape of one reconciliation run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Wallets.
    pub wallets: usize,
    /// Payments in total.
    pub payments: usize,
    /// Sync worker threads (and HTTP client connections).
    pub threads: usize,
    /// Payments each wallet takes part in (paying or paid) between two syncs, on average.
    pub per_round: usize,
}

impl Params {
    /// Payments made in one round.
    pub fn payments_per_round(&self) -> usize {
        (self.wallets * self.per_round / 2).max(1)
    }
    /// Rounds.
    pub fn rounds(&self) -> usize {
        self.payments.div_ceil(self.payments_per_round()).max(1)
    }
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Payments settled per second of sync time.
    pub payments_per_s: f64,
    /// Seconds spent in sync calls (wall clock, all threads together).
    pub sync_seconds: f64,
    /// Payments the issuer settled (must equal the payments made).
    pub settled: u64,
    /// Sync reports reconciled.
    pub reports: u64,
    /// Bytes of all sync reports.
    pub report_bytes: u64,
    /// Resident memory of the process after each round, MiB.
    pub rss_mib_by_round: Vec<f64>,
    /// What each round's syncs added to it (RSS after them minus before), MiB.
    pub rss_growth_mib_by_round: Vec<f64>,
    /// Seconds to create, enroll and load the wallets (untimed).
    pub setup_seconds: f64,
    /// Seconds to make the payments and build the reports (untimed).
    pub payments_seconds: f64,
}

/// Where the reports go.
enum Via<'a> {
    /// `Issuer::sync` in this thread.
    Direct,
    /// `POST /v1/sync` to the server at `addr`; its settled-payments counter.
    Http {
        addr: SocketAddr,
        settled: &'a AtomicU64,
    },
}

/// One reconciled report: its index, the payments it settled, the response.
type Synced = (usize, usize, Vec<u8>);

/// xorshift64: a fixed, reproducible sequence of payments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Two different wallets of `ws`, mutably.
fn pair<T>(ws: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    if a < b {
        let (l, r) = ws.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = ws.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

fn balance(w: &Wallet<MemoryVault>) -> u64 {
    w.balance().map(|a| a.minor).unwrap_or(0)
}

/// Run the benchmark against `issuer`.
#[expect(clippy::many_single_char_names, clippy::too_many_lines)] // lint-exception: one sequence of steps read top to bottom; split by role when next changed; short names follow the fixtures and formulas
fn run(
    issuer: &Issuer<AnyStore>,
    via: Via<'_>,
    suite: Suite,
    p: &Params,
    label: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Run, String> {
    let eur = issuer.currency();
    let t = Instant::now();
    let mut wallets: Vec<Wallet<MemoryVault>> = Vec::with_capacity(p.wallets);
    for k in 0..p.wallets {
        wallets.push(setup::wallet(
            issuer,
            MemoryVault::new(),
            suite,
            &format!("c{k}"),
            sys::now(),
        )?);
    }
    let setup_seconds = t.elapsed().as_secs_f64();
    progress(&format!(
        "{label}: {} wallets enrolled and loaded in {setup_seconds:.1} s",
        p.wallets
    ));

    let settled_before = match &via {
        Via::Http { settled, .. } => settled.load(Ordering::Relaxed),
        Via::Direct => 0,
    };
    let mut conns: Vec<Option<Client>> = (0..p.threads)
        .map(|_| match &via {
            Via::Http { addr, .. } => Some(Client::for_addr(*addr).with_timeouts(HTTP_TIMEOUTS)),
            Via::Direct => None,
        })
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let n = p.wallets as u64;
    let rounds = p.rounds();
    let mut made = 0;
    let mut run = Run {
        payments_per_s: 0.0,
        sync_seconds: 0.0,
        settled: 0,
        reports: 0,
        report_bytes: 0,
        rss_mib_by_round: Vec::with_capacity(rounds),
        rss_growth_mib_by_round: Vec::with_capacity(rounds),
        setup_seconds,
        payments_seconds: 0.0,
    };
    for round in 0..rounds {
        let t = Instant::now();
        let in_round = (p.payments - made).min(p.payments_per_round());
        for _ in 0..in_round {
            let x = rng.next();
            let a = (x % n) as usize;
            let b = ((x >> 20) % (n - 1)) as usize;
            let b = if b >= a { b + 1 } else { b };
            let (mut payer, mut payee) = pair(&mut wallets, a, b);
            // The richer one pays: no wallet runs dry or over its holding limit.
            if balance(payer) < balance(payee) {
                std::mem::swap(&mut payer, &mut payee);
            }
            let amount = Amount::new(1 + (x >> 40) % AMOUNT_MINOR_MAX, eur);
            setup::pay_within(payer, payee, amount, REQUEST_SECONDS, sys::now())?;
        }
        made += in_round;
        let now = sys::now();
        let reports: Vec<Vec<u8>> = wallets
            .iter_mut()
            .map(|w| w.sync_report(now).map_err(err("sync report")))
            .collect::<Result<_, _>>()?;
        run.reports += reports.len() as u64;
        run.report_bytes += reports.iter().map(|r| r.len() as u64).sum::<u64>();
        let made_secs = t.elapsed().as_secs_f64();
        run.payments_seconds += made_secs;

        let rss_before = sys::rss_mib().map(|(rss, _)| rss).unwrap_or(f64::NAN);
        let next = AtomicUsize::new(0);
        let t = Instant::now();
        let results: Vec<Result<Vec<Synced>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = conns
                .iter_mut()
                .map(|conn| {
                    let (next, reports) = (&next, &reports);
                    s.spawn(move || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(r) = reports.get(i) else {
                                return Ok(out);
                            };
                            match conn {
                                None => {
                                    let o =
                                        issuer.sync(r, sys::now()).map_err(err("issuer sync"))?;
                                    out.push((i, o.settled, o.response));
                                }
                                Some(c) => {
                                    let body = c.sync(r).map_err(err("POST /v1/sync"))?;
                                    out.push((i, 0, body));
                                }
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a sync thread panicked".into()))
                })
                .collect()
        });
        let secs = t.elapsed().as_secs_f64();
        run.sync_seconds += secs;
        let now = sys::now();
        for r in results {
            for (i, settled, response) in r? {
                run.settled += settled as u64;
                wallets[i]
                    .apply_sync_response(&response, now)
                    .map_err(err("apply sync response"))?;
            }
        }
        drop(reports);
        let rss = sys::rss_mib().map(|(rss, _)| rss).unwrap_or(f64::NAN);
        run.rss_mib_by_round.push(rss);
        run.rss_growth_mib_by_round.push(rss - rss_before);
        progress(&format!(
            "{label}: round {}/{rounds}: {in_round} payments made in {made_secs:.1} s, {} reports synced in {secs:.2} s ({:.0} payments/s), RSS {rss:.0} MiB",
            round + 1,
            wallets.len(),
            in_round as f64 / secs
        ));
    }
    if let Via::Http { settled, .. } = &via {
        run.settled = settled.load(Ordering::Relaxed) - settled_before;
    }
    run.payments_per_s = p.payments as f64 / run.sync_seconds;

    // Correctness, not timing: the ledger holds, every payment settled
    // exactly once, and the issuer agrees with every wallet's balance.
    setup::check_invariants(issuer)?;
    if run.settled != p.payments as u64 {
        return Err(format!(
            "{label}: {} payments settled, expected exactly {}",
            run.settled, p.payments
        ));
    }
    for w in &wallets {
        let issuer_view = issuer
            .wallet_balance(&w.wallet_id())
            .map_err(err("wallet balance"))?;
        if i64::try_from(balance(w)).ok() != Some(issuer_view) {
            return Err(format!(
                "{label}: wallet {} holds {} but the issuer says {issuer_view}",
                w.wallet_id(),
                balance(w)
            ));
        }
    }
    Ok(run)
}

/// Against `issuer` (any store, any CA key), through `Issuer::sync` in
/// this process, with wallets of `suite`.
pub fn run_on(
    issuer: &Issuer<AnyStore>,
    suite: Suite,
    p: &Params,
    label: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Run, String> {
    run(issuer, Via::Direct, suite, p, label, progress)
}

/// On a SQLite file in a fresh directory under `base`, Ed25519 wallets and CA.
pub fn sqlite(p: &Params, base: &Path, progress: &mut dyn FnMut(&str)) -> Result<Run, String> {
    sqlite_suite(Suite::Ed25519, p, base, "sqlite", progress)
}

/// On a SQLite file in a fresh directory under `base`, wallets and issuer
/// CA keys of `suite`.
pub fn sqlite_suite(
    suite: Suite,
    p: &Params,
    base: &Path,
    label: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<Run, String> {
    let dir = tempfile::Builder::new()
        .prefix("offpay-bench-sqlite-")
        .tempdir_in(base)
        .map_err(err(format!("temporary directory in {}", base.display())))?;
    let store =
        offpay_store::open_sqlite(&dir.path().join("bench.sqlite")).map_err(err("open SQLite"))?;
    let issuer = setup::issuer(store, suite, sys::now())?;
    run(&issuer, Via::Direct, suite, p, label, progress)
}

/// What became of the PostgreSQL run.
#[derive(Clone, Debug, PartialEq)]
pub enum Postgres {
    /// It ran.
    Ran(Run),
    /// The server did not answer: why.
    Skipped(String),
}

/// A fresh schema name per run: `bench_<pid>_<n>`.
fn schema_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// On PostgreSQL at `url`, in a fresh schema dropped at the end. When the
/// server does not answer: skipped, or an error if `required`.
pub fn postgres(
    url: &str,
    required: bool,
    p: &Params,
    progress: &mut dyn FnMut(&str),
) -> Result<Postgres, String> {
    let mut config: postgres::Config = url.parse().map_err(|e| format!("PostgreSQL URL: {e}"))?;
    config.connect_timeout(POSTGRES_CONNECT_TIMEOUT);
    let mut admin = match config.connect(postgres::NoTls) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("PostgreSQL at {} does not answer: {e}", setup::redact(url));
            return if required {
                Err(why)
            } else {
                Ok(Postgres::Skipped(why))
            };
        }
    };
    let schema = schema_name();
    progress(&format!("postgres: schema {schema} (dropped at the end)"));
    let result = (|| {
        let store = offpay_store::open_postgres_schema(url, &schema)
            .map_err(err(format!("open PostgreSQL schema {schema}")))?;
        let issuer = setup::issuer(store, Suite::Ed25519, sys::now())?;
        run(
            &issuer,
            Via::Direct,
            Suite::Ed25519,
            p,
            "postgres",
            progress,
        )
    })();
    let drop_sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    if let Err(e) = admin.batch_execute(&drop_sql) {
        let again = config
            .connect(postgres::NoTls)
            .and_then(|mut c| c.batch_execute(&drop_sql));
        if again.is_err() {
            progress(&format!(
                "postgres: could not drop schema {schema} ({e}): drop it by hand"
            ));
        }
    }
    result.map(Postgres::Ran)
}

/// Over HTTP: the real server (`offpay_server::spawn`) on a loopback port
/// with a SQLite data directory under `base`; wallets are enrolled and loaded
/// through the server's issuer, and every report is `POST /v1/sync`ed by
/// `threads` client threads on keep-alive connections.
pub fn http(p: &Params, base: &Path, progress: &mut dyn FnMut(&str)) -> Result<Run, String> {
    let dir = tempfile::Builder::new()
        .prefix("offpay-bench-http-")
        .tempdir_in(base)
        .map_err(err(format!("temporary directory in {}", base.display())))?;
    let data = dir.path().join("issuer");
    std::fs::create_dir(&data).map_err(err(format!("create {}", data.display())))?;
    // Initialise the issuer the server will open, with the benchmark's policy.
    let key: String = setup::MASTER_KEY
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key_file = data.join(offpay_server::config::MASTER_KEY_FILE);
    std::fs::write(&key_file, format!("{key}\n"))
        .map_err(err(format!("write {}", key_file.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .map_err(err(format!("chmod {}", key_file.display())))?;
    }
    {
        let store = offpay_store::open_sqlite(&data.join(offpay_server::config::SQLITE_FILE))
            .map_err(err("open SQLite"))?;
        setup::issuer(store, Suite::Ed25519, sys::now())?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(err("async runtime"))?;
    let mut config = offpay_server::ServerConfig::with_data_dir(&data);
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.operator_token = Some("offpay-bench-operator-token".into());
    let server = rt
        .block_on(offpay_server::spawn(config))
        .map_err(err("start the server"))?;
    progress(&format!("http: server on {}", server.url()));
    let issuer = server.state.issuer.clone();
    let metrics = server.state.metrics.clone();
    let result = run(
        &issuer,
        Via::Http {
            addr: server.addr,
            settled: &metrics.payments_settled,
        },
        Suite::Ed25519,
        p,
        "http",
        progress,
    );
    drop(issuer);
    let stopped = rt.block_on(server.shutdown());
    let run = result?;
    stopped.map_err(err("server"))?;
    Ok(run)
}
