//! What a selecting fiber waits on, as reports show it.

use core::fmt;

use crate::fiber::WaitReason;

/// The sources a fiber blocked in a [`select`](crate::sync::select) waits on,
/// in case order: the payload of [`WaitReason::Select`]. Lists up to
/// [`SelectSources::LISTED`] of them (and counts the rest); each is
/// described by the [`WaitReason`] a plain waiter on that source would show
/// ([`Recv`](WaitReason::Recv), [`Send`](WaitReason::Send),
/// [`Semaphore`](WaitReason::Semaphore), [`Event`](WaitReason::Event),
/// [`Irq`](WaitReason::Irq)).
///
/// `Display`: `select on recv channel 0x…, semaphore 0x…` (`, +N more` past
/// the listed ones; `select on nothing` for a select with no case, which
/// only waits for its deadline).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)] // gdb/filament.py reads it: the listed words, then the count
pub struct SelectSources {
    /// Source addresses (8-aligned) with the kind in the low 3 bits.
    listed: [usize; SelectSources::LISTED],
    /// How many sources the select has (may exceed `LISTED`).
    len: usize,
}

// Kinds, in the low 3 bits of a source's (8-aligned) wait-queue address.
pub(crate) const RECV: usize = 0;
pub(crate) const SEND: usize = 1;
pub(crate) const SEMAPHORE: usize = 2;
pub(crate) const EVENT: usize = 3;
pub(crate) const IRQ: usize = 4;

impl SelectSources {
    /// How many sources are listed; a select with more is reported with the
    /// first `LISTED` and a count.
    pub const LISTED: usize = 8;

    pub(crate) const fn new() -> Self {
        SelectSources { listed: [0; Self::LISTED], len: 0 }
    }

    /// Adds a source: its wait queue's address tagged with its kind.
    #[inline]
    pub(crate) fn push(&mut self, word: usize) {
        if self.len < Self::LISTED {
            self.listed[self.len] = word;
        }
        self.len += 1;
    }

    /// How many sources the select waits on (listed or not).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the select has no source (it waits for its deadline only).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The listed sources, in case order, each as its plain waiter's reason.
    pub fn iter(&self) -> impl Iterator<Item = WaitReason> + '_ {
        self.listed[..self.len.min(Self::LISTED)].iter().map(|&w| {
            let addr = w & !7;
            match w & 7 {
                RECV => WaitReason::Recv(addr),
                SEND => WaitReason::Send(addr),
                SEMAPHORE => WaitReason::Semaphore(addr),
                EVENT => WaitReason::Event(addr),
                _ => WaitReason::Irq(addr),
            }
        })
    }
}

impl fmt::Display for SelectSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("select on ")?;
        if self.is_empty() {
            return f.write_str("nothing");
        }
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            fmt::Display::fmt(&r, f)?;
        }
        if self.len > Self::LISTED {
            write!(f, ", +{} more", self.len - Self::LISTED)?;
        }
        Ok(())
    }
}

impl fmt::Debug for SelectSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        l.entries(self.iter());
        if self.len > Self::LISTED {
            l.entry(&format_args!("+{} more", self.len - Self::LISTED));
        }
        l.finish()
    }
}
