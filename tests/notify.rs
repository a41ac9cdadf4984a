//! Fiber notifications: FreeRTOS task-notification semantics, exact traces of
//! who runs when, timeouts that hand the value back, deadlock reports, and a
//! model test of the value/pending state machine against a reference.

use std::sync::Mutex as StdMutex;

use filament::{Fiber, Notify, NotifyError, NotifyWaitError, RunError, Runtime, Stack, Take, WaitReason};
use proptest::prelude::*;

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

fn log(l: &StdMutex<Vec<String>>, s: impl Into<String>) {
    l.lock().unwrap().push(s.into());
}

fn joined(l: &StdMutex<Vec<String>>) -> String {
    l.lock().unwrap().join(" ")
}

#[test]
fn a_notified_waiter_runs_after_the_ready_fibers_and_the_notifier_continues() {
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        let waiter = rt
            .spawn(stack(), |fib| {
                log(&l, "w:wait");
                let v = fib.notify_wait(0, 0).unwrap();
                log(&l, format!("w:got{v}"));
            })
            .unwrap();
        let id = waiter.id();
        let l = &l;
        rt.spawn_detached(stack(), move |fib| {
            log(l, "n:notify");
            fib.notify(id, Notify::SetBits(0b100)).unwrap();
            log(l, "n:still-running");
            fib.yield_now();
            log(l, "n:after-yield");
        })
        .unwrap();
        rt.spawn_detached(stack(), move |_| log(l, "o:ran")).unwrap();
        rt.run().unwrap();
        rt.take(waiter).unwrap();
    });
    assert_eq!(joined(&l), "w:wait n:notify n:still-running o:ran w:got4 n:after-yield");
}

#[test]
fn notify_wait_clears_on_entry_only_when_nothing_is_pending_and_on_exit_after_receiving() {
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                let me = fib.id();
                // Pending on entry: clear_on_entry is not applied.
                fib.notify(me, Notify::SetBits(0b1111)).unwrap();
                let first = fib.notify_wait(0b0011, 0b0100).unwrap();
                let after_first = fib.notify_value();
                // Nothing pending: entry clears 0b1000 before waiting; the
                // timeout reports the value without the exit clear.
                let timed_out = fib.notify_wait_timeout(0b1000, u32::MAX, 5);
                (first, after_first, timed_out, fib.notify_value(), fib.notify_pending())
            })
            .unwrap();
        rt.run().unwrap();
        let (first, after_first, timed_out, value, pending) = rt.take(h).unwrap();
        assert_eq!(first, 0b1111);
        assert_eq!(after_first, 0b1011);
        assert_eq!(timed_out, Err(NotifyWaitError::TimedOut { value: 0b0011 }));
        assert_eq!((value, pending), (0b0011, false));
    });
}

#[test]
fn set_if_empty_hands_the_value_back_and_changes_nothing() {
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                let me = fib.id();
                fib.notify(me, Notify::SetIfEmpty(1)).unwrap();
                let refused = fib.notify(me, Notify::SetIfEmpty(2));
                let kept = fib.notify_wait(0, 0).unwrap();
                fib.notify(me, Notify::SetIfEmpty(3)).unwrap(); // received: empty again
                (refused, kept, fib.notify_value())
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), (Err(NotifyError::Pending(2)), 1, 3));
    });
}

#[test]
fn take_one_counts_take_all_clears_and_a_signal_without_value_does_not_end_a_take() {
    let l = StdMutex::new(Vec::new());
    Runtime::<3>::scope(|rt| {
        let taker = rt
            .spawn(stack(), |fib| {
                let v = fib.notify_take(Take::One).unwrap();
                log(&l, format!("t:one{v}"));
                let v = fib.notify_take(Take::All).unwrap();
                log(&l, format!("t:all{v}"));
                let v = fib.notify_take(Take::All).unwrap();
                log(&l, format!("t:all{v}"));
                fib.notify_value()
            })
            .unwrap();
        let id = taker.id();
        let l = &l;
        rt.spawn_detached(stack(), move |fib| {
            for _ in 0..3 {
                fib.notify(id, Notify::Increment).unwrap();
            }
            log(l, "n:+3");
            fib.yield_now(); // taker takes one (3), then all (2), then waits
            fib.notify(id, Notify::Signal).unwrap(); // pending, value 0: keeps waiting
            log(l, "n:signal");
            fib.yield_now();
            fib.notify(id, Notify::Overwrite(7)).unwrap();
            log(l, "n:seven");
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(taker).unwrap(), 0);
    });
    assert_eq!(joined(&l), "n:+3 t:one3 t:all2 n:signal n:seven t:all7");
}

#[test]
fn a_timed_take_times_out_with_the_value_and_keeps_time() {
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                let t0 = fib.now();
                let r = fib.notify_take_timeout(Take::All, 25);
                (r, fib.now() - t0)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), (Err(NotifyWaitError::TimedOut { value: 0 }), 25));
    });
}

