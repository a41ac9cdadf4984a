//! Waiting on several sources at once: the first that is ready fires
//! (FreeRTOS's queue sets, Go's `select`).
//!
//! A select takes a fixed array of *cases* — [`RecvCase`] (receive on a
//! [`Channel`](super::Channel)), [`SendCase`] (send on one), [`AcquireCase`]
//! (a [`Semaphore`](super::Semaphore) permit), [`EventCase`] (an
//! [`Event`](super::Event)), [`IrqCase`] (an [`IrqSignal`](crate::IrqSignal))
//! — and blocks until one of them can complete, or the timeout passes. It
//! returns the index of the case that fired; that case holds the outcome
//! (the received value, whether the permit was taken, ...). No heap: the
//! cases live on the caller's stack, the array's length is a const generic.
//!
//! ```
//! use filament::sync::select::{self, AcquireCase, RecvCase, SelectError};
//! use filament::sync::{Channel, Semaphore};
//! use filament::{Runtime, StaticStack};
//!
//! static NUMBERS: Channel<u32, 2> = Channel::new();
//! static WORDS: Channel<&str, 2> = Channel::new();
//! static STOP: Semaphore = Semaphore::new(0);
//! static STACKS: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
//! static RT: Runtime<'static, 2> = Runtime::new();
//!
//! let rx = RT
//!     .spawn(STACKS[0].claim().unwrap(), |fib| {
//!         let mut log = heapless::Vec::<u32, 8>::new();
//!         loop {
//!             let mut n = RecvCase::new(&NUMBERS);
//!             let mut w = RecvCase::new(&WORDS);
//!             let mut stop = AcquireCase::new(&STOP);
//!             match select::select(fib, [&mut n, &mut w, &mut stop]) {
//!                 Ok(0) => log.push(n.take().unwrap().unwrap()).unwrap(),
//!                 Ok(1) => log.push(w.take().unwrap().unwrap().len() as u32).unwrap(),
//!                 Ok(_) => return log, // case 2: a stop permit
//!                 Err(e) => panic!("{e}"),
//!             }
//!         }
//!     })
//!     .ok()
//!     .unwrap();
//! RT.spawn_detached(STACKS[1].claim().unwrap(), |fib| {
//!     NUMBERS.send(fib, 7).unwrap();
//!     WORDS.send(fib, "four").unwrap();
//!     fib.yield_now();
//!     STOP.give(fib).unwrap();
//! })
//! .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(rx).unwrap(), [7, 4]);
//! ```
//!
//! A case borrows its source for the runtime's lifetime, like a blocking
//! call: a primitive on a fiber's own stack cannot be selected on.
//!
//! ```compile_fail
//! use filament::sync::select::{self, RecvCase};
//! use filament::sync::Channel;
//! use filament::{Runtime, StaticStack};
//! static STACK: StaticStack<16384> = StaticStack::new();
//! static RT: Runtime<'static, 2> = Runtime::new();
//! RT.spawn_detached(STACK.claim().unwrap(), |fib| {
//!     let local: Channel<u8, 1> = Channel::new();
//!     let mut r = RecvCase::new(&local);
//!     let _ = select::select(fib, [&mut r]); // error: `local` does not live long enough
//! });
//! ```
//!
//! # Semantics
//!
//! * **Exactly one case fires** per successful select; the others are left
//!   untouched (a [`SendCase`]'s value stays in it, no permit or value is
//!   taken for them).
//! * **Order among ready cases**: the lowest index wins. Case order is a
//!   priority; a select that must not starve a busy source's neighbours
//!   rotates its cases (or puts the busy one last).
//! * **Direct waiters first**: a source that becomes ready hands itself to a
//!   fiber blocked in its plain blocking call (`recv`, `acquire`, ...) if
//!   there is one (FIFO, as always); only otherwise does it wake the
//!   selectors watching it, in the order they started watching. A woken
//!   selector is not *handed* the value or permit: it re-checks its cases when
//!   it runs, and if another fiber took the source meanwhile (a `try_` call,
//!   another selector) it blocks again, keeping its place in every list.
//! * **No wake is lost**: when a select returns — whichever case fired, on a
//!   timeout, on an unwind — it unlinks its cases, then, for every case whose
//!   source is *still* ready, wakes the next selector watching that source. So
//!   a selector woken by two sources consumes one and passes the other on,
//!   and a wake that went to a fiber which then timed out is not stranded.
//!   A woken selector [suspended](crate::Fiber::suspend) before it ran
//!   passes its wake on the same way at once (keeping its nodes linked: it
//!   looks again when resumed).
//! * **Spent cases** — a [`RecvCase`] still holding an untaken value, a
//!   [`SendCase`] with nothing to send — cannot fire; a blocking select does
//!   not watch their sources (so they take no wake meant for another select).
//! * **Closed channels** fire: a [`RecvCase`] on a closed, drained channel
//!   fires with [`RecvError::Closed`](super::RecvError::Closed), a
//!   [`SendCase`] on a closed channel fires with its value kept
//!   ([`SendCase::is_closed`]).
//! * **Timeouts** as for every primitive: `select_timeout(fib, cases, 0)`
//!   tries once; a select whose deadline passes returns
//!   [`SelectError::TimedOut`] — unless a case is ready by the time the fiber
//!   resumes, which then fires.
//! * **Deadlock reports** show a selecting fiber as
//!   [`WaitReason::Select`](crate::WaitReason::Select), naming every source:
//!   `select on recv channel 0x…, semaphore 0x…`. gdb's `info fibers` shows
//!   `Blocked select` with the same list.
//!
//! # Design
//!
//! A plain waiter sits in its primitive's intrusive `WaitQueue`, linked through
//! its control block — one queue at a time. A selecting fiber must be findable
//! from several sources, so each case carries a *selector node* (in the case
//! object, borrowed by the select for its whole run, as a `recv` keeps its
//! value cell in its frame). Each source keeps a second, doubly linked list of such
//! nodes (`SelList`: the channel's two `WaitList`s, the semaphore, the event,
//! the signal each gained one). The fiber itself blocks in *no* queue, with
//! `WaitKind::Select` and `wait_obj` pointing at a record in its frame: the
//! [`SelectSources`] (for reports) and the cases. A source that wakes the
//! fiber leaves `wait_obj` pointing there until the select returns, so that
//! suspending the fiber before it runs can pass the wake on.
//!
//! A source's hot paths pay one check for this: when it becomes ready with no
//! direct waiter to hand itself to (a value queued, room made, a permit
//! counted, the event set, the channel closed, a signal raised) it tests
//! whether its selector list is empty, and only if not, walks it for the
//! first node whose fiber still sleeps in its select (`Blocked` with
//! `WaitKind::Select`) and wakes it. Nodes of fibers already woken (by another
//! source, by their deadline) or parked after a deadlock are skipped.
//!
//! Every exit of a select — return, timeout, a cancellation or panic
//! unwinding through it — drops a guard that unlinks every node before the
//! cases' borrow ends (invariant I12 in `raw`), then passes wakes on (above).
//! While it waits on an [`IrqCase`], the fiber is counted as an interrupt
//! waiter (so the runtime polls its signals and idles instead of reporting a
//! deadlock), exactly as in `IrqSignal::wait`.

