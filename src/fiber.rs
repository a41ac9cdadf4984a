//! The fiber control block, the fiber header kept on the fiber's own stack, and
//! the entry glue that runs a closure there.
//!
//! # Where things live
//!
//! ```text
//!  Runtime (inline array)          the fiber's stack (top part)
//!  ┌──────────────┐               ┌────────────────────────────────┐ top
//!  │ Slot (≤64 B) │──header──────►│ Header: stack token, joiners,   │
//!  │  sp ─────────┼──┐            │   payload ptr, drop fns, name   │
//!  │  next        │  │            ├────────────────────────────────┤
//!  │  canary ─────┼─┐│            │ payload: closure F, later the   │
//!  │  gen, state  │ ││            │   outcome Result<T, JoinError>  │
//!  └──────────────┘ ││            ├────────────────────────────────┤ 16-aligned
//!                   │└───────────►│ frames ... saved context        │
//!                   │             │ ... paint ...                   │
//!                   └────────────►│ canary words                    │ lo
//!                                 └────────────────────────────────┘
//! ```
//!
//! The closure is moved onto the fiber's stack at spawn and read out (moved onto
//! the fiber's first frame) when the fiber first runs. The outcome is written
//! into the same payload bytes when the closure returns. Whoever takes the
//! outcome (a joiner, [`Runtime::take`](crate::Runtime::take)) moves it out; if
//! nobody does, the runtime drops it when the fiber is detached or the runtime
//! is dropped. The stack token is dropped only after the payload is gone.

use core::fmt;
use core::mem::ManuallyDrop;
use core::ptr;

use crate::stack::Stack;
use crate::wait::WaitQueue;

/// Identifies a fiber within its runtime: slot index plus a generation that
/// changes every time the slot is reused, so a stale id is detected.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiberId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl FiberId {
    /// The slot index (0-based) in the runtime's fiber table.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// How many fibers used this slot before this one.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

impl fmt::Debug for FiberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for FiberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a blocked fiber waits for. `Display` names the object and prints
/// addresses in hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitReason {
    /// Waiting for another fiber to finish.
    Join(FiberId),
    /// Waiting for a [`Mutex`](crate::sync::Mutex) at this address.
    Mutex(usize),
    /// Waiting for a [`Semaphore`](crate::sync::Semaphore) permit.
    Semaphore(usize),
    /// Waiting for room in a [`Channel`](crate::sync::Channel).
    Send(usize),
    /// Waiting for a value from a [`Channel`](crate::sync::Channel).
    Recv(usize),
    /// Waiting for an [`Event`](crate::sync::Event).
    Event(usize),
    /// Waiting at a [`Barrier`](crate::sync::Barrier).
    Barrier(usize),
    /// Waiting for an interrupt-side object: an [`IrqSignal`](crate::IrqSignal),
    /// an [`IrqQueue`](crate::IrqQueue).
    Irq(usize),
    /// Waiting for bits of an [`EventGroup`](crate::sync::EventGroup).
    EventGroup(usize),
    /// Sleeping until this tick.
    Sleep(u64),
    /// Suspended by [`Fiber::suspend`](crate::Fiber::suspend) until another
    /// fiber calls [`Fiber::resume`](crate::Fiber::resume).
    Suspended,
    /// Waiting for a notification ([`Fiber::notify_wait`](crate::Fiber::notify_wait),
    /// [`notify_take`](crate::Fiber::notify_take)).
    Notify,
    /// Waiting in a [`select`](crate::sync::select) on every listed source.
    Select(crate::sync::select::SelectSources),
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WaitReason::Join(id) => write!(f, "join {id}"),
            WaitReason::Mutex(a) => write!(f, "mutex {a:#x}"),
            WaitReason::Semaphore(a) => write!(f, "semaphore {a:#x}"),
            WaitReason::Send(a) => write!(f, "send on channel {a:#x}"),
            WaitReason::Recv(a) => write!(f, "recv on channel {a:#x}"),
            WaitReason::Event(a) => write!(f, "event {a:#x}"),
            WaitReason::Barrier(a) => write!(f, "barrier {a:#x}"),
            WaitReason::Irq(a) => write!(f, "interrupt signal {a:#x}"),
            WaitReason::EventGroup(a) => write!(f, "event group {a:#x}"),
            WaitReason::Sleep(u64::MAX) => f.write_str("nothing (parked for good)"),
            WaitReason::Sleep(t) => write!(f, "sleep until tick {t}"),
            WaitReason::Notify => f.write_str("notification"),
            WaitReason::Suspended => f.write_str("resume (suspended)"),
            WaitReason::Select(ref s) => fmt::Display::fmt(s, f),
        }
    }
}

