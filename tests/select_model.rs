//! Model-based test of `sync::select`: random programs of selecting fibers
//! (each round a select, with or without a timeout, over 1-3 cases drawn from
//! receive and send cases on two channels and a semaphore) and a controller
//! fiber (non-blocking sends, receives that barge, gives, closes, yields,
//! sleeps), checked against a reference model of the sources.
//!
//! Every operation is logged in the order it happens (one thread runs the
//! runtime; nothing switches between an operation and its log entry). The
//! log is replayed against the model — a `VecDeque` per channel, a count for
//! the semaphore — and each entry must agree with it:
//!
//! * a controller operation's result is what the model predicts (`Full`
//!   exactly when the model's queue is full, values in FIFO order, ...);
//! * a select that returned case `i` found every case before `i` not ready
//!   and case `i` ready in the model, and its outcome (value received, value
//!   sent, permit taken, `Closed`) is the model's — so exactly one source is
//!   consumed, the lowest ready one, and no value is lost or duplicated;
//! * a select that timed out found none of its cases ready.
//!
//! At the end the real sources hold what the model holds, and every fiber
//! the runtime reports as deadlocked is a selector none of whose cases is
//! ready in the model: a lost wake-up (a selector asleep next to a ready
//! source) fails the test.
//!
//! Checked against broken variants: without the semaphore's notify on
//! `give`/`release`, or without a select passing a still-ready source's wake
//! on when it returns, this test finds a lost wake-up (the second needs a few
//! hundred to a couple of thousand cases, hence the case count).

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;

use filament::sync::select::{self, AcquireCase, Case, RecvCase, SelectError, SendCase};
use filament::sync::{Channel, RecvError, Semaphore, TryRecvError, TrySendError};
use filament::{Fiber, RunError, Runtime, Stack};
use proptest::prelude::*;

const CAP0: usize = 1;
const CAP1: usize = 2;

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack").without_painting()
}

/// One case of a select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Recv(usize),
    Send(usize),
    Acquire,
}

