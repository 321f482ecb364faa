//! The upstream catalog lineage needs: the columns of every relation (in order) and the
//! definitions of views. Loaded over a connection of Gatehouse's own with the target's
//! credentials, cached per target, and refreshed after DDL and on a timer.

use crate::auth::read_frame;
use crate::config::TargetConfig;
use crate::error::SessionError;
use crate::upstream::{self, MAX_UPSTREAM_MESSAGE};
use bytes::BytesMut;
use sql::lineage::ColumnRef;
use std::collections::{HashMap, HashSet};
use tokio::io::AsyncWriteExt;
use wire_pg::backend::{self, tag};
use wire_pg::encode;

/// Relations' columns and views' definitions, keyed by (schema, name).
#[derive(Debug, Default, Clone)]
pub struct CatalogSnapshot {
    pub columns: HashMap<(String, String), Vec<String>>,
    pub views: HashMap<(String, String), String>,
    /// Every relation name without its schema (is a name known at all?).
    pub names: HashSet<String>,
    /// View and materialized view names without their schema.
    pub view_names: HashSet<String>,
    /// (table OID, attribute number) of every column, as RowDescription reports them.
    pub ids: HashMap<ColumnRef, (u32, i16)>,
    /// Columns of partitions and inheritance children (at any depth) of a table with a
    /// configured sensitive column, mapped to that configured column: sensitivity follows
    /// the data into every child, whatever name it is read by.
    pub children: HashMap<ColumnRef, ColumnRef>,
    /// `probe::FINGERPRINT_SQL` when this snapshot was taken (read first, so a change
    /// during the load shows as a difference).
    pub fingerprint: String,
    /// Which load this is (see [`next_generation`]); 0 for a snapshot not loaded whole
    /// from a server, against which lineage is never remembered.
    pub generation: u64,
}

/// A number no earlier catalog (or temporary catalog) of this process was given: lineage
/// traced against one generation is remembered for it (`sql::cache`).
pub fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl CatalogSnapshot {
    pub fn has_column(&self, schema: &str, table: &str, column: &str) -> bool {
        self.columns
            .get(&(schema.to_owned(), table.to_owned()))
            .is_some_and(|cols| cols.iter().any(|c| c == column))
    }
}

const COLUMNS_SQL: &str = "SELECT n.nspname, c.relname, a.attname, c.oid, a.attnum, c.relkind \
     FROM pg_catalog.pg_attribute a \
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','v','m','p','f') \
       AND n.nspname <> 'pg_toast' AND n.nspname NOT LIKE 'pg_temp%' \
     ORDER BY n.nspname, c.relname, a.attnum";

/// Direct parent links of partitions and inheritance children.
const INHERITS_SQL: &str = "SELECT cn.nspname, c.relname, pn.nspname, p.relname \
     FROM pg_catalog.pg_inherits i \
     JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid \
     JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace \
     JOIN pg_catalog.pg_class p ON p.oid = i.inhparent \
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace";

const VIEWS_SQL: &str = "SELECT schemaname, viewname, definition FROM pg_catalog.pg_views \
     UNION ALL SELECT schemaname, matviewname, definition FROM pg_catalog.pg_matviews";

