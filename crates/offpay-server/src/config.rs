//! Server configuration: defaults, then a TOML file, then the environment,
//! then command-line flags (each overriding the one before).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use offpay_protocol::{Currency, Suite};
use serde::Deserialize;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "./offpay-data";
/// Name of the SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "offpay.sqlite";
/// Name of the master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Name of the operator token file inside the data directory.
pub const OPERATOR_TOKEN_FILE: &str = "operator-token";
/// Shortest operator token accepted.
pub const OPERATOR_TOKEN_BYTES_MIN: usize = 16;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    fn parse(s: &str) -> Option<LogFormat> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// The server's configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Directory for the master key, the operator token and the SQLite file.
    pub data_dir: PathBuf,
    /// `postgres://...`; `None`: SQLite at `data_dir/offpay.sqlite`.
    pub database_url: Option<String>,
    /// Operator bearer token; `None`: read `data_dir/operator-token`, or create it.
    pub operator_token: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Currency of a new issuer.
    pub currency: Currency,
    /// Signature suite of a new issuer's CA keys.
    pub suite: Suite,
    /// Largest amount of one operator deposit, withdrawal or load, in minor
    /// units: a sanity cap against a typo of many digits (default
    /// [`OPERATOR_AMOUNT_MAX_MINOR_DEFAULT`]).
    pub operator_amount_max_minor: u64,
    /// The master key file; `None`: `data_dir/master.key` (created at the first start).
    pub master_key_file: Option<PathBuf>,
    /// The scheme link of a member issuer (`[scheme]` in the file).
    pub scheme: SchemeLinkConfig,
    /// The CA keys in a PKCS#11 token: the `--hsm` spec
    /// (`module=PATH,token=LABEL|slot=ID,pin=env:VAR|file:PATH,issuer-key=LABEL,root-key=LABEL`,
    /// [`offpay_hsm::HsmConfig::parse`]; checked when the configuration is
    /// loaded). `None`: the keys are sealed in the store under the master key.
    pub hsm: Option<String>,
    /// The end of a wallet's life (`[lifecycle]` in the file).
    pub lifecycle: LifecycleConfig,
    /// Privacy by retention (`[privacy]` in the file).
    pub privacy: PrivacyConfig,
}

/// How long the pairing of a settled payment's two wallets is kept, and how
/// often the retention pass runs (offpay-issuer's `retention.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacyConfig {
    /// Seconds after settlement a payment's payer-payee pairing is deleted
    /// (once delivered and both wallets checkpointed past it); `None`: keep
    /// the stored window (default: keep forever); 0 in the file, the
    /// environment or a flag sets "keep forever".
    pub retention_seconds: Option<u64>,
    /// Seconds between two retention passes (0: never; the operator calls
    /// `POST /v1/admin/retention/run`).
    pub retention_interval_seconds: u64,
}

/// Default [`PrivacyConfig::retention_interval_seconds`]: hourly.
pub const RETENTION_INTERVAL_SECONDS_DEFAULT: u64 = 3_600;

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            retention_seconds: None,
            retention_interval_seconds: RETENTION_INTERVAL_SECONDS_DEFAULT,
        }
    }
}

impl PrivacyConfig {
    /// The window to store: `Some(None)` for "keep forever" (0), `None` to
    /// keep the stored one.
    pub fn window(&self) -> Option<Option<u64>> {
        self.retention_seconds.map(|s| (s != 0).then_some(s))
    }

    fn apply_file(&mut self, f: Option<FilePrivacyConfig>) {
        if let Some(p) = f {
            if let Some(v) = p.retention_seconds {
                self.retention_seconds = Some(v);
            }
            if let Some(v) = p.retention_interval_seconds {
                self.retention_interval_seconds = v;
            }
        }
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("OFFPAY_RETENTION_SECONDS") {
            self.retention_seconds = Some(
                v.parse()
                    .map_err(|e| ConfigError(format!("OFFPAY_RETENTION_SECONDS={v}: {e}")))?,
            );
        }
        if let Some(v) = env("OFFPAY_RETENTION_INTERVAL_SECONDS") {
            self.retention_interval_seconds = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_RETENTION_INTERVAL_SECONDS={v}: {e}")))?;
        }
        Ok(())
    }

