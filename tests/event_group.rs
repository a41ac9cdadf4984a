//! `sync::EventGroup`: FreeRTOS event-group semantics (wait any/all, clear on
//! exit applied after every waiter was evaluated, sync rendezvous, timeouts),
//! deadlock reports, interrupt-side sets through a timer service, and a
//! model-based property test against a sequential reference model.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex as StdMutex;

use filament::host::HostClock;
use filament::sync::{EventGroup, TryError, WaitError, Want};
use filament::timer::TimerService;
use filament::{JoinError, RunError, Runtime, Stack, Ticks, WaitReason};
use proptest::prelude::*;

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

fn log(l: &StdMutex<Vec<String>>, s: impl Into<String>) {
    l.lock().unwrap().push(s.into());
}

#[test]
fn is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<EventGroup>();
    both::<TimerService<'static>>();
}

#[test]
fn want_conditions() {
    assert!(Want::any(0b101).holds(0b100));
    assert!(!Want::any(0b101).holds(0b010));
    assert!(Want::all(0b101).holds(0b111));
    assert!(!Want::all(0b101).holds(0b100));
    assert!(Want::all(0).holds(0));
    assert!(!Want::any(0).holds(u32::MAX));
    assert_eq!(Want::all(6).clear_on_exit().mask(), 6);
}

#[test]
fn set_wakes_in_fifo_order_only_the_satisfied_and_clears_after_evaluating_all() {
    let g = EventGroup::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<8>::scope(|rt| {
        // Both `a` and `b` want bit 0 and clear it: one set wakes both (the
        // clear of `a` is applied only after `b` was evaluated).
        for (name, want) in [
            ("a", Want::any(1).clear_on_exit()),
            ("c", Want::all(0b110)),
            ("b", Want::any(1).clear_on_exit()),
            ("d", Want::any(0b1000)),
        ] {
            let (g, l) = (&g, &l);
            rt.spawn_detached(stack(), move |fib| {
                let got = g.wait(fib, want).unwrap();
                log(l, format!("{name}:{got:#b}"));
            })
            .unwrap();
        }
        rt.spawn_detached(stack(), |fib| {
            fib.yield_now(); // everyone waits
            assert_eq!(g.set(fib, 0b011).unwrap(), 0b010, "bit 0 cleared by a and b, bit 1 stays");
            fib.yield_now();
            log(&l, "set2");
            assert_eq!(g.set(fib, 0b100).unwrap(), 0b110, "c does not clear");
            fib.yield_now();
            assert_eq!(g.clear(fib, 0b110).unwrap(), 0b110);
            assert_eq!(g.get(fib).unwrap(), 0);
            g.set(fib, 0b1000).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    assert_eq!(l.into_inner().unwrap(), ["a:0b11", "b:0b11", "set2", "c:0b110", "d:0b1000"]);
}

#[test]
fn try_wait_and_immediate_wait_clear_only_on_success() {
    let g = EventGroup::new();
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                assert_eq!(g.try_wait(fib, Want::any(1).clear_on_exit()), Err(TryError::WouldBlock));
                g.set(fib, 0b11).unwrap();
                assert_eq!(g.try_wait(fib, Want::all(0b111).clear_on_exit()), Err(TryError::WouldBlock));
                assert_eq!(g.get(fib).unwrap(), 0b11, "a failed wait clears nothing");
                assert_eq!(g.wait(fib, Want::all(0b11).clear_on_exit()), Ok(0b11));
                g.get(fib).unwrap()
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), 0);
    });
}

#[test]
fn timeout_rechecks_and_times_out() {
    let g = EventGroup::new();
    Runtime::<4>::scope(|rt| {
        let w = rt
            .spawn(stack(), |fib| {
                let r1 = g.wait_timeout(fib, Want::any(1), 10);
                let t1 = fib.now();
                let r2 = g.wait_timeout(fib, Want::any(2).clear_on_exit(), 0);
                (r1, t1, r2)
            })
            .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(w).unwrap(), (Err(WaitError::TimedOut), 10, Err(WaitError::TimedOut)));
        let w = rt.spawn(stack(), |fib| g.wait_timeout(fib, Want::any(1), 10)).unwrap();
        rt.spawn_detached(stack(), |fib| {
            fib.sleep(4);
            g.set(fib, 1).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(w).unwrap(), Ok(1));
    });
}

