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
//!     RT.spawn_named(name, stack, |fib| (0..3).for_each(|_| fib.yield_now())).ok().unwrap();
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
//! Every fiber gets one lane: in the JSON a thread (`tid` = the fiber's slot
//! index, named by a `thread_name` metadata event), in the SVG a row (`<g
//! class="lane">`). A fiber in a reused slot (generation `g > 0`) gets
//! `tid = index + 65536·g` so it keeps a lane of its own. Times the scheduler
//! spent idle (no fiber ready, the idle hook waiting) go on an extra lane,
//! [`SCHEDULER_TID`].
//!
//! # Cost
//!
//! Each hook takes [`Instant::now`], a mutex and a `Vec` push: tens of
//! nanoseconds, on the scheduler's path between two fibers. The hooks never
//! block on anything but that uncontended mutex and never switch fibers.

use std::fmt::Write as _;
use std::string::String;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::fiber::{FiberId, WaitReason};
use crate::time::Ticks;
use crate::trace::Trace;

/// The `tid` of the lane that shows when the scheduler was idle.
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
    /// The fiber blocked.
    Block(FiberId, WaitReason),
    /// The fiber was made ready by a wake.
    Wake(FiberId),
    /// The fiber's closure returned.
    Exit(FiberId),
    /// Nothing was ready; the idle hook ran at this tick.
    Idle(Ticks),
}

impl EventKind {
    /// The fiber the event is about (`None` for [`EventKind::Idle`]).
    pub fn fiber(&self) -> Option<FiberId> {
        match *self {
            EventKind::Spawn(id, _)
            | EventKind::SwitchIn(id)
            | EventKind::SwitchOut(id)
            | EventKind::Block(id, _)
            | EventKind::Wake(id)
            | EventKind::Exit(id) => Some(id),
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
    /// Its `tid` in the JSON export.
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
    events: Vec<Event>,
}

/// Records scheduler events for a timeline. Install it with
/// [`Runtime::set_tracer`](crate::Runtime::set_tracer).
///
/// `const`-constructible, so it can be a `static` next to a `static` runtime.
/// Time zero is the first recorded event.
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

/// The `tid` of a fiber's lane in the JSON export.
pub fn lane_tid(id: FiberId) -> u64 {
    id.index() as u64 + 65536 * (u64::from(id.generation()) % 32767)
}

impl TraceRecorder {
    /// An empty recorder.
    pub const fn new() -> Self {
        TraceRecorder { inner: Mutex::new(Inner { origin: None, events: Vec::new() }) }
    }

    /// An empty recorder with room for `events` events before it allocates.
    pub fn with_capacity(events: usize) -> Self {
        TraceRecorder { inner: Mutex::new(Inner { origin: None, events: Vec::with_capacity(events) }) }
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
        inner.events.push(Event { at: now.saturating_duration_since(origin), kind });
    }

    /// Forgets every event; the next one is time zero again.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.events.clear();
        inner.origin = None;
    }

    /// A copy of the events recorded so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// How many times a fiber was switched in.
    pub fn switch_ins(&self) -> usize {
        self.lock().events.iter().filter(|e| matches!(e.kind, EventKind::SwitchIn(_))).count()
    }

    /// The fibers seen, ordered by slot index then generation.
    pub fn lanes(&self) -> Vec<Lane> {
        lanes(&self.lock().events)
    }

    /// Every run of every fiber, in time order.
    pub fn slices(&self) -> Vec<Slice> {
        slices(&self.lock().events)
    }

    /// The spans the scheduler spent idle, in time order.
    pub fn idle_spans(&self) -> Vec<IdleSpan> {
        idle_spans(&self.lock().events)
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
        let label_of = |id: FiberId| lanes.iter().find(|l| l.fiber == id).map(Lane::label).unwrap_or_default();
        for s in slices(&events) {
            let (tid, name) = (lane_tid(s.fiber), label_of(s.fiber));
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
                EventKind::Block(id, r) => ("block", id, Some(reason_text(r))),
                EventKind::Wake(id) => ("wake", id, None),
                EventKind::Exit(id) => ("exit", id, None),
                _ => continue,
            };
            let tid = lane_tid(id);
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
        let row_of = |id: FiberId| lanes.iter().position(|l| l.fiber == id).unwrap_or(0);
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
            for s in slices.iter().filter(|s| s.fiber == lane.fiber) {
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
                EventKind::Block(id, r) => {
                    let (mx, my) = (x(e.at), bar_y(row_of(id)) - 1.0);
                    let _ = writeln!(
                        out,
                        r#"<path class="block" d="M{:.2} {my:.2} l-4 -6 h8 z"><title>{} blocks: {} at {}</title></path>"#,
                        mx,
                        id,
                        Xml(&reason_text(r)),
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
    fn block(&self, id: FiberId, reason: WaitReason) {
        self.record(EventKind::Block(id, reason));
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
}

const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759", "#9c755f", "#ff9da7", "#bab0ac"];

fn lanes(events: &[Event]) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for e in events {
        let Some(id) = e.kind.fiber() else { continue };
        let name = if let EventKind::Spawn(_, n) = e.kind { n } else { "" };
        match lanes.iter_mut().find(|l| l.fiber == id) {
            Some(l) if l.name.is_empty() => l.name = name,
            Some(_) => {}
            None => lanes.push(Lane { fiber: id, name, tid: lane_tid(id) }),
        }
    }
    lanes.sort_by_key(|l| (l.fiber.index(), l.fiber.generation()));
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
        WaitReason::Sleep(t) => std::format!("sleep until tick {t}"),
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

/// Escapes a string for XML text and attribute values.
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
                // Characters XML 1.0 does not allow at all.
                c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => f.write_char('\u{FFFD}')?,
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
        assert_eq!(std::format!("{}", Micros(Duration::from_nanos(1_234_567))), "1234.567");
    }
}
