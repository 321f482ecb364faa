//! Asking the server, inside the client's own session and invisibly to it, what the protocol
//! does not report: the schemas unqualified names resolve against (`current_schemas`, with
//! `$user` expanded and missing schemas left out, exactly as the server searches them), the
//! raw `search_path` (where `pg_temp` sits), and the session's temporary tables.
//!
//! The client→upstream half sends the probe as a simple Query between the client's requests,
//! only where that cannot change the meaning of what the client sent (no extended-protocol
//! batch open, no COPY in progress); the upstream→client half answers it from the responses
//! and forwards none of them. In a failed transaction the probe fails too; the caller then
//! keeps its previous knowledge, which matters little since the server refuses everything but
//! the end of the transaction there.

use std::collections::{BTreeSet, HashMap};

/// The catalog fingerprint: every view's and materialized view's rewrite rule with the
/// transaction that last wrote it, and every inheritance link. Equal fingerprints mean the
/// view definitions and the partition tree lineage saw are the server's.
macro_rules! fingerprint_sql {
    () => {
        "SELECT pg_catalog.md5(COALESCE((SELECT pg_catalog.string_agg(r.ev_class::pg_catalog.text \
         OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) r.xmin::pg_catalog.text, ',' ORDER BY r.ev_class, r.oid) \
         FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.ev_class \
         WHERE c.relpersistence OPERATOR(pg_catalog.<>) 't'), '') OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) COALESCE((SELECT \
         pg_catalog.string_agg(i.inhrelid::pg_catalog.text OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) i.inhparent::pg_catalog.text, \
         ',' ORDER BY i.inhrelid, i.inhparent) FROM pg_catalog.pg_inherits i \
         JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid WHERE c.relpersistence OPERATOR(pg_catalog.<>) 't'), ''))"
    };
}

/// Operators are written `OPERATOR(pg_catalog.…)` and functions and types `pg_catalog.`-
/// qualified: the probe runs under the client's search path, which could put a schema with
/// look-alike operators before `pg_catalog`.
///
/// One row per fact: kind, name, detail, order. Name and detail travel as hex of their UTF-8
/// form, so the client encoding (which the server converts text results to) never applies:
/// a temporary relation's name reads the same whatever the session's encoding.
/// Kinds: `s` a schema in search order, `p` the
/// raw setting, `t` a temporary table, `c` a column of a temporary relation (name, column,
/// attribute number), `v` a temporary view (name, definition as the session would resolve
/// it now), `f` the catalog fingerprint.
pub const PROBE_SQL: &str = concat!(
    "SELECT k, pg_catalog.encode(pg_catalog.convert_to(a, 'UTF8'), 'hex'), \
     pg_catalog.encode(pg_catalog.convert_to(b, 'UTF8'), 'hex'), n FROM (",
    "SELECT 's' AS k, u.s::pg_catalog.text AS a, NULL::pg_catalog.text AS b, u.n \
     FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS u(s, n) \
     UNION ALL SELECT 'p', pg_catalog.current_setting('search_path'), NULL, 0 \
     UNION ALL SELECT 't', c.relname::pg_catalog.text, NULL, 0 FROM pg_catalog.pg_class c \
     WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) \
     UNION ALL SELECT 'c', c.relname::pg_catalog.text, a.attname::pg_catalog.text, a.attnum \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid \
     WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v}'::pg_catalog.\"char\"[]) \
     AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped \
     UNION ALL SELECT 'v', c.relname::pg_catalog.text, pg_catalog.pg_get_viewdef(c.oid), 0 \
     FROM pg_catalog.pg_class c \
     WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND c.relkind OPERATOR(pg_catalog.=) 'v' \
     UNION ALL SELECT 'f', (",
    fingerprint_sql!(),
    "), NULL, 0) AS probe(k, a, b, n) ORDER BY 1, 4, 2"
);

/// [`fingerprint_sql`] as a query of its own (the catalog loader's).
pub const FINGERPRINT_SQL: &str = fingerprint_sql!();

/// What the server said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    /// Schemas searched for unqualified names, in order (implicit `pg_catalog` and the
    /// temporary schema excluded).
    pub schemas: Vec<String>,
    /// The session's temporary tables (its temporary views are the keys of `temp_views`).
    pub temps: BTreeSet<String>,
    /// Columns (in order) of the session's temporary tables and views, and the views'
    /// definitions: what lineage needs to see through a temporary view.
    pub temp_columns: HashMap<String, Vec<String>>,
    pub temp_views: HashMap<String, String>,
    /// Unqualified names find temporary tables first (`pg_temp` is not listed explicitly
    /// after another schema).
    pub temps_first: bool,
    /// The raw setting names two or more schemas besides `pg_catalog` and `pg_temp` (whether
    /// or not they exist now: another session may create or rename one any time).
    pub several_schemas: bool,
    /// The catalog fingerprint as this session sees it (see [`FINGERPRINT_SQL`]).
    pub fingerprint: Option<String>,
    /// The session was outside any transaction block when asked: what it said is committed.
    pub idle: bool,
}

/// The probe's answer, or why there is none (an error, typically 25P02 in a failed
/// transaction).
pub type ProbeResult = Result<Probed, String>;

