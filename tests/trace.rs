//! The trace recorder (`filament::host::trace`, issue 6): its Chrome Trace Event
//! JSON is parsed and checked against the format's required fields and against
//! the runtime's own counters; its SVG is checked for one lane per fiber and one
//! slice per switch-in.

use std::collections::{BTreeMap, BTreeSet};

use filament::host::trace::{EventKind, SCHEDULER_TID, TraceRecorder};
use filament::sync::Channel;
use filament::{FiberId, Runtime, Stack};
use serde_json::Value;

fn stack() -> Stack<'static> {
    Stack::host(64 * 1024).expect("mmap stack")
}

/// A recorder that lives as long as the test process (`set_tracer` wants `'s`).
fn recorder() -> &'static TraceRecorder {
    Box::leak(Box::new(TraceRecorder::with_capacity(1024)))
}

fn runtime<const N: usize>() -> &'static Runtime<'static, N> {
    Box::leak(Box::new(Runtime::new()))
}

/// What a scenario leaves behind for the checks.
struct Recorded {
    rec: &'static TraceRecorder,
    /// Every fiber spawned: id and name.
    fibers: Vec<(FiberId, &'static str)>,
    /// Sum of `FiberInfo::runs` over all fibers, read from the runtime.
    runtime_runs: u64,
}

/// A pipeline with a channel, a sleeper, a joiner and yields: every hook fires.
fn pipeline() -> Recorded {
    // A channel per call: a primitive binds to the first runtime that uses it.
    let ch: &'static Channel<u32, 1> = Box::leak(Box::new(Channel::new()));
    let rt = runtime::<8>();
    let rec = recorder();
    assert!(rt.set_tracer(rec));
    let producer = rt
        .spawn_named("producer", stack(), move |fib| {
            for i in 0..5 {
                ch.send(fib, i).unwrap();
                if i == 2 {
                    fib.sleep(10);
                }
            }
            ch.close(fib).unwrap();
        })
        .unwrap();
    let consumer = rt
        .spawn_named("consumer", stack(), move |fib| {
            let mut sum = 0;
            while let Ok(v) = ch.recv(fib) {
                sum += v;
                fib.yield_now();
            }
            sum
        })
        .unwrap();
    // A name that needs escaping in both JSON and XML.
    let odd = rt
        .spawn_named("odd \"<name>\" & \\ 'x'", stack(), |fib| {
            for _ in 0..3 {
                fib.yield_now();
            }
        })
        .unwrap();
    let boss = rt
        .spawn_named("boss", stack(), |fib| {
            let worker = fib.spawn_named("worker", stack(), |fib| fib.sleep(5)).ok().unwrap();
            fib.join(worker).unwrap()
        })
        .unwrap();
    rt.run().unwrap();

    // The runtime's own count of switch-ins, before the slots are released.
    let mut ids = vec![producer.id(), consumer.id(), odd.id(), boss.id()];
    let worker = rec
        .events()
        .iter()
        .find_map(|e| match e.kind {
            EventKind::Spawn(id, "worker") => Some(id),
            _ => None,
        })
        .expect("worker spawned");
    let mut runtime_runs: u64 = ids.iter().map(|&id| rt.fiber_info(id).expect("finished, not taken").runs).sum();
    // The worker was joined (its slot is free again): count its runs from the trace's slices.
    runtime_runs += rec.slices().iter().filter(|s| s.fiber == worker).count() as u64;
    ids.push(worker);

    rt.take(producer).unwrap();
    assert_eq!(rt.take(consumer).unwrap(), 10);
    rt.take(odd).unwrap();
    rt.take(boss).unwrap();
    let names = ["producer", "consumer", "odd \"<name>\" & \\ 'x'", "boss", "worker"];
    Recorded { rec, fibers: ids.into_iter().zip(names).collect(), runtime_runs }
}

fn parse(json: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{json}"));
    v["traceEvents"].as_array().expect("traceEvents array").clone()
}

fn num(e: &Value, key: &str) -> f64 {
    e[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {e}"))
}

#[test]
fn chrome_json_has_the_required_fields() {
    let r = pipeline();
    let events = parse(&r.rec.to_chrome_json());
    assert!(!events.is_empty());
    for e in &events {
        assert!(e["name"].is_string(), "name: {e}");
        assert!(e["pid"].is_u64(), "pid: {e}");
        assert!(e["tid"].is_u64(), "tid: {e}");
        match e["ph"].as_str().expect("ph") {
            "X" => {
                assert!(num(e, "ts") >= 0.0, "{e}");
                assert!(num(e, "dur") >= 0.0, "{e}");
                assert!(e["cat"].is_string(), "{e}");
            }
            "i" => {
                assert!(num(e, "ts") >= 0.0, "{e}");
                assert_eq!(e["s"], "t", "instant events are thread-scoped: {e}");
            }
            "M" => {
                let name = e["name"].as_str().unwrap();
                assert!(["process_name", "thread_name", "thread_sort_index"].contains(&name), "{e}");
                assert!(e["args"].is_object(), "{e}");
            }
            other => panic!("unexpected phase {other}: {e}"),
        }
    }
}

#[test]
fn one_thread_name_per_fiber() {
    let r = pipeline();
    let events = parse(&r.rec.to_chrome_json());
    let mut names: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["ph"] == "M" && e["name"] == "thread_name") {
        let tid = e["tid"].as_u64().unwrap();
        names.entry(tid).or_default().push(e["args"]["name"].as_str().expect("args.name").to_string());
    }
    let idle_lane = names.remove(&SCHEDULER_TID);
    assert_eq!(idle_lane, Some(vec!["scheduler (idle)".to_string()]), "sleeps make the scheduler idle");
    let expected: BTreeMap<u64, Vec<String>> =
        r.fibers.iter().map(|&(id, name)| (r.rec.lane_tid(id).unwrap(), vec![name.to_string()])).collect();
    assert_eq!(names, expected);
    // tids are dense in lane order: here the slot index (slots 0..5, none reused).
    for (id, _) in &r.fibers {
        assert_eq!(r.rec.lane_tid(*id), Some(id.index() as u64));
    }
}

#[test]
fn one_slice_per_switch_in() {
    let r = pipeline();
    let events = parse(&r.rec.to_chrome_json());
    let runs: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X" && e["cat"] == "run").collect();
    let switch_ins = r.rec.switch_ins();
    assert_eq!(runs.len(), switch_ins);
    assert_eq!(switch_ins as u64, r.runtime_runs, "the trace agrees with the runtime's run counters");
    assert_eq!(r.rec.slices().len(), switch_ins);

    // Fibers share one thread: no two runs overlap, and none is left open.
    let mut spans: Vec<(f64, f64)> = runs.iter().map(|e| (num(e, "ts"), num(e, "dur"))).collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in spans.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0 + 0.0005, "overlapping runs {w:?}");
    }
    assert!(runs.iter().all(|e| e["args"]["open"] == false));
    // Each run is named after its fiber's lane.
    let lane_names: BTreeMap<u64, &str> = r.fibers.iter().map(|&(id, n)| (r.rec.lane_tid(id).unwrap(), n)).collect();
    for e in &runs {
        assert_eq!(e["name"].as_str(), Some(lane_names[&e["tid"].as_u64().unwrap()]), "{e}");
    }
}

