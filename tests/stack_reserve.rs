//! Stacks that `spawn` accepts are never written outside, and host stacks
//! of any requested size are either mapped whole or refused.
//!
//! The entry glue (the frames between the trampoline and the closure body, and
//! the exit path) runs on the fiber's stack; `spawn` reserves room for it. These
//! tests measure what the glue really writes (paint + high-water mark) for
//! closures and results of many sizes and alignments, in whatever profile they
//! are built (`cargo test` and `cargo test --release`), and check that a stack
//! sized at exactly the smallest size `spawn` accepts keeps every byte around
//! it intact — with an empty closure (first tried on exactly `MIN_STACK_SIZE`),
//! with captures and results up to 16 KiB aligned up to 8192, zero-sized ones
//! aligned up to 16384, and with a
//! signal delivered on the fiber's stack while it runs.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use filament::{MIN_STACK_SIZE, Runtime, SpawnErrorKind, Stack, StackError};

/// Bytes of the canary at the low end of every stack (filament's `CANARY_BYTES`).
const CANARY_BYTES: usize = 32;
/// Sentinel-filled bytes below a borrowed stack: where an overflow would land.
const SLACK_BELOW: usize = 512 * 1024;
/// Sentinel-filled bytes above it.
const SLACK_ABOVE: usize = 4096;
/// Where the stack's top may be placed relative to 16384-byte boundaries (the
/// largest alignment measured: the layout of an over-aligned payload depends on
/// the top modulo its alignment).
const TOP_PERIOD: usize = 16384;
/// The sentinel byte.
const SENTINEL: u8 = 0xA5;
/// A stack large enough for every closure below, for the measurement runs.
const BIG: usize = 1 << 20;

/// Whether this binary runs under AddressSanitizer (its frames carry redzones,
/// so the stack use measured here does not apply): `.ci/run` builds the ASan
/// run with `--cfg filament_asan`.
fn under_asan() -> bool {
    cfg!(filament_asan)
}

/// What a signal delivered on a fiber's stack takes below its deepest frame:
/// the kernel's signal frame (`AT_MINSIGSTKSZ`) and the 128-byte red zone.
fn signal_frame() -> usize {
    // SAFETY: getauxval only reads the auxiliary vector; 0 means "not present".
    let frame = match unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) } as usize {
        0 => libc::MINSIGSTKSZ,
        n => n,
    };
    frame + 128
}

/// Captures of `S` bytes with alignment `A` (one type per alignment).
macro_rules! aligned {
    ($($name:ident = $align:literal),* $(,)?) => {$(
        #[repr(C, align($align))]
        #[derive(Clone, Copy)]
        struct $name<const S: usize>([u8; S]);
        impl<const S: usize> Default for $name<S> {
            fn default() -> Self {
                $name([0x5A; S])
            }
        }
    )*};
}
aligned!(A1 = 1, A16 = 16, A64 = 64, A256 = 256, A4096 = 4096, A8192 = 8192);

/// Zero-sized captures and results aligned above the stack alignment (marker
/// types): a frame holding one realigns `rsp` and rounds its size up to the
/// alignment, paying up to twice the alignment for zero bytes (an adversarial
/// review: the reserve charged one alignment, and 4096-aligned ones crashed a
/// release build's glue).
macro_rules! aligned_zst {
    ($($name:ident = $align:literal),* $(,)?) => {$(
        #[repr(C, align($align))]
        #[derive(Clone, Copy, Default)]
        struct $name;
    )*};
}
aligned_zst!(Z32 = 32, Z256 = 256, Z4096 = 4096, Z16384 = 16384);

/// One fiber run on a borrowed stack inside a sentinel-filled buffer.
struct Run {
    /// The stack's usable size.
    size: usize,
    /// Bytes spawn wrote below the top: header, closure, initial frame.
    spawned: usize,
    /// The high-water mark after the fiber finished.
    high_water: usize,
    /// How far below the stack's low end the lowest changed sentinel byte is (0: none).
    clobbered_below: usize,
    /// Changed sentinel bytes above the stack's top.
    clobbered_above: usize,
}

