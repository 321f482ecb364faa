//! A literal-free cache key computed without the lexer, for the common case: plain ASCII text
//! whose only constants are short integers and standard string literals.
//!
//! The key is the text itself with the *contents* of each such constant replaced by a marker;
//! every other byte is kept as it is (whitespace, case, identifiers, operators). Two texts with
//! the same key therefore differ only inside the constants this scanner recognised, and it
//! recognises a constant only where PostgreSQL's lexer reads exactly that span as one:
//!
//! - a string literal is `'…'` (a doubled `''` inside) not preceded by an identifier character,
//!   `&` (`U&'…'`) or `'`, and containing no backslash (so `E'…'`, `B'…'`, `X'…'`, `N'…'` and
//!   `U&'…'` are never taken for one, and standard_conforming_strings, which Gatehouse
//!   requires, makes the contents inert);
//! - an integer is a run of at most 9 digits not preceded by an identifier character, `$` or
//!   `.`, and not followed by one, `.` or an exponent (so `$1`, `t1`, `1.5`, `1e3`, `0x1F` and
//!   numbers that could be `bigint` or `numeric` are never taken for one), and not the
//!   precision of `float(p)` (which picks a type).
//!
//! Anything this scanner cannot read with certainty gives no key, and the caller falls back to
//! the lexer (`shape`): non-ASCII or control bytes outside string literals, comments, dollar quotes, a backslash in a
//! string, an unterminated quote, NUL anywhere, `U&"…"` (a `UESCAPE '…'` after it decides the
//! name it spells). Quoted identifiers are kept as they are. A key is only a
//! lookup for an entry made from a text with the same key; whether an analysis may serve
//! other literals at all is decided where entries are made (see `cache`).

/// Marks the start of a replaced constant: a byte that cannot occur in a keyed text.
const MARK: char = '\u{1}';