#[test]
fn block_wake_and_idle_events() {
    let r = pipeline();
    let recorded = r.rec.events();
    let blocks = recorded.iter().filter(|e| matches!(e.kind, EventKind::Block(..))).count();
    let wakes = recorded.iter().filter(|e| matches!(e.kind, EventKind::Wake(_))).count();
    let idles = recorded.iter().filter(|e| matches!(e.kind, EventKind::Idle(_))).count();
    assert!(blocks > 0 && wakes > 0 && idles > 0);

    let events = parse(&r.rec.to_chrome_json());
    let named = |n: &str| events.iter().filter(|e| e["ph"] == "i" && e["name"] == n).collect::<Vec<_>>();
    let block = named("block");
    assert_eq!(block.len(), blocks);
    assert_eq!(named("wake").len(), wakes);
    assert_eq!(named("spawn").len(), r.fibers.len());
    assert_eq!(named("exit").len(), r.fibers.len());
    let reasons: BTreeSet<String> = block
        .iter()
        .map(|e| e["args"]["reason"].as_str().expect("args.reason").split(' ').next().unwrap().to_string())
        .collect();
    for kind in ["sleep", "join", "recv"] {
        assert!(reasons.contains(kind), "no `{kind}` block among {reasons:?}");
    }
    let boss = r.fibers.iter().find(|f| f.1 == "boss").unwrap().0;
    let worker = r.fibers.iter().find(|f| f.1 == "worker").unwrap().0;
    assert!(
        block.iter().any(|e| Some(e["tid"].as_u64().unwrap()) == r.rec.lane_tid(boss)
            && e["args"]["reason"] == format!("join {worker}")),
        "boss blocks joining the worker"
    );
    let idle: Vec<&Value> =
        events.iter().filter(|e| e["ph"] == "X" && e["cat"] == "idle" && e["tid"] == SCHEDULER_TID).collect();
    assert_eq!(idle.len(), idles);
    assert_eq!(r.rec.idle_spans().len(), idles);
}

