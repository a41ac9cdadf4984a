//! The safe layer: [`Runtime`] (the fiber table, spawning, running, taking
//! results). The snapshots it reports are in [`crate::info`].

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::arch;
use crate::error::{JoinError, RunError, SpawnError, SpawnErrorKind};
use crate::fiber::{FiberId, Slot, State};
use crate::info::{FiberInfo, Stats, info, stats};
use crate::raw::{self, Core};
use crate::stack::Stack;
use crate::time::{self, Ticks, TimerEntry};

use crate::handle::Fiber;
use crate::join::{JoinHandle, detach_raw, take_outcome, take_outcome_and_stack};
use crate::locked::Locked;
use crate::priority::SpawnOptions;
use crate::run::run_held;
use crate::spawn::{Spawned, spawn_raw};

mod spawn;

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const RUNNING: u8 = 2;

/// Makes a type invariant in `'s` (neither longer nor shorter lifetimes coerce).
pub(crate) type Invariant<'s> = fn(Stack<'s>) -> Stack<'s>;

/// A fiber runtime with room for `N` fibers, no heap.
///
/// `'s` is how long the stacks it runs on live. [`Runtime::new`] makes a runtime
/// for `'static` stacks ([`StaticStack`](crate::StaticStack) claims, leaked
/// buffers, host stacks); [`Runtime::scope`] makes one for stacks borrowed from
/// shorter-lived buffers.
///
/// ```
/// use filament::{Runtime, StaticStack};
/// static STACKS: [StaticStack<16384>; 2] = [StaticStack::new(), StaticStack::new()];
/// static RT: Runtime<'static, 4> = Runtime::new();
///
/// let a = RT.spawn(STACKS[0].claim().unwrap(), |fib| { fib.yield_now(); 1 }).unwrap();
/// let b = RT.spawn(STACKS[1].claim().unwrap(), |_| 2).unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(a).unwrap() + RT.take(b).unwrap(), 3);
/// ```
///
/// # Scheduling
///
/// Round-robin, strict FIFO: fibers first run in spawn order; a fiber that
/// yields goes behind every fiber already ready; a woken fiber goes behind every
/// fiber already ready. Yield switches directly from one fiber's stack to the
/// next one's; picking the next fiber is O(1).
///
/// # Threads
///
/// A runtime is `Send + Sync`: it may live in a `static` and be used from any
/// thread, one thread at a time. [`Runtime::run`] takes an internal lock; while
/// one thread runs it, calls from other threads (or through the runtime itself
/// from inside a fiber — use the [`Fiber`] handle there) get
/// [`SpawnErrorKind::Busy`] / [`RunError::Busy`]. Closures and results must be
/// `Send` because the thread that spawns may differ from the one that runs.
/// Fibers never outlive a `run` call in a suspended state except after a
/// deadlock without `std` (see [`RunError::Deadlock`]); such fibers are never
/// resumed, so a runtime never moves a suspended fiber to another thread.
///
/// # Dropping
///
/// Dropping a runtime drops the closures of fibers that never ran and the
/// outcomes nobody took, and releases their stacks. If fibers were left
/// suspended by a deadlock (only possible without `std`, or when a fiber
/// swallowed its cancellation), their stacks still hold live frames: a runtime
/// from [`Runtime::new`] then leaks those `'static` stacks (never reused, so
/// sound), and a [`Runtime::scope`] runtime stops the program, because the
/// borrowed memory would become reusable under live frames.
#[repr(C)]
pub struct Runtime<'s, const N: usize> {
    core: UnsafeCell<Core>,
    slots: UnsafeCell<[Slot; N]>,
    timers: UnsafeCell<[TimerEntry; N]>,
    lock: AtomicU8,
    scoped: bool,
    /// Invariant in `'s`: a `&Runtime<'static, N>` must not coerce to a
    /// runtime accepting shorter-lived stacks and closures.
    _stacks: PhantomData<Invariant<'s>>,
}

