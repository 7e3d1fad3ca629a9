//! What the pages and the API read. The fleet reads `clusters` only; a cluster's page reads its
//! incidents and a page of its events through the (cluster, time) indexes.

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::Serialize;

use super::db::{Db, Row, Val};
use super::{ClockAhead, ClusterSummary, FleetStamp, LastEvent, Store};
use crate::console::derive::{Incident, IncidentKind, Outcome};

pub const CLUSTER_COLS: &str = "id, name, cluster_name, id_source, created_us, reports, events, first_event_us, \
    last_report_us, last_event_id, last_event_us, last_event_summary, last_event_severity, snapshot_us, \
    snapshot_report_id, snapshot_summary, snapshot_error, open_incidents, open_since_us, open_summary, \
    last_incident_us, recent_mttr, clock_ahead_reports, last_clock_ahead_us, last_clock_ahead_ms, \
    last_clock_ahead_node, open_down";

pub fn cluster_from_row(r: &Row) -> ClusterSummary {
    let last_event = r[9].int().map(|id| LastEvent {
        id,
        time_us: r[10].int().unwrap_or(0),
        summary: r[11].string().unwrap_or_default(),
        severity: r[12].string().unwrap_or_default(),
    });
    ClusterSummary {
        id: r[0].int().unwrap_or(0),
        name: r[1].string().unwrap_or_default(),
        cluster_name: r[2].string(),
        id_source: r[3].string(),
        created_us: r[4].int().unwrap_or(0),
        reports: r[5].int().unwrap_or(0),
        events: r[6].int().unwrap_or(0),
        first_event_us: r[7].int(),
        last_report_us: r[8].int(),
        last_event,
        snapshot_us: r[13].int(),
        snapshot_report_id: r[14].int(),
        snapshot: r[15].text().and_then(|s| serde_json::from_str(s).ok()),
        snapshot_error: r[16].string(),
        open_incidents: r[17].int().unwrap_or(0),
        open_since_us: r[18].int(),
        open_summary: r[19].string(),
        last_incident_us: r[20].int(),
        recent_mttr: r[21].text().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default(),
        clock_ahead: ClockAhead {
            reports: r[22].int().unwrap_or(0),
            last_us: r[23].int(),
            last_ms: r[24].int(),
            last_node: r[25].string(),
        },
        open_down: r[26].int().unwrap_or(0),
    }
}

pub const INCIDENT_COLS: &str = "id, kind, rsc, node, detected_us, recovered_us, outcome, recovered_on, affected, \
    pending, fence_ok, fence_failed, summary";

pub fn incident_from_row(r: &Row) -> Incident {
    Incident {
        id: r[0].int().unwrap_or(0),
        kind: r[1].text().and_then(IncidentKind::parse).unwrap_or(IncidentKind::Resource),
        rsc: r[2].string(),
        node: r[3].string().unwrap_or_default(),
        detected_us: r[4].int().unwrap_or(0),
        recovered_us: r[5].int(),
        outcome: r[6].text().and_then(Outcome::parse),
        recovered_on: list(&r[7]),
        affected: list(&r[8]),
        pending: list(&r[9]),
        fence_ok: r[10].int().unwrap_or(0) as u32,
        fence_failed: r[11].int().unwrap_or(0) as u32,
        summary: r[12].string().unwrap_or_default(),
    }
}

/// A JSON list column.
fn list<T: serde::de::DeserializeOwned + Default>(v: &Val) -> T {
    v.text().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default()
}

const EVENT_COLS: &str = "id, cluster_id, time_us, kind, category, severity, summary, node, rsc, task, interval_ms, \
    rc, target_rc, status, descr, fence_ref, fence_action, reporters, report_count, incident_id, time_flag";

