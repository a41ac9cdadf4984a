//! `StreamBuffer` and `MessageBuffer` with peers outside the fiber's
//! runtime: 10^6 bytes from an OS thread into a fiber (the acceptance test),
//! writers on two threads at once, writer and reader in two runtimes, a
//! side bound to its runtime for a run, and bytes written by a POSIX signal
//! handler interrupting the reader's own thread. Every byte is checked.
//!
//! Every scenario runs under a watchdog that fails the test after 60 s
//! instead of hanging it on a lost wake-up. Nothing here asserts timing.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use filament::host::HostClock;
use filament::sync::{MessageBuffer, MessageError, StreamBuffer, StreamError};
use filament::{Runtime, Stack};

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// Runs `f` on a thread of its own; fails the test if it has not returned in
/// 60 s (a lost wake-up parks the runtime for good).
fn watchdog<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(panic::catch_unwind(AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(v)) => v,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("{what}: hung for 60 s: a wake-up was lost"),
    }
}

/// A small deterministic generator (xorshift64*), so producer and consumer
/// can each compute the same byte sequence and chunk sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// The payload byte at stream offset `i` (not periodic in the ring's size).
fn byte_at(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 8) as u8
}

// ---------------------------------------------------------------------------
// The acceptance test: 10^6 bytes from an OS thread into a fiber.

