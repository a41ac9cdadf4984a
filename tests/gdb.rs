//! The gdb helpers (`gdb/filament.py`) and the backtrace claim of the arch module,
//! checked with a real gdb on `examples/gdb_target.rs` (issue 6).
//!
//! The debuggee is built by a nested `cargo build --example gdb_target` with its own
//! `--target-dir` (`target/gdb`): the outer `cargo test` may still hold the lock on
//! `target/`. gdb runs in batch mode, stops at `gdb_target::marker` inside the fiber
//! "worker", and the test reads its transcript:
//!
//! * `bt` inside a fiber ends at `__filament_fiber_start`, with no `??` or garbage frames
//!   and no "Backtrace stopped" complaint (the trampoline's `.cfi_undefined rip`), also
//!   inside `exit_current`, which the entry glue jumps to rather than calls;
//! * `info fibers` lists the six staged fibers with the right states, one Running;
//! * `fiber bt N` of each suspended fiber shows the function it is suspended in;
//! * after all that the registers are restored: the process continues and exits normally.
//!
//! Without gdb the tests print a loud SKIPPED line and pass, unless
//! `FILAMENT_REQUIRE_TOOLS=1` (CI) makes them fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether gdb can be used; prints the SKIPPED line (or panics under
/// `FILAMENT_REQUIRE_TOOLS=1`) when it cannot.
fn gdb_available() -> bool {
    let ok = Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let message = "SKIPPED: gdb not found; install with apt-get install -y gdb";
        if std::env::var("FILAMENT_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{message} (FILAMENT_REQUIRE_TOOLS=1 makes this an error)");
        }
        // Straight to the stderr handle: libtest captures `eprintln!` of passing tests.
        let _ = writeln!(std::io::stderr(), "\n**********\n{message}\n**********\n");
    }
    ok
}

/// Builds `examples/gdb_target.rs` once per profile; returns the executable.
fn build_debuggee(release: bool) -> PathBuf {
    static DEBUG: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static RELEASE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = if release { &RELEASE } else { &DEBUG };
    let built = cell.get_or_init(|| {
        let target_dir = root().join("target").join("gdb");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(root()).args(["build", "--example", "gdb_target"]).arg("--target-dir").arg(&target_dir);
        cmd.args(["--features", "std"]); // the example's `required-features`
        if release {
            cmd.arg("--release");
        }
        let output = cmd
            // Instrumentation meant for the outer build (coverage, sanitizers) would
            // change the frames under test.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "building examples/gdb_target.rs failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let profile = if release { "release" } else { "debug" };
        Ok(target_dir.join(profile).join("examples").join("gdb_target"))
    });
    match built {
        Ok(path) => path.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// Runs gdb in batch mode with the helpers loaded, one `-ex` per command. Each
/// command's output is preceded by a line `=== <command>` so it can be cut out.
fn run_gdb(exe: &Path, commands: &[&str]) -> String {
    run_gdb_with(exe, &[], 120, commands, Command::new("timeout"))
}

/// [`run_gdb`] with arguments for the debuggee, a watchdog of `seconds`, and
/// `cmd` (a `timeout` command, perhaps with environment or limits set).
fn run_gdb_with(exe: &Path, args: &[&str], seconds: u32, commands: &[&str], mut cmd: Command) -> String {
    cmd.arg(seconds.to_string()).arg("gdb").args(["-nx", "-q", "-batch"]);
    cmd.args(["-iex", "set auto-load no", "-iex", "set debuginfod enabled off", "-iex", "set pagination off"]);
    cmd.arg("-x").arg(root().join("gdb").join("filament.py"));
    for c in commands {
        cmd.arg("-ex").arg(format!("echo === {c}\\n"));
        cmd.arg("-ex").arg(c);
    }
    cmd.arg("--args").arg(exe).args(args);
    let output = cmd.stdin(Stdio::null()).output().expect("run gdb");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if stdout.contains("ptrace: Operation not permitted") || stderr.contains("ptrace: Operation not permitted") {
        panic!("gdb cannot trace processes here (ptrace not permitted):\n{stderr}");
    }
    // gdb prints command errors to stderr; keep them in order-insensitive view too.
    format!("{stdout}\n=== <stderr>\n{stderr}")
}

/// The output of `command` in a transcript from [`run_gdb`].
fn section<'a>(transcript: &'a str, command: &str) -> &'a str {
    let head = format!("=== {command}\n");
    let start =
        transcript.find(&head).unwrap_or_else(|| panic!("no output for `{command}` in:\n{transcript}")) + head.len();
    let rest = &transcript[start..];
    let end = if rest.starts_with("=== ") { 0 } else { rest.find("\n=== ").map_or(rest.len(), |e| e + 1) };
    &rest[..end]
}

