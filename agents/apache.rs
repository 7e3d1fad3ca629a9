//! Apache httpd (HTTP layer, run as a clone). httpd runs with `-DFOREGROUND` in a session of its
//! own: the process the agent starts is the parent, and its session holds every child, so a
//! SIGKILLed parent leaves nothing behind after stop.
//!
//! Debian's configuration reads its paths from the environment that `/etc/apache2/envvars` sets
//! (a shell file apache2ctl sources). The agent runs no shell: it reads the file's plain
//! `export NAME=value` lines (see [`parse_envvars`]), as apache2ctl would set them.
//!
//! Monitor depth 0: the parent lives, is not stopped, and listens on a TCP port.
//! Depth 10: the status URL answers 2xx within `request_timeout`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;

use crate::agents::config_fault::path_after;
use crate::agents::front_service::{self as svc, ConfigFile, Instance, Launch};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, OcfError, OcfResult, OcfStatus, ParamSpec};

pub struct Apache;

const DEFAULT_ENVFILE: &str = "/etc/apache2/envvars";

static SPEC: AgentSpec = AgentSpec {
    name: "apache",
    shortdesc: "Apache httpd web server",
    longdesc: "Manages an Apache httpd instance started by the agent in the foreground of its own session \
               (not by systemd or apache2ctl). The configuration is checked with `apache2 -t` before start; \
               start returns as soon as httpd listens and fails at once if it exits (its own message is the \
               reason, and a port held by another process is named). Stop sends WINCH (graceful stop), then \
               KILL to the whole session within the budget. Monitor depth 0 checks the parent process identity \
               and its listening socket, depth 10 the status URL.",
    params: &[
        ParamSpec::string("binary").default("/usr/sbin/apache2").short("httpd binary").long("Full path of the httpd executable."),
        ParamSpec::string("configfile")
            .default("/etc/apache2/apache2.conf")
            .unique()
            .short("Configuration file")
            .long("Full path of the httpd configuration file."),
        ParamSpec::string("server_root").short("ServerRoot (-d)").long(
            "Directory relative paths of the configuration are resolved against (-d). Default: the configuration file's directory.",
        ),
        ParamSpec::string("envfile").default(DEFAULT_ENVFILE).short("Environment file").long(
            "A file of `export NAME=value` lines setting the variables the configuration uses, like Debian's \
             /etc/apache2/envvars. Only plain assignments are read ($VAR and ${VAR} expanded); no shell runs. \
             The directories APACHE_RUN_DIR, APACHE_LOCK_DIR and APACHE_LOG_DIR are created if missing. \
             A missing default file is ignored.",
        ),
        ParamSpec::string("pidfile").short("PID file of the configuration").long(
            "The PID file the configuration's PidFile names. Only used to recognise an instance started \
             outside the agent; the agent itself knows its httpd by PID and start time.",
        ),
        ParamSpec::string("statusurl").short("Status URL (depth 10)").long(
            "http:// URL that must answer 2xx at monitor depth 10, e.g. /server-status. \
             Default: http://127.0.0.1:PORT/ with the first port httpd listens on.",
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

/// The plain assignments of an envvars file, with `$NAME`/`${NAME}` expanded from earlier
/// assignments and `initial` (Debian's file computes SUFFIX inside an `if`, which is not read:
/// the caller supplies it).
pub fn parse_envvars(text: &str, initial: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut vars = initial.clone();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        // Indented lines belong to shell blocks (if/case) the agent does not interpret.
        if line.starts_with(char::is_whitespace) {
            continue;
        }
        let line = line.trim();
        let assignment = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = assignment.split_once('=') else { continue };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let value = value.trim().trim_matches('"').trim_matches('\'');
        let value = expand(value, &vars);
        vars.insert(name.to_string(), value.clone());
        out.insert(name.to_string(), value);
    }
    out
}

fn expand(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
        } else {
            out.push_str(vars.get(name).map(String::as_str).unwrap_or(""));
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

/// Debian's instance suffix: /etc/apache2-web2/apache2.conf is instance "-web2".
fn instance_suffix(configfile: &str) -> String {
    let dir = Path::new(configfile).parent().and_then(|d| d.to_str()).unwrap_or("");
    dir.strip_prefix("/etc/apache2-").map(|s| format!("-{s}")).unwrap_or_default()
}

fn environment(ctx: &Ctx) -> OcfResult<BTreeMap<String, String>> {
    let envfile = ctx.params.str("envfile");
    let text = match std::fs::read_to_string(envfile) {
        Ok(t) => t,
        Err(_) if !ctx.is_set("envfile") => return Ok(BTreeMap::new()),
        Err(e) => return Err(OcfError::installed(format!("parameter 'envfile': {envfile}: {e}"))),
    };
    let configfile = ctx.params.str("configfile");
    let mut initial = BTreeMap::new();
    initial.insert("SUFFIX".to_string(), instance_suffix(configfile));
    let conf_dir = Path::new(configfile).parent().and_then(|d| d.to_str()).unwrap_or("/etc/apache2");
    initial.insert("APACHE_CONFDIR".to_string(), conf_dir.to_string());
    let mut vars = parse_envvars(&text, &initial);
    vars.entry("APACHE_CONFDIR".into()).or_insert_with(|| conf_dir.to_string());
    Ok(vars)
}

fn server_root(ctx: &Ctx) -> String {
    ctx.params.get("server_root").map(str::to_string).unwrap_or_else(|| {
        Path::new(ctx.params.str("configfile")).parent().and_then(|d| d.to_str()).unwrap_or("/").to_string()
    })
}

fn command(ctx: &Ctx, env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(ctx.params.str("binary"));
    cmd.arg("-d").arg(server_root(ctx)).arg("-f").arg(ctx.params.str("configfile")).envs(env);
    cmd
}

fn adopt(ctx: &Ctx) -> Option<i32> {
    svc::adopt_from_pidfile(ctx.params.get("pidfile"), ctx.params.str("binary"))
}

impl Agent for Apache {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        for p in ["binary", "configfile", "envfile"] {
            svc::require_absolute(p, ctx.params.str(p))?;
        }
        for p in ["server_root", "pidfile"] {
            if let Some(v) = ctx.params.get(p) {
                svc::require_absolute(p, v)?;
            }
        }
        svc::require_url("statusurl", ctx.params.get("statusurl"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            svc::require_executable("binary", ctx.params.str("binary"))?;
            svc::require_path("configfile", ctx.params.str("configfile"), false)?;
            if let Some(root) = ctx.params.get("server_root") {
                svc::require_path("server_root", root, true)?;
            }
            environment(ctx)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("apache", ctx);
        if let svc::State::Running { .. } = svc::state(&inst, adopt(ctx)) {
            return self.monitor(ctx);
        }
        svc::clear_orphans(&inst, ctx)?;
        let env = environment(ctx)?;
        // What apache2ctl does before starting: the runtime directories must exist.
        for var in ["APACHE_RUN_DIR", "APACHE_LOCK_DIR", "APACHE_LOG_DIR"] {
            if let Some(dir) = env.get(var).filter(|d| d.starts_with('/')) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| OcfError::generic(format!("cannot create {var} {dir}: {e}")))?;
            }
        }
        let pidfile = ctx.params.get("pidfile").or(env.get("APACHE_PID_FILE").map(String::as_str));
        if let Some(pidfile) = pidfile {
            svc::remove_stale_pidfile(pidfile, ctx.params.str("binary"));
        }
        // httpd names the file at fault: `Syntax error on line N of FILE:` (an included file too).
        let config = ConfigFile { path: ctx.params.str("configfile").into(), named: |m| path_after(m, " of ", ':') };
        svc::config_check("httpd", &config, command(ctx, &env).arg("-t"), ctx)?;
        let mut cmd = command(ctx, &env);
        cmd.arg("-DFOREGROUND");
        let launch = Launch {
            cmd,
            logs: Vec::new(),
            ports: Vec::new(),
            fatal: &[],
            quote: &[],
            rejects: None,
            ready: svc::ready_when_listening(),
        };
        svc::launch(&inst, launch, ctx)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("apache", ctx);
        // WINCH is httpd's graceful-stop: in-flight requests finish.
        svc::stop(&inst, adopt(ctx), Signal::SIGWINCH, ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("apache", ctx);
        svc::web_server_monitor(&inst, adopt(ctx), "httpd", ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"# envvars - default environment variables for apache2ctl
unset HOME
if [ "${APACHE_CONFDIR##/etc/apache2-}" != "${APACHE_CONFDIR}" ] ; then
	SUFFIX="-${APACHE_CONFDIR##/etc/apache2-}"
else
	SUFFIX=
fi
export APACHE_RUN_USER=www-data
export APACHE_PID_FILE=/var/run/apache2$SUFFIX/apache2.pid
export APACHE_RUN_DIR=/var/run/apache2${SUFFIX}
#export APACHE_LYNX='www-browser -dump'
export LANG=C
export LANG
"#;

    #[test]
    fn reads_debian_envvars() {
        let mut initial = BTreeMap::new();
        initial.insert("SUFFIX".to_string(), instance_suffix("/etc/apache2-web2/apache2.conf"));
        let vars = parse_envvars(DEBIAN, &initial);
        assert_eq!(vars["APACHE_RUN_USER"], "www-data");
        assert_eq!(vars["APACHE_PID_FILE"], "/var/run/apache2-web2/apache2.pid");
        assert_eq!(vars["APACHE_RUN_DIR"], "/var/run/apache2-web2");
        assert_eq!(vars["LANG"], "C");
        assert!(!vars.contains_key("SUFFIX") && !vars.contains_key("APACHE_LYNX"));
        let plain =
            parse_envvars(DEBIAN, &BTreeMap::from([("SUFFIX".into(), instance_suffix("/etc/apache2/apache2.conf"))]));
        assert_eq!(plain["APACHE_PID_FILE"], "/var/run/apache2/apache2.pid");
    }

    #[test]
    fn expands_only_known_forms() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$A/${A}/$B/$/${", &vars), "x/x//$/${");
    }
}
