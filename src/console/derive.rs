//! Incidents derived from a cluster's events, as pure functions (the store feeds them events in
//! time order and saves what changed). README.md "Console" states the rules:
//!
//! - A failed monitor, start or promote of a resource opens a **resource incident** (a probe's
//!   failure does not: the resource was not running there). Further failures of the same resource
//!   while it is open belong to it.
//! - A lost node, or a fencing of a node no incident covers, opens a **node incident**; its
//!   resources are those the node ran that ran nowhere else (a clone still serving from the other
//!   node is not down; fence devices are not services). If an incident of that node is open (a
//!   failed stop got it fenced), the loss joins it instead: one story, one incident. Fencing
//!   results attach to the incident of their target.
//! - An incident closes when every resource it took down runs again: a successful start (a
//!   promote if the promoted role failed, or a migrate_from). On another node than the one that
//!   failed it is a **failover**, on the same node a **restart** in place. A node incident that
//!   took no service down closes when the node is a member again (**node_returned**).
//! - MTTR = recovery time − detection time, for failovers and restarts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::report::Category;
use super::snapshot::base_id;

/// One (merged) event, as the derivation sees it.
#[derive(Debug, Clone, Default)]
pub struct EventFacts {
    pub id: i64,
    pub time_us: i64,
    pub category: Option<Category>,
    /// `CRM_alert_node`: where a resource operation ran, the node that joined or left, the
    /// fencing target.
    pub node: Option<String>,
    /// The resource without a clone instance suffix.
    pub rsc: Option<String>,
    pub task: Option<String>,
    pub interval_ms: Option<i64>,
    pub target_rc: Option<i64>,
    pub summary: String,
    /// Where resources ran per this event's snapshot (None: the report had no snapshot).
    pub placement: Option<BTreeMap<String, Vec<String>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Resource,
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Failover,
    Restart,
    NodeReturned,
}

impl IncidentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Resource => "resource",
            IncidentKind::Node => "node",
        }
    }
    pub fn parse(s: &str) -> Option<IncidentKind> {
        match s {
            "resource" => Some(IncidentKind::Resource),
            "node" => Some(IncidentKind::Node),
            _ => None,
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failover => "failover",
            Outcome::Restart => "restart",
            Outcome::NodeReturned => "node_returned",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "failover" => Some(Outcome::Failover),
            "restart" => Some(Outcome::Restart),
            "node_returned" => Some(Outcome::NodeReturned),
            _ => None,
        }
    }
}

/// A resource the incident waits for, and whether it must be promoted (not just started).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub rsc: String,
    pub promote: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// The id of the event that opened it (stable when the derivation is replayed).
    pub id: i64,
    pub kind: IncidentKind,
    /// The failed resource (resource incidents).
    pub rsc: Option<String>,
    /// Where it failed, or the node that was lost or fenced.
    pub node: String,
    pub detected_us: i64,
    pub recovered_us: Option<i64>,
    pub outcome: Option<Outcome>,
    /// The nodes the resources came back on.
    pub recovered_on: Vec<String>,
    /// Every resource it took down; `pending` those not running again yet.
    pub affected: Vec<String>,
    pub pending: Vec<Pending>,
    pub fence_ok: u32,
    pub fence_failed: u32,
    pub summary: String,
}

impl Incident {
    pub fn mttr_ms(&self) -> Option<i64> {
        super::stats::Span::from(self).mttr_ms()
    }

    pub fn is_open(&self) -> bool {
        self.recovered_us.is_none()
    }
}

/// What one event did.
#[derive(Debug, Default, PartialEq)]
pub struct StepResult {
    /// The incident the event belongs to (it opened, joined or closed it).
    pub incident: Option<i64>,
    /// Incidents opened or changed by this event (the store saves them).
    pub changed: Vec<Incident>,
}

/// The derivation's memory between events: the open incidents and where resources run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeriveState {
    pub open: Vec<Incident>,
    pub placement: BTreeMap<String, Vec<String>>,
}

