//! The alert agent under the real Pacemaker of the lab (`hastack lab`): Pacemaker runs the lab's
//! copy of /usr/lib/hastack/alert on each node, with a console recipient added at runtime with the
//! node's `cibadmin`, pointing at a console stand-in (tests/alert/receiver.rs) listening in the
//! lab's client namespace on the public network. One lab serves both scenarios:
//! - kill -9 of the PostgreSQL server on the primary: the failed-monitor and restart reports,
//!   each with a crm_mon snapshot, valid against docs/report-schema.json;
//! - a power cut of the primary (`lab fail`) with the console down: the survivor spools its
//!   node-lost, fencing and start reports (with snapshots); once the console is back,
//!   `hastack alert flush` run on the survivor as the flush timer runs it delivers every one of
//!   them, each exactly once.
//!
//! A second lab (its own boot) points the alert agents at a real `hastack console serve` and cuts
//! the primary's power: the console shows one failover incident whose MTTR is the lab's own. Then
//! a monitor interval changed from that console reaches the CIB within one poll of `hastack agent
//! apply` polling on the survivor, and `crm_verify -L` passes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::alert::assert_valid_reports;
use crate::alert::receiver::{Mode, Post, Receiver};
use crate::support::*;

/// The database layer of crm-config/lab.toml and where its server keeps its PID.
const DB: &str = "db";
const POSTMASTER_PID: &str = "/srv/data/postgresql/postmaster.pid";
/// The alert lab.toml configures, and the spool the agent uses by default (inside each node).
const ALERT_ID: &str = "operator";
const SPOOL: &str = "var/spool/hastack/alert";

struct Lab {
    name: String,
}

impl Lab {
    fn run(&self, args: &[&str], limit: Duration) -> Outcome {
        let mut cmd = Command::new(bin());
        cmd.args(["lab", "--name", &self.name]).args(args);
        run_with_deadline(&mut cmd, limit)
    }

    fn handle(&self) -> hastack::lab::Lab {
        hastack::lab::Lab::new(&self.name).unwrap()
    }

    /// A command on a node, entered as the lab enters it (all its namespaces).
    fn on(&self, node: &str, program: &str, args: &[&str]) -> String {
        hastack::lab::node::run_on(&self.handle(), node, program, args, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn where_runs(&self, rsc: &str) -> Option<String> {
        let status = self.run(&["status"], Duration::from_secs(120)).stdout;
        let line = status.lines().find(|l| l.trim_start().starts_with(&format!("* {rsc}\t")))?;
        line.split("Started ").nth(1).map(|n| n.trim().to_string())
    }

    /// The node's spool as the host sees it (each node has its own /var/spool).
    fn spool(&self, node: &str) -> PathBuf {
        self.handle().node_dir(node).join(SPOOL)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Whatever happened, the lab goes (a failed assertion must not leave a cluster running).
        let _ = self.run(&["down"], Duration::from_secs(180));
    }
}

/// A listening socket bound inside a network namespace: a thread enters it, binds, and the
/// socket stays in that namespace for good.
fn listen_in(netns: &str, addr: &str) -> TcpListener {
    let (netns, addr) = (netns.to_string(), addr.to_string());
    std::thread::spawn(move || {
        let ns = std::fs::File::open(Path::new("/run/netns").join(&netns)).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        TcpListener::bind(&addr).unwrap()
    })
    .join()
    .unwrap()
}

/// The client namespace's address on the public network.
fn client_address(netns: &str) -> String {
    let out = sh("ip", &["-n", netns, "-4", "-o", "addr", "show", "dev", "eth0"]);
    let cidr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1).unwrap_or_else(|| panic!("{out}"));
    cidr.split('/').next().unwrap().to_string()
}

fn category(p: &Value) -> &str {
    p["event"]["category"].as_str().unwrap_or_default()
}

fn alert_field<'a>(p: &'a Value, name: &str) -> &'a str {
    p["event"]["alert"][name].as_str().unwrap_or_default()
}

/// A report of `category` for resource `rsc` and operation `task`.
fn is_op(p: &Value, cat: &str, rsc: &str, task: &str) -> bool {
    category(p) == cat && alert_field(p, "rsc") == rsc && alert_field(p, "task") == task
}

