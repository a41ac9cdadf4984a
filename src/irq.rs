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

use core::cell::Cell;
use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// Per-runtime list of registered signals.
pub(crate) struct IrqList {
    head: *const IrqSignal,
    /// Fibers currently blocked on registered signals.
    pub waiters: usize,
}

impl IrqList {
    pub(crate) const fn new() -> Self {
        IrqList { head: ptr::null(), waiters: 0 }
    }
}

/// Why a wait on an [`IrqSignal`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IrqError {
    /// No notification arrived before the deadline.
    TimedOut,
    /// The signal is registered with another runtime.
    WrongRuntime,
    /// This fiber is unwinding and no notification was pending: a fiber
    /// never blocks while it unwinds (std only).
    Unwinding,
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrqError::TimedOut => f.write_str("timed out waiting for an interrupt signal"),
            IrqError::WrongRuntime => f.write_str("signal registered with another runtime"),
            IrqError::Unwinding => f.write_str("cannot wait for an interrupt signal while unwinding"),
        }
    }
}

impl core::error::Error for IrqError {}

/// A counting signal raised from interrupt context, awaited by fibers.
///
/// ```
/// use filament::{IrqSignal, Runtime, StaticStack};
/// static TIMER: IrqSignal = IrqSignal::new();
/// static STACK: StaticStack<16384> = StaticStack::new();
/// static RT: Runtime<'static, 2> = Runtime::new();
///
/// TIMER.notify_from_isr(); // e.g. from the timer interrupt handler
/// let h = RT.spawn(STACK.claim().unwrap(), |fib| TIMER.wait(fib).unwrap()).unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(h).unwrap(), 1);
/// ```
pub struct IrqSignal {
    /// Raised by interrupt handlers: the only field they touch. 64 bits: it
    /// never wraps (2^64 notifications take centuries at one per nanosecond).
    pending: AtomicU64,
    /// Counts moved out of `pending` by the scheduler, not yet taken. Written
    /// only by the owner runtime's thread; atomic so `pending()` may read it
    /// from anywhere.
    banked: AtomicU64,
    /// Fiber side (owner runtime's thread only).
    waiters: WaitQueue,
    /// Serial of the runtime the signal is registered with (0: none). Only the
    /// compare-exchange winner links the signal into its runtime's list.
    owner: AtomicU64,
    /// Link in the owner's list (owner runtime's thread only).
    next: Cell<*const IrqSignal>,
    /// Selects watching the signal (owner runtime's thread only; see
    /// [`select`](crate::sync::select)).
    selectors: crate::sync::select::SelList,
}

// SAFETY: `pending`, `banked` and `owner` are atomics; `pending` is the only
// field written from interrupt context or other threads. `waiters` and `next`
// are touched only by the one runtime whose serial won the `owner`
// compare-exchange, on the thread running it.
unsafe impl Sync for IrqSignal {}
// SAFETY: moving a signal needs ownership. While registered with a runtime it
// is borrowed for `'s` (registration takes `&'s self` from a fiber of that
// runtime, whose `'s` outlives it), and the runtime unregisters it when its run
// returns or it is dropped; so a signal that can be moved is linked in no runtime's list and
// no fiber waits in its queue. Its raw pointers are then inert.
unsafe impl Send for IrqSignal {}

impl IrqSignal {
    /// A signal with no pending notification. `const`, for `static`s.
    pub const fn new() -> Self {
        IrqSignal {
            pending: AtomicU64::new(0),
            banked: AtomicU64::new(0),
            waiters: WaitQueue::new(),
            owner: AtomicU64::new(0),
            next: Cell::new(ptr::null()),
            selectors: crate::sync::select::SelList::new(),
        }
    }

    /// Names it: the name appears in deadlock reports, in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static UART_RX: filament::IrqSignal = filament::IrqSignal::new().named("uart-rx");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// Raises the signal. **Interrupt-safe** and async-signal-safe: no lock,
    /// no allocation, no runtime memory touched, never blocks.
    ///
    /// Exactly: one atomic add on this signal's counter, then one atomic add
    /// on the program-wide epoch counter that [`IrqWatch`] reads. Under `std`
    /// also one atomic load of how many
    /// [`HostClock`](crate::host::HostClock)s sleep and, if any does, one
    /// `futex(FUTEX_WAKE)` system call that wakes them (whichever threads run
    /// their runtimes).
    pub fn notify_from_isr(&self) {
        // Release: pairs with the Acquire swap of whoever takes the count.
        // Program order puts it before the epoch bump below, so an idle hook
        // that sees the new epoch sees this count too.
        self.pending.fetch_add(1, Ordering::Release);
        // SeqCst (a `lock xadd`, as any RMW on x86): see `IrqWatch` and
        // `host_wake` for the arguments that rely on it.
        EPOCH.fetch_add(1, Ordering::SeqCst);
        #[cfg(feature = "std")]
        host_wake::wake_sleepers();
    }

