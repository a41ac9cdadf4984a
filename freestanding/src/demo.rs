//! placeholder
pub fn run() -> i32 {
    let x = core::hint::black_box(1.0f64) / 3.0;
    crate::println!("x={x:.3}");
    42
}
