//! The store and the incident logic on reports made from crm_simulate runs of the hastack stack
//! (fixtures.rs): a restart in place, a failover of the data group, a power cut of a node with
//! fencing and the node's return, de-duplication of both nodes' reports, out-of-order arrival.
//! Every test runs on SQLite and on PostgreSQL.

use serde_json::Value;

use super::fixtures::{self, Scenario};
use super::*;
use hastack::console::derive::{Incident, IncidentKind, Outcome};

const DAY_US: i64 = 86_400_000_000;

/// The time of the first report after index `from` matching resource, task and node.
fn time_of(reports: &[Value], from: usize, rsc: &str, task: &str, node: &str) -> i64 {
    let r = reports[from..]
        .iter()
        .find(|r| {
            let a = &r["event"]["alert"];
            a["rsc"] == rsc && a["task"] == task && a["node"] == node
        })
        .unwrap_or_else(|| panic!("no {task} of {rsc} on {node} after report {from}"));
    time_us(r)
}

fn time_us(r: &Value) -> i64 {
    let t = &r["event"]["time"];
    t["epoch"].as_i64().unwrap() * 1_000_000 + t["usec"].as_i64().unwrap()
}

fn incidents(store: &Store, cluster: &str) -> Vec<Incident> {
    let c = store.cluster(cluster).unwrap().unwrap();
    let mut list = store.incidents(c.id, i64::MIN, 1000).unwrap();
    list.reverse();
    list
}

#[test]
fn a_monitor_failure_recovered_on_the_same_node_is_one_restart_with_its_mttr() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-restart", fixtures::now_us() - DAY_US);
    s.advance_ms(60_000);
    let failure = s.monitor_fails("db", 10000, "node1", 7, 1500);
    let detected = time_us(&s.reports[failure]);
    let recovered = time_of(&s.reports, failure, "db", "start", "node1");
    assert_eq!(recovered - detected, 3_000_000, "the fixture's recovery: stop, then start 1.5 s later");
    on_both_stores(|t| {
        register(&t.store, "store-restart");
        let stored = ingest(&t.store, "store-restart", &s.reports);
        assert!(stored.iter().all(|o| matches!(o, Stored::New { merged: false, .. })), "{}: {stored:?}", t.label);
        let list = incidents(&t.store, "store-restart");
        assert_eq!(list.len(), 1, "{}: {list:#?}", t.label);
        let i = &list[0];
        assert_eq!(
            (i.kind, i.rsc.as_deref(), i.node.as_str()),
            (IncidentKind::Resource, Some("db"), "node1"),
            "{}",
            t.label
        );
        assert_eq!(i.outcome, Some(Outcome::Restart), "{}", t.label);
        assert_eq!(i.recovered_on, vec!["node1"]);
        assert_eq!((i.detected_us, i.recovered_us), (detected, Some(recovered)));
        assert_eq!(i.mttr_ms(), Some(3000));
        // The failure, the stop and the start belong to it.
        let events = t.store.incident_events(i.id).unwrap();
        let tasks: Vec<_> = events.iter().map(|e| e.task.clone().unwrap_or_default()).collect();
        assert_eq!(tasks, vec!["monitor", "stop", "start"], "{}", t.label);
        let c = t.store.cluster("store-restart").unwrap().unwrap();
        assert_eq!((c.open_incidents, c.reports, c.events), (0, s.reports.len() as i64, s.reports.len() as i64));
        assert_eq!(c.recent_mttr, vec![(recovered, 3000)]);
    });
}

