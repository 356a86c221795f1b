//! An in-memory [`Vault`] with the sealed vault's version/counter semantics,
//! rollback simulation and crash injection.

use core::fmt;

use super::{Loaded, STATE_BYTES_MAX, Vault, VaultError, reconcile};

/// Where an injected commit failure strikes (see
/// [`MemoryVault::fail_commit_at_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CrashPoint {
    /// Before anything is written: the old state stays.
    #[default]
    BeforeWrite,
    /// After the new state was written, before the counter was advanced:
    /// the new state stays (the next `load` advances the counter).
    AfterStateWrite,
    /// After both steps, before `commit` returned: the new state stays, but
    /// the caller saw an error.
    AfterCounter,
}

/// An opaque copy of a [`MemoryVault`]'s stored state (not its counter),
/// taken by [`MemoryVault::snapshot`].
#[derive(Clone, PartialEq, Eq)]
pub struct MemorySnapshot {
    state: Option<Vec<u8>>,
    version: u64,
}

impl fmt::Debug for MemorySnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySnapshot")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl MemorySnapshot {
    /// Version of the snapshotted state.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// In-memory [`Vault`] for tests and the simulator.
///
/// It follows the same protocol as [`SealedFileVault`](super::SealedFileVault):
/// commit (1) stores the state with version = counter + 1, then (2) advances
/// its monotonic counter; `load` reports a state older than the counter as a
/// rollback and completes an interrupted commit.
///
/// - [`snapshot`](MemoryVault::snapshot) / [`restore`](MemoryVault::restore)
///   roll the stored state back but not the counter: a rolled-back device.
/// - `Clone` copies state *and* counter: a cloned device (or an attacker who
///   restores both files of a software vault), which the vault cannot see.
/// - [`fail_commit_at`](MemoryVault::fail_commit_at) injects a crash; the
///   vault then answers [`VaultError::Crashed`] until
///   [`restart`](MemoryVault::restart).
#[derive(Clone)]
pub struct MemoryVault {
    /// "Durable" stored state and its version.
    stored: MemorySnapshot,
    /// "Durable" monotonic counter.
    counter: u64,
    /// Commit calls seen since the last `fail_commit_at*`.
    commits_seen: u64,
    fail: Option<(u64, CrashPoint)>,
    crashed: bool,
}

impl fmt::Debug for MemoryVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryVault")
            .field("version", &self.stored.version)
            .field("counter", &self.counter)
            .field("crashed", &self.crashed)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryVault {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryVault {
    /// An empty vault: nothing committed, version 0, counter 0.
    #[must_use]
    pub fn new() -> Self {
        Self {
            stored: MemorySnapshot {
                state: None,
                version: 0,
            },
            counter: 0,
            commits_seen: 0,
            fail: None,
            crashed: false,
        }
    }

    /// A copy of the stored state (not the counter), to
    /// [`restore`](MemoryVault::restore) later.
    #[must_use]
    pub fn snapshot(&self) -> MemorySnapshot {
        self.stored.clone()
    }

    /// Roll the stored state back to `snapshot`, leaving the counter: the
    /// next [`load`](Vault::load) reports
    /// [`rollback`](super::Loaded::rollback) if the snapshot is older.
    pub fn restore(&mut self, snapshot: &MemorySnapshot) {
        self.stored = snapshot.clone();
    }

    /// Make commit number `n` from now (0 = the next one) fail with
    /// [`VaultError::Crashed`] before anything is written
    /// ([`CrashPoint::BeforeWrite`]).
    pub fn fail_commit_at(&mut self, n: u64) {
        self.fail_commit_at_with(n, CrashPoint::BeforeWrite);
    }

    /// Make commit number `n` from now (0 = the next one) fail with
    /// [`VaultError::Crashed`] at `point`.
    pub fn fail_commit_at_with(&mut self, n: u64, point: CrashPoint) {
        self.commits_seen = 0;
        self.fail = Some((n, point));
    }

    /// Whether an injected crash happened and [`restart`](MemoryVault::restart)
    /// was not called yet.
    #[must_use]
    pub fn is_crashed(&self) -> bool {
        self.crashed
    }

    /// Simulate a process restart after a crash: the stored state and the
    /// counter stay as the crash left them.
    pub fn restart(&mut self) {
        self.crashed = false;
    }

    /// The monotonic counter's value.
    #[must_use]
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Version of the stored state.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.stored.version
    }

    /// Version/counter reconciliation of `load` (and of `commit` after a
    /// rollback): returns the rollback report.
    fn sync(&mut self) -> Result<Option<super::RollbackDetected>, VaultError> {
        let (rollback, advance) = reconcile(self.stored.version, self.counter)?;
        if advance {
            self.counter = self.stored.version;
        }
        Ok(rollback)
    }
}

