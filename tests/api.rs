//! An API that does not bite (issue 13): each test pins one promise.

use std::sync::{Arc, Mutex as StdMutex};

use filament::{IrqSignal, Runtime, Stack, Ticks};

fn stack() -> Stack<'static> {
    Stack::host(256 * 1024).expect("mmap stack")
}

static FOREVER: IrqSignal = IrqSignal::new();

/// `Ticks::MAX` as a timeout means "no timeout". Under virtual time the
/// runtime used to jump its clock to the deadline `u64::MAX` and time the
/// wait out at once.
#[test]
fn a_timeout_of_ticks_max_waits_forever() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt.spawn(stack(), |fib| FOREVER.wait_timeout(fib, Ticks::MAX)).unwrap();
    let notifier = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        FOREVER.notify_from_isr();
    });
    rt.run().unwrap();
    notifier.join().unwrap();
    assert_eq!(rt.take(h).unwrap(), Ok(1));
}

/// `sleep(0)` lets the other ready fibers run first (`vTaskDelay(0)`), it does
/// not return at once.
#[test]
fn sleep_zero_yields_to_the_other_ready_fibers() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let trace = Arc::new(StdMutex::new(Vec::new()));
    let (ta, tb) = (trace.clone(), trace.clone());
    let a = rt
        .spawn(stack(), move |fib| {
            ta.lock().unwrap().push("a1");
            fib.sleep(0);
            ta.lock().unwrap().push("a2");
        })
        .unwrap();
    let b = rt.spawn(stack(), move |_| tb.lock().unwrap().push("b1")).unwrap();
    rt.run().unwrap();
    rt.take(a).unwrap();
    rt.take(b).unwrap();
    assert_eq!(*trace.lock().unwrap(), ["a1", "b1", "a2"]);
}

fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
fn is_debug<T: std::fmt::Debug>() {}
fn is_send<T: Send>() {}

/// Error types go into `Box<dyn Error + Send + Sync>` (and so `anyhow`) with
/// `?`; every public type is `Debug`; an `IrqSignal` can be moved to another
/// thread (a `SpawnError` used to be `!Sync` through its stack, an
/// `IrqSignal` `!Send`, a `StaticStack` not `Debug`).
#[test]
fn errors_are_send_sync_errors_and_types_are_debug() {
    is_error::<filament::RunError>();
    is_error::<filament::JoinError<u32>>();
    is_error::<filament::SpawnError<'static, fn(&filament::Fiber<'static>)>>();
    is_error::<filament::StackError>();
    is_error::<filament::IrqError>();
    is_error::<filament::sync::WaitError>();
    is_error::<filament::sync::SendError<u32>>();
    is_error::<filament::sync::RecvError>();
    is_send::<IrqSignal>();
    is_debug::<filament::StaticStack<4096>>();
    is_debug::<IrqSignal>();
    fn spawn_with_question_mark() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let rt = Runtime::<'static, 1>::new();
        let h = rt.spawn(stack(), |_| 1)?;
        rt.run()?;
        assert_eq!(rt.take(h)?, 1);
        Ok(())
    }
    spawn_with_question_mark().unwrap();
}

/// `Full` says how many slots hold finished fibers nobody took, so a leak of
/// dropped handles is visible in the error.
#[test]
fn full_counts_finished_untaken_fibers() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let _a = rt.spawn(stack(), |_| ()).unwrap();
    let _b = rt.spawn(stack(), |_| ()).unwrap();
    rt.run().unwrap();
    let err = rt.spawn(stack(), |_| ()).unwrap_err();
    assert_eq!(err.kind(), filament::SpawnErrorKind::Full { capacity: 2, finished_untaken: 2 });
    assert!(err.to_string().contains("2 of them finished"), "{err}");
}

static STUCK: filament::sync::Channel<u32, 1> = filament::sync::Channel::new();

