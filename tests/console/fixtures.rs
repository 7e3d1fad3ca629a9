//! Reports made from real Pacemaker output: the hastack stack (crm-config/stack.toml) in
//! `crm_simulate`, a failure injected, the scheduler's transition played out, and one report per
//! action an alert agent would report, in the shape of docs/report-schema.json, each with the
//! `crm_mon --output-as=xml` of that moment. Times are chosen by the scenario, so the tests know
//! the MTTR to expect.
//!
//! The idempotency key is computed here from docs/reports.md's recipe, independently of the
//! console's code: a console that computed it differently would refuse these reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hastack::config::graph::{ActionKind, Transition};
use serde_json::{json, Value};

use crate::support::*;

pub const NODES: [&str; 2] = ["node1", "node2"];

/// A simulated two-node cluster running the hastack stack, and the reports it produced so far.
pub struct Scenario {
    dir: tempfile::TempDir,
    state: PathBuf,
    steps: usize,
    pub cluster: String,
    /// The simulated time, microseconds since 1970.
    pub now_us: i64,
    sequence: BTreeMap<String, i64>,
    pub reports: Vec<Value>,
}

pub fn available() -> bool {
    need_program("crm_simulate", "pacemaker-cli-utils") && need_program("crm_mon", "pacemaker-cli-utils")
}

impl Scenario {
    /// The stack started and settled on both nodes (drbd promoted on node1), at `start_us`.
    pub fn new(cluster: &str, start_us: i64) -> Scenario {
        let stack = hastack::config::load(Path::new("crm-config/stack.toml")).unwrap();
        let cib = stack.render(hastack::config::Format::Cib);
        let dir = tempfile::Builder::new().prefix("hst-console-sim").tempdir().unwrap();
        let state = dir.path().join("state-0.xml");
        std::fs::write(&state, cib).unwrap();
        let mut s = Scenario {
            dir,
            state,
            steps: 0,
            cluster: cluster.to_string(),
            now_us: start_us,
            sequence: BTreeMap::new(),
            reports: Vec::new(),
        };
        s.simulate(&["--quorum", "true", "--node-up", "node1", "--node-up", "node2"]);
        for node in NODES {
            s.cib_tool(
                "crm_attribute",
                &["--node", node, "--name", "master-drbd", "--update", "10000", "--lifetime", "reboot"],
            );
        }
        for _ in 0..4 {
            s.simulate(&[]);
        }
        s
    }

    fn next_file(&mut self, tag: &str) -> PathBuf {
        self.steps += 1;
        self.dir.path().join(format!("{tag}-{}.xml", self.steps))
    }

    fn cib_tool(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program).args(args).env("CIB_file", &self.state).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// One transition with `args` (injections, node changes); the state becomes the one after it.
    fn simulate(&mut self, args: &[&str]) -> Transition {
        let next = self.next_file("state");
        let graph = self.next_file("graph");
        std::fs::copy(&self.state, &next).unwrap();
        let mut full = vec!["--xml-file", next.to_str().unwrap(), "--in-place", "--simulate", "--save-graph"];
        full.push(graph.to_str().unwrap());
        full.extend_from_slice(args);
        let out = Command::new("crm_simulate").args(&full).output().unwrap();
        assert!(out.status.success(), "crm_simulate {full:?}: {}", String::from_utf8_lossy(&out.stderr));
        self.state = next;
        Transition::parse(&std::fs::read_to_string(&graph).unwrap()).unwrap()
    }

    /// The state with `injections` recorded but no transition run yet (what crm_mon shows right
    /// after a failure or a node loss).
    fn inject_only(&mut self, args: &[&str]) {
        let next = self.next_file("state");
        let mut full = vec!["--xml-file", self.state.to_str().unwrap(), "--save-output", next.to_str().unwrap()];
        full.extend_from_slice(args);
        let out = Command::new("crm_simulate").args(&full).output().unwrap();
        assert!(out.status.success(), "crm_simulate {full:?}: {}", String::from_utf8_lossy(&out.stderr));
        self.state = next;
    }

    pub fn crm_mon(&self) -> String {
        self.cib_tool("crm_mon", &["--output-as=xml", "--inactive"])
    }

    pub fn advance_ms(&mut self, ms: i64) {
        self.now_us += ms * 1000;
    }

    /// Sets a resource's fail-count on a node (so the next failure reaches migration-threshold).
    pub fn set_fail_count(&mut self, op_key: &str, node: &str, count: u32) {
        let name = format!("fail-count-{op_key}");
        self.cib_tool(
            "crm_attribute",
            &["--node", node, "--name", &name, "--update", &count.to_string(), "--lifetime", "reboot"],
        );
    }

