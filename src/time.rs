//! Ticks, sleeping, deadlines and timeouts.
//!
//! The clock is the user's: the runtime only knows the tick number it was last
//! told ([`Runtime::set_now`](crate::Runtime::set_now), or what the [`Idle`] hook
//! returns). Deadlines sit in a binary min-heap inside the runtime (one entry
//! per fiber at most, so capacity `N` suffices): arming, cancelling and
//! expiring are O(log n); nothing scans all fibers per tick.

use crate::fiber::{Slot, Wake};
use crate::raw::{self, Core};

/// A point or span of time in the user's ticks.
///
/// `Ticks::MAX` means "never": as a deadline (or a timer's expiry) it is
/// never reached, and as a timeout (`_timeout` methods,
/// [`Fiber::sleep`](crate::Fiber::sleep)) it waits forever. Deadlines and
/// timer expiries saturate at it. A clock may still read `Ticks::MAX`
/// ([`Runtime::set_now`](crate::Runtime::set_now), an [`Idle`] hook): every
/// earlier deadline has then passed, and every deadline or expiry set from
/// then on saturates to "never" — the end of time, where only notifications
/// wake fibers.
pub type Ticks = u64;

/// One armed deadline.
#[derive(Clone, Copy)]
pub(crate) struct TimerEntry {
    pub(crate) deadline: Ticks,
    pub(crate) seq: u64,
    pub(crate) slot: *mut Slot,
}

impl TimerEntry {
    pub(crate) const EMPTY: TimerEntry = TimerEntry { deadline: 0, seq: 0, slot: core::ptr::null_mut() };

    pub(crate) fn key(&self) -> (Ticks, u64) {
        (self.deadline, self.seq)
    }
}

/// What `run` does when no fiber is ready but some sleep or wait for an
/// interrupt: wait for time to pass and return the new tick count.
///
/// A hook with a clock of its own ([`now`](Idle::now) returns `Some`) may
/// start it anywhere: its first reading in each `run` call fixes where its
/// time line meets the runtime's. A clock behind the runtime's time (a fresh
/// [`HostClock`](crate::host::HostClock) on a runtime that already ran)
/// continues from the runtime's time; a clock at or ahead of it (an absolute
/// tick counter) is taken as it is, and the runtime's time moves to it. Such
/// a hook's `idle` receives `now` and `next_deadline` on its own time line. A
/// hook without `now` works on the runtime's time line: `idle` gets the
/// runtime's time and must answer a time at or after it (a smaller answer
/// does not move time back: sleeps would wait).
///
/// A panic in a hook stops the program (it would unwind through the
/// scheduler in the middle of a switch).
///
/// On bare metal: enable interrupts and `hlt`, then return the tick counter
/// your timer interrupt maintains. Under `std`: [`HostClock`](crate::host::HostClock)
/// sleeps until the next deadline or an [`IrqSignal`](crate::IrqSignal) fires.
pub trait Idle {
    /// Called with the current tick and the earliest deadline (`None` if only
    /// interrupt sources can wake fibers). Returns the tick count now.
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks;

    /// The current tick, if this hook knows a clock that advances on its own
    /// (a timer-interrupt counter, the host's monotonic clock). While timers
    /// are armed the runtime reads it at every yield and block, so sleepers wake
    /// on time even when other fibers never stop yielding. `None` (the
    /// default): time advances only when the runtime idles.
    fn now(&mut self) -> Option<Ticks> {
        None
    }
}

/// The default idle policy: virtual time. Jumps the clock straight to the next
/// deadline, so sleeps take no real time (deterministic tests). With only
/// interrupt sources armed it keeps `now` and waits for a notification: under
/// `std` it parks the thread (at most 1 ms at a time), without `std` it spins
/// politely (`spin_loop`; give bare-metal runtimes an idle hook that halts).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIdle;

impl Idle for NoIdle {
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
        match next_deadline {
            Some(d) => d.max(now),
            None => {
                // Only interrupt sources: park (std) rather than spin. The
                // epoch is read here, after the runtime polled, so a
                // notification in between is seen up to 1 ms late (a
                // `HostClock` closes that window; see `irq::host_wake`).
                #[cfg(feature = "std")]
                crate::irq::host_wake::sleep(crate::irq::host_wake::epoch(), Some(std::time::Duration::from_millis(1)));
                #[cfg(not(feature = "std"))]
                core::hint::spin_loop();
                now
            }
        }
    }
}

