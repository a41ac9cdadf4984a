//! The fiber kernel core, exercised for real in host processes.

use std::sync::Arc;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use filament::{
    Fiber, JoinError, MIN_STACK_SIZE, RunError, Runtime, SpawnErrorKind, Stack, StackError, StaticStack, WaitReason,
};

fn stack() -> Stack<'static> {
    Stack::host(256 * 1024).expect("mmap stack")
}

/// A runtime on the heap (large capacities would not fit a test thread's stack).
fn boxed<const N: usize>() -> Box<Runtime<'static, N>> {
    Box::new(Runtime::new())
}

#[test]
fn fifo_order_is_exact() {
    let rt = boxed::<8>();
    let trace = Arc::new(StdMutex::new(Vec::new()));
    // Spawn order first, then yield order; a fiber spawned by a running fiber
    // goes behind everything already ready.
    for name in ["a", "b", "c"] {
        let trace = trace.clone();
        rt.spawn(stack(), move |fib| {
            for step in 0..3 {
                trace.lock().unwrap().push(format!("{name}{step}"));
                if name == "b" && step == 0 {
                    let t2 = trace.clone();
                    fib.spawn_detached(stack(), move |_| t2.lock().unwrap().push("d0".to_string())).ok().unwrap();
                }
                fib.yield_now();
            }
        })
        .unwrap()
        .id();
    }
    rt.run().unwrap();
    let got = trace.lock().unwrap().join(" ");
    assert_eq!(got, "a0 b0 c0 a1 d0 b1 c1 a2 b2 c2");
}

