//! `POST /api/v1/reports`: the alert agent's reports in (docs/reports.md). A request is checked
//! in this order, each failure a 4xx that says why (the agent keeps the report and retries):
//! bearer token (401) → body size (413) → JSON (400) → report shape, schema version, key
//! recipe (422) → the token's cluster is the report's (403) → Idempotency-Key header (400).
//! Then the report goes to a writer thread that stores it with others in one transaction and
//! answers 201 (stored) or 200 (its key was stored before).
//!
//! A report whose event time is more than `FUTURE_TOLERANCE_US` ahead of the console's clock is
//! stored, timed at its arrival, and flagged (README.md "Console", clock): refusing it would leave
//! it, and every report spooled after it on that node, stuck in the node's spool.

use std::net::SocketAddr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::live::Live;
use super::report::{Rejection, Report, SCHEMA_VERSIONS};
use super::server::{RejectionRecord, Shared};
use super::snapshot::SnapshotView;
use super::store::{ingest_batch_cached, Accepted, Db, Dialect, Store, Stored, WorkCache};
use super::{now_us, token};

/// Reports larger than this are refused (413). crm_mon of a two-node stack is tens of KiB.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How far ahead of the console's clock a report's event time may be before it is flagged.
pub const FUTURE_TOLERANCE_US: i64 = 5 * 60 * 1_000_000;
/// Reports waiting for a writer before new ones get 503 (the agent retries later).
const QUEUE: usize = 4096;
/// Reports stored in one transaction at most.
const MAX_BATCH: usize = 256;

struct Job {
    accepted: Accepted,
    reply: oneshot::Sender<Result<Stored, String>>,
}

/// The writer threads, each with its own database connection; a cluster always goes to the same
/// one, so that its reports are stored in the order they arrived.
pub struct Ingest {
    writers: Vec<SyncSender<Job>>,
}

impl Ingest {
    /// Each writer connects in its own thread: the PostgreSQL client blocks on a runtime of its
    /// own, which cannot start on one of the server's async workers.
    pub fn start(store: Arc<Store>, writers: usize, live: Live) -> Result<Ingest> {
        let mut senders = Vec::new();
        for i in 0..writers.max(1) {
            let (tx, rx) = sync_channel(QUEUE);
            let (connected_tx, connected) = std::sync::mpsc::channel();
            let (store, live) = (store.clone(), live.clone());
            std::thread::Builder::new()
                .name(format!("console-writer-{i}"))
                .spawn(move || match store.connect() {
                    Ok(db) => {
                        let _ = connected_tx.send(Ok(()));
                        write_loop(db, rx, &store, &live)
                    }
                    Err(e) => {
                        let _ = connected_tx.send(Err(e));
                    }
                })
                .context("cannot start a writer thread")?;
            connected.recv().context("a writer thread ended before connecting")??;
            senders.push(tx);
        }
        Ok(Ingest { writers: senders })
    }

    pub async fn submit(&self, accepted: Accepted) -> Result<Stored, Rejection> {
        let (reply, answer) = oneshot::channel();
        let writer = &self.writers[accepted.cluster_id.unsigned_abs() as usize % self.writers.len()];
        writer.try_send(Job { accepted, reply }).map_err(|e| match e {
            TrySendError::Full(_) => {
                Rejection::new(503, "busy", "the console is busy; the report stays spooled, retry later")
            }
            TrySendError::Disconnected(_) => Rejection::new(503, "stopping", "the console is stopping"),
        })?;
        match answer.await {
            Ok(Ok(stored)) => Ok(stored),
            Ok(Err(e)) => Err(Rejection::new(503, "not_stored", format!("the report could not be stored: {e}"))),
            Err(_) => Err(Rejection::new(503, "not_stored", "the writer stopped before storing the report")),
        }
    }
}

/// A writer's connection, set up for its statements: on PostgreSQL their plans are made once
/// (each is the same few index lookups and inserts whatever its values; planning them again per
/// report, as PostgreSQL does for a prepared statement until it trusts a generic plan, and for
/// an `IN` list always, cost the server more than executing some of them).
fn writer_setup(db: &mut dyn Db) {
    if db.dialect() == Dialect::Postgres {
        // Only a plan's cost: if the setting is refused the writer works as before.
        let _ = db.batch("SET plan_cache_mode = force_generic_plan");
    }
}

