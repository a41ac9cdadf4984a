//! Model-based test of the whole scheduler: random programs of spawns (from the
//! host and from fibers), yields, sleeps, every `_timeout` primitive, joins,
//! takes, detaches and interrupt notifications, run against a clock that jumps
//! at random points — also while a fiber runs without yielding.
//!
//! A case is a list of host operations (spawn a fiber with a script, run,
//! advance the clock, notify, take, detach) ending with a final run and an
//! audit. Fiber scripts are lists of fiber operations, interpreted by the
//! fiber itself. After every operation, on the host and inside every fiber,
//! the scheduler's structural invariant checker
//! (`debug_check_invariants`) must pass. A simple reference model checks
//! what can be counted: channel values sent = received + left; at most
//! `PERMITS` semaphore holders and all permits back at the end; one mutex
//! holder at a time and one increment per successful lock; notifications =
//! counts taken + pending; every fiber spawned finishes and returns its own
//! id to whoever joins or takes it; a timed-out wait or a sleep returns only
//! once the runtime's clock has reached its deadline; `run` returns `Ok` (every
//! wait in the model is timed, so nothing can deadlock) and terminates.
//! Fibers change their own and their children's priorities at random
//! (`set_priority`, `set_priority_of`), so the per-level rings, the ready
//! bitmap, preemption and mutex priority inheritance are all exercised under
//! the checker; a fiber holding nothing runs exactly at its base priority.
//!
//! Termination: each case runs on its own thread and the test waits for its
//! verdict with a timeout. A failure found inside the runtime (a fiber's
//! check, a fiber unwinding — a panic, including a debug assertion inside the
//! scheduler, or a deadlock cancellation —, a lost deadline seen by the idle
//! hook, an exhausted step or clock-read budget) is sent as the verdict and
//! that thread then parks for good, so a broken runtime that would never
//! return from `run` costs no CPU. Only a runtime spinning without calling
//! any hook would reach the timeout (and keep its thread busy until the test
//! process exits).
//!
//! The clock: `Idle::now` reads an atomic that fibers (`Op::Advance`), the
//! host (`HostOp::Advance`) and the clock itself (seeded jumps at random
//! reads) move forward, while `Fiber::now` — the base of every deadline — is
//! the runtime's stored tick, which lags it. A deadline armed from that
//! stale tick can already be due when the fiber blocks: the case the
//! `*_right_after_the_clock_jumped` tests pin down (with the sleep/timeout
//! arming defect, a debug build trips the `state == Blocked` assertion in
//! `raw::wake`; a release build loses the fiber's deadline and drops the
//! other ready fibers from the ring).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

use filament::sync::{Channel, Event, Mutex, RecvError, Semaphore, SendError, TryRecvError, TrySendError, WaitError};
use filament::{
    Fiber, Idle, IrqError, IrqSignal, JoinError, JoinHandle, Priority, Runtime, SpawnErrorKind, Stack, Ticks,
};
use proptest::prelude::*;

/// Runtime capacity (spawns beyond it fail with `Full`, which is fine).
const N: usize = 12;
/// Fiber stack size (borrowed buffers, lazily backed by the OS).
const STACK: usize = 256 * 1024;
/// Semaphore permits.
const PERMITS: usize = 2;
/// Channel capacity.
const CH_CAP: usize = 2;
/// Fiber operations a case may execute in all.
const STEP_BUDGET: u64 = 20_000;
/// Idle-hook calls a case may make.
const IDLE_BUDGET: u64 = 5_000;
/// Clock reads a case may make.
const NOW_BUDGET: u64 = 200_000;
/// How long the test waits for a case's verdict.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

// ================================================================ operations

/// What a fiber does while it holds a mutex or a permit.
#[derive(Debug, Clone, Copy)]
enum Hold {
    Nothing,
    Yield,
    Sleep(Ticks),
    /// The clock jumps; the fiber keeps running.
    Advance(Ticks),
}