    fn apply_args(&mut self, a: &ServerArgs) {
        if let Some(v) = a.retention_seconds {
            self.retention_seconds = Some(v);
        }
        if let Some(v) = a.retention_interval_seconds {
            self.retention_interval_seconds = v;
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(Some(v)) = self.window()
            && v > offpay_issuer::retention::RETENTION_SECONDS_MAX
        {
            return Err(ConfigError(format!(
                "privacy.retention_seconds must be 0 (keep forever) to {} (got {v})",
                offpay_issuer::retention::RETENTION_SECONDS_MAX
            )));
        }
        if self.retention_interval_seconds > 86_400 {
            return Err(ConfigError(format!(
                "privacy.retention_interval_seconds must be 0 (off) to 86400 (got {})",
                self.retention_interval_seconds
            )));
        }
        Ok(())
    }
}

/// The scheme's rules for money no TA holds, and how often due wallets
/// are closed (offpay-issuer's `lifecycle.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleConfig {
    /// Whether a lost wallet's money is refunded at its close; `None`: keep
    /// the stored rule (default: refund).
    pub refund_lost: Option<bool>,
    /// Seconds after which a payment its payee never held goes back to the
    /// payer; `None`: keep the stored rule (default: 86,400).
    pub return_after_seconds: Option<u64>,
    /// Seconds between two runs of closing the due wallets (0: never; the
    /// operator calls `POST /v1/admin/lifecycle/close`).
    pub close_interval_seconds: u64,
}

/// Default [`LifecycleConfig::close_interval_seconds`]: hourly.
pub const CLOSE_INTERVAL_SECONDS_DEFAULT: u64 = 3_600;

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            refund_lost: None,
            return_after_seconds: None,
            close_interval_seconds: CLOSE_INTERVAL_SECONDS_DEFAULT,
        }
    }
}

/// A member issuer's link to its scheme server.
#[derive(Clone, PartialEq, Eq)]
pub struct SchemeLinkConfig {
    /// The scheme server (`http://...`); `None`: no link runs.
    pub url: Option<String>,
    /// This issuer's bearer token at the scheme (from the admission).
    pub token: Option<String>,
    /// Pause between two rounds of the link, milliseconds.
    pub interval_ms: u64,
}

/// Default [`SchemeLinkConfig::interval_ms`].
pub const SCHEME_INTERVAL_MS_DEFAULT: u64 = 5_000;
/// Shortest [`SchemeLinkConfig::interval_ms`].
pub const SCHEME_INTERVAL_MS_MIN: u64 = 10;
/// Longest [`SchemeLinkConfig::interval_ms`] (one day).
pub const SCHEME_INTERVAL_MS_MAX: u64 = 86_400_000;

impl Default for SchemeLinkConfig {
    fn default() -> Self {
        SchemeLinkConfig {
            url: None,
            token: None,
            interval_ms: SCHEME_INTERVAL_MS_DEFAULT,
        }
    }
}

impl fmt::Debug for SchemeLinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemeLinkConfig")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("interval_ms", &self.interval_ms)
            .finish()
    }
}

/// Default [`ServerConfig::operator_amount_max_minor`]: 1 000 000 000.00 in
/// a two-decimal currency.
pub const OPERATOR_AMOUNT_MAX_MINOR_DEFAULT: u64 = 100_000_000_000;

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("currency", &self.currency)
            .field("suite", &self.suite)
            .field("operator_amount_max_minor", &self.operator_amount_max_minor)
            .field("master_key_file", &self.master_key_file)
            .field("scheme", &self.scheme)
            .field("hsm", &self.hsm)
            .field("lifecycle", &self.lifecycle)
            .field("privacy", &self.privacy)
            .finish()
    }
}

