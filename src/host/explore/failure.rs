//! What a run's outcome is: verdicts, summaries, failures, and the panic
//! hook that records panics while a thread explores.

use std::boxed::Box;
use std::cell::RefCell;
use std::fmt;
use std::format;
use std::panic;
use std::string::{String, ToString};
use std::sync::Once;
use std::vec::Vec;

use super::{Choice, Policy};
// Only named by intra-doc links.
#[cfg(doc)]
use super::Explorer;

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

    pub(super) fn choices_token(&self) -> String {
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
// ---- panic capture -------------------------------------------------------

pub(super) struct Capture {
    pub(super) verbose: bool,
    pub(super) panics: Vec<String>,
}

std::thread_local! {
    /// Set while this thread runs a schedule: panics are recorded here.
    pub(super) static CAPTURE: RefCell<Option<Capture>> = const { RefCell::new(None) };
}

pub(super) fn payload_text(payload: &(dyn core::any::Any + Send)) -> String {
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
pub(super) fn install_hook() {
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
