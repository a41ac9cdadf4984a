//! A [`Trace`] implementation that records scheduler events with wall-clock
//! timestamps and exports them as a Chrome Trace Event / Perfetto JSON file or as
//! a self-contained SVG timeline (features `std` + `trace`).
//!
//! ```
//! use filament::host::trace::TraceRecorder;
//! use filament::{Runtime, Stack};
//!
//! static REC: TraceRecorder = TraceRecorder::new();
//! static RT: Runtime<'static, 4> = Runtime::new();
//!
//! RT.set_tracer(&REC);
//! for name in ["ping", "pong"] {
//!     let stack = Stack::host(64 * 1024).unwrap();
//!     RT.spawn_named(name, stack, |fib| (0..3).for_each(|_| fib.yield_now())).unwrap();
//! }
//! RT.run().unwrap();
//! assert_eq!(REC.slices().len(), 8); // 2 fibers x (3 yields + 1 final run)
//! let json = REC.to_chrome_json(); // open in https://ui.perfetto.dev or chrome://tracing
//! let svg = REC.to_svg(); // open in a browser
//! assert!(json.contains("\"thread_name\"") && svg.starts_with("<svg"));
//! ```
//!
//! # Lanes
//!
//! Every fiber (every slot index *and* generation: a fiber in a reused slot
//! is another fiber) gets one lane: in the JSON a thread named by a
//! `thread_name` metadata event, in the SVG a row (`<g class="lane">`). Lanes
//! are ordered by slot index, then generation, and numbered densely in that
//! order: lane `k` has `tid = k` ([`Lane::tid`], [`TraceRecorder::lane_tid`]).
//! So no two fibers ever share a `tid`, and tids stay small (Perfetto reads a
//! `tid` as a 32-bit number). The numbering belongs to one export: a trace
//! that later shows a fiber of a lower slot renumbers the lanes after it.
//! Times the scheduler spent idle (no fiber ready, the idle hook waiting) go
//! on an extra lane, [`SCHEDULER_TID`], which no fiber lane uses.
//!
//! # Bounded recording
//!
//! [`TraceRecorder::new`] keeps every event. [`TraceRecorder::bounded`]`(n)`
//! keeps the last `n` as a ring: each event past `n` discards the oldest
//! (counted by [`TraceRecorder::dropped`]), so a long-running program can
//! stay traced in fixed memory. Exports show what is kept: a run whose
//! switch-in was discarded is not shown, a fiber whose spawn was discarded is
//! labelled by its id, and time zero stays the first event ever recorded
//! (until [`TraceRecorder::clear`]).
//!
//! # Cost
//!
//! Each hook takes [`Instant::now`], a mutex and a `Vec` push: tens of
//! nanoseconds, on the scheduler's path between two fibers. The hooks never
//! block on anything but that uncontended mutex and never switch fibers.

mod analyze;
mod chrome;
mod svg;
mod text;

use std::collections::VecDeque;
use std::string::String;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::fiber::{FiberId, WaitReason};
use crate::time::Ticks;
use crate::trace::Trace;

use analyze::{idle_spans, lanes, slices};
pub use text::reason_text;

/// The `tid` of the lane that shows when the scheduler was idle (no fiber's
/// lane has it).
pub const SCHEDULER_TID: u64 = 0x7FFF_FFFF;

