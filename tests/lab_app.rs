//! The lab's application end to end on one machine, without Pacemaker: PostgreSQL, ActiveMQ and
//! Tomcat started by the hastack agents on loopback ports, the servlet application built and
//! deployed by `hastack lab build-app` / `app-context`, `hastack lab client` sending numbered
//! transactions, and each layer killed with SIGKILL mid-stream and restarted by its agent.
//! `hastack lab verify` must then find nothing lost and nothing recorded twice, and must find
//! a row deleted and a row duplicated by hand.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hastack::lab::client::{monotonic_ns, Kind, Log};

use crate::data::activemq::{self, Broker};
use crate::data::postgresql::{self, Cluster};
use crate::data::{free_port, kill9_session};
use crate::front::{main_pid, open_tempdir, write, StopOnDrop};
use crate::support::*;

const PASSWORD: &str = "lab-pw:1";

fn hastack(args: &[&str]) -> Outcome {
    run_with_deadline(Command::new(bin()).args(args), Duration::from_secs(300))
}

fn available() -> bool {
    postgresql::available()
        && activemq::available()
        && need_program("javac", "default-jdk-headless")
        && (Path::new("/usr/share/java/postgresql.jar").exists()
            || !skip_or_fail("the JDBC driver is not installed (Debian package libpostgresql-jdbc-java)"))
        && (Path::new("/usr/share/tomcat10/bin/bootstrap.jar").exists()
            || !skip_or_fail("tomcat10 is not installed (tests/setup/install-deps.sh installs it)"))
}

/// The application built once per test run into a directory Tomcat's user can read (the
/// build is cached by its key, as the lab's is).
fn built_webapp() -> PathBuf {
    install_root(); // makes target/tmp's parents traversable
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab-app");
    let out = hastack(&["lab", "build-app", dir.to_str().unwrap()]);
    out.expect(0);
    PathBuf::from(out.stdout.split(" (").next().unwrap())
}

/// PostgreSQL with a `lab` role that logs in over TCP with a SCRAM password and owns `ledger`.
fn database() -> Cluster {
    let c = Cluster::new();
    write(&c.pgdata.join("pg_hba.conf"), "local all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n");
    c.agent().run("start").expect(0);
    c.query(&format!("CREATE ROLE lab LOGIN PASSWORD '{PASSWORD}'"));
    c.query("CREATE DATABASE ledger OWNER lab");
    c
}

fn db_url(c: &Cluster) -> String {
    format!("postgresql://lab:{}@127.0.0.1:{}/ledger", PASSWORD.replace(':', "%3A"), c.port)
}

/// A Tomcat instance (CATALINA_BASE of its own) with the application deployed at /lab.
struct Tomcat {
    stop: StopOnDrop,
    instance: String,
    port: u16,
    _base: tempfile::TempDir,
}

impl Tomcat {
    fn agent(&self) -> AgentRun {
        self.stop.0.clone()
    }
}

fn tomcat(webapp: &Path, broker: &Broker, db: &Cluster) -> Tomcat {
    let base = open_tempdir();
    let b = base.path();
    sh("cp", &["-rL", "/var/lib/tomcat10/conf/", b.join("conf").to_str().unwrap()]);
    for sub in ["webapps", "logs", "work", "temp", "conf/Catalina/localhost"] {
        std::fs::create_dir_all(b.join(sub)).unwrap();
    }
    let port = free_port();
    write(
        &b.join("conf/server.xml"),
        &format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Server port=\"-1\" shutdown=\"SHUTDOWN\">\n\
             <Service name=\"Catalina\">\n\
             <Connector port=\"{port}\" address=\"127.0.0.1\" protocol=\"HTTP/1.1\" connectionTimeout=\"20000\" \
             bindOnInit=\"false\"/>\n\
             <Engine name=\"Catalina\" defaultHost=\"localhost\">\n\
             <Host name=\"localhost\" appBase=\"webapps\" unpackWARs=\"false\" autoDeploy=\"false\"/>\n\
             </Engine>\n</Service>\n</Server>\n"
        ),
    );
    sh("chown", &["-R", "tomcat:tomcat", b.to_str().unwrap()]);
    // The Context file as the lab writes it: the data layer's address, the password.
    let context = b.join("conf/Catalina/localhost/lab.xml");
    hastack(&[
        "lab",
        "app-context",
        "--webapp",
        webapp.to_str().unwrap(),
        "--broker",
        &format!("127.0.0.1:{}", broker.openwire_port),
        "--db",
        &db_url(db),
        "--node",
        "n1",
        "-o",
        context.to_str().unwrap(),
    ])
    .expect(0);
    let instance = unique_name("tc");
    let run = AgentRun::new("tomcat")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("catalina_base", b.display())
        .param("statusurl", format!("http://127.0.0.1:{port}/lab/health"))
        .param("java_opts", "-Xmx256m -XX:TieredStopAtLevel=1")
        .timeout_ms(120000);
    run.run("start").expect(0);
    Tomcat { stop: StopOnDrop(run), instance, port, _base: base }
}

