//! Managing a service daemon the way every service agent needs (DESIGN.md §3): start it in its
//! own session and wait until it is ready or has died (fail fast with its last log lines), know
//! it by identity rather than by a PID file alone, and stop its whole process tree with
//! escalation inside the time budget.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::ocf::Deadline;
use crate::sys::proc;

/// A process known by PID and start time, so a reused PID is never mistaken for our daemon.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    pub starttime: u64,
}

impl Identity {
    /// The identity of a live process.
    pub fn of(pid: i32) -> Option<Identity> {
        let s = proc::stat(pid)?;
        (s.state != 'Z' && s.state != 'X').then_some(Identity { pid, starttime: s.starttime })
    }

    pub fn is_alive(&self) -> bool {
        proc::is_same_process(self.pid, self.starttime)
    }

    /// `PID STARTTIME`, as kept in a state file.
    pub fn to_line(self) -> String {
        format!("{} {}\n", self.pid, self.starttime)
    }

    pub fn parse(line: &str) -> Option<Identity> {
        let mut it = line.split_whitespace();
        Some(Identity { pid: it.next()?.parse().ok()?, starttime: it.next()?.parse().ok()? })
    }
}

/// Where agents keep what they know between actions (identities), cleared at boot with /run.
pub const STATE_DIR: &str = "/run/hastack";

/// The state file of one resource instance, e.g. `/run/hastack/nginx-web1.id`.
pub fn state_file(agent: &str, instance: &str) -> PathBuf {
    let safe: String =
        instance.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    Path::new(STATE_DIR).join(format!("{agent}-{safe}.id"))
}

pub fn save_identity(path: &Path, id: Identity) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, id.to_line())?;
    fs::rename(tmp, path)
}

/// The saved identity if that process still lives.
pub fn load_live_identity(path: &Path) -> Option<Identity> {
    Identity::parse(&fs::read_to_string(path).ok()?).filter(Identity::is_alive)
}

/// The PID in a PID file (first token), if it names a live process.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()?;
    (pid > 0 && proc::is_alive(pid)).then_some(pid)
}

/// The last `n` lines of a log file, joined with " | " for an exit reason.
pub fn tail(path: &Path, n: usize) -> String {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(64 * 1024)..]).into_owned(),
        Err(_) => return String::new(),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// What waiting for a started daemon found.
#[derive(Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The process we started (and everything it left behind) is gone.
    Died,
    TimedOut,
}