/// The frame lines (`#N ...`) of a backtrace.
fn frames(bt: &str) -> Vec<&str> {
    bt.lines().filter(|l| l.starts_with('#')).collect()
}

/// A backtrace of a fiber must end at the trampoline with nothing odd on the way.
fn assert_clean_fiber_backtrace(what: &str, bt: &str) {
    let fr = frames(bt);
    assert!(!fr.is_empty(), "{what}: no frames:\n{bt}");
    let last = fr.last().unwrap();
    assert!(last.contains("__filament_fiber_start"), "{what}: the last frame is not the trampoline:\n{bt}");
    assert_eq!(
        fr.iter().filter(|l| l.contains("__filament_fiber_start")).count(),
        1,
        "{what}: the trampoline appears more than once:\n{bt}"
    );
    for l in &fr {
        assert!(!l.contains("?? ") && !l.contains(" ?? "), "{what}: unknown frame `{l}`:\n{bt}");
    }
    assert!(!bt.contains("Backtrace stopped"), "{what}: the unwinder complained:\n{bt}");
    assert!(!bt.contains("previous frame identical"), "{what}: the unwinder looped:\n{bt}");
}

/// One row of `info fibers`.
#[derive(Debug)]
struct Row {
    running_mark: bool,
    id: String,
    name: String,
    prio: String,
    state: String,
    stack: usize,
    high_water: Option<usize>,
    runs: u32,
}

fn parse_info_fibers(out: &str) -> Vec<Row> {
    let mut lines = out.lines().skip_while(|l| !l.trim_start().starts_with("ID "));
    let header = lines.next().unwrap_or_else(|| panic!("no table header in:\n{out}"));
    let col = |name: &str| header.find(name).unwrap_or_else(|| panic!("no {name} column in `{header}`"));
    let (name_at, prio_at, state_at) = (col("NAME"), col("PRIO"), col("STATE"));
    let mut rows = Vec::new();
    for line in lines {
        if !line.contains('#') {
            break;
        }
        let cell = |a: usize, b: usize| line.get(a..b.min(line.len())).unwrap_or("").trim().to_string();
        // Right-aligned numeric columns (wider than their headers for big
        // stacks): the last three words; the state is what precedes them.
        let nums: Vec<&str> = line.split_whitespace().rev().take(3).collect();
        let state: Vec<&str> = line.get(state_at..).unwrap_or("").split_whitespace().collect();
        let state = state[..state.len().saturating_sub(3)].join(" ");
        rows.push(Row {
            running_mark: line.starts_with('*'),
            id: cell(0, name_at).trim_start_matches('*').trim().to_string(),
            name: cell(name_at, prio_at),
            prio: cell(prio_at, state_at),
            state,
            stack: nums[2].parse().unwrap_or_else(|_| panic!("stack size in `{line}`")),
            high_water: nums[1].parse().ok(),
            runs: nums[0].parse().unwrap_or_else(|_| panic!("runs in `{line}`")),
        });
    }
    rows
}

