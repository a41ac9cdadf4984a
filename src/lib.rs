//! # filament — a `no_std` fiber kernel for x86_64
//!
//! Stackful cooperative threads (fibers) on stacks you provide, in a fixed-size
//! table, switched by a hand-written x86_64 context switch, scheduled
//! round-robin within fixed priority levels (see [`Priority`]; cooperative
//! preemption, priority inheritance on [`sync::Mutex`]). No heap and no global scheduler state (the one global is an
//! atomic counter handing out runtime ids); the same code runs on bare metal
//! and, with the `std` feature, inside ordinary host processes and `cargo test`.
//!
//! ```
//! use filament::{Runtime, StaticStack};
//!
//! static STACKS: [StaticStack<16384>; 3] = [const { StaticStack::new() }; 3];
//! static RT: Runtime<'static, 8> = Runtime::new();
//!
//! let mut handles = heapless::Vec::<_, 3>::new();
//! for (i, stack) in STACKS.iter().enumerate() {
//!     let h = RT
//!         .spawn(stack.claim().unwrap(), move |fib| {
//!             let mut sum = 0;
//!             for step in 0..3 {
//!                 sum += i * 10 + step; // interleaves with the other fibers
//!                 fib.yield_now();
//!             }
//!             sum
//!         })
//!         .ok()
//!         .unwrap();
//!     handles.push(h).unwrap();
//! }
//! RT.run().unwrap();
//! let sums: heapless::Vec<usize, 3> = handles.into_iter().map(|h| RT.take(h).unwrap()).collect();
//! assert_eq!(sums, [3, 33, 63]);
//! ```
//!
//! # Pieces
//!
//! * [`StaticStack`] / [`Stack`] — stack memory from `static`s, borrowed
//!   buffers, or (`std`) guard-paged `mmap`. Four canary words sit at the low
//!   end: the topmost one (the first an overflow reaches) is checked at every
//!   switch-out (its low 4 bytes: one compare), all 32 bytes when the fiber
//!   finishes or its slot is freed. Stacks are painted to measure high-water marks.
//! * [`Runtime`] — the fiber table (capacity `N` in the type), `const fn new()`.
//!   [`Runtime::spawn`] moves a closure onto the fiber's own stack; a full table
//!   hands the closure and stack back. [`Runtime::run`] runs until all finish.
//!   [`Runtime::lock`] holds the runtime's lock across calls ([`Locked`]: no
//!   atomic per spawn, run or take); [`Runtime::take_with_stack`] hands the
//!   stack back for the next spawn.
//! * [`Fiber`] — the handle a fiber's closure receives: yield, spawn, join,
//!   sleep, and the argument every blocking primitive takes.
//! * [`sync`] — `Mutex`, `Semaphore`, `Channel`, `Event`, `Barrier` on one
//!   wait-queue mechanism, and `EventGroup`; `StreamBuffer` and
//!   `MessageBuffer`, lock-free byte rings an interrupt handler writes and a
//!   fiber reads; for interrupt handlers (and other threads or cores):
//!   [`IrqSignal`], [`IrqNotify`], [`IrqQueue`] (data), and `give_from_isr` /
//!   `set_from_isr` on semaphores and events.
//! * [`timer`] — software timers whose callbacks run in a timer service fiber.
//! * [`host`] (`std`) — mmap stacks, [`host::HostClock`], child-process runner.
//!
//! # A fiber's life
//!
//! ```text
//!          spawn                 yield / woken
//!  Free ─────────► Ready ◄───────────────────────┐
//!                    │ head of the ready ring      │
//!                    ▼                             │
//!                 Running ── wait on a queue ──► Blocked (join, primitive,
//!                    │                             sleep, IrqSignal)
//!                    │ closure returns (or panics under std)
//!                    ▼
//!                 Finished ── outcome taken / detached ──► Free
//! ```
//!
//! *Spawn* (`Runtime::spawn`, `Fiber::spawn`) writes the fiber header and the
//! closure at the top of the stack, paints the rest, writes the canary and an
//! initial frame, and links the slot into the ready ring. *Running* begins in
//! `fiber_entry`, which moves the closure off the stack header area and calls
//! it. *Blocked* fibers sit in exactly one intrusive wait queue and maybe the
//! timer heap. *Finished*: the outcome is stored where the closure was; joiners
//! are woken. *Free*: the outcome was taken (join/take) or dropped (detached),
//! the stack token dropped (a static stack can be claimed again), and the slot's
//! generation bumped so stale [`FiberId`]s are recognised.
//!
//! # Panics
//!
//! Under `std` a panic inside a fiber is caught at the fiber's entry and becomes
//! its outcome ([`JoinError::Panicked`] with the message); the other fibers keep
//! running. Without `std` your `#[panic_handler]` runs (bare metal); in a
//! program that unwinds, filament stops it with a message naming the fiber —
//! an unwind never crosses the assembly frames. So host tests want `std`,
//! even when the crate under test is `no_std`:
//!
//! ```toml
//! [dev-dependencies]
//! filament = { version = "0.1", features = ["std"] }
//! ```
//!
//! # Features
//!
//! * `std` — the [`host`] layer.
//! * `trace` — scheduler trace hooks ([`Trace`]); compiled out when off.
//! * `explore` — a scheduling-policy seam and seeded schedule exploration
//!   (implies `std`).
//! * `fp-control-always` — keep MXCSR and the x87 control word of *every*
//!   context on every switch (Boost.Context's behaviour; costs ~3 ns per switch
//!   for `stmxcsr`). By default only fibers that call
//!   [`Fiber::set_fp_control`] have their own state (see [`FpControl`]).
//! * `no-fp-control` — never touch MXCSR / the x87 control word (for kernels
//!   built without SSE and x87); `Fiber::set_fp_control` does not exist.
//! * `mem` — bare metal without libc only: exports `memcpy`, `memmove`,
//!   `memset`, `memcmp`, `bcmp` and an empty `rust_eh_personality` (module
//!   `mem`); refused together with `std`. See [`guide`] for when it is needed.

