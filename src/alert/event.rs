//! What Pacemaker told the agent: the `CRM_alert_*` variables (console-notes §1), typed, and the
//! decision whether the event is routine (ignored) or reported, with its category, severity and
//! the one line the operator reads. Pure: no I/O, so the ignore decision costs microseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

const PREFIX: &str = "CRM_alert_";

/// Every `CRM_alert_*` variable, names without the prefix, values as received.
#[derive(Clone, Debug, Default)]
pub struct AlertEnv {
    vars: BTreeMap<String, String>,
}

impl AlertEnv {
    /// From this process's environment (non-UTF-8 values are taken lossily).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.to_str()?.strip_prefix(PREFIX)?.to_string();
                Some((k, v.to_string_lossy().into_owned()))
            })
            .collect();
        AlertEnv { vars }
    }

    /// From `(name, value)` pairs with or without the prefix (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let vars =
            pairs.into_iter().map(|(k, v)| (k.strip_prefix(PREFIX).unwrap_or(k).to_string(), v.to_string())).collect();
        AlertEnv { vars }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A variable that must be an integer; None if unset or not one.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.trim().parse().ok())
    }

    /// Everything except the recipient (a URL may carry credentials; the console knows its URL).
    pub fn raw(&self) -> BTreeMap<String, String> {
        self.vars.iter().filter(|(k, _)| k.as_str() != "recipient").map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn kind(&self) -> &str {
        self.get("kind").unwrap_or("")
    }

    pub fn recipient(&self) -> &str {
        self.get("recipient").unwrap_or("").trim()
    }

    /// The typed variables, as the report carries them.
    pub fn typed(&self) -> Typed {
        let s = |n: &str| self.get(n).map(str::to_string);
        Typed {
            node: s("node"),
            nodeid: self.int("nodeid"),
            desc: s("desc"),
            task: s("task"),
            rc: self.int("rc"),
            rsc: s("rsc"),
            interval: self.int("interval"),
            target_rc: self.int("target_rc"),
            status: self.int("status"),
            exec_time: self.int("exec_time"),
            attribute_name: s("attribute_name"),
            attribute_value: s("attribute_value"),
        }
    }
}

/// `event.alert` of the report (docs/report-schema.json): written by the alert agent, read back
/// by the console.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Typed {
    pub node: Option<String>,
    pub nodeid: Option<i64>,
    pub desc: Option<String>,
    pub task: Option<String>,
    pub rc: Option<i64>,
    pub rsc: Option<String>,
    pub interval: Option<i64>,
    pub target_rc: Option<i64>,
    pub status: Option<i64>,
    pub exec_time: Option<i64>,
    pub attribute_name: Option<String>,
    pub attribute_value: Option<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    NodeMember,
    NodeLost,
    NodeState,
    FencingSucceeded,
    FencingFailed,
    OperationSucceeded,
    OperationFailed,
    Degraded,
    FoundActive,
    AttributeChanged,
    Other,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// A reported event, as the agent classified it.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    pub category: Category,
    pub severity: Severity,
    pub summary: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Routine: nothing is logged, spooled or sent. The text says why (tests, debugging).
    Ignore(&'static str),
    Report(Classified),
}

/// Operations whose success changes where or how a service runs: the operator hears of them and
/// the console needs them to close an incident (the restart or the failover).
const STATE_CHANGES: &[&str] = &["start", "stop", "promote", "demote", "migrate_to", "migrate_from"];

const EXEC_DONE: i64 = 0;
const EXEC_CANCELLED: i64 = 1;
const OCF_RUNNING_PROMOTED: i64 = 8;
const OCF_DEGRADED: i64 = 190;
const OCF_DEGRADED_PROMOTED: i64 = 191;

