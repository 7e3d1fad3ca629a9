//! A cluster's configuration changes as a page: each change's life (requested → planned →
//! committed → verified and applied, or rolled back / refused / failed), who asked and when, the
//! reason it ended as it did and every step a node reported with its output; and the forms that
//! request a change (plain HTML forms: no JavaScript needed).

use maud::{html, Markup};

use super::fleet::cluster_href;
use super::format;
use super::layout::{page, Shell};
use crate::console::changes::{Change, Spec};
use crate::console::store::ClusterSummary;

/// The page's URL for a cluster.
pub fn href(cluster: &str) -> String {
    format!("{}/changes", cluster_href(cluster))
}

/// One line saying what a recorded change asks for; a kind this console does not know, as it is.
pub fn describe_change(c: &Change) -> String {
    match c.known() {
        Some(spec) => describe(&spec),
        None => format!("a change this console does not know: {}", c.spec),
    }
}

/// One line saying what a change asks for, as an administrator would say it.
pub fn describe(spec: &Spec) -> String {
    match spec {
        Spec::Operation { resource, operation, interval, new_interval, new_timeout } => {
            let which = interval.as_ref().map(|i| format!(" (every {i})")).unwrap_or_default();
            let mut what = Vec::new();
            if let Some(i) = new_interval {
                what.push(format!("interval → {i}"));
            }
            if let Some(t) = new_timeout {
                what.push(format!("timeout → {t}"));
            }
            format!("{resource} {operation}{which}: {}", what.join(", "))
        }
        Spec::Parameter { resource, name, value } => format!("{resource} parameter {name} = {value}"),
        Spec::MigrationThreshold { resource: Some(r), value } => format!("{r} migration-threshold = {value}"),
        Spec::MigrationThreshold { resource: None, value } => {
            format!("migration-threshold = {value} for every resource (rsc_defaults)")
        }
        Spec::Maintenance { enabled } => format!("maintenance-mode = {enabled}"),
        Spec::CorosyncTiming { name, value } => format!("corosync totem.{name} = {value}"),
    }
}

/// The stages of a change's life and how far this one got: (stage, class) with class `done`,
/// `failed` or `todo`.
pub fn life(c: &Change) -> Vec<(&'static str, &'static str)> {
    let ok = |step: &str| c.steps.iter().any(|s| s.step == step && s.ok);
    let failed = |step: &str| c.steps.iter().any(|s| s.step == step && !s.ok);
    let mark = |step: &str| {
        if ok(step) {
            "done"
        } else if failed(step) {
            "failed"
        } else {
            "todo"
        }
    };
    let mut out = vec![("requested", "done"), ("planned", mark("plan")), ("committed", mark("commit"))];
    out.push(("verified", mark("verify")));
    match c.state.as_str() {
        "applied" => out.push(("applied", "done")),
        "rolled_back" => out.push(("rolled back", "failed")),
        "refused" => out.push(("refused", "failed")),
        "failed" => out.push(("failed", "failed")),
        _ => out.push(("applied", "todo")),
    }
    out
}

/// The state as a person reads it: an unfinished change by its last good step.
pub fn stage(c: &Change) -> &'static str {
    match c.state.as_str() {
        "applied" => "applied",
        "rolled_back" => "rolled back",
        "refused" => "refused",
        "failed" => "failed",
        "requested" => "requested",
        _ => match c.steps.iter().rev().find(|s| s.ok).map(|s| s.step.as_str()) {
            Some("commit") => "committed",
            Some("verify") => "verified",
            _ => "planned",
        },
    }
}

pub fn state_pill(c: &Change) -> Markup {
    html! { span.pill.(format!("change-{}", c.state)) data-state=(c.state) { (stage(c)) } }
}

/// The latest changes, for the cluster page.
pub fn summary_table(list: &[Change], cluster: &str) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "No change requested yet. " a href=(href(cluster)) { "Request one" } }
        } @else {
            table {
                tr { th { "requested" } th { "change" } th { "by" } th { "state" } }
                @for c in list {
                    tr {
                        td { a href={ (href(cluster)) "#change-" (c.id) } { (format::time(c.created_us)) } }
                        td { (describe_change(c)) }
                        td { (c.requested_by) }
                        td { (state_pill(c)) }
                    }
                }
            }
            p.small { a href=(href(cluster)) { "All changes, each step's output, and a form to request one →" } }
        }
    }
}

fn change_block(c: &Change, now: i64) -> Markup {
    html! {
        section.change id={ "change-" (c.id) } data-change=(c.id) data-state=(c.state) {
            h3 { "#" (c.id) " " (describe_change(c)) " " (state_pill(c)) }
            p.muted.small {
                "requested by " b { (c.requested_by) } " at " (format::time(c.created_us))
                " (" time datetime=(format::iso(c.created_us)) data-ago { (format::ago(c.created_us, now)) } ")"
                @if c.updated_us != c.created_us { " · last step at " (format::time(c.updated_us)) }
            }
            ol.life {
                @for (stage, class) in life(c) { li class=(class) { (stage) } }
            }
            @if let Some(why) = &c.detail {
                @if c.state != "applied" {
                    p.notice.reason { b { (stage(c)) ": " } (why) }
                }
            }
            @if c.steps.is_empty() {
                p.muted.small { "Waiting for the cluster's `hastack agent apply` to poll." }
            } @else {
                table.steps {
                    tr { th { "time" } th { "node" } th { "step" } th { "output" } }
                    @for s in &c.steps {
                        tr class=(if s.ok { "ok" } else { "failed" }) data-step=(s.step) {
                            td.small { (format::time(s.time_us)) }
                            td { (s.node) }
                            td { span.pill.(if s.ok { "pass" } else { "fail" }) { (s.step) @if !s.ok { " failed" } } }
                            td { pre { (s.detail) } }
                        }
                    }
                }
            }
        }
    }
}

