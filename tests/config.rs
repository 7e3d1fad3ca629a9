//! `hastack config`: the rendered cluster configuration checked by Pacemaker's own tools.
//! crm_verify and crm_simulate never run agents, so these tests need no agent installed; pcs and
//! crmsh apply their scripts offline to an empty CIB file (`pcs -f`, `CIB_file=`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hastack::config::check::{clone_churn, Facts};
use hastack::config::graph::Transition;
use hastack::config::simulate::{verify, Sim};
use hastack::config::{self, Format, Loaded};

use crate::support::{hastack_cmd, need_program, run_cmd, run_with_deadline};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crm-config").join(name)
}

fn two_node() -> Loaded {
    config::load(&example("stack.toml")).expect("the shipped two-node stack is valid")
}

fn three_node() -> Loaded {
    config::load(&example("stack-3node.toml")).expect("the shipped three-node stack is valid")
}

/// The two-node stack with the data group's broker and database started together once the
/// partition and VIP2 are up (`parallel`, as lab.toml has it). The Written keeps the file.
fn parallel_two_node() -> (Written, Loaded) {
    let written = Written::example("stack.toml", &[(PARALLEL_AT, PARALLEL)]);
    let loaded = config::load(&written.stack).expect("the stack with parallel layers is valid");
    (written, loaded)
}

const PARALLEL_AT: &str = "with_promoted = \"drbd-clone\"\n";
const PARALLEL: &str = "with_promoted = \"drbd-clone\"\nparallel = [\"broker\", \"db\"]\n";

fn need_pacemaker_tools() -> bool {
    need_program("crm_simulate", "pacemaker-cli-utils") && need_program("crm_verify", "pacemaker-cli-utils")
}

/// The two-node stack running as designed: everything on node1, DRBD Promoted there.
fn running_two_node(loaded: &Loaded) -> (Sim, Facts) {
    let facts = Facts::of(loaded);
    let sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
    for rsc in ["vip1", "haproxy", "fs", "vip2", "broker", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node1"], "{rsc} starts on the primary");
    }
    let drbd: Vec<_> = sim.placement().unwrap().into_iter().filter(|(id, _, _)| id.starts_with("drbd")).collect();
    assert!(
        drbd.iter().any(|(_, role, node)| role == "Promoted" && node == "node1"),
        "DRBD Primary on node1: {drbd:?}"
    );
    for rsc in ["web", "tomcat"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node1", "node2"], "{rsc} runs on both nodes");
    }
    (sim, facts)
}

#[track_caller]
fn action_id(t: &Transition, op: &str, rsc: &str, node: &str) -> u32 {
    t.find(op, rsc, Some(node)).unwrap_or_else(|| panic!("no '{op} {rsc} on {node}' in {:?}", t.summary())).id
}

#[track_caller]
fn assert_chain(t: &Transition, chain: &[(&str, &str, &str)]) {
    for pair in chain.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let (first, then) = (action_id(t, a.0, a.1, a.2), action_id(t, b.0, b.1, b.2));
        assert!(t.waits_for(then, first), "{b:?} does not wait for {a:?}: {:?}", t.summary());
    }
}

#[test]
fn config_rendered_cibs_pass_crm_verify() {
    if !need_pacemaker_tools() {
        return;
    }
    let (_parallel, parallel) = parallel_two_node();
    let lab = config::load(&example("lab.toml")).expect("the lab's stack is valid");
    let (_warm, warm) = warm_two_node();
    for loaded in [two_node(), three_node(), parallel, lab, warm] {
        let sim = Sim::new(&loaded.render(Format::Cib)).unwrap();
        let verdict = verify(sim.state()).unwrap();
        assert!(verdict.ok, "crm_verify refused the CIB:\n{}", verdict.messages);
    }
}

#[test]
fn config_primary_lost_fences_it_first_then_starts_the_stack_on_the_secondary() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = two_node();
    let (mut sim, facts) = running_two_node(&loaded);
    let t = sim.step(&["--node-fail".into(), "node1".into()]).unwrap().transition;

    assert_eq!(t.fenced_nodes(), vec!["node1"], "only the lost primary is fenced");
    let fence = t.fencing("node1").unwrap().id;
    for (op, rsc) in [
        ("start", "vip1"),
        ("start", "haproxy"),
        ("promote", "drbd"),
        ("start", "fs"),
        ("start", "vip2"),
        ("start", "broker"),
        ("start", "db"),
    ] {
        let id = action_id(&t, op, rsc, "node2");
        assert!(t.waits_for(id, fence), "{op} {rsc} on node2 does not wait for the fencing of node1");
    }
    assert_chain(&t, &[("start", "vip1", "node2"), ("start", "haproxy", "node2")]);
    assert_chain(
        &t,
        &[
            ("promote", "drbd", "node2"),
            ("start", "fs", "node2"),
            ("start", "vip2", "node2"),
            ("start", "broker", "node2"),
            ("start", "db", "node2"),
        ],
    );
    assert_eq!(clone_churn(&t, &facts, &["node2"]), Vec::<String>::new(), "HTTP/app instances on node2 were touched");
    for rsc in ["web", "tomcat"] {
        assert!(t.find("start", rsc, None).is_none() && t.find("stop", rsc, None).is_none(), "{rsc} restarted");
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node2"], "{rsc} keeps running on node2");
    }
    for rsc in ["vip1", "haproxy", "fs", "vip2", "broker", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node2"], "{rsc} runs on the secondary after the failover");
    }
}

#[test]
fn config_database_failure_restarts_in_place_then_moves_the_data_group_only() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = two_node();
    assert_eq!(*loaded.stack.cluster.migration_threshold.get_ref(), 3, "the scenario below assumes 3");
    let (mut sim, facts) = running_two_node(&loaded);
    let everyone = ["node1", "node2"];
    let inject = vec!["--op-inject".to_string(), "db_monitor_10000@node1=1".to_string()];
    for failure in 1..=2 {
        let t = sim.step(&inject).unwrap().transition;
        assert_chain(&t, &[("stop", "db", "node1"), ("start", "db", "node1")]);
        let others: Vec<String> =
            t.resource_actions().filter(|a| a.rsc != "db").map(|a| format!("{} {}", a.operation, a.rsc)).collect();
        assert!(others.is_empty(), "failure {failure}: more than db restarted: {others:?}");
        assert_eq!(sim.nodes_of("db").unwrap(), vec!["node1"], "failure {failure}: db restarted in place");
    }
    let t = sim.step(&inject).unwrap().transition;
    // The whole data group moves, stopped in reverse and started in order after the promotion.
    assert_chain(
        &t,
        &[
            ("stop", "db", "node1"),
            ("stop", "broker", "node1"),
            ("stop", "vip2", "node1"),
            ("stop", "fs", "node1"),
            ("demote", "drbd", "node1"),
            ("promote", "drbd", "node2"),
            ("start", "fs", "node2"),
            ("start", "vip2", "node2"),
            ("start", "broker", "node2"),
            ("start", "db", "node2"),
        ],
    );
    assert!(t.fenced_nodes().is_empty(), "a service failure fences nobody");
    assert_eq!(clone_churn(&t, &facts, &everyone), Vec::<String>::new(), "HTTP/app instances were touched");
    for rsc in ["vip1", "haproxy"] {
        assert!(t.find("stop", rsc, None).is_none(), "{rsc} moved with the data group");
    }
    assert_eq!(sim.nodes_of("db").unwrap(), vec!["node2"]);
    assert_eq!(sim.nodes_of("haproxy").unwrap(), vec!["node1"], "the load balancer stays");
    assert_eq!(sim.nodes_of("tomcat").unwrap(), vec!["node1", "node2"]);
}