/// Routine or reported, and how. Only reads the variables: this runs before any set-up.
pub fn decide(env: &AlertEnv) -> Decision {
    let node = env.get("node").unwrap_or("?");
    let desc = env.get("desc").unwrap_or("");
    match env.kind() {
        "resource" => decide_resource(env),
        "node" => {
            let (category, severity, summary) = match desc {
                "member" => (Category::NodeMember, Severity::Info, format!("node {node} joined the cluster (member)")),
                "lost" => (Category::NodeLost, Severity::Warning, format!("node {node} left the cluster (lost)")),
                other => (Category::NodeState, Severity::Info, format!("node {node} is now {other}")),
            };
            Decision::Report(Classified { category, severity, summary })
        }
        "fencing" => {
            let ok = env.int("rc") == Some(0);
            let parsed = parse_fencing_desc(desc);
            let action = parsed.as_ref().map(|f| f.action.as_str()).unwrap_or("fencing");
            let (category, severity, summary) = if ok {
                (Category::FencingSucceeded, Severity::Warning, format!("node {node} was fenced ({action}): {desc}"))
            } else {
                let rc = env.get("rc").unwrap_or("?");
                (
                    Category::FencingFailed,
                    Severity::Critical,
                    format!("fencing of node {node} ({action}) FAILED (rc={rc}): {desc}"),
                )
            };
            Decision::Report(Classified { category, severity, summary })
        }
        "attribute" => {
            let name = env.get("attribute_name").unwrap_or("?");
            let summary = match env.get("attribute_value") {
                Some(v) => format!("node attribute {name} on {node} set to '{v}'"),
                None => format!("node attribute {name} on {node} deleted"),
            };
            Decision::Report(Classified { category: Category::AttributeChanged, severity: Severity::Info, summary })
        }
        other => {
            let kind = if other.is_empty() { "(none)" } else { other };
            let mut summary = format!("alert of unknown kind '{kind}' for node {node}");
            if !desc.is_empty() {
                summary.push_str(&format!(": {desc}"));
            }
            Decision::Report(Classified { category: Category::Other, severity: Severity::Info, summary })
        }
    }
}

/// Why an event is routine, or None: read from the variables alone, without allocating, so the
/// exit before Rust's runtime starts (`fast`) and `decide` share this one rule.
pub fn routine<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<&'static str> {
    let int = |name: &str| get(name).and_then(|v| v.trim().parse::<i64>().ok());
    if get("version").is_none() || get("kind") != Some("resource") {
        return None;
    }
    // Recurring monitors are cancelled at every stop, move and reconfiguration (alert_file.sh.sample
    // ignores them too). Pacemaker 2.1 sets status 1 and desc "Cancelled".
    let status = int("status").unwrap_or(EXEC_DONE);
    if status == EXEC_CANCELLED || get("desc") == Some("Cancelled") {
        return Some("cancelled operation");
    }
    let expected = status == EXEC_DONE && int("rc") == Some(int("target_rc").unwrap_or(0));
    if expected && !STATE_CHANGES.contains(&get("task").unwrap_or("")) {
        // A monitor confirming the expected state (first recurring result, a probe), a notify,
        // a reload: nothing changed.
        return Some("successful routine operation");
    }
    None
}

fn decide_resource(env: &AlertEnv) -> Decision {
    if let Some(why) = routine(|name| env.get(name)) {
        return Decision::Ignore(why);
    }
    let task = env.get("task").unwrap_or("");
    let status = env.int("status").unwrap_or(EXEC_DONE);
    let rc = env.int("rc");
    let target = env.int("target_rc").unwrap_or(0);
    let interval = env.int("interval").unwrap_or(0);
    let desc = env.get("desc").unwrap_or("");
    let done = status == EXEC_DONE;
    let expected = done && rc == Some(target);

    let rsc = env.get("rsc").unwrap_or("?");
    let node = env.get("node").unwrap_or("?");
    let op = match (task, interval) {
        ("monitor", 0) => "probe".to_string(),
        ("monitor", ms) => format!("monitor ({})", human_ms(ms)),
        ("", _) => "operation".to_string(),
        (t, _) => t.to_string(),
    };
    let classified = |category, severity, summary| Decision::Report(Classified { category, severity, summary });

    if expected {
        let what = match task {
            "start" => format!("{rsc} started on {node}"),
            "stop" => format!("{rsc} stopped on {node}"),
            "promote" => format!("{rsc} promoted on {node}"),
            "demote" => format!("{rsc} demoted on {node}"),
            "migrate_to" => format!("{rsc} migrated away from {node}"),
            _ => format!("{rsc} migrated to {node}"),
        };
        return classified(Category::OperationSucceeded, Severity::Info, what);
    }
    if done && matches!(rc, Some(OCF_DEGRADED | OCF_DEGRADED_PROMOTED)) {
        return classified(
            Category::Degraded,
            Severity::Warning,
            format!("{rsc} is degraded on {node}: {desc} ({op})"),
        );
    }
    if done && task == "monitor" && interval == 0 && matches!(rc, Some(0 | OCF_RUNNING_PROMOTED)) {
        return classified(
            Category::FoundActive,
            Severity::Info,
            format!("{rsc} found active on {node} by a probe ({desc})"),
        );
    }
    let detail = if done {
        format!("{desc} (rc={}, expected {target})", rc.map(|r| r.to_string()).unwrap_or_else(|| "?".into()))
    } else {
        match env.int("exec_time") {
            Some(ms) if ms > 0 => format!("{desc} after {}", human_ms(ms)),
            _ => desc.to_string(),
        }
    };
    // A failed monitor is recovered by Pacemaker (restart, then move); a failed start, stop,
    // promote or demote needs a look (a failed stop gets the node fenced).
    let severity = if task == "monitor" { Severity::Warning } else { Severity::Critical };
    classified(Category::OperationFailed, severity, format!("{rsc} {op} on {node} failed: {detail}"))
}