    /// A recurring monitor of `rsc` on `node` fails with `rc`, then Pacemaker recovers: one report
    /// for the failure and one per start/stop/promote/demote, `step_ms` apart. Returns the index of
    /// the failure report.
    pub fn monitor_fails(&mut self, rsc: &str, interval_ms: i64, node: &str, rc: i64, step_ms: i64) -> usize {
        let op = format!("{rsc}_monitor_{interval_ms}@{node}={rc}");
        self.inject_only(&["--op-inject", &op]);
        let snapshot = self.crm_mon();
        let failure = self.resource_report(node, rsc, "monitor", interval_ms, rc, 0, &snapshot);
        let transition = self.simulate(&[]);
        self.play(&transition, step_ms, None);
        failure
    }

    /// `node` loses power: the survivor reports it lost, fences it and takes over.
    pub fn node_lost(&mut self, node: &str, step_ms: i64) -> usize {
        let survivor = NODES.iter().find(|n| **n != node).unwrap().to_string();
        self.inject_only(&["--node-fail", node]);
        let snapshot = self.crm_mon();
        let lost = self.node_report(&survivor, node, "lost", &snapshot);
        let transition = self.simulate(&[]);
        self.play(&transition, step_ms, Some(&survivor));
        lost
    }

    /// `node` comes back: both nodes report it a member, then Pacemaker starts what it runs there.
    pub fn node_returns(&mut self, node: &str, step_ms: i64) {
        let transition = self.simulate(&["--node-up", node]);
        let snapshot = self.crm_mon();
        for reporter in NODES {
            self.node_report(reporter, node, "member", &snapshot);
            // The other node's alert runs a few milliseconds later.
            self.advance_ms(3);
        }
        self.advance_ms(step_ms);
        self.play(&transition, step_ms, None);
        self.simulate(&[]);
    }

    /// One report per action the transition ran, in an order the cluster may run them.
    fn play(&mut self, t: &Transition, step_ms: i64, survivor: Option<&str>) {
        let snapshot = self.crm_mon();
        for a in t.in_order() {
            match (&a.kind, a.operation.as_str()) {
                (ActionKind::Cluster, "stonith") => {
                    self.advance_ms(step_ms);
                    let target = a.node.clone().unwrap();
                    let executioner = survivor.unwrap_or("node2").to_string();
                    self.fencing_report(&executioner, &target, true, &snapshot);
                }
                (ActionKind::Resource, "start" | "stop" | "promote" | "demote") => {
                    self.advance_ms(step_ms);
                    let node = a.node.clone().unwrap();
                    self.resource_report(&node, &a.rsc, &a.operation, 0, 0, 0, &snapshot);
                }
                _ => {}
            }
        }
    }

    fn next_sequence(&mut self, node: &str) -> i64 {
        let s = self.sequence.entry(node.to_string()).or_insert(100);
        *s += 1;
        *s
    }

    #[allow(clippy::too_many_arguments)]
    fn resource_report(
        &mut self,
        node: &str,
        rsc: &str,
        task: &str,
        interval: i64,
        rc: i64,
        target_rc: i64,
        xml: &str,
    ) -> usize {
        let failed = rc != target_rc;
        let (category, severity, desc) = match (failed, task) {
            (true, "monitor") => ("operation_failed", "warning", if rc == 7 { "not running" } else { "error" }),
            (true, _) => ("operation_failed", "critical", "error"),
            (false, _) => ("operation_succeeded", "info", "ok"),
        };
        let summary = if failed {
            format!("{rsc} {task} on {node} failed: {desc} (rc={rc}, expected {target_rc})")
        } else {
            format!("{rsc} {task} on {node}: ok")
        };
        let alert = json!({
            "node": node, "nodeid": null, "desc": desc, "task": task, "rc": rc, "rsc": rsc,
            "interval": interval, "target_rc": target_rc, "status": 0, "exec_time": 12,
            "attribute_name": null, "attribute_value": null,
        });
        self.push(node, "resource", category, severity, &summary, alert, Value::Null, xml)
    }

    fn node_report(&mut self, reporter: &str, node: &str, desc: &str, xml: &str) -> usize {
        let (category, severity) = if desc == "lost" { ("node_lost", "warning") } else { ("node_member", "info") };
        let alert = json!({
            "node": node, "nodeid": if node == "node1" { 1 } else { 2 }, "desc": desc, "task": null, "rc": null,
            "rsc": null, "interval": null, "target_rc": null, "status": null, "exec_time": null,
            "attribute_name": null, "attribute_value": null,
        });
        self.push(reporter, "node", category, severity, &format!("node {node} is {desc}"), alert, Value::Null, xml)
    }