/// A sentinel-filled buffer with room for a stack of `size` bytes whose top
/// is at an address `≡ top_mod (mod TOP_PERIOD)`: the buffer and the stack's
/// `lo..top` in it.
fn placed(size: usize, top_mod: usize) -> (Vec<u8>, usize, usize) {
    assert!(size.is_multiple_of(16) && top_mod.is_multiple_of(16));
    let buf = vec![SENTINEL; SLACK_BELOW + size + TOP_PERIOD + SLACK_ABOVE];
    let base = buf.as_ptr() as usize;
    let want = base + SLACK_BELOW + size;
    let top_addr = want + (top_mod + TOP_PERIOD - want % TOP_PERIOD) % TOP_PERIOD;
    (buf, top_addr - size - base, top_addr - base)
}

/// Spawns `f` on a stack of exactly `size` bytes ending at an address
/// `≡ top_mod (mod TOP_PERIOD)`, runs it, and checks the sentinels around the
/// stack. `Err(needed)` if spawn refused the stack as too small. With `run`
/// false the fiber is only spawned (and dropped unstarted with the runtime).
fn run_on<F, T>(size: usize, top_mod: usize, f: F, run: bool) -> Result<Run, usize>
where
    F: FnOnce(&filament::Fiber<'_>) -> T + Send,
    T: Send,
{
    let (mut buf, lo, top) = placed(size, top_mod);
    let (size, spawned, high_water) = Runtime::<1>::scope(|rt| {
        let stack = Stack::from_slice(&mut buf[lo..top]).unwrap();
        assert_eq!(stack.size(), size);
        let h = match rt.spawn(stack, f) {
            Ok(h) => h,
            Err(e) => match e.kind() {
                SpawnErrorKind::StackTooSmall { needed, size: s } => {
                    assert_eq!(s, size);
                    return Err(needed);
                }
                k => panic!("unexpected spawn error {k:?}"),
            },
        };
        let id = h.id();
        let spawned = rt.stack_high_water(id).unwrap();
        if !run {
            return Ok((size, spawned, 0));
        }
        rt.run().unwrap();
        let hw = rt.stack_high_water(id).unwrap();
        drop(rt.take(h).unwrap());
        Ok((size, spawned, hw))
    })?;
    let clobbered_below = buf[..lo].iter().position(|&b| b != SENTINEL).map_or(0, |i| lo - i);
    let clobbered_above = buf[top..].iter().filter(|&&b| b != SENTINEL).count();
    Ok(Run { size, spawned, high_water, clobbered_below, clobbered_above })
}

/// Spawns `make()`'s fiber on the smallest stack spawn accepts at `top_mod`
/// (`MIN_STACK_SIZE`, or the `needed` of a first refusal) — and runs it there
/// if `run_min` — and runs it on a big stack.
fn at_minimum<F, T>(top_mod: usize, run_min: bool, make: &impl Fn() -> F) -> (Run, Run)
where
    F: FnOnce(&filament::Fiber<'_>) -> T + Send,
    T: Send,
{
    let min = match run_on(MIN_STACK_SIZE, top_mod, make(), run_min) {
        Ok(run) => run,
        Err(needed) => {
            assert!(needed > MIN_STACK_SIZE, "refused a stack of {MIN_STACK_SIZE} bytes needing only {needed}");
            let exact = needed.next_multiple_of(16);
            run_on(exact, top_mod, make(), run_min)
                .unwrap_or_else(|n| panic!("refused {exact} bytes after asking for {needed}, then {n}"))
        }
    };
    let big = run_on(BIG, top_mod, make(), true).unwrap_or_else(|n| panic!("refused {BIG} bytes, needs {n}"));
    (min, big)
}

/// One line of the measurement table.
struct Row {
    what: &'static str,
    size: usize,
    align: usize,
    top_mod: usize,
    min: Run,
    big: Run,
}

/// The closures measured, for a capture/result type `C`: capturing a `C`
/// (result `()`), returning a `C` (capturing a box), and both.
fn closures_of<C: Default + Copy + Send + 'static>(top_mod: usize, run_min: bool, rows: &mut Vec<Row>) {
    let (size, align) = (size_of::<C>(), align_of::<C>());
    let mut push = |what, (min, big)| rows.push(Row { what, size, align, top_mod, min, big });
    push(
        "capture",
        at_minimum(top_mod, run_min, &|| {
            let c = C::default();
            move |_: &filament::Fiber<'_>| {
                black_box(&c);
            }
        }),
    );
    push(
        "result",
        at_minimum(top_mod, run_min, &|| {
            let b = Box::new(C::default());
            move |_: &filament::Fiber<'_>| *b
        }),
    );
    push(
        "both",
        at_minimum(top_mod, run_min, &|| {
            let c = C::default();
            move |_: &filament::Fiber<'_>| c
        }),
    );
}