/// `10000` → `10s`, `1500` → `1500ms`.
fn human_ms(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `event.fencing`: Pacemaker's fencing description, parsed.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Fencing {
    pub action: String,
    pub target: String,
    pub executioner: String,
    pub client: String,
    pub origin: String,
    pub status: String,
    pub reason: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub succeeded: bool,
}

/// Parses `Operation ACTION of TARGET by EXECUTIONER for CLIENT@ORIGIN: STATUS[ (REASON)] (ref=ID)`
/// (`stonith__event_description`, Pacemaker 2.1 and 3.0). `succeeded` is set by the caller.
pub fn parse_fencing_desc(desc: &str) -> Option<Fencing> {
    let rest = desc.strip_prefix("Operation ")?;
    let (action, rest) = rest.split_once(" of ")?;
    let (target, rest) = rest.split_once(" by ")?;
    let (executioner, rest) = rest.split_once(" for ")?;
    let (requester, rest) = rest.split_once(": ")?;
    let (client, origin) = requester.rsplit_once('@')?;
    let (outcome, reference) = match rest.rsplit_once(" (ref=") {
        Some((o, r)) => (o, r.strip_suffix(')').map(str::to_string)),
        None => (rest, None),
    };
    let (status, reason) = match outcome.split_once(" (") {
        Some((s, r)) => (s, r.strip_suffix(')').map(str::to_string)),
        None => (outcome, None),
    };
    Some(Fencing {
        action: action.to_string(),
        target: target.to_string(),
        executioner: executioner.to_string(),
        client: client.to_string(),
        origin: origin.to_string(),
        status: status.to_string(),
        reason,
        reference,
        succeeded: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> AlertEnv {
        AlertEnv::from_pairs(pairs.iter().copied())
    }

    fn resource(task: &str, interval: &str, rc: &str, target: &str, status: &str, desc: &str) -> AlertEnv {
        env(&[
            ("version", "2.1.5"),
            ("kind", "resource"),
            ("node", "n1"),
            ("rsc", "app"),
            ("task", task),
            ("interval", interval),
            ("rc", rc),
            ("target_rc", target),
            ("status", status),
            ("desc", desc),
            ("exec_time", "20000"),
        ])
    }

    fn reported(d: Decision) -> Classified {
        match d {
            Decision::Report(c) => c,
            Decision::Ignore(why) => panic!("ignored: {why}"),
        }
    }

    #[test]
    fn routine_resource_events_are_ignored() {
        for e in [
            resource("monitor", "10000", "0", "0", "0", "ok"),
            resource("monitor", "10000", "8", "8", "0", "promoted"),
            resource("monitor", "0", "7", "7", "0", "not running"),
            resource("notify", "0", "0", "0", "0", "ok"),
            resource("reload-agent", "0", "0", "0", "0", "ok"),
            resource("monitor", "10000", "0", "0", "1", "Cancelled"),
            resource("monitor", "10000", "0", "0", "", "Cancelled"),
        ] {
            assert!(matches!(decide(&e), Decision::Ignore(_)), "{e:?}");
        }
    }

    #[test]
    fn state_changes_and_failures_are_reported() {
        let c = reported(decide(&resource("start", "0", "0", "0", "0", "ok")));
        assert_eq!(
            (c.category, c.severity, c.summary.as_str()),
            (Category::OperationSucceeded, Severity::Info, "app started on n1")
        );
        let c = reported(decide(&resource("monitor", "10000", "7", "0", "0", "not running")));
        assert_eq!(c.category, Category::OperationFailed);
        assert_eq!(c.severity, Severity::Warning);
        assert_eq!(c.summary, "app monitor (10s) on n1 failed: not running (rc=7, expected 0)");
        let c = reported(decide(&resource("stop", "0", "1", "0", "2", "Timed Out")));
        assert_eq!((c.category, c.severity), (Category::OperationFailed, Severity::Critical));
        assert_eq!(c.summary, "app stop on n1 failed: Timed Out after 20s");
        let c = reported(decide(&resource("monitor", "10000", "190", "0", "0", "degraded")));
        assert_eq!(c.category, Category::Degraded);
        let c = reported(decide(&resource("monitor", "0", "0", "7", "0", "ok")));
        assert_eq!(c.category, Category::FoundActive);
        let c = reported(decide(&resource("monitor", "0", "1", "7", "0", "error")));
        assert_eq!(c.summary, "app probe on n1 failed: error (rc=1, expected 7)");
    }

    #[test]
    fn node_fencing_attribute_and_unknown_kinds() {
        let c = reported(decide(&env(&[("kind", "node"), ("node", "n2"), ("desc", "lost"), ("nodeid", "2")])));
        assert_eq!((c.category, c.severity), (Category::NodeLost, Severity::Warning));
        let desc = "Operation reboot of n2 by n1 for pacemaker-controld.1234@n1: OK (ref=1b2c3d)";
        let c = reported(decide(&env(&[("kind", "fencing"), ("node", "n2"), ("rc", "0"), ("desc", desc)])));
        assert_eq!(c.category, Category::FencingSucceeded);
        assert!(c.summary.starts_with("node n2 was fenced (reboot)"), "{}", c.summary);
        let c = reported(decide(&env(&[("kind", "fencing"), ("node", "n2"), ("rc", "-62"), ("desc", "x")])));
        assert_eq!((c.category, c.severity), (Category::FencingFailed, Severity::Critical));
        let c = reported(decide(&env(&[("kind", "attribute"), ("node", "n1"), ("attribute_name", "a")])));
        assert_eq!(c.summary, "node attribute a on n1 deleted");
        let c = reported(decide(&env(&[("kind", "ticket"), ("node", "n1")])));
        assert_eq!(c.category, Category::Other);
        assert!(c.summary.contains("'ticket'"));
    }

    #[test]
    fn fencing_descriptions() {
        let f = parse_fencing_desc(
            "Operation off of node-b by node-a for stonith_admin.4321@node-a: Error occurred (No route to host) (ref=9f8e)",
        )
        .unwrap();
        assert_eq!(f.action, "off");
        assert_eq!(f.target, "node-b");
        assert_eq!(f.executioner, "node-a");
        assert_eq!(f.client, "stonith_admin.4321");
        assert_eq!(f.origin, "node-a");
        assert_eq!(f.status, "Error occurred");
        assert_eq!(f.reason.as_deref(), Some("No route to host"));
        assert_eq!(f.reference.as_deref(), Some("9f8e"));
        let f =
            parse_fencing_desc("Operation reboot of b by the cluster for a client@a node: OK (ref=(none))").unwrap();
        assert_eq!((f.status.as_str(), f.reason), ("OK", None));
        assert!(parse_fencing_desc("Fencing history may have changed").is_none());
    }

    #[test]
    fn typed_fields_are_null_when_unparseable() {
        let t = env(&[("kind", "resource"), ("rc", "x"), ("interval", "10000")]).typed();
        assert_eq!((t.rc, t.interval, t.node), (None, Some(10000), None));
    }
}
