//! Cancel keys. Each client gets a BackendKeyData of Gatehouse's own; a CancelRequest
//! carrying it is mapped to the upstream backend's real key, so clients never learn (or
//! guess at) upstream keys.

use crate::config::TargetConfig;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct CancelTarget {
    pub target: Arc<TargetConfig>,
    pub process_id: i32,
    pub secret_key: i32,
}

#[derive(Default, Clone)]
pub struct CancelRegistry {
    inner: Arc<Mutex<HashMap<(i32, i32), CancelTarget>>>,
}

impl CancelRegistry {
    /// Registers `target` under the client-facing key; the guard removes it when dropped.
    pub fn register(&self, key: (i32, i32), target: CancelTarget) -> CancelGuard {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(key, target);
        }
        CancelGuard {
            registry: self.clone(),
            key,
        }
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