/// `hastack lab client` in the background; SIGTERM ends it gracefully.
struct Client {
    child: ChildGuard,
    log: PathBuf,
}

impl Client {
    fn start(url: &str, log: &Path, run: &str, rate: f64) -> Client {
        let child = Command::new(bin())
            .args(["lab", "client", "--url", url, "--rate", &format!("{rate}/s"), "--run", run])
            .arg("--log")
            .arg(log)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Client { child: ChildGuard(child), log: log.to_path_buf() }
    }

    /// The log so far (empty until the client has written its header line: the client creates
    /// the file before it writes to it).
    fn log(&self) -> Log {
        let header_written = std::fs::read(&self.log).is_ok_and(|bytes| bytes.contains(&b'\n'));
        if !header_written {
            return Log::default();
        }
        Log::read(&self.log).unwrap()
    }

    /// Waits until at least `n` transactions were acknowledged after `since` (monotonic ns).
    fn wait_acks_after(&self, since: u64, n: usize, what: &str) {
        wait_for(what, Duration::from_secs(120), || {
            self.log().events.iter().filter(|e| e.kind.acknowledges() && e.mono_ns >= since).count() >= n
        });
    }

    /// Waits until the client saw a failed request after `since`: the fault reached it.
    fn wait_failure_after(&self, since: u64, what: &str) {
        wait_for(what, Duration::from_secs(60), || {
            self.log().events.iter().any(|e| e.kind == Kind::Fail && e.mono_ns >= since)
        });
    }

    fn stop(mut self) -> String {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.pid()), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                let mut out = String::new();
                use std::io::Read;
                self.child.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
                assert!(status.success(), "the client failed: {status:?} {out}");
                return out;
            }
            assert!(Instant::now() < deadline, "the client did not stop within 60 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn verify(log: &Path, db: &Cluster) -> Outcome {
    hastack(&["lab", "verify", "--log", log.to_str().unwrap(), "--db", &db_url(db)])
}

#[track_caller]
fn assert_clean(out: &Outcome) {
    out.expect(0);
    assert!(out.stdout.contains("\nmissing 0\nduplicated 0\n"), "{}", out.stdout);
    assert!(out.stdout.contains("\nrecorded_never_sent 0\n"), "{}", out.stdout);
}

fn stat(out: &Outcome, name: &str) -> u64 {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no '{name}' in:\n{}", out.stdout))
}

/// One fault: SIGKILL of `sid`'s session, wait until the client notices, restart by the agent,
/// wait until the client is served again; prints how long each took.
fn fault(client: &Client, what: &str, sid: i32, agent: &AgentRun) {
    let cut = monotonic_ns();
    kill9_session(sid);
    client.wait_failure_after(cut, &format!("the client to notice the kill of {what}"));
    let restart = monotonic_ns();
    agent.run("start").expect(0);
    let started = monotonic_ns();
    client.wait_acks_after(started, 20, &format!("the client to be served again after {what} restarted"));
    let first = client.log().first_ack_after(restart).map(|e| e.mono_ns).unwrap();
    eprintln!(
        "{what}: kill -> noticed+restart {:.2} s, agent start {:.2} s, restart -> first ack {:.2} s",
        (restart - cut) as f64 / 1e9,
        (started - restart) as f64 / 1e9,
        (first.saturating_sub(restart)) as f64 / 1e9
    );
}

