//! `mariadb` against Debian's MariaDB 10.11: each test installs its own data directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;
use hastack::net::mywire::MyConn;
use hastack::ocf::Deadline;

const MARIADBD: &str = "/usr/sbin/mariadbd";

pub fn available() -> bool {
    need_root("mariadb tests")
        && (Path::new(MARIADBD).exists() || !skip_or_fail("mariadbd (package mariadb-server) is not installed"))
}

/// One test server: a data directory made by mariadb-install-db under `root`, its own option
/// file, socket, port, PID file and log.
pub struct Server {
    _dir: Option<tempfile::TempDir>,
    pub root: PathBuf,
    pub run: PathBuf,
    pub datadir: PathBuf,
    pub port: u16,
    pub name: String,
}

impl Server {
    fn new() -> Server {
        let dir = service_tempdir("mysql");
        let root = dir.path().to_path_buf();
        let mut s = Self::init(&root, &root);
        s._dir = Some(dir);
        s
    }

    /// Data under `data_root` (e.g. a mounted loop device), everything else under `run`.
    pub fn init(data_root: &Path, run: &Path) -> Server {
        let datadir = data_root.join("data");
        let out = run_with_deadline(
            Command::new("mariadb-install-db").args([
                "--no-defaults",
                "--user=mysql",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
                "--skip-name-resolve",
                &format!("--datadir={}", datadir.display()),
                // Concurrent installs in one /tmp collide on temporary table names.
                &format!("--tmpdir={}", run.display()),
            ]),
            Duration::from_secs(180),
        );
        assert_eq!(out.code, 0, "mariadb-install-db failed: {}\n{}", out.stdout, out.stderr);
        std::fs::write(
            run.join("my.cnf"),
            format!(
                "[mysqld]\nskip-name-resolve\ninnodb_buffer_pool_size=32M\ninnodb_log_file_size=16M\nperformance_schema=OFF\ntmpdir={}\n",
                run.display()
            ),
        )
        .unwrap();
        Server {
            _dir: None,
            root: data_root.to_path_buf(),
            run: run.to_path_buf(),
            datadir,
            port: free_port(),
            name: unique_name("my"),
        }
    }

    pub fn agent(&self) -> AgentRun {
        AgentRun::new("mariadb")
            .env("OCF_RESOURCE_INSTANCE", &self.name)
            .param("config", self.run.join("my.cnf").display())
            .param("datadir", self.datadir.display())
            .param("socket", self.run.join("sock/mysqld.sock").display())
            .param("pid", self.run.join("sock/mysqld.pid").display())
            .param("log", self.run.join("error.log").display())
            .param("port", self.port)
            .param("bind_address", "127.0.0.1")
            .param("query_timeout", 2)
            .timeout_ms(90000)
    }

