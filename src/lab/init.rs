//! A node's PID 1 (`hastack lab init NODE`, hidden; DESIGN.md §6). Started on the host by
//! `node::boot`, it enters the node's network namespace, makes new mount, UTS and PID
//! namespaces and forks: the child is PID 1 of the node. PID 1 builds the node's view of the
//! machine (a fresh /proc, /sys, /run, /dev, /tmp; the node's own /etc/corosync,
//! /var/lib/pacemaker, /var/lib/corosync, /var/log and /srv; its serial ports and the shared
//! disk), starts Corosync, then pacemakerd as its child, and stays to reap orphans: pacemakerd
//! reaps only what it started, and zombies would fool liveness checks.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{chown, fork, ForkResult, Gid, Group, Uid, User};

use super::layout::Lab;
use super::plan::Plan;

/// The node's own directories, bound over the host's (relative to the node's directory).
/// /var/spool holds the alert agent's spool: each node keeps its own reports, as a server does.
pub const NODE_BINDS: &[&str] =
    &["etc/corosync", "var/lib/pacemaker", "var/lib/corosync", "var/log", "var/spool", "srv"];

/// The spool the alert agent uses by default (`spool_dir`), made in each node's /var/spool.
pub const ALERT_SPOOL: &str = "var/spool/hastack/alert";

/// hastack's command (`hastack alert flush`, as the flush timer runs it): the lab's copy too,
/// where the host has one to bind over.
pub const HASTACK_COMMAND: &str = "/usr/sbin/hastack";

/// The alert agent the stack's `[alert]` names by default (the lab binds its own copy there).
pub const ALERT_AGENT: &str = "/usr/lib/hastack/alert";

/// Where PID 1 logs (inside the node; the node's directory on the host).
pub const INIT_LOG: &str = "var/log/hastack-lab-init.log";

/// What `up --pacemaker-debug` gives pacemakerd (and so every Pacemaker daemon): the
/// controller's debug lines (among them "Re-asking for the CIB: N other peer updates still
/// pending", the 1 s sleep of do_pe_invoke_callback) and a trace of each CIB callback added
/// and invoked.
pub const PACEMAKER_DEBUG_ENV: [(&str, &str); 2] = [
    ("PCMK_debug", "pacemaker-controld"),
    ("PCMK_trace_functions", "cib_client_register_callback_full,cib_native_callback"),
];

/// Whether the lab's pacemakerds run with [`PACEMAKER_DEBUG_ENV`] (the file `up` writes).
pub fn pacemaker_debug(lab: &Lab) -> bool {
    lab.pacemaker_debug_file().exists()
}

/// Everything PID 1 needs, worked out on the host before the fork.
struct NodeSpec {
    name: String,
    dir: PathBuf,
    /// (the lab's file, the host's path it replaces in the node): the agents, fence_ups, the alert agent.
    software: Vec<(PathBuf, PathBuf)>,
    /// (path in the node, the host's device under /dev): the shared disks.
    disks: Vec<(String, String)>,
    /// (path in the node, the host's /dev/pts/N): the UPS serial cables plugged into this node.
    serial_ports: Vec<(String, String)>,
    /// Whether the node has /run/lock (`lab up --agents clusterlabs`; see `setup`).
    run_lock: bool,
    /// The daemons' PATH ([`node_path`]).
    path: String,
    /// Whether pacemakerd gets [`PACEMAKER_DEBUG_ENV`].
    pacemaker_debug: bool,
}

/// The PATH of a node's daemons and of the commands run on it: the system's, then the lab's own
/// binary's directory, so that `hastack` (the alert agent's flush, `hastack agent apply`) is
/// found in a node also when this machine has no installed /usr/sbin/hastack to bind over.
pub fn node_path(lab: &Lab) -> String {
    let bin = lab.binary();
    let dir = bin.parent().unwrap_or(Path::new("/usr/sbin"));
    format!("/usr/sbin:/usr/bin:/sbin:/bin:{}", dir.display())
}

