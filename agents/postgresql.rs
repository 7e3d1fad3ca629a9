//! `postgresql`: one PostgreSQL server whose data directory lives on the replicated partition
//! (anchor: ClusterLabs `pgsql` in its single-server mode).
//!
//! Start runs the `postgres` binary itself (no pg_ctl, no pg_ctlcluster: they add a process and
//! their own waiting), in its own session, as the database owner, and returns as soon as the
//! server says "ready" in postmaster.pid and answers a connection; if it exits, at once with its
//! log lines. Crash recovery after a power cut is PostgreSQL's own WAL replay: the agent only
//! clears lock files whose PID now belongs to someone else (after a reboot PIDs are reused, and
//! postgres would refuse to start) and waits while the server replays.
//! Monitor talks the wire protocol over the Unix socket (see `net::pgwire` for why).

use std::cell::OnceCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::agents::service::checks::{self, require_absolute_params, require_identifier};
use crate::agents::service::config_fault::{self, last_between, Culprit};
use crate::agents::service::instance::default_log;
use crate::agents::service::{
    Found, IfRunning, Instance, Output, Patience, Probe, Quote, Service, ServiceAgent, StartFailure, StopStep,
};
use crate::net::pgwire::{self, PgConn, PgError};
use crate::ocf::{ActionSpec, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::proc::{self, Account};

pub struct Postgresql;

static SPEC: AgentSpec = AgentSpec {
    name: "postgresql",
    shortdesc: "PostgreSQL server with its data on the replicated partition",
    longdesc: "Starts one PostgreSQL server (the postgres binary, in its own session, as the database owner) \
and returns as soon as it accepts connections, or at once with its log lines if it exits. Refuses a data \
directory that another running postmaster owns. Stop is 'fast' shutdown (SIGINT), then 'immediate' (SIGQUIT), \
then SIGKILL of what is left, within the timeout. Monitor depth 0 checks the postmaster (by its data directory, \
not just the PID file) and its socket; 10 runs SELECT 1 over the Unix socket with a per-query timeout; 20 \
writes and reads back a row in a health table the agent owns. The monitor authenticates by the socket's peer \
credentials as the database owner (Debian's 'local all postgres peer'), so no password is needed.",
    params: PARAMS,
    actions: &[
        ActionSpec::new("start", "120s"),
        ActionSpec::new("stop", "120s"),
        ActionSpec::monitor("30s", "30s"),
        ActionSpec::monitor("31s", "30s").depth(10),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "5s"),
    ],
};

static PARAMS: &[ParamSpec] = &[
    ParamSpec::string("bindir")
        .default("/usr/lib/postgresql/15/bin")
        .short("directory of the postgres binary")
        .long("Directory holding the postgres binary of the server's major version (Debian: /usr/lib/postgresql/VERSION/bin)."),
    ParamSpec::string("pgdata")
        .default("/var/lib/postgresql/15/main")
        .unique()
        .data()
        .short("data directory")
        .long("The data directory (PGDATA). Put it on the replicated partition; missing here means the partition is not mounted (exit 5)."),
    ParamSpec::string("config")
        .default("/etc/postgresql/15/main/postgresql.conf")
        .short("postgresql.conf")
        .long("The configuration file. Debian keeps it under /etc/postgresql; point it at PGDATA/postgresql.conf for a self-contained data directory. data_directory, port and socket directory are overridden by this agent's parameters."),
    ParamSpec::integer("port", Some(1), Some(65535)).default("5432").short("TCP port (and socket name)"),
    ParamSpec::string("listen_addresses")
        .short("addresses to listen on")
        .long("listen_addresses for the server, e.g. 'localhost,10.0.0.50' (the data-layer virtual IP). Unset: the configuration file's value."),
    ParamSpec::string("socket_dir")
        .default("/var/run/postgresql")
        .short("Unix socket directory")
        .long("Directory of the Unix socket; the monitor connects there. Created (owned by 'user') if missing, as /run is empty after a boot."),
    ParamSpec::string("user").default("postgres").short("OS user running the server (and database user of the monitor)"),
    ParamSpec::string("database").default("postgres").short("database the monitor connects to"),
    ParamSpec::string("health_table")
        .default("hastack_health")
        .short("table the depth-20 monitor writes")
        .long("A table the agent creates and owns in 'database' (one row per resource) for the depth-20 write-and-read-back check. Letters, digits and underscores."),
    ParamSpec::integer("query_timeout", Some(1), Some(3600))
        .default("5")
        .short("seconds one monitor query may take")
        .long("Each monitor query gives up after this many seconds (and the server's statement_timeout is set to it), so a hung server is reported before the monitor's own timeout."),
    ParamSpec::string("logfile")
        .short("server log file")
        .long("Where the server's stderr goes (and the lines a failed start quotes). Default: /var/log/postgresql/hastack-postgresql-RESOURCE.log."),
    ParamSpec::string("options").short("extra postgres arguments").long(concat!(
        "Extra arguments for postgres, e.g. '-c shared_buffers=256MB'. ",
        crate::word_rules!()
    )),
];

