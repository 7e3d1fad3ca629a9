//! `activemq` as a promotable clone (the warm standby, README "activemq") against Debian's
//! ActiveMQ 5.17: the store on a loop-device ext4 that the test mounts (the partition is here)
//! and unmounts (it left for the other node), its mount point root's, mode 0755.

use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use super::activemq::{available, orders, receive_all, send_persistent, Broker};
use super::*;

/// A broker whose store lives on a partition, with KahaDB's locker retrying every 100 ms.
struct Standby {
    b: Broker,
    part: Partition,
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl Standby {
    /// The partition is left mounted (the broker's data directory made on it, the broker's).
    fn new() -> Standby {
        let dir = service_tempdir("activemq");
        let mount = dir.path().join("part");
        std::fs::create_dir(&mount).unwrap();
        let part = Partition::new(&mount);
        let b = Broker::with_data(&mount.join("data"), dir.path());
        let xml = b.conf.join("activemq.xml");
        let text = std::fs::read_to_string(&xml).unwrap().replace(
            r#"<kahaDB directory="${activemq.data}/kahadb"/>"#,
            r#"<kahaDB directory="${activemq.data}/kahadb"><locker><shared-file-locker lockAcquireSleepInterval="100"/></locker></kahaDB>"#,
        );
        assert!(text.contains("shared-file-locker"));
        std::fs::write(&xml, text).unwrap();
        Standby { b, part, mount, _dir: dir }
    }

    fn agent(&self) -> AgentRun {
        self.b.agent().meta("promotable", "true").meta("promoted_max", "1").meta("clone_max", "2")
    }

    fn mount(&self) {
        self.part.fs.run("start").expect(0);
    }

    /// The partition leaves this node: the filesystem agent's stop fails if anything still uses it.
    fn unmount(&self) {
        self.part.fs.run("stop").expect(0);
        assert!(!self.b.data.exists(), "{} still there after the unmount", self.b.data.display());
    }

    fn serving(&self) -> bool {
        [self.b.stomp_port, self.b.openwire_port].iter().any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
    }

    /// The JVM the instance's state file names, if it lives.
    fn jvm(&self) -> Option<i32> {
        let line = std::fs::read_to_string(hastack::sys::identity::state_file("activemq", &self.b.name)).ok()?;
        let pid: i32 = line.split_whitespace().next()?.parse().ok()?;
        hastack::sys::proc::stat(pid).filter(|s| s.comm == "java" && s.state != 'Z').map(|_| pid)
    }

    fn waiter_file(&self) -> PathBuf {
        hastack::sys::identity::state_file("activemq", &self.b.name).with_extension("waiter")
    }

    fn lock_file(&self) -> PathBuf {
        self.b.data.join("kahadb/lock")
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        // The waiter and the JVM, whatever their state; the partition and its device follow.
        let _ = self.agent().timeout_ms(60000).run("stop");
    }
}

fn ready() -> bool {
    available() && need_program("mkfs.ext4", "e2fsprogs")
}

/// Start with the partition away: the JVM waits in KahaDB's locker and serves nothing (0); the
/// partition mounted, promote returns once it serves (8 at every depth); demote stops it and
/// releases the store (0: the waiter), and once the partition has left, the waiter starts the
/// next standby JVM, which a later promote finds holding every message sent before the demote.
#[test]
fn activemq_standby_waits_for_its_partition_and_serves_once_promoted() {
    if !ready() {
        return;
    }
    let s = Standby::new();
    let a = s.agent();
    s.unmount();
    a.clone().depth(10).run("validate-all").expect(0);
    a.run("monitor").expect(7);
    a.run("start").expect(0);
    let standby = s.jvm().expect("start left a standby JVM");
    assert!(!s.serving(), "a standby serves");
    a.clone().recurring().run("monitor").expect(0);
    a.run("start").expect(0);
    assert_eq!(s.jvm(), Some(standby), "a second start launched another JVM");

    s.mount();
    a.run("promote").expect(0);
    assert_eq!(s.jvm(), Some(standby), "promote did not use the warm JVM");
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(8);
    }
    a.run("promote").expect(0);
    send_persistent(&s.b, 50);

    a.run("demote").expect(0);
    assert!(!s.serving(), "still serving after the demote");
    assert!(hastack::sys::proc::stat(standby).is_none_or(|st| st.state == 'Z'), "the promoted JVM still runs");
    assert_eq!(hastack::sys::locks::lock_holder(&s.lock_file()), None, "the store is still locked");
    // The partition is still here: no JVM yet, the waiter answers for the standby.
    assert!(s.waiter_file().exists(), "demote left no waiter");
    assert_eq!(s.jvm(), None, "a standby JVM started while the partition is mounted here");
    a.clone().recurring().run("monitor").expect(0);
    a.run("demote").expect(0);

