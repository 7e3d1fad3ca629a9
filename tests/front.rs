//! The front-layer agents (haproxy, apache, nginx, tomcat, app) against the real Debian software:
//! each test starts its own instance on its own loopback ports (18000-18999, a block per test)
//! with its configuration in a temporary directory, and injects the faults the shell agents
//! mishandle: kill -9 of the master, SIGSTOP, a broken configuration, a port already taken.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hastack::sys::identity;
use hastack::sys::{proc, tree};

use crate::support::*;

pub mod apps;
pub mod haproxy;
pub mod httpd;
pub mod tomcat;

/// The PID the agent recorded as the instance's main process.
pub fn main_pid(agent: &str, instance: &str) -> i32 {
    let text = std::fs::read_to_string(identity::state_file(agent, instance)).expect("state file after start");
    identity::Identity::parse(&text).expect("identity").pid
}

/// Nothing listens on `port`, as ss (not the agent's own socket scan) sees it.
#[track_caller]
pub fn assert_port_free(port: u16) {
    let out =
        run_with_deadline(Command::new("ss").args(["-Htlnp", &format!("sport = :{port}")]), Duration::from_secs(10));
    out.expect(0);
    assert!(out.stdout.trim().is_empty(), "port {port} still listened on:\n{}", out.stdout);
}

/// Stops the instance when the test ends, also when it fails: no service outlives its test.
pub struct StopOnDrop(pub AgentRun);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.clone().timeout_ms(20000).command("stop").output();
    }
}

/// A temp dir every user can traverse (workers run as www-data, nobody...).
pub fn open_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("hst-front").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

/// start, double start, monitor at each depth, stop, double stop; each within its op timeout.
pub fn lifecycle(run: &AgentRun, agent: &str, instance: &str, depths: &[u32], port: u16) {
    run.clone().timeout_ms(10000).run("monitor").expect(7);
    let start = run.clone().timeout_ms(60000).run("start");
    start.expect(0);
    assert!(start.elapsed < Duration::from_secs(60));
    let pid = main_pid(agent, instance);
    let again = run.clone().timeout_ms(60000).run("start");
    again.expect(0);
    assert_eq!(main_pid(agent, instance), pid, "a double start must not start a second instance");
    for &depth in depths {
        let m = run.clone().timeout_ms(20000).recurring().depth(depth).run("monitor");
        m.expect(0);
        assert!(m.elapsed < Duration::from_secs(20));
    }
    let stop = run.clone().timeout_ms(30000).run("stop");
    stop.expect(0);
    assert!(stop.elapsed < Duration::from_secs(30));
    assert!(!proc::is_alive(pid));
    assert!(tree::session_members(pid).is_empty(), "processes of the session survived stop");
    assert_port_free(port);
    run.clone().timeout_ms(30000).run("stop").expect(0);
    run.clone().timeout_ms(10000).recurring().run("monitor").expect(7);
}

/// The live processes of session `sid`, listed by ps.
pub fn session_survivors(sid: i32) -> Vec<String> {
    let out = run_with_deadline(Command::new("ps").args(["-e", "-o", "pid=,sid=,stat="]), Duration::from_secs(10));
    out.expect(0);
    out.stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1] == sid.to_string() && !f[2].starts_with('Z')).then(|| f[0].to_string())
        })
        .collect()
}

