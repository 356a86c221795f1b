//! The issuer's bounds on what it accepts and keeps.

/// How many times a transaction that lost a race is retried.
pub const TX_RETRIES_MAX: u32 = 8;
/// Longest customer id.
pub const CUSTOMER_ID_BYTES_MAX: usize = 64;
/// Longest customer name.
pub const CUSTOMER_NAME_BYTES_MAX: usize = 256;
/// Longest idempotency key.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 128;
/// Longest enrollment token accepted (longer ones are unknown without a lookup).
pub(crate) const ENROLLMENT_TOKEN_BYTES_MAX: usize = 128;
/// Most certificates kept in the verified-certificate cache.
pub const CERT_CACHE_MAX: usize = 65_536;
/// Longest lock reason stored for a wallet, in characters.
pub(crate) const LOCK_REASON_CHARS_MAX: usize = 480;
