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
//! # Invariants
//!
//! Every `// SAFETY:` comment in the scheduler leans on these. The right
//! column says what keeps safe code from breaking each one.
//!
//! | # | invariant | enforced by |
//! |---|---|---|
//! | I1 | Only one context touches a `Core` at a time: the thread holding the runtime's lock (outer calls) or the fiber running inside its `run`. | `Runtime::try_lock` on every outer call; `Fiber` is `!Send + !Sync` and handed only to the running closure; primitives and `IrqSignal` bind to one runtime's serial (atomic CAS) and touch their non-atomic state only from its fibers. |
//! | I2 | Each slot is on exactly one list, by state: Ready → the ready ring (`current` is the running fiber or the head, `prev.next == current`); Blocked → at most one wait queue (the one at `wait_obj` when `wait_kind.has_queue()`); Free → the free list; Finished → the zombie list or none. The lists share `Slot::next`. | Only `make_ready`, `unlink_current`, `step_ring`, `WaitQueue::push_back/pop_front/remove`, `retire_slot` relink, each with its state change. |
//! | I3 | The timer heap holds Blocked slots only, each at `timer_pos`. | `time::arm` is called only by `block_current`, after marking the fiber Blocked; `wake` cancels the deadline; `time::advance` stops (`fatal`) rather than act on anything else. |
//! | I4 | A stack token is dropped only when no frame lives on it (the fiber finished or never started). | `free_slot`'s callers (take, detach, reclaim, `Runtime::drop`), which check the state; a scoped runtime dropped with live frames stops the program; a `'static` one leaks their stacks. |
//! | I5 | A wait queue (and a `WaitList` node) outlives every fiber linked into it. | Blocking methods take `&'s self` with `&Fiber<'s>`, `'s` invariant and at least as long as the runtime's stacks; `WaitList` nodes are unlinked by a drop guard on return and unwind. |
//! | I6 | A fiber never switches while it unwinds. | [`unwinding`] checked by every yield and every block. |
//! | I7 | Nothing is written outside a stack `spawn` accepted by the entry glue. | The `needed` check in `spawn_raw` (glue reserve measured in tests). |
//! | I8 | A fiber whose canary broke never runs again, and nothing more is written on its stack. | `check_canary` at every switch-out, `canary_intact` at exit and free; the report runs on the host stack (`canary_broken_here`). |
//! | I9 | `slow` is non-zero exactly when a general-path cause is (pollers, own-FP fibers, tracer, policy). | `refresh_slow` after every change of a cause. |
//! | I10 | `pollers == ntimers + irq.waiters`. | `time::arm`/`cancel_deadline` and `IrqSignal`'s wait (with an unwind guard) adjust both together. |
//!
//! `Runtime::debug_check_invariants` / `Fiber::debug_check_invariants` check
//! I2, I3, I9 and I10 structurally (tests call them after every step).

use core::ptr;

use crate::arch;
use crate::fiber::{FiberId, Slot, State, WaitKind, WaitReason, Wake};
use crate::stack;
use crate::time::Ticks;
use crate::trace::trace_event;
use crate::wait::WaitQueue;

