//! The JSON API: everything the pages show (docs/console-api.md). Times are microseconds since
//! 1970 (`*_us`) with an ISO 8601 copy where a person may read the JSON.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::health::{health, tile_mttr_ms, Health};
use super::now_us;
use super::pages::format;
use super::server::{Failure, Shared};
use super::snapshot::SnapshotView;
use super::store::ClusterSummary;

/// The default and the largest statistics window, in days.
pub const DEFAULT_DAYS: i64 = 90;
pub const MAX_DAYS: i64 = 3660;

#[derive(Deserialize, Default)]
pub struct WindowQuery {
    pub days: Option<i64>,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub before: Option<String>,
    pub days: Option<i64>,
}

pub fn window(days: Option<i64>) -> Result<i64, Failure> {
    match days {
        None => Ok(DEFAULT_DAYS),
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        Some(d) => Err(Failure::bad_request(format!("days={d}: expected 1..={MAX_DAYS}"))),
    }
}

fn limit(l: Option<i64>, default: i64) -> Result<i64, Failure> {
    match l {
        None => Ok(default),
        Some(l) if (1..=1000).contains(&l) => Ok(l),
        Some(l) => Err(Failure::bad_request(format!("limit={l}: expected 1..=1000"))),
    }
}

/// A cluster's summary with its health and tile MTTR: one fleet entry, one SSE `cluster` event.
pub fn cluster_json(c: &ClusterSummary, now: i64) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("health".into(), serde_json::to_value(health(c, now)).unwrap_or(Value::Null));
        m.insert("mttr_median_90d_ms".into(), json!(tile_mttr_ms(c, now)));
        m.insert("url".into(), json!(super::pages::fleet::cluster_href(&c.name)));
    }
    v
}

async fn find(app: &Shared, name: String) -> Result<ClusterSummary, Failure> {
    let label = name.clone();
    app.blocking(move |s| s.cluster(&name)).await?.ok_or_else(|| Failure::not_found(format!("no cluster {label:?}")))
}

/// One fleet entry as `cluster_json` makes it, serialised straight from the summary: a fleet
/// of 1,000 clusters through `serde_json::Value` cost most of the request.
#[derive(Serialize)]
struct FleetEntry<'a> {
    #[serde(flatten)]
    summary: &'a ClusterSummary,
    health: Health,
    mttr_median_90d_ms: Option<i64>,
    url: String,
}

#[derive(Serialize)]
struct FleetAnswer<'a> {
    generated_us: i64,
    clusters: Vec<FleetEntry<'a>>,
}

pub async fn fleet(State(app): State<Shared>) -> Result<Response, Failure> {
    let clusters = app.blocking(|s| s.fleet_shared()).await.map_err(Failure::json)?;
    let now = now_us();
    let answer = FleetAnswer {
        generated_us: now,
        clusters: clusters
            .iter()
            .map(|c| FleetEntry {
                summary: c,
                health: health(c, now),
                mttr_median_90d_ms: tile_mttr_ms(c, now),
                url: super::pages::fleet::cluster_href(&c.name),
            })
            .collect(),
    };
    Ok(Json(answer).into_response())
}

pub async fn cluster(State(app): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, Failure> {
    let c = find(&app, name).await.map_err(Failure::json)?;
    let id = c.id;
    let open = app.blocking(move |s| s.incidents(id, i64::MIN, 100)).await.map_err(Failure::json)?;
    let open: Vec<_> = open.into_iter().filter(|i| i.is_open()).collect();
    let mut v = cluster_json(&c, now_us());
    v["open"] = json!(open);
    v["rejections"] = json!(app.rejections.list(Some(&c.name)));
    Ok(Json(v))
}

pub async fn stats(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<WindowQuery>,
) -> Result<Json<Value>, Failure> {
    let days = window(q.days).map_err(Failure::json)?;
    let c = find(&app, name).await.map_err(Failure::json)?;
    let now = now_us();
    let (stats, incidents) = app
        .blocking(move |s| {
            let stats = s.stats(&c, days, now)?;
            let incidents = s.incidents(c.id, now - days * super::stats::DAY_US, i64::MAX)?;
            Ok((stats, incidents))
        })
        .await
        .map_err(Failure::json)?;
    // What the plots draw: each incident's detection, outcome and MTTR.
    let series: Vec<Value> = incidents
        .iter()
        .rev()
        .map(|i| json!({ "id": i.id, "detected_us": i.detected_us, "outcome": i.outcome, "mttr_ms": i.mttr_ms() }))
        .collect();
    Ok(Json(json!({ "now_us": now, "stats": stats, "series": series })))
}

pub async fn incidents(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, Failure> {
    let days = window(q.days).map_err(Failure::json)?;
    let limit = limit(q.limit, 100).map_err(Failure::json)?;
    let c = find(&app, name).await.map_err(Failure::json)?;
    let since = now_us() - days * super::stats::DAY_US;
    let list = app.blocking(move |s| s.incidents(c.id, since, limit)).await.map_err(Failure::json)?;
    Ok(Json(json!({ "incidents": list })))
}

pub async fn events(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, Failure> {
    let limit = limit(q.limit, 100).map_err(Failure::json)?;
    let c = find(&app, name).await.map_err(Failure::json)?;
    let page = app.blocking(move |s| s.events(c.id, q.before.as_deref(), limit)).await.map_err(Failure::json)?;
    Ok(Json(serde_json::to_value(page).unwrap_or(Value::Null)))
}

pub async fn incident(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Json<Value>, Failure> {
    let found = app
        .blocking(move |s| {
            let Some((cluster_id, incident)) = s.incident(id)? else { return Ok(None) };
            let timeline = super::pages::incident_timeline(s, cluster_id, &incident)?;
            Ok(Some((cluster_id, incident, timeline)))
        })
        .await
        .map_err(Failure::json)?;
    let (cluster_id, incident, timeline) =
        found.ok_or_else(|| Failure::not_found(format!("no incident {id}")).json())?;
    Ok(Json(
        json!({ "cluster_id": cluster_id, "incident": incident, "mttr_ms": incident.mttr_ms(), "timeline": timeline }),
    ))
}

pub async fn event(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Json<Value>, Failure> {
    let (event, reports) =
        app.blocking(move |s| Ok((s.event(id)?, s.event_reports(id)?))).await.map_err(Failure::json)?;
    let event = event.ok_or_else(|| Failure::not_found(format!("no event {id}")).json())?;
    Ok(Json(json!({ "event": event, "time": format::iso(event.time_us), "reports": reports })))
}

/// The report exactly as the agent sent it.
pub async fn report(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let body = app.blocking(move |s| s.report_body(id)).await.map_err(Failure::json)?;
    let body = body.ok_or_else(|| Failure::not_found(format!("no report {id}")).json())?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The report's snapshot, parsed (nodes, resources, failures, fencing...).
pub async fn snapshot(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Json<Value>, Failure> {
    let (row, view) = super::pages::load_snapshot(&app, id).await.map_err(Failure::json)?;
    Ok(Json(json!({
        "report": row,
        "snapshot": view.as_ref().map(|v: &SnapshotView| json!({ "view": v, "summary": v.summary() })),
    })))
}

pub async fn rejections(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "rejections": app.rejections.list(None) }))
}
