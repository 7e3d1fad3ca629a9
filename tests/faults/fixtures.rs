//! One fixture per agent, made of its area's own set-up (tests/front, tests/data): the matrix
//! adds only where the data lives (an ext4 loop device, as the replicated partition) and how
//! the configuration breaks.

use std::any::Any;
use std::cell::Cell;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use super::{DataDir, Facts, Fixture, NOT_RUNNING};
use crate::data::{self, Partition};
use crate::front::{self, write};
use crate::support::*;

/// The front layer keeps nothing on the replicated partition.
const NO_DATA: &str = "front layer: no data directory (nothing on the replicated partition)";

fn front_port() -> u16 {
    data::free_port()
}

/// Two consecutive free ports (haproxy's frontend and its echo backend).
fn port_pair() -> u16 {
    loop {
        let p = data::free_port();
        if TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

// ------------------------------------------------------------------ front layer

/// What the front fixtures share: no data directory, no other server to take it.
macro_rules! no_data {
    () => {
        fn data(&self) -> Result<&DataDir, &'static str> {
            Err(NO_DATA)
        }
        fn foreign(&self) -> (i32, Box<dyn Any>) {
            unreachable!("{NO_DATA}")
        }
    };
}

/// What the front fixtures made by their area's own set-up (`self.0`) share: its resource,
/// instance and port, and no data.
macro_rules! front_instance {
    () => {
        fn run(&self) -> AgentRun {
            self.0.run.clone()
        }
        fn instance(&self) -> String {
            self.0.instance.clone()
        }
        fn port(&self) -> u16 {
            self.0.port
        }
        no_data!();
    };
}

pub struct Nginx(front::httpd::Nginx);

pub fn nginx() -> Option<Box<dyn Fixture>> {
    Some(Box::new(Nginx(front::httpd::nginx(front_port())?)))
}

static NGINX: Facts = Facts {
    agent: "nginx",
    server: "nginx",
    start_ms: 30_000,
    config_says: "unknown directive",
    stopped_says: NOT_RUNNING,
    kill9_leaves_workers: true,
    foreign_is: "",
};

impl Fixture for Nginx {
    fn facts(&self) -> &'static Facts {
        &NGINX
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.0.dir.path().join("nginx.conf"))
    }
    fn break_config(&self) {
        front::httpd::nginx_conf(self.0.dir.path(), self.0.port, "this_is_not_a_directive on;");
    }
    fn repair_config(&self) {
        front::httpd::nginx_conf(self.0.dir.path(), self.0.port, "");
    }
    front_instance!();
}

pub struct Apache(front::httpd::Apache);

pub fn apache() -> Option<Box<dyn Fixture>> {
    Some(Box::new(Apache(front::httpd::apache(front_port())?)))
}

static APACHE: Facts = Facts {
    agent: "apache",
    server: "httpd",
    start_ms: 30_000,
    config_says: "Invalid command 'NoSuchDirective'",
    stopped_says: NOT_RUNNING,
    // httpd's children keep serving without their parent.
    kill9_leaves_workers: true,
    foreign_is: "",
};

impl Fixture for Apache {
    fn facts(&self) -> &'static Facts {
        &APACHE
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.0.dir.path().join("httpd.conf"))
    }
    fn break_config(&self) {
        front::httpd::apache_conf(self.0.dir.path(), self.0.port, "NoSuchDirective on");
    }
    fn repair_config(&self) {
        front::httpd::apache_conf(self.0.dir.path(), self.0.port, "");
    }
    front_instance!();
}

pub struct Haproxy(front::haproxy::Haproxy);

pub fn haproxy() -> Option<Box<dyn Fixture>> {
    Some(Box::new(Haproxy(front::haproxy::haproxy(port_pair(), false)?)))
}

static HAPROXY: Facts = Facts {
    agent: "haproxy",
    server: "haproxy",
    start_ms: 30_000,
    config_says: "unknown keyword 'no_such_keyword'",
    stopped_says: NOT_RUNNING,
    kill9_leaves_workers: false,
    foreign_is: "",
};