#[test]
fn gdb_info_fibers_and_fiber_backtraces() {
    if !gdb_available() {
        return;
    }
    let exe = build_debuggee(false);
    let commands = [
        "break gdb_target::marker",
        "run",
        "bt",
        "info fibers",
        "info fibers gdb_target::RT",
        "fiber bt 3",
        "fiber bt 2",
        "fiber bt 1",
        "fiber bt 4",
        "fiber bt 6",
        "fiber bt 5",
        "fiber bt 0",
        "bt 1",
        // Later, on the host stack: the scheduler idles until the sleeper's deadline.
        "delete",
        "break filament::time::advance",
        "continue",
        "info fibers",
        "fiber bt 1",
        "delete",
        "continue",
    ];
    let t = run_gdb(&exe, &commands);
    println!("{t}");

    // A plain `bt` at the breakpoint, on the fiber's own stack.
    let bt = section(&t, "bt");
    assert!(frames(bt)[0].contains("gdb_target::marker"), "not stopped at the marker:\n{bt}");
    assert!(bt.contains("filament::spawn::fiber_entry"), "no fiber_entry frame:\n{bt}");
    assert_clean_fiber_backtrace("bt at the marker", bt);

    // The table, found from the frame chain and from an explicit expression alike.
    let auto = section(&t, "info fibers");
    let named = section(&t, "info fibers gdb_target::RT");
    assert_eq!(auto, named, "frame-chain and explicit runtime disagree");
    assert!(auto.starts_with("Runtime at 0x"), "no summary line:\n{auto}");
    assert!(auto.contains("capacity 8, live 7"), "wrong totals:\n{auto}");
    let rows = parse_info_fibers(auto);
    let expected = [
        ("#0.0", "done", "Finished", 1),
        ("#1.0", "sleeper", "Blocked sleep until 1000000", 1),
        ("#2.0", "joiner", "Blocked join #5.0 worker", 1),
        ("#3.0", "spinner", "Ready", 1),
        ("#4.0", "reader", "Blocked recv", 1),
        ("#5.0", "worker", "Running", 1),
        ("#6.0", "late", "Ready (not started)", 0),
    ];
    // Priorities: late was spawned at level 3, everyone else at the default.
    for row in &rows {
        assert_eq!(row.prio, if row.name == "late" { "3" } else { "0" }, "priority of {}:\n{auto}", row.name);
    }
    assert_eq!(rows.len(), expected.len(), "one row per live fiber:\n{auto}\n{rows:#?}");
    for (row, (id, name, state, runs)) in rows.iter().zip(expected) {
        assert_eq!((row.id.as_str(), row.name.as_str()), (id, name), "{auto}");
        if name == "reader" {
            // The channel's address, named after the static it lives in.
            assert!(row.state.starts_with("Blocked recv 0x"), "{auto}");
            // The name given with `Channel::named`.
            assert!(row.state.contains("\"inbox\""), "{auto}");
            // (v0-mangled builds, e.g. nightly, print the crate's hash too:
            // `gdb_target[0123abcd]::INBOX`.)
            assert!(row.state.contains("(gdb_target") && row.state.ends_with("::INBOX)"), "{auto}");
        } else {
            assert_eq!(row.state, state, "state of {name}:\n{auto}");
        }
        assert_eq!(row.runs, runs, "runs of {name}:\n{auto}");
        assert_eq!(row.stack, 64 * 1024, "stack size of {name}:\n{auto}");
        let hw = row.high_water.unwrap_or_else(|| panic!("no high-water mark for {name}:\n{auto}"));
        assert!(hw > 0 && hw < row.stack, "high-water of {name} is {hw}:\n{auto}");
        assert_eq!(row.running_mark, state == "Running", "running mark of {name}:\n{auto}");
    }
    assert_eq!(rows.iter().filter(|r| r.state == "Running").count(), 1, "{auto}");
    // The fiber that ran deepest (worker, at the marker) used more than one never run.
    assert!(rows[5].high_water > rows[6].high_water, "{auto}");

    // Suspended fibers: the function each is suspended in, down to the trampoline.
    let spinner = section(&t, "fiber bt 3");
    assert!(spinner.starts_with("fiber #3.0 spinner (Ready)"), "{spinner}");
    assert!(frames(spinner)[0].contains("yield_now"), "spinner is suspended in yield_now:\n{spinner}");
    assert!(spinner.contains("gdb_target::spin_yield"), "{spinner}");
    assert_clean_fiber_backtrace("fiber bt 3", spinner);

    let joiner = section(&t, "fiber bt 2");
    assert!(joiner.contains("filament::handle::Fiber::join"), "{joiner}");
    assert!(joiner.contains("gdb_target::wait_for_worker"), "{joiner}");
    assert_clean_fiber_backtrace("fiber bt 2", joiner);

    let sleeper = section(&t, "fiber bt 1");
    assert!(sleeper.contains("filament::handle::Fiber::sleep"), "{sleeper}");
    assert!(sleeper.contains("gdb_target::nap"), "{sleeper}");
    assert_clean_fiber_backtrace("fiber bt 1", sleeper);

    let reader = section(&t, "fiber bt 4");
    assert!(reader.contains("filament::sync::channel::Channel<u64, 1>::recv"), "{reader}");
    assert!(reader.contains("gdb_target::read_one"), "{reader}");
    assert_clean_fiber_backtrace("fiber bt 4", reader);

    // Never run: its saved context returns straight into the trampoline.
    let late = section(&t, "fiber bt 6");
    assert_eq!(frames(late).len(), 1, "{late}");
    assert_clean_fiber_backtrace("fiber bt 6", late);

    // The running fiber: a plain bt.
    let worker = section(&t, "fiber bt 5");
    assert!(frames(worker)[0].contains("gdb_target::marker"), "{worker}");

    // A finished fiber has no frames: an error, not garbage.
    assert!(section(&t, "fiber bt 0").trim().is_empty(), "{t}");
    assert!(t.contains("fiber #0.0 done has finished: no frames left"), "{t}");

    // Registers restored: the thread is where it stopped and runs to a normal exit.
    assert!(frames(section(&t, "bt 1"))[0].contains("gdb_target::marker"), "{t}");
    // On the host stack, found through `run_loop`'s frames: nobody is Running, only
    // the sleeper is left blocked, and its stack still unwinds.
    let host = t.split("=== break filament::time::advance\n").nth(1).expect("second half");
    let later = section(host, "info fibers");
    assert!(!later.contains("Running") && !later.contains('*'), "{later}");
    let later_rows = parse_info_fibers(later);
    assert_eq!(later_rows.len(), 5, "late and worker are gone (detached, joined):\n{later}");
    for row in &later_rows {
        let want = if row.name == "sleeper" { "Blocked sleep until 1000000" } else { "Finished" };
        assert_eq!(row.state, want, "{later}");
    }
    let sleeper = section(host, "fiber bt 1");
    assert!(sleeper.contains("gdb_target::nap"), "{sleeper}");
    assert_clean_fiber_backtrace("fiber bt 1 from the host stack", sleeper);

    let cont = section(host.split("=== delete\n").nth(1).expect("final continue"), "continue");
    assert!(cont.contains("gdb_target: total 45"), "the debuggee did not finish its work:\n{cont}");
    assert!(cont.contains("exited normally"), "the debuggee did not exit normally:\n{cont}");
}

