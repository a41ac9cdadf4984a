//! `filament::host::run_in_child` never reports success for a scenario that
//! did not run: a wrong test name, an `#[ignore]`d test run with `--ignored`,
//! an inherited `FILAMENT_CHILD_SCENARIO` variable, two scenarios under one
//! test name.
//!
//! Several tests here re-run this test binary themselves (`helper`) to put a
//! test in the situation the defect needs (run with `--ignored`, started with
//! the variable already set) and check that it passes there.

use std::panic::{self, AssertUnwindSafe};
use std::process::{Command, Output, Stdio};

use filament::host::run_in_child;

/// The variable `run_in_child` passes to its child.
const ENV: &str = "FILAMENT_CHILD_SCENARIO";

/// Runs this test binary on exactly one test, with `extra` arguments and
/// environment variables.
fn helper(test: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary");
    let mut cmd = Command::new(exe);
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]).args(extra).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("re-run the test binary")
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The message of a panic payload.
fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

mod named {
    use super::*;

    /// The harness calls this test `named::without_module_path`; the name
    /// below misses the module path, so the child runs no test at all. That
    /// used to come back as a clean exit 0, a "pass" of a scenario that
    /// never ran.
    #[test]
    fn without_module_path() {
        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
            run_in_child("without_module_path", || println!("SCENARIO-RAN"));
        }));
        let payload = caught.expect_err("run_in_child accepted a child that ran no scenario");
        let msg = message(&*payload);
        assert!(msg.contains("`without_module_path`"), "the message names the test it tried: {msg}");
        assert!(msg.contains("never started the scenario"), "{msg}");
    }

    /// The full name works.
    #[test]
    fn with_module_path() {
        let out = run_in_child("named::with_module_path", || println!("SCENARIO-RAN"));
        assert!(out.success() && out.stdout.contains("SCENARIO-RAN"), "{out:?}");
    }
}

/// Run by [`an_ignored_test_runs_its_scenario_under_ignored`] with
/// `--ignored`: the child must run this ignored test too.
#[test]
#[ignore = "run by an_ignored_test_runs_its_scenario_under_ignored"]
fn ignored_scenario_helper() {
    let out = run_in_child("ignored_scenario_helper", || std::process::exit(3));
    assert_eq!(out.code, Some(3), "the scenario did not run in the child: {out:?}");
    println!("IGNORED-HELPER-DONE");
}

/// An `#[ignore]`d test run with `--ignored` used to start its child without
/// `--ignored`: the child ran nothing and exited 0.
#[test]
fn an_ignored_test_runs_its_scenario_under_ignored() {
    let out = helper("ignored_scenario_helper", &["--ignored"], &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("IGNORED-HELPER-DONE") && t.contains("1 passed"), "{t}");
}

/// Run by [`an_inherited_variable_does_not_hijack_a_test`] with the
/// variable already set.
#[test]
fn inherited_env_helper() {
    let out = run_in_child("inherited_env_helper", || println!("SCENARIO-RAN"));
    assert!(out.success() && out.stdout.contains("SCENARIO-RAN"), "{out:?}");
    println!("INHERITED-HELPER-DONE");
}

/// A `FILAMENT_CHILD_SCENARIO` inherited from the environment used to make
/// the test run its scenario in-process and `exit(0)` the whole test binary:
/// the test's own assertions never ran and the binary reported success.
#[test]
fn an_inherited_variable_does_not_hijack_a_test() {
    for value in ["inherited_env_helper", "1:0000000000000000:inherited_env_helper"] {
        let out = helper("inherited_env_helper", &[], &[(ENV, value)]);
        let t = text(&out);
        assert!(out.status.success(), "{ENV}={value}: {t}");
        assert!(t.contains("INHERITED-HELPER-DONE") && t.contains("1 passed"), "{ENV}={value}: {t}");
    }
}

/// A scenario's own child processes inherit the variable: one of them
/// running the same test must not take it as its own order to run the
/// scenario. The scenario below re-runs this very test with
/// `FILAMENT_TEST_GRANDCHILD=1`; there, `run_in_child` has to act as a
/// parent again (and print `GRANDCHILD-WAS-A-PARENT`), not run the scenario
/// in-process and exit.
#[test]
fn a_scenario_child_does_not_pass_the_variable_on() {
    let grandchild = std::env::var_os("FILAMENT_TEST_GRANDCHILD").is_some();
    let out = run_in_child("a_scenario_child_does_not_pass_the_variable_on", || {
        if grandchild {
            println!("GRANDCHILD-SCENARIO");
            return;
        }
        let out = helper("a_scenario_child_does_not_pass_the_variable_on", &[], &[("FILAMENT_TEST_GRANDCHILD", "1")]);
        print!("{}", text(&out));
    });
    if grandchild {
        assert!(out.stdout.contains("GRANDCHILD-SCENARIO"), "{out:?}");
        println!("GRANDCHILD-WAS-A-PARENT");
        return;
    }
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("GRANDCHILD-WAS-A-PARENT"), "the grandchild was hijacked: {out:?}");
    assert!(out.stdout.contains("1 passed"), "{out:?}");
}

/// Two scenarios under one test name: the child always reaches the first
/// one, so the second call used to return the first scenario's output.
#[test]
fn two_scenarios_under_one_name_are_an_error() {
    let first = run_in_child("two_scenarios_under_one_name_are_an_error", || println!("FIRST"));
    assert!(first.stdout.contains("FIRST"), "{first:?}");
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        run_in_child("two_scenarios_under_one_name_are_an_error", || println!("SECOND"))
    }));
    let payload = caught.expect_err("the second call came back with the first scenario's output");
    let msg = message(&*payload);
    assert!(msg.contains("a different scenario"), "{msg}");
}

/// The scenario's output reaches the parent without the start marker, and a
/// signal that kills the child after the scenario started is reported.
#[test]
fn output_and_signals_come_back() {
    let out = run_in_child("output_and_signals_come_back", || {
        println!("OUT-LINE");
        eprintln!("ERR-LINE");
        // SAFETY: raising a signal in this (child) process; its default action ends it.
        unsafe { libc::raise(libc::SIGABRT) };
    });
    assert_eq!(out.signal, Some(libc::SIGABRT), "{out:?}");
    assert!(out.stdout.contains("OUT-LINE") && out.stderr.contains("ERR-LINE"), "{out:?}");
    assert!(!out.stdout.contains("filament-run-in-child"), "the marker line is not the scenario's output: {out:?}");
}
