//! The table format and its checker.

use model::facts::StatementFacts;
use sql::{analyze, AnalyzeContext};

/// One expected property of a statement's facts.
#[derive(Debug, Clone, Copy)]
pub enum E {
    /// Number of statements in the string.
    Count(usize),
    /// Which statement the following expectations are about (default 0).
    At(usize),
    Class(&'static str),
    Command(&'static str),
    Reads(&'static str),
    Writes(&'static str),
    NotRead(&'static str),
    Column(&'static str, &'static str),
    Func(&'static str),
    Danger(&'static str),
    NoDanger,
    Drop(&'static str, &'static str),
    Truncate(&'static str),
    /// `has_where` for UPDATE/DELETE/MERGE: Some(bool) / None.
    Where(Option<bool>),
    Taut(bool),
    Opaque,
    NotOpaque,
    Privileges,
    RoleSwitch,
    Gatehouse,
    SearchPath(&'static [&'static str]),
    Setting(&'static str),
    Temp(&'static str),
    Untrusted,
    Load,
    AlterSystem,
    Prepared(&'static str),
    Executes(&'static str),
    /// A setting changed in a way that weakens enforcement or auditing.
    Weakens(&'static str),
    /// No weakening setting change.
    NoWeakening,
    /// A safeguard turned off or removed: (kind, name).
    Safeguard(&'static str, &'static str),
    NoSafeguard,
    /// A system relation whose rows are changed.
    CatalogWrite(&'static str),
    NoCatalogWrite,
    /// `unfiltered_merge`.
    MergeAll(bool),
    /// Nothing a guardrail would refuse: not opaque, no danger, drops, truncation,
    /// privileges, unfiltered writes, role switches, gatehouse settings, LOAD, ALTER SYSTEM,
    /// untrusted languages, weakening settings, disabled safeguards, catalog writes.
    Benign,
}

pub type Case = (&'static str, &'static [E]);

pub fn ctx() -> AnalyzeContext {
    AnalyzeContext::default()
}

/// Check every case; panic once with all failures.
pub fn run(table: &[Case]) {
    run_with(table, &ctx());
}

/// [`run`] under another session context (a search path).
pub fn run_with(table: &[Case], ctx: &AnalyzeContext) {
    let mut failures = Vec::new();
    for (sql, expect) in table {
        let analysis = analyze(sql, ctx);
        let mut at = 0;
        for e in expect.iter() {
            if let E::At(i) = e {
                at = *i;
                continue;
            }
            if let E::Count(n) = e {
                if analysis.statements.len() != *n {
                    failures.push(format!(
                        "{sql}\n  expected {n} statements, got {}",
                        analysis.statements.len()
                    ));
                }
                continue;
            }
            let Some(f) = analysis.statements.get(at) else {
                failures.push(format!("{sql}\n  no statement {at}"));
                continue;
            };
            if let Err(why) = check(f, e) {
                let json = serde_json::to_string(f).unwrap_or_default();
                failures.push(format!("{sql}\n  {e:?}: {why}\n  facts: {json}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn has(set: &std::collections::BTreeSet<String>, s: &str) -> bool {
    set.contains(s)
}

fn check(f: &StatementFacts, e: &E) -> Result<(), String> {
    let ok = match *e {
        E::Count(_) | E::At(_) => true,
        E::Class(c) => f.class.as_str() == c,
        E::Command(c) => f.command == c,
        E::Reads(t) => has(&f.tables_read, t),
        E::Writes(t) => has(&f.tables_written, t),
        E::NotRead(t) => !has(&f.tables_read, t),
        E::Column(t, c) => f.columns.get(t).is_some_and(|cols| cols.contains(c)),
        E::Func(n) => has(&f.functions, n),
        E::Danger(d) => f.dangerous.iter().any(|x| x.as_str() == d),
        E::NoDanger => f.dangerous.is_empty(),
        E::Drop(kind, name) => f.drops.iter().any(|d| d.kind == kind && d.name == name),
        E::Truncate(t) => has(&f.truncated, t),
        E::Where(w) => f.has_where == w,
        E::Taut(t) => f.where_tautology == t,
        E::Opaque => f.opaque.is_some(),
        E::NotOpaque => f.opaque.is_none(),
        E::Privileges => f.privileges,
        E::RoleSwitch => f.session.role_switch,
        E::Gatehouse => !f.session.gatehouse_settings.is_empty(),
        E::SearchPath(p) => {
            f.session.search_path.as_deref()
                == Some(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
        }
        E::Setting(s) => has(&f.session.settings, s),
        E::Temp(t) => has(&f.temp_tables_created, t),
        E::Untrusted => f.untrusted_language,
        E::Load => f.load,
        E::AlterSystem => f.alter_system,
        E::Prepared(n) => f.prepared_name.as_deref() == Some(n),
        E::Executes(n) => f.executes_prepared.as_deref() == Some(n),
        E::Weakens(s) => has(&f.session.weakening_settings, s),
        E::NoWeakening => f.session.weakening_settings.is_empty(),
        E::Safeguard(kind, name) => f
            .disabled_safeguards
            .iter()
            .any(|d| d.kind == kind && d.name == name),
        E::NoSafeguard => f.disabled_safeguards.is_empty(),
        E::CatalogWrite(t) => has(&f.catalog_writes, t),
        E::NoCatalogWrite => f.catalog_writes.is_empty(),
        E::MergeAll(m) => f.unfiltered_merge == m,
        E::Benign => {
            return benign(f);
        }
    };
    if ok {
        Ok(())
    } else {
        Err("not so".into())
    }
}

fn benign(f: &StatementFacts) -> Result<(), String> {
    let mut bad = Vec::new();
    if let Some(o) = &f.opaque {
        bad.push(format!("opaque: {o}"));
    }
    if !f.dangerous.is_empty() {
        bad.push("dangerous".to_owned());
    }
    if !f.drops.is_empty() || !f.truncated.is_empty() {
        bad.push("drops".to_owned());
    }
    if f.privileges {
        bad.push("privileges".to_owned());
    }
    if f.has_where == Some(false) || f.where_tautology {
        bad.push("unfiltered write".to_owned());
    }
    if f.session.role_switch || !f.session.gatehouse_settings.is_empty() {
        bad.push("session".to_owned());
    }
    if f.load || f.alter_system || f.untrusted_language {
        bad.push("load/alter system/untrusted".to_owned());
    }
    if !f.session.weakening_settings.is_empty() {
        bad.push("weakening settings".to_owned());
    }
    if !f.disabled_safeguards.is_empty() {
        bad.push("disabled safeguards".to_owned());
    }
    if !f.catalog_writes.is_empty() || f.unfiltered_merge {
        bad.push("catalog write / unfiltered merge".to_owned());
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join(", "))
    }
}
