//! A small blocking connection pool (bounded; waits for a free connection).

use std::sync::{Condvar, Mutex};

use offpay_issuer::store::StoreError;

type Connect<C> = Box<dyn Fn() -> Result<C, StoreError> + Send + Sync>;

struct Slots<C> {
    idle: Vec<C>,
    open: usize,
}

/// Up to `max` connections, opened on demand.
pub(crate) struct Pool<C> {
    slots: Mutex<Slots<C>>,
    freed: Condvar,
    max: usize,
    connect: Connect<C>,
}

impl<C> Pool<C> {
    pub(crate) fn new(max: usize, connect: Connect<C>) -> Pool<C> {
        Pool {
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
            connect,
        }
    }

    pub(crate) fn get(&self) -> Result<Pooled<'_, C>, StoreError> {
        let poisoned = |_| StoreError::Database("connection pool lock poisoned".into());
        let mut slots = self.slots.lock().map_err(poisoned)?;
        loop {
            if let Some(c) = slots.idle.pop() {
                return Ok(Pooled {
                    pool: self,
                    conn: Some(c),
                    broken: false,
                });
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                return match (self.connect)() {
                    Ok(c) => Ok(Pooled {
                        pool: self,
                        conn: Some(c),
                        broken: false,
                    }),
                    Err(e) => {
                        if let Ok(mut s) = self.slots.lock() {
                            s.open -= 1;
                        }
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            slots = self.freed.wait(slots).map_err(poisoned)?;
        }
    }
}

/// A connection on loan; returned to the pool on drop (or closed if broken).
pub(crate) struct Pooled<'a, C> {
    pool: &'a Pool<C>,
    conn: Option<C>,
    pub(crate) broken: bool,
}

impl<C> Pooled<'_, C> {
    #[expect(clippy::expect_used)] // lint-exception: `conn` is Some from checkout until drop, by construction
    pub(crate) fn conn(&mut self) -> &mut C {
        // Invariant: `conn` is Some until drop.
        self.conn
            .as_mut()
            .expect("pooled connection present until drop")
    }
}

impl<C> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let (Some(c), Ok(mut slots)) = (self.conn.take(), self.pool.slots.lock()) {
            if self.broken {
                slots.open -= 1;
                drop(c);
            } else {
                slots.idle.push(c);
            }
        }
        self.pool.freed.notify_one();
    }
}
