//! The client→upstream half's copy of the session's prepared statements (protocol Parse and
//! SQL PREPARE share one namespace): what each name runs, for audit texts, for deciding an
//! SQL EXECUTE, and for deciding and planning again at Bind.
//!
//! It is kept exactly in step with the server by changing only as the server does: a name is
//! created when prepared (a name already prepared is refused before it is sent, as the server
//! would refuse it), and removed only once the server confirmed the Close, DEALLOCATE or
//! DISCARD ALL (`PreparedEvent::Closed`) — a Close the server skipped after an error, or a
//! DEALLOCATE it refused in a failed transaction, leaves the name in place, as on the server.
//! A PREPARE the server rejected is undone (`PreparedEvent::Failed`), restoring what the name
//! held before if it replaced a statement whose Close was still in flight.

use super::Prepared;
use crate::pipeline::PreparedEvent;
use std::collections::HashMap;
use std::sync::Arc;

struct Entry {
    current: Arc<Prepared>,
    /// Which preparation `current` is (see `Statements::prepare`).
    id: u64,
    /// What the name held, and its id, when `current` replaced it while its Close was in
    /// flight.
    previous: Option<(Arc<Prepared>, u64)>,
    /// A Close or DEALLOCATE of it was sent and not yet confirmed.
    closing: bool,
}

#[derive(Default)]
pub struct Statements {
    map: HashMap<String, Entry>,
    /// The id the next preparation gets: a failure the server reports names the Parse it
    /// answers, not whatever holds the name by then (the unnamed statement is replaced by
    /// every Parse, so a failure can arrive after the next one was sent).
    next_id: u64,
}

impl Statements {
    pub fn get(&self, name: &str) -> Option<&Arc<Prepared>> {
        self.map.get(name).map(|e| &e.current)
    }

    /// The facts of every statement held by name, as `get` gives them (for a check that
    /// runs away from the session).
    pub fn facts_by_name(&self) -> HashMap<String, model::facts::StatementFacts> {
        self.map
            .iter()
            .filter_map(|(name, e)| Some((name.clone(), e.current.facts.clone()?)))
            .collect()
    }

    /// Whether the server will accept preparing `name`: the unnamed statement is always
    /// replaced; a named one must not exist (or be on its way out).
    pub fn may_prepare(&self, name: &str) -> bool {
        name.is_empty() || self.map.get(name).is_none_or(|e| e.closing)
    }

    /// Records a preparation of `name`; returns its id, for the failure event.
    pub fn prepare(&mut self, name: String, p: Arc<Prepared>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let previous = self
            .map
            .remove(&name)
            .filter(|e| e.closing && !name.is_empty())
            .map(|e| (e.current, e.id));
        let entry = Entry {
            current: p,
            id,
            previous,
            closing: false,
        };
        self.map.insert(name, entry);
        id
    }

    /// A Close or DEALLOCATE of `name` (`None`: all) was sent.
    pub fn closing(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                if let Some(e) = self.map.get_mut(n) {
                    e.closing = true;
                }
            }
            None => self.map.values_mut().for_each(|e| e.closing = true),
        }
    }

    /// The unnamed statement was replaced by a refusal's poison Parse, which fails.
    pub fn forget_unnamed(&mut self) {
        self.map.remove("");
    }

    pub fn apply(&mut self, event: PreparedEvent) {
        match event {
            PreparedEvent::Failed(n, id) => {
                let Some(e) = self.map.get_mut(&n) else {
                    return;
                };
                if id.is_some_and(|id| id != e.id) {
                    // A later preparation holds the name: the failed one created nothing,
                    // and if it was what the later one replaced, there is nothing to restore.
                    if e.previous.as_ref().is_some_and(|(_, p)| Some(*p) == id) {
                        e.previous = None;
                    }
                    return;
                }
                if let Some(e) = self.map.remove(&n) {
                    if let Some((previous, previous_id)) = e.previous {
                        let entry = Entry {
                            current: previous,
                            id: previous_id,
                            previous: None,
                            closing: false,
                        };
                        self.map.insert(n, entry);
                    }
                }
            }
            PreparedEvent::Closed(Some(n)) => {
                if self.map.get(&n).is_some_and(|e| e.closing) {
                    self.map.remove(&n);
                }
            }
            PreparedEvent::Closed(None) => self.map.retain(|_, e| !e.closing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::Annotation;

    fn stmt(text: &str) -> Arc<Prepared> {
        Arc::new(Prepared {
            text: text.into(),
            note: Annotation::default(),
            facts: None,
            key: 0,
            hold: None,
            policies: None,
            param_types: Vec::new(),
        })
    }

    fn text(s: &Statements, n: &str) -> Option<String> {
        s.get(n).map(|p| p.text.clone())
    }

    #[test]
    fn a_name_goes_only_when_the_server_confirms_its_close() {
        let mut s = Statements::default();
        s.prepare("p".into(), stmt("one"));
        assert!(!s.may_prepare("p"), "the server would refuse 42P05");
        s.closing(Some("p"));
        assert_eq!(
            text(&s, "p").as_deref(),
            Some("one"),
            "Close not confirmed yet"
        );
        // A Close the server skipped after an error is never confirmed: the name stays.
        s.apply(PreparedEvent::Closed(Some("p".into())));
        assert_eq!(text(&s, "p"), None);
    }

    #[test]
    fn a_failed_replacement_restores_what_the_name_held() {
        let mut s = Statements::default();
        s.prepare("p".into(), stmt("one"));
        s.closing(Some("p"));
        assert!(s.may_prepare("p"));
        s.prepare("p".into(), stmt("two"));
        // The Close was skipped, so the server refused the second PREPARE.
        s.apply(PreparedEvent::Failed("p".into(), None));
        assert_eq!(text(&s, "p").as_deref(), Some("one"));
        // A late confirmation of an old close does not remove a newer statement.
        s.prepare("q".into(), stmt("a"));
        s.closing(Some("q"));
        s.prepare("q".into(), stmt("b"));
        s.apply(PreparedEvent::Closed(Some("q".into())));
        assert_eq!(text(&s, "q").as_deref(), Some("b"));
    }

    #[test]
    fn deallocate_all_removes_only_what_was_closing() {
        let mut s = Statements::default();
        s.prepare("a".into(), stmt("a"));
        s.closing(None);
        s.prepare("b".into(), stmt("b"));
        s.apply(PreparedEvent::Closed(None));
        assert_eq!(text(&s, "a"), None);
        assert_eq!(text(&s, "b").as_deref(), Some("b"));
    }

    #[test]
    fn a_failure_names_the_parse_it_answers() {
        let mut s = Statements::default();
        // Batch 1's unnamed Parse fails; batch 2's was sent before the failure was seen.
        let first = s.prepare(String::new(), stmt("select no_such_function(1)"));
        s.prepare(String::new(), stmt("insert into t values (3)"));
        s.apply(PreparedEvent::Failed(String::new(), Some(first)));
        assert_eq!(text(&s, "").as_deref(), Some("insert into t values (3)"));
        // Its own failure removes it.
        let third = s.prepare(String::new(), stmt("select 1"));
        s.apply(PreparedEvent::Failed(String::new(), Some(third)));
        assert_eq!(text(&s, ""), None);
    }
}
