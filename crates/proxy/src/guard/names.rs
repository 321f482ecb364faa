//! Unqualified relation names resolved as the server resolves them.
//!
//! Analysis is catalog-free: an unqualified name is put in the first usable schema of the
//! search path. That is the server's answer only when the path has a single usable schema;
//! with several (`SET search_path = app, public`, a role's own path, an `information_schema`
//! put first), the server takes the first schema that *has* the relation, which the session
//! itself may have just created, renamed or dropped. A decision made on the analyser's guess
//! would name one table while the server writes another. So, with several usable schemas,
//! every name the guess put in the first one is asked of the server, in the session, for the
//! statement being checked (`pg_catalog.to_regclass`), and the facts are corrected before
//! anything is decided. A statement whose names cannot be asked (inside an unsynced batch) is
//! refused.

use model::decision::Decision;
use model::facts::{CommandClass, StatementFacts};
use std::collections::{BTreeSet, HashMap};

/// Corrects `statements` with the server's resolution in `names`; the names still to be
/// asked (none when the path has a single usable schema or all were known).
pub(super) fn requalify(
    statements: &mut [StatementFacts],
    search_path: &[String],
    several_schemas: bool,
    names: &HashMap<String, Option<String>>,
) -> BTreeSet<String> {
    let usable: Vec<&String> = search_path
        .iter()
        .filter(|s| !s.is_empty() && !s.starts_with("pg_temp") && s.as_str() != "pg_catalog")
        .collect();
    // `$user` not yet expanded by the server counts as a schema that may exist.
    let Some(first) = usable.iter().find(|s| s.as_str() != "$user") else {
        return BTreeSet::new();
    };
    // One schema that exists and one named: no other answer is possible. A raw path naming
    // several (existing or not: another session may create or rename one) is asked.
    if usable.len() < 2 && !several_schemas {
        return BTreeSet::new();
    }
    let prefix = format!("{first}.");
    let mut wanted = BTreeSet::new();
    for f in statements.iter_mut() {
        let guessed: BTreeSet<String> = f
            .tables_read
            .iter()
            .chain(&f.tables_written)
            .chain(&f.truncated)
            .chain(f.columns.keys())
            .chain(
                f.drops
                    .iter()
                    .filter(|d| !d.explicit_schema)
                    .map(|d| &d.name),
            )
            .filter_map(|n| n.strip_prefix(&prefix))
            // `pg_*` names were put in pg_catalog, not here.
            .filter(|bare| !bare.starts_with("pg_"))
            .map(str::to_owned)
            .collect();
        for bare in guessed {
            match names.get(&bare) {
                None => {
                    wanted.insert(bare);
                }
                Some(Some(schema)) if schema != *first && !schema.starts_with("pg_temp") => {
                    rename(f, &format!("{prefix}{bare}"), &format!("{schema}.{bare}"));
                }
                // The guess is the server's, the relation does not exist (the server will
                // say so, or create it there), or it is a temporary one (the guard's own
                // knowledge of temporary tables decides those).
                Some(_) => {}
            }
        }
    }
    wanted
}

/// A statement of a string that may change what names mean for the statements after it:
/// the search path, which schemas or temporary tables exist (DDL, DISCARD), code.
pub(super) fn changed_within(statements: &[StatementFacts]) -> bool {
    statements.iter().enumerate().any(|(i, f)| {
        (changes_path(f) || blurs_temps(f))
            && statements
                .get(i + 1..)
                .is_some_and(|rest| rest.iter().any(names_relations))
    })
}

/// Whether a statement names relations (whose resolution matters).
pub(super) fn names_relations(f: &StatementFacts) -> bool {
    !f.tables_read.is_empty()
        || !f.tables_written.is_empty()
        || !f.truncated.is_empty()
        || !f.drops.is_empty()
}

/// Whether a statement makes the session's temporary tables unknown for what follows it in
/// the same string (other than creating or dropping one by name, which is followed).
pub(super) fn blurs_temps(f: &StatementFacts) -> bool {
    (changes_path(f) && f.temp_tables_created.is_empty() && f.drops.is_empty())
        || f.command.starts_with("DISCARD")
        || f.class == CommandClass::CallDo
}

/// The refusal of a statement decided while the search path is not the server's.
pub(super) fn unconfirmed_path() -> Decision {
    Decision::Deny {
        reason: "what table names mean could not be confirmed with the server here: the search path, schemas or temporary tables may have changed (earlier in this string, or since the last question)".into(),
        policy_id: "gatehouse.names".into(),
        hint: Some("send statements that change the search path, schemas or temporary tables as queries of their own, outside a pipeline".into()),
        policies: Vec::new(),
    }
}

/// Whether a statement can change the search path: SET, RESET, DISCARD ALL, `set_config`,
/// code whose body is not analysed here (DO, CALL, functions).
pub(super) fn changes_path(f: &StatementFacts) -> bool {
    // DDL that renames, moves or drops (relations or schemas) changes what names resolve
    // to, and which of the path's schemas exist (`current_schemas`); creating only adds a
    // relation where the server searches first anyway (stricter, never laxer).
    (f.class == CommandClass::Ddl
        && (f.command.starts_with("ALTER") || f.command.starts_with("DROP")))
        || f.command.starts_with("DISCARD")
        || f.session.search_path.is_some()
        || f.session.settings.contains("search_path")
        || f.session.settings.contains("*")
        || f.class == CommandClass::CallDo
        || f.functions
            .iter()
            .any(|n| !sql::lineage::is_inert_builtin(n))
}

