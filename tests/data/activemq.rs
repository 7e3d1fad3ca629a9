//! `activemq` against Debian's ActiveMQ 5.17: each test writes its own broker configuration
//! (OpenWire and STOMP on its own loopback ports) and keeps the store in a temporary directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;
use hastack::net::stomp::{encode, Stomp};
use hastack::ocf::Deadline;

const JAR: &str = "/usr/share/activemq/bin/activemq.jar";

pub fn available() -> bool {
    need_root("activemq tests")
        && (Path::new(JAR).exists() || !skip_or_fail("ActiveMQ (package activemq) is not installed"))
}

/// One test broker (the lab application's tests run it too).
pub struct Broker {
    _dir: Option<tempfile::TempDir>,
    pub conf: PathBuf,
    pub data: PathBuf,
    pub run: PathBuf,
    pub openwire_port: u16,
    pub stomp_port: u16,
    pub name: String,
}

fn broker_xml(openwire: u16, stomp: u16) -> String {
    format!(
        r#"<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="hst" dataDirectory="${{activemq.data}}">
    <persistenceAdapter><kahaDB directory="${{activemq.data}}/kahadb"/></persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:{openwire}"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{stomp}"/>
    </transportConnectors>
  </broker>
</beans>
"#
    )
}

const LOG4J: &str = "log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d | %-5p | %m%n
";

impl Broker {
    pub fn new() -> Broker {
        let dir = service_tempdir("activemq");
        let root = dir.path().to_path_buf();
        let mut b = Self::with_data(&root.join("data"), &root);
        b._dir = Some(dir);
        b
    }

    pub fn with_data(data: &Path, run: &Path) -> Broker {
        let conf = run.join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::create_dir_all(data).unwrap();
        let (openwire_port, stomp_port) = (free_port(), free_port());
        std::fs::write(conf.join("activemq.xml"), broker_xml(openwire_port, stomp_port)).unwrap();
        std::fs::write(conf.join("log4j.properties"), LOG4J).unwrap();
        sh("chown", &["-R", "activemq:", data.to_str().unwrap()]);
        Broker {
            _dir: None,
            conf,
            data: data.to_path_buf(),
            run: run.to_path_buf(),
            openwire_port,
            stomp_port,
            name: unique_name("amq"),
        }
    }

    pub fn agent(&self) -> AgentRun {
        self.agent_without_configuration().param("config", self.conf.join("activemq.xml").display())
    }

    /// The parameters both configuration forms share (the store, the probes, the JVM).
    fn agent_without_configuration(&self) -> AgentRun {
        AgentRun::new("activemq")
            .env("OCF_RESOURCE_INSTANCE", &self.name)
            .param("data_dir", self.data.display())
            .param("stomp_port", self.stomp_port)
            .param("log", self.run.join("broker.log").display())
            .param("java_opts", "-Xms32m -Xmx128m -XX:TieredStopAtLevel=1")
            .param("probe_timeout", 3)
            .timeout_ms(120000)
    }

    /// The same broker configured by a `broker:` URI instead of activemq.xml (README "activemq"):
    /// its store in data_dir/hst/KahaDB, logging by the log4j.properties in `conf`.
    pub fn uri(&self) -> String {
        format!(
            "broker:(tcp://127.0.0.1:{},stomp://127.0.0.1:{})?useJmx=false&brokerName=hst",
            self.openwire_port, self.stomp_port
        )
    }

    pub fn uri_agent(&self) -> AgentRun {
        self.uri_agent_with(&self.uri())
    }

    pub fn uri_agent_with(&self, uri: &str) -> AgentRun {
        self.agent_without_configuration().param("broker_uri", uri).param("conf_dir", self.conf.display())
    }

