//! A node's power supply: the simulated APC Smart UPS that feeds it (`fence::sim`, on a
//! pseudo-terminal), run on the host as a real UPS runs outside its node. `hastack lab power
//! NODE` (hidden) plays it: when the UPS's load goes off (the other node's fence_ups said so,
//! or, on the ClusterLabs side, the UPS hibernated at the end of the grace period cluster-glue's
//! apcsmart reset gave it), the node's power is cut; when it comes on again (switched on, or the
//! UPS woke from that hibernation by itself), the node boots after the boot delay (a real
//! server's firmware takes that long; the lab's node would otherwise be back at once, and take
//! CPU from the failover it is part of). SIGUSR1 switches the load on by hand (`lab boot`, which
//! boots the node itself); SIGTERM ends it (`lab down`).

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};

use super::journal::{self, Made};
use super::layout::Lab;
use super::plan::Plan;
use crate::fence::sim::{Event, SimConfig, UpsSim};
use crate::ocf::Deadline;
use crate::sys::identity::Identity;
use crate::sys::proc;

/// The serial number a UPS reports when the stack does not name one.
pub const DEFAULT_SERIAL: &str = "QS0000000000";

/// Seconds since the epoch with milliseconds: the power log's time stamps (`lab bench` reads them).
pub fn stamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

fn set_load_file(lab: &Lab, node: &str, on: bool) {
    let _ = crate::config::write_atomically(&lab.ups_load_file(node), if on { "on\n" } else { "off\n" });
}

/// Whether the UPS powering `node` has its load on (None: no power process has said).
pub fn load_on(lab: &Lab, node: &str) -> Option<bool> {
    match std::fs::read_to_string(lab.ups_load_file(node)).ok()?.trim() {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

/// `hastack lab power NODE`: runs until SIGTERM.
pub fn run(lab: &Lab, plan: &Plan, node: &str, boot_delay: Duration) -> Result<()> {
    plan.node(node)?;
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGUSR1] {
        signals.add(s);
    }
    // Blocked before the simulator's thread exists, so only our sigtimedwait takes them.
    signals.thread_block()?;
    let serial = plan.ups_serial(node).unwrap_or(DEFAULT_SERIAL).to_string();
    let sim = UpsSim::start(&lab.ups_port(node), SimConfig { serial: serial.clone(), ..SimConfig::default() })?;
    set_load_file(lab, node, true);
    println!("{} UPS {serial} powering {node} ready on {}", stamp(), lab.ups_port(node).display());
    let mut seen = 0;
    let mut boot_at: Option<std::time::Instant> = None;
    loop {
        match wait_signal(&signals, Duration::from_millis(10)) {
            Some(Signal::SIGUSR1) => {
                if !sim.load_on() {
                    sim.set_load(true);
                    println!("{} load on (switched by hand)", stamp());
                }
                set_load_file(lab, node, true);
            }
            Some(_) => break,
            None => {}
        }
        let events = sim.events();
        for (_, event) in &events[seen..] {
            match event {
                Event::LoadOff => {
                    println!("{} load off: cutting {node}", stamp());
                    boot_at = None;
                    set_load_file(lab, node, false);
                    match super::node::cut(lab, plan, node) {
                        Ok(was) => {
                            println!("{} {node} is off (it was {})", stamp(), if was { "on" } else { "off already" })
                        }
                        Err(e) => println!("{} cutting {node} failed: {e:#}", stamp()),
                    }
                }
                Event::LoadOn => {
                    println!("{} load on: {node} boots in {boot_delay:?}", stamp());
                    set_load_file(lab, node, true);
                    boot_at = Some(std::time::Instant::now() + boot_delay);
                }
                other => println!("{} {other:?}", stamp()),
            }
        }
        seen = events.len();
        if boot_at.is_some_and(|t| std::time::Instant::now() >= t) {
            boot_at = None;
            match super::node::boot(lab, plan, node) {
                Ok(id) => println!("{} {node} booted (PID 1 is {} on the host)", stamp(), id.pid),
                Err(e) => println!("{} booting {node} failed: {e:#}", stamp()),
            }
        }
    }
    println!("{} stopping", stamp());
    drop(sim);
    let _ = std::fs::remove_file(lab.ups_load_file(node));
    Ok(())
}

fn wait_signal(set: &SigSet, limit: Duration) -> Option<Signal> {
    let ts = libc::timespec { tv_sec: limit.as_secs() as libc::time_t, tv_nsec: limit.subsec_nanos() as libc::c_long };
    // SAFETY: a valid signal set and timeout; no siginfo wanted.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), std::ptr::null_mut(), &ts) };
    Signal::try_from(sig).ok()
}

/// Starts the power process of `node` in its own session, journalled, and waits for its UPS.
pub fn start(lab: &Lab, node: &str, boot_delay_ms: u64) -> Result<Identity> {
    let exe = lab.binary();
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(lab.power_log(node))
        .with_context(|| format!("cannot open {}", lab.power_log(node).display()))?;
    let mut cmd = Command::new(&exe);
    super::host::clean_env(&mut cmd)
        .args(["lab", "--name", &lab.name, "power", node, "--boot-delay-ms", &boot_delay_ms.to_string()])
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    let child = proc::spawn_daemon(&mut cmd).with_context(|| format!("cannot start {}", exe.display()))?;
    let id = Identity::of(child.id() as i32).context("the power process died at once")?;
    journal::record(&lab.journal(), &Made::Process { role: format!("power {node}"), id })?;
    let port = lab.ups_port(node);
    let ready = Deadline::after(Duration::from_secs(10))
        .poll(Duration::from_millis(20), || super::node::pty_of(&port).filter(|_| load_on(lab, node).is_some()));
    if ready.is_none() {
        bail!(
            "the UPS powering {node} did not come up; see {}:\n{}",
            lab.power_log(node).display(),
            super::tail(&lab.power_log(node), 5)
        );
    }
    Ok(id)
}

/// Signals the power process of `node` (found in the journal) to switch its UPS's load on.
pub fn switch_on(lab: &Lab, node: &str) -> Result<()> {
    let role = format!("power {node}");
    let id = journal::read(&lab.journal()).into_iter().rev().find_map(|m| match m {
        Made::Process { role: r, id } if r == role && id.is_alive() => Some(id),
        _ => None,
    });
    let Some(id) = id else { bail!("the UPS powering {node} is not running (is the lab up?)") };
    proc::signal(id.pid, Signal::SIGUSR1);
    let on = Deadline::after(Duration::from_secs(5))
        .poll(Duration::from_millis(10), || (load_on(lab, node) == Some(true)).then_some(()));
    on.context(format!("the UPS powering {node} did not switch its load on"))
}