/// Every measured case at one placement of the stack's top (see [`at_minimum`]).
fn all_cases(top_mod: usize, run_min: bool) -> Vec<Row> {
    let mut rows = Vec::new();
    let (min, big) = at_minimum(top_mod, run_min, &|| |_: &filament::Fiber<'_>| ());
    rows.push(Row { what: "empty", size: 0, align: 1, top_mod, min, big });
    macro_rules! sizes {
        ($a:ident: $($s:literal),*) => {$( closures_of::<$a<$s>>(top_mod, run_min, &mut rows); )*};
    }
    sizes!(A1: 8, 64, 1000, 4096, 16384);
    sizes!(A16: 16, 1024, 4096);
    sizes!(A64: 64, 1024, 4096);
    sizes!(A256: 256, 4096);
    sizes!(A4096: 4096, 8192);
    sizes!(A8192: 8192, 16384);
    closures_of::<Z32>(top_mod, run_min, &mut rows);
    closures_of::<Z256>(top_mod, run_min, &mut rows);
    closures_of::<Z4096>(top_mod, run_min, &mut rows);
    closures_of::<Z16384>(top_mod, run_min, &mut rows);
    rows
}

/// Runs `check` in a child process: a glue that overflows may break the canary
/// (the runtime then aborts) or write anywhere below the stack. The child's
/// output is printed here, its failure is ours.
fn in_child(test_name: &str, check: impl FnOnce()) {
    let out = filament::host::run_in_child(test_name, check);
    print!("{}", out.stdout);
    assert!(out.success(), "child failed ({:?}, signal {:?}):\n{}", out.code, out.signal, out.stderr);
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

/// The measurement: what the glue writes on a big stack, against the smallest
/// stack spawn accepts for the same closure, which must also leave room for a
/// signal frame. The table is printed (run with `--nocapture`); the reserve in
/// `src/spawn.rs` (`ENTRY_HEADROOM`) is derived from it.
#[test]
fn glue_stack_use_fits_the_reserve() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("glue_stack_use_fits_the_reserve", glue_stack_use_fits_the_reserve_check);
}

fn glue_stack_use_fits_the_reserve_check() {
    let rows = all_cases(0, false);
    let signal = signal_frame();
    println!("stack written by a fiber ({}), in bytes from the top:", profile());
    println!(
        "(spare: what the smallest accepted stack leaves after that, the canary and a {signal}-byte signal frame)"
    );
    println!(
        "{:>8} {:>6} {:>5} | {:>7} {:>7} {:>7} | {:>7} | {:>6}",
        "closure", "size", "align", "spawn", "glue", "written", "minimum", "spare"
    );
    let mut short = Vec::new();
    for r in &rows {
        let used = r.big.high_water + CANARY_BYTES + signal;
        let spare = r.min.size as isize - used as isize;
        println!(
            "{:>8} {:>6} {:>5} | {:>7} {:>7} {:>7} | {:>7} | {:>6}",
            r.what,
            r.size,
            r.align,
            r.big.spawned,
            r.big.high_water - r.big.spawned,
            r.big.high_water,
            r.min.size,
            spare
        );
        if spare < 0 {
            short.push(format!(
                "{} {}x{}: writes {}, + canary + signal frame = {used}, accepted at {}",
                r.what, r.size, r.align, r.big.high_water, r.min.size
            ));
        }
    }
    assert!(short.is_empty(), "spawn accepts stacks its glue overflows ({}): {short:#?}", profile());
}

/// A stack of exactly the smallest size spawn accepts — `MIN_STACK_SIZE`, or
/// the `needed` of a first refusal — is never written outside, whatever the
/// closure's size and alignment and wherever the stack ends.
#[test]
fn stack_of_exactly_the_accepted_size_is_never_written_outside() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("stack_of_exactly_the_accepted_size_is_never_written_outside", || {
        let mut bad = Vec::new();
        // Tops at several residues modulo the largest alignment: an
        // over-aligned frame's padding depends on where the stack ends.
        for top_mod in [0, 16, 4096 + 48, 4096 - 16, 8192 + 2048 + 32, TOP_PERIOD - 16] {
            for r in all_cases(top_mod, true) {
                let m = &r.min;
                if m.clobbered_below != 0 || m.clobbered_above != 0 || m.high_water + CANARY_BYTES >= m.size {
                    bad.push(format!(
                        "{} {}x{} on {} bytes (top = {} mod {TOP_PERIOD}): written {} bytes below the stack, \
                     {} above, high water {}",
                        r.what, r.size, r.align, m.size, r.top_mod, m.clobbered_below, m.clobbered_above, m.high_water
                    ));
                }
            }
        }
        assert!(bad.is_empty(), "{} ({}): {bad:#?}", bad.len(), profile());
    });
}