impl Fixture for Haproxy {
    fn facts(&self) -> &'static Facts {
        &HAPROXY
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.0.dir.path().join("haproxy.cfg"))
    }
    fn break_config(&self) {
        front::haproxy::haproxy_conf(self.0.dir.path(), self.0.port, false, "    no_such_keyword 1\n");
    }
    fn repair_config(&self) {
        front::haproxy::haproxy_conf(self.0.dir.path(), self.0.port, false, "");
    }
    front_instance!();
}

pub struct Tomcat(front::tomcat::Tomcat);

pub fn tomcat() -> Option<Box<dyn Fixture>> {
    Some(Box::new(Tomcat(front::tomcat::tomcat(front_port())?)))
}

static TOMCAT: Facts = Facts {
    agent: "tomcat",
    server: "tomcat",
    start_ms: 120_000,
    config_says: "must be terminated by the matching end-tag",
    stopped_says: NOT_RUNNING,
    kill9_leaves_workers: false,
    foreign_is: "",
};

impl Fixture for Tomcat {
    fn facts(&self) -> &'static Facts {
        &TOMCAT
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.0.dir.path().join("conf/server.xml"))
    }
    fn break_config(&self) {
        write(&self.config_file().unwrap(), &front::tomcat::server_xml(self.0.port, true));
    }
    fn repair_config(&self) {
        write(&self.config_file().unwrap(), &front::tomcat::server_xml(self.0.port, false));
    }
    front_instance!();
}

/// The app agent runs a Python HTTP server; it has no configuration file of its own, so its
/// "broken configuration" is a start command the program rejects.
pub struct App {
    app: front::apps::App,
    broken: Cell<bool>,
}

pub fn app() -> Option<Box<dyn Fixture>> {
    Some(Box::new(App { app: front::apps::app(front_port())?, broken: Cell::new(false) }))
}

static APP: Facts = Facts {
    agent: "app",
    server: "the service",
    start_ms: 30_000,
    config_says: "unrecognized arguments: --no-such-option",
    stopped_says: NOT_RUNNING,
    kill9_leaves_workers: false,
    foreign_is: "",
};

impl Fixture for App {
    fn facts(&self) -> &'static Facts {
        &APP
    }
    fn run(&self) -> AgentRun {
        let run = self.app.run.clone();
        if self.broken.get() {
            run.param("start_command", format!("{} --no-such-option", front::apps::http_server(self.app.port)))
        } else {
            run
        }
    }
    fn instance(&self) -> String {
        self.app.instance.clone()
    }
    fn port(&self) -> u16 {
        self.app.port
    }
    fn config_file(&self) -> Option<PathBuf> {
        None
    }
    fn break_config(&self) {
        self.broken.set(true);
    }
    fn repair_config(&self) {
        self.broken.set(false);
    }
    no_data!();
}

// ------------------------------------------------------------------ data layer

/// A data directory on its own ext4 loop device (256 MiB), mounted under a directory of the
/// service account; the server's configuration, sockets and logs stay outside it.
struct OnDisk {
    data: DataDir,
    // Dropped in order: the partition (unmounted, detached) before the directory it is in.
    _part: Partition,
    dir: tempfile::TempDir,
}

impl OnDisk {
    fn new(owner: &str, param: &'static str, data_name: &str) -> OnDisk {
        let dir = data::service_tempdir(owner);
        let mount = dir.path().join("part");
        let part = Partition::new(&mount);
        sh("chown", &[&format!("{owner}:"), mount.to_str().unwrap()]);
        OnDisk { data: DataDir { param, path: mount.join(data_name), mount }, _part: part, dir }
    }
}

fn can_use_loop_devices() -> bool {
    need_program("mkfs.ext4", "e2fsprogs") && need_program("losetup", "mount")
}

/// Another server's main process, stopped on drop with `signal` (then whatever guard it came
/// with drops).
struct Foreign {
    pid: i32,
    signal: nix::sys::signal::Signal,
    _guard: Box<dyn Any>,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        hastack::sys::proc::signal(self.pid, self.signal);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while hastack::sys::tree::any_thread_alive(self.pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        hastack::sys::proc::signal(self.pid, nix::sys::signal::Signal::SIGKILL);
    }
}

fn foreign(pid: i32, signal: nix::sys::signal::Signal, guard: impl Any) -> (i32, Box<dyn Any>) {
    (pid, Box::new(Foreign { pid, signal, _guard: Box::new(guard) }))
}

