//! The report the console receives (docs/report-schema.json, docs/reports.md): built from the
//! alert's variables, the classification, the snapshot and the cluster's identity.

use std::collections::BTreeMap;

use serde::Serialize;

use super::clock::Stamp;
use super::event::{AlertEnv, Category, Classified, Fencing, Severity, Typed};
use super::findings::NoNodeLeft;
use super::snapshot::Snapshot;

pub const SCHEMA: &str = "hastack.alert-report";
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub schema_version: u32,
    pub idempotency_key: String,
    pub agent: Agent,
    pub cluster: Cluster,
    pub reporter: Reporter,
    pub event: Event,
    pub snapshot: Snapshot,
}

#[derive(Clone, Debug, Serialize)]
pub struct Agent {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Cluster {
    pub id: String,
    pub id_source: &'static str,
    pub name: Option<String>,
}

impl Cluster {
    /// The configured id, else the cluster name, else "unnamed".
    pub fn identify(cluster_id: Option<String>, name: Option<String>) -> Cluster {
        match (cluster_id, name) {
            (Some(id), name) => Cluster { id, id_source: "cluster_id", name },
            (None, Some(name)) => Cluster { id: name.clone(), id_source: "cluster_name", name: Some(name) },
            (None, None) => Cluster { id: "unnamed".into(), id_source: "none", name: None },
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Reporter {
    pub node: String,
    pub hostname: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Time {
    pub epoch: i64,
    pub usec: u32,
    pub node_sequence: Option<i64>,
    pub text: Option<String>,
    pub source: &'static str,
}

impl Time {
    /// Pacemaker's timestamp, or `fallback` (the agent's clock at start) when it gave none.
    pub fn of(env: &AlertEnv, fallback: Stamp) -> Time {
        let usec = env.int("timestamp_usec").filter(|u| (0..1_000_000).contains(u));
        let (epoch, usec, source) = match (env.int("timestamp_epoch"), usec) {
            (Some(e), Some(u)) => (e, u as u32, "pacemaker"),
            _ => (fallback.epoch, fallback.usec, "agent"),
        };
        Time {
            epoch,
            usec,
            node_sequence: env.int("node_sequence"),
            text: env.get("timestamp").map(str::to_string),
            source,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub kind: String,
    pub category: Category,
    pub severity: Severity,
    pub summary: String,
    pub time: Time,
    pub pacemaker_version: String,
    pub alert: Typed,
    pub fencing: Option<Fencing>,
    pub findings: Vec<NoNodeLeft>,
    pub raw: BTreeMap<String, String>,
}

impl Event {
    pub fn new(env: &AlertEnv, classified: &Classified, time: Time, findings: Vec<NoNodeLeft>) -> Event {
        let fencing = (env.kind() == "fencing")
            .then(|| super::event::parse_fencing_desc(env.get("desc").unwrap_or("")))
            .flatten()
            .map(|f| Fencing { succeeded: env.int("rc") == Some(0), ..f });
        Event {
            kind: env.kind().to_string(),
            category: classified.category,
            severity: classified.severity,
            summary: classified.summary.clone(),
            time,
            pacemaker_version: env.get("version").unwrap_or_default().to_string(),
            alert: env.typed(),
            fencing,
            findings,
            raw: env.raw(),
        }
    }
}

/// docs/reports.md "Idempotency key": SHA-256 over the event's identity, one field per line.
pub fn idempotency_key(cluster: &Cluster, reporter: &Reporter, event: &Event) -> String {
    let opt_i = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let a = &event.alert;
    let fields = [
        "hastack-report-v1".to_string(),
        cluster.id.clone(),
        reporter.node.clone(),
        event.time.epoch.to_string(),
        format!("{:06}", event.time.usec),
        opt_i(event.time.node_sequence),
        event.kind.clone(),
        a.node.clone().unwrap_or_default(),
        a.rsc.clone().unwrap_or_default(),
        a.task.clone().unwrap_or_default(),
        opt_i(a.interval),
        opt_i(a.rc),
    ];
    let text: String = fields.iter().map(|f| format!("{f}\n")).collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Report {
    pub fn new(cluster: Cluster, reporter: Reporter, event: Event, snapshot: Snapshot) -> Report {
        let idempotency_key = idempotency_key(&cluster, &reporter, &event);
        Report {
            schema: SCHEMA,
            schema_version: SCHEMA_VERSION,
            idempotency_key,
            agent: Agent { name: "hastack", version: env!("CARGO_PKG_VERSION") },
            cluster,
            reporter,
            event,
            snapshot,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a report always serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of docs/report-example.json, computed by the documented recipe in Python.
    #[test]
    fn key_matches_the_documented_example() {
        let env = AlertEnv::from_pairs([
            ("kind", "resource"),
            ("node", "alpha"),
            ("rsc", "orders-app"),
            ("task", "monitor"),
            ("interval", "10000"),
            ("rc", "7"),
            ("node_sequence", "17"),
            ("timestamp_epoch", "1767225600"),
            ("timestamp_usec", "123456"),
        ]);
        let time = Time::of(&env, Stamp { epoch: 0, usec: 0 });
        let classified =
            Classified { category: Category::OperationFailed, severity: Severity::Warning, summary: "x".into() };
        let event = Event::new(&env, &classified, time, vec![]);
        let cluster = Cluster::identify(Some("store-042".into()), Some("hastack3".into()));
        let reporter = Reporter { node: "alpha".into(), hostname: "alpha".into() };
        assert_eq!(
            idempotency_key(&cluster, &reporter, &event),
            "5ed81f3942927b2d888b1f82537d339c31ce839876aef9e8eb450ad7b5c40713"
        );
    }

    #[test]
    fn time_falls_back_to_the_agent_clock() {
        let env = AlertEnv::from_pairs([("timestamp_epoch", "x")]);
        let t = Time::of(&env, Stamp { epoch: 5, usec: 6 });
        assert_eq!((t.epoch, t.usec, t.source), (5, 6, "agent"));
    }

    #[test]
    fn cluster_identity() {
        assert_eq!(Cluster::identify(None, Some("c".into())).id_source, "cluster_name");
        assert_eq!(Cluster::identify(None, None).id, "unnamed");
    }
}
