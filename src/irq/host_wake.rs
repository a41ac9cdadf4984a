//! How a host thread sleeps until some [`IrqSignal`] is notified, or any other
//! interrupt-side object raised (feature `std`, Linux): a futex on a
//! process-wide epoch counter.
//!
//! Notifier (any thread, or a signal handler), after its object's own state
//! (`pending += 1`, a published queue cell, ...) and the raise of its source
//! (`source::IrqSource::raise`): `EPOCH += 1`, then `FUTEX_WAKE` if
//! `SLEEPERS != 0`.
//!
//! Idle hook ([`HostClock`](crate::host::HostClock)): it keeps the epoch it
//! read at the end of its previous call (or at its creation). The runtime
//! polls its signals after every idle call and before the next, so that value
//! was read *before* the runtime's latest poll. To sleep:
//! `SLEEPERS += 1`; if `EPOCH == seen`, `FUTEX_WAIT(EPOCH, seen)`;
//! `SLEEPERS -= 1`.
//!
//! # Why no wake-up is lost
//!
//! Take a notification the runtime's latest poll missed: its raise (which
//! follows its state update) did not happen before the poll's look at the
//! raised flag. (A poll that skips draining — the blocking fiber's own poll
//! in `raw::block_current`, see `source::as_irq_waiter` — is followed by the
//! host loop's poll before any idle call, so the latest poll before an idle
//! call always drains; a raise kept with `Drained::Keep` stays visible to
//! every later poll.) Then its `EPOCH += 1`, which follows the raise in the
//! notifier's program order, was not seen by the hook's read
//! of `seen` (that read precedes the poll; had it seen the bump, the
//! release/acquire pair on `EPOCH` would have made the add visible to the
//! poll). All accesses to `EPOCH` and `SLEEPERS` are `SeqCst`, so they have
//! one total order, in which the sleeper's `SLEEPERS += 1` precedes its
//! `EPOCH == seen` check:
//!
//! * if the bump comes before that check, the check fails and the hook
//!   returns at once: the runtime polls again and finds the count;
//! * otherwise the bump comes after the check, hence after `SLEEPERS += 1`,
//!   so the notifier's following `SLEEPERS` load sees the sleeper and it
//!   calls `FUTEX_WAKE` after its bump. By the futex contract (the kernel
//!   compares and queues atomically with respect to wakes on the same word)
//!   the sleeper's `FUTEX_WAIT` either sees the changed word and returns, or
//!   was queued and is woken.
//!
//! The futex word is the low half of the 64-bit epoch (x86_64 is little
//! endian), and the full 64 bits are compared just before the wait. So the
//! kernel's 32-bit compare can only be fooled (ABA) by 2^32 notifications
//! arriving between that check and the system call's compare, a few
//! instructions apart (unless the thread is descheduled there while some
//! thread notifies 4 billion times).
//!
//! Wake-ups may be spurious (a notification of a signal nobody here waits on,
//! or another runtime's; a POSIX signal interrupting the wait): the hook
//! returns, the runtime polls, finds nothing and idles again. A steady stream
//! of unrelated notifications therefore costs an idle runtime a poll per
//! notification. No thread handle is stored anywhere: it does not matter
//! which thread drives the runtime, nor how many threads notify.

use super::EPOCH;
use core::ptr;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

/// Threads between announcing a sleep and leaving it. Lets a notification
/// skip the system call while no idle hook sleeps.
static SLEEPERS: AtomicU32 = AtomicU32::new(0);

/// The futex word: the low 32 bits of [`EPOCH`] (little endian).
fn futex_word() -> *mut u32 {
    EPOCH.as_ptr().cast::<u32>()
}

/// The notifier's half, after its `EPOCH += 1` (in
/// [`IrqSignal::notify_from_isr`](super::IrqSignal::notify_from_isr)).
/// Async-signal-safe: an atomic load of a static, then at most one
/// `futex` system call; no lock, no allocation.
#[inline]
pub(crate) fn wake_sleepers() {
    if SLEEPERS.load(SeqCst) != 0 {
        // SAFETY: FUTEX_WAKE only names the address of a valid, aligned,
        // 'static word; the kernel reads no memory for it. It cannot fail
        // on such a word, so it does not write `errno` either.
        unsafe {
            libc::syscall(libc::SYS_futex, futex_word(), libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG, i32::MAX);
        }
    }
}

/// The current epoch. Read it *before* the runtime polls its signals, and
/// pass it to [`sleep`] at the next idle.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(SeqCst)
}

/// Sleeps until the epoch differs from `seen` (returns at once if it
/// already does), the timeout passes (`None`: no timeout), or a spurious
/// wake-up.
pub(crate) fn sleep(seen: u64, timeout: Option<Duration>) {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(ptr::null(), |t| t as *const libc::timespec);
    SLEEPERS.fetch_add(1, SeqCst);
    if EPOCH.load(SeqCst) == seen {
        // SAFETY: FUTEX_WAIT on a valid, aligned, 'static word with a
        // valid (or null) relative timeout. Every outcome (woken, EAGAIN,
        // EINTR, ETIMEDOUT) means "return and let the runtime poll".
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                futex_word(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                seen as u32,
                ts_ptr,
                ptr::null::<u32>(),
                0,
            );
        }
    }
    SLEEPERS.fetch_sub(1, SeqCst);
}
