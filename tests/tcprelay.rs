//! The `tcprelay` agent: a relay on a virtual IP whose clients' connections survive a live
//! migration. Two network namespaces on one bridge are the two nodes, each with its own
//! /run/hastack (as each node has its own /run) and socat echoing lines on 127.0.0.1 (the
//! application); a third namespace is the client. Migrations are driven exactly as Pacemaker
//! drives them: migrate_to on the source, migrate_from on the target (both with
//! CRM_meta_migrate_source / CRM_meta_migrate_target, migrate_to with CRM_meta_record_pending),
//! then stop on the source. The same scenario under the real Pacemaker (`crm_resource --move` in
//! the lab) is left to the lab's tests.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hastack::net::tcprepair;

use crate::support::*;

/// Ports inside the test's own namespaces (nothing else listens there).
const PORT: u16 = 8080;
const APP_PORT: u16 = 9000;
const HANDOFF_PORT: u16 = 7480;
/// The resource id is the same on both nodes: it is one Pacemaker resource.
const RESOURCE: &str = "relay1";

fn ready(what: &str) -> bool {
    need_root(what) && need_program("ip", "iproute2") && need_program("socat", "socat")
}

/// A process group (socat and the children it forks per connection), killed on drop.
struct Group(Child);

impl Group {
    fn spawn(cmd: &mut Command) -> Group {
        let child =
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).process_group(0).spawn().unwrap();
        Group(child)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(-(self.0.id() as i32)),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.0.wait();
    }
}

/// `/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over /etc/hosts: the node names
/// resolve inside the namespace only. Removed on drop.
struct HostsFile(PathBuf);

impl HostsFile {
    fn new(ns: &str, text: &str) -> HostsFile {
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), text).unwrap();
        HostsFile(dir)
    }
}

impl Drop for HostsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two nodes and a client on one LAN, the echo application on both nodes, a shared key.
struct Cluster {
    lan: Lan,
    runs: [tempfile::TempDir; 2],
    key: tempfile::NamedTempFile,
    apps: Vec<Group>,
    _hosts: Vec<HostsFile>,
    vip: String,
}

impl Cluster {
    fn new() -> Cluster {
        let lan = Lan::new(3);
        let names = format!("{} node1\n{} node2\n", lan.v4(1), lan.v4(2));
        let hosts = vec![HostsFile::new(lan.ns(1), &names), HostsFile::new(lan.ns(2), &names)];
        let mut key = tempfile::NamedTempFile::new().unwrap();
        let mut secret = [0u8; 64];
        std::fs::File::open("/dev/urandom").unwrap().read_exact(&mut secret).unwrap();
        key.write_all(&secret).unwrap();
        let runs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let vip = lan.v4(50);
        let mut c = Cluster { lan, runs, key, apps: Vec::new(), _hosts: hosts, vip };
        for node in [1, 2] {
            c.start_app(node);
        }
        c
    }

