//! offpay-wallet: the wallet's trusted application (TA).
//!
//! [`Wallet`] is the TA: it holds the keys, the balance, the outgoing hash
//! chain, the risk limits and the unsynced log, and it is the only code that
//! changes the balance. The app (REE) calls it with bytes and the device time
//! and gets bytes back. Its state lives sealed in a [`vault::Vault`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
mod key;
pub mod recovery;
mod state;
pub mod ta;
pub mod vault;

pub use error::{LockReason, WalletError};
pub use state::{HistoryItem, HistoryKind};
pub use ta::{PendingRequestInfo, SyncApplied, Wallet, WalletStatus};