#[test]
fn a_failure_at_the_migration_threshold_is_a_failover_of_the_group() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-failover", fixtures::now_us() - DAY_US);
    s.advance_ms(60_000);
    // Two failures already counted on node1; the third reaches migration-threshold=3.
    s.set_fail_count("db#monitor_10000", "node1", 2);
    let failure = s.monitor_fails("db", 10000, "node1", 7, 1000);
    let detected = time_us(&s.reports[failure]);
    let recovered = time_of(&s.reports, failure, "db", "start", "node2");
    // The data group moved with the DRBD promotion: demote on node1, promote on node2.
    time_of(&s.reports, failure, "drbd", "promote", "node2");
    time_of(&s.reports, failure, "fs", "start", "node2");
    on_both_stores(|t| {
        register(&t.store, "store-failover");
        ingest(&t.store, "store-failover", &s.reports);
        let list = incidents(&t.store, "store-failover");
        assert_eq!(list.len(), 1, "{}: {list:#?}", t.label);
        let i = &list[0];
        assert_eq!(i.outcome, Some(Outcome::Failover), "{}", t.label);
        assert_eq!((i.node.as_str(), i.recovered_on.clone()), ("node1", vec!["node2".to_string()]));
        assert_eq!(i.mttr_ms(), Some((recovered - detected) / 1000));
        assert!(i.mttr_ms().unwrap() >= 4000, "the group stopped, moved and started: {:?}", i.mttr_ms());
        let c = t.store.cluster("store-failover").unwrap().unwrap();
        let snap = c.snapshot.expect("a snapshot summary");
        assert_eq!(snap.placement["db"], vec!["node2"], "{}", t.label);
        assert_eq!(snap.failed_actions, 1, "the monitor failure stays until cleanup");
    });
}

#[test]
fn a_power_cut_is_one_node_incident_with_fencing_and_the_return_is_one_event_from_both_nodes() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-power", fixtures::now_us() - DAY_US);
    s.advance_ms(60_000);
    let lost = s.node_lost("node1", 700);
    let detected = time_us(&s.reports[lost]);
    // The service is back when the last resource that ran only on node1 runs on node2.
    let recovered = ["vip1", "haproxy", "fs", "vip2", "broker", "db"]
        .iter()
        .map(|r| time_of(&s.reports, lost, r, "start", "node2"))
        .max()
        .unwrap();
    let fencing = s.reports.iter().filter(|r| r["event"]["kind"] == "fencing").count();
    assert_eq!(fencing, 1);
    s.advance_ms(120_000);
    let before_return = s.reports.len();
    s.node_returns("node1", 700);
    let members: Vec<&Value> =
        s.reports[before_return..].iter().filter(|r| r["event"]["category"] == "node_member").collect();
    assert_eq!(members.len(), 2, "both nodes report node1's return");
    on_both_stores(|t| {
        register(&t.store, "store-power");
        let stored = ingest(&t.store, "store-power", &s.reports);
        let merged = stored.iter().filter(|o| matches!(o, Stored::New { merged: true, .. })).count();
        assert_eq!(merged, 1, "{}: the second node's 'node1 is member' joins the first's event", t.label);
        let list = incidents(&t.store, "store-power");
        assert_eq!(list.len(), 1, "{}: {list:#?}", t.label);
        let i = &list[0];
        assert_eq!(
            (i.kind, i.node.as_str(), i.outcome),
            (IncidentKind::Node, "node1", Some(Outcome::Failover)),
            "{}",
            t.label
        );
        assert_eq!((i.fence_ok, i.fence_failed), (1, 0));
        let mut affected = i.affected.clone();
        affected.sort();
        assert_eq!(
            affected,
            vec!["broker", "db", "fs", "haproxy", "vip1", "vip2"],
            "clones and fence devices are not down"
        );
        assert_eq!(i.mttr_ms(), Some((recovered - detected) / 1000), "{}", t.label);
        let c = t.store.cluster("store-power").unwrap().unwrap();
        let member_event = c.last_event.as_ref().map(|e| e.id);
        let node_events: Vec<_> = t
            .store
            .events(c.id, None, 200)
            .unwrap()
            .events
            .into_iter()
            .filter(|e| e.kind == "node" && e.desc.as_deref() == Some("member"))
            .collect();
        assert_eq!(node_events.len(), 1, "{}", t.label);
        assert_eq!(node_events[0].reporters, vec!["node1", "node2"]);
        assert_eq!(node_events[0].report_count, 2);
        assert_eq!(t.store.event_reports(node_events[0].id).unwrap().len(), 2);
        assert!(member_event.is_some());
        assert_eq!(c.events, c.reports - 1);
        let stats = t.store.stats(&c, 30, fixtures::now_us()).unwrap();
        assert_eq!((stats.fencing_ok, stats.fencing_failed, stats.fence_success_rate), (1, 0, Some(1.0)));
    });
}