// SAFETY: all interior state is reached only by the holder of `lock` (outer calls)
// or by code running inside `run` on the thread that holds it (fiber handles are
// neither Send nor Sync). Closures and outcomes crossing threads are `Send`.
unsafe impl<const N: usize> Sync for Runtime<'_, N> {}
// SAFETY: as above; suspended fibers are never resumed after `run` returns, so
// moving the runtime never carries a live frame to another thread.
unsafe impl<const N: usize> Send for Runtime<'_, N> {}

/// Holds a runtime's lock; releases it (a plain store) when dropped.
pub(crate) struct LockGuard<'a>(&'a AtomicU8);
impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.0.store(IDLE, Ordering::Release);
    }
}

impl<const N: usize> Runtime<'static, N> {
    /// An empty runtime for `'static` stacks. `const`, so it can be a `static`.
    pub const fn new() -> Self {
        Self::with_scope(false)
    }
}

impl<const N: usize> Default for Runtime<'static, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'s, const N: usize> Runtime<'s, N> {
    const fn with_scope(scoped: bool) -> Self {
        const {
            assert!(N > 0, "a Runtime needs a capacity N of at least 1 fiber");
            assert!(N < u32::MAX as usize, "a Runtime's capacity N must be below 2^32 - 1 fibers");
        }
        Runtime {
            core: UnsafeCell::new(Core::new()),
            slots: UnsafeCell::new([const { Slot::EMPTY }; N]),
            timers: UnsafeCell::new([const { TimerEntry::EMPTY }; N]),
            lock: AtomicU8::new(IDLE),
            scoped,
            _stacks: PhantomData,
        }
    }

    /// Runs `f` with a runtime for stacks borrowed from buffers that live at
    /// least `'s`. The runtime is dropped when `f` returns, and cannot be leaked,
    /// so no fiber frame can outlive the buffers.
    ///
    /// ```
    /// use filament::{Runtime, Stack};
    /// let mut buf = [0u8; 16384];
    /// let out = Runtime::<4>::scope(|rt| {
    ///     let h = rt.spawn(Stack::from_slice(&mut buf).unwrap(), |_| 7).unwrap();
    ///     rt.run().unwrap();
    ///     rt.take(h).unwrap()
    /// });
    /// assert_eq!(out, 7);
    /// ```
    ///
    /// A `'static` runtime never accepts borrowed stacks or closures (the
    /// runtime's lifetime is invariant):
    ///
    /// ```compile_fail
    /// use filament::{Runtime, Stack};
    /// static RT: Runtime<'static, 2> = Runtime::new();
    /// fn spawn_on_local() {
    ///     let mut buf = vec![0u8; 16384];
    ///     let _ = RT.spawn_detached(Stack::from_slice(&mut buf).unwrap(), |_| ()); // error: `buf` does not live long enough
    /// }
    /// ```
    ///
    /// nor can a fiber lend its own locals to a fiber it spawns:
    ///
    /// ```compile_fail
    /// use filament::{Runtime, StaticStack};
    /// static S: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
    /// static RT: Runtime<'static, 2> = Runtime::new();
    /// RT.spawn_detached(S[0].claim().unwrap(), |fib| {
    ///     let local = String::from("on the parent's stack");
    ///     let r = &local;
    ///     let _ = fib.spawn_detached(S[1].claim().unwrap(), move |_| r.len()); // error
    /// });
    /// ```
    pub fn scope<R>(f: impl FnOnce(&Runtime<'s, N>) -> R) -> R {
        let rt = Self::with_scope(true);
        f(&rt)
    }

    /// Capacity: how many fibers can exist at once.
    pub const fn capacity(&self) -> usize {
        N
    }

    pub(crate) fn try_lock(&self, as_state: u8) -> Option<LockGuard<'_>> {
        self.lock.compare_exchange(IDLE, as_state, Ordering::Acquire, Ordering::Relaxed).ok()?;
        Some(LockGuard(&self.lock))
    }

    /// Binds the core to where the runtime is now (it may have moved since the
    /// last call) and returns it. Must hold the lock.
    #[inline(always)]
    pub(crate) fn core(&self) -> *mut Core {
        let core = self.core.get();
        // SAFETY: we hold the lock (or run inside `run`): a plain read.
        if unsafe { (*core).slots } != self.slots.get().cast::<Slot>() {
            self.bind();
        }
        core
    }

    /// [`core`](Self::core)'s rare case: first use, or the runtime moved.
    #[cold]
    #[inline(never)]
    fn bind(&self) {
        let core = self.core.get();
        let base = self.slots.get().cast::<Slot>();
        // SAFETY: we hold the lock (or run inside `run`), so nobody else touches
        // the core or the slots. No fiber has a live frame outside `run` except
        // poisoned ones, which are in no queue and never resumed, so rebasing
        // the ring/free-list pointers is all a move requires.
        unsafe {
            let old = (*core).slots;
            if old.is_null() {
                (*core).serial = raw::NEXT_SERIAL.fetch_add(1, Ordering::Relaxed);
                (*core).live_slot = crate::orphans::register_live((*core).serial, N);
                #[cfg(feature = "std")]
                {
                    (*core).signal_reserve = crate::host::signal_reserve();
                }
                (*core).slots = base;
                (*core).cap = N;
                (*core).timers = self.timers.get().cast::<TimerEntry>();
                for i in (0..N).rev() {
                    let s = base.add(i);
                    (*s).next = (*core).free;
                    (*core).free = s;
                }
            } else if old != base {
                let fix = |p: *mut Slot| if p.is_null() { p } else { base.offset(p.offset_from(old)) };
                (*core).slots = base;
                (*core).timers = self.timers.get().cast::<TimerEntry>();
                (*core).current = fix((*core).current);
                (*core).prev = fix((*core).prev);
                for t in (*core).levels.iter_mut() {
                    *t = fix(*t);
                }
                (*core).free = fix((*core).free);
                (*core).zombies = fix((*core).zombies);
                for i in 0..N {
                    let s = base.add(i);
                    (*s).next = fix((*s).next);
                    // Fibers that never ran find the core in their first frame.
                    if (*s).state == State::Ready && !(*s).started {
                        (*s).sp.add(arch::INIT_CORE_WORD).cast::<*mut Core>().write(core);
                    }
                }
                time::rebase(core, old, base);
            }
        }
    }

    /// Runs fibers until every fiber has finished.
    ///
    /// Switches from the caller's context into the first ready fiber; fibers
    /// switch among themselves; control comes back here only when no fiber is
    /// ready (to sleep until the next timer, run the idle hook, or return).
    ///
    /// Returns [`RunError::Deadlock`] when fibers are blocked and nothing can
    /// wake them; under `std` they are cancelled first (each blocking call
    /// unwinds and the fiber finishes with [`JoinError::Cancelled`]), so the
    /// runtime stays usable.
    ///
    /// When `run` returns, the results of fibers whose [`JoinHandle`]s were
    /// dropped are dropped (they were detached); a panic in such a `Drop`
    /// reaches the caller of `run` (the runtime is back in order by then, but
    /// a deadlock report of that run is lost with the unwind).
    // The deadlock report is inline (no heap): a large Err is the price.
    #[allow(clippy::result_large_err)]
    pub fn run(&self) -> Result<(), RunError> {
        self.run_inner(None, None)
    }

    /// Like [`run_with_idle`](Self::run_with_idle), but gives up once `ticks`
    /// ticks of the idle hook's clock have passed with fibers still waiting:
    /// it then treats them as deadlocked — under `std` each is cancelled (its
    /// blocking call unwinds; it finishes with [`JoinError::Cancelled`]), so
    /// the runtime stays usable; without `std` they are parked for good — and
    /// returns [`RunError::TimedOut`] naming them and what they waited for.
    ///
    /// The limit is checked whenever no fiber is ready (the host context runs
    /// only then): fibers that keep yielding to each other are not stopped.
    /// A test waiting for an interrupt that never comes ends instead of
    /// hanging:
    ///
    /// ```
    /// # #[cfg(feature = "std")] {
    /// use filament::{IrqSignal, RunError, Runtime, Stack};
    /// static NEVER: IrqSignal = IrqSignal::new();
    /// let rt = Runtime::<'static, 1>::new();
    /// let _h = rt.spawn_named("waiter", Stack::host(64 * 1024).unwrap(), |fib| NEVER.wait(fib)).unwrap();
    /// let err = rt.run_for(&mut filament::host::HostClock::new(), 10).unwrap_err();
    /// assert!(matches!(err, RunError::TimedOut(_)));
    /// # }
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn run_for(&self, idle: &mut dyn crate::Idle, ticks: Ticks) -> Result<(), RunError> {
        self.run_inner(Some(idle), Some(ticks))
    }

    /// Like [`run`](Self::run), calling `idle` whenever no fiber is ready but some
    /// sleep or wait for an interrupt. See [`Idle`](crate::Idle).
    #[allow(clippy::result_large_err)]
    pub fn run_with_idle(&self, idle: &mut dyn crate::Idle) -> Result<(), RunError> {
        self.run_inner(Some(idle), None)
    }

    #[allow(clippy::result_large_err)]
    fn run_inner(&self, idle: Option<&mut dyn crate::Idle>, limit: Option<Ticks>) -> Result<(), RunError> {
        let Some(_guard) = self.try_lock(RUNNING) else {
            return Err(RunError::Busy);
        };
        // SAFETY: we hold the lock; this is the host context (not a fiber stack).
        unsafe {
            match (idle, limit) {
                (None, None) => crate::run::run_plain(self.core()),
                (idle, limit) => run_held(self.core(), idle, limit),
            }
        }
    }

    /// Takes the runtime's lock and keeps it until the returned [`Locked`]
    /// is dropped: its calls (spawn, run, take) then skip the atomic
    /// compare-and-swap each of them pays on the `Runtime` itself. `None`
    /// while the runtime is busy (another thread holds it, or it runs).
    ///
    /// ```
    /// use filament::{Runtime, StaticStack};
    /// static STACK: StaticStack<32768> = StaticStack::new();
    /// let rt = Runtime::<'static, 1>::new();
    /// let locked = rt.lock().unwrap();
    /// assert!(rt.stats().is_none()); // busy while `locked` lives
    /// let mut stack = STACK.claim().unwrap();
    /// for i in 0..3 {
    ///     let h = locked.spawn(stack, move |_| i * 2).unwrap();
    ///     locked.run().unwrap();
    ///     let (value, back) = locked.take_with_stack(h).unwrap();
    ///     assert_eq!(value, i * 2);
    ///     stack = back; // spawned on again without a new claim
    /// }
    /// drop(locked);
    /// assert_eq!(rt.stats().unwrap().spawns, 3);
    /// ```
    pub fn lock(&self) -> Option<Locked<'_, 's, N>> {
        let guard = self.try_lock(BUSY)?;
        Some(Locked::new(self, self.core(), guard))
    }

    /// Like [`take`](Self::take), but hands the fiber's stack back instead
    /// of releasing it, so it can be spawned on again without a new claim
    /// (for a [`StaticStack`](crate::StaticStack): no atomic swap). If the
    /// fiber panicked or was cancelled, the error says so and the stack is
    /// released as `take` releases it.
    pub fn take_with_stack<T>(&self, handle: JoinHandle<T>) -> Result<(T, Stack<'s>), JoinError<T>> {
        let Some(_guard) = self.try_lock(BUSY) else {
            return Err(JoinError::Busy(handle));
        };
        let core = self.core();
        // SAFETY: we hold the lock; not on a fiber stack.
        unsafe { take_outcome_and_stack(core, handle) }
    }

    /// Takes the outcome of a finished fiber nobody joined, releasing its slot
    /// and stack. Gives the handle back if the fiber has not finished.
    pub fn take<T>(&self, handle: JoinHandle<T>) -> Result<T, JoinError<T>> {
        let Some(_guard) = self.try_lock(BUSY) else {
            return Err(JoinError::Busy(handle));
        };
        let core = self.core();
        // SAFETY: we hold the lock; not on a fiber stack.
        unsafe { take_outcome(core, handle) }
    }

    /// Gives up on a fiber's result: it is dropped when the fiber finishes (now,
    /// if it already has) and the slot and stack are released.
    pub fn detach<T>(&self, handle: JoinHandle<T>) -> Result<(), JoinError<T>> {
        let Some(_guard) = self.try_lock(BUSY) else {
            return Err(JoinError::Busy(handle));
        };
        let core = self.core();
        // SAFETY: we hold the lock; not on a fiber stack.
        unsafe { detach_raw(core, handle) }
    }

    /// Advances the runtime's clock to `now` (ticks; never backwards), waking
    /// sleepers whose deadline passed. For use between runs (e.g. to start a
    /// run at a hardware tick counter's reading); `false`, changing nothing,
    /// while the runtime is busy — always during [`run`](Self::run), so from
    /// a fiber or from the idle hook too: an idle hook moves the clock by
    /// returning the new time instead ([`Idle::idle`](crate::Idle::idle)).
    pub fn set_now(&self, now: Ticks) -> bool {
        let Some(_guard) = self.try_lock(BUSY) else { return false };
        let core = self.core();
        // SAFETY: we hold the lock.
        unsafe { time::advance(core, now) };
        true
    }

    /// Installs a tracer called at every scheduler event (feature `trace`).
    /// Returns `false` if the runtime is busy.
    #[cfg(feature = "trace")]
    #[cfg_attr(docsrs, doc(cfg(feature = "trace")))]
    pub fn set_tracer(&self, tracer: &'s (dyn crate::Trace + Sync)) -> bool {
        let Some(_guard) = self.try_lock(BUSY) else { return false };
        let core = self.core();
        // SAFETY: we hold the lock. The tracer outlives 's, hence every use by
        // this runtime; the erased lifetime is never observed past that.
        unsafe {
            let t: *const (dyn crate::Trace + 's) = tracer;
            (*core).tracer = Some(core::mem::transmute::<*const (dyn crate::Trace + 's), *const dyn crate::Trace>(t));
            raw::refresh_slow(core);
        }
        true
    }

    /// Installs a scheduling policy that picks the next fiber at every switch
    /// (feature `explore`; see [`host::explore`](crate::host::explore)).
    /// `None` restores strict FIFO. Returns `false` if the runtime is busy.
    #[cfg(feature = "explore")]
    #[cfg_attr(docsrs, doc(cfg(feature = "explore")))]
    pub fn set_policy(&self, policy: Option<std::boxed::Box<dyn crate::SchedulePolicy + Send>>) -> bool {
        let Some(_guard) = self.try_lock(BUSY) else { return false };
        let core = self.core();
        // SAFETY: we hold the lock.
        unsafe {
            (*core).policy = policy;
            raw::refresh_slow(core);
        }
        true
    }

    /// A snapshot of one fiber, or `None` if `id` is stale or the runtime busy.
    pub fn fiber_info(&self, id: FiberId) -> Option<FiberInfo> {
        let _guard = self.try_lock(BUSY)?;
        let core = self.core();
        // SAFETY: we hold the lock.
        unsafe { info(core, id) }
    }

    /// Bytes of stack the fiber used so far (painted stacks only).
    pub fn stack_high_water(&self, id: FiberId) -> Option<usize> {
        self.fiber_info(id)?.stack_high_water
    }

    /// Totals since the runtime was created (`None` if busy).
    pub fn stats(&self) -> Option<Stats> {
        let _guard = self.try_lock(BUSY)?;
        let core = self.core();
        // SAFETY: we hold the lock.
        unsafe { Some(stats(core)) }
    }

    /// Checks the scheduler's structural invariants (ready ring, timer heap,
    /// wait queues, free and zombie lists, counters); for tests and debugging.
    /// Takes the lock like [`stats`](Self::stats): while the runtime is busy
    /// (running, or called from one of its fibers) it checks nothing and
    /// returns [`CheckError::BUSY`](crate::CheckError::BUSY); from a fiber use
    /// [`Fiber::debug_check_invariants`].
    #[doc(hidden)]
    pub fn debug_check_invariants(&self) -> Result<(), crate::CheckError> {
        let Some(_guard) = self.try_lock(BUSY) else { return Err(crate::CheckError::BUSY) };
        let core = self.core();
        // SAFETY: we hold the lock, so nobody else touches the core; headers
        // and queues the core points at are live as the scheduler assumes.
        unsafe { crate::check::check(core, None) }
    }
}

impl<const N: usize> Drop for Runtime<'_, N> {
    fn drop(&mut self) {
        let core = self.core();
        // SAFETY: &mut self: nobody else can reach the runtime; no fiber runs.
        unsafe {
            // No user code before the scoped-runtime check below. Dropped
            // handles' bits just go: what they name is dropped right here.
            crate::orphans::runtime_gone((*core).serial, (*core).live_slot, N);
            raw::reclaim_zombies(core);
            crate::irq::unregister_all(core);
            crate::sync::release_bindings(core);
            // Decide first, before any user destructor runs (one may panic).
            let live_frames = (0..N)
                .map(|i| (*core).slots.add(i))
                .filter(|&s| match (*s).state {
                    State::Free | State::Finished => false,
                    State::Ready => (*s).started,
                    State::Blocked => true,
                })
                .count();
            if live_frames > 0 && self.scoped {
                let s = if live_frames == 1 { "" } else { "s" };
                raw::fatal(format_args!(
                    "a scoped runtime was dropped with {live_frames} suspended fiber{s} on borrowed stacks"
                ));
            }
            // Local fibers' closures and results belong to their thread: on
            // another one they are leaked, never dropped — but their slots
            // and stacks are freed (as `join::detach_orphan` does), so a
            // static stack is not claimed for good.
            #[cfg(feature = "std")]
            let foreign_locals = (*core).local_thread.is_some_and(|t| t != std::thread::current().id());
            #[cfg(not(feature = "std"))]
            let foreign_locals = false;
            // If a destructor below panics, the remaining closures, outcomes
            // and stacks are leaked (never freed under live frames: none exist).
            for i in 0..N {
                let s = (*core).slots.add(i);
                if foreign_locals && (*s).local {
                    match (*s).state {
                        State::Finished => {
                            (*(*s).header).has_outcome = false; // leaked, never dropped
                            raw::free_slot(core, s);
                        }
                        State::Ready if !(*s).started => {
                            (*s).started = true; // its closure is leaked, never dropped
                            raw::free_slot(core, s);
                        }
                        _ => {}
                    }
                    continue;
                }
                match (*s).state {
                    State::Finished => {
                        let h = (*s).header;
                        if (*h).has_outcome {
                            (*h).has_outcome = false;
                            ((*h).drop_payload)((*h).payload, true);
                        }
                        raw::free_slot(core, s);
                    }
                    State::Ready if !(*s).started => {
                        let h = (*s).header;
                        // Mark it started so a panic in the closure's drop
                        // cannot lead to a second drop.
                        (*s).started = true;
                        ((*h).drop_payload)((*h).payload, false);
                        raw::free_slot(core, s);
                    }
                    _ => {}
                }
            }
            // A 'static runtime leaks those stacks: their tokens stay in place.
        }
    }
}

impl<const N: usize> fmt::Debug for Runtime<'_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(_guard) = self.try_lock(BUSY) else {
            return f.write_str("Runtime { <running> }");
        };
        let core = self.core();
        // SAFETY: we hold the lock.
        unsafe { crate::report::write_table(f, core) }
    }
}
