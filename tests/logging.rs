//! Where an agent's log lines go, by the rules of ocf-shellfuncs' `ha_log` and `ha_debug`:
//! syslog when `HA_LOGFACILITY` is set (and not `none`), `HA_LOGFILE` when set, stderr only when
//! neither is, or only the terminal when stdin is one; the `ocf-exit-reason:` line always on
//! stderr. Each case runs the installed `vip` link in a private mount namespace whose /dev/log
//! is a datagram socket of the test, and counts the lines every sink received.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// What every sink received from one action.
#[derive(Debug, Default)]
struct Sinks {
    code: i32,
    stderr: Vec<String>,
    syslog: Vec<String>,
    logfile: Vec<String>,
    debuglog: Vec<String>,
    /// The terminal (stdin and stderr on a pty), when the case runs on one.
    tty: Vec<String>,
}

/// Line counts as (stderr, syslog, logfile, debuglog, tty).
type Counts = (usize, usize, usize, usize, usize);

impl Sinks {
    fn counts(&self) -> Counts {
        (self.stderr.len(), self.syslog.len(), self.logfile.len(), self.debuglog.len(), self.tty.len())
    }
}

/// One logging set-up: the variables, and whether stdin and stderr are a terminal.
struct Case {
    vars: Vec<(&'static str, String)>,
    tty: bool,
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab { dir: tempfile::tempdir().unwrap() }
    }
    fn logfile(&self) -> String {
        self.dir.path().join("ha.log").display().to_string()
    }
    fn debuglog(&self) -> String {
        self.dir.path().join("ha-debug.log").display().to_string()
    }

