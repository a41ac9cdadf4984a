//! A serial-port receive path: interrupt → stream buffer → line assembler →
//! message buffer → command handler.
//!
//! ```text
//!  "UART interrupt"          fiber "lines"                fiber "commands"
//!  (an OS thread here)
//!  send_from_isr ──RX: StreamBuffer<64>──► receive_timeout ──LINES: MessageBuffer<128>──► receive
//!  bytes in random bursts     trigger level 8, 5 ms timeout  one message per line
//! ```
//!
//! * The "interrupt handler" is another OS thread writing bytes in small
//!   bursts with `send_from_isr`: non-blocking, lock-free, it writes what fits
//!   and learns how much; what did not fit is retried (a real UART would count
//!   an overrun).
//! * The line assembler wakes once 8 bytes are there (the trigger level) or
//!   after 5 ms with whatever arrived (the tail of a short line), cuts lines
//!   and forwards each as one message.
//! * The command handler gets whole lines, never half a line, and stops at
//!   `quit`.
//!
//! Time is real: `run_with_idle(HostClock)` sleeps until a deadline or until
//! the "interrupt" raises the buffer's signal; one tick is one millisecond.
//!
//! Run with `cargo run --example stream_buffer --features std`.

use std::thread;
use std::time::Duration;

use filament::host::HostClock;
use filament::sync::{MessageBuffer, StreamBuffer, StreamError};
use filament::{Runtime, Stack};

static RX: StreamBuffer<64> = StreamBuffer::new().with_trigger_level(8).named("uart-rx");
static LINES: MessageBuffer<128> = MessageBuffer::new().named("lines");

const INPUT: &str =
    "led on\nset speed 115200\nstatus\na rather long line that does not fit in one burst of the uart\nled off\nquit\n";

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

fn main() {
    // The "UART interrupt": bursts of 1..=7 bytes, a little apart.
    let uart = thread::spawn(|| {
        let mut bytes = INPUT.as_bytes();
        let mut burst = 1;
        let mut overruns = 0;
        while !bytes.is_empty() {
            let n = burst.min(bytes.len());
            let written = RX.send_from_isr(&bytes[..n]).expect("one writer only");
            if written < n {
                overruns += 1; // full: a real UART would drop or flag these bytes
            }
            bytes = &bytes[written..];
            burst = burst % 7 + 1;
            thread::sleep(Duration::from_micros(300));
        }
        overruns
    });

    let rt = Box::new(Runtime::<'static, 2>::new());
    let lines = rt
        .spawn_named("lines", stack(), |fib| {
            let mut chunk = [0u8; 32];
            let mut line = Vec::new();
            loop {
                let n = match RX.receive_timeout(fib, &mut chunk, 5) {
                    Ok(n) => n,
                    Err(StreamError::TimedOut) => continue, // the line is idle
                    Err(e) => panic!("{e}"),
                };
                for &b in &chunk[..n] {
                    if b != b'\n' {
                        line.push(b);
                        continue;
                    }
                    LINES.send(fib, &line).expect("line longer than the message buffer");
                    if line == b"quit" {
                        return;
                    }
                    line.clear();
                }
            }
        })
        .unwrap();
    let commands = rt
        .spawn_named("commands", stack(), |fib| {
            let mut msg = [0u8; 124];
            let mut handled = 0;
            loop {
                let n = LINES.receive(fib, &mut msg).expect("receive");
                let cmd = std::str::from_utf8(&msg[..n]).expect("utf-8");
                println!("[{:>4} ms] command {:?}", fib.now(), cmd);
                handled += 1;
                if cmd == "quit" {
                    return handled;
                }
            }
        })
        .unwrap();

    rt.run_with_idle(&mut HostClock::new()).unwrap();
    rt.take(lines).unwrap();
    let overruns = uart.join().unwrap();
    let handled = rt.take(commands).unwrap();
    println!("{handled} commands, {overruns} bursts retried because the buffer was full");
    assert_eq!(handled, INPUT.lines().count());
}