#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(all(feature = "no-fp-control", feature = "fp-control-always"))]
compile_error!("features `no-fp-control` and `fp-control-always` exclude each other");
#[cfg(all(feature = "mem", feature = "std"))]
compile_error!(
    "feature `mem` (C memory functions for -nostdlib binaries) excludes `std`: libc and std already define those symbols"
);

mod arch;
pub mod cancel;
mod check;
mod error;
mod fiber;
mod handle;
mod info;
mod irq;
mod join;
mod locked;
mod notify;
mod orphans;
mod priority;
mod raw;
mod report;
mod run;
mod runtime;
mod spawn;
mod stack;
pub mod suspend;
mod time;
mod trace;
mod wait;

#[cfg(feature = "explore")]
mod policy;

pub mod sync;

pub mod timer;

pub mod guide;

#[cfg(feature = "mem")]
pub mod mem;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod host;

pub use arch::FpControl;
pub use cancel::CancelError;
#[doc(hidden)]
pub use check::CheckError;
pub use error::{BlockedFiber, DeadlockReport, JoinError, PanicMessage, RunError, SpawnError, SpawnErrorKind};
pub use fiber::{FiberId, FiberState, WaitReason};
pub use handle::Fiber;
pub use info::{FiberInfo, Stats};
pub use irq::IrqWatch;
pub use irq::{IrqError, IrqFiberNotifier, IrqNotify, IrqQueue, IrqSignal, QueueFull};
pub use join::JoinHandle;
pub use locked::Locked;
pub use notify::{Notify, NotifyError, NotifyWaitError, Take};
#[cfg(feature = "explore")]
#[cfg_attr(docsrs, doc(cfg(feature = "explore")))]
pub use policy::SchedulePolicy;
pub use priority::{INHERITANCE_DEPTH, PRIORITY_LEVELS, Priority, SpawnOptions};
pub use runtime::Runtime;
pub use stack::{MIN_STACK_SIZE, Stack, StackError, StaticStack};
pub use suspend::SuspendError;
pub use time::{Idle, NoIdle, Ticks};
pub use trace::Trace;
