//! Output column names as PostgreSQL derives them for unnamed target-list entries
//! (`FigureColnameInternal` in parse_target.c). They matter beyond display: an outer query
//! resolves `SELECT lower FROM (SELECT lower(email) FROM users) s` by them.

use pg_query::protobuf::{JsonExprOp, Node, SqlValueFunctionOp as Svf, SubLinkType, XmlExprOp};
use pg_query::NodeEnum as N;

const UNNAMED: &str = "?column?";

pub(crate) fn column_name(node: &Node) -> String {
    figure(node).unwrap_or_else(|| UNNAMED.to_owned())
}

fn last_string(nodes: &[Node]) -> Option<String> {
    match nodes.last()?.node.as_ref()? {
        N::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

fn figure(node: &Node) -> Option<String> {
    let name = match node.node.as_ref()? {
        N::ColumnRef(c) => return last_string(&c.fields),
        N::AIndirection(i) => {
            return last_string(&i.indirection).or_else(|| figure(i.arg.as_deref()?))
        }
        N::FuncCall(f) => return last_string(&f.funcname),
        N::AExpr(e) => {
            let nullif = e.kind == pg_query::protobuf::AExprKind::AexprNullif as i32;
            return nullif.then(|| "nullif".to_owned());
        }
        N::TypeCast(t) => {
            return figure(t.arg.as_deref()?).or_else(|| last_string(&t.type_name.as_ref()?.names))
        }
        N::CollateClause(c) => return figure(c.arg.as_deref()?),
        N::SubLink(s) => match SubLinkType::try_from(s.sub_link_type).ok()? {
            SubLinkType::ExistsSublink => "exists",
            SubLinkType::ArraySublink => "array",
            SubLinkType::ExprSublink => return first_target_name(s.subselect.as_deref()?),
            _ => return None,
        },
        N::CaseExpr(_) => "case",
        N::AArrayExpr(_) => "array",
        N::RowExpr(_) => "row",
        N::CoalesceExpr(_) => "coalesce",
        N::MinMaxExpr(m) => {
            if m.op == pg_query::protobuf::MinMaxOp::IsGreatest as i32 {
                "greatest"
            } else {
                "least"
            }
        }
        N::SqlvalueFunction(f) => sql_value_function(f.op)?,
        N::XmlExpr(x) => xml_name(x.op)?,
        N::XmlSerialize(_) => "xmlserialize",
        N::GroupingFunc(_) => "grouping",
        N::JsonObjectConstructor(_) | N::JsonObjectAgg(_) => "json_object",
        N::JsonArrayConstructor(_) | N::JsonArrayQueryConstructor(_) | N::JsonArrayAgg(_) => {
            "json_array"
        }
        N::JsonParseExpr(_) => "json",
        N::JsonScalarExpr(_) => "json_scalar",
        N::JsonSerializeExpr(_) => "json_serialize",
        N::JsonFuncExpr(j) => {
            return Some(
                match JsonExprOp::try_from(j.op).ok()? {
                    JsonExprOp::JsonExistsOp => "json_exists",
                    JsonExprOp::JsonQueryOp => "json_query",
                    JsonExprOp::JsonValueOp => "json_value",
                    _ => return None,
                }
                .to_owned(),
            )
        }
        _ => return None,
    };
    Some(name.to_owned())
}

/// `(SELECT x …)` is named after its single target.
fn first_target_name(q: &Node) -> Option<String> {
    let Some(N::SelectStmt(s)) = q.node.as_ref() else {
        return None;
    };
    let Some(N::ResTarget(rt)) = s.target_list.first()?.node.as_ref() else {
        return None;
    };
    if !rt.name.is_empty() {
        return Some(rt.name.clone());
    }
    figure(rt.val.as_deref()?)
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
