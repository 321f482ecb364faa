//! Unit tests of the small helpers; statement-level golden tables live in
//! `crates/sql/tests/lineage_*.rs`.

use super::builtins::{FUNCTIONS, OPERATORS};
use super::flow::Flow;
use super::relation::split_qualified;
use super::srf::SHAPES;
use super::ColumnRef;

#[test]
fn builtin_list_is_sorted_for_binary_search() {
    for pair in FUNCTIONS.windows(2) {
        assert!(pair[0] < pair[1], "{} before {}", pair[0], pair[1]);
    }
    assert!(!OPERATORS.is_empty());
}

#[test]
fn function_shapes_are_sorted_and_name_builtins() {
    for pair in SHAPES.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
    }
    for (name, cols) in SHAPES {
        assert!(
            FUNCTIONS.binary_search(name).is_ok(),
            "{name} is no built-in"
        );
        assert!(!cols.is_empty());
    }
}

#[test]
fn qualified_names_split_like_regclass_input() {
    let v = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(split_qualified("users"), v(&["users"]));
    assert_eq!(split_qualified("Public.Users"), v(&["public", "users"]));
    assert_eq!(split_qualified("\"My\"\"T\".\"a.b\""), v(&["My\"T", "a.b"]));
    assert_eq!(split_qualified("a..b"), None);
    assert_eq!(split_qualified("a; drop"), None);
    assert_eq!(split_qualified("\"open"), None);
    assert_eq!(split_qualified(""), None);
}

#[test]
fn either_keeps_direct_only_when_every_arm_passes_through() {
    let a = Flow::column(ColumnRef::new("s", "t", "a"));
    let b = Flow::column(ColumnRef::new("s", "t", "b"));
    let mut x = a.clone();
    x.either(b.clone());
    assert!(x.direct && x.sources.len() == 2);
    let mut y = a.clone();
    y.either(Flow::constant());
    assert!(y.direct);
    let mut z = a;
    z.either(b.derived());
    assert!(!z.direct);
    let mut c = Flow::constant();
    c.either(Flow::constant());
    assert!(!c.direct);
}
