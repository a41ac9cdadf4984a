//! The free list and the zombie list.

use super::{Check, Table, fail};
use crate::fiber::State;

/// The free list holds the `free` Free slots, the zombie list only finished
/// detached fibers; slots in use match the runtime's count.
pub(super) fn free_and_zombie_lists(t: &Table<'_>, free: usize) -> Check {
    let (c, cap) = (t.core, t.core.cap);
    let mut n = 0usize;
    let mut p = c.free;
    while !p.is_null() {
        let i = t.index_or(p, "free list link points outside the slot table")?;
        let s = t.slot(i);
        if s.state != State::Free {
            return fail("free list holds a slot that is not Free", Some(i));
        }
        n += 1;
        if n > free {
            return fail("free list is longer than the Free slots (a cycle)", Some(i));
        }
        p = s.next;
    }
    if n != free {
        return fail("Free slots missing from the free list", None);
    }
    if cap - free != c.used() {
        return fail("slots in use (spawns - frees) differ from the non-Free slots", None);
    }
    let mut n = 0usize;
    let mut p = c.zombies;
    while !p.is_null() {
        let i = t.index_or(p, "zombie list link points outside the slot table")?;
        let s = t.slot(i);
        if s.state != State::Finished {
            return fail("zombie list holds a slot that is not Finished", Some(i));
        }
        // SAFETY: a finished slot's header is valid until its slot is freed.
        if !unsafe { (*s.header).detached } {
            return fail("zombie list holds a fiber that is not detached", Some(i));
        }
        n += 1;
        if n > cap {
            return fail("zombie list is longer than the table (a cycle)", Some(i));
        }
        p = s.next;
    }
    Ok(())
}