/// The whole stack on loopback; dropped in reverse order of start (Tomcat, broker, database).
struct Stack {
    tomcat: Tomcat,
    broker: Broker,
    db: Cluster,
}

impl Stack {
    fn start() -> Stack {
        let webapp = built_webapp();
        let db = database();
        let broker = Broker::new();
        broker.agent().run("start").expect(0);
        let tomcat = tomcat(&webapp, &broker, &db);
        Stack { tomcat, broker, db }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/lab", self.tomcat.port)
    }
}

#[test]
fn kill9_of_each_layer_loses_and_duplicates_nothing_and_tampering_is_caught() {
    if !available() {
        return;
    }
    let stack = Stack::start();
    let (db, broker, tomcat) = (&stack.db, &stack.broker, &stack.tomcat);
    let dir = open_tempdir();
    let log = dir.path().join("client.log");
    let client = Client::start(&stack.url(), &log, "e2e", 30.0);
    client.wait_acks_after(0, 50, "the first 50 acknowledged transactions");

    fault(&client, "postgresql", db.postmaster(), &db.agent());
    assert_clean(&verify(&log, db));

    fault(&client, "activemq", broker.pid(), &broker.agent());
    assert_clean(&verify(&log, db));

    let tomcat_pid = main_pid("tomcat", &tomcat.instance);
    fault(&client, "tomcat", tomcat_pid, &tomcat.agent());
    assert_clean(&verify(&log, db));

    let summary = client.stop();
    let out = verify(&log, db);
    assert_clean(&out);
    eprintln!("client: {summary}verify:\n{}", out.stdout);
    let acked = stat(&out, "acknowledged");
    // At least what the test waited for (50 before the faults, 20 after each of the 3 restarts),
    // as the ledger check counts them: a bound by construction, not by timing.
    assert!(acked >= 50 + 3 * 20, "only {acked} transactions acknowledged");
    // Every failed request was resolved: acknowledged, or given up only at the stop.
    let final_log = Log::read(&log).unwrap();
    let failed: std::collections::BTreeSet<u64> =
        final_log.events.iter().filter(|e| e.kind == Kind::Fail).map(|e| e.tx).collect();
    assert!(!failed.is_empty(), "the kills never reached the client");
    for tx in &failed {
        assert!(
            final_log.events.iter().any(|e| e.tx == *tx && (e.kind.acknowledges() || e.kind == Kind::Abandoned)),
            "transaction {tx} failed and was never resolved"
        );
    }

    // The check can fail: one acknowledged row deleted, another recorded twice.
    let acked_txs: Vec<u64> = final_log.events.iter().filter(|e| e.kind == Kind::Ack).map(|e| e.tx).collect();
    let (lost, twice) = (acked_txs[10], acked_txs[20]);
    let uid = nix::unistd::User::from_name("postgres").unwrap().unwrap().uid;
    let mut conn = hastack::net::pgwire::PgConn::connect(
        &db.root.join("sock").join(format!(".s.PGSQL.{}", db.port)),
        Some(uid),
        "postgres",
        "ledger",
        &[],
        hastack::ocf::Deadline::after(Duration::from_secs(10)),
    )
    .unwrap();
    let d = hastack::ocf::Deadline::after(Duration::from_secs(30));
    conn.query(&format!("DELETE FROM hastack_ledger WHERE run = 'e2e' AND tx = {lost}"), d).unwrap();
    conn.query(
        &format!(
            "INSERT INTO hastack_ledger (run, tx, payload, consumer) \
             SELECT run, tx, payload, consumer FROM hastack_ledger WHERE run = 'e2e' AND tx = {twice}"
        ),
        d,
    )
    .unwrap();
    let tampered = verify(&log, db);
    tampered.expect(1);
    assert!(tampered.stdout.contains(&format!("\nmissing 1 ({lost})\n")), "{}", tampered.stdout);
    assert!(tampered.stdout.contains(&format!("\nduplicated 1 (({twice}, 2))\n")), "{}", tampered.stdout);
    assert!(tampered.stdout.ends_with("result FAILED\n"), "{}", tampered.stdout);
}