/// Scheduler state shared by the runtime and its fibers' handles. Not generic,
/// so fiber code is not monomorphised per capacity.
pub(crate) struct Core {
    /// Running fiber / head of the ready ring; null when the ring is empty.
    pub current: *mut Slot,
    /// Tail of the ready ring.
    pub prev: *mut Slot,
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
    /// Non-zero while anything needs the general yield path (pollers, fibers
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
            clock_synced: false,
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
unsafe fn canary_broken_here(core: *mut Core, s: *mut Slot) -> ! {
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
unsafe fn canary_broken(core: *const Core, s: *mut Slot) -> ! {
    // SAFETY: s is a live slot whose header is intact (the header is at the
    // *top* of the stack; an overflow smashes the bottom first).
    let (id, name, size) = unsafe { (id_of(core, s), (*(*s).header).name, (*(*s).header).stack.size()) };
    fatal(format_args!("stack overflow: canary of fiber {id} \"{name}\" ({size}-byte stack) is broken"))
}

/// Links `s` at the tail of the ready ring (runs after everything queued).
///
/// # Safety
/// `s` must be a valid slot of `core` that is not in the ring or any queue.
#[inline(always)]
pub(crate) unsafe fn make_ready(core: *mut Core, s: *mut Slot) {
    // SAFETY: ring pointers are valid slots of core; s is not linked anywhere.
    unsafe {
        (*s).state = State::Ready;
        let cur = (*core).current;
        if cur.is_null() {
            (*s).next = s;
            (*core).current = s;
        } else {
            (*s).next = cur;
            (*(*core).prev).next = s;
        }
        (*core).prev = s;
    }
}

/// Recomputes [`Core::slow`] after a change to anything it summarises.
///
/// # Safety
/// Exclusive access to `core`.
#[inline]
pub(crate) unsafe fn refresh_slow(core: *mut Core) {
    // SAFETY: plain reads and one write of the runtime's own fields.
    unsafe {
        #[allow(unused_mut)]
        let mut slow = (*core).pollers;
        #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
        {
            slow |= (*core).fp_fibers;
        }
        #[cfg(feature = "trace")]
        {
            slow |= (*core).tracer.is_some() as usize;
        }
        #[cfg(feature = "explore")]
        {
            slow |= (*core).policy.is_some() as usize;
        }
        (*core).slow = slow;
    }
}

/// The yield the fiber handle calls: the general path ([`yield_now`]) when
/// [`Core::slow`] says something needs it, otherwise only the ring step, the
/// canary check and the switch (one compare for every optional feature).
///
/// `c` is re-read from `core.current` rather than taken from the handle's
/// slot pointer: that variant shortens the load chain on paper but measured
/// slower at 64 and 1 024 fibers (4.1 vs 2.4 ns, 7.5 vs 5.0 ns per yield,
/// interleaved A/B, bench/README.md).
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_fast(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        // `unwinding` is a constant `false` without std; with std, one load
        // and a not-taken branch (std's global panic count is zero).
        if (*core).slow != 0 || unwinding() {
            return yield_general(core);
        }
        let Some((c, n)) = step_ring(core) else { return };
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        // Warm the stack line the *next* yield will pop from: with thousands
        // of fibers it is a cache miss on the critical path (rsp is loaded,
        // then popped from). Interleaved A/B (bench/README.md): N = 10 000
        // 19.3 -> 8.2 ns, N = 1 024 4.15 -> 3.72 ns, N = 2 2.63 -> 2.06 ns,
        // N = 64 2.03 -> 2.46 ns (all in L1 there, so the extra loads cost).
        // `n.next` is always a live ring slot; its `sp` may be stale (at N = 2
        // it is `c.sp`, rewritten by this very switch), which a prefetch
        // tolerates: it never faults.
        arch::prefetch((*(*n).next).sp);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// The ring step shared by both yields: checks the outgoing fiber's canary
/// and makes its successor current. Returns `(outgoing, incoming)`, or `None`
/// when the running fiber is alone in the ring (nothing changes).
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
unsafe fn step_ring(core: *mut Core) -> Option<(*mut Slot, *mut Slot)> {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        let c = (*core).current;
        let n = (*c).next;
        if n == c {
            return None; // alone in the ring: keep running
        }
        check_canary(core, c);
        (*core).prev = c;
        (*core).current = n;
        Some((c, n))
    }
}

/// [`yield_now`] out of line, for the fast path's rare case.
///
/// # Safety
/// As for [`yield_now`].
#[inline(never)]
unsafe fn yield_general(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe { yield_now(core) }
}

/// Gives the CPU to the next ready fiber, if any; returns when this fiber is
/// scheduled again.
///
/// # Safety
/// Must be called by the running fiber of `core`, on its own stack.
#[inline(always)]
pub(crate) unsafe fn yield_now(core: *mut Core) {
    // SAFETY: the caller is `current`, so the ring is non-empty and valid.
    unsafe {
        if unwinding() {
            return; // never switch while unwinding (see `unwinding`)
        }
        crate::time::poll(core);
        let Some((c, n)) = step_ring(core) else { return };
        #[cfg(feature = "explore")]
        let n = {
            let _ = n; // the policy may pick another fiber
            crate::policy::choose(core);
            let n = (*core).current;
            if n == c {
                return; // the policy keeps this fiber running
            }
            n
        };
        trace_event!(core, switch_out(id_of(core, c)));
        trace_event!(core, switch_in(id_of(core, n)));
        // Runs are counted at switch-out, on the outgoing slot whose line is
        // hot anyway: a counter on the incoming slot was a read-modify-write
        // the next yield's loads waited on (measured ~1 ns per yield).
        (*c).runs = (*c).runs.wrapping_add(1);
        fp_handover(core, c, n);
        arch::switch(&raw mut (*c).sp, (*n).sp);
    }
}

/// Hands FP control state over from `from` to `to` (null: the host) when a
/// fiber with its own state is involved. Two instructions otherwise.
///
/// # Safety
/// Exclusive access; `from`/`to` are live slots of `core` or null.
#[inline(always)]
pub(crate) unsafe fn fp_handover(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).fp_fibers != 0 {
            fp_handover_slow(core, from, to);
        }
    }
    let _ = (core, from, to);
}

