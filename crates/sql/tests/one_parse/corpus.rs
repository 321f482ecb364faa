//! The corpus: every string literal of the existing golden tables (facts and lineage), and
//! every query of the introspection fixtures. Harvested from the test sources themselves,
//! so a case added there is checked here too.

const SOURCES: &[&str] = &[
    include_str!("../lineage_fuzz.rs"),
    include_str!("../lineage_introspection.rs"),
    include_str!("../lineage_joins.rs"),
    include_str!("../lineage_predicates.rs"),
    include_str!("../lineage_queries.rs"),
    include_str!("../lineage_sources.rs"),
    include_str!("../lineage_writes.rs"),
    include_str!("../golden/benign.rs"),
    include_str!("../golden/bypass.rs"),
    include_str!("../golden/session.rs"),
    include_str!("../golden/shapes.rs"),
];

const FIXTURES: &[&str] = &[
    include_str!("../introspection/psql15.sql"),
    include_str!("../introspection/sqlalchemy2.sql"),
    include_str!("../introspection/system_views.sql"),
    include_str!("../introspection/pg_stat_statements_view.sql"),
];

/// Every distinct SQL text of the corpus, in first-seen order.
pub fn corpus() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let literals = SOURCES.iter().flat_map(|src| literals(src));
    let queries = FIXTURES.iter().flat_map(|f| {
        f.split("-- @query")
            .skip(1)
            .map(|q| q.split_once('\n').map_or("", |(_, body)| body).to_owned())
    });
    for s in literals.chain(queries) {
        if s.trim().len() >= 3 && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The values of the Rust string literals in `src` (plain and raw; char literals skipped).
/// Good enough for test sources: a literal-looking text in a comment is harvested too,
/// which only adds an input.
fn literals(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' if b.get(i + 1) == Some(&b'"') && b.get(i + 2) == Some(&b'\'') => i += 3,
            b'r' if matches!(b.get(i + 1), Some(b'"' | b'#')) && !ident_before(b, i) => {
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                let start = i + 1 + hashes + 1;
                let close = format!("\"{}", "#".repeat(hashes));
                match src.get(start..).and_then(|rest| rest.find(&close)) {
                    Some(len) => {
                        out.push(src[start..start + len].to_owned());
                        i = start + len + close.len();
                    }
                    None => break,
                }
            }
            b'"' => {
                let (value, end) = plain(src, i + 1);
                out.push(value);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// A plain literal's value from just after its opening quote; and where it ends.
fn plain(src: &str, start: usize) -> (String, usize) {
    let mut value = String::new();
    let mut chars = src[start..].char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (value, start + at + 1),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some('0') => value.push('\0'),
                Some('\n') => {
                    while chars.peek().is_some_and(|(_, w)| w.is_whitespace()) {
                        chars.next();
                    }
                }
                Some('u') => {
                    let hex: String = chars
                        .by_ref()
                        .map(|(_, h)| h)
                        .take_while(|h| *h != '}')
                        .filter(|h| *h != '{')
                        .collect();
                    if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        value.push(ch);
                    }
                }
                Some(other) => value.push(other),
                None => break,
            },
            _ => value.push(c),
        }
    }
    (value, src.len())
}
