//! One resource instance of a service: the identity of what its last start launched (a state
//! file under /run/hastack), its console, and what runs of it.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::ocf::{Ctx, OcfError, OcfResult};
use crate::sys::identity::{self, Identity};
use crate::sys::proc::Account;
use crate::sys::tree;

/// Where one resource instance of an agent keeps its identity and console output.
pub struct Instance {
    pub agent: &'static str,
    /// `PID STARTTIME` of what the last start launched.
    pub state: PathBuf,
    /// The server's stdout and stderr when it has no log of its own (startup errors of nginx,
    /// haproxy, the JVM...).
    pub console: PathBuf,
}

impl Instance {
    pub fn new(agent: &'static str, ctx: &Ctx) -> Instance {
        let state = identity::state_file(agent, ctx.env.resource());
        let console = state.with_extension("console");
        Instance { agent, state, console }
    }

    /// The identity saved by the last start, whether or not that process still lives.
    pub fn saved(&self) -> Option<Identity> {
        identity::load_identity(&self.state)
    }

    pub fn save(&self, id: Identity) -> OcfResult<()> {
        identity::save_identity(&self.state, id)
            .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", self.state.display())))
    }

    /// Remembers a live process as the instance's main process (adopting a running server).
    pub fn remember(&self, pid: i32) -> OcfResult<()> {
        match Identity::of(pid) {
            Some(id) => self.save(id),
            None => Ok(()),
        }
    }

    pub fn forget(&self) {
        let _ = fs::remove_file(&self.state);
    }

    /// What runs of the instance, by the saved identity: the main process; its orphans (the
    /// main process died and left workers in its session); else `adopt`, a process started
    /// outside the agent, already checked to be the managed program.
    pub fn found(&self, server: &str, adopt: Option<i32>) -> Found {
        if let Some(id) = self.saved() {
            if id.is_alive() {
                return Found::Running(id.pid);
            }
            // Started with setsid: its session id is its PID, and outlives it in its workers.
            let left = tree::session_members(id.pid);
            if !left.is_empty() {
                return Found::Orphaned { main: id.pid, left };
            }
        }
        match adopt.filter(|p| Identity::of(*p).is_some()) {
            Some(pid) => Found::Running(pid),
            None => Found::Stopped(format!("{server} is not running")),
        }
    }
}

/// What runs of an instance.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The main process (master, JVM, postmaster) lives.
    Running(i32),
    /// The main process is gone but processes of its session remain: workers of a SIGKILLed
    /// master that may still hold the port (ClusterLabs nginx bug #1553).
    Orphaned { main: i32, left: Vec<i32> },
    /// Nothing runs; why monitor says so ("no postmaster runs on this data directory").
    Stopped(String),
}

/// A PID from `pidfile` if it names a live process running `binary` (not a reused PID).
pub fn adopt_from_pidfile(pidfile: Option<&str>, binary: &str) -> Option<i32> {
    let pid = identity::read_pidfile(Path::new(pidfile?))?;
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let wanted = fs::canonicalize(binary).ok()?;
    (exe == wanted).then_some(pid)
}

/// Removes a PID file that names no live instance of `binary` (left by a SIGKILLed daemon):
/// httpd refuses to start while its PID file names a process that answers `kill -0`, which a
/// not yet reaped zombie or a reused PID does.
pub fn remove_stale_pidfile(pidfile: &str, binary: &str) {
    if Path::new(pidfile).exists() && adopt_from_pidfile(Some(pidfile), binary).is_none() {
        let _ = fs::remove_file(pidfile);
    }
}

/// A new console for a start (the last start's is replaced), readable by root only: a
/// server's startup messages may quote its configuration.
pub fn open_console(path: &Path) -> OcfResult<File> {
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let file = File::create(path).map_err(|e| OcfError::generic(format!("cannot create {}: {e}", path.display())))?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    Ok(file)
}

/// Opens (appending) a server's log file, creating its directory; owned by `owner` when the
/// server reopens the file itself.
pub fn open_log(path: &Path, owner: Option<&Account>) -> OcfResult<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| OcfError::generic(format!("cannot create {}: {e}", dir.display())))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| OcfError::generic(format!("cannot open log file {}: {e}", path.display())))?;
    if let Some(a) = owner {
        let _ = nix::unistd::chown(path, Some(a.uid), Some(a.gid));
    }
    Ok(file)
}

/// The default log of an instance when its parameter is unset:
/// `DIR/hastack-<agent>-<resource>.log`.
pub fn default_log(dir: &str, agent: &str, ctx: &Ctx) -> PathBuf {
    Path::new(dir).join(format!("hastack-{agent}-{}.log", identity::instance_name(ctx.env.resource())))
}
