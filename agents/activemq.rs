//! `activemq`: an ActiveMQ "classic" broker from Debian whose KahaDB store lives on the
//! replicated partition.
//!
//! The agent launches the JVM itself (`java -jar activemq.jar start xbean:file:CONFIG`, or
//! `start broker:(...)` for a broker configured by a URI, [`uri`]) with
//! explicit -Dactivemq.base/-Dactivemq.data, instead of Debian's `activemq` launcher: that
//! script switches to user `activemq` on its own, takes `activemq.base` from its options file,
//! and forks a shell around the JVM, so neither the data directory nor the process is under the
//! agent's control. A broker that cannot lock its KahaDB store waits forever in
//! SharedFileLocker ("slave mode") while looking alive; the agent refuses a store another
//! process holds before the start, and fails the start if the lock is taken meanwhile.

pub mod standby;
pub mod uri;

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::agents::service::checks::{self, require_absolute_params};
use crate::agents::service::config_fault::{self, last_between, Culprit};
use crate::agents::service::instance::default_log;
use crate::agents::service::{
    Found, IfRunning, Instance, Output, Patience, Probe, Service, ServiceAgent, StartFailure, StopStep,
};
use crate::net::stomp::Stomp;
use crate::ocf::{ActionSpec, AgentSpec, Ctx, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::{listeners, locks, logtail, proc, tree};
use uri::BrokerUri;

pub struct Activemq;

static SPEC: AgentSpec = AgentSpec {
    name: "activemq",
    shortdesc: "ActiveMQ broker with its KahaDB store on the replicated partition",
    longdesc: "Starts an ActiveMQ broker (the JVM directly, as 'user', in its own session) with activemq.base and \
activemq.data set to 'data_dir', and returns as soon as its STOMP connector completes a handshake, or at once \
with its log lines if it exits or finds its store locked by another broker. The broker is configured either by \
an activemq.xml ('config'), which must keep the store under ${activemq.data} (e.g. <kahaDB \
directory=\"${activemq.data}/kahadb\"/>) and have a STOMP transport connector on 'stomp_port', or by a broker: \
URI ('broker_uri'), whose start costs about a third less CPU (no Spring/XBean). Monitor depth 0 checks the JVM and its STOMP port; 10 a STOMP CONNECT/CONNECTED \
handshake; 20 sends a persistent message with a receipt to a health queue and receives it. As a promotable clone (meta promotable=true, promoted-max=1) the agent keeps a warm standby: start runs the JVM where the replicated partition is not mounted, fully configured and waiting in KahaDB's locker for its store (monitor 0), promote (order it after the filesystem) returns once that JVM has taken the store and answers STOMP (monitor 8; with no warm JVM it starts the broker cold), demote stops the broker and a detached waiter starts the next standby JVM once the partition has left the node. It needs 'config' with a short locker interval (<kahaDB ...><locker><shared-file-locker lockAcquireSleepInterval=\"100\"/></locker></kahaDB>; a broker_uri is refused), connectors on addresses present before the promote (0.0.0.0, or a VIP ordered before the filesystem), and a data_dir the broker's user cannot create while the partition is not mounted (a root-owned 0755 mount point): otherwise start and validate-all refuse it (exit 2, naming data_dir), as a standby would make an empty store and serve it.",
    params: PARAMS,
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::new("promote", "120s"),
        ActionSpec::new("demote", "60s"),
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
        .long("The broker's Spring/XBean configuration. Not used when 'broker_uri' is set (setting both is refused)."),
    ParamSpec::string("broker_uri")
        .short("broker configuration as a broker: URI, instead of 'config'")
        .long("An ActiveMQ broker URI, as `activemq start` takes it, e.g. \
broker:(tcp://0.0.0.0:61616,stomp://127.0.0.1:61613)?useJmx=false&brokerName=main. When set, the broker is \
configured by ActiveMQ's BrokerFactory from this URI instead of by Spring from activemq.xml: a start costs about \
a third less CPU (no schema validation, no bean wiring), which is the failover's time on a busy node. A URI can set \
connectors and BrokerService options only (no destination policies, authentication plugins or per-store \
settings): use 'config' for those. The store is KahaDB in data_dir/BROKERNAME/KahaDB: the agent adds \
dataDirectory=data_dir and refuses a URI that sets another dataDirectory, persistent other than true, \
deleteAllMessagesOnStartup=true or useShutdownHook=false, or has no stomp:// connector on 'stomp_port' \
(exit 6). Options ActiveMQ does not know fail the start at once (6, quoting the broker)."),
    ParamSpec::string("conf_dir")
        .short("activemq.conf directory (logging configuration)")
        .long("activemq.conf, also on the broker's classpath: a log4j.properties there configures logging. Default: \
the directory of 'config' (of its default when 'broker_uri' is set)."),
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
        .short("JVM options")
        .long(concat!("Options for the broker's JVM. ", crate::word_rules!())),
    ParamSpec::string("log")
        .short("file for the JVM's stdout/stderr")
        .long("Default: /var/log/activemq/hastack-activemq-RESOURCE.log. A failed start quotes its last lines."),
    ParamSpec::string("class_archive")
        .short("class-data archive (AppCDS) of the broker's JVM")
        .long("A dynamic class-data archive (Java 13 and later). When the file exists, the JVM maps the broker's classes \
from it (-XX:SharedArchiveFile) instead of loading and verifying them from the jars: a start costs less CPU, which is \
what a failover on a busy node waits for. When it does not exist, the JVM writes it as the broker exits cleanly \
(-XX:ArchiveClassesAtExit): the next stop writes it (taking a few seconds longer), a crash or power cut does not. \
An archive of another JDK or another ActiveMQ is ignored by the JVM (it only costs the speed); delete it to have it \
written again. Keep it node-local, next to the configuration; its directory must exist and be writable by 'user'. \
Unset: no archive."),
    ParamSpec::string("health_queue").default("hastack.health").short("queue of the depth-20 send-and-receive check"),
    ParamSpec::integer("probe_timeout", Some(1), Some(3600))
        .default("5")
        .short("seconds one monitor probe may take"),
];

/// Where the broker's configuration comes from.
pub enum Source {
    /// An activemq.xml, read by Spring/XBean (`config`).
    Xml(PathBuf),
    /// A `broker:` URI (`broker_uri`), as the agent launches it (its store on `data_dir`).
    Uri(String),
}

/// One ActiveMQ broker, from the parameters.
pub struct Server {
    java: PathBuf,
    home: PathBuf,
    source: Source,
    /// activemq.conf: on the classpath, where log4j.properties is found.
    conf: PathBuf,
    data_dir: PathBuf,
    user: String,
    stomp: String,
    stomp_port: u16,
    log: PathBuf,
    probe_timeout: Duration,
    /// Launched as a warm standby ([`standby`]): the store is not on this node yet, so the JVM
    /// runs from `/` and is ready once it waits in KahaDB's locker.
    standby: bool,
    /// The log's size when this start launched the JVM (what the standby's readiness reads).
    mark: Cell<u64>,
}

impl Server {
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
        self.lock_files().into_iter().find_map(|f| locks::lock_holder(&f).filter(|h| !ours.contains(h)).map(|h| (f, h)))
    }

    /// The same broker, launched as a warm standby.
    pub fn as_standby(mut self) -> Server {
        self.standby = true;
        self
    }

    fn login(&self, ctx: &Ctx) -> Option<(String, String)> {
        ctx.params.get("login").map(|l| (l.to_string(), ctx.params.get("password").unwrap_or("").to_string()))
    }
}

