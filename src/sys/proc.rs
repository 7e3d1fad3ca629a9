//! Processes: reading /proc, running a command within a deadline, starting a daemon in its own
//! session, and stopping processes with escalation. Every process spawn of the agents goes
//! through here.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::ocf::Deadline;

/// The fields of /proc/PID/stat the agents use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Start time in clock ticks since boot: with the PID, a process identity that survives
    /// PID reuse.
    pub starttime: u64,
}

/// Parses one /proc/PID/stat line. `comm` may hold spaces and parentheses, so split at the
/// last ')'.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let pid = line[..open].trim().parse().ok()?;
    let comm = line[open + 1..close].to_string();
    let rest: Vec<&str> = line[close + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state); starttime is field 22.
    Some(ProcStat {
        pid,
        comm,
        state: rest.first()?.chars().next()?,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        session: rest.get(3)?.parse().ok()?,
        starttime: rest.get(19)?.parse().ok()?,
    })
}

/// /proc/PID/stat of a live process (None if gone).
pub fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every PID in /proc.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// The argument vector of a process, split at NULs.
pub fn cmdline(pid: i32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect())
}

/// A process that exists and is not a zombie (zombies answer kill -0 but hold nothing).
pub fn is_alive(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Whether `pid` is still the process that had `starttime` (guards against PID reuse).
pub fn is_same_process(pid: i32, starttime: u64) -> bool {
    stat(pid).is_some_and(|s| s.starttime == starttime && s.state != 'Z' && s.state != 'X')
}

/// The children of `pid` from /proc/PID/task/*/children (CONFIG_PROC_CHILDREN); None if the
/// kernel does not provide those files or the process is gone.
pub fn children(pid: i32) -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let text = fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
    }
    Some(out)
}

/// All live descendants of `root` (not including it): by the children files when the kernel has
/// them (a few reads instead of a scan of every process), else from one /proc scan.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        match children(found[i]) {
            Some(kids) => found.extend(kids.into_iter().filter(|k| !found.contains(k)).collect::<Vec<_>>()),
            None if i == 0 => return descendants_by_scan(root),
            None => {}
        }
        i += 1;
    }
    found.remove(0);
    found.retain(|p| is_alive(*p));
    found
}

fn descendants_by_scan(root: i32) -> Vec<i32> {
    let stats: Vec<ProcStat> = all_pids().into_iter().filter_map(stat).collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        let children: Vec<i32> =
            stats.iter().filter(|s| s.ppid == parent && !found.contains(&s.pid)).map(|s| s.pid).collect();
        found.extend(children);
        i += 1;
    }
    found.remove(0);
    found
}

pub fn signal(pid: i32, sig: Signal) -> bool {
    kill(Pid::from_raw(pid), sig).is_ok()
}

/// Sends `sig` to every PID, then waits until all are gone or the deadline passes.
/// Returns the PIDs still alive.
pub fn signal_and_wait(pids: &[i32], sig: Signal, deadline: Deadline) -> Vec<i32> {
    for &pid in pids {
        signal(pid, sig);
    }
    wait_gone(pids, deadline)
}

/// Waits until none of `pids` is alive; returns those still alive at the deadline.
pub fn wait_gone(pids: &[i32], deadline: Deadline) -> Vec<i32> {
    let left = || pids.iter().copied().filter(|p| is_alive(*p)).collect::<Vec<_>>();
    deadline.poll(Duration::from_millis(10), || Some(left()).filter(|l| l.is_empty())).unwrap_or_else(left)
}

/// The result of a command run to completion.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// stderr, or stdout if stderr is empty, trimmed: the text to put in an exit reason.
    pub fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        text.trim().to_string()
    }
}

#[derive(Debug)]
pub enum RunError {
    /// The program could not be started (missing, not executable).
    Spawn(std::io::Error),
    /// Still running at the deadline; it and its process group were killed.
    TimedOut,
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot run: {e}"),
            RunError::TimedOut => write!(f, "did not finish in time and was killed"),
        }
    }
}

/// Runs a command to completion within the deadline, capturing its output. It runs in a
/// process group of its own, so on timeout the whole group is killed, not just the child.
pub fn run(cmd: &mut Command, deadline: Deadline) -> Result<Output, RunError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    // Drain both pipes on threads so a chatty child cannot block on a full pipe.
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    let status = match wait_until(&mut child, deadline) {
        Some(status) => status,
        None => {
            let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
            let _ = child.wait();
            return Err(RunError::TimedOut);
        }
    };
    // Children of the command may keep the pipes open; kill the group so the readers end.
    let _ = kill(Pid::from_raw(-(child.id() as i32)), Signal::SIGKILL);
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
    })
}

/// Waits for a child until the deadline; None if it is still running.
pub fn wait_until(child: &mut Child, deadline: Deadline) -> Option<ExitStatus> {
    let mut step = Duration::from_millis(1);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return None;
        }
        std::thread::sleep(step.min(left));
        // Start fast (most commands finish in milliseconds), back off to 20 ms.
        step = (step * 2).min(Duration::from_millis(20));
    }
}

