//! Seeded schedule exploration with exact replay (feature `explore`).
//!
//! Cooperative fibers only interleave where they switch, so a concurrency bug
//! hides until some run switches at the one wrong moment. [`Explorer`] runs a
//! test many times, each time installing a [`SchedulePolicy`] that decides
//! every switch (every yield, block, exit, wake-up and
//! [`sync`](crate::sync) choice point) from a seed, and stops at the first run
//! that fails. The failure report names the seed, the policy and every choice
//! made, plus one line that replays exactly that schedule.
//!
//! ```
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use filament::host::explore::{Explorer, Policy};
//! use filament::{Runtime, Stack};
//!
//! // Two fibers increment a counter with a yield between read and write.
//! let found = Explorer::new().policy(Policy::Random).schedules(100).try_run(|s| {
//!     let counter = AtomicU32::new(0);
//!     Runtime::<4>::scope(|rt| {
//!         s.install(rt); // this run's scheduling policy
//!         for _ in 0..2 {
//!             let stack = Stack::host(64 * 1024).unwrap().without_painting();
//!             rt.spawn_detached(stack, |fib| {
//!                 let v = counter.load(Ordering::Relaxed);
//!                 fib.yield_now(); // the race window
//!                 counter.store(v + 1, Ordering::Relaxed);
//!             })
//!             .expect("spawn");
//!         }
//!         rt.run().unwrap();
//!     });
//!     assert_eq!(counter.load(Ordering::Relaxed), 2, "lost update");
//! });
//! let failure = found.unwrap_err();
//! assert!(failure.reason.contains("lost update"));
//! // `failure` prints the seed, the schedule and a replay line such as
//! // Explorer::replay("random:seed=0x...").run(...).
//! ```
//!
//! # What counts as a failure
//!
//! * a panic anywhere on the test's thread while the closure runs: in the
//!   closure, or in a fiber (the runtime turns a fiber's panic into
//!   [`JoinError::Panicked`](crate::JoinError::Panicked); the explorer sees it
//!   anyway, through a panic hook, even if nobody takes that result — turn this
//!   off with [`Explorer::any_panic_fails`]);
//! * the closure returning `Err(e)` (any [`Verdict`]): return `rt.run()` or
//!   use `?` on it, and a [`RunError::Deadlock`](crate::RunError::Deadlock)
//!   fails the schedule.
//!
//! Panics during exploration are not printed (the report is); the hook that
//! does this is installed once per process, only acts on a thread while that
//! thread explores, and hands every other panic to the hook that was there
//! before. [`Explorer::verbose`] prints them as well.
//!
//! # Policies
//!
//! * [`Policy::Random`]: a uniformly random ready fiber at every choice.
//! * [`Policy::Pct`]: probabilistic concurrency testing (Burckhardt, Kothari,
//!   Musuvathi, Nagarakatte, ASPLOS 2010). Every fiber gets a random priority
//!   when first seen; `depth - 1` change points are drawn uniformly from the
//!   run's steps; the highest-priority ready fiber always runs, and at the
//!   `i`-th change point the fiber about to run drops to priority `i`, below
//!   every initial priority. One schedule finds a bug of depth `d` (one that
//!   needs `d` ordering constraints) with probability at least `1/(n·k^(d-1))`
//!   for `n` fibers and `k` steps. `k` is estimated as the most steps any
//!   earlier schedule of the exploration took, and recorded in the replay token.
//! * [`Policy::Exhaustive`]: every schedule whose choices deviate from FIFO by
//!   at most `delays` (choosing `ready[i]` costs `i` delays: delay bounding,
//!   Emmi, Qadeer, Rakamarić 2011), depth-first, until the space or the
//!   schedule budget is used up. For tiny programs.
//!
//! PCT assumes fibers do not busy-wait: a fiber spinning with `yield_now` on a
//! flag only a lower-priority fiber can set spins forever. Every policy stops
//! deciding after [`Explorer::max_steps`] choices in one schedule and lets
//! strict FIFO finish the run (counted in [`Summary::capped`]).
//!
//! # Replay
//!
//! Replay is exact as long as the test itself is deterministic apart from the
//! schedule (no wall clock, thread scheduling, hash-map order or global state
//! carried over between runs): the same seed then makes the same choices.
//! [`Explorer::replay`] takes the token from a report
//! (`random:seed=0x…:max_steps=100000`,
//! `pct:depth=2:steps=41:seed=0x…:max_steps=100000` or
//! `choices:0,1,…:max_steps=100000`): it names every parameter the schedule
//! depends on, the step cap included. A token is checked field by field
//! before anything runs ([`Explorer::try_replay`] lists the limits and
//! returns a [`TokenError`]). A token without `max_steps` assumes
//! [`DEFAULT_MAX_STEPS`]. [`Explorer::replay_choices`] takes the choice list.

