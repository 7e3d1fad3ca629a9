//! The console's store: one interface (`Store`) over SQLite (the default, one file) and
//! PostgreSQL (a fleet that outgrows one file). Both backends implement the small `Db` trait, so
//! every query and the ingest logic are written once (`write.rs`, `read.rs`).

mod db;
mod postgres;
mod read;
mod schema;
mod sqlite;
mod stats;
mod write;

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use db::{Db, DbUrl, Dialect, Pool, Val, DEFAULT_DB};
pub use read::{deflate, inflate, EventPage, EventRow, ReportRow};
pub use stats::StatsKey;
pub use write::{ingest_batch, ingest_batch_cached, Accepted, Stored, WorkCache};

use super::snapshot::SnapshotSummary;

/// A cluster as the fleet page and the API show it: kept up to date by ingest, read without
/// touching events.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterSummary {
    pub id: i64,
    pub name: String,
    /// corosync's cluster name and where the id came from, per its latest report.
    pub cluster_name: Option<String>,
    pub id_source: Option<String>,
    pub created_us: i64,
    pub reports: i64,
    pub events: i64,
    pub first_event_us: Option<i64>,
    /// The console's clock when its latest report arrived.
    pub last_report_us: Option<i64>,
    pub last_event: Option<LastEvent>,
    /// The newest snapshot's summary (by when it was taken) and its report.
    pub snapshot: Option<SnapshotSummary>,
    pub snapshot_us: Option<i64>,
    pub snapshot_report_id: Option<i64>,
    pub snapshot_error: Option<String>,
    pub open_incidents: i64,
    /// Open incidents that still wait for a resource to run again (a service is down).
    pub open_down: i64,
    pub open_since_us: Option<i64>,
    pub open_summary: Option<String>,
    pub last_incident_us: Option<i64>,
    /// (recovered at, MTTR ms) of the latest recoveries, oldest first, at most `RECENT_MTTR`.
    pub recent_mttr: Vec<(i64, i64)>,
    pub clock_ahead: ClockAhead,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LastEvent {
    pub id: i64,
    pub time_us: i64,
    pub summary: String,
    pub severity: String,
}

/// Reports whose event time was ahead of the console's clock by more than the tolerance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClockAhead {
    pub reports: i64,
    pub last_us: Option<i64>,
    pub last_ms: Option<i64>,
    pub last_node: Option<String>,
}

/// How many recent recoveries a cluster row keeps for its tile's MTTR.
pub const RECENT_MTTR: usize = 50;

/// A registered cluster, for `hastack console cluster list`.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub name: String,
    pub created_us: i64,
    pub token_issued_us: i64,
    pub reports: i64,
    pub last_report_us: Option<i64>,
}

pub struct Store {
    url: DbUrl,
    readers: Pool,
    /// The fleet as last read, and the clusters' (count, reports, highest id) it was read at.
    fleet_cache: Mutex<Option<(FleetStamp, Arc<Vec<ClusterSummary>>)>>,
    /// What each cluster's statistics are computed from, per window (stats.rs).
    stats_cache: Mutex<stats::StatsCache>,
}

/// Changes whenever a cluster row does: a row changes only when a cluster is added or stores a
/// report (which adds to its count).
type FleetStamp = (i64, i64, i64);

impl Store {
    /// Opens (and creates or upgrades) the database. SQLite's directory is created if missing.
    pub fn open(url: &DbUrl) -> Result<Store> {
        if let DbUrl::Sqlite(path) = url {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                create_private_dir(dir)?;
            }
        }
        let url2 = url.clone();
        let readers = Pool::new(Box::new(move || connect(&url2)));
        readers.with(schema::migrate)?;
        Ok(Store { url: url.clone(), readers, fleet_cache: Mutex::new(None), stats_cache: Mutex::default() })
    }

    pub fn url(&self) -> &DbUrl {
        &self.url
    }

    /// A new connection of its own (the ingest writers hold one each).
    pub fn connect(&self) -> Result<Box<dyn Db>> {
        connect(&self.url)
    }

    /// Runs a read on a pooled connection.
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        self.readers.with(f)
    }

    /// Registers a cluster with the hash of its token. Fails if the name is taken.
    pub fn add_cluster(&self, name: &str, token_hash: &str, now_us: i64) -> Result<()> {
        self.read(|db| {
            let existing = db.query_one("SELECT id FROM clusters WHERE name = $1", &[name.into()])?;
            if existing.is_some() {
                bail!("cluster {name:?} is already registered (issue a new token with `hastack console cluster rotate {name}`)");
            }
            db.exec(
                "INSERT INTO clusters (name, token_hash, created_us, token_issued_us) VALUES ($1, $2, $3, $3)",
                &[name.into(), token_hash.into(), now_us.into()],
            )?;
            Ok(())
        })
    }

    /// Replaces a cluster's token; the old one stops working at once.
    pub fn rotate_token(&self, name: &str, token_hash: &str, now_us: i64) -> Result<()> {
        self.read(|db| {
            let n = db.exec(
                "UPDATE clusters SET token_hash = $2, token_issued_us = $3 WHERE name = $1",
                &[name.into(), token_hash.into(), now_us.into()],
            )?;
            if n == 0 {
                bail!("no cluster {name:?} is registered (`hastack console cluster add {name}`)");
            }
            Ok(())
        })
    }

    pub fn registered(&self) -> Result<Vec<Registered>> {
        self.read(|db| {
            let rows = db.query(
                "SELECT name, created_us, token_issued_us, reports, last_report_us FROM clusters ORDER BY name",
                &[],
            )?;
            Ok(rows
                .into_iter()
                .map(|r| Registered {
                    name: r[0].string().unwrap_or_default(),
                    created_us: r[1].int().unwrap_or(0),
                    token_issued_us: r[2].int().unwrap_or(0),
                    reports: r[3].int().unwrap_or(0),
                    last_report_us: r[4].int(),
                })
                .collect())
        })
    }

    /// The cluster a token belongs to: (id, name).
    pub fn cluster_by_token(&self, token_hash: &str) -> Result<Option<(i64, String)>> {
        self.read(|db| {
            let row = db.query_one("SELECT id, name FROM clusters WHERE token_hash = $1", &[token_hash.into()])?;
            Ok(row.map(|r| (r[0].int().unwrap_or(0), r[1].string().unwrap_or_default())))
        })
    }
}

fn connect(url: &DbUrl) -> Result<Box<dyn Db>> {
    Ok(match url {
        DbUrl::Sqlite(path) => Box::new(sqlite::Sqlite::open(path)?),
        DbUrl::Postgres(u) => Box::new(postgres::Postgres::connect(u)?),
    })
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}
