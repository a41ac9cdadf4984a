//! A wall-clock idle hook for host processes.

use std::thread;
use std::time::{Duration, Instant};

use crate::time::{Idle, Ticks};

/// Ticks are real milliseconds since the clock was created. When no fiber is
/// ready, the thread sleeps (parks) until the next deadline, or until an
/// [`IrqSignal`](crate::IrqSignal) registered with the runtime is notified —
/// no busy spinning.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    start: Instant,
    tick: Duration,
}

impl HostClock {
    /// A clock whose tick is one millisecond, starting now at tick 0.
    pub fn new() -> Self {
        Self::with_tick(Duration::from_millis(1))
    }

    /// A clock with a custom tick length.
    pub fn with_tick(tick: Duration) -> Self {
        assert!(!tick.is_zero(), "tick must be positive");
        HostClock { start: Instant::now(), tick }
    }

    /// Ticks elapsed since creation.
    pub fn now(&self) -> Ticks {
        (self.start.elapsed().as_nanos() / self.tick.as_nanos()) as Ticks
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Idle for HostClock {
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
        let real = HostClock::now(self).max(now);
        match next_deadline {
            Some(d) if d <= real => real,
            Some(d) => {
                let wait = self.tick.saturating_mul((d - real).min(u32::MAX as u64) as u32);
                thread::park_timeout(wait);
                HostClock::now(self).max(now)
            }
            None => {
                thread::park();
                HostClock::now(self).max(now)
            }
        }
    }

    fn now(&mut self) -> Option<Ticks> {
        Some(HostClock::now(self))
    }
}
