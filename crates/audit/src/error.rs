//! The audit crate's error type.

use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The queue is at capacity: the writer is behind. Callers refuse the work rather than wait.
    #[error("audit queue is full")]
    QueueFull,
    /// The writer cannot currently store events (its last append failed) or has stopped.
    #[error("audit log is unavailable")]
    Unavailable,
    #[error("invalid audit writer configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot start the audit writer thread: {0}")]
    Spawn(std::io::Error),
    #[error("the audit writer thread panicked")]
    WriterPanicked,
    #[error("blocking shutdown was called from inside an async runtime; use `shutdown().await`")]
    BlockingInAsync,
    #[error(transparent)]
    Store(#[from] StoreError),
}
