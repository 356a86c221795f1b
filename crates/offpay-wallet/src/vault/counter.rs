//! Monotonic counters kept apart from the sealed state (anti-rollback).

use core::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::VaultError;
use super::fs::{RealFs, VaultFs, atomic_write};

/// A counter that never decreases, kept outside the sealed state.
///
/// On a real device this is a TPM 2.0 NV counter, an eMMC RPMB block, or
/// what the platform keystore offers (the SDK's host counter); the software
/// fallback is [`FileCounter`]. `Send`: a wallet moves between threads
/// (behind the SDK's lock).
pub trait MonotonicCounter: Send {
    /// The current value.
    ///
    /// # Errors
    /// I/O or storage errors; [`VaultError::CounterRegressed`] if the
    /// backing store was seen to go backwards.
    fn read(&mut self) -> Result<u64, VaultError>;

    /// Durably raise the counter to `v`. `v` equal to the current value is a
    /// no-op.
    ///
    /// # Errors
    /// [`VaultError::CounterRegressed`] if `v` is below the current value
    /// (nothing is written); I/O or storage errors.
    fn advance_to(&mut self, v: u64) -> Result<(), VaultError>;
}

/// Magic of the counter file.
const COUNTER_MAGIC: &[u8; 4] = b"OFPC";
/// Counter file length: magic + u64 little-endian.
const COUNTER_FILE_LEN: usize = 12;

/// A [`MonotonicCounter`] in its own file, written atomically (write
/// `NAME.tmp`, fsync, rename, fsync the directory).
///
/// File format (12 bytes): `b"OFPC"`, then the value as u64 little-endian.
///
/// **Limit**: a file is not a hardware counter. An attacker who owns the OS
/// can restore an old counter file together with the matching old sealed
/// state, and that pair looks consistent. The counter only stops a rollback
/// of the state file alone (and, within one process, the handle remembers
/// the highest value it saw and refuses a counter file that went below it).
/// The backend checkpoint and the hash chain are the second line: a
/// rolled-back wallet that spends again creates a fork that reconciliation
/// proves. On a real device use a TPM NV counter or RPMB instead.
pub struct FileCounter {
    path: PathBuf,
    fs: Arc<dyn VaultFs>,
    /// Highest value seen or written through this handle.
    floor: u64,
}

impl fmt::Debug for FileCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileCounter")
            .field("path", &self.path)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl FileCounter {
    /// Create a new counter file at `path` with value 0.
    ///
    /// # Errors
    /// [`VaultError::AlreadyExists`] if a file is there; I/O errors.
    pub fn create(path: &Path) -> Result<Self, VaultError> {
        Self::create_with_fs(path, Arc::new(RealFs))
    }

    /// [`FileCounter::create`] through the given file system.
    ///
    /// # Errors
    /// As [`FileCounter::create`].
    pub fn create_with_fs(path: &Path, fs: Arc<dyn VaultFs>) -> Result<Self, VaultError> {
        match fs.read_file(path, COUNTER_FILE_LEN) {
            Ok(_) => return Err(VaultError::AlreadyExists),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(VaultError::io("read counter")(e)),
        }
        Self::init_with_fs(path, fs)
    }

    /// Write a counter file with value 0 at `path`, replacing any file
    /// there (vault creation only).
    pub(crate) fn init_with_fs(path: &Path, fs: Arc<dyn VaultFs>) -> Result<Self, VaultError> {
        atomic_write(fs.as_ref(), path, &encode(0))?;
        Ok(Self {
            path: path.to_path_buf(),
            fs,
            floor: 0,
        })
    }

    /// Open the existing counter file at `path`.
    ///
    /// # Errors
    /// [`VaultError::NotFound`] if there is no file,
    /// [`VaultError::Corrupt`] if it is malformed; I/O errors.
    pub fn open(path: &Path) -> Result<Self, VaultError> {
        Self::open_with_fs(path, Arc::new(RealFs))
    }

    /// [`FileCounter::open`] through the given file system.
    ///
    /// # Errors
    /// As [`FileCounter::open`].
    pub fn open_with_fs(path: &Path, fs: Arc<dyn VaultFs>) -> Result<Self, VaultError> {
        let mut c = Self::unchecked(path, fs, 0);
        c.read()?;
        Ok(c)
    }

    /// A handle on `path` without reading it yet; `floor` is the lowest
    /// value it accepts.
    pub(crate) fn unchecked(path: &Path, fs: Arc<dyn VaultFs>, floor: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            fs,
            floor,
        }
    }

    /// The same counter accessed through another file system (keeps the
    /// remembered floor).
    pub(crate) fn rebind(&self, fs: Arc<dyn VaultFs>) -> Self {
        Self::unchecked(&self.path, fs, self.floor)
    }

    /// The counter file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode(v: u64) -> [u8; COUNTER_FILE_LEN] {
    let mut out = [0u8; COUNTER_FILE_LEN];
    let (magic, value) = out.split_at_mut(4);
    magic.copy_from_slice(COUNTER_MAGIC);
    value.copy_from_slice(&v.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<u64, VaultError> {
    let malformed = VaultError::Corrupt("counter file malformed");
    let (magic, value) = bytes.split_at_checked(4).ok_or(malformed)?;
    if magic != COUNTER_MAGIC {
        return Err(malformed);
    }
    let value: [u8; 8] = value.try_into().map_err(|_| malformed)?;
    Ok(u64::from_le_bytes(value))
}

impl MonotonicCounter for FileCounter {
    fn read(&mut self) -> Result<u64, VaultError> {
        let bytes = self
            .fs
            .read_file(&self.path, COUNTER_FILE_LEN)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    VaultError::NotFound
                } else {
                    VaultError::io("read counter")(e)
                }
            })?;
        let v = decode(&bytes)?;
        if v < self.floor {
            // The file was replaced by an older copy while we were running.
            return Err(VaultError::CounterRegressed);
        }
        self.floor = v;
        Ok(v)
    }

    fn advance_to(&mut self, v: u64) -> Result<(), VaultError> {
        let current = self.read()?;
        if v < current {
            return Err(VaultError::CounterRegressed);
        }
        if v == current {
            return Ok(());
        }
        atomic_write(self.fs.as_ref(), &self.path, &encode(v))?;
        self.floor = v;
        Ok(())
    }
}

