//! `rabbitmq` against Debian's RabbitMQ 3.10: each test runs its own node (own AMQP,
//! distribution and epmd ports, no plugins) with its data in a temporary directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use hastack::net::amqp::Amqp;
use hastack::ocf::Deadline;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

pub fn available() -> bool {
    need_root("rabbitmq tests")
        && (Path::new(SERVER).exists() || !skip_or_fail("RabbitMQ (package rabbitmq-server) is not installed"))
}

pub struct Node {
    _dir: Option<tempfile::TempDir>,
    pub data: PathBuf,
    pub run: PathBuf,
    pub port: u16,
    pub dist_port: u16,
    pub epmd_port: u16,
    pub name: String,
    pub nodename: String,
}

impl Node {
    fn new() -> Node {
        let dir = service_tempdir("rabbitmq");
        let root = dir.path().to_path_buf();
        let mut n = Self::with_data(&root.join("data"), &root);
        n._dir = Some(dir);
        n
    }

    pub fn with_data(data: &Path, run: &Path) -> Node {
        std::fs::create_dir_all(data).unwrap();
        sh("chown", &["rabbitmq:", data.to_str().unwrap()]);
        std::fs::write(run.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(run.join("rabbitmq.conf"), "log.console = true\n").unwrap();
        Node {
            _dir: None,
            data: data.to_path_buf(),
            run: run.to_path_buf(),
            port: free_port(),
            dist_port: free_port(),
            epmd_port: free_port(),
            name: unique_name("rmq"),
            nodename: "rabbit@localhost".into(),
        }
    }

    pub fn agent(&self) -> AgentRun {
        AgentRun::new("rabbitmq")
            .env("OCF_RESOURCE_INSTANCE", &self.name)
            .param("data_dir", self.data.display())
            .param("nodename", &self.nodename)
            .param("port", self.port)
            .param("listen_address", "127.0.0.1")
            .param("dist_port", self.dist_port)
            .param("epmd_port", self.epmd_port)
            .param("config", self.run.join("rabbitmq.conf").display())
            .param("enabled_plugins", self.run.join("enabled_plugins").display())
            .param("log", self.run.join("node.log").display())
            .param("probe_timeout", 3)
            .timeout_ms(120000)
    }

    fn amqp(&self) -> Amqp {
        Amqp::connect(
            &format!("127.0.0.1:{}", self.port),
            "guest",
            "guest",
            "/",
            Deadline::after(Duration::from_secs(20)),
        )
        .unwrap()
    }

    /// The Erlang VM of the node.
    pub fn vm(&self) -> i32 {
        let dir = self.data.to_string_lossy().to_string();
        hastack::sys::proc::all_pids()
            .into_iter()
            .find(|p| {
                hastack::sys::proc::stat(*p).is_some_and(|s| s.comm.starts_with("beam") && s.state != 'Z')
                    && std::fs::read(format!("/proc/{p}/environ"))
                        .is_ok_and(|e| String::from_utf8_lossy(&e).contains(&format!("RABBITMQ_MNESIA_BASE={dir}\0")))
            })
            .expect("the node's VM")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.agent().timeout_ms(30000).run("stop");
        // epmd daemonizes out of the node's session and stays (it is shared in production);
        // the test's own epmd, on the test's own port, goes with the test.
        for pid in hastack::sys::listeners::port_holders(self.epmd_port) {
            signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

#[test]
fn rabbitmq_start_monitor_stop_are_idempotent() {
    if !available() {
        return;
    }
    let n = Node::new();
    let a = n.agent();
    a.run("monitor").expect(7);
    a.run("start").expect(0);
    n.amqp().close(Deadline::after(Duration::from_secs(5)));
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(0);
    }
    a.run("start").expect(0);
    let vm = n.vm();
    a.run("stop").expect(0);
    assert!(!hastack::sys::proc::is_alive(vm));
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn rabbitmq_faults_are_reported_and_recovered() {
    if !available() {
        return;
    }
    let n = Node::new();
    let a = n.agent();
    let missing = a.clone().param("data_dir", n.run.join("nowhere").display());
    missing.run("start").expect(5).reason_contains("does not exist");
    missing.run("monitor").expect(7);
    let squatter = TcpListener::bind(("127.0.0.1", n.port)).unwrap();
    a.run("start").expect(1).reason_contains("already in use");
    drop(squatter);
    // A broken node-local rabbitmq.conf: banned on this node (2), the peer has its own.
    let conf = n.run.join("rabbitmq.conf");
    std::fs::write(&conf, "this is not = a valid setting\n").unwrap();
    let broken = a.run("start");
    broken.expect(2).reason_contains(&format!(
        "node-local configuration file {} rejected by the node: banned on this node: ",
        conf.display()
    ));
    assert!(broken.elapsed < Duration::from_secs(90), "{:?}", broken.elapsed);
    std::fs::write(&conf, "log.console = true\n").unwrap();
    // A rabbitmq.conf in the data directory (on the replicated partition) with a setting
    // RabbitMQ does not know: wrong on every node (6).
    let shared = n.data.join("rabbitmq.conf");
    std::fs::write(&shared, "log.console = true\nno_such.setting = 1\n").unwrap();
    a.clone().param("config", shared.display()).run("start").expect(6).reason_contains(&format!(
        "configuration file {} on the replicated partition rejected by the node: fatal everywhere: ",
        shared.display()
    ));
    std::fs::remove_file(&shared).unwrap();

    a.run("start").expect(0);
    let vm = n.vm();
    freeze(vm);
    for depth in [0, 10] {
        let m = a.clone().depth(depth).recurring().timeout_ms(10000).run("monitor");
        m.expect(1);
        assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    }
    signal(vm, nix::sys::signal::Signal::SIGCONT);
    a.clone().depth(20).run("monitor").expect(0);
    let sid = hastack::sys::proc::stat(vm).unwrap().session;
    kill9_session(sid);
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);
    freeze(n.vm());
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn rabbitmq_refuses_a_data_directory_another_node_uses() {
    if !available() {
        return;
    }
    let n = Node::new();
    // Another node (another name and ports) on the same data directory.
    let mut other = Node::with_data(&n.data, &n.run);
    other.nodename = "other@localhost".into();
    let b = other.agent();
    b.run("start").expect(0);
    let refused = n.agent().run("start");
    refused.expect(1).reason_contains("in use by another running node");
    n.agent().run("monitor").expect(7);
    b.clone().depth(20).run("monitor").expect(0);
    b.run("stop").expect(0);
}

/// Declares the durable queue and restarts the broker cleanly, as a queue declared at deployment
/// is. RabbitMQ keeps queue declarations in Mnesia, whose log write is not synchronous: a kill -9
/// within moments of the declaration can lose the queue itself (the broker then recovers 0 queues
/// and its confirmed messages are orphaned). That is the broker's contract, not the agent's.
fn declare_queue_before_the_fault(n: &Node, a: &AgentRun) {
    let mut c = n.amqp();
    c.open_confirm_channel("orders", Deadline::after(Duration::from_secs(60))).unwrap();
    c.close(Deadline::after(Duration::from_secs(10)));
    a.run("stop").expect(0);
    a.run("start").expect(0);
}

fn orders(count: usize) -> std::collections::BTreeSet<Vec<u8>> {
    (0..count).map(|i| format!("order {i}").into_bytes()).collect()
}

fn publish(n: &Node, count: usize) {
    let mut c = n.amqp();
    let d = Deadline::after(Duration::from_secs(120));
    c.open_confirm_channel("orders", d).unwrap();
    for i in 0..count {
        c.publish_confirmed("orders", format!("order {i}").as_bytes(), d).unwrap();
    }
}

/// Every message left in the queue, which is empty afterwards.
fn drain(n: &Node) -> std::collections::BTreeSet<Vec<u8>> {
    let mut c = n.amqp();
    let d = Deadline::after(Duration::from_secs(60));
    c.open_confirm_channel("orders", d).unwrap();
    let mut got = std::collections::BTreeSet::new();
    while let Some(body) = c.get("orders", d).unwrap() {
        assert!(got.insert(body), "a message delivered twice");
    }
    got
}

#[test]
fn rabbitmq_loses_no_confirmed_message_on_kill9() {
    if !available() {
        return;
    }
    let n = Node::new();
    let a = n.agent();
    a.run("start").expect(0);
    declare_queue_before_the_fault(&n, &a);
    publish(&n, 200);
    let sid = hastack::sys::proc::stat(n.vm()).unwrap().session;
    kill9_session(sid);
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(drain(&n), orders(200));
}

#[test]
fn rabbitmq_loses_no_confirmed_message_across_kill9_and_remount() {
    if !available() || !need_program("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let dir = service_tempdir("rabbitmq");
    let mnt = dir.path().join("part");
    let mut part = Partition::new(&mnt);
    let n = Node::with_data(&mnt.join("data"), dir.path());
    let a = n.agent();
    a.run("start").expect(0);
    declare_queue_before_the_fault(&n, &a);
    publish(&n, 200);
    let sid = hastack::sys::proc::stat(n.vm()).unwrap().session;
    kill9_session(sid);
    a.clone().recurring().run("monitor").expect(7);
    part.remount();
    a.run("start").expect(0);
    assert_eq!(drain(&n), orders(200));
    a.run("stop").expect(0);
}

#[test]
fn rabbitmq_passes_ocf_tester() {
    if !available() || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let n = Node::new();
    ocf_tester(
        "rabbitmq",
        &[
            ("data_dir", n.data.display().to_string()),
            ("port", n.port.to_string()),
            ("listen_address", "127.0.0.1".into()),
            ("dist_port", n.dist_port.to_string()),
            ("epmd_port", n.epmd_port.to_string()),
            ("config", n.run.join("rabbitmq.conf").display().to_string()),
            ("enabled_plugins", n.run.join("enabled_plugins").display().to_string()),
            ("log", n.run.join("node.log").display().to_string()),
        ],
    );
}
