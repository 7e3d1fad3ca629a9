//! `hastack lab bench N`: N power cuts of the node running the data layers, then N kill -9 of
//! the database on its node, each timed from Pacemaker's own records: the survivor's
//! pacemaker.log (peer lost, fencing requested and confirmed, every layer's start result, with
//! milliseconds) and the power log of the UPS that was switched off. Printed per run and as
//! medians. Between runs the lab settles: the fenced node boots again (Pacemaker fences with
//! `reboot`), rejoins, and its clone instances start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::client::{monotonic_ns, Log};
use super::crm::ClusterState;
use super::journal::{self, Made};
use super::layout::Lab;
use super::plan::{self, param, Plan};
use super::timeline::{self, Event};
use super::{node, services, status};
use crate::config::stack::Stack;
use crate::ocf::Deadline;
use crate::sys::identity::Identity;
use crate::sys::proc;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// How many runs of each scenario.
    #[arg(default_value_t = 1)]
    pub runs: u32,
    /// cut: power cuts of the node running the data layers; kill: kill -9 of the database
    /// server (restarted in place); both: the cuts, then the kills.
    #[arg(long, default_value = "both", value_parser = ["cut", "kill", "both"])]
    pub scenario: String,
}

/// How long a failover may take before the bench gives up on it.
const FAILOVER_LIMIT: Duration = Duration::from_secs(300);
/// How long the lab may take to settle again (the fenced node boots and rejoins).
const SETTLE_LIMIT: Duration = Duration::from_secs(600);
/// How long after the stack is back the first transaction may take to be acknowledged.
const FIRST_TX_LIMIT: Duration = Duration::from_secs(120);
/// The client's steady rate (transactions started per second).
const RATE: &str = "20/s";

/// One measured run: what happened, in seconds after the fault.
#[derive(Clone, Debug, Default)]
pub struct Run {
    pub title: String,
    pub steps: Vec<(String, Option<f64>)>,
    pub notes: Vec<String>,
}

pub fn run(lab: &Lab, args: BenchArgs) -> Result<i32> {
    let loaded = super::load_stack(lab)?;
    let plan = plan::plan(&loaded)?;
    let stack = &loaded.stack;
    settle(lab, &plan)?;
    let client = Client::start(lab, &plan, stack)?;
    println!(
        "agents: {} (`lab up --agents`); client: run {} at {RATE} through {} (log {})",
        super::load_agents(lab).name(),
        client.run,
        client.url,
        client.log.display()
    );
    let result = measure(lab, &plan, stack, &args, &client);
    let stopped = client.stop();
    let (cuts, kills) = result?;
    stopped?;
    let check = client.verify(lab, &plan, stack)?;
    if !cuts.is_empty() {
        println!("\n== power cut of the node running the data layers: seconds after the cut");
        print!("{}", table(&cuts));
    }
    if !kills.is_empty() {
        println!("\n== kill -9 of the database server: seconds after the kill");
        print!("{}", table(&kills));
    }
    println!("\n== transactions (hastack lab verify: the client's log against the ledger)\n{}", check.text);
    let moved = kills.iter().any(|k| k.notes.iter().any(|n| n.starts_with("MOVED")));
    Ok(if check.ok && !moved { 0 } else { 1 })
}

fn measure(lab: &Lab, plan: &Plan, stack: &Stack, args: &BenchArgs, client: &Client) -> Result<(Vec<Run>, Vec<Run>)> {
    let mut cuts = Vec::new();
    for i in (1..=args.runs).filter(|_| args.scenario != "kill") {
        settle(lab, plan)?;
        let run = power_cut(lab, plan, stack, client, i)?;
        print!("{}", show_run(&run));
        cuts.push(run);
    }
    let mut kills = Vec::new();
    for i in (1..=args.runs).filter(|_| args.scenario != "cut") {
        settle(lab, plan)?;
        let run = kill_database(lab, plan, stack, client, i)?;
        print!("{}", show_run(&run));
        kills.push(run);
    }
    settle(lab, plan)?;
    Ok((cuts, kills))
}

