//! Fleet comparison: each cluster's statistics against the fleet's median and 90th percentile
//! (pure; the caller computes every cluster's `Stats` over one window). Every compared metric is
//! one where more is worse. A cluster is an **outlier** on a metric when its value is at least
//! `OUTLIER_FACTOR` times the fleet's median and above it (so with a median of 0, any non-zero
//! value), and at least `MIN_CLUSTERS` clusters have a value to compare.

use serde::Serialize;

use super::stats::Stats;

pub const OUTLIER_FACTOR: f64 = 3.0;
pub const MIN_CLUSTERS: usize = 3;

/// The compared metrics: (key, label, unit, value).
#[allow(clippy::type_complexity)]
pub const METRICS: [(&str, &str, &str, fn(&Stats) -> Option<f64>); 5] = [
    ("mttr_median_ms", "MTTR median", "ms", |s| s.mttr_median_ms.map(|v| v as f64)),
    ("mttr_p90_ms", "MTTR p90", "ms", |s| s.mttr_p90_ms.map(|v| v as f64)),
    ("failovers_per_30d", "failovers / 30 days", "", |s| s.failovers_per_30d),
    ("restarts_per_30d", "restarts / 30 days", "", |s| s.restarts_per_30d),
    ("fence_failure_percent", "fencing failed", "%", |s| s.fence_success_rate.map(|r| (1.0 - r) * 100.0)),
];

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetMetric {
    pub metric: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    /// Clusters with a value (a cluster without recoveries has no MTTR).
    pub clusters: usize,
    pub median: Option<f64>,
    pub p90: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cell {
    pub metric: &'static str,
    pub value: Option<f64>,
    /// value / the fleet's median (none when the median is 0 or unknown).
    pub ratio: Option<f64>,
    pub outlier: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ClusterRow {
    pub name: String,
    pub cells: Vec<Cell>,
    /// A sentence per flagged metric: `MTTR p90 3 min 10 s is 4.1× the fleet's median (46.0 s)`.
    pub outliers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub window_days: i64,
    pub factor: f64,
    pub metrics: Vec<FleetMetric>,
    pub clusters: Vec<ClusterRow>,
}

impl Comparison {
    pub fn row(&self, name: &str) -> Option<&ClusterRow> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// Nearest-rank percentile of values (p in 1..=100), as `stats::percentile` for integers.
fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

pub fn format_value(v: f64, unit: &str) -> String {
    match unit {
        "ms" => super::pages::format::duration_ms(v.round() as i64),
        "%" => format!("{v:.0}%"),
        _ => format!("{v:.1}"),
    }
}

pub fn compare(stats: &[(String, Stats)], window_days: i64) -> Comparison {
    let metrics: Vec<FleetMetric> = METRICS
        .iter()
        .map(|(key, label, unit, get)| {
            let mut values: Vec<f64> = stats.iter().filter_map(|(_, s)| get(s)).collect();
            values.sort_by(f64::total_cmp);
            FleetMetric {
                metric: key,
                label,
                unit,
                clusters: values.len(),
                median: percentile(&values, 50),
                p90: percentile(&values, 90),
            }
        })
        .collect();
    let clusters = stats
        .iter()
        .map(|(name, s)| {
            let mut outliers = Vec::new();
            let cells = METRICS
                .iter()
                .zip(&metrics)
                .map(|((_, label, unit, get), fleet)| {
                    let value = get(s);
                    let median = fleet.median.unwrap_or(0.0);
                    let ratio = value.filter(|_| median > 0.0).map(|v| v / median);
                    let outlier = fleet.clusters >= MIN_CLUSTERS
                        && value.is_some_and(|v| v > median && v >= OUTLIER_FACTOR * median);
                    if outlier {
                        let v = value.unwrap_or_default();
                        outliers.push(match ratio {
                            Some(r) => format!(
                                "{label} {} is {r:.1}× the fleet's median ({})",
                                format_value(v, unit),
                                format_value(median, unit)
                            ),
                            None => format!("{label} {} where the fleet's median is 0", format_value(v, unit)),
                        });
                    }
                    Cell { metric: fleet.metric, value, ratio, outlier }
                })
                .collect();
            ClusterRow { name: name.clone(), cells, outliers }
        })
        .collect();
    Comparison { window_days, factor: OUTLIER_FACTOR, metrics, clusters }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(mttr_p90_s: Option<i64>, fence: (u32, u32)) -> Stats {
        Stats {
            mttr_median_ms: mttr_p90_s.map(|s| s * 500),
            mttr_p90_ms: mttr_p90_s.map(|s| s * 1000),
            fencing_ok: fence.0,
            fencing_failed: fence.1,
            fence_success_rate: (fence.0 + fence.1 > 0).then(|| fence.0 as f64 / (fence.0 + fence.1) as f64),
            ..Stats::default()
        }
    }

    #[test]
    fn a_cluster_three_times_slower_than_the_fleet_median_is_flagged() {
        let fleet = vec![
            ("a".to_string(), stats(Some(20), (2, 0))),
            ("b".to_string(), stats(Some(22), (1, 0))),
            ("c".to_string(), stats(Some(25), (1, 0))),
            ("slow".to_string(), stats(Some(70), (1, 1))),
            ("quiet".to_string(), stats(None, (0, 0))),
        ];
        let c = compare(&fleet, 90);
        let p90 = c.metrics.iter().find(|m| m.metric == "mttr_p90_ms").unwrap();
        assert_eq!((p90.clusters, p90.median, p90.p90), (4, Some(22_000.0), Some(70_000.0)));
        let slow = c.row("slow").unwrap();
        assert_eq!(slow.outliers[0], "MTTR median 35.0 s is 3.2× the fleet's median (11.0 s)");
        assert_eq!(slow.outliers[1], "MTTR p90 1 min 10 s is 3.2× the fleet's median (22.0 s)");
        assert_eq!(slow.outliers[2], "fencing failed 50% where the fleet's median is 0");
        assert!(c.row("c").unwrap().outliers.is_empty());
        let quiet = c.row("quiet").unwrap();
        assert!(quiet.outliers.is_empty() && quiet.cells[1].value.is_none());
    }

    #[test]
    fn too_small_a_fleet_flags_nothing() {
        let fleet = vec![("a".to_string(), stats(Some(10), (1, 0))), ("b".to_string(), stats(Some(90), (0, 1)))];
        let c = compare(&fleet, 30);
        assert!(c.clusters.iter().all(|r| r.outliers.is_empty()), "{c:#?}");
    }
}
