//! `postgresql` against Debian's PostgreSQL 15: each test makes its own cluster with initdb.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::*;
use hastack::net::pgwire::PgConn;
use hastack::ocf::Deadline;

const BINDIR: &str = "/usr/lib/postgresql/15/bin";

pub fn available() -> bool {
    need_root("postgresql tests")
        && (Path::new(BINDIR).join("postgres").exists()
            || !skip_or_fail("PostgreSQL 15 (package postgresql) is not installed"))
}

/// One test cluster: data directory made by initdb, its own port, socket directory and log.
/// (The lab application's tests run it too.)
pub struct Cluster {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub pgdata: PathBuf,
    pub port: u16,
    /// The resource name: each test its own, as the agent keys its state file by it.
    pub name: String,
}

impl Cluster {
    pub fn new() -> Cluster {
        let dir = service_tempdir("postgres");
        let root = dir.path().to_path_buf();
        Self::init(dir, root)
    }

    /// A cluster whose data directory is under `root` (e.g. a mounted loop device).
    pub fn init(dir: tempfile::TempDir, root: PathBuf) -> Cluster {
        let pgdata = root.join("data");
        sh("install", &["-d", "-o", "postgres", "-g", "postgres", "-m", "700", pgdata.to_str().unwrap()]);
        let out = run_with_deadline(
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(format!("{BINDIR}/initdb")).args([
                "-N",
                "-A",
                "peer",
                "-D",
                pgdata.to_str().unwrap(),
            ]),
            Duration::from_secs(120),
        );
        assert_eq!(out.code, 0, "initdb failed: {}", out.stderr);
        Cluster { _dir: dir, root, pgdata, port: free_port(), name: unique_name("pg") }
    }

    pub fn agent(&self) -> AgentRun {
        AgentRun::new("postgresql")
            .env("OCF_RESOURCE_INSTANCE", &self.name)
            .param("bindir", BINDIR)
            .param("pgdata", self.pgdata.display())
            .param("config", self.pgdata.join("postgresql.conf").display())
            .param("port", self.port)
            .param("listen_addresses", "127.0.0.1")
            .param("socket_dir", self.root.join("sock").display())
            .param("logfile", self.root.join("pg.log").display())
            .param("query_timeout", 2)
            .timeout_ms(60000)
    }

    pub fn conn(&self) -> PgConn {
        let uid = nix::unistd::User::from_name("postgres").unwrap().unwrap().uid;
        PgConn::connect(
            &self.root.join("sock").join(format!(".s.PGSQL.{}", self.port)),
            Some(uid),
            "postgres",
            "postgres",
            &[],
            Deadline::after(Duration::from_secs(10)),
        )
        .unwrap()
    }

    pub fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.conn().query(sql, Deadline::after(Duration::from_secs(30))).unwrap()
    }

    pub fn postmaster(&self) -> i32 {
        std::fs::read_to_string(self.pgdata.join("postmaster.pid")).unwrap().lines().next().unwrap().parse().unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Whatever the test left running goes before the directory does.
        let _ = self.agent().timeout_ms(20000).run("stop");
    }
}

