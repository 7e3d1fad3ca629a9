//! A node's power, from outside it: booting makes its network namespace, plugs its two cables
//! and starts its PID 1 (`init`); cutting pulls the cables, kills PID 1 (the kernel then kills
//! every process of the node's PID namespace) and deletes the network namespace, which would
//! otherwise outlive the processes and keep answering for the node's addresses.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use super::journal::{self, Made};
use super::layout::{Lab, Net};
use super::net;
use super::plan::Plan;
use crate::ocf::Deadline;
use crate::sys::identity::Identity;
use crate::sys::proc;

/// Held while a node's power changes: the UPS's power process and the CLI never act at once.
pub struct PowerLock(#[allow(dead_code)] Flock<File>);

impl PowerLock {
    pub fn take(lab: &Lab, node: &str) -> Result<PowerLock> {
        let path = lab.node_lock(node);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("cannot lock {}: {e}", path.display()))?;
        Ok(PowerLock(lock))
    }
}

/// The node's PID 1 if it runs.
pub fn running(lab: &Lab, node: &str) -> Option<Identity> {
    let text = std::fs::read_to_string(lab.node_pid_file(node)).ok()?;
    Identity::parse(&text).filter(|id| id.is_alive())
}

/// Powers a node on: a fresh namespace, its cables, its PID 1. Nothing if it runs already.
pub fn boot(lab: &Lab, plan: &Plan, node: &str) -> Result<Identity> {
    let n = plan.node(node)?;
    let _lock = PowerLock::take(lab, node)?;
    if let Some(id) = running(lab, node) {
        return Ok(id);
    }
    let ns = lab.netns(node);
    // What an interrupted cut may have left: the namespace, interfaces on their way out.
    net::delete_netns(&ns)?;
    for which in Net::BOTH {
        let end = lab.host_veth(n.index, which);
        net::delete_link(&end)?;
        net::wait_link_gone(&end, Duration::from_secs(10))?;
    }
    journal::record(&lab.journal(), &Made::Netns(ns.clone()))?;
    net::add_netns(&ns)?;
    for which in Net::BOTH {
        let end = lab.host_veth(n.index, which);
        journal::record(&lab.journal(), &Made::Link(end.clone()))?;
        net::plug(&lab.bridge(which), &end, &ns, which.node_ifname(), n.links[which.link()])?;
    }
    let id = start_init(lab, node)?;
    std::fs::write(lab.node_pid_file(node), id.to_line())
        .with_context(|| format!("cannot write {}", lab.node_pid_file(node).display()))?;
    Ok(id)
}

/// Runs `hastack lab init NODE`, which enters the namespace, forks the node's PID 1, prints
/// `pid N` and then `ready` or why the node could not boot.
fn start_init(lab: &Lab, node: &str) -> Result<Identity> {
    let exe = lab.binary();
    let mut child = super::host::clean_env(&mut Command::new(&exe))
        .args(["lab", "--name", &lab.name, "init", node])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    let mut out = String::new();
    let mut err = String::new();
    let _ = child.stdout.take().expect("piped").read_to_string(&mut out);
    let _ = child.stderr.take().expect("piped").read_to_string(&mut err);
    let status = child.wait()?;
    let pid = out.lines().find_map(|l| l.strip_prefix("pid ")).and_then(|p| p.trim().parse::<i32>().ok());
    let id = pid.and_then(Identity::of);
    if let Some(id) = id {
        journal::record(&lab.journal(), &Made::Process { role: format!("init {node}"), id })?;
    }
    match (status.success(), id) {
        (true, Some(id)) => Ok(id),
        _ => bail!("{node} did not boot: {}", err.trim()),
    }
}

/// Cuts a node's power; whether it was running. Cables first (instantly silent on both
/// networks), then PID 1, then the namespace.
pub fn cut(lab: &Lab, plan: &Plan, node: &str) -> Result<bool> {
    let n = plan.node(node)?;
    let _lock = PowerLock::take(lab, node)?;
    for which in Net::BOTH {
        net::link_down(&lab.host_veth(n.index, which));
    }
    let was = running(lab, node);
    if let Some(id) = was {
        proc::signal(id.pid, Signal::SIGKILL);
        let gone = Deadline::after(Duration::from_secs(20))
            .poll(Duration::from_millis(5), || (!id.is_alive()).then_some(()))
            .is_some();
        if !gone {
            bail!("{node}'s PID 1 ({}) is still alive 20 s after SIGKILL", id.pid);
        }
    }
    let _ = std::fs::remove_file(lab.node_pid_file(node));
    net::delete_netns(&lab.netns(node))?;
    Ok(was.is_some())
}

/// Runs a command on a running node (all its namespaces, as `nsenter -t PID -a`).
pub fn command_on(lab: &Lab, node: &str, program: &str) -> Result<Command> {
    let Some(id) = running(lab, node) else { bail!("{node} is not running (its power is off)") };
    let mut cmd = Command::new("nsenter");
    super::host::clean_env(&mut cmd).env("PATH", super::init::node_path(lab)).args([
        "-t",
        &id.pid.to_string(),
        "-a",
        "--",
        program,
    ]);
    Ok(cmd)
}

/// Runs `program args` on a node to completion; its stdout.
pub fn run_on(lab: &Lab, node: &str, program: &str, args: &[&str], limit: Duration) -> Result<String> {
    let mut cmd = command_on(lab, node, program)?;
    cmd.args(args);
    super::host::output(&mut cmd, limit).with_context(|| format!("on {node}"))
}

/// Whether a path is a symlink to a pseudo-terminal that exists.
pub fn pty_of(link: &Path) -> Option<std::path::PathBuf> {
    let target = std::fs::read_link(link).ok()?;
    target.starts_with("/dev/pts/").then_some(target).filter(|t| t.exists())
}