/// Stage 1, on the host: enter the namespaces, fork PID 1, report. Returns the exit code.
pub fn launch(lab: &Lab, plan: &Plan, node: &str) -> Result<i32> {
    plan.node(node)?;
    let mut disks = Vec::new();
    for line in fs::read_to_string(lab.disks_file()).unwrap_or_default().lines() {
        if let Some((inner, dev)) = line.split_once(' ') {
            disks.push((inner.to_string(), dev.to_string()));
        }
    }
    let mut serial_ports = Vec::new();
    for cable in plan.cables_into(node) {
        let link = lab.ups_port(&cable.powers);
        let Some(pty) = super::node::pty_of(&link) else {
            bail!("the UPS powering {} is not running (no {})", cable.powers, link.display())
        };
        serial_ports.push((cable.port.clone(), pty.display().to_string()));
    }
    let mut software = vec![
        (lab.agents_dir(), PathBuf::from(crate::applets::OCF_PROVIDER_DIR)),
        (lab.binary(), PathBuf::from("/usr/sbin/fence_ups")),
        (lab.binary(), PathBuf::from(ALERT_AGENT)),
    ];
    if Path::new(HASTACK_COMMAND).exists() {
        software.push((lab.binary(), PathBuf::from(HASTACK_COMMAND)));
    }
    let run_lock = super::load_agents(lab) == super::clusterlabs::Agents::Clusterlabs;
    let spec = NodeSpec {
        name: node.to_string(),
        dir: lab.node_dir(node),
        software,
        disks,
        serial_ports,
        run_lock,
        path: node_path(lab),
        pacemaker_debug: pacemaker_debug(lab),
    };
    let log = File::options()
        .create(true)
        .append(true)
        .open(spec.dir.join(INIT_LOG))
        .with_context(|| format!("cannot open {}", spec.dir.join(INIT_LOG).display()))?;

    let netns = File::open(Path::new("/run/netns").join(lab.netns(node)))
        .with_context(|| format!("no network namespace {}", lab.netns(node)))?;
    setns(&netns, CloneFlags::CLONE_NEWNET).context("setns into the node's network namespace")?;
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWPID)
        .context("unshare mount, UTS and PID namespaces")?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // SAFETY: this process is single-threaded here (a fresh `hastack lab init`), so the child
    // may run any code.
    match unsafe { fork() }.context("fork")? {
        ForkResult::Child => {
            drop(ready_r);
            let code = pid1(&spec, log, ready_w);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(ready_w);
            println!("pid {child}");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = File::from(ready_r).read_to_string(&mut answer);
            if answer == "ready" {
                Ok(0)
            } else {
                bail!("{node}'s PID 1 failed: {}", if answer.is_empty() { "it died" } else { &answer });
            }
        }
    }
}

/// PID 1 of the node: set up, say so, supervise. Returns only on a failed set-up.
fn pid1(spec: &NodeSpec, log: File, ready: OwnedFd) -> i32 {
    // A session of its own: a ^C or hang-up of the terminal that ran `lab up` is not the node's.
    let _ = nix::unistd::setsid();
    // Our output goes to the node's log: the launcher reads only the ready pipe.
    let devnull = File::open("/dev/null").expect("/dev/null");
    // SAFETY: dup2 onto the standard descriptors of this (single-threaded) process.
    unsafe {
        libc::dup2(devnull.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
    }
    let mut ready = File::from(ready);
    if let Err(e) = setup(spec) {
        let _ = write!(ready, "{e:#}");
        eprintln!("{}: set-up failed: {e:#}", spec.name);
        return 1;
    }
    let _ = ready.write_all(b"ready");
    drop(ready);
    supervise(spec)
}

fn mount_fs(fstype: &str, target: &str, flags: MsFlags, data: Option<&str>) -> Result<()> {
    mount(Some(fstype), target, Some(fstype), flags, data).with_context(|| format!("mount {fstype} on {target}"))
}

fn bind(source: &Path, target: &Path) -> Result<()> {
    mount(Some(source), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .with_context(|| format!("bind {} on {}", source.display(), target.display()))
}

/// An empty file to bind a device onto.
fn touch(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(())
}

fn dir(path: &str, mode: u32, owner: Option<(&str, &str)>) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("mkdir {path}"))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some((user, group)) = owner {
        chown(path, uid_of(user), gid_of(group)).with_context(|| format!("chown {path}"))?;
    }
    Ok(())
}

pub fn uid_of(user: &str) -> Option<Uid> {
    User::from_name(user).ok().flatten().map(|u| u.uid)
}

pub fn gid_of(group: &str) -> Option<Gid> {
    Group::from_name(group).ok().flatten().map(|g| g.gid)
}