#[test]
fn thousand_fibers_thousand_yields_lose_no_step() {
    const FIBERS: usize = 1000;
    const YIELDS: usize = 1000;
    let rt = boxed::<FIBERS>();
    let counters: Arc<Vec<AtomicUsize>> = Arc::new((0..FIBERS).map(|_| AtomicUsize::new(0)).collect());
    let order_errors = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..FIBERS {
        let counters = counters.clone();
        let order_errors = order_errors.clone();
        let st = Stack::host(16 * 1024).unwrap().without_painting();
        handles.push(
            rt.spawn(st, move |fib| {
                for step in 0..YIELDS {
                    // Round-robin: when fiber i runs its step s, every fiber
                    // before it already did step s, every fiber after it s-1.
                    let prev = counters[(i + FIBERS - 1) % FIBERS].load(Ordering::Relaxed);
                    let expect = if i == 0 { step } else { step + 1 };
                    if prev != expect {
                        order_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    counters[i].fetch_add(1, Ordering::Relaxed);
                    fib.yield_now();
                }
                i
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(rt.take(h).unwrap(), i);
        assert_eq!(counters[i].load(Ordering::Relaxed), YIELDS);
    }
    assert_eq!(order_errors.load(Ordering::Relaxed), 0);
}

#[test]
fn fibers_spawn_and_join_fibers() {
    let rt = boxed::<16>();
    fn tree(fib: &Fiber<'static>, depth: u32) -> u64 {
        if depth == 0 {
            fib.yield_now();
            return 1;
        }
        let l = fib.spawn(stack(), move |f| tree(f, depth - 1)).ok().unwrap();
        let r = fib.spawn(stack(), move |f| tree(f, depth - 1)).ok().unwrap();
        fib.join(l).unwrap() + fib.join(r).unwrap()
    }
    let h = rt.spawn(stack(), |fib| tree(fib, 3)).ok().unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 8);
    assert_eq!(rt.stats().unwrap().live, 0);
}

struct Counted(Arc<AtomicUsize>, u64);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn results_with_drop_are_dropped_exactly_once() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = boxed::<8>();
    // Joined by another fiber.
    let d = drops.clone();
    let a = rt.spawn(stack(), move |fib| {
        fib.yield_now();
        Counted(d, 1)
    });
    let a = a.ok().unwrap();
    let joiner = rt
        .spawn(stack(), move |fib| {
            let v = fib.join(a).unwrap();
            v.1 + 10
        })
        .unwrap();
    // Taken after run.
    let d = drops.clone();
    let b = rt.spawn(stack(), move |_| Counted(d, 2)).ok().unwrap();
    // Never taken: dropped with the runtime.
    let d = drops.clone();
    let _c = rt.spawn(stack(), move |_| Counted(d, 3)).ok().unwrap();
    // Detached: dropped at finish.
    let d = drops.clone();
    rt.spawn_detached(stack(), move |_| Counted(d, 4)).ok().unwrap();
    // Never run: its closure (holding a Counted) dropped with the runtime.
    rt.run().unwrap();
    assert_eq!(rt.take(joiner).unwrap(), 11);
    assert_eq!(drops.load(Ordering::SeqCst), 2, "joined value and detached value");
    let b = rt.take(b).unwrap();
    assert_eq!(b.1, 2);
    drop(b);
    assert_eq!(drops.load(Ordering::SeqCst), 3);
    let d = drops.clone();
    let captured = Counted(d, 5);
    let _never = rt
        .spawn(stack(), move |_| {
            let whole = captured; // capture the whole value, not just the field
            whole.1
        })
        .unwrap();
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 5, "untaken result and unrun closure dropped once");
}

#[test]
fn hundred_thousand_spawns_through_eight_slots() {
    static STACKS: [StaticStack<8192>; 8] = [const { StaticStack::new() }; 8];
    let rt = boxed::<8>();
    let total = Arc::new(AtomicUsize::new(0));
    let mut spawned = 0usize;
    while spawned < 100_000 {
        let mut handles = Vec::new();
        for s in STACKS.iter() {
            let t = total.clone();
            let st = s.claim().expect("released after take").without_painting();
            handles.push(rt.spawn(st, move |_| t.fetch_add(1, Ordering::Relaxed)).ok().unwrap());
            spawned += 1;
        }
        // The ninth does not fit, and gets everything back.
        let extra = Stack::host(8192).unwrap();
        let marker = Arc::new(());
        let m = marker.clone();
        let err = rt.spawn(extra, move |_| Arc::strong_count(&m)).err().unwrap();
        assert_eq!(err.kind(), SpawnErrorKind::Full { capacity: 8, finished_untaken: 0 });
        let (st, f) = err.into_parts();
        assert_eq!(st.size(), 8192);
        assert_eq!(Arc::strong_count(&marker), 2, "the closure came back with its captures");
        drop(f);
        assert_eq!(Arc::strong_count(&marker), 1);
        rt.run().unwrap();
        for h in handles {
            rt.take(h).unwrap();
        }
        assert!(STACKS.iter().all(|s| !s.is_claimed()));
    }
    assert_eq!(total.load(Ordering::Relaxed), 100_000);
    assert_eq!(rt.stats().unwrap().spawns, 100_000);
}

#[test]
fn detached_fibers_recycle_slots_inside_one_run() {
    let rt = boxed::<4>();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let _spawner = rt
        .spawn(stack(), move |fib| {
            for _ in 0..10_000 {
                let d = d.clone();
                loop {
                    // Slots free up as detached fibers finish.
                    match fib.spawn_detached(Stack::host(8192).unwrap(), {
                        let d = d.clone();
                        move |_| d.fetch_add(1, Ordering::Relaxed)
                    }) {
                        Ok(_) => break,
                        Err(e) => {
                            assert_eq!(e.kind(), SpawnErrorKind::Full { capacity: 4, finished_untaken: 0 });
                            fib.yield_now();
                        }
                    }
                }
            }
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(done.load(Ordering::Relaxed), 10_000);
}

#[test]
fn over_aligned_captures_and_results() {
    #[repr(align(64))]
    #[derive(Clone, Copy)]
    struct Line([u8; 64]);
    #[repr(align(4096))]
    struct Page(u64);
    let rt = boxed::<4>();
    let line = Line([7; 64]);
    let page = Page(42);
    let h = rt
        .spawn(stack(), move |fib| {
            assert_eq!(&line as *const Line as usize % 64, 0);
            assert_eq!(&page as *const Page as usize % 4096, 0);
            fib.yield_now();
            assert_eq!(&line as *const Line as usize % 64, 0);
            (line.0.iter().map(|&b| b as u64).sum::<u64>() + page.0, Line([1; 64]))
        })
        .unwrap();
    rt.run().unwrap();
    let (sum, l) = rt.take(h).unwrap();
    assert_eq!(sum, 7 * 64 + 42);
    assert_eq!(l.0[63], 1);
}

#[test]
fn closure_too_big_for_stack_is_handed_back() {
    let rt = boxed::<4>();
    let big = [1u8; 8192];
    let st = Stack::host(4096).unwrap();
    let err = rt.spawn(st, move |_| big[0]).err().unwrap();
    match err.kind() {
        SpawnErrorKind::StackTooSmall { needed, size } => {
            assert_eq!(size, 4096);
            assert!(needed > 8192);
        }
        k => panic!("unexpected {k:?}"),
    }
    let (_stack, f) = err.into_parts();
    // The closure still works: nothing was lost.
    let rt2 = boxed::<1>();
    let h = rt2.spawn(Stack::host(512 * 1024).unwrap(), f).ok().unwrap();
    rt2.run().unwrap();
    assert_eq!(rt2.take(h).unwrap(), 1);
}

#[test]
fn too_small_and_misaligned_buffers() {
    // 16-aligned, so all 512 bytes are usable (a bare array may land anywhere).
    #[repr(align(16))]
    struct Tiny([u8; 512]);
    let mut tiny = Tiny([0u8; 512]);
    assert_eq!(
        Stack::from_slice(&mut tiny.0).unwrap_err(),
        StackError::TooSmall { min: MIN_STACK_SIZE, given: 512, usable: 512 }
    );
    // Just enough, but misaligned by 1: alignment eats into it and it is rejected
    // with both sizes.
    #[repr(align(16))]
    struct Buf([u8; 2048]);
    let mut b = Buf([0; 2048]);
    let err = Stack::from_slice(&mut b.0[1..MIN_STACK_SIZE + 1]).unwrap_err();
    assert_eq!(err, StackError::TooSmall { min: MIN_STACK_SIZE, given: MIN_STACK_SIZE, usable: MIN_STACK_SIZE - 16 });
    assert!(err.to_string().contains("1024"));
    // A misaligned but large enough buffer is aligned internally and runs fibers
    // that use SSE-aligned stack slots.
    let mut big = vec![0u8; 64 * 1024 + 3];
    let out = Runtime::<2>::scope(|rt| {
        let st = Stack::from_slice(&mut big[3..]).unwrap();
        assert_eq!(st.size() % 16, 0);
        let h = rt.spawn(st, |_| format!("{:.3}", 2.0f64.sqrt())).ok().unwrap();
        rt.run().unwrap();
        rt.take(h).unwrap()
    });
    assert_eq!(out, "1.414");
}

#[test]
fn static_stack_is_claimed_exactly_once() {
    // 16 KiB: under `std` spawn reserves room for a signal frame (~4.5 KiB).
    static S: StaticStack<16384> = StaticStack::new();
    let a = S.claim().unwrap();
    assert!(matches!(S.claim(), Err(StackError::AlreadyClaimed { size: 16384 })));
    let rt = boxed::<1>();
    let h = rt.spawn(a, |_| ()).ok().unwrap();
    assert!(S.is_claimed(), "the runtime holds the claim while the fiber exists");
    rt.run().unwrap();
    assert!(S.is_claimed(), "the outcome is still on the stack");
    rt.take(h).unwrap();
    assert!(!S.is_claimed());
}

#[test]
fn float_work_and_formatting_inside_fibers() {
    let rt = boxed::<8>();
    let mut hs = Vec::new();
    for i in 0..4 {
        hs.push(
            rt.spawn(stack(), move |fib| {
                let mut acc = 0.0f64;
                let mut s = String::new();
                for k in 1..200 {
                    acc += (k as f64 * 0.5 + i as f64).sin() / k as f64;
                    if k % 50 == 0 {
                        s += &format!("{acc:.6};{:e};", acc as f32);
                        fib.yield_now();
                    }
                }
                s
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    for (i, h) in hs.into_iter().enumerate() {
        let mut acc = 0.0f64;
        let mut s = String::new();
        for k in 1..200 {
            acc += (k as f64 * 0.5 + i as f64).sin() / k as f64;
            if k % 50 == 0 {
                s += &format!("{acc:.6};{:e};", acc as f32);
            }
        }
        assert_eq!(rt.take(h).unwrap(), s);
    }
}

#[test]
#[cfg_attr(filament_asan, ignore = "recurses to a measured stack depth (ASan redzones change every frame)")]
fn deep_recursion_uses_most_of_the_stack() {
    #[inline(never)]
    fn recurse(depth: usize, buf: &mut [u8; 256]) -> usize {
        let mut local = [depth as u8; 256];
        std::hint::black_box(&mut local);
        if depth == 0 {
            return buf[0] as usize;
        }
        recurse(depth - 1, &mut local) + local[1] as usize
    }
    let rt = boxed::<1>();
    let size = 256 * 1024;
    let h = rt
        .spawn(Stack::host(size).unwrap(), |fib| {
            let r = recurse(600, &mut [0; 256]);
            (r, fib.stack_high_water().unwrap())
        })
        .unwrap();
    let id = h.id();
    rt.run().unwrap();
    let hw_after = rt.stack_high_water(id).unwrap();
    let (_r, hw) = rt.take(h).unwrap();
    assert!(hw > size / 2, "used {hw} of {size}");
    assert!(hw < size);
    assert!(hw_after >= hw);
}

#[test]
#[cfg_attr(filament_asan, ignore = "stack bytes are not comparable under AddressSanitizer")]
fn empty_fiber_high_water_is_small() {
    let rt = boxed::<1>();
    let h = rt.spawn(stack(), |_| ()).ok().unwrap();
    let id = h.id();
    rt.run().unwrap();
    let used = rt.stack_high_water(id).unwrap();
    println!("empty fiber used {used} bytes of stack (header + payload + frames)");
    // Header, payload, initial frame and the entry glue (catch_unwind under std).
    // Release: issue 5's bar was 256 bytes with a 112-byte header; the header is
    // 144 bytes since it holds the priority, notification, suspend and cancel
    // state (measured 264 bytes in all), so the bar moves by those 32 bytes.
    // Unoptimised code (the `dev` profile, or `unopt-nodebug`: no debug
    // assertions, still unoptimised) keeps every local in its own slot; the
    // build script tells the optimisation level (`cfg!(debug_assertions)` is
    // no proxy for it).
    let limit = if cfg!(filament_unoptimized) { 2048 } else { 256 + 32 };
    assert!(used <= limit, "empty fiber used {used} bytes");
    rt.take(h).unwrap();
}

#[test]
fn runtimes_on_four_threads_at_once() {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let rt = boxed::<16>();
                let mut hs = Vec::new();
                for i in 0..16u64 {
                    hs.push(
                        rt.spawn(Stack::host(32 * 1024).unwrap(), move |fib| {
                            let mut x = i;
                            for _ in 0..10_000 {
                                x = x.wrapping_mul(6364136223846793005).wrapping_add(t);
                                fib.yield_now();
                            }
                            x
                        })
                        .unwrap(),
                    );
                }
                rt.run().unwrap();
                hs.into_iter().map(|h| rt.take(h).unwrap()).fold(0u64, |a, b| a ^ b)
            })
        })
        .collect();
    let results: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (t, r) in results.iter().enumerate() {
        let mut expect = 0;
        for i in 0..16u64 {
            let mut x = i;
            for _ in 0..10_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(t as u64);
            }
            expect ^= x;
        }
        assert_eq!(*r, expect);
    }
}

#[test]
fn a_panic_stays_in_its_fiber() {
    let rt = boxed::<4>();
    let bad = rt
        .spawn(stack(), |fib| {
            fib.yield_now();
            if fib.id().index() < 100 {
                panic!("boom in fiber {}", fib.id());
            }
            0
        })
        .unwrap();
    let good = rt
        .spawn(stack(), |fib| {
            for _ in 0..10 {
                fib.yield_now();
            }
            7
        })
        .unwrap();
    let watcher = rt.spawn(stack(), move |fib| fib.join(bad).map_err(|e| e.panic_message().map(String::from))).ok();
    rt.run().unwrap();
    assert_eq!(rt.take(good).unwrap(), 7);
    let msg = rt.take(watcher.unwrap()).unwrap().unwrap_err().unwrap();
    assert!(msg.starts_with("boom in fiber #0."), "{msg}");
}

#[test]
fn join_cycle_is_a_deadlock_report_not_a_hang() {
    let rt = boxed::<4>();
    let (tx, rx) = std::sync::mpsc::channel::<filament::JoinHandle<u32>>();
    let rx = StdMutex::new(rx);
    let a = rt
        .spawn(stack(), move |fib| {
            fib.yield_now();
            let b = rx.lock().unwrap().recv().unwrap();
            fib.join(b).map(|v| v + 1)
        })
        .unwrap();
    let a_id = a.id();
    let b = rt
        .spawn(stack(), move |fib| {
            let own = fib.id();
            let _ = own;
            // join a, which joins us
            fib.join(a).map(|r| r.unwrap_or(0)).unwrap_or(0)
        })
        .unwrap();
    let b_id = b.id();
    tx.send(b).unwrap();
    let err = rt.run().unwrap_err();
    let RunError::Deadlock(report) = err else { panic!("{err:?}") };
    assert_eq!(report.count(), 2);
    assert_eq!(report.fibers()[0].id, a_id);
    assert_eq!(report.fibers()[0].reason, WaitReason::Join(b_id));
    assert_eq!(report.fibers()[1].reason, WaitReason::Join(a_id));
    // Under std both were cancelled by unwinding before run returned. Each
    // one's handle was dropped by the other's unwinding `join`, which
    // detaches: both slots are free again, and the runtime is usable.
    assert_eq!(rt.fiber_info(a_id), None);
    assert_eq!(rt.fiber_info(b_id), None);
    assert_eq!(rt.stats().unwrap().live, 0);
    let h = rt.spawn(stack(), |_| 3).ok().unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 3);
}

#[test]
fn self_join_and_foreign_handles_are_rejected() {
    let rt1 = boxed::<2>();
    let rt2 = boxed::<2>();
    let h1 = rt1.spawn(stack(), |_| 5u8).ok().unwrap();
    let h1 = match rt2.take(h1) {
        Err(JoinError::WrongRuntime(h)) => h,
        other => panic!("{other:?}"),
    };
    let h1 = match rt1.take(h1) {
        Err(JoinError::NotFinished(h)) => h,
        other => panic!("{other:?}"),
    };
    rt1.run().unwrap();
    assert_eq!(rt1.take(h1).unwrap(), 5);
}

#[test]
fn busy_runtime_rejects_outer_calls_from_inside() {
    static RT: Runtime<'static, 4> = Runtime::new();
    static S: [StaticStack<32768>; 2] = [const { StaticStack::new() }; 2];
    let h = RT
        .spawn(S[0].claim().unwrap(), |_| {
            let err = RT.spawn(S[1].claim().unwrap(), |_| ()).err().unwrap();
            let busy = err.kind() == SpawnErrorKind::Busy;
            (busy, RT.run() == Err(RunError::Busy))
        })
        .unwrap();
    RT.run().unwrap();
    assert_eq!(RT.take(h).unwrap(), (true, true));
}

#[test]
fn runtime_may_move_between_spawn_and_run() {
    let rt: Runtime<'static, 4> = Runtime::new();
    let a = rt.spawn(stack(), |fib| {
        fib.yield_now();
        1
    });
    let b = rt.spawn(stack(), |_| 2);
    let moved = Box::new(rt);
    moved.run().unwrap();
    assert_eq!(moved.take(a.ok().unwrap()).unwrap() + moved.take(b.ok().unwrap()).unwrap(), 3);
}

#[test]
fn debug_prints_an_aligned_table() {
    let rt = boxed::<4>();
    let _a = rt.spawn_named("worker", stack(), |_| ()).ok().unwrap();
    let table = format!("{rt:?}");
    assert!(table.contains("NAME"), "{table}");
    assert!(table.contains("worker"), "{table}");
    assert!(table.contains("Ready"), "{table}");
}

#[test]
fn sleepers_wake_while_other_fibers_keep_yielding() {
    // With a clock that runs on its own (HostClock), deadlines are checked at
    // every yield, not only when the runtime idles.
    let rt = boxed::<4>();
    let woke = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let w = woke.clone();
    let sleeper = rt
        .spawn(stack(), move |fib| {
            fib.sleep(5); // 5 ms
            w.store(true, Ordering::SeqCst);
            fib.now()
        })
        .unwrap();
    let busy = rt
        .spawn(stack(), move |fib| {
            let start = std::time::Instant::now();
            let mut yields = 0u64;
            while !woke.load(Ordering::SeqCst) {
                assert!(start.elapsed().as_secs() < 10, "sleeper never woke while we yielded");
                fib.yield_now();
                yields += 1;
            }
            yields
        })
        .unwrap();
    rt.run_with_idle(&mut filament::host::HostClock::new()).unwrap();
    assert!(rt.take(sleeper).unwrap() >= 5);
    assert!(rt.take(busy).unwrap() > 0);
    assert_eq!(rt.stats().unwrap().idles, 0, "the runtime never had to idle");
}

#[test]
fn virtual_time_sleeps_are_instant_and_ordered() {
    let rt = boxed::<4>();
    let trace = Arc::new(StdMutex::new(Vec::new()));
    let mut hs = Vec::new();
    for (name, ticks) in [("c", 30u64), ("a", 10), ("b", 20), ("a2", 10)] {
        let t = trace.clone();
        hs.push(
            rt.spawn(stack(), move |fib| {
                fib.sleep(ticks);
                t.lock().unwrap().push((name, fib.now()));
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    assert_eq!(*trace.lock().unwrap(), vec![("a", 10), ("a2", 10), ("b", 20), ("c", 30)]);
    for h in hs {
        rt.take(h).unwrap();
    }
}

#[test]
fn debug_table_columns_fit_long_names() {
    let rt = boxed::<4>();
    let _a = rt.spawn_named("a-rather-long-fiber-name", stack(), |_| ()).ok().unwrap();
    let _b = rt.spawn_named("b", stack(), |_| ()).ok().unwrap();
    let table = format!("{rt:?}");
    let lines: Vec<&str> = table.lines().skip(1).collect();
    // Every row puts the STACK column at the same place as the header.
    let col = lines[0].find("STACK").unwrap() + "STACK".len();
    for row in &lines[1..] {
        assert!(row[..col].trim_end().ends_with("262144"), "misaligned row in\n{table}");
    }
}

#[test]
fn a_stale_handle_is_rejected_by_a_new_runtime_on_the_same_stack() {
    // Same slot index, generation and header address in a second runtime:
    // only the runtime serial tells them apart.
    static S: StaticStack<16384> = StaticStack::new();
    let a = Runtime::<'static, 1>::new();
    let stale = a.spawn(S.claim().unwrap(), |_| String::from("a")).ok().unwrap();
    drop(a);
    let b = Runtime::<'static, 1>::new();
    let real = b.spawn(S.claim().unwrap(), |_| [0x4141_4141_4141_4141usize, 16, 16]).ok().unwrap();
    b.run().unwrap();
    assert!(matches!(b.take(stale), Err(JoinError::WrongRuntime(_))));
    assert_eq!(b.take(real).unwrap()[1], 16);
}

#[test]
fn stats_count_every_switch_in() {
    let rt = boxed::<4>();
    let mut hs = Vec::new();
    for _ in 0..3 {
        hs.push(
            rt.spawn(stack(), |fib| {
                for _ in 0..3 {
                    fib.yield_now();
                }
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    // Each fiber: switched in to start, then once after each of its 3 yields.
    assert_eq!(rt.stats().unwrap().switches, 12);
    for h in hs {
        rt.take(h).unwrap(); // freed slots keep counting in the total
    }
    let st = rt.stats().unwrap();
    assert_eq!((st.switches, st.live, st.spawns), (12, 0, 3));
    assert!(format!("{rt:?}").contains("switches: 12"));
}
