//! Group commit: concurrent syncs share one transaction, and so one commit
//! (one WAL fsync), on a store with a single writer (SQLite).
//!
//! Every caller queues its job. The first caller to find no leader becomes
//! the leader: it takes every job waiting (up to [`GROUP_JOBS_MAX`]), runs
//! them, posts each result to its caller and steps down; the callers whose
//! jobs arrived meanwhile elect the next leader among themselves. No thread
//! is spawned and nothing waits on a timer: a lone caller runs its own job at
//! once, and a group forms only out of callers that would have queued for the
//! write lock anyway.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::{Invariant, IssuerError};

/// Most jobs in one group (one transaction).
pub(crate) const GROUP_JOBS_MAX: usize = 64;

struct Queue<J, T> {
    pending: Vec<(u64, J)>,
    results: HashMap<u64, Result<T, IssuerError>>,
    next_id: u64,
    leader: bool,
}

/// A group-commit queue of jobs `J` answering `T`.
pub(crate) struct GroupCommit<J, T> {
    queue: Mutex<Queue<J, T>>,
    done: Condvar,
}

impl<J, T> GroupCommit<J, T> {
    pub(crate) fn new() -> Self {
        GroupCommit {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                results: HashMap::new(),
                next_id: 0,
                leader: false,
            }),
            done: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<J, T>> {
        // The lock is never held while jobs run, so a poisoned queue is consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `job` and return its result. `run` gets a group of jobs in
    /// arrival order and must return one result per job, in the same order.
    pub(crate) fn submit(
        &self,
        job: J,
        run: impl Fn(Vec<J>) -> Vec<Result<T, IssuerError>>,
    ) -> Result<T, IssuerError> {
        let mut q = self.lock();
        let id = q.next_id;
        q.next_id += 1;
        q.pending.push((id, job));
        loop {
            if let Some(r) = q.results.remove(&id) {
                return r;
            }
            if q.leader {
                q = self.done.wait(q).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: take a group (our own job is in it, or already answered).
            q.leader = true;
            let n = q.pending.len().min(GROUP_JOBS_MAX);
            let (ids, jobs): (Vec<u64>, Vec<J>) = q.pending.drain(..n).unzip();
            drop(q);
            let mut guard = Leader {
                group: self,
                ids,
                own: id,
                posted: false,
            };
            let results = run(jobs);
            // Written: `run` answers every job of its group (checked again in post).
            debug_assert_eq!(results.len(), guard.ids.len(), "one result per job");
            guard.post(results);
            q = self.lock();
        }
    }
}

/// The leader's duty to answer its group and step down, even if `run` panics.
struct Leader<'a, J, T> {
    group: &'a GroupCommit<J, T>,
    ids: Vec<u64>,
    /// The leader's own job: if `run` panics, its caller unwinds and never
    /// collects an answer, so none is posted for it.
    own: u64,
    posted: bool,
}

impl<J, T> Leader<'_, J, T> {
    fn post(&mut self, results: Vec<Result<T, IssuerError>>) {
        // Read: one result per job, each job answered once.
        debug_assert_eq!(results.len(), self.ids.len(), "one result per job");
        let mut q = self.group.lock();
        let mut results = results.into_iter();
        for id in self.ids.drain(..) {
            let r = results
                .next()
                .unwrap_or_else(|| Err(IssuerError::Invariant(Invariant::GroupNoResult)));
            let previous = q.results.insert(id, r);
            debug_assert!(previous.is_none(), "a job answered twice");
        }
        q.leader = false;
        self.posted = true;
        drop(q);
        self.group.done.notify_all();
    }
}

impl<J, T> Drop for Leader<'_, J, T> {
    fn drop(&mut self) {
        if !self.posted {
            let own = self.own;
            self.ids.retain(|id| *id != own);
            let n = self.ids.len();
            self.post(
                (0..n)
                    .map(|_| Err(IssuerError::Invariant(Invariant::GroupLeaderPanicked)))
                    .collect(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_job_gets_its_own_result_and_groups_form() {
        let g: GroupCommit<u64, u64> = GroupCommit::new();
        let groups = AtomicUsize::new(0);
        let largest = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let (g, groups, largest) = (&g, &groups, &largest);
                s.spawn(move || {
                    for k in 0..200u64 {
                        let job = t * 1000 + k;
                        let r = g.submit(job, |jobs| {
                            groups.fetch_add(1, Ordering::Relaxed);
                            largest.fetch_max(jobs.len(), Ordering::Relaxed);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            jobs.into_iter()
                                .map(|j| {
                                    if j % 7 == 0 {
                                        Err(IssuerError::UnknownWallet)
                                    } else {
                                        Ok(j * 2)
                                    }
                                })
                                .collect()
                        });
                        if job % 7 == 0 {
                            assert!(matches!(r, Err(IssuerError::UnknownWallet)));
                        } else {
                            assert_eq!(r.unwrap(), job * 2);
                        }
                    }
                });
            }
        });
        let n = groups.load(Ordering::Relaxed);
        assert!(n < 1600, "jobs were grouped: {n} groups for 1600 jobs");
        assert!(largest.load(Ordering::Relaxed) <= GROUP_JOBS_MAX);
        assert!(g.lock().results.is_empty() && g.lock().pending.is_empty());
    }

    /// The paired assertion: a group run that loses a job's result is caught
    /// where it happens (debug builds), not only by the caller's error.
    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "one result per job")]
    fn a_run_that_loses_a_result_is_caught() {
        let g: GroupCommit<u64, u64> = GroupCommit::new();
        let _ = g.submit(1, |_| Vec::new());
    }

    #[test]
    fn a_panicking_leader_answers_its_group_and_steps_down() {
        let g: GroupCommit<u64, u64> = GroupCommit::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.submit(1, |_| panic!("boom"))
        }));
        assert!(r.is_err());
        // The queue is usable: the next job runs, and nothing was left behind.
        assert_eq!(g.submit(2, |j| j.into_iter().map(Ok).collect()).unwrap(), 2);
        assert!(g.lock().results.is_empty() && g.lock().pending.is_empty());
    }
}
