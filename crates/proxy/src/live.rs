//! Sessions by the credential they logged in with, so a credential that stops being valid
//! ends its sessions, not only new logins: a token revoked (by `gatehouse token revoke`,
//! logout, or the identity provider's re-check, in this process or another sharing the data
//! directory) or expired, and a JWT past its `exp`. `spawn_sweeper` looks every
//! [`SWEEP_EVERY`]; each session listens on its own watch (see `relay_down`), which carries
//! the reason it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How often credentials of live sessions are looked at.
pub const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// What a session logged in with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credential {
    /// A Gatehouse token's id (its record is looked up at each sweep).
    pub token_id: Option<String>,
    /// When the credential ends (epoch seconds): a token's expiry, a JWT's `exp`.
    pub expires_at: Option<i64>,
}

struct Live {
    credential: Credential,
    end: watch::Sender<Option<String>>,
}

#[derive(Default)]
pub struct LiveSessions {
    next: AtomicU64,
    sessions: Mutex<HashMap<u64, Live>>,
}

/// A session's place in the registry; dropping it (the session ended) removes it.
pub struct Registered {
    id: u64,
    sessions: Arc<LiveSessions>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.sessions.lock().remove(&self.id);
    }
}

impl LiveSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Live>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a session; the receiver turns `Some(reason)` when it must end.
    pub fn register(
        self: &Arc<Self>,
        credential: Credential,
    ) -> (Registered, watch::Receiver<Option<String>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (end, rx) = watch::channel(None);
        self.lock().insert(id, Live { credential, end });
        (
            Registered {
                id,
                sessions: Arc::clone(self),
            },
            rx,
        )
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends the sessions of token `token_id` now (revoked in this process); returns how many.
    pub fn end_token(&self, token_id: &str, reason: &str) -> usize {
        let map = self.lock();
        let mut n = 0;
        for l in map.values() {
            if l.credential.token_id.as_deref() == Some(token_id) && l.end.borrow().is_none() {
                l.end.send_replace(Some(reason.to_owned()));
                n += 1;
            }
        }
        n
    }

    /// Ends every session whose credential expired at `now` or that `active` (by token id)
    /// says is no longer usable; `active` is asked once per distinct token. Returns how many
    /// were ended.
    pub fn sweep(&self, now: i64, active: &mut dyn FnMut(&str) -> bool) -> usize {
        let creds: Vec<(u64, Credential)> = self
            .lock()
            .iter()
            .filter(|(_, l)| l.end.borrow().is_none())
            .map(|(id, l)| (*id, l.credential.clone()))
            .collect();
        let mut verdicts: HashMap<String, bool> = HashMap::new();
        let mut ending = Vec::new();
        for (id, c) in creds {
            let reason = if c.expires_at.is_some_and(|e| now >= e) {
                Some("its credential expired")
            } else {
                match &c.token_id {
                    Some(t) if !*verdicts.entry(t.clone()).or_insert_with(|| active(t)) => {
                        Some("its credential was revoked")
                    }
                    _ => None,
                }
            };
            if let Some(r) = reason {
                ending.push((id, r));
            }
        }
        let map = self.lock();
        for (id, reason) in &ending {
            if let Some(l) = map.get(id) {
                l.end.send_replace(Some((*reason).to_owned()));
            }
        }
        ending.len()
    }
}

/// Sweeps `sessions` every `SWEEP_EVERY` against the token store. A store that cannot be
/// read ends nothing (logged): the next sweep asks again.
pub fn spawn_sweeper(
    sessions: Arc<LiveSessions>,
    tokens: Arc<dyn store::TokenStore>,
    clock: Arc<dyn crate::Clock>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if sessions.is_empty() {
                continue;
            }
            let now = clock.now_secs();
            let mut failed = false;
            let mut active = |id: &str| match tokens.token_by_id(id) {
                Ok(rec) => rec.is_some_and(|r| r.is_active(now)),
                Err(e) => {
                    if !failed {
                        tracing::warn!(error = %e, "checking live sessions' credentials: token store");
                    }
                    failed = true;
                    true
                }
            };
            let ended = sessions.sweep(now, &mut active);
            if ended > 0 {
                tracing::info!(
                    sessions = ended,
                    "sessions ended: their credentials are no longer valid"
                );
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_end_expired_and_revoked_and_forget_ended_sessions() {
        let live = Arc::new(LiveSessions::default());
        let token = |id: &str, exp| Credential {
            token_id: Some(id.into()),
            expires_at: Some(exp),
        };
        let (a, a_rx) = live.register(token("t1", 100));
        let (_b, b_rx) = live.register(token("t2", 100));
        let (_c, c_rx) = live.register(token("t1", 100));
        let (_d, d_rx) = live.register(Credential {
            token_id: None,
            expires_at: Some(50),
        });
        let mut asked = Vec::new();
        let mut active = |id: &str| {
            asked.push(id.to_owned());
            id != "t2"
        };
        assert_eq!(live.sweep(60, &mut active), 2);
        assert_eq!(*a_rx.borrow(), None);
        assert_eq!(b_rx.borrow().as_deref(), Some("its credential was revoked"));
        assert_eq!(*c_rx.borrow(), None);
        assert_eq!(d_rx.borrow().as_deref(), Some("its credential expired"));
        asked.sort();
        assert_eq!(asked, vec!["t1", "t2"], "one look-up per token");
        assert_eq!(
            live.sweep(100, &mut |_| true),
            2,
            "t1 expired; ended ones are not again"
        );
        drop(a);
        assert_eq!(live.len(), 3);
    }
}