/// One step of a fiber's script.
#[derive(Debug, Clone)]
enum Op {
    Yield,
    Sleep(Ticks),
    /// The clock jumps by this much while the fiber keeps running (no yield).
    Advance(Ticks),
    Lock(Ticks, Hold),
    Acquire(Ticks, Hold),
    Send(Ticks),
    Recv(Ticks),
    TrySend,
    TryRecv,
    WaitEvent(Ticks),
    SetEvent,
    ResetEvent,
    WaitIrq(Ticks),
    Notify,
    /// Spawn a child with this script (joined later or at the end).
    Spawn(Vec<Op>),
    SpawnDetached(Vec<Op>),
    /// Join the oldest child not joined or detached yet.
    Join,
    /// Detach the oldest child not joined or detached yet.
    Detach,
    /// `set_priority` of this fiber (level, saturated).
    SetPriority(u8),
    /// `set_priority_of` the oldest child not joined or detached yet.
    SetChildPriority(u8),
    /// `suspend` the oldest child, yield this many times (checking the
    /// invariants each time), `resume` it.
    SuspendChild(u8),
}

/// One step of the host, between runs.
#[derive(Debug, Clone)]
enum HostOp {
    Spawn(Vec<Op>),
    SpawnDetached(Vec<Op>),
    Run,
    Advance(Ticks),
    Notify,
    /// `Runtime::take` of handle `i % len` (gets it back if not finished).
    Take(usize),
    /// `Runtime::detach` of handle `i % len`.
    Detach(usize),
}

#[derive(Debug, Clone)]
struct Case {
    host: Vec<HostOp>,
    /// Seeds the clock's own jumps (0: the clock moves only when told to
    /// and when the runtime idles).
    seed: u64,
}

fn timeout() -> impl Strategy<Value = Ticks> {
    prop_oneof![1 => Just(0u64), 4 => 1u64..6]
}

fn hold_strategy() -> impl Strategy<Value = Hold> {
    prop_oneof![
        1 => Just(Hold::Nothing),
        2 => Just(Hold::Yield),
        3 => (1u64..6).prop_map(Hold::Sleep),
        1 => (1u64..8).prop_map(Hold::Advance),
    ]
}

fn leaf_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Yield),
        3 => (0u64..6).prop_map(Op::Sleep),
        3 => (1u64..10).prop_map(Op::Advance),
        2 => (timeout(), hold_strategy()).prop_map(|(t, h)| Op::Lock(t, h)),
        2 => (timeout(), hold_strategy()).prop_map(|(t, h)| Op::Acquire(t, h)),
        2 => timeout().prop_map(Op::Send),
        2 => timeout().prop_map(Op::Recv),
        1 => Just(Op::TrySend),
        1 => Just(Op::TryRecv),
        1 => timeout().prop_map(Op::WaitEvent),
        1 => Just(Op::SetEvent),
        1 => Just(Op::ResetEvent),
        1 => timeout().prop_map(Op::WaitIrq),
        1 => Just(Op::Notify),
        1 => Just(Op::Join),
        1 => Just(Op::Detach),
        2 => (0u8..4).prop_map(Op::SetPriority),
        1 => (0u8..4).prop_map(Op::SetChildPriority),
        1 => (0u8..4).prop_map(Op::SuspendChild),
    ]
}

/// A fiber script; `depth` levels of fibers below it may be spawned.
fn script(depth: u32) -> BoxedStrategy<Vec<Op>> {
    if depth == 0 {
        return prop::collection::vec(leaf_op(), 0..8).boxed();
    }
    let child = script(depth - 1);
    prop::collection::vec(
        prop_oneof![
            12 => leaf_op(),
            1 => child.clone().prop_map(Op::Spawn),
            1 => child.prop_map(Op::SpawnDetached),
        ],
        0..10,
    )
    .boxed()
}

fn host_op() -> impl Strategy<Value = HostOp> {
    prop_oneof![
        4 => script(2).prop_map(HostOp::Spawn),
        1 => script(2).prop_map(HostOp::SpawnDetached),
        2 => Just(HostOp::Run),
        1 => (1u64..10).prop_map(HostOp::Advance),
        1 => Just(HostOp::Notify),
        1 => any::<usize>().prop_map(HostOp::Take),
        1 => any::<usize>().prop_map(HostOp::Detach),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (prop::collection::vec(host_op(), 1..12), any::<u64>()).prop_map(|(host, seed)| Case { host, seed })
}

/// Stacks a script needs for the fibers it spawns (and they spawn).
fn stacks_needed(script: &[Op]) -> usize {
    script.iter().map(|op| if let Op::Spawn(s) | Op::SpawnDetached(s) = op { 1 + stacks_needed(s) } else { 0 }).sum()
}

// ================================================================ verdicts

thread_local! {
    /// Where the case running on this thread sends its verdict.
    static VERDICT: RefCell<Option<mpsc::Sender<Result<(), String>>>> = const { RefCell::new(None) };
}

/// Reports a failure of the case running on this thread and parks the thread
/// for good: its runtime may be broken beyond returning, and parking costs
/// nothing (the thread is abandoned; the process exit ends it).
fn fail(msg: String) -> ! {
    VERDICT.with(|v| {
        if let Some(tx) = v.borrow().as_ref() {
            let _ = tx.send(Err(msg));
        }
    });
    loop {
        std::thread::park();
    }
}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            fail(format!($($fmt)*))
        }
    };
}

