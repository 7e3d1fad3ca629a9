//! A cluster's page (health, statistics, plots, incidents, events, latest snapshot) and the pages
//! it links to: one incident with its events, one event with its reports, one snapshot.

use maud::{html, Markup};

use super::fleet::{cluster_href, rejection_table};
use super::layout::{page, Shell};
use super::{format, plots, snapshot};
use crate::console::derive::Incident;
use crate::console::health::{health, Level};
use crate::console::server::RejectionRecord;
use crate::console::snapshot::SnapshotView;
use crate::console::stats::Stats;
use crate::console::store::{ClusterSummary, EventPage, EventRow, ReportRow};

pub struct Data {
    pub cluster: ClusterSummary,
    pub stats: Stats,
    /// Incidents detected in the window, newest first.
    pub incidents: Vec<Incident>,
    pub open: Vec<Incident>,
    pub events: EventPage,
    pub snapshot: Option<SnapshotView>,
    pub days: i64,
    /// Requirements, recommendations and the fleet comparison (`advice`).
    pub advice: Option<Markup>,
    /// The latest configuration changes (`changes`).
    pub changes: Vec<crate::console::changes::Change>,
}

fn ms(v: Option<i64>) -> String {
    v.map_or("–".into(), format::duration_ms)
}

fn rate(v: Option<f64>) -> String {
    v.map_or("–".into(), |r| format!("{r:.1}"))
}

pub fn render(d: &Data, rejections: &[RejectionRecord], now: i64) -> Markup {
    let c = &d.cluster;
    let h = health(c, now);
    let s = &d.stats;
    let href = cluster_href(&c.name);
    let body = html! {
        h1 { (c.name) " " span.badge.(h.level.as_str()) { (h.level.as_str()) } }
        p.muted {
            @if let Some(n) = &c.cluster_name { "corosync name " b { (n) } " · " }
            (c.reports) " reports, " (c.events) " events"
            @if let Some(t) = c.last_report_us { " · last report " time datetime=(format::iso(t)) data-ago { (format::ago(t, now)) } }
            @if let Some(t) = c.first_event_us { " · history since " (format::date(t)) }
            " · " a href=(super::changes::href(&c.name)) { "configuration changes" }
        }
        @if h.level != Level::Green {
            ul.reasons {
                @for (k, r) in h.reasons.iter().enumerate() {
                    li class=(if k == 0 { h.level.as_str() } else { "amber" }) { (r) }
                }
            }
        }
        @if c.id_source.as_deref() == Some("cluster_name") {
            p.notice.small { "This cluster reports under its corosync name (the alert has no cluster_id): another cluster with the same name would share this page. Set the alert's cluster_id." }
        }
        @if !d.open.is_empty() {
            h2 { "Open incidents" }
            (incident_table(&d.open, now))
        }
        h2 { "Statistics" }
        nav.window.small {
            "window: "
            @for days in [7, 30, 90, 365] {
                a class=[(days == d.days).then_some("sel")] href={ (href) "?days=" (days) } { (days) " days" }
            }
            span.muted { "(" (format!("{:.1}", s.observed_days)) " days observed)" }
        }
        div.cards {
            (card("MTTR median", ms(s.mttr_median_ms)))
            (card("MTTR p90", ms(s.mttr_p90_ms)))
            (card(if s.observed_days < 1.0 { "failovers / 30 days (after a day)" } else { "failovers / 30 days" }, rate(s.failovers_per_30d)))
            (card(if s.observed_days < 1.0 { "restarts / 30 days (after a day)" } else { "restarts / 30 days" }, rate(s.restarts_per_30d)))
            (card("fence success", s.fence_success_rate.map_or("–".into(), |r| format!("{:.0}% of {}", r * 100.0, s.fencing_ok + s.fencing_failed))))
            (card("MTBF", s.mtbf_hours.map_or("–".into(), |h| format::duration_ms((h * 3.6e6) as i64))))
            (card("since last incident", s.since_last_incident_s.map_or("never".into(), |x| format::duration_ms(x * 1000))))
            (card(&format!("incidents: {} failover, {} restart, {} node", s.failovers, s.restarts, s.node_incidents), s.incidents.to_string()))
        }
        div.plots {
            (plots::incidents_over_time(&d.incidents, now, d.days))
            (plots::mttr_trend(&d.incidents, now, d.days))
        }
        @if let Some(a) = &d.advice { (a) }
        h2 #changes { "Configuration changes" }
        (super::changes::summary_table(&d.changes, &c.name))
        h2 { "Incidents" }
        @if d.incidents.is_empty() { p.muted { "No incident in the last " (d.days) " days." } } @else { (incident_table(&d.incidents, now)) }
        h2 { "Cluster state" }
        @if let (Some(e), Some(_)) = (&c.snapshot_error, &d.snapshot) {
            p.notice.small { "The latest report has no snapshot (" (e) "); this is the one before." }
        }
        @if let (Some(v), Some(id)) = (&d.snapshot, c.snapshot_report_id) {
            p.muted.small {
                "As of the latest snapshot, taken "
                @if let Some(t) = c.snapshot_us { time datetime=(format::iso(t)) data-ago { (format::ago(t, now)) } }
                " · " a href={ "/reports/" (id) "/snapshot" } { "full snapshot" }
            }
            (snapshot::compact(v))
        } @else {
            p.muted { "No snapshot yet" @if let Some(e) = &c.snapshot_error { ": " (e) } }
        }
        h2 { "Events" }
        (event_table(&d.events.events, now))
        @if let Some(next) = &d.events.next_before {
            p.pager { a href={ (href) "?days=" (d.days) "&before=" (next) } { "older events →" } }
        }
        @if !rejections.is_empty() {
            h2 { "Refused reports" }
            (rejection_table(rejections, now, false))
        }
    };
    let stream = format!("/live/clusters/{}", super::encode_path(&c.name));
    page(Shell { title: &c.name, stream: Some(stream), only: None, forms: false }, body)
}