fn write_loop(mut db: Box<dyn Db>, rx: Receiver<Job>, store: &Store, live: &Live) {
    let mut cache = WorkCache::default();
    writer_setup(db.as_mut());
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let (batch, replies): (Vec<Accepted>, Vec<_>) = jobs.into_iter().map(|j| (j.accepted, j.reply)).unzip();
        match ingest_batch_cached(db.as_mut(), &batch, &mut cache) {
            Ok((outcomes, changed)) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
                live.publish(changed);
            }
            Err(e) => {
                let msg = format!("{e:#}");
                eprintln!("hastack console: a batch of {} reports was not stored: {msg}", batch.len());
                for reply in replies {
                    let _ = reply.send(Err(msg.clone()));
                }
                // The connection may be broken (a database restart): take a new one if we can.
                if let Ok(fresh) = store.connect() {
                    db = fresh;
                    writer_setup(db.as_mut());
                }
            }
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = serde_json::json!({ "status": "refused", "error": self.code, "message": self.message });
        let mut response = (status, axum::Json(body)).into_response();
        if self.status == 401 {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

pub async fn post_report(
    State(app): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let received_us = now_us();
    let body = body.map_err(|e| {
        let status = e.status().as_u16();
        let code = if status == 413 { "body_too_large" } else { "unreadable_body" };
        Rejection::new(status, code, format!("{} (at most {MAX_BODY} bytes)", e.body_text()))
    });
    let mut verified: Option<String> = None;
    let result = async {
        let (cluster_id, cluster_name, token_hash) = authenticate(&app, &headers).await?;
        verified = Some(cluster_name.clone());
        let body = body.clone()?;
        let headers = headers.clone();
        let checked_hash = token_hash.clone();
        let mut accepted =
            tokio::task::spawn_blocking(move || accept(&headers, &body, cluster_id, &cluster_name, received_us))
                .await
                .map_err(|e| Rejection::new(500, "internal", e.to_string()))??;
        accepted.token_hash = Some(checked_hash);
        let flagged = accepted.clock_ahead_ms;
        let stored = app.ingest.submit(accepted).await?;
        if stored == Stored::TokenRevoked {
            app.tokens.forget(&token_hash);
            return Err(unknown_token());
        }
        Ok::<_, Rejection>((stored, flagged))
    }
    .await;
    match result {
        Ok((Stored::New { report_id, event_id, merged }, flagged)) => {
            let body = serde_json::json!({
                "status": "stored", "report_id": report_id, "event_id": event_id, "merged": merged,
                "clock_ahead_ms": flagged,
            });
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Ok((Stored::Duplicate { report_id, event_id }, _)) => {
            let body = serde_json::json!({ "status": "duplicate", "report_id": report_id, "event_id": event_id });
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Ok((Stored::TokenRevoked, _)) => unreachable!("answered as unknown_token above"),
        Err(rejection) => {
            let claimed = body.as_ref().ok().and_then(|b| serde_json::from_slice::<Claimed>(b).ok());
            let claimed_cluster = claimed.as_ref().and_then(|c| c.cluster.as_ref()).and_then(|c| c.id.clone());
            let cluster = match (verified, claimed_cluster) {
                (Some(v), _) => Some(v),
                (None, Some(c)) => Some(format!("{c} (unverified)")),
                (None, None) => None,
            };
            app.rejections.record(RejectionRecord {
                time_us: received_us,
                peer: peer.ip().to_string(),
                cluster,
                reporter: claimed.and_then(|c| c.reporter).and_then(|r| r.node),
                status: rejection.status,
                code: rejection.code.to_string(),
                message: rejection.message.clone(),
            });
            rejection.into_response()
        }
    }
}

/// Which cluster a token hash belongs to, as the database said when the token was last seen: a
/// report then costs no database read (and no blocking-thread hop) before it is parsed. The
/// cache only finds the cluster: the writer checks the hash against the cluster's row in the
/// transaction that stores the report (`Stored::TokenRevoked`), so a token rotated by
/// `hastack console cluster rotate` (another process) still stops working at once.
#[derive(Default)]
pub struct TokenCache {
    known: std::sync::RwLock<std::collections::HashMap<String, (i64, String)>>,
}

/// Token hashes the cache keeps at most (one per cluster; emptied when it would grow beyond).
const CACHED_TOKENS: usize = 100_000;

impl TokenCache {
    fn get(&self, hash: &str) -> Option<(i64, String)> {
        self.known.read().unwrap_or_else(|e| e.into_inner()).get(hash).cloned()
    }

    fn remember(&self, hash: &str, cluster: (i64, String)) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() >= CACHED_TOKENS {
            known.clear();
        }
        known.insert(hash.to_string(), cluster);
    }

    fn forget(&self, hash: &str) {
        self.known.write().unwrap_or_else(|e| e.into_inner()).remove(hash);
    }
}

fn unknown_token() -> Rejection {
    Rejection::new(401, "unknown_token", "the bearer token belongs to no registered cluster")
}

/// The cluster the bearer token belongs to, and the token's hash.
async fn authenticate(app: &Shared, headers: &HeaderMap) -> Result<(i64, String, String), Rejection> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Rejection::new(
                401,
                "missing_token",
                "no Authorization: Bearer token (give the alert the token `hastack console cluster add` printed)",
            )
        })?
        .to_string();
    let hash = token::hash(&token);
    if let Some((id, name)) = app.tokens.get(&hash) {
        return Ok((id, name, hash));
    }
    let lookup = hash.clone();
    let found = app
        .blocking(move |store| store.cluster_by_token(&lookup))
        .await
        .map_err(|e| Rejection::new(503, "store_unavailable", e.message))?;
    let (id, name) = found.ok_or_else(unknown_token)?;
    app.tokens.remember(&hash, (id, name.clone()));
    Ok((id, name, hash))
}

