//! Regression tests for the soundness review (issue 12): each test here failed
//! on the code it guards against, before the fix.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use filament::sync::{Channel, Event, Mutex, Semaphore};
use filament::{Idle, Runtime, Stack, Ticks};

fn stack() -> Stack<'static> {
    Stack::host(256 * 1024).expect("mmap stack")
}

/// Runs `f` on its own thread and fails the test if it does not finish in 10 s
/// (a hung scheduler must be a failure, not a hung test run).
fn with_watchdog<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: did not finish within 10 s (scheduler hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the scenario panicked (see above)"),
    }
}

/// A clock that runs on its own: the test (or a fiber) moves it; the runtime
/// reads it at every yield and block while timers are armed.
#[derive(Clone)]
struct JumpClock(Arc<AtomicU64>);

impl Idle for JumpClock {
    fn idle(&mut self, now: Ticks, next_deadline: Option<Ticks>) -> Ticks {
        // Virtual time while idle: jump to the next deadline.
        let t = next_deadline.unwrap_or(now).max(now).max(self.0.load(Ordering::SeqCst));
        self.0.fetch_max(t, Ordering::SeqCst);
        t
    }
    fn now(&mut self) -> Option<Ticks> {
        Some(self.0.load(Ordering::SeqCst))
    }
}

static SEM: Semaphore = Semaphore::new(0);
static EVT: Event = Event::new();
static MTX: Mutex<u32> = Mutex::new(0);
static CHAN: Channel<u32, 1> = Channel::new();

/// Defect 1: a fiber that runs past its own future deadline without yielding
/// and then starts a timed wait must not be "woken" while it still runs.
/// Before the fix the deadline was armed before the fiber was blocked, the
/// block polled the clock, and the running fiber was made ready on top of
/// itself: the ready ring lost every other fiber and `run` never returned.
#[test]
fn a_timed_wait_never_wakes_the_running_fiber() {
    for form in 0..6u32 {
        let done = with_watchdog("timed wait after the clock moved", move || {
            let clock = JumpClock(Arc::new(AtomicU64::new(0)));
            let rt = Box::new(Runtime::<'static, 8>::new());
            let c = clock.0.clone();
            let waiter = rt
                .spawn(stack(), move |fib| {
                    // A tick passes while this fiber runs without yielding.
                    c.fetch_add(1000, Ordering::SeqCst);
                    match form {
                        0 => fib.sleep(10),
                        1 => drop(SEM.acquire_timeout(fib, 10)),
                        2 => drop(EVT.wait_timeout(fib, 10)),
                        3 => {
                            let _g = MTX.lock(fib).unwrap();
                            fib.sleep(10);
                        }
                        4 => drop(CHAN.recv_timeout(fib, 10)),
                        _ => fib.sleep_until(fib.now() + 10),
                    }
                    fib.now()
                })
                .unwrap();
            let mut others = Vec::new();
            for i in 0..3u64 {
                others.push(
                    rt.spawn(stack(), move |fib| {
                        for _ in 0..5 {
                            fib.yield_now();
                        }
                        i
                    })
                    .unwrap(),
                );
            }
            rt.run_with_idle(&mut clock.clone()).unwrap();
            let woke_at = rt.take(waiter).unwrap();
            let sum: u64 = others.into_iter().map(|h| rt.take(h).unwrap()).sum();
            (woke_at, sum)
        });
        assert_eq!(done.1, 3, "form {form}: every other fiber ran to the end");
        assert!(done.0 >= 1000, "form {form}: the wait saw the clock that moved (woke at {})", done.0);
    }
}

/// A value whose destructor panics.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("{} panicked in drop", self.0);
        }
    }
}

/// Defect 3a: a detached fiber's result is dropped inside the fiber; a
/// panicking `Drop` used to unwind out of the `extern "C"` entry and abort the
/// process.
#[test]
fn a_detached_result_whose_drop_panics_does_not_abort() {
    let out = filament::host::run_in_child("a_detached_result_whose_drop_panics_does_not_abort", || {
        let rt = Box::new(Runtime::<'static, 2>::new());
        rt.spawn_detached(stack(), |_| PanicsOnDrop("result")).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.stats().unwrap().live, 0, "the detached fiber's slot was freed");
        println!("SCENARIO-DONE");
    });
    assert!(out.success() && out.stdout.contains("SCENARIO-DONE"), "{out:?}");
}

