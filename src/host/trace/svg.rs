//! The self-contained SVG timeline export.

use std::fmt::Write as _;
use std::string::String;
use std::time::Duration;

use super::analyze::{idle_spans, key, lane_map, lanes, slices};
use super::text::{Num, Span, Xml, reason_with_name};
use super::{EventKind, TraceRecorder};
use crate::fiber::FiberId;

/// The body of [`TraceRecorder::to_svg`].
pub(super) fn to_svg(rec: &TraceRecorder) -> String {
    let events = rec.events();
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
    let _ = writeln!(out, r#"<g class="axis"><line x1="{LEFT}" y1="{axis_y}" x2="{}" y2="{axis_y}"/>"#, LEFT + plot);
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

const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#e15759", "#9c755f", "#ff9da7", "#bab0ac"];

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
