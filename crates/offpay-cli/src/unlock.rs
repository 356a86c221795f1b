//! The way back from a PIN lockout (`offpay wallet --dir DIR unlock`) and
//! its operator side (`offpay admin unlock-pin WALLET`).
//!
//! After five wrong PINs the vault refuses every PIN, so it cannot sync.
//! `wallet unlock` needs no PIN: the vault signs a minimal "I am PIN-locked"
//! request (wallet id, attempt count, fresh nonce) with its unlock key and
//! sends it to the issuer. The issuer answers "pending" until its operator,
//! after the customer re-authenticated with the bank, approves it
//! (`admin unlock-pin`); the next `wallet unlock` then receives the unlock
//! signed by the issuer CA, bound to that wallet, count and nonce, and the
//! vault takes PINs again. The app cannot reset the count alone
//! (`offpay_wallet::recovery`).

use serde_json::json;

use crate::admin::wallet_id;
use crate::http::Client;
use crate::now;
use crate::out::{Done, Failure, Outcome};
use crate::walletdir::WalletDir;

/// `offpay wallet --dir DIR unlock [--server URL]`.
pub fn wallet_unlock(dir: WalletDir, server: Option<&str>) -> Outcome {
    let config = dir.config()?;
    let client = Client::new(server.unwrap_or(&config.server))?;
    let request = dir.pin_locked_request(now())?;
    let resp = client.post_cbor("/v1/pin-unlock", &request)?;
    resp.success()?;
    let id = config.wallet_id.to_hex();
    let path = dir.path().display().to_string();
    if resp.status == 202 {
        let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            Failure::refused(
                "bad_response",
                format!("the server's answer is not JSON: {e}"),
            )
        })?;
        let attempts = v["attempts"].as_u64().unwrap_or(0);
        return Ok(Done::new(
            format!(
                "wallet {id} is PIN-locked ({attempts} wrong PINs); the unlock request is with the issuer.\n\
                 Ask your bank to approve it (after checking who you are, the operator runs `offpay admin unlock-pin {id}`),\n\
                 then run `offpay wallet --dir {path} unlock` again."
            ),
            json!({
                "status": "pending",
                "wallet_id": id,
                "attempts": attempts,
                "requested_at": v["requested_at"].as_u64(),
            }),
        ));
    }
    if resp.content_type.as_deref() != Some("application/cbor") {
        return Err(Failure::refused(
            "bad_response",
            "the unlock answer is not application/cbor",
        ));
    }
    dir.apply_pin_unlock(&resp.body)?;
    Ok(Done::new(
        format!(
            "wallet {id} unlocked by the issuer: the PIN attempt count is back to 0; open it with your PIN"
        ),
        json!({"status": "unlocked", "wallet_id": id}),
    ))
}

/// `offpay admin unlock-pin WALLET`.
pub fn admin_unlock_pin(op: &Client, wallet: &str) -> Outcome {
    let id = wallet_id(wallet)?;
    let v = op.post_json_ok(
        &format!("/v1/admin/wallets/{}/pin-unlock", id.to_hex()),
        &json!({}),
    )?;
    Ok(Done::new(
        format!(
            "approved the PIN unlock of wallet {id} ({} wrong PINs): its next `offpay wallet unlock` receives the signed unlock",
            v["attempts"].as_u64().unwrap_or(0)
        ),
        v,
    ))
}
