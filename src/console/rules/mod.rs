//! Requirements: the operator's rules (a versioned TOML file, `crm-config/console-rules.toml` is
//! the shipped default for the hastack stack), read once when the console starts, and checked
//! against each cluster's latest snapshot and statistics (`checks`). A finding always carries the
//! values that broke the rule, not just its name.
//!
//! The file is read table by table (not through serde's derive) so that every mistake names the
//! rule and the field it is in: `rule "monitor-interval" (rule 3): field max: ...`.

mod checks;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use toml::{Table, Value};

pub use checks::{evaluate, Finding, Status};

/// The rules the console ships: used when neither `--rules` nor the default path names a file.
pub const BUILTIN: &str = include_str!("../../../crm-config/console-rules.toml");
/// Read instead of the built-in rules when it exists (packaging does not install it: the
/// administrator copies and edits the shipped file there).
pub const DEFAULT_PATH: &str = "/etc/hastack/console-rules.toml";
/// The file format this console reads (`format = 1`).
pub const FORMAT: i64 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct RuleSet {
    /// The operator's own version of the requirements (`version = "..."`), shown with findings.
    pub version: String,
    /// Where they came from: a path, or `built-in`.
    pub source: String,
    /// The statistics window the statistics rules look at, in days.
    pub window_days: i64,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rule {
    pub id: String,
    /// What it checks, in a sentence.
    pub what: String,
    pub severity: Severity,
    pub remediation: String,
    pub check: Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

/// What a rule checks, with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum Check {
    /// `stonith-enabled` is true and at least one fence device is configured.
    FencingEnabled,
    /// Every fence device has a recurring monitor in its history.
    FenceDevicesMonitored,
    /// Every running resource has a recurring monitor, none slower than `max_ms`.
    MonitorInterval { max_ms: u64 },
    /// Every resource has a migration-threshold (not INFINITY), at most `max` if given.
    MigrationThreshold { max: Option<u64> },
    /// No resource's fail-count has reached its migration-threshold on a node.
    FailCountBelowThreshold,
    /// At least `min` Corosync links (knet) per node.
    CorosyncLinks { min: u64 },
    /// The MTTR (median or p90) of the window at most `max_ms`.
    Mttr { max_ms: u64, stat: MttrStat },
    /// At least `min_percent` of the window's fencing operations succeeded.
    FenceSuccess { min_percent: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MttrStat {
    Median,
    P90,
}

impl Check {
    pub fn name(&self) -> &'static str {
        match self {
            Check::FencingEnabled => "fencing_enabled",
            Check::FenceDevicesMonitored => "fence_devices_monitored",
            Check::MonitorInterval { .. } => "monitor_interval",
            Check::MigrationThreshold { .. } => "migration_threshold",
            Check::FailCountBelowThreshold => "fail_count_below_threshold",
            Check::CorosyncLinks { .. } => "corosync_links",
            Check::Mttr { .. } => "mttr",
            Check::FenceSuccess { .. } => "fence_success",
        }
    }
}

const CHECKS: &str = "fencing_enabled, fence_devices_monitored, monitor_interval, migration_threshold, \
                      fail_count_below_threshold, corosync_links, mttr, fence_success";

impl RuleSet {
    /// The rules the console uses: `path` if given (it must exist), else `DEFAULT_PATH` if it
    /// exists, else the built-in ones.
    pub fn load(path: Option<&Path>) -> Result<RuleSet> {
        let path: Option<PathBuf> = match path {
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
        };
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read the rules file {}", p.display()))?;
                RuleSet::parse(&text, &p.display().to_string()).with_context(|| format!("rules file {}", p.display()))
            }
            None => RuleSet::parse(BUILTIN, "built-in"),
        }
    }

    /// Reads a rules file's text; `source` is how findings name it.
    pub fn parse(text: &str, source: &str) -> Result<RuleSet> {
        let doc: Table = text.parse().map_err(|e: toml::de::Error| anyhow!("not valid TOML: {e}"))?;
        for key in doc.keys() {
            if !["format", "version", "window_days", "rule"].contains(&key.as_str()) {
                bail!("unknown top-level field {key:?} (expected format, version, window_days, [[rule]])");
            }
        }
        match doc.get("format") {
            Some(Value::Integer(FORMAT)) => {}
            Some(other) => bail!("field format: this console reads format = {FORMAT}, the file says {}", show(other)),
            None => bail!("field format: missing (format = {FORMAT})"),
        }
        let version = match doc.get("version") {
            Some(Value::String(v)) if !v.trim().is_empty() => v.clone(),
            Some(_) => bail!("field version: expected a non-empty string, e.g. version = \"2026-12-01\""),
            None => bail!("field version: missing (the requirements' own version, e.g. version = \"2026-12-01\")"),
        };
        let window_days = match doc.get("window_days") {
            None => super::api::DEFAULT_DAYS,
            Some(Value::Integer(d)) if (1..=super::api::MAX_DAYS).contains(d) => *d,
            Some(other) => bail!("field window_days: expected 1..={} days, got {}", super::api::MAX_DAYS, show(other)),
        };
        let tables = match doc.get("rule") {
            Some(Value::Array(a)) => a,
            Some(_) => bail!("field rule: expected [[rule]] tables"),
            None => bail!("no [[rule]]: a rules file needs at least one rule"),
        };
        let mut rules: Vec<Rule> = Vec::new();
        for (k, t) in tables.iter().enumerate() {
            let Value::Table(t) = t else { bail!("rule {}: expected a table", k + 1) };
            let rule = parse_rule(t).map_err(|e| match t.get("id").and_then(Value::as_str) {
                Some(id) => anyhow!("rule {id:?} (rule {}): {e}", k + 1),
                None => anyhow!("rule {}: {e}", k + 1),
            })?;
            if rules.iter().any(|r| r.id == rule.id) {
                bail!("rule {:?} (rule {}): field id: another rule has this id", rule.id, k + 1);
            }
            rules.push(rule);
        }
        Ok(RuleSet { version, source: source.to_string(), window_days, rules })
    }
}

