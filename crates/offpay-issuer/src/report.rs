//! A SyncReport whose every signature has been checked, on its way to the
//! transaction that applies it (alone, or grouped by `group.rs`).

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{ChainEntry, SyncReport};
use offpay_protocol::pki::WalletProfile;
use offpay_protocol::{Hash32, PublicKey, UnixSeconds, WalletId};

use crate::error::LockReason;
use crate::store::WalletRecord;

/// A certificate already checked against the issuer CA: (wallet, serial,
/// key, not before, not after, profile).
pub(crate) type CachedCert = (
    WalletId,
    u64,
    PublicKey,
    UnixSeconds,
    UnixSeconds,
    WalletProfile,
);

/// A verified report waiting for its transaction (group commit).
pub(crate) struct SyncJob {
    pub(crate) v: VerifiedReport,
    pub(crate) now: UnixSeconds,
}

/// A report whose every signature has been checked.
pub(crate) struct VerifiedReport {
    pub(crate) report: Signed<SyncReport>,
    pub(crate) hash: Hash32,
    pub(crate) wallet: WalletRecord,
    pub(crate) outgoing: Vec<ChainEntry>,
    pub(crate) incoming: Vec<ChainEntry>,
    pub(crate) evidence: Vec<ChainEntry>,
    /// Payers whose certificate was not valid at an entry's time, or names
    /// a terminal, and the lock that follows.
    pub(crate) anomalies: Vec<(WalletId, LockReason)>,
    /// The reporting wallet's profile (from its current certificate).
    pub(crate) profile: WalletProfile,
    /// The report's re-key CSR, its signature verified.
    pub(crate) csr: Option<offpay_protocol::pki::Csr>,
}
