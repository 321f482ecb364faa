//! Checking a stored chain: every event present, in order, unchanged.
//!
//! Walking from id 1, each event must carry the next id, link to the previous event's hash,
//! and hash to its own `hash`. The first violation is reported with the id of the position
//! where the chain breaks. What this cannot see on its own: events removed from the END of the
//! log (the chain is still intact, only shorter) and a rewrite of an event together with every
//! hash after it. Comparing [`VerifyReport::last_hash`] with a copy kept elsewhere (a checkpoint
//! or an exported stream) covers both.

use crate::chain::{chain_hash, ChainHead};
use crate::AuditError;
use store::{AuditLog, StoreError};

/// Events read per page.
const PAGE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events found intact (all of them when `first_bad` is `None`).
    pub events: u64,
    /// The first event that breaks the chain.
    pub first_bad: Option<BadEvent>,
    /// Hash of the last intact event (`None` for an empty log), to compare with a checkpoint.
    pub last_hash: Option<String>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEvent {
    /// The id at which the chain breaks (for a missing event, the id that is missing).
    pub id: u64,
    pub kind: BadKind,
    /// A sentence for people.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadKind {
    /// The expected id is absent at its place (a later id is there): events were removed, or
    /// moved so that a later one comes first.
    Missing,
    /// An event with an earlier id sits where a later one belongs: events were moved.
    OutOfOrder,
    /// The event's contents do not hash to its `hash`: it was changed.
    Changed,
    /// The event does not link to its predecessor's hash.
    BrokenLink,
    /// The stored event cannot be read back at all.
    Unreadable,
}

/// Walks the whole log in pages and reports the first event that breaks the chain.
pub fn verify(log: &dyn AuditLog) -> Result<VerifyReport, AuditError> {
    let mut head = ChainHead::genesis();
    let mut page_size = PAGE;
    let first_bad = loop {
        let page = match log.read_after(head.id, page_size) {
            Ok(page) => page,
            // An unreadable row fails its whole page; re-read one event at a time so the
            // events before it are still checked and the report names the right one.
            Err(StoreError::CorruptEvent { .. }) if page_size > 1 => {
                page_size = 1;
                continue;
            }
            Err(StoreError::CorruptEvent { id, reason }) => {
                break Some(bad(id, BadKind::Unreadable, reason));
            }
            Err(e) => return Err(e.into()),
        };
        if page.is_empty() {
            break None;
        }
        if let Some(found) = page.iter().find_map(|ev| check(&mut head, ev)) {
            break Some(found);
        }
    };
    Ok(VerifyReport {
        events: head.id,
        first_bad,
        last_hash: (head.id > 0).then_some(head.hash),
    })
}

/// Checks that `ev` continues the chain ending at `head`, and advances `head` if it does.
fn check(head: &mut ChainHead, ev: &model::AuditEvent) -> Option<BadEvent> {
    let expected = head.id + 1;
    if ev.id > expected {
        return Some(bad(
            expected,
            BadKind::Missing,
            format!("event {expected} is missing (the next stored event is {}): events were removed or reordered", ev.id),
        ));
    }
    if ev.id < expected {
        return Some(bad(
            expected,
            BadKind::OutOfOrder,
            format!("event {} is stored where event {expected} belongs: events were reordered or duplicated", ev.id),
        ));
    }
    if chain_hash(&ev.prev_hash, ev) != ev.hash {
        return Some(bad(
            expected,
            BadKind::Changed,
            format!("event {expected} does not match its hash: it was changed"),
        ));
    }
    if ev.prev_hash != head.hash {
        let to = match head.id {
            0 => "the genesis hash".to_owned(),
            prev => format!("event {prev}'s hash"),
        };
        return Some(bad(
            expected,
            BadKind::BrokenLink,
            format!("event {expected} does not link to {to}: the events before it were changed, replaced or reordered"),
        ));
    }
    head.id = ev.id;
    head.hash.clone_from(&ev.hash);
    None
}

fn bad(id: u64, kind: BadKind, reason: String) -> BadEvent {
    BadEvent { id, kind, reason }
}
