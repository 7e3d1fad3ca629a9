//! `filesystem`: the mount of a block device, typically the replicated (DRBD) partition the
//! data layers live on. ClusterLabs anchor: `ocf:heartbeat:Filesystem`.
//!
//! What it does differently from the anchor:
//! - monitor depth 0 reads /proc/self/mountinfo and forks nothing; depth 10 is an O_DIRECT
//!   read of the device, depth 20 an O_DIRECT write + fsync + read-back of a status file;
//!   unknown depths fall back to the next lower one (the anchor returns 6);
//! - mounts through mount(2) directly (no mount(8), no modprobe, no blkid per call);
//! - stop finds the processes holding the mount in /proc by mount ID (`sys::holders`), so a
//!   process using the filesystem through a bind mount elsewhere is never touched, signals TERM
//!   then KILL within the time budget and names the PIDs that blocked it.

use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::errno::Errno;
use nix::mount::{umount2, MntFlags};
use nix::sys::signal::Signal;

use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::fs_types;
use crate::sys::holders::{self, Holder, Method};
use crate::sys::mount::{self, MountInfo};
use crate::sys::mount_options::{self, MountOptions};
use crate::sys::{direct_io, proc};

pub struct Filesystem;

pub static FILESYSTEM: Filesystem = Filesystem;

static SPEC: AgentSpec = AgentSpec {
    name: "filesystem",
    shortdesc: "Mounts a block device (the replicated data partition)",
    longdesc: "Mounts a block device on a directory and unmounts it again, killing the processes that \
keep it busy if allowed. Monitor depth 0 checks /proc/self/mountinfo; depth 10 also reads the \
device's first block with O_DIRECT; depth 20 also writes, syncs and reads back a status file \
(.hastack-status/<resource>_<node> at the top of the mount) with O_DIRECT. Other depths use the \
next lower one.",
    params: &[
        ParamSpec::string("device").required().short("block device to mount").long(
            "The block device to mount, an absolute path (e.g. /dev/drbd0 or /dev/disk/by-uuid/...). \
For filesystems that need no device (tmpfs), the source name.",
        ),
        ParamSpec::string("directory")
            .required()
            .unique()
            .short("mount point")
            .long("The absolute path to mount the device on; created if missing. Not /."),
        ParamSpec::string("fstype").required().short("filesystem type").long(
            "The filesystem type (ext4, xfs, ...): one listed in /proc/filesystems or a module of \
the running kernel.",
        ),
        ParamSpec::string("options").default("").short("mount options").long(
            "Mount options as for mount -o, comma-separated. Generic ones (ro, noatime, nodev...) become \
mount flags, the rest goes to the filesystem; fstab-only ones (defaults, nofail, _netdev, x-*) are ignored; \
bind, move and loop are refused.",
        ),
        ParamSpec::select("fsck", &["auto", "yes", "no"])
            .default("auto")
            .short("check the filesystem before mounting")
            .long(
                "auto: run fsck -p only where a check is needed: ext2/ext3/ext4 without a journal or marked \
with errors, and non-journaling filesystems with an fsck helper; never for xfs, btrfs, journaled ext3/ext4 \
and other journaling or network filesystems. yes: always. no: never. fsck must finish within the start \
timeout.",
            ),
        ParamSpec::select("force_unmount", &["true", "safe", "false"])
            .default("true")
            .short("kill processes that keep the mount busy")
            .long(
                "true: find the processes holding the mount (cwd, root, exe, open files, memory maps; by mount \
ID, so bind mounts elsewhere are spared) and send TERM, then KILL after half the remaining stop time. \
safe: the same, but learn the mounts from /proc text alone, never calling into the filesystem (for a \
filesystem that may hang). false: kill nothing; stop fails naming the holders.",
            ),
    ],
    actions: &[
        ActionSpec::new("start", "60s"),
        ActionSpec::new("stop", "60s"),
        ActionSpec::monitor("20s", "40s"),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "10s"),
    ],
};

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Fsck {
    Auto,
    Yes,
    No,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ForceUnmount {
    True,
    Safe,
    False,
}

/// The parameters, checked and typed.
struct Config {
    device: String,
    directory: PathBuf,
    fstype: String,
    options: MountOptions,
    raw_options: String,
    fsck: Fsck,
    force: ForceUnmount,
}

impl Config {
    /// Level-0 checks: the parameters alone. Every error is 6 and names its parameter.
    fn from_ctx(ctx: &Ctx) -> OcfResult<Config> {
        let p = &ctx.params;
        let directory = normalize_directory(p.str("directory"))?;
        let fstype = p.str("fstype").trim().to_string();
        if fstype.is_empty() || !fstype.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
            return Err(OcfError::configured(format!("parameter 'fstype' is not a filesystem type name: '{fstype}'")));
        }
        if let Some(known) = fs_types::typo_of(&fstype) {
            return Err(OcfError::configured(format!(
                "parameter 'fstype': '{fstype}' is no filesystem type (did you mean '{known}'?)"
            )));
        }
        let raw_options = p.str("options").to_string();
        let options = mount_options::parse(&raw_options)
            .map_err(|e| OcfError::configured(format!("parameter 'options': {e}")))?;
        let device = p.str("device").trim().to_string();
        if device.starts_with('-') || device.contains('\n') {
            return Err(OcfError::configured(format!("parameter 'device' is not a device: '{device}'")));
        }
        let fsck = match p.str("fsck") {
            "yes" => Fsck::Yes,
            "no" => Fsck::No,
            _ => Fsck::Auto,
        };
        let force = match p.str("force_unmount") {
            "safe" => ForceUnmount::Safe,
            "false" => ForceUnmount::False,
            _ => ForceUnmount::True,
        };
        Ok(Config { device, directory, fstype, options, raw_options, fsck, force })
    }

    /// The mount point as mountinfo shows it: symlinks in an existing directory resolved.
    fn mount_point(&self) -> PathBuf {
        fs::canonicalize(&self.directory).unwrap_or_else(|_| self.directory.clone())
    }

    /// Whether the device is a block device path (as opposed to a source name like `tmpfs`).
    fn device_is_path(&self) -> bool {
        self.device.starts_with('/')
    }

    fn identity(&self) -> DeviceIdentity {
        DeviceIdentity::of(&self.device)
    }
}