/// One event as pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub id: i64,
    pub cluster_id: i64,
    pub time_us: i64,
    pub kind: String,
    pub category: String,
    pub severity: String,
    pub summary: String,
    pub node: Option<String>,
    pub rsc: Option<String>,
    pub task: Option<String>,
    pub interval_ms: Option<i64>,
    pub rc: Option<i64>,
    pub target_rc: Option<i64>,
    pub status: Option<i64>,
    pub desc: Option<String>,
    pub fence_ref: Option<String>,
    pub fence_action: Option<String>,
    /// The nodes that reported it (both, for node and fencing events seen by both).
    pub reporters: Vec<String>,
    pub report_count: i64,
    pub incident_id: Option<i64>,
    /// `clock_ahead`: the reporter's clock was ahead of the console's; `time_us` is the arrival time.
    pub time_flag: Option<String>,
}

fn event_from_row(r: &Row) -> EventRow {
    EventRow {
        id: r[0].int().unwrap_or(0),
        cluster_id: r[1].int().unwrap_or(0),
        time_us: r[2].int().unwrap_or(0),
        kind: r[3].string().unwrap_or_default(),
        category: r[4].string().unwrap_or_default(),
        severity: r[5].string().unwrap_or_default(),
        summary: r[6].string().unwrap_or_default(),
        node: r[7].string(),
        rsc: r[8].string(),
        task: r[9].string(),
        interval_ms: r[10].int(),
        rc: r[11].int(),
        target_rc: r[12].int(),
        status: r[13].int(),
        desc: r[14].string(),
        fence_ref: r[15].string(),
        fence_action: r[16].string(),
        reporters: r[17].text().unwrap_or("").split(',').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        report_count: r[18].int().unwrap_or(0),
        incident_id: r[19].int(),
        time_flag: r[20].string(),
    }
}

/// One received report (without its body).
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub id: i64,
    pub cluster_id: i64,
    pub event_id: Option<i64>,
    pub idempotency_key: String,
    pub reporter: String,
    pub received_us: i64,
    /// The time the report itself gives its event.
    pub event_time_us: i64,
    pub clock_ahead_ms: Option<i64>,
    pub snapshot_us: Option<i64>,
    pub snapshot_error: Option<String>,
    pub has_snapshot_summary: bool,
}

const REPORT_COLS: &str =
    "id, cluster_id, event_id, idem_key, reporter, received_us, event_time_us, clock_ahead_ms, snapshot_us, \
     snapshot_error, snapshot_summary IS NOT NULL";

fn report_from_row(r: &Row) -> ReportRow {
    ReportRow {
        id: r[0].int().unwrap_or(0),
        cluster_id: r[1].int().unwrap_or(0),
        event_id: r[2].int(),
        idempotency_key: r[3].string().unwrap_or_default(),
        reporter: r[4].string().unwrap_or_default(),
        received_us: r[5].int().unwrap_or(0),
        event_time_us: r[6].int().unwrap_or(0),
        clock_ahead_ms: r[7].int(),
        snapshot_us: r[8].int(),
        snapshot_error: r[9].string(),
        has_snapshot_summary: r[10].int().unwrap_or(0) != 0,
    }
}

/// A page of events, newest first, and the cursor for the next (older) page.
#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Pass as `before` to get the next page; None at the oldest.
    pub next_before: Option<String>,
}

impl Store {
    /// Every cluster's summary, by name.
    pub fn fleet(&self) -> Result<Vec<ClusterSummary>> {
        Ok(self.fleet_shared()?.as_ref().clone())
    }

