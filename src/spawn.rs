//! Spawning: the stack layout and reserve checks, the fiber's first frame
//! (`fiber_entry`) and the unwind boundary around the user's closure.

use core::mem::{self, ManuallyDrop};

use crate::arch;
use crate::error::{JoinError, SpawnError, SpawnErrorKind};
use crate::fiber::{self, FiberId, Header, State};
use crate::handle::Fiber;
use crate::priority::SpawnOptions;
use crate::raw::{self, Core};
use crate::stack::{self, Stack};
use crate::trace::trace_event;
use crate::wait::WaitQueue;

/// What a spawn produced: the fiber's id, its header, and the runtime's
/// (serial, live-table entry) for its `JoinHandle`.
pub(crate) type Spawned = (FiberId, *mut Header, (u64, u32));

/// The bytes at the top of a fresh fiber's stack: the closure, later its outcome.
union Payload<F, T> {
    _closure: ManuallyDrop<F>,
    _outcome: ManuallyDrop<Result<T, JoinError<()>>>,
}

// The entry glue's stack reserve.
//
// The glue — `__filament_fiber_start`, `fiber_entry`, `call_closure` with
// `catch_unwind` under `std`, the `FnOnce` shims, and the exit path
// (`raw::leave` and what it calls, still on the fiber's stack) — writes below
// the initial frame before and after the closure body runs. `spawn` refuses a
// stack without room for it: the canary cannot protect the glue, because a
// frame reserved with `sub rsp` (every frame holding a large copy) can skip the
// canary words entirely and write below the stack unseen.
//
// What it writes was measured by `tests/stack_reserve.rs`
// (`glue_stack_use_fits_the_reserve`, paint + high-water mark, features
// std + trace + explore, x86_64, rustc 1.95.0), in bytes below the initial
// frame. F = the closure, R = `Result<T, JoinError<()>>`; "capture" closures
// hold an F of the given size and alignment and return `()`, "result" closures
// return a T of it (capturing a `Box`), "both" capture and return it:
//
//   size × align     capture  debug/release   result  debug/release   both  debug/release
//   empty (0 × 1)            1512 /    32               1512 /    32         1512 /    32
//          64 × 1            1512 /    80               1512 /   208         1512 /    96
//        1000 × 1            1840 /  1040               5200 /  1152         5792 /  1072
//        4096 × 1            4944 /  4144              17592 /  4264        21264 /  4160
//       16384 × 1           17232 / 16432              66744 / 16552        82704 / 16448
//       1024 × 16            1872 /  1072               5312 /  2208         5936 /  1088
//       1024 × 64            1984 /  1248               5712 /  2384         6336 /  1136
//       256 × 256            1536 /   992               3984 /  1360         3840 /   560
//      4096 × 256            5376 /  4832              19368 /  9064        23040 /  4400
//     4096 × 4096           16384 / 16352              53672 / 20584        57344 /  8240
//     8192 × 4096           20480 / 20448              70056 / 28776        77824 / 12336
//     8192 × 8192           32768 / 32736             106920 / 41064       114688 / 16432
//    16384 × 8192           40960 / 40928             139688 / 57448       155648 / 24624
//
// Read as copies: with slot(X) = size_of X rounded up to 16, plus align_of X
// when that exceeds 16 (a frame holding an over-aligned copy realigns `rsp`
// downwards, wasting up to that much), the glue holds at most 2 slots of F in
// both profiles (exactly 2 for the 4096- and 8192-aligned captures); at most
// 2 slots of R in release and ~4.3 in debug (the outcome is written in place
// by `call_closure`; when it was returned through the frames instead, debug
// builds held 11 slots of R, and 15 once the detached case was moved inside
// the unwind boundary); and a fixed part of 1512 bytes in debug, at most 256
// in release.
//
// The reserve below adds one slot of F and of R to the measured counts, and
// ~70 % to the unoptimised fixed part, and it is the *unoptimised* reserve in
// every build: `fiber_entry::<F, T>` and `call_closure` are generic, so they
// are compiled in the user's crate with the user's optimisation level (and a
// per-package profile override can differ from filament's), while any `cfg!`
// here sees only how filament itself was compiled. A build whose glue is
// optimised pays ~2.3 KiB and 3 slots of R of unused reserve per fiber; a
// guess in the other direction wrote below the stack (an `opt-level = 0`,
// `debug-assertions = false` build: 12 KiB below a 70 KiB stack, found by an
// adversarial review). The measurement test runs under the dev, release and
// `unopt-nodebug` profiles and fails if the glue ever outgrows the reserve.

