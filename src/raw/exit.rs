//! The end of a fiber: exit and the final switch, slot recycling and the
//! release of zombies' stacks.

use super::*;

/// Finishes the running fiber: wakes its joiners, parks it as finished (or,
/// if detached, frees its slot at once) and switches away for good.
///
/// A detached fiber's stack is released by the final switch itself, right
/// after it has left that stack ([`arch::switch_final`]), when releasing it is
/// a single store (a [`StaticStack`](crate::StaticStack) claim, a borrowed
/// buffer). A mapped host stack must be unmapped by a call: that fiber becomes a
/// zombie, released by the next context that reclaims zombies.
///
/// # Safety
/// Must be called by the running fiber on its own stack, after its closure's
/// frame is gone and its outcome is stored (or dropped, if detached).
// Not inlined into the generic `fiber_entry`: it would share registers and
// address computations with the closure's own code (a yield loop in the same
// function measured one instruction slower per yield).
//
// `extern "C"` so the entry glue can *jump* here ([`leave`]) instead of
// calling: a call that never returns leaves a stale entry on the CPU's
// return-stack predictor, and the host's next `ret` (out of `run`) then
// mispredicts.
#[inline(never)]
pub(crate) unsafe extern "C" fn exit_current(core: *mut Core) -> ! {
    // SAFETY: the caller is `current`; its header is live.
    unsafe {
        let c = (*core).current;
        (*c).runs = (*c).runs.wrapping_add(1);
        // The one full canary check of this fiber's lifetime (it is also the
        // switch-out check): nothing runs on this stack after it.
        if !stack::canary_intact((*c).lo) {
            canary_broken_here(core, c);
        }
        let h = (*c).header;
        (*core).unfinished -= 1;
        trace_event!(core, exit(id_of(core, c)));
        trace_event!(core, switch_out(id_of(core, c)));
        // The fast path makes no call that returns, so it saves no registers.
        if !(*h).joiners.is_empty() || fp_own_any(core) {
            exit_slow(core, c, h);
        }
        exit_switch(core, c, h, false)
    }
}

/// Ends the running fiber: jumps (no call) into [`exit_current`].
///
/// # Safety
/// As for [`exit_current`]; nothing on the running frame is used again.
#[inline(always)]
pub(crate) unsafe fn leave(core: *mut Core) -> ! {
    // SAFETY: forwarded contract; `exit_current` never returns, so the
    // frames it is jumped from are abandoned.
    unsafe { arch::jump_noreturn(exit_current, core) }
}

/// Whether any live fiber has its own FP control state (default FP mode).
#[inline(always)]
pub(crate) fn fp_own_any(core: *mut Core) -> bool {
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    // SAFETY: plain read of the core's counter by its running fiber.
    unsafe {
        (*core).fp_fibers != 0
    }
    #[cfg(any(feature = "no-fp-control", feature = "fp-control-always"))]
    {
        let _ = core;
        false
    }
}

/// [`exit_current`] with joiners to wake, FP control state to hand over, or
/// a next fiber that the plain unlink does not pick (another level, a
/// pending preemption, the explorer's policy, a tracer).
///
/// # Safety
/// As for `exit_current`; `c` is current and `h` its header.
#[cold]
#[inline(never)]
pub(crate) unsafe fn exit_slow(core: *mut Core, c: *mut Slot, h: *mut crate::fiber::Header) -> ! {
    // SAFETY: forwarded; the joiner queue holds blocked slots of core.
    unsafe {
        wake_all(core, &(*h).joiners);
        exit_switch(core, c, h, true)
    }
}

/// The end of [`exit_current`]: unlinks the finished fiber, frees it if it is
/// detached, and switches away for good.
///
/// A detached fiber's stack is released by the final switch itself, right
/// after it has left that stack ([`arch::switch_final`]), when releasing it is
/// a single store (a [`StaticStack`](crate::StaticStack) claim, a borrowed
/// buffer). A mapped host stack must be unmapped by a call: that fiber becomes a
/// zombie, released by the next context that reclaims zombies.
///
/// `general`: take the general unlink and hand over FP state (`exit_slow`);
/// otherwise the plain unlink, falling back to `exit_slow` when it does not
/// apply.
///
/// # Safety
/// As for `exit_current`; joiners already woken (or none, when not
/// `general`); `c` is current, `h` its header.
#[inline(always)]
pub(crate) unsafe fn exit_switch(core: *mut Core, c: *mut Slot, h: *mut crate::fiber::Header, general: bool) -> ! {
    // SAFETY: everything read from the header (on the dying stack) is read
    // before the final switch, which is the last thing that runs on it.
    unsafe {
        // The common exit needs no call that returns: the general unlink
        // (another level to load, a pending preemption, the explorer's
        // policy, a tracer's switch-in) is taken by `exit_slow`. With a call
        // that returns on the path, the values live across it took
        // callee-saved registers, saved by a prologue that never pays off
        // (this function never returns): 5 pushes per exit.
        #[cfg(not(any(feature = "trace", feature = "explore")))]
        let to = if general { unlink_current_general(core, c, true) } else { unlink_current_plain(core, c, h) };
        // With a tracer or a scheduling policy compiled in, always the
        // general unlink (it calls them); the plain one is not compiled, so
        // an unoptimised build's exit frame has no room for it.
        #[cfg(any(feature = "trace", feature = "explore"))]
        let to = unlink_current_general(core, c, general);
        let scratch = &raw const (*core).scratch;
        if (*h).detached {
            // Detached fibers have no joiners: join and detach both consume
            // the one handle.
            debug_assert!((*h).joiners.is_empty());
            if let Some(release) = (*h).stack.release_byte(scratch) {
                // The token is released by the store in the final switch; it
                // is never dropped (it is a ManuallyDrop on the dying stack).
                retire_slot(core, c);
                arch::switch_final(to, release)
            }
            (*c).next = (*core).zombies;
            (*core).zombies = c;
        }
        (*c).state = State::Finished;
        arch::switch_final(to, scratch)
    }
}