/// A producer on another OS thread writes 10^6 bytes with `send_from_isr` in
/// random chunks (retrying what did not fit); a consumer fiber reads them with
/// blocking `receive` into random-sized buffers, with a trigger level, on a
/// runtime idling in `HostClock` (woken by the buffer's signal). Every byte
/// arrives once, in order.
#[test]
fn a_million_bytes_from_a_thread_into_a_fiber_arrive_exactly() {
    const TOTAL: usize = 1_000_000;
    static PIPE: StreamBuffer<251> = StreamBuffer::new().with_trigger_level(16).named("pipe");
    let (checked, received) = watchdog("10^6-byte stream", || {
        let producer = thread::spawn(|| {
            let mut rng = Rng(0x1234_5678_9abc_def1);
            let mut chunk = [0u8; 300];
            let mut sent = 0;
            while sent < TOTAL {
                let len = (1 + rng.below(300)).min(TOTAL - sent);
                for (k, b) in chunk[..len].iter_mut().enumerate() {
                    *b = byte_at(sent + k);
                }
                let mut done = 0;
                while done < len {
                    let n = PIPE.send_from_isr(&chunk[done..len]).expect("only one writer");
                    if n == 0 {
                        thread::yield_now(); // full: the fiber drains it
                    }
                    done += n;
                }
                sent += len;
            }
        });
        let rt = Box::new(Runtime::<'static, 1>::new());
        let consumer = rt
            .spawn(stack(), |fib| {
                let mut rng = Rng(0xfeed_beef_0bad_cafe);
                let mut out = [0u8; 512];
                let (mut got, mut wrong) = (0usize, 0usize);
                while got < TOTAL {
                    let want = (1 + rng.below(512)).min(TOTAL - got);
                    let n = PIPE.receive(fib, &mut out[..want]).unwrap();
                    assert!(n >= 1 && n <= want);
                    // The trigger level (or the whole buffer given, if smaller) was there.
                    assert!(n >= want.min(16), "woke below the trigger level");
                    wrong += out[..n].iter().enumerate().filter(|&(k, &b)| b != byte_at(got + k)).count();
                    got += n;
                }
                (wrong, got)
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        producer.join().unwrap();
        rt.take(consumer).unwrap()
    });
    assert_eq!(received, TOTAL);
    assert_eq!(checked, 0, "bytes differ from what was sent");
}

// ---------------------------------------------------------------------------
// Fiber semantics.

/// Two OS threads writing one message buffer at once never corrupt it: each
/// write either goes in whole or is refused (`Busy` or `Full`), and a reader
/// thread gets exactly the messages accepted, each intact, each writer's in
/// its order.
#[test]
fn concurrent_writers_on_threads_are_refused_not_corrupting() {
    static SHARED: MessageBuffer<4096> = MessageBuffer::new();
    const PER_WRITER: u32 = 50_000;
    let (accepted, received, busy) = watchdog("two writers", || {
        let done = AtomicBool::new(false);
        let busy = AtomicUsize::new(0);
        thread::scope(|s| {
            let writers: Vec<_> = (0..2u8)
                .map(|w| {
                    let busy = &busy;
                    s.spawn(move || {
                        let mut accepted = Vec::new();
                        for seq in 0..PER_WRITER {
                            // [writer, seq (4 bytes), len-dependent filler]
                            let len = 5 + (seq as usize * 37 % 400);
                            let mut msg = vec![w; len];
                            msg[1..5].copy_from_slice(&seq.to_le_bytes());
                            match SHARED.send_from_isr(&msg) {
                                Ok(()) => accepted.push(seq),
                                Err(MessageError::Busy) => {
                                    busy.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(MessageError::Full) => thread::yield_now(),
                                Err(e) => panic!("unexpected {e:?}"),
                            }
                        }
                        accepted
                    })
                })
                .collect();
            let reader = s.spawn(|| {
                let mut got: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
                let mut out = [0u8; 512];
                loop {
                    match SHARED.receive_from_isr(&mut out) {
                        Ok(n) => {
                            let w = out[0];
                            let seq = u32::from_le_bytes(out[1..5].try_into().unwrap());
                            assert!(w < 2, "corrupt writer tag {w}");
                            assert_eq!(n, 5 + (seq as usize * 37 % 400), "corrupt length");
                            assert!(out[5..n].iter().all(|&b| b == w), "corrupt body");
                            got[w as usize].push(seq);
                        }
                        Err(MessageError::Empty) if done.load(Ordering::Acquire) => {
                            if SHARED.is_empty() {
                                break;
                            }
                        }
                        Err(MessageError::Empty) => thread::yield_now(),
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
                got
            });
            let accepted: Vec<Vec<u32>> = writers.into_iter().map(|h| h.join().unwrap()).collect();
            done.store(true, Ordering::Release);
            (accepted, reader.join().unwrap(), busy.load(Ordering::Relaxed))
        })
    });
    assert_eq!(received[0], accepted[0]);
    assert_eq!(received[1], accepted[1]);
    println!("refused with Busy: {busy}");
}

/// The peers may be fibers of two runtimes on two OS threads: a blocking
/// writer in one and a blocking reader in the other stream 100 000 bytes
/// through a 16-byte buffer, each woken by the other's publication.
#[test]
fn writer_and_reader_in_two_runtimes_on_two_threads() {
    const TOTAL: usize = 100_000;
    static CROSS: StreamBuffer<16> = StreamBuffer::new().with_trigger_level(5);
    let wrong = watchdog("two runtimes", || {
        let writer = thread::spawn(|| {
            let rt = Box::new(Runtime::<'static, 1>::new());
            rt.spawn_detached(stack(), |fib| {
                let mut rng = Rng(3);
                let mut chunk = [0u8; 40];
                let mut sent = 0;
                while sent < TOTAL {
                    let len = (1 + rng.below(40)).min(TOTAL - sent);
                    for (k, b) in chunk[..len].iter_mut().enumerate() {
                        *b = byte_at(sent + k);
                    }
                    assert_eq!(CROSS.send(fib, &chunk[..len]), Ok(len));
                    sent += len;
                }
            })
            .unwrap();
            rt.run_with_idle(&mut HostClock::new()).unwrap();
        });
        let rt = Box::new(Runtime::<'static, 1>::new());
        let reader = rt
            .spawn(stack(), |fib| {
                let mut out = [0u8; 16];
                let (mut got, mut wrong) = (0usize, 0usize);
                while got < TOTAL {
                    let want = 16.min(TOTAL - got);
                    let n = CROSS.receive(fib, &mut out[..want]).unwrap();
                    wrong += out[..n].iter().enumerate().filter(|&(k, &b)| b != byte_at(got + k)).count();
                    got += n;
                }
                wrong
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        writer.join().unwrap();
        rt.take(reader).unwrap()
    });
    assert_eq!(wrong, 0);
}

/// A buffer's reader signal belongs to the runtime whose fiber waited on it
/// until that runtime's run returns: a fiber of another runtime that would
/// block meanwhile gets `WrongRuntime` (and the non-blocking forms still work).
#[test]
fn a_waiting_side_is_bound_to_its_runtime_for_the_run() {
    static BOUND: StreamBuffer<8> = StreamBuffer::new();
    static GO: filament::IrqSignal = filament::IrqSignal::new();
    watchdog("bound reader signal", || {
        let (tx, rx) = mpsc::channel();
        let first = thread::spawn(move || {
            let rt = Box::new(Runtime::<'static, 1>::new());
            let h = rt
                .spawn(stack(), move |fib| {
                    let mut out = [0u8; 4];
                    let timed_out = BOUND.receive_timeout(fib, &mut out, 1); // binds the reader signal
                    tx.send(()).unwrap();
                    GO.wait(fib).unwrap(); // keep the run going
                    timed_out
                })
                .unwrap();
            rt.run_with_idle(&mut HostClock::new()).unwrap();
            rt.take(h).unwrap()
        });
        rx.recv().unwrap();
        let rt = Box::new(Runtime::<'static, 1>::new());
        let h = rt
            .spawn(stack(), |fib| {
                let mut out = [0u8; 4];
                let blocking = BOUND.receive(fib, &mut out);
                let polling = BOUND.try_receive(fib, &mut out);
                (blocking, polling)
            })
            .unwrap();
        rt.run().unwrap();
        GO.notify_from_isr();
        assert_eq!(first.join().unwrap(), Err(StreamError::TimedOut));
        assert_eq!(rt.take(h).unwrap(), (Err(StreamError::WrongRuntime), Ok(0)));
    });
}

/// `send_from_isr` from a real POSIX signal handler on the very thread that
/// runs the reading fiber: the handler interrupts the fiber in the middle of
/// its reads (or the runtime in its idle sleep, or in the middle of a poll)
/// and writes the next bytes of the stream; the fiber reads 20 000 bytes,
/// every one in order.
#[test]
fn bytes_from_a_signal_handler_on_the_reader_thread() {
    const TOTAL: usize = 20_000;
    static SIGPIPE: StreamBuffer<32> = StreamBuffer::new().with_trigger_level(4).named("sig");
    static SENT: AtomicUsize = AtomicUsize::new(0);
    extern "C" fn on_sigusr1(_: libc::c_int) {
        // Only this handler writes, on one thread, never nested (SIGUSR1 is
        // blocked while it runs): a plain load-then-store counter is enough.
        let sent = SENT.load(Ordering::Relaxed);
        let len = (1 + sent % 7).min(TOTAL - sent);
        let mut chunk = [0u8; 7];
        for (k, b) in chunk[..len].iter_mut().enumerate() {
            *b = byte_at(sent + k);
        }
        if let Ok(n) = SIGPIPE.send_from_isr(&chunk[..len]) {
            SENT.store(sent + n, Ordering::Relaxed);
        }
    }
    // SAFETY: installs a handler that only touches atomics and the buffer's
    // interrupt-safe `send_from_isr`; no other test here uses SIGUSR1.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
    let wrong = watchdog("signal handler writer", || {
        // SAFETY: plain query of the calling thread.
        let me = unsafe { libc::pthread_self() };
        let done = std::sync::Arc::new(AtomicBool::new(false));
        let stop = std::sync::Arc::clone(&done);
        let sender = thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // SAFETY: `me` is alive: it joins this thread before it exits.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
                thread::sleep(Duration::from_micros(20));
            }
        });
        let rt = Box::new(Runtime::<'static, 1>::new());
        let reader = rt
            .spawn(stack(), |fib| {
                let mut out = [0u8; 16];
                let (mut got, mut wrong) = (0usize, 0usize);
                while got < TOTAL {
                    let want = 16.min(TOTAL - got);
                    let n = SIGPIPE.receive(fib, &mut out[..want]).unwrap();
                    wrong += out[..n].iter().enumerate().filter(|&(k, &b)| b != byte_at(got + k)).count();
                    got += n;
                }
                wrong
            })
            .unwrap();
        rt.run_with_idle(&mut HostClock::new()).unwrap();
        done.store(true, Ordering::SeqCst);
        sender.join().unwrap();
        // SAFETY: blocks SIGUSR1 for this (soon finished) thread only.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        rt.take(reader).unwrap()
    });
    assert_eq!(wrong, 0);
    assert_eq!(SENT.load(Ordering::Relaxed), TOTAL);
}
