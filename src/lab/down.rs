//! `hastack lab down`: removes everything the journal says the lab may have made, whatever
//! state `up` left it in: the UPS power processes first (they would boot a node again), then the
//! nodes (killing PID 1 kills a node's every process and with them its mounts), the namespaces,
//! interfaces and bridges, the loop devices, the files. Each step accepts "already gone".

use std::time::Duration;

use anyhow::{bail, Result};
use nix::sys::signal::Signal;

use super::disk;
use super::journal::{self, Made};
use super::layout::Lab;
use super::net;
use crate::ocf::Deadline;
use crate::sys::identity::Identity;
use crate::sys::proc;

pub fn down(lab: &Lab) -> Result<()> {
    let made = journal::read(&lab.journal());
    if made.is_empty() && !lab.run_dir.exists() && !lab.dir.exists() {
        println!("lab '{}' is not up: nothing to remove", lab.name);
        return Ok(());
    }
    let mut problems = Vec::new();
    let processes: Vec<(&str, Identity)> = made
        .iter()
        .filter_map(|m| match m {
            Made::Process { role, id } => Some((role.as_str(), *id)),
            _ => None,
        })
        .collect();
    // A power process removes its UPS's port on SIGTERM; it must be gone before the nodes go.
    let power: Vec<Identity> =
        processes.iter().filter(|(r, id)| r.starts_with("power ") && id.is_alive()).map(|(_, id)| *id).collect();
    stop(&power, Signal::SIGTERM, &mut problems);
    let rest: Vec<Identity> = processes.iter().filter(|(_, id)| id.is_alive()).map(|(_, id)| *id).collect();
    stop(&rest, Signal::SIGKILL, &mut problems);

    for m in made.iter().rev() {
        let result = match m {
            Made::Netns(name) => net::delete_netns(name),
            Made::Link(name) | Made::Bridge(name) => net::delete_link(name),
            _ => Ok(()),
        };
        if let Err(e) = result {
            problems.push(format!("{e:#}"));
        }
    }
    for m in made.iter().rev() {
        if let Made::Loop { image, .. } = m {
            if let Err(e) = detach(image) {
                problems.push(format!("{e:#}"));
            }
        }
    }
    for m in made.iter().rev() {
        if let Made::Dir(dir) = m {
            if let Err(e) = std::fs::remove_dir_all(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    problems.push(format!("cannot remove {}: {e}", dir.display()));
                }
            }
        }
    }
    for dir in [&lab.dir, &lab.run_dir] {
        let _ = std::fs::remove_dir_all(dir);
        // The roots go too when no other lab uses them.
        if let Some(root) = dir.parent() {
            let _ = std::fs::remove_dir(root);
        }
    }
    if !problems.is_empty() {
        bail!("lab '{}' was not removed completely:\n  {}", lab.name, problems.join("\n  "));
    }
    println!("lab '{}' removed", lab.name);
    Ok(())
}

/// Signals the processes, waits for them (SIGKILL after 5 s).
fn stop(ids: &[Identity], sig: Signal, problems: &mut Vec<String>) {
    for id in ids {
        proc::signal(id.pid, sig);
    }
    let gone = |ids: &[Identity]| ids.iter().all(|id| !id.is_alive());
    if Deadline::after(Duration::from_secs(5)).poll(Duration::from_millis(10), || gone(ids).then_some(())).is_some() {
        return;
    }
    for id in ids.iter().filter(|id| id.is_alive()) {
        proc::signal(id.pid, Signal::SIGKILL);
    }
    if Deadline::after(Duration::from_secs(20)).poll(Duration::from_millis(10), || gone(ids).then_some(())).is_none() {
        let left: Vec<String> = ids.iter().filter(|id| id.is_alive()).map(|id| id.pid.to_string()).collect();
        problems.push(format!("processes still alive after SIGKILL: {}", left.join(", ")));
    }
}

/// Detaches every loop device over `image`. A device still mounted in a node that is on its way
/// out is detached by the kernel when released (autoclear); we wait for that.
fn detach(image: &std::path::Path) -> Result<()> {
    for dev in disk::loops_of(image) {
        let _ = super::host::run("losetup", &["-d", &dev]);
    }
    let gone = Deadline::after(Duration::from_secs(30))
        .poll(Duration::from_millis(50), || disk::loops_of(image).is_empty().then_some(()));
    if gone.is_none() {
        bail!("loop device(s) {} over {} still attached", disk::loops_of(image).join(", "), image.display());
    }
    Ok(())
}