/// The CFI claim holds in an optimised build too (line tables only: `debug = 1`).
#[test]
fn gdb_release_backtrace_ends_at_trampoline() {
    if !gdb_available() {
        return;
    }
    let exe = build_debuggee(true);
    let t = run_gdb(&exe, &["break filament_gdb_marker", "run", "bt", "kill"]);
    println!("{t}");
    let bt = section(&t, "bt");
    // The breakpoint may land in code inlined into the marker (`black_box`).
    assert!(frames(bt).iter().take(2).any(|f| f.contains("filament_gdb_marker")), "not stopped at the marker:\n{bt}");
    assert!(bt.contains("gdb_target::marker"), "{bt}");
    assert_clean_fiber_backtrace("release bt", bt);
}

/// A backtrace taken while a fiber finishes (inside `exit_current`, entered by a
/// jump that pushes a return address inside the trampoline) ends cleanly at the
/// trampoline as well, in debug and release.
#[test]
fn gdb_backtrace_inside_fiber_exit() {
    if !gdb_available() {
        return;
    }
    for release in [false, true] {
        let exe = build_debuggee(release);
        let t = run_gdb(&exe, &["break filament::raw::exit::exit_current", "run", "bt", "kill"]);
        println!("{t}");
        let bt = section(&t, "bt");
        let fr = frames(bt);
        assert!(fr[0].contains("filament::raw::exit::exit_current"), "not stopped in exit_current:\n{bt}");
        assert_eq!(fr.len(), 2, "exit_current is entered straight from the trampoline's frame:\n{bt}");
        assert_clean_fiber_backtrace(if release { "release bt in exit" } else { "bt in exit" }, bt);
    }
}

