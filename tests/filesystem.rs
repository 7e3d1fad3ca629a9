//! `filesystem` on real loop devices with ext4 and xfs: the lifecycle at every monitor depth,
//! busy mounts held by child processes, bind mounts that must be spared, mounts below the
//! mount point, bad input, ocf-tester and crm_resource.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hastack::sys::mount;

use crate::support::*;

/// A formatted loop device and a not-yet-existing mount point under a temporary directory.
/// Fields drop in order: leftover mounts, then the loop device, then the directory.
struct Setup {
    mounts: Vec<MountGuard>,
    lo: LoopDevice,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Setup {
    fn new(mkfs: &[&str], mib: u64) -> Setup {
        let tmp = tempfile::Builder::new().prefix("hst-fs").tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        let lo = LoopDevice::new(mib, Some(mkfs));
        Setup { mounts: vec![MountGuard { target: dir.clone() }], lo, dir, _tmp: tmp }
    }
    fn ext4() -> Setup {
        Setup::new(&["mkfs.ext4", "-q"], 64)
    }
    fn agent(&self, fstype: &str) -> AgentRun {
        AgentRun::new("filesystem")
            .param("device", &self.lo.device)
            .param("directory", self.dir.display())
            .param("fstype", fstype)
    }
    /// Another directory next to the mount point (for bind mounts).
    fn sibling(&self, name: &str) -> PathBuf {
        let p = self._tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

/// Whether something is mounted exactly at `dir`, and its source.
fn mounted_source(dir: &Path) -> Option<String> {
    let table = mount::mounts().unwrap();
    mount::mounted_at(&table, dir).map(|m| m.source.clone())
}

fn need_fs_tools(mkfs: &str, package: &str) -> bool {
    need_root("loop devices and mounts") && need_program("losetup", "util-linux") && need_program(mkfs, package)
}

fn lifecycle(setup: &Setup, fstype: &str) {
    let fs = setup.agent(fstype);
    fs.run("monitor").expect(7);
    fs.clone().recurring().run("monitor").expect(7);
    fs.run("start").expect(0);
    assert!(setup.dir.is_dir(), "start creates the mount point");
    assert_eq!(mounted_source(&setup.dir).as_deref(), Some(setup.lo.device.as_str()));
    fs.run("start").expect(0);
    for depth in [0, 10, 20, 30] {
        fs.clone().recurring().depth(depth).run("monitor").expect(0);
    }
    let status = setup.dir.join(".hastack-status").join(format!("test-filesystem_{}", hostname()));
    let content = std::fs::read_to_string(&status).unwrap();
    assert!(content.starts_with("test-filesystem "), "{content:?}");
    fs.run("stop").expect(0);
    assert_eq!(mounted_source(&setup.dir), None);
    fs.run("stop").expect(0);
    fs.run("monitor").expect(7);
    fs.clone().depth(20).run("monitor").expect(7);
}

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().to_string_lossy().into_owned()
}

#[test]
fn ext4_start_monitor_stop_at_every_depth() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    lifecycle(&Setup::ext4(), "ext4");
}

#[test]
fn xfs_start_monitor_stop_at_every_depth() {
    if !need_fs_tools("mkfs.xfs", "xfsprogs") {
        return;
    }
    lifecycle(&Setup::new(&["mkfs.xfs", "-q"], 320), "xfs");
}

/// A child holding `path` busy: with its working directory there (`cwd`), or an open file
/// (`file`, which also ignores SIGTERM so that only KILL ends it).
fn holder(how: &str, path: &Path) -> ChildGuard {
    let mut cmd = match how {
        "cwd" => {
            let mut c = Command::new("sleep");
            c.arg("600").current_dir(path);
            c
        }
        "file" => {
            let mut c = Command::new("sh");
            c.args(["-c", "trap '' TERM; exec sleep 600 3>>\"$1\"", "sh"]).arg(path).current_dir("/");
            c
        }
        _ => unreachable!(),
    };
    let child = ChildGuard(cmd.stdin(Stdio::null()).spawn().unwrap());
    let pid = child.pid();
    // Holding once sleep runs with the cwd or fd in place.
    wait_for("the holder to be in place", Duration::from_secs(5), || {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
    });
    child
}

/// The signal that ended a child, once it has ended.
fn ended_by(child: &mut ChildGuard) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    child.0.try_wait().unwrap().map(|s| s.signal().unwrap_or(0))
}

