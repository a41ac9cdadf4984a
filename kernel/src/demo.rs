//! The fiber demo, using filament exactly as an application would: stacks and the runtime
//! are plain `static`s, there is no allocator, the timer interrupt feeds the runtime's clock
//! through an idle hook that halts the CPU, and an interrupt handler raises an [`IrqSignal`].
//!
//! Phases run one after another (one `run` each) so the serial transcript is deterministic
//! apart from tick numbers; `tests/baremetal.rs` checks it line by line.
//!
//! 1. three fibers print and yield round-robin;
//! 2. a producer and a consumer hand values over through a bounded `sync::Channel`;
//! 3. a fiber sleeps on timer ticks (the idle hook `hlt`s until IRQ 0 advances the clock);
//! 4. a fiber waits on an [`IrqSignal`] the timer interrupt handler raises;
//! 5. an interrupt raises a signal between the runtime's poll and the idle hook's check:
//!    a hook without [`IrqWatch`] halts with the signal pending, the recipe hook does not;
//! 6. the COM1 receive interrupt pushes every byte typed into QEMU's serial input into an
//!    [`IrqQueue`]; a fiber receives them and echoes each complete line (`echo: <line>`)
//!    until the line `bye`.

use crate::arch;
use crate::idt::{
    COM1_IRQ, SERIAL_INTERRUPTS, SERIAL_ON_IST, SOFT_INTERRUPTS, SOFT_ON_IST, TICK_OFF_IST, TICKS, TICKS_ON_IST,
};
use crate::{TICK_HZ, kprintln, pic, serial};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use filament::sync::Channel;
use filament::{
    Fiber, Idle, IrqQueue, IrqSignal, IrqWatch, JoinHandle, Priority, Runtime, SpawnOptions, StaticStack, Ticks,
};

/// Bytes per fiber stack. Formatting (`kprintln!`) is the deepest thing the fibers do.
const STACK_SIZE: usize = 16 * 1024;
const FIBERS: usize = 4;

static STACKS: [StaticStack<STACK_SIZE>; FIBERS] = [const { StaticStack::new() }; FIBERS];
static RT: Runtime<'static, FIBERS> = Runtime::new();

/// Raised by the timer interrupt handler every [`SIGNAL_PERIOD`] ticks while armed.
static TIMER_SIGNAL: IrqSignal = IrqSignal::new();
static SIGNAL_ARMED: AtomicBool = AtomicBool::new(false);
/// Notifications raised (to check against what the waiter received).
static SIGNALS_RAISED: AtomicU32 = AtomicU32::new(0);
const SIGNAL_PERIOD: u64 = 20;

/// `hlt` instructions executed by the idle hook.
static HALTS: AtomicU64 = AtomicU64::new(0);

/// Called from the timer interrupt handler (interrupts off, on the IRQ IST stack).
pub(crate) fn on_timer_tick() {
    let now = TICKS.load(Ordering::Relaxed);
    if SIGNAL_ARMED.load(Ordering::Relaxed) && now.is_multiple_of(SIGNAL_PERIOD) {
        SIGNALS_RAISED.fetch_add(1, Ordering::Relaxed);
        // Interrupt-safe: atomics only (the count, the raise, the program-wide epoch).
        TIMER_SIGNAL.notify_from_isr();
    }
}

/// Raised by the software interrupt handler (phase 5).
static RACE_SIGNAL: IrqSignal = IrqSignal::new();

/// Called from the software interrupt handler (interrupts off, on the IRQ IST stack).
pub(crate) fn on_soft_interrupt() {
    RACE_SIGNAL.notify_from_isr();
}

/// Bytes from the COM1 receive interrupt to the echo fiber (phase 6).
static SERIAL_RX: IrqQueue<u8, 64> = IrqQueue::new().named("com1-rx");
/// Bytes the interrupt handler read from the UART, and those it found no room for.
static RX_BYTES: AtomicU64 = AtomicU64::new(0);
static RX_DROPPED: AtomicU64 = AtomicU64::new(0);

