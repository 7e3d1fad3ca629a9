//! Recommendations: what an operator should do next, from the requirements' failed findings and
//! from patterns in a cluster's events and incidents over a window (pure; the caller loads them).
//! The patterns, and why each points where it does:
//! - the same operation timing out again and again (`REPEATED_TIMEOUTS` times): its timeout is
//!   too short for the service, or the service hangs;
//! - the same resource failing over again and again (`REPEATED_FAILOVERS` times; a resource
//!   fails over when its fail-count reaches migration-threshold): moving it hides a fault the
//!   service keeps having;
//! - any failed fencing: with the hastack UPS fence agent that is the UPS, its cable or its
//!   parameters, and every recovery of a lost node waits on it;
//! - a node that has not reported for `SILENT_DAYS` while its peer has: its alert agent (or the
//!   node) is not working, and the console no longer hears half the cluster.

use std::collections::BTreeMap;

use serde::Serialize;

use super::derive::{Incident, Outcome};
use super::pages::format;
use super::rules::{Finding, Severity, Status};
use super::stats::DAY_US;
use super::store::EventRow;

pub const REPEATED_TIMEOUTS: usize = 3;
pub const REPEATED_FAILOVERS: usize = 2;
pub const SILENT_DAYS: i64 = 7;

/// Pacemaker's execution status for an operation that timed out (PCMK_EXEC_TIMEOUT).
const EXEC_TIMEOUT: i64 = 2;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recommendation {
    /// `rule`, `repeated_timeouts`, `repeated_failovers`, `fencing_failed`, `node_silent`.
    pub kind: &'static str,
    pub severity: Severity,
    /// What to do, in one line.
    pub title: String,
    /// What it rests on.
    pub evidence: Vec<String>,
    /// The rule's id for `rule` recommendations.
    pub rule: Option<String>,
}

pub struct Inputs<'a> {
    pub now_us: i64,
    pub findings: &'a [Finding],
    /// The window's events, any order.
    pub events: &'a [EventRow],
    /// The window's incidents.
    pub incidents: &'a [Incident],
    /// The nodes of the latest snapshot.
    pub nodes: &'a [String],
}

pub fn recommend(inp: &Inputs) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for f in inp.findings.iter().filter(|f| f.status == Status::Fail) {
        out.push(Recommendation {
            kind: "rule",
            severity: f.severity,
            title: f.remediation.clone(),
            evidence: std::iter::once(format!("requirement {}: {}", f.rule, f.what))
                .chain(f.evidence.clone())
                .collect(),
            rule: Some(f.rule.clone()),
        });
    }
    fencing_failed(inp, &mut out);
    repeated_timeouts(inp, &mut out);
    repeated_failovers(inp, &mut out);
    silent_nodes(inp, &mut out);
    // The critical ones first, then in the order found.
    out.sort_by_key(|r| r.severity != Severity::Critical);
    out
}

fn timed_out(e: &EventRow) -> bool {
    e.category == "operation_failed"
        && (e.status == Some(EXEC_TIMEOUT) || e.desc.as_deref().is_some_and(|d| d.eq_ignore_ascii_case("timed out")))
}

fn repeated_timeouts(inp: &Inputs, out: &mut Vec<Recommendation>) {
    let mut by_op: BTreeMap<(String, String, i64), Vec<&EventRow>> = BTreeMap::new();
    for e in inp.events.iter().filter(|e| timed_out(e)) {
        let key = (e.rsc.clone().unwrap_or_default(), e.task.clone().unwrap_or_default(), e.interval_ms.unwrap_or(0));
        by_op.entry(key).or_default().push(e);
    }
    for ((rsc, task, interval), mut list) in by_op {
        if list.len() < REPEATED_TIMEOUTS {
            continue;
        }
        list.sort_by_key(|e| e.time_us);
        let op = if interval > 0 { format!("{task} (every {})", format::duration_ms(interval)) } else { task.clone() };
        let nodes: std::collections::BTreeSet<&str> = list.iter().filter_map(|e| e.node.as_deref()).collect();
        out.push(Recommendation {
            kind: "repeated_timeouts",
            severity: Severity::Warning,
            title: format!(
                "{rsc} {task} timed out {} times: raise its timeout if the service is just slow \
                 (`pcs resource op remove/add`, or a change from this console), or look at why the service hangs",
                list.len()
            ),
            evidence: vec![
                format!(
                    "{} timeouts of {rsc} {op} on {}",
                    list.len(),
                    nodes.into_iter().collect::<Vec<_>>().join(", ")
                ),
                format!("first {}, last {}", format::time(list[0].time_us), format::time(list[list.len() - 1].time_us)),
            ],
            rule: None,
        });
    }
}