/// Fields of the request forms, kept when a request is refused so that it can be corrected.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Form {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub requested_by: String,
    #[serde(default)]
    pub resource: String,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub new_interval: String,
    #[serde(default)]
    pub new_timeout: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub enabled: String,
}

fn field(label: &str, name: &str, value: &str, hint: &str, required: bool) -> Markup {
    html! {
        label {
            span { (label) }
            input type="text" name=(name) value=(value) placeholder=(hint) required[required];
        }
    }
}

fn who(form: &Form, remote_user: Option<&str>) -> Markup {
    html! {
        @match remote_user {
            Some(u) => { p.small.muted { "requested by " b { (u) } " (your proxy login)" } }
            None => { (field("requested by", "requested_by", &form.requested_by, "your name", true)) }
        }
    }
}

/// The four request forms: an operation's interval or timeout, a resource parameter,
/// migration-threshold, maintenance mode. `filled` is the refused request, kept in its form.
fn forms(cluster: &str, filled: Option<&Form>, remote_user: Option<&str>) -> Markup {
    let empty = Form::default();
    let f = |kind: &str| filled.filter(|f| f.kind == kind).unwrap_or(&empty);
    let action = href(cluster);
    let op = f("operation");
    let param = f("parameter");
    let mt = f("migration_threshold");
    let mm = f("maintenance");
    html! {
        div.forms {
            form.change method="post" action=(action) id="request-operation" {
                h3 { "Operation interval or timeout" }
                input type="hidden" name="kind" value="operation";
                (field("resource", "resource", &op.resource, "db", true))
                (field("operation", "operation", if op.operation.is_empty() { "monitor" } else { &op.operation }, "monitor", true))
                (field("current interval (if it has several)", "interval", &op.interval, "10s", false))
                (field("new interval", "new_interval", &op.new_interval, "5s", false))
                (field("new timeout", "new_timeout", &op.new_timeout, "30s", false))
                (who(op, remote_user))
                button type="submit" { "Request" }
            }
            form.change method="post" action=(action) id="request-parameter" {
                h3 { "Resource parameter" }
                input type="hidden" name="kind" value="parameter";
                (field("resource", "resource", &param.resource, "db", true))
                (field("parameter", "name", &param.name, "config", true))
                (field("value", "value", &param.value, "", true))
                (who(param, remote_user))
                button type="submit" { "Request" }
            }
            form.change method="post" action=(action) id="request-migration_threshold" {
                h3 { "migration-threshold" }
                input type="hidden" name="kind" value="migration_threshold";
                (field("resource (empty: every resource, rsc_defaults)", "resource", &mt.resource, "db", false))
                (field("value", "value", &mt.value, "3", true))
                (who(mt, remote_user))
                button type="submit" { "Request" }
            }
            form.change method="post" action=(action) id="request-maintenance" {
                h3 { "Maintenance mode" }
                input type="hidden" name="kind" value="maintenance";
                label {
                    span { "maintenance-mode" }
                    select name="enabled" {
                        option value="true" selected[mm.enabled != "false"] { "on (Pacemaker stops managing resources)" }
                        option value="false" selected[mm.enabled == "false"] { "off" }
                    }
                }
                (who(mm, remote_user))
                button type="submit" { "Request" }
            }
        }
    }
}

pub struct PageData<'a> {
    pub cluster: &'a ClusterSummary,
    pub changes: &'a [Change],
    /// A refused request: the reason, and the form as it was sent.
    pub refused: Option<(&'a str, &'a Form)>,
    /// The change just recorded (the redirect's `?requested=ID`).
    pub requested: Option<i64>,
    pub remote_user: Option<&'a str>,
    pub now: i64,
}

pub fn render(d: &PageData) -> Markup {
    let name = &d.cluster.name;
    let title = format!("{name}: configuration changes");
    let body = html! {
        p.small { a href="/" { "Fleet" } " / " a href=(cluster_href(name)) { (name) } }
        h1 { "Configuration changes" }
        p.muted {
            "The console records a change; the cluster's " code { "hastack agent apply" }
            " polls for it and runs plan (the CIB diff), commit (only on the CIB version it planned on), verify ("
            code { "crm_verify -L" } ", the resource's validate-all, the cluster settles) and, when verify fails, rollback. "
            "Each step's output is below. Corosync timing is never pushed (it needs every node restarted)."
        }
        @if let Some((why, _)) = d.refused {
            p.notice.refused #refused { b { "Not recorded: " } (why) }
        }
        @if let Some(id) = d.requested {
            p.notice.small #requested { "Change #" (id) " recorded; it is applied at the cluster's next poll." }
        }
        div #change-log data-live {
            h2 { "Changes" }
            @if d.changes.is_empty() { p.muted { "No change requested yet." } }
            @for c in d.changes { (change_block(c, d.now)) }
        }
        h2 #request { "Request a change" }
        (forms(name, d.refused.map(|(_, f)| f), d.remote_user))
        p.muted.small { "The same as JSON: " code { "POST /api/v1/clusters/" (name) "/changes" } " (" a href="/api" { "API" } ")." }
    };
    let stream = format!("/live/clusters/{}", super::encode_path(name));
    page(Shell { title: &title, stream: Some(stream), only: None, forms: true }, body)
}
