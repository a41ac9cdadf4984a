//! The IDT, the interrupt entry stubs and their Rust halves.
//!
//! Every gate names an IST slot (see [`crate::gdt`]): the CPU switches to a dedicated stack
//! before pushing the interrupt frame, so a fiber's red zone is never overwritten.
//!
//! * vectors 0..31 (CPU exceptions): fatal; print the frame and exit QEMU with
//!   [`ExitCode::Exception`]. #DF has its own IST stack.
//! * vector 0x20 (IRQ 0, PIT): counts a tick in [`TICKS`] and acknowledges the PIC.
//! * vector 0x24 (IRQ 4, COM1): moves every received byte into the demo's `IrqQueue`
//!   ([`crate::on_serial_byte`]) and acknowledges the PIC.
//! * vector 0x27 (IRQ 7): the 8259's spurious interrupt; ignored.
//! * vector 0x30 ([`SOFT_VECTOR`]): a software interrupt (`int 0x30`, see
//!   [`crate::arch::raise_soft_interrupt`]) whose handler raises a signal; the demo uses it
//!   to deliver an interrupt at an exact point (phase 5).

use crate::StaticCell;
use crate::exit::{ExitCode, exit_qemu};
use crate::gdt::{self, DescriptorTablePointer, IST_DOUBLE_FAULT, IST_EXCEPTION, IST_IRQ, KERNEL_CS};
use crate::{kprintln, pic};
use core::arch::{asm, global_asm};
use core::mem::size_of;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Timer interrupts taken since boot.
pub static TICKS: AtomicU64 = AtomicU64::new(0);
/// Timer interrupts whose handler found itself on the IRQ IST stack (should equal TICKS).
pub static TICKS_ON_IST: AtomicU64 = AtomicU64::new(0);
/// Set when a timer interrupt ran on any other stack.
pub static TICK_OFF_IST: AtomicBool = AtomicBool::new(false);

/// COM1 receive interrupts taken since boot.
pub static SERIAL_INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// COM1 receive interrupts whose handler found itself on the IRQ IST stack.
pub static SERIAL_ON_IST: AtomicU64 = AtomicU64::new(0);

/// COM1's IRQ line on the master PIC.
pub const COM1_IRQ: u8 = 4;

/// Vector of the software interrupt (above the remapped PIC range 0x20..0x2f).
pub const SOFT_VECTOR: u8 = 0x30;
/// Software interrupts taken since boot.
pub static SOFT_INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// Software interrupts whose handler found itself on the IRQ IST stack.
pub static SOFT_ON_IST: AtomicU64 = AtomicU64::new(0);

