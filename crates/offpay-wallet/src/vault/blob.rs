//! Host-provided storage under the sealed vault: [`BlobStore`], the
//! directory store the [`SealedFileVault`](super::SealedFileVault) uses, and
//! [`MemoryBlobStore`] (in memory, with crash injection).

use core::fmt;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::VaultError;
use super::fs::{VaultFs, atomic_write};

/// Named blobs with durable, atomic replace (what an app has: its files
/// directory, its `SharedPreferences`, a keychain item ...).
///
/// [`SealedVault`](super::SealedVault) keeps three blobs in it:
/// `state.sealed`, `pin-attempts` and `device-check` (formats in
/// [`sealed`](super::sealed)). The store needs no confidentiality and no
/// integrity of its own: the vault authenticates everything it reads, and a
/// rolled-back `state.sealed` is caught by the separate
/// [`MonotonicCounter`](super::MonotonicCounter).
pub trait BlobStore: fmt::Debug + Send {
    /// The blob `name`, or `None` if absent. Reads at most `limit + 1`
    /// bytes where it can (the caller refuses an oversized blob).
    ///
    /// # Errors
    /// Storage errors (mapped by the implementation, e.g.
    /// [`VaultError::Io`]); [`VaultError::Crashed`] for a simulated dead
    /// process.
    fn read(&mut self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, VaultError>;

    /// Durably and atomically replace blob `name` by `data`: after `Ok` it
    /// survives power loss; after `Err` the old or the new content is there,
    /// never a mix, never nothing.
    ///
    /// # Errors
    /// Storage errors; [`VaultError::Crashed`] for a simulated dead process.
    fn replace(&mut self, name: &str, data: &[u8]) -> Result<(), VaultError>;
}

/// A directory as a [`BlobStore`]: blob `NAME` is the file `dir/NAME`,
/// replaced by [`atomic_write`] (temporary file, fsync, rename, fsync the
/// directory) through a [`VaultFs`].
#[derive(Debug)]
pub struct DirStore {
    pub(super) dir: PathBuf,
    pub(super) fs: Arc<dyn VaultFs>,
}

impl DirStore {
    /// The directory `dir` (which must exist) on the real file system: the
    /// store of a [`super::SealedVault`] with another counter than the
    /// file one (e.g. a TPM counter).
    #[must_use]
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            fs: Arc::new(super::fs::RealFs),
        }
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The operation label of a read error (kept from the file vault's messages).
fn read_op(name: &str) -> &'static str {
    match name {
        "state.sealed" => "read state",
        "pin-attempts" => "read pin attempts",
        "device-check" => "read device check",
        _ => "read",
    }
}

/// Read `path` through `fs`: `None` if there is no file.
pub(super) fn read_optional(
    fs: &dyn VaultFs,
    path: &Path,
    limit: usize,
    op: &'static str,
) -> Result<Option<Vec<u8>>, VaultError> {
    match fs.read_file(path, limit) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(VaultError::io(op)(e)),
    }
}

impl BlobStore for DirStore {
    fn read(&mut self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, VaultError> {
        read_optional(self.fs.as_ref(), &self.path(name), limit, read_op(name))
    }

    fn replace(&mut self, name: &str, data: &[u8]) -> Result<(), VaultError> {
        atomic_write(self.fs.as_ref(), &self.path(name), data)
    }
}

/// Where an injected [`MemoryBlobStore`] failure strikes (see
/// [`MemoryBlobStore::fail_replace_at`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlobCrashPoint {
    /// The replace fails before anything changed: the old content stays.
    #[default]
    BeforeReplace,
    /// The new content is in place, but the replace reports the crash (the
    /// process died before it could return).
    AfterReplace,
}

/// An in-memory [`BlobStore`] (tests, simulator, the FFI's benchmark
/// baseline) with crash injection.
///
/// Clones share the contents and the crash state: a test keeps a clone to
/// inspect or edit the blobs ([`get`](MemoryBlobStore::get),
/// [`put`](MemoryBlobStore::put): the attacker's or a backup's view, never
/// failing) and to reopen the vault after the crash, after
/// [`restart`](MemoryBlobStore::restart).
///
/// [`fail_replace_at`](MemoryBlobStore::fail_replace_at)`(n, point)` makes
/// replace number `n` (0-based, counted from that call) fail with
/// [`VaultError::Crashed`] at `point`, and every `read` and `replace` after
/// it fail the same way until `restart`: the simulated process is dead.
#[derive(Clone, Default)]
pub struct MemoryBlobStore {
    inner: Arc<Mutex<MemoryBlobs>>,
}

#[derive(Default)]
struct MemoryBlobs {
    blobs: BTreeMap<String, Vec<u8>>,
    /// Replace calls since creation or the last `fail_replace_at`.
    replaces: u64,
    fail: Option<(u64, BlobCrashPoint)>,
    crashed: bool,
}

impl fmt::Debug for MemoryBlobStore {
    // Names and lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.lock();
        let blobs: BTreeMap<&str, usize> =
            s.blobs.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        f.debug_struct("MemoryBlobStore")
            .field("blob_lens", &blobs)
            .field("replaces", &s.replaces)
            .field("crashed", &s.crashed)
            .finish()
    }
}

