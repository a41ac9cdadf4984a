//! Dropped `JoinHandle`s: detach on drop, without a heap and without a
//! pointer into a runtime that may be gone.
//!
//! A `JoinHandle` dropped without `take`, `join` or `detach` cannot reach its
//! runtime (it may have moved or been dropped), so it tells the runtime
//! through process-wide static memory that runtime alone reads: each live
//! runtime owns an entry in a fixed table of live runtimes ([`LIVE_SLOTS`]
//! entries) and a range of bits in a fixed pool ([`POOL_WORDS`] × 64 bits), one
//! bit per slot. The handle sets its fiber's bit and raises the entry's
//! "dropped" flag; the runtime adopts the fibers whose bits are set —
//! detaching each, which frees a finished one's slot at once — when it runs
//! out of free slots, when a `run` returns, and when it is dropped (where
//! what they name is dropped anyway).
//!
//! A runtime reads and clears only its own bits, so nothing another runtime
//! does (an idle runtime with any number of dropped handles, a leaked one)
//! takes detach-on-drop away from it. Dropped handles use no shared
//! capacity; only live runtimes do, from registration (at a runtime's first
//! use) until they are dropped. Registration fails when [`LIVE_SLOTS`]
//! runtimes are alive at once, or when the pool ([`POOL_WORDS`] words of 64
//! bits) has no contiguous run of free words for the runtime's capacity:
//! each runtime takes `ceil(N / 64)` whole words, first fit, so 2 048 live
//! runtimes of 65 slots (two words each) fill it, and freed ranges can
//! fragment it (review 12: "262 144 slots" overstated it). A runtime that found
//! no room keeps a dropped handle's slot taken (its result unread) until the
//! runtime is dropped; `Full` counts such slots (`finished_untaken`).
//!
//! A bit is enough to name a fiber: the slot of a fiber whose handle lives is
//! freed only through that handle (`take`, `detach`, dropping it) or by the
//! runtime's drop. So while slot `i`'s bit is set, slot `i` holds the fiber
//! whose handle set it; adoption clears the bit before it frees the slot.
//!
//! Handles and runtimes meet on atomics only. A dropping handle marks the
//! entry in use (`users`), checks that it still names its runtime, sets the
//! bit and the flag, and unmarks it. A runtime being dropped first makes its
//! entry name nobody ([`GONE`]), then waits until `users` is 0 before it
//! clears its bits and gives the range and the entry back: a handle that saw
//! its runtime alive finishes its two stores first, one that looks later
//! sees it gone (both sides `SeqCst`). The wait is a few instructions of
//! another thread's; do not drop a runtime in an interrupt handler that may
//! have interrupted a handle's drop on the same CPU.

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::mutex::SpinMutex;

use crate::raw::Core;

/// Entries in the table of live runtimes.
pub(crate) const LIVE_SLOTS: usize = 4096;

/// 64-bit words in the pool of "handle dropped" bits: all live runtimes
/// together can register 262 144 slots (32 KiB).
const POOL_WORDS: usize = 4096;

/// A live entry's serial while its runtime is being dropped: nobody's
/// (serials count up from 1 and never reach it), and not free yet.
const GONE: u64 = u64::MAX;

/// In [`Live::word`]: a handle set a bit since the runtime last looked.
const DROPPED: u32 = 1 << 31;

/// Entries with [`DROPPED`] set (a hint, briefly off while a handle and its
/// runtime race): the runtimes' cheap "anything to do?" — one load, so a
/// runtime with nothing dropped pays no more than that where it adopts.
static FLAGGED: AtomicUsize = AtomicUsize::new(0);

/// One live runtime's entry.
struct Live {
    /// The runtime's serial; 0: free entry; [`GONE`]: being released.
    serial: AtomicU64,
    /// Dropping handles between their check of `serial` and their last store.
    users: AtomicU32,
    /// The runtime's first word in [`POOL`], with [`DROPPED`].
    word: AtomicU32,
}