#[test]
fn postgresql_start_monitor_stop_are_idempotent() {
    if !available() {
        return;
    }
    let c = Cluster::new();
    let a = c.agent();
    a.run("monitor").expect(7);
    let start = a.run("start");
    start.expect(0);
    assert!(start.elapsed < Duration::from_secs(60));
    // start returned: the server answers now, without any waiting.
    assert_eq!(c.query("SELECT 1")[0][0].as_deref(), Some("1"));
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(0);
    }
    let rows = c.query("SELECT resource FROM hastack_health");
    assert_eq!(rows[0][0].as_deref(), Some(c.name.as_str()), "depth 20 wrote its row");
    a.run("start").expect(0);
    let stop = a.run("stop");
    stop.expect(0);
    assert!(stop.elapsed < Duration::from_secs(60));
    assert!(!c.pgdata.join("postmaster.pid").exists(), "fast shutdown completed cleanly");
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn postgresql_kill9_and_sigstop_are_reported_and_recovered() {
    if !available() {
        return;
    }
    let c = Cluster::new();
    let a = c.agent();
    a.run("start").expect(0);
    // A hung server: monitor answers with an error well before its 10 s timeout.
    let pm = c.postmaster();
    freeze(pm);
    for depth in [0, 10] {
        let m = a.clone().depth(depth).recurring().timeout_ms(10000).run("monitor");
        m.expect(1);
        assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    }
    signal(pm, Signal::SIGCONT);
    a.clone().depth(20).run("monitor").expect(0);
    // A hung query (the health table locked by another session): the per-query timeout (2 s)
    // gives an error well before the monitor's timeout.
    let mut locker = c.conn();
    let d = Deadline::after(Duration::from_secs(30));
    locker.query("BEGIN; LOCK TABLE hastack_health IN ACCESS EXCLUSIVE MODE", d).unwrap();
    let m = a.clone().depth(20).recurring().timeout_ms(10000).run("monitor");
    m.expect(1).reason_contains("does not answer queries");
    assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    drop(locker);
    a.clone().depth(20).run("monitor").expect(0);

    // kill -9 of the whole server: monitor says not running, start recovers it.
    let sid = pm;
    kill9_session(sid);
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);

    // A SIGSTOPped server is still stopped by stop.
    freeze(c.postmaster());
    let stop = a.run("stop");
    stop.expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn postgresql_refuses_broken_config_taken_port_missing_data_and_foreign_server() {
    if !available() {
        return;
    }
    let c = Cluster::new();
    let a = c.agent();

    // Missing data directory: 5 (not mounted here), and a probe says not running.
    let missing = a.clone().param("pgdata", c.root.join("nowhere").display());
    missing.run("start").expect(5).reason_contains("does not exist");
    missing.run("monitor").expect(7);
    missing.run("stop").expect(0);

    // Port taken by another program: refused at once, naming the holder.
    let squatter = TcpListener::bind(("127.0.0.1", c.port)).unwrap();
    a.run("start").expect(1).reason_contains("already in use");
    drop(squatter);

    // A broken configuration in the data directory: postgres exits, start fails fast with its
    // log lines, code 6 (the file moves with the partition: it is wrong on every node).
    let conf = c.pgdata.join("postgresql.conf");
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nthis is = not valid = at all\n")).unwrap();
    let broken = a.run("start");
    broken.expect(6).reason_contains("on the replicated partition rejected by postgres");
    assert!(broken.elapsed < Duration::from_secs(30), "{:?}", broken.elapsed);
    std::fs::write(&conf, good).unwrap();

    // Another postmaster (not ours, other port) owns the data directory: start refuses, and the
    // other server keeps running with its data intact.
    let mut other = foreign_postmaster(&c.pgdata, &c.root);
    let foreign_pid = c.postmaster();
    a.run("start").expect(1).reason_contains("in use by another running postmaster");
    a.run("monitor").expect(7);
    assert!(hastack::sys::proc::is_alive(foreign_pid), "the other server was left alone");
    assert_eq!(c.postmaster(), foreign_pid, "its lock file was left alone");
    let _ = Command::new("kill").args(["-INT", &foreign_pid.to_string()]).status();
    let _ = other.0.wait();
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);
}

/// Another postmaster, not this resource's (its own port, no TCP, its socket in `sock_dir`), on
/// `pgdata`: ready when it returns.
pub fn foreign_postmaster(pgdata: &Path, sock_dir: &Path) -> ChildGuard {
    let other = ChildGuard(
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{BINDIR}/postgres"))
            .arg("-D")
            .arg(pgdata)
            .args(["-c", &format!("port={}", free_port()), "-c"])
            .arg(format!("unix_socket_directories={}", sock_dir.display()))
            .args(["-c", "listen_addresses="])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the foreign postmaster", Duration::from_secs(60), || {
        std::fs::read_to_string(pgdata.join("postmaster.pid")).is_ok_and(|t| t.contains("ready"))
    });
    other
}

/// A configuration postgres rejects: 2 (banned on this node, the peer takes over) when the file
/// at fault is node-local, 6 (fatal everywhere) when it is in the data directory, which is on the
/// replicated partition, or when the agent's parameters are at fault. The file is the one
/// postgres names, not the `config` parameter: an included file, or postgresql.auto.conf.
#[test]
fn postgresql_rejected_configuration_is_banned_here_or_fatal_by_where_it_lives() {
    if !available() {
        return;
    }
    let c = Cluster::new();
    let etc = c.root.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let node_conf = etc.join("postgresql.conf");
    let data_conf = c.pgdata.join("postgresql.conf");
    let good = std::fs::read_to_string(&data_conf).unwrap();
    std::fs::write(&node_conf, &good).unwrap();
    // As Debian keeps it: the configuration under /etc, the data on the partition.
    let local = c.agent().param("config", node_conf.display());
    let banned = |a: &AgentRun, file: &Path| {
        let out = a.run("start");
        out.expect(2).reason_contains(&format!(
            "node-local configuration file {} rejected by postgres: banned on this node: ",
            file.display()
        ));
        assert!(out.elapsed < Duration::from_secs(30), "{:?}", out.elapsed);
        a.run("monitor").expect(7);
    };
    let fatal = |a: &AgentRun, file: &Path| {
        a.run("start").expect(6).reason_contains(&format!(
            "configuration file {} on the replicated partition rejected by postgres: fatal everywhere: ",
            file.display()
        ));
        a.run("monitor").expect(7);
    };

    // The node-local postgresql.conf has a typo.
    std::fs::write(&node_conf, format!("{good}\nthis is = not valid = at all\n")).unwrap();
    banned(&local, &node_conf);
    // It includes a file in the data directory, and that one is wrong.
    let included = c.pgdata.join("hst-included.conf");
    std::fs::write(&included, "work_mem = zzz\n").unwrap();
    std::fs::write(&node_conf, format!("{good}\ninclude '{}'\n", included.display())).unwrap();
    fatal(&local, &included);
    std::fs::write(&node_conf, &good).unwrap();
    // ALTER SYSTEM's file, always in the data directory.
    let auto = c.pgdata.join("postgresql.auto.conf");
    let auto_good = std::fs::read_to_string(&auto).unwrap();
    std::fs::write(&auto, format!("{auto_good}max_connections = notanumber\n")).unwrap();
    fatal(&local, &auto);
    std::fs::write(&auto, &auto_good).unwrap();
    // `config` in the data directory, including a node-local file that is wrong: that file.
    let node_extra = etc.join("local.conf");
    std::fs::write(&node_extra, "shared_buffers = abc\n").unwrap();
    std::fs::write(&data_conf, format!("{good}\ninclude '{}'\n", node_extra.display())).unwrap();
    banned(&c.agent(), &node_extra);
    // ...and wrong itself.
    std::fs::write(&data_conf, format!("{good}\nno_such_setting = 1\n")).unwrap();
    fatal(&c.agent(), &data_conf);
    std::fs::write(&data_conf, &good).unwrap();
    // The agent's own parameters.
    local
        .clone()
        .param("options", "-c shared_buffers=abc")
        .run("start")
        .expect(6)
        .reason_contains("parameter 'options' rejected by postgres: fatal everywhere: ");
    // All repaired: it starts.
    local.run("start").expect(0);
    local.run("stop").expect(0);
}

