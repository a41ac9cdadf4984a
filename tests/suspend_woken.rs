//! A fiber woken but suspended before it ran: a wake that handed it nothing
//! (an interrupt queue, signal or notification waiter's; a select's) is
//! passed on to the next waiter, so nothing sleeps with its condition true
//! (reviews 10, 13 and 14). Split from `tests/suspend.rs`.

use filament::sync::{Channel, Semaphore};
use filament::{JoinError, Priority, RunError, Runtime, SpawnOptions, Stack, WaitReason};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// Review 10 (e): the drain woke one receiver for one interrupt value (it
/// hands the value to nobody: the receiver takes it when it runs), then a
/// higher-priority fiber suspended that receiver before it ran: the only
/// wake-up stopped with it, the other receiver slept on with the value in
/// the queue (with `run`, the runtime idled forever: `run_for` bounds it).
/// The same for `IrqSignal` (its count banked for the woken waiter) and
/// `IrqNotify`.
fn a_suspended_woken_receiver_passes_the_wake_on(
    recv: fn(&filament::Fiber<'static>) -> u64,
    send: fn(u64),
    pending: fn() -> u64,
) {
    use filament::FiberState;
    use filament::host::HostClock;
    let rt = Runtime::<'static, 3>::new();
    let r1 = rt.spawn_named("r1", stack(), recv).unwrap();
    let r2 = rt.spawn_named("r2", stack(), recv).unwrap();
    let id1 = r1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both receivers block (r1 first)
            send(7);
            fib.yield_now(); // the drain (this yield's poll) wakes r1
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "r1 woken, not run");
            fib.suspend(id1).unwrap();
            fib.sleep(10);
            let left = pending();
            fib.resume(id1).unwrap();
            send(8);
            left
        })
        .unwrap();
    let run = rt.run_for(&mut HostClock::new(), 3_000);
    assert!(run.is_ok(), "the wake stopped with the suspended receiver: {run:?}");
    assert_eq!(rt.take(boss).unwrap(), 0, "the first value waited while r2 slept");
    assert_eq!((rt.take(r2).unwrap(), rt.take(r1).unwrap()), (7, 8));
}

#[test]
fn a_suspended_woken_irq_queue_receiver_passes_the_wake_on() {
    use filament::IrqQueue;
    static Q: IrqQueue<u64, 4> = IrqQueue::new().named("q");
    a_suspended_woken_receiver_passes_the_wake_on(
        |fib| Q.recv(fib).unwrap(),
        |v| Q.try_send_from_isr(v).unwrap(),
        || Q.len() as u64,
    );
}

#[test]
fn a_suspended_woken_irq_signal_waiter_passes_the_wake_on() {
    use filament::IrqSignal;
    static S: IrqSignal = IrqSignal::new().named("s");
    a_suspended_woken_receiver_passes_the_wake_on(
        // The count stands for the value: 7 notifications, then 8.
        |fib| S.wait(fib).unwrap(),
        |v| (0..v).for_each(|_| S.notify_from_isr()),
        || S.pending(),
    );
}

#[test]
fn a_suspended_woken_irq_notify_waiter_passes_the_wake_on() {
    use filament::IrqNotify;
    static N: IrqNotify = IrqNotify::new().named("n");
    a_suspended_woken_receiver_passes_the_wake_on(
        |fib| u64::from(N.wait(fib).unwrap()),
        |v| N.notify_from_isr(v as u32),
        || u64::from(N.pending()),
    );
}

/// Review 13: one permit (or value) woke the first of two selects on one
/// source (F1) — a select is handed nothing: it takes what is there when it
/// runs — then a higher-priority fiber suspended F1 before it ran. The wake
/// stopped with it: F2 slept on with the permit counted / the value in the
/// channel (with nobody resuming F1, `run` reported F2 deadlocked "on select
/// on semaphore"). Now the suspension passes the wake on, as the select's
/// own return does: F2 takes the first one at once, F1 looks again when
/// resumed and takes the second.
fn a_suspended_woken_select_passes_the_wake_on(
    select: fn(&filament::Fiber<'static>) -> u64,
    give: fn(&filament::Fiber<'static>, u64),
    left: fn(&filament::Fiber<'static>) -> u64,
) {
    use filament::FiberState;
    use filament::host::HostClock;
    let rt = Runtime::<'static, 3>::new();
    let f1 = rt.spawn_named("f1", stack(), select).unwrap();
    let f2 = rt.spawn_named("f2", stack(), select).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both selects block (f1 first)
            give(fib, 7);
            fib.yield_now(); // an interrupt give: the drain (this yield's poll) wakes f1
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "f1 woken, not run");
            fib.suspend(id1).unwrap();
            fib.sleep(10);
            let left = left(fib);
            fib.resume(id1).unwrap();
            give(fib, 8);
            left
        })
        .unwrap();
    let run = rt.run_for(&mut HostClock::new(), 3_000);
    assert!(run.is_ok(), "the wake stopped with the suspended select: {run:?}");
    assert_eq!(rt.take(boss).unwrap(), 0, "the first one waited while f2 slept");
    assert_eq!((rt.take(f2).unwrap(), rt.take(f1).unwrap()), (7, 8));
}

