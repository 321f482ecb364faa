//! Test doubles and fixtures shared by the audit tests.
#![allow(dead_code)]

use model::{AuditEvent, AuditKind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use store::{AuditLog, StoreError};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An in-memory AuditLog that can be told to fail, and gated to hold appends.
#[derive(Clone, Default)]
pub struct MemLog {
    pub state: Arc<Mutex<MemState>>,
    /// While a test holds this lock, `append` blocks.
    pub gate: Arc<Mutex<()>>,
}

#[derive(Default)]
pub struct MemState {
    pub events: Vec<AuditEvent>,
    pub fail: bool,
    pub appends: usize,
    pub failed_appends: usize,
}

impl MemLog {
    pub fn state(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn set_fail(&self, fail: bool) {
        self.state().fail = fail;
    }
    pub fn ids(&self) -> Vec<u64> {
        self.state().events.iter().map(|e| e.id).collect()
    }
}

impl AuditLog for MemLog {
    fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        let st = self.state();
        if st.fail {
            return Err(StoreError::OutOfRange("injected failure".into()));
        }
        Ok(st.events.last().map(|e| (e.id, e.hash.clone())))
    }
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.state();
        if st.fail {
            st.failed_appends += 1;
            return Err(StoreError::OutOfRange("injected failure".into()));
        }
        st.appends += 1;
        st.events.extend_from_slice(events);
        Ok(())
    }
    fn read_after(&self, after_id: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let st = self.state();
        Ok(st
            .events
            .iter()
            .filter(|e| e.id > after_id)
            .take(limit)
            .cloned()
            .collect())
    }
    fn read_last(&self, n: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let st = self.state();
        let skip = st.events.len().saturating_sub(n);
        Ok(st.events[skip..].to_vec())
    }
}

/// A statement event as a producer makes it (no id or hashes).
pub fn statement(n: u64) -> AuditEvent {
    let mut ev = AuditEvent::new(
        AuditKind::Statement,
        "sess-1",
        format!("2024-05-01T12:00:00.{n:06}Z"),
    );
    ev.identity = Some("alice".into());
    ev.identity_kind = Some("human".into());
    ev.groups = vec!["analysts".into()];
    ev.statement = Some(format!("SELECT {n}"));
    ev.params = vec![Some(n.to_string()), None];
    ev.rows = Some(n);
    ev
}

/// Polls `cond` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}
