//! Shared test machinery: running agents by their link names with an OCF environment, and
//! guards for what tests create on the machine (namespaces, loop devices, mounts, processes),
//! each removed on drop, also when the test fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod guards;
#[allow(unused_imports)]
pub use guards::*;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hastack"))
}

/// A world-readable root with every applet linked by `hastack install --root`, so agents run
/// under their own names (and `nobody` can run meta-data, as ocf-tester does).
pub fn install_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let out = Command::new(bin()).args(["install", "--root"]).arg(&root).output().unwrap();
        assert!(out.status.success(), "hastack install failed: {}", String::from_utf8_lossy(&out.stderr));
        make_world_readable(&root);
        root
    })
}

fn make_world_readable(mut dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    // ocf-tester runs meta-data as nobody: every directory up to / must be traversable.
    while let Some(parent) = dir.parent() {
        if let Ok(meta) = std::fs::metadata(parent) {
            let mode = meta.permissions().mode();
            if mode & 0o001 == 0 {
                let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o011));
            }
        }
        dir = parent;
    }
}

/// The path of an agent's link in the test install root.
pub fn agent_path(name: &str) -> PathBuf {
    install_root().join("usr/lib/ocf/resource.d/hastack").join(name)
}

/// Whether this test may run: root (namespaces, mounts, services). Off CI, prints why it skips;
/// on CI, a missing capability fails the test.
pub fn need_root(what: &str) -> bool {
    if nix_is_root() {
        return true;
    }
    skip_or_fail(&format!("{what} needs root"))
}

/// Whether a program is on PATH (a Debian package the test needs).
pub fn need_program(program: &str, package: &str) -> bool {
    if which(program).is_some() {
        return true;
    }
    skip_or_fail(&format!(
        "'{program}' is not installed (Debian package {package}; tests/setup/install-deps.sh installs it)"
    ))
}

pub fn skip_or_fail(why: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {why}: a missing capability is a failure under CI");
    }
    eprintln!("SKIPPED: {why}");
    false
}

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What one command printed and returned.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    /// The last `ocf-exit-reason:` line, as Pacemaker keeps it.
    pub fn exit_reason(&self) -> Option<&str> {
        self.stderr.lines().rev().find_map(|l| l.strip_prefix("ocf-exit-reason:"))
    }

    /// Asserts the exit code, showing everything on failure.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    /// Asserts the exit reason mentions `needle`.
    #[track_caller]
    pub fn reason_contains(&self, needle: &str) -> &Self {
        let reason = self.exit_reason().unwrap_or_else(|| panic!("no ocf-exit-reason in stderr:\n{}", self.stderr));
        assert!(reason.contains(needle), "exit reason {reason:?} does not mention {needle:?}");
        self
    }
}

/// Runs a command with a hard deadline: a hung agent fails the test instead of hanging it.
pub fn run_with_deadline(cmd: &mut Command, limit: Duration) -> Outcome {
    run_with_input(cmd, None, limit)
}

/// [`run_with_deadline`] with `input` written to the command's stdin (then closed).
pub fn run_with_input(cmd: &mut Command, input: Option<&str>, limit: Duration) -> Outcome {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A child that exits without reading closes the pipe: not the test's failure.
        let _ = stdin.write_all(text.as_bytes());
    }
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill").args(["-KILL", &format!("-{}", child.id())]).status();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        code: status.code().unwrap_or(-1),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        elapsed: started.elapsed(),
    }
}

/// An OCF agent invocation as Pacemaker makes it: the agent's link, the action in argv[1],
/// parameters as `OCF_RESKEY_*`, meta attributes as `OCF_RESKEY_CRM_meta_*`.
#[derive(Clone)]
pub struct AgentRun {
    agent: String,
    env: BTreeMap<String, String>,
    netns: Option<String>,
}

