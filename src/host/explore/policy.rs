//! Scheduling policies: the choices of one run, who makes them and the
//! [`SchedulePolicy`] an [`Explorer`](super::Explorer) installs.

use std::boxed::Box;
use std::fmt;
use std::format;
use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard};
use std::vec::Vec;

use crate::fiber::FiberId;
use crate::policy::SchedulePolicy;
use crate::runtime::Runtime;

// Only named by intra-doc links.
#[cfg(doc)]
use super::Explorer;

/// How an [`Explorer`] picks the fiber to run at each choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// A uniformly random ready fiber at every choice.
    Random,
    /// Probabilistic concurrency testing with `depth - 1` priority change
    /// points (`depth >= 1`; `depth = 1` is a random fixed-priority order).
    Pct {
        /// The bug depth to target: how many ordering constraints the bug needs.
        depth: u32,
    },
    /// Depth-first enumeration of all schedules within a delay bound.
    Exhaustive {
        /// Total delays allowed per schedule (choosing `ready[i]` costs `i`).
        delays: u32,
    },
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Random => f.write_str("random"),
            Policy::Pct { depth } => write!(f, "pct(depth={depth})"),
            Policy::Exhaustive { delays } => write!(f, "exhaustive(delays={delays})"),
        }
    }
}

/// One scheduling decision of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choice {
    /// The index chosen in the ready list (0 is what strict FIFO runs).
    pub index: u32,
    /// How many fibers were ready.
    pub ready: u32,
    /// The fiber chosen.
    pub fiber: FiberId,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}>{}", self.index, self.ready, self.fiber.index)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough to pick
/// schedules, and the same on every platform.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

/// The seed of schedule `i` of an exploration started from `base`.
pub(super) fn schedule_seed(base: u64, i: u64) -> u64 {
    Rng(base ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03)).next()
}

/// PCT state for one run.
pub(super) struct Pct {
    rng: Rng,
    depth: u32,
    /// Step numbers (1-based) of the change points; change point `j` (0-based)
    /// lowers a fiber to priority `j + 1`.
    change_points: Vec<u64>,
    priorities: Vec<(FiberId, u64)>,
}

impl Pct {
    fn new(seed: u64, depth: u32, steps: u64) -> Self {
        let mut rng = Rng(seed);
        let depth = depth.max(1);
        let change_points = (1..depth).map(|_| 1 + rng.below(steps.max(1))).collect();
        Pct { rng, depth, change_points, priorities: Vec::new() }
    }

    fn priority(&mut self, id: FiberId) -> u64 {
        if let Some(&(_, p)) = self.priorities.iter().find(|(f, _)| *f == id) {
            return p;
        }
        // Initial priorities lie above every change-point priority (1..depth);
        // a random 62-bit value inserts the newcomer at a uniformly random rank.
        let p = u64::from(self.depth) + 1 + (self.rng.next() >> 2);
        self.priorities.push((id, p));
        p
    }

    fn highest(&mut self, ready: &[FiberId]) -> usize {
        let mut best = 0;
        let mut best_p = 0;
        for (i, &id) in ready.iter().enumerate() {
            let p = self.priority(id);
            if i == 0 || p > best_p {
                best = i;
                best_p = p;
            }
        }
        best
    }

    fn choose(&mut self, step: u64, ready: &[FiberId]) -> usize {
        let mut pick = self.highest(ready);
        for j in 0..self.change_points.len() {
            if self.change_points[j] == step {
                let id = ready[pick];
                if let Some(entry) = self.priorities.iter_mut().find(|(f, _)| *f == id) {
                    entry.1 = j as u64 + 1;
                }
                pick = self.highest(ready);
            }
        }
        pick
    }
}

/// Who makes the choices of one run.
pub(super) enum Driver {
    Random(Rng),
    Pct(Pct),
    /// Forced choices, then FIFO (index 0).
    Forced(Vec<u32>),
}

/// State shared by a run's policy object(s) and the explorer.
pub(super) struct Shared {
    pub(super) driver: Driver,
    pub(super) trace: Vec<Choice>,
    pub(super) installs: u32,
    pub(super) max_steps: u64,
    pub(super) capped: bool,
}

