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
    /// Woken by a CancelRequest: a statement held for approval is withdrawn.
    pub held: Arc<tokio::sync::Notify>,
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
