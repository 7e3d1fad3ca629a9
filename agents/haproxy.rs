//! HAProxy (load balancer, active on one node). There is no ClusterLabs agent for it.
//!
//! HAProxy runs in master-worker mode in the foreground (`-W -db`) in its own session: the
//! process the agent starts is the master, which survives reloads (SIGUSR2 re-executes it with
//! the same PID and start time, and old workers finish their established connections).
//!
//! Monitor depth 0: the master lives, nothing is stopped, and the stats socket answers
//! `show info`. Depth 10: `show stat`; every backend with servers must have one UP. A backend
//! with none UP is an error (1); a backend with some but not all servers DOWN is degraded (190),
//! so Pacemaker shows the risk without moving a load balancer that still serves. Servers in
//! maintenance are the administrator's choice and do not count as DOWN.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::agents::config_fault::path_after;
use crate::agents::front_service::{self as svc, ConfigFile, Instance, Launch, Probe};
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::proc;

pub struct Haproxy;

static SPEC: AgentSpec =
    AgentSpec {
        name: "haproxy",
        shortdesc: "HAProxy load balancer (master-worker)",
        longdesc: "Manages an HAProxy instance in master-worker mode, started by the agent in the foreground \
               of its own session. The configuration is checked with `haproxy -c` before start and reload \
               (a syntax error fails at once with HAProxy's message). Start returns when the stats socket \
               answers. reload re-executes the master (SIGUSR2): established connections stay with the old \
               workers until they end; Pacemaker reloads for a change of binary, stats_socket or \
               request_timeout, and a new binary restarts the master. Stop sends USR1 (soft stop), then KILL to the whole session within \
               the budget. Monitor depth 0: master identity and `show info` on the stats socket; depth 10: \
               every backend has a server UP (error 1 if none, degraded 190 if some are DOWN).",
        params: &[
            ParamSpec::string("binary")
                .default("/usr/sbin/haproxy")
                .short("haproxy binary")
                .long("Full path of the haproxy executable."),
            ParamSpec::string("configfile")
                .default("/etc/haproxy/haproxy.cfg")
                .unique()
                .short("Configuration file")
                .long("Full path of the HAProxy configuration file."),
            ParamSpec::string("pidfile").default("/run/haproxy.pid").unique().short("PID file").long(
                "Where HAProxy writes the master's PID (-p). Also recognises an instance started outside the agent.",
            ),
            ParamSpec::string("stats_socket").short("Stats socket").long(
                "The stats socket to monitor through: a path (or unix@path) or ipv4@host:port. \
             Default: the first `stats socket` of the configuration's global section.",
            ),
            ParamSpec::integer("request_timeout", Some(1), Some(300))
                .default("5")
                .short("Per-request timeout (s)")
                .long("Seconds one stats-socket request may take, within the operation's timeout."),
        ],
        actions: &[
            ActionSpec::new("start", "40s"),
            ActionSpec::new("stop", "60s"),
            ActionSpec::new("reload", "40s"),
            ActionSpec::monitor("10s", "20s"),
            ActionSpec::monitor("30s", "20s").depth(10),
            ActionSpec::new("meta-data", "5s"),
            ActionSpec::new("validate-all", "20s"),
        ],
    };

/// Where the stats socket is.
#[derive(Debug, PartialEq, Eq)]
pub enum StatsAddr {
    Unix(String),
    Tcp(String),
}

/// Parses a `stats socket` address: `/path`, `unix@/path`, `ipv4@host:port` or `host:port`.
pub fn parse_stats_addr(text: &str) -> Result<StatsAddr, String> {
    if let Some(path) = text.strip_prefix("unix@") {
        return Ok(StatsAddr::Unix(path.to_string()));
    }
    if text.starts_with('/') {
        return Ok(StatsAddr::Unix(text.to_string()));
    }
    let tcp = text.strip_prefix("ipv4@").or_else(|| text.strip_prefix("ipv6@")).unwrap_or(text);
    match tcp.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(StatsAddr::Tcp(tcp.to_string())),
        _ => Err(format!("'{text}' is not a socket path or host:port")),
    }
}

