//! A `Fiber` handle cannot escape the closure it is passed to: the closure is
//! generic over the borrow of the handle, so its result cannot hold that borrow.
//! Outside the fiber, yielding or blocking through it would switch away from a
//! context that is not the running fiber.
//!
//! `&Fiber` is not `Send` either (see `fiber_not_send.rs`); the wrapper below
//! claims `Send` anyway, so that the error left is the lifetime one.

use filament::{Fiber, Runtime, StaticStack};

static STACK: StaticStack<16384> = StaticStack::new();
static RT: Runtime<'static, 1> = Runtime::new();

struct Smuggled<'a>(&'a Fiber<'static>);

// SAFETY: never sound; here only to get past the `Send` bound.
unsafe impl Send for Smuggled<'_> {}

fn main() {
    let _ = RT.spawn(STACK.claim().unwrap(), |fib| Smuggled(fib));
}
