//! A fiber pipeline recorded with [`TraceRecorder`] and exported as a timeline.
//!
//! ```text
//!  producer ──RAW (cap 2)──► transform-a ─┐
//!                          └► transform-b ─┴─COOKED (cap 4)──► consumer
//!  ticker: sleeps 2 ms at a time, 4 times
//! ```
//!
//! The producer makes 16 items in bursts of four with a 2 ms sleep between
//! bursts; two transformers share its channel, each doing its work in two halves
//! with a yield between; the consumer takes 16 items. Ticks are real
//! milliseconds ([`HostClock`]), so sleeps show as idle time.
//!
//! Writes `timeline.json` (open it in <https://ui.perfetto.dev> or
//! `chrome://tracing`) and `timeline.svg` (any browser) into the directory given
//! as the first argument, default `target/timeline/`:
//!
//! ```text
//! cargo run --example timeline --features std,trace -- target/timeline
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use filament::host::HostClock;
use filament::host::trace::TraceRecorder;
use filament::sync::Channel;
use filament::{Runtime, Stack};

const ITEMS: u32 = 16;

static REC: TraceRecorder = TraceRecorder::new();
static RT: Runtime<'static, 8> = Runtime::new();
static RAW: Channel<u32, 2> = Channel::new();
static COOKED: Channel<u64, 4> = Channel::new();

/// Burns CPU for about `micros` microseconds, so runs have a visible length.
fn work(micros: u64, seed: u64) -> u64 {
    let until = Instant::now() + Duration::from_micros(micros);
    let mut x = seed | 1;
    while Instant::now() < until {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
    }
    black_box(x)
}

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| String::from("target/timeline"));
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create the output directory");

    assert!(RT.set_tracer(&REC), "runtime idle");

    let producer = RT
        .spawn_named("producer", stack(), |fib| {
            for i in 0..ITEMS {
                work(150, u64::from(i));
                RAW.send(fib, i).expect("transformers are listening");
                if i % 4 == 3 {
                    fib.sleep(2);
                }
            }
            RAW.close(fib).expect("same runtime");
        })
        .expect("spawn producer");
    let mut transformers = Vec::new();
    for name in ["transform-a", "transform-b"] {
        let h = RT
            .spawn_named(name, stack(), |fib| {
                let mut done = 0u32;
                while let Ok(item) = RAW.recv(fib) {
                    let half = work(120, u64::from(item));
                    fib.yield_now();
                    let out = work(120, half) % 1000 + u64::from(item) * 1000;
                    COOKED.send(fib, out).expect("consumer is listening");
                    done += 1;
                }
                done
            })
            .expect("spawn transformer");
        transformers.push(h);
    }
    let consumer = RT
        .spawn_named("consumer", stack(), |fib| {
            let mut sum = 0u64;
            for _ in 0..ITEMS {
                let v = COOKED.recv(fib).expect("items arrive");
                sum += v / 1000;
                work(60, v);
            }
            sum
        })
        .expect("spawn consumer");
    let ticker = RT
        .spawn_named("ticker", stack(), |fib| {
            for _ in 0..4 {
                fib.sleep(2);
                work(40, 7);
            }
        })
        .expect("spawn ticker");

    RT.run_with_idle(&mut HostClock::new()).expect("run");
    print!("{RT:?}");

    RT.take(producer).expect("producer finished");
    RT.take(ticker).expect("ticker finished");
    let per: Vec<u32> = transformers.into_iter().map(|h| RT.take(h).expect("transformer finished")).collect();
    let sum = RT.take(consumer).expect("consumer finished");
    assert_eq!(sum, u64::from(ITEMS * (ITEMS - 1) / 2), "every item arrives once");
    assert_eq!(per.iter().sum::<u32>(), ITEMS);

    let json = dir.join("timeline.json");
    let svg = dir.join("timeline.svg");
    std::fs::write(&json, REC.to_chrome_json()).expect("write timeline.json");
    std::fs::write(&svg, REC.to_svg()).expect("write timeline.svg");
    let slices = REC.slices();
    let busy: Duration = slices.iter().map(|s| s.end - s.start).sum();
    let total = REC.events().last().map_or(Duration::ZERO, |e| e.at);
    println!(
        "transformers handled {per:?} items; {} runs, {} switch-ins, {} idle spans; fibers busy {:.2} ms of {:.2} ms",
        slices.len(),
        REC.switch_ins(),
        REC.idle_spans().len(),
        busy.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3
    );
    println!("wrote {} and {}", json.display(), svg.display());
}
