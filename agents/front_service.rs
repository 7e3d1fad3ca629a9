//! What the front-layer agents (nginx, apache, haproxy, tomcat, app) share: one daemon per
//! resource instance, started in its own session with its console captured, known by identity
//! (a state file under /run/hastack), stopped with its whole session, and checked for the
//! faults a PID check misses: a SIGSTOPped (hung) process, orphan workers of a killed master.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::agents::config_fault::{self, Culprit};
use crate::net::http;
use crate::ocf::{Ctx, Deadline, OcfError, OcfResult, OcfStatus};
use crate::sys::daemon::{self, Identity, Readiness};
use crate::sys::proc;

/// One resource instance of an agent: where its identity and console output are kept.
pub struct Instance {
    pub agent: &'static str,
    pub state: PathBuf,
    /// The daemon's stdout and stderr (startup errors of nginx, haproxy, the JVM...).
    pub console: PathBuf,
}

impl Instance {
    pub fn new(agent: &'static str, ctx: &Ctx) -> Instance {
        let resource = ctx.env.resource();
        let state = daemon::state_file(agent, if resource.is_empty() { "default" } else { resource });
        let console = state.with_extension("console");
        Instance { agent, state, console }
    }

    /// The identity saved by the last start, whether or not that process still lives.
    pub fn saved(&self) -> Option<Identity> {
        Identity::parse(&fs::read_to_string(&self.state).ok()?)
    }

    pub fn save(&self, id: Identity) -> OcfResult<()> {
        daemon::save_identity(&self.state, id)
            .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", self.state.display())))
    }

    pub fn forget(&self) {
        let _ = fs::remove_file(&self.state);
    }
}

/// What runs of an instance.
#[derive(Debug)]
pub enum State {
    /// The main process (master, JVM) lives.
    Running {
        main: Identity,
    },
    /// The main process is gone but processes of its session remain: workers of a SIGKILLed
    /// master that may still hold the port (ClusterLabs nginx bug #1553).
    Orphaned {
        main_pid: i32,
        left: Vec<i32>,
    },
    Stopped,
}

/// The processes of a running daemon: it and its descendants. (Stop also sweeps its session;
/// monitor does not need to scan every process for that.)
pub fn tree_of(main: i32) -> Vec<i32> {
    let mut tree = vec![main];
    tree.extend(proc::descendants(main));
    tree
}

/// The instance's state. `adopt` is the PID of an instance started outside the agent (from the
/// PID file the configuration names), already checked to be the managed program.
pub fn state(inst: &Instance, adopt: Option<i32>) -> State {
    if let Some(id) = inst.saved() {
        if id.is_alive() {
            return State::Running { main: id };
        }
        // We started it with setsid: its session id is its PID, and outlives it in its workers.
        let left = daemon::session_members(id.pid);
        if !left.is_empty() {
            return State::Orphaned { main_pid: id.pid, left };
        }
    }
    match adopt.and_then(Identity::of) {
        Some(main) => State::Running { main },
        None => State::Stopped,
    }
}

