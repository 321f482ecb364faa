//! Writes to system relations: the rows of `pg_catalog` (pg_class, pg_authid, pg_proc, …),
//! `information_schema`'s base tables and TOAST tables.
//!
//! Changing catalog rows directly bypasses every check the server's DDL makes (ownership,
//! dependencies, privileges), which is why only superusers can, and Gatehouse often connects
//! as one. Reading catalogs, and `SELECT … FOR UPDATE` on them, is not a write. One catalog
//! view is writable by anyone: an UPDATE of `pg_settings` is a `set_config` of the rows it
//! picks, so it also counts as a change of any setting.
//!
//! Resolution follows the server where the text decides it: a schema written in the statement
//! is the schema (quoted `"PG_CATALOG"` is another schema; `U&"pg_catalog"` is the catalog).
//! An unqualified name is where the facts cannot tell: `pg_catalog` is searched first unless
//! the search path lists it later, and no catalog is known here. So, conservatively, every
//! unqualified `pg_*` relation is taken as the catalog's (all of `pg_catalog`'s relations
//! are named `pg_*`), and `information_schema`'s tables whenever that schema is on the path.

use super::Walker;
use pg_query::protobuf::RangeVar;

/// The base tables of `information_schema` (PostgreSQL 12-17; the rest are views).
const INFORMATION_SCHEMA_TABLES: &[&str] = &[
    "sql_features",
    "sql_implementation_info",
    "sql_languages",
    "sql_packages",
    "sql_parts",
    "sql_sizing",
    "sql_sizing_profiles",
];

impl Walker<'_> {
    /// Record a write target (`qualified` as facts name it) if it is a system relation.
    pub(super) fn note_catalog_write(&mut self, rv: &RangeVar, qualified: &str) {
        if !system_relation(rv, self.search_path()) {
            return;
        }
        self.facts.catalog_writes.insert(qualified.to_owned());
        if rv.relname == "pg_settings" {
            // pg_settings' UPDATE rule calls set_config(name, setting, false) for each row:
            // a SET of whichever settings the WHERE clause picks.
            self.any_setting();
        }
    }
}

/// Schemas the server reserves: `pg_catalog`, `information_schema`, `pg_toast` (and every
/// other `pg_*` schema but the session's temporary ones, `pg_temp*`).
fn system_schema(schema: &str) -> bool {
    schema == "information_schema" || (schema.starts_with("pg_") && !schema.starts_with("pg_temp"))
}

fn system_relation(rv: &RangeVar, search_path: &[String]) -> bool {
    if !rv.schemaname.is_empty() {
        return system_schema(&rv.schemaname);
    }
    rv.relname.starts_with("pg_")
        || (INFORMATION_SCHEMA_TABLES.contains(&rv.relname.as_str())
            && search_path.iter().any(|s| s == "information_schema"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv(schema: &str, name: &str) -> RangeVar {
        RangeVar {
            schemaname: schema.into(),
            relname: name.into(),
            ..RangeVar::default()
        }
    }

    #[test]
    fn system_relations() {
        let path = vec!["$user".to_owned(), "public".to_owned()];
        assert!(system_relation(&rv("pg_catalog", "pg_class"), &path));
        assert!(system_relation(&rv("", "pg_authid"), &path));
        assert!(system_relation(&rv("pg_toast", "pg_toast_2619"), &path));
        assert!(system_relation(
            &rv("information_schema", "sql_features"),
            &path
        ));
        assert!(!system_relation(&rv("PG_CATALOG", "pg_class"), &path));
        assert!(!system_relation(&rv("pg_temp", "scratch"), &path));
        assert!(!system_relation(&rv("pg_temp_3", "pg_x"), &path));
        assert!(!system_relation(&rv("", "sql_features"), &path));
        assert!(!system_relation(&rv("public", "pg_notes"), &path));
        assert!(!system_relation(&rv("", "users"), &path));
        let with_is = vec!["public".to_owned(), "information_schema".to_owned()];
        assert!(system_relation(&rv("", "sql_features"), &with_is));
        assert!(!system_relation(&rv("", "tables_i_own"), &with_is));
    }
}
