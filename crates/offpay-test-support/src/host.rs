//! Suites over a vault on host storage ([`MemoryBlobStore`] and a
//! [`MonotonicCounter`]), generic over the kind of vault: a [`HostVault`]
//! makes and reopens them. offpay-wallet's tests run them on the sealed
//! vault ([`SealedHost`]), offpay-hsm's on its `HsmVault`: one suite, every
//! backend.
//!
//! - vault level: a crash at every blob replace of a commit
//!   ([`crash_at_every_commit_replace`]), a counter failing at every commit
//!   ([`counter_failure_at_every_commit`]) or stuck
//!   ([`counter_stuck_blocks_every_commit_until_it_works`]);
//! - TA level, rollback: a restored state blob opens locked and refuses
//!   everything ([`restored_state_blob_opens_locked`]); a counter that cannot
//!   advance stops the wallet paying past it
//!   ([`a_counter_that_cannot_advance_stops_the_wallet_paying_past_it`]);
//! - TA level, crashes: every operation crashed at every blob replace
//!   ([`crate::ta_crash::crash_host`]).

use std::sync::{Arc, Mutex};

use offpay_protocol::entropy::OsEntropy;
use offpay_protocol::{Suite, UnixSeconds};
use offpay_wallet::vault::{
    BlobCrashPoint, KdfParams, MemoryBlobStore, MemoryCounter, MemoryVault, MonotonicCounter,
    SealedVault, Vault, VaultError,
};
use offpay_wallet::{LockReason, Wallet, WalletError};

use crate::{Scheme, T0, eur, observe, pay};

/// Makes vaults of one kind over host storage: the factory the suites of
/// this module are generic over.
pub trait HostVault {
    /// The vault over a [`MemoryBlobStore`] and the counter `C`.
    type Vault<C: MonotonicCounter + Clone + 'static>: Vault;

    /// The backend's name, in failure messages.
    fn name(&self) -> &'static str;

    /// The blob that holds the sealed state.
    fn state_blob(&self) -> &'static str;

    /// Create a new vault in `store` (empty) with the fresh `counter`.
    ///
    /// # Errors
    /// The vault's.
    fn create<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError>;

    /// Open the vault in `store` with `counter` (after a restart).
    ///
    /// # Errors
    /// The vault's.
    fn open<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError>;

    /// A fresh vault of this kind (the same keys: a device's key of the
    /// state's generation is found) holding exactly `plain`: to observe a
    /// state.
    fn holding(&self, plain: &[u8]) -> Self::Vault<MemoryCounter> {
        let mut v = self
            .create(&MemoryBlobStore::new(), MemoryCounter::new(0))
            .unwrap();
        v.commit(plain).unwrap();
        v
    }
}

/// The PIN of [`SealedHost`]'s vaults.
pub const SEALED_PIN: &[u8] = b"2468";
/// The device secret of [`SealedHost`]'s vaults.
pub const SEALED_SECRET: [u8; 32] = [0x5a; 32];

/// [`SealedVault`] with [`SEALED_PIN`], [`SEALED_SECRET`] and
/// [`KdfParams::TEST`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SealedHost;

impl HostVault for SealedHost {
    type Vault<C: MonotonicCounter + Clone + 'static> = SealedVault<MemoryBlobStore, C>;

    fn name(&self) -> &'static str {
        "sealed"
    }

    fn state_blob(&self) -> &'static str {
        "state.sealed"
    }

    fn create<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError> {
        SealedVault::create(
            store.clone(),
            counter,
            SEALED_PIN,
            &SEALED_SECRET,
            KdfParams::TEST,
            OsEntropy::shared(),
        )
    }

    fn open<C: MonotonicCounter + Clone + 'static>(
        &self,
        store: &MemoryBlobStore,
        counter: C,
    ) -> Result<Self::Vault<C>, VaultError> {
        SealedVault::open(
            store.clone(),
            counter,
            SEALED_PIN,
            &SEALED_SECRET,
            OsEntropy::shared(),
        )
    }
}

// ---- vault level ---------------------------------------------------------------

/// Both points a [`MemoryBlobStore`] replace can crash at.
pub const BLOB_POINTS: [BlobCrashPoint; 2] =
    [BlobCrashPoint::BeforeReplace, BlobCrashPoint::AfterReplace];

/// The states committed in sequence (distinct, of various sizes).
pub fn states() -> Vec<Vec<u8>> {
    vec![
        b"state one".to_vec(),
        Vec::new(),
        vec![0xC3; 10_000],
        b"state four, the last".to_vec(),
    ]
}

