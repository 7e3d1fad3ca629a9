//! A validated stack → the Pacemaker objects that encode its behaviour (DESIGN.md §1):
//! - groups: members on one node, started in order and stopped in reverse (Pacemaker groups);
//! - a group `with_promoted` a promotable clone: colocated with its Promoted instance and ordered
//!   after the promotion (partition → mount → VIP2 → broker → database);
//! - a group's `warm_standby` layer: a promotable clone, unpromoted (a warm standby) on every node,
//!   its Promoted instance colocated with the group and promoted after the group's start;
//! - clones `after` a group: a mandatory order that is *not symmetrical*: the clone's instances never
//!   start before the group has started, while a later stop or move of the group implies nothing for
//!   them: they are not restarted by a data-layer move. (An Optional order would not do: it orders
//!   only actions in the same transition, and with a real DRBD agent the promotion, hence the data
//!   group's start, comes a transition after the clones' start; tests/config.rs shows both.)
//! - preferred / ordered failover nodes: location scores falling along the list, every unlisted node
//!   banned, so once the last listed node has failed the group stays stopped;
//! - fence devices: `pcmk_host_list` = the node they fence, banned from every node but the one with
//!   the serial cable; in a two-node cluster the device fencing the first node waits `fence_delay`,
//!   so in a split the first node shoots first and survives;
//! - migration-threshold and stickiness as resource defaults: a failed service is restarted in place
//!   and moved only after migration-threshold failures; no automatic failback.

use super::model::{Alert, Class, Clone, Cluster, Constraint, Group, Nv, Op, Primitive, Resource};
use super::stack::{self, param_text, Layer, Monitor, Stack};
use super::validate::duration_ms;

pub const DEFAULT_MONITOR_INTERVAL: &str = "10s";
pub const DEFAULT_MONITOR_INTERVAL_MS: u64 = 10_000;
pub const DEFAULT_MONITOR_TIMEOUT: &str = "20s";
pub const DEFAULT_PROMOTED_MONITOR_INTERVAL: &str = "9s";
pub const DEFAULT_OP_TIMEOUT: &str = "60s";
pub const DEFAULT_FENCE_MONITOR_INTERVAL: &str = "60s";
/// Score step between consecutive nodes of a preference list: below the default stickiness (100),
/// so a resource that moved does not move back by itself.
pub const PREFERENCE_STEP: usize = 10;

fn nv(k: &str, v: impl Into<String>) -> Nv {
    (k.to_string(), v.into())
}

/// The cluster a validated stack describes.
pub fn build(stack: &Stack) -> Cluster {
    let nodes: Vec<String> = stack.nodes.iter().map(|n| n.get_ref().name.get_ref().clone()).collect();
    let mut cluster = with_defaults(&stack.cluster);
    for fence in &stack.fences {
        add_fence(&mut cluster, fence.get_ref(), &nodes, &stack.cluster);
    }
    for group in &stack.groups {
        add_group(&mut cluster, group.get_ref(), &nodes);
    }
    for clone in &stack.clones {
        add_clone(&mut cluster, clone.get_ref(), &stack.groups);
    }
    if let Some(alert) = &stack.alert {
        cluster.alerts.push(alert_of(alert.get_ref()));
    }
    cluster
}

/// Fencing on, the stack's own cluster properties, and the resource defaults: restart in place
/// until migration-threshold failures, stickiness against failback.
fn with_defaults(c: &stack::Cluster) -> Cluster {
    let mut cluster = Cluster {
        properties: vec![nv("stonith-enabled", "true")],
        rsc_defaults: vec![
            nv("migration-threshold", c.migration_threshold.get_ref().to_string()),
            nv("resource-stickiness", c.resource_stickiness.get_ref().to_string()),
        ],
        ..Cluster::default()
    };
    if let Some(t) = &c.failure_timeout {
        cluster.rsc_defaults.push(nv("failure-timeout", t.get_ref()));
    }
    for (name, value) in c.properties.get_ref() {
        // Validation refused anything without a text.
        if let Some(text) = param_text(value.get_ref()) {
            cluster.properties.push(nv(name, text));
        }
    }
    cluster
}

