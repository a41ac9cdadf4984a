//! Fiber notifications: a 32-bit value in every fiber's control block, the
//! lightest wake there is (FreeRTOS task notifications).
//!
//! Every fiber owns one notification value and a *pending* flag. Another
//! fiber updates them with [`Fiber::notify`] and one [`Notify`] action (set
//! bits, increment, overwrite, set only if nothing is pending, or just mark
//! pending); the owner waits for them with one of two disciplines:
//!
//! * **event bits / mailbox** — [`Fiber::notify_wait`]: returns once a
//!   notification is pending, with the value as it was then; bits in
//!   `clear_on_entry` are cleared before waiting (only if nothing was pending
//!   yet), bits in `clear_on_exit` after a notification was received (FreeRTOS
//!   `xTaskNotifyWait`);
//! * **counting semaphore** — [`Fiber::notify_take`]: waits until the value is
//!   non-zero, then takes it all ([`Take::All`], a binary semaphore) or one
//!   ([`Take::One`], a counting semaphore) and returns the count it saw
//!   (FreeRTOS `ulTaskNotifyTake`, except that a wake by a notification that
//!   left the value at 0 does not end the wait).
//!
//! # Cost and storage
//!
//! Eight bytes in the fiber's header (on its own stack, next to its name): a
//! `u32` value and the pending flag. No object to declare, no binding, no
//! queue: a waiting fiber blocks in no wait queue (its reason says
//! `notification`), and a notify is a bounds check, a generation compare, an
//! update and, if the target waits, one wake.
//!
//! ```
//! use filament::{Notify, Runtime, StaticStack, Take};
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! let worker = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         let mut got = 0;
//!         while got < 3 {
//!             got += fib.notify_take(Take::One).unwrap(); // blocks until notified
//!         }
//!         fib.notify_wait(0, u32::MAX).unwrap() // event bits, cleared on exit
//!     })
//!     .unwrap();
//! let id = worker.id();
//! RT.spawn_detached(STACKS[1].claim().unwrap(), move |fib| {
//!     for _ in 0..3 {
//!         fib.notify(id, Notify::Increment).unwrap();
//!         fib.yield_now();
//!     }
//!     fib.notify(id, Notify::SetBits(0b101)).unwrap();
//! })
//! .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(worker).unwrap(), 0b101);
//! ```

use core::fmt;

use crate::fiber::{FiberId, Slot, State, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;

/// How a notification changes the target's value (FreeRTOS `eNotifyAction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notify {
    /// Marks a notification pending; the value is unchanged (`eNoAction`).
    Signal,
    /// ORs these bits into the value (`eSetBits`): event flags.
    SetBits(u32),
    /// Adds one, wrapping at `u32::MAX` (`eIncrement`): a counting semaphore.
    Increment,
    /// Replaces the value, pending or not (`eSetValueWithOverwrite`): a
    /// one-slot mailbox whose latest value wins.
    Overwrite(u32),
    /// Sets the value only if no notification is pending
    /// (`eSetValueWithoutOverwrite`); otherwise fails with
    /// [`NotifyError::Pending`] and hands the value back.
    SetIfEmpty(u32),
}

/// What [`Fiber::notify_take`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Clears the value to zero (a binary semaphore, or "all events so far").
    All,
    /// Decrements the value by one (a counting semaphore).
    One,
}

/// Why a notification was not delivered. Nothing changed in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyError {
    /// No live fiber has this id (it finished, or its slot was reused).
    NoSuchFiber(FiberId),
    /// [`Notify::SetIfEmpty`] found a notification pending: the value it
    /// would have written, handed back.
    Pending(u32),
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::NoSuchFiber(id) => write!(f, "no live fiber {id} to notify"),
            NotifyError::Pending(v) => {
                write!(f, "a notification is already pending; value {v:#x} not written")
            }
        }
    }
}

impl core::error::Error for NotifyError {}

