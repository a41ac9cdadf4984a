//! `sync::select`: which case fires, FIFO among selectors, direct waiters
//! first, no value or wake lost, send cases give their value back, unwinding
//! unlinks, deadlock reports name every source.

use std::sync::Mutex as StdMutex;

use filament::host::HostClock;
use filament::sync::select::{self, AcquireCase, EventCase, IrqCase, RecvCase, SelectError, SendCase};
use filament::sync::{Channel, Event, RecvError, Semaphore};
use filament::{FiberState, IrqSignal, JoinError, RunError, Runtime, Stack, WaitReason};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

fn addr<T>(x: &T) -> usize {
    x as *const T as usize
}

fn log(l: &StdMutex<Vec<String>>, s: impl Into<String>) {
    l.lock().unwrap().push(s.into());
}

fn joined(l: &StdMutex<Vec<String>>) -> String {
    l.lock().unwrap().join(" ")
}

#[test]
fn the_lowest_ready_case_fires_and_the_others_are_untouched() {
    let a: Channel<u32, 2> = Channel::new();
    let b: Channel<u32, 2> = Channel::new();
    let s = Semaphore::new(1);
    let e = Event::new();
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                a.send(fib, 1).unwrap();
                b.send(fib, 2).unwrap();
                e.set(fib).unwrap();
                let mut out = Vec::new();
                for _ in 0..4 {
                    let mut ra = RecvCase::new(&a);
                    let mut rb = RecvCase::new(&b);
                    let mut acq = AcquireCase::new(&s);
                    let mut ev = EventCase::new(&e);
                    // Case order is priority: the event (always set) comes last.
                    let i = select::try_select(fib, [&mut rb, &mut acq, &mut ra, &mut ev]).unwrap();
                    let what = match i {
                        0 => format!("b={}", rb.take().unwrap().unwrap()),
                        1 => format!("permit:{}", acq.is_acquired()),
                        2 => format!("a={}", ra.take().unwrap().unwrap()),
                        _ => format!("event:{}", ev.is_fired()),
                    };
                    // Only the fired case has an outcome.
                    assert_eq!(
                        [rb.take().is_some(), acq.is_acquired(), ra.take().is_some(), ev.is_fired()]
                            .iter()
                            .filter(|&&x| x)
                            .count(),
                        usize::from(i == 1 || i == 3)
                    );
                    out.push(what);
                }
                (out, a.len(fib).unwrap(), b.len(fib).unwrap(), s.available(fib).unwrap(), e.is_set(fib).unwrap())
            })
            .ok()
            .unwrap();
        rt.run().unwrap();
        let (out, la, lb, permits, set) = rt.take(h).unwrap();
        assert_eq!(out, ["b=2", "permit:true", "a=1", "event:true"]);
        assert_eq!((la, lb, permits, set), (0, 0, 0, true));
    });
}

#[test]
fn a_blocked_select_is_woken_by_each_kind_of_source() {
    let rx: Channel<u32, 1> = Channel::new();
    let tx: Channel<u32, 1> = Channel::new();
    let s = Semaphore::new(0);
    let e = Event::new();
    static SIG: IrqSignal = IrqSignal::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            tx.send(fib, 100).unwrap(); // full: the send case must wait for room
            for round in 0..5 {
                let mut r = RecvCase::new(&rx);
                let mut t = SendCase::new(&tx, 200 + round);
                let mut a = AcquireCase::new(&s);
                let mut ev = EventCase::new(&e);
                let mut irq = IrqCase::new(&SIG);
                let i = select::select(fib, [&mut r, &mut t, &mut a, &mut ev, &mut irq]).unwrap();
                let what = match i {
                    0 => format!("recv:{}", r.take().unwrap().unwrap()),
                    1 => format!("sent:{}", t.is_sent()),
                    2 => format!("acquired:{}", a.is_acquired()),
                    3 => format!("event:{}", ev.is_fired()),
                    _ => format!("irq:{}", irq.count()),
                };
                if i != 1 {
                    assert_eq!(t.take_value(), Some(200 + round), "an unsent value stays in its case");
                }
                log(&l, what);
            }
            assert_eq!(tx.try_recv(fib), Ok(201), "the select's value went in, once");
            assert_eq!(tx.len(fib), Ok(0));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            log(&l, "send");
            rx.send(fib, 7).unwrap();
            fib.yield_now();
            log(&l, "make-room");
            assert_eq!(tx.recv(fib), Ok(100));
            fib.yield_now();
            log(&l, "give");
            s.give(fib).unwrap();
            fib.yield_now();
            log(&l, "set");
            e.set(fib).unwrap();
            e.reset(fib).unwrap(); // a pulse: it woke the select, which still fires the case
            fib.yield_now();
            log(&l, "notify");
            SIG.notify_from_isr();
            SIG.notify_from_isr();
        })
        .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
    });
    assert_eq!(joined(&l), "send recv:7 make-room sent:true give acquired:true set event:true notify irq:2");
}

