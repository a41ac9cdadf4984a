//! `Runtime::lock` (the `Locked` guard: calls under one lock acquisition) and
//! `take_with_stack` (the stack token handed back instead of released).

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use filament::{JoinError, Locked, RunError, Runtime, SpawnErrorKind, Stack, StaticStack};

#[test]
fn a_locked_runtime_spawns_runs_and_takes_in_fifo_order() {
    static STACKS: [StaticStack<65536>; 3] = [const { StaticStack::new() }; 3];
    let rt = Runtime::<'static, 4>::new();
    let order = std::sync::Mutex::new(Vec::new());
    let order = &*Box::leak(Box::new(order));
    let locked = rt.lock().unwrap();
    let mut handles = Vec::new();
    for (i, s) in STACKS.iter().enumerate() {
        handles.push(
            locked
                .spawn(s.claim().unwrap(), move |fib| {
                    order.lock().unwrap().push(i);
                    fib.yield_now();
                    order.lock().unwrap().push(10 + i);
                    i * 3
                })
                .unwrap(),
        );
    }
    locked.run().unwrap();
    let values: Vec<usize> = handles.into_iter().map(|h| locked.take(h).unwrap()).collect();
    assert_eq!(values, [0, 3, 6]);
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 10, 11, 12]);
    assert!(STACKS.iter().all(|s| !s.is_claimed()), "take released every stack");
    let dbg = format!("{locked:?}");
    assert!(dbg.starts_with("Locked "), "{dbg}");
    drop(locked);
    rt.debug_check_invariants().unwrap();
    assert_eq!(rt.stats().unwrap().spawns, 3);
    assert_eq!(rt.stats().unwrap().live, 0);
}

#[test]
fn the_runtime_is_busy_while_locked_from_any_thread() {
    static STACK: StaticStack<65536> = StaticStack::new();
    let rt = Runtime::<'static, 2>::new();
    let locked = rt.lock().unwrap();
    assert!(rt.lock().is_none());
    assert!(matches!(rt.run(), Err(RunError::Busy)));
    assert!(rt.stats().is_none());
    let err = rt.spawn(STACK.claim().unwrap(), |_| 1).unwrap_err();
    assert_eq!(err.kind(), SpawnErrorKind::Busy);
    let (stack, f) = err.into_parts();
    let h = locked.spawn(stack, f).unwrap();
    let h = match rt.take(h) {
        Err(JoinError::Busy(h)) => h,
        other => panic!("expected Busy, got {other:?}"),
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(rt.lock().is_none());
            assert!(matches!(rt.run(), Err(RunError::Busy)));
        });
    });
    locked.run().unwrap();
    assert_eq!(locked.take(h).unwrap(), 1);
    drop(locked);
    // Released: usable again, from another thread too.
    std::thread::scope(|s| {
        s.spawn(|| assert!(rt.lock().is_some()));
    });
    assert!(rt.stats().is_some());
}

#[test]
fn take_with_stack_hands_the_same_stack_back_still_claimed() {
    static STACK: StaticStack<65536> = StaticStack::new();
    let rt = Runtime::<'static, 1>::new();
    let locked = rt.lock().unwrap();
    let mut stack = STACK.claim().unwrap();
    let lo = format!("{stack:?}");
    for i in 0..5u64 {
        let h = locked.spawn(stack, move |fib| fib.id().generation() as u64 + i).unwrap();
        locked.run().unwrap();
        let (v, back) = locked.take_with_stack(h).unwrap();
        assert_eq!(v, 2 * i, "generation counts the slot's earlier fibers");
        assert!(STACK.is_claimed(), "the token came back: the claim stays");
        assert_eq!(format!("{back:?}"), lo, "the same memory, size and painting");
        stack = back;
    }
    drop(locked);
    // The runtime's own take_with_stack too.
    let h = rt.spawn(stack, |_| "done").unwrap();
    rt.run().unwrap();
    let (v, stack) = rt.take_with_stack(h).unwrap();
    assert_eq!(v, "done");
    assert!(STACK.is_claimed());
    drop(stack);
    assert!(!STACK.is_claimed(), "dropping the handed-back token releases the claim");
    rt.debug_check_invariants().unwrap();
    assert_eq!(rt.stats().unwrap().live, 0);
}

#[test]
fn take_with_stack_keeps_painting_and_host_stacks_work() {
    let rt = Runtime::<'static, 1>::new();
    let mut stack = Stack::host(64 * 1024).unwrap();
    assert!(stack.is_painted());
    for round in 0..3 {
        let h = rt
            .spawn(stack, |fib| {
                let buf = std::hint::black_box([7u8; 2048]);
                fib.yield_now();
                buf.iter().map(|&b| b as usize).sum::<usize>()
            })
            .unwrap();
        let id = h.id();
        rt.run().unwrap();
        let hw = rt.stack_high_water(id).expect("painted: measured");
        assert!(hw >= 2048, "round {round}: high water {hw}");
        let (v, back) = rt.take_with_stack(h).unwrap();
        assert_eq!(v, 7 * 2048);
        assert_eq!(back.size(), 64 * 1024);
        assert!(back.is_painted());
        stack = back;
    }
    let stack = stack.without_painting();
    assert!(!stack.is_painted());
    assert_eq!(stack.size(), 64 * 1024, "the flag does not change the size");
    let h = rt.spawn(stack, |_| 5).unwrap();
    let id = h.id();
    rt.run().unwrap();
    assert_eq!(rt.stack_high_water(id), None);
    let (v, stack) = rt.take_with_stack(h).unwrap();
    assert_eq!(v, 5);
    drop(stack); // unmapped here
}

