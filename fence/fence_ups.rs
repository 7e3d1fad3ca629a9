//! `fence_ups`: the entry point. Reads the arguments (stdin when argv is empty, options
//! otherwise), checks them, runs the action, prints fence-agents' messages and exits 0, 1 or 2.

use std::ffi::OsString;
use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::args::{self, Args};
use super::config::{self, Config, Password, Transport};
use super::log::FenceLog;
use super::nut::NutUps;
use super::serial::SerialLine;
use super::smart_ups::SmartUps;
use super::ups::{self, Change, Power, Ups};
use crate::ocf::Deadline;

pub const NAME: &str = "fence_ups";

const EXIT_OK: i32 = 0;
const EXIT_ERROR: i32 = 1;
const EXIT_OFF: i32 = 2;

/// Room for connecting, the handshake and the identity check, on top of power_timeout.
const CONNECT_BUDGET: Duration = Duration::from_secs(10);
/// How long to wait for another process's lock on the serial port.
const LOCK_WAIT: Duration = Duration::from_secs(5);

pub fn main(argv: &[OsString]) -> i32 {
    let args = match read_args(argv) {
        Ok(a) => a,
        Err(e) => return fail(&FenceLog::quiet(), &e),
    };
    let log = match FenceLog::new(args.flag("verbose"), args.get("debug_file")) {
        Ok(l) => l,
        Err(e) => return fail(&FenceLog::quiet(), &e),
    };
    if args.flag("help") {
        print!("{}", super::metadata::usage(NAME));
        return EXIT_OK;
    }
    if args.flag("version") {
        println!("{NAME} (hastack) {}", env!("CARGO_PKG_VERSION"));
        return EXIT_OK;
    }
    let action = config::action(&args);
    if let Err(e) = unknown_options(&args, action.as_deref().ok() == Some("validate-all"), &log) {
        return fail(&log, &e);
    }
    match action {
        Ok(a) if a == "metadata" => {
            print!("{}", super::metadata::render(NAME));
            return EXIT_OK;
        }
        Ok(_) => {}
        Err(e) => return fail(&log, &e),
    }
    let cfg = match config::check(&args) {
        Ok(c) => c,
        Err(e) => return fail(&log, &e),
    };
    if cfg.action == "validate-all" {
        return EXIT_OK;
    }
    match run(&cfg, &log) {
        Ok(code) => code,
        Err(e) => fail(&log, &format!("{e:#}")),
    }
}

/// Names on stdin that fence_ups does not know: probably typos (`ups_seiral` would silently turn
/// the identity check off). validate-all, which `pcs stonith create` and `stonith_admin
/// --validate` run, refuses them; every other action warns in fencing.py's words and goes on, as
/// fence-agents do (a fence must not fail over a stray name). Only the name is shown: the value
/// of a mistyped password name is a password, and the fencer logs every stderr line.
fn unknown_options(args: &Args, validating: bool, log: &FenceLog) -> Result<(), String> {
    let hint = |name: &str| crate::suggest::hint(name, args::known_names());
    if validating && !args.unknown.is_empty() {
        let names: Vec<String> = args.unknown.iter().map(|n| format!("'{n}'{}", hint(n))).collect();
        return Err(format!("Parse error: unknown option {}", names.join(", ")));
    }
    for name in &args.unknown {
        log.warn(format!("Parse error: Ignoring unknown option '{name}'{}", hint(name)));
    }
    Ok(())
}

fn fail(log: &FenceLog, msg: &str) -> i32 {
    log.error(format!("Failed: {msg}"));
    EXIT_ERROR
}

fn read_args(argv: &[OsString]) -> Result<Args, String> {
    let rest: Vec<String> = argv.iter().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    if !rest.is_empty() {
        return args::parse_argv(&rest);
    }
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).map_err(|e| format!("cannot read the arguments on stdin: {e}"))?;
    args::parse_stdin(&input)
}

fn run(cfg: &Config, log: &FenceLog) -> Result<i32> {
    if matches!(cfg.action.as_str(), "off" | "reboot") && !cfg.delay.is_zero() {
        log.debug(format!("waiting {:?} (delay) before fencing", cfg.delay));
        std::thread::sleep(cfg.delay);
    }
    let deadline = Deadline::after(CONNECT_BUDGET + cfg.power_timeout);
    let connect = deadline.at_most(CONNECT_BUDGET);
    match &cfg.transport {
        Transport::ApcSmart { serial_port } => {
            let line = SerialLine::open(serial_port, connect.at_most(LOCK_WAIT))?;
            conclude(cfg, SmartUps::new(line, log), deadline, log)
        }
        Transport::Nut { host, port, ups_name, username, password } => {
            let password = resolve_password(password, connect)?;
            conclude(cfg, NutUps::new(host, *port, ups_name, username.clone(), password, log), deadline, log)
        }
    }
}

/// What `act` leaves to do once the answer is known.
enum Then {
    Exit(i32),
    /// A reboot whose off is confirmed: the node is fenced; its load goes back on after the
    /// answer.
    PowerOnAfterReboot,
}

