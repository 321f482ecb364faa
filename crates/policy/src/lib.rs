//! policy (placeholder until its first real code arrives).
