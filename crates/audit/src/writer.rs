//! The audit writer's public face: spawning it, the handles producers use, and shutting down.
//!
//! Producers talk to one dedicated thread (see `worker`) through a bounded tokio channel. The
//! channel is the back-pressure point: [`AuditHandle::reserve`] never waits; it either takes a
//! slot or says why not ([`AuditError::QueueFull`], [`AuditError::Unavailable`]). Holding an
//! [`AuditSlot`] guarantees the later [`AuditSlot::send`] is accepted, which is how the proxy
//! makes "no statement runs without its event being accepted" hold: reserve before forwarding,
//! send once the outcome is known.

use crate::chain::ChainHead;
use crate::worker::{Msg, Worker};
use crate::AuditError;
use model::AuditEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use store::AuditLog;
use tokio::sync::mpsc::{self, error::TrySendError, OwnedPermit};
use tokio::sync::oneshot;

/// Upper bound on the queue capacity (tokio's channel rejects absurd sizes by panicking).
pub const MAX_CAPACITY: usize = 1 << 22;

/// Sizes of the writer's queue and batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Events (and flush requests) the queue holds before [`AuditError::QueueFull`].
    pub capacity: usize,
    /// Most events stored in one transaction.
    pub max_batch: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            capacity: 16_384,
            max_batch: 512,
        }
    }
}

impl WriterConfig {
    fn validate(&self) -> Result<(), AuditError> {
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            return Err(AuditError::InvalidConfig(format!(
                "capacity must be between 1 and {MAX_CAPACITY}, got {}",
                self.capacity
            )));
        }
        if self.max_batch == 0 {
            return Err(AuditError::InvalidConfig(
                "max_batch must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// How the writer waits between attempts when the log fails: doubling from `initial` up to
/// `max`. It retries for as long as it takes; events are never dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_secs(2),
        }
    }
}

/// Starts the writer thread.
#[derive(Debug)]
pub struct AuditWriter;

impl AuditWriter {
    /// Spawns the writer thread owning `log`, with the default [`RetryPolicy`]. Reads the
    /// log's head first, so an unreadable store fails here rather than on the first event.
    pub fn spawn(
        log: Box<dyn AuditLog>,
        cfg: WriterConfig,
    ) -> Result<(AuditHandle, WriterJoin), AuditError> {
        Self::spawn_with(log, cfg, RetryPolicy::default())
    }

    /// [`AuditWriter::spawn`] with an explicit retry policy.
    pub fn spawn_with(
        log: Box<dyn AuditLog>,
        cfg: WriterConfig,
        retry: RetryPolicy,
    ) -> Result<(AuditHandle, WriterJoin), AuditError> {
        cfg.validate()?;
        let head = ChainHead::from_stored(log.head()?);
        let (tx, rx) = mpsc::channel(cfg.capacity);
        let (done_tx, done_rx) = oneshot::channel();
        let healthy = Arc::new(AtomicBool::new(true));
        let worker = Worker::new(
            log,
            rx,
            head,
            Arc::clone(&healthy),
            cfg.max_batch,
            retry,
            done_tx,
        );
        let thread = std::thread::Builder::new()
            .name("gatehouse-audit".into())
            .spawn(move || worker.run())
            .map_err(AuditError::Spawn)?;
        let handle = AuditHandle {
            tx: tx.clone(),
            healthy,
        };
        Ok((
            handle,
            WriterJoin {
                thread,
                tx,
                done: done_rx,
            },
        ))
    }
}

/// What producers hold (cheap to clone, one per session is fine).
#[derive(Clone)]
pub struct AuditHandle {
    tx: mpsc::Sender<Msg>,
    healthy: Arc<AtomicBool>,
}

impl AuditHandle {
    /// Takes a queue slot without waiting. Fails with [`AuditError::Unavailable`] while the
    /// writer's last append failed or after it stopped, and [`AuditError::QueueFull`] when
    /// the queue is at capacity.
    pub fn reserve(&self) -> Result<AuditSlot, AuditError> {
        if !self.healthy.load(Ordering::Acquire) {
            return Err(AuditError::Unavailable);
        }
        match self.tx.clone().try_reserve_owned() {
            Ok(permit) => Ok(AuditSlot { permit }),
            Err(TrySendError::Full(_)) => Err(AuditError::QueueFull),
            Err(TrySendError::Closed(_)) => Err(AuditError::Unavailable),
        }
    }

    /// Reserves and sends at once (for events that do not guard any work).
    pub fn submit(&self, ev: AuditEvent) -> Result<(), AuditError> {
        self.reserve()?.send(ev);
        Ok(())
    }

    /// Whether the writer is running and its last append succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire) && !self.tx.is_closed()
    }

    /// Slots currently taken (queued messages plus outstanding reservations), for metrics.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    /// Waits until every event sent through any handle before this call is committed. While
    /// the log is failing this waits for the retries to succeed; bound it with a timeout if
    /// needed. Fails with [`AuditError::Unavailable`] if the writer has stopped.
    pub async fn flush(&self) -> Result<(), AuditError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done_tx))
            .await
            .map_err(|_| AuditError::Unavailable)?;
        done_rx.await.map_err(|_| AuditError::Unavailable)
    }
}

/// A reserved queue slot: sending through it cannot fail or wait. Dropping it unused frees it.
pub struct AuditSlot {
    permit: OwnedPermit<Msg>,
}

impl AuditSlot {
    /// Hands the event to the writer, which assigns its id and hashes.
    pub fn send(self, ev: AuditEvent) {
        // The writer keeps receiving until every outstanding slot is used or dropped (tokio
        // only reports a closed channel as drained once no permit is outstanding), so an event
        // sent here is always stored, even during shutdown.
        let _sender = self.permit.send(Msg::Event(ev));
    }
}

/// Owns the writer thread; use it to shut down cleanly.
pub struct WriterJoin {
    thread: JoinHandle<()>,
    tx: mpsc::Sender<Msg>,
    done: oneshot::Receiver<()>,
}

impl WriterJoin {
    /// Stops accepting new reservations, stores everything already queued or reserved, and
    /// waits for the thread to end. Slots still held by producers are waited for until they
    /// are sent or dropped, and if the log keeps failing this waits for it to recover (events
    /// are never dropped); bound it with a timeout if needed.
    pub async fn shutdown(self) -> Result<(), AuditError> {
        // A send error means the writer already stopped; joining below reports how.
        let _ = self.tx.send(Msg::Shutdown).await;
        drop(self.tx);
        // Resolves (with an error, as the sender is dropped, not used) when the worker ends.
        let _ = self.done.await;
        self.thread.join().map_err(|_| AuditError::WriterPanicked)
    }

    /// [`WriterJoin::shutdown`] for synchronous callers. Must not be called from inside an
    /// async runtime (returns [`AuditError::BlockingInAsync`] there instead of blocking it).
    pub fn shutdown_blocking(self) -> Result<(), AuditError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(AuditError::BlockingInAsync);
        }
        let _ = self.tx.blocking_send(Msg::Shutdown);
        drop(self.tx);
        self.thread.join().map_err(|_| AuditError::WriterPanicked)
    }

    /// Whether the writer thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}