    /// Runs `vip validate-all` with `params` under `case` and collects every sink.
    fn run(&self, case: &Case, params: &[(&str, &str)]) -> Sinks {
        for f in [self.logfile(), self.debuglog()] {
            let _ = std::fs::remove_file(f);
        }
        let sock_path = self.dir.path().join("devlog.sock");
        let _ = std::fs::remove_file(&sock_path);
        let syslog = UnixDatagram::bind(&sock_path).unwrap();
        syslog.set_nonblocking(true).unwrap();

        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert("OCF_ROOT".into(), "/usr/lib/ocf".into());
        env.insert("OCF_RESOURCE_INSTANCE".into(), "logtest".into());
        for (k, v) in params {
            env.insert(format!("OCF_RESKEY_{k}"), v.to_string());
        }
        for (k, v) in &case.vars {
            env.insert(k.to_string(), v.clone());
        }
        let mut cmd = Command::new(agent_path("vip"));
        cmd.arg("validate-all").env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").envs(&env);
        with_private_dev_log(&mut cmd, &sock_path);

        let pty = case.tty.then(|| nix::pty::openpty(None, None).expect("openpty"));
        match &pty {
            Some(p) => {
                cmd.stdin(Stdio::from(p.slave.try_clone().unwrap()));
                cmd.stderr(Stdio::from(p.slave.try_clone().unwrap()));
            }
            None => {
                cmd.stdin(Stdio::null());
                cmd.stderr(Stdio::piped());
            }
        }
        cmd.stdout(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().unwrap();
        // Only the child holds the terminal now: once it exits, the master reads EOF (EIO).
        let master: Option<OwnedFd> = pty.map(|p| {
            drop(p.slave);
            p.master
        });
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        let started = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                panic!("vip validate-all did not finish within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut sinks = Sinks { code: status.code().unwrap_or(-1), ..Sinks::default() };
        sinks.stderr = stderr.map(|t| lines(&t.join().unwrap())).unwrap_or_default();
        if let Some(master) = master {
            sinks.tty = lines(&drain_pty(&master));
        }
        // Every datagram the agent sent is queued by the time it exited.
        let mut buf = [0u8; 8192];
        while let Ok(n) = syslog.recv(&mut buf) {
            sinks.syslog.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        sinks.logfile = lines(&std::fs::read_to_string(self.logfile()).unwrap_or_default());
        sinks.debuglog = lines(&std::fs::read_to_string(self.debuglog()).unwrap_or_default());
        sinks
    }
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim_end_matches('\r').to_string()).filter(|l| !l.is_empty()).collect()
}

/// Everything written to the terminal, read from its master side (non-blocking: the child
/// has exited, so all it wrote is there).
fn drain_pty(master: &OwnedFd) -> String {
    nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The command's /dev is a fresh tmpfs (in a mount namespace of its own) whose `log` is
/// `socket`: the agent's syslog datagrams reach the test, nothing else does.
fn with_private_dev_log(cmd: &mut Command, socket: &Path) {
    in_private_mounts(
        cmd,
        vec![
            MountStep::Tmpfs("/dev".into()),
            MountStep::Touch("/dev/log".into()),
            MountStep::Bind(socket.to_path_buf(), "/dev/log".into()),
        ],
    );
}

fn case(vars: &[(&'static str, &str)], tty: bool) -> Case {
    Case { vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(), tty }
}

fn ready(what: &str) -> bool {
    need_root(what)
}

/// A successful action that logs a warning and its result line: two lines in every sink it
/// goes to, never more.
const WARN_AND_RESULT: &[(&str, &str)] = &[("ip", "192.0.2.10"), ("not_a_parameter", "x")];

#[test]
fn log_lines_go_where_ha_log_sends_them_once() {
    if !ready("logging sinks") {
        return;
    }
    let lab = Lab::new();
    let (file, dlog) = (lab.logfile(), lab.debuglog());
    let checks: Vec<(&str, Case, Counts)> = vec![
        ("nothing set: stderr", case(&[], false), (2, 0, 0, 0, 0)),
        ("HA_LOGFACILITY only: syslog", case(&[("HA_LOGFACILITY", "daemon")], false), (0, 2, 0, 0, 0)),
        ("HA_LOGFILE only: the file", case(&[("HA_LOGFILE", &file)], false), (0, 0, 2, 0, 0)),
        (
            "both: syslog and the file",
            case(&[("HA_LOGFACILITY", "local3"), ("HA_LOGFILE", &file)], false),
            (0, 2, 2, 0, 0),
        ),
        ("facility none: stderr", case(&[("HA_LOGFACILITY", "none")], false), (2, 0, 0, 0, 0)),
        (
            "facility none and a file: the file",
            case(&[("HA_LOGFACILITY", "none"), ("HA_LOGFILE", &file)], false),
            (0, 0, 2, 0, 0),
        ),
        // What pacemaker-execd puts in an agent's environment (Debian's defaults): PCMK_* and
        // their lower-case HA_* twins, never HA_LOGFACILITY. execd logs the agent's stderr
        // itself: the line must go there only, not to syslog as well.
        (
            "as under pacemaker-execd: stderr only",
            case(
                &[
                    ("PCMK_logfacility", "daemon"),
                    ("HA_logfacility", "daemon"),
                    ("PCMK_logfile", &file),
                    ("HA_logfile", &file),
                ],
                false,
            ),
            (2, 0, 0, 0, 0),
        ),
        ("HA_DEBUGLOG also gets every line", case(&[("HA_DEBUGLOG", &dlog)], false), (2, 0, 0, 2, 0)),
        (
            "HA_DEBUGLOG the same file as HA_LOGFILE: once",
            case(&[("HA_LOGFILE", &file), ("HA_DEBUGLOG", &file)], false),
            (0, 0, 2, 0, 0),
        ),
        ("a terminal, nothing set: the terminal", case(&[], true), (0, 0, 0, 0, 2)),
        (
            "a terminal: only the terminal, whatever is set",
            case(&[("HA_LOGFACILITY", "daemon"), ("HA_LOGFILE", &file)], true),
            (0, 0, 0, 0, 2),
        ),
    ];
    for (what, c, want) in &checks {
        let got = lab.run(c, WARN_AND_RESULT);
        assert_eq!(got.code, 0, "{what}: {got:?}");
        assert_eq!(got.counts(), *want, "{what}: (stderr, syslog, logfile, debuglog, tty) {got:#?}");
    }

    // The lines themselves: tagged, in order, with the facility and severity asked for.
    let got = lab.run(&case(&[("HA_LOGFACILITY", "local3"), ("HA_LOGFILE", &file)], false), WARN_AND_RESULT);
    // local3 = 19: warning 19*8+4, info 19*8+6.
    assert!(got.syslog[0].starts_with("<156>hastack-vip(logtest)["), "{:?}", got.syslog);
    assert!(got.syslog[0].contains("WARNING: validate-all: parameter 'not_a_parameter'"), "{:?}", got.syslog);
    assert!(got.syslog[1].starts_with("<158>hastack-vip(logtest)["), "{:?}", got.syslog);
    assert!(got.syslog[1].contains("INFO: validate-all: OCF_SUCCESS"), "{:?}", got.syslog);
    assert!(got.logfile[1].contains("INFO: validate-all: OCF_SUCCESS"), "{:?}", got.logfile);
}

/// A failure: the `ocf-exit-reason:` line is always on stderr (Pacemaker reads it there) and is
/// the only line there; the ERROR line with the code and duration goes to syslog and the file,
/// as ocf_exit_reason's `__ha_log --ignore-stderr` does.
#[test]
fn the_exit_reason_is_on_stderr_once_and_the_error_line_elsewhere() {
    if !ready("logging of a failure") {
        return;
    }
    let lab = Lab::new();
    let file = lab.logfile();
    let bad = &[("ip", "not-an-address")];
    let checks: Vec<(&str, Case, Counts)> = vec![
        ("nothing set", case(&[], false), (1, 0, 0, 0, 0)),
        ("HA_LOGFACILITY", case(&[("HA_LOGFACILITY", "daemon")], false), (1, 1, 0, 0, 0)),
        ("HA_LOGFILE", case(&[("HA_LOGFILE", &file)], false), (1, 0, 1, 0, 0)),
        ("both", case(&[("HA_LOGFACILITY", "daemon"), ("HA_LOGFILE", &file)], false), (1, 1, 1, 0, 0)),
        ("a terminal", case(&[("HA_LOGFACILITY", "daemon"), ("HA_LOGFILE", &file)], true), (0, 0, 0, 0, 1)),
    ];
    for (what, c, want) in &checks {
        let got = lab.run(c, bad);
        assert_eq!(got.code, 6, "{what}: {got:?}");
        assert_eq!(got.counts(), *want, "{what}: (stderr, syslog, logfile, debuglog, tty) {got:#?}");
        let reason_line = if c.tty { &got.tty[0] } else { &got.stderr[0] };
        assert!(reason_line.starts_with("ocf-exit-reason:parameter 'ip'"), "{what}: {got:?}");
        for l in got.syslog.iter().chain(&got.logfile) {
            assert!(l.contains("ERROR: validate-all: OCF_ERR_CONFIGURED (6)") && l.contains("'ip'"), "{what}: {l}");
        }
    }
}

/// Debug lines (HA_debug) follow ha_debug: syslog, HA_DEBUGLOG, else stderr; never HA_LOGFILE.
#[test]
fn debug_lines_go_where_ha_debug_sends_them() {
    if !ready("logging of debug lines") {
        return;
    }
    let lab = Lab::new();
    let (file, dlog) = (lab.logfile(), lab.debuglog());
    let checks: Vec<(&str, Case, Counts)> = vec![
        ("off by default", case(&[], false), (2, 0, 0, 0, 0)),
        ("HA_debug=0 is off", case(&[("HA_debug", "0")], false), (2, 0, 0, 0, 0)),
        ("HA_debug=1: stderr", case(&[("HA_debug", "1")], false), (3, 0, 0, 0, 0)),
        ("with a facility: syslog", case(&[("HA_debug", "1"), ("HA_LOGFACILITY", "daemon")], false), (0, 3, 0, 0, 0)),
        // ha_debug writes no HA_LOGFILE: without a facility or HA_DEBUGLOG the debug line is
        // on stderr, the others in the file.
        (
            "with HA_LOGFILE: the file and stderr",
            case(&[("HA_debug", "1"), ("HA_LOGFILE", &file)], false),
            (1, 0, 2, 0, 0),
        ),
        (
            "with HA_LOGFILE and HA_DEBUGLOG",
            case(&[("HA_debug", "1"), ("HA_LOGFILE", &file), ("HA_DEBUGLOG", &dlog)], false),
            (0, 0, 2, 3, 0),
        ),
        ("on a terminal", case(&[("HA_debug", "1"), ("HA_LOGFILE", &file)], true), (0, 0, 0, 0, 3)),
    ];
    for (what, c, want) in &checks {
        let got = lab.run(c, WARN_AND_RESULT);
        assert_eq!(got.code, 0, "{what}: {got:?}");
        assert_eq!(got.counts(), *want, "{what}: (stderr, syslog, logfile, debuglog, tty) {got:#?}");
    }
    let got = lab.run(&case(&[("HA_debug", "1"), ("HA_LOGFACILITY", "daemon")], false), WARN_AND_RESULT);
    // daemon = 3: debug 3*8+7.
    assert!(got.syslog[0].starts_with("<31>") && got.syslog[0].contains("DEBUG: validate-all: parameters:"), "{got:?}");
}
