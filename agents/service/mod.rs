//! The service model: one lifecycle for every agent that runs a server (haproxy, apache, nginx,
//! tomcat, app, postgresql, mariadb, activemq, rabbitmq). DESIGN.md §3's rules live here once:
//! the server starts in a session of its own, known by identity (not a PID file), start waits
//! until it is ready or fails fast with the lines that explain why, monitor finds it stopped or
//! hung before asking it anything, stop takes the whole session down with escalation inside the
//! budget.
//!
//! An agent says only what is specific to its server: it implements [`ServiceAgent`] (its
//! parameter table and checks) and [`Service`] on a struct of its settings; start, stop and
//! monitor are then the model's:
//!
//! | hook | says | default |
//! |---|---|---|
//! | `AGENT`, `SERVER` | state-file name; what exit reasons call the server | |
//! | [`Service::of`] | the server's settings, from the parameters | |
//! | [`Service::locate`] | how to find the running instance | the identity saved at start, else [`Service::adopt`] |
//! | [`Service::prepare`], [`Service::ports`] | what to check or clear before the launch | nothing |
//! | [`Service::command`], [`Service::output`] | the command line (user, environment); where its output goes | console under /run/hastack |
//! | [`Service::ready`], `FATAL_OUTPUT`, `PATIENCE` | readiness; output that means failure; how long to wait | 85 % of the budget, then killed |
//! | `IF_RUNNING` | what a start that finds it running answers | what monitor answers |
//! | `STOP` | the stop signals, each with its share of the budget (SIGKILL follows) | |
//! | `QUOTE`, [`Service::explain`] | the log lines that explain a failure; what the server rejected ([`config_fault`]) | last 4 lines |
//! | [`Service::check`] | monitor beyond "runs and is not stopped": ports, sockets, protocol, per depth | |
//!
//! Jobs beside the lifecycle: [`checks`] (parameters checked on this host), [`config_fault`] (a
//! configuration the server rejected: exit 2 or 6), [`explain`] (choosing the lines to quote),
//! [`web`] (HTTP status URLs), [`instance`] (state files and the console).

use std::path::PathBuf;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::ocf::{Agent, AgentSpec, Ctx, OcfError, OcfResult};
use crate::sys::proc::Account;

pub mod checks;
pub mod config_fault;
pub mod explain;
pub mod instance;
mod lifecycle;
pub mod web;

pub use explain::Quote;
pub use instance::{Found, Instance};
pub use lifecycle::{monitor, running, start, stop};

/// An OCF agent that runs a server: its table, its parameter checks, and the [`Service`] it
/// makes of the parameters. Start, stop and monitor are the model's ([`Agent`] follows).
pub trait ServiceAgent: Sync {
    type Server: Service;
    /// The agent's table: its parameters, actions and descriptions (its meta-data).
    const SPEC: &'static AgentSpec;
    /// Checks beyond the table's types (see [`Agent::validate`]).
    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()>;
    fn reload(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("reload is not implemented"))
    }
    /// Start, stop and monitor are the model's; an agent with roles (activemq's warm standby)
    /// wraps them.
    fn start(&self, ctx: &Ctx) -> OcfResult {
        start(&Self::Server::of(ctx)?, ctx)
    }
    fn stop(&self, ctx: &Ctx) -> OcfResult {
        stop(&Self::Server::of(ctx)?, ctx)
    }
    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        monitor(&Self::Server::of(ctx)?, ctx)
    }
    fn promote(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("promote is not implemented"))
    }
    fn demote(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("demote is not implemented"))
    }
}

impl<A: ServiceAgent> Agent for A {
    fn spec(&self) -> &'static AgentSpec {
        A::SPEC
    }
    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        ServiceAgent::validate(self, ctx, level)
    }
    fn start(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::start(self, ctx)
    }
    fn stop(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::stop(self, ctx)
    }
    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::monitor(self, ctx)
    }
    fn promote(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::promote(self, ctx)
    }
    fn demote(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::demote(self, ctx)
    }
    fn reload(&self, ctx: &Ctx) -> OcfResult {
        ServiceAgent::reload(self, ctx)
    }
}