/// Why a notification wait ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotifyWaitError {
    /// The deadline passed first; `value` is the notification value then
    /// (`clear_on_exit` not applied: nothing was received).
    TimedOut {
        /// The notification value when the wait gave up.
        value: u32,
    },
    /// This fiber is unwinding and nothing was pending: a fiber never blocks
    /// while it unwinds (std only).
    Unwinding,
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

impl fmt::Display for NotifyWaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyWaitError::TimedOut { value } => {
                write!(f, "timed out waiting for a notification (value {value:#x})")
            }
            NotifyWaitError::Unwinding => f.write_str("cannot wait for a notification while unwinding"),
            NotifyWaitError::Cancelled => f.write_str("the waiting fiber was cancelled"),
        }
    }
}

impl core::error::Error for NotifyWaitError {}

/// A fiber's notification state, in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Note {
    pub value: u32,
    pub pending: bool,
}

impl Note {
    pub(crate) const EMPTY: Note = Note { value: 0, pending: false };

    /// Applies `action` (the notifier's half).
    pub(crate) fn apply(&mut self, action: Notify) -> Result<(), NotifyError> {
        match action {
            Notify::Signal => {}
            Notify::SetBits(b) => self.value |= b,
            Notify::Increment => self.value = self.value.wrapping_add(1),
            Notify::Overwrite(v) => self.value = v,
            Notify::SetIfEmpty(v) if self.pending => return Err(NotifyError::Pending(v)),
            Notify::SetIfEmpty(v) => self.value = v,
        }
        self.pending = true;
        Ok(())
    }

    /// Adds `n` increments at once (wrapping), marking a notification pending.
    pub(crate) fn add(&mut self, n: u32) -> Result<(), NotifyError> {
        self.value = self.value.wrapping_add(n);
        self.pending = true;
        Ok(())
    }

    /// [`Fiber::notify_wait`]'s check: the value if a notification is
    /// pending (consuming it, clearing `clear_on_exit`).
    pub(crate) fn receive(&mut self, clear_on_exit: u32) -> Option<u32> {
        if !self.pending {
            return None;
        }
        let v = self.value;
        self.value &= !clear_on_exit;
        self.pending = false;
        Some(v)
    }

    /// [`Fiber::notify_take`]'s check: the count if the value is non-zero.
    pub(crate) fn take(&mut self, how: Take) -> Option<u32> {
        let v = self.value;
        if v == 0 {
            return None;
        }
        self.value = match how {
            Take::All => 0,
            Take::One => v - 1,
        };
        self.pending = false;
        Some(v)
    }
}

/// The live, unfinished fiber `id` of `core`, if any.
///
/// # Safety
/// Exclusive access to `core` (a fiber of it runs, or its lock is held).
pub(crate) unsafe fn target(core: *mut Core, id: FiberId) -> Option<*mut Slot> {
    // SAFETY: the index is bounds-checked, then the slot read in place.
    unsafe {
        if id.index as usize >= (*core).cap {
            return None;
        }
        let s = (*core).slots.add(id.index as usize);
        let live = matches!((*s).state, State::Ready | State::Blocked);
        (live && (*s).generation == id.generation).then_some(s)
    }
}

/// Delivers `action` to fiber `id` and wakes it if it waits for a
/// notification. Returns whether a fiber was woken.
///
/// # Safety
/// Exclusive access to `core`, from a context that may make fibers ready (a
/// running fiber, or the host outside `run`).
#[inline]
pub(crate) unsafe fn deliver(core: *mut Core, id: FiberId, action: Notify) -> Result<bool, NotifyError> {
    // SAFETY: forwarded contract.
    unsafe { deliver_with::<false>(core, id, |note| note.apply(action)) }
}