/// A JVM running a broker on this data directory (by its -Dactivemq.data argument).
fn is_broker_of(pid: i32, amq: &Server) -> bool {
    proc::stat(pid).is_some_and(|s| s.state != 'Z' && s.comm == "java")
        && proc::cmdline(pid).is_some_and(|args| args.iter().any(|a| *a == amq.data_arg()))
}

impl Service for Server {
    const AGENT: &'static str = "activemq";
    const SERVER: &'static str = "the broker";
    /// SIGTERM runs the JVM's shutdown hook, which stops the broker and closes the store.
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.8, "shutdown hook")];
    /// KahaDB's recovery may outlast the start timeout: the stop that follows shuts the broker
    /// down cleanly.
    const PATIENCE: Patience = Patience::LEAVE_TO_STOP;
    const IF_RUNNING: IfRunning = IfRunning::Adopt;

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        let port = p.num("stomp_port");
        let host = p.str("stomp_host");
        let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
        let data_dir = PathBuf::from(p.str("data_dir"));
        let config = PathBuf::from(p.str("config"));
        let source = match p.get("broker_uri") {
            Some(text) => Source::Uri(agent_uri(text, &data_dir, port)?),
            None => Source::Xml(config.clone()),
        };
        let conf = match p.get("conf_dir") {
            Some(dir) => PathBuf::from(dir),
            None => config.parent().unwrap_or(Path::new("/")).to_path_buf(),
        };
        Ok(Server {
            java: p.str("java").into(),
            home: p.str("home").into(),
            source,
            conf,
            data_dir,
            user: p.str("user").into(),
            stomp: format!("{host}:{port}"),
            stomp_port: port,
            log: p.get("log").map(PathBuf::from).unwrap_or_else(|| default_log("/var/log/activemq", "activemq", ctx)),
            probe_timeout: p.secs("probe_timeout"),
            standby: false,
            mark: Cell::new(0),
        })
    }

    /// Our broker: the one start launched, else any JVM running a broker on this data
    /// directory with this STOMP port (started by hand: a probe must see it).
    fn locate(&self, inst: &Instance) -> Found {
        if let Some(id) = inst.saved().filter(|id| id.is_alive() && is_broker_of(id.pid, self)) {
            return Found::Running(id.pid);
        }
        match proc::all_pids()
            .into_iter()
            .find(|p| is_broker_of(*p, self) && listeners::listens_on(&[*p], self.stomp_port))
        {
            Some(pid) => Found::Running(pid),
            None => Found::Stopped("no broker of this resource runs".into()),
        }
    }

    fn prepare(&self, ctx: &Ctx) -> OcfResult<()> {
        if self.standby {
            // Nothing of the store is here yet; the launch appends to the log from this size.
            self.mark.set(logtail::mark(&self.log));
            return Ok(());
        }
        checks::require_space("data_dir", &self.data_dir)?;
        if let Some((_, h)) = self.foreign_lock(&[]) {
            if !proc::is_alive(h) {
                // Killed a moment ago: its last threads still hold the lock.
                tree::wait_released(&[h], ctx.deadline.fraction(0.3));
            }
        }
        if let Some((lock, h)) = self.foreign_lock(&[]) {
            return Err(OcfError::generic(format!(
                "the store in {} is in use by another running broker ({} holds {}): refusing to start",
                self.data_dir.display(),
                proc::describe(&[h]),
                lock.display()
            )));
        }
        Ok(())
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        vec![("stomp_port", self.stomp_port)]
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let mut cmd = java_command(ctx, self)?;
        checks::account("user", &self.user)?.apply(&mut cmd);
        Ok(cmd)
    }

    fn output(&self, _ctx: &Ctx) -> OcfResult<Output> {
        Ok(Output::Log { path: self.log.clone(), owner: None })
    }

    fn ready(&self, ctx: &Ctx, pid: i32) -> Probe {
        if self.standby {
            return standby::waits_for_store(self, pid);
        }
        // Another broker took the store lock first: ours would wait for it forever as a slave.
        if let Some((lock, h)) = self.foreign_lock(&tree::process_tree(pid, Some(pid))) {
            return Probe::Failed(format!(
                "the store lock {} was taken by {} during the start: the broker would wait for it forever",
                lock.display(),
                proc::describe(&[h])
            ));
        }
        if !listeners::listens_on(&[pid], self.stomp_port) {
            return Probe::NotYet(Some(format!("it does not listen on port {} yet", self.stomp_port)));
        }
        let login = self.login(ctx);
        let login = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        match Stomp::connect(&self.stomp, login, ctx.deadline.at_most(self.probe_timeout)) {
            Ok(_) => Probe::Ready,
            Err(e) => Probe::NotYet(Some(format!("no STOMP answer on {}: {e}", self.stomp))),
        }
    }

    fn explain(&self, _ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let log = failure.lines.join("\n");
        let culprit = match &self.source {
            Source::Xml(config) => rejected_config(&log, config)?,
            Source::Uri(_) => rejected_uri(&log)?,
        };
        Some(config_fault::rejected(Self::SERVER, &culprit, Some(&self.data_dir), failure.quoted))
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        if !listeners::listens_on(&[main], self.stomp_port) {
            return Err(OcfError::generic(format!(
                "broker PID {main} runs but does not listen on port {}",
                self.stomp_port
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(self.probe_timeout);
        let login = self.login(ctx);
        let failed = |e: String| OcfError::generic(format!("the broker on {} does not answer STOMP: {e}", self.stomp));
        let mut stomp = Stomp::connect(&self.stomp, login.as_ref().map(|(u, p)| (u.as_str(), p.as_str())), deadline)
            .map_err(failed)?;
        if level >= 20 {
            let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            let body = format!("{} {stamp}", ctx.env.resource());
            stomp.round_trip(ctx.params.str("health_queue"), &body, deadline).map_err(failed)?;
        }
        Ok(OcfStatus::Success)
    }
}

impl ServiceAgent for Activemq {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_absolute_params(&ctx.params, &["java", "home", "config", "data_dir", "class_archive", "conf_dir"])?;
        checks::words(&ctx.params, "java_opts")?;
        if ctx.is_set("broker_uri") && ctx.is_set("config") {
            return Err(OcfError::configured(
                "parameters 'config' and 'broker_uri' are both set: the broker is configured by one of them \
                 (activemq.xml or a broker: URI); unset the other",
            ));
        }
        if ctx.env.promotable() {
            standby::validate_syntax(ctx)?;
        }
        // The URI's checks (broker:, the store on data_dir, a STOMP connector on stomp_port).
        let amq = Server::of(ctx)?;
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        checks::require_executable("java", &amq.java)?;
        checks::require_path("home", amq.home.join("bin/activemq.jar"), false)?;
        if let Source::Xml(config) = &amq.source {
            checks::require_path("config", config, false)?;
        }
        if ctx.is_set("conf_dir") {
            checks::require_path("conf_dir", &amq.conf, true)?;
        }
        let account = checks::account("user", &amq.user)?;
        if let Some(archive) = ctx.params.get("class_archive").map(Path::new) {
            require_archive_place(archive, &account)?;
        }
        if ctx.env.promotable() {
            // A warm standby starts where the partition is not: its store must not be creatable.
            return standby::validate_host(&amq, &account);
        }
        // The broker loads its store at start: it must start only where the partition is.
        checks::require_data_dir("data_dir", &amq.data_dir)?;
        checks::require_writable_data_dir("data_dir", &amq.data_dir, &account)
    }

    // A promotable clone is the warm standby ([`standby`]); a primitive is the model's service.
    fn start(&self, ctx: &Ctx) -> OcfResult {
        if ctx.env.promotable() {
            return standby::start(ctx);
        }
        crate::agents::service::start(&Server::of(ctx)?, ctx)
    }
    fn stop(&self, ctx: &Ctx) -> OcfResult {
        if ctx.env.promotable() {
            return standby::stop(ctx);
        }
        crate::agents::service::stop(&Server::of(ctx)?, ctx)
    }
    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        if ctx.env.promotable() {
            return standby::monitor(ctx);
        }
        crate::agents::service::monitor(&Server::of(ctx)?, ctx)
    }
    fn promote(&self, ctx: &Ctx) -> OcfResult {
        standby::promote(ctx)
    }
    fn demote(&self, ctx: &Ctx) -> OcfResult {
        standby::demote(ctx)
    }
}

/// `class_archive`: a file if it exists, else in a directory where the JVM can write it.
fn require_archive_place(archive: &Path, account: &crate::sys::proc::Account) -> OcfResult<()> {
    if archive.exists() {
        return checks::require_path("class_archive", archive, false);
    }
    let dir = archive.parent().unwrap_or(Path::new("/"));
    checks::require_path("class_archive", dir, true)?;
    if checks::writable_by(dir, account) {
        Ok(())
    } else {
        Err(OcfError::perm(format!(
            "parameter 'class_archive': {} is not writable by user '{}', so the JVM cannot write {}",
            dir.display(),
            account.name,
            archive.display()
        )))
    }
}

/// The JVM option for `class_archive`: use the archive, or write it at the broker's clean exit.
fn archive_option(archive: &Path) -> String {
    if archive.is_file() {
        format!("-XX:SharedArchiveFile={}", archive.display())
    } else {
        format!("-XX:ArchiveClassesAtExit={}", archive.display())
    }
}

/// `broker_uri` as the agent launches it; a URI the agent cannot use is 6, naming the parameter.
fn agent_uri(text: &str, data_dir: &Path, stomp_port: u16) -> OcfResult<String> {
    BrokerUri::parse(text)
        .and_then(|uri| uri.for_agent(data_dir, stomp_port))
        .map_err(|e| OcfError::configured(format!("parameter 'broker_uri' {e}")))
}

/// ActiveMQ refused the `broker:` URI (it exits at once, naming the fault): an option it does not
/// know or cannot set, or a URI it cannot parse, is the parameter's fault, the same on every
/// node (6); a transport it has no factory for depends on the jars installed on this node (2).
/// Anything else is not placed here (a wrong 6 would stop the broker everywhere).
pub fn rejected_uri(log: &str) -> Option<Culprit> {
    if log.contains("Transport scheme NOT recognized") {
        return Some(Culprit::Unplaced(
            "parameter 'broker_uri' names a transport ActiveMQ on this node does not have".into(),
        ));
    }
    ["couldn't be set on the BrokerService", "URISyntaxException"]
        .iter()
        .any(|m| log.contains(m))
        .then(|| Culprit::Parameter("broker_uri".into()))
}

/// The broker's configuration does not parse or names unknown elements: the file Spring names
/// (`URL [file:F]` or `file [F]`: the configuration or a file it imports), else `config`.
pub fn rejected_config(log: &str, config: &Path) -> Option<Culprit> {
    if !["BeanDefinitionStoreException", "SAXParseException", "cvc-"].iter().any(|m| log.contains(m)) {
        return None;
    }
    let named = last_between(log, "URL [file:", "]").or(last_between(log, "file [", "]"));
    Some(Culprit::File(named.map(PathBuf::from).unwrap_or_else(|| config.to_path_buf())))
}

fn java_command(ctx: &Ctx, amq: &Server) -> OcfResult<Command> {
    let conf = &amq.conf;
    let mut cmd = Command::new(&amq.java);
    cmd.args(checks::words(&ctx.params, "java_opts")?);
    if let Some(archive) = ctx.params.get("class_archive").map(Path::new) {
        let option = archive_option(archive);
        ctx.log.info(format!("class-data archive: {option}"));
        cmd.arg(option);
    }
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
        .arg(match &amq.source {
            Source::Xml(config) => format!("xbean:file:{}", config.display()),
            Source::Uri(uri) => uri.clone(),
        });
    // A standby's data directory does not exist until the partition is mounted here (and a
    // working directory on the partition would keep it busy).
    let cwd = if amq.standby { Path::new("/") } else { amq.data_dir.as_path() };
    cmd.env_clear().env("PATH", "/usr/bin:/bin").current_dir(cwd);
    Ok(cmd)
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
    fn the_rejected_uri() {
        let unknown = "ERROR: java.lang.IllegalArgumentException: There are 1 Broker options that couldn't be set on the BrokerService. Check the options are spelled correctly. Unknown parameters=[{bogus=1}].";
        assert_eq!(rejected_uri(unknown), Some(Culprit::Parameter("broker_uri".into())));
        let syntax = "Caused by: java.net.URISyntaxException: Not a matching number of '(' and ')' parenthesis";
        assert_eq!(rejected_uri(syntax), Some(Culprit::Parameter("broker_uri".into())));
        let scheme = "ERROR: java.io.IOException: Transport scheme NOT recognized: [amqp]";
        assert!(matches!(rejected_uri(scheme), Some(Culprit::Unplaced(_))));
        assert_eq!(rejected_uri("java.net.BindException: Address already in use"), None);
    }
}
