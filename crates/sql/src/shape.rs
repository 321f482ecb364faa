//! One pass of PostgreSQL's own lexer (`pg_query::scan`, iterative) before anything builds a
//! tree, for two things:
//!
//! 1. **A nesting bound.** pg_query's tree output and normaliser recurse once per tree level
//!    in C, without a depth check; `SELECT 1+1+…+1` or `NOT NOT … NOT` a few thousand deep
//!    overflows a 2 MiB thread stack and aborts the process. [`Scanned::depth`] is an upper
//!    estimate of the tree depth computed from tokens: brackets and `CASE … END` nest; within
//!    one bracket level, a run of tokens between list separators (`,`, `AND`, `OR`,
//!    `WHEN`/`THEN`/`ELSE`, clause keywords) can chain (left-deep operators, prefix `NOT`,
//!    casts), and so do `UNION`/`INTERSECT`/`EXCEPT`/`JOIN` chains. `AND`/`OR` may reset the
//!    run because the grammar flattens them into one node — except the `AND` of `BETWEEN`.
//!    Statements over [`MAX_NESTING_UNITS`] are opaque without being parsed. Nothing of that
//!    depth could be analysed anyway: pg_query's protobuf decoding stops at 100 levels.
//! 2. **The literal-free cache key** ([`Scanned::key`]): the token sequence with comments
//!    dropped and every constant replaced by its token kind. Unlike pg_query's fingerprint it
//!    keeps alias and statement names, which change facts.

use pg_query::protobuf::Token as T;

/// Statements whose estimated depth exceeds this are not parsed (opaque).
pub(crate) const MAX_NESTING_UNITS: usize = 200;

pub(crate) struct Scanned {
    pub depth: usize,
    /// Empty unless asked for.
    pub key: String,
}

/// Per bracket level: tokens since the last separator, and set-operation/join chain length.
#[derive(Default, Clone, Copy)]
struct Level {
    run: usize,
    chain: usize,
    between: usize,
}

/// Scan `sql`; `None` if the lexer rejects it (the parser then will too).
pub(crate) fn scan(sql: &str, with_key: bool) -> Option<Scanned> {
    let scanned = std::panic::catch_unwind(|| pg_query::scan(sql))
        .ok()?
        .ok()?;
    let mut levels = vec![Level::default()];
    let mut depth = 0;
    let mut key = String::new();
    // The two tokens before this one (comments skipped), for constants the grammar reads as
    // more than a value.
    let mut before = (T::Nul, T::Nul);
    for t in &scanned.tokens {
        let kind = T::try_from(t.token).unwrap_or(T::Nul);
        if matches!(kind, T::SqlComment | T::CComment) {
            continue;
        }
        if with_key {
            push_key(&mut key, sql, t, kind, before);
        }
        before = (before.1, kind);
        step(&mut levels, kind);
        let here: usize = levels.iter().map(|l| 1 + l.run + l.chain).sum();
        depth = depth.max(here);
    }
    Some(Scanned { depth, key })
}

fn step(levels: &mut Vec<Level>, kind: T) {
    match kind {
        T::Ascii40 | T::Ascii91 | T::Case => levels.push(Level::default()),
        T::Ascii41 | T::Ascii93 | T::EndP => {
            if levels.len() > 1 {
                levels.pop();
            }
        }
        T::Ascii59 => {
            levels.truncate(1);
            if let Some(l) = levels.first_mut() {
                *l = Level::default();
            }
        }
        _ => {
            let Some(l) = levels.last_mut() else { return };
            match kind {
                T::And if l.between > 0 => {
                    l.between -= 1;
                    l.run += 1;
                }
                T::Ascii44 | T::And | T::Or | T::When | T::Then | T::Else => l.run = 0,
                T::Union | T::Intersect | T::Except | T::Join => {
                    l.chain += 1;
                    l.run = 0;
                }
                T::Select
                | T::From
                | T::Where
                | T::GroupP
                | T::Having
                | T::Order
                | T::Limit
                | T::Offset
                | T::Returning
                | T::Set
                | T::Values
                | T::On
                | T::Using => {
                    l.chain += 1;
                    l.run = 0;
                }
                T::Between => {
                    l.between += 1;
                    l.run += 1;
                }
                _ => l.run += 1,
            }
        }
    }
}

