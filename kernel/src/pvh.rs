//! The PVH start-info structure (`struct hvm_start_info` in Xen's `arch-x86/hvm/start_info.h`)
//! whose physical address QEMU passes in `%ebx`.

use crate::kprintln;

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    _reserved: u32,
}

#[repr(C)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    _reserved: u32,
}

/// Validates the start info and reports RAM below 1 GiB (the identity-mapped range).
pub fn check_start_info(physical: u64) -> bool {
    if physical == 0 || physical >= 1 << 30 {
        kprintln!("pvh: start info at {physical:#x} is outside the identity map");
        return false;
    }
    // SAFETY: QEMU passed this physical address of a start-info struct; the first GiB is
    // identity-mapped, and the struct is only read.
    let info = unsafe { &*(physical as *const StartInfo) };
    if info.magic != START_INFO_MAGIC {
        kprintln!("pvh: bad start info magic {:#x}", info.magic);
        return false;
    }
    let mut usable = 0u64;
    if info.memmap_paddr != 0 && info.memmap_paddr < 1 << 30 && info.version >= 1 {
        for i in 0..info.memmap_entries as usize {
            // SAFETY: QEMU describes `memmap_entries` entries at `memmap_paddr`, which lies
            // in the identity-mapped first GiB (checked above).
            let entry = unsafe { &*(info.memmap_paddr as *const MemmapEntry).add(i) };
            if entry.kind == 1 {
                usable += entry.size;
            }
        }
    }
    kprintln!("pvh: start info ok (version {}), usable RAM {} MiB", info.version, usable >> 20);
    true
}