/// What an agent implements to run its server on the shared lifecycle.
pub trait Service: Sized {
    /// The agent: names the state files (`/run/hastack/<agent>-<resource>.id`).
    const AGENT: &'static str;
    /// What exit reasons and log lines call the server ("nginx", "postgres", "the broker").
    const SERVER: &'static str;
    /// The signals stop sends to the main process, in order, each with the share of the
    /// remaining budget it may take; SIGKILL to every process of the session follows.
    const STOP: &'static [StopStep];
    /// How long start waits for readiness, and what happens to a server that is late.
    const PATIENCE: Patience = Patience::KILL_WHEN_LATE;
    /// What start does when the server already runs.
    const IF_RUNNING: IfRunning = IfRunning::Monitor;
    /// Output that means the start has failed although the process still runs (nginx retries a
    /// failed bind for seconds after `[emerg]`; Tomcat keeps running without its connector).
    const FATAL_OUTPUT: &'static [&'static str] = &[];
    /// The lines of its output a failed start quotes.
    const QUOTE: Quote = Quote::LAST_LINES;

    /// The server, made of the agent's parameters (already checked against its table and by
    /// its syntax checks).
    fn of(ctx: &Ctx) -> OcfResult<Self>;

    /// The running instance. The default: the process whose identity start saved (its orphans if
    /// it died and left workers), else the one [`Service::adopt`] names.
    fn locate(&self, inst: &Instance) -> Found {
        inst.found(Self::SERVER, self.adopt())
    }

    /// A running instance started outside the agent (from the PID file its configuration
    /// names), already checked to be this server.
    fn adopt(&self) -> Option<i32> {
        None
    }

    /// Checks and clean-up before the launch: another server on the data, a stale lock, a
    /// configuration the software's own check rejects, directories under /run.
    fn prepare(&self, _ctx: &Ctx) -> OcfResult<()> {
        Ok(())
    }

    /// TCP ports the server needs, by parameter, refused before the launch if another process
    /// holds one.
    fn ports(&self) -> Vec<(&'static str, u16)> {
        Vec::new()
    }

    /// The command line, with its user, environment and working directory.
    fn command(&self, ctx: &Ctx) -> OcfResult<Command>;

    /// Where the server's stdout and stderr go.
    fn output(&self, _ctx: &Ctx) -> OcfResult<Output> {
        Ok(Output::Console)
    }

    /// Whether the launched process may exit 0 and leave the server running (a start command
    /// that daemonizes); then [`Service::ready`] names the main process ([`Probe::ReadyAt`]).
    fn launcher_may_exit(&self) -> bool {
        false
    }

    /// Polled while the launched process (`pid`) lives: ready, not yet, or failed for good.
    fn ready(&self, ctx: &Ctx, pid: i32) -> Probe;

    /// A start that gives up kills what it launched (its tree and session); this also kills
    /// what the launch made outside them (a service that daemonized with a session of its own).
    fn abandon(&self, _ctx: &Ctx) {}

    /// A failed start the agent can explain better than "exited during start": a configuration
    /// the server rejected ([`config_fault`]), a start command used the wrong way.
    fn explain(&self, _ctx: &Ctx, _failure: &StartFailure) -> Option<OcfError> {
        None
    }

    /// Monitor, once the main process is found running and not stopped: what this server must
    /// also do at the requested depth (listen, answer its protocol, pass a health check).
    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult;

    /// Before the stop signals (the app agent's stop_command), with the main process running.
    fn before_stop(&self, _ctx: &Ctx, _main: i32) -> OcfResult<()> {
        Ok(())
    }
}

/// Where a server's stdout and stderr go, and so where a failed start reads its reason.
pub enum Output {
    /// A console file of the run, `/run/hastack/<agent>-<resource>.console` (0600, started
    /// afresh by each start, removed by a clean stop).
    Console,
    /// A log file the server keeps (appended; only what this start wrote is quoted), owned by
    /// the server's account when it reopens the file itself.
    Log { path: PathBuf, owner: Option<Account> },
}

/// One stop signal: sent to the main process, then the tree gets `share` of the remaining
/// budget to go; `says` is what the log line calls it ("fast shutdown").
#[derive(Copy, Clone, Debug)]
pub struct StopStep {
    pub signal: Signal,
    pub share: f64,
    pub says: &'static str,
}

impl StopStep {
    pub const fn new(signal: Signal, share: f64, says: &'static str) -> StopStep {
        StopStep { signal, share, says }
    }
}

/// How long start waits for readiness, and what it does with a server that is not ready then.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Patience {
    /// The share of the start budget spent waiting.
    pub share: f64,
    /// Kill what start launched when it is late (the front layer: a half-started server is of
    /// no use), or leave it to the stop Pacemaker sends next (a database replaying its log is
    /// better shut down cleanly than killed in the middle).
    pub kill_when_late: bool,
}

impl Patience {
    /// Wait 85 % of the budget, leaving time to kill what was launched.
    pub const KILL_WHEN_LATE: Patience = Patience { share: 0.85, kill_when_late: true };
    /// Wait the whole budget and leave a late server to the stop that follows.
    pub const LEAVE_TO_STOP: Patience = Patience { share: 1.0, kill_when_late: false };
}

/// What start does when it finds the server already running.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IfRunning {
    /// Answer what monitor answers: a running but unhealthy server is an error for Pacemaker to
    /// recover with stop, not a reason for a second instance (the front layer).
    Monitor,
    /// Take it over as it is, remembering its identity: a server started by hand with this
    /// resource's settings (the data layer).
    Adopt,
}

/// What one readiness poll found.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// Ready; the main process is the one start launched.
    Ready,
    /// Ready, and the main process is this one (a start command that daemonized).
    ReadyAt(i32),
    /// Not yet; the reason, if any, is what a start that times out quotes.
    NotYet(Option<String>),
    /// Failed for good although the process runs (a bind error, a store lock taken).
    Failed(String),
}

/// A start whose launched process exited, as [`Service::explain`] sees it.
pub struct StartFailure<'a> {
    /// How it exited ("exit code 1", "killed by signal 9").
    pub status: &'a str,
    /// Whether that was exit code 0.
    pub exited_cleanly: bool,
    /// Everything the server wrote to its output during this start (at most the last 64 KiB).
    pub lines: &'a [String],
    /// The lines `QUOTE` picks from them, joined for an exit reason.
    pub quoted: &'a str,
    /// "port 8080 is already held by PID 12 (nginx)", when the quoted lines name a port another
    /// process listens on.
    pub held: Option<&'a str>,
}