    s.unmount();
    wait_for("the waiter to start the standby JVM", Duration::from_secs(30), || s.jvm().is_some());
    let next = s.jvm().unwrap();
    assert_ne!(next, standby);
    wait_for("the waiter to exit", Duration::from_secs(10), || !s.waiter_file().exists());
    a.clone().recurring().run("monitor").expect(0);
    assert!(!s.serving());

    s.mount();
    a.run("promote").expect(0);
    assert_eq!(s.jvm(), Some(next));
    a.clone().depth(20).recurring().run("monitor").expect(8);
    assert_eq!(receive_all(&s.b, 50), orders(50));

    a.run("stop").expect(0);
    a.run("monitor").expect(7);
    assert!(!s.serving());
    a.run("stop").expect(0);
    s.unmount();
}

/// A standby must never serve a store of this node's root filesystem: a data directory its user
/// could create while the partition is away, or one that exists on the root filesystem, is
/// refused by name (2: a fact of this node); a broker: URI (whose locker retries every 10 s) and
/// promoted-max 2 are refused everywhere (6).
#[test]
fn activemq_standby_refuses_a_store_it_could_make_on_the_root_filesystem() {
    if !ready() {
        return;
    }
    let s = Standby::new();
    let a = s.agent();
    s.unmount();
    let mount = s.mount.to_str().unwrap();
    sh("chown", &["activemq:", mount]);
    a.clone().depth(10).run("validate-all").expect(2).reason_contains("parameter 'data_dir'");
    let refused = a.run("start");
    refused
        .expect(2)
        .reason_contains("parameter 'data_dir'")
        .reason_contains(&format!("user 'activemq' could create it in {mount}"));
    assert!(!s.b.data.exists(), "the refused start made the store");
    a.run("monitor").expect(7);
    sh("chown", &["root:", mount]);
    a.clone().depth(10).run("validate-all").expect(0);

    // An existing data directory on the root filesystem (made by hand under the mount point).
    std::fs::create_dir(&s.b.data).unwrap();
    sh("chown", &["activemq:", s.b.data.to_str().unwrap()]);
    a.run("start").expect(2).reason_contains("on the root filesystem");
    std::fs::remove_dir(&s.b.data).unwrap();

    s.b.uri_agent()
        .meta("promotable", "true")
        .run("validate-all")
        .expect(6)
        .reason_contains("parameter 'broker_uri' cannot configure a warm standby");
    a.clone().meta("promoted_max", "2").run("start").expect(6).reason_contains("promoted-max=1");
    // A primitive has no roles: promote and demote are not implemented (3), as ocf-tester expects.
    s.b.agent().run("promote").expect(3);
    s.b.agent().run("demote").expect(3);
    a.run("monitor").expect(7);
}

/// A standby JVM that dies is not running (7), and the next start replaces it; a start where
/// the partition is mounted leaves only the waiter (0), and promote there starts the broker
/// cold (8); a stop ends the waiter too.
#[test]
fn activemq_standby_that_dies_is_not_running_and_promote_without_one_starts_cold() {
    if !ready() {
        return;
    }
    let s = Standby::new();
    let a = s.agent();
    s.unmount();
    a.run("start").expect(0);
    let jvm = s.jvm().unwrap();
    kill9_session(jvm);
    a.clone().recurring().run("monitor").expect(7);
    a.run("stop").expect(0);
    a.run("start").expect(0);
    assert!(s.jvm().is_some_and(|p| p != jvm));
    a.run("stop").expect(0);
    a.run("monitor").expect(7);

    s.mount();
    a.run("start").expect(0);
    assert_eq!(s.jvm(), None, "a JVM started with the partition mounted here");
    let waiter = hastack::sys::identity::load_live_identity(&s.waiter_file()).expect("no waiter");
    a.clone().recurring().run("monitor").expect(0);
    // A stop ends the waiter.
    a.run("stop").expect(0);
    assert!(!waiter.is_alive(), "stop left the waiter");
    a.run("monitor").expect(7);

    a.run("start").expect(0);
    a.run("promote").expect(0);
    a.clone().depth(10).recurring().run("monitor").expect(8);
    assert!(!s.waiter_file().exists(), "promote left the waiter");
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
    s.unmount();
}