/// [`fp_handover`] while some live fiber has its own FP control state.
///
/// # Safety
/// As for [`fp_handover`].
#[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
#[cold]
#[inline(never)]
unsafe fn fp_handover_slow(core: *mut Core, from: *mut Slot, to: *mut Slot) {
    use crate::arch::FpControl;
    // SAFETY: non-null slots are live and their headers valid.
    unsafe {
        let from_own = !from.is_null() && (*from).fp;
        let to_own = !to.is_null() && (*to).fp;
        if !from_own && !to_own {
            return;
        }
        let now = FpControl::current();
        if from_own {
            (*(*from).header).fp.write(now);
        } else {
            (*core).ambient_fp = now;
        }
        // A fiber with its own state has its header's `fp` written (by
        // `set_fp_control`, then at every switch-out).
        let want = if to_own { (*(*to).header).fp.assume_init() } else { (*core).ambient_fp };
        if want != now {
            // SAFETY: restoring a state some context had loaded itself (under
            // its own `FpControl::load` contract) or the shared state.
            want.load();
        }
    }
}

/// A point where an exploring scheduling policy may switch fibers (after a
/// wake, around primitive operations). Compiles to nothing without `explore`.
///
/// # Safety
/// Must be called by the running fiber of `core`.
#[inline(always)]
pub(crate) unsafe fn choice_point(core: *mut Core) {
    #[cfg(feature = "explore")]
    // SAFETY: forwarded contract.
    unsafe {
        if (*core).policy.is_some() {
            yield_now(core);
        }
    }
    let _ = core;
}

/// Takes the running fiber off the ready ring, links it into `queue` (if
/// any), arms `deadline` (if any) and switches to the next ready fiber (or the
/// host). Returns how it was woken.
///
/// The deadline is armed *here*, after the fiber is marked Blocked and after
/// the clock was polled: the timer heap only ever holds Blocked fibers
/// (invariant I3), so no clock reading, however far it jumped, can make
/// `time::advance` act on the running fiber. A deadline that the freshly
/// polled clock has already reached returns `TimedOut` without blocking.
///
/// The ring and the wait queue share `Slot::next`, so the fiber is unlinked from
/// the ring before it is linked into the queue.
///
/// # Safety
/// Must be called by the running fiber of `core` on its own stack. `queue`, if
/// non-null, must stay valid until the fiber is woken and `kind` must name a
/// queue kind; if null, `kind` is `WaitKind::Sleep`. `obj` is the queue's
/// address, or the deadline for a plain sleep.
pub(crate) unsafe fn block_current(
    core: *mut Core,
    queue: *const WaitQueue,
    kind: WaitKind,
    obj: usize,
    deadline: Option<Ticks>,
) -> Wake {
    // SAFETY: the caller is `current`; ring pointers are valid (I1).
    unsafe {
        if unwinding() {
            return Wake::Unwinding; // never switch while unwinding
        }
        crate::time::poll(core);
        // `Ticks::MAX` is "never" (a clock never reaches it; virtual time must
        // not jump to it).
        let deadline = deadline.filter(|&d| d != Ticks::MAX);
        if let Some(d) = deadline
            && d <= (*core).now
        {
            return Wake::TimedOut;
        }
        let c = (*core).current;
        check_canary(core, c);
        (*c).state = State::Blocked;
        (*c).wait_kind = kind;
        (*c).wait_obj = obj;
        (*c).wake = Wake::Signaled;
        if let Some(d) = deadline {
            // `c` is Blocked from here on: the heap holds only Blocked slots.
            crate::time::arm(core, c, d);
        }
        trace_event!(core, block_in(id_of(core, c), wait_reason(core, c), wait_object_name(c)));
        trace_event!(core, switch_out(id_of(core, c)));
        (*c).runs = (*c).runs.wrapping_add(1);
        let n = unlink_current(core);
        if !queue.is_null() {
            (*queue).push_back(c);
        }
        fp_handover(core, c, n);
        let to = if n.is_null() { (*core).host_sp } else { (*n).sp };
        arch::switch(&raw mut (*c).sp, to);
        (*c).wake
    }
}