#[test]
fn sync_is_a_rendezvous_and_clears_the_bits() {
    const ALL: u32 = 0b111;
    let g = EventGroup::new();
    let l = StdMutex::new(Vec::new());
    Runtime::<4>::scope(|rt| {
        let hs: Vec<_> = (0..3)
            .map(|i| {
                let (g, l) = (&g, &l);
                rt.spawn(stack(), move |fib| {
                    fib.sleep(i * 5); // arrive at 0, 5, 10
                    let got = g.sync(fib, 1 << i, ALL).unwrap();
                    log(l, format!("{i}@{}", fib.now()));
                    got
                })
                .unwrap()
            })
            .collect();
        let check = rt
            .spawn(stack(), |fib| {
                fib.sleep(20);
                g.get(fib).unwrap()
            })
            .unwrap();
        rt.run().unwrap();
        for h in hs {
            assert_eq!(rt.take(h).unwrap(), ALL);
        }
        assert_eq!(rt.take(check).unwrap(), 0, "sync clears the bits it waited for");
    });
    // The last arrival does not block; the others are woken in FIFO order.
    assert_eq!(l.into_inner().unwrap(), ["2@10", "0@10", "1@10"]);
}

#[test]
fn deadlock_report_names_the_group_and_waiters_unlink() {
    static G: EventGroup = EventGroup::new().named("flags");
    Runtime::<4>::scope(|rt| {
        let a = rt.spawn_named("a", stack(), |fib| G.wait(fib, Want::all(3)).unwrap()).unwrap();
        let b = rt.spawn_named("b", stack(), |fib| G.wait(fib, Want::any(4)).unwrap()).unwrap();
        let Err(RunError::Deadlock(report)) = rt.run() else { panic!("expected a deadlock") };
        let addr = &G as *const EventGroup as usize;
        let got: Vec<_> = report.fibers().iter().map(|b| (b.name, b.reason, b.object)).collect();
        assert_eq!(got, [("a", WaitReason::EventGroup(addr), "flags"), ("b", WaitReason::EventGroup(addr), "flags")]);
        assert!(report.to_string().contains("event group"), "{report}");
        assert!(matches!(rt.take(a), Err(JoinError::Cancelled)));
        assert!(matches!(rt.take(b), Err(JoinError::Cancelled)));
        // The cancelled waiters' records are gone: a set wakes nobody stale.
        let h = rt.spawn(stack(), |fib| G.set(fib, 7).unwrap()).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), 7);
    });
}

#[test]
fn outside_calls_and_wrong_runtime() {
    let g = EventGroup::new();
    assert_eq!(g.set_outside(0b100), Ok(0b100));
    assert_eq!(g.get_outside(), Ok(0b100));
    Runtime::<2>::scope(|rt| {
        let h = rt
            .spawn(stack(), |fib| {
                let _ = g.wait(fib, Want::any(0b100)).unwrap(); // binds
                std::thread::scope(|s| s.spawn(|| g.get_outside()).join().unwrap())
            })
            .unwrap();
        rt.run().unwrap();
        assert!(rt.take(h).unwrap().is_err(), "bound to the running runtime");
    });
}

#[test]
fn bits_set_from_an_interrupt_handler_wake_waiters_through_the_service() {
    static SVC: TimerService = TimerService::new().named("daemon");
    static G: EventGroup = EventGroup::new().named("irq-bits");
    Runtime::<4>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| SVC.run(fib).unwrap()).unwrap();
        let w = rt
            .spawn(stack(), |fib| {
                let got = G.wait(fib, Want::all(0b11).clear_on_exit()).unwrap();
                SVC.shutdown(fib).unwrap();
                got
            })
            .unwrap();
        // "Interrupts" from another thread, while the runtime idles.
        let isr = std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            SVC.set_bits_from_isr(&G, 0b01);
            std::thread::sleep(std::time::Duration::from_millis(5));
            SVC.set_bits_from_isr(&G, 0b10);
        });
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        isr.join().unwrap();
        assert_eq!(rt.take(w).unwrap(), 0b11);
    });
    assert_eq!(G.get_outside(), Ok(0));
}

#[test]
fn interrupt_bits_are_folded_in_by_any_fiber_call() {
    static SVC: TimerService = TimerService::new();
    static G: EventGroup = EventGroup::new();
    SVC.set_bits_from_isr(&G, 0b1); // no service fiber runs at all
    assert_eq!(G.get_outside(), Ok(0b1));
    Runtime::<2>::scope(|rt| {
        let h = rt.spawn(stack(), |fib| G.wait(fib, Want::any(1).clear_on_exit())).unwrap();
        rt.run().unwrap();
        assert_eq!(rt.take(h).unwrap(), Ok(1));
    });
    assert_eq!(G.get_outside(), Ok(0));
}