    /// Another mariadbd, not this resource's (other socket, port and PID file), on the data
    /// directory: serving when it returns.
    pub fn foreign_server(&self) -> ChildGuard {
        let other = ChildGuard(
            Command::new(MARIADBD)
                .arg(format!("--defaults-file={}", self.run.join("my.cnf").display()))
                .arg(format!("--datadir={}", self.datadir.display()))
                .arg(format!("--socket={}", self.run.join("other.sock").display()))
                .arg(format!("--pid-file={}", self.run.join("other.pid").display()))
                .arg(format!("--port={}", free_port()))
                .args(["--bind-address=127.0.0.1", "--user=mysql"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for("the foreign server", Duration::from_secs(90), || self.run.join("other.sock").exists());
        other
    }

    fn conn(&self) -> MyConn {
        MyConn::connect(&self.run.join("sock/mysqld.sock"), None, "root", Deadline::after(Duration::from_secs(10)))
            .unwrap()
    }

    fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        self.conn().query(sql, Deadline::after(Duration::from_secs(30))).unwrap()
    }

    fn server_pid(&self) -> i32 {
        std::fs::read_to_string(self.run.join("sock/mysqld.pid")).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.agent().timeout_ms(30000).run("stop");
    }
}

#[test]
fn mariadb_start_monitor_stop_are_idempotent() {
    if !available() {
        return;
    }
    let s = Server::new();
    let a = s.agent();
    a.run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(s.query("SELECT 1")[0][0].as_deref(), Some("1"));
    for depth in [0, 10, 20] {
        a.clone().depth(depth).recurring().run("monitor").expect(0);
    }
    assert_eq!(s.query("SELECT resource FROM hastack.health")[0][0].as_deref(), Some(s.name.as_str()));
    a.run("start").expect(0);
    let pid = s.server_pid();
    assert_eq!(hastack::sys::proc::stat(pid).unwrap().comm, "mariadbd", "no mysqld_safe in between");
    a.run("stop").expect(0);
    assert!(!hastack::sys::proc::is_alive(pid));
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

#[test]
fn mariadb_kill9_and_sigstop_are_reported_and_recovered() {
    if !available() {
        return;
    }
    let s = Server::new();
    let a = s.agent();
    a.run("start").expect(0);
    let pid = s.server_pid();
    freeze(pid);
    for depth in [0, 10] {
        let m = a.clone().depth(depth).recurring().timeout_ms(10000).run("monitor");
        m.expect(1);
        assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    }
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    a.clone().depth(20).run("monitor").expect(0);
    // A hung query: the health row locked by another transaction; the 2 s per-query timeout
    // answers well before the monitor's 10 s.
    let mut locker = s.conn();
    let d = Deadline::after(Duration::from_secs(30));
    locker.query("START TRANSACTION", d).unwrap();
    locker.query("SELECT * FROM hastack.health FOR UPDATE", d).unwrap();
    let m = a.clone().depth(20).recurring().timeout_ms(10000).run("monitor");
    m.expect(1).reason_contains("does not answer queries");
    assert!(m.elapsed < Duration::from_secs(9), "{:?}", m.elapsed);
    drop(locker);

    kill9_session(pid);
    let m = a.clone().recurring().run("monitor");
    m.expect(7);
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);
    freeze(s.server_pid());
    a.run("stop").expect(0);
    a.run("monitor").expect(7);
}

/// mariadbd names the option it rejects, not the file: the agent finds the file that sets it
/// (through `!include`s). In the data directory (on the replicated partition) it is fatal
/// everywhere (6), as is an option the `options` parameter passes; node-local, banned here (2).
#[test]
fn mariadb_rejected_configuration_is_banned_here_or_fatal_by_where_it_lives() {
    if !available() {
        return;
    }
    let s = Server::new();
    let node_cnf = s.run.join("my.cnf");
    let good = std::fs::read_to_string(&node_cnf).unwrap();
    // The option file kept with the data.
    let data_cnf = s.datadir.join("hst-my.cnf");
    std::fs::write(&data_cnf, format!("{good}no_such_option_at_all=1\n")).unwrap();
    let in_data = s.agent().param("config", data_cnf.display());
    in_data.run("start").expect(6).reason_contains(&format!(
        "configuration file {} on the replicated partition rejected by mariadbd: fatal everywhere: ",
        data_cnf.display()
    ));
    in_data.run("monitor").expect(7);
    // A node-local option file including one in the data directory, which sets a bad value.
    let included = s.datadir.join("hst-tuning.cnf");
    std::fs::write(&included, "[mariadbd]\nmax_connections = abc\n").unwrap();
    std::fs::write(&node_cnf, format!("{good}!include {}\n", included.display())).unwrap();
    s.agent().run("start").expect(6).reason_contains(&format!(
        "configuration file {} on the replicated partition rejected by mariadbd",
        included.display()
    ));
    std::fs::write(&node_cnf, &good).unwrap();
    // The agent's parameters.
    s.agent()
        .param("options", "--no-such-option-either=1")
        .run("start")
        .expect(6)
        .reason_contains("parameter 'options' rejected by mariadbd: fatal everywhere: ");
    s.agent().run("start").expect(0);
    s.agent().run("stop").expect(0);
}

#[test]
fn mariadb_refuses_broken_config_taken_port_missing_data_and_foreign_server() {
    if !available() {
        return;
    }
    let s = Server::new();
    let a = s.agent();

    let missing = a.clone().param("datadir", s.root.join("nowhere").display());
    missing.run("start").expect(5).reason_contains("does not exist");
    missing.run("monitor").expect(7);
    missing.run("stop").expect(0);

    let squatter = TcpListener::bind(("127.0.0.1", s.port)).unwrap();
    a.run("start").expect(1).reason_contains("already in use");
    drop(squatter);

    // A broken node-local option file: banned here (2), the peer has its own.
    let cnf = s.run.join("my.cnf");
    let good = std::fs::read_to_string(&cnf).unwrap();
    std::fs::write(&cnf, format!("{good}no_such_option_at_all=1\n")).unwrap();
    let broken = a.run("start");
    broken
        .expect(2)
        .reason_contains(&format!("node-local configuration file {} rejected by mariadbd: banned", cnf.display()))
        .reason_contains("unknown variable");
    assert!(broken.elapsed < Duration::from_secs(60), "{:?}", broken.elapsed);
    std::fs::write(&cnf, good).unwrap();

    // Another server (not this resource's: other socket, port and PID file) on the data
    // directory: start refuses and leaves it running.
    let other = s.foreign_server();
    let foreign = other.pid();
    a.run("start").expect(1).reason_contains("in use by another running server");
    a.run("monitor").expect(7);
    assert!(hastack::sys::proc::is_alive(foreign), "the other server was left alone");
    let mut c =
        MyConn::connect(&s.run.join("other.sock"), None, "root", Deadline::after(Duration::from_secs(10))).unwrap();
    let users = c.query("SELECT count(*) FROM mysql.global_priv", Deadline::after(Duration::from_secs(10))).unwrap();
    assert_ne!(users[0][0].as_deref(), Some("0"), "the other server still serves its data");
    drop(c);
    // (A mariadbd spawned from the test harness leaves SIGTERM pending: crash it instead, which
    // InnoDB recovers from on the agent's start below.)
    drop(other);
    a.run("start").expect(0);
    a.clone().depth(20).run("monitor").expect(0);
}

/// The ids in shop.orders, in order, as Debian's mariadb client reads them (not the product's
/// own client).
fn order_ids(s: &Server) -> Vec<String> {
    let out = run_with_deadline(
        Command::new("mariadb").arg(format!("--socket={}", s.run.join("sock/mysqld.sock").display())).args([
            "-uroot",
            "-N",
            "-B",
            "-e",
            "SELECT id FROM shop.orders ORDER BY id",
        ]),
        Duration::from_secs(30),
    );
    out.expect(0);
    out.stdout.lines().map(str::to_string).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn write_rows(conn: &mut MyConn, n: usize) {
    let d = Deadline::after(Duration::from_secs(120));
    conn.query("CREATE DATABASE shop", d).unwrap();
    conn.query("CREATE TABLE shop.orders (id INT PRIMARY KEY) ENGINE=InnoDB", d).unwrap();
    for i in 0..n {
        // autocommit: the OK packet acknowledges a committed row.
        conn.query(&format!("INSERT INTO shop.orders VALUES ({i})"), d).unwrap();
    }
}

#[test]
fn mariadb_loses_no_committed_row_on_kill9() {
    if !available() {
        return;
    }
    let s = Server::new();
    let a = s.agent();
    a.run("start").expect(0);
    write_rows(&mut s.conn(), 300);
    kill9_session(s.server_pid());
    a.clone().recurring().run("monitor").expect(7);
    a.run("start").expect(0);
    assert_eq!(order_ids(&s), ids(300));
}

#[test]
fn mariadb_loses_no_committed_row_across_kill9_and_remount() {
    if !available() || !need_program("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let dir = service_tempdir("mysql");
    let mnt = dir.path().join("part");
    let mut part = Partition::new(&mnt);
    sh("chown", &["mysql:", mnt.to_str().unwrap()]);
    let s = Server::init(&mnt, dir.path());
    let a = s.agent();
    a.run("start").expect(0);
    write_rows(&mut s.conn(), 300);
    kill9_session(s.server_pid());
    a.clone().recurring().run("monitor").expect(7);
    part.remount();
    a.run("start").expect(0);
    assert_eq!(order_ids(&s), ids(300));
    a.run("stop").expect(0);
}

#[test]
fn mariadb_passes_ocf_tester() {
    if !available() || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let s = Server::new();
    let run = |p: &str| s.run.join(p).display().to_string();
    ocf_tester(
        "mariadb",
        &[
            ("config", run("my.cnf")),
            ("datadir", s.datadir.display().to_string()),
            ("socket", run("sock/mysqld.sock")),
            ("pid", run("sock/mysqld.pid")),
            ("log", run("error.log")),
            ("port", s.port.to_string()),
            ("bind_address", "127.0.0.1".into()),
        ],
    );
}