mod case;
mod list;
mod sources;

use core::{fmt, ptr};

pub use case::{AcquireCase, Case, EventCase, IrqCase, RecvCase, SendCase};
pub(crate) use list::SelList;
pub use sources::SelectSources;

use super::choice_point;
use crate::fiber::{Slot, WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::Core;
use crate::time::Ticks;

/// Why a select did not fire a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// No case was ready before the deadline ([`select_timeout`]).
    TimedOut,
    /// No case was ready ([`try_select`]).
    WouldBlock,
    /// The source of case `index` is bound to another runtime; nothing was
    /// consumed.
    WrongRuntime {
        /// The case's index in the array.
        index: usize,
    },
    /// This fiber is unwinding and no case was ready: a fiber never blocks
    /// while it unwinds.
    Unwinding,
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::TimedOut => f.write_str("select timed out"),
            SelectError::WouldBlock => f.write_str("no select case is ready"),
            SelectError::WrongRuntime { index } => {
                write!(f, "select case {index}: primitive is bound to another runtime")
            }
            SelectError::Unwinding => f.write_str("cannot block in a select while the fiber unwinds"),
            SelectError::Cancelled => f.write_str("the selecting fiber was cancelled"),
        }
    }
}

impl core::error::Error for SelectError {}

/// Blocks until one of `cases` fires; returns its index.
pub fn select<'s, const N: usize>(fib: &Fiber<'s>, mut cases: [&mut dyn Case<'s>; N]) -> Result<usize, SelectError> {
    run(fib, &mut cases, Some(None))
}