fn repeated_failovers(inp: &Inputs, out: &mut Vec<Recommendation>) {
    let mut by_rsc: BTreeMap<String, Vec<&Incident>> = BTreeMap::new();
    for i in inp.incidents.iter().filter(|i| i.outcome == Some(Outcome::Failover)) {
        if let Some(r) = &i.rsc {
            by_rsc.entry(r.clone()).or_default().push(i);
        }
    }
    for (rsc, mut list) in by_rsc {
        if list.len() < REPEATED_FAILOVERS {
            continue;
        }
        list.sort_by_key(|i| i.detected_us);
        out.push(Recommendation {
            kind: "repeated_failovers",
            severity: Severity::Warning,
            title: format!(
                "{rsc} reached its migration-threshold and failed over {} times: fix the service instead of failing over \
                 (its failed actions and logs say why it fails)",
                list.len()
            ),
            evidence: list
                .iter()
                .map(|i| {
                    format!(
                        "incident {} at {}: {} → {}",
                        i.id,
                        format::time(i.detected_us),
                        i.node,
                        i.recovered_on.join(", ")
                    )
                })
                .collect(),
            rule: None,
        });
    }
}

fn fencing_failed(inp: &Inputs, out: &mut Vec<Recommendation>) {
    let mut failed: Vec<&EventRow> = inp.events.iter().filter(|e| e.category == "fencing_failed").collect();
    if failed.is_empty() {
        return;
    }
    failed.sort_by_key(|e| e.time_us);
    out.push(Recommendation {
        kind: "fencing_failed",
        severity: Severity::Critical,
        title: "Fencing failed: check the UPS, its serial/USB cable and the fence device's parameters \
                (`pcs stonith status`, `pcs stonith fence NODE` in a maintenance window)"
            .to_string(),
        evidence: failed.iter().map(|e| format!("{}: {}", format::time(e.time_us), e.summary)).collect(),
        rule: None,
    });
}

fn silent_nodes(inp: &Inputs, out: &mut Vec<Recommendation>) {
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for e in inp.events {
        for r in &e.reporters {
            let t = last.entry(r.as_str()).or_insert(i64::MIN);
            *t = (*t).max(e.time_us);
        }
    }
    let (Some(newest), Some(oldest)) = (last.values().copied().max(), inp.events.iter().map(|e| e.time_us).min())
    else {
        return;
    };
    let limit = SILENT_DAYS * DAY_US;
    for node in inp.nodes {
        // Silent: another node kept reporting for SILENT_DAYS after this one's last report (or
        // after the window's first report, if this one sent none in the window).
        let evidence = match last.get(node.as_str()) {
            Some(&t) if newest - t >= limit => {
                format!(
                    "{node} last reported {}; another node reported until {}",
                    format::time(t),
                    format::time(newest)
                )
            }
            None if newest - oldest >= limit => format!(
                "{node} sent none of the {} events reported from {} to {}",
                inp.events.len(),
                format::time(oldest),
                format::time(newest)
            ),
            _ => continue,
        };
        out.push(Recommendation {
            kind: "node_silent",
            severity: Severity::Warning,
            title: format!(
                "{node} reports nothing for too long: check its alert agent (`pcs alert`, its spool, \
                 `hastack alert flush`) and that it reaches the console"
            ),
            evidence: vec![evidence],
            rule: None,
        });
    }
}
