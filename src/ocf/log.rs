//! Agent logging, routed as ocf-shellfuncs' `ha_log` and `ha_debug` route it, so that a line
//! lands in each log once:
//! - `HA_LOGFACILITY` other than `none`: syslog; `HA_LOGFILE`: that file, time-stamped;
//!   `HA_DEBUGLOG`: that file too (unless it is `HA_LOGFILE`);
//! - stderr only when neither `HA_LOGFACILITY` nor `HA_LOGFILE` is set: pacemaker-execd logs an
//!   agent's stderr itself. (It exports `PCMK_logfacility` and lower-case `HA_logfacility`, never
//!   `HA_LOGFACILITY`, so under Pacemaker's defaults a line goes to stderr only, as a shell
//!   agent's does.)
//! - stdin a terminal (someone runs the agent by hand): the terminal only;
//! - debug lines only with `HA_debug` (not `0`), to syslog and `HA_DEBUGLOG`, else stderr, never
//!   `HA_LOGFILE`; `OCF_TRACE_RA=1` adds trace lines, to `OCF_TRACE_FILE` when set;
//! - the line that goes with an `ocf-exit-reason:` (which is always on stderr) never goes to
//!   stderr itself, as ocf_exit_reason's `__ha_log --ignore-stderr`.
//!
//! One line per event, tagged `hastack-<agent>(<resource>)[pid]`, with the action named.

use std::fs::OpenOptions;
use std::io::{IsTerminal, Write};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::ocf::env::OcfEnv;
use crate::ocf::params::is_true;

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn label(self) -> &'static str {
        match self {
            Level::Trace => "TRACE",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }
    /// syslog severity
    fn severity(self) -> u8 {
        match self {
            Level::Trace | Level::Debug => 7,
            Level::Info => 6,
            Level::Warn => 4,
            Level::Error => 3,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Logger {
    tag: String,
    action: String,
    started: Instant,
    debug: bool,
    trace: bool,
    trace_file: Option<PathBuf>,
    sinks: Sinks,
    /// In a detached child whose stderr is /dev/null: what would go to stderr only goes to syslog.
    detached: bool,
}

/// Where lines go besides stderr, decided once per action from the environment.
#[derive(Clone, Debug, Default)]
struct Sinks {
    syslog_facility: Option<u8>,
    logfile: Option<PathBuf>,
    debuglog: Option<PathBuf>,
    /// stdin is a terminal: everything to stderr, nothing elsewhere (ha_log's `tty` test). Only
    /// looked at when another sink is set: without one, stderr is the answer either way.
    terminal: bool,
    /// The facility Pacemaker logs to (`PCMK_logfacility`, default daemon): where a detached
    /// child's lines go when stderr would have been their only sink.
    pacemaker_facility: u8,
}

impl Sinks {
    fn from_env(env: &OcfEnv) -> Sinks {
        let mut sinks = Sinks {
            syslog_facility: env.logging_var("HA_LOGFACILITY").and_then(facility_code),
            logfile: env.logging_var("HA_LOGFILE").map(PathBuf::from),
            debuglog: env.logging_var("HA_DEBUGLOG").map(PathBuf::from),
            terminal: false,
            pacemaker_facility: env
                .logging_var("PCMK_logfacility")
                .or_else(|| env.logging_var("HA_logfacility"))
                .and_then(facility_code)
                .unwrap_or(DAEMON),
        };
        if sinks.syslog_facility.is_some() || sinks.logfile.is_some() || sinks.debuglog.is_some() {
            sinks.terminal = std::io::stdin().is_terminal();
        }
        sinks
    }
}

impl Logger {
    pub fn new(agent: &str, env: &OcfEnv, action: &str) -> Self {
        let resource = env.resource();
        let tag = if resource.is_empty() {
            format!("hastack-{agent}[{}]", std::process::id())
        } else {
            format!("hastack-{agent}({resource})[{}]", std::process::id())
        };
        let trace =
            env.logging_var("OCF_TRACE_RA").is_some_and(is_true) || env.logging_var("trace_ra").is_some_and(is_true);
        Logger {
            tag,
            action: action.to_string(),
            started: Instant::now(),
            debug: trace || env.logging_var("HA_debug").is_some_and(debug_on),
            trace,
            trace_file: env.logging_var("OCF_TRACE_FILE").map(PathBuf::from),
            sinks: Sinks::from_env(env),
            detached: false,
        }
    }

    /// This logger for a detached child of the action (`sys::proc::detach`), called in the child:
    /// tagged with the child's PID, and with syslog (Pacemaker's facility) in place of stderr,
    /// which is /dev/null there and no longer read by pacemaker-execd anyway.
    pub fn detached(&self) -> Logger {
        let mut log = self.clone();
        if let Some((name, _)) = log.tag.rsplit_once('[') {
            log.tag = format!("{name}[{}]", std::process::id());
        }
        log.detached = true;
        // Its stdin is no terminal (someone's terminal gets nothing from a detached child).
        log.sinks.terminal = false;
        log
    }

    /// A logger that only writes to stderr (CLI use, tests).
    pub fn stderr(agent: &str, action: &str) -> Self {
        Self::new(agent, &OcfEnv::default(), action)
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    pub fn trace(&self, msg: impl AsRef<str>) {
        self.log(Level::Trace, msg.as_ref())
    }
    pub fn debug(&self, msg: impl AsRef<str>) {
        self.log(Level::Debug, msg.as_ref())
    }
    pub fn info(&self, msg: impl AsRef<str>) {
        self.log(Level::Info, msg.as_ref())
    }
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.log(Level::Warn, msg.as_ref())
    }
    pub fn error(&self, msg: impl AsRef<str>) {
        self.log(Level::Error, msg.as_ref())
    }

    pub fn log(&self, level: Level, msg: &str) {
        self.emit(level, msg, true)
    }

    /// The line that goes with an `ocf-exit-reason:` line: the caller prints the reason on
    /// stderr, so this one goes only to syslog and the files.
    pub fn log_beside_exit_reason(&self, level: Level, msg: &str) {
        self.emit(level, msg, false)
    }

    fn emit(&self, level: Level, msg: &str, stderr_allowed: bool) {
        if level == Level::Trace && !self.trace || level == Level::Debug && !self.debug {
            return;
        }
        let line = format!("{}: {}: {}: {}", self.tag, level.label(), self.action, msg.replace('\n', " | "));
        if level == Level::Trace {
            if let Some(path) = &self.trace_file {
                append(path, &format!("{} {line}\n", timestamp()));
                return;
            }
        }
        let sinks = &self.sinks;
        if sinks.terminal {
            if stderr_allowed {
                to_stderr(&line);
            }
            return;
        }
        if let Some(facility) = sinks.syslog_facility {
            send_syslog(facility, level, &line);
        }
        // ha_debug writes debug lines to HA_DEBUGLOG, never to HA_LOGFILE; ha_log writes the
        // others to both (once when they are the same file).
        let verbose = level <= Level::Debug;
        let logfile = if verbose { None } else { sinks.logfile.as_ref() };
        if let Some(path) = logfile {
            append(path, &format!("{} {line}\n", timestamp()));
        }
        if let Some(path) = sinks.debuglog.as_ref().filter(|d| Some(*d) != logfile) {
            append(path, &format!("{} {line}\n", timestamp()));
        }
        let elsewhere =
            sinks.syslog_facility.is_some() || if verbose { sinks.debuglog.is_some() } else { logfile.is_some() };
        if stderr_allowed && !elsewhere {
            if self.detached {
                send_syslog(sinks.pacemaker_facility, level, &line);
            } else {
                to_stderr(&line);
            }
        }
    }
}

/// `HA_debug` as ha_debug reads it: on unless empty or `0` (explicit negatives are off too).
fn debug_on(value: &str) -> bool {
    !matches!(value.trim().to_ascii_lowercase().as_str(), "" | "0" | "no" | "false" | "off" | "n")
}

/// A closed stderr must not fail the action.
fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn append(path: &PathBuf, text: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(text.as_bytes());
    }
}

const DAEMON: u8 = 3;

/// syslog(3) facility numbers for the names HA_LOGFACILITY takes; `none` or unknown disables
/// (an unknown name would lose every line to a failing `logger`; stderr keeps them).
fn facility_code(name: &str) -> Option<u8> {
    let n = name.trim().to_ascii_lowercase();
    let code = match n.as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        _ => match n.strip_prefix("local").and_then(|d| d.parse::<u8>().ok()) {
            Some(d) if d <= 7 => 16 + d,
            _ => return None,
        },
    };
    Some(code)
}

