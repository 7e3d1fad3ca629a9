//! Any service described by commands (WildFly, Open Liberty, WebSphere and in-house services
//! through their own scripts). Commands are argument vectors split by `sys::argv` (shell-like
//! quoting, no expansion); a shell runs only when the administrator writes `sh -c '...'`.
//!
//! The service's main process is found, in this order: the PID in `pidfile`; the oldest process
//! whose command line contains `process_match`; otherwise the process `start_command` started
//! (which must then stay in the foreground). Start returns when that process lives, `port` (if
//! given) listens and `health_command` (if given) exits 0.
//!
//! Monitor depth 0: the main process lives, is not stopped, and listens on `port` if given.
//! Depth 10: `health_command` exits 0 within `request_timeout` (anything else: 1).

use std::process::Command;

use nix::sys::signal::Signal;

use crate::agents::front_service::{self as svc, Instance};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::identity::{self, Identity};
use crate::sys::listeners;
use crate::sys::proc::Readiness;
use crate::sys::{argv, proc};

pub struct App;

static SPEC: AgentSpec = AgentSpec {
    name: "app",
    shortdesc: "Any service run by its own start, stop and health commands",
    longdesc: "Manages a service through commands given as argument vectors: words split with shell-like \
               quoting ('...', \"...\" with \\\" and \\\\, \\ outside quotes) and no expansion, redirection or \
               pipes; write `sh -c '...'` to run a shell on purpose. The main process is found by pidfile, \
               by process_match, or is the start command itself if it stays in the foreground. Start returns \
               when the main process lives, the port listens and the health command exits 0; it fails at once \
               if the start command fails (its output is the reason). Stop runs stop_command (if any), then \
               TERM, then KILL to the whole process tree within the budget. Monitor depth 0: process identity \
               (and port); depth 10: health command exit 0 = healthy, anything else failed.",
    params: &[
        ParamSpec::string("start_command")
            .required()
            .unique()
            .short("Start command")
            .long("The command that starts the service, e.g. `/opt/wildfly/bin/standalone.sh -b 127.0.0.1`."),
        ParamSpec::string("stop_command").short("Stop command").long(
            "Command that stops the service gracefully, given half the stop budget; TERM and KILL follow if it \
             leaves processes. Unset: TERM, then KILL.",
        ),
        ParamSpec::string("health_command").short("Health command (depth 10)").long(
            "Command whose exit code tells the service's health at monitor depth 10 and at start: 0 healthy, \
             anything else failed. Runs within request_timeout.",
        ),
        ParamSpec::string("pidfile")
            .unique()
            .short("PID file")
            .long("The service's PID file, for a start command that daemonizes and writes one."),
        ParamSpec::string("process_match").short("Process match").long(
            "Text the main process's command line contains, for a start command that daemonizes without a PID file.",
        ),
        ParamSpec::integer("port", Some(1), Some(65535)).short("TCP port").long(
            "A TCP port the service listens on: checked free before start (its holder is named), and required \
             listening for start and at monitor depth 0.",
        ),
        ParamSpec::string("workdir").short("Working directory").long("Directory the commands run in. Default: /."),
        ParamSpec::integer("request_timeout", Some(1), Some(300))
            .default("10")
            .short("Health command timeout (s)")
            .long("Seconds health_command may run, within the operation's timeout; it is killed after that."),
    ],
    actions: &[
        ActionSpec::new("start", "60s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::monitor("10s", "30s"),
        ActionSpec::monitor("30s", "30s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "20s"),
    ],
};

const COMMANDS: [&str; 3] = ["start_command", "stop_command", "health_command"];

/// A command parameter as an argument vector (6 if it cannot be split or is empty).
fn command_words(ctx: &Ctx, param: &str) -> OcfResult<Option<Vec<String>>> {
    let Some(text) = ctx.params.get(param) else { return Ok(None) };
    let words = argv::split(text).map_err(|e| OcfError::configured(format!("parameter '{param}': {e}")))?;
    if words.is_empty() {
        return Err(OcfError::configured(format!("parameter '{param}' names no command")));
    }
    Ok(Some(words))
}

/// The program of a command must exist here (5): a path, or a name found on PATH.
fn require_program(param: &str, program: &str) -> OcfResult<()> {
    if program.contains('/') {
        return svc::require_executable(param, program);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    if std::env::split_paths(&path)
        .any(|d| svc::require_executable(param, d.join(program).to_str().unwrap_or("")).is_ok())
    {
        Ok(())
    } else {
        Err(OcfError::installed(format!("parameter '{param}': program '{program}' is not on PATH")))
    }
}

fn command(ctx: &Ctx, words: &[String]) -> Command {
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]).current_dir(ctx.params.get("workdir").unwrap_or("/"));
    cmd
}

/// The oldest live process (not this agent) whose command line contains `needle`.
fn find_process(needle: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    proc::all_pids()
        .into_iter()
        .filter(|p| *p != me)
        .filter(|p| proc::cmdline(*p).is_some_and(|c| c.join(" ").contains(needle)))
        .filter_map(|p| proc::stat(p).filter(|s| s.state != 'Z').map(|s| (s.starttime, p)))
        .min()
        .map(|(_, p)| p)
}

/// The main process as pidfile or process_match name it (None when neither is set or found).
fn located(ctx: &Ctx) -> Option<i32> {
    if let Some(pidfile) = ctx.params.get("pidfile") {
        return identity::read_pidfile(std::path::Path::new(pidfile));
    }
    ctx.params.get("process_match").and_then(find_process)
}

fn port(ctx: &Ctx) -> Option<u16> {
    ctx.params.int("port").map(|p| p as u16)
}

/// Runs health_command within the per-request timeout: Ok if it exits 0.
fn health(ctx: &Ctx, words: &[String], deadline: Deadline) -> Result<(), String> {
    match proc::run(&mut command(ctx, words), deadline) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => Err(format!(
            "health_command failed ({}){}",
            out.status,
            if out.message().is_empty() {
                String::new()
            } else {
                format!(": {}", svc::pick_lines(&out.message(), &[], 3))
            }
        )),
        Err(e) => Err(format!("health_command {e}")),
    }
}

