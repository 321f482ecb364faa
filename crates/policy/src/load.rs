//! Loading policies: parse each file, give every policy a stable id, validate the lot against
//! the schema in strict mode, and pre-select per action the policies that can apply to it.
//!
//! Every problem is reported, not just the first, as `file:line:column: message` where Cedar
//! gives a source location. A policy set that does not load is never half-used: the caller
//! keeps its previous `Policies`.

use crate::auto::{self, AutoRules};
use cedar_policy::{
    ActionConstraint, Authorizer, Effect, EntityUid, Policy, PolicyId, PolicySet, Schema,
    ValidationMode, ValidationWarning, Validator,
};
use miette::Diagnostic;
use model::facts::CommandClass;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The Cedar schema every policy is validated against.
pub const SCHEMA: &str = include_str!("gatehouse.cedarschema");
/// The built-in guardrail pack.
pub const BUILTIN_POLICIES: &str = include_str!("builtin.cedar");
const BUILTIN_FILE: &str = "<builtin>";

/// One problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    pub file: String,
    /// 1-based, when Cedar could say where.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            (Some(l), None) => write!(f, "{}:{l}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What a decision needs to know about a policy besides its logic.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub forbid: bool,
    pub reason: Option<String>,
    pub hint: Option<String>,
    pub approval: Option<String>,
    /// Distinct approvals needed (`@quorum("2")`; 1 without it).
    pub quorum: u32,
    /// `@approval_mode("commit")`: the COMMIT of the transaction is held, not the write.
    pub commit: bool,
    /// Load order (built-in pack first, then files in the order given), for deterministic
    /// blame when several forbids match.
    pub order: usize,
}

/// The policies for one action, pre-selected at load time.
#[derive(Debug)]
pub(crate) struct ActionPolicies {
    pub action: EntityUid,
    pub all: PolicySet,
    /// The same without forbids that carry `@approval` (to ask: would it be allowed if
    /// approved?).
    pub without_approval: PolicySet,
}

/// A validated, ready-to-decide policy set.
#[derive(Debug)]
pub struct Policies {
    pub(crate) actions: HashMap<CommandClass, ActionPolicies>,
    pub(crate) meta: HashMap<PolicyId, Meta>,
    pub(crate) authorizer: Authorizer,
    /// Policies that apply to the `unmask` action.
    pub(crate) unmask: Option<ActionPolicies>,
    /// Automatic approval rules and what can stop them (`auto.rs`).
    pub(crate) auto: AutoRules,
    /// Distinguishes one load from another (decision caches key on it).
    pub(crate) generation: u64,
    count: usize,
}

/// Source of [`Policies::generation`]: every load gets a new number.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// A parsed policy and where it came from.
struct Loaded {
    policy: Policy,
    file: usize,
    /// Byte offset of the policy's text in its file, when found.
    offset: Option<usize>,
}