// ================================================================ model

#[derive(Debug, Clone, Copy)]
enum Op {
    Set(u32),
    Clear(u32),
    TryWait(Want),
    SpawnWait(Want, Option<Ticks>),
    SpawnSync(u32, u32, Option<Ticks>),
    Sleep(Ticks),
    Yield(u8),
}

fn want() -> impl Strategy<Value = Want> {
    (1u32..16, any::<bool>(), any::<bool>()).prop_map(|(m, all, clear)| {
        let w = if all { Want::all(m) } else { Want::any(m) };
        if clear { w.clear_on_exit() } else { w }
    })
}

fn timeout() -> impl Strategy<Value = Option<Ticks>> {
    prop_oneof![3 => Just(None), 1 => Just(Some(0)), 2 => (1u64..20).prop_map(Some)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u32..16).prop_map(Op::Set),
        2 => (1u32..16).prop_map(Op::Clear),
        2 => want().prop_map(Op::TryWait),
        5 => (want(), timeout()).prop_map(|(w, t)| Op::SpawnWait(w, t)),
        2 => (1u32..16, 1u32..16, timeout()).prop_map(|(s, w, t)| Op::SpawnSync(s, w, t)),
        1 => (1u64..25).prop_map(Op::Sleep),
        1 => (0u8..4).prop_map(Op::Yield),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    Got(u32),
    WouldBlock,
    Expired,
    /// What `set`/`clear` returned.
    Bits(u32),
}

/// The sequential reference model (FreeRTOS's algorithm, written plainly).
struct Model {
    bits: u32,
    now: Ticks,
    waiters: VecDeque<(usize, Option<Ticks>, Want)>,
    out: BTreeMap<usize, Out>,
}

impl Model {
    fn set(&mut self, bits: u32) {
        self.bits |= bits;
        let mut clear = 0;
        let now = self.bits;
        let out = &mut self.out;
        self.waiters.retain(|&(i, _, w)| {
            if w.holds(now) {
                out.insert(i, Out::Got(now));
                if w.clearing() {
                    clear |= w.mask();
                }
                false
            } else {
                true
            }
        });
        self.bits &= !clear;
    }

    fn take(&mut self, w: Want) -> Option<u32> {
        let b = self.bits;
        if !w.holds(b) {
            return None;
        }
        if w.clearing() {
            self.bits &= !w.mask();
        }
        Some(b)
    }

    fn block(&mut self, i: usize, w: Want, t: Option<Ticks>) {
        match t {
            // Blocking with a deadline already reached times out at once,
            // then re-checks (the bits did not change meanwhile).
            Some(0) => {
                let o = self.take(w).map_or(Out::Expired, Out::Got);
                self.out.insert(i, o);
            }
            _ => self.waiters.push_back((i, t.map(|t| self.now + t), w)),
        }
    }

    fn apply(&mut self, i: usize, op: Op) {
        match op {
            Op::Set(b) => {
                self.set(b);
                self.out.insert(i, Out::Bits(self.bits));
            }
            Op::Clear(b) => {
                self.out.insert(i, Out::Bits(self.bits));
                self.bits &= !b;
            }
            Op::TryWait(w) => {
                let o = self.take(w).map_or(Out::WouldBlock, Out::Got);
                self.out.insert(i, o);
            }
            Op::SpawnWait(w, t) => match self.take(w) {
                Some(b) => drop(self.out.insert(i, Out::Got(b))),
                None => self.block(i, w, t),
            },
            Op::SpawnSync(s, wf, t) => {
                let original = self.bits;
                self.set(s);
                if Want::all(wf).holds(original | s) {
                    self.bits &= !wf;
                    self.out.insert(i, Out::Got(original | s));
                } else {
                    self.block(i, Want::all(wf).clear_on_exit(), t);
                }
            }
            Op::Sleep(t) => {
                self.now += t;
                let now = self.now;
                let out = &mut self.out;
                // Conditions of blocked waiters never hold (a set wakes them),
                // so a timed-out waiter's re-check fails.
                self.waiters.retain(|&(i, d, _)| {
                    let gone = d.is_some_and(|d| d <= now);
                    if gone {
                        out.insert(i, Out::Expired);
                    }
                    !gone
                });
            }
            Op::Yield(_) => {}
        }
    }
}

