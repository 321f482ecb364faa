//! A complete, structure-blind pass over one statement's parse tree.
//!
//! The typed walker (`walk`) understands the shapes it knows; this sweep guarantees nothing
//! is missed where it does not. It serialises the tree with the `serde::Serialize` impls that
//! pg_query generates for every node type and visits every value, so a relation reference or
//! a function call anywhere (inside an expression type the walker has never heard of, a
//! column default, a rule action) is still found. It also counts statement nodes, which the
//! walker compares with the ones it handled to detect statements in positions it did not
//! understand.
//!
//! Shapes are recognised by field names, which pg_query generates from PostgreSQL's own
//! struct definitions: a `RangeVar` has `relname` and `relpersistence`, a `FuncCall` has
//! `funcname` and `agg_star`; a statement node is a oneof variant whose name ends in `Stmt`.

use pg_query::protobuf::Node;
use serde_json::{Map, Value};

/// One relation reference, as written.
#[derive(Debug, Clone)]
pub(crate) struct RelSite {
    pub schema: String,
    pub name: String,
    pub location: i64,
}

/// One function call, with its first arguments when they are string constants.
#[derive(Debug, Clone)]
pub(crate) struct CallSite {
    pub name: Vec<String>,
    pub const_args: Vec<Option<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct Sweep {
    pub relations: Vec<RelSite>,
    pub calls: Vec<CallSite>,
    /// Statement nodes (oneof variants named `…Stmt`), the top-level one included.
    pub stmt_nodes: usize,
}

/// Sweep one statement node. `Err` only if the tree cannot be serialised, which the caller
/// treats as "not understood".
pub(crate) fn sweep(stmt: &Node) -> Result<Sweep, String> {
    let value = serde_json::to_value(stmt).map_err(|e| e.to_string())?;
    let mut out = Sweep::default();
    out.visit(&value);
    Ok(out)
}

impl Sweep {
    fn visit(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                if map.contains_key("relname") && map.contains_key("relpersistence") {
                    self.relation(map);
                }
                if map.contains_key("funcname") && map.contains_key("agg_star") {
                    self.call(map);
                }
                for (key, child) in map {
                    if is_stmt_variant(key) {
                        self.stmt_nodes += 1;
                    }
                    self.visit(child);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.visit(i)),
            _ => {}
        }
    }

    fn relation(&mut self, map: &Map<String, Value>) {
        let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        self.relations.push(RelSite {
            schema: text("schemaname"),
            name: text("relname"),
            location: map.get("location").and_then(Value::as_i64).unwrap_or(-1),
        });
    }

    fn call(&mut self, map: &Map<String, Value>) {
        let name = map
            .get("funcname")
            .and_then(Value::as_array)
            .map(|parts| parts.iter().filter_map(string_node).collect())
            .unwrap_or_default();
        let args = map.get("args").and_then(Value::as_array);
        let const_args = args
            .map(|a| a.iter().take(2).map(const_string).collect())
            .unwrap_or_default();
        self.calls.push(CallSite { name, const_args });
    }
}

/// Oneof variant names are CamelCase; field names are snake_case, so no field can match.
fn is_stmt_variant(key: &str) -> bool {
    key.ends_with("Stmt") && key.starts_with(|c: char| c.is_ascii_uppercase())
}

/// `{"node":{"String":{"sval":…}}}` → the string.
fn string_node(v: &Value) -> Option<String> {
    v.get("node")?
        .get("String")?
        .get("sval")?
        .as_str()
        .map(str::to_owned)
}

/// A string constant, possibly cast (`'x'::text`): `{"node":{"AConst":{"val":{"Sval":…}}}}`.
fn const_string(v: &Value) -> Option<String> {
    let node = v.get("node")?;
    if let Some(cast) = node.get("TypeCast") {
        return const_string(cast.get("arg")?);
    }
    node.get("AConst")?
        .get("val")?
        .get("Sval")?
        .get("sval")?
        .as_str()
        .map(str::to_owned)
}