static LIVE: [Live; LIVE_SLOTS] =
    [const { Live { serial: AtomicU64::new(0), users: AtomicU32::new(0), word: AtomicU32::new(0) } }; LIVE_SLOTS];

/// Bit `i % 64` of word `base + i / 64`: slot `i`'s handle was dropped.
static POOL: [AtomicU64; POOL_WORDS] = [const { AtomicU64::new(0) }; POOL_WORDS];

/// Which pool words belong to a live runtime (bit per word). Taken only to
/// register and release a runtime, never by handles.
static RESERVED: SpinMutex<[u64; POOL_WORDS / 64]> = SpinMutex::new([0; POOL_WORDS / 64]);

/// Pool words for a runtime of `cap` slots.
fn words_for(cap: usize) -> usize {
    cap.div_ceil(64)
}

/// Whether pool word `w` is reserved.
fn reserved(map: &[u64; POOL_WORDS / 64], w: usize) -> bool {
    map[w / 64] & (1 << (w % 64)) != 0
}

/// Marks pool words `base..base + n` reserved (`on`) or free.
fn reserve(map: &mut [u64; POOL_WORDS / 64], base: usize, n: usize, on: bool) {
    for w in base..base + n {
        if on {
            map[w / 64] |= 1 << (w % 64);
        } else {
            map[w / 64] &= !(1 << (w % 64));
        }
    }
}

/// The first run of `n` free pool words (first fit).
fn find_run(map: &[u64; POOL_WORDS / 64], n: usize) -> Option<usize> {
    let mut start = 0;
    while start + n <= POOL_WORDS {
        match (start..start + n).find(|&w| reserved(map, w)) {
            Some(taken) => start = taken + 1,
            None => return Some(start),
        }
    }
    None
}

/// Registers a runtime of `cap` slots as live; returns its entry, or
/// `u32::MAX` if the live table or the pool is full (its dropped handles
/// then keep their slots until it is dropped).
#[cold]
#[inline(never)]
pub(crate) fn register_live(serial: u64, cap: usize) -> u32 {
    let n = words_for(cap);
    let mut map = RESERVED.lock();
    let Some(base) = find_run(&map, n) else { return u32::MAX };
    for (i, e) in LIVE.iter().enumerate() {
        if e.serial.load(Ordering::Relaxed) == 0 {
            // Before the serial is published: a handle that sees the serial
            // sees the base (no handle of this runtime exists yet anyway).
            e.word.store(base as u32, Ordering::Relaxed);
            if e.serial.compare_exchange(0, serial, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
                reserve(&mut map, base, n, true);
                return i as u32;
            }
        }
    }
    u32::MAX
}

/// A runtime of `cap` slots is being dropped: it is no longer live, and its
/// bits go (no user code runs; what they name is dropped with the runtime).
/// Once per runtime: out of line.
#[cold]
#[inline(never)]
pub(crate) fn runtime_gone(serial: u64, slot: u32, cap: usize) {
    let Some(e) = LIVE.get(slot as usize) else { return };
    if e.serial.compare_exchange(serial, GONE, Ordering::SeqCst, Ordering::Relaxed).is_err() {
        return;
    }
    // A handle that saw `serial` is between its check and its last store.
    while e.users.load(Ordering::SeqCst) != 0 {
        core::hint::spin_loop();
    }
    let base = (e.word.load(Ordering::Relaxed) & !DROPPED) as usize;
    let n = words_for(cap);
    for w in &POOL[base..base + n] {
        w.store(0, Ordering::Relaxed);
    }
    if e.word.swap(0, Ordering::Relaxed) & DROPPED != 0 {
        FLAGGED.fetch_sub(1, Ordering::Relaxed);
    }
    let mut map = RESERVED.lock();
    reserve(&mut map, base, n, false);
    // Free for another runtime (after the stores above: SeqCst).
    e.serial.store(0, Ordering::SeqCst);
}

