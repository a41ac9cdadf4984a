//! The host side of `run`: running ready fibers, idling, timers, deadlock
//! detection and cancellation, and the end of a run.

use core::{mem, ptr};

use crate::arch;
use crate::error::{DeadlockReport, RunError};
use crate::fiber::{State, WaitKind, Wake};
use crate::raw::{self, Core};
use crate::time::{self, Ticks};
use crate::trace::trace_event;
use crate::wait::WaitQueue;

/// Ends a `run` call (see `run_inner`), after `run_loop` returned.
pub(crate) struct EndRun(pub(crate) *mut Core);

impl Drop for EndRun {
    fn drop(&mut self) {
        let core = self.0;
        // SAFETY: `run_inner` holds the runtime's lock; the host context.
        unsafe {
            // The clock's idle state between runs (see `run_body`).
            (*core).stop_at = None;
            (*core).clock = None;
            (*core).clock_offset = 0;
            (*core).clock_synced = true;
            (*core).in_run = false;
            // A run of fibers that bound no primitive and registered no
            // interrupt source (both lists empty) has nothing to release:
            // two compares, the work out of line.
            if !(*core).bound.is_null() || !(*core).irq.is_empty() {
                end_run_release(core);
            }
            // Last, once the runtime is back in order (it runs user code: a
            // result's Drop may panic, which then reaches the caller of `run`):
            // the fibers whose handles were dropped during the run are done or
            // detached now.
            crate::orphans::adopt(core);
        }
    }
}

/// [`EndRun`]'s release of the run's primitives and interrupt sources.
///
/// # Safety
/// As for `EndRun::drop`: the lock is held, this is the host context.
#[cold]
#[inline(never)]
unsafe fn end_run_release(core: *mut Core) {
    // SAFETY: per the contract.
    unsafe {
        // Interrupt signals (nobody waits in them now; their counts stay on
        // the signals, so no notification is lost). First: a semaphore or
        // event registers its source when it binds, so its source is free
        // by the time another runtime can bind it.
        if !(*core).poisoned {
            crate::irq::unregister_all(core);
        }
        // Every fiber finished (or the runtime is poisoned, which keeps
        // them): the primitives this run bound are free for the next user.
        crate::sync::release_bindings(core);
    }
}

/// [`run_held`] for [`NoIdle`](crate::NoIdle) and no time limit
/// (`Runtime::run`, `Locked::run`): its own copy, so the hook and the limit
/// are constants there (the hook's selection and the clock's start cost 8
/// instructions per `run` when passed as arguments).
///
/// # Safety
/// As for [`run_held`].
#[allow(clippy::result_large_err)]
#[inline(never)]
pub(crate) unsafe fn run_plain(core: *mut Core) -> Result<(), RunError> {
    // SAFETY: forwarded contract.
    unsafe { run_body(core, None, None) }
}

/// `Runtime::run` once the runtime's lock is held (by `run` itself, or by a
/// [`Locked`](crate::Locked) across calls).
///
/// # Safety
/// The caller holds the runtime's lock and `core` is bound to where the
/// runtime is; this is the host context (not a fiber's stack).
///
/// `idle: None` is [`NoIdle`](crate::NoIdle) (`Runtime::run`): it has no
/// clock, so the clock's start needs no `Idle::now` call (a virtual call
/// per `run`, measured 8 instructions of a spawn + run cycle), and no hook
/// is installed at all (`time::idle` calls `NoIdle` itself).
#[allow(clippy::result_large_err)]
#[inline(never)]
pub(crate) unsafe fn run_held(
    core: *mut Core,
    idle: Option<&mut dyn crate::Idle>,
    limit: Option<Ticks>,
) -> Result<(), RunError> {
    // SAFETY: forwarded contract.
    unsafe { run_body(core, idle, limit) }
}

