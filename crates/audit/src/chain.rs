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
    link(prev_hash, &canonical_bytes(ev)).as_str().to_owned()
}

/// `hash` of an event with these canonical bytes after one whose hash is `prev_hash`.
fn link(prev_hash: &str, canonical: &[u8]) -> HexDigest {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update([0u8]);
    h.update(canonical);
    HexDigest::new(&h.finalize().into())
}

/// A SHA-256 digest as lower-case hex, on the stack.
struct HexDigest([u8; 64]);

impl HexDigest {
    fn new(digest: &[u8; 32]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        HexDigest(out)
    }

    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// How the `hash` member of canonical bytes reads (its value is empty there).
const EMPTY_HASH_MEMBER: &[u8] = br#","hash":"""#;

/// Bytes of JSON a [`SealedJson`] keeps allocated between batches at most; a batch of huge
/// statements gives its memory back.
const KEEP_BYTES: usize = 4 << 20;

/// The stored JSON of a batch of sealed events, made from their canonical bytes instead of
/// serialising every event a second time, in one buffer reused from batch to batch.
///
/// A sealed event's JSON differs from its canonical bytes only in the value of `hash`, which is
/// hex and needs no escaping: the 64 digits go between the quotes of the one `,"hash":""` of
/// the canonical bytes. That text is always a member of an object, never string content: a
/// quote inside a string is escaped, and one that closes a string is not followed by `h`. The
/// event's own `hash` member is one; should the text ever occur more than once (a nested
/// object with a `hash` of its own), the sealed event is serialised again instead.
#[derive(Debug, Default)]
pub(crate) struct SealedJson {
    buf: Vec<u8>,
    /// Where each event's JSON ends in `buf`.
    ends: Vec<usize>,
    /// An event could not be serialised (see [`SealedJson::texts`]).
    failed: bool,
}

impl SealedJson {
    /// Empties it for a new batch.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.buf.shrink_to(KEEP_BYTES);
        self.ends.clear();
        self.failed = false;
    }

    /// Each sealed event's JSON, in order; `None` when one could not be serialised (which
    /// `AuditEvent` cannot fail at; the store then serialises, and reports the error, itself).
    pub(crate) fn texts(&self) -> Option<Vec<&str>> {
        if self.failed {
            return None;
        }
        let all = std::str::from_utf8(&self.buf).ok()?;
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let text = all.get(start..end);
                start = end;
                text
            })
            .collect()
    }

    /// Appends the canonical bytes of `ev` (whose `hash` is empty) and returns them.
    fn push_canonical(&mut self, ev: &AuditEvent) -> Option<&[u8]> {
        debug_assert!(ev.hash.is_empty());
        let start = self.start();
        if self.failed || serde_json::to_writer(&mut self.buf, ev).is_err() {
            self.fail(start);
            return None;
        }
        self.buf.get(start..)
    }

    /// Turns the canonical bytes appended last into the JSON of `ev`, now sealed with `hash`.
    fn seal_last(&mut self, ev: &AuditEvent, hash: &HexDigest) {
        if self.failed {
            return;
        }
        let start = self.start();
        match only_position(&self.buf[start..], EMPTY_HASH_MEMBER) {
            Some(at) => {
                // Just inside the quotes of the empty value.
                let value = start + at + EMPTY_HASH_MEMBER.len() - 1;
                let end = self.buf.len();
                self.buf.extend_from_slice(&hash.0);
                self.buf.copy_within(value..end, value + hash.0.len());
                self.buf[value..value + hash.0.len()].copy_from_slice(&hash.0);
            }
            None => {
                self.buf.truncate(start);
                if serde_json::to_writer(&mut self.buf, ev).is_err() {
                    return self.fail(start);
                }
            }
        }
        debug_assert_eq!(
            serde_json::to_vec(ev).ok().as_deref(),
            Some(&self.buf[start..]),
            "the stored JSON of a sealed event is its serde_json serialisation"
        );
        self.ends.push(self.buf.len());
    }

    /// Where the event being added starts.
    fn start(&self) -> usize {
        self.ends.last().copied().unwrap_or(0)
    }

    fn fail(&mut self, start: usize) {
        self.buf.truncate(start);
        self.failed = true;
    }
}

