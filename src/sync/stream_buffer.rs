//! A single-producer single-consumer byte stream with a trigger level
//! (FreeRTOS's stream buffer), writable from interrupt handlers.
//!
//! ```
//! use filament::sync::StreamBuffer;
//! use filament::{Runtime, StaticStack};
//!
//! // 16 bytes inline; the reader wakes once 4 bytes are there.
//! static UART: StreamBuffer<16> = StreamBuffer::new().with_trigger_level(4).named("uart");
//! static STACK: StaticStack<16384> = StaticStack::new();
//! static RT: Runtime<'static, 1> = Runtime::new();
//!
//! // An interrupt handler (or another thread) writes what fits, never blocks:
//! assert_eq!(UART.send_from_isr(b"hello"), Ok(5));
//! let rx = RT
//!     .spawn(STACK.claim().unwrap(), |fib| {
//!         let mut line = [0u8; 8];
//!         let n = UART.receive(fib, &mut line).unwrap(); // 5 >= 4 bytes: at once
//!         (n, line)
//!     })
//!     .unwrap();
//! RT.run().unwrap();
//! let (n, line) = RT.take(rx).unwrap();
//! assert_eq!(&line[..n], b"hello");
//! ```
//!
//! A buffer needs at least one byte:
//!
//! ```compile_fail
//! static NOTHING: filament::sync::StreamBuffer<0> = filament::sync::StreamBuffer::new();
//! ```
//!
//! # Who may call what
//!
//! * **Writer side**: [`send`](StreamBuffer::send) /
//!   [`send_timeout`](StreamBuffer::send_timeout) (a fiber; blocks while the
//!   buffer is full), [`try_send`](StreamBuffer::try_send) (a fiber, never
//!   blocks), [`send_from_isr`](StreamBuffer::send_from_isr) (anywhere:
//!   interrupt handler, signal handler, another OS thread, a fiber).
//! * **Reader side**: [`receive`](StreamBuffer::receive) /
//!   [`receive_timeout`](StreamBuffer::receive_timeout) (a fiber; blocks
//!   until the trigger level is reached), [`try_receive`](StreamBuffer::try_receive),
//!   [`receive_from_isr`](StreamBuffer::receive_from_isr) (anywhere).
//! * **One writer and one reader at a time, enforced**: each side has a
//!   claim flag taken with one atomic swap for the length of the call (for a
//!   blocking call, while the fiber waits too). A second writer (or reader)
//!   meanwhile — another thread, an interrupt that preempts a writing fiber,
//!   another fiber while one is blocked in `send` — gets [`Busy`] (or
//!   [`StreamError::Busy`]) and nothing is written or read. Concurrent
//!   writers therefore never corrupt the stream; they are refused.
//!
//! # In interrupt context
//!
//! `send_from_isr` (and likewise `receive_from_isr`) does exactly: one atomic
//! swap (the claim), loads of the two positions, a copy of the bytes that fit
//! into the inline ring, one release store (publish), one SeqCst fence and
//! one load (is a fiber waiting for that much?), and only if one is: one
//! compare-exchange and the raise of the buffer's interrupt source (one
//! atomic swap of its flag, one atomic add on the program-wide epoch that idle
//! hooks watch, under `std` one atomic load and, only if a host idle hook
//! sleeps, one `futex` wake system call); then one release store (the
//! claim). No lock, no allocation, never blocks, no runtime memory touched.
//!
//! # Waiting fibers and deadlock reports
//!
//! Each side (reader, writer) has an interrupt source inside the buffer, the
//! mechanism [`IrqSignal`](crate::IrqSignal) is built on. A blocked fiber
//! waits as an interrupt waiter; the peer that publishes what it waits for
//! raises the source, and the runtime wakes the fiber at its next poll point
//! (any yield, block or idle turn). A peer that is a fiber of the same
//! runtime wakes it directly instead. A waiter shows as
//! [`WaitReason::Irq`](crate::WaitReason::Irq) with the buffer's name in
//! [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in), the runtime's
//! `Debug` table, trace events and gdb's `info fibers`; and like every
//! interrupt waiter it keeps the runtime idling (polling, or in its idle hook)
//! rather than reporting a deadlock, since an interrupt may still write
//! (always: unlike a [`Semaphore`](super::Semaphore) or an
//! [`Event`](super::Event), which count their waiters only once declared
//! interrupt-capable, a buffer exists to be written from outside, and its
//! reader usually blocks before the first interrupt). A
//! side's source registers with the runtime of the first fiber that blocks on
//! it, for that runtime's run (`WrongRuntime` for another runtime's blocking
//! calls meanwhile; the non-blocking forms still work). The byte ring itself
//! belongs to nobody, so the writer and the reader may be fibers of two
//! runtimes on two threads.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::choice_point;
use super::ring::{Busy, Ring};
use super::ring_wait::{WaitFailed, WaitSide};
use crate::handle::Fiber;
use crate::time::Ticks;