/// Counts `needle` in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// A small well-formedness check: tags balance, quotes pair up, `&` starts an
/// entity or a decimal character reference.
fn assert_balanced_xml(svg: &str) {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.trim()), "mismatched </{name}>");
        } else if !tag.ends_with('/') && !tag.starts_with('?') && !tag.starts_with('!') {
            stack.push(tag.split_whitespace().next().unwrap());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags {stack:?}");
    // Every `&` starts an entity.
    for (i, _) in svg.match_indices('&') {
        let ent = &svg[i..svg[i..].find(';').map_or(svg.len(), |n| i + n + 1)];
        let numeric = ent
            .strip_prefix("&#")
            .and_then(|n| n.strip_suffix(';'))
            .is_some_and(|n| n.parse::<u32>().ok().and_then(char::from_u32).is_some_and(is_xml_char));
        assert!(numeric || ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&ent), "bare & at {ent}");
    }
}

#[test]
fn svg_has_one_lane_per_fiber_and_one_slice_per_run() {
    let r = pipeline();
    let svg = r.rec.to_svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_balanced_xml(&svg);
    assert_eq!(count(&svg, "<g class=\"lane\""), r.fibers.len());
    assert_eq!(count(&svg, "class=\"slice\""), r.rec.switch_ins());
    let events = r.rec.events();
    let blocks = events.iter().filter(|e| matches!(e.kind, EventKind::Block(..))).count();
    let wakes = events.iter().filter(|e| matches!(e.kind, EventKind::Wake(_))).count();
    assert_eq!(count(&svg, "class=\"block\""), blocks);
    assert_eq!(count(&svg, "class=\"wake\""), wakes);
    assert_eq!(count(&svg, "class=\"idle\""), r.rec.idle_spans().len());
    // Each lane is labelled with its fiber's (escaped) name and id.
    for (id, name) in &r.fibers {
        assert_eq!(count(&svg, &format!("data-fiber=\"{id}\"")), 1, "lane of {id}");
        let escaped = name
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;");
        assert!(svg.contains(&format!(">{escaped} <tspan")), "label of {name}");
    }
    assert!(!svg.contains("<name>"), "unescaped name");
}

#[test]
fn yields_alternate_in_fifo_order() {
    let rt = runtime::<4>();
    let rec = recorder();
    rt.set_tracer(rec);
    let a = rt.spawn_named("a", stack(), |fib| (0..3).for_each(|_| fib.yield_now())).ok().unwrap();
    let b = rt.spawn_named("b", stack(), |fib| (0..3).for_each(|_| fib.yield_now())).ok().unwrap();
    rt.run().unwrap();
    let order: Vec<usize> = rec.slices().iter().map(|s| s.fiber.index()).collect();
    assert_eq!(order, [0, 1, 0, 1, 0, 1, 0, 1]);
    let svg = rec.to_svg();
    assert_eq!(count(&svg, "<g class=\"lane\""), 2);
    assert_eq!(count(&svg, "class=\"slice\""), 8);
    // Nothing slept: no idle lane, no idle thread name.
    assert!(!svg.contains("scheduler-lane"));
    assert!(!rec.to_chrome_json().contains(&SCHEDULER_TID.to_string()));
    rt.take(a).unwrap();
    rt.take(b).unwrap();
}