/// Called from the COM1 interrupt handler for each received byte (interrupts off, on the
/// IRQ IST stack): the queue's push is interrupt-safe (a compare-exchange, a store, the
/// raise); a full queue hands the byte back, which an interrupt handler can only count.
pub(crate) fn on_serial_byte(byte: u8) {
    RX_BYTES.fetch_add(1, Ordering::Relaxed);
    if SERIAL_RX.try_send_from_isr(byte).is_err() {
        RX_DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The idle hook: called by `run` when no fiber is ready but some sleep or wait on an
/// interrupt signal. Halts until the next interrupt unless something happened since the
/// runtime last looked, and reports the tick counter as the runtime's clock.
struct HaltUntilInterrupt {
    /// Signals raised since this hook last returned (see [`IrqWatch`]).
    watch: IrqWatch,
}

impl HaltUntilInterrupt {
    /// Create it right before the run: the watch must be armed before the runtime's first
    /// poll of its signals.
    fn new() -> Self {
        Self { watch: IrqWatch::new() }
    }
}

impl Idle for HaltUntilInterrupt {
    fn idle(&mut self, now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
        // Check and halt with interrupts off: an interrupt arriving after the check is
        // delivered during `hlt` (see enable_interrupts_and_halt), never lost before it.
        arch::disable_interrupts();
        // Since the runtime last looked: a tick (a sleeper may be due), or a signal raised
        // by an interrupt after the runtime's poll (its waiter must be woken). Either way,
        // return and let the runtime look again.
        if TICKS.load(Ordering::Acquire) != now || self.watch.raised() {
            arch::enable_interrupts();
        } else {
            arch::enable_interrupts_and_halt();
            HALTS.fetch_add(1, Ordering::Relaxed);
        }
        // Last, after the halt: the runtime polls its signals right after we return.
        self.watch.rearm();
        TICKS.load(Ordering::Acquire)
    }
}

/// Phase 5's hook. On its first call it takes the software interrupt, whose handler raises
/// [`RACE_SIGNAL`]: an interrupt after the runtime's poll and before the hook's `cli`, the
/// race [`IrqWatch`] closes. Then it decides as [`HaltUntilInterrupt`] does for a signal
/// (no deadlines are armed in this phase), with the watch or, to show the bug, without.
struct RaceProbe {
    watch: Option<IrqWatch>,
    interrupted: bool,
    halts: u64,
}

impl Idle for RaceProbe {
    fn idle(&mut self, _now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
        if !self.interrupted {
            self.interrupted = true;
            arch::raise_soft_interrupt(); // the interrupt in the window
        }
        arch::disable_interrupts();
        if self.watch.as_ref().is_some_and(IrqWatch::raised) {
            arch::enable_interrupts();
        } else {
            // Without the watch: halt with the signal pending. Only the next timer tick
            // ends this; with a tickless timer nothing would.
            arch::enable_interrupts_and_halt();
            self.halts += 1;
        }
        if let Some(watch) = &mut self.watch {
            watch.rearm();
        }
        TICKS.load(Ordering::Acquire)
    }
}

fn check(ok: bool, what: &str) -> bool {
    if !ok {
        kprintln!("CHECK FAILED: {what}");
    }
    ok
}

/// Spawns `f` on static stack `index`.
fn spawn<T, F>(index: usize, name: &'static str, f: F) -> JoinHandle<T>
where
    F: FnOnce(&Fiber<'static>) -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_at(index, name, Priority::DEFAULT, f)
}

/// Spawns `f` on static stack `index` at `priority`.
fn spawn_at<T, F>(index: usize, name: &'static str, priority: Priority, f: F) -> JoinHandle<T>
where
    F: FnOnce(&Fiber<'static>) -> T + Send + 'static,
    T: Send + 'static,
{
    let stack = STACKS[index].claim().expect("static stack is free between phases");
    RT.spawn_with(stack, SpawnOptions::new().name(name).priority(priority), f).expect("runtime has a free slot")
}

/// Runs every spawned fiber to completion, with the clock fed from the timer.
fn run() -> bool {
    RT.set_now(TICKS.load(Ordering::Acquire));
    match RT.run_with_idle(&mut HaltUntilInterrupt::new()) {
        Ok(()) => true,
        Err(e) => check(
            false,
            match e {
                filament::RunError::Deadlock(_) => "run: deadlock",
                _ => "run: error",
            },
        ),
    }
}

/// Collects a finished fiber's result (releasing its slot and stack).
fn take<T>(handle: JoinHandle<T>) -> Option<T> {
    let result = RT.take(handle).ok();
    check(result.is_some(), "take: fiber result");
    result
}

fn phase_yield() -> bool {
    kprintln!("-- phase 1: round-robin yield");
    let names = ["A", "B", "C"];
    let mut handles = [None, None, None];
    for (i, name) in names.into_iter().enumerate() {
        handles[i] = Some(spawn(i, name, move |fib| {
            for step in 0..3 {
                kprintln!("[{}] step {step} on fiber {}", fib.name(), fib.id());
                fib.yield_now();
            }
            (i as u32 + 1) * 100
        }));
    }
    let ran = run();
    let sum: u32 = handles.into_iter().flatten().filter_map(take).sum();
    kprintln!("phase 1: results sum to {sum}");
    ran && check(sum == 600, "phase 1 results")
}

/// Bounded channel between the producer and the consumer (inline storage, no heap).
static CHANNEL: Channel<u32, 2> = Channel::new();

fn phase_producer_consumer() -> bool {
    kprintln!("-- phase 2: producer/consumer over a Channel<u32, 2>");
    let producer = spawn(0, "producer", |fib| {
        let mut sent = 0;
        for value in 1..=6u32 {
            kprintln!("[producer] send {value}");
            // Blocks while two values are queued: the consumer runs meanwhile.
            if CHANNEL.send(fib, value).is_ok() {
                sent += 1;
            }
        }
        kprintln!("[producer] close");
        let _ = CHANNEL.close(fib);
        sent
    });
    let consumer = spawn(1, "consumer", |fib| {
        let mut sum = 0;
        // Blocks while the channel is empty; Err once it is closed and drained.
        while let Ok(value) = CHANNEL.recv(fib) {
            kprintln!("[consumer] got {value}");
            sum += value;
        }
        kprintln!("[consumer] channel closed");
        sum
    });
    let ran = run();
    let sent = take(producer);
    let sum = take(consumer);
    kprintln!("phase 2: consumer summed {}", sum.unwrap_or(0));
    ran && check(sent == Some(6) && sum == Some(21), "phase 2 results")
}

fn phase_sleep() -> bool {
    kprintln!("-- phase 3: sleeping on timer ticks (idle hook halts the CPU)");
    let halts_before = HALTS.load(Ordering::Relaxed);
    let ticker = spawn(0, "ticker", |fib| {
        let start = fib.now();
        let mut last = start;
        let mut ok = true;
        for round in 1..=5 {
            fib.sleep(10);
            let now = fib.now();
            kprintln!("[ticker] woke {round}: slept {} ticks", now - last);
            ok &= now - last >= 10;
            last = now;
        }
        (ok, last - start)
    });
    let ran = run();
    let halts = HALTS.load(Ordering::Relaxed) - halts_before;
    let (slept_ok, total) = take(ticker).unwrap_or((false, 0));
    kprintln!("phase 3: {total} ticks in 5 sleeps, CPU halted {halts} times");
    ran && check(slept_ok && total >= 50, "phase 3 sleep lengths") && check(halts > 0, "phase 3 halted")
}

fn phase_irq_signal() -> bool {
    kprintln!("-- phase 4: IrqSignal raised by the timer interrupt every {SIGNAL_PERIOD} ticks");
    SIGNAL_ARMED.store(true, Ordering::Release);
    let waiter = spawn(0, "irq-waiter", |fib| {
        let mut received = 0;
        for round in 1..=3 {
            let n = TIMER_SIGNAL.wait(fib).expect("signal belongs to this runtime");
            received += n;
            kprintln!("[irq-waiter] signal {round}: {n} notification(s) at tick {}", fib.now());
        }
        received
    });
    let ran = run();
    SIGNAL_ARMED.store(false, Ordering::Release);
    let received = take(waiter).unwrap_or(0);
    let raised = SIGNALS_RAISED.load(Ordering::Acquire);
    kprintln!("phase 4: received {received} of {raised} notifications");
    ran && check(received >= 3 && received <= u64::from(raised), "phase 4 counts")
}

/// One waiter on [`RACE_SIGNAL`], run with [`RaceProbe`]; the halts the hook made, if the
/// waiter received exactly the one notification.
fn race_round(with_watch: bool) -> Option<u64> {
    let waiter = spawn(0, "race-waiter", |fib| RACE_SIGNAL.wait(fib).expect("signal belongs to this runtime"));
    RT.set_now(TICKS.load(Ordering::Acquire));
    let mut probe = RaceProbe { watch: with_watch.then(IrqWatch::new), interrupted: false, halts: 0 };
    let ran = check(RT.run_with_idle(&mut probe).is_ok(), "phase 5: run");
    let received = take(waiter);
    (ran && check(received == Some(1), "phase 5: one notification received")).then_some(probe.halts)
}

fn phase_idle_race() -> bool {
    kprintln!("-- phase 5: an interrupt raises a signal between the runtime's poll and the idle hook's check");
    let soft_before = SOFT_INTERRUPTS.load(Ordering::Relaxed);
    let without = race_round(false);
    kprintln!(
        "[race] hook without IrqWatch: halted {} time(s) with the signal pending (until the next tick)",
        without.unwrap_or(u64::MAX)
    );
    let with = race_round(true);
    kprintln!("[race] hook with IrqWatch: halted {} time(s)", with.unwrap_or(u64::MAX));
    let soft = SOFT_INTERRUPTS.load(Ordering::Relaxed) - soft_before;
    check(without == Some(1), "phase 5: the hook without the watch halted once")
        && check(with == Some(0), "phase 5: the hook with the watch did not halt")
        && check(
            soft == 2 && SOFT_ON_IST.load(Ordering::Relaxed) == SOFT_INTERRUPTS.load(Ordering::Relaxed),
            "phase 5: two software interrupts, on the IST stack",
        )
}

/// How long the echo fiber waits for the next byte before it gives up (10 s of ticks).
const ECHO_TIMEOUT: Ticks = 10 * TICK_HZ as Ticks;
/// Longest line the echo fiber keeps (the rest of a longer line is cut off).
const LINE_MAX: usize = 80;

fn phase_serial_echo() -> bool {
    kprintln!("-- phase 6: COM1 receive interrupt -> IrqQueue -> echo fiber (the line 'bye' ends it)");
    kprintln!("[phase 6] echo at priority 2 preempts a busy background fiber at priority 0");
    arch::disable_interrupts();
    serial::enable_rx_interrupt();
    pic::set_masked(COM1_IRQ, false);
    arch::enable_interrupts();
    static ECHO_DONE: AtomicBool = AtomicBool::new(false);
    ECHO_DONE.store(false, Ordering::Relaxed);
    // Busy work that never blocks: it yields, and each yield is a scheduling
    // point where the runtime drains the receive queue's interrupt source and
    // the (higher) echo fiber, woken by a byte, runs first.
    let background = spawn_at(1, "background", Priority::new(0).expect("level 0"), |fib| {
        // The echo fiber (higher) ran first and blocks on the empty queue:
        // only now is the demo ready for input (the host types on this cue).
        kprintln!("[background] running; type lines now");
        let mut yields = 0u64;
        while !ECHO_DONE.load(Ordering::Relaxed) {
            yields += 1;
            fib.yield_now();
        }
        yields
    });
    let echo = spawn_at(0, "echo", Priority::new(2).expect("level 2"), |fib| {
        // Ends the background fiber however this one returns.
        struct Done;
        impl Drop for Done {
            fn drop(&mut self) {
                ECHO_DONE.store(true, Ordering::Relaxed);
            }
        }
        let _done = Done;
        let mut line = [0u8; LINE_MAX];
        let mut len = 0;
        let mut lines = 0u32;
        loop {
            // Blocks (the idle hook halts the CPU) until the interrupt handler pushes a byte.
            match SERIAL_RX.recv_timeout(fib, ECHO_TIMEOUT) {
                Ok(b'\r') => {}
                Ok(b'\n') => {
                    let text = core::str::from_utf8(&line[..len]).unwrap_or("<not UTF-8>");
                    kprintln!("echo: {text}");
                    lines += 1;
                    if text == "bye" {
                        return Some(lines);
                    }
                    len = 0;
                }
                Ok(byte) => {
                    if len < LINE_MAX {
                        line[len] = byte;
                        len += 1;
                    }
                }
                Err(_) => {
                    kprintln!("[echo] no input for {ECHO_TIMEOUT} ticks");
                    return None;
                }
            }
        }
    });
    let ran = run();
    arch::disable_interrupts();
    pic::set_masked(COM1_IRQ, true);
    serial::disable_rx_interrupt();
    arch::enable_interrupts();
    let lines = take(echo).flatten();
    let background_yields = take(background).unwrap_or(0);
    kprintln!("[phase 6] background fiber yielded {background_yields} times meanwhile");
    let (bytes, dropped) = (RX_BYTES.load(Ordering::Relaxed), RX_DROPPED.load(Ordering::Relaxed));
    let (irqs, on_ist) = (SERIAL_INTERRUPTS.load(Ordering::Relaxed), SERIAL_ON_IST.load(Ordering::Relaxed));
    kprintln!(
        "phase 6: {} line(s) echoed; {bytes} byte(s) in {irqs} receive interrupt(s), {dropped} dropped",
        lines.unwrap_or(0)
    );
    ran && check(lines.is_some(), "phase 6: input ended with the line 'bye'")
        && check(background_yields > 0, "phase 6: the background fiber ran while echo waited")
        && check(dropped == 0, "phase 6: no byte dropped")
        && check(irqs > 0 && on_ist == irqs, "phase 6: receive interrupts taken, on the IST stack")
}

fn timer_report() -> bool {
    arch::disable_interrupts();
    let ticks = TICKS.load(Ordering::Acquire);
    let on_ist = TICKS_ON_IST.load(Ordering::Acquire);
    let off_ist = TICK_OFF_IST.load(Ordering::Acquire);
    arch::enable_interrupts();
    kprintln!("timer: {ticks} interrupts, {on_ist} of them on the IST stack");
    check(!off_ist && on_ist == ticks, "every timer interrupt ran on its IST stack")
}

/// Runs the demo; `true` when every check passed.
pub fn run_all() -> bool {
    let third = core::hint::black_box(1.0f64) / core::hint::black_box(3.0f64);
    kprintln!("sse: 1/3 = {third:.6}");
    let mut ok = check((third - 0.333_333).abs() < 1e-6, "SSE arithmetic");
    ok &= phase_yield();
    ok &= phase_producer_consumer();
    ok &= phase_sleep();
    ok &= phase_irq_signal();
    ok &= phase_idle_race();
    ok &= phase_serial_echo();
    ok &= timer_report();
    ok
}
