//! Empty on purpose: this workspace member exists for its dependency on `filament` with
//! the `std`, `trace` and `explore` features (see `Cargo.toml`), so that
//! `cargo test --workspace` runs every test and example of the root crate.

#![no_std]
