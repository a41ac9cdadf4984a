//! The cases a select waits on: one small object per source, on the caller's
//! stack, holding the source, the case's registration node and its outcome.

use core::fmt;

use super::list::{SelList, SelNode};
use super::sources;
use crate::handle::Fiber;
use crate::irq::IrqSignal;
use crate::sync::{Channel, Event, RecvError, Semaphore, TryRecvError, TrySendError};

/// One case of a [`select`](super::select): receive on a channel
/// ([`RecvCase`]), send on one ([`SendCase`]), take a semaphore permit
/// ([`AcquireCase`]), wait for an event ([`EventCase`]) or an interrupt
/// signal ([`IrqCase`]). Sealed: only filament's case types implement it.
pub trait Case<'s>: sealed::CaseImpl<'s> {}

pub(crate) mod sealed {
    use super::*;

    /// What the select needs from a case. Not nameable outside the crate.
    pub trait CaseImpl<'s> {
        /// Binds the source to the fiber's runtime for the run.
        fn bind(&self, fib: &Fiber<'s>) -> bool;
        /// Prepares the case for a new select (clears a previous outcome that
        /// holds no value).
        fn begin(&mut self);
        /// Consumes the source if it is ready, recording the outcome; whether
        /// the case fired.
        ///
        /// # Safety
        /// Called by the running fiber of the runtime the source is bound to.
        unsafe fn fire(&mut self, fib: &Fiber<'_>) -> bool;
        /// Whether [`fire`](Self::fire) would succeed now (for passing a wake on).
        ///
        /// # Safety
        /// As for `fire`.
        unsafe fn ready(&self) -> bool;
        /// The case's node and its source's selector list.
        fn parts(&self) -> (&SelNode, &SelList);
        /// Whether only an interrupt may make the source ready, so a blocked
        /// select must be counted as an interrupt waiter (the runtime then
        /// polls its sources and idles instead of reporting a deadlock): an
        /// [`IrqSignal`], an interrupt-capable semaphore or event.
        fn polled(&self) -> bool {
            false
        }
        /// Whether the case cannot fire again until its outcome is taken (a
        /// `RecvCase` holding a value, a `SendCase` with nothing to send): a
        /// blocking select does not watch its source (it would take wakes
        /// meant for others and fire nothing).
        fn spent(&self) -> bool {
            false
        }
        /// The source for reports: its wait queue's address (the one its
        /// plain waiters are reported with) tagged with its kind
        /// ([`sources`](super::super::sources) `RECV` ... `IRQ`).
        fn source(&self) -> usize;
    }
}

/// Receive on a [`Channel`]. Fires when a value is queued (it is moved into
/// the case) or the channel is closed and drained; take the outcome with
/// [`take`](Self::take). While it holds an untaken value it cannot fire again.
pub struct RecvCase<'s, T, const CAP: usize> {
    ch: &'s Channel<T, CAP>,
    node: SelNode,
    got: Option<Result<T, RecvError>>,
}

impl<'s, T, const CAP: usize> RecvCase<'s, T, CAP> {
    /// A receive case on `ch`.
    pub const fn new(ch: &'s Channel<T, CAP>) -> Self {
        RecvCase { ch, node: SelNode::new(), got: None }
    }

    /// The outcome, once the case fired: the value, or
    /// [`RecvError::Closed`]. `None` if it did not fire (or was taken).
    pub fn take(&mut self) -> Option<Result<T, RecvError>> {
        self.got.take()
    }
}

impl<'s, T, const CAP: usize> Case<'s> for RecvCase<'s, T, CAP> {}

impl<'s, T, const CAP: usize> sealed::CaseImpl<'s> for RecvCase<'s, T, CAP> {
    fn bind(&self, fib: &Fiber<'s>) -> bool {
        self.ch.select_bind(fib)
    }
    fn begin(&mut self) {}
    ///
    /// # Safety
    /// As for `CaseImpl::fire`: called by the running fiber of the runtime the source is bound to.
    unsafe fn fire(&mut self, fib: &Fiber<'_>) -> bool {
        let core = fib.core_ptr();
        // SAFETY: forwarded contract (a cheap look before the full take).
        if self.got.is_some() || !unsafe { self.ch.select_recv_ready() } {
            return false;
        }
        // SAFETY: forwarded contract.
        match unsafe { self.ch.select_take(core) } {
            Ok(v) => self.got = Some(Ok(v)),
            Err(TryRecvError::Closed) => self.got = Some(Err(RecvError::Closed)),
            Err(_) => return false,
        }
        true
    }
    fn spent(&self) -> bool {
        self.got.is_some()
    }
    ///
    /// # Safety
    /// As for `CaseImpl::ready`: called by the running fiber of the runtime the source is bound to.
    unsafe fn ready(&self) -> bool {
        // SAFETY: forwarded contract.
        self.got.is_none() && unsafe { self.ch.select_recv_ready() }
    }
    fn parts(&self) -> (&SelNode, &SelList) {
        (&self.node, self.ch.select_lists().0)
    }
    fn source(&self) -> usize {
        self.ch.select_addrs().0 | sources::RECV
    }
}