    /// Another broker (its own ports), started as Debian's launcher would run it but not by this
    /// resource, on the data directory: serving STOMP on the returned port when it returns.
    pub fn foreign_broker(&self) -> (ChildGuard, u16) {
        let other_conf = self.run.join("other");
        std::fs::create_dir_all(&other_conf).unwrap();
        let other_stomp = free_port();
        std::fs::write(other_conf.join("activemq.xml"), broker_xml(free_port(), other_stomp)).unwrap();
        // java itself (not through runuser, which would leave it behind when the guard kills runuser).
        let user = nix::unistd::User::from_name("activemq").unwrap().unwrap();
        let other = ChildGuard(
            Command::new("java")
                .uid(user.uid.as_raw())
                .gid(user.gid.as_raw())
                .arg("-Xmx128m")
                .arg(format!("-Dactivemq.data={}", self.data.display()))
                .arg(format!("-Dactivemq.base={}", self.data.display()))
                .arg("-Dactivemq.home=/usr/share/activemq")
                .args(["-jar", JAR, "start"])
                .arg(format!("xbean:file:{}", other_conf.join("activemq.xml").display()))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("the other broker", Duration::from_secs(180), || {
            Stomp::connect(&format!("127.0.0.1:{other_stomp}"), None, Deadline::after(Duration::from_secs(2))).is_ok()
        });
        (other, other_stomp)
    }

    fn stomp(&self) -> Stomp {
        Stomp::connect(&format!("127.0.0.1:{}", self.stomp_port), None, Deadline::after(Duration::from_secs(20)))
            .unwrap()
    }

    pub fn pid(&self) -> i32 {
        std::fs::read_to_string(hastack::sys::identity::state_file("activemq", &self.name))
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.agent().timeout_ms(30000).run("stop");
        let _ = self.uri_agent().timeout_ms(30000).run("stop");
    }
}

#[test]
fn activemq_start_monitor_stop_are_idempotent() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let a = b.agent();
    a.run("monitor").expect(7);
    a.run("start").expect(0);
    // Ready means ready: a client connects at once.
    drop(b.stomp());
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(0);
    }
    assert!(b.data.join("kahadb").is_dir(), "the store is in data_dir");
    a.run("start").expect(0);
    a.run("stop").expect(0);
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn activemq_faults_are_reported_and_recovered() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let a = b.agent();

    let missing = a.clone().param("data_dir", b.run.join("nowhere").display());
    missing.run("start").expect(5).reason_contains("does not exist");
    missing.run("monitor").expect(7);
    // A data directory the broker's user cannot write: 4, before any JVM starts.
    sh("chown", &["root:", b.data.to_str().unwrap()]);
    a.run("start").expect(4).reason_contains("not writable");
    sh("chown", &["activemq:", b.data.to_str().unwrap()]);
    let squatter = TcpListener::bind(("127.0.0.1", b.stomp_port)).unwrap();
    a.run("start").expect(1).reason_contains("already in use");
    drop(squatter);
    // A broken node-local configuration: banned on this node (2), the peer has its own.
    let xml = b.conf.join("activemq.xml");
    let good = std::fs::read_to_string(&xml).unwrap();
    let bad = good.replace("</broker>", "<noSuchElement/></broker>");
    std::fs::write(&xml, &bad).unwrap();
    let broken = a.run("start");
    broken
        .expect(2)
        .reason_contains(&format!("node-local configuration file {} rejected by the broker: banned", xml.display()))
        .reason_contains("Exception");
    assert!(broken.elapsed < Duration::from_secs(60), "{:?}", broken.elapsed);
    std::fs::write(&xml, &good).unwrap();
    // The same configuration kept in the data directory, on the replicated partition: wrong on
    // every node (6).
    let shared = b.data.join("conf");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("activemq.xml"), &bad).unwrap();
    a.clone().param("config", shared.join("activemq.xml").display()).run("start").expect(6).reason_contains(&format!(
        "configuration file {} on the replicated partition rejected by the broker: fatal everywhere: ",
        shared.join("activemq.xml").display()
    ));
    a.run("monitor").expect(7);

    a.run("start").expect(0);
    let pid = b.pid();
    freeze(pid);
    for depth in [0, 10] {
        let m = a.clone().depth(depth).recurring().timeout_ms(10000).run("monitor");
        m.expect(1);
        assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    }
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    a.clone().depth(20).run("monitor").expect(0);
    kill9_session(pid);
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);
    freeze(b.pid());
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn activemq_refuses_a_store_another_broker_holds() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let a = b.agent();
    // Another broker (its own ports) on the same data directory, started as Debian's launcher
    // would run it but not by this resource.
    let (other, other_stomp) = b.foreign_broker();
    let refused = a.run("start");
    refused.expect(1).reason_contains("in use by another running broker");
    assert!(refused.elapsed < Duration::from_secs(30));
    a.run("monitor").expect(7);
    // The other broker still serves from its store.
    let mut s =
        Stomp::connect(&format!("127.0.0.1:{other_stomp}"), None, Deadline::after(Duration::from_secs(10))).unwrap();
    s.round_trip("check", "still here", Deadline::after(Duration::from_secs(20))).unwrap();
    drop(other);
}

/// Sends `n` persistent messages, each acknowledged by a receipt.
pub fn send_persistent(b: &Broker, n: usize) {
    let mut s = b.stomp();
    let d = Deadline::after(Duration::from_secs(120));
    for i in 0..n {
        let receipt = format!("r{i}");
        s.send_frame(
            &encode(
                "SEND",
                &[("destination", "/queue/orders"), ("persistent", "true"), ("receipt", &receipt)],
                &format!("order {i}"),
            ),
            d,
        )
        .unwrap();
        let f = s.read_frame(d).unwrap();
        assert_eq!((f.command.as_str(), f.headers.get("receipt-id")), ("RECEIPT", Some(&receipt)));
    }
}

