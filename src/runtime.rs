//! The safe layer: [`Runtime`], the [`Fiber`] handle and [`JoinHandle`].

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};
use core::ptr;
use core::sync::atomic::{AtomicU8, Ordering};

use crate::arch;
use crate::error::{DeadlockReport, JoinError, RunError, SpawnError, SpawnErrorKind};
use crate::fiber::{self, FiberId, FiberState, Header, Slot, State, WaitKind, Wake};
use crate::raw::{self, Core};
use crate::stack::{self, Stack};
use crate::time::{self, Ticks, TimerEntry};
use crate::trace::trace_event;
use crate::wait::WaitQueue;

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const RUNNING: u8 = 2;

/// Makes a type invariant in `'s` (neither longer nor shorter lifetimes coerce).
type Invariant<'s> = fn(Stack<'s>) -> Stack<'s>;

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

struct LockGuard<'a>(&'a AtomicU8);
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

    fn try_lock(&self, as_state: u8) -> Option<LockGuard<'_>> {
        self.lock.compare_exchange(IDLE, as_state, Ordering::Acquire, Ordering::Relaxed).ok()?;
        Some(LockGuard(&self.lock))
    }

    /// Binds the core to where the runtime is now (it may have moved since the
    /// last call) and returns it. Must hold the lock.
    #[inline(always)]
    fn core(&self) -> *mut Core {
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
                (*core).live_slot = crate::orphans::register_live((*core).serial);
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

    /// Spawns a fiber running `f` on `stack`. It first runs when [`run`](Self::run)
    /// reaches it (FIFO after the fibers already ready).
    ///
    /// The stack must hold the fiber header, the closure (later its result),
    /// the entry glue's frames and, with `std`, room for a signal frame (a
    /// signal handler installed without `SA_ONSTACK` runs on the fiber's
    /// stack); see [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE) for the reserves.
    /// A smaller stack is refused with
    /// [`SpawnErrorKind::StackTooSmall`]`{ needed, .. }`; a stack of exactly
    /// `needed` bytes is accepted. Signal handlers that need more than a small
    /// frame must use `SA_ONSTACK` and `sigaltstack`.
    ///
    /// On failure nothing is lost: the error hands back the stack and the closure.
    pub fn spawn<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        self.spawn_with(stack, "", false, f).map(|(id, header, rt)| JoinHandle::new(id, header, rt))
    }

    /// Like [`spawn`](Self::spawn) with a name shown in reports and traces.
    pub fn spawn_named<F, T>(
        &self,
        name: &'static str,
        stack: Stack<'s>,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        self.spawn_with(stack, name, false, f).map(|(id, header, rt)| JoinHandle::new(id, header, rt))
    }

    /// Spawns a fiber nobody will join: its result is dropped when it finishes
    /// and its slot and stack are released right away.
    pub fn spawn_detached<F, T>(&self, stack: Stack<'s>, f: F) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        self.spawn_with(stack, "", true, f).map(|(id, _, _)| id)
    }

    fn spawn_with<F, T>(
        &self,
        stack: Stack<'s>,
        name: &'static str,
        detached: bool,
        f: F,
    ) -> Result<Spawned, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        let Some(_guard) = self.try_lock(BUSY) else {
            return Err(SpawnError::new(SpawnErrorKind::Busy, stack, f));
        };
        let core = self.core();
        // SAFETY: we hold the lock and are not on any fiber's stack.
        unsafe { spawn_raw(core, stack, name, detached, false, f) }
    }

    /// Like [`spawn`](Self::spawn) for closures and results that are not
    /// `Send` (`Rc`, `RefCell`, `Cell` shared between fibers): the fiber
    /// belongs to the calling thread (feature `std`).
    ///
    /// Until its slot is freed (its result taken, or it finished detached),
    /// only this thread may [`run`](Self::run) the runtime (others get
    /// [`RunError::WrongThread`]) or spawn more local fibers; the returned
    /// handle is `!Send` when `T` is. A runtime dropped on another thread
    /// leaks what local fibers left (closures, results) instead of dropping
    /// it on the wrong thread.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use filament::{Runtime, Stack};
    ///
    /// let rt = Runtime::<'static, 2>::new();
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for tag in ["a", "b"] {
    ///     let log = log.clone();
    ///     let h = rt.spawn_local(Stack::host(64 * 1024).unwrap(), move |fib| {
    ///         log.borrow_mut().push(tag);
    ///         fib.yield_now();
    ///         log.borrow_mut().push(tag);
    ///     });
    ///     rt.detach(h.unwrap()).unwrap();
    /// }
    /// rt.run().unwrap();
    /// assert_eq!(*log.borrow(), ["a", "b", "a", "b"]);
    /// ```
    ///
    /// A plain `spawn` still refuses them:
    ///
    /// ```compile_fail
    /// use std::rc::Rc;
    /// let rt = filament::Runtime::<'static, 1>::new();
    /// let shared = Rc::new(1);
    /// let _ = rt.spawn(filament::Stack::host(65536).unwrap(), move |_| *shared); // error: Rc is not Send
    /// ```
    #[cfg(feature = "std")]
    pub fn spawn_local<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + 's,
        T: 's,
    {
        let Some(_guard) = self.try_lock(BUSY) else {
            return Err(SpawnError::new(SpawnErrorKind::Busy, stack, f));
        };
        let core = self.core();
        // SAFETY: we hold the lock and are not on any fiber's stack.
        unsafe { spawn_raw(core, stack, "", false, true, f) }.map(|(id, h, rt)| JoinHandle::new(id, h, rt))
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
    // The deadlock report is inline (no heap): a large Err is the price.
    #[allow(clippy::result_large_err)]
    pub fn run(&self) -> Result<(), RunError> {
        self.run_with_idle(&mut time::NoIdle)
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
        self.run_inner(idle, Some(ticks))
    }

    /// Like [`run`](Self::run), calling `idle` whenever no fiber is ready but some
    /// sleep or wait for an interrupt. See [`Idle`](crate::Idle).
    #[allow(clippy::result_large_err)]
    pub fn run_with_idle(&self, idle: &mut dyn crate::Idle) -> Result<(), RunError> {
        self.run_inner(idle, None)
    }

    #[allow(clippy::result_large_err)]
    fn run_inner(&self, idle: &mut dyn crate::Idle, limit: Option<Ticks>) -> Result<(), RunError> {
        let Some(_guard) = self.try_lock(RUNNING) else {
            return Err(RunError::Busy);
        };
        let core = self.core();
        // SAFETY: we hold the lock; this is the host context (not a fiber stack).
        unsafe {
            if (*core).poisoned {
                return Err(RunError::Poisoned);
            }
            if raw::unwinding() {
                return Err(RunError::Unwinding);
            }
            #[cfg(feature = "std")]
            if (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
                // Dropped handles may release the local fibers that pin the
                // runtime (their thread may be gone): adopt them, then look again.
                crate::orphans::adopt(core);
                if (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
                    return Err(RunError::WrongThread);
                }
            }
            // An overflow into a host stack's guard page faults on the fiber's
            // stack: the report handler needs an alternate signal stack.
            #[cfg(feature = "std")]
            crate::host::guard::ensure_altstack();
            (*core).in_run = true;
            // Erase the hook's lifetime: it is cleared below, before `idle`'s
            // borrow ends, and only used while this call runs.
            let idle: *mut (dyn crate::Idle + '_) = idle;
            (*core).clock = Some(mem::transmute::<*mut (dyn crate::Idle + '_), *mut dyn crate::Idle>(idle));
            time::start_clock(core);
            // Counted from the clock's first reading (start_clock moved the
            // runtime's time to it); a limit past `Ticks::MAX` is no limit.
            (*core).stop_at = limit.and_then(|t| (*core).now.checked_add(t)).filter(|&t| t != Ticks::MAX);
            // The run's end, as a guard dropped after `run_loop`'s result is
            // built in place: the (large) `Result` is never moved, so the
            // common path copies no deadlock report.
            let _end = EndRun(core);
            run_loop(core)
        }
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

    /// Advances the runtime's clock to `now` (ticks), waking sleepers whose
    /// deadline passed. Usually called by the idle hook or between runs.
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
            (*core).tracer = Some(mem::transmute::<*const (dyn crate::Trace + 's), *const dyn crate::Trace>(t));
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

/// Ends a `run` call (see `run_inner`), after `run_loop` returned.
struct EndRun(*mut Core);

impl Drop for EndRun {
    fn drop(&mut self) {
        let core = self.0;
        // SAFETY: `run_inner` holds the runtime's lock; the host context.
        unsafe {
            (*core).stop_at = None;
            (*core).clock = None;
            (*core).in_run = false;
            // Every fiber finished (or the runtime is poisoned, which keeps
            // them): the primitives this run bound are free for the next user.
            crate::sync::release_bindings(core);
            // Interrupt signals likewise (nobody waits in them now; their
            // counts stay on the signals, so no notification is lost).
            if !(*core).poisoned {
                crate::irq::unregister_all(core);
            }
            // Last, once the runtime is back in order (it runs user code: a
            // result's Drop may panic, which then reaches the caller of `run`):
            // the fibers whose handles were dropped during the run are done or
            // detached now.
            crate::orphans::adopt(core);
        }
    }
}

impl<const N: usize> Drop for Runtime<'_, N> {
    fn drop(&mut self) {
        let core = self.core();
        // SAFETY: &mut self: nobody else can reach the runtime; no fiber runs.
        unsafe {
            // No user code before the scoped-runtime check below. Dropped
            // handles' notes just go: what they name is dropped right here.
            crate::orphans::runtime_gone((*core).serial, (*core).live_slot);
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
            // another one they are leaked, never dropped.
            #[cfg(feature = "std")]
            let foreign_locals = (*core).local_thread.is_some_and(|t| t != std::thread::current().id());
            #[cfg(not(feature = "std"))]
            let foreign_locals = false;
            // If a destructor below panics, the remaining closures, outcomes
            // and stacks are leaked (never freed under live frames: none exist).
            for i in 0..N {
                let s = (*core).slots.add(i);
                if foreign_locals && (*s).local {
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

/// A snapshot of one fiber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FiberInfo {
    /// Its id.
    pub id: FiberId,
    /// The name given at spawn ("" if none).
    pub name: &'static str,
    /// What it is doing.
    pub state: FiberState,
    /// Its stack's usable size in bytes.
    pub stack_size: usize,
    /// Bytes of stack used so far (`None` for unpainted stacks).
    pub stack_high_water: Option<usize>,
    /// Times it was switched in.
    pub runs: u64,
    /// While blocked in a named primitive: its name; "" otherwise.
    pub waiting_in: &'static str,
}

/// Runtime totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Fibers spawned.
    pub spawns: u64,
    /// Times `run` found nothing ready and waited (idle hook calls).
    pub idles: u64,
    /// Deadlocks detected.
    pub deadlocks: u64,
    /// Fibers alive now (spawned, slot not yet free).
    pub live: usize,
    /// Switches into fibers (from another fiber or from `run`), all fibers
    /// ever spawned included.
    pub switches: u64,
}

/// The running fiber's view of its runtime, passed to its closure.
///
/// Not `Send`: it stands for "the fiber running now on this thread".
pub struct Fiber<'s> {
    core: *mut Core,
    slot: *mut Slot,
    /// Not Send/Sync (`*mut ()`), and invariant in `'s` so a fiber cannot lend
    /// its own short-lived locals to fibers or primitives that need `'s`.
    _marker: PhantomData<(*mut (), Invariant<'s>)>,
}

impl<'s> Fiber<'s> {
    /// This fiber's id.
    pub fn id(&self) -> FiberId {
        // SAFETY: slot is this fiber's live slot.
        unsafe { raw::id_of(self.core, self.slot) }
    }

    /// This fiber's name ("" if none).
    pub fn name(&self) -> &'static str {
        // SAFETY: our header lives as long as we run.
        unsafe { (*(*self.slot).header).name }
    }

    /// Lets every other ready fiber run once, then continues (FIFO). If no
    /// other fiber is ready this returns at once.
    #[inline]
    pub fn yield_now(&self) {
        // SAFETY: a Fiber exists only on its own running fiber's stack.
        unsafe { raw::yield_fast(self.core) }
    }

    /// Gives this fiber its own floating-point control state and loads it.
    ///
    /// From now until the fiber finishes, the scheduler saves this fiber's
    /// MXCSR control bits and x87 control word when it is switched out and
    /// restores them when it is switched in, and every other context keeps its
    /// own (changes made with raw `ldmxcsr`/`fldcw` after this call stay private
    /// to the fiber as well). Fibers that never call this share the host's
    /// state and cost nothing extra per switch (two instructions while any
    /// fiber with its own state lives). With feature `fp-control-always` every
    /// context's state is kept on every switch and this call only loads `fp`.
    ///
    /// # Safety
    /// As for [`FpControl::load`](crate::FpControl::load): Rust assumes the
    /// default FP environment, so the fiber takes responsibility for the code
    /// it runs under a different one.
    ///
    /// ```
    /// use filament::{FpControl, Runtime, StaticStack};
    /// static STACK: StaticStack<16384> = StaticStack::new();
    /// static RT: Runtime<'static, 1> = Runtime::new();
    /// let toward_zero = FpControl { mxcsr: 0x1F80 | 0x6000, x87: 0x0F7F };
    /// let h = RT.spawn(STACK.claim().unwrap(), move |fib| {
    ///     // SAFETY: this fiber runs no float code under the new state.
    ///     unsafe { fib.set_fp_control(toward_zero) };
    ///     fib.yield_now();
    ///     FpControl::current()
    /// }).unwrap();
    /// RT.run().unwrap();
    /// assert_eq!(RT.take(h).unwrap(), toward_zero);
    /// assert_eq!(FpControl::current(), FpControl::DEFAULT); // the host kept its own
    /// ```
    #[cfg(not(feature = "no-fp-control"))]
    #[cfg_attr(docsrs, doc(cfg(not(feature = "no-fp-control"))))]
    pub unsafe fn set_fp_control(&self, fp: crate::FpControl) {
        #[cfg(not(feature = "fp-control-always"))]
        // SAFETY: we are the running fiber; nobody else touches the core now.
        unsafe {
            if !(*self.slot).fp {
                // Until now this fiber ran with the shared state.
                (*self.core).ambient_fp = crate::FpControl::current();
                (*self.slot).fp = true;
                (*self.core).fp_fibers += 1;
                raw::refresh_slow(self.core);
            }
            // Read at the next switch-in if something switches us out first.
            (*(*self.slot).header).fp.write(fp);
        }
        // SAFETY: the caller accepts the FP-environment contract.
        unsafe { fp.load() };
    }

    /// Spawns a fiber from inside a fiber. See [`Runtime::spawn`].
    pub fn spawn<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: we run inside `run`, which holds the runtime's lock.
        unsafe { spawn_raw(self.core, stack, "", false, false, f) }.map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// Spawns a fiber whose closure and result need not be `Send`, from
    /// inside a fiber (feature `std`). See [`Runtime::spawn_local`].
    #[cfg(feature = "std")]
    pub fn spawn_local<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + 's,
        T: 's,
    {
        // SAFETY: we run inside `run`, which holds the runtime's lock, on
        // the thread running it.
        unsafe { spawn_raw(self.core, stack, "", false, true, f) }.map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// Spawns a named fiber from inside a fiber.
    pub fn spawn_named<F, T>(
        &self,
        name: &'static str,
        stack: Stack<'s>,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: as in `spawn`.
        unsafe { spawn_raw(self.core, stack, name, false, false, f) }.map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// Spawns a detached fiber from inside a fiber. See [`Runtime::spawn_detached`].
    pub fn spawn_detached<F, T>(&self, stack: Stack<'s>, f: F) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: as in `spawn`.
        unsafe { spawn_raw(self.core, stack, "", true, false, f) }.map(|(id, _, _)| id)
    }

    /// Blocks until the fiber finishes and returns its value (or how it failed).
    /// Waiting costs nothing: this fiber is off the ready queue until then.
    pub fn join<T>(&self, handle: JoinHandle<T>) -> Result<T, JoinError<T>> {
        // SAFETY: we are the running fiber of `core`.
        unsafe {
            let Some(target) = find(self.core, &handle) else {
                return Err(JoinError::WrongRuntime(handle));
            };
            if target == self.slot {
                return Err(JoinError::SelfJoin(handle));
            }
            if (*target).state != State::Finished {
                let q = &raw const (*(*target).header).joiners;
                let wake = raw::block_current(self.core, q, WaitKind::Join, q as usize, None);
                if wake == Wake::Unwinding {
                    return Err(JoinError::Unwinding(handle));
                }
                self.check_cancel(wake);
            }
            take_outcome(self.core, handle)
        }
    }

    /// Gives up on a fiber's result (see [`Runtime::detach`]).
    pub fn detach<T>(&self, handle: JoinHandle<T>) -> Result<(), JoinError<T>> {
        // SAFETY: we run inside `run`.
        unsafe { detach_raw(self.core, handle) }
    }

    /// Bytes of this fiber's stack used so far (`None` if unpainted).
    pub fn stack_high_water(&self) -> Option<usize> {
        // SAFETY: our own stack is live.
        unsafe {
            let h = (*self.slot).header;
            (*h).stack.is_painted().then(|| stack::high_water((*self.slot).lo, (*h).stack.top()))
        }
    }

    /// A snapshot of any fiber of this runtime.
    pub fn fiber_info(&self, id: FiberId) -> Option<FiberInfo> {
        // SAFETY: we run inside `run`.
        unsafe { info(self.core, id) }
    }

    /// Checks the scheduler's structural invariants from inside this fiber
    /// (it must be the ring's `current`); see
    /// [`Runtime::debug_check_invariants`]. For tests and debugging.
    #[doc(hidden)]
    pub fn debug_check_invariants(&self) -> Result<(), crate::CheckError> {
        // SAFETY: we are the running fiber: nothing else touches the core
        // while this call runs.
        unsafe { crate::check::check(self.core, Some(self.slot)) }
    }

    /// The runtime's current tick.
    ///
    /// With an idle hook whose clock runs on its own ([`Idle::now`](crate::Idle::now)
    /// returns `Some`: [`HostClock`](crate::host::HostClock), a tick counter) this
    /// reads that clock first (never backwards), so a deadline computed from it
    /// (`sleep`, every `_timeout` form) counts from the real present, not from
    /// the last time the runtime looked. Fibers whose deadlines the new time
    /// reached are made ready (they run after this fiber's next switch).
    pub fn now(&self) -> Ticks {
        // SAFETY: we are the running fiber, inside `run`.
        unsafe {
            time::refresh(self.core);
            (*self.core).now
        }
    }

    /// Sleeps for `ticks` ticks (at least; wakes at the first clock advance that
    /// reaches the deadline).
    ///
    /// `sleep(0)` yields: the other ready fibers run first (FreeRTOS's
    /// `vTaskDelay(0)`). `sleep(Ticks::MAX)` sleeps forever (until a deadlock
    /// cancels the fiber, under `std`).
    pub fn sleep(&self, ticks: Ticks) {
        self.sleep_until(self.now().saturating_add(ticks));
    }

    /// Sleeps until the clock reaches `deadline`. A deadline already reached
    /// yields (see [`sleep`](Self::sleep)); `Ticks::MAX` is never reached.
    pub fn sleep_until(&self, deadline: Ticks) {
        if deadline <= self.now() {
            self.yield_now();
            return;
        }
        // SAFETY: we are the running fiber; a sleep waits in no queue.
        unsafe {
            let wake = raw::block_current(self.core, ptr::null(), WaitKind::Sleep, deadline as usize, Some(deadline));
            self.check_cancel(wake);
        }
    }

    pub(crate) fn core_ptr(&self) -> *mut Core {
        self.core
    }

    pub(crate) fn slot_ptr(&self) -> *mut Slot {
        self.slot
    }

    /// Blocks the running fiber on `q` until woken or `deadline` (if any).
    ///
    /// # Safety
    /// `q` must stay valid while the fiber waits (it lives in a primitive that
    /// outlives every waiter) and belong to this runtime.
    pub(crate) unsafe fn wait_on(&self, q: &WaitQueue, kind: WaitKind, deadline: Option<Ticks>) -> Wake {
        // SAFETY: we are the running fiber; q outlives the wait by contract.
        unsafe {
            let wake = raw::block_current(self.core, q, kind, q as *const WaitQueue as usize, deadline);
            self.check_cancel(wake);
            wake
        }
    }

    /// Unwinds the fiber if the runtime cancelled it (std only).
    #[inline]
    fn check_cancel(&self, wake: Wake) {
        if wake == Wake::Cancelled {
            cancel_unwind();
        }
    }
}

impl fmt::Debug for Fiber<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

#[cfg(feature = "std")]
fn cancel_unwind() -> ! {
    extern crate std;
    std::panic::resume_unwind(std::boxed::Box::new(crate::host::Cancelled))
}

#[cfg(not(feature = "std"))]
fn cancel_unwind() -> ! {
    raw::fatal(format_args!("a cancelled fiber was resumed without std"))
}

/// The right to a fiber's result. Get the value with [`Fiber::join`] (from a
/// fiber) or [`Runtime::take`] (after `run`). Not `Clone`: one owner, one take.
///
/// Dropping a handle without joining detaches the fiber (its result is
/// dropped when it finishes and its slot freed), as std's and tokio's
/// handles do; [`Runtime::detach`] does it at once.
#[must_use = "dropping the handle detaches the fiber: its result is lost"]
pub struct JoinHandle<T> {
    id: FiberId,
    header: *mut Header,
    /// The spawning runtime's serial: a handle is only ever honoured by it.
    runtime: u64,
    /// The runtime's entry in the table of live runtimes (`orphans`).
    live_slot: u32,
    _marker: PhantomData<fn() -> T>,
}

// SAFETY: the header pointer is only an identity check, dereferenced only by a
// runtime that owns it, under its lock; T crosses threads only if Send (spawn
// requires it).
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: &JoinHandle gives nothing but the id.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    fn new(id: FiberId, header: *mut Header, (runtime, live_slot): (u64, u32)) -> Self {
        JoinHandle { id, header, runtime, live_slot, _marker: PhantomData }
    }

    /// The handle was used up (its result taken or the fiber detached): no
    /// note on drop.
    fn disarm(self) {
        mem::forget(self);
    }

    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.id
    }
}

/// Dropping a handle detaches its fiber, as std's and tokio's do: the result
/// is dropped when the fiber finishes (at once if it has) and the slot is
/// freed. The handle cannot reach its runtime (which may have moved or been
/// dropped), so it leaves a note the runtime adopts when it runs out of free
/// slots, when a `run` returns, or when it is dropped (`crate::orphans`).
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        crate::orphans::leave(self.runtime, self.live_slot, self.id.index, self.id.generation, self.header as usize);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.id).finish()
    }
}

/// What a spawn produced: the fiber's id, its header, and the runtime's
/// (serial, live-table entry) for its `JoinHandle`.
type Spawned = (FiberId, *mut Header, (u64, u32));

/// The bytes at the top of a fresh fiber's stack: the closure, later its outcome.
union Payload<F, T> {
    _closure: ManuallyDrop<F>,
    _outcome: ManuallyDrop<Result<T, JoinError<()>>>,
}

// The entry glue's stack reserve.
//
// The glue — `__filament_fiber_start`, `fiber_entry`, `call_closure` with
// `catch_unwind` under `std`, the `FnOnce` shims, and the exit path
// (`raw::leave` and what it calls, still on the fiber's stack) — writes below
// the initial frame before and after the closure body runs. `spawn` refuses a
// stack without room for it: the canary cannot protect the glue, because a
// frame reserved with `sub rsp` (every frame holding a large copy) can skip the
// canary words entirely and write below the stack unseen.
//
// What it writes was measured by `tests/stack_reserve.rs`
// (`glue_stack_use_fits_the_reserve`, paint + high-water mark, features
// std + trace + explore, x86_64, rustc 1.95.0), in bytes below the initial
// frame. F = the closure, R = `Result<T, JoinError<()>>`; "capture" closures
// hold an F of the given size and alignment and return `()`, "result" closures
// return a T of it (capturing a `Box`), "both" capture and return it:
//
//   size × align     capture  debug/release   result  debug/release   both  debug/release
//   empty (0 × 1)            1512 /    32               1512 /    32         1512 /    32
//          64 × 1            1512 /    80               1512 /   208         1512 /    96
//        1000 × 1            1840 /  1040               5200 /  1152         5792 /  1072
//        4096 × 1            4944 /  4144              17592 /  4264        21264 /  4160
//       16384 × 1           17232 / 16432              66744 / 16552        82704 / 16448
//       1024 × 16            1872 /  1072               5312 /  2208         5936 /  1088
//       1024 × 64            1984 /  1248               5712 /  2384         6336 /  1136
//       256 × 256            1536 /   992               3984 /  1360         3840 /   560
//      4096 × 256            5376 /  4832              19368 /  9064        23040 /  4400
//     4096 × 4096           16384 / 16352              53672 / 20584        57344 /  8240
//     8192 × 4096           20480 / 20448              70056 / 28776        77824 / 12336
//     8192 × 8192           32768 / 32736             106920 / 41064       114688 / 16432
//    16384 × 8192           40960 / 40928             139688 / 57448       155648 / 24624
//
// Read as copies: with slot(X) = size_of X rounded up to 16, plus align_of X
// when that exceeds 16 (a frame holding an over-aligned copy realigns `rsp`
// downwards, wasting up to that much), the glue holds at most 2 slots of F in
// both profiles (exactly 2 for the 4096- and 8192-aligned captures); at most
// 2 slots of R in release and ~4.3 in debug (the outcome is written in place
// by `call_closure`; when it was returned through the frames instead, debug
// builds held 11 slots of R, and 15 once the detached case was moved inside
// the unwind boundary); and a fixed part of 1512 bytes in debug, at most 256
// in release.
//
// The reserve below adds one slot of F and of R to the measured counts, and
// ~70 % to the unoptimised fixed part, and it is the *unoptimised* reserve in
// every build: `fiber_entry::<F, T>` and `call_closure` are generic, so they
// are compiled in the user's crate with the user's optimisation level (and a
// per-package profile override can differ from filament's), while any `cfg!`
// here sees only how filament itself was compiled. A build whose glue is
// optimised pays ~2.3 KiB and 3 slots of R of unused reserve per fiber; a
// guess in the other direction wrote below the stack (an `opt-level = 0`,
// `debug-assertions = false` build: 12 KiB below a 70 KiB stack, found by an
// adversarial review). The measurement test runs under the dev, release and
// `unopt-nodebug` profiles and fails if the glue ever outgrows the reserve.

/// Fixed bytes the entry glue writes below the initial frame (measured: 1512
/// unoptimised, at most 256 optimised).
const ENTRY_HEADROOM: usize = 2560;
/// Slots of the closure the glue frames hold at most (measured: 2).
const CLOSURE_COPIES: usize = 3;
/// Slots of the outcome the glue frames hold at most (measured: ~4.3
/// unoptimised, 2 optimised).
const OUTCOME_COPIES: usize = 6;

/// Stack one copy of a value of this size and alignment takes in a glue frame,
/// including the padding a frame realigning `rsp` for it may waste.
const fn glue_slot(size: usize, align: usize) -> usize {
    let size = size.next_multiple_of(arch::STACK_ALIGN);
    if align > arch::STACK_ALIGN { size.saturating_add(align) } else { size }
}

/// Stack the entry glue needs below the initial frame for a closure `F`
/// returning `T` (see the measurements above).
const fn entry_headroom<F, T>() -> usize {
    let f = glue_slot(mem::size_of::<F>(), mem::align_of::<F>()).saturating_mul(CLOSURE_COPIES);
    let r = glue_slot(mem::size_of::<Result<T, JoinError<()>>>(), mem::align_of::<Result<T, JoinError<()>>>())
        .saturating_mul(OUTCOME_COPIES);
    ENTRY_HEADROOM.saturating_add(f).saturating_add(r)
}

/// Stack a signal may take below a running fiber's deepest frame: on a host
/// (`std`), the kernel's signal frame, the red zone and a small handler
/// allowance (`host::signal_reserve`); without `std` (bare metal) nothing,
/// there are no signals.
#[inline(always)]
fn signal_reserve() -> usize {
    #[cfg(feature = "std")]
    {
        crate::host::signal_reserve()
    }
    #[cfg(not(feature = "std"))]
    {
        0
    }
}

/// The smallest stack a fiber fits: `above` bytes of header and payload at the
/// top, the initial frame, the glue's `headroom`, the signal reserve and the
/// canary, rounded up to the stack alignment (so a stack of exactly this size
/// is accepted).
#[inline(always)]
fn stack_needed(above: usize, headroom: usize) -> usize {
    above
        .saturating_add(arch::INIT_FRAME_BYTES + stack::CANARY_BYTES)
        .saturating_add(headroom)
        .saturating_add(signal_reserve())
        .saturating_add(arch::STACK_ALIGN - 1)
        & !(arch::STACK_ALIGN - 1)
}

/// Places the closure on the stack, builds the initial frame and queues the fiber.
///
/// # Safety
/// The caller holds the runtime's lock or runs inside `run`; `core` is bound.
unsafe fn spawn_raw<'s, F, T>(
    core: *mut Core,
    stack: Stack<'s>,
    name: &'static str,
    detached: bool,
    local: bool,
    f: F,
) -> Result<Spawned, SpawnError<'s, F>>
where
    F: FnOnce(&Fiber<'s>) -> T + 's,
    T: 's,
{
    // SAFETY: exclusive access to core per the contract.
    unsafe {
        if (*core).poisoned {
            return Err(SpawnError::new(SpawnErrorKind::Poisoned, stack, f));
        }
        #[cfg(feature = "std")]
        if local {
            let me = std::thread::current().id();
            if (*core).local_thread.is_some_and(|t| t != me) {
                return Err(SpawnError::new(SpawnErrorKind::WrongThread, stack, f));
            }
        }
        if (*core).free.is_null() {
            // Dropped handles' fibers free their slots (their results are
            // dropped here: a panic in such a Drop reaches this caller, and the
            // closure and stack of this spawn are dropped with the unwind).
            // Not while unwinding: a second panic would abort.
            if !raw::unwinding() {
                crate::orphans::adopt(core);
            }
            raw::reclaim_zombies(core);
        }
        let s = (*core).free;
        if s.is_null() {
            let finished_untaken = (0..(*core).cap)
                .map(|i| (*core).slots.add(i))
                .filter(|&s| (*s).state == State::Finished && !(*(*s).header).detached)
                .count();
            return Err(SpawnError::new(SpawnErrorKind::Full { capacity: (*core).cap, finished_untaken }, stack, f));
        }

        // Layout from the top: header, payload (its own alignment), frame.
        // The token guarantees a 16-aligned `top`, so with a payload aligned to
        // at most 16 every offset below is a compile-time constant.
        let size = stack.size();
        let base = stack.lo();
        let top = stack.top();
        const { assert!(mem::align_of::<Header>() <= arch::STACK_ALIGN) };
        let (header, payload, frame_top) = if const { mem::align_of::<Payload<F, T>>() <= arch::STACK_ALIGN } {
            // Constants (sizes of types), folded at compile time.
            let header_off = mem::size_of::<Header>().next_multiple_of(arch::STACK_ALIGN);
            let frame_off = header_off + mem::size_of::<Payload<F, T>>().next_multiple_of(arch::STACK_ALIGN);
            let needed = stack_needed(frame_off, entry_headroom::<F, T>());
            if size < needed {
                return Err(SpawnError::new(SpawnErrorKind::StackTooSmall { needed, size }, stack, f));
            }
            (top.sub(header_off).cast::<Header>(), top.sub(frame_off), top.sub(frame_off))
        } else {
            let lo = base as usize;
            let top = top as usize;
            let header_at = (top - mem::size_of::<Header>()) & !(arch::STACK_ALIGN - 1);
            let payload_at =
                header_at.saturating_sub(mem::size_of::<Payload<F, T>>()) & !(mem::align_of::<Payload<F, T>>() - 1);
            let frame_top = payload_at & !(arch::STACK_ALIGN - 1);
            let needed = stack_needed(top - frame_top, entry_headroom::<F, T>());
            if payload_at <= lo || size < needed {
                return Err(SpawnError::new(SpawnErrorKind::StackTooSmall { needed, size }, stack, f));
            }
            (base.add(header_at - lo).cast::<Header>(), base.add(payload_at - lo), base.add(frame_top - lo))
        };

        let painted = stack.is_painted();
        stack.note_fiber(raw::id_of(core, s), name);
        // Erase 's: the token is dropped only once no frame remains on it and
        // never after the runtime ('s-bounded) is gone.
        let stack: Stack<'static> = mem::transmute::<Stack<'s>, Stack<'static>>(stack);
        payload.cast::<F>().write(f);
        header.write(Header {
            stack: ManuallyDrop::new(stack),
            joiners: WaitQueue::new(),
            payload,
            drop_payload: fiber::drop_payload::<F, Result<T, JoinError<()>>>,
            name,
            detached,
            has_outcome: false,
            fp: mem::MaybeUninit::uninit(),
        });
        // AddressSanitizer builds: a fiber that finished left the redzones of
        // its last frames on this memory (it leaves by a jump, never by
        // returning through them); a new fiber starts on a clean stack.
        #[cfg(filament_asan)]
        asan_unpoison(base, size);
        stack::prepare(base, frame_top.sub(arch::INIT_FRAME_BYTES), painted);
        let sp = arch::init_stack(frame_top, fiber_entry::<F, T>, payload, core.cast());

        // `started` is already false: a free slot was never run or was retired.
        (*core).free = (*s).next;
        if local {
            (*s).local = true;
            (*core).local_fibers += 1;
            #[cfg(feature = "std")]
            {
                (*core).local_thread = Some(std::thread::current().id());
            }
        }
        (*s).sp = sp;
        (*s).lo = base;
        (*s).header = header;
        (*s).runs = 0;
        (*core).unfinished += 1;
        (*core).spawns += 1;
        trace_event!(core, spawn(raw::id_of(core, s), name));
        raw::make_ready(core, s);
        Ok((raw::id_of(core, s), header, ((*core).serial, (*core).live_slot)))
    }
}

/// The first (and only) Rust frame of every fiber.
///
/// # Safety
/// Called only by the arch trampoline on a stack prepared by `spawn_raw`, with
/// `payload` holding an `F` and `core` the runtime's core whose `current` is us.
unsafe extern "C" fn fiber_entry<'s, F, T>(payload: *mut u8, core: *mut u8) -> !
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    let core = core.cast::<Core>();
    // SAFETY: per the contract; the closure is moved off the payload bytes
    // before they are reused for the outcome.
    unsafe {
        let slot = (*core).current;
        (*slot).started = true;
        let fib = Fiber { core, slot, _marker: PhantomData };
        call_closure::<F, T>(payload, &fib, (*slot).header);
        raw::leave(core)
    }
}

/// Moves the closure out of the payload as late as possible (inside the
/// unwind boundary), so a large closure is copied into as few frames as
/// possible, calls it, and writes its outcome into the payload bytes (the
/// closure has left them by then), or — for a detached fiber — drops it
/// there. Everything user code drops (the result, captured values, a panic
/// payload) is dropped inside the boundary: a panicking `Drop` never
/// unwinds into the `extern "C"` entry. The outcome is written in place, not
/// returned, so an unoptimised build copies a large result as few times as
/// possible (the stack reserve in `entry_headroom` counts those copies).
///
/// # Safety
/// `payload` holds a valid `F` that nobody else reads, with room for the
/// outcome; `header` is the running fiber's header.
#[cfg(feature = "std")]
unsafe fn call_closure<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>, header: *mut Header)
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    extern crate std;
    let out = payload.cast::<Result<T, JoinError<()>>>();
    let run = || {
        // SAFETY: read exactly once, per the contract; from here on the
        // payload bytes are free for the outcome.
        let value = unsafe { payload.cast::<F>().read() }(fib);
        // SAFETY: the header lives as long as the fiber; `detached` may have
        // been set while the fiber ran (detach of a running fiber).
        unsafe {
            if (*header).detached {
                drop(value);
            } else {
                out.write(Ok(value));
                (*header).has_outcome = true;
            }
        }
    };
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        // SAFETY: the header lives as long as the fiber.
        #[cfg(filament_asan)]
        unsafe {
            asan_unpoison_below_here((*header).stack.lo())
        };
        // SAFETY: as above; a panic before `has_outcome` was set left no
        // outcome behind (the write is the last thing that can panic-free
        // happen), so the bytes are free.
        unsafe {
            if (*header).detached {
                crate::host::drop_panic_payload(panic);
            } else {
                out.write(Err(crate::host::outcome_of_panic(panic)));
                (*header).has_outcome = true;
            }
        }
    }
}

/// AddressSanitizer builds (`--cfg filament_asan`, set by CI): after an
/// unwind on a fiber stack, clears the poison of the frames it unwound.
///
/// An unwind ends in a `noreturn` call, where ASan unpoisons the stack below
/// the current frame, but only on a stack it knows the bounds of; on a fiber
/// stack it declines ("ignoring requested __asan_handle_no_return"), and the
/// stale redzones of the unwound frames then fault in the next frames that
/// reuse that memory (a false positive). Everything below this frame and
/// above the stack's low end is dead.
///
/// # Safety
/// `lo` is the low end of the running fiber's stack.
#[cfg(filament_asan)]
#[inline(never)]
unsafe fn asan_unpoison_below_here(lo: *mut u8) {
    let here = 0u8;
    let top = core::hint::black_box(&raw const here) as usize;
    // SAFETY: [lo, top - 256) lies inside the running fiber's own stack, below
    // every live frame (this function's frame is the lowest one).
    unsafe { asan_unpoison(lo, top - 256 - lo as usize) };
}

#[cfg(filament_asan)]
unsafe extern "C" {
    /// AddressSanitizer's runtime: marks `[addr, addr + size)` addressable.
    #[link_name = "__asan_unpoison_memory_region"]
    fn asan_unpoison(addr: *const u8, size: usize);
}

/// # Safety
/// `payload` holds a valid `F` that nobody else reads, with room for the
/// outcome; `header` is the running fiber's header.
#[cfg(not(feature = "std"))]
unsafe fn call_closure<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>, header: *mut Header)
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    // Without std a panic runs the user's panic handler. With `panic =
    // "abort"` (bare metal) that is the end. In a program that unwinds (a
    // std binary using filament without its `std` feature: host tests!) the
    // unwind must not cross the assembly frames: this guard, dropped only by
    // an unwind, stops the program with a message that says what to do. (An
    // unwind reaching the `extern "C"` entry would abort too, with a message
    // that says nothing about filament.)
    struct PanicWithoutStd(*const Fiber<'static>);
    impl Drop for PanicWithoutStd {
        fn drop(&mut self) {
            // SAFETY: the fiber handle outlives this frame.
            let (id, name) = unsafe { ((*self.0).id(), (*self.0).name()) };
            raw::fatal(format_args!(
                "fiber {id} \"{name}\" panicked; filament cannot catch a fiber's panic without its `std` \
                 feature (for host tests: [dev-dependencies] filament = {{ version = \"*\", features = [\"std\"] }})"
            ))
        }
    }
    let guard = PanicWithoutStd((fib as *const Fiber<'s>).cast());
    // SAFETY: read exactly once, per the contract; the header lives as long
    // as the fiber.
    unsafe {
        let value = payload.cast::<F>().read()(fib);
        core::mem::forget(guard);
        if (*header).detached {
            drop(value);
        } else {
            payload.cast::<Result<T, JoinError<()>>>().write(Ok(value));
            (*header).has_outcome = true;
        }
    }
}

/// Finds the slot a handle refers to, if it belongs to this runtime.
///
/// # Safety
/// Exclusive access to `core`.
unsafe fn find<T>(core: *mut Core, h: &JoinHandle<T>) -> Option<*mut Slot> {
    // SAFETY: index bounds-checked against cap.
    unsafe {
        if h.id.index as usize >= (*core).cap {
            return None;
        }
        let s = (*core).slots.add(h.id.index as usize);
        ((*core).serial == h.runtime
            && (*s).state != State::Free
            && (*s).generation == h.id.generation
            && (*s).header == h.header)
            .then_some(s)
    }
}

/// # Safety
/// Exclusive access to `core`, not on the target fiber's stack.
unsafe fn take_outcome<T>(core: *mut Core, handle: JoinHandle<T>) -> Result<T, JoinError<T>> {
    // SAFETY: find validated the handle; a finished fiber's payload holds its
    // outcome of type Result<T, JoinError<()>> (T fixed by the handle's type).
    unsafe {
        let Some(s) = find(core, &handle) else {
            return Err(JoinError::WrongRuntime(handle));
        };
        if (*s).state != State::Finished {
            return Err(JoinError::NotFinished(handle));
        }
        let h = (*s).header;
        debug_assert!((*h).has_outcome);
        let outcome = (*h).payload.cast::<Result<T, JoinError<()>>>().read();
        (*h).has_outcome = false;
        handle.disarm();
        raw::free_slot(core, s);
        outcome.map_err(JoinError::cast)
    }
}

/// # Safety
/// Exclusive access to `core`, not on the target fiber's stack.
unsafe fn detach_raw<T>(core: *mut Core, handle: JoinHandle<T>) -> Result<(), JoinError<T>> {
    // SAFETY: as in take_outcome.
    unsafe {
        let Some(s) = find(core, &handle) else {
            return Err(JoinError::WrongRuntime(handle));
        };
        handle.disarm();
        detach_slot(core, s);
        Ok(())
    }
}

/// Detaches the fiber a dropped handle named (see [`crate::orphans`]), if it
/// is still that fiber.
///
/// # Safety
/// Exclusive access to `core`; not on that fiber's stack if it finished.
pub(crate) unsafe fn detach_orphan(core: *mut Core, index: u32, generation: u32, header: usize) {
    // SAFETY: index bounds-checked; the slot is checked like a handle's.
    unsafe {
        if index as usize >= (*core).cap {
            return;
        }
        let s = (*core).slots.add(index as usize);
        if (*s).state == State::Free || (*s).generation != generation || (*s).header as usize != header {
            return; // that fiber is gone already
        }
        // A local fiber's result belongs to its thread: never dropped on
        // another. There, a finished one's result is leaked (its slot and
        // stack are freed all the same, so the runtime is not pinned to a
        // thread that may be gone); an unfinished one is marked detached and
        // drops its result when it finishes, on its own thread.
        #[cfg(feature = "std")]
        if (*s).local && (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
            let h = (*s).header;
            if (*s).state == State::Finished {
                (*h).has_outcome = false; // leaked, never dropped
                raw::free_slot(core, s);
            } else {
                (*h).detached = true;
            }
            return;
        }
        detach_slot(core, s);
    }
}

/// Gives up on a fiber's result: drops it now and frees the slot if the
/// fiber finished, else marks it detached (dropped at finish).
///
/// # Safety
/// Exclusive access to `core`; `s` a live (non-free) slot of it, not the
/// stack this runs on if it finished.
unsafe fn detach_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract.
    unsafe {
        let h = (*s).header;
        if (*s).state == State::Finished {
            // Frees the slot even if the outcome's `Drop` panics (the panic
            // then reaches the caller of `detach`, the slot is not leaked).
            struct FreeOnExit(*mut Core, *mut Slot);
            impl Drop for FreeOnExit {
                fn drop(&mut self) {
                    // SAFETY: the slot is finished and its outcome is gone
                    // (dropped, or abandoned by a panicking drop); nobody
                    // runs on its stack.
                    unsafe { raw::free_slot(self.0, self.1) }
                }
            }
            let _free = FreeOnExit(core, s);
            if (*h).has_outcome {
                (*h).has_outcome = false;
                ((*h).drop_payload)((*h).payload, true);
            }
        } else {
            (*h).detached = true;
        }
    }
}

/// The host side of `run`.
///
/// # Safety
/// Exclusive access to `core`; called on the host's own stack.
#[allow(clippy::result_large_err)]
#[inline(always)]
unsafe fn run_loop(core: *mut Core) -> Result<(), RunError> {
    // SAFETY: per the contract.
    unsafe {
        // The common case — fibers run until every one has finished — needs no
        // deadlock report (2 KiB) and no idle hook: keep it out of that frame.
        if run_ready(core) { Ok(()) } else { run_blocked(core) }
    }
}

/// Runs ready fibers until the ring is empty. Returns whether every fiber
/// has finished (otherwise some are blocked).
///
/// # Safety
/// As for [`run_loop`].
#[inline(always)]
unsafe fn run_ready(core: *mut Core) -> bool {
    // SAFETY: per the contract.
    unsafe {
        loop {
            if !(*core).zombies.is_null() {
                reclaim_zombies_cold(core);
            }
            time::poll(core);
            let c = (*core).current;
            if c.is_null() {
                return (*core).unfinished == 0;
            }
            #[cfg(feature = "explore")]
            crate::policy::choose(core);
            let c = (*core).current;
            trace_event!(core, switch_in(raw::id_of(core, c)));
            raw::fp_handover(core, ptr::null_mut(), c);
            arch::switch(&raw mut (*core).host_sp, (*c).sp);
        }
    }
}

/// Out-of-line zombie reclaim for the host loop (zombies are rare).
///
/// # Safety
/// Exclusive access to `core`; called on the host's own stack.
#[cold]
#[inline(never)]
unsafe fn reclaim_zombies_cold(core: *mut Core) {
    // SAFETY: forwarded: the host context runs on no zombie's stack.
    unsafe { raw::reclaim_zombies(core) }
}

/// [`run_loop`] once fibers are blocked: idling, timers and deadlock detection.
///
/// # Safety
/// As for [`run_loop`].
#[cold]
#[inline(never)]
#[allow(clippy::result_large_err)]
unsafe fn run_blocked(core: *mut Core) -> Result<(), RunError> {
    // SAFETY: per the contract.
    unsafe {
        // A deadlock found under std: reported once the cancelled fibers are gone.
        let mut deadlocked: Option<DeadlockReport> = None;
        // `run_for`'s limit was reached (its report is `deadlocked`'s).
        let mut timed_out = false;
        let finish = |report: Option<DeadlockReport>, timed_out: bool| match report {
            Some(report) if timed_out => Err(RunError::TimedOut(report)),
            Some(report) => Err(RunError::Deadlock(report)),
            None => Ok(()),
        };
        loop {
            raw::reclaim_zombies(core);
            time::poll(core);
            if !(*core).current.is_null() {
                #[cfg(feature = "explore")]
                crate::policy::choose(core);
                let c = (*core).current;
                trace_event!(core, switch_in(raw::id_of(core, c)));
                raw::fp_handover(core, ptr::null_mut(), c);
                arch::switch(&raw mut (*core).host_sp, (*c).sp);
                continue;
            }
            if (*core).unfinished == 0 {
                return finish(deadlocked, timed_out);
            }
            if (*core).unfinished == (*core).parked {
                // Only fibers parked for good are left (poisoned runtime);
                // every fiber a deadlock cancelled has unwound by now.
                return finish(Some(deadlocked.unwrap_or_default()), timed_out);
            }
            // Nothing ready, some fibers blocked.
            let stop = (*core).stop_at;
            let stopped = stop.is_some_and(|t| (*core).now >= t);
            if !stopped && (time::has_timers(core) || crate::irq::armed(core)) {
                (*core).idles += 1;
                trace_event!(core, idle((*core).now));
                let next = match (time::next_deadline(core), stop) {
                    (Some(d), Some(t)) => Some(d.min(t)),
                    (d, t) => d.or(t),
                };
                let now = time::idle(core, next);
                time::advance(core, now);
                continue;
            }
            // A deadlock, or `run_for`'s limit: cancelled fibers unwind now
            // (the loop runs them, even when this pass also parked a fiber for
            // good); report when they are done, naming the fibers of every
            // pass on the way.
            if stopped {
                timed_out = true;
            } else {
                (*core).deadlocks += 1;
            }
            let report = deadlock(core);
            match &mut deadlocked {
                Some(first) => first.merge(report),
                None => deadlocked = Some(report),
            }
        }
    }
}

/// Builds the deadlock report, then unlinks the blocked fibers from their
/// queues and cancels (std) or parks (no_std) them.
///
/// # Safety
/// Exclusive access to `core`, host stack, ring empty.
unsafe fn deadlock(core: *mut Core) -> DeadlockReport {
    // SAFETY: per the contract; blocked fibers' wait_obj names a live queue.
    unsafe {
        let mut report = DeadlockReport::default();
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state == State::Blocked && (*s).wait_kind != WaitKind::Parked {
                report.push(
                    raw::id_of(core, s),
                    (*(*s).header).name,
                    raw::wait_reason(core, s),
                    raw::wait_object_name(s),
                );
            }
        }
        let cancel = cfg!(feature = "std");
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state != State::Blocked || (*s).wait_kind == WaitKind::Parked {
                continue;
            }
            if (*s).wait_kind.has_queue() {
                (*((*s).wait_obj as *const WaitQueue)).remove(s);
            }
            time::cancel_deadline(core, s);
            if cancel && !(*s).cancelled {
                (*s).cancelled = true;
                raw::wake(core, s, Wake::Cancelled);
            } else {
                // Already cancelled once and blocked again, or no std: park it
                // for good. It is in no queue, so nothing points at it.
                (*core).poisoned = true;
                (*core).parked += 1;
                (*s).wait_kind = WaitKind::Parked;
                (*s).wait_obj = 0;
            }
        }
        report
    }
}

