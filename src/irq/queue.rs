//! [`IrqQueue`]: a bounded lock-free queue whose send side is callable from
//! interrupt handlers, signal handlers, other threads and other cores, and
//! whose receive side is a blocking fiber call.

use core::cell::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::source::{Drain, Drained, IrqSource, as_irq_waiter};
use crate::fiber::{WaitKind, Wake};
use crate::handle::Fiber;
use crate::raw::{self, Core};
use crate::sync::{Binding, TryError, WaitError, choice_point};
use crate::time::Ticks;
use crate::wait::WaitQueue;

/// A bounded multi-producer queue from interrupt context to fibers: an
/// interrupt handler (or another OS thread, another core, a signal handler)
/// pushes with [`try_send_from_isr`](Self::try_send_from_isr), a fiber
/// receives with [`recv`](Self::recv) / [`recv_timeout`](Self::recv_timeout)
/// / [`try_recv`](Self::try_recv).
///
/// ```
/// use filament::{IrqQueue, Runtime, StaticStack};
///
/// static RX: IrqQueue<u8, 16> = IrqQueue::new().named("uart-rx");
/// static STACK: StaticStack<16384> = StaticStack::new();
/// static RT: Runtime<'static, 1> = Runtime::new();
///
/// // In the UART interrupt handler: never blocks, hands the byte back when full.
/// for b in *b"hi\n" {
///     RX.try_send_from_isr(b).unwrap();
/// }
/// let echo = RT
///     .spawn(STACK.claim().unwrap(), |fib| {
///         let mut line = heapless::Vec::<u8, 16>::new();
///         loop {
///             match RX.recv(fib).unwrap() {
///                 b'\n' => return line,
///                 b => line.push(b).unwrap(),
///             }
///         }
///     })
///     .unwrap();
/// RT.run().unwrap();
/// assert_eq!(RT.take(echo).unwrap(), b"hi");
/// ```
///
/// # In interrupt context
///
/// [`try_send_from_isr`](Self::try_send_from_isr) is the only method that
/// changes the queue from outside a fiber. It never blocks and never takes a
/// lock: a compare-exchange on the queue's tail claims a cell (retried only
/// when another producer claimed it first, i.e. made progress), the value is
/// written into the cell, a release store of the cell's sequence number
/// publishes it, then [`IrqSignal`](crate::IrqSignal)'s raise follows (one
/// atomic swap, one atomic add on the program-wide epoch, under `std` at most
/// one `futex` wake). A full queue hands the value back
/// ([`QueueFull`]), changing nothing. An interrupt that preempts a producer
/// in the middle of its push (on the same core) claims the next cell and
/// completes on its own; it never waits for the one it interrupted.
/// [`len`](Self::len), [`space`](Self::space) and [`is_empty`](Self::is_empty)
/// are plain atomic loads, callable anywhere.
///
/// # Order, capacity
///
/// Values leave in the order their producers claimed cells: per producer,
/// FIFO. `N` is the capacity, any `N >= 2` (a power of two makes the index a
/// mask instead of a division); checked at compile time. A producer that is
/// preempted between claiming a cell and publishing it (on another thread)
/// holds up the receiver: cells behind it, even published ones, are received
/// only once it publishes (its publish wakes the receiver).
///
/// # Fiber side
///
/// The receive side belongs to one runtime at a time, like every
/// [`sync`](crate::sync) primitive (`WrongRuntime` otherwise). A fiber
/// blocked in `recv` waits for an interrupt: the runtime polls the queue at
/// every switch and idles (its idle hook; `hlt` on bare metal) instead of
/// reporting a deadlock. Blocked receivers are woken in FIFO order, but
/// values are not handed to them: a fiber that receives without blocking
/// may take a value before a woken receiver runs, which then waits again.
/// In reports the receiver shows as
/// [`WaitReason::Irq`](crate::WaitReason::Irq) with the queue's name.
#[repr(C)]
pub struct IrqQueue<T, const N: usize> {
    /// Receivers (owner runtime's thread only). First field: its address is
    /// the queue's address (reports, gdb's `info fibers`).
    waiters: WaitQueue,
    /// The fiber side's owner (receive side).
    owner: Binding,
    /// Registration with the owner runtime, the raised flag.
    src: IrqSource,
    /// Next position to claim (producers, any context).
    tail: AtomicUsize,
    /// Next position to receive. Written only by the owner runtime's fibers
    /// (one thread); atomic so `len` may read it from anywhere.
    head: AtomicUsize,
    cells: [QueueCell<T>; N],
}