fn parse_rule(t: &Table) -> Result<Rule> {
    let text = |name: &str| -> Result<String> {
        match t.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(other) => bail!("field {name}: expected a non-empty string, got {}", show(other)),
            None => bail!("field {name}: missing"),
        }
    };
    let id = text("id")?;
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
        bail!("field id: {id:?}: use letters, digits, '-', '_' or '.'");
    }
    let check_name = text("check")?;
    let what = text("what")?;
    let remediation = text("remediation")?;
    let severity = match t.get("severity").map(|v| v.as_str()) {
        None | Some(Some("warning")) => Severity::Warning,
        Some(Some("critical")) => Severity::Critical,
        Some(_) => bail!("field severity: expected \"warning\" or \"critical\", got {}", show(&t["severity"])),
    };
    let (check, params): (Check, &[&str]) = match check_name.as_str() {
        "fencing_enabled" => (Check::FencingEnabled, &[]),
        "fence_devices_monitored" => (Check::FenceDevicesMonitored, &[]),
        "monitor_interval" => (Check::MonitorInterval { max_ms: duration(t, "max")? }, &["max"]),
        "migration_threshold" => {
            let max = if t.contains_key("max") { Some(positive(t, "max")?) } else { None };
            (Check::MigrationThreshold { max }, &["max"])
        }
        "fail_count_below_threshold" => (Check::FailCountBelowThreshold, &[]),
        "corosync_links" => (Check::CorosyncLinks { min: positive(t, "min")? }, &["min"]),
        "mttr" => {
            let stat = match t.get("stat").map(|v| v.as_str()) {
                None | Some(Some("p90")) => MttrStat::P90,
                Some(Some("median")) => MttrStat::Median,
                Some(_) => bail!("field stat: expected \"median\" or \"p90\", got {}", show(&t["stat"])),
            };
            (Check::Mttr { max_ms: duration(t, "max")?, stat }, &["max", "stat"])
        }
        "fence_success" => {
            let min = match t.get("min_percent") {
                Some(Value::Integer(n)) => *n as f64,
                Some(Value::Float(f)) => *f,
                Some(other) => bail!("field min_percent: expected a number 0..=100, got {}", show(other)),
                None => bail!("field min_percent: missing (e.g. min_percent = 100)"),
            };
            if !(0.0..=100.0).contains(&min) {
                bail!("field min_percent: expected 0..=100, got {min}");
            }
            (Check::FenceSuccess { min_percent: min }, &["min_percent"])
        }
        other => bail!("field check: unknown check {other:?} (expected one of {CHECKS})"),
    };
    for key in t.keys() {
        let common = ["id", "check", "what", "remediation", "severity"].contains(&key.as_str());
        if !common && !params.contains(&key.as_str()) {
            let takes = if params.is_empty() { "no parameter".to_string() } else { params.join(", ") };
            bail!("field {key}: not a parameter of check {check_name} (it takes {takes})");
        }
    }
    Ok(Rule { id, what, severity, remediation, check })
}

/// A Pacemaker-style duration (`30s`, `2min`, `500ms`, a bare number is seconds), above zero.
fn duration(t: &Table, name: &str) -> Result<u64> {
    match t.get(name) {
        Some(Value::String(s)) => match crate::config::validate::duration_ms(s.trim()) {
            Some(ms) if ms > 0 => Ok(ms),
            _ => bail!("field {name}: {s:?} is not a duration above zero (e.g. \"30s\", \"2min\", \"500ms\")"),
        },
        Some(Value::Integer(n)) if *n > 0 => {
            (*n as u64).checked_mul(1000).ok_or_else(|| anyhow!("field {name}: {n} seconds is too long a duration"))
        }
        Some(other) => bail!("field {name}: expected a duration such as \"30s\", got {}", show(other)),
        None => bail!("field {name}: missing (a duration such as \"30s\")"),
    }
}

