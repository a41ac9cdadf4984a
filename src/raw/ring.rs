//! The ready ring: linking a fiber in (make ready), stepping it (yield),
//! unlinking the running fiber (block, exit) or a ready one.

use core::ptr;

use super::*;
/// Links `s` at the tail of the ready ring (runs after everything queued).
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
            (*s).next = s;
            (*core).current = s;
        } else {
            (*s).next = cur;
            (*(*core).prev).next = s;
        }
        (*core).prev = s;
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
/// null when the ring became empty (resume the host).
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
            ptr::null_mut()
        } else {
            (*(*core).prev).next = n;
            (*core).current = n;
            // The policy may pick another fiber (feature `explore`); the
            // fiber to resume is whatever `current` is afterwards.
            #[cfg(feature = "explore")]
            crate::policy::choose(core);
            let next = (*core).current;
            trace_event!(core, switch_in(id_of(core, next)));
            next
        }
    }
}

/// Takes a ready fiber that is not running out of the ready ring (O(ring)).
///
/// # Safety
/// Exclusive access to `core` from the host context outside `run` (no fiber
/// runs); `s` is a Ready slot of `core`, so it is in the ring (I2).
#[cfg(feature = "std")]
pub(crate) unsafe fn unlink_ready(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract the ring is a valid cycle containing `s`.
    unsafe {
        if (*s).next == s {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            return;
        }
        let mut p = s;
        while (*p).next != s {
            p = (*p).next;
        }
        (*p).next = (*s).next;
        if (*core).current == s {
            (*core).current = (*s).next;
        }
        if (*core).prev == s {
            (*core).prev = p;
        }
    }
}
