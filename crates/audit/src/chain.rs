//! The hash chain: what bytes of an event are hashed and how each hash links to the previous.
//!
//! **Canonical form.** An event's canonical bytes are its `serde_json` serialization (compact,
//! fields in the declaration order of [`model::AuditEvent`], strings escaped as `serde_json`
//! does, non-ASCII left as UTF-8) with `hash` set to the empty string. Everything else,
//! including `id` and `prev_hash`, is covered. Because field order is part of the form, new
//! fields of `AuditEvent` must be appended at the end (see the model crate).
//!
//! **Link.** `hash = hex(SHA-256(prev_hash ‖ 0x00 ‖ canonical_bytes))`, where `prev_hash` is
//! the previous event's `hash` as ASCII hex, or [`GENESIS_HASH`] for the first event. The 0x00
//! separator cannot occur in hex or in JSON text, so the two parts cannot be shifted into each
//! other.

use model::AuditEvent;
use sha2::{Digest, Sha256};

/// `prev_hash` of the first event: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The bytes an event's hash covers (see the module docs).
pub fn canonical_bytes(ev: &AuditEvent) -> Vec<u8> {
    // An event being appended has no hash yet: serialised as it is, with no copy.
    if ev.hash.is_empty() {
        return serde_json::to_vec(ev)
            .unwrap_or_else(|e| format!("unserializable:{e}").into_bytes());
    }
    let unhashed = AuditEvent {
        hash: String::new(),
        ..ev.clone()
    };
    // `AuditEvent` holds only strings, integers, vectors and unit/struct enum variants, for
    // which serde_json serialization cannot fail (it fails only on non-string map keys or a
    // failing custom `Serialize`). The fallback keeps this total without a panic path; it is
    // still deterministic, so a hash computed from it would simply not verify.
    serde_json::to_vec(&unhashed).unwrap_or_else(|e| format!("unserializable:{e}").into_bytes())
}

/// The hash of `ev` when it follows an event whose hash is `prev_hash`.
pub fn chain_hash(prev_hash: &str, ev: &AuditEvent) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update([0u8]);
    h.update(canonical_bytes(ev));
    hex::encode(h.finalize())
}

/// The end of a chain: the last event's id and hash (`0` and [`GENESIS_HASH`] when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub id: u64,
    pub hash: String,
}

impl ChainHead {
    pub fn genesis() -> Self {
        ChainHead {
            id: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// From [`store::AuditLog::head`]'s answer.
    pub fn from_stored(head: Option<(u64, String)>) -> Self {
        match head {
            Some((id, hash)) => ChainHead { id, hash },
            None => ChainHead::genesis(),
        }
    }

    /// Puts `ev` on the chain: assigns the next id, `prev_hash` and `hash`, and advances.
    pub fn seal(&mut self, ev: &mut AuditEvent) {
        ev.id = self.id + 1;
        ev.prev_hash = std::mem::take(&mut self.hash);
        ev.hash = chain_hash(&ev.prev_hash, ev);
        self.id = ev.id;
        self.hash = ev.hash.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::AuditKind;

    fn ev() -> AuditEvent {
        AuditEvent::new(
            AuditKind::Connect,
            "s",
            "2024-01-01T00:00:00.000000Z".into(),
        )
    }

    #[test]
    fn canonical_bytes_ignore_only_the_hash() {
        let a = ev();
        let mut b = ev();
        b.hash = "whatever".into();
        assert_eq!(canonical_bytes(&a), canonical_bytes(&b));
        b.prev_hash = "x".into();
        assert_ne!(canonical_bytes(&a), canonical_bytes(&b));
    }

    #[test]
    fn canonical_form_is_stable() {
        // Pins the canonical form: changing it would invalidate every stored chain.
        let text = String::from_utf8(canonical_bytes(&ev())).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"id":0,"time":"2024-01-01T00:00:00.000000Z","kind":"connect","identity":null,"identity_kind":null,"groups":[],"session":"s","client_addr":null,"application_name":null,"target":null,"statement":null,"params":[],"outcome":{"status":"ok"},"rows":null,"duration_us":null,"prev_hash":"","hash":""}"#
        );
    }

    #[test]
    fn the_hash_field_is_not_covered() {
        let mut sealed = ev();
        sealed.hash = "f".repeat(64);
        assert_eq!(canonical_bytes(&sealed), canonical_bytes(&ev()));
    }

    #[test]
    fn seal_links_events() {
        let mut head = ChainHead::genesis();
        let (mut a, mut b) = (ev(), ev());
        head.seal(&mut a);
        head.seal(&mut b);
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(a.prev_hash, GENESIS_HASH);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(a.hash, chain_hash(GENESIS_HASH, &a));
        assert_eq!(
            head,
            ChainHead {
                id: 2,
                hash: b.hash.clone()
            }
        );
        assert_eq!(a.hash.len(), 64);
    }
}
