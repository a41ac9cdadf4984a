//! Run a test scenario in a child process of the test binary.
//!
//! Some failures must kill the process (a stack overflow hitting a guard page,
//! a broken canary). To assert on them without killing the test runner, the
//! test re-executes its own binary, filtered to itself, with an environment
//! variable telling the child to run the scenario; the parent checks the
//! child's exit status and output.

use std::env;
use std::process::{Command, Stdio};
use std::string::String;

const ENV: &str = "FILAMENT_CHILD_SCENARIO";

/// What a child process did.
#[derive(Debug, Clone)]
pub struct ChildOutput {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// The terminating signal, if a signal killed it.
    pub signal: Option<i32>,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl ChildOutput {
    /// Whether the child exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `scenario` in a child process and returns what happened there.
///
/// `test_name` must be the exact name of the calling `#[test]` function as the
/// test harness knows it (for integration tests: the function name; in a
/// module: `module::name`). In the child, this call runs `scenario` and exits
/// the process with status 0 if it returns; in the parent it returns the
/// child's output.
///
/// ```no_run
/// #[test]
/// fn overflow_is_caught() {
///     let out = filament::host::run_in_child("overflow_is_caught", || {
///         // ... overflow a fiber stack ...
///     });
///     assert_eq!(out.signal, Some(libc::SIGSEGV));
/// }
/// ```
pub fn run_in_child(test_name: &str, scenario: impl FnOnce()) -> ChildOutput {
    if env::var(ENV).as_deref() == Ok(test_name) {
        scenario();
        std::process::exit(0);
    }
    let exe = env::current_exe().expect("test binary path");
    let out = Command::new(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env(ENV, test_name)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("failed to re-execute the test binary");
    use std::os::unix::process::ExitStatusExt;
    ChildOutput {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