/// Unlinks `current` from the ring and returns the fiber to resume next, or
/// null when the ring became empty (resume the host).
///
/// # Safety
/// The ring must be non-empty.
#[inline(always)]
unsafe fn unlink_current(core: *mut Core) -> *mut Slot {
    // SAFETY: current is non-null; ring pointers are valid.
    unsafe {
        let c = (*core).current;
        let n = (*c).next;
        if n == c {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            ptr::null_mut()
        } else {
            (*(*core).prev).next = n;
            (*core).current = n;
            // The policy may pick another fiber (feature `explore`); the
            // fiber to resume is whatever `current` is afterwards.
            #[cfg(feature = "explore")]
            crate::policy::choose(core);
            let next = (*core).current;
            trace_event!(core, switch_in(id_of(core, next)));
            next
        }
    }
}

/// Takes a ready fiber that is not running out of the ready ring (O(ring)).
///
/// # Safety
/// Exclusive access to `core` from the host context outside `run` (no fiber
/// runs); `s` is a Ready slot of `core`, so it is in the ring (I2).
#[cfg(feature = "std")]
pub(crate) unsafe fn unlink_ready(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract the ring is a valid cycle containing `s`.
    unsafe {
        if (*s).next == s {
            (*core).current = ptr::null_mut();
            (*core).prev = ptr::null_mut();
            return;
        }
        let mut p = s;
        while (*p).next != s {
            p = (*p).next;
        }
        (*p).next = (*s).next;
        if (*core).current == s {
            (*core).current = (*s).next;
        }
        if (*core).prev == s {
            (*core).prev = p;
        }
    }
}

/// Makes a blocked fiber ready again, recording how it was woken. The caller
/// has already unlinked it from the queue it waited in.
///
/// # Safety
/// `s` must be a blocked slot of `core`, in no queue.
#[inline]
pub(crate) unsafe fn wake(core: *mut Core, s: *mut Slot, how: Wake) {
    // SAFETY: forwarded contract.
    unsafe {
        debug_assert!((*s).state == State::Blocked);
        (*s).wake = how;
        (*s).wait_kind = WaitKind::None;
        (*s).wait_obj = 0;
        crate::time::cancel_deadline(core, s);
        trace_event!(core, wake(id_of(core, s)));
        make_ready(core, s);
    }
}

/// Wakes the first fiber of `q`, if any. Returns whether one was woken.
///
/// # Safety
/// `q` must hold only blocked slots of `core`.
pub(crate) unsafe fn wake_one(core: *mut Core, q: &WaitQueue) -> bool {
    match q.pop_front() {
        // SAFETY: queue members are blocked slots of core.
        Some(s) => unsafe {
            wake(core, s, Wake::Signaled);
            true
        },
        None => false,
    }
}

/// Wakes every fiber of `q` in FIFO order.
///
/// # Safety
/// `q` must hold only blocked slots of `core`.
pub(crate) unsafe fn wake_all(core: *mut Core, q: &WaitQueue) {
    // SAFETY: forwarded contract.
    while unsafe { wake_one(core, q) } {}
}

/// Finishes the running fiber: wakes its joiners, parks it as finished (or,
/// if detached, frees its slot at once) and switches away for good.
///
/// A detached fiber's stack is released by the final switch itself, right
/// after it has left that stack ([`arch::switch_final`]), when releasing it is
/// a single store (a [`StaticStack`](crate::StaticStack) claim, a borrowed
/// buffer). A mapped host stack must be unmapped by a call: that fiber becomes a
/// zombie, released by the next context that reclaims zombies.
///
/// # Safety
/// Must be called by the running fiber on its own stack, after its closure's
/// frame is gone and its outcome is stored (or dropped, if detached).
// Not inlined into the generic `fiber_entry`: it would share registers and
// address computations with the closure's own code (a yield loop in the same
// function measured one instruction slower per yield).
//
// `extern "C"` so the entry glue can *jump* here ([`leave`]) instead of
// calling: a call that never returns leaves a stale entry on the CPU's
// return-stack predictor, and the host's next `ret` (out of `run`) then
// mispredicts.
#[inline(never)]
pub(crate) unsafe extern "C" fn exit_current(core: *mut Core) -> ! {
    // SAFETY: the caller is `current`; its header is live.
    unsafe {
        let c = (*core).current;
        (*c).runs = (*c).runs.wrapping_add(1);
        // The one full canary check of this fiber's lifetime (it is also the
        // switch-out check): nothing runs on this stack after it.
        if !stack::canary_intact((*c).lo) {
            canary_broken_here(core, c);
        }
        let h = (*c).header;
        (*core).unfinished -= 1;
        trace_event!(core, exit(id_of(core, c)));
        trace_event!(core, switch_out(id_of(core, c)));
        // The fast path makes no call that returns, so it saves no registers.
        if !(*h).joiners.is_empty() || fp_own_any(core) {
            exit_slow(core, c, h);
        }
        exit_switch(core, c, h, false)
    }
}