/// Starts a daemon in a session of its own (DESIGN.md §3.5): Pacemaker's SIGKILL of the
/// agent's process group on timeout must not take the service down. stdin is /dev/null;
/// stdout/stderr go where the caller set them (default: /dev/null).
pub fn spawn_daemon(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdin(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(std::io::Error::from));
    }
    cmd.spawn()
}

/// Runs `job` in a detached child process and returns its PID at once: the child has a session
/// of its own (Pacemaker's kill of the caller's process group on a timeout does not reach it)
/// and its standard streams on /dev/null (nobody waits for it on a pipe it inherited, and it
/// writes nothing there). It ends with `job`'s exit code, without running the caller's exit
/// handlers. Used for work that must outlive an action without delaying its answer (a VIP's
/// announcements and conflict watch, fence_ups's power-on after a reboot's confirmed off).
///
/// The child runs Rust code after fork(), which is sound only when the caller has one thread (no
/// lock can be held by a thread that does not exist in the child): a caller with more is refused.
pub fn detach(job: impl FnOnce() -> i32) -> std::io::Result<Pid> {
    use nix::unistd::{fork, setsid, ForkResult};
    let threads = fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(1);
    if threads > 1 {
        return Err(std::io::Error::other(format!("cannot fork a detached job from a process with {threads} threads")));
    }
    // SAFETY: the caller is single-threaded (checked above), so the child inherits no lock held
    // by another thread and may allocate and run ordinary code.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => {
            let _ = setsid();
            if let Ok(null) = fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
                use std::os::fd::AsRawFd;
                for fd in 0..3 {
                    // SAFETY: dup2 onto this (child) process's standard descriptors.
                    unsafe { libc::dup2(null.as_raw_fd(), fd) };
                }
            }
            let code = job();
            // SAFETY: leave without the parent's atexit handlers or flushing its stdio buffers.
            unsafe { libc::_exit(code) }
        }
    }
}

/// A system account a daemon runs as: uid, primary gid and supplementary groups, read from the
/// user database before the fork (the child may only make async-signal-safe calls).
#[derive(Clone, Debug)]
pub struct Account {
    pub name: String,
    pub uid: nix::unistd::Uid,
    pub gid: nix::unistd::Gid,
    pub groups: Vec<nix::unistd::Gid>,
    pub home: std::path::PathBuf,
}

impl Account {
    /// Looks a user up; None if there is no such user.
    pub fn lookup(name: &str) -> Option<Account> {
        let user = nix::unistd::User::from_name(name).ok()??;
        let cname = std::ffi::CString::new(name).ok()?;
        let groups = nix::unistd::getgrouplist(&cname, user.gid).unwrap_or_else(|_| vec![user.gid]);
        Some(Account { name: name.to_string(), uid: user.uid, gid: user.gid, groups, home: user.dir })
    }

    /// Makes `cmd` run as this account, with its supplementary groups (std's `uid()` would drop
    /// them: PostgreSQL needs `ssl-cert` for Debian's snakeoil key). Call before `spawn_daemon`.
    pub fn apply(&self, cmd: &mut Command) {
        let (uid, gid, groups) = (self.uid, self.gid, self.groups.clone());
        // SAFETY: setgroups, setgid and setuid are async-signal-safe system calls; the group list
        // was built before the fork.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setgroups(&groups).map_err(std::io::Error::from)?;
                nix::unistd::setgid(gid).map_err(std::io::Error::from)?;
                nix::unistd::setuid(uid).map_err(std::io::Error::from)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000000 200 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.comm, "my (odd) prog");
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.session, 1234);
        assert_eq!(s.starttime, 98765);
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn own_process_is_alive_and_identified() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(is_alive(me));
        assert!(is_same_process(me, s.starttime));
        assert!(!is_same_process(me, s.starttime + 1));
    }

    #[test]
    fn detach_refuses_a_threaded_caller() {
        // The test harness may run this on a thread of its own; one more makes it at least two.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || stopped.recv());
        let err = detach(|| 0).unwrap_err();
        assert!(err.to_string().contains("threads"), "{err}");
        stop.send(()).unwrap();
        let _ = other.join();
    }

    #[test]
    fn run_captures_output_and_times_out() {
        let out = run(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Deadline::after(Duration::from_secs(5)),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout.trim(), "out");
        assert_eq!(out.message(), "err");
        let started = std::time::Instant::now();
        let r = run(Command::new("sleep").arg("10"), Deadline::after(Duration::from_millis(100)));
        assert!(matches!(r, Err(RunError::TimedOut)));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(
            run(&mut Command::new("/nonexistent/x"), Deadline::after(Duration::from_secs(1))),
            Err(RunError::Spawn(_))
        ));
    }
}