/// Any `FnMut(now, next_deadline) -> new_now` is an idle hook (without a
/// free-running clock).
impl<F: FnMut(Ticks, Option<Ticks>) -> Ticks> Idle for F {
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
        self(now, next_deadline)
    }
}

/// The heap's `i`-th entry.
///
/// # Safety
/// `core` is bound (its `timers` array has `cap` entries) and `i < cap`.
unsafe fn entry(core: *mut Core, i: usize) -> *mut TimerEntry {
    // SAFETY: callers pass i < cap; the timers array has cap entries.
    unsafe { (*core).timers.add(i) }
}

/// Stores `e` at position `i` and records the position in its slot.
///
/// # Safety
/// As for [`entry`]; `e.slot` is a live slot of `core`; exclusive access.
unsafe fn place(core: *mut Core, i: usize, e: TimerEntry) {
    // SAFETY: i < cap; e.slot is a live slot.
    unsafe {
        *entry(core, i) = e;
        (*e.slot).timer_pos = i as u32;
    }
}

/// Restores heap order upwards from `i`.
///
/// # Safety
/// `i < ntimers`; entries `0..ntimers` are valid; exclusive access.
unsafe fn sift_up(core: *mut Core, mut i: usize) {
    // SAFETY: i < ntimers.
    unsafe {
        let e = *entry(core, i);
        while i > 0 {
            let p = (i - 1) / 2;
            let pe = *entry(core, p);
            if pe.key() <= e.key() {
                break;
            }
            place(core, i, pe);
            i = p;
        }
        place(core, i, e);
    }
}

/// Restores heap order downwards from `i`.
///
/// # Safety
/// As for [`sift_up`].
unsafe fn sift_down(core: *mut Core, mut i: usize) {
    // SAFETY: i < ntimers.
    unsafe {
        let n = (*core).ntimers;
        let e = *entry(core, i);
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && (*entry(core, r)).key() < (*entry(core, l)).key() { r } else { l };
            let ce = *entry(core, c);
            if e.key() <= ce.key() {
                break;
            }
            place(core, i, ce);
            i = c;
        }
        place(core, i, e);
    }
}

/// Arms a deadline for `s`, a fiber that is blocking right now (replacing any
/// previous one). Called only by `raw::block_current`, after it marked `s`
/// Blocked: the heap holds Blocked slots only.
///
/// # Safety
/// `s` is a Blocked slot of `core`; exclusive access.
pub(crate) unsafe fn arm(core: *mut Core, s: *mut Slot, deadline: Ticks) {
    // SAFETY: at most one entry per slot, so ntimers < cap here.
    unsafe {
        debug_assert!((*s).state == crate::fiber::State::Blocked);
        cancel_deadline(core, s);
        let i = (*core).ntimers;
        (*core).ntimers += 1;
        (*core).pollers += 1;
        raw::refresh_slow(core);
        (*core).timer_seq += 1;
        place(core, i, TimerEntry { deadline, seq: (*core).timer_seq, slot: s });
        sift_up(core, i);
    }
}

/// Removes `s`'s deadline if it has one.
///
/// # Safety
/// `s` is a live slot of `core`; exclusive access.
///
/// Inline: a wake-up without a deadline (the common case) is one compare.
#[inline(always)]
pub(crate) unsafe fn cancel_deadline(core: *mut Core, s: *mut Slot) {
    // SAFETY: forwarded contract.
    unsafe {
        if (*s).timer_pos != u32::MAX {
            cancel_armed_deadline(core, s);
        }
    }
}

/// [`cancel_deadline`] for a slot with an armed deadline.
///
/// # Safety
/// As for [`cancel_deadline`], and `s` has a deadline (`timer_pos` set).
#[inline(never)]
unsafe fn cancel_armed_deadline(core: *mut Core, s: *mut Slot) {
    // SAFETY: timer_pos indexes s's entry.
    unsafe {
        let i = (*s).timer_pos;
        (*s).timer_pos = u32::MAX;
        let i = i as usize;
        (*core).ntimers -= 1;
        (*core).pollers -= 1;
        raw::refresh_slow(core);
        let last = (*core).ntimers;
        if i != last {
            let moved = *entry(core, last);
            place(core, i, moved);
            sift_down(core, i);
            sift_up(core, (*moved.slot).timer_pos as usize);
        }
    }
}