/// kill -9 of the main process: monitor reports it (1 with orphans, 7 without) with a reason,
/// stop cleans up everything of the session, and a new start works on the same port.
pub fn kill9(run: &AgentRun, agent: &str, instance: &str, port: u16) {
    run.clone().timeout_ms(60000).run("start").expect(0);
    let pid = main_pid(agent, instance);
    assert!(proc::signal(pid, nix::sys::signal::Signal::SIGKILL));
    wait_for("the main process to die", Duration::from_secs(5), || !proc::is_alive(pid));
    // What the killed master left, as ps (not the agent's own scan) sees it, before and after.
    let left_before = session_survivors(pid);
    let m = run.clone().timeout_ms(10000).recurring().run("monitor");
    let left_after = session_survivors(pid);
    match (left_before.is_empty(), left_after.is_empty()) {
        // Workers still hold the port: a failure here, so that Pacemaker stops it before a restart.
        (false, false) => {
            m.expect(1).reason_contains(&format!("main process {pid} is gone"));
        }
        // Nothing left: safely stopped.
        (true, true) => {
            m.expect(7).reason_contains("not running");
        }
        // The last workers exited while the monitor ran: either answer was true when given.
        _ => assert!(m.code == 1 || m.code == 7, "monitor after kill -9 while workers exited: {m:?}"),
    }
    let stop = run.clone().timeout_ms(30000).run("stop");
    stop.expect(0);
    assert!(stop.elapsed < Duration::from_secs(30));
    assert!(tree::session_members(pid).is_empty(), "orphans of the killed master survived stop");
    assert_port_free(port);
    run.clone().timeout_ms(60000).run("start").expect(0);
    assert_ne!(main_pid(agent, instance), pid);
    run.clone().timeout_ms(30000).run("stop").expect(0);
    assert_port_free(port);
}

/// SIGSTOP of every process of the service: monitor answers an error before its timeout, at
/// every depth; stop still succeeds within its budget.
pub fn sigstop(run: &AgentRun, agent: &str, instance: &str, depths: &[u32], port: u16) {
    use nix::sys::signal::Signal;
    run.clone().timeout_ms(60000).run("start").expect(0);
    let pid = main_pid(agent, instance);
    let members = tree::session_members(pid);
    for p in &members {
        proc::signal(*p, Signal::SIGSTOP);
    }
    // The signal is delivered when the process next runs: wait until all have stopped.
    wait_for("every process to stop", Duration::from_secs(10), || {
        members.iter().all(|p| proc::stat(*p).is_none_or(|s| s.state == 'T'))
    });
    for &depth in depths {
        let m = run.clone().timeout_ms(8000).recurring().depth(depth).run("monitor");
        m.expect(1);
        assert!(m.elapsed < Duration::from_secs(8), "monitor took {:?}", m.elapsed);
        m.reason_contains("stopped");
    }
    let stop = run.clone().timeout_ms(20000).run("stop");
    stop.expect(0);
    assert!(stop.elapsed < Duration::from_secs(20));
    assert!(members.iter().all(|p| !proc::is_alive(*p)));
    assert_port_free(port);
}

/// Another process holds the port: start fails fast and names it.
pub fn port_taken(run: &AgentRun, port: u16) {
    let _holder = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let start = run.clone().timeout_ms(60000).run("start");
    start.expect(1);
    start.reason_contains(&format!("port {port} is already held by PID {}", std::process::id()));
    assert!(start.elapsed < Duration::from_secs(30), "start took {:?}", start.elapsed);
    run.clone().timeout_ms(20000).run("stop").expect(0);
}

/// Start fails fast with 2 (banned on this node: the peer, with its own copy, takes over; not
/// 6, which would stop the service on every node) and the software's own message when the
/// node-local configuration `file` is broken. The front layer keeps nothing on the replicated
/// partition: every file it reads is node-local.
pub fn config_rejected(run: &AgentRun, server: &str, file: &Path, message: &str) {
    let start = run.clone().timeout_ms(60000).run("start");
    start.expect(2);
    start.reason_contains(&format!(
        "node-local configuration file {} rejected by {server}: banned on this node: ",
        file.display()
    ));
    start.reason_contains(message);
    assert!(start.elapsed < Duration::from_secs(30), "start took {:?}", start.elapsed);
    run.clone().timeout_ms(20000).run("stop").expect(0);
    run.clone().timeout_ms(10000).run("monitor").expect(7);
}

/// Start fails fast (1) with the software's own message when its start command fails.
pub fn start_fails_fast(run: &AgentRun, message: &str) {
    let start = run.clone().timeout_ms(60000).run("start");
    start.expect(1);
    start.reason_contains(message);
    assert!(start.elapsed < Duration::from_secs(30), "start took {:?}", start.elapsed);
    run.clone().timeout_ms(20000).run("stop").expect(0);
    run.clone().timeout_ms(10000).run("monitor").expect(7);
}

