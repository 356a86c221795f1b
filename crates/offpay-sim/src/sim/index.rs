//! Typed indices into the simulator's tables: a device index cannot index
//! customers, a message index cannot index tracked entries. Each index is a
//! `u32` newtype; `Table<I, T>` is a `Vec<T>` indexed by `I` only.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Index, IndexMut};

/// An index type of one table.
pub(super) trait Idx: Copy {
    fn new(i: usize) -> Self;
    fn get(self) -> usize;
}

macro_rules! index_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(super) struct $name(u32);

        impl Idx for $name {
            fn new(i: usize) -> Self {
                Self(u32::try_from(i).unwrap_or_else(|_| {
                    unreachable!("{} {i} does not fit in u32", stringify!($name))
                }))
            }

            fn get(self) -> usize {
                self.0 as usize
            }
        }

        /// The bare number, as the report and the seeded streams always printed it.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

index_type!(
    /// A customer (`Sim::customers`).
    CustomerIdx
);
index_type!(
    /// A device (`Sim::devices`).
    DeviceIdx
);
index_type!(
    /// A delayed message (`Sim::msgs`).
    MsgIdx
);
index_type!(
    /// A tracked attacker entry (`Sim::tracked`).
    TrackedIdx
);
index_type!(
    /// A payment its payee did not accept (`Sim::undelivered`).
    UndeliveredIdx
);
index_type!(
    /// A vault copy kept by a rollback attacker (`Sim::saved`).
    SavedIdx
);
index_type!(
    /// An issuer of the run (`Sim::nodes`).
    IssuerIdx
);

impl CustomerIdx {
    /// The index as a number (for the report).
    pub(super) fn as_u64(self) -> u64 {
        u64::from(self.0)
    }
}

impl DeviceIdx {
    /// No device yet (a customer between its creation and its first provisioning).
    pub(super) const NONE: DeviceIdx = DeviceIdx(u32::MAX);
}

/// A `Vec<T>` that only `I` indexes.
pub(super) struct Table<I, T> {
    v: Vec<T>,
    _i: PhantomData<fn(I) -> I>,
}

impl<I: Idx, T> Table<I, T> {
    pub(super) fn new() -> Self {
        Self::with_capacity(0)
    }

    pub(super) fn with_capacity(n: usize) -> Self {
        Self {
            v: Vec::with_capacity(n),
            _i: PhantomData,
        }
    }

    /// Append `t` and return its index.
    pub(super) fn push(&mut self, t: T) -> I {
        let i = I::new(self.v.len());
        self.v.push(t);
        i
    }

    pub(super) fn len(&self) -> usize {
        self.v.len()
    }

    /// The index the next `push` returns.
    pub(super) fn next_idx(&self) -> I {
        I::new(self.v.len())
    }

    /// Every element, in index order.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.v.iter()
    }

    /// Every index, in order (not borrowing the table).
    pub(super) fn indices(&self) -> std::iter::Map<std::ops::Range<usize>, fn(usize) -> I> {
        (0..self.v.len()).map(I::new as fn(usize) -> I)
    }
}

impl<I: Idx, T> Index<I> for Table<I, T> {
    type Output = T;

    fn index(&self, i: I) -> &T {
        &self.v[i.get()]
    }
}

impl<I: Idx, T> IndexMut<I> for Table<I, T> {
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.v[i.get()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_hands_out_its_indices_in_order() {
        let mut t: Table<DeviceIdx, &str> = Table::new();
        assert_eq!(t.next_idx(), DeviceIdx::new(0));
        let a = t.push("a");
        let b = t.push("b");
        assert_eq!((a.get(), b.get()), (0, 1));
        assert_eq!(t[b], "b");
        t[a] = "z";
        assert_eq!(t[a], "z");
        assert_eq!(t.indices().collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(format!("device {b}"), "device 1");
        assert_eq!(CustomerIdx::new(3).as_u64(), 3);
    }
}