#[test]
fn stop_kills_holders_with_term_then_kill_within_the_budget() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let setup = Setup::ext4();
    let fs = setup.agent("ext4").timeout_ms(6000);
    fs.run("start").expect(0);
    let mut in_cwd = holder("cwd", &setup.dir);
    let mut with_file = holder("file", &setup.dir.join("data"));
    let out = fs.run("stop");
    out.expect(0);
    assert!(out.elapsed < Duration::from_secs(6), "stop took {:?}", out.elapsed);
    assert!(
        out.stderr.contains(&format!("SIGTERM to {}", in_cwd.pid()))
            || out.stderr.contains(&format!("{} (sleep: cwd)", in_cwd.pid())),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("{} (sleep: fd 3)", with_file.pid())), "{}", out.stderr);
    assert!(out.stderr.contains("SIGKILL"), "the TERM-ignoring holder needs KILL:\n{}", out.stderr);
    assert_eq!(mounted_source(&setup.dir), None);
    wait_for("both holders to be reaped", Duration::from_secs(5), || {
        ended_by(&mut in_cwd).is_some() && ended_by(&mut with_file).is_some()
    });
    assert_eq!(ended_by(&mut in_cwd), Some(15));
    assert_eq!(ended_by(&mut with_file), Some(9));
}

#[test]
fn stop_without_force_unmount_fails_naming_the_holder() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let setup = Setup::ext4();
    let fs = setup.agent("ext4").param("force_unmount", "false");
    fs.run("start").expect(0);
    let mut h = holder("cwd", &setup.dir);
    fs.run("stop").expect(1).reason_contains(&format!("{} (sleep: cwd)", h.pid())).reason_contains("force_unmount");
    assert_eq!(ended_by(&mut h), None, "force_unmount=false kills nothing");
    assert!(mounted_source(&setup.dir).is_some());
    fs.run("monitor").expect(0);
    drop(h);
    fs.run("stop").expect(0);
    assert_eq!(mounted_source(&setup.dir), None);
}

/// A process using the same filesystem through a bind mount elsewhere uses another mount: it
/// keeps running, the bind mount stays, our mount goes and stop succeeds.
fn bind_mount_user_is_spared(force_unmount: &str) {
    let mut setup = Setup::ext4();
    let fs = setup.agent("ext4").param("force_unmount", force_unmount);
    fs.run("start").expect(0);
    std::fs::create_dir(setup.dir.join("shared")).unwrap();
    let bind = setup.sibling("bind");
    setup.mounts.push(MountGuard::mount(&["--bind", setup.dir.to_str().unwrap()], &bind));
    let mut outsider = holder("cwd", &bind.join("shared"));
    let mut outsider_file = holder("file", &bind.join("shared/log"));
    let mut insider = holder("cwd", &setup.dir.join("shared"));
    let out = fs.run("stop");
    out.expect(0);
    assert!(out.stderr.contains(&format!("still mounted at {}", bind.display())), "{}", out.stderr);
    assert_eq!(mounted_source(&setup.dir), None);
    assert_eq!(mounted_source(&bind).as_deref(), Some(setup.lo.device.as_str()));
    wait_for("the holder inside the mount to end", Duration::from_secs(5), || ended_by(&mut insider).is_some());
    assert_eq!(ended_by(&mut outsider), None, "the process in the bind mount was touched");
    assert_eq!(ended_by(&mut outsider_file), None, "the process with a file in the bind mount was touched");
    assert!(!out.stderr.contains(&outsider.pid().to_string()), "{}", out.stderr);
    // Ours is stopped; the device is still in use elsewhere, so start refuses.
    fs.run("monitor").expect(7);
    fs.run("start").expect(1).reason_contains("'device'").reason_contains(bind.to_str().unwrap());
}

