//! Link arguments for the bootable image: no C runtime, no libc, a static non-PIE ELF
//! laid out by `linker.ld` at 1 MiB (where QEMU's PVH loader puts it).

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=build.rs");
    let script = format!("-Wl,-T,{dir}/linker.ld");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        // rustc passes `-pie` for this target; the later `-no-pie` wins.
        "-no-pie",
        // A build-id note would be a second PT_NOTE entry; keep the image minimal.
        "-Wl,--build-id=none",
        // Keep file offsets congruent to addresses at 4 KiB instead of 2 MiB padding.
        "-Wl,-z,max-page-size=0x1000",
        &script,
    ] {
        println!("cargo:rustc-link-arg-bin=filament-kernel={arg}");
    }
}
