//! A re-entrant mutex: the fiber that holds it may lock it again.
//!
//! ```
//! use filament::sync::RecursiveMutex;
//! use filament::{Runtime, StaticStack};
//!
//! static LOG: RecursiveMutex<core::cell::Cell<u32>> = RecursiveMutex::new(core::cell::Cell::new(0));
//! static STACK: StaticStack<65536> = StaticStack::new();
//! static RT: Runtime<'static, 1> = Runtime::new();
//!
//! fn record<'s>(fib: &filament::Fiber<'s>, depth: u32) {
//!     let entry = LOG.lock(fib).unwrap(); // locked again by each nested call
//!     entry.set(entry.get() + 1);
//!     if depth > 0 {
//!         record(fib, depth - 1);
//!     }
//! }
//! let h = RT.spawn(STACK.claim().unwrap(), |fib| {
//!     record(fib, 3);
//!     LOG.lock(fib).unwrap().get()
//! }).unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(h).unwrap(), 4);
//! ```

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::ptr;

use super::{Binding, Lease, TryError, WaitError, choice_point};
use crate::fiber::{Slot, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// A mutex the holding fiber may lock again (FreeRTOS's recursive mutex,
/// std's `ReentrantLock`). It gives shared access (`&T`, since a fiber may
/// hold several guards at once): put a `Cell` or `RefCell` inside for
/// mutation. Released when the holder's last guard is dropped; then, as with
/// [`Mutex`](super::Mutex), ownership passes straight to the fiber that
/// waited longest (FIFO, no barging).
///
/// Unlike [`Mutex`](super::Mutex) it does no priority inheritance: a
/// waiter does not raise the holder's priority (see [`Priority`](crate::Priority)).
pub struct RecursiveMutex<T: ?Sized> {
    waiters: WaitQueue,
    owner: Binding,
    /// The holding fiber's slot and generation (null: free).
    holder: Cell<*mut Slot>,
    holder_generation: Cell<u32>,
    /// Guards the holder has alive.
    depth: Cell<usize>,
    value: T,
}

// SAFETY: the state is touched only by fibers of the runtime the mutex
// belongs to, on the one thread running it (the binding gates every access);
// `&T` is handed only to the holding fiber's guards, so `T` is shared by one
// fiber at a time, possibly on different threads over time: `T: Send`.
unsafe impl<T: ?Sized + Send> Sync for RecursiveMutex<T> {}
// SAFETY: a movable mutex is borrowed by nobody: nobody holds or waits on it.
unsafe impl<T: ?Sized + Send> Send for RecursiveMutex<T> {}

impl<T> RecursiveMutex<T> {
    /// An unlocked mutex holding `value`. `const`, for `static`s.
    pub const fn new(value: T) -> Self {
        RecursiveMutex {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            holder: Cell::new(ptr::null_mut()),
            holder_generation: Cell::new(0),
            depth: Cell::new(0),
            value,
        }
    }

    /// Names it (reports; see [`Mutex::named`](super::Mutex::named)).
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }
}

impl<T: ?Sized> RecursiveMutex<T> {
    /// Locks it, blocking while another fiber holds it; the holder gets
    /// another guard at once.
    pub fn lock<'s, 'f>(&'s self, fib: &'f Fiber<'s>) -> Result<RecursiveMutexGuard<'f, T>, WaitError> {
        self.lock_until(fib, None)
    }

    /// Like [`lock`](Self::lock), giving up with [`WaitError::TimedOut`]
    /// after `timeout` ticks.
    pub fn lock_timeout<'s, 'f>(
        &'s self,
        fib: &'f Fiber<'s>,
        timeout: Ticks,
    ) -> Result<RecursiveMutexGuard<'f, T>, WaitError> {
        self.lock_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// Locks it if it is free or already this fiber's; never blocks.
    pub fn try_lock<'f>(&'f self, fib: &'f Fiber<'_>) -> Result<RecursiveMutexGuard<'f, T>, TryError> {
        let (core, lease) = self.owner.lease(fib)?;
        if !self.take_if_free_or_mine(fib) {
            return Err(TryError::WouldBlock);
        }
        Ok(RecursiveMutexGuard { mutex: self, core, _lease: Some(lease), _fiber: PhantomData })
    }

    fn lock_until<'s, 'f>(
        &'s self,
        fib: &'f Fiber<'s>,
        deadline: Option<Ticks>,
    ) -> Result<RecursiveMutexGuard<'f, T>, WaitError> {
        let core = self.owner.bind(fib)?;
        if self.take_if_free_or_mine(fib) {
            // SAFETY: we are the running fiber of `core`.
            unsafe { choice_point(core) };
            return Ok(RecursiveMutexGuard { mutex: self, core, _lease: None, _fiber: PhantomData });
        }
        // SAFETY: the queue lives in `self`, which outlives this call ('s), and
        // belongs to this runtime (bound above).
        match unsafe { fib.wait_on(&self.waiters, WaitKind::Mutex, deadline) } {
            // Woken only by the last unlock, which made us the holder.
            Wake::Signaled => Ok(RecursiveMutexGuard { mutex: self, core, _lease: None, _fiber: PhantomData }),
            Wake::Unwinding => Err(WaitError::Unwinding),
            Wake::Aborted => Err(WaitError::Cancelled),
            _ => Err(WaitError::TimedOut),
        }
    }

    /// Takes the mutex (depth 1) if free, or another level if `fib` holds it.
    fn take_if_free_or_mine(&self, fib: &Fiber<'_>) -> bool {
        let me = fib.slot_ptr();
        let generation = fib.id().generation();
        let holder = self.holder.get();
        if holder.is_null() {
            self.holder.set(me);
            self.holder_generation.set(generation);
            self.depth.set(1);
            true
        } else if holder == me && self.holder_generation.get() == generation {
            self.depth.set(self.depth.get() + 1);
            true
        } else {
            false
        }
    }

    /// Drops one level; the last hands the mutex to the first waiter.
    ///
    /// # Safety
    /// Called by the holding fiber, of the runtime `core` the mutex belongs to.
    unsafe fn unlock(&self, core: *mut Core) {
        let depth = self.depth.get() - 1;
        self.depth.set(depth);
        if depth > 0 {
            return;
        }
        match self.waiters.pop_front() {
            Some(next) => {
                // SAFETY: queue members are blocked fibers of `core`.
                unsafe {
                    self.holder.set(next);
                    self.holder_generation.set((*next).generation);
                    self.depth.set(1);
                    raw::wake(core, next, Wake::Signaled);
                }
            }
            None => self.holder.set(ptr::null_mut()),
        }
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
    }
}

impl<T: ?Sized> fmt::Debug for RecursiveMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecursiveMutex").finish_non_exhaustive()
    }
}

/// One level of a [`RecursiveMutex`] held by the running fiber; derefs to
/// `&T`. `!Send`, and it borrows the fiber handle.
#[must_use = "the level is released as soon as the guard is dropped"]
pub struct RecursiveMutexGuard<'f, T: ?Sized> {
    mutex: &'f RecursiveMutex<T>,
    core: *mut Core,
    _lease: Option<Lease<'f>>,
    _fiber: PhantomData<(&'f Fiber<'f>, *mut ())>,
}

impl<T: ?Sized> Deref for RecursiveMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.mutex.value
    }
}

impl<T: ?Sized> Drop for RecursiveMutexGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard cannot leave the fiber that locked (it is !Send and
        // borrows that fiber's handle): the running fiber is the holder.
        unsafe { self.mutex.unlock(self.core) }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RecursiveMutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
