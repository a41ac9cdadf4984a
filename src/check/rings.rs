//! The ready rings, the priority bitmap and the preemption flag.

use super::{Check, CheckError, Table, fail};
use crate::fiber::{Slot, State};
use crate::priority::PRIORITY_LEVELS;

impl Table<'_> {
    /// Walks the ring whose tail is `tail` (of level `level`): every member
    /// Ready and at that priority, back at the tail within `ready` steps.
    /// Returns its length.
    fn walk_ring(&self, tail: *mut Slot, level: u8, ready: usize) -> Result<usize, CheckError> {
        let ti = self.index_or(tail, "ready ring tail points outside the slot table")?;
        let head = self.slot(ti).next;
        let mut p = head;
        let mut n = 0usize;
        loop {
            let i = self.index_or(p, "ready ring link points outside the slot table")?;
            let s = self.slot(i);
            if s.state != State::Ready {
                return fail("ready ring holds a slot that is not Ready", Some(i));
            }
            if s.priority != level {
                return fail("ready slot in the ring of another priority level", Some(i));
            }
            n += 1;
            if n > ready {
                return fail("ready ring does not return to its head after every Ready slot", Some(i));
            }
            if p == tail {
                if s.next != head {
                    return fail("the ring's tail does not lead back to its head", Some(i));
                }
                return Ok(n);
            }
            p = s.next;
        }
    }
}

/// The running level's ring, then every other level's: together they hold
/// the `ready` Ready slots; with `running`, that fiber is `current`.
pub(super) fn ready_rings(t: &Table<'_>, ready: usize, running: Option<*mut Slot>) -> Check {
    let c = t.core;
    if c.current.is_null() != c.prev.is_null() {
        return fail("exactly one of current/prev is null", None);
    }
    let mut in_rings = 0usize;
    if c.current.is_null() {
        if c.ready_levels != 0 {
            return fail("running ring is empty but other levels have ready fibers", None);
        }
    } else {
        let pi = t.index_or(c.prev, "prev points outside the slot table")?;
        if t.slot(pi).next != c.current {
            return fail("prev.next is not current", Some(pi));
        }
        in_rings += t.walk_ring(c.prev, c.run_level, ready)?;
    }
    if c.run_level as usize >= PRIORITY_LEVELS {
        return fail("run_level is not a priority level", None);
    }
    for (l, &tail) in c.levels.iter().enumerate() {
        let bit = c.ready_levels & (1 << l) != 0;
        if tail.is_null() == bit {
            return fail("ready_levels bit disagrees with its level's ring", None);
        }
        if !tail.is_null() {
            if l == c.run_level as usize && !c.current.is_null() {
                return fail("the running level also has a parked ring", None);
            }
            in_rings += t.walk_ring(tail, l as u8, ready)?;
        }
    }
    if c.ready_levels >> PRIORITY_LEVELS != 0 {
        return fail("ready_levels has bits beyond the priority levels", None);
    }
    if in_rings != ready {
        return fail("Ready slots missing from the ready rings", None);
    }
    if c.preempt != (c.ready_levels >> (c.run_level as u32 + 1) != 0) {
        return fail("preempt disagrees with the levels above the running one", None);
    }
    if let Some(r) = running {
        if c.current != r {
            return fail("the running fiber is not current", t.index(r));
        }
        if !c.in_run {
            return fail("a fiber runs but in_run is false", t.index(r));
        }
    }
    Ok(())
}