/// Writes `n` rows, each in its own acknowledged transaction.
fn write_rows(c: &Cluster, n: usize) {
    let mut conn = c.conn();
    let d = Deadline::after(Duration::from_secs(120));
    conn.query("CREATE TABLE orders (id int PRIMARY KEY)", d).unwrap();
    for i in 0..n {
        conn.query(&format!("INSERT INTO orders VALUES ({i})"), d).unwrap();
    }
}

/// The ids in `orders`, in order, as Debian's psql reads them (not the product's own client).
fn order_ids(socket_dir: &Path, port: u16) -> Vec<String> {
    let out = run_with_deadline(
        Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-At", "-d", "postgres", "-h"])
            .arg(socket_dir)
            .args(["-p", &port.to_string(), "-c", "SELECT id FROM orders ORDER BY id"]),
        Duration::from_secs(30),
    );
    out.expect(0);
    out.stdout.lines().map(str::to_string).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

#[test]
fn postgresql_loses_no_committed_row_on_kill9() {
    if !available() {
        return;
    }
    let c = Cluster::new();
    let a = c.agent();
    a.run("start").expect(0);
    write_rows(&c, 300);
    kill9_session(c.postmaster());
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(order_ids(&c.root.join("sock"), c.port), ids(300));
}

#[test]
fn postgresql_loses_no_committed_row_across_kill9_and_remount() {
    if !available() || !need_program("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let dir = service_tempdir("postgres");
    let mnt = dir.path().join("part");
    let mut part = Partition::new(&mnt);
    sh("chown", &["postgres:", mnt.to_str().unwrap()]);
    let c = Cluster::init(tempfile::tempdir().unwrap(), mnt.clone());
    let a = c
        .agent()
        .param("socket_dir", dir.path().join("sock").display())
        .param("logfile", dir.path().join("pg.log").display());
    a.run("start").expect(0);
    let sock = dir.path().join("sock").join(format!(".s.PGSQL.{}", c.port));
    let uid = nix::unistd::User::from_name("postgres").unwrap().unwrap().uid;
    let mut conn =
        PgConn::connect(&sock, Some(uid), "postgres", "postgres", &[], Deadline::after(Duration::from_secs(10)))
            .unwrap();
    let d = Deadline::after(Duration::from_secs(120));
    conn.query("CREATE TABLE orders (id int PRIMARY KEY)", d).unwrap();
    for i in 0..300 {
        conn.query(&format!("INSERT INTO orders VALUES ({i})"), d).unwrap();
    }
    drop(conn);
    kill9_session(c.postmaster());
    a.clone().recurring().run("monitor").expect(7);
    part.remount();
    a.run("start").expect(0);
    assert_eq!(order_ids(&dir.path().join("sock"), c.port), ids(300));
    a.run("stop").expect(0);
}

#[test]
fn postgresql_passes_ocf_tester() {
    if !available() || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let c = Cluster::new();
    ocf_tester(
        "postgresql",
        &[
            ("bindir", BINDIR.into()),
            ("pgdata", c.pgdata.display().to_string()),
            ("config", c.pgdata.join("postgresql.conf").display().to_string()),
            ("port", c.port.to_string()),
            ("listen_addresses", "127.0.0.1".into()),
            ("socket_dir", c.root.join("sock").display().to_string()),
            ("logfile", c.root.join("pg.log").display().to_string()),
        ],
    );
}
