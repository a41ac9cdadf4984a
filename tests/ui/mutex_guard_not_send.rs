//! A `MutexGuard` is not `Send`: the lock belongs to the fiber that took it and
//! is released on that fiber's runtime.

fn is_send<T: Send>() {}

fn main() {
    is_send::<filament::sync::MutexGuard<'static, u32>>();
}
