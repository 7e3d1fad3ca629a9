//! Storing reports: one transaction per batch (one fsync for many reports); a report that fails
//! leaves the others stored (the batch is then stored again with a savepoint per report). A
//! writer keeps the clusters it worked on (`WorkCache`). Per report: the report once by its
//! key, its event (merged with the other node's report of the same node or fencing event), the
//! incidents the event changes, and the cluster's summary.

use std::collections::HashMap;

use anyhow::{Context, Result};

use super::db::{Db, Dialect, Row, Val};
use super::read::{cluster_from_row, incident_from_row, CLUSTER_COLS, INCIDENT_COLS};
use super::{ClusterSummary, LastEvent, RECENT_MTTR};
use crate::console::derive::{self, DeriveState, EventFacts, Incident, StepResult};
use crate::console::report::{micros, Report, Severity};
use crate::console::snapshot::{base_id, SnapshotSummary};

/// Node and fencing reports of one event from several nodes are this close in time (docs/reports.md).
pub const MERGE_WINDOW_US: i64 = 10_000_000;
/// The same fencing operation id is one event within this window.
const FENCE_REF_WINDOW_US: i64 = 86_400_000_000;

/// A report the HTTP layer has authenticated, parsed and checked, ready to store.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub cluster_id: i64,
    /// The report (its snapshot XML dropped: `body` has it).
    pub report: Report,
    pub received_us: i64,
    /// The event time the console uses: the report's, or the arrival time when the report's was
    /// ahead of the console's clock by more than the tolerance (`clock_ahead_ms` then says by how much).
    pub time_us: i64,
    pub clock_ahead_ms: Option<i64>,
    /// The request body, deflate-compressed.
    pub body: Vec<u8>,
    pub snapshot: Option<SnapshotSummary>,
    /// The hash of the token the sender showed, checked against the cluster's row in the
    /// transaction that stores the report (the HTTP layer finds the cluster from a cache of
    /// tokens; a token rotated since is refused here). `None`: the store's own callers.
    pub token_hash: Option<String>,
}

