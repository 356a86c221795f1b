//! A minimal test scheme (root and issuer CA, enrollment, vouchers) for real
//! wallets, after offpay-wallet's tests/common: the real backend is
//! offpay-issuer; this only stands in for it here.
#![allow(dead_code)]

use offpay_protocol::envelope::Signed;
use offpay_protocol::messages::{LoadVoucher, RiskPolicy};
use offpay_protocol::pki::{self, Certificate, PolicyRef};
use offpay_protocol::{Amount, Currency, SigningKey, Suite, UnixSeconds, WalletId};
use offpay_wallet::Wallet;
use offpay_wallet::vault::{MemoryVault, Vault};

pub const T0: UnixSeconds = UnixSeconds(1_795_000_000);
pub const DAY: u64 = 86_400;

pub fn eur() -> Currency {
    Currency::new("EUR").unwrap()
}
pub fn eur_amount(minor: u64) -> Amount {
    Amount::new(minor, eur())
}

pub fn default_policy() -> RiskPolicy {
    RiskPolicy {
        id: 1,
        epoch: 1,
        max_payment: eur_amount(50_000),
        max_balance_minor: 100_000,
        max_offline_spend_minor: 200_000,
        max_offline_payments: 500,
        max_offline_seconds: 7 * DAY,
        max_log_entries: 1000,
        cert_validity_seconds: 30 * DAY,
    }
}

pub struct Scheme {
    pub issuer_key: SigningKey,
    pub root: Certificate,
    pub issuer: Certificate,
    pub policy: RiskPolicy,
    pub policy_bytes: Vec<u8>,
    next_serial: u64,
    load_seq: std::collections::HashMap<WalletId, u64>,
}

impl Scheme {
    pub fn new(suite: Suite) -> Scheme {
        let policy = default_policy();
        let root_key = SigningKey::from_seed(suite, &[0x11; 32]).unwrap();
        let root = pki::issue_root(
            &root_key,
            "offpay test root",
            1,
            UnixSeconds(T0.0 - DAY),
            T0.plus(3650 * DAY),
        )
        .unwrap();
        let issuer_key = SigningKey::from_seed(suite, &[0x22; 32]).unwrap();
        let issuer = pki::issue_issuer_ca(
            &root_key,
            &root,
            &issuer_key.public_key(),
            "offpay test issuer",
            2,
            UnixSeconds(T0.0 - DAY),
            T0.plus(1825 * DAY),
        )
        .unwrap();
        let policy_bytes = Signed::sign(policy.clone(), &issuer_key).into_bytes();
        Scheme {
            issuer_key,
            root,
            issuer,
            policy,
            policy_bytes,
            next_serial: 1 << 62,
            load_seq: Default::default(),
        }
    }

    /// Create a wallet in `vault`, have its CSR certified, and enroll it.
    pub fn enroll<V: Vault>(&mut self, vault: V, suite: Suite, now: UnixSeconds) -> Wallet<V> {
        let mut w = Wallet::create(vault, suite, self.root.der(), now).unwrap();
        let csr = pki::parse_csr(&w.csr().unwrap()).unwrap();
        let serial = self.next_serial;
        self.next_serial += 1;
        let cert = pki::issue_wallet(
            &self.issuer_key,
            &self.issuer,
            &csr.public_key,
            csr.wallet_id,
            PolicyRef {
                id: self.policy.id,
                epoch: self.policy.epoch,
            },
            serial,
            now,
            now.plus(self.policy.cert_validity_seconds),
        )
        .unwrap();
        w.enroll(self.issuer.der(), cert.der(), &self.policy_bytes, None, now)
            .unwrap();
        w
    }

    /// A wallet in memory.
    pub fn memory_wallet(&mut self, suite: Suite) -> Wallet<MemoryVault> {
        self.enroll(MemoryVault::new(), suite, T0)
    }

    /// Load `minor` into a wallet through a voucher.
    pub fn load<V: Vault>(&mut self, w: &mut Wallet<V>, minor: u64, now: UnixSeconds) {
        let seq = self.load_seq.entry(w.wallet_id()).or_insert(0);
        *seq += 1;
        let v = Signed::sign(
            LoadVoucher {
                wallet: w.wallet_id(),
                load_seq: *seq,
                amount: eur_amount(minor),
                issued: now,
            },
            &self.issuer_key,
        )
        .into_bytes();
        w.apply_voucher(&v, now).unwrap();
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