/// Throughput and latency of the stack on this machine (BENCHMARKS.md). A measurement, not a
/// test of speed: ignored by default, run with
/// `cargo nextest run --run-ignored only -E 'test(bench_lab_app)' --no-capture`.
#[test]
#[ignore]
fn bench_lab_app_throughput_and_latency() {
    if !available() {
        return;
    }
    let stack = Stack::start();
    let dir = open_tempdir();
    // Warm the JVMs up first (JIT, connections), then each rate for a fixed span.
    let warm = dir.path().join("warm.log");
    Client::start(&stack.url(), &warm, "warm", 50.0).wait_acks_after(0, 500, "500 warm-up transactions");
    let mut report = vec![format!(
        "{:>8} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "rate/s", "acked/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    )];
    for rate in [25.0, 50.0, 100.0, 200.0, 400.0] {
        let log = dir.path().join(format!("r{rate}.log"));
        let span = 20.0;
        let out = run_with_deadline(
            Command::new(bin())
                .args(["lab", "client", "--url", &stack.url(), "--rate", &format!("{rate}/s"), "--run"])
                .arg(format!("bench{rate}"))
                .args(["--duration", &span.to_string(), "--max-inflight", "64", "--log"])
                .arg(&log),
            Duration::from_secs(120),
        );
        out.expect(0);
        let parsed = Log::read(&log).unwrap();
        let mut lat = parsed.ack_latencies_ms();
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        let acks: Vec<u64> = parsed.events.iter().filter(|e| e.kind.acknowledges()).map(|e| e.mono_ns).collect();
        let secs = (acks.iter().max().unwrap() - acks.iter().min().unwrap()) as f64 / 1e9;
        report.push(format!(
            "{rate:>8} {:>10.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            acks.len() as f64 / secs,
            q(0.5),
            q(0.9),
            q(0.99),
            lat.last().copied().unwrap_or(f64::NAN)
        ));
        assert_clean(&verify(&log, &stack.db));
    }
    eprintln!("lab application, POST to committed answer, client on loopback:\n{}", report.join("\n"));
}

#[test]
fn build_app_is_cached_until_its_sources_change() {
    if !need_program("javac", "default-jdk-headless")
        || !Path::new("/usr/share/java/postgresql.jar").exists()
            && !skip_or_fail("libpostgresql-jdbc-java is not installed")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cold = hastack(&["lab", "build-app", d]);
    cold.expect(0);
    assert!(cold.stdout.contains("(built, "), "{}", cold.stdout);
    let webapp = dir.path().join("webapp");
    for f in ["WEB-INF/web.xml", "WEB-INF/classes/hastack/lab/TxServlet.class", "WEB-INF/lib/postgresql.jar"] {
        assert!(webapp.join(f).is_file(), "{f} missing from the webapp");
    }
    let warm = hastack(&["lab", "build-app", d]);
    warm.expect(0);
    assert!(warm.stdout.contains("(up to date, "), "{}", warm.stdout);
    // A changed input (here the recorded key, as a changed source would) rebuilds.
    std::fs::write(dir.path().join("build.key"), "stale").unwrap();
    let again = hastack(&["lab", "build-app", d]);
    again.expect(0);
    assert!(again.stdout.contains("(built, "), "{}", again.stdout);
    eprintln!("build-app: cold {:?}, warm {:?}", cold.elapsed, warm.elapsed);
}

#[test]
fn verify_without_a_database_cannot_check_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("client.log");
    std::fs::write(&log, "# hastack lab client run=x\n1 2 SEND 1 1\n3 4 ACK 1 1 1.0\n").unwrap();
    let port = free_port();
    let out = hastack(&[
        "lab",
        "verify",
        "--log",
        log.to_str().unwrap(),
        "--db",
        &format!("postgresql://lab@127.0.0.1:{port}/ledger"),
        "--timeout",
        "3",
    ]);
    out.expect(2);
    assert!(out.stderr.contains("cannot connect to database 'ledger'"), "{}", out.stderr);
    let bad = hastack(&["lab", "verify", "--log", "/nonexistent/client.log", "--db", "postgresql://x@h/d"]);
    bad.expect(2);
    assert!(bad.stderr.contains("cannot read the client log /nonexistent/client.log"), "{}", bad.stderr);
}
