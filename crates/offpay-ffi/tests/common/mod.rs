//! Rust implementations of the host traits for the SDK's tests: storage and
//! counter in memory with crash injection at every host write, a platform
//! with a settable clock, and a wallet fixture over the test scheme.
#![allow(dead_code)] // each test file uses a part of it

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use offpay_ffi::{
    HostCounter, HostError, HostPlatform, HostStorage, KdfSettings, OffpayError, OffpayWallet,
};
use offpay_protocol::entropy::{Entropy, OsEntropy};
use offpay_protocol::{Suite, UnixSeconds};
use offpay_test_support::{Scheme, T0};

pub const PIN: &str = "2468";
/// The smallest Argon2id settings the vault accepts (tests only).
pub const KDF: KdfSettings = KdfSettings {
    memory_kib: 8,
    passes: 1,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where an injected failure strikes a host write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strike {
    /// Before the write: the old content stays.
    Before,
    /// After the write: the new content is there, the call still fails.
    After,
}

#[derive(Debug, Default)]
struct FaultState {
    /// Host writes (storage replaces and counter advances) since `arm`.
    writes: u64,
    fail_at: Option<(u64, Strike)>,
    /// An injected failure fired: every call fails (a dead process) until `disarm`.
    dead: bool,
    /// Panic instead of failing.
    panic: bool,
}

/// Crash injection shared by a storage and a counter: write number `n`
/// (replaces and counter advances counted together) fails, and every call
/// after it, until `disarm`.
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Mutex<FaultState>>);

impl Faults {
    pub fn arm(&self, n: u64, strike: Strike) {
        let mut s = lock(&self.0);
        *s = FaultState {
            fail_at: Some((n, strike)),
            ..FaultState::default()
        };
    }

    /// Write number `n` panics inside the callback (a bug in the host or ours).
    pub fn arm_panic(&self, n: u64) {
        self.arm(n, Strike::Before);
        lock(&self.0).panic = true;
    }

    /// Count writes from now on, failing none.
    pub fn disarm(&self) {
        *lock(&self.0) = FaultState::default();
    }

    pub fn writes(&self) -> u64 {
        lock(&self.0).writes
    }

    pub fn fired(&self) -> bool {
        lock(&self.0).dead
    }

    fn read(&self) -> Result<(), HostError> {
        if lock(&self.0).dead {
            return Err(HostError::Io {
                reason: "the process is dead (injected)".into(),
            });
        }
        Ok(())
    }

    fn write(&self, apply: impl FnOnce()) -> Result<(), HostError> {
        let mut s = lock(&self.0);
        if s.dead {
            return Err(HostError::Io {
                reason: "the process is dead (injected)".into(),
            });
        }
        let n = s.writes;
        s.writes += 1;
        match s.fail_at {
            Some((at, strike)) if at == n => {
                s.dead = true;
                if s.panic {
                    drop(s);
                    panic!("injected panic in host write {n}");
                }
                if strike == Strike::After {
                    apply();
                }
                Err(HostError::Io {
                    reason: format!("injected failure of write {n}"),
                })
            }
            _ => {
                apply();
                Ok(())
            }
        }
    }
}

/// Blobs in memory (clones share them).
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    blobs: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
    pub faults: Faults,
}

impl MemStorage {
    pub fn with_faults(faults: Faults) -> Self {
        MemStorage {
            blobs: Arc::default(),
            faults,
        }
    }
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.blobs).get(name).cloned()
    }
    /// Set a blob behind the wallet's back (a restored backup, an attacker).
    pub fn put(&self, name: &str, data: &[u8]) {
        lock(&self.blobs).insert(name.into(), data.to_vec());
    }
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        lock(&self.blobs).clone()
    }
    /// A new storage (and faults) holding `blobs`.
    pub fn from_snapshot(blobs: BTreeMap<String, Vec<u8>>, faults: Faults) -> Self {
        MemStorage {
            blobs: Arc::new(Mutex::new(blobs)),
            faults,
        }
    }
}

impl HostStorage for MemStorage {
    fn read(&self, name: String) -> Result<Option<Vec<u8>>, HostError> {
        self.faults.read()?;
        Ok(self.get(&name))
    }
    fn replace(&self, name: String, data: Vec<u8>) -> Result<(), HostError> {
        self.faults.write(|| {
            lock(&self.blobs).insert(name, data);
        })
    }
}

/// A counter in memory (clones share it) that refuses to go backwards.
#[derive(Clone, Debug, Default)]
pub struct MemCounter {
    value: Arc<AtomicU64>,
    pub faults: Faults,
    /// Ignore advances (a broken counter that says Ok).
    pub stuck: Arc<AtomicBool>,
}

impl MemCounter {
    pub fn with_faults(faults: Faults) -> Self {
        MemCounter {
            faults,
            ..MemCounter::default()
        }
    }
    pub fn value(&self) -> u64 {
        self.value.load(Ordering::SeqCst)
    }
    pub fn at(value: u64, faults: Faults) -> Self {
        let c = MemCounter::with_faults(faults);
        c.value.store(value, Ordering::SeqCst);
        c
    }
}

impl HostCounter for MemCounter {
    fn read(&self) -> Result<u64, HostError> {
        self.faults.read()?;
        Ok(self.value())
    }
    fn advance_to(&self, value: u64) -> Result<(), HostError> {
        if value < self.value() {
            return Err(HostError::Io {
                reason: format!("counter would go back from {} to {value}", self.value()),
            });
        }
        self.faults.write(|| {
            if !self.stuck.load(Ordering::SeqCst) {
                self.value.store(value, Ordering::SeqCst);
            }
        })
    }
}