/// Fixed bytes the entry glue writes below the initial frame (measured: 1512
/// unoptimised, at most 256 optimised).
const ENTRY_HEADROOM: usize = 2560;
/// Slots of the closure the glue frames hold at most (measured: 2).
const CLOSURE_COPIES: usize = 3;
/// Slots of the outcome the glue frames hold at most (measured: ~4.3
/// unoptimised, 2 optimised).
const OUTCOME_COPIES: usize = 6;

/// Stack one copy of a value of this size and alignment takes in a glue frame,
/// including the padding a frame realigning `rsp` for it may waste.
///
/// An over-aligned frame wastes up to `align` realigning `rsp` and rounds its
/// own size up to `align`: for a value at least as large as its alignment
/// (every sized type but a zero-sized one) the rounding is inside `size`; a
/// zero-sized over-aligned value (a marker type) costs up to twice its
/// alignment for zero bytes, and is charged so (an adversarial review: a
/// 4096-aligned marker capture wrote 760 bytes below an accepted stack in a
/// debug build when it was charged one alignment).
const fn glue_slot(size: usize, align: usize) -> usize {
    let size = size.next_multiple_of(arch::STACK_ALIGN);
    if align > arch::STACK_ALIGN {
        let rounded = if size > align { size } else { align };
        rounded.saturating_add(align)
    } else {
        size
    }
}

/// Stack the entry glue needs below the initial frame for a closure `F`
/// returning `T` (see the measurements above).
const fn entry_headroom<F, T>() -> usize {
    let f = glue_slot(mem::size_of::<F>(), mem::align_of::<F>()).saturating_mul(CLOSURE_COPIES);
    let r = glue_slot(mem::size_of::<Result<T, JoinError<()>>>(), mem::align_of::<Result<T, JoinError<()>>>())
        .saturating_mul(OUTCOME_COPIES);
    ENTRY_HEADROOM.saturating_add(f).saturating_add(r)
}

/// Stack a signal may take below a running fiber's deepest frame: on a host
/// (`std`), the kernel's signal frame, the red zone and a small handler
/// allowance (`host::signal_reserve`, copied into the core when the runtime
/// is bound: one plain load per spawn, where the process-wide cache cost a
/// load and its is-it-computed-yet test); without `std` (bare metal) nothing,
/// there are no signals.
///
/// # Safety
/// `core` is a bound core the caller may read.
#[inline(always)]
unsafe fn signal_reserve(core: *const Core) -> usize {
    #[cfg(feature = "std")]
    {
        // SAFETY: per the contract; `bind` set it before any spawn.
        let r = unsafe { (*core).signal_reserve };
        debug_assert_eq!(r, crate::host::signal_reserve());
        r
    }
    #[cfg(not(feature = "std"))]
    {
        let _ = core;
        0
    }
}

/// The smallest stack a fiber fits: `above` bytes of header and payload at the
/// top, the initial frame, the glue's `headroom`, the signal reserve and the
/// canary, rounded up to the stack alignment (so a stack of exactly this size
/// is accepted).
#[inline(always)]
fn stack_needed(above: usize, headroom: usize, reserve: usize) -> usize {
    stack_needed_fixed(above, headroom).saturating_add(reserve)
}

/// [`stack_needed`] without the signal reserve (a multiple of the stack
/// alignment, so adding it keeps the sum aligned): for a closure aligned to at
/// most 16 bytes a compile-time constant.
#[inline(always)]
fn stack_needed_fixed(above: usize, headroom: usize) -> usize {
    above
        .saturating_add(arch::INIT_FRAME_BYTES + stack::CANARY_BYTES)
        .saturating_add(headroom)
        .saturating_add(arch::STACK_ALIGN - 1)
        & !(arch::STACK_ALIGN - 1)
}

/// Whether a stack of `size` bytes is smaller than [`stack_needed`]`(above,
/// headroom, reserve)`, tested as `size - reserve < fixed` so that the
/// constant part is folded and the run-time part is one subtraction and two
/// branches (the sum was an add, a saturation and a mask per spawn). Equal to
/// `size < fixed + reserve` (a saturated `fixed` exceeds any stack size).
#[inline(always)]
fn stack_too_small(size: usize, above: usize, headroom: usize, reserve: usize) -> bool {
    size.checked_sub(reserve).is_none_or(|rest| rest < stack_needed_fixed(above, headroom))
}

