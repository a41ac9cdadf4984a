//! Run a test scenario in a child process of the test binary.
//!
//! Some failures must kill the process (a stack overflow hitting a guard page,
//! a broken canary). To assert on them without killing the test runner, the
//! test re-executes its own binary, filtered to itself, with an environment
//! variable telling the child to run the scenario; the parent checks the
//! child's exit status and output.
//!
//! # Proof that the scenario ran
//!
//! A child that runs no test at all (a wrong test name) exits 0 just like one
//! whose scenario passed, so the parent never takes the exit status alone. It
//! passes the child a fresh random nonce; right before running the scenario
//! the child prints one marker line with that nonce and the scenario's type
//! name, and the parent requires that line (and then removes it from
//! [`ChildOutput::stdout`]). Without it [`run_in_child`] panics, naming the test
//! name it tried.
//!
//! # The variable
//!
//! `FILAMENT_CHILD_SCENARIO` holds `PID:NONCE:TEST_NAME`, where `PID` is the
//! parent's process id. A process honours it only if its own parent process
//! is `PID` and the test name matches: a value inherited from the environment
//! (exported in a shell, or passed on by the scenario to a process it starts)
//! is ignored, and that test acts as a parent again.

use std::collections::hash_map::RandomState;
use std::env;
use std::format;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::process::{Command, Stdio};
use std::string::String;
use std::sync::atomic::{AtomicU64, Ordering};

const ENV: &str = "FILAMENT_CHILD_SCENARIO";

/// The start of the line a child prints right before it runs the scenario.
const MARKER: &str = "filament-run-in-child: scenario start";

/// What a child process did.
#[derive(Debug, Clone)]
pub struct ChildOutput {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// The terminating signal, if a signal killed it.
    pub signal: Option<i32>,
    /// Its standard output (without the scenario's start marker line).
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

/// A nonce no earlier child of this process got: OS-seeded hashing of a
/// per-process counter.
fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.finish()
}

/// The nonce this process was started with to run `test_name`'s scenario, if
/// the variable names `test_name` and was set by this process's parent.
fn ordered_nonce(test_name: &str) -> Option<String> {
    let value = env::var(ENV).ok()?;
    let mut parts = value.splitn(3, ':');
    let (pid, nonce, name) = (parts.next()?, parts.next()?, parts.next()?);
    let pid: u32 = pid.parse().ok()?;
    (pid == std::os::unix::process::parent_id() && name == test_name).then(|| String::from(nonce))
}

/// Runs `scenario` in a child process and returns what happened there.
///
/// `test_name` must be the exact name of the calling `#[test]` function as the
/// test harness knows it (for integration tests: the function name; in a
/// module: `module::name`; `--list` shows them). In the child, this call runs
/// `scenario` and exits the process with status 0 if it returns; in the parent
/// it returns the child's output. The child runs the test even if it is
/// `#[ignore]`d (`--include-ignored`).
///
/// # Panics
///
/// In the parent, if the child never started the scenario (no test is named
/// `test_name` exactly, or the test reached another `run_in_child` call with
/// the same name first: use one name per scenario), or if the test binary
/// cannot be re-executed.
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
pub fn run_in_child<F: FnOnce()>(test_name: &str, scenario: F) -> ChildOutput {
    let scenario_type = core::any::type_name::<F>();
    if let Some(nonce) = ordered_nonce(test_name) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{MARKER} nonce={nonce} scenario={scenario_type}");
        let _ = out.flush();
        drop(out);
        scenario();
        std::process::exit(0);
    }
    let nonce = format!("{:016x}", nonce());
    let exe = env::current_exe().expect("test binary path");
    let out = Command::new(&exe)
        .args([test_name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(ENV, format!("{}:{nonce}:{test_name}", std::process::id()))
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .output()
        .expect("failed to re-execute the test binary");
    use std::os::unix::process::ExitStatusExt;
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let head = format!("{MARKER} nonce={nonce} scenario=");
    let Some(at) = stdout.find(&head) else {
        panic!(
            "run_in_child: the child process never started the scenario of test `{test_name}`: \
             no test in {} is named exactly `{test_name}` (a test in a module is `module::name`; \
             `--list` shows the names). The child exited with {}.\n--- child stdout\n{stdout}\n\
             --- child stderr\n{stderr}",
            exe.display(),
            out.status
        );
    };
    let line_end = stdout[at..].find('\n').map_or(stdout.len(), |n| at + n + 1);
    let started = stdout[at + head.len()..line_end].trim_end();
    if started != scenario_type {
        panic!(
            "run_in_child: the child process of test `{test_name}` ran a different scenario \
             (`{started}`, not `{scenario_type}`): the test reached another run_in_child call \
             with the same name first; give each scenario its own test"
        );
    }
    stdout.replace_range(at..line_end, "");
    ChildOutput { code: out.status.code(), signal: out.status.signal(), stdout, stderr }
}