/// Whether any deadline is armed.
///
/// # Safety
/// Exclusive access.
pub(crate) unsafe fn has_timers(core: *mut Core) -> bool {
    // SAFETY: plain read.
    unsafe { (*core).ntimers > 0 }
}

/// The earliest deadline, if any.
///
/// # Safety
/// Exclusive access.
pub(crate) unsafe fn next_deadline(core: *mut Core) -> Option<Ticks> {
    // SAFETY: entry 0 is valid when ntimers > 0.
    unsafe { ((*core).ntimers > 0).then(|| (*entry(core, 0)).deadline) }
}

/// Moves the clock to `now` (never backwards) and wakes every fiber whose
/// deadline is `<= now`, earliest first, with `TimedOut`.
///
/// # Safety
/// Exclusive access; not on a woken fiber's stack (waking only queues).
pub(crate) unsafe fn advance(core: *mut Core, now: Ticks) {
    // SAFETY: heap entries point at blocked slots; a timed-out fiber is also
    // unlinked from the wait queue it sat in (if any).
    unsafe {
        if now > (*core).now {
            (*core).now = now;
        }
        loop {
            if (*core).ntimers == 0 {
                break;
            }
            let e = *entry(core, 0);
            if e.deadline > (*core).now {
                break;
            }
            let s = e.slot;
            if (*s).state != crate::fiber::State::Blocked {
                // Impossible by construction (only `block_current` arms, after
                // marking the fiber Blocked; every wake cancels). Stop rather
                // than relink a fiber that is not blocked.
                raw::fatal(format_args!("timer heap entry of a fiber that is not blocked"));
            }
            cancel_deadline(core, s);
            if (*s).wait_kind.has_queue() {
                (*((*s).wait_obj as *const crate::wait::WaitQueue)).leave(core, s);
            }
            raw::wake(core, s, Wake::TimedOut);
        }
    }
}

/// Ends `s`'s timed wait now, as if its deadline had passed (FreeRTOS's
/// `xTaskAbortDelay`). Returns `false` (and changes nothing) unless `s` is
/// blocked with a deadline armed.
///
/// # Safety
/// Exclusive access to `core`; `s` a slot of `core`.
pub(crate) unsafe fn expire_now(core: *mut Core, s: *mut Slot) -> bool {
    // SAFETY: a slot with a heap entry is Blocked (I3) and, with a queue
    // kind, linked in the queue at `wait_obj` (I2): exactly what `advance`
    // does when the deadline passes.
    unsafe {
        if (*s).state != crate::fiber::State::Blocked || (*s).timer_pos == u32::MAX {
            return false;
        }
        cancel_deadline(core, s);
        if (*s).wait_kind.has_queue() {
            (*((*s).wait_obj as *const crate::wait::WaitQueue)).leave(core, s);
        }
        raw::wake(core, s, Wake::TimedOut);
        true
    }
}

/// Polls interrupt signals and the clock when anything waits on them: one
/// load and a not-taken branch otherwise.
///
/// # Safety
/// Exclusive access to `core`, inside `run`.
#[inline(always)]
pub(crate) unsafe fn poll(core: *mut Core) {
    // SAFETY: plain read of the runtime's own counter.
    if unsafe { (*core).pollers } != 0 {
        // SAFETY: forwarded.
        unsafe { poll_slow(core) }
    }
}

/// [`poll`]'s rare case: some fiber waits on a timer or an interrupt signal.
///
/// # Safety
/// As for [`poll`].
#[cold]
#[inline(never)]
unsafe fn poll_slow(core: *mut Core) {
    // SAFETY: per `poll`; the clock pointer is valid while `run` runs.
    unsafe {
        crate::irq::drain(core);
        if (*core).ntimers > 0
            && let Some(now) = clock_now(core)
        {
            if now >= (*entry(core, 0)).deadline {
                advance(core, now);
            } else if now > (*core).now {
                (*core).now = now;
            }
        }
    }
}

