//! A fiber of a `'static` runtime cannot borrow the spawner's locals: its
//! closure must be `'static` (the runtime, and so the fiber, may outlive them).

use filament::{Runtime, StaticStack};

static STACK: StaticStack<16384> = StaticStack::new();
static RT: Runtime<'static, 1> = Runtime::new();

fn spawn_with_local() {
    let local = [1u32, 2, 3];
    let borrowed = &local;
    let _ = RT.spawn(STACK.claim().unwrap(), move |_| borrowed.len());
}

fn main() {
    spawn_with_local();
}
