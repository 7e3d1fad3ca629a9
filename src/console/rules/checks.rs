//! Each check against a cluster's latest snapshot (crm_mon XML, read by `snapshot`) and its
//! statistics. Pure: the caller loads both.

use serde::Serialize;

use super::{Check, MttrStat, Rule, RuleSet, Severity};
use crate::console::pages::format::duration_ms;
use crate::console::snapshot::{base_id, SnapshotView};
use crate::console::stats::Stats;

/// Pacemaker's INFINITY as crm_mon prints a score or a threshold.
const INFINITY: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// The reports do not carry what the rule needs (no snapshot yet, no recovery in the window,
    /// or data the alert does not send); `evidence` says what is missing.
    NoData,
}

impl Status {
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NoData => "no_data",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub rule: String,
    pub check: &'static str,
    pub what: String,
    pub severity: Severity,
    pub status: Status,
    /// The values the verdict rests on: for a failure, each one that broke the rule.
    pub evidence: Vec<String>,
    pub remediation: String,
}

/// Every rule's finding for one cluster, in the file's order.
pub fn evaluate(set: &RuleSet, snapshot: Option<&SnapshotView>, stats: &Stats) -> Vec<Finding> {
    set.rules.iter().map(|r| finding(r, snapshot, stats, set.window_days)).collect()
}

fn finding(rule: &Rule, snapshot: Option<&SnapshotView>, stats: &Stats, window_days: i64) -> Finding {
    let (status, evidence) = match (&rule.check, snapshot) {
        (Check::Mttr { max_ms, stat }, _) => mttr(stats, *max_ms, *stat, window_days),
        (Check::FenceSuccess { min_percent }, _) => fence_success(stats, *min_percent, window_days),
        (Check::CorosyncLinks { min }, _) => (
            Status::NoData,
            vec![format!(
                "the alert's reports carry no Corosync link state, so {min} links cannot be checked: \
                 it needs each node's `corosync-cfgtool -s` (links and their state) in the report"
            )],
        ),
        (_, None) => (Status::NoData, vec!["no snapshot from this cluster yet".to_string()]),
        (Check::FencingEnabled, Some(v)) => fencing_enabled(v),
        (Check::FenceDevicesMonitored, Some(v)) => fence_devices_monitored(v),
        (Check::MonitorInterval { max_ms }, Some(v)) => monitor_interval(v, *max_ms),
        (Check::MigrationThreshold { max }, Some(v)) => migration_threshold(v, *max),
        (Check::FailCountBelowThreshold, Some(v)) => fail_count(v),
    };
    Finding {
        rule: rule.id.clone(),
        check: rule.check.name(),
        what: rule.what.clone(),
        severity: rule.severity,
        status,
        evidence,
        remediation: rule.remediation.clone(),
    }
}

fn verdict(broken: Vec<String>, ok: String) -> (Status, Vec<String>) {
    if broken.is_empty() {
        (Status::Pass, vec![ok])
    } else {
        (Status::Fail, broken)
    }
}

fn is_fence_device(agent: Option<&str>) -> bool {
    agent.is_some_and(|a| a.starts_with("stonith:"))
}

/// Primitive ids (clone suffixes removed), each once, in crm_mon's order: (id, agent, active).
fn primitives(v: &SnapshotView) -> Vec<(String, Option<String>, bool)> {
    let mut out: Vec<(String, Option<String>, bool)> = Vec::new();
    for r in &v.resources {
        match out.iter_mut().find(|(id, _, _)| id == r.base_id()) {
            Some(e) => e.2 |= r.active,
            None => out.push((r.base_id().to_string(), r.agent.clone(), r.active)),
        }
    }
    out
}

/// How often `rsc` is monitored where it is slowest: per node, its shortest recurring monitor
/// interval in the operation history (a promoted instance has its own, faster one); the longest
/// of these, in ms. None if no node has a recurring monitor for it.
fn monitor_ms(v: &SnapshotView, rsc: &str) -> Option<u64> {
    let mut per_node: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for h in v.history.iter().filter(|h| base_id(&h.resource) == rsc) {
        let fastest = h
            .operations
            .iter()
            .filter(|o| o.task == "monitor")
            .filter_map(|o| o.interval.as_deref().and_then(interval_ms))
            .filter(|ms| *ms > 0)
            .min();
        if let Some(ms) = fastest {
            let e = per_node.entry(h.node.as_str()).or_insert(ms);
            *e = (*e).min(ms);
        }
    }
    per_node.into_values().max()
}

/// crm_mon prints intervals as `10000ms`.
fn interval_ms(text: &str) -> Option<u64> {
    text.trim_end_matches("ms").parse().ok()
}

fn fencing_enabled(v: &SnapshotView) -> (Status, Vec<String>) {
    let enabled = v.options.get("stonith-enabled").map(String::as_str);
    let devices: Vec<String> =
        primitives(v).into_iter().filter(|(_, a, _)| is_fence_device(a.as_deref())).map(|(id, _, _)| id).collect();
    let mut broken = Vec::new();
    if enabled != Some("true") {
        broken.push(format!("stonith-enabled={}", enabled.unwrap_or("(not reported)")));
    }
    if devices.is_empty() {
        broken.push("no fence device (stonith:*) is configured".to_string());
    }
    verdict(broken, format!("stonith-enabled=true, fence devices: {}", devices.join(", ")))
}