/// Deadlock reports people can act on: addresses in hex, "1 fiber" not
/// "1 fibers", no trailing `;`, the report's fibers as a slice.
#[test]
fn deadlock_reports_read_well() {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let _h = rt.spawn_named("reader", stack(), |fib| STUCK.recv(fib)).unwrap();
    let Err(filament::RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
    let text = report.to_string();
    let addr = &raw const STUCK as usize;
    assert_eq!(report.fibers().len(), 1);
    assert_eq!(report.count(), 1);
    assert!(text.starts_with("deadlock: 1 fiber blocked: #0.0 \"reader\""), "{text}");
    assert!(text.contains(&format!("{addr:#x}")) || text.contains("0x"), "{text}");
    assert!(!text.ends_with(';'), "{text}");
}

static NEVER_RAISED: IrqSignal = IrqSignal::new();
static RAISED_LATER: IrqSignal = IrqSignal::new();

/// A fiber waiting on a signal nobody raises made plain `run()` spin forever.
/// `run_for` gives up after a number of ticks and names the fibers still
/// waiting (and the runtime stays usable).
#[test]
fn run_for_stops_and_names_the_fibers_still_waiting() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt.spawn_named("irq-waiter", stack(), |fib| NEVER_RAISED.wait(fib)).unwrap();
    let err = rt.run_for(&mut filament::host::HostClock::new(), 20).unwrap_err();
    let filament::RunError::TimedOut(report) = err else { panic!("expected TimedOut, got {err}") };
    assert_eq!(report.fibers().len(), 1);
    assert!(report.to_string().contains("\"irq-waiter\" on interrupt signal 0x"), "{report}");
    // The waiter was cancelled (it unwound, nothing is left suspended) and
    // the runtime is still usable.
    assert!(matches!(rt.take(h), Err(filament::JoinError::Cancelled)));
    NEVER_RAISED.notify_from_isr();
    let again = rt.spawn(stack(), |fib| NEVER_RAISED.wait(fib)).unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(again).unwrap(), Ok(1));
}

/// With only interrupt sources to wait for, the default (virtual-time) idle
/// hook parks the thread under `std` instead of spinning: a 200 ms wait costs
/// a bounded number of idle calls (one per millisecond at most), not millions.
#[test]
fn the_default_idle_parks_instead_of_spinning() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt.spawn(stack(), |fib| RAISED_LATER.wait(fib)).unwrap();
    let notifier = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(200));
        RAISED_LATER.notify_from_isr();
    });
    rt.run().unwrap();
    notifier.join().unwrap();
    assert_eq!(rt.take(h).unwrap(), Ok(1));
    let idles = rt.stats().unwrap().idles;
    assert!(idles < 10_000, "{idles} idle calls in 200 ms: spinning");
}

static INBOX: filament::sync::Channel<u32, 1> = filament::sync::Channel::new().named("inbox");
static GATE: filament::sync::Mutex<()> = filament::sync::Mutex::new(()).named("gate");

/// Primitives carry a name that reports show: the deadlock report, the
/// fiber snapshot and the runtime's `Debug` table.
#[test]
fn named_primitives_show_in_reports() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let reader = rt.spawn_named("reader", stack(), |fib| INBOX.recv(fib).unwrap()).unwrap();
    let reader_id = reader.id();
    let watcher = rt
        .spawn(stack(), move |fib| {
            let info = fib.fiber_info(reader_id).unwrap();
            INBOX.send(fib, 7).unwrap();
            info.waiting_in
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(watcher).unwrap(), "inbox");
    assert_eq!(rt.take(reader).unwrap(), 7);

    let _holder = rt
        .spawn_named("holder", stack(), |fib| {
            let _g = GATE.lock(fib).unwrap();
            INBOX.recv(fib)
        })
        .unwrap();
    let _blocked = rt.spawn_named("blocked", stack(), |fib| GATE.lock(fib).map(drop)).unwrap();
    let Err(filament::RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
    let text = report.to_string();
    assert!(text.contains("\"holder\" on recv on channel 0x") && text.contains("\"inbox\""), "{text}");
    assert!(text.contains("\"blocked\" on mutex 0x") && text.contains("\"gate\""), "{text}");
    assert_eq!(report.fibers()[1].object, "gate");
}

static LATE: IrqSignal = IrqSignal::new();

/// Review round 2: `run_for` with a limit that saturates to `Ticks::MAX`
/// ("never") timed out at once and left the runtime's clock at `u64::MAX`.
#[test]
fn run_for_with_an_unreachable_limit_is_no_limit() {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt.spawn(stack(), |fib| LATE.wait(fib)).unwrap();
    let notifier = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        LATE.notify_from_isr();
    });
    rt.run_for(&mut filament::NoIdle, Ticks::MAX).unwrap();
    notifier.join().unwrap();
    assert_eq!(rt.take(h).unwrap(), Ok(1));
    let h = rt.spawn(stack(), |fib| fib.now()).unwrap();
    rt.run().unwrap();
    assert!(rt.take(h).unwrap() < 1_000_000, "the runtime's clock jumped to the limit");
}

