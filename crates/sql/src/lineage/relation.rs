//! Relations through the catalog: resolving a name against the search path, a table's
//! columns, a view's columns (its definition walked, once per statement, to a bounded
//! depth), relation names given as text (`table_to_xml('users', …)`), and write targets.
//!
//! Unqualified names resolve as PostgreSQL resolves them (namespace.c): the temporary schema
//! first and `pg_catalog` next unless the path lists them itself, then the path in order,
//! `$user` skipped (the user is not known here). The first schema where the catalog knows
//! the name wins. A proxy that tracks temporary tables can expose them as schema `pg_temp`.
//!
//! What the name resolved to decides how it is read: a system relation (`system`) is a leaf
//! whose definition is never walked; a user view is expanded; a table's columns are sources.

use super::flow::{rename, Col, Flow, Rel};
use super::system::{self, System};
use super::walker::Walker;
use super::{unsupported, ColumnRef, LineageError, Result};
use pg_query::protobuf::RangeVar;

/// A write target's columns: where a value written to each lands, and what reading it back
/// (RETURNING, `excluded`, UPDATE expressions) yields.
pub(crate) struct Target {
    pub refname: String,
    pub relation: Option<(String, String)>,
    pub cols: Vec<TargetCol>,
}

pub(crate) struct TargetCol {
    pub name: String,
    /// None for a view column that is not one plain column of a table.
    pub lands: Option<ColumnRef>,
    pub read: Flow,
}

impl Target {
    /// Index of a named column.
    pub fn index(&self, name: &str) -> Result<usize> {
        match self.cols.iter().position(|c| c.name == name) {
            Some(i) => Ok(i),
            None => unsupported(format!("column {name} of {} not found", self.refname)),
        }
    }
}

/// A relation the catalog knows, with what it said about it (fetched once: catalog lookups
/// return owned data).
pub(crate) struct Found {
    pub schema: String,
    pub name: String,
    columns: Option<Vec<String>>,
    definition: Option<String>,
    system: System,
}

impl Found {
    pub fn is_view(&self) -> bool {
        self.definition.is_some()
    }
}