impl DeriveState {
    pub fn step(&mut self, ev: &EventFacts) -> StepResult {
        let before = self.placement.clone();
        self.track_placement(ev);
        let Some(category) = ev.category else { return StepResult::default() };
        match category {
            Category::OperationFailed => self.resource_failed(ev),
            Category::OperationSucceeded => self.resource_ran(ev),
            Category::NodeLost => self.node_down(ev, &before, false),
            Category::FencingSucceeded | Category::FencingFailed => self.fenced(ev, category, &before),
            Category::NodeMember => self.node_back(ev),
            _ => StepResult::default(),
        }
    }

    fn track_placement(&mut self, ev: &EventFacts) {
        if let Some(p) = &ev.placement {
            self.placement = p.clone();
            return;
        }
        // No snapshot: follow the operation itself.
        if let (Some(Category::OperationSucceeded), Some(rsc), Some(node), Some(task)) =
            (ev.category, &ev.rsc, &ev.node, ev.task.as_deref())
        {
            let nodes = self.placement.entry(rsc.clone()).or_default();
            match task {
                "start" | "promote" | "migrate_from" if !nodes.contains(node) => nodes.push(node.clone()),
                "stop" | "migrate_to" => nodes.retain(|n| n != node),
                _ => {}
            }
        }
    }

    fn resource_failed(&mut self, ev: &EventFacts) -> StepResult {
        let (Some(rsc), Some(node), Some(task)) = (&ev.rsc, &ev.node, ev.task.as_deref()) else {
            return StepResult::default();
        };
        let promote = task == "promote" || ev.target_rc == Some(8);
        // Failed stops and demotes end in fencing or a blocked resource: they join an open incident.
        let opens = match task {
            "monitor" => ev.interval_ms.unwrap_or(0) > 0,
            "start" | "promote" => true,
            _ => false,
        };
        if let Some(i) = self.open.iter_mut().find(|i| i.pending.iter().any(|p| &p.rsc == rsc)) {
            if promote {
                for p in i.pending.iter_mut().filter(|p| &p.rsc == rsc) {
                    p.promote = true;
                }
            }
            return StepResult { incident: Some(i.id), changed: vec![i.clone()] };
        }
        if let Some(i) = self.open.iter().find(|i| i.kind == IncidentKind::Node && &i.node == node) {
            return StepResult { incident: Some(i.id), changed: Vec::new() };
        }
        if !opens {
            return StepResult::default();
        }
        let incident = Incident {
            id: ev.id,
            kind: IncidentKind::Resource,
            rsc: Some(rsc.clone()),
            node: node.clone(),
            detected_us: ev.time_us,
            recovered_us: None,
            outcome: None,
            recovered_on: Vec::new(),
            affected: vec![rsc.clone()],
            pending: vec![Pending { rsc: rsc.clone(), promote }],
            fence_ok: 0,
            fence_failed: 0,
            summary: ev.summary.clone(),
        };
        self.open.push(incident.clone());
        StepResult { incident: Some(ev.id), changed: vec![incident] }
    }

    fn resource_ran(&mut self, ev: &EventFacts) -> StepResult {
        let (Some(rsc), Some(node), Some(task)) = (&ev.rsc, &ev.node, ev.task.as_deref()) else {
            return StepResult::default();
        };
        let brings_back = |p: &Pending| match task {
            "promote" => true,
            "start" | "migrate_from" => !p.promote,
            _ => false,
        };
        let mut result = StepResult::default();
        let mut closed = Vec::new();
        for (idx, i) in self.open.iter_mut().enumerate() {
            let before = i.pending.len();
            i.pending.retain(|p| !(&p.rsc == rsc && brings_back(p)));
            if i.pending.len() == before {
                // A stop or start of a resource this incident waits for is part of its story.
                if result.incident.is_none() && i.affected.contains(rsc) {
                    result.incident = Some(i.id);
                }
                continue;
            }
            if !i.recovered_on.contains(node) {
                i.recovered_on.push(node.clone());
            }
            result.incident = Some(i.id);
            if i.pending.is_empty() {
                i.recovered_us = Some(ev.time_us);
                let moved = i.recovered_on.iter().any(|n| n != &i.node);
                i.outcome = Some(if moved { Outcome::Failover } else { Outcome::Restart });
                closed.push(idx);
            }
            result.changed.push(i.clone());
        }
        for idx in closed.into_iter().rev() {
            self.open.remove(idx);
        }
        result
    }