/// What happened (the [`Trace`] hook that was called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A fiber was spawned with this name.
    Spawn(FiberId, &'static str),
    /// The fiber started or resumed running.
    SwitchIn(FiberId),
    /// The fiber stopped running.
    SwitchOut(FiberId),
    /// The fiber blocked, in the primitive with this name ("" if unnamed).
    Block(FiberId, WaitReason, &'static str),
    /// The fiber was made ready by a wake.
    Wake(FiberId),
    /// The fiber's closure returned.
    Exit(FiberId),
    /// Nothing was ready; the idle hook ran at this tick.
    Idle(Ticks),
    /// The fiber's effective priority changed to this (set_priority or
    /// priority inheritance).
    Priority(FiberId, crate::Priority),
}

impl EventKind {
    /// The fiber the event is about (`None` for [`EventKind::Idle`]).
    pub fn fiber(&self) -> Option<FiberId> {
        match *self {
            EventKind::Spawn(id, _)
            | EventKind::SwitchIn(id)
            | EventKind::SwitchOut(id)
            | EventKind::Block(id, ..)
            | EventKind::Wake(id)
            | EventKind::Exit(id)
            | EventKind::Priority(id, _) => Some(id),
            EventKind::Idle(_) => None,
        }
    }
}

/// One recorded event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Time since the first recorded event.
    pub at: Duration,
    /// What happened.
    pub kind: EventKind,
}

/// One run of a fiber: from a switch-in to the next switch-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// The fiber that ran.
    pub fiber: FiberId,
    /// When it was switched in.
    pub start: Duration,
    /// When it was switched out (for an open slice, the last recorded event).
    pub end: Duration,
    /// The trace ended before the fiber was switched out.
    pub open: bool,
}

/// A span during which the scheduler was idle: from the idle hook's start to
/// the next event (usually a wake of a sleeper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleSpan {
    /// When the idle hook was entered.
    pub start: Duration,
    /// The next recorded event.
    pub end: Duration,
    /// The runtime's tick when the hook was entered.
    pub now: Ticks,
}

/// A fiber seen in the trace, with its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    /// The fiber.
    pub fiber: FiberId,
    /// Its name at spawn (`""` if unnamed or spawned before the recorder was installed).
    pub name: &'static str,
    /// Its `tid` in the JSON export: its position in the lane order (see
    /// [the module docs](self#lanes)).
    pub tid: u64,
}

impl Lane {
    /// The name shown for the lane: the fiber's name, or `fiber #i.g`.
    pub fn label(&self) -> String {
        if self.name.is_empty() { std::format!("fiber {}", self.fiber) } else { String::from(self.name) }
    }
}

struct Inner {
    origin: Option<Instant>,
    events: VecDeque<Event>,
    /// Events kept at most (`usize::MAX`: all).
    limit: usize,
    /// Events discarded to stay within `limit`.
    dropped: u64,
}

/// Records scheduler events for a timeline. Install it with
/// [`Runtime::set_tracer`](crate::Runtime::set_tracer).
///
/// `const`-constructible ([`new`](Self::new), [`bounded`](Self::bounded)), so
/// it can be a `static` next to a `static` runtime. Time zero is the first
/// recorded event.
pub struct TraceRecorder {
    inner: Mutex<Inner>,
}

impl Default for TraceRecorder {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for TraceRecorder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TraceRecorder").field("events", &self.lock().events.len()).finish()
    }
}

impl TraceRecorder {
    /// An empty recorder that keeps every event.
    pub const fn new() -> Self {
        TraceRecorder {
            inner: Mutex::new(Inner { origin: None, events: VecDeque::new(), limit: usize::MAX, dropped: 0 }),
        }
    }

    /// An empty recorder that keeps every event, with room for `events`
    /// events before it allocates.
    pub fn with_capacity(events: usize) -> Self {
        TraceRecorder {
            inner: Mutex::new(Inner {
                origin: None,
                events: VecDeque::with_capacity(events),
                limit: usize::MAX,
                dropped: 0,
            }),
        }
    }

    /// An empty recorder that keeps only the last `events` events: a ring
    /// (see [the module docs](self#bounded-recording)). Memory grows as
    /// events arrive, up to `events` of them; `bounded(0)` keeps nothing.
    pub const fn bounded(events: usize) -> Self {
        TraceRecorder { inner: Mutex::new(Inner { origin: None, events: VecDeque::new(), limit: events, dropped: 0 }) }
    }

