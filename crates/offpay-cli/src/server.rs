//! `offpay server`: the issuer's HTTP API in the foreground.
//!
//! The first stdout line says where it listens (the real port when
//! `--listen` has port 0), so scripts and tests can read it; logs go to
//! stderr. The first start initialises the scheme root and issuer CA and
//! says where the operator token is.

use offpay_server::config::{OPERATOR_TOKEN_FILE, redact_url};
use offpay_server::{ServerArgs, ServerConfig};
use serde_json::json;

use crate::out::{Done, Failure, Outcome};

/// Run until Ctrl-C or SIGTERM.
pub(crate) fn run(args: ServerArgs, as_json: bool) -> Outcome {
    let config = ServerConfig::load(&args).map_err(|e| Failure::usage(e.to_string()))?;
    offpay_server::init_logging(config.log_format);
    let first_start = !config.master_key_path().exists();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the async runtime", &e))?;
    rt.block_on(async {
        let running = offpay_server::spawn(config.clone())
            .await
            .map_err(|e| Failure::refused("server_start", e.to_string()))?;
        let url = running.url();
        let (backend, database) = match &config.database_url {
            Some(u) => ("postgres", redact_url(u)),
            None => ("sqlite", config.sqlite_path().display().to_string()),
        };
        let token_file = config
            .operator_token
            .is_none()
            .then(|| config.data_dir.join(OPERATOR_TOKEN_FILE));
        if as_json {
            say!(
                "{}",
                json!({
                    "ok": true,
                    "event": "listening",
                    "url": url,
                    "listen": running.addr.to_string(),
                    "backend": backend,
                    "database": database,
                    "data_dir": config.data_dir.display().to_string(),
                    "first_start": first_start,
                    "operator_token_file": token_file.as_ref().map(|p| p.display().to_string()),
                })
            );
        } else {
            say!("offpay server listening on {url}");
            say!("  database: {backend} ({database})");
            if first_start {
                say!(
                    "  first start: created the master key ({}), the scheme root and the issuer CA",
                    config.master_key_path().display()
                );
            }
            match &token_file {
                Some(p) => say!(
                    "  operator token: {} (offpay admin reads it with --data-dir {})",
                    p.display(),
                    config.data_dir.display()
                ),
                None => say!("  operator token: as configured"),
            }
            say!("  stop with Ctrl-C");
        }
        offpay_server::shutdown_signal().await;
        running
            .shutdown()
            .await
            .map_err(|e| Failure::refused("server", e.to_string()))?;
        Ok(Done::new(
            "offpay server stopped",
            json!({"event": "stopped", "url": url}),
        ))
    })
}
