//! The compile-fail claims of the documentation, each checked against the error
//! the compiler must give (`tests/ui/*.rs` with their pinned `*.stderr`), not just
//! "some error": a typo in a `compile_fail` doctest passes too.
//!
//! Compiler messages change between releases, so the `.stderr` files hold the
//! output of the pinned toolchain ([`PINNED_RUSTC`], as in `rust-toolchain.toml`);
//! with another compiler (e.g. the nightly AddressSanitizer run) the test prints a
//! SKIPPED line and passes. Regenerate after a toolchain bump with
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
        let _ = writeln!(
            std::io::stderr(),
            "\n**********\nSKIPPED: tests/ui expects rustc {PINNED_RUSTC}, found {version:?}\n**********\n"
        );
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