/// The `n` messages the queue delivers, each once; then nothing more arrives within 2 s.
pub fn receive_all(b: &Broker, n: usize) -> std::collections::BTreeSet<String> {
    let mut s = b.stomp();
    let d = Deadline::after(Duration::from_secs(60));
    s.send_frame(&encode("SUBSCRIBE", &[("id", "1"), ("destination", "/queue/orders"), ("ack", "auto")], ""), d)
        .unwrap();
    let mut got = std::collections::BTreeSet::new();
    while got.len() < n {
        let f = s.read_frame(d).expect("all messages delivered");
        if f.command == "MESSAGE" {
            assert!(got.insert(f.body.clone()), "{:?} delivered twice", f.body);
        }
    }
    // The queue is empty now: a further MESSAGE within a bounded window is a duplicate or a stray.
    if let Ok(f) = s.read_frame(Deadline::after(Duration::from_secs(2))) {
        assert_ne!(f.command, "MESSAGE", "more than {n} messages: {:?}", f.body);
    }
    got
}

pub fn orders(n: usize) -> std::collections::BTreeSet<String> {
    (0..n).map(|i| format!("order {i}")).collect()
}

#[test]
fn activemq_loses_no_persistent_message_on_kill9() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let a = b.agent();
    a.run("start").expect(0);
    send_persistent(&b, 200);
    kill9_session(b.pid());
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(receive_all(&b, 200), orders(200));
}

#[test]
fn activemq_loses_no_persistent_message_across_kill9_and_remount() {
    if !available() || !need_program("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let dir = service_tempdir("activemq");
    let mnt = dir.path().join("part");
    let mut part = Partition::new(&mnt);
    let b = Broker::with_data(&mnt.join("data"), dir.path());
    let a = b.agent();
    a.run("start").expect(0);
    send_persistent(&b, 200);
    kill9_session(b.pid());
    a.clone().recurring().run("monitor").expect(7);
    part.remount();
    a.run("start").expect(0);
    assert_eq!(receive_all(&b, 200), orders(200));
    a.run("stop").expect(0);
}

#[test]
fn activemq_passes_ocf_tester() {
    if !available() || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let b = Broker::new();
    ocf_tester(
        "activemq",
        &[
            ("config", b.conf.join("activemq.xml").display().to_string()),
            ("data_dir", b.data.display().to_string()),
            ("stomp_port", b.stomp_port.to_string()),
            ("log", b.run.join("broker.log").display().to_string()),
            ("java_opts", "-Xms32m -Xmx128m -XX:TieredStopAtLevel=1".into()),
        ],
    );
}

/// `class_archive`: the first clean stop writes the archive (-XX:ArchiveClassesAtExit), the next
/// start maps it (-XX:SharedArchiveFile, the file in the JVM's memory maps); a relative path or a
/// directory the broker's user cannot write is refused by name before any JVM starts.
#[test]
fn activemq_class_archive_is_written_at_a_clean_stop_and_mapped_by_the_next_start() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let dir = b.run.join("cds");
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("broker.jsa");
    let a = b.agent().param("class_archive", archive.display());

    b.agent().param("class_archive", "broker.jsa").run("validate-all").expect(6).reason_contains("'class_archive'");
    a.run("start")
        .expect(4)
        .reason_contains("parameter 'class_archive'")
        .reason_contains("not writable by user 'activemq'");
    b.agent()
        .param("class_archive", b.run.join("no-such-dir/broker.jsa").display())
        .run("start")
        .expect(5)
        .reason_contains("parameter 'class_archive'");
    sh("chown", &["activemq:", dir.to_str().unwrap()]);

    a.run("start").expect(0);
    let cmdline = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
    assert!(
        cmdline(b.pid()).contains(&format!("-XX:ArchiveClassesAtExit={}", archive.display())),
        "{}",
        cmdline(b.pid())
    );
    assert!(!archive.exists(), "written before the broker exits");
    a.run("stop").expect(0);
    assert!(std::fs::metadata(&archive).is_ok_and(|m| m.len() > 0), "no archive written at the clean stop");

    a.run("start").expect(0);
    let pid = b.pid();
    assert!(cmdline(pid).contains(&format!("-XX:SharedArchiveFile={}", archive.display())), "{}", cmdline(pid));
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(maps.contains(archive.to_str().unwrap()), "the JVM did not map the archive");
    a.clone().depth(20).run("monitor").expect(0);
    a.run("stop").expect(0);
}

