//! The vault suites every backend runs (offpay-test-support's `host` and
//! `ta_crash`, which offpay-wallet runs on its sealed vault), here on
//! `HsmVault` over SoftHSM2: a crash at every blob replace of a commit, a
//! counter failing or stuck at every commit, a restored state blob opening
//! locked, a counter that cannot advance, and every TA operation crashed at
//! every blob replace with the exchange finished after the restart.
//!
//! The TA crash suite compares a retried operation's output byte for byte,
//! so it runs on Ed25519 (deterministic signatures; the token's ECDSA draws
//! a fresh nonce per signature), and on P-256 for the operations that sign
//! nothing (apply_voucher, confirm, apply_sync_response, the evidence
//! receive, the open of a rolled-back state); the other suites run on
//! Ed25519 and P-256.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use offpay_hsm::vault::STATE_BLOB;
use offpay_hsm::{HsmVault, Token};
use offpay_protocol::Suite;
use offpay_test_support::host::{self, HostVault};
use offpay_test_support::ta_crash::{Op, crash_host};
use offpay_wallet::vault::{MemoryBlobStore, MonotonicCounter, VaultError};

mod common;
use common::{open, token};

/// `HsmVault`s of one label in one token.
struct Hsm {
    token: Token,
    label: String,
}

impl HostVault for Hsm {
    type Vault<C: MonotonicCounter + Clone + 'static> = HsmVault<MemoryBlobStore, C>;

    fn name(&self) -> &'static str {
        "hsm"
    }

    fn state_blob(&self) -> &'static str {
        STATE_BLOB
    }

    fn create<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError> {
        HsmVault::create(&self.token, &self.label, store.clone(), counter)
    }

    fn open<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError> {
        HsmVault::open(&self.token, &self.label, store.clone(), counter)
    }
}

/// A fresh token named `name`, as a factory of vaults labelled `label`.
fn hsm(name: &str) -> Option<Hsm> {
    let t = token(name)?;
    Some(Hsm {
        token: open(&t),
        label: "w".into(),
    })
}

/// The same token, another vault label (a wallet's key pairs are per label).
fn relabel(h: &Hsm, label: &str) -> Hsm {
    Hsm {
        token: h.token.clone(),
        label: label.into(),
    }
}

const SUITES: [Suite; 2] = [Suite::Ed25519, Suite::P256];

#[test]
fn hsm_crash_at_every_commit_replace() {
    let Some(h) = hsm("s_commit") else { return };
    host::crash_at_every_commit_replace(&h);
}

#[test]
fn hsm_counter_failure_at_every_commit() {
    let Some(h) = hsm("s_counter") else { return };
    host::counter_failure_at_every_commit(&h);
}

#[test]
fn hsm_counter_stuck_blocks_every_commit_until_it_works() {
    let Some(h) = hsm("s_stuck") else { return };
    host::counter_stuck_blocks_every_commit_until_it_works(&h);
}

#[test]
fn hsm_restored_state_blob_opens_locked() {
    let Some(h) = hsm("s_restored") else { return };
    for suite in SUITES {
        host::restored_state_blob_opens_locked(&relabel(&h, suite.name()), &[suite]);
    }
}

#[test]
fn hsm_a_counter_that_cannot_advance_stops_the_wallet_paying_past_it() {
    let Some(h) = hsm("s_cannot") else { return };
    for suite in SUITES {
        host::a_counter_that_cannot_advance_stops_the_wallet_paying_past_it(
            &relabel(&h, suite.name()),
            &[suite],
        );
    }
}

/// `op` crashed at every blob replace on Ed25519 and, for the operations
/// whose outcome holds no fresh signature of the wallet (so that a retry is
/// byte-identical), on P-256 too.
fn crash(name: &str, op: Op) {
    let Some(h) = hsm(name) else { return };
    assert_eq!(
        crash_host(&h, op, Suite::Ed25519),
        2,
        "{op:?}: one replace, two crash points"
    );
    let signs = matches!(
        op,
        Op::Request | Op::Pay | Op::Receive | Op::Redeem | Op::SyncReport
    );
    if !signs {
        assert_eq!(
            crash_host(&relabel(&h, "p256"), op, Suite::P256),
            2,
            "{op:?}/P-256: one replace, two crash points"
        );
    }
}

#[test]
fn hsm_crash_apply_voucher() {
    crash("c_voucher", Op::ApplyVoucher);
}

#[test]
fn hsm_crash_request() {
    crash("c_request", Op::Request);
}

#[test]
fn hsm_crash_pay() {
    crash("c_pay", Op::Pay);
}

#[test]
fn hsm_crash_receive() {
    crash("c_receive", Op::Receive);
}

#[test]
fn hsm_crash_confirm() {
    crash("c_confirm", Op::Confirm);
}

#[test]
fn hsm_crash_redeem() {
    crash("c_redeem", Op::Redeem);
}

#[test]
fn hsm_crash_sync_report() {
    crash("c_sync_report", Op::SyncReport);
}

#[test]
fn hsm_crash_apply_sync_response() {
    crash("c_sync_response", Op::ApplySyncResponse);
}

#[test]
fn hsm_crash_receive_with_rollback_evidence() {
    crash("c_evidence", Op::ReceiveEvidence);
}

#[test]
fn hsm_crash_open_of_a_rolled_back_state() {
    crash("c_open_rolled_back", Op::OpenRolledBack);
}