/// The ocf-tester sequence (start, monitor, probe, stop, double start/stop...) passes.
pub fn ocf_tester(agent: &str, name: &str, params: &[(&str, String)]) {
    if !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let mut cmd = Command::new("ocf-tester");
    cmd.args(["-n", name]);
    for (k, v) in params {
        cmd.arg("-o").arg(format!("{k}={v}"));
    }
    cmd.arg(agent_path(agent));
    let out = run_with_deadline(&mut cmd, Duration::from_secs(240));
    assert_eq!(out.code, 0, "ocf-tester failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("passed all tests"), "{}", out.stdout);
}

/// crm_resource --force-start/--force-check/--force-stop agree with the agent.
pub fn crm_resource(agent: &str, params: &[(&str, String)], port: u16) {
    if !need_program("crm_resource", "pacemaker-cli-utils") {
        return;
    }
    crate::conformance::install_system_links();
    let run = |op: &[&str], code: i32| {
        let mut cmd = Command::new("crm_resource");
        cmd.args(op).args(["--class", "ocf", "--provider", "hastack", "--agent", agent]);
        for (k, v) in params {
            cmd.arg("--option").arg(format!("{k}={v}"));
        }
        let out = run_with_deadline(&mut cmd, Duration::from_secs(60));
        assert_eq!(out.code, code, "crm_resource {op:?}: {}\n{}", out.stdout, out.stderr);
    };
    run(&["--force-check"], 7);
    run(&["--force-start"], 0);
    run(&["--force-check"], 0);
    run(&["--force-check", "10"], 0);
    run(&["--force-stop"], 0);
    assert_port_free(port);
    run(&["--force-check"], 7);
}

/// Missing binary or home: 5. Inherently bad parameters: 6.
pub fn bad_params(base: &AgentRun, missing: &[(&str, &str)], bad: &[(&str, &str, &str)]) {
    for (k, v) in missing {
        let out = base.clone().param(k, v).run("start");
        out.expect(5);
        out.reason_contains(k);
        base.clone().param(k, v).env("OCF_CHECK_LEVEL", 10).run("validate-all").expect(5);
    }
    for (k, v, needle) in bad {
        let out = base.clone().param(k, v).run("start");
        out.expect(6);
        out.reason_contains(&format!("'{k}'"));
        out.reason_contains(needle);
        base.clone().param(k, v).run("validate-all").expect(6);
        base.clone().param(k, v).run("stop").expect(0);
    }
}

/// A directory on a fresh ext4 loop device mounted by the test, as a `filesystem` resource would.
pub struct MountedDir {
    pub path: PathBuf,
    _mount: MountGuard,
    _device: LoopDevice,
    _dir: tempfile::TempDir,
}

impl MountedDir {
    pub fn new() -> MountedDir {
        let device = LoopDevice::new(32, Some(&["mkfs.ext4", "-q", "-F"]));
        let dir = open_tempdir();
        // Mounted by the `filesystem` agent, as the stack mounts its partition.
        filesystem_agent(&device.device, dir.path()).run("start").expect(0);
        let mount = MountGuard::adopt(dir.path());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        MountedDir { path: dir.path().to_path_buf(), _mount: mount, _device: device, _dir: dir }
    }
}

/// Whether the host can run the agent tests for `program` (root, the package).
pub fn can_run(program: &str, package: &str) -> bool {
    need_root("front-layer agent tests") && need_program(program, package)
}

/// With no parameters every agent manages Debian's default instance: its files are found, and
/// a probe finds it stopped (the packages' services are not running here).
#[test]
fn defaults_fit_debian_packages() {
    for (agent, program, package) in [
        ("nginx", "nginx", "nginx"),
        ("apache", "apache2", "apache2"),
        ("haproxy", "haproxy", "haproxy"),
        ("tomcat", "java", "tomcat10"),
    ] {
        if !can_run(program, package) {
            return;
        }
        let run = AgentRun::new(agent).env("OCF_RESOURCE_INSTANCE", unique_name("def"));
        run.clone().depth(10).run("validate-all").expect(0);
        run.run("monitor").expect(7);
    }
}
