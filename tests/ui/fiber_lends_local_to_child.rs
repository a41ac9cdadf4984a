//! A fiber cannot lend its own locals to a fiber it spawns: the child may run
//! after the parent returned and its stack was reused (`Fiber<'s>` is invariant
//! in `'s`, so the child's closure must live for the runtime's whole `'s`).

use filament::{Runtime, StaticStack};

static S: [StaticStack<16384>; 2] = [const { StaticStack::new() }; 2];
static RT: Runtime<'static, 2> = Runtime::new();

fn main() {
    let _ = RT.spawn_detached(S[0].claim().unwrap(), |fib| {
        let local = String::from("on the parent's stack");
        let r = &local;
        let _ = fib.spawn_detached(S[1].claim().unwrap(), move |_| r.len());
    });
}