    /// Notifications raised and not yet taken by a fiber (approximate while
    /// interrupts keep arriving).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed) + self.banked.load(Ordering::Relaxed)
    }

    /// Takes every notification so far without blocking (0 if none).
    pub fn try_take<'s>(&'s self, fib: &Fiber<'s>) -> Result<u64, IrqError> {
        self.bind(fib)?;
        Ok(self.take_all())
    }

    /// Blocks until at least one notification is pending, then takes them all
    /// and returns how many there were.
    pub fn wait<'s>(&'s self, fib: &Fiber<'s>) -> Result<u64, IrqError> {
        self.wait_until(fib, None)
    }

    /// Like [`wait`](Self::wait) but gives up after `timeout` ticks.
    pub fn wait_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<u64, IrqError> {
        self.wait_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    fn wait_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<u64, IrqError> {
        self.bind(fib)?;
        loop {
            let n = self.take_all();
            if n > 0 {
                return Ok(n);
            }
            // SAFETY: we are the running fiber of the owning runtime; the
            // signal (hence its queue) lives for 's, longer than any of the
            // runtime's fibers.
            let wake = unsafe { as_irq_waiter(fib.core_ptr(), || fib.wait_on(&self.waiters, WaitKind::Irq, deadline)) };
            if wake == Wake::TimedOut || wake == Wake::Unwinding {
                let n = self.take_all();
                return match n {
                    0 if wake == Wake::Unwinding => Err(IrqError::Unwinding),
                    0 => Err(IrqError::TimedOut),
                    n => Ok(n),
                };
            }
        }
    }

    fn take_all(&self) -> u64 {
        self.banked.swap(0, Ordering::Relaxed) + self.pending.swap(0, Ordering::Acquire)
    }

    /// Registers the signal with the fiber's runtime on first use. `'s`: the
    /// signal outlives the runtime's stacks, hence every use of the list entry.
    fn bind<'s>(&'s self, fib: &Fiber<'s>) -> Result<(), IrqError> {
        let core = fib.core_ptr();
        // SAFETY: the fiber's core is live while it runs.
        let me = unsafe { (*core).serial };
        match self.owner.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
            Err(owner) if owner == me => return Ok(()),
            Err(_) => return Err(IrqError::WrongRuntime),
            Ok(_) => {}
        }
        // SAFETY: we won the registration and run inside the runtime, the only
        // code touching its list.
        unsafe {
            self.next.set((*core).irq.head);
            (*core).irq.head = self;
        }
        Ok(())
    }
}

/// The hooks [`select`](crate::sync::select) uses.
impl IrqSignal {
    pub(crate) fn select_bind<'s>(&'s self, fib: &Fiber<'s>) -> bool {
        self.bind(fib).is_ok()
    }

    /// Takes every notification (0 if none).
    pub(crate) fn select_take(&self) -> u64 {
        self.take_all()
    }

    pub(crate) fn select_list(&self) -> &crate::sync::select::SelList {
        &self.selectors
    }

    /// The address a plain waiter is reported with.
    pub(crate) fn select_addr(&self) -> usize {
        &raw const self.waiters as usize
    }
}

impl Default for IrqSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for IrqSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqSignal").field("pending", &self.pending()).finish()
    }
}