#[test]
fn a_reused_slot_gets_a_lane_of_its_own() {
    let rt = runtime::<1>();
    let rec = recorder();
    rt.set_tracer(rec);
    let first = rt.spawn_named("first", stack(), |fib| fib.yield_now()).ok().unwrap();
    rt.run().unwrap();
    let first_id = first.id();
    rt.take(first).unwrap();
    let second = rt.spawn_named("second", stack(), |_| ()).ok().unwrap();
    let second_id = second.id();
    rt.run().unwrap();
    rt.take(second).unwrap();
    assert_eq!(first_id.index(), second_id.index());
    assert_ne!(rec.lane_tid(first_id), rec.lane_tid(second_id));
    let events = parse(&rec.to_chrome_json());
    let names: Vec<(u64, &str)> = events
        .iter()
        .filter(|e| e["name"] == "thread_name")
        .map(|e| (e["tid"].as_u64().unwrap(), e["args"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [(rec.lane_tid(first_id).unwrap(), "first"), (rec.lane_tid(second_id).unwrap(), "second")]);
    assert_eq!(count(&rec.to_svg(), "<g class=\"lane\""), 2);
}

#[test]
fn a_trace_taken_inside_a_fiber_has_an_open_slice() {
    let rt = runtime::<2>();
    let rec = recorder();
    rt.set_tracer(rec);
    let h = rt
        .spawn_named("self-aware", stack(), move |fib| {
            fib.yield_now();
            rec.to_chrome_json()
        })
        .unwrap();
    rt.run().unwrap();
    let json = rt.take(h).unwrap();
    let runs: Vec<Value> = parse(&json).into_iter().filter(|e| e["ph"] == "X" && e["cat"] == "run").collect::<Vec<_>>();
    assert_eq!(runs.len(), 1, "alone, the yield does not switch: one run, still going");
    assert_eq!(runs[0]["args"]["open"], true);
    // Once finished, the same recorder has it closed.
    assert_eq!(rec.slices().len(), 1);
    assert!(!rec.slices()[0].open);
}

#[test]
fn unnamed_fibers_are_labelled_by_id() {
    let rt = runtime::<2>();
    let rec = recorder();
    rt.set_tracer(rec);
    let h = rt.spawn(stack(), |fib| fib.yield_now()).ok().unwrap();
    let id = h.id();
    rt.run().unwrap();
    rt.take(h).unwrap();
    let events = parse(&rec.to_chrome_json());
    let name = events.iter().find(|e| e["name"] == "thread_name").expect("thread_name");
    assert_eq!(name["args"]["name"], format!("fiber {id}"));
    let svg = rec.to_svg();
    assert!(svg.contains(&format!(">fiber <tspan fill=\"#888\">{id}</tspan>")), "{svg}");
}

/// A tracer that records nothing, to skip over uninteresting fibers.
struct NoTrace;
impl filament::Trace for NoTrace {}

/// Fiber `#0.0` and fiber `#0.32767` used to share `tid` 0
/// (`index + 65536 * (generation % 32767)`): two fibers, one lane.
#[test]
fn lanes_never_share_a_tid() {
    static NO_TRACE: NoTrace = NoTrace;
    let rt = runtime::<1>();
    let rec = recorder();
    let run_one = |name: &'static str| {
        let stack = Stack::host(16 * 1024).expect("mmap stack").without_painting();
        let h = rt.spawn_named(name, stack, |fib| fib.yield_now()).ok().unwrap();
        let id = h.id();
        rt.run().unwrap();
        rt.take(h).unwrap();
        id
    };
    assert!(rt.set_tracer(rec));
    let first = run_one("first");
    assert!(rt.set_tracer(&NO_TRACE));
    while run_one("").generation() < 32766 {}
    assert!(rt.set_tracer(rec));
    let last = run_one("last");
    assert_eq!((first.index(), first.generation()), (0, 0));
    assert_eq!((last.index(), last.generation()), (0, 32767));

    let events = parse(&rec.to_chrome_json());
    let mut lanes: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for e in events.iter().filter(|e| e["name"] == "thread_name") {
        lanes.entry(e["tid"].as_u64().unwrap()).or_default().push(e["args"]["name"].as_str().unwrap());
    }
    assert_eq!(lanes.len(), 2, "one lane per fiber: {lanes:?}");
    assert!(lanes.values().all(|names| names.len() == 1), "{lanes:?}");
    // Every run sits on its own fiber's lane.
    for e in events.iter().filter(|e| e["ph"] == "X") {
        let tid = e["tid"].as_u64().unwrap();
        assert_eq!(lanes[&tid], [e["name"].as_str().unwrap()], "{e}");
    }
    // Perfetto reads a tid as a 32-bit number: lanes stay below the scheduler's.
    assert!(lanes.keys().all(|&tid| tid < SCHEDULER_TID), "{lanes:?}");
}

/// Whether `c` may appear in an XML 1.0 document at all.
fn is_xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The SVG used to pass U+FFFE and U+FFFF (not XML characters) through from
/// a fiber's name: no XML parser accepts the file.
#[test]
fn the_svg_is_well_formed_xml_for_any_fiber_name() {
    const NAMES: [&str; 4] = [
        "<script>alert('x')</script> & \"q\"",
        "ctl \u{0}\u{1}\u{8}\u{b}\u{c}\u{1b}\u{7f}\u{85} tab\tnl\ncr\r",
        "non-chars \u{fffe}\u{ffff} ]]> &amp; &#0;",
        "\u{10ffff}\u{e000}\u{d7ff}",
    ];
    let rt = runtime::<4>();
    let rec = recorder();
    rt.set_tracer(rec);
    let handles: Vec<_> =
        NAMES.iter().map(|&n| rt.spawn_named(n, stack(), |fib| fib.yield_now()).ok().unwrap()).collect();
    rt.run().unwrap();
    for h in handles {
        rt.take(h).unwrap();
    }
    let svg = rec.to_svg();
    if let Some(bad) = svg.chars().find(|&c| !is_xml_char(c)) {
        panic!("U+{:04X} is not an XML character:\n{svg}", bad as u32);
    }
    assert_balanced_xml(&svg);
    assert_eq!(count(&svg, "<g class=\"lane\""), NAMES.len());
    assert!(!svg.contains("<script") && !svg.contains("]]>"), "{svg}");
    // The JSON keeps the names exactly.
    let events = parse(&rec.to_chrome_json());
    let names: BTreeSet<&str> =
        events.iter().filter(|e| e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, NAMES.into_iter().collect());
}

/// Two fibers yielding `n` times each, traced by `rec` on a fresh runtime.
fn ping_pong(rec: &'static TraceRecorder, n: usize) {
    let rt = runtime::<2>();
    rt.set_tracer(rec);
    let a = rt.spawn_named("ping", stack(), move |fib| (0..n).for_each(|_| fib.yield_now())).ok().unwrap();
    let b = rt.spawn_named("pong", stack(), move |fib| (0..n).for_each(|_| fib.yield_now())).ok().unwrap();
    rt.run().unwrap();
    rt.take(a).unwrap();
    rt.take(b).unwrap();
}

/// `TraceRecorder::bounded(n)` keeps the last `n` events (the tail of what an
/// unbounded recorder sees for the same run) and counts the rest as dropped.
#[test]
fn a_bounded_recorder_keeps_the_last_events() {
    let all = recorder();
    ping_pong(all, 50);
    let full = all.events();
    assert_eq!(all.dropped(), 0);
    assert!(full.len() > 200, "{}", full.len());

    let last: &'static TraceRecorder = Box::leak(Box::new(TraceRecorder::bounded(16)));
    ping_pong(last, 50);
    let kept = last.events();
    assert_eq!(kept.len(), 16);
    assert_eq!(last.dropped(), (full.len() - 16) as u64);
    let kinds = |events: &[filament::host::trace::Event]| events.iter().map(|e| e.kind).collect::<Vec<_>>();
    assert_eq!(kinds(&kept), kinds(&full[full.len() - 16..]), "the same run, the same last events");
    assert!(kept.windows(2).all(|w| w[0].at <= w[1].at));
    // The exports work on what is kept: the spawns were dropped, so the lanes are labelled by id.
    let events = parse(&last.to_chrome_json());
    let names: Vec<&str> =
        events.iter().filter(|e| e["name"] == "thread_name").map(|e| e["args"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fiber #0.0", "fiber #1.0"]);
    assert!(last.slices().len() >= 4);
    assert_balanced_xml(&last.to_svg());
    // clear() starts over, dropped count included.
    last.clear();
    assert_eq!((last.events().len(), last.dropped()), (0, 0));

    // bounded(0) keeps nothing and still counts.
    static NOTHING: TraceRecorder = TraceRecorder::bounded(0);
    ping_pong(&NOTHING, 3);
    assert!(NOTHING.events().is_empty());
    assert!(NOTHING.dropped() > 0);
    assert!(parse(&NOTHING.to_chrome_json()).len() == 1, "only the process name");
}

static NAMED_INBOX: filament::sync::Channel<u32, 1> = filament::sync::Channel::new().named("inbox");

/// A primitive's name shows in the trace: the block event carries it, and
/// the Chrome JSON's block marker names it.
#[test]
fn block_events_name_the_primitive() {
    static REC: filament::host::trace::TraceRecorder = filament::host::trace::TraceRecorder::new();
    let rt = Box::new(Runtime::<'static, 2>::new());
    assert!(rt.set_tracer(&REC));
    let r = rt.spawn(Stack::host(64 * 1024).unwrap(), |fib| NAMED_INBOX.recv(fib).unwrap()).unwrap();
    let s = rt.spawn(Stack::host(64 * 1024).unwrap(), |fib| NAMED_INBOX.send(fib, 1).unwrap()).unwrap();
    rt.run().unwrap();
    rt.take(r).unwrap();
    rt.take(s).unwrap();
    let named = REC.events().iter().filter(|e| matches!(e.kind, EventKind::Block(_, _, "inbox"))).count();
    assert_eq!(named, 1, "the receiver's block names the channel");
    assert!(REC.to_chrome_json().contains("inbox"));
}

/// A tracer whose `exit` hook uses a lot of stack.
struct HungryExit;

impl filament::Trace for HungryExit {
    fn exit(&self, _id: FiberId) {
        let mut big = [0u8; 12_000];
        std::hint::black_box(&mut big);
    }
}

/// Final review: the trace hooks run on a finished fiber's stack after its
/// exit canary check; a hook that overflowed it wrote below the stack and
/// nothing noticed. The canary is checked again before the final switch.
#[test]
fn an_exit_hook_that_overflows_is_caught() {
    let out = filament::host::run_in_child("an_exit_hook_that_overflows_is_caught", || {
        static HUNGRY: HungryExit = HungryExit;
        let rt = Box::new(Runtime::<'static, 1>::new());
        assert!(rt.set_tracer(&HUNGRY));
        // A stack of exactly the size spawn accepts (the glue's reserve does
        // not cover a hook's 12 KB frame), with slack memory below it.
        let tiny: &'static mut [u8] = Box::leak(vec![0u8; 2048].into_boxed_slice());
        let err = rt.spawn(Stack::from_slice(tiny).unwrap(), |_| ()).unwrap_err();
        let filament::SpawnErrorKind::StackTooSmall { needed, .. } = err.kind() else { panic!("{err}") };
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024 + needed].into_boxed_slice());
        let lo = (buf.as_ptr() as usize + 64 * 1024).next_multiple_of(16) - buf.as_ptr() as usize;
        let mem = &mut buf[lo..lo + needed];
        let _h = rt.spawn_named("short", Stack::from_slice(mem).unwrap(), |_| ()).unwrap();
        let _ = rt.run();
        println!("UNREACHABLE");
    });
    assert!(!out.stdout.contains("UNREACHABLE"), "{out:?}");
    assert!(out.stderr.contains("canary of fiber #0.0 \"short\""), "{out:?}");
}

/// A fiber waiting on an `IrqQueue` is traced like any other wait: a block
/// event with the `Irq` reason and the queue's name, then a wake when a value
/// pushed from "interrupt context" (another thread here) arrives.
#[test]
fn irq_queue_wait_is_traced_with_its_name() {
    use filament::{IrqQueue, WaitReason};
    static RX: IrqQueue<u8, 4> = IrqQueue::new().named("uart-rx");
    let rt = runtime::<1>();
    let rec = recorder();
    rt.set_tracer(rec);
    let h = rt.spawn_named("reader", stack(), |fib| RX.recv(fib).unwrap()).ok().unwrap();
    let id = h.id();
    let pusher = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        RX.try_send_from_isr(7).unwrap();
    });
    rt.run_with_idle(&mut filament::host::HostClock::new()).unwrap();
    pusher.join().unwrap();
    assert_eq!(rt.take(h).unwrap(), 7);
    let events = rec.events();
    let block =
        events.iter().position(|e| matches!(e.kind, EventKind::Block(f, WaitReason::Irq(_), "uart-rx") if f == id));
    let block = block.expect("a block event naming the queue");
    assert!(events[block..].iter().any(|e| e.kind == EventKind::Wake(id)), "woken after the block");
}