/// The general unlink of the exiting fiber `c` (`unlink_current`, which
/// calls the tracer's and the policy's hooks), the FP state handed over
/// (`fp`: some fiber may have its own), and the saved stack pointer of the
/// context to switch to.
///
/// # Safety
/// As for [`exit_switch`].
#[inline(always)]
unsafe fn unlink_current_general(core: *mut Core, c: *mut Slot, fp: bool) -> *mut u8 {
    // SAFETY: per the contract.
    unsafe {
        let n = unlink_current(core);
        if fp {
            fp_handover(core, c, n);
        }
        #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
        if fp && (*c).fp {
            (*c).fp = false;
            (*core).fp_fibers -= 1;
            refresh_slow(core);
        }
        // The trace hooks and the scheduling policy ran on this stack after
        // the exit's canary check: check again (it is the last chance).
        #[cfg(any(feature = "trace", feature = "explore"))]
        if !stack::canary_intact((*c).lo) {
            canary_broken_here(core, c);
        }
        if n.is_null() { (*core).host_sp } else { (*n).sp }
    }
}

/// [`unlink_current`] for the common exit: the ring has another fiber and
/// no preemption is pending, or no fiber is ready at any level (the host
/// runs next). Anything else (a level to load or switch to) goes to
/// [`exit_slow`], which never returns either. Not used with a tracer or a
/// scheduling policy compiled in (`unlink_current` calls them). Returns the
/// saved stack pointer of the context to switch to: the next fiber's or the
/// host's, read in the branch that knows which (one load, where selecting
/// it after the unlink took four instructions).
///
/// # Safety
/// As for [`exit_switch`]; no joiners are waiting on `h`.
#[cfg(not(any(feature = "trace", feature = "explore")))]
#[inline(always)]
unsafe fn unlink_current_plain(core: *mut Core, c: *mut Slot, h: *mut crate::fiber::Header) -> *mut u8 {
    // SAFETY: `c` is current, the ring pointers are valid slots of core.
    unsafe {
        let n = (*c).next;
        if n != c {
            if (*core).preempt {
                exit_slow(core, c, h);
            }
            (*(*core).prev).next = n;
            (*core).current = n;
            (*n).sp
        } else {
            if (*core).ready_levels != 0 {
                exit_slow(core, c, h);
            }
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            (*core).host_sp
        }
    }
}

/// Returns a slot to the free list, releasing its stack.
///
/// # Safety
/// `s` must be finished (its outcome gone) or never started (its closure gone),
/// and not the running fiber.
// Inlined into take and join (a call, its frame and the saved registers
// were 4 of a spawn + run + take cycle's instructions).
#[inline]
pub(crate) unsafe fn free_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract no frame lives on the stack and nobody runs on it.
    unsafe {
        // A finished fiber had its full canary check at exit, and nothing ran
        // on its stack since. A fiber that never ran gets it here.
        if (*s).state != State::Finished && !stack::canary_intact((*s).lo) {
            canary_broken(core, s);
        }
        crate::fiber::release_stack((*s).header);
        retire_slot(core, s);
    }
}

/// The slot half of [`free_slot`]: resets `s` and pushes it on the free list.
/// Its stack token must already be released (or about to be, by the caller).
///
/// # Safety
/// `s` is a non-free slot of `core` in no ring or queue.
#[inline(always)]
pub(crate) unsafe fn retire_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract.
    unsafe {
        // `header`, `lo` and `sp` keep stale values: nothing reads them in a
        // free slot (every reader checks `state` first).
        // Adjacent bytes, stored together (one store, not two).
        (*s).state = State::Free;
        (*s).started = false;
        (*core).retired_runs += (*s).runs;
        if (*s).local {
            (*s).local = false;
            (*core).local_fibers -= 1;
            #[cfg(feature = "std")]
            if (*core).local_fibers == 0 {
                (*core).local_thread = None;
            }
        }
        // Already so: only a Blocked slot has a wait kind and object (`wake`
        // and `resume` clear them; a parked fiber is never freed), and
        // `exit_switch` dropped the fiber's own FP state (a fiber that never
        // ran has none). Not rewritten: three stores fewer on every free (the
        // invariant checker asserts both facts for every non-Blocked and
        // every Free slot).
        debug_assert!((*s).wait_kind == WaitKind::None && (*s).wait_obj == 0 && !(*s).fp);
        (*s).generation = (*s).generation.wrapping_add(1);
        (*s).next = (*core).free;
        (*core).free = s;
        (*core).frees += 1;
    }
}

/// Releases every zombie (finished detached fiber).
///
/// # Safety
/// Must not be called from a zombie's stack (zombies never run again, so any
/// running context qualifies).
pub(crate) unsafe fn reclaim_zombies(core: *mut Core) {
    // SAFETY: zombies are finished, detached, their outcome already dropped.
    unsafe {
        while !(*core).zombies.is_null() {
            let z = (*core).zombies;
            (*core).zombies = (*z).next;
            free_slot(core, z);
        }
    }
}