    /// socat echoing every byte back (PIPE), one child per connection; half-closes answered.
    fn start_app(&mut self, node: usize) {
        let listen = format!("TCP-LISTEN:{APP_PORT},bind=127.0.0.1,reuseaddr,fork,backlog=1024");
        let app = Group::spawn(Command::new("ip").args([
            "netns",
            "exec",
            self.lan.ns(node),
            "socat",
            "-t",
            "30",
            &listen,
            "PIPE",
        ]));
        self.apps.push(app);
        let ns = self.lan.ns(node).to_string();
        wait_for("the echo application", Duration::from_secs(10), || {
            Command::new("ip")
                .args(["netns", "exec", &ns, "ss", "-Hltn", &format!("sport = :{APP_PORT}")])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
    }

    fn agent(&self, node: usize) -> AgentRun {
        AgentRun::new("tcprelay")
            .env("OCF_RESOURCE_INSTANCE", RESOURCE)
            .in_netns(self.lan.ns(node))
            .run_dir(self.runs[node - 1].path())
            .param("ip", &self.vip)
            .param("nic", "eth0")
            .param("cidr_netmask", "24")
            .param("port", PORT)
            .param("backend", format!("127.0.0.1:{APP_PORT}"))
            .param("handoff_port", HANDOFF_PORT)
            .param("handoff_key", self.key.path().display())
    }

    fn vip_addr(&self) -> SocketAddr {
        format!("{}:{PORT}", self.vip).parse().unwrap()
    }

    fn node_name(node: usize) -> String {
        format!("node{node}")
    }

    /// A migration as Pacemaker runs it: migrate_to on the source, migrate_from on the target,
    /// then stop on the source. Returns the two migration outcomes.
    fn migrate(&self, from: usize, to: usize) -> (Outcome, Outcome) {
        let with_nodes = |run: AgentRun| {
            run.meta("migrate_source", Self::node_name(from)).meta("migrate_target", Self::node_name(to))
        };
        let out_to = with_nodes(self.agent(from)).meta("record_pending", "true").run("migrate_to");
        out_to.expect(0);
        let out_from = with_nodes(self.agent(to)).run("migrate_from");
        out_from.expect(0);
        self.agent(from).run("stop").expect(0);
        (out_to, out_from)
    }

    /// Runs a command in a node's namespace and returns its output.
    fn on(&self, node: usize, args: &[&str]) -> String {
        self.lan.host(node).exec(args[0], &args[1..])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, run) in self.runs.iter().enumerate() {
                let console = std::fs::read_to_string(run.path().join(format!("tcprelay-{RESOURCE}.console")))
                    .unwrap_or_default();
                eprintln!("--- node{} relay console:\n{console}", i + 1);
            }
        }
        // The relays run in sessions of their own: stop them before their namespaces go.
        for node in [1, 2] {
            let _ = self.agent(node).run("stop");
        }
    }
}

/// Connects `n` clients from inside namespace `ns` (a socket keeps the namespace it was made in).
fn connect_all(ns: &str, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread with a valid namespace fd.
        assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) }, 0);
        (0..n).map(|_| TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap()).collect()
    })
    .join()
    .unwrap()
}

/// What one connection's reader saw.
#[derive(Debug)]
struct Seen {
    received: u64,
    /// The longest time between two consecutive answers (the migration's pause, as the client
    /// sees it) and when it ended.
    max_gap: Duration,
}

/// Clients streaming numbered lines (`<conn> <seq>`) and checking every echo: none lost,
/// duplicated or out of order, and the connection never reset or closed.
struct Traffic {
    stop: Arc<AtomicBool>,
    received: Vec<Arc<AtomicU64>>,
    targets: Vec<Arc<AtomicU64>>,
    writers: Vec<JoinHandle<Result<u64, String>>>,
    readers: Vec<JoinHandle<Result<Seen, String>>>,
    /// What failed so far (a reader's error, as it happened).
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Traffic {
    fn start(conns: Vec<TcpStream>, interval: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let mut t = Traffic {
            stop: stop.clone(),
            received: vec![],
            targets: vec![],
            writers: vec![],
            readers: vec![],
            errors: Default::default(),
        };
        for (id, conn) in conns.into_iter().enumerate() {
            let received = Arc::new(AtomicU64::new(0));
            let target = Arc::new(AtomicU64::new(u64::MAX));
            let mut w = conn.try_clone().unwrap();
            let stop = stop.clone();
            t.writers.push(std::thread::spawn(move || {
                let mut seq = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    w.write_all(format!("{id} {seq}\n").as_bytes()).map_err(|e| format!("conn {id}: write: {e}"))?;
                    seq += 1;
                    std::thread::sleep(interval);
                }
                Ok(seq)
            }));
            let (r, tgt) = (received.clone(), target.clone());
            let errors = t.errors.clone();
            t.readers.push(std::thread::spawn(move || {
                let seen = read_echoes(id, conn, &r, &tgt);
                if let Err(e) = &seen {
                    errors.lock().unwrap().push(e.clone());
                }
                seen
            }));
            t.received.push(received);
            t.targets.push(target);
        }
        t
    }

