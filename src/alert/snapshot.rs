//! The cluster's state when the alert ran: `crm_mon --output-as=xml --inactive` with a deadline of
//! its own, kept exactly as printed, plus the few facts the agent reads from it (nodes, groups,
//! bans, fail-counts) to recognise a group that has no node left.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use quick_xml::events::{BytesStart, Event};
use serde::Serialize;

use super::clock::{now, Stamp};
use crate::ocf::Deadline;
use crate::sys::proc::{run, RunError};

pub const COMMAND: &str = "crm_mon --output-as=xml --inactive";

/// `snapshot` of the report.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    pub format: &'static str,
    pub command: &'static str,
    pub taken_at: Stamp,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
    pub xml: Option<String>,
    pub error: Option<String>,
}

impl Snapshot {
    pub fn missing(why: &str) -> Snapshot {
        Snapshot {
            format: "crm_mon-xml",
            command: COMMAND,
            taken_at: now(),
            duration_ms: 0,
            exit_code: None,
            xml: None,
            error: Some(why.to_string()),
        }
    }
}

/// Runs crm_mon (from PATH, else /usr/sbin) within `limit`. It inherits the environment, so
/// `CIB_file` makes it read a file (tests) as with every Pacemaker tool.
pub fn take(limit: Duration) -> Snapshot {
    let taken_at = now();
    let started = Instant::now();
    let program = crate::alert::find_program("crm_mon");
    let mut cmd = Command::new(&program);
    cmd.args(["--output-as=xml", "--inactive"]);
    let result = run(&mut cmd, Deadline::after(limit));
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut snap = Snapshot {
        format: "crm_mon-xml",
        command: COMMAND,
        taken_at,
        duration_ms,
        exit_code: None,
        xml: None,
        error: None,
    };
    match result {
        Ok(out) => {
            snap.exit_code = out.status.code();
            if out.stdout.trim_start().starts_with('<') {
                snap.xml = Some(out.stdout.clone());
            }
            if !out.success() {
                let detail = out.stderr.trim();
                snap.error = Some(match (out.status.code(), detail.is_empty()) {
                    (Some(c), true) => format!("crm_mon exited with {c}"),
                    (Some(c), false) => format!("crm_mon exited with {c}: {detail}"),
                    (None, _) => format!("crm_mon was killed by a signal: {detail}"),
                });
            } else if snap.xml.is_none() {
                snap.error = Some("crm_mon printed no XML".into());
            }
        }
        Err(RunError::TimedOut) => {
            snap.error = Some(format!("crm_mon did not answer within {} ms and was killed", limit.as_millis()))
        }
        Err(RunError::Spawn(e)) => snap.error = Some(format!("cannot run {}: {e}", program.display())),
    }
    snap
}

/// A node as crm_mon shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub maintenance: bool,
}

/// A placement unit: a top-level group, or a top-level primitive (clones and bundles are not
/// analysed: they run on several nodes by design).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Unit {
    pub id: String,
    pub members: Vec<String>,
    pub is_group: bool,
    pub disabled: bool,
    pub managed: bool,
    pub fencing: bool,
}

/// A resource's fail-count on a node and its migration-threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub fail_count: i64,
    pub threshold: i64,
}

/// What the agent reads from a crm_mon XML document.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub symmetric: bool,
    pub nodes: Vec<Node>,
    pub units: Vec<Unit>,
    /// (resource, node) with a -INFINITY location constraint (crm_mon's `<bans>`).
    pub bans: Vec<(String, String)>,
    /// (node, resource) → its fail-count there.
    pub history: BTreeMap<(String, String), History>,
}

/// Pacemaker's INFINITY.
const INFINITY: i64 = 1_000_000;

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn flag(e: &BytesStart, name: &str) -> bool {
    attr(e, name).as_deref() == Some("true")
}

/// Scores as Pacemaker prints them: integers, `INFINITY`, `-INFINITY`, clamped to ±INFINITY.
fn score(text: &str) -> Option<i64> {
    match text.trim().trim_start_matches('+') {
        "INFINITY" => Some(INFINITY),
        "-INFINITY" => Some(-INFINITY),
        t => t.parse::<i64>().ok().map(|v| v.clamp(-INFINITY, INFINITY)),
    }
}

