//! File-system access of the vault, behind [`VaultFs`] for fault injection,
//! and the atomic durable write used for every vault file.

use core::fmt;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::VaultError;

/// The file operations the vault needs. Paths are full paths.
///
/// *Mutating* operations are [`write_file`](VaultFs::write_file),
/// [`sync_file`](VaultFs::sync_file), [`rename`](VaultFs::rename),
/// [`sync_dir`](VaultFs::sync_dir) and [`remove`](VaultFs::remove); fault
/// injectors ([`FaultyFs`]) count and fail those.
pub trait VaultFs: fmt::Debug + Send + Sync {
    /// Create or truncate `path` and write `data` to it (not yet durable).
    ///
    /// # Errors
    /// Any I/O error.
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Make the content of the file at `path` durable (`fsync`).
    ///
    /// # Errors
    /// Any I/O error.
    fn sync_file(&self, path: &Path) -> io::Result<()>;
    /// Atomically rename `from` over `to` (replacing `to`).
    ///
    /// # Errors
    /// Any I/O error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Make the directory entries of `dir` durable (`fsync` on the
    /// directory), so that a completed rename survives power loss.
    ///
    /// # Errors
    /// Any I/O error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Read the file at `path`, but at most `limit + 1` bytes, so that the
    /// caller can tell an oversized (attacker-grown) file without reading
    /// it whole.
    ///
    /// # Errors
    /// Any I/O error; kind [`io::ErrorKind::NotFound`] if there is no file.
    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>>;
    /// Remove the file at `path`.
    ///
    /// # Errors
    /// Any I/O error.
    fn remove(&self, path: &Path) -> io::Result<()>;
}

/// The real file system (`std::fs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl VaultFs for RealFs {
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        f.write_all(data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        // fsync applies to the file (inode), whichever descriptor is used.
        OpenOptions::new().write(true).open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Windows cannot open a directory for fsync; NTFS journals the
            // rename itself.
            let _ = dir;
            Ok(())
        }
    }

    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>> {
        let f = File::open(path)?;
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        let mut out = Vec::new();
        f.take(cap).read_to_end(&mut out)?;
        Ok(out)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// The error payload of an I/O error injected by a fault injector: the
/// simulated process died at this operation. The vault maps it to
/// [`VaultError::Crashed`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimulatedCrash;

impl fmt::Display for SimulatedCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("simulated crash")
    }
}

impl std::error::Error for SimulatedCrash {}

impl SimulatedCrash {
    /// An [`io::Error`] carrying this payload.
    #[must_use]
    pub fn io_error() -> io::Error {
        io::Error::other(Self)
    }
}

/// Fault injector over [`RealFs`]: counts the *mutating* operations
/// (write, sync, rename, `sync_dir`, remove) from 0 and makes operation
/// number `fail_at` fail, and every operation after it (reads included):
/// the simulated process has crashed. Whatever the real file system holds at
/// that moment is what a restarted process finds; reopen the directory with
/// [`RealFs`] to continue.
///
/// With [`torn`](FaultyFs::torn), a failing `write_file` first writes the
/// first half of its data (a torn write of the temporary file).
///
/// Clones share their counters, so a test keeps a clone to inspect
/// [`ops`](FaultyFs::ops) and [`fired`](FaultyFs::fired) after handing one
/// to the vault.
#[derive(Clone, Debug)]
pub struct FaultyFs {
    inner: Arc<FaultyState>,
}

#[derive(Debug)]
struct FaultyState {
    fail_at: usize,
    torn: AtomicBool,
    ops: AtomicUsize,
    crashed: AtomicBool,
}

impl FaultyFs {
    /// A [`RealFs`] whose mutating operation number `fail_at` (0-based)
    /// fails.
    #[must_use]
    pub fn new(fail_at: usize) -> Self {
        Self {
            inner: Arc::new(FaultyState {
                fail_at,
                torn: AtomicBool::new(false),
                ops: AtomicUsize::new(0),
                crashed: AtomicBool::new(false),
            }),
        }
    }