/// A single-producer single-consumer byte stream of `N` bytes inline, with a
/// trigger level (see [the module docs](self)).
///
/// * Bytes come out in the order they went in, without boundaries (use
///   [`MessageBuffer`](super::MessageBuffer) to keep them).
/// * A [`receive`](Self::receive) returns once at least the *trigger level*
///   bytes are there (or as many as its buffer holds, if fewer), or when its
///   timeout passes, with whatever arrived by then. (FreeRTOS returns at once
///   when any byte is stored and applies the trigger level only to waking a
///   reader that found the buffer empty; here a receive never returns fewer
///   bytes than the trigger level unless its timeout passed, so a reader that
///   wants "8 bytes or 5 ms" writes exactly that.)
/// * A blocked [`send`](Self::send) writes what fits, then waits for room for
///   the rest; it returns once everything is written or the timeout passes.
/// * `const fn new`: usable in a `static`; all `N` bytes are usable.
pub struct StreamBuffer<const N: usize> {
    ring: Ring<N>,
    /// The reader waits here for bytes.
    data: WaitSide,
    /// The writer waits here for room.
    room: WaitSide,
    trigger: AtomicUsize,
    name: &'static str,
}

impl<const N: usize> StreamBuffer<N> {
    /// An empty buffer with trigger level 1. `const`, for `static`s.
    pub const fn new() -> Self {
        StreamBuffer {
            ring: Ring::new(),
            data: WaitSide::new(),
            room: WaitSide::new(),
            trigger: AtomicUsize::new(1),
            name: "",
        }
    }

    /// Names it: waiters show it in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in), the runtime's
    /// `Debug` table, trace events and gdb. `const`, to chain onto `new`.
    pub const fn named(self, name: &'static str) -> Self {
        StreamBuffer {
            ring: self.ring,
            data: self.data.named(name),
            room: self.room.named(name),
            trigger: self.trigger,
            name,
        }
    }

    /// Sets the trigger level: a blocked reader wakes once `level` bytes are
    /// stored (0 counts as 1, as in FreeRTOS). `const`, to chain onto `new`.
    ///
    /// # Panics
    /// If `level > N` (at compile time in a `static`).
    pub const fn with_trigger_level(self, level: usize) -> Self {
        assert!(level <= N, "trigger level above the buffer's capacity");
        StreamBuffer { trigger: AtomicUsize::new(if level == 0 { 1 } else { level }), ..self }
    }

    /// Changes the trigger level (FreeRTOS's `xStreamBufferSetTriggerLevel`;
    /// 0 counts as 1). A reader already blocked keeps the level it started
    /// with. `level > N` is refused with [`TriggerLevelError`], changing nothing.
    pub fn set_trigger_level(&self, level: usize) -> Result<(), TriggerLevelError> {
        if level > N {
            return Err(TriggerLevelError { level, capacity: N });
        }
        self.trigger.store(level.max(1), Ordering::Relaxed);
        Ok(())
    }

    /// The trigger level.
    pub fn trigger_level(&self) -> usize {
        self.trigger.load(Ordering::Relaxed)
    }

    /// The capacity in bytes, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The name given by [`named`](Self::named) ("" if none).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Bytes stored now (FreeRTOS's `xStreamBufferBytesAvailable`). A
    /// snapshot: the other side may change it right after.
    pub fn bytes_available(&self) -> usize {
        self.ring.len()
    }

    /// Free bytes now (FreeRTOS's `xStreamBufferSpacesAvailable`); a snapshot.
    pub fn spaces_available(&self) -> usize {
        N - self.ring.len()
    }