/// The address of the first `stats socket` in the global section of a configuration.
pub fn stats_socket_in_config(config: &str) -> Option<String> {
    let mut in_global = false;
    for line in config.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if is_section(first) {
            in_global = first == "global";
            continue;
        }
        if in_global && first == "stats" && words.next() == Some("socket") {
            return words.next().map(str::to_string);
        }
    }
    None
}

fn is_section(word: &str) -> bool {
    matches!(
        word,
        "global"
            | "defaults"
            | "frontend"
            | "backend"
            | "listen"
            | "userlist"
            | "peers"
            | "resolvers"
            | "mailers"
            | "program"
            | "http-errors"
            | "ring"
            | "cache"
    )
}

/// The value of one `Name: value` line of `show info`.
pub fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
}

/// One backend's servers as `show stat` reports them.
#[derive(Debug, PartialEq, Eq)]
pub struct Backend {
    pub name: String,
    pub up: Vec<String>,
    pub down: Vec<String>,
    pub maint: Vec<String>,
}

/// Parses `show stat` CSV into backends with their servers (frontends and backends without
/// servers, such as a stats page, are left out).
pub fn parse_stat(csv: &str) -> Result<Vec<Backend>, String> {
    let mut lines = csv.lines();
    let header = lines.next().and_then(|h| h.strip_prefix("# ")).ok_or("show stat gave no CSV header")?;
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| cols.iter().position(|c| *c == name).ok_or(format!("show stat has no '{name}' column"));
    let (px, sv, st) = (col("pxname")?, col("svname")?, col("status")?);
    let mut backends: Vec<Backend> = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(proxy), Some(server), Some(status)) = (f.get(px), f.get(sv), f.get(st)) else { continue };
        if *server == "FRONTEND" || *server == "BACKEND" {
            continue;
        }
        let i = match backends.iter().position(|b| b.name == *proxy) {
            Some(i) => i,
            None => {
                backends.push(Backend { name: proxy.to_string(), up: vec![], down: vec![], maint: vec![] });
                backends.len() - 1
            }
        };
        let b = &mut backends[i];
        let server = server.to_string();
        // "UP 1/3" is UP but failing checks; "DOWN 1/2" is DOWN but recovering.
        if status.starts_with("UP") || *status == "no check" || *status == "NOLB" || *status == "DRAIN" {
            b.up.push(server);
        } else if status.starts_with("MAINT") {
            b.maint.push(server);
        } else {
            b.down.push(server);
        }
    }
    Ok(backends)
}

/// The depth-10 verdict: error if a backend has no server UP, degraded if some are DOWN.
pub fn judge(backends: &[Backend]) -> OcfResult {
    let dead: Vec<String> = backends
        .iter()
        .filter(|b| b.up.is_empty())
        .map(|b| {
            format!("backend {} has no server UP ({} DOWN, {} in maintenance)", b.name, b.down.len(), b.maint.len())
        })
        .collect();
    if !dead.is_empty() {
        return Err(OcfError::generic(dead.join("; ")));
    }
    let degraded: Vec<String> = backends
        .iter()
        .filter(|b| !b.down.is_empty())
        .map(|b| format!("backend {}: {} DOWN", b.name, b.down.join(" ")))
        .collect();
    if degraded.is_empty() {
        Ok(OcfStatus::Success)
    } else {
        Err(OcfError::new(OcfStatus::Degraded, degraded.join("; ")))
    }
}