/// The key of `sql`, or `None` where the lexer must decide.
pub(crate) fn key(sql: &str) -> Option<String> {
    let b = sql.as_bytes();
    // NUL ends the text for the parser (a string literal holding one does not parse).
    if b.contains(&0) {
        return None;
    }
    let mut key = String::with_capacity(b.len());
    // Start of the bytes not yet copied into the key.
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\t' | b'\n' | b'\r' | b' '..=b'~' => {}
            _ => return None,
        }
        match c {
            b'\'' => {
                let prev = i.checked_sub(1).map(|p| b[p]);
                if prev.is_some_and(|p| is_ident(p) || p == b'&' || p == b'\'') {
                    return None;
                }
                let end = string_end(b, i)?;
                key.push_str(&sql[copied..i]);
                key.push(MARK);
                key.push('S');
                copied = end;
                i = end;
            }
            b'0'..=b'9' => {
                let prev = i.checked_sub(1).map(|p| b[p]);
                let mut end = i;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                if prev.is_some_and(|p| is_ident(p) || p == b'.') {
                    // Part of a name or a parameter number (`t1`, `$1`): kept as it is.
                    i = end;
                    continue;
                }
                let next = b.get(end).copied();
                if end - i > 9
                    || next.is_some_and(|n| is_ident(n) || n == b'.')
                    || after_float_paren(b, i)
                {
                    return None;
                }
                key.push_str(&sql[copied..i]);
                key.push(MARK);
                key.push('I');
                copied = end;
                i = end;
            }
            // `U&"…"` may be followed by `UESCAPE '…'`, whose constant decides the name.
            b'"' if i > 0 && b[i - 1] == b'&' => return None,
            b'"' => {
                // A quoted identifier: `""` inside; nothing in it is a constant.
                let mut j = i + 1;
                loop {
                    match b.get(j) {
                        None => return None,
                        Some(b'"') if b.get(j + 1) == Some(&b'"') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            // Dollar quotes (`$$`, `$tag$`); `$` followed by digits is a parameter.
            b'$' if !b.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
            _ if is_ident(c) => {
                // A whole word at once, so digits inside it are never read as a constant.
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                continue;
            }
            _ => {}
        }
        if c != b'\'' && !c.is_ascii_digit() {
            i += 1;
        }
    }
    key.push_str(&sql[copied..]);
    Some(key)
}

/// Whether the digits at `at` are the precision of `float(p)`, which picks a type (`real` up
/// to 24, `double precision` up to 53) rather than being a value.
fn after_float_paren(b: &[u8], at: usize) -> bool {
    let before = b[..at].trim_ascii_end();
    let Some(before) = before.strip_suffix(b"(") else {
        return false;
    };
    let before = before.trim_ascii_end();
    let word_start = before
        .iter()
        .rposition(|&c| !is_ident(c))
        .map_or(0, |p| p + 1);
    let word = &before[word_start..];
    word.eq_ignore_ascii_case(b"float") && (word_start == 0 || before[word_start - 1] != b'"')
}

/// The index after the closing quote of the string literal opening at `start`.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut j = start + 1;
    loop {
        match b.get(j)? {
            b'\\' => return None,
            b'\'' if b.get(j + 1) == Some(&b'\'') => j += 2,
            b'\'' => return Some(j + 1),
            _ => j += 1,
        }
    }
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

#[cfg(test)]
mod tests {
    use super::key;

    fn same(a: &str, b: &str) -> bool {
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        }
    }

    #[test]
    fn constants_share_a_key() {
        assert!(same(
            "SELECT abalance FROM pgbench_accounts WHERE aid = 1;",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 98765;"
        ));
        assert!(same(
            "SELECT * FROM t WHERE a = 'x' AND b = 'it''s'",
            "SELECT * FROM t WHERE a = '' AND b = 'y'"
        ));
        assert!(same("SELECT 'é'", "SELECT '\u{1}S'"));
        assert!(same(
            "UPDATE t SET v = v + 5 WHERE id = 7",
            "UPDATE t SET v = v + 123 WHERE id = 8"
        ));
    }

    #[test]
    fn everything_else_is_kept() {
        assert!(!same("SELECT a FROM t", "SELECT b FROM t"));
        assert!(!same("SELECT a FROM t1", "SELECT a FROM t2"));
        assert!(!same("SELECT $1", "SELECT $2"));
        assert!(!same("SELECT a.x FROM t a", "SELECT a.x FROM t  a"));
        assert!(!same("SELECT \"1\" FROM t", "SELECT \"2\" FROM t"));
        assert!(!same("SELECT 1 FROM t", "SELECT '1' FROM t"));
        assert!(!same("select 1", "SELECT 1"));
    }

    #[test]
    fn uncertain_text_has_no_key() {
        for sql in [
            "SELECT E'a\\'b'",
            "SELECT 'a\\' , 1",
            "SELECT e'x'",
            "SELECT U&'d\\0061t'",
            "SELECT B'101'",
            "SELECT X'1F'",
            "SELECT N'x'",
            "SELECT 1.5",
            "SELECT 1e3",
            "SELECT 0x1F",
            "SELECT 1_000",
            "SELECT 12345678901",
            "SELECT $$x$$",
            "SELECT $q$x$q$",
            "SELECT 1 -- 'x'",
            "SELECT /* 'x' */ 1",
            "SELECT 'unterminated",
            "SELECT \"unterminated",
            "SELECT é FROM t",
            "SELECT \u{1}S",
        ] {
            assert_eq!(key(sql), None, "{sql}");
        }
    }

    #[test]
    fn names_with_digits_and_parameters_are_not_constants() {
        assert_eq!(
            key("SELECT c1 FROM t2 WHERE x = $1").as_deref(),
            Some("SELECT c1 FROM t2 WHERE x = $1")
        );
        assert_eq!(
            key("SELECT \"a'b\" FROM t WHERE x = 'q'").as_deref(),
            Some("SELECT \"a'b\" FROM t WHERE x = \u{1}S")
        );
    }
}
