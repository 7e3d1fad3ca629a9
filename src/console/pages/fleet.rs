//! The fleet grid: one tile per cluster, coloured by its health, updated live.

use maud::{html, Markup};

use super::format;
use super::layout::{page, Shell};
use crate::console::health::{health, tile_mttr_ms, Health, Level};
use crate::console::server::RejectionRecord;
use crate::console::store::ClusterSummary;

/// The tile's element id: stable per cluster, so that a live update replaces it.
pub fn tile_id(c: &ClusterSummary) -> String {
    format!("cluster-{}", c.id)
}

pub fn cluster_href(name: &str) -> String {
    format!("/clusters/{}", super::encode_path(name))
}

pub fn tile(c: &ClusterSummary, now_us: i64) -> Markup {
    tile_of(c, &health(c, now_us), now_us)
}

/// The tile of a cluster whose health is already known (the grid works it out once per cluster).
fn tile_of(c: &ClusterSummary, h: &Health, now_us: i64) -> Markup {
    let state = match h.level {
        Level::Green => "all resources running".to_string(),
        _ => h.reasons.first().cloned().unwrap_or_default(),
    };
    let more = h.reasons.len().saturating_sub(1);
    html! {
        a.tile.(h.level.as_str()) id=(tile_id(c)) href=(cluster_href(&c.name)) title=(h.reasons.join("\n")) {
            div.name {
                span { (c.name) }
                @if let Some(ms) = tile_mttr_ms(c, now_us) {
                    span.mttr title="median time to recovery, last 90 days" { "MTTR " (format::duration_ms(ms)) }
                }
            }
            div.state { (state) @if more > 0 { " (+" (more) ")" } }
            div.last {
                @if let Some(e) = &c.last_event {
                    time datetime=(format::iso(e.time_us)) data-ago { (format::ago(e.time_us, now_us)) }
                    " · " (e.summary)
                } @else {
                    "registered " (format::date(c.created_us)) ", waiting for its first report"
                }
            }
        }
    }
}

pub fn render(clusters: &[ClusterSummary], only: Option<Level>, rejections: &[RejectionRecord], now_us: i64) -> Markup {
    let healths: Vec<Health> = clusters.iter().map(|c| health(c, now_us)).collect();
    let count = |l: Level| healths.iter().filter(|h| h.level == l).count();
    let shown: Vec<(&ClusterSummary, &Health)> =
        clusters.iter().zip(&healths).filter(|(_, h)| only.is_none_or(|o| o == h.level)).collect();
    let body = html! {
        h1 { "Fleet" }
        div.counts {
            a class=[only.is_none().then_some("sel")] href="/" { b { (clusters.len()) } " clusters" }
            @for level in [Level::Red, Level::Amber, Level::Green, Level::Grey] {
                a class=[(only == Some(level)).then_some("sel")] href={ "/?only=" (level.as_str()) } data-level=(level.as_str()) {
                    span.badge.(level.as_str()) { (level.as_str()) } " " b { (count(level)) }
                }
            }
        }
        @if clusters.is_empty() {
            p.notice {
                "No cluster is registered yet. Register one with "
                code { "hastack console cluster add NAME" }
                " and point its alert agent at this console (README.md, Console)."
            }
        }
        div.grid {
            @for (c, h) in &shown { (tile_of(c, h, now_us)) }
        }
        @if !rejections.is_empty() {
            h2 { "Refused reports" }
            p.muted.small { "The latest reports this console refused; their senders keep them spooled and retry." }
            (rejection_table(rejections, now_us, true))
        }
    };
    let only_str = only.map(Level::as_str);
    page(Shell { title: "Fleet", stream: Some("/live/fleet".into()), only: only_str, forms: false }, body)
}

pub fn rejection_table(rows: &[RejectionRecord], now_us: i64, with_cluster: bool) -> Markup {
    html! {
        table {
            tr {
                th { "when" } th { "from" }
                @if with_cluster { th { "cluster" } }
                th { "status" } th { "why" }
            }
            @for r in rows.iter().rev().take(20) {
                tr {
                    td { time datetime=(format::iso(r.time_us)) data-ago { (format::ago(r.time_us, now_us)) } }
                    td { (r.peer) }
                    @if with_cluster { td { (r.cluster.as_deref().unwrap_or("?")) } }
                    td { (r.status) " " code { (r.code) } }
                    td { (r.message) }
                }
            }
        }
    }
}
