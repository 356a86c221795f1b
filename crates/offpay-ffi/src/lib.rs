//! offpay-ffi: the offpay SDK. The wallet's trusted application (TA) for
//! Kotlin, Swift and Python apps, generated with UniFFI from this one crate
//! (namespace `offpay`: Python module `offpay`, Kotlin package `org.offpay`,
//! Swift module `Offpay`; see `uniffi.toml`).
//!
//! * [`OffpayWallet`]: create or open a wallet, enroll, request, pay,
//!   receive, confirm, apply vouchers, redeem, sync report and response,
//!   balance, history, status, certificate. Bytes in and out: the app picks
//!   the transport (NFC, BLE, QR codes, files).
//! * What the host supplies, as foreign traits it implements:
//!   [`HostStorage`] (durable blobs with atomic replace, under which the
//!   sealed vault keeps its usual formats and rollback rules),
//!   [`HostCounter`] (the monotonic anti-rollback counter: KeyMint /
//!   StrongBox, the iOS Keychain) and [`HostPlatform`] (the keystore's
//!   device secret, the clock, the secure random source).
//! * [`SyncClient`]: an optional HTTP client for enrollment, sync and redeem.
//! * [`OffpayError`]: one variant per refusal (the TA's error enum, the
//!   vault's refusals, and the SDK's own).
//! * [`rust_payment_baseline`]: the payment round in Rust alone, to measure
//!   the bindings against in the same run.
//!
//! No panic crosses the boundary: every exported function and method runs
//! under `catch_unwind`, and a caught panic is [`OffpayError::Internal`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod baseline;
mod error;
mod host;
mod sync;
mod types;
mod wallet;

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

pub use baseline::{
    BASELINE_ITERATIONS_MAX, BASELINE_PAYMENT_MINOR, BASELINE_SYNC_EVERY_ROUNDS,
    rust_payment_baseline,
};
pub use error::OffpayError;
pub use host::{HostCounter, HostError, HostPlatform, HostStorage};
pub use sync::SyncClient;
pub use types::{
    HistoryEntry, HistoryKind, KdfSettings, Money, PaymentBaseline, PolicyInfo, RedeemOutcome,
    SyncOutcome, WalletLock, WalletProfile, WalletStatusInfo, kdf_settings_interactive,
};
pub use wallet::{DEVICE_SECRET_BYTES, OffpayWallet, PIN_BYTES_MAX};

uniffi::setup_scaffolding!("offpay");

/// A caught panic's message, in words.
pub(crate) fn panic_reason(panic: &(dyn Any + Send)) -> String {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    format!("caught a panic: {what}")
}

/// Run an exported call's body with panics caught and turned into
/// [`OffpayError::Internal`].
pub(crate) fn guarded<T>(f: impl FnOnce() -> Result<T, OffpayError>) -> Result<T, OffpayError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(OffpayError::Internal {
            reason: panic_reason(panic.as_ref()),
        })
    })
}