/// Defect 3b: a panic payload whose own `Drop` panics used to be dropped after
/// `catch_unwind` returned, inside the `extern "C"` entry: abort.
#[test]
fn a_panic_payload_whose_drop_panics_does_not_abort() {
    let out = filament::host::run_in_child("a_panic_payload_whose_drop_panics_does_not_abort", || {
        let rt = Box::new(Runtime::<'static, 2>::new());
        let joined = rt.spawn(stack(), |_| std::panic::panic_any(PanicsOnDrop("payload"))).unwrap();
        rt.spawn_detached(stack(), |_| std::panic::panic_any(PanicsOnDrop("detached payload"))).unwrap();
        rt.run().unwrap();
        let err = rt.take(joined).unwrap_err();
        assert_eq!(err.panic_message(), Some("<non-string panic payload>"));
        assert_eq!(rt.stats().unwrap().live, 0);
        println!("SCENARIO-DONE");
    });
    assert!(out.success() && out.stdout.contains("SCENARIO-DONE"), "{out:?}");
}

/// Defect 3c: `detach` of a finished fiber whose result's `Drop` panics: the
/// panic reaches the detaching caller and the slot is freed all the same.
#[test]
fn detach_of_a_result_whose_drop_panics_frees_the_slot() {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt.spawn(stack(), |_| PanicsOnDrop("detached result")).unwrap();
    rt.run().unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.detach(h)));
    assert!(caught.is_err(), "the result's panic reaches the caller of detach");
    assert_eq!(rt.stats().unwrap().live, 0, "the slot is free although the drop panicked");
    // And the one slot can be used again.
    let again = rt.spawn(stack(), |_| 5).unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(again).unwrap(), 5);
}

/// Yields a few times from its destructor (which runs while its fiber unwinds).
struct YieldsInDrop<'a>(&'a filament::Fiber<'static>);

impl Drop for YieldsInDrop<'_> {
    fn drop(&mut self) {
        for _ in 0..3 {
            self.0.yield_now();
        }
    }
}

/// Defect 9a: std keeps "this thread is panicking" per OS thread. A fiber
/// that yielded from a destructor while it unwound made every other fiber see
/// `thread::panicking() == true`. A fiber never switches while it unwinds.
#[test]
fn no_fiber_observes_another_fibers_unwind() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let unwinder = rt
        .spawn(stack(), |fib| {
            let _y = YieldsInDrop(fib);
            panic!("unwinding with a yield in a destructor");
        })
        .unwrap();
    let observer = rt
        .spawn(stack(), |fib| {
            let mut seen = 0;
            for _ in 0..10 {
                seen += std::thread::panicking() as u32;
                fib.yield_now();
            }
            seen
        })
        .unwrap();
    rt.run().unwrap();
    assert!(rt.take(unwinder).unwrap_err().panic_message().is_some());
    assert_eq!(rt.take(observer).unwrap(), 0, "the observer saw the other fiber's unwind");
    assert!(!std::thread::panicking());
}

static NEVER_SENT: Channel<u32, 1> = Channel::new();
static NO_PERMITS: Semaphore = Semaphore::new(0);

/// Blocks on a semaphore nobody releases from its destructor.
struct BlocksInDrop<'a>(&'a filament::Fiber<'static>, Arc<std::sync::Mutex<Option<String>>>);

impl Drop for BlocksInDrop<'_> {
    fn drop(&mut self) {
        let r = NO_PERMITS.acquire(self.0);
        *self.1.lock().unwrap() = Some(format!("{r:?}"));
    }
}

