//! What the console advises about a cluster: the requirements' findings (`rules`), how it compares
//! with the fleet (`compare`) and the recommendations (`recommend`); loaded from the store, shown
//! on the cluster page, on the fleet comparison page and in the JSON API (docs/console-api.md).

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde::Serialize;
use serde_json::{json, Value};

use super::api::{window, WindowQuery};
use super::compare::{self, format_value, Comparison};
use super::now_us;
use super::pages::fleet::cluster_href;
use super::recommend::{self, Recommendation};
use super::rules::{self, Finding, RuleSet, Status};
use super::server::{Failure, Shared};
use super::snapshot::SnapshotView;
use super::stats::DAY_US;
use super::store::{ClusterSummary, Store};

/// Events a recommendation looks at, at most (the newest of the window).
const MAX_EVENTS: i64 = 5000;

#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    pub rules_version: String,
    pub rules_source: String,
    pub window_days: i64,
    pub findings: Vec<Finding>,
    pub recommendations: Vec<Recommendation>,
}

/// Every registered cluster's statistics over `days`, compared.
pub fn fleet_comparison(store: &Store, days: i64, now: i64) -> anyhow::Result<Comparison> {
    Ok(compare::compare(&store.fleet_stats(days, now)?, days))
}

/// The findings and recommendations of one cluster, against its latest snapshot.
pub fn advise(
    store: &Store,
    set: &RuleSet,
    c: &ClusterSummary,
    snapshot: Option<&SnapshotView>,
    now: i64,
) -> anyhow::Result<Advice> {
    let since = now - set.window_days * DAY_US;
    let stats = store.stats(c, set.window_days, now)?;
    let findings = rules::evaluate(set, snapshot, &stats);
    let events = store.events_between(c.id, since, i64::MAX, MAX_EVENTS)?;
    let incidents = store.incidents(c.id, since, i64::MAX)?;
    let nodes: Vec<String> = snapshot.map(|v| v.nodes.iter().map(|n| n.name.clone()).collect()).unwrap_or_default();
    let recommendations = recommend::recommend(&recommend::Inputs {
        now_us: now,
        findings: &findings,
        events: &events,
        incidents: &incidents,
        nodes: &nodes,
    });
    Ok(Advice {
        rules_version: set.version.clone(),
        rules_source: set.source.clone(),
        window_days: set.window_days,
        findings,
        recommendations,
    })
}

/// The latest snapshot of a cluster, parsed.
pub fn latest_snapshot(store: &Store, c: &ClusterSummary) -> anyhow::Result<Option<SnapshotView>> {
    let Some(id) = c.snapshot_report_id else { return Ok(None) };
    let Some(body) = store.report_body(id)? else { return Ok(None) };
    let report: Value = serde_json::from_slice(&body)?;
    Ok(report["snapshot"]["xml"].as_str().and_then(|x| SnapshotView::parse(x).ok()))
}

async fn cluster_advice(app: &Shared, name: String) -> Result<Advice, Failure> {
    let set = app.rules.clone();
    let label = name.clone();
    app.blocking(move |s| {
        let Some(c) = s.cluster(&name)? else { return Ok(None) };
        let snapshot = latest_snapshot(s, &c)?;
        advise(s, &set, &c, snapshot.as_ref(), now_us()).map(Some)
    })
    .await?
    .ok_or_else(|| Failure::not_found(format!("no cluster {label:?}")))
}

/// `GET /api/v1/rules`: the requirements in use.
pub async fn api_rules(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "rules": *app.rules }))
}