/// Frees slots for a spawn that found none: adopts dropped handles' fibers
/// (not while unwinding: a second panic would abort) and releases zombies.
/// A panic from a dropped result's `Drop` is returned, to be resumed by the
/// caller once it has dropped what it holds.
///
/// # Safety
/// As for [`spawn_raw`].
#[cfg(feature = "std")]
#[cold]
#[inline(never)]
unsafe fn make_room(core: *mut Core) -> Result<(), std::boxed::Box<dyn core::any::Any + Send>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: forwarded contract.
        unsafe {
            if !raw::unwinding() {
                crate::orphans::adopt(core);
            }
            raw::reclaim_zombies(core);
        }
    }))
}

/// Frees slots for a spawn that found none (without `std` nothing unwinds).
///
/// # Safety
/// As for [`spawn_raw`].
#[cfg(not(feature = "std"))]
#[cold]
#[inline(never)]
unsafe fn make_room(core: *mut Core) {
    // SAFETY: forwarded contract.
    unsafe {
        if !raw::unwinding() {
            crate::orphans::adopt(core);
        }
        raw::reclaim_zombies(core);
    }
}

/// Places the closure on the stack, builds the initial frame and queues the fiber.
///
/// # Safety
/// The caller holds the runtime's lock or runs inside `run`; `core` is bound.
pub(crate) unsafe fn spawn_raw<'s, F, T>(
    core: *mut Core,
    stack: Stack<'s>,
    opts: SpawnOptions,
    detached: bool,
    local: bool,
    f: F,
) -> Result<Spawned, SpawnError<'s, F>>
where
    F: FnOnce(&Fiber<'s>) -> T + 's,
    T: 's,
{
    // SAFETY: exclusive access to core per the contract.
    unsafe {
        if (*core).poisoned {
            return Err(SpawnError::new(SpawnErrorKind::Poisoned, stack, f));
        }
        #[cfg(feature = "std")]
        if local {
            let me = std::thread::current().id();
            if (*core).local_thread.is_some_and(|t| t != me) {
                return Err(SpawnError::new(SpawnErrorKind::WrongThread, stack, f));
            }
        }
        if (*core).free.is_null() {
            // Dropped handles' fibers free their slots (their results are
            // dropped there: a panic in such a Drop reaches this caller, and
            // the closure and stack of this spawn are dropped with the
            // unwind). The panic is caught out of line and resumed here,
            // after dropping them, rather than unwinding through this frame:
            // a landing pad dropping the token needs it in memory, which kept
            // every spawn storing the token to the stack first (7
            // instructions of an in-fiber spawn).
            #[cfg(feature = "std")]
            if let Err(panic) = make_room(core) {
                drop(f);
                drop(stack);
                std::panic::resume_unwind(panic);
            }
            #[cfg(not(feature = "std"))]
            make_room(core);
        }
        let s = (*core).free;
        if s.is_null() {
            let finished_untaken = (0..(*core).cap)
                .map(|i| (*core).slots.add(i))
                .filter(|&s| (*s).state == State::Finished && !(*(*s).header).detached)
                .count();
            return Err(SpawnError::new(SpawnErrorKind::Full { capacity: (*core).cap, finished_untaken }, stack, f));
        }

        // Layout from the top: header, payload (its own alignment), frame.
        // The token guarantees a 16-aligned `top`, so with a payload aligned to
        // at most 16 every offset below is a compile-time constant.
        let size = stack.size();
        let reserve = signal_reserve(core);
        let base = stack.lo();
        let top = stack.top();
        const { assert!(mem::align_of::<Header>() <= arch::STACK_ALIGN) };
        let (header, payload, frame_top) = if const { mem::align_of::<Payload<F, T>>() <= arch::STACK_ALIGN } {
            // Constants (sizes of types), folded at compile time.
            let header_off = mem::size_of::<Header>().next_multiple_of(arch::STACK_ALIGN);
            let frame_off = header_off + mem::size_of::<Payload<F, T>>().next_multiple_of(arch::STACK_ALIGN);
            if stack_too_small(size, frame_off, entry_headroom::<F, T>(), reserve) {
                let needed = stack_needed(frame_off, entry_headroom::<F, T>(), reserve);
                return Err(SpawnError::new(SpawnErrorKind::StackTooSmall { needed, size }, stack, f));
            }
            (top.sub(header_off).cast::<Header>(), top.sub(frame_off), top.sub(frame_off))
        } else {
            let lo = base as usize;
            let top = top as usize;
            let header_at = (top - mem::size_of::<Header>()) & !(arch::STACK_ALIGN - 1);
            let payload_at =
                header_at.saturating_sub(mem::size_of::<Payload<F, T>>()) & !(mem::align_of::<Payload<F, T>>() - 1);
            let frame_top = payload_at & !(arch::STACK_ALIGN - 1);
            let needed = stack_needed(top - frame_top, entry_headroom::<F, T>(), reserve);
            if payload_at <= lo || size < needed {
                return Err(SpawnError::new(SpawnErrorKind::StackTooSmall { needed, size }, stack, f));
            }
            (base.add(header_at - lo).cast::<Header>(), base.add(payload_at - lo), base.add(frame_top - lo))
        };

        let painted = stack.is_painted();
        stack.note_fiber(raw::id_of(core, s), opts.name);
        // Erase 's: the token is dropped only once no frame remains on it and
        // never after the runtime ('s-bounded) is gone.
        let stack: Stack<'static> = mem::transmute::<Stack<'s>, Stack<'static>>(stack);
        payload.cast::<F>().write(f);
        header.write(Header {
            stack: ManuallyDrop::new(stack.moved()),
            joiners: WaitQueue::new(),
            payload,
            drop_payload: fiber::drop_payload::<F, Result<T, JoinError<()>>>,
            name: opts.name,
            detached,
            has_outcome: false,
            cancelled: false,
            base_priority: opts.priority.get(),
            irq_uncounted: false,
            suspend: false,
            cancel: false,
            cancel_unwind: false,
            held: core::ptr::null(),
            note: crate::notify::Note::EMPTY,
            isr_notifiers: 0,
            wait_value: core::ptr::null(),
            fp: mem::MaybeUninit::uninit(),
        });
        // AddressSanitizer builds: a fiber that finished left the redzones of
        // its last frames on this memory (it leaves by a jump, never by
        // returning through them); a new fiber starts on a clean stack.
        #[cfg(filament_asan)]
        asan_unpoison(base, size);
        stack::prepare(base, frame_top.sub(arch::INIT_FRAME_BYTES), painted);
        let sp = arch::init_stack(frame_top, fiber_entry::<F, T>, payload, core.cast());

        // `started` is already false: a free slot was never run or was retired.
        (*core).free = (*s).next;
        if local {
            (*s).local = true;
            (*core).local_fibers += 1;
            #[cfg(feature = "std")]
            {
                (*core).local_thread = Some(std::thread::current().id());
            }
        }
        (*core).unfinished += 1;
        (*core).spawns += 1;
        trace_event!(core, spawn(raw::id_of(core, s), opts.name));
        // The slot's stores last, next to `make_ready`, which reads the
        // priority back: with no store to the core in between, the value is
        // forwarded (it was reloaded after the counters' stores).
        (*s).sp = sp;
        (*s).lo = base;
        (*s).header = header;
        (*s).runs = 0;
        (*s).priority = opts.priority.get();
        raw::make_ready(core, s);
        Ok((raw::id_of(core, s), header, ((*core).serial, (*core).live_slot)))
    }
}

/// The first (and only) Rust frame of every fiber.
///
/// # Safety
/// Called only by the arch trampoline on a stack prepared by `spawn_raw`, with
/// `payload` holding an `F` and `core` the runtime's core whose `current` is us.
unsafe extern "C" fn fiber_entry<'s, F, T>(payload: *mut u8, core: *mut u8) -> !
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    let core = core.cast::<Core>();
    // SAFETY: per the contract; the closure is moved off the payload bytes
    // before they are reused for the outcome.
    unsafe {
        let slot = (*core).current;
        (*slot).started = true;
        let fib = Fiber::new(core, slot);
        call_closure::<F, T>(payload, &fib, (*slot).header);
        raw::leave(core)
    }
}