// ================================================================ the world

/// The primitives and the reference model's counters, shared by every fiber
/// of a case.
struct World {
    mutex: Mutex<u64>,
    sem: Semaphore,
    chan: Channel<u64, CH_CAP>,
    event: Event,
    irq: IrqSignal,
    /// The free-running clock `Idle::now` reads.
    clock: AtomicU64,
    /// Someone holds `mutex` (checked on every lock).
    mutex_held: AtomicBool,
    /// Successful locks (each adds one to the mutex's value).
    locks: AtomicU64,
    /// Current semaphore holders.
    holders: AtomicUsize,
    next_value: AtomicU64,
    sent: StdMutex<Vec<u64>>,
    received: StdMutex<Vec<u64>>,
    notifies: AtomicU64,
    irq_taken: AtomicU64,
    next_id: AtomicU64,
    spawned: AtomicU64,
    finished: AtomicU64,
    steps: AtomicU64,
}

impl World {
    fn new() -> Self {
        World {
            mutex: Mutex::new(0),
            sem: Semaphore::new(PERMITS),
            chan: Channel::new(),
            event: Event::new(),
            irq: IrqSignal::new(),
            clock: AtomicU64::new(0),
            mutex_held: AtomicBool::new(false),
            locks: AtomicU64::new(0),
            holders: AtomicUsize::new(0),
            next_value: AtomicU64::new(0),
            sent: StdMutex::new(Vec::new()),
            received: StdMutex::new(Vec::new()),
            notifies: AtomicU64::new(0),
            irq_taken: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
            spawned: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            steps: AtomicU64::new(0),
        }
    }
}

/// The idle hook and free-running clock: `now()` reads `World::clock`, which
/// fibers and the host advance, and which also jumps by itself at random
/// reads (seeded). `idle` moves it to the next deadline (or a little past).
struct Clock<'w> {
    w: &'w World,
    rng: u64,
    idles: u64,
    reads: u64,
}

impl Clock<'_> {
    /// 0 most of the time, sometimes 1..=4; always 0 with seed 0.
    fn jitter(&mut self) -> Ticks {
        if self.rng == 0 {
            return 0;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        if self.rng.is_multiple_of(8) { 1 + (self.rng >> 3) % 4 } else { 0 }
    }
}

impl Idle for Clock<'_> {
    fn idle(&mut self, now: Ticks, next: Option<Ticks>) -> Ticks {
        self.idles += 1;
        ensure!(self.idles <= IDLE_BUDGET, "idle budget exhausted: run() does not finish");
        // Every wait in the model is timed, and a join waits for a fiber that
        // is itself ready or waiting with a deadline: idling without one
        // means a deadline was lost.
        let Some(next) = next else { fail(format!("idle at tick {now} with no deadline armed: a timeout was lost")) };
        let target = next.max(self.w.clock.load(SeqCst)) + self.jitter();
        self.w.clock.fetch_max(target, SeqCst);
        target.max(now)
    }

    fn now(&mut self) -> Option<Ticks> {
        self.reads += 1;
        ensure!(self.reads <= NOW_BUDGET, "clock-read budget exhausted: the fibers never stop");
        let j = self.jitter();
        Some(self.w.clock.fetch_add(j, SeqCst) + j)
    }
}

// ================================================================ fibers

type Children = VecDeque<(JoinHandle<u64>, u64)>;

/// A fiber: runs its script, checking after every step, joins the children
/// still left, and returns its id.
fn fiber<'s>(fib: &Fiber<'s>, w: &'s World, id: u64, script: Vec<Op>, mut stacks: Vec<Stack<'s>>) -> u64 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut children = Children::new();
        for op in &script {
            step(fib, w, op, &mut stacks, &mut children);
            checked(fib, w, id, op);
        }
        while let Some((h, cid)) = children.pop_front() {
            join(fib, h, cid);
            checked(fib, w, id, &Op::Join);
        }
    }));
    if let Err(payload) = outcome {
        let what = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("a cancellation: the runtime reported a deadlock");
        fail(format!("fiber {id} unwound: {what}; checker now says {:?}", fib.debug_check_invariants()))
    }
    w.finished.fetch_add(1, SeqCst);
    id
}

