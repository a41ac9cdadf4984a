//! The legacy 8259A PIC pair, remapped so IRQ 0..15 arrive at vectors 0x20..0x2f instead of
//! colliding with CPU exceptions 0x08..0x0f. IRQ 0 (the PIT) is unmasked at boot; IRQ 4
//! (COM1) while phase 6 of the demo runs ([`set_masked`]).

use crate::arch::outb;

const MASTER_CMD: u16 = 0x20;
const MASTER_DATA: u16 = 0x21;
const SLAVE_CMD: u16 = 0xa0;
const SLAVE_DATA: u16 = 0xa1;

/// Vector of IRQ 0 after remapping.
pub const MASTER_OFFSET: u8 = 0x20;
/// Vector of IRQ 8 after remapping.
pub const SLAVE_OFFSET: u8 = 0x28;

/// Remaps both PICs and masks every IRQ except IRQ 0.
pub fn init() {
    // Port 0x80 is unused POST-code space: a write there gives old PICs time between
    // initialisation words.
    let wait = || {
        // SAFETY: writing to port 0x80 has no effect on the system.
        unsafe { outb(0x80, 0) }
    };
    // SAFETY: these are the 8259A ports; the ICW sequence below is the documented
    // initialisation, done with interrupts disabled.
    unsafe {
        outb(MASTER_CMD, 0x11); // ICW1: edge-triggered, cascade, ICW4 follows
        wait();
        outb(SLAVE_CMD, 0x11); // ICW1 for the slave
        wait();
        outb(MASTER_DATA, MASTER_OFFSET); // ICW2: master vector base
        wait();
        outb(SLAVE_DATA, SLAVE_OFFSET); // ICW2: slave vector base
        wait();
        outb(MASTER_DATA, 0x04); // ICW3: slave on IRQ 2
        wait();
        outb(SLAVE_DATA, 0x02); // ICW3: slave cascade identity 2
        wait();
        outb(MASTER_DATA, 0x01); // ICW4: 8086 mode, normal EOI
        wait();
        outb(SLAVE_DATA, 0x01); // ICW4 for the slave
        wait();
        outb(MASTER_DATA, 0xfe); // OCW1: mask all but IRQ 0
        outb(SLAVE_DATA, 0xff); // OCW1: mask all slave IRQs
    }
}

/// Masks (`true`) or unmasks IRQ `irq` (0..7, master PIC). Call with interrupts disabled
/// (read-modify-write of the mask register).
pub fn set_masked(irq: u8, masked: bool) {
    debug_assert!(irq < 8);
    // SAFETY: reading and writing OCW1 (the master's mask register) changes only which
    // IRQs the PIC forwards; interrupts are off, so no handler runs in between.
    unsafe {
        let mask = crate::arch::inb(MASTER_DATA);
        let mask = if masked { mask | 1 << irq } else { mask & !(1 << irq) };
        outb(MASTER_DATA, mask);
    }
}

/// Acknowledges an IRQ from the master PIC (IRQ 0..7).
pub fn end_of_interrupt_master() {
    // SAFETY: a non-specific EOI to the master PIC only re-arms lower-priority IRQs.
    unsafe { outb(MASTER_CMD, 0x20) }
}