/// Zero-sized over-aligned captures at every placement of the stack's top
/// (each multiple of 16 below the alignment): a frame holding one wastes up
/// to twice the alignment, depending on where `rsp` lands. An adversarial
/// review found a 4096-aligned marker capture writing 760 bytes below an
/// accepted stack (and a local copy of it in the body, 8952) at a top the
/// fixed placements above did not try.
#[test]
fn over_aligned_zero_sized_captures_fit_at_every_placement() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    fn sweep<C: Default + Copy + Send + 'static>(bad: &mut Vec<String>) {
        for top_mod in (0..align_of::<C>().max(16)).step_by(16) {
            let mut rows = Vec::new();
            closures_of::<C>(top_mod, true, &mut rows);
            for r in rows {
                let m = &r.min;
                if m.clobbered_below != 0 || m.clobbered_above != 0 {
                    bad.push(format!(
                        "{} 0x{} on {} bytes (top = {top_mod} mod {TOP_PERIOD}): written {} bytes below, {} above",
                        r.what, r.align, m.size, m.clobbered_below, m.clobbered_above
                    ));
                }
            }
        }
    }
    in_child("over_aligned_zero_sized_captures_fit_at_every_placement", || {
        let mut bad = Vec::new();
        sweep::<Z32>(&mut bad);
        sweep::<Z256>(&mut bad);
        sweep::<Z4096>(&mut bad);
        assert!(bad.is_empty(), "{} ({}): {bad:#?}", bad.len(), profile());
    });
}