/// A clock ahead of the runtime.
struct AheadClock(Ticks);

impl filament::Idle for AheadClock {
    fn idle(&mut self, _now: Ticks, next: Option<Ticks>) -> Ticks {
        self.0 = next.unwrap_or(self.0).max(self.0);
        self.0
    }
    fn now(&mut self) -> Option<Ticks> {
        Some(self.0)
    }
}

/// Review round 2: `run_for` measured its limit from the runtime's stale
/// time, not the clock's first reading: a clock already at 1500 and a limit
/// of 1000 timed out a 50-tick sleep at once.
#[test]
fn run_for_counts_from_the_clocks_first_reading() {
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt.spawn_named("sleeper", stack(), |fib| fib.sleep(50)).unwrap();
    rt.run_for(&mut AheadClock(1500), 1000).unwrap();
    rt.take(h).unwrap();
}

/// `spawn_local` runs closures that are not `Send` (here an `Rc<RefCell>`
/// shared by two fibers); while such a fiber (or its result) exists, the
/// runtime belongs to the spawning thread: another thread can neither run it
/// nor spawn local fibers on it, and gets a clear error instead.
#[test]
fn local_fibers_share_rc_and_pin_the_runtime_to_their_thread() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let rt: &'static Runtime<'static, 4> = Box::leak(Box::new(Runtime::new()));
    let shared = Rc::new(RefCell::new(0u32));
    let (a, b) = (shared.clone(), shared.clone());
    let ha = rt
        .spawn_local(stack(), move |fib| {
            *a.borrow_mut() += 1;
            fib.yield_now();
            *a.borrow_mut() += 10;
            Rc::strong_count(&a) // a non-Send result
        })
        .unwrap();
    let hb = rt.spawn_local(stack(), move |_| *b.borrow_mut() += 100).unwrap();
    // Another thread may not run it now, nor add local fibers.
    std::thread::spawn(move || {
        assert_eq!(rt.run(), Err(filament::RunError::WrongThread));
        let err = rt.spawn_local(stack(), |_| ()).unwrap_err();
        assert_eq!(err.kind(), filament::SpawnErrorKind::WrongThread);
    })
    .join()
    .unwrap();
    rt.run().unwrap();
    assert_eq!(*shared.borrow(), 111);
    assert!(rt.take(ha).unwrap() >= 1);
    rt.take(hb).unwrap();
    // Every local fiber is gone: any thread may run the runtime again.
    std::thread::spawn(move || {
        let h = rt.spawn(stack(), |_| 5).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), 5);
    })
    .join()
    .unwrap();
}

