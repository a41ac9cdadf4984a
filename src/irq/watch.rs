//! [`IrqWatch`]: the idle hook's "was anything raised since I last looked?" check.

use core::sync::atomic::Ordering;

use super::EPOCH;
#[cfg(doc)]
use super::IrqSignal;

/// Tells an idle hook whether any [`IrqSignal`] (or any other interrupt-side
/// object: every `_from_isr` call counts) was raised since the hook last
/// returned: the check that lets it halt the CPU without losing a
/// wake-up.
///
/// # The race it closes
///
/// When no fiber is ready, the runtime polls its signals, finds nothing and
/// calls the [`Idle`](crate::Idle) hook. An interrupt that raises a signal
/// *after that poll* but *before the hook disables interrupts* has already
/// run when the hook looks at the world; if the hook then halts, the raised
/// signal waits for the next interrupt to wake the CPU — with a tickless
/// timer and nothing else pending, forever. A hook that only compares its
/// timer's tick counter with `now` cannot see this.
///
/// # Use
///
/// Keep one watch in the hook, created before the run. In every `idle` call:
/// disable interrupts, ask [`raised`](Self::raised) (and check your timer),
/// halt only if nothing happened — with `sti; hlt` back to back, which x86
/// executes so that an interrupt arriving after `sti` is taken *during* the
/// `hlt`, never before it — then [`rearm`](Self::rearm) as the last thing
/// before returning:
///
/// ```
/// use filament::{Idle, IrqWatch, Ticks};
/// # fn disable_interrupts() {}
/// # fn enable_interrupts() {}
/// # fn enable_interrupts_and_halt() {} // `sti; hlt` in one asm! block
/// # fn ticks() -> Ticks { 0 }          // the timer interrupt's counter
///
/// struct Halt {
///     watch: IrqWatch,
/// }
///
/// impl Idle for Halt {
///     fn idle(&mut self, now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
///         disable_interrupts();
///         if self.watch.raised() || ticks() != now {
///             enable_interrupts(); // something happened since the runtime looked
///         } else {
///             enable_interrupts_and_halt(); // woken by the next interrupt
///         }
///         self.watch.rearm(); // last: the runtime polls right after we return
///         ticks()
///     }
/// }
///
/// let mut hook = Halt { watch: IrqWatch::new() };
/// # let _ = hook.idle(0, None);
/// // RT.run_with_idle(&mut hook)
/// ```
///
/// # Why no wake-up is lost
///
/// The runtime polls its signals between any two idle calls, and before the
/// first; [`rearm`](Self::rearm) at the end of an idle call (or
/// [`new`](Self::new) before the run) therefore reads the epoch *before* the
/// runtime's next look at the signals. Take a notification that look missed.
/// Its epoch bump follows its count in program order, so had the rearm read
/// the bumped epoch, the count would have been visible to the look (release
/// and acquire on the epoch); so the bump comes after the rearm's read, and
/// [`raised`](Self::raised) sees it — unless it happens after the check,
/// i.e. in an interrupt taken after `cli`, which is delivered by the `sti;
/// hlt` and ends the halt. (A notifier on *another* CPU must also send this
/// CPU an interrupt to end a halt that already began.)
///
/// The epoch counts the notifications of *every* signal in the program, so
/// `raised` may be true for a signal no fiber of this runtime waits on: the
/// hook returns, the runtime polls, finds nothing and idles again. Spurious,
/// never lost. Under `std`, `host::HostClock` uses the same epoch (as a futex
/// word) for the same purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IrqWatch {
    /// The epoch read when last (re)armed.
    seen: u64,
}

impl IrqWatch {
    /// A watch armed now: [`raised`](Self::raised) is true once any signal is
    /// notified after this call. Create it before the runtime runs.
    pub fn new() -> Self {
        IrqWatch { seen: EPOCH.load(Ordering::SeqCst) }
    }

    /// Whether any [`IrqSignal`] was notified since the watch was last armed.
    /// One atomic load: cheap, lock-free, fine with interrupts disabled (and in
    /// interrupt context).
    #[inline]
    pub fn raised(&self) -> bool {
        EPOCH.load(Ordering::SeqCst) != self.seen
    }

    /// Arms the watch again. Call it as the last thing before the idle hook
    /// returns (after halting): the runtime polls its signals right after, so
    /// a notification this read misses is caught by the next
    /// [`raised`](Self::raised). Never arm between the runtime's poll and the
    /// check (e.g. at the start of `idle`): that would forget exactly the
    /// notifications the check is for.
    #[inline]
    pub fn rearm(&mut self) {
        self.seen = EPOCH.load(Ordering::SeqCst);
    }
}

impl Default for IrqWatch {
    /// Same as [`IrqWatch::new`].
    fn default() -> Self {
        Self::new()
    }
}