/// SIGUSR1 deliveries seen by [`count_signal`].
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// A SIGUSR1 handler with a small frame of its own (a 256-byte local).
extern "C" fn count_signal(_: libc::c_int) {
    let mut scratch = [0u8; 256];
    black_box(&mut scratch);
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs [`count_signal`] for SIGUSR1 *without* `SA_ONSTACK`: the kernel
/// writes its signal frame on whatever stack runs, here a fiber's.
fn install_signal_handler() {
    // SAFETY: a zeroed `sigaction` is a valid value to fill in; the handler
    // only touches its own frame and an atomic (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// The SIGSEGV disposition (std installs a handler for stack overflows).
fn sigsegv_handler() -> libc::sighandler_t {
    // SAFETY: querying only (no new action); `old` is a valid out-pointer.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// Set by a fiber that waits for a SIGUSR1 from the [`Killer`] thread.
static WAITING: AtomicBool = AtomicBool::new(false);

/// A thread that sends SIGUSR1 to `target` each time a fiber sets [`WAITING`].
struct Killer {
    stop: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Killer {
    fn new() -> Killer {
        // SAFETY: pthread_self has no preconditions.
        let target = unsafe { libc::pthread_self() };
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if WAITING.swap(false, Ordering::SeqCst) {
                    // SAFETY: `target` is the test thread, alive until `Killer` is dropped.
                    assert_eq!(unsafe { libc::pthread_kill(target, libc::SIGUSR1) }, 0);
                }
                std::thread::yield_now();
            }
        });
        Killer { stop, thread: Some(thread) }
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Spins until a SIGUSR1 arrives from the [`Killer`] (a hang guard of a
/// minute, never reached unless the signal was lost).
fn wait_for_signal() {
    let before = SIGNALS.load(Ordering::SeqCst);
    WAITING.store(true, Ordering::SeqCst);
    let start = Instant::now();
    while SIGNALS.load(Ordering::SeqCst) == before {
        assert!(start.elapsed() < Duration::from_secs(60), "SIGUSR1 never arrived");
        std::hint::spin_loop();
    }
}

/// Fibers capturing a `C` that take a SIGUSR1 while they run, raised by
/// themselves and sent by another thread, on the smallest stacks spawn accepts.
fn signal_cases<C: Default + Copy + Send + 'static>(top_mod: usize, rows: &mut Vec<Row>) {
    let (size, align) = (size_of::<C>(), align_of::<C>());
    let before = SIGNALS.load(Ordering::SeqCst);
    let (min, big) = at_minimum(top_mod, true, &|| {
        let c = C::default();
        move |_: &filament::Fiber<'_>| {
            black_box(&c);
            // SAFETY: raising a signal whose handler is installed.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        }
    });
    assert_eq!(SIGNALS.load(Ordering::SeqCst), before + 2, "raise: a signal was lost");
    rows.push(Row { what: "raise", size, align, top_mod, min, big });
    let (min, big) = at_minimum(top_mod, true, &|| {
        let c = C::default();
        move |_: &filament::Fiber<'_>| {
            black_box(&c);
            wait_for_signal();
        }
    });
    rows.push(Row { what: "kill", size, align, top_mod, min, big });
}

/// A signal delivered while a fiber runs — its handler installed without
/// `SA_ONSTACK` — lands on the fiber's stack: the kernel's signal frame
/// (`AT_MINSIGSTKSZ`) and the red zone must fit the smallest stack spawn
/// accepts, with room for a small handler frame.
#[test]
fn signal_frames_fit_the_smallest_accepted_stack() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("signal_frames_fit_the_smallest_accepted_stack", || {
        install_signal_handler();
        let _killer = Killer::new();
        let mut bad = Vec::new();
        for top_mod in [0, 16, 4096 + 48] {
            let mut rows = Vec::new();
            signal_cases::<A1<0>>(top_mod, &mut rows);
            signal_cases::<A1<1000>>(top_mod, &mut rows);
            signal_cases::<A64<1024>>(top_mod, &mut rows);
            signal_cases::<A4096<4096>>(top_mod, &mut rows);
            for r in rows {
                let m = &r.min;
                println!(
                    "{:>6} {:>5}x{:<5} top {:>4}: stack {:>6}, deepest write {:>6}, {} below, {} above",
                    r.what, r.size, r.align, r.top_mod, m.size, r.big.high_water, m.clobbered_below, m.clobbered_above
                );
                if m.clobbered_below != 0 || m.clobbered_above != 0 {
                    bad.push(format!(
                        "{} {}x{} on {} bytes (top = {} mod {TOP_PERIOD}): written {} bytes below the stack, {} above",
                        r.what, r.size, r.align, m.size, r.top_mod, m.clobbered_below, m.clobbered_above
                    ));
                }
            }
        }
        assert!(bad.is_empty(), "{} ({}): {bad:#?}", bad.len(), profile());
    });
}

/// Spawns a fiber capturing a `C` that raises SIGUSR1 on the smallest host
/// stack spawn accepts for it, runs it, and returns that stack's size.
fn raise_on_smallest_host_stack<C: Default + Copy + Send + 'static>() -> usize {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let raise = || {
        let c = C::default();
        move |_: &filament::Fiber<'static>| {
            black_box(&c);
            // SAFETY: raising a signal whose handler is installed.
            unsafe { libc::raise(libc::SIGUSR1) }
        }
    };
    let mut size = MIN_STACK_SIZE;
    let h = loop {
        let stack = Stack::host(size).unwrap();
        let mapped = stack.size();
        match rt.spawn(stack, raise()) {
            Ok(h) => {
                size = mapped;
                break h;
            }
            Err(e) => match e.kind() {
                SpawnErrorKind::StackTooSmall { needed, size: s } => {
                    assert!(needed > s);
                    size = needed;
                }
                k => panic!("unexpected spawn error {k:?}"),
            },
        }
    };
    let before = SIGNALS.load(Ordering::SeqCst);
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 0);
    let delivered = SIGNALS.load(Ordering::SeqCst) - before;
    println!("{}-byte capture on a {size}-byte host stack: {delivered} signal(s) delivered", size_of::<C>());
    assert_eq!(delivered, 1, "the signal was lost ({}-byte capture, {size}-byte host stack)", size_of::<C>());
    size
}