/// An absolute directory, trailing slashes removed, no `.`/`..`, not `/`.
fn normalize_directory(raw: &str) -> OcfResult<PathBuf> {
    let path = Path::new(raw.trim());
    if !path.is_absolute() {
        return Err(OcfError::configured(format!("parameter 'directory' must be an absolute path, got '{raw}'")));
    }
    if path.components().any(|c| matches!(c, Component::CurDir | Component::ParentDir)) {
        return Err(OcfError::configured(format!("parameter 'directory' must not contain '.' or '..': '{raw}'")));
    }
    let clean: PathBuf = path.components().collect();
    if clean == Path::new("/") {
        return Err(OcfError::configured("parameter 'directory' must not be / (stop would unmount the root)"));
    }
    Ok(clean)
}

/// How to recognise our device in mountinfo: by device number (a block device, whatever path
/// names it) or by source name; btrfs shows an anonymous device number, so the canonical
/// source path is also compared.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DeviceIdentity {
    rdev: Option<(u32, u32)>,
    source: String,
}

impl DeviceIdentity {
    fn of(device: &str) -> Self {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(device).ok().filter(|m| m.file_type().is_block_device());
        let rdev = meta.map(|m| (nix::sys::stat::major(m.rdev()) as u32, nix::sys::stat::minor(m.rdev()) as u32));
        let source = fs::canonicalize(device).map(|p| p.to_string_lossy().into_owned()).unwrap_or(device.to_string());
        DeviceIdentity { rdev, source }
    }

    fn matches(&self, m: &MountInfo) -> bool {
        self.rdev == Some((m.major, m.minor)) || m.source == self.source
    }
}