/// [`deliver`] with the update as a closure (`IrqFiberNotifier` adds many
/// increments at once). `BY_RUNNING`: called by the running fiber of `core`
/// (`Fiber::notify`), whose wake links without the empty-ring test.
///
/// # Safety
/// As for [`deliver`]; with `BY_RUNNING`, a fiber of `core` is running.
#[inline(always)]
pub(crate) unsafe fn deliver_with<const BY_RUNNING: bool>(
    core: *mut Core,
    id: FiberId,
    update: impl FnOnce(&mut Note) -> Result<(), NotifyError>,
) -> Result<bool, NotifyError> {
    // SAFETY: `target` returns a Ready or Blocked slot of `core`, whose header
    // lives (on its stack) until the fiber finishes.
    unsafe {
        let s = target(core, id).ok_or(NotifyError::NoSuchFiber(id))?;
        update(&mut (*(*s).header).note)?;
        if (*s).state == State::Blocked && (*s).wait_kind == WaitKind::Notify {
            // A waiter re-checks its condition when it runs (a take waits for
            // a non-zero value, which `Signal` does not give it).
            if BY_RUNNING {
                raw::wake_by_running(core, s, Wake::Signaled);
            } else {
                raw::wake(core, s, Wake::Signaled);
            }
            return Ok(true);
        }
        Ok(false)
    }
}

impl<'s> Fiber<'s> {
    /// Notifies fiber `id` (which may be this fiber) with `action` and wakes it
    /// if it waits in [`notify_wait`](Self::notify_wait) or
    /// [`notify_take`](Self::notify_take). The notifier keeps running; the
    /// woken fiber runs after the fibers already ready (FIFO).
    ///
    /// Fails, changing nothing, if `id` is not a live fiber of this runtime
    /// or if [`Notify::SetIfEmpty`] meets a pending notification (the value
    /// is handed back).
    #[inline]
    pub fn notify(&self, id: FiberId, action: Notify) -> Result<(), NotifyError> {
        let core = self.core_ptr();
        // SAFETY: we are the running fiber of `core`.
        let woke = unsafe { deliver_with::<true>(core, id, |note| note.apply(action))? };
        if woke {
            // SAFETY: as above.
            unsafe { crate::sync::choice_point(core) };
        }
        Ok(())
    }

    /// This fiber's notification value (not consumed).
    pub fn notify_value(&self) -> u32 {
        // SAFETY: our own header, while we run.
        unsafe { (*(*self.slot_ptr()).header).note.value }
    }

    /// Whether a notification is pending for this fiber.
    pub fn notify_pending(&self) -> bool {
        // SAFETY: our own header, while we run.
        unsafe { (*(*self.slot_ptr()).header).note.pending }
    }

    /// Clears `bits` of this fiber's notification value and the pending flag
    /// without waiting; returns the value before (FreeRTOS
    /// `xTaskNotifyStateClear` + `ulTaskNotifyValueClear`).
    pub fn notify_clear(&self, bits: u32) -> u32 {
        // SAFETY: our own header, while we run.
        unsafe {
            let note = &mut (*(*self.slot_ptr()).header).note;
            let v = note.value;
            note.value &= !bits;
            note.pending = false;
            v
        }
    }

    /// Waits until a notification is pending, then returns the value as
    /// received and clears `clear_on_exit` bits of it (FreeRTOS
    /// `xTaskNotifyWait` without a timeout). If none was pending on entry,
    /// `clear_on_entry` bits are cleared first.
    pub fn notify_wait(&self, clear_on_entry: u32, clear_on_exit: u32) -> Result<u32, NotifyWaitError> {
        self.notify_wait_until(clear_on_entry, clear_on_exit, None)
    }

    /// [`notify_wait`](Self::notify_wait) that gives up after `timeout` ticks.
    pub fn notify_wait_timeout(
        &self,
        clear_on_entry: u32,
        clear_on_exit: u32,
        timeout: Ticks,
    ) -> Result<u32, NotifyWaitError> {
        let deadline = self.now().saturating_add(timeout);
        self.notify_wait_until(clear_on_entry, clear_on_exit, Some(deadline))
    }

    fn notify_wait_until(
        &self,
        clear_on_entry: u32,
        clear_on_exit: u32,
        deadline: Option<Ticks>,
    ) -> Result<u32, NotifyWaitError> {
        // SAFETY: our own header, while we run (the borrow ends before any
        // switch, in which other fibers may notify us).
        let note = || unsafe { &mut (*(*self.slot_ptr()).header).note };
        if !note().pending {
            note().value &= !clear_on_entry;
        }
        loop {
            if let Some(v) = note().receive(clear_on_exit) {
                return Ok(v);
            }
            self.block_for_note(deadline).map_err(|e| self.timed_out(e))?;
        }
    }

