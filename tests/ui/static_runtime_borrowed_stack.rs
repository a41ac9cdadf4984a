//! A `'static` runtime does not accept a borrowed stack: `spawn` takes a
//! `Stack<'s>` and the runtime's lifetime is invariant, so a stack borrowed from
//! a local buffer cannot be given to a runtime that may outlive the buffer.

use filament::{Runtime, Stack};

static RT: Runtime<'static, 2> = Runtime::new();

fn spawn_on_local() {
    let mut buf = vec![0u8; 16384];
    let _ = RT.spawn_detached(Stack::from_slice(&mut buf).unwrap(), |_| ());
}

fn main() {
    spawn_on_local();
}
