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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;

use crate::agents::config_fault::{last_between, Culprit};
use crate::agents::datalayer;
use crate::net::pgwire::{self, PgConn, PgError};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::daemon::{self, Identity, Readiness};
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
    ParamSpec::string("options")
        .short("extra postgres arguments")
        .long("Extra arguments for postgres, separated by spaces (e.g. '-c shared_buffers=256MB'). Passed as arguments, never through a shell."),
];

/// One instance's settings, from the parameters.
struct Pg {
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
}

impl Pg {
    fn from(ctx: &Ctx) -> Pg {
        let p = &ctx.params;
        Pg {
            bindir: PathBuf::from(p.str("bindir")),
            pgdata: PathBuf::from(p.str("pgdata")),
            config: PathBuf::from(p.str("config")),
            port: p.int("port").unwrap_or(5432) as u16,
            socket_dir: PathBuf::from(p.str("socket_dir")),
            user: p.str("user").to_string(),
            database: p.str("database").to_string(),
            health_table: p.str("health_table").to_string(),
            query_timeout: Duration::from_secs(p.int("query_timeout").unwrap_or(5) as u64),
            logfile: p
                .get("logfile")
                .map(PathBuf::from)
                .unwrap_or_else(|| datalayer::default_log("/var/log/postgresql", "postgresql", ctx.env.resource())),
        }
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
struct PidFile {
    pid: i32,
    port: u16,
    status: String,
}

fn parse_pidfile(text: &str) -> Option<PidFile> {
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
    daemon::cwd(pid).is_some_and(|d| d == want)
}

/// The running postmaster of this data directory, if any, and its pid file.
fn find_postmaster(pg: &Pg, state: &Path) -> Option<(i32, Option<PidFile>)> {
    if let Some(pf) = read_pidfile(&pg.pidfile()) {
        if is_postmaster_of(pf.pid, &pg.pgdata) {
            return Some((pf.pid, Some(pf)));
        }
    }
    // The pid file may be gone (removed by hand, or the partition unmounted under the server):
    // the identity saved at start still finds our postmaster.
    // Checked like the pid file: an identity file is keyed by resource name only.
    daemon::load_live_identity(state).filter(|id| is_postmaster_of(id.pid, &pg.pgdata)).map(|id| (id.pid, None))
}

fn state_file(ctx: &Ctx) -> PathBuf {
    daemon::state_file("postgresql", ctx.env.resource())
}

impl Agent for Postgresql {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let table = ctx.params.str("health_table");
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(OcfError::configured(format!(
                "parameter 'health_table' must be letters, digits and underscores, got '{table}'"
            )));
        }
        for name in ["pgdata", "config", "socket_dir", "bindir"] {
            if !ctx.params.str(name).starts_with('/') {
                return Err(OcfError::configured(format!("parameter '{name}' must be an absolute path")));
            }
        }
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let pg = Pg::from(ctx);
        crate::ocf::host::require_executable("bindir", &pg.bindir.join("postgres"))?;
        datalayer::account("user", &pg.user)?;
        datalayer::require_data_dir("pgdata", &pg.pgdata)?;
        if !pg.pgdata.join("PG_VERSION").is_file() {
            return Err(OcfError::installed(format!(
                "{} (parameter 'pgdata') is not a PostgreSQL data directory: no PG_VERSION (is the replicated partition mounted?)",
                pg.pgdata.display()
            )));
        }
        datalayer::require_file("config", &pg.config)
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let pg = Pg::from(ctx);
        let state = state_file(ctx);
        let account = datalayer::account("user", &pg.user)?;
        if let Some(pf) = read_pidfile(&pg.pidfile()) {
            if is_postmaster_of(pf.pid, &pg.pgdata) {
                if pf.port == pg.port {
                    // Already running as this resource would run it (perhaps started by hand):
                    // start is idempotent; adopt it.
                    if let Some(id) = Identity::of(pf.pid) {
                        let _ = daemon::save_identity(&state, id);
                    }
                    ctx.log.info(format!("postmaster PID {} already runs on {}", pf.pid, pg.pgdata.display()));
                    return Ok(OcfStatus::Success);
                }
                return Err(OcfError::generic(format!(
                    "data directory {} is in use by another running postmaster (PID {}, port {}): refusing to start a second server on it",
                    pg.pgdata.display(),
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
            let _ = fs::remove_file(pg.pidfile());
        }
        // The socket's lock file blocks a start the same way.
        clear_stale_socket_lock(ctx, &pg);
        datalayer::require_port_free("port", pg.port)?;
        datalayer::ensure_run_dir("socket_dir", &pg.socket_dir, &account)?;

        let log = datalayer::open_log(&pg.logfile)?;
        let _ = nix::unistd::chown(&pg.logfile, Some(account.uid), Some(account.gid));
        let mark = datalayer::log_mark(&pg.logfile);
        let mut cmd = postgres_command(ctx, &pg);
        cmd.stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null())).stderr(Stdio::from(log));
        account.apply(&mut cmd);
        let mut child = proc::spawn_daemon(&mut cmd)
            .map_err(|e| OcfError::generic(format!("cannot start {}: {e}", pg.bindir.join("postgres").display())))?;
        let pid = child.id() as i32;
        if let Some(id) = Identity::of(pid) {
            let _ = daemon::save_identity(&state, id);
        }
        ctx.log.info(format!("postmaster PID {pid} started on {}", pg.pgdata.display()));

        let pidfile = pg.pidfile();
        let readiness = daemon::wait_ready(
            ctx.deadline,
            || child.try_wait().ok().flatten().is_none(),
            || {
                read_pidfile(&pidfile).is_some_and(|pf| pf.pid == pid && pf.status == "ready")
                    && ping(&pg, &account, ctx.deadline.at_most(pg.query_timeout)).is_ok()
            },
        );
        match readiness {
            Readiness::Ready => Ok(OcfStatus::Success),
            Readiness::Died => {
                let _ = fs::remove_file(&state);
                let lines = datalayer::log_since(&pg.logfile, mark, 6);
                Err(datalayer::exited_during_start("postgres", &lines, rejected_config(&lines), &pg.pgdata))
            }
            Readiness::TimedOut => Err(OcfError::generic(format!(
                "postgres (PID {pid}) did not accept connections before the start timeout: {}",
                datalayer::log_since(&pg.logfile, mark, 4)
            ))),
        }
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let pg = Pg::from(ctx);
        let state = state_file(ctx);
        let Some((pid, _)) = find_postmaster(&pg, &state) else {
            let _ = fs::remove_file(&state);
            return Ok(OcfStatus::Success);
        };
        // The postmaster is a session leader when we started it; then its whole session goes.
        let session = proc::stat(pid).map(|s| s.session).filter(|s| *s == pid);
        // A SIGSTOPped server cannot act on SIGINT; let it run so it can shut down.
        proc::signal(pid, Signal::SIGCONT);
        let left = daemon::stop_tree_escalating(
            pid,
            session,
            &[(Signal::SIGINT, 0.6), (Signal::SIGQUIT, 0.5)],
            ctx.deadline,
            |sig| {
                let how = match sig {
                    Signal::SIGINT => "fast shutdown (SIGINT)",
                    Signal::SIGQUIT => "immediate shutdown (SIGQUIT)",
                    _ => "SIGKILL to what is left",
                };
                ctx.log.info(format!("postmaster PID {pid}: {how}"));
            },
        );
        if !left.is_empty() {
            return Err(OcfError::generic(format!("still running after stop: {}", datalayer::describe(&left))));
        }
        let _ = fs::remove_file(&state);
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let pg = Pg::from(ctx);
        if !pg.pgdata.is_dir() {
            return Err(OcfError::not_running(format!("data directory {} is not here", pg.pgdata.display())));
        }
        let state = state_file(ctx);
        let Some((pid, pf)) = find_postmaster(&pg, &state) else {
            return Err(OcfError::not_running("no postmaster runs on this data directory"));
        };
        if let Some(pf) = &pf {
            if pf.port != pg.port {
                // Another server (another port) owns the data directory; ours is not running.
                return Err(OcfError::not_running(format!(
                    "the postmaster on {} (PID {pid}) serves port {}, not {}",
                    pg.pgdata.display(),
                    pf.port,
                    pg.port
                )));
            }
        }
        if proc::stat(pid).is_some_and(|s| s.state == 'T') {
            return Err(OcfError::generic(format!("postmaster PID {pid} is stopped (SIGSTOP): it cannot serve")));
        }
        if !pg.socket().exists() {
            return Err(OcfError::generic(format!(
                "postmaster PID {pid} runs but its socket {} is missing",
                pg.socket().display()
            )));
        }
        let level = ctx.check_level();
        if level < 10 {
            return Ok(OcfStatus::Success);
        }
        let account = datalayer::account("user", &pg.user)?;
        let deadline = ctx.deadline.at_most(pg.query_timeout);
        let mut conn = connect(&pg, &account, deadline).map_err(|e| query_failed(&pg, e))?;
        conn.query("SELECT 1", deadline).map_err(|e| query_failed(&pg, e))?;
        if level >= 20 {
            health_write_read(ctx, &pg, &mut conn).map_err(|e| query_failed(&pg, e))?;
        }
        Ok(OcfStatus::Success)
    }
}

/// What postgres rejected, from its last log lines. A fault in a configuration file ends with
/// `FATAL: configuration file "F" contains errors`, F being the file with the fault (an
/// included file, postgresql.auto.conf in the data directory, or the `config` file); a bad
/// `-c` setting from the command line names no file: the parameter that passed it.
fn rejected_config(lines: &str) -> Option<Culprit> {
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

fn postgres_command(ctx: &Ctx, pg: &Pg) -> Command {
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
    if let Some(opts) = ctx.params.get("options") {
        cmd.args(opts.split_whitespace());
    }
    // The agent's environment carries every OCF_RESKEY_*: the server gets none of it.
    cmd.env_clear().env("PATH", "/usr/bin:/bin").env("PGDATA", &pg.pgdata).current_dir(&pg.pgdata);
    cmd
}

/// The socket lock file `.s.PGSQL.PORT.lock` holds the PID of its postmaster; a PID reused by
/// another program after a crash would block the start, so remove a lock no live postmaster
/// of ours holds.
fn clear_stale_socket_lock(ctx: &Ctx, pg: &Pg) {
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

fn connect(pg: &Pg, account: &Account, deadline: Deadline) -> Result<PgConn, PgError> {
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

fn ping(pg: &Pg, account: &Account, deadline: Deadline) -> Result<(), PgError> {
    connect(pg, account, deadline)?.query("SELECT 1", deadline).map(|_| ())
}

fn query_failed(pg: &Pg, e: PgError) -> OcfError {
    let what = match e {
        PgError::Timeout => format!("no answer within {} s (query_timeout)", pg.query_timeout.as_secs()),
        other => other.to_string(),
    };
    OcfError::generic(format!("PostgreSQL on {} does not answer queries: {what}", pg.socket().display()))
}

/// Depth 20: upsert this resource's row with a fresh value (committed), then read it back in a
/// second statement.
fn health_write_read(ctx: &Ctx, pg: &Pg, conn: &mut PgConn) -> Result<(), PgError> {
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
