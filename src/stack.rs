//! Stack memory: static storage, borrowed buffers, canary words and painting.
//!
//! A [`Stack`] is an exclusive token for a region of memory a fiber runs on. It
//! can come from a [`StaticStack`] in a plain `static` (claimed once, released when
//! the fiber that used it is gone), from any `&mut [u8]`, or — with the `std`
//! feature — from `mmap` with a `PROT_NONE` guard page below it.
//!
//! Layout of a stack while a fiber owns it (addresses grow upwards):
//!
//! ```text
//!  lo + len ┌─────────────────────────────┐
//!           │ fiber header + closure/result│  written by spawn
//!           │ initial frame / live frames  │  grows downwards
//!           │ ... painted with PAINT ...   │  untouched bytes keep the paint
//!  lo + 32  ├─────────────────────────────┤
//!           │ 4 canary words (CANARY)      │  top word: every switch-out; all: at exit
//!  lo       └─────────────────────────────┘  16-byte aligned (64 for StaticStack)
//! ```

use core::cell::UnsafeCell;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::arch;

/// The smallest stack a [`Stack`] or [`StaticStack`] can be, in bytes.
///
/// It covers the canary words, the fiber header, the initial frame and a few
/// hundred bytes for the entry glue of an optimised build without `std`.
/// Spawning usually needs more, and [`Runtime::spawn`](crate::Runtime::spawn)
/// checks it for each closure, refusing a stack that is too small with
/// [`SpawnErrorKind::StackTooSmall`](crate::SpawnErrorKind::StackTooSmall) and
/// the size it needs. Besides header, closure and initial frame, spawn reserves:
///
/// * **The entry glue** — the frames that call the closure and finish the
///   fiber, with their own copies of the closure and its result: 2.5 KiB
///   plus 3 copies of the closure and 6 of the result, in every build (the
///   glue is generic, so it is compiled at the user's optimisation level,
///   which filament cannot see; unoptimised code copies most). A copy of a
///   type aligned to more than 16 bytes counts its alignment again (its frame
///   realigns the stack pointer), and a zero-sized one twice its alignment.
///   The numbers come from measurements (`tests/stack_reserve.rs`; review
///   15: the docs still gave an older, per-build reserve).
/// * **A signal frame**, with `std` (a host with signals). A signal delivered
///   while a fiber runs, to a handler installed without `SA_ONSTACK`, is
///   pushed onto the fiber's stack: the kernel's frame (`AT_MINSIGSTKSZ` from
///   the auxiliary vector, 3–4 KiB on CPUs with AVX-512, more with AMX; the
///   libc `MINSIGSTKSZ` where the kernel does not say), the 128-byte red zone
///   below the interrupted frame, and 1 KiB for the handler's own frames. A
///   handler that needs more must run on an alternate stack (`SA_ONSTACK` with
///   `sigaltstack`). Without `std` (bare metal) nothing is reserved: there are
///   no signals, and a kernel whose interrupts run on the interrupted stack
///   must size fiber stacks for its handlers itself.
///
/// Real fibers need more again: size stacks for what your code does plus
/// these reserves (measure it with `stack_high_water`).
pub const MIN_STACK_SIZE: usize = 1024;

/// Number of guard words at the low end of every stack.
pub(crate) const CANARY_WORDS: usize = 4;
/// Bytes taken by the canary at the low end.
pub(crate) const CANARY_BYTES: usize = CANARY_WORDS * 8;
/// The canary value. Chosen to be an unlikely pointer, integer and float.
pub(crate) const CANARY: u64 = 0xF11A_3E47_5AFE_C0DE;
/// The paint value for untouched stack words (high-water measurement).
pub(crate) const PAINT: u64 = 0xF1F1_F1F1_F1F1_F1F1;

