//! Wait queues: walking one, and every live fiber's joiner queue.

use super::{Check, Table, fail};
use crate::fiber::{Slot, State, WaitKind};
use crate::wait::WaitQueue;

impl Table<'_> {
    /// Walks the wait queue `q` (kind `kind`) and checks its members.
    /// Returns whether slot `want` is among them.
    ///
    /// # Safety
    /// `q` must point at a readable `WaitQueue`.
    pub(super) unsafe fn walk_queue(&self, q: *const WaitQueue, kind: WaitKind, want: Option<usize>) -> Check<bool> {
        // SAFETY: per the contract.
        let q = unsafe { &*q };
        let mut found = false;
        let mut last: *mut Slot = core::ptr::null_mut();
        let mut n = 0usize;
        let mut p = q.head();
        while !p.is_null() {
            let i = self.index_or(p, "wait queue link points outside the slot table")?;
            let s = self.slot(i);
            n += 1;
            if n > self.core.cap {
                return fail("wait queue is longer than the table (a cycle)", Some(i));
            }
            if s.state != State::Blocked {
                return fail("wait queue member is not Blocked", Some(i));
            }
            if s.wait_obj != q as *const WaitQueue as usize {
                return fail("wait queue member names another queue in wait_obj", Some(i));
            }
            if s.wait_kind != kind {
                return fail("wait queue member has another wait kind", Some(i));
            }
            found |= want == Some(i);
            last = p;
            p = s.next;
        }
        if q.tail() != last {
            return fail("wait queue tail is not its last member", None);
        }
        Ok(found)
    }
}

/// Walks the joiner queue of every live fiber (empty once the fiber finished).
pub(super) fn joiner_queues(t: &Table<'_>) -> Check {
    let cap = t.core.cap;
    for i in 0..cap {
        let s = t.slot(i);
        if s.state == State::Free {
            continue;
        }
        // SAFETY: a live slot's header is valid (checked non-null above).
        let q = unsafe { &raw const (*s.header).joiners };
        // SAFETY: the header is readable, so is the queue inside it.
        unsafe { t.walk_queue(q, WaitKind::Join, None)? };
        // SAFETY: as above.
        if s.state == State::Finished && !unsafe { (*q).head() }.is_null() {
            return fail("finished fiber still has joiners", Some(i));
        }
    }
    Ok(())
}
