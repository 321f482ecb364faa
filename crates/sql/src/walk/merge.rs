//! Merging the facts of code a statement runs (DO bodies, routine bodies) into its own.

use model::facts::StatementFacts;

/// Union `src` into `dst`. `session` says whether `src`'s session changes happen when `dst`
/// runs (a DO block) or only later, when a created routine is called; in the latter case the
/// search path is not reported (it is not the session's yet) but role switches,
/// `gatehouse.*` changes and weakening settings still are, so policy can refuse creating
/// such code.
pub(crate) fn merge(dst: &mut StatementFacts, src: StatementFacts, session: bool) {
    dst.tables_read.extend(src.tables_read);
    dst.tables_written.extend(src.tables_written);
    for (table, cols) in src.columns {
        dst.columns.entry(table).or_default().extend(cols);
    }
    dst.has_where = match (dst.has_where, src.has_where) {
        (Some(a), Some(b)) => Some(a && b),
        (a, b) => a.or(b),
    };
    dst.where_tautology |= src.where_tautology;
    dst.functions.extend(src.functions);
    dst.dangerous.extend(src.dangerous);
    dst.drops.extend(src.drops);
    dst.truncated.extend(src.truncated);
    dst.privileges |= src.privileges;
    dst.routines.extend(src.routines);
    dst.untrusted_language |= src.untrusted_language;
    dst.load |= src.load;
    dst.alter_system |= src.alter_system;
    dst.temp_tables_created.extend(src.temp_tables_created);
    dst.disabled_safeguards.extend(src.disabled_safeguards);
    dst.catalog_writes.extend(src.catalog_writes);
    dst.unfiltered_merge |= src.unfiltered_merge;
    if src.executes_prepared.is_some() && dst.executes_prepared.is_none() {
        dst.executes_prepared = src.executes_prepared;
    }
    let s = src.session;
    dst.session.role_switch |= s.role_switch;
    dst.session.gatehouse_settings.extend(s.gatehouse_settings);
    dst.session.settings.extend(s.settings);
    // Like role switches: reported for code that runs later too, so creating it is refused.
    dst.session.weakening_settings.extend(s.weakening_settings);
    if session && s.search_path.is_some() {
        dst.session.search_path = s.search_path;
        dst.session.local = s.local;
    }
    if dst.opaque.is_none() {
        dst.opaque = src.opaque;
    }
}
