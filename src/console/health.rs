//! A cluster's colour on the fleet grid and the reasons for it, from its summary alone.
//! red: someone must act now (an open incident with a service down, no quorum, a failed or
//! blocked resource, a service stopped everywhere); amber: running without full redundancy or
//! with something to clean up (an open incident with no service down, e.g. the standby node
//! lost; a node not online; failed actions recorded; maintenance mode; the reporter's clock
//! ahead); green: none of these; grey: no report yet.

use serde::Serialize;

use super::store::ClusterSummary;

/// How long after a clock-ahead report the tile keeps saying so.
const CLOCK_NOTICE_US: i64 = 24 * 3600 * 1_000_000;
/// The tile's MTTR is the median over this many days.
pub const TILE_MTTR_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Grey,
    Green,
    Amber,
    Red,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Grey => "grey",
            Level::Green => "green",
            Level::Amber => "amber",
            Level::Red => "red",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Health {
    pub level: Level,
    /// Why, worst first; empty for green.
    pub reasons: Vec<String>,
}

pub fn health(c: &ClusterSummary, now_us: i64) -> Health {
    let mut red = Vec::new();
    let mut amber = Vec::new();
    if c.reports == 0 {
        return Health { level: Level::Grey, reasons: vec!["no report yet".into()] };
    }
    if c.open_incidents > 0 {
        let what = c.open_summary.clone().unwrap_or_default();
        let n =
            if c.open_incidents > 1 { format!("{} open incidents", c.open_incidents) } else { "open incident".into() };
        if c.open_down > 0 {
            red.push(format!("{n}: {what}"));
        } else {
            // A node lost that ran no service alone: redundancy is gone, the service is not.
            amber.push(format!("{n}, no service down: {what}"));
        }
    }
    if let Some(s) = &c.snapshot {
        if s.quorum == Some(false) {
            red.push("partition without quorum".into());
        }
        if !s.failed_resources.is_empty() {
            red.push(format!("failed: {}", s.failed_resources.join(", ")));
        }
        if !s.stopped_resources.is_empty() {
            red.push(format!("stopped everywhere: {}", s.stopped_resources.join(", ")));
        }
        let down: Vec<String> =
            s.nodes.iter().filter(|(_, state)| state != "online").map(|(n, state)| format!("{n} {state}")).collect();
        if !down.is_empty() {
            amber.push(down.join(", "));
        }
        if s.failed_actions > 0 {
            let n = s.failed_actions;
            amber.push(format!("{n} failed action{} to clean up", if n > 1 { "s" } else { "" }));
        }
        if s.maintenance_mode {
            amber.push("maintenance mode".into());
        }
    } else if let Some(e) = &c.snapshot_error {
        amber.push(format!("no snapshot: {e}"));
    }
    if let (Some(at), Some(ms)) = (c.clock_ahead.last_us, c.clock_ahead.last_ms) {
        if now_us - at < CLOCK_NOTICE_US {
            let node = c.clock_ahead.last_node.as_deref().unwrap_or("a node");
            amber.push(format!("{node}'s clock is {} ahead", super::pages::format::duration_ms(ms)));
        }
    }
    if c.id_source.as_deref() == Some("none") {
        amber.push("the alert has no cluster_id (reported as \"unnamed\")".into());
    }
    let level = if !red.is_empty() {
        Level::Red
    } else if !amber.is_empty() {
        Level::Amber
    } else {
        Level::Green
    };
    red.extend(amber);
    Health { level, reasons: red }
}

/// The tile's MTTR: median of the recoveries in the last `TILE_MTTR_DAYS` days.
pub fn tile_mttr_ms(c: &ClusterSummary, now_us: i64) -> Option<i64> {
    let since = now_us - TILE_MTTR_DAYS * super::stats::DAY_US;
    let mut v: Vec<i64> = c.recent_mttr.iter().filter(|(at, _)| *at >= since).map(|(_, ms)| *ms).collect();
    v.sort_unstable();
    super::stats::percentile(&v, 50)
}
