//! Conclusions drawn from the snapshot. Today one: a group that has no node left, the end of an
//! ordered failover list (crm-config/stack-3node.toml: "once the last listed node has failed too,
//! it stays stopped"). Pacemaker never says so itself; the agent recognises it from what the
//! scheduler used to decide: every node is banned (-INFINITY location constraint, which is how a
//! failover list excludes the nodes not listed), offline, in standby or maintenance, or has a
//! member whose fail-count reached its migration-threshold.

use serde::Serialize;

use super::snapshot::{Facts, Unit};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Blocked {
    pub node: String,
    pub reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_threshold: Option<i64>,
}

/// `event.findings[]` of type `group_has_no_node_left`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NoNodeLeft {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub group: String,
    pub resources: Vec<String>,
    pub nodes: Vec<Blocked>,
}

impl NoNodeLeft {
    /// The operator's line: which group, and why each node is out.
    pub fn sentence(&self) -> String {
        let what =
            if self.resources.len() > 1 || self.resources.first() != Some(&self.group) { "group" } else { "resource" };
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|b| match (b.reason, &b.resource) {
                ("failed", Some(r)) => format!(
                    "{} failed ({r} {} of {} failures)",
                    b.node,
                    b.fail_count.map(show_score).unwrap_or_default(),
                    b.migration_threshold.map(show_score).unwrap_or_default()
                ),
                (reason, _) => format!("{} {reason}", b.node),
            })
            .collect();
        format!(
            "{what} {} has no node left and stays stopped: {}; fix the cause, then `crm_resource --cleanup --resource {}`",
            self.group,
            nodes.join(", "),
            self.group
        )
    }
}

fn show_score(v: i64) -> String {
    if v >= 1_000_000 {
        "INFINITY".into()
    } else {
        v.to_string()
    }
}

/// Whether `unit` can run nowhere. `gone` are nodes this event reports lost or fenced (the
/// snapshot may not show that yet).
pub fn no_node_left(facts: &Facts, unit: &Unit, gone: &[&str]) -> Option<NoNodeLeft> {
    // An asymmetric cluster's allowed nodes come from positive constraints crm_mon does not show.
    if !facts.symmetric || facts.nodes.is_empty() || unit.disabled || !unit.managed || unit.fencing {
        return None;
    }
    let mut blocked = Vec::new();
    for node in &facts.nodes {
        let name = node.name.as_str();
        let simple = |reason| Blocked {
            node: name.to_string(),
            reason,
            resource: None,
            fail_count: None,
            migration_threshold: None,
        };
        let b = if gone.contains(&name) {
            simple("lost")
        } else if !node.online {
            simple("offline")
        } else if node.standby {
            simple("standby")
        } else if node.maintenance {
            simple("maintenance")
        } else if facts.bans.iter().any(|(r, n)| n == name && (r == &unit.id || unit.members.contains(r))) {
            simple("banned")
        } else if let Some((rsc, h)) = unit.members.iter().find_map(|m| {
            facts
                .history
                .get(&(name.to_string(), m.clone()))
                .filter(|h| h.fail_count > 0 && h.fail_count >= h.threshold)
                .map(|h| (m, h))
        }) {
            Blocked {
                node: name.to_string(),
                reason: "failed",
                resource: Some(rsc.clone()),
                fail_count: Some(h.fail_count),
                migration_threshold: Some(h.threshold),
            }
        } else {
            return None; // this node can take the group
        };
        blocked.push(b);
    }
    Some(NoNodeLeft {
        kind: "group_has_no_node_left",
        group: unit.id.clone(),
        resources: unit.members.clone(),
        nodes: blocked,
    })
}

/// Every unit with no node left (node-lost and fencing events).
pub fn all_without_node(facts: &Facts, gone: &[&str]) -> Vec<NoNodeLeft> {
    facts.units.iter().filter_map(|u| no_node_left(facts, u, gone)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::snapshot::{History, Node};

    fn facts() -> Facts {
        let node = |n: &str| Node { name: n.into(), online: true, standby: false, maintenance: false };
        Facts {
            symmetric: true,
            nodes: vec![node("alpha"), node("beta"), node("gamma")],
            units: vec![Unit {
                id: "billing".into(),
                members: vec!["billing-ip".into(), "billing-db".into()],
                is_group: true,
                disabled: false,
                managed: true,
                fencing: false,
            }],
            bans: vec![("billing".into(), "alpha".into())],
            history: Default::default(),
        }
    }

    fn fail(f: &mut Facts, node: &str, count: i64) {
        f.history.insert((node.into(), "billing-db".into()), History { fail_count: count, threshold: 2 });
    }

    #[test]
    fn exhausted_only_when_every_node_is_out() {
        let mut f = facts();
        let unit = f.units[0].clone();
        fail(&mut f, "beta", 2);
        assert_eq!(no_node_left(&f, &unit, &[]), None, "gamma is left");
        fail(&mut f, "gamma", 1);
        assert_eq!(no_node_left(&f, &unit, &[]), None, "one failure on gamma: restarted in place");
        fail(&mut f, "gamma", 2);
        let found = no_node_left(&f, &unit, &[]).expect("no node left");
        let reasons: Vec<_> = found.nodes.iter().map(|b| (b.node.as_str(), b.reason)).collect();
        assert_eq!(reasons, vec![("alpha", "banned"), ("beta", "failed"), ("gamma", "failed")]);
        assert_eq!(
            found.sentence(),
            "group billing has no node left and stays stopped: alpha banned, beta failed (billing-db 2 of 2 failures), \
             gamma failed (billing-db 2 of 2 failures); fix the cause, then `crm_resource --cleanup --resource billing`"
        );
    }

    #[test]
    fn lost_offline_and_disabled() {
        let mut f = facts();
        fail(&mut f, "beta", 2);
        f.nodes[1].online = false;
        let unit = f.units[0].clone();
        let found = no_node_left(&f, &unit, &["gamma"]).unwrap();
        assert_eq!(found.nodes[2].reason, "lost");
        let mut disabled = unit.clone();
        disabled.disabled = true;
        assert_eq!(no_node_left(&f, &disabled, &["gamma"]), None, "stopped on purpose");
        f.symmetric = false;
        assert_eq!(no_node_left(&f, &unit, &["gamma"]), None, "asymmetric clusters are not analysed");
        assert_eq!(all_without_node(&facts(), &[]), vec![]);
    }
}