/// Reads the idle hook's free-running clock, if it has one, and moves the
/// runtime's time to it (never backwards), waking every fiber whose deadline
/// it reached. Called by `Fiber::now`, so deadlines count from the present.
///
/// # Safety
/// Exclusive access to `core`, inside `run` (the clock pointer is valid), by
/// the running fiber or the host context.
pub(crate) unsafe fn refresh(core: *mut Core) {
    // SAFETY: per the contract; `advance` only queues fibers that are Blocked.
    unsafe {
        if let Some(now) = clock_now(core) {
            advance(core, now);
        }
    }
}

/// The running `run` call's clock, read through [`Idle::now`] and put on the
/// runtime's time line (see [`clock_time`]); `None` if it has no such clock.
///
/// # Safety
/// Exclusive access to `core`, inside `run` (the clock pointer is valid).
unsafe fn clock_now(core: *mut Core) -> Option<Ticks> {
    // SAFETY: per the contract.
    unsafe {
        let clock = (*core).clock?;
        let raw = raw::no_unwind("Idle::now", || (*clock).now())?;
        Some(clock_time(core, raw))
    }
}

/// Calls the running `run` call's idle hook with the runtime's time and next
/// deadline translated to the hook's own time line, and returns the time it
/// reports on the runtime's.
///
/// # Safety
/// Exclusive access to `core`, inside `run`, on the host context.
pub(crate) unsafe fn idle(core: *mut Core, next: Option<Ticks>) -> Ticks {
    // SAFETY: per the contract; `run` installed the hook.
    unsafe {
        let off = (*core).clock_offset;
        let now = (*core).now.saturating_sub(off);
        let next = next.map(|d| if d == Ticks::MAX { d } else { d.saturating_sub(off) });
        // No hook installed: the run's hook is `NoIdle` (`run::run_body`).
        let raw = match (*core).clock {
            Some(hook) => raw::no_unwind("the Idle hook", || (*hook).idle(now, next)),
            None => NoIdle.idle(now, next),
        };
        raw.saturating_add(off)
    }
}

/// Puts a reading of the current `run` call's clock on the runtime's time line.
///
/// The runtime's time never goes backwards, but a clock may start anywhere:
/// a fresh `HostClock` counts from 0, while the runtime may have reached a
/// day of ticks in earlier runs. Read as it is, such a clock would stall
/// every sleep until it caught up. So the first [`Idle::now`] reading of each
/// `run` call fixes an offset: a clock behind the runtime's time continues
/// from it; a clock at or ahead of it (an absolute tick counter) is taken as
/// it is. A hook without `now` has offset 0: it works on the runtime's time
/// line (it is given the runtime's time and its answer is taken as such).
///
/// # Safety
/// Exclusive access to `core`.
unsafe fn clock_time(core: *mut Core, raw: Ticks) -> Ticks {
    // SAFETY: plain reads and writes of the runtime's own fields.
    unsafe {
        if !(*core).clock_synced {
            (*core).clock_synced = true;
            (*core).clock_offset = (*core).now.saturating_sub(raw);
        }
        raw.saturating_add((*core).clock_offset)
    }
}

/// Starts a `run` call's clock: its first [`Idle::now`] reading fixes its
/// offset (see [`clock_time`]); without one the offset is 0.
///
/// # Safety
/// Exclusive access to `core`; `run` just installed the hook.
pub(crate) unsafe fn start_clock(core: *mut Core) {
    // SAFETY: per the contract.
    unsafe {
        (*core).clock_synced = false;
        (*core).clock_offset = 0;
        match clock_now(core) {
            // A clock ahead of the runtime's time: the runtime's time moves
            // to it now (a limit or a timeout counts from the clock's time).
            Some(now) => advance(core, now),
            // No clock of its own: the hook works on the runtime's time line.
            None => (*core).clock_synced = true,
        }
    }
}

/// Fixes slot pointers in the heap after the runtime moved.
///
/// # Safety
/// Exclusive access; `old`/`new` are the previous and current slot bases.
pub(crate) unsafe fn rebase(core: *mut Core, old: *mut Slot, new: *mut Slot) {
    // SAFETY: each entry's slot pointed into the old array.
    unsafe {
        for i in 0..(*core).ntimers {
            let e = entry(core, i);
            (*e).slot = new.offset((*e).slot.offset_from(old));
        }
    }
}
