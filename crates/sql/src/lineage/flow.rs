//! The values the walker tracks: a [`Flow`] (which source columns feed one value, and how),
//! named columns of an intermediate relation ([`Col`]), and the names visible in a query
//! scope ([`Ns`], PostgreSQL's "namespace items").
//!
//! Combining rules live here so every construct applies them the same way: an expression
//! *absorbs* its operands (derived), while set-operation arms and recursive CTE iterations
//! meet *position-wise* ([`Flow::either`]: still direct if every arm passes a column through).

use super::ColumnRef;
use std::collections::BTreeSet;

/// Which source columns feed one value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flow {
    pub sources: BTreeSet<ColumnRef>,
    /// The value is a source column's value unchanged.
    pub direct: bool,
    /// A whole row was turned into this one value.
    pub whole_row: bool,
}

impl Flow {
    /// A value with no source column (constant, parameter, `now()`).
    pub fn constant() -> Flow {
        Flow::default()
    }

    /// A plain column of a table.
    pub fn column(c: ColumnRef) -> Flow {
        Flow {
            sources: BTreeSet::from([c]),
            direct: true,
            whole_row: false,
        }
    }

    /// Mix another value into this one through an expression: the result is derived.
    pub fn absorb(&mut self, other: Flow) {
        self.sources.extend(other.sources);
        self.whole_row |= other.whole_row;
        self.direct = false;
    }

    /// This value passed through an expression.
    pub fn derived(mut self) -> Flow {
        self.direct = false;
        self
    }

    /// The same position of two set-operation arms: either value, unchanged. A source-less
    /// arm (`NULL`, a literal) does not spoil directness.
    pub fn either(&mut self, other: Flow) {
        let passes = |f: &Flow| f.direct || (f.sources.is_empty() && !f.whole_row);
        let direct = passes(self) && passes(&other);
        self.sources.extend(other.sources);
        self.whole_row |= other.whole_row;
        self.direct = direct && !self.whole_row && !self.sources.is_empty();
    }

    /// The value of a written column as read back (RETURNING): the column itself, now
    /// holding `value`. Masks of the target column apply, and so do those of the value's
    /// sources.
    pub fn landed(base: &Flow, value: &Flow) -> Flow {
        let passes = value.direct || (value.sources.is_empty() && !value.whole_row);
        let mut out = base.clone();
        out.sources.extend(value.sources.iter().cloned());
        out.whole_row |= value.whole_row;
        out.direct = base.direct && passes && !out.whole_row;
        out
    }
}

/// One named column of an intermediate relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Col {
    pub name: String,
    pub flow: Flow,
}

impl Col {
    pub fn new(name: impl Into<String>, flow: Flow) -> Col {
        Col {
            name: name.into(),
            flow,
        }
    }
}

/// The columns of a relation, subquery, CTE or statement result, in order.
pub(crate) type Rel = Vec<Col>;

/// One name visible in a query scope (a FROM item, a join, a DML target).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ns {
    /// The name it is qualified by (`u` in `FROM users u`); None for unaliased subqueries.
    pub refname: Option<String>,
    /// (schema, table) of an unaliased base relation, for `schema.table.column` references.
    pub relation: Option<(String, String)>,
    pub cols: Vec<Col>,
    /// May be named as `refname.col` / `refname` (false for join inputs hidden by an alias).
    pub rel_visible: bool,
    /// Its columns may be named unqualified and appear in `*` (false for a join's inputs:
    /// the join item exposes them, USING columns merged).
    pub cols_visible: bool,
    /// Result shape unknown (a function with an unknown body in FROM): any column name may
    /// come from it, carrying this flow. `*` over it cannot be expanded.
    pub open: Option<Flow>,
}

impl Ns {
    /// A plain, visible item.
    pub fn item(refname: Option<String>, cols: Vec<Col>) -> Ns {
        Ns {
            refname,
            cols,
            rel_visible: true,
            cols_visible: true,
            ..Ns::default()
        }
    }

    /// Every column as one value (`u` in `row_to_json(u)`).
    pub fn whole_row(&self) -> Flow {
        let mut f = Flow::constant();
        for c in &self.cols {
            f.absorb(c.flow.clone());
        }
        if let Some(open) = &self.open {
            f.absorb(open.clone());
        }
        f.whole_row = true;
        f
    }
}

/// Rename the first columns (`AS t(a, b)`, CTE column lists). More names than columns is
/// an error in PostgreSQL; here it is unsupported.
pub(crate) fn rename(mut cols: Vec<Col>, names: &[String]) -> Option<Vec<Col>> {
    if names.len() > cols.len() {
        return None;
    }
    for (c, n) in cols.iter_mut().zip(names) {
        c.name.clone_from(n);
    }
    Some(cols)
}

/// Union of the sources of several columns (a query turned into one value).
pub(crate) fn all_sources(cols: &[Col]) -> Flow {
    let mut f = Flow::constant();
    for c in cols {
        f.absorb(c.flow.clone());
    }
    f
}
