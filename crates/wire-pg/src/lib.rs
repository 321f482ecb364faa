//! wire-pg (placeholder until its first real code arrives).