/// A database URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
    {
        let user = userinfo.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            database_url: None,
            operator_token: None,
            log_format: LogFormat::Text,
            currency: Currency::EUR,
            suite: Suite::Ed25519,
            operator_amount_max_minor: OPERATOR_AMOUNT_MAX_MINOR_DEFAULT,
            master_key_file: None,
            scheme: SchemeLinkConfig::default(),
            hsm: None,
            lifecycle: LifecycleConfig::default(),
            privacy: PrivacyConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Defaults with another data directory (tests, the demo).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            ..ServerConfig::default()
        }
    }

    /// The master key file in force.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(MASTER_KEY_FILE))
    }

    /// The SQLite file used when no database URL is configured.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(SQLITE_FILE)
    }

    /// What the store is opened with: the database URL or the SQLite file path.
    pub fn database_target(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => self.sqlite_path().to_string_lossy().into_owned(),
        }
    }

    /// Defaults, the `--config` file, the process environment, then the flags.
    pub fn load(args: &ServerArgs) -> Result<ServerConfig, ConfigError> {
        Self::load_with_env(args, |k| std::env::var(k).ok())
    }

    /// As [`ServerConfig::load`], with the environment given as a lookup function.
    pub fn load_with_env(
        args: &ServerArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut c = ServerConfig::default();
        let config_file = args
            .config
            .clone()
            .or_else(|| env("OFFPAY_CONFIG").map(PathBuf::from));
        if let Some(path) = &config_file {
            c.apply_file(path)?;
        }
        c.apply_env(&env)?;
        c.apply_args(args)?;
        c.validate()?;
        Ok(c)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        let f: FileConfig = toml::from_str(&text)
            .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.data_dir {
            // A relative data_dir in a file is relative to the file's directory.
            self.data_dir = match path.parent() {
                Some(dir) if v.is_relative() && !dir.as_os_str().is_empty() => dir.join(v),
                _ => v,
            };
        }
        if let Some(v) = f.database_url {
            self.database_url = Some(v);
        }
        if let Some(v) = f.operator_token {
            self.operator_token = Some(v);
        }
        if let Some(v) = f.log_format {
            self.log_format = v;
        }
        if let Some(v) = f.currency {
            self.currency = parse_currency(&v)?;
        }
        if let Some(v) = f.suite {
            self.suite = parse_suite(&v)?;
        }
        if let Some(v) = f.operator_amount_max_minor {
            self.operator_amount_max_minor = v;
        }
        self.privacy.apply_file(f.privacy);
        if let Some(l) = f.lifecycle {
            if let Some(v) = l.refund_lost {
                self.lifecycle.refund_lost = Some(v);
            }
            if let Some(v) = l.return_after_seconds {
                self.lifecycle.return_after_seconds = Some(v);
            }
            if let Some(v) = l.close_interval_seconds {
                self.lifecycle.close_interval_seconds = v;
            }
        }
        if let Some(v) = f.master_key_file {
            self.master_key_file = Some(match path.parent() {
                Some(dir) if v.is_relative() && !dir.as_os_str().is_empty() => dir.join(v),
                _ => v,
            });
        }
        if let Some(v) = f.hsm {
            self.hsm = Some(v);
        }
        if let Some(sc) = f.scheme {
            if let Some(v) = sc.url {
                self.scheme.url = Some(v);
            }
            if let Some(v) = sc.token {
                self.scheme.token = Some(v);
            }
            if let Some(v) = sc.interval_ms {
                self.scheme.interval_ms = v;
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(v) = get("OFFPAY_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_LISTEN={v}: {e}")))?;
        }
        if let Some(v) = get("OFFPAY_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("OFFPAY_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("OFFPAY_OPERATOR_TOKEN") {
            self.operator_token = Some(v);
        }
        if let Some(v) = get("OFFPAY_LOG_FORMAT") {
            self.log_format = LogFormat::parse(&v).ok_or_else(|| {
                ConfigError(format!("OFFPAY_LOG_FORMAT={v}: expected text or json"))
            })?;
        }
        if let Some(v) = get("OFFPAY_CURRENCY") {
            self.currency = parse_currency(&v)?;
        }
        if let Some(v) = get("OFFPAY_SUITE") {
            self.suite = parse_suite(&v)?;
        }
        if let Some(v) = get("OFFPAY_OPERATOR_AMOUNT_MAX_MINOR") {
            self.operator_amount_max_minor = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_OPERATOR_AMOUNT_MAX_MINOR={v}: {e}")))?;
        }
        if let Some(v) = get("OFFPAY_REFUND_LOST") {
            self.lifecycle.refund_lost = Some(match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(ConfigError(format!(
                        "OFFPAY_REFUND_LOST={v}: must be true or false"
                    )));
                }
            });
        }
        if let Some(v) = get("OFFPAY_RETURN_AFTER_SECONDS") {
            self.lifecycle.return_after_seconds = Some(
                v.parse()
                    .map_err(|e| ConfigError(format!("OFFPAY_RETURN_AFTER_SECONDS={v}: {e}")))?,
            );
        }
        if let Some(v) = get("OFFPAY_CLOSE_INTERVAL_SECONDS") {
            self.lifecycle.close_interval_seconds = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_CLOSE_INTERVAL_SECONDS={v}: {e}")))?;
        }
        self.privacy.apply_env(&get)?;
        if let Some(v) = get("OFFPAY_MASTER_KEY_FILE") {
            self.master_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("OFFPAY_HSM") {
            self.hsm = Some(v);
        }
        if let Some(v) = get("OFFPAY_SCHEME_URL") {
            self.scheme.url = Some(v);
        }
        if let Some(v) = get("OFFPAY_SCHEME_TOKEN") {
            self.scheme.token = Some(v);
        }
        if let Some(v) = get("OFFPAY_SCHEME_INTERVAL_MS") {
            self.scheme.interval_ms = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_SCHEME_INTERVAL_MS={v}: {e}")))?;
        }
        Ok(())
    }

    fn apply_args(&mut self, a: &ServerArgs) -> Result<(), ConfigError> {
        if let Some(v) = a.listen {
            self.listen = v;
        }
        if let Some(v) = &a.data_dir {
            self.data_dir = v.clone();
        }
        if let Some(v) = &a.database_url {
            self.database_url = Some(v.clone());
        }
        if let Some(v) = &a.operator_token {
            self.operator_token = Some(v.clone());
        }
        if let Some(v) = a.log_format {
            self.log_format = v;
        }
        if let Some(v) = &a.currency {
            self.currency = parse_currency(v)?;
        }
        if let Some(v) = &a.suite {
            self.suite = parse_suite(v)?;
        }
        if let Some(v) = a.operator_amount_max_minor {
            self.operator_amount_max_minor = v;
        }
        if let Some(v) = &a.master_key_file {
            self.master_key_file = Some(v.clone());
        }
        if let Some(v) = &a.hsm {
            self.hsm = Some(v.clone());
        }
        if let Some(v) = &a.scheme_url {
            self.scheme.url = Some(v.clone());
        }
        if let Some(v) = &a.scheme_token {
            self.scheme.token = Some(v.clone());
        }
        if let Some(v) = a.scheme_interval_ms {
            self.scheme.interval_ms = v;
        }
        if let Some(v) = a.refund_lost {
            self.lifecycle.refund_lost = Some(v);
        }
        if let Some(v) = a.return_after_seconds {
            self.lifecycle.return_after_seconds = Some(v);
        }
        if let Some(v) = a.close_interval_seconds {
            self.lifecycle.close_interval_seconds = v;
        }
        self.privacy.apply_args(a);
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.operator_amount_max_minor == 0
            || self.operator_amount_max_minor > offpay_issuer::AMOUNT_MINOR_MAX
        {
            return Err(ConfigError(format!(
                "operator_amount_max_minor must be 1 to {} (got {})",
                offpay_issuer::AMOUNT_MINOR_MAX,
                self.operator_amount_max_minor
            )));
        }
        if let Some(t) = &self.operator_token {
            check_operator_token(t)?;
        }
        if let Some(spec) = &self.hsm {
            let h =
                offpay_hsm::HsmConfig::parse(spec).map_err(|e| ConfigError(format!("hsm: {e}")))?;
            if self.scheme.url.is_some() {
                return Err(ConfigError(
                    "hsm: a member issuer's CA key in a token is not supported yet (its key is sealed under the master key)".into(),
                ));
            }
            if h.root_key.is_none() {
                return Err(ConfigError(
                    "hsm: a standalone issuer needs root-key=LABEL (its scheme root key is in the token too)".into(),
                ));
            }
        }
        if let Some(v) = self.lifecycle.return_after_seconds {
            offpay_issuer::LifecycleRules {
                refund_lost: true,
                return_after_seconds: v,
            }
            .check()
            .map_err(|e| ConfigError(format!("lifecycle.return_after_seconds: {e}")))?;
        }
        self.privacy.validate()?;
        if self.lifecycle.close_interval_seconds > 86_400 {
            return Err(ConfigError(format!(
                "lifecycle.close_interval_seconds must be 0 (off) to 86400 (got {})",
                self.lifecycle.close_interval_seconds
            )));
        }
        if !(SCHEME_INTERVAL_MS_MIN..=SCHEME_INTERVAL_MS_MAX).contains(&self.scheme.interval_ms) {
            return Err(ConfigError(format!(
                "scheme.interval_ms must be {SCHEME_INTERVAL_MS_MIN} to {SCHEME_INTERVAL_MS_MAX} (got {})",
                self.scheme.interval_ms
            )));
        }
        match (&self.scheme.url, &self.scheme.token) {
            (Some(u), Some(t)) => {
                if !u.starts_with("http://") {
                    return Err(ConfigError(format!(
                        "scheme.url must be an http:// URL (got {u:?})"
                    )));
                }
                check_operator_token(t).map_err(|_| {
                    ConfigError(
                        "scheme.token must be 16 to 256 printable ASCII characters without spaces"
                            .into(),
                    )
                })?;
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(ConfigError(
                    "scheme.url is set without scheme.token (the issuer's token from its admission)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError("scheme.token is set without scheme.url".into()));
            }
        }
        if let Some(u) = &self.database_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database_url must be a postgres:// URL (got {}); leave it unset for SQLite in the data directory",
                redact_url(u)
            )));
        }
        Ok(())
    }
}