fn card(k: &str, v: String) -> Markup {
    html! { div.card { div.v { (v) } div.k { (k) } } }
}

fn outcome_pill(i: &Incident) -> Markup {
    let (class, text) = match i.outcome {
        Some(o) => (o.as_str(), o.as_str().replace('_', " ")),
        None => ("open", "open".to_string()),
    };
    html! { span.pill.(class) { (text) } }
}

pub fn incident_table(list: &[Incident], now: i64) -> Markup {
    html! {
        table {
            tr { th { "detected" } th { "what" } th { "outcome" } th.num { "MTTR" } th { "fencing" } th { "resources" } }
            @for i in list {
                tr {
                    td { a href={ "/incidents/" (i.id) } { (format::time(i.detected_us)) } }
                    td { (i.summary) }
                    td { (outcome_pill(i)) @if let Some(n) = i.recovered_on.first() { " on " (n) } }
                    td.num {
                        @match (i.mttr_ms(), i.recovered_us) {
                            (Some(m), _) => { (format::duration_ms(m)) }
                            (None, None) => { span.muted { "open " (format::duration_ms((now - i.detected_us) / 1000)) } }
                            _ => { "–" }
                        }
                    }
                    td { (fencing_text(i)) }
                    td.small {
                        (i.affected.join(", "))
                        @if !i.pending.is_empty() && i.is_open() {
                            br; span.muted { "waiting for " (i.pending.iter().map(|p| p.rsc.as_str()).collect::<Vec<_>>().join(", ")) }
                        }
                    }
                }
            }
        }
    }
}

fn fencing_text(i: &Incident) -> String {
    match (i.fence_ok, i.fence_failed) {
        (0, 0) => "–".into(),
        (ok, 0) => format!("{ok} ok"),
        (0, failed) => format!("{failed} failed"),
        (ok, failed) => format!("{ok} ok, {failed} failed"),
    }
}

pub fn event_table(events: &[EventRow], now: i64) -> Markup {
    html! {
        @if events.is_empty() { p.muted { "No events." } } @else {
            table {
                tr { th { "time" } th { "event" } th { "reported by" } th { "incident" } }
                @for e in events {
                    tr class={ "sev-" (e.severity) } {
                        td {
                            a href={ "/events/" (e.id) } { (format::time(e.time_us)) }
                            @if e.time_flag.is_some() { " " span.pill.standby title="the reporter's clock was ahead; timed at arrival" { "clock" } }
                        }
                        td { (e.summary) }
                        td.small { (e.reporters.join(", ")) }
                        td { @if let Some(i) = e.incident_id { a href={ "/incidents/" (i) } { "#" (i) } } }
                    }
                }
            }
            p.muted.small { "Times in UTC; now " (format::time(now)) "." }
        }
    }
}

fn crumbs(cluster: Option<&ClusterSummary>) -> Markup {
    html! {
        p.small {
            a href="/" { "Fleet" }
            @if let Some(c) = cluster { " / " a href=(cluster_href(&c.name)) { (c.name) } }
        }
    }
}