/// The debuggee of [`gdb_info_fibers_is_fast_on_a_1_gib_stack`]: this test
/// binary itself, running this test with `FILAMENT_GDB_DEBUGGEE=big-stack`
/// (otherwise it does nothing). One fiber on a painted 1 GiB `Stack::host`
/// (`MAP_NORESERVE`: only what the paint touches is ever backed) stops at
/// [`filament_gdb_big_stack_marker`].
#[cfg(feature = "std")]
#[test]
fn big_stack_debuggee() {
    if std::env::var("FILAMENT_GDB_DEBUGGEE").as_deref() != Ok("big-stack") {
        return;
    }
    let rt = &BIG_RT;
    let stack = filament::Stack::host(1 << 30).expect("a 1 GiB stack");
    let h = rt.spawn_named("big", stack, |_| filament_gdb_big_stack_marker(41)).expect("spawn");
    rt.run().expect("run");
    assert_eq!(rt.take(h).ok(), Some(42));
}

/// The runtime of [`big_stack_debuggee`]: a named static, so gdb finds it in
/// optimised builds too (the frames of the marker's callers are optimised out
/// in release).
#[cfg(feature = "std")]
static BIG_RT: filament::Runtime<'static, 2> = filament::Runtime::new();

/// The breakpoint target of [`big_stack_debuggee`].
#[inline(never)]
#[unsafe(no_mangle)]
pub extern "C" fn filament_gdb_big_stack_marker(step: u64) -> u64 {
    std::hint::black_box(step) + 1
}

/// `info fibers` on a fiber with a 1 GiB painted stack. The high-water scan
/// used to read the whole stack in one piece and unpack it into 2^27 Python
/// integers (gigabytes, minutes); it reads blocks from the low end up and
/// stops at the first word that is not paint. Checked by the number of reads
/// the helpers count, under a 60 s watchdog and a 4 GiB address-space limit
/// (a guard for the machine, far above what the scan needs).
#[cfg(feature = "std")]
#[test]
#[cfg_attr(
    filament_asan,
    ignore = "measures a 1 GiB stack's high-water mark under an address-space cap ASan's shadow memory cannot fit"
)]
fn gdb_info_fibers_is_fast_on_a_1_gib_stack() {
    if !gdb_available() {
        return;
    }
    if !cfg!(debug_assertions) {
        // The debuggee is this test binary: `info fibers` reads the runtime's
        // types from debug info, which the release profile keeps as line
        // tables only (`debug = 1`). The dev-profile run covers it.
        println!("not applicable: release test binaries carry no type debug info");
        return;
    }
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new("timeout");
    cmd.env("FILAMENT_GDB_DEBUGGEE", "big-stack");
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure only calls setrlimit, which is
        // async-signal-safe, on a struct on its own stack.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: 4 << 30, rlim_max: 4 << 30 };
                if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let commands = [
        "break filament_gdb_big_stack_marker",
        "run",
        "python STATS['memory_reads'] = 0",
        "info fibers gdb::BIG_RT",
        "python print('memory reads:', STATS['memory_reads'])",
        "kill",
    ];
    let args = ["big_stack_debuggee", "--exact", "--nocapture", "--test-threads=1"];
    let t = run_gdb_with(&exe, &args, 60, &commands, cmd);
    println!("{t}");
    let table = section(&t, "info fibers gdb::BIG_RT");
    let rows = parse_info_fibers(table);
    assert_eq!(rows.len(), 1, "one fiber:\n{t}");
    let big = &rows[0];
    assert_eq!((big.name.as_str(), big.state.as_str()), ("big", "Running"), "{t}");
    assert_eq!(big.stack, 1 << 30, "{t}");
    let hw = big.high_water.unwrap_or_else(|| panic!("no high-water mark:\n{t}"));
    assert!(hw > 0 && hw < 1 << 20, "high-water {hw}:\n{t}");
    let reads: u64 = section(&t, "python print('memory reads:', STATS['memory_reads'])")
        .trim()
        .strip_prefix("memory reads: ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no read count:\n{t}"));
    // Word by word would be 2^27 reads; 64 KiB blocks 16 384; the helpers
    // grow the block up to 4 MiB: a few hundred.
    assert!(reads <= 1024, "{reads} memory reads for one table:\n{t}");
}
