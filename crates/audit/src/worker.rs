//! The writer thread: takes batches off the queue, chains them and appends each batch in one
//! transaction (group commit), retrying failed appends until they succeed.
//!
//! It owns the [`AuditLog`] and the chain head, so ids and hashes are assigned in exactly one
//! place, in the order events are committed. It never drops an event: a failed batch is kept
//! and retried with backoff while the shared health flag tells producers to stop reserving.

use crate::chain::{ChainHead, SealedJson};
use crate::writer::RetryPolicy;
use model::AuditEvent;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store::AuditLog;
use tokio::sync::{mpsc, oneshot};

/// Pause after a partial batch (see `run`).
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

/// What travels through the queue.
// Events are nearly all of the traffic; boxing them would cost an allocation per event to make
// the rare control messages smaller.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    Event(AuditEvent),
    /// Answer once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
    /// Stop taking reservations; drain and end.
    Shutdown,
}

pub(crate) struct Worker {
    log: Box<dyn AuditLog>,
    rx: mpsc::Receiver<Msg>,
    head: ChainHead,
    /// The JSON of the batch being committed (its buffer is reused).
    json: SealedJson,
    healthy: Arc<AtomicBool>,
    max_batch: usize,
    retry: RetryPolicy,
    /// Dropped when the worker ends (normally or by unwinding), which wakes async shutdown.
    _done: oneshot::Sender<()>,
}

impl Worker {
    pub(crate) fn new(
        log: Box<dyn AuditLog>,
        rx: mpsc::Receiver<Msg>,
        head: ChainHead,
        healthy: Arc<AtomicBool>,
        max_batch: usize,
        retry: RetryPolicy,
        done: oneshot::Sender<()>,
    ) -> Self {
        Worker {
            log,
            rx,
            head,
            json: SealedJson::default(),
            healthy,
            max_batch,
            retry,
            _done: done,
        }
    }

    /// Runs until the queue is closed and drained: after a `Shutdown` message, or once every
    /// handle and reservation is gone.
    pub(crate) fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        let mut waiters = Vec::new();
        while let Some(first) = self.rx.blocking_recv() {
            self.take(first, &mut batch, &mut waiters);
            // Group commit: whatever queued up while the last batch was being written goes
            // into this one.
            while batch.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(msg) => self.take(msg, &mut batch, &mut waiters),
                    Err(_) => break,
                }
            }
            let full = batch.len() >= self.max_batch;
            if !batch.is_empty() {
                self.commit(&mut batch);
            }
            for waiter in waiters.drain(..) {
                // The flusher may have given up waiting; nothing to do then.
                let _ = waiter.send(());
            }
            if !full && !self.rx.is_closed() {
                // Linger so the next batch gathers many events: producers then send without
                // waking this thread, and each transaction carries more events. Statements
                // never wait for a commit, so this costs them nothing.
                std::thread::sleep(LINGER);
            }
        }
        tracing::debug!(last_id = self.head.id, "audit writer stopped");
    }

    fn take(
        &mut self,
        msg: Msg,
        batch: &mut Vec<AuditEvent>,
        waiters: &mut Vec<oneshot::Sender<()>>,
    ) {
        match msg {
            Msg::Event(ev) => batch.push(ev),
            Msg::Flush(waiter) => waiters.push(waiter),
            // Closing refuses new reservations; queued messages and outstanding slots still
            // arrive before `blocking_recv` reports the end.
            Msg::Shutdown => self.rx.close(),
        }
    }

    /// Chains and appends `batch`, retrying until it is stored; empties it.
    fn commit(&mut self, batch: &mut Vec<AuditEvent>) {
        let mut delay = self.retry.initial;
        let mut failed = false;
        loop {
            let mut end = self.head.clone();
            self.json.clear();
            for ev in batch.iter_mut() {
                end.seal_into(ev, &mut self.json);
            }
            let appended = match self.json.texts() {
                Some(json) => self.log.append_serialized(batch, &json),
                None => self.log.append(batch),
            };
            let err = match appended {
                Ok(()) => break self.committed(end, batch, failed),
                Err(err) => err,
            };
            failed = true;
            self.healthy.store(false, Ordering::Release);
            tracing::error!(error = %err, events = batch.len(), retry_in_ms = delay.as_millis() as u64,
                "audit append failed; refusing new audited work until it succeeds");
            std::thread::sleep(delay);
            delay = (delay * 2).min(self.retry.max);
            // Re-read where the stored chain ends: the failed append may in fact have landed,
            // or another writer may have moved the head; re-chaining from the stored head keeps
            // the chain valid either way.
            match self.log.head() {
                Ok(stored) if ChainHead::from_stored(stored.clone()) == end => {
                    break self.committed(end, batch, failed)
                }
                Ok(stored) => self.head = ChainHead::from_stored(stored),
                Err(err) => tracing::warn!(error = %err, "cannot read the audit log head"),
            }
        }
    }

    fn committed(&mut self, end: ChainHead, batch: &mut Vec<AuditEvent>, after_failure: bool) {
        self.head = end;
        batch.clear();
        self.healthy.store(true, Ordering::Release);
        if after_failure {
            tracing::info!(last_id = self.head.id, "audit log recovered");
        }
    }
}