impl Policies {
    /// Load the built-in pack (if `builtin`) and `sources` (file name, text), in that order.
    pub fn load(builtin: bool, sources: &[(String, String)]) -> Result<Policies, Vec<PolicyError>> {
        let schema = schema().map_err(|e| vec![e])?;
        let mut files: Vec<(&str, &str)> = Vec::new();
        if builtin {
            files.push((BUILTIN_FILE, BUILTIN_POLICIES));
        }
        files.extend(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())));

        let mut errors = Vec::new();
        let mut loaded: Vec<Loaded> = Vec::new();
        let mut seen_ids = HashSet::new();
        for (index, (file, text)) in files.iter().enumerate() {
            // Policies come in textual order, so each one's text is found after the last.
            let mut cursor = 0;
            for (n, policy) in parse_file(file, text, &mut errors).into_iter().enumerate() {
                let src = policy.to_string();
                let offset = text
                    .get(cursor..)
                    .and_then(|t| t.find(&src))
                    .map(|o| o + cursor);
                if let Some(o) = offset {
                    cursor = o + src.len();
                }
                let id = policy
                    .annotation("id")
                    .map_or_else(|| format!("{file}#{}", n + 1), str::to_owned);
                let problem = if !seen_ids.insert(id.clone()) {
                    Some(format!("duplicate policy id {id:?}"))
                } else {
                    annotation_problem(&policy).or_else(|| auto::problem(&policy))
                };
                if let Some(message) = problem {
                    errors.push(at_offset(file, text, offset, message));
                    continue;
                }
                let policy = policy.new_id(PolicyId::new(id));
                loaded.push(Loaded {
                    policy,
                    file: index,
                    offset,
                });
            }
        }

        let mut set = PolicySet::new();
        for l in &loaded {
            if let Err(e) = set.add(l.policy.clone()) {
                let (file, text) = files.get(l.file).copied().unwrap_or_default();
                errors.push(at_offset(file, text, l.offset, e.to_string()));
            }
        }
        validate(&schema, &set, &loaded, &files, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(build(&loaded))
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

pub(crate) fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(s, _warnings)| s)
        .map_err(|e| PolicyError {
            file: "<schema>".into(),
            line: None,
            column: None,
            message: e.to_string(),
        })
}