/// Where `needle` occurs in `haystack`, if it occurs exactly once.
fn only_position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    // Candidates are the places of the needle's `h`, a rare letter in events, found eight
    // bytes at a time: a byte-by-byte search for the whole needle costs several times more.
    const PIVOT: u8 = b'h';
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = ONES << 7;
    let offset = needle.iter().position(|&b| b == PIVOT)?;
    let mut found = None;
    // False once the needle is found a second time.
    let mut candidate = |pivot: usize| match pivot.checked_sub(offset) {
        Some(at) if haystack[at..].starts_with(needle) => found.replace(at).is_none(),
        _ => true,
    };
    let mut words = haystack.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // Bytes equal to PIVOT become zero, and `(x - ONES) & !x & HIGHS` has the high bit of
        // every zero byte set (and maybe of a byte above one, which `candidate` rejects).
        let x = word ^ (ONES * u64::from(PIVOT));
        let mut zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        while zeros != 0 {
            if !candidate(base + zeros.trailing_zeros() as usize / 8) {
                return None;
            }
            zeros &= zeros - 1;
        }
        base += 8;
    }
    for (i, &byte) in words.remainder().iter().enumerate() {
        if byte == PIVOT && !candidate(base + i) {
            return None;
        }
    }
    found
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

    /// [`ChainHead::seal`] that also appends the sealed event's JSON (exactly its
    /// `serde_json` serialisation) to `out`, serialising the event once for both.
    pub(crate) fn seal_into(&mut self, ev: &mut AuditEvent, out: &mut SealedJson) {
        ev.id = self.id + 1;
        ev.prev_hash = std::mem::take(&mut self.hash);
        // The hash does not cover itself: emptied, the event serialises to its canonical bytes.
        ev.hash.clear();
        let hash = match out.push_canonical(ev) {
            Some(canonical) => link(&ev.prev_hash, canonical),
            None => link(&ev.prev_hash, &canonical_bytes(ev)),
        };
        ev.hash.push_str(hash.as_str());
        out.seal_last(ev, &hash);
        self.id = ev.id;
        self.hash.clone_from(&ev.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::{AuditKind, Outcome};

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

    /// Events whose strings stress the JSON: every kind of escape, non-ASCII, the text of the
    /// hash member inside strings, at all alignments.
    fn varied() -> Vec<AuditEvent> {
        let tricky = [
            "",
            "h",
            r#","hash":"""#,
            r#"{"hash":""}"#,
            r#"x","hash":"","y":""#,
            "hash\\",
            r#"\\"hash\":\"\""#,
            "tab\tnew\nline\u{1}\u{1f}\u{7f}",
            "héllo wörld ✓ 🙂",
            "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh",
        ];
        let mut out = vec![ev()];
        for (i, text) in tricky.iter().enumerate() {
            let mut e = AuditEvent::new(AuditKind::Statement, text, (*text).to_owned());
            e.identity = Some((*text).to_owned());
            e.groups = vec![(*text).to_owned(); i % 3];
            e.statement = Some(text.repeat(i));
            e.params = vec![Some((*text).to_owned()), None];
            e.outcome = match i % 3 {
                0 => Outcome::Ok,
                1 => Outcome::Error {
                    sqlstate: "42501".into(),
                    message: (*text).to_owned(),
                },
                _ => Outcome::Unknown {
                    reason: (*text).to_owned(),
                },
            };
            e.rows = Some(i as u64);
            if i % 2 == 0 {
                e.decision = Some((*text).to_owned());
                e.policies = vec![(*text).to_owned()];
                e.command = Some((*text).to_owned());
                e.tables = vec![(*text).to_owned(), "hash".into()];
                e.masked = vec![(*text).to_owned()];
            }
            // A producer's stray hash is not covered and is replaced.
            e.hash = (*text).to_owned();
            out.push(e);
        }
        out
    }

    #[test]
    fn seal_into_seals_like_seal_and_stores_the_serde_json_of_the_event() {
        let events = varied();
        let mut head = ChainHead::genesis();
        let mut json = SealedJson::default();
        // Twice over a reused buffer: the second batch continues the chain of the first.
        for _ in 0..2 {
            let mut expected_head = head.clone();
            let mut expected = events.clone();
            for e in &mut expected {
                expected_head.seal(e);
            }
            let mut sealed = events.clone();
            json.clear();
            for e in &mut sealed {
                head.seal_into(e, &mut json);
            }
            assert_eq!(sealed, expected);
            assert_eq!(head, expected_head);
            let texts: Vec<String> = json
                .texts()
                .unwrap_or_default()
                .into_iter()
                .map(str::to_owned)
                .collect();
            let serialized: Vec<String> = sealed
                .iter()
                .map(|e| serde_json::to_string(e).unwrap_or_default())
                .collect();
            assert_eq!(texts, serialized);
            for e in &sealed {
                assert_eq!(chain_hash(&e.prev_hash, e), e.hash);
            }
        }
    }

    #[test]
    fn the_hash_member_is_found_only_when_it_is_there_once() {
        let needle = EMPTY_HASH_MEMBER;
        let naive = |hay: &[u8]| {
            let found: Vec<usize> = (0..hay.len())
                .filter(|&i| hay[i..].starts_with(needle))
                .collect();
            (found.len() == 1).then(|| found[0])
        };
        let pieces: [&[u8]; 6] = [b"h", b"x", b"hh", br#","hash":"#, needle, br"\u0068ash"];
        // Every sequence of up to four pieces, so the needle and its look-alikes sit at every
        // offset within the eight-byte words and across their boundaries.
        let mut hays: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = hays
                .iter()
                .flat_map(|h| {
                    pieces.iter().map(move |p| {
                        let mut h = h.clone();
                        h.extend_from_slice(p);
                        h
                    })
                })
                .collect();
            hays.extend(longer);
        }
        for hay in &hays {
            assert_eq!(only_position(hay, needle), naive(hay), "{hay:?}");
        }
    }

    #[test]
    fn hashes_are_lower_case_hex_of_the_sha256_link() {
        let e = ev();
        let mut h = Sha256::new();
        h.update(GENESIS_HASH.as_bytes());
        h.update([0u8]);
        h.update(canonical_bytes(&e));
        assert_eq!(chain_hash(GENESIS_HASH, &e), hex::encode(h.finalize()));
    }

    #[test]
    fn an_ambiguous_hash_member_falls_back_to_serialising() {
        let mut e = ev();
        let mut json = SealedJson::default();
        json.clear();
        let Some(canonical) = json.push_canonical(&e) else {
            panic!("canonical bytes")
        };
        let hash = link(GENESIS_HASH, canonical);
        // As if the event held a second member with this text.
        json.buf.extend_from_slice(EMPTY_HASH_MEMBER);
        e.hash = hash.as_str().to_owned();
        json.seal_last(&e, &hash);
        assert_eq!(
            json.texts(),
            Some(vec![serde_json::to_string(&e).unwrap_or_default().as_str()])
        );
    }
}