impl Walker<'_> {
    fn lookup(&self, schema: &str, name: &str) -> Option<Found> {
        let system = system::classify(schema, name);
        let columns = self.catalog.columns(schema, name);
        // A system view is never expanded: its (long) definition is fetched only when the
        // columns are missing, to stop resolution where the server would stop.
        let definition = match (system, &columns) {
            (System::No, _) | (_, None) => self.catalog.view_definition(schema, name),
            _ => None,
        };
        if columns.is_none() && definition.is_none() {
            return None;
        }
        Some(Found {
            schema: schema.to_owned(),
            name: name.to_owned(),
            columns,
            definition,
            system,
        })
    }

    /// Find a relation reference in the catalog.
    pub(crate) fn resolve_relation(&self, schema: &str, name: &str) -> Result<Found> {
        if !schema.is_empty() {
            return self
                .lookup(schema, name)
                .ok_or_else(|| LineageError::UnknownRelation(format!("{schema}.{name}")));
        }
        let path = self.search_path;
        let listed = |s: &str| path.iter().any(|p| p == s);
        let implicit = ["pg_temp", "pg_catalog"].into_iter().filter(|s| !listed(s));
        let explicit = path
            .iter()
            .map(String::as_str)
            .filter(|s| !s.is_empty() && *s != "$user");
        implicit
            .chain(explicit)
            .find_map(|s| self.lookup(s, name))
            .ok_or_else(|| LineageError::UnknownRelation(name.to_owned()))
    }

    /// The columns of a table (direct flows), view (its definition's flows) or system
    /// relation (see `system`).
    pub(crate) fn relation_cols(&mut self, found: Found) -> Result<Rel> {
        let Found {
            schema,
            name,
            columns,
            definition,
            system,
        } = found;
        if system != System::No {
            return self.system_cols(&schema, &name, columns, system);
        }
        if let Some(sql) = definition {
            return self.view_cols(&schema, &name, columns, &sql);
        }
        Ok(table_cols(&schema, &name, columns.unwrap_or_default()))
    }

    /// A system relation: a leaf named by the catalog's column list, without sources.
    /// Without that list its shape is unknown (its definition is not walked).
    fn system_cols(
        &self,
        schema: &str,
        name: &str,
        columns: Option<Vec<String>>,
        system: System,
    ) -> Result<Rel> {
        if system == System::Samples {
            return Err(LineageError::SystemSamples(format!("{schema}.{name}")));
        }
        let Some(columns) = columns else {
            return Err(LineageError::UnknownRelation(format!("{schema}.{name}")));
        };
        Ok(columns
            .into_iter()
            .map(|c| Col::new(c, Flow::constant()))
            .collect())
    }

    /// A view: walk its definition (no outer scope, no CTEs of the caller, its own filters
    /// not reported as the user's predicates), named by the catalog's column list.
    fn view_cols(
        &mut self,
        schema: &str,
        name: &str,
        names: Option<Vec<String>>,
        sql: &str,
    ) -> Result<Rel> {
        let key = (schema.to_owned(), name.to_owned());
        if let Some(rel) = self.views.get(&key) {
            return Ok(rel.clone());
        }
        self.hide_predicates += 1;
        let rel = self.select_text(sql, &format!("definition of view {schema}.{name}"));
        self.hide_predicates -= 1;
        let mut rel = rel?;
        if let Some(names) = names {
            if names.len() != rel.len() {
                return unsupported(format!(
                    "view {schema}.{name}: catalog and definition disagree"
                ));
            }
            rel = rename(rel, &names).unwrap_or_default();
        }
        self.views.insert(key, rel.clone());
        Ok(rel)
    }

    /// A relation named by a string (`regclass` input syntax), resolved like a reference.
    pub(crate) fn relation_by_text(&mut self, text: &str) -> Result<Rel> {
        let parts = split_qualified(text)
            .ok_or_else(|| LineageError::Unsupported(format!("relation name {text:?}")))?;
        let (schema, name) = match parts.as_slice() {
            [n] => (String::new(), n.clone()),
            [s, n] | [_, s, n] => (s.clone(), n.clone()),
            _ => return unsupported(format!("relation name {text:?}")),
        };
        let found = self.resolve_relation(&schema, &name)?;
        self.relation_cols(found)
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE. A CTE cannot be a target, so the name goes
    /// to the catalog directly. Writes into a view land in the table column it passes
    /// through; a view column that is not such a column accepts no values here.
    pub(crate) fn target(&mut self, rv: Option<&RangeVar>) -> Result<Target> {
        let Some(rv) = rv else {
            return unsupported("write without a target");
        };
        let found = self.resolve_relation(&rv.schemaname, &rv.relname)?;
        let (schema, table, is_view) = (found.schema.clone(), found.name.clone(), found.is_view());
        let cols = self
            .relation_cols(found)?
            .into_iter()
            .map(|c| {
                let lands = if !is_view {
                    Some(ColumnRef::new(&schema, &table, &c.name))
                } else if c.flow.direct && c.flow.sources.len() == 1 {
                    c.flow.sources.first().cloned()
                } else {
                    None
                };
                TargetCol {
                    name: c.name,
                    lands,
                    read: c.flow,
                }
            })
            .collect();
        let refname = rv
            .alias
            .as_ref()
            .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone());
        let relation = rv.alias.is_none().then_some((schema, table));
        Ok(Target {
            refname,
            relation,
            cols,
        })
    }
}

/// A table's columns: each is its own source, unchanged.
fn table_cols(schema: &str, name: &str, columns: Vec<String>) -> Rel {
    columns
        .into_iter()
        .map(|c| {
            let flow = Flow::column(ColumnRef::new(schema, name, &c));
            Col::new(c, flow)
        })
        .collect()
}

/// Split `a.b` / `"A"."b.c"` as identifiers: unquoted parts folded to lower case, quoted
/// parts kept with `""` unescaped. None for malformed text.
pub(crate) fn split_qualified(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    return None;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
        }
        if part.is_empty() {
            return None;
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}