impl Accepted {
    /// When its snapshot was taken, on the console's time line.
    fn snapshot_us(&self) -> i64 {
        match self.clock_ahead_ms {
            Some(_) => self.received_us,
            None => micros(self.report.snapshot.taken_at.epoch, self.report.snapshot.taken_at.usec),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// A new report; `merged` when its event was already known from another node's report.
    New { report_id: i64, event_id: i64, merged: bool },
    /// Its idempotency key was stored before: nothing changed.
    Duplicate { report_id: i64, event_id: Option<i64> },
    /// The token it came with is no longer its cluster's (rotated): nothing stored.
    TokenRevoked,
}

/// A cluster's row and derivation state while a batch works on it.
#[derive(Clone)]
struct Work {
    summary: ClusterSummary,
    state: DeriveState,
    cursor_us: Option<i64>,
    /// The cluster's token hash as this transaction read it.
    token_hash: String,
}

/// Each report's outcome (an error leaves that report unstored: its sender retries it), and the
/// summaries of the clusters that changed.
pub type BatchResult = (Vec<Result<Stored, String>>, Vec<ClusterSummary>);

/// The clusters a writer worked on last, as its last committed batch left them: the next batch
/// that finds a cluster's row unchanged since (its report count) starts from here instead of
/// reading the row, its derivation state and its open incidents again.
#[derive(Default)]
pub struct WorkCache {
    clusters: HashMap<i64, Work>,
}

/// Clusters a writer's cache keeps at most (a fleet of thousands is a few MiB).
const CACHED_CLUSTERS: usize = 100_000;

/// Stores a batch in one transaction.
pub fn ingest_batch(db: &mut dyn Db, batch: &[Accepted]) -> Result<BatchResult> {
    ingest_batch_cached(db, batch, &mut WorkCache::default())
}

/// Stores a batch in one transaction, starting from the clusters `cache` holds where their rows
/// have not changed since, and leaving the batch's clusters there once it is committed.
/// A report that cannot be stored is rare: the batch is first stored without a savepoint per
/// report (two statements fewer each; on PostgreSQL a subtransaction fewer), and only if one of
/// its reports fails, stored again with them, so that the others are kept.
pub fn ingest_batch_cached(db: &mut dyn Db, batch: &[Accepted], cache: &mut WorkCache) -> Result<BatchResult> {
    match attempt(db, batch, cache, false) {
        Ok(r) => Ok(r),
        Err(_) => attempt(db, batch, cache, true),
    }
}

/// One transaction for the batch; with `savepoints`, a report that fails is left out and the
/// others stored, without, the first failure rolls the whole batch back.
fn attempt(db: &mut dyn Db, batch: &[Accepted], cache: &mut WorkCache, savepoints: bool) -> Result<BatchResult> {
    db.begin()?;
    let mut clusters: HashMap<i64, Work> = HashMap::new();
    let result = (|| {
        // Once for the batch, not per report: the keys stored before it, the cached clusters'
        // rows (locked) and, on PostgreSQL, its new events' ids.
        let (mut keys, rows, mut ids) = batch_reads(db, batch, cache)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for (i, acc) in batch.iter().enumerate() {
            if savepoints {
                db.batch("SAVEPOINT report")?;
            }
            // The batch's own state of the cluster is taken, not copied (a summary with its
            // snapshot and placement per report); with savepoints a failed report must leave it
            // as it was, so it is copied then.
            let in_batch =
                if savepoints { clusters.get(&acc.cluster_id).cloned() } else { clusters.remove(&acc.cluster_id) };
            let was_in_batch = in_batch.is_some();
            let loaded = match in_batch {
                Some(w) => Ok(w),
                None => load_cached(db, acc.cluster_id, cache, &rows),
            };
            let outcome = loaded.and_then(|mut work| {
                if acc.token_hash.as_ref().is_some_and(|t| *t != work.token_hash) {
                    return Ok((Stored::TokenRevoked, work));
                }
                // A replay: stored before the batch or earlier in it.
                if let Some(&(report_id, event_id)) = keys.get(acc.report.idempotency_key.as_str()) {
                    return Ok((Stored::Duplicate { report_id, event_id }, work));
                }
                ingest_one(db, &mut work, acc, &mut ids, batch.len() - i).map(|stored| (stored, work))
            });
            match outcome {
                Ok((stored, work)) => {
                    if savepoints {
                        db.batch("RELEASE SAVEPOINT report")?;
                    }
                    if let Stored::New { report_id, event_id, .. } = stored {
                        keys.insert(acc.report.idempotency_key.clone(), (report_id, Some(event_id)));
                    }
                    if was_in_batch || matches!(stored, Stored::New { .. }) {
                        clusters.insert(acc.cluster_id, work);
                    }
                    outcomes.push(Ok(stored));
                }
                Err(e) if !savepoints => {
                    // Taken out of `clusters` above: its cached state is read again next time too.
                    cache.clusters.remove(&acc.cluster_id);
                    return Err(e);
                }
                Err(e) => {
                    db.batch("ROLLBACK TO SAVEPOINT report; RELEASE SAVEPOINT report")?;
                    outcomes.push(Err(format!("{e:#}")));
                }
            }
        }
        let works: Vec<&Work> = clusters.values().collect();
        save_all(db, &works)?;
        let changed = works.iter().map(|w| w.summary.clone()).collect();
        Ok((outcomes, changed))
    })();
    let committed = result.and_then(|r| db.commit().map(|_| r));
    match committed {
        Ok(r) => {
            if cache.clusters.len() + clusters.len() > CACHED_CLUSTERS {
                cache.clusters.clear();
            }
            cache.clusters.extend(clusters);
            Ok(r)
        }
        Err(e) => {
            let _ = db.rollback();
            // What the batch derived was not stored: those clusters are read again next time.
            for id in clusters.keys() {
                cache.clusters.remove(id);
            }
            Err(e)
        }
    }
}

/// Statements with an `IN` list of `n` values are prepared for `n` a power of two (the list
/// padded with its last value), so that a writer's statement cache holds a few of them.
const IN_CHUNK: usize = 256;

/// `$1, $2, ...` for a list of `len` values padded to a power of two.
fn in_list(len: usize) -> String {
    (1..=len.next_power_of_two()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The padded parameters of an `IN` list.
fn padded(values: &[Val]) -> Vec<Val> {
    let mut v = values.to_vec();
    if let Some(last) = values.last() {
        v.resize(values.len().next_power_of_two(), last.clone());
    }
    v
}

/// What a batch reads before its reports: the keys already stored, the cached clusters' rows
/// (locked), and on PostgreSQL ids for its new events; there one query, not three (each a round
/// trip and a statement of the server's).
fn batch_reads(db: &mut dyn Db, batch: &[Accepted], cache: &WorkCache) -> Result<(StoredKeys, ClusterRows, EventIds)> {
    if db.dialect() != Dialect::Postgres || batch.len() > IN_CHUNK {
        return Ok((stored_keys(db, batch)?, cached_rows(db, batch, cache)?, EventIds::default()));
    }
    let ids = cached_ids(batch, cache);
    // No cached cluster: an id no cluster has keeps the list (and the statement) valid.
    let ids = if ids.is_empty() { vec![Val::Int(-1)] } else { ids };
    let keys: Vec<Val> = batch.iter().map(|a| a.report.idempotency_key.as_str().into()).collect();
    let (ids, keys) = (padded(&ids), padded(&keys));
    let key_list = (ids.len() + 1..=ids.len() + keys.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "WITH c AS MATERIALIZED (SELECT id, reports, token_hash FROM clusters WHERE id IN ({}) ORDER BY id FOR UPDATE) \
         SELECT 0, id, reports, token_hash FROM c \
         UNION ALL SELECT 1, id, event_id, idem_key FROM reports WHERE idem_key IN ({key_list}) \
         UNION ALL SELECT 2, nextval(pg_get_serial_sequence('events', 'id')), NULL, NULL FROM generate_series(1, ${})",
        in_list(ids.len()),
        ids.len() + keys.len() + 1
    );
    let mut params = ids;
    params.extend(keys);
    params.push((batch.len() as i64).into());
    let (mut found, mut rows, mut reserved) = (HashMap::new(), HashMap::new(), Vec::new());
    for row in db.query(&sql, &params)? {
        match (row[0].int(), row[1].int()) {
            (Some(0), Some(id)) => {
                if let (Some(reports), Some(token_hash)) = (row[2].int(), row[3].string()) {
                    rows.insert(id, (reports, token_hash));
                }
            }
            (Some(1), Some(id)) => {
                if let Some(key) = row[3].string() {
                    found.insert(key, (id, row[2].int()));
                }
            }
            (Some(2), Some(id)) => reserved.push(id),
            _ => {}
        }
    }
    // Taken from the end: the lowest id first.
    reserved.sort_unstable_by(|a, b| b.cmp(a));
    Ok((found, rows, EventIds { reserved, next: None }))
}

type StoredKeys = HashMap<String, (i64, Option<i64>)>;
type ClusterRows = HashMap<i64, (i64, String)>;

/// The batch's clusters that `cache` holds, in id order (the order their rows are locked in).
fn cached_ids(batch: &[Accepted], cache: &WorkCache) -> Vec<Val> {
    let mut ids: Vec<i64> = batch.iter().map(|a| a.cluster_id).filter(|id| cache.clusters.contains_key(id)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(Val::from).collect()
}

/// The batch's keys that are already stored: their report and event ids.
fn stored_keys(db: &mut dyn Db, batch: &[Accepted]) -> Result<HashMap<String, (i64, Option<i64>)>> {
    let mut found = HashMap::new();
    let keys: Vec<Val> = batch.iter().map(|a| a.report.idempotency_key.as_str().into()).collect();
    for chunk in keys.chunks(IN_CHUNK) {
        let list = in_list(chunk.len());
        let sql = format!("SELECT idem_key, id, event_id FROM reports WHERE idem_key IN ({list})");
        for row in db.query(&sql, &padded(chunk))? {
            if let (Some(key), Some(id)) = (row[0].string(), row[1].int()) {
                found.insert(key, (id, row[2].int()));
            }
        }
    }
    Ok(found)
}

/// The report count and token hash of the batch's cached clusters, their rows locked
/// (PostgreSQL, as `load` does).
fn cached_rows(db: &mut dyn Db, batch: &[Accepted], cache: &WorkCache) -> Result<HashMap<i64, (i64, String)>> {
    let ids = cached_ids(batch, cache);
    let lock = if db.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
    let mut rows = HashMap::new();
    for chunk in ids.chunks(IN_CHUNK) {
        let list = in_list(chunk.len());
        let sql = format!("SELECT id, reports, token_hash FROM clusters WHERE id IN ({list}) ORDER BY id{lock}");
        for row in db.query(&sql, &padded(chunk))? {
            if let (Some(id), Some(reports), Some(token_hash)) = (row[0].int(), row[1].int(), row[2].string()) {
                rows.insert(id, (reports, token_hash));
            }
        }
    }
    Ok(rows)
}

/// A cluster's work state: the cached one if the row's report count (read by `cached_rows`) is
/// still the one it had (nothing else stored a report for it since), else read from the database.
fn load_cached(
    db: &mut dyn Db,
    cluster_id: i64,
    cache: &mut WorkCache,
    rows: &HashMap<i64, (i64, String)>,
) -> Result<Work> {
    let Some(cached) = cache.clusters.get(&cluster_id) else { return load(db, cluster_id) };
    match rows.get(&cluster_id) {
        Some((reports, token_hash)) if *reports == cached.summary.reports => {
            // A rotation does not count as a report: the token is always the row's.
            Ok(Work { token_hash: token_hash.clone(), ..cached.clone() })
        }
        _ => {
            cache.clusters.remove(&cluster_id);
            load(db, cluster_id)
        }
    }
}

fn load(db: &mut dyn Db, cluster_id: i64) -> Result<Work> {
    // PostgreSQL: lock the row, so that a second console on the same database cannot interleave.
    let lock = if db.dialect() == Dialect::Postgres { " FOR UPDATE" } else { "" };
    let sql = format!(
        "SELECT {CLUSTER_COLS}, derive_cursor_us, derive_placement, token_hash FROM clusters WHERE id = $1{lock}"
    );
    let row = db.query_one(&sql, &[cluster_id.into()])?.with_context(|| format!("no cluster with id {cluster_id}"))?;
    let n = row.len();
    let summary = cluster_from_row(&row);
    let cursor_us = row[n - 3].int();
    let placement = serde_json::from_str(row[n - 2].text().unwrap_or("{}")).unwrap_or_default();
    let token_hash = row[n - 1].string().unwrap_or_default();
    let open = open_incidents(db, cluster_id)?;
    Ok(Work { summary, state: DeriveState { open, placement }, cursor_us, token_hash })
}

fn open_incidents(db: &mut dyn Db, cluster_id: i64) -> Result<Vec<Incident>> {
    let sql = format!(
        "SELECT {INCIDENT_COLS} FROM incidents WHERE cluster_id = $1 AND recovered_us IS NULL ORDER BY detected_us, id"
    );
    Ok(db.query(&sql, &[cluster_id.into()])?.iter().map(incident_from_row).collect())
}

/// Ids for a batch's new events, taken before their rows are written: an event's incident is
/// derived first and its row written once with it (an UPDATE of the new row wrote a second
/// version of it, with new entries in each of its indexes, on PostgreSQL).
#[derive(Default)]
struct EventIds {
    /// PostgreSQL: ids reserved from the sequence, the next last.
    reserved: Vec<i64>,
    /// SQLite: the next id.
    next: Option<i64>,
}

impl EventIds {
    /// The next event id; `want`, how many the rest of the batch may need.
    fn take(&mut self, db: &mut dyn Db, want: usize) -> Result<i64> {
        if db.dialect() == Dialect::Sqlite {
            // The batch's transaction holds SQLite's write lock: nobody else takes ids meanwhile.
            let next = match self.next {
                Some(n) => n,
                None => db
                    .query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM events", &[])?
                    .and_then(|r| r[0].int())
                    .context("no event id")?,
            };
            self.next = Some(next + 1);
            return Ok(next);
        }
        if self.reserved.is_empty() {
            let rows = db.query(
                "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, $1)",
                &[(want.max(1) as i64).into()],
            )?;
            self.reserved = rows.iter().rev().filter_map(|r| r[0].int()).collect();
        }
        self.reserved.pop().context("no event id")
    }
}

fn ingest_one(db: &mut dyn Db, work: &mut Work, acc: &Accepted, ids: &mut EventIds, want: usize) -> Result<Stored> {
    let r = &acc.report;
    // A replay was found by its key before (`stored_keys`). The report row is written once,
    // with its event (rewriting it would rewrite its body: in SQLite, its overflow pages).
    let t = acc.time_us;
    let (event_id, report_id, merged) = match same_event(db, acc)? {
        Some((event_id, event_time, reporters)) => {
            let reporters = add_reporter(&reporters, &r.reporter.node);
            db.exec(
                "UPDATE events SET reporters = $2, report_count = report_count + 1, time_us = $3 WHERE id = $1",
                &[event_id.into(), reporters.into(), t.min(event_time).into()],
            )?;
            let report_id = insert_report(db, acc, event_id)?;
            if t < event_time {
                // The merged event moved earlier: its effects are re-derived from there.
                replay(db, work, t)?;
            }
            (event_id, report_id, true)
        }
        None => {
            // No `events.primary_report_id` (nothing reads it: an event's reports are the rows
            // with its `event_id`, the first the lowest id): one UPDATE of the new row less.
            let event_id = ids.take(db, want)?;
            let facts = acc.facts(event_id);
            // In order: its derivation step first, so that its row is written with its incident.
            let step = work.cursor_us.is_none_or(|c| t >= c).then(|| work.state.step(&facts));
            let incident = step.as_ref().and_then(|s| s.incident);
            let changed = step.as_ref().map_or(&[][..], |s| &s.changed[..]);
            let (report_id, upserted) = insert_event_and_report(db, acc, event_id, incident, changed)?;
            match step {
                Some(step) => {
                    apply_step(db, work, &facts, &step, upserted)?;
                    work.cursor_us = Some(t);
                }
                None => replay(db, work, t)?,
            }
            (event_id, report_id, false)
        }
    };
    summarise(work, acc, report_id, event_id, merged);
    Ok(Stored::New { report_id, event_id, merged })
}

const REPORT_INSERT: &str = "INSERT INTO reports (cluster_id, idem_key, reporter, received_us, event_time_us, \
     clock_ahead_ms, snapshot_us, snapshot_error, snapshot_summary, body, event_id)";

/// The report row's values but its event id (10 of them).
fn report_values(acc: &Accepted) -> Vec<Val> {
    let r = &acc.report;
    let snapshot_json = acc.snapshot.as_ref().map(|s| serde_json::to_string(s).expect("serialisable"));
    vec![
        acc.cluster_id.into(),
        r.idempotency_key.as_str().into(),
        r.reporter.node.as_str().into(),
        acc.received_us.into(),
        r.event_time_us().into(),
        acc.clock_ahead_ms.into(),
        acc.snapshot_us().into(),
        r.snapshot.error.clone().into(),
        snapshot_json.into(),
        Val::Blob(acc.body.clone()),
    ]
}

/// The report's row, for its event; its id.
fn insert_report(db: &mut dyn Db, acc: &Accepted, event_id: i64) -> Result<i64> {
    let mut values = report_values(acc);
    values.push(event_id.into());
    let inserted = db.query_one(
        &format!(
            "{REPORT_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (idem_key) DO NOTHING RETURNING id"
        ),
        &values,
    )?;
    // Only a second console on the same database could have stored the key since the check:
    // the batch is rolled back and the sender's retry is then answered as a replay.
    let row = inserted.context("the report's key was stored concurrently")?;
    row[0].int().context("no report id")
}

/// Incidents a new event's statement upserts with it at most (PostgreSQL; more, rare, are
/// upserted one by one): each count is a statement of its own in a writer's cache.
const FOLDED_INCIDENTS: usize = 4;

/// A new event's row and its first report's: the report's id, and whether the incidents its
/// derivation step `changed` were upserted with them. PostgreSQL: one statement (round trips
/// and their server work less per report); SQLite has no INSERT in a WITH.
fn insert_event_and_report(
    db: &mut dyn Db,
    acc: &Accepted,
    event_id: i64,
    incident: Option<i64>,
    changed: &[Incident],
) -> Result<(i64, bool)> {
    if db.dialect() == Dialect::Sqlite {
        db.exec(EVENT_INSERT, &event_values(acc, event_id, incident))?;
        return Ok((insert_report(db, acc, event_id)?, false));
    }
    // One statement may not change a row twice: distinct incidents only (a step's are).
    let mut distinct: Vec<i64> = changed.iter().map(|i| i.id).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let fold = changed.len() <= FOLDED_INCIDENTS && distinct.len() == changed.len();
    let mut values = event_values(acc, event_id, incident);
    let mut sql = format!("WITH e AS ({EVENT_INSERT})");
    if fold {
        for (k, i) in changed.iter().enumerate() {
            sql.push_str(&format!(", i{k} AS ({})", incident_upsert(values.len() + 1)));
            values.extend(incident_values(acc.cluster_id, i));
        }
    }
    let first = values.len() + 1;
    sql.push_str(&format!(
        " {REPORT_INSERT} VALUES ({}) ON CONFLICT (idem_key) DO NOTHING RETURNING id",
        (first..first + 11).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
    ));
    values.extend(report_values(acc));
    values.push(event_id.into());
    let inserted = db.query_one(&sql, &values)?;
    // As in `insert_report`: the event's row goes with the batch's rollback.
    let row = inserted.context("the report's key was stored concurrently")?;
    Ok((row[0].int().context("no report id")?, fold))
}

/// The stored event this report is another node's account of (docs/reports.md, de-duplication).
fn same_event(db: &mut dyn Db, acc: &Accepted) -> Result<Option<(i64, i64, String)>> {
    let r = &acc.report;
    let t = acc.time_us;
    let a = &r.event.alert;
    let cluster = acc.cluster_id;
    let rows = match r.event.kind.as_str() {
        "fencing" => match r.event.fencing.as_ref().and_then(|f| f.reference.clone()) {
            Some(reference) => db.query(
                "SELECT id, time_us, reporters FROM events WHERE cluster_id = $1 AND time_us BETWEEN $2 AND $3 \
                 AND kind = 'fencing' AND fence_ref = $4 ORDER BY id LIMIT 1",
                &[cluster.into(), (t - FENCE_REF_WINDOW_US).into(), (t + FENCE_REF_WINDOW_US).into(), reference.into()],
            )?,
            None => db.query(
                "SELECT id, time_us, reporters FROM events WHERE cluster_id = $1 AND time_us BETWEEN $2 AND $3 \
                 AND kind = 'fencing' AND fence_ref IS NULL AND node = $4 AND fence_action = $5 AND rc = $6 \
                 ORDER BY ABS(time_us - $7), id LIMIT 1",
                &[
                    cluster.into(),
                    (t - MERGE_WINDOW_US).into(),
                    (t + MERGE_WINDOW_US).into(),
                    a.node.clone().into(),
                    r.event.fencing.as_ref().map(|f| f.action.clone()).into(),
                    a.rc.into(),
                    t.into(),
                ],
            )?,
        },
        "node" => {
            let candidates = db.query(
                "SELECT id, time_us, reporters FROM events WHERE cluster_id = $1 AND time_us BETWEEN $2 AND $3 \
                 AND kind = 'node' AND node = $4 AND descr = $5 ORDER BY ABS(time_us - $6), id LIMIT 4",
                &[
                    cluster.into(),
                    (t - MERGE_WINDOW_US).into(),
                    (t + MERGE_WINDOW_US).into(),
                    a.node.clone().into(),
                    a.desc.clone().into(),
                    t.into(),
                ],
            )?;
            // Not across a change of state this reporter saw in between (a flapping node).
            let mut found = Vec::new();
            for c in candidates {
                let other = c[1].int().unwrap_or(t);
                let flapped = db.query_one(
                    "SELECT id FROM events WHERE cluster_id = $1 AND time_us BETWEEN $2 AND $3 AND kind = 'node' \
                     AND node = $4 AND descr <> $5 AND reporters LIKE $6 LIMIT 1",
                    &[
                        cluster.into(),
                        t.min(other).into(),
                        t.max(other).into(),
                        a.node.clone().into(),
                        a.desc.clone().into(),
                        format!("%,{},%", like_escape(&r.reporter.node)).into(),
                    ],
                )?;
                if flapped.is_none() {
                    found.push(c);
                    break;
                }
            }
            found
        }
        _ => Vec::new(),
    };
    Ok(rows
        .into_iter()
        .next()
        .map(|c| (c[0].int().unwrap_or(0), c[1].int().unwrap_or(t), c[2].string().unwrap_or_default())))
}

fn like_escape(s: &str) -> String {
    // Node names are host names: no % or _ worth matching literally; keep them from matching all.
    s.replace(['%', '_'], "?")
}

/// Reporters are stored as `,a,b,` so that a LIKE '%,a,%' finds one exactly.
fn add_reporter(list: &str, node: &str) -> String {
    if list.contains(&format!(",{node},")) {
        list.to_string()
    } else if list.is_empty() {
        format!(",{node},")
    } else {
        format!("{list}{node},")
    }
}

const EVENT_INSERT: &str = "INSERT INTO events (id, incident_id, cluster_id, time_us, kind, category, severity, \
     summary, node, rsc, task, interval_ms, rc, target_rc, status, descr, fence_ref, fence_action, reporters, \
     report_count, placement, time_flag) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
     $16, $17, $18, $19, 1, $20, $21)";

/// The event row's values (21 of them).
fn event_values(acc: &Accepted, event_id: i64, incident: Option<i64>) -> Vec<Val> {
    let r = &acc.report;
    let e = &r.event;
    let a = &e.alert;
    let placement = acc.snapshot.as_ref().map(|s| serde_json::to_string(&s.placement).expect("serialisable"));
    vec![
        event_id.into(),
        incident.into(),
        acc.cluster_id.into(),
        acc.time_us.into(),
        e.kind.as_str().into(),
        e.category.as_str().into(),
        r.severity().as_str().into(),
        e.summary.as_str().into(),
        a.node.clone().into(),
        a.rsc.clone().into(),
        a.task.clone().into(),
        a.interval.into(),
        a.rc.into(),
        a.target_rc.into(),
        a.status.into(),
        a.desc.clone().into(),
        e.fencing.as_ref().and_then(|f| f.reference.clone()).into(),
        e.fencing.as_ref().map(|f| f.action.clone()).into(),
        add_reporter("", &r.reporter.node).into(),
        placement.into(),
        acc.clock_ahead_ms.map(|_| "clock_ahead").into(),
    ]
}

impl Accepted {
    /// What incident derivation needs of this report's event, stored as `event_id`.
    pub fn facts(&self, event_id: i64) -> EventFacts {
        let r = &self.report;
        let a = &r.event.alert;
        EventFacts {
            id: event_id,
            time_us: self.time_us,
            category: Some(r.category()),
            node: a.node.clone(),
            rsc: a.rsc.as_deref().map(|s| base_id(s).to_string()),
            task: a.task.clone(),
            interval_ms: a.interval,
            target_rc: a.target_rc,
            summary: r.event.summary.clone(),
            placement: self.snapshot.as_ref().map(|s| s.placement.clone()),
        }
    }
}

/// The next event in time: its derivation step's changes saved (the event's own incident is in
/// its row already).
/// `upserted`: the changed incidents were written with the event already.
fn apply_step(db: &mut dyn Db, work: &mut Work, facts: &EventFacts, step: &StepResult, upserted: bool) -> Result<()> {
    for incident in &step.changed {
        if !upserted {
            upsert_incident(db, work.summary.id, incident)?;
        }
        if incident.detected_us == facts.time_us && incident.id == facts.id {
            work.summary.last_incident_us = Some(work.summary.last_incident_us.unwrap_or(i64::MIN).max(facts.time_us));
        }
        if let Some(mttr) = incident.mttr_ms() {
            work.summary.recent_mttr.push((incident.recovered_us.unwrap_or(facts.time_us), mttr));
            work.summary.recent_mttr.sort_unstable();
            let excess = work.summary.recent_mttr.len().saturating_sub(RECENT_MTTR);
            work.summary.recent_mttr.drain(..excess);
        }
    }
    set_open(work);
    Ok(())
}

/// An event earlier than the last one derived: derive again from the latest moment before it at
/// which no incident was open, so that the result is the same as if events had come in order.
fn replay(db: &mut dyn Db, work: &mut Work, from_us: i64) -> Result<()> {
    let cluster = work.summary.id;
    let mut q = from_us;
    loop {
        let row = db.query_one(
            "SELECT MIN(detected_us) FROM incidents WHERE cluster_id = $1 AND detected_us < $2 \
             AND (recovered_us IS NULL OR recovered_us > $2)",
            &[cluster.into(), q.into()],
        )?;
        match row.and_then(|r| r[0].int()) {
            Some(earlier) => q = earlier,
            None => break,
        }
    }
    let seed = db.query_one(
        "SELECT placement FROM events WHERE cluster_id = $1 AND time_us < $2 AND placement IS NOT NULL \
         ORDER BY time_us DESC, id DESC LIMIT 1",
        &[cluster.into(), q.into()],
    )?;
    let placement = seed.and_then(|r| r[0].text().and_then(|p| serde_json::from_str(p).ok())).unwrap_or_default();
    db.exec(
        "UPDATE events SET incident_id = NULL WHERE incident_id IN \
         (SELECT id FROM incidents WHERE cluster_id = $1 AND detected_us >= $2)",
        &[cluster.into(), q.into()],
    )?;
    db.exec("DELETE FROM incidents WHERE cluster_id = $1 AND detected_us >= $2", &[cluster.into(), q.into()])?;
    let rows = db.query(
        "SELECT id, time_us, category, node, rsc, task, interval_ms, target_rc, summary, placement FROM events \
         WHERE cluster_id = $1 AND time_us >= $2 ORDER BY time_us, id",
        &[cluster.into(), q.into()],
    )?;
    let events: Vec<EventFacts> = rows.iter().map(facts_from_row).collect();
    let mut state = DeriveState { open: Vec::new(), placement };
    let (incidents, attached) = derive::derive(&mut state, &events);
    for incident in &incidents {
        upsert_incident(db, cluster, incident)?;
    }
    for (event, incident) in attached {
        db.exec("UPDATE events SET incident_id = $2 WHERE id = $1", &[event.into(), incident.into()])?;
    }
    work.state = state;
    work.cursor_us = events.last().map(|e| e.time_us).max(work.cursor_us);
    // The summary's incident figures, from the table (the replay may have changed any of them).
    let rows = db.query(
        "SELECT recovered_us, mttr_ms FROM incidents WHERE cluster_id = $1 AND mttr_ms IS NOT NULL \
         ORDER BY recovered_us DESC LIMIT $2",
        &[cluster.into(), (RECENT_MTTR as i64).into()],
    )?;
    let mut recent: Vec<(i64, i64)> = rows.iter().filter_map(|r| Some((r[0].int()?, r[1].int()?))).collect();
    recent.reverse();
    work.summary.recent_mttr = recent;
    let last = db.query_one("SELECT MAX(detected_us) FROM incidents WHERE cluster_id = $1", &[cluster.into()])?;
    work.summary.last_incident_us = last.and_then(|r| r[0].int());
    set_open(work);
    Ok(())
}

fn facts_from_row(r: &Row) -> EventFacts {
    EventFacts {
        id: r[0].int().unwrap_or(0),
        time_us: r[1].int().unwrap_or(0),
        category: r[2].text().map(crate::console::report::Category::parse),
        node: r[3].string(),
        rsc: r[4].text().map(|s| base_id(s).to_string()),
        task: r[5].string(),
        interval_ms: r[6].int(),
        target_rc: r[7].int(),
        summary: r[8].string().unwrap_or_default(),
        placement: r[9].text().and_then(|p| serde_json::from_str(p).ok()),
    }
}

fn set_open(work: &mut Work) {
    let open = &work.state.open;
    work.summary.open_incidents = open.len() as i64;
    work.summary.open_down = open.iter().filter(|i| !i.pending.is_empty()).count() as i64;
    // The tile names the oldest incident with a service down, else the oldest.
    let first = open
        .iter()
        .filter(|i| !i.pending.is_empty())
        .min_by_key(|i| (i.detected_us, i.id))
        .or_else(|| open.iter().min_by_key(|i| (i.detected_us, i.id)));
    work.summary.open_since_us = first.map(|i| i.detected_us);
    work.summary.open_summary = first.map(|i| i.summary.clone());
}

fn upsert_incident(db: &mut dyn Db, cluster_id: i64, i: &Incident) -> Result<()> {
    db.exec(&incident_upsert(1), &incident_values(cluster_id, i))?;
    Ok(())
}

/// An incident's upsert, its 15 parameters numbered from `$first`.
fn incident_upsert(first: usize) -> String {
    let params = (first..first + 15).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO incidents (id, cluster_id, kind, rsc, node, detected_us, recovered_us, outcome, mttr_ms, \
         recovered_on, affected, pending, fence_ok, fence_failed, summary) VALUES ({params}) ON CONFLICT (id) DO \
         UPDATE SET recovered_us = excluded.recovered_us, outcome = excluded.outcome, mttr_ms = excluded.mttr_ms, \
         recovered_on = excluded.recovered_on, affected = excluded.affected, pending = excluded.pending, \
         fence_ok = excluded.fence_ok, fence_failed = excluded.fence_failed"
    )
}

fn incident_values(cluster_id: i64, i: &Incident) -> Vec<Val> {
    vec![
        i.id.into(),
        cluster_id.into(),
        i.kind.as_str().into(),
        i.rsc.clone().into(),
        i.node.as_str().into(),
        i.detected_us.into(),
        i.recovered_us.into(),
        i.outcome.map(|o| o.as_str()).into(),
        i.mttr_ms().into(),
        json(&i.recovered_on).into(),
        json(&i.affected).into(),
        json(&i.pending).into(),
        i.fence_ok.into(),
        i.fence_failed.into(),
        i.summary.as_str().into(),
    ]
}

/// JSON text of a list column.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialisable")
}

/// The cluster row's summary after a new report.
fn summarise(work: &mut Work, acc: &Accepted, report_id: i64, event_id: i64, merged: bool) {
    let s = &mut work.summary;
    let r = &acc.report;
    s.reports += 1;
    s.cluster_name = r.cluster.name.clone();
    s.id_source = Some(r.cluster.id_source.clone());
    s.last_report_us = Some(s.last_report_us.unwrap_or(i64::MIN).max(acc.received_us));
    s.first_event_us = Some(s.first_event_us.unwrap_or(i64::MAX).min(acc.time_us));
    if !merged {
        s.events += 1;
        if s.last_event.as_ref().is_none_or(|e| acc.time_us >= e.time_us) {
            s.last_event = Some(LastEvent {
                id: event_id,
                time_us: acc.time_us,
                summary: r.event.summary.clone(),
                severity: Severity::parse(&r.event.severity).as_str().to_string(),
            });
        }
    }
    // The newest snapshot wins; a report without one (crm_mon timed out) keeps the older
    // summary and says why it has none.
    let taken = acc.snapshot_us();
    if s.snapshot_us.is_none_or(|t| taken > t) {
        if acc.snapshot.is_some() {
            s.snapshot_us = Some(taken);
            s.snapshot_report_id = Some(report_id);
            s.snapshot = acc.snapshot.clone();
            s.snapshot_error = None;
        } else {
            s.snapshot_error = r.snapshot.error.clone().or_else(|| Some("the snapshot does not parse".into()));
        }
    }
    if let Some(ms) = acc.clock_ahead_ms {
        s.clock_ahead.reports += 1;
        s.clock_ahead.last_us = Some(acc.received_us);
        s.clock_ahead.last_ms = Some(ms);
        s.clock_ahead.last_node = Some(r.reporter.node.clone());
    }
}

/// The columns `save` writes, in `cluster_values`' order after the id, with their types.
const SAVED: [(&str, &str); 26] = [
    ("cluster_name", "text"),
    ("id_source", "text"),
    ("reports", "bigint"),
    ("events", "bigint"),
    ("first_event_us", "bigint"),
    ("last_report_us", "bigint"),
    ("last_event_id", "bigint"),
    ("last_event_us", "bigint"),
    ("last_event_summary", "text"),
    ("last_event_severity", "text"),
    ("snapshot_us", "bigint"),
    ("snapshot_report_id", "bigint"),
    ("snapshot_summary", "text"),
    ("snapshot_error", "text"),
    ("open_incidents", "bigint"),
    ("open_since_us", "bigint"),
    ("open_summary", "text"),
    ("last_incident_us", "bigint"),
    ("recent_mttr", "text"),
    ("clock_ahead_reports", "bigint"),
    ("last_clock_ahead_us", "bigint"),
    ("last_clock_ahead_ms", "bigint"),
    ("last_clock_ahead_node", "text"),
    ("derive_cursor_us", "bigint"),
    ("derive_placement", "text"),
    ("open_down", "bigint"),
];

/// Cluster rows one PostgreSQL UPDATE writes at most (each count a statement in a writer's cache).
const SAVED_PER_UPDATE: usize = 8;

/// The batch's cluster rows: on PostgreSQL several in one statement (a round trip each less).
fn save_all(db: &mut dyn Db, works: &[&Work]) -> Result<()> {
    if db.dialect() != Dialect::Postgres {
        return works.iter().try_for_each(|w| save(db, w));
    }
    for chunk in works.chunks(SAVED_PER_UPDATE) {
        if let [one] = chunk {
            save(db, one)?;
            continue;
        }
        let mut values = Vec::with_capacity(chunk.len() * 27);
        let mut rows = Vec::with_capacity(chunk.len());
        for w in chunk {
            let first = values.len() + 1;
            let cells: Vec<String> = std::iter::once("bigint")
                .chain(SAVED.iter().map(|c| c.1))
                .enumerate()
                .map(|(k, ty)| format!("${}::{ty}", first + k))
                .collect();
            rows.push(format!("({})", cells.join(", ")));
            values.extend(cluster_values(w));
        }
        let names: Vec<&str> = SAVED.iter().map(|c| c.0).collect();
        let sets: Vec<String> = names.iter().map(|n| format!("{n} = v.{n}")).collect();
        let sql = format!(
            "UPDATE clusters SET {} FROM (VALUES {}) AS v (id, {}) WHERE clusters.id = v.id",
            sets.join(", "),
            rows.join(", "),
            names.join(", ")
        );
        db.exec(&sql, &values)?;
    }
    Ok(())
}

fn save(db: &mut dyn Db, work: &Work) -> Result<()> {
    db.exec(save_sql(), &cluster_values(work))?;
    Ok(())
}

/// One cluster row's UPDATE, its columns from [`SAVED`] (the id `$1`, then the columns in order):
/// one list for it and `save_all`'s statement, so that they cannot drift apart.
fn save_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let sets: Vec<String> = SAVED.iter().enumerate().map(|(k, (name, _))| format!("{name} = ${}", k + 2)).collect();
        format!("UPDATE clusters SET {} WHERE id = $1", sets.join(", "))
    })
}

