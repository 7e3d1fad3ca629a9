//! The lifecycle every service agent shares. Start: launch in a session of its own, remember
//! the identity, wait until ready (or fail fast with the lines that explain why). Stop: the
//! service's signals with their shares of the budget, then SIGKILL to the whole session.
//! Monitor: found, not stopped, then the service's own checks.

use std::path::PathBuf;
use std::process::{Child, ExitStatus};

use nix::sys::signal::Signal;

use super::checks;
use super::explain::{ports_in_message, Quote};
use super::instance::{open_console, open_log, Found, Instance};
use super::{IfRunning, Output, Probe, Service, StartFailure};
use crate::ocf::{Ctx, Deadline, OcfError, OcfResult, OcfStatus};
use crate::sys::identity::Identity;
use crate::sys::proc::{self, Readiness};
use crate::sys::{listeners, logtail, tree};

/// Start: refuses or answers at once if the server already runs, clears what a killed one left,
/// launches it and returns when it is ready.
pub fn start<S: Service>(svc: &S, ctx: &Ctx) -> OcfResult {
    let inst = Instance::new(S::AGENT, ctx);
    match svc.locate(&inst) {
        Found::Running(main) => return already_running(svc, ctx, &inst, main),
        Found::Orphaned { main, left } => {
            // Workers of a killed master may hold the port the new one needs.
            if !kill_orphans::<S>(ctx, main, &left).is_empty() {
                return Err(OcfError::generic(format!("cannot clear the processes left by {} PID {main}", S::SERVER)));
            }
            inst.forget();
        }
        Found::Stopped(_) => {}
    }
    svc.prepare(ctx)?;
    for (param, port) in svc.ports() {
        checks::require_port_free(S::SERVER, param, port)?;
    }
    let launched = launch(svc, ctx, &inst)?;
    wait_until_ready(svc, ctx, &inst, launched)
}

fn already_running<S: Service>(svc: &S, ctx: &Ctx, inst: &Instance, main: i32) -> OcfResult {
    match S::IF_RUNNING {
        // A double start succeeds only if the running one is healthy.
        IfRunning::Monitor => monitor(svc, ctx),
        IfRunning::Adopt => {
            ctx.log.info(format!("{} PID {main} already runs", S::SERVER));
            inst.remember(main)?;
            Ok(OcfStatus::Success)
        }
    }
}

/// What start launched.
struct Launched {
    child: Child,
    pid: i32,
    /// Where its output goes, and the size of that file before the launch.
    output: PathBuf,
    mark: u64,
}

impl Launched {
    /// What the server wrote since the launch.
    fn lines(&self) -> Vec<String> {
        logtail::lines_since(&self.output, self.mark)
    }
}

fn launch<S: Service>(svc: &S, ctx: &Ctx, inst: &Instance) -> OcfResult<Launched> {
    let (file, output, mark) = match svc.output(ctx)? {
        Output::Console => (open_console(&inst.console)?, inst.console.clone(), 0),
        Output::Log { path, owner } => {
            let mark = logtail::mark(&path);
            (open_log(&path, owner.as_ref())?, path, mark)
        }
    };
    let mut cmd = svc.command(ctx)?;
    let err = file.try_clone().map_err(|e| OcfError::generic(format!("{}: {e}", output.display())))?;
    cmd.stdout(file).stderr(err);
    ctx.log.debug(format!("starting {cmd:?}"));
    let child = proc::spawn_daemon(&mut cmd).map_err(|e| {
        OcfError::generic(format!("cannot run {}: {e}", std::path::Path::new(cmd.get_program()).display()))
    })?;
    let pid = child.id() as i32;
    // A start command that daemonizes exits; its identity would only name its orphans.
    if !svc.launcher_may_exit() {
        inst.remember(pid)?;
    }
    ctx.log.info(format!("{} PID {pid} started", S::SERVER));
    Ok(Launched { child, pid, output, mark })
}

/// What waiting for readiness found, besides the verdict.
struct Waited {
    readiness: Readiness,
    /// The main process when ready (the launched one, or the one a daemonizing start made).
    main: i32,
    /// Why the last poll was not ready yet.
    not_yet: Option<String>,
    /// A failure seen while the process runs (fatal output, a failed probe).
    failure: Option<String>,
    exited: Option<ExitStatus>,
}

