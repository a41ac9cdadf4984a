//! A bounded multi-producer multi-consumer channel with inline storage.
//!
//! ```
//! use filament::sync::{Channel, RecvError};
//! use filament::{Runtime, StaticStack};
//!
//! static CH: Channel<u32, 2> = Channel::new();
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! RT.spawn_detached(STACKS[0].claim().unwrap(), |fib| {
//!     for i in 0..5 {
//!         CH.send(fib, i).unwrap(); // blocks while 2 values are queued
//!     }
//!     CH.close(fib).unwrap();
//! })
//! .ok()
//! .unwrap();
//! let rx = RT
//!     .spawn(STACKS[1].claim().unwrap(), |fib| {
//!         let mut got = heapless::Vec::<u32, 8>::new();
//!         while let Ok(v) = CH.recv(fib) {
//!             got.push(v).unwrap();
//!         }
//!         assert_eq!(CH.recv(fib), Err(RecvError::Closed));
//!         got
//!     })
//!     .ok()
//!     .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(rx).unwrap(), [0, 1, 2, 3, 4]);
//! ```

use core::cell::{Cell, UnsafeCell};
use core::fmt;

use heapless::Deque;

use super::waitlist::WaitList;
use super::{Binding, WrongRuntime, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::Core;
use crate::time::Ticks;

mod error;
pub use error::{RecvError, SendError, TryRecvError, TrySendError};

/// A bounded MPMC channel for fibers of one runtime, holding up to `CAP`
/// values inline (no heap). `CAP` must be at least 1.
///
/// * [`send`](Self::send) blocks while the channel is full,
///   [`recv`](Self::recv) while it is empty; `try_` forms never block,
///   `_timeout` forms give up after some ticks.
/// * **FIFO, with hand-off**: values come out in the order they went in.
///   Blocked receivers are served in the order they blocked, and a value sent
///   while one waits is moved straight into that receiver; blocked senders are
///   served in the order they blocked, and the room a `recv` makes is filled at
///   once with the first blocked sender's value. A `try_` call never overtakes
///   a blocked fiber.
/// * **Close**: [`close`](Self::close) wakes everyone. Receivers first drain
///   the values still queued, then get [`RecvError::Closed`]. Senders —
///   including those blocked at the time of the close — get
///   [`SendError::Closed`] with their value back.
/// * **Nothing lost, nothing duplicated**: every error that refuses a value
///   returns it; dropping the channel drops the values still queued, once.
/// * Belongs to one runtime at a time (see [`sync`](crate::sync)).
///
/// In a deadlock report a blocked receiver shows as
/// [`WaitReason::Recv`](crate::WaitReason::Recv) with the channel's address, a
/// blocked sender as [`WaitReason::Send`](crate::WaitReason::Send) with an
/// address inside the channel.
#[repr(C)]
pub struct Channel<T, const CAP: usize> {
    /// First field: its address is the channel's address (deadlock reports).
    /// Non-empty only while `buf` is empty.
    receivers: WaitList<T>,
    /// Blocked senders, holding their values. Non-empty only while `buf` is full.
    senders: WaitList<T>,
    owner: Binding,
    closed: Cell<bool>,
    buf: UnsafeCell<Deque<T, CAP>>,
}

// SAFETY: everything but `owner` (atomic) is touched only by fibers of the
// bound runtime, on the one thread running it at a time (`Binding::check`
// gates every access; `&mut self` methods are exclusive). Values move between
// fibers that may run on different threads over time, hence `T: Send`.
unsafe impl<T: Send, const CAP: usize> Sync for Channel<T, CAP> {}
// SAFETY: a movable channel is borrowed by nobody, so nobody waits in it; its
// values move with it.
unsafe impl<T: Send, const CAP: usize> Send for Channel<T, CAP> {}

impl<T, const CAP: usize> Channel<T, CAP> {
    /// An empty, open channel. `const`, for `static`s.
    pub const fn new() -> Self {
        const { assert!(CAP > 0, "a Channel needs a capacity of at least 1") };
        Channel {
            receivers: WaitList::new(),
            senders: WaitList::new(),
            owner: Binding::new(),
            closed: Cell::new(false),
            buf: UnsafeCell::new(Deque::new()),
        }
    }

    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static JOBS: filament::sync::Channel<u32, 4> = filament::sync::Channel::new().named("jobs");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.receivers.queue.name = name;
        self.senders.queue.name = name;
        self
    }

    /// The capacity, `CAP`.
    pub const fn capacity(&self) -> usize {
        CAP
    }

    /// Sends `value`, blocking the fiber while the channel is full. Fails with
    /// [`SendError::Closed`] (also if closed while blocked) or
    /// [`SendError::WrongRuntime`], giving the value back.
    #[inline]
    pub fn send<'s>(&'s self, fib: &Fiber<'s>, value: T) -> Result<(), SendError<T>> {
        self.send_until(fib, value, None)
    }

    /// Like [`send`](Self::send), giving up with [`SendError::TimedOut`] (and
    /// the value) if there is no room within `timeout` ticks.
    pub fn send_timeout<'s>(&'s self, fib: &Fiber<'s>, value: T, timeout: Ticks) -> Result<(), SendError<T>> {
        self.send_until(fib, value, Some(fib.now().saturating_add(timeout)))
    }

    /// Sends `value` if there is room (or a waiting receiver); never blocks.
    pub fn try_send(&self, fib: &Fiber<'_>, value: T) -> Result<(), TrySendError<T>> {
        let Ok((core, _lease)) = self.owner.lease(fib) else { return Err(TrySendError::WrongRuntime(value)) };
        // SAFETY: we are the running fiber of the bound runtime.
        unsafe {
            self.offer(core, value)?;
            choice_point(core);
        }
        Ok(())
    }

    /// Receives the oldest value, blocking the fiber while the channel is
    /// empty. Fails with [`RecvError::Closed`] once the channel is closed and
    /// drained, or [`RecvError::WrongRuntime`].
    #[inline]
    pub fn recv<'s>(&'s self, fib: &Fiber<'s>) -> Result<T, RecvError> {
        self.recv_until(fib, None)
    }

    /// Like [`recv`](Self::recv), giving up with [`RecvError::TimedOut`] if no
    /// value comes within `timeout` ticks.
    pub fn recv_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<T, RecvError> {
        self.recv_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// A copy of the oldest value, leaving it queued (FreeRTOS's
    /// `xQueuePeek`); never blocks. `Empty` when nothing is queued.
    ///
    /// `T::clone` runs while the value stays in the channel, so the channel
    /// refuses every call made meanwhile — by `clone` itself, or by other
    /// fibers if `clone` switches — with `WrongRuntime` (nothing changes).
    pub fn try_peek(&self, fib: &Fiber<'_>) -> Result<T, TryRecvError>
    where
        T: Clone,
    {
        let (_core, _lease) = self.owner.lease(fib)?;
        // Dropped before the lease, also when `clone` unwinds.
        let _shut = self.owner.lock_out();
        // SAFETY: bound runtime's fiber; no other reference to the buffer
        // lives, and none can be made while `_shut` lives (every call on the
        // channel fails before touching the buffer), so the `&T` that
        // `clone` gets stays valid.
        let buf = unsafe { &*self.buf.get() };
        match buf.front() {
            Some(v) => Ok(v.clone()),
            None if self.closed.get() => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Free places in the buffer now (`CAP - len`).
    pub fn spaces(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        Ok(CAP - self.len(fib)?)
    }

    /// Sends `value` to the *front*: it is received before everything queued
    /// (FreeRTOS's `xQueueSendToFront`, for urgent messages); never blocks.
    /// A waiting receiver gets it at once. `Full` (with the value) when there
    /// is no room.
    pub fn try_send_front(&self, fib: &Fiber<'_>, value: T) -> Result<(), TrySendError<T>> {
        let Ok((core, _lease)) = self.owner.lease(fib) else { return Err(TrySendError::WrongRuntime(value)) };
        if self.closed.get() {
            return Err(TrySendError::Closed(value));
        }
        // SAFETY: we are the running fiber of the bound runtime. Receivers
        // wait only while the buffer is empty, so front and back coincide.
        unsafe {
            let mut value = Some(value);
            if self.receivers.wake_one(core, |slot| slot.set(value.take())) {
                choice_point(core);
                return Ok(());
            }
            let value = value.take().expect("value not handed over");
            (*self.buf.get()).push_front(value).map_err(TrySendError::Full)?;
            self.receivers.selectors.notify_one(core);
            choice_point(core);
        }
        Ok(())
    }

    /// Sends `value`, replacing the newest queued value if the channel is
    /// full (a one-slot mailbox that always holds the latest value: FreeRTOS's
    /// `xQueueOverwrite` on a `Channel<T, 1>`); never blocks. Returns the value
    /// it replaced, if any — nothing is dropped behind the caller's back.
    pub fn overwrite(&self, fib: &Fiber<'_>, value: T) -> Result<Option<T>, TrySendError<T>> {
        let Ok((core, _lease)) = self.owner.lease(fib) else { return Err(TrySendError::WrongRuntime(value)) };
        // SAFETY: we are the running fiber of the bound runtime.
        unsafe {
            let replaced =
                if (*self.buf.get()).is_full() && !self.closed.get() { (*self.buf.get()).pop_back() } else { None };
            match self.offer(core, value) {
                Ok(()) => {
                    choice_point(core);
                    Ok(replaced)
                }
                Err(e) => Err(e),
            }
        }
    }

    /// Drops every queued value (blocked senders then fill the room, in
    /// FIFO order) and returns how many were dropped.
    pub fn clear(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        let mut dropped = 0;
        // SAFETY: we are the running fiber of the bound runtime; the buffer
        // is not borrowed across the values' drops or the wake-ups.
        unsafe {
            while let Some(v) = (*self.buf.get()).pop_front() {
                drop(v);
                dropped += 1;
            }
            // Room for the senders that wait (they wait only while full).
            while !(*self.buf.get()).is_full()
                && self.senders.wake_one(core, |slot| {
                    if let Some(sv) = slot.take() {
                        let _ = (*self.buf.get()).push_back(sv);
                    }
                })
            {}
            if !(*self.buf.get()).is_full() {
                self.senders.selectors.notify_all(core);
            }
            choice_point(core);
        }
        Ok(dropped)
    }

    /// Receives the oldest value if there is one; never blocks.
    pub fn try_recv(&self, fib: &Fiber<'_>) -> Result<T, TryRecvError> {
        let (core, _lease) = self.owner.lease(fib)?;
        // SAFETY: we are the running fiber of the bound runtime.
        unsafe {
            let v = self.take(core)?;
            choice_point(core);
            Ok(v)
        }
    }

    /// Closes the channel: no more sends; receivers get what is queued, then
    /// [`RecvError::Closed`]. Wakes every blocked fiber (blocked senders get
    /// their values back). Closing a closed channel does nothing.
    pub fn close(&self, fib: &Fiber<'_>) -> Result<(), WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        if self.closed.replace(true) {
            return Ok(());
        }
        // SAFETY: we are the running fiber of the bound runtime. Waking with
        // the node untouched tells each waiter the channel closed.
        unsafe {
            while self.receivers.wake_one(core, |_| {}) {}
            while self.senders.wake_one(core, |_| {}) {}
            self.receivers.selectors.notify_all(core);
            self.senders.selectors.notify_all(core);
            choice_point(core);
        }
        Ok(())
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self, fib: &Fiber<'_>) -> Result<bool, WrongRuntime> {
        let _lease = self.owner.lease(fib)?;
        Ok(self.closed.get())
    }

    /// Values queued now.
    pub fn len(&self, fib: &Fiber<'_>) -> Result<usize, WrongRuntime> {
        let _lease = self.owner.lease(fib)?;
        // SAFETY: bound runtime's fiber; no other reference to the buffer lives.
        Ok(unsafe { (*self.buf.get()).len() })
    }

    /// Whether no value is queued now.
    pub fn is_empty(&self, fib: &Fiber<'_>) -> Result<bool, WrongRuntime> {
        self.len(fib).map(|n| n == 0)
    }

    /// Takes the oldest queued value through `&mut` (no fiber needed: nobody
    /// else can use the channel meanwhile). Blocked fibers cannot exist then.
    pub fn drain_one(&mut self) -> Option<T> {
        self.buf.get_mut().pop_front()
    }

    // Inline (as the yield is): a ping-pong's whole hand-off — bind check,
    // pop the waiting receiver, move the value into its cell, make it ready,
    // block — runs in the caller's frame, so the registers the switch
    // clobbers are saved once per caller, not once per message. The rare
    // paths (binding, timeouts, cancellation, preemption) stay out of line.
    #[inline(always)]
    fn send_until<'s>(&'s self, fib: &Fiber<'s>, value: T, deadline: Option<Ticks>) -> Result<(), SendError<T>> {
        let Ok(core) = self.owner.bind(fib) else { return Err(SendError::WrongRuntime(value)) };
        // SAFETY: we are the running fiber of the bound runtime.
        let value = match unsafe { self.offer(core, value) } {
            Ok(()) => {
                // SAFETY: as above.
                unsafe { choice_point(core) };
                return Ok(());
            }
            Err(TrySendError::Full(v)) => v,
            Err(TrySendError::Closed(v) | TrySendError::WrongRuntime(v)) => return Err(SendError::Closed(v)),
        };
        // Full: wait with the value in our node; a receiver moves it into the
        // buffer (handing us the room) when it makes room.
        // SAFETY: the list lives in `self`, which outlives this call ('s), and
        // belongs to this runtime (checked above).
        let (wake, left) = unsafe { self.senders.wait(fib, WaitKind::Send, deadline, Some(value)) };
        match left {
            None => Ok(()),
            Some(v) if wake == Wake::TimedOut => Err(SendError::TimedOut(v)),
            Some(v) if wake == Wake::Unwinding => Err(SendError::Unwinding(v)),
            Some(v) if wake == Wake::Aborted => Err(SendError::Cancelled(v)),
            // Woken without the value taken: the channel was closed.
            Some(v) => Err(SendError::Closed(v)),
        }
    }

    // Inline: see `send_until`.
    #[inline(always)]
    fn recv_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<T, RecvError> {
        let core = self.owner.bind(fib)?;
        // SAFETY: we are the running fiber of the bound runtime.
        match unsafe { self.take(core) } {
            Ok(v) => {
                // SAFETY: as above.
                unsafe { choice_point(core) };
                return Ok(v);
            }
            Err(TryRecvError::Empty) => {}
            Err(TryRecvError::Closed | TryRecvError::WrongRuntime) => return Err(RecvError::Closed),
        }
        // Empty: wait with an empty node; a sender moves its value into it.
        // SAFETY: the list lives in `self`, which outlives this call ('s), and
        // belongs to this runtime (checked above).
        let (wake, got) = unsafe { self.receivers.wait(fib, WaitKind::Recv, deadline, None) };
        match got {
            Some(v) => Ok(v),
            None if wake == Wake::TimedOut => Err(RecvError::TimedOut),
            None if wake == Wake::Unwinding => Err(RecvError::Unwinding),
            None if wake == Wake::Aborted => Err(RecvError::Cancelled),
            // Woken without a value: the channel was closed (and is empty).
            None => Err(RecvError::Closed),
        }
    }

    /// Like [`try_send`](Self::try_send), from outside any fiber: pre-fills
    /// the channel before `run` (or between runs). Fails with
    /// [`TrySendError::WrongRuntime`] while a runtime uses the channel (its
    /// `run` is on, or a fiber holds a lease), handing the value back.
    pub fn try_send_outside(&self, value: T) -> Result<(), TrySendError<T>> {
        let Some(_lease) = self.owner.lease_outside() else { return Err(TrySendError::WrongRuntime(value)) };
        // SAFETY: the lease makes this the only code touching the channel; a
        // free channel has no waiters, so `offer` touches no runtime (null).
        unsafe { self.offer(core::ptr::null_mut(), value) }
    }

    /// Like [`try_recv`](Self::try_recv), from outside any fiber (between
    /// runs). `WrongRuntime` while a runtime uses the channel.
    pub fn try_recv_outside(&self) -> Result<T, TryRecvError> {
        let Some(_lease) = self.owner.lease_outside() else { return Err(TryRecvError::WrongRuntime) };
        // SAFETY: as in `try_send_outside`.
        unsafe { self.take(core::ptr::null_mut()) }
    }

    /// Values queued now, from outside any fiber; `WrongRuntime` while a
    /// runtime uses the channel.
    pub fn len_outside(&self) -> Result<usize, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        // SAFETY: the lease makes this the only code touching the buffer.
        Ok(unsafe { (*self.buf.get()).len() })
    }

    /// Like [`close`](Self::close), from outside any fiber (nobody can be
    /// waiting then); `WrongRuntime` while a runtime uses the channel.
    pub fn close_outside(&self) -> Result<(), WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        self.closed.set(true);
        Ok(())
    }

    /// Non-blocking send: to the first waiting receiver, else into the buffer.
    ///
    /// # Safety
    /// Called by the running fiber of the bound runtime `core`.
    #[inline(always)]
    unsafe fn offer(&self, core: *mut Core, value: T) -> Result<(), TrySendError<T>> {
        if self.closed.get() {
            return Err(TrySendError::Closed(value));
        }
        // Receivers wait only while the buffer is empty, so handing the value
        // to the first one keeps FIFO order.
        let mut value = Some(value);
        // SAFETY: forwarded contract.
        if unsafe { self.receivers.wake_one(core, |slot| slot.set(value.take())) } {
            return Ok(());
        }
        let value = value.take().expect("value not handed over");
        // SAFETY: bound runtime's fiber; no other reference to the buffer lives
        // (none is held across a switch).
        let buf = unsafe { &mut *self.buf.get() };
        buf.push_back(value).map_err(TrySendError::Full)?;
        // A value is queued and no receiver waited: wake a select watching.
        // SAFETY: forwarded contract (an unbound channel has no selectors).
        unsafe { self.receivers.selectors.notify_one(core) };
        Ok(())
    }

    /// Non-blocking receive: the oldest queued value, refilled from the first
    /// blocked sender.
    ///
    /// # Safety
    /// Called by the running fiber of the bound runtime `core`.
    #[inline(always)]
    unsafe fn take(&self, core: *mut Core) -> Result<T, TryRecvError> {
        // SAFETY: bound runtime's fiber; no other reference to the buffer lives.
        let buf = unsafe { &mut *self.buf.get() };
        let Some(v) = buf.pop_front() else {
            return Err(if self.closed.get() { TryRecvError::Closed } else { TryRecvError::Empty });
        };
        // Senders wait only while the buffer is full: one slot just freed.
        // SAFETY: forwarded contract; `buf` is not used inside the closure's caller.
        unsafe {
            let refilled = self.senders.wake_one(core, |slot| {
                if let Some(sv) = slot.take() {
                    // Cannot fail: we just made room.
                    let _ = buf.push_back(sv);
                }
            });
            if !refilled {
                // Room and no sender waited: wake a select watching.
                self.senders.selectors.notify_one(core);
            }
        }
        Ok(v)
    }
}