impl MemoryBlobStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryBlobs> {
        // The data is a map of byte strings, consistent after any panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Make replace number `n` from now (0 = the next one) fail with
    /// [`VaultError::Crashed`] at `point`; every call after it fails too
    /// until [`restart`](MemoryBlobStore::restart). Resets
    /// [`replaces`](MemoryBlobStore::replaces). `n = u64::MAX` disarms.
    pub fn fail_replace_at(&self, n: u64, point: BlobCrashPoint) {
        let mut s = self.lock();
        s.replaces = 0;
        s.fail = Some((n, point));
    }

    /// Replace calls since creation or the last
    /// [`fail_replace_at`](MemoryBlobStore::fail_replace_at) (the failing
    /// one included, the refused ones after it not).
    #[must_use]
    pub fn replaces(&self) -> u64 {
        self.lock().replaces
    }

    /// Whether an injected crash fired and
    /// [`restart`](MemoryBlobStore::restart) was not called yet.
    #[must_use]
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Simulate a process restart after a crash: the blobs stay as the
    /// crash left them, calls work again.
    pub fn restart(&self) {
        self.lock().crashed = false;
    }

    /// The blob `name` (a copy), whatever the crash state.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().blobs.get(name).cloned()
    }

    /// Set blob `name` to `data` behind the vault's back (an attacker, a
    /// restored backup); not counted, never failing.
    pub fn put(&self, name: &str, data: &[u8]) {
        self.lock().blobs.insert(name.to_owned(), data.to_vec());
    }

    /// Remove blob `name` behind the vault's back; returns it.
    pub fn remove(&self, name: &str) -> Option<Vec<u8>> {
        self.lock().blobs.remove(name)
    }

    /// The names of the blobs present.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        self.lock().blobs.keys().cloned().collect()
    }
}

impl BlobStore for MemoryBlobStore {
    fn read(&mut self, name: &str, limit: usize) -> Result<Option<Vec<u8>>, VaultError> {
        let s = self.lock();
        if s.crashed {
            return Err(VaultError::Crashed);
        }
        Ok(s.blobs.get(name).map(|data| {
            let n = data.len().min(limit.saturating_add(1));
            data.get(..n).unwrap_or_default().to_vec()
        }))
    }

    fn replace(&mut self, name: &str, data: &[u8]) -> Result<(), VaultError> {
        let mut s = self.lock();
        if s.crashed {
            return Err(VaultError::Crashed);
        }
        let n = s.replaces;
        s.replaces = s.replaces.saturating_add(1);
        let crash = match s.fail {
            Some((at, point)) if at == n => {
                s.fail = None;
                Some(point)
            }
            _ => None,
        };
        if crash == Some(BlobCrashPoint::BeforeReplace) {
            s.crashed = true;
            return Err(VaultError::Crashed);
        }
        s.blobs.insert(name.to_owned(), data.to_vec());
        if crash == Some(BlobCrashPoint::AfterReplace) {
            s.crashed = true;
            return Err(VaultError::Crashed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_memory_blob_store_crash_points() {
        for (point, applied) in [
            (BlobCrashPoint::BeforeReplace, false),
            (BlobCrashPoint::AfterReplace, true),
        ] {
            let store = MemoryBlobStore::new();
            let mut handle = store.clone();
            handle.replace("a", b"old").unwrap();
            store.fail_replace_at(1, point);
            handle.replace("b", b"x").unwrap();
            assert_eq!(handle.replace("a", b"new"), Err(VaultError::Crashed));
            assert!(store.is_crashed());
            // Dead: reads and replaces fail, the attacker's view does not.
            assert_eq!(handle.read("a", 10), Err(VaultError::Crashed));
            assert_eq!(handle.replace("c", b"y"), Err(VaultError::Crashed));
            assert_eq!(store.replaces(), 2);
            let expect: &[u8] = if applied { b"new" } else { b"old" };
            assert_eq!(store.get("a").as_deref(), Some(expect));
            assert_eq!(store.get("c"), None);
            store.restart();
            assert_eq!(handle.read("a", 10).unwrap().as_deref(), Some(expect));
            handle.replace("c", b"y").unwrap();
            assert_eq!(store.names(), ["a", "b", "c"]);
        }
    }

    #[test]
    fn vault_memory_blob_store_read_limit() {
        let mut s = MemoryBlobStore::new();
        s.put("big", &[7; 100]);
        assert_eq!(s.read("big", 10).unwrap().map(|v| v.len()), Some(11));
        assert_eq!(s.read("big", 100).unwrap().map(|v| v.len()), Some(100));
        assert_eq!(
            s.read("big", usize::MAX).unwrap().map(|v| v.len()),
            Some(100)
        );
        assert_eq!(s.read("none", 10), Ok(None));
        assert_eq!(s.remove("big").map(|v| v.len()), Some(100));
        assert_eq!(s.read("big", 10), Ok(None));
    }
}
