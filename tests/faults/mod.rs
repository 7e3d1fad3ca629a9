//! The fault matrix (issue 17): every service agent through the same faults, applied the same
//! way, each answer checked for its exact exit code, a fragment of its exit reason, and time
//! within the budget Pacemaker would give it (`CRM_meta_timeout`).
//!
//! One test per agent (`faults::nginx`...), so nextest runs agents side by side in processes that
//! share nothing; each writes its row to `target/fault-matrix/<agent>.tsv` and re-renders
//! `target/fault-matrix.md` from every row present (`bench/fault-matrix.sh` runs them all and
//! puts the table in BENCHMARKS.md). A fault that does not apply to an agent is a cell "n/a" with
//! the reason, never a silent skip. The expectations are [`expected`]: one table, written down.
//!
//! Each fixture ([`fixtures`]) reuses its area's set-up (tests/front, tests/data) and says only
//! what differs: its parameters, how its configuration breaks, where its data directory is (on an
//! ext4 loop device, as the replicated partition), which port it needs, and how another server
//! takes its data directory.

mod fixtures;
mod render;

use std::net::TcpListener;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hastack::sys::{proc, tree};
use nix::sys::signal::Signal;

use crate::front::{assert_port_free, main_pid, session_survivors};
use crate::support::*;

/// Budgets, as Pacemaker passes them in `CRM_meta_timeout`: the monitor and stop of every agent;
/// start is the fixture's (a JVM takes longer than nginx).
const MONITOR_MS: u64 = 10_000;
const STOP_MS: u64 = 30_000;

/// The faults, in the order they are applied (the destructive ones last).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    BrokenConfig,
    PortTaken,
    DataMissing,
    DataForeign,
    Kill9,
    SigstopMonitor,
    SigstopStop,
    ReadOnly,
    DiskFull,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::BrokenConfig,
        Fault::PortTaken,
        Fault::DataMissing,
        Fault::DataForeign,
        Fault::Kill9,
        Fault::SigstopMonitor,
        Fault::SigstopStop,
        Fault::ReadOnly,
        Fault::DiskFull,
    ];

    /// The column title: the fault, and the action whose answer the cell shows.
    pub fn title(self) -> &'static str {
        match self {
            Fault::BrokenConfig => "broken config: start",
            Fault::PortTaken => "port taken: start",
            Fault::DataMissing => "data dir missing: start",
            Fault::DataForeign => "data dir of another running server: start",
            Fault::Kill9 => "kill -9: monitor",
            Fault::SigstopMonitor => "SIGSTOP: monitor 0/10/20",
            Fault::SigstopStop => "SIGSTOP: stop",
            Fault::ReadOnly => "read-only data dir: start",
            Fault::DiskFull => "full disk: start",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Fault::BrokenConfig => "broken-config",
            Fault::PortTaken => "port-taken",
            Fault::DataMissing => "data-missing",
            Fault::DataForeign => "data-foreign",
            Fault::Kill9 => "kill9",
            Fault::SigstopMonitor => "sigstop-monitor",
            Fault::SigstopStop => "sigstop-stop",
            Fault::ReadOnly => "read-only",
            Fault::DiskFull => "disk-full",
        }
    }
}

