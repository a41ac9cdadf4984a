//! Fixed priority levels and the spawn options that carry them.
//!
//! A fiber has a *base* priority (given at spawn, changed by
//! [`Fiber::set_priority`](crate::Fiber::set_priority)) and an *effective*
//! one: the base, raised while it holds a [`Mutex`](crate::sync::Mutex) a
//! higher-priority fiber waits for (priority inheritance). The scheduler runs
//! the highest level that has a ready fiber, round-robin (FIFO) within a level.
//!
//! **Cooperative preemption.** A fiber is never interrupted. When a fiber of a
//! higher level than the running one becomes ready (a wake from a fiber, a
//! timer or an interrupt signal, a spawn, a priority change), it runs at the
//! running fiber's next *scheduling point*: a yield, a block, or a primitive
//! call that can switch (every operation of the [`sync`](crate::sync)
//! primitives: a `give`, `send`, `set`, unlock ...). A fiber that never
//! reaches one keeps the CPU, whatever its priority.
//!
//! With every fiber at one level (the default) nothing changes: the same
//! ring, the same FIFO order, the same yield.

use core::fmt;

/// How many priority levels there are: priorities are `0..PRIORITY_LEVELS`,
/// higher runs first.
pub const PRIORITY_LEVELS: usize = 8;

/// How many mutex hops priority inheritance follows from a waiter: a boost
/// goes to the holder of the mutex waited for, to the holder of the mutex
/// *that* fiber waits for, and so on, at most this many fibers deep (a
/// deadlock cycle of mutexes ends there too).
pub const INHERITANCE_DEPTH: usize = 8;

/// A fiber's priority level: `0` (the lowest, and the default) to
/// `PRIORITY_LEVELS - 1`. The ready fiber with the highest level runs.
///
/// ```
/// use filament::Priority;
/// const HIGH: Priority = Priority::new(5).unwrap();
/// assert!(HIGH > Priority::DEFAULT);
/// assert_eq!(Priority::new(8), None); // out of range
/// assert_eq!(Priority::saturating(200), Priority::HIGHEST);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Priority(u8);

impl Priority {
    /// The lowest level, `0`.
    pub const LOWEST: Priority = Priority(0);
    /// The highest level, `PRIORITY_LEVELS - 1`.
    pub const HIGHEST: Priority = Priority(PRIORITY_LEVELS as u8 - 1);
    /// What `spawn` gives: the lowest level.
    pub const DEFAULT: Priority = Priority::LOWEST;

    /// Level `level`, or `None` if it is not below [`PRIORITY_LEVELS`].
    pub const fn new(level: u8) -> Option<Priority> {
        if (level as usize) < PRIORITY_LEVELS { Some(Priority(level)) } else { None }
    }

    /// Level `level`, capped at [`HIGHEST`](Self::HIGHEST).
    pub const fn saturating(level: u8) -> Priority {
        if (level as usize) < PRIORITY_LEVELS { Priority(level) } else { Priority::HIGHEST }
    }

    /// The level as a number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl fmt::Debug for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}", self.0)
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// How to spawn a fiber: its name and priority. `const`, so a set of options
/// can be a constant:
///
/// ```
/// use filament::{Priority, Runtime, SpawnOptions, StaticStack};
///
/// const SENSOR: SpawnOptions = SpawnOptions::new().name("sensor").priority(Priority::HIGHEST);
/// static STACK: StaticStack<16384> = StaticStack::new();
/// let rt = Runtime::<'static, 2>::new();
/// let h = rt.spawn_with(STACK.claim().unwrap(), SENSOR, |fib| fib.priority()).unwrap();
/// rt.run().unwrap();
/// assert_eq!(rt.take(h).unwrap(), Priority::HIGHEST);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SpawnOptions {
    /// The name shown in reports, traces and gdb ("" for none).
    pub name: &'static str,
    /// The fiber's base priority.
    pub priority: Priority,
}

impl SpawnOptions {
    /// No name, [`Priority::DEFAULT`]: what `spawn` uses.
    pub const fn new() -> Self {
        SpawnOptions { name: "", priority: Priority::DEFAULT }
    }

    /// With this name.
    pub const fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// With this base priority.
    pub const fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}