/// One cell of the ring. `seq`, for the cell at index `i` in lap `k`
/// (position `p = k * N + i`): `p` when free for the producer of `p`; `p + 1`
/// when the value of `p` is published; `p + N` once received (free for
/// position `p + N`).
struct QueueCell<T> {
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: a value moves from the producer's thread (or interrupt) into a cell
// and out of it on the receiving runtime's thread: `T: Send` is what that
// needs. The cell's value is written only by the producer that claimed its
// position (the tail compare-exchange gives each position to one producer)
// while `seq == p`, and read only by the owner runtime's fibers while
// `seq == p + 1`; the release/acquire pairs on `seq` order those accesses.
// `waiters`, the source's cells and the Binding's cells are touched only by
// the owner runtime's fibers (I1).
unsafe impl<T: Send, const N: usize> Sync for IrqQueue<T, N> {}
// SAFETY: moving the queue needs ownership: nobody borrows it, so no fiber
// waits in it, no producer is in the middle of a push and no runtime lists it.
unsafe impl<T: Send, const N: usize> Send for IrqQueue<T, N> {}

impl<T, const N: usize> IrqQueue<T, N> {
    /// An empty queue. `const`, for `static`s.
    pub const fn new() -> Self {
        const { assert!(N >= 2, "IrqQueue needs a capacity of at least 2") };
        let mut cells =
            [const { QueueCell { seq: AtomicUsize::new(0), value: UnsafeCell::new(MaybeUninit::uninit()) } }; N];
        let mut i = 0;
        while i < N {
            cells[i].seq = AtomicUsize::new(i);
            i += 1;
        }
        IrqQueue {
            waiters: WaitQueue::new(),
            owner: Binding::new(),
            src: IrqSource::new(),
            tail: AtomicUsize::new(0),
            head: AtomicUsize::new(0),
            cells,
        }
    }

    /// Names it: the name appears in deadlock reports, in
    /// [`FiberInfo::waiting_in`](crate::FiberInfo::waiting_in) and in the
    /// runtime's `Debug` table. `const`, so it chains onto `new` in a `static`.
    pub const fn named(mut self, name: &'static str) -> Self {
        self.waiters.name = name;
        self
    }

    /// The capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Pushes `value` without blocking. **Interrupt-safe**, async-signal-safe,
    /// callable from any thread or core and from fibers. Gives the value back
    /// in [`QueueFull`] when all `N` cells are taken. See the [type
    /// docs](Self#in-interrupt-context) for exactly what it does.
    pub fn try_send_from_isr(&self, value: T) -> Result<(), QueueFull<T>> {
        // Relaxed: the tail only hands out positions; the cell's `seq` is
        // what orders the value.
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let cell = &self.cells[pos % N];
            // Acquire: pairs with the receiver's release store of `p + N`, so
            // its read of the previous value happens before our write.
            let seq = cell.seq.load(Ordering::Acquire);
            let dif = seq.wrapping_sub(pos) as isize;
            if dif == 0 {
                // Free for `pos`: claim it. Relaxed suffices: the claim is
                // exclusive by the compare-exchange itself.
                match self.tail.compare_exchange_weak(pos, pos.wrapping_add(1), Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // SAFETY: the compare-exchange gave position `pos`
                        // to us alone; the receiver reads the cell only
                        // once `seq == pos + 1`, which we store after this.
                        unsafe { (*cell.value.get()).write(value) };
                        // Release: publishes the value to the receiver's
                        // acquire load of `seq`.
                        cell.seq.store(pos.wrapping_add(1), Ordering::Release);
                        // After publishing: a drain (or idle hook) that sees
                        // this raise sees the value (source.rs).
                        self.src.raise();
                        return Ok(());
                    }
                    Err(now) => pos = now,
                }
            } else if dif < 0 {
                // The cell still holds the value of `pos - N` (or its
                // producer has not published yet): `N` positions are taken.
                return Err(QueueFull(value));
            } else {
                // Another producer claimed `pos` and moved on: catch up.
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Values queued now (published or being written). Approximate while
    /// producers or the receiver run; callable anywhere.
    pub fn len(&self) -> usize {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        tail.wrapping_sub(head).min(N)
    }

    /// Free cells now (`N - len`); approximate, callable anywhere.
    pub fn space(&self) -> usize {
        N - self.len()
    }

    /// Whether no value is queued now; approximate, callable anywhere.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Receives the oldest value, blocking the fiber until one is published.
    pub fn recv<'s>(&'s self, fib: &Fiber<'s>) -> Result<T, WaitError> {
        self.recv_until(fib, None)
    }

    /// Like [`recv`](Self::recv), giving up with [`WaitError::TimedOut`]
    /// after `timeout` ticks.
    pub fn recv_timeout<'s>(&'s self, fib: &Fiber<'s>, timeout: Ticks) -> Result<T, WaitError> {
        self.recv_until(fib, Some(fib.now().saturating_add(timeout)))
    }

