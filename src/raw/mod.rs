//! The unsafe mechanics of the scheduler: the ready ring, switching, blocking,
//! waking, exit and slot recycling. The safe layer is [`crate::runtime`].
//!
//! # The ready ring
//!
//! Ready fibers form a circular singly linked list through `Slot::next`.
//! `current` is the head of the ready queue (the running fiber while one runs)
//! and `prev` its tail, the fiber before it in the ring:
//!
//! ```text
//!   prev ──► current ──► a ──► b ──► prev        (ring order = run order)
//! ```
//!
//! * yield: `prev = current; current = current.next` — one step, then one switch
//!   from the old fiber straight to the new one (no scheduler context between);
//! * make ready (spawn, wake): link the fiber between `prev` and `current`, so it
//!   runs after every fiber already queued — strict FIFO;
//! * block or exit: unlink `current`; its successor runs next.
//!
//! All O(1). When the ring is empty the host context (the caller of `run`) is
//! resumed: it reclaims finished fibers, runs timers and the idle hook, and
//! detects deadlock.
//!
//! # Priority levels
//!
//! The ring at `current`/`prev` is the *running level*'s (`run_level`). Every
//! other level with ready fibers keeps its own ring, by its tail in
//! `levels[l]`, and a bit in the `ready_levels` bitmap. So the plain yield is
//! unchanged — with every fiber at one level there is only the one ring, and
//! the fast path's single `slow` compare covers priorities too:
//!
//! * make ready at the running level: as above. At another level: link at
//!   that level's tail and set its bit; above the running level it also sets
//!   `preempt`, folded into `slow`, so the next scheduling point takes the
//!   general path;
//! * a scheduling point with `preempt` set (a yield, a primitive's choice
//!   point, a block or exit) parks the running ring as its level's ring (a
//!   yielding fiber first steps to its tail; a preempted one stays at its
//!   head) and loads the highest level's ring: one `leading_zeros`;
//! * when the running ring empties (block, exit) the highest set bit's ring
//!   is loaded the same way; nothing ready at all: the host runs.
//!
//! Picking the next fiber stays O(1) at any number of fibers and levels.
//!
//! # Invariants
//!
//! Every `// SAFETY:` comment in the scheduler leans on these. The right
//! column says what keeps safe code from breaking each one.
//!
//! | # | invariant | enforced by |
//! |---|---|---|
//! | I1 | Only one context touches a `Core` at a time: the thread holding the runtime's lock (outer calls) or the fiber running inside its `run`. | `Runtime::try_lock` on every outer call; `Fiber` is `!Send + !Sync` and handed only to the running closure; primitives and `IrqSignal` bind to one runtime's serial (atomic CAS) and touch their non-atomic state only from its fibers. |
//! | I2 | Each slot is on exactly one list, by state: Ready → the ready ring of its priority level (I11; in the running ring `current` is the running fiber or the head, `prev.next == current`); Blocked → at most one wait queue (the one at `wait_obj` when `wait_kind.has_queue()`); Free → the free list; Finished → the zombie list or none. The lists share `Slot::next`. | Only `make_ready`, `unlink_current`, `step_ring`, `WaitQueue::push_back/pop_front/remove`, `retire_slot` relink, each with its state change. |
//! | I3 | The timer heap holds Blocked slots only, each at `timer_pos`. | `time::arm` is called only by `block_current`, after marking the fiber Blocked; `wake` cancels the deadline; `time::advance` stops (`fatal`) rather than act on anything else. |
//! | I4 | A stack token is dropped only when no frame lives on it (the fiber finished or never started). | `free_slot`'s callers (take, detach, reclaim, `Runtime::drop`), which check the state; a scoped runtime dropped with live frames stops the program; a `'static` one leaks their stacks. |
//! | I5 | A wait queue outlives every fiber linked into it. | Blocking methods take `&'s self` with `&Fiber<'s>`, `'s` invariant and at least as long as the runtime's stacks. |
//! | I6 | A fiber never switches while it unwinds. | [`unwinding`] checked by every yield and every block. |
//! | I7 | Nothing is written outside a stack `spawn` accepted by the entry glue. | The `needed` check in `spawn_raw` (glue reserve measured in tests). |
//! | I8 | A fiber whose canary broke never runs again, and nothing more is written on its stack. | `check_canary` at every switch-out, `canary_intact` at exit and free; the report runs on the host stack (`canary_broken_here`). |
//! | I9 | `slow` is non-zero exactly when a general-path cause is (pollers, own-FP fibers, tracer, policy, a pending preemption). | `refresh_slow` after every change of a cause. |
//! | I10 | `pollers == ntimers + irq.waiters`. | `time::arm`/`cancel_deadline` and `irq::source::as_irq_waiter` (the wait of every interrupt-capable object, with an unwind guard) adjust both together. |
//! | I11 | A Ready slot is in the ring of its `priority` level: the running ring (`current`/`prev`, level `run_level`) or the ring whose tail is `levels[l]`, with bit `l` of `ready_levels` set exactly for non-empty `levels[l]` (never for `run_level`). The running ring is empty only when no fiber is ready at all. `preempt` is set exactly when `ready_levels` has a bit above `run_level`. | Only `make_ready`, `unlink_current`, `unlink_ready`, `switch_level` and `move_current` (ring.rs, prio.rs) touch the levels, each keeping all of it. |
//! | I12 | A select's nodes stay at their addresses while linked in sources' selector lists, and a fiber blocked with `WaitKind::Select` keeps its select's record (`SelectWait`: its `SelectSources`, then its cases) at `wait_obj`. A fiber woken through one of those nodes keeps `wait_obj` naming that record (with `WaitKind::None`) until its select returns; the record, the cases and their nodes stay in its frame, untouched, while it is Ready and not running (so `Fiber::suspend` can pass its wake on: `select::pass_on`). | The nodes live in case objects the select borrows `&mut` for its whole call; its drop guard unlinks them and clears `wait_obj` on return and unwind; the record is a local of the call that blocks; only `SelList::notify_one` keeps `wait_obj` across a wake, and the select switches out only inside its wait (so the fiber is out of the select, `wait_obj` cleared, before it is Ready again for any other reason). |
//! | I13 | A fiber linked in a `sync::waitlist::WaitList`'s queue has `Header::wait_value` naming a live `Cell<Option<T>>` (that list's `T`) in its waiting frame. | `WaitList::wait` sets it just before blocking in that queue and keeps the cell in its frame until the wait returns; every route out of a wait queue (a waker's pop, timeout, cancellation, abort) unlinks the fiber before it runs again (I2), so no stale pointer is ever read. |
//!
//! `Runtime::debug_check_invariants` / `Fiber::debug_check_invariants` check
//! I2, I3, I9, I10 and I11 structurally (tests call them after every step).

