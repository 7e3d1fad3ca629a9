//! `hastack lab`: `make lab` (README's first set-up command), a power-cut failover, down, and
//! then nothing left behind, checked without the lab's own bookkeeping (ip netns, ip link,
//! /proc/mounts, losetup, the process table). The lab runs under a name of its own (`hst` +
//! digits), so a user's lab (default `hsl`) is never touched and tests/setup/cleanup.sh's `hst`
//! sweep finds its namespaces and links.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::support::*;
use hastack::config::model::{Class, Primitive, Resource};
use hastack::lab::clusterlabs;

struct Lab {
    name: String,
}

impl Lab {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(["lab", "--name", &self.name]).args(args);
        cmd
    }

    fn run(&self, args: &[&str], limit: Duration) -> Outcome {
        run_with_deadline(&mut self.cmd(args), limit)
    }

    fn status(&self) -> String {
        self.run(&["status"], Duration::from_secs(120)).stdout
    }

    /// The node a resource runs on, from `lab status` (crm_mon's "rsc (agent): Started node").
    fn where_runs(&self, rsc: &str) -> Option<String> {
        let status = self.status();
        let line = status.lines().find(|l| l.trim_start().starts_with(&format!("* {rsc}\t")))?;
        line.split("Started ").nth(1).map(|n| n.trim().to_string())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Whatever happened, the lab goes (a failed assertion must not leave a cluster running).
        let _ = run_with_deadline(&mut self.cmd(&["down"]), Duration::from_secs(120));
    }
}

/// The application's health page through the public virtual IP, from the lab's client
/// namespace: VIP1 → HAProxy → nginx → Tomcat → the lab's application.
fn http_through_vip1(lab: &Lab) -> Outcome {
    let ns = format!("{}-client", lab.name);
    run_with_deadline(
        Command::new("ip").args(["netns", "exec", &ns, "curl", "-sf", "-m", "5", "http://10.250.1.10/lab/health"]),
        Duration::from_secs(20),
    )
}

/// Every trace of a lab named `name` on this machine, found without the lab's journal.
fn leftovers(name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    let mut left = Vec::new();
    let netns = sh("ip", &["netns", "list"]);
    left.extend(netns.lines().filter(|l| l.starts_with(&prefix)).map(|l| format!("netns {l}")));
    let links = sh("ip", &["-o", "link", "show"]);
    left.extend(
        links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .filter(|n| n.starts_with(&prefix))
            .map(|n| format!("link {n}")),
    );
    let files = [format!("/var/lib/hastack-lab/{name}"), format!("/run/hastack-lab/{name}")];
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&format!("/run/netns/{prefix}")) || files.iter().any(|f| l.contains(f.as_str())))
            .map(|l| format!("mount {l}")),
    );
    let loops = sh("losetup", &["-a"]);
    left.extend(loops.lines().filter(|l| files.iter().any(|f| l.contains(f.as_str()))).map(|l| format!("loop {l}")));
    for pid in hastack::sys::proc::all_pids() {
        let cmdline = hastack::sys::proc::cmdline(pid).unwrap_or_default().join(" ");
        // The lab's own processes, and any process whose mounts come from the lab's files
        // (a node's daemons see the node's directories bound over the host's).
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        if cmdline.contains(&format!("lab --name {name} ")) || mountinfo.contains(&format!("/hastack-lab/{name}/")) {
            left.push(format!("process {pid}: {cmdline}"));
        }
    }
    left.extend(files.iter().filter(|f| Path::new(f).exists()).map(|f| format!("file {f}")));
    left
}

/// `make lab` from the repository root, as README's Set-up shows it (no make of ours around it):
/// a release build if the tree changed, `make install`, then `hastack lab up`.
fn make_lab(name: &str) -> Outcome {
    let mut cmd = Command::new("make");
    cmd.arg("lab")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("HASTACK_LAB_NAME", name)
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL");
    run_with_deadline(&mut cmd, Duration::from_secs(1800))
}