/// The body of [`run_held`] and [`run_plain`].
///
/// # Safety
/// As for [`run_held`].
#[allow(clippy::result_large_err)]
#[inline(always)]
unsafe fn run_body(core: *mut Core, idle: Option<&mut dyn crate::Idle>, limit: Option<Ticks>) -> Result<(), RunError> {
    // SAFETY: we hold the lock; this is the host context (not a fiber stack).
    unsafe {
        if (*core).poisoned {
            return Err(RunError::Poisoned);
        }
        if raw::unwinding() {
            return Err(RunError::Unwinding);
        }
        #[cfg(feature = "std")]
        if (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
            // Dropped handles may release the local fibers that pin the
            // runtime (their thread may be gone): adopt them, then look again.
            crate::orphans::adopt(core);
            if (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
                return Err(RunError::WrongThread);
            }
        }
        // An overflow into a host stack's guard page faults on the fiber's
        // stack: the report handler needs an alternate signal stack.
        #[cfg(feature = "std")]
        crate::host::guard::ensure_altstack();
        (*core).in_run = true;
        // Between runs the clock is in its idle state (no hook, offset 0,
        // synced; no limit): `EndRun` leaves it so. That is already the
        // state of a run with `NoIdle` (`idle: None`), which has no clock,
        // so such a run stores nothing here (`time::idle` calls `NoIdle`
        // when no hook is installed).
        debug_assert!((*core).clock.is_none() && (*core).clock_synced && (*core).clock_offset == 0);
        debug_assert!((*core).stop_at.is_none());
        if let Some(idle) = idle {
            // Erase the hook's lifetime: it is cleared by `EndRun`, before
            // `idle`'s borrow ends, and only used while this call runs.
            let idle: *mut (dyn crate::Idle + '_) = idle;
            (*core).clock = Some(mem::transmute::<*mut (dyn crate::Idle + '_), *mut dyn crate::Idle>(idle));
            time::start_clock(core);
        }
        if let Some(t) = limit {
            // Counted from the clock's first reading (start_clock moved the
            // runtime's time to it); a limit past `Ticks::MAX` is no limit.
            (*core).stop_at = (*core).now.checked_add(t).filter(|&t| t != Ticks::MAX);
        }
        // The run's end, as a guard dropped after `run_loop`'s result is
        // built in place: the (large) `Result` is never moved, so the
        // common path copies no deadlock report.
        let _end = EndRun(core);
        run_loop(core)
    }
}

/// The host side of `run`.
///
/// # Safety
/// Exclusive access to `core`; called on the host's own stack.
#[allow(clippy::result_large_err)]
#[inline(always)]
pub(crate) unsafe fn run_loop(core: *mut Core) -> Result<(), RunError> {
    // SAFETY: per the contract.
    unsafe {
        // The common case — fibers run until every one has finished — needs no
        // deadlock report (2 KiB) and no idle hook: keep it out of that frame.
        if run_ready(core) { Ok(()) } else { run_blocked(core) }
    }
}

/// Runs ready fibers until the ring is empty. Returns whether every fiber
/// has finished (otherwise some are blocked).
///
/// # Safety
/// As for [`run_loop`].
#[inline(always)]
unsafe fn run_ready(core: *mut Core) -> bool {
    // SAFETY: per the contract.
    unsafe {
        loop {
            if !(*core).zombies.is_null() {
                reclaim_zombies_cold(core);
            }
            time::poll(core);
            let c = (*core).current;
            if c.is_null() {
                return (*core).unfinished == 0;
            }
            switch_in_from_host(core);
        }
    }
}

/// Switches from the host context into the head of the ready ring (the
/// policy may pick another ready fiber first); returns when the ring is
/// empty again.
///
/// # Safety
/// As for [`run_loop`]; the ready ring is not empty.
#[inline(always)]
unsafe fn switch_in_from_host(core: *mut Core) {
    // SAFETY: per the contract `current` is a ready slot of `core`.
    unsafe {
        if (*core).preempt {
            raw::switch_level(core); // a higher level became ready meanwhile
        }
        #[cfg(feature = "explore")]
        crate::policy::choose(core);
        let c = (*core).current;
        trace_event!(core, switch_in(raw::id_of(core, c)));
        raw::fp_handover(core, ptr::null_mut(), c);
        arch::switch(&raw mut (*core).host_sp, (*c).sp);
    }
}

/// Out-of-line zombie reclaim for the host loop (zombies are rare).
///
/// # Safety
/// Exclusive access to `core`; called on the host's own stack.
#[cold]
#[inline(never)]
unsafe fn reclaim_zombies_cold(core: *mut Core) {
    // SAFETY: forwarded: the host context runs on no zombie's stack.
    unsafe { raw::reclaim_zombies(core) }
}

/// [`run_loop`] once fibers are blocked: idling, timers and deadlock detection.
///
/// # Safety
/// As for [`run_loop`].
#[cold]
#[inline(never)]
#[allow(clippy::result_large_err)]
unsafe fn run_blocked(core: *mut Core) -> Result<(), RunError> {
    // SAFETY: per the contract.
    unsafe {
        // A deadlock found under std: reported once the cancelled fibers are gone.
        let mut deadlocked: Option<DeadlockReport> = None;
        // `run_for`'s limit was reached (its report is `deadlocked`'s).
        let mut timed_out = false;
        let finish = |report: Option<DeadlockReport>, timed_out: bool| match report {
            Some(report) if timed_out => Err(RunError::TimedOut(report)),
            Some(report) => Err(RunError::Deadlock(report)),
            None => Ok(()),
        };
        loop {
            raw::reclaim_zombies(core);
            time::poll(core);
            if !(*core).current.is_null() {
                switch_in_from_host(core);
                continue;
            }
            if (*core).unfinished == 0 {
                return finish(deadlocked, timed_out);
            }
            // A fiber that blocked on a semaphore, event or event group
            // before it became interrupt-capable is not counted as an
            // interrupt waiter, so no poll drained an interrupt's give for
            // it: look before idling, reporting a deadlock or stopping.
            // (With a counted interrupt waiter, `time::poll` above just
            // walked every source: nothing to add.)
            if (*core).irq.waiters == 0 && !(*core).irq.is_empty() && crate::irq::source::drain_all(core) {
                continue;
            }
            if (*core).unfinished == (*core).parked {
                // Only fibers parked for good are left (poisoned runtime);
                // every fiber a deadlock cancelled has unwound by now.
                return finish(Some(deadlocked.unwrap_or_default()), timed_out);
            }
            // Nothing ready, some fibers blocked.
            let stop = (*core).stop_at;
            let stopped = stop.is_some_and(|t| (*core).now >= t);
            if !stopped && (time::has_timers(core) || crate::irq::armed(core)) {
                (*core).idles += 1;
                trace_event!(core, idle((*core).now));
                let next = match (time::next_deadline(core), stop) {
                    (Some(d), Some(t)) => Some(d.min(t)),
                    (d, t) => d.or(t),
                };
                let now = time::idle(core, next);
                time::advance(core, now);
                continue;
            }
            // A deadlock, or `run_for`'s limit: cancelled fibers unwind now
            // (the loop runs them, even when this pass also parked a fiber for
            // good); report when they are done, naming the fibers of every
            // pass on the way.
            if stopped {
                timed_out = true;
            } else {
                (*core).deadlocks += 1;
            }
            let report = deadlock(core);
            match &mut deadlocked {
                Some(first) => first.merge(report),
                None => deadlocked = Some(report),
            }
        }
    }
}

/// Builds the deadlock report, then unlinks the blocked fibers from their
/// queues and cancels (std) or parks (no_std) them.
///
/// # Safety
/// Exclusive access to `core`, host stack, ring empty.
unsafe fn deadlock(core: *mut Core) -> DeadlockReport {
    // SAFETY: per the contract; blocked fibers' wait_obj names a live queue.
    unsafe {
        let mut report = DeadlockReport::default();
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state == State::Blocked && (*s).wait_kind != WaitKind::Parked {
                report.push(
                    raw::id_of(core, s),
                    (*(*s).header).name,
                    raw::wait_reason(core, s),
                    raw::wait_object_name(s),
                );
            }
        }
        let cancel = cfg!(feature = "std");
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state != State::Blocked || (*s).wait_kind == WaitKind::Parked {
                continue;
            }
            if cancel && (*s).wait_kind == WaitKind::Suspended {
                // A suspended fiber keeps what its last wait gave it (`wake`
                // is not touched: a mutex handed to it, a value in its frame
                // stay its own); it is resumed cancelled by unwinding, so its
                // next blocking call unwinds (or, never started, its closure
                // never runs: `spawn::call_closure`).
                let h = (*s).header;
                (*h).cancelled = true;
                (*h).cancel = true;
                (*h).cancel_unwind = true;
                (*h).suspend = false;
                (*s).wait_kind = WaitKind::None;
                (*s).wait_obj = 0;
                raw::make_ready(core, s);
                continue;
            }
            if (*s).wait_kind.has_queue() {
                (*((*s).wait_obj as *const WaitQueue)).leave(core, s);
            }
            time::cancel_deadline(core, s);
            if cancel && !(*(*s).header).cancelled {
                (*(*s).header).cancelled = true;
                // A suspended fiber is cancelled too: it must unwind, not
                // stop again when this wake ends its wait.
                (*(*s).header).suspend = false;
                raw::wake(core, s, Wake::Cancelled);
            } else {
                // Already cancelled once and blocked again, or no std: park it
                // for good. It is in no queue, so nothing points at it.
                (*core).poisoned = true;
                (*core).parked += 1;
                (*s).wait_kind = WaitKind::Parked;
                (*s).wait_obj = 0;
            }
        }
        report
    }
}
