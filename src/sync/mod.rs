//! Fiber-blocking primitives, all built on the one wait-queue mechanism.