impl AgentRun {
    pub fn new(agent: &str) -> Self {
        let mut env = BTreeMap::new();
        env.insert("OCF_ROOT".into(), "/usr/lib/ocf".into());
        env.insert("OCF_RESOURCE_INSTANCE".into(), format!("test-{agent}"));
        env.insert("OCF_RESKEY_CRM_meta_timeout".into(), "20000".into());
        AgentRun { agent: agent.to_string(), env, netns: None }
    }
    pub fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.env.insert(format!("OCF_RESKEY_{name}"), value.to_string());
        self
    }
    pub fn meta(mut self, name: &str, value: impl ToString) -> Self {
        self.env.insert(format!("OCF_RESKEY_CRM_meta_{name}"), value.to_string());
        self
    }
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }
    pub fn timeout_ms(self, ms: u64) -> Self {
        self.meta("timeout", ms)
    }
    /// A recurring monitor (not a probe).
    pub fn recurring(self) -> Self {
        self.meta("interval", 10000)
    }
    pub fn depth(self, level: u32) -> Self {
        self.env("OCF_CHECK_LEVEL", level)
    }
    /// Runs the agent inside a network namespace (`ip netns exec`).
    pub fn in_netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self
    }

    pub fn command(&self, action: &str) -> Command {
        let path = agent_path(&self.agent);
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        cmd.arg(action).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").envs(&self.env);
        cmd
    }

    /// Runs one action; the test fails if it takes longer than the op timeout plus a margin.
    pub fn run(&self, action: &str) -> Outcome {
        let timeout: u64 = self.env.get("OCF_RESKEY_CRM_meta_timeout").and_then(|t| t.parse().ok()).unwrap_or(20000);
        run_with_deadline(&mut self.command(action), Duration::from_millis(timeout) + Duration::from_secs(5))
    }
}

/// The `filesystem` agent for an ext4 `device` on `dir`, as the stack mounts its replicated
/// partition; `force_unmount=false`, so a stop fails if anything still uses the mount.
pub fn filesystem_agent(device: &str, dir: &Path) -> AgentRun {
    AgentRun::new("filesystem")
        .env("OCF_RESOURCE_INSTANCE", unique_name("fs"))
        .param("device", device)
        .param("directory", dir.display())
        .param("fstype", "ext4")
        .param("force_unmount", "false")
}

/// Waits for a condition with a deadline; panics with `what` if it never holds.
#[track_caller]
pub fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs a command that must succeed (test set-up); returns its stdout.
#[track_caller]
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One change to the file tree a command sees, made in its private mount namespace.
pub enum MountStep {
    /// A fresh tmpfs on a directory.
    Tmpfs(PathBuf),
    /// Creates an empty file (a bind target).
    Touch(PathBuf),
    /// Bind-mounts `.0` (a file, socket or directory) on `.1`.
    Bind(PathBuf, PathBuf),
}

/// Runs `cmd` in a mount namespace of its own (mounts private, so nothing leaks out) after
/// `steps`: what the command sees changes, the machine and every other process do not, and
/// the namespace ends with the command. Needs root.
pub fn in_private_mounts(cmd: &mut Command, steps: Vec<MountStep>) {
    use std::ffi::CString;
    use std::os::unix::process::CommandExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    enum Prepared {
        Tmpfs(CString),
        Touch(CString),
        Bind(CString, CString),
    }
    let prepared: Vec<Prepared> = steps
        .iter()
        .map(|s| match s {
            MountStep::Tmpfs(t) => Prepared::Tmpfs(c(t)),
            MountStep::Touch(t) => Prepared::Touch(c(t)),
            MountStep::Bind(s, t) => Prepared::Bind(c(s), c(t)),
        })
        .collect();
    let root = CString::new("/").unwrap();
    let tmpfs = CString::new("tmpfs").unwrap();
    // SAFETY: between fork and exec only async-signal-safe calls, on strings made before.
    unsafe {
        cmd.pre_exec(move || {
            let check = |rc: libc::c_int| if rc < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) };
            let null = std::ptr::null();
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(null, root.as_ptr(), null, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()))?;
            for step in &prepared {
                match step {
                    Prepared::Tmpfs(t) => {
                        check(libc::mount(tmpfs.as_ptr(), t.as_ptr(), tmpfs.as_ptr(), 0, std::ptr::null()))?
                    }
                    Prepared::Touch(t) => {
                        let fd = libc::open(t.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o600);
                        check(fd)?;
                        libc::close(fd);
                    }
                    Prepared::Bind(s, t) => {
                        check(libc::mount(s.as_ptr(), t.as_ptr(), null, libc::MS_BIND, std::ptr::null()))?
                    }
                }
            }
            Ok(())
        });
    }
}