fn wait_until_ready<S: Service>(svc: &S, ctx: &Ctx, inst: &Instance, mut launched: Launched) -> OcfResult {
    let waited = wait(svc, ctx, &mut launched);
    match (waited.readiness, waited.failure) {
        (Readiness::Ready, None) => {
            let main = waited.main;
            let id = Identity::of(main)
                .ok_or_else(|| OcfError::generic(format!("{} exited as it became ready", S::SERVER)))?;
            inst.save(id)?;
            ctx.log.info(format!("{} is ready (PID {main})", S::SERVER));
            Ok(OcfStatus::Success)
        }
        (Readiness::Ready, Some(why)) => {
            let held = listeners::describe_port_holder(&ports_in_message(&why), &tree::tree_of(launched.pid));
            kill_launched(inst, launched.pid, ctx.deadline);
            Err(OcfError::generic(prefixed(held, format!("{} failed during start: {why}", S::SERVER))))
        }
        (Readiness::Died, _) => Err(exited_during_start(svc, ctx, inst, &mut launched, waited.exited)),
        (Readiness::TimedOut, _) => Err(late(svc, ctx, inst, &launched, waited.not_yet)),
    }
}

/// Polls readiness (and the output for fatal lines) while the launched process lives, within
/// the service's share of the budget.
fn wait<S: Service>(svc: &S, ctx: &Ctx, l: &mut Launched) -> Waited {
    let may_exit = svc.launcher_may_exit();
    let (output, mark, pid) = (l.output.clone(), l.mark, l.pid);
    let mut w = Waited { readiness: Readiness::TimedOut, main: pid, not_yet: None, failure: None, exited: None };
    w.readiness = proc::wait_ready(
        ctx.deadline.fraction(S::PATIENCE.share),
        || match l.child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                w.exited = Some(status);
                may_exit && status.success()
            }
            Err(_) => false,
        },
        || {
            if let Some(why) = fatal_output::<S>(&output, mark) {
                w.failure = Some(why);
                return true;
            }
            match svc.ready(ctx, pid) {
                Probe::Ready => true,
                Probe::ReadyAt(p) => {
                    w.main = p;
                    true
                }
                Probe::NotYet(why) => {
                    w.not_yet = why;
                    false
                }
                Probe::Failed(why) => {
                    w.failure = Some(why);
                    true
                }
            }
        },
    );
    w
}

/// The quoted output if it shows one of the service's `FATAL_OUTPUT` markers.
fn fatal_output<S: Service>(output: &std::path::Path, mark: u64) -> Option<String> {
    if S::FATAL_OUTPUT.is_empty() {
        return None;
    }
    let lines = logtail::lines_since(output, mark);
    lines
        .iter()
        .any(|l| S::FATAL_OUTPUT.iter().any(|m| l.contains(m)))
        .then(|| Quote { markers: S::FATAL_OUTPUT, ..Quote::LAST_LINES }.quote(&lines))
}

/// The launched process exited before it was ready: the service's own explanation (a rejected
/// configuration), else its exit status and last lines, with the holder of a port they name.
fn exited_during_start<S: Service>(
    svc: &S,
    ctx: &Ctx,
    inst: &Instance,
    l: &mut Launched,
    exited: Option<ExitStatus>,
) -> OcfError {
    let status = exited.or_else(|| l.child.try_wait().ok().flatten());
    let lines = l.lines();
    let quoted = S::QUOTE.quote(&lines);
    let held = listeners::describe_port_holder(&ports_in_message(&quoted), &tree::session_members(l.pid));
    let failure = StartFailure {
        status: &status.map(describe_status).unwrap_or_else(|| "exit status unknown".into()),
        exited_cleanly: status.is_some_and(|s| s.success()),
        lines: &lines,
        quoted: &quoted,
        held: held.as_deref(),
    };
    let reason = svc.explain(ctx, &failure).unwrap_or_else(|| {
        let said = if quoted.is_empty() { String::new() } else { format!(": {quoted}") };
        OcfError::generic(prefixed(
            held.clone(),
            format!("{} exited during start ({}){said}", S::SERVER, failure.status),
        ))
    });
    kill_launched(inst, l.pid, ctx.deadline);
    reason
}

/// Not ready within the budget: killed (or left to the stop that follows), with why it was not
/// ready and its last lines.
fn late<S: Service>(svc: &S, ctx: &Ctx, inst: &Instance, l: &Launched, not_yet: Option<String>) -> OcfError {
    let quoted = S::QUOTE.quote(&l.lines());
    let mut reason = format!("{} (PID {}) was not ready within the start timeout", S::SERVER, l.pid);
    if S::PATIENCE.kill_when_late {
        svc.abandon(ctx);
        kill_launched(inst, l.pid, ctx.deadline);
        reason.push_str(" and was killed");
    }
    if let Some(why) = not_yet {
        reason.push_str(&format!("; {why}"));
    }
    if !quoted.is_empty() {
        reason.push_str(&format!("; last output: {quoted}"));
    }
    OcfError::generic(reason)
}

