//! First start and every start: the data directory, the master key, the
//! operator token, the store and the issuer.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use offpay_issuer::ca::MASTER_KEY_BYTES;
use offpay_issuer::{Issuer, IssuerConfig};

use crate::config::{self, ServerConfig};
use crate::{AppState, Prepared, ServerError};

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServerError {
    let what = what.into();
    move |e| ServerError::Io(what, e)
}

fn random<const N: usize>() -> Result<[u8; N], ServerError> {
    offpay_protocol::entropy::random(&offpay_protocol::OsEntropy)
        .map_err(|e| ServerError::Io("random source".into(), std::io::Error::other(e.to_string())))
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Create a file readable by its owner only, failing if it exists.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if let Ok(m) = std::fs::metadata(path)
            && m.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "secret file is readable by others: chmod 600 it");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The master key: `data_dir/master.key` (64 hex characters), created at the first start.
pub(crate) fn master_key(
    path: &Path,
) -> Result<([u8; MASTER_KEY_BYTES], PathBuf, bool), ServerError> {
    let path = path.to_path_buf();
    if path.exists() {
        warn_if_readable_by_others(&path);
        let text = std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
        let key = if text.len() == MASTER_KEY_BYTES {
            text
        } else {
            std::str::from_utf8(&text)
                .ok()
                .and_then(|s| from_hex(s.trim()))
                .unwrap_or_default()
        };
        let key: [u8; MASTER_KEY_BYTES] = key.as_slice().try_into().map_err(|_| {
            ServerError::Config(config::ConfigError(format!(
                "{} must hold {MASTER_KEY_BYTES} bytes as hexadecimal",
                path.display()
            )))
        })?;
        return Ok((key, path, false));
    }
    let key = random::<MASTER_KEY_BYTES>()?;
    write_private(&path, format!("{}\n", to_hex(&key)).as_bytes())
        .map_err(io(format!("cannot create {}", path.display())))?;
    tracing::info!(path = %path.display(), "created the master key that seals the CA keys: back it up");
    Ok((key, path, true))
}

/// The operator token: from the configuration, else `data_dir/operator-token`, created if absent.
fn operator_token(config: &ServerConfig) -> Result<(String, Option<PathBuf>), ServerError> {
    operator_token_in(config.operator_token.as_ref(), &config.data_dir)
}

/// The operator token: `configured`, else `data_dir/operator-token`, created if absent.
pub(crate) fn operator_token_in(
    configured: Option<&String>,
    data_dir: &Path,
) -> Result<(String, Option<PathBuf>), ServerError> {
    if let Some(t) = configured {
        return Ok((t.clone(), None));
    }
    let path = data_dir.join(config::OPERATOR_TOKEN_FILE);
    if path.exists() {
        warn_if_readable_by_others(&path);
        let t = std::fs::read_to_string(&path)
            .map_err(io(format!("cannot read {}", path.display())))?;
        let t = t.trim().to_string();
        config::check_operator_token(&t).map_err(|e| {
            ServerError::Config(config::ConfigError(format!("{}: {e}", path.display())))
        })?;
        tracing::info!(path = %path.display(), "operator token read from file");
        return Ok((t, Some(path)));
    }
    let t = to_hex(&random::<32>()?);
    write_private(&path, format!("{t}\n").as_bytes())
        .map_err(io(format!("cannot create {}", path.display())))?;
    tracing::info!(path = %path.display(), "created an operator token (Authorization: Bearer <token>)");
    Ok((t, Some(path)))
}

fn now() -> offpay_protocol::UnixSeconds {
    crate::api::now()
}

/// Create the data directory (owner only) if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), ServerError> {
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(dir).map_err(io(format!(
            "cannot create data directory {}",
            dir.display()
        )))?;
        tracing::info!(path = %dir.display(), "created the data directory");
    }
    Ok(())
}

pub(crate) fn prepare(config: &ServerConfig) -> Result<(AppState, Prepared), ServerError> {
    let dir = &config.data_dir;
    ensure_dir(dir)?;
    let (master, master_key_file, _) = master_key(&config.master_key_path())?;
    let (token, token_file) = operator_token(config)?;
    let target = config.database_target();
    tracing::info!(database = %config::redact_url(&target), "opening the store");
    let store = offpay_store::open(&target).map_err(ServerError::Store)?;
    let mut issuer_config = IssuerConfig::default_for(config.currency);
    issuer_config.suite = config.suite;
    let initialised = {
        let mut tx = offpay_issuer::store::Store::begin(&store).map_err(ServerError::Store)?;
        tx.setting("ca.issuer.cert")
            .map_err(ServerError::Store)?
            .is_none()
    };
    let issuer = match &config.hsm {
        None => Issuer::open_or_init(store, &master, &issuer_config, now()),
        Some(spec) => open_with_token(store, spec, &issuer_config, initialised)?,
    }
    .map_err(ServerError::Issuer)?;
    if initialised {
        tracing::info!(currency = %issuer.currency(), suite = %config.suite, "issuer initialised: new scheme root and issuer CA");
    } else if issuer.currency() != config.currency {
        tracing::warn!(
            configured = %config.currency,
            issuer = %issuer.currency(),
            "the issuer was initialised with another currency; the configured one is ignored"
        );
    }
    if config.lifecycle.refund_lost.is_some() || config.lifecycle.return_after_seconds.is_some() {
        let mut rules = issuer.lifecycle_rules().map_err(ServerError::Issuer)?;
        if let Some(v) = config.lifecycle.refund_lost {
            rules.refund_lost = v;
        }
        if let Some(v) = config.lifecycle.return_after_seconds {
            rules.return_after_seconds = v;
        }
        issuer
            .set_lifecycle_rules(&rules)
            .map_err(ServerError::Issuer)?;
        tracing::info!(
            refund_lost = rules.refund_lost,
            return_after_seconds = rules.return_after_seconds,
            "lifecycle rules set"
        );
    }
    if let Some(window) = config.privacy.window() {
        issuer
            .set_retention_seconds(window)
            .map_err(ServerError::Issuer)?;
        tracing::info!(retention_seconds = ?window, "retention window set");
    }
    let mut state = AppState::new(Arc::new(issuer), &token)
        .with_operator_amount_max(config.operator_amount_max_minor);
    if let (Some(url), Some(t)) = (&config.scheme.url, &config.scheme.token) {
        state = state
            .with_scheme_link(url, t)
            .map_err(|e| ServerError::Config(config::ConfigError(format!("scheme.url: {e}"))))?;
        state.link_interval = std::time::Duration::from_millis(config.scheme.interval_ms);
    }
    state.close_interval = std::time::Duration::from_secs(config.lifecycle.close_interval_seconds);
    state.retention_interval =
        std::time::Duration::from_secs(config.privacy.retention_interval_seconds);
    Ok((
        state,
        Prepared {
            operator_token: token,
            operator_token_file: token_file,
            master_key_file,
            initialised,
        },
    ))
}