/// Like [`select`], giving up with [`SelectError::TimedOut`] after `timeout`
/// ticks (`0`: try once).
pub fn select_timeout<'s, const N: usize>(
    fib: &Fiber<'s>,
    mut cases: [&mut dyn Case<'s>; N],
    timeout: Ticks,
) -> Result<usize, SelectError> {
    run(fib, &mut cases, Some(Some(fib.now().saturating_add(timeout))))
}

/// Fires the first ready case; never blocks ([`SelectError::WouldBlock`]).
pub fn try_select<'s, const N: usize>(
    fib: &Fiber<'s>,
    mut cases: [&mut dyn Case<'s>; N],
) -> Result<usize, SelectError> {
    run(fib, &mut cases, None)
}

/// Fires the first ready case, in index order.
///
/// # Safety
/// `fib` is the running fiber; every case's source is bound to its runtime.
unsafe fn fire_first(fib: &Fiber<'_>, cases: &mut [&mut dyn Case<'_>]) -> Option<usize> {
    // SAFETY: forwarded contract.
    cases.iter_mut().position(|c| unsafe { c.fire(fib) })
}

/// `block`: `None` never blocks; `Some(deadline)` blocks until it (`None`: forever).
fn run<'s>(
    fib: &Fiber<'s>,
    cases: &mut [&mut dyn Case<'s>],
    block: Option<Option<Ticks>>,
) -> Result<usize, SelectError> {
    let core = fib.core_ptr();
    for (index, c) in cases.iter_mut().enumerate() {
        if !c.bind(fib) {
            return Err(SelectError::WrongRuntime { index });
        }
        c.begin();
    }
    // SAFETY: we are the running fiber of `core`; every source is bound to it.
    if let Some(i) = unsafe { fire_first(fib, cases) } {
        // SAFETY: as above.
        unsafe { choice_point(core) };
        return Ok(i);
    }
    let Some(deadline) = block else { return Err(SelectError::WouldBlock) };
    let slot = fib.slot_ptr();
    // From here on the cases are reached through this one raw pointer (the
    // select's own calls and, while the fiber is switched out, `pass_on`).
    let cases: *mut [&mut dyn Case<'s>] = cases;
    let mut record = SelectWait { sources: SelectSources::new(), cases: ptr::slice_from_raw_parts(ptr::null(), 0) };
    let mut polled = false;
    // Spent cases (an untaken value, nothing to send) cannot fire: they
    // watch nothing, or they would take wakes meant for other selects.
    // SAFETY: `cases` is the caller's array, borrowed for this call.
    for c in unsafe { &*cases }.iter().filter(|c| !c.spent()) {
        record.sources.push(c.source());
        polled |= c.polled();
        let (node, list) = c.parts();
        // SAFETY: the node lives in the case, borrowed by this call until the
        // guard below unlinks it (I12); the list lives in the bound source (I5).
        unsafe { list.link(node, slot) };
    }
    // Lifetimes erased: `pass_on` only asks the cases whether they are ready
    // and for their lists, while this call is inside its wait (I12).
    record.cases = cases as *const [&'static mut dyn Case<'static>];
    let guard = Linked { core, slot, cases };
    loop {
        // SAFETY: we are the running fiber; `record` lives in this frame
        // until after we resume (reports read it while we are blocked, and
        // `pass_on` while we are woken and not yet run: I12).
        let wake = unsafe {
            let obj = &raw const record as usize;
            if polled {
                crate::irq::source::as_irq_waiter(core, || fib.wait_off_queue(WaitKind::Select, obj, deadline))
            } else {
                fib.wait_off_queue(WaitKind::Select, obj, deadline)
            }
        };
        // SAFETY: as for the first try; the array is borrowed by this call.
        if let Some(i) = unsafe { fire_first(fib, &mut *guard.cases) } {
            drop(guard);
            // SAFETY: as above.
            unsafe { choice_point(core) };
            return Ok(i);
        }
        match wake {
            Wake::TimedOut => return Err(SelectError::TimedOut),
            Wake::Unwinding => return Err(SelectError::Unwinding),
            Wake::Aborted => return Err(SelectError::Cancelled),
            // Woken by a source someone else emptied first: block again.
            _ => {}
        }
    }
}

/// What a blocked select's `wait_obj` names: a record in its frame, which
/// stays there from the first block until the select returns (I12).
///
/// Reports and gdb read it as its first field (`repr(C)`). A fiber woken
/// through one of its nodes keeps `wait_obj` pointing here until it is out of
/// the select (`SelList::notify_one`), so that [`Fiber::suspend`] of such a
/// fiber, which has not run yet, can pass the wake on ([`pass_on`]).
#[repr(C)]
pub(crate) struct SelectWait {
    sources: SelectSources,
    /// The select's cases (its caller's array), lifetimes erased.
    cases: *const [&'static mut dyn Case<'static>],
}

/// Passes on the wake of a select that will not look at its cases for a
/// while: for each case whose source is ready, wakes the next selector
/// sleeping on it — what the select's return does ([`Linked`]'s drop), for a
/// fiber woken from its select and suspended before it ran (`Fiber::suspend`).
/// Its own nodes stay linked (it keeps its place); the sources skip it (it is
/// not `Blocked` in `WaitKind::Select`).
///
/// # Safety
/// Exclusive access to `core` by one of its running fibers; `record` is the
/// `wait_obj` of a Ready, not running fiber of `core` woken through a select
/// node (its `SelectWait`, alive in its frame, I12), whose sources are bound
/// to `core` (they are until its run ends: it has not finished).
#[cold]
pub(crate) unsafe fn pass_on(core: *mut Core, record: usize) {
    // SAFETY: per the contract the record and the cases it names live in the
    // woken fiber's frame, which nothing touches while it is switched out;
    // `ready` and `parts` are the calls `Linked`'s drop makes, from a running
    // fiber of the bound runtime.
    unsafe {
        let cases = &*(*(record as *const SelectWait)).cases;
        for c in cases {
            if c.ready() {
                c.parts().1.notify_one(core);
            }
        }
    }
}

/// Unlinks every case's node when the select ends by any route (including an
/// unwind), then passes each still-ready source's wake on. Clears the
/// fiber's `wait_obj`, which still names the select's record if a source woke
/// it (`SelList::notify_one`): the record is about to go.
struct Linked<'d, 's> {
    core: *mut Core,
    slot: *mut Slot,
    /// The caller's array, borrowed by `run` for the whole select.
    cases: *mut [&'d mut dyn Case<'s>],
}

impl Drop for Linked<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: the array is borrowed by `run`, which owns this guard; the
        // slot is the running fiber's (ours, I1).
        let cases = unsafe {
            (*self.slot).wait_obj = 0;
            &*self.cases
        };
        for c in cases.iter() {
            // SAFETY: linked by `run` in the bound source's list, both alive (I5, I12).
            unsafe { SelList::unlink(c.parts().0) };
        }
        for c in cases.iter() {
            // SAFETY: dropped by the selecting fiber while it runs (or unwinds
            // on its own stack): exclusive access to its core (I1).
            unsafe {
                if c.ready() {
                    c.parts().1.notify_one(self.core);
                }
            }
        }
    }
}
