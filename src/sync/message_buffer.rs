//! A single-producer single-consumer buffer of variable-length messages
//! (FreeRTOS's message buffer), writable from interrupt handlers.
//!
//! ```
//! use filament::sync::{MessageBuffer, MessageError};
//! use filament::{Runtime, StaticStack};
//!
//! static FRAMES: MessageBuffer<64> = MessageBuffer::new().named("frames");
//! static STACK: StaticStack<16384> = StaticStack::new();
//! static RT: Runtime<'static, 1> = Runtime::new();
//!
//! // From an interrupt handler or another thread: all or nothing, never blocks.
//! FRAMES.send_from_isr(b"ping").unwrap();
//! FRAMES.send_from_isr(b"a longer frame").unwrap();
//! let rx = RT
//!     .spawn(STACK.claim().unwrap(), |fib| {
//!         let mut small = [0u8; 4];
//!         let n = FRAMES.receive(fib, &mut small).unwrap();
//!         assert_eq!(&small[..n], b"ping");
//!         // Too small for the next message: a typed error, nothing lost.
//!         assert_eq!(FRAMES.receive(fib, &mut small), Err(MessageError::BufferTooSmall { needed: 14 }));
//!         let mut big = [0u8; 32];
//!         let n = FRAMES.receive(fib, &mut big).unwrap();
//!         big[..n].to_vec()
//!     })
//!     .unwrap();
//! RT.run().unwrap();
//! assert_eq!(RT.take(rx).unwrap(), b"a longer frame");
//! ```
//!
//! Each message is stored as a 4-byte little-endian length followed by its
//! bytes, in the same lock-free ring as [`StreamBuffer`](super::StreamBuffer)
//! (same rules: one writer and one reader at a time, enforced with [`Busy`];
//! the same interrupt-context behaviour, see [`stream_buffer`](super::stream_buffer)).
//! A message is published with one store after all its bytes are in, so a
//! reader sees it whole or not at all; a writer writes all of it or nothing.
//!
//! `N` must exceed the header, or the buffer does not compile:
//!
//! ```compile_fail
//! static NO_ROOM: filament::sync::MessageBuffer<4> = filament::sync::MessageBuffer::new();
//! ```

use core::fmt;

use super::choice_point;
use super::ring::{Busy, Reader, Ring};
use super::ring_wait::{WaitFailed, WaitSide};
use crate::handle::Fiber;
use crate::time::Ticks;

/// Bytes of the length prefix stored before each message.
pub const MESSAGE_HEADER: usize = 4;

/// A single-producer single-consumer buffer of messages in `N` bytes inline
/// (each message takes its length plus [`MESSAGE_HEADER`] bytes); see
/// [the module docs](self).
///
/// * Messages come out whole, in the order they went in.
/// * A send writes all of a message or nothing; a blocked
///   [`send`](Self::send) waits until the whole message fits.
/// * A receive into a buffer too small for the next message fails with
///   [`MessageError::BufferTooSmall`] and leaves the message where it is.
/// * `const fn new`: usable in a `static`. `N` must exceed `MESSAGE_HEADER`.
pub struct MessageBuffer<const N: usize> {
    ring: Ring<N>,
    /// The reader waits here for a message.
    data: WaitSide,
    /// The writer waits here for room for its message.
    room: WaitSide,
    name: &'static str,
}

impl<const N: usize> MessageBuffer<N> {
    /// The longest message it can ever hold: `min(N - MESSAGE_HEADER, u32::MAX)`.
    pub const MAX_MESSAGE: usize = {
        assert!(N > MESSAGE_HEADER, "a MessageBuffer needs more than MESSAGE_HEADER bytes");
        let m = N - MESSAGE_HEADER;
        if m > u32::MAX as usize { u32::MAX as usize } else { m }
    };

    /// An empty buffer. `const`, for `static`s.
    pub const fn new() -> Self {
        let _ = Self::MAX_MESSAGE; // evaluates the capacity check
        MessageBuffer { ring: Ring::new(), data: WaitSide::new(), room: WaitSide::new(), name: "" }
    }

    /// Names it: waiters show it in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in), the runtime's
    /// `Debug` table, trace events and gdb. `const`, to chain onto `new`.
    pub const fn named(self, name: &'static str) -> Self {
        MessageBuffer { ring: self.ring, data: self.data.named(name), room: self.room.named(name), name }
    }

    /// The capacity in bytes (headers included), `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The name given by [`named`](Self::named) ("" if none).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// Stored bytes, headers included (a snapshot).
    pub fn bytes_available(&self) -> usize {
        self.ring.len()
    }

