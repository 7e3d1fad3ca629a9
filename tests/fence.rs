//! fence_ups against its peers: the project's APC Smart simulator on a pseudo-terminal (its
//! fidelity checked with cluster-glue's apcsmart plugin), NUT's real upsd with the dummy-ups
//! and apcsmart drivers, Pacemaker's real fencer, and fence-agents' metadata.rng.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hastack::fence::sim::{Event, Fault, SimConfig, UpsSim};

use crate::support::*;

const SERIAL: &str = "QS0000000001";
const METADATA_RNG: &str = "/usr/share/cluster/relaxng/metadata.rng";

fn fence_ups() -> PathBuf {
    install_root().join("usr/sbin/fence_ups")
}

/// Runs fence_ups as Pacemaker does: no argv, `name=value` lines on stdin.
fn run_stdin(params: &[(&str, &str)]) -> Outcome {
    let input: String = params.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    run_with_input(&mut Command::new(fence_ups()), Some(&input), Duration::from_secs(60))
}

fn run_argv(args: &[&str]) -> Outcome {
    run_with_deadline(Command::new(fence_ups()).args(args), Duration::from_secs(60))
}

#[track_caller]
fn stderr_has(out: &Outcome, needle: &str) {
    assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
}

/// A simulated UPS whose link lives in a temp dir (removed with it).
struct Sim {
    sim: UpsSim,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Sim {
    type Target = UpsSim;
    fn deref(&self) -> &UpsSim {
        &self.sim
    }
}

impl Sim {
    fn new(serial: &str, fault: Fault) -> Sim {
        let dir = tempfile::Builder::new().prefix("hst-ups").tempdir().unwrap();
        // Traversable by NUT's drivers, which run as user nut.
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let config = SimConfig { serial: serial.into(), fault, ..SimConfig::default() };
        let sim = UpsSim::start(&dir.path().join("ups"), config).unwrap();
        Sim { sim, _dir: dir }
    }
    fn port(&self) -> &str {
        self.sim.link().to_str().unwrap()
    }
    fn count(&self, event: &Event) -> usize {
        self.events().iter().filter(|(_, e)| e == event).count()
    }
    /// The times the byte `b` arrived.
    fn times_of(&self, b: u8) -> Vec<Instant> {
        self.received().iter().filter(|(_, x)| *x == b).map(|(t, _)| *t).collect()
    }
}

fn need_pty_tests() -> bool {
    // The UUCP lock lives in /var/lock, which needs root.
    need_root("fence_ups serial tests (UUCP lock in /var/lock)")
}

#[test]
fn fence_ups_is_installed_by_the_registry() {
    let out = run_with_deadline(Command::new(bin()).arg("list"), Duration::from_secs(5));
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["fence_ups", "fence", "/usr/sbin/fence_ups"]),
        "{}",
        out.stdout
    );
    assert!(fence_ups().exists());
}

#[test]
fn off_status_on_reboot_over_the_simulated_ups() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let base = [
        ("serial_port", sim.port()),
        ("ups_serial", SERIAL),
        ("nodename", "node2"),
        ("nodeid", "2"),
        ("port", "node2"),
    ];
    let with = |action: &'static str| -> Vec<(&str, &str)> {
        let mut v = base.to_vec();
        v.push(("action", action));
        v
    };

    let status = run_stdin(&with("status"));
    status.expect(0);
    assert_eq!(status.stdout.trim(), "Status: ON");
    assert!(status.stderr.is_empty(), "quiet on success (the fencer logs stderr as warnings): {}", status.stderr);

    sim.clear_log();
    let off = run_stdin(&with("off"));
    off.expect(0);
    assert_eq!(off.stdout.trim(), "Success: Powered OFF");
    assert!(off.stderr.is_empty(), "{}", off.stderr);
    assert!(!sim.load_on());
    assert_eq!(sim.count(&Event::LoadOff), 1);
    let z = sim.times_of(b'Z');
    assert_eq!(z.len(), 2, "two Z: {}", sim.transcript());
    assert!(z[1] - z[0] >= Duration::from_millis(1500), "Z's {:?} apart", z[1] - z[0]);
    assert!(sim.transcript().starts_with("Y n Q ~"), "handshake, identity, state first: {}", sim.transcript());
    assert!(!sim.transcript().contains('-'), "no EEPROM writes: {}", sim.transcript());

    let status = run_stdin(&with("status"));
    status.expect(2);
    assert_eq!(status.stdout.trim(), "Status: OFF");
    assert_eq!(run_stdin(&with("off")).expect(0).stdout.trim(), "Success: Already OFF");

    let on = run_stdin(&with("on"));
    on.expect(0);
    assert_eq!(on.stdout.trim(), "Success: Powered ON");
    assert!(sim.load_on());
    let n = sim.times_of(0x0e);
    assert!(n.len() == 2 && n[1] - n[0] >= Duration::from_millis(1500), "{}", sim.transcript());

    sim.clear_log();
    let reboot = run_stdin(&with("reboot"));
    reboot.expect(0);
    let answered = Instant::now();
    assert_eq!(reboot.stdout.trim(), "Success: Rebooted");
    assert!(reboot.stderr.is_empty(), "{}", reboot.stderr);
    // The fencer meanwhile: status waits for the port, which the power-on still holds, and then
    // sees the load back on.
    let status = run_stdin(&with("status"));
    status.expect(0);
    assert_eq!(status.stdout.trim(), "Status: ON");
    let events = sim.events();
    let kinds: Vec<&Event> = events.iter().map(|(_, e)| e).collect();
    assert_eq!(kinds, vec![&Event::LoadOff, &Event::LoadOn], "{}", sim.transcript());
    assert!(events[1].0 > answered, "the answer came with the load confirmed off, before it went back on");
    assert_eq!(sim.count(&Event::EepromWrite), 0);
}