/// Runs `block` (the running fiber's wait on a signal) with that fiber counted
/// as an interrupt waiter: meanwhile the runtime polls its signals at every
/// yield, block and idle, and idles instead of reporting a deadlock.
///
/// The count is undone by a drop guard, so also when `block` unwinds (a wait
/// cancelled by the runtime, which unwinds with the `Cancelled` payload under
/// std, or a panic): a leaked count would make the runtime poll at every
/// switch and idle forever instead of reporting the next deadlock.
///
/// # Safety
/// Called by the running fiber of `core`, on its own stack.
pub(crate) unsafe fn as_irq_waiter<R>(core: *mut Core, block: impl FnOnce() -> R) -> R {
    /// Undoes the count when dropped: on return or during an unwind.
    struct Counted(*mut Core);
    impl Drop for Counted {
        fn drop(&mut self) {
            // SAFETY: dropped by the fiber that made the count, while it runs
            // (after its wait returned, or while it unwinds on its own stack),
            // so the core is exclusively ours, as when it was counted.
            unsafe {
                (*self.0).irq.waiters -= 1;
                (*self.0).pollers -= 1;
                raw::refresh_slow(self.0);
            }
        }
    }
    // SAFETY: per the contract the core is ours while we run.
    let _counted = unsafe {
        (*core).irq.waiters += 1;
        (*core).pollers += 1;
        raw::refresh_slow(core);
        Counted(core)
    };
    block()
}

/// Wakes the first waiter of every registered signal that was raised.
///
/// # Safety
/// Exclusive access to `core` (inside `run`).
#[inline]
pub(crate) unsafe fn drain(core: *mut Core) {
    // SAFETY: plain read of the runtime's own counter.
    if unsafe { (*core).irq.waiters } == 0 {
        return;
    }
    // SAFETY: forwarded.
    unsafe { drain_slow(core) }
}

/// [`drain`]'s work once some fiber waits on a signal.
///
/// # Safety
/// As for [`drain`].
#[cold]
unsafe fn drain_slow(core: *mut Core) {
    // SAFETY: registered signals outlive the runtime ('s); their Cell fields
    // are ours (owner == core).
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            if !s.waiters.is_empty() {
                let n = s.pending.swap(0, Ordering::Acquire);
                if n > 0 {
                    s.banked.fetch_add(n, Ordering::Relaxed);
                    raw::wake_one(core, &s.waiters);
                }
            } else if !s.selectors.is_empty() && s.selectors.first_sleeping().is_some() {
                // No plain waiter: the first select sleeping on it (it takes
                // the count; one raised before it slept stays pending here).
                let n = s.pending.swap(0, Ordering::Acquire);
                if n > 0 {
                    s.banked.fetch_add(n, Ordering::Relaxed);
                    s.selectors.notify_one(core);
                }
            }
            sig = s.next.get();
        }
    }
}

/// Whether some fiber waits on an interrupt source (so idling makes sense).
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn armed(core: *mut Core) -> bool {
    // SAFETY: plain read.
    unsafe { (*core).irq.waiters > 0 }
}

/// Unregisters every signal (runtime drop), so none points at a dead runtime.
///
/// Each signal's `owner` is cleared last, with a release store: a runtime on
/// another thread may win the signal's compare-exchange the moment it is 0
/// and then writes `next`, so everything this runtime does to the signal must
/// come before. Nothing thread-specific is stored in the signal (the host's
/// wake-up goes through the process-wide epoch), so there is nothing for a
/// concurrent bind to lose.
///
/// # Safety
/// Exclusive access to `core`; no fiber waits on any signal.
pub(crate) unsafe fn unregister_all(core: *mut Core) {
    // SAFETY: as in drain_slow.
    unsafe {
        let mut sig = (*core).irq.head;
        while !sig.is_null() {
            let s = &*sig;
            sig = s.next.get();
            s.next.set(ptr::null());
            // Only selects parked for good can still be linked (a poisoned
            // runtime being dropped): their nodes must not outlive it here.
            s.selectors.forget_all();
            s.owner.store(0, Ordering::Release);
        }
        (*core).irq.head = ptr::null();
    }
}