fn run_group(ops: &[Op]) -> Result<(), TestCaseError> {
    let g = EventGroup::new();
    let out = StdMutex::new(BTreeMap::new());
    let final_bits = StdMutex::new(0);
    let rec = |i: usize, o: Out| assert!(out.lock().unwrap().insert(i, o).is_none(), "two outcomes for op {i}");
    let wait_out = |r: Result<u32, WaitError>| match r {
        Ok(b) => Out::Got(b),
        Err(WaitError::TimedOut) => Out::Expired,
        Err(e) => panic!("{e:?}"),
    };
    Runtime::<64>::scope(|rt| {
        rt.spawn_detached(stack(), |fib| {
            for (i, &op) in ops.iter().enumerate() {
                match op {
                    Op::Set(b) => rec(i, Out::Bits(g.set(fib, b).unwrap())),
                    Op::Clear(b) => rec(i, Out::Bits(g.clear(fib, b).unwrap())),
                    Op::TryWait(w) => rec(
                        i,
                        match g.try_wait(fib, w) {
                            Ok(b) => Out::Got(b),
                            Err(TryError::WouldBlock) => Out::WouldBlock,
                            Err(e) => panic!("{e:?}"),
                        },
                    ),
                    Op::SpawnWait(w, t) => {
                        let (g, rec) = (&g, &rec);
                        fib.spawn_detached(stack(), move |fib| {
                            let r = match t {
                                None => g.wait(fib, w),
                                Some(t) => g.wait_timeout(fib, w, t),
                            };
                            rec(i, wait_out(r));
                        })
                        .unwrap();
                    }
                    Op::SpawnSync(s, wf, t) => {
                        let (g, rec) = (&g, &rec);
                        fib.spawn_detached(stack(), move |fib| {
                            let r = match t {
                                None => g.sync(fib, s, wf),
                                Some(t) => g.sync_timeout(fib, s, wf, t),
                            };
                            rec(i, wait_out(r));
                        })
                        .unwrap();
                    }
                    Op::Sleep(t) => fib.sleep(t),
                    Op::Yield(k) => (0..k).for_each(|_| fib.yield_now()),
                }
                fib.yield_now(); // one round: every helper acts on this step
                fib.debug_check_invariants().unwrap();
            }
            // Release everyone still waiting: every mask is within 0xF.
            rec(usize::MAX, Out::Bits(g.set(fib, 0xF).unwrap()));
            fib.yield_now();
            *final_bits.lock().unwrap() = g.get(fib).unwrap();
        })
        .unwrap();
        rt.run().unwrap();
    });
    let mut model = Model { bits: 0, now: 0, waiters: VecDeque::new(), out: BTreeMap::new() };
    for (i, &op) in ops.iter().enumerate() {
        model.apply(i, op);
    }
    model.apply(usize::MAX, Op::Set(0xF));
    prop_assert_eq!(out.into_inner().unwrap(), model.out);
    prop_assert_eq!(final_bits.into_inner().unwrap(), model.bits);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn event_group_matches_model(ops in prop::collection::vec(op(), 1..40)) {
        run_group(&ops)?;
    }
}

/// Review finding: a group whose interrupt bits went through one timer
/// service stayed marked "queued" on that service's list for good; bits set
/// later through the right service never reached a fiber waiting on it.
#[test]
fn interrupt_bits_reach_a_waiter_whatever_service_carried_earlier_bits() {
    use filament::host::HostClock;
    use filament::timer::TimerService;
    static G: EventGroup = EventGroup::new();
    static SVC: TimerService<'static> = TimerService::new();
    {
        let gone = TimerService::new();
        gone.set_bits_from_isr(&G, 1); // a service that never runs again
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = Runtime::<'static, 4>::new();
        rt.spawn_detached(stack(), |fib| {
            let _ = SVC.run(fib);
        })
        .unwrap();
        let w = rt
            .spawn(stack(), |fib| {
                let r = G.wait(fib, Want::any(2));
                SVC.shutdown(fib).unwrap();
                r
            })
            .unwrap();
        std::thread::spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            SVC.set_bits_from_isr(&G, 2);
        });
        let run = rt.run_with_idle(&mut HostClock::new());
        let _ = tx.send((run.is_ok(), rt.take(w).unwrap()));
    });
    let (ok, got) = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("the waiter was never woken");
    assert!(ok);
    assert_eq!(got, Ok(3));
}