/// A reboot answers once the off is confirmed; a detached process turns the load back on, holding
/// the port (its UUCP lock names it) until it is done, logs how it went, and lets go.
#[test]
fn reboot_answers_at_the_confirmed_off_and_powers_on_afterwards() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let dir = tempfile::tempdir().unwrap();
    let debug = dir.path().join("debug.log");
    let lock = hastack::fence::serial::lock_file_for(sim.link(), Path::new("/var/lock"));
    let params = |action: &'static str| {
        vec![
            ("action", action),
            ("serial_port", sim.port()),
            ("ups_serial", SERIAL),
            ("power_timeout", "3"),
            ("debug_file", debug.to_str().unwrap()),
        ]
    };
    let reboot = run_stdin(&params("reboot"));
    reboot.expect(0);
    assert_eq!(reboot.stdout.trim(), "Success: Rebooted");
    // The power-on holds the port (its ^N bytes are 1.6 s apart): the lock names a live
    // fence_ups, not the one that answered (that one has exited).
    let owner = std::fs::read(&lock).ok().and_then(|c| hastack::fence::serial::parse_lock_pid(&c));
    let pid = owner.expect("the power-on holds the port's UUCP lock");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(String::from_utf8_lossy(&cmdline).contains("fence_ups"), "lock held by {pid}");
    wait_for("the load to come back on", Duration::from_secs(15), || sim.load_on());
    wait_for("the power-on to let the port go", Duration::from_secs(15), || !lock.exists());
    wait_for("the power-on's log line", Duration::from_secs(5), || {
        std::fs::read_to_string(&debug).unwrap().contains("is back on")
    });
    assert_eq!(sim.count(&Event::LoadOff), 1);
    assert_eq!(sim.count(&Event::LoadOn), 1);

    // The UPS stops answering after the off: the answer is still the confirmed off; the power-on
    // gives up within power_timeout and says so.
    sim.clear_log();
    let sim_ref: &UpsSim = &sim;
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_for("the load to go off", Duration::from_secs(15), || !sim_ref.load_on());
            sim_ref.set_fault(Fault::Silent);
        });
        run_stdin(&params("reboot")).expect(0);
    });
    wait_for("the power-on to give up", Duration::from_secs(30), || {
        std::fs::read_to_string(&debug).unwrap().contains("could not be turned back on")
    });
    assert!(!sim.load_on());
    wait_for("the port to be let go", Duration::from_secs(15), || !lock.exists());
}

#[test]
fn command_line_options_and_list_monitor() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    run_argv(&["-o", "status", "--serial-port", sim.port()]).expect(0);
    run_argv(&["--action=monitor", &format!("--serial-port={}", sim.port())]).expect(0);
    let list = run_argv(&["-o", "list", "--serial-port", sim.port(), "--hostlist", "node1,node2"]);
    list.expect(0);
    assert_eq!(list.stdout, "node1,\nnode2,\n");
    run_argv(&["-o", "status", "--serial-port", sim.port(), "-n", "node3", "--hostlist", "node1,node2"]).expect(1);
    let help = run_argv(&["-h"]);
    help.expect(0);
    assert!(help.stdout.contains("--serial-port=[path]") && help.stdout.contains("validate-all"), "{}", help.stdout);
    assert!(run_argv(&["-V"]).expect(0).stdout.starts_with("fence_ups "));
    let bad = run_argv(&["-o", "status", "--bogus"]);
    bad.expect(1);
    stderr_has(&bad, "--bogus");
    // Verbose: the exchange is logged, to stderr and to the debug file.
    let dir = tempfile::tempdir().unwrap();
    let debug = dir.path().join("debug.log");
    let v = run_argv(&["-o", "status", "--serial-port", sim.port(), "-v", "-D", debug.to_str().unwrap()]);
    v.expect(0);
    stderr_has(&v, "DEBUG: ");
    assert!(std::fs::read_to_string(&debug).unwrap().contains("< \"SM\""));
    assert_eq!(sim.count(&Event::LoadOff), 0, "status, monitor and list never switch the load");
}

#[test]
fn ups_sim_command_runs_its_hook_on_load_off_and_cleans_up() {
    if !need_pty_tests() {
        return;
    }
    let dir = tempfile::Builder::new().prefix("hst-ups").tempdir().unwrap();
    let link = dir.path().join("ups");
    let marker = dir.path().join("node2-cut");
    let mut sim = ChildGuard(
        Command::new(bin())
            .args(["ups-sim", "--link", link.to_str().unwrap(), "--serial", "QS42", "--on-load-off", "touch"])
            .arg(&marker)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut events = BufReader::new(sim.0.stdout.take().unwrap()).lines();
    assert!(events.next().unwrap().unwrap().starts_with("ready "));
    // `delay` holds the off back before anything is sent.
    let out = run_argv(&["-o", "off", "--serial-port", link.to_str().unwrap(), "--ups-serial", "QS42", "--delay", "1"]);
    out.expect(0);
    assert!(out.elapsed >= Duration::from_millis(2500), "1 s delay + 1.6 s between the Z's: {:?}", out.elapsed);
    assert_eq!(events.next().unwrap().unwrap(), "load off");
    wait_for("the --on-load-off command", Duration::from_secs(5), || marker.exists());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sim.pid()), nix::sys::signal::Signal::SIGTERM).unwrap();
    wait_for("ups-sim to exit", Duration::from_secs(5), || sim.0.try_wait().unwrap().is_some());
    assert!(!link.exists(), "the link goes with the simulator");
}

#[test]
fn another_ups_serial_number_is_refused_without_touching_the_load() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new("QS9999999999", Fault::None);
    let out = run_stdin(&[("action", "off"), ("serial_port", sim.port()), ("ups_serial", SERIAL)]);
    out.expect(1);
    stderr_has(&out, "Failed: ");
    stderr_has(&out, "'QS9999999999'");
    stderr_has(&out, SERIAL);
    assert!(sim.load_on());
    assert!(!sim.transcript().contains('Z'), "{}", sim.transcript());
}

#[test]
fn silent_and_garbled_lines_fail_fast_with_the_reason() {
    if !need_pty_tests() {
        return;
    }
    let silent = Sim::new(SERIAL, Fault::Silent);
    let out = run_stdin(&[("action", "off"), ("serial_port", silent.port())]);
    out.expect(1);
    stderr_has(&out, "no answer from the UPS");
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);

    let garbled = Sim::new(SERIAL, Fault::Garbled);
    let out = run_stdin(&[("action", "status"), ("serial_port", garbled.port())]);
    out.expect(1);
    stderr_has(&out, "does not speak APC Smart");
    assert!(garbled.load_on());
}