fn setup(spec: &NodeSpec) -> Result<()> {
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // Nothing mounted here may reach the host's mount table.
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("make / private")?;
    nix::unistd::sethostname(&spec.name).context("sethostname")?;
    // A fresh /proc: the PIDs agents see are the node's. /sys shows the node's interfaces.
    mount_fs("proc", "/proc", nodev, None)?;
    mount_fs("sysfs", "/sys", nodev, None)?;
    mount_fs("tmpfs", "/run", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=0755"))?;

    // A /dev of the node's own: the usual devices, plus its serial ports and the shared disk
    // under the names the stack gives them. The host's /dev stays reachable meanwhile.
    let host_dev = Path::new("/run/.host-dev");
    fs::create_dir_all(host_dev)?;
    mount(Some("/dev"), host_dev, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
        .context("bind the host's /dev")?;
    mount_fs("tmpfs", "/dev", MsFlags::MS_NOSUID, Some("mode=0755"))?;
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        touch(&Path::new("/dev").join(d))?;
        bind(&host_dev.join(d), &Path::new("/dev").join(d))?;
    }
    fs::create_dir_all("/dev/pts")?;
    mount_fs(
        "devpts",
        "/dev/pts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    symlink("pts/ptmx", "/dev/ptmx")?;
    fs::create_dir_all("/dev/shm")?;
    mount_fs("tmpfs", "/dev/shm", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, Path::new("/dev").join(name))?;
    }
    for (inner, dev) in spec.disks.iter().chain(&spec.serial_ports) {
        let source = host_dev.join(dev.trim_start_matches("/dev/"));
        touch(Path::new(inner))?;
        bind(&source, Path::new(inner))?;
    }
    umount2(host_dev, MntFlags::MNT_DETACH).context("unmount the host's /dev")?;
    let _ = fs::remove_dir(host_dev);

    // What systemd-tmpfiles makes on a real boot.
    dir("/run/crm", 0o750, Some(("hacluster", "haclient")))?;
    dir("/run/postgresql", 0o2775, Some(("postgres", "postgres")))?;
    // resource-agents' tmpfiles.d entry: the ClusterLabs agents' state (HA_RSCTMP).
    dir("/run/resource-agents", 0o1755, None)?;
    dir(super::clusterlabs::TOMCAT_STATE_DIR, 0o750, Some(("tomcat", "tomcat")))?;
    // Debian's run-lock.mount (tmpfs, mode 1777), behind /var/lock → /run/lock, in ClusterLabs
    // mode only: cluster-glue's apcsmart plugin, that side's fencing, takes its UUCP lock in
    // /var/lock and fails without it ("Could not lock tty", stonith exit 8), as on a ClusterLabs
    // node a real machine would not. hastack's nodes keep a /run without it, as in a container:
    // fence_ups makes it itself (fence/serial.rs), which the lab thereby keeps proving.
    if spec.run_lock {
        dir("/run/lock", 0o1777, None)?;
    }
    mount_fs("tmpfs", "/tmp", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;
    mount_fs("tmpfs", "/var/tmp", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("mode=1777"))?;

    for rel in NODE_BINDS {
        let target = Path::new("/").join(rel);
        if !target.is_dir() {
            bail!("{} does not exist on this machine (is the package installed?)", target.display());
        }
        bind(&spec.dir.join(rel), &target)?;
    }
    // The lab's own agents and fence_ups (the binary that ran `lab up`), over the host's links.
    for (source, target) in &spec.software {
        if !target.exists() {
            bail!("{} does not exist on this machine (`hastack install` makes it)", target.display());
        }
        bind(source, target)?;
    }
    Ok(())
}

/// The environment of the node's daemons (and through pacemaker-execd, of the agents).
fn node_env<'a>(cmd: &'a mut Command, spec: &NodeSpec) -> &'a mut Command {
    cmd.env_clear().env("PATH", &spec.path).env("LANG", "C.UTF-8").env("HOME", "/root")
}

fn console(path: &str) -> Stdio {
    File::options().create(true).append(true).open(path).map(Stdio::from).unwrap_or(Stdio::null())
}

fn start(name: &str, cmd: &mut Command, console_path: &str) -> Option<i32> {
    cmd.stdin(Stdio::null()).stdout(console(console_path)).stderr(console(console_path));
    match cmd.spawn() {
        Ok(child) => {
            eprintln!("{} started {name} (PID {})", stamp(), child.id());
            Some(child.id() as i32)
        }
        Err(e) => {
            eprintln!("{} cannot start {name}: {e}", stamp());
            None
        }
    }
}

fn stamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

/// pacemakerd as PID 1 starts it: the node's environment, its log file, debug if asked.
fn pacemakerd(spec: &NodeSpec) -> Command {
    let mut cmd = Command::new("pacemakerd");
    node_env(&mut cmd, spec).env("PCMK_logfile", "/var/log/pacemaker/pacemaker.log");
    if spec.pacemaker_debug {
        cmd.envs(PACEMAKER_DEBUG_ENV);
    }
    cmd
}