/// The lab's transaction client (`hastack lab client`), run from the client's namespace for the
/// whole bench: the first acknowledged transaction after each fault, and at the end the ledger
/// check.
struct Client {
    id: Identity,
    run: String,
    url: String,
    log: PathBuf,
    console: PathBuf,
}

/// What `hastack lab verify` said.
struct Check {
    ok: bool,
    text: String,
}

impl Client {
    fn start(lab: &Lab, plan: &Plan, stack: &Stack) -> Result<Client> {
        let url = services::app_url(plan, stack)?;
        let dir = lab.dir.join("bench");
        std::fs::create_dir_all(&dir)?;
        let run = format!("bench{}", now() as u64);
        let log = dir.join(format!("{run}.log"));
        let console = dir.join(format!("{run}.console"));
        let out = std::fs::File::create(&console)?;
        let mut cmd = std::process::Command::new("ip");
        super::host::clean_env(&mut cmd)
            .args(["netns", "exec", &lab.client_netns()])
            .arg(lab.binary())
            .args(["lab", "client", "--url", &url, "--rate", RATE, "--run", &run, "--log"])
            .arg(&log)
            .stdout(std::process::Stdio::from(out.try_clone()?))
            .stderr(std::process::Stdio::from(out));
        // The client ends with the bench (^C included): SIGTERM makes it resolve what is open.
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        // `ip netns exec` execs the client: this PID is the client's.
        let child = proc::spawn_daemon(&mut cmd).context("cannot start the lab's client")?;
        let id = Identity::of(child.id() as i32).context("the client died at once")?;
        journal::record(&lab.journal(), &Made::Process { role: "client".into(), id })?;
        let client = Client { id, run, url, log, console };
        let acked = Deadline::after(FIRST_TX_LIMIT)
            .poll(Duration::from_millis(200), || client.read().ok().filter(|l| l.acknowledged_count() > 0));
        if acked.is_none() {
            let _ = client.stop();
            bail!(
                "the client's transactions are not acknowledged through {}:\n{}",
                client.url,
                super::tail(&client.console, 5) + &super::tail(&client.log, 5)
            );
        }
        Ok(client)
    }

    fn read(&self) -> Result<Log> {
        Log::read(&self.log)
    }

    /// After a fault made from `fault_mono` to `done_mono` (CLOCK_MONOTONIC): seconds from
    /// `fault_mono` until the first transaction sent after `done_mono` was acknowledged, and the
    /// longest pause between two acknowledgements up to then (what a user of the stack saw),
    /// waiting for that transaction until the limit. A transaction sent while the fault was
    /// still being made (a power cut takes the links down, then kills PID 1: tens of ms on a
    /// busy machine) may still be answered by the old primary, which says nothing of recovery.
    fn recovery(&self, fault_mono: u64, done_mono: u64) -> (Option<f64>, Option<f64>) {
        let found = Deadline::after(FIRST_TX_LIMIT).poll(Duration::from_millis(100), || {
            let log = self.read().ok()?;
            let first = first_ack_sent_after(&log, done_mono)?;
            Some((first, longest_ack_pause(&log, fault_mono, first)))
        });
        match found {
            Some((first, pause)) => (Some(secs_between(fault_mono, first)), pause),
            None => (None, None),
        }
    }

    /// Stops the client (it resolves its open transactions first) and waits for it.
    fn stop(&self) -> Result<()> {
        if !self.id.is_alive() {
            return Ok(());
        }
        proc::signal(self.id.pid, nix::sys::signal::Signal::SIGTERM);
        let gone = Deadline::after(Duration::from_secs(120))
            .poll(Duration::from_millis(100), || (!self.id.is_alive()).then_some(()));
        if gone.is_none() {
            proc::signal(self.id.pid, nix::sys::signal::Signal::SIGKILL);
            bail!("the client did not stop within 120 s of SIGTERM; killed");
        }
        Ok(())
    }