#[test]
fn selectors_on_one_source_are_served_fifo() {
    let ch: Channel<u32, 4> = Channel::new();
    let other: Channel<u32, 1> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        for name in ["s1", "s2", "s3"] {
            let (ch, other, l) = (&ch, &other, &l);
            rt.spawn_detached(stack(), move |fib| {
                let mut o = RecvCase::new(other);
                let mut r = RecvCase::new(ch);
                assert_eq!(select::select(fib, [&mut o, &mut r]), Ok(1));
                log(l, format!("{name}={}", r.take().unwrap().unwrap()));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            for v in 1..=3 {
                ch.send(fib, v).unwrap();
            }
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "s1=1 s2=2 s3=3");
}

#[test]
fn plain_waiters_are_served_before_selectors() {
    let ch: Channel<u32, 1> = Channel::new();
    let s = Semaphore::new(0);
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        // The selector blocks first...
        rt.spawn_detached(stack(), |fib| {
            let mut r = RecvCase::new(&ch);
            let mut a = AcquireCase::new(&s);
            let i = select::select(fib, [&mut r, &mut a]).unwrap();
            log(&l, format!("select:{i}:{:?}", r.take()));
            let i = select::select(fib, [&mut r, &mut a]).unwrap();
            log(&l, format!("select:{i}:{}", a.is_acquired()));
        })
        .unwrap();
        // ...then plain waiters, which still get the first value and permit.
        rt.spawn_detached(stack(), |fib| log(&l, format!("recv:{}", ch.recv(fib).unwrap()))).unwrap();
        rt.spawn_detached(stack(), |fib| {
            s.acquire(fib).unwrap();
            log(&l, "acquire");
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            ch.send(fib, 1).unwrap();
            ch.send(fib, 2).unwrap();
            fib.yield_now();
            s.release(fib, 2).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "recv:1 select:0:Some(Ok(2)) acquire select:1:true");
}

#[test]
fn a_woken_selector_whose_value_was_taken_blocks_again() {
    let ch: Channel<u32, 2> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            let mut r = RecvCase::new(&ch);
            let i = select::select(fib, [&mut r]).unwrap();
            log(&l, format!("select:{i}:{:?}", r.take()));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            ch.send(fib, 1).unwrap(); // wakes the selector (no hand-off)...
            assert_eq!(ch.try_recv(fib), Ok(1)); // ...and takes the value back first
            log(&l, "barged");
            fib.yield_now(); // the selector finds nothing and blocks again
            log(&l, "send");
            ch.send(fib, 2).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(joined(&l), "barged send select:0:Some(Ok(2))");
}

/// S1 watches [A, B], S2 watches [B]. A value on B wakes S1 (first in B's
/// list); then a value on A finds S1 already woken. S1 fires A (lower index):
/// B's wake must be passed on to S2, or S2 sleeps forever next to a ready
/// value (a deadlock).
#[test]
fn a_selector_woken_by_two_sources_passes_the_other_wake_on() {
    let a: Channel<u32, 1> = Channel::new();
    let b: Channel<u32, 1> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            let mut ra = RecvCase::new(&a);
            let mut rb = RecvCase::new(&b);
            let i = select::select(fib, [&mut ra, &mut rb]).unwrap();
            log(&l, format!("s1:{i}:{:?}", ra.take().or(rb.take())));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            let mut rb = RecvCase::new(&b);
            let i = select::select(fib, [&mut rb]).unwrap();
            log(&l, format!("s2:{i}:{:?}", rb.take()));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            b.send(fib, 20).unwrap();
            a.send(fib, 10).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        rt.debug_check_invariants().unwrap();
    });
    assert_eq!(joined(&l), "s1:0:Some(Ok(10)) s2:0:Some(Ok(20))");
}

/// A selector woken by a value that then times out before it runs still
/// takes the value (it re-checks when it resumes); a selector that times out
/// with nothing ready leaves the wake for the next one.
#[test]
fn timeouts_lose_nothing_and_give_the_send_value_back() {
    let full: Channel<String, 1> = Channel::new();
    let empty: Channel<u32, 1> = Channel::new();
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                full.send(fib, "queued".to_string()).unwrap();
                let mut t = SendCase::new(&full, "mine".to_string());
                let mut r = RecvCase::new(&empty);
                let res = select::select_timeout(fib, [&mut r, &mut t], 5);
                let at = fib.now();
                let back = t.take_value();
                let zero = select::select_timeout(fib, [&mut r], 0);
                let none = select::try_select(fib, [&mut r]);
                (res, at, back, t.is_sent(), zero, none, full.try_recv(fib).unwrap(), full.len(fib).unwrap())
            })
            .ok()
            .unwrap();
        rt.run().unwrap();
        let (res, at, back, sent, zero, none, queued, left) = rt.take(h).unwrap();
        assert_eq!(res, Err(SelectError::TimedOut));
        assert_eq!(at, 5);
        assert_eq!(back.as_deref(), Some("mine"));
        assert!(!sent);
        assert_eq!(zero, Err(SelectError::TimedOut));
        assert_eq!(none, Err(SelectError::WouldBlock));
        assert_eq!((queued.as_str(), left), ("queued", 0));
    });
}