pub fn incident_page(cluster: Option<&ClusterSummary>, i: &Incident, events: &[EventRow], now: i64) -> Markup {
    let title = format!("Incident {}", i.id);
    let body = html! {
        (crumbs(cluster))
        h1 { (title) " " (outcome_pill(i)) }
        p { (i.summary) }
        dl.kv {
            dt { "kind" } dd { (i.kind.as_str()) " incident on " (i.node) }
            dt { "detected" } dd { (format::time(i.detected_us)) }
            dt { "recovered" } dd {
                @match i.recovered_us {
                    Some(r) => { (format::time(r)) @if !i.recovered_on.is_empty() { " on " (i.recovered_on.join(", ")) } }
                    None => { "not yet (" (format::duration_ms((now - i.detected_us) / 1000)) " so far)" }
                }
            }
            dt { "MTTR" } dd { (ms(i.mttr_ms())) }
            dt { "resources" } dd { (i.affected.join(", ")) }
            @if !i.pending.is_empty() { dt { "waiting for" } dd { (i.pending.iter().map(|p| if p.promote { format!("{} (promote)", p.rsc) } else { p.rsc.clone() }).collect::<Vec<_>>().join(", ")) } }
            dt { "fencing" } dd { (fencing_text(i)) }
        }
        h2 { "Timeline" }
        p.muted.small { "Everything the cluster reported from the detection to the recovery; bold: the events this incident is made of." }
        table {
            tr { th.num { "after detection" } th { "time" } th { "event" } th { "reported by" } }
            @for e in events {
                tr class={ "sev-" (e.severity) } {
                    td.num { "+" (format::duration_ms((e.time_us - i.detected_us) / 1000)) }
                    td { a href={ "/events/" (e.id) } { (format::clock_ms(e.time_us)) } }
                    td {
                        @if e.incident_id == Some(i.id) { b { (e.summary) } }
                        @else { (e.summary) @if let Some(other) = e.incident_id { " " a.small href={ "/incidents/" (other) } { "(incident " (other) ")" } } }
                    }
                    td.small { (e.reporters.join(", ")) }
                }
            }
        }
    };
    page(Shell { title: &title, stream: None, only: None, forms: false }, body)
}

pub fn event_page(cluster: Option<&ClusterSummary>, e: &EventRow, reports: &[ReportRow], now: i64) -> Markup {
    let title = format!("Event {}", e.id);
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<i64>| v.map_or(String::new(), |n| n.to_string());
    let body = html! {
        (crumbs(cluster))
        h1 { (title) " " span.badge.(match e.severity.as_str() { "critical" => "red", "warning" => "amber", _ => "grey" }) { (e.severity) } }
        p { (e.summary) }
        @if e.time_flag.as_deref() == Some("clock_ahead") {
            p.notice { "The reporting node's clock was ahead of the console's by more than 5 minutes: this event is timed at its arrival. Its reported time is in the report below." }
        }
        dl.kv {
            dt { "time" } dd { (format::time(e.time_us)) " (" (format::clock_ms(e.time_us)) ")" }
            dt { "kind" } dd { (e.kind) " · " (e.category) }
            @if e.node.is_some() { dt { "node" } dd { (opt(&e.node)) } }
            @if e.rsc.is_some() { dt { "resource" } dd { (opt(&e.rsc)) } }
            @if e.task.is_some() { dt { "operation" } dd { (opt(&e.task)) @if let Some(i) = e.interval_ms { @if i > 0 { " every " (format::duration_ms(i)) } } } }
            @if e.rc.is_some() { dt { "result" } dd { "rc " (num(e.rc)) @if e.target_rc.is_some() { ", expected " (num(e.target_rc)) } @if e.status.is_some() { ", status " (num(e.status)) } } }
            @if e.desc.is_some() { dt { "description" } dd { (opt(&e.desc)) } }
            @if e.fence_action.is_some() { dt { "fencing" } dd { (opt(&e.fence_action)) " · ref " (opt(&e.fence_ref)) } }
            dt { "incident" } dd { @match e.incident_id { Some(i) => { a href={ "/incidents/" (i) } { "#" (i) } } None => { "none" } } }
        }
        h2 { "Reports" }
        p.muted.small { "Node and fencing events are reported by every node; each report carries its node's view of the cluster." }
        table {
            tr { th { "reporter" } th { "received" } th { "reported time" } th { "snapshot" } th { "raw" } }
            @for r in reports {
                tr {
                    td { (r.reporter) }
                    td { (format::time(r.received_us)) " (" (format::ago(r.received_us, now)) ")" }
                    td { (format::clock_ms(r.event_time_us)) @if let Some(ms) = r.clock_ahead_ms { " (" (format::duration_ms(ms)) " ahead)" } }
                    td {
                        @if r.snapshot_error.is_some() && !r.has_snapshot_summary { span.muted { (r.snapshot_error.clone().unwrap_or_default()) } }
                        @else { a href={ "/reports/" (r.id) "/snapshot" } { "cluster state" } }
                    }
                    td.small { a href={ "/reports/" (r.id) "/report.json" } { "report.json" } }
                }
            }
        }
    };
    page(Shell { title: &title, stream: None, only: None, forms: false }, body)
}

pub fn snapshot_page(cluster: Option<&ClusterSummary>, r: &ReportRow, view: Option<&SnapshotView>) -> Markup {
    let title = format!("Cluster state reported by {}", r.reporter);
    let body = html! {
        (crumbs(cluster))
        h1 { (title) }
        p.muted {
            @if let Some(t) = r.snapshot_us { "taken " (format::time(t)) " · " }
            @if let Some(e) = r.event_id { a href={ "/events/" (e) } { "event " (e) } " · " }
            a href={ "/reports/" (r.id) "/snapshot.xml" } { "crm_mon XML" }
        }
        @if let Some(e) = &r.snapshot_error { p.notice { "crm_mon: " (e) } }
        @match view {
            Some(v) => { (snapshot::full(v)) }
            None => { p.muted { "This report has no readable snapshot." } }
        }
    };
    page(Shell { title: &title, stream: None, only: None, forms: false }, body)
}