/// Parse one file into its static policies, in textual order.
fn parse_file(file: &str, text: &str, errors: &mut Vec<PolicyError>) -> Vec<Policy> {
    let set = match PolicySet::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            errors.extend(e.iter().map(|pe| located(file, text, pe)));
            return Vec::new();
        }
    };
    if set.templates().next().is_some() {
        errors.push(PolicyError {
            file: file.into(),
            line: None,
            column: None,
            message: "policy templates (?principal / ?resource) are not supported".into(),
        });
    }
    // Cedar names them policy0, policy1, … in textual order; sort by that number.
    let mut policies: Vec<Policy> = set.policies().cloned().collect();
    policies.sort_by_key(|p| {
        let id = p.id().to_string();
        id.trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    policies
}

/// `@approval` must name a group and sit on a forbid; `@quorum` is a count from 1 to 10 next
/// to an `@approval`.
fn annotation_problem(p: &Policy) -> Option<String> {
    if let Some(q) = p.annotation("quorum") {
        if p.annotation("approval").is_none() {
            return Some("@quorum only makes sense with @approval".into());
        }
        if !q.trim().parse::<u32>().is_ok_and(|n| (1..=10).contains(&n)) {
            return Some(format!("@quorum needs a count from 1 to 10, not {q:?}"));
        }
    }
    if let Some(m) = p.annotation("approval_mode") {
        if p.annotation("approval").is_none() {
            return Some("@approval_mode only makes sense with @approval".into());
        }
        if !matches!(m, "statement" | "commit") {
            return Some(format!(
                "@approval_mode is \"statement\" (the default) or \"commit\", not {m:?}"
            ));
        }
    }
    match p.annotation("approval") {
        Some("") => Some("@approval needs the approver group: @approval(\"group\")".into()),
        Some(_) if p.effect() == Effect::Permit => {
            Some("@approval only makes sense on a forbid policy".into())
        }
        _ => None,
    }
}

fn validate(
    schema: &Schema,
    set: &PolicySet,
    loaded: &[Loaded],
    files: &[(&str, &str)],
    errors: &mut Vec<PolicyError>,
) {
    let result = Validator::new(schema.clone()).validate(set, ValidationMode::Strict);
    let by_id: HashMap<&PolicyId, &Loaded> = loaded.iter().map(|l| (l.policy.id(), l)).collect();
    for e in result.validation_errors() {
        let l = by_id.get(e.policy_id());
        let (file, text) = l
            .and_then(|l| files.get(l.file))
            .copied()
            .unwrap_or(("<policies>", ""));
        let mut err = located(file, text, e);
        if err.line.is_none() {
            err = at_offset(file, text, l.and_then(|l| l.offset), err.message);
        }
        errors.push(err);
    }
    // A rule that can never apply is a mistake someone relies on: refuse it. (Other
    // policies keep Cedar's warning as a warning.)
    for w in result.validation_warnings() {
        let Some(l) = by_id.get(w.policy_id()) else {
            continue;
        };
        if matches!(w, ValidationWarning::ImpossiblePolicy(_)) && auto::is_rule(&l.policy) {
            let (file, text) = files.get(l.file).copied().unwrap_or(("<policies>", ""));
            let message = "this automatic approval rule can never apply".to_owned();
            errors.push(at_offset(file, text, l.offset, message));
        }
    }
}

/// An error positioned by its first labelled source span.
fn located(file: &str, text: &str, e: &(impl Diagnostic + fmt::Display)) -> PolicyError {
    let offset = e
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let mut message = e.to_string();
    if let Some(help) = e.help() {
        message = format!("{message} ({help})");
    }
    let (line, column) = offset.map_or((None, None), |o| line_col(text, o));
    PolicyError {
        file: file.into(),
        line,
        column,
        message,
    }
}

/// An error about a whole policy, positioned at its text if it was found.
fn at_offset(file: &str, text: &str, offset: Option<usize>, message: String) -> PolicyError {
    let (line, column) = offset.map_or((None, None), |o| line_col(text, o));
    PolicyError {
        file: file.into(),
        line,
        column,
        message,
    }
}

fn line_col(text: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let Some(before) = text.get(..offset.min(text.len())) else {
        return (None, None);
    };
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (Some(line), Some(column))
}

/// The action entity for a command class.
pub(crate) fn action_uid(class: CommandClass) -> Option<EntityUid> {
    EntityUid::from_str(&format!("Gatehouse::Action::\"{}\"", class.as_str())).ok()
}

fn build(loaded: &[Loaded]) -> Policies {
    let mut meta = HashMap::new();
    for (order, l) in loaded.iter().enumerate() {
        let p = &l.policy;
        meta.insert(
            p.id().clone(),
            Meta {
                forbid: p.effect() == Effect::Forbid,
                reason: p.annotation("reason").map(str::to_owned),
                hint: p.annotation("hint").map(str::to_owned),
                approval: p.annotation("approval").map(str::to_owned),
                quorum: p
                    .annotation("quorum")
                    .and_then(|q| q.trim().parse().ok())
                    .unwrap_or(1),
                commit: p.annotation("approval_mode") == Some("commit"),
                order,
            },
        );
    }
    let mut actions = HashMap::new();
    for class in CommandClass::ALL {
        let Some(action) = action_uid(class) else {
            continue;
        };
        let mut all = PolicySet::new();
        let mut without_approval = PolicySet::new();
        for l in loaded.iter().filter(|l| applies_to(&l.policy, &action)) {
            // Ids are unique (checked above), so adding cannot fail.
            let _ = all.add(l.policy.clone());
            if l.policy.annotation("approval").is_none() {
                let _ = without_approval.add(l.policy.clone());
            }
        }
        actions.insert(
            class,
            ActionPolicies {
                action,
                all,
                without_approval,
            },
        );
    }
    let unmask = EntityUid::from_str("Gatehouse::Action::\"unmask\"")
        .ok()
        .map(|action| {
            let mut all = PolicySet::new();
            for l in loaded.iter().filter(|l| applies_to(&l.policy, &action)) {
                let _ = all.add(l.policy.clone());
            }
            ActionPolicies {
                action,
                without_approval: all.clone(),
                all,
            }
        });
    Policies {
        actions,
        meta,
        unmask,
        auto: AutoRules::build(loaded.iter().map(|l| &l.policy)),
        authorizer: Authorizer::new(),
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        count: loaded.len(),
    }
}

/// Whether a policy's action scope admits `action`. The schema has no action groups, so
/// `action in [...]` is membership in the list.
fn applies_to(p: &Policy, action: &EntityUid) -> bool {
    match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(a) => a == *action,
        ActionConstraint::In(list) => list.contains(action),
    }
}
