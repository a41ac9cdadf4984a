//! Priority changes: moving a fiber between levels when its effective
//! priority changes (`set_priority`, priority inheritance).

use core::ptr;

use super::*;

/// Sets `s`'s effective priority to `p`, relinking it if it is ready: a
/// ready fiber that is not current goes to the tail of its new level; the
/// current fiber (the running one inside `run`) stays current, at the head of
/// its new level, which becomes the running level. A change that puts a
/// ready fiber above the running level sets `preempt`: the switch happens at
/// the running fiber's next scheduling point, not here.
///
/// # Safety
/// Exclusive access to `core` (its running fiber, or the host holding its
/// lock); `s` a non-free slot of `core`; `p < PRIORITY_LEVELS`.
pub(crate) unsafe fn set_effective(core: *mut Core, s: *mut Slot, p: u8) {
    // SAFETY: per the contract; a Ready slot is in its level's ring (I11).
    unsafe {
        debug_assert!((p as usize) < crate::priority::PRIORITY_LEVELS);
        if (*s).priority == p {
            return;
        }
        trace_event!(core, priority(id_of(core, s), crate::priority::Priority::saturating(p)));
        if (*s).state != State::Ready {
            (*s).priority = p;
        } else if (*core).current == s {
            move_current(core, p);
        } else {
            unlink_ready(core, s);
            (*s).priority = p;
            make_ready(core, s);
        }
    }
}

/// Moves `current` to level `p`: the rest of its ring stays behind as the old
/// level's ring, `current` becomes the head of level `p`'s ring (before the
/// fibers already queued there), and `p` the running level.
///
/// # Safety
/// Exclusive access; `current` is not null.
unsafe fn move_current(core: *mut Core, p: u8) {
    // SAFETY: ring pointers and level tails are Ready slots of core (I11).
    unsafe {
        let c = (*core).current;
        let n = (*c).next;
        if n == c {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
        } else {
            // The rest of the old level's ring, in order, parked by its tail.
            (*(*core).prev).next = n;
            let l = (*core).run_level as usize;
            (*core).levels[l] = (*core).prev;
            (*core).ready_levels |= 1 << l;
        }
        (*c).priority = p;
        let l = p as usize;
        let t = (*core).levels[l];
        if t.is_null() {
            (*c).next = c;
            (*core).prev = c;
        } else {
            (*c).next = (*t).next;
            (*t).next = c;
            (*core).prev = t;
            (*core).levels[l] = ptr::null_mut();
            (*core).ready_levels &= !(1 << l);
        }
        (*core).current = c;
        (*core).run_level = p;
        refresh_preempt(core);
    }
}
