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

use std::boxed::Box;
use std::cell::RefCell;
use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::format;
use std::hash::{Hash, Hasher};
use std::panic::{self, AssertUnwindSafe};
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::vec::Vec;

use crate::fiber::FiberId;
use crate::policy::SchedulePolicy;
use crate::runtime::Runtime;

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

/// What a test closure returns: `()` (failures are panics) or a `Result`
/// whose `Err` fails the schedule (e.g. the result of `Runtime::run`).
pub trait Verdict {
    /// `Err(message)` fails the schedule.
    fn verdict(self) -> Result<(), String>;
}

impl Verdict for () {
    fn verdict(self) -> Result<(), String> {
        Ok(())
    }
}

impl<T, E: fmt::Display> Verdict for Result<T, E> {
    fn verdict(self) -> Result<(), String> {
        self.map(drop).map_err(|e| e.to_string())
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough to pick
/// schedules, and the same on every platform.
#[derive(Debug, Clone)]
struct Rng(u64);

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
fn schedule_seed(base: u64, i: u64) -> u64 {
    Rng(base ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03)).next()
}

/// PCT state for one run.
struct Pct {
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
enum Driver {
    Random(Rng),
    Pct(Pct),
    /// Forced choices, then FIFO (index 0).
    Forced(Vec<u32>),
}

/// State shared by a run's policy object(s) and the explorer.
struct Shared {
    driver: Driver,
    trace: Vec<Choice>,
    installs: u32,
    max_steps: u64,
    capped: bool,
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

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
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
    shared: Arc<Mutex<Shared>>,
    index: usize,
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

/// What one exploration did (when no schedule failed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Schedules run.
    pub schedules: usize,
    /// Distinct choice sequences among them.
    pub distinct: usize,
    /// The most choices one schedule made.
    pub max_steps: u64,
    /// Schedules that hit [`Explorer::max_steps`] and finished under FIFO.
    pub capped: usize,
    /// [`Policy::Exhaustive`] only: every schedule within the bound was run.
    pub exhausted: bool,
}

/// A failing schedule: why it failed and how to run it again.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The policy that found it.
    pub policy: Policy,
    /// The schedule's own seed (`None` for replayed or enumerated choices).
    pub seed: Option<u64>,
    /// Which schedule of the exploration failed (0-based).
    pub schedule: usize,
    /// Schedules run, including the failing one.
    pub schedules_run: usize,
    /// Every choice the failing schedule made.
    pub choices: Vec<Choice>,
    /// What went wrong: the first panic (with its location) and/or the error
    /// the closure returned.
    pub reason: String,
    /// Replays exactly this schedule: `Explorer::replay(&failure.token)`.
    /// It names everything the schedule depends on: the policy's parameters,
    /// the seed or the choices, and the step cap.
    pub token: String,
    /// The run's [`Explorer::max_steps`] (part of the token).
    pub max_steps: u64,
}

impl Failure {
    /// The chosen indices, for [`Explorer::replay_choices`].
    pub fn indices(&self) -> Vec<u32> {
        self.choices.iter().map(|c| c.index).collect()
    }

