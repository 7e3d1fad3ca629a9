//! The data-layer agents (postgresql, mariadb, activemq, rabbitmq) against the real servers from
//! Debian, each test with its own instance on its own loopback ports (19000-19999) and its data in
//! a temporary directory, or on a loop-device ext4 for the failover-shaped no-loss tests.

pub mod activemq;
pub mod activemq_standby;
pub mod mariadb;
pub mod postgresql;
pub mod rabbitmq;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// A free loopback TCP port in 19000-19999 (this area's range), chosen by trying to bind it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = 19000 + (std::process::id() % 97) as u16 * 10;
    for _ in 0..1000 {
        let p = 19000 + (start - 19000 + NEXT.fetch_add(1, Ordering::SeqCst)) % 1000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() && TcpListener::bind(("0.0.0.0", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port in 19000-19999");
}

/// A temporary directory the service account can enter (tempfile makes 0700 ones).
pub fn service_tempdir(owner: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("hst-data").tempdir().unwrap();
    sh("chown", &[&format!("{owner}:"), dir.path().to_str().unwrap()]);
    sh("chmod", &["755", dir.path().to_str().unwrap()]);
    dir
}

/// A power cut for one server: SIGKILL to every process of its session (the agents start
/// servers with setsid), then wait until they are gone.
pub fn kill9_session(sid: i32) -> Vec<i32> {
    let pids: Vec<i32> = hastack::sys::proc::all_pids()
        .into_iter()
        .filter(|p| hastack::sys::proc::stat(*p).is_some_and(|s| s.session == sid && s.state != 'Z'))
        .collect();
    assert!(!pids.is_empty(), "no process in session {sid} to kill: the test lost its server");
    for p in &pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGKILL);
    }
    // All threads, not just the main one: a killed multi-threaded server holds its locks until
    // its last thread is gone.
    wait_for("the killed server to be gone", Duration::from_secs(10), || {
        pids.iter().all(|p| !hastack::sys::tree::any_thread_alive(*p))
    });
    pids
}

pub fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

/// SIGSTOP, waiting until the kernel shows the process stopped (signals are asynchronous).
pub fn freeze(pid: i32) {
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    wait_for("the process to be stopped", Duration::from_secs(10), || {
        hastack::sys::proc::stat(pid).is_some_and(|s| s.state == 'T')
    });
}

/// Runs ocf-tester on an agent with parameters; it must pass.
pub fn ocf_tester(agent: &str, params: &[(&str, String)]) {
    let mut cmd = Command::new("ocf-tester");
    cmd.args(["-n", &format!("hst-{agent}")]);
    for (k, v) in params {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    cmd.arg(agent_path(agent));
    let out = run_with_deadline(&mut cmd, Duration::from_secs(300));
    assert!(out.code == 0, "ocf-tester failed for {agent}:\n{}\n{}", out.stdout, out.stderr);
}

/// An ext4 loop device mounted at `dir` by the `filesystem` agent: the replicated partition in
/// the failover-shaped tests. (Fields drop in order: the mount guard before the device.)
pub struct Partition {
    pub fs: AgentRun,
    _mount: MountGuard,
    _dev: LoopDevice,
}

impl Partition {
    pub fn new(dir: &Path) -> Partition {
        let dev = LoopDevice::new(256, Some(&["mkfs.ext4", "-q", "-F"]));
        let fs = filesystem_agent(&dev.device, dir);
        fs.run("start").expect(0);
        Partition { fs, _mount: MountGuard::adopt(dir), _dev: dev }
    }
    /// Unmounts through the agent (its stop fails if something still uses the mount: a server
    /// that did not let go) and mounts again, as a failover to the other node would.
    pub fn remount(&mut self) {
        self.fs.run("stop").expect(0);
        self.fs.run("monitor").expect(7);
        self.fs.run("start").expect(0);
    }
}