    /// The longest message that would fit now (FreeRTOS's
    /// `xMessageBufferSpacesAvailable`: free bytes less one header); a snapshot.
    pub fn spaces_available(&self) -> usize {
        (N - self.ring.len()).saturating_sub(MESSAGE_HEADER).min(Self::MAX_MESSAGE)
    }

    /// Whether no message is stored (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.ring.len() == 0
    }

    /// The length of the next message, without taking it (FreeRTOS's
    /// `xMessageBufferNextLengthBytes`); `Ok(None)` when empty, [`Busy`] if
    /// a reader is in a call.
    pub fn next_message_len(&self) -> Result<Option<usize>, Busy> {
        let r = self.ring.claim_reader()?;
        Ok(Self::peek_len(&r))
    }

    /// Removes every message (FreeRTOS's `xMessageBufferReset`). [`Busy`], and
    /// nothing changes, while a writer or reader is inside a call.
    pub fn reset(&self) -> Result<(), Busy> {
        self.ring.reset()
    }

    fn peek_len(r: &Reader<'_, N>) -> Option<usize> {
        if r.available() == 0 {
            return None;
        }
        let mut h = [0u8; MESSAGE_HEADER];
        r.peek(0, &mut h);
        Some(u32::from_le_bytes(h) as usize)
    }

    /// Writes `msg` whole if it fits now, from anywhere (interrupt handler,
    /// another OS thread, a fiber); never blocks. Fails with
    /// [`MessageError::TooLarge`] (never fits), [`MessageError::Full`] (not
    /// now) or [`MessageError::Busy`] (another writer is in a call); nothing
    /// is written then.
    pub fn send_from_isr(&self, msg: &[u8]) -> Result<(), MessageError> {
        self.write_now(None, msg)
    }

    fn write_now(&self, fib: Option<&Fiber<'_>>, msg: &[u8]) -> Result<(), MessageError> {
        let need = Self::need(msg)?;
        let w = self.ring.claim_writer()?;
        if w.space() < need {
            return Err(MessageError::Full);
        }
        Self::write(&w, msg);
        self.data.publish(fib, || N - w.space());
        Ok(())
    }

    /// Takes the next message into `out` if there is one, from anywhere;
    /// never blocks. Returns its length. Fails with [`MessageError::Empty`],
    /// [`MessageError::BufferTooSmall`] (the message stays) or
    /// [`MessageError::Busy`] (another reader is in a call).
    pub fn receive_from_isr(&self, out: &mut [u8]) -> Result<usize, MessageError> {
        self.read_now(None, out)
    }

    fn read_now(&self, fib: Option<&Fiber<'_>>, out: &mut [u8]) -> Result<usize, MessageError> {
        let r = self.ring.claim_reader()?;
        self.take(fib, &r, out)
    }

    /// [`send_from_isr`](Self::send_from_isr) from a fiber, plus a
    /// schedule-exploration point.
    pub fn try_send(&self, fib: &Fiber<'_>, msg: &[u8]) -> Result<(), MessageError> {
        self.write_now(Some(fib), msg)?;
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(())
    }

    /// [`receive_from_isr`](Self::receive_from_isr) from a fiber, plus a
    /// schedule-exploration point.
    pub fn try_receive(&self, fib: &Fiber<'_>, out: &mut [u8]) -> Result<usize, MessageError> {
        let n = self.read_now(Some(fib), out)?;
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(n)
    }

    /// Writes `msg` whole, blocking the fiber until it fits. Fails with
    /// [`MessageError::TooLarge`], [`MessageError::Busy`],
    /// [`MessageError::WrongRuntime`] or [`MessageError::Unwinding`], writing
    /// nothing.
    pub fn send<'s>(&'s self, fib: &Fiber<'s>, msg: &[u8]) -> Result<(), MessageError> {
        self.send_until(fib, msg, None)
    }

    /// Like [`send`](Self::send), giving up with [`MessageError::TimedOut`]
    /// (nothing written) if the message does not fit within `timeout` ticks.
    pub fn send_timeout<'s>(&'s self, fib: &Fiber<'s>, msg: &[u8], timeout: Ticks) -> Result<(), MessageError> {
        self.send_until(fib, msg, Some(fib.now().saturating_add(timeout)))
    }

    fn send_until<'s>(&'s self, fib: &Fiber<'s>, msg: &[u8], deadline: Option<Ticks>) -> Result<(), MessageError> {
        let need = Self::need(msg)?;
        let w = self.ring.claim_writer()?;
        self.room.wait_for(fib, need, || w.space(), deadline)?;
        Self::write(&w, msg);
        self.data.publish(Some(fib), || N - w.space());
        drop(w);
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(())
    }

    /// Takes the next message into `out`, blocking the fiber while there is
    /// none; returns its length. Fails with [`MessageError::BufferTooSmall`]
    /// (the message stays), [`MessageError::Busy`],
    /// [`MessageError::WrongRuntime`] or [`MessageError::Unwinding`].
    pub fn receive<'s>(&'s self, fib: &Fiber<'s>, out: &mut [u8]) -> Result<usize, MessageError> {
        self.receive_until(fib, out, None)
    }

    /// Like [`receive`](Self::receive), giving up with
    /// [`MessageError::TimedOut`] if no message comes within `timeout` ticks.
    pub fn receive_timeout<'s>(
        &'s self,
        fib: &Fiber<'s>,
        out: &mut [u8],
        timeout: Ticks,
    ) -> Result<usize, MessageError> {
        self.receive_until(fib, out, Some(fib.now().saturating_add(timeout)))
    }

    fn receive_until<'s>(
        &'s self,
        fib: &Fiber<'s>,
        out: &mut [u8],
        deadline: Option<Ticks>,
    ) -> Result<usize, MessageError> {
        let r = self.ring.claim_reader()?;
        // Any stored byte means a whole message: they are published at once.
        self.data.wait_for(fib, 1, || r.available(), deadline)?;
        let n = self.take(Some(fib), &r, out)?;
        drop(r);
        // SAFETY: `fib` is the running fiber of its core.
        unsafe { choice_point(fib.core_ptr()) };
        Ok(n)
    }

    /// Room a message needs, or `TooLarge`.
    fn need(msg: &[u8]) -> Result<usize, MessageError> {
        if msg.len() > Self::MAX_MESSAGE {
            return Err(MessageError::TooLarge { len: msg.len(), max: Self::MAX_MESSAGE });
        }
        Ok(MESSAGE_HEADER + msg.len())
    }

    /// Writes header and body with one publication (room checked by the caller).
    fn write(w: &super::ring::Writer<'_, N>, msg: &[u8]) {
        // MAX_MESSAGE <= u32::MAX: the length fits.
        let h = (msg.len() as u32).to_le_bytes();
        w.write_all(&[&h, msg]);
    }

    /// Moves the next message into `out` and tells a waiting writer.
    fn take(&self, fib: Option<&Fiber<'_>>, r: &Reader<'_, N>, out: &mut [u8]) -> Result<usize, MessageError> {
        let len = Self::peek_len(r).ok_or(MessageError::Empty)?;
        if len > out.len() {
            return Err(MessageError::BufferTooSmall { needed: len });
        }
        r.peek(MESSAGE_HEADER, &mut out[..len]);
        r.consume(MESSAGE_HEADER + len);
        self.room.publish(fib, || N - r.available());
        Ok(len)
    }
}