/// A PID from `pidfile` if it names a live process running `binary` (not a reused PID).
pub fn adopt_from_pidfile(pidfile: Option<&str>, binary: &str) -> Option<i32> {
    let pid = daemon::read_pidfile(Path::new(pidfile?))?;
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

/// Monitor's first step for every depth: the main process lives, is not stopped, and has left
/// no orphans. Only the main process is checked for a stop: that is cheap (no walk of every
/// worker thread), and a hang of workers alone shows at depth 10, where requests time out.
pub fn check_running(inst: &Instance, adopt: Option<i32>, what: &str) -> OcfResult<Identity> {
    match state(inst, adopt) {
        State::Stopped => Err(OcfError::not_running(format!("{what} is not running"))),
        State::Orphaned { main_pid, left } => Err(OcfError::generic(format!(
            "{what} main process {main_pid} is gone but {} of its processes remain (PIDs {}{}); stop cleans them up",
            left.len(),
            list(&left),
            ports_note(&left)
        ))),
        State::Running { main } => match daemon::stopped_member(&[main.pid]) {
            Some(pid) => {
                Err(OcfError::generic(format!("{what} process {pid} is stopped (SIGSTOP or traced) and cannot serve")))
            }
            None => Ok(main),
        },
    }
}

fn list(pids: &[i32]) -> String {
    pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

fn ports_note(pids: &[i32]) -> String {
    let ports = daemon::listening_ports(pids);
    if ports.is_empty() {
        String::new()
    } else {
        format!(", holding port {}", ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "))
    }
}

/// What one readiness poll found.
pub enum Probe {
    Ready,
    NotYet,
    /// The daemon runs but has failed for good (e.g. Tomcat logged a bind error).
    Failed(String),
}

/// Polled with the daemon's process tree until it says ready or failed.
pub type ReadyCheck<'a> = Box<dyn FnMut(&[i32]) -> Probe + 'a>;

/// How to start a daemon and recognise that it is ready.
pub struct Launch<'a> {
    pub cmd: Command,
    /// The daemon's own log files worth quoting when it dies during start (new lines only).
    pub logs: Vec<PathBuf>,
    /// The ports the service must bind, checked for another holder before starting.
    pub ports: Vec<u16>,
    /// Console text that means the start has failed even though the process still runs (nginx
    /// retries a failed bind for seconds after printing `[emerg]`).
    pub fatal: &'static [&'static str],
    /// Console lines worth quoting when start fails (e.g. Tomcat's SEVERE lines among stack
    /// traces); empty: the last lines.
    pub quote: &'static [&'static str],
    /// For a daemon that checks its configuration only as it starts (Tomcat's server.xml):
    /// console text that means it rejected the configuration, and the file.
    pub rejects: Option<(&'static [&'static str], ConfigFile)>,
    pub ready: ReadyCheck<'a>,
}

/// Starts the daemon in its own session, records its identity and returns once it is ready;
/// fails fast with its last output if it exits, reports a port another process holds, and
/// kills what it started if it is not ready within the budget.
pub fn launch(inst: &Instance, mut launch: Launch, ctx: &Ctx) -> OcfResult<Identity> {
    let name = inst.agent;
    if let Some(held) = daemon::describe_port_holder(&launch.ports, &[]) {
        return Err(OcfError::generic(format!("cannot start {name}: {held}")));
    }
    let console = open_console(&inst.console)?;
    let log_starts: Vec<(PathBuf, u64)> =
        launch.logs.iter().map(|p| (p.clone(), fs::metadata(p).map(|m| m.len()).unwrap_or(0))).collect();
    let err = console.try_clone().map_err(|e| OcfError::generic(format!("console: {e}")))?;
    launch.cmd.stdout(console).stderr(err);
    ctx.log.debug(format!("starting {:?}", launch.cmd));
    let mut child = proc::spawn_daemon(&mut launch.cmd)
        .map_err(|e| OcfError::generic(format!("cannot run {:?}: {e}", launch.cmd.get_program())))?;
    let pid = child.id() as i32;
    if let Some(id) = Identity::of(pid) {
        inst.save(id)?;
    }
    // Leave time at the end to kill what we started if it never gets ready.
    let ready_by = ctx.deadline.fraction(0.85);
    let mut failure = None;
    let readiness = daemon::wait_ready(
        ready_by,
        || matches!(child.try_wait(), Ok(None)),
        || match console_failure(&inst.console, launch.fatal)
            .map(Probe::Failed)
            .unwrap_or_else(|| (launch.ready)(&tree_of(pid)))
        {
            Probe::Ready => true,
            Probe::NotYet => false,
            Probe::Failed(why) => {
                failure = Some(why);
                true
            }
        },
    );
    let quote = launch.quote;
    let output = || last_output(&inst.console, quote, &log_starts);
    match (readiness, failure) {
        (Readiness::Ready, None) => {
            ctx.log.info(format!("{name} is ready (PID {pid})"));
            Ok(Identity::of(pid).expect("a ready daemon lives"))
        }
        (Readiness::Ready, Some(why)) => {
            let left = tree_of(pid);
            let held = daemon::describe_port_holder(&daemon::ports_in_message(&why), &left);
            kill_all(inst, pid, ctx.deadline);
            let reason = format!("{name} failed during start: {why}");
            Err(OcfError::generic(match held {
                Some(held) => format!("{held}; {reason}"),
                None => reason,
            }))
        }
        (Readiness::Died, _) => {
            let status = exit_status(&mut child);
            let left = daemon::session_members(pid);
            let out = output();
            if let Some((markers, config)) = &launch.rejects {
                let console = read_from(&inst.console, 0);
                if markers.iter().any(|m| console.contains(m)) {
                    kill_all(inst, pid, ctx.deadline);
                    return Err(config.rejected(name, &out, &console));
                }
            }
            let held = daemon::describe_port_holder(&daemon::ports_in_message(&out), &left);
            kill_all(inst, pid, ctx.deadline);
            let mut reason = format!("{name} exited during start ({status})");
            if let Some(held) = held {
                reason = format!("{held}; {reason}");
            }
            if !out.is_empty() {
                reason.push_str(&format!(": {out}"));
            }
            Err(OcfError::generic(reason))
        }
        (Readiness::TimedOut, _) => {
            kill_all(inst, pid, ctx.deadline);
            let out = output();
            Err(OcfError::generic(format!(
                "{name} was not ready within the start timeout and was killed{}",
                if out.is_empty() { String::new() } else { format!("; last output: {out}") }
            )))
        }
    }
}

