//! The lock-free single-producer single-consumer byte ring under
//! [`StreamBuffer`](super::StreamBuffer) and [`MessageBuffer`](super::MessageBuffer).
//!
//! # Layout and indices
//!
//! `N` bytes of inline storage (`[UnsafeCell<MaybeUninit<u8>>; N]`) and two
//! positions in `[0, 2N)`: `tail` (the writer's next byte) and `head` (the
//! reader's next byte). The number of stored bytes is `(tail - head) mod 2N`,
//! so all `N` bytes are usable (a full ring has `tail == head + N mod 2N`, an
//! empty one `tail == head`); a position's byte is `buf[pos mod N]`.
//!
//! # One writer, one reader: claims
//!
//! Only the writer moves `tail` and writes bytes; only the reader moves `head`
//! and reads bytes. Both sides can be anywhere (a fiber, an interrupt handler,
//! another OS thread), so "single" is *enforced*: a side must first win its
//! claim flag (`writer` / `reader`, an atomic swap). A second writer (or
//! reader) arriving meanwhile loses the swap and gets a `Busy` error without
//! touching anything; it never waits (an interrupt handler could not wait for
//! the code it interrupted). A claim is dropped by a guard, so also when a
//! blocked fiber unwinds.
//!
//! # Invariants (cited as R1-R3 by the `SAFETY` comments here)
//!
//! * **R1 (one side each)**: only the holder of the writer claim writes
//!   `tail` and writes bytes, and only at free positions `[tail, head + N)`;
//!   only the holder of the reader claim writes `head` and reads bytes, and
//!   only at stored positions `[head, tail)`. The two ranges never overlap, so
//!   the writer and the reader never touch the same byte at the same time.
//! * **R2 (publish)**: the writer writes its bytes, then stores `tail` with
//!   **Release**; the reader loads `tail` with **Acquire** before reading
//!   `[head, tail)`: the bytes written before the store are visible, and the
//!   writer is done with them. A stored byte was written before it was
//!   published, so reading it as `u8` reads initialised memory.
//! * **R3 (free)**: the reader copies bytes out, then stores `head` with
//!   **Release**; the writer loads `head` with **Acquire** before computing
//!   free room: the reader's copies happened before the writer overwrites.
//!
//! Claims are taken with **Acquire** and given back with **Release**, so a
//! later writer sees the previous writer's `tail` (and all it did), and
//! likewise for readers; [`Ring::reset`] holds both claims.

use core::cell::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The buffer's writer or reader side is in use by someone else: a second
/// concurrent writer (or reader) of a single-producer single-consumer buffer.
/// Nothing was written or read. Retry later, or give each side one owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("another writer or reader is using this side of the buffer")
    }
}

impl core::error::Error for Busy {}

/// The byte ring (see the module docs).
pub(crate) struct Ring<const N: usize> {
    buf: [UnsafeCell<MaybeUninit<u8>>; N],
    /// Reader's position in `[0, 2N)`; written only by the reader claim's holder.
    head: AtomicUsize,
    /// Writer's position in `[0, 2N)`; written only by the writer claim's holder.
    tail: AtomicUsize,
    writer: AtomicBool,
    reader: AtomicBool,
}

// SAFETY: the bytes are touched only by the holder of the writer claim
// (free positions) and the holder of the reader claim (stored positions),
// which never overlap (R1), with Release/Acquire on `tail`/`head` ordering
// each hand-over (R2, R3); everything else is atomic.
unsafe impl<const N: usize> Sync for Ring<N> {}

impl<const N: usize> Ring<N> {
    pub(crate) const fn new() -> Self {
        // N <= usize::MAX / 4: positions (< 2N) plus a length (<= N) never overflow.
        const { assert!(N > 0 && N <= usize::MAX / 4, "a buffer needs 1..=usize::MAX / 4 bytes") };
        Ring {
            buf: [const { UnsafeCell::new(MaybeUninit::uninit()) }; N],
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
            writer: AtomicBool::new(false),
            reader: AtomicBool::new(false),
        }
    }

    /// `pos + n` in `[0, 2N)` (`pos < 2N`, `n <= N`).
    #[inline]
    fn advance(pos: usize, n: usize) -> usize {
        let p = pos + n; // < 3N: no overflow (N <= usize::MAX / 4)
        if p >= 2 * N { p - 2 * N } else { p }
    }