/// Checks the headers, then the body (on a blocking thread: JSON and XML of tens of KiB).
fn accept(
    headers: &HeaderMap,
    body: &[u8],
    cluster_id: i64,
    cluster_name: &str,
    received_us: i64,
) -> Result<Accepted, Rejection> {
    if let Some(v) = headers.get("x-hastack-schema-version") {
        let known =
            v.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).is_some_and(|v| SCHEMA_VERSIONS.contains(&v));
        if !known {
            return Err(Rejection::new(
                422,
                "unsupported_schema_version",
                format!("X-Hastack-Schema-Version {v:?} is not one this console reads ({SCHEMA_VERSIONS:?})"),
            ));
        }
    }
    let accepted = accept_report(body, cluster_id, cluster_name, received_us)?;
    if let Some(key) = headers.get("idempotency-key") {
        if key.to_str().ok().map(str::trim) != Some(accepted.report.idempotency_key.as_str()) {
            return Err(Rejection::new(
                400,
                "idempotency_key_header",
                "the Idempotency-Key header differs from the body's key",
            ));
        }
    }
    Ok(accepted)
}

/// A report body checked and prepared for the store, for the cluster `cluster_name` (whose token
/// the sender showed) at the console's time `received_us`.
pub fn accept_report(
    body: &[u8],
    cluster_id: i64,
    cluster_name: &str,
    received_us: i64,
) -> Result<Accepted, Rejection> {
    let mut report = Report::parse(body)?;
    if report.cluster.id != cluster_name {
        return Err(Rejection::new(
            403,
            "wrong_cluster",
            format!("the token is cluster {cluster_name:?}'s, the report is for {:?}", report.cluster.id),
        ));
    }
    let reported = report.event_time_us();
    let (time_us, clock_ahead_ms) = if reported - received_us > FUTURE_TOLERANCE_US {
        (received_us, Some((reported - received_us) / 1000))
    } else {
        (reported, None)
    };
    // A snapshot that does not parse is kept in the body; the tile then has no summary from it.
    let snapshot = report.snapshot.xml.take().and_then(|xml| SnapshotView::summarise(&xml).ok());
    Ok(Accepted {
        cluster_id,
        report,
        received_us,
        time_us,
        clock_ahead_ms,
        body: super::store::deflate(body),
        snapshot,
        token_hash: None,
    })
}

/// For the refused-reports log: the cluster and node a refused body says it is from.
#[derive(Deserialize)]
struct Claimed {
    cluster: Option<ClaimedId>,
    reporter: Option<ClaimedNode>,
}

#[derive(Deserialize)]
struct ClaimedId {
    id: Option<String>,
}

#[derive(Deserialize)]
struct ClaimedNode {
    node: Option<String>,
}
