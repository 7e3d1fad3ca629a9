//! `rabbitmq`: a single RabbitMQ node from Debian whose data directory (mnesia base) lives on
//! the replicated partition, active on one node at a time.
//!
//! The node runs under a fixed node name (default rabbit@localhost, not rabbit@HOSTNAME): the
//! database in the data directory is bound to the node name, so the node that takes over must
//! have the same one. Start runs Debian's `rabbitmq-server` script (it computes the Erlang
//! arguments) as the rabbitmq user with every path and port given by environment, and returns
//! once an AMQP login succeeds. The node's processes are found by their environment
//! (RABBITMQ_NODENAME and RABBITMQ_MNESIA_BASE in /proc/PID/environ), not by a PID file.
//! Monitor uses AMQP itself (`net::amqp`), never rabbitmqctl (an Erlang VM per call) nor
//! `node_health_check` (a no-op on current RabbitMQ).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::agents::service::checks::{self, require_absolute_params};
use crate::agents::service::config_fault::{self, last_between, Culprit};
use crate::agents::service::instance::default_log;
use crate::agents::service::{
    Found, IfRunning, Instance, Output, Patience, Probe, Quote, Service, ServiceAgent, StartFailure, StopStep,
};
use crate::net::amqp::Amqp;
use crate::ocf::{ActionSpec, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::identity::{self, Identity};
use crate::sys::{listeners, proc};

pub struct Rabbitmq;

static SPEC: AgentSpec = AgentSpec {
    name: "rabbitmq",
    shortdesc: "RabbitMQ node with its data directory on the replicated partition",
    longdesc: "Starts one RabbitMQ node (Debian's rabbitmq-server script, as 'user', in its own session) with its \
node name, data directory (RABBITMQ_MNESIA_BASE), AMQP, distribution and epmd ports from the parameters, and \
returns as soon as an AMQP login succeeds, or at once with its log lines if it exits. Refuses a data directory \
another running node uses. Stop is SIGTERM (clean shutdown), then SIGKILL of what is left. Monitor depth 0 checks \
the Erlang VM and its AMQP port; 10 the AMQP handshake and login; 20 publishes a persistent message with \
publisher confirms to a durable health queue and gets it back.",
    params: PARAMS,
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "90s"),
        ActionSpec::monitor("20s", "30s"),
        ActionSpec::monitor("21s", "30s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "5s"),
    ],
};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("server").default("/usr/lib/rabbitmq/bin/rabbitmq-server").short("the rabbitmq-server script"),
    ParamSpec::string("nodename")
        .default("rabbit@localhost")
        .short("Erlang node name")
        .long("RABBITMQ_NODENAME. The data directory belongs to this name: keep it the same on every node the resource can run on (hence the host-independent default)."),
    ParamSpec::string("data_dir")
        .default("/var/lib/rabbitmq/mnesia")
        .unique()
        .data()
        .short("data directory (RABBITMQ_MNESIA_BASE)")
        .long("Holds the node's database, queues and messages: put it on the replicated partition. It must exist and be writable by 'user' (missing: exit 5)."),
    ParamSpec::integer("port", Some(1), Some(65535)).default("5672").short("AMQP port"),
    ParamSpec::string("listen_address").short("AMQP listen address (default: all)"),
    ParamSpec::integer("dist_port", Some(1), Some(65535)).default("25672").short("Erlang distribution port"),
    ParamSpec::integer("epmd_port", Some(1), Some(65535)).default("4369").short("port of epmd (ERL_EPMD_PORT)"),
    ParamSpec::string("config").default("/etc/rabbitmq/rabbitmq.conf").short("rabbitmq.conf (may be absent)"),
    ParamSpec::string("enabled_plugins").default("/etc/rabbitmq/enabled_plugins").short("enabled plugins file"),
    ParamSpec::string("user").default("rabbitmq").short("OS user running the node (its home holds the Erlang cookie)"),
    ParamSpec::string("log")
        .short("file for the node's log (stdout)")
        .long("Default: /var/log/rabbitmq/hastack-rabbitmq-RESOURCE.log. A failed start quotes its last lines."),
    ParamSpec::string("amqp_user").default("guest").short("AMQP user of the monitor"),
    ParamSpec::string("password").default("guest").private().short("AMQP password of the monitor"),
    ParamSpec::string("vhost").default("/").short("virtual host of the monitor"),
    ParamSpec::string("health_queue").default("hastack.health").short("durable queue of the depth-20 check"),
    ParamSpec::integer("probe_timeout", Some(1), Some(3600)).default("5").short("seconds one monitor probe may take"),
];

