//! What a blocked fiber waits on, for reports and `FiberInfo`.

use core::ptr;

use super::*;
/// The name of the primitive a blocked fiber waits in ("" if unnamed, or not
/// waiting in a primitive's queue).
///
/// # Safety
/// `s` must be a blocked slot of `core`.
pub(crate) unsafe fn wait_object_name(s: *const Slot) -> &'static str {
    // SAFETY: a blocked fiber with a queue kind waits in the live queue at
    // `wait_obj` (I2, I5).
    unsafe {
        match (*s).wait_kind {
            WaitKind::Join => "",
            k if k.has_queue() => (*((*s).wait_obj as *const WaitQueue)).name,
            _ => "",
        }
    }
}

/// Describes what a blocked fiber waits on, for reports.
///
/// # Safety
/// `s` must be a blocked slot of `core`.
pub(crate) unsafe fn wait_reason(core: *const Core, s: *const Slot) -> WaitReason {
    // SAFETY: forwarded contract.
    let (kind, obj) = unsafe { ((*s).wait_kind, (*s).wait_obj) };
    match kind {
        WaitKind::Join => {
            // obj is the address of the target header's joiner queue.
            // SAFETY: slots array is valid for cap entries.
            let target = unsafe {
                (0..(*core).cap)
                    .map(|i| (*core).slots.add(i))
                    .find(|&t| (*t).state != State::Free && ptr::addr_of!((*(*t).header).joiners) as usize == obj)
            };
            match target {
                // SAFETY: t is a slot of core.
                Some(t) => WaitReason::Join(unsafe { id_of(core, t) }),
                None => WaitReason::Join(FiberId { index: u32::MAX, generation: 0 }),
            }
        }
        WaitKind::Mutex => WaitReason::Mutex(obj),
        WaitKind::Semaphore => WaitReason::Semaphore(obj),
        WaitKind::Send => WaitReason::Send(obj),
        WaitKind::Recv => WaitReason::Recv(obj),
        WaitKind::Event => WaitReason::Event(obj),
        WaitKind::Barrier => WaitReason::Barrier(obj),
        WaitKind::Irq => WaitReason::Irq(obj),
        WaitKind::EventGroup => WaitReason::EventGroup(obj),
        WaitKind::Sleep => WaitReason::Sleep(obj as u64),
        WaitKind::Notify => WaitReason::Notify,
        WaitKind::Suspended => WaitReason::Suspended,
        // SAFETY: a fiber blocked in a select keeps its record at `wait_obj`
        // in its frame until it resumes (I12); the record starts with its
        // sources (`repr(C)`).
        WaitKind::Select => WaitReason::Select(unsafe { *(obj as *const crate::sync::select::SelectSources) }),
        // Only Blocked slots are described; a Blocked slot always has a kind.
        WaitKind::None | WaitKind::Parked => WaitReason::Sleep(u64::MAX),
    }
}
