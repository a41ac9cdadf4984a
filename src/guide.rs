//! Bare metal, step by step: filament in your own hobby-OS kernel or in a freestanding
//! binary without libc.
//!
//! This module holds documentation only. Every step is something the two
//! demos in the repository do: `kernel/` boots in QEMU and `freestanding/` is a static Linux
//! executable. `cargo test --test baremetal` builds both, boots the kernel and checks what
//! they print. File names below are paths in the repository.
//!
//! 1. [Pick a target](#1-pick-a-target)
//! 2. [Cargo: crate layout, `panic = "abort"`, link arguments](#2-cargo-crate-layout-panic--abort-link-arguments)
//! 3. [Memory functions: feature `mem`](#3-memory-functions-feature-mem)
//! 4. [Boot: long mode, then SSE on](#4-boot-long-mode-then-sse-on)
//! 5. [Stacks and the runtime in `static`s](#5-stacks-and-the-runtime-in-statics)
//! 6. [Interrupts: an IDT whose gates all use IST stacks](#6-interrupts-an-idt-whose-gates-all-use-ist-stacks)
//! 7. [The idle hook: halt without losing a wake-up](#7-the-idle-hook-halt-without-losing-a-wake-up)
//! 8. [A freestanding Linux binary](#8-a-freestanding-linux-binary)
//! 9. [Running and debugging in QEMU](#9-running-and-debugging-in-qemu)
//!
//! ## 1. Pick a target
//!
//! | | `x86_64-unknown-linux-gnu` + `-nostdlib` | `x86_64-unknown-none` |
//! |---|---|---|
//! | what it is | the host target, linked without libc or start files | the usual hobby-OS target |
//! | toolchain | stable, nothing to install | stable; `rustup target add x86_64-unknown-none` (ships a precompiled `core` and `alloc`, so no `build-std`) |
//! | floating point | SSE/x87 code everywhere, **`core` included**: enable SSE before any Rust runs | soft-float: no SSE/x87 instructions in generated code |
//! | filament features | none needed | `no-fp-control` (filament then never touches MXCSR or the x87 control word) |
//! | red zone | **used**: every interrupt needs an IST stack | disabled (an IST stack is still right for #DF) |
//! | panic strategy | `core` is built with unwinding: your profile needs `panic = "abort"` and the link needs an (empty) `rust_eh_personality` | abort is the target's default; no personality needed |
//! | `memcpy` & co. | nobody provides them: enable filament's `mem` feature | provided by the target's `compiler_builtins` (built with its `mem` feature): do **not** enable `mem` |
//! | linking | through `cc`; `-Wl,`-prefixed link args | `rust-lld` directly (`-C link-arg=-T<script>`, no `-Wl,`); static PIE by default, whose absolute pointers are only right after relocation processing: use `-C relocation-model=static` unless your loader applies the relocations |
//! | used by | `kernel/`, `freestanding/` (tested here) | not built in this repository |
//!
//! The facts in the `x86_64-unknown-none` column come from that target's specification in
//! rustc (`rustc_target::spec::targets::x86_64_unknown_none`: features
//! `-mmx,-sse,…,+soft-float`, `disable_redzone`, `panic_strategy: Abort`, `rust-lld`,
//! static PIE, code model `kernel`) and from Rust's build system. It builds the shipped
//! standard library of every `no_std` target with `compiler-builtins-mem`. This repository's
//! machines have no such target installed, so that route is not tested here. Code model
//! `kernel` needs every absolute address to fit in a sign-extended 32-bit value, i.e. link
//! the image in the first 2 GiB (`kernel/linker.ld` uses 1 MiB) or the top 2 GiB.
//!
//! A custom target JSON, or `-Zbuild-std` (for example to get `compiler-builtins-mem` on
//! another target), needs a nightly toolchain and the `rust-src` component. Nothing in
//! this guide needs either.
//!
//! The rest of this guide follows the first route (what the demos do) and says what
//! changes on the second.
//!
//! ## 2. Cargo: crate layout, `panic = "abort"`, link arguments
//!
//! **Workspace layout.** The image is a workspace member compiled for the host target.
//! Both demos split it in two:
//! * a library holds all the logic (`kernel/src/lib.rs`), with `test = false,
//!   doctest = false`. The workspace's `cargo clippy --all-targets` then lints it with
//!   the ordinary profile, and it is never linked into a host program;
//! * a thin `#![no_std] #![no_main]` binary (`kernel/src/main.rs`) that only needs
//!   `required-features = ["metal"]`, so that workspace builds skip it:
//!
//! ```toml
//! # kernel/Cargo.toml
//! [lib]
//! test = false
//! doctest = false
//! bench = false
//!
//! [[bin]]
//! name = "filament-kernel"
//! test = false              # or `cargo test --workspace` fails with E0152 (duplicate panic_impl)
//! bench = false
//! required-features = ["metal"]
//!
//! [features]
//! metal = ["filament/mem"]  # the image, and filament's memory functions with it (step 3)
//!
//! [dependencies]
//! filament = { path = ".." }  # default features: none (no `std`)
//! ```
//!
//! **`panic = "abort"` is required.** `core` for `x86_64-unknown-linux-gnu` is precompiled
//! with unwinding, and without `std` there is no unwinder: even `cargo check` of the binary
//! fails with the default `panic = "unwind"`. A package cannot set this for itself
//! (`[profile.*.package.X] panic` is rejected), so the workspace has a profile for
//! bare-metal builds (`Cargo.toml`), which cargo aliases use (`.cargo/config.toml`):
//!
//! ```toml
//! # Cargo.toml (workspace root)
//! [profile.kernel]
//! inherits = "release"
//! panic = "abort"
//!
//! # .cargo/config.toml
//! [alias]
//! kernel = [
//!     "run", "-p", "filament-kernel", "--bin", "filament-kernel",
//!     "--profile", "kernel", "--features", "filament-kernel/metal",
//!     # the runner only for this invocation: a global runner would wrap host tests too
//!     "--config", "target.x86_64-unknown-linux-gnu.runner=\"kernel/run.sh\"",
//! ]
//! ```
//!
//! With the feature on, `cargo clippy --all-features` compiles the binary with the dev
//! profile (unwinding). For that case only, the binary links `std` for its unwinding lang
//! items. Such a build type-checks and is linted, but is never linked into an image:
//!
//! ```ignore
//! // kernel/src/main.rs
//! #![no_std]
//! #![no_main]
//!
//! #[cfg(panic = "unwind")]
//! extern crate std;
//!
//! #[cfg(panic = "abort")]
//! #[panic_handler]
//! fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
//!     filament_kernel::panic(info) // print over serial, exit QEMU
//! }
//! ```
//!
//! On `x86_64-unknown-none` abort is the target's own strategy; setting it in a profile
//! as well does no harm.
//!
//! **Link arguments** go to the binary only, from its `build.rs` (`kernel/build.rs`):
//!
//! ```ignore
//! let script = format!("-Wl,-T,{}/linker.ld", std::env::var("CARGO_MANIFEST_DIR").unwrap());
//! for arg in [
//!     "-nostartfiles", "-nostdlib", "-static",
//!     "-no-pie",                       // rustc passes -pie; the later -no-pie wins
//!     "-Wl,--build-id=none",           // no second PT_NOTE
//!     "-Wl,-z,max-page-size=0x1000",   // 4 KiB file alignment instead of 2 MiB padding
//!     &script,
//! ] {
//!     println!("cargo:rustc-link-arg-bin=filament-kernel={arg}");
//! }
//! ```
//!
//! Both `rust-lld` (rustc's default for this target) and GNU ld link it.
//!
//! **Linker script** (`kernel/linker.ld`): `ENTRY` is the 32-bit entry, and the image
//! starts at 1 MiB. The boot note (PVH: `.note.Xen`) goes in **its own output section**,
//! so that the linker emits a `PT_NOTE` segment for it. Then the 32-bit boot code,
//! `.text`, `.rodata`, `.data` (with `.got`), and `.bss` with start and end symbols for
//! the entry code to zero. `/DISCARD/` drops `.eh_frame` (abort: never unwound).
//!
//! ## 3. Memory functions: feature `mem`
//!
//! `core` calls `memcpy`, `memset`, `memcmp` and `bcmp`, LLVM may emit `memmove`, and
//! `core`'s unwind tables name `rust_eh_personality`. On `x86_64-unknown-linux-gnu` the
//! C library normally provides the first five and `std` the last. With `-nostdlib`
//! nothing does, and this target's precompiled `compiler_builtins` exports none of
//! them. Its `mem` feature cannot be turned on from a stable toolchain: the standard
//! library is precompiled, and the `compiler_builtins` crate uses `#![feature]`. So
//! filament ships them:
//!
//! * feature **`mem`** exports `memcpy`, `memmove`, `memset` (`rep movsb` / `rep stosb`),
//!   `memcmp`, `bcmp` and an empty `rust_eh_personality` under their C names, from the
//!   module `filament::mem` (present only with the feature; `src/mem.rs`). Enabling it
//!   is all you do.
//! * It is refused together with `std` (compile error): libc and `std` define these
//!   symbols already. In a workspace whose host tests use filament with `std`, enable
//!   `mem` only through a feature of the bare-metal crate that host builds never turn on
//!   (`metal = ["filament/mem"]` above). Otherwise Cargo's feature unification turns it
//!   on for the host build too.
//! * Do not enable it on `x86_64-unknown-none`: that target's `compiler_builtins`
//!   already defines the memory functions, and its `core` needs no personality.
//!
//! ## 4. Boot: long mode, then SSE on
//!
//! `kernel/src/boot.s` (via `global_asm!` in `main.rs`) is entered by QEMU's PVH loader in
//! 32-bit protected mode with paging off (`qemu-system-x86_64 -kernel <elf64>` finds the
//! `XEN_ELFNOTE_PHYS32_ENTRY` note). It zeroes `.bss` and identity-maps the first GiB
//! with 2 MiB pages. Then it sets CR4.PAE, loads CR3, sets EFER.LME, sets CR0.PG|PE,
//! loads a GDT with a 64-bit code segment and far-jumps to 64-bit code. There it sets up
//! a 16-byte aligned stack and **enables SSE before calling Rust**. On the host target,
//! `core` and your code use SSE (float formatting, and copies of some types). Without
//! this, the first such instruction raises #UD:
//!
//! ```text
//!     mov %cr0, %rax
//!     and $-5, %rax          # clear CR0.EM: no x87 emulation
//!     or $0x22, %rax         # set CR0.MP and CR0.NE
//!     mov %rax, %cr0
//!     mov %cr4, %rax
//!     or $0x600, %rax        # CR4.OSFXSR | CR4.OSXMMEXCPT: SSE and fxsave usable
//!     mov %rax, %cr4
//!     fninit                 # x87 control word 0x37f
//!     call kernel_main
//! ```
//!
//! On `x86_64-unknown-none` the compiler emits no SSE/x87 code. You may leave SSE off,
//! and filament with `no-fp-control` executes no FP instruction either. (Without
//! `no-fp-control`, `Fiber::set_fp_control` would execute `stmxcsr` and `ldmxcsr`.)
//!
//! ## 5. Stacks and the runtime in `static`s
//!
//! No allocator is needed (`kernel/src/demo.rs`):
//!
//! ```
//! use filament::{Runtime, StaticStack};
//!
//! static STACKS: [StaticStack<16384>; 4] = [const { StaticStack::new() }; 4];
//! static RT: Runtime<'static, 4> = Runtime::new();
//!
//! let stack = STACKS[0].claim().expect("free");
//! let h = RT.spawn_named("worker", stack, |fib| fib.id().index()).unwrap();
//! RT.run().unwrap(); // bare metal: RT.run_with_idle(&mut hook), step 7
//! assert_eq!(RT.take(h).unwrap(), 0);
//! ```
//!
//! `StaticStack` is 64-byte aligned, so fiber frames get the 16-byte alignment the ABI
//! wants: aligned SSE stores to a stack misaligned by 8 fault with #GP. A static stack can
//! be claimed again once its fiber is gone (its result taken, or a detached fiber
//! finished).
//!
//! ## 6. Interrupts: an IDT whose gates all use IST stacks
//!
//! Code for `x86_64-unknown-linux-gnu` keeps locals in the 128-byte **red zone** below
//! `rsp` without moving `rsp`. An interrupt delivered on the interrupted stack pushes its
//! frame right over those locals, so a fiber is corrupted, silently and only sometimes.
//! Hence:
//!
//! * a 64-bit TSS whose Interrupt Stack Table names dedicated stacks, loaded with `ltr`
//!   (`kernel/src/gdt.rs`: IST1 for IRQs, IST2 for exceptions, IST3 for #DF);
//! * **every** IDT gate names an IST slot (`kernel/src/idt.rs`). The CPU then switches
//!   stacks before it pushes anything, and the interrupted stack is never written;
//! * the entry stub saves every caller-saved register **and the SSE state** (`fxsave64`
//!   into a 16-byte aligned area), clears DF, calls the Rust half, restores and `iretq`s.
//!   The handler in Rust may use xmm registers, and the interrupted fiber does;
//! * the 8259 PICs are remapped to 0x20..0x2f and only the lines you handle are unmasked
//!   (`kernel/src/pic.rs`); a timer (`kernel/src/pit.rs`) drives the clock.
//!
//! On `x86_64-unknown-none` the red zone is disabled and the compiler emits no SSE code,
//! so neither the IST nor `fxsave` is needed for that reason. Use an IST stack for #DF
//! anyway (a fault on a broken stack).
//!
//! **In the handler, the filament calls are the `_from_isr` ones:**
//! [`IrqSignal::notify_from_isr`] (count an event), [`IrqNotify::notify_from_isr`]
//! (set bits), [`IrqQueue::try_send_from_isr`] (hand over data; a full queue gives the
//! value back), [`Semaphore::give_from_isr`](crate::sync::Semaphore::give_from_isr) and
//! [`Event::set_from_isr`](crate::sync::Event::set_from_isr). Each updates atomics only,
//! takes no lock and touches no runtime memory; each call's docs say exactly what it
//! does. Everything else takes a [`Fiber`] handle, which a handler
//! does not have. A fiber waits for the signal:
//!
//! ```ignore
//! static TIMER_SIGNAL: IrqSignal = IrqSignal::new();
//!
//! #[unsafe(no_mangle)]
//! extern "C" fn fk_timer_interrupt(_stack_pointer: u64) {   // called by the entry stub
//!     TICKS.fetch_add(1, Ordering::Release);                 // the clock the idle hook reads
//!     TIMER_SIGNAL.notify_from_isr();
//!     pic::end_of_interrupt_master();
//! }
//!
//! // in a fiber:
//! let n = TIMER_SIGNAL.wait(fib)?;   // blocks; returns how many notifications arrived
//! ```
//!
//! Data goes through an [`IrqQueue`]: the demo kernel's COM1 receive handler
//! (`kernel/src/idt.rs`, phase 6 in `kernel/src/demo.rs`) pushes each byte, a fiber
//! echoes whole lines:
//!
//! ```ignore
//! static SERIAL_RX: IrqQueue<u8, 64> = IrqQueue::new().named("com1-rx");
//!
//! extern "C" fn fk_com1_interrupt(_stack_pointer: u64) {
//!     while let Some(byte) = serial::try_read_byte() {    // until the UART is empty
//!         if SERIAL_RX.try_send_from_isr(byte).is_err() { /* full: count a drop */ }
//!     }
//!     pic::end_of_interrupt_master();
//! }
//!
//! // in a fiber:
//! let byte = SERIAL_RX.recv(fib)?;    // blocks (the CPU halts) until a byte arrives
//! ```
//!
//! ## 7. The idle hook: halt without losing a wake-up
//!
//! `RT.run_with_idle(&mut hook)` runs fibers. When none is ready but some sleep or wait
//! on an [`IrqSignal`], the runtime **polls its signals, then calls
//! [`Idle::idle`]**`(now, next_deadline)`, which returns the new tick count. On bare
//! metal the hook halts the CPU until an interrupt. Two things can happen after the
//! runtime last looked, and the hook must not halt if either did:
//!
//! 1. a timer tick: compare your tick counter with `now`;
//! 2. **an interrupt raised a signal after the runtime's poll, before the hook disabled
//!    interrupts.** The tick counter does not show it. If the hook halts, the waiter
//!    stays asleep until the next interrupt, and with a tickless timer and nothing
//!    else pending, forever. [`IrqWatch::raised`] shows it: one atomic load of an epoch
//!    that every `notify_from_isr` bumps.
//!
//! The check and the halt must also be one step with respect to interrupts. Disable
//! interrupts, check, and then `sti; hlt` **back to back**: `sti` takes effect after the
//! next instruction, so an interrupt that arrives after the check is taken *during*
//! `hlt` and ends it. Re-arm the watch as the last thing before returning: the runtime
//! polls its signals right after.
//!
//! ```ignore
//! use core::arch::asm;
//! use filament::{Idle, IrqWatch, Ticks};
//!
//! struct HaltUntilInterrupt {
//!     watch: IrqWatch,
//! }
//!
//! impl Idle for HaltUntilInterrupt {
//!     fn idle(&mut self, now: Ticks, _next_deadline: Option<Ticks>) -> Ticks {
//!         // SAFETY: masking interrupts cannot break memory safety.
//!         unsafe { asm!("cli", options(nomem, nostack)) };
//!         if TICKS.load(Ordering::Acquire) != now || self.watch.raised() {
//!             // SAFETY: the IDT and its IST stacks are set up.
//!             unsafe { asm!("sti", options(nomem, nostack)) };
//!         } else {
//!             // SAFETY: as above; no `nomem`: handlers change memory we read next.
//!             unsafe { asm!("sti", "hlt", options(nostack)) };
//!         }
//!         self.watch.rearm();
//!         TICKS.load(Ordering::Acquire)
//!     }
//! }
//!
//! RT.set_now(TICKS.load(Ordering::Acquire));
//! RT.run_with_idle(&mut HaltUntilInterrupt { watch: IrqWatch::new() })?; // watch armed before the run
//! ```
//!
//! This is `HaltUntilInterrupt` in `kernel/src/demo.rs`. Its phase 5 forces the race.
//! Inside the hook, before the `cli`, it takes a software interrupt (`int 0x30`) whose
//! handler raises a signal. A hook without the watch halts with the signal pending, once,
//! until the next timer tick. The recipe hook does not halt. `tests/baremetal.rs` checks
//! both lines of the QEMU transcript. `tests/idle_race.rs` raises a signal inside a
//! custom hook before its check, and races a notifier thread against the recipe on a
//! modelled `cli`/`sti; hlt`.
//!
//! Notes:
//! * A **tickless** hook arms a one-shot timer for `next_deadline` (if `Some`) before
//!   the check. With `None` only interrupts can wake a fiber: halt (after the check).
//! * `raised()` counts notifications of *every* signal in the program, including
//!   signals this runtime does not wait on. That only causes a spurious return, after
//!   which the runtime polls, finds nothing and idles again. No wake-up is lost.
//! * With several CPUs: a notifier on another CPU must also send this CPU an interrupt
//!   (IPI) to end a halt that has begun. The watch covers only the window before it.
//! * Give the hook a free-running clock (`Idle::now`, returning your tick counter) if
//!   fibers that keep yielding must not delay sleepers. The runtime then reads it at
//!   every yield while timers are armed.
//! * Under `std` the same epoch is the futex word that
//!   `host::HostClock` (feature `std`) sleeps on. That is the same check, done by the
//!   kernel's futex compare.
//!
//! ## 8. A freestanding Linux binary
//!
//! `freestanding/` is a static executable with no libc. It uses the same target as the
//! kernel, the same `panic = "abort"` profile and lib/bin split, and the same `mem`
//! feature. It has no linker script (the linker's default layout) and no interrupts. Its
//! link arguments (`freestanding/build.rs`) are `-nostartfiles -nostdlib -static -no-pie
//! -Wl,--build-id=none`. `file` reports it "statically linked", with no `PT_INTERP` and
//! no `PT_DYNAMIC`. Its own `_start` (`freestanding/src/main.rs`):
//!
//! ```text
//!     .globl _start
//! _start:                     # the kernel starts us with rsp = &argc
//!     xor %ebp, %ebp          # outermost frame
//!     mov %rsp, %rdi          # arg 0: &argc (argv and envp follow)
//!     and $-16, %rsp          # SysV: 16-byte aligned at the call
//!     call freestanding_main  # Rust, never returns (exit_group)
//!     ud2
//! ```
//!
//! Output and exit are raw `syscall`s (`freestanding/src/sys.rs`: `write` = 1,
//! `exit_group` = 231; the instruction clobbers `rcx` and `r11`). Linux has set up SSE,
//! so there is nothing to enable. With no deadlines driven by hardware, plain
//! `Runtime::run` (virtual time) is enough. `cargo freestanding` runs it; it exits
//! with status 42.
//!
//! ## 9. Running and debugging in QEMU
//!
//! ```text
//! apt-get install -y --no-install-recommends qemu-system-x86
//! cargo kernel                    # build (profile kernel) and boot via kernel/run.sh
//! cargo test --test baremetal     # both demos, transcripts, exit statuses, ELF checks
//!
//! qemu-system-x86_64 -accel tcg -machine pc -m 128M -nodefaults -no-reboot \
//!     -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
//!     -kernel target/kernel/filament-kernel
//! ```
//!
//! * Use `-accel tcg`: KVM was not usable on the machines this was measured on.
//! * Writing `v` to port 0xf4 (isa-debug-exit) exits QEMU with status `(v << 1) | 1`;
//!   the kernel writes 0x10 for success (status 33). **A triple fault under
//!   `-no-reboot` exits with status 0, and a hang never exits.** A CI check must
//!   accept exactly one odd status, and must run QEMU under `timeout`.
//! * `-d int,cpu_reset -D qemu.log` logs the faults behind a silent triple fault.
//!   `addr2line -f -C -i -e <image> <rip>` resolves a faulting address the exception
//!   handler printed.
//! * Typical faults: #UD on the first SSE instruction (SSE not enabled, step 4), and
//!   #GP on `movaps`/`movdqa` to the stack (a stack misaligned by 8).
//!
//! [`IrqSignal`]: crate::IrqSignal
//! [`IrqSignal::notify_from_isr`]: crate::IrqSignal::notify_from_isr
//! [`IrqWatch::raised`]: crate::IrqWatch::raised
//! [`Idle::idle`]: crate::Idle::idle
//! [`Fiber`]: crate::Fiber
//! [`IrqNotify::notify_from_isr`]: crate::IrqNotify::notify_from_isr
//! [`IrqQueue::try_send_from_isr`]: crate::IrqQueue::try_send_from_isr
//! [`IrqQueue`]: crate::IrqQueue