/// # Safety
/// Exclusive access to `core`.
unsafe fn info(core: *mut Core, id: FiberId) -> Option<FiberInfo> {
    // SAFETY: per the contract.
    unsafe {
        if id.index as usize >= (*core).cap {
            return None;
        }
        let s = (*core).slots.add(id.index as usize);
        if (*s).state == State::Free || (*s).generation != id.generation {
            return None;
        }
        Some(info_of(core, s))
    }
}

/// # Safety
/// Exclusive access to `core`; `s` a non-free slot.
pub(crate) unsafe fn info_of(core: *mut Core, s: *mut Slot) -> FiberInfo {
    // SAFETY: per the contract.
    unsafe {
        let h = (*s).header;
        let state = match (*s).state {
            State::Ready if (*core).in_run && (*core).current == s => FiberState::Running,
            State::Ready => FiberState::Ready,
            State::Blocked => FiberState::Blocked(raw::wait_reason(core, s)),
            State::Finished => FiberState::Finished,
            State::Free => unreachable!(),
        };
        let hw = (*h).stack.is_painted().then(|| stack::high_water((*s).lo, (*h).stack.top()));
        FiberInfo {
            id: raw::id_of(core, s),
            name: (*h).name,
            state,
            stack_size: (*h).stack.size(),
            stack_high_water: hw,
            // Counted at switch-out; the running fiber's current run too.
            waiting_in: if (*s).state == State::Blocked { raw::wait_object_name(s) } else { "" },
            runs: (*s).runs + u64::from((*core).in_run && (*core).current == s && (*s).state == State::Ready),
        }
    }
}