    /// Every cluster's summary, by name, shared: read again only when a cluster was added or
    /// stored a report since the last read (a row changes only then), which one aggregate over
    /// the clusters tells; the fleet page and API then skip reading and decoding 1,000 rows.
    pub fn fleet_shared(&self) -> Result<Arc<Vec<ClusterSummary>>> {
        self.read(|db| {
            let row = db
                .query_one(
                    // PostgreSQL's SUM of BIGINT is NUMERIC: back to BIGINT.
                    "SELECT COUNT(*), CAST(COALESCE(SUM(reports), 0) AS BIGINT), COALESCE(MAX(id), 0) FROM clusters",
                    &[],
                )?
                .context("no aggregate row")?;
            let stamp: FleetStamp = (row[0].int().unwrap_or(0), row[1].int().unwrap_or(0), row[2].int().unwrap_or(0));
            let mut cache = self.fleet_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((cached, fleet)) = cache.as_ref() {
                if *cached == stamp {
                    return Ok(fleet.clone());
                }
            }
            let rows = db.query(&format!("SELECT {CLUSTER_COLS} FROM clusters ORDER BY name"), &[])?;
            let fleet: Arc<Vec<ClusterSummary>> = Arc::new(rows.iter().map(cluster_from_row).collect());
            // The rows may have moved on after the aggregate: keep them under the older stamp,
            // which the next read then finds stale (at worst one read more, never a stale page).
            *cache = Some((stamp, fleet.clone()));
            Ok(fleet)
        })
    }

    pub fn cluster_by_id(&self, id: i64) -> Result<Option<ClusterSummary>> {
        self.read(|db| {
            let row = db.query_one(&format!("SELECT {CLUSTER_COLS} FROM clusters WHERE id = $1"), &[id.into()])?;
            Ok(row.as_ref().map(cluster_from_row))
        })
    }

    pub fn cluster(&self, name: &str) -> Result<Option<ClusterSummary>> {
        self.read(|db| {
            let row = db.query_one(&format!("SELECT {CLUSTER_COLS} FROM clusters WHERE name = $1"), &[name.into()])?;
            Ok(row.as_ref().map(cluster_from_row))
        })
    }

    /// A cluster's incidents detected at or after `since_us`, newest first, at most `limit`.
    pub fn incidents(&self, cluster_id: i64, since_us: i64, limit: i64) -> Result<Vec<Incident>> {
        self.read(|db| incidents_since(db, cluster_id, since_us, limit))
    }

    pub fn incident(&self, id: i64) -> Result<Option<(i64, Incident)>> {
        self.read(|db| {
            let row = db
                .query_one(&format!("SELECT {INCIDENT_COLS}, cluster_id FROM incidents WHERE id = $1"), &[id.into()])?;
            Ok(row.map(|r| (r[13].int().unwrap_or(0), incident_from_row(&r))))
        })
    }

    /// The events attached to an incident (those it is made of), in time order.
    pub fn incident_events(&self, id: i64) -> Result<Vec<EventRow>> {
        self.read(|db| {
            let rows = db.query(
                &format!("SELECT {EVENT_COLS} FROM events WHERE incident_id = $1 ORDER BY time_us, id"),
                &[id.into()],
            )?;
            Ok(rows.iter().map(event_from_row).collect())
        })
    }

