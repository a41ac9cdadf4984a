//! The channel's errors: each one that refuses a value holds it
//! (heapless style), all `Debug` (without needing `T: Debug`), `Display` and
//! `Error`.

use core::fmt;

use crate::sync::WrongRuntime;

/// Why [`Channel::send`](super::Channel::send) / [`Channel::send_timeout`](super::Channel::send_timeout) failed; holds the value.
#[derive(PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum SendError<T> {
    /// The channel is closed (or was closed while the sender waited).
    Closed(T),
    /// No room within the timeout (`send_timeout` only).
    TimedOut(T),
    /// The channel is bound to another runtime.
    WrongRuntime(T),
    /// This fiber is unwinding (a panic or a cancellation is running its destructors) and the wait would have blocked. A fiber never switches while it unwinds: std's "this thread is panicking" state belongs to the OS thread, so every other fiber would observe it.
    Unwinding(T),
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. The value is handed back.
    Cancelled(T),
}

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v)
            | SendError::TimedOut(v)
            | SendError::WrongRuntime(v)
            | SendError::Unwinding(v)
            | SendError::Cancelled(v) => v,
        }
    }
}

/// Why [`Channel::try_send`](super::Channel::try_send) failed; holds the value.
#[derive(PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum TrySendError<T> {
    /// The channel is full.
    Full(T),
    /// The channel is closed.
    Closed(T),
    /// The channel is bound to another runtime.
    WrongRuntime(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) | TrySendError::WrongRuntime(v) => v,
        }
    }
}

/// Why [`Channel::recv`](super::Channel::recv) / [`Channel::recv_timeout`](super::Channel::recv_timeout) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecvError {
    /// The channel is closed and drained.
    Closed,
    /// No value within the timeout (`recv_timeout` only).
    TimedOut,
    /// The channel is bound to another runtime.
    WrongRuntime,
    /// This fiber is unwinding (a panic or a cancellation is running its destructors) and the wait would have blocked. A fiber never switches while it unwinds: std's "this thread is panicking" state belongs to the OS thread, so every other fiber would observe it.
    Unwinding,
    /// This fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel)): the
    /// wait ended early, or never began. Nothing was handed to it.
    Cancelled,
}

/// Why [`Channel::try_recv`](super::Channel::try_recv) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TryRecvError {
    /// No value is queued now.
    Empty,
    /// The channel is closed and drained.
    Closed,
    /// The channel is bound to another runtime.
    WrongRuntime,
}

impl From<WrongRuntime> for RecvError {
    fn from(_: WrongRuntime) -> Self {
        RecvError::WrongRuntime
    }
}

impl From<WrongRuntime> for TryRecvError {
    fn from(_: WrongRuntime) -> Self {
        TryRecvError::WrongRuntime
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed(_) => "Closed(..)",
            SendError::TimedOut(_) => "TimedOut(..)",
            SendError::WrongRuntime(_) => "WrongRuntime(..)",
            SendError::Unwinding(_) => "Unwinding(..)",
            SendError::Cancelled(_) => "Cancelled(..)",
        })
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::Closed(_) => "sending on a closed channel",
            SendError::TimedOut(_) => "timed out sending on a full channel",
            SendError::WrongRuntime(_) => "channel is bound to another runtime",
            SendError::Unwinding(_) => "cannot block sending while the fiber unwinds",
            SendError::Cancelled(_) => "the sending fiber was cancelled",
        })
    }
}

impl<T> core::error::Error for SendError<T> {}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "Full(..)",
            TrySendError::Closed(_) => "Closed(..)",
            TrySendError::WrongRuntime(_) => "WrongRuntime(..)",
        })
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrySendError::Full(_) => "channel is full",
            TrySendError::Closed(_) => "sending on a closed channel",
            TrySendError::WrongRuntime(_) => "channel is bound to another runtime",
        })
    }
}

impl<T> core::error::Error for TrySendError<T> {}

impl fmt::Display for RecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecvError::Closed => "receiving on a closed, empty channel",
            RecvError::TimedOut => "timed out receiving on an empty channel",
            RecvError::WrongRuntime => "channel is bound to another runtime",
            RecvError::Unwinding => "cannot block receiving while the fiber unwinds",
            RecvError::Cancelled => "the receiving fiber was cancelled",
        })
    }
}

impl core::error::Error for RecvError {}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TryRecvError::Empty => "channel is empty",
            TryRecvError::Closed => "receiving on a closed, empty channel",
            TryRecvError::WrongRuntime => "channel is bound to another runtime",
        })
    }
}

impl core::error::Error for TryRecvError {}
