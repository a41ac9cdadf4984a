//! The right to a fiber's result: [`JoinHandle`], and taking, detaching and
//! adopting (dropped handles) fibers' results.

use core::fmt;
use core::marker::PhantomData;
use core::mem::{self, ManuallyDrop};

use crate::error::JoinError;
use crate::fiber::{FiberId, Header, Slot, State};
use crate::raw::{self, Core};
use crate::stack::Stack;

/// The right to a fiber's result. Get the value with [`Fiber::join`](crate::Fiber::join) (from a
/// fiber) or [`Runtime::take`](crate::Runtime::take) (after `run`). Not `Clone`: one owner, one take.
///
/// Dropping a handle without joining detaches the fiber (its result is
/// dropped when it finishes and its slot freed), as std's and tokio's
/// handles do; [`Runtime::detach`](crate::Runtime::detach) does it at once.
/// The handle cannot reach its runtime, so the runtime learns of the drop
/// when it runs out of free slots, when a `run` returns, or when it is
/// dropped. One exception: a runtime that found no room in the process-wide
/// tables at its first use (4 096 runtimes alive at once, or no contiguous
/// run of `ceil(N / 64)` free words left in a pool of 4 096 64-bit words,
/// each live runtime holding whole words) keeps a dropped handle's slot until
/// it is dropped; [`SpawnErrorKind::Full`](crate::SpawnErrorKind::Full)
/// counts such slots.
#[must_use = "dropping the handle detaches the fiber: its result is lost"]
pub struct JoinHandle<T> {
    /// The fiber's id as `index | generation << 32`. Every field is a whole
    /// word: a `Result` holding a handle shares its bytes with the `Ok`
    /// value (a stack token from `take_with_stack`), and `u32` halves there
    /// made the compiler move the token's words in 4-byte pieces and reload
    /// them whole, which the CPU cannot forward from its store buffer.
    id: u64,
    header: *mut Header,
    /// The spawning runtime's serial: a handle is only ever honoured by it.
    runtime: u64,
    /// The runtime's entry in the table of live runtimes (`orphans`).
    live_slot: u64,
    _marker: PhantomData<fn() -> T>,
}

// SAFETY: the header pointer is only an identity check, dereferenced only by a
// runtime that owns it, under its lock; T crosses threads only if Send (spawn
// requires it).
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: &JoinHandle gives nothing but the id.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    pub(crate) fn new(id: FiberId, header: *mut Header, (runtime, live_slot): (u64, u32)) -> Self {
        let id = u64::from(id.index) | u64::from(id.generation) << 32;
        JoinHandle { id, header, runtime, live_slot: u64::from(live_slot), _marker: PhantomData }
    }

    /// The handle was used up (its result taken or the fiber detached): no
    /// note on drop.
    fn disarm(self) {
        mem::forget(self);
    }

    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        FiberId { index: self.id as u32, generation: (self.id >> 32) as u32 }
    }
}

/// Dropping a handle detaches its fiber, as std's and tokio's do: the result
/// is dropped when the fiber finishes (at once if it has) and the slot is
/// freed. The handle cannot reach its runtime (which may have moved or been
/// dropped), so it sets its fiber's bit in static memory the runtime owns,
/// which the runtime adopts when it runs out of free slots, when a `run`
/// returns, or when it is dropped (`crate::orphans`).
impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        crate::orphans::leave(self.runtime, self.live_slot as u32, self.id().index);
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JoinHandle").field(&self.id()).finish()
    }
}

/// Finds the slot a handle refers to, if it belongs to this runtime.
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn find<T>(core: *mut Core, h: &JoinHandle<T>) -> Option<*mut Slot> {
    // SAFETY: index bounds-checked against cap.
    unsafe {
        let id = h.id();
        if id.index as usize >= (*core).cap {
            return None;
        }
        let s = (*core).slots.add(id.index as usize);
        ((*core).serial == h.runtime
            && (*s).state != State::Free
            && (*s).generation == id.generation
            && (*s).header == h.header)
            .then_some(s)
    }
}

/// # Safety
/// Exclusive access to `core`, not on the target fiber's stack.
pub(crate) unsafe fn take_outcome<T>(core: *mut Core, handle: JoinHandle<T>) -> Result<T, JoinError<T>> {
    // SAFETY: find validated the handle; a finished fiber's payload holds its
    // outcome of type Result<T, JoinError<()>> (T fixed by the handle's type).
    unsafe {
        let Some(s) = find(core, &handle) else {
            return Err(JoinError::WrongRuntime(handle));
        };
        if (*s).state != State::Finished {
            return Err(JoinError::NotFinished(handle));
        }
        let h = (*s).header;
        debug_assert!((*h).has_outcome);
        let outcome = (*h).payload.cast::<Result<T, JoinError<()>>>().read();
        // `has_outcome` is not cleared: nothing reads this header again (the
        // slot is freed and its token dropped next; neither can panic).
        handle.disarm();
        raw::free_slot(core, s);
        outcome.map_err(JoinError::cast)
    }
}

