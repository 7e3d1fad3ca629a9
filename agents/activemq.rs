//! `activemq`: an ActiveMQ "classic" broker from Debian whose KahaDB store lives on the
//! replicated partition.
//!
//! The agent launches the JVM itself (`java -jar activemq.jar start xbean:file:CONFIG`) with
//! explicit -Dactivemq.base/-Dactivemq.data, instead of Debian's `activemq` launcher: that
//! script switches to user `activemq` on its own, takes `activemq.base` from its options file,
//! and forks a shell around the JVM, so neither the data directory nor the process is under the
//! agent's control. A broker that cannot lock its KahaDB store waits forever in
//! SharedFileLocker ("slave mode") while looking alive; the agent refuses a store another
//! process holds before the start, and fails the start if the lock is taken meanwhile.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::agents::config_fault::{last_between, Culprit};
use crate::agents::datalayer;
use crate::net::stomp::Stomp;
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::daemon::{self, Identity, Readiness};
use crate::sys::proc;

pub struct Activemq;

static SPEC: AgentSpec = AgentSpec {
    name: "activemq",
    shortdesc: "ActiveMQ broker with its KahaDB store on the replicated partition",
    longdesc: "Starts an ActiveMQ broker (the JVM directly, as 'user', in its own session) with activemq.base and \
activemq.data set to 'data_dir', and returns as soon as its STOMP connector completes a handshake, or at once \
with its log lines if it exits or finds its store locked by another broker. The configuration must keep the \
store under ${activemq.data} (e.g. <kahaDB directory=\"${activemq.data}/kahadb\"/>) and have a STOMP transport \
connector on 'stomp_port'. Monitor depth 0 checks the JVM and its STOMP port; 10 a STOMP CONNECT/CONNECTED \
handshake; 20 sends a persistent message with a receipt to a health queue and receives it.",
    params: PARAMS,
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::monitor("20s", "30s"),
        ActionSpec::monitor("21s", "30s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "5s"),
    ],
};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("java").default("/usr/bin/java").short("the java binary"),
    ParamSpec::string("home").default("/usr/share/activemq").short("ActiveMQ installation (activemq.home, holds bin/activemq.jar)"),
    ParamSpec::string("config")
        .default("/etc/activemq/instances-available/main/activemq.xml")
        .short("broker configuration (activemq.xml)")
        .long("The broker's Spring/XBean configuration. Its directory is activemq.conf (and on the classpath, so a log4j.properties there configures logging)."),
    ParamSpec::string("data_dir")
        .default("/var/lib/activemq/data")
        .unique()
        .data()
        .short("broker data directory (KahaDB)")
        .long("activemq.base and activemq.data: put it on the replicated partition. It must exist and be writable by 'user' (missing: exit 5, i.e. the partition is not mounted here)."),
    ParamSpec::string("user").default("activemq").short("OS user running the broker"),
    ParamSpec::string("stomp_host").default("127.0.0.1").short("address of the STOMP connector the monitor uses"),
    ParamSpec::integer("stomp_port", Some(1), Some(65535)).default("61613").short("port of the STOMP connector"),
    ParamSpec::string("login").short("STOMP login of the monitor (if the broker requires one)"),
    ParamSpec::string("password").private().short("STOMP passcode of the monitor"),
    ParamSpec::string("java_opts")
        .default("-Xms64m -Xmx512m")
        .short("JVM options, separated by spaces (no shell)"),
    ParamSpec::string("log")
        .short("file for the JVM's stdout/stderr")
        .long("Default: /var/log/activemq/hastack-activemq-RESOURCE.log. A failed start quotes its last lines."),
    ParamSpec::string("health_queue").default("hastack.health").short("queue of the depth-20 send-and-receive check"),
    ParamSpec::integer("probe_timeout", Some(1), Some(3600))
        .default("5")
        .short("seconds one monitor probe may take"),
];

struct Amq {
    java: PathBuf,
    home: PathBuf,
    config: PathBuf,
    data_dir: PathBuf,
    user: String,
    stomp: String,
    stomp_port: u16,
    log: PathBuf,
    probe_timeout: Duration,
}

