//! The GDT with a 64-bit TSS whose Interrupt Stack Table gives every interrupt and exception
//! handler its own stack.
//!
//! Why IST: code for `x86_64-unknown-linux-gnu` uses the 128-byte red zone below `rsp`
//! (leaf functions keep locals there without moving `rsp`). Without a stack switch the CPU
//! pushes the interrupt frame right over that red zone and silently corrupts the interrupted
//! fiber. With an IST index in the gate, the CPU loads `rsp` from the TSS *before* pushing
//! anything, so the interrupted stack is never written.

use crate::StaticCell;
use core::arch::asm;
use core::mem::size_of;

/// Kernel code segment selector (same slot as in the boot GDT of `boot.s`).
pub const KERNEL_CS: u16 = 0x08;
/// Kernel data segment selector.
pub const KERNEL_DS: u16 = 0x10;
const TSS_SELECTOR: u16 = 0x18;

/// IST slot (1-based, as written into IDT gates) for hardware interrupts.
pub const IST_IRQ: u8 = 1;
/// IST slot for CPU exceptions other than #DF.
pub const IST_EXCEPTION: u8 = 2;
/// IST slot for double faults (a fault while delivering a fault, e.g. on a broken stack).
pub const IST_DOUBLE_FAULT: u8 = 3;

/// Size of each IST stack.
pub const IST_STACK_SIZE: usize = 16 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

// Written by the CPU when it delivers interrupts, hence StaticCell (not a plain static,
// which could be placed in read-only memory and assumed immutable).
static IST_STACKS: [StaticCell<IstStack>; 3] = [
    StaticCell::new(IstStack([0; IST_STACK_SIZE])),
    StaticCell::new(IstStack([0; IST_STACK_SIZE])),
    StaticCell::new(IstStack([0; IST_STACK_SIZE])),
];

/// Address range `[low, high)` of the stack for IST slot `ist` (1-based).
pub fn ist_stack_range(ist: u8) -> (u64, u64) {
    let low = IST_STACKS[usize::from(ist) - 1].get() as u64;
    (low, low + IST_STACK_SIZE as u64)
}

/// The 64-bit Task State Segment (Intel SDM vol. 3, 8.7). Only `ist` is used: the kernel
/// never leaves ring 0, so `rsp0..2` are never loaded.
#[repr(C, packed(4))]
struct Tss {
    _reserved0: u32,
    rsp: [u64; 3],
    _reserved1: u64,
    ist: [u64; 7],
    _reserved2: u64,
    _reserved3: u16,
    iomap_base: u16,
}

const _: () = assert!(size_of::<Tss>() == 104);

static TSS: StaticCell<Tss> = StaticCell::new(Tss {
    _reserved0: 0,
    rsp: [0; 3],
    _reserved1: 0,
    ist: [0; 7],
    _reserved2: 0,
    _reserved3: 0,
    // Past the segment limit: no I/O permission bitmap (irrelevant in ring 0).
    iomap_base: size_of::<Tss>() as u16,
});

#[repr(C, align(16))]
struct Gdt([u64; 5]);

static GDT: StaticCell<Gdt> = StaticCell::new(Gdt([
    0,                     // null
    0x00AF_9A00_0000_FFFF, // 0x08: 64-bit code, present, DPL 0
    0x00CF_9200_0000_FFFF, // 0x10: data, present, writable, DPL 0
    0,                     // 0x18: TSS descriptor, low half (filled in by init)
    0,                     // 0x20: TSS descriptor, high half
]));

/// Operand of `lgdt`/`lidt`.
#[repr(C, packed(2))]
pub(crate) struct DescriptorTablePointer {
    pub(crate) limit: u16,
    pub(crate) base: u64,
}

/// Installs the GDT with the TSS, reloads every segment register and loads the task register.
///
/// Must run once, during single-threaded boot with interrupts disabled.
pub fn init() {
    let tss = TSS.get();
    // SAFETY: boot is single-threaded with interrupts off and nothing else holds a reference
    // to TSS or GDT yet (the CPU starts reading them only after lgdt/ltr below).
    unsafe {
        for slot in [IST_IRQ, IST_EXCEPTION, IST_DOUBLE_FAULT] {
            // The CPU aligns the loaded rsp down to 16; the top of an aligned stack is aligned.
            (*tss).ist[usize::from(slot) - 1] = ist_stack_range(slot).1;
        }
        let base = tss as u64;
        let limit = (size_of::<Tss>() - 1) as u64;
        let low = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40) // present, DPL 0, type 9 = available 64-bit TSS
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        let gdt = GDT.get();
        (*gdt).0[3] = low;
        (*gdt).0[4] = base >> 32;
    }
    let pointer = DescriptorTablePointer { limit: (size_of::<Gdt>() - 1) as u16, base: GDT.get() as u64 };
    // SAFETY: the GDT is a valid, 'static table whose code/data descriptors match the boot
    // GDT's, so the far return lands in the same flat 64-bit code; the TSS descriptor points
    // to a 'static TSS with valid IST stacks.
    unsafe {
        asm!(
            "lgdt [{ptr}]",       // switch to the new GDT
            "push {cs}",          // far-return frame: code selector ...
            "lea {tmp}, [rip + 2f]", // ... and the address just below
            "push {tmp}",         // target rip
            "retfq",              // pops rip and cs: reloads CS from the new GDT
            "2:",                 // the far return lands here, CS reloaded
            "mov ss, {ds:x}",     // reload the data segments from the new GDT
            "mov ds, {ds:x}",     // data segment
            "mov es, {ds:x}",     // string destination segment
            "ltr {tss:x}",        // load the task register: IST stacks become active
            ptr = in(reg) &pointer,
            cs = in(reg) u64::from(KERNEL_CS),
            ds = in(reg) KERNEL_DS,
            tss = in(reg) TSS_SELECTOR,
            tmp = out(reg) _,
        );
    }
}