#[test]
fn na_refusal_fails_and_slow_or_chatty_lines_still_work() {
    if !need_pty_tests() {
        return;
    }
    let na = Sim::new(SERIAL, Fault::NotAvailable);
    let out = run_stdin(&[("action", "off"), ("serial_port", na.port())]);
    out.expect(1);
    stderr_has(&out, "NA");
    assert!(na.load_on());

    // Alert characters before and inside every reply are taken out of the stream.
    let chatty = Sim::new(SERIAL, Fault::Alerts);
    run_stdin(&[("action", "off"), ("serial_port", chatty.port()), ("ups_serial", SERIAL)]).expect(0);
    assert!(!chatty.load_on());
    run_stdin(&[("action", "status"), ("serial_port", chatty.port())]).expect(2);

    let slow = Sim::new(SERIAL, Fault::Slow);
    let out = run_stdin(&[("action", "off"), ("serial_port", slow.port())]);
    out.expect(0);
    assert!(!slow.load_on());
}

#[test]
fn power_timeout_bounds_an_unconfirmed_off() {
    if !need_pty_tests() {
        return;
    }
    // The UPS takes the first Z, then goes silent: the load-off cannot be confirmed.
    let sim = Sim::new(SERIAL, Fault::None);
    let sim_ref: &UpsSim = &sim;
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_for("the first Z", Duration::from_secs(10), || sim_ref.transcript().contains('Z'));
            sim_ref.set_fault(Fault::Silent);
        });
        let out = run_stdin(&[("action", "off"), ("serial_port", sim.port()), ("power_timeout", "3")]);
        out.expect(1);
        stderr_has(&out, "Timed out waiting to power OFF");
        assert!(out.elapsed < Duration::from_secs(3 + 10), "{:?}", out.elapsed);
    });
}

#[test]
fn serial_lock_waits_for_a_live_owner_and_recovers_a_stale_one() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let lock = hastack::fence::serial::lock_file_for(sim.link(), Path::new("/var/lock"));
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Remove(lock.clone());

    // A live owner: fence_ups waits, then fails naming it.
    let owner = ChildGuard(Command::new("sleep").arg("60").spawn().unwrap());
    std::fs::write(&lock, format!("{:>10}\n", owner.pid())).unwrap();
    let out = run_stdin(&[("action", "status"), ("serial_port", sim.port())]);
    out.expect(1);
    stderr_has(&out, &format!("locked by process {}", owner.pid()));
    assert_eq!(sim.received().len(), 0, "nothing sent while the port is someone else's");

    // An agent SIGKILLed at its timeout (as Pacemaker does) leaves its lock file behind.
    std::fs::remove_file(&lock).unwrap();
    sim.set_fault(Fault::Silent);
    let mut victim = ChildGuard(
        Command::new(fence_ups())
            .args(["-o", "status", "--serial-port", sim.port()])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the agent to lock the port", Duration::from_secs(5), || lock.exists());
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    assert!(lock.exists(), "a SIGKILLed agent cannot remove its lock");
    sim.set_fault(Fault::None);
    run_stdin(&[("action", "status"), ("serial_port", sim.port())]).expect(0);
    assert!(!lock.exists(), "the stale lock was taken over and released");
}

/// On a fresh /run without /run/lock (containers, the lab's nodes: /var/lock dangles) fence_ups
/// makes it as Debian does at boot (1777); where no lock directory can be made it warns and holds
/// the port with flock and TIOCEXCL alone. Both in a mount namespace with a tmpfs on /run.
#[test]
fn a_fresh_run_without_run_lock_does_not_stop_fence_ups() {
    if !need_pty_tests() {
        return;
    }
    if std::fs::read_link("/var/lock").ok().as_deref() != Some(Path::new("/run/lock"))
        && !skip_or_fail("/var/lock is not Debian's link to /run/lock")
    {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let script = r#""$0" -o status --serial-port "$1"; rc=$?; stat -c 'run/lock %a %U' /run/lock; exit $rc"#;
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).arg(fence_ups()).arg(sim.port());
    in_private_mounts(&mut cmd, vec![MountStep::Tmpfs("/run".into())]);
    let out = run_with_deadline(&mut cmd, Duration::from_secs(60));
    out.expect(0);
    assert_eq!(out.stdout, "Status: ON\nrun/lock 1777 root\n");
    assert!(out.stderr.is_empty(), "no warning when the lock directory could be made: {}", out.stderr);

    // A file where /run/lock should be: no UUCP lock, a warning, and the status all the same.
    let mut cmd = Command::new(fence_ups());
    cmd.args(["-o", "status", "--serial-port", sim.port()]);
    in_private_mounts(&mut cmd, vec![MountStep::Tmpfs("/run".into()), MountStep::Touch("/run/lock".into())]);
    let out = run_with_deadline(&mut cmd, Duration::from_secs(60));
    out.expect(0);
    assert_eq!(out.stdout.trim(), "Status: ON");
    stderr_has(&out, "no UUCP lock for");
    stderr_has(&out, "flock and TIOCEXCL only");
}