    /// `hastack lab verify` from the client's namespace (the ledger is behind the data layer's
    /// virtual IP): acknowledged transactions missing, transactions recorded twice.
    fn verify(&self, lab: &Lab, plan: &Plan, stack: &Stack) -> Result<Check> {
        let mut cmd = std::process::Command::new("ip");
        super::host::clean_env(&mut cmd)
            .args(["netns", "exec", &lab.client_netns()])
            .arg(lab.binary())
            .args(["lab", "verify", "--db", &services::ledger_url(plan, stack)?, "--log"])
            .arg(&self.log);
        let out = proc::run(&mut cmd, Deadline::after(Duration::from_secs(120)))
            .map_err(|e| anyhow::anyhow!("hastack lab verify: {e}"))?;
        match out.status.code() {
            Some(0) => Ok(Check { ok: true, text: out.stdout }),
            Some(1) => Ok(Check { ok: false, text: out.stdout }),
            _ => bail!("the ledger check could not be made: {}", out.message()),
        }
    }
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

/// The length of each node's pacemaker.log: where a run's records start.
fn log_marks(lab: &Lab, plan: &Plan) -> BTreeMap<String, u64> {
    plan.nodes
        .iter()
        .map(|n| (n.name.clone(), std::fs::metadata(lab.pacemaker_log(&n.name)).map(|m| m.len()).unwrap_or(0)))
        .collect()
}

/// The events `node` logged since `mark`.
fn events_since(lab: &Lab, node: &str, mark: u64) -> Vec<(f64, Event)> {
    let bytes = std::fs::read(lab.pacemaker_log(node)).unwrap_or_default();
    let tail = String::from_utf8_lossy(bytes.get(mark as usize..).unwrap_or_default()).into_owned();
    let (year, offset) = timeline::local_utc_offset();
    timeline::events(&tail, year, offset)
}

/// A running node and the cluster as it sees it.
fn state(lab: &Lab, plan: &Plan) -> Result<(String, ClusterState)> {
    let Some(n) = plan.nodes.iter().find(|n| node::running(lab, &n.name).is_some()) else { bail!("no node runs") };
    Ok((n.name.clone(), status::cluster_state(lab, &n.name)?))
}

/// Waits until every node runs and is online, every resource has started without failures,
/// and the controller is idle.
fn settle(lab: &Lab, plan: &Plan) -> Result<()> {
    let deadline = Deadline::after(SETTLE_LIMIT);
    loop {
        let all_on = plan.nodes.iter().all(|n| node::running(lab, &n.name).is_some());
        let state = state(lab, plan);
        if all_on
            && state
                .as_ref()
                .is_ok_and(|(n, s)| s.settled() && s.online().len() == plan.nodes.len() && status::idle(lab, n, s))
        {
            return Ok(());
        }
        if deadline.expired() {
            bail!("the lab did not settle within {SETTLE_LIMIT:?}: {state:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The group layers (start order) and the clone layers of the stack.
fn layer_ids(stack: &Stack) -> (Vec<String>, Vec<String>) {
    let grouped = stack.groups.iter().flat_map(|g| g.get_ref().layers.iter().map(|l| l.get_ref().id.get_ref().clone()));
    let cloned = stack.clones.iter().map(|c| c.get_ref().layer.get_ref().id.get_ref().clone());
    (grouped.collect(), cloned.collect())
}

/// The operation after which a group layer serves: `promote` for a warm standby (its instance
/// on the survivor started long before the cut and is only promoted), else `start`. The
/// ClusterLabs side runs every layer cold (src/lab/clusterlabs.rs).
fn serving_op(stack: &Stack, id: &str, agents: super::clusterlabs::Agents) -> &'static str {
    match plan::layers(stack).into_iter().find(|l| l.id.get_ref() == id) {
        Some(l) if agents == super::clusterlabs::Agents::Hastack => l.serving_action(),
        _ => "start",
    }
}

/// The id of the layer run by `agent` (the first one).
fn layer_of(stack: &Stack, agent: &str) -> Option<String> {
    plan::layers(stack).into_iter().find(|l| l.agent.get_ref() == agent).map(|l| l.id.get_ref().clone())
}

/// When the power log of `node`'s UPS says its load went off after `since`.
fn ups_load_off(lab: &Lab, node: &str, since: f64) -> Option<f64> {
    let log = std::fs::read_to_string(lab.power_log(node)).ok()?;
    log.lines()
        .filter(|l| l.contains(" load off"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .find(|t| *t >= since)
}

fn power_cut(lab: &Lab, plan: &Plan, stack: &Stack, client: &Client, i: u32) -> Result<Run> {
    let (groups, clones) = layer_ids(stack);
    let agents = super::load_agents(lab);
    let serving: BTreeMap<&str, &str> = groups.iter().map(|g| (g.as_str(), serving_op(stack, g, agents))).collect();
    let serves = |e: &Event, layer: &str| matches!(e, Event::Op { op, rsc, result, .. } if op == serving[layer] && rsc == layer && result == "ok");
    let db = layer_of(stack, "postgresql").or_else(|| groups.last().cloned()).context("the stack has no group")?;
    let (_, before) = state(lab, plan)?;
    let victim = before.where_runs(&db).first().map(|s| s.to_string()).context("the database runs nowhere")?;
    let marks = log_marks(lab, plan);
    let cut_mono = monotonic_ns();
    let cut_at = now();
    node::cut(lab, plan, &victim)?;
    let dead_mono = monotonic_ns();
    // Wait until every group layer has started again somewhere else.
    let deadline = Deadline::after(FAILOVER_LIMIT);
    let survivors: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).filter(|n| *n != victim).collect();
    let (survivor, events) = loop {
        let found = survivors.iter().find_map(|s| {
            let ev = events_since(lab, s, marks[*s]);
            groups.iter().all(|g| ev.iter().any(|(_, e)| serves(e, g))).then(|| (s.to_string(), ev.clone()))
        });
        if let Some(found) = found {
            break found;
        }
        if deadline.expired() {
            bail!("run {i}: the stack did not start again within {FAILOVER_LIMIT:?} after cutting {victim}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let first = |pred: &dyn Fn(&Event) -> bool| events.iter().find(|(_, e)| pred(e)).map(|(t, _)| t - cut_at);
    let mut run = Run { title: format!("power cut {i}: {victim} (survivor {survivor})"), ..Run::default() };
    run.steps.push(("peer lost".into(), first(&|e| matches!(e, Event::Lost(n) if *n == victim))));
    run.steps.push(("fencing requested".into(), first(&|e| matches!(e, Event::FenceRequested(n) if *n == victim))));
    run.steps.push((format!("{victim}'s UPS load off"), ups_load_off(lab, &victim, cut_at).map(|t| t - cut_at)));
    run.steps.push(("fencing confirmed".into(), first(&|e| matches!(e, Event::Fenced(n) if *n == victim))));
    for g in &groups {
        let done = if serving[g.as_str()] == "promote" { "promoted" } else { "started" };
        run.steps.push((format!("{g} {done}"), first(&|e| serves(e, g))));
    }
    let fenced = run.steps.iter().find(|(l, _)| l == "fencing confirmed").and_then(|s| s.1);
    let (first_tx, pause) = client.recovery(cut_mono, dead_mono);
    run.steps.push(("first transaction".into(), first_tx));
    run.steps.push(("longest pause in acks".into(), pause));
    run.steps.push(("fenced -> first transaction".into(), first_tx.zip(fenced).map(|(t, f)| t - f)));
    for (_, e) in &events {
        if let Event::FenceFailed(n, why) = e {
            run.notes.push(format!("a fencing of {n} failed: {why}"));
        }
        if let Event::Op { op, rsc, node, .. } = e {
            if clones.contains(rsc) && node == &survivor && (op == "start" || op == "stop") {
                run.notes.push(format!("clone instance {rsc} on {survivor} was {op}ped: it should not be touched"));
            }
        }
    }
    Ok(run)
}

fn kill_database(lab: &Lab, plan: &Plan, stack: &Stack, client: &Client, i: u32) -> Result<Run> {
    let layer = plan::layers(stack)
        .into_iter()
        .find(|l| l.agent.get_ref() == "postgresql")
        .context("the stack has no postgresql layer")?;
    let db = layer.id.get_ref().clone();
    let pgdata = param(layer, "pgdata").unwrap_or_else(|| "/var/lib/postgresql/15/main".into());
    let (_, before) = state(lab, plan)?;
    let on = before.where_runs(&db).first().map(|s| s.to_string()).context("the database runs nowhere")?;
    let pid_file = format!("{pgdata}/postmaster.pid");
    let pid = node::run_on(lab, &on, "head", &["-n1", &pid_file], Duration::from_secs(10))?.trim().to_string();
    let marks = log_marks(lab, plan);
    let kill_mono = monotonic_ns();
    let killed_at = now();
    // The whole server: the postmaster leads the process group of its backends (a postmaster
    // killed alone leaves backends that go on committing for a while).
    node::run_on(lab, &on, "kill", &["-9", "--", &format!("-{pid}")], Duration::from_secs(10))?;
    let dead_mono = monotonic_ns();
    let deadline = Deadline::after(FAILOVER_LIMIT);
    let (node_now, events) = loop {
        let found = plan.nodes.iter().find_map(|n| {
            let ev = events_since(lab, &n.name, marks[&n.name]);
            let restarted = ev.iter().any(
                |(_, e)| matches!(e, Event::Op { op, rsc, result, .. } if op == "start" && *rsc == db && result == "ok"),
            );
            restarted.then(|| (n.name.clone(), ev))
        });
        if let Some(found) = found {
            break found;
        }
        if deadline.expired() {
            bail!("kill {i}: {db} was not restarted within {FAILOVER_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let first = |pred: &dyn Fn(&Event) -> bool| events.iter().find(|(_, e)| pred(e)).map(|(t, _)| t - killed_at);
    let mut run = Run { title: format!("kill -9 {i}: {db} (postmaster PID {pid}) on {on}"), ..Run::default() };
    run.steps.push((
        "monitor found it failed".into(),
        first(&|e| matches!(e, Event::Op { op, rsc, result, .. } if op == "monitor" && *rsc == db && result != "ok")),
    ));
    run.steps.push((
        "stopped".into(),
        first(&|e| matches!(e, Event::Op { op, rsc, result, .. } if op == "stop" && *rsc == db && result == "ok")),
    ));
    run.steps.push((
        "restarted".into(),
        first(&|e| matches!(e, Event::Op { op, rsc, result, .. } if op == "start" && *rsc == db && result == "ok")),
    ));
    let (first_tx, pause) = client.recovery(kill_mono, dead_mono);
    run.steps.push(("first transaction".into(), first_tx));
    run.steps.push(("longest pause in acks".into(), pause));
    run.notes.push(if node_now == on {
        format!("restarted in place on {on}")
    } else {
        format!("MOVED from {on} to {node_now}: a kill -9 should be restarted in place")
    });
    // Forget the failure, so that later kills do not reach migration-threshold.
    let _ = node::run_on(lab, &node_now, "crm_resource", &["--cleanup", "--resource", &db], Duration::from_secs(60));
    Ok(run)
}

fn secs_between(from_ns: u64, to_ns: u64) -> f64 {
    (to_ns as f64 - from_ns as f64) / 1e9
}

/// When the first transaction first sent at or after `t` (ns) was acknowledged (an ACK, or a
/// CONFIRMED after a failed answer): the stack served a new request again.
pub fn first_ack_sent_after(log: &Log, t: u64) -> Option<u64> {
    let mut first_send: BTreeMap<u64, u64> = BTreeMap::new();
    for e in log.events.iter().filter(|e| e.kind == super::client::Kind::Send) {
        first_send.entry(e.tx).or_insert(e.mono_ns);
    }
    log.events
        .iter()
        .filter(|e| e.kind.acknowledges() && first_send.get(&e.tx).is_some_and(|s| *s >= t))
        .map(|e| e.mono_ns)
        .min()
}

/// The longest time without any acknowledgement between the last one before `from` and `to`
/// (ns), in seconds.
pub fn longest_ack_pause(log: &Log, from: u64, to: u64) -> Option<f64> {
    let mut acks: Vec<u64> = log.events.iter().filter(|e| e.kind.acknowledges()).map(|e| e.mono_ns).collect();
    acks.sort_unstable();
    let start = acks.iter().rposition(|t| *t < from).unwrap_or(0);
    acks[start..]
        .iter()
        .take_while(|t| **t <= to)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| secs_between(*w[0], *w[1]))
        .reduce(f64::max)
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into())
}

pub fn show_run(run: &Run) -> String {
    let mut out = format!("{}\n", run.title);
    for (label, v) in &run.steps {
        let _ = writeln!(out, "  {label:<28} {:>8}", secs(*v));
    }
    for n in &run.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}

/// The median of the values that were measured.
pub fn median(values: &[Option<f64>]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().flatten().copied().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Rows: steps; columns: runs, then the median.
pub fn table(runs: &[Run]) -> String {
    let Some(first) = runs.first() else { return String::new() };
    let mut out = format!("{:<28}", "step");
    for i in 1..=runs.len() {
        let _ = write!(out, " {:>8}", format!("run {i}"));
    }
    let _ = writeln!(out, " {:>8}", "median");
    for (row, (label, _)) in first.steps.iter().enumerate() {
        // The UPS row names the node cut in the first run; later runs cut the other node.
        let label = if label.ends_with("'s UPS load off") { "UPS load off" } else { label.as_str() };
        let _ = write!(out, "{label:<28}");
        let values: Vec<Option<f64>> = runs.iter().map(|r| r.steps.get(row).and_then(|s| s.1)).collect();
        for v in &values {
            let _ = write!(out, " {:>8}", secs(*v));
        }
        let _ = writeln!(out, " {:>8}", secs(median(&values)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_first_new_transaction_and_the_longest_pause() {
        // tx 1 acknowledged before the fault (t=100), tx 2 sent before and acknowledged after it,
        // tx 3 sent after it and acknowledged at 900 (after a failed first attempt).
        let text = "# hastack lab client run=r\n\
                    10 0 SEND 1 1\n50 0 ACK 1 1 40\n90 0 SEND 2 1\n\
                    150 0 ACK 2 1 60\n200 0 SEND 3 1\n300 0 FAIL 3 1 timeout\n\
                    600 0 QUERY 3 1 absent\n610 0 SEND 3 2\n900 0 ACK 3 2 290\n";
        let log = Log::parse(text.as_bytes()).unwrap();
        assert_eq!(first_ack_sent_after(&log, 100), Some(900));
        assert_eq!(first_ack_sent_after(&log, 1000), None);
        // Acks at 50, 150, 900: the longest pause from the last one before the fault is 750 ns.
        assert_eq!(longest_ack_pause(&log, 100, 900), Some(750e-9));
    }

    #[test]
    fn medians_and_table() {
        assert_eq!(median(&[Some(3.0), None, Some(1.0), Some(2.0)]), Some(2.0));
        assert_eq!(median(&[Some(1.0), Some(4.0)]), Some(2.5));
        assert_eq!(median(&[None]), None);
        let run = |a: f64| Run {
            title: "t".into(),
            steps: vec![("peer lost".into(), Some(a)), ("node1's UPS load off".into(), None)],
            notes: vec![],
        };
        let t = table(&[run(6.0), run(7.0), run(6.5)]);
        assert!(t.contains("peer lost                        6.00     7.00     6.50     6.50"), "{t}");
        assert!(t.contains("UPS load off                        -        -        -        -"), "{t}");
    }
}