impl Facts {
    /// Reads the facts; tolerant of what it does not know (another crm_mon version's extra
    /// elements), None only if the document is not XML at all.
    pub fn parse(xml: &str) -> Option<Facts> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut facts = Facts { symmetric: true, ..Facts::default() };
        // Element path, to tell a top-level resource from a group member or a node's history.
        let mut stack: Vec<String> = Vec::new();
        let mut history_node: Option<String> = None;
        loop {
            let event = reader.read_event().ok()?;
            let (e, empty) = match &event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => {
                    stack.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            let parent = stack.last().map(String::as_str);
            match (parent, name.as_str()) {
                (Some("summary"), "cluster_options") => {
                    facts.symmetric = attr(e, "symmetric-cluster").as_deref() != Some("false")
                }
                (Some("nodes"), "node") => facts.nodes.push(Node {
                    name: attr(e, "name").unwrap_or_default(),
                    online: flag(e, "online"),
                    standby: flag(e, "standby") || flag(e, "standby_onfail"),
                    maintenance: flag(e, "maintenance"),
                }),
                (Some("resources"), "group") => facts.units.push(Unit {
                    id: attr(e, "id").unwrap_or_default(),
                    is_group: true,
                    disabled: flag(e, "disabled"),
                    managed: attr(e, "managed").as_deref() != Some("false"),
                    ..Unit::default()
                }),
                (Some("resources"), "resource") => {
                    let id = attr(e, "id").unwrap_or_default();
                    let agent = attr(e, "resource_agent").unwrap_or_default();
                    facts.units.push(Unit {
                        members: vec![id.clone()],
                        id,
                        is_group: false,
                        // crm_mon marks a primitive's target-role=Stopped only through its role.
                        disabled: attr(e, "target_role").is_some_and(|r| r.eq_ignore_ascii_case("stopped")),
                        managed: attr(e, "managed").as_deref() != Some("false"),
                        fencing: agent.starts_with("stonith:"),
                    });
                }
                (Some("group"), "resource") if stack.len() >= 2 && stack[stack.len() - 2] == "resources" => {
                    if let (Some(unit), Some(id)) = (facts.units.last_mut(), attr(e, "id")) {
                        unit.members.push(id);
                    }
                }
                (Some("bans"), "ban") => {
                    let weight = attr(e, "weight").and_then(|w| score(&w)).unwrap_or(0);
                    let promoted_only = flag(e, "promoted-only") || flag(e, "master_only");
                    if weight <= -INFINITY && !promoted_only {
                        if let (Some(r), Some(n)) = (attr(e, "resource"), attr(e, "node")) {
                            facts.bans.push((r, n));
                        }
                    }
                }
                (Some("node_history"), "node") => history_node = attr(e, "name"),
                (Some("node"), "resource_history") => {
                    if let (Some(node), Some(id)) = (history_node.clone(), attr(e, "id")) {
                        let fail_count = attr(e, "fail-count").and_then(|v| score(&v)).unwrap_or(0);
                        let threshold = attr(e, "migration-threshold").and_then(|v| score(&v)).unwrap_or(INFINITY);
                        facts.history.insert((node, id), History { fail_count, threshold });
                    }
                }
                _ => {}
            }
            if !empty {
                stack.push(name);
            }
        }
        Some(facts)
    }

    /// The unit (top-level group or primitive) that holds `rsc` (a clone instance's `:N` is
    /// ignored, and so are clones).
    pub fn unit_of(&self, rsc: &str) -> Option<&Unit> {
        let base = rsc.split(':').next().unwrap_or(rsc);
        self.units.iter().find(|u| u.members.iter().any(|m| m == base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml --inactive">
  <summary>
    <cluster_options stonith-enabled="true" symmetric-cluster="true" no-quorum-policy="stop"/>
  </summary>
  <nodes>
    <node name="alpha" id="1" online="true" standby="false" standby_onfail="false" maintenance="false"/>
    <node name="beta" id="2" online="false" standby="false" standby_onfail="false" maintenance="false"/>
  </nodes>
  <resources>
    <resource id="fence-alpha" resource_agent="stonith:fence_ups" role="Started" managed="true"/>
    <group id="orders" number_resources="2" managed="true" disabled="false">
      <resource id="orders-ip" resource_agent="ocf:hastack:vip" role="Stopped"/>
      <resource id="orders-app" resource_agent="ocf:hastack:app" role="Started">
        <node name="alpha" id="1" cached="true"/>
      </resource>
    </group>
    <clone id="web-clone" multi_state="false">
      <resource id="web" resource_agent="ocf:hastack:apache" role="Stopped"/>
    </clone>
  </resources>
  <node_history>
    <node name="alpha">
      <resource_history id="orders-app" orphan="false" migration-threshold="2" fail-count="INFINITY">
        <operation_history call="2" task="monitor" rc="7"/>
      </resource_history>
    </node>
  </node_history>
  <bans>
    <ban id="b1" resource="orders" node="beta" weight="-1000000" promoted-only="false"/>
    <ban id="b2" resource="orders" node="alpha" weight="-100" promoted-only="false"/>
  </bans>
  <status code="0" message="OK"/>
</pacemaker-result>"#;

    #[test]
    fn facts_from_crm_mon() {
        let f = Facts::parse(XML).unwrap();
        assert!(f.symmetric);
        assert_eq!(f.nodes.len(), 2);
        assert!(f.nodes[0].online && !f.nodes[1].online);
        assert_eq!(f.units.len(), 2, "{:?}", f.units);
        assert!(f.units[0].fencing);
        assert_eq!(f.units[1].id, "orders");
        assert_eq!(f.units[1].members, vec!["orders-ip", "orders-app"]);
        assert_eq!(f.unit_of("orders-app").unwrap().id, "orders");
        assert!(f.unit_of("web").is_none());
        assert_eq!(f.bans, vec![("orders".to_string(), "beta".to_string())]);
        assert_eq!(
            f.history.get(&("alpha".into(), "orders-app".into())),
            Some(&History { fail_count: INFINITY, threshold: 2 })
        );
    }
}
