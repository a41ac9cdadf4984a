//! filament *without* its `std` feature inside an ordinary std program (the
//! default `filament = "0.1"` in a host test): a panic in a fiber cannot be
//! caught, and the program must say so — and what to do — instead of a bare
//! "panic in a function that cannot unwind" abort.
//!
//! Builds a tiny scratch crate (a nested `cargo build` in this test's own
//! scratch directory, offline, with this workspace's lock file) that depends
//! on filament with default features, runs it, and reads its stderr.

use std::path::Path;
use std::process::Command;

#[test]
fn a_panic_without_std_names_the_fiber_and_the_fix() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("nostd_host");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"nostd-host\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nfilament = {{ path = {:?} }}\n\n[workspace]\n",
            root.display().to_string()
        ),
    )
    .unwrap();
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    std::fs::copy(root.join("rust-toolchain.toml"), dir.join("rust-toolchain.toml")).unwrap();
    std::fs::write(
        dir.join("src/main.rs"),
        r#"
use filament::{Runtime, StaticStack};
static STACK: StaticStack<65536> = StaticStack::new();
static RT: Runtime<'static, 1> = Runtime::new();
fn main() {
    RT.spawn_named("boom", STACK.claim().unwrap(), |_| -> u32 { panic!("fiber code failed") }).unwrap();
    let _ = RT.run();
    println!("UNREACHABLE");
}
"#,
    )
    .unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = Command::new(&cargo)
        .args(["build", "--quiet", "--offline", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(dir.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    assert!(build.status.success(), "scratch build failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let run = Command::new(dir.join("target/debug/nostd-host")).output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(!String::from_utf8_lossy(&run.stdout).contains("UNREACHABLE"));
    assert!(stderr.contains("fiber #0.0 \"boom\" panicked"), "{stderr}");
    assert!(stderr.contains("features = [\"std\"]"), "{stderr}");
}
