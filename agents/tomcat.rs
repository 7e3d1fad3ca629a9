//! Apache Tomcat (the Java EE application server layer, run as a clone). The agent starts the JVM
//! itself (what `catalina.sh run` would exec, without the shell), as `tomcat_user`, in a session
//! of its own, and knows it by PID and start time.
//!
//! Start returns when the health URL answers 2xx, and fails fast when the JVM exits, the health
//! URL's port is held by another process, or Tomcat logs a bind failure (it keeps running
//! without its connector, so waiting for the JVM to exit would wait for the timeout).
//! Monitor depth 0: JVM identity, not stopped. Depth 10: health URL. Depth 20: the deep URL
//! given by the administrator (e.g. a page that touches the database).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::sys::signal::Signal;
use nix::unistd::User;

use crate::agents::config_fault::path_after;
use crate::agents::front_service::{self as svc, ConfigFile, Instance, Launch, Probe};
use crate::net::http;
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::argv;

pub struct Tomcat;

static SPEC: AgentSpec = AgentSpec {
    name: "tomcat",
    shortdesc: "Apache Tomcat application server",
    longdesc: "Manages an Apache Tomcat instance (CATALINA_BASE) whose JVM the agent starts directly, as \
               `tomcat_user`, in its own session. Start returns as soon as the health URL answers 2xx and \
               fails fast if the JVM exits, the port is taken or Tomcat logs a bind failure. Stop sends TERM \
               (Tomcat's orderly shutdown), then KILL within the budget. Monitor depth 0: JVM identity; \
               depth 10: health URL; depth 20: deep URL. Every request has its own timeout.",
    params: &[
        ParamSpec::string("catalina_home")
            .default("/usr/share/tomcat10")
            .short("CATALINA_HOME")
            .long("Tomcat's installation: bin/bootstrap.jar and lib/ live here."),
        ParamSpec::string("catalina_base")
            .default("/var/lib/tomcat10")
            .unique()
            .short("CATALINA_BASE")
            .long("The instance: conf/server.xml, webapps/, logs/, work/."),
        ParamSpec::string("java_home").short("JAVA_HOME").long(
            "The Java runtime (bin/java). Default: /usr/lib/jvm/default-java, else the runtime /usr/bin/java points to.",
        ),
        ParamSpec::string("java_opts").default("-Djava.awt.headless=true").short("JVM options").long(
            "Options for the JVM, split into words with shell-like quoting ('...', \"...\", \\) but no \
             expansion, e.g. `-Xmx512m -Dapp.env=\"prod eu\"`.",
        ),
        ParamSpec::string("tomcat_user")
            .default("tomcat")
            .short("User")
            .long("The user the JVM runs as (Debian's package creates `tomcat`). It needs write access to logs/, work/ and temp/."),
        ParamSpec::string("statusurl")
            .default("http://127.0.0.1:8080/")
            .short("Health URL (start, depth 10)")
            .long("http:// URL that must answer 2xx for start to succeed and at monitor depth 10."),
        ParamSpec::string("deep_url").short("Deep health URL (depth 20)").long(
            "http:// URL checked at monitor depth 20, e.g. a page that queries the database. Unset: depth 20 checks the health URL.",
        ),
        ParamSpec::integer("request_timeout", Some(1), Some(300))
            .default("5")
            .short("Per-request timeout (s)")
            .long("Seconds one health request may take, within the operation's timeout."),
    ],
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::monitor("10s", "30s"),
        ActionSpec::monitor("30s", "30s").depth(10),
        ActionSpec::monitor("60s", "30s").depth(20),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "20s"),
    ],
};

/// The java executable: `java_home`/bin/java, or Debian's default runtime.
fn java(ctx: &Ctx) -> OcfResult<String> {
    if let Some(home) = ctx.params.get("java_home") {
        let java = format!("{}/bin/java", home.trim_end_matches('/'));
        svc::require_executable("java_home", &java)?;
        return Ok(java);
    }
    for candidate in ["/usr/lib/jvm/default-java/bin/java", "/usr/bin/java"] {
        if svc::require_executable("java_home", candidate).is_ok() {
            return Ok(candidate.to_string());
        }
    }
    Err(OcfError::installed(
        "parameter 'java_home' is unset and no Java runtime was found (/usr/lib/jvm/default-java, /usr/bin/java)",
    ))
}

fn java_opts(ctx: &Ctx) -> OcfResult<Vec<String>> {
    argv::split(ctx.params.str("java_opts")).map_err(|e| OcfError::configured(format!("parameter 'java_opts': {e}")))
}

fn user(ctx: &Ctx) -> OcfResult<User> {
    let name = ctx.params.str("tomcat_user");
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(OcfError::installed(format!("parameter 'tomcat_user': no user '{name}' on this host"))),
        Err(e) => Err(OcfError::generic(format!("parameter 'tomcat_user': cannot look up '{name}': {e}"))),
    }
}

