//! Every register the System V ABI makes callee-saved survives a yield: rbx,
//! rbp, r12–r15 (the RegTest idea), and the MXCSR / x87 control words per fiber.

use std::arch::asm;

use filament::{Fiber, Runtime, Stack};

/// Called from assembly with all callee-saved registers holding patterns.
extern "C" fn yield_from_asm(fib: *const Fiber<'static>) {
    // SAFETY: the asm below passes the `&Fiber` it was given; it is live.
    unsafe { (*fib).yield_now() }
}

/// Loads per-fiber patterns into rbx, rbp, r12–r15, yields through a plain
/// function call, and counts the registers that came back changed.
#[inline(never)]
fn yield_with_patterns(fib: &Fiber<'static>, pattern: u64) -> u64 {
    let errors: u64;
    // SAFETY: rbx/rbp are saved and restored around the block by hand; r12–r15
    // and every caller-saved register are declared clobbered; the stack stays
    // 16-byte aligned at the call (4 pushes of 8 bytes on an aligned rsp).
    unsafe {
        asm!(
            "push rbx",
            "push rbp",
            "push rax",           // pattern
            "push rdi",           // fiber handle
            "mov rbx, rax",
            "lea rbp, [rax + 1]",
            "lea r12, [rax + 2]",
            "lea r13, [rax + 3]",
            "lea r14, [rax + 4]",
            "lea r15, [rax + 5]",
            "mov rdi, [rsp]",
            "call {f}",
            "mov rax, [rsp + 8]", // pattern again
            "xor ecx, ecx",
            "cmp rbx, rax",
            "je 2f",
            "inc rcx",
            "2:",
            "lea rdx, [rax + 1]",
            "cmp rbp, rdx",
            "je 3f",
            "inc rcx",
            "3:",
            "lea rdx, [rax + 2]",
            "cmp r12, rdx",
            "je 4f",
            "inc rcx",
            "4:",
            "lea rdx, [rax + 3]",
            "cmp r13, rdx",
            "je 5f",
            "inc rcx",
            "5:",
            "lea rdx, [rax + 4]",
            "cmp r14, rdx",
            "je 6f",
            "inc rcx",
            "6:",
            "lea rdx, [rax + 5]",
            "cmp r15, rdx",
            "je 7f",
            "inc rcx",
            "7:",
            "add rsp, 16",
            "pop rbp",
            "pop rbx",
            f = sym yield_from_asm,
            in("rax") pattern,
            in("rdi") fib as *const Fiber<'static>,
            lateout("rcx") errors,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("C"),
        );
    }
    errors
}

#[test]
fn callee_saved_registers_survive_yields() {
    let rt = Box::new(Runtime::<'static, 8>::new());
    let mut handles = Vec::new();
    for f in 0..6u64 {
        handles.push(
            rt.spawn(Stack::host(64 * 1024).unwrap(), move |fib| {
                let mut errors = 0;
                for i in 0..5_000u64 {
                    errors += yield_with_patterns(fib, (f << 48) | (i << 8));
                }
                errors
            })
            .unwrap(),
        );
    }
    rt.run().unwrap();
    for h in handles {
        assert_eq!(rt.take(h).unwrap(), 0, "a callee-saved register changed across a yield");
    }
}

/// FP control state per fiber (not in `no-fp-control` builds, which share it by design).
#[cfg(not(feature = "no-fp-control"))]
mod fp_control {
    use std::arch::asm;

    use filament::{FpControl, Runtime, Stack};

    fn mxcsr() -> u32 {
        let mut v: u32 = 0;
        // SAFETY: stmxcsr writes 4 bytes to the given address.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack)) };
        v
    }

    fn set_mxcsr(v: u32) {
        // SAFETY: loads a valid MXCSR value (reserved bits clear).
        unsafe { asm!("ldmxcsr [{}]", in(reg) &v, options(nostack)) };
    }

    fn fpcw() -> u16 {
        let mut v: u16 = 0;
        // SAFETY: fnstcw writes 2 bytes to the given address.
        unsafe { asm!("fnstcw [{}]", in(reg) &mut v, options(nostack)) };
        v
    }

    fn set_fpcw(v: u16) {
        // SAFETY: loads a valid x87 control word.
        unsafe { asm!("fldcw [{}]", in(reg) &v, options(nostack)) };
    }

    const MXCSR_DEFAULT: u32 = 0x1F80;
    const FPCW_DEFAULT: u16 = 0x037F;
    const ROUNDING_MASK: u32 = 0x6000;

    #[test]
    fn fp_control_is_kept_per_fiber() {
        let host_mxcsr = mxcsr() & !0x3F;
        let host_fpcw = fpcw();
        let rt = Box::new(Runtime::<'static, 8>::new());
        // rounding: nearest (00, the shared default: this fiber declares nothing),
        // down (01), up (10), toward zero (11); x87 precision differs too.
        let modes = [(0u32, 0x037Fu16), (1, 0x027F), (2, 0x007F), (3, 0x0F7F)];
        let mut handles = Vec::new();
        for (rc, cw) in modes {
            handles.push(
                rt.spawn(Stack::host(64 * 1024).unwrap(), move |fib| {
                    // A fresh fiber starts with the ABI defaults.
                    let start = (mxcsr() & !0x3F, fpcw());
                    let mine = (MXCSR_DEFAULT & !ROUNDING_MASK) | (rc << 13);
                    if rc != 0 {
                        // Declare an own FP state, then change it with raw
                        // instructions: the changes stay private to this fiber.
                        // SAFETY: the float code below is written for the
                        // modes it sets and checks (it compares run-time
                        // results across rounding modes on purpose).
                        unsafe { fib.set_fp_control(FpControl::DEFAULT) };
                        set_mxcsr(mine);
                        set_fpcw(cw);
                    }
                    let mut bad = 0;
                    let mut q = 0.0f64;
                    for i in 0..2_000 {
                        fib.yield_now();
                        if mxcsr() & !0x3F != mine || fpcw() != cw {
                            bad += 1;
                        }
                        // Rounding really applies: 1/3 rounded up > rounded down.
                        q = std::hint::black_box(1.0f64 + i as f64) / std::hint::black_box(3.0);
                    }
                    // Exit with the modified state: the runtime restores the
                    // shared state for whoever runs next.
                    (start, bad, q.to_bits())
                })
                .unwrap(),
            );
        }
        rt.run().unwrap();
        let results: Vec<_> = handles.into_iter().map(|h| rt.take(h).unwrap()).collect();
        for (start, bad, _) in &results {
            assert_eq!(*start, (MXCSR_DEFAULT, FPCW_DEFAULT));
            assert_eq!(*bad, 0, "a fiber saw another fiber's FP control");
        }
        // 2000/3 rounded: down and toward zero agree, up is one ulp above, nearest
        // matches one of them.
        let (down, up, zero) = (results[1].2, results[2].2, results[3].2);
        assert_eq!(down, zero);
        assert_eq!(up, down + 1);
        // The host context got its own modes back.
        assert_eq!((mxcsr() & !0x3F, fpcw()), (host_mxcsr, host_fpcw));
    }
}

#[cfg(feature = "no-fp-control")]
#[test]
fn fp_control_not_kept_with_no_fp_control() {
    eprintln!("NOTE: built with no-fp-control: FP control words are shared by all fibers by design");
}