use core::ptr;

use crate::arch;
use crate::fiber::{FiberId, Slot, State, WaitKind, WaitReason, Wake};
use crate::stack;
use crate::time::Ticks;
use crate::trace::trace_event;
use crate::wait::WaitQueue;

mod block;
mod describe;
mod exit;
mod prio;
mod ring;
mod switch;

pub(crate) use block::*;
pub(crate) use describe::*;
pub(crate) use exit::*;
pub(crate) use prio::*;
pub(crate) use ring::*;
pub(crate) use switch::*;

/// Scheduler state shared by the runtime and its fibers' handles. Not generic,
/// so fiber code is not monomorphised per capacity.
pub(crate) struct Core {
    /// Running fiber / head of the ready ring; null when the ring is empty.
    pub current: *mut Slot,
    /// Tail of the ready ring.
    pub prev: *mut Slot,
    /// The priority level of the ring at `current`/`prev` (the running level).
    pub run_level: u8,
    /// A ready fiber waits at a level above `run_level`: the next scheduling
    /// point switches levels (cooperative preemption). Folded into `slow`.
    pub preempt: bool,
    /// Bit `l` set: level `l` (not the running level) has ready fibers, in
    /// the ring whose tail is `levels[l]`.
    pub ready_levels: u32,
    /// Tails of the rings of ready fibers at levels other than the running
    /// one (`tail.next` is the head); null for an empty level and for the
    /// running level, whose ring is `current`/`prev`.
    pub levels: [*mut Slot; crate::priority::PRIORITY_LEVELS],
    /// The host context's saved stack pointer while fibers run.
    pub host_sp: *mut u8,
    /// Free slots, linked through `next`.
    pub free: *mut Slot,
    /// Finished detached fibers whose stacks await release, linked through `next`.
    pub zombies: *mut Slot,
    /// The slot array and its length.
    pub slots: *mut Slot,
    pub cap: usize,
    /// Fibers spawned and not yet finished.
    pub unfinished: usize,
    /// A deadlock left fibers that can never run again.
    pub poisoned: bool,
    /// Fibers parked for good by deadlocks (`WaitKind::Parked`).
    pub parked: usize,
    /// Slots held by `spawn_local` fibers (until freed).
    pub local_fibers: usize,
    /// The thread those fibers belong to, while there are any.
    #[cfg(feature = "std")]
    pub local_thread: Option<std::thread::ThreadId>,
    /// `host::signal_reserve()`, copied at bind time (`Runtime::bind`):
    /// spawn's stack check reads it with one plain load.
    #[cfg(feature = "std")]
    pub signal_reserve: usize,
    /// `run` is on the host's stack right now.
    pub in_run: bool,
    /// The runtime's clock, in ticks.
    pub now: u64,
    /// The timer min-heap (one entry per slot at most) and its length.
    pub timers: *mut crate::time::TimerEntry,
    pub ntimers: usize,
    /// Armed timers plus fibers waiting on interrupt signals: while non-zero,
    /// every yield and block polls the signals and the clock.
    pub pollers: usize,
    /// Non-zero while anything needs the general yield path (pollers, a pending preemption, fibers
    /// with their own FP state, a tracer, a policy); see [`refresh_slow`].
    /// One word, so the fast yield tests all of them with one compare.
    pub slow: usize,
    /// Live fibers with their own FP control state (default FP mode).
    #[cfg_attr(any(feature = "no-fp-control", feature = "fp-control-always"), allow(dead_code))]
    pub fp_fibers: usize,
    /// The FP control state of every context without its own (the host and
    /// fibers that never called `set_fp_control`), while a fiber with its own
    /// state runs.
    #[cfg_attr(any(feature = "no-fp-control", feature = "fp-control-always"), allow(dead_code))]
    pub ambient_fp: crate::arch::FpControl,
    /// The running `run` call's idle hook, also the clock read while polling
    /// (lifetime erased: set and cleared by `run`, which outlives every use).
    /// `None` between runs and during a run with `NoIdle`.
    pub clock: Option<*mut dyn crate::time::Idle>,
    /// The running `run` call's clock readings plus this are the runtime's
    /// time (`time::clock_time`), fixed by the first reading of the call.
    pub clock_offset: u64,
    /// Whether `clock_offset` is fixed for the running `run` call.
    pub clock_synced: bool,
    /// `run_for`'s limit on the runtime's time line, while it runs.
    pub stop_at: Option<u64>,
    /// Tie-breaker so equal deadlines wake in arming order.
    pub timer_seq: u64,
    /// Primitives bound to this runtime for its run (`sync::Binding`), linked
    /// through the bindings; released when `run` returns.
    pub bound: *const crate::sync::Binding,
    /// Interrupt-side signals registered with this runtime.
    pub irq: crate::irq::IrqList,
    /// The tracer (feature `trace`), lifetime-erased: it outlives the runtime.
    #[cfg(feature = "trace")]
    pub tracer: Option<*const (dyn crate::trace::Trace + 'static)>,
    /// The scheduling policy (feature `explore`); `None`: strict FIFO.
    #[cfg(feature = "explore")]
    pub policy: Option<std::boxed::Box<dyn crate::policy::SchedulePolicy + Send>>,
    /// Written by the final switch out of a finished fiber whose stack needs no
    /// release store (a borrowed buffer): a harmless target for that store.
    pub scratch: u8,
    /// Counters for reports. Slots in use = `spawns - frees`.
    pub spawns: u64,
    pub frees: u64,
    pub idles: u64,
    pub deadlocks: u64,
    /// This runtime's identity (never reused in the process; 0 until the
    /// runtime is first used). Join handles and primitives remember it, so a
    /// new runtime at a dead one's address is never mistaken for it.
    pub serial: u64,
    /// This runtime's entry in the table of live runtimes (`orphans`).
    pub live_slot: u32,
    /// Switch-ins of fibers whose slots were freed (for the switch total).
    pub retired_runs: u64,
}

impl Core {
    /// Slots in use (not free).
    pub(crate) fn used(&self) -> usize {
        self.spawns.wrapping_sub(self.frees) as usize
    }

