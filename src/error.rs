//! Typed errors. Every error that rejects a value gives it back.

use core::fmt;

use crate::fiber::{FiberId, WaitReason};
use crate::join::JoinHandle;
use crate::stack::Stack;

/// Why a spawn failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnErrorKind {
    /// Every slot holds a fiber (running, blocked, or finished and not yet taken).
    Full {
        /// The runtime's capacity.
        capacity: usize,
        /// How many of the slots hold fibers that finished and whose result
        /// nobody took yet (their `JoinHandle`s still own them: take, join or
        /// detach them to free the slots).
        finished_untaken: usize,
    },
    /// The closure and its result, the header and the initial frame do not fit.
    StackTooSmall {
        /// Bytes the fiber needs at least (before its own frames).
        needed: usize,
        /// The stack's usable size.
        size: usize,
    },
    /// Another thread runs the runtime, or a fiber called the runtime directly
    /// (use the [`Fiber`](crate::Fiber) handle inside fibers).
    Busy,
    /// A deadlock left fibers that can never run; the runtime takes no new work.
    Poisoned,
    /// `spawn_local` from a thread other than the one the runtime's local
    /// fibers belong to.
    WrongThread,
}

impl fmt::Display for SpawnErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpawnErrorKind::Full { capacity, finished_untaken: 0 } => write!(f, "runtime full ({capacity} fibers)"),
            SpawnErrorKind::Full { capacity, finished_untaken } => write!(
                f,
                "runtime full ({capacity} fibers; {finished_untaken} of them finished, their results not taken)"
            ),
            SpawnErrorKind::StackTooSmall { needed, size } => {
                write!(f, "stack too small: {size} bytes, fiber needs at least {needed}")
            }
            SpawnErrorKind::Busy => f.write_str("runtime busy (running on another context)"),
            SpawnErrorKind::Poisoned => f.write_str("runtime poisoned by a deadlock"),
            SpawnErrorKind::WrongThread => f.write_str("the runtime's local fibers belong to another thread"),
        }
    }
}

/// A failed spawn. Holds the stack and the closure so nothing is lost.
pub struct SpawnError<'s, F> {
    kind: SpawnErrorKind,
    stack: Stack<'s>,
    closure: F,
}

impl<'s, F> SpawnError<'s, F> {
    pub(crate) fn new(kind: SpawnErrorKind, stack: Stack<'s>, closure: F) -> Self {
        SpawnError { kind, stack, closure }
    }

    /// Why it failed.
    pub fn kind(&self) -> SpawnErrorKind {
        self.kind
    }

    /// The stack and the closure, back in the caller's hands.
    pub fn into_parts(self) -> (Stack<'s>, F) {
        (self.stack, self.closure)
    }
}

impl<F> fmt::Debug for SpawnError<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpawnError").field("kind", &self.kind).field("stack", &self.stack).finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SpawnError<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spawn failed: {}", self.kind)
    }
}

impl<F> core::error::Error for SpawnError<'_, F> {}

/// The message of a fiber's panic (captured under `std`).
#[derive(Clone, PartialEq, Eq)]
pub struct PanicMessage {
    #[cfg(feature = "std")]
    pub(crate) text: std::string::String,
}

impl PanicMessage {
    /// The panic message ("" without `std`, where panics are not caught).
    pub fn as_str(&self) -> &str {
        #[cfg(feature = "std")]
        {
            &self.text
        }
        #[cfg(not(feature = "std"))]
        {
            ""
        }
    }
}

impl fmt::Debug for PanicMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for PanicMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a join or take did not produce the value. Variants that refuse the
/// request give the handle back.
#[non_exhaustive]
pub enum JoinError<T> {
    /// The fiber panicked (`std`); the other fibers kept running.
    Panicked(PanicMessage),
    /// The fiber was cancelled by unwinding: by the runtime after a deadlock,
    /// or by [`Fiber::cancel_unwind`](crate::Fiber::cancel_unwind) (`std`).
    Cancelled,
    /// The fiber has not finished yet (`take` only).
    NotFinished(JoinHandle<T>),
    /// The handle belongs to another runtime.
    WrongRuntime(JoinHandle<T>),
    /// A fiber tried to join itself.
    SelfJoin(JoinHandle<T>),
    /// The runtime is running on another context (`take` only).
    Busy(JoinHandle<T>),
    /// The joining fiber is unwinding and the target has not finished (`join`
    /// only). A fiber never switches while it unwinds: std's "this thread is panicking" state belongs to the OS thread, so every other fiber would observe it.
    Unwinding(JoinHandle<T>),
    /// The joining fiber was cancelled ([`Fiber::cancel`](crate::Fiber::cancel))
    /// before the target finished (`join` only).
    JoinCancelled(JoinHandle<T>),
}

impl JoinError<()> {
    pub(crate) fn cast<T>(self) -> JoinError<T> {
        match self {
            JoinError::Panicked(m) => JoinError::Panicked(m),
            JoinError::Cancelled => JoinError::Cancelled,
            _ => unreachable!("outcomes carry no handle"),
        }
    }
}

impl<T> JoinError<T> {
    /// The handle, if this error gave it back.
    pub fn into_handle(self) -> Option<JoinHandle<T>> {
        match self {
            JoinError::NotFinished(h)
            | JoinError::WrongRuntime(h)
            | JoinError::SelfJoin(h)
            | JoinError::Busy(h)
            | JoinError::Unwinding(h)
            | JoinError::JoinCancelled(h) => Some(h),
            JoinError::Panicked(_) | JoinError::Cancelled => None,
        }
    }

    /// The panic message, if the fiber panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(m) => Some(m.as_str()),
            _ => None,
        }
    }
}