#[test]
fn take_with_stack_of_a_failed_fiber_releases_the_stack() {
    static STACK: StaticStack<65536> = StaticStack::new();
    let rt = Runtime::<'static, 1>::new();
    let h = rt.spawn(STACK.claim().unwrap(), |_| -> u32 { panic!("boom") }).unwrap();
    rt.run().unwrap();
    match rt.take_with_stack(h) {
        Err(JoinError::Panicked(m)) => assert_eq!(m.as_str(), "boom"),
        other => panic!("expected Panicked, got {:?}", other.map(|(v, _)| v)),
    }
    assert!(!STACK.is_claimed(), "released as take releases it");
    rt.debug_check_invariants().unwrap();
}

#[test]
fn take_with_stack_of_an_unfinished_fiber_gives_the_handle_back() {
    static STACK: StaticStack<65536> = StaticStack::new();
    let rt = Runtime::<'static, 1>::new();
    let h = rt.spawn(STACK.claim().unwrap(), |_| 9).unwrap();
    let h = match rt.take_with_stack(h) {
        Err(JoinError::NotFinished(h)) => h,
        other => panic!("expected NotFinished, got {:?}", other.map(|(v, _)| v)),
    };
    assert!(STACK.is_claimed());
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 9);
    assert!(!STACK.is_claimed());
}

#[test]
fn take_with_stack_refuses_another_runtimes_handle() {
    static STACK: StaticStack<65536> = StaticStack::new();
    let a = Runtime::<'static, 1>::new();
    let b = Runtime::<'static, 1>::new();
    let h = a.spawn(STACK.claim().unwrap(), |_| 1).unwrap();
    a.run().unwrap();
    let h = match b.take_with_stack(h) {
        Err(JoinError::WrongRuntime(h)) => h,
        other => panic!("expected WrongRuntime, got {:?}", other.map(|(v, _)| v)),
    };
    assert_eq!(a.take(h).unwrap(), 1);
}

thread_local! {
    static GUARD: Cell<Option<&'static Locked<'static, 'static, 2>>> = const { Cell::new(None) };
}

static NESTED: Runtime<'static, 2> = Runtime::new();

#[test]
fn calls_nested_in_a_guard_call_are_busy() {
    static STACKS: [StaticStack<65536>; 2] = [const { StaticStack::new() }; 2];
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    // A guard reachable from fibers on this thread (leaked: `'static`).
    let guard: &'static Locked<'static, 'static, 2> = Box::leak(Box::new(NESTED.lock().unwrap()));
    GUARD.with(|g| g.set(Some(guard)));
    let h = guard
        .spawn(STACKS[0].claim().unwrap(), |_| {
            let l = GUARD.with(|g| g.get()).unwrap();
            // Inside `run`: every call through the guard is refused.
            assert!(matches!(l.run(), Err(RunError::Busy)));
            let e = l.spawn(STACKS[1].claim().unwrap(), |_| ()).unwrap_err();
            assert_eq!(e.kind(), SpawnErrorKind::Busy);
            drop(e); // releases STACKS[1]
            assert_eq!(format!("{l:?}"), "Locked { <in a call> }");
            // And through the runtime: its lock is held.
            assert!(matches!(NESTED.run(), Err(RunError::Busy)));
            SEEN.fetch_add(1, Ordering::Relaxed);
            4
        })
        .unwrap();
    guard.run().unwrap();
    assert_eq!(SEEN.load(Ordering::Relaxed), 1);
    // The guard works again once the call is over.
    assert_eq!(guard.take(h).unwrap(), 4);
    assert!(!STACKS[0].is_claimed() && !STACKS[1].is_claimed());
    assert!(NESTED.lock().is_none(), "the leaked guard keeps the lock for good");
}

#[test]
fn a_result_dropped_inside_a_guard_call_cannot_reenter_it() {
    static STACK: StaticStack<65536> = StaticStack::new();
    static REFUSED: AtomicUsize = AtomicUsize::new(0);
    static RT: Runtime<'static, 1> = Runtime::new();
    thread_local! {
        static G: Cell<Option<&'static Locked<'static, 'static, 1>>> = const { Cell::new(None) };
    }
    struct Reenter;
    impl Drop for Reenter {
        fn drop(&mut self) {
            if let Some(l) = G.with(|g| g.get())
                && matches!(l.run(), Err(RunError::Busy))
            {
                REFUSED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let guard: &'static Locked<'static, 'static, 1> = Box::leak(Box::new(RT.lock().unwrap()));
    G.with(|g| g.set(Some(guard)));
    let h = guard.spawn(STACK.claim().unwrap(), |_| Reenter).unwrap();
    guard.run().unwrap();
    // The outcome's Drop runs inside `detach`, a guard call... (no `detach`
    // on the guard: the handle's drop leaves a note; the runtime adopts it
    // at its next spawn when full, inside `spawn`).
    drop(h);
    let h2 = guard.spawn(Stack::host(65536).unwrap(), |_| 0u8);
    assert!(h2.is_ok(), "the orphan's slot was adopted and freed");
    assert_eq!(REFUSED.load(Ordering::Relaxed), 1, "the Drop's nested run was refused");
    guard.run().unwrap();
    assert_eq!(guard.take(h2.unwrap()).unwrap(), 0);
}