#[test]
fn bad_input_exits_1_naming_the_problem_and_validate_all_touches_nothing() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let p = sim.port();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("action", "off")], "serial_port"),
        (&[("action", "off"), ("transport", "apcsmart")], "serial_port is required"),
        (&[("action", "off"), ("transport", "nut"), ("ups_name", "u")], "parameter ip"),
        (&[("action", "off"), ("ip", "127.0.0.1")], "ups_name"),
        (&[("action", "off"), ("serial_port", p), ("ip", "127.0.0.1"), ("ups_name", "u")], "both transports"),
        (&[("action", "off"), ("serial_port", p), ("login", "fence"), ("passwd", "x")], "both transports"),
        (
            &[("action", "off"), ("transport", "apcsmart"), ("serial_port", p), ("ups_name", "u")],
            "belongs to transport nut",
        ),
        (
            &[("action", "off"), ("serial_port", p), ("hostlist", "node1,node2"), ("plug", "node3")],
            "unknown plug 'node3'",
        ),
        (&[("action", "off"), ("serial_port", p), ("power_timeout", "soon")], "power_timeout"),
        (&[("action", "off"), ("serial_port", p), ("verbose", "maybe")], "verbose"),
        (&[("action", "frobnicate"), ("serial_port", p)], "Unrecognised action 'frobnicate'"),
    ];
    for (params, needle) in cases {
        for action in [None, Some("validate-all")] {
            let mut params = params.to_vec();
            if let Some(a) = action {
                // validate-all checks the device, not the target (Pacemaker passes a placeholder).
                if params.iter().any(|(k, v)| (*k == "action" && *v == "frobnicate") || *k == "plug") {
                    continue;
                }
                params.push(("action", a));
            }
            let out = run_stdin(&params);
            assert_eq!(out.code, 1, "{params:?}: {}", out.stderr);
            stderr_has(&out, "ERROR: Failed: ");
            stderr_has(&out, needle);
        }
    }
    let ok = run_stdin(&[("action", "validate-all"), ("serial_port", p), ("hostlist", "node1"), ("plug", "node1")]);
    ok.expect(0);
    assert!(ok.stderr.is_empty(), "a good configuration validates without noise: {}", ok.stderr);
    assert_eq!(sim.received().len(), 0, "no command reached the UPS: {}", sim.transcript());
    assert!(sim.load_on());
}

/// A mistyped name (`ups_seiral`) would silently turn the identity check off: validate-all
/// (pcs, stonith_admin --validate) refuses it, the other actions warn in fencing.py's words and go
/// on. What Pacemaker sends on its own never warns.
#[test]
fn unknown_options_fail_validate_all_and_warn_on_other_actions() {
    if !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let p = sim.port();
    let typo = run_stdin(&[("action", "validate-all"), ("serial_port", p), ("ups_seiral", "QS-SECRET")]);
    typo.expect(1);
    stderr_has(&typo, "ERROR: Failed: Parse error: unknown option 'ups_seiral' (did you mean 'ups_serial'?)");
    let two = run_stdin(&[("action", "validate-all"), ("serial_prot", p), ("ups_seiral", "x")]);
    two.expect(1);
    stderr_has(&two, "unknown option 'serial_prot' (did you mean 'serial_port'?), 'ups_seiral'");

    let status = run_stdin(&[("action", "status"), ("serial_port", p), ("ups_seiral", "QS-SECRET")]);
    status.expect(0);
    assert_eq!(status.stdout, "Status: ON\n");
    stderr_has(&status, "WARNING: Parse error: Ignoring unknown option 'ups_seiral' (did you mean 'ups_serial'?)");
    assert!(!status.stderr.contains("QS-SECRET"), "the value of an unknown name may be a secret: {}", status.stderr);

    // What the fencer adds (FenceAgentAPI, lib/fencing/st_actions.c) is never reported.
    let pacemaker = run_stdin(&[
        ("action", "status"),
        ("serial_port", p),
        ("nodename", "node2"),
        ("nodeid", "2"),
        ("port", "node2"),
        ("plug", "node2"),
        ("pcmk_host_list", "node2"),
    ]);
    pacemaker.expect(0);
    assert!(pacemaker.stderr.is_empty(), "{}", pacemaker.stderr);

    // A person typing options gets an error for every action, as fence-agents' getopt gives.
    for action in ["validate-all", "status"] {
        let argv = run_argv(&["-o", action, "--serial-port", p, "--ups-seiral=X"]);
        argv.expect(1);
        stderr_has(&argv, "unrecognized option '--ups-seiral' (did you mean 'ups-serial'?)");
    }
    assert_eq!(sim.count(&Event::LoadOff), 0);
}

/// Odd values get words that name the problem, never a panic or an errno's name.
#[test]
fn odd_values_are_named_clearly() {
    let out = run_argv(&["-o", "validate-all", "--ip=h", "--ups-name=u", "-l", "f", "--password-script", " "]);
    out.expect(1);
    stderr_has(&out, "Failed: parameter password_script is blank");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let out = run_stdin(&[
        ("action", "validate-all"),
        ("ip", "h"),
        ("ups_name", "u"),
        ("username", "f"),
        ("password_script", "\" \""),
    ]);
    out.expect(1);
    stderr_has(&out, "password_script is blank");

    let out = run_stdin(&[("action", "validate-all"), ("serial_port", "/dev/ttyS0"), ("power_timeout", "86401")]);
    out.expect(1);
    stderr_has(&out, "parameter power_timeout: 86401 seconds is more than the limit of 86400 (a day)");
    let out = run_stdin(&[("action", "validate-all"), ("serial_port", "/dev/ttyS0"), ("delay", "-5")]);
    out.expect(1);
    stderr_has(&out, "parameter delay: -5 is negative");

    if !need_pty_tests() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ups");
    std::fs::write(&file, "").unwrap();
    for (port, words) in [
        ("/dev/null", "serial port /dev/null is not a serial line (a terminal device"),
        (file.to_str().unwrap(), "is a regular file, not a serial line"),
    ] {
        let out = run_stdin(&[("action", "status"), ("serial_port", port)]);
        out.expect(1);
        stderr_has(&out, words);
        assert!(!out.stderr.contains("typewriter"), "{}", out.stderr);
    }
}

