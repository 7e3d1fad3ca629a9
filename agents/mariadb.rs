//! `mariadb`: one MariaDB server whose data directory lives on the replicated partition
//! (anchor: ClusterLabs `mysql`).
//!
//! Start runs `mariadbd` itself, never `mysqld_safe`: mysqld_safe restarts mysqld after a
//! SIGKILL, so an agent that stopped "mysqld" saw it come back (resource-agents PR #757/#759).
//! Ownership of a data directory is the kernel's word: InnoDB holds an fcntl lock on ibdata1
//! (and Aria on aria_log_control) while a server runs, and F_GETLK names the holder.
//! Crash recovery is InnoDB's own; start waits until the server accepts a connection.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use nix::unistd::Uid;

use crate::agents::mycnf;
use crate::agents::service::checks::{self, require_absolute_params, require_identifier};
use crate::agents::service::config_fault::{self, Culprit};
use crate::agents::service::{
    Found, IfRunning, Instance, Output, Patience, Probe, Quote, Service, ServiceAgent, StartFailure, StopStep,
};
use crate::net::mywire::{self, MyConn, MyError};
use crate::ocf::{ActionSpec, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::{identity, locks, proc, tree};

pub struct Mariadb;

static SPEC: AgentSpec = AgentSpec {
    name: "mariadb",
    shortdesc: "MariaDB server with its data on the replicated partition",
    longdesc: "Starts one MariaDB server (mariadbd itself, not mysqld_safe, in its own session, as 'user') and \
returns as soon as it accepts connections, or at once with its log lines if it exits. Refuses a data directory \
another running server holds (InnoDB's lock on ibdata1). Stop is SIGTERM (clean shutdown), then SIGKILL of what \
is left, within the timeout. Monitor depth 0 checks the server process and its socket; 10 runs SELECT 1 over the \
Unix socket with a per-query timeout; 20 writes and reads back a row in a health table the agent owns. The \
monitor authenticates with the unix_socket plugin as 'monitor_user' (Debian's root@localhost), so no password \
is needed or stored.",
    params: PARAMS,
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "120s"),
        ActionSpec::monitor("20s", "30s"),
        ActionSpec::monitor("21s", "30s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "5s"),
    ],
};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("binary").default("/usr/sbin/mariadbd").short("the server binary (not mysqld_safe)"),
    ParamSpec::string("config")
        .default("/etc/mysql/my.cnf")
        .short("option file")
        .long("Option file passed with --defaults-file (Debian's my.cnf includes conf.d directories). datadir, socket, port, pid file and error log come from this agent's parameters."),
    ParamSpec::string("datadir")
        .default("/var/lib/mysql")
        .unique()
        .data()
        .short("data directory")
        .long("The data directory. Put it on the replicated partition; missing here means the partition is not mounted (exit 5)."),
    ParamSpec::string("socket").default("/run/mysqld/mysqld.sock").short("Unix socket (the monitor connects there)"),
    ParamSpec::integer("port", Some(1), Some(65535)).default("3306").short("TCP port"),
    ParamSpec::string("bind_address").short("address to listen on (default: the option file's)"),
    ParamSpec::string("pid").default("/run/mysqld/mysqld.pid").short("PID file"),
    ParamSpec::string("user").default("mysql").short("OS user running the server"),
    ParamSpec::string("log")
        .default("/var/log/mysql/error.log")
        .short("error log")
        .long("The server's error log (--log-error); a failed start quotes its last lines."),
    ParamSpec::string("monitor_user")
        .default("root")
        .short("database user of the monitor")
        .long("Database user the monitor logs in as through the socket with the unix_socket plugin: an OS user of the same name; the agent connects with that effective uid."),
    ParamSpec::string("health_database")
        .default("hastack")
        .short("database of the depth-20 health table")
        .long("Database the agent creates and owns for the depth-20 write-and-read-back check (table 'health', one row per resource). Letters, digits and underscores."),
    ParamSpec::integer("query_timeout", Some(1), Some(3600))
        .default("5")
        .short("seconds one monitor query may take")
        .long("Each monitor query gives up after this many seconds, so a hung server is reported before the monitor's own timeout."),
    ParamSpec::string("options")
        .short("extra mariadbd arguments")
        .long(concat!("Extra arguments for mariadbd, e.g. '--innodb-buffer-pool-size=256M'. ", crate::word_rules!())),
];

/// One MariaDB server, from the parameters.
pub struct Server {
    binary: PathBuf,
    config: PathBuf,
    datadir: PathBuf,
    socket: PathBuf,
    port: u16,
    pid: PathBuf,
    user: String,
    log: PathBuf,
    monitor_user: String,
    health_database: String,
    query_timeout: Duration,
}

impl Server {
    /// The files a running server keeps locked: whoever holds one owns the data directory.
    fn lock_files(&self) -> [PathBuf; 2] {
        [self.datadir.join("ibdata1"), self.datadir.join("aria_log_control")]
    }