    /// A node lost (or fenced with no incident yet): it joins an open incident of that node (a
    /// failed stop gets the node fenced, then lost: one story), else opens a node incident.
    fn node_down(&mut self, ev: &EventFacts, before: &BTreeMap<String, Vec<String>>, fenced: bool) -> StepResult {
        let Some(node) = &ev.node else { return StepResult::default() };
        // What ran on the node, before this event or per its own snapshot, and nowhere else.
        let mut affected: Vec<String> = Vec::new();
        for placement in [Some(before), ev.placement.as_ref()].into_iter().flatten() {
            for (rsc, nodes) in placement {
                let elsewhere = nodes.iter().any(|n| n != node);
                if nodes.contains(node) && !elsewhere && !affected.contains(rsc) {
                    affected.push(rsc.clone());
                }
            }
        }
        let existing = self
            .open
            .iter()
            .position(|i| i.kind == IncidentKind::Node && &i.node == node)
            .or_else(|| self.open.iter().position(|i| &i.node == node));
        // Resources another open incident waits for stay with it.
        let others: Vec<usize> = (0..self.open.len()).filter(|&j| Some(j) != existing).collect();
        affected.retain(|r| !others.iter().any(|&j| self.open[j].pending.iter().any(|p| &p.rsc == r)));
        if let Some(idx) = existing {
            let i = &mut self.open[idx];
            let mut grew = false;
            for r in affected {
                if !i.affected.contains(&r) {
                    i.pending.push(Pending { rsc: r.clone(), promote: false });
                    i.affected.push(r);
                    grew = true;
                }
            }
            let changed = if grew { vec![i.clone()] } else { Vec::new() };
            return StepResult { incident: Some(i.id), changed };
        }
        let incident = Incident {
            id: ev.id,
            kind: IncidentKind::Node,
            rsc: None,
            node: node.clone(),
            detected_us: ev.time_us,
            recovered_us: None,
            outcome: None,
            recovered_on: Vec::new(),
            pending: affected.iter().map(|r| Pending { rsc: r.clone(), promote: false }).collect(),
            affected,
            fence_ok: 0,
            fence_failed: 0,
            summary: if fenced { format!("{node} fenced: {}", ev.summary) } else { ev.summary.clone() },
        };
        self.open.push(incident.clone());
        StepResult { incident: Some(ev.id), changed: vec![incident] }
    }

    fn fenced(&mut self, ev: &EventFacts, category: Category, before: &BTreeMap<String, Vec<String>>) -> StepResult {
        let Some(target) = &ev.node else { return StepResult::default() };
        let pos = self
            .open
            .iter()
            .position(|i| i.kind == IncidentKind::Node && &i.node == target)
            .or_else(|| self.open.iter().position(|i| &i.node == target));
        let idx = match pos {
            Some(idx) => idx,
            None => {
                self.node_down(ev, before, true);
                self.open.len() - 1
            }
        };
        let i = &mut self.open[idx];
        if category == Category::FencingSucceeded {
            i.fence_ok += 1;
        } else {
            i.fence_failed += 1;
        }
        StepResult { incident: Some(i.id), changed: vec![i.clone()] }
    }

    fn node_back(&mut self, ev: &EventFacts) -> StepResult {
        let Some(node) = &ev.node else { return StepResult::default() };
        let Some(idx) = self.open.iter().position(|i| i.kind == IncidentKind::Node && &i.node == node) else {
            return StepResult::default();
        };
        let i = &mut self.open[idx];
        if !i.pending.is_empty() {
            return StepResult { incident: Some(i.id), changed: Vec::new() };
        }
        i.recovered_us = Some(ev.time_us);
        i.outcome = Some(Outcome::NodeReturned);
        let closed = self.open.remove(idx);
        StepResult { incident: Some(closed.id), changed: vec![closed] }
    }
}

