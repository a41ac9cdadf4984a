//! Dropped `JoinHandle`s detach their fibers (`src/orphans.rs`): through
//! static memory each live runtime owns, so what one runtime does never takes
//! detach-on-drop away from another; exactly when a runtime finds no room.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use filament::{JoinHandle, Runtime, SpawnErrorKind, Stack};

fn small() -> Stack<'static> {
    Stack::host(16 * 1024).expect("mmap stack")
}

/// Review 11: dropped handles of one idle runtime (one that never comes back
/// to adopt them) filled the process-wide note table, and from then on every
/// other runtime's dropped handles kept their slots: a one-slot runtime could
/// spawn once and then stayed `Full` for good. A runtime's dropped handles
/// now depend on nothing another runtime does.
#[test]
fn dropped_handles_of_an_idle_runtime_do_not_stop_detach_on_drop_elsewhere() {
    let out =
        filament::host::run_in_child("dropped_handles_of_an_idle_runtime_do_not_stop_detach_on_drop_elsewhere", || {
            let idle = Box::new(Runtime::<'static, 1100>::new());
            for _ in 0..1100 {
                drop(idle.spawn(small(), |_| ()).ok().unwrap());
            }
            let b = Box::new(Runtime::<'static, 1>::new());
            for round in 0..3 {
                let h = b.spawn(small(), |_| 1u32).unwrap_or_else(|e| panic!("round {round}: {e}"));
                b.run().unwrap();
                drop(h);
            }
            // The idle runtime gets its own slots back when it comes back.
            assert_eq!(idle.stats().unwrap().live, 1100);
            idle.run().unwrap();
            assert_eq!(idle.stats().unwrap().live, 0);
            println!("DETACH-STILL-WORKS");
        });
    assert!(out.success() && out.stdout.contains("DETACH-STILL-WORKS"), "{out:?}");
}

/// The one way a runtime goes without detach-on-drop: it found the pool of
/// bits full at its first use (live runtimes' capacities add up to 262 144
/// slots). Its dropped handles then keep their slots (`Full` counts them)
/// until it is dropped; a runtime registered once a big one is gone has
/// detach-on-drop again.
#[test]
fn a_runtime_that_finds_no_room_keeps_dropped_handles_slots_until_dropped() {
    const BIG: usize = 16384; // 256 of the pool's 4 096 words
    static FILL: [Runtime<'static, BIG>; 15] = [const { Runtime::new() }; 15];
    let out =
        filament::host::run_in_child("a_runtime_that_finds_no_room_keeps_dropped_handles_slots_until_dropped", || {
            for rt in &FILL {
                let _ = rt.stats(); // registers at first use
            }
            // The sixteenth, built on a thread with room for it.
            let last = std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(|| {
                    let rt = Box::new(Runtime::<'static, BIG>::new());
                    let _ = rt.stats();
                    rt
                })
                .unwrap()
                .join()
                .unwrap();
            let left_out = Box::new(Runtime::<'static, 1>::new());
            drop(left_out.spawn(small(), |_| ()).ok().unwrap());
            left_out.run().unwrap();
            let kind = left_out.spawn(small(), |_| ()).err().map(|e| e.kind());
            assert_eq!(kind, Some(SpawnErrorKind::Full { capacity: 1, finished_untaken: 1 }));
            drop(left_out);
            drop(last);
            let b = Box::new(Runtime::<'static, 1>::new());
            for round in 0..3 {
                let h = b.spawn(small(), |_| ()).unwrap_or_else(|e| panic!("round {round}: {e}"));
                b.run().unwrap();
                drop(h);
            }
            println!("EXACT");
        });
    assert!(out.success() && out.stdout.contains("EXACT"), "{out:?}");
}

/// Handles dropped on another thread, racing their runtime's `run` and its
/// drop: every dropped handle's slot comes back, and a runtime that takes
/// over a dropped one's entry and bits never sees a bit of the old one's (it
/// would detach a fiber whose handle is alive: `take` would fail).
#[test]
fn handles_dropped_on_another_thread_race_runs_and_runtime_drops() {
    let (to_dropper, inbox) = mpsc::channel::<Vec<JoinHandle<u32>>>();
    let (dropped, done) = mpsc::channel::<()>();
    let dropper = std::thread::spawn(move || {
        for batch in inbox {
            drop(batch);
            let _ = dropped.send(());
        }
    });
    for round in 0..500u32 {
        let rt = Box::new(Runtime::<'static, 4>::new());
        let mut kept = Vec::new();
        let mut away = Vec::new();
        for i in 0..4 {
            let h = rt.spawn(small(), move |_| round * 4 + i).unwrap();
            if i % 2 == 0 { kept.push(h) } else { away.push(h) }
        }
        to_dropper.send(away).unwrap();
        if round % 2 == 0 {
            // Wait for the drops: both slots must come back.
            done.recv().unwrap();
            rt.run().unwrap();
            for h in kept {
                assert!(rt.take(h).is_ok(), "round {round}: a kept handle's fiber was detached");
            }
            for i in 0..4 {
                let h = rt.spawn(small(), move |_| i).unwrap_or_else(|e| panic!("round {round}: {e}"));
                rt.run().unwrap();
                assert_eq!(rt.take(h).unwrap(), i);
            }
        } else {
            // Race the drops against `run` and the runtime's drop.
            rt.run().unwrap();
            for h in kept {
                assert!(rt.take(h).is_ok(), "round {round}: a kept handle's fiber was detached");
            }
            drop(rt);
            done.recv().unwrap();
        }
    }
    drop(to_dropper);
    dropper.join().unwrap();
}

/// A fiber result that counts its drops in its counter and, if asked,
/// panics in its `Drop`.
struct Res(bool, &'static AtomicUsize);

impl Drop for Res {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
        if self.0 {
            panic!("result drop panics");
        }
    }
}

/// Review 12: a dropped handle's result whose `Drop` panics while the runtime
/// adopts dropped handles took the other pending ones with it (their bits
/// were swapped out of the pool into the adopting frame and its flag cleared):
/// their results were never dropped and their slots never came back (a
/// four-slot runtime stayed `Full` with two "finished untaken" fibers nobody
/// had a handle to). The unwind now puts what it had not adopted back.
#[test]
fn a_panicking_result_drop_during_adoption_loses_no_other_dropped_handle() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let rt = Box::new(Runtime::<'static, 4>::new());
    let a = rt.spawn(small(), |_| Res(true, &DROPS)).ok().unwrap();
    let b = rt.spawn(small(), |_| Res(false, &DROPS)).ok().unwrap();
    let c = rt.spawn(small(), |_| Res(false, &DROPS)).ok().unwrap();
    drop(a);
    drop(b);
    drop(c);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run().is_ok()));
    assert!(run.is_err(), "the result's panic reaches run's caller");
    // The next run (or spawn into a full table) adopts what is left.
    rt.run().unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 3, "every dropped handle's result is dropped");
    assert_eq!(rt.stats().unwrap().live, 0, "every slot came back");
    let hs: Vec<_> = (0..4).map(|_| rt.spawn(small(), |_| ()).unwrap_or_else(|e| panic!("a free slot: {e}"))).collect();
    rt.run().unwrap();
    for h in hs {
        rt.take(h).unwrap();
    }
}

/// As above, with the panicking result the last of its pool word and the
/// other dropped handles in the next word (a runtime of 66 slots: slots 62
/// and 63 in the first word, 64 and 65 in the second).
#[test]
fn a_panicking_result_drop_at_the_end_of_a_pool_word_keeps_the_next_words() {
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    let rt = Box::new(Runtime::<'static, 66>::new());
    let mut kept = Vec::new();
    for _ in 0..63 {
        kept.push(rt.spawn(small(), |_| Res(false, &DROPS)).ok().unwrap());
    }
    let last_of_word = rt.spawn(small(), |_| Res(true, &DROPS)).ok().unwrap();
    let next_word: Vec<_> = (0..2).map(|_| rt.spawn(small(), |_| Res(false, &DROPS)).ok().unwrap()).collect();
    assert_eq!(last_of_word.id().index(), 63);
    drop(last_of_word);
    drop(next_word);
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.run().is_ok()));
    assert!(run.is_err(), "the result's panic reaches run's caller");
    rt.run().unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 3, "every dropped handle's result is dropped");
    assert_eq!(rt.stats().unwrap().live, 63, "the dropped handles' slots came back");
    for h in kept {
        drop(rt.take(h).unwrap());
    }
}