#[test]
fn bind_mount_user_is_spared_exact() {
    if need_fs_tools("mkfs.ext4", "e2fsprogs") {
        bind_mount_user_is_spared("true");
    }
}

#[test]
fn bind_mount_user_is_spared_safe() {
    if need_fs_tools("mkfs.ext4", "e2fsprogs") {
        bind_mount_user_is_spared("safe");
    }
}

#[test]
fn start_refuses_a_mount_point_with_a_mount_below() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let mut setup = Setup::ext4();
    let below = setup.dir.join("sub");
    std::fs::create_dir_all(&below).unwrap();
    setup.mounts.push(MountGuard::mount(&["-t", "tmpfs", "hsttmp"], &below));
    setup.agent("ext4").run("start").expect(1).reason_contains(below.to_str().unwrap());
    assert_eq!(mounted_source(&setup.dir), None);
    // Something else on the directory itself: refused too.
    drop(setup.mounts.pop());
    setup.mounts.push(MountGuard::mount(&["-t", "tmpfs", "hsttmp"], &setup.dir.clone()));
    setup.agent("ext4").run("start").expect(1).reason_contains("already mounted there");
    setup.agent("ext4").run("monitor").expect(7);
}

#[test]
fn stop_unmounts_what_is_mounted_within_first() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let mut setup = Setup::ext4();
    let fs = setup.agent("ext4");
    fs.run("start").expect(0);
    let below = setup.dir.join("sub");
    std::fs::create_dir(&below).unwrap();
    setup.mounts.push(MountGuard::mount(&["-t", "tmpfs", "hsttmp"], &below));
    let mut h = holder("cwd", &below);
    fs.run("stop").expect(0);
    assert_eq!(mounted_source(&below), None);
    assert_eq!(mounted_source(&setup.dir), None);
    wait_for("the holder in the submount to end", Duration::from_secs(5), || ended_by(&mut h).is_some());
}

#[test]
fn bad_input_names_the_parameter() {
    let base = || AgentRun::new("filesystem").param("directory", "/srv/hst-nowhere").param("fstype", "ext4");
    base().run("start").expect(6).reason_contains("'device'");
    base().run("validate-all").expect(6).reason_contains("'device'");
    AgentRun::new("filesystem")
        .param("device", "/dev/hst-none")
        .param("fstype", "ext4")
        .run("validate-all")
        .expect(6)
        .reason_contains("'directory'");
    let dev = base().param("device", "/dev/hst-none");
    dev.clone().param("directory", "srv/data").run("validate-all").expect(6).reason_contains("'directory'");
    dev.clone().param("directory", "srv/data").run("start").expect(6).reason_contains("'directory'");
    dev.clone().param("directory", "/").run("validate-all").expect(6).reason_contains("'directory'");
    dev.clone().param("fsck", "maybe").run("validate-all").expect(6).reason_contains("'fsck'");
    dev.clone().param("force_unmount", "always").run("validate-all").expect(6).reason_contains("'force_unmount'");
    dev.clone().param("options", "bind").run("validate-all").expect(6).reason_contains("'options'");
    // Level 0 checks syntax only; level 10 and start check this host.
    dev.run("validate-all").expect(0);
    dev.clone().depth(10).run("validate-all").expect(5).reason_contains("'device'");
    dev.run("start").expect(5).reason_contains("'device'");
    dev.run("monitor").expect(7);
    dev.run("stop").expect(0);
    // One slip from a known type is a typo on every node (6); a name of its own is for the node's
    // kernel to know (5 where it does not).
    let typo = dev.clone().param("fstype", "ext44");
    typo.run("validate-all")
        .expect(6)
        .reason_contains("parameter 'fstype': 'ext44' is no filesystem type (did you mean 'ext4'?)");
    typo.run("monitor").expect(6);
    let unknown = dev.clone().param("fstype", "hstnosuchfs");
    unknown.run("validate-all").expect(0);
    unknown.clone().depth(10).run("validate-all").expect(5).reason_contains("'fstype'");
    unknown.run("start").expect(5).reason_contains("'fstype'");
    dev.clone().param("device", "/dev/null").run("start").expect(2).reason_contains("not a block device");
}

