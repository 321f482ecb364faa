//! The fastpath interface (FunctionCall): libpq's large-object API (`lo_open`, `loread`,
//! `lowrite`, … behind psql's `\lo_import`/`\lo_export` and every driver's LO support) calls
//! functions by OID instead of in SQL. A call is decided, audited and answered exactly like the
//! same call written in SQL — `SELECT pg_catalog.lo_open($1, $2)` with the call's arguments as
//! parameters — so the policies that govern the SQL form govern this one too.
//!
//! Only the large-object functions are known by OID: they are built in, with OIDs fixed in
//! PostgreSQL's catalog (`pg_proc.dat`), so the OID names the function on any server. A call
//! of any other OID, or with another number of arguments, is refused: Gatehouse could not say
//! what it runs.

use super::{Tracking, Up};
use crate::error::SessionError;
use crate::events::render_param;
use crate::expect::Expect;
use crate::relay_up::check::Allowed;
use model::decision::Decision;
use std::collections::VecDeque;
use wire_pg::frontend::FunctionCall;
use wire_pg::Frame;

/// Built-in large-object functions: OID, name, number of arguments.
const LARGE_OBJECT_FUNCTIONS: &[(u32, &str, usize)] = &[
    (715, "lo_create", 1),
    (764, "lo_import", 1),
    (765, "lo_export", 2),
    (767, "lo_import", 2),
    (952, "lo_open", 2),
    (953, "lo_close", 1),
    (954, "loread", 2),
    (955, "lowrite", 2),
    (956, "lo_lseek", 3),
    (957, "lo_creat", 1),
    (958, "lo_tell", 1),
    (964, "lo_unlink", 1),
    (1004, "lo_truncate", 2),
    (3170, "lo_lseek64", 3),
    (3171, "lo_tell64", 1),
    (3172, "lo_truncate64", 2),
    (3457, "lo_from_bytea", 2),
    (3458, "lo_get", 1),
    (3459, "lo_get", 3),
    (3460, "lo_put", 3),
];

/// The SQL the call is decided and audited as, or `None` for a function not known by OID.
fn equivalent_sql(call: &FunctionCall) -> Option<String> {
    let (_, name, nargs) = LARGE_OBJECT_FUNCTIONS
        .iter()
        .find(|(oid, _, _)| *oid == call.oid)?;
    if *nargs != call.args.len() {
        return None;
    }
    let params: Vec<String> = (1..=*nargs).map(|i| format!("${i}")).collect();
    Some(format!("SELECT pg_catalog.{name}({})", params.join(", ")))
}

impl Up {
    /// Refuses a fastpath call Gatehouse cannot decide as SQL: audited and logged like any
    /// refusal.
    async fn refuse_fastpath(
        &mut self,
        t: &mut Tracking,
        text: &str,
        reason: &str,
    ) -> Result<(), SessionError> {
        tracing::warn!(session = %self.ctx.session, call = text, "fastpath call refused");
        let decision = Decision::Deny {
            reason: reason.to_owned(),
            policy_id: "gatehouse.fastpath".into(),
            hint: None,
            policies: Vec::new(),
        };
        self.refuse_by_policy(t, text, &[], &decision, true).await
    }

    pub(super) async fn on_function_call(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        call: FunctionCall,
    ) -> Result<(), SessionError> {
        let Some(sql) = equivalent_sql(&call).filter(|_| !t.batch_open) else {
            let text = format!(
                "-- fastpath call of function OID {} with {} arguments",
                call.oid,
                call.args.len()
            );
            let reason = "fastpath calls are allowed only for the large-object functions, outside an extended-protocol batch";
            return self.refuse_fastpath(t, &text, reason).await;
        };
        let Some(Allowed {
            statements,
            decision,
            shadow,
            plans,
            ..
        }) = self
            .check_or_refuse(t, &sql, true, super::check::HoldAt::Never)
            .await?
        else {
            return Ok(());
        };
        // The answer is one value with no column origins: nothing in it could be masked.
        if plans.iter().any(|p| p.mask.is_some()) {
            let reason =
                "this fastpath call's result would need masking; call the function in SQL instead";
            return self.refuse_fastpath(t, &sql, reason).await;
        }
        let max = self.state.config.audit_param_max;
        let enc = self.encoding.get();
        let params = call
            .args
            .iter()
            .enumerate()
            .map(|(i, a)| render_param(a.as_deref(), call.arg_is_binary(i), max, enc))
            .collect();
        let note = crate::annotation::Annotation::new(statements.first(), &decision, shadow);
        let audit = match self.audit_for(&sql, params, Some(&note)) {
            Ok(a) => a,
            Err(e) => {
                let msg = e.client_message("");
                return self.refuse(t, e.sqlstate(), &msg, None, None, true).await;
            }
        };
        t.out.extend_from_slice(frame.raw());
        self.expect(Expect::FunctionCall(VecDeque::from([audit])))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_object_calls_read_as_sql() {
        let call = |oid, n| FunctionCall {
            oid,
            arg_formats: vec![1],
            args: vec![None; n],
            result_format: 1,
        };
        assert_eq!(
            equivalent_sql(&call(952, 2)).as_deref(),
            Some("SELECT pg_catalog.lo_open($1, $2)")
        );
        assert_eq!(
            equivalent_sql(&call(3459, 3)).as_deref(),
            Some("SELECT pg_catalog.lo_get($1, $2, $3)")
        );
        // Wrong arity, unknown OID.
        assert_eq!(equivalent_sql(&call(952, 1)), None);
        assert_eq!(equivalent_sql(&call(1242, 1)), None);
    }
}