/// Defect 9b: a fiber cancelled by a deadlock unwinds; a destructor that
/// blocks again used to park it mid-unwind for good, leaving the host thread
/// "panicking" after `run` returned. Now the wait fails at once (it cannot
/// block while unwinding), the fiber finishes `Cancelled`, and the thread is
/// not panicking.
#[test]
fn a_cancelled_fiber_is_never_parked_mid_unwind() {
    let result = with_watchdog("cancel then block in a destructor", || {
        let rt = Box::new(Runtime::<'static, 2>::new());
        let seen = Arc::new(std::sync::Mutex::new(None));
        let s = seen.clone();
        let h = rt
            .spawn(stack(), move |fib| {
                let _b = BlocksInDrop(fib, s);
                NEVER_SENT.recv(fib)
            })
            .unwrap();
        let run = rt.run();
        let panicking_after = std::thread::panicking();
        let outcome = rt.take(h).map(|_| ()).map_err(|e| format!("{e:?}"));
        let again = rt.spawn(stack(), |_| 1).map(|_| ()).map_err(|e| format!("{:?}", e.kind()));
        (format!("{run:?}"), panicking_after, outcome, seen.lock().unwrap().clone(), again)
    });
    let (run, panicking_after, outcome, seen, again) = result;
    assert!(run.contains("Deadlock"), "{run}");
    assert!(!panicking_after, "the host thread was left panicking");
    assert_eq!(outcome, Err("Cancelled".to_string()));
    assert!(seen.is_some_and(|s| s.contains("Unwinding")), "the wait in the destructor failed with Unwinding");
    assert_eq!(again, Ok(()), "the runtime is not poisoned");
}

static FIRST: Channel<u32, 1> = Channel::new();
static SECOND: Channel<u32, 1> = Channel::new();
static THIRD: Channel<u32, 1> = Channel::new();

/// Defect 10: in one deadlock pass a fiber cancelled for the first time was
/// made ready, then `run` returned because another fiber (cancelled before,
/// blocked again) poisoned the runtime: the first one never unwound
/// (`NotFinished`), and the report named only the first deadlock.
#[test]
fn a_poisoning_deadlock_still_unwinds_the_fibers_it_cancelled() {
    let (run, late) = with_watchdog("second deadlock poisons", || {
        let rt: &'static Runtime<'static, 4> = Box::leak(Box::new(Runtime::new()));
        let late = Arc::new(std::sync::Mutex::new(None));
        let l = late.clone();
        let _stubborn = rt
            .spawn_named("stubborn", stack(), move |fib| {
                // Swallow the first cancellation...
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| FIRST.recv(fib)));
                // ...start a fiber that blocks for the first time...
                *l.lock().unwrap() = Some(fib.spawn_named("late", stack(), |fib| SECOND.recv(fib)).unwrap());
                // ...and block again: the second deadlock parks this one for good.
                let _ = THIRD.recv(fib);
            })
            .unwrap();
        let run = rt.run();
        let late = late.lock().unwrap().take().unwrap();
        let late = rt.take(late).map(|_| ()).map_err(|e| format!("{e:?}"));
        (format!("{run:?}"), late)
    });
    assert_eq!(late, Err("Cancelled".to_string()), "the fiber cancelled by the poisoning pass unwound");
    assert!(run.contains("\"stubborn\""), "{run}");
    assert!(run.contains("\"late\""), "the report names the second deadlock's fibers too: {run}");
}

static mut SLACK: (usize, usize) = (0, 0);

