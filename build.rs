//! Tells the crate's own tests whether they are built without optimisation.
//!
//! Tests that measure stack bytes (`tests/core.rs`) need the optimisation
//! level, and `cfg!(debug_assertions)` is no proxy for it: the
//! `unopt-nodebug` profile (CI) is unoptimised without debug assertions.
//! Emits `cfg(filament_unoptimized)` when `OPT_LEVEL` is 0. The library
//! itself never reads it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(filament_unoptimized)");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("OPT_LEVEL").is_ok_and(|level| level == "0") {
        println!("cargo::rustc-cfg=filament_unoptimized");
    }
}