/// Whether a statement can create or drop temporary tables, or undo that (a rollback).
pub(super) fn changes_temps(f: &StatementFacts) -> bool {
    !f.temp_tables_created.is_empty()
        || !f.drops.is_empty()
        || matches!(
            f.class,
            CommandClass::Transaction | CommandClass::CallDo | CommandClass::Ddl
        )
        || f.command.starts_with("DISCARD")
        || f.functions
            .iter()
            .any(|n| !sql::lineage::is_inert_builtin(n))
}

/// Replaces the relation `from` by `to` wherever the facts name it.
fn rename(f: &mut StatementFacts, from: &str, to: &str) {
    for set in [&mut f.tables_read, &mut f.tables_written, &mut f.truncated] {
        if set.remove(from) {
            set.insert(to.to_owned());
        }
    }
    if let Some(cols) = f.columns.remove(from) {
        f.columns.entry(to.to_owned()).or_default().extend(cols);
    }
    let drops: Vec<_> = f
        .drops
        .iter()
        .filter(|d| !d.explicit_schema && d.name == from)
        .cloned()
        .collect();
    for mut d in drops {
        f.drops.remove(&d);
        d.name = to.to_owned();
        f.drops.insert(d);
    }
}

/// The refusal of a statement whose names the server could not be asked to resolve.
pub(super) fn ambiguous() -> Decision {
    Decision::Deny {
        reason: "the search path has several schemas and the server could not be asked here which of them an unqualified table name means".into(),
        policy_id: "gatehouse.names".into(),
        hint: Some("qualify table names with their schema, or send Sync before this statement".into()),
        policies: Vec::new(),
    }
}

/// The query asking the server, in the session, where each name resolves: one row per name,
/// name and schema as hex of their UTF-8 form (the client encoding never applies), schema
/// NULL when there is no such relation. Every function, operator and type is qualified.
pub fn resolve_sql(names: &BTreeSet<String>) -> String {
    let values = names
        .iter()
        .map(|n| format!("('{}')", hex(n.as_bytes())))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT v.h, pg_catalog.encode(pg_catalog.convert_to(n.nspname::pg_catalog.text, 'UTF8'), 'hex') \
         FROM (VALUES {values}) AS v(h) \
         LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(\
         pg_catalog.quote_ident(pg_catalog.convert_from(pg_catalog.decode(v.h, 'hex'), 'UTF8'))) \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
    )
}

/// The answer to [`resolve_sql`]: name → schema (`None`: no such relation).
pub fn resolved(rows: &[Vec<Option<String>>]) -> Option<HashMap<String, Option<String>>> {
    rows.iter()
        .map(|r| {
            let name = unhex(r.first()?.as_deref()?)?;
            let schema = match r.get(1)? {
                Some(h) => Some(unhex(h)?),
                None => None,
            };
            Some((name, schema))
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Option<String> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(written: &str) -> StatementFacts {
        StatementFacts {
            tables_written: [written.to_owned()].into(),
            ..StatementFacts::default()
        }
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn one_usable_schema_needs_nothing() {
        let mut s = vec![facts("public.orders")];
        let names = HashMap::new();
        assert!(requalify(&mut s, &path(&["public"]), false, &names).is_empty());
        assert!(requalify(
            &mut s,
            &path(&["pg_catalog", "public", "pg_temp_3"]),
            false,
            &names
        )
        .is_empty());
    }

    #[test]
    fn several_schemas_ask_then_correct() {
        let p = path(&["information_schema", "public"]);
        let mut s = vec![facts("information_schema.orders")];
        let wanted = requalify(&mut s, &p, true, &HashMap::new());
        assert_eq!(wanted, ["orders".to_owned()].into());
        let names = HashMap::from([("orders".to_owned(), Some("public".to_owned()))]);
        assert!(requalify(&mut s, &p, true, &names).is_empty());
        assert_eq!(s[0].tables_written, ["public.orders".to_owned()].into());
        // `$user` not expanded yet may be a schema too.
        let mut s = vec![facts("public.orders")];
        assert!(!requalify(&mut s, &path(&["$user", "public"]), true, &HashMap::new()).is_empty());
    }

    #[test]
    fn answers_round_trip_through_hex() {
        let rows = vec![
            vec![Some(hex(b"orders")), Some(hex(b"public"))],
            vec![Some(hex("Gr\u{fc}n".as_bytes())), None],
        ];
        let r = resolved(&rows).unwrap_or_default();
        assert_eq!(r.get("orders"), Some(&Some("public".to_owned())));
        assert_eq!(r.get("Gr\u{fc}n"), Some(&None));
        assert!(resolve_sql(&["orders".to_owned()].into()).contains("('6f7264657273')"));
    }

    #[test]
    fn a_change_earlier_in_a_string_leaves_later_names_unknown() {
        let set_path = StatementFacts {
            session: model::facts::SessionFacts {
                search_path: Some(vec!["app".into()]),
                ..Default::default()
            },
            ..StatementFacts::default()
        };
        let update = facts("public.orders");
        assert!(changed_within(&[set_path.clone(), update.clone()]));
        // After the last statement there is nothing to mislead.
        assert!(!changed_within(&[update.clone(), set_path]));
        let create = StatementFacts {
            class: model::facts::CommandClass::Ddl,
            command: "CREATE TABLE".into(),
            ..StatementFacts::default()
        };
        assert!(!changed_within(&[create, update.clone()]));
        let rename = StatementFacts {
            class: model::facts::CommandClass::Ddl,
            command: "ALTER TABLE".into(),
            ..StatementFacts::default()
        };
        assert!(changed_within(&[rename.clone(), update]));
        assert!(blurs_temps(&rename));
    }
}