/// On the smallest host stack spawn accepts, a signal the fiber raises is
/// delivered: its frame does not run into the guard page (the kernel would
/// then drop the signal and, through std's handler, reset SIGSEGV to its
/// default). Captures of several sizes leave different slack in the last page.
#[test]
fn signal_on_the_smallest_accepted_host_stack_is_delivered() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("signal_on_the_smallest_accepted_host_stack_is_delivered", || {
        install_signal_handler();
        // The first host stack installs filament's guard-page reporter (which
        // chains to std's handler); compare against that.
        drop(Stack::host(64 * 1024).unwrap());
        let segv = sigsegv_handler();
        raise_on_smallest_host_stack::<A1<0>>();
        raise_on_smallest_host_stack::<A1<512>>();
        raise_on_smallest_host_stack::<A1<1024>>();
        raise_on_smallest_host_stack::<A1<1536>>();
        raise_on_smallest_host_stack::<A1<2048>>();
        raise_on_smallest_host_stack::<A1<2560>>();
        raise_on_smallest_host_stack::<A1<3072>>();
        raise_on_smallest_host_stack::<A1<3584>>();
        assert_eq!(sigsegv_handler(), segv, "the SIGSEGV handler was reset");
    });
}

#[test]
fn host_stack_sizes_near_usize_max_are_refused() {
    let page = 4096usize;
    for size in [
        usize::MAX,
        usize::MAX - 1,
        usize::MAX - (page - 1),
        usize::MAX - page,
        usize::MAX - 2 * page + 1,
        isize::MAX as usize,
        isize::MAX as usize + 1,
        1usize << 62,
    ] {
        match Stack::host(size) {
            Ok(st) => panic!("Stack::host({size:#x}) returned a {}-byte stack", st.size()),
            Err(e) => {
                assert!(
                    matches!(e, StackError::TooLarge { size: s } | StackError::MapFailed { size: s, .. } if s == size),
                    "{size:#x}: {e:?}"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// Review 8: a fiber cancelled by unwinding before it ever ran used to
/// unwind from its entry glue (`resume_unwind` with the runtime's
/// cancellation payload): the unwinder's frames ran on a stack sized for the
/// glue alone and ate the room kept for a signal frame (measured: 5 384 of a
/// 7 664-byte stack in release, 2 280 left where a 3 504-byte signal frame
/// needs room). It has no frames to unwind: it finishes as cancelled without
/// an unwind, so its stack use stays within what the plain glue writes.
#[test]
fn a_fiber_cancelled_before_it_starts_fits_the_reserve() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("a_fiber_cancelled_before_it_starts_fits_the_reserve", || {
        use std::sync::Mutex;

        use filament::{FiberId, JoinError};

        static TARGET: Mutex<Option<FiberId>> = Mutex::new(None);
        let signal = signal_frame();
        let mut bad = Vec::new();
        for capture in [0usize, 1000, 4096] {
            let make = || {
                let c = vec![0x5Au8; capture];
                move |_: &filament::Fiber<'_>| black_box(c.len())
            };
            // The smallest stack spawn accepts for this closure.
            let needed = match run_on(MIN_STACK_SIZE, 0, make(), false) {
                Ok(_) => MIN_STACK_SIZE,
                Err(n) => n.next_multiple_of(16),
            };
            let mut buf = vec![SENTINEL; SLACK_BELOW + needed + 64];
            let lo = SLACK_BELOW + (16 - (buf.as_ptr() as usize + SLACK_BELOW) % 16) % 16;
            let (high_water, outcome) = Runtime::<2>::scope(|rt| {
                let _canceller = rt
                    .spawn_detached(Stack::host(256 * 1024).unwrap(), |fib| {
                        let id = TARGET.lock().unwrap().take().unwrap();
                        fib.cancel_unwind(id).unwrap();
                    })
                    .unwrap();
                let h = rt.spawn(Stack::from_slice(&mut buf[lo..lo + needed]).unwrap(), make()).unwrap();
                *TARGET.lock().unwrap() = Some(h.id());
                rt.run().unwrap();
                let hw = rt.stack_high_water(h.id()).unwrap();
                (hw, rt.take(h).map(|_| ()))
            });
            let below = buf[..lo].iter().position(|&b| b != SENTINEL).map_or(0, |i| lo - i);
            println!("capture {capture}: stack {needed}, high water {high_water}, outcome {outcome:?}");
            if !matches!(outcome, Err(JoinError::Cancelled)) {
                bad.push(format!("capture {capture}: outcome {outcome:?}, not Cancelled"));
            }
            if below != 0 || high_water + CANARY_BYTES + signal > needed {
                bad.push(format!(
                    "capture {capture}: {needed}-byte stack, high water {high_water} + canary + {signal}-byte \
                     signal frame does not fit ({below} bytes written below)"
                ));
            }
        }
        assert!(bad.is_empty(), "{} ({}): {bad:#?}", bad.len(), profile());
    });
}

/// An adversarial review's reproducer, as it came: a zero-sized 4096-aligned
/// marker captured by a closure, spawned on exactly the size a first refusal
/// asked for, with the top wherever the allocation put it. Before the reserve
/// charged a zero-sized over-aligned value twice its alignment, the glue wrote
/// 760 bytes below the accepted stack (debug build); in release, before the
/// closure was called from a frame of its own, the glue's frame was
/// miscompiled and the fiber crashed (SIGSEGV; in a child process here).
#[test]
fn a_page_aligned_marker_capture_stays_inside_an_accepted_stack() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    in_child("a_page_aligned_marker_capture_stays_inside_an_accepted_stack", page_aligned_marker_check);
}

fn page_aligned_marker_check() {
    #[derive(Clone, Copy)]
    #[repr(align(4096))]
    struct Page;
    const TOTAL: usize = 1 << 20;
    let mut buf = vec![0xEEu8; TOTAL];
    let end = TOTAL - (buf.as_ptr() as usize + TOTAL) % 16;
    let p = Page;
    let body = move |_: &filament::Fiber<'_>| {
        black_box(&p);
    };
    let needed =
        Runtime::<1>::scope(|rt| match rt.spawn(Stack::from_slice(&mut buf[end - 2048..end]).unwrap(), body) {
            Err(e) => match e.kind() {
                SpawnErrorKind::StackTooSmall { needed, .. } => needed,
                k => panic!("{k:?}"),
            },
            Ok(_) => unreachable!(),
        });
    buf.fill(0xEE);
    let (below, rest) = buf.split_at_mut(end - needed);
    Runtime::<1>::scope(|rt| {
        let h = rt.spawn(Stack::from_slice(&mut rest[..needed]).unwrap(), body).expect("accepted");
        rt.run().unwrap();
        rt.take(h).unwrap()
    });
    let deepest = below.iter().position(|&b| b != 0xEE).map(|i| below.len() - i);
    let top = (below.as_ptr() as usize + below.len() + needed) % 16384;
    let vals: Vec<u8> = below.iter().copied().filter(|&b| b != 0xEE).take(16).collect();
    assert_eq!(deepest, None, "needed {needed}, top mod 16384 = {top}, values {vals:x?}");
}

/// Review 15: a *detached* fiber dropped its result through a by-value
/// `drop(value)`, a frame of its own that an unoptimised build realigns to
/// the result's alignment and probes page by page: a zero-sized result
/// aligned to 16384 wrote 5 072 bytes below a stack of exactly the accepted
/// size (the measured matrix only ran joined fibers). Detached fibers of the
/// zero-sized over-aligned results, at several placements of the top.
#[test]
fn a_detached_fiber_drops_an_over_aligned_result_inside_its_stack() {
    if under_asan() {
        eprintln!("SKIPPED under AddressSanitizer: this test measures stack bytes (ASan redzones change every frame)");
        return;
    }
    fn detached_at<C: Default + Copy + Send + 'static>(top_mod: usize, bad: &mut Vec<String>) {
        let make = || {
            let b = Box::new(C::default());
            move |_: &filament::Fiber<'_>| *b
        };
        let (mut buf, _, top) = placed(BIG, top_mod);
        let needed =
            Runtime::<1>::scope(|rt| match rt.spawn(Stack::from_slice(&mut buf[top - 1024..top]).unwrap(), make()) {
                Err(e) => match e.kind() {
                    SpawnErrorKind::StackTooSmall { needed, .. } => needed,
                    k => panic!("{k:?}"),
                },
                Ok(_) => unreachable!("1 KiB accepted"),
            });
        buf.fill(SENTINEL);
        let lo = top - needed;
        Runtime::<1>::scope(|rt| {
            rt.spawn_detached(Stack::from_slice(&mut buf[lo..top]).unwrap(), make()).expect("accepted");
            rt.run().unwrap();
        });
        if let Some(i) = buf[..lo].iter().position(|&b| b != SENTINEL) {
            bad.push(format!(
                "{}x{} detached on {needed} bytes (top = {top_mod}): written {} bytes below",
                size_of::<C>(),
                align_of::<C>(),
                lo - i
            ));
        }
    }
    in_child("a_detached_fiber_drops_an_over_aligned_result_inside_its_stack", || {
        let mut bad = Vec::new();
        for top_mod in [0, 16, 2048, 4080, 8192, TOP_PERIOD - 16] {
            detached_at::<Z32>(top_mod, &mut bad);
            detached_at::<Z256>(top_mod, &mut bad);
            detached_at::<Z4096>(top_mod, &mut bad);
            detached_at::<Z16384>(top_mod, &mut bad);
        }
        assert!(bad.is_empty(), "{} ({}): {bad:#?}", bad.len(), profile());
    });
}