/// The checker and the step budget, after `op`.
fn checked(fib: &Fiber<'_>, w: &World, id: u64, op: &Op) {
    if let Err(e) = fib.debug_check_invariants() {
        fail(format!("invariant broken after {op:?} in fiber {id} at tick {}: {e}", fib.now()))
    }
    ensure!(w.steps.fetch_add(1, SeqCst) < STEP_BUDGET, "step budget exhausted");
}

/// Asserts that a timed-out wait begun at `start` waited its `timeout`.
fn timed_out(fib: &Fiber<'_>, what: &str, start: Ticks, timeout: Ticks) {
    let now = fib.now();
    ensure!(now >= start + timeout, "{what} timed out at tick {now}, before its deadline {}", start + timeout);
}

fn hold(fib: &Fiber<'_>, w: &World, h: Hold) {
    match h {
        Hold::Nothing => {}
        Hold::Yield => fib.yield_now(),
        Hold::Sleep(d) => fib.sleep(d),
        Hold::Advance(k) => {
            w.clock.fetch_add(k, SeqCst);
        }
    }
}

fn join(fib: &Fiber<'_>, h: JoinHandle<u64>, cid: u64) {
    match fib.join(h) {
        Ok(v) => ensure!(v == cid, "joined fiber {cid} returned {v}"),
        Err(e) => fail(format!("join of fiber {cid}: {e:?}")),
    }
}

/// Spawns a fiber running `script` from a fiber (`fib`) or the host (`rt`),
/// taking its stacks from `stacks`. Returns the handle and id (`None` if the
/// table is full or the fiber is detached).
fn spawn<'s, const M: usize>(
    at: Result<&Fiber<'s>, &Runtime<'s, M>>,
    w: &'s World,
    script: &[Op],
    detached: bool,
    stacks: &mut Vec<Stack<'s>>,
) -> Option<(JoinHandle<u64>, u64)> {
    let need = stacks_needed(script);
    let stack = stacks.pop().expect("stack budget");
    let theirs = stacks.split_off(stacks.len() - need);
    let id = w.next_id.fetch_add(1, SeqCst);
    let script = script.to_vec();
    let body = move |f: &Fiber<'s>| fiber(f, w, id, script, theirs);
    let r = match (at, detached) {
        (Ok(fib), false) => fib.spawn(stack, body).map(Some),
        (Ok(fib), true) => fib.spawn_detached(stack, body).map(|_| None),
        (Err(rt), false) => rt.spawn(stack, body).map(Some),
        (Err(rt), true) => rt.spawn_detached(stack, body).map(|_| None),
    };
    match r {
        Ok(h) => {
            w.spawned.fetch_add(1, SeqCst);
            h.map(|h| (h, id))
        }
        Err(e) if matches!(e.kind(), SpawnErrorKind::Full { .. }) => None,
        Err(e) => fail(format!("spawn: {:?}", e.kind())),
    }
}

