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

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::string::String;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::fiber::{FiberId, WaitReason};
use crate::time::Ticks;
use crate::trace::Trace;

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

/// The `tid` of lane number `k` (skipping [`SCHEDULER_TID`]).
fn tid_of_lane(k: usize) -> u64 {
    let k = k as u64;
    if k < SCHEDULER_TID { k } else { k + 1 }
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
        let events = self.events();
        let lanes = lanes(&events);
        let mut out = String::with_capacity(128 + events.len() * 110);
        out.push_str("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"filament TraceRecorder\"},");
        out.push_str("\"traceEvents\":[\n");
        let mut first = true;
        let mut item = |out: &mut String, text: core::fmt::Arguments<'_>| {
            if !first {
                out.push_str(",\n");
            }
            first = false;
            let _ = out.write_fmt(text);
        };
        item(
            &mut out,
            format_args!(r#"{{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{{"name":"filament"}}}}"#),
        );
        let idle = idle_spans(&events);
        let mut named: Vec<(u64, String)> = lanes.iter().map(|l| (l.tid, l.label())).collect();
        if !idle.is_empty() {
            named.push((SCHEDULER_TID, String::from("scheduler (idle)")));
        }
        for (tid, label) in &named {
            let label = Json(label);
            item(
                &mut out,
                format_args!(r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{tid},"args":{{"name":"{label}"}}}}"#),
            );
            item(
                &mut out,
                format_args!(
                    r#"{{"name":"thread_sort_index","ph":"M","pid":1,"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
                ),
            );
        }
        let by_fiber = lane_map(&lanes);
        let lane_of = |id: FiberId| &lanes[by_fiber[&key(id)]];
        for s in slices(&events) {
            let lane = lane_of(s.fiber);
            let (tid, name) = (lane.tid, lane.label());
            item(
                &mut out,
                format_args!(
                    r#"{{"name":"{}","cat":"run","ph":"X","ts":{},"dur":{},"pid":1,"tid":{tid},"args":{{"id":"{}","open":{}}}}}"#,
                    Json(&name),
                    Micros(s.start),
                    Micros(s.end.saturating_sub(s.start)),
                    s.fiber,
                    s.open
                ),
            );
        }
        for e in &events {
            let (name, id, reason) = match e.kind {
                EventKind::Spawn(id, _) => ("spawn", id, None),
                EventKind::Block(id, r, object) => ("block", id, Some(reason_with_name(r, object))),
                EventKind::Wake(id) => ("wake", id, None),
                EventKind::Exit(id) => ("exit", id, None),
                EventKind::Priority(id, p) => ("priority", id, Some(std::format!("priority {}", p.get()))),
                _ => continue,
            };
            let tid = lane_of(id).tid;
            let ts = Micros(e.at);
            match reason {
                Some(r) => item(
                    &mut out,
                    format_args!(
                        r#"{{"name":"{name}","cat":"{name}","ph":"i","s":"t","ts":{ts},"pid":1,"tid":{tid},"args":{{"id":"{id}","reason":"{}"}}}}"#,
                        Json(&r)
                    ),
                ),
                None => item(
                    &mut out,
                    format_args!(
                        r#"{{"name":"{name}","cat":"{name}","ph":"i","s":"t","ts":{ts},"pid":1,"tid":{tid},"args":{{"id":"{id}"}}}}"#
                    ),
                ),
            }
        }
        for span in idle {
            item(
                &mut out,
                format_args!(
                    r#"{{"name":"idle","cat":"idle","ph":"X","ts":{},"dur":{},"pid":1,"tid":{SCHEDULER_TID},"args":{{"now":{}}}}}"#,
                    Micros(span.start),
                    Micros(span.end.saturating_sub(span.start)),
                    span.now
                ),
            );
        }
        out.push_str("\n]}\n");
        out
    }

    /// The trace as a self-contained SVG timeline: one row per fiber (`<g
    /// class="lane">`, labelled with its name), a `<rect class="slice">` per run,
    /// `class="block"` triangles and `class="wake"` dots, idle spans
    /// (`class="idle"`) on a scheduler row, and a time axis. Hover a shape for
    /// details.
    pub fn to_svg(&self) -> String {
        let events = self.events();
        let lanes = lanes(&events);
        let slices = slices(&events);
        let idle = idle_spans(&events);
        let total = events.last().map_or(Duration::ZERO, |e| e.at).max(Duration::from_micros(1));

        const WIDTH: f64 = 1200.0;
        const LEFT: f64 = 170.0;
        const RIGHT: f64 = 30.0;
        const TOP: f64 = 44.0;
        const ROW: f64 = 30.0;
        const BAR: f64 = 18.0;
        let plot = WIDTH - LEFT - RIGHT;
        let rows = lanes.len() + usize::from(!idle.is_empty());
        let axis_y = TOP + ROW * rows as f64 + 6.0;
        let height = axis_y + 40.0;
        let x = |d: Duration| LEFT + d.as_secs_f64() / total.as_secs_f64() * plot;
        let by_fiber = lane_map(&lanes);
        let row_of = |id: FiberId| by_fiber[&key(id)];
        let bar_y = |row: usize| TOP + ROW * row as f64 + (ROW - BAR) / 2.0;

        let mut out = String::with_capacity(2048 + slices.len() * 160 + events.len() * 60);
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
<style>
.lane-bg {{ fill: #f4f5f7; }} .lane-bg.odd {{ fill: #eaecef; }}
.lane-label {{ fill: #222; dominant-baseline: middle; }}
.slice {{ stroke: #00000055; stroke-width: 0.5; }}
.block {{ fill: #d62728; }} .wake {{ fill: #2ca02c; }}
.idle {{ fill: #bbbbbb; }}
.axis line, .axis path {{ stroke: #555; stroke-width: 1; }} .axis text {{ fill: #444; font-size: 11px; text-anchor: middle; }}
.grid {{ stroke: #00000018; stroke-width: 1; }}
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
<text x="{LEFT}" y="22" font-size="15" font-weight="bold">filament timeline</text>
<text x="{}" y="22" text-anchor="end" fill="#555">{} fibers, {} runs in {} · ▮ run  ▼ block  ● wake</text>
"##,
            WIDTH - RIGHT,
            lanes.len(),
            slices.len(),
            Span(total),
        );

        // Axis: a "nice" step giving about ten ticks.
        let (step, unit, scale) = axis_step(total);
        let _ =
            writeln!(out, r#"<g class="axis"><line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}"/>"#, LEFT + plot);
        let mut k = 0u32;
        loop {
            let t = step * f64::from(k);
            if t > total.as_secs_f64() * (1.0 + 1e-9) {
                break;
            }
            let tx = LEFT + t / total.as_secs_f64() * plot;
            let _ = writeln!(
                out,
                r#"<line class="grid" x1="{tx:.2}" y1="{TOP}" x2="{tx:.2}" y2="{axis_y}"/><line x1="{tx:.2}" y1="{axis_y}" x2="{tx:.2}" y2="{}"/><text x="{tx:.2}" y="{}">{} {unit}</text>"#,
                axis_y + 5.0,
                axis_y + 18.0,
                Num(t * scale)
            );
            k += 1;
        }
        out.push_str("</g>\n");

        let color = |row: usize| PALETTE[row % PALETTE.len()];
        for (row, lane) in lanes.iter().enumerate() {
            let y = TOP + ROW * row as f64;
            let odd = if row % 2 == 1 { " odd" } else { "" };
            let _ = writeln!(
                out,
                r##"<g class="lane" data-fiber="{}" data-tid="{}"><rect class="lane-bg{odd}" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/><text class="lane-label" x="10" y="{}">{} <tspan fill="#888">{}</tspan></text>"##,
                lane.fiber,
                lane.tid,
                y + ROW / 2.0,
                Xml(if lane.name.is_empty() { "fiber" } else { lane.name }),
                lane.fiber
            );
            for s in slices.iter().filter(|s| row_of(s.fiber) == row) {
                let x0 = x(s.start);
                let w = (x(s.end) - x0).max(0.6);
                let _ = writeln!(
                    out,
                    r#"<rect class="slice" x="{x0:.2}" y="{:.2}" width="{w:.2}" height="{BAR}" fill="{}"><title>{} {}: run at {} for {}{}</title></rect>"#,
                    bar_y(row),
                    color(row),
                    Xml(&lane.label()),
                    lane.fiber,
                    Span(s.start),
                    Span(s.end.saturating_sub(s.start)),
                    if s.open { " (still running)" } else { "" }
                );
            }
            out.push_str("</g>\n");
        }
        for e in &events {
            match e.kind {
                EventKind::Block(id, r, object) => {
                    let (mx, my) = (x(e.at), bar_y(row_of(id)) - 1.0);
                    let _ = writeln!(
                        out,
                        r#"<path class="block" d="M{:.2} {my:.2} l-4 -6 h8 z"><title>{} blocks: {} at {}</title></path>"#,
                        mx,
                        id,
                        Xml(&reason_with_name(r, object)),
                        Span(e.at)
                    );
                }
                EventKind::Wake(id) => {
                    let (mx, my) = (x(e.at), bar_y(row_of(id)) + BAR + 2.5);
                    let _ = writeln!(
                        out,
                        r#"<circle class="wake" cx="{mx:.2}" cy="{my:.2}" r="2.5"><title>{id} woken at {}</title></circle>"#,
                        Span(e.at)
                    );
                }
                _ => {}
            }
        }
        if !idle.is_empty() {
            let row = lanes.len();
            let y = TOP + ROW * row as f64;
            let odd = if row % 2 == 1 { " odd" } else { "" };
            let _ = writeln!(
                out,
                r##"<g class="scheduler-lane"><rect class="lane-bg{odd}" x="0" y="{y}" width="{WIDTH}" height="{ROW}"/><text class="lane-label" x="10" y="{}" fill="#666">scheduler (idle)</text>"##,
                y + ROW / 2.0
            );
            for span in &idle {
                let x0 = x(span.start);
                let w = (x(span.end) - x0).max(0.6);
                let _ = writeln!(
                    out,
                    r#"<rect class="idle" x="{x0:.2}" y="{:.2}" width="{w:.2}" height="{BAR}"><title>idle at tick {} for {}</title></rect>"#,
                    bar_y(row),
                    span.now,
                    Span(span.end.saturating_sub(span.start))
                );
            }
            out.push_str("</g>\n");
        }
        out.push_str("</svg>\n");
        out
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

const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759", "#9c755f", "#ff9da7", "#bab0ac"];

/// The lane order: slot index, then generation.
fn key(id: FiberId) -> (usize, u32) {
    (id.index(), id.generation())
}

/// Lane position by fiber.
fn lane_map(lanes: &[Lane]) -> BTreeMap<(usize, u32), usize> {
    lanes.iter().enumerate().map(|(k, l)| (key(l.fiber), k)).collect()
}

fn lanes(events: &[Event]) -> Vec<Lane> {
    let mut seen: BTreeMap<(usize, u32), Lane> = BTreeMap::new();
    for e in events {
        let Some(id) = e.kind.fiber() else { continue };
        let name = if let EventKind::Spawn(_, n) = e.kind { n } else { "" };
        let lane = seen.entry(key(id)).or_insert(Lane { fiber: id, name, tid: 0 });
        if lane.name.is_empty() {
            lane.name = name;
        }
    }
    let mut lanes: Vec<Lane> = seen.into_values().collect();
    for (k, lane) in lanes.iter_mut().enumerate() {
        lane.tid = tid_of_lane(k);
    }
    lanes
}

fn slices(events: &[Event]) -> Vec<Slice> {
    let mut out = Vec::new();
    let mut running: Option<(FiberId, Duration)> = None;
    for e in events {
        match e.kind {
            EventKind::SwitchIn(id) => {
                // A switch-in without a switch-out of the previous fiber cannot
                // happen in filament; close it defensively.
                if let Some((prev, start)) = running.take() {
                    out.push(Slice { fiber: prev, start, end: e.at, open: false });
                }
                running = Some((id, e.at));
            }
            EventKind::SwitchOut(id) => {
                if let Some((cur, start)) = running
                    && cur == id
                {
                    out.push(Slice { fiber: id, start, end: e.at, open: false });
                    running = None;
                }
            }
            _ => {}
        }
    }
    if let Some((id, start)) = running {
        let end = events.last().map_or(start, |e| e.at);
        out.push(Slice { fiber: id, start, end, open: true });
    }
    out
}

fn idle_spans(events: &[Event]) -> Vec<IdleSpan> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if let EventKind::Idle(now) = e.kind {
            let end = events.get(i + 1).map_or(e.at, |n| n.at);
            out.push(IdleSpan { start: e.at, end, now });
        }
    }
    out
}

/// [`reason_text`] plus the primitive's name, quoted, if it has one.
fn reason_with_name(r: WaitReason, object: &str) -> String {
    if object.is_empty() { reason_text(r) } else { std::format!("{} \"{object}\"", reason_text(r)) }
}

/// A short human-readable wait reason (addresses in hex).
pub fn reason_text(r: WaitReason) -> String {
    match r {
        WaitReason::Join(id) => std::format!("join {id}"),
        WaitReason::Mutex(a) => std::format!("mutex {a:#x}"),
        WaitReason::Semaphore(a) => std::format!("semaphore {a:#x}"),
        WaitReason::Send(a) => std::format!("send {a:#x}"),
        WaitReason::Recv(a) => std::format!("recv {a:#x}"),
        WaitReason::Event(a) => std::format!("event {a:#x}"),
        WaitReason::Barrier(a) => std::format!("barrier {a:#x}"),
        WaitReason::Irq(a) => std::format!("irq {a:#x}"),
        WaitReason::EventGroup(a) => std::format!("event group {a:#x}"),
        WaitReason::Sleep(t) => std::format!("sleep until tick {t}"),
        WaitReason::Notify => std::string::String::from("notification"),
        WaitReason::Suspended => std::string::String::from("resume (suspended)"),
        WaitReason::Select(s) => std::format!("{s}"),
    }
}

/// Microseconds with nanosecond precision, as a JSON number.
struct Micros(Duration);
impl core::fmt::Display for Micros {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ns = self.0.as_nanos();
        write!(f, "{}.{:03}", ns / 1000, ns % 1000)
    }
}

/// A duration for people: ns, µs or ms.
struct Span(Duration);
impl core::fmt::Display for Span {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ns = self.0.as_nanos() as f64;
        if ns < 1e3 {
            write!(f, "{ns:.0} ns")
        } else if ns < 1e6 {
            write!(f, "{:.1} µs", ns / 1e3)
        } else {
            write!(f, "{:.2} ms", ns / 1e6)
        }
    }
}

/// An axis label: no trailing zeros.
struct Num(f64);
impl core::fmt::Display for Num {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = std::format!("{:.3}", self.0);
        f.write_str(s.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The axis step in seconds (1, 2 or 5 times a power of ten, about ten ticks),
/// with the unit to label it in and the factor from seconds to that unit.
fn axis_step(total: Duration) -> (f64, &'static str, f64) {
    let t = total.as_secs_f64();
    let raw = t / 10.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    if t >= 1.0 {
        (step, "s", 1.0)
    } else if t >= 1e-3 {
        (step, "ms", 1e3)
    } else if t >= 1e-6 {
        (step, "µs", 1e6)
    } else {
        (step, "ns", 1e9)
    }
}

/// Escapes a string for a JSON string literal.
struct Json<'a>(&'a str);
impl core::fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// Escapes a string for XML text and attribute values: the five markup
/// characters become entities, tab, newline and carriage return character
/// references (an attribute value would turn them into spaces), and what XML
/// 1.0 does not allow at all (other C0 controls, U+FFFE, U+FFFF) U+FFFD.
struct Xml<'a>(&'a str);
impl core::fmt::Display for Xml<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for c in self.0.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&apos;")?,
                '\t' | '\n' | '\r' => write!(f, "&#{};", c as u32)?,
                c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => f.write_char('\u{FFFD}')?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(std::format!("{}", Json("a\"b\\c\n\u{1}")), "a\\\"b\\\\c\\n\\u0001");
        assert_eq!(std::format!("{}", Xml("<a & 'b'>\"")), "&lt;a &amp; &apos;b&apos;&gt;&quot;");
        assert_eq!(
            std::format!("{}", Xml("\t\n\r\u{0}\u{1f}\u{7f}\u{fffe}\u{ffff}\u{fffd}")),
            "&#9;&#10;&#13;\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}\u{fffd}"
        );
        assert_eq!(std::format!("{}", Micros(Duration::from_nanos(1_234_567))), "1234.567");
    }
}