fn fence_devices_monitored(v: &SnapshotView) -> (Status, Vec<String>) {
    let mut broken = Vec::new();
    let mut ok = Vec::new();
    for (id, agent, active) in primitives(v) {
        if !is_fence_device(agent.as_deref()) {
            continue;
        }
        match (monitor_ms(v, &id), active) {
            (Some(ms), true) => ok.push(format!("{id} every {}", duration_ms(ms as i64))),
            (Some(_), false) => broken.push(format!("{id} is not running on any node, so nothing monitors it")),
            (None, _) => broken.push(format!("{id} has no recurring monitor in its history")),
        }
    }
    if ok.is_empty() && broken.is_empty() {
        return (Status::Fail, vec!["no fence device is configured".to_string()]);
    }
    verdict(broken, ok.join(", "))
}

fn monitor_interval(v: &SnapshotView, max_ms: u64) -> (Status, Vec<String>) {
    let mut broken = Vec::new();
    let mut checked = 0;
    for (id, agent, active) in primitives(v) {
        // A stopped resource's monitor is not in its history: nothing to check until it runs.
        if !active || is_fence_device(agent.as_deref()) {
            continue;
        }
        checked += 1;
        match monitor_ms(v, &id) {
            None => broken.push(format!("{id}: no recurring monitor")),
            Some(ms) if ms > max_ms => broken.push(format!(
                "{id}: monitor every {} (more than {})",
                duration_ms(ms as i64),
                duration_ms(max_ms as i64)
            )),
            Some(_) => {}
        }
    }
    verdict(broken, format!("{checked} running resources monitored at least every {}", duration_ms(max_ms as i64)))
}

fn migration_threshold(v: &SnapshotView, max: Option<u64>) -> (Status, Vec<String>) {
    let mut broken: Vec<String> = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for h in &v.history {
        let id = base_id(&h.resource).to_string();
        if seen.iter().any(|(r, _)| *r == id) {
            continue;
        }
        let text = h.migration_threshold.clone().unwrap_or_default();
        seen.push((id.clone(), text.clone()));
        let value = text.parse::<u64>().ok().filter(|n| *n < INFINITY);
        match (value, max) {
            (None, _) if text.is_empty() => broken.push(format!("{id}: migration-threshold not set (INFINITY)")),
            (None, _) => broken.push(format!("{id}: migration-threshold={text} (INFINITY)")),
            (Some(n), Some(m)) if n > m => broken.push(format!("{id}: migration-threshold={n} (more than {m})")),
            _ => {}
        }
    }
    if seen.is_empty() {
        return (Status::NoData, vec!["the snapshot has no resource history".to_string()]);
    }
    let values: std::collections::BTreeSet<&str> = seen.iter().map(|(_, t)| t.as_str()).collect();
    let values: Vec<&str> = values.into_iter().collect();
    verdict(broken, format!("{} resources, migration-threshold {}", seen.len(), values.join(", ")))
}

fn fail_count(v: &SnapshotView) -> (Status, Vec<String>) {
    let mut broken = Vec::new();
    let mut failing = 0;
    for h in &v.history {
        let count = h.fail_count.as_deref().and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        let threshold = h.migration_threshold.as_deref().and_then(|t| t.parse::<u64>().ok()).unwrap_or(INFINITY);
        if count > 0 {
            failing += 1;
        }
        if count > 0 && count >= threshold {
            broken.push(format!(
                "{} on {}: fail-count {count} reached migration-threshold {threshold}{}",
                h.resource,
                h.node,
                h.last_failure.as_deref().map(|t| format!(" (last failure {t})")).unwrap_or_default()
            ));
        }
    }
    verdict(broken, format!("{failing} resources with failures, none at its threshold"))
}

fn mttr(stats: &Stats, max_ms: u64, stat: MttrStat, window_days: i64) -> (Status, Vec<String>) {
    let (value, name) = match stat {
        MttrStat::Median => (stats.mttr_median_ms, "median"),
        MttrStat::P90 => (stats.mttr_p90_ms, "p90"),
    };
    let recoveries = stats.failovers + stats.restarts;
    let Some(ms) = value else {
        return (Status::NoData, vec![format!("no recovery in the last {window_days} days")]);
    };
    let text = format!(
        "MTTR {name} {} over {recoveries} recoveries in {window_days} days (limit {})",
        duration_ms(ms),
        duration_ms(max_ms as i64)
    );
    (if ms as u64 > max_ms { Status::Fail } else { Status::Pass }, vec![text])
}

fn fence_success(stats: &Stats, min_percent: f64, window_days: i64) -> (Status, Vec<String>) {
    let Some(rate) = stats.fence_success_rate else {
        return (Status::NoData, vec![format!("no fencing in the last {window_days} days")]);
    };
    let total = stats.fencing_ok + stats.fencing_failed;
    let text = format!(
        "{} of {total} fencing operations succeeded ({:.0}%, required {min_percent:.0}%); {} failed",
        stats.fencing_ok,
        rate * 100.0,
        stats.fencing_failed
    );
    // Compared in whole operations, not floats: 100% means none failed.
    let ok = stats.fencing_ok as f64 * 100.0 >= min_percent * total as f64;
    (if ok { Status::Pass } else { Status::Fail }, vec![text])
}