/// The report carries the crm_mon snapshot the reporter took, showing the cluster.
fn assert_snapshot(p: &Value) {
    let s = &p["snapshot"];
    let xml = s["xml"].as_str().unwrap_or_default();
    assert!(
        s["exit_code"] == 0 && xml.contains("<pacemaker-result") && xml.contains("<nodes") && xml.contains(DB),
        "{} report from {} without a crm_mon snapshot: {}",
        category(p),
        p["reporter"]["node"],
        serde_json::to_string_pretty(s).unwrap()
    );
}

/// The reports spooled in a directory: (idempotency key, body).
fn spooled(dir: &Path) -> BTreeMap<String, (Value, String)> {
    let mut out = BTreeMap::new();
    for path in hastack::alert::spool::entries(dir).unwrap_or_default() {
        let text = std::fs::read_to_string(&path).unwrap();
        let body = text.split_once('\n').unwrap().1.to_string();
        let v: Value = serde_json::from_str(&body).unwrap();
        out.insert(v["idempotency_key"].as_str().unwrap().to_string(), (v, body));
    }
    out
}

fn summaries(posts: &[Value]) -> String {
    posts
        .iter()
        .map(|p| format!("{} {}: {}", p["reporter"]["node"], category(p), p["event"]["summary"]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn bodies(posts: &[Post]) -> Vec<Value> {
    posts.iter().map(|p| p.body.clone()).collect()
}

#[test]
fn kill_and_power_cut_reported_with_snapshots_and_flushed_exactly_once() {
    if !need_root("the lab (namespaces, bridges, loop devices)") || !need_program("python3", "python3") {
        return;
    }
    // A name of its own (tests/lab.rs uses pid % 1000 and + 500), never the user's lab.
    let lab = Lab { name: format!("hst{}", (std::process::id() + 250) % 1000) };
    lab.run(&["up"], Duration::from_secs(1800)).expect(0);
    let primary = lab.where_runs(DB).expect("the database runs");
    let survivor = if primary == "node1" { "node2" } else { "node1" };

    // The console stand-in, in the client's namespace on the public network the nodes share.
    let client_ns = lab.handle().client_netns();
    let listener = listen_in(&client_ns, &format!("{}:0", client_address(&client_ns)));
    let console_addr = listener.local_addr().unwrap().to_string();
    let receiver = Receiver::start_with(listener, Mode::Ok);
    // A console recipient beside lab.toml's file recipient, as README's cibadmin line adds one.
    let recipient =
        format!("<alert id=\"{ALERT_ID}\"><recipient id=\"{ALERT_ID}-console\" value=\"{}\"/></alert>", receiver.url);
    lab.on(&primary, "cibadmin", &["--modify", "--scope", "alerts", "--xml-text", &recipient]);
    for node in ["node1", "node2"] {
        let alerts = lab.on(node, "cibadmin", &["--query", "--scope", "alerts"]);
        assert!(alerts.contains(&receiver.url), "{node}'s CIB lacks the console recipient:\n{alerts}");
    }

    // 1. kill -9 of the whole PostgreSQL server on the primary: the monitor finds it failed,
    // Pacemaker restarts it in place; the primary reports both, each with its snapshot.
    let pid = lab.on(&primary, "head", &["-n1", POSTMASTER_PID]).trim().to_string();
    lab.on(&primary, "kill", &["-9", "--", &format!("-{pid}")]);
    wait_for("the failed-monitor and restart reports", Duration::from_secs(300), || {
        let posts = bodies(&receiver.posts());
        posts.iter().any(|p| is_op(p, "operation_failed", DB, "monitor"))
            && posts.iter().any(|p| is_op(p, "operation_succeeded", DB, "start"))
    });
    let posts = bodies(&receiver.posts());
    eprintln!("after the kill, the console got:\n{}", summaries(&posts));
    let failed = posts.iter().find(|p| is_op(p, "operation_failed", DB, "monitor")).unwrap();
    let restart = posts.iter().find(|p| is_op(p, "operation_succeeded", DB, "start")).unwrap();
    for p in [failed, restart] {
        assert_eq!(p["reporter"]["node"], primary.as_str(), "{p}");
        assert_eq!(alert_field(p, "node"), primary, "restarted in place: {p}");
        assert_snapshot(p);
    }
    let time = |p: &Value| (p["event"]["time"]["epoch"].as_i64(), p["event"]["time"]["usec"].as_i64());
    assert!(time(restart) > time(failed), "the restart comes after the failure:\n{}", summaries(&posts));
    assert_valid_reports(&receiver.posts().iter().map(|p| p.raw.clone()).collect::<Vec<_>>());
    // Let the restarted database settle before the next fault.
    lab.on(&primary, "crm_resource", &["--wait", "--timeout=300s"]);
    drop(receiver);

    // 2. The console is down (nothing listens: connection refused) and the primary loses power.
    lab.run(&["fail", &primary], Duration::from_secs(60)).expect(0);
    let spool = lab.spool(survivor);
    wait_for("the survivor to spool node-lost, fencing and start reports", Duration::from_secs(600), || {
        let held: Vec<Value> = spooled(&spool).into_values().map(|(v, _)| v).collect();
        held.iter().any(|p| category(p) == "node_lost" && alert_field(p, "node") == primary)
            && held.iter().any(|p| category(p) == "fencing_succeeded" && alert_field(p, "node") == primary)
            && held.iter().any(|p| is_op(p, "operation_succeeded", DB, "start") && alert_field(p, "node") == survivor)
    });
    // The fenced node boots again and rejoins; wait until the cluster is quiet, so that no alert
    // of the survivor's drains the spool at the same time as flush.
    wait_for("the fenced node to rejoin", Duration::from_secs(600), || {
        lab.run(&["status"], Duration::from_secs(120)).stdout.contains("Online: [ node1 node2 ]")
    });
    lab.on(survivor, "crm_resource", &["--wait", "--timeout=300s"]);
    let held = spooled(&spool);
    let mut held_values: Vec<Value> = held.values().map(|(v, _)| v.clone()).collect();
    held_values.sort_by_key(|p| (p["event"]["time"]["epoch"].as_i64(), p["event"]["time"]["usec"].as_i64()));
    eprintln!("spooled on {survivor} while the console was down:\n{}", summaries(&held_values));
    for p in &held_values {
        assert_eq!(p["reporter"]["node"], survivor, "{p}");
        if ["node_lost", "fencing_succeeded"].contains(&category(p)) || is_op(p, "operation_succeeded", DB, "start") {
            assert_snapshot(p);
        }
    }
    assert_valid_reports(&held.values().map(|(_, b)| b.clone()).collect::<Vec<_>>());

    // The console comes back where it was; the flush timer's command, run on the survivor as
    // the timer runs it (as hacluster), delivers everything.
    let receiver = Receiver::start_with(listen_in(&client_ns, &console_addr), Mode::Ok);
    let flush = lab.on(
        survivor,
        "runuser",
        &[
            "-u",
            "hacluster",
            "--",
            "hastack",
            "alert",
            "flush",
            "--spool-dir",
            "/var/spool/hastack/alert",
            "--deadline",
            "50s",
        ],
    );
    eprintln!("flush on {survivor}: {}", flush.trim());
    assert!(hastack::alert::spool::entries(&spool).unwrap().is_empty(), "flush left reports in {}", spool.display());
    let posts = receiver.posts();
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    for p in &posts {
        *sent.entry(p.key()).or_default() += 1;
    }
    let twice: Vec<_> = sent.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "reports sent more than once: {twice:?}");
    let wanted: BTreeSet<String> = held.keys().cloned().collect();
    let stored = receiver.stored();
    let missing: Vec<_> = wanted.difference(&stored).collect();
    assert!(missing.is_empty(), "spooled reports the console never got: {missing:?}");
    for (key, (_, body)) in &held {
        let got = posts.iter().find(|p| &p.key() == key).unwrap();
        assert_eq!(&got.raw, body, "a report is sent as it was spooled");
    }
    // An alert run may add a report between the look at the spool and the flush: at least these.
    let delivered = flush.split_whitespace().next().and_then(|n| n.parse::<usize>().ok());
    assert!(delivered.is_some_and(|n| n >= held.len()), "flush said: {flush}");
    eprintln!("flush delivered {} report(s), each once", held.len());
}

/// Runs `f` on a thread inside network namespace `netns` (the lab's client namespace: the host
/// has no route to the lab's public network).
fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let ns = std::fs::File::open(Path::new("/run/netns").join(netns)).unwrap();
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
    })
}