/// One fiber operation, with its reference-model bookkeeping.
fn step<'s>(fib: &Fiber<'s>, w: &'s World, op: &Op, stacks: &mut Vec<Stack<'s>>, children: &mut Children) {
    let start = fib.now();
    match *op {
        Op::Yield => fib.yield_now(),
        Op::Sleep(d) => {
            fib.sleep(d);
            let now = fib.now();
            ensure!(now >= start + d, "sleep({d}) from tick {start} returned at tick {now}");
        }
        Op::Advance(k) => {
            w.clock.fetch_add(k, SeqCst);
        }
        Op::Lock(t, h) => match w.mutex.lock_timeout(fib, t) {
            Ok(mut g) => {
                ensure!(!w.mutex_held.swap(true, SeqCst), "two fibers hold the mutex");
                *g += 1;
                w.locks.fetch_add(1, SeqCst);
                hold(fib, w, h);
                w.mutex_held.store(false, SeqCst);
            }
            Err(WaitError::TimedOut) => timed_out(fib, "lock_timeout", start, t),
            Err(e) => fail(format!("lock_timeout: {e:?}")),
        },
        Op::Acquire(t, h) => match w.sem.acquire_timeout(fib, t) {
            Ok(()) => {
                let n = w.holders.fetch_add(1, SeqCst) + 1;
                ensure!(n <= PERMITS, "{n} semaphore holders with {PERMITS} permits");
                hold(fib, w, h);
                w.holders.fetch_sub(1, SeqCst);
                w.sem.release(fib, 1).unwrap_or_else(|e| fail(format!("release: {e:?}")));
            }
            Err(WaitError::TimedOut) => timed_out(fib, "acquire_timeout", start, t),
            Err(e) => fail(format!("acquire_timeout: {e:?}")),
        },
        Op::Send(t) => {
            let v = w.next_value.fetch_add(1, SeqCst);
            match w.chan.send_timeout(fib, v, t) {
                Ok(()) => w.sent.lock().unwrap().push(v),
                Err(SendError::TimedOut(back)) => {
                    ensure!(back == v, "send_timeout handed back {back}, not {v}");
                    timed_out(fib, "send_timeout", start, t);
                }
                Err(e) => fail(format!("send_timeout: {e:?}")),
            }
        }
        Op::Recv(t) => match w.chan.recv_timeout(fib, t) {
            Ok(v) => w.received.lock().unwrap().push(v),
            Err(RecvError::TimedOut) => timed_out(fib, "recv_timeout", start, t),
            Err(e) => fail(format!("recv_timeout: {e:?}")),
        },
        Op::TrySend => {
            let v = w.next_value.fetch_add(1, SeqCst);
            match w.chan.try_send(fib, v) {
                Ok(()) => w.sent.lock().unwrap().push(v),
                Err(TrySendError::Full(back)) => ensure!(back == v, "try_send handed back {back}, not {v}"),
                Err(e) => fail(format!("try_send: {e:?}")),
            }
        }
        Op::TryRecv => match w.chan.try_recv(fib) {
            Ok(v) => w.received.lock().unwrap().push(v),
            Err(TryRecvError::Empty) => {}
            Err(e) => fail(format!("try_recv: {e:?}")),
        },
        Op::WaitEvent(t) => match w.event.wait_timeout(fib, t) {
            Ok(()) => {}
            Err(WaitError::TimedOut) => timed_out(fib, "Event::wait_timeout", start, t),
            Err(e) => fail(format!("Event::wait_timeout: {e:?}")),
        },
        Op::SetEvent => w.event.set(fib).unwrap_or_else(|e| fail(format!("Event::set: {e:?}"))),
        Op::ResetEvent => w.event.reset(fib).unwrap_or_else(|e| fail(format!("Event::reset: {e:?}"))),
        Op::WaitIrq(t) => match w.irq.wait_timeout(fib, t) {
            Ok(n) => {
                ensure!(n > 0, "IrqSignal::wait_timeout returned a count of 0");
                w.irq_taken.fetch_add(n, SeqCst);
            }
            Err(IrqError::TimedOut) => timed_out(fib, "IrqSignal::wait_timeout", start, t),
            Err(e) => fail(format!("IrqSignal::wait_timeout: {e:?}")),
        },
        Op::Notify => {
            w.notifies.fetch_add(1, SeqCst);
            w.irq.notify_from_isr();
        }
        Op::Spawn(ref s) => children.extend(spawn::<N>(Ok(fib), w, s, false, stacks)),
        Op::SpawnDetached(ref s) => {
            spawn::<N>(Ok(fib), w, s, true, stacks);
        }
        Op::Join => {
            if let Some((h, cid)) = children.pop_front() {
                join(fib, h, cid);
            }
        }
        Op::Detach => {
            if let Some((h, cid)) = children.pop_front() {
                fib.detach(h).unwrap_or_else(|e| fail(format!("detach of fiber {cid}: {e:?}")));
            }
        }
        Op::SetPriority(level) => {
            let want = Priority::saturating(level);
            fib.set_priority(want);
            // Holding nothing here (a hold is inside Lock), so nothing lends
            // this fiber a higher level.
            ensure!(
                fib.base_priority() == want,
                "base priority {:?} after set_priority({want:?})",
                fib.base_priority()
            );
            ensure!(fib.priority() == want, "priority {:?} after set_priority({want:?})", fib.priority());
        }
        Op::SuspendChild(yields) => {
            if let Some((h, _)) = children.front() {
                let id = h.id();
                match fib.suspend(id) {
                    Ok(()) => {
                        for _ in 0..yields {
                            fib.yield_now();
                            if let Err(e) = fib.debug_check_invariants() {
                                fail(format!("while a child is suspended: {e}"));
                            }
                            ensure!(fib.is_suspended(id) == Ok(true), "the child's suspension was lost");
                        }
                        ensure!(fib.resume(id).is_ok(), "resume of a suspended child failed");
                    }
                    Err(filament::SuspendError::NoSuchFiber(_)) => {} // it finished
                    Err(e) => fail(format!("suspend of a child: {e}")),
                }
            }
        }
        Op::SetChildPriority(level) => {
            if let Some((h, _)) = children.front() {
                let want = Priority::saturating(level);
                if fib.set_priority_of(h.id(), want) {
                    let info = fib.fiber_info(h.id()).unwrap_or_else(|| fail("a live child has no info".into()));
                    ensure!(info.base_priority == want, "child's base {:?}, wanted {want:?}", info.base_priority);
                    ensure!(info.priority >= want, "child's priority {:?} below its base", info.priority);
                }
            }
        }
    }
    // Between operations a fiber holds no mutex (holds end inside an op), so
    // no waiter lends it anything: inheritance was undone.
    ensure!(
        fib.priority() == fib.base_priority(),
        "after {op:?}: priority {:?}, base {:?} (a loan not given back)",
        fib.priority(),
        fib.base_priority()
    );
}

