//! Model-based property tests of `StreamBuffer` and `MessageBuffer` (the
//! byte ring under both): random sequences of the non-blocking operations
//! against a `VecDeque` reference, every result and every query checked after
//! each step. No runtime is involved (the `*_from_isr` forms need none), so
//! this runs without the `std` feature. The fiber and thread side is in
//! `tests/stream_buffer.rs`.

use std::collections::VecDeque;

use filament::sync::{MESSAGE_HEADER, MessageBuffer, MessageError, StreamBuffer, TriggerLevelError};
use proptest::prelude::*;

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
                    let before = buf.trigger_level();
                    let r = buf.set_trigger_level(level);
                    if level > SN {
                        let e: TriggerLevelError = r.unwrap_err();
                        prop_assert_eq!((e.level, e.capacity), (level, SN));
                        prop_assert_eq!(buf.trigger_level(), before, "a refused level changes nothing");
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
