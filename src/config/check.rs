//! `hastack config check`: crm_verify on the rendered CIB, then the failure scenarios through
//! crm_simulate, each with what the scheduler does and whether the stack's promises hold:
//! - a node lost: it is fenced before anything starts elsewhere; HTTP/app clone instances on the
//!   surviving nodes are neither stopped nor started;
//! - a group's last service failing its monitor: restarted in place until migration-threshold,
//!   then the group moves (along its ordered failover list, stopping after the last node);
//!   clone instances untouched throughout;
//! - in both, a group's warm standbys: Promoted where the group runs, promoted after its start,
//!   never restarted (promoted or demoted only).

use std::fmt::Write;

use anyhow::Result;

use super::build::interval_ms;
use super::graph::{ActionKind, Transition};
use super::model::{Primitive, Resource};
use super::simulate::{verify, Sim};
use super::Loaded;

pub struct Report {
    pub ok: bool,
    pub text: String,
}

/// What the scenarios need to know about the stack.
pub struct Facts {
    pub nodes: Vec<String>,
    /// Primitives of promotable clones (their promotion scores are simulated).
    pub promotable: Vec<String>,
    /// Primitives of the other clones: the HTTP and application servers.
    pub clone_children: Vec<String>,
    pub groups: Vec<GroupFacts>,
    pub alert: Option<String>,
}

pub struct GroupFacts {
    pub id: String,
    pub members: Vec<String>,
    /// The last member (the database in the data group) and its monitor's operation key interval.
    pub last: String,
    pub last_monitor_ms: u64,
    pub threshold: u32,
    /// The ordered failover list (preferred node first), when the group has one.
    pub ordered: Option<Vec<String>>,
    /// Its `parallel` layers: they start together, none waiting for another.
    pub parallel: Vec<String>,
    /// The members of the Pacemaker group itself (its layers before the `parallel` ones).
    pub sequential: Vec<String>,
    /// Its `warm_standby` layers (primitives of promotable clones): Promoted where the group
    /// runs, after its start; their unpromoted instances elsewhere are never restarted.
    pub warm: Vec<String>,
}

impl GroupFacts {
    /// How a `parallel` layer starts with the group: its start, or a warm standby's promotion.
    fn parallel_action(&self, rsc: &str) -> &'static str {
        if self.warm.iter().any(|w| w == rsc) {
            "promote"
        } else {
            "start"
        }
    }
}

/// The primitives rendered for group `id`'s `parallel` layers, in the stack's order (a warm
/// standby's: its clone's child).
fn parallel_of<'a>(loaded: &'a Loaded, id: &str) -> Vec<&'a Primitive> {
    let Some(g) = loaded.stack.groups.iter().map(|g| g.get_ref()).find(|g| g.id.get_ref() == id) else {
        return Vec::new();
    };
    g.layers[g.sequential_len()..]
        .iter()
        .filter_map(|l| {
            loaded.cluster.resources.iter().find_map(|r| match r {
                Resource::Primitive(p) if &p.id == l.get_ref().id.get_ref() => Some(p),
                Resource::Clone(c) if &c.child.id == l.get_ref().id.get_ref() => Some(&c.child),
                _ => None,
            })
        })
        .collect()
}

/// The ids of group `id`'s `warm_standby` layers.
fn warm_of(loaded: &Loaded, id: &str) -> Vec<String> {
    let Some(g) = loaded.stack.groups.iter().map(|g| g.get_ref()).find(|g| g.id.get_ref() == id) else {
        return Vec::new();
    };
    g.layers[g.sequential_len()..]
        .iter()
        .map(|l| l.get_ref())
        .filter(|l| l.is_warm_standby())
        .map(|l| l.id.get_ref().clone())
        .collect()
}