impl<T, const CAP: usize> fmt::Debug for RecvCase<'_, T, CAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvCase").field("channel", &(self.ch as *const Channel<T, CAP>)).finish_non_exhaustive()
    }
}

/// Send a value on a [`Channel`]. Fires when the value went in (to a waiting
/// receiver or into the buffer) or the channel is closed; until it fires the
/// value stays in the case, so it is never lost: [`take_value`](Self::take_value)
/// gives it back (after a timeout, a close, or another case firing).
pub struct SendCase<'s, T, const CAP: usize> {
    ch: &'s Channel<T, CAP>,
    node: SelNode,
    value: Option<T>,
    sent: bool,
    closed: bool,
}

impl<'s, T, const CAP: usize> SendCase<'s, T, CAP> {
    /// A case sending `value` on `ch`.
    pub const fn new(ch: &'s Channel<T, CAP>, value: T) -> Self {
        SendCase { ch, node: SelNode::new(), value: Some(value), sent: false, closed: false }
    }

    /// Whether the value was sent (by the last select that fired this case).
    pub fn is_sent(&self) -> bool {
        self.sent
    }

    /// Whether the case fired because the channel is closed (the value is
    /// still in the case).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The value, if it was not sent.
    pub fn take_value(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Loads a value to send in the next select (returns the unsent one, if any).
    pub fn set_value(&mut self, value: T) -> Option<T> {
        self.sent = false;
        self.value.replace(value)
    }
}

impl<'s, T, const CAP: usize> Case<'s> for SendCase<'s, T, CAP> {}

impl<'s, T, const CAP: usize> sealed::CaseImpl<'s> for SendCase<'s, T, CAP> {
    fn bind(&self, fib: &Fiber<'s>) -> bool {
        self.ch.select_bind(fib)
    }
    fn begin(&mut self) {
        self.sent = false;
        self.closed = false;
    }
    ///
    /// # Safety
    /// As for `CaseImpl::fire`: called by the running fiber of the runtime the source is bound to.
    unsafe fn fire(&mut self, fib: &Fiber<'_>) -> bool {
        let core = fib.core_ptr();
        // SAFETY: forwarded contract (a cheap look before the full offer).
        if self.value.is_none() || !unsafe { self.ch.select_send_ready() } {
            return false;
        }
        let Some(v) = self.value.take() else { return false };
        // SAFETY: forwarded contract.
        match unsafe { self.ch.select_offer(core, v) } {
            Ok(()) => self.sent = true,
            Err(TrySendError::Closed(v)) => {
                self.value = Some(v);
                self.closed = true;
            }
            Err(TrySendError::Full(v) | TrySendError::WrongRuntime(v)) => {
                self.value = Some(v);
                return false;
            }
        }
        true
    }
    fn spent(&self) -> bool {
        self.value.is_none()
    }
    ///
    /// # Safety
    /// As for `CaseImpl::ready`: called by the running fiber of the runtime the source is bound to.
    unsafe fn ready(&self) -> bool {
        // SAFETY: forwarded contract.
        self.value.is_some() && unsafe { self.ch.select_send_ready() }
    }
    fn parts(&self) -> (&SelNode, &SelList) {
        (&self.node, self.ch.select_lists().1)
    }
    fn source(&self) -> usize {
        self.ch.select_addrs().1 | sources::SEND
    }
}

impl<T, const CAP: usize> fmt::Debug for SendCase<'_, T, CAP> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendCase")
            .field("channel", &(self.ch as *const Channel<T, CAP>))
            .field("has_value", &self.value.is_some())
            .field("sent", &self.sent)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Take one permit of a [`Semaphore`]. Fires when a permit is available
/// (it is taken: the caller owns it, as after `acquire`).
#[derive(Debug)]
pub struct AcquireCase<'s> {
    sem: &'s Semaphore,
    node: SelNode,
    acquired: bool,
}

impl<'s> AcquireCase<'s> {
    /// A case taking a permit of `sem`.
    pub const fn new(sem: &'s Semaphore) -> Self {
        AcquireCase { sem, node: SelNode::new(), acquired: false }
    }

    /// Whether the last select took a permit through this case.
    pub fn is_acquired(&self) -> bool {
        self.acquired
    }
}

impl<'s> Case<'s> for AcquireCase<'s> {}

