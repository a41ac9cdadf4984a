//! A wall-clock idle hook for host processes.

use std::time::{Duration, Instant};

use crate::irq::host_wake;
use crate::time::{Idle, Ticks};

/// Ticks are real milliseconds since the clock was created. When no fiber is
/// ready, the thread sleeps until the next deadline, or until any
/// [`IrqSignal`](crate::IrqSignal) is notified — no busy spinning.
///
/// The sleep is a `futex` wait on a process-wide epoch that every
/// [`notify_from_isr`](crate::IrqSignal::notify_from_isr) bumps (Linux). The
/// clock remembers the epoch from the end of its previous idle call (or from
/// its creation), a value read before the runtime last polled its signals, so
/// a notification landing between that poll and the sleep is never lost: the
/// wait returns at once. It does not matter which thread runs the runtime, nor
/// which threads notify. A notification of any signal in the process wakes
/// every sleeping `HostClock`; a runtime with nothing to do goes back to
/// sleep after one poll.
#[derive(Debug, Clone, Copy)]
pub struct HostClock {
    start: Instant,
    tick: Duration,
    /// The notification epoch read at the end of the last `idle` (or at
    /// creation): before the runtime's latest poll of its signals.
    seen: u64,
}

impl HostClock {
    /// A clock whose tick is one millisecond, starting now at tick 0.
    pub fn new() -> Self {
        Self::with_tick(Duration::from_millis(1))
    }

    /// A clock with a custom tick length.
    pub fn with_tick(tick: Duration) -> Self {
        assert!(!tick.is_zero(), "tick must be positive");
        HostClock { start: Instant::now(), tick, seen: host_wake::epoch() }
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
            Some(d) if d <= real => {}
            Some(d) => {
                let wait = self.tick.saturating_mul((d - real).min(u32::MAX as u64) as u32);
                host_wake::sleep(self.seen, Some(wait));
            }
            None => host_wake::sleep(self.seen, None),
        }
        // Read before returning: the runtime polls its signals next, so any
        // notification this read misses changes the epoch after it, and the
        // next sleep returns at once.
        self.seen = host_wake::epoch();
        HostClock::now(self).max(now)
    }

    fn now(&mut self) -> Option<Ticks> {
        Some(HostClock::now(self))
    }
}
