//! A scheduler transition graph (`crm_simulate --save-graph`): every action with the actions it
//! waits for. Pure parsing, so scenario checks are plain questions on a data structure.

use std::collections::{BTreeMap, BTreeSet};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// An operation an agent would run on a node.
    Resource,
    /// A bookkeeping step (e.g. a group's `running`, a stop implied by fencing).
    Pseudo,
    /// A cluster event: `stonith` (fencing) or `do_shutdown`.
    Cluster,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub id: u32,
    pub kind: ActionKind,
    /// start, stop, promote, demote, monitor, notify, stonith, running, ...
    pub operation: String,
    /// The resource (primitive id without a clone instance suffix), or the operation key for
    /// pseudo actions without one.
    pub rsc: String,
    /// The operation key, e.g. `db_monitor_10000`.
    pub key: String,
    /// The node it runs on (for `stonith`: the node fenced).
    pub node: Option<String>,
    /// Recurring interval in ms (0 for one-shot operations).
    pub interval_ms: u64,
    /// Ids of the actions this one waits for.
    pub inputs: Vec<u32>,
}

#[derive(Debug, Default)]
pub struct Transition {
    pub actions: BTreeMap<u32, Action>,
}

impl Transition {
    pub fn parse(xml: &str) -> Result<Transition, String> {
        let mut reader = Reader::from_str(xml);
        let mut t = Transition::default();
        // Inside a synapse: the action being built, and whether we are in its inputs.
        let mut current: Option<Action> = None;
        let mut in_inputs = false;
        let mut pending_inputs: Vec<u32> = Vec::new();
        loop {
            let event = reader.read_event().map_err(|e| format!("transition graph: {e}"))?;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let name = e.name().as_ref().to_vec();
                    match name.as_slice() {
                        b"synapse" => {
                            current = None;
                            in_inputs = false;
                            pending_inputs.clear();
                        }
                        // `<inputs/>` (no inputs) has no end tag: only an opening one starts the list.
                        b"inputs" => in_inputs = matches!(event, Event::Start(_)),
                        b"rsc_op" | b"pseudo_event" | b"crm_event" => {
                            let id: u32 = attr(e, "id").and_then(|v| v.parse().ok()).ok_or("action without id")?;
                            if in_inputs {
                                pending_inputs.push(id);
                            } else {
                                current = Some(action(e, id, &name));
                            }
                        }
                        b"primitive" if !in_inputs => {
                            if let (Some(a), Some(id)) = (current.as_mut(), attr(e, "id")) {
                                a.rsc = id.split(':').next().unwrap_or(&id).to_string();
                            }
                        }
                        b"attributes" if !in_inputs => {
                            if let (Some(a), Some(ms)) = (current.as_mut(), attr(e, "CRM_meta_interval")) {
                                a.interval_ms = ms.parse().unwrap_or(0);
                            }
                        }
                        _ => {}
                    }
                }
                Event::End(e) => match e.name().as_ref() {
                    b"inputs" => in_inputs = false,
                    b"synapse" => {
                        if let Some(mut a) = current.take() {
                            a.inputs = std::mem::take(&mut pending_inputs);
                            t.actions.insert(a.id, a);
                        }
                    }
                    _ => {}
                },
                Event::Eof => break,
                _ => {}
            }
        }
        Ok(t)
    }

    /// Actions agents would run (no pseudo actions, no recurring monitors, no probes).
    pub fn resource_actions(&self) -> impl Iterator<Item = &Action> {
        self.actions.values().filter(|a| a.kind == ActionKind::Resource && a.operation != "monitor")
    }

    /// The first action matching operation, resource and (if given) node.
    pub fn find(&self, operation: &str, rsc: &str, node: Option<&str>) -> Option<&Action> {
        self.actions
            .values()
            .find(|a| a.operation == operation && a.rsc == rsc && node.is_none_or(|n| a.node.as_deref() == Some(n)))
    }

    /// Every action matching operation and resource (all nodes, all instances).
    pub fn find_all(&self, operation: &str, rsc: &str) -> Vec<&Action> {
        self.actions.values().filter(|a| a.operation == operation && a.rsc == rsc).collect()
    }

    /// The fencing of `node`, if scheduled.
    pub fn fencing(&self, node: &str) -> Option<&Action> {
        self.actions.values().find(|a| a.operation == "stonith" && a.node.as_deref() == Some(node))
    }

    pub fn fenced_nodes(&self) -> Vec<String> {
        self.actions.values().filter(|a| a.operation == "stonith").filter_map(|a| a.node.clone()).collect()
    }

    /// Whether `later` (transitively) waits for `earlier`.
    pub fn waits_for(&self, later: u32, earlier: u32) -> bool {
        let mut seen = BTreeSet::new();
        let mut todo = vec![later];
        while let Some(id) = todo.pop() {
            let Some(a) = self.actions.get(&id) else { continue };
            for &input in &a.inputs {
                if input == earlier {
                    return true;
                }
                if seen.insert(input) {
                    todo.push(input);
                }
            }
        }
        false
    }

    /// Every action in an order the cluster may run them: each after all it waits for (ties by id).
    pub fn in_order(&self) -> Vec<&Action> {
        let mut done: BTreeSet<u32> = BTreeSet::new();
        let mut out = Vec::new();
        while out.len() < self.actions.len() {
            let ready = self.actions.values().find(|a| {
                !done.contains(&a.id) && a.inputs.iter().all(|i| done.contains(i) || !self.actions.contains_key(i))
            });
            // A cycle cannot come out of the scheduler; should one appear, list the rest by id.
            let next = ready.or_else(|| self.actions.values().find(|a| !done.contains(&a.id))).expect("one is left");
            done.insert(next.id);
            out.push(next);
        }
        out
    }

    /// One line per fencing and per start/stop/promote/demote, in execution order: `stonith node1`,
    /// `start vip1 on node2`. (Monitors, notifications and crm_simulate's `clear_failcount` for
    /// an injected failure are left out.)
    pub fn summary(&self) -> Vec<String> {
        const SHOWN: &[&str] = &["stonith", "start", "stop", "promote", "demote"];
        self.in_order()
            .into_iter()
            .filter(|a| a.kind != ActionKind::Pseudo && SHOWN.contains(&a.operation.as_str()))
            .map(|a| match (&a.kind, a.node.as_deref()) {
                (ActionKind::Cluster, Some(n)) => format!("{} {n}", a.operation),
                (_, Some(n)) => format!("{} {} on {n}", a.operation, a.rsc),
                (_, None) => format!("{} {}", a.operation, a.rsc),
            })
            .collect()
    }
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn action(e: &BytesStart, id: u32, tag: &[u8]) -> Action {
    let kind = match tag {
        b"rsc_op" => ActionKind::Resource,
        b"pseudo_event" => ActionKind::Pseudo,
        _ => ActionKind::Cluster,
    };
    let key = attr(e, "operation_key").unwrap_or_default();
    Action {
        id,
        kind,
        operation: attr(e, "operation").unwrap_or_default(),
        rsc: key.clone(),
        key,
        node: attr(e, "on_node"),
        interval_ms: 0,
        inputs: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAPH: &str = r#"<transition_graph cluster-delay="60s" transition_id="0">
  <synapse id="0">
    <action_set>
      <rsc_op id="7" operation="start" operation_key="vip1_start_0" on_node="node2" on_node_uuid="2">
        <primitive id="vip1" class="ocf" provider="hastack" type="vip"/>
        <attributes CRM_meta_on_node="node2" CRM_meta_timeout="60000" ip="10.0.0.10"/>
      </rsc_op>
    </action_set>
    <inputs>
      <trigger>
        <pseudo_event id="5" operation="stop" operation_key="vip1_stop_0"/>
      </trigger>
    </inputs>
  </synapse>
  <synapse id="1">
    <action_set>
      <pseudo_event id="5" operation="stop" operation_key="vip1_stop_0">
        <attributes CRM_meta_timeout="60000"/>
      </pseudo_event>
    </action_set>
    <inputs>
      <trigger>
        <crm_event id="1" operation="stonith" operation_key="stonith-node1-reboot" on_node="node1" on_node_uuid="1"/>
      </trigger>
    </inputs>
  </synapse>
  <synapse id="2">
    <action_set>
      <crm_event id="1" operation="stonith" operation_key="stonith-node1-reboot" on_node="node1" on_node_uuid="1">
        <attributes CRM_meta_stonith_action="reboot"/>
      </crm_event>
    </action_set>
    <inputs/>
  </synapse>
  <synapse id="3">
    <action_set>
      <rsc_op id="9" operation="monitor" operation_key="web_monitor_10000" on_node="node2" on_node_uuid="2">
        <primitive id="web" long-id="web:1" class="ocf" provider="hastack" type="nginx"/>
        <attributes CRM_meta_interval="10000"/>
      </rsc_op>
    </action_set>
    <inputs/>
  </synapse>
</transition_graph>"#;

    #[test]
    fn parses_actions_inputs_and_transitive_order() {
        let t = Transition::parse(GRAPH).unwrap();
        let start = t.find("start", "vip1", Some("node2")).expect("start of vip1");
        let fence = t.fencing("node1").expect("fencing of node1");
        assert_eq!(fence.kind, ActionKind::Cluster);
        assert_eq!(start.inputs, vec![5]);
        assert!(t.waits_for(start.id, fence.id), "start waits for the fencing through the implied stop");
        assert!(!t.waits_for(fence.id, start.id));
        let monitor = t.find("monitor", "web", None).unwrap();
        assert_eq!(monitor.interval_ms, 10_000);
        assert_eq!(t.summary(), vec!["stonith node1", "start vip1 on node2"]);
        assert_eq!(t.fenced_nodes(), vec!["node1"]);
    }
}