mod failure;
mod policy;
mod token;

pub use failure::{Failure, Summary, Verdict};
pub use policy::{Choice, Policy, Schedule};
pub use token::{DEFAULT_MAX_STEPS, MAX_PCT_DEPTH, TokenError};

use std::boxed::Box;
use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::format;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::string::String;
use std::sync::{Arc, Mutex};
use std::vec::Vec;

// Only named by intra-doc links.
#[cfg(doc)]
use crate::policy::SchedulePolicy;

use failure::{CAPTURE, Capture, install_hook, payload_text};
use policy::{Driver, Shared, lock, next_prefix, schedule_seed, seeded};
use token::parse_number;

/// What to run: a fresh exploration or one fixed schedule.
#[derive(Debug, Clone)]
enum Mode {
    Explore,
    Seed { seed: u64, steps: u64 },
    Choices(Vec<u32>),
}

/// Runs a test under many schedules; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Explorer {
    policy: Policy,
    schedules: usize,
    seed: u64,
    max_steps: u64,
    any_panic_fails: bool,
    verbose: bool,
    mode: Mode,
}

impl Default for Explorer {
    fn default() -> Self {
        Self::new()
    }
}

impl Explorer {
    /// 1000 schedules under [`Policy::Random`] from seed 0.
    pub fn new() -> Self {
        Explorer {
            policy: Policy::Random,
            schedules: 1000,
            seed: 0,
            max_steps: DEFAULT_MAX_STEPS,
            any_panic_fails: true,
            verbose: false,
            mode: Mode::Explore,
        }
    }

    /// The policy (default [`Policy::Random`]).
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// How many schedules to try at most (default 1000).
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn schedules(mut self, n: usize) -> Self {
        self.schedules = n;
        self
    }