/// Why a stack was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackError {
    /// The buffer is smaller than [`MIN_STACK_SIZE`] once aligned.
    TooSmall {
        /// The minimum usable size in bytes.
        min: usize,
        /// The size of the buffer that was given, in bytes.
        given: usize,
        /// What was left of it after aligning its start, in bytes.
        usable: usize,
    },
    /// This [`StaticStack`] is already claimed by a live [`Stack`].
    AlreadyClaimed {
        /// The stack's size in bytes.
        size: usize,
    },
    /// A host stack of this size cannot exist: rounded up to whole pages with
    /// its guard page, it would not fit the address space (more than
    /// `isize::MAX` bytes) (`std` only).
    TooLarge {
        /// The requested size in bytes.
        size: usize,
    },
    /// The operating system refused to map a host stack (`std` only).
    MapFailed {
        /// The requested size in bytes.
        size: usize,
        /// `errno` of the failed call.
        errno: i32,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StackError::TooSmall { min, given, usable } => write!(
                f,
                "stack too small: {given} bytes given ({usable} usable after alignment), at least {min} needed"
            ),
            StackError::AlreadyClaimed { size } => {
                write!(f, "static stack of {size} bytes is already claimed")
            }
            StackError::TooLarge { size } => {
                write!(f, "a {size}-byte stack does not fit the address space")
            }
            StackError::MapFailed { size, errno } => {
                write!(f, "mapping a {size}-byte stack failed (errno {errno})")
            }
        }
    }
}

impl core::error::Error for StackError {}

/// Stack memory with its size in the type, for a plain `static`.
///
/// ```
/// use filament::StaticStack;
/// static STACK: StaticStack<8192> = StaticStack::new();
/// let stack = STACK.claim().unwrap();
/// assert!(STACK.claim().is_err()); // exclusive while `stack` lives
/// drop(stack);
/// assert!(STACK.claim().is_ok()); // released again
/// ```
///
/// The memory is uninitialised until claimed (so it lands in `.bss`), and
/// 64-byte aligned so over-aligned closures cost no padding.
#[repr(C, align(64))]
pub struct StaticStack<const SIZE: usize> {
    memory: UnsafeCell<MaybeUninit<[u8; SIZE]>>,
    claimed: AtomicBool,
}

// SAFETY: the memory is only reachable through a `Stack` token, and `claimed`
// (an atomic swap) guarantees at most one token exists at a time.
unsafe impl<const SIZE: usize> Sync for StaticStack<SIZE> {}

impl<const SIZE: usize> StaticStack<SIZE> {
    /// An unclaimed stack. `SIZE` must be at least [`MIN_STACK_SIZE`] and a
    /// multiple of 16 (checked at compile time).
    pub const fn new() -> Self {
        const {
            assert!(SIZE >= MIN_STACK_SIZE, "StaticStack size must be at least 1024 bytes (MIN_STACK_SIZE)");
            assert!(SIZE.is_multiple_of(16), "StaticStack size must be a multiple of 16");
        }
        StaticStack { memory: UnsafeCell::new(MaybeUninit::uninit()), claimed: AtomicBool::new(false) }
    }

    /// Claims the stack for exclusive use. Fails while a previous claim lives.
    ///
    /// The claim is released when the returned [`Stack`] is dropped — which a
    /// runtime does only once no frame of any fiber remains on it.
    pub fn claim(&self) -> Result<Stack<'_>, StackError> {
        if self.claimed.swap(true, Ordering::Acquire) {
            return Err(StackError::AlreadyClaimed { size: SIZE });
        }
        let lo = NonNull::new(self.memory.get().cast::<u8>()).expect("static address is non-null");
        // SAFETY: the swap above made us the only owner of the memory until the
        // token's drop stores `false`; SIZE >= MIN_STACK_SIZE and lo is 64-aligned.
        Ok(unsafe { Stack::from_raw_parts(lo, SIZE, Owner::Claim(&self.claimed)) })
    }

    /// Whether a [`Stack`] for this memory is currently alive.
    pub fn is_claimed(&self) -> bool {
        self.claimed.load(Ordering::Relaxed)
    }

    /// The stack's size in bytes.
    pub const fn size(&self) -> usize {
        SIZE
    }
}

impl<const SIZE: usize> fmt::Debug for StaticStack<SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticStack").field("size", &SIZE).field("claimed", &self.is_claimed()).finish()
    }
}

impl<const SIZE: usize> Default for StaticStack<SIZE> {
    fn default() -> Self {
        Self::new()
    }
}