/// A select on one semaphore: 7 for a permit taken (8 for the second), the
/// same for both, so the permit count stands for the value.
fn select_permit(
    fib: &filament::Fiber<'static>,
    sem: &'static Semaphore,
    second: &'static std::sync::atomic::AtomicBool,
) -> u64 {
    use filament::sync::select::{AcquireCase, select};
    let mut c = AcquireCase::new(sem);
    select(fib, [&mut c]).unwrap();
    assert!(c.is_acquired());
    if second.swap(true, std::sync::atomic::Ordering::Relaxed) { 8 } else { 7 }
}

#[test]
fn a_suspended_woken_select_on_a_released_semaphore_passes_the_wake_on() {
    use std::sync::atomic::AtomicBool;
    static S: Semaphore = Semaphore::new(0).named("s");
    static SECOND: AtomicBool = AtomicBool::new(false);
    a_suspended_woken_select_passes_the_wake_on(
        |fib| select_permit(fib, &S, &SECOND),
        |fib, _| S.release(fib, 1).unwrap(),
        |fib| S.available(fib).unwrap() as u64,
    );
}

#[test]
fn a_suspended_woken_select_on_an_interrupt_given_semaphore_passes_the_wake_on() {
    use std::sync::atomic::AtomicBool;
    static S: Semaphore = Semaphore::new(0).isr_capable().named("s");
    static SECOND: AtomicBool = AtomicBool::new(false);
    a_suspended_woken_select_passes_the_wake_on(
        |fib| select_permit(fib, &S, &SECOND),
        |_, _| S.give_from_isr(),
        |fib| S.available(fib).unwrap() as u64,
    );
}

#[test]
fn a_suspended_woken_select_on_a_channel_passes_the_wake_on() {
    use filament::sync::select::{RecvCase, select};
    static CH: Channel<u64, 4> = Channel::new().named("ch");
    a_suspended_woken_select_passes_the_wake_on(
        |fib| {
            let mut c = RecvCase::new(&CH);
            select(fib, [&mut c]).unwrap();
            c.take().unwrap().unwrap()
        },
        |fib, v| CH.send(fib, v).unwrap(),
        |fib| CH.len(fib).unwrap() as u64,
    );
}

/// The same with a timeout (longer than the suspension: a timeout that
/// ended f2's wait first would hide the lost wake) and a second case: the
/// source that is ready is passed on, whichever case it is.
#[test]
fn a_suspended_woken_timed_select_of_two_cases_passes_the_wake_on() {
    use filament::sync::select::{AcquireCase, RecvCase, select_timeout};
    static S: Semaphore = Semaphore::new(0).named("s");
    static CH: Channel<u64, 4> = Channel::new().named("ch");
    a_suspended_woken_select_passes_the_wake_on(
        |fib| {
            let mut a = AcquireCase::new(&S);
            let mut r = RecvCase::new(&CH);
            match select_timeout(fib, [&mut a, &mut r], 1_000) {
                Ok(0) => 100,
                Ok(_) => r.take().unwrap().unwrap(),
                Err(e) => panic!("{e}"),
            }
        },
        |fib, v| CH.send(fib, v).unwrap(),
        |fib| CH.len(fib).unwrap() as u64 + S.available(fib).unwrap() as u64,
    );
}

