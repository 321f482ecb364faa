//! Cancel keys. Each client gets a BackendKeyData with the upstream backend's real process
//! ID (so `pg_backend_pid()`, `pg_terminate_backend` and NotificationResponse agree with
//! what the client was told) and a secret key of Gatehouse's own; a CancelRequest carrying
//! that pair is mapped to the upstream's real key, so clients never learn (or guess at)
//! upstream keys. Two targets may have backends with the same process ID: the pair, with a
//! random secret drawn until it is unused, still names one session.

use crate::config::TargetConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct CancelTarget {
    pub target: Arc<TargetConfig>,
    pub process_id: i32,
    pub secret_key: i32,
    /// Told of a CancelRequest: a statement held for approval is withdrawn.
    pub held: Arc<HeldCancel>,
}

/// How a client's CancelRequest reaches a statement held for approval. While a statement is
/// held nothing of its session runs upstream (the hold starts once everything before it is
/// answered), so the cancel withdraws the request and is *not* forwarded: forwarded, it
/// would cancel whatever the session runs next on the server.
pub struct HeldCancel {
    holding: std::sync::atomic::AtomicBool,
    /// Counts cancels received while holding; a hold waits for it to change.
    cancels: tokio::sync::watch::Sender<u64>,
}

impl Default for HeldCancel {
    fn default() -> Self {
        HeldCancel {
            holding: std::sync::atomic::AtomicBool::new(false),
            cancels: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl HeldCancel {
    /// A hold begins: cancels from now on are its own (none is lost between this call and
    /// the wait, as the receiver is subscribed first).
    pub fn begin(&self) -> Holding<'_> {
        let rx = self.cancels.subscribe();
        self.holding
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Holding { signal: self, rx }
    }

    /// A CancelRequest for this session: true when it withdrew a held statement (then it
    /// must not be forwarded upstream).
    pub fn cancel(&self) -> bool {
        if !self.holding.load(std::sync::atomic::Ordering::SeqCst) {
            return false;
        }
        self.cancels.send_modify(|n| *n = n.wrapping_add(1));
        true
    }
}

/// A hold in progress; dropping it ends it.
pub struct Holding<'a> {
    signal: &'a HeldCancel,
    rx: tokio::sync::watch::Receiver<u64>,
}

impl Holding<'_> {
    /// A cancel arrived that the wait has not seen (it raced the decision).
    pub fn was_cancelled(&self) -> bool {
        self.rx.has_changed().unwrap_or(false)
    }

    /// Resolves when the client cancels.
    pub async fn cancelled(&mut self) {
        if self.rx.changed().await.is_err() {
            // The session's sender is gone: no cancel can come.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        self.signal
            .holding
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Default, Clone)]
pub struct CancelRegistry {
    inner: Arc<Mutex<HashMap<(i32, i32), CancelTarget>>>,
}

impl CancelRegistry {
    /// Registers `target` under the client-facing key, unless that key is taken (then
    /// `None`: draw another secret); the guard removes it when dropped.
    pub fn register(&self, key: (i32, i32), target: CancelTarget) -> Option<CancelGuard> {
        let mut m = self.inner.lock().ok()?;
        if m.contains_key(&key) {
            return None;
        }
        m.insert(key, target);
        Some(CancelGuard {
            registry: self.clone(),
            key,
        })
    }

    pub fn lookup(&self, key: (i32, i32)) -> Option<CancelTarget> {
        self.inner.lock().ok().and_then(|m| m.get(&key).cloned())
    }
}

pub struct CancelGuard {
    registry: CancelRegistry,
    key: (i32, i32),
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.registry.inner.lock() {
            m.remove(&self.key);
        }
    }
}