/// The cluster row's id and the 26 values `save` writes.
fn cluster_values(work: &Work) -> Vec<Val> {
    let s = &work.summary;
    let last = s.last_event.as_ref();
    vec![
        s.id.into(),
        s.cluster_name.clone().into(),
        s.id_source.clone().into(),
        s.reports.into(),
        s.events.into(),
        s.first_event_us.into(),
        s.last_report_us.into(),
        last.map(|e| e.id).into(),
        last.map(|e| e.time_us).into(),
        last.map(|e| e.summary.clone()).into(),
        last.map(|e| e.severity.clone()).into(),
        s.snapshot_us.into(),
        s.snapshot_report_id.into(),
        s.snapshot.as_ref().map(|x| serde_json::to_string(x).expect("serialisable")).into(),
        s.snapshot_error.clone().into(),
        s.open_incidents.into(),
        s.open_since_us.into(),
        s.open_summary.clone().into(),
        s.last_incident_us.into(),
        serde_json::to_string(&s.recent_mttr).expect("serialisable").into(),
        s.clock_ahead.reports.into(),
        s.clock_ahead.last_us.into(),
        s.clock_ahead.last_ms.into(),
        s.clock_ahead.last_node.clone().into(),
        work.cursor_us.into(),
        serde_json::to_string(&work.state.placement).expect("serialisable").into(),
        s.open_down.into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `save`'s statement, built from `SAVED`, is the one it wrote out by hand before.
    #[test]
    fn a_cluster_rows_update_names_every_saved_column_in_order() {
        assert_eq!(
            save_sql(),
            "UPDATE clusters SET cluster_name = $2, id_source = $3, reports = $4, events = $5, first_event_us = $6, \
             last_report_us = $7, last_event_id = $8, last_event_us = $9, last_event_summary = $10, \
             last_event_severity = $11, snapshot_us = $12, snapshot_report_id = $13, snapshot_summary = $14, \
             snapshot_error = $15, open_incidents = $16, open_since_us = $17, open_summary = $18, \
             last_incident_us = $19, recent_mttr = $20, clock_ahead_reports = $21, last_clock_ahead_us = $22, \
             last_clock_ahead_ms = $23, last_clock_ahead_node = $24, derive_cursor_us = $25, derive_placement = $26, \
             open_down = $27 WHERE id = $1"
        );
    }
}
