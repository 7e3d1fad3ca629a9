//! nginx (HTTP layer, run as a clone). nginx runs in the foreground (`daemon off;`) in a session
//! of its own, so the process the agent starts is the master and its session holds every worker:
//! stop finds workers left by a SIGKILLed master (ClusterLabs bug #1553).
//!
//! Monitor depth 0: the master lives, is not stopped, and listens on a TCP port.
//! Depth 10: the status URL answers 2xx within `request_timeout`.

use std::process::Command;

use nix::sys::signal::Signal;

use crate::agents::config_fault::path_after;
use crate::agents::front_service::{self as svc, ConfigFile, Instance, Launch};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, OcfResult, OcfStatus, ParamSpec};

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

fn adopt(ctx: &Ctx) -> Option<i32> {
    svc::adopt_from_pidfile(ctx.params.get("pidfile"), ctx.params.str("binary"))
}

/// The arguments every nginx invocation gets: the configuration and foreground mode.
fn base_command(ctx: &Ctx) -> Command {
    let mut cmd = Command::new(ctx.params.str("binary"));
    cmd.arg("-c").arg(ctx.params.str("configfile")).args(["-g", "daemon off;"]);
    cmd
}

impl Agent for Nginx {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        svc::require_absolute("binary", ctx.params.str("binary"))?;
        svc::require_absolute("configfile", ctx.params.str("configfile"))?;
        if let Some(p) = ctx.params.get("pidfile") {
            svc::require_absolute("pidfile", p)?;
        }
        svc::require_url("statusurl", ctx.params.get("statusurl"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            svc::require_executable("binary", ctx.params.str("binary"))?;
            svc::require_path("configfile", ctx.params.str("configfile"), false)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("nginx", ctx);
        if let svc::State::Running { .. } = svc::state(&inst, adopt(ctx)) {
            // Already started (a double start succeeds); a running but unhealthy nginx is an
            // error for Pacemaker to recover with stop, not a second instance on the same ports.
            return self.monitor(ctx);
        }
        svc::clear_orphans(&inst, ctx)?;
        // nginx names the file at fault: `... in FILE:LINE` (an included file too).
        let config = ConfigFile { path: ctx.params.str("configfile").into(), named: |m| path_after(m, " in ", ':') };
        svc::config_check("nginx", &config, base_command(ctx).arg("-t").arg("-q"), ctx)?;
        let launch = Launch {
            cmd: base_command(ctx),
            logs: Vec::new(),
            ports: Vec::new(),
            fatal: &["[emerg]"],
            quote: &[],
            rejects: None,
            ready: svc::ready_when_listening(),
        };
        svc::launch(&inst, launch, ctx)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("nginx", ctx);
        svc::stop(&inst, adopt(ctx), Signal::SIGQUIT, ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("nginx", ctx);
        svc::web_server_monitor(&inst, adopt(ctx), "nginx", ctx)
    }
}