/// The hooks [`select`](super::select) uses.
impl<T, const CAP: usize> Channel<T, CAP> {
    /// Binds the channel to `fib`'s runtime for the run.
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.owner.bind(fib).is_ok()
    }

    /// [`take`](Self::take) for a select's receive case.
    ///
    /// # Safety
    /// As for `take`.
    pub(crate) unsafe fn select_take(&self, core: *mut Core) -> Result<T, TryRecvError> {
        // SAFETY: forwarded contract.
        unsafe { self.take(core) }
    }

    /// [`offer`](Self::offer) for a select's send case.
    ///
    /// # Safety
    /// As for `offer`.
    pub(crate) unsafe fn select_offer(&self, core: *mut Core, value: T) -> Result<(), TrySendError<T>> {
        // SAFETY: forwarded contract.
        unsafe { self.offer(core, value) }
    }

    /// Whether a receive would complete now (a value, or closed).
    ///
    /// # Safety
    /// Called by a fiber of the bound runtime.
    pub(crate) unsafe fn select_recv_ready(&self) -> bool {
        // SAFETY: forwarded contract; no other reference to the buffer lives.
        self.closed.get() || unsafe { !(*self.buf.get()).is_empty() }
    }

    /// Whether a send would complete now (room, or closed).
    ///
    /// # Safety
    /// As for `select_recv_ready`.
    pub(crate) unsafe fn select_send_ready(&self) -> bool {
        // SAFETY: forwarded contract; no other reference to the buffer lives.
        self.closed.get() || unsafe { !(*self.buf.get()).is_full() }
    }

    /// The selector lists of the receive and the send side.
    pub(crate) fn select_lists(&self) -> (&super::select::SelList, &super::select::SelList) {
        (&self.receivers.selectors, &self.senders.selectors)
    }

    /// The addresses a plain receiver and a plain sender are reported with.
    pub(crate) fn select_addrs(&self) -> (usize, usize) {
        (&raw const self.receivers.queue as usize, &raw const self.senders.queue as usize)
    }
}

impl<T, const CAP: usize> Default for Channel<T, CAP> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const CAP: usize> fmt::Debug for Channel<T, CAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is readable only from the bound runtime's fibers.
        f.debug_struct("Channel").field("capacity", &CAP).finish_non_exhaustive()
    }
}