fn console_get(netns: &str, addr: &str, path: &str) -> crate::console::client::Response {
    in_netns(netns, || crate::console::client::get(addr, path))
}

/// The cluster's incidents as the console's API lists them.
fn console_incidents(netns: &str, addr: &str) -> Vec<Value> {
    let r = console_get(netns, addr, &format!("/api/v1/clusters/{LAB_CLUSTER}/incidents"));
    if r.status == 404 {
        return Vec::new(); // no report yet: the cluster has no row to list
    }
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["incidents"].as_array().cloned().unwrap_or_default()
}

/// The lab's cluster as its alert reports it (corosync's cluster name, lab.toml's `[cluster] name`).
const LAB_CLUSTER: &str = "hastack-lab";

/// End to end: the lab's alert agents report to a real `hastack console serve` (in the lab's
/// client namespace, on the public network the nodes share); the primary loses power (`lab
/// fail`); the console shows the failover as exactly one incident, kind failover, whose MTTR is
/// the lab's own measurement within 1 s. The lab's figure is read as `hastack lab bench` reads
/// a power cut: from the survivor's pacemaker.log, "Node X state is now lost" to the last
/// "Result of start operation for R on SURVIVOR: ok" of the resources the incident took down.
#[test]
fn power_cut_is_one_failover_incident_in_the_console_with_the_labs_mttr() {
    if !need_root("the lab (namespaces, bridges, loop devices)") || !need_program("python3", "python3") {
        return;
    }
    // A name of its own beside the other lab tests' (pid % 1000, + 250, + 500).
    let lab = Lab { name: format!("hst{}", (std::process::id() + 750) % 1000) };
    lab.run(&["up"], Duration::from_secs(1800)).expect(0);
    let primary = lab.where_runs(DB).expect("the database runs");
    let survivor = if primary == "node1" { "node2" } else { "node1" };

    // The console, started as README.md shows, in the client's namespace.
    let client_ns = lab.handle().client_netns();
    let dir = tempfile::Builder::new().prefix("hst-lab-console").tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("console.db").display());
    let mut serve = Command::new("ip");
    serve
        .args(["netns", "exec", &client_ns])
        .arg(bin())
        .args(["console", "serve", "--listen", &format!("{}:0", client_address(&client_ns))])
        .env("HASTACK_CONSOLE_DB", &db);
    let console = crate::console::Console::spawn(&mut serve, dir, db);
    let token = console.add_cluster(LAB_CLUSTER);
    // The token where each node's alert reads it (the node's own /srv: README.md puts it in
    // /etc/hastack, which the lab's nodes share with the host), readable by hacluster only.
    let haclient = nix::unistd::Group::from_name("haclient").unwrap().expect("the haclient group").gid;
    for node in ["node1", "node2"] {
        let dir = lab.handle().node_dir(node).join("srv/hastack");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("console.token");
        std::fs::write(&file, format!("{token}\n")).unwrap();
        nix::unistd::chown(&file, Some(nix::unistd::Uid::from_raw(0)), Some(haclient)).unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    }
    let url = format!("http://{}/api/v1/reports", console.addr);
    let alert = format!(
        "<alert id=\"{ALERT_ID}\"><instance_attributes id=\"{ALERT_ID}-console-options\">\
         <nvpair id=\"{ALERT_ID}-token-file\" name=\"token_file\" value=\"/srv/hastack/console.token\"/>\
         </instance_attributes><recipient id=\"{ALERT_ID}-console\" value=\"{url}\"/></alert>"
    );
    lab.on(&primary, "cibadmin", &["--modify", "--scope", "alerts", "--xml-text", &alert]);
    for node in ["node1", "node2"] {
        let alerts = lab.on(node, "cibadmin", &["--query", "--scope", "alerts"]);
        assert!(alerts.contains(&url), "{node}'s CIB lacks the console recipient:\n{alerts}");
    }
    lab.on(&primary, "crm_resource", &["--wait", "--timeout=300s"]);

    // The power cut, timed in the survivor's pacemaker.log from here on.
    let log = lab.handle().node_dir(survivor).join("var/log/pacemaker/pacemaker.log");
    let mark = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) as usize;
    lab.run(&["fail", &primary], Duration::from_secs(60)).expect(0);
    wait_for("the console to show the failover recovered", Duration::from_secs(600), || {
        console_incidents(&client_ns, &console.addr).iter().any(|i| i["outcome"] == "failover")
    });
    // The fenced node boots and rejoins: that must not make another incident.
    wait_for("the fenced node to rejoin", Duration::from_secs(600), || {
        lab.run(&["status"], Duration::from_secs(120)).stdout.contains("Online: [ node1 node2 ]")
    });
    lab.on(survivor, "crm_resource", &["--wait", "--timeout=300s"]);
    // The survivor's alert runs are done once the cluster is idle; their reports are then in.
    wait_for("the survivor's spool to drain", Duration::from_secs(60), || {
        hastack::alert::spool::entries(&lab.spool(survivor)).unwrap_or_default().is_empty()
    });

    let incidents = console_incidents(&client_ns, &console.addr);
    let events = console_get(&client_ns, &console.addr, &format!("/api/v1/clusters/{LAB_CLUSTER}/events?limit=200"));
    eprintln!("the console's incidents: {}", serde_json::to_string_pretty(&incidents).unwrap());
    assert_eq!(incidents.len(), 1, "one incident for one power cut; events:\n{}", events.text());
    let incident = &incidents[0];
    assert_eq!(incident["kind"], "node", "{incident}");
    assert_eq!(incident["node"], primary.as_str(), "{incident}");
    assert_eq!(incident["outcome"], "failover", "{incident}");
    assert_eq!(incident["recovered_on"], serde_json::json!([survivor]), "{incident}");
    let affected: Vec<String> =
        incident["affected"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert!(affected.iter().any(|r| r == DB), "the database went down with {primary}: {incident}");
    let console_mttr =
        (incident["recovered_us"].as_i64().unwrap() - incident["detected_us"].as_i64().unwrap()) as f64 / 1e6;

    // The lab's own measurement, from the survivor's pacemaker.log.
    let bytes = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&bytes[mark.min(bytes.len())..]).into_owned();
    let (year, offset) = hastack::lab::timeline::local_utc_offset();
    let timeline = hastack::lab::timeline::events(&text, year, offset);
    use hastack::lab::timeline::Event;
    let lost = timeline
        .iter()
        .find(|(_, e)| matches!(e, Event::Lost(n) if *n == primary))
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("{survivor}'s pacemaker.log has no loss of {primary}:\n{text}"));
    let started = |rsc: &str| {
        timeline
            .iter()
            .find(|(t, e)| {
                *t >= lost
                    && matches!(e, Event::Op { op, rsc: r, node, result }
                        if op == "start" && r == rsc && node == survivor && result == "ok")
            })
            .map(|(t, _)| *t)
            .unwrap_or_else(|| panic!("{survivor}'s pacemaker.log has no start of {rsc} after the loss:\n{text}"))
    };
    let back = affected.iter().map(|r| started(r)).fold(f64::MIN, f64::max);
    let lab_mttr = back - lost;
    eprintln!("MTTR: console {console_mttr:.3} s, lab (pacemaker.log of {survivor}) {lab_mttr:.3} s");
    assert!(
        (console_mttr - lab_mttr).abs() <= 1.0,
        "the console's MTTR {console_mttr:.3} s is not the lab's {lab_mttr:.3} s within 1 s: {incident}"
    );

    // The cluster page shows it: one failover, with that MTTR.
    let page = console_get(&client_ns, &console.addr, &format!("/clusters/{LAB_CLUSTER}"));
    assert_eq!(page.status, 200);
    let html = page.text();
    let shown = hastack::console::pages::format::duration_ms((console_mttr * 1000.0) as i64);
    assert!(
        html.contains("failover") && html.contains(&shown),
        "the cluster page does not show the failover with its MTTR {shown}:\n{html}"
    );

    // Configuration push (issue 16) on the same lab: a monitor interval changed from the console
    // reaches the CIB within one poll of `hastack agent apply` polling on the survivor.
    monitor_interval_from_the_console_reaches_the_cib(&lab, survivor, &client_ns, &console);
    drop(console);
}

