//! The compile-fail claims of the documentation, each checked against the error
//! the compiler must give (`tests/ui/*.rs` with their pinned `*.stderr`), not just
//! "some error": a typo in a `compile_fail` doctest passes too.
//!
//! Compiler messages change between releases, so the `.stderr` files hold the
//! output of the pinned toolchain ([`PINNED_RUSTC`], as in `rust-toolchain.toml`);
//! with another compiler the test prints a SKIPPED line and passes, unless
//! `FILAMENT_REQUIRE_TOOLS=1` (CI): then a skip is a failure, except in a run
//! that names why it checks another compiler in `FILAMENT_UI_OTHER_RUSTC` (CI's
//! nightly AddressSanitizer run; the stable run before it checks these files).
//! Regenerate after a toolchain bump with
//! `TRYBUILD=overwrite cargo test --test ui`, then read the new files.

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The toolchain the `.stderr` files were produced with.
const PINNED_RUSTC: &str = "1.95.0";

/// The version of the `rustc` beside the `cargo` that built this test (the one
/// trybuild's nested `cargo` runs), e.g. `1.95.0`.
fn rustc_version() -> Option<String> {
    let beside_cargo = Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = if beside_cargo.exists() { beside_cargo.into_os_string() } else { "rustc".into() };
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace().nth(1).map(str::to_owned)
}

#[test]
fn compile_fail_claims() {
    let version = rustc_version();
    if version.as_deref() != Some(PINNED_RUSTC) {
        let message = format!("tests/ui expects rustc {PINNED_RUSTC}, found {version:?}");
        let why = std::env::var("FILAMENT_UI_OTHER_RUSTC").unwrap_or_default();
        if std::env::var("FILAMENT_REQUIRE_TOOLS").as_deref() == Ok("1") && why.is_empty() {
            panic!("{message} (FILAMENT_REQUIRE_TOOLS=1 makes this an error; set FILAMENT_UI_OTHER_RUSTC to why)");
        }
        let _ = writeln!(std::io::stderr(), "\n**********\nSKIPPED: {message}; {why}\n**********\n");
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
