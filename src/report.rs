//! The runtime's `Debug` output: an aligned table of every fiber.

use core::fmt;

use crate::fiber::{FiberState, State};
use crate::raw::Core;
use crate::runtime::info_of;

/// Writes one line per live fiber plus the runtime totals.
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn write_table(f: &mut fmt::Formatter<'_>, core: *mut Core) -> fmt::Result {
    // SAFETY: per the contract.
    unsafe {
        writeln!(
            f,
            "Runtime {{ capacity: {}, live: {}, spawns: {}, idles: {}, deadlocks: {}, now: {} }}",
            (*core).cap,
            (*core).used,
            (*core).spawns,
            (*core).idles,
            (*core).deadlocks,
            (*core).now
        )?;
        writeln!(f, "{:<10} {:<16} {:<28} {:>8} {:>10} {:>8}", "ID", "NAME", "STATE", "STACK", "HIGH-WATER", "RUNS")?;
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state == State::Free {
                continue;
            }
            let info = info_of(core, s);
            let mut state = heapless::String::<40>::new();
            let _ = match info.state {
                FiberState::Blocked(r) => fmt::write(&mut state, format_args!("blocked {r:?}")),
                other => fmt::write(&mut state, format_args!("{other:?}")),
            };
            let mut hw = heapless::String::<12>::new();
            let _ = match info.stack_high_water {
                Some(b) => fmt::write(&mut hw, format_args!("{b}")),
                None => fmt::write(&mut hw, format_args!("-")),
            };
            let mut id = heapless::String::<24>::new();
            let _ = fmt::write(&mut id, format_args!("{}", info.id));
            writeln!(
                f,
                "{:<10} {:<16} {:<28} {:>8} {:>10} {:>8}",
                id.as_str(),
                info.name,
                state.as_str(),
                info.stack_size,
                hw.as_str(),
                info.runs
            )?;
        }
        Ok(())
    }
}