/// Starts Corosync, waits until it answers, starts pacemakerd, then reaps forever.
fn supervise(spec: &NodeSpec) -> ! {
    let corosync =
        start("corosync", node_env(Command::new("corosync").arg("-f"), spec), "/var/log/corosync/corosync.console");
    let mut known: Vec<(i32, &str)> = corosync.map(|pid| (pid, "corosync")).into_iter().collect();
    let started = Instant::now();
    let mut up = false;
    while !known.is_empty() && started.elapsed() < Duration::from_secs(60) {
        if !reap(false, &known).is_empty() {
            break; // corosync ended: its console says why
        }
        let probe = node_env(&mut Command::new("corosync-cmapctl"), spec)
            .args(["-g", "totem.cluster_name"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if probe.is_ok_and(|s| s.success()) {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if up {
        let mut cmd = pacemakerd(spec);
        known.extend(start("pacemakerd", &mut cmd, "/var/log/pacemaker/pacemakerd.console").map(|p| (p, "pacemakerd")));
    } else {
        eprintln!("{} {}: corosync did not come up; pacemakerd not started", stamp(), spec.name);
    }
    loop {
        reap(true, &known);
    }
}

/// Reaps exited children (waiting for one when `block`); logs and returns the `known` ones
/// among them (the daemons PID 1 started; orphans are legion).
fn reap(block: bool, known: &[(i32, &str)]) -> Vec<i32> {
    let flags = if block { None } else { Some(WaitPidFlag::WNOHANG) };
    let mut ended = Vec::new();
    loop {
        let (pid, how) = match waitpid(None, flags) {
            Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), format!("exit {code}")),
            Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), format!("signal {sig}")),
            Ok(WaitStatus::StillAlive) => return ended,
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => {
                // Nothing left to reap (both daemons gone): a dead node that still has power.
                std::thread::sleep(Duration::from_secs(1));
                return ended;
            }
            Err(_) => return ended,
        };
        if note_exit(known, pid, &how) {
            ended.push(pid);
        }
        if block {
            return ended;
        }
    }
}

fn note_exit(known: &[(i32, &str)], pid: i32, how: &str) -> bool {
    let Some((_, name)) = known.iter().find(|(p, _)| *p == pid) else { return false };
    eprintln!("{} {name} (PID {pid}) ended ({how})", stamp());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn spec(lab: &Lab) -> NodeSpec {
        NodeSpec {
            name: "node1".into(),
            dir: lab.node_dir("node1"),
            software: Vec::new(),
            disks: Vec::new(),
            serial_ports: Vec::new(),
            run_lock: false,
            path: node_path(lab),
            pacemaker_debug: pacemaker_debug(lab),
        }
    }

    fn envs(cmd: &Command) -> Vec<(String, Option<String>)> {
        let s = |v: &OsStr| v.to_string_lossy().into_owned();
        cmd.get_envs().map(|(k, v)| (s(k), v.map(s))).collect()
    }

    /// The lab's choice reaches pacemakerd from the state file alone (PID 1's environment is
    /// cleared), and nothing changes without it.
    #[test]
    fn pacemakerd_gets_debug_env_exactly_when_the_state_file_says_so() {
        let root = tempfile::tempdir().unwrap();
        let mut lab = Lab::new("pdbg").unwrap();
        lab.dir = root.path().join("lab");
        fs::create_dir_all(&lab.dir).unwrap();

        assert!(!pacemaker_debug(&lab));
        let plain = envs(&pacemakerd(&spec(&lab)));
        for (k, _) in PACEMAKER_DEBUG_ENV {
            assert!(plain.iter().all(|(name, _)| name != k), "{k} set without --pacemaker-debug: {plain:?}");
        }
        assert!(plain.contains(&("PCMK_logfile".into(), Some("/var/log/pacemaker/pacemaker.log".into()))));

        fs::write(lab.pacemaker_debug_file(), "").unwrap();
        assert!(pacemaker_debug(&lab));
        let debug = envs(&pacemakerd(&spec(&lab)));
        assert!(debug.contains(&("PCMK_debug".into(), Some("pacemaker-controld".into()))), "{debug:?}");
        assert!(debug.contains(&(
            "PCMK_trace_functions".into(),
            Some("cib_client_register_callback_full,cib_native_callback".into())
        )));
        // The rest of the environment is the node's as before.
        assert!(debug.contains(&("PATH".into(), Some(node_path(&lab)))));
        assert!(debug.contains(&("PCMK_logfile".into(), Some("/var/log/pacemaker/pacemaker.log".into()))));
    }
}