impl Agent for App {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        for param in COMMANDS {
            command_words(ctx, param)?;
        }
        for param in ["pidfile", "workdir"] {
            if let Some(p) = ctx.params.get(param) {
                svc::require_absolute(param, p)?;
            }
        }
        if ctx.params.get("process_match").is_some_and(|m| m.trim().is_empty()) {
            return Err(OcfError::configured("parameter 'process_match' is blank"));
        }
        if level >= crate::ocf::agent::VALIDATE_HOST {
            for param in COMMANDS {
                if let Some(words) = command_words(ctx, param)? {
                    require_program(param, &words[0])?;
                }
            }
            if let Some(dir) = ctx.params.get("workdir") {
                svc::require_path("workdir", dir, true)?;
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("app", ctx);
        if let svc::State::Running { .. } = svc::state(&inst, located(ctx)) {
            return self.monitor(ctx);
        }
        svc::clear_orphans(&inst, ctx)?;
        if let Some(held) = port(ctx).and_then(|p| listeners::describe_port_holder(&[p], &[])) {
            return Err(OcfError::generic(format!("cannot start the service: {held}")));
        }
        let words = command_words(ctx, "start_command")?.expect("required");
        let health_words = command_words(ctx, "health_command")?;
        let console = svc::open_console(&inst.console)?;
        let err = console.try_clone().map_err(|e| OcfError::generic(format!("console: {e}")))?;
        let mut cmd = command(ctx, &words);
        cmd.stdout(console).stderr(err);
        let mut child =
            proc::spawn_daemon(&mut cmd).map_err(|e| OcfError::generic(format!("cannot run start_command: {e}")))?;
        let child_pid = child.id() as i32;
        let follows_child = ctx.params.get("pidfile").is_none() && ctx.params.get("process_match").is_none();
        if follows_child {
            if let Some(id) = Identity::of(child_pid) {
                inst.save(id)?;
            }
        }
        let mut exited: Option<String> = None;
        let mut health_error = String::new();
        let mut main: Option<i32> = None;
        let readiness = proc::wait_ready(
            ctx.deadline.fraction(0.85),
            || {
                // A daemonizing start command may exit 0; any other exit is a failed start.
                if exited.is_none() {
                    if let Ok(Some(status)) = child.try_wait() {
                        let failed = !status.success() || follows_child;
                        exited = Some(if status.success() { "exit code 0".into() } else { status.to_string() });
                        if failed {
                            return false;
                        }
                    }
                }
                true
            },
            || {
                let pid = if follows_child { Some(child_pid).filter(|p| proc::is_alive(*p)) } else { located(ctx) };
                let Some(pid) = pid else { return false };
                main = Some(pid);
                if let Some(p) = port(ctx) {
                    if !listeners::listening_ports(&svc::tree_of(pid)).contains(&p) {
                        return false;
                    }
                }
                match &health_words {
                    Some(h) => match health(ctx, h, svc::request_deadline(ctx)) {
                        Ok(()) => true,
                        Err(e) => {
                            health_error = e;
                            false
                        }
                    },
                    None => true,
                }
            },
        );
        let output = || svc::pick_lines(&std::fs::read_to_string(&inst.console).unwrap_or_default(), &[], 4);
        match readiness {
            Readiness::Ready => {
                let pid = main.expect("ready means found");
                let id = Identity::of(pid).ok_or_else(|| OcfError::generic("the service exited as it became ready"))?;
                inst.save(id)?;
                ctx.log.info(format!("service is ready (PID {pid})"));
                Ok(OcfStatus::Success)
            }
            Readiness::Died => {
                svc::kill_all(&inst, child_pid, ctx.deadline);
                let status = exited.unwrap_or_default();
                let why = if follows_child && status == "exit code 0" {
                    "start_command exited (exit code 0); for a command that daemonizes set pidfile or process_match"
                        .to_string()
                } else {
                    format!("start_command failed ({status})")
                };
                let out = output();
                let held = listeners::describe_port_holder(&svc::ports_in_message(&out), &[]);
                let mut reason = held.map(|h| format!("{h}; {why}")).unwrap_or(why);
                if !out.is_empty() {
                    reason.push_str(&format!(": {out}"));
                }
                Err(OcfError::generic(reason))
            }
            Readiness::TimedOut => {
                // Kill what the start left: the start command's session and the located process.
                if let Some(pid) = main {
                    proc::signal_and_wait(&svc::tree_of(pid), Signal::SIGKILL, ctx.deadline);
                }
                svc::kill_all(&inst, child_pid, ctx.deadline);
                let mut reason = "the service was not ready within the start timeout and was killed".to_string();
                if main.is_none() && !follows_child {
                    reason.push_str("; pidfile/process_match found no process");
                }
                if !health_error.is_empty() {
                    reason.push_str(&format!("; last {health_error}"));
                }
                Err(OcfError::generic(reason))
            }
        }
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("app", ctx);
        if let (svc::State::Running { main, .. }, Some(words)) =
            (svc::state(&inst, located(ctx)), command_words(ctx, "stop_command")?)
        {
            match proc::run(&mut command(ctx, &words), ctx.deadline.fraction(0.5)) {
                Ok(out) if out.success() => {}
                Ok(out) => ctx.log.warn(format!("stop_command failed ({}): {}", out.status, out.message())),
                Err(e) => ctx.log.warn(format!("stop_command {e}")),
            }
            // Give the service what is left of the graceful half to go on its own.
            let tree = svc::tree_of(main.pid);
            proc::wait_gone(&tree, ctx.deadline.fraction(0.3));
        }
        svc::stop(&inst, located(ctx), Signal::SIGTERM, ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("app", ctx);
        let main = svc::check_running(&inst, located(ctx), "the service")?;
        if let Some(p) = port(ctx) {
            if !listeners::listening_ports(&svc::tree_of(main.pid)).contains(&p) {
                return Err(OcfError::generic(format!("the service (PID {}) does not listen on port {p}", main.pid)));
            }
        }
        if ctx.check_level() >= 10 {
            if let Some(words) = command_words(ctx, "health_command")? {
                health(ctx, &words, svc::request_deadline(ctx)).map_err(OcfError::generic)?;
            }
        }
        Ok(OcfStatus::Success)
    }
}