/// `hastack agent apply` polling (not --once) inside a lab node, killed with its process group on
/// drop (nsenter forks the command into the node's PID namespace).
struct Poller {
    child: std::process::Child,
    log: PathBuf,
}

impl Poller {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The poll interval of the lab's agent: short, so that the test waits little for "one poll".
const POLL_S: i64 = 5;

fn monitor_interval_from_the_console_reaches_the_cib(
    lab: &Lab,
    node: &str,
    client_ns: &str,
    console: &crate::console::Console,
) {
    use crate::console::client;
    let monitor =
        |on: &str| lab.on(on, "cibadmin", &["--query", "--xpath", "//primitive[@id='db']//op[@name='monitor']"]);
    let before = monitor(node);
    assert!(before.contains(r#"interval="10s""#), "lab.toml's db monitor: {before}");

    // The poller, started as README.md shows (without --once), on the survivor, as root.
    let dir = tempfile::Builder::new().prefix("hst-lab-apply").tempdir().unwrap();
    let log = dir.path().join("apply.log");
    let mut cmd = hastack::lab::node::command_on(&lab.handle(), node, "hastack").unwrap();
    cmd.args(["agent", "apply", "--console", &format!("http://{}", console.addr)])
        .args(["--token-file", "/srv/hastack/console.token", "--interval", &format!("{POLL_S}s")])
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut poller = Poller { child: cmd.spawn().unwrap(), log };

    // The operator's request, as the page's form and the API record it.
    let body = serde_json::json!({ "requested_by": "lab-operator", "change": { "kind": "operation",
        "resource": DB, "operation": "monitor", "interval": "10s", "new_interval": "12s" } });
    let path = format!("/api/v1/clusters/{LAB_CLUSTER}/changes");
    let posted = in_netns(client_ns, || {
        client::request(
            &console.addr,
            "POST",
            &path,
            &[("Content-Type", "application/json")],
            Some(&serde_json::to_vec(&body).unwrap()),
        )
    });
    assert_eq!(posted.status, 201, "{}", posted.text());
    let id = posted.json()["id"].as_i64().unwrap();
    let change = || -> Value {
        let r = console_get(client_ns, &console.addr, &path);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["changes"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().unwrap()
    };
    wait_for("the console to show the change finished", Duration::from_secs(300), || {
        assert!(poller.child.try_wait().unwrap().is_none(), "the poller exited:\n{}", poller.log());
        ["applied", "rolled_back", "refused", "failed"].contains(&change()["state"].as_str().unwrap_or_default())
    });
    let c = change();
    eprintln!("the change as the console shows it: {}", serde_json::to_string_pretty(&c).unwrap());
    assert_eq!(c["state"], "applied", "{c:#}\n{}", poller.log());
    let steps: Vec<(&str, bool, &str)> = c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["ok"].as_bool().unwrap(), s["node"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("plan", true, node), ("commit", true, node), ("verify", true, node)], "{c:#}");
    // Within one poll: the agent planned it at most one interval (and the CIB's read) after the request.
    let planned_after_s = (c["steps"][0]["time_us"].as_i64().unwrap() - c["created_us"].as_i64().unwrap()) / 1_000_000;
    assert!(planned_after_s <= POLL_S + 5, "planned {planned_after_s} s after the request (poll every {POLL_S} s)");
    // The poller keeps polling and said each step on its stderr.
    assert!(poller.child.try_wait().unwrap().is_none(), "the poller exited:\n{}", poller.log());
    let said = poller.log();
    for step in ["plan", "commit", "verify"] {
        assert!(said.contains(&format!("change {id}: {step}:")), "{step} not in the agent's log:\n{said}");
    }
    drop(poller);

    // Pacemaker's own tools, on both nodes: the CIB has the new interval, and it verifies.
    for on in ["node1", "node2"] {
        let after = monitor(on);
        assert!(after.contains(r#"interval="12s""#), "{on}'s CIB: {after}");
    }
    lab.on(node, "crm_verify", &["-L", "-V"]);
    eprintln!("monitor interval 10s -> 12s applied {planned_after_s} s after the request; crm_verify -L passes");
}
