//! An API that does not bite (issue 13): each test pins one promise.

use std::sync::{Arc, Mutex as StdMutex};

use filament::{IrqSignal, Runtime, Stack, Ticks};

fn stack() -> Stack<'static> {
    Stack::host(256 * 1024).expect("mmap stack")
}

static FOREVER: IrqSignal = IrqSignal::new();

/// `Ticks::MAX` as a timeout means "no timeout". Under virtual time the
/// runtime used to jump its clock to the deadline `u64::MAX` and time the
/// wait out at once.
#[test]
fn a_timeout_of_ticks_max_waits_forever() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let h = rt.spawn(stack(), |fib| FOREVER.wait_timeout(fib, Ticks::MAX)).unwrap();
    let notifier = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        FOREVER.notify_from_isr();
    });
    rt.run().unwrap();
    notifier.join().unwrap();
    assert_eq!(rt.take(h).unwrap(), Ok(1));
}

/// `sleep(0)` lets the other ready fibers run first (`vTaskDelay(0)`), it does
/// not return at once.
#[test]
fn sleep_zero_yields_to_the_other_ready_fibers() {
    let rt = Box::new(Runtime::<'static, 2>::new());
    let trace = Arc::new(StdMutex::new(Vec::new()));
    let (ta, tb) = (trace.clone(), trace.clone());
    let a = rt
        .spawn(stack(), move |fib| {
            ta.lock().unwrap().push("a1");
            fib.sleep(0);
            ta.lock().unwrap().push("a2");
        })
        .unwrap();
    let b = rt.spawn(stack(), move |_| tb.lock().unwrap().push("b1")).unwrap();
    rt.run().unwrap();
    rt.take(a).unwrap();
    rt.take(b).unwrap();
    assert_eq!(*trace.lock().unwrap(), ["a1", "b1", "a2"]);
}
