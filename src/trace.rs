//! Trace hooks, modeled on FreeRTOS's `traceTASK_*` macros and embassy's
//! `trace` feature.
//!
//! With the cargo feature `trace` off (the default) every hook call compiles to
//! nothing: the scheduler's code is byte-for-byte what it is without this module.
//! With it on, a runtime given a tracer ([`Runtime::set_tracer`](crate::Runtime::set_tracer))
//! calls it at each event below, on the thread that runs the runtime, from the
//! scheduler's own context (keep hooks short; they must not block or switch).

use crate::fiber::{FiberId, WaitReason};
use crate::time::Ticks;

/// Receives scheduler events. Every method has an empty default.
///
/// The hooks run inside the scheduler, in the middle of a switch: a panic in
/// one stops the program.
pub trait Trace {
    /// A fiber was spawned.
    fn spawn(&self, _id: FiberId, _name: &'static str) {}
    /// `id` starts or resumes running.
    fn switch_in(&self, _id: FiberId) {}
    /// `id` stops running (yield, block or exit follows or preceded).
    fn switch_out(&self, _id: FiberId) {}
    /// `id` blocks on `reason`.
    fn block(&self, _id: FiberId, _reason: WaitReason) {}
    /// `id` blocks on `reason`, in the primitive named `object` ("" if it
    /// has no name; see e.g. [`Channel::named`](crate::sync::Channel::named)).
    /// The scheduler calls this one; by default it forwards to
    /// [`block`](Self::block).
    fn block_in(&self, id: FiberId, reason: WaitReason, _object: &'static str) {
        self.block(id, reason)
    }
    /// `id` was made ready by a wake (signal, timeout or cancellation).
    fn wake(&self, _id: FiberId) {}
    /// `id`'s closure returned (or panicked).
    fn exit(&self, _id: FiberId) {}
    /// `id`'s effective priority changed to `effective` (`set_priority`, or
    /// priority inheritance raising or restoring it).
    fn priority(&self, _id: FiberId, _effective: crate::Priority) {}
    /// No fiber ready: the idle hook runs at tick `now`.
    fn idle(&self, _now: Ticks) {}
}

/// Calls the runtime's tracer, if the `trace` feature is on and one is set.
macro_rules! trace_event {
    ($core:expr, $method:ident ( $($arg:expr),* )) => {{
        #[cfg(feature = "trace")]
        {
            #[allow(unused_unsafe)]
            // SAFETY: the tracer outlives the runtime ('s) and is only called on
            // the thread running it.
            if let Some(t) = unsafe { (*$core).tracer } {
                $crate::raw::no_unwind("a Trace hook", || {
                    // SAFETY: `t` was installed by `set_tracer` from a
                    // `&'s (dyn Trace + Sync)`, which outlives every fiber of
                    // the runtime; the hook gets only copies of ids and names.
                    unsafe { (*t).$method($($arg),*) }
                })
            }
        }
    }};
}
pub(crate) use trace_event;