/// The platform: a fixed device secret, a settable clock, the OS random source.
#[derive(Clone, Debug)]
pub struct TestPlatform {
    pub secret: Vec<u8>,
    pub now: Arc<AtomicU64>,
    /// Follow the system clock (against a real server) instead of `now`.
    pub real_clock: bool,
}

impl TestPlatform {
    pub fn at(now: UnixSeconds) -> Self {
        TestPlatform {
            secret: vec![0x5a; 32],
            now: Arc::new(AtomicU64::new(now.0)),
            real_clock: false,
        }
    }
    /// The system clock.
    pub fn real() -> Self {
        TestPlatform {
            real_clock: true,
            ..TestPlatform::at(UnixSeconds(0))
        }
    }
    pub fn set_now(&self, t: UnixSeconds) {
        self.now.store(t.0, Ordering::SeqCst);
    }
    pub fn advance(&self, seconds: u64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl HostPlatform for TestPlatform {
    fn device_secret(&self) -> Result<Vec<u8>, HostError> {
        Ok(self.secret.clone())
    }
    fn now_unix_seconds(&self) -> u64 {
        if self.real_clock {
            return std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
        }
        self.now.load(Ordering::SeqCst)
    }
    fn random_bytes(&self, len: u32) -> Result<Vec<u8>, HostError> {
        let mut out = vec![0; len as usize];
        OsEntropy
            .fill(&mut out)
            .map_err(|e| HostError::Unavailable {
                reason: e.to_string(),
            })?;
        Ok(out)
    }
}

/// One wallet's host: its storage, counter and platform (sharing one `Faults`).
#[derive(Clone, Debug)]
pub struct Host {
    pub storage: MemStorage,
    pub counter: MemCounter,
    pub platform: TestPlatform,
    pub faults: Faults,
}

impl Host {
    pub fn new(platform: &TestPlatform) -> Host {
        let faults = Faults::default();
        Host {
            storage: MemStorage::with_faults(faults.clone()),
            counter: MemCounter::with_faults(faults.clone()),
            platform: platform.clone(),
            faults,
        }
    }

    /// A copy of this host's storage and counter as they are now, with its
    /// own faults (the platform, with its clock, is shared).
    pub fn fork(&self) -> Host {
        let faults = Faults::default();
        Host {
            storage: MemStorage::from_snapshot(self.storage.snapshot(), faults.clone()),
            counter: MemCounter::at(self.counter.value(), faults.clone()),
            platform: self.platform.clone(),
            faults,
        }
    }

    pub fn create(&self, root_der: &[u8]) -> Result<Arc<OffpayWallet>, OffpayError> {
        OffpayWallet::create(
            Arc::new(self.storage.clone()),
            Arc::new(self.counter.clone()),
            Arc::new(self.platform.clone()),
            PIN.into(),
            root_der.to_vec(),
            KDF,
        )
    }

    pub fn open(&self) -> Result<Arc<OffpayWallet>, OffpayError> {
        self.open_with(PIN)
    }

    pub fn open_with(&self, pin: &str) -> Result<Arc<OffpayWallet>, OffpayError> {
        OffpayWallet::open(
            Arc::new(self.storage.clone()),
            Arc::new(self.counter.clone()),
            Arc::new(self.platform.clone()),
            pin.into(),
        )
    }
}

/// A wallet created on `host`, enrolled with `scheme` (the test issuer) at
/// the platform's time.
pub fn enrolled(scheme: &mut Scheme, host: &Host) -> Arc<OffpayWallet> {
    let w = host.create(scheme.root.der()).unwrap();
    let now = UnixSeconds(host.platform.now_unix_seconds());
    let cert = scheme.certify(&w.csr().unwrap(), now);
    w.enroll(
        scheme.issuer.der().to_vec(),
        cert,
        scheme.policy_bytes.clone(),
        None,
    )
    .unwrap();
    w
}

/// Load `minor` into `w` with a voucher of `scheme`.
pub fn load(scheme: &mut Scheme, w: &OffpayWallet, minor: u64, now: UnixSeconds) {
    let id = offpay_protocol::WalletId::from_hex(&w.wallet_id().unwrap()).unwrap();
    let v = scheme.voucher(id, minor, now);
    assert_eq!(w.apply_voucher(v).unwrap(), minor);
}

/// One whole offline payment through the SDK; the payment's bytes.
pub fn pay(payer: &OffpayWallet, payee: &OffpayWallet, minor: u64) -> Vec<u8> {
    let request = payee.request(minor, "EUR".into(), 300).unwrap();
    let payment = payer.pay(request).unwrap();
    let receipt = payee.receive(payment.clone()).unwrap();
    payer.confirm(receipt).unwrap();
    payment
}

pub fn balance(w: &OffpayWallet) -> u64 {
    w.balance().unwrap().unwrap().minor
}

/// A plain sync against the test scheme, through the SDK's byte API.
pub fn sync(scheme: &mut Scheme, w: &OffpayWallet, now: UnixSeconds) {
    let report = w.sync_report().unwrap();
    let response = scheme.respond(
        &report,
        now,
        offpay_protocol::messages::WalletCommand::None,
        Vec::new(),
        None,
    );
    w.apply_sync_response(response).unwrap();
}

/// The scheme and platform every test starts from (time T0 + 10).
pub fn start() -> (Scheme, TestPlatform) {
    (Scheme::new(Suite::Ed25519), TestPlatform::at(T0.plus(10)))
}
