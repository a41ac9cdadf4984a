//! The [`Fiber`] handle: what a fiber's closure receives — yield, spawn,
//! join, sleep, timeouts, and the argument every blocking primitive takes.

use core::fmt;
use core::marker::PhantomData;
use core::ptr;

use crate::error::{JoinError, SpawnError};
use crate::fiber::{FiberId, Slot, State, WaitKind, Wake};
use crate::info::{FiberInfo, Stats, info, stats};
use crate::join::{JoinHandle, detach_raw, find, take_outcome};
use crate::priority::{Priority, SpawnOptions};
use crate::raw::{self, Core};
use crate::runtime::Invariant;
use crate::spawn::spawn_raw;
use crate::stack::{self, Stack};
use crate::time::{self, Ticks};
use crate::wait::WaitQueue;

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
    /// The handle of the running fiber `slot` of `core` (the entry glue).
    pub(crate) fn new(core: *mut Core, slot: *mut Slot) -> Self {
        Fiber { core, slot, _marker: PhantomData }
    }

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

    /// Lets every other ready fiber of this fiber's priority level run once,
    /// then continues (FIFO) — or, if a fiber of a higher level became ready
    /// meanwhile, switches to that level first (cooperative preemption, see
    /// [`Priority`]). If no other fiber of this level (and none above) is
    /// ready this returns at once, even with lower-level fibers ready.
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

    /// Spawns a fiber from inside a fiber. See [`Runtime::spawn`](crate::Runtime::spawn).
    pub fn spawn<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: we run inside `run`, which holds the runtime's lock.
        unsafe { spawn_raw(self.core, stack, SpawnOptions::new(), false, false, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// Spawns a fiber whose closure and result need not be `Send`, from
    /// inside a fiber (feature `std`). See [`Runtime::spawn_local`](crate::Runtime::spawn_local).
    #[cfg(feature = "std")]
    pub fn spawn_local<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + 's,
        T: 's,
    {
        // SAFETY: we run inside `run`, which holds the runtime's lock, on
        // the thread running it.
        unsafe { spawn_raw(self.core, stack, SpawnOptions::new(), false, true, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
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
        unsafe { spawn_raw(self.core, stack, SpawnOptions::new().name(name), false, false, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// Spawns a fiber with a name and a priority from inside a fiber. See
    /// [`Runtime::spawn_with`](crate::Runtime::spawn_with). A fiber of a higher
    /// level than this one runs at this fiber's next scheduling point.
    pub fn spawn_with<F, T>(
        &self,
        stack: Stack<'s>,
        opts: SpawnOptions,
        f: F,
    ) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: as in `spawn`.
        unsafe { spawn_raw(self.core, stack, opts, false, false, f) }.map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// [`spawn_with`](Self::spawn_with) for a detached fiber.
    pub fn spawn_detached_with<F, T>(
        &self,
        stack: Stack<'s>,
        opts: SpawnOptions,
        f: F,
    ) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: as in `spawn`.
        unsafe { spawn_raw(self.core, stack, opts, true, false, f) }.map(|(id, _, _)| id)
    }

    /// This fiber's effective priority: its base priority
    /// ([`base_priority`](Self::base_priority)), raised while it holds a
    /// [`Mutex`](crate::sync::Mutex) a higher-priority fiber waits for.
    pub fn priority(&self) -> Priority {
        // SAFETY: our slot is live while we run.
        Priority::saturating(unsafe { (*self.slot).priority })
    }

    /// The priority given at spawn or by [`set_priority`](Self::set_priority).
    pub fn base_priority(&self) -> Priority {
        // SAFETY: our header is live while we run.
        Priority::saturating(unsafe { (*(*self.slot).header).base_priority })
    }

    /// Changes this fiber's base priority. Its effective priority follows
    /// (never below what it inherits from mutex waiters). Not a scheduling
    /// point: if this puts a ready fiber above this one (this fiber lowered
    /// itself), the switch happens at this fiber's next yield, block or
    /// primitive call (cooperative preemption). This fiber stays first in
    /// line at its new level.
    pub fn set_priority(&self, priority: Priority) {
        // SAFETY: we are the running fiber of `core`.
        unsafe { set_base(self.core, self.slot, priority) }
    }

    /// Changes fiber `id`'s base priority (see
    /// [`set_priority`](Self::set_priority)); a ready fiber goes to the tail
    /// of its new level, and if it waits for a mutex its holder's inherited
    /// priority follows. Returns `false`, changing nothing, if `id` is not a
    /// live fiber of this runtime (or has finished).
    pub fn set_priority_of(&self, id: FiberId, priority: Priority) -> bool {
        // SAFETY: we run inside `run`; the index is bounds-checked and the
        // generation compared, so `s` is that fiber's live slot.
        unsafe {
            if id.index as usize >= (*self.core).cap {
                return false;
            }
            let s = (*self.core).slots.add(id.index as usize);
            if !matches!((*s).state, State::Ready | State::Blocked) || (*s).generation != id.generation {
                return false;
            }
            set_base(self.core, s, priority);
            true
        }
    }

    /// Spawns a detached fiber from inside a fiber. See [`Runtime::spawn_detached`](crate::Runtime::spawn_detached).
    pub fn spawn_detached<F, T>(&self, stack: Stack<'s>, f: F) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        // SAFETY: as in `spawn`.
        unsafe { spawn_raw(self.core, stack, SpawnOptions::new(), true, false, f) }.map(|(id, _, _)| id)
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
                if wake == Wake::Aborted {
                    return Err(JoinError::JoinCancelled(handle));
                }
                self.check_cancel(wake);
            }
            take_outcome(self.core, handle)
        }
    }

    /// Gives up on a fiber's result (see [`Runtime::detach`](crate::Runtime::detach)).
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

    /// Sleeps until `*previous + period`, then advances `*previous` by
    /// `period`: a periodic loop that does not drift, whatever each round
    /// costs (FreeRTOS's `xTaskDelayUntil`). Returns whether it had to wait;
    /// `false` means the deadline had already passed (the round overran): it
    /// then only yields. Start with `let mut t = fib.now();`.
    ///
    /// ```
    /// use filament::{Runtime, Stack};
    /// let rt = Runtime::<'static, 1>::new();
    /// let h = rt
    ///     .spawn(Stack::from_slice(Box::leak(vec![0u8; 65536].into_boxed_slice())).unwrap(), |fib| {
    ///         let mut t = fib.now();
    ///         let mut ticks = Vec::new();
    ///         for _ in 0..3 {
    ///             fib.sleep_periodic(&mut t, 10);
    ///             ticks.push(fib.now());
    ///         }
    ///         ticks
    ///     })
    ///     .unwrap();
    /// rt.run().unwrap();
    /// assert_eq!(rt.take(h).unwrap(), [10, 20, 30]);
    /// ```
    pub fn sleep_periodic(&self, previous: &mut Ticks, period: Ticks) -> bool {
        let deadline = previous.saturating_add(period);
        *previous = deadline;
        if deadline <= self.now() {
            self.yield_now();
            return false;
        }
        self.sleep_until(deadline);
        true
    }

    /// Ends fiber `id`'s sleep or timed wait now, as if its deadline had
    /// passed (FreeRTOS's `xTaskAbortDelay`): its `sleep` returns, its
    /// `_timeout` call fails with `TimedOut` (nothing lost: exactly as a real
    /// timeout). Returns `false`, changing nothing, unless `id` is blocked
    /// with a deadline (waits without a timeout are not touched).
    pub fn abort_wait(&self, id: FiberId) -> bool {
        // SAFETY: we run inside `run`; the index is bounds-checked and the
        // generation compared, so `s` is that fiber's live slot.
        unsafe {
            if id.index as usize >= (*self.core).cap {
                return false;
            }
            let s = (*self.core).slots.add(id.index as usize);
            if (*s).state == State::Free || (*s).generation != id.generation {
                return false;
            }
            time::expire_now(self.core, s)
        }
    }

    /// The runtime's totals, read from inside one of its fibers (the running
    /// one counts as switched in).
    pub fn stats(&self) -> Stats {
        // SAFETY: we run inside `run`.
        unsafe { stats(self.core) }
    }

    /// A snapshot of any fiber of this runtime.
    pub fn fiber_info(&self, id: FiberId) -> Option<FiberInfo> {
        // SAFETY: we run inside `run`.
        unsafe { info(self.core, id) }
    }

    /// Checks the scheduler's structural invariants from inside this fiber
    /// (it must be the ring's `current`); see
    /// [`Runtime::debug_check_invariants`](crate::Runtime::debug_check_invariants). For tests and debugging.
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
    #[inline(always)]
    pub(crate) unsafe fn wait_on(&self, q: &WaitQueue, kind: WaitKind, deadline: Option<Ticks>) -> Wake {
        // SAFETY: we are the running fiber; q outlives the wait by contract.
        unsafe {
            let wake = match deadline {
                None => raw::block_on(self.core, q, kind, q as *const WaitQueue as usize, ptr::null()),
                Some(_) => raw::block_current(self.core, q, kind, q as *const WaitQueue as usize, deadline),
            };
            self.check_cancel(wake);
            wake
        }
    }

    /// [`wait_on`](Self::wait_on) for a `WaitList`'s queue: `cell` (the
    /// waiter's value cell) goes into the header before the fiber blocks.
    ///
    /// # Safety
    /// As for `wait_on`; `cell` names a `Cell<Option<T>>` of the list's `T`
    /// that lives until this call returns (I13).
    #[inline(always)]
    pub(crate) unsafe fn wait_on_with_value(
        &self,
        q: &WaitQueue,
        kind: WaitKind,
        deadline: Option<Ticks>,
        cell: *const (),
    ) -> Wake {
        // SAFETY: we are the running fiber; forwarded contract.
        unsafe {
            let wake = match deadline {
                None => raw::block_on(self.core, q, kind, q as *const WaitQueue as usize, cell),
                Some(_) => {
                    (*(*self.slot).header).wait_value = cell;
                    raw::block_current(self.core, q, kind, q as *const WaitQueue as usize, deadline)
                }
            };
            self.check_cancel(wake);
            wake
        }
    }

    /// Blocks the running fiber in no wait queue with `kind` and `obj` (a
    /// select's sources record; 0 for a notification wait) until woken or
    /// `deadline` (if any). A waker finds it by its id or its nodes and checks
    /// `wait_kind` before waking it.
    ///
    /// # Safety
    /// `kind` is a kind without a queue (`!kind.has_queue()`) other than
    /// `Sleep`/`None`/`Parked`; whatever `obj` names must stay valid while the
    /// fiber waits (I12).
    #[inline(always)]
    pub(crate) unsafe fn wait_off_queue(&self, kind: WaitKind, obj: usize, deadline: Option<Ticks>) -> Wake {
        // SAFETY: we are the running fiber; forwarded contract.
        unsafe {
            let wake = match deadline {
                None => raw::block_on(self.core, ptr::null(), kind, obj, ptr::null()),
                Some(_) => raw::block_current(self.core, ptr::null(), kind, obj, deadline),
            };
            self.check_cancel(wake);
            wake
        }
    }

    /// Unwinds the fiber if the runtime cancelled it (std only).
    #[inline]
    fn check_cancel(&self, wake: Wake) {
        if wake == Wake::Cancelled {
            // SAFETY: our own header, while we run.
            cancel_unwind(unsafe { (*self.slot).header });
        }
    }
}

/// Sets a live fiber's base priority and recomputes its effective one.
///
/// # Safety
/// Called by the running fiber of `core`; `s` a Ready or Blocked slot of it.
unsafe fn set_base(core: *mut Core, s: *mut Slot, priority: Priority) {
    // SAFETY: forwarded contract; a live slot's header is valid.
    unsafe {
        (*(*s).header).base_priority = priority.get();
        crate::sync::inherit::refresh(core, s, 0);
    }
}

impl fmt::Debug for Fiber<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

/// Unwinds the running fiber (whose header is `header`) with the runtime's
/// cancellation payload.
///
/// AddressSanitizer builds (`--cfg filament_asan`): the unwind skips
/// instrumented frames, whose scope poisoning then stays on the fiber's
/// stack, and the destructors that run during the unwind place their frames
/// right there (false "stack-use-after-scope" reports). ASan clears a
/// thread's stack before such an unwind (`__asan_handle_no_return`) but does
/// not know the fiber's stack, so it is cleared here.
#[cfg(feature = "std")]
pub(crate) fn cancel_unwind(header: *mut crate::fiber::Header) -> ! {
    extern crate std;
    #[cfg(filament_asan)]
    // SAFETY: the running fiber's header, and its stack, live while it runs.
    unsafe {
        crate::spawn::asan_unpoison_stack(header)
    };
    let _ = header;
    std::panic::resume_unwind(std::boxed::Box::new(crate::host::Cancelled))
}

#[cfg(not(feature = "std"))]
pub(crate) fn cancel_unwind(_header: *mut crate::fiber::Header) -> ! {
    raw::fatal(format_args!("a cancelled fiber was resumed without std"))
}