/// Ends the running fiber: jumps (no call) into [`exit_current`].
///
/// # Safety
/// As for [`exit_current`]; nothing on the running frame is used again.
#[inline(always)]
pub(crate) unsafe fn leave(core: *mut Core) -> ! {
    // SAFETY: forwarded contract; `exit_current` never returns, so the
    // frames it is jumped from are abandoned.
    unsafe { arch::jump_noreturn(exit_current, core) }
}

/// Whether any live fiber has its own FP control state (default FP mode).
#[inline(always)]
fn fp_own_any(core: *mut Core) -> bool {
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    // SAFETY: plain read of the core's counter by its running fiber.
    unsafe {
        (*core).fp_fibers != 0
    }
    #[cfg(any(feature = "no-fp-control", feature = "fp-control-always"))]
    {
        let _ = core;
        false
    }
}

/// [`exit_current`] with joiners to wake or FP control state to hand over.
///
/// # Safety
/// As for `exit_current`; `c` is current and `h` its header.
#[cold]
#[inline(never)]
unsafe fn exit_slow(core: *mut Core, c: *mut Slot, h: *mut crate::fiber::Header) -> ! {
    // SAFETY: forwarded; the joiner queue holds blocked slots of core.
    unsafe {
        wake_all(core, &(*h).joiners);
        exit_switch(core, c, h, true)
    }
}

/// The end of [`exit_current`]: unlinks the finished fiber, frees it if it is
/// detached, and switches away for good.
///
/// A detached fiber's stack is released by the final switch itself, right
/// after it has left that stack ([`arch::switch_final`]), when releasing it is
/// a single store (a [`StaticStack`](crate::StaticStack) claim, a borrowed
/// buffer). A mapped host stack must be unmapped by a call: that fiber becomes a
/// zombie, released by the next context that reclaims zombies.
///
/// # Safety
/// As for `exit_current`; joiners already woken; `c` is current, `h` its header.
#[inline(always)]
unsafe fn exit_switch(core: *mut Core, c: *mut Slot, h: *mut crate::fiber::Header, fp: bool) -> ! {
    // SAFETY: everything read from the header (on the dying stack) is read
    // before the final switch, which is the last thing that runs on it.
    unsafe {
        let n = unlink_current(core);
        if fp {
            fp_handover(core, c, n);
            #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
            if (*c).fp {
                (*c).fp = false;
                (*core).fp_fibers -= 1;
                refresh_slow(core);
            }
        }
        // The trace hooks and the scheduling policy ran on this stack after
        // the exit's canary check: check again (it is the last chance).
        #[cfg(any(feature = "trace", feature = "explore"))]
        if !stack::canary_intact((*c).lo) {
            canary_broken_here(core, c);
        }
        let to = if n.is_null() { (*core).host_sp } else { (*n).sp };
        let scratch = &raw const (*core).scratch;
        if (*h).detached {
            // Detached fibers have no joiners: join and detach both consume
            // the one handle.
            debug_assert!((*h).joiners.is_empty());
            if let Some(release) = (*h).stack.release_byte(scratch) {
                // The token is released by the store in the final switch; it
                // is never dropped (it is a ManuallyDrop on the dying stack).
                retire_slot(core, c);
                arch::switch_final(to, release)
            }
            (*c).next = (*core).zombies;
            (*core).zombies = c;
        }
        (*c).state = State::Finished;
        arch::switch_final(to, scratch)
    }
}

/// Returns a slot to the free list, releasing its stack.
///
/// # Safety
/// `s` must be finished (its outcome gone) or never started (its closure gone),
/// and not the running fiber.
// Inlined into take and join (a call, its frame and the saved registers
// were 4 of a spawn + run + take cycle's instructions).
#[inline]
pub(crate) unsafe fn free_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract no frame lives on the stack and nobody runs on it.
    unsafe {
        // A finished fiber had its full canary check at exit, and nothing ran
        // on its stack since. A fiber that never ran gets it here.
        if (*s).state != State::Finished && !stack::canary_intact((*s).lo) {
            canary_broken(core, s);
        }
        crate::fiber::release_stack((*s).header);
        retire_slot(core, s);
    }
}

