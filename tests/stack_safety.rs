//! Stack overflows and broken canaries stop the program loudly. These run in a
//! child process (`filament::host::run_in_child`) so the test runner survives.

use filament::host::run_in_child;
use filament::{Runtime, Stack};

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(depth: u64) -> u64 {
    let mut frame = [depth; 64];
    std::hint::black_box(&mut frame);
    recurse_forever(depth + 1) + frame[3]
}

#[test]
fn guard_page_stops_an_overflow_at_once() {
    let out = run_in_child("guard_page_stops_an_overflow_at_once", || {
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _h = rt.spawn_named("deep", Stack::host(64 * 1024).unwrap(), |_| recurse_forever(0)).ok().unwrap();
        let _ = rt.run();
        println!("UNREACHABLE: the overflow went unnoticed");
    });
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    if cfg!(filament_asan) {
        // Under AddressSanitizer, its SIGSEGV handler or filament's (installed
        // after it, at the first host stack) reports the guard-page hit.
        assert!(
            out.stderr.contains("AddressSanitizer: stack-overflow")
                || out.stderr.contains("filament: fiber #0.0 \"deep\" has overflowed its 65536-byte stack"),
            "{out:?}"
        );
    } else {
        assert_eq!(out.signal, Some(libc::SIGSEGV), "{out:?}");
        // The report names the fiber (issue 13: a bare SIGSEGV said nothing).
        assert!(
            out.stderr.contains("filament: fiber #0.0 \"deep\" has overflowed its 65536-byte stack"),
            "{}",
            out.stderr
        );
    }
}

/// Recurses until `bytes` of stack are in use, then yields (a switch-out, where
/// the canary is checked).
#[inline(never)]
fn use_stack_then_yield(fib: &filament::Fiber<'static>, remaining: usize) {
    let mut frame = [0u8; 512];
    std::hint::black_box(&mut frame);
    if remaining > 512 {
        use_stack_then_yield(fib, remaining - 512);
    } else {
        fib.yield_now();
    }
    std::hint::black_box(&mut frame);
}

#[test]
fn broken_canary_names_the_fiber_and_its_stack() {
    let out = run_in_child("broken_canary_names_the_fiber_and_its_stack", || {
        // A stack without a guard page, with slack memory below it so the
        // deliberate overflow lands in our own buffer, not in foreign memory.
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 256 * 1024].into_boxed_slice());
        let (slack, stack_mem) = buf.split_at_mut(128 * 1024);
        std::hint::black_box(slack);
        let stack = Stack::from_slice(&mut stack_mem[..32 * 1024]).unwrap();
        let size = stack.size();
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _h = rt.spawn_named("overflower", stack, move |fib| use_stack_then_yield(fib, size + 8 * 1024)).ok();
        let _ = rt.run();
        println!("UNREACHABLE: the broken canary went unnoticed");
    });
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    assert_eq!(out.signal, Some(libc::SIGABRT), "{out:?}");
    assert!(
        out.stderr.contains("canary of fiber #0.0 \"overflower\" (32768-byte stack) is broken"),
        "stderr: {}",
        out.stderr
    );
}

#[test]
fn scoped_runtime_dropped_with_suspended_fibers_aborts() {
    static NEVER: filament::sync::Event = filament::sync::Event::new();
    let out = run_in_child("scoped_runtime_dropped_with_suspended_fibers_aborts", || {
        let mut buf = vec![0u8; 128 * 1024];
        Runtime::<2>::scope(|rt| {
            let _h = rt
                .spawn(Stack::from_slice(&mut buf).unwrap(), |fib| {
                    // Swallow the cancellation and block again: the fiber can
                    // never finish, its frames stay on the borrowed buffer.
                    loop {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| NEVER.wait(fib)));
                    }
                })
                .unwrap();
            let err = rt.run().unwrap_err();
            println!("run returned: {err}");
            println!("run again: {}", rt.run().unwrap_err());
        });
        println!("UNREACHABLE: the scope returned");
    });
    assert!(out.stdout.contains("run returned: deadlock: 1 fiber blocked"), "{out:?}");
    assert!(out.stdout.contains("run again: runtime poisoned"), "{out:?}");
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    assert_eq!(out.signal, Some(libc::SIGABRT), "{out:?}");
    assert!(out.stderr.contains("scoped runtime was dropped with 1 suspended fiber"), "stderr: {}", out.stderr);
}

#[test]
fn static_runtime_dropped_after_a_poisoning_deadlock_leaks_soundly() {
    static NEVER: filament::sync::Event = filament::sync::Event::new();
    static STACK: filament::StaticStack<65536> = filament::StaticStack::new();
    let rt = Box::new(Runtime::<'static, 2>::new());
    let _h = rt
        .spawn(STACK.claim().unwrap(), |fib| {
            loop {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| NEVER.wait(fib)));
            }
        })
        .unwrap();
    assert!(matches!(rt.run(), Err(filament::RunError::Deadlock(_))));
    assert_eq!(rt.run(), Err(filament::RunError::Poisoned));
    drop(rt);
    // The fiber's frames are still on the stack: it stays claimed forever.
    assert!(STACK.is_claimed());
}

#[test]
fn a_panicking_idle_hook_stops_the_program() {
    // An unwind out of the scheduler would leave fibers half-switched and
    // resumable from anywhere: the runtime aborts instead.
    let out = run_in_child("a_panicking_idle_hook_stops_the_program", || {
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _h = rt.spawn(Stack::host(64 * 1024).unwrap(), |fib| fib.sleep(10)).ok().unwrap();
        let mut idle = |_now: u64, _next: Option<u64>| -> u64 { panic!("idle hook fails") };
        let _ = rt.run_with_idle(&mut idle);
        println!("UNREACHABLE: run returned after the idle hook panicked");
    });
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    assert_eq!(out.signal, Some(libc::SIGABRT), "{out:?}");
    assert!(out.stderr.contains("the Idle hook panicked inside the scheduler"), "stderr: {}", out.stderr);
}

#[test]
fn spawn_counts_the_entry_glue_copies_of_a_big_closure() {
    // 7 200 bytes of captures fit an 8 KiB stack once, but not the copies the
    // entry frames make: rejected at spawn, nothing lost.
    static S: filament::StaticStack<8192> = filament::StaticStack::new();
    let rt = Box::new(Runtime::<'static, 1>::new());
    let big = [7u64; 900];
    let err = rt.spawn(S.claim().unwrap(), move |_| big[899]).expect_err("must not fit");
    assert!(matches!(err.kind(), filament::SpawnErrorKind::StackTooSmall { size: 8192, .. }), "{err}");
    let (stack, f) = err.into_parts();
    drop(stack);
    let h = rt.spawn(Stack::host(256 * 1024).unwrap(), f).ok().unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 7);
}