impl Facts {
    pub fn of(loaded: &Loaded) -> Facts {
        let cluster = &loaded.cluster;
        let default_threshold = *loaded.stack.cluster.migration_threshold.get_ref();
        let threshold_of = |p: &Primitive| {
            p.meta
                .iter()
                .find(|(k, _)| k == "migration-threshold")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(default_threshold)
                .clamp(1, 100) as u32
        };
        let mut facts = Facts {
            nodes: loaded.node_names(),
            promotable: Vec::new(),
            clone_children: Vec::new(),
            groups: Vec::new(),
            alert: cluster.alerts.first().map(|a| a.path.clone()),
        };
        for r in &cluster.resources {
            match r {
                Resource::Clone(c) if c.promotable => facts.promotable.push(c.child.id.clone()),
                Resource::Clone(c) => facts.clone_children.push(c.child.id.clone()),
                Resource::Group(g) => {
                    // The group's `parallel` layers run outside it, colocated: they are its
                    // members for the scenarios, the last one (the database) included. A warm
                    // standby is not the one whose failures are injected: its failures are
                    // the promotable clone's recovery, not the group's.
                    let parallel = parallel_of(loaded, &g.id);
                    let warm: Vec<String> = warm_of(loaded, &g.id);
                    let members: Vec<&Primitive> = g.members.iter().chain(parallel.iter().copied()).collect();
                    let last = *members
                        .iter()
                        .rev()
                        .find(|m| !warm.contains(&m.id))
                        .expect("validated: groups have members before their parallel layers");
                    let monitor = last.ops.iter().find(|o| o.name == "monitor").expect("every layer has a monitor");
                    let spec = loaded.stack.groups.iter().find(|s| s.get_ref().id.get_ref() == &g.id);
                    let ordered = spec.and_then(|s| {
                        let s = s.get_ref();
                        s.failover.as_ref().map(|f| {
                            let mut list: Vec<String> = s.prefer.iter().map(|p| p.get_ref().clone()).collect();
                            list.extend(f.get_ref().iter().map(|n| n.get_ref().clone()));
                            list
                        })
                    });
                    facts.groups.push(GroupFacts {
                        id: g.id.clone(),
                        members: members.iter().map(|m| m.id.clone()).collect(),
                        last: last.id.clone(),
                        last_monitor_ms: interval_ms(monitor),
                        threshold: threshold_of(last),
                        ordered,
                        parallel: parallel.iter().map(|p| p.id.clone()).collect(),
                        sequential: g.members.iter().map(|m| m.id.clone()).collect(),
                        warm,
                    });
                }
                Resource::Primitive(_) => {}
            }
        }
        facts
    }

    fn sim(&self, loaded: &Loaded) -> Result<Sim> {
        Sim::start(&loaded.render(super::Format::Cib), &self.nodes, &self.promotable)
    }
}

/// One scenario's account: what happened, which promises were broken, what looks wrong.
#[derive(Default)]
pub struct Section {
    pub title: String,
    pub lines: Vec<String>,
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
}

impl Section {
    fn new(title: String) -> Section {
        Section { title, ..Section::default() }
    }
    fn expect(&mut self, holds: bool, promise: impl Into<String>) {
        let promise = promise.into();
        if holds {
            self.lines.push(format!("ok: {promise}"));
        } else {
            self.violations.push(promise);
        }
    }
    fn transition(&mut self, label: &str, t: &Transition) {
        let actions = t.summary();
        if actions.is_empty() {
            self.lines.push(format!("{label}: nothing to do"));
        } else {
            self.lines.push(format!("{label}: {}", actions.join(", ")));
        }
    }
}

pub fn run(loaded: &Loaded) -> Result<Report> {
    let facts = Facts::of(loaded);
    let mut sections = Vec::new();

    let sim = Sim::new(&loaded.render(super::Format::Cib))?;
    let verdict = verify(sim.state())?;
    let mut s = Section::new("crm_verify".into());
    if !verdict.messages.is_empty() {
        s.lines.extend(verdict.messages.lines().map(str::to_string));
    }
    s.expect(verdict.ok, "crm_verify accepts the configuration");
    sections.push(s);

    for node in &facts.nodes {
        sections.push(node_lost(loaded, &facts, node)?);
    }
    for group in &facts.groups {
        sections.push(monitor_failures(loaded, &facts, group)?);
    }
    if let Some(path) = &facts.alert {
        let mut s = Section::new("this host".into());
        match alert_agent_here(path) {
            Ok(()) => s.lines.push(format!("ok: the alert agent {path} is installed here")),
            Err(why) => s.warnings.push(format!(
                "the alert agent {path} {why} on this host: Pacemaker runs it on every node, so install hastack there \
(package or `make install`) or correct [alert] path (no concern if this host is no cluster node)"
            )),
        }
        sections.push(s);
    }

    let mut text = String::new();
    let mut ok = true;
    let mut warnings = 0;
    for s in &sections {
        let _ = writeln!(text, "== {}", s.title);
        for line in &s.lines {
            let _ = writeln!(text, "   {line}");
        }
        for w in &s.warnings {
            warnings += 1;
            let _ = writeln!(text, "   warning: {w}");
        }
        for v in &s.violations {
            ok = false;
            let _ = writeln!(text, "   FAILED: {v}");
        }
    }
    let verdict = match (ok, warnings) {
        (false, _) => "FAILED".to_string(),
        (true, 0) => "all scenarios behave as the stack promises".to_string(),
        (true, n) => {
            format!("all scenarios behave as the stack promises ({n} warning{} above)", if n > 1 { "s" } else { "" })
        }
    };
    let _ = writeln!(text, "{verdict}");
    Ok(Report { ok, text })
}