    fn choices_token(&self) -> String {
        let list: Vec<String> = self.choices.iter().map(|c| c.index.to_string()).collect();
        format!("choices:{}:max_steps={}", list.join(","), self.max_steps)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "filament explore: schedule {} failed ({} run, policy {}",
            self.schedule, self.schedules_run, self.policy
        )?;
        if let Some(seed) = self.seed {
            write!(f, ", seed {seed:#018x}")?;
        }
        writeln!(f, ")")?;
        for line in self.reason.lines() {
            writeln!(f, "  {line}")?;
        }
        write!(f, "  schedule: {} choices (chosen/ready>fiber slot):", self.choices.len())?;
        for (i, c) in self.choices.iter().enumerate() {
            if i % 16 == 0 {
                write!(f, "\n   ")?;
            }
            write!(f, " {c}")?;
        }
        writeln!(f)?;
        writeln!(f, "  replay:   Explorer::replay({:?}).run(/* the same closure */)", self.token)?;
        if !self.token.starts_with("choices:") {
            writeln!(f, "  or:       Explorer::replay({:?})", self.choices_token())?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// What to run: a fresh exploration or one fixed schedule.
#[derive(Debug, Clone)]
enum Mode {
    Explore,
    Seed { seed: u64, steps: u64 },
    Choices(Vec<u32>),
}

/// The highest [`Policy::Pct`] depth an [`Explorer`] accepts (a run keeps
/// `depth - 1` change points and scans them at every step).
pub const MAX_PCT_DEPTH: u32 = 1024;

/// The default of [`Explorer::max_steps`], also assumed by a token without a
/// `max_steps` field.
pub const DEFAULT_MAX_STEPS: u64 = 100_000;

/// Why [`Explorer::try_replay`] rejected a token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token does not start with `random:`, `pct:` or `choices:`.
    UnknownKind(String),
    /// A field is not `key=value`.
    Malformed(String),
    /// A key this kind of token does not have.
    UnknownKey {
        /// The token's kind (`random`, `pct` or `choices`).
        kind: &'static str,
        /// The key.
        key: String,
    },
    /// A key given twice.
    DuplicateKey(String),
    /// A field this kind of token needs is missing.
    MissingKey {
        /// The token's kind.
        kind: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A value that is not an unsigned decimal or `0x` hex number of the
    /// field's type.
    BadNumber {
        /// The key (`choices` for an entry of the list).
        key: String,
        /// The value as written.
        value: String,
    },
    /// A `choices` list longer than the token's `max_steps`: a run with that
    /// cap records at most `max_steps` choices.
    TooManyChoices {
        /// The cap.
        max_steps: u64,
    },
    /// A value outside its field's limits (see [`Explorer::try_replay`]).
    OutOfRange {
        /// The key (`choices` for an entry of the list).
        key: &'static str,
        /// The value given.
        value: u64,
        /// The smallest allowed value.
        min: u64,
        /// The largest allowed value.
        max: u64,
    },
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::UnknownKind(kind) => write!(f, "unknown kind {kind:?} (random, pct or choices)"),
            TokenError::Malformed(field) => write!(f, "field {field:?} is not key=value"),
            TokenError::UnknownKey { kind, key } => write!(f, "a {kind} token has no key {key:?}"),
            TokenError::DuplicateKey(key) => write!(f, "{key} is given twice"),
            TokenError::MissingKey { kind, key } => write!(f, "a {kind} token needs {key}="),
            TokenError::BadNumber { key, value } => {
                write!(f, "{key}: {value:?} is not an unsigned decimal or 0x-hex number in range")
            }
            TokenError::TooManyChoices { max_steps } => {
                write!(f, "more choices than a run with max_steps={max_steps} records")
            }
            TokenError::OutOfRange { key, value, min, max } => {
                write!(f, "{key}={value} is out of range {min}..={max}")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// An unsigned decimal or `0x`-hex `u64` (no sign, no empty value).
fn parse_number(key: &str, value: &str) -> Result<u64, TokenError> {
    let (digits, radix) = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (value, 10),
    };
    let bad = || TokenError::BadNumber { key: String::from(key), value: String::from(value) };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    u64::from_str_radix(digits, radix).map_err(|_| bad())
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

/// The driver and replay token for a seeded run.
fn seeded(policy: Policy, seed: u64, steps: u64, max_steps: u64) -> (Driver, String) {
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
fn next_prefix(trace: &[Choice], bound: u32) -> Option<Vec<u32>> {
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

// ---- panic capture -------------------------------------------------------

struct Capture {
    verbose: bool,
    panics: Vec<String>,
}

std::thread_local! {
    /// Set while this thread runs a schedule: panics are recorded here.
    static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

fn payload_text(payload: &(dyn core::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        String::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("<non-string panic payload>")
    }
}

/// Installs (once per process) a panic hook that records panics on threads
/// that are exploring and forwards every other panic to the previous hook.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let message = info.payload_as_str().unwrap_or("<non-string panic payload>");
            let text = match info.location() {
                Some(l) => format!("panicked at {}:{}:{}: {message}", l.file(), l.line(), l.column()),
                None => format!("panicked: {message}"),
            };
            let recorded = CAPTURE
                .try_with(|c| match c.try_borrow_mut() {
                    Ok(mut c) => match c.as_mut() {
                        Some(capture) => {
                            capture.panics.push(text);
                            Some(capture.verbose)
                        }
                        None => None,
                    },
                    Err(_) => None,
                })
                .ok()
                .flatten();
            if recorded != Some(false) {
                previous(info);
            }
        }));
    });
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
    fn tokens_round_trip() {
        let e = Explorer::replay("pct:depth=3:steps=57:seed=0x1234");
        assert!(matches!(e.mode, Mode::Seed { seed: 0x1234, steps: 57 }));
        assert_eq!(e.policy, Policy::Pct { depth: 3 });
        assert_eq!(e.max_steps, DEFAULT_MAX_STEPS);
        let e = Explorer::replay("random:seed=0xff:max_steps=7");
        assert!(matches!(e.mode, Mode::Seed { seed: 0xff, .. }));
        assert_eq!(e.max_steps, 7);
        assert!(matches!(Explorer::replay("choices:1,0,2").mode, Mode::Choices(ref c) if c == &[1, 0, 2]));
        let e = Explorer::replay(" choices:1,0:max_steps=2 ");
        assert!(matches!(e.mode, Mode::Choices(ref c) if c == &[1, 0]));
        assert_eq!(e.max_steps, 2);
        assert!(matches!(Explorer::replay("choices:").mode, Mode::Choices(ref c) if c.is_empty()));
        // What the explorer writes, it reads.
        let (_, token) = seeded(Policy::Pct { depth: 2 }, 9, 41, 50);
        assert_eq!(token, "pct:depth=2:steps=41:seed=0x9:max_steps=50");
        let e = Explorer::replay(&token);
        assert!(matches!(e.mode, Mode::Seed { seed: 9, steps: 41 }) && e.max_steps == 50);
    }

    #[test]
    fn bad_tokens_are_typed_errors() {
        use TokenError::*;
        let err = |t: &str| Explorer::try_replay(t).unwrap_err();
        assert_eq!(
            err("pct:depth=4294967295:steps=1:seed=0x1"),
            OutOfRange { key: "depth", value: 4294967295, min: 0, max: u64::from(MAX_PCT_DEPTH) }
        );
        assert_eq!(err("pct:seed=0x1:steps=1"), MissingKey { kind: "pct", key: "depth" });
        assert_eq!(err("pct:depth=2:seed=0x1"), MissingKey { kind: "pct", key: "steps" });
        assert_eq!(err("random:max_steps=3"), MissingKey { kind: "random", key: "seed" });
        assert_eq!(err("random"), MissingKey { kind: "random", key: "seed" });
        assert_eq!(err("bogus:seed=1"), UnknownKind(String::from("bogus")));
        assert_eq!(err("random:seed=1:seed=2"), DuplicateKey(String::from("seed")));
        assert_eq!(err("random:seed=1:depth=2"), UnknownKey { kind: "random", key: String::from("depth") });
        assert_eq!(err("choices:0:seed=1"), UnknownKey { kind: "choices", key: String::from("seed") });
        assert_eq!(err("random:seed"), Malformed(String::from("seed")));
        for bad in ["+1", "-1", "", "0x", "0x+1", "1e3", "18446744073709551616", "0x1_0"] {
            assert!(matches!(err(&format!("random:seed={bad}")), BadNumber { .. }), "{bad:?}");
        }
        assert_eq!(
            err("pct:depth=2:steps=0:seed=1"),
            OutOfRange { key: "steps", value: 0, min: 1, max: DEFAULT_MAX_STEPS }
        );
        assert_eq!(
            err("pct:depth=2:steps=11:seed=1:max_steps=10"),
            OutOfRange { key: "steps", value: 11, min: 1, max: 10 }
        );
        assert_eq!(
            err("choices:0,4294967296"),
            OutOfRange { key: "choices", value: 4294967296, min: 0, max: 4294967295 }
        );
        assert_eq!(err("choices:0,1,2:max_steps=2"), TooManyChoices { max_steps: 2 });
        assert!(matches!(err("choices:0,x"), BadNumber { .. }));
        // Every error prints as one readable line.
        assert!(err("choices:0,1,2:max_steps=2").to_string().contains("max_steps=2"));
        assert!(err("pct:depth=4294967295:steps=1:seed=0x1").to_string().contains("depth=4294967295 is out of range"));
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