/// The partition mounted here without a promote (the filesystem started, the promote not yet
/// or never): the standby takes its store and serves, monitor still answers 0 (unpromoted);
/// a filesystem stop with `force_unmount` (its default) ends the broker cleanly (SIGTERM) and
/// unmounts, and monitor then answers 7 for Pacemaker to restart the standby.
#[test]
fn activemq_standby_that_took_its_store_unpromoted_yields_to_a_forced_unmount() {
    if !ready() {
        return;
    }
    let s = Standby::new();
    let a = s.agent();
    s.unmount();
    a.run("start").expect(0);
    let jvm = s.jvm().unwrap();
    s.mount();
    wait_for("the standby to take its store", Duration::from_secs(60), || s.serving());
    a.clone().recurring().run("monitor").expect(0);
    s.part.fs.clone().param("force_unmount", "true").run("stop").expect(0);
    assert!(!s.b.data.exists(), "not unmounted");
    wait_for("the broker to exit", Duration::from_secs(30), || {
        hastack::sys::proc::stat(jvm).is_none_or(|st| st.state == 'Z')
    });
    a.clone().recurring().run("monitor").expect(7);
    a.run("stop").expect(0);
    a.run("start").expect(0);
    assert!(s.jvm().is_some_and(|p| p != jvm));
    a.run("stop").expect(0);
}

/// The roles of `rsc`'s instances as crm_mon shows them: (role, node) pairs.
fn roles(pcmk: &crate::support::pacemaker::Pacemaker, rsc: &str) -> Vec<(String, String)> {
    let out = pcmk.tool(1, "crm_mon", &["--one-shot", "--output-as=xml"]);
    let mut found = Vec::new();
    let mut lines = out.stdout.lines();
    while let Some(l) = lines.next() {
        if !l.contains(&format!("<resource id=\"{rsc}\"")) || !l.contains("active=\"true\"") {
            continue;
        }
        let role = l.split("role=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("").to_string();
        if let Some(node) = lines.next().and_then(|n| n.split("<node name=\"").nth(1)).and_then(|n| n.split('"').next())
        {
            found.push((role, node.to_string()));
        }
    }
    found.sort();
    found
}

/// The JVM a node's instance state names, if it lives (the nodes share the PID namespace).
fn node_jvm(pcmk: &crate::support::pacemaker::Pacemaker, node: usize) -> Option<i32> {
    let out = pcmk.tool(node, "cat", &["/run/hastack/activemq-broker.id"]);
    let pid: i32 = out.stdout.split_whitespace().next()?.parse().ok()?;
    hastack::sys::proc::stat(pid).filter(|s| s.comm == "java" && s.state != 'Z').map(|_| pid)
}

/// Runs `job` in a thread inside the network namespace `ns` (a socket keeps its thread's).
fn in_netns<T: Send>(ns: &str, job: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
            // SAFETY: setns on this thread with a valid namespace fd.
            assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) }, 0);
            job()
        })
        .join()
        .unwrap()
    })
}

