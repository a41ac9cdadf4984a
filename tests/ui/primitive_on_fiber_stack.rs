//! A primitive on a fiber's own stack cannot be used with a blocking method:
//! blocking takes `&'s self`, so a fiber could otherwise still be queued in the
//! primitive after its frame is gone. Only the `try_` forms accept it.

use filament::sync::Mutex;
use filament::{Runtime, StaticStack};

static STACK: StaticStack<16384> = StaticStack::new();
static RT: Runtime<'static, 2> = Runtime::new();

fn main() {
    let _ = RT.spawn_detached(STACK.claim().unwrap(), |fib| {
        let local = Mutex::new(0);
        *local.lock(fib).unwrap() += 1;
    });
}
