//! Naming the fiber whose host stack overflowed into its guard page.
//!
//! A `Stack::host` stack has a `PROT_NONE` page below it: an overflow faults
//! there at once. Without help that is a bare `SIGSEGV` that kills every test
//! in the binary without a word about which fiber. As std does for threads,
//! filament installs (once, at the first `Stack::host`) a `SIGSEGV`/`SIGBUS`
//! handler running on the thread's alternate signal stack: a fault inside the
//! guard page of a live host stack prints
//!
//! ```text
//! filament: fiber #1.0 "worker" has overflowed its 65536-byte stack
//! ```
//!
//! to file descriptor 2 and then lets the fault kill the process with
//! `SIGSEGV` as before; any other fault goes to the handler that was
//! installed before (std's own stack-overflow handler, or the default).
//!
//! The registry of guard pages is a fixed table of atomics (no lock, no
//! allocation: the handler may run at any point of any thread). A stack that
//! finds the table full (more than [`SLOTS`] live host stacks) is simply not
//! named in reports. `run` gives a thread without an alternate signal stack
//! one (freed when the thread exits), so the handler can run although the
//! fault is on the fiber's stack.

use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// Live host stacks the registry can name at once.
pub(crate) const SLOTS: usize = 4096;

/// One registered host stack.
struct Entry {
    /// Start of the guard page (0: entry free).
    guard: AtomicUsize,
    /// Usable size of the stack above it.
    size: AtomicUsize,
    /// The fiber on it: `index << 32 | generation`, `u64::MAX` if none yet.
    fiber: AtomicU64,
    /// Its name (`&'static str` parts; 0 length: unnamed).
    name_ptr: AtomicUsize,
    name_len: AtomicUsize,
}

static TABLE: [Entry; SLOTS] = [const {
    Entry {
        guard: AtomicUsize::new(0),
        size: AtomicUsize::new(0),
        fiber: AtomicU64::new(u64::MAX),
        name_ptr: AtomicUsize::new(0),
        name_len: AtomicUsize::new(0),
    }
}; SLOTS];
/// Registered entries are below this index (a scan bound for the handler).
static USED: AtomicUsize = AtomicUsize::new(0);

/// Registers the guard page at `guard` of a host stack of `size` usable bytes;
/// returns its entry, or `u32::MAX` if the table is full.
pub(crate) fn register(guard: *mut u8, size: usize) -> u32 {
    install_handler();
    for (i, e) in TABLE.iter().enumerate() {
        if e.guard.load(Ordering::Relaxed) == 0
            && e.guard.compare_exchange(0, guard as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            e.size.store(size, Ordering::Relaxed);
            e.fiber.store(u64::MAX, Ordering::Relaxed);
            e.name_len.store(0, Ordering::Relaxed);
            USED.fetch_max(i + 1, Ordering::AcqRel);
            return i as u32;
        }
    }
    u32::MAX
}

/// Records which fiber runs on the registered stack `entry`.
pub(crate) fn note_fiber(entry: u32, index: u32, generation: u32, name: &'static str) {
    if let Some(e) = TABLE.get(entry as usize) {
        // Invalidate first, so a reader never pairs the new name with the
        // old fiber (see `report`).
        e.fiber.store(u64::MAX, Ordering::Release);
        e.name_ptr.store(name.as_ptr() as usize, Ordering::Release);
        e.name_len.store(name.len(), Ordering::Release);
        e.fiber.store(u64::from(index) << 32 | u64::from(generation), Ordering::Release);
    }
}

/// Frees the entry of a stack being unmapped.
pub(crate) fn unregister(entry: u32) {
    if let Some(e) = TABLE.get(entry as usize) {
        e.fiber.store(u64::MAX, Ordering::Relaxed);
        e.guard.store(0, Ordering::Release);
    }
}

static INSTALL: Once = Once::new();
/// The actions that were installed before ours, for SIGSEGV and SIGBUS.
struct Previous(core::cell::UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);
// SAFETY: written once inside `INSTALL.call_once`, before the handler that
// reads it is installed; read-only afterwards.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(core::cell::UnsafeCell::new([MaybeUninit::uninit(), MaybeUninit::uninit()]));

fn install_handler() {
    INSTALL.call_once(|| {
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            // SAFETY: plain sigaction calls with valid structures; PREVIOUS is
            // written here, once, before our handler can run (it is installed
            // by this very call) and only read by the handler afterwards.
            unsafe {
                let mut action: libc::sigaction = core::mem::zeroed();
                action.sa_sigaction = on_fault as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let previous = &mut (*PREVIOUS.0.get())[i];
                libc::sigaction(sig, &action, previous.as_mut_ptr());
            }
        }
    });
}

