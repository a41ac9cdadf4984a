//! Event groups: a word of event bits fibers wait on (FreeRTOS's event
//! groups, Zephyr's `k_event`).
//!
//! ```
//! use filament::sync::{EventGroup, Want};
//! use filament::{Runtime, StaticStack};
//!
//! const RX: u32 = 1 << 0;
//! const TX: u32 = 1 << 1;
//! static LINK: EventGroup = EventGroup::new().named("link");
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! let waiter = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         // Both bits, cleared as this wait returns.
//!         LINK.wait(fib, Want::all(RX | TX).clear_on_exit()).unwrap()
//!     })
//!     .ok()
//!     .unwrap();
//! let setter = RT
//!     .spawn(STACKS[1].claim().unwrap(), |fib| {
//!         LINK.set(fib, RX).unwrap(); // not enough yet
//!         LINK.set(fib, TX).unwrap() // wakes the waiter, which clears both
//!     })
//!     .ok()
//!     .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(waiter).unwrap(), RX | TX); // the bits that satisfied it
//! assert_eq!(RT.take(setter).unwrap(), 0); // the bits after `set` returned
//! ```
//!
//! # How a set wakes waiters (FreeRTOS's `xEventGroupSetBits`)
//!
//! [`EventGroup::set`] ORs the bits in, then walks the waiters in the order
//! they started waiting. Every waiter whose condition holds *against the bits
//! as they are after the OR* is woken and handed that bit value; the
//! clear-on-exit masks of the woken waiters are collected and cleared only
//! after the walk. So two waiters for the same bit, both clearing it, are
//! both woken by one `set`: the first one's clear does not starve the second.
//! Waiters whose condition does not hold keep waiting in their place.
//!
//! A waiter whose deadline passes re-checks the bits as it resumes, as
//! FreeRTOS does: if its condition holds then, the wait succeeds (and clears,
//! if asked) instead of timing out.

use core::cell::Cell;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::{Binding, TryError, WaitError, WrongRuntime, choice_point};
use crate::fiber::{Slot, WaitKind, Wake};
use crate::handle::Fiber;
use crate::irq::source::{IrqSource, as_irq_waiter};
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

mod isr;

/// What a waiter waits for: any or all bits of a mask, and whether the
/// mask's bits are cleared when the wait succeeds.
///
/// `Want::all(0)` holds at once; `Want::any(0)` never holds (a wait for it
/// blocks until its timeout, or forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    mask: u32,
    all: bool,
    clear: bool,
}

impl Want {
    /// At least one bit of `mask` set.
    pub const fn any(mask: u32) -> Self {
        Want { mask, all: false, clear: false }
    }

    /// Every bit of `mask` set.
    pub const fn all(mask: u32) -> Self {
        Want { mask, all: true, clear: false }
    }

    /// Clears the mask's bits (all of them, not only those that were set) when
    /// the wait succeeds — atomically with the success: no other fiber sees
    /// the bits in between (FreeRTOS's `xClearOnExit`).
    pub const fn clear_on_exit(mut self) -> Self {
        self.clear = true;
        self
    }

    /// Whether a success clears the mask ([`clear_on_exit`](Self::clear_on_exit)).
    pub const fn clearing(self) -> bool {
        self.clear
    }

    /// Whether every bit is wanted ([`all`](Self::all)) rather than any.
    pub const fn wants_all(self) -> bool {
        self.all
    }

    /// The mask.
    pub const fn mask(self) -> u32 {
        self.mask
    }

    /// Whether the condition holds for `bits`.
    pub const fn holds(self, bits: u32) -> bool {
        if self.all { bits & self.mask == self.mask } else { bits & self.mask != 0 }
    }

    /// The bits a success clears.
    const fn clears(self) -> u32 {
        if self.clear { self.mask } else { 0 }
    }
}

/// One waiting fiber's record, in its stack frame.
struct Node {
    slot: *mut Slot,
    want: Want,
    prev: Cell<*const Node>,
    next: Cell<*const Node>,
    linked: Cell<bool>,
    /// Set by the waker: the bits that satisfied the condition.
    got: Cell<Option<u32>>,
}