#[test]
fn metadata_is_valid_for_fence_agents_and_pacemaker_and_pcs() {
    if !need_program("xmllint", "libxml2-utils") || !need_program("stonith_admin", "pacemaker-cli-utils") {
        return;
    }
    if !Path::new(METADATA_RNG).exists() && !skip_or_fail("fence-agents' metadata.rng missing (fence-agents)") {
        return;
    }
    if !need_root("installing fence_ups under /usr/sbin") || !need_program("pcs", "pcs") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let meta = run_stdin(&[("action", "metadata")]);
    meta.expect(0);
    assert_eq!(run_argv(&["-o", "meta-data"]).expect(0).stdout, meta.stdout);
    let xml = dir.path().join("fence_ups.xml");
    std::fs::write(&xml, &meta.stdout).unwrap();
    let rng = run_with_deadline(
        Command::new("xmllint").args(["--noout", "--relaxng", METADATA_RNG, xml.to_str().unwrap()]),
        Duration::from_secs(10),
    );
    assert_eq!(rng.code, 0, "metadata.rng: {}", rng.stderr);

    crate::conformance::install_system_links();
    let admin = run_with_deadline(
        Command::new("stonith_admin").args(["--metadata", "-a", "fence_ups"]),
        Duration::from_secs(20),
    );
    admin.expect(0);
    assert!(admin.stdout.contains("name=\"serial_port\""), "{}", admin.stdout);
    let installed = run_with_deadline(Command::new("stonith_admin").arg("--list-installed"), Duration::from_secs(20));
    assert!(installed.stdout.lines().any(|l| l.trim() == "fence_ups"), "{}", installed.stdout);

    let good = run_with_deadline(
        Command::new("stonith_admin").args([
            "--validate",
            "-a",
            "fence_ups",
            "-o",
            "serial_port=/dev/ttyS0",
            "-o",
            "hostlist=node2",
        ]),
        Duration::from_secs(20),
    );
    good.expect(0);
    let bad = run_with_deadline(
        Command::new("stonith_admin").args([
            "--validate",
            "-a",
            "fence_ups",
            "-o",
            "serial_port=/dev/ttyS0",
            "-o",
            "ip=127.0.0.1",
        ]),
        Duration::from_secs(20),
    );
    assert_ne!(bad.code, 0, "{}", bad.stdout);
    assert!((bad.stdout.clone() + &bad.stderr).contains("both transports"), "{}\n{}", bad.stdout, bad.stderr);
    let typo = run_with_deadline(
        Command::new("stonith_admin").args([
            "--validate",
            "-a",
            "fence_ups",
            "-o",
            "serial_port=/dev/ttyS0",
            "-o",
            "ups_seiral=QS1",
        ]),
        Duration::from_secs(20),
    );
    assert_ne!(typo.code, 0, "stonith_admin --validate accepted a mistyped parameter: {}", typo.stdout);
    assert!(
        (typo.stdout.clone() + &typo.stderr).contains("unknown option 'ups_seiral'"),
        "{}\n{}",
        typo.stdout,
        typo.stderr
    );

    // pcs creates the device offline in a CIB file, checking parameters against the metadata.
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, sh("cibadmin", &["--empty"])).unwrap();
    let c = cib.to_str().unwrap();
    let create = run_with_deadline(
        Command::new("pcs").args([
            "-f",
            c,
            "stonith",
            "create",
            "ups-node2",
            "fence_ups",
            "serial_port=/dev/ttyS0",
            "ups_serial=QS1",
            "hostlist=node2",
            "pcmk_host_list=node2",
        ]),
        Duration::from_secs(60),
    );
    create.expect(0);
    let text = std::fs::read_to_string(&cib).unwrap();
    assert!(text.contains("type=\"fence_ups\"") && text.contains("value=\"/dev/ttyS0\""), "{text}");
    let typo = run_with_deadline(
        Command::new("pcs").args(["-f", c, "stonith", "create", "ups-x", "fence_ups", "serial_prot=/dev/ttyS0"]),
        Duration::from_secs(60),
    );
    assert_ne!(typo.code, 0, "pcs rejects a parameter the metadata lacks");
    assert!(typo.stderr.contains("serial_prot"), "{}", typo.stderr);
    // Forced past its metadata check, pcs asked for the agent's validation shows its verdict.
    let forced = run_with_deadline(
        Command::new("pcs").args([
            "-f",
            c,
            "stonith",
            "create",
            "ups-y",
            "fence_ups",
            "serial_port=/dev/ttyS0",
            "ups_seiral=QS1",
            "--force",
            "--agent-validation",
        ]),
        Duration::from_secs(60),
    );
    assert!(
        forced.stderr.contains("Validation result from agent")
            && forced.stderr.contains("unknown option 'ups_seiral' (did you mean 'ups_serial'?)"),
        "{}",
        forced.stderr
    );
}

