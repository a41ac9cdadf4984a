//! `static` primitives shared by tests (issue 13): a primitive is bound to a
//! runtime only while that runtime's `run` uses it; the next runtime (or the
//! next run) can use it once the first is done.

use filament::sync::{Channel, Mutex, Semaphore, WaitError};
use filament::{Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(256 * 1024).expect("mmap stack")
}

static CHANNEL: Channel<u32, 4> = Channel::new();
static MUTEX: Mutex<u32> = Mutex::new(0);
static SEMAPHORE: Semaphore = Semaphore::new(1);

/// One "test": a fresh runtime uses all three statics, returns what each
/// operation said.
fn use_the_statics(tag: u32) -> Result<u32, String> {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt
        .spawn(stack(), move |fib| -> Result<u32, String> {
            SEMAPHORE.acquire(fib).map_err(|e| format!("semaphore: {e}"))?;
            *MUTEX.lock(fib).map_err(|e| format!("mutex: {e}"))? += 1;
            CHANNEL.send(fib, tag).map_err(|e| format!("channel send: {e}"))?;
            let got = CHANNEL.recv(fib).map_err(|e| format!("channel recv: {e}"))?;
            SEMAPHORE.release(fib, 1).map_err(|e| format!("semaphore release: {e}"))?;
            Ok(got)
        })
        .unwrap();
    rt.run().map_err(|e| e.to_string())?;
    rt.take(h).map_err(|e| e.to_string())?
}

#[test]
fn one_static_primitive_serves_runtimes_one_after_another() {
    assert_eq!(use_the_statics(1), Ok(1));
    // Before: "semaphore: primitive is bound to another runtime".
    assert_eq!(use_the_statics(2), Ok(2));
    // The same runtime, run again after another runtime used the statics.
    let rt = Box::new(Runtime::<'static, 1>::new());
    for round in 0..3 {
        let h = rt
            .spawn(stack(), |fib| {
                SEMAPHORE.acquire(fib).and_then(|()| SEMAPHORE.release(fib, 1).map_err(WaitError::from))
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(()), "round {round}");
        assert_eq!(use_the_statics(10 + round), Ok(10 + round));
    }
}

static SHARED: Semaphore = Semaphore::new(1);

/// Runtimes on two threads at once: whoever is not the current user gets a
/// clear `WrongRuntime`, never a data race (each thread retries until its
/// runtime's run got the primitive).
#[test]
fn parallel_runtimes_get_a_clear_error_not_a_race() {
    let workers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                let (mut ok, mut refused) = (0u32, 0u32);
                // Bounded: before the fix the loser never got the primitive.
                while ok < 200 {
                    assert!(ok + refused < 100_000, "this thread's runtimes never got the semaphore");
                    let rt = Box::new(Runtime::<'static, 1>::new());
                    let h = rt
                        .spawn(stack(), |fib| {
                            SHARED.acquire(fib)?;
                            fib.yield_now();
                            SHARED.release(fib, 1)?;
                            Ok::<(), WaitError>(())
                        })
                        .unwrap();
                    rt.run().unwrap();
                    match rt.take(h).unwrap() {
                        Ok(()) => ok += 1,
                        Err(WaitError::WrongRuntime) => refused += 1,
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
                refused
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
}

static PRELOADED: Channel<u32, 4> = Channel::new();
static TOKENS: Semaphore = Semaphore::new(0);
static GO: filament::sync::Event = filament::sync::Event::new();

/// Setup and queries need no fiber: pre-fill a channel, give permits, set
/// an event before `run`, read them after; while a runtime uses them the
/// same calls say `WrongRuntime` and change nothing.
#[test]
fn setup_and_queries_need_no_fiber() {
    PRELOADED.try_send_outside(1).unwrap();
    PRELOADED.try_send_outside(2).unwrap();
    TOKENS.release_outside(2).unwrap();
    GO.store_outside(true).unwrap();
    assert_eq!(PRELOADED.len_outside(), Ok(2));
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt
        .spawn(stack(), |fib| {
            TOKENS.acquire(fib).unwrap();
            GO.wait(fib).unwrap();
            let a = PRELOADED.recv(fib).unwrap();
            let b = PRELOADED.recv(fib).unwrap();
            // The run holds them now (its blocking calls bound them): outside
            // calls are refused and hand the value back.
            assert!(matches!(PRELOADED.try_send_outside(9), Err(filament::sync::TrySendError::WrongRuntime(9))));
            assert_eq!(TOKENS.available_outside(), Err(filament::sync::WrongRuntime));
            a + b
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(h).unwrap(), 3);
    assert_eq!(TOKENS.available_outside(), Ok(1));
    assert_eq!(GO.is_set_outside(), Ok(true));
    PRELOADED.close_outside().unwrap();
    assert_eq!(PRELOADED.try_recv_outside(), Err(filament::sync::TryRecvError::Closed));
}

static MONITORED: Channel<u32, 4> = Channel::new();

/// Review round 2: a query from outside any fiber (a monitor thread calling
/// `len_outside`) briefly leases the channel; a fiber's blocking call that
/// met that lease failed with `WrongRuntime` although no other runtime used
/// the channel. It now waits the momentary lease out.
#[test]
fn outside_queries_never_make_fiber_calls_fail() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let monitor = std::thread::spawn(move || {
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = MONITORED.len_outside();
        }
    });
    for round in 0..200 {
        let rt = Box::new(Runtime::<'static, 2>::new());
        let consumer = rt
            .spawn(stack(), |fib| (0..50).try_for_each(|_| MONITORED.recv(fib).map(drop).map_err(|e| e.to_string())))
            .unwrap();
        let producer = rt
            .spawn(stack(), |fib| (0..50).try_for_each(|j| MONITORED.send(fib, j).map_err(|e| e.to_string())))
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(consumer).unwrap(), Ok(()), "round {round}");
        assert_eq!(rt.take(producer).unwrap(), Ok(()), "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    monitor.join().unwrap();
}

static SHARED_SIGNAL: filament::IrqSignal = filament::IrqSignal::new();

/// An `IrqSignal` serves one runtime after another too (it stayed registered
/// with its first runtime until that runtime was dropped).
#[test]
fn a_static_signal_serves_runtimes_one_after_another() {
    static FIRST: Runtime<'static, 1> = Runtime::new();
    SHARED_SIGNAL.notify_from_isr();
    let h = FIRST.spawn(stack(), |fib| SHARED_SIGNAL.wait(fib)).unwrap();
    FIRST.run().unwrap();
    assert_eq!(FIRST.take(h).unwrap(), Ok(1));
    // FIRST lives on (a static); a second runtime uses the signal.
    let second = Box::new(Runtime::<'static, 1>::new());
    SHARED_SIGNAL.notify_from_isr();
    let h = second.spawn(stack(), |fib| SHARED_SIGNAL.wait(fib)).unwrap();
    second.run().unwrap();
    assert_eq!(second.take(h).unwrap(), Ok(1));
}
