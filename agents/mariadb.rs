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
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use nix::unistd::Uid;

use crate::agents::config_fault::{self, Culprit};
use crate::agents::datalayer;
use crate::agents::mycnf;
use crate::net::mywire::{self, MyConn, MyError};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::daemon::{self, Identity, Readiness};
use crate::sys::proc;

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
    ParamSpec::string("options").short("extra mariadbd arguments, separated by spaces (no shell)"),
];

struct My {
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

impl My {
    fn from(ctx: &Ctx) -> My {
        let p = &ctx.params;
        My {
            binary: p.str("binary").into(),
            config: p.str("config").into(),
            datadir: p.str("datadir").into(),
            socket: p.str("socket").into(),
            port: p.int("port").unwrap_or(3306) as u16,
            pid: p.str("pid").into(),
            user: p.str("user").into(),
            log: p.str("log").into(),
            monitor_user: p.str("monitor_user").into(),
            health_database: p.str("health_database").into(),
            query_timeout: Duration::from_secs(p.int("query_timeout").unwrap_or(5) as u64),
        }
    }

    /// The files a running server keeps locked: whoever holds one owns the data directory.
    fn lock_files(&self) -> [PathBuf; 2] {
        [self.datadir.join("ibdata1"), self.datadir.join("aria_log_control")]
    }