/// What one agent is expected to answer to one fault.
#[derive(Clone, Debug)]
pub enum Expected {
    /// This exit code, with these fragments in the exit reason (none for success).
    Code(i32, Vec<String>),
    /// The fault cannot happen to this agent, and why.
    NotApplicable(&'static str),
}

/// The data directory of a data-layer agent: on an ext4 loop device mounted at `mount`.
pub struct DataDir {
    pub param: &'static str,
    pub path: PathBuf,
    pub mount: PathBuf,
}

/// What the matrix needs of one agent's set-up.
/// What the matrix expects of an agent, the same for every instance of it.
pub struct Facts {
    pub agent: &'static str,
    /// What exit reasons call the server ("nginx", "postgres", "the broker").
    pub server: &'static str,
    /// The start budget (the resource's start timeout).
    pub start_ms: u64,
    /// The software's own words for the broken configuration.
    pub config_says: &'static str,
    /// What a probe of the stopped resource says (exit 7).
    pub stopped_says: &'static str,
    /// Whether processes of the server outlive a kill -9 of its main process (nginx's workers).
    pub kill9_leaves_workers: bool,
    /// What the exit reason calls another server on the data directory ("postmaster", "server",
    /// "broker", "node"); empty for agents that keep no data.
    pub foreign_is: &'static str,
}

/// The default probe answer of a stopped service agent.
pub const NOT_RUNNING: &str = "is not running";

pub trait Fixture {
    fn facts(&self) -> &'static Facts;
    /// The resource, with every parameter; `Facts::start_ms` is its start budget.
    fn run(&self) -> AgentRun;
    fn instance(&self) -> String;
    /// The port the port-taken fault holds, and the port stop must leave free.
    fn port(&self) -> u16;
    /// The configuration file a typo breaks, which the reason must name (None: the agent has no
    /// configuration file, its command is at fault).
    fn config_file(&self) -> Option<PathBuf>;
    /// Breaks the configuration the way an administrator's typo would.
    fn break_config(&self);
    fn repair_config(&self);
    /// The data directory (None: the agent keeps no data, and why).
    fn data(&self) -> Result<&DataDir, &'static str>;
    /// Another server of the same software, not this resource's, on the data directory: its
    /// main PID, and a guard that stops it.
    fn foreign(&self) -> (i32, Box<dyn std::any::Any>);
    /// The server's main process, as the agent monitors it (the state file's PID: the process
    /// start launched).
    fn main_process(&self) -> i32 {
        main_pid(self.facts().agent, &self.instance())
    }
}

/// The expectations, one per (agent, fault), from README's rules on exit codes:
/// - kill -9: 7 (safely stopped) only once nothing of the server is left; 1 while workers hold
///   its port (Pacemaker then calls stop, which kills them);
/// - SIGSTOP: monitor 1 at every depth, at once (a hung server never makes monitor time out);
///   stop continues it or kills it: 0 within the stop budget;
/// - a broken node-local configuration: 2 (banned on this node; the peer has its own copy),
///   naming the file and quoting the server; the app agent has no file, its command fails: 1;
/// - port taken: 1, naming the port and its holder;
/// - data directory missing (the partition is not mounted here): 5;
/// - data directory of another running server: 1, refused before a second server starts;
/// - read-only data directory: 4 (this node cannot write it, as for a permission), naming it;
/// - full disk: 1 (a fault of the data, not of this node: the replicated partition is as full on
///   the peer), refused before the launch, naming the directory (ActiveMQ would start on it and
///   block every persistent message).
pub fn expected(fx: &dyn Fixture, fault: Fault) -> Expected {
    let server = fx.facts().server;
    let code = |c: i32, why: String| Expected::Code(c, vec![why]);
    let data = fx.data();
    match fault {
        Fault::BrokenConfig => match fx.config_file() {
            Some(file) => Expected::Code(
                2,
                vec![
                    format!(
                        "node-local configuration file {} rejected by {server}: banned on this node: ",
                        file.display()
                    ),
                    fx.facts().config_says.to_string(),
                ],
            ),
            None => code(1, fx.facts().config_says.to_string()),
        },
        Fault::PortTaken => code(1, format!("port {} is already held by PID {} (", fx.port(), std::process::id())),
        Fault::Kill9 if fx.facts().kill9_leaves_workers => {
            Expected::Code(1, vec!["main process".into(), "is gone but".into(), format!("holding port {}", fx.port())])
        }
        Fault::Kill9 => code(7, fx.facts().stopped_says.into()),
        Fault::SigstopMonitor => code(1, "is stopped (SIGSTOP or traced): it cannot serve".into()),
        Fault::SigstopStop => Expected::Code(0, vec![]),
        _ => match data {
            Err(why) => Expected::NotApplicable(why),
            Ok(d) => match fault {
                Fault::DataMissing => code(5, "does not exist on this node".into()),
                Fault::DataForeign => code(1, format!("in use by another running {}", fx.facts().foreign_is)),
                Fault::ReadOnly => code(
                    4,
                    format!(
                        "data directory {} (parameter '{}') is on a read-only filesystem",
                        d.path.display(),
                        d.param
                    ),
                ),
                Fault::DiskFull => Expected::Code(
                    1,
                    vec![
                        format!(
                            "data directory {} (parameter '{}') is on a full filesystem",
                            d.path.display(),
                            d.param
                        ),
                        "No space left on device".into(),
                    ],
                ),
                _ => unreachable!(),
            },
        },
    }
}

/// One action's answer.
#[derive(Clone, Debug)]
pub struct Got {
    pub code: i32,
    pub reason: String,
    pub elapsed: Duration,
    pub budget: Duration,
}

impl Got {
    fn of(out: &Outcome, budget_ms: u64) -> Got {
        Got {
            code: out.code,
            reason: out.exit_reason().unwrap_or("").trim().to_string(),
            elapsed: out.elapsed,
            budget: Duration::from_millis(budget_ms),
        }
    }
}

/// One cell of the matrix.
pub struct Cell {
    pub agent: &'static str,
    pub fault: Fault,
    pub expected: Expected,
    pub got: Option<Got>,
    /// Why the cell fails (None: as expected, within budget).
    pub failure: Option<String>,
}

/// Runs every fault on the fixture, writes the row, fails if any cell is not as expected.
pub fn run_matrix(make: fn() -> Option<Box<dyn Fixture>>) {
    let Some(fx) = make() else { return };
    let mut cells = Vec::new();
    let mut sigstop_stop: Option<Result<Got, String>> = None;
    for fault in Fault::ALL {
        let expected = expected(fx.as_ref(), fault);
        let mut cell = Cell { agent: fx.facts().agent, fault, expected: expected.clone(), got: None, failure: None };
        if let Expected::Code(want, fragments) = &expected {
            let result = match fault {
                // Measured with the monitors, in the same scenario.
                Fault::SigstopStop => {
                    sigstop_stop.take().unwrap_or_else(|| Err("the SIGSTOP scenario did not run".into()))
                }
                _ => attempt(|| apply(fx.as_ref(), fault, &mut sigstop_stop)),
            };
            match result {
                Ok(got) => {
                    cell.failure = judge(*want, fragments, &got);
                    cell.got = Some(got);
                }
                Err(why) => cell.failure = Some(why),
            }
            // Whatever the fault left, the next one starts from a stopped resource.
            let _ = attempt(|| {
                fx.run().timeout_ms(STOP_MS).run("stop");
                Got { code: 0, reason: String::new(), elapsed: Duration::ZERO, budget: Duration::ZERO }
            });
        }
        cells.push(cell);
    }
    render::write_row(fx.facts().agent, &cells);
    let failed: Vec<String> = cells
        .iter()
        .filter_map(|c| c.failure.as_ref().map(|f| format!("{} / {}: {f}", c.agent, c.fault.title())))
        .collect();
    assert!(failed.is_empty(), "fault matrix cells not as expected:\n{}", failed.join("\n"));
}

/// Runs one scenario; a panic (a set-up step or a secondary check that failed) is the cell's
/// failure, with its message, and the other cells still run.
fn attempt(f: impl FnOnce() -> Got) -> Result<Got, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

fn judge(want: i32, fragments: &[String], got: &Got) -> Option<String> {
    if got.code != want {
        return Some(format!("exit {} (expected {want}): {}", got.code, got.reason));
    }
    if let Some(missing) = fragments.iter().find(|f| !got.reason.contains(f.as_str())) {
        return Some(format!("exit reason {:?} does not contain {missing:?}", got.reason));
    }
    if got.elapsed >= got.budget {
        return Some(format!("took {:?}, over its budget of {:?}", got.elapsed, got.budget));
    }
    None
}

fn apply(fx: &dyn Fixture, fault: Fault, sigstop_stop: &mut Option<Result<Got, String>>) -> Got {
    match fault {
        Fault::BrokenConfig => broken_config(fx),
        Fault::PortTaken => port_taken(fx),
        Fault::DataMissing => data_missing(fx),
        Fault::DataForeign => data_foreign(fx),
        Fault::Kill9 => kill9(fx),
        Fault::SigstopMonitor => {
            let (monitor, stop) = sigstop(fx);
            *sigstop_stop = Some(stop);
            monitor
        }
        Fault::SigstopStop => unreachable!("measured by the SIGSTOP scenario"),
        Fault::ReadOnly => read_only(fx),
        Fault::DiskFull => disk_full(fx),
    }
}

fn start(fx: &dyn Fixture) -> Outcome {
    fx.run().timeout_ms(fx.facts().start_ms).run("start")
}

/// A start the fault must refuse, then what Pacemaker does next (stop) and a probe: the
/// resource is left stopped, nothing of it running.
fn refused_start(fx: &dyn Fixture, run: &AgentRun) -> Got {
    let out = run.clone().timeout_ms(fx.facts().start_ms).run("start");
    run.clone().timeout_ms(STOP_MS).run("stop").expect(0);
    run.clone().timeout_ms(MONITOR_MS).run("monitor").expect(7);
    Got::of(&out, fx.facts().start_ms)
}

fn broken_config(fx: &dyn Fixture) -> Got {
    fx.break_config();
    let got = attempt(|| refused_start(fx, &fx.run()));
    fx.repair_config();
    got.unwrap_or_else(|e| panic!("{e}"))
}

fn port_taken(fx: &dyn Fixture) -> Got {
    let _holder = TcpListener::bind(("127.0.0.1", fx.port())).expect("the test holds the port");
    refused_start(fx, &fx.run())
}

fn data(fx: &dyn Fixture) -> &DataDir {
    fx.data().expect("a data-layer fault on an agent with a data directory")
}

/// The partition is not mounted on this node: the data directory's path does not exist.
fn data_missing(fx: &dyn Fixture) -> Got {
    let d = data(fx);
    let absent = d.mount.join("not-mounted").join("data");
    refused_start(fx, &fx.run().param(d.param, absent.display()))
}

fn data_foreign(fx: &dyn Fixture) -> Got {
    let (pid, guard) = fx.foreign();
    let got = refused_start(fx, &fx.run());
    assert!(proc::is_alive(pid), "the other server (PID {pid}) was left alone");
    drop(guard);
    got
}

/// Starts the resource; returns the main process and its session.
fn started(fx: &dyn Fixture) -> (i32, i32) {
    start(fx).expect(0);
    let pid = fx.main_process();
    let sid = proc::stat(pid).expect("the main process runs").session;
    (pid, sid)
}

/// Stop after the fault: 0 within its budget, nothing of the session left, the port free (as
/// `ss` sees it), and a probe says stopped.
fn stopped_clean(fx: &dyn Fixture, pid: i32, sid: i32) -> Outcome {
    let stop = fx.run().timeout_ms(STOP_MS).run("stop");
    stop.expect(0);
    assert!(!tree::any_thread_alive(pid), "the main process {pid} survived stop");
    let left = session_survivors(sid);
    assert!(left.is_empty(), "processes of session {sid} survived stop: {left:?}");
    assert_port_free(fx.port());
    fx.run().timeout_ms(MONITOR_MS).run("monitor").expect(7);
    stop
}

fn kill9(fx: &dyn Fixture) -> Got {
    let (pid, sid) = started(fx);
    if fx.facts().kill9_leaves_workers {
        // Ready means listening, which the master does before it forks its workers.
        wait_for("the workers to run", Duration::from_secs(10), || session_survivors(sid).len() > 1);
    }
    assert!(proc::signal(pid, Signal::SIGKILL));
    wait_for("the main process to die", Duration::from_secs(10), || !tree::any_thread_alive(pid));
    // What the killed process leaves, as ps (not the agent's own scan) sees it: children that
    // notice their parent's death exit on their own; nginx's workers stay.
    if fx.facts().kill9_leaves_workers {
        assert!(!session_survivors(sid).is_empty(), "no worker outlived the kill -9 of {pid}");
    } else {
        wait_for("the killed server's other processes to exit", Duration::from_secs(20), || {
            session_survivors(sid).is_empty()
        });
    }
    let monitor = fx.run().recurring().timeout_ms(MONITOR_MS).run("monitor");
    if fx.facts().kill9_leaves_workers {
        assert!(!session_survivors(sid).is_empty(), "the workers exited while the monitor ran");
    }
    stopped_clean(fx, pid, sid);
    Got::of(&monitor, MONITOR_MS)
}

/// SIGSTOP of the main process: monitor at depth 0, 10 and 20 (the cell shows the slowest, or the
/// first wrong answer), then stop.
fn sigstop(fx: &dyn Fixture) -> (Got, Result<Got, String>) {
    let (pid, sid) = started(fx);
    assert!(proc::signal(pid, Signal::SIGSTOP));
    wait_for("the main process to be stopped", Duration::from_secs(10), || {
        proc::stat(pid).is_some_and(|s| s.state == 'T')
    });
    let mut worst: Option<Got> = None;
    for depth in [0, 10, 20] {
        let out = fx.run().recurring().depth(depth).timeout_ms(MONITOR_MS).run("monitor");
        let got = Got::of(&out, MONITOR_MS);
        let wrong = |g: &Got| g.code != 1;
        worst = Some(match worst {
            Some(w) if wrong(&w) || (!wrong(&got) && w.elapsed >= got.elapsed) => w,
            _ => got,
        });
    }
    let stop = attempt(|| Got::of(&stopped_clean(fx, pid, sid), STOP_MS));
    (worst.unwrap(), stop)
}

/// The partition mounted read-only (as ext4 remounts itself after an I/O error).
fn read_only(fx: &dyn Fixture) -> Got {
    let d = data(fx);
    let _rw = Remount::ro(&d.mount);
    refused_start(fx, &fx.run())
}

fn disk_full(fx: &dyn Fixture) -> Got {
    let d = data(fx);
    let _filler = Filler::fill(&d.mount);
    refused_start(fx, &fx.run())
}

/// A filesystem remounted read-only, remounted read-write on drop.
struct Remount(PathBuf);

impl Remount {
    fn ro(mount: &Path) -> Remount {
        sh("mount", &["-o", "remount,ro", mount.to_str().unwrap()]);
        Remount(mount.to_path_buf())
    }
}

impl Drop for Remount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("mount").args(["-o", "remount,rw"]).arg(&self.0).status();
    }
}