/// A fiber's state as reported by the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FiberState {
    /// Waiting in the ready queue (or never run yet).
    Ready,
    /// The fiber that is running now.
    Running,
    /// Off the ready queue until woken.
    Blocked(WaitReason),
    /// Returned (or panicked); its outcome waits to be taken.
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum State {
    Free,
    Ready,
    Blocked,
    Finished,
}

/// The kind of thing a blocked fiber waits on (the report's vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WaitKind {
    Join,
    Mutex,
    Semaphore,
    Send,
    Recv,
    Event,
    Barrier,
    Irq,
    EventGroup,
    /// Not in any wait queue; `wait_obj` is the deadline tick.
    Sleep,
    /// Suspended by `Fiber::suspend` until `Fiber::resume`: in no wait
    /// queue, `wait_obj` is 0.
    Suspended,
    /// Waiting for a notification to itself (`Fiber::notify_wait`/`notify_take`):
    /// in no wait queue, `wait_obj` is 0.
    Notify,
    /// Not waiting (every slot that is not Blocked): `wait_obj` is 0, except
    /// for a fiber woken through a select's node, until its select returns:
    /// the select's record (I12).
    None,
    /// Parked for good by a deadlock it was already cancelled for once: in no
    /// queue, never woken (reported as sleeping until `u64::MAX`).
    Parked,
    /// In a select: in no wait queue (its cases' nodes are linked in the
    /// sources' selector lists); `wait_obj` is the address of the
    /// select's record in its frame (`SelectWait`, starting with its
    /// `SelectSources`).
    Select,
}

impl WaitKind {
    /// Whether a fiber waiting with this kind is linked in the wait queue
    /// whose address is its `wait_obj`.
    #[inline]
    pub(crate) fn has_queue(self) -> bool {
        !matches!(
            self,
            WaitKind::Sleep
                | WaitKind::Notify
                | WaitKind::Suspended
                | WaitKind::None
                | WaitKind::Parked
                | WaitKind::Select
        )
    }
}

/// How a blocked fiber was woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Wake {
    /// The thing it waited for happened (or may have: re-check).
    Signaled,
    /// Its deadline passed first.
    TimedOut,
    /// The runtime gave up on it (deadlock); it must unwind or exit.
    Cancelled,
    /// It is unwinding and did not block at all (see `raw::unwinding`).
    Unwinding,
    /// `Fiber::cancel` asked it to stop: its wait ended early, or it did not
    /// block at all (a cancelled fiber's blocking calls fail at once). The
    /// call fails with its `Cancelled` error, as a timeout would: nothing was
    /// handed to it.
    Aborted,
}

/// The fiber control block. Hot fields first; kept within one cache line.
#[repr(C)]
pub(crate) struct Slot {
    /// Saved stack pointer while not running.
    pub sp: *mut u8,
    /// Link in the ready ring, a wait queue or the free list.
    pub next: *mut Slot,
    /// Low end of the fiber's stack (the canary words).
    pub lo: *mut u8,
    /// The header at the top of the fiber's stack.
    pub header: *mut Header,
    /// While blocked: the address of the wait queue it is linked in (or the
    /// deadline tick for a plain sleep). See `wait_kind`.
    pub wait_obj: usize,
    /// Times this fiber was switched in (counted at switch-out). `u64`: at a
    /// billion switches a second it wraps after 584 years.
    pub runs: u64,
    pub generation: u32,
    pub state: State,
    pub started: bool,
    pub wake: Wake,
    /// What kind of object `wait_obj` names, while blocked.
    pub wait_kind: WaitKind,
    /// Effective priority level (`0..PRIORITY_LEVELS`): the base priority in
    /// the header, raised by priority inheritance. A Ready fiber is linked in
    /// the ring of this level (invariant I11).
    pub priority: u8,
    /// The fiber has its own FP control state (`Fiber::set_fp_control`).
    pub fp: bool,
    /// Spawned with `spawn_local`: its closure, frames and outcome belong to
    /// the runtime's local thread until the slot is freed.
    pub local: bool,
    /// Counted as an interrupt waiter (`irq::source::as_irq_waiter`): blocked
    /// on an interrupt-capable object, or woken from it and not yet returned.
    pub irq_wait: bool,
    /// Position in the timer heap, `u32::MAX` when it has no deadline.
    pub timer_pos: u32,
}

const _: () = assert!(core::mem::size_of::<Slot>() <= 64);
const _: () = assert!(crate::priority::PRIORITY_LEVELS <= 32); // the ready bitmap is a u32

impl Slot {
    pub(crate) const EMPTY: Slot = Slot {
        sp: ptr::null_mut(),
        next: ptr::null_mut(),
        lo: ptr::null_mut(),
        header: ptr::null_mut(),
        wait_obj: 0,
        runs: 0,
        generation: 0,
        state: State::Free,
        started: false,
        wake: Wake::Signaled,
        wait_kind: WaitKind::None,
        priority: 0,
        fp: false,
        local: false,
        irq_wait: false,
        timer_pos: u32::MAX,
    };
}