    /// How many events a [`bounded`](Self::bounded) recorder discarded to
    /// keep the last ones (0 for an unbounded one).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// The `tid` of `id`'s lane in an export taken now, if the kept events
    /// mention that fiber.
    pub fn lane_tid(&self, id: FiberId) -> Option<u64> {
        self.lanes().into_iter().find(|l| l.fiber == id).map(|l| l.tid)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Hooks never panic while holding the lock; a poisoned lock still holds
        // consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, kind: EventKind) {
        let now = Instant::now();
        let mut inner = self.lock();
        let origin = *inner.origin.get_or_insert(now);
        if inner.events.len() >= inner.limit {
            if inner.events.pop_front().is_none() {
                // `bounded(0)`: nothing is kept.
                inner.dropped += 1;
                return;
            }
            inner.dropped += 1;
        }
        inner.events.push_back(Event { at: now.saturating_duration_since(origin), kind });
    }

    /// Forgets every event (and the count of dropped ones); the next one is
    /// time zero again.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.events.clear();
        inner.origin = None;
        inner.dropped = 0;
    }

    /// A copy of the events kept, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.iter().copied().collect()
    }

    /// How many times a fiber was switched in (among the events kept).
    pub fn switch_ins(&self) -> usize {
        self.lock().events.iter().filter(|e| matches!(e.kind, EventKind::SwitchIn(_))).count()
    }

    /// The fibers seen, ordered by slot index then generation.
    pub fn lanes(&self) -> Vec<Lane> {
        lanes(self.lock().events.make_contiguous())
    }

    /// Every run of every fiber, in time order.
    pub fn slices(&self) -> Vec<Slice> {
        slices(self.lock().events.make_contiguous())
    }

    /// The spans the scheduler spent idle, in time order.
    pub fn idle_spans(&self) -> Vec<IdleSpan> {
        idle_spans(self.lock().events.make_contiguous())
    }

    /// The trace in the Chrome Trace Event format (JSON object form), readable
    /// by <https://ui.perfetto.dev> and `chrome://tracing`.
    ///
    /// * `M` metadata events: `process_name`, and per lane `thread_name` (the
    ///   fiber's name) and `thread_sort_index`;
    /// * `X` complete events, category `run`, one per [`Slice`]: `ts` and `dur`
    ///   in microseconds, named after the fiber, `args.id` its id;
    /// * `i` instant events (thread scope) for `spawn`, `block` (`args.reason`),
    ///   `wake` and `exit`;
    /// * `X` events, category `idle`, on the [`SCHEDULER_TID`] lane.
    pub fn to_chrome_json(&self) -> String {
        chrome::to_chrome_json(self)
    }

    /// The trace as a self-contained SVG timeline: one row per fiber (`<g
    /// class="lane">`, labelled with its name), a `<rect class="slice">` per run,
    /// `class="block"` triangles and `class="wake"` dots, idle spans
    /// (`class="idle"`) on a scheduler row, and a time axis. Hover a shape for
    /// details.
    pub fn to_svg(&self) -> String {
        svg::to_svg(self)
    }
}

impl Trace for TraceRecorder {
    fn spawn(&self, id: FiberId, name: &'static str) {
        self.record(EventKind::Spawn(id, name));
    }
    fn switch_in(&self, id: FiberId) {
        self.record(EventKind::SwitchIn(id));
    }
    fn switch_out(&self, id: FiberId) {
        self.record(EventKind::SwitchOut(id));
    }
    fn block_in(&self, id: FiberId, reason: WaitReason, object: &'static str) {
        self.record(EventKind::Block(id, reason, object));
    }
    fn wake(&self, id: FiberId) {
        self.record(EventKind::Wake(id));
    }
    fn exit(&self, id: FiberId) {
        self.record(EventKind::Exit(id));
    }
    fn idle(&self, now: Ticks) {
        self.record(EventKind::Idle(now));
    }
    fn priority(&self, id: FiberId, effective: crate::Priority) {
        self.record(EventKind::Priority(id, effective));
    }
}