global_asm!(
    r#"
    .text                           # the stubs are code

    # Exception stubs. The CPU has switched to the IST stack and pushed ss, rsp, rflags,
    # cs, rip and, for some vectors, an error code. Make the layout uniform:
    # [vector][error code][rip][cs][rflags][rsp][ss], then hand it to Rust (never returns).
    .macro fk_exc_noerr vec             # stub for a vector without error code
    .globl fk_exc_\vec                 # referenced from fk_exc_table
fk_exc_\vec:
    pushq $0                        # dummy error code
    pushq $\vec                     # vector number
    jmp fk_exc_common               # shared tail
    .endm                           # end of fk_exc_noerr

    .macro fk_exc_err vec               # stub for a vector with a CPU-pushed error code
    .globl fk_exc_\vec                 # referenced from fk_exc_table
fk_exc_\vec:
    pushq $\vec                     # vector number (the CPU pushed the error code)
    jmp fk_exc_common               # shared tail
    .endm                           # end of fk_exc_err

    fk_exc_noerr 0                  # stub for vector 0: #DE divide error
    fk_exc_noerr 1                  # stub for vector 1: #DB debug
    fk_exc_noerr 2                  # stub for vector 2: NMI
    fk_exc_noerr 3                  # stub for vector 3: #BP breakpoint
    fk_exc_noerr 4                  # stub for vector 4: #OF overflow
    fk_exc_noerr 5                  # stub for vector 5: #BR bound range
    fk_exc_noerr 6                  # stub for vector 6: #UD invalid opcode
    fk_exc_noerr 7                  # stub for vector 7: #NM device not available
    fk_exc_err 8                    # stub for vector 8: #DF double fault (error code 0)
    fk_exc_noerr 9                  # stub for vector 9: coprocessor segment overrun
    fk_exc_err 10                   # stub for vector 10: #TS invalid TSS
    fk_exc_err 11                   # stub for vector 11: #NP segment not present
    fk_exc_err 12                   # stub for vector 12: #SS stack fault
    fk_exc_err 13                   # stub for vector 13: #GP general protection
    fk_exc_err 14                   # stub for vector 14: #PF page fault
    fk_exc_noerr 15                 # stub for vector 15: reserved
    fk_exc_noerr 16                 # stub for vector 16: #MF x87 error
    fk_exc_err 17                   # stub for vector 17: #AC alignment check
    fk_exc_noerr 18                 # stub for vector 18: #MC machine check
    fk_exc_noerr 19                 # stub for vector 19: #XM SIMD exception
    fk_exc_noerr 20                 # stub for vector 20: #VE virtualization
    fk_exc_err 21                   # stub for vector 21: #CP control protection
    fk_exc_noerr 22                 # stub for vector 22: reserved
    fk_exc_noerr 23                 # stub for vector 23: reserved
    fk_exc_noerr 24                 # stub for vector 24: reserved
    fk_exc_noerr 25                 # stub for vector 25: reserved
    fk_exc_noerr 26                 # stub for vector 26: reserved
    fk_exc_noerr 27                 # stub for vector 27: reserved
    fk_exc_noerr 28                 # stub for vector 28: reserved
    fk_exc_err 29                   # stub for vector 29: reserved
    fk_exc_err 30                   # stub for vector 30: reserved
    fk_exc_noerr 31                 # stub for vector 31: reserved

fk_exc_common:
    cld                             # the ABI requires DF = 0 on calls
    mov %rsp, %rdi                  # arg 0: pointer to the uniform frame
    and $-16, %rsp                  # align the stack for the call (ABI)
    call fk_exception               # Rust; prints and exits QEMU, never returns
    ud2                             # unreachable

    # Interrupt stubs (IRQ 0 from the PIT, the software interrupt). They run on the IRQ IST
    # stack with interrupts off (interrupt gates). Each saves every register a SysV call may
    # clobber, including the SSE state (the Rust handler may use xmm registers and the
    # interrupted fiber certainly does), calls its Rust half with the stub's stack pointer
    # (to check it is the IST) and returns with iretq.
    .macro fk_irq_stub name, handler     # stub \name calling the Rust function \handler
    .globl \name                    # referenced by idt::init
\name:
    push %rbp                       # frame pointer of the stub
    mov %rsp, %rbp                  # rbp = stub frame (on the IST stack)
    push %rax                       # caller-saved registers ...
    push %rcx                       #
    push %rdx                       #
    push %rsi                       #
    push %rdi                       #
    push %r8                        #
    push %r9                        #
    push %r10                       #
    push %r11                       # ... all nine of them
    and $-16, %rsp                  # fxsave needs a 16-byte aligned area
    sub $512, %rsp                  # room for the FXSAVE image (x87, MXCSR, xmm0..15)
    fxsave64 (%rsp)                 # save the interrupted SSE/x87 state
    cld                             # DF = 0 for Rust code
    mov %rbp, %rdi                  # arg 0: current stack pointer (to check it is the IST)
    call \handler                   # Rust half
    fxrstor64 (%rsp)                # restore the SSE/x87 state
    lea -72(%rbp), %rsp             # back to the saved registers
    pop %r11                        # restore in reverse order ...
    pop %r10                        #
    pop %r9                         #
    pop %r8                         #
    pop %rdi                        #
    pop %rsi                        #
    pop %rdx                        #
    pop %rcx                        #
    pop %rax                        # ... done
    pop %rbp                        # the interrupted rbp
    iretq                           # back to the interrupted code (restores IF, rsp, ss)
    .endm                           # end of fk_irq_stub

    fk_irq_stub fk_irq_timer, fk_timer_interrupt  # IRQ 0: count the tick, EOI
    fk_irq_stub fk_irq_soft, fk_soft_interrupt    # int 0x30: raise the demo's signal
    fk_irq_stub fk_irq_com1, fk_com1_interrupt    # IRQ 4: received bytes into the queue, EOI

    # IRQ 7: the 8259 raises it spuriously when an IRQ vanishes before it is acknowledged.
    # A real IRQ 7 cannot happen (masked), so the handler touches nothing and returns.
    .globl fk_irq_spurious          # referenced by idt::init
fk_irq_spurious:
    iretq                           # no EOI for a spurious IRQ 7

    .section .rodata.fk_exc_table, "a", @progbits  # read-only data
    .p2align 3                      # table of 64-bit addresses
    .globl fk_exc_table             # read by idt::init
fk_exc_table:
    .irp vec, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31  # each vector
    .quad fk_exc_\vec               # stub address for this vector
    .endr                           # end of the repetition
    .text                           # back to code for whatever follows
"#,
    options(att_syntax)
);

unsafe extern "C" {
    /// The 32 exception stub addresses (defined above).
    static fk_exc_table: [u64; 32];
    fn fk_irq_timer();
    fn fk_irq_soft();
    fn fk_irq_com1();
    fn fk_irq_spurious();
}

/// The uniform frame built by the exception stubs.
#[repr(C)]
#[derive(Debug)]
struct ExceptionFrame {
    vector: u64,
    error_code: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

const EXCEPTION_NAMES: [&str; 21] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor segment overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD exception",
    "#VE virtualization",
];

