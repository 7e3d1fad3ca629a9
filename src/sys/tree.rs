//! The processes of a daemon: its tree and session (workers re-parented to init after the master
//! was SIGKILLed keep the session), which of them is stopped, whether its last threads have let
//! go of its files, and stopping the whole tree with escalation inside the time budget.

use std::fs;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::ocf::Deadline;
use crate::sys::proc;

/// The processes of a running daemon: it and its descendants (not the rest of its session:
/// cheap enough for every monitor).
pub fn tree_of(main: i32) -> Vec<i32> {
    let mut tree = vec![main];
    tree.extend(proc::descendants(main));
    tree
}

/// Every live process of a daemon: the root and its descendants, plus anything left in its
/// session (workers re-parented to init after the master was SIGKILLed keep the session).
pub fn process_tree(root: i32, session: Option<i32>) -> Vec<i32> {
    let mut pids = vec![root];
    pids.extend(proc::descendants(root));
    if let Some(sid) = session.filter(|s| *s > 1) {
        for pid in proc::all_pids() {
            if !pids.contains(&pid) && proc::stat(pid).is_some_and(|s| s.session == sid && s.state != 'Z') {
                pids.push(pid);
            }
        }
    }
    pids.retain(|p| proc::is_alive(*p) && *p != std::process::id() as i32);
    pids
}

/// The live processes of session `sid` (a daemon we started with setsid leads its own session,
/// so this finds its workers even after the leader died and PID reuse made its PID ambiguous).
pub fn session_members(sid: i32) -> Vec<i32> {
    if sid <= 1 {
        return Vec::new();
    }
    proc::all_pids()
        .into_iter()
        .filter(|pid| proc::stat(*pid).is_some_and(|s| s.session == sid && s.state != 'Z' && s.state != 'X'))
        .collect()
}

/// Stops a daemon's processes (its tree, and its session when given): each step's signal goes
/// to the root, then the tree gets the step's share of the remaining budget to go; the first
/// step also continues every process (a SIGSTOPped service cannot act on a signal until it
/// runs). What is left then gets SIGKILL, and the stop waits until the last threads of every
/// process it saw are gone (a killed multi-threaded server's main thread is a zombie while its
/// other threads still hold its files and locks). `on_step` is told each step (None: SIGKILL).
/// Returns the PIDs that survived (empty = stopped).
pub fn stop(
    root: i32,
    session: Option<i32>,
    steps: &[(Signal, f64)],
    deadline: Deadline,
    mut on_step: impl FnMut(Option<usize>),
) -> Vec<i32> {
    let mut tree = process_tree(root, session);
    // Every PID ever seen in the tree, for the wait for released threads.
    let mut seen = tree.clone();
    for (i, &(sig, share)) in steps.iter().enumerate() {
        if tree.is_empty() {
            break;
        }
        on_step(Some(i));
        proc::signal(root, sig);
        if i == 0 {
            for &pid in &tree {
                proc::signal(pid, Signal::SIGCONT);
            }
        }
        tree = proc::wait_gone(&tree, deadline.fraction(share));
        // Pick up anything forked meanwhile (the root may be gone, its session remains).
        for pid in process_tree(root, session) {
            if !tree.contains(&pid) {
                tree.push(pid);
            }
            if !seen.contains(&pid) {
                seen.push(pid);
            }
        }
        tree.retain(|p| proc::is_alive(*p));
    }
    if !tree.is_empty() {
        on_step(None);
        let left = proc::signal_and_wait(&tree, Signal::SIGKILL, deadline);
        if !left.is_empty() {
            return left;
        }
    }
    wait_released(&seen, deadline)
}

/// Whether any thread of `pid` still runs. When a multi-threaded process is killed its main
/// thread can already be a zombie (so `proc::is_alive` says no) while other threads still hold
/// its files and locks: a stop that returns then leaves a busy mount and a locked store.
pub fn any_thread_alive(pid: i32) -> bool {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).any(|tid| {
        fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
            .ok()
            .and_then(|l| proc::parse_stat(&l))
            .is_some_and(|s| s.state != 'Z' && s.state != 'X')
    })
}

/// Waits until no thread of any of `pids` runs (see `any_thread_alive`); returns those left.
pub fn wait_released(pids: &[i32], deadline: Deadline) -> Vec<i32> {
    let left = || pids.iter().copied().filter(|p| any_thread_alive(*p)).collect::<Vec<_>>();
    deadline.poll(Duration::from_millis(5), || Some(left()).filter(|l| l.is_empty())).unwrap_or_else(left)
}

/// The first of `pids` that is stopped by a signal (state T, e.g. SIGSTOP) or traced: a service
/// that is there but cannot answer.
pub fn stopped_member(pids: &[i32]) -> Option<i32> {
    pids.iter().copied().find(|p| proc::stat(*p).is_some_and(|s| s.state == 'T' || s.state == 't'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_kills_children_and_reports_nothing_left() {
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 30 & sleep 30 & wait"]).spawn().unwrap();
        let pid = child.id() as i32;
        // Wait for the two sleeps to exist.
        let deadline = Deadline::after(Duration::from_secs(5));
        assert!(deadline
            .poll(Duration::from_millis(5), || (proc::descendants(pid).len() >= 2).then_some(()))
            .is_some());
        let kids = proc::descendants(pid);
        // sh ignores nothing; SIGTERM ends it, the sleeps are then orphans that stop must kill.
        let mut steps = Vec::new();
        let left =
            stop(pid, None, &[(Signal::SIGTERM, 0.5)], Deadline::after(Duration::from_secs(5)), |s| steps.push(s));
        let _ = child.wait();
        assert!(left.is_empty(), "{left:?}");
        assert!(kids.iter().all(|k| !proc::is_alive(*k)));
        assert_eq!(steps, [Some(0), None], "SIGTERM, then SIGKILL for the orphaned sleeps");
    }

    #[test]
    fn this_process_is_not_stopped() {
        assert!(stopped_member(&[std::process::id() as i32]).is_none());
    }
}