/// A dropped `JoinHandle` detaches its fiber (as std's and tokio's do): a
/// loop of `let _ = rt.spawn(..)` used to end in `Full` although every fiber
/// had finished.
#[test]
fn dropped_handles_do_not_leak_slots() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let drops = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    struct Counted(Arc<std::sync::atomic::AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    for round in 0..50 {
        let d = drops.clone();
        let _ = rt.spawn(stack(), move |_| Counted(d)).unwrap_or_else(|e| panic!("round {round}: {e}"));
        rt.run().unwrap();
    }
    assert_eq!(drops.load(std::sync::atomic::Ordering::SeqCst), 50, "every result dropped exactly once");
    // Dropped inside fibers too, with the table full of finished fibers.
    let h = rt
        .spawn(stack(), |fib| {
            for _ in 0..20 {
                let _ = fib.spawn(stack(), |_| ()).unwrap();
                fib.yield_now();
            }
        })
        .unwrap();
    rt.run().unwrap();
    rt.take(h).unwrap();
    assert_eq!(rt.stats().unwrap().live, 0);
}

/// Review round 3: a local fiber's handle dropped on its own thread, which
/// then exits, pinned the runtime to that dead thread for good (its note was
/// thrown away when another thread adopted it). Now the other thread leaks
/// the result (it is not its to drop) and frees the slot.
#[test]
fn a_dropped_local_handle_does_not_pin_the_runtime_to_a_dead_thread() {
    static RT: Runtime<'static, 2> = Runtime::new();
    std::thread::spawn(|| {
        let h = RT.spawn_local(stack(), |_| std::rc::Rc::new(1)).unwrap();
        RT.run().unwrap();
        drop(h);
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        let h = RT.spawn(stack(), |_| 2).unwrap();
        assert_eq!(RT.run(), Ok(()));
        assert_eq!(RT.take(h).unwrap(), 2);
        assert_eq!(RT.stats().unwrap().live, 0);
    })
    .join()
    .unwrap();
}