/// Fencing seen by both nodes (the target survived a failed attempt, then was fenced): one event
/// per fencing operation (same ref), results attached to the node's incident.
#[test]
fn fencing_reported_by_both_nodes_is_one_event_per_operation() {
    let start = fixtures::now_us() - DAY_US;
    let report = |reporter: &str, t: i64, seq: i64, reference: &str, ok: bool| {
        let status = if ok { "OK" } else { "Timed Out" };
        let alert = serde_json::json!({
            "node": "node1", "nodeid": null, "task": "st_notify_fence", "rc": if ok { 0 } else { -62 },
            "desc": format!("Operation reboot of node1 by node2 for pacemaker-controld.77@node2: {status} (ref={reference})"),
            "rsc": null, "interval": null, "target_rc": null, "status": null, "exec_time": null,
            "attribute_name": null, "attribute_value": null,
        });
        let fencing = serde_json::json!({
            "action": "reboot", "target": "node1", "executioner": "node2", "client": "pacemaker-controld.77",
            "origin": "node2", "status": status, "reason": null, "ref": reference, "succeeded": ok,
        });
        let (category, severity) = if ok { ("fencing_succeeded", "warning") } else { ("fencing_failed", "critical") };
        fixtures::make_report(
            "store-fence",
            reporter,
            t,
            seq,
            "fencing",
            category,
            severity,
            "fencing of node1",
            alert,
            fencing,
            None,
        )
    };
    let reports = vec![
        report("node2", start, 1, "aaaa-1", false),
        report("node1", start + 40_000, 1, "aaaa-1", false),
        report("node2", start + 30_000_000, 2, "aaaa-2", true),
    ];
    on_both_stores(|t| {
        register(&t.store, "store-fence");
        let stored = ingest(&t.store, "store-fence", &reports);
        assert!(matches!(stored[1], Stored::New { merged: true, .. }), "{}: {stored:?}", t.label);
        let list = incidents(&t.store, "store-fence");
        assert_eq!(list.len(), 1, "{}: {list:#?}", t.label);
        assert_eq!((list[0].fence_ok, list[0].fence_failed), (1, 1));
        assert_eq!(list[0].kind, IncidentKind::Node);
        let c = t.store.cluster("store-fence").unwrap().unwrap();
        assert_eq!(c.events, 2);
        let stats = t.store.stats(&c, 30, fixtures::now_us()).unwrap();
        assert_eq!(stats.fence_success_rate, Some(0.5), "{}", t.label);
    });
}