/// Waits until `ready()` holds, the daemon `alive()` no more, or the deadline passes. Polls fast
/// at first (most services are ready in milliseconds after they bind), then every 50 ms.
pub fn wait_ready(deadline: Deadline, mut alive: impl FnMut() -> bool, mut ready: impl FnMut() -> bool) -> Readiness {
    let mut step = Duration::from_millis(2);
    loop {
        if ready() {
            return Readiness::Ready;
        }
        if !alive() {
            // It may have become ready and handed over in the same instant (a forking daemon).
            return if ready() { Readiness::Ready } else { Readiness::Died };
        }
        let left = deadline.remaining();
        if left.is_zero() {
            return Readiness::TimedOut;
        }
        std::thread::sleep(step.min(left));
        step = (step * 2).min(Duration::from_millis(50));
    }
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

/// Stops a process tree: `graceful` to the root (e.g. SIGTERM, or SIGQUIT for nginx's graceful
/// stop), wait up to `graceful_share` of the budget, then SIGKILL to every process of the tree.
/// Returns the PIDs that survived (empty = stopped).
pub fn stop_tree(
    root: i32,
    session: Option<i32>,
    graceful: Signal,
    graceful_share: f64,
    deadline: Deadline,
) -> Vec<i32> {
    let tree = process_tree(root, session);
    if tree.is_empty() {
        return tree;
    }
    proc::signal(root, graceful);
    // A SIGSTOPped service cannot act on the graceful signal until it is continued.
    for &pid in &tree {
        proc::signal(pid, Signal::SIGCONT);
    }
    let left = proc::wait_gone(&tree, deadline.fraction(graceful_share));
    if left.is_empty() {
        return left;
    }
    // Pick up anything forked meanwhile.
    let mut all = process_tree(root, session);
    for pid in left {
        if !all.contains(&pid) {
            all.push(pid);
        }
    }
    proc::signal_and_wait(&all, Signal::SIGKILL, deadline)
}

/// Stops a process tree through a list of signals to the root, each step given a share of the
/// remaining budget (e.g. PostgreSQL: SIGINT "fast", then SIGQUIT "immediate"), and finally
/// SIGKILL to every process of the tree. Returns the PIDs that survived (empty = stopped).
pub fn stop_tree_escalating(
    root: i32,
    session: Option<i32>,
    steps: &[(Signal, f64)],
    deadline: Deadline,
    mut on_step: impl FnMut(Signal),
) -> Vec<i32> {
    let mut tree = process_tree(root, session);
    // Every PID ever seen in the tree: when they are gone as processes, wait for their last
    // threads to let go of files and locks.
    let mut seen = tree.clone();
    for &(sig, share) in steps {
        if tree.is_empty() {
            break;
        }
        on_step(sig);
        proc::signal(root, sig);
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
        on_step(Signal::SIGKILL);
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

/// The process holding a POSIX record lock (fcntl, as Java's FileChannel.lock and InnoDB use)
/// on `path`, asked with F_GETLK: the kernel's word, not a guess from a PID file. None if the
/// file is unlocked, missing, or locked only by this process.
pub fn lock_holder(path: &Path) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let file = fs::OpenOptions::new().read(true).write(true).open(path).ok()?;
    // SAFETY: a zeroed flock is a valid argument; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid fd and a valid flock pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    (rc == 0 && lock.l_type != libc::F_UNLCK as libc::c_short && lock.l_pid > 0).then_some(lock.l_pid)
}

/// The working directory of a process (PostgreSQL's postmaster lives in its data directory).
pub fn cwd(pid: i32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// TCP sockets in LISTEN state (sock_diag, else /proc/net/tcp and tcp6): (port, socket inode).
pub fn listening_sockets() -> Vec<(u16, u64)> {
    // The kernel's sock_diag answers in microseconds; /proc/net/tcp costs milliseconds per read.
    if let Ok(found) = crate::net::sockdiag::tcp_listeners() {
        return found;
    }
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| parse_listeners(&text))
        .collect()
}

/// Parses /proc/net/tcp{,6}: `sl local_address rem_address st ... inode`; state 0A = LISTEN.
pub fn parse_listeners(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3)? != &"0A" {
                return None;
            }
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            Some((port, f.get(9)?.parse().ok()?))
        })
        .collect()
}

/// Socket inodes a process holds open.
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(|e| {
        let target = fs::read_link(e.ok()?.path()).ok()?;
        target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Whether any of `pids` listens on TCP `port`.
pub fn listens_on(pids: &[i32], port: u16) -> bool {
    let inodes: Vec<u64> = listening_sockets().into_iter().filter(|(p, _)| *p == port).map(|(_, i)| i).collect();
    !inodes.is_empty() && pids.iter().any(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i)))
}

/// The PIDs (from all processes) that listen on TCP `port`: who holds a port we need.
pub fn port_holders(port: u16) -> Vec<i32> {
    let inodes: Vec<u64> = listening_sockets().into_iter().filter(|(p, _)| *p == port).map(|(_, i)| i).collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    proc::all_pids().into_iter().filter(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i))).collect()
}