#[test]
fn a_deadline_and_a_value_on_the_same_tick_lose_nothing() {
    let ch: Channel<u32, 2> = Channel::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<2>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            let mut r = RecvCase::new(&ch);
            let first = select::select_timeout(fib, [&mut r], 10);
            log(&l, format!("{first:?}:{:?}", r.take()));
            log(&l, format!("{:?}", ch.recv_timeout(fib, 5)));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(10);
            ch.send(fib, 42).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    // Either the select took it, or it is still queued: never neither.
    let got = joined(&l);
    assert!(got == "Ok(0):Some(Ok(42)) Err(TimedOut)" || got == "Err(TimedOut):None Ok(42)", "{got}");
}

#[test]
fn closed_channels_fire_recv_and_send_cases() {
    let rx: Channel<u32, 1> = Channel::new();
    let tx: Channel<u32, 1> = Channel::new();
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                tx.send(fib, 1).unwrap();
                let mut r = RecvCase::new(&rx);
                let mut t = SendCase::new(&tx, 2);
                let first = select::select(fib, [&mut t, &mut r]); // blocks until the close
                let out = (first, t.is_closed(), t.take_value(), r.take());
                let mut r2 = RecvCase::new(&rx);
                let second = select::select(fib, [&mut r2]);
                (out, second, r2.take())
            })
            .ok()
            .unwrap();
        rt.spawn_detached(stack(), |fib| {
            tx.close(fib).unwrap();
            rx.close(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        let (out, second, r2) = rt.take(h).unwrap();
        assert_eq!(out, (Ok(0), true, Some(2), None));
        assert_eq!((second, r2), (Ok(0), Some(Err(RecvError::Closed))));
    });
}