/// Constants become their kind; everything else keeps its text. NUL separates tokens (it
/// cannot occur in SQL text), so the key is unambiguous. Two constants are not values and keep
/// their text: the escape character after `UESCAPE` (it decides what a `U&"…"` name spells)
/// and the precision in `float(p)` (it decides between `real` and `double precision`).
fn push_key(
    key: &mut String,
    sql: &str,
    t: &pg_query::protobuf::ScanToken,
    kind: T,
    before: (T, T),
) {
    let structural = match kind {
        T::Sconst | T::Usconst => before.1 == T::Uescape,
        T::Iconst => before == (T::FloatP, T::Ascii40),
        _ => true,
    };
    let constant = matches!(
        kind,
        T::Sconst | T::Usconst | T::Bconst | T::Xconst | T::Iconst | T::Fconst
    );
    if constant && !structural {
        key.push_str(kind.as_str_name());
    } else {
        let (s, e) = (usize::try_from(t.start), usize::try_from(t.end));
        match (s, e) {
            (Ok(s), Ok(e)) => key.push_str(sql.get(s..e).unwrap_or("\u{fffd}")),
            _ => key.push('\u{fffd}'),
        }
    }
    key.push('\0');
}

/// The same bound for a PL/pgSQL body: blocks (`BEGIN`, `IF`, `LOOP`, `CASE` … `END`) nest
/// like brackets. `None` if the body does not even scan.
pub(crate) fn plpgsql_depth(body: &str) -> Option<usize> {
    let scanned = std::panic::catch_unwind(|| pg_query::scan(body))
        .ok()?
        .ok()?;
    let (mut level, mut depth, mut after_end) = (0usize, 0usize, false);
    for t in &scanned.tokens {
        let kind = T::try_from(t.token).unwrap_or(T::Nul);
        // LOOP is not a core SQL keyword: the lexer calls it an identifier.
        let is_loop = kind == T::Ident
            && usize::try_from(t.start)
                .ok()
                .zip(usize::try_from(t.end).ok())
                .and_then(|(s, e)| body.get(s..e))
                .is_some_and(|w| w.eq_ignore_ascii_case("loop"));
        let opener = is_loop || matches!(kind, T::BeginP | T::IfP | T::Case);
        // `END IF` / `END LOOP` / `END CASE` close one block, not open another.
        let closes_kind = after_end && opener && kind != T::BeginP;
        after_end = false;
        match kind {
            _ if closes_kind => {}
            _ if opener => level += 1,
            T::Ascii40 | T::Ascii91 => level += 1,
            T::EndP => {
                level = level.saturating_sub(1);
                after_end = true;
            }
            T::Ascii41 | T::Ascii93 => level = level.saturating_sub(1),
            _ => {}
        }
        depth = depth.max(level);
    }
    Some(depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(sql: &str) -> usize {
        scan(sql, false).map_or(usize::MAX, |s| s.depth)
    }

    #[test]
    fn deep_chains_are_deep_and_wide_lists_are_not() {
        assert!(depth(&format!("SELECT 1{}", "+1".repeat(500))) > MAX_NESTING_UNITS);
        assert!(depth(&format!("SELECT {}true", "NOT ".repeat(500))) > MAX_NESTING_UNITS);
        let between = format!("SELECT 1{}", " BETWEEN 1 AND 1".repeat(300));
        assert!(depth(&between) > MAX_NESTING_UNITS);
        let union = "SELECT 1, 2 UNION ".repeat(300) + "SELECT 1, 2";
        assert!(depth(&union) > MAX_NESTING_UNITS);
        let list: Vec<String> = (0..5000).map(|i| i.to_string()).collect();
        assert!(depth(&format!("SELECT * FROM t WHERE id IN ({})", list.join(","))) < 20);
        let ors = vec!["id = 1"; 2000].join(" OR ");
        assert!(depth(&format!("DELETE FROM t WHERE {ors}")) < 20);
        let case = "WHEN a = 1 THEN 'x' ".repeat(1000);
        assert!(depth(&format!("SELECT CASE {case} END FROM t")) < 20);
        let joins = " JOIN t ON t.a = t.b".repeat(40);
        assert!(depth(&format!("SELECT * FROM t{joins}")) < MAX_NESTING_UNITS);
    }

    #[test]
    fn keys_drop_literals_and_comments_only() {
        let key = |s: &str| scan(s, true).map(|s| s.key).unwrap_or_default();
        assert_eq!(
            key("SELECT a FROM t WHERE id = 1"),
            key("SELECT a FROM t WHERE id = 2 -- x")
        );
        assert_ne!(
            key("SELECT a FROM t WHERE id = 1"),
            key("SELECT a FROM t WHERE id = '1'")
        );
        assert_ne!(
            key("SELECT x.a FROM t x, u y"),
            key("SELECT x.a FROM t y, u x")
        );
    }

    #[test]
    fn plpgsql_blocks_nest() {
        let body = format!(
            "BEGIN {} NULL; {} END",
            "IF true THEN ".repeat(300),
            "END IF; ".repeat(300)
        );
        assert!(plpgsql_depth(&body).unwrap_or(0) > MAX_NESTING_UNITS);
        let flat = "BEGIN IF a THEN NULL; END IF; LOOP EXIT; END LOOP; END".to_owned();
        assert!(plpgsql_depth(&flat).unwrap_or(99) <= 2);
    }
}
