//! `count <case> <ops>`: run one benchmark case for exactly `ops` operations.
//!
//! Driven by `callgrind.sh`, which runs it under callgrind for U and 2U and
//! reports (Ir(2U) - Ir(U)) / U, so process start-up and case setup cancel.
//! `count list` prints the case names.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd] if cmd == "list" => {
            for c in filament_bench::CASES {
                println!("{}\t{}", c.name, c.what);
            }
            ExitCode::SUCCESS
        }
        [name, ops] => {
            let Some(case) = filament_bench::case(name) else {
                eprintln!("unknown case {name:?}; try `count list`");
                return ExitCode::FAILURE;
            };
            let Ok(ops) = ops.parse::<u64>() else {
                eprintln!("ops must be an integer, got {ops:?}");
                return ExitCode::FAILURE;
            };
            let m = (case.run)(ops);
            if m.ops != ops {
                eprintln!("case {name} performed {} ops, not {ops}: pick a multiple of its granularity", m.ops);
                return ExitCode::FAILURE;
            }
            println!("{name}\t{ops}\t{:?}", m.time);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: count <case> <ops> | count list");
            ExitCode::FAILURE
        }
    }
}
