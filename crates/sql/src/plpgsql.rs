//! PL/pgSQL bodies (DO blocks and functions): find every SQL statement and expression the
//! code runs, analyse each one, and refuse to understand `EXECUTE` of a computed string.
//!
//! pg_query's PL/pgSQL parser (the server's own `plpgsql_compile`, run without a catalog)
//! returns the function as JSON. Every embedded query is a `PLpgSQL_expr {query, parseMode}`;
//! the parse mode says whether it is a whole statement, an expression or an assignment.
//! Dynamic SQL shows up as `PLpgSQL_stmt_dynexecute`, `PLpgSQL_stmt_dynfors` or a `dynquery`
//! (OPEN … FOR EXECUTE, RETURN QUERY EXECUTE).

use crate::Ctx;
use model::facts::StatementFacts;
use serde_json::Value;
use std::collections::BTreeSet;

/// PostgreSQL's `RawParseMode`: how an embedded query is to be parsed.
const RAW_PARSE_DEFAULT: i64 = 0;
const RAW_PARSE_PLPGSQL_EXPR: i64 = 2;
const RAW_PARSE_PLPGSQL_ASSIGN1: i64 = 3;
const RAW_PARSE_PLPGSQL_ASSIGN3: i64 = 5;

/// Analyse a DO block's PL/pgSQL source.
pub(crate) fn analyze_do(body: &str, ctx: &Ctx<'_>) -> Result<Vec<StatementFacts>, String> {
    let tag = (0..64)
        .map(|n| format!("$gh{n}$"))
        .find(|t| !body.contains(t.as_str()))
        .ok_or("DO block body could not be quoted for analysis")?;
    let wrapped =
        format!("CREATE FUNCTION gatehouse_do() RETURNS void AS {tag}{body}{tag} LANGUAGE plpgsql");
    analyze_function(&wrapped, body, ctx, ctx.vars)
}

/// Analyse the PL/pgSQL `body` of a `CREATE FUNCTION … LANGUAGE plpgsql` statement.
pub(crate) fn analyze_function(
    create_stmt: &str,
    body: &str,
    ctx: &Ctx<'_>,
    outer_vars: &BTreeSet<String>,
) -> Result<Vec<StatementFacts>, String> {
    // The PL/pgSQL parser's output recurses per block level, like the SQL one.
    match crate::shape::plpgsql_depth(body) {
        Some(d) if d <= crate::shape::MAX_NESTING_UNITS => {}
        Some(_) => return Err("PL/pgSQL nested too deeply to analyse".into()),
        None => return Err("PL/pgSQL body does not scan".into()),
    }
    let parsed = std::panic::catch_unwind(|| pg_query::parse_plpgsql(create_stmt))
        .map_err(|_| "PL/pgSQL parser failed".to_owned())?
        .map_err(|e| format!("PL/pgSQL body does not parse: {e}"))?;
    let mut found = Found::default();
    found.visit(&parsed);
    let mut vars = outer_vars.clone();
    vars.extend(found.vars);
    let mut out = Vec::new();
    for (query, mode) in &found.queries {
        let sql = embedded_sql(query, *mode)?;
        out.extend(crate::nested(&sql, ctx, &vars));
    }
    if found.dynamic {
        out.push(StatementFacts::opaque(
            create_stmt,
            "PL/pgSQL runs a dynamically built string (EXECUTE)",
        ));
    }
    Ok(out)
}

/// Turn an embedded query into standalone SQL.
fn embedded_sql(query: &str, mode: i64) -> Result<String, String> {
    match mode {
        RAW_PARSE_DEFAULT => Ok(query.to_owned()),
        RAW_PARSE_PLPGSQL_EXPR => Ok(format!("SELECT {query}")),
        RAW_PARSE_PLPGSQL_ASSIGN1..=RAW_PARSE_PLPGSQL_ASSIGN3 => {
            // "target := expr" (or "target = expr"); a target cannot contain ":=", and a
            // wrong split only makes the expression fail to parse, which is opaque.
            let rhs = query
                .split_once(":=")
                .or_else(|| query.split_once('='))
                .map(|(_, rhs)| rhs)
                .ok_or("PL/pgSQL assignment not understood")?;
            Ok(format!("SELECT {rhs}"))
        }
        other => Err(format!("PL/pgSQL expression of parse mode {other}")),
    }
}

#[derive(Default)]
struct Found {
    queries: Vec<(String, i64)>,
    vars: BTreeSet<String>,
    dynamic: bool,
}

impl Found {
    fn visit(&mut self, v: &Value) {
        match v {
            Value::Object(map) => {
                for (key, child) in map {
                    match key.as_str() {
                        "PLpgSQL_stmt_dynexecute" | "PLpgSQL_stmt_dynfors" => self.dynamic = true,
                        "dynquery" if !child.is_null() => self.dynamic = true,
                        "PLpgSQL_expr" => self.expr(child),
                        "refname" => {
                            if let Some(name) = child.as_str().filter(|n| !n.starts_with('(')) {
                                self.vars.insert(name.to_owned());
                            }
                        }
                        _ => {}
                    }
                    self.visit(child);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| self.visit(i)),
            _ => {}
        }
    }

    fn expr(&mut self, e: &Value) {
        if let Some(q) = e.get("query").and_then(Value::as_str) {
            let mode = e.get("parseMode").and_then(Value::as_i64).unwrap_or(0);
            self.queries.push((q.to_owned(), mode));
        }
    }
}
