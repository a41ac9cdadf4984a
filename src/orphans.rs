//! Dropped `JoinHandle`s: detach on drop, without a heap and without a
//! pointer into a runtime that may be gone.
//!
//! A `JoinHandle` dropped without `take`, `join` or `detach` cannot reach its
//! runtime (it may have moved or been dropped), so it leaves a note in a
//! process-wide fixed table of atomics: "runtime #serial, fiber #i.g (header
//! h) is orphaned". A runtime adopts its notes — detaching each fiber, which
//! frees a finished one's slot at once — when it runs out of free slots, when
//! a `run` returns, and when it is dropped. Serials are never reused, so a
//! note can only ever be adopted by the runtime it names; the fiber's
//! generation and header are checked as for a handle.
//!
//! Notes never outlive their runtime: a runtime registers its serial in a
//! fixed table of live runtimes ([`LIVE_SLOTS`] entries) and, when dropped,
//! unregisters it and purges its notes; a handle whose runtime is gone leaves
//! no note (nothing is left to detach). The note table has [`ORPHANS`]
//! entries; a handle dropped while it is full (more than that many dropped
//! handles of live runtimes that have not yet come back to them), or whose
//! runtime found the live table full, cannot tell its runtime: that fiber's
//! slot stays taken (its result unread) until the runtime is dropped, as
//! without this mechanism. `Full` counts such slots (`finished_untaken`).

use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::raw::Core;

/// Entries in the process-wide table of orphaned handles.
pub(crate) const ORPHANS: usize = 1024;

const FREE: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;
const TAKING: u8 = 3;

struct Note {
    state: AtomicU8,
    serial: AtomicU64,
    /// `index << 32 | generation`.
    id: AtomicU64,
    header: AtomicUsize,
}

static TABLE: [Note; ORPHANS] = [const {
    Note { state: AtomicU8::new(FREE), serial: AtomicU64::new(0), id: AtomicU64::new(0), header: AtomicUsize::new(0) }
}; ORPHANS];

/// Notes waiting to be adopted (a cheap "anything to do?" for runtimes).
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// Entries in the table of live runtimes.
pub(crate) const LIVE_SLOTS: usize = 4096;

/// Serials of live runtimes (0: free entry).
static LIVE: [AtomicU64; LIVE_SLOTS] = [const { AtomicU64::new(0) }; LIVE_SLOTS];

/// Registers a runtime's serial as live; returns its entry, or `u32::MAX` if
/// the table is full (its handles then always leave notes).
pub(crate) fn register_live(serial: u64) -> u32 {
    for (i, e) in LIVE.iter().enumerate() {
        if e.load(Ordering::Relaxed) == 0 && e.compare_exchange(0, serial, Ordering::SeqCst, Ordering::Relaxed).is_ok()
        {
            return i as u32;
        }
    }
    u32::MAX
}

/// Whether the runtime `serial` registered at `slot` is alive. A runtime
/// that found the live table full (`u32::MAX`) counts as gone: its dropped
/// handles leave no note (a note nobody could ever clear would fill the table
/// for every runtime), so their slots stay taken until it is dropped.
fn maybe_live(serial: u64, slot: u32) -> bool {
    LIVE.get(slot as usize).is_some_and(|e| e.load(Ordering::SeqCst) == serial)
}

/// A runtime is being dropped: it is no longer live, and its notes go (no
/// user code runs; what they name is dropped with the runtime).
pub(crate) fn runtime_gone(serial: u64, slot: u32) {
    if let Some(e) = LIVE.get(slot as usize) {
        e.store(0, Ordering::SeqCst);
    }
    if PENDING.load(Ordering::SeqCst) == 0 {
        return;
    }
    for note in &TABLE {
        if note.state.load(Ordering::SeqCst) == READY
            && note.serial.load(Ordering::Relaxed) == serial
            && note.state.compare_exchange(READY, TAKING, Ordering::SeqCst, Ordering::Relaxed).is_ok()
        {
            note.state.store(FREE, Ordering::Release);
            PENDING.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Leaves a note for runtime `serial`: its fiber `index.generation` with
/// header `header` lost its handle. Returns `false` if the table is full.
/// Atomics only: callable from any thread, at any time.
pub(crate) fn leave(serial: u64, live_slot: u32, index: u32, generation: u32, header: usize) -> bool {
    if !maybe_live(serial, live_slot) {
        return true; // the runtime is gone, and with it the fiber
    }
    for note in &TABLE {
        if note.state.load(Ordering::Relaxed) == FREE
            && note.state.compare_exchange(FREE, WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok()
        {
            note.serial.store(serial, Ordering::Relaxed);
            note.id.store(u64::from(index) << 32 | u64::from(generation), Ordering::Relaxed);
            note.header.store(header, Ordering::Relaxed);
            note.state.store(READY, Ordering::SeqCst);
            PENDING.fetch_add(1, Ordering::SeqCst);
            // The runtime may have been dropped meanwhile, after its purge
            // looked at this entry: then take the note back. (Its purge runs
            // after it unregistered; either it sees this note, or this check
            // sees it gone: SeqCst on both sides.)
            if !maybe_live(serial, live_slot)
                && note.state.compare_exchange(READY, TAKING, Ordering::SeqCst, Ordering::Relaxed).is_ok()
            {
                note.state.store(FREE, Ordering::Release);
                PENDING.fetch_sub(1, Ordering::Release);
            }
            return true;
        }
    }
    false
}

/// Takes every note left for `core`'s runtime and detaches those fibers
/// (see `crate::join::detach_slot`).
///
/// # Safety
/// Exclusive access to `core`; not on the stack of a fiber a note may name
/// as finished (any running context is fine: a running fiber is not
/// finished).
#[inline]
pub(crate) unsafe fn adopt(core: *mut Core) {
    if PENDING.load(Ordering::Acquire) != 0 {
        // SAFETY: forwarded contract.
        unsafe { adopt_notes(core) }
    }
}

/// [`adopt`]'s work when notes are waiting.
///
/// # Safety
/// As for [`adopt`].
#[cold]
#[inline(never)]
unsafe fn adopt_notes(core: *mut Core) {
    // SAFETY: plain read of the runtime's own serial.
    let me = unsafe { (*core).serial };
    for note in &TABLE {
        if note.state.load(Ordering::Acquire) != READY || note.serial.load(Ordering::Relaxed) != me {
            continue;
        }
        if note.state.compare_exchange(READY, TAKING, Ordering::Acquire, Ordering::Relaxed).is_err() {
            continue;
        }
        let id = note.id.load(Ordering::Relaxed);
        let header = note.header.load(Ordering::Relaxed);
        note.state.store(FREE, Ordering::Release);
        PENDING.fetch_sub(1, Ordering::Release);
        // SAFETY: forwarded contract; the note names a fiber of this runtime.
        unsafe { crate::join::detach_orphan(core, (id >> 32) as u32, id as u32, header) };
    }
}