    pub fn fencing_report(&mut self, reporter: &str, target: &str, ok: bool, xml: &str) -> usize {
        let status = if ok { "OK" } else { "Timed Out" };
        let reference = format!("ref-{}-{}", target, self.now_us);
        let desc = format!("Operation reboot of {target} by {reporter} for pacemaker-controld.1234@{reporter}: {status} (ref={reference})");
        let alert = json!({
            "node": target, "nodeid": null, "desc": desc, "task": "st_notify_fence", "rc": if ok { 0 } else { -62 },
            "rsc": null, "interval": null, "target_rc": null, "status": null, "exec_time": null,
            "attribute_name": null, "attribute_value": null,
        });
        let fencing = json!({
            "action": "reboot", "target": target, "executioner": reporter, "client": "pacemaker-controld.1234",
            "origin": reporter, "status": status, "reason": null, "ref": reference, "succeeded": ok,
        });
        let (category, severity) = if ok { ("fencing_succeeded", "warning") } else { ("fencing_failed", "critical") };
        let summary = format!("fencing of {target} by {reporter}: {status}");
        self.push(reporter, "fencing", category, severity, &summary, alert, fencing, xml)
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        reporter: &str,
        kind: &str,
        category: &str,
        severity: &str,
        summary: &str,
        alert: Value,
        fencing: Value,
        xml: &str,
    ) -> usize {
        let seq = self.next_sequence(reporter);
        let report = make_report(
            &self.cluster,
            reporter,
            self.now_us,
            seq,
            kind,
            category,
            severity,
            summary,
            alert,
            fencing,
            Some(xml),
        );
        self.reports.push(report);
        self.reports.len() - 1
    }
}

/// A report in the schema's shape; its idempotency key by docs/reports.md's recipe.
#[allow(clippy::too_many_arguments)]
pub fn make_report(
    cluster: &str,
    reporter: &str,
    time_us: i64,
    seq: i64,
    kind: &str,
    category: &str,
    severity: &str,
    summary: &str,
    alert: Value,
    fencing: Value,
    xml: Option<&str>,
) -> Value {
    let (epoch, usec) = (time_us.div_euclid(1_000_000), time_us.rem_euclid(1_000_000));
    let mut raw = serde_json::Map::new();
    raw.insert("kind".into(), json!(kind));
    raw.insert("version".into(), json!("2.1.5"));
    for (k, v) in alert.as_object().unwrap() {
        if !v.is_null() {
            raw.insert(k.clone(), json!(v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())));
        }
    }
    let mut report = json!({
        "schema": "hastack.alert-report",
        "schema_version": 1,
        "idempotency_key": "",
        "agent": { "name": "hastack", "version": "0.1.0" },
        "cluster": { "id": cluster, "id_source": "cluster_id", "name": "hastack" },
        "reporter": { "node": reporter, "hostname": reporter },
        "event": {
            "kind": kind, "category": category, "severity": severity, "summary": summary,
            "time": { "epoch": epoch, "usec": usec, "node_sequence": seq, "text": null, "source": "pacemaker" },
            "pacemaker_version": "2.1.5",
            "alert": alert,
            "fencing": fencing,
            "findings": [],
            "raw": raw,
        },
        "snapshot": {
            "format": "crm_mon-xml", "command": "crm_mon --output-as=xml --inactive",
            "taken_at": { "epoch": epoch, "usec": (usec + 40_000).min(999_999) },
            "duration_ms": 38, "exit_code": if xml.is_some() { json!(0) } else { Value::Null },
            "xml": xml, "error": if xml.is_some() { Value::Null } else { json!("crm_mon did not finish within 5 s") },
        },
    });
    report["idempotency_key"] = json!(key_of(&report));
    report
}

/// docs/reports.md: SHA-256 of the identity fields, each followed by a newline.
pub fn key_of(r: &Value) -> String {
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let e = &r["event"];
    let a = &e["alert"];
    let fields = [
        "hastack-report-v1".to_string(),
        text(&r["cluster"]["id"]),
        text(&r["reporter"]["node"]),
        text(&e["time"]["epoch"]),
        format!("{:06}", e["time"]["usec"].as_i64().unwrap()),
        text(&e["time"]["node_sequence"]),
        text(&e["kind"]),
        text(&a["node"]),
        text(&a["rsc"]),
        text(&a["task"]),
        text(&a["interval"]),
        text(&a["rc"]),
    ];
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for f in fields {
        h.update(f.as_bytes());
        h.update(b"\n");
    }
    h.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Microseconds since 1970 now (the console's clock).
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64
}