/// Bumped by every [`IrqSignal::notify_from_isr`] in the program, after the
/// signal's own count. Read by [`IrqWatch`]; under `std` its low half is also
/// the futex word host idle hooks sleep on (`host_wake`). 64 bits: never wraps.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Tells an idle hook whether any [`IrqSignal`] was raised since the hook
/// last returned: the check that lets it halt the CPU without losing a
/// wake-up.
///
/// # The race it closes
///
/// When no fiber is ready, the runtime polls its signals, finds nothing and
/// calls the [`Idle`](crate::Idle) hook. An interrupt that raises a signal
/// *after that poll* but *before the hook disables interrupts* has already
/// run when the hook looks at the world; if the hook then halts, the raised
/// signal waits for the next interrupt to wake the CPU — with a tickless
/// timer and nothing else pending, forever. A hook that only compares its
/// timer's tick counter with `now` cannot see this.
///
/// # Use
///
/// Keep one watch in the hook, created before the run. In every `idle` call:
/// disable interrupts, ask [`raised`](Self::raised) (and check your timer),
/// halt only if nothing happened — with `sti; hlt` back to back, which x86
/// executes so that an interrupt arriving after `sti` is taken *during* the
/// `hlt`, never before it — then [`rearm`](Self::rearm) as the last thing
/// before returning:
///
/// ```
/// use filament::{Idle, IrqWatch, Ticks};
/// # fn disable_interrupts() {}
/// # fn enable_interrupts() {}
/// # fn enable_interrupts_and_halt() {} // `sti; hlt` in one asm! block
/// # fn ticks() -> Ticks { 0 }          // the timer interrupt's counter
///
/// struct Halt {
///     watch: IrqWatch,
/// }
///
/// impl Idle for Halt {
///     fn idle(&mut self, now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
///         disable_interrupts();
///         if self.watch.raised() || ticks() != now {
///             enable_interrupts(); // something happened since the runtime looked
///         } else {
///             enable_interrupts_and_halt(); // woken by the next interrupt
///         }
///         self.watch.rearm(); // last: the runtime polls right after we return
///         ticks()
///     }
/// }
///
/// let mut hook = Halt { watch: IrqWatch::new() };
/// # let _ = hook.idle(0, None);
/// // RT.run_with_idle(&mut hook)
/// ```
///
/// # Why no wake-up is lost
///
/// The runtime polls its signals between any two idle calls, and before the
/// first; [`rearm`](Self::rearm) at the end of an idle call (or
/// [`new`](Self::new) before the run) therefore reads the epoch *before* the
/// runtime's next look at the signals. Take a notification that look missed.
/// Its epoch bump follows its count in program order, so had the rearm read
/// the bumped epoch, the count would have been visible to the look (release
/// and acquire on the epoch); so the bump comes after the rearm's read, and
/// [`raised`](Self::raised) sees it — unless it happens after the check,
/// i.e. in an interrupt taken after `cli`, which is delivered by the `sti;
/// hlt` and ends the halt. (A notifier on *another* CPU must also send this
/// CPU an interrupt to end a halt that already began.)
///
/// The epoch counts the notifications of *every* signal in the program, so
/// `raised` may be true for a signal no fiber of this runtime waits on: the
/// hook returns, the runtime polls, finds nothing and idles again. Spurious,
/// never lost. Under `std`, `host::HostClock` uses the same epoch (as a futex
/// word) for the same purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqWatch {
    /// The epoch read when last (re)armed.
    seen: u64,
}

impl IrqWatch {
    /// A watch armed now: [`raised`](Self::raised) is true once any signal is
    /// notified after this call. Create it before the runtime runs.
    pub fn new() -> Self {
        IrqWatch { seen: EPOCH.load(Ordering::SeqCst) }
    }

    /// Whether any [`IrqSignal`] was notified since the watch was last armed.
    /// One atomic load: cheap, lock-free, fine with interrupts disabled (and in
    /// interrupt context).
    #[inline]
    pub fn raised(&self) -> bool {
        EPOCH.load(Ordering::SeqCst) != self.seen
    }

    /// Arms the watch again. Call it as the last thing before the idle hook
    /// returns (after halting): the runtime polls its signals right after, so
    /// a notification this read misses is caught by the next
    /// [`raised`](Self::raised). Never arm between the runtime's poll and the
    /// check (e.g. at the start of `idle`): that would forget exactly the
    /// notifications the check is for.
    #[inline]
    pub fn rearm(&mut self) {
        self.seen = EPOCH.load(Ordering::SeqCst);
    }
}

