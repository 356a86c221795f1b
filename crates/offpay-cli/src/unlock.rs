//! The way back from a PIN lockout (`offpay wallet --dir DIR unlock`) and
//! its operator side (`offpay admin unlock-pin WALLET`, in `admin.rs`).
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

use offpay_client::PinUnlockAnswer;
use serde_json::json;

use crate::http;
use crate::now;
use crate::out::{Done, Outcome};
use crate::walletdir::WalletDir;

/// `offpay wallet --dir DIR unlock [--server URL]`.
pub(crate) fn wallet_unlock(dir: WalletDir, server: Option<&str>) -> Outcome {
    let config = dir.config()?;
    let client = http::client(server.unwrap_or(&config.server))?;
    let request = dir.pin_locked_request(now())?;
    let id = config.wallet_id.to_hex();
    let path = dir.path().display().to_string();
    match client.pin_unlock(&request)? {
        PinUnlockAnswer::Pending(p) => Ok(Done::new(
            format!(
                "wallet {id} is PIN-locked ({} wrong PINs); the unlock request is with the issuer.\n\
                 Ask your bank to approve it (after checking who you are, the operator runs `offpay admin unlock-pin {id}`),\n\
                 then run `offpay wallet --dir {path} unlock` again.",
                p.attempts
            ),
            json!({
                "status": "pending",
                "wallet_id": id,
                "attempts": p.attempts,
                "requested_at": p.requested_at,
            }),
        )),
        PinUnlockAnswer::Unlocked(unlock) => {
            dir.apply_pin_unlock(&unlock)?;
            Ok(Done::new(
                format!(
                    "wallet {id} unlocked by the issuer: the PIN attempt count is back to 0; open it with your PIN"
                ),
                json!({"status": "unlocked", "wallet_id": id}),
            ))
        }
    }
}