    /// Waits until every connection got `more` answers beyond what it had.
    fn flowing(&self, more: u64, limit: Duration) {
        let base: Vec<u64> = self.received.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        let started = Instant::now();
        while !self.received.iter().zip(&base).all(|(r, b)| r.load(Ordering::SeqCst) >= b + more) {
            if started.elapsed() > limit {
                let now: Vec<u64> = self.received.iter().map(|r| r.load(Ordering::SeqCst)).collect();
                let errors = self.errors.lock().unwrap().clone();
                panic!("not every connection got {more} more answers within {limit:?}: before {base:?}, now {now:?}; errors: {errors:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the writers, waits for every answer, returns what each connection saw.
    fn finish(self) -> Vec<Result<Seen, String>> {
        self.stop.store(true, Ordering::SeqCst);
        let mut results = Vec::new();
        for ((w, r), target) in self.writers.into_iter().zip(self.readers).zip(&self.targets) {
            match w.join().unwrap() {
                Ok(sent) => {
                    target.store(sent, Ordering::SeqCst);
                    results.push(r.join().unwrap());
                }
                Err(e) => {
                    target.store(0, Ordering::SeqCst);
                    let _ = r.join();
                    results.push(Err(e));
                }
            }
        }
        results
    }
}

fn read_echoes(id: usize, conn: TcpStream, received: &AtomicU64, target: &AtomicU64) -> Result<Seen, String> {
    conn.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut reader = BufReader::new(conn);
    let mut seen = Seen { received: 0, max_gap: Duration::ZERO };
    let mut last = Instant::now();
    let mut line = String::new();
    loop {
        if seen.received >= target.load(Ordering::SeqCst) {
            return Ok(seen);
        }
        if last.elapsed() > Duration::from_secs(30) {
            return Err(format!("conn {id}: no answer for 30 s after {}", seen.received));
        }
        match reader.read_line(&mut line) {
            Ok(0) => return Err(format!("conn {id}: closed by the other end after {} answers", seen.received)),
            Ok(_) if !line.ends_with('\n') => continue,
            Ok(_) => {
                let expected = format!("{id} {}\n", seen.received);
                if line != expected {
                    return Err(format!("conn {id}: expected {expected:?}, got {line:?}"));
                }
                line.clear();
                seen.received += 1;
                received.store(seen.received, Ordering::SeqCst);
                seen.max_gap = seen.max_gap.max(last.elapsed());
                last = Instant::now();
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("conn {id}: {e} after {} answers", seen.received)),
        }
    }
}

/// The figures of one migration, printed for BENCHMARKS.md (bench/tcprelay.sh).
fn report(label: &str, seen: &[Seen], out_to: &Outcome, out_from: &Outcome) {
    let mut gaps: Vec<u128> = seen.iter().map(|s| s.max_gap.as_millis()).collect();
    gaps.sort_unstable();
    let pct = |p: usize| gaps[(gaps.len() * p / 100).min(gaps.len() - 1)];
    let line = |o: &Outcome, word: &str| {
        o.stderr
            .lines()
            .find(|l| l.contains(word))
            .map(|l| l.split("INFO: ").last().unwrap_or(l).to_string())
            .unwrap_or_default()
    };
    eprintln!(
        "BENCH {label}: {} connections; longest pause seen by a client: median {} ms, p95 {} ms, max {} ms; migrate_to {} ms, migrate_from {} ms",
        gaps.len(),
        pct(50),
        pct(95),
        gaps[gaps.len() - 1],
        out_to.elapsed.as_millis(),
        out_from.elapsed.as_millis(),
    );
    eprintln!("BENCH {label}: source: {}", line(out_to, "froze"));
    eprintln!("BENCH {label}: target: {}", line(out_from, "restored"));
}

fn all_ok(results: Vec<Result<Seen, String>>) -> Vec<Seen> {
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{} connections failed: {errors:?}", errors.len());
    results.into_iter().map(Result::unwrap).collect()
}

fn connections() -> usize {
    std::env::var("HASTACK_RELAY_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(100)
}

#[test]
fn tcprelay_repair_round_trip_on_loopback() {
    if !need_root("TCP_REPAIR") {
        return;
    }
    // A connection with unread data on one side and unread answers on the other is frozen,
    // closed in repair mode, recreated, and goes on: no byte lost, no reset.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut server, _) = l.accept().unwrap();
    client.write_all(&vec![b'a'; 100_000]).unwrap();
    server.write_all(&vec![b'b'; 50_000]).unwrap();
    let mut first = vec![0u8; 1000];
    server.read_exact(&mut first).unwrap();
    // Nothing may be in flight when the socket goes (on one host, a segment to a closed socket
    // would meet a reset): wait until each side has all the other sent.
    wait_for("the queues to settle", Duration::from_secs(5), || {
        let inq = |s: &TcpStream| {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int.
            unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(s), libc::FIONREAD, &mut n) };
            n
        };
        inq(&server) == 99_000 && inq(&client) == 50_000
    });
    let state = tcprepair::capture(server.as_fd()).unwrap();
    assert_eq!(state.recv_queue.len(), 99_000);
    assert!(state.mss > 0 && state.sack && state.timestamp.is_some() && state.wscale.is_some(), "{state:?}");
    drop(server);
    let fd = tcprepair::restore(&state, false).unwrap();
    tcprepair::leave_repair(fd.as_fd(), false).unwrap();
    let mut server = TcpStream::from(fd);
    server.write_all(state.unsent_part()).unwrap();
    let mut rest = vec![0u8; 99_000];
    server.read_exact(&mut rest).unwrap();
    assert!(rest.iter().all(|b| *b == b'a'));
    let mut answers = vec![0u8; 50_000];
    client.read_exact(&mut answers).unwrap();
    assert!(answers.iter().all(|b| *b == b'b'));
    client.write_all(b"more").unwrap();
    let mut m = [0u8; 4];
    server.read_exact(&mut m).unwrap();
    assert_eq!(&m, b"more");
    server.write_all(b"back").unwrap();
    client.read_exact(&mut m).unwrap();
    assert_eq!(&m, b"back");
}

#[test]
fn tcprelay_live_migration_keeps_every_connection() {
    if !ready("tcprelay live migration") {
        return;
    }
    let c = Cluster::new();
    c.agent(1).run("start").expect(0);
    c.agent(1).recurring().run("monitor").expect(0);
    c.agent(1).recurring().depth(10).run("monitor").expect(0);
    c.agent(2).run("monitor").expect(7);

    let n = connections();
    let traffic = Traffic::start(connect_all(c.lan.ns(3), c.vip_addr(), n), Duration::from_millis(20));
    traffic.flowing(20, Duration::from_secs(30));

    let (to, from) = c.migrate(1, 2);
    assert!(to.stderr.contains(&format!("froze {n} connections")), "{}", to.stderr);
    assert!(from.stderr.contains(&format!("restored {n} connections")), "{}", from.stderr);
    assert!(!c.on(1, &["ip", "-o", "addr"]).contains(&format!("{}/", c.vip)), "the source kept the address");
    c.agent(2).recurring().run("monitor").expect(0);
    c.agent(1).run("monitor").expect(7);
    traffic.flowing(20, Duration::from_secs(30));
    let first = traffic.finish();
    let seen = all_ok(first);
    report("node1 -> node2", &seen, &to, &from);

    // And back, on connections opened on node2 this time plus the carried ones' successors.
    let traffic = Traffic::start(connect_all(c.lan.ns(3), c.vip_addr(), n), Duration::from_millis(20));
    traffic.flowing(20, Duration::from_secs(30));
    let (to, from) = c.migrate(2, 1);
    c.agent(1).recurring().run("monitor").expect(0);
    traffic.flowing(20, Duration::from_secs(30));
    let seen = all_ok(traffic.finish());
    report("node2 -> node1", &seen, &to, &from);
    c.agent(1).run("stop").expect(0);
    c.agent(1).run("monitor").expect(7);
}
