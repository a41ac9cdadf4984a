//! The ready ring: linking a fiber in (make ready), stepping it (yield),
//! unlinking the running fiber (block, exit) or a ready one.

use core::ptr;

use super::*;

/// Links `s` at the tail of the ring of its priority level (runs after
/// everything queued at that level).
///
/// # Safety
/// `s` must be a valid slot of `core` that is not in the ring or any queue.
#[inline(always)]
pub(crate) unsafe fn make_ready(core: *mut Core, s: *mut Slot) {
    // SAFETY: ring pointers are valid slots of core; s is not linked anywhere.
    unsafe {
        (*s).state = State::Ready;
        let cur = (*core).current;
        if cur.is_null() {
            // Nothing is ready at any level (I11): this level runs.
            (*s).next = s;
            (*core).current = s;
            (*core).run_level = (*s).priority;
        } else if (*s).priority == (*core).run_level {
            (*s).next = cur;
            (*(*core).prev).next = s;
        } else {
            return make_ready_other(core, s);
        }
        (*core).prev = s;
    }
}

/// [`make_ready`] called by a running fiber (so the running ring is not
/// empty): one test less on a hand-off's path.
///
/// # Safety
/// As for [`make_ready`], and a fiber of `core` is running.
#[inline(always)]
pub(crate) unsafe fn make_ready_by_running(core: *mut Core, s: *mut Slot) {
    // SAFETY: the running ring holds the caller (I11), so `current` and
    // `prev` are valid slots; `s` is linked nowhere.
    unsafe {
        (*s).state = State::Ready;
        if (*s).priority != (*core).run_level {
            return make_ready_other(core, s);
        }
        (*s).next = (*core).current;
        (*(*core).prev).next = s;
        (*core).prev = s;
    }
}

/// [`make_ready`] at a level other than the running one: at that level's
/// tail; above the running level, the next scheduling point preempts.
///
/// # Safety
/// As for [`make_ready`]; the running ring is not empty.
#[inline(never)]
unsafe fn make_ready_other(core: *mut Core, s: *mut Slot) {
    // SAFETY: the level's tail, if any, is a Ready slot of its ring (I11).
    unsafe {
        let l = (*s).priority as usize;
        let t = (*core).levels[l];
        if t.is_null() {
            (*s).next = s;
        } else {
            (*s).next = (*t).next;
            (*t).next = s;
        }
        (*core).levels[l] = s;
        (*core).ready_levels |= 1 << l;
        if l > (*core).run_level as usize && !(*core).preempt {
            (*core).preempt = true;
            refresh_slow(core);
        }
    }
}

/// Parks the running ring (if any) as its level's ring and loads the highest
/// ready level's ring in its place: `current` is then that level's head.
///
/// # Safety
/// Exclusive access to `core`; some fiber is ready (`ready_levels != 0` or
/// the running ring is not empty).
#[inline(never)]
pub(crate) unsafe fn switch_level(core: *mut Core) {
    // SAFETY: ring pointers and level tails are Ready slots of core (I11).
    unsafe {
        let c = (*core).current;
        if !c.is_null() {
            let l = (*core).run_level as usize;
            (*core).levels[l] = (*core).prev;
            (*core).ready_levels |= 1 << l;
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
        }
        load_highest(core);
    }
}

/// Makes the highest non-empty level the running ring. Nothing is above it
/// then, so `preempt` is cleared.
///
/// # Safety
/// Exclusive access; the running ring is empty and `ready_levels != 0`.
#[inline(always)]
pub(crate) unsafe fn load_highest(core: *mut Core) {
    // SAFETY: a set bit's tail is a Ready slot of a non-empty ring (I11).
    unsafe {
        let l = 31 - (*core).ready_levels.leading_zeros() as usize;
        let t = (*core).levels[l];
        (*core).levels[l] = ptr::null_mut();
        (*core).ready_levels &= !(1 << l);
        (*core).current = (*t).next;
        (*core).prev = t;
        (*core).run_level = l as u8;
        if (*core).preempt {
            (*core).preempt = false;
            refresh_slow(core);
        }
    }
}

/// Recomputes `preempt` from the bitmap and the running level (after a level
/// emptied or the running level changed).
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn refresh_preempt(core: *mut Core) {
    // SAFETY: plain reads and writes of the core's own fields.
    unsafe {
        let above = (*core).ready_levels >> ((*core).run_level as u32 + 1) != 0;
        if above != (*core).preempt {
            (*core).preempt = above;
            refresh_slow(core);
        }
    }
}

/// The ring step shared by both yields: checks the outgoing fiber's canary
/// and makes its successor current. Returns `(outgoing, incoming)`, or `None`
/// when the running fiber is alone in the ring (nothing changes).
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn step_ring(core: *mut Core) -> Option<(*mut Slot, *mut Slot)> {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        let c = (*core).current;
        let n = (*c).next;
        if n == c {
            return None; // alone in the ring: keep running
        }
        check_canary(core, c);
        (*core).prev = c;
        (*core).current = n;
        Some((c, n))
    }
}

/// Unlinks `current` from the ring and returns the fiber to resume next, or
/// null when no fiber is ready (resume the host). When the running level
/// empties, or a higher level waits (`preempt`), the highest level runs next.
///
/// # Safety
/// The ring must be non-empty.
#[inline(always)]
pub(crate) unsafe fn unlink_current(core: *mut Core) -> *mut Slot {
    // SAFETY: current is non-null; ring pointers are valid.
    unsafe {
        let c = (*core).current;
        let n = (*c).next;
        if n == c {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            if (*core).ready_levels == 0 {
                return ptr::null_mut();
            }
            load_highest(core);
        } else {
            (*(*core).prev).next = n;
            (*core).current = n;
            if (*core).preempt {
                switch_level(core);
            }
        }
        // The policy may pick another fiber (feature `explore`); the
        // fiber to resume is whatever `current` is afterwards.
        #[cfg(feature = "explore")]
        crate::policy::choose(core);
        let next = (*core).current;
        trace_event!(core, switch_in(id_of(core, next)));
        next
    }
}

/// Takes a Ready fiber out of the ring of its level (O(ring)). If it is
/// `current`, its successor becomes current (or, if it was alone, the
/// highest other level's ring).
///
/// # Safety
/// Exclusive access to `core`, not from `s`'s own stack; `s` is a Ready slot
/// of `core`, so it is in the ring of its level (I11).
pub(crate) unsafe fn unlink_ready(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract the ring is a valid cycle containing `s`.
    unsafe {
        let l = (*s).priority as usize;
        let running = !(*core).current.is_null() && l == (*core).run_level as usize;
        let mut p = s;
        while (*p).next != s {
            p = (*p).next;
        }
        let alone = p == s;
        if running {
            if alone {
                (*core).current = ptr::null_mut();
                (*core).prev = ptr::null_mut();
                if (*core).ready_levels != 0 {
                    load_highest(core);
                }
                return;
            }
            (*p).next = (*s).next;
            if (*core).current == s {
                (*core).current = (*s).next;
            }
            if (*core).prev == s {
                (*core).prev = p;
            }
        } else if alone {
            (*core).levels[l] = ptr::null_mut();
            (*core).ready_levels &= !(1 << l);
            refresh_preempt(core);
        } else {
            (*p).next = (*s).next;
            if (*core).levels[l] == s {
                (*core).levels[l] = p;
            }
        }
    }
}