/// One line to syslog at Pacemaker's facility (`PCMK_logfacility` in the process environment,
/// else daemon), at `level`'s severity: for a detached child outside the OCF logger (fence_ups).
pub fn to_pacemaker_syslog(level: Level, line: &str) {
    let facility = std::env::var("PCMK_logfacility").ok().and_then(|f| facility_code(&f)).unwrap_or(DAEMON);
    send_syslog(facility, level, line);
}

/// One datagram to the local syslog socket, in the traditional `<PRI>TAG: message` form.
fn send_syslog(facility: u8, level: Level, line: &str) {
    let pri = u16::from(facility) * 8 + u16::from(level.severity());
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.send_to(format!("<{pri}>{line}").as_bytes(), "/dev/log");
    }
}

/// UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`, without a date crate.
pub fn timestamp() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, now.subsec_millis())
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility_code("daemon"), Some(3));
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("none"), None);
        assert_eq!(facility_code("local8"), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }

    fn env(pairs: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn logfile_gets_lines_and_debug_is_gated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ha.log");
        let p = path.display().to_string();
        let log = Logger::new("vip", &env(&[("HA_LOGFILE", &p), ("OCF_RESOURCE_INSTANCE", "r1")]), "start");
        log.info("hello");
        log.debug("hidden");
        log.log_beside_exit_reason(Level::Error, "why");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("hastack-vip(r1)["), "{text}");
        assert!(text.contains("INFO: start: hello"), "{text}");
        assert!(text.contains("ERROR: start: why"), "{text}");
        assert!(!text.contains("hidden"));
    }

    #[test]
    fn only_the_upper_case_ha_variables_count() {
        // What Pacemaker exports: none of these is HA_LOGFACILITY or HA_LOGFILE.
        let s = Sinks::from_env(&env(&[
            ("PCMK_logfacility", "daemon"),
            ("HA_logfacility", "daemon"),
            ("PCMK_logfile", "/x"),
            ("HA_logfile", "/x"),
        ]));
        assert!(s.syslog_facility.is_none() && s.logfile.is_none() && s.debuglog.is_none());
        let s = Sinks::from_env(&env(&[("HA_LOGFACILITY", "none"), ("HA_LOGFILE", "")]));
        assert!(s.syslog_facility.is_none() && s.logfile.is_none());
    }

    #[test]
    fn debug_switch() {
        assert!(debug_on("1") && debug_on("yes") && debug_on("pacemaker-execd"));
        assert!(!debug_on("0") && !debug_on("") && !debug_on("no") && !debug_on("false"));
    }
}
