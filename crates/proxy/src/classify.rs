//! Sampling an upstream schema for `gatehouse classify`: the text-like columns of ordinary
//! tables and a few values of each. Deciding what looks sensitive is the caller's job.

use crate::catalog;
use crate::config::TargetConfig;
use crate::error::SessionError;
use crate::upstream;

/// One column and a sample of its non-NULL values (as text).
#[derive(Debug, Clone)]
pub struct ColumnSample {
    pub schema: String,
    pub table: String,
    pub column: String,
    pub type_name: String,
    pub values: Vec<String>,
}

const COLUMNS_SQL: &str =
    "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod) \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','m') \
       AND n.nspname NOT IN ('pg_catalog','information_schema','pg_toast') \
       AND n.nspname NOT LIKE 'pg_temp%' \
     ORDER BY 1, 2, a.attnum";

/// Samples up to `per_column` values of every column of every user table of `target`.
pub async fn sample(
    target: &TargetConfig,
    per_column: usize,
) -> Result<Vec<ColumnSample>, SessionError> {
    let params = vec![
        (
            "application_name".to_owned(),
            "gatehouse:classify".to_owned(),
        ),
        ("user".to_owned(), target.user.clone()),
        ("database".to_owned(), target.database.clone()),
    ];
    let mut up = upstream::connect(target, &params).await?;
    let mut out = Vec::new();
    for row in catalog::query(&mut up, COLUMNS_SQL).await? {
        let [Some(schema), Some(table), Some(column), Some(type_name)] = row.as_slice() else {
            continue;
        };
        let sql = format!(
            "SELECT {c}::text FROM {s}.{t} WHERE {c} IS NOT NULL LIMIT {per_column}",
            c = ident(column),
            s = ident(schema),
            t = ident(table)
        );
        let values = catalog::query(&mut up, &sql)
            .await?
            .into_iter()
            .filter_map(|r| r.into_iter().next().flatten())
            .collect();
        out.push(ColumnSample {
            schema: schema.clone(),
            table: table.clone(),
            column: column.clone(),
            type_name: type_name.clone(),
            values,
        });
    }
    Ok(out)
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
