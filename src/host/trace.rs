//! Trace recording (filled in by the timeline work).