/// One PostgreSQL server, from the parameters.
pub struct Server {
    bindir: PathBuf,
    pgdata: PathBuf,
    config: PathBuf,
    port: u16,
    socket_dir: PathBuf,
    user: String,
    database: String,
    health_table: String,
    query_timeout: Duration,
    logfile: PathBuf,
    /// The database owner's account, looked up when first needed.
    account: OnceCell<Account>,
}

impl Server {
    fn account(&self) -> OcfResult<&Account> {
        if let Some(a) = self.account.get() {
            return Ok(a);
        }
        let a = checks::account("user", &self.user)?;
        Ok(self.account.get_or_init(|| a))
    }

    fn socket(&self) -> PathBuf {
        pgwire::socket_path(&self.socket_dir, self.port)
    }

    fn pidfile(&self) -> PathBuf {
        self.pgdata.join("postmaster.pid")
    }
}

/// postmaster.pid, as PostgreSQL (10+) writes it: PID, data directory, start time, port, socket
/// directory, listen address, shared memory key, status ("starting", "ready", "stopping", ...).
#[derive(Debug, Default, PartialEq)]
pub struct PidFile {
    pub pid: i32,
    pub port: u16,
    pub status: String,
}

pub fn parse_pidfile(text: &str) -> Option<PidFile> {
    let lines: Vec<&str> = text.lines().collect();
    Some(PidFile {
        pid: lines.first()?.trim().parse().ok()?,
        port: lines.get(3).and_then(|l| l.trim().parse().ok()).unwrap_or(0),
        status: lines.get(7).map(|l| l.trim().to_string()).unwrap_or_default(),
    })
}

fn read_pidfile(path: &Path) -> Option<PidFile> {
    parse_pidfile(&fs::read_to_string(path).ok()?)
}

/// Whether `pid` is a live postmaster of `pgdata`: a postgres process whose working directory
/// is the data directory (the postmaster chdirs there). A PID reused after a reboot fails this.
fn is_postmaster_of(pid: i32, pgdata: &Path) -> bool {
    let Some(stat) = proc::stat(pid) else { return false };
    if stat.state == 'Z' || !(stat.comm == "postgres" || stat.comm == "postmaster") {
        return false;
    }
    let want = pgdata.canonicalize().unwrap_or_else(|_| pgdata.to_path_buf());
    proc::cwd(pid).is_some_and(|d| d == want)
}