/// Gives the calling thread an alternate signal stack if it has none, so the
/// fault handler can run when a fiber's stack is the one that overflowed.
/// The stack is leaked with the thread (one per thread, ever).
#[inline]
pub(crate) fn ensure_altstack() {
    std::thread_local! {
        static CHECKED: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    }
    if !CHECKED.with(|c| c.replace(true)) {
        give_altstack();
    }
}

/// [`ensure_altstack`]'s first call on a thread.
#[cold]
#[inline(never)]
fn give_altstack() {
    /// The alternate stack this thread got from us: disabled and unmapped
    /// when the thread exits (no leak per thread).
    struct AltStack(*mut libc::c_void);
    impl Drop for AltStack {
        fn drop(&mut self) {
            if self.0.is_null() {
                return;
            }
            // SAFETY: disabling this thread's alternate stack, then unmapping
            // the mapping we made for it (no handler runs on it any more).
            unsafe {
                let off = libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
                libc::sigaltstack(&off, ptr::null_mut());
                libc::munmap(self.0, ALTSTACK_SIZE);
            }
        }
    }
    const ALTSTACK_SIZE: usize = 64 * 1024;
    std::thread_local! {
        static MINE: core::cell::RefCell<AltStack> = const { core::cell::RefCell::new(AltStack(ptr::null_mut())) };
    }
    // SAFETY: querying and setting the calling thread's alternate stack with
    // valid structures; the new stack is a fresh private mapping never freed.
    unsafe {
        let mut old: libc::stack_t = core::mem::zeroed();
        if libc::sigaltstack(ptr::null(), &mut old) != 0 || old.ss_flags & libc::SS_DISABLE == 0 {
            return; // has one (std's threads do)
        }
        let size = ALTSTACK_SIZE;
        let mem = libc::mmap(
            ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return;
        }
        let new = libc::stack_t { ss_sp: mem, ss_flags: 0, ss_size: size };
        if libc::sigaltstack(&new, ptr::null_mut()) == 0 {
            let _ = MINE.try_with(|m| m.borrow_mut().0 = mem);
        } else {
            libc::munmap(mem, size);
        }
    }
}

extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = 4096usize.max(super::page_size());
    let used = USED.load(Ordering::Acquire).min(SLOTS);
    for e in &TABLE[..used] {
        let guard = e.guard.load(Ordering::Acquire);
        if guard != 0 && addr >= guard && addr < guard + page {
            report(e);
            // Let the fault kill the process as it would have: default
            // action, return, the instruction faults again.
            // SAFETY: resetting a signal's action is async-signal-safe.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
            return;
        }
    }
    // Not ours: hand it to whoever had it before.
    let i = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: PREVIOUS[i] was written before this handler was installed.
    let prev = unsafe { (*PREVIOUS.0.get())[i].assume_init_ref() };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // SAFETY: as above.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            // SAFETY: an SA_SIGINFO handler installed for exactly this signal
            // has this signature.
            unsafe { core::mem::transmute(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: as above, a one-argument handler.
        let f: extern "C" fn(libc::c_int) = unsafe { core::mem::transmute(handler) };
        f(sig);
    }
}

/// Writes the one-line report for entry `e` (async-signal-safe: no
/// allocation, `write(2)` only).
fn report(e: &Entry) {
    let size = e.size.load(Ordering::Relaxed);
    let fiber = e.fiber.load(Ordering::Acquire);
    let (ptr, len) = (e.name_ptr.load(Ordering::Acquire), e.name_len.load(Ordering::Acquire));
    // The entry may be reused by another thread while we read it (a stack
    // unmapped and another registered): only a name read between two equal
    // fiber values belongs together.
    let fiber_again = e.fiber.load(Ordering::Acquire);
    let len = if fiber_again == fiber { len } else { 0 };
    let name = if len == 0 {
        ""
    } else {
        // SAFETY: name parts were stored from a `&'static str` (checked above
        // to belong to one registration).
        unsafe { core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr as *const u8, len)) }
    };
    if fiber == u64::MAX {
        super::write_stderr_line(format_args!("filament: a fiber stack of {size} bytes has overflowed"));
    } else {
        let (index, generation) = (fiber >> 32, fiber & 0xFFFF_FFFF);
        super::write_stderr_line(format_args!(
            "filament: fiber #{index}.{generation} \"{name}\" has overflowed its {size}-byte stack"
        ));
    }
}