/// A fence device: fences its node (`pcmk_host_list`), waits `fence_delay` when it fences the
/// first of two nodes, and runs only where its serial cable is.
fn add_fence(cluster: &mut Cluster, f: &stack::Fence, nodes: &[String], c: &stack::Cluster) {
    let id = f.id.get_ref().clone();
    let target = f.fences.get_ref().clone();
    // The current names (`ip`, not the deprecated `ipaddr`): pcs warns about the old ones.
    let mut params: Vec<Nv> =
        params_of(&f.params).into_iter().map(|(k, v)| (super::fence_check::rendered_name(&k).to_string(), v)).collect();
    params.push(nv("pcmk_host_list", &target));
    if let (Some(delay), true) = (&c.fence_delay, nodes.len() == 2 && nodes.first() == Some(&target)) {
        params.push(nv("pcmk_delay_base", delay.get_ref()));
    }
    let monitor = f.monitor.as_ref().map(|m| m.get_ref().clone());
    let ops = vec![match monitor {
        Some(m) => monitor_op(&m, None),
        None => op("monitor", DEFAULT_FENCE_MONITOR_INTERVAL, DEFAULT_MONITOR_TIMEOUT, None),
    }];
    let agent = f.agent.get_ref().clone();
    cluster.resources.push(Resource::Primitive(Primitive {
        id: id.clone(),
        class: Class::Stonith,
        agent,
        params,
        meta: vec![],
        ops,
    }));
    let cable = f.cable.as_ref().map(|c| c.get_ref().as_str());
    for node in nodes.iter().filter(|n| Some(n.as_str()) != cable) {
        cluster.constraints.push(ban(&id, node));
    }
}

/// `-INFINITY` for `rsc` on `node`.
fn ban(rsc: &str, node: &str) -> Constraint {
    Constraint::Location {
        id: format!("loc-{rsc}-not-{node}"),
        rsc: rsc.to_string(),
        node: node.to_string(),
        score: "-INFINITY".into(),
    }
}

/// A group: its members in order, its preferred and failover nodes (every other node banned
/// when a failover list is given), and its tie to a promoted clone.
fn add_group(cluster: &mut Cluster, g: &stack::Group, nodes: &[String]) {
    let id = g.id.get_ref().clone();
    let (sequential, parallel) = g.layers.split_at(g.sequential_len());
    let members = sequential.iter().map(|l| primitive(l.get_ref(), false)).collect();
    cluster.resources.push(Resource::Group(Group { id: id.clone(), members }));
    for layer in parallel.iter().map(|l| l.get_ref()) {
        if layer.is_warm_standby() {
            add_warm_standby(cluster, &id, primitive(layer, true));
        } else {
            add_parallel(cluster, &id, primitive(layer, false));
        }
    }
    let mut ranked: Vec<String> = g.prefer.iter().map(|p| p.get_ref().clone()).collect();
    if let Some(failover) = &g.failover {
        ranked.extend(failover.get_ref().iter().map(|n| n.get_ref().clone()));
    }
    let score = |i: usize| (PREFERENCE_STEP * (ranked.len() - i)).to_string();
    // The group's own preference; for a group on a promoted clone it also steers the
    // promotion (colocated resources' preferences count), and the group's stickiness keeps
    // the promotion where it is when the other node comes back: no failback.
    for (i, node) in ranked.iter().enumerate() {
        cluster.constraints.push(Constraint::Location {
            id: format!("loc-{id}-{node}"),
            rsc: id.clone(),
            node: node.clone(),
            score: score(i),
        });
    }
    if let Some(promotable) = &g.with_promoted {
        cluster.constraints.extend(with_promoted(&id, promotable.get_ref()));
    }
    if g.failover.is_some() {
        for node in nodes.iter().filter(|n| !ranked.contains(n)) {
            cluster.constraints.push(ban(&id, node));
        }
    }
}

/// A `parallel` layer of a group: a primitive of its own where the group runs (colocation
/// `INFINITY`), started after the group and stopped before it (symmetrical order). Its siblings
/// have no order between them, so Pacemaker starts them in the same transition, together.
fn add_parallel(cluster: &mut Cluster, group: &str, p: Primitive) {
    let rsc = p.id.clone();
    cluster.resources.push(Resource::Primitive(p));
    follow_group(cluster, group, &rsc, None);
}

