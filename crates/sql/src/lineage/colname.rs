//! Output column names as PostgreSQL derives them for unnamed target-list entries
//! (`FigureColnameInternal` in parse_target.c). They matter beyond display: an outer query
//! resolves `SELECT lower FROM (SELECT lower(email) FROM users) s` by them.

use pg_query::protobuf::{JsonExprOp, Node, SqlValueFunctionOp as Svf, SubLinkType, XmlExprOp};
use pg_query::NodeEnum as N;

const UNNAMED: &str = "?column?";

/// How firmly a name was chosen (FigureColnameInternal's return value): a cast over an
/// expression with at most a weak name is named after its type, and a CASE after its ELSE
/// branch only when that branch has a strong name.
const WEAK: u8 = 1;
const STRONG: u8 = 2;

pub(crate) fn column_name(node: &Node) -> String {
    figure(node).map_or_else(|| UNNAMED.to_owned(), |(name, _)| name)
}

/// The last String among name parts (`*` and subscripts skipped).
fn last_string(nodes: &[Node]) -> Option<String> {
    nodes.iter().rev().find_map(|n| match n.node.as_ref()? {
        N::String(s) => Some(s.sval.clone()),
        _ => None,
    })
}

fn figure(node: &Node) -> Option<(String, u8)> {
    let n = node.node.as_ref()?;
    match n {
        N::ColumnRef(c) => last_string(&c.fields).map(|n| (n, STRONG)),
        N::AIndirection(i) => match last_string(&i.indirection) {
            Some(n) => Some((n, STRONG)),
            None => figure(i.arg.as_deref()?),
        },
        N::FuncCall(f) => last_string(&f.funcname).map(|n| (n, STRONG)),
        N::TypeCast(t) => {
            let inner = t.arg.as_deref().and_then(figure);
            if inner.as_ref().is_some_and(|(_, s)| *s > WEAK) {
                return inner;
            }
            let ty = t.type_name.as_ref().and_then(|ty| last_string(&ty.names));
            ty.map(|n| (n, WEAK)).or(inner)
        }
        N::CollateClause(c) => figure(c.arg.as_deref()?),
        // The subquery's single target, whose own name is `?column?` if it has none.
        N::SubLink(s) if s.sub_link_type == SubLinkType::ExprSublink as i32 => {
            let name = s.subselect.as_deref().and_then(first_target_name);
            Some((name.unwrap_or_else(|| UNNAMED.to_owned()), STRONG))
        }
        N::CaseExpr(c) => match c.defresult.as_deref().and_then(figure) {
            Some((n, s)) if s > WEAK => Some((n, s)),
            _ => Some(("case".to_owned(), WEAK)),
        },
        other => fixed_name(other).map(|n| (n.to_owned(), STRONG)),
    }
}

/// Expressions named by a keyword, as if they were functions.
fn fixed_name(n: &N) -> Option<&'static str> {
    Some(match n {
        N::AExpr(e) if e.kind == pg_query::protobuf::AExprKind::AexprNullif as i32 => "nullif",
        N::SubLink(s) => match SubLinkType::try_from(s.sub_link_type).ok()? {
            SubLinkType::ExistsSublink => "exists",
            SubLinkType::ArraySublink => "array",
            _ => return None,
        },
        N::AArrayExpr(_) => "array",
        N::RowExpr(_) => "row",
        N::CoalesceExpr(_) => "coalesce",
        N::MinMaxExpr(m) if m.op == pg_query::protobuf::MinMaxOp::IsGreatest as i32 => "greatest",
        N::MinMaxExpr(_) => "least",
        N::SqlvalueFunction(f) => sql_value_function(f.op)?,
        N::XmlExpr(x) => xml_name(x.op)?,
        N::XmlSerialize(_) => "xmlserialize",
        N::GroupingFunc(_) => "grouping",
        N::MergeSupportFunc(_) => "merge_action",
        N::JsonObjectConstructor(_) | N::JsonObjectAgg(_) => "json_object",
        N::JsonArrayConstructor(_) | N::JsonArrayQueryConstructor(_) | N::JsonArrayAgg(_) => {
            "json_array"
        }
        N::JsonParseExpr(_) => "json",
        N::JsonScalarExpr(_) => "json_scalar",
        N::JsonSerializeExpr(_) => "json_serialize",
        N::JsonFuncExpr(j) => match JsonExprOp::try_from(j.op).ok()? {
            JsonExprOp::JsonExistsOp => "json_exists",
            JsonExprOp::JsonQueryOp => "json_query",
            JsonExprOp::JsonValueOp => "json_value",
            _ => return None,
        },
        _ => return None,
    })
}

/// `(SELECT x …)` is named after its single target (for a set operation, the first arm's).
fn first_target_name(q: &Node) -> Option<String> {
    let Some(N::SelectStmt(s)) = q.node.as_ref() else {
        return None;
    };
    target_name(s)
}

fn target_name(s: &pg_query::protobuf::SelectStmt) -> Option<String> {
    let Some(first) = s.target_list.first() else {
        return target_name(s.larg.as_deref()?);
    };
    let Some(N::ResTarget(rt)) = first.node.as_ref() else {
        return None;
    };
    if !rt.name.is_empty() {
        return Some(rt.name.clone());
    }
    Some(column_name(rt.val.as_deref()?))
}

fn sql_value_function(op: i32) -> Option<&'static str> {
    Some(match Svf::try_from(op).ok()? {
        Svf::SvfopCurrentDate => "current_date",
        Svf::SvfopCurrentTime | Svf::SvfopCurrentTimeN => "current_time",
        Svf::SvfopCurrentTimestamp | Svf::SvfopCurrentTimestampN => "current_timestamp",
        Svf::SvfopLocaltime | Svf::SvfopLocaltimeN => "localtime",
        Svf::SvfopLocaltimestamp | Svf::SvfopLocaltimestampN => "localtimestamp",
        Svf::SvfopCurrentRole => "current_role",
        Svf::SvfopCurrentUser => "current_user",
        Svf::SvfopUser => "user",
        Svf::SvfopSessionUser => "session_user",
        Svf::SvfopCurrentCatalog => "current_catalog",
        Svf::SvfopCurrentSchema => "current_schema",
        Svf::SqlvalueFunctionOpUndefined => return None,
    })
}

fn xml_name(op: i32) -> Option<&'static str> {
    Some(match XmlExprOp::try_from(op).ok()? {
        XmlExprOp::IsXmlconcat => "xmlconcat",
        XmlExprOp::IsXmlelement => "xmlelement",
        XmlExprOp::IsXmlforest => "xmlforest",
        XmlExprOp::IsXmlparse => "xmlparse",
        XmlExprOp::IsXmlpi => "xmlpi",
        XmlExprOp::IsXmlroot => "xmlroot",
        XmlExprOp::IsXmlserialize => "xmlserialize",
        XmlExprOp::IsDocument | XmlExprOp::Undefined => return None,
    })
}