/// What the mount table says about our directory and device.
#[derive(Debug)]
struct Assessment<'a> {
    /// Our device mounted on the directory (the lowest such mount, if stacked).
    ours: Option<&'a MountInfo>,
    /// The topmost mount on the directory, whatever it is.
    topmost: Option<&'a MountInfo>,
    /// Mounts strictly below the directory.
    below: Vec<&'a MountInfo>,
    /// Our device mounted elsewhere (bind mounts of it included).
    elsewhere: Vec<&'a MountInfo>,
}

impl Assessment<'_> {
    /// Mounted, visible, ours.
    fn running(&self) -> bool {
        matches!((self.ours, self.topmost), (Some(o), Some(t)) if o.mount_id == t.mount_id)
    }
}

fn assess<'a>(table: &'a [MountInfo], dir: &Path, dev: &DeviceIdentity) -> Assessment<'a> {
    Assessment {
        ours: table.iter().find(|m| m.mount_point == dir && dev.matches(m)),
        topmost: mount::mounted_at(table, dir),
        below: mount::mounted_below(table, dir),
        elsewhere: table.iter().filter(|m| m.mount_point != dir && dev.matches(m)).collect(),
    }
}

fn mount_table() -> OcfResult<Vec<MountInfo>> {
    mount::mounts().map_err(|e| OcfError::generic(format!("cannot read /proc/self/mountinfo: {e}")))
}

fn show(m: &MountInfo) -> String {
    format!("{} ({} on {})", m.mount_point.display(), m.source, m.fstype)
}