    /// Waits until this fiber's notification value is non-zero, then takes
    /// it ([`Take::All`]: to zero; [`Take::One`]: minus one) and returns the
    /// value it had (FreeRTOS `ulTaskNotifyTake` without a timeout).
    #[inline]
    pub fn notify_take(&self, how: Take) -> Result<u32, NotifyWaitError> {
        self.notify_take_until(how, None)
    }

    /// [`notify_take`](Self::notify_take) that gives up after `timeout` ticks.
    pub fn notify_take_timeout(&self, how: Take, timeout: Ticks) -> Result<u32, NotifyWaitError> {
        let deadline = self.now().saturating_add(timeout);
        self.notify_take_until(how, Some(deadline))
    }

    // Inline, as `Channel::recv`: the hand-off runs in the caller's frame.
    #[inline(always)]
    fn notify_take_until(&self, how: Take, deadline: Option<Ticks>) -> Result<u32, NotifyWaitError> {
        loop {
            // SAFETY: our own header, while we run; no switch in between.
            if let Some(v) = unsafe { (*(*self.slot_ptr()).header).note.take(how) } {
                return Ok(v);
            }
            self.block_for_note(deadline).map_err(|e| self.timed_out(e))?;
        }
    }

    /// The error for a wait that ended without a notification.
    fn timed_out(&self, wake: Wake) -> NotifyWaitError {
        match wake {
            Wake::Unwinding => NotifyWaitError::Unwinding,
            Wake::Aborted => NotifyWaitError::Cancelled,
            _ => NotifyWaitError::TimedOut { value: self.notify_value() },
        }
    }

    /// Blocks until a notification arrives or `deadline`. `Ok` on a
    /// notification (re-check), `Err(how)` otherwise.
    #[inline(always)]
    fn block_for_note(&self, deadline: Option<Ticks>) -> Result<(), Wake> {
        // SAFETY: we are the running fiber; a notification wait is in no
        // queue (`WaitKind::Notify`), so there is nothing to outlive. With an
        // `IrqFiberNotifier` attached, an interrupt may notify us: wait as an
        // interrupt waiter (polled, never a deadlock), blocking once.
        let wake = unsafe {
            if (*(*self.slot_ptr()).header).isr_notifiers != 0 {
                crate::irq::as_irq_waiter(self.core_ptr(), || self.wait_off_queue(WaitKind::Notify, 0, deadline))
            } else {
                self.wait_off_queue(WaitKind::Notify, 0, deadline)
            }
        };
        match wake {
            Wake::Signaled => Ok(()),
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_follow_freertos() {
        let mut n = Note::EMPTY;
        n.apply(Notify::SetBits(0b01)).unwrap();
        n.apply(Notify::SetBits(0b10)).unwrap();
        assert_eq!(n, Note { value: 0b11, pending: true });
        assert_eq!(n.apply(Notify::SetIfEmpty(7)), Err(NotifyError::Pending(7)));
        assert_eq!(n.value, 0b11, "a refused SetIfEmpty changes nothing");
        n.apply(Notify::Overwrite(9)).unwrap();
        assert_eq!(n.receive(0b1), Some(9));
        assert_eq!(n, Note { value: 8, pending: false });
        n.apply(Notify::SetIfEmpty(5)).unwrap();
        assert_eq!(n.value, 5);
        n.value = u32::MAX;
        n.apply(Notify::Increment).unwrap();
        assert_eq!(n.value, 0, "increment wraps");
        assert_eq!(n.take(Take::All), None, "take needs a non-zero value even if pending");
        n.apply(Notify::Signal).unwrap();
        assert_eq!(n.value, 0);
        assert!(n.pending);
        n.value = 3;
        assert_eq!(n.take(Take::One), Some(3));
        assert_eq!(n.take(Take::All), Some(2));
        assert_eq!(n, Note::EMPTY);
    }
}