fn positive(t: &Table, name: &str) -> Result<u64> {
    match t.get(name) {
        Some(Value::Integer(n)) if *n > 0 => Ok(*n as u64),
        Some(other) => bail!("field {name}: expected a whole number above zero, got {}", show(other)),
        None => bail!("field {name}: missing"),
    }
}

/// A value as the file wrote it, for errors (the toml crate is built without its printer).
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Integer(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Table(_) => "a table".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", RuleSet::parse(text, "test").unwrap_err())
    }

    const HEAD: &str = "format = 1\nversion = \"t1\"\n";

    #[test]
    fn the_shipped_rules_load() {
        let set = RuleSet::parse(BUILTIN, "built-in").unwrap();
        let checks: Vec<&str> = set.rules.iter().map(|r| r.check.name()).collect();
        for c in CHECKS.split(", ").map(str::trim) {
            assert!(checks.contains(&c), "the defaults use every check; {c} is missing: {checks:?}");
        }
        assert!(set.rules.iter().all(|r| !r.remediation.is_empty()));
    }

    #[test]
    fn a_bad_rule_is_named_with_its_field() {
        let rule = |body: &str| format!("{HEAD}[[rule]]\nid = \"mon\"\nwhat = \"w\"\nremediation = \"r\"\n{body}\n");
        assert_eq!(
            err(&rule("check = \"monitor_interval\"\nmax = \"fast\"")),
            "rule \"mon\" (rule 1): field max: \"fast\" is not a duration above zero (e.g. \"30s\", \"2min\", \"500ms\")"
        );
        // Seconds as an integer, too many to count in milliseconds: an error, not a wrapped value.
        assert_eq!(
            err(&rule("check = \"monitor_interval\"\nmax = 9223372036854775807")),
            "rule \"mon\" (rule 1): field max: 9223372036854775807 seconds is too long a duration"
        );
        assert_eq!(
            err(&rule("check = \"monitor_interval\"")),
            "rule \"mon\" (rule 1): field max: missing (a duration such as \"30s\")"
        );
        assert!(err(&rule("check = \"monitor_intervals\""))
            .starts_with("rule \"mon\" (rule 1): field check: unknown check \"monitor_intervals\""));
        assert_eq!(
            err(&rule("check = \"fencing_enabled\"\nmax = \"30s\"")),
            "rule \"mon\" (rule 1): field max: not a parameter of check fencing_enabled (it takes no parameter)"
        );
        assert_eq!(
            err(&rule("check = \"fence_success\"\nmin_percent = 120")),
            "rule \"mon\" (rule 1): field min_percent: expected 0..=100, got 120"
        );
        assert_eq!(
            err(&rule("check = \"mttr\"\nmax = \"60s\"\nseverity = \"fatal\"")),
            "rule \"mon\" (rule 1): field severity: expected \"warning\" or \"critical\", got \"fatal\""
        );
        let no_id = format!("{HEAD}[[rule]]\ncheck = \"fencing_enabled\"\n");
        assert_eq!(err(&no_id), "rule 1: field id: missing");
        let twice = format!(
            "{HEAD}[[rule]]\nid = \"a\"\ncheck = \"fencing_enabled\"\nwhat = \"w\"\nremediation = \"r\"\n\
             [[rule]]\nid = \"a\"\ncheck = \"fencing_enabled\"\nwhat = \"w\"\nremediation = \"r\"\n"
        );
        assert_eq!(err(&twice), "rule \"a\" (rule 2): field id: another rule has this id");
    }

    #[test]
    fn the_file_says_its_format_and_version() {
        assert_eq!(err("version = \"x\"\n[[rule]]\n"), "field format: missing (format = 1)");
        assert_eq!(
            err("format = 2\nversion = \"x\"\n"),
            "field format: this console reads format = 1, the file says 2"
        );
        assert!(err("format = 1\n").starts_with("field version: missing"));
        assert!(err("format = 1\nversion = \"x\"\nrules = []\n").starts_with("unknown top-level field \"rules\""));
        assert!(err("format = 1\nversion = \"x\"\n").starts_with("no [[rule]]"));
        assert!(err("format = 1\nversion = \n").starts_with("not valid TOML"));
    }

    #[test]
    fn a_missing_rules_file_is_an_error_naming_it() {
        let e = format!("{:#}", RuleSet::load(Some(Path::new("/nonexistent/rules.toml"))).unwrap_err());
        assert!(e.starts_with("cannot read the rules file /nonexistent/rules.toml"), "{e}");
    }
}