/// The console's last lines if it shows one of the `fatal` markers.
fn console_failure(console: &Path, fatal: &[&str]) -> Option<String> {
    if fatal.is_empty() {
        return None;
    }
    let text = read_from(console, 0);
    fatal.iter().any(|f| text.contains(f)).then(|| pick_lines(&text, fatal, 4))
}

pub fn open_console(path: &Path) -> OcfResult<File> {
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let file = File::create(path).map_err(|e| OcfError::generic(format!("cannot create {}: {e}", path.display())))?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o600));
    Ok(file)
}

pub fn exit_status(child: &mut Child) -> String {
    match child.wait() {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
        Err(e) => format!("unknown status: {e}"),
    }
}

/// The last lines the daemon wrote: its console, then what its logs gained since the start.
fn last_output(console: &Path, quote: &[&str], logs: &[(PathBuf, u64)]) -> String {
    let mut parts = Vec::new();
    let console_tail = pick_lines(&read_from(console, 0), quote, 4);
    if !console_tail.is_empty() {
        parts.push(console_tail);
    }
    for (path, start) in logs {
        let text = read_from(path, *start);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if !lines.is_empty() {
            parts.push(lines[lines.len().saturating_sub(3)..].join(" | "));
        }
    }
    parts.join(" | ")
}

/// The last `n` lines of `text` worth an exit reason: no stack frames, no repeats, and only
/// lines with one of the `markers` when any has one. Joined with " | ".
pub fn pick_lines(text: &str, markers: &[&str], n: usize) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines().map(str::trim) {
        let frame = line.starts_with("at ") || line.starts_with("...");
        if line.is_empty() || frame || lines.last() == Some(&line) {
            continue;
        }
        lines.push(line);
    }
    let marked: Vec<&str> = lines.iter().copied().filter(|l| markers.iter().any(|m| l.contains(m))).collect();
    let chosen = if marked.is_empty() { lines } else { marked };
    chosen[chosen.len().saturating_sub(n)..].join(" | ")
}