/// Whether an operator token is acceptable.
pub fn check_operator_token(t: &str) -> Result<(), ConfigError> {
    if t.len() < OPERATOR_TOKEN_BYTES_MIN
        || t.len() > 256
        || !t.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ConfigError(format!(
            "the operator token must be {OPERATOR_TOKEN_BYTES_MIN} to 256 printable ASCII characters without spaces"
        )));
    }
    Ok(())
}

fn parse_currency(s: &str) -> Result<Currency, ConfigError> {
    Currency::new(s).ok_or_else(|| {
        ConfigError(format!(
            "currency {s:?}: expected an ISO 4217 code such as EUR"
        ))
    })
}

fn parse_suite(s: &str) -> Result<Suite, ConfigError> {
    Suite::from_name(s)
        .ok_or_else(|| ConfigError(format!("suite {s:?}: expected ed25519, p256 or ml-dsa-44")))
}

/// The TOML file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    operator_token: Option<String>,
    log_format: Option<LogFormat>,
    currency: Option<String>,
    suite: Option<String>,
    operator_amount_max_minor: Option<u64>,
    master_key_file: Option<PathBuf>,
    hsm: Option<String>,
    scheme: Option<FileSchemeConfig>,
    lifecycle: Option<FileLifecycleConfig>,
    privacy: Option<FilePrivacyConfig>,
}