    /// Whether no byte is stored (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ring.len() == 0
    }

    /// Whether no byte is free (a snapshot).
    pub fn is_full(&self) -> bool {
        self.ring.len() == N
    }

    /// Empties the buffer (FreeRTOS's `xStreamBufferReset`). [`Busy`], and
    /// nothing changes, while a writer or reader is inside a call (including
    /// a fiber blocked in one). Callable from anywhere.
    pub fn reset(&self) -> Result<(), Busy> {
        self.ring.reset()
    }

    /// Writes as much of `data` as fits, without blocking, from anywhere:
    /// an interrupt handler, another OS thread, a fiber (exactly what it does
    /// in interrupt context is in [the module docs](self)). Returns how many
    /// bytes were written (0 when full), or [`Busy`] if another writer is in
    /// a call.
    pub fn send_from_isr(&self, data: &[u8]) -> Result<usize, Busy> {
        self.write_now(None, data)
    }

    fn write_now(&self, fib: Option<&Fiber<'_>>, data: &[u8]) -> Result<usize, Busy> {
        let w = self.ring.claim_writer()?;
        let n = w.write_some(data);
        if n > 0 {
            self.data.publish(fib, || N - w.space());
        }
        Ok(n)
    }

    /// Reads up to `out.len()` stored bytes without blocking, from anywhere
    /// (FreeRTOS's `xStreamBufferReceiveFromISR`; the trigger level does not
    /// apply). Returns how many (0 when empty), or [`Busy`] if another reader
    /// is in a call.
    pub fn receive_from_isr(&self, out: &mut [u8]) -> Result<usize, Busy> {
        self.read_now(None, out)
    }

    fn read_now(&self, fib: Option<&Fiber<'_>>, out: &mut [u8]) -> Result<usize, Busy> {
        let r = self.ring.claim_reader()?;
        let n = r.read_some(out);
        if n > 0 {
            self.room.publish(fib, || N - r.available());
        }
        Ok(n)
    }

    /// [`send_from_isr`](Self::send_from_isr) from a fiber: the same, plus a
    /// schedule-exploration point.
    pub fn try_send(&self, fib: &Fiber<'_>, data: &[u8]) -> Result<usize, Busy> {
        let n = self.write_now(Some(fib), data)?;
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(n)
    }

    /// [`receive_from_isr`](Self::receive_from_isr) from a fiber: the same,
    /// plus a schedule-exploration point.
    pub fn try_receive(&self, fib: &Fiber<'_>, out: &mut [u8]) -> Result<usize, Busy> {
        let n = self.read_now(Some(fib), out)?;
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(n)
    }

    /// Writes all of `data`, blocking the fiber while the buffer is full
    /// (FreeRTOS's `xStreamBufferSend` with `portMAX_DELAY`). Returns
    /// `data.len()`; or, if the wait ends otherwise (the fiber unwinds) after
    /// some bytes were written, how many. Fails with
    /// [`StreamError::Busy`] (another writer is in a call),
    /// [`StreamError::WrongRuntime`] or [`StreamError::Unwinding`] when
    /// nothing was written.
    pub fn send<'s>(&'s self, fib: &Fiber<'s>, data: &[u8]) -> Result<usize, StreamError> {
        self.send_until(fib, data, None)
    }

    /// Like [`send`](Self::send), giving up after `timeout` ticks: returns how
    /// many bytes were written by then (FreeRTOS semantics), or
    /// [`StreamError::TimedOut`] if none was.
    pub fn send_timeout<'s>(&'s self, fib: &Fiber<'s>, data: &[u8], timeout: Ticks) -> Result<usize, StreamError> {
        self.send_until(fib, data, Some(fib.now().saturating_add(timeout)))
    }

    fn send_until<'s>(&'s self, fib: &Fiber<'s>, data: &[u8], deadline: Option<Ticks>) -> Result<usize, StreamError> {
        let w = self.ring.claim_writer()?;
        let mut done = 0;
        loop {
            let n = w.write_some(&data[done..]);
            if n > 0 {
                done += n;
                self.data.publish(Some(fib), || N - w.space());
            }
            if done == data.len() {
                break;
            }
            // Full: room for one byte is worth waking for (waiting for more
            // could deadlock against a reader waiting for its trigger level).
            if let Err(e) = self.room.wait_for(fib, 1, || w.space(), deadline) {
                if done > 0 {
                    break;
                }
                return Err(e.into());
            }
        }
        drop(w);
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(done)
    }

    /// Reads up to `out.len()` bytes, blocking the fiber until at least the
    /// trigger level (or `out.len()`, if smaller) are stored (FreeRTOS's
    /// `xStreamBufferReceive` with `portMAX_DELAY`). Returns how many were
    /// read (`0` only for an empty `out`). Fails with
    /// [`StreamError::Busy`] (another reader is in a call),
    /// [`StreamError::WrongRuntime`] or [`StreamError::Unwinding`].
    pub fn receive<'s>(&'s self, fib: &Fiber<'s>, out: &mut [u8]) -> Result<usize, StreamError> {
        self.receive_until(fib, out, None)
    }

    /// Like [`receive`](Self::receive), giving up after `timeout` ticks: then
    /// it reads whatever is stored, even below the trigger level, and fails
    /// with [`StreamError::TimedOut`] only if nothing is.
    pub fn receive_timeout<'s>(
        &'s self,
        fib: &Fiber<'s>,
        out: &mut [u8],
        timeout: Ticks,
    ) -> Result<usize, StreamError> {
        self.receive_until(fib, out, Some(fib.now().saturating_add(timeout)))
    }

    fn receive_until<'s>(
        &'s self,
        fib: &Fiber<'s>,
        out: &mut [u8],
        deadline: Option<Ticks>,
    ) -> Result<usize, StreamError> {
        let r = self.ring.claim_reader()?;
        if out.is_empty() {
            return Ok(0);
        }
        let need = self.trigger.load(Ordering::Relaxed).clamp(1, out.len());
        match self.data.wait_for(fib, need, || r.available(), deadline) {
            Ok(()) | Err(WaitFailed::TimedOut) => {}
            Err(e) => return Err(e.into()),
        }
        let n = r.read_some(out);
        if n == 0 {
            return Err(StreamError::TimedOut);
        }
        self.room.publish(Some(fib), || N - r.available());
        drop(r);
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(n)
    }
}