/// `broker_uri`: the broker configured by a `broker:` URI (no activemq.xml) runs its store on
/// data_dir (the agent adds dataDirectory), answers every monitor depth, keeps persistent
/// messages across a clean restart and a kill -9, and uses `class_archive` as the XML form does.
#[test]
fn activemq_from_a_broker_uri_keeps_its_store_on_data_dir() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let dir = b.run.join("cds");
    std::fs::create_dir_all(&dir).unwrap();
    sh("chown", &["activemq:", dir.to_str().unwrap()]);
    let archive = dir.join("broker.jsa");
    let a = b.uri_agent().param("class_archive", archive.display());
    a.run("validate-all").expect(0);
    a.run("monitor").expect(7);
    a.run("start").expect(0);
    let cmdline = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().replace('\0', " ");
    let launched = cmdline(b.pid());
    assert!(launched.contains(&format!("&dataDirectory={}", b.data.display())), "{launched}");
    assert!(!launched.contains("xbean:"), "{launched}");
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(0);
    }
    assert!(b.data.join("hst/KahaDB/lock").is_file(), "the store is not in data_dir/hst/KahaDB");
    a.run("start").expect(0);
    send_persistent(&b, 100);
    // A clean stop (it writes the class archive), a start that maps it.
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
    assert!(std::fs::metadata(&archive).is_ok_and(|m| m.len() > 0), "no archive written at the clean stop");
    a.run("start").expect(0);
    assert!(cmdline(b.pid()).contains(&format!("-XX:SharedArchiveFile={}", archive.display())));
    // And a power cut's kill -9: KahaDB recovers.
    kill9_session(b.pid());
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(receive_all(&b, 100), orders(100));
    a.run("stop").expect(0);
    a.run("stop").expect(0);
}

/// What the agent cannot use is refused before any JVM starts (6, naming `broker_uri`); what
/// ActiveMQ refuses fails the start at once with its words: an unknown option is the
/// parameter's fault (6), a transport this node's ActiveMQ lacks is node-local (2).
#[test]
fn activemq_refuses_a_broker_uri_it_cannot_use() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let xml = b.conf.join("activemq.xml");
    b.uri_agent()
        .param("config", xml.display())
        .run("start")
        .expect(6)
        .reason_contains("parameters 'config' and 'broker_uri' are both set");
    b.uri_agent_with(&format!("xbean:file:{}", xml.display()))
        .run("validate-all")
        .expect(6)
        .reason_contains("parameter 'broker_uri' must be an ActiveMQ broker URI starting with 'broker:'");
    b.uri_agent_with(&format!("{}&dataDirectory=/var/lib/activemq/data", b.uri()))
        .run("start")
        .expect(6)
        .reason_contains("parameter 'broker_uri' keeps the store in /var/lib/activemq/data, not in data_dir");
    b.uri_agent_with(&format!("{}&persistent=false", b.uri()))
        .run("start")
        .expect(6)
        .reason_contains("parameter 'broker_uri' sets persistent=false");
    b.uri_agent_with(&format!("broker:(tcp://127.0.0.1:{})", b.openwire_port))
        .run("start")
        .expect(6)
        .reason_contains(&format!("parameter 'broker_uri' has no STOMP connector on port {}", b.stomp_port));
    b.uri_agent().run("monitor").expect(7);

    let unknown = b.uri_agent_with(&format!("{}&noSuchOption=1", b.uri())).run("start");
    unknown
        .expect(6)
        .reason_contains("parameter 'broker_uri' rejected by the broker: fatal everywhere")
        .reason_contains("noSuchOption");
    assert!(unknown.elapsed < Duration::from_secs(60), "{:?}", unknown.elapsed);
    let scheme = format!("broker:(nosuch://127.0.0.1:{},stomp://127.0.0.1:{})", b.openwire_port, b.stomp_port);
    b.uri_agent_with(&scheme)
        .run("start")
        .expect(2)
        .reason_contains("parameter 'broker_uri' names a transport ActiveMQ on this node does not have")
        .reason_contains("nosuch");
    b.uri_agent().run("monitor").expect(7);
    // Stop with parameters that never started anything succeeds.
    b.uri_agent().param("config", xml.display()).run("stop").expect(0);
}

/// The KahaDB lock detection holds for the URI form: another broker on the data directory (its
/// store under data_dir/kahadb, ours would be data_dir/hst/KahaDB) is found by its lock.
#[test]
fn activemq_from_a_broker_uri_refuses_a_store_another_broker_holds() {
    if !available() {
        return;
    }
    let b = Broker::new();
    let (other, _) = b.foreign_broker();
    let refused = b.uri_agent().run("start");
    refused.expect(1).reason_contains("in use by another running broker");
    assert!(refused.elapsed < Duration::from_secs(30));
    b.uri_agent().run("monitor").expect(7);
    drop(other);
}