#[test]
fn make_lab_then_power_cut_failover_then_down_leaves_nothing_behind() {
    if !need_root("the lab (namespaces, bridges, loop devices)")
        || !need_program("curl", "curl")
        || !need_program("make", "make")
    {
        return;
    }
    let lab = Lab { name: format!("hst{}", std::process::id() % 1000) };
    assert!(leftovers(&lab.name).is_empty(), "an earlier lab of this name is still here: {:?}", leftovers(&lab.name));

    // README's first set-up command, as README shows it, from the repository root: it installs
    // hastack (`make install`) and brings the lab up. The lab's name comes from the environment
    // (HASTACK_LAB_NAME, README "Names"), so the user's default lab is never touched.
    let up = make_lab(&lab.name);
    up.expect(0);
    assert!(up.stdout.contains("no DRBD module") && up.stdout.contains("is up"), "{}", up.stdout);
    // up is idempotent: a lab that is up stays as it is.
    let again = lab.run(&["up"], Duration::from_secs(120));
    again.expect(0);
    assert!(again.stdout.contains("is up already"), "{}", again.stdout);
    let status = lab.run(&["status"], Duration::from_secs(120));
    status.expect(0);
    assert!(status.stdout.contains("Online: [ node1 node2 ]"), "{}", status.stdout);
    http_through_vip1(&lab).expect(0);

    // One power cut of the primary with the lab's client sending transactions through VIP1:
    // fenced through its UPS, the stack back on the survivor, nothing acknowledged lost.
    let bench = lab.run(&["bench", "1", "--scenario", "cut"], Duration::from_secs(900));
    bench.expect(0);
    for needle in ["fencing confirmed", "db started", "missing 0\n", "duplicated 0\n", "result ok"] {
        assert!(bench.stdout.contains(needle), "bench output lacks {needle:?}:\n{}", bench.stdout);
    }
    let first_tx = bench.stdout.lines().find(|l| l.trim_start().starts_with("first transaction")).unwrap();
    assert!(first_tx.split_whitespace().nth(2).is_some_and(|v| v.parse::<f64>().is_ok()), "{first_tx}");

    // `lab fail` as README shows it: the primary loses power, the survivor fences it through
    // its UPS (reboot: it comes back and rejoins) and runs the stack.
    let primary = lab.where_runs("db").expect("the database runs");
    let survivor = if primary == "node1" { "node2" } else { "node1" };
    let power_log = format!("/var/lib/hastack-lab/{}/power-{primary}.log", lab.name);
    let cuts_before = std::fs::read_to_string(&power_log).unwrap().matches("load off").count();
    lab.run(&["fail", &primary], Duration::from_secs(60)).expect(0);
    let started = Instant::now();
    wait_for("the data layers to run on the survivor", Duration::from_secs(300), || {
        lab.where_runs("db").as_deref() == Some(survivor) && lab.where_runs("vip1").as_deref() == Some(survivor)
    });
    eprintln!("failover to {survivor}: {:?} after the cut", started.elapsed());
    let log = std::fs::read_to_string(&power_log).unwrap();
    assert!(log.matches("load off").count() > cuts_before, "{survivor} never switched {primary}'s UPS off:\n{log}");
    http_through_vip1(&lab).expect(0);
    wait_for("the fenced node to rejoin", Duration::from_secs(300), || {
        lab.status().contains("Online: [ node1 node2 ]")
    });

    let down = lab.run(&["down"], Duration::from_secs(120));
    down.expect(0);
    let left = leftovers(&lab.name);
    assert!(left.is_empty(), "lab down left:\n{}", left.join("\n"));
    // A second down finds nothing to do and says so; status says the lab is not up.
    let again = lab.run(&["down"], Duration::from_secs(60));
    again.expect(0);
    assert!(again.stdout.contains("nothing to remove"), "{}", again.stdout);
    lab.run(&["status"], Duration::from_secs(60)).expect(3);
}

