//! The slot table as the checker reads it: bounds-checked indices.

use core::mem::size_of;

use super::{Check, fail};
use crate::fiber::Slot;
use crate::raw::Core;

/// The slot table, read through the core's raw pointers.
/// Built only by `check`, whose contract makes every read through it sound.
pub(super) struct Table<'a> {
    pub(super) core: &'a Core,
}

impl Table<'_> {
    /// Index of `p` if it points exactly at one of the table's slots (pure
    /// address arithmetic: a wild pointer is never dereferenced).
    pub(super) fn index(&self, p: *const Slot) -> Option<usize> {
        let (base, a) = (self.core.slots as usize, p as usize);
        let off = a.checked_sub(base)?;
        let i = off / size_of::<Slot>();
        (off % size_of::<Slot>() == 0 && i < self.core.cap).then_some(i)
    }

    pub(super) fn slot(&self, i: usize) -> &Slot {
        debug_assert!(i < self.core.cap);
        // SAFETY: i < cap and the table has cap initialised slots (the
        // caller of `check` guarantees a bound core and exclusive access).
        unsafe { &*self.core.slots.add(i) }
    }

    /// The index of `p`, or an error naming the rule `what` if it is not a slot.
    pub(super) fn index_or(&self, p: *const Slot, what: &'static str) -> Check<usize> {
        self.index(p).map_or_else(|| fail(what, None), Ok)
    }
}