/// Review round 3: handles that outlive their runtime (returned from a
/// scope, or inside a result the runtime drops) left notes nobody would ever
/// adopt; 1 024 of them filled the table and turned detach-on-drop off for
/// the whole process.
#[test]
fn handles_outliving_their_runtime_leave_no_notes() {
    for _ in 0..1100 {
        let escaped = Runtime::<2>::scope(|rt| {
            let parent = rt.spawn(stack(), |fib| fib.spawn(stack(), |_| ()).unwrap()).unwrap();
            rt.run().unwrap();
            rt.take(parent).unwrap()
        });
        drop(escaped); // its runtime is gone
        let rt = Box::new(Runtime::<'static, 2>::new());
        let parent = rt.spawn(stack(), |fib| fib.spawn(stack(), |_| ()).unwrap()).unwrap();
        rt.run().unwrap();
        let _child_handle_in_result = rt.take(parent);
        drop(rt); // drops nothing of the handle's; the handle outlives it
    }
    // Detach-on-drop still works.
    let rt = Box::new(Runtime::<'static, 2>::new());
    for round in 0..10 {
        let _ = rt.spawn(stack(), |_| ()).unwrap_or_else(|e| panic!("round {round}: {e}"));
        rt.run().unwrap();
    }
}

/// Final review: a `spawn_local` fiber that never ran, whose handle was
/// dropped on its thread before that thread exited, pinned a `static`
/// runtime to the dead thread for good. Another thread now leaks its closure
/// (it is not its to drop) and frees the slot.
#[test]
fn a_never_started_local_fiber_does_not_pin_the_runtime() {
    static RT: Runtime<'static, 2> = Runtime::new();
    std::thread::spawn(|| {
        let h = RT.spawn_local(stack(), |_| std::rc::Rc::new(1)).unwrap();
        drop(h);
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        let h = RT.spawn(stack(), |_| 2).unwrap();
        assert_eq!(RT.run(), Ok(()));
        assert_eq!(RT.take(h).unwrap(), 2);
        assert_eq!(RT.stats().unwrap().live, 0);
    })
    .join()
    .unwrap();
}

/// Final review: once the table of live runtimes was full, runtimes that
/// found no entry left notes nobody could ever clear, which filled the note
/// table and turned detach-on-drop off for every runtime in the process.
#[test]
fn a_full_live_table_does_not_disable_detach_on_drop() {
    let out = filament::host::run_in_child("a_full_live_table_does_not_disable_detach_on_drop", || {
        // 4 096 live runtimes fill the table (each registers at first use).
        let mut fillers: Vec<Box<Runtime<'static, 1>>> = Vec::new();
        for _ in 0..4096 {
            let rt = Box::new(Runtime::new());
            let _ = rt.stats();
            fillers.push(rt);
        }
        for _ in 0..1100 {
            let rt = Box::new(Runtime::<'static, 1>::new());
            let h = rt.spawn(stack(), |_| ()).unwrap();
            rt.run().unwrap();
            drop(rt);
            drop(h);
        }
        // A runtime that does find an entry (one filler gone) still detaches
        // its dropped handles' fibers: the note table is not full of notes
        // for runtimes that are gone.
        drop(fillers.pop());
        let rt = Box::new(Runtime::<'static, 2>::new());
        for round in 0..10 {
            let _ = rt.spawn(stack(), |_| ()).unwrap_or_else(|e| panic!("round {round}: {e}"));
            rt.run().unwrap();
        }
        println!("DETACH-STILL-WORKS");
    });
    assert!(out.success() && out.stdout.contains("DETACH-STILL-WORKS"), "{out:?}");
}

/// Review 8: a runtime dropped on another thread than its local fibers'
/// skipped those slots entirely, so their stacks were never released (a
/// `StaticStack` stayed claimed for the rest of the process), although a
/// dropped handle on another thread frees them (`detach_orphan`). The
/// closures and results stay leaked (they belong to the local thread); the
/// stacks come back.
#[test]
fn a_runtime_dropped_on_another_thread_releases_local_fibers_stacks() {
    static FINISHED: filament::StaticStack<65536> = filament::StaticStack::new();
    static NEVER_STARTED: filament::StaticStack<65536> = filament::StaticStack::new();
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt.spawn_local(FINISHED.claim().unwrap(), |_| std::rc::Rc::new(5)).ok().unwrap();
    rt.run().unwrap();
    drop(h);
    let _unstarted = rt.spawn_local(NEVER_STARTED.claim().unwrap(), |_| std::rc::Rc::new(6)).ok().unwrap();
    std::thread::spawn(move || drop(rt)).join().unwrap();
    assert!(!FINISHED.is_claimed(), "a finished local fiber's stack stayed claimed");
    assert!(!NEVER_STARTED.is_claimed(), "a never-started local fiber's stack stayed claimed");
}

/// `Runtime::set_now` works between runs only: during `run` (from a fiber or
/// from the idle hook) it answers `false` and changes nothing; the hook moves
/// the clock by returning the new time. Its doc used to say it was "usually
/// called by the idle hook", where it always fails.
#[test]
fn set_now_works_between_runs_and_the_idle_hook_returns_the_time_instead() {
    static RT: Runtime<'static, 2> = Runtime::new();
    let rt = &RT;
    assert!(rt.set_now(100));
    let rt_ref = rt;
    let h = rt
        .spawn(stack(), move |fib| {
            let from_fiber = rt_ref.set_now(1_000);
            let before = fib.now();
            fib.sleep(10);
            (from_fiber, before, fib.now())
        })
        .unwrap();
    let mut hook_calls = Vec::new();
    rt.run_with_idle(&mut |now: Ticks, next: Option<Ticks>| {
        hook_calls.push(rt_ref.set_now(5_000));
        next.unwrap_or(now) + 1
    })
    .unwrap();
    assert_eq!(rt.take(h).unwrap(), (false, 100, 111));
    assert_eq!(hook_calls, [false]);
    for (set, want) in [(50, 111), (200, 200)] {
        assert!(rt.set_now(set)); // between runs; never backwards
        let h = rt.spawn(stack(), |fib| fib.now()).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), want);
    }
}