/// One RabbitMQ node, from the parameters.
pub struct Server {
    server: PathBuf,
    nodename: String,
    data_dir: PathBuf,
    port: u16,
    dist_port: u16,
    user: String,
    log: PathBuf,
    probe_timeout: Duration,
    /// Where the node's VM is remembered (the process start launches is the start script).
    vm_state: PathBuf,
}

impl Server {
    fn amqp_addr(&self, ctx: &Ctx) -> String {
        let host = ctx.params.get("listen_address").filter(|a| *a != "0.0.0.0" && *a != "::").unwrap_or("127.0.0.1");
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The environment of a process, as (name, value) pairs (root may read any process's).
fn environ(pid: i32) -> Vec<(String, String)> {
    let Ok(raw) = fs::read(format!("/proc/{pid}/environ")) else { return Vec::new() };
    raw.split(|b| *b == 0)
        .filter_map(|kv| {
            let s = String::from_utf8_lossy(kv);
            s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn env_is(env: &[(String, String)], name: &str, value: &str) -> bool {
    env.iter().any(|(k, v)| k == name && v == value)
}

/// Erlang VMs of RabbitMQ nodes using `data_dir`: (pid, node name).
fn vms_on(data_dir: &Path) -> Vec<(i32, String)> {
    let dir = data_dir.to_string_lossy();
    proc::all_pids()
        .into_iter()
        .filter(|p| proc::stat(*p).is_some_and(|s| s.state != 'Z' && s.comm.starts_with("beam")))
        .filter_map(|p| {
            let env = environ(p);
            env_is(&env, "RABBITMQ_MNESIA_BASE", &dir).then(|| {
                let node =
                    env.iter().find(|(k, _)| k == "RABBITMQ_NODENAME").map(|(_, v)| v.clone()).unwrap_or_default();
                (p, node)
            })
        })
        .collect()
}

fn is_vm_of(pid: i32, rmq: &Server) -> bool {
    let env = environ(pid);
    proc::stat(pid).is_some_and(|s| s.state != 'Z' && s.comm.starts_with("beam"))
        && env_is(&env, "RABBITMQ_MNESIA_BASE", &rmq.data_dir.to_string_lossy())
        && env_is(&env, "RABBITMQ_NODENAME", &rmq.nodename)
}

/// The VM of this resource's node: on its data directory under its node name. The identity
/// remembered from the last look is checked first; a scan of all processes otherwise.
fn find_vm(rmq: &Server) -> Option<i32> {
    if let Some(id) = identity::load_live_identity(&rmq.vm_state).filter(|id| is_vm_of(id.pid, rmq)) {
        return Some(id.pid);
    }
    let pid = vms_on(&rmq.data_dir).into_iter().find(|(_, n)| *n == rmq.nodename).map(|(p, _)| p)?;
    if let Some(id) = Identity::of(pid) {
        let _ = identity::save_identity(&rmq.vm_state, id);
    }
    Some(pid)
}

impl Service for Server {
    const AGENT: &'static str = "rabbitmq";
    const SERVER: &'static str = "the node";
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.8, "shutdown")];
    /// Message store recovery may outlast the start timeout: the stop that follows shuts the
    /// node down cleanly.
    const PATIENCE: Patience = Patience::LEAVE_TO_STOP;
    const IF_RUNNING: IfRunning = IfRunning::Adopt;
    const QUOTE: Quote = Quote { lines: 3, noise: erlang_noise, ..Quote::LAST_LINES };

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        Ok(Server {
            server: p.str("server").into(),
            nodename: p.str("nodename").into(),
            data_dir: p.str("data_dir").into(),
            port: p.num("port"),
            dist_port: p.num("dist_port"),
            user: p.str("user").into(),
            log: p.get("log").map(PathBuf::from).unwrap_or_else(|| default_log("/var/log/rabbitmq", "rabbitmq", ctx)),
            probe_timeout: p.secs("probe_timeout"),
            vm_state: identity::state_file("rabbitmq-vm", ctx.env.resource()),
        })
    }

    /// The node's Erlang VM (found by its environment): the start script start launched is
    /// not the node.
    fn locate(&self, _inst: &Instance) -> Found {
        match find_vm(self) {
            Some(vm) => Found::Running(vm),
            None => Found::Stopped(format!("node {} does not run on {}", self.nodename, self.data_dir.display())),
        }
    }

    fn prepare(&self, _ctx: &Ctx) -> OcfResult<()> {
        checks::require_space("data_dir", &self.data_dir)?;
        match vms_on(&self.data_dir).into_iter().next() {
            Some((pid, node)) => Err(OcfError::generic(format!(
                "data directory {} is in use by another running node ({node}, PID {pid}): refusing to start",
                self.data_dir.display()
            ))),
            None => Ok(()),
        }
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        vec![("port", self.port), ("dist_port", self.dist_port)]
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let account = checks::account("user", &self.user)?;
        let mut cmd = server_command(ctx, self, &account.home);
        account.apply(&mut cmd);
        Ok(cmd)
    }

    fn output(&self, _ctx: &Ctx) -> OcfResult<Output> {
        Ok(Output::Log { path: self.log.clone(), owner: None })
    }

    /// Ready when an AMQP login succeeds.
    fn ready(&self, ctx: &Ctx, _pid: i32) -> Probe {
        let addr = self.amqp_addr(ctx);
        let (user, pass, vhost) =
            (ctx.params.str("amqp_user"), ctx.params.get("password").unwrap_or(""), ctx.params.str("vhost"));
        match Amqp::connect(&addr, user, pass, vhost, ctx.deadline.at_most(self.probe_timeout)) {
            Ok(c) => {
                c.close(ctx.deadline.at_most(Duration::from_secs(1)));
                Probe::Ready
            }
            Err(e) => Probe::NotYet(Some(format!("no AMQP login on {addr}: {e}"))),
        }
    }

    fn explain(&self, ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let log = failure.lines.join("\n");
        let culprit = rejected_config(&log, Path::new(ctx.params.str("config")), Path::new(CONF_D))?;
        Some(config_fault::rejected(Self::SERVER, &culprit, Some(&self.data_dir), failure.quoted))
    }

    fn check(&self, ctx: &Ctx, vm: i32) -> OcfResult {
        if !listeners::listens_on(&[vm], self.port) {
            return Err(OcfError::generic(format!(
                "node {} (PID {vm}) runs but does not listen on AMQP port {}",
                self.nodename, self.port
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(self.probe_timeout);
        let addr = self.amqp_addr(ctx);
        let failed =
            |e: String| OcfError::generic(format!("node {} does not answer AMQP on {addr}: {e}", self.nodename));
        let mut conn = Amqp::connect(
            &addr,
            ctx.params.str("amqp_user"),
            ctx.params.get("password").unwrap_or(""),
            ctx.params.str("vhost"),
            deadline,
        )
        .map_err(failed)?;
        if level >= 20 {
            health_round_trip(ctx, &mut conn, deadline).map_err(failed)?;
        }
        conn.close(deadline);
        Ok(OcfStatus::Success)
    }
}

impl ServiceAgent for Rabbitmq {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let node = ctx.params.str("nodename");
        if !node.contains('@') || node.starts_with('@') || node.ends_with('@') {
            return Err(OcfError::configured(format!("parameter 'nodename' must be NAME@HOST, got '{node}'")));
        }
        require_absolute_params(&ctx.params, &["server", "data_dir", "config", "enabled_plugins"])?;
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let rmq = Server::of(ctx)?;
        checks::require_executable("server", &rmq.server)?;
        let account = checks::account("user", &rmq.user)?;
        checks::require_data_dir("data_dir", &rmq.data_dir)?;
        checks::require_writable_data_dir("data_dir", &rmq.data_dir, &account)
    }
}

fn health_round_trip(ctx: &Ctx, conn: &mut Amqp, deadline: Deadline) -> Result<(), String> {
    let queue = ctx.params.str("health_queue");
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let body = format!("{} {stamp}", ctx.env.resource());
    conn.open_confirm_channel(queue, deadline)?;
    conn.publish_confirmed(queue, body.as_bytes(), deadline)?;
    // Older health messages (from a probe that timed out) are taken and skipped.
    loop {
        match conn.get(queue, deadline)? {
            Some(got) if got == body.as_bytes() => return Ok(()),
            Some(_) => continue,
            None => return Err("the confirmed health message was not in the queue".into()),
        }
    }
}

/// Lines of an Erlang crash report that explain nothing: the empty and "neighbours:" lines of
/// process reports (`... <0.130.0>   neighbours:`).
fn erlang_noise(line: &str) -> bool {
    let text = line.rsplit_once("> ").map(|(_, t)| t.trim()).unwrap_or(if line.ends_with('>') { "" } else { line });
    text.is_empty() || text == "neighbours:"
}

/// Where RabbitMQ (3.9+) finds more new-style configuration files besides `config`
/// (RABBITMQ_CONFIG_FILES' default: `*.conf` there).
const CONF_D: &str = "/etc/rabbitmq/conf.d";

/// What the node rejected: the file a syntax error names; for an error that names none (an
/// unknown or invalid setting), `config` if it is the only new-style file, else unplaced.
pub fn rejected_config(log: &str, config: &Path, conf_d: &Path) -> Option<Culprit> {
    let markers = ["failed_to_parse_configuration_file", "failed_to_prepare_configuration", "invalid_config"];
    if !markers.iter().any(|m| log.contains(m)) {
        return None;
    }
    if let Some(file) = last_between(log, "Syntax error in ", " after line") {
        return Some(Culprit::File(PathBuf::from(file)));
    }
    let more = fs::read_dir(conf_d)
        .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "conf")))
        .unwrap_or(false);
    Some(if more {
        Culprit::Unplaced(format!("{} or {}/*.conf", config.display(), conf_d.display()))
    } else {
        Culprit::File(config.to_path_buf())
    })
}

fn server_command(ctx: &Ctx, rmq: &Server, home: &Path) -> Command {
    let p = &ctx.params;
    let mut cmd = Command::new(&rmq.server);
    cmd.env_clear()
        .env("PATH", "/usr/lib/rabbitmq/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .env("RABBITMQ_NODENAME", &rmq.nodename)
        .env("RABBITMQ_MNESIA_BASE", &rmq.data_dir)
        .env("RABBITMQ_PID_FILE", rmq.data_dir.join(format!("{}.pid", rmq.nodename)))
        .env("RABBITMQ_NODE_PORT", rmq.port.to_string())
        .env("RABBITMQ_DIST_PORT", p.str("dist_port"))
        .env("ERL_EPMD_PORT", p.str("epmd_port"))
        .env("RABBITMQ_CONFIG_FILE", p.str("config"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", p.str("enabled_plugins"))
        .env("RABBITMQ_LOGS", "-")
        .env("RABBITMQ_LOG_BASE", rmq.log.parent().unwrap_or(Path::new("/tmp")))
        .current_dir(&rmq.data_dir);
    if let Some(addr) = p.get("listen_address") {
        cmd.env("RABBITMQ_NODE_IP_ADDRESS", addr);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rejected_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let (conf, conf_d) = (Path::new("/srv/rmq/rabbitmq.conf"), dir.path());
        let syntax = "[error] <0.132.0>   - Syntax error in /etc/rabbitmq/conf.d/10.conf after line 1 column 1, parsing incomplete | Error during startup: {error,failed_to_parse_configuration_file}";
        assert_eq!(rejected_config(syntax, conf, conf_d), Some(Culprit::File("/etc/rabbitmq/conf.d/10.conf".into())));
        let unnamed = "Error preparing configuration in phase validation: | Error during startup: {error,failed_to_prepare_configuration}";
        assert_eq!(rejected_config(unnamed, conf, conf_d), Some(Culprit::File(conf.into())));
        fs::write(conf_d.join("20-more.conf"), "").unwrap();
        assert!(matches!(rejected_config(unnamed, conf, conf_d), Some(Culprit::Unplaced(_))));
        assert_eq!(rejected_config("Error during startup: {error,eaddrinuse}", conf, conf_d), None);
    }

    #[test]
    fn erlang_crash_lines_keep_the_reason() {
        let log: Vec<String> = [
            "t [error] <0.130.0>   neighbours:",
            "t [error] <0.130.0>",
            "t [notice] <0.44.0> Application rabbitmq_prelaunch exited with reason: failed_to_parse_configuration_file",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            Server::QUOTE.quote(&log),
            "t [notice] <0.44.0> Application rabbitmq_prelaunch exited with reason: failed_to_parse_configuration_file"
        );
    }
}