/// The slot half of [`free_slot`]: resets `s` and pushes it on the free list.
/// Its stack token must already be released (or about to be, by the caller).
///
/// # Safety
/// `s` is a non-free slot of `core` in no ring or queue.
#[inline(always)]
pub(crate) unsafe fn retire_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract.
    unsafe {
        // `header`, `lo` and `sp` keep stale values: nothing reads them in a
        // free slot (every reader checks `state` first).
        (*s).state = State::Free;
        (*core).retired_runs += (*s).runs;
        (*s).started = false;
        (*s).cancelled = false;
        if (*s).local {
            (*s).local = false;
            (*core).local_fibers -= 1;
            #[cfg(feature = "std")]
            if (*core).local_fibers == 0 {
                (*core).local_thread = None;
            }
        }
        // Already so: only a Blocked slot has a wait kind and object (`wake`
        // clears them; a parked fiber is never freed), and `exit_switch`
        // dropped the fiber's own FP state (a fiber that never ran has none).
        // Not rewritten: three stores fewer on every free (the exit listing of
        // a detached fiber lost exactly those; the invariant checker asserts
        // both facts for every non-Blocked and every Free slot).
        debug_assert!((*s).wait_kind == WaitKind::None && (*s).wait_obj == 0 && !(*s).fp);
        (*s).generation = (*s).generation.wrapping_add(1);
        (*s).next = (*core).free;
        (*core).free = s;
        (*core).frees += 1;
    }
}

/// Releases every zombie (finished detached fiber).
///
/// # Safety
/// Must not be called from a zombie's stack (zombies never run again, so any
/// running context qualifies).
pub(crate) unsafe fn reclaim_zombies(core: *mut Core) {
    // SAFETY: zombies are finished, detached, their outcome already dropped.
    unsafe {
        while !(*core).zombies.is_null() {
            let z = (*core).zombies;
            (*core).zombies = (*z).next;
            free_slot(core, z);
        }
    }
}

/// The name of the primitive a blocked fiber waits in ("" if unnamed, or not
/// waiting in a primitive's queue).
///
/// # Safety
/// `s` must be a blocked slot of `core`.
pub(crate) unsafe fn wait_object_name(s: *const Slot) -> &'static str {
    // SAFETY: a blocked fiber with a queue kind waits in the live queue at
    // `wait_obj` (I2, I5).
    unsafe {
        match (*s).wait_kind {
            WaitKind::Join => "",
            k if k.has_queue() => (*((*s).wait_obj as *const WaitQueue)).name,
            _ => "",
        }
    }
}

/// Describes what a blocked fiber waits on, for reports.
///
/// # Safety
/// `s` must be a blocked slot of `core`.
pub(crate) unsafe fn wait_reason(core: *const Core, s: *const Slot) -> WaitReason {
    // SAFETY: forwarded contract.
    let (kind, obj) = unsafe { ((*s).wait_kind, (*s).wait_obj) };
    match kind {
        WaitKind::Join => {
            // obj is the address of the target header's joiner queue.
            // SAFETY: slots array is valid for cap entries.
            let target = unsafe {
                (0..(*core).cap)
                    .map(|i| (*core).slots.add(i))
                    .find(|&t| (*t).state != State::Free && ptr::addr_of!((*(*t).header).joiners) as usize == obj)
            };
            match target {
                // SAFETY: t is a slot of core.
                Some(t) => WaitReason::Join(unsafe { id_of(core, t) }),
                None => WaitReason::Join(FiberId { index: u32::MAX, generation: 0 }),
            }
        }
        WaitKind::Mutex => WaitReason::Mutex(obj),
        WaitKind::Semaphore => WaitReason::Semaphore(obj),
        WaitKind::Send => WaitReason::Send(obj),
        WaitKind::Recv => WaitReason::Recv(obj),
        WaitKind::Event => WaitReason::Event(obj),
        WaitKind::Barrier => WaitReason::Barrier(obj),
        WaitKind::Irq => WaitReason::Irq(obj),
        WaitKind::Sleep => WaitReason::Sleep(obj as u64),
        // Only Blocked slots are described; a Blocked slot always has a kind.
        WaitKind::None | WaitKind::Parked => WaitReason::Sleep(u64::MAX),
    }
}
