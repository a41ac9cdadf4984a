//! The runtime's `Debug` output: an aligned table of every fiber.

use core::fmt;

use crate::fiber::{FiberState, State};
use crate::info::info_of;
use crate::raw::Core;

/// Writes one line per live fiber plus the runtime totals.
///
/// # Safety
/// Exclusive access to `core`.
pub(crate) unsafe fn write_table(f: &mut fmt::Formatter<'_>, core: *mut Core) -> fmt::Result {
    // SAFETY: per the contract.
    unsafe {
        let st = crate::info::stats(core);
        writeln!(
            f,
            "Runtime {{ capacity: {}, live: {}, spawns: {}, switches: {}, idles: {}, deadlocks: {}, now: {} }}",
            (*core).cap,
            st.live,
            st.spawns,
            st.switches,
            st.idles,
            st.deadlocks,
            (*core).now
        )?;
        // Column widths fit the longest name and state (first pass).
        let (mut name_w, mut state_w) = (4, 5);
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state != State::Free {
                let info = info_of(core, s);
                name_w = name_w.max(info.name.chars().count());
                state_w = state_w.max(state_text(info.state, info.waiting_in).len());
            }
        }
        writeln!(
            f,
            "{:<10} {:<name_w$} {:<10} {:<state_w$} {:>8} {:>10} {:>8}",
            "ID", "NAME", "PRIO", "STATE", "STACK", "HIGH-WATER", "RUNS"
        )?;
        for i in 0..(*core).cap {
            let s = (*core).slots.add(i);
            if (*s).state == State::Free {
                continue;
            }
            let info = info_of(core, s);
            let state = state_text(info.state, info.waiting_in);
            let mut hw = heapless::String::<12>::new();
            let _ = match info.stack_high_water {
                Some(b) => fmt::write(&mut hw, format_args!("{b}")),
                None => fmt::write(&mut hw, format_args!("-")),
            };
            let mut id = heapless::String::<24>::new();
            let _ = fmt::write(&mut id, format_args!("{}", info.id));
            // The effective priority, and the base one while inheritance raises it.
            let mut prio = heapless::String::<16>::new();
            let _ = if info.priority == info.base_priority {
                fmt::write(&mut prio, format_args!("{}", info.priority.get()))
            } else {
                fmt::write(&mut prio, format_args!("{} (base {})", info.priority.get(), info.base_priority.get()))
            };
            writeln!(
                f,
                "{:<10} {:<name_w$} {:<10} {:<state_w$} {:>8} {:>10} {:>8}",
                id.as_str(),
                info.name,
                prio.as_str(),
                state.as_str(),
                info.stack_size,
                hw.as_str(),
                info.runs
            )?;
        }
        Ok(())
    }
}

/// Room for a select's list of sources.
fn state_text(state: FiberState, waiting_in: &str) -> heapless::String<400> {
    let mut text = heapless::String::new();
    let _ = match state {
        FiberState::Blocked(r) if !waiting_in.is_empty() => {
            fmt::write(&mut text, format_args!("blocked {r} \"{waiting_in}\""))
        }
        FiberState::Blocked(r) => fmt::write(&mut text, format_args!("blocked {r}")),
        other => fmt::write(&mut text, format_args!("{other:?}")),
    };
    text
}