// The tag is a whole word under `std` (three variants, no niche): a claim
// writes it with one 8-byte store, so the word-by-word move in
// [`Stack::moved`] can forward it (see there). Every byte of every variant is
// initialised (no padding: `Borrowed` and `Mapped` fill their payload word),
// which lets `moved` carry the token as plain words; without `std` the enum is
// a nullable pointer (`Borrowed` is the null niche), one initialised word.
#[cfg_attr(feature = "std", repr(usize))]
pub(crate) enum Owner<'a> {
    /// A borrowed buffer: nothing to do on release; the borrow ends with `'a`.
    /// Under `std` the payload word is the buffer's first usable byte
    /// (`lo`), the byte [`Stack::release_byte`] names: a claim's flag and
    /// this share the payload position, so telling a release store from an
    /// unmap is one compare.
    Borrowed(PhantomData<&'a mut [u8]>, #[cfg(feature = "std")] *mut u8),
    /// A static stack: release the claim.
    Claim(&'a AtomicBool),
    /// An mmap'd host stack: unmap it. The mapping is the usable range plus
    /// one guard page below it (`Stack::host`), so its base and length follow
    /// from the token's own: kept out of the token, which is copied at every
    /// claim, spawn and take (48 bytes with them, 32 without).
    #[cfg(feature = "std")]
    Mapped {
        /// Its entry in the guard-page registry (`host::guard`).
        guard: u32,
        /// Zero: fills the payload word (see above).
        _fill: u32,
    },
}

impl Owner<'_> {
    /// The owner of a borrowed buffer whose usable part starts at `lo`.
    pub(crate) const fn borrowed(lo: *mut u8) -> Self {
        #[cfg(feature = "std")]
        {
            Owner::Borrowed(PhantomData, lo)
        }
        #[cfg(not(feature = "std"))]
        {
            let _ = lo;
            Owner::Borrowed(PhantomData)
        }
    }
}

