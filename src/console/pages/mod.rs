//! Server-rendered pages (maud: HTML written in Rust, escaped by construction). Every page works
//! without JavaScript; console.js only makes the fleet and cluster pages live.

pub mod changes;
pub mod cluster;
pub mod fleet;
pub mod format;
mod layout;
pub mod plots;
pub mod snapshot;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::health::Level;
use super::now_us;
use super::server::{Failure, Shared};
use super::snapshot::SnapshotView;
use super::store::ReportRow;
use layout::{page, Shell};

fn html_response(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

/// A path segment, percent-encoded (cluster names are free text).
pub fn encode_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A page without a live feed, for modules outside `pages` (advice).
pub fn layout_page(title: &str, body: Markup) -> Markup {
    page(Shell { title, stream: None, only: None, forms: false }, body)
}

pub fn error_page(status: StatusCode, message: &str) -> Markup {
    page(
        Shell { title: status.canonical_reason().unwrap_or("error"), stream: None, only: None, forms: false },
        html! { h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) } p { (message) } p { a href="/" { "Back to the fleet" } } },
    )
}

#[derive(Deserialize, Default)]
pub struct FleetQuery {
    only: Option<String>,
}

pub async fn fleet(State(app): State<Shared>, Query(q): Query<FleetQuery>) -> Result<Response, Failure> {
    let only = match q.only.as_deref() {
        None | Some("") | Some("all") => None,
        Some("red") => Some(Level::Red),
        Some("amber") => Some(Level::Amber),
        Some("green") => Some(Level::Green),
        Some("grey") => Some(Level::Grey),
        Some(other) => return Err(Failure::bad_request(format!("only={other}: expected red, amber, green or grey"))),
    };
    let clusters = app.blocking(|s| s.fleet_shared()).await?;
    Ok(html_response(fleet::render(&clusters, only, &app.rejections.list(None), now_us())))
}

#[derive(Deserialize, Default)]
pub struct ClusterQuery {
    days: Option<i64>,
    before: Option<String>,
}

pub async fn cluster(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ClusterQuery>,
) -> Result<Response, Failure> {
    let days = super::api::window(q.days)?;
    let now = now_us();
    let label = name.clone();
    let rules = app.rules.clone();
    let data = app
        .blocking(move |s| {
            let Some(c) = s.cluster(&name)? else { return Ok(None) };
            let stats = s.stats(&c, days, now)?;
            let incidents = s.incidents(c.id, now - days * super::stats::DAY_US, i64::MAX)?;
            let open = s.incidents(c.id, i64::MIN, 1000)?.into_iter().filter(|i| i.is_open()).collect();
            let events = s.events(c.id, q.before.as_deref(), 50)?;
            let snapshot = match c.snapshot_report_id {
                Some(id) => snapshot_view(s, id)?.1,
                None => None,
            };
            let advice = super::advice::advise(s, &rules, &c, snapshot.as_ref(), now)?;
            let comparison = super::advice::fleet_comparison(s, days, now)?;
            let advice = Some(super::advice::render_section(&advice, &comparison, &c.name));
            let changes = super::changes::list(s, c.id, 5)?;
            Ok(Some(cluster::Data { cluster: c, stats, incidents, open, events, snapshot, days, advice, changes }))
        })
        .await?
        .ok_or_else(|| Failure::not_found(format!("no cluster {label:?} is registered")))?;
    let rejections = app.rejections.list(Some(&data.cluster.name));
    Ok(html_response(cluster::render(&data, &rejections, now)))
}

pub async fn incident(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let data = app
        .blocking(move |s| {
            let Some((cluster_id, incident)) = s.incident(id)? else { return Ok(None) };
            let cluster = s.cluster_by_id(cluster_id)?;
            let timeline = incident_timeline(s, cluster_id, &incident)?;
            Ok(Some((cluster, incident, timeline)))
        })
        .await?
        .ok_or_else(|| Failure::not_found(format!("no incident {id}")))?;
    Ok(html_response(cluster::incident_page(data.0.as_ref(), &data.1, &data.2, now_us())))
}

pub async fn event(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let data = app
        .blocking(move |s| {
            let Some(event) = s.event(id)? else { return Ok(None) };
            let cluster = s.cluster_by_id(event.cluster_id)?;
            Ok(Some((cluster, event, s.event_reports(id)?)))
        })
        .await?
        .ok_or_else(|| Failure::not_found(format!("no event {id}")))?;
    Ok(html_response(cluster::event_page(data.0.as_ref(), &data.1, &data.2, now_us())))
}

/// Everything the cluster reported from an incident's detection to its recovery (or now).
pub fn incident_timeline(
    s: &super::store::Store,
    cluster_id: i64,
    i: &super::derive::Incident,
) -> anyhow::Result<Vec<super::store::EventRow>> {
    s.events_between(cluster_id, i.detected_us, i.recovered_us.unwrap_or(i64::MAX), 500)
}

/// A report's row and its snapshot, parsed from the stored body.
fn snapshot_view(store: &super::store::Store, id: i64) -> anyhow::Result<(Option<ReportRow>, Option<SnapshotView>)> {
    let Some(row) = store.report(id)? else { return Ok((None, None)) };
    let xml = snapshot_xml_of(store, id)?;
    Ok((Some(row), xml.and_then(|x| SnapshotView::parse(&x).ok())))
}

fn snapshot_xml_of(store: &super::store::Store, id: i64) -> anyhow::Result<Option<String>> {
    let Some(body) = store.report_body(id)? else { return Ok(None) };
    let report: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(report["snapshot"]["xml"].as_str().map(str::to_string))
}

pub async fn load_snapshot(app: &Shared, id: i64) -> Result<(ReportRow, Option<SnapshotView>), Failure> {
    let (row, view) = app.blocking(move |s| snapshot_view(s, id)).await?;
    Ok((row.ok_or_else(|| Failure::not_found(format!("no report {id}")))?, view))
}

pub async fn snapshot(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let (row, view) = load_snapshot(&app, id).await?;
    let cluster = app.blocking(move |s| s.cluster_by_id(row.cluster_id)).await?;
    Ok(html_response(cluster::snapshot_page(cluster.as_ref(), &row, view.as_ref())))
}

pub async fn snapshot_xml(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let xml = app.blocking(move |s| snapshot_xml_of(s, id)).await?;
    let xml = xml.ok_or_else(|| Failure::not_found(format!("report {id} has no snapshot")))?;
    Ok(([(header::CONTENT_TYPE, "application/xml; charset=utf-8")], xml).into_response())
}

pub async fn report_json(State(app): State<Shared>, Path(id): Path<i64>) -> Result<Response, Failure> {
    let body = app.blocking(move |s| s.report_body(id)).await?;
    let body = body.ok_or_else(|| Failure::not_found(format!("no report {id}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
