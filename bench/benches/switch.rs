//! Criterion benches: filament next to its same-run peers.
//!
//! Every case comes from `filament_bench::CASES` and is measured with
//! `iter_custom`: the case runs at least `iters` operations, times only its
//! hot loop, and the time is scaled to exactly `iters` operations, so the
//! reported time is per operation (per yield, per switch, per spawn...).
//! `bench/report.py` turns the medians of one run into the README table.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

fn cases(c: &mut Criterion) {
    for case in filament_bench::CASES {
        c.bench_function(case.name, |b| b.iter_custom(|iters| (case.run)(iters).scaled_to(iters)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = cases
}
criterion_main!(benches);