    /// A page of a cluster's events, newest first. `before` is a cursor from the previous page.
    pub fn events(&self, cluster_id: i64, before: Option<&str>, limit: i64) -> Result<EventPage> {
        let (t, id) = before.and_then(parse_cursor).unwrap_or((i64::MAX, i64::MAX));
        self.read(|db| {
            let rows = db.query(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE cluster_id = $1 AND (time_us < $2 OR (time_us = $2 AND id < $3)) \
                     ORDER BY time_us DESC, id DESC LIMIT $4"
                ),
                &[cluster_id.into(), t.into(), id.into(), (limit + 1).into()],
            )?;
            let mut events: Vec<EventRow> = rows.iter().map(event_from_row).collect();
            let more = events.len() as i64 > limit;
            events.truncate(limit.max(0) as usize);
            let next_before = more.then(|| events.last().map(|e| format!("{}.{}", e.time_us, e.id))).flatten();
            Ok(EventPage { events, next_before })
        })
    }

    /// A cluster's events from `from_us` to `to_us`, in time order, at most `limit` (an incident's
    /// timeline: everything the cluster did between its detection and its recovery).
    pub fn events_between(&self, cluster_id: i64, from_us: i64, to_us: i64, limit: i64) -> Result<Vec<EventRow>> {
        self.read(|db| {
            let rows = db.query(
                &format!(
                    "SELECT {EVENT_COLS} FROM events WHERE cluster_id = $1 AND time_us >= $2 AND time_us <= $3 \
                     ORDER BY time_us, id LIMIT $4"
                ),
                &[cluster_id.into(), from_us.into(), to_us.into(), limit.into()],
            )?;
            Ok(rows.iter().map(event_from_row).collect())
        })
    }

    pub fn event(&self, id: i64) -> Result<Option<EventRow>> {
        self.read(|db| {
            let row = db.query_one(&format!("SELECT {EVENT_COLS} FROM events WHERE id = $1"), &[id.into()])?;
            Ok(row.as_ref().map(event_from_row))
        })
    }

    /// The reports an event was made of, in arrival order.
    pub fn event_reports(&self, event_id: i64) -> Result<Vec<ReportRow>> {
        self.read(|db| {
            let rows = db.query(
                &format!("SELECT {REPORT_COLS} FROM reports WHERE event_id = $1 ORDER BY id"),
                &[event_id.into()],
            )?;
            Ok(rows.iter().map(report_from_row).collect())
        })
    }

    pub fn report(&self, id: i64) -> Result<Option<ReportRow>> {
        self.read(|db| {
            let row = db.query_one(&format!("SELECT {REPORT_COLS} FROM reports WHERE id = $1"), &[id.into()])?;
            Ok(row.as_ref().map(report_from_row))
        })
    }

    /// The report's body exactly as it was received.
    pub fn report_body(&self, id: i64) -> Result<Option<Vec<u8>>> {
        let compressed = self.read(|db| {
            let row = db.query_one("SELECT body FROM reports WHERE id = $1", &[id.into()])?;
            Ok(row.and_then(|r| r[0].blob().map(<[u8]>::to_vec)))
        })?;
        compressed.map(|c| inflate(&c)).transpose()
    }
}

fn incidents_since(db: &mut dyn Db, cluster_id: i64, since_us: i64, limit: i64) -> Result<Vec<Incident>> {
    let rows = db.query(
        &format!(
            "SELECT {INCIDENT_COLS} FROM incidents WHERE cluster_id = $1 AND detected_us >= $2 \
             ORDER BY detected_us DESC, id DESC LIMIT $3"
        ),
        &[cluster_id.into(), since_us.into(), limit.into()],
    )?;
    Ok(rows.iter().map(incident_from_row).collect())
}

fn parse_cursor(s: &str) -> Option<(i64, i64)> {
    let (t, id) = s.split_once('.')?;
    Some((t.parse().ok()?, id.parse().ok()?))
}

/// Raw deflate at the fast level. Each thread keeps its compressor: a new one allocates and
/// zeroes ~300 KiB of tables (through mmap, page by page), which the profile of ingest showed
/// costing more than a 16 KiB report's compression itself; a reset only clears them.
pub fn deflate(bytes: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static COMPRESSOR: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::fast(), false));
    }
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        let mut out = Vec::with_capacity(bytes.len() / 4 + 64);
        loop {
            let consumed = c.total_in() as usize;
            let status =
                c.compress_vec(&bytes[consumed..], &mut out, FlushCompress::Finish).expect("deflate in memory");
            if status == Status::StreamEnd {
                return out;
            }
            // Out of room (incompressible input): grow and go on where it stopped.
            out.reserve(out.capacity().max(4096));
        }
    })
}

pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::DeflateDecoder::new(bytes).read_to_end(&mut out).context("a stored report does not decompress")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{deflate, inflate};

    #[test]
    fn deflate_reuses_its_compressor_and_round_trips() {
        // A report-like body, an empty one, and one that does not compress (grows the output).
        let text = br#"{"snapshot":{"xml":"<crm_mon version=\"2.1.5\"><nodes>"#.repeat(400);
        let mut noise = Vec::with_capacity(200_000);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while noise.len() < 200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        for body in [&text[..], &[][..], &noise[..], &text[..]] {
            let packed = deflate(body);
            assert_eq!(inflate(&packed).unwrap(), body);
        }
        assert!(deflate(&text).len() < text.len() / 10);
    }
}
