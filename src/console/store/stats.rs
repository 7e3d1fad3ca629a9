//! Statistics without re-reading every incident per request. A cluster page compares the cluster
//! with the whole fleet, i.e. every cluster's statistics: read from the database each time, that
//! was two queries per cluster (0.5-1.4 s at 1,000 clusters and 1,000,000 events). What the
//! statistics are computed from (each incident's kind, times and outcome; each fencing event's
//! time and result) is now kept per window and cluster and read again only when the cluster
//! stored a report since: its row's report count moves with every stored report, in the
//! transaction that writes its incidents (only ingest writes them). The statistics themselves are
//! still computed per request, at the request's time, so they are the same as before.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;

use super::db::{Db, Row};
use super::{ClusterSummary, Store};
use crate::console::derive::{IncidentKind, Outcome};
use crate::console::stats::{self, Span, Stats, DAY_US};

/// Above this many clusters to read again, one query over all clusters instead of two each.
const BULK: usize = 32;
/// Windows kept (the pages offer 7, 30, 90 and 365 days; the API any number of days).
const WINDOWS: usize = 6;

/// A cluster as its statistics need it: its row's identity and report count, and the two times
/// the statistics take from the row.
#[derive(Debug, Clone)]
pub struct StatsKey {
    pub id: i64,
    pub name: String,
    pub reports: i64,
    pub created_us: i64,
    pub first_event_us: Option<i64>,
    pub last_incident_us: Option<i64>,
}

impl From<&ClusterSummary> for StatsKey {
    fn from(c: &ClusterSummary) -> StatsKey {
        StatsKey {
            id: c.id,
            name: c.name.clone(),
            reports: c.reports,
            created_us: c.created_us,
            first_event_us: c.first_event_us,
            last_incident_us: c.last_incident_us,
        }
    }
}

/// One cluster's inputs, as read when it had `reports` reports: incidents detected and fencing
/// events at or after `since_us` (the window's start then; a later window starts later).
#[derive(Debug)]
struct Kept {
    reports: i64,
    created_us: i64,
    since_us: i64,
    spans: Vec<Span>,
    /// (time, succeeded) of each fencing event.
    fencing: Vec<(i64, bool)>,
}

/// Per window (days): per cluster id, its inputs; the least recently used window goes first.
#[derive(Default)]
pub(super) struct StatsCache {
    windows: Vec<(i64, u64, HashMap<i64, Arc<Kept>>)>,
    clock: u64,
}

impl StatsCache {
    fn valid(&self, days: i64, key: &StatsKey, since_us: i64) -> Option<Arc<Kept>> {
        let (_, _, map) = self.windows.iter().find(|w| w.0 == days)?;
        map.get(&key.id)
            .filter(|k| k.reports == key.reports && k.created_us == key.created_us && k.since_us <= since_us)
            .cloned()
    }

    fn window(&mut self, days: i64) -> &mut HashMap<i64, Arc<Kept>> {
        self.clock += 1;
        let clock = self.clock;
        let i = match self.windows.iter().position(|w| w.0 == days) {
            Some(i) => i,
            None => {
                if self.windows.len() >= WINDOWS {
                    let oldest = (0..self.windows.len()).min_by_key(|&i| self.windows[i].1).unwrap_or(0);
                    self.windows.swap_remove(oldest);
                }
                self.windows.push((days, clock, HashMap::new()));
                self.windows.len() - 1
            }
        };
        self.windows[i].1 = clock;
        &mut self.windows[i].2
    }
}

impl Store {
    /// A cluster's statistics over the `days` before `now_us`.
    pub fn stats(&self, cluster: &ClusterSummary, days: i64, now_us: i64) -> Result<Stats> {
        let mut all = self.stats_of(&[StatsKey::from(cluster)], days, now_us)?;
        Ok(all.pop().map(|(_, s)| s).unwrap_or_default())
    }