/// A node-local copy of a configuration file, broken by appending a line.
fn append(file: &Path, line: &str) {
    let good = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, format!("{good}\n{line}\n")).unwrap();
}

fn remove_last_line(file: &Path, line: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, text.replace(&format!("\n{line}\n"), "")).unwrap();
}

pub struct Postgresql {
    cluster: data::postgresql::Cluster,
    conf: PathBuf,
    disk: OnDisk,
}

const PG_TYPO: &str = "this is = not valid = at all";

pub fn postgresql() -> Option<Box<dyn Fixture>> {
    if !data::postgresql::available() || !can_use_loop_devices() {
        return None;
    }
    let disk = OnDisk::new("postgres", "pgdata", "data");
    let cluster = data::postgresql::Cluster::init(tempfile::tempdir().unwrap(), disk.data.mount.clone());
    // As Debian keeps it: the configuration under /etc (node-local), the data on the partition.
    let conf = disk.dir.path().join("postgresql.conf");
    std::fs::copy(cluster.pgdata.join("postgresql.conf"), &conf).unwrap();
    sh("chown", &["postgres:", conf.to_str().unwrap()]);
    Some(Box::new(Postgresql { cluster, conf, disk }))
}

static POSTGRESQL: Facts = Facts {
    agent: "postgresql",
    server: "postgres",
    start_ms: 60_000,
    config_says: "syntax error",
    stopped_says: "no postmaster runs on this data directory",
    kill9_leaves_workers: false,
    foreign_is: "postmaster",
};

impl Fixture for Postgresql {
    fn facts(&self) -> &'static Facts {
        &POSTGRESQL
    }
    fn run(&self) -> AgentRun {
        let dir = self.disk.dir.path();
        self.cluster
            .agent()
            .param("config", self.conf.display())
            .param("socket_dir", dir.join("sock").display())
            .param("logfile", dir.join("pg.log").display())
    }
    fn instance(&self) -> String {
        self.cluster.name.clone()
    }
    fn port(&self) -> u16 {
        self.cluster.port
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.conf.clone())
    }
    fn break_config(&self) {
        append(&self.conf, PG_TYPO);
    }
    fn repair_config(&self) {
        remove_last_line(&self.conf, PG_TYPO);
    }
    fn data(&self) -> Result<&DataDir, &'static str> {
        Ok(&self.disk.data)
    }
    fn foreign(&self) -> (i32, Box<dyn Any>) {
        let guard = data::postgresql::foreign_postmaster(&self.cluster.pgdata, self.disk.dir.path());
        foreign(self.cluster.postmaster(), nix::sys::signal::Signal::SIGINT, guard)
    }
}

pub struct Mariadb {
    server: data::mariadb::Server,
    disk: OnDisk,
}

const MY_TYPO: &str = "no_such_option_at_all=1";

pub fn mariadb() -> Option<Box<dyn Fixture>> {
    if !data::mariadb::available() || !can_use_loop_devices() {
        return None;
    }
    let disk = OnDisk::new("mysql", "datadir", "data");
    let server = data::mariadb::Server::init(&disk.data.mount, disk.dir.path());
    Some(Box::new(Mariadb { server, disk }))
}

static MARIADB: Facts = Facts {
    agent: "mariadb",
    server: "mariadbd",
    start_ms: 90_000,
    config_says: "unknown variable",
    stopped_says: "no server of this resource runs",
    kill9_leaves_workers: false,
    foreign_is: "server",
};

impl Fixture for Mariadb {
    fn facts(&self) -> &'static Facts {
        &MARIADB
    }
    fn run(&self) -> AgentRun {
        self.server.agent()
    }
    fn instance(&self) -> String {
        self.server.name.clone()
    }
    fn port(&self) -> u16 {
        self.server.port
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.server.run.join("my.cnf"))
    }
    fn break_config(&self) {
        append(&self.config_file().unwrap(), MY_TYPO);
    }
    fn repair_config(&self) {
        remove_last_line(&self.config_file().unwrap(), MY_TYPO);
    }
    fn data(&self) -> Result<&DataDir, &'static str> {
        Ok(&self.disk.data)
    }
    fn foreign(&self) -> (i32, Box<dyn Any>) {
        let guard = self.server.foreign_server();
        foreign(guard.pid(), nix::sys::signal::Signal::SIGKILL, guard)
    }
}