    /// Stored bytes between two positions.
    #[inline]
    fn distance(head: usize, tail: usize) -> usize {
        if tail >= head { tail - head } else { tail + 2 * N - head }
    }

    /// Stored bytes now (a snapshot: either side may move right after).
    pub(crate) fn len(&self) -> usize {
        // Acquire both: a consistent-enough snapshot; clamp against a pair
        // read across a concurrent wrap.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        Self::distance(head, tail).min(N)
    }

    /// Takes the writer claim.
    #[inline]
    pub(crate) fn claim_writer(&self) -> Result<Writer<'_, N>, Busy> {
        if self.writer.swap(true, Ordering::Acquire) {
            return Err(Busy);
        }
        Ok(Writer { ring: self })
    }

    /// Takes the reader claim.
    #[inline]
    pub(crate) fn claim_reader(&self) -> Result<Reader<'_, N>, Busy> {
        if self.reader.swap(true, Ordering::Acquire) {
            return Err(Busy);
        }
        Ok(Reader { ring: self })
    }

    /// Empties the ring if nobody writes or reads right now (both claims are
    /// taken for the moment), else `Busy` and nothing changes.
    pub(crate) fn reset(&self) -> Result<(), Busy> {
        let w = self.claim_writer()?;
        let r = self.claim_reader()?;
        // Both claims held: nobody else touches the positions or bytes. The
        // claims' Release (guards' drop) publishes the new positions.
        self.head.store(0, Ordering::Relaxed);
        self.tail.store(0, Ordering::Relaxed);
        drop(r);
        drop(w);
        Ok(())
    }

    /// Pointer to the byte at position `pos` (any position; taken mod N).
    #[inline]
    fn slot(&self, pos: usize) -> *mut u8 {
        let i = if pos >= N { pos - N } else { pos };
        UnsafeCell::raw_get(&self.buf[i]).cast::<u8>()
    }
}

/// The writer claim (see the module docs); released on drop.
pub(crate) struct Writer<'a, const N: usize> {
    ring: &'a Ring<N>,
}

impl<const N: usize> Writer<'_, N> {
    /// Free bytes now (only grows until this writer writes).
    #[inline]
    pub(crate) fn space(&self) -> usize {
        // Acquire: the reader's copies out of the freed bytes happened before.
        let head = self.ring.head.load(Ordering::Acquire);
        // Relaxed: only claim holders write `tail`; the claim's Acquire
        // ordered us after the previous holder.
        let tail = self.ring.tail.load(Ordering::Relaxed);
        N - Ring::<N>::distance(head, tail)
    }

    /// Copies `parts` (concatenated) into the free bytes and publishes them
    /// with one store, so a reader sees all of them or none.
    ///
    /// # Panics
    /// If they do not fit in [`space`](Self::space) (a caller bug).
    pub(crate) fn write_all(&self, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        assert!(total <= self.space(), "ring write beyond its free room");
        let mut pos = self.ring.tail.load(Ordering::Relaxed);
        for part in parts {
            self.copy_in(pos, part);
            pos = Ring::<N>::advance(pos, part.len());
        }
        // Release: publishes the bytes just written (R2).
        self.ring.tail.store(pos, Ordering::Release);
    }

    /// Copies as much of `data` as fits and publishes it; returns how much.
    pub(crate) fn write_some(&self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        if n > 0 {
            self.write_all(&[&data[..n]]);
        }
        n
    }

    /// Copies `data` (`len <= space`) to the free bytes starting at `pos`.
    fn copy_in(&self, pos: usize, data: &[u8]) {
        let i = if pos >= N { pos - N } else { pos };
        let first = data.len().min(N - i);
        // SAFETY: positions [pos, pos + len) are free (`write_all` asserted
        // that the parts fit in `space`, computed after the Acquire load of
        // `head`, R3), so the reader does not touch them, and we hold the
        // writer claim, so no other writer does (R1). The first
        // run is `buf[i..i + first]` (first <= N - i), the wrapped rest
        // `buf[..len - first]` (len <= N); `data` is a separate borrow, so
        // the copies do not overlap.
        unsafe {
            ptr::copy_nonoverlapping(data.as_ptr(), self.ring.slot(i), first);
            if data.len() > first {
                ptr::copy_nonoverlapping(data.as_ptr().add(first), self.ring.slot(0), data.len() - first);
            }
        }
    }
}