    /// Every registered cluster's statistics over the `days` before `now_us`, by name.
    pub fn fleet_stats(&self, days: i64, now_us: i64) -> Result<Vec<(String, Stats)>> {
        let keys = self.read(|db| {
            let rows = db.query(
                "SELECT id, name, reports, created_us, first_event_us, last_incident_us FROM clusters ORDER BY name",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| StatsKey {
                    id: r[0].int().unwrap_or(0),
                    name: r[1].string().unwrap_or_default(),
                    reports: r[2].int().unwrap_or(0),
                    created_us: r[3].int().unwrap_or(0),
                    first_event_us: r[4].int(),
                    last_incident_us: r[5].int(),
                })
                .collect::<Vec<_>>())
        })?;
        self.stats_of(&keys, days, now_us)
    }

    /// The statistics of `keys` (read from their rows before this call), reading again the
    /// inputs of those whose kept ones are older than their row.
    pub fn stats_of(&self, keys: &[StatsKey], days: i64, now_us: i64) -> Result<Vec<(String, Stats)>> {
        let since = now_us - days * DAY_US;
        let mut kept: Vec<Option<Arc<Kept>>> = {
            let cache = self.stats_cache.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter().map(|k| cache.valid(days, k, since)).collect()
        };
        let stale: Vec<&StatsKey> = keys.iter().zip(&kept).filter(|(_, k)| k.is_none()).map(|(k, _)| k).collect();
        if !stale.is_empty() {
            let mut fresh = self.read(|db| {
                if stale.len() > BULK {
                    read_all(db, since)
                } else {
                    stale.iter().map(|k| Ok((k.id, read_one(db, k.id, since)?))).collect()
                }
            })?;
            let mut cache = self.stats_cache.lock().unwrap_or_else(|e| e.into_inner());
            let window = cache.window(days);
            for (key, slot) in keys.iter().zip(kept.iter_mut()).filter(|(_, s)| s.is_none()) {
                let (spans, fencing) = fresh.remove(&key.id).unwrap_or_default();
                // Kept under the row's count read before the inputs: if a report came between
                // the two, the next request finds the count moved and reads again.
                let k = Arc::new(Kept {
                    reports: key.reports,
                    created_us: key.created_us,
                    since_us: since,
                    spans,
                    fencing,
                });
                window.insert(key.id, k.clone());
                *slot = Some(k);
            }
        }
        Ok(keys.iter().zip(kept).map(|(key, k)| (key.name.clone(), compute(key, k.as_deref(), days, now_us))).collect())
    }
}

fn compute(key: &StatsKey, kept: Option<&Kept>, days: i64, now_us: i64) -> Stats {
    let since = now_us - days * DAY_US;
    let spans: Vec<Span> =
        kept.map(|k| k.spans.iter().filter(|s| s.detected_us >= since).copied().collect()).unwrap_or_default();
    let fencing = kept.map_or((0, 0), |k| {
        k.fencing.iter().filter(|f| f.0 >= since).fold((0u32, 0u32), |(ok, failed), f| {
            if f.1 {
                (ok + 1, failed)
            } else {
                (ok, failed + 1)
            }
        })
    });
    stats::compute(&stats::Inputs {
        now_us,
        window_days: days,
        first_seen_us: key.first_event_us,
        incidents: &spans,
        last_incident_us: key.last_incident_us,
        fencing,
    })
}

type Inputs = (Vec<Span>, Vec<(i64, bool)>);

const SPAN_COLS: &str = "kind, detected_us, recovered_us, outcome";

fn span(r: &Row, at: usize) -> Span {
    Span {
        kind: r[at].text().and_then(IncidentKind::parse).unwrap_or(IncidentKind::Resource),
        detected_us: r[at + 1].int().unwrap_or(0),
        recovered_us: r[at + 2].int(),
        outcome: r[at + 3].text().and_then(Outcome::parse),
    }
}

fn fencing(r: &Row, at: usize) -> (i64, bool) {
    (r[at].int().unwrap_or(0), r[at + 1].text() == Some("fencing_succeeded"))
}

/// One cluster's inputs since `since_us` (the indexes on incidents and on fencing events).
fn read_one(db: &mut dyn Db, cluster_id: i64, since_us: i64) -> Result<Inputs> {
    let spans = db.query(
        &format!("SELECT {SPAN_COLS} FROM incidents WHERE cluster_id = $1 AND detected_us >= $2"),
        &[cluster_id.into(), since_us.into()],
    )?;
    let fence = db.query(
        "SELECT time_us, category FROM events WHERE cluster_id = $1 AND kind = 'fencing' AND time_us >= $2",
        &[cluster_id.into(), since_us.into()],
    )?;
    Ok((spans.iter().map(|r| span(r, 0)).collect(), fence.iter().map(|r| fencing(r, 0)).collect()))
}

/// Every cluster's inputs since `since_us`, in two queries.
fn read_all(db: &mut dyn Db, since_us: i64) -> Result<HashMap<i64, Inputs>> {
    let mut all: HashMap<i64, Inputs> = HashMap::new();
    for r in
        db.query(&format!("SELECT cluster_id, {SPAN_COLS} FROM incidents WHERE detected_us >= $1"), &[since_us.into()])?
    {
        all.entry(r[0].int().unwrap_or(0)).or_default().0.push(span(&r, 1));
    }
    for r in db.query(
        "SELECT cluster_id, time_us, category FROM events WHERE kind = 'fencing' AND time_us >= $1",
        &[since_us.into()],
    )? {
        all.entry(r[0].int().unwrap_or(0)).or_default().1.push(fencing(&r, 1));
    }
    Ok(all)
}