/// The clone id of a `warm_standby` layer.
pub fn warm_standby_clone(layer: &str) -> String {
    format!("{layer}-clone")
}

/// A `warm_standby` layer of a group: a promotable clone whose instances all run unpromoted (the
/// warm standbys, on every node, with no constraint), and whose Promoted instance runs where the
/// group runs, promoted after the group's start and demoted before it stops (symmetrical order).
fn add_warm_standby(cluster: &mut Cluster, group: &str, child: Primitive) {
    let id = warm_standby_clone(&child.id);
    cluster.resources.push(Resource::Clone(Clone {
        id: id.clone(),
        promotable: true,
        meta: warm_standby_meta(),
        child,
    }));
    follow_group(cluster, group, &id, Some("Promoted"));
}

/// `rsc` (in `role`, if given) where `group` runs, and after it: colocated `INFINITY`, its start
/// (a Promoted role's promotion) ordered after the group's start, symmetrically, so it stops
/// (is demoted) before the group stops.
fn follow_group(cluster: &mut Cluster, group: &str, rsc: &str, role: Option<&str>) {
    let (col_id, then_action) = match role {
        None => (format!("col-{rsc}-with-{group}"), "start"),
        Some(_) => (format!("col-{rsc}-promoted-with-{group}"), "promote"),
    };
    cluster.constraints.push(Constraint::Colocation {
        id: col_id,
        rsc: rsc.to_string(),
        rsc_role: role.map(Into::into),
        with_rsc: group.to_string(),
        with_role: None,
        score: "INFINITY".into(),
    });
    cluster.constraints.push(Constraint::Order {
        id: format!("ord-{group}-then-{rsc}"),
        first: group.to_string(),
        first_action: "start".into(),
        then: rsc.to_string(),
        then_action: then_action.into(),
        symmetrical: true,
    });
}

/// The actions that mean "the group has started": the group's start, its `parallel` layers'
/// starts (they run outside it), and the promotion of its `warm_standby` layers' clones.
fn started_with(group: &str, groups: &[toml::Spanned<stack::Group>]) -> Vec<(String, &'static str)> {
    let mut actions = vec![(group.to_string(), "start")];
    if let Some(g) = groups.iter().map(|g| g.get_ref()).find(|g| g.id.get_ref() == group) {
        actions.extend(g.layers[g.sequential_len()..].iter().map(|l| {
            let l = l.get_ref();
            let id = l.id.get_ref();
            let rsc = if l.is_warm_standby() { warm_standby_clone(id) } else { id.clone() };
            (rsc, l.serving_action())
        }));
    }
    actions
}

/// A group on the Promoted instance of a clone, started after the promotion.
fn with_promoted(group: &str, clone_id: &str) -> [Constraint; 2] {
    [
        Constraint::Colocation {
            id: format!("col-{group}-with-{clone_id}"),
            rsc: group.to_string(),
            rsc_role: None,
            with_rsc: clone_id.to_string(),
            with_role: Some("Promoted".into()),
            score: "INFINITY".into(),
        },
        Constraint::Order {
            id: format!("ord-{clone_id}-then-{group}"),
            first: clone_id.to_string(),
            first_action: "promote".into(),
            then: group.to_string(),
            then_action: "start".into(),
            symmetrical: true,
        },
    ]
}

/// A clone, and its asymmetrical order after the groups it follows.
fn add_clone(cluster: &mut Cluster, c: &stack::Clone, groups: &[toml::Spanned<stack::Group>]) {
    let id = c.id.get_ref().clone();
    let firsts: Vec<(String, &str)> = c.after.iter().flat_map(|after| started_with(after.get_ref(), groups)).collect();
    let mut meta = clone_meta(c.promotable);
    // After a warm standby's promotion: an interleaved clone would wait on each node for the
    // promotion of that node's instance, which happens on one node only (the others would never
    // start). Not interleaved, every instance waits for the one promotion.
    if firsts.iter().any(|(_, action)| *action == "promote") {
        meta.retain(|(k, _)| k != "interleave");
        meta.insert(0, nv("interleave", "false"));
    }
    let child = primitive(c.layer.get_ref(), c.promotable);
    cluster.resources.push(Resource::Clone(Clone { id: id.clone(), promotable: c.promotable, meta, child }));
    for (first, action) in firsts {
        cluster.constraints.push(Constraint::Order {
            id: format!("ord-{first}-then-{id}"),
            first,
            first_action: action.into(),
            then: id.clone(),
            then_action: "start".into(),
            symmetrical: false,
        });
    }
}