/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn stats(core: *mut Core) -> Stats {
    // SAFETY: per the contract.
    unsafe {
        let live_runs: u64 = (0..(*core).cap)
            .map(|i| (*core).slots.add(i))
            .filter(|&s| (*s).state != State::Free)
            .map(|s| (*s).runs)
            .sum();
        Stats {
            spawns: (*core).spawns,
            idles: (*core).idles,
            deadlocks: (*core).deadlocks,
            live: (*core).used(),
            switches: (*core).retired_runs + live_runs + u64::from((*core).in_run && !(*core).current.is_null()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 12: per-fiber switch-in counts were `u32` and wrapped after 2^32
    /// switches (~72 min at 1 M switches/s), so `runs` and `Stats::switches`
    /// dropped by 2^32. Starts a fiber's count just below 2^32 and yields.
    #[test]
    fn run_counts_do_not_wrap_at_2_pow_32() {
        extern crate std;
        static STACKS: [crate::StaticStack<65536>; 2] = [const { crate::StaticStack::new() }; 2];
        let rt = std::boxed::Box::new(Runtime::<'static, 2>::new());
        let h = rt
            .spawn(STACKS[0].claim().unwrap(), |fib| {
                // SAFETY: our own slot, while we run; no reader is active.
                unsafe { (*fib.slot_ptr()).runs = (u32::MAX - 1) as _ };
                for _ in 0..4 {
                    fib.yield_now();
                }
                fib.id()
            })
            .unwrap();
        let other = rt.spawn(STACKS[1].claim().unwrap(), |fib| (0..4).for_each(|_| fib.yield_now())).unwrap();
        rt.run().unwrap();
        let id = h.id();
        let runs: u64 = rt.fiber_info(id).unwrap().runs;
        assert!(runs > u32::MAX as u64, "runs wrapped: {runs}");
        assert!(rt.stats().unwrap().switches > u32::MAX as u64);
        rt.take(h).unwrap();
        rt.take(other).unwrap();
    }
}