impl Agent for Filesystem {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let cfg = Config::from_ctx(ctx)?;
        if level < crate::ocf::agent::VALIDATE_HOST {
            return Ok(());
        }
        let Some(fstype) = fs_types::lookup(&cfg.fstype) else {
            return Err(OcfError::installed(format!(
                "parameter 'fstype': '{}' is not supported by this kernel (not in /proc/filesystems, no module \
in /lib/modules)",
                cfg.fstype
            )));
        };
        if !fstype.nodev || cfg.device_is_path() {
            check_device(&cfg)?;
        }
        if cfg.fsck == Fsck::Yes && fsck_helper(&cfg.fstype).is_none() {
            return Err(OcfError::installed(format!(
                "parameter 'fsck' is yes but fsck.{} is not installed",
                cfg.fstype
            )));
        }
        if cfg.directory.exists() && !cfg.directory.is_dir() {
            return Err(OcfError::args(format!(
                "parameter 'directory': {} exists and is not a directory",
                cfg.directory.display()
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let cfg = Config::from_ctx(ctx)?;
        let dev = cfg.identity();
        let dir = cfg.mount_point();
        let table = mount_table()?;
        let state = assess(&table, &dir, &dev);
        if state.running() {
            ctx.log.info(format!("{} is already mounted on {}", cfg.device, dir.display()));
            return Ok(OcfStatus::Success);
        }
        refuse_unsafe_start(&cfg, &state, &dir)?;
        if !dir.exists() {
            fs::create_dir_all(&dir).map_err(|e| {
                OcfError::generic(format!("cannot create parameter 'directory' {}: {e}", dir.display()))
            })?;
            ctx.log.info(format!("created mount point {}", dir.display()));
        }
        run_fsck(ctx, &cfg)?;
        for opt in &cfg.options.ignored {
            ctx.log.debug(format!("mount option '{opt}' is for fstab only; ignored"));
        }
        do_mount(ctx, &cfg, &dir)?;
        let table = mount_table()?;
        if !assess(&table, &dir, &dev).running() {
            return Err(OcfError::generic(format!(
                "mounted {} on {}, but mountinfo does not show it there",
                cfg.device,
                dir.display()
            )));
        }
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let cfg = Config::from_ctx(ctx)?;
        // Our own working directory must never hold the mount.
        let _ = std::env::set_current_dir("/");
        let dev = cfg.identity();
        let dir = cfg.mount_point();
        let table = mount_table()?;
        let state = assess(&table, &dir, &dev);
        let Some(ours) = state.ours else {
            if let Some(other) = state.topmost {
                ctx.log.info(format!("{} is not mounted on {}; {} is", cfg.device, dir.display(), show(other)));
            }
            return Ok(OcfStatus::Success);
        };
        // Everything mounted on top of or below our mount keeps it busy: unmount that first,
        // children before parents, with the same policy (a failed stop means fencing).
        let targets: Vec<MountInfo> = mount::subtree_post_order(&table, ours.mount_id).into_iter().cloned().collect();
        for m in &targets {
            if m.mount_id != ours.mount_id {
                ctx.log.info(format!("unmounting {} first: it is mounted within {}", show(m), dir.display()));
            }
            unmount_one(ctx, &cfg, m)?;
        }
        let table = mount_table()?;
        let left = assess(&table, &dir, &dev)
            .elsewhere
            .iter()
            .map(|m| m.mount_point.display().to_string())
            .collect::<Vec<_>>();
        if !left.is_empty() {
            // Not ours to unmount: a bind mount or a second mount someone else made.
            ctx.log.warn(format!(
                "unmounted {}; {} is still mounted at {} (not managed by this resource)",
                dir.display(),
                cfg.device,
                left.join(", ")
            ));
        }
        Ok(OcfStatus::Success)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let cfg = Config::from_ctx(ctx)?;
        let dev = cfg.identity();
        let dir = cfg.mount_point();
        let table = mount_table()?;
        let state = assess(&table, &dir, &dev);
        if !state.running() {
            return match (state.ours, state.topmost) {
                (Some(_), Some(top)) => Err(OcfError::generic(format!(
                    "{} is mounted on {} but hidden under {}",
                    cfg.device,
                    dir.display(),
                    show(top)
                ))),
                _ => Ok(OcfStatus::NotRunning),
            };
        }
        let depth = effective_depth(ctx.check_level());
        if depth >= 10 && cfg.device_is_path() && dev.rdev.is_some() {
            check_device(&cfg)?;
            direct_io::read_first_block(Path::new(&cfg.device)).map_err(|e| {
                OcfError::generic(format!("O_DIRECT read of parameter 'device' {} failed: {e}", cfg.device))
            })?;
        }
        if depth >= 20 && cfg.options.flags.contains(nix::mount::MsFlags::MS_RDONLY) {
            ctx.log.debug("mounted read-only: no status file write at depth 20");
        } else if depth >= 20 {
            let status = status_file(ctx, &dir);
            if let Some(parent) = status.parent() {
                fs::create_dir_all(parent).map_err(|e| {
                    OcfError::generic(format!("cannot create status directory {}: {e}", parent.display()))
                })?;
            }
            let content = format!("{} {}\n", ctx.env.resource(), node_name(ctx));
            direct_io::write_and_verify(&status, content.as_bytes()).map_err(|e| {
                OcfError::generic(format!("write and read-back of status file {} failed: {e}", status.display()))
            })?;
        }
        Ok(OcfStatus::Success)
    }
}

/// OCF_CHECK_LEVEL to the depth we implement: unknown depths use the next lower one.
fn effective_depth(level: u32) -> u32 {
    match level {
        20.. => 20,
        10..=19 => 10,
        _ => 0,
    }
}

fn node_name(ctx: &Ctx) -> String {
    ctx.env
        .meta("on_node")
        .map(str::to_string)
        .or_else(|| nix::unistd::gethostname().ok().map(|h| h.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "localhost".into())
}

/// `<mount>/.hastack-status/<resource>[_<clone>]_<node>`: one per resource instance and node,
/// so clones on a cluster filesystem do not overwrite each other's.
fn status_file(ctx: &Ctx, dir: &Path) -> PathBuf {
    let mut name = ctx.env.resource().to_string();
    if name.is_empty() {
        name = "filesystem".into();
    }
    if let Some(clone) = ctx.env.clone_instance() {
        name = format!("{name}_{clone}");
    }
    let name = format!("{name}_{}", node_name(ctx)).replace('/', "_");
    dir.join(".hastack-status").join(name)
}

/// The device exists and is a block device (level 10 and monitor 10).
fn check_device(cfg: &Config) -> OcfResult<()> {
    match fs::metadata(&cfg.device) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Err(OcfError::installed(format!("parameter 'device': {} does not exist", cfg.device)))
        }
        Err(e) => Err(OcfError::installed(format!("parameter 'device': cannot stat {}: {e}", cfg.device))),
        Ok(m) if !m.file_type().is_block_device() => {
            Err(OcfError::args(format!("parameter 'device': {} is not a block device", cfg.device)))
        }
        Ok(_) => Ok(()),
    }
}

/// Start must not stack on or hide another mount, nor mount a device that is in use elsewhere.
fn refuse_unsafe_start(cfg: &Config, state: &Assessment, dir: &Path) -> OcfResult<()> {
    if let Some(first) = state.below.first() {
        return Err(OcfError::generic(format!(
            "refusing to mount on {}: {} is mounted below it{}",
            dir.display(),
            show(first),
            if state.below.len() > 1 { format!(" (and {} more)", state.below.len() - 1) } else { String::new() }
        )));
    }
    if let Some(top) = state.topmost {
        return Err(OcfError::generic(format!(
            "refusing to mount on {}: {} is already mounted there",
            dir.display(),
            show(top)
        )));
    }
    if let Some(other) = state.elsewhere.first() {
        return Err(OcfError::generic(format!(
            "refusing to mount parameter 'device' {}: it is already mounted on {}",
            cfg.device,
            other.mount_point.display()
        )));
    }
    Ok(())
}

/// Types that never need a check before mounting: they replay a journal or log, check
/// themselves, or have no local device.
const SELF_CHECKING: &[&str] = &[
    "xfs",
    "btrfs",
    "jfs",
    "reiserfs",
    "reiser4",
    "f2fs",
    "nilfs2",
    "zfs",
    "gfs2",
    "ocfs2",
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "ceph",
    "glusterfs",
    "lustre",
    "tmpfs",
    "overlay",
    "squashfs",
    "erofs",
    "iso9660",
];

/// Whether `fsck=auto` checks this filesystem: ext2/3/4 by their superblock (no journal, or
/// errors/unclean state recorded), other types only if they are not journaling and have a
/// checker installed.
fn auto_needs_fsck(fstype: &str, ext: Option<fs_types::ExtState>, helper: bool) -> bool {
    if fstype.starts_with("ext") {
        return ext.is_some_and(|s| !s.has_journal || !s.clean);
    }
    !SELF_CHECKING.contains(&fstype) && helper
}

fn fsck_helper(fstype: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(format!("fsck.{fstype}")))
        .find(|p| p.is_file())
}

fn run_fsck(ctx: &Ctx, cfg: &Config) -> OcfResult<()> {
    let helper = fsck_helper(&cfg.fstype);
    let wanted = match cfg.fsck {
        Fsck::No => false,
        Fsck::Yes => true,
        Fsck::Auto => {
            cfg.device_is_path()
                && auto_needs_fsck(&cfg.fstype, fs_types::ext_state(Path::new(&cfg.device)), helper.is_some())
        }
    };
    if !wanted {
        return Ok(());
    }
    let Some(helper) = helper else {
        return Err(OcfError::installed(format!("parameter 'fsck': fsck.{} is not installed", cfg.fstype)));
    };
    ctx.log.info(format!("checking {} with {} -p", cfg.device, helper.display()));
    let out = proc::run(Command::new(&helper).arg("-p").arg(&cfg.device), ctx.deadline).map_err(|e| {
        OcfError::generic(format!("fsck of {} {e}; raise the start timeout or set parameter 'fsck' to no", cfg.device))
    })?;
    // fsck: 0 clean, 1 errors corrected, 2 corrected and reboot advised, 4+ left uncorrected.
    match out.status.code() {
        Some(0) => Ok(()),
        Some(c @ (1 | 2)) => {
            ctx.log.warn(format!("fsck corrected errors on {} (exit {c}): {}", cfg.device, out.message()));
            Ok(())
        }
        c => Err(OcfError::generic(format!(
            "fsck of {} failed (exit {}): {}",
            cfg.device,
            c.map_or("by signal".into(), |c| c.to_string()),
            out.message()
        ))),
    }
}

/// A `mount.<fstype>` helper: network and FUSE filesystems need userland (address lookup,
/// credentials), which only mount(8) runs.
fn mount_helper(fstype: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin"].iter().map(|d| Path::new(d).join(format!("mount.{fstype}"))).find(|p| p.exists())
}

fn do_mount(ctx: &Ctx, cfg: &Config, dir: &Path) -> OcfResult<()> {
    if mount_helper(&cfg.fstype).is_some() {
        let mut cmd = Command::new("mount");
        cmd.arg("-t").arg(&cfg.fstype);
        if !cfg.raw_options.is_empty() {
            cmd.arg("-o").arg(&cfg.raw_options);
        }
        cmd.arg("--").arg(&cfg.device).arg(dir);
        let out = proc::run(&mut cmd, ctx.deadline)
            .map_err(|e| OcfError::generic(format!("mount {} on {}: {e}", cfg.device, dir.display())))?;
        if !out.success() {
            return Err(OcfError::generic(format!(
                "mount {} on {} failed: {}",
                cfg.device,
                dir.display(),
                out.message()
            )));
        }
        return Ok(());
    }
    let data = (!cfg.options.data.is_empty()).then_some(cfg.options.data.as_str());
    nix::mount::mount(Some(cfg.device.as_str()), dir, Some(cfg.fstype.as_str()), cfg.options.flags, data).map_err(|e| {
        let hint = match e {
            Errno::EINVAL => " (wrong fstype, bad option or bad superblock; see dmesg)",
            Errno::ENODEV => " (the kernel does not know this fstype)",
            Errno::EBUSY => " (the device is in use)",
            Errno::ENOTBLK => " (not a block device)",
            _ => "",
        };
        let reason =
            format!("mount of {} on {} as {} failed: {}{hint}", cfg.device, dir.display(), cfg.fstype, e.desc());
        if e == Errno::ENODEV {
            OcfError::installed(reason)
        } else {
            OcfError::generic(reason)
        }
    })
}

/// Unmounts one mount; if busy, finds its holders and, as `force_unmount` allows, signals TERM
/// until half the remaining budget, then KILL until the end, rescanning each round.
fn unmount_one(ctx: &Ctx, cfg: &Config, m: &MountInfo) -> OcfResult<()> {
    let deadline = ctx.deadline;
    let term_until = deadline.fraction(0.5);
    let method = if cfg.force == ForceUnmount::Safe { Method::ProcOnly } else { Method::Exact };
    let mut last: Vec<Holder> = Vec::new();
    loop {
        match umount2(&m.mount_point, MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => {
                ctx.log.info(format!("unmounted {}", show(m)));
                return Ok(());
            }
            Err(Errno::EBUSY) => {}
            Err(e @ (Errno::EINVAL | Errno::ENOENT)) => {
                let table = mount_table()?;
                if !table.iter().any(|t| t.mount_id == m.mount_id) {
                    return Ok(());
                }
                return Err(OcfError::generic(format!("umount of {} failed: {}", m.mount_point.display(), e.desc())));
            }
            Err(e) => {
                return Err(OcfError::generic(format!("umount of {} failed: {}", m.mount_point.display(), e.desc())))
            }
        }
        if deadline.expired() {
            return Err(busy_error(m, &last, "could not unmount it within the stop timeout"));
        }
        let table = mount_table()?;
        let scan = holders::find_holders(&[m.mount_id], &table, method, deadline);
        last = scan.holders.clone();
        let killable: Vec<&Holder> = scan.killable();
        if cfg.force == ForceUnmount::False {
            return Err(busy_error(m, &last, "parameter 'force_unmount' is false, so nothing was killed"));
        }
        if killable.is_empty() {
            if last.iter().any(|h| h.protected) {
                return Err(busy_error(
                    m,
                    &last,
                    "held by this agent's own process tree or init, which is never killed",
                ));
            }
            // Busy with no process in sight: a process exiting right now, or a kernel user.
            deadline.at_most(Duration::from_millis(50)).poll(Duration::from_millis(50), || None::<()>);
            continue;
        }
        let signal = if term_until.expired() { Signal::SIGKILL } else { Signal::SIGTERM };
        ctx.log.warn(format!(
            "{} is busy; sending {} to {}",
            m.mount_point.display(),
            signal.as_str(),
            holders::describe(&killable, 20)
        ));
        let mut signalled = Vec::new();
        for h in &killable {
            // Signal only the process the scan saw, not a new one that got its PID.
            if proc::is_same_process(h.pid, h.starttime) && proc::signal(h.pid, signal) {
                signalled.push(h.pid);
            }
        }
        let wait_until = if signal == Signal::SIGTERM { term_until } else { deadline.at_most(Duration::from_secs(2)) };
        proc::wait_gone(&signalled, wait_until);
    }
}

fn busy_error(m: &MountInfo, holders: &[Holder], why: &str) -> OcfError {
    let all: Vec<&Holder> = holders.iter().collect();
    let list = if all.is_empty() { "no process found holding it".to_string() } else { holders::describe(&all, 10) };
    OcfError::generic(format!("umount of {} failed: busy; held by {list}; {why}", m.mount_point.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
36 22 7:0 / /srv/data rw - ext4 /dev/loop0 rw
37 36 0:40 / /srv/data/tmp rw - tmpfs tmpfs rw
38 22 7:0 / /mnt/bind rw - ext4 /dev/loop0 rw
40 22 7:1 / /srv/other rw - xfs /dev/loop1 rw
41 40 0:41 / /srv/other rw - tmpfs tmpfs rw
";

    fn dev(major: u32, minor: u32, source: &str) -> DeviceIdentity {
        DeviceIdentity { rdev: Some((major, minor)), source: source.into() }
    }

    #[test]
    fn assesses_mounts_at_below_and_elsewhere() {
        let t = mount::parse(TABLE);
        let a = assess(&t, Path::new("/srv/data"), &dev(7, 0, "/dev/loop0"));
        assert!(a.running());
        assert_eq!(a.below.iter().map(|m| m.mount_id).collect::<Vec<_>>(), vec![37]);
        assert_eq!(a.elsewhere.iter().map(|m| m.mount_id).collect::<Vec<_>>(), vec![38]);
        // Ours, but something is mounted on top of it.
        let b = assess(&t, Path::new("/srv/other"), &dev(7, 1, "/dev/loop1"));
        assert!(!b.running());
        assert_eq!(b.ours.unwrap().mount_id, 40);
        // Another device on the directory.
        let c = assess(&t, Path::new("/srv/data"), &dev(7, 5, "/dev/loop5"));
        assert!(c.ours.is_none() && !c.running());
        // Matched by source when the device number is unknown (btrfs shows 0:N).
        assert!(
            assess(&t, Path::new("/srv/data"), &DeviceIdentity { rdev: None, source: "/dev/loop0".into() }).running()
        );
    }

    #[test]
    fn directories_are_absolute_and_not_root() {
        assert_eq!(normalize_directory("/srv/data//").unwrap(), PathBuf::from("/srv/data"));
        assert!(normalize_directory("srv/data").unwrap_err().reason.contains("'directory'"));
        assert!(normalize_directory("/").is_err());
        assert!(normalize_directory("///").is_err());
        assert!(normalize_directory("/srv/../etc").is_err());
    }

    #[test]
    fn unknown_depths_fall_back() {
        assert_eq!(effective_depth(0), 0);
        assert_eq!(effective_depth(5), 0);
        assert_eq!(effective_depth(10), 10);
        assert_eq!(effective_depth(15), 10);
        assert_eq!(effective_depth(20), 20);
        assert_eq!(effective_depth(30), 20);
    }

    #[test]
    fn fsck_auto_checks_only_what_needs_it() {
        let ext = |has_journal, clean| Some(fs_types::ExtState { has_journal, clean });
        assert!(!auto_needs_fsck("ext4", ext(true, true), true));
        assert!(auto_needs_fsck("ext4", ext(false, true), true));
        assert!(auto_needs_fsck("ext3", ext(true, false), true));
        assert!(auto_needs_fsck("ext2", ext(false, true), true));
        assert!(!auto_needs_fsck("ext4", None, true));
        assert!(!auto_needs_fsck("xfs", None, true));
        assert!(auto_needs_fsck("vfat", None, true));
        assert!(!auto_needs_fsck("vfat", None, false));
    }
}
