//! crm_mon's XML (`crm_mon --output-as=xml --inactive`, Pacemaker's crm_mon.rng, api-version 2.x)
//! read into a view the pages render and a small summary the fleet tiles use. Tolerant by design:
//! an element or attribute this code does not know is skipped, a missing one stays empty
//! (ha_cluster_exporter #193: a strict parser broke on a clone disabled everywhere).

use std::borrow::Cow;
use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotView {
    pub api_version: Option<String>,
    pub stack: Option<String>,
    pub dc: Option<String>,
    /// From `current_dc with_quorum`; unknown when there is no DC.
    pub quorum: Option<bool>,
    pub last_update: Option<String>,
    pub last_change: Option<String>,
    pub nodes_configured: Option<u32>,
    pub resources_configured: Option<u32>,
    /// `cluster_options` as printed (stonith-enabled, maintenance-mode, no-quorum-policy...).
    pub options: BTreeMap<String, String>,
    pub nodes: Vec<NodeView>,
    pub resources: Vec<ResourceView>,
    pub node_attributes: Vec<NodeAttribute>,
    pub history: Vec<ResourceHistory>,
    pub failures: Vec<FailureView>,
    pub fencing: Vec<FenceView>,
    pub bans: Vec<BanView>,
    pub tickets: Vec<BTreeMap<String, String>>,
    /// `<status code message>`: crm_mon's own result.
    pub status: Option<(String, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub online: bool,
    pub standby: bool,
    pub standby_onfail: bool,
    pub maintenance: bool,
    pub pending: bool,
    pub unclean: bool,
    pub shutdown: bool,
    pub is_dc: bool,
    pub resources_running: Option<u32>,
    pub node_type: Option<String>,
    pub health: Option<String>,
}

impl NodeView {
    /// One word for the node, the worst first, as `pcs status` would group it.
    pub fn state(&self) -> &'static str {
        if self.unclean {
            "unclean"
        } else if !self.online {
            "offline"
        } else if self.pending {
            "pending"
        } else if self.maintenance {
            "maintenance"
        } else if self.standby || self.standby_onfail {
            "standby"
        } else {
            "online"
        }
    }
}

/// One primitive (or one clone instance, or one bundle replica's primitive).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResourceView {
    pub id: String,
    /// The containers it sits in, outermost first: `["web-clone"]`, `["data"]`, `["db-bundle", "db-bundle-0"]`.
    pub parents: Vec<String>,
    pub agent: Option<String>,
    pub role: Option<String>,
    pub target_role: Option<String>,
    pub active: bool,
    pub orphaned: bool,
    pub blocked: bool,
    pub managed: bool,
    pub failed: bool,
    pub failure_ignored: bool,
    pub nodes: Vec<String>,
}

impl ResourceView {
    /// The primitive id without a clone instance suffix (`web:1` → `web`).
    pub fn base_id(&self) -> &str {
        base_id(&self.id)
    }
}

