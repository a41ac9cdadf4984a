//! The runtime's counters against what the slots say.

use super::{Check, fail};
use crate::raw::Core;

/// `ready`, `blocked`, `fp` and `irq_waiting` are the counts taken from the slots.
pub(super) fn counters(c: &Core, ready: usize, blocked: usize, fp: usize, irq_waiting: usize) -> Check {
    if c.unfinished != ready + blocked {
        return fail("unfinished differs from the number of Ready and Blocked slots", None);
    }
    if c.pollers != c.ntimers + c.irq.waiters {
        return fail("pollers differs from ntimers + irq.waiters", None);
    }
    if c.irq.waiters != irq_waiting {
        return fail("irq.waiters differs from the fibers marked as interrupt waiters", None);
    }
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    if c.fp_fibers != fp {
        return fail("fp_fibers differs from the slots with their own FP state", None);
    }
    let _ = fp;
    if c.slow != expected_slow(c) {
        return fail("slow differs from what refresh_slow computes", None);
    }
    Ok(())
}

/// What `raw::refresh_slow` stores in `Core::slow` (keep the two in step).
fn expected_slow(c: &Core) -> usize {
    #[allow(unused_mut)]
    let mut slow = c.pollers | c.preempt as usize;
    #[cfg(not(any(feature = "no-fp-control", feature = "fp-control-always")))]
    {
        slow |= c.fp_fibers;
    }
    #[cfg(feature = "trace")]
    {
        slow |= c.tracer.is_some() as usize;
    }
    #[cfg(feature = "explore")]
    {
        slow |= c.policy.is_some() as usize;
    }
    slow
}
