//! `StreamBuffer` and `MessageBuffer`: model-based property tests of the ring
//! (proptest against a `VecDeque` reference), fiber blocking semantics
//! (trigger level, timeouts, full buffers, message boundaries), the
//! single-writer/single-reader claims, and streams between OS threads and
//! fibers checked byte for byte.
//!
//! Scenarios with another OS thread run under a watchdog that fails the test
//! after a generous time instead of hanging it on a lost wake-up. Nothing here
//! asserts timing.

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use filament::host::HostClock;
use filament::sync::{Busy, MESSAGE_HEADER, MessageBuffer, MessageError, StreamBuffer, StreamError, TriggerLevelError};
use filament::{Runtime, Stack};
use proptest::prelude::*;

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
// Model-based: the ring against a VecDeque, through the non-blocking forms.

#[derive(Debug, Clone)]
enum StreamOp {
    Send(Vec<u8>),
    Receive(usize),
    Reset,
    SetTrigger(usize),
}

fn stream_op() -> impl Strategy<Value = StreamOp> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..20).prop_map(StreamOp::Send),
        6 => (0usize..20).prop_map(StreamOp::Receive),
        1 => Just(StreamOp::Reset),
        1 => (0usize..20).prop_map(StreamOp::SetTrigger),
    ]
}

const SN: usize = 13;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every non-blocking stream operation returns what a bounded byte queue
    /// of capacity `SN` says, and the queries agree with it after each step.
    #[test]
    fn stream_buffer_matches_a_bounded_queue(ops in proptest::collection::vec(stream_op(), 1..120)) {
        let buf = StreamBuffer::<SN>::new();
        let mut model: VecDeque<u8> = VecDeque::new();
        for op in ops {
            match op {
                StreamOp::Send(data) => {
                    let fits = data.len().min(SN - model.len());
                    prop_assert_eq!(buf.send_from_isr(&data), Ok(fits));
                    model.extend(&data[..fits]);
                }
                StreamOp::Receive(k) => {
                    let mut out = vec![0u8; k];
                    let n = buf.receive_from_isr(&mut out).unwrap();
                    let want: Vec<u8> = model.drain(..k.min(model.len())).collect();
                    prop_assert_eq!(&out[..n], &want[..]);
                }
                StreamOp::Reset => {
                    buf.reset().unwrap();
                    model.clear();
                }
                StreamOp::SetTrigger(level) => {
                    let r = buf.set_trigger_level(level);
                    if level > SN {
                        prop_assert_eq!(r, Err(TriggerLevelError { level, capacity: SN }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        prop_assert_eq!(buf.trigger_level(), level.max(1));
                    }
                }
            }
            prop_assert_eq!(buf.bytes_available(), model.len());
            prop_assert_eq!(buf.spaces_available(), SN - model.len());
            prop_assert_eq!(buf.is_empty(), model.is_empty());
            prop_assert_eq!(buf.is_full(), model.len() == SN);
        }
    }
}

#[derive(Debug, Clone)]
enum MsgOp {
    Send(Vec<u8>),
    Receive(usize),
    Peek,
    Reset,
}

fn msg_op() -> impl Strategy<Value = MsgOp> {
    prop_oneof![
        5 => proptest::collection::vec(any::<u8>(), 0..30).prop_map(MsgOp::Send),
        5 => (0usize..30).prop_map(MsgOp::Receive),
        1 => Just(MsgOp::Peek),
        1 => Just(MsgOp::Reset),
    ]
}

const MN: usize = 37;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Messages are kept whole against a queue of messages whose stored
    /// size (length + header each) is bounded by `MN`: a send fits entirely
    /// or is refused with `Full`/`TooLarge`, a receive into a short buffer is
    /// refused with `BufferTooSmall` and loses nothing.
    #[test]
    fn message_buffer_matches_a_queue_of_messages(ops in proptest::collection::vec(msg_op(), 1..120)) {
        let buf = MessageBuffer::<MN>::new();
        let max = MN - MESSAGE_HEADER;
        prop_assert_eq!(MessageBuffer::<MN>::MAX_MESSAGE, max);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        let used = |m: &VecDeque<Vec<u8>>| m.iter().map(|x| x.len() + MESSAGE_HEADER).sum::<usize>();
        for op in ops {
            match op {
                MsgOp::Send(msg) => {
                    let r = buf.send_from_isr(&msg);
                    if msg.len() > max {
                        prop_assert_eq!(r, Err(MessageError::TooLarge { len: msg.len(), max }));
                    } else if used(&model) + MESSAGE_HEADER + msg.len() > MN {
                        prop_assert_eq!(r, Err(MessageError::Full));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        model.push_back(msg);
                    }
                }
                MsgOp::Receive(k) => {
                    let mut out = vec![0u8; k];
                    let r = buf.receive_from_isr(&mut out);
                    match model.front() {
                        None => prop_assert_eq!(r, Err(MessageError::Empty)),
                        Some(m) if m.len() > k => prop_assert_eq!(r, Err(MessageError::BufferTooSmall { needed: m.len() })),
                        Some(_) => {
                            let m = model.pop_front().unwrap();
                            prop_assert_eq!(r, Ok(m.len()));
                            prop_assert_eq!(&out[..m.len()], &m[..]);
                        }
                    }
                }
                MsgOp::Peek => prop_assert_eq!(buf.next_message_len(), Ok(model.front().map(Vec::len))),
                MsgOp::Reset => {
                    buf.reset().unwrap();
                    model.clear();
                }
            }
            prop_assert_eq!(buf.bytes_available(), used(&model));
            prop_assert_eq!(buf.spaces_available(), (MN - used(&model)).saturating_sub(MESSAGE_HEADER));
            prop_assert_eq!(buf.is_empty(), model.is_empty());
        }
    }
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