extern "C" fn count_slack_on_abort(_: libc::c_int) {
    // SAFETY: written once before the fibers ran; read-only here.
    let (at, len) = unsafe { SLACK };
    // SAFETY: the slack is leaked memory of this process.
    let slack = unsafe { std::slice::from_raw_parts(at as *const u8, len) };
    let changed = slack.iter().filter(|&&b| b != 0xA5).count();
    let mut line = *b"SLACK-CHANGED 0000000000\n";
    let mut n = changed;
    for i in (14..24).rev() {
        line[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    // SAFETY: write(2) is async-signal-safe; the buffer is valid.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// Descends to within `margin` bytes of `lo`, breaks the canary there, yields.
#[inline(never)]
fn descend_break_canary_and_yield(fib: &filament::Fiber<'static>, lo: usize, margin: usize) {
    let mut frame = [0u8; 128];
    std::hint::black_box(&mut frame);
    if frame.as_ptr() as usize - lo > margin {
        descend_break_canary_and_yield(fib, lo, margin);
    } else {
        // SAFETY: [lo, lo+32) is the canary of this fiber's own stack.
        unsafe { std::ptr::write_bytes(lo as *mut u8, 0, 32) };
        fib.yield_now();
    }
    std::hint::black_box(&mut frame);
}

/// Defect 7: the report of a broken canary was formatted and printed on the
/// fiber stack whose canary had just broken, writing further below it (here:
/// into the slack memory below a borrowed buffer). It now runs on the host
/// context's stack: not one byte below the buffer changes.
#[test]
#[cfg_attr(filament_asan, ignore = "measures stack bytes below a fiber stack (ASan redzones change every frame)")]
fn an_overflow_report_runs_on_the_host_stack() {
    let out = filament::host::run_in_child("an_overflow_report_runs_on_the_host_stack", || {
        const SLACK_LEN: usize = 64 * 1024;
        let buf: &'static mut [u8] = Box::leak(vec![0xA5u8; SLACK_LEN + 32 * 1024].into_boxed_slice());
        let (slack, mem) = buf.split_at_mut(SLACK_LEN);
        // SAFETY: set before any fiber runs; the handler only reads it.
        unsafe { SLACK = (slack.as_ptr() as usize, SLACK_LEN) };
        // SAFETY: installing a plain handler for SIGABRT in this child process.
        unsafe { libc::signal(libc::SIGABRT, count_slack_on_abort as *const () as libc::sighandler_t) };
        let lo = (mem.as_ptr() as usize).next_multiple_of(16);
        let stack = Stack::from_slice(mem).unwrap();
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _a = rt.spawn_named("overflower", stack, move |fib| descend_break_canary_and_yield(fib, lo, 1536));
        let _b = rt.spawn(self::stack(), |fib| fib.yield_now());
        let _ = rt.run();
        println!("UNREACHABLE");
    });
    assert!(out.stderr.contains("canary of fiber #0.0 \"overflower\""), "{out:?}");
    assert!(out.stderr.contains("SLACK-CHANGED 0000000000"), "bytes below the stack changed: {}", out.stderr);
}

/// Defect 6 (docs): a runtime's identity is its serial, not its address: a
/// runtime value moved between runs is the same runtime (its join handles
/// still work), and a new runtime at a dead one's address is another one.
#[test]
fn a_moved_runtime_is_the_same_runtime() {
    let rt = Runtime::<'static, 2>::new();
    let h = rt.spawn(stack(), |_| 5).unwrap();
    rt.run().unwrap();
    let moved = Box::new(rt); // a different address
    assert_eq!(moved.take(h).unwrap(), 5, "a handle from before the move");
    let other = Box::new(Runtime::<'static, 2>::new());
    let h = moved.spawn(stack(), |_| 6).unwrap();
    moved.run().unwrap();
    let h = match other.take(h) {
        Err(filament::JoinError::WrongRuntime(h)) => h,
        r => panic!("another runtime took it: {:?}", r.map(|_| ())),
    };
    assert_eq!(moved.take(h).unwrap(), 6);
}

/// Defect 6 (docs): what the canary check covers, exactly. A hit on a lower
/// canary word is not seen at a switch-out (only the topmost word is, the one
/// an overflow reaches first), but it is at exit, where all 32 bytes are.
#[test]
fn lower_canary_words_are_checked_at_exit() {
    let out = filament::host::run_in_child("lower_canary_words_are_checked_at_exit", || {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 32 * 1024].into_boxed_slice());
        let lo = (buf.as_ptr() as usize).next_multiple_of(16);
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _a = rt.spawn_named("low-hit", Stack::from_slice(buf).unwrap(), move |fib| {
            // SAFETY: the first canary word of this fiber's own stack.
            unsafe { (lo as *mut u64).write(0) };
            fib.yield_now();
            println!("AFTER-YIELD");
        });
        let _b = rt.spawn(stack(), |fib| fib.yield_now());
        let _ = rt.run();
        println!("UNREACHABLE");
    });
    assert!(out.stdout.contains("AFTER-YIELD"), "the switch-out check reads the top word only: {out:?}");
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    assert!(out.stderr.contains("canary of fiber #0.0 \"low-hit\""), "{out:?}");
}

/// A clock in miniature: one tick per idle call, counted from 0 when made.
struct TickingClock {
    t: Ticks,
    idles: u64,
}

impl Idle for TickingClock {
    fn idle(&mut self, _now: Ticks, _next: Option<Ticks>) -> Ticks {
        self.t += 1;
        self.idles += 1;
        self.t
    }
    fn now(&mut self) -> Option<Ticks> {
        Some(self.t)
    }
}

/// Review finding: a runtime whose time had reached T, driven by a fresh
/// clock (a new `HostClock`, a new thread's clock), stalled every sleep and
/// timeout until the new clock caught up with T (a day of uptime: sleeps
/// wait a day). A new clock now continues from the runtime's time.
#[test]
fn a_fresh_clock_on_a_used_runtime_does_not_stall_sleeps() {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt.spawn(stack(), |fib| fib.sleep(300)).unwrap();
    let mut first = TickingClock { t: 0, idles: 0 };
    rt.run_with_idle(&mut first).unwrap();
    rt.take(h).unwrap();
    let h = rt
        .spawn(stack(), |fib| {
            let start = fib.now();
            fib.sleep(10);
            fib.now() - start
        })
        .unwrap();
    let mut second = TickingClock { t: 0, idles: 0 };
    rt.run_with_idle(&mut second).unwrap();
    let slept = rt.take(h).unwrap();
    assert!(slept >= 10, "slept {slept} ticks");
    assert!(second.idles <= 12, "a 10-tick sleep took {} ticks of the new clock", second.idles);
}

struct BoomOnDrop;

impl Drop for BoomOnDrop {
    fn drop(&mut self) {
        panic!("result dropped");
    }
}

/// Review round 3: `Runtime::drop` adopted dropped handles first, running a
/// result's `Drop`; when that panicked, the scoped runtime's check for
/// suspended fibers on borrowed stacks was skipped and the borrowed memory
/// returned to the caller under a parked fiber's frames (use after free).
/// No user code runs before that check now.
#[test]
fn a_panicking_orphan_cannot_skip_the_scoped_runtime_check() {
    static NEVER: Event = Event::new();
    let out = filament::host::run_in_child("a_panicking_orphan_cannot_skip_the_scoped_runtime_check", || {
        let mut a = vec![0u8; 256 * 1024];
        let mut b = vec![0u8; 256 * 1024];
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Runtime::<2>::scope(|rt| {
                let _parked = rt.spawn(Stack::from_slice(&mut a).unwrap(), |fib| {
                    loop {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| NEVER.wait(fib)));
                    }
                });
                let boom = rt.spawn(Stack::from_slice(&mut b).unwrap(), |_| BoomOnDrop).unwrap();
                let _ = rt.run(); // deadlock: one fiber parked for good
                drop(boom); // a note: adopted (the result dropped) only when safe
            })
        }));
        println!("SURVIVED: {}", caught.is_err());
    });
    assert!(!out.stdout.contains("SURVIVED"), "{out:?}");
    assert!(out.stderr.contains("scoped runtime was dropped with 1 suspended fiber"), "{out:?}");
}