impl Default for IrqWatch {
    /// Same as [`IrqWatch::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// How a host thread sleeps until some [`IrqSignal`] is notified (feature
/// `std`, Linux): a futex on a process-wide epoch counter.
///
/// Notifier (any thread, or a signal handler), after the signal's own
/// `pending += 1`: `EPOCH += 1`, then `FUTEX_WAKE` if `SLEEPERS != 0`.
///
/// Idle hook ([`HostClock`](crate::host::HostClock)): it keeps the epoch it
/// read at the end of its previous call (or at its creation). The runtime
/// polls its signals after every idle call and before the next, so that value
/// was read *before* the runtime's latest poll. To sleep:
/// `SLEEPERS += 1`; if `EPOCH == seen`, `FUTEX_WAIT(EPOCH, seen)`;
/// `SLEEPERS -= 1`.
///
/// # Why no wake-up is lost
///
/// Take a notification the runtime's latest poll missed: its `pending += 1`
/// did not happen before the poll's swap. Then its `EPOCH += 1`, which follows
/// that add in the notifier's program order, was not seen by the hook's read
/// of `seen` (that read precedes the poll; had it seen the bump, the
/// release/acquire pair on `EPOCH` would have made the add visible to the
/// poll). All accesses to `EPOCH` and `SLEEPERS` are `SeqCst`, so they have
/// one total order, in which the sleeper's `SLEEPERS += 1` precedes its
/// `EPOCH == seen` check:
///
/// * if the bump comes before that check, the check fails and the hook
///   returns at once: the runtime polls again and finds the count;
/// * otherwise the bump comes after the check, hence after `SLEEPERS += 1`,
///   so the notifier's following `SLEEPERS` load sees the sleeper and it
///   calls `FUTEX_WAKE` after its bump. By the futex contract (the kernel
///   compares and queues atomically with respect to wakes on the same word)
///   the sleeper's `FUTEX_WAIT` either sees the changed word and returns, or
///   was queued and is woken.
///
/// The futex word is the low half of the 64-bit epoch (x86_64 is little
/// endian), and the full 64 bits are compared just before the wait. So the
/// kernel's 32-bit compare can only be fooled (ABA) by 2^32 notifications
/// arriving between that check and the system call's compare, a few
/// instructions apart (unless the thread is descheduled there while some
/// thread notifies 4 billion times).
///
/// Wake-ups may be spurious (a notification of a signal nobody here waits on,
/// or another runtime's; a POSIX signal interrupting the wait): the hook
/// returns, the runtime polls, finds nothing and idles again. A steady stream
/// of unrelated notifications therefore costs an idle runtime a poll per
/// notification. No thread handle is stored anywhere: it does not matter
/// which thread drives the runtime, nor how many threads notify.
#[cfg(feature = "std")]
pub(crate) mod host_wake {
    use super::EPOCH;
    use core::ptr;
    use core::sync::atomic::AtomicU32;
    use core::sync::atomic::Ordering::SeqCst;
    use std::time::Duration;

    /// Threads between announcing a sleep and leaving it. Lets a notification
    /// skip the system call while no idle hook sleeps.
    static SLEEPERS: AtomicU32 = AtomicU32::new(0);

    /// The futex word: the low 32 bits of [`EPOCH`] (little endian).
    fn futex_word() -> *mut u32 {
        EPOCH.as_ptr().cast::<u32>()
    }