#[test]
fn notifying_a_finished_or_stale_fiber_is_a_typed_error() {
    Runtime::<3>::scope(|rt| {
        let short = rt.spawn(stack(), |fib: &Fiber| fib.id()).unwrap();
        let short_id = short.id();
        let h = rt
            .spawn(stack(), move |fib| {
                fib.yield_now(); // `short` has finished
                fib.notify(short_id, Notify::Increment)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Err(NotifyError::NoSuchFiber(short_id)));
        assert_eq!(rt.take(short).unwrap(), short_id);
        // The slot is free and reused now: the old id still names nobody.
        let again = rt
            .spawn(stack(), move |fib| {
                let stale = fib.notify(short_id, Notify::Increment);
                (fib.id() != short_id, stale)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(again).unwrap(), (true, Err(NotifyError::NoSuchFiber(short_id))));
    });
}

#[test]
fn a_fiber_waiting_for_a_notification_forever_is_a_deadlock_named_as_such() {
    Runtime::<2>::scope(|rt| {
        let _listener = rt
            .spawn_named("listener", stack(), |fib| {
                let _ = fib.notify_wait(0, 0);
            })
            .unwrap();
        let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
        let fibers: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason)).collect();
        assert_eq!(fibers, [("listener", WaitReason::Notify)]);
        assert!(report.to_string().contains("notification"), "{report}");
    });
}

#[test]
fn a_notify_from_a_drop_while_unwinding_never_blocks() {
    struct WaitOnDrop<'a, 'f>(&'a Fiber<'f>, &'a StdMutex<Option<Result<u32, NotifyWaitError>>>);
    impl Drop for WaitOnDrop<'_, '_> {
        fn drop(&mut self) {
            *self.1.lock().unwrap() = Some(self.0.notify_take(Take::All));
        }
    }
    let seen = StdMutex::new(None);
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                let _w = WaitOnDrop(fib, &seen);
                panic!("boom");
            })
            .unwrap();
        rt.run().unwrap();
        assert!(rt.take(h).is_err());
    });
    assert_eq!(*seen.lock().unwrap(), Some(Err(NotifyWaitError::Unwinding)));
}

// ------------------------------------------------------------- model test

/// One step of the model program, run by a fiber on itself.
#[derive(Debug, Clone)]
enum Op {
    Notify(Notify),
    /// `notify_wait_timeout(entry, exit, 0)`: never blocks.
    Wait(u32, u32),
    /// `notify_take_timeout(how, 0)`.
    Take(Take),
    Clear(u32),
}

fn op() -> impl Strategy<Value = Op> {
    let bits = prop_oneof![Just(0u32), Just(u32::MAX), any::<u32>(), 0u32..4];
    prop_oneof![
        Just(Op::Notify(Notify::Signal)),
        bits.clone().prop_map(|b| Op::Notify(Notify::SetBits(b))),
        Just(Op::Notify(Notify::Increment)),
        bits.clone().prop_map(|b| Op::Notify(Notify::Overwrite(b))),
        bits.clone().prop_map(|b| Op::Notify(Notify::SetIfEmpty(b))),
        (bits.clone(), bits.clone()).prop_map(|(a, b)| Op::Wait(a, b)),
        Just(Op::Take(Take::All)),
        Just(Op::Take(Take::One)),
        bits.prop_map(Op::Clear),
    ]
}

/// The reference: FreeRTOS's `tasks.c` notification logic, written out.
#[derive(Default, Debug)]
struct Reference {
    value: u32,
    received: bool,
}

