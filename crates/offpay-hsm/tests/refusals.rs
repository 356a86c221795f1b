//! The TA's refusal suite (offpay-wallet's `tests/refusals.rs`, expanded by
//! offpay-test-support's `refusal_suite!`) with every wallet on an
//! `HsmVault` over SoftHSM2: each refusal is the exact `WalletError` and
//! writes nothing (the `state.hsm` blob and the counter unchanged), with
//! the keys in the token. A "second device" (a clone) is a second vault
//! handle on the same token with the blob and counter copied.
//!
//! Skips with a printed reason when SoftHSM2 is not installed, unless
//! `OFFPAY_REQUIRE_HSM=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use offpay_hsm::vault::STATE_BLOB;
use offpay_hsm::{HsmVault, Token};
use offpay_test_support::refusals::SuiteVault;
use offpay_wallet::vault::{MemoryBlobStore, MemoryCounter};

mod common;

/// `HsmVault`s in one token, each under a label of its own.
struct HsmKind;

fn shared_token() -> Option<&'static Token> {
    static TOKEN: OnceLock<Option<Token>> = OnceLock::new();
    TOKEN
        .get_or_init(|| common::token("refusals").map(|t| common::open(&t)))
        .as_ref()
}

impl SuiteVault for HsmKind {
    type V = HsmVault<MemoryBlobStore, MemoryCounter>;
    type Saved = Vec<u8>;
    type Fingerprint = Option<Vec<u8>>;

    fn available() -> bool {
        shared_token().is_some()
    }

    fn new() -> Self::V {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let label = format!("r{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let token = shared_token().unwrap();
        HsmVault::create(token, &label, MemoryBlobStore::new(), MemoryCounter::new(0)).unwrap()
    }

    fn fingerprint(v: &Self::V) -> Option<Vec<u8>> {
        v.store().get(STATE_BLOB)
    }

    fn version(v: &Self::V) -> u64 {
        v.counter().value()
    }

    fn copy(v: &Self::V) -> Self::V {
        let store = MemoryBlobStore::new();
        for name in v.store().names() {
            store.put(&name, &v.store().get(&name).unwrap());
        }
        let counter = MemoryCounter::new(v.counter().value());
        HsmVault::open(v.token(), v.label(), store, counter).unwrap()
    }

    fn save(v: &Self::V) -> Vec<u8> {
        v.store().get(STATE_BLOB).unwrap()
    }

    fn restore(v: &mut Self::V, saved: &Vec<u8>) {
        v.store().put(STATE_BLOB, saved);
    }
}

offpay_test_support::refusal_suite!(HsmKind);