/// Moves the closure out of the payload as late as possible (inside the
/// unwind boundary), so a large closure is copied into as few frames as
/// possible, calls it, and writes its outcome into the payload bytes (the
/// closure has left them by then), or — for a detached fiber — drops it
/// there. Everything user code drops (the result, captured values, a panic
/// payload) is dropped inside the boundary: a panicking `Drop` never
/// unwinds into the `extern "C"` entry. The outcome is written in place, not
/// returned, so an unoptimised build copies a large result as few times as
/// possible (the stack reserve in `entry_headroom` counts those copies).
///
/// # Safety
/// `payload` holds a valid `F` that nobody else reads, with room for the
/// outcome; `header` is the running fiber's header.
#[cfg(feature = "std")]
unsafe fn call_closure<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>, header: *mut Header)
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    extern crate std;
    let out = payload.cast::<Result<T, JoinError<()>>>();
    let run = || {
        // Cancelled by unwinding before it ever ran (a deadlock found it
        // suspended, or `cancel_unwind`): the closure never runs, it is
        // dropped in place and the fiber finishes as an unwound one would,
        // `Cancelled`. Without an unwind: it has no frames to unwind, and the
        // unwinder's own frames would not fit the glue's reserve (they ate
        // the room kept for a signal frame; review 8).
        // SAFETY: the header lives as long as the fiber.
        if unsafe { (*header).cancel_unwind } {
            // SAFETY: the closure is valid and read by nobody else; it is
            // dropped here once and never read again (a panic in its drop is
            // caught below, with no outcome written yet).
            unsafe { core::ptr::drop_in_place(payload.cast::<F>()) };
            // SAFETY: the closure's bytes are free for the outcome now; the
            // header lives as long as the fiber.
            unsafe {
                if !(*header).detached {
                    out.write(Err(JoinError::Cancelled));
                    (*header).has_outcome = true;
                }
            }
            return;
        }
        // SAFETY: read exactly once, per the contract; from here on the
        // payload bytes are free for the outcome.
        let value = unsafe { read_and_call::<F, T>(payload, fib) };
        // SAFETY: the header lives as long as the fiber; `detached` may have
        // been set while the fiber ran (detach of a running fiber). The
        // outcome is written in place either way; a detached fiber's is
        // dropped there, by pointer: a by-value `drop(value)` was a frame of
        // its own, which an unoptimised build realigns to the result's
        // alignment (review 15: a zero-sized 16384-aligned result wrote 5 072
        // bytes below an accepted stack; the write is the measured path).
        unsafe {
            out.write(Ok(value));
            if (*header).detached {
                core::ptr::drop_in_place(out);
            } else {
                (*header).has_outcome = true;
            }
        }
    };
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        // SAFETY: the header lives as long as the fiber.
        #[cfg(filament_asan)]
        unsafe {
            asan_unpoison_below_here((*header).stack.lo())
        };
        // SAFETY: as above; a panic before `has_outcome` was set left no
        // outcome behind (the write is the last thing that can panic-free
        // happen), so the bytes are free.
        unsafe {
            if (*header).detached {
                crate::host::drop_panic_payload(panic);
            } else {
                out.write(Err(crate::host::outcome_of_panic(panic)));
                (*header).has_outcome = true;
            }
        }
    }
}

