//! The interrupt-safe side: a signal an interrupt handler (or, on a host, a
//! signal handler or another OS thread) raises with atomics only, and fibers
//! wait on.
//!
//! # What is safe in interrupt context
//!
//! Exactly one call: [`IrqSignal::notify_from_isr`]. What it does, all of it:
//!
//! 1. one atomic `fetch_add(1)` on the signal's own `pending` counter;
//! 2. one atomic `fetch_add(1)` on a program-wide 64-bit *epoch* counter,
//!    which idle hooks watch through [`IrqWatch`] (bare metal) or
//!    `host::HostClock` (`std`);
//! 3. under `std` only (Linux hosts), for the host's idle hook: one atomic
//!    load of a process-wide count of sleeping idle hooks and, only if that
//!    count is non-zero, one `futex(FUTEX_WAKE)` system call on the epoch's
//!    low 32 bits (a raw system call, async-signal-safe; it cannot fail on
//!    that valid, aligned word, so it does not even write `errno`).
//!
//! It takes no lock (so it cannot wait for the code it interrupted), touches
//! no runtime memory, never allocates and never blocks, so it may interrupt
//! anything, including the scheduler in the middle of a switch, or the
//! runtime's thread while it sleeps in its idle hook. Every other filament
//! call — spawning, any `sync` primitive, `IrqSignal::wait` — is fiber-side
//! only: an interrupt handler has no [`Fiber`] handle, so the type system
//! already keeps those calls out of it.
//!
//! # How the scheduler learns about it
//!
//! The first time a fiber of a run waits on a signal (or takes from it), the
//! signal is registered with that runtime until the run returns; then another
//! runtime (or the next run) may use it. Notifications are counted on the
//! signal itself, so none is lost in between. While any fiber waits on a registered signal, the runtime polls the
//! registered signals' counters at every yield, block and idle, and wakes the
//! first waiter of a signal whose counter is non-zero. A runtime with such
//! waiters is never reported as deadlocked (an interrupt may still come); its
//! idle hook is called instead (`hlt` on bare metal).
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

mod queue;
mod signal;
pub(crate) mod source;
mod watch;

#[cfg(feature = "std")]
pub(crate) mod host_wake;

use core::sync::atomic::AtomicU64;

pub use queue::{IrqQueue, QueueFull};
pub use signal::{IrqError, IrqSignal};
pub(crate) use source::{IrqList, armed, drain, unregister_all};
pub use watch::IrqWatch;

/// Bumped by every [`IrqSignal::notify_from_isr`] in the program, after the
/// signal's own count. Read by [`IrqWatch`]; under `std` its low half is also
/// the futex word host idle hooks sleep on (`host_wake`). 64 bits: never wraps.
static EPOCH: AtomicU64 = AtomicU64::new(0);
