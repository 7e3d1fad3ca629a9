//! nginx (HTTP layer, run as a clone). nginx runs in the foreground (`daemon off;`) in a session
//! of its own, so the process the agent starts is the master and its session holds every worker:
//! stop finds workers left by a SIGKILLed master (ClusterLabs bug #1553).
//!
//! Monitor depth 0: the master lives, is not stopped, and listens on a TCP port.
//! Depth 10: the status URL answers 2xx within `request_timeout`.

use std::process::Command;

use nix::sys::signal::Signal;

use crate::agents::service::checks::{require_absolute_params, require_executable, require_path, require_url};
use crate::agents::service::config_fault::{config_check, path_after, ConfigFile};
use crate::agents::service::instance::adopt_from_pidfile;
use crate::agents::service::{web, Probe, Service, ServiceAgent, StopStep};
use crate::ocf::{ActionSpec, AgentSpec, Ctx, OcfResult, ParamSpec};

pub struct Nginx;

static SPEC: AgentSpec = AgentSpec {
    name: "nginx",
    shortdesc: "nginx web server",
    longdesc: "Manages an nginx instance started by the agent in the foreground of its own session \
               (not by systemd). The configuration is checked with `nginx -t` before start; start \
               returns as soon as nginx listens and fails at once if it exits (its own message is the \
               reason, and a port held by another process is named). Stop sends QUIT (graceful), then \
               KILL to the whole session within the budget, so no worker keeps the port. Monitor depth 0 \
               checks the master process identity and its listening socket, depth 10 the status URL.",
    params: &[
        ParamSpec::string("binary").default("/usr/sbin/nginx").short("nginx binary").long("Full path of the nginx executable."),
        ParamSpec::string("configfile")
            .default("/etc/nginx/nginx.conf")
            .unique()
            .short("Configuration file")
            .long("Full path of the nginx configuration file. It must not set `daemon` (the agent runs nginx in the foreground)."),
        ParamSpec::string("pidfile").short("PID file of the configuration").long(
            "The PID file the configuration's `pid` directive names. Only used to recognise an instance \
             started outside the agent; the agent itself knows its nginx by PID and start time.",
        ),
        ParamSpec::string("statusurl").short("Status URL (depth 10)").long(
            "http:// URL that must answer 2xx at monitor depth 10, e.g. a stub_status location. \
             Default: http://127.0.0.1:PORT/ with the first port nginx listens on.",
        ),
        ParamSpec::integer("request_timeout", Some(1), Some(300))
            .default("5")
            .short("Per-request timeout (s)")
            .long("Seconds one health request may take, within the operation's timeout."),
    ],
    actions: &[
        ActionSpec::new("start", "40s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::monitor("10s", "20s"),
        ActionSpec::monitor("30s", "20s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "20s"),
    ],
};

/// One nginx instance, from the parameters.
pub struct Server {
    binary: String,
    configfile: String,
    pidfile: Option<String>,
}

impl Server {
    /// The arguments every nginx invocation gets: the configuration and foreground mode.
    fn base_command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-c").arg(&self.configfile).args(["-g", "daemon off;"]);
        cmd
    }
}

impl Service for Server {
    const AGENT: &'static str = "nginx";
    const SERVER: &'static str = "nginx";
    /// QUIT is nginx's graceful stop: workers finish their requests.
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGQUIT, 0.5, "graceful stop")];
    /// nginx retries a failed bind for seconds after printing `[emerg]`.
    const FATAL_OUTPUT: &'static [&'static str] = &["[emerg]"];

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        Ok(Server {
            binary: p.str("binary").into(),
            configfile: p.str("configfile").into(),
            pidfile: p.get("pidfile").map(String::from),
        })
    }

    fn adopt(&self) -> Option<i32> {
        adopt_from_pidfile(self.pidfile.as_deref(), &self.binary)
    }

    fn prepare(&self, ctx: &Ctx) -> OcfResult<()> {
        // nginx names the file at fault: `... in FILE:LINE` (an included file too).
        let config = ConfigFile { path: self.configfile.clone().into(), named: |m| path_after(m, " in ", ':') };
        config_check("nginx", &config, self.base_command().arg("-t").arg("-q"), ctx)
    }

    fn command(&self, _ctx: &Ctx) -> OcfResult<Command> {
        Ok(self.base_command())
    }

    fn ready(&self, _ctx: &Ctx, pid: i32) -> Probe {
        web::ready_when_listening(pid)
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        web::web_server_check(ctx, Self::SERVER, main)
    }
}

impl ServiceAgent for Nginx {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_absolute_params(&ctx.params, &["binary", "configfile", "pidfile"])?;
        require_url("statusurl", ctx.params.get("statusurl"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            require_executable("binary", ctx.params.str("binary"))?;
            require_path("configfile", ctx.params.str("configfile"), false)?;
        }
        Ok(())
    }
}