    fn lock_holder(&self) -> Option<i32> {
        self.lock_files().iter().find_map(|f| locks::lock_holder(f))
    }
}

fn is_server(pid: i32) -> bool {
    proc::stat(pid).is_some_and(|s| s.state != 'Z' && (s.comm == "mariadbd" || s.comm == "mysqld"))
}

impl Service for Server {
    const AGENT: &'static str = "mariadb";
    const SERVER: &'static str = "mariadbd";
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.8, "shutdown")];
    /// InnoDB's crash recovery may outlast the start timeout: the stop that follows shuts the
    /// server down cleanly.
    const PATIENCE: Patience = Patience::LEAVE_TO_STOP;
    const IF_RUNNING: IfRunning = IfRunning::Adopt;
    const QUOTE: Quote = Quote { lines: 6, ..Quote::LAST_LINES };

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        Ok(Server {
            binary: p.str("binary").into(),
            config: p.str("config").into(),
            datadir: p.str("datadir").into(),
            socket: p.str("socket").into(),
            port: p.num("port"),
            pid: p.str("pid").into(),
            user: p.str("user").into(),
            log: p.str("log").into(),
            monitor_user: p.str("monitor_user").into(),
            health_database: p.str("health_database").into(),
            query_timeout: p.secs("query_timeout"),
        })
    }

    /// Our running server: the one start launched, if that process still holds the data
    /// directory's lock; else the lock holder if it is the server our PID file names (started by
    /// hand with this resource's settings: adopted, as a probe must see it).
    fn locate(&self, inst: &Instance) -> Found {
        if !self.datadir.is_dir() {
            return Found::Stopped(format!("data directory {} is not here", self.datadir.display()));
        }
        let holder = self.lock_holder();
        if let Some(id) = inst.saved().filter(|id| id.is_alive()) {
            if is_server(id.pid) && holder.is_none_or(|h| h == id.pid) {
                return Found::Running(id.pid);
            }
        }
        match holder.filter(|h| is_server(*h) && identity::read_pidfile(&self.pid) == Some(*h)) {
            Some(h) => Found::Running(h),
            None => Found::Stopped("no server of this resource runs on the data directory".into()),
        }
    }

    fn prepare(&self, ctx: &Ctx) -> OcfResult<()> {
        checks::require_space("datadir", &self.datadir)?;
        if let Some(h) = self.lock_holder().filter(|h| !is_server(*h)) {
            // A server killed a moment ago: its last threads still hold the lock. Let them go.
            tree::wait_released(&[h], ctx.deadline.fraction(0.5));
        }
        if let Some(h) = self.lock_holder() {
            return Err(OcfError::generic(format!(
                "data directory {} is in use by another running server ({} holds its lock): refusing to start a second server on it",
                self.datadir.display(),
                proc::describe(&[h])
            )));
        }
        let account = checks::account("user", &self.user)?;
        for (param, path) in [("socket", &self.socket), ("pid", &self.pid)] {
            if let Some(dir) = path.parent() {
                checks::ensure_run_dir(param, dir, &account)?;
            }
        }
        // A socket file left by a killed server makes a new server fail to bind; one that
        // answers belongs to another server, which must keep it.
        if self.socket.exists() {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return Err(OcfError::generic(format!(
                    "socket {} (parameter 'socket') is in use by another running server",
                    self.socket.display()
                )));
            }
            let _ = fs::remove_file(&self.socket);
        }
        Ok(())
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        vec![("port", self.port)]
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let mut cmd = mariadbd_command(ctx, self)?;
        checks::account("user", &self.user)?.apply(&mut cmd);
        Ok(cmd)
    }

    /// mariadbd reopens its error log itself, as `user`.
    fn output(&self, _ctx: &Ctx) -> OcfResult<Output> {
        Ok(Output::Log { path: self.log.clone(), owner: Some(checks::account("user", &self.user)?) })
    }

    fn ready(&self, ctx: &Ctx, _pid: i32) -> Probe {
        if !self.socket.exists() {
            return Probe::NotYet(Some(format!("no socket {} yet", self.socket.display())));
        }
        match ping(self, monitor_uid(self), ctx.deadline.at_most(self.query_timeout)) {
            Ok(()) => Probe::Ready,
            Err(e) => Probe::NotYet(Some(format!("it does not accept connections: {e}"))),
        }
    }

    fn explain(&self, ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let culprit = rejected_config(&failure.lines.join("\n"), ctx, self)?;
        Some(config_fault::rejected(Self::SERVER, &culprit, Some(&self.datadir), failure.quoted))
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        if !self.socket.exists() {
            return Err(OcfError::generic(format!(
                "mariadbd PID {main} runs but its socket {} is missing",
                self.socket.display()
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(self.query_timeout);
        let failed = |e| query_failed(self, e);
        let mut conn =
            MyConn::connect(&self.socket, monitor_uid(self), &self.monitor_user, deadline).map_err(failed)?;
        conn.query("SELECT 1", deadline).map_err(failed)?;
        if level >= 20 {
            health_write_read(ctx, self, &mut conn).map_err(failed)?;
        }
        Ok(OcfStatus::Success)
    }
}

impl ServiceAgent for Mariadb {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_identifier("health_database", ctx.params.str("health_database"))?;
        require_absolute_params(&ctx.params, &["binary", "config", "datadir", "socket", "pid", "log"])?;
        checks::words(&ctx.params, "options")?;
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let my = Server::of(ctx)?;
        checks::require_executable("binary", &my.binary)?;
        let account = checks::account("user", &my.user)?;
        checks::account("monitor_user", &my.monitor_user)?;
        checks::require_path("config", &my.config, false)?;
        checks::require_data_dir("datadir", &my.datadir)?;
        checks::require_writable_data_dir("datadir", &my.datadir, &account)?;
        if !my.datadir.join("mysql").is_dir() {
            return Err(OcfError::installed(format!(
                "{} (parameter 'datadir') is not a MariaDB data directory: no 'mysql' system database (is the replicated partition mounted?)",
                my.datadir.display()
            )));
        }
        Ok(())
    }
}

/// What mariadbd rejected. A syntax error names its option file; a rejected option names only
/// itself: the `options` parameter if that passes it, else the option files that set it (a
/// node-local one decides: it may be the one at fault), else the fault is not placed.
fn rejected_config(log: &str, ctx: &Ctx, my: &Server) -> Option<Culprit> {
    if let Some(file) = mycnf::file_in_error(log) {
        return Some(Culprit::File(file));
    }
    let option = mycnf::rejected_option(log)?;
    let passed = |w: &str| mycnf::canonical(w.trim_start_matches('-').split('=').next().unwrap_or("")) == option;
    if checks::words(&ctx.params, "options").is_ok_and(|words| words.iter().any(|w| passed(w))) {
        return Some(Culprit::Parameter("options".into()));
    }
    let files = mycnf::files_setting(&my.config, &option);
    Some(match files.iter().find(|f| !config_fault::is_inside(f, &my.datadir)).or(files.first()) {
        Some(file) => Culprit::File(file.clone()),
        None => Culprit::Unplaced(format!(
            "option '{option}', not found in {} or the files it includes",
            my.config.display()
        )),
    })
}

fn mariadbd_command(ctx: &Ctx, my: &Server) -> OcfResult<Command> {
    let mut cmd = Command::new(&my.binary);
    // --defaults-file must come first.
    cmd.arg(format!("--defaults-file={}", my.config.display()))
        .arg(format!("--datadir={}", my.datadir.display()))
        .arg(format!("--socket={}", my.socket.display()))
        .arg(format!("--port={}", my.port))
        .arg(format!("--pid-file={}", my.pid.display()))
        .arg(format!("--log-error={}", my.log.display()));
    if let Some(addr) = ctx.params.get("bind_address") {
        cmd.arg(format!("--bind-address={addr}"));
    }
    cmd.args(checks::words(&ctx.params, "options")?);
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").current_dir("/");
    Ok(cmd)
}

fn monitor_uid(my: &Server) -> Option<Uid> {
    proc::Account::lookup(&my.monitor_user).ok().flatten().map(|a| a.uid)
}

fn ping(my: &Server, uid: Option<Uid>, deadline: Deadline) -> Result<(), MyError> {
    MyConn::connect(&my.socket, uid, &my.monitor_user, deadline)?.query("SELECT 1", deadline).map(|_| ())
}

fn query_failed(my: &Server, e: MyError) -> OcfError {
    let what = match e {
        MyError::Timeout => format!("no answer within {} s (query_timeout)", my.query_timeout.as_secs()),
        other => other.to_string(),
    };
    OcfError::generic(format!("MariaDB on {} does not answer queries: {what}", my.socket.display()))
}

/// Depth 20: upsert this resource's row (autocommit: committed when acknowledged), then read
/// it back with a second statement.
fn health_write_read(ctx: &Ctx, my: &Server, conn: &mut MyConn) -> Result<(), MyError> {
    let deadline = ctx.deadline.at_most(my.query_timeout);
    let db = &my.health_database;
    let key = mywire::literal(ctx.env.resource());
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    conn.query(&format!("CREATE DATABASE IF NOT EXISTS `{db}`"), deadline)?;
    conn.query(
        &format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.health (resource VARCHAR(255) PRIMARY KEY, stamp BIGINT NOT NULL) ENGINE=InnoDB"
        ),
        deadline,
    )?;
    conn.query(&format!("REPLACE INTO `{db}`.health (resource, stamp) VALUES ({key}, {stamp})"), deadline)?;
    let rows = conn.query(&format!("SELECT stamp FROM `{db}`.health WHERE resource = {key}"), deadline)?;
    let got = rows.first().and_then(|r| r.first().cloned().flatten());
    if got.as_deref() == Some(stamp.to_string().as_str()) {
        Ok(())
    } else {
        Err(MyError::Io(format!("the health row read back {got:?}, not the {stamp} just written")))
    }
}