impl Reference {
    fn step(&mut self, op: &Op) -> String {
        match *op {
            Op::Notify(a) => {
                let was = self.received;
                match a {
                    Notify::SetIfEmpty(v) if was => return format!("refused{v}"),
                    Notify::SetIfEmpty(v) | Notify::Overwrite(v) => self.value = v,
                    Notify::SetBits(b) => self.value |= b,
                    Notify::Increment => self.value = self.value.wrapping_add(1),
                    _ => {}
                }
                self.received = true;
                "ok".into()
            }
            Op::Wait(entry, exit) => {
                if !self.received {
                    self.value &= !entry;
                    return format!("timeout{}", self.value);
                }
                let v = self.value;
                self.value &= !exit;
                self.received = false;
                format!("got{v}")
            }
            Op::Take(how) => {
                let v = self.value;
                if v == 0 {
                    return format!("timeout{v}");
                }
                self.value = if how == Take::All { 0 } else { v - 1 };
                self.received = false;
                format!("got{v}")
            }
            Op::Clear(bits) => {
                let v = self.value;
                self.value &= !bits;
                self.received = false;
                format!("was{v}")
            }
        }
    }
}

fn run_on_fiber(fib: &Fiber, op: &Op) -> String {
    let me = fib.id();
    let shown = |r: Result<u32, NotifyWaitError>| match r {
        Ok(v) => format!("got{v}"),
        Err(NotifyWaitError::TimedOut { value }) => format!("timeout{value}"),
        Err(e) => panic!("{e:?}"),
    };
    match *op {
        Op::Notify(a) => match fib.notify(me, a) {
            Ok(()) => "ok".into(),
            Err(NotifyError::Pending(v)) => format!("refused{v}"),
            Err(e) => panic!("{e:?}"),
        },
        Op::Wait(entry, exit) => shown(fib.notify_wait_timeout(entry, exit, 0)),
        Op::Take(how) => shown(fib.notify_take_timeout(how, 0)),
        Op::Clear(bits) => format!("was{}", fib.notify_clear(bits)),
    }
}

proptest! {
    #[test]
    fn the_notification_state_machine_matches_the_reference(ops in prop::collection::vec(op(), 1..64)) {
        let got = Runtime::<1>::scope(|rt| {
            let ops2 = ops.clone();
            let h = rt
                .spawn(stack(), move |fib| {
                    ops2.iter().map(|op| (run_on_fiber(fib, op), fib.notify_value(), fib.notify_pending())).collect::<Vec<_>>()
                })
                .unwrap();
            rt.run().unwrap();
            rt.take(h).unwrap()
        });
        let mut r = Reference::default();
        let want: Vec<_> = ops.iter().map(|op| { let o = r.step(op); (o, r.value, r.received) }).collect();
        prop_assert_eq!(got, want);
    }
}

// ------------------------------------------------- from interrupt handlers

mod from_isr {
    use std::sync::mpsc;
    use std::time::Duration;

    use filament::host::HostClock;
    use filament::{IrqFiberNotifier, Runtime, Take};

    use super::stack;