/// A word of 32 event bits for fibers of one runtime.
///
/// Fibers [`set`](Self::set) and [`clear`](Self::clear) bits and
/// [`wait`](Self::wait) for any or all bits of a mask ([`Want`]), optionally
/// clearing them as the wait returns; [`sync`](Self::sync) sets a fiber's own
/// bit and waits for all of a mask (a rendezvous). Waiters are woken in FIFO
/// order among those whose condition holds (see [the module docs](self)).
/// Interrupt handlers (and other threads or cores) set bits with
/// [`set_bits_from_isr`](Self::set_bits_from_isr) (atomics only; the runtime
/// applies them at its next poll, with no timer service fiber needed).
///
/// Belongs to one runtime at a time (see [`sync`](crate::sync)). In a
/// deadlock report a waiter shows as
/// [`WaitReason::EventGroup`](crate::WaitReason::EventGroup) with this group's
/// address.
#[repr(C)]
pub struct EventGroup {
    /// First field: its address is the group's address (deadlock reports).
    waiters: WaitQueue,
    owner: Binding,
    bits: Cell<u32>,
    /// Oldest and newest waiter record (FIFO order).
    head: Cell<*const Node>,
    tail: Cell<*const Node>,
    /// Bits set from interrupt handlers, not yet applied (the runtime's
    /// drain applies them for waiters; every fiber-side call folds them in
    /// first).
    pub(crate) isr_bits: AtomicU32,
    /// Waiters count as interrupt waiters ([`EventGroup::isr_capable`], or a
    /// [`set_bits_from_isr`](EventGroup::set_bits_from_isr) happened).
    isr_capable: AtomicBool,
    /// Registration with the runtime's interrupt sources, the raised flag.
    src: IrqSource,
}

// SAFETY: everything but the atomics is touched only by fibers of the bound
// runtime, on the one thread running it (`Binding` gates every access);
// interrupt handlers touch only the atomics.
unsafe impl Sync for EventGroup {}
// SAFETY: a movable group is borrowed by nobody, so nobody waits in it and no
// timer service lists it.
unsafe impl Send for EventGroup {}

/// Unlinks a node when its wait ends by any route (including an unwind).
struct Unlink<'a> {
    group: &'a EventGroup,
    node: &'a Node,
}

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        if self.node.linked.get() {
            // SAFETY: a linked node is in this group's list.
            unsafe { self.group.unlink(self.node) };
        }
    }
}

