//! The rules of each slot on its own: header, FP state, interrupt mark,
//! deadline, and what its wait kind says about where it waits.

use super::{Check, Table, fail};
use crate::fiber::{Slot, State, WaitKind};
use crate::wait::WaitQueue;

/// Whether a blocked fiber of this kind sits in the wait queue at its
/// `wait_obj`. Kinds not listed (a plain sleep, or any kind added later that
/// means "in no queue") are not looked up.
fn waits_in_queue(kind: WaitKind) -> bool {
    matches!(
        kind,
        WaitKind::Join
            | WaitKind::Mutex
            | WaitKind::Semaphore
            | WaitKind::Send
            | WaitKind::Recv
            | WaitKind::Event
            | WaitKind::Barrier
            | WaitKind::Irq
            | WaitKind::EventGroup
    )
}

/// Whether `s` is a fiber parked for good after a deadlock (see
/// `runtime::deadlock`): `WaitKind::Parked`, with no deadline armed.
fn is_parked(s: &Slot) -> bool {
    s.state == State::Blocked && s.wait_kind == WaitKind::Parked && s.timer_pos == u32::MAX
}

/// Checks every slot; returns how many have their own FP state and how many
/// are marked as interrupt waiters (for the counters).
pub(super) fn slots(t: &Table<'_>) -> Check<(usize, usize)> {
    let (c, cap) = (t.core, t.core.cap);
    let mut fp = 0usize;
    let mut irq_waiting = 0usize;
    for i in 0..cap {
        let s = t.slot(i);
        fp += usize::from(s.fp);
        if s.state == State::Free {
            if s.fp {
                return fail("free slot keeps its own FP state", Some(i));
            }
        } else if s.header.is_null() {
            return fail("live slot has no header", Some(i));
        }
        let counted = s.irq_wait;
        let (suspended, uncounted) = if s.state == State::Free {
            (false, false)
        } else {
            // SAFETY: a live slot's header is valid (checked non-null above).
            unsafe { ((*s.header).suspend, (*s.header).irq_uncounted) }
        };
        if s.wait_kind == WaitKind::Irq && s.state == State::Blocked && !counted && !(suspended && uncounted) {
            return fail("fiber blocked on an interrupt signal is not counted as an interrupt waiter", Some(i));
        }
        if counted && uncounted {
            return fail("interrupt waiter both counted and set aside as suspended", Some(i));
        }
        if s.irq_wait && !matches!(s.state, State::Blocked | State::Ready) {
            return fail("interrupt waiter mark on a fiber that is neither blocked nor ready", Some(i));
        }
        irq_waiting += usize::from(counted);
        if s.timer_pos != u32::MAX {
            let pos = s.timer_pos as usize;
            // SAFETY: pos < ntimers <= cap entries of the timer array.
            if pos >= c.ntimers || !core::ptr::eq(unsafe { (*c.timers.add(pos)).slot }, s) {
                return fail("timer_pos does not lead back to the slot's heap entry", Some(i));
            }
        }
        if s.state != State::Blocked {
            // A Ready fiber woken through a select's node keeps its select's
            // record until it is out of the select (I12).
            if s.wait_kind != WaitKind::None || (s.wait_obj != 0 && s.state != State::Ready) {
                return fail("a fiber that is not blocked keeps a wait kind or object", Some(i));
            }
            // That record is a local of the fiber's own select frame: in its
            // stack, below its header (review 14).
            if s.wait_obj != 0 && !(s.lo as usize <= s.wait_obj && s.wait_obj < s.header as usize) {
                return fail("a ready fiber's select record is not in its own stack", Some(i));
            }
            continue;
        }
        if s.wait_kind == WaitKind::None {
            return fail("blocked fiber has no wait kind", Some(i));
        }
        if s.wait_kind == WaitKind::Parked && !is_parked(s) {
            return fail("parked fiber has a deadline armed", Some(i));
        }
        if is_parked(s) {
            if !c.poisoned {
                return fail("fiber parked after a deadlock in a runtime that is not poisoned", Some(i));
            }
        } else if waits_in_queue(s.wait_kind) {
            // SAFETY: a blocked fiber's wait_obj is the address of the live
            // queue it waits in (the scheduler's own assumption).
            if !unsafe { t.walk_queue(s.wait_obj as *const WaitQueue, s.wait_kind, Some(i))? } {
                return fail("blocked fiber is not in the wait queue named by its wait_obj", Some(i));
            }
        } else if s.wait_kind == WaitKind::Suspended {
            if s.timer_pos != u32::MAX {
                return fail("suspended fiber has a deadline armed", Some(i));
            }
            // SAFETY: a live slot's header is valid (checked non-null above).
            if !unsafe { (*s.header).suspend } {
                return fail("suspended fiber without its suspend flag", Some(i));
            }
        } else if s.wait_kind == WaitKind::Sleep {
            if s.timer_pos == u32::MAX {
                return fail("sleeping fiber has no deadline armed", Some(i));
            }
            // SAFETY: timer_pos was checked to index a heap entry above.
            if unsafe { (*c.timers.add(s.timer_pos as usize)).deadline } as usize != s.wait_obj {
                return fail("sleeping fiber's deadline differs from its wait_obj", Some(i));
            }
        }
    }
    Ok((fp, irq_waiting))
}
