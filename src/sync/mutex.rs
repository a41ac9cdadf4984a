//! A fiber-blocking mutex with FIFO hand-off.
//!
//! ```
//! use filament::sync::Mutex;
//! use filament::{Runtime, StaticStack};
//!
//! static COUNT: Mutex<u32> = Mutex::new(0);
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! for stack in &STACKS {
//!     RT.spawn_detached(stack.claim().unwrap(), |fib| {
//!         for _ in 0..3 {
//!             let mut n = COUNT.lock(fib).unwrap();
//!             fib.yield_now(); // the other fiber blocks on the lock meanwhile
//!             *n += 1;
//!         } // unlocked here: ownership goes straight to the waiter
//!     })
//!     .ok()
//!     .unwrap();
//! }
//! RT.run().unwrap();
//! let h = RT.spawn(STACKS[0].claim().unwrap(), |fib| *COUNT.lock(fib).unwrap()).unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(h).unwrap(), 6);
//! ```

use core::cell::{Cell, UnsafeCell};
use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use super::inherit::PiQueue;
use super::{Binding, TryError, WaitError, choice_point};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::Core;
use crate::time::Ticks;

/// A mutual-exclusion lock for fibers of one runtime.
///
/// * [`lock`](Self::lock) blocks the fiber (not the thread) until the lock is
///   its; [`try_lock`](Self::try_lock) never blocks;
///   [`lock_timeout`](Self::lock_timeout) gives up after some ticks.
/// * **FIFO hand-off**: when the guard is dropped and fibers wait, ownership
///   passes directly to the one that has waited longest; the mutex is never
///   seen unlocked in between, so no other fiber can barge in.
/// * The guard is `!Send` and borrows the fiber handle, so it is always
///   dropped by the fiber that locked.
/// * Not re-entrant: locking again from the fiber that holds the lock blocks
///   it for good (reported as a deadlock if nothing else can run).
/// * Belongs to one runtime at a time (see [`sync`](crate::sync)).
///
/// In a deadlock report a waiter shows as
/// [`WaitReason::Mutex`](crate::WaitReason::Mutex) with this mutex's address.
#[repr(C)]
pub struct Mutex<T: ?Sized> {
    /// First field (its queue first): its address is the mutex's address
    /// (deadlock reports). The waiters and the holder, for priority inheritance.
    pi: PiQueue,
    owner: Binding,
    locked: Cell<bool>,
    value: UnsafeCell<T>,
}

// SAFETY: everything but `owner` (atomic) is touched only by fibers of the
// bound runtime, i.e. by the one thread running it at any time (`Binding::check`
// gates every access; `&mut self` methods have exclusive access). The value is
// handed between fibers that may run on different threads over time, so it
// must be `Send`; it is never accessed from two threads at once, so `Sync` is
// not required of it (as with `std::sync::Mutex`).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: a movable mutex is borrowed by nobody, so no fiber waits in its queue
// (waiters hold a borrow while they wait); the value moves with it.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`. `const`, for `static`s.
    pub const fn new(value: T) -> Self {
        Mutex { pi: PiQueue::new(), owner: Binding::new(), locked: Cell::new(false), value: UnsafeCell::new(value) }
    }

    /// Names it: the name appears in deadlock reports
    /// ([`BlockedFiber::object`](crate::BlockedFiber::object)), in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`:
    ///
    /// ```
    /// static TOTAL: filament::sync::Mutex<u32> = filament::sync::Mutex::new(0).named("total");
    /// ```
    pub const fn named(mut self, name: &'static str) -> Self {
        self.pi.waiters.name = name;
        self
    }

    /// The value, consuming the mutex.
    pub fn into_inner(self) -> T {
        self.value.into_inner()
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Blocks the fiber until it owns the lock. Fails with [`WaitError::WrongRuntime`], [`WaitError::Cancelled`] (the
    /// fiber was cancelled) or [`WaitError::Unwinding`] (it unwinds and would
    /// have blocked); never times out.
    pub fn lock<'s, 'f>(&'s self, fib: &'f Fiber<'s>) -> Result<MutexGuard<'f, T>, WaitError> {
        self.lock_until(fib, None)
    }

    /// Like [`lock`](Self::lock), giving up with [`WaitError::TimedOut`] if the
    /// lock is not this fiber's within `timeout` ticks.
    pub fn lock_timeout<'s, 'f>(&'s self, fib: &'f Fiber<'s>, timeout: Ticks) -> Result<MutexGuard<'f, T>, WaitError> {
        self.lock_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// Takes the lock if it is free and nobody waits; never blocks.
    pub fn try_lock<'f>(&'f self, fib: &'f Fiber<'_>) -> Result<MutexGuard<'f, T>, TryError> {
        let (core, lease) = self.owner.lease(fib)?;
        if self.locked.get() {
            return Err(TryError::WouldBlock);
        }
        self.locked.set(true);
        // SAFETY: the running fiber of `core` takes the lock.
        unsafe { self.pi.set_holder(core, fib.slot_ptr()) };
        // The lease lives in the guard: the mutex stays this runtime's while
        // the guard holds it.
        let guard = MutexGuard { mutex: self, core, _lease: Some(lease), _fiber: PhantomData };
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(guard)
    }

    // Inline, as `Channel::recv`: the hand-off runs in the caller's frame.
    #[inline(always)]
    fn lock_until<'s, 'f>(
        &'s self,
        fib: &'f Fiber<'s>,
        deadline: Option<Ticks>,
    ) -> Result<MutexGuard<'f, T>, WaitError> {
        let core = self.owner.bind(fib)?;
        if !self.locked.get() {
            self.locked.set(true);
            // SAFETY: we are the running fiber of `core`.
            unsafe {
                self.pi.set_holder(core, fib.slot_ptr());
                choice_point(core);
            }
            return Ok(MutexGuard::new(self, core));
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s) and
        // belongs to this runtime (checked above); we are its running fiber.
        // The holder inherits our priority while we wait.
        match unsafe {
            self.pi.before_wait(core, fib.slot_ptr());
            fib.wait_on(&self.pi.waiters, WaitKind::Mutex, deadline)
        } {
            // Woken only by an unlock, which handed us the lock (`locked` stayed
            // true and made us the holder).
            Wake::Signaled => Ok(MutexGuard::new(self, core)),
            // Not handed the lock: the runtime took us off the queue, or we
            // never blocked (unwinding, cancelled, a deadline already past).
            // What we lent the holder is recomputed from the waiters left (a
            // wait that never began would otherwise leave its loan in place).
            wake => Err(self.not_handed(core, wake)),
        }
    }

    /// The error for a wait that did not get the lock, after recomputing what
    /// the holder inherits (cold: off the hand-off path).
    #[cold]
    #[inline(never)]
    fn not_handed(&self, core: *mut Core, wake: Wake) -> WaitError {
        // SAFETY: called by the running fiber of the bound runtime `core`.
        unsafe { crate::sync::inherit::waiter_left(core, &raw const self.pi) };
        match wake {
            Wake::Unwinding => WaitError::Unwinding,
            Wake::Aborted => WaitError::Cancelled,
            _ => WaitError::TimedOut,
        }
    }

    /// A mutable reference to the value; no locking needed with `&mut`.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut()
    }

    /// Unlocks: hands the lock to the first waiter, or marks it free; the
    /// fiber gives up the priority it inherited through this mutex. A waiter
    /// of a higher level than the unlocking fiber then runs at once (the
    /// unlock is a scheduling point).
    ///
    /// # Safety
    /// Called by the running fiber of `core` (the bound runtime), which holds the lock.
    #[inline(always)]
    unsafe fn unlock(&self, core: *mut Core) {
        // SAFETY: the queue holds only blocked fibers of `core`; the running
        // fiber is `core.current`.
        unsafe {
            if !self.pi.unlock(core, (*core).current) {
                self.locked.set(false);
            }
            choice_point(core);
        }
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state is readable only from the bound runtime's fibers.
        f.debug_struct("Mutex").finish_non_exhaustive()
    }
}

/// Proof that the fiber holds a [`Mutex`]; derefs to the value and unlocks
/// (handing the lock to the first waiter) when dropped.
///
/// `!Send`, and it borrows the fiber handle: it cannot leave the fiber that
/// locked.
///
/// ```compile_fail
/// fn is_send<T: Send>() {}
/// is_send::<filament::sync::MutexGuard<'static, u32>>();
/// ```
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
pub struct MutexGuard<'f, T: ?Sized> {
    mutex: &'f Mutex<T>,
    core: *mut Core,
    /// `try_lock` on an unbound mutex leases it until the guard is gone
    /// (dropped after `drop` unlocked).
    _lease: Option<super::Lease<'f>>,
    // `*mut ()` makes it !Send and !Sync by default.
    _fiber: PhantomData<(&'f Fiber<'f>, *mut ())>,
}

// SAFETY: sharing `&MutexGuard` only gives `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'f, T: ?Sized> MutexGuard<'f, T> {
    fn new(mutex: &'f Mutex<T>, core: *mut Core) -> Self {
        MutexGuard { mutex, core, _lease: None, _fiber: PhantomData }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is the one owner of the lock, so no other reference
        // to the value exists while it lives.
        unsafe { &*self.mutex.value.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.mutex.value.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard cannot leave the fiber that locked (it is !Send and
        // borrows that fiber's handle), so the running fiber is that fiber, of
        // the bound runtime `core`, and it holds the lock.
        unsafe { self.mutex.unlock(self.core) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}
