//! What offpay's tests share, defined once (a dev-dependency of the crates'
//! integration tests; never published):
//!
//! * [`scheme`]: a test scheme standing in for the issuer where a test is
//!   about the wallet or a transport (root and issuer CA, enrollment,
//!   vouchers, CRLs, sync responses, forging helpers).
//! * [`pay`], [`eur`], [`eur_currency`], [`test_bytes`].
//! * [`host`] and [`ta_crash`]: the vault suites (crash at every write,
//!   counter failures, rollback, every TA operation crashed at every blob
//!   replace) generic over a [`host::HostVault`], so that every vault
//!   backend (the sealed vault here, offpay-hsm's `HsmVault`) runs them;
//!   [`refusal_suite!`]: the TA's refusal tests over any
//!   [`refusals::SuiteVault`].
//! * `postgres` (feature `postgres`): a fresh schema or database per test,
//!   skipped with a printed reason when no server answers, failed instead
//!   under `OFFPAY_REQUIRE_POSTGRES=1`.
//! * `server` (feature `server`): a real server on a loopback port and a
//!   client for it (`offpay-client`), with the story helpers.
//! * `cluster` (feature `server`): a scheme server and two member issuer
//!   servers as real `offpay` processes, each with its own database, that
//!   can be killed with SIGKILL and restarted.
//!
//! A dev-dependency cycle (a crate's tests using this crate, which uses the
//! crate) works for `tests/*.rs` only, not for unit tests inside `src/`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // lint-exception: test support code, a failed unwrap is a failed test

pub mod host;
pub mod refusals;
pub mod scheme;
pub mod ta_crash;
pub use scheme::*;

#[cfg(feature = "server")]
pub mod cluster;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "server")]
pub mod server;

use offpay_protocol::{Amount, Currency, UnixSeconds};
use offpay_wallet::Wallet;
use offpay_wallet::vault::Vault;

/// The tests' currency.
pub fn eur_currency() -> Currency {
    Currency::new("EUR").unwrap()
}

/// `minor` euro cents.
pub fn eur(minor: u64) -> Amount {
    Amount::new(minor, eur_currency())
}

/// One offline payment of `minor` euro cents at `now`: the payee's request
/// (valid 300 s), the payer's payment, the payee's receipt, the payer's
/// confirmation. The payment's bytes.
pub fn pay<A: Vault, B: Vault>(
    payer: &mut Wallet<A>,
    payee: &mut Wallet<B>,
    minor: u64,
    now: UnixSeconds,
) -> Vec<u8> {
    let req = payee.request(eur(minor), 300, now).unwrap();
    let payment = payer.pay(&req, now).unwrap();
    let receipt = payee.receive(&payment, now).unwrap();
    payer.confirm(&receipt).unwrap();
    payment
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