impl<T> fmt::Debug for JoinError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
            JoinError::Cancelled => f.write_str("Cancelled"),
            JoinError::NotFinished(h) => f.debug_tuple("NotFinished").field(h).finish(),
            JoinError::WrongRuntime(h) => f.debug_tuple("WrongRuntime").field(h).finish(),
            JoinError::SelfJoin(h) => f.debug_tuple("SelfJoin").field(h).finish(),
            JoinError::Busy(h) => f.debug_tuple("Busy").field(h).finish(),
            JoinError::Unwinding(h) => f.debug_tuple("Unwinding").field(h).finish(),
            JoinError::JoinCancelled(h) => f.debug_tuple("JoinCancelled").field(h).finish(),
        }
    }
}

impl<T> fmt::Display for JoinError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(m) => write!(f, "fiber panicked: {m}"),
            JoinError::Cancelled => f.write_str("fiber cancelled (unwound)"),
            JoinError::NotFinished(h) => write!(f, "fiber {} has not finished", h.id()),
            JoinError::WrongRuntime(h) => write!(f, "handle {} belongs to another runtime", h.id()),
            JoinError::SelfJoin(h) => write!(f, "fiber {} cannot join itself", h.id()),
            JoinError::Busy(h) => write!(f, "runtime busy; fiber {} not taken", h.id()),
            JoinError::Unwinding(h) => write!(f, "cannot wait for fiber {} while unwinding", h.id()),
            JoinError::JoinCancelled(h) => write!(f, "the joining fiber was cancelled; fiber {} not joined", h.id()),
        }
    }
}

impl<T> core::error::Error for JoinError<T> {}

/// One blocked fiber in a deadlock report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockedFiber {
    /// The fiber.
    pub id: FiberId,
    /// Its name ("" if none).
    pub name: &'static str,
    /// What it waits on.
    pub reason: WaitReason,
    /// The name of the primitive it waits in ("" if unnamed; see e.g.
    /// [`Channel::named`](crate::sync::Channel::named)).
    pub object: &'static str,
}

/// The fibers found blocked when nothing could wake them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadlockReport {
    fibers: heapless::Vec<BlockedFiber, { DeadlockReport::LISTED }>,
    count: usize,
}

impl DeadlockReport {
    /// How many blocked fibers a report lists at most (it counts them all).
    pub const LISTED: usize = 16;

    /// The blocked fibers, in slot order (the first [`LISTED`](Self::LISTED)).
    pub fn fibers(&self) -> &[BlockedFiber] {
        &self.fibers
    }

    /// How many fibers were blocked in all (may exceed `fibers().len()`).
    pub fn count(&self) -> usize {
        self.count
    }

    pub(crate) fn push(&mut self, id: FiberId, name: &'static str, reason: WaitReason, object: &'static str) {
        self.count += 1;
        let _ = self.fibers.push(BlockedFiber { id, name, reason, object });
    }

    /// Adds the fibers of a later deadlock found in the same `run` (after the
    /// fibers cancelled by this one unwound), each fiber once.
    pub(crate) fn merge(&mut self, later: DeadlockReport) {
        let unlisted = later.count.saturating_sub(later.fibers.len());
        for b in later.fibers {
            if !self.fibers.iter().any(|seen| seen.id == b.id) {
                self.count += 1;
                let _ = self.fibers.push(b);
            }
        }
        self.count += unlisted;
    }
}

impl fmt::Display for DeadlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.count == 1 { "" } else { "s" };
        write!(f, "deadlock: {} fiber{s} blocked: ", self.count)?;
        self.write_fibers(f)
    }
}

impl DeadlockReport {
    /// Writes the listed fibers, `; `-separated.
    fn write_fibers(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.fibers.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{} \"{}\" on {}", b.id, b.name, b.reason)?;
            if !b.object.is_empty() {
                write!(f, " \"{}\"", b.object)?;
            }
        }
        let unlisted = self.count.saturating_sub(self.fibers.len());
        if unlisted > 0 {
            write!(f, "; and {unlisted} more")?;
        }
        Ok(())
    }
}

/// Why `run` returned early.
///
/// The deadlock report is stored inline (no heap), so this error is about
/// 2 KiB (16 fibers of 120 bytes: a [`WaitReason`] lists up to 8 sources of a
/// select); the other variants are small.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunError {
    /// Fibers were blocked with nothing left to wake them (no ready fiber, no
    /// timer, no armed interrupt source). Under `std` they were cancelled.
    Deadlock(DeadlockReport),
    /// The runtime is already running (another thread, or a nested call).
    Busy,
    /// An earlier deadlock left fibers that can never run.
    Poisoned,
    /// [`Runtime::run_for`](crate::Runtime::run_for)'s limit passed with
    /// fibers still waiting: the report names them (they were cancelled under
    /// `std`, parked without it, as after a deadlock).
    TimedOut(DeadlockReport),
    /// The runtime holds `spawn_local` fibers (or their results), which
    /// belong to another thread: only that thread may run it.
    WrongThread,
    /// `run` was called while the calling thread unwinds (from a destructor
    /// during a panic): fibers could not switch without observing that panic
    /// (std only).
    Unwinding,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Deadlock(r) => fmt::Display::fmt(r, f),
            RunError::TimedOut(r) => {
                let s = if r.count() == 1 { "" } else { "s" };
                write!(f, "run_for's limit passed with {} fiber{s} still waiting: ", r.count())?;
                r.write_fibers(f)
            }
            RunError::Busy => f.write_str("runtime already running"),
            RunError::Poisoned => f.write_str("runtime poisoned by an earlier deadlock"),
            RunError::Unwinding => f.write_str("cannot run fibers while the calling thread unwinds"),
            RunError::WrongThread => f.write_str("the runtime's local fibers belong to another thread"),
        }
    }
}

impl core::error::Error for RunError {}