impl Amq {
    fn from(ctx: &Ctx) -> Amq {
        let p = &ctx.params;
        let port = p.int("stomp_port").unwrap_or(61613) as u16;
        let host = p.str("stomp_host");
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        Amq {
            java: p.str("java").into(),
            home: p.str("home").into(),
            config: p.str("config").into(),
            data_dir: p.str("data_dir").into(),
            user: p.str("user").into(),
            stomp: format!("{host}:{port}"),
            stomp_port: port,
            log: p
                .get("log")
                .map(PathBuf::from)
                .unwrap_or_else(|| datalayer::default_log("/var/log/activemq", "activemq", ctx.env.resource())),
            probe_timeout: Duration::from_secs(p.int("probe_timeout").unwrap_or(5) as u64),
        }
    }

    fn data_arg(&self) -> String {
        format!("-Dactivemq.data={}", self.data_dir.display())
    }

    /// Lock files of stores under the data directory (KahaDB keeps `lock` in its directory).
    fn lock_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut dirs = vec![(self.data_dir.clone(), 0)];
        while let Some((dir, depth)) = dirs.pop() {
            let Ok(entries) = fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if e.file_name() == "lock" {
                    found.push(path);
                } else if depth < 2 && e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push((path, depth + 1));
                }
            }
        }
        found
    }

    /// A process other than those in `ours` holding a store lock under the data directory.
    fn foreign_lock(&self, ours: &[i32]) -> Option<(PathBuf, i32)> {
        self.lock_files()
            .into_iter()
            .find_map(|f| daemon::lock_holder(&f).filter(|h| !ours.contains(h)).map(|h| (f, h)))
    }

    fn login(&self, ctx: &Ctx) -> Option<(String, String)> {
        ctx.params.get("login").map(|l| (l.to_string(), ctx.params.get("password").unwrap_or("").to_string()))
    }
}

/// A JVM running a broker on this data directory (by its -Dactivemq.data argument).
fn is_broker_of(pid: i32, amq: &Amq) -> bool {
    proc::stat(pid).is_some_and(|s| s.state != 'Z' && s.comm == "java")
        && proc::cmdline(pid).is_some_and(|args| args.iter().any(|a| *a == amq.data_arg()))
}

fn state_file(ctx: &Ctx) -> PathBuf {
    daemon::state_file("activemq", ctx.env.resource())
}

/// Our broker: the identity saved at start, else any JVM running a broker on this data
/// directory with this STOMP port (started by hand: a probe must see it).
fn find_broker(amq: &Amq, state: &Path) -> Option<i32> {
    if let Some(id) = daemon::load_live_identity(state).filter(|id| is_broker_of(id.pid, amq)) {
        return Some(id.pid);
    }
    proc::all_pids().into_iter().find(|p| is_broker_of(*p, amq) && daemon::listens_on(&[*p], amq.stomp_port))
}