/// [`take_outcome`] that hands the fiber's stack token back instead of
/// dropping it: the caller can spawn on it again without claiming it (for a
/// [`StaticStack`](crate::StaticStack), no atomic swap). If the fiber failed
/// (panicked, cancelled), the token is dropped as `take_outcome` does.
///
/// # Safety
/// Exclusive access to `core`, not on the target fiber's stack; `'s` is the
/// runtime's stack lifetime (the token was a `Stack<'s>` when spawned).
pub(crate) unsafe fn take_outcome_and_stack<'s, T>(
    core: *mut Core,
    handle: JoinHandle<T>,
) -> Result<(T, Stack<'s>), JoinError<T>> {
    // SAFETY: as in take_outcome. The fiber finished, so no frame lives on
    // its stack (I4): its token may go back to the caller, read out of the
    // header (on that stack) before the slot is retired; nothing reads the
    // header of a free slot.
    unsafe {
        let Some(s) = find(core, &handle) else {
            return Err(JoinError::WrongRuntime(handle));
        };
        if (*s).state != State::Finished {
            return Err(JoinError::NotFinished(handle));
        }
        let h = (*s).header;
        debug_assert!((*h).has_outcome);
        let outcome = (*h).payload.cast::<Result<T, JoinError<()>>>().read();
        // `has_outcome` is not cleared: nothing reads this header again.
        handle.disarm();
        let stack = ManuallyDrop::take(&mut (*h).stack);
        raw::retire_slot(core, s);
        // The token was a `Stack<'s>` erased to `'static` by `spawn_raw`.
        let stack = mem::transmute::<Stack<'static>, Stack<'s>>(stack);
        match outcome {
            Ok(value) => Ok((value, stack)),
            Err(e) => Err(e.cast()),
        }
    }
}

/// # Safety
/// Exclusive access to `core`, not on the target fiber's stack.
pub(crate) unsafe fn detach_raw<T>(core: *mut Core, handle: JoinHandle<T>) -> Result<(), JoinError<T>> {
    // SAFETY: as in take_outcome.
    unsafe {
        let Some(s) = find(core, &handle) else {
            return Err(JoinError::WrongRuntime(handle));
        };
        handle.disarm();
        detach_slot(core, s);
        Ok(())
    }
}

/// Detaches the fiber in slot `index`, whose handle was dropped (see
/// [`crate::orphans`]: such a slot still holds that fiber).
///
/// # Safety
/// Exclusive access to `core`; not on that fiber's stack if it finished.
pub(crate) unsafe fn detach_orphan(core: *mut Core, index: u32) {
    // SAFETY: index bounds-checked; a free slot (never the case: see
    // `crate::orphans`) is left alone.
    unsafe {
        if index as usize >= (*core).cap {
            return;
        }
        let s = (*core).slots.add(index as usize);
        if (*s).state == State::Free {
            return;
        }
        // A local fiber's closure and result belong to its thread: never
        // dropped on another. There, a finished one's result and a never
        // started one's closure are leaked (the slot and stack are freed all
        // the same, so the runtime is not pinned to a thread that may be
        // gone); a suspended one is marked detached and drops its result when
        // it finishes, on its own thread. (On another thread the runtime does
        // not run: this is the host context, outside `run`.)
        #[cfg(feature = "std")]
        if (*s).local && (*core).local_thread.is_some_and(|t| t != std::thread::current().id()) {
            let h = (*s).header;
            match (*s).state {
                State::Finished => {
                    (*h).has_outcome = false; // leaked, never dropped
                    raw::free_slot(core, s);
                }
                State::Ready if !(*s).started => {
                    raw::unlink_ready(core, s);
                    (*core).unfinished -= 1;
                    (*s).started = true; // its closure is leaked, never dropped
                    raw::free_slot(core, s);
                }
                _ => (*h).detached = true,
            }
            return;
        }
        detach_slot(core, s);
    }
}

/// Gives up on a fiber's result: drops it now and frees the slot if the
/// fiber finished, else marks it detached (dropped at finish).
///
/// # Safety
/// Exclusive access to `core`; `s` a live (non-free) slot of it, not the
/// stack this runs on if it finished.
unsafe fn detach_slot(core: *mut Core, s: *mut Slot) {
    // SAFETY: per the contract.
    unsafe {
        let h = (*s).header;
        if (*s).state == State::Finished {
            // Frees the slot even if the outcome's `Drop` panics (the panic
            // then reaches the caller of `detach`, the slot is not leaked).
            struct FreeOnExit(*mut Core, *mut Slot);
            impl Drop for FreeOnExit {
                fn drop(&mut self) {
                    // SAFETY: the slot is finished and its outcome is gone
                    // (dropped, or abandoned by a panicking drop); nobody
                    // runs on its stack.
                    unsafe { raw::free_slot(self.0, self.1) }
                }
            }
            let _free = FreeOnExit(core, s);
            if (*h).has_outcome {
                (*h).has_outcome = false;
                ((*h).drop_payload)((*h).payload, true);
            }
        } else {
            (*h).detached = true;
        }
    }
}