fn prefixed(held: Option<String>, reason: String) -> String {
    match held {
        Some(h) => format!("{h}; {reason}"),
        None => reason,
    }
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), std::os::unix::process::ExitStatusExt::signal(&status)) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// SIGKILL to what a failed start launched: its tree and its session; the identity goes.
fn kill_launched(inst: &Instance, pid: i32, deadline: Deadline) {
    let mut pids = tree::tree_of(pid);
    pids.extend(tree::session_members(pid));
    proc::signal_and_wait(&pids, Signal::SIGKILL, deadline);
    inst.forget();
}

fn kill_orphans<S: Service>(ctx: &Ctx, main: i32, left: &[i32]) -> Vec<i32> {
    ctx.log.warn(format!(
        "{} main process {main} is gone; killing {} leftover processes ({})",
        S::SERVER,
        left.len(),
        pid_list(left)
    ));
    proc::signal_and_wait(left, Signal::SIGKILL, ctx.deadline)
}

/// Stop: the service's signals, then SIGKILL to everything of its session within the budget.
/// Gone already is success; orphans of a killed master are killed.
pub fn stop<S: Service>(svc: &S, ctx: &Ctx) -> OcfResult {
    let inst = Instance::new(S::AGENT, ctx);
    let left = match svc.locate(&inst) {
        Found::Running(main) => {
            svc.before_stop(ctx, main)?;
            stop_running::<S>(ctx, &inst, main)
        }
        Found::Orphaned { main, left } => kill_orphans::<S>(ctx, main, &left),
        // Not found as this server, but what start launched still lives: it goes too.
        Found::Stopped(_) => match inst.saved().filter(Identity::is_alive) {
            Some(id) => stop_running::<S>(ctx, &inst, id.pid),
            None => Vec::new(),
        },
    };
    if !left.is_empty() {
        return Err(OcfError::generic(format!("{} processes survived SIGKILL: {}", S::SERVER, proc::describe(&left))));
    }
    // A clean stop: the console of this run is of no further use (a failed start's stays).
    inst.forget();
    let _ = std::fs::remove_file(&inst.console);
    Ok(OcfStatus::Success)
}

fn stop_running<S: Service>(ctx: &Ctx, inst: &Instance, main: i32) -> Vec<i32> {
    // A server we launched leads its session (setsid), or runs under the process we launched
    // (a start script): then its whole session goes, also workers that already re-parented.
    let launched = inst.saved().map(|id| id.pid);
    let session = proc::stat(main).map(|s| s.session).filter(|s| *s == main || Some(*s) == launched);
    let steps: Vec<(Signal, f64)> = S::STOP.iter().map(|s| (s.signal, s.share)).collect();
    let mut left = tree::stop(main, session, &steps, ctx.deadline, |step| {
        let how = match step {
            Some(i) => format!("{} ({})", S::STOP[i].says, S::STOP[i].signal.as_str()),
            None => "SIGKILL to what is left".to_string(),
        };
        ctx.log.info(format!("{} PID {main}: {how}", S::SERVER));
    });
    if let Some(sid) = session {
        // Anything of the session the tree walk missed.
        let stragglers = tree::session_members(sid);
        left.extend(proc::signal_and_wait(&stragglers, Signal::SIGKILL, ctx.deadline));
    }
    if left.is_empty() {
        ctx.log.info(format!("{} stopped", S::SERVER));
    }
    left
}

/// Monitor: the server runs, is not stopped, and passes its own checks at the depth asked.
pub fn monitor<S: Service>(svc: &S, ctx: &Ctx) -> OcfResult {
    let main = running(svc, ctx)?;
    svc.check(ctx, main)
}

/// The main process of a running, not stopped instance; else the monitor's answer: not running
/// (7), or an error (1) for orphans and a stopped (hung) process. Only the main process is
/// checked for a stop: that is cheap (no walk of every worker thread), and a hang of workers
/// alone shows at depth 10, where requests time out.
pub fn running<S: Service>(svc: &S, ctx: &Ctx) -> OcfResult<i32> {
    match svc.locate(&Instance::new(S::AGENT, ctx)) {
        Found::Stopped(why) => Err(OcfError::not_running(why)),
        Found::Orphaned { main, left } => Err(OcfError::generic(format!(
            "{} main process {main} is gone but {} of its processes remain (PIDs {}){}; stop cleans them up",
            S::SERVER,
            left.len(),
            pid_list(&left),
            ports_note(&left)
        ))),
        Found::Running(main) => match tree::stopped_member(&[main]) {
            Some(pid) => Err(OcfError::generic(format!(
                "{} PID {pid} is stopped (SIGSTOP or traced): it cannot serve",
                S::SERVER
            ))),
            None => Ok(main),
        },
    }
}

fn pid_list(pids: &[i32]) -> String {
    pids.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

fn ports_note(pids: &[i32]) -> String {
    let ports = listeners::listening_ports(pids);
    if ports.is_empty() {
        String::new()
    } else {
        format!(", holding port {}", ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" "))
    }
}