/// Checks a reopened vault after a crash during commit number `failed`
/// (`None`: no crash fired) of `states()`; returns the loaded version.
pub fn check_after_crash<V: Vault>(v: &mut V, failed: Option<usize>, label: &str) -> u64 {
    let states = states();
    let l = v.load().unwrap_or_else(|e| panic!("{label}: load: {e}"));
    assert_eq!(l.rollback, None, "{label}: false rollback");
    let ok_count = failed.unwrap_or(states.len());
    let old = ok_count.checked_sub(1).map(|i| states[i].clone());
    let new = failed.map(|i| states[i].clone());
    let ok_version = u64::try_from(ok_count).unwrap();
    if l.state == old {
        assert_eq!(l.version, ok_version, "{label}: old state, wrong version");
    } else if l.state == new {
        assert_eq!(
            l.version,
            ok_version + 1,
            "{label}: new state, wrong version"
        );
    } else {
        panic!("{label}: neither old nor new state: {l:?}");
    }
    // A further commit works and is durable.
    v.commit(b"after the crash")
        .unwrap_or_else(|e| panic!("{label}: commit after crash: {e}"));
    let after = v.load().unwrap();
    assert_eq!(
        after.state.as_deref(),
        Some(&b"after the crash"[..]),
        "{label}"
    );
    assert_eq!(
        (after.version, after.rollback),
        (l.version + 1, None),
        "{label}"
    );
    l.version
}

/// A crash at every blob replace of four commits, before or after it is
/// applied: the reopened vault holds the old or the new state, at its
/// version, and goes on.
pub fn crash_at_every_commit_replace<H: HostVault>(h: &H) {
    for point in BLOB_POINTS {
        let mut n = 0;
        loop {
            let store = MemoryBlobStore::new();
            let counter = MemoryCounter::new(0);
            let mut v = h.create(&store, counter.clone()).unwrap();
            store.fail_replace_at(n, point);
            let mut failed = None;
            for (i, s) in states().iter().enumerate() {
                if let Err(e) = v.commit(s) {
                    assert_eq!(e, VaultError::Crashed, "n {n}");
                    failed = Some(i);
                    break;
                }
            }
            // The dead process: every call fails.
            if store.is_crashed() {
                assert_eq!(v.load(), Err(VaultError::Crashed));
            }
            drop(v);
            let fired = store.is_crashed();
            if !fired {
                assert_eq!(failed, None);
                assert_eq!(n, 4, "one replace per commit");
                assert_eq!(store.replaces(), 4);
                break;
            }
            store.restart();
            let label = format!("{} blob {point:?} n {n}", h.name());
            let mut v = h.open(&store, counter.clone()).unwrap();
            let version = check_after_crash(&mut v, failed, &label);
            // Before the replace: the old state; after it: the new one
            // (the counter is advanced by the load).
            let expect = n + u64::from(point == BlobCrashPoint::AfterReplace);
            assert_eq!(version, expect, "{label}");
            assert_eq!(counter.value(), version + 1, "{label}");
            let mut v = h.open(&store, counter.clone()).unwrap();
            assert_eq!(
                v.load().unwrap().state.as_deref(),
                Some(&b"after the crash"[..])
            );
            n += 1;
        }
    }
}

/// A host counter that fails at advance call number `fail_at` (before or
/// after the value changed), and, when `stuck`, at every advance from then
/// on (a keystore that stopped working).
#[derive(Clone, Debug)]
pub struct FlakyCounter {
    inner: MemoryCounter,
    state: Arc<Mutex<Flaky>>,
}

#[derive(Debug, Default)]
struct Flaky {
    advances: u64,
    fail_at: Option<u64>,
    after: bool,
    stuck: bool,
    failed: bool,
}

impl FlakyCounter {
    /// The inner counter's value.
    pub fn value(&self) -> u64 {
        self.inner.value()
    }

    /// Over `inner`, failing nothing yet.
    pub fn new(inner: MemoryCounter) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    /// Fail advance number `n` from now (after the value changed when
    /// `after`), and every later one when `stuck`.
    pub fn fail_at(&self, n: u64, after: bool, stuck: bool) {
        let mut s = self.state.lock().unwrap();
        *s = Flaky {
            fail_at: Some(n),
            after,
            stuck,
            ..Flaky::default()
        };
    }

    /// Fail nothing from now.
    pub fn heal(&self) {
        *self.state.lock().unwrap() = Flaky::default();
    }

    /// Whether a failure fired.
    pub fn failed(&self) -> bool {
        self.state.lock().unwrap().failed
    }
}

