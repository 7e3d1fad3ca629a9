//! crm_mon snapshots of real reports (crm_simulate runs of the hastack stack, fixtures.rs) read by
//! the console's parser: each attribute as a lookup by name reads it (quick_xml's
//! `try_get_attribute`, what the parser did before it split each element's attributes once), and
//! ingest's summary-only parse giving the full parse's summary.

use hastack::console::snapshot::SnapshotView;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::fixtures::{self, Scenario};

/// An attribute read on its own, unescaped (the parser's way before).
fn lookup(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn is_true(e: &BytesStart, name: &str) -> bool {
    lookup(e, name).is_some_and(|v| v == "true")
}

/// (name, state flags) of the `<nodes>` section's nodes and (id, agent, role, target role, flags,
/// nodes) of every primitive, read attribute by attribute.
type Nodes = Vec<(String, [bool; 8], Option<String>)>;
type Resources = Vec<(String, Option<String>, Option<String>, Option<String>, [bool; 6], Vec<String>)>;

fn by_lookup(xml: &str) -> (Nodes, Resources) {
    let (mut nodes, mut resources): (Nodes, Resources) = (Vec::new(), Vec::new());
    let (mut in_nodes, mut in_resources, mut open_resource) = (false, false, false);
    let mut reader = Reader::from_str(xml);
    loop {
        let (e, empty) = match reader.read_event().unwrap() {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.name().as_ref() {
                    b"nodes" => in_nodes = false,
                    b"resources" => in_resources = false,
                    b"resource" => open_resource = false,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        match e.name().as_ref() {
            b"nodes" if !empty => in_nodes = true,
            b"resources" if !empty => in_resources = true,
            b"node" if in_nodes => {
                let flags =
                    ["online", "standby", "standby_onfail", "maintenance", "pending", "unclean", "shutdown", "is_dc"]
                        .map(|f| is_true(&e, f));
                nodes.push((lookup(&e, "name").unwrap_or_default(), flags, lookup(&e, "type")));
            }
            b"node" if open_resource => {
                if let Some(n) = lookup(&e, "name") {
                    resources.last_mut().unwrap().5.push(n);
                }
            }
            b"resource" if in_resources => {
                let managed = lookup(&e, "managed").is_none_or(|m| m == "true");
                let flags = ["active", "orphaned", "blocked", "failed", "failure_ignored"].map(|f| is_true(&e, f));
                let flags = [flags[0], flags[1], flags[2], managed, flags[3], flags[4]];
                resources.push((
                    lookup(&e, "id").unwrap_or_default(),
                    lookup(&e, "resource_agent"),
                    lookup(&e, "role"),
                    lookup(&e, "target_role"),
                    flags,
                    Vec::new(),
                ));
                open_resource = !empty;
            }
            _ => {}
        }
    }
    (nodes, resources)
}

#[test]
fn real_snapshots_read_as_attribute_lookups_do_and_summarise_as_the_full_parse() {
    if !fixtures::available() {
        return;
    }
    // A restart in place, a failover at the migration threshold, a node lost with fencing and
    // its return: failed, blocked, stopped and moved resources, an unclean and an offline node.
    let mut s = Scenario::new("store-snapshots", fixtures::now_us() - 86_400_000_000);
    s.monitor_fails("db", 10000, "node1", 7, 1500);
    s.set_fail_count("db#monitor_10000", "node1", 2);
    s.monitor_fails("db", 10000, "node1", 7, 1000);
    s.advance_ms(60_000);
    s.node_lost("node1", 700);
    s.advance_ms(120_000);
    s.node_returns("node1", 700);
    let mut checked = 0;
    let mut states = std::collections::BTreeSet::new();
    for report in &s.reports {
        let Some(xml) = report["snapshot"]["xml"].as_str() else { continue };
        let view = SnapshotView::parse(xml).unwrap();
        let (nodes, resources) = by_lookup(xml);
        let read_nodes: Nodes = view
            .nodes
            .iter()
            .map(|n| {
                let flags =
                    [n.online, n.standby, n.standby_onfail, n.maintenance, n.pending, n.unclean, n.shutdown, n.is_dc];
                (n.name.clone(), flags, n.node_type.clone())
            })
            .collect();
        assert_eq!(read_nodes, nodes);
        let read_resources: Resources = view
            .resources
            .iter()
            .map(|r| {
                let flags = [r.active, r.orphaned, r.blocked, r.managed, r.failed, r.failure_ignored];
                (r.id.clone(), r.agent.clone(), r.role.clone(), r.target_role.clone(), flags, r.nodes.clone())
            })
            .collect();
        assert_eq!(read_resources, resources);
        let summary = SnapshotView::summarise(xml).unwrap();
        assert_eq!(summary, view.summary());
        states.extend(summary.nodes.iter().map(|(_, state)| state.clone()));
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} reports had a snapshot");
    // The run went through the states the summary tells apart.
    assert!(states.contains("online") && states.len() >= 2, "{states:?}");
}