/// `lab up --agents clusterlabs` (README "The lab"): the same stack with resource-agents'
/// IPaddr2, Filesystem, pgsql, nginx and tomcat, fenced by cluster-glue's apcsmart plugin
/// through fence_legacy, comes up, one power cut under the lab's client loses and duplicates
/// nothing (the plugin's reset hibernated the victim's UPS, which woke by itself and booted
/// it again), and `down` leaves nothing behind.
#[test]
fn lab_clusterlabs_agents_up_power_cut_failover_then_down_leaves_nothing_behind() {
    if !need_root("the lab (namespaces, bridges, loop devices)")
        || !need_program("curl", "curl")
        || (!Path::new("/usr/lib/ocf/resource.d/heartbeat/pgsql").exists()
            && !skip_or_fail("resource-agents is not installed (tests/setup/install-deps.sh installs it)"))
    {
        return;
    }
    let lab = Lab { name: format!("hst{}", (std::process::id() + 250) % 1000) };
    assert!(leftovers(&lab.name).is_empty(), "an earlier lab of this name is still here: {:?}", leftovers(&lab.name));
    let up = lab.run(&["up", "--agents", "clusterlabs", "--token", "1000ms"], Duration::from_secs(900));
    up.expect(0);
    for needle in [
        "clusterlabs agents",
        "db ocf:heartbeat:pgsql",
        "broker ocf:hastack:activemq",
        "stonith:fence_legacy with cluster-glue's apcsmart plugin",
        "is up",
    ] {
        assert!(up.stdout.contains(needle), "lab up's output lacks {needle:?}:\n{}", up.stdout);
    }
    let status = lab.status();
    for needle in
        ["(ocf:heartbeat:IPaddr2)", "(ocf:heartbeat:Filesystem)", "(ocf:heartbeat:pgsql)", "(stonith:fence_legacy)"]
    {
        assert!(status.contains(needle), "{needle} does not run:\n{status}");
    }
    http_through_vip1(&lab).expect(0);

    let bench = lab.run(&["bench", "1", "--scenario", "cut"], Duration::from_secs(900));
    bench.expect(0);
    for needle in ["agents: clusterlabs", "fencing confirmed", "db started", "missing 0\n", "duplicated 0\n"] {
        assert!(bench.stdout.contains(needle), "bench output lacks {needle:?}:\n{}", bench.stdout);
    }
    let db = bench.stdout.lines().find(|l| l.trim_start().starts_with("db started")).unwrap();
    assert!(db.split_whitespace().nth(2).is_some_and(|v| v.parse::<f64>().is_ok()), "{db}");
    // The plugin's reset: the victim's UPS switched its load off (hibernation) and on again (it
    // woke by itself, nobody else switches it), and the bench settled with the node back.
    let victim = bench.stdout.split("power cut 1: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    let power = std::fs::read_to_string(format!("/var/lib/hastack-lab/{}/power-{victim}.log", lab.name)).unwrap();
    let off = power.find(" load off").unwrap_or_else(|| panic!("{victim}'s UPS never went off:\n{power}"));
    assert!(power[off..].contains(" load on: "), "{victim}'s UPS never woke up:\n{power}");

    lab.run(&["down"], Duration::from_secs(120)).expect(0);
    let left = leftovers(&lab.name);
    assert!(left.is_empty(), "lab down left:\n{}", left.join("\n"));
}

#[test]
fn lab_down_after_a_failed_up_leaves_nothing_behind() {
    if !need_root("the lab (namespaces, bridges, loop devices)") {
        return;
    }
    // A stack whose database cannot be initialised: `up` fails after the nodes have booted,
    // with bridges, loop device, UPS power processes and nodes made.
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("broken.toml");
    let text = hastack::lab::LAB_TOML.replace("pgdata = ", "bindir = \"/nonexistent/bin\", pgdata = ");
    assert_ne!(text, hastack::lab::LAB_TOML);
    std::fs::write(&stack, text).unwrap();
    let lab = Lab { name: format!("hst{}", (std::process::id() + 500) % 1000) };
    let up = lab.run(&["up", stack.to_str().unwrap()], Duration::from_secs(900));
    up.expect(1);
    assert!(up.stderr.contains("/nonexistent/bin/initdb"), "{}", up.stderr);
    assert!(!leftovers(&lab.name).is_empty(), "a failed up keeps what it made for inspection");

    // Its nodes run (no CIB was loaded, so nothing fences): `lab fail` and `lab boot` as README
    // shows them.
    lab.run(&["status"], Duration::from_secs(60)).expect(0);
    lab.run(&["fail", "node2"], Duration::from_secs(60)).expect(0);
    let status = lab.run(&["status"], Duration::from_secs(60));
    status.expect(1);
    assert!(status.stdout.contains("node2: power off"), "{}", status.stdout);
    assert!(!sh("ip", &["netns", "list"]).contains(&format!("{}-node2", lab.name)), "a cut node's namespace goes");
    lab.run(&["boot", "node2"], Duration::from_secs(60)).expect(0);
    wait_for("node2 to rejoin", Duration::from_secs(120), || lab.run(&["status"], Duration::from_secs(60)).code == 0);

    lab.run(&["down"], Duration::from_secs(120)).expect(0);
    let left = leftovers(&lab.name);
    assert!(left.is_empty(), "lab down after a failed up left:\n{}", left.join("\n"));
}

/// README's usage line of `lab up` names only options `lab up` has, `--pacemaker-debug` among
/// them (no lab is made: `--help` answers before the root check).
#[test]
fn readme_lab_up_usage_names_lab_ups_options() {
    let out = run_with_deadline(Command::new(bin()).args(["lab", "up", "--help"]), Duration::from_secs(30));
    out.expect(0);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let usage = readme.lines().find(|l| l.trim_start().starts_with("hastack lab up [")).expect("README's lab up usage");
    let options: Vec<&str> = usage.split(['[', ']', ' ']).filter(|w| w.starts_with("--")).collect();
    assert!(options.contains(&"--pacemaker-debug"), "{usage}");
    for option in options {
        assert!(out.stdout.contains(option), "README shows {option}, `lab up --help` lacks it:\n{}", out.stdout);
    }
}

/// The lab's stack keeps the promises `hastack config check` proves for the shipped example
/// (fence first, restart in place, clones untouched by a move), without a drbd clone.
#[test]
fn lab_stack_passes_hastack_config_check() {
    if !need_program("crm_simulate", "pacemaker-cli-utils") {
        return;
    }
    let out = run_with_deadline(
        Command::new(bin()).args(["config", "check", "crm-config/lab.toml"]),
        Duration::from_secs(240),
    );
    out.expect(0);
    assert!(out.stdout.contains("all scenarios behave as the stack promises"), "{}", out.stdout);
    assert!(
        out.stdout.contains("stonith node1, start vip1 on node2, start haproxy on node2, start fs on node2"),
        "{}",
        out.stdout
    );
}

/// The parameters an installed agent's meta-data declares.
fn declared_params(agent: &str) -> Vec<String> {
    let path = format!("/usr/lib/ocf/resource.d/{}/{agent}", clusterlabs::PROVIDER);
    let out = std::process::Command::new(&path)
        .arg("meta-data")
        .env("OCF_ROOT", "/usr/lib/ocf")
        .output()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    xml.split("<parameter name=\"").skip(1).filter_map(|p| p.split('"').next()).map(str::to_string).collect()
}

/// The CIB `lab up --agents clusterlabs` loads passes Pacemaker's crm_verify, names exactly
/// the expected agents, and passes each heartbeat agent only parameters its installed
/// meta-data declares; its fencing is cluster-glue's apcsmart plugin through fence_legacy on
/// the cables fence_ups used, with only the configuration names the installed plugin lists.
#[test]
fn the_clusterlabs_cib_passes_crm_verify_and_the_agents_declare_every_parameter() {
    if !need_program("crm_verify", "pacemaker-cli-utils")
        || !need_program("stonith", "cluster-glue")
        || (!std::path::Path::new("/usr/lib/ocf/resource.d/heartbeat/pgsql").exists()
            && !skip_or_fail("resource-agents is not installed (tests/setup/install-deps.sh installs it)"))
    {
        return;
    }
    let mut loaded = hastack::config::parse("lab.toml", hastack::lab::LAB_TOML).unwrap();
    let xml = clusterlabs::render_cib(&mut loaded, clusterlabs::Agents::Clusterlabs).unwrap();
    let dir = std::env::temp_dir().join(format!("hst-clcib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cib.xml");
    std::fs::write(&file, &xml).unwrap();
    let verdict = hastack::config::simulate::verify(&file);
    let _ = std::fs::remove_dir_all(&dir);
    let verdict = verdict.unwrap();
    assert!(verdict.ok, "crm_verify refused the ClusterLabs CIB:\n{}\n{xml}", verdict.messages);

    let mut types: Vec<String> = xml
        .lines()
        .filter(|l| l.contains("<primitive ") && l.contains("provider=\"heartbeat\""))
        .filter_map(|l| l.split("type=\"").nth(1)?.split('"').next().map(str::to_string))
        .collect();
    types.sort();
    assert_eq!(types, ["Filesystem", "IPaddr2", "IPaddr2", "nginx", "pgsql", "tomcat"], "{xml}");
    assert_eq!(xml.matches("provider=\"hastack\"").count(), 2, "haproxy and activemq stay hastack's:\n{xml}");

    for r in &loaded.cluster.resources {
        let ps: Vec<&Primitive> = match r {
            Resource::Primitive(p) => vec![p],
            Resource::Group(g) => g.members.iter().collect(),
            Resource::Clone(c) => vec![&c.child],
        };
        for p in ps.iter().filter(|p| p.class == Class::Ocf(clusterlabs::PROVIDER)) {
            let declared = declared_params(&p.agent);
            for (name, _) in &p.params {
                assert!(declared.contains(name), "{}: ocf:heartbeat:{} declares no '{name}'", p.id, p.agent);
            }
        }
        // fence_legacy passes `plugin` to `stonith -t`, every other name as an environment
        // variable of `stonith -E`, which reads the names `stonith -t apcsmart -n` lists.
        for p in ps.iter().filter(|p| p.class == Class::Stonith) {
            let glue = sh("stonith", &["-t", clusterlabs::GLUE_PLUGIN, "-n"]);
            let glue: Vec<&str> = glue.split_whitespace().collect();
            for (name, _) in p.params.iter().filter(|(n, _)| n != "plugin" && !n.starts_with("pcmk_")) {
                assert!(glue.contains(&name.as_str()), "{}: the apcsmart plugin takes no '{name}' ({glue:?})", p.id);
            }
        }
    }
    // One fence_legacy device per node, on the other node's cable (/dev/ttyS0 in lab.toml), its
    // hostlist and pcmk_host_list the node; fence_ups appears nowhere.
    assert!(!xml.contains("fence_ups"), "{xml}");
    for node in ["node1", "node2"] {
        let id = format!("fence-{node}");
        let start = xml.find(&format!("<primitive id=\"{id}\"")).unwrap_or_else(|| panic!("no {id}:\n{xml}"));
        let end = start + xml[start..].find("</primitive>").unwrap();
        let device = &xml[start..end];
        assert!(device.contains(r#"class="stonith" type="fence_legacy""#), "{device}");
        for (name, value) in
            [("plugin", "apcsmart"), ("ttydev", "/dev/ttyS0"), ("hostlist", node), ("pcmk_host_list", node)]
        {
            assert!(
                device.contains(&format!("name=\"{name}\" value=\"{value}\"")),
                "{name}={value} missing:\n{device}"
            );
        }
        assert!(
            xml.contains(&format!("rsc=\"{id}\" node=\"{node}\" score=\"-INFINITY\"")),
            "{id} must not run on {node}"
        );
    }
}