    fn lock_holder(&self) -> Option<i32> {
        self.lock_files().iter().find_map(|f| daemon::lock_holder(f))
    }
}

fn is_server(pid: i32) -> bool {
    proc::stat(pid).is_some_and(|s| s.state != 'Z' && (s.comm == "mariadbd" || s.comm == "mysqld"))
}

fn state_file(ctx: &Ctx) -> PathBuf {
    daemon::state_file("mariadb", ctx.env.resource())
}

/// Our running server: the identity saved at start, if that process still holds the data
/// directory's lock; else the lock holder if it is the server our PID file names (started by
/// hand with this resource's settings: adopted, as a probe must see it).
fn find_server(my: &My, state: &std::path::Path) -> Option<i32> {
    let holder = my.lock_holder();
    if let Some(id) = daemon::load_live_identity(state) {
        if is_server(id.pid) && holder.is_none_or(|h| h == id.pid) {
            return Some(id.pid);
        }
    }
    let h = holder?;
    (is_server(h) && daemon::read_pidfile(&my.pid) == Some(h)).then_some(h)
}

impl Agent for Mariadb {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let db = ctx.params.str("health_database");
        if db.is_empty() || !db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(OcfError::configured(format!(
                "parameter 'health_database' must be letters, digits and underscores, got '{db}'"
            )));
        }
        for name in ["binary", "config", "datadir", "socket", "pid", "log"] {
            if !ctx.params.str(name).starts_with('/') {
                return Err(OcfError::configured(format!("parameter '{name}' must be an absolute path")));
            }
        }
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let my = My::from(ctx);
        crate::ocf::host::require_executable("binary", &my.binary)?;
        datalayer::account("user", &my.user)?;
        datalayer::account("monitor_user", &my.monitor_user)?;
        datalayer::require_file("config", &my.config)?;
        datalayer::require_data_dir("datadir", &my.datadir)?;
        if !my.datadir.join("mysql").is_dir() {
            return Err(OcfError::installed(format!(
                "{} (parameter 'datadir') is not a MariaDB data directory: no 'mysql' system database (is the replicated partition mounted?)",
                my.datadir.display()
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let my = My::from(ctx);
        let state = state_file(ctx);
        let account = datalayer::account("user", &my.user)?;
        if let Some(pid) = find_server(&my, &state) {
            ctx.log.info(format!("mariadbd PID {pid} already runs on {}", my.datadir.display()));
            if let Some(id) = Identity::of(pid) {
                let _ = daemon::save_identity(&state, id);
            }
            return Ok(OcfStatus::Success);
        }
        if let Some(h) = my.lock_holder().filter(|h| !is_server(*h)) {
            // A server killed a moment ago: its last threads still hold the lock. Let them go.
            daemon::wait_released(&[h], ctx.deadline.fraction(0.5));
        }
        if let Some(h) = my.lock_holder() {
            return Err(OcfError::generic(format!(
                "data directory {} is in use by another running server ({} holds its lock): refusing to start a second server on it",
                my.datadir.display(),
                datalayer::describe(&[h])
            )));
        }
        datalayer::require_port_free("port", my.port)?;
        for (param, path) in [("socket", &my.socket), ("pid", &my.pid)] {
            if let Some(dir) = path.parent() {
                datalayer::ensure_run_dir(param, dir, &account)?;
            }
        }
        // A socket file left by a killed server makes a new server fail to bind; one that
        // answers belongs to another server, which must keep it.
        if my.socket.exists() {
            if std::os::unix::net::UnixStream::connect(&my.socket).is_ok() {
                return Err(OcfError::generic(format!(
                    "socket {} (parameter 'socket') is in use by another running server",
                    my.socket.display()
                )));
            }
            let _ = fs::remove_file(&my.socket);
        }
        let log = datalayer::open_log(&my.log)?;
        let _ = nix::unistd::chown(&my.log, Some(account.uid), Some(account.gid));
        let mark = datalayer::log_mark(&my.log);
        let mut cmd = mariadbd_command(ctx, &my);
        cmd.stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null())).stderr(Stdio::from(log));
        account.apply(&mut cmd);
        let mut child = proc::spawn_daemon(&mut cmd)
            .map_err(|e| OcfError::generic(format!("cannot start {}: {e}", my.binary.display())))?;
        let pid = child.id() as i32;
        if let Some(id) = Identity::of(pid) {
            let _ = daemon::save_identity(&state, id);
        }
        ctx.log.info(format!("mariadbd PID {pid} started on {}", my.datadir.display()));
        let uid = monitor_uid(&my);
        let readiness = daemon::wait_ready(
            ctx.deadline,
            || child.try_wait().ok().flatten().is_none(),
            || my.socket.exists() && ping(&my, uid, ctx.deadline.at_most(my.query_timeout)).is_ok(),
        );
        match readiness {
            Readiness::Ready => Ok(OcfStatus::Success),
            Readiness::Died => {
                let _ = fs::remove_file(&state);
                let lines = datalayer::log_since(&my.log, mark, 6);
                let culprit = rejected_config(&datalayer::log_since(&my.log, mark, 30), ctx, &my);
                Err(datalayer::exited_during_start("mariadbd", &lines, culprit, &my.datadir))
            }
            Readiness::TimedOut => Err(OcfError::generic(format!(
                "mariadbd (PID {pid}) did not accept connections before the start timeout: {}",
                datalayer::log_since(&my.log, mark, 4)
            ))),
        }
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let my = My::from(ctx);
        let state = state_file(ctx);
        let Some(pid) = find_server(&my, &state) else {
            let _ = fs::remove_file(&state);
            return Ok(OcfStatus::Success);
        };
        let session = proc::stat(pid).map(|s| s.session).filter(|s| *s == pid);
        proc::signal(pid, Signal::SIGCONT);
        let left = daemon::stop_tree_escalating(pid, session, &[(Signal::SIGTERM, 0.8)], ctx.deadline, |sig| {
            ctx.log.info(format!(
                "mariadbd PID {pid}: {}",
                if sig == Signal::SIGTERM { "shutdown (SIGTERM)" } else { "SIGKILL" }
            ))
        });
        if !left.is_empty() {
            return Err(OcfError::generic(format!("still running after stop: {}", datalayer::describe(&left))));
        }
        let _ = fs::remove_file(&state);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let my = My::from(ctx);
        if !my.datadir.is_dir() {
            return Err(OcfError::not_running(format!("data directory {} is not here", my.datadir.display())));
        }
        let Some(pid) = find_server(&my, &state_file(ctx)) else {
            return Err(OcfError::not_running("no server of this resource runs on the data directory"));
        };
        if proc::stat(pid).is_some_and(|s| s.state == 'T') {
            return Err(OcfError::generic(format!("mariadbd PID {pid} is stopped (SIGSTOP): it cannot serve")));
        }
        if !my.socket.exists() {
            return Err(OcfError::generic(format!(
                "mariadbd PID {pid} runs but its socket {} is missing",
                my.socket.display()
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(my.query_timeout);
        let failed = |e| query_failed(&my, e);
        let mut conn = MyConn::connect(&my.socket, monitor_uid(&my), &my.monitor_user, deadline).map_err(failed)?;
        conn.query("SELECT 1", deadline).map_err(failed)?;
        if level >= 20 {
            health_write_read(ctx, &my, &mut conn).map_err(failed)?;
        }
        Ok(OcfStatus::Success)
    }
}

/// What mariadbd rejected. A syntax error names its option file; a rejected option names only
/// itself: the `options` parameter if that passes it, else the option files that set it (a
/// node-local one decides: it may be the one at fault), else the fault is not placed.
fn rejected_config(log: &str, ctx: &Ctx, my: &My) -> Option<Culprit> {
    if let Some(file) = mycnf::file_in_error(log) {
        return Some(Culprit::File(file));
    }
    let option = mycnf::rejected_option(log)?;
    let passed = |w: &str| mycnf::canonical(w.trim_start_matches('-').split('=').next().unwrap_or("")) == option;
    if ctx.params.get("options").is_some_and(|o| o.split_whitespace().any(passed)) {
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

fn mariadbd_command(ctx: &Ctx, my: &My) -> Command {
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
    if let Some(opts) = ctx.params.get("options") {
        cmd.args(opts.split_whitespace());
    }
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").current_dir("/");
    cmd
}

fn monitor_uid(my: &My) -> Option<Uid> {
    proc::Account::lookup(&my.monitor_user).map(|a| a.uid)
}

fn ping(my: &My, uid: Option<Uid>, deadline: Deadline) -> Result<(), MyError> {
    MyConn::connect(&my.socket, uid, &my.monitor_user, deadline)?.query("SELECT 1", deadline).map(|_| ())
}

fn query_failed(my: &My, e: MyError) -> OcfError {
    let what = match e {
        MyError::Timeout => format!("no answer within {} s (query_timeout)", my.query_timeout.as_secs()),
        other => other.to_string(),
    };
    OcfError::generic(format!("MariaDB on {} does not answer queries: {what}", my.socket.display()))
}

/// Depth 20: upsert this resource's row (autocommit: committed when acknowledged), then read
/// it back with a second statement.
fn health_write_read(ctx: &Ctx, my: &My, conn: &mut MyConn) -> Result<(), MyError> {
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
