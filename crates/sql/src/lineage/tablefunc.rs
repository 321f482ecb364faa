//! Table functions in FROM: XMLTABLE and JSON_TABLE. Their columns are declared in the
//! statement, so the shape is known; every column derives from the document (and the row
//! and column path expressions and PASSING arguments), except FOR ORDINALITY counters.

use super::flow::{Col, Flow, Ns};
use super::from::aliased;
use super::walker::{Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::{JsonTable, JsonTableColumnType, Node, RangeTableFunc};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    /// XMLTABLE(…): each column derives from the document and path expressions.
    pub(crate) fn xml_table(&mut self, t: &RangeTableFunc, lv: &Levels<'_>) -> Result<Ns> {
        let mut base = self.opt_expr(t.docexpr.as_deref(), lv)?.derived();
        base.absorb(self.opt_expr(t.rowexpr.as_deref(), lv)?);
        base.absorb(self.derive(&t.namespaces, lv)?);
        let mut cols = Vec::new();
        for c in &t.columns {
            let Some(N::RangeTableFuncCol(col)) = &c.node else {
                return unsupported("XMLTABLE column");
            };
            let mut f = if col.for_ordinality {
                Flow::constant()
            } else {
                base.clone()
            };
            f.absorb(self.opt_expr(col.colexpr.as_deref(), lv)?);
            f.absorb(self.opt_expr(col.coldefexpr.as_deref(), lv)?);
            cols.push(Col::new(col.colname.clone(), f));
        }
        aliased(t.alias.as_ref(), Some("xmltable".into()), cols)
    }

    /// JSON_TABLE(…): each column derives from the context item and PASSING arguments;
    /// NESTED PATH columns join the same row.
    pub(crate) fn json_table(&mut self, t: &JsonTable, lv: &Levels<'_>) -> Result<Ns> {
        let mut base = Flow::constant();
        if let Some(v) = t.context_item.as_deref() {
            base.absorb(self.opt_expr(v.raw_expr.as_deref(), lv)?);
            base.absorb(self.opt_expr(v.formatted_expr.as_deref(), lv)?);
        }
        base.absorb(self.derive(&t.passing, lv)?);
        let mut cols = Vec::new();
        self.json_columns(&t.columns, &base, &mut cols, lv, 0)?;
        aliased(t.alias.as_ref(), Some("json_table".into()), cols)
    }

    /// Flatten JSON_TABLE's column tree (NESTED PATH adds its columns to the row). A
    /// column's `DEFAULT expr ON EMPTY / ON ERROR` may also supply its value.
    fn json_columns(
        &mut self,
        nodes: &[Node],
        base: &Flow,
        out: &mut Vec<Col>,
        lv: &Levels<'_>,
        depth: usize,
    ) -> Result<()> {
        if depth > 32 {
            return unsupported("JSON_TABLE nested too deeply");
        }
        for n in nodes {
            let Some(N::JsonTableColumn(c)) = &n.node else {
                return unsupported("JSON_TABLE column");
            };
            let mut f = base.clone().derived();
            for b in [c.on_empty.as_deref(), c.on_error.as_deref()]
                .into_iter()
                .flatten()
            {
                f.absorb(self.opt_expr(b.expr.as_deref(), lv)?);
            }
            match JsonTableColumnType::try_from(c.coltype) {
                Ok(JsonTableColumnType::JtcNested) => {
                    self.json_columns(&c.columns, base, out, lv, depth + 1)?
                }
                Ok(JsonTableColumnType::JtcForOrdinality) => {
                    out.push(Col::new(c.name.clone(), Flow::constant()))
                }
                Ok(
                    JsonTableColumnType::JtcRegular
                    | JsonTableColumnType::JtcExists
                    | JsonTableColumnType::JtcFormatted,
                ) => out.push(Col::new(c.name.clone(), f)),
                _ => return unsupported("JSON_TABLE column kind"),
            }
        }
        Ok(())
    }
}