    pub(crate) const fn new() -> Self {
        Core {
            current: ptr::null_mut(),
            prev: ptr::null_mut(),
            run_level: 0,
            preempt: false,
            ready_levels: 0,
            levels: [ptr::null_mut(); crate::priority::PRIORITY_LEVELS],
            host_sp: ptr::null_mut(),
            free: ptr::null_mut(),
            zombies: ptr::null_mut(),
            slots: ptr::null_mut(),
            cap: 0,
            unfinished: 0,
            poisoned: false,
            parked: 0,
            local_fibers: 0,
            #[cfg(feature = "std")]
            local_thread: None,
            #[cfg(feature = "std")]
            signal_reserve: 0,
            in_run: false,
            now: 0,
            timers: ptr::null_mut(),
            ntimers: 0,
            pollers: 0,
            slow: 0,
            fp_fibers: 0,
            ambient_fp: crate::arch::FpControl::DEFAULT,
            clock: None,
            clock_offset: 0,
            // The clock's idle state between runs (`run::run_body`).
            clock_synced: true,
            stop_at: None,
            timer_seq: 0,
            bound: ptr::null(),
            irq: crate::irq::IrqList::new(),
            #[cfg(feature = "trace")]
            tracer: None,
            #[cfg(feature = "explore")]
            policy: None,
            scratch: 0,
            spawns: 0,
            frees: 0,
            idles: 0,
            deadlocks: 0,
            serial: 0,
            retired_runs: 0,
            live_slot: u32::MAX,
        }
    }
}

/// Stops the program if dropped: armed around user callbacks the scheduler
/// calls from the middle of a switch or from the host loop (idle hook, clock,
/// tracer, scheduling policy), where an unwind would leave the ready ring or a
/// suspended fiber half-switched.
pub(crate) struct AbortOnUnwind(pub &'static str);

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        fatal(format_args!("{} panicked inside the scheduler; stopping", self.0))
    }
}