    /// The notifier's half, after its `EPOCH += 1` (in
    /// [`IrqSignal::notify_from_isr`](super::IrqSignal::notify_from_isr)).
    /// Async-signal-safe: an atomic load of a static, then at most one
    /// `futex` system call; no lock, no allocation.
    #[inline]
    pub(crate) fn wake_sleepers() {
        if SLEEPERS.load(SeqCst) != 0 {
            // SAFETY: FUTEX_WAKE only names the address of a valid, aligned,
            // 'static word; the kernel reads no memory for it. It cannot fail
            // on such a word, so it does not write `errno` either.
            unsafe {
                libc::syscall(libc::SYS_futex, futex_word(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
            }
        }
    }

    /// The current epoch. Read it *before* the runtime polls its signals, and
    /// pass it to [`sleep`] at the next idle.
    pub(crate) fn epoch() -> u64 {
        EPOCH.load(SeqCst)
    }

    /// Sleeps until the epoch differs from `seen` (returns at once if it
    /// already does), the timeout passes (`None`: no timeout), or a spurious
    /// wake-up.
    pub(crate) fn sleep(seen: u64, timeout: Option<Duration>) {
        let ts = timeout.map(|d| libc::timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        });
        let ts_ptr = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
        SLEEPERS.fetch_add(1, SeqCst);
        if EPOCH.load(SeqCst) == seen {
            // SAFETY: FUTEX_WAIT on a valid, aligned, 'static word with a
            // valid (or null) relative timeout. Every outcome (woken, EAGAIN,
            // EINTR, ETIMEDOUT) means "return and let the runtime poll".
            unsafe {
                libc::syscall(
                    libc::SYS_futex,
                    futex_word(),
                    libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                    seen as u32,
                    ts_ptr,
                    ptr::null::<u32>(),
                    0,
                );
            }
        }
        SLEEPERS.fetch_sub(1, SeqCst);
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::{RunError, Runtime, Stack};
    use std::boxed::Box;
    use std::panic::{self, AssertUnwindSafe};
    use std::sync::mpsc;
    use std::time::Duration;

    fn stack() -> Stack<'static> {
        Stack::host(64 * 1024).expect("mmap stack").without_painting()
    }

    /// A wait on a signal that unwinds (the runtime cancelling the fiber, as
    /// `Fiber::wait_on` does with the `Cancelled` payload under std; or a
    /// panic) must leave the waiter counts as they were, or the runtime
    /// polls forever and never reports a deadlock again.
    ///
    /// Today's runtime never cancels a fiber blocked on a signal (deadlock
    /// detection does not run while one waits), so the unwind is produced by
    /// the `block` closure, at the very place `wait_on` sits in
    /// `IrqSignal::wait`.
    #[test]
    fn unwinding_out_of_a_signal_wait_restores_the_waiter_counts() {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            static RT: Runtime<'static, 2> = Runtime::new();
            let h = RT
                .spawn(stack(), |fib| {
                    let core = fib.core_ptr();
                    let unwound = panic::catch_unwind(AssertUnwindSafe(|| {
                        // SAFETY: we are the running fiber of `core`.
                        unsafe {
                            as_irq_waiter(core, || -> () { panic::resume_unwind(Box::new(crate::host::Cancelled)) })
                        }
                    }));
                    assert!(unwound.is_err());
                    // SAFETY: plain reads by the running fiber.
                    unsafe { ((*core).irq.waiters, (*core).pollers, (*core).slow) }
                })
                .unwrap();
            // A fiber that can never be woken: the run must end in a deadlock
            // report, not idle forever waiting for an interrupt.
            let ch: &'static crate::sync::Channel<u8, 1> = Box::leak(Box::new(crate::sync::Channel::new()));
            RT.spawn_detached(stack(), move |fib| ch.recv(fib)).unwrap();
            let run = RT.run_with_idle(&mut crate::host::HostClock::new());
            let _ = tx.send((RT.take(h).unwrap(), matches!(run, Err(RunError::Deadlock(_)))));
        });
        let (counts, deadlock_reported) = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("hung for 5 s: the runtime idles as if a fiber still waited on a signal");
        assert_eq!(counts, (0, 0, 0), "irq waiters, pollers, slow after the unwind");
        assert!(deadlock_reported);
    }

    /// "Counted, never lost" past 2^32 untaken notifications: the pending
    /// count must not wrap (nor overflow-panic in debug builds) when taken.
    /// 2^32 real notifications take too long, so the counter is poked.
    #[test]
    fn pending_counts_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<1>::new();
        SIG.pending.store(u32::MAX.into(), Ordering::Relaxed); // as if 2^32 - 1 arrived
        SIG.notify_from_isr();
        assert_eq!(SIG.pending(), 1 << 32);
        let h = rt.spawn(stack(), |fib| SIG.try_take(fib)).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(1 << 32));
    }

    /// Banked and raised counts together past 2^32 (the sum overflowed, a
    /// panic in debug builds).
    #[test]
    fn taking_banked_and_pending_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                SIG.try_take(fib).unwrap(); // binds the signal to this runtime
                SIG.banked.store(u32::MAX.into(), Ordering::Relaxed); // as if banked for a waiter
                SIG.notify_from_isr();
                SIG.try_take(fib)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(1 << 32));
    }

    /// The same through the scheduler: the runtime moves the raised count
    /// into the banked one that the woken waiter takes.
    #[test]
    fn banked_counts_past_u32_max() {
        static SIG: IrqSignal = IrqSignal::new();
        let rt = Runtime::<2>::new();
        let waiter = rt.spawn(stack(), |fib| SIG.wait_timeout(fib, 10)).unwrap();
        rt.spawn_detached(stack(), |fib| {
            // The waiter is blocked: as if 2^32 - 1 notifications had been
            // banked for it, then one more arrives and this yield's poll
            // banks it too and wakes the waiter.
            SIG.banked.store(u32::MAX.into(), Ordering::Relaxed);
            SIG.notify_from_isr();
            fib.yield_now();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(waiter).unwrap(), Ok(1 << 32));
    }
}