impl Shared {
    fn choose(&mut self, ready: &[FiberId]) -> usize {
        let step = self.trace.len() as u64;
        let index = if ready.len() < 2 {
            0
        } else if step >= self.max_steps {
            self.capped = true;
            0
        } else {
            match &mut self.driver {
                Driver::Random(rng) => rng.below(ready.len() as u64) as usize,
                Driver::Pct(pct) => pct.choose(step + 1, ready),
                Driver::Forced(choices) => choices.get(step as usize).map_or(0, |&c| c as usize % ready.len()),
            }
        };
        if !self.capped && !ready.is_empty() {
            self.trace.push(Choice { index: index as u32, ready: ready.len() as u32, fiber: ready[index] });
        }
        index
    }
}

pub(super) fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The policy object installed in a runtime: forwards to the run's state.
struct Installed(Arc<Mutex<Shared>>);

impl SchedulePolicy for Installed {
    fn choose(&mut self, ready: &[FiberId]) -> usize {
        lock(&self.0).choose(ready)
    }
}

/// One run of the test closure: hand its policy to the runtime(s) it builds.
pub struct Schedule {
    pub(super) shared: Arc<Mutex<Shared>>,
    pub(super) index: usize,
}

impl Schedule {
    /// Installs this run's scheduling policy in `rt` (before `rt.run()`).
    ///
    /// # Panics
    /// If the runtime is running (call it from outside `run`).
    pub fn install<const N: usize>(&mut self, rt: &Runtime<'_, N>) {
        assert!(rt.set_policy(Some(self.policy())), "Schedule::install: the runtime is busy");
    }

    /// This run's policy as an object, for [`Runtime::set_policy`]. Every
    /// object from one `Schedule` shares one sequence of choices, so several
    /// runtimes run one after the other in a test are explored together.
    pub fn policy(&mut self) -> Box<dyn SchedulePolicy + Send> {
        lock(&self.shared).installs += 1;
        Box::new(Installed(self.shared.clone()))
    }

    /// Which schedule of the exploration this is (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// The choices made so far in this run.
    pub fn choices(&self) -> Vec<Choice> {
        lock(&self.shared).trace.clone()
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schedule").field("index", &self.index).finish_non_exhaustive()
    }
}

/// The driver and replay token for a seeded run.
pub(super) fn seeded(policy: Policy, seed: u64, steps: u64, max_steps: u64) -> (Driver, String) {
    match policy {
        Policy::Random => (Driver::Random(Rng(seed)), format!("random:seed={seed:#x}:max_steps={max_steps}")),
        Policy::Pct { depth } => (
            Driver::Pct(Pct::new(seed, depth, steps)),
            format!("pct:depth={depth}:steps={steps}:seed={seed:#x}:max_steps={max_steps}"),
        ),
        Policy::Exhaustive { .. } => (Driver::Forced(Vec::new()), format!("choices::max_steps={max_steps}")),
    }
}

/// The next schedule depth-first after `trace` whose total delay stays within
/// `bound`, as a forced prefix; `None` when the space is exhausted.
pub(super) fn next_prefix(trace: &[Choice], bound: u32) -> Option<Vec<u32>> {
    let mut used: Vec<u32> = Vec::with_capacity(trace.len() + 1);
    let mut sum = 0u32;
    for c in trace {
        used.push(sum);
        sum += c.index;
    }
    for j in (0..trace.len()).rev() {
        let c = trace[j];
        if c.index + 1 < c.ready && used[j] + c.index < bound {
            let mut p: Vec<u32> = trace[..j].iter().map(|c| c.index).collect();
            p.push(c.index + 1);
            return Some(p);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation).
        let mut r = Rng(0);
        assert_eq!(r.next(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn delay_bounded_successors() {
        let id = FiberId { index: 0, generation: 0 };
        let c = |index, ready| Choice { index, ready, fiber: id };
        assert_eq!(next_prefix(&[c(0, 2), c(0, 3)], 1), Some(std::vec![0, 1]));
        assert_eq!(next_prefix(&[c(0, 2), c(1, 3)], 1), Some(std::vec![1]));
        assert_eq!(next_prefix(&[c(1, 2), c(0, 3)], 1), None);
        assert_eq!(next_prefix(&[c(1, 2), c(0, 3)], 2), Some(std::vec![1, 1]));
    }
}