/// `parallel = ["broker", "db"]`: after the primary is lost, both start on the secondary once
/// the partition is mounted and VIP2 is up, neither waiting for the other; they are stopped
/// before it; the database's migration-threshold still moves the whole data layer.
#[test]
fn config_parallel_layers_start_together_after_the_group_and_move_with_it() {
    if !need_pacemaker_tools() {
        return;
    }
    let (written, loaded) = parallel_two_node();
    let cib = loaded.render(Format::Cib);
    // The group keeps the partition and VIP2; broker and db are primitives of their own.
    let group = &cib[cib.find("<group id=\"data\">").unwrap()..];
    let group = &group[..group.find("</group>").unwrap()];
    for (rsc, inside) in [("fs", true), ("vip2", true), ("broker", false), ("db", false)] {
        assert_eq!(group.contains(&format!("<primitive id=\"{rsc}\"")), inside, "{rsc} in the group: {group}");
        assert!(cib.contains(&format!("<primitive id=\"{rsc}\"")), "{rsc} not rendered");
    }
    let (mut sim, facts) = running_two_node(&loaded);
    let t = sim.step(&["--node-fail".into(), "node1".into()]).unwrap().transition;
    let fence = t.fencing("node1").unwrap().id;
    for rsc in ["fs", "vip2", "broker", "db"] {
        assert!(t.waits_for(action_id(&t, "start", rsc, "node2"), fence), "start {rsc} does not wait for the fencing");
    }
    let chain = |last| {
        [("promote", "drbd", "node2"), ("start", "fs", "node2"), ("start", "vip2", "node2"), ("start", last, "node2")]
    };
    assert_chain(&t, &chain("broker"));
    assert_chain(&t, &chain("db"));
    let (broker, db) = (action_id(&t, "start", "broker", "node2"), action_id(&t, "start", "db", "node2"));
    assert!(
        !t.waits_for(db, broker) && !t.waits_for(broker, db),
        "broker and db wait for each other: {:?}",
        t.summary()
    );
    for rsc in ["fs", "vip2", "broker", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node2"], "{rsc} runs on the secondary after the failover");
    }
    assert_eq!(clone_churn(&t, &facts, &["node2"]), Vec::<String>::new(), "HTTP/app instances on node2 were touched");

    // The database fails on the primary: restarted alone in place, then the data layer moves.
    let (mut sim, facts) = running_two_node(&loaded);
    let inject = vec!["--op-inject".to_string(), "db_monitor_10000@node1=1".to_string()];
    for failure in 1..=2 {
        let t = sim.step(&inject).unwrap().transition;
        let moved: Vec<String> = t.resource_actions().map(|a| format!("{} {}", a.operation, a.rsc)).collect();
        assert_eq!(moved, ["stop db", "start db"], "failure {failure}: more than db restarted");
    }
    let t = sim.step(&inject).unwrap().transition;
    for stopped_first in ["broker", "db"] {
        assert_chain(
            &t,
            &[
                ("stop", stopped_first, "node1"),
                ("stop", "vip2", "node1"),
                ("stop", "fs", "node1"),
                ("demote", "drbd", "node1"),
                ("promote", "drbd", "node2"),
                ("start", "fs", "node2"),
                ("start", "vip2", "node2"),
                ("start", stopped_first, "node2"),
            ],
        );
    }
    for rsc in ["fs", "vip2", "broker", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node2"], "{rsc} moved with the data layer");
    }
    assert_eq!(clone_churn(&t, &facts, &["node1", "node2"]), Vec::<String>::new(), "HTTP/app instances were touched");
    assert_eq!(sim.nodes_of("haproxy").unwrap(), vec!["node1"], "the load balancer stays");

    // `hastack config check` says so too.
    let out = written.run(&["check"]);
    out.expect(0);
    assert!(out.stdout.contains("ok: broker, db start together, none waiting for another"), "{}", out.stdout);
}

/// The parallel two-node stack with the broker as a warm standby (`warm_standby = true`): a
/// promotable clone, unpromoted on both nodes, promoted where the data group runs.
fn warm_two_node() -> (Written, Loaded) {
    let written = Written::example(
        "stack.toml",
        &[
            (PARALLEL_AT, PARALLEL),
            (
                "  agent = \"activemq\"\n  params = { data_dir = \"/srv/data/activemq\" }",
                "  agent = \"activemq\"\n  warm_standby = true\n  params = { config = \"/srv/conf/activemq/activemq.xml\", data_dir = \"/srv/data/activemq\" }",
            ),
        ],
    );
    let loaded = config::load(&written.stack).expect("the stack with a warm-standby broker is valid");
    (written, loaded)
}

/// (role, node) of each instance of `rsc` that runs.
fn roles(sim: &Sim, rsc: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = sim
        .placement()
        .unwrap()
        .into_iter()
        .filter(|(id, _, _)| id == rsc)
        .map(|(_, role, node)| (role, node))
        .collect();
    found.sort();
    found
}

/// The warm-standby broker (`warm_standby = true`): with both nodes up the data group and the
/// Promoted broker run on node1, an unpromoted broker waits on node2; the application servers'
/// first start waits for the promotion. When node1 is lost, node2's broker is promoted, not
/// restarted, once node1 is fenced and the group has started there; the database starts with it.
#[test]
fn config_warm_standby_broker_is_promoted_on_the_survivor_after_the_group() {
    if !need_pacemaker_tools() {
        return;
    }
    let (written, loaded) = warm_two_node();
    let sim = Sim::new(&loaded.render(Format::Cib)).unwrap();
    let verdict = verify(sim.state()).unwrap();
    assert!(verdict.ok, "crm_verify refused the CIB:\n{}", verdict.messages);

    // The first transitions, as in config_app_servers_first_start_waits_for_the_data_layers.
    let facts = Facts::of(&loaded);
    assert!(facts.promotable.contains(&"broker".to_string()), "{:?}", facts.promotable);
    let mut sim = Sim::new(&loaded.render(Format::Cib)).unwrap();
    let up = ["--quorum", "true", "--node-up", "node1", "--node-up", "node2"].map(String::from);
    let t = sim.step(&up).unwrap().transition;
    for node in ["node1", "node2"] {
        assert!(t.find("start", "broker", Some(node)).is_some(), "the standby starts on {node}: {:?}", t.summary());
    }
    assert!(t.find("promote", "broker", None).is_none(), "no promotion before the data group: {:?}", t.summary());
    assert!(t.find("start", "tomcat", None).is_none(), "tomcat started before the broker serves: {:?}", t.summary());
    // Both agents now report their promotion scores.
    for node in &facts.nodes {
        for rsc in &facts.promotable {
            sim.set_node_attribute(node, &format!("master-{rsc}"), "10000").unwrap();
        }
    }
    let t = sim.step(&[]).unwrap().transition;
    assert_chain(
        &t,
        &[
            ("promote", "drbd", "node1"),
            ("start", "fs", "node1"),
            ("start", "vip2", "node1"),
            ("promote", "broker", "node1"),
        ],
    );
    for node in ["node1", "node2"] {
        let tomcat = action_id(&t, "start", "tomcat", node);
        assert!(
            t.waits_for(tomcat, action_id(&t, "promote", "broker", "node1")),
            "tomcat on {node} before the broker's promotion"
        );
    }
    sim.settle().unwrap();

    // (b) Both nodes up: the data layers and the Promoted broker on node1, a standby on node2.
    for rsc in ["fs", "vip2", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node1"], "{rsc} starts on the primary");
    }
    assert_eq!(
        roles(&sim, "broker"),
        [("Promoted".to_string(), "node1".to_string()), ("Unpromoted".to_string(), "node2".to_string())]
    );
    for rsc in ["web", "tomcat"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node1", "node2"], "{rsc} runs on both nodes");
    }

    // (c) node1 lost: fenced, the group starts on node2, then node2's standby is promoted.
    let t = sim.step(&["--node-fail".into(), "node1".into()]).unwrap().transition;
    assert_eq!(t.fenced_nodes(), vec!["node1"]);
    let fence = t.fencing("node1").unwrap().id;
    let promote = action_id(&t, "promote", "broker", "node2");
    assert!(t.waits_for(promote, fence), "the promotion does not wait for the fencing: {:?}", t.summary());
    assert_chain(
        &t,
        &[
            ("promote", "drbd", "node2"),
            ("start", "fs", "node2"),
            ("start", "vip2", "node2"),
            ("promote", "broker", "node2"),
        ],
    );
    assert_chain(&t, &[("start", "vip2", "node2"), ("start", "db", "node2")]);
    let db = action_id(&t, "start", "db", "node2");
    assert!(
        !t.waits_for(db, promote) && !t.waits_for(promote, db),
        "broker and db wait for each other: {:?}",
        t.summary()
    );
    for op in ["start", "stop"] {
        assert!(t.find(op, "broker", Some("node2")).is_none(), "the standby was restarted ({op}): {:?}", t.summary());
    }
    assert_eq!(roles(&sim, "broker"), [("Promoted".to_string(), "node2".to_string())]);
    for rsc in ["fs", "vip2", "db"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node2"], "{rsc} runs on the secondary after the failover");
    }
    assert_eq!(clone_churn(&t, &facts, &["node2"]), Vec::<String>::new(), "HTTP/app instances on node2 were touched");

    // `hastack config check` holds the same promises.
    let out = written.run(&["check"]);
    out.expect(0);
    for needle in [
        "promote broker on node2",
        "ok: broker, db start together, none waiting for another",
        "ok: broker is Promoted where group data runs (Promoted on: [\"node2\"])",
        "ok: broker is promoted on node2 after group data has started",
        "ok: warm standby broker is not restarted, only promoted or demoted",
    ] {
        assert!(out.stdout.contains(needle), "check output lacks {needle:?}:\n{}", out.stdout);
    }
}