/// The three scenarios in one cluster's history, in the order they happened and shuffled:
/// the same incidents either way, and the statistics over them.
#[test]
fn reports_in_any_order_give_the_same_incidents_and_statistics() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-a", fixtures::now_us() - 3 * DAY_US);
    s.advance_ms(3_600_000);
    s.monitor_fails("db", 10000, "node1", 7, 1500);
    s.advance_ms(3_600_000);
    s.set_fail_count("db#monitor_10000", "node1", 2);
    s.monitor_fails("db", 10000, "node1", 7, 1000);
    s.advance_ms(3_600_000);
    // node1 (the entry group's) loses power; the data group already runs on node2.
    s.node_lost("node1", 700);
    s.advance_ms(600_000);
    s.node_returns("node1", 700);
    let in_order = s.reports.clone();
    // A deterministic shuffle: each node's spool flushed separately, newest batch first.
    let mut shuffled = in_order.clone();
    let mut x: u64 = 0x2545F4914F6CDD1D;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let as_b = |r: &Value| {
        let mut r = r.clone();
        r["cluster"]["id"] = "store-b".into();
        r["idempotency_key"] = fixtures::key_of(&r).into();
        r
    };
    let shuffled: Vec<Value> = shuffled.iter().map(as_b).collect();
    let brief = |list: Vec<Incident>| -> Vec<_> {
        list.into_iter()
            .map(|mut i| {
                i.affected.sort();
                (i.kind, i.node, i.detected_us, i.recovered_us, i.outcome, i.affected, i.fence_ok, i.recovered_on)
            })
            .collect()
    };
    on_both_stores(|t| {
        register(&t.store, "store-a");
        register(&t.store, "store-b");
        ingest(&t.store, "store-a", &in_order);
        ingest(&t.store, "store-b", &shuffled);
        let a = brief(incidents(&t.store, "store-a"));
        let b = brief(incidents(&t.store, "store-b"));
        assert_eq!(a.len(), 3, "{}: {a:#?}", t.label);
        assert_eq!(a, b, "{}: arrival order changed the incidents", t.label);
        let outcomes: Vec<_> = a.iter().map(|i| i.4).collect();
        assert_eq!(outcomes, vec![Some(Outcome::Restart), Some(Outcome::Failover), Some(Outcome::Failover)]);
        let now = fixtures::now_us();
        let ca = t.store.cluster("store-a").unwrap().unwrap();
        let cb = t.store.cluster("store-b").unwrap().unwrap();
        let (sa, sb) = (t.store.stats(&ca, 30, now).unwrap(), t.store.stats(&cb, 30, now).unwrap());
        assert_eq!(sa, sb, "{}", t.label);
        assert_eq!((ca.open_incidents, cb.open_incidents), (0, 0));
        assert_eq!(ca.recent_mttr, cb.recent_mttr);
        // Three recoveries: restart 3 s, and two failovers; median and p90 by nearest rank.
        let list = incidents(&t.store, "store-a");
        let mut mttrs: Vec<i64> = list.iter().filter_map(|i| i.mttr_ms()).collect();
        mttrs.sort();
        assert_eq!(sa.mttr_median_ms, Some(mttrs[1]));
        assert_eq!(sa.mttr_p90_ms, Some(mttrs[2]));
        assert_eq!((sa.failovers, sa.restarts, sa.incidents, sa.open_incidents), (2, 1, 3, 0));
        let observed = (now - ca.first_event_us.unwrap()) as f64 / DAY_US as f64;
        assert!((sa.failovers_per_30d.unwrap() - 2.0 * 30.0 / observed).abs() < 1e-6);
        assert_eq!(sa.fence_success_rate, Some(1.0));
        assert!(sa.since_last_incident_s.unwrap() > 0);
    });
}

#[test]
fn a_report_stored_twice_is_a_duplicate_and_changes_nothing() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-dup", fixtures::now_us() - DAY_US);
    s.monitor_fails("db", 10000, "node1", 7, 1500);
    on_both_stores(|t| {
        register(&t.store, "store-dup");
        ingest(&t.store, "store-dup", &s.reports);
        let before = t.store.cluster("store-dup").unwrap().unwrap();
        let again = ingest(&t.store, "store-dup", &s.reports);
        assert!(again.iter().all(|o| matches!(o, Stored::Duplicate { .. })), "{}: {again:?}", t.label);
        let after = t.store.cluster("store-dup").unwrap().unwrap();
        assert_eq!((after.reports, after.events), (before.reports, before.events));
        assert_eq!(incidents(&t.store, "store-dup").len(), 1);
    });
}