impl Service for Server {
    const AGENT: &'static str = "postgresql";
    const SERVER: &'static str = "postgres";
    const STOP: &'static [StopStep] = &[
        StopStep::new(Signal::SIGINT, 0.6, "fast shutdown"),
        StopStep::new(Signal::SIGQUIT, 0.5, "immediate shutdown"),
    ];
    /// Crash recovery (WAL replay) may outlast the start timeout: the stop that follows shuts
    /// the server down cleanly.
    const PATIENCE: Patience = Patience::LEAVE_TO_STOP;
    const IF_RUNNING: IfRunning = IfRunning::Adopt;
    const QUOTE: Quote = Quote { lines: 6, ..Quote::LAST_LINES };

    fn of(ctx: &Ctx) -> OcfResult<Server> {
        let p = &ctx.params;
        Ok(Server {
            bindir: PathBuf::from(p.str("bindir")),
            pgdata: PathBuf::from(p.str("pgdata")),
            config: PathBuf::from(p.str("config")),
            port: p.num("port"),
            socket_dir: PathBuf::from(p.str("socket_dir")),
            user: p.str("user").to_string(),
            database: p.str("database").to_string(),
            health_table: p.str("health_table").to_string(),
            query_timeout: p.secs("query_timeout"),
            logfile: p
                .get("logfile")
                .map(PathBuf::from)
                .unwrap_or_else(|| default_log("/var/log/postgresql", "postgresql", ctx)),
            account: OnceCell::new(),
        })
    }

    /// The postmaster of this data directory serving this port: the one postmaster.pid names,
    /// else the one start launched (the pid file may be gone: removed by hand, or the partition
    /// unmounted under the server). Either must be a postmaster of the data directory: an
    /// identity file is keyed by resource name only.
    fn locate(&self, inst: &Instance) -> Found {
        if !self.pgdata.is_dir() {
            return Found::Stopped(format!("data directory {} is not here", self.pgdata.display()));
        }
        if let Some(pf) = read_pidfile(&self.pidfile()).filter(|pf| is_postmaster_of(pf.pid, &self.pgdata)) {
            if pf.port != self.port {
                // Another server (another port) owns the data directory; ours is not running.
                return Found::Stopped(format!(
                    "the postmaster on {} (PID {}) serves port {}, not {}",
                    self.pgdata.display(),
                    pf.pid,
                    pf.port,
                    self.port
                ));
            }
            return Found::Running(pf.pid);
        }
        match inst.saved().filter(|id| id.is_alive() && is_postmaster_of(id.pid, &self.pgdata)) {
            Some(id) => Found::Running(id.pid),
            None => Found::Stopped("no postmaster runs on this data directory".into()),
        }
    }

    fn prepare(&self, ctx: &Ctx) -> OcfResult<()> {
        checks::require_space("pgdata", &self.pgdata)?;
        if let Some(pf) = read_pidfile(&self.pidfile()) {
            if is_postmaster_of(pf.pid, &self.pgdata) {
                return Err(OcfError::generic(format!(
                    "data directory {} is in use by another running postmaster (PID {}, port {}): refusing to start a second server on it",
                    self.pgdata.display(),
                    pf.pid,
                    pf.port
                )));
            }
            // The PID is gone or now belongs to another program (reused after a reboot or a
            // power cut): postgres would refuse to start on a live PID, so clear the stale lock.
            ctx.log.warn(format!(
                "removing stale postmaster.pid (PID {} is not a postmaster of this data directory)",
                pf.pid
            ));
            let _ = fs::remove_file(self.pidfile());
        }
        // The socket's lock file blocks a start the same way.
        clear_stale_socket_lock(ctx, self);
        checks::ensure_run_dir("socket_dir", &self.socket_dir, self.account()?)
    }

    fn ports(&self) -> Vec<(&'static str, u16)> {
        vec![("port", self.port)]
    }

    fn command(&self, ctx: &Ctx) -> OcfResult<Command> {
        let mut cmd = postgres_command(ctx, self)?;
        self.account()?.apply(&mut cmd);
        Ok(cmd)
    }

    fn output(&self, _ctx: &Ctx) -> OcfResult<Output> {
        Ok(Output::Log { path: self.logfile.clone(), owner: Some(self.account()?.clone()) })
    }

    /// Ready when postmaster.pid says so and a connection answers.
    fn ready(&self, ctx: &Ctx, pid: i32) -> Probe {
        if !read_pidfile(&self.pidfile()).is_some_and(|pf| pf.pid == pid && pf.status == "ready") {
            return Probe::NotYet(Some("postmaster.pid does not say ready".into()));
        }
        let Ok(account) = self.account() else { return Probe::NotYet(None) };
        match ping(self, account, ctx.deadline.at_most(self.query_timeout)) {
            Ok(()) => Probe::Ready,
            Err(e) => Probe::NotYet(Some(format!("it does not accept connections: {e}"))),
        }
    }

    fn explain(&self, _ctx: &Ctx, failure: &StartFailure) -> Option<OcfError> {
        let culprit = rejected_config(&failure.lines.join("\n"))?;
        Some(config_fault::rejected(Self::SERVER, &culprit, Some(&self.pgdata), failure.quoted))
    }

    fn check(&self, ctx: &Ctx, main: i32) -> OcfResult {
        if !self.socket().exists() {
            return Err(OcfError::generic(format!(
                "postmaster PID {main} runs but its socket {} is missing",
                self.socket().display()
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let deadline = ctx.deadline.at_most(self.query_timeout);
        let mut conn = connect(self, self.account()?, deadline).map_err(|e| query_failed(self, e))?;
        conn.query("SELECT 1", deadline).map_err(|e| query_failed(self, e))?;
        if level >= 20 {
            health_write_read(ctx, self, &mut conn).map_err(|e| query_failed(self, e))?;
        }
        Ok(OcfStatus::Success)
    }
}

impl ServiceAgent for Postgresql {
    type Server = Server;
    const SPEC: &'static AgentSpec = &SPEC;

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        require_identifier("health_table", ctx.params.str("health_table"))?;
        require_absolute_params(&ctx.params, &["pgdata", "config", "socket_dir", "bindir"])?;
        checks::words(&ctx.params, "options")?;
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let pg = Server::of(ctx)?;
        checks::require_executable("bindir", pg.bindir.join("postgres"))?;
        let account = pg.account()?;
        checks::require_data_dir("pgdata", &pg.pgdata)?;
        checks::require_writable_data_dir("pgdata", &pg.pgdata, account)?;
        if !pg.pgdata.join("PG_VERSION").is_file() {
            return Err(OcfError::installed(format!(
                "{} (parameter 'pgdata') is not a PostgreSQL data directory: no PG_VERSION (is the replicated partition mounted?)",
                pg.pgdata.display()
            )));
        }
        checks::require_path("config", &pg.config, false)
    }
}

/// What postgres rejected, from its last log lines. A fault in a configuration file ends with
/// `FATAL: configuration file "F" contains errors`, F being the file with the fault (an
/// included file, postgresql.auto.conf in the data directory, or the `config` file); a bad
/// `-c` setting from the command line names no file: the parameter that passed it.
pub fn rejected_config(lines: &str) -> Option<Culprit> {
    if let Some(file) = last_between(lines, "configuration file \"", "\"").or(last_between(lines, "in file \"", "\"")) {
        return Some(Culprit::File(PathBuf::from(file)));
    }
    let bad_setting = ["invalid value for parameter \"", "unrecognized configuration parameter \"", "parameter \""]
        .iter()
        .find_map(|m| last_between(lines, m, "\""))
        .filter(|_| lines.contains("FATAL"))?;
    let param = match bad_setting {
        "port" => "port",
        "listen_addresses" => "listen_addresses",
        "unix_socket_directories" => "socket_dir",
        "config_file" => "config",
        "data_directory" => "pgdata",
        _ => "options",
    };
    Some(Culprit::Parameter(param.to_string()))
}

fn postgres_command(ctx: &Ctx, pg: &Server) -> OcfResult<Command> {
    let mut cmd = Command::new(pg.bindir.join("postgres"));
    cmd.arg("-D").arg(&pg.pgdata);
    let set = |cmd: &mut Command, k: &str, v: &str| {
        cmd.arg("-c").arg(format!("{k}={v}"));
    };
    set(&mut cmd, "config_file", &pg.config.to_string_lossy());
    set(&mut cmd, "data_directory", &pg.pgdata.to_string_lossy());
    set(&mut cmd, "port", &pg.port.to_string());
    set(&mut cmd, "unix_socket_directories", &pg.socket_dir.to_string_lossy());
    // No external pid file from the configuration: two servers must not fight over one.
    set(&mut cmd, "external_pid_file", "");
    if let Some(addr) = ctx.params.get("listen_addresses") {
        set(&mut cmd, "listen_addresses", addr);
    }
    cmd.args(checks::words(&ctx.params, "options")?);
    // The agent's environment carries every OCF_RESKEY_*: the server gets none of it.
    cmd.env_clear().env("PATH", "/usr/bin:/bin").env("PGDATA", &pg.pgdata).current_dir(&pg.pgdata);
    Ok(cmd)
}

/// The socket lock file `.s.PGSQL.PORT.lock` holds the PID of its postmaster; a PID reused by
/// another program after a crash would block the start, so remove a lock no live postmaster
/// of ours holds.
fn clear_stale_socket_lock(ctx: &Ctx, pg: &Server) {
    let lock = PathBuf::from(format!("{}.lock", pg.socket().display()));
    let Ok(text) = fs::read_to_string(&lock) else { return };
    let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else { return };
    let alive_postgres = proc::stat(pid).is_some_and(|s| s.state != 'Z' && s.comm == "postgres");
    if !alive_postgres {
        ctx.log.warn(format!("removing stale socket lock {} (PID {pid} is not a postmaster)", lock.display()));
        let _ = fs::remove_file(&lock);
        let _ = fs::remove_file(pg.socket());
    }
}

fn connect(pg: &Server, account: &Account, deadline: Deadline) -> Result<PgConn, PgError> {
    let timeout_ms = pg.query_timeout.as_millis().to_string();
    PgConn::connect(
        &pg.socket(),
        Some(account.uid),
        &pg.user,
        &pg.database,
        &[("application_name", "hastack"), ("statement_timeout", &timeout_ms)],
        deadline,
    )
}

fn ping(pg: &Server, account: &Account, deadline: Deadline) -> Result<(), PgError> {
    connect(pg, account, deadline)?.query("SELECT 1", deadline).map(|_| ())
}

fn query_failed(pg: &Server, e: PgError) -> OcfError {
    let what = match e {
        PgError::Timeout => format!("no answer within {} s (query_timeout)", pg.query_timeout.as_secs()),
        other => other.to_string(),
    };
    OcfError::generic(format!("PostgreSQL on {} does not answer queries: {what}", pg.socket().display()))
}

/// Depth 20: upsert this resource's row with a fresh value (committed), then read it back in a
/// second statement.
fn health_write_read(ctx: &Ctx, pg: &Server, conn: &mut PgConn) -> Result<(), PgError> {
    let deadline = ctx.deadline.at_most(pg.query_timeout);
    let table = pgwire::ident(&pg.health_table);
    let key = pgwire::literal(ctx.env.resource());
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    conn.query(
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (resource text PRIMARY KEY, stamp bigint NOT NULL); \
             INSERT INTO {table} (resource, stamp) VALUES ({key}, {stamp}) \
             ON CONFLICT (resource) DO UPDATE SET stamp = EXCLUDED.stamp"
        ),
        deadline,
    )?;
    let rows = conn.query(&format!("SELECT stamp FROM {table} WHERE resource = {key}"), deadline)?;
    let got = rows.first().and_then(|r| r.first().cloned().flatten());
    if got.as_deref() == Some(stamp.to_string().as_str()) {
        Ok(())
    } else {
        Err(PgError::Io(format!("the health row read back {got:?}, not the {stamp} just written")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_file_or_parameter_postgres_rejected() {
        let file = |l: &str| rejected_config(l);
        assert_eq!(
            file("LOG:  syntax error in file \"/etc/pg/main.conf\" line 816, near token \"here\" | FATAL:  configuration file \"/etc/pg/main.conf\" contains errors"),
            Some(Culprit::File("/etc/pg/main.conf".into()))
        );
        // An included file with the fault is named in the FATAL line.
        assert_eq!(
            file("LOG:  invalid value for parameter \"work_mem\": \"zzz\" | FATAL:  configuration file \"/srv/pg/inc.conf\" contains errors"),
            Some(Culprit::File("/srv/pg/inc.conf".into()))
        );
        assert_eq!(
            file("FATAL:  invalid value for parameter \"shared_buffers\": \"abc\""),
            Some(Culprit::Parameter("options".into()))
        );
        assert_eq!(
            file("FATAL:  unrecognized configuration parameter \"no_such\""),
            Some(Culprit::Parameter("options".into()))
        );
        assert_eq!(
            file("FATAL:  invalid value for parameter \"listen_addresses\": \"x\""),
            Some(Culprit::Parameter("listen_addresses".into()))
        );
        assert_eq!(file("FATAL:  could not create lock file \"/run/x/.s.PGSQL.5432.lock\": Permission denied"), None);
        assert_eq!(file("LOG:  database system is shut down"), None);
    }

    #[test]
    fn parses_postmaster_pid() {
        let text = "4242\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\nlocalhost\n  1234567     98304\nready   \n";
        assert_eq!(parse_pidfile(text), Some(PidFile { pid: 4242, port: 5432, status: "ready".into() }));
        let starting = "4242\n/d\n1\n5433\n";
        assert_eq!(parse_pidfile(starting).unwrap().status, "");
        assert_eq!(parse_pidfile("junk"), None);
    }
}
