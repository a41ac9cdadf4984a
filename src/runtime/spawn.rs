//! The spawn forms of [`Runtime`]: named, detached, with options, local to
//! a thread. All of them end in `spawn_raw` (`crate::spawn`), under the
//! runtime's lock.

use super::*;

impl<'s, const N: usize> Runtime<'s, N> {
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
        self.spawn_inner(stack, SpawnOptions::new(), false, f).map(|(id, header, rt)| JoinHandle::new(id, header, rt))
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
        self.spawn_inner(stack, SpawnOptions::new().name(name), false, f)
            .map(|(id, header, rt)| JoinHandle::new(id, header, rt))
    }

    /// Spawns a fiber nobody will join: its result is dropped when it finishes
    /// and its slot and stack are released right away.
    pub fn spawn_detached<F, T>(&self, stack: Stack<'s>, f: F) -> Result<FiberId, SpawnError<'s, F>>
    where
        F: FnOnce(&Fiber<'s>) -> T + Send + 's,
        T: Send + 's,
    {
        self.spawn_inner(stack, SpawnOptions::new(), true, f).map(|(id, _, _)| id)
    }

    /// Spawns a fiber with the given name and priority (see
    /// [`SpawnOptions`]); otherwise as [`spawn`](Self::spawn). The highest
    /// level with a ready fiber runs; a fiber spawned above the running one
    /// (from inside a fiber) runs at that fiber's next scheduling point.
    ///
    /// ```
    /// use filament::{Priority, Runtime, SpawnOptions, StaticStack};
    /// use std::sync::Mutex;
    ///
    /// static ORDER: Mutex<Vec<&str>> = Mutex::new(Vec::new());
    /// static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
    /// let rt = Runtime::<'static, 2>::new();
    /// let low = SpawnOptions::new().name("low");
    /// let high = SpawnOptions::new().name("high").priority(Priority::HIGHEST);
    /// rt.spawn_with(STACKS[0].claim().unwrap(), low, |fib| ORDER.lock().unwrap().push(fib.name())).unwrap();
    /// rt.spawn_with(STACKS[1].claim().unwrap(), high, |fib| ORDER.lock().unwrap().push(fib.name())).unwrap();
    /// rt.run().unwrap();
    /// assert_eq!(*ORDER.lock().unwrap(), ["high", "low"]); // spawned second, ran first
    /// ```
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
        self.spawn_inner(stack, opts, false, f).map(|(id, header, rt)| JoinHandle::new(id, header, rt))
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
        self.spawn_inner(stack, opts, true, f).map(|(id, _, _)| id)
    }

    fn spawn_inner<F, T>(
        &self,
        stack: Stack<'s>,
        opts: SpawnOptions,
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
        unsafe { spawn_raw(core, stack, opts, detached, false, f) }
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
    /// it on the wrong thread; their stacks are released all the same.
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
        unsafe { spawn_raw(core, stack, SpawnOptions::new(), false, true, f) }
            .map(|(id, h, rt)| JoinHandle::new(id, h, rt))
    }
}