fn alert_of(a: &stack::Alert) -> Alert {
    let id = a.id.get_ref().clone();
    let values: Vec<&String> = a.recipient.iter().chain(a.recipients.iter().flatten()).map(|r| r.get_ref()).collect();
    let recipients = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let rid = if i == 0 { format!("{id}-recipient") } else { format!("{id}-recipient-{}", i + 1) };
            nv(&rid, v.as_str())
        })
        .collect();
    let path = a.path.as_ref().map(|p| p.get_ref().clone()).unwrap_or_else(|| super::model::HASTACK_ALERT.into());
    Alert {
        id,
        path,
        params: a.options.as_ref().map(params_of).unwrap_or_default(),
        meta: vec![("timeout".into(), super::model::ALERT_TIMEOUT.into())],
        select: vec!["nodes", "fencing", "resources"],
        recipients,
    }
}

/// A clone's meta attributes.
pub fn clone_meta(promotable: bool) -> Vec<Nv> {
    let mut meta = vec![nv("interleave", "true")];
    if promotable {
        meta.extend([
            nv("promotable", "true"),
            nv("promoted-max", "1"),
            nv("promoted-node-max", "1"),
            nv("clone-node-max", "1"),
            nv("notify", "true"),
        ]);
    }
    meta
}

/// A warm standby's clone meta attributes: a promotable clone's without `notify`. No such agent
/// acts on notifications, and each pre/post pair is one more executor round trip between the
/// group's start and the promotion, on the failover's critical path (6 notify operations in the
/// lab's failover transition, seen in its pacemaker.log).
pub fn warm_standby_meta() -> Vec<Nv> {
    clone_meta(true).into_iter().filter(|(k, _)| k != "notify").collect()
}

fn params_of(params: &super::stack::Params) -> Vec<Nv> {
    params.get_ref().iter().filter_map(|(k, v)| param_text(v.get_ref()).map(|t| (k.clone(), t))).collect()
}

fn op(name: &str, interval: &str, timeout: &str, role: Option<&str>) -> Op {
    Op { name: name.into(), interval: interval.into(), timeout: timeout.into(), role: role.map(Into::into) }
}

fn monitor_op(m: &Monitor, role: Option<&str>) -> Op {
    op("monitor", m.interval.get_ref(), m.timeout.get_ref(), role)
}

/// The timeout of an operation a layer does not set: what its agent advises (as pcs takes it),
/// else the format's default.
fn advised(layer: &Layer, op: &str, role: Option<&str>, fallback: &str) -> String {
    super::layer_check::agent(layer.agent.get_ref())
        .and_then(|a| super::layer_check::advised_timeout(a, op, role))
        .unwrap_or(fallback)
        .to_string()
}

fn primitive(layer: &Layer, promotable: bool) -> Primitive {
    let timeout = |name: &str| {
        layer.timeouts.get(name).map_or_else(|| advised(layer, name, None, DEFAULT_OP_TIMEOUT), |t| t.get_ref().clone())
    };
    let mut ops = Vec::new();
    let mut lifecycle = vec!["start", "stop"];
    if promotable {
        lifecycle.extend(["promote", "demote"]);
    }
    if layer.timeouts.contains_key("notify") {
        lifecycle.push("notify");
    }
    let migrating = layer.allow_migrate.as_ref().is_some_and(|m| *m.get_ref());
    if migrating {
        lifecycle.extend(["migrate_to", "migrate_from"]);
    }
    for name in lifecycle {
        ops.push(op(name, "0s", &timeout(name), None));
    }
    ops.push(match &layer.monitor {
        Some(m) => monitor_op(m.get_ref(), None),
        None => {
            op("monitor", DEFAULT_MONITOR_INTERVAL, &advised(layer, "monitor", None, DEFAULT_MONITOR_TIMEOUT), None)
        }
    });
    if promotable {
        ops.push(match &layer.promoted_monitor {
            Some(m) => monitor_op(m.get_ref(), Some("Promoted")),
            None => {
                let timeout = advised(layer, "monitor", Some("Promoted"), DEFAULT_MONITOR_TIMEOUT);
                op("monitor", DEFAULT_PROMOTED_MONITOR_INTERVAL, &timeout, Some("Promoted"))
            }
        });
    }
    let mut meta: Vec<Nv> =
        layer.migration_threshold.iter().map(|t| nv("migration-threshold", t.get_ref().to_string())).collect();
    if migrating {
        meta.push(nv("allow-migrate", "true"));
    }
    Primitive {
        id: layer.id.get_ref().clone(),
        class: Class::Ocf(super::model::OCF_PROVIDER),
        agent: layer.agent.get_ref().clone(),
        params: params_of(&layer.params),
        meta,
        ops,
    }
}