impl<const N: usize> Default for MessageBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for MessageBuffer<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBuffer")
            .field("name", &self.name)
            .field("capacity", &N)
            .field("bytes_available", &self.bytes_available())
            .finish()
    }
}

/// Why a [`MessageBuffer`] call failed. Nothing was written or taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// The message can never fit (`len > max`, see [`MessageBuffer::MAX_MESSAGE`]).
    TooLarge {
        /// The message's length.
        len: usize,
        /// The longest message the buffer can hold.
        max: usize,
    },
    /// No room for the message now (non-blocking sends).
    Full,
    /// No message stored (non-blocking receives).
    Empty,
    /// The next message is longer than the receive buffer; it stays stored.
    BufferTooSmall {
        /// The next message's length.
        needed: usize,
    },
    /// The timeout passed first.
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

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::TooLarge { len, max } => write!(f, "message of {len} bytes exceeds the maximum {max}"),
            MessageError::Full => f.write_str("no room for the message"),
            MessageError::Empty => f.write_str("no message stored"),
            MessageError::BufferTooSmall { needed } => {
                write!(f, "receive buffer too small: next message has {needed} bytes")
            }
            MessageError::TimedOut => f.write_str("timed out"),
            MessageError::Busy => fmt::Display::fmt(&Busy, f),
            MessageError::WrongRuntime => fmt::Display::fmt(&super::WrongRuntime, f),
            MessageError::Unwinding => f.write_str("cannot block while the fiber unwinds"),
            MessageError::Cancelled => f.write_str("the waiting fiber was cancelled"),
        }
    }
}

impl core::error::Error for MessageError {}

impl From<Busy> for MessageError {
    fn from(_: Busy) -> Self {
        MessageError::Busy
    }
}

impl From<WaitFailed> for MessageError {
    fn from(e: WaitFailed) -> Self {
        match e {
            WaitFailed::TimedOut => MessageError::TimedOut,
            WaitFailed::WrongRuntime => MessageError::WrongRuntime,
            WaitFailed::Unwinding => MessageError::Unwinding,
            WaitFailed::Cancelled => MessageError::Cancelled,
        }
    }
}