impl<const N: usize> Drop for Writer<'_, N> {
    fn drop(&mut self) {
        // Release: the next writer sees our `tail` and bytes.
        self.ring.writer.store(false, Ordering::Release);
    }
}

/// The reader claim (see the module docs); released on drop.
pub(crate) struct Reader<'a, const N: usize> {
    ring: &'a Ring<N>,
}

impl<const N: usize> Reader<'_, N> {
    /// Stored bytes now (only grows until this reader reads).
    #[inline]
    pub(crate) fn available(&self) -> usize {
        // Acquire: the writer's bytes before its `tail` store are visible.
        let tail = self.ring.tail.load(Ordering::Acquire);
        let head = self.ring.head.load(Ordering::Relaxed);
        Ring::<N>::distance(head, tail)
    }

    /// Copies `out.len()` stored bytes starting `skip` bytes after the head
    /// into `out`, without consuming them.
    ///
    /// # Panics
    /// If `skip + out.len()` exceeds [`available`](Self::available) (a caller bug).
    pub(crate) fn peek(&self, skip: usize, out: &mut [u8]) {
        assert!(skip + out.len() <= self.available(), "ring read beyond its stored bytes");
        let head = self.ring.head.load(Ordering::Relaxed);
        let pos = Ring::<N>::advance(head, skip);
        let i = if pos >= N { pos - N } else { pos };
        let first = out.len().min(N - i);
        // SAFETY: positions [pos, pos + len) are stored (checked above, after
        // the Acquire load of `tail` in `available`, R2), hence initialised and
        // not written by the writer until we move `head` past them; we hold
        // the reader claim (R1). Both runs are inside `buf` (as in `copy_in`);
        // `out` is a separate borrow.
        unsafe {
            ptr::copy_nonoverlapping(self.ring.slot(i), out.as_mut_ptr(), first);
            if out.len() > first {
                ptr::copy_nonoverlapping(self.ring.slot(0), out.as_mut_ptr().add(first), out.len() - first);
            }
        }
    }

    /// Frees `n` stored bytes (`n <= available`).
    pub(crate) fn consume(&self, n: usize) {
        debug_assert!(n <= self.available());
        let head = self.ring.head.load(Ordering::Relaxed);
        // Release: our copies out of these bytes happen before the writer
        // reuses them (R3).
        self.ring.head.store(Ring::<N>::advance(head, n), Ordering::Release);
    }

    /// Copies and consumes up to `out.len()` bytes; returns how many.
    pub(crate) fn read_some(&self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.available());
        if n > 0 {
            self.peek(0, &mut out[..n]);
            self.consume(n);
        }
        n
    }
}

impl<const N: usize> Drop for Reader<'_, N> {
    fn drop(&mut self) {
        // Release: the next reader sees our `head`.
        self.ring.reader.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_keeps_bytes() {
        let r = Ring::<5>::new();
        let mut out = [0u8; 5];
        for round in 0..20u8 {
            let w = r.claim_writer().unwrap();
            assert_eq!(w.write_some(&[round, round + 1, round + 2]), 3);
            drop(w);
            let rd = r.claim_reader().unwrap();
            assert_eq!(rd.read_some(&mut out), 3);
            assert_eq!(&out[..3], &[round, round + 1, round + 2]);
        }
        assert_eq!(r.len(), 0);
    }

    #[test]
    fn full_ring_uses_every_byte_and_claims_exclude() {
        let r = Ring::<4>::new();
        let w = r.claim_writer().unwrap();
        assert!(r.claim_writer().is_err());
        assert_eq!(w.write_some(&[1, 2, 3, 4, 5]), 4);
        assert_eq!(w.space(), 0);
        assert_eq!(r.reset(), Err(Busy)); // the writer claim is held
        drop(w);
        assert_eq!(r.len(), 4);
        r.reset().unwrap();
        assert_eq!(r.len(), 0);
    }
}