/// Under the real Pacemaker: a filesystem primitive and the broker as a promotable clone, the
/// Promoted role colocated with the filesystem and promoted after it. The node without the
/// partition runs the warm JVM; moving the filesystem demotes the broker, moves the partition,
/// and promotes that same JVM, which serves the messages sent before; the old node's waiter then
/// starts its next standby JVM.
#[test]
fn activemq_standby_fails_over_under_pacemaker() {
    if !ready()
        || !need_program("corosync", "corosync")
        || !need_program("pacemakerd", "pacemaker")
        || !need_program("nsenter", "util-linux")
    {
        return;
    }
    let dev = LoopDevice::new(256, Some(&["mkfs.ext4", "-q", "-F"]));
    let dir = service_tempdir("activemq");
    let mount = dir.path().join("part");
    std::fs::create_dir(&mount).unwrap();
    // The broker's directory on the partition, made here, unmounted before the nodes start
    // (their mount namespaces copy this one's mounts).
    sh("mount", &[&dev.device, mount.to_str().unwrap()]);
    let b = Broker::with_data(&mount.join("data"), dir.path());
    sh("umount", &[mount.to_str().unwrap()]);
    let xml = b.conf.join("activemq.xml");
    let text = std::fs::read_to_string(&xml).unwrap().replace(
        r#"<kahaDB directory="${activemq.data}/kahadb"/>"#,
        r#"<kahaDB directory="${activemq.data}/kahadb"><locker><shared-file-locker lockAcquireSleepInterval="100"/></locker></kahaDB>"#,
    );
    std::fs::write(&xml, text).unwrap();

    let lan = crate::support::Lan::new(2);
    let pcmk = crate::support::pacemaker::Pacemaker::start(&lan, 2);
    let resources = format!(
        r#"<resources>
<primitive id="fs" class="ocf" provider="hastack" type="filesystem">
  <instance_attributes id="fs-params">
    <nvpair id="fs-device" name="device" value="{dev}"/>
    <nvpair id="fs-directory" name="directory" value="{mount}"/>
    <nvpair id="fs-fstype" name="fstype" value="ext4"/>
  </instance_attributes>
  <operations><op id="fs-monitor" name="monitor" interval="20s" timeout="40s"/></operations>
</primitive>
<clone id="broker-clone">
  <meta_attributes id="broker-clone-meta">
    <nvpair id="bc-promotable" name="promotable" value="true"/>
    <nvpair id="bc-promoted-max" name="promoted-max" value="1"/>
  </meta_attributes>
  <primitive id="broker" class="ocf" provider="hastack" type="activemq">
    <instance_attributes id="broker-params">
      <nvpair id="b-config" name="config" value="{config}"/>
      <nvpair id="b-data" name="data_dir" value="{data}"/>
      <nvpair id="b-stomp" name="stomp_port" value="{stomp}"/>
      <nvpair id="b-java" name="java_opts" value="-Xms32m -Xmx128m -XX:TieredStopAtLevel=1"/>
    </instance_attributes>
    <operations>
      <op id="b-start" name="start" interval="0" timeout="180s"/>
      <op id="b-promote" name="promote" interval="0" timeout="180s"/>
      <op id="b-demote" name="demote" interval="0" timeout="60s"/>
      <op id="b-stop" name="stop" interval="0" timeout="60s"/>
      <op id="b-mon-promoted" name="monitor" interval="9s" role="Promoted" timeout="30s"/>
      <op id="b-mon-unpromoted" name="monitor" interval="11s" role="Unpromoted" timeout="30s"/>
    </operations>
  </primitive>
</clone>
</resources>"#,
        dev = dev.device,
        mount = mount.display(),
        config = xml.display(),
        data = b.data.display(),
        stomp = b.stomp_port,
    );
    let constraints = r#"<constraints>
<rsc_location id="fs-on-node1" rsc="fs" node="node1" score="100"/>
<rsc_order id="fs-then-promote" first="fs" first-action="start" then="broker-clone" then-action="promote"/>
<rsc_colocation id="promoted-with-fs" rsc="broker-clone" rsc-role="Promoted" with-rsc="fs" score="INFINITY"/>
</constraints>"#;
    pcmk.tool(1, "cibadmin", &["--replace", "--scope", "resources", "--xml-text", &resources]).expect(0);
    pcmk.tool(1, "cibadmin", &["--replace", "--scope", "constraints", "--xml-text", constraints]).expect(0);
    let want =
        |p: &str, u: &str| vec![("Promoted".to_string(), p.to_string()), ("Unpromoted".to_string(), u.to_string())];
    wait_for("the broker promoted on node1, a standby on node2", Duration::from_secs(240), || {
        roles(&pcmk, "broker") == want("node1", "node2")
    });
    let warm = node_jvm(&pcmk, 2).expect("no standby JVM on node2");
    let listening = pcmk.tool(2, "ss", &["-Hltn", &format!("sport = :{}", b.stomp_port)]);
    assert!(listening.stdout.trim().is_empty(), "the standby listens: {}", listening.stdout);
    in_netns(pcmk.nodes[0].ns.as_str(), || send_persistent(&b, 20));

    pcmk.tool(1, "crm_resource", &["--ban", "--resource", "fs", "--node", "node1"]).expect(0);
    wait_for("the broker promoted on node2", Duration::from_secs(240), || {
        roles(&pcmk, "broker").contains(&("Promoted".to_string(), "node2".to_string()))
    });
    assert_eq!(node_jvm(&pcmk, 2), Some(warm), "node2 was promoted without its warm JVM");
    assert_eq!(in_netns(pcmk.nodes[1].ns.as_str(), || receive_all(&b, 20)), orders(20));
    wait_for("node1's waiter to start its standby JVM", Duration::from_secs(240), || {
        node_jvm(&pcmk, 1).is_some() && roles(&pcmk, "broker") == want("node2", "node1")
    });
}