impl Vault for MemoryVault {
    fn load(&mut self) -> Result<Loaded, VaultError> {
        if self.crashed {
            return Err(VaultError::Crashed);
        }
        let rollback = self.sync()?;
        Ok(Loaded {
            state: self.stored.state.clone(),
            version: self.stored.version,
            rollback,
        })
    }

    fn commit(&mut self, state: &[u8]) -> Result<(), VaultError> {
        if self.crashed {
            return Err(VaultError::Crashed);
        }
        if state.len() > STATE_BYTES_MAX {
            return Err(VaultError::TooLarge);
        }
        self.sync()?;
        // After sync the state version is <= counter (== unless rolled
        // back), so the new version is counter + 1.
        let version = self
            .counter
            .checked_add(1)
            .ok_or(VaultError::Corrupt("version overflow"))?;
        let n = self.commits_seen;
        self.commits_seen = self.commits_seen.saturating_add(1);
        let crash = match self.fail {
            Some((at, point)) if at == n => {
                self.fail = None;
                Some(point)
            }
            _ => None,
        };
        if crash == Some(CrashPoint::BeforeWrite) {
            self.crashed = true;
            return Err(VaultError::Crashed);
        }
        self.stored = MemorySnapshot {
            state: Some(state.to_vec()),
            version,
        };
        if crash == Some(CrashPoint::AfterStateWrite) {
            self.crashed = true;
            return Err(VaultError::Crashed);
        }
        self.counter = version;
        if crash == Some(CrashPoint::AfterCounter) {
            self.crashed = true;
            return Err(VaultError::Crashed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::RollbackDetected;

    #[test]
    fn vault_memory_round_trip() {
        let mut v = MemoryVault::new();
        let l = v.load().unwrap();
        assert_eq!((l.state, l.version, l.rollback), (None, 0, None));
        v.commit(b"one").unwrap();
        v.commit(b"").unwrap();
        let l = v.load().unwrap();
        assert_eq!((l.state, l.version, l.rollback), (Some(vec![]), 2, None));
        assert_eq!(v.counter(), 2);
        assert_eq!(
            v.commit(&vec![0; STATE_BYTES_MAX + 1]),
            Err(VaultError::TooLarge)
        );
        v.commit(&vec![1; STATE_BYTES_MAX]).unwrap();
        assert_eq!(v.load().unwrap().version, 3);
    }

    #[test]
    fn vault_memory_snapshot_restore_is_a_rollback() {
        let mut v = MemoryVault::new();
        v.commit(b"a").unwrap();
        let snap = v.snapshot();
        assert_eq!(snap.version(), 1);
        v.commit(b"b").unwrap();
        v.commit(b"c").unwrap();
        v.restore(&snap);
        let l = v.load().unwrap();
        assert_eq!(l.state.as_deref(), Some(&b"a"[..]));
        assert_eq!(
            l.rollback,
            Some(RollbackDetected {
                state_version: 1,
                counter: 3
            })
        );
        // Still reported on every load until the TA commits (e.g. its lock).
        assert!(v.load().unwrap().rollback.is_some());
        v.commit(b"locked").unwrap();
        let l = v.load().unwrap();
        assert_eq!((l.version, l.rollback), (4, None));
        // A clone is a cloned device: counter and state together.
        let mut clone = v.clone();
        assert_eq!(clone.load().unwrap(), v.load().unwrap());
    }

    #[test]
    fn vault_memory_fail_commit_at() {
        for (point, survives_new) in [
            (CrashPoint::BeforeWrite, false),
            (CrashPoint::AfterStateWrite, true),
            (CrashPoint::AfterCounter, true),
        ] {
            let mut v = MemoryVault::new();
            v.commit(b"old").unwrap();
            v.fail_commit_at_with(1, point);
            v.commit(b"mid").unwrap();
            assert_eq!(v.commit(b"new"), Err(VaultError::Crashed));
            assert!(v.is_crashed());
            assert_eq!(v.load(), Err(VaultError::Crashed));
            assert_eq!(v.commit(b"x"), Err(VaultError::Crashed));
            v.restart();
            let l = v.load().unwrap();
            assert_eq!(l.rollback, None);
            if survives_new {
                assert_eq!((l.state.as_deref(), l.version), (Some(&b"new"[..]), 3));
            } else {
                assert_eq!((l.state.as_deref(), l.version), (Some(&b"mid"[..]), 2));
            }
            assert_eq!(v.counter(), l.version);
            v.commit(b"after").unwrap();
            assert_eq!(v.load().unwrap().version, l.version + 1);
        }
        let mut v = MemoryVault::new();
        v.fail_commit_at(0);
        assert_eq!(v.commit(b"a"), Err(VaultError::Crashed));
        v.restart();
        assert_eq!(v.load().unwrap().state, None);
    }
}