/// Whether the alert agent is an executable file here; Err says what it is instead.
pub fn alert_agent_here(path: &str) -> Result<(), &'static str> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(_) => Err("does not exist"),
        Ok(m) if !m.is_file() => Err("is not a file"),
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Err("is not executable"),
        Ok(_) => Ok(()),
    }
}

/// Clone instances (HTTP/app servers) started or stopped on any of `nodes`.
pub fn clone_churn(t: &Transition, facts: &Facts, nodes: &[&str]) -> Vec<String> {
    t.actions
        .values()
        .filter(|a| a.kind == ActionKind::Resource && matches!(a.operation.as_str(), "start" | "stop"))
        .filter(|a| facts.clone_children.contains(&a.rsc))
        .filter(|a| a.node.as_deref().is_some_and(|n| nodes.contains(&n)))
        .map(|a| format!("{} {} on {}", a.operation, a.rsc, a.node.as_deref().unwrap_or("?")))
        .collect()
}

fn node_lost(loaded: &Loaded, facts: &Facts, node: &str) -> Result<Section> {
    let mut s = Section::new(format!("node {node} lost"));
    let mut sim = facts.sim(loaded)?;
    let step = sim.step(&["--node-fail".into(), node.into()])?;
    let t = &step.transition;
    s.transition("transition", t);
    let fence = t.fencing(node);
    s.expect(fence.is_some(), format!("{node} is fenced"));
    if let Some(fence) = fence {
        let early: Vec<String> = t
            .resource_actions()
            .filter(|a| matches!(a.operation.as_str(), "start" | "promote"))
            .filter(|a| !t.waits_for(a.id, fence.id))
            .map(|a| format!("{} {}", a.operation, a.rsc))
            .collect();
        s.expect(early.is_empty(), format!("nothing starts or is promoted before the fencing (early: {early:?})"));
    }
    let survivors: Vec<&str> = facts.nodes.iter().map(String::as_str).filter(|n| *n != node).collect();
    let churn = clone_churn(t, facts, &survivors);
    s.expect(churn.is_empty(), format!("HTTP/app clone instances on the survivors are untouched (touched: {churn:?})"));
    for g in &facts.groups {
        let starts: Vec<_> = g.parallel.iter().filter_map(|rsc| t.find(g.parallel_action(rsc), rsc, None)).collect();
        if starts.len() > 1 {
            let serial: Vec<String> = starts
                .iter()
                .flat_map(|a| starts.iter().filter(|b| b.id != a.id && t.waits_for(a.id, b.id)).map(move |b| (a, b)))
                .map(|(a, b)| format!("{} after {}", a.rsc, b.rsc))
                .collect();
            s.expect(
                serial.is_empty(),
                format!("{} start together, none waiting for another (waiting: {serial:?})", g.parallel.join(", ")),
            );
        }
        let now = sim.nodes_of(&g.members[0])?;
        s.lines.push(format!(
            "group {} now on {}",
            g.id,
            if now.is_empty() { "no node".into() } else { now.join(", ") }
        ));
        if !g.warm.is_empty() {
            warm_standbys(&mut s, sim.placement()?, t, g, &survivors, &now);
        }
    }
    Ok(s)
}