/// Loads the catalog of `target`.
pub async fn load(target: &TargetConfig) -> Result<CatalogSnapshot, SessionError> {
    let params = vec![
        (
            "application_name".to_owned(),
            "gatehouse:catalog".to_owned(),
        ),
        ("user".to_owned(), target.user.clone()),
        ("database".to_owned(), target.database.clone()),
        // View definitions come back schema-qualified only relative to this search_path:
        // with pg_catalog alone, every user relation is qualified.
        ("options".to_owned(), "-c search_path=pg_catalog".to_owned()),
    ];
    let mut up = upstream::connect(target, &params).await?;
    let mut snap = CatalogSnapshot::default();
    // One snapshot of the catalog for every query below.
    query(&mut up, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
    let fp = query(&mut up, crate::probe::FINGERPRINT_SQL).await?;
    if let Some(Some(f)) = fp.first().and_then(|r| r.first()) {
        snap.fingerprint.clone_from(f);
    }
    for row in query(&mut up, COLUMNS_SQL).await? {
        if let [Some(s), Some(t), Some(c), Some(oid), Some(num), Some(kind)] = row.as_slice() {
            snap.names.insert(t.clone());
            if kind == "v" || kind == "m" {
                snap.view_names.insert(t.clone());
            }
            if let (Ok(oid), Ok(num)) = (oid.parse::<u32>(), num.parse::<i16>()) {
                snap.ids.insert(ColumnRef::new(s, t, c), (oid, num));
            }
            snap.columns
                .entry((s.clone(), t.clone()))
                .or_default()
                .push(c.clone());
        }
    }
    let mut parents: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
    for row in query(&mut up, INHERITS_SQL).await? {
        if let [Some(cs), Some(c), Some(ps), Some(p)] = row.as_slice() {
            parents
                .entry((ps.clone(), p.clone()))
                .or_default()
                .push((cs.clone(), c.clone()));
        }
    }
    snap.children = descendants(&parents, &target.sensitive, &snap);
    for row in query(&mut up, VIEWS_SQL).await? {
        if let [Some(s), Some(v), Some(d)] = row.as_slice() {
            snap.views.insert((s.clone(), v.clone()), d.clone());
        }
    }
    query(&mut up, "COMMIT").await?;
    let mut out = BytesMut::new();
    encode::terminate(&mut out);
    let _ = up.stream.write_all(&out).await;
    snap.generation = next_generation();
    Ok(snap)
}

/// For every configured sensitive column, the same-named column of every descendant table.
fn descendants(
    children_of: &HashMap<(String, String), Vec<(String, String)>>,
    sensitive: &crate::config::SensitiveSet,
    snap: &CatalogSnapshot,
) -> HashMap<ColumnRef, ColumnRef> {
    let mut out = HashMap::new();
    for col in sensitive.columns.keys() {
        let mut todo = vec![(col.schema.clone(), col.table.clone())];
        let mut seen = HashSet::new();
        while let Some(rel) = todo.pop() {
            if !seen.insert(rel.clone()) {
                continue;
            }
            for child in children_of.get(&rel).into_iter().flatten() {
                if snap.has_column(&child.0, &child.1, &col.column) {
                    out.insert(ColumnRef::new(&child.0, &child.1, &col.column), col.clone());
                }
                todo.push(child.clone());
            }
        }
    }
    out
}

/// A DataRow's cells as text (NULL as `None`).
pub(crate) fn text_row(frame: &wire_pg::Frame) -> Result<Vec<Option<String>>, SessionError> {
    Ok(backend::data_row(frame)?
        .into_iter()
        .map(|c| c.map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect())
}

/// Runs one simple query and returns its rows as text.
pub(crate) async fn query(
    up: &mut upstream::Upstream,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, SessionError> {
    let mut out = BytesMut::new();
    encode::query(&mut out, sql);
    up.stream.write_all(&out).await?;
    let mut rows = Vec::new();
    let mut failure = None;
    loop {
        let frame = read_frame(&mut up.stream, &mut up.buf, MAX_UPSTREAM_MESSAGE).await?;
        match frame.tag() {
            tag::DATA_ROW => rows.push(text_row(&frame)?),
            tag::ERROR_RESPONSE => {
                let e = backend::error_fields(&frame)?;
                failure = Some(SessionError::Upstream(format!(
                    "catalog query: {} {}",
                    e.code, e.message
                )));
            }
            tag::READY_FOR_QUERY => break,
            _ => {}
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(rows),
    }
}

impl sql::lineage::Catalog for CatalogSnapshot {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.columns
            .get(&(schema.to_owned(), table.to_owned()))
            .cloned()
    }

    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        self.views
            .get(&(schema.to_owned(), table.to_owned()))
            .cloned()
    }

    fn generation(&self) -> Option<u64> {
        (self.generation != 0).then_some(self.generation)
    }
}

/// The current snapshot of one target's catalog, replaced on refresh.
#[derive(Debug, Default)]
pub struct CatalogCell {
    snap: std::sync::RwLock<std::sync::Arc<CatalogSnapshot>>,
    /// Signalled after DDL so the refresher reloads at once.
    pub changed: tokio::sync::Notify,
    /// Serialises on-demand reloads and spaces them out (a client naming unknown relations
    /// in a loop must not turn into a catalog query each time).
    reload: tokio::sync::Mutex<Option<std::time::Instant>>,
}

/// Least time between two on-demand reloads of one target's catalog.
const MIN_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

impl CatalogCell {
    /// Reloads now (a statement named a relation the snapshot does not know), unless another
    /// reload finished after `seen` was taken or one ran very recently. Returns whether the
    /// snapshot is newer than `seen`.
    pub async fn reload_now(
        &self,
        target: &TargetConfig,
        seen: &std::sync::Arc<CatalogSnapshot>,
    ) -> bool {
        let mut last = self.reload.lock().await;
        if !std::sync::Arc::ptr_eq(&self.get(), seen) {
            return true;
        }
        if last.is_some_and(|t| t.elapsed() < MIN_RELOAD_INTERVAL) {
            return false;
        }
        *last = Some(std::time::Instant::now());
        match tokio::time::timeout(std::time::Duration::from_secs(10), load(target)).await {
            Ok(Ok(snap)) => {
                self.set(snap);
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(target = %target.name, error = %e, "catalog reload failed");
                false
            }
            Err(_) => false,
        }
    }
}

impl CatalogCell {
    pub fn new(snap: CatalogSnapshot) -> Self {
        CatalogCell {
            snap: std::sync::RwLock::new(std::sync::Arc::new(snap)),
            changed: tokio::sync::Notify::new(),
            reload: tokio::sync::Mutex::new(None),
        }
    }

    pub fn get(&self) -> std::sync::Arc<CatalogSnapshot> {
        self.snap.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, snap: CatalogSnapshot) {
        *self.snap.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(snap);
    }
}

/// Refreshes a target's catalog every minute (DDL through Gatehouse also triggers one).
pub async fn refresh(target: std::sync::Arc<TargetConfig>, cell: std::sync::Arc<CatalogCell>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cell.changed.notified() => {}
        }
        match load(&target).await {
            Ok(snap) => cell.set(snap),
            Err(e) => {
                tracing::warn!(target = %target.name, error = %e, "catalog refresh failed; keeping the previous one")
            }
        }
    }
}
