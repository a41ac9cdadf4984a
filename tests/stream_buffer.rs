//! `StreamBuffer` and `MessageBuffer` between fibers: blocking semantics
//! (trigger level, timeouts, full buffers, message boundaries), the
//! single-writer/single-reader claims, names, unwinding, and explored
//! schedules. Interrupt handlers, other threads and other runtimes as peers
//! are in `tests/stream_buffer_isr.rs`; the model-based property tests of the
//! ring in `tests/stream_buffer_model.rs`.
//!
//! Scenarios that could hang on a lost wake-up run under a watchdog that
//! fails the test instead. Nothing here asserts timing (tick counts are
//! virtual time).

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use filament::sync::{Busy, MessageBuffer, MessageError, StreamBuffer, StreamError};
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

/// Two fibers stream 200 000 bytes through a 7-byte buffer with blocking
/// sends and receives of random sizes and a trigger level of 3: the writer
/// blocks while full, the reader until 3 bytes (or its whole buffer) are
/// there; every byte arrives once, in order, and nobody deadlocks.
#[test]
fn fibers_stream_through_a_tiny_buffer_byte_exact() {
    const TOTAL: usize = 200_000;
    let wrong = watchdog("fiber to fiber", || {
        static TINY: StreamBuffer<7> = StreamBuffer::new().with_trigger_level(3);
        let rt = Box::new(Runtime::<'static, 2>::new());
        let writer = rt
            .spawn(stack(), |fib| {
                let mut rng = Rng(7);
                let mut sent = 0;
                let mut chunk = [0u8; 20];
                while sent < TOTAL {
                    let len = (1 + rng.below(20)).min(TOTAL - sent);
                    for (k, b) in chunk[..len].iter_mut().enumerate() {
                        *b = byte_at(sent + k);
                    }
                    assert_eq!(TINY.send(fib, &chunk[..len]), Ok(len));
                    sent += len;
                }
            })
            .unwrap();
        let reader = rt
            .spawn(stack(), |fib| {
                let mut rng = Rng(11);
                let mut out = [0u8; 10];
                let (mut got, mut wrong) = (0usize, 0usize);
                while got < TOTAL {
                    let want = (1 + rng.below(10)).min(TOTAL - got);
                    let n = TINY.receive(fib, &mut out[..want]).unwrap();
                    assert!(n >= want.min(3) && n <= want);
                    wrong += out[..n].iter().enumerate().filter(|&(k, &b)| b != byte_at(got + k)).count();
                    got += n;
                }
                wrong
            })
            .unwrap();
        rt.run().unwrap();
        rt.take(writer).unwrap();
        rt.take(reader).unwrap()
    });
    assert_eq!(wrong, 0);
}

/// The reader stays blocked below the trigger level: a writer that sends one
/// byte every 10 ticks wakes it only with the 4th byte, at tick 30 and not
/// before; `receive_timeout` returns what is there when the time is up, and
/// `TimedOut` only when nothing is.
#[test]
fn trigger_level_and_timeouts() {
    static TRIG: StreamBuffer<16> = StreamBuffer::new().with_trigger_level(4);
    let rt = Box::new(Runtime::<'static, 2>::new());
    rt.spawn_detached(stack(), |fib| {
        for b in 1..=6u8 {
            assert_eq!(TRIG.send(fib, &[b]), Ok(1));
            fib.sleep(10);
        }
    })
    .unwrap();
    let reader = rt
        .spawn(stack(), |fib| {
            let mut out = [0u8; 8];
            let n = TRIG.receive(fib, &mut out).unwrap();
            let first = (fib.now(), out[..n].to_vec());
            // Bytes 5 and 6 come at ticks 40 and 50; the deadline is tick 55.
            let n = TRIG.receive_timeout(fib, &mut out, 25).unwrap();
            let second = (fib.now(), out[..n].to_vec());
            let none = TRIG.receive_timeout(fib, &mut out, 100);
            (first, second, none)
        })
        .unwrap();
    rt.run().unwrap();
    let (first, second, none) = rt.take(reader).unwrap();
    assert_eq!(first, (30, vec![1, 2, 3, 4]));
    assert_eq!(second, (55, vec![5, 6]));
    assert_eq!(none, Err(StreamError::TimedOut));
}

/// A blocked send writes what fits and waits for room for the rest; with a
/// timeout it reports how much went in, or `TimedOut` if nothing did.
#[test]
fn send_timeout_reports_partial_writes() {
    static SMALL: StreamBuffer<4> = StreamBuffer::new();
    let rt = Box::new(Runtime::<'static, 1>::new());
    let h = rt
        .spawn(stack(), |fib| {
            let partial = SMALL.send_timeout(fib, b"abcdef", 5);
            let nothing = SMALL.send_timeout(fib, b"gh", 5);
            let zero = SMALL.send_timeout(fib, b"gh", 0);
            let mut out = [0u8; 4];
            let n = SMALL.try_receive(fib, &mut out).unwrap();
            (partial, nothing, zero, out[..n].to_vec(), fib.now())
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(
        rt.take(h).unwrap(),
        (Ok(4), Err(StreamError::TimedOut), Err(StreamError::TimedOut), b"abcd".to_vec(), 10)
    );
}

/// One writer, one reader, enforced: while a fiber is blocked in `send`
/// (holding the writer side), another fiber's or thread's write is refused
/// with `Busy` and changes nothing; `reset` is refused too; the reader side
/// is free meanwhile, and its read lets the blocked writer finish.
#[test]
fn a_second_writer_gets_busy_and_changes_nothing() {
    static ONE: StreamBuffer<4> = StreamBuffer::new().named("one");
    let rt = Box::new(Runtime::<'static, 3>::new());
    let blocked = rt.spawn(stack(), |fib| ONE.send(fib, b"123456")).unwrap();
    let other = rt
        .spawn(stack(), |fib| {
            // `blocked` wrote 4 bytes and waits for room for 2 more.
            let from_fiber = ONE.try_send(fib, b"x");
            let from_thread = thread::spawn(|| ONE.send_from_isr(b"y")).join().unwrap();
            let reset = ONE.reset();
            let stored = ONE.bytes_available();
            let mut out = [0u8; 8];
            let first = ONE.try_receive(fib, &mut out).map(|n| out[..n].to_vec());
            (from_fiber, from_thread, reset, stored, first)
        })
        .unwrap();
    let rest = rt
        .spawn(stack(), |fib| {
            let mut out = [0u8; 8];
            let n = ONE.receive(fib, &mut out).unwrap();
            out[..n].to_vec()
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(blocked).unwrap(), Ok(6));
    let (from_fiber, from_thread, reset, stored, first) = rt.take(other).unwrap();
    assert_eq!(from_fiber, Err(Busy));
    assert_eq!(from_thread, Err(Busy));
    assert_eq!(reset, Err(Busy));
    assert_eq!(stored, 4);
    assert_eq!(first, Ok(b"1234".to_vec()));
    assert_eq!(rt.take(rest).unwrap(), b"56");
}

/// Message buffers: a blocked `send` waits until the whole message fits;
/// a receive buffer too small for the next message gets
/// `BufferTooSmall` and the message stays; an oversized message is refused;
/// timeouts give `TimedOut` having written or taken nothing.
#[test]
fn message_boundaries_and_blocking() {
    static FRAMES: MessageBuffer<16> = MessageBuffer::new().named("frames");
    let rt = Box::new(Runtime::<'static, 2>::new());
    let writer = rt
        .spawn(stack(), |fib| {
            let too_big = FRAMES.send(fib, &[0u8; 13]);
            FRAMES.send(fib, b"12345678").unwrap(); // 12 of 16 bytes
            let no_room = FRAMES.send_timeout(fib, b"abcd", 3); // needs 8
            let at = fib.now();
            FRAMES.send(fib, b"abcd").unwrap(); // blocks until the reader takes the first
            (too_big, no_room, at, fib.now())
        })
        .unwrap();
    let reader = rt
        .spawn(stack(), |fib| {
            fib.sleep(10);
            let mut small = [0u8; 4];
            let short = FRAMES.receive(fib, &mut small);
            let len = FRAMES.next_message_len();
            let mut big = [0u8; 12];
            let n = FRAMES.receive(fib, &mut big).unwrap();
            let first = big[..n].to_vec();
            let n = FRAMES.receive(fib, &mut small).unwrap();
            let second = small[..n].to_vec();
            let empty = FRAMES.receive_timeout(fib, &mut big, 5);
            (short, len, first, second, empty)
        })
        .unwrap();
    rt.run().unwrap();
    let (too_big, no_room, at, after) = rt.take(writer).unwrap();
    assert_eq!(too_big, Err(MessageError::TooLarge { len: 13, max: 12 }));
    assert_eq!(no_room, Err(MessageError::TimedOut));
    assert_eq!(at, 3);
    assert_eq!(after, 10);
    let (short, len, first, second, empty) = rt.take(reader).unwrap();
    assert_eq!(short, Err(MessageError::BufferTooSmall { needed: 8 }));
    assert_eq!(len, Ok(Some(8)));
    assert_eq!(first, b"12345678");
    assert_eq!(second, b"abcd");
    assert_eq!(empty, Err(MessageError::TimedOut));
}

/// A fiber blocked in a buffer shows the buffer's name.
#[test]
fn blocked_fibers_show_the_buffer_name() {
    static NAMED: StreamBuffer<8> = StreamBuffer::new().named("uart-rx");
    let rt = Box::new(Runtime::<'static, 2>::new());
    let reader = rt
        .spawn(stack(), |fib| {
            let mut out = [0u8; 1];
            NAMED.receive(fib, &mut out).unwrap()
        })
        .unwrap();
    let id = reader.id();
    let watcher = rt
        .spawn(stack(), move |fib| {
            let seen = fib.fiber_info(id).unwrap().waiting_in;
            fib.debug_check_invariants().expect("scheduler invariants hold with a buffer waiter blocked");
            NAMED.try_send(fib, b"!").unwrap();
            seen
        })
        .unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(watcher).unwrap(), "uart-rx");
    assert_eq!(rt.take(reader).unwrap(), 1);
    assert_eq!(NAMED.name(), "uart-rx");
}

/// Under schedule exploration (random and PCT policies, 300 schedules each),
/// a blocking writer and a blocking reader of a 5-byte stream with trigger
/// level 2, and of a 12-byte message buffer, deliver every byte in order and
/// never lose a wake-up (the run would report a step-limit failure).
#[cfg(feature = "explore")]
#[test]
fn explored_schedules_deliver_every_byte() {
    use filament::host::explore::{Explorer, Policy, Schedule};

    fn program(s: &mut Schedule) {
        let stream = StreamBuffer::<5>::new().with_trigger_level(2);
        let frames = MessageBuffer::<12>::new();
        let (stream, frames) = (&stream, &frames);
        let got = std::sync::Mutex::new((Vec::new(), Vec::new()));
        let got = &got;
        Runtime::<4>::scope(|rt| {
            s.install(rt);
            rt.spawn_detached(stack(), move |fib| {
                let data: Vec<u8> = (0..40).collect();
                for chunk in data.chunks(3) {
                    assert_eq!(stream.send(fib, chunk), Ok(chunk.len()));
                }
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                let mut out = [0u8; 4];
                let mut all = Vec::new();
                while all.len() < 40 {
                    let want = 4.min(40 - all.len());
                    let n = stream.receive(fib, &mut out[..want]).unwrap();
                    all.extend_from_slice(&out[..n]);
                }
                got.lock().unwrap().0 = all;
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                for i in 0..10u8 {
                    frames.send(fib, &vec![i; usize::from(i % 4)]).unwrap();
                }
            })
            .unwrap();
            rt.spawn_detached(stack(), move |fib| {
                let mut out = [0u8; 8];
                for _ in 0..10 {
                    let n = frames.receive(fib, &mut out).unwrap();
                    got.lock().unwrap().1.push(out[..n].to_vec());
                }
            })
            .unwrap();
            rt.run().expect("run");
        });
        let got = got.lock().unwrap();
        assert_eq!(got.0, (0..40).collect::<Vec<u8>>());
        let want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; usize::from(i % 4)]).collect();
        assert_eq!(got.1, want);
    }

    Explorer::new().policy(Policy::Random).schedules(300).run(program);
    Explorer::new().policy(Policy::Pct { depth: 3 }).schedules(300).run(program);
}

/// A fiber that would block while it unwinds (a destructor running during a
/// panic) gets `Unwinding` instead, and gives the side back: the next reader
/// is not refused with `Busy`, and nothing was consumed.
#[test]
fn a_wait_during_an_unwind_fails_and_releases_the_side() {
    static UNW: StreamBuffer<8> = StreamBuffer::new().with_trigger_level(2);
    static SEEN: std::sync::Mutex<Option<Result<usize, StreamError>>> = std::sync::Mutex::new(None);
    struct ReadOnDrop<'a>(&'a filament::Fiber<'static>);
    impl Drop for ReadOnDrop<'_> {
        fn drop(&mut self) {
            let mut out = [0u8; 4];
            *SEEN.lock().unwrap() = Some(UNW.receive(self.0, &mut out));
        }
    }
    UNW.send_from_isr(b"x").unwrap(); // below the trigger level: receive would block
    let rt = Box::new(Runtime::<'static, 2>::new());
    let panicker = rt
        .spawn(stack(), |fib| {
            let _guard = ReadOnDrop(fib);
            panic!("boom");
        })
        .unwrap();
    let after = rt
        .spawn(stack(), |fib| {
            let mut out = [0u8; 4];
            UNW.try_receive(fib, &mut out).map(|n| out[..n].to_vec())
        })
        .unwrap();
    rt.run().unwrap();
    assert!(rt.take(panicker).is_err());
    assert_eq!(*SEEN.lock().unwrap(), Some(Err(StreamError::Unwinding)));
    assert_eq!(rt.take(after).unwrap(), Ok(b"x".to_vec()));
}

/// The trace names the buffer: a blocked reader's and a blocked writer's
/// block events carry it (feature `trace`).
#[cfg(feature = "trace")]
#[test]
fn block_events_name_the_buffer() {
    use filament::host::trace::{EventKind, TraceRecorder};
    static REC: TraceRecorder = TraceRecorder::new();
    static TRACED: StreamBuffer<2> = StreamBuffer::new().named("traced");
    let rt = Box::new(Runtime::<'static, 2>::new());
    assert!(rt.set_tracer(&REC));
    let reader = rt
        .spawn(stack(), |fib| {
            let mut out = [0u8; 2];
            let first = TRACED.receive(fib, &mut out).unwrap(); // blocks: empty
            fib.yield_now(); // the writer fills the buffer and blocks
            first + TRACED.receive(fib, &mut out).unwrap() + TRACED.receive(fib, &mut out).unwrap()
        })
        .unwrap();
    let writer = rt.spawn(stack(), |fib| TRACED.send(fib, b"abcde").unwrap()).unwrap();
    rt.run().unwrap();
    assert_eq!(rt.take(reader).unwrap(), 5);
    assert_eq!(rt.take(writer).unwrap(), 5);
    let named = REC.events().iter().filter(|e| matches!(e.kind, EventKind::Block(_, _, "traced"))).count();
    assert!(named >= 2, "a reader's and a writer's block name the buffer ({named})");
}
