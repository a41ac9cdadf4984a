//! The timer heap.

use super::{Check, Table, fail};
use crate::fiber::State;

/// Every heap entry names a Blocked slot at its `timer_pos`, in heap order.
pub(super) fn timer_heap(t: &Table<'_>) -> Check {
    let (c, cap) = (t.core, t.core.cap);
    if c.ntimers > cap {
        return fail("more timers than slots", None);
    }
    for i in 0..c.ntimers {
        // SAFETY: i < ntimers <= cap entries.
        let e = unsafe { *c.timers.add(i) };
        let si = t.index_or(e.slot, "timer heap entry points outside the slot table")?;
        let s = t.slot(si);
        if s.state != State::Blocked {
            return fail("timer heap entry of a slot that is not Blocked", Some(si));
        }
        if s.timer_pos as usize != i {
            return fail("timer heap entry at a position other than the slot's timer_pos", Some(si));
        }
        if e.seq > c.timer_seq {
            return fail("timer heap entry has a sequence number from the future", Some(si));
        }
        if i > 0 {
            // SAFETY: the parent index is below i.
            let parent = unsafe { *c.timers.add((i - 1) / 2) };
            if parent.key() > e.key() {
                return fail("timer heap order broken", Some(si));
            }
        }
    }
    Ok(())
}