    /// The base seed (default 0). Schedule `i` uses a seed derived from it;
    /// the report names that one.
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Choices per schedule after which FIFO finishes the run (default
    /// [`DEFAULT_MAX_STEPS`]). Part of every replay token.
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn max_steps(mut self, n: u64) -> Self {
        self.max_steps = n;
        self
    }

    /// Whether a panic that the test caught (a fiber's panic turned into
    /// `JoinError::Panicked` and ignored, a `catch_unwind`) still fails the
    /// schedule (default `true`).
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn any_panic_fails(mut self, yes: bool) -> Self {
        self.any_panic_fails = yes;
        self
    }

    /// Also print panics as they happen (default: only the report).
    #[must_use = "a builder method returns the changed Explorer; use it"]
    pub fn verbose(mut self, yes: bool) -> Self {
        self.verbose = yes;
        self
    }

    /// An explorer that runs exactly the schedule a [`Failure::token`] names.
    ///
    /// # Panics
    /// If `token` is malformed or out of range (see [`Explorer::try_replay`]).
    pub fn replay(token: &str) -> Self {
        match Self::try_replay(token) {
            Ok(e) => e,
            Err(e) => panic!(
                "Explorer::replay: bad token {token:?}: {e} (expected random:seed=0x..:max_steps=M, \
                 pct:depth=D:steps=K:seed=0x..:max_steps=M or choices:i,j,..:max_steps=M)"
            ),
        }
    }

    /// An explorer that runs exactly the schedule a [`Failure::token`] names,
    /// or why the token names none.
    ///
    /// Fields are `key=value`, separated by `:`; numbers are decimal or
    /// `0x` hex, without sign. Every field is checked before anything runs:
    ///
    /// | token      | field       | range                                        |
    /// |------------|-------------|----------------------------------------------|
    /// | all        | `max_steps` | any `u64`, default 100 000 (a cap: nothing is reserved for it) |
    /// | `random`   | `seed`      | any `u64`, required                          |
    /// | `pct`      | `seed`      | any `u64`, required                          |
    /// | `pct`      | `depth`     | `0..=`[`MAX_PCT_DEPTH`], required            |
    /// | `pct`      | `steps`     | `1..=max(max_steps, 1)`, required            |
    /// | `choices`  | the list    | `u32` indices, at most `max_steps` of them   |
    ///
    /// A key given twice, one the kind does not use or an unknown one is an
    /// error too.
    pub fn try_replay(token: &str) -> Result<Self, TokenError> {
        let token = token.trim();
        let (kind, rest) = token.split_once(':').unwrap_or((token, ""));
        let kind: &'static str = match kind {
            "random" => "random",
            "pct" => "pct",
            "choices" => "choices",
            _ => return Err(TokenError::UnknownKind(String::from(kind))),
        };
        let mut fields = rest.split(':');
        // A `choices` token starts with the list.
        let list = if kind == "choices" { fields.next() } else { None };
        let (mut depth, mut steps, mut seed, mut max_steps) = (None, None, None, None);
        for field in fields.filter(|f| !f.is_empty()) {
            let Some((key, value)) = field.split_once('=') else {
                return Err(TokenError::Malformed(String::from(field)));
            };
            let slot = match (kind, key) {
                (_, "max_steps") => &mut max_steps,
                ("random" | "pct", "seed") => &mut seed,
                ("pct", "depth") => &mut depth,
                ("pct", "steps") => &mut steps,
                _ => return Err(TokenError::UnknownKey { kind, key: String::from(key) }),
            };
            if slot.is_some() {
                return Err(TokenError::DuplicateKey(String::from(key)));
            }
            *slot = Some(parse_number(key, value)?);
        }
        let mut e = Self::new().schedules(1);
        e.max_steps = max_steps.unwrap_or(DEFAULT_MAX_STEPS);
        let required = |v: Option<u64>, key: &'static str| v.ok_or(TokenError::MissingKey { kind, key });
        let in_range = |key: &'static str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) { Ok(value) } else { Err(TokenError::OutOfRange { key, value, min, max }) }
        };
        match kind {
            "choices" => {
                let mut choices = Vec::new();
                for item in list.unwrap_or("").split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let index = parse_number("choices", item)?;
                    let index = u32::try_from(index).map_err(|_| TokenError::OutOfRange {
                        key: "choices",
                        value: index,
                        min: 0,
                        max: u64::from(u32::MAX),
                    })?;
                    if choices.len() as u64 >= e.max_steps {
                        // A run with this cap records at most `max_steps` choices.
                        return Err(TokenError::TooManyChoices { max_steps: e.max_steps });
                    }
                    choices.push(index);
                }
                e.mode = Mode::Choices(choices);
            }
            _ => {
                let seed = required(seed, "seed")?;
                e.policy = if kind == "pct" {
                    let depth = in_range("depth", required(depth, "depth")?, 0, u64::from(MAX_PCT_DEPTH))?;
                    Policy::Pct { depth: depth as u32 }
                } else {
                    Policy::Random
                };
                let steps = match kind {
                    "pct" => in_range("steps", required(steps, "steps")?, 1, e.max_steps.max(1))?,
                    _ => 1,
                };
                e.mode = Mode::Seed { seed, steps };
            }
        }
        Ok(e)
    }

    /// An explorer that runs one schedule making these choices (indices into
    /// the ready list), then FIFO.
    pub fn replay_choices(choices: &[u32]) -> Self {
        let mut e = Self::new().schedules(1);
        e.mode = Mode::Choices(choices.to_vec());
        e
    }

    /// Runs `test` under each schedule until one fails; panics with the
    /// failure report if one does.
    pub fn run<R: Verdict>(&self, test: impl FnMut(&mut Schedule) -> R) -> Summary {
        match self.try_run(test) {
            Ok(summary) => summary,
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Runs `test` under each schedule until one fails, and returns that
    /// failure, or a summary if none did.
    ///
    /// # Panics
    /// If the first schedule never installed its policy ([`Schedule::install`]
    /// or [`Schedule::policy`]): exploring would then test nothing. If the
    /// policy is [`Policy::Pct`] with a depth above [`MAX_PCT_DEPTH`].
    pub fn try_run<R: Verdict>(&self, mut test: impl FnMut(&mut Schedule) -> R) -> Result<Summary, Box<Failure>> {
        if let Policy::Pct { depth } = self.policy {
            assert!(
                depth <= MAX_PCT_DEPTH,
                "filament explore: PCT depth {depth} is above MAX_PCT_DEPTH ({MAX_PCT_DEPTH})"
            );
        }
        install_hook();
        let mut summary = Summary::default();
        let mut seen = HashSet::new();
        // PCT's estimate of the steps per run, k.
        let mut pct_steps: u64 = 1;
        // Exhaustive: the forced prefix of the next schedule.
        let mut prefix: Option<Vec<u32>> = Some(Vec::new());
        let total = match self.mode {
            Mode::Explore => self.schedules,
            _ => 1,
        };
        for i in 0..total {
            let (driver, seed, token) = match (&self.mode, self.policy) {
                (Mode::Choices(c), _) => (Driver::Forced(c.clone()), None, None),
                (Mode::Seed { seed, steps }, policy) => {
                    let (driver, token) = seeded(policy, *seed, *steps, self.max_steps);
                    (driver, Some(*seed), Some(token))
                }
                (Mode::Explore, Policy::Exhaustive { .. }) => {
                    let Some(p) = prefix.take() else { break };
                    (Driver::Forced(p), None, None)
                }
                (Mode::Explore, policy) => {
                    let seed = schedule_seed(self.seed, i as u64);
                    let (driver, token) = seeded(policy, seed, pct_steps, self.max_steps);
                    (driver, Some(seed), Some(token))
                }
            };
            let shared = Arc::new(Mutex::new(Shared {
                driver,
                trace: Vec::new(),
                installs: 0,
                max_steps: self.max_steps,
                capped: false,
            }));
            let mut schedule = Schedule { shared: shared.clone(), index: i };

            let saved = CAPTURE.with(|c| c.replace(Some(Capture { verbose: self.verbose, panics: Vec::new() })));
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| test(&mut schedule).verdict()));
            drop(schedule);
            let caught = CAPTURE.with(|c| c.replace(saved)).map(|c| c.panics).unwrap_or_default();

            let (trace, installs, capped) = {
                let mut sh = lock(&shared);
                (core::mem::take(&mut sh.trace), sh.installs, sh.capped)
            };
            if installs == 0 && i == 0 {
                panic!(
                    "filament explore: the test never installed its schedule; call `s.install(&rt)` \
                     (or `rt.set_policy(Some(s.policy()))`) before `rt.run()`"
                );
            }
            summary.schedules += 1;
            summary.capped += usize::from(capped);
            summary.max_steps = summary.max_steps.max(trace.len() as u64);
            pct_steps = pct_steps.max(trace.len() as u64);
            let mut h = DefaultHasher::new();
            trace.iter().map(|c| c.index).collect::<Vec<_>>().hash(&mut h);
            seen.insert(h.finish());
            summary.distinct = seen.len();

            let mut reasons: Vec<String> = Vec::new();
            let escaped = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(format!("the test returned an error: {message}")),
                Err(payload) => Some(format!("the test panicked: {}", payload_text(&*payload))),
            };
            if escaped.is_some() || (self.any_panic_fails && !caught.is_empty()) {
                for p in caught.iter().take(3) {
                    reasons.push(p.clone());
                }
                if caught.len() > 3 {
                    reasons.push(format!("... and {} more panic(s)", caught.len() - 3));
                }
                if let Some(e) = escaped {
                    // A panic that escaped the closure is already the last caught one.
                    if caught.is_empty() || e.starts_with("the test returned") {
                        reasons.push(e);
                    }
                }
                let mut failure = Failure {
                    policy: self.policy,
                    seed,
                    schedule: i,
                    schedules_run: summary.schedules,
                    choices: trace,
                    reason: reasons.join("\n"),
                    token: String::new(),
                    max_steps: self.max_steps,
                };
                failure.token = token.unwrap_or_else(|| failure.choices_token());
                return Err(Box::new(failure));
            }

            if let (Mode::Explore, Policy::Exhaustive { delays }) = (&self.mode, self.policy) {
                prefix = next_prefix(&trace, delays);
                if prefix.is_none() {
                    summary.exhausted = true;
                }
            }
        }
        Ok(summary)
    }
}