/// The interval of a monitor in milliseconds, as the operation key names it (`db_monitor_10000`).
pub fn interval_ms(op: &Op) -> u64 {
    duration_ms(&op.interval).unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::model::{Constraint, Resource};
    use super::super::{parse, Format};

    /// Two nodes, a data group whose broker is a warm standby, an app clone after the group.
    pub const WARM: &str = r#"
[cluster]
name = "c"

[[node]]
name = "n1"
links = ["10.0.0.1", "10.1.0.1"]

[[node]]
name = "n2"
links = ["10.0.0.2", "10.1.0.2"]

[[fence]]
id = "fence-n1"
fences = "n1"
cable = "n2"
params = { serial_port = "/dev/ttyS0" }

[[fence]]
id = "fence-n2"
fences = "n2"
cable = "n1"
params = { serial_port = "/dev/ttyS0" }

[[group]]
id = "data"
prefer = "n1"
parallel = ["broker", "db"]

  [[group.layer]]
  id = "fs"
  agent = "filesystem"
  params = { device = "/dev/sdb1", directory = "/srv/data", fstype = "ext4" }

  [[group.layer]]
  id = "broker"
  agent = "activemq"
  warm_standby = true
  params = { config = "/srv/conf/activemq/activemq.xml", data_dir = "/srv/data/activemq" }

  [[group.layer]]
  id = "db"
  agent = "postgresql"
  params = { pgdata = "/srv/data/postgresql" }

[[clone]]
id = "app-clone"
after = ["data"]

  [clone.layer]
  id = "tomcat"
  agent = "tomcat"
"#;

    #[test]
    fn a_warm_standby_is_a_promotable_clone_promoted_after_its_group() {
        let loaded = parse("warm.toml", WARM).unwrap_or_else(|e| panic!("{e}"));
        let c = &loaded.cluster;
        assert!(!c.resources.iter().any(|r| r.id() == "broker"), "no primitive broker of its own");
        let Some(Resource::Clone(clone)) = c.resources.iter().find(|r| r.id() == "broker-clone") else {
            panic!("no broker-clone: {:?}", c.resources)
        };
        assert!(clone.promotable);
        assert_eq!(clone.meta, super::warm_standby_meta());
        assert!(clone.meta.contains(&("promoted-max".into(), "1".into())));
        assert!(!clone.meta.iter().any(|(k, _)| k == "notify"), "no notifications on the failover's path");
        assert_eq!(clone.child.id, "broker");
        let ops: Vec<(&str, &str, &str, Option<&str>)> = clone
            .child
            .ops
            .iter()
            .map(|o| (o.name.as_str(), o.interval.as_str(), o.timeout.as_str(), o.role.as_deref()))
            .collect();
        assert!(ops.contains(&("promote", "0s", "120s", None)), "{ops:?}");
        assert!(ops.contains(&("demote", "0s", "60s", None)), "{ops:?}");
        // activemq's meta-data advises no Promoted monitor: the monitor's advice (30s) stands.
        assert!(ops.contains(&("monitor", "9s", "30s", Some("Promoted"))), "{ops:?}");
        let Some(Resource::Group(group)) = c.resources.iter().find(|r| r.id() == "data") else { panic!() };
        assert_eq!(group.members.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["fs"]);

        let broker: Vec<&Constraint> =
            c.constraints.iter().filter(|k| format!("{k:?}").contains("\"broker-clone\"")).collect();
        assert!(
            matches!(broker[0], Constraint::Colocation { rsc, rsc_role: Some(r), with_rsc, with_role: None, score, .. }
            if rsc == "broker-clone" && r == "Promoted" && with_rsc == "data" && score == "INFINITY"),
            "{broker:?}"
        );
        assert!(
            matches!(broker[1], Constraint::Order { first, first_action, then, then_action, symmetrical: true, .. }
            if first == "data" && first_action == "start" && then == "broker-clone" && then_action == "promote"),
            "{broker:?}"
        );
        // The app servers wait for the promotion, not for a start of the broker.
        assert!(
            matches!(broker[2], Constraint::Order { first, first_action, then, then_action, symmetrical: false, .. }
            if first == "broker-clone" && first_action == "promote" && then == "app-clone" && then_action == "start"),
            "{broker:?}"
        );
        assert_eq!(broker.len(), 3, "the unpromoted instances have no constraint: {broker:?}");
        let Some(Resource::Clone(app)) = c.resources.iter().find(|r| r.id() == "app-clone") else { panic!() };
        assert!(app.meta.contains(&("interleave".into(), "false".into())), "{:?}", app.meta);
        assert!(!app.meta.contains(&("interleave".into(), "true".into())), "{:?}", app.meta);

        let cib = loaded.render(Format::Cib);
        assert!(cib.contains(r#"<rsc_colocation id="col-broker-clone-promoted-with-data" rsc="broker-clone" rsc-role="Promoted" with-rsc="data" score="INFINITY" with-rsc-role="Started"/>"#), "{cib}");
        assert!(cib.contains(r#"<rsc_order id="ord-data-then-broker-clone" first="data" first-action="start" then="broker-clone" then-action="promote" kind="Mandatory"/>"#), "{cib}");
        let pcs = loaded.render(Format::Pcs);
        assert!(pcs.contains("run constraint colocation add Promoted broker-clone with data INFINITY id=col-broker-clone-promoted-with-data\n"), "{pcs}");
        assert!(pcs.contains(" promotable broker-clone interleave=true promoted-max=1"), "{pcs}");
        let crm = loaded.render(Format::Crm);
        assert!(
            crm.contains("colocation col-broker-clone-promoted-with-data inf: broker-clone:Promoted data:Started\n"),
            "{crm}"
        );
        assert!(crm.contains("order ord-data-then-broker-clone Mandatory: data:start broker-clone:promote\n"), "{crm}");
    }

    #[test]
    fn cluster_properties_follow_stonith_enabled_in_every_format() {
        let src = WARM.replacen(
            "name = \"c\"\n",
            "name = \"c\"\nproperties = { node-action-limit = 8, maintenance-mode = false }\n",
            1,
        );
        let loaded = parse("props.toml", &src).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<(&str, &str)> =
            loaded.cluster.properties.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(names, [("stonith-enabled", "true"), ("maintenance-mode", "false"), ("node-action-limit", "8")]);
        let cib = loaded.render(Format::Cib);
        assert!(cib.contains(r#"name="node-action-limit" value="8"/>"#), "{cib}");
        assert!(loaded.render(Format::Pcs).contains(" node-action-limit=8"), "{}", loaded.render(Format::Pcs));
        assert!(loaded.render(Format::Crm).contains(" node-action-limit=8"), "{}", loaded.render(Format::Crm));
    }

    #[test]
    fn without_warm_standby_the_layer_stays_a_parallel_primitive() {
        let loaded = parse("p.toml", &WARM.replace("  warm_standby = true\n", "")).unwrap_or_else(|e| panic!("{e}"));
        let c = &loaded.cluster;
        assert!(matches!(c.resources.iter().find(|r| r.id() == "broker"), Some(Resource::Primitive(_))));
        assert!(!c.resources.iter().any(|r| r.id() == "broker-clone"));
        let Some(Resource::Clone(app)) = c.resources.iter().find(|r| r.id() == "app-clone") else { panic!() };
        assert_eq!(app.meta, super::clone_meta(false), "interleaved as before");
    }
}
