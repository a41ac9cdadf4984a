//! Link arguments: no C runtime start files, no libc, a static non-PIE executable.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        // rustc passes `-pie` for this target; the later `-no-pie` wins, so the kernel's
        // ELF loader maps the image at its link address and no relocations are needed
        // (there is no dynamic loader or libc to apply them).
        "-no-pie",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bin=filament-freestanding={arg}");
    }
}
