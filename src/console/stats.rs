//! Per-cluster statistics over a time window, from its incidents (pure; the store supplies the
//! rows). Definitions (README.md "Console"):
//! - MTTR: recovery − detection of the failovers and restarts detected in the window; median and
//!   90th percentile (nearest rank).
//! - Failovers and restarts per 30 days: their count scaled to 30 days of the observed window
//!   (the window, or less if the console has heard of the cluster for less).
//! - Fence success rate: successful fencing events / all fencing events in the window.
//! - MTBF: observed time outside incidents / incidents detected in the window.
//! - Time since the last incident: from its detection, whatever the window.

use serde::Serialize;

use super::derive::{Incident, IncidentKind, Outcome};

pub const DAY_US: i64 = 86_400 * 1_000_000;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub window_days: i64,
    /// How much of the window the console has heard of the cluster, in days.
    pub observed_days: f64,
    pub incidents: u32,
    pub open_incidents: u32,
    pub failovers: u32,
    pub restarts: u32,
    pub node_incidents: u32,
    pub mttr_median_ms: Option<i64>,
    pub mttr_p90_ms: Option<i64>,
    pub failovers_per_30d: Option<f64>,
    pub restarts_per_30d: Option<f64>,
    pub fencing_ok: u32,
    pub fencing_failed: u32,
    /// 0..1; None without fencing events.
    pub fence_success_rate: Option<f64>,
    pub mtbf_hours: Option<f64>,
    pub since_last_incident_s: Option<i64>,
}

/// What the statistics read of an incident (the store keeps these per cluster between requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub kind: IncidentKind,
    pub detected_us: i64,
    pub recovered_us: Option<i64>,
    pub outcome: Option<Outcome>,
}

impl Span {
    pub fn mttr_ms(&self) -> Option<i64> {
        match self.outcome {
            Some(Outcome::Failover | Outcome::Restart) => self.recovered_us.map(|r| (r - self.detected_us) / 1000),
            _ => None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.recovered_us.is_none()
    }
}

impl From<&Incident> for Span {
    fn from(i: &Incident) -> Span {
        Span { kind: i.kind, detected_us: i.detected_us, recovered_us: i.recovered_us, outcome: i.outcome }
    }
}

pub struct Inputs<'a> {
    pub now_us: i64,
    pub window_days: i64,
    /// When the cluster's first report arrived (its first event time).
    pub first_seen_us: Option<i64>,
    /// Incidents detected in the window.
    pub incidents: &'a [Span],
    /// The latest incident's detection time, in or before the window.
    pub last_incident_us: Option<i64>,
    /// Fencing events in the window: (succeeded, failed).
    pub fencing: (u32, u32),
}

pub fn compute(inp: &Inputs) -> Stats {
    let window_start = inp.now_us - inp.window_days * DAY_US;
    let observed_from = inp.first_seen_us.map_or(window_start, |f| f.max(window_start));
    let observed_us = (inp.now_us - observed_from).max(0);
    let observed_days = observed_us as f64 / DAY_US as f64;

    let mut mttrs: Vec<i64> = inp.incidents.iter().filter_map(Span::mttr_ms).collect();
    mttrs.sort_unstable();
    let count = |o: Outcome| inp.incidents.iter().filter(|i| i.outcome == Some(o)).count() as u32;
    let failovers = count(Outcome::Failover);
    let restarts = count(Outcome::Restart);
    let per_30d = |n: u32| (observed_days >= 1.0).then(|| n as f64 * 30.0 / observed_days);

    // Time inside incidents, clipped to the observed window (an open one lasts until now).
    let down_us: i64 = inp
        .incidents
        .iter()
        .map(|i| i.recovered_us.unwrap_or(inp.now_us).min(inp.now_us) - i.detected_us.max(observed_from))
        .map(|d| d.max(0))
        .sum();
    let n = inp.incidents.len() as u32;
    let (ok, failed) = inp.fencing;
    Stats {
        window_days: inp.window_days,
        observed_days,
        incidents: n,
        open_incidents: inp.incidents.iter().filter(|i| i.is_open()).count() as u32,
        failovers,
        restarts,
        node_incidents: inp.incidents.iter().filter(|i| i.kind == IncidentKind::Node).count() as u32,
        mttr_median_ms: percentile(&mttrs, 50),
        mttr_p90_ms: percentile(&mttrs, 90),
        failovers_per_30d: per_30d(failovers),
        restarts_per_30d: per_30d(restarts),
        fencing_ok: ok,
        fencing_failed: failed,
        fence_success_rate: (ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64),
        mtbf_hours: (n > 0).then(|| (observed_us - down_us).max(0) as f64 / n as f64 / 3.6e9),
        since_last_incident_s: inp.last_incident_us.map(|t| ((inp.now_us - t) / 1_000_000).max(0)),
    }
}

/// Nearest-rank percentile of sorted values (p in 1..=100): the median of [1, 2, 3, 4] is 2.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(detected_s: i64, mttr_s: Option<i64>, outcome: Option<Outcome>) -> Incident {
        Incident {
            id: detected_s,
            kind: IncidentKind::Resource,
            rsc: Some("app".into()),
            node: "n1".into(),
            detected_us: detected_s * 1_000_000,
            recovered_us: mttr_s.map(|m| (detected_s + m) * 1_000_000),
            outcome,
            recovered_on: vec![],
            affected: vec!["app".into()],
            pending: vec![],
            fence_ok: 0,
            fence_failed: 0,
            summary: String::new(),
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&ten, 90), Some(9));
        assert_eq!(percentile(&ten, 50), Some(5));
    }

    #[test]
    fn rates_scale_to_thirty_days_of_what_was_observed() {
        let day = 86_400;
        let now = 100 * day;
        let incidents = [
            incident(now - 50 * day, Some(10), Some(Outcome::Failover)),
            incident(now - 40 * day, Some(20), Some(Outcome::Restart)),
            incident(now - 30 * day, Some(30), Some(Outcome::Failover)),
            incident(now - 10, None, None),
        ];
        let s = compute(&Inputs {
            now_us: now * 1_000_000,
            window_days: 90,
            first_seen_us: Some((now - 60 * day) * 1_000_000),
            incidents: &incidents.iter().map(Span::from).collect::<Vec<_>>(),
            last_incident_us: Some((now - 10) * 1_000_000),
            fencing: (3, 1),
        });
        assert_eq!(s.observed_days, 60.0);
        assert_eq!((s.incidents, s.open_incidents, s.failovers, s.restarts), (4, 1, 2, 1));
        assert_eq!(s.mttr_median_ms, Some(20_000));
        assert_eq!(s.mttr_p90_ms, Some(30_000));
        assert_eq!(s.failovers_per_30d, Some(1.0));
        assert_eq!(s.restarts_per_30d, Some(0.5));
        assert_eq!(s.fence_success_rate, Some(0.75));
        assert_eq!(s.since_last_incident_s, Some(10));
        // 60 days minus 70 s of incidents, over 4 incidents.
        let mtbf = (60.0 * 86_400.0 - 70.0) / 4.0 / 3600.0;
        assert!((s.mtbf_hours.unwrap() - mtbf).abs() < 1e-9, "{:?}", s.mtbf_hours);
    }
}