/// The TCP ports any of `pids` listens on, sorted and without duplicates.
pub fn listening_ports(pids: &[i32]) -> Vec<u16> {
    let mine: Vec<u64> = pids.iter().flat_map(|p| socket_inodes(*p)).collect();
    let mut ports: Vec<u16> =
        listening_sockets().into_iter().filter(|(_, inode)| mine.contains(inode)).map(|(port, _)| port).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The first of `pids` that is stopped by a signal (state T, e.g. SIGSTOP) or traced: a service
/// that is there but cannot answer.
pub fn stopped_member(pids: &[i32]) -> Option<i32> {
    pids.iter().copied().find(|p| proc::stat(*p).is_some_and(|s| s.state == 'T' || s.state == 't'))
}

/// Ports named in a daemon's error message as `host:PORT` or `[v6]:PORT` (e.g. nginx's
/// "bind() to 127.0.0.1:8080 failed", Apache's "could not bind to address 127.0.0.1:8080"),
/// in order of appearance: candidates for "who holds the port we need".
pub fn ports_in_message(text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    let mut ports = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        // A ':' right after a digit, ']' or '*' (an address), followed by 1-5 digits.
        if *b != b':' || i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b']' || bytes[i - 1] == b'*') {
            continue;
        }
        let digits: String = text[i + 1..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = digits.parse::<u16>() {
            if digits.len() <= 5 && port > 0 && !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    ports
}

/// "port 8080 is held by PID 123 (nginx)" for the first of `ports` some process other than
/// `ours` listens on: the exit reason when a daemon could not bind.
pub fn describe_port_holder(ports: &[u16], ours: &[i32]) -> Option<String> {
    ports.iter().find_map(|&port| {
        let holders: Vec<i32> = port_holders(port).into_iter().filter(|p| !ours.contains(p)).collect();
        let pid = *holders.first()?;
        let name = proc::stat(pid).map(|s| s.comm).unwrap_or_default();
        Some(format!("port {port} is already held by PID {pid} ({name})"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_and_liveness() {
        let me = Identity::of(std::process::id() as i32).unwrap();
        assert_eq!(Identity::parse(&me.to_line()), Some(me));
        assert!(me.is_alive());
        assert!(!Identity { starttime: me.starttime + 1, ..me }.is_alive());
        assert_eq!(Identity::parse("garbage"), None);
    }

    #[test]
    fn parses_listeners() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(parse_listeners(text), vec![(8080, 12345)]);
    }

    #[test]
    fn own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert!(listens_on(&[me], port));
        assert!(port_holders(port).contains(&me));
        drop(l);
        assert!(!listens_on(&[me], port));
    }

    #[test]
    fn tail_joins_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(tail(&p, 2), "c | d");
        assert_eq!(tail(&dir.path().join("none"), 2), "");
    }

    #[test]
    fn stop_tree_kills_children_and_reports_nothing_left() {
        let mut child = std::process::Command::new("sh").args(["-c", "sleep 30 & sleep 30 & wait"]).spawn().unwrap();
        let pid = child.id() as i32;
        // Wait for the two sleeps to exist.
        let deadline = Deadline::after(Duration::from_secs(5));
        assert!(deadline
            .poll(Duration::from_millis(5), || (proc::descendants(pid).len() >= 2).then_some(()))
            .is_some());
        let kids = proc::descendants(pid);
        // sh ignores nothing; SIGTERM ends it, the sleeps are then orphans that stop_tree must kill.
        let left = stop_tree(pid, None, Signal::SIGTERM, 0.5, Deadline::after(Duration::from_secs(5)));
        let _ = child.wait();
        assert!(left.is_empty(), "{left:?}");
        assert!(kids.iter().all(|k| !proc::is_alive(*k)));
    }

    #[test]
    fn finds_ports_in_bind_errors() {
        assert_eq!(
            ports_in_message("nginx: [emerg] bind() to 127.0.0.1:18080 failed (98: Address already in use)"),
            vec![18080]
        );
        assert_eq!(
            ports_in_message("(98)Address already in use: AH00072: make_sock: could not bind to address [::]:80"),
            vec![80]
        );
        assert_eq!(ports_in_message("cannot bind socket (Address already in use) [0.0.0.0:8443]"), vec![8443]);
        assert_eq!(ports_in_message("at 10:30: error: 12:5"), vec![30, 5]);
        assert!(ports_in_message("no ports: here").is_empty());
    }

    #[test]
    fn names_the_holder_of_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        let text = describe_port_holder(&[port], &[]).unwrap();
        assert!(text.contains(&format!("PID {me}")), "{text}");
        assert!(describe_port_holder(&[port], &[me]).is_none());
        assert!(listening_ports(&[me]).contains(&port));
        assert!(stopped_member(&[me]).is_none());
    }

    #[test]
    fn lock_holder_sees_another_process_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        fs::write(&p, "").unwrap();
        assert_eq!(lock_holder(&p), None);
        // flock(1) takes BSD locks, which F_GETLK does not see; a child taking an fcntl lock does.
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import fcntl,sys,time;f=open(sys.argv[1],'r+');fcntl.lockf(f,fcntl.LOCK_EX);print('x',flush=True);time.sleep(30)"])
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(lock_holder(&p), Some(child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(lock_holder(&p), None);
    }
}