// ================================================================ the host

/// Runs the runtime; the model has no deadlock, so anything but `Ok` fails.
fn run(rt: &Runtime<'_, N>, clock: &mut Clock<'_>) {
    if let Err(e) = rt.run_with_idle(clock) {
        fail(format!("run: {e:?}"))
    }
}

fn host_check(rt: &Runtime<'_, N>, after: &HostOp) {
    if let Err(e) = rt.debug_check_invariants() {
        fail(format!("invariant broken on the host after {after:?}: {e}"))
    }
}

/// Interprets a case on a runtime borrowing `stacks`, then audits it.
fn host<'s>(rt: &Runtime<'s, N>, w: &'s World, case: &Case, mut stacks: Vec<Stack<'s>>) {
    let mut clock = Clock { w, rng: case.seed, idles: 0, reads: 0 };
    let mut handles: Vec<(JoinHandle<u64>, u64)> = Vec::new();
    for op in &case.host {
        match op {
            HostOp::Spawn(s) => handles.extend(spawn(Err(rt), w, s, false, &mut stacks)),
            HostOp::SpawnDetached(s) => {
                spawn(Err(rt), w, s, true, &mut stacks);
            }
            HostOp::Run => run(rt, &mut clock),
            HostOp::Advance(k) => {
                w.clock.fetch_add(*k, SeqCst);
            }
            HostOp::Notify => {
                w.notifies.fetch_add(1, SeqCst);
                w.irq.notify_from_isr();
            }
            HostOp::Take(i) if !handles.is_empty() => {
                let (h, id) = handles.remove(i % handles.len());
                match rt.take(h) {
                    Ok(v) => ensure!(v == id, "take of fiber {id} gave {v}"),
                    Err(JoinError::NotFinished(h)) => handles.push((h, id)),
                    Err(e) => fail(format!("take of fiber {id}: {e:?}")),
                }
            }
            HostOp::Detach(i) if !handles.is_empty() => {
                let (h, id) = handles.remove(i % handles.len());
                rt.detach(h).unwrap_or_else(|e| fail(format!("detach of fiber {id}: {e:?}")));
            }
            HostOp::Take(_) | HostOp::Detach(_) => {}
        }
        host_check(rt, op);
    }
    run(rt, &mut clock);
    host_check(rt, &HostOp::Run);

    // The audit: what is left in the primitives, read by one last fiber.
    let audit = rt
        .spawn(stacks.pop().expect("audit stack"), move |fib| {
            let mut left = Vec::new();
            while let Ok(v) = w.chan.try_recv(fib) {
                left.push(v);
            }
            let permits = w.sem.available(fib).unwrap();
            let value = w.mutex.try_lock(fib).map(|g| *g).map_err(|e| format!("{e:?}"));
            (left, permits, value)
        })
        .unwrap_or_else(|e| fail(format!("spawn of the audit fiber: {:?}", e.kind())));
    run(rt, &mut clock);
    let (left, permits, value) = rt.take(audit).unwrap_or_else(|e| fail(format!("audit: {e:?}")));
    for (h, id) in handles {
        match rt.take(h) {
            Ok(v) => ensure!(v == id, "take of fiber {id} gave {v}"),
            Err(e) => fail(format!("final take of fiber {id}: {e:?}")),
        }
    }
    host_check(rt, &HostOp::Run);

    // The reference model's books.
    let mut sent = w.sent.lock().unwrap().clone();
    let mut got = w.received.lock().unwrap().clone();
    got.extend(&left);
    sent.sort_unstable();
    got.sort_unstable();
    ensure!(sent == got, "channel: sent {sent:?} but received + left {got:?}");
    ensure!(permits == PERMITS, "semaphore: {permits} permits at the end, not {PERMITS}");
    let locks = w.locks.load(SeqCst);
    ensure!(value == Ok(locks), "mutex: value {value:?} after {locks} locks");
    let (notified, taken, pending) = (w.notifies.load(SeqCst), w.irq_taken.load(SeqCst), w.irq.pending());
    ensure!(notified == taken + pending, "irq: {notified} notified, {taken} taken, {pending} pending");
    let (spawned, finished) = (w.spawned.load(SeqCst), w.finished.load(SeqCst));
    ensure!(spawned == finished, "{spawned} fibers spawned but {finished} finished");
    let live = rt.stats().expect("idle runtime").live;
    ensure!(live == 0, "{live} slots still in use after every fiber was taken, joined or detached");
}

