//! Binding a result set to the masks it needs, in the upstream→client half: the statement's
//! plan (followed through prepared-statement and cursor names in the confirmed session
//! state), then the server's own word on where each column comes from (RowDescription's table
//! OID and attribute number, checked against the sensitive columns of the catalog, which
//! covers partitions, inheritance children and any path lineage did not see), then the
//! optional value-detector safety net.
//!
//! A plan that names an object our model does not hold means the model is wrong: that is a
//! desynchronisation and ends the session (see `relay_down`).

use crate::error::SessionError;
use crate::expect::StmtAudit;
use crate::mask_plan::MaskPlan;
use crate::relay_mask::{self, Bound};
use crate::state::{Plan, Resolved, SessionState};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use wire_pg::backend::FieldDesc;

/// How a column the server reports as coming from a sensitive table column is masked.
#[derive(Debug, Clone)]
pub struct OriginMask {
    pub strategy: masking::Strategy,
    pub tags: Vec<String>,
}

/// Sensitive columns this principal may not see, by (table OID, attribute number), for the
/// tables themselves and every partition and inheritance child.
pub type Origins = HashMap<(u32, i16), OriginMask>;

/// What this session's principal may not see, as of the last check.
#[derive(Debug, Default)]
pub struct Hidden {
    pub origins: Origins,
    /// The principal may see every sensitive column: rows of an object our model does not
    /// hold (a cursor a function opened) need no plan.
    pub none: bool,
}

/// The hidden columns in force for a session; replaced by the client→upstream half when the
/// catalog or the policies change.
pub type OriginsCell = Arc<RwLock<Arc<Hidden>>>;

pub struct Binder {
    /// The target has sensitive columns: every result needs a plan.
    pub masking: bool,
    /// `[masking] detect_all_text`.
    pub safety_net: bool,
    pub origins: OriginsCell,
    /// The target's lineage catalog, refreshed once DDL has completed.
    pub catalog: Option<Arc<crate::catalog::CatalogCell>>,
}

impl Binder {
    /// A statement completed: after DDL, the catalog is reloaded (after, not before, so the
    /// reload sees the change).
    pub fn completed(&self, s: &StmtAudit) {
        let ddl = s
            .event
            .command
            .as_deref()
            .is_some_and(|c| c.starts_with("ddl:"));
        if let (true, Some(c)) = (ddl, &self.catalog) {
            c.changed.notify_one();
        }
    }

    fn hidden(&self) -> Arc<Hidden> {
        self.origins.read().map(|o| o.clone()).unwrap_or_default()
    }

    /// Whether RowDescription must be decoded at all.
    pub fn needs_fields(&self) -> bool {
        self.masking || self.safety_net
    }

    /// The mask plan `plan` stands for, in the confirmed state.
    pub fn resolve(
        &self,
        state: &SessionState,
        plan: &Plan,
    ) -> Result<Option<Arc<MaskPlan>>, SessionError> {
        if !self.masking {
            return Ok(None);
        }
        match state.resolve(plan) {
            Resolved::Plan(p) => Ok(p),
            Resolved::Unknown(_) if self.hidden().none => Ok(None),
            Resolved::Unknown(what) => Err(SessionError::Desync(format!(
                "rows of {what}, which this session's model does not hold"
            ))),
        }
    }

    /// The plan for the rows of statement `s`.
    pub fn plan_of(
        &self,
        state: &SessionState,
        s: &StmtAudit,
    ) -> Result<Option<Arc<MaskPlan>>, SessionError> {
        self.resolve(state, &s.result)
    }

    /// Binds `plan` (if any) to the result columns, adds masks the column origins call for,
    /// and the safety net.
    pub fn bind(
        &self,
        plan: Option<Arc<MaskPlan>>,
        fields: Option<&[FieldDesc]>,
        formats: Option<&[i16]>,
    ) -> Option<Bound> {
        let mut bound = plan.map(|p| relay_mask::bind(&p, fields, formats));
        if self.masking {
            if let Some(f) = fields {
                let hidden = self.hidden();
                if !hidden.origins.is_empty() {
                    bound = relay_mask::with_origins(bound, f, formats, &hidden.origins);
                }
            }
        }
        if self.safety_net {
            relay_mask::with_detection(bound, fields, formats)
        } else {
            bound
        }
    }
}
