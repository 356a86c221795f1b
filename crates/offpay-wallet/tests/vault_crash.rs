//! Crash tests of the sealed vault: a crash is injected at every mutating
//! file operation, and the vault reopened afterwards must hold exactly the
//! old or the new state, with a consistent version, no false rollback, and
//! keep working.
//!
//! Two crash models:
//! - [`FaultyFs`] over the real file system: operation `k` fails and every
//!   later one too (with or without a torn write); everything the real file
//!   system did before stays (process crash, the kernel survives).
//! - `PowerLossFs` below, in memory: on top of that, everything not made
//!   durable by an fsync is lost (file contents not `sync_file`d, directory
//!   entries not `sync_dir`ed). This checks the fsync ordering, and that a
//!   commit that returned `Ok` survives power loss.
//!
//! The same over host storage, `SealedVault<MemoryBlobStore, _>`: a crash
//! at every blob replace (before or after it is applied) and at every
//! counter advance (before or after), and a counter that fails to advance.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)] // Test code: a failed unwrap is a failed test.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use offpay_protocol::entropy::OsEntropy;
use offpay_wallet::vault::{
    BlobCrashPoint, FaultyFs, KdfParams, MemoryBlobStore, MemoryCounter, MonotonicCounter, RealFs,
    SealedFileVault, SealedVault, SimulatedCrash, Vault, VaultError, VaultFs,
};

const PIN: &[u8] = b"2468";
const SECRET: [u8; 32] = [0x5a; 32];

/// The states committed in sequence (distinct, of various sizes).
fn states() -> Vec<Vec<u8>> {
    vec![
        b"state one".to_vec(),
        Vec::new(),
        vec![0xC3; 10_000],
        b"state four, the last".to_vec(),
    ]
}

