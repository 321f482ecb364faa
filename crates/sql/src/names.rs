//! Turning the parse tree's name lists into the schema-qualified names facts use.
//!
//! Resolution is catalog-free: an unqualified relation lives in the first usable schema of
//! the session's `search_path`, except `pg_*` names, which PostgreSQL finds in `pg_catalog`
//! (searched implicitly before the path). Knowing the real catalog is the caller's job.

use pg_query::protobuf::{Node, RangeVar};
use pg_query::NodeEnum;

/// The schema unqualified names land in: the first `search_path` entry that is not `$user`,
/// `pg_temp*` or `pg_catalog`; else `pg_catalog` if listed; else `public`.
pub(crate) fn default_schema(search_path: &[String]) -> &str {
    let usable = |s: &&String| {
        let s = s.as_str();
        s != "$user" && !s.starts_with("pg_temp") && s != "pg_catalog" && !s.is_empty()
    };
    if let Some(s) = search_path.iter().find(usable) {
        return s;
    }
    if search_path.iter().any(|s| s == "pg_catalog") {
        return "pg_catalog";
    }
    "public"
}

/// `schema.name`, resolving a missing schema as [`default_schema`] does.
pub(crate) fn qualify(schema: Option<&str>, name: &str, search_path: &[String]) -> String {
    match schema {
        Some(s) if !s.is_empty() => format!("{s}.{name}"),
        _ if name.starts_with("pg_") => format!("pg_catalog.{name}"),
        _ => format!("{}.{name}", default_schema(search_path)),
    }
}

/// The qualified name of a relation reference.
pub(crate) fn range_var(rv: &RangeVar, search_path: &[String]) -> String {
    qualify(Some(&rv.schemaname), &rv.relname, search_path)
}

/// The `sval`s of a list of `String` nodes (how the grammar spells dotted names); `None` if
/// any item is something else (e.g. `*`).
pub(crate) fn strings(nodes: &[Node]) -> Option<Vec<String>> {
    nodes
        .iter()
        .map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A dotted name from a list of `String` nodes, resolved if it has no schema part.
/// `last_is_member` drops nothing; callers pass the object's own parts only.
pub(crate) fn qualify_parts(parts: &[String], search_path: &[String]) -> String {
    match parts {
        [name] => qualify(None, name, search_path),
        [.., schema, name] => qualify(Some(schema), name, search_path),
        [] => String::new(),
    }
}

/// A function's name as facts record it: dotted as written, lower case (the grammar has
/// already folded unquoted identifiers, so this only matters for quoted ones).
pub(crate) fn function_name(parts: &[String]) -> String {
    parts.join(".").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unqualified_names_take_the_first_real_schema() {
        assert_eq!(qualify(None, "t", &path(&["$user", "public"])), "public.t");
        assert_eq!(qualify(None, "t", &path(&["app", "public"])), "app.t");
        assert_eq!(qualify(None, "t", &path(&[])), "public.t");
        assert_eq!(
            qualify(None, "pg_class", &path(&["app"])),
            "pg_catalog.pg_class"
        );
        assert_eq!(qualify(Some("s"), "t", &path(&["app"])), "s.t");
    }
}