/// The issuer with its root and issuer CA keys in the PKCS#11 token of
/// `spec` (`--hsm`): at the first start the key pairs are generated in the
/// token (or adopted when the labels already name pairs of the configured
/// suite) and the store keeps only their reference; later starts adopt
/// them and refuse a token whose keys are not the ones the certificates
/// name. The PIN is read from its source (`env:` or `file:`), never from
/// the configuration.
fn open_with_token(
    store: offpay_store::AnyStore,
    spec: &str,
    config: &IssuerConfig,
    first_start: bool,
) -> Result<Result<Issuer<offpay_store::AnyStore>, offpay_issuer::IssuerError>, ServerError> {
    use offpay_hsm::{HsmConfig, KeyMode, Token};
    let hsm_err =
        |e: offpay_hsm::HsmError| ServerError::Config(config::ConfigError(format!("hsm: {e}")));
    let h = HsmConfig::parse(spec).map_err(hsm_err)?;
    let token = Token::open(&h).map_err(hsm_err)?;
    let mode = if first_start {
        KeyMode::CreateOrAdopt
    } else {
        KeyMode::AdoptOnly
    };
    let root_label = h.root_key.as_deref().ok_or_else(|| {
        ServerError::Config(config::ConfigError(
            "hsm: root-key=LABEL is required".into(),
        ))
    })?;
    let issuer_key = Arc::new(
        token
            .signer(&h.issuer_key, config.suite, mode)
            .map_err(hsm_err)?,
    );
    let root_key = Arc::new(
        token
            .signer(root_label, config.suite, mode)
            .map_err(hsm_err)?,
    );
    tracing::info!(token = %token.label(), issuer_key = %h.issuer_key, root_key = %root_label, "CA keys in the PKCS#11 token");
    if first_start {
        let key_ref = format!(
            "token={};issuer-key={};root-key={root_label};suite={}",
            token.label(),
            h.issuer_key,
            config.suite
        );
        Ok(Issuer::init_with_signers(
            store,
            root_key,
            issuer_key,
            &key_ref,
            config,
            now(),
            offpay_protocol::OsEntropy::shared(),
        ))
    } else {
        Ok(Issuer::open_with_signers(
            store,
            Some(root_key),
            issuer_key,
            offpay_protocol::OsEntropy::shared(),
        ))
    }
}

/// The data directory, the master key and the store of a configuration,
/// without the issuer (for `member_csr` and `join_scheme`).
fn open_parts(
    config: &ServerConfig,
) -> Result<([u8; MASTER_KEY_BYTES], offpay_store::AnyStore, IssuerConfig), ServerError> {
    ensure_dir(&config.data_dir)?;
    let (master, _, _) = master_key(&config.master_key_path())?;
    let store = offpay_store::open(&config.database_target()).map_err(ServerError::Store)?;
    let mut issuer_config = IssuerConfig::default_for(config.currency);
    issuer_config.suite = config.suite;
    Ok((master, store, issuer_config))
}

/// A member issuer's CA CSR for the scheme (`code`: its issuer code). Its
/// CA key is generated here once and sealed; the same key gives the same CSR.
pub(crate) fn member_csr(config: &ServerConfig, code: &str) -> Result<Vec<u8>, ServerError> {
    let (master, store, ic) = open_parts(config)?;
    Issuer::member_csr(
        &store,
        &master,
        &ic,
        code,
        offpay_protocol::OsEntropy::shared(),
    )
    .map_err(ServerError::Issuer)
}

/// Initialise the issuer as a member of a scheme from its admission (the
/// root and its CA certificate, DER). Returns its issuer id.
pub(crate) fn join_scheme(
    config: &ServerConfig,
    root_der: &[u8],
    ca_cert_der: &[u8],
) -> Result<offpay_protocol::IssuerId, ServerError> {
    let (master, store, ic) = open_parts(config)?;
    let issuer = Issuer::init_member(
        store,
        &master,
        &ic,
        root_der,
        ca_cert_der,
        now(),
        offpay_protocol::OsEntropy::shared(),
    )
    .map_err(ServerError::Issuer)?;
    Ok(issuer.issuer_id())
}
