//! The wallet's test scheme (root and issuer CA, enrollment, vouchers, sync
//! responses: offpay-wallet's tests/common, included here rather than
//! copied), plus what the transport tests add.
#![allow(dead_code)]

#[path = "../../../offpay-wallet/tests/common/mod.rs"]
mod scheme;

pub use scheme::*;

use offpay_protocol::Suite;
use offpay_wallet::Wallet;
use offpay_wallet::vault::MemoryVault;

impl Scheme {
    /// A wallet in memory.
    pub fn memory_wallet(&mut self, suite: Suite) -> Wallet<MemoryVault> {
        self.enroll(MemoryVault::new(), suite, T0)
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), `len` of them; the first
/// 256 (if `len` allows) are every byte value once, in a shuffled order.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        s.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut all: Vec<u8> = (0..=255u8).collect();
    for i in (1..all.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    let mut out: Vec<u8> = all.into_iter().take(len).collect();
    while out.len() < len {
        out.push((next() >> 32) as u8);
    }
    out
}