#[test]
fn ocf_tester_passes() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let setup = Setup::ext4();
    let agent = agent_path("filesystem");
    let out = run_with_deadline(
        Command::new("ocf-tester")
            .args(["-n", "hstfs", "-o"])
            .arg(format!("device={}", setup.lo.device))
            .arg("-o")
            .arg(format!("directory={}", setup.dir.display()))
            .args(["-o", "fstype=ext4"])
            .arg(&agent),
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 0, "ocf-tester failed:\n{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("passed all tests"), "{}", out.stdout);
    assert_eq!(mounted_source(&setup.dir), None, "ocf-tester ends with a stop");
}

#[test]
fn crm_resource_gives_the_right_codes() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") || !need_program("crm_resource", "pacemaker-cli-utils") {
        return;
    }
    let setup = Setup::ext4();
    let crm = |args: &[&str], options: &[String]| {
        crate::conformance::install_system_links();
        let mut cmd = Command::new("crm_resource");
        cmd.args(args).args(["--class", "ocf", "--provider", "hastack", "--agent", "filesystem"]);
        for o in options {
            cmd.arg("--option").arg(o);
        }
        run_with_deadline(&mut cmd, Duration::from_secs(30))
    };
    let opts = vec![
        format!("device={}", setup.lo.device),
        format!("directory={}", setup.dir.display()),
        "fstype=ext4".to_string(),
    ];
    crm(&["--validate"], &opts).expect(0);
    let mut bad = opts.clone();
    bad[2] = "fstype=hstnosuchfs".into();
    crm(&["--validate=10"], &bad).expect(5);
    assert!(crm(&["--validate=10"], &bad).stdout.contains("'fstype'"));
    crm(&["--validate"], &opts[1..]).expect(6);
    assert!(crm(&["--validate"], &opts[1..]).stdout.contains("'device'"));
    crm(&["--force-check"], &opts).expect(7);
    crm(&["--force-start"], &opts).expect(0);
    assert!(mounted_source(&setup.dir).is_some());
    crm(&["--force-check"], &opts).expect(0);
    crm(&["--force-check=20"], &opts).expect(0);
    crm(&["--force-stop"], &opts).expect(0);
    assert_eq!(mounted_source(&setup.dir), None);
    crm(&["--force-check"], &opts).expect(7);
}

#[test]
fn fsck_runs_only_where_needed() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let checked = |setup: &Setup, fsck: &str| {
        let fs = setup.agent("ext4").param("fsck", fsck);
        let out = fs.run("start");
        out.expect(0);
        fs.run("stop").expect(0);
        out.stderr.contains("checking")
    };
    let journaled = Setup::ext4();
    assert!(!checked(&journaled, "auto"), "a journaled ext4 needs no fsck");
    assert!(checked(&journaled, "yes"));
    let no_journal = Setup::new(&["mkfs.ext4", "-q", "-O", "^has_journal"], 64);
    assert!(checked(&no_journal, "auto"), "ext4 without a journal is checked");
    assert!(!checked(&no_journal, "no"));
}

#[test]
fn options_become_mount_flags_and_filesystem_data() {
    if !need_fs_tools("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let setup = Setup::ext4();
    let fs = setup.agent("ext4").param("options", "defaults,ro,noatime,errors=remount-ro,_netdev");
    fs.run("start").expect(0);
    let table = mount::mounts().unwrap();
    let m = mount::mounted_at(&table, &setup.dir).unwrap();
    let flags: Vec<&str> = m.mount_options.split(',').collect();
    assert!(flags.contains(&"ro") && flags.contains(&"noatime"), "{}", m.mount_options);
    assert!(m.super_options.contains("errors=remount-ro"), "{}", m.super_options);
    // Read-only: depth 20 does not try to write its status file.
    fs.clone().depth(20).run("monitor").expect(0);
    assert!(!setup.dir.join(".hastack-status").exists());
    fs.run("stop").expect(0);
}