#[unsafe(no_mangle)]
extern "C" fn fk_exception(frame: &ExceptionFrame) -> ! {
    let name = EXCEPTION_NAMES.get(frame.vector as usize).copied().unwrap_or("exception");
    let cr2: u64;
    // SAFETY: reading CR2 (the faulting address of the last #PF) has no side effects.
    unsafe {
        asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags)); // fault address
    }
    kprintln!(
        "FATAL: CPU exception {} ({name}) error={:#x} rip={:#x} rsp={:#x} rflags={:#x} cr2={cr2:#x}",
        frame.vector,
        frame.error_code,
        frame.rip,
        frame.rsp,
        frame.rflags
    );
    exit_qemu(ExitCode::Exception)
}

#[unsafe(no_mangle)]
extern "C" fn fk_timer_interrupt(stack_pointer: u64) {
    let (low, high) = gdt::ist_stack_range(IST_IRQ);
    if (low..high).contains(&stack_pointer) {
        TICKS_ON_IST.fetch_add(1, Ordering::Relaxed);
    } else {
        TICK_OFF_IST.store(true, Ordering::Relaxed);
    }
    // Release: whoever observes the new count also observes everything before it.
    TICKS.fetch_add(1, Ordering::Release);
    crate::on_timer_tick();
    pic::end_of_interrupt_master();
}

#[unsafe(no_mangle)]
extern "C" fn fk_soft_interrupt(stack_pointer: u64) {
    let (low, high) = gdt::ist_stack_range(IST_IRQ);
    if (low..high).contains(&stack_pointer) {
        SOFT_ON_IST.fetch_add(1, Ordering::Relaxed);
    }
    SOFT_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    crate::on_soft_interrupt();
}

#[unsafe(no_mangle)]
extern "C" fn fk_com1_interrupt(stack_pointer: u64) {
    let (low, high) = gdt::ist_stack_range(IST_IRQ);
    if (low..high).contains(&stack_pointer) {
        SERIAL_ON_IST.fetch_add(1, Ordering::Relaxed);
    }
    SERIAL_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    // Until the receive buffer is empty: that also clears the UART's interrupt condition.
    // A byte arriving after the last look raises the line again (a new edge for the PIC).
    while let Some(byte) = crate::serial::try_read_byte() {
        crate::on_serial_byte(byte);
    }
    pic::end_of_interrupt_master();
}

/// One 16-byte IDT gate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    _zero: u32,
}

impl Gate {
    const MISSING: Gate =
        Gate { offset_low: 0, selector: 0, ist: 0, type_attr: 0, offset_mid: 0, offset_high: 0, _zero: 0 };

    /// A present ring-0 interrupt gate (IF cleared on entry) using IST slot `ist`.
    fn interrupt(handler: u64, ist: u8) -> Gate {
        Gate {
            offset_low: handler as u16,
            selector: KERNEL_CS,
            ist,
            type_attr: 0x8e, // present, DPL 0, 64-bit interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_high: (handler >> 32) as u32,
            _zero: 0,
        }
    }
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: StaticCell<Idt> = StaticCell::new(Idt([Gate::MISSING; 256]));

/// Fills and loads the IDT. Must run once, after [`gdt::init`], with interrupts disabled.
pub fn init() {
    let idt = IDT.get();
    // SAFETY: single-threaded boot with interrupts off; the CPU reads the IDT only after
    // lidt below, and nothing else references it. fk_exc_table is immutable data.
    unsafe {
        for (vector, &stub) in fk_exc_table.iter().enumerate() {
            let ist = if vector == 8 { IST_DOUBLE_FAULT } else { IST_EXCEPTION };
            (*idt).0[vector] = Gate::interrupt(stub, ist);
        }
        (*idt).0[usize::from(pic::MASTER_OFFSET)] = Gate::interrupt(fk_irq_timer as *const () as u64, IST_IRQ);
        (*idt).0[usize::from(pic::MASTER_OFFSET) + 7] = Gate::interrupt(fk_irq_spurious as *const () as u64, IST_IRQ);
        (*idt).0[usize::from(SOFT_VECTOR)] = Gate::interrupt(fk_irq_soft as *const () as u64, IST_IRQ);
        (*idt).0[usize::from(pic::MASTER_OFFSET) + usize::from(COM1_IRQ)] =
            Gate::interrupt(fk_irq_com1 as *const () as u64, IST_IRQ);
    }
    let pointer = DescriptorTablePointer { limit: (size_of::<Idt>() - 1) as u16, base: idt as u64 };
    // SAFETY: the IDT is 'static and every present gate points to a stub above with a valid
    // code selector and IST slot (installed by gdt::init).
    unsafe {
        asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)); // load IDTR
    }
}