/// The error a [`FlakyCounter`] fails with.
pub fn keystore_down() -> VaultError {
    VaultError::Io {
        op: "advance counter",
        kind: std::io::ErrorKind::Other,
    }
}

impl MonotonicCounter for FlakyCounter {
    fn read(&mut self) -> Result<u64, VaultError> {
        self.inner.read()
    }

    fn advance_to(&mut self, v: u64) -> Result<(), VaultError> {
        let mut s = self.state.lock().unwrap();
        let n = s.advances;
        s.advances += 1;
        let fail = s.fail_at == Some(n) || (s.stuck && s.failed);
        if !fail {
            return self.inner.advance_to(v);
        }
        s.failed = true;
        if s.after {
            self.inner.advance_to(v)?;
        }
        Err(keystore_down())
    }
}

/// The counter advance fails once (before or after it took effect) at each
/// of four commits.
pub fn counter_failure_at_every_commit<H: HostVault>(h: &H) {
    // The counter advance fails once (before or after it took effect): the
    // commit reports the error, and the next open completes or keeps it.
    for after in [false, true] {
        let mut n = 0;
        loop {
            let store = MemoryBlobStore::new();
            let counter = FlakyCounter::new(MemoryCounter::new(0));
            let mut v = h.create(&store, counter.clone()).unwrap();
            counter.fail_at(n, after, false);
            let mut failed = None;
            for (i, s) in states().iter().enumerate() {
                if let Err(e) = v.commit(s) {
                    assert_eq!(e, keystore_down(), "n {n}");
                    failed = Some(i);
                    break;
                }
            }
            drop(v);
            if !counter.failed() {
                assert_eq!(n, 4, "one advance per commit");
                break;
            }
            let label = format!("counter after={after} n {n}");
            let mut v = h.open(&store, counter.clone()).unwrap();
            // The state blob was replaced before the advance: the new state.
            let version = check_after_crash(&mut v, failed, &label);
            assert_eq!(version, n + 1, "{label}");
            n += 1;
        }
    }
}

/// A counter stuck after a state write blocks every commit and load, on this
/// handle and a reopened one, until it works again.
pub fn counter_stuck_blocks_every_commit_until_it_works<H: HostVault>(h: &H) {
    let store = MemoryBlobStore::new();
    let counter = FlakyCounter::new(MemoryCounter::new(0));
    let mut v = h.create(&store, counter.clone()).unwrap();
    v.commit(b"one").unwrap();
    counter.fail_at(0, false, true);
    assert_eq!(v.commit(b"two"), Err(keystore_down()));
    // The state blob holds version 2, the counter 1: nothing more can be
    // committed (no version is sealed twice, none past the counter + 1), on
    // this handle or a reopened one, and load cannot finish either.
    assert_eq!(v.commit(b"three"), Err(keystore_down()));
    assert_eq!(v.load(), Err(keystore_down()));
    let mut w = h.open(&store, counter.clone()).unwrap();
    assert_eq!(w.load(), Err(keystore_down()));
    assert_eq!(w.commit(b"three"), Err(keystore_down()));
    assert_eq!(counter.value(), 1);
    // The keystore works again: the interrupted commit completes.
    counter.heal();
    let l = w.load().unwrap();
    assert_eq!(
        (l.state.as_deref(), l.version, l.rollback),
        (Some(&b"two"[..]), 2, None)
    );
    w.commit(b"three").unwrap();
    assert_eq!(counter.value(), 3);
}

// ---- TA level: rollback ------------------------------------------------------

fn locked() -> WalletError {
    WalletError::Locked(LockReason::RolledBack)
}

/// `w` is a rolled-back wallet: every money-moving operation is refused with
/// `Locked(RolledBack)` and leaves its state exactly as it was. `payee` is an
/// honest wallet; `pending_req` a request `w` issued before the rollback point
/// (still pending in the restored state); `voucher` a fresh voucher for `w`.
pub fn assert_refuses_everything<V: Vault>(
    w: &mut Wallet<V>,
    payee: &mut Wallet<MemoryVault>,
    pending_req: &[u8],
    voucher: &[u8],
    now: UnixSeconds,
) {
    let before = observe(w, now);
    assert_eq!(before.status.locked, Some(LockReason::RolledBack));
    let req = payee.request(eur(100), 300, now).unwrap();
    assert_eq!(w.pay(&req, now), Err(locked()), "pay");
    assert_eq!(w.request(eur(100), 300, now), Err(locked()), "request");
    assert_eq!(w.redeem(eur(100), now), Err(locked()), "redeem");
    assert_eq!(w.apply_voucher(voucher, now), Err(locked()), "voucher");
    // A genuine payment for a request the wallet really has pending.
    let payment = payee.pay(pending_req, now).unwrap();
    assert_eq!(w.receive(&payment, now), Err(locked()), "receive");
    assert_eq!(
        observe(w, now),
        before,
        "a refusal changed the locked wallet"
    );
}