/// Tells runtime `serial` (entry `live_slot`) that the handle of its fiber in
/// slot `index` was dropped. Atomics only: callable from any thread, at any
/// time. Does nothing if the runtime is gone (and with it the fiber) or has
/// no entry.
pub(crate) fn leave(serial: u64, live_slot: u32, index: u32) {
    let Some(e) = LIVE.get(live_slot as usize) else { return };
    e.users.fetch_add(1, Ordering::SeqCst);
    if e.serial.load(Ordering::SeqCst) == serial {
        // The runtime stays registered, with this base, until `users` is 0.
        let base = (e.word.load(Ordering::Relaxed) & !DROPPED) as usize;
        let i = index as usize;
        // In range (`index < cap`, the range has `cap` bits); never a panic
        // in a destructor all the same.
        if let Some(w) = POOL.get(base + i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Release);
        }
        if e.word.fetch_or(DROPPED, Ordering::Release) & DROPPED == 0 {
            FLAGGED.fetch_add(1, Ordering::Release);
        }
    }
    e.users.fetch_sub(1, Ordering::Release);
}

/// Detaches every fiber of `core`'s runtime whose handle was dropped (see
/// `crate::join::detach_orphan`).
///
/// # Safety
/// Exclusive access to `core`; not on the stack of a finished fiber whose
/// handle was dropped (any running context is fine: a running fiber is not
/// finished).
#[inline]
pub(crate) unsafe fn adopt(core: *mut Core) {
    if FLAGGED.load(Ordering::Acquire) != 0 {
        // SAFETY: forwarded contract.
        unsafe { adopt_dropped(core) }
    }
}

/// [`adopt`]'s work when some runtime's handle was dropped.
///
/// # Safety
/// As for [`adopt`].
#[cold]
#[inline(never)]
unsafe fn adopt_dropped(core: *mut Core) {
    // SAFETY: plain reads of the runtime's own entry number and capacity.
    let (slot, cap) = unsafe { ((*core).live_slot, (*core).cap) };
    let Some(e) = LIVE.get(slot as usize) else { return };
    // Clear the flag first: a handle that sets its bit after the scan below
    // raises it again for the next call.
    let word = e.word.fetch_and(!DROPPED, Ordering::Acquire);
    if word & DROPPED == 0 {
        return; // another runtime's
    }
    FLAGGED.fetch_sub(1, Ordering::Relaxed);
    let base = (word & !DROPPED) as usize;
    for (k, w) in POOL[base..base + words_for(cap)].iter().enumerate() {
        // What this word still names while its fibers are adopted: a result's
        // `Drop` may panic inside `detach_orphan`, and the unwind must not
        // take the others with it (review 12: their results were never
        // dropped, their slots never freed).
        let mut pending = Pending { entry: e, word: w, bits: w.swap(0, Ordering::Acquire), done: false };
        while pending.bits != 0 {
            let index = k * 64 + pending.bits.trailing_zeros() as usize;
            pending.bits &= pending.bits - 1;
            // SAFETY: forwarded contract; the bit names a fiber of this
            // runtime whose handle was dropped (module docs).
            unsafe { crate::join::detach_orphan(core, index as u32) };
        }
        pending.done = true;
    }
}

/// Dropped handles [`adopt_dropped`] took out of a pool word and has not
/// adopted yet. Dropped before `done` only by an unwind: it puts the bits it
/// still holds back and raises the entry's flag, so the next adoption point
/// finds them and the words not visited yet (which kept theirs).
struct Pending<'a> {
    entry: &'a Live,
    word: &'a AtomicU64,
    bits: u64,
    /// The word's fibers were all adopted.
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.word.fetch_or(self.bits, Ordering::Release);
            if self.entry.word.fetch_or(DROPPED, Ordering::Release) & DROPPED == 0 {
                FLAGGED.fetch_add(1, Ordering::Release);
            }
        }
    }
}
