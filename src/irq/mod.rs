//! The interrupt-safe side: objects an interrupt handler (or, on a host, a
//! signal handler, another OS thread, another core) changes with atomics
//! only, and fibers wait on.
//!
//! * [`IrqSignal`] — counts events (`notify_from_isr`); a fiber takes the count.
//! * [`IrqNotify`] — ORs notification bits (`notify_from_isr(bits)`); a fiber
//!   takes and clears them.
//! * [`IrqQueue`] — moves data: a bounded lock-free queue
//!   (`try_send_from_isr`, which hands the value back when full); a fiber
//!   receives with `recv` / `recv_timeout` / `try_recv`.
//! * [`Semaphore::give_from_isr`](crate::sync::Semaphore::give_from_isr) and
//!   [`Event::set_from_isr`](crate::sync::Event::set_from_isr) — the cheap
//!   wakes on the ordinary primitives.
//!
//! # What is safe in interrupt context
//!
//! Exactly these calls: [`IrqSignal::notify_from_isr`],
//! [`IrqNotify::notify_from_isr`], [`IrqQueue::try_send_from_isr`],
//! [`Semaphore::give_from_isr`](crate::sync::Semaphore::give_from_isr),
//! [`Event::set_from_isr`](crate::sync::Event::set_from_isr), and the
//! read-only queries `IrqSignal::pending`, `IrqNotify::pending`,
//! `IrqQueue::{len, space, is_empty, capacity}`, [`IrqWatch::raised`]. Each
//! `_from_isr` call does, all of it:
//!
//! 1. its object's own atomic update (an add, an OR, a flag; the queue: a
//!    compare-exchange on its tail, retried only when another producer won
//!    it, a write into the claimed cell and a release store publishing it),
//!    documented on each call;
//! 2. one atomic swap of the object's *raised* flag;
//! 3. one atomic `fetch_add(1)` on a program-wide 64-bit *epoch* counter,
//!    which idle hooks watch through [`IrqWatch`] (bare metal) or
//!    `host::HostClock` (`std`);
//! 4. under `std` only (Linux hosts), for the host's idle hook: one atomic
//!    load of a process-wide count of sleeping idle hooks and, only if that
//!    count is non-zero, one `futex(FUTEX_WAKE)` system call on the epoch's
//!    low 32 bits (a raw system call, async-signal-safe; it cannot fail on
//!    that valid, aligned word, so it does not even write `errno`).
//!
//! None takes a lock (so none can wait for the code it interrupted), touches
//! runtime memory, allocates or blocks, so they may interrupt anything,
//! including the scheduler in the middle of a switch, a producer in the
//! middle of its own push into the same queue, or the runtime's thread while
//! it sleeps in its idle hook. Every other filament call — spawning, waiting,
//! receiving, any other `sync` method — is fiber-side only: an interrupt
//! handler has no [`Fiber`](crate::Fiber) handle, so the type system already
//! keeps those calls out of it.
//!
//! # How the scheduler learns about it
//!
//! The first time a fiber of a run waits on an object (or takes from it), the
//! object is registered with that runtime until the run returns; then another
//! runtime (or the next run) may use it. What interrupts leave is kept on the
//! object itself, so nothing is lost in between. While any fiber waits on an
//! interrupt-capable object, the runtime polls the registered objects that
//! were raised at every yield, block and idle, and wakes their waiters. A
//! runtime with such waiters is never reported as deadlocked (an interrupt
//! may still come); its idle hook is called instead (`hlt` on bare metal).
//! (A semaphore, event or event group counts once it is interrupt-capable:
//! see [`Semaphore::isr_capable`](crate::sync::Semaphore::isr_capable). Its
//! waiters that blocked before are not counted, but its interrupt calls
//! still reach them: the runtime also drains every registered object when
//! it runs out of ready fibers, before it idles or reports a deadlock.)
//!
//! Inside the crate this is one mechanism, `irq::source` (`src/irq/source.rs`):
//! every interrupt-capable object embeds an `IrqSource` (a raised flag, the
//! registration, the list link) and implements its `Drain`; the runtime
//! drains raised sources at its poll points and counts fibers blocked on them
//! as interrupt waiters. Its module docs are the contract for new objects.
//!
//! On bare metal an idle hook that halts the CPU must not halt when a
//! signal was raised after the runtime's latest poll (by an interrupt that
//! arrived between that poll and the hook's `cli`): nothing would wake the
//! runtime until the next interrupt, with a tickless timer never.
//! [`IrqWatch`] answers "was any signal raised since I last returned?" with
//! one atomic load, callable with interrupts disabled; see its docs and
//! [`guide`](crate::guide) for the hook.
//!
//! On a host, [`HostClock`](crate::host::HostClock) sleeps on the epoch
//! (`FUTEX_WAIT` with the epoch value it read *before* the runtime last polled
//! the signals), so a notification from any thread or signal handler wakes it,
//! whichever thread drives the runtime now: a notification that lands after
//! that poll has changed the epoch, and the wait returns at once or is woken.
//! See `host_wake` below for the argument.
//!
//! # Counting, not losing
//!
//! Notifications are counted, never dropped: [`IrqSignal::wait`] returns how
//! many notifications arrived since the previous wait or take returned (at least
//! one). Over any run, the sum of the returned counts equals the number of
//! `notify_from_isr` calls that happened before the last take. Counts are
//! `u64`: even 2^32 untaken notifications (seconds of a tight notify loop)
//! neither wrap nor overflow; 2^64 would take centuries.

mod fiber_notify;
mod notify;
mod queue;
mod signal;
pub(crate) mod source;
mod watch;

#[cfg(feature = "std")]
pub(crate) mod host_wake;

use core::sync::atomic::AtomicU64;

pub use fiber_notify::IrqFiberNotifier;
pub use notify::IrqNotify;
pub use queue::{IrqQueue, QueueFull};
pub use signal::{IrqError, IrqSignal};
pub(crate) use source::{IrqList, armed, as_irq_waiter, drain, unregister_all};
pub use watch::IrqWatch;

/// Bumped by every raise in the program (every `_from_isr` call: see
/// `source::IrqSource::raise`), after the object's own state. Read by [`IrqWatch`]; under `std` its low half is also
/// the futex word host idle hooks sleep on (`host_wake`). 64 bits: never wraps.
static EPOCH: AtomicU64 = AtomicU64::new(0);