fn read_from(path: &Path, offset: u64) -> String {
    let Ok(mut f) = File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    // A rotated (shorter) log: read it all; never more than the last 64 KiB.
    let from = if len < offset { 0 } else { offset }.max(len.saturating_sub(64 * 1024));
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_ok() {
        let _ = f.read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

pub fn kill_all(inst: &Instance, pid: i32, deadline: Deadline) {
    let mut pids = tree_of(pid);
    pids.extend(daemon::session_members(pid));
    proc::signal_and_wait(&pids, Signal::SIGKILL, deadline);
    inst.forget();
}

/// Stop: graceful signal to the main process, then SIGKILL to everything of its session within
/// the budget. Gone already is success; orphans of a killed master are killed.
pub fn stop(inst: &Instance, adopt: Option<i32>, graceful: Signal, ctx: &Ctx) -> OcfResult {
    let name = inst.agent;
    let left = match state(inst, adopt) {
        State::Stopped => {
            inst.forget();
            let _ = fs::remove_file(&inst.console);
            return Ok(OcfStatus::Success);
        }
        State::Orphaned { main_pid, left } => {
            ctx.log.warn(format!(
                "{name} main process {main_pid} is gone; killing {} leftover processes ({})",
                left.len(),
                list(&left)
            ));
            proc::signal_and_wait(&left, Signal::SIGKILL, ctx.deadline)
        }
        State::Running { main, .. } => {
            // Graceful gets half the budget; SIGKILL the rest.
            let session = proc::stat(main.pid).map(|s| s.session).filter(|s| *s == main.pid);
            let mut left = daemon::stop_tree(main.pid, session, graceful, 0.5, ctx.deadline);
            if let Some(sid) = session {
                // Anything of the session the tree walk missed (workers that already re-parented).
                let stragglers = daemon::session_members(sid);
                left.extend(proc::signal_and_wait(&stragglers, Signal::SIGKILL, ctx.deadline));
            }
            left
        }
    };
    if left.is_empty() {
        // A clean stop: the console of this run is of no further use (a failed start's stays).
        inst.forget();
        let _ = fs::remove_file(&inst.console);
        ctx.log.info(format!("{name} stopped"));
        Ok(OcfStatus::Success)
    } else {
        Err(OcfError::generic(format!("{name} processes survived SIGKILL: {}", list(&left))))
    }
}

/// Removes what a killed master left behind before a new start (orphans holding the port).
pub fn clear_orphans(inst: &Instance, ctx: &Ctx) -> OcfResult<()> {
    if let State::Orphaned { .. } = state(inst, None) {
        stop(inst, None, Signal::SIGKILL, ctx)?;
    }
    Ok(())
}

/// GETs a health URL within `deadline`: Ok on 2xx, else a reason naming the URL.
/// Readiness of a web server whose master binds every listen socket before it forks workers
/// (nginx, httpd): one listening port means all are bound.
pub fn ready_when_listening<'a>() -> ReadyCheck<'a> {
    Box::new(|tree: &[i32]| if daemon::listening_ports(tree).is_empty() { Probe::NotYet } else { Probe::Ready })
}

/// The monitor of a web server (nginx, httpd): depth 0 = the master runs and listens; depth 10 =
/// also `statusurl` (default: `/` on the first port it listens on) answers 2xx in time.
pub fn web_server_monitor(inst: &Instance, adopt: Option<i32>, what: &str, ctx: &Ctx) -> OcfResult {
    let main = check_running(inst, adopt, what)?;
    // The master holds every listening socket; the workers only inherit them.
    let mut ports = daemon::listening_ports(&[main.pid]);
    if ports.is_empty() {
        ports = daemon::listening_ports(&tree_of(main.pid));
    }
    let Some(first) = ports.first() else {
        return Err(OcfError::generic(format!("{what} (PID {}) listens on no TCP port", main.pid)));
    };
    if ctx.check_level() >= 10 {
        let url = match ctx.params.get("statusurl") {
            Some(u) => u.to_string(),
            None => format!("http://127.0.0.1:{first}/"),
        };
        http_ok(&url, request_deadline(ctx)).map_err(OcfError::generic)?;
    }
    Ok(OcfStatus::Success)
}

pub fn http_ok(url: &str, deadline: Deadline) -> Result<(), String> {
    let parsed = http::parse_url(url)?;
    match http::get(&parsed, deadline) {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(format!("GET {url} answered HTTP {}", r.status)),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

/// The deadline of one network request: the per-request timeout, within the action's budget.
pub fn request_deadline(ctx: &Ctx) -> Deadline {
    let secs = ctx.params.int("request_timeout").unwrap_or(5).max(1) as u64;
    ctx.deadline.at_most(Duration::from_secs(secs))
}

/// Checks an executable parameter on this host: missing is "not installed" (5).
pub fn require_executable(param: &str, path: &str) -> OcfResult<()> {
    require_absolute(param, path)?;
    crate::ocf::host::require_executable(param, Path::new(path))
}

/// Checks a file or directory parameter on this host: missing is "not installed here" (5; it may
/// live on a filesystem not mounted on this node yet).
pub fn require_path(param: &str, path: &str, dir: bool) -> OcfResult<()> {
    require_absolute(param, path)?;
    match fs::metadata(path) {
        Ok(m) if m.is_dir() == dir => Ok(()),
        Ok(_) => Err(OcfError::installed(format!(
            "parameter '{param}': {path} is not a {}",
            if dir { "directory" } else { "file" }
        ))),
        Err(e) => Err(OcfError::installed(format!("parameter '{param}': {path}: {e}"))),
    }
}

/// Paths must be absolute: the agent's working directory means nothing to an administrator (6).
pub fn require_absolute(param: &str, path: &str) -> OcfResult<()> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(OcfError::configured(format!("parameter '{param}' must be an absolute path, got '{path}'")))
    }
}

/// A URL parameter must be a plain http URL (6 otherwise).
pub fn require_url(param: &str, url: Option<&str>) -> OcfResult<()> {
    match url {
        Some(u) => {
            http::parse_url(u).map(|_| ()).map_err(|e| OcfError::configured(format!("parameter '{param}': {e}")))
        }
        None => Ok(()),
    }
}

/// A daemon's configuration file, and how to find in its messages the file it rejected (an
/// included one, or this one when the message names none).
pub struct ConfigFile {
    pub path: PathBuf,
    /// The file a message of the daemon names as the one at fault.
    pub named: fn(&str) -> Option<PathBuf>,
}

impl ConfigFile {
    /// The configuration was rejected (`message`, the daemon's words; `output`, all it said):
    /// the front layer keeps nothing on the replicated partition, so the file is node-local and
    /// the answer 2 (banned on this node), never 6.
    pub fn rejected(&self, what: &str, message: &str, output: &str) -> OcfError {
        let file = (self.named)(output).filter(|p| p.is_absolute()).unwrap_or_else(|| self.path.clone());
        config_fault::rejected(what, &Culprit::File(file), None, message)
    }
}

/// Runs a configuration check with the software's own command; a configuration it rejects is
/// refused with its message ([`ConfigFile::rejected`]).
pub fn config_check(what: &str, config: &ConfigFile, cmd: &mut Command, ctx: &Ctx) -> OcfResult<()> {
    match proc::run(cmd, ctx.deadline.fraction(0.5)) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => {
            let message = one_line(&out.message());
            Err(config.rejected(what, &message, &message))
        }
        Err(e) => Err(OcfError::generic(format!("{what} configuration check: {e}"))),
    }
}

fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" | ")
}

#[cfg(test)]
mod tests {
    use super::pick_lines;

    #[test]
    fn quotes_messages_not_stack_traces() {
        let console = "INFO starting\nSEVERE Parse fatal error at line [9]\n\
                       \torg.xml.sax.SAXParseException; lineNumber: 9; bad tag\n\t\tat a.b(C.java:1)\n\
                       \torg.xml.sax.SAXParseException; lineNumber: 9; bad tag\n\t... 5 more\nSEVERE Cannot start server\n";
        assert_eq!(
            pick_lines(console, &["SEVERE", "Exception;"], 4),
            "SEVERE Parse fatal error at line [9] | org.xml.sax.SAXParseException; lineNumber: 9; bad tag | SEVERE Cannot start server"
        );
        assert_eq!(pick_lines("a\nb\n\nc\n", &[], 2), "b | c");
        assert_eq!(pick_lines("a\nb\n", &["zzz"], 4), "a | b");
    }
}