impl EventGroup {
    /// A group with every bit clear. `const`, for `static`s.
    pub const fn new() -> Self {
        EventGroup {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            bits: Cell::new(0),
            head: Cell::new(ptr::null()),
            tail: Cell::new(ptr::null()),
            isr_bits: AtomicU32::new(0),
            isr_capable: AtomicBool::new(false),
            src: IrqSource::new(),
        }
    }

    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in), in trace
    /// events and in gdb's `info fibers`. `const`, so it chains onto `new`:
    ///
    /// ```
    /// static FLAGS: filament::sync::EventGroup = filament::sync::EventGroup::new().named("flags");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// Sets `bits` and wakes every waiter whose condition now holds, in FIFO
    /// order; their clear-on-exit masks are applied after all of them were
    /// evaluated. Returns the bits as they are when `set` returns (after those
    /// clears), like `xEventGroupSetBits`.
    pub fn set(&self, fib: &Fiber<'_>, bits: u32) -> Result<u32, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        // SAFETY: leased to `core`, whose running fiber we are.
        unsafe {
            self.fold_isr_bits(core);
            self.apply(core, bits);
            choice_point(core);
        }
        Ok(self.bits.get())
    }

    /// Clears `bits`; returns the bits as they were before. Never wakes
    /// anyone (no condition becomes true by clearing).
    pub fn clear(&self, fib: &Fiber<'_>, bits: u32) -> Result<u32, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        // SAFETY: leased to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        let before = self.bits.get();
        self.bits.set(before & !bits);
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(before)
    }

    /// The bits now; never blocks.
    pub fn get(&self, fib: &Fiber<'_>) -> Result<u32, WrongRuntime> {
        let (core, _lease) = self.owner.lease(fib)?;
        // SAFETY: leased to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        Ok(self.bits.get())
    }

    /// Sets bits from outside any fiber (before `run`, or between runs;
    /// nobody waits then). Returns the bits after. `WrongRuntime` while a
    /// runtime uses the group.
    pub fn set_outside(&self, bits: u32) -> Result<u32, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        let now = self.bits.get() | bits | self.isr_bits.swap(0, Ordering::Acquire);
        self.bits.set(now);
        Ok(now)
    }

    /// The bits, from outside any fiber (including bits set by interrupt
    /// handlers and not yet applied); `WrongRuntime` while a runtime uses the group.
    pub fn get_outside(&self) -> Result<u32, WrongRuntime> {
        let _lease = self.owner.lease_outside().ok_or(WrongRuntime)?;
        Ok(self.bits.get() | self.isr_bits.load(Ordering::Acquire))
    }

    /// Returns the bits at once if `want` holds (clearing if asked), else
    /// [`TryError::WouldBlock`]; never blocks.
    pub fn try_wait(&self, fib: &Fiber<'_>, want: Want) -> Result<u32, TryError> {
        let (core, _lease) = self.owner.lease(fib)?;
        // SAFETY: leased to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        self.take_if(core, want).ok_or(TryError::WouldBlock)
    }

    /// Blocks the fiber until `want` holds; returns the bits that satisfied
    /// it (before any clear-on-exit). Fails with [`WaitError::WrongRuntime`], [`WaitError::Cancelled`] (the
    /// fiber was cancelled) or [`WaitError::Unwinding`] (it unwinds and would
    /// have blocked); never times out.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>, want: Want) -> Result<u32, WaitError> {
        self.wait_until(fib, want, None)
    }

    /// Like [`wait`](Self::wait), giving up with [`WaitError::TimedOut`] after
    /// `timeout` ticks — unless `want` holds as the fiber resumes.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, want: Want, timeout: Ticks) -> Result<u32, WaitError> {
        self.wait_until(fib, want, Some(fib.now().saturating_add(timeout)))
    }

    /// A rendezvous (FreeRTOS's `xEventGroupSync`): sets `bits` (waking the
    /// waiters that now hold, as [`set`](Self::set) does), then waits until
    /// every bit of `wait_for` is set and clears `wait_for` as it returns.
    /// Returns the bits that completed the rendezvous. The fiber whose bits
    /// complete `wait_for` does not block; the others are woken by it.
    pub fn sync<'s>(&'s self, fib: &Fiber<'s>, bits: u32, wait_for: u32) -> Result<u32, WaitError> {
        self.sync_until(fib, bits, wait_for, None)
    }

    /// Like [`sync`](Self::sync), giving up with [`WaitError::TimedOut`] after
    /// `timeout` ticks (the bits it set stay set, as in FreeRTOS).
    pub fn sync_timeout<'s>(
        &'s self,
        fib: &Fiber<'s>,
        bits: u32,
        wait_for: u32,
        timeout: Ticks,
    ) -> Result<u32, WaitError> {
        self.sync_until(fib, bits, wait_for, Some(fib.now().saturating_add(timeout)))
    }

    fn sync_until<'s>(
        &'s self,
        fib: &Fiber<'s>,
        bits: u32,
        wait_for: u32,
        deadline: Option<Ticks>,
    ) -> Result<u32, WaitError> {
        let core = self.owner.bind(fib)?;
        // SAFETY: bound to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        let original = self.bits.get();
        // SAFETY: as above.
        unsafe { self.apply(core, bits) };
        let want = Want::all(wait_for).clear_on_exit();
        if want.holds(original | bits) {
            self.bits.set(self.bits.get() & !wait_for);
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
            return Ok(original | bits);
        }
        // SAFETY: bound above; `self` outlives the wait ('s).
        unsafe { self.block(fib, core, want, deadline) }
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, want: Want, deadline: Option<Ticks>) -> Result<u32, WaitError> {
        let core = self.owner.bind(fib)?;
        // SAFETY: bound to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        if let Some(bits) = self.take_if(core, want) {
            return Ok(bits);
        }
        // SAFETY: bound above; `self` outlives the wait ('s).
        unsafe { self.block(fib, core, want, deadline) }
    }

    /// Takes the condition if it holds now: returns the bits and clears.
    fn take_if(&self, core: *mut Core, want: Want) -> Option<u32> {
        let bits = self.bits.get();
        if !want.holds(bits) {
            return None;
        }
        if want.clear {
            self.bits.set(bits & !want.mask);
            // SAFETY: callers are the running fiber of `core`.
            unsafe { choice_point(core) };
        }
        Some(bits)
    }

    /// Links a record for the running fiber and blocks it until a `set` hands
    /// it bits, or its deadline passes (then re-checks, as FreeRTOS does).
    ///
    /// # Safety
    /// The group is bound to `core`, `fib`'s runtime, and outlives the wait
    /// (I5: the caller holds `&'s self` with `&Fiber<'s>`).
    unsafe fn block<'s>(
        &'s self,
        fib: &Fiber<'s>,
        core: *mut Core,
        want: Want,
        deadline: Option<Ticks>,
    ) -> Result<u32, WaitError> {
        let node = Node {
            slot: fib.slot_ptr(),
            want,
            prev: Cell::new(ptr::null()),
            next: Cell::new(ptr::null()),
            linked: Cell::new(false),
            got: Cell::new(None),
        };
        // Bound to this runtime already (the caller's `bind`): the source
        // registers with it for the run (another runtime cannot hold it while
        // the group is bound here), so interrupt bits reach this waiter even
        // if the group became interrupt-capable after it blocked, whenever
        // the runtime polls (a plain load once registered).
        if self.src.register(fib, self).is_err() {
            return Err(WaitError::WrongRuntime);
        }
        // Bits raised before the registration: applied now.
        // SAFETY: bound to `core`, whose running fiber we are.
        unsafe { self.fold_isr_bits(core) };
        if let Some(bits) = self.take_if(core, want) {
            return Ok(bits);
        }
        // `node` stays in this frame until after `guard` unlinks it (locals
        // drop in reverse order, on return and on unwind alike).
        self.link(&node);
        let guard = Unlink { group: self, node: &node };
        // SAFETY: I5 per the contract; the fiber is linked in `waiters` while
        // it waits and its record in the list. An interrupt-capable group's
        // waiter waits as a counted, marked interrupt waiter (the drain then
        // applies interrupt bits for it: `irq::source::as_irq_waiter`).
        let wake = unsafe {
            if self.isr_capable.load(Ordering::Relaxed) {
                as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::EventGroup, deadline))
            } else {
                fib.wait_on(&self.waiters, WaitKind::EventGroup, deadline)
            }
        };
        drop(guard);
        if let Some(bits) = node.got.get() {
            return Ok(bits);
        }
        // Not handed bits: timed out (or unwinding). FreeRTOS re-tests the
        // condition once more; so do we.
        // SAFETY: bound to `core`, whose running fiber we are again.
        unsafe { self.fold_isr_bits(core) };
        if let Some(bits) = self.take_if(core, want) {
            return Ok(bits);
        }
        Err(match wake {
            Wake::Unwinding => WaitError::Unwinding,
            Wake::Aborted => WaitError::Cancelled,
            _ => WaitError::TimedOut,
        })
    }

    /// ORs `bits` in and wakes the waiters that hold, in FIFO order, then
    /// applies their clears (see the module docs).
    ///
    /// # Safety
    /// Called by the running fiber of `core`, to which the group is bound or leased.
    unsafe fn apply(&self, core: *mut Core, bits: u32) {
        let now = self.bits.get() | bits;
        self.bits.set(now);
        let last = self.waiters.tail();
        if last.is_null() {
            return;
        }
        // One pass, O(waiters): the queue and the record list are in the
        // same (arrival) order, except that the list also holds records of
        // fibers whose deadline took them off the queue and that have not run
        // yet (skipped here: they are not woken by this set). Every queued
        // fiber is popped once, up to the one that was last when we began,
        // and either woken or queued again at the back: the order of those
        // that keep waiting is unchanged.
        let mut clear = 0;
        let mut n = self.head.get();
        while let Some(s) = self.waiters.pop_front() {
            // SAFETY: linked records are alive (their fibers are suspended in
            // `block`, whose guard unlinks them before the frame goes); the
            // popped fiber is blocked in `block`, so its record is linked at
            // or after `n`.
            let node = unsafe {
                while !n.is_null() && (*n).slot != s {
                    n = (*n).next.get();
                }
                if n.is_null() {
                    raw::fatal(format_args!("filament::sync::EventGroup: a waiter has no wait record"));
                }
                &*n
            };
            n = node.next.get();
            if node.want.holds(now) {
                node.got.set(Some(now));
                clear |= node.want.clears();
                // SAFETY: linked record (above); `s` is a blocked slot of
                // `core` (I2), just taken off this group's queue.
                unsafe {
                    self.unlink(node);
                    raw::wake(core, s, Wake::Signaled);
                }
            } else {
                // SAFETY: `s` is blocked, off the ready ring, and in no queue
                // since the pop above (I2).
                unsafe { self.waiters.push_back(s) };
            }
            if s == last {
                break;
            }
        }
        self.bits.set(now & !clear);
    }

    fn link(&self, node: &Node) {
        let p: *const Node = node;
        node.prev.set(self.tail.get());
        node.next.set(ptr::null());
        let t = self.tail.get();
        if t.is_null() {
            self.head.set(p);
        } else {
            // SAFETY: linked nodes are alive (their fibers are suspended in `block`).
            unsafe { (*t).next.set(p) };
        }
        self.tail.set(p);
        node.linked.set(true);
    }

    /// # Safety
    /// `node` must be linked in this group's list.
    unsafe fn unlink(&self, node: *const Node) {
        // SAFETY: linked nodes and their neighbours are alive.
        unsafe {
            let (p, n) = ((*node).prev.get(), (*node).next.get());
            if p.is_null() {
                self.head.set(n);
            } else {
                (*p).next.set(n);
            }
            if n.is_null() {
                self.tail.set(p);
            } else {
                (*n).prev.set(p);
            }
            (*node).linked.set(false);
        }
    }
}

impl Default for EventGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EventGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bits are readable only from the bound runtime's fibers.
        f.debug_struct("EventGroup").field("name", &self.waiters.name).finish_non_exhaustive()
    }
}