/// Review 7: `Channel::try_peek` ran the value's `Clone` while it held a
/// reference into the channel's buffer, and the clone could re-enter the
/// channel (its lease nests for the same fiber): a `try_recv` inside `clone`
/// popped and dropped the value being cloned (heap use-after-free under
/// AddressSanitizer). While a peek clones, every other call on the channel
/// is now refused with `WrongRuntime`, and the peeked value is intact.
#[test]
fn a_peek_clone_that_reenters_the_channel_is_refused() {
    use std::cell::Cell;
    use std::sync::atomic::AtomicBool;

    use filament::sync::{TryRecvError, TrySendError};

    static NESTED_TOOK_THE_VALUE: AtomicBool = AtomicBool::new(false);

    struct Msg<'a> {
        ch: &'a Cell<Option<&'a Channel<Msg<'a>, 2>>>,
        fib: &'a filament::Fiber<'static>,
        data: String,
        nested: Cell<Option<(bool, bool)>>,
    }
    impl Clone for Msg<'_> {
        fn clone(&self) -> Self {
            let mut nested = None;
            if let Some(ch) = self.ch.get() {
                let recv = match ch.try_recv(self.fib) {
                    Ok(v) => {
                        // The bug: the value under the peek was popped. Leak
                        // it so the failing run reads no freed memory.
                        NESTED_TOOK_THE_VALUE.store(true, Ordering::SeqCst);
                        std::mem::forget(v);
                        false
                    }
                    Err(e) => e == TryRecvError::WrongRuntime,
                };
                let spare = Msg { ch: self.ch, fib: self.fib, data: String::new(), nested: Cell::new(None) };
                let send = matches!(ch.try_send(self.fib, spare), Err(TrySendError::WrongRuntime(_)));
                nested = Some((recv, send));
            }
            Msg { ch: self.ch, fib: self.fib, data: self.data.clone(), nested: Cell::new(nested) }
        }
    }

    let rt = Runtime::<'static, 1>::new();
    let h = rt
        .spawn(stack(), |fib| {
            let slot: &Cell<Option<&Channel<Msg<'_>, 2>>> = Box::leak(Box::new(Cell::new(None)));
            let ch: &Channel<Msg<'_>, 2> = Box::leak(Box::new(Channel::new()));
            slot.set(Some(ch));
            ch.try_send(fib, Msg { ch: slot, fib, data: "A".repeat(64), nested: Cell::new(None) }).ok().unwrap();
            let peeked = ch.try_peek(fib).ok().unwrap();
            // After the peek the channel works again and still holds the value.
            let after = ch.try_recv(fib).ok().map(|m| m.data);
            (peeked.data.clone(), peeked.nested.get(), after, ch.len(fib).unwrap())
        })
        .ok()
        .unwrap();
    rt.run().unwrap();
    let (data, nested, after, len) = rt.take(h).ok().unwrap();
    assert!(!NESTED_TOOK_THE_VALUE.load(Ordering::SeqCst), "a try_recv inside the peek's clone took the peeked value");
    assert_eq!(nested, Some((true, true)), "calls inside the peek's clone must fail with WrongRuntime");
    assert_eq!(data, "A".repeat(64));
    assert_eq!(after.as_deref(), Some("A".repeat(64).as_str()));
    assert_eq!(len, 0);
}