/// The JVM command line catalina.sh would build for `run` (Java 17 module openings included).
fn command(ctx: &Ctx) -> OcfResult<Command> {
    let home = ctx.params.str("catalina_home").trim_end_matches('/');
    let base = ctx.params.str("catalina_base").trim_end_matches('/');
    let java = java(ctx)?;
    let user = user(ctx)?;
    let tmp = if Path::new(&format!("{base}/temp")).is_dir() { format!("{base}/temp") } else { "/tmp".into() };
    let mut cmd = Command::new(&java);
    cmd.args(java_opts(ctx)?);
    for module in [
        "java.base/java.lang",
        "java.base/java.lang.reflect",
        "java.base/java.io",
        "java.base/java.util",
        "java.base/java.util.concurrent",
        "java.rmi/sun.rmi.transport",
    ] {
        cmd.arg(format!("--add-opens={module}=ALL-UNNAMED"));
    }
    cmd.arg("-classpath")
        .arg(format!("{home}/bin/bootstrap.jar:{home}/bin/tomcat-juli.jar"))
        .arg(format!("-Dcatalina.home={home}"))
        .arg(format!("-Dcatalina.base={base}"))
        .arg(format!("-Djava.io.tmpdir={tmp}"))
        .arg(format!("-Djava.util.logging.config.file={base}/conf/logging.properties"))
        .arg("-Djava.util.logging.manager=org.apache.juli.ClassLoaderLogManager")
        .args(["org.apache.catalina.startup.Bootstrap", "start"])
        .current_dir(base)
        .env("CATALINA_HOME", home)
        .env("CATALINA_BASE", base)
        .env("HOME", &user.dir)
        .uid(user.uid.as_raw())
        .gid(user.gid.as_raw());
    if let Some(jh) = Path::new(&java).parent().and_then(Path::parent) {
        cmd.env("JAVA_HOME", jh);
    }
    Ok(cmd)
}

fn health(url: &str, deadline: Deadline) -> OcfResult<()> {
    svc::http_ok(url, deadline).map_err(OcfError::generic)
}

impl Agent for Tomcat {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        svc::require_absolute("catalina_home", ctx.params.str("catalina_home"))?;
        svc::require_absolute("catalina_base", ctx.params.str("catalina_base"))?;
        if let Some(j) = ctx.params.get("java_home") {
            svc::require_absolute("java_home", j)?;
        }
        java_opts(ctx)?;
        svc::require_url("statusurl", Some(ctx.params.str("statusurl")))?;
        svc::require_url("deep_url", ctx.params.get("deep_url"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            let home = ctx.params.str("catalina_home");
            svc::require_path("catalina_home", home, true)?;
            svc::require_path("catalina_home", &format!("{home}/bin/bootstrap.jar"), false)?;
            let base = ctx.params.str("catalina_base");
            svc::require_path("catalina_base", base, true)?;
            svc::require_path("catalina_base", &format!("{base}/conf/server.xml"), false)?;
            java(ctx)?;
            user(ctx)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("tomcat", ctx);
        if let svc::State::Running { .. } = svc::state(&inst, None) {
            return self.monitor(ctx);
        }
        svc::clear_orphans(&inst, ctx)?;
        let url = ctx.params.str("statusurl").to_string();
        let port = http::parse_url(&url).map(|u| u.port).map_err(OcfError::configured)?;
        let launch = Launch {
            cmd: command(ctx)?,
            logs: Vec::new(),
            ports: vec![port],
            // Tomcat logs these and keeps running; the server.xml parse failure ends the JVM.
            fatal: &["java.net.BindException", "Address already in use"],
            quote: &["SEVERE", "Exception;", "Exception:"],
            // server.xml that does not parse: Tomcat exits. (The file is node-local: 2.)
            rejects: Some((
                &["SAXParseException", "Parse fatal error"],
                ConfigFile {
                    path: Path::new(ctx.params.str("catalina_base")).join("conf/server.xml"),
                    named: |m| path_after(m, "systemId: file:", ';'),
                },
            )),
            ready: Box::new(|_: &[i32]| match health(&url, Deadline::after(std::time::Duration::from_secs(1))) {
                Ok(()) => Probe::Ready,
                Err(_) => Probe::NotYet,
            }),
        };
        svc::launch(&inst, launch, ctx)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("tomcat", ctx);
        svc::stop(&inst, None, Signal::SIGTERM, ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("tomcat", ctx);
        svc::check_running(&inst, None, "tomcat")?;
        let level = ctx.check_level();
        if level >= 10 {
            health(ctx.params.str("statusurl"), svc::request_deadline(ctx))?;
        }
        if level >= 20 {
            if let Some(deep) = ctx.params.get("deep_url") {
                health(deep, svc::request_deadline(ctx))?;
            }
        }
        Ok(OcfStatus::Success)
    }
}