#[test]
fn an_event_wakes_every_selector_and_release_serves_several() {
    let e = Event::new();
    let s = Semaphore::new(0);
    let l = StdMutex::new(Vec::new());
    Runtime::<8>::scope(|rt| {
        for name in ["e1", "e2", "e3"] {
            let (e, l) = (&e, &l);
            rt.spawn_detached(stack(), move |fib| {
                let mut ev = EventCase::new(e);
                select::select(fib, [&mut ev]).unwrap();
                log(l, name);
            })
            .unwrap();
        }
        for name in ["p1", "p2", "p3"] {
            let (s, l) = (&s, &l);
            rt.spawn_detached(stack(), move |fib| {
                let mut a = AcquireCase::new(s);
                if select::select_timeout(fib, [&mut a], 100).is_ok() {
                    log(l, name);
                }
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            e.set(fib).unwrap();
            s.release(fib, 2).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(s.available_outside(), Ok(0));
    });
    assert_eq!(joined(&l), "e1 e2 e3 p1 p2");
}

#[test]
fn deadlock_report_names_every_source_and_cancellation_unlinks() {
    let ch: Channel<u32, 1> = Channel::new();
    let full: Channel<u32, 1> = Channel::new();
    let s = Semaphore::new(0).named("permits");
    let e = Event::new();
    Runtime::<4>::scope(|rt| {
        let h = rt
            .spawn_named("sel", stack(), |fib| {
                full.send(fib, 0).unwrap();
                let mut r = RecvCase::new(&ch);
                let mut t = SendCase::new(&full, 1);
                let mut a = AcquireCase::new(&s);
                let mut ev = EventCase::new(&e);
                select::select(fib, [&mut r, &mut t, &mut a, &mut ev]).map(drop)
            })
            .ok()
            .unwrap();
        // `fiber_info` shows the select while it blocks.
        let sel = h.id();
        let watcher = rt
            .spawn(stack(), move |fib| {
                fib.yield_now();
                fib.fiber_info(sel).unwrap().state
            })
            .ok()
            .unwrap();
        let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
        let b = report.fibers()[0];
        assert_eq!(b.name, "sel");
        let WaitReason::Select(sources) = b.reason else { panic!("{b:?}") };
        let WaitReason::Send(send_addr) = sources.iter().nth(1).unwrap() else { panic!("{sources:?}") };
        assert_eq!(
            sources.iter().collect::<Vec<_>>(),
            [
                WaitReason::Recv(addr(&ch)),
                WaitReason::Send(send_addr),
                WaitReason::Semaphore(addr(&s)),
                WaitReason::Event(addr(&e))
            ]
        );
        assert_eq!(sources.len(), 4);
        assert_eq!(
            b.reason.to_string(),
            format!(
                "select on recv on channel {:#x}, send on channel {send_addr:#x}, semaphore {:#x}, event {:#x}",
                addr(&ch),
                addr(&s),
                addr(&e)
            )
        );
        assert!(matches!(rt.take(h), Err(JoinError::Cancelled)));
        assert_eq!(rt.take(watcher).unwrap(), FiberState::Blocked(b.reason));
        rt.debug_check_invariants().unwrap();

        // The cancelled select unlinked its cases (their memory, on the freed
        // stack, is gone): every source works for new selectors.
        let h = rt
            .spawn(stack(), |fib| {
                let mut r = RecvCase::new(&ch);
                let mut a = AcquireCase::new(&s);
                let mut t = SendCase::new(&full, 5);
                let i = select::select(fib, [&mut r, &mut a, &mut t]).unwrap();
                (i, a.is_acquired())
            })
            .ok()
            .unwrap();
        rt.spawn_detached(stack(), |fib| {
            s.give(fib).unwrap(); // walks the semaphore's selector list
            fib.yield_now();
            ch.send(fib, 9).unwrap(); // and the others' (empty again by now)
            assert_eq!(full.recv(fib), Ok(0));
            e.set(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), (1, true));
    });
}

/// Every interleaving (within 3 delays) of two selectors sharing a source
/// (S1 on [a, b], S2 on [b]), a fiber that barges in with `try_recv` on `b`
/// (and sends what it took back), and a sender of one value on each channel:
/// no value is lost or duplicated, and S2 is left waiting only when S1 took
/// `b`'s value (so `b` is empty). (Without
/// the pass-on, the schedule where `b`'s value wakes S1 and `a`'s arrives
/// before S1 runs leaves S2 asleep next to `b`'s value: found.)
#[cfg(feature = "explore")]
#[test]
fn explored_interleavings_lose_no_value_and_no_wake() {
    use filament::host::explore::{Explorer, Policy, Schedule};

    // The deadlock report is the value looked at, large or not.
    #[allow(clippy::result_large_err)]
    fn program(s: &mut Schedule) -> Result<(), String> {
        let a: Channel<u32, 1> = Channel::new();
        let b: Channel<u32, 2> = Channel::new();
        let got = StdMutex::new(Vec::new());
        let res = Runtime::<4>::scope(|rt| {
            s.install(rt);
            let (a, b, got) = (&a, &b, &got);
            rt.spawn_detached(stack(), move |fib| {
                let mut ra = RecvCase::new(a);
                let mut rb = RecvCase::new(b);
                select::select(fib, [&mut ra, &mut rb]).unwrap();
                got.lock().unwrap().extend(ra.take().or(rb.take()).map(Result::unwrap));
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                let mut rb = RecvCase::new(b);
                select::select(fib, [&mut rb]).unwrap();
                got.lock().unwrap().push(rb.take().unwrap().unwrap());
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                fib.yield_now();
                if let Ok(v) = b.try_recv(fib) {
                    fib.yield_now();
                    b.send(fib, v).unwrap();
                }
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                b.send(fib, 1).unwrap();
                fib.yield_now();
                a.send(fib, 2).unwrap();
            })
            .unwrap();
            rt.run()
        });
        let mut got = got.into_inner().unwrap();
        got.sort();
        let left = (a.try_recv_outside().ok(), b.try_recv_outside().ok());
        match res {
            Ok(()) if got == [1, 2] && left == (None, None) => Ok(()),
            // S1 took `b`'s value before `a`'s came: S2 (on `b` only) waits
            // for good, legitimately, with `b` empty and `a`'s value queued.
            Err(RunError::Deadlock(r)) if r.count() == 1 && got == [1] && left == (Some(2), None) => Ok(()),
            res => Err(format!("{res:?}: received {got:?}, left {left:?}")),
        }
    }

    let summary = Explorer::new()
        .policy(Policy::Exhaustive { delays: 3 })
        .schedules(20_000)
        .try_run(program)
        .unwrap_or_else(|f| panic!("{f}"));
    assert!(summary.exhausted, "{summary:?}");
}

/// The tracer sees a select block with every source.
#[cfg(feature = "trace")]
#[test]
fn a_blocking_select_is_traced_with_its_sources() {
    use filament::{FiberId, Trace};

    #[derive(Default)]
    struct Blocks(StdMutex<Vec<String>>);
    impl Trace for Blocks {
        fn block_in(&self, _id: FiberId, reason: WaitReason, _object: &'static str) {
            self.0.lock().unwrap().push(reason.to_string());
        }
    }

    let tracer = Blocks::default();
    let ch: Channel<u32, 1> = Channel::new();
    let s = Semaphore::new(0);
    Runtime::<2>::scope(|rt| {
        assert!(rt.set_tracer(&tracer));
        rt.spawn_detached(stack(), |fib| {
            let mut r = RecvCase::new(&ch);
            let mut a = AcquireCase::new(&s);
            assert_eq!(select::select(fib, [&mut r, &mut a]), Ok(1));
        })
        .unwrap();
        rt.spawn_detached(stack(), |fib| s.give(fib).unwrap()).unwrap();
        rt.run().unwrap();
    });
    assert_eq!(
        tracer.0.into_inner().unwrap(),
        [format!("select on recv on channel {:#x}, semaphore {:#x}", addr(&ch), addr(&s))]
    );
}

/// A select parked for good (cancelled once, caught, blocked again) by a
/// runtime that is then dropped: the signal it watched is released with that
/// runtime, and must not keep the parked select's node, which points into
/// the dropped runtime's fiber table (a use after free the next user of the
/// signal would walk into; caught by the AddressSanitizer run).
#[test]
fn a_signal_released_by_a_dropped_runtime_keeps_no_parked_selector() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    static SIG: IrqSignal = IrqSignal::new();
    let rt = Box::new(Runtime::<'static, 1>::new());
    let _parked = rt
        .spawn(stack(), |fib| {
            let _ = catch_unwind(AssertUnwindSafe(|| {
                let mut c = IrqCase::new(&SIG);
                let _ = select::select(fib, [&mut c]);
            }));
            let mut c = IrqCase::new(&SIG);
            let _ = select::select(fib, [&mut c]);
        })
        .unwrap();
    assert!(matches!(rt.run_for(&mut HostClock::new(), 2), Err(RunError::TimedOut(_))));
    assert!(matches!(rt.run(), Err(RunError::Poisoned)), "the select is parked");
    drop(rt); // poisoned: the stack leaks, the signal is released
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt
        .spawn(stack(), |fib| {
            let mut c = IrqCase::new(&SIG);
            select::select(fib, [&mut c]).map(|_| c.count())
        })
        .unwrap();
    rt.spawn_detached(stack(), |_| SIG.notify_from_isr()).unwrap();
    rt.run_with_idle(&mut HostClock::new()).unwrap();
    assert_eq!(rt.take(h).unwrap(), Ok(1));
}

/// A select blocked on an interrupt-capable semaphore or event is woken by a
/// `give_from_isr` / `set_from_isr` from another thread: the select counts as
/// an interrupt waiter (the runtime polls and idles, no deadlock report), the
/// drain wakes the sleeping select, and the case absorbs the interrupt give.
#[test]
fn interrupt_gives_and_sets_wake_a_blocked_select() {
    static SEM: Semaphore = Semaphore::new(0).isr_capable();
    static EV: Event = Event::new().isr_capable();
    static IDLE: Channel<u32, 1> = Channel::new();
    for round in 0..2 {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let outcome = Runtime::<1>::scope(|rt| {
                let h = rt
                    .spawn(stack(), |fib| {
                        let mut idle = RecvCase::new(&IDLE);
                        let mut permit = AcquireCase::new(&SEM);
                        let mut event = EventCase::new(&EV);
                        let fired = select::select(fib, [&mut idle, &mut permit, &mut event]);
                        (fired, permit.is_acquired(), event.is_fired())
                    })
                    .unwrap();
                let run = rt.run_with_idle(&mut HostClock::new());
                (run.map_err(|e| e.to_string()), rt.take(h).unwrap())
            });
            let _ = tx.send(outcome);
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        if round == 0 {
            SEM.give_from_isr();
        } else {
            EV.set_from_isr();
        }
        let (run, (fired, acquired, event)) =
            rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the select was never woken");
        assert_eq!(run, Ok(()), "round {round}");
        if round == 0 {
            assert_eq!((fired, acquired, event), (Ok(1), true, false));
        } else {
            assert_eq!((fired, acquired, event), (Ok(2), false, true));
        }
    }
}

/// Review finding: a case that cannot fire again (a `RecvCase` still holding
/// an untaken value) was linked into its channel's selector list; woken
/// first, its select fired nothing, blocked again, and the wake meant for
/// another select was lost (that one then deadlocked with a value queued).
#[test]
fn a_spent_case_does_not_swallow_another_selects_wake() {
    static A: Channel<u32, 4> = Channel::new();
    Runtime::<3>::scope(|rt| {
        let s1 = rt
            .spawn_named("s1", stack(), |fib| {
                let mut r1 = RecvCase::new(&A);
                let first = select::select(fib, [&mut r1]); // gets 1, not taken
                let second = select::select_timeout(fib, [&mut r1], 1000); // r1 cannot fire
                (first, second, r1.take())
            })
            .unwrap();
        let s2 = rt
            .spawn_named("s2", stack(), |fib| {
                let mut r2 = RecvCase::new(&A);
                for _ in 0..3 {
                    fib.yield_now(); // start watching after s1's second select
                }
                let r = select::select(fib, [&mut r2]);
                (r, r2.take())
            })
            .unwrap();
        rt.spawn_named("p", stack(), |fib| {
            A.send(fib, 1).unwrap();
            for _ in 0..10 {
                fib.yield_now();
            }
            A.send(fib, 2).unwrap(); // must wake s2
        })
        .map(|_| ())
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(s1).unwrap(), (Ok(0), Err(SelectError::TimedOut), Some(Ok(1))));
        assert_eq!(rt.take(s2).unwrap(), (Ok(0), Some(Ok(2))));
    });
}

/// Review 10: a select that blocked on a semaphore and an event before
/// either was interrupt-capable is not counted as an interrupt waiter, but
/// the first `give_from_isr` / `set_from_isr` (here a fiber's call, for a
/// deterministic order) must still reach it: before the fix the sources were
/// not registered and `run` reported the select deadlocked with the permit
/// (the set) there.
#[test]
fn a_first_interrupt_give_or_set_reaches_a_select_that_blocked_before() {
    for round in 0..2 {
        let sem = Semaphore::new(0);
        let ev = Event::new();
        let (sem, ev) = (&sem, &ev);
        let (run, fired) = Runtime::<2>::scope(|rt| {
            let h = rt
                .spawn(stack(), move |fib| {
                    let mut permit = AcquireCase::new(sem);
                    let mut event = EventCase::new(ev);
                    let fired = select::select(fib, [&mut permit, &mut event]);
                    (fired, permit.is_acquired(), event.is_fired())
                })
                .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                fib.yield_now(); // the select blocks
                if round == 0 { sem.give_from_isr() } else { ev.set_from_isr() }
            })
            .unwrap();
            let run = rt.run().map_err(|e| e.to_string());
            (run, rt.take(h).unwrap())
        });
        assert_eq!(run, Ok(()), "round {round}");
        let want = if round == 0 { (Ok(0), true, false) } else { (Ok(1), false, true) };
        assert_eq!(fired, want, "round {round}");
    }
}
