//! Reading the recorded events: lanes, runs and idle spans.

use std::collections::BTreeMap;
use std::time::Duration;
use std::vec::Vec;

use super::{Event, EventKind, IdleSpan, Lane, SCHEDULER_TID, Slice};
use crate::fiber::FiberId;

/// The `tid` of lane number `k` (skipping [`SCHEDULER_TID`]).
fn tid_of_lane(k: usize) -> u64 {
    let k = k as u64;
    if k < SCHEDULER_TID { k } else { k + 1 }
}

/// The lane order: slot index, then generation.
pub(super) fn key(id: FiberId) -> (usize, u32) {
    (id.index(), id.generation())
}

/// Lane position by fiber.
pub(super) fn lane_map(lanes: &[Lane]) -> BTreeMap<(usize, u32), usize> {
    lanes.iter().enumerate().map(|(k, l)| (key(l.fiber), k)).collect()
}

pub(super) fn lanes(events: &[Event]) -> Vec<Lane> {
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

pub(super) fn slices(events: &[Event]) -> Vec<Slice> {
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

pub(super) fn idle_spans(events: &[Event]) -> Vec<IdleSpan> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if let EventKind::Idle(now) = e.kind {
            let end = events.get(i + 1).map_or(e.at, |n| n.at);
            out.push(IdleSpan { start: e.at, end, now });
        }
    }
    out
}
