//! The scheme server's configuration: defaults, then a TOML file, then the
//! environment (`OFFPAY_SCHEME_*`), then flags.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use offpay_protocol::{Currency, Suite};
use serde::Deserialize;

use crate::config::{ConfigError, LogFormat, MASTER_KEY_FILE, check_operator_token, redact_url};

/// Default listen address of the scheme server.
pub const SCHEME_DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// Default data directory of the scheme server.
pub const SCHEME_DEFAULT_DATA_DIR: &str = "./offpay-scheme-data";
/// The SQLite file inside the data directory.
pub const SCHEME_SQLITE_FILE: &str = "scheme.sqlite";
/// Default root certificate commonName.
pub const SCHEME_DEFAULT_ROOT_CN: &str = "offpay scheme root";

/// The scheme server's configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct SchemeServerConfig {
    /// Address to listen on (port 0: any free port).
    pub listen: SocketAddr,
    /// Directory for the master key, the operator token and the SQLite file.
    pub data_dir: PathBuf,
    /// `postgres://...`; `None`: SQLite at `data_dir/scheme.sqlite`.
    pub database_url: Option<String>,
    /// The master key file; `None`: `data_dir/master.key`.
    pub master_key_file: Option<PathBuf>,
    /// Operator token; `None`: `data_dir/operator-token`, created if absent.
    pub operator_token: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Currency of a new scheme.
    pub currency: Currency,
    /// Suite of a new scheme's root key.
    pub suite: Suite,
    /// commonName of a new scheme's root certificate.
    pub root_cn: String,
}

impl fmt::Debug for SchemeServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemeServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_url),
            )
            .field("master_key_file", &self.master_key_file)
            .field(
                "operator_token",
                &self.operator_token.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("currency", &self.currency)
            .field("suite", &self.suite)
            .field("root_cn", &self.root_cn)
            .finish()
    }
}

impl Default for SchemeServerConfig {
    fn default() -> Self {
        SchemeServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            data_dir: PathBuf::from(SCHEME_DEFAULT_DATA_DIR),
            database_url: None,
            master_key_file: None,
            operator_token: None,
            log_format: LogFormat::Text,
            currency: Currency::EUR,
            suite: Suite::Ed25519,
            root_cn: SCHEME_DEFAULT_ROOT_CN.into(),
        }
    }
}

/// Flags of `offpay scheme init` and `offpay scheme serve`.
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemeArgs {
    /// TOML configuration file (keys: listen, data_dir, database_url, master_key_file, operator_token, log_format, currency, suite, root_cn) [env: OFFPAY_SCHEME_CONFIG].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: OFFPAY_SCHEME_LISTEN] [default: 127.0.0.1:8090].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Data directory: master key, operator token, SQLite file [env: OFFPAY_SCHEME_DATA_DIR] [default: ./offpay-scheme-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...) instead of SQLite [env: OFFPAY_SCHEME_DATABASE_URL].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The master key file sealing the root key [env: OFFPAY_SCHEME_MASTER_KEY_FILE] [default: DATA_DIR/master.key, created at the first start].
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Scheme operator bearer token [env: OFFPAY_SCHEME_OPERATOR_TOKEN] [default: generated into DATA_DIR/operator-token].
    #[arg(long, value_name = "TOKEN")]
    pub operator_token: Option<String>,
    /// Log format [env: OFFPAY_LOG_FORMAT] [default: text].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Currency of a new scheme (ISO 4217) [env: OFFPAY_SCHEME_CURRENCY] [default: EUR].
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Suite of a new scheme's root key: ed25519, p256 or ml-dsa-44 [env: OFFPAY_SCHEME_SUITE] [default: ed25519].
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// commonName of a new scheme's root certificate [env: OFFPAY_SCHEME_ROOT_CN] [default: "offpay scheme root"].
    #[arg(long, value_name = "NAME")]
    pub root_cn: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    master_key_file: Option<PathBuf>,
    operator_token: Option<String>,
    log_format: Option<LogFormat>,
    currency: Option<String>,
    suite: Option<String>,
    root_cn: Option<String>,
}

fn relative_to(file: &Path, v: PathBuf) -> PathBuf {
    match file.parent() {
        Some(dir) if v.is_relative() && !dir.as_os_str().is_empty() => dir.join(v),
        _ => v,
    }
}

fn currency(s: &str) -> Result<Currency, ConfigError> {
    Currency::new(s).ok_or_else(|| {
        ConfigError(format!(
            "currency {s:?}: expected an ISO 4217 code such as EUR"
        ))
    })
}

fn suite(s: &str) -> Result<Suite, ConfigError> {
    Suite::from_name(s)
        .ok_or_else(|| ConfigError(format!("suite {s:?}: expected ed25519, p256 or ml-dsa-44")))
}