/// Checks a reopened vault after a crash during commit number `failed`
/// (`None`: no crash fired) of `states()`; returns the loaded version.
fn check_after_crash<V: Vault>(v: &mut V, failed: Option<usize>, label: &str) -> u64 {
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

#[test]
fn crash_at_every_commit_operation() {
    let mut points = 0;
    for torn in [false, true] {
        let mut k = 0;
        loop {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let v = SealedFileVault::create(d, PIN, &SECRET, KdfParams::TEST).unwrap();
            let faulty = FaultyFs::new(k).torn(torn);
            let mut v = v.with_fs(Box::new(faulty.clone()));
            let mut failed = None;
            for (i, s) in states().iter().enumerate() {
                match v.commit(s) {
                    Ok(()) => {}
                    Err(e) => {
                        assert_eq!(e, VaultError::Crashed, "k {k}");
                        failed = Some(i);
                        break;
                    }
                }
            }
            drop(v);
            if !faulty.fired() {
                assert_eq!(failed, None);
                // Every operation index was covered.
                assert_eq!(k, faulty.ops(), "fault points");
                break;
            }
            assert!(failed.is_some(), "k {k}: fault fired but commit succeeded");
            let label = format!("k {k} torn {torn}");
            let mut v = SealedFileVault::open(d, PIN, &SECRET).unwrap();
            check_after_crash(&mut v, failed, &label);
            // And once more from scratch: what we just committed is there.
            let mut v = SealedFileVault::open(d, PIN, &SECRET).unwrap();
            let l = v.load().unwrap();
            assert_eq!(l.state.as_deref(), Some(&b"after the crash"[..]), "{label}");
            k += 1;
            points += 1;
        }
        // 4 commits x (4 operations for the state + 4 for the counter).
        assert_eq!(k, 32);
    }
    eprintln!("crash_at_every_commit_operation: {points} fault points");
}

#[test]
fn crash_at_every_create_operation() {
    let mut k = 0;
    loop {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let faulty = FaultyFs::new(k).torn(k % 2 == 1);
        let created = SealedFileVault::create_with_fs(
            d,
            PIN,
            &SECRET,
            KdfParams::TEST,
            Box::new(faulty.clone()),
        );
        if !faulty.fired() {
            created.unwrap();
            assert_eq!(k, 16, "4 atomic writes of 4 operations");
            break;
        }
        assert_eq!(created.err(), Some(VaultError::Crashed), "k {k}");
        // Either no vault yet (create again) or an empty one.
        let mut v = match SealedFileVault::open(d, PIN, &SECRET) {
            Err(VaultError::NotFound) => {
                SealedFileVault::create(d, PIN, &SECRET, KdfParams::TEST).unwrap()
            }
            other => other.unwrap(),
        };
        let l = v.load().unwrap();
        assert_eq!((l.state, l.version, l.rollback), (None, 0, None), "k {k}");
        v.commit(b"first").unwrap();
        assert_eq!(v.load().unwrap().version, 1);
        k += 1;
    }
}

#[test]
fn crash_at_every_open_operation() {
    // open writes pin-attempts twice (count, then reset): a crash there
    // must not damage the vault; at worst one attempt stays counted.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut v = SealedFileVault::create(d, PIN, &SECRET, KdfParams::TEST).unwrap();
    v.commit(b"kept").unwrap();
    drop(v);
    let mut k = 0;
    loop {
        let faulty = FaultyFs::new(k).torn(true);
        let opened = SealedFileVault::open_with_fs(d, PIN, &SECRET, Box::new(faulty.clone()));
        if !faulty.fired() {
            opened.unwrap();
            assert_eq!(k, 8);
            break;
        }
        assert_eq!(opened.err(), Some(VaultError::Crashed), "k {k}");
        let mut v = SealedFileVault::open(d, PIN, &SECRET).unwrap();
        let l = v.load().unwrap();
        assert_eq!((l.state.as_deref(), l.version), (Some(&b"kept"[..]), 1));
        k += 1;
    }
}

// ---------------------------------------------------------------------------
// Power-loss model.

#[derive(Clone, Debug)]
struct Inode {
    /// What the running process sees.
    data: Vec<u8>,
    /// What survives power loss.
    durable: Vec<u8>,
}

#[derive(Debug, Default)]
struct PowerState {
    inodes: Vec<Inode>,
    /// Directory entries the running process sees.
    names: BTreeMap<PathBuf, usize>,
    /// Directory entries that survive power loss.
    durable_names: BTreeMap<PathBuf, usize>,
    ops: usize,
    fail_at: Option<usize>,
    dead: bool,
}

/// An in-memory file system with POSIX-worst-case durability: data is
/// durable only after `sync_file`, directory entries (creations, renames)
/// only after `sync_dir` of their directory.
#[derive(Clone, Debug, Default)]
struct PowerLossFs(Arc<Mutex<PowerState>>);

impl PowerLossFs {
    fn lock(&self) -> MutexGuard<'_, PowerState> {
        self.0.lock().unwrap()
    }

    /// Fail mutating operation `k` from now (and everything after it).
    fn fail_at(&self, k: usize) {
        let mut s = self.lock();
        s.ops = 0;
        s.fail_at = Some(k);
    }

    fn fired(&self) -> bool {
        self.lock().dead
    }

    /// Power loss: keep only what was durable; the machine reboots.
    fn power_loss(&self) {
        let mut s = self.lock();
        s.names = s.durable_names.clone();
        for inode in &mut s.inodes {
            inode.data = inode.durable.clone();
        }
        s.dead = false;
        s.fail_at = None;
    }

    fn step(&self) -> io::Result<MutexGuard<'_, PowerState>> {
        let mut s = self.lock();
        if s.dead {
            return Err(SimulatedCrash::io_error());
        }
        let n = s.ops;
        s.ops += 1;
        if s.fail_at == Some(n) {
            s.dead = true;
            return Err(SimulatedCrash::io_error());
        }
        Ok(s)
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl VaultFs for PowerLossFs {
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut s = self.step()?;
        if let Some(&ino) = s.names.get(path) {
            s.inodes[ino].data = data.to_vec();
        } else {
            let ino = s.inodes.len();
            s.inodes.push(Inode {
                data: data.to_vec(),
                durable: Vec::new(),
            });
            s.names.insert(path.to_path_buf(), ino);
        }
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.step()?;
        let ino = *s.names.get(path).ok_or_else(not_found)?;
        let inode = &mut s.inodes[ino];
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.step()?;
        let ino = s.names.remove(from).ok_or_else(not_found)?;
        s.names.insert(to.to_path_buf(), ino);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.step()?;
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        s.durable_names.retain(|p, _| !in_dir(p));
        let entries: Vec<_> = s
            .names
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        s.durable_names.extend(entries);
        Ok(())
    }

    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>> {
        let s = self.lock();
        if s.dead {
            return Err(SimulatedCrash::io_error());
        }
        let ino = *s.names.get(path).ok_or_else(not_found)?;
        let data = &s.inodes[ino].data;
        Ok(data[..data.len().min(limit.saturating_add(1))].to_vec())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.step()?;
        s.names.remove(path).map(|_| ()).ok_or_else(not_found)
    }
}