/// Runs a user callback that must not unwind into the scheduler.
#[inline(always)]
pub(crate) fn no_unwind<R>(what: &'static str, f: impl FnOnce() -> R) -> R {
    let guard = AbortOnUnwind(what);
    let r = f();
    core::mem::forget(guard);
    r
}

/// Whether the running fiber is unwinding (a panic, or a deadlock
/// cancellation, is running its destructors). Always `false` without `std`.
///
/// std keeps "this thread is panicking" (`thread::panicking`, which std's
/// `Mutex` poisoning and our own exploration consult) per OS thread, and there
/// is no stable way to save and restore it per fiber. So a fiber never
/// switches while it unwinds: a yield returns at once and a wait that would
/// block fails with an `Unwinding` error. Because no fiber is ever suspended
/// mid-unwind, `thread::panicking()` on the runtime's thread is true exactly
/// while the *running* fiber unwinds, which makes this check exact.
#[inline(always)]
pub(crate) fn unwinding() -> bool {
    #[cfg(feature = "std")]
    {
        std::thread::panicking()
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// Hands out runtime serials. The crate's only global: an id allocator, not
/// scheduler state (runtimes never share anything through it).
pub(crate) static NEXT_SERIAL: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Stops the program with a message. Used where continuing would be unsound
/// (a broken canary, a runtime dropped with live frames on borrowed stacks).
///
/// Under `std` this prints and aborts. Without it, it panics with a guard that
/// panics again while unwinding, which aborts if the panic strategy unwinds; with
/// `panic = "abort"` the user's panic handler runs and never returns.
#[cold]
#[inline(never)]
pub(crate) fn fatal(args: core::fmt::Arguments<'_>) -> ! {
    #[cfg(feature = "std")]
    {
        extern crate std;
        // Straight to file descriptor 2, one line: `eprintln!` goes through
        // libtest's output capture, which a test that aborts never prints.
        crate::host::write_stderr_line(format_args!("filament: fatal: {args}"));
        std::process::abort();
    }
    #[cfg(not(feature = "std"))]
    {
        struct AbortOnUnwind;
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                panic!("filament: fatal error while unwinding");
            }
        }
        let _guard = AbortOnUnwind;
        panic!("filament: fatal: {args}");
    }
}