/// Sends one command to the stats socket and reads the answer, all within the deadline.
pub fn stats_command(addr: &StatsAddr, command: &str, deadline: Deadline) -> Result<String, String> {
    let timeout = || deadline.remaining().max(Duration::from_millis(1));
    let mut answer = String::new();
    let result = match addr {
        StatsAddr::Unix(path) => {
            UnixStream::connect(path).map_err(|e| format!("stats socket {path}: {e}")).and_then(|mut s| {
                s.set_read_timeout(Some(timeout())).ok();
                s.set_write_timeout(Some(timeout())).ok();
                exchange(&mut s, command, &mut answer)
            })
        }
        StatsAddr::Tcp(hostport) => {
            let sa = hostport.parse().map_err(|e| format!("stats socket {hostport}: {e}"))?;
            TcpStream::connect_timeout(&sa, timeout()).map_err(|e| format!("stats socket {hostport}: {e}")).and_then(
                |mut s| {
                    s.set_read_timeout(Some(timeout())).ok();
                    s.set_write_timeout(Some(timeout())).ok();
                    exchange(&mut s, command, &mut answer)
                },
            )
        }
    };
    result.map(|_| answer)
}

fn exchange(stream: &mut (impl Read + Write), command: &str, answer: &mut String) -> Result<(), String> {
    stream.write_all(format!("{command}\n").as_bytes()).map_err(|e| format!("stats socket: {e}"))?;
    let mut buf = Vec::new();
    match stream.read_to_end(&mut buf) {
        Ok(_) => {
            *answer = String::from_utf8_lossy(&buf).into_owned();
            Ok(())
        }
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Err("stats socket gave no answer in time".into())
        }
        Err(e) => Err(format!("stats socket: {e}")),
    }
}

fn stats_addr(ctx: &Ctx) -> OcfResult<StatsAddr> {
    let text = match ctx.params.get("stats_socket") {
        Some(s) => s.to_string(),
        None => {
            let conf = ctx.params.str("configfile");
            let config = std::fs::read_to_string(conf)
                .map_err(|e| OcfError::installed(format!("parameter 'configfile': {conf}: {e}")))?;
            // A node-local file: banned on this node, not fatal everywhere (DESIGN rule 10).
            stats_socket_in_config(&config).ok_or_else(|| {
                OcfError::args(format!(
                    "node-local configuration file {conf} has no 'stats socket' in its global section; add one or set parameter 'stats_socket': banned on this node"
                ))
            })?
        }
    };
    parse_stats_addr(&text).map_err(|e| OcfError::configured(format!("parameter 'stats_socket': {e}")))
}

/// `show info` answers and names a worker PID.
fn worker_pid(addr: &StatsAddr, deadline: Deadline) -> Result<i32, String> {
    let info = stats_command(addr, "show info", deadline)?;
    info_field(&info, "Pid")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("unexpected show info answer: {info:.80}"))
}

/// Whether `pid` has a handler for `sig` installed and does not block it (/proc/PID/status
/// SigCgt and SigBlk masks).
fn handles_signal(pid: i32, sig: Signal) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let bit = 1u64 << (sig as i32 - 1);
    mask("SigCgt:") & bit != 0 && mask("SigBlk:") & bit == 0
}

/// Whether `pid` runs the executable at `binary`'s path (a binary replaced by a package
/// upgrade shows as "PATH (deleted)" and still counts: the re-executed master loads the new one).
fn runs_binary(pid: i32, binary: &str) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else { return false };
    let exe = exe.to_string_lossy();
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe);
    std::fs::canonicalize(binary).is_ok_and(|b| b.as_os_str() == exe)
}

fn adopt(ctx: &Ctx) -> Option<i32> {
    svc::adopt_from_pidfile(ctx.params.get("pidfile"), ctx.params.str("binary"))
}

/// The configuration file, and the file haproxy's messages name (`parsing [FILE:LINE]`).
fn config_file(ctx: &Ctx) -> ConfigFile {
    ConfigFile {
        path: ctx.params.str("configfile").into(),
        named: |m| path_after(m, "parsing [", ':').or_else(|| path_after(m, "configuration file : ", ' ')),
    }
}

fn check_command(ctx: &Ctx) -> Command {
    let mut cmd = Command::new(ctx.params.str("binary"));
    cmd.args(["-c", "-f"]).arg(ctx.params.str("configfile"));
    cmd
}