#[test]
fn power_loss_at_every_commit_operation() {
    let dir = Path::new("/vault");
    let mut k = 0;
    loop {
        let fs = PowerLossFs::default();
        let v = SealedFileVault::create_with_fs(
            dir,
            PIN,
            &SECRET,
            KdfParams::TEST,
            Box::new(fs.clone()),
        )
        .unwrap();
        fs.fail_at(k);
        let mut v = v;
        let mut failed = None;
        for (i, s) in states().iter().enumerate() {
            if let Err(e) = v.commit(s) {
                assert_eq!(e, VaultError::Crashed, "k {k}");
                failed = Some(i);
                break;
            }
        }
        drop(v);
        let fired = fs.fired();
        // Power loss after the crash, or after the last Ok commit: a commit
        // that returned Ok must survive it.
        fs.power_loss();
        let label = format!("power loss k {k}");
        let mut v = SealedFileVault::open_with_fs(dir, PIN, &SECRET, Box::new(fs.clone()))
            .unwrap_or_else(|e| panic!("{label}: open: {e}"));
        check_after_crash(&mut v, failed, &label);
        // The commit after the crash is durable too.
        drop(v);
        fs.power_loss();
        let mut v = SealedFileVault::open_with_fs(dir, PIN, &SECRET, Box::new(fs.clone())).unwrap();
        assert_eq!(
            v.load().unwrap().state.as_deref(),
            Some(&b"after the crash"[..]),
            "{label}"
        );
        if !fired {
            assert_eq!(k, 32);
            break;
        }
        k += 1;
    }
}

#[test]
fn power_loss_at_every_create_operation() {
    let dir = Path::new("/vault");
    let mut k = 0;
    loop {
        let fs = PowerLossFs::default();
        fs.fail_at(k);
        let created = SealedFileVault::create_with_fs(
            dir,
            PIN,
            &SECRET,
            KdfParams::TEST,
            Box::new(fs.clone()),
        );
        let fired = fs.fired();
        assert_eq!(created.is_ok(), !fired, "k {k}");
        drop(created);
        fs.power_loss();
        let mut v = match SealedFileVault::open_with_fs(dir, PIN, &SECRET, Box::new(fs.clone())) {
            Err(VaultError::NotFound) => {
                assert!(fired, "k {k}: a created vault must survive power loss");
                SealedFileVault::create_with_fs(
                    dir,
                    PIN,
                    &SECRET,
                    KdfParams::TEST,
                    Box::new(fs.clone()),
                )
                .unwrap()
            }
            other => other.unwrap_or_else(|e| panic!("k {k}: {e}")),
        };
        let l = v.load().unwrap();
        assert_eq!((l.state, l.version, l.rollback), (None, 0, None), "k {k}");
        if !fired {
            break;
        }
        k += 1;
    }
}

#[test]
fn real_fs_is_what_faulty_fs_wraps() {
    // Sanity: RealFs and a never-firing FaultyFs behave the same.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let v = SealedFileVault::create(d, PIN, &SECRET, KdfParams::TEST).unwrap();
    let faulty = FaultyFs::new(usize::MAX);
    let mut v = v.with_fs(Box::new(faulty.clone()));
    v.commit(b"a").unwrap();
    assert_eq!(faulty.ops(), 8);
    let mut v = v.with_fs(Box::new(RealFs));
    assert_eq!(v.load().unwrap().state.as_deref(), Some(&b"a"[..]));
}

// ---------------------------------------------------------------------------
// Host storage: SealedVault over a MemoryBlobStore.

fn blob_create<C: MonotonicCounter>(
    store: &MemoryBlobStore,
    counter: C,
) -> Result<SealedVault<MemoryBlobStore, C>, VaultError> {
    SealedVault::create(
        store.clone(),
        counter,
        PIN,
        &SECRET,
        KdfParams::TEST,
        OsEntropy::shared(),
    )
}

fn blob_open<C: MonotonicCounter>(
    store: &MemoryBlobStore,
    counter: C,
) -> Result<SealedVault<MemoryBlobStore, C>, VaultError> {
    SealedVault::open(store.clone(), counter, PIN, &SECRET, OsEntropy::shared())
}

const BLOB_POINTS: [BlobCrashPoint; 2] =
    [BlobCrashPoint::BeforeReplace, BlobCrashPoint::AfterReplace];

#[test]
fn blob_crash_at_every_commit_replace() {
    for point in BLOB_POINTS {
        let mut n = 0;
        loop {
            let store = MemoryBlobStore::new();
            let counter = MemoryCounter::new(0);
            let mut v = blob_create(&store, counter.clone()).unwrap();
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
            let label = format!("blob {point:?} n {n}");
            let mut v = blob_open(&store, counter.clone()).unwrap();
            let version = check_after_crash(&mut v, failed, &label);
            // Before the replace: the old state; after it: the new one
            // (the counter is advanced by the load).
            let expect = n + u64::from(point == BlobCrashPoint::AfterReplace);
            assert_eq!(version, expect, "{label}");
            assert_eq!(counter.value(), version + 1, "{label}");
            let mut v = blob_open(&store, counter.clone()).unwrap();
            assert_eq!(
                v.load().unwrap().state.as_deref(),
                Some(&b"after the crash"[..])
            );
            n += 1;
        }
    }
}