// No padding anywhere in a token (see `Owner`): 4 words under `std`, 3
// without (where only the null niche can make `Owner` one word).
#[cfg(feature = "std")]
const _: () = assert!(core::mem::size_of::<Owner<'static>>() == 2 * core::mem::size_of::<usize>());
#[cfg(not(feature = "std"))]
const _: () = assert!(core::mem::size_of::<Owner<'static>>() == core::mem::size_of::<usize>());
const _: () = assert!(
    core::mem::size_of::<Stack<'static>>()
        == 2 * core::mem::size_of::<usize>() + core::mem::size_of::<Owner<'static>>()
);

/// The low bit of [`Stack`]'s `len_painted`: spawn paints the stack. Sizes
/// are multiples of 16, so the bit is free.
const PAINTED: usize = 1;

/// An exclusive token for memory a fiber can run on.
///
/// Spawning moves the token into the runtime; the runtime drops it (releasing a
/// static claim or unmapping a host stack) only after the fiber's closure and
/// result are gone from it, so no live frame is ever left on released memory.
pub struct Stack<'a> {
    lo: NonNull<u8>,
    /// The usable size, a multiple of 16, or'ed with [`PAINTED`] (one word
    /// instead of two keeps the token at 32 bytes).
    len_painted: usize,
    owner: Owner<'a>,
}

// Copied at every claim, spawn and take: keep it at four words at most
// (three without `std`, where `Owner` is a nullable pointer).
const _: () = assert!(core::mem::size_of::<Stack<'static>>() <= 4 * core::mem::size_of::<usize>());

// SAFETY: a Stack is exclusive access to plain memory; moving that access to
// another thread is fine (an `Owner::Claim` only touches an atomic).
unsafe impl Send for Stack<'_> {}
// SAFETY: `&Stack` reads only the token's own fields (size, painted flag);
// nothing reachable through a shared reference touches the memory.
unsafe impl Sync for Stack<'_> {}

impl<'a> Stack<'a> {
    /// Uses any byte buffer as a stack. Its start is aligned to 16 bytes
    /// internally; what remains must be at least [`MIN_STACK_SIZE`].
    ///
    /// ```
    /// let mut buf = [0u8; 4096];
    /// let stack = filament::Stack::from_slice(&mut buf[3..]).unwrap();
    /// assert_eq!(stack.size(), 4080); // start rounded up, end rounded down to 16
    /// let mut tiny = [0u8; 100];
    /// assert!(filament::Stack::from_slice(&mut tiny).is_err());
    /// ```
    pub fn from_slice(buf: &'a mut [u8]) -> Result<Stack<'a>, StackError> {
        let given = buf.len();
        let start = buf.as_mut_ptr() as usize;
        let lo = start.next_multiple_of(arch::STACK_ALIGN);
        let end = (start + given) & !(arch::STACK_ALIGN - 1);
        let usable = end.saturating_sub(lo);
        if usable < MIN_STACK_SIZE {
            return Err(StackError::TooSmall { min: MIN_STACK_SIZE, given, usable });
        }
        // lo is inside buf (usable > 0), derived from buf's pointer for provenance.
        let lo = buf.as_mut_ptr().wrapping_add(lo - start);
        // SAFETY: [lo, lo+usable) lies inside `buf`, which is exclusively borrowed
        // for 'a; lo is 16-aligned and usable >= MIN_STACK_SIZE.
        Ok(unsafe {
            Stack::from_raw_parts(NonNull::new(lo).expect("slice pointer is non-null"), usable, Owner::borrowed(lo))
        })
    }

    /// # Safety
    /// `[lo, lo+len)` must be writable memory exclusively owned by the token for
    /// `'a`, `lo` 16-aligned, `len >= MIN_STACK_SIZE` and a multiple of 16.
    pub(crate) unsafe fn from_raw_parts(lo: NonNull<u8>, len: usize, owner: Owner<'a>) -> Self {
        debug_assert!((lo.as_ptr() as usize).is_multiple_of(arch::STACK_ALIGN));
        debug_assert!(len >= MIN_STACK_SIZE && len.is_multiple_of(arch::STACK_ALIGN));
        Stack { lo, len_painted: len | PAINTED, owner }
    }

    /// Usable size in bytes (after alignment).
    pub fn size(&self) -> usize {
        self.len_painted & !PAINTED
    }

    /// Skips painting at spawn. Spawning then costs O(1) instead of O(size), but
    /// the high-water mark of fibers on this stack is unknown (`None`). The
    /// canary is still written and checked.
    #[must_use = "this returns the stack without painting; the original is consumed"]
    pub fn without_painting(mut self) -> Self {
        self.len_painted &= !PAINTED;
        self
    }

    /// Whether spawn paints this stack (see [`Stack::without_painting`]).
    pub fn is_painted(&self) -> bool {
        self.len_painted & PAINTED != 0
    }

    /// Tells the guard-page registry which fiber runs on this stack (host
    /// stacks only), so an overflow report can name it.
    #[inline]
    pub(crate) fn note_fiber(&self, _id: crate::FiberId, _name: &'static str) {
        #[cfg(feature = "std")]
        if let Owner::Mapped { guard, .. } = self.owner {
            crate::host::guard::note_fiber(guard, _id.index, _id.generation, _name);
        }
    }

    /// The token, moved as plain words, each kept in a general register.
    ///
    /// The caller of `spawn` built the token with one store per word (a
    /// `claim`, or a `take_with_stack`), usually a few instructions earlier;
    /// a plain move of the 32-byte struct loads it with 16-byte vector
    /// loads, each spanning two of those stores, which the CPU cannot
    /// forward from its store buffer: each waits for the stores to reach the
    /// cache. Each word passes through an empty `asm!` (opaque to the
    /// optimiser), so the words are never merged into vector loads: loaded
    /// one by one if the token is in memory, and left in registers if it
    /// already is there (a claim inlined into the spawn: no memory round
    /// trip at all). The earlier volatile word loads forced every token into
    /// memory first (16 instructions of an in-fiber spawn).
    #[inline(always)]
    pub(crate) fn moved(self) -> Self {
        const N: usize = core::mem::size_of::<Stack<'static>>() / core::mem::size_of::<usize>();
        const { assert!(core::mem::size_of::<Stack<'static>>() == N * core::mem::size_of::<usize>()) };
        let src = core::mem::ManuallyDrop::new(self);
        // SAFETY: a token is N words with every byte initialised (no padding,
        // see `Owner`), so it reads as N pointer-sized words; read as pointers,
        // the words that are pointers keep their provenance (the others are
        // integers, carried and written back unchanged). `src` is never
        // dropped, so the token moves exactly once.
        let mut words: [*mut u8; N] = unsafe { core::mem::transmute_copy(&*src) };
        // The asm reads no memory: a word is only passed through a register.
        #[allow(clippy::pointers_in_nomem_asm_block)]
        for w in &mut words {
            // SAFETY: an empty template: the register is left as it is; no
            // memory, stack or flags are touched.
            unsafe { core::arch::asm!("/* {0} */", inout(reg) * w, options(pure, nomem, nostack, preserves_flags)) };
        }
        // SAFETY: the same words, unchanged, in the same order.
        unsafe { core::mem::transmute_copy(&words) }
    }

    pub(crate) fn lo(&self) -> *mut u8 {
        self.lo.as_ptr()
    }

    pub(crate) fn top(&self) -> *mut u8 {
        self.lo.as_ptr().wrapping_add(self.size())
    }

    /// If releasing this token is at most a single byte store of `0` — a
    /// [`StaticStack`] claim (its flag), or a borrowed buffer (nothing to do:
    /// under `std` its own first byte, which the token owns until it is
    /// released; otherwise `otherwise`, a byte the caller may harmlessly
    /// clear) — returns that byte. The caller may then release the token by
    /// that store, made once no frame is on the stack any more, instead of
    /// dropping it (and must not drop it as well). `None`: the token must be
    /// dropped (a mapped host stack is unmapped by a call).
    #[inline(always)]
    pub(crate) fn release_byte(&self, otherwise: *const u8) -> Option<*const u8> {
        #[cfg(feature = "std")]
        {
            let _ = otherwise;
            match self.owner {
                Owner::Mapped { .. } => None,
                Owner::Claim(flag) => Some(flag.as_ptr().cast_const().cast::<u8>()),
                Owner::Borrowed(_, first) => Some(first.cast_const()),
            }
        }
        #[cfg(not(feature = "std"))]
        {
            match self.owner {
                Owner::Claim(flag) => Some(flag.as_ptr().cast_const().cast::<u8>()),
                Owner::Borrowed(..) => Some(otherwise),
            }
        }
    }
}

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        match self.owner {
            Owner::Borrowed(..) => {}
            Owner::Claim(flag) => flag.store(false, Ordering::Release),
            #[cfg(feature = "std")]
            Owner::Mapped { guard, .. } => {
                crate::host::guard::unregister(guard);
                // The guard page below `lo` is part of the mapping (`Stack::host`).
                let page = crate::host::page_size();
                crate::host::unmap(self.lo.as_ptr().wrapping_sub(page), self.size() + page)
            }
        }
    }
}

impl fmt::Debug for Stack<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("lo", &self.lo)
            .field("size", &self.size())
            .field("painted", &self.is_painted())
            .finish()
    }
}

/// Writes the canary words at `lo` and, if asked, paints `[lo+32, until)`.
///
/// # Safety
/// `[lo, until)` must be writable, `lo` 8-aligned, `until` 8-aligned and above
/// `lo + CANARY_BYTES`.
pub(crate) unsafe fn prepare(lo: *mut u8, until: *mut u8, paint: bool) {
    let words = lo.cast::<u64>();
    // SAFETY: the caller guarantees the range is writable and aligned.
    unsafe {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(debug_assertions)))]
        {
            // Two 16-byte stores (one constant load) where the four 8-byte
            // ones took five instructions of every spawn; `lo` is 16-aligned
            // (every stack token's is). Unoptimised builds keep the words,
            // as `canary_intact` does (the intrinsics are calls there).
            use core::arch::x86_64::{__m128i, _mm_set1_epi64x};
            const { assert!(CANARY_WORDS == 4) };
            let c = _mm_set1_epi64x(CANARY as i64);
            let p = lo.cast::<__m128i>();
            p.write_volatile(c);
            p.add(1).write_volatile(c);
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2", not(debug_assertions))))]
        for i in 0..CANARY_WORDS {
            words.add(i).write_volatile(CANARY);
        }
        if paint {
            let n = (until as usize - lo as usize) / 8;
            let mut p = words.add(CANARY_WORDS);
            let end = words.add(n);
            while p < end {
                p.write(PAINT);
                p = p.add(1);
            }
        }
    }
}

