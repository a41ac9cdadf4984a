//! Timers (filled in next).