#[test]
fn blob_crash_at_every_create_and_open_replace() {
    for point in BLOB_POINTS {
        let mut n = 0;
        loop {
            let store = MemoryBlobStore::new();
            let counter = MemoryCounter::new(0);
            store.fail_replace_at(n, point);
            let created = blob_create(&store, counter.clone());
            if !store.is_crashed() {
                created.unwrap();
                assert_eq!(n, 3, "pin-attempts, device-check, state.sealed");
                break;
            }
            assert_eq!(created.err(), Some(VaultError::Crashed), "n {n}");
            store.restart();
            // No vault yet (create again: the counter is still fresh) or an empty one.
            let mut v = match blob_open(&store, counter.clone()) {
                Err(VaultError::NotFound) => blob_create(&store, counter.clone()).unwrap(),
                other => other.unwrap(),
            };
            assert_eq!(counter.value(), 0);
            let l = v.load().unwrap();
            assert_eq!((l.state, l.version, l.rollback), (None, 0, None), "n {n}");
            v.commit(b"first").unwrap();
            n += 1;
        }
    }
    for point in BLOB_POINTS {
        let store = MemoryBlobStore::new();
        let counter = MemoryCounter::new(0);
        blob_create(&store, counter.clone())
            .unwrap()
            .commit(b"kept")
            .unwrap();
        let mut n = 0;
        loop {
            store.fail_replace_at(n, point);
            let opened = blob_open(&store, counter.clone());
            if !store.is_crashed() {
                opened.unwrap();
                assert_eq!(n, 2, "count, reset");
                break;
            }
            assert_eq!(opened.err(), Some(VaultError::Crashed), "n {n}");
            store.restart();
            let mut v = blob_open(&store, counter.clone()).unwrap();
            let l = v.load().unwrap();
            assert_eq!((l.state.as_deref(), l.version), (Some(&b"kept"[..]), 1));
            n += 1;
        }
    }
}

/// A host counter that fails at advance call number `fail_at` (before or
/// after the value changed), and, when `stuck`, at every advance from then
/// on (a keystore that stopped working).
#[derive(Clone, Debug)]
struct FlakyCounter {
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
    fn new(inner: MemoryCounter) -> Self {
        Self {
            inner,
            state: Arc::default(),
        }
    }

    fn fail_at(&self, n: u64, after: bool, stuck: bool) {
        let mut s = self.state.lock().unwrap();
        *s = Flaky {
            fail_at: Some(n),
            after,
            stuck,
            ..Flaky::default()
        };
    }

    fn heal(&self) {
        *self.state.lock().unwrap() = Flaky::default();
    }

    fn failed(&self) -> bool {
        self.state.lock().unwrap().failed
    }
}

fn keystore_down() -> VaultError {
    VaultError::Io {
        op: "advance counter",
        kind: io::ErrorKind::Other,
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

#[test]
fn blob_counter_failure_at_every_commit() {
    // The counter advance fails once (before or after it took effect): the
    // commit reports the error, and the next open completes or keeps it.
    for after in [false, true] {
        let mut n = 0;
        loop {
            let store = MemoryBlobStore::new();
            let counter = FlakyCounter::new(MemoryCounter::new(0));
            let mut v = blob_create(&store, counter.clone()).unwrap();
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
            let mut v = blob_open(&store, counter.clone()).unwrap();
            // The state blob was replaced before the advance: the new state.
            let version = check_after_crash(&mut v, failed, &label);
            assert_eq!(version, n + 1, "{label}");
            n += 1;
        }
    }
}

#[test]
fn blob_counter_stuck_blocks_every_commit_until_it_works() {
    let store = MemoryBlobStore::new();
    let counter = FlakyCounter::new(MemoryCounter::new(0));
    let mut v = blob_create(&store, counter.clone()).unwrap();
    v.commit(b"one").unwrap();
    counter.fail_at(0, false, true);
    assert_eq!(v.commit(b"two"), Err(keystore_down()));
    // The state blob holds version 2, the counter 1: nothing more can be
    // committed (no version is sealed twice, none past the counter + 1), on
    // this handle or a reopened one, and load cannot finish either.
    assert_eq!(v.commit(b"three"), Err(keystore_down()));
    assert_eq!(v.load(), Err(keystore_down()));
    let mut w = blob_open(&store, counter.clone()).unwrap();
    assert_eq!(w.load(), Err(keystore_down()));
    assert_eq!(w.commit(b"three"), Err(keystore_down()));
    assert_eq!(counter.inner.value(), 1);
    // The keystore works again: the interrupted commit completes.
    counter.heal();
    let l = w.load().unwrap();
    assert_eq!(
        (l.state.as_deref(), l.version, l.rollback),
        (Some(&b"two"[..]), 2, None)
    );
    w.commit(b"three").unwrap();
    assert_eq!(counter.inner.value(), 3);
}