/// Every incident of a cluster from its events in time order (tests, and the store's replay
/// after a late event, which seeds `state` with the placement before the first event).
pub fn derive(state: &mut DeriveState, events: &[EventFacts]) -> (Vec<Incident>, Vec<(i64, i64)>) {
    let mut incidents: Vec<Incident> = Vec::new();
    let mut attached = Vec::new();
    for ev in events {
        let step = state.step(ev);
        if let Some(id) = step.incident {
            attached.push((ev.id, id));
        }
        for changed in step.changed {
            match incidents.iter_mut().find(|i| i.id == changed.id) {
                Some(i) => *i = changed,
                None => incidents.push(changed),
            }
        }
    }
    (incidents, attached)
}

/// A resource id as incidents key it: without the clone instance suffix.
pub fn resource_key(rsc: &str) -> String {
    base_id(rsc).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, category: Category, node: &str, rsc: Option<&str>, task: Option<&str>) -> EventFacts {
        EventFacts {
            id,
            time_us: id * 1_000_000,
            category: Some(category),
            node: Some(node.into()),
            rsc: rsc.map(Into::into),
            task: task.map(Into::into),
            interval_ms: Some(if task == Some("monitor") { 10_000 } else { 0 }),
            target_rc: Some(0),
            summary: format!("event {id}"),
            placement: None,
        }
    }

    #[test]
    fn a_failed_probe_opens_nothing() {
        let mut probe = ev(1, Category::OperationFailed, "n2", Some("db"), Some("monitor"));
        probe.interval_ms = Some(0);
        let (incidents, _) = derive(&mut DeriveState::default(), &[probe]);
        assert!(incidents.is_empty());
    }

    #[test]
    fn a_failed_promoted_instance_needs_a_promote_to_recover() {
        let mut fail = ev(1, Category::OperationFailed, "n1", Some("drbd"), Some("monitor"));
        fail.target_rc = Some(8);
        let events = [
            fail,
            ev(2, Category::OperationSucceeded, "n1", Some("drbd"), Some("start")),
            ev(3, Category::OperationSucceeded, "n2", Some("drbd"), Some("promote")),
        ];
        let (incidents, attached) = derive(&mut DeriveState::default(), &events);
        assert_eq!(incidents.len(), 1);
        assert_eq!((incidents[0].outcome, incidents[0].mttr_ms()), (Some(Outcome::Failover), Some(2000)));
        assert_eq!(attached, vec![(1, 1), (2, 1), (3, 1)]);
    }

    #[test]
    fn losing_a_node_that_ran_no_service_alone_closes_when_it_returns() {
        let mut state = DeriveState::default();
        state.placement.insert("web".into(), vec!["n1".into(), "n2".into()]);
        let events = [ev(1, Category::NodeLost, "n2", None, None), ev(5, Category::NodeMember, "n2", None, None)];
        let (incidents, _) = derive(&mut state, &events);
        assert_eq!(incidents.len(), 1);
        assert!(incidents[0].affected.is_empty());
        assert_eq!(incidents[0].outcome, Some(Outcome::NodeReturned));
        assert_eq!(incidents[0].mttr_ms(), None, "no service was down: not in MTTR");
    }

    #[test]
    fn a_failed_stop_then_fencing_then_the_loss_of_the_node_is_one_incident() {
        let mut state = DeriveState::default();
        state.placement.insert("ip".into(), vec!["n1".into()]);
        state.placement.insert("app".into(), vec!["n1".into()]);
        let events = [
            ev(1, Category::OperationFailed, "n1", Some("app"), Some("monitor")),
            ev(2, Category::OperationFailed, "n1", Some("app"), Some("stop")),
            ev(3, Category::FencingSucceeded, "n1", None, None),
            ev(4, Category::NodeLost, "n1", None, None),
            ev(6, Category::OperationSucceeded, "n2", Some("ip"), Some("start")),
            ev(7, Category::OperationSucceeded, "n2", Some("app"), Some("start")),
        ];
        let (incidents, _) = derive(&mut state, &events);
        assert_eq!(incidents.len(), 1, "{incidents:#?}");
        let i = &incidents[0];
        assert_eq!((i.kind, i.fence_ok, i.outcome), (IncidentKind::Resource, 1, Some(Outcome::Failover)));
        assert_eq!(i.affected, vec!["app", "ip"]);
        assert_eq!(i.mttr_ms(), Some(6000));
    }
}
