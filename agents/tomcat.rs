//! Apache Tomcat (the Java EE application server layer, run as a clone). The agent starts the JVM
//! itself (what `catalina.sh run` would exec, without the shell), as `tomcat_user`, in a session
//! of its own, and knows it by PID and start time.
//!
//! Start returns when the health URL answers 2xx, and fails fast when the JVM exits, the health
//! URL's port is held by another process, or Tomcat logs a bind failure (it keeps running
//! without its connector, so waiting for the JVM to exit would wait for the timeout).
//! Monitor depth 0: JVM identity, not stopped. Depth 10: health URL. Depth 20: the deep URL
//! given by the administrator (e.g. a page that touches the database).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::agents::service::checks::{self, require_absolute_params, require_executable, require_path, require_url};
use crate::agents::service::config_fault::{path_after, ConfigFile};
use crate::agents::service::web::{http_ok, request_deadline};
use crate::agents::service::{Probe, Quote, Service, ServiceAgent, StartFailure, StopStep};
use crate::net::http;
use crate::ocf::{ActionSpec, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};

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
        ParamSpec::string("java_opts").default("-Djava.awt.headless=true").short("JVM options").long(concat!(
            "Options for the JVM, e.g. `-Xmx512m -Dapp.env=\"prod eu\"`. ",
            crate::word_rules!()
        )),
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
        require_executable("java_home", &java)?;
        return Ok(java);
    }
    for candidate in ["/usr/lib/jvm/default-java/bin/java", "/usr/bin/java"] {
        if require_executable("java_home", candidate).is_ok() {
            return Ok(candidate.to_string());
        }
    }
    Err(OcfError::installed(
        "parameter 'java_home' is unset and no Java runtime was found (/usr/lib/jvm/default-java, /usr/bin/java)",
    ))
}

fn java_opts(ctx: &Ctx) -> OcfResult<Vec<String>> {
    checks::words(&ctx.params, "java_opts")
}

fn health(url: &str, deadline: Deadline) -> OcfResult<()> {
    http_ok(url, deadline).map_err(OcfError::generic)
}

/// One Tomcat instance (CATALINA_BASE), from the parameters.
pub struct Server {
    home: String,
    base: String,
    statusurl: String,
}

impl Service for Server {
    const AGENT: &'static str = "tomcat";
    const SERVER: &'static str = "tomcat";
    /// TERM runs Tomcat's orderly shutdown (the JVM's shutdown hook).
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.5, "orderly shutdown")];
    /// Tomcat logs these and keeps running without its connector.
    const FATAL_OUTPUT: &'static [&'static str] = &["java.net.BindException", "Address already in use"];
    /// Tomcat's SEVERE lines and exception messages, not the stack traces around them.
    const QUOTE: Quote = Quote { markers: &["SEVERE", "Exception;", "Exception:"], ..Quote::LAST_LINES };

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        Ok(Server {
            home: p.str("catalina_home").trim_end_matches('/').into(),
            base: p.str("catalina_base").trim_end_matches('/').into(),
            statusurl: p.str("statusurl").into(),
        })
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        http::parse_url(&self.statusurl).map(|u| vec![("statusurl", u.port)]).unwrap_or_default()
    }

    /// The JVM command line catalina.sh would build for `run` (Java 17 module openings included).
    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let (home, base) = (&self.home, &self.base);
        let java = java(ctx)?;
        let user = checks::account("tomcat_user", ctx.params.str("tomcat_user"))?;
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
            .env("HOME", &user.home);
        if let Some(jh) = Path::new(&java).parent().and_then(Path::parent) {
            cmd.env("JAVA_HOME", jh);
        }
        user.apply(&mut cmd);
        Ok(cmd)
    }

    fn ready(&self, _ctx: &Ctx, _pid: i32) -> Probe {
        match health(&self.statusurl, Deadline::after(Duration::from_secs(1))) {
            Ok(()) => Probe::Ready,
            Err(e) => Probe::NotYet(Some(e.reason)),
        }
    }

    /// A server.xml that does not parse ends the JVM. (The file is node-local: 2.)
    fn explain(&self, _ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let rejected = ["SAXParseException", "Parse fatal error"];
        if !failure.lines.iter().any(|l| rejected.iter().any(|m| l.contains(m))) {
            return None;
        }
        let config = ConfigFile {
            path: Path::new(&self.base).join("conf/server.xml"),
            named: |m| path_after(m, "systemId: file:", ';'),
        };
        Some(config.rejected(Self::SERVER, failure.quoted, &failure.lines.join("\n")))
    }

    fn check(&self, ctx: &Ctx, _main: i32) -> OcfResult {
        let level = ctx.check_level();
        if level >= 10 {
            health(&self.statusurl, request_deadline(ctx))?;
        }
        if level >= 20 {
            if let Some(deep) = ctx.params.get("deep_url") {
                health(deep, request_deadline(ctx))?;
            }
        }
        Ok(OcfStatus::Success)
    }
}

impl ServiceAgent for Tomcat {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_absolute_params(&ctx.params, &["catalina_home", "catalina_base", "java_home"])?;
        java_opts(ctx)?;
        require_url("statusurl", Some(ctx.params.str("statusurl")))?;
        require_url("deep_url", ctx.params.get("deep_url"))?;
        if level >= crate::ocf::agent::VALIDATE_HOST {
            let home = ctx.params.str("catalina_home");
            require_path("catalina_home", home, true)?;
            require_path("catalina_home", format!("{home}/bin/bootstrap.jar"), false)?;
            let base = ctx.params.str("catalina_base");
            require_path("catalina_base", base, true)?;
            require_path("catalina_base", format!("{base}/conf/server.xml"), false)?;
            java(ctx)?;
            checks::account("tomcat_user", ctx.params.str("tomcat_user"))?;
        }
        Ok(())
    }
}
