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
use offpay_test_support::host::{self, BLOB_POINTS, SealedHost, check_after_crash, states};
use offpay_wallet::vault::{
    FaultyFs, KdfParams, MemoryBlobStore, MemoryCounter, MonotonicCounter, RealFs, SealedFileVault,
    SealedVault, SimulatedCrash, Vault, VaultError, VaultFs,
};

const PIN: &[u8] = b"2468";
const SECRET: [u8; 32] = [0x5a; 32];

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

#[test]
fn blob_crash_at_every_commit_replace() {
    host::crash_at_every_commit_replace(&SealedHost);
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

#[test]
fn blob_counter_failure_at_every_commit() {
    host::counter_failure_at_every_commit(&SealedHost);
}

#[test]
fn blob_counter_stuck_blocks_every_commit_until_it_works() {
    host::counter_stuck_blocks_every_commit_until_it_works(&SealedHost);
}