/// Moves the closure out of `payload` and calls it.
///
/// A closure aligned to a page or more is read and called in a frame of its
/// own: `call_closure`'s frame, holding such a local among its branches, was
/// miscompiled (rustc 1.95.0, release: the realigning prologue `push rbp;
/// mov rbp, rsp; and rsp, -align` was left out of the path that reads the
/// closure while its epilogue `mov rsp, rbp; pop rbp` stayed, loading `rsp`
/// from the initial frame's zero `rbp`: a segfault; found by an adversarial
/// review with a zero-sized `#[repr(align(4096))]` capture). A frame whose
/// only job is the read and the call has no branch for the prologue to be
/// sunk into.
///
/// # Safety
/// `payload` holds a valid `F` that nobody else reads; it is read once.
#[inline(always)]
unsafe fn read_and_call<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>) -> T
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    if const { mem::align_of::<F>() >= PAGE_ALIGN } {
        // SAFETY: forwarded contract.
        unsafe { read_and_call_own_frame::<F, T>(payload, fib) }
    } else {
        // SAFETY: forwarded contract.
        (unsafe { payload.cast::<F>().read() })(fib)
    }
}

/// Alignment from which a closure is called from a frame of its own
/// ([`read_and_call`]): where the frame holding it needs a stack probe.
const PAGE_ALIGN: usize = 4096;