/// Whether the rows hold the parts every answer has (the raw setting and the fingerprint).
pub fn complete(rows: &[Vec<Option<String>>]) -> bool {
    let has = |k: &str| {
        rows.iter()
            .any(|r| matches!(r.first(), Some(Some(kind)) if kind == k))
    };
    has("p") && has("f")
}

/// Text from its hex-encoded UTF-8 (see [`PROBE_SQL`]).
fn unhex(hex: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok().filter(|_| pair.len() == 2)
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The probe's rows with name and detail decoded; `None` if any does not decode.
pub fn decode_rows(rows: &[Vec<Option<String>>]) -> Option<Vec<Vec<Option<String>>>> {
    rows.iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, cell)| match (i, cell) {
                    (1 | 2, Some(h)) => unhex(h).map(Some),
                    (_, c) => Some(c.clone()),
                })
                .collect()
        })
        .collect()
}

/// Reads the probe's rows (decoded by [`decode_rows`]).
pub fn parse(rows: &[Vec<Option<String>>]) -> Probed {
    let mut p = Probed::default();
    let mut raw = String::new();
    for row in rows {
        let [Some(kind), Some(value), detail, _] = row.as_slice() else {
            continue;
        };
        match (kind.as_str(), detail) {
            // The session's own temporary schema, named explicitly in the path, is `pg_temp`
            // to analysis (which searches it first only when it is not named).
            ("s", _) if value.starts_with("pg_temp_") => p.schemas.push("pg_temp".into()),
            ("s", _) => p.schemas.push(value.clone()),
            ("t", _) => {
                p.temps.insert(value.clone());
            }
            ("c", Some(column)) => p
                .temp_columns
                .entry(value.clone())
                .or_default()
                .push(column.clone()),
            ("v", Some(definition)) => {
                p.temp_views.insert(value.clone(), definition.clone());
            }
            ("p", _) => raw.clone_from(value),
            ("f", _) => p.fingerprint = Some(value.clone()),
            _ => {}
        }
    }
    p.temps_first = temps_first(&raw);
    p.several_schemas = several_schemas(&raw);
    p
}

/// Whether the raw `search_path` names two or more schemas other than `pg_catalog`, the
/// temporary schema and `$user` (whose schema `current_schemas` lists when it exists; one
/// created later by another session is the concurrent-DDL race of `guard::names`).
fn several_schemas(raw: &str) -> bool {
    raw.split(',')
        .map(|e| e.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|e| {
            !e.is_empty()
                && e != "pg_catalog"
                && e != "$user"
                && e != "pg_temp"
                && !e.starts_with("pg_temp_")
        })
        .count()
        >= 2
}

/// PostgreSQL searches the temporary schema first unless `pg_temp` is named in the path, in
/// which case it is searched where it is named.
fn temps_first(raw: &str) -> bool {
    let entries: Vec<String> = raw
        .split(',')
        .map(|e| e.trim().trim_matches('"').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    // The session's own temporary schema may be named as `pg_temp_N`.
    match entries
        .iter()
        .position(|e| e == "pg_temp" || e.starts_with("pg_temp_"))
    {
        None => true,
        Some(i) => i == 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(k: &str, v: &str, n: i32) -> Vec<Option<String>> {
        vec![Some(k.into()), Some(v.into()), None, Some(n.to_string())]
    }

    fn row4(k: &str, v: &str, d: &str, n: i32) -> Vec<Option<String>> {
        vec![
            Some(k.into()),
            Some(v.into()),
            Some(d.into()),
            Some(n.to_string()),
        ]
    }

    #[test]
    fn reads_schemas_in_order_and_temps() {
        let p = parse(&[
            row("p", "shadow, public", 0),
            row("s", "shadow", 1),
            row("s", "public", 2),
            row("t", "orders", 0),
            row4("c", "tv", "id", 1),
            row4("c", "tv", "email", 2),
            row4("v", "tv", " SELECT users.id, users.email FROM users;", 0),
        ]);
        assert_eq!(p.temp_columns.get("tv").map(Vec::len), Some(2));
        assert!(p.temp_views.contains_key("tv"));
        assert_eq!(p.schemas, ["shadow", "public"]);
        assert!(p.temps.contains("orders"));
        assert!(p.temps_first);
    }

    #[test]
    fn an_answer_without_setting_or_fingerprint_is_incomplete() {
        assert!(!complete(&[]));
        assert!(!complete(&[row("s", "public", 1)]));
        assert!(complete(&[row("p", "public", 0), row("f", "x", 0)]));
    }

    #[test]
    fn pg_temp_named_later_is_not_searched_first() {
        assert!(!temps_first("public, pg_temp"));
        assert!(!temps_first("public, pg_temp_5"));
        assert!(!temps_first("\"$user\", public, \"pg_temp\""));
        assert!(temps_first("pg_temp, public"));
        assert!(temps_first("\"$user\", public"));
        assert!(temps_first(""));
        assert!(!several_schemas("\"$user\", public"));
        assert!(!several_schemas("pg_temp, public, pg_catalog"));
        assert!(several_schemas("app, public"));
    }
}