    /// Also simulate a torn write: the failing `write_file` leaves a
    /// partially written file.
    #[must_use]
    pub fn torn(self, torn: bool) -> Self {
        self.inner.torn.store(torn, Ordering::SeqCst);
        self
    }

    /// Number of mutating operations attempted so far (the failing one
    /// included, later ones not).
    #[must_use]
    pub fn ops(&self) -> usize {
        self.inner.ops.load(Ordering::SeqCst)
    }

    /// Whether the injected failure has fired (the process is "dead").
    #[must_use]
    pub fn fired(&self) -> bool {
        self.inner.crashed.load(Ordering::SeqCst)
    }

    /// `Ok(true)` if this mutating operation is the one that fails,
    /// `Err` if the process already crashed, `Ok(false)` to proceed.
    fn step(&self) -> io::Result<bool> {
        if self.fired() {
            return Err(SimulatedCrash::io_error());
        }
        let n = self.inner.ops.fetch_add(1, Ordering::SeqCst);
        if n == self.inner.fail_at {
            self.inner.crashed.store(true, Ordering::SeqCst);
            return Ok(true);
        }
        Ok(false)
    }
}

impl VaultFs for FaultyFs {
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        if self.step()? {
            if self.inner.torn.load(Ordering::SeqCst) {
                let half = data.get(..data.len() / 2).unwrap_or_default();
                // Best effort: the "crash" is reported either way.
                let _ = RealFs.write_file(path, half);
            }
            return Err(SimulatedCrash::io_error());
        }
        RealFs.write_file(path, data)
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        if self.step()? {
            return Err(SimulatedCrash::io_error());
        }
        RealFs.sync_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.step()? {
            return Err(SimulatedCrash::io_error());
        }
        RealFs.rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.step()? {
            return Err(SimulatedCrash::io_error());
        }
        RealFs.sync_dir(dir)
    }

    fn read_file(&self, path: &Path, limit: usize) -> io::Result<Vec<u8>> {
        if self.fired() {
            return Err(SimulatedCrash::io_error());
        }
        RealFs.read_file(path, limit)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        if self.step()? {
            return Err(SimulatedCrash::io_error());
        }
        RealFs.remove(path)
    }
}

/// Temporary files written by this process so far (part of their names).
static TMP_WRITES: AtomicU64 = AtomicU64::new(0);

/// `path` with `.PID.N.tmp` appended to its file name: unique to this
/// process and this write, so two writers (threads or processes) never
/// rename each other's half-written file.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let n = TMP_WRITES.fetch_add(1, Ordering::Relaxed);
    let mut s = OsString::from(path.as_os_str());
    s.push(format!(".{}.{n}.tmp", std::process::id()));
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Atomic durable replacement of the file at `path` by `data`: write
/// a uniquely named `path.PID.N.tmp`, fsync it, rename it over `path`, fsync the directory.
/// A crash at any point leaves either the old or the new complete file at
/// `path` (a stale temporary file is harmless: nothing reads it). A failed
/// write removes its temporary file (best effort).
pub(crate) fn atomic_write(fs: &dyn VaultFs, path: &Path, data: &[u8]) -> Result<(), VaultError> {
    let tmp = tmp_path(path);
    let written = fs
        .write_file(&tmp, data)
        .map_err(VaultError::io("write"))
        .and_then(|()| fs.sync_file(&tmp).map_err(VaultError::io("fsync")))
        .and_then(|()| fs.rename(&tmp, path).map_err(VaultError::io("rename")));
    if let Err(e) = written {
        if e != VaultError::Crashed {
            // Best effort: the error is what matters.
            let _ = fs.remove(&tmp);
        }
        return Err(e);
    }
    fs.sync_dir(parent_dir(path))
        .map_err(VaultError::io("fsync dir"))
}
