//! Function calls. A call derives from its arguments; its FILTER, aggregate ORDER BY and
//! window PARTITION/ORDER select rows and are predicates — except `WITHIN GROUP (ORDER BY x)`,
//! where `x` *is* the aggregated value (`mode() WITHIN GROUP (ORDER BY email)` returns one).
//!
//! A few built-ins run SQL or read a relation named by a string argument: `query_to_xml`
//! and `table_to_xml` (and their `_and_xmlschema` forms) trace the named query or table when
//! the argument is a constant, and are unsupported otherwise; `cursor_to_xml`,
//! `schema_to_xml` and `database_to_xml` are unsupported (their rows are not visible here).
//! A call to anything that is not a known built-in is listed in `unknown_functions`.

use super::flow::{all_sources, Flow};
use super::walker::{Levels, Walker};
use super::{builtins, unsupported, Result};
use pg_query::protobuf::{FuncCall, Node, WindowDef};
use pg_query::NodeEnum as N;

/// The dotted name of a call's function, as written.
pub(crate) fn func_parts(f: &FuncCall) -> Vec<String> {
    f.funcname
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// A string constant, possibly cast (`'users'::regclass`).
pub(crate) fn const_string(node: &Node) -> Option<&str> {
    match node.node.as_ref()? {
        N::TypeCast(t) => const_string(t.arg.as_deref()?),
        N::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(&s.sval),
            _ => None,
        },
        _ => None,
    }
}

/// What a built-in that reads by name does with its first argument.
enum Reads {
    Query,
    Table,
    /// Only describes a shape (an XML schema): no values.
    Shape,
    Opaque,
}

fn xml_reader(parts: &[String]) -> Option<Reads> {
    let name = match parts {
        [n] => n.as_str(),
        [s, n] if s == "pg_catalog" => n.as_str(),
        _ => return None,
    };
    Some(match name {
        "query_to_xml" | "query_to_xml_and_xmlschema" => Reads::Query,
        "table_to_xml" | "table_to_xml_and_xmlschema" => Reads::Table,
        "query_to_xmlschema"
        | "table_to_xmlschema"
        | "cursor_to_xmlschema"
        | "schema_to_xmlschema"
        | "database_to_xmlschema" => Reads::Shape,
        "cursor_to_xml"
        | "schema_to_xml"
        | "schema_to_xml_and_xmlschema"
        | "database_to_xml"
        | "database_to_xml_and_xmlschema" => Reads::Opaque,
        _ => return None,
    })
}

impl Walker<'_> {
    pub(crate) fn call(&mut self, f: &FuncCall, lv: &Levels<'_>) -> Result<Flow> {
        let parts = func_parts(f);
        let mut flow = Flow::constant();
        if let Some(reads) = xml_reader(&parts) {
            flow.absorb(self.reads_by_name(reads, &parts, f)?);
        } else if !builtins::is_builtin(&parts) {
            let name = crate::names::function_name(&parts);
            if !self.catalog.is_pure_function(&name) {
                self.unknown.insert(name);
            }
        }
        for a in &f.args {
            flow.absorb(self.expr(a, lv)?);
        }
        for o in &f.agg_order {
            if f.agg_within_group {
                flow.absorb(self.expr(o, lv)?);
            } else {
                self.predicate(o, lv)?;
            }
        }
        self.opt_predicate(f.agg_filter.as_deref(), lv)?;
        if let Some(w) = &f.over {
            self.window(w, lv)?;
        }
        Ok(flow.derived())
    }

    /// A window definition: its partitioning, ordering and frame offsets are predicates.
    pub(crate) fn window(&mut self, w: &WindowDef, lv: &Levels<'_>) -> Result<()> {
        for n in w.partition_clause.iter().chain(&w.order_clause) {
            self.predicate(n, lv)?;
        }
        self.opt_predicate(w.start_offset.as_deref(), lv)?;
        self.opt_predicate(w.end_offset.as_deref(), lv)
    }

    /// `query_to_xml('select …', …)` / `table_to_xml('users', …)`: every value of every row
    /// of the named query or table ends up in one XML value.
    fn reads_by_name(&mut self, reads: Reads, parts: &[String], f: &FuncCall) -> Result<Flow> {
        let name = crate::names::function_name(parts);
        let arg = f
            .args
            .first()
            .filter(|a| !matches!(a.node, Some(N::NamedArgExpr(_))));
        let text = arg.and_then(const_string);
        self.literal_dependent = true;
        let mut flow = match (reads, text) {
            (Reads::Shape, _) => return Ok(Flow::constant()),
            (Reads::Opaque, _) => return unsupported(format!("{name}: rows not visible")),
            (_, None) => return unsupported(format!("{name} with a non-constant argument")),
            (Reads::Query, Some(sql)) => all_sources(&self.select_text(sql, "query string")?),
            (Reads::Table, Some(rel)) => all_sources(&self.relation_by_text(rel)?),
        };
        flow.whole_row = true;
        Ok(flow)
    }
}