/// `GET /api/v1/clusters/{name}/findings`.
pub async fn api_findings(State(app): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, Failure> {
    let a = cluster_advice(&app, name).await.map_err(Failure::json)?;
    let failed = a.findings.iter().filter(|f| f.status == Status::Fail).count();
    Ok(Json(json!({
        "rules_version": a.rules_version, "rules_source": a.rules_source, "window_days": a.window_days,
        "failed": failed, "findings": a.findings,
    })))
}

/// `GET /api/v1/clusters/{name}/recommendations`.
pub async fn api_recommendations(State(app): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, Failure> {
    let a = cluster_advice(&app, name).await.map_err(Failure::json)?;
    Ok(Json(json!({ "window_days": a.window_days, "recommendations": a.recommendations })))
}

/// `GET /api/v1/fleet/compare?days=N`.
pub async fn api_compare(State(app): State<Shared>, Query(q): Query<WindowQuery>) -> Result<Json<Value>, Failure> {
    let days = window(q.days).map_err(Failure::json)?;
    let c = app.blocking(move |s| fleet_comparison(s, days, now_us())).await.map_err(Failure::json)?;
    Ok(Json(serde_json::to_value(c).unwrap_or(Value::Null)))
}

/// `GET /fleet/compare?days=N`: the fleet table.
pub async fn compare_page(State(app): State<Shared>, Query(q): Query<WindowQuery>) -> Result<Response, Failure> {
    let days = window(q.days)?;
    let c = app.blocking(move |s| fleet_comparison(s, days, now_us())).await?;
    Ok(Html(render_compare_page(&c).into_string()).into_response())
}

fn render_compare_page(c: &Comparison) -> Markup {
    let body = html! {
        h1 { "Fleet comparison" }
        p.muted.small {
            "Each cluster's statistics over " (c.window_days) " days against the fleet's median and 90th percentile. "
            "Flagged: at least " (c.factor) "× the fleet's median (any non-zero value where the median is 0), "
            "when " (compare::MIN_CLUSTERS) " or more clusters have the figure. Window: "
            @for d in [7, 30, 90, 365] { a href={ "/fleet/compare?days=" (d) } { (d) " days" } " " }
        }
        table id="fleet-compare" {
            tr {
                th { "cluster" }
                @for m in &c.metrics { th.num { (m.label) } }
                th { "outliers" }
            }
            tr.fleet {
                td { b { "fleet median" } }
                @for m in &c.metrics { td.num { (m.median.map_or("–".into(), |v| format_value(v, m.unit))) } }
                td.muted.small { "clusters with the figure: " (c.metrics.iter().map(|m| m.clusters.to_string()).collect::<Vec<_>>().join(" / ")) }
            }
            tr.fleet {
                td { b { "fleet p90" } }
                @for m in &c.metrics { td.num { (m.p90.map_or("–".into(), |v| format_value(v, m.unit))) } }
                td {}
            }
            @for row in &c.clusters {
                tr class=[(!row.outliers.is_empty()).then_some("sev-warning")] data-cluster=(row.name) {
                    td { a href=(cluster_href(&row.name)) { (row.name) } }
                    @for (cell, m) in row.cells.iter().zip(&c.metrics) {
                        td.num.outlier[cell.outlier] {
                            (cell.value.map_or("–".into(), |v| format_value(v, m.unit)))
                            @if let Some(r) = cell.ratio { span.muted.small { " (" (format!("{r:.1}")) "×)" } }
                        }
                    }
                    td { @for o in &row.outliers { div.outlier-text { (o) } } }
                }
            }
        }
    };
    super::pages::layout_page("Fleet comparison", body)
}

/// The cluster page's section: findings, the fleet comparison row, recommendations.
pub fn render_section(a: &Advice, comparison: &Comparison, name: &str) -> Markup {
    let failed = a.findings.iter().filter(|f| f.status == Status::Fail).count();
    html! {
        h2 id="requirements" { "Requirements" }
        p.muted.small {
            (failed) " of " (a.findings.len()) " rules failed · requirements " code { (a.rules_version) }
            " (" (a.rules_source) ") · statistics over " (a.window_days) " days"
        }
        table id="findings" {
            tr { th { "rule" } th { "result" } th { "evidence" } th { "remediation" } }
            @for f in &a.findings {
                tr class={ "finding " (f.status.as_str()) @if f.status == Status::Fail { " sev-" (serde_json::to_value(f.severity).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } } data-rule=(f.rule) {
                    td { b { (f.rule) } div.muted.small { (f.what) } }
                    td { span.pill.(f.status.as_str()) { (f.status.as_str().replace('_', " ")) } }
                    td { @for e in &f.evidence { div { (e) } } }
                    td.small { @if f.status == Status::Fail { (f.remediation) } }
                }
            }
        }
        h2 id="recommendations" { "Recommendations" }
        @if a.recommendations.is_empty() {
            p.muted { "Nothing to recommend." }
        } @else {
            ol.recommendations {
                @for r in &a.recommendations {
                    li class={ "rec " (r.kind) } {
                        b { (r.title) }
                        ul.small { @for e in &r.evidence { li { (e) } } }
                    }
                }
            }
        }
        h2 id="fleet-comparison" { "Compared with the fleet" }
        @if let Some(row) = comparison.row(name) {
            table.compare {
                tr { th { "" } @for m in &comparison.metrics { th.num { (m.label) } } }
                tr { td { "this cluster" } @for (cell, m) in row.cells.iter().zip(&comparison.metrics) {
                    td.num.outlier[cell.outlier] { (cell.value.map_or("–".into(), |v| format_value(v, m.unit))) }
                } }
                tr { td { "fleet median" } @for m in &comparison.metrics { td.num { (m.median.map_or("–".into(), |v| format_value(v, m.unit))) } } }
                tr { td { "fleet p90" } @for m in &comparison.metrics { td.num { (m.p90.map_or("–".into(), |v| format_value(v, m.unit))) } } }
            }
            @for o in &row.outliers { p.notice.outlier-text { (o) } }
            p.small { a href={ "/fleet/compare?days=" (comparison.window_days) } { "the whole fleet's table →" } }
        }
    }
}