/// An in-memory [`MonotonicCounter`] (tests, simulator, the FFI's benchmark
/// baseline).
///
/// Clones share the value: one counter, several handles, so a test keeps a
/// clone to reopen a vault after its handle is gone (a restarted process).
/// An independent copy (a cloned device) is
/// `MemoryCounter::new(c.value())`.
#[derive(Clone, Debug, Default)]
pub struct MemoryCounter {
    value: Arc<AtomicU64>,
}

impl MemoryCounter {
    /// A counter at `value`.
    #[must_use]
    pub fn new(value: u64) -> Self {
        Self {
            value: Arc::new(AtomicU64::new(value)),
        }
    }

    /// The current value.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.value.load(Ordering::SeqCst)
    }
}

impl MonotonicCounter for MemoryCounter {
    fn read(&mut self) -> Result<u64, VaultError> {
        Ok(self.value())
    }

    fn advance_to(&mut self, v: u64) -> Result<(), VaultError> {
        // Never below the current value, even with several handles.
        self.value
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                (v >= cur).then_some(v)
            })
            .map(|_| ())
            .map_err(|_| VaultError::CounterRegressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_counter_codec_rejects_garbage() {
        assert_eq!(
            decode(&encode(0x0102_0304_0506_0708)),
            Ok(0x0102_0304_0506_0708)
        );
        for len in 0..COUNTER_FILE_LEN {
            assert!(decode(&encode(7)[..len]).is_err());
        }
        let mut long = encode(7).to_vec();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut bad = encode(7);
        bad[0] ^= 1;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn vault_memory_counter_never_decreases() {
        let mut c = MemoryCounter::new(3);
        assert_eq!(c.advance_to(2), Err(VaultError::CounterRegressed));
        assert_eq!(c.advance_to(3), Ok(()));
        assert_eq!(c.advance_to(9), Ok(()));
        assert_eq!(c.read(), Ok(9));
        // Clones are handles on the same counter.
        let mut other = c.clone();
        other.advance_to(11).unwrap();
        assert_eq!((c.read(), c.value()), (Ok(11), 11));
        assert_eq!(c.advance_to(10), Err(VaultError::CounterRegressed));
        assert_eq!(MemoryCounter::new(c.value()).value(), 11);
        assert_eq!(MemoryCounter::default().value(), 0);
    }
}