pub fn base_id(id: &str) -> &str {
    id.split(':').next().unwrap_or(id)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeAttribute {
    pub node: String,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResourceHistory {
    pub node: String,
    pub resource: String,
    pub fail_count: Option<String>,
    pub migration_threshold: Option<String>,
    pub last_failure: Option<String>,
    pub operations: Vec<OperationView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OperationView {
    pub call: Option<String>,
    pub task: String,
    pub rc: Option<String>,
    pub rc_text: Option<String>,
    pub interval: Option<String>,
    pub last_rc_change: Option<String>,
    pub exec_time: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FailureView {
    pub op_key: String,
    pub node: String,
    pub task: Option<String>,
    pub interval: Option<String>,
    pub exitstatus: Option<String>,
    pub exitreason: Option<String>,
    pub exitcode: Option<String>,
    pub status: Option<String>,
    pub last_rc_change: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FenceView {
    pub target: String,
    pub action: Option<String>,
    pub delegate: Option<String>,
    pub client: Option<String>,
    pub origin: Option<String>,
    pub status: Option<String>,
    pub exit_reason: Option<String>,
    pub completed: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BanView {
    pub id: String,
    pub resource: String,
    pub node: String,
    pub weight: Option<String>,
}

/// What a fleet tile and the incident logic need from a snapshot; stored with each report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub quorum: Option<bool>,
    pub dc: Option<String>,
    /// (node, state word): `online`, `offline`, `unclean`, `standby`, `maintenance`, `pending`.
    pub nodes: Vec<(String, String)>,
    /// Primitives crm_mon marks failed or blocked (they need an operator).
    pub failed_resources: Vec<String>,
    /// Primitives active nowhere although not disabled (a service that is down).
    pub stopped_resources: Vec<String>,
    /// Entries in crm_mon's failed resource actions (cleared by `pcs resource cleanup`).
    pub failed_actions: u32,
    pub maintenance_mode: bool,
    /// Primitive id (no clone suffix) → the nodes it is active on (fence devices left out).
    pub placement: BTreeMap<String, Vec<String>>,
}

impl SnapshotView {
    /// Reads crm_mon's XML; an error only for text that is not XML at all.
    pub fn parse(xml: &str) -> Result<SnapshotView, String> {
        Parser::default().run(xml)
    }

    /// The summary alone (ingest's per-report work): the same as `parse(xml)?.summary()`, without
    /// reading the sections it does not use (node attributes, operation history, fencing history,
    /// tickets, bans), which are most of crm_mon's XML.
    pub fn summarise(xml: &str) -> Result<SnapshotSummary, String> {
        match (Parser { summary_only: true, ..Parser::default() }).run(xml) {
            Ok(view) => Ok(view.summary()),
            // A skipped section that does not end (a cut snapshot) is an error to the skipping
            // reader only: the full parse decides, as it always did.
            Err(_) => Ok(SnapshotView::parse(xml)?.summary()),
        }
    }

    pub fn summary(&self) -> SnapshotSummary {
        let mut placement: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new(); // id → (active somewhere, disabled)
        let mut failed = Vec::new();
        for r in &self.resources {
            let id = r.base_id().to_string();
            // A fence device protects the cluster; it is not a service an incident waits for.
            let fence_device = r.agent.as_deref().is_some_and(|a| a.starts_with("stonith:"));
            if r.active && !fence_device {
                let nodes = placement.entry(id.clone()).or_default();
                for n in &r.nodes {
                    if !nodes.contains(n) {
                        nodes.push(n.clone());
                    }
                }
            }
            let disabled = r.target_role.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("stopped"));
            let entry = seen.entry(id.clone()).or_insert((false, false));
            entry.0 |= r.active;
            entry.1 |= disabled;
            if (r.failed || r.blocked) && !failed.contains(&id) {
                failed.push(id);
            }
        }
        let stopped =
            seen.into_iter().filter(|(_, (active, disabled))| !active && !disabled).map(|(id, _)| id).collect();
        SnapshotSummary {
            quorum: self.quorum,
            dc: self.dc.clone(),
            nodes: self.nodes.iter().map(|n| (n.name.clone(), n.state().to_string())).collect(),
            failed_resources: failed,
            stopped_resources: stopped,
            failed_actions: self.failures.len() as u32,
            maintenance_mode: self.options.get("maintenance-mode").is_some_and(|v| v == "true"),
            placement,
        }
    }
}

#[derive(Default)]
struct Parser {
    view: SnapshotView,
    /// The open elements, outermost first (only the names the parser asks about).
    path: Vec<Section>,
    /// Skip what `SnapshotView::summary` does not use.
    summary_only: bool,
    /// Open containers (group, clone, bundle, replica) by id.
    containers: Vec<String>,
    resource: Option<ResourceView>,
    /// The `<node name>` of node_attributes / node_history being read.
    section_node: Option<String>,
    history: Option<ResourceHistory>,
}

/// An open element, as far as the parser cares which one it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Resources,
    NodeAttributes,
    Nodes,
    Other,
}

/// Sections `SnapshotView::summary` does not read: a summary-only parse skips them unread.
const NOT_SUMMARISED: &[&[u8]] = &[b"node_attributes", b"node_history", b"fence_history", b"tickets", b"bans"];

impl Parser {
    fn run(mut self, xml: &str) -> Result<SnapshotView, String> {
        let mut reader = Reader::from_str(xml);
        loop {
            match reader.read_event().map_err(|e| format!("crm_mon XML: {e}"))? {
                Event::Start(e) if self.summary_only && NOT_SUMMARISED.iter().any(|n| *n == e.name().as_ref()) => {
                    reader.read_to_end(e.name()).map_err(|e| format!("crm_mon XML: {e}"))?;
                }
                Event::Start(e) => {
                    self.open(&e, false);
                    self.path.push(match e.name().as_ref() {
                        b"resources" => Section::Resources,
                        b"node_attributes" => Section::NodeAttributes,
                        b"nodes" => Section::Nodes,
                        _ => Section::Other,
                    });
                }
                Event::Empty(e) => self.open(&e, true),
                Event::End(e) => {
                    self.path.pop();
                    self.close(e.name().as_ref());
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(self.view)
    }

    fn inside(&self, section: Section) -> bool {
        self.path.contains(&section)
    }

    fn open(&mut self, e: &BytesStart, empty: bool) {
        let name = e.name();
        if !WANTED.contains(&name.as_ref()) {
            return;
        }
        let a = Attrs::of(e);
        let (attr, flag) = (|n: &str| a.get(n), |n: &str| a.flag(n));
        let in_resources = self.inside(Section::Resources);
        let in_attributes = self.inside(Section::NodeAttributes);
        let v = &mut self.view;
        match name.as_ref() {
            b"pacemaker-result" => v.api_version = attr("api-version"),
            b"stack" => v.stack = attr("type"),
            b"current_dc" if flag("present") => {
                v.dc = attr("name");
                v.quorum = attr("with_quorum").map(|q| q == "true");
            }
            b"last_update" => v.last_update = attr("time"),
            b"last_change" => v.last_change = attr("time").filter(|t| !t.is_empty()),
            b"nodes_configured" => v.nodes_configured = attr("number").and_then(|n| n.parse().ok()),
            b"resources_configured" => v.resources_configured = attr("number").and_then(|n| n.parse().ok()),
            b"cluster_options" => v.options = all_attrs(e),
            b"status" if self.path.len() == 1 => {
                v.status = Some((attr("code").unwrap_or_default(), attr("message").unwrap_or_default()))
            }
            b"group" | b"clone" | b"bundle" | b"replica" if !empty => {
                let id = attr("id").unwrap_or_default();
                // A replica is named by its number; qualify it with the bundle's id.
                let id = match (name.as_ref(), self.containers.last()) {
                    (b"replica", Some(bundle)) => format!("{bundle}-{id}"),
                    _ => id,
                };
                self.containers.push(id);
            }
            b"resource" if in_resources => {
                let r = ResourceView {
                    id: attr("id").unwrap_or_default(),
                    // The summary does not use them: no clone of the open containers' ids.
                    parents: if self.summary_only { Vec::new() } else { self.containers.clone() },
                    agent: attr("resource_agent"),
                    role: attr("role"),
                    target_role: attr("target_role"),
                    active: flag("active"),
                    orphaned: flag("orphaned"),
                    blocked: flag("blocked"),
                    managed: attr("managed").is_none_or(|m| m == "true"),
                    failed: flag("failed"),
                    failure_ignored: flag("failure_ignored"),
                    nodes: Vec::new(),
                };
                if empty {
                    v.resources.push(r);
                } else {
                    self.resource = Some(r);
                }
            }
            b"node" => {
                if let Some(r) = self.resource.as_mut() {
                    if let Some(n) = attr("name") {
                        r.nodes.push(n);
                    }
                } else if self.path.last() == Some(&Section::Nodes) {
                    v.nodes.push(NodeView {
                        name: attr("name").unwrap_or_default(),
                        online: flag("online"),
                        standby: flag("standby"),
                        standby_onfail: flag("standby_onfail"),
                        maintenance: flag("maintenance"),
                        pending: flag("pending"),
                        unclean: flag("unclean"),
                        shutdown: flag("shutdown"),
                        is_dc: flag("is_dc"),
                        resources_running: attr("resources_running").and_then(|n| n.parse().ok()),
                        node_type: attr("type"),
                        health: attr("health"),
                    });
                } else if !empty {
                    self.section_node = attr("name");
                }
            }
            b"attribute" if in_attributes => v.node_attributes.push(NodeAttribute {
                node: self.section_node.clone().unwrap_or_default(),
                name: attr("name").unwrap_or_default(),
                value: attr("value").unwrap_or_default(),
            }),
            b"resource_history" => {
                let h = ResourceHistory {
                    node: self.section_node.clone().unwrap_or_default(),
                    resource: attr("id").unwrap_or_default(),
                    fail_count: attr("fail-count"),
                    migration_threshold: attr("migration-threshold"),
                    last_failure: attr("last-failure"),
                    operations: Vec::new(),
                };
                if empty {
                    v.history.push(h);
                } else {
                    self.history = Some(h);
                }
            }
            b"operation_history" => {
                if let Some(h) = self.history.as_mut() {
                    h.operations.push(OperationView {
                        call: attr("call"),
                        task: attr("task").unwrap_or_default(),
                        rc: attr("rc"),
                        rc_text: attr("rc_text"),
                        interval: attr("interval"),
                        last_rc_change: attr("last-rc-change"),
                        exec_time: attr("exec-time"),
                    });
                }
            }
            b"failure" => v.failures.push(FailureView {
                op_key: attr("op_key").unwrap_or_default(),
                node: attr("node").unwrap_or_default(),
                task: attr("task"),
                interval: attr("interval"),
                exitstatus: attr("exitstatus"),
                exitreason: attr("exitreason").filter(|r| !r.is_empty()),
                exitcode: attr("exitcode"),
                status: attr("status"),
                last_rc_change: attr("last-rc-change"),
            }),
            b"fence_event" => v.fencing.push(FenceView {
                target: attr("target").unwrap_or_default(),
                action: attr("action"),
                delegate: attr("delegate"),
                client: attr("client"),
                origin: attr("origin"),
                status: attr("status"),
                exit_reason: attr("exit-reason").filter(|r| !r.is_empty()),
                completed: attr("completed"),
            }),
            b"ban" => v.bans.push(BanView {
                id: attr("id").unwrap_or_default(),
                resource: attr("resource").unwrap_or_default(),
                node: attr("node").unwrap_or_default(),
                weight: attr("weight"),
            }),
            b"ticket" => v.tickets.push(all_attrs(e)),
            _ => {}
        }
    }

    fn close(&mut self, name: &[u8]) {
        match name {
            b"group" | b"clone" | b"bundle" | b"replica" => {
                self.containers.pop();
            }
            b"resource" => {
                if let Some(r) = self.resource.take() {
                    self.view.resources.push(r);
                }
            }
            b"resource_history" => {
                if let Some(h) = self.history.take() {
                    self.view.history.push(h);
                }
            }
            b"node" if self.resource.is_none() => self.section_node = None,
            _ => {}
        }
    }
}

/// The elements `Parser::open` reads attributes of; any other is skipped without reading them.
const WANTED: &[&[u8]] = &[
    b"pacemaker-result",
    b"stack",
    b"current_dc",
    b"last_update",
    b"last_change",
    b"nodes_configured",
    b"resources_configured",
    b"cluster_options",
    b"status",
    b"group",
    b"clone",
    b"bundle",
    b"replica",
    b"resource",
    b"node",
    b"attribute",
    b"resource_history",
    b"operation_history",
    b"failure",
    b"fence_event",
    b"ban",
    b"ticket",
];

/// An element's attributes, split once: crm_mon's elements carry up to a dozen and the parser
/// asks for most of them. A lookup per name (`try_get_attribute`) split them all again each
/// time and a flag allocated its value: the profile of ingest showed that as most of the
/// snapshot summary's cost. Values stay borrowed until one is kept.
struct Attrs<'a> {
    list: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

impl<'a> Attrs<'a> {
    fn of(e: &'a BytesStart<'_>) -> Attrs<'a> {
        // Up to the first malformed attribute, as a lookup by name read them.
        let list =
            e.attributes().with_checks(false).map_while(Result::ok).map(|a| (a.key.into_inner(), a.value)).collect();
        Attrs { list }
    }

    fn raw(&self, name: &str) -> Option<&[u8]> {
        self.list.iter().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v.as_ref())
    }

    /// The value, unescaped (`&amp;` → `&`); None when absent or not text.
    fn get(&self, name: &str) -> Option<String> {
        let raw = std::str::from_utf8(self.raw(name)?).ok()?;
        quick_xml::escape::unescape(raw).ok().map(|v| v.into_owned())
    }

    /// `name="true"` (also written with a character reference).
    fn flag(&self, name: &str) -> bool {
        match self.raw(name) {
            Some(v) if v.contains(&b'&') => self.get(name).is_some_and(|v| v == "true"),
            v => v == Some(b"true"),
        }
    }
}

fn all_attrs(e: &BytesStart) -> BTreeMap<String, String> {
    e.attributes()
        .flatten()
        .filter_map(|a| {
            let value = a.unescape_value().ok()?.into_owned();
            Some((String::from_utf8_lossy(a.key.as_ref()).into_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// crm_mon of a 2-node cluster right after a monitor failure (crm_simulate, Pacemaker 2.1.5),
    /// trimmed; plus a clone, a bundle replica, a node attribute, a ban and a fencing entry.
    const XML: &str = r#"<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml --inactive">
  <summary>
    <stack type="corosync"/>
    <current_dc present="true" version="2.1.5" name="n2" id="2" with_quorum="true" mixed_version="false"/>
    <last_update time="Tue Dec  1 14:16:11 2026"/>
    <last_change time="" user="" client="" origin=""/>
    <nodes_configured number="2"/>
    <resources_configured number="4" disabled="0" blocked="0"/>
    <cluster_options stonith-enabled="true" symmetric-cluster="true" no-quorum-policy="stop" maintenance-mode="false"/>
  </summary>
  <nodes>
    <node name="n1" id="1" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" health="green" shutdown="false" expected_up="true" is_dc="false" resources_running="2" type="member"/>
    <node name="n2" id="2" online="false" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="true" health="green" shutdown="false" expected_up="true" is_dc="true" resources_running="0" type="member"/>
  </nodes>
  <resources>
    <group id="svc" number_resources="2" managed="true" disabled="false">
      <resource id="ip" resource_agent="ocf:heartbeat:Dummy" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="n1" id="1" cached="true"/>
      </resource>
      <resource id="app" resource_agent="ocf:heartbeat:Dummy" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="true" failure_ignored="false" nodes_running_on="1">
        <node name="n1" id="1" cached="true"/>
      </resource>
    </group>
    <clone id="web-clone" multi_state="false" unique="false" maintenance="false" managed="true" disabled="false" failed="false" failure_ignored="false">
      <resource id="web" resource_agent="ocf:hastack:nginx" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="n1" id="1" cached="true"/>
      </resource>
      <resource id="web" resource_agent="ocf:hastack:nginx" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
    </clone>
    <resource id="old" resource_agent="ocf:heartbeat:Dummy" role="Stopped" target_role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
  </resources>
  <node_attributes>
    <node name="n1"><attribute name="master-drbd" value="10000"/></node>
  </node_attributes>
  <node_history>
    <node name="n1">
      <resource_history id="app" orphan="false" migration-threshold="1" fail-count="1" last-failure="Tue Dec  1 14:16:10 2026">
        <operation_history call="4" task="monitor" rc="7" rc_text="not running" interval="10000ms" last-rc-change="Tue Dec  1 14:16:10 2026" exec-time="0ms" queue-time="0ms"/>
      </resource_history>
    </node>
  </node_history>
  <failures>
    <failure op_key="app_monitor_10000" node="n1" exitstatus="not running" exitreason="" exitcode="7" call="4" status="complete" last-rc-change="2026-12-01 14:16:10Z" queued="0" exec="0" interval="10000" task="monitor"/>
  </failures>
  <fence_history status="0">
    <fence_event action="reboot" target="n2" client="pacemaker-controld.1" origin="n1" status="success" delegate="n1" completed="2026-12-01 14:15:00Z"/>
  </fence_history>
  <bans>
    <ban id="cli-ban-app-on-n2" resource="app" node="n2" weight="-1000000" promoted-only="false" master_only="false"/>
  </bans>
  <status code="0" message="OK"/>
</pacemaker-result>"#;

    #[test]
    fn every_section_is_read() {
        let v = SnapshotView::parse(XML).unwrap();
        assert_eq!(v.dc.as_deref(), Some("n2"));
        assert_eq!(v.quorum, Some(true));
        assert_eq!(v.nodes.len(), 2);
        assert_eq!(v.nodes[1].state(), "unclean");
        assert_eq!(v.resources.len(), 5);
        assert_eq!(v.resources[1].parents, vec!["svc"]);
        assert_eq!(v.resources[2].parents, vec!["web-clone"]);
        assert_eq!(v.node_attributes[0].name, "master-drbd");
        assert_eq!(v.history[0].fail_count.as_deref(), Some("1"));
        assert_eq!(v.history[0].operations[0].rc.as_deref(), Some("7"));
        assert_eq!(v.failures[0].op_key, "app_monitor_10000");
        assert_eq!(v.failures[0].exitreason, None);
        assert_eq!(v.fencing[0].target, "n2");
        assert_eq!(v.bans[0].node, "n2");
        assert_eq!(v.status, Some(("0".into(), "OK".into())));
        assert_eq!(v.last_change, None);
    }

    #[test]
    fn the_summary_has_what_a_tile_needs() {
        let s = SnapshotView::parse(XML).unwrap().summary();
        assert_eq!(s.failed_resources, vec!["app"]);
        // `old` is disabled: stopped on purpose, not a service that is down.
        assert!(s.stopped_resources.is_empty(), "{:?}", s.stopped_resources);
        assert_eq!(s.failed_actions, 1);
        assert_eq!(s.placement["web"], vec!["n1"]);
        assert_eq!(s.placement["app"], vec!["n1"]);
        assert_eq!(s.nodes, vec![("n1".into(), "online".into()), ("n2".into(), "unclean".into())]);
    }

    #[test]
    fn the_summary_only_parse_gives_the_full_parse_s_summary() {
        assert_eq!(SnapshotView::summarise(XML).unwrap(), SnapshotView::parse(XML).unwrap().summary());
        // Cut inside a skipped section: both parses agree on whether that is XML.
        let cut = &XML[..XML.find("</node_history>").expect("the fixture has a node history")];
        assert_eq!(SnapshotView::summarise(cut).is_ok(), SnapshotView::parse(cut).is_ok());
    }

    #[test]
    fn attributes_are_unescaped_the_first_of_two_wins_and_a_flag_may_be_escaped() {
        let xml = r#"<pacemaker-result api-version="2.25"><summary>
            <current_dc present="tru&#101;" name="n&amp;1" name="second" with_quorum="true"/>
            <cluster_options maintenance-mode="true"/></summary>
            <nodes><node name="a&lt;b" online="true" standby="false" unclean="&#116;rue"/></nodes></pacemaker-result>"#;
        let v = SnapshotView::parse(xml).unwrap();
        assert_eq!(v.dc.as_deref(), Some("n&1"));
        assert_eq!(v.quorum, Some(true));
        assert_eq!(v.nodes[0].name, "a<b");
        assert!(v.nodes[0].online && v.nodes[0].unclean && !v.nodes[0].standby);
        let s = SnapshotView::summarise(xml).unwrap();
        assert_eq!(s, v.summary());
        assert!(s.maintenance_mode);
    }

    #[test]
    fn text_that_is_not_xml_is_an_error_and_unknown_elements_are_skipped() {
        assert!(SnapshotView::parse("<a><b></a>").is_err());
        let v = SnapshotView::parse("<pacemaker-result><future thing=\"1\"/><nodes/></pacemaker-result>").unwrap();
        assert!(v.nodes.is_empty());
    }
}