/// Whether every canary word at `lo` is intact.
///
/// # Safety
/// `lo` must be the start of a prepared stack that is still owned.
#[inline(always)]
pub(crate) unsafe fn canary_intact(lo: *const u8) -> bool {
    // SAFETY: the canary words lie inside the owned stack, 16-aligned. Plain
    // (non-volatile) reads are enough: the words are only ever written through
    // frames the compiler cannot see, behind a context switch (an asm block
    // that clobbers memory) or before `prepare` returned.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(debug_assertions)))]
    // SAFETY: as above; `lo` is 16-aligned (every stack token's is), so both
    // 16-byte loads are aligned. Two compares of 16 bytes, one mask test:
    // 8 instructions where the four 8-byte compares took 10 (every fiber
    // exit and every free of a never-run fiber). Kernels built without SSE
    // take the word-by-word path below, and so do unoptimised builds: there
    // the intrinsics are calls, whose frames (on the exiting fiber's stack)
    // took 376 more bytes than the words (`tests/core.rs`,
    // `empty_fiber_high_water_is_small`). Both paths are compiled with
    // filament's own profile (this is not generic code).
    unsafe {
        use core::arch::x86_64::{
            __m128i, _mm_and_si128, _mm_cmpeq_epi32, _mm_load_si128, _mm_movemask_epi8, _mm_set1_epi64x,
        };
        let c = _mm_set1_epi64x(CANARY as i64);
        let p = lo.cast::<__m128i>();
        let eq = _mm_and_si128(_mm_cmpeq_epi32(_mm_load_si128(p), c), _mm_cmpeq_epi32(_mm_load_si128(p.add(1)), c));
        _mm_movemask_epi8(eq) == 0xFFFF
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2", not(debug_assertions))))]
    {
        // SAFETY: as above.
        let w = unsafe { lo.cast::<[u64; CANARY_WORDS]>().read() };
        w.iter().fold(0, |acc, &x| acc | (x ^ CANARY)) == 0
    }
}

/// Bytes used below `top`: the distance from `top` to the lowest word that no
/// longer holds the paint.
///
/// # Safety
/// `[lo, top)` must be an owned, painted stack.
pub(crate) unsafe fn high_water(lo: *const u8, top: *const u8) -> usize {
    let mut p = lo.wrapping_add(CANARY_BYTES).cast::<u64>();
    let end = top.cast::<u64>();
    // SAFETY: p walks inside [lo+32, top), which is owned memory.
    while p < end && unsafe { p.read_volatile() } == PAINT {
        p = p.wrapping_add(1);
    }
    top as usize - p as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The full canary check (two 16-byte compares with SSE2) sees a change
    /// of any single byte of the 32, and only such a change.
    #[test]
    fn canary_intact_sees_every_byte() {
        #[repr(C, align(16))]
        struct Buf([u8; 64]);
        let mut buf = Buf([0; 64]);
        let lo = buf.0.as_mut_ptr();
        // SAFETY: [lo, lo+64) is our buffer, 16-aligned.
        unsafe {
            prepare(lo, lo.add(64), true);
            assert!(canary_intact(lo));
            for i in 0..CANARY_BYTES {
                for bit in [0x01u8, 0x80] {
                    *lo.add(i) ^= bit;
                    assert!(!canary_intact(lo), "byte {i} bit {bit:#x} flipped unseen");
                    *lo.add(i) ^= bit;
                }
            }
            *lo.add(CANARY_BYTES) ^= 0xFF; // paint above the canary: not its business
            assert!(canary_intact(lo));
        }
    }
}
