//! console (placeholder until its first real code arrives).