pub struct Activemq {
    broker: data::activemq::Broker,
    _disk: OnDisk,
    data: DataDir,
}

pub fn activemq() -> Option<Box<dyn Fixture>> {
    if !data::activemq::available() || !can_use_loop_devices() {
        return None;
    }
    let disk = OnDisk::new("activemq", "data_dir", "data");
    let broker = data::activemq::Broker::with_data(&disk.data.path, disk.dir.path());
    let data = DataDir { param: "data_dir", path: disk.data.path.clone(), mount: disk.data.mount.clone() };
    Some(Box::new(Activemq { broker, _disk: disk, data }))
}

static ACTIVEMQ: Facts = Facts {
    agent: "activemq",
    server: "the broker",
    start_ms: 120_000,
    config_says: "Exception",
    stopped_says: "no broker of this resource runs",
    kill9_leaves_workers: false,
    foreign_is: "broker",
};

impl Fixture for Activemq {
    fn facts(&self) -> &'static Facts {
        &ACTIVEMQ
    }
    fn run(&self) -> AgentRun {
        self.broker.agent()
    }
    fn instance(&self) -> String {
        self.broker.name.clone()
    }
    fn port(&self) -> u16 {
        self.broker.stomp_port
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.broker.conf.join("activemq.xml"))
    }
    fn break_config(&self) {
        let xml = self.config_file().unwrap();
        let good = std::fs::read_to_string(&xml).unwrap();
        std::fs::write(&xml, good.replace("</broker>", "<noSuchElement/></broker>")).unwrap();
    }
    fn repair_config(&self) {
        let xml = self.config_file().unwrap();
        let bad = std::fs::read_to_string(&xml).unwrap();
        std::fs::write(&xml, bad.replace("<noSuchElement/></broker>", "</broker>")).unwrap();
    }
    fn data(&self) -> Result<&DataDir, &'static str> {
        Ok(&self.data)
    }
    fn foreign(&self) -> (i32, Box<dyn Any>) {
        let (guard, _stomp) = self.broker.foreign_broker();
        foreign(guard.pid(), nix::sys::signal::Signal::SIGKILL, guard)
    }
}

pub struct Rabbitmq {
    node: data::rabbitmq::Node,
    disk: OnDisk,
}

pub fn rabbitmq() -> Option<Box<dyn Fixture>> {
    if !data::rabbitmq::available() || !can_use_loop_devices() {
        return None;
    }
    let disk = OnDisk::new("rabbitmq", "data_dir", "data");
    let node = data::rabbitmq::Node::with_data(&disk.data.path, disk.dir.path());
    Some(Box::new(Rabbitmq { node, disk }))
}

static RABBITMQ: Facts = Facts {
    agent: "rabbitmq",
    server: "the node",
    start_ms: 120_000,
    config_says: "application_start_failure",
    stopped_says: "does not run on",
    kill9_leaves_workers: false,
    foreign_is: "node",
};

impl Fixture for Rabbitmq {
    fn facts(&self) -> &'static Facts {
        &RABBITMQ
    }
    fn run(&self) -> AgentRun {
        self.node.agent()
    }
    fn instance(&self) -> String {
        self.node.name.clone()
    }
    fn port(&self) -> u16 {
        self.node.port
    }
    fn config_file(&self) -> Option<PathBuf> {
        Some(self.node.run.join("rabbitmq.conf"))
    }
    fn break_config(&self) {
        write(&self.config_file().unwrap(), "this is not = a valid setting\n");
    }
    fn repair_config(&self) {
        write(&self.config_file().unwrap(), "log.console = true\n");
    }
    fn data(&self) -> Result<&DataDir, &'static str> {
        Ok(&self.disk.data)
    }
    fn foreign(&self) -> (i32, Box<dyn Any>) {
        // Another node (its own name and ports) on the same data directory, run by the agent.
        let mut other = data::rabbitmq::Node::with_data(&self.node.data, &self.node.run);
        other.nodename = "other@localhost".into();
        other.agent().run("start").expect(0);
        let pid = crate::front::main_pid("rabbitmq", &other.name);
        // The node's Drop stops it through the agent.
        (pid, Box::new(other))
    }
    /// The node's Erlang VM: the start script start launched is not the node.
    fn main_process(&self) -> i32 {
        self.node.vm()
    }
}