fn conclude<U: Ups>(cfg: &Config, mut ups: U, deadline: Deadline, log: &FenceLog) -> Result<i32> {
    match act(cfg, &mut ups, deadline, log)? {
        Then::Exit(code) => Ok(code),
        Then::PowerOnAfterReboot => {
            power_on_after_answer(cfg, ups, log);
            println!("Success: Rebooted");
            Ok(EXIT_OK)
        }
    }
}

/// Turns the load back on from a detached process, which holds the UPS (the serial port's locks)
/// until it is done, so that the fencer's answer waits only for the confirmed off: a reboot costs
/// no more than an off (README). The child is bounded by power_timeout and logs its outcome
/// (syslog, debug_file). If it cannot be started, the load goes back on before the answer.
fn power_on_after_answer<U: Ups>(cfg: &Config, ups: U, log: &FenceLog) {
    let budget = CONNECT_BUDGET + cfg.power_timeout;
    let mut slot = Some(ups);
    let job = || {
        let log = log.detached();
        let mut ups = slot.take().expect("the UPS is handed to the child once");
        match ups::set_power(&mut ups, Power::On, cfg.power_timeout, Deadline::after(budget), &log) {
            Ok(_) => log.info(format!("reboot: the load of {} is back on", ups.describe())),
            Err(e) => log.warn(format!("reboot: the load is off but could not be turned back on: {e:#}")),
        }
        // Released here (the UUCP lock file, the upsd session): the child ends with _exit.
        drop(ups);
        EXIT_OK
    };
    let mut ups = match crate::sys::proc::detach(job) {
        Ok(pid) => {
            let mut ups = slot.take().expect("still ours");
            match ups.hand_over(pid.as_raw()) {
                Ok(()) => log.debug(format!("turning the load of {} back on from process {pid}", ups.describe())),
                Err(e) => {
                    log.warn(format!("process {pid} turns the load back on, but the port's lock still names us: {e:#}"))
                }
            }
            // The child owns the connection now: dropping it here would remove its lock file
            // and log its upsd session out.
            std::mem::forget(ups);
            return;
        }
        Err(e) => {
            log.debug(format!("cannot turn the load back on in the background ({e}): doing it before answering"));
            slot.take().expect("still ours")
        }
    };
    if let Err(e) = ups::set_power(&mut ups, Power::On, cfg.power_timeout, Deadline::after(budget), log) {
        log.warn(format!("the load is off but could not be turned back on: {e:#}"));
    }
}

/// Runs password_script as an argument vector (no shell) within the deadline.
fn resolve_password(p: &Password, deadline: Deadline) -> Result<Option<String>> {
    match p {
        Password::None => Ok(None),
        Password::Value(v) => Ok(Some(v.clone())),
        Password::Script(argv) => {
            let mut cmd = std::process::Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            let out =
                crate::sys::proc::run(&mut cmd, deadline).map_err(|e| anyhow!("password_script {}: {e}", argv[0]))?;
            if !out.success() {
                // Its stderr may be useful; its stdout is the secret and is never shown.
                bail!("password_script {} failed ({}): {}", argv[0], out.status, out.stderr.trim());
            }
            let pw = out.stdout.lines().next().unwrap_or("").to_string();
            if pw.is_empty() {
                bail!("password_script {} printed no password", argv[0]);
            }
            Ok(Some(pw))
        }
    }
}

fn act(cfg: &Config, ups: &mut dyn Ups, deadline: Deadline, log: &FenceLog) -> Result<Then> {
    let connect = deadline.at_most(CONNECT_BUDGET);
    ups::check_identity(ups, cfg.ups_serial.as_deref(), connect, log)?;
    match cfg.action.as_str() {
        "status" => {
            let p = ups.power(connect)?;
            println!("Status: {}", if p == Power::On { "ON" } else { "OFF" });
            Ok(Then::Exit(if p == Power::On { EXIT_OK } else { EXIT_OFF }))
        }
        "monitor" | "list" => {
            let p = ups.power(connect).context("monitor")?;
            log.debug(format!("{} is reachable; load {p:?}", ups.describe()));
            if cfg.action == "list" {
                for h in &cfg.hostlist {
                    println!("{h},");
                }
            }
            Ok(Then::Exit(EXIT_OK))
        }
        "off" => {
            match ups::set_power(ups, Power::Off, cfg.power_timeout, deadline, log)? {
                Change::Done => println!("Success: Powered OFF"),
                Change::Already => println!("Success: Already OFF"),
            }
            Ok(Then::Exit(EXIT_OK))
        }
        "on" => {
            match ups::set_power(ups, Power::On, cfg.power_timeout, deadline, log)? {
                Change::Done => println!("Success: Powered ON"),
                Change::Already => println!("Success: Already ON"),
            }
            Ok(Then::Exit(EXIT_OK))
        }
        "reboot" => {
            // Success needs only the off part (FenceAgentAPI): the node is fenced once its load
            // is confirmed off. The on follows the answer.
            ups::set_power(ups, Power::Off, cfg.power_timeout, deadline, log)?;
            Ok(Then::PowerOnAfterReboot)
        }
        other => bail!("Unrecognised action '{other}'"),
    }
}
