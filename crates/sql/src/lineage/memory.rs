//! An in-memory [`Catalog`]: a snapshot of relations and view definitions. The proxy can
//! fill one from the upstream's `information_schema` / `pg_get_viewdef` and share it per
//! target; tests build small ones by hand.

use super::Catalog;
use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone, Default)]
struct Relation {
    columns: Vec<String>,
    definition: Option<String>,
}

/// Relations by schema, then name (nested so lookups by `&str` need no allocation).
#[derive(Debug, Clone, Default)]
pub struct MemoryCatalog {
    relations: HashMap<String, HashMap<String, Relation>>,
    pure_functions: HashSet<String>,
}

impl MemoryCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a table with its columns in order.
    pub fn table(mut self, schema: &str, name: &str, columns: &[&str]) -> Self {
        self.insert(schema, name, columns, None);
        self
    }

    /// Add (or replace) a view (or materialized view) with its columns and definition.
    pub fn view(mut self, schema: &str, name: &str, columns: &[&str], definition: &str) -> Self {
        self.insert(schema, name, columns, Some(definition.to_owned()));
        self
    }

    /// Vouch for a function (see [`Catalog::is_pure_function`]).
    pub fn pure_function(mut self, name: &str) -> Self {
        self.pure_functions.insert(name.to_owned());
        self
    }

    pub fn insert(
        &mut self,
        schema: &str,
        name: &str,
        columns: &[&str],
        definition: Option<String>,
    ) {
        let rel = Relation {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            definition,
        };
        self.relations
            .entry(schema.to_owned())
            .or_default()
            .insert(name.to_owned(), rel);
    }

    /// Number of relations.
    pub fn len(&self) -> usize {
        self.relations.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, schema: &str, name: &str) -> Option<&Relation> {
        self.relations.get(schema)?.get(name)
    }
}

impl Catalog for MemoryCatalog {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.get(schema, table).map(|r| r.columns.clone())
    }

    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        self.get(schema, table).and_then(|r| r.definition.clone())
    }

    fn is_pure_function(&self, name: &str) -> bool {
        self.pure_functions.contains(name)
    }
}