#[derive(Debug, Clone)]
struct Round {
    cases: Vec<Kind>,
    /// `None`: block forever.
    timeout: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
enum Ctl {
    TrySend(usize),
    TryRecv(usize),
    Give,
    Close(usize),
    Yield,
    Sleep(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Got(u32),
    RecvClosed,
    Sent(u32),
    SendClosed,
    Permit,
}

#[derive(Debug, Clone)]
enum Entry {
    Sent { ch: usize, v: u32, res: &'static str },
    Recv { ch: usize, got: Result<u32, &'static str> },
    Give,
    Close { ch: usize },
    Selected { fiber: usize, round: usize, index: usize, outcome: Outcome },
    TimedOut { fiber: usize, round: usize },
}

struct Srcs {
    ch0: Channel<u32, CAP0>,
    ch1: Channel<u32, CAP1>,
    sem: Semaphore,
}

enum C<'s> {
    R0(RecvCase<'s, u32, CAP0>),
    R1(RecvCase<'s, u32, CAP1>),
    S0(SendCase<'s, u32, CAP0>),
    S1(SendCase<'s, u32, CAP1>),
    A(AcquireCase<'s>),
}

impl<'s> C<'s> {
    fn new(src: &'s Srcs, k: Kind, value: u32) -> Self {
        match k {
            Kind::Recv(0) => C::R0(RecvCase::new(&src.ch0)),
            Kind::Recv(_) => C::R1(RecvCase::new(&src.ch1)),
            Kind::Send(0) => C::S0(SendCase::new(&src.ch0, value)),
            Kind::Send(_) => C::S1(SendCase::new(&src.ch1, value)),
            Kind::Acquire => C::A(AcquireCase::new(&src.sem)),
        }
    }

    fn case(&mut self) -> &mut dyn Case<'s> {
        match self {
            C::R0(c) => c,
            C::R1(c) => c,
            C::S0(c) => c,
            C::S1(c) => c,
            C::A(c) => c,
        }
    }

    /// The fired case's outcome (`v`: the value a send case carried).
    fn outcome(&mut self, v: u32) -> Outcome {
        fn recv(r: Option<Result<u32, RecvError>>) -> Outcome {
            match r.expect("the fired case has an outcome") {
                Ok(v) => Outcome::Got(v),
                Err(_) => Outcome::RecvClosed,
            }
        }
        fn send<const N: usize>(s: &mut SendCase<'_, u32, N>, v: u32) -> Outcome {
            if s.is_sent() {
                assert_eq!(s.take_value(), None);
                Outcome::Sent(v)
            } else {
                assert!(s.is_closed());
                assert_eq!(s.take_value(), Some(v), "a closed send case keeps its value");
                Outcome::SendClosed
            }
        }
        match self {
            C::R0(c) => recv(c.take()),
            C::R1(c) => recv(c.take()),
            C::S0(c) => send(c, v),
            C::S1(c) => send(c, v),
            C::A(c) => {
                assert!(c.is_acquired());
                Outcome::Permit
            }
        }
    }
}

/// The value a selector's send case carries (unique per fiber, round, case).
fn send_value(fiber: usize, round: usize, case: usize) -> u32 {
    1_000_000 + (fiber * 10_000 + round * 10 + case) as u32
}

fn run_selector<'s>(fib: &Fiber<'s>, src: &'s Srcs, fiber: usize, rounds: &[Round], log: &StdMutex<Vec<Entry>>) {
    for (round, r) in rounds.iter().enumerate() {
        let mut cs: Vec<C<'s>> =
            r.cases.iter().enumerate().map(|(i, &k)| C::new(src, k, send_value(fiber, round, i))).collect();
        let res = match cs.as_mut_slice() {
            [a] => sel(fib, [a.case()], r.timeout),
            [a, b] => sel(fib, [a.case(), b.case()], r.timeout),
            [a, b, c] => sel(fib, [a.case(), b.case(), c.case()], r.timeout),
            _ => unreachable!(),
        };
        let entry = match res {
            Ok(index) => {
                let outcome = cs[index].outcome(send_value(fiber, round, index));
                // The other cases did not fire: a send case still holds its value.
                for (i, c) in cs.iter_mut().enumerate() {
                    if i != index {
                        match c {
                            C::R0(x) => assert!(x.take().is_none()),
                            C::R1(x) => assert!(x.take().is_none()),
                            C::S0(x) => assert_eq!(x.take_value(), Some(send_value(fiber, round, i))),
                            C::S1(x) => assert_eq!(x.take_value(), Some(send_value(fiber, round, i))),
                            C::A(x) => assert!(!x.is_acquired()),
                        }
                    }
                }
                Entry::Selected { fiber, round, index, outcome }
            }
            Err(SelectError::TimedOut) => Entry::TimedOut { fiber, round },
            Err(e) => panic!("select failed: {e}"),
        };
        log.lock().unwrap().push(entry);
    }
}

fn sel<'s, const N: usize>(
    fib: &Fiber<'s>,
    cases: [&mut dyn Case<'s>; N],
    timeout: Option<u64>,
) -> Result<usize, SelectError> {
    match timeout {
        Some(t) => select::select_timeout(fib, cases, t),
        None => select::select(fib, cases),
    }
}

fn run_controller<'s>(fib: &Fiber<'s>, src: &'s Srcs, ops: &[Ctl], log: &StdMutex<Vec<Entry>>) {
    for (n, &op) in ops.iter().enumerate() {
        let v = 1 + n as u32;
        let e = match op {
            Ctl::TrySend(ch) => {
                let r = if ch == 0 { src.ch0.try_send(fib, v) } else { src.ch1.try_send(fib, v) };
                let res = match r {
                    Ok(()) => "ok",
                    Err(TrySendError::Full(_)) => "full",
                    Err(TrySendError::Closed(_)) => "closed",
                    Err(e) => panic!("{e:?}"),
                };
                Entry::Sent { ch, v, res }
            }
            Ctl::TryRecv(ch) => {
                let r = if ch == 0 { src.ch0.try_recv(fib) } else { src.ch1.try_recv(fib) };
                let got = match r {
                    Ok(v) => Ok(v),
                    Err(TryRecvError::Empty) => Err("empty"),
                    Err(TryRecvError::Closed) => Err("closed"),
                    Err(e) => panic!("{e:?}"),
                };
                Entry::Recv { ch, got }
            }
            Ctl::Give => {
                src.sem.release(fib, 1).unwrap();
                Entry::Give
            }
            Ctl::Close(ch) => {
                if ch == 0 { src.ch0.close(fib) } else { src.ch1.close(fib) }.unwrap();
                Entry::Close { ch }
            }
            Ctl::Yield => {
                fib.yield_now();
                continue;
            }
            Ctl::Sleep(t) => {
                fib.sleep(t);
                continue;
            }
        };
        log.lock().unwrap().push(e);
    }
}

/// The reference model of the sources.
#[derive(Debug, Default)]
struct Model {
    q: [VecDeque<u32>; 2],
    closed: [bool; 2],
    permits: usize,
}

impl Model {
    fn cap(ch: usize) -> usize {
        if ch == 0 { CAP0 } else { CAP1 }
    }

    fn ready(&self, k: Kind) -> bool {
        match k {
            Kind::Recv(ch) => self.closed[ch] || !self.q[ch].is_empty(),
            Kind::Send(ch) => self.closed[ch] || self.q[ch].len() < Self::cap(ch),
            Kind::Acquire => self.permits > 0,
        }
    }

    fn apply(&mut self, e: &Entry, script: &[Vec<Round>]) -> Result<(), String> {
        match *e {
            Entry::Sent { ch, v, res } => {
                let want = if self.closed[ch] {
                    "closed"
                } else if self.q[ch].len() == Self::cap(ch) {
                    "full"
                } else {
                    "ok"
                };
                if res != want {
                    return Err(format!("try_send on {ch}: {res}, model {want}"));
                }
                if res == "ok" {
                    self.q[ch].push_back(v);
                }
            }
            Entry::Recv { ch, got } => {
                let want = match self.q[ch].pop_front() {
                    Some(v) => Ok(v),
                    None if self.closed[ch] => Err("closed"),
                    None => Err("empty"),
                };
                if got != want {
                    return Err(format!("try_recv on {ch}: {got:?}, model {want:?}"));
                }
            }
            Entry::Give => self.permits += 1,
            Entry::Close { ch } => self.closed[ch] = true,
            Entry::TimedOut { fiber, round } => {
                let r = &script[fiber][round];
                if let Some(k) = r.cases.iter().find(|&&k| self.ready(k)) {
                    return Err(format!("fiber {fiber} round {round} timed out with {k:?} ready"));
                }
            }
            Entry::Selected { fiber, round, index, ref outcome } => {
                let r = &script[fiber][round];
                if let Some(j) = (0..index).find(|&j| self.ready(r.cases[j])) {
                    return Err(format!("fiber {fiber} round {round} fired {index} with {j} ready"));
                }
                let k = r.cases[index];
                if !self.ready(k) {
                    return Err(format!("fiber {fiber} round {round} fired {index} ({k:?}), not ready"));
                }
                let want = match k {
                    Kind::Recv(ch) => match self.q[ch].pop_front() {
                        Some(v) => Outcome::Got(v),
                        None => Outcome::RecvClosed,
                    },
                    Kind::Send(ch) if self.closed[ch] => Outcome::SendClosed,
                    Kind::Send(ch) => {
                        let v = send_value(fiber, round, index);
                        self.q[ch].push_back(v);
                        Outcome::Sent(v)
                    }
                    Kind::Acquire => {
                        self.permits -= 1;
                        Outcome::Permit
                    }
                };
                if *outcome != want {
                    return Err(format!("fiber {fiber} round {round}: {outcome:?}, model {want:?}"));
                }
            }
        }
        Ok(())
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![(0..2usize).prop_map(Kind::Recv), (0..2usize).prop_map(Kind::Send), Just(Kind::Acquire)]
}

fn round() -> impl Strategy<Value = Round> {
    (proptest::collection::vec(kind(), 1..=3), prop_oneof![3 => Just(None), 1 => (0..6u64).prop_map(Some)])
        .prop_map(|(cases, timeout)| Round { cases, timeout })
}

fn ctl() -> impl Strategy<Value = Ctl> {
    prop_oneof![
        6 => (0..2usize).prop_map(Ctl::TrySend),
        3 => (0..2usize).prop_map(Ctl::TryRecv),
        3 => Just(Ctl::Give),
        1 => (0..2usize).prop_map(Ctl::Close),
        5 => Just(Ctl::Yield),
        1 => (1..4u64).prop_map(Ctl::Sleep),
    ]
}

fn check(script: Vec<Vec<Round>>, ops: Vec<Ctl>) -> Result<(), TestCaseError> {
    let src = Srcs { ch0: Channel::new(), ch1: Channel::new(), sem: Semaphore::new(0) };
    let log = StdMutex::new(Vec::new());
    let deadlocked: Vec<usize> = Runtime::<8>::scope(|rt| {
        for (fiber, rounds) in script.iter().enumerate() {
            let (src, log) = (&src, &log);
            let name: &'static str = ["0", "1", "2", "3", "4", "5", "6"][fiber];
            let _ = rt.spawn_named(name, stack(), move |fib| run_selector(fib, src, fiber, rounds, log)).unwrap();
        }
        let _ = rt.spawn_named("ctl", stack(), |fib| run_controller(fib, &src, &ops, &log)).unwrap();
        let res = rt.run();
        rt.debug_check_invariants().unwrap();
        match res {
            Ok(()) => Vec::new(),
            Err(RunError::Deadlock(r)) => r.fibers().iter().map(|b| b.name.parse().expect("a selector")).collect(),
            Err(e) => panic!("{e}"),
        }
    });
    let log = log.into_inner().unwrap();
    let mut m = Model::default();
    let mut done = vec![0usize; script.len()];
    for e in &log {
        m.apply(e, &script).map_err(|msg| TestCaseError::fail(format!("{msg}\nlog: {log:?}")))?;
        if let Entry::Selected { fiber, .. } | Entry::TimedOut { fiber, .. } = *e {
            done[fiber] += 1;
        }
    }
    // Every selector finished its rounds or sleeps with nothing ready.
    for (fiber, rounds) in script.iter().enumerate() {
        let blocked = deadlocked.contains(&fiber);
        prop_assert_eq!(blocked, done[fiber] < rounds.len(), "fiber {} did {} rounds", fiber, done[fiber]);
        if blocked {
            let r = &rounds[done[fiber]];
            if let Some(k) = r.cases.iter().find(|&&k| m.ready(k)) {
                return Err(TestCaseError::fail(format!(
                    "lost wake-up: fiber {fiber} sleeps in round {} with {k:?} ready\nmodel {m:?}\nlog: {log:?}",
                    done[fiber]
                )));
            }
        }
    }
    // The real sources hold what the model holds.
    let mut real = [VecDeque::new(), VecDeque::new()];
    while let Ok(v) = src.ch0.try_recv_outside() {
        real[0].push_back(v);
    }
    while let Ok(v) = src.ch1.try_recv_outside() {
        real[1].push_back(v);
    }
    prop_assert_eq!(&real, &m.q);
    prop_assert_eq!(src.sem.available_outside().unwrap(), m.permits);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn select_agrees_with_the_model(
        script in proptest::collection::vec(proptest::collection::vec(round(), 1..6), 1..5),
        ops in proptest::collection::vec(ctl(), 0..40),
    ) {
        check(script, ops)?;
    }
}