/// Review 13, the neighbours of suspend: `cancel` of a select woken and not
/// yet run leaves it ready (it runs and takes what woke it, as a plain waiter
/// keeps what it was handed), and `abort_wait` does nothing to it (it has no
/// deadline any more): neither strands the wake.
#[test]
fn a_woken_select_cancelled_before_it_ran_still_takes_what_woke_it() {
    use filament::FiberState;
    use filament::sync::select::{AcquireCase, select};
    static S: Semaphore = Semaphore::new(0).named("s");
    let rt = Runtime::<'static, 3>::new();
    let sel = |fib: &filament::Fiber<'static>| {
        let mut c = AcquireCase::new(&S);
        let r = select(fib, [&mut c]);
        (r, c.is_acquired(), fib.is_cancelled())
    };
    let f1 = rt.spawn_named("f1", stack(), sel).unwrap();
    let f2 = rt.spawn_named("f2", stack(), sel).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1); // both selects block (f1 first)
            S.release(fib, 1).unwrap();
            assert_eq!(fib.fiber_info(id1).unwrap().state, FiberState::Ready, "f1 woken, not run");
            assert!(!fib.abort_wait(id1), "a woken fiber has no wait to abort");
            fib.cancel(id1).unwrap();
            fib.sleep(5);
            let left = S.available(fib).unwrap();
            S.release(fib, 1).unwrap();
            left
        })
        .unwrap();
    assert_eq!(rt.run(), Ok(()));
    assert_eq!(rt.take(boss).unwrap(), 0);
    assert_eq!(rt.take(f1).unwrap(), (Ok(0), true, true));
    assert_eq!(rt.take(f2).unwrap(), (Ok(0), true, false));
}

/// The reviewer's form of review 13: nobody resumes the suspended select.
/// The runtime was reported deadlocked with f2 "on select on semaphore"
/// although a permit was counted; now f2 takes it and only the suspended f1
/// is left (reported, and cancelled: its select unwinds cleanly).
#[test]
fn a_never_resumed_woken_select_leaves_only_itself_deadlocked() {
    use filament::sync::select::{AcquireCase, select};
    static S: Semaphore = Semaphore::new(0).named("s");
    let rt = Runtime::<'static, 3>::new();
    let sel = |fib: &filament::Fiber<'static>| {
        let mut c = AcquireCase::new(&S);
        select(fib, [&mut c]).map(|i| (i, c.is_acquired()))
    };
    let f1 = rt.spawn_named("f1", stack(), sel).unwrap();
    let f2 = rt.spawn_named("f2", stack(), sel).unwrap();
    let id1 = f1.id();
    let boss = rt
        .spawn_with(stack(), SpawnOptions::new().priority(Priority::new(3).unwrap()), move |fib| {
            fib.sleep(1);
            S.release(fib, 1).unwrap();
            fib.suspend(id1).unwrap();
            fib.sleep(300);
            S.available(fib).unwrap()
        })
        .unwrap();
    let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected f1 left suspended") };
    let fibers: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason)).collect();
    assert_eq!(fibers, [("f1", WaitReason::Suspended)], "{report}");
    assert_eq!(rt.take(boss).unwrap(), 0);
    assert_eq!(rt.take(f2).unwrap(), Ok((0, true)));
    assert!(matches!(rt.take(f1), Err(JoinError::Cancelled)));
}

/// Review 14: a suspension that passes a select's wake on to a fiber of a
/// higher level lets it run at once (as `resume` does), not at the
/// suspender's next scheduling point.
#[test]
fn a_suspension_that_wakes_a_higher_selector_switches_to_it() {
    use filament::sync::Semaphore;
    use filament::sync::select::{AcquireCase, select};
    use std::sync::Mutex;
    static S: Semaphore = Semaphore::new(0);
    static LOG: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let rt = Box::new(Runtime::<'static, 3>::new());
    let f1 = rt
        .spawn_detached(Stack::host(64 * 1024).unwrap(), |fib| {
            let mut a = AcquireCase::new(&S);
            if select(fib, [&mut a]).is_ok() {
                LOG.lock().unwrap().push("f1 took");
            }
        })
        .unwrap();
    let f2 = rt
        .spawn_detached(Stack::host(64 * 1024).unwrap(), |fib| {
            let mut a = AcquireCase::new(&S);
            select(fib, [&mut a]).unwrap();
            LOG.lock().unwrap().push("f2 (higher) took");
        })
        .unwrap();
    rt.spawn_detached(Stack::host(64 * 1024).unwrap(), move |fib| {
        fib.yield_now(); // f1, then f2, block in their selects
        assert!(fib.set_priority_of(f2, filament::Priority::new(1).unwrap()));
        S.release(fib, 1).unwrap(); // wakes f1 (first, level 0)
        fib.suspend(f1).unwrap(); // passes the wake on to f2 (level 1)
        LOG.lock().unwrap().push("suspender after suspend");
        fib.resume(f1).unwrap();
        S.release(fib, 1).unwrap();
    })
    .unwrap();
    rt.run().unwrap();
    assert_eq!(*LOG.lock().unwrap(), ["f2 (higher) took", "suspender after suspend", "f1 took"]);
}