/// A spawn into a full table adopts dropped handles, dropping their results;
/// a result whose `Drop` panics unwinds out of that spawn, and the spawn's own
/// closure and stack are dropped on the way (the stack's claim is released:
/// the static stack can be claimed again). `spawn` catches that panic in its
/// out-of-line slot reclaim and resumes it after dropping both, so its hot
/// path keeps the stack token in registers.
#[test]
fn a_panicking_orphan_result_unwinds_out_of_spawn_dropping_its_closure_and_stack() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static STACK_A: filament::StaticStack<{ 64 * 1024 }> = filament::StaticStack::new();
    static STACK_B: filament::StaticStack<{ 64 * 1024 }> = filament::StaticStack::new();
    static CLOSURE_DROPPED: AtomicBool = AtomicBool::new(false);
    struct Flag;
    impl Drop for Flag {
        fn drop(&mut self) {
            CLOSURE_DROPPED.store(true, Ordering::SeqCst);
        }
    }
    let rt = Box::new(Runtime::<'static, 1>::new());
    let boom = rt.spawn(STACK_A.claim().unwrap(), |_| BoomOnDrop).unwrap();
    rt.run().unwrap();
    drop(boom); // the slot now holds a finished fiber whose handle is gone
    let flag = Flag;
    let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.spawn_detached(STACK_B.claim().unwrap(), move |_| drop(flag)).map(|_| ())
    }));
    let panic = spawned.expect_err("the orphan's result panicked in its drop");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"result dropped"));
    assert!(CLOSURE_DROPPED.load(Ordering::SeqCst), "the spawn's closure was dropped by the unwind");
    assert!(!STACK_B.is_claimed(), "the spawn's stack was released by the unwind");
    // The orphan's slot was freed before its result was dropped: the runtime
    // is usable, and its stack is back.
    assert!(!STACK_A.is_claimed());
    rt.spawn_detached(STACK_B.claim().unwrap(), |_| ()).unwrap();
    rt.run().unwrap();
}