#[test]
fn cluster_glue_apcsmart_plugin_drives_the_simulator() {
    if !need_pty_tests() || !need_program("stonith", "cluster-glue") {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let tty = format!("ttydev={}", sim.port());
    let stonith = |args: &[&str]| {
        let mut full = vec!["-t", "apcsmart", tty.as_str(), "hostlist=node2"];
        full.extend_from_slice(args);
        run_with_deadline(Command::new("stonith").args(&full), Duration::from_secs(60))
    };
    stonith(&["-S"]).expect(0);
    stonith(&["-T", "off", "node2"]).expect(0);
    assert!(!sim.load_on(), "the reference plugin turned the simulated load off: {}", sim.transcript());
    assert_eq!(sim.count(&Event::LoadOff), 1);
    let z = sim.times_of(b'Z');
    assert_eq!(z.len(), 2);
    assert!(z[1] - z[0] >= Duration::from_millis(1500));
    // What the plugin does that fence_ups does not: it walks the EEPROM delays with '-'.
    assert!(sim.count(&Event::EepromWrite) > 0);
    let t = sim.transcript();
    assert!(t.starts_with("Y Y p - Y p"), "{t}");
    assert!(t.contains("Y Z Z Y ~"), "off: smart mode, Z twice, then register 1: {t}");
    stonith(&["-T", "on", "node2"]).expect(0);
    assert!(sim.load_on());
    // fence_ups and the reference agree on the state.
    run_stdin(&[("action", "status"), ("serial_port", sim.port())]).expect(0);

    sim.set_fault(Fault::Silent);
    assert_ne!(stonith(&["-S"]).code, 0, "a silent UPS fails the reference too");
}

/// cluster-glue's reset (what Pacemaker's `reboot` runs through fence_legacy) is `S` and, on line
/// power, `@000`: the simulator hibernates as NUT documents a "new" model doing it, after the
/// grace period it takes from `p` (020 s, the smallest, which the plugin selects), and wakes up by
/// itself. bench/fence.sh measures this reset against fence_ups's reboot.
#[test]
fn cluster_glue_apcsmart_reset_hibernates_the_simulated_ups() {
    if !need_pty_tests() || !need_program("stonith", "cluster-glue") {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    let tty = format!("ttydev={}", sim.port());
    let out = run_with_deadline(
        Command::new("stonith").args(["-t", "apcsmart", tty.as_str(), "hostlist=node2", "-T", "reset", "node2"]),
        Duration::from_secs(90),
    );
    out.expect(0);
    let at = sim.times_of(b'@');
    assert_eq!(at.len(), 1, "S refused on line power, then @000: {}", sim.transcript());
    assert!(sim.transcript().contains("S @ 0 0 0"), "{}", sim.transcript());
    let off = sim.events().into_iter().find(|(_, e)| *e == Event::LoadOff).expect("the load went off").0;
    assert!(off - at[0] >= Duration::from_secs(20), "after the 20 s grace period: {:?}", off - at[0]);
    wait_for("the UPS to wake up by itself", Duration::from_secs(10), || sim.load_on());
    assert_eq!(sim.count(&Event::LoadOn), 1);
    // What the plugin reads while it waits: register 3's sleep bit (8).
    assert!(sim.transcript().contains('8'), "{}", sim.transcript());
}

// ---- NUT -----------------------------------------------------------------------------------

/// NUT's upsd on 127.0.0.1 with one driver, config and state in a temp dir owned by `nut`.
struct Upsd {
    dir: tempfile::TempDir,
    port: u16,
    ups: String,
    driver: Option<ChildGuard>,
    _upsd: ChildGuard,
}

const NUT_PASSWORD: &str = "s3cret pass";

impl Upsd {
    fn start(ups: &str, driver: &str, driver_port: &str, dev_file: Option<&str>) -> Upsd {
        let dir = tempfile::Builder::new().prefix("hst-nut").tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        std::fs::write(d.join("nut.conf"), "MODE=standalone\n").unwrap();
        std::fs::write(d.join("ups.conf"), format!("[{ups}]\n  driver = {driver}\n  port = {driver_port}\n")).unwrap();
        std::fs::write(d.join("upsd.conf"), format!("LISTEN 127.0.0.1 {port}\nMAXAGE 5\n")).unwrap();
        std::fs::write(
            d.join("upsd.users"),
            format!("[fence]\n  password = \"{NUT_PASSWORD}\"\n  instcmds = load.off load.on\n[admin]\n  password = admin\n  actions = SET\n"),
        )
        .unwrap();
        if let Some(content) = dev_file {
            std::fs::write(d.join(driver_port), content).unwrap();
        }
        sh("chown", &["-R", "nut:nut", d.to_str().unwrap()]);
        let env = |c: &mut Command| {
            c.env("NUT_CONFPATH", d).env("NUT_STATEPATH", d);
        };
        let log = |name: &str| std::fs::File::create(d.join(name)).unwrap();
        let mut drv = Command::new(format!("/lib/nut/{driver}"));
        drv.args(["-a", ups, "-F", "-u", "nut"]).stdout(log("driver.log")).stderr(log("driver.err"));
        env(&mut drv);
        let driver = ChildGuard(drv.spawn().unwrap());
        let mut upsd = Command::new("/lib/nut/upsd");
        upsd.args(["-F", "-u", "nut", "-D"]).stdout(log("upsd.out")).stderr(log("upsd.log"));
        env(&mut upsd);
        let upsd = ChildGuard(upsd.spawn().unwrap());
        let server = Upsd { dir, port, ups: ups.to_string(), driver: Some(driver), _upsd: upsd };
        // Ready when the driver has told upsd its commands (it sends variables first).
        wait_for("upsd to list load.off for the UPS", Duration::from_secs(20), || {
            server.commands().contains("load.off")
        });
        server
    }

    /// Sends lines on a fresh connection; returns one reply line each (empty if none).
    fn ask(&self, lines: &[&str]) -> Vec<String> {
        let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) else { return vec![] };
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        lines
            .iter()
            .map(|l| {
                let _ = w.write_all(format!("{l}\n").as_bytes());
                let mut reply = String::new();
                let _ = r.read_line(&mut reply);
                reply.trim_end().to_string()
            })
            .collect()
    }

    /// `LIST CMD <ups>`: the instant commands upsd offers for the UPS.
    fn commands(&self) -> String {
        let Ok(s) = TcpStream::connect(("127.0.0.1", self.port)) else { return String::new() };
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut w = s.try_clone().unwrap();
        let _ = w.write_all(format!("LIST CMD {}\n", self.ups).as_bytes());
        let mut all = String::new();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { break };
            let end = line.starts_with("END LIST") || line.starts_with("ERR");
            all.push_str(&line);
            all.push('\n');
            if end {
                break;
            }
        }
        all
    }

    /// Plays the UPS's part dummy-ups cannot: the load's state, set through upsd.
    fn set_status(&self, status: &str) {
        let replies =
            self.ask(&["USERNAME admin", "PASSWORD admin", &format!("SET VAR {} ups.status \"{status}\"", self.ups)]);
        assert!(replies.last().is_some_and(|r| r.starts_with("OK")), "SET VAR: {replies:?}");
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("upsd.log")).unwrap_or_default()
    }

    fn params<'a>(&'a self, port: &'a str, action: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("action", action),
            ("ip", "127.0.0.1"),
            ("ipport", port),
            ("ups_name", self.ups.as_str()),
            ("username", "fence"),
            ("password", NUT_PASSWORD),
        ]
    }
}