/// [`read_and_call`] for a page-aligned closure, out of line.
///
/// # Safety
/// As for [`read_and_call`].
#[inline(never)]
unsafe fn read_and_call_own_frame<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>) -> T
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    // SAFETY: forwarded contract.
    (unsafe { payload.cast::<F>().read() })(fib)
}

/// AddressSanitizer builds (`--cfg filament_asan`, set by CI): after an
/// unwind on a fiber stack, clears the poison of the frames it unwound.
///
/// An unwind ends in a `noreturn` call, where ASan unpoisons the stack below
/// the current frame, but only on a stack it knows the bounds of; on a fiber
/// stack it declines ("ignoring requested __asan_handle_no_return"), and the
/// stale redzones of the unwound frames then fault in the next frames that
/// reuse that memory (a false positive). Everything below this frame and
/// above the stack's low end is dead.
///
/// # Safety
/// `lo` is the low end of the running fiber's stack.
#[cfg(filament_asan)]
#[inline(never)]
unsafe fn asan_unpoison_below_here(lo: *mut u8) {
    let here = 0u8;
    let top = core::hint::black_box(&raw const here) as usize;
    // SAFETY: [lo, top - 256) lies inside the running fiber's own stack, below
    // every live frame (this function's frame is the lowest one).
    unsafe { asan_unpoison(lo, top - 256 - lo as usize) };
}

/// AddressSanitizer builds: marks the whole stack of the fiber whose header
/// is `header` addressable (see `handle::cancel_unwind`).
///
/// # Safety
/// `header` is the running fiber's live header.
#[cfg(filament_asan)]
pub(crate) unsafe fn asan_unpoison_stack(header: *mut Header) {
    // SAFETY: [lo, top) is the fiber's own stack, owned by its token.
    unsafe {
        let lo = (*header).stack.lo();
        let top = (*header).stack.top();
        asan_unpoison(lo, top as usize - lo as usize);
    }
}

#[cfg(filament_asan)]
// SAFETY: ASan's runtime function, linked in every `-Zsanitizer=address`
// build (the only builds with `--cfg filament_asan`).
unsafe extern "C" {
    /// AddressSanitizer's runtime: marks `[addr, addr + size)` addressable.
    #[link_name = "__asan_unpoison_memory_region"]
    fn asan_unpoison(addr: *const u8, size: usize);
}

/// # Safety
/// `payload` holds a valid `F` that nobody else reads, with room for the
/// outcome; `header` is the running fiber's header.
#[cfg(not(feature = "std"))]
unsafe fn call_closure<'s, F, T>(payload: *mut u8, fib: &Fiber<'s>, header: *mut Header)
where
    F: FnOnce(&Fiber<'s>) -> T,
{
    // Without std a panic runs the user's panic handler. With `panic =
    // "abort"` (bare metal) that is the end. In a program that unwinds (a
    // std binary using filament without its `std` feature: host tests!) the
    // unwind must not cross the assembly frames: this guard, dropped only by
    // an unwind, stops the program with a message that says what to do. (An
    // unwind reaching the `extern "C"` entry would abort too, with a message
    // that says nothing about filament.)
    struct PanicWithoutStd(*const Fiber<'static>);
    impl Drop for PanicWithoutStd {
        fn drop(&mut self) {
            // SAFETY: the fiber handle outlives this frame.
            let (id, name) = unsafe { ((*self.0).id(), (*self.0).name()) };
            raw::fatal(format_args!(
                "fiber {id} \"{name}\" panicked; filament cannot catch a fiber's panic without its `std` \
                 feature (for host tests: [dev-dependencies] filament = {{ version = \"*\", features = [\"std\"] }})"
            ))
        }
    }
    let guard = PanicWithoutStd((fib as *const Fiber<'s>).cast());
    // SAFETY: read exactly once, per the contract; the header lives as long
    // as the fiber.
    unsafe {
        let value = read_and_call::<F, T>(payload, fib);
        core::mem::forget(guard);
        // In place, dropped there if detached (as with `std`: review 15).
        let out = payload.cast::<Result<T, JoinError<()>>>();
        out.write(Ok(value));
        if (*header).detached {
            core::ptr::drop_in_place(out);
        } else {
            (*header).has_outcome = true;
        }
    }
}