/// A file that takes every free block of a filesystem (root's reserve too), removed on drop.
struct Filler(PathBuf);

impl Filler {
    fn fill(mount: &Path) -> Filler {
        let file = mount.join(format!("{}.fill", unique_name("full")));
        let filler = Filler(file.clone());
        let st = nix::sys::statvfs::statvfs(mount).unwrap();
        let free = st.blocks_free() as u64 * st.fragment_size() as u64;
        // fallocate takes the blocks without writing them; dd takes what is left to the byte.
        let _ = std::process::Command::new("fallocate")
            .args(["-l", &free.saturating_sub(1 << 20).to_string()])
            .arg(&file)
            .status();
        let _ = std::process::Command::new("dd")
            .args(["if=/dev/zero", "bs=4096", "oflag=append", "conv=notrunc"])
            .arg(format!("of={}", file.display()))
            .stderr(std::process::Stdio::null())
            .status();
        sh("sync", &[]);
        // ext4 keeps blocks for root and its own metadata: none is left for a server's account.
        let st = nix::sys::statvfs::statvfs(mount).unwrap();
        assert_eq!(st.blocks_available(), 0, "{} still has blocks available to its servers", mount.display());
        filler
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

macro_rules! matrix {
    ($($agent:ident),* $(,)?) => {
        $(
            #[test]
            fn $agent() {
                run_matrix(fixtures::$agent);
            }
        )*
    };
}

matrix!(haproxy, apache, nginx, tomcat, app, postgresql, mariadb, activemq, rabbitmq);