impl<const N: usize> Default for StreamBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for StreamBuffer<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBuffer")
            .field("name", &self.name)
            .field("capacity", &N)
            .field("bytes_available", &self.bytes_available())
            .field("trigger_level", &self.trigger_level())
            .finish()
    }
}

/// Why a blocking [`StreamBuffer`] call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamError {
    /// The timeout passed with nothing written (or nothing to read).
    TimedOut,
    /// Another writer (for a send) or reader (for a receive) is in a call:
    /// the buffer is single-producer single-consumer.
    Busy,
    /// The side's interrupt source is registered with another runtime (a
    /// fiber of it blocked on this side during its current run).
    WrongRuntime,
    /// The fiber is unwinding and the call would have blocked.
    Unwinding,
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::TimedOut => f.write_str("timed out"),
            StreamError::Busy => fmt::Display::fmt(&Busy, f),
            StreamError::WrongRuntime => fmt::Display::fmt(&super::WrongRuntime, f),
            StreamError::Unwinding => f.write_str("cannot block while the fiber unwinds"),
            StreamError::Cancelled => f.write_str("the waiting fiber was cancelled"),
        }
    }
}

impl core::error::Error for StreamError {}

impl From<Busy> for StreamError {
    fn from(_: Busy) -> Self {
        StreamError::Busy
    }
}

impl From<WaitFailed> for StreamError {
    fn from(e: WaitFailed) -> Self {
        match e {
            WaitFailed::TimedOut => StreamError::TimedOut,
            WaitFailed::WrongRuntime => StreamError::WrongRuntime,
            WaitFailed::Unwinding => StreamError::Unwinding,
            WaitFailed::Cancelled => StreamError::Cancelled,
        }
    }
}

/// [`StreamBuffer::set_trigger_level`] was given a level above the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TriggerLevelError {
    /// The refused level.
    pub level: usize,
    /// The buffer's capacity, the highest valid level.
    pub capacity: usize,
}

impl fmt::Display for TriggerLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "trigger level {} above the buffer's capacity {}", self.level, self.capacity)
    }
}

impl core::error::Error for TriggerLevelError {}