impl Drop for Upsd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("upsd log:\n{}", self.log());
            for f in ["driver.log", "driver.err", "upsd.out"] {
                eprintln!("{f}:\n{}", std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default());
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn need_nut() -> bool {
    need_root("NUT's upsd and drivers (run as user nut)")
        && (Path::new("/lib/nut/upsd").exists()
            || skip_or_fail("NUT's upsd is not installed (Debian package nut-server)"))
}

const DUMMY_DEV: &str = "ups.status: OL\nups.serial: NUT000123\n";

#[test]
fn nut_load_off_is_confirmed_by_ups_status() {
    if !need_nut() {
        return;
    }
    let upsd = Upsd::start("fake", "dummy-ups", "fake.dev", Some(DUMMY_DEV));
    let port = upsd.port.to_string();
    let status = run_stdin(&upsd.params(&port, "status"));
    status.expect(0);
    assert_eq!(status.stdout.trim(), "Status: ON");

    std::thread::scope(|s| {
        // The UPS's part: when upsd has passed load.off to the driver, the load goes off.
        s.spawn(|| {
            wait_for("upsd to pass load.off on", Duration::from_secs(20), || {
                upsd.log().contains("did load.off on fake")
            });
            upsd.set_status("OFF");
        });
        let mut params = upsd.params(&port, "off");
        params.push(("ups_serial", "NUT000123"));
        params.push(("nodename", "node2"));
        let off = run_stdin(&params);
        off.expect(0);
        assert_eq!(off.stdout.trim(), "Success: Powered OFF");
        assert!(off.stderr.is_empty(), "{}", off.stderr);
    });
    assert_eq!(upsd.log().matches("did load.off on fake").count(), 1, "dummy-ups needs one request");
    assert!(!upsd.log().contains(NUT_PASSWORD), "the password never reaches a log");
    run_stdin(&upsd.params(&port, "status")).expect(2);

    // dummy-ups has no load.on: upsd's ERR is reported with what it means.
    upsd.set_status("OFF");
    let on = run_stdin(&upsd.params(&port, "on"));
    on.expect(1);
    stderr_has(&on, "CMD-NOT-SUPPORTED");
}

/// Through NUT a reboot also answers at the confirmed off; the detached power-on goes on with the
/// same upsd session and logs what upsd said (dummy-ups has no load.on).
#[test]
fn nut_reboot_answers_at_the_off_and_the_power_on_reports_in_the_debug_file() {
    if !need_nut() {
        return;
    }
    let upsd = Upsd::start("fake", "dummy-ups", "fake.dev", Some(DUMMY_DEV));
    let port = upsd.port.to_string();
    let dir = tempfile::tempdir().unwrap();
    let debug = dir.path().join("debug.log");
    std::thread::scope(|s| {
        s.spawn(|| {
            wait_for("upsd to pass load.off on", Duration::from_secs(20), || {
                upsd.log().contains("did load.off on fake")
            });
            upsd.set_status("OFF");
        });
        let mut params = upsd.params(&port, "reboot");
        params.push(("debug_file", debug.to_str().unwrap()));
        let reboot = run_stdin(&params);
        reboot.expect(0);
        assert_eq!(reboot.stdout.trim(), "Success: Rebooted");
        assert!(reboot.stderr.is_empty(), "{}", reboot.stderr);
    });
    wait_for("the power-on's outcome in the debug file", Duration::from_secs(30), || {
        std::fs::read_to_string(&debug).unwrap().contains("could not be turned back on")
    });
    let text = std::fs::read_to_string(&debug).unwrap();
    assert!(text.contains("CMD-NOT-SUPPORTED"), "{text}");
    assert!(!text.contains(NUT_PASSWORD));
}

#[test]
fn nut_errors_wrong_password_unknown_ups_stale_driver_and_no_confirmation() {
    if !need_nut() {
        return;
    }
    let mut upsd = Upsd::start("fake", "dummy-ups", "fake.dev", Some(DUMMY_DEV));
    let port = upsd.port.to_string();

    let mut wrong = upsd.params(&port, "off");
    wrong.retain(|(k, _)| *k != "password");
    wrong.push(("password", "not-it"));
    let out = run_stdin(&wrong);
    out.expect(1);
    stderr_has(&out, "ACCESS-DENIED");
    stderr_has(&out, "password");
    assert!(!out.stderr.contains("not-it"), "the password is never printed: {}", out.stderr);

    // The password from a program run without a shell (the argument is not split by a shell).
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("pw");
    std::fs::write(&script, "#!/bin/sh\nprintf '%s\\n' \"$1 $2\"\n").unwrap();
    sh("chmod", &["755", script.to_str().unwrap()]);
    let pw_script = format!("{} {NUT_PASSWORD}", script.display());
    let mut via_script = upsd.params(&port, "status");
    via_script.retain(|(k, _)| *k != "password");
    via_script.push(("password_script", &pw_script));
    run_stdin(&via_script).expect(0);

    let mut unknown = upsd.params(&port, "status");
    unknown.retain(|(k, _)| *k != "ups_name");
    unknown.push(("ups_name", "nosuch"));
    let out = run_stdin(&unknown);
    out.expect(1);
    stderr_has(&out, "UNKNOWN-UPS");

    // Nobody turns the load off: the agent gives up at power_timeout, not before, not much after.
    let mut p = upsd.params(&port, "off");
    p.push(("power_timeout", "3"));
    let out = run_stdin(&p);
    out.expect(1);
    stderr_has(&out, "Timed out waiting to power OFF");
    assert!(out.elapsed >= Duration::from_secs(3) && out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);

    // The driver hangs: after MAXAGE (5 s) upsd calls its data stale.
    let driver_pid = nix::unistd::Pid::from_raw(upsd.driver.as_ref().unwrap().pid());
    nix::sys::signal::kill(driver_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    wait_for("upsd to call the data stale", Duration::from_secs(20), || {
        upsd.ask(&["GET VAR fake ups.status"]).last().is_some_and(|r| r.contains("DATA-STALE"))
    });
    let out = run_stdin(&upsd.params(&port, "status"));
    let _ = nix::sys::signal::kill(driver_pid, nix::sys::signal::Signal::SIGCONT);
    out.expect(1);
    stderr_has(&out, "DATA-STALE");
    stderr_has(&out, "stale data");

    // The driver is gone: upsd has no connection to it.
    drop(upsd.driver.take());
    let out = run_stdin(&upsd.params(&port, "status"));
    out.expect(1);
    stderr_has(&out, "DRIVER-NOT-CONNECTED");

    // upsd itself unreachable.
    let closed = free_port().to_string();
    let out = run_stdin(&upsd.params(&closed, "status"));
    out.expect(1);
    stderr_has(&out, "cannot connect to upsd");
}

#[test]
fn nut_apcsmart_driver_gets_load_off_twice_and_cuts_the_simulated_ups() {
    if !need_nut() || !need_pty_tests() {
        return;
    }
    let sim = Sim::new(SERIAL, Fault::None);
    // The driver runs as nut: the pty must be its to open.
    let slave = std::fs::canonicalize(sim.link()).unwrap();
    sh("chown", &["nut", slave.to_str().unwrap()]);
    let upsd = Upsd::start("real", "apcsmart", sim.port(), None);
    let port = upsd.port.to_string();
    let mut params = upsd.params(&port, "off");
    params.push(("ups_serial", SERIAL));
    let off = run_stdin(&params);
    off.expect(0);
    assert!(!sim.load_on(), "{}", sim.transcript());
    let log = upsd.log();
    assert_eq!(
        log.matches("did load.off on real").count(),
        2,
        "the apcsmart driver acts on the second request:\n{log}"
    );
    let z = sim.times_of(b'Z');
    assert!(z.len() >= 2 && z[z.len() - 1] - z[z.len() - 2] >= Duration::from_millis(1500), "{}", sim.transcript());
    run_stdin(&upsd.params(&port, "status")).expect(2);
}

// ---- Pacemaker's fencer -------------------------------------------------------------------

/// `pacemaker-fenced --stand-alone` in a network namespace of its own: its IPC sockets are
/// abstract, so the namespace keeps it apart from any other fencer on the machine.
struct Fencer {
    ns: Netns,
    _daemon: ChildGuard,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Fencer {
    fn start() -> Fencer {
        let ns = Netns::new("fd");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("fenced.log");
        let daemon = ChildGuard(
            Command::new("ip")
                .args(["netns", "exec", &ns.name, "/usr/lib/pacemaker/pacemaker-fenced", "--stand-alone", "-l"])
                .arg(&log)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let f = Fencer { ns, _daemon: daemon, log, _dir: dir };
        wait_for("pacemaker-fenced to answer", Duration::from_secs(20), || f.admin(&["-L"]).code == 0);
        f
    }

    fn admin(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns.name, "stonith_admin"]).args(args);
        run_with_deadline(&mut cmd, Duration::from_secs(90))
    }
}

#[test]
fn pacemaker_fencer_runs_fence_ups_off_and_on() {
    if !need_pty_tests() || !need_program("stonith_admin", "pacemaker-cli-utils") {
        return;
    }
    if !Path::new("/usr/lib/pacemaker/pacemaker-fenced").exists()
        && !skip_or_fail("pacemaker-fenced missing (pacemaker)")
    {
        return;
    }
    crate::conformance::install_system_links();
    let good = Sim::new(SERIAL, Fault::None);
    let swapped = Sim::new("QS7777777777", Fault::None);
    let dead = Sim::new(SERIAL, Fault::Silent);
    let fencer = Fencer::start();
    let register = |dev: &str, sim: &Sim, node: &str| {
        fencer
            .admin(&[
                "-R",
                dev,
                "-a",
                "fence_ups",
                "-o",
                &format!("serial_port={}", sim.port()),
                "-o",
                &format!("ups_serial={SERIAL}"),
                "-o",
                &format!("pcmk_host_list={node}"),
                "-o",
                &format!("hostlist={node}"),
            ])
            .expect(0);
    };
    register("ups-node2", &good, "node2");
    register("ups-node3", &swapped, "node3");
    register("ups-node4", &dead, "node4");

    // Without pcmk_host_list the fencer asks the device itself (dynamic-list runs `list`).
    fencer
        .admin(&[
            "-R",
            "ups-dyn",
            "-a",
            "fence_ups",
            "-o",
            &format!("serial_port={}", good.port()),
            "-o",
            "hostlist=node5",
        ])
        .expect(0);
    let targets = fencer.admin(&["-l", "node5"]);
    targets.expect(0);
    assert!(targets.stdout.contains("ups-dyn") && !targets.stdout.contains("ups-node2"), "{}", targets.stdout);
    fencer.admin(&["-D", "ups-dyn"]).expect(0);

    let off = fencer.admin(&["-F", "node2", "-t", "40"]);
    off.expect(0);
    assert!(!good.load_on(), "fenced's off cut the load: {}", good.transcript());
    fencer.admin(&["-U", "node2", "-t", "40"]).expect(0);
    assert!(good.load_on());
    good.clear_log();
    // (That fence_ups answers before the load goes back on is asserted without the fencer, whose
    // own latency on a loaded machine can exceed the 1.6 s the power-on takes.)
    fencer.admin(&["-B", "node2", "-t", "40"]).expect(0);
    wait_for("the load back on after the reboot", Duration::from_secs(15), || good.load_on());
    let kinds: Vec<Event> = good.events().into_iter().map(|(_, e)| e).collect();
    assert_eq!(kinds, vec![Event::LoadOff, Event::LoadOn], "reboot = off, confirm, answer, on");
    // The fencer's next operation waits for the port while the power-on may still hold it.
    fencer.admin(&["-U", "node2", "-t", "40"]).expect(0);

    // Wrong identity: refused, and the UPS's load untouched.
    let started = Instant::now();
    let refused = fencer.admin(&["-F", "node3", "-t", "40"]);
    assert_ne!(refused.code, 0);
    assert!(started.elapsed() < Duration::from_secs(48));
    assert!(swapped.load_on());
    assert!(!swapped.transcript().contains('Z'));
    // Unreachable: fails within the timeout.
    let started = Instant::now();
    assert_ne!(fencer.admin(&["-F", "node4", "-t", "40"]).code, 0);
    assert!(started.elapsed() < Duration::from_secs(48));
    assert!(dead.load_on());

    let log = std::fs::read_to_string(&fencer.log).unwrap();
    assert!(log.contains("refusing to act on another UPS"), "the fencer's log shows why:\n{log}");
    assert!(log.contains("no answer from the UPS"), "{log}");
    assert!(!log.contains("Parse error"), "what the fencer passes on its own is no unknown option:\n{log}");

    // A mistyped parameter on a registered device: the fence goes on, the fencer logs why not
    // everything the administrator asked for is checked.
    good.clear_log();
    fencer
        .admin(&[
            "-R",
            "ups-typo",
            "-a",
            "fence_ups",
            "-o",
            &format!("serial_port={}", good.port()),
            "-o",
            &format!("ups_seiral={SERIAL}"),
            "-o",
            "pcmk_host_list=node6",
        ])
        .expect(0);
    fencer.admin(&["-F", "node6", "-t", "40"]).expect(0);
    assert!(!good.load_on());
    // The fencer writes the agent's stderr to its log after it has answered stonith_admin.
    wait_for("the fencer to log fence_ups's warning", Duration::from_secs(10), || {
        std::fs::read_to_string(&fencer.log).unwrap().contains("Parse error: Ignoring unknown option 'ups_seiral'")
    });
}