    /// Runs `body` as the only fiber of a runtime on another thread (with a
    /// host clock, so it idles while waiting) and returns its result, or
    /// fails after 10 s (a lost wake-up).
    fn on_runtime_thread<T: Send + 'static>(body: fn(&filament::Fiber<'static>) -> T) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt: &'static Runtime<'static, 1> = Box::leak(Box::new(Runtime::new()));
            let h = rt.spawn(stack(), body).unwrap();
            rt.run_with_idle(&mut HostClock::new()).unwrap();
            let _ = tx.send(rt.take(h).unwrap());
        });
        rx
    }

    #[test]
    fn increments_from_other_threads_are_all_counted() {
        static GIVES: IrqFiberNotifier = IrqFiberNotifier::new();
        const PER: u32 = 25_000;
        let rx = on_runtime_thread(|fib| {
            GIVES.attach(fib).unwrap();
            let mut got = 0u32;
            while got < 4 * PER {
                got += fib.notify_take(Take::All).unwrap();
            }
            (got, fib.notify_value())
        });
        let producers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..PER {
                        GIVES.increment_from_isr();
                    }
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        let (got, left) = rx.recv_timeout(Duration::from_secs(10)).expect("lost wake-up: the taker never finished");
        assert_eq!((got, left), (4 * PER, 0), "every give counted once");
    }

    #[test]
    fn bits_overwrite_and_signal_wake_a_waiting_fiber() {
        static DEV: IrqFiberNotifier = IrqFiberNotifier::new();
        let rx = on_runtime_thread(|fib| {
            DEV.attach(fib).unwrap();
            let first = fib.notify_wait(0, u32::MAX).unwrap(); // bits, cleared on exit
            let second = fib.notify_wait(0, 0).unwrap(); // an overwrite
            let third = fib.notify_wait(0, 0).unwrap(); // a bare signal: value unchanged
            (first, second, third)
        });
        std::thread::sleep(Duration::from_millis(20)); // the fiber waits by now (or soon)
        DEV.set_bits_from_isr(0b0101);
        std::thread::sleep(Duration::from_millis(20));
        DEV.overwrite_from_isr(0x100);
        std::thread::sleep(Duration::from_millis(20));
        DEV.signal_from_isr();
        let got = rx.recv_timeout(Duration::from_secs(10)).expect("lost wake-up");
        assert_eq!(got, (0b0101, 0x100, 0x100));
    }

    #[test]
    fn actions_raised_together_apply_overwrite_then_bits_then_increments() {
        static BATCH: IrqFiberNotifier = IrqFiberNotifier::new();
        BATCH.increment_from_isr();
        BATCH.set_bits_from_isr(0b1000);
        BATCH.overwrite_from_isr(5);
        let rt = Runtime::<1>::new();
        let h = rt
            .spawn(stack(), |fib| {
                BATCH.attach(fib).unwrap(); // applies what was raised before
                (fib.notify_value(), fib.notify_pending())
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), ((5 | 0b1000) + 1, true));
    }

    #[test]
    fn actions_before_the_attach_wait_for_it_and_a_finished_target_drops_them() {
        static EARLY: IrqFiberNotifier = IrqFiberNotifier::new();
        EARLY.increment_from_isr();
        EARLY.increment_from_isr();
        let rt = Runtime::<2>::new();
        let first = rt
            .spawn(stack(), |fib| {
                EARLY.attach(fib).unwrap();
                fib.notify_take(Take::One).unwrap() // applied at attach: 2, takes one
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(first).unwrap(), 2);
        // The first target finished (and the run ended): nothing is attached.
        EARLY.increment_from_isr();
        let second = rt
            .spawn(stack(), |fib| {
                let before = fib.notify_value();
                EARLY.attach(fib).unwrap();
                (before, fib.notify_value())
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(second).unwrap(), (0, 1));
    }

    #[test]
    fn an_attached_waiter_is_not_a_deadlock_but_an_unattached_one_is() {
        static LATER: IrqFiberNotifier = IrqFiberNotifier::new();
        let rx = on_runtime_thread(|fib| {
            LATER.attach(fib).unwrap();
            fib.notify_take(Take::All).unwrap()
        });
        std::thread::sleep(Duration::from_millis(50)); // it idles, no deadlock report
        LATER.increment_from_isr();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("lost wake-up"), 1);
        let rt = Runtime::<1>::new();
        let _h = rt.spawn(stack(), |fib| fib.notify_take(Take::All)).unwrap();
        assert!(matches!(rt.run(), Err(filament::RunError::Deadlock(_))));
    }
}

/// Review finding: attaching an `IrqFiberNotifier` to a second fiber left the
/// first one marked as notified from interrupts: its notification wait kept
/// the runtime idling forever instead of reporting the deadlock.
#[test]
fn a_fiber_the_notifier_moved_away_from_is_deadlocked_not_idling() {
    use filament::IrqFiberNotifier;
    static N: IrqFiberNotifier = IrqFiberNotifier::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::<2>::new();
        let _a = rt
            .spawn_named("a", stack(), |fib| {
                N.attach(fib).unwrap();
                fib.yield_now(); // b attaches: the notifier now serves b only
                fib.notify_take(Take::All)
            })
            .unwrap();
        let _b = rt.spawn_named("b", stack(), |fib| N.attach(fib).unwrap()).unwrap();
        let r = rt.run();
        let _ = tx.send(matches!(r, Err(RunError::Deadlock(_))));
    });
    let deadlock = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("run idled forever");
    assert!(deadlock);
}

/// Review C: the notifier moved to another fiber after the first had
/// already blocked in a notification wait: that wait stayed an interrupt
/// wait and the runtime idled forever.
#[test]
fn a_blocked_fiber_the_notifier_moved_away_from_is_deadlocked_not_idling() {
    use filament::IrqFiberNotifier;
    static N: IrqFiberNotifier = IrqFiberNotifier::new();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::<2>::new();
        let _a = rt
            .spawn_named("a", stack(), |fib| {
                N.attach(fib).unwrap();
                fib.notify_take(Take::All) // blocks before b takes the notifier
            })
            .unwrap();
        let _b = rt
            .spawn_named("b", stack(), |fib| {
                fib.yield_now();
                N.attach(fib).unwrap();
            })
            .unwrap();
        let _ = tx.send(matches!(rt.run(), Err(RunError::Deadlock(_))));
    });
    assert!(rx.recv_timeout(std::time::Duration::from_secs(5)).expect("run idled forever"));
}