impl Agent for Haproxy {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        svc::require_absolute("binary", ctx.params.str("binary"))?;
        svc::require_absolute("configfile", ctx.params.str("configfile"))?;
        svc::require_absolute("pidfile", ctx.params.str("pidfile"))?;
        if let Some(s) = ctx.params.get("stats_socket") {
            parse_stats_addr(s).map_err(|e| OcfError::configured(format!("parameter 'stats_socket': {e}")))?;
        }
        if level >= crate::ocf::agent::VALIDATE_HOST {
            svc::require_executable("binary", ctx.params.str("binary"))?;
            svc::require_path("configfile", ctx.params.str("configfile"), false)?;
            stats_addr(ctx)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("haproxy", ctx);
        if let svc::State::Running { .. } = svc::state(&inst, adopt(ctx)) {
            return self.monitor(ctx);
        }
        svc::clear_orphans(&inst, ctx)?;
        svc::config_check("haproxy", &config_file(ctx), &mut check_command(ctx), ctx)?;
        let addr = stats_addr(ctx)?;
        if let StatsAddr::Unix(path) = &addr {
            // Debian's unit creates /run/haproxy (RuntimeDirectory); without systemd we do.
            if let Some(dir) = std::path::Path::new(path).parent() {
                let _ = std::fs::create_dir_all(dir);
            }
        }
        let mut cmd = Command::new(ctx.params.str("binary"));
        cmd.args(["-W", "-db", "-f"]).arg(ctx.params.str("configfile")).arg("-p").arg(ctx.params.str("pidfile"));
        let launch = Launch {
            cmd,
            logs: Vec::new(),
            ports: Vec::new(),
            fatal: &[],
            quote: &[],
            rejects: None,
            ready: Box::new(|tree: &[i32]| {
                // The master plus a worker, and the worker answers on the stats socket.
                if tree.len() < 2 {
                    return Probe::NotYet;
                }
                // Ready to serve, and to be stopped: the master handles signals (one sent before
                // that is lost).
                match worker_pid(&addr, Deadline::after(Duration::from_millis(500))) {
                    Ok(_) if handles_signal(tree[0], Signal::SIGUSR1) => Probe::Ready,
                    _ => Probe::NotYet,
                }
            }),
        };
        svc::launch(&inst, launch, ctx)?;
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("haproxy", ctx);
        svc::stop(&inst, adopt(ctx), Signal::SIGUSR1, ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("haproxy", ctx);
        let main = svc::check_running(&inst, adopt(ctx), "haproxy")?;
        let addr = stats_addr(ctx)?;
        worker_pid(&addr, svc::request_deadline(ctx))
            .map_err(|e| OcfError::generic(format!("haproxy master {} runs but {e}", main.pid)))?;
        if ctx.check_level() >= 10 {
            let csv = stats_command(&addr, "show stat", svc::request_deadline(ctx)).map_err(OcfError::generic)?;
            return judge(&parse_stat(&csv).map_err(OcfError::generic)?);
        }
        Ok(OcfStatus::Success)
    }

    /// Graceful reload: check the configuration, SIGUSR2 to the master, and wait until a new
    /// worker answers on the stats socket. Old workers keep their established connections.
    fn reload(&self, ctx: &Ctx) -> OcfResult {
        let inst = Instance::new("haproxy", ctx);
        let main = svc::check_running(&inst, adopt(ctx), "haproxy")
            .map_err(|e| OcfError::generic(format!("cannot reload: {}", e.reason)))?;
        svc::config_check("haproxy", &config_file(ctx), &mut check_command(ctx), ctx)?;
        // Pacemaker also reloads (the meta-data claims OCF 1.0) when a parameter that is not
        // unique changes. A re-executed master keeps its binary: a new one needs a new master.
        let binary = ctx.params.str("binary");
        if !runs_binary(main.pid, binary) {
            ctx.log.info(format!("haproxy master {} does not run {binary}: restarting it", main.pid));
            self.stop(ctx)?;
            return self.start(ctx);
        }
        let addr = stats_addr(ctx)?;
        let old = proc::descendants(main.pid);
        proc::signal(main.pid, Signal::SIGUSR2);
        let renewed = ctx.deadline.poll(Duration::from_millis(20), || {
            if !main.is_alive() {
                return Some(Err(OcfError::generic("haproxy master died during reload")));
            }
            // Done when a new worker answers and the re-executed master handles signals again
            // (a stop sent before that is lost).
            match worker_pid(&addr, Deadline::after(Duration::from_millis(500))) {
                Ok(pid) if !old.contains(&pid) && handles_signal(main.pid, Signal::SIGUSR1) => Some(Ok(pid)),
                _ => None,
            }
        });
        match renewed {
            Some(Ok(pid)) => {
                ctx.log
                    .info(format!("haproxy reloaded: new worker {pid}; old workers {old:?} finish their connections"));
                Ok(OcfStatus::Success)
            }
            Some(Err(e)) => Err(e),
            None => Err(OcfError::generic("haproxy did not bring up a new worker within the reload timeout")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_stats_socket_of_the_global_section() {
        let cfg = "global\n\tlog /dev/log local0\n\tstats socket /run/haproxy/admin.sock mode 660 level admin\n\
                   defaults\n\tmode http\nlisten stats\n\tstats socket /elsewhere\n";
        assert_eq!(stats_socket_in_config(cfg).as_deref(), Some("/run/haproxy/admin.sock"));
        assert_eq!(stats_socket_in_config("defaults\n  stats socket /x\n"), None);
        assert_eq!(
            stats_socket_in_config("global # comment\n  stats socket ipv4@127.0.0.1:9999 level admin\n").as_deref(),
            Some("ipv4@127.0.0.1:9999")
        );
    }

    #[test]
    fn parses_stats_addresses() {
        assert_eq!(parse_stats_addr("/run/x.sock"), Ok(StatsAddr::Unix("/run/x.sock".into())));
        assert_eq!(parse_stats_addr("unix@/run/x.sock"), Ok(StatsAddr::Unix("/run/x.sock".into())));
        assert_eq!(parse_stats_addr("ipv4@127.0.0.1:9999"), Ok(StatsAddr::Tcp("127.0.0.1:9999".into())));
        assert!(parse_stats_addr("relative.sock").is_err());
    }

    #[test]
    fn reads_show_info() {
        let info = "Name: HAProxy\nVersion: 2.6.12\nPid: 4242\nUptime_sec: 3\n";
        assert_eq!(info_field(info, "Pid"), Some("4242"));
        assert_eq!(info_field(info, "Missing"), None);
    }

    const STAT: &str =
        "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
fe,FRONTEND,,,0,0,100,0,0,0,0,0,0,,,,,OPEN,
web,s1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1
web,s2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1
web,s3,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1
web,BACKEND,0,0,0,0,10,0,0,0,0,0,,0,0,0,0,UP,2
api,a1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/3,1
api,a2,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,1
stats,BACKEND,0,0,0,0,10,0,0,0,0,0,,0,0,0,0,UP,0
";

    #[test]
    fn judges_backends() {
        let b = parse_stat(STAT).unwrap();
        assert_eq!(b.len(), 2, "frontends and server-less backends are left out");
        assert_eq!(
            b[0],
            Backend { name: "web".into(), up: vec!["s1".into()], down: vec!["s2".into()], maint: vec!["s3".into()] }
        );
        assert_eq!(b[1].up.len(), 2);
        let e = judge(&b).unwrap_err();
        assert_eq!(e.status, OcfStatus::Degraded);
        assert!(e.reason.contains("backend web: s2 DOWN"), "{}", e.reason);
        let dead = parse_stat(&STAT.replace(",UP,1\n", ",DOWN,1\n")).unwrap();
        let e = judge(&dead).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrGeneric);
        assert!(e.reason.contains("backend web has no server UP"), "{}", e.reason);
        assert_eq!(judge(&parse_stat(&STAT.replace("DOWN,1", "UP,1")).unwrap()), Ok(OcfStatus::Success));
        assert!(parse_stat("garbage").is_err());
    }
}
