//! The Chrome Trace Event / Perfetto JSON export.

use std::fmt::Write as _;
use std::string::String;
use std::vec::Vec;

use super::analyze::{idle_spans, key, lane_map, lanes, slices};
use super::text::{Json, Micros, reason_with_name};
use super::{EventKind, SCHEDULER_TID, TraceRecorder};
use crate::fiber::FiberId;

/// The body of [`TraceRecorder::to_chrome_json`].
pub(super) fn to_chrome_json(rec: &TraceRecorder) -> String {
    let events = rec.events();
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
    item(&mut out, format_args!(r#"{{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{{"name":"filament"}}}}"#));
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