/// The warm standby's scripts (its own test: pcs takes seconds per command): pcs and crmsh make
/// the cluster the CIB renderer writes, the Promoted role's colocation included.
#[test]
fn config_warm_standby_pcs_and_crmsh_scripts_build_the_same_cib_as_the_cib_renderer() {
    if !need_pacemaker_tools() || !need_program("pcs", "pcs") || !need_program("crm", "crmsh") {
        return;
    }
    let (_written, warm) = warm_two_node();
    let cib = warm.render(Format::Cib);
    assert!(cib.contains(r#"rsc="broker-clone" rsc-role="Promoted" with-rsc="data""#), "{cib}");
    scripts_build_the_same_cib(&warm);
}

/// Each way `parallel` can be wrong is refused with its line and what to change.
#[test]
fn config_parallel_mistakes_are_refused_by_name() {
    for (parallel, words) in [
        (
            "parallel = [\"broker\", \"dbx\"]",
            &["group 'data': parallel 'dbx' is not a layer of the group (layers: fs, vip2, broker, db)"][..],
        ),
        ("parallel = [\"db\"]", &["group 'data': parallel needs at least two layers"][..]),
        (
            "parallel = [\"vip2\", \"broker\"]",
            &["group 'data': parallel must name the group's last 2 layers (broker, db)"][..],
        ),
        ("parallel = [\"broker\", \"db\", \"db\"]", &["group 'data': parallel lists 'db' twice"][..]),
        (
            "parallel = [\"fs\", \"vip2\", \"broker\", \"db\"]",
            &["group 'data': parallel must leave at least one layer before it"][..],
        ),
    ] {
        let w = Written::example("stack.toml", &[(PARALLEL_AT, &format!("{PARALLEL_AT}{parallel}\n"))]);
        let out = w.run(&["render", "--format", "cib"]);
        out.expect(1);
        assert!(out.stdout.is_empty(), "{parallel}: rendered although refused");
        w.assert_message(&out, parallel, words);
    }
    // A parallel layer keeping its data on a filesystem a parallel sibling mounts would start on
    // the bare directory.
    let w = Written::example(
        "stack-3node.toml",
        &[
            ("id = \"billing\"\n", "id = \"billing\"\nparallel = [\"late-fs\", \"billing-db\"]\n"),
            (
                "  id = \"billing-db\"\n",
                "  id = \"late-fs\"\n  agent = \"filesystem\"\n  params = { device = \"/dev/mapper/late\", directory = \"/srv/late\", fstype = \"xfs\" }\n\n  [[group.layer]]\n  id = \"billing-db\"\n",
            ),
            ("datadir = \"/srv/billing/mysql\"", "datadir = \"/srv/late/mysql\""),
        ],
    );
    let out = w.run(&["render", "--format", "cib"]);
    out.expect(1);
    w.assert_message(
        &out,
        "datadir = \"/srv/late/mysql\"",
        &["layer 'billing-db': datadir /srv/late/mysql is on /srv/late which layer 'late-fs' mounts while 'billing-db' starts", "put 'late-fs' before the parallel layers"],
    );
}

#[test]
fn config_secondary_lost_fences_it_and_nothing_moves_on_the_primary() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = two_node();
    let (mut sim, facts) = running_two_node(&loaded);
    let t = sim.step(&["--node-fail".into(), "node2".into()]).unwrap().transition;
    assert_eq!(t.fenced_nodes(), vec!["node2"]);
    let on_primary: Vec<String> = t
        .resource_actions()
        .filter(|a| a.node.as_deref() == Some("node1") && a.operation != "notify")
        .map(|a| format!("{} {}", a.operation, a.rsc))
        .collect();
    assert!(on_primary.is_empty(), "actions on the primary: {on_primary:?}");
    assert_eq!(clone_churn(&t, &facts, &["node1"]), Vec::<String>::new());
    for rsc in ["vip1", "haproxy", "fs", "vip2", "broker", "db", "web", "tomcat"] {
        assert_eq!(sim.nodes_of(rsc).unwrap(), vec!["node1"], "{rsc} stays on the primary");
    }
}

/// Why the app clone's order after the data group is mandatory and not symmetrical (and not
/// Optional): with a real DRBD agent the promotion score appears only after DRBD has started, so
/// the data group starts a transition after everything else. The app servers must wait for it.
#[test]
fn config_app_servers_first_start_waits_for_the_data_layers() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = two_node();
    let facts = Facts::of(&loaded);
    let mut sim = Sim::new(&loaded.render(Format::Cib)).unwrap();
    let t = sim
        .step(&[
            "--quorum".into(),
            "true".into(),
            "--node-up".into(),
            "node1".into(),
            "--node-up".into(),
            "node2".into(),
        ])
        .unwrap()
        .transition;
    assert!(t.find("start", "drbd", Some("node1")).is_some(), "DRBD starts: {:?}", t.summary());
    assert!(t.find("start", "db", None).is_none(), "no promotion score yet, so no data layers");
    assert!(t.find("start", "tomcat", None).is_none(), "tomcat started before the data layers: {:?}", t.summary());
    assert!(t.find("start", "web", Some("node1")).is_some(), "the HTTP servers do not wait");
    // The DRBD agent now reports both disks up to date.
    for node in &facts.nodes {
        sim.set_node_attribute(node, "master-drbd", "10000").unwrap();
    }
    let t = sim.step(&[]).unwrap().transition;
    for node in ["node1", "node2"] {
        let tomcat = action_id(&t, "start", "tomcat", node);
        assert!(t.waits_for(tomcat, action_id(&t, "start", "db", "node1")), "tomcat on {node} before the database");
    }
}

#[test]
fn config_n_node_group_fails_over_in_list_order_then_stays_stopped() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = three_node();
    let facts = Facts::of(&loaded);
    let mut sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
    assert_eq!(sim.nodes_of("orders-app").unwrap(), vec!["alpha"], "the preferred node");
    assert_eq!(sim.nodes_of("billing-db").unwrap(), vec!["beta"]);
    let threshold = 2;
    let mut went = Vec::new();
    for node in ["alpha", "beta", "gamma"] {
        went.push(sim.nodes_of("orders-app").unwrap());
        for _ in 0..threshold {
            let t = sim.step(&["--op-inject".into(), format!("orders-app_monitor_10000@{node}=1")]).unwrap().transition;
            assert_eq!(clone_churn(&t, &facts, &["alpha", "beta", "gamma"]), Vec::<String>::new());
            assert!(t.fenced_nodes().is_empty());
        }
    }
    assert_eq!(went, vec![vec!["alpha"], vec!["beta"], vec!["gamma"]], "the ordered failover list");
    assert!(sim.nodes_of("orders-app").unwrap().is_empty(), "after the last node failed, orders-app stays stopped");
    let t = sim.step(&[]).unwrap().transition;
    assert!(t.find("start", "orders-app", None).is_none(), "no further move: {:?}", t.summary());
    assert_eq!(sim.nodes_of("billing-db").unwrap(), vec!["beta"], "the other group is untouched");
    // The operator hears about it through the alert agent.
    let cib = loaded.render(Format::Cib);
    assert!(cib.contains(r#"<alert id="operator" path="/usr/lib/hastack/alert">"#), "{cib}");
    assert!(cib.contains("<select_resources/>"), "{cib}");
}

#[test]
fn config_three_node_loss_moves_the_group_to_the_next_listed_node() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = three_node();
    let facts = Facts::of(&loaded);
    let mut sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
    let step = sim.step(&["--node-fail".into(), "alpha".into()]).unwrap();
    // The same facts read from crm_simulate's saved graph by xmllint, not by our graph parser.
    for xpath in [
        "//action_set/crm_event[@operation='stonith' and @on_node='alpha']",
        "//action_set/rsc_op[@operation='start' and @on_node='beta'][primitive/@id='orders-ip']",
    ] {
        let count = format!("count({xpath})");
        let out = run_with_deadline(
            Command::new("xmllint").args(["--xpath", &count]).arg(&step.graph),
            Duration::from_secs(10),
        );
        out.expect(0);
        assert_eq!(out.stdout.trim(), "1", "{xpath} in {}", step.graph.display());
    }
    let t = step.transition;
    let fence = t.fencing("alpha").expect("alpha is fenced").id;
    assert!(t.waits_for(action_id(&t, "start", "orders-ip", "beta"), fence));
    assert_eq!(sim.nodes_of("orders-app").unwrap(), vec!["beta"], "beta comes before gamma in the list");
}

