# PVH entry: QEMU (`-kernel <elf64>`) finds the note below, loads the PT_LOAD segments and
# jumps to pvh_start32 in 32-bit protected mode with paging off and %ebx = physical address
# of the hvm_start_info struct. This file takes the CPU to 64-bit long mode with SSE on
# and calls the Rust `kernel_main(start_info)`. AT&T syntax; no braces (format string).

# ---- PVH ELF note (XEN_ELFNOTE_PHYS32_ENTRY) --------------------------------------------
    .section .note.Xen, "a", @note  # own section -> own PT_NOTE (see linker.ld)
    .p2align 2                      # ELF notes are 4-byte aligned
    .long 4                         # namesz: "Xen" plus NUL
    .long 8                         # descsz: one 64-bit physical address
    .long 18                        # type: XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"                    # name (exactly 4 bytes, no padding needed)
    .quad pvh_start32               # desc: where QEMU jumps in 32-bit protected mode

# ---- 32-bit entry ------------------------------------------------------------------------
    .section .boot.text, "ax", @progbits  # placed first by linker.ld
    .code32                         # the CPU is in 32-bit protected mode here
    .globl pvh_start32              # named by the note and by ENTRY()
pvh_start32:                        # QEMU jumps here (32-bit protected mode, paging off)
    cli                             # no IDT yet: keep interrupts off
    cld                             # string ops count upwards (rep stosb below, SysV ABI)
    mov %ebx, %esi                  # keep start_info; rep stosb uses %edi/%ecx/%eax

    mov $__bss_start, %edi          # zero .bss (page tables, stacks, Rust statics)
    mov $__bss_end, %ecx            # end of .bss
    sub %edi, %ecx                  # byte count
    xor %eax, %eax                  # fill byte 0
    rep stosb                       # memset(__bss_start, 0, len)

    mov $boot_stack_top, %esp       # a stack, in case anything below faults into a push

    mov $boot_pdpt, %eax            # PML4[0] -> PDPT
    or $0x3, %eax                   # present | writable
    mov %eax, boot_pml4             # low half of entry 0 (high half is zero)
    mov $boot_pd, %eax              # PDPT[0] -> PD (first GiB)
    or $0x3, %eax                   # present | writable
    mov %eax, boot_pdpt             # low half of entry 0

    mov $boot_pd, %edi              # PD[i] = i * 2 MiB, identity map of 0..1 GiB
    mov $0x83, %eax                 # present | writable | 2 MiB page, physical 0
    mov $512, %ecx                  # 512 entries of 2 MiB
.Lfill_pd:                          # loop over the 512 PD entries
    mov %eax, (%edi)                # low half of the entry (high half already zero)
    add $0x200000, %eax             # next 2 MiB frame
    add $8, %edi                    # next entry
    dec %ecx                        # one entry done
    jnz .Lfill_pd                   # until all 512 are written

    mov $boot_pml4, %eax            # physical address of the PML4
    mov %eax, %cr3                  # becomes the page table root
    mov %cr4, %eax                  # read CR4
    or $0x20, %eax                  # CR4.PAE: required for long mode
    mov %eax, %cr4                  # write CR4
    mov $0xC0000080, %ecx           # IA32_EFER
    rdmsr                           # read EFER into %edx:%eax
    or $0x100, %eax                 # EFER.LME: long mode enable
    wrmsr                           # write EFER
    mov %cr0, %eax                  # read CR0
    or $0x80000001, %eax            # CR0.PG | CR0.PE: paging on => long mode active
    mov %eax, %cr0                  # write CR0 (now in 32-bit compatibility mode)
    lgdt boot_gdt_ptr               # GDT with a 64-bit code segment
    ljmp $0x08, $long_mode_entry    # reload CS with the 64-bit code segment

# ---- 64-bit entry ------------------------------------------------------------------------
    .code64                         # from here on the CPU runs 64-bit code
long_mode_entry:                    # first 64-bit instruction
    mov $0x10, %ax                  # flat data segment selector
    mov %ax, %ds                    # data segment
    mov %ax, %es                    # string destination segment
    mov %ax, %ss                    # stack segment
    xor %eax, %eax                  # null selector
    mov %ax, %fs                    # unused
    mov %ax, %gs                    # unused
    lea boot_stack_top(%rip), %rsp  # 16-byte aligned top of the boot stack
    xor %ebp, %ebp                  # terminate frame-pointer chains

    mov %cr0, %rax                  # read CR0
    and $-5, %rax                   # clear CR0.EM (bit 2): no x87 emulation, SSE allowed
    or $0x22, %rax                  # set CR0.MP (bit 1) and CR0.NE (bit 5, native x87 errors)
    mov %rax, %cr0                  # write CR0
    mov %cr4, %rax                  # read CR4
    or $0x600, %rax                 # CR4.OSFXSR | CR4.OSXMMEXCPT: SSE + fxsave usable
    mov %rax, %cr4                  # write CR4
    fninit                          # x87 to its default state (control word 0x37f)

    mov %esi, %edi                  # arg 0: start_info physical address (zero-extended)
    call kernel_main                # Rust; never returns
.Lhang:                             # never reached
    cli                             # should kernel_main ever return: stop
    hlt                             # wait forever (interrupts are off)
    jmp .Lhang                      # NMI wakes hlt: halt again

# ---- boot GDT (replaced by the Rust GDT with the TSS) ------------------------------------
    .section .boot.data, "a", @progbits  # read-only boot data
    .p2align 3                      # descriptors are 8 bytes
boot_gdt:                           # 3 descriptors
    .quad 0                         # null descriptor
    .quad 0x00AF9A000000FFFF        # 0x08: 64-bit code, present, DPL 0 (L=1)
    .quad 0x00CF92000000FFFF        # 0x10: data, present, writable, DPL 0
boot_gdt_end:                       # end marker for the limit
boot_gdt_ptr:                       # operand of lgdt
    .word boot_gdt_end - boot_gdt - 1   # limit
    .quad boot_gdt                      # base (32-bit lgdt reads the low 4 bytes)

# ---- zeroed memory -----------------------------------------------------------------------
    .section .bss.boot, "aw", @nobits  # zeroed by the loop above, not stored in the file
    .p2align 12                     # page tables are 4 KiB aligned
boot_pml4:                          # page map level 4
    .skip 4096                      # level 4
boot_pdpt:                          # page directory pointer table
    .skip 4096                      # level 3
boot_pd:                            # page directory
    .skip 4096                      # level 2, 2 MiB pages
    .p2align 4                      # 16-byte aligned stack (SysV ABI)
boot_stack:                         # lowest address of the boot stack
    .skip 65536                     # stack of kernel_main and of the scheduler loop
boot_stack_top:                     # initial rsp (grows down)