/// A group's warm standbys after a transition: promoted where the group now runs, after the
/// group's start when it started there, and not restarted on the nodes in `kept` (promotion or
/// demotion only: the point of a warm standby).
fn warm_standbys(
    s: &mut Section,
    placement: Vec<(String, String, String)>,
    t: &Transition,
    g: &GroupFacts,
    kept: &[&str],
    group_nodes: &[String],
) {
    for w in &g.warm {
        let promoted: Vec<&String> =
            placement.iter().filter(|(id, role, _)| id == w && role == "Promoted").map(|(_, _, n)| n).collect();
        s.expect(
            promoted.iter().copied().eq(group_nodes.iter()),
            format!("{w} is Promoted where group {} runs (Promoted on: {promoted:?})", g.id),
        );
        for node in group_nodes {
            let Some(promote) = t.find("promote", w, Some(node)) else { continue };
            let early: Vec<&String> = g
                .sequential
                .iter()
                .filter(|m| t.find("start", m, Some(node)).is_some_and(|start| !t.waits_for(promote.id, start.id)))
                .collect();
            s.expect(
                early.is_empty(),
                format!("{w} is promoted on {node} after group {} has started (before: {early:?})", g.id),
            );
        }
        let restarted: Vec<String> = t
            .resource_actions()
            .filter(|a| a.rsc == *w && matches!(a.operation.as_str(), "start" | "stop"))
            .filter(|a| a.node.as_deref().is_some_and(|n| kept.contains(&n)))
            .map(|a| format!("{} on {}", a.operation, a.node.as_deref().unwrap_or("?")))
            .collect();
        s.expect(
            restarted.is_empty(),
            format!("warm standby {w} is not restarted, only promoted or demoted (restarted: {restarted:?})"),
        );
    }
}

fn monitor_failures(loaded: &Loaded, facts: &Facts, g: &GroupFacts) -> Result<Section> {
    let mut s = Section::new(format!(
        "monitor of {} (group {}) fails, migration-threshold {}{}",
        g.last,
        g.id,
        g.threshold,
        if g.ordered.is_some() { ", on every node of its failover list" } else { "" }
    ));
    let mut sim = facts.sim(loaded)?;
    let mut visited: Vec<String> = Vec::new();
    loop {
        let Some(node) = sim.nodes_of(&g.last)?.into_iter().next() else {
            s.lines.push(format!("group {} is stopped: no node left to run it", g.id));
            break;
        };
        if visited.contains(&node) || visited.len() > facts.nodes.len() {
            s.expect(false, format!("group {} never returns to {node}, where it reached migration-threshold", g.id));
            break;
        }
        visited.push(node.clone());
        let everyone: Vec<&str> = facts.nodes.iter().map(String::as_str).collect();
        for failure in 1..=g.threshold {
            let inject = format!("{}_monitor_{}@{node}=1", g.last, g.last_monitor_ms);
            let step = sim.step(&["--op-inject".into(), inject])?;
            let t = &step.transition;
            s.transition(&format!("failure {failure} on {node}"), t);
            let churn = clone_churn(t, facts, &everyone);
            s.expect(churn.is_empty(), format!("HTTP/app clone instances untouched (touched: {churn:?})"));
            if !g.warm.is_empty() {
                let now = sim.nodes_of(&g.last)?;
                warm_standbys(&mut s, sim.placement()?, t, g, &everyone, &now);
            }
            if failure < g.threshold {
                let restarted = t.find("start", &g.last, Some(&node)).is_some();
                let elsewhere =
                    t.resource_actions().any(|a| a.operation == "start" && a.node.as_deref() != Some(&node));
                s.expect(restarted && !elsewhere, format!("{} restarted in place on {node}", g.last));
            }
        }
        let now = sim.nodes_of(&g.last)?;
        s.lines.push(format!(
            "after {} failures on {node}: group {} on {}",
            g.threshold,
            g.id,
            if now.is_empty() { "no node".into() } else { now.join(", ") }
        ));
        s.expect(!now.contains(&node), format!("group {} left {node} after migration-threshold failures", g.id));
        if g.ordered.is_none() {
            break;
        }
    }
    if let Some(ordered) = &g.ordered {
        s.expect(&visited == ordered, format!("group {} went through {ordered:?} in order (went: {visited:?})", g.id));
        match &facts.alert {
            Some(path) => match alert_agent_here(path) {
                Ok(()) => s.lines.push(format!("the operator is alerted through {path}")),
                Err(why) => s.warnings.push(format!(
                    "the operator is to be alerted through {path}, but it {why} on this host (see below)"
                )),
            },
            None => s.expect(false, "an alert tells the operator the group is stopped"),
        }
    }
    Ok(s)
}
