//! Switching: the fast and general yield, choice points, preemption, and
//! the FP control hand-over at every switch. Blocking and waking, which
//! switch too, are in `block.rs`.

use super::*;

/// Recomputes [`Core::slow`] after a change to anything it summarises.
///
/// # Safety
/// Exclusive access to `core`.
#[inline]
pub(crate) unsafe fn refresh_slow(core: *mut Core) {
    // SAFETY: plain reads and one write of the runtime's own fields.
    unsafe {
        #[allow(unused_mut)]
        let mut slow = (*core).pollers | (*core).preempt as usize;
        #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
        {
            slow |= (*core).fp_fibers;
        }
        #[cfg(feature = "trace")]
        {
            slow |= (*core).tracer.is_some() as usize;
        }
        #[cfg(feature = "explore")]
        {
            slow |= (*core).policy.is_some() as usize;
        }
        (*core).slow = slow;
    }
}

/// The yield the fiber handle calls: the general path ([`yield_now`]) when
/// [`Core::slow`] says something needs it, otherwise only the ring step, the
/// canary check and the switch (one compare for every optional feature).
///
/// `c` is re-read from `core.current` rather than taken from the handle's
/// slot pointer: that variant shortens the load chain on paper but measured
/// slower at 64 and 1 024 fibers (4.1 vs 2.4 ns, 7.5 vs 5.0 ns per yield,
/// interleaved A/B, bench/README.md).
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_fast(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        // `unwinding` is a constant `false` without std; with std, one load
        // and a not-taken branch (std's global panic count is zero).
        if (*core).slow != 0 || unwinding() {
            return yield_general(core);
        }
        let Some((c, n)) = step_ring(core) else { return };
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        // Warm the stack line the *next* yield will pop from: with thousands
        // of fibers it is a cache miss on the critical path (rsp is loaded,
        // then popped from). Interleaved A/B (bench/README.md): N = 10 000
        // 19.3 -> 8.2 ns, N = 1 024 4.15 -> 3.72 ns, N = 2 2.63 -> 2.06 ns,
        // N = 64 2.03 -> 2.46 ns (all in L1 there, so the extra loads cost).
        // `n.next` is always a live ring slot; its `sp` may be stale (at N = 2
        // it is `c.sp`, rewritten by this very switch), which a prefetch
        // tolerates: it never faults.
        arch::prefetch((*(*n).next).sp);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// [`yield_now`] out of line, for the fast path's rare case.
///
/// # Safety
/// As for [`yield_now`].
#[inline(never)]
pub(crate) unsafe fn yield_general(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe { yield_now(core) }
}

/// Gives the CPU to the next ready fiber, if any; returns when this fiber is
/// scheduled again.
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_now(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        if unwinding() {
            return; // never switch while unwinding (see `unwinding`)
        }
        crate::time::poll(core);
        if (*core).preempt {
            return preempt(core, true);
        }
        let Some((c, n)) = step_ring(core) else { return };
        #[cfg(feature = "explore")]
        let n = {
            let _ = n; // the policy may pick another fiber
            crate::policy::choose(core);
            let n = (*core).current;
            if n == c {
                return; // the policy keeps this fiber running
            }
            n
        };
        trace_event!(core, switch_out(id_of(core, c)));
        trace_event!(core, switch_in(id_of(core, n)));
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        fp_handover(core, c, n);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// Hands FP control state over from `from` to `to` (null: the host) when a
/// fiber with its own state is involved. Two instructions otherwise.
///
/// # Safety
/// Exclusive access; `from`/`to` are live slots of `core` or null.
#[inline(always)]
pub(crate) unsafe fn fp_handover(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).fp_fibers != 0 {
            fp_handover_slow(core, from, to);
        }
    }
    let _ = (core, from, to);
}

/// [`fp_handover`] while some live fiber has its own FP control state.
///
/// # Safety
/// As for [`fp_handover`].
#[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
#[cold]
#[inline(never)]
pub(crate) unsafe fn fp_handover_slow(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    use crate::arch::FpControl;
    // SAFETY: non-null slots are live and their headers valid.
    unsafe {
        let from_own = !from.is_null() && (*from).fp;
        let to_own = !to.is_null() && (*to).fp;
        if !from_own && !to_own {
            return;
        }
        let now = FpControl::current();
        if from_own {
            (*(*from).header).fp.write(now);
        } else {
            (*core).ambient_fp = now;
        }
        // A fiber with its own state has its header's `fp` written (by
        // `set_fp_control`, then at every switch-out).
        let want = if to_own { (*(*to).header).fp.assume_init() } else { (*core).ambient_fp };
        if want != now {
            // SAFETY: restoring a state some context had loaded itself (under
            // its own `FpControl::load` contract) or the shared state.
            want.load();
        }
    }
}

/// A scheduling point inside a primitive's operation (after wakes, around
/// primitive operations): a fiber of a higher level made ready meanwhile
/// runs now (cooperative preemption), and an exploring scheduling policy may
/// switch fibers. One load and a not-taken branch without `explore`.
///
/// # Safety
/// Must be called by the running fiber of `core`.
#[inline(always)]
pub(crate) unsafe fn choice_point(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).preempt {
            preempt_at_choice_point(core);
        }
        #[cfg(feature = "explore")]
        if (*core).policy.is_some() {
            yield_now(core);
        }
    }
}

/// [`choice_point`]'s preemption, out of line (keeps the primitives' fast
/// paths small enough to inline): not while unwinding (I6).
///
/// # Safety
/// As for [`preempt`], `preempt` set.
#[cold]
#[inline(never)]
unsafe fn preempt_at_choice_point(core: *mut Core) {
    if !unwinding() {
        // SAFETY: forwarded contract.
        unsafe { preempt(core, false) }
    }
}

/// Switches from the running fiber to the highest ready level, which is above
/// the running one (`preempt` is set). A yielding fiber (`step`) goes to the
/// tail of its level's ring; a preempted one stays at its head, so it is the
/// first of its level to run again.
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack, with
/// `preempt` set and not unwinding.
#[inline(never)]
pub(crate) unsafe fn preempt(core: *mut Core, step: bool) {
    // SAFETY: the caller is `current`; a higher level is ready (I11), so the
    // fiber loaded is another one.
    unsafe {
        let c = (*core).current;
        if step && (*c).next != c {
            (*core).prev = c;
            (*core).current = (*c).next;
        }
        check_canary(core, c);
        switch_level(core);
        #[cfg(feature = "explore")]
        crate::policy::choose(core);
        let n = (*core).current;
        trace_event!(core, switch_out(id_of(core, c)));
        trace_event!(core, switch_in(id_of(core, n)));
        (*c).runs = (*c).runs.wrapping_add(1);
        fp_handover(core, c, n);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}
