//! Holding a runtime's lock across calls: [`Locked`], from [`Runtime::lock`].
//!
//! Every outer call on a [`Runtime`] (spawn, run, take, ...) takes its lock
//! with an atomic compare-and-swap, so one spawn + run + take cycle paid three
//! of them (about 20 cycles each), more than the rest of the cycle's work on
//! the host side. A [`Locked`] takes the lock once and keeps it: its calls pay
//! no atomic at all. Together with [`Locked::take_with_stack`] (the stack
//! comes back to the caller instead of being released and claimed again) a
//! spawn + run + take cycle on a reused stack has no atomic read-modify-write
//! left.
//!
//! Reentrancy: user code runs inside these calls (fibers inside `run`, a
//! closure's or result's `Drop` inside spawn, take and detach). It cannot reach
//! the runtime through the `Runtime` (its lock is held: `Busy`), and it could
//! reach this guard only through a `'static` reference on the same thread (a
//! leaked guard in a thread-local): a plain flag, set for the length of each
//! call, answers such nested calls with `Busy` too.

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use crate::error::{JoinError, RunError, SpawnError};
use crate::fiber::FiberId;
use crate::handle::Fiber;
use crate::join::{JoinHandle, take_outcome, take_outcome_and_stack};
use crate::priority::SpawnOptions;
use crate::raw::Core;
use crate::runtime::{LockGuard, Runtime};
use crate::stack::Stack;

/// A [`Runtime`] whose lock is held until this guard is dropped, from
/// [`Runtime::lock`]. Its calls do what the runtime's calls of the same name
/// do, without taking the lock each time.
///
/// While it lives, the runtime's own calls (from any thread, or from its
/// fibers) answer `Busy`, as they do while the runtime runs. Not `Send` and not
/// `Sync`: the thread that locked uses it. A call made through the guard
/// while another of its calls is under way (from a fiber or a destructor that
/// reached the guard) also answers `Busy`.
///
/// ```
/// use filament::{Runtime, StaticStack};
/// static STACKS: [StaticStack<32768>; 2] = [const { StaticStack::new() }; 2];
/// let rt = Runtime::<'static, 2>::new();
/// {
///     let locked = rt.lock().unwrap();
///     let a = locked.spawn(STACKS[0].claim().unwrap(), |fib| { fib.yield_now(); 1 }).unwrap();
///     locked.spawn_detached(STACKS[1].claim().unwrap(), |_| ()).unwrap();
///     locked.run().unwrap();
///     assert_eq!(locked.take(a).unwrap(), 1);
/// } // unlocked here
/// assert!(rt.stats().is_some());
/// ```
///
/// The guard stays on the thread that locked:
///
/// ```compile_fail
/// let rt = filament::Runtime::<'static, 1>::new();
/// let locked = rt.lock().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(move || drop(locked)); // error: `Locked` is not `Send`
/// });
/// ```
#[must_use = "the runtime stays locked while this guard lives"]
pub struct Locked<'r, 's, const N: usize> {
    rt: &'r Runtime<'s, N>,
    core: *mut Core,
    /// A call through this guard is under way (see the module notes).
    busy: Cell<bool>,
    _guard: LockGuard<'r>,
    /// Neither `Send` nor `Sync`.
    _thread: PhantomData<*mut ()>,
}

/// Clears [`Locked::busy`] when a call ends, also when it unwinds.
struct Enter<'a>(&'a Cell<bool>);

impl Drop for Enter<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl<'r, 's, const N: usize> Locked<'r, 's, N> {
    /// `core` is `rt`'s core, bound while `guard` was held; the runtime
    /// cannot move while `rt` is borrowed, so it stays bound.
    pub(crate) fn new(rt: &'r Runtime<'s, N>, core: *mut Core, guard: LockGuard<'r>) -> Self {
        Locked { rt, core, busy: Cell::new(false), _guard: guard, _thread: PhantomData }
    }