/// Per-fiber data kept at the top of the fiber's own stack.
#[repr(C)]
pub(crate) struct Header {
    /// The token for the memory this header lives in; dropped last.
    pub stack: ManuallyDrop<Stack<'static>>,
    /// Fibers blocked in `join` on this one.
    pub joiners: WaitQueue,
    /// Closure, later outcome.
    pub payload: *mut u8,
    /// Drops the payload in place: the closure (`false`: the fiber never
    /// started) or the outcome (`true`: finished, never taken).
    ///
    /// # Safety
    /// Call once, with `payload` holding the value the flag names.
    pub drop_payload: unsafe fn(*mut u8, bool),
    /// A `&'static str` given at spawn.
    pub name: &'static str,
    // The fields below are stored at every spawn. They are ordered so the
    // stores merge: the eight flags are one 8-byte word; `held`, `note` and
    // `isr_notifiers` are 24 contiguous zero bytes (two stores); `fp`, never
    // written at spawn, comes last.
    /// The outcome is dropped at finish and the slot freed at once.
    pub detached: bool,
    /// The payload currently holds the outcome (not the closure).
    pub has_outcome: bool,
    /// The runtime already cancelled this fiber once (after a deadlock).
    pub cancelled: bool,
    /// The priority given at spawn or by `set_priority` (the slot's
    /// `priority` is this, raised by inheritance).
    pub base_priority: u8,
    /// Counted as an interrupt waiter by its wait, but not while it is
    /// suspended (`raw::irq_uncount`): to be counted again when resumed.
    pub irq_uncounted: bool,
    /// `Fiber::suspend` asked this fiber to stop: it is Blocked with
    /// `WaitKind::Suspended`, or will be as soon as its current wait ends
    /// (`raw::block::block_current`'s tail). Cleared by `Fiber::resume`.
    pub suspend: bool,
    /// `Fiber::cancel` was called for this fiber (until `clear_cancel`):
    /// every blocking call returns its `Cancelled` error without blocking.
    pub cancel: bool,
    /// With `cancel`: unwind instead (`Fiber::cancel_unwind`, std).
    pub cancel_unwind: bool,
    /// Mutexes this fiber holds that have (or had) waiters while it held them,
    /// linked through the mutexes (priority inheritance).
    pub held: *const crate::sync::inherit::PiQueue,
    /// The fiber's notification value and pending flag (`crate::notify`).
    pub note: crate::notify::Note,
    /// How many `IrqFiberNotifier`s deliver to this fiber: while non-zero its
    /// notification waits count as waiting for an interrupt.
    pub isr_notifiers: u32,
    /// While the fiber is linked in a `sync::waitlist::WaitList`'s queue: the
    /// value cell (`Cell<Option<T>>`, `T` that list's) in its waiting frame,
    /// which a waker fills or empties after popping the fiber (I13). Stale
    /// otherwise, and never read then.
    pub wait_value: *const (),
    /// The fiber's own FP control state while it is switched out. Written
    /// by `Fiber::set_fp_control` (not at spawn): read only for fibers that
    /// called it.
    pub fp: core::mem::MaybeUninit<crate::arch::FpControl>,
}

/// Frees the stack token stored in `header`, after the payload is gone.
///
/// # Safety
/// `header` must be a live header whose payload was dropped or moved out, and
/// no frame may remain on its stack (the fiber finished or never started), and
/// the caller must not run on that stack.
pub(crate) unsafe fn release_stack(header: *mut Header) {
    // SAFETY: per the contract the token is still in place and nothing else
    // will read the header again; dropping the token may unmap the memory, so
    // read it out first.
    unsafe {
        let stack = ManuallyDrop::take(&mut (*header).stack);
        drop(stack);
    }
}

/// Drops a payload in place: a `C` (the closure) if `outcome` is false, an
/// `O` (the outcome) if it is true (type-erased payload destructor).
///
/// # Safety
/// `p` must point to a valid, owned value of that type, not used afterwards.
pub(crate) unsafe fn drop_payload<C, O>(p: *mut u8, outcome: bool) {
    // SAFETY: guaranteed by the caller.
    unsafe { if outcome { ptr::drop_in_place(p.cast::<O>()) } else { ptr::drop_in_place(p.cast::<C>()) } }
}

#[cfg(test)]
mod tests {
    extern crate std;

    #[test]
    fn control_block_sizes() {
        let slot = core::mem::size_of::<super::Slot>();
        let header = core::mem::size_of::<super::Header>();
        std::println!("Slot {slot} bytes, Header {header} bytes");
        assert!(slot <= 64);
    }
}