/// Index of `s` in the slot table.
///
/// # Safety
/// `s` must point into `core`'s slot array.
#[inline]
pub(crate) unsafe fn index_of(core: *const Core, s: *const Slot) -> u32 {
    // SAFETY: both pointers are in the same array allocation.
    unsafe { s.offset_from((*core).slots) as u32 }
}

/// The id of the fiber in slot `s`.
///
/// # Safety
/// `s` must point into `core`'s slot array.
#[inline]
pub(crate) unsafe fn id_of(core: *const Core, s: *const Slot) -> FiberId {
    // SAFETY: forwarded contract.
    unsafe { FiberId { index: index_of(core, s), generation: (*s).generation } }
}

/// Checks the canary of a fiber being switched out; stops the program if broken.
///
/// # Safety
/// `s` must be a live fiber's slot in `core`.
#[inline(always)]
pub(crate) unsafe fn check_canary(core: *const Core, s: *mut Slot) {
    // Hot path: the low half of the topmost canary word, the first one an
    // overflow reaches (one compare with an immediate). All four words are
    // checked in full when the fiber's slot is freed. A plain load (folded
    // into the compare): every switch is a compiler barrier, so it is re-read
    // at every call.
    // SAFETY: `lo` is the start of the fiber's owned, prepared stack.
    let top_word = unsafe { (*s).lo.cast::<u32>().add(2 * stack::CANARY_WORDS - 2).read() };
    if top_word != stack::CANARY as u32 {
        // SAFETY: forwarded contract; `s` is the running fiber.
        unsafe { canary_broken_here(core.cast_mut(), s) }
    }
}

/// The running fiber's canary is broken: leaves its stack (which overflowed:
/// nothing more may be written below it) and reports from the host context's
/// stack, where `run` is suspended.
///
/// # Safety
/// `s` is the running fiber of `core`, on its own stack, inside `run`.
#[cold]
#[inline(never)]
pub(crate) unsafe fn canary_broken_here(core: *mut Core, s: *mut Slot) -> ! {
    // SAFETY: the host context is suspended in `run` (a fiber runs), so its
    // saved sp is valid and everything below it is free; the fiber's stack is
    // never used again.
    unsafe { arch::call_on_stack((*core).host_sp, canary_broken_report, core, s) }
}

/// [`canary_broken`] with the `extern "C"` signature `call_on_stack` jumps to.
///
/// # Safety
/// As for [`canary_broken`].
unsafe extern "C" fn canary_broken_report(core: *mut Core, s: *mut Slot) -> ! {
    // SAFETY: forwarded contract.
    unsafe { canary_broken(core, s) }
}

/// Reports a broken canary and stops. Runs on a stack that is not `s`'s.
///
/// # Safety
/// `s` is a non-free slot of `core` whose header is readable; the caller does
/// not run on `s`'s stack.
#[cold]
#[inline(never)]
pub(crate) unsafe fn canary_broken(core: *const Core, s: *mut Slot) -> ! {
    // SAFETY: s is a live slot whose header is intact (the header is at the
    // *top* of the stack; an overflow smashes the bottom first).
    let (id, name, size) = unsafe { (id_of(core, s), (*(*s).header).name, (*(*s).header).stack.size()) };
    fatal(format_args!("stack overflow: canary of fiber {id} \"{name}\" ({size}-byte stack) is broken"))
}