    /// Marks a call under way; `None` if one already is (a nested call).
    #[inline(always)]
    fn enter(&self) -> Option<Enter<'_>> {
        if self.busy.replace(true) {
            return None;
        }
        Some(Enter(&self.busy))
    }

    /// The runtime this guard holds.
    pub fn runtime(&self) -> &'r Runtime<'s, N> {
        self.rt
    }

    /// [`Runtime::spawn`] without taking the lock.
    pub fn spawn<F, T>(&self, stack: Stack<'s>, f: F) -> Result<JoinHandle<T>, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        let Some(_in) = self.enter() else {
            return Err(SpawnError::new(crate::SpawnErrorKind::Busy, stack, f));
        };
        // SAFETY: we hold the lock, the core is bound, and no other call of
        // this guard is under way: this is the host context outside `run`.
        unsafe { crate::spawn::spawn_raw(self.core, stack, SpawnOptions::new(), false, false, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// [`Runtime::spawn_named`] without taking the lock.
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
        let Some(_in) = self.enter() else {
            return Err(SpawnError::new(crate::SpawnErrorKind::Busy, stack, f));
        };
        // SAFETY: as in `spawn`.
        unsafe { crate::spawn::spawn_raw(self.core, stack, SpawnOptions::new().name(name), false, false, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }

    /// [`Runtime::spawn_detached`] without taking the lock.
    pub fn spawn_detached<F, T>(&self, stack: Stack<'s>, f: F) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        let Some(_in) = self.enter() else {
            return Err(SpawnError::new(crate::SpawnErrorKind::Busy, stack, f));
        };
        // SAFETY: as in `spawn`.
        unsafe { crate::spawn::spawn_raw(self.core, stack, SpawnOptions::new(), true, false, f) }.map(|(id, _, _)| id)
    }

    /// [`Runtime::run`] without taking the lock.
    #[allow(clippy::result_large_err)]
    pub fn run(&self) -> Result<(), RunError> {
        self.run_inner(None)
    }

    /// [`Runtime::run_with_idle`] without taking the lock.
    #[allow(clippy::result_large_err)]
    pub fn run_with_idle(&self, idle: &mut dyn crate::Idle) -> Result<(), RunError> {
        self.run_inner(Some(idle))
    }

    #[allow(clippy::result_large_err)]
    fn run_inner(&self, idle: Option<&mut dyn crate::Idle>) -> Result<(), RunError> {
        let Some(_in) = self.enter() else {
            return Err(RunError::Busy);
        };
        // SAFETY: we hold the lock, the core is bound; no other call of this
        // guard is under way, so this is the host context, not inside `run`.
        unsafe {
            match idle {
                None => crate::run::run_plain(self.core),
                idle => crate::run::run_held(self.core, idle, None),
            }
        }
    }

    /// [`Runtime::take`] without taking the lock.
    pub fn take<T>(&self, handle: JoinHandle<T>) -> Result<T, JoinError<T>> {
        let Some(_in) = self.enter() else {
            return Err(JoinError::Busy(handle));
        };
        // SAFETY: we hold the lock; not on a fiber stack (not inside `run`).
        unsafe { take_outcome(self.core, handle) }
    }

    /// [`Runtime::take_with_stack`] without taking the lock: with it, a
    /// spawn + run + take cycle on a reused stack makes no atomic
    /// read-modify-write at all.
    pub fn take_with_stack<T>(&self, handle: JoinHandle<T>) -> Result<(T, Stack<'s>), JoinError<T>> {
        let Some(_in) = self.enter() else {
            return Err(JoinError::Busy(handle));
        };
        // SAFETY: as in `take`.
        unsafe { take_outcome_and_stack(self.core, handle) }
    }
}

impl<const N: usize> fmt::Debug for Locked<'_, '_, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Marked busy while formatting: the formatter's writer is user code.
        let Some(_in) = self.enter() else {
            return f.write_str("Locked { <in a call> }");
        };
        f.write_str("Locked ")?;
        // SAFETY: we hold the lock and no other call of this guard is under way.
        unsafe { crate::report::write_table(f, self.core) }
    }
}