/// The `[privacy]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePrivacyConfig {
    retention_seconds: Option<u64>,
    retention_interval_seconds: Option<u64>,
}

/// The `[lifecycle]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLifecycleConfig {
    refund_lost: Option<bool>,
    return_after_seconds: Option<u64>,
    close_interval_seconds: Option<u64>,
}

/// The `[scheme]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchemeConfig {
    url: Option<String>,
    token: Option<String>,
    interval_ms: Option<u64>,
}

/// Flags of `offpay server` (the CLI flattens this).
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerArgs {
    /// TOML configuration file (keys: listen, data_dir, database_url, operator_token, log_format, currency, suite, operator_amount_max_minor, master_key_file, hsm; table [scheme]: url, token, interval_ms; table [lifecycle]: refund_lost, return_after_seconds, close_interval_seconds; table [privacy]: retention_seconds, retention_interval_seconds).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: OFFPAY_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory: master key, operator token, SQLite file [env: OFFPAY_DATA_DIR] [default: ./offpay-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...) instead of SQLite [env: OFFPAY_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Operator bearer token [env: OFFPAY_OPERATOR_TOKEN] [default: generated into DATA_DIR/operator-token].
    #[arg(long, value_name = "TOKEN")]
    pub operator_token: Option<String>,
    /// Log format [env: OFFPAY_LOG_FORMAT] [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Currency of a new issuer (ISO 4217) [env: OFFPAY_CURRENCY] [default: EUR].
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Signature suite of a new issuer's CA keys: ed25519, p256 or ml-dsa-44 [env: OFFPAY_SUITE] [default: ed25519].
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// Largest operator deposit, withdrawal or load, in minor units (a sanity
    /// cap) [env: OFFPAY_OPERATOR_AMOUNT_MAX_MINOR] [default: 100000000000].
    #[arg(long, value_name = "MINOR")]
    pub operator_amount_max_minor: Option<u64>,
    /// The master key file sealing the CA keys [env: OFFPAY_MASTER_KEY_FILE] [default: DATA_DIR/master.key, created at the first start].
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The root and issuer CA keys in a PKCS#11 token, created at the first
    /// start or adopted: `module=PATH,token=LABEL|slot=ID,pin=env:VAR|file:PATH,issuer-key=LABEL,root-key=LABEL` [env: OFFPAY_HSM].
    #[arg(long, value_name = "SPEC")]
    pub hsm: Option<String>,
    /// Member issuer: the scheme server's URL; runs the scheme link [env: OFFPAY_SCHEME_URL].
    #[arg(long, value_name = "URL")]
    pub scheme_url: Option<String>,
    /// Member issuer: this issuer's bearer token at the scheme (from `offpay scheme admit`) [env: OFFPAY_SCHEME_TOKEN].
    #[arg(long, value_name = "TOKEN")]
    pub scheme_token: Option<String>,
    /// Member issuer: milliseconds between two rounds of the scheme link [env: OFFPAY_SCHEME_INTERVAL_MS] [default: 5000].
    #[arg(long, value_name = "MS")]
    pub scheme_interval_ms: Option<u64>,
    /// Whether a lost wallet's money is paid to its customer when it closes
    /// (false: it goes to the reserve) [env: OFFPAY_REFUND_LOST] [default: the stored rule, first true].
    #[arg(long, value_name = "BOOL")]
    pub refund_lost: Option<bool>,
    /// Seconds after which a payment its payee never held goes back to the
    /// payer (3600 to 31536000) [env: OFFPAY_RETURN_AFTER_SECONDS] [default: the stored rule, first 86400].
    #[arg(long, value_name = "SECONDS")]
    pub return_after_seconds: Option<u64>,
    /// Seconds between two runs closing the due wallets (0: off) [env: OFFPAY_CLOSE_INTERVAL_SECONDS] [default: 3600].
    #[arg(long, value_name = "SECONDS")]
    pub close_interval_seconds: Option<u64>,
    /// Seconds after settlement the pairing of a payment's payer and payee
    /// is deleted, once delivered and both wallets are checkpointed past it
    /// (0: keep forever) [env: OFFPAY_RETENTION_SECONDS] [default: the stored window, first keep forever].
    #[arg(long, value_name = "SECONDS")]
    pub retention_seconds: Option<u64>,
    /// Seconds between two retention passes (0: off) [env: OFFPAY_RETENTION_INTERVAL_SECONDS] [default: 3600].
    #[arg(long, value_name = "SECONDS")]
    pub retention_interval_seconds: Option<u64>,
}