    /// Receives the oldest value if one is published; never blocks.
    pub fn try_recv(&self, fib: &Fiber<'_>) -> Result<T, TryError> {
        let (core, _lease) = self.owner.lease(fib)?;
        let v = self.pop().ok_or(TryError::WouldBlock)?;
        // SAFETY: we are the running fiber of `core`.
        unsafe { choice_point(core) };
        Ok(v)
    }

    fn recv_until<'s>(&'s self, fib: &Fiber<'s>, deadline: Option<Ticks>) -> Result<T, WaitError> {
        let core = self.owner.bind(fib)?;
        self.src.register(fib, self)?;
        loop {
            if let Some(v) = self.pop() {
                // More published and more receivers waiting: pass the wake on
                // (a drain wakes one receiver per raise it sees).
                // A receiver about to stop as suspended is skipped; if only
                // such receivers wait, the raise keeps the value announced.
                // SAFETY: the queue holds only blocked fibers of `core`.
                if self.published() && !unsafe { raw::wake_one_awake(core, &self.waiters) } {
                    self.src.raise();
                }
                // SAFETY: we are the running fiber of `core`.
                unsafe { choice_point(core) };
                return Ok(v);
            }
            // SAFETY: we are the running fiber of the owning runtime; the
            // queue (hence its wait queue) lives for 's (I5).
            let wake = unsafe { as_irq_waiter(core, || fib.wait_on(&self.waiters, WaitKind::Irq, deadline)) };
            match wake {
                Wake::TimedOut | Wake::Unwinding | Wake::Aborted => {
                    return match self.pop() {
                        Some(v) => Ok(v),
                        None if wake == Wake::Unwinding => Err(WaitError::Unwinding),
                        None if wake == Wake::Aborted => Err(WaitError::Cancelled),
                        None => Err(WaitError::TimedOut),
                    };
                }
                _ => {}
            }
        }
    }

    /// Whether the cell at the head holds a published value. Owner's thread.
    fn published(&self) -> bool {
        let pos = self.head.load(Ordering::Relaxed);
        self.cells[pos % N].seq.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// Takes the head cell's value if it is published. Only the owner
    /// runtime's fibers (one thread) call it, so `head` has one writer.
    fn pop(&self) -> Option<T> {
        let pos = self.head.load(Ordering::Relaxed);
        let cell = &self.cells[pos % N];
        // Acquire: pairs with the producer's release store of `pos + 1`.
        if cell.seq.load(Ordering::Acquire) != pos.wrapping_add(1) {
            // Empty, or claimed and not yet published: "not yet". The
            // producer's publish is followed by a raise, which wakes us.
            return None;
        }
        // SAFETY: `seq == pos + 1`: the value of `pos` is published, and no
        // producer writes the cell before we store `pos + N` below.
        let v = unsafe { (*cell.value.get()).assume_init_read() };
        // Release: our read happens before the next lap's producer writes.
        cell.seq.store(pos.wrapping_add(N), Ordering::Release);
        self.head.store(pos.wrapping_add(1), Ordering::Relaxed);
        Some(v)
    }
}

impl<T, const N: usize> Drain for IrqQueue<T, N> {
    /// Wakes the first receiver once the head value is published. Without a
    /// receiver the raise is kept (one may be about to block).
    ///
    /// # Safety
    /// As for [`Drain::drain`](crate::irq::source::Drain::drain): called by the registered runtime, with exclusive access to it.
    unsafe fn drain(&self, core: *mut Core) -> Drained {
        if !self.published() {
            // Taken already, or not published yet: its producer raises
            // again when it publishes.
            return Drained::Done;
        }
        if self.waiters.is_empty() {
            return Drained::Keep;
        }
        // SAFETY: per the contract we run in `core`; the queue holds its
        // blocked fibers only. A receiver about to stop as suspended is
        // skipped (it would take nothing); if only such receivers wait, the
        // raise is kept until one is resumed.
        if unsafe { raw::wake_one_awake(core, &self.waiters) } { Drained::Done } else { Drained::Keep }
    }
}

impl<T, const N: usize> Drop for IrqQueue<T, N> {
    fn drop(&mut self) {
        // `&mut self`: no producer is in a push, no receiver runs; every
        // claimed position was published (a push cannot stop half-way).
        while self.pop().is_some() {}
    }
}

impl<T, const N: usize> Default for IrqQueue<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> fmt::Debug for IrqQueue<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IrqQueue")
            .field("name", &self.waiters.name)
            .field("len", &self.len())
            .field("capacity", &N)
            .finish()
    }
}

/// [`IrqQueue::try_send_from_isr`] found the queue full: the value, back.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QueueFull<T>(pub T);

impl<T> QueueFull<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueFull(..)")
    }
}

impl<T> fmt::Display for QueueFull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("interrupt queue full")
    }
}

impl<T> core::error::Error for QueueFull<T> {}