/// Runs one case on a runtime of its own (scoped, on borrowed buffers).
fn run_case(case: &Case) {
    let w = World::new();
    // One stack per fiber the case may spawn, plus the audit fiber's.
    let n = 1 + case
        .host
        .iter()
        .map(|op| match op {
            HostOp::Spawn(s) | HostOp::SpawnDetached(s) => 1 + stacks_needed(s),
            _ => 0,
        })
        .sum::<usize>();
    let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; STACK]).collect();
    // Popped from the back: the first spawn gets the last stack.
    let stacks: Vec<Stack<'_>> =
        bufs.iter_mut().map(|b| Stack::from_slice(b).expect("stack buffer").without_painting()).collect();
    Runtime::<N>::scope(|rt| host(rt, &w, case, stacks));
}

/// Runs `case` on its own thread and waits for its verdict (see the module
/// docs): `Err` with what went wrong, including a case that never returns.
fn verdict(case: &Case) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    let case = case.clone();
    let thread = std::thread::Builder::new()
        .name("model case".into())
        .spawn(move || {
            VERDICT.with(|v| *v.borrow_mut() = Some(tx.clone()));
            run_case(&case);
            let _ = tx.send(Ok(()));
        })
        .expect("spawn the case thread");
    match rx.recv_timeout(CASE_TIMEOUT) {
        Ok(Ok(())) => {
            thread.join().expect("case thread");
            Ok(())
        }
        // The case thread is parked for good (or panicked); leave it.
        Ok(Err(msg)) => Err(msg),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err("the case thread panicked".into()),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!("no verdict within {CASE_TIMEOUT:?}: run() hangs")),
    }
}

proptest! {
    /// Random programs keep every structural invariant, conserve what the
    /// reference model counts, and finish.
    #[test]
    fn random_programs_keep_the_invariants(case in case()) {
        let v = verdict(&case);
        prop_assert!(v.is_ok(), "{}", v.unwrap_err());
    }
}

/// A fiber that moves the clock past its next deadline without yielding and
/// then sleeps must sleep (and every other ready fiber must keep running).
#[test]
fn sleep_right_after_the_clock_jumped() {
    let case = Case { host: vec![HostOp::Spawn(vec![Op::Advance(1), Op::Sleep(1)])], seed: 0 };
    verdict(&case).unwrap();
}

/// The same for a `_timeout` wait, with other fibers ready.
#[test]
fn timed_wait_right_after_the_clock_jumped() {
    let case = Case {
        host: vec![
            HostOp::Spawn(vec![Op::Yield, Op::Yield]),
            HostOp::Spawn(vec![Op::Advance(5), Op::Recv(2)]),
            HostOp::Spawn(vec![Op::Yield, Op::Yield]),
        ],
        seed: 0,
    };
    verdict(&case).unwrap();
}
