//! Failures reach the user (issue 13): under `cargo test`'s output capture,
//! in one line that names the fiber.

use std::process::Command;

use filament::{Runtime, Stack};

/// Runs this test binary's test `name` in a child *with* libtest's output
/// capture on (no `--nocapture`), with `FILAMENT_VISIBLE_SCENARIO=name`.
fn captured_child(name: &str) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1"])
        .env("FILAMENT_VISIBLE_SCENARIO", name)
        .output()
        .unwrap()
}

fn is_scenario(name: &str) -> bool {
    std::env::var("FILAMENT_VISIBLE_SCENARIO").as_deref() == Ok(name)
}

/// A fatal report (here: a broken canary) used to go through `eprintln!`,
/// which libtest captures, then abort: the user saw only SIGABRT.
#[test]
fn a_fatal_report_is_not_swallowed_by_output_capture() {
    if is_scenario("a_fatal_report_is_not_swallowed_by_output_capture") {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 32 * 1024].into_boxed_slice());
        let lo = (buf.as_ptr() as usize).next_multiple_of(16);
        let rt = Box::new(Runtime::<'static, 2>::new());
        let _a = rt.spawn_named("smasher", Stack::from_slice(buf).unwrap(), move |fib| {
            // SAFETY: the canary words of this fiber's own stack.
            unsafe { std::ptr::write_bytes(lo as *mut u8, 0, 32) };
            fib.yield_now();
        });
        let _b = rt.spawn(Stack::host(64 * 1024).unwrap(), |fib| fib.yield_now());
        let _ = rt.run();
        return;
    }
    let out = captured_child("a_fatal_report_is_not_swallowed_by_output_capture");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.starts_with("filament: fatal:"));
    let Some(line) = line else { panic!("no fatal report on stderr under capture:\n{stderr}") };
    assert!(line.contains("#0.0") && line.contains("\"smasher\"") && line.contains("32768-byte stack"), "{line}");
}
