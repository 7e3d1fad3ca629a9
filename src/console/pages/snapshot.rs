//! A crm_mon snapshot rendered for people: what `pcs status` shows, as tables (nodes, resources
//! and where they run, failed actions, fail-counts, fencing history, bans, node attributes).

use maud::{html, Markup};

use crate::console::snapshot::SnapshotView;

/// The short form for the cluster page: nodes and resources.
pub fn compact(v: &SnapshotView) -> Markup {
    html! {
        div.two {
            div { h3 { "Nodes" } (nodes(v)) }
            div { h3 { "Resources" } (resources(v)) }
        }
        @if !v.failures.is_empty() { h3 { "Failed resource actions" } (failures(v)) }
    }
}

pub fn full(v: &SnapshotView) -> Markup {
    html! {
        dl.kv {
            dt { "DC" } dd { (v.dc.as_deref().unwrap_or("none")) }
            dt { "quorum" } dd { (match v.quorum { Some(true) => "yes", Some(false) => "NO", None => "unknown (no DC)" }) }
            dt { "stack" } dd { (v.stack.as_deref().unwrap_or("?")) }
            dt { "last updated" } dd { (v.last_update.as_deref().unwrap_or("?")) }
            @if let Some(c) = &v.last_change { dt { "last change" } dd { (c) } }
            dt { "configured" } dd {
                (v.nodes_configured.map_or("?".into(), |n| n.to_string())) " nodes, "
                (v.resources_configured.map_or("?".into(), |n| n.to_string())) " resources"
            }
            @for key in ["stonith-enabled", "maintenance-mode", "no-quorum-policy", "symmetric-cluster"] {
                @if let Some(val) = v.options.get(key) { dt { (key) } dd { (val) } }
            }
            @if let Some((code, msg)) = &v.status { dt { "crm_mon status" } dd { (code) " " (msg) } }
        }
        h2 { "Nodes" } (nodes(v))
        h2 { "Resources" } (resources(v))
        h2 { "Failed resource actions" }
        @if v.failures.is_empty() { p.muted { "none" } } @else { (failures(v)) }
        h2 { "Fail-counts and operation history" } (history(v))
        h2 { "Fencing history" }
        @if v.fencing.is_empty() { p.muted { "none" } } @else {
            table {
                tr { th { "target" } th { "action" } th { "status" } th { "by" } th { "for" } th { "completed" } th { "reason" } }
                @for f in &v.fencing {
                    tr {
                        td { (f.target) } td { (opt(&f.action)) }
                        td { span.pill.(if f.status.as_deref() == Some("success") { "online" } else { "failed" }) { (opt(&f.status)) } }
                        td { (opt(&f.delegate)) } td { (opt(&f.client)) " " (opt(&f.origin)) }
                        td { (opt(&f.completed)) } td { (opt(&f.exit_reason)) }
                    }
                }
            }
        }
        @if !v.bans.is_empty() {
            h2 { "Bans (location constraints)" }
            table {
                tr { th { "id" } th { "resource" } th { "node" } th { "score" } }
                @for b in &v.bans { tr { td { (b.id) } td { (b.resource) } td { (b.node) } td { (opt(&b.weight)) } } }
            }
        }
        @if !v.node_attributes.is_empty() {
            h2 { "Node attributes" }
            table {
                tr { th { "node" } th { "attribute" } th { "value" } }
                @for a in &v.node_attributes { tr { td { (a.node) } td { (a.name) } td { (a.value) } } }
            }
        }
        @if !v.tickets.is_empty() {
            h2 { "Tickets" }
            table {
                @for t in &v.tickets { tr { td { @for (k, val) in t { (k) "=" (val) " " } } } }
            }
        }
    }
}

fn nodes(v: &SnapshotView) -> Markup {
    html! {
        table {
            tr { th { "node" } th { "state" } th.num { "resources" } th { "" } }
            @for n in &v.nodes {
                tr {
                    td { (n.name) }
                    td { span.pill.(n.state()) { (n.state()) } }
                    td.num { (n.resources_running.map_or("".into(), |r| r.to_string())) }
                    td.muted { @if n.is_dc { "DC " } @if n.shutdown { "shutting down " } @if n.node_type.as_deref().is_some_and(|t| t != "member") { (opt(&n.node_type)) } }
                }
            }
        }
    }
}

fn resources(v: &SnapshotView) -> Markup {
    html! {
        table {
            tr { th { "resource" } th { "in" } th { "role" } th { "where" } th { "agent" } }
            @for r in &v.resources {
                tr {
                    td { (r.id) }
                    td.muted { (r.parents.join(" / ")) }
                    td {
                        span.pill.(r.role.as_deref().unwrap_or("")) { (opt(&r.role)) }
                        @if r.failed { " " span.pill.failed { "FAILED" } }
                        @if r.blocked { " " span.pill.failed { "blocked" } }
                        @if !r.managed { " " span.pill.maintenance { "unmanaged" } }
                        @if r.target_role.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("stopped")) { " " span.pill { "disabled" } }
                    }
                    td { (r.nodes.join(", ")) }
                    td.muted.small { (opt(&r.agent)) }
                }
            }
        }
    }
}

fn failures(v: &SnapshotView) -> Markup {
    html! {
        table {
            tr { th { "operation" } th { "node" } th { "result" } th { "reason" } th { "when" } }
            @for f in &v.failures {
                tr {
                    td { (f.op_key) }
                    td { (f.node) }
                    td { (opt(&f.exitstatus)) " (" (opt(&f.exitcode)) ", " (opt(&f.status)) ")" }
                    td { (opt(&f.exitreason)) }
                    td { (opt(&f.last_rc_change)) }
                }
            }
        }
    }
}

fn history(v: &SnapshotView) -> Markup {
    html! {
        table {
            tr { th { "node" } th { "resource" } th.num { "fail-count" } th.num { "threshold" } th { "operations (last first)" } }
            @for h in &v.history {
                tr {
                    td { (h.node) } td { (h.resource) }
                    td.num { (opt(&h.fail_count)) }
                    td.num { (opt(&h.migration_threshold)) }
                    td.small {
                        @for op in h.operations.iter().rev() {
                            span.pill.(if op.rc.as_deref() == Some("0") || op.rc.as_deref() == Some("8") { "online" } else { "failed" }) {
                                (op.task)
                                @if let Some(i) = op.interval.as_deref().filter(|i| *i != "0ms") { " " (i) }
                                ": " (op.rc_text.as_deref().unwrap_or("?"))
                            }
                            " "
                        }
                    }
                }
            }
        }
    }
}

fn opt(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}
