//! The ordered queue of expectations shared by a session's two halves (see `expect`).
//!
//! A plain mutex-guarded deque rather than a channel: the upstream→client half takes what it
//! needs when a response arrives, so ordinary requests wake nobody. Only a `Fatal` answer,
//! which no upstream response will trigger, notifies it.

use crate::expect::Expect;
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Requests in flight past which the client→upstream half waits (back-pressure on clients
/// that pipeline without reading).
pub const MAX_IN_FLIGHT: usize = 16 * 1024;

#[derive(Default)]
pub struct Pipeline {
    inner: Mutex<Inner>,
    /// A `Fatal` entry was queued.
    local: Notify,
    /// Space became available.
    space: Notify,
    /// The queue became empty: the server has answered everything sent so far.
    drained: Notify,
    /// Someone waits on `drained` (so the consumer signals only then).
    drain_waiting: std::sync::atomic::AtomicBool,
    /// `Inner::prepared_events` is not empty (read without the lock on the hot path).
    pub events_pending: std::sync::atomic::AtomicBool,
    /// A Terminate was sent upstream: the server closing the connection is expected.
    pub terminated: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
pub struct Inner {
    pub queue: VecDeque<Expect>,
    /// The server-confirmed prepared statements and portals (changed by the
    /// upstream→client half only).
    pub state: crate::state::SessionState,
    /// The server is in COPY IN mode (its CopyInResponse was seen and the client has not
    /// yet sent CopyDone or CopyFail): Sync and Flush are ignored by the server then.
    pub copy_in: bool,
    /// An extended-protocol error made the server discard every message up to the next
    /// Sync: requests queued after the error (Queries included) get no answer, and the next
    /// ReadyForQuery answers that Sync.
    pub discarding: bool,
    /// What the server confirmed about prepared-statement names, in order, for the other
    /// half's copy of them (`relay_up::names`).
    pub prepared_events: Vec<PreparedEvent>,
    /// ReadyForQuery reports of an idle session so far: a transaction block that began after
    /// the Nth one is a different transaction from one that began before it.
    pub idle_seen: u64,
    closed: bool,
    waiting_for_space: bool,
}

#[derive(Debug)]
pub struct Closed;

/// How a wait for the server to answer everything ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// Everything sent was answered (or the session ended).
    Drained,
    /// The server entered COPY IN: it waits for the client, so nothing more will drain.
    CopyIn,
}

/// What the server confirmed about a prepared-statement name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedEvent {
    /// A PREPARE or Parse of this name failed (or was skipped): it created nothing.
    /// With the id of the protocol Parse it answers (`None`: an SQL PREPARE).
    Failed(String, Option<u64>),
    /// The server closed this statement (`None`: all of them).
    Closed(Option<String>),
}

impl Inner {
    /// The session ended: no more requests will be answered.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

impl Pipeline {
    /// Locks the queue (never held across an await).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an expectation, waiting while the pipeline is full.
    pub async fn push(&self, e: Expect) -> Result<(), Closed> {
        let mut e = Some(e);
        loop {
            {
                let mut g = self.lock();
                if g.closed {
                    return Err(Closed);
                }
                if g.queue.len() < MAX_IN_FLIGHT {
                    let Some(e) = e.take() else { return Ok(()) };
                    let urgent = matches!(e, Expect::Fatal(_) | Expect::Notice(_));
                    g.queue.push_back(e);
                    drop(g);
                    if urgent {
                        self.local.notify_one();
                    }
                    return Ok(());
                }
                g.waiting_for_space = true;
            }
            self.space.notified().await;
        }
    }

    /// Like `push`, but what to push (if anything) is decided by `f` under the lock, with the
    /// session state in view (e.g. a Sync the server ignores during COPY IN).
    pub async fn push_with(
        &self,
        f: impl FnOnce(&mut Inner) -> Option<Expect>,
    ) -> Result<(), Closed> {
        loop {
            {
                let mut g = self.lock();
                if g.closed {
                    return Err(Closed);
                }
                if g.queue.len() < MAX_IN_FLIGHT {
                    if let Some(e) = f(&mut g) {
                        g.queue.push_back(e);
                    }
                    return Ok(());
                }
                g.waiting_for_space = true;
            }
            self.space.notified().await;
        }
    }

    /// Resolves when a local answer was queued (a stored permit makes this race-free).
    pub async fn local_queued(&self) {
        self.local.notified().await;
    }

    /// Resolves once every request sent so far has been answered (or the session ended).
    pub async fn wait_drained(&self) -> Drain {
        use std::sync::atomic::Ordering;
        self.drain_waiting.store(true, Ordering::SeqCst);
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let g = self.lock();
                let state = if g.queue.is_empty() || g.closed {
                    Some(Drain::Drained)
                } else if g.copy_in {
                    // The server waits for the client's COPY data: nothing will drain.
                    Some(Drain::CopyIn)
                } else {
                    None
                };
                if let Some(state) = state {
                    self.drain_waiting.store(false, Ordering::SeqCst);
                    return state;
                }
            }
            notified.await;
        }
    }

    /// Called by the consumer after popping: wakes a producer waiting for space.
    pub fn popped(&self, g: &mut Inner) {
        use std::sync::atomic::Ordering;
        if (g.queue.is_empty() || g.copy_in) && self.drain_waiting.load(Ordering::SeqCst) {
            self.drained.notify_waiters();
        }
        if !g.prepared_events.is_empty() {
            self.events_pending.store(true, Ordering::Release);
        }
        if g.waiting_for_space && g.queue.len() < MAX_IN_FLIGHT {
            g.waiting_for_space = false;
            self.space.notify_one();
        }
    }

    /// No more requests will be answered.
    pub fn close(&self) {
        self.lock().closed = true;
        self.space.notify_one();
        self.drained.notify_waiters();
    }
}
