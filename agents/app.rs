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

use crate::agents::service::checks::{self, require_absolute_params, require_executable, require_path};
use crate::agents::service::web::request_deadline;
use crate::agents::service::{Probe, Quote, Service, ServiceAgent, StartFailure, StopStep};
use crate::ocf::{ActionSpec, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::{identity, listeners, proc, tree};

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
        ParamSpec::string("start_command").required().unique().short("Start command").long(concat!(
            "The command that starts the service, e.g. `/opt/wildfly/bin/standalone.sh -b 127.0.0.1`. ",
            crate::word_rules!()
        )),
        ParamSpec::string("stop_command").short("Stop command").long(concat!(
            "Command that stops the service gracefully, given half the stop budget; TERM and KILL follow if it \
             leaves processes. Unset: TERM, then KILL. ",
            crate::word_rules!()
        )),
        ParamSpec::string("health_command").short("Health command (depth 10)").long(concat!(
            "Command whose exit code tells the service's health at monitor depth 10 and at start: 0 healthy, \
             anything else failed. Runs within request_timeout. ",
            crate::word_rules!()
        )),
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
        ParamSpec::string("workdir").default("/").short("Working directory").long("Directory the commands run in."),
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
    if ctx.params.get(param).is_none() {
        return Ok(None);
    }
    let words = checks::words(&ctx.params, param)?;
    if words.is_empty() {
        return Err(OcfError::configured(format!("parameter '{param}' names no command")));
    }
    Ok(Some(words))
}

/// The program of a command must exist here (5): a path, or a name found on PATH.
fn require_program(param: &str, program: &str) -> OcfResult<()> {
    if program.contains('/') {
        return require_executable(param, program);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    if std::env::split_paths(&path).any(|d| require_executable(param, d.join(program)).is_ok()) {
        Ok(())
    } else {
        Err(OcfError::installed(format!("parameter '{param}': program '{program}' is not on PATH")))
    }
}

fn command(ctx: &Ctx, words: &[String]) -> Command {
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..]).current_dir(ctx.params.str("workdir"));
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

/// Runs health_command within the per-request timeout: Ok if it exits 0.
fn health(ctx: &Ctx, words: &[String], deadline: Deadline) -> Result<(), String> {
    match proc::run(&mut command(ctx, words), deadline) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => {
            let message = out.message();
            let lines: Vec<String> = message.lines().map(String::from).collect();
            let said = if message.is_empty() {
                String::new()
            } else {
                format!(": {}", Quote { lines: 3, ..Quote::LAST_LINES }.quote(&lines))
            };
            Err(format!("health_command failed ({}){said}", out.status))
        }
        Err(e) => Err(format!("health_command {e}")),
    }
}

/// The service, from the parameters.
pub struct Server {
    start: Vec<String>,
    health: Option<Vec<String>>,
    port: Option<u16>,
    pidfile: Option<String>,
    process_match: Option<String>,
    /// Neither pidfile nor process_match: the process start_command starts is the service.
    follows_child: bool,
}

impl Server {
    /// The main process as pidfile or process_match name it (None when neither is set or found).
    fn located(&self) -> Option<i32> {
        if let Some(pidfile) = &self.pidfile {
            return identity::read_pidfile(std::path::Path::new(pidfile));
        }
        self.process_match.as_deref().and_then(find_process)
    }

    fn listens(&self, main: i32) -> Result<(), String> {
        match self.port {
            Some(p) if !listeners::listening_ports(&tree::tree_of(main)).contains(&p) => {
                Err(format!("the service (PID {main}) does not listen on port {p}"))
            }
            _ => Ok(()),
        }
    }
}

impl Service for Server {
    const AGENT: &'static str = "app";
    const SERVER: &'static str = "the service";
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.5, "TERM")];

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        Ok(Server {
            start: command_words(ctx, "start_command")?.expect("required"),
            health: command_words(ctx, "health_command")?,
            port: ctx.params.opt_num("port"),
            pidfile: ctx.params.get("pidfile").map(String::from),
            process_match: ctx.params.get("process_match").map(String::from),
            follows_child: ctx.params.get("pidfile").is_none() && ctx.params.get("process_match").is_none(),
        })
    }

    fn adopt(&self) -> Option<i32> {
        self.located()
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        self.port.map(|p| vec![("port", p)]).unwrap_or_default()
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        Ok(command(ctx, &self.start))
    }

    fn launcher_may_exit(&self) -> bool {
        // A start command that daemonizes exits 0 and leaves the service running.
        !self.follows_child
    }

    fn ready(&self, ctx: &Ctx, pid: i32) -> Probe {
        let main = if self.follows_child { Some(pid).filter(|p| proc::is_alive(*p)) } else { self.located() };
        let Some(main) = main else {
            return Probe::NotYet(Some("pidfile/process_match found no process".into()));
        };
        if let Err(e) = self.listens(main) {
            return Probe::NotYet(Some(e));
        }
        if let Some(words) = &self.health {
            if let Err(e) = health(ctx, words, request_deadline(ctx)) {
                return Probe::NotYet(Some(format!("last {e}")));
            }
        }
        if main == pid {
            Probe::Ready
        } else {
            Probe::ReadyAt(main)
        }
    }

    fn abandon(&self, ctx: &Ctx) {
        // A daemonized service may have left the start command's session.
        if let Some(pid) = self.located() {
            proc::signal_and_wait(&tree::tree_of(pid), Signal::SIGKILL, ctx.deadline);
        }
    }

    fn explain(&self, _ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let why = if self.follows_child && failure.exited_cleanly {
            "start_command exited (exit code 0); for a command that daemonizes set pidfile or process_match".to_string()
        } else {
            format!("start_command failed ({})", failure.status)
        };
        let mut reason = failure.held.map(|h| format!("{h}; {why}")).unwrap_or(why);
        if !failure.quoted.is_empty() {
            reason.push_str(&format!(": {}", failure.quoted));
        }
        Some(OcfError::generic(reason))
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        self.listens(main).map_err(OcfError::generic)?;
        if ctx.check_level() >= 10 {
            if let Some(words) = &self.health {
                health(ctx, words, request_deadline(ctx)).map_err(OcfError::generic)?;
            }
        }
        Ok(OcfStatus::Success)
    }

    fn before_stop(&self, ctx: &Ctx, main: i32) -> OcfResult<()> {
        let Some(words) = command_words(ctx, "stop_command")? else { return Ok(()) };
        match proc::run(&mut command(ctx, &words), ctx.deadline.fraction(0.5)) {
            Ok(out) if out.success() => {}
            Ok(out) => ctx.log.warn(format!("stop_command failed ({}): {}", out.status, out.message())),
            Err(e) => ctx.log.warn(format!("stop_command {e}")),
        }
        // Give the service what is left of the graceful half to go on its own.
        proc::wait_gone(&tree::tree_of(main), ctx.deadline.fraction(0.3));
        Ok(())
    }
}

impl ServiceAgent for App {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        for param in COMMANDS {
            command_words(ctx, param)?;
        }
        require_absolute_params(&ctx.params, &["pidfile", "workdir"])?;
        if ctx.params.get("process_match").is_some_and(|m| m.trim().is_empty()) {
            return Err(OcfError::configured("parameter 'process_match' is blank"));
        }
        if level >= crate::ocf::agent::VALIDATE_HOST {
            for param in COMMANDS {
                if let Some(words) = command_words(ctx, param)? {
                    require_program(param, &words[0])?;
                }
            }
            require_path("workdir", ctx.params.str("workdir"), true)?;
        }
        Ok(())
    }
}