impl SchemeServerConfig {
    /// Defaults with another data directory (tests, the demo).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> SchemeServerConfig {
        SchemeServerConfig {
            data_dir: data_dir.into(),
            ..SchemeServerConfig::default()
        }
    }

    /// The master key file in force.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(MASTER_KEY_FILE))
    }

    /// The database URL, or the SQLite file path.
    pub fn database_target(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => self
                .data_dir
                .join(SCHEME_SQLITE_FILE)
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// Defaults, the file, the process environment, then the flags.
    pub fn load(args: &SchemeArgs) -> Result<SchemeServerConfig, ConfigError> {
        Self::load_with_env(args, |k| std::env::var(k).ok())
    }

    /// As [`SchemeServerConfig::load`] with the environment as a function.
    pub fn load_with_env(
        args: &SchemeArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SchemeServerConfig, ConfigError> {
        let get = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut c = SchemeServerConfig::default();
        if let Some(path) = args
            .config
            .clone()
            .or_else(|| get("OFFPAY_SCHEME_CONFIG").map(PathBuf::from))
        {
            c.apply_file(&path)?;
        }
        c.apply_env(&get)?;
        c.apply_args(args)?;
        c.validate()?;
        Ok(c)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let c = self;
        {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", path.display()))
            })?;
            let f: FileConfig = toml::from_str(&text)
                .map_err(|e| ConfigError(format!("config file {}: {e}", path.display())))?;
            if let Some(v) = f.listen {
                c.listen = v;
            }
            if let Some(v) = f.data_dir {
                c.data_dir = relative_to(path, v);
            }
            if let Some(v) = f.master_key_file {
                c.master_key_file = Some(relative_to(path, v));
            }
            c.database_url = f.database_url.or(c.database_url.take());
            c.operator_token = f.operator_token.or(c.operator_token.take());
            if let Some(v) = f.log_format {
                c.log_format = v;
            }
            if let Some(v) = f.currency {
                c.currency = currency(&v)?;
            }
            if let Some(v) = f.suite {
                c.suite = suite(&v)?;
            }
            if let Some(v) = f.root_cn {
                c.root_cn = v;
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = get("OFFPAY_SCHEME_LISTEN") {
            c.listen = v
                .parse()
                .map_err(|e| ConfigError(format!("OFFPAY_SCHEME_LISTEN={v}: {e}")))?;
        }
        if let Some(v) = get("OFFPAY_SCHEME_DATA_DIR") {
            c.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("OFFPAY_SCHEME_DATABASE_URL") {
            c.database_url = Some(v);
        }
        if let Some(v) = get("OFFPAY_SCHEME_MASTER_KEY_FILE") {
            c.master_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("OFFPAY_SCHEME_OPERATOR_TOKEN") {
            c.operator_token = Some(v);
        }
        if let Some(v) = get("OFFPAY_LOG_FORMAT") {
            c.log_format = match v.to_ascii_lowercase().as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(ConfigError(format!(
                        "OFFPAY_LOG_FORMAT={v}: expected text or json"
                    )));
                }
            };
        }
        if let Some(v) = get("OFFPAY_SCHEME_CURRENCY") {
            c.currency = currency(&v)?;
        }
        if let Some(v) = get("OFFPAY_SCHEME_SUITE") {
            c.suite = suite(&v)?;
        }
        if let Some(v) = get("OFFPAY_SCHEME_ROOT_CN") {
            c.root_cn = v;
        }
        Ok(())
    }

    fn apply_args(&mut self, a: &SchemeArgs) -> Result<(), ConfigError> {
        let c = self;
        if let Some(v) = a.listen {
            c.listen = v;
        }
        if let Some(v) = &a.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = &a.database_url {
            c.database_url = Some(v.clone());
        }
        if let Some(v) = &a.master_key_file {
            c.master_key_file = Some(v.clone());
        }
        if let Some(v) = &a.operator_token {
            c.operator_token = Some(v.clone());
        }
        if let Some(v) = a.log_format {
            c.log_format = v;
        }
        if let Some(v) = &a.currency {
            c.currency = currency(v)?;
        }
        if let Some(v) = &a.suite {
            c.suite = suite(v)?;
        }
        if let Some(v) = &a.root_cn {
            c.root_cn = v.clone();
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        if let Some(t) = &c.operator_token {
            check_operator_token(t)?;
        }
        if let Some(u) = &c.database_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err(ConfigError(format!(
                "database_url must be a postgres:// URL (got {}); leave it unset for SQLite in the data directory",
                redact_url(u)
            )));
        }
        if c.root_cn.is_empty() || c.root_cn.len() > 64 {
            return Err(ConfigError("root_cn must be 1 to 64 characters".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn precedence_and_refusals() {
        let c = SchemeServerConfig::load_with_env(&SchemeArgs::default(), env(&[])).unwrap();
        assert_eq!(c, SchemeServerConfig::default());
        assert_eq!(c.listen.to_string(), SCHEME_DEFAULT_LISTEN);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("scheme.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9100\"\ndata_dir = \"d\"\nroot_cn = \"test root\"\ncurrency = \"INR\"\n").unwrap();
        let args = SchemeArgs {
            config: Some(file),
            ..SchemeArgs::default()
        };
        let c = SchemeServerConfig::load_with_env(
            &args,
            env(&[("OFFPAY_SCHEME_LISTEN", "127.0.0.1:9101")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9101);
        assert_eq!(c.data_dir, dir.path().join("d"));
        assert_eq!(c.root_cn, "test root");
        assert_eq!(c.currency.as_str(), "INR");
        assert_eq!(
            c.master_key_path(),
            dir.path().join("d").join(MASTER_KEY_FILE)
        );
        let flags = SchemeArgs {
            listen: Some("127.0.0.1:9102".parse().unwrap()),
            ..args
        };
        let c = SchemeServerConfig::load_with_env(
            &flags,
            env(&[("OFFPAY_SCHEME_LISTEN", "127.0.0.1:9101")]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9102);
        let bad = |p: &[(&str, &str)]| {
            SchemeServerConfig::load_with_env(&SchemeArgs::default(), env(p)).is_err()
        };
        assert!(bad(&[("OFFPAY_SCHEME_OPERATOR_TOKEN", "short")]));
        assert!(bad(&[("OFFPAY_SCHEME_DATABASE_URL", "mysql://x")]));
        assert!(bad(&[("OFFPAY_SCHEME_CURRENCY", "euro")]));
        assert!(bad(&[("OFFPAY_SCHEME_SUITE", "rsa")]));
        assert!(bad(&[("OFFPAY_SCHEME_LISTEN", "nowhere")]));
    }
}