impl<'s> sealed::CaseImpl<'s> for AcquireCase<'s> {
    fn bind(&self, fib: &Fiber<'s>) -> bool {
        self.sem.select_bind(fib)
    }
    fn begin(&mut self) {
        self.acquired = false;
    }
    ///
    /// # Safety
    /// As for `CaseImpl::fire`: called by the running fiber of the runtime the source is bound to.
    unsafe fn fire(&mut self, fib: &Fiber<'_>) -> bool {
        self.acquired = self.sem.select_take(fib.core_ptr());
        self.acquired
    }
    fn polled(&self) -> bool {
        self.sem.select_polled()
    }
    ///
    /// # Safety
    /// As for `CaseImpl::ready`: called by the running fiber of the runtime the source is bound to.
    unsafe fn ready(&self) -> bool {
        self.sem.select_ready()
    }
    fn parts(&self) -> (&SelNode, &SelList) {
        (&self.node, self.sem.select_list())
    }
    fn source(&self) -> usize {
        self.sem.select_addr() | sources::SEMAPHORE
    }
}

/// Wait for an [`Event`] to be set. Fires while it is set (it stays set:
/// an event is not consumed), and — like a plain waiter — when a `set` woke
/// the select, even if the event was reset before the fiber ran (unless a
/// lower case is ready then: exactly one case fires).
#[derive(Debug)]
pub struct EventCase<'s> {
    ev: &'s Event,
    node: SelNode,
    fired: bool,
}

impl<'s> EventCase<'s> {
    /// A case waiting for `ev`.
    pub const fn new(ev: &'s Event) -> Self {
        EventCase { ev, node: SelNode::new(), fired: false }
    }

    /// Whether the last select fired through this case.
    pub fn is_fired(&self) -> bool {
        self.fired
    }
}

impl<'s> Case<'s> for EventCase<'s> {}

impl<'s> sealed::CaseImpl<'s> for EventCase<'s> {
    fn bind(&self, fib: &Fiber<'s>) -> bool {
        self.ev.select_bind(fib)
    }
    fn begin(&mut self) {
        self.fired = false;
    }
    ///
    /// # Safety
    /// As for `CaseImpl::fire`: called by the running fiber of the runtime the source is bound to.
    unsafe fn fire(&mut self, fib: &Fiber<'_>) -> bool {
        // Set now, or set (and maybe reset) since it woke us: as for a plain
        // waiter, a pulse that woke the select counts.
        self.fired = self.node.take_signaled() | self.ev.select_is_set(fib.core_ptr());
        self.fired
    }
    ///
    /// # Safety
    /// As for `CaseImpl::ready`: called by the running fiber of the runtime the source is bound to.
    unsafe fn ready(&self) -> bool {
        self.ev.select_ready()
    }
    fn polled(&self) -> bool {
        self.ev.select_polled()
    }
    fn parts(&self) -> (&SelNode, &SelList) {
        (&self.node, self.ev.select_list())
    }
    fn source(&self) -> usize {
        self.ev.select_addr() | sources::EVENT
    }
}

/// Wait for an [`IrqSignal`]. Fires when notifications are pending and takes
/// them all, like [`IrqSignal::wait`]; [`count`](Self::count) says how many.
/// While a select with this case blocks, the runtime polls its signals (and
/// does not report a deadlock: an interrupt may still come).
#[derive(Debug)]
pub struct IrqCase<'s> {
    sig: &'s IrqSignal,
    node: SelNode,
    count: u64,
}

impl<'s> IrqCase<'s> {
    /// A case waiting for `sig`.
    pub const fn new(sig: &'s IrqSignal) -> Self {
        IrqCase { sig, node: SelNode::new(), count: 0 }
    }

    /// The notifications the last select took through this case (0: it did
    /// not fire).
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<'s> Case<'s> for IrqCase<'s> {}

impl<'s> sealed::CaseImpl<'s> for IrqCase<'s> {
    fn bind(&self, fib: &Fiber<'s>) -> bool {
        self.sig.select_bind(fib)
    }
    fn begin(&mut self) {
        self.count = 0;
    }
    ///
    /// # Safety
    /// As for `CaseImpl::fire`: called by the running fiber of the runtime the source is bound to.
    unsafe fn fire(&mut self, _fib: &Fiber<'_>) -> bool {
        self.count = self.sig.select_take();
        self.count > 0
    }
    ///
    /// # Safety
    /// As for `CaseImpl::ready`: called by the running fiber of the runtime the source is bound to.
    unsafe fn ready(&self) -> bool {
        self.sig.pending() > 0
    }
    fn polled(&self) -> bool {
        true
    }
    fn parts(&self) -> (&SelNode, &SelList) {
        (&self.node, self.sig.select_list())
    }
    fn source(&self) -> usize {
        self.sig.select_addr() | sources::IRQ
    }
}