#[test]
fn config_fence_devices_run_only_on_their_cable_node() {
    if !need_pacemaker_tools() {
        return;
    }
    for (loaded, devices) in [
        (two_node(), vec![("fence-node1", "node1", "node2"), ("fence-node2", "node2", "node1")]),
        (
            three_node(),
            vec![("fence-alpha", "alpha", "beta"), ("fence-beta", "beta", "gamma"), ("fence-gamma", "gamma", "alpha")],
        ),
    ] {
        let facts = Facts::of(&loaded);
        let sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
        let cib = loaded.render(Format::Cib);
        assert!(cib.contains(r#"name="stonith-enabled" value="true""#));
        for (device, target, cable) in devices {
            assert_eq!(sim.nodes_of(device).unwrap(), vec![cable], "{device} runs where its cable is");
            assert!(cib.contains(&format!(r#"name="pcmk_host_list" value="{target}""#)), "{device} fences {target}");
            assert!(
                cib.contains(&format!(r#"rsc="{device}" node="{target}" score="-INFINITY""#)),
                "{device} banned from {target}"
            );
        }
    }
    // Two nodes: the device that fences the primary waits, so the primary wins a fence race.
    let cib = two_node().render(Format::Cib);
    assert!(cib.contains(r#"id="fence-node1-instance_attributes-pcmk_delay_base" name="pcmk_delay_base" value="15s""#));
    assert!(!cib.contains("fence-node2-instance_attributes-pcmk_delay_base"));
}

/// A CIB's configuration reduced to what the cluster does: element names and attributes, without
/// the generated ids of nested elements, children sorted except where order matters (groups).
fn normalized(cib: &str) -> BTreeMap<String, Vec<String>> {
    use quick_xml::events::Event;
    #[derive(Default)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
        kids: Vec<String>,
    }
    const KEEP_ID: &[&str] = &["primitive", "group", "clone", "rsc_location", "rsc_colocation", "rsc_order", "alert"];
    fn canon(el: El) -> String {
        let mut attrs: Vec<(String, String)> =
            el.attrs.into_iter().filter(|(k, _)| k != "id" || KEEP_ID.contains(&el.name.as_str())).collect();
        attrs.sort();
        let mut kids = el.kids;
        if el.name != "group" {
            kids.sort();
        }
        format!("{}{attrs:?}[{}]", el.name, kids.join(","))
    }
    let mut reader = quick_xml::Reader::from_str(cib);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<El> = Vec::new();
    let mut sections: BTreeMap<String, Vec<String>> = BTreeMap::new();
    loop {
        let event = reader.read_event().unwrap();
        let (start, end) = match &event {
            Event::Start(_) => (true, false),
            Event::Empty(_) => (true, true),
            Event::End(_) => (false, true),
            Event::Eof => break,
            _ => (false, false),
        };
        if start {
            let (Event::Start(e) | Event::Empty(e)) = &event else { unreachable!() };
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (String::from_utf8_lossy(a.key.as_ref()).into_owned(), a.unescape_value().unwrap().into_owned())
                })
                .collect();
            stack.push(El { name: String::from_utf8_lossy(e.name().as_ref()).into_owned(), attrs, kids: Vec::new() });
        }
        if end {
            let el = stack.pop().unwrap();
            // Depth 3 = a child of a configuration section (cib > configuration > section > child).
            if stack.len() == 3 && stack[1].name == "configuration" {
                let section = stack[2].name.clone();
                if section != "nodes" {
                    sections.entry(section).or_default().push(canon(el));
                }
            } else if let Some(parent) = stack.last_mut() {
                parent.kids.push(canon(el));
            }
        }
    }
    for items in sections.values_mut() {
        items.sort();
    }
    sections
}

fn empty_cib(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let out = Command::new("cibadmin").arg("--empty").output().unwrap();
    assert!(out.status.success());
    std::fs::write(&path, out.stdout).unwrap();
    path
}

#[test]
fn config_pcs_and_crmsh_scripts_build_the_same_cib_as_the_cib_renderer() {
    if !need_pacemaker_tools() || !need_program("pcs", "pcs") || !need_program("crm", "crmsh") {
        return;
    }
    for loaded in [two_node(), three_node()] {
        scripts_build_the_same_cib(&loaded);
    }
}

/// The same with `parallel` layers (its own test: pcs takes seconds per command).
#[test]
fn config_parallel_pcs_and_crmsh_scripts_build_the_same_cib_as_the_cib_renderer() {
    if !need_pacemaker_tools() || !need_program("pcs", "pcs") || !need_program("crm", "crmsh") {
        return;
    }
    let (_written, parallel) = parallel_two_node();
    scripts_build_the_same_cib(&parallel);
}

/// The pcs and crmsh scripts, applied to an empty CIB, make the cluster the CIB renderer writes.
fn scripts_build_the_same_cib(loaded: &Loaded) {
    let dir = tempfile::tempdir().unwrap();
    let expected = normalized(&loaded.render(Format::Cib));
    assert!(expected["resources"].len() >= 4 && expected["constraints"].len() >= 4, "{expected:?}");

    let script = dir.path().join("stack.pcs");
    std::fs::write(&script, loaded.render(Format::Pcs)).unwrap();
    let pcs_cib = empty_cib(dir.path(), "pcs.xml");
    let out = run_with_deadline(Command::new("sh").arg(&script).arg(&pcs_cib), Duration::from_secs(300));
    out.expect(0);
    assert_eq!(normalized(&std::fs::read_to_string(&pcs_cib).unwrap()), expected, "pcs built another cluster");

    let crm = dir.path().join("stack.crm");
    std::fs::write(&crm, loaded.render(Format::Crm)).unwrap();
    let crm_cib = empty_cib(dir.path(), "crm.xml");
    let mut cmd = Command::new("crm");
    cmd.args(["-F", "configure", "load", "update"]).arg(&crm).env("CIB_file", &crm_cib);
    run_with_deadline(&mut cmd, Duration::from_secs(120)).expect(0);
    assert_eq!(normalized(&std::fs::read_to_string(&crm_cib).unwrap()), expected, "crmsh built another cluster");
}

#[test]
fn config_check_command_reports_every_scenario() {
    if !need_pacemaker_tools() {
        return;
    }
    let out = run_cmd(hastack_cmd(Duration::from_secs(120)).args(["config", "check"]).arg(example("stack.toml")));
    out.expect(0);
    for needle in [
        "ok: crm_verify accepts the configuration",
        "== node node1 lost",
        "transition: stonith node1, start vip1 on node2, start haproxy on node2, promote drbd on node2, start fs on node2, start vip2 on node2, start broker on node2, start db on node2",
        "== node node2 lost",
        "failure 1 on node1: stop db on node1, start db on node1",
        "after 3 failures on node1: group data on node2",
        "all scenarios behave as the stack promises",
    ] {
        assert!(out.stdout.contains(needle), "check output lacks {needle:?}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("FAILED"), "{}", out.stdout);
}

/// The rendered files shipped in crm-config/ are what the renderer makes of the stacks.
#[test]
fn config_shipped_renderings_are_current() {
    for (stack, outputs) in [
        (
            "stack.toml",
            [("stack.cib.xml", "cib"), ("stack.pcs", "pcs"), ("stack.crm", "crm"), ("corosync.conf", "corosync")],
        ),
        (
            "stack-3node.toml",
            [
                ("stack-3node.cib.xml", "cib"),
                ("stack-3node.pcs", "pcs"),
                ("stack-3node.crm", "crm"),
                ("corosync-3node.conf", "corosync"),
            ],
        ),
    ] {
        let loaded = config::load(&example(stack)).unwrap();
        for (file, format) in outputs {
            let shipped = std::fs::read_to_string(example(file)).unwrap_or_default();
            assert!(
                shipped == loaded.render(Format::parse(format).unwrap()),
                "crm-config/{file} is stale: hastack config render --format {format} -o crm-config/{file} crm-config/{stack}"
            );
        }
    }
}

/// Corosync itself accepts each rendered corosync.conf (`corosync -t`), run as each node: in a
/// namespace that owns the node's ring addresses (corosync finds its own node by them), with a
/// key file standing in for /etc/corosync/authkey. A broken copy is refused, so the check bites.
#[test]
fn corosync_accepts_the_rendered_configurations() {
    if !crate::support::need_root("network namespaces") || !need_program("corosync", "corosync") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("authkey");
    std::fs::write(&key, (0..=255u8).collect::<Vec<u8>>()).unwrap();
    let corosync_t = |ns: &crate::support::Netns, text: &str, name: &str| {
        let conf = dir.path().join(name);
        std::fs::write(
            &conf,
            text.replacen("    version: 2\n", &format!("    version: 2\n    keyfile: {}\n", key.display()), 1),
        )
        .unwrap();
        ns.try_exec("corosync", &["-t", "-c", conf.to_str().unwrap()])
    };
    for stack in ["stack.toml", "stack-3node.toml"] {
        let text = config::load(&example(stack)).unwrap().render(Format::parse("corosync").unwrap());
        let nodes = ring_addresses(&text);
        assert!(nodes.len() >= 2, "{stack}: no nodelist in\n{text}");
        for (node, addrs) in &nodes {
            let ns = crate::support::Netns::new("coro");
            for a in addrs {
                ns.exec("ip", &["addr", "add", &format!("{a}/32"), "dev", "lo"]);
            }
            let (ok, out) = corosync_t(&ns, &text, &format!("{node}.conf"));
            assert!(ok, "corosync -t refuses {stack} rendered, as {node}:\n{out}");
            let broken = text.replace("link_mode: passive", "link_mode: sideways");
            let (ok, out) = corosync_t(&ns, &broken, &format!("{node}-broken.conf"));
            assert!(!ok && out.contains("link mode"), "corosync -t took a broken link_mode:\n{out}");
        }
    }
    // A consensus below 1.2 × token (BENCHMARKS "The 4 s target"): Corosync takes anything from
    // its join timeout (50 ms) up, and `hastack config` refuses below that as Corosync does.
    let src = std::fs::read_to_string(example("stack.toml")).unwrap();
    let fast = src.replacen("[cluster]\n", "[cluster]\ntoken = \"1000ms\"\nconsensus = \"200ms\"\n", 1);
    assert_ne!(fast, src);
    let text = config::parse("fast.toml", &fast).unwrap().render(Format::Corosync);
    assert!(text.contains("    token: 1000\n    consensus: 200\n"), "{text}");
    let (node, addrs) = &ring_addresses(&text)[0];
    let ns = crate::support::Netns::new("coro");
    for a in addrs {
        ns.exec("ip", &["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    let (ok, out) = corosync_t(&ns, &text, &format!("{node}-fast.conf"));
    assert!(ok, "corosync -t refuses consensus 200 with token 1000:\n{out}");
    let below_join = text.replace("consensus: 200", "consensus: 40");
    let (ok, out) = corosync_t(&ns, &below_join, &format!("{node}-below-join.conf"));
    assert!(!ok && out.contains("less than join timeout"), "corosync -t took consensus 40:\n{out}");
    assert!(config::parse("slow.toml", &fast.replace("\"200ms\"", "\"40ms\"")).is_err());
}

/// Each node's name and ring addresses in a rendered corosync.conf's nodelist.
fn ring_addresses(text: &str) -> Vec<(String, Vec<String>)> {
    let mut nodes = Vec::new();
    let mut addrs = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some((key, value)) = line.split_once(':') {
            if key.starts_with("ring") && key.ends_with("_addr") {
                addrs.push(value.trim().to_string());
            } else if key == "name" && !addrs.is_empty() {
                nodes.push((value.trim().to_string(), std::mem::take(&mut addrs)));
            }
        }
    }
    nodes
}

/// A stack with one mistake: (what is replaced, by what, the line and words the error must have).
const MISTAKES: &[(&str, &str, &str, &[&str])] = &[
    ("agent = \"postgresql\"", "agent = \"postgress\"", "unknown agent", &["layer 'db'", "unknown agent 'postgress'"]),
    (
        "params = { device = \"/dev/drbd0\", directory = \"/srv/data\", fstype = \"ext4\" }",
        "params = { device = \"/dev/drbd0\", fstype = \"ext4\" }",
        "missing parameter",
        &["layer 'fs'", "missing required parameter 'directory'"],
    ),
    ("cable = \"node1\"\n", "", "fence device without a cable node", &["fence device 'fence-node2' has no cable node"]),
    (
        "ip = \"192.168.122.20\"",
        "ip = \"192.168.122.10\"",
        "duplicate virtual IP",
        &["layer 'vip2'", "duplicate virtual IP ip=192.168.122.10", "layer 'vip1' on line"],
    ),
];

#[test]
fn config_malformed_stacks_are_rejected_with_the_line_and_nothing_is_written() {
    let good = std::fs::read_to_string(example("stack.toml")).unwrap();
    for (from, to, what, words) in MISTAKES {
        assert_eq!(good.matches(from).count(), 1, "{what}: '{from}' must occur once in stack.toml");
        let bad = good.replace(from, to);
        // The line the mistake is on (for the cable: the [[fence]] table it is missing from).
        let at = good.find(from).unwrap();
        let mut line = good[..at].lines().count() + usize::from(good[..at].ends_with('\n'));
        if to.is_empty() {
            line = good[..at].rfind("[[fence]]").map(|p| good[..p].lines().count() + 1).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.toml");
        std::fs::write(&stack, &bad).unwrap();
        for format in ["cib", "pcs", "crm"] {
            let output = dir.path().join(format!("out.{format}"));
            let out = run_cmd(
                hastack_cmd(Duration::from_secs(30))
                    .args(["config", "render", "--format", format, "-o"])
                    .arg(&output)
                    .arg(&stack),
            );
            out.expect(1);
            let prefix = format!("{}:{line}: ", stack.display());
            let message = out
                .stderr
                .lines()
                .find(|l| l.contains(&prefix))
                .unwrap_or_else(|| panic!("{what}: no error naming line {line} ({prefix}) in:\n{}", out.stderr));
            for word in *words {
                assert!(message.contains(word), "{what}: {message:?} lacks {word:?}");
            }
            assert!(!output.exists(), "{what}: {format} output written although the stack was refused");
            assert!(out.stdout.is_empty(), "{what}: something printed on stdout: {}", out.stdout);
            let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(leftovers.len(), 1, "{what}: files left behind: {leftovers:?}");
        }
    }
}

#[test]
fn config_render_to_stdout_and_file_agree() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("stack.cib.xml");
    let to_file = run_cmd(
        hastack_cmd(Duration::from_secs(30))
            .args(["config", "render", "--format", "cib", "--output"])
            .arg(&output)
            .arg(example("stack.toml")),
    );
    to_file.expect(0);
    let to_stdout = run_cmd(
        hastack_cmd(Duration::from_secs(30)).args(["config", "render", "--format", "cib"]).arg(example("stack.toml")),
    );
    to_stdout.expect(0);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), to_stdout.stdout);
    assert!(to_stdout.stdout.starts_with("<?xml"));
}

// ---- What the agents, fence_ups and a failover need (issue 11) -------------------------------

/// The data-directory parameter of each data layer's agent, as README.md documents them.
const DATA_PARAMS: &[(&str, &str)] =
    &[("postgresql", "pgdata"), ("mariadb", "datadir"), ("activemq", "data_dir"), ("rabbitmq", "data_dir")];

/// A crmsh script's primitives: id → (agent, params), and its groups' members in order.
#[allow(clippy::type_complexity)]
fn crm_objects(script: &str) -> (BTreeMap<String, (String, BTreeMap<String, String>)>, Vec<Vec<String>>) {
    let joined = script.replace(" \\\n", " ");
    let mut primitives = BTreeMap::new();
    let mut groups = Vec::new();
    for line in joined.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["primitive", id, agent, rest @ ..] => {
                let params = rest
                    .iter()
                    .skip_while(|w| **w != "params")
                    .skip(1)
                    .take_while(|w| **w != "op" && **w != "meta")
                    .filter_map(|w| w.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                    .collect();
                primitives.insert(id.to_string(), (agent.to_string(), params));
            }
            ["group", _, members @ ..] => groups.push(members.iter().map(|m| m.to_string()).collect()),
            _ => {}
        }
    }
    (primitives, groups)
}

/// The command README.md shows, run as shown (from the repository root): every data layer of a
/// group keeps its data directory on the filesystem its group mounts, mounted before it.
#[test]
fn config_shipped_examples_keep_every_data_layer_on_the_partition() {
    for (stack, expected) in [("crm-config/stack.toml", 2), ("crm-config/stack-3node.toml", 1)] {
        let out = run_cmd(
            hastack_cmd(Duration::from_secs(30))
                .args(["config", "render", "--format", "crm", stack])
                .current_dir(env!("CARGO_MANIFEST_DIR")),
        );
        out.expect(0);
        let (primitives, groups) = crm_objects(&out.stdout);
        let mut checked = 0;
        for members in &groups {
            let mut mounted: Vec<&str> = Vec::new();
            for id in members {
                let (agent, params) = &primitives[id];
                if agent == "ocf:hastack:filesystem" {
                    mounted.push(&params["directory"]);
                }
                let Some((_, param)) = DATA_PARAMS.iter().find(|(a, _)| agent == &format!("ocf:hastack:{a}")) else {
                    continue;
                };
                let dir = params.get(*param).unwrap_or_else(|| panic!("{stack}: {id} sets no {param}: {params:?}"));
                assert!(
                    mounted.iter().any(|m| dir.starts_with(&format!("{m}/"))),
                    "{stack}: {id}'s {param} {dir} is not below a directory its group mounted before it ({mounted:?})"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, expected, "{stack}: data layers checked");
    }
}

/// A stack written to a temporary directory, and `hastack config ARGS STACK` run on it.
struct Written {
    dir: tempfile::TempDir,
    stack: PathBuf,
    text: String,
}

impl Written {
    fn new(text: &str) -> Written {
        let dir = tempfile::Builder::new().prefix("hst-stack").tempdir().unwrap();
        let stack = dir.path().join("stack.toml");
        std::fs::write(&stack, text).unwrap();
        Written { dir, stack, text: text.to_string() }
    }

    /// One of the shipped stacks with each `(from, to)` replaced (each `from` must occur once).
    fn example(name: &str, edits: &[(&str, &str)]) -> Written {
        let mut text = std::fs::read_to_string(example(name)).unwrap();
        for (from, to) in edits {
            assert_eq!(text.matches(from).count(), 1, "'{from}' must occur once in {name}");
            text = text.replace(from, to);
        }
        Written::new(&text)
    }

    fn run(&self, args: &[&str]) -> crate::support::Outcome {
        run_cmd(hastack_cmd(Duration::from_secs(120)).arg("config").args(args).arg(&self.stack))
    }

    /// The 1-based line of the first occurrence of `needle`.
    #[track_caller]
    fn line(&self, needle: &str) -> usize {
        let at = self.text.find(needle).unwrap_or_else(|| panic!("'{needle}' not in the stack"));
        self.text[..at].matches('\n').count() + 1
    }

    /// The message `FILE:LINE: ...` about the line of `needle` holding every word in `words`.
    #[track_caller]
    fn assert_message(&self, out: &crate::support::Outcome, needle: &str, words: &[&str]) {
        let prefix = format!("{}:{}: ", self.stack.display(), self.line(needle));
        let found = out.stderr.lines().filter(|l| l.contains(&prefix)).any(|l| words.iter().all(|w| l.contains(w)));
        assert!(found, "no message {prefix}... with {words:?} in:\n{}", out.stderr);
    }
}

/// Outside the partition its group mounts, a database starts after a failover from the other
/// node's local disk: refused, naming the line. A group that mounts nothing warns.
#[test]
fn config_refuses_a_data_layer_off_the_partition() {
    let pg = Written::example(
        "stack.toml",
        &[("pgdata = \"/srv/data/postgresql\", config", "pgdata = \"/var/lib/postgresql/15/main\", config")],
    );
    let out = pg.run(&["check"]);
    out.expect(1);
    pg.assert_message(
        &out,
        "pgdata = \"/var/lib/postgresql/15/main\"",
        &["layer 'db': pgdata /var/lib/postgresql/15/main is outside the partition of group 'data', /srv/data (mounted by layer 'fs')"],
    );

    // The broker with no data_dir: the default (/var/lib/activemq/data) applies.
    let amq = Written::example(
        "stack.toml",
        &[("  params = { data_dir = \"/srv/data/activemq\" }        # KahaDB store, scheduler, temp storage\n", "")],
    );
    let out = amq.run(&["render", "--format", "cib"]);
    out.expect(1);
    assert!(out.stdout.is_empty());
    amq.assert_message(
        &out,
        "agent = \"activemq\"",
        &["data_dir /var/lib/activemq/data (the default) is outside the partition"],
    );

    // Mounted after the database in its group: the database would start on the bare directory.
    let late = Written::example(
        "stack-3node.toml",
        &[(
            "datadir = \"/srv/billing/mysql\"",
            "datadir = \"/srv/late/mysql\" }\n\n  [[group.layer]]\n  id = \"late-fs\"\n  agent = \"filesystem\"\n  params = { device = \"/dev/mapper/late\", directory = \"/srv/late\", fstype = \"xfs\"",
        )],
    );
    let out = late.run(&["render", "--format", "crm"]);
    out.expect(1);
    late.assert_message(
        &out,
        "datadir = \"/srv/late/mysql\"",
        &["datadir /srv/late/mysql is on /srv/late which layer 'late-fs' mounts only after it: put 'late-fs' before 'billing-db'"],
    );
    let billing_fs =
        Written::example("stack-3node.toml", &[("datadir = \"/srv/billing/mysql\"", "datadir = \"/srv/other/mysql\"")]);
    let out = billing_fs.run(&["render", "--format", "crm"]);
    out.expect(1);
    billing_fs.assert_message(&out, "datadir = \"/srv/other/mysql\"", &["outside the partition of group 'billing'"]);

    // No filesystem in the group: perhaps storage the cluster does not manage, probably a mistake.
    let bare = Written::example(
        "stack-3node.toml",
        &[(
            "  [[group.layer]]\n  id = \"billing-fs\"\n  agent = \"filesystem\"\n  params = { device = \"/dev/mapper/billing\", directory = \"/srv/billing\", fstype = \"xfs\" }\n  monitor = { interval = \"20s\", timeout = \"40s\" }\n\n",
            "",
        )],
    );
    let out = bare.run(&["render", "--format", "crm"]);
    out.expect(0);
    bare.assert_message(
        &out,
        "datadir = \"/srv/billing/mysql\"",
        &["warning: layer 'billing-db': datadir /srv/billing/mysql stays on each node's own disk: group 'billing' mounts no filesystem"],
    );
}
/// What the agents and fence_ups refuse, `config check` refuses, every problem of the file in
/// one run with its line; what crmsh warns about (a timeout below the agent's advice) it warns.
#[test]
fn config_check_refuses_what_the_agents_and_fence_ups_refuse() {
    let stack = Written::new(
        r#"[cluster]
name = "bad"

[[node]]
name = "n1"
links = ["10.0.0.1", "192.168.1.1"]

[[node]]
name = "n2"
links = ["10.0.0.2", "192.168.1.2"]

[[node]]
name = "n3"
links = ["10.0.0.3", "192.168.1.3"]

[[fence]]
id = "fence-n1"
fences = "n1"
cable = "n2"
params = { serial_port = "ttyS0" }

[[fence]]
id = "fence-n2"
fences = "n2"
cable = "n3"
params = { serial_port = "/dev/ttyS0", ipaddr = "192.0.2.5", ups_name = "ups2" }

[[fence]]
id = "fence-n3"
fences = "n3"
cable = "n1"
params = { serial_port = "/dev/ttyS1", ups_seiral = "QS0123456789" }

[[group]]
id = "front"

  [[group.layer]]
  id = "vip-a"
  agent = "vip"
  params = { ip = "999.1.1.1" }

  [[group.layer]]
  id = "vip-b"
  agent = "vip"
  params = { ip = "10.0.0.50", cidr_netmask = 99 }
  timeouts = { start = "5s" }

  [[group.layer]]
  id = "web"
  agent = "nginx"
  params = { statusurl = "https://127.0.0.1/status" }

[[group]]
id = "data"

  [[group.layer]]
  id = "fs-a"
  agent = "filesystem"
  params = { device = "/dev/sdb1", directory = "srv/data", fstype = "ext4" }

  [[group.layer]]
  id = "fs-b"
  agent = "filesystem"
  params = { device = "/dev/sdc1", directory = "/srv/more", fstype = "ext44" }
"#,
    );
    for args in [&["check"][..], &["render", "--format", "pcs"]] {
        let out = stack.run(args);
        out.expect(1);
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        for (needle, words) in [
            ("serial_port = \"ttyS0\"", &["fence device 'fence-n1'", "parameter serial_port: 'ttyS0' is not an absolute path"][..]),
            ("ipaddr = \"192.0.2.5\"", &["fence device 'fence-n2'", "both transports", "serial_port", "ip, ups_name"]),
            ("ups_seiral", &["fence device 'fence-n3'", "unknown parameter 'ups_seiral' (did you mean 'ups_serial'?)"]),
            ("999.1.1.1", &["layer 'vip-a'", "parameter 'ip' is not an IPv4 or IPv6 address: '999.1.1.1'"]),
            ("cidr_netmask = 99", &["layer 'vip-b'", "parameter 'cidr_netmask' 99 is not a prefix length"]),
            ("https://", &["layer 'web'", "parameter 'statusurl'", "https is not supported"]),
            ("directory = \"srv/data\"", &["layer 'fs-a'", "parameter 'directory' must be an absolute path, got 'srv/data'"]),
            ("ext44", &["layer 'fs-b'", "parameter 'fstype': 'ext44' is no filesystem type (did you mean 'ext4'?)"]),
            (
                "start = \"5s\"",
                &["warning: layer 'vip-b': specified timeout 5s for start is smaller than the advised 20s (ocf:hastack:vip meta-data)"],
            ),
        ] {
            stack.assert_message(&out, needle, words);
        }
    }
}
/// A timeout below the agent's advice is allowed with a warning, where crmsh warns too; the
/// shipped examples (unset timeouts take the agent's advice) give crmsh nothing to warn about.
#[test]
fn config_warns_like_crmsh_about_timeouts_below_the_agents_advice() {
    let short = Written::example(
        "stack-3node.toml",
        &[
            (
                "monitor = { interval = \"10s\", timeout = \"30s\" }",
                "monitor = { interval = \"10s\", timeout = \"20s\" }",
            ),
            (
                "monitor = { interval = \"15s\", timeout = \"30s\" }",
                "monitor = { interval = \"15s\", timeout = \"30s\" }\n  timeouts = { start = \"60s\", stop = \"60s\" }",
            ),
        ],
    );
    let out = short.run(&["render", "--format", "crm"]);
    out.expect(0);
    short.assert_message(
        &out,
        "timeout = \"20s\"",
        &["layer 'orders-app': specified timeout 20s for monitor is smaller than the advised 30s"],
    );
    short.assert_message(
        &out,
        "start = \"60s\"",
        &["layer 'billing-db': specified timeout 60s for start is smaller than the advised 120s"],
    );
    short.assert_message(&out, "stop = \"60s\"", &["specified timeout 60s for stop is smaller than the advised 120s"]);
    let shipped = run_cmd(
        hastack_cmd(Duration::from_secs(30))
            .args(["config", "render", "--format", "crm"])
            .arg(example("stack-3node.toml")),
    );
    assert!(shipped.stderr.is_empty(), "{}", shipped.stderr);
    assert!(shipped.stdout.contains("primitive billing-db ocf:hastack:mariadb \\\n    params datadir=/srv/billing/mysql \\\n    op start interval=0s timeout=120s"), "{}", shipped.stdout);

    // crmsh reads the installed agents' meta-data and warns about the same operations.
    if !crate::support::need_root("installing the agents for crmsh")
        || !need_program("crm", "crmsh")
        || !need_pacemaker_tools()
    {
        return;
    }
    crate::conformance::install_system_links();
    let crm_warnings = |script: &str| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stack.crm");
        std::fs::write(&file, script).unwrap();
        let cib = empty_cib(dir.path(), "cib.xml");
        let mut cmd = Command::new("crm");
        cmd.args(["-F", "configure", "load", "update"]).arg(&file).env("CIB_file", &cib);
        let out = run_with_deadline(&mut cmd, Duration::from_secs(120));
        out.expect(0);
        out.stderr
            .lines()
            .chain(out.stdout.lines())
            .filter(|l| l.contains("smaller than the advised"))
            .map(String::from)
            .collect()
    };
    let warned = crm_warnings(&out.stdout);
    for words in [
        "orders-app: specified timeout 20s for monitor",
        "billing-db: specified timeout 60s for start",
        "billing-db: specified timeout 60s for stop",
    ] {
        assert!(warned.iter().any(|w| w.contains(words)), "crmsh does not warn {words:?}: {warned:?}");
    }
    assert_eq!(warned.len(), 3, "{warned:?}");
    for name in ["stack.toml", "stack-3node.toml"] {
        let loaded = config::load(&example(name)).unwrap();
        assert_eq!(crm_warnings(&loaded.render(Format::Crm)), Vec::<String>::new(), "{name}");
    }
}
/// A filesystem on a DRBD device must follow the promotion of its DRBD resource.
#[test]
fn config_refuses_a_drbd_filesystem_not_tied_to_the_promotion() {
    let unbound = Written::example("stack.toml", &[("with_promoted = \"drbd-clone\"\n", "")]);
    for args in [&["check"][..], &["render", "--format", "cib"]] {
        let out = unbound.run(args);
        out.expect(1);
        unbound.assert_message(
            &out,
            "device = \"/dev/drbd0\"",
            &[
                "layer 'fs': device /dev/drbd0 is a DRBD device, but group 'data' is not tied to its promotion",
                "set with_promoted = \"drbd-clone\" on the group",
            ],
        );
    }
    let other = Written::example("stack.toml", &[("device = \"/dev/drbd0\"", "device = \"/dev/drbd/by-res/r1\"")]);
    let out = other.run(&["render", "--format", "crm"]);
    out.expect(1);
    other.assert_message(
        &out,
        "by-res/r1",
        &[
            "DRBD resource 'r1', but group 'data' follows 'drbd-clone', which does not manage it",
            "no promotable drbd clone in the stack manages 'r1'",
        ],
    );
    let named = Written::example("stack.toml", &[("device = \"/dev/drbd0\"", "device = \"/dev/drbd/by-res/r0/0\"")]);
    named.run(&["render", "--format", "crm"]).expect(0);
}
/// NUT fence devices as fence_ups takes them (transport inferred from ip, or given), rendered
/// with the current names, which pcs accepts without a deprecation warning.
#[test]
fn config_nut_fence_devices_are_written_as_fence_ups_takes_them() {
    const SERIAL: &str = "cable = \"node1\"\nparams = { serial_port = \"/dev/ttyS0\" }";
    for params in [
        "params = { ip = \"192.0.2.5\", ups_name = \"ups2\" }",
        "params = { transport = \"nut\", ip = \"192.0.2.5\", ups_name = \"ups2\", username = \"fence\", password_script = \"/usr/local/sbin/nut-password ups2\" }",
    ] {
        let stack = Written::example("stack.toml", &[(SERIAL, &format!("cable = \"node1\"\n{params}"))]);
        let out = stack.run(&["render", "--format", "cib"]);
        out.expect(0);
        assert!(out.stdout.contains(r#"name="ip" value="192.0.2.5""#), "{}", out.stdout);
    }
    let old = Written::example(
        "stack.toml",
        &[(SERIAL, "cable = \"node1\"\nparams = { ipaddr = \"192.0.2.5\", ups_name = \"ups2\", login = \"fence\", passwd = \"s3cret\" }")],
    );
    for format in ["cib", "crm", "pcs"] {
        let out = old.run(&["render", "--format", format]);
        out.expect(0);
        for deprecated in ["ipaddr", "login", "passwd"] {
            assert!(!out.stdout.contains(deprecated), "{format} renders the deprecated {deprecated}:\n{}", out.stdout);
        }
        assert!(out.stdout.contains("192.0.2.5") && out.stdout.contains("username") && out.stdout.contains("password"));
    }
    if !crate::support::need_root("installing fence_ups for pcs")
        || !need_program("pcs", "pcs")
        || !need_pacemaker_tools()
    {
        return;
    }
    crate::conformance::install_system_links();
    let pcs = old.run(&["render", "--format", "pcs"]);
    // The script's preamble and its NUT device: what pcs says about the rendered names.
    let (preamble, body) = pcs.stdout.split_once("run property").unwrap();
    let device = body.lines().find(|l| l.starts_with("run stonith create fence-node2 ")).unwrap();
    let script = old.dir.path().join("nut.pcs");
    std::fs::write(&script, format!("{preamble}{device}\n")).unwrap();
    let cib = empty_cib(old.dir.path(), "cib.xml");
    let out = run_with_deadline(Command::new("sh").arg(&script).arg(&cib), Duration::from_secs(60));
    out.expect(0);
    assert!(!out.stderr.contains("deprecated"), "{}", out.stderr);
    assert!(std::fs::read_to_string(&cib).unwrap().contains(r#"name="ip" value="192.0.2.5""#));
}
/// The alert agent the examples name is where the package and `make install` put it, and
/// `check` says whether it is on this host instead of claiming the operator hears.
#[test]
fn config_check_says_whether_the_alert_agent_is_installed_here() {
    for name in ["stack.cib.xml", "stack-3node.cib.xml"] {
        let cib = std::fs::read_to_string(example(name)).unwrap();
        assert!(cib.contains(r#"<alert id="operator" path="/usr/lib/hastack/alert">"#), "{name}");
    }
    if !need_pacemaker_tools() {
        return;
    }
    let dir = tempfile::Builder::new().prefix("hst-alert").tempdir().unwrap();
    let missing = dir.path().join("missing-agent");
    let plain = dir.path().join("plain-file");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let agent = dir.path().join("alert-agent");
    std::fs::write(&agent, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The examples name no path: hastack's agent is the default. Another agent is named by path.
    const SHIPPED: &str = "id = \"operator\"\n";
    for (path, found) in [(&missing, Err("does not exist")), (&plain, Err("is not executable")), (&agent, Ok(()))] {
        let path = path.display().to_string();
        let stack =
            Written::example("stack-3node.toml", &[(SHIPPED, &format!("id = \"operator\"\npath = \"{path}\"\n"))]);
        let out = stack.run(&["check"]);
        out.expect(0);
        match found {
            Ok(()) => {
                assert!(out.stdout.contains(&format!("the operator is alerted through {path}")), "{}", out.stdout);
                assert!(
                    out.stdout.contains(&format!("ok: the alert agent {path} is installed here")),
                    "{}",
                    out.stdout
                );
                assert!(!out.stdout.contains("warning"), "{}", out.stdout);
            }
            Err(why) => {
                assert!(!out.stdout.contains("the operator is alerted through"), "{}", out.stdout);
                assert!(
                    out.stdout.contains(&format!("warning: the alert agent {path} {why} on this host")),
                    "{}",
                    out.stdout
                );
                assert!(
                    out.stdout.contains("all scenarios behave as the stack promises (3 warnings above)"),
                    "{}",
                    out.stdout
                );
            }
        }
    }
}

/// A live-migratable layer: `allow_migrate = true` renders `allow-migrate=true` and the
/// migrate_to/migrate_from operations (with the agent's advised timeouts) in every format, and a
/// `crm_resource --move` then makes Pacemaker's scheduler migrate the resource instead of
/// stopping and starting it. What cannot migrate is refused with its line.
#[test]
fn config_allow_migrate_renders_for_pcs_crm_and_cib_and_a_move_migrates() {
    let stack = |relay_extra: &str, extra: &str| {
        format!(
            r#"[cluster]
name = "mig"

[[node]]
name = "node1"
links = ["10.0.0.1", "192.168.1.1"]

[[node]]
name = "node2"
links = ["10.0.0.2", "192.168.1.2"]

[[fence]]
id = "fence-node1"
fences = "node1"
cable = "node2"
params = {{ serial_port = "/dev/ttyS0" }}

[[fence]]
id = "fence-node2"
fences = "node2"
cable = "node1"
params = {{ serial_port = "/dev/ttyS0" }}

[[group]]
id = "front"
prefer = "node1"

  [[group.layer]]
  id = "relay"
  agent = "tcprelay"
  params = {{ ip = "192.168.1.10", cidr_netmask = 24, port = 7000, backend = "127.0.0.1:7001" }}
{relay_extra}
{extra}"#
        )
    };
    let good = Written::new(&stack("  allow_migrate = true\n", ""));
    let cib = good.run(&["render", "--format", "cib"]);
    cib.expect(0);
    for needle in [r#"name="allow-migrate" value="true""#, r#"name="migrate_to""#, r#"name="migrate_from""#] {
        assert!(cib.stdout.contains(needle), "{needle} missing from the CIB:\n{}", cib.stdout);
    }
    let pcs = good.run(&["render", "--format", "pcs"]);
    pcs.expect(0);
    assert!(pcs.stdout.contains("allow-migrate=true"), "{}", pcs.stdout);
    assert!(pcs.stdout.contains("migrate_to interval=0s timeout=20s"), "{}", pcs.stdout);
    let crm = good.run(&["render", "--format", "crm"]);
    crm.expect(0);
    assert!(crm.stdout.contains("allow-migrate=true"), "{}", crm.stdout);
    assert!(crm.stdout.contains("op migrate_from"), "{}", crm.stdout);
    // Without the flag: no meta attribute, no migration operations.
    let plain = Written::new(&stack("", "")).run(&["render", "--format", "cib"]);
    plain.expect(0);
    assert!(!plain.stdout.contains("allow-migrate") && !plain.stdout.contains("migrate_to"), "{}", plain.stdout);

    // pcs and crmsh build the same cluster from their scripts as the CIB renderer writes.
    if need_pacemaker_tools() && need_program("pcs", "pcs") && need_program("crm", "crmsh") {
        let dir = tempfile::tempdir().unwrap();
        let expected = normalized(&cib.stdout);
        let script = dir.path().join("stack.pcs");
        std::fs::write(&script, &pcs.stdout).unwrap();
        let pcs_cib = empty_cib(dir.path(), "pcs.xml");
        run_with_deadline(Command::new("sh").arg(&script).arg(&pcs_cib), Duration::from_secs(300)).expect(0);
        assert_eq!(normalized(&std::fs::read_to_string(&pcs_cib).unwrap()), expected, "pcs built another cluster");
        let script = dir.path().join("stack.crm");
        std::fs::write(&script, &crm.stdout).unwrap();
        let crm_cib = empty_cib(dir.path(), "crm.xml");
        let mut load = Command::new("crm");
        load.args(["-F", "configure", "load", "update"]).arg(&script).env("CIB_file", &crm_cib);
        run_with_deadline(&mut load, Duration::from_secs(120)).expect(0);
        assert_eq!(normalized(&std::fs::read_to_string(&crm_cib).unwrap()), expected, "crmsh built another cluster");
    }

    if need_pacemaker_tools() {
        let loaded = config::load(&good.stack).unwrap();
        let facts = Facts::of(&loaded);
        let mut sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
        assert_eq!(sim.nodes_of("relay").unwrap(), vec!["node1"]);
        let mut mv = Command::new("crm_resource");
        mv.args(["--move", "--resource", "relay", "--node", "node2"]).env("CIB_file", sim.state());
        run_with_deadline(&mut mv, Duration::from_secs(60)).expect(0);
        let t = sim.step(&[]).unwrap().transition;
        let to = action_id(&t, "migrate_to", "relay", "node1");
        let from = action_id(&t, "migrate_from", "relay", "node2");
        assert!(t.waits_for(from, to), "{:?}", t.summary());
        assert!(t.find("start", "relay", Some("node2")).is_none(), "a move is a migration: {:?}", t.summary());
        sim.settle().unwrap();
        assert_eq!(sim.nodes_of("relay").unwrap(), vec!["node2"]);
    }

    for (relay_extra, extra, needle, words) in [
        (
            "  allow_migrate = true\n  timeouts = { migrate_to = \"5s\" }\n",
            "",
            "migrate_to = \"5s\"",
            &["warning: layer 'relay': specified timeout 5s for migrate_to is smaller than the advised 20s"][..],
        ),
        ("  timeouts = { migrate_from = \"30s\" }\n", "", "migrate_from = \"30s\"", &["timeouts.migrate_from without allow_migrate = true"]),
        (
            "",
            "\n  [[group.layer]]\n  id = \"vip9\"\n  agent = \"vip\"\n  params = { ip = \"192.168.1.9\" }\n  allow_migrate = true\n",
            "allow_migrate = true",
            &["layer 'vip9': agent 'vip' cannot live-migrate", "allow_migrate is for: tcprelay"],
        ),
        (
            "",
            "\n[[clone]]\nid = \"relays\"\n\n  [clone.layer]\n  id = \"relay2\"\n  agent = \"tcprelay\"\n  params = { ip = \"192.168.1.11\", port = 7000, backend = \"127.0.0.1:7001\" }\n  allow_migrate = true\n",
            "allow_migrate = true",
            &["layer 'relay2': allow_migrate is for layers of a group"],
        ),
        (
            "",
            "\n  [[group.layer]]\n  id = \"vip10\"\n  agent = \"vip\"\n  params = { ip = \"192.168.1.10\" }\n",
            "ip = \"192.168.1.10\" }\n",
            &["layer 'vip10': duplicate virtual IP ip=192.168.1.10, already used by layer 'relay'"],
        ),
    ] {
        let bad = Written::new(&stack(relay_extra, extra));
        let out = bad.run(&["check"]);
        let warning_only = words[0].starts_with("warning:");
        out.expect(if warning_only { 0 } else { 1 });
        bad.assert_message(&out, needle, words);
    }
}
