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

use crate::agents::service::checks::{require_absolute_params, require_executable, require_path, require_url};
use crate::agents::service::config_fault::{config_check, path_after, ConfigFile};
use crate::agents::service::instance::{adopt_from_pidfile, remove_stale_pidfile};
use crate::agents::service::{web, Probe, Service, ServiceAgent, StopStep};
use crate::ocf::{ActionSpec, AgentSpec, Ctx, OcfError, OcfResult, ParamSpec};

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
/// At most this many bytes of expanded values are read (Debian's file expands to a few hundred):
/// lines like `A=$A$A` double a value each, and a few dozen of them would take gigabytes (found
/// by the config_text fuzz target); the assignments after the limit are not read.
const MAX_EXPANDED: usize = 64 * 1024;

pub fn parse_envvars(text: &str, initial: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut vars = initial.clone();
    let mut out = BTreeMap::new();
    let mut left = MAX_EXPANDED;
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
        let Some(value) = expand(value, &vars, left) else { break };
        left -= value.len();
        vars.insert(name.to_string(), value.clone());
        out.insert(name.to_string(), value);
    }
    out
}

/// `value` with its variables expanded, or None if that is longer than `limit` bytes.
fn expand(value: &str, vars: &BTreeMap<String, String>, limit: usize) -> Option<String> {
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
        if out.len() > limit {
            return None;
        }
    }
    out.push_str(rest);
    (out.len() <= limit).then_some(out)
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

/// One httpd instance, from the parameters.
pub struct Server {
    binary: String,
    configfile: String,
    pidfile: Option<String>,
}

impl Server {
    fn base_command(&self, ctx: &Ctx, env: &BTreeMap<String, String>) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("-d").arg(server_root(ctx)).arg("-f").arg(&self.configfile).envs(env);
        cmd
    }
}

impl Service for Server {
    const AGENT: &'static str = "apache";
    const SERVER: &'static str = "httpd";
    /// WINCH is httpd's graceful-stop: in-flight requests finish.
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGWINCH, 0.5, "graceful stop")];

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
        let env = environment(ctx)?;
        // What apache2ctl does before starting: the runtime directories must exist.
        for var in ["APACHE_RUN_DIR", "APACHE_LOCK_DIR", "APACHE_LOG_DIR"] {
            if let Some(dir) = env.get(var).filter(|d| d.starts_with('/')) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| OcfError::generic(format!("cannot create {var} {dir}: {e}")))?;
            }
        }
        if let Some(pidfile) = self.pidfile.as_deref().or(env.get("APACHE_PID_FILE").map(String::as_str)) {
            remove_stale_pidfile(pidfile, &self.binary);
        }
        // httpd names the file at fault: `Syntax error on line N of FILE:` (an included file too).
        let config = ConfigFile { path: self.configfile.clone().into(), named: |m| path_after(m, " of ", ':') };
        config_check(Self::SERVER, &config, self.base_command(ctx, &env).arg("-t"), ctx)
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let mut cmd = self.base_command(ctx, &environment(ctx)?);
        cmd.arg("-DFOREGROUND");
        Ok(cmd)
    }

    fn ready(&self, _ctx: &Ctx, pid: i32) -> Probe {
        web::ready_when_listening(pid)
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        web::web_server_check(ctx, Self::SERVER, main)
    }
}

impl ServiceAgent for Apache {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_absolute_params(&ctx.params, &["binary", "configfile", "envfile", "server_root", "pidfile"])?;
        require_url("statusurl", ctx.params.get("statusurl"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            require_executable("binary", ctx.params.str("binary"))?;
            require_path("configfile", ctx.params.str("configfile"), false)?;
            if let Some(root) = ctx.params.get("server_root") {
                require_path("server_root", root, true)?;
            }
            environment(ctx)?;
        }
        Ok(())
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

    /// Found by the config_text fuzz target: `A=$A$A` lines doubled a value each time.
    #[test]
    fn doubling_assignments_stop_at_the_expansion_limit() {
        let text = format!("A=xxxxxxxxxxxxxxxx\n{}B=after\n", "A=$A$A\n".repeat(40));
        let vars = parse_envvars(&text, &BTreeMap::new());
        let total: usize = vars.values().map(String::len).sum();
        assert!(total <= MAX_EXPANDED, "{total}");
        assert!(vars["A"].len() >= 16 * 1024 && !vars.contains_key("B"), "{}", vars["A"].len());
    }

    #[test]
    fn expands_only_known_forms() {
        let vars = BTreeMap::from([("A".to_string(), "x".to_string())]);
        assert_eq!(expand("$A/${A}/$B/$/${", &vars, 100).as_deref(), Some("x/x//$/${"));
    }
}
