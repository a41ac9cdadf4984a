//! `Fiber` is not `Send`: it stands for "the fiber running now on this thread",
//! so it cannot be handed to another thread.

fn is_send<T: Send>() {}

fn main() {
    is_send::<filament::Fiber<'static>>();
}