/// A configuration problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn the_default_listen_address_is_the_documented_one() {
        assert_eq!(ServerConfig::default().listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(ServerConfig::default().currency.as_str(), "EUR");
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults() {
        let c = ServerConfig::load_with_env(&ServerArgs::default(), env(&[])).unwrap();
        assert_eq!(c, ServerConfig::default());
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.database_target(),
            PathBuf::from("./offpay-data")
                .join("offpay.sqlite")
                .to_string_lossy()
        );
    }

    #[test]
    fn precedence_file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offpay.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"data\"\nlog_format = \"json\"\ncurrency = \"INR\"\nsuite = \"p256\"\noperator_token = \"file-token-0123456789\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            ..ServerArgs::default()
        };
        let c = ServerConfig::load_with_env(&args, env(&[])).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, dir.path().join("data"));
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.currency.as_str(), "INR");
        assert_eq!(c.suite, Suite::P256);
        assert_eq!(c.operator_token.as_deref(), Some("file-token-0123456789"));

        let e = env(&[
            ("OFFPAY_LISTEN", "127.0.0.1:9001"),
            ("OFFPAY_OPERATOR_TOKEN", "env-token-0123456789"),
            ("OFFPAY_DATABASE_URL", "postgres://u:secret@db/offpay"),
            ("OFFPAY_LOG_FORMAT", "text"),
        ]);
        let c = ServerConfig::load_with_env(&args, e).unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.operator_token.as_deref(), Some("env-token-0123456789"));
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(
            !format!("{c:?}").contains("secret"),
            "Debug redacts secrets: {c:?}"
        );
        assert!(!format!("{c:?}").contains("env-token"));

        let flags = ServerArgs {
            listen: Some("127.0.0.1:9002".parse().unwrap()),
            data_dir: Some(PathBuf::from("/tmp/flag")),
            log_format: Some(LogFormat::Json),
            ..args.clone()
        };
        let c = ServerConfig::load_with_env(
            &flags,
            env(&[
                ("OFFPAY_LISTEN", "127.0.0.1:9001"),
                ("OFFPAY_DATA_DIR", "/tmp/env"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9002);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/flag"));
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn refuses_bad_values() {
        let bad = |pairs: &[(&str, &str)]| {
            ServerConfig::load_with_env(&ServerArgs::default(), env(pairs)).is_err()
        };
        assert!(bad(&[("OFFPAY_LISTEN", "nowhere")]));
        assert!(bad(&[("OFFPAY_LOG_FORMAT", "xml")]));
        assert!(bad(&[("OFFPAY_OPERATOR_TOKEN", "short")]));
        assert!(bad(&[("OFFPAY_DATABASE_URL", "mysql://x")]));
        assert!(bad(&[("OFFPAY_CURRENCY", "euro")]));
        assert!(bad(&[("OFFPAY_SUITE", "rsa")]));
        assert!(bad(&[("OFFPAY_SCHEME_URL", "http://127.0.0.1:1")]));
        assert!(bad(&[("OFFPAY_SCHEME_TOKEN", "token-0123456789abcdef")]));
        assert!(bad(&[
            ("OFFPAY_SCHEME_URL", "https://x"),
            ("OFFPAY_SCHEME_TOKEN", "token-0123456789abcdef")
        ]));
        assert!(bad(&[
            ("OFFPAY_SCHEME_URL", "http://x"),
            ("OFFPAY_SCHEME_TOKEN", "short")
        ]));
        assert!(bad(&[("OFFPAY_SCHEME_INTERVAL_MS", "0")]));
        assert!(bad(&[("OFFPAY_SCHEME_INTERVAL_MS", "soon")]));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1\"\nunknown_key = 1\n").unwrap();
        let args = ServerArgs {
            config: Some(file),
            ..ServerArgs::default()
        };
        assert!(
            ServerConfig::load_with_env(&args, env(&[])).is_err(),
            "unknown keys are refused"
        );
        let args = ServerArgs {
            config: Some(dir.path().join("missing.toml")),
            ..ServerArgs::default()
        };
        assert!(ServerConfig::load_with_env(&args, env(&[])).is_err());
    }

    #[test]
    fn scheme_keys_from_file_env_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("offpay.toml");
        std::fs::write(
            &file,
            "master_key_file = \"keys/m.key\"\n[scheme]\nurl = \"http://127.0.0.1:7000\"\ntoken = \"file-scheme-token-0123\"\ninterval_ms = 250\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            ..ServerArgs::default()
        };
        let c = ServerConfig::load_with_env(&args, env(&[])).unwrap();
        assert_eq!(c.scheme.url.as_deref(), Some("http://127.0.0.1:7000"));
        assert_eq!(c.scheme.interval_ms, 250);
        assert_eq!(c.master_key_path(), dir.path().join("keys/m.key"));
        assert!(!format!("{c:?}").contains("file-scheme-token"), "{c:?}");
        let c = ServerConfig::load_with_env(
            &args,
            env(&[
                ("OFFPAY_SCHEME_INTERVAL_MS", "99"),
                ("OFFPAY_SCHEME_TOKEN", "env-scheme-token-0123"),
            ]),
        )
        .unwrap();
        assert_eq!(c.scheme.interval_ms, 99);
        assert_eq!(c.scheme.token.as_deref(), Some("env-scheme-token-0123"));
        let flags = ServerArgs {
            scheme_interval_ms: Some(42),
            scheme_url: Some("http://127.0.0.1:7001".into()),
            master_key_file: Some(PathBuf::from("/tmp/k")),
            ..args
        };
        let c = ServerConfig::load_with_env(&flags, env(&[("OFFPAY_SCHEME_INTERVAL_MS", "99")]))
            .unwrap();
        assert_eq!(c.scheme.interval_ms, 42);
        assert_eq!(c.scheme.url.as_deref(), Some("http://127.0.0.1:7001"));
        assert_eq!(c.master_key_path(), PathBuf::from("/tmp/k"));
        assert_eq!(
            ServerConfig::default().master_key_path(),
            PathBuf::from(DEFAULT_DATA_DIR).join(MASTER_KEY_FILE)
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:pw@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn privacy_keys_from_file_env_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[privacy]\nretention_seconds = 7776000\nretention_interval_seconds = 600\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            ..ServerArgs::default()
        };
        let c = ServerConfig::load_with_env(&args, env(&[])).unwrap();
        assert_eq!(c.privacy.retention_seconds, Some(7_776_000));
        assert_eq!(c.privacy.window(), Some(Some(7_776_000)));
        assert_eq!(c.privacy.retention_interval_seconds, 600);
        // The environment over the file, flags over both; 0 is "keep forever".
        let c = ServerConfig::load_with_env(
            &args,
            env(&[
                ("OFFPAY_RETENTION_SECONDS", "0"),
                ("OFFPAY_RETENTION_INTERVAL_SECONDS", "60"),
            ]),
        )
        .unwrap();
        assert_eq!(c.privacy.window(), Some(None));
        assert_eq!(c.privacy.retention_interval_seconds, 60);
        let flags = ServerArgs {
            retention_seconds: Some(86_400),
            retention_interval_seconds: Some(0),
            ..args.clone()
        };
        let c =
            ServerConfig::load_with_env(&flags, env(&[("OFFPAY_RETENTION_SECONDS", "0")])).unwrap();
        assert_eq!(c.privacy.window(), Some(Some(86_400)));
        assert_eq!(c.privacy.retention_interval_seconds, 0);
        // Unset: the stored window is kept.
        let c = ServerConfig::load_with_env(&ServerArgs::default(), env(&[])).unwrap();
        assert_eq!(c.privacy.window(), None);
        assert_eq!(
            c.privacy.retention_interval_seconds,
            RETENTION_INTERVAL_SECONDS_DEFAULT
        );
        // Refused: not a number, a window over the maximum, an interval over a day.
        let bad = |pairs: &[(&str, &str)]| {
            ServerConfig::load_with_env(&ServerArgs::default(), env(pairs)).is_err()
        };
        assert!(bad(&[("OFFPAY_RETENTION_SECONDS", "soon")]));
        assert!(bad(&[("OFFPAY_RETENTION_SECONDS", "18446744073709551615")]));
        assert!(bad(&[("OFFPAY_RETENTION_INTERVAL_SECONDS", "86401")]));
        std::fs::write(&file, "[privacy]\nretention_days = 1\n").unwrap();
        assert!(ServerConfig::load_with_env(&args, env(&[])).is_err());
    }
}