impl Agent for Activemq {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        for name in ["java", "home", "config", "data_dir"] {
            if !ctx.params.str(name).starts_with('/') {
                return Err(OcfError::configured(format!("parameter '{name}' must be an absolute path")));
            }
        }
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let amq = Amq::from(ctx);
        crate::ocf::host::require_executable("java", &amq.java)?;
        datalayer::require_file("home", &amq.home.join("bin/activemq.jar"))?;
        datalayer::require_file("config", &amq.config)?;
        let account = datalayer::account("user", &amq.user)?;
        // The broker loads its store at start: it must start only where the partition is.
        datalayer::require_data_dir("data_dir", &amq.data_dir)?;
        if !datalayer::writable_by(&amq.data_dir, &account) {
            return Err(OcfError::perm(format!(
                "data directory {} (parameter 'data_dir') is not writable by user '{}'",
                amq.data_dir.display(),
                amq.user
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let amq = Amq::from(ctx);
        let state = state_file(ctx);
        let account = datalayer::account("user", &amq.user)?;
        if let Some(pid) = find_broker(&amq, &state) {
            ctx.log.info(format!("broker PID {pid} already runs on {}", amq.data_dir.display()));
            if let Some(id) = Identity::of(pid) {
                let _ = daemon::save_identity(&state, id);
            }
            return Ok(OcfStatus::Success);
        }
        if let Some((_, h)) = amq.foreign_lock(&[]) {
            if !proc::is_alive(h) {
                // Killed a moment ago: its last threads still hold the lock.
                daemon::wait_released(&[h], ctx.deadline.fraction(0.3));
            }
        }
        if let Some((lock, h)) = amq.foreign_lock(&[]) {
            return Err(OcfError::generic(format!(
                "the store in {} is in use by another running broker ({} holds {}): refusing to start",
                amq.data_dir.display(),
                datalayer::describe(&[h]),
                lock.display()
            )));
        }
        datalayer::require_port_free("stomp_port", amq.stomp_port)?;
        let log = datalayer::open_log(&amq.log)?;
        let mark = datalayer::log_mark(&amq.log);
        let mut cmd = java_command(ctx, &amq);
        cmd.stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null())).stderr(Stdio::from(log));
        account.apply(&mut cmd);
        let mut child = proc::spawn_daemon(&mut cmd)
            .map_err(|e| OcfError::generic(format!("cannot start {}: {e}", amq.java.display())))?;
        let pid = child.id() as i32;
        if let Some(id) = Identity::of(pid) {
            let _ = daemon::save_identity(&state, id);
        }
        ctx.log.info(format!("broker JVM PID {pid} started on {}", amq.data_dir.display()));
        let login = amq.login(ctx);
        let login_ref = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let mut blocked = None;
        let readiness = daemon::wait_ready(
            ctx.deadline,
            || {
                // Another broker took the store lock first: ours would wait forever as a slave.
                blocked = amq.foreign_lock(&daemon::process_tree(pid, Some(pid)));
                blocked.is_none() && child.try_wait().ok().flatten().is_none()
            },
            || {
                daemon::listens_on(&[pid], amq.stomp_port)
                    && Stomp::connect(&amq.stomp, login_ref, ctx.deadline.at_most(amq.probe_timeout)).is_ok()
            },
        );
        match readiness {
            Readiness::Ready => Ok(OcfStatus::Success),
            Readiness::Died => {
                let log = datalayer::log_since(&amq.log, mark, 400);
                let lines = java_error_lines(&log, 4);
                if let Some((lock, h)) = blocked {
                    daemon::stop_tree(pid, Some(pid), Signal::SIGKILL, 0.0, ctx.deadline);
                    let _ = fs::remove_file(&state);
                    return Err(OcfError::generic(format!(
                        "the store lock {} was taken by {} during the start: the broker would wait for it forever; stopped it",
                        lock.display(),
                        datalayer::describe(&[h])
                    )));
                }
                let _ = fs::remove_file(&state);
                Err(datalayer::exited_during_start(
                    "the broker",
                    &lines,
                    rejected_config(&log, &amq.config),
                    &amq.data_dir,
                ))
            }
            Readiness::TimedOut => Err(OcfError::generic(format!(
                "the broker (PID {pid}) did not answer STOMP on {} before the start timeout: {}",
                amq.stomp,
                datalayer::log_since(&amq.log, mark, 4)
            ))),
        }
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let amq = Amq::from(ctx);
        let state = state_file(ctx);
        let Some(pid) = find_broker(&amq, &state) else {
            let _ = fs::remove_file(&state);
            return Ok(OcfStatus::Success);
        };
        let session = proc::stat(pid).map(|s| s.session).filter(|s| *s == pid);
        proc::signal(pid, Signal::SIGCONT);
        // SIGTERM runs the JVM's shutdown hook, which stops the broker and closes the store.
        let left = daemon::stop_tree_escalating(pid, session, &[(Signal::SIGTERM, 0.8)], ctx.deadline, |sig| {
            ctx.log.info(format!("broker PID {pid}: {}", if sig == Signal::SIGTERM { "SIGTERM" } else { "SIGKILL" }))
        });
        if !left.is_empty() {
            return Err(OcfError::generic(format!("still running after stop: {}", datalayer::describe(&left))));
        }
        let _ = fs::remove_file(&state);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let amq = Amq::from(ctx);
        let Some(pid) = find_broker(&amq, &state_file(ctx)) else {
            return Err(OcfError::not_running("no broker of this resource runs"));
        };
        if proc::stat(pid).is_some_and(|s| s.state == 'T') {
            return Err(OcfError::generic(format!("broker PID {pid} is stopped (SIGSTOP): it cannot serve")));
        }
        if !daemon::listens_on(&[pid], amq.stomp_port) {
            return Err(OcfError::generic(format!(
                "broker PID {pid} runs but does not listen on port {}",
                amq.stomp_port
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(amq.probe_timeout);
        let login = amq.login(ctx);
        let failed = |e: String| OcfError::generic(format!("the broker on {} does not answer STOMP: {e}", amq.stomp));
        let mut stomp = Stomp::connect(&amq.stomp, login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())), deadline)
            .map_err(failed)?;
        if level >= 20 {
            let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let body = format!("{} {stamp}", ctx.env.resource());
            stomp.round_trip(ctx.params.str("health_queue"), &body, deadline).map_err(failed)?;
        }
        Ok(OcfStatus::Success)
    }
}

/// The broker's configuration does not parse or names unknown elements: the file Spring names
/// (`URL [file:F]` or `file [F]`: the configuration or a file it imports), else `config`.
fn rejected_config(log: &str, config: &Path) -> Option<Culprit> {
    if !["BeanDefinitionStoreException", "SAXParseException", "cvc-"].iter().any(|m| log.contains(m)) {
        return None;
    }
    let named = last_between(log, "URL [file:", "]").or(last_between(log, "file [", "]"));
    Some(Culprit::File(named.map(PathBuf::from).unwrap_or_else(|| config.to_path_buf())))
}

/// The lines of a Java log worth an exit reason: the messages and "Caused by", not the stack
/// frames ("at ...", "... 25 more") that end every trace.
fn java_error_lines(joined: &str, n: usize) -> String {
    let lines: Vec<&str> = joined
        .split(" | ")
        .map(str::trim)
        .filter(|l| !(l.starts_with("at ") || l.starts_with("...") && l.ends_with("more")))
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn java_command(ctx: &Ctx, amq: &Amq) -> Command {
    let conf = amq.config.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut cmd = Command::new(&amq.java);
    cmd.args(ctx.params.str("java_opts").split_whitespace());
    let log4j = conf.join("log4j.properties");
    if log4j.is_file() {
        cmd.arg(format!("-Dlog4j.configuration=file:{}", log4j.display()));
    }
    cmd.arg(format!("-Dactivemq.classpath={}", conf.display()))
        .arg(format!("-Dactivemq.home={}", amq.home.display()))
        .arg(format!("-Dactivemq.base={}", amq.data_dir.display()))
        .arg(format!("-Dactivemq.conf={}", conf.display()))
        .arg(amq.data_arg())
        .arg(format!("-Djava.io.tmpdir={}", amq.data_dir.display()))
        .arg("-jar")
        .arg(amq.home.join("bin/activemq.jar"))
        .arg("start")
        .arg(format!("xbean:file:{}", amq.config.display()));
    cmd.env_clear().env("PATH", "/usr/bin:/bin").current_dir(&amq.data_dir);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rejected_configuration_file() {
        let config = Path::new("/etc/activemq/activemq.xml");
        let log = "ERROR: org.springframework.beans.factory.xml.XmlBeanDefinitionStoreException: Line 12 in XML document from URL [file:/srv/amq/conf/imported.xml] is invalid; nested exception is org.xml.sax.SAXParseException; cvc-complex-type.2.4.a";
        assert_eq!(rejected_config(log, config), Some(Culprit::File("/srv/amq/conf/imported.xml".into())));
        assert_eq!(
            rejected_config("Caused by: org.xml.sax.SAXParseException; lineNumber: 3", config),
            Some(Culprit::File(config.into()))
        );
        assert_eq!(rejected_config("java.net.BindException: Address already in use", config), None);
    }

    #[test]
    fn java_traces_shrink_to_their_messages() {
        let log = "INFO | starting | ERROR | Failed to load: x.xml | org.springframework.beans.factory.xml.XmlBeanDefinitionStoreException: bad | at a.b(C.java:1) | Caused by: org.xml.sax.SAXParseException: cvc-complex-type.2.4.a | at d.e(F.java:2) | ... 25 more";
        assert_eq!(
            java_error_lines(log, 3),
            "Failed to load: x.xml | org.springframework.beans.factory.xml.XmlBeanDefinitionStoreException: bad | \
             Caused by: org.xml.sax.SAXParseException: cvc-complex-type.2.4.a"
        );
    }
}