/// A backup of the state blob restored after a payment (the counter is not
/// in the backup): the wallet opens locked, refuses everything, and the lock
/// is sealed above the counter.
pub fn restored_state_blob_opens_locked<H: HostVault>(h: &H, suites: &[Suite]) {
    for &suite in suites {
        let mut s = Scheme::new(suite);
        let store = MemoryBlobStore::new();
        let counter = MemoryCounter::new(0);
        let mut alice = s.enroll(h.create(&store, counter.clone()).unwrap(), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let pending_req = alice.request(eur(300), 3600, T0).unwrap();
        // A backup of the app's files directory, restored after a payment; the
        // counter (in the keystore) is not in the backup.
        let aside = store.get(h.state_blob()).unwrap();
        pay(&mut alice, &mut bob, 1_000, T0.plus(10));
        let counted = counter.value();
        drop(alice);
        store.put(h.state_blob(), &aside);
        let mut alice = Wallet::open(h.open(&store, counter.clone()).unwrap()).unwrap();
        assert_eq!(alice.lock(), Some(&LockReason::RolledBack));
        assert_eq!(alice.balance().unwrap().minor, 10_000, "the restored state");
        let v = s.voucher(alice.wallet_id(), 500, T0.plus(20));
        assert_refuses_everything(&mut alice, &mut bob, &pending_req, &v, T0.plus(20));
        drop(alice);
        let alice = Wallet::open(h.open(&store, counter.clone()).unwrap()).unwrap();
        assert_eq!(
            alice.lock(),
            Some(&LockReason::RolledBack),
            "the lock is sealed"
        );
        assert!(
            counter.value() > counted,
            "the lock is sealed above the counter"
        );
    }
}

/// A counter that refuses to advance: no Payment leaves, the reopened
/// wallet cannot finish the commit, and once it works the payee asking again
/// is paid once.
pub fn a_counter_that_cannot_advance_stops_the_wallet_paying_past_it<H: HostVault>(
    h: &H,
    suites: &[Suite],
) {
    for &suite in suites {
        let mut s = Scheme::new(suite);
        let store = MemoryBlobStore::new();
        let counter = FlakyCounter::new(MemoryCounter::new(0));
        let mut alice = s.enroll(h.create(&store, counter.clone()).unwrap(), suite, T0);
        let mut bob = s.enroll(MemoryVault::new(), suite, T0);
        s.load(&mut alice, 10_000, T0);
        let t = T0.plus(10);
        pay(&mut alice, &mut bob, 1_000, t);
        let total = alice.balance().unwrap().minor + bob.balance().unwrap().minor;

        counter.fail_at(0, false, true);
        let req = bob.request(eur(2_000), 3600, t).unwrap();
        // The state blob is replaced, the counter refuses: no Payment leaves.
        assert_eq!(alice.pay(&req, t), Err(WalletError::Vault(keystore_down())));
        let req2 = bob.request(eur(500), 3600, t).unwrap();
        assert_eq!(
            alice.pay(&req2, t),
            Err(WalletError::Vault(keystore_down()))
        );
        assert!(alice.redeem(eur(100), t).is_err());
        drop(alice);
        // Reopened while the counter is still stuck: the open cannot finish
        // the interrupted commit, so there is no wallet to pay with.
        assert_eq!(
            Wallet::open(h.open(&store, counter.clone()).unwrap()).err(),
            Some(WalletError::Vault(keystore_down()))
        );

        // The keystore works again: the interrupted commit completes, and the
        // payee asking again gets the Payment, debited once.
        counter.heal();
        let mut alice = Wallet::open(h.open(&store, counter.clone()).unwrap()).unwrap();
        assert_eq!(alice.lock(), None);
        assert_eq!(alice.balance().unwrap().minor, 7_000);
        let payment = alice.pay(&req, t).unwrap();
        assert_eq!(alice.balance().unwrap().minor, 7_000, "debited once");
        let receipt = bob.receive(&payment, t).unwrap();
        alice.confirm(&receipt).unwrap();
        assert_eq!(
            alice.balance().unwrap().minor + bob.balance().unwrap().minor,
            total
        );
    }
}
