//! The warm standby: `activemq` as a promotable clone (meta `promotable=true`, `promoted-max=1`).
//!
//! A broker JVM whose data directory is not there waits in KahaDB's SharedFileLocker: it retries
//! `mkdirs` and the lock every `lockAcquireSleepInterval` (BENCHMARKS.md "A warm standby"), fully
//! configured and with no connector open. So an unpromoted instance is that JVM, started where
//! the replicated partition is not mounted; when the partition is mounted here the JVM takes the
//! store and serves within one interval, and promote only waits for it. That is safe only if the
//! broker's user cannot create the data directory while the partition is away (else it would
//! make an empty store on the root filesystem and serve it): [`place`] refuses it.
//!
//! The roles, as monitor reports them:
//! - unpromoted (0): the standby JVM, not listening; or its *waiter*, a detached process that
//!   starts the JVM once the partition has left this node (after a demote, the partition is
//!   still mounted: a JVM started then would take the store at once);
//! - promoted (8): a marker file written by promote, and the broker serving from a store that is
//!   not on the root filesystem;
//! - 7: nothing runs.
//!
//! Every node with a standby (or its waiter) has the same promotion score: Pacemaker promotes no
//! instance without one, and the Promoted role's colocation with the filesystem picks the node.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use super::{Server, Source};
use crate::agents::service::checks;
use crate::agents::service::instance::open_log;
use crate::agents::service::{self, Found, Instance, Probe, Service};
use crate::ocf::agent::VALIDATE_HOST;
use crate::ocf::{Ctx, Deadline, OcfError, OcfResult, OcfStatus};
use crate::sys::identity::{self, Identity};
use crate::sys::proc::{self, Account, Readiness};
use crate::sys::{listeners, logtail};

/// The promotion score of a node that can take the store.
const PROMOTION_SCORE: u32 = 10;

/// What the broker logs once it waits for its store (ActiveMQ 5.17's SharedFileLocker; later
/// versions log the second form at every retry).
const LOCKER_WAITS: &[&str] = &["waiting a lock to be acquired", "is locked... waiting"];

/// Parameter checks of the standby (level 0: the same on every node).
pub fn validate_syntax(ctx: &Ctx) -> OcfResult<()> {
    if ctx.is_set("broker_uri") {
        return Err(OcfError::configured(
            "parameter 'broker_uri' cannot configure a warm standby (promotable=true): a broker: URI cannot set \
             KahaDB's lockAcquireSleepInterval, so the standby would take its store up to 10 s after the partition \
             is mounted; use 'config' (an activemq.xml with <shared-file-locker lockAcquireSleepInterval=\"100\"/>)",
        ));
    }
    if ctx.env.promoted_max().is_some_and(|n| n != 1) || ctx.env.promoted_node_max().is_some_and(|n| n != 1) {
        return Err(OcfError::configured(
            "a warm-standby broker needs promoted-max=1 and promoted-node-max=1: one store, one serving broker",
        ));
    }
    Ok(())
}

/// Host checks of the standby: the data directory as it stands here ([`place`]), writable when
/// the partition is mounted here.
pub fn validate_host(amq: &Server, account: &Account) -> OcfResult<()> {
    if place(&amq.data_dir, account)? == Place::Here {
        checks::require_writable_data_dir("data_dir", &amq.data_dir, account)?;
    }
    Ok(())
}

/// Where the store stands on this node.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    /// The data directory exists on a mounted filesystem: the partition is here.
    Here,
    /// The data directory does not exist and the broker's user cannot create it: a standby waits.
    Away,
}

/// The data directory on this node, refusing what would let a standby serve an empty store: a
/// data directory on the root filesystem, or one the broker's user could create (the first
/// existing ancestor writable and searchable by it). Exit 2, not 6: both are facts of this
/// node's root filesystem (a mount point's mode, a directory made by hand), and a 6 would stop
/// the broker serving on the other node too; banning this node keeps it.
pub fn place(data_dir: &Path, account: &Account) -> OcfResult<Place> {
    if data_dir.is_dir() {
        if on_root_filesystem(data_dir) {
            return Err(OcfError::args(format!(
                "parameter 'data_dir': {} is on the root filesystem, not on a mounted partition: a standby broker \
                 would serve a store that is not the replicated one",
                data_dir.display()
            )));
        }
        return Ok(Place::Here);
    }
    let mut ancestor = data_dir.parent();
    while let Some(dir) = ancestor {
        if dir.is_dir() {
            if could_create_in(dir, account) {
                return Err(OcfError::args(format!(
                    "parameter 'data_dir': {} does not exist and user '{}' could create it in {}: a standby broker \
                     would make an empty store there and serve it; the partition's mount point must not be writable \
                     by '{}' while it is not mounted (e.g. root's, mode 0755)",
                    data_dir.display(),
                    account.name,
                    dir.display(),
                    account.name
                )));
            }
            return Ok(Place::Away);
        }
        ancestor = dir.parent();
    }
    Ok(Place::Away)
}

/// Whether `dir` lies on the same filesystem as `/`.
pub fn on_root_filesystem(dir: &Path) -> bool {
    match (fs::metadata(dir), fs::metadata("/")) {
        (Ok(d), Ok(root)) => d.dev() == root.dev(),
        _ => false,
    }
}

/// Whether `account` may create an entry in `dir` (write and search permission).
fn could_create_in(dir: &Path, account: &Account) -> bool {
    let Ok(m) = fs::metadata(dir) else { return false };
    if account.uid.is_root() {
        return true;
    }
    let mode = m.mode();
    let bits = if m.uid() == account.uid.as_raw() {
        mode >> 6
    } else if m.gid() == account.gid.as_raw() || account.groups.iter().any(|g| g.as_raw() == m.gid()) {
        mode >> 3
    } else {
        mode
    };
    bits & 0o3 == 0o3
}

/// The standby's readiness: the JVM has logged that it waits for its store and serves nothing,
/// or the partition was mounted here during the start and it serves from it already (Pacemaker
/// starts the clone's instances and the filesystem in parallel; only the promote is ordered).
pub fn waits_for_store(amq: &Server, pid: i32) -> Probe {
    if listeners::listens_on(&[pid], amq.stomp_port) {
        if on_root_filesystem(&amq.data_dir) {
            return Probe::Failed(format!(
                "it serves a store in {} on the root filesystem, not on the replicated partition",
                amq.data_dir.display()
            ));
        }
        return Probe::Ready;
    }
    let lines = logtail::lines_since(&amq.log, amq.mark.get());
    if lines.iter().any(|l| LOCKER_WAITS.iter().any(|m| l.contains(m))) {
        Probe::Ready
    } else {
        Probe::NotYet(Some(format!(
            "it has not logged that it waits for its store in {} yet (SharedFileLocker's INFO line)",
            amq.data_dir.display()
        )))
    }
}

/// The state files of one resource instance beside its identity file: the promoted marker, the
/// waiter's identity, and the lock that keeps actions and the waiter's launch apart.
struct Files {
    inst: Instance,
    promoted: PathBuf,
    waiter: PathBuf,
    lock: PathBuf,
}

impl Files {
    fn new(ctx: &Ctx) -> Files {
        let inst = Instance::new(Server::AGENT, ctx);
        let with = |ext: &str| inst.state.with_extension(ext);
        Files { promoted: with("promoted"), waiter: with("waiter"), lock: with("lock"), inst }
    }

    fn is_promoted(&self) -> bool {
        self.promoted.exists()
    }

    fn set_promoted(&self, on: bool) -> OcfResult<()> {
        let done = if on { fs::write(&self.promoted, "") } else { fs::remove_file(&self.promoted) };
        match done {
            Ok(()) => Ok(()),
            Err(e) if !on && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OcfError::generic(format!("cannot write {}: {e}", self.promoted.display()))),
        }
    }

    fn waiter(&self) -> Option<Identity> {
        identity::load_live_identity(&self.waiter)
    }

    /// Exclusive use of the instance's state against the waiter's launch, within `deadline`.
    fn serialize(&self, deadline: Deadline) -> OcfResult<Flock<File>> {
        if let Some(dir) = self.lock.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| OcfError::generic(format!("cannot open {}: {e}", self.lock.display())))?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(lock),
                Err((f, _)) if !deadline.expired() => {
                    file = f;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, e)) => {
                    return Err(OcfError::generic(format!("{} stayed locked: {e}", self.lock.display())));
                }
            }
        }
    }

    /// Ends the waiter, if one runs (it only polls; under the lock it is not launching).
    fn end_waiter(&self, ctx: &Ctx) -> OcfResult<()> {
        if let Some(w) = self.waiter() {
            let left = proc::signal_and_wait(&[w.pid], Signal::SIGKILL, ctx.deadline);
            if !left.is_empty() {
                return Err(OcfError::generic(format!("the standby's waiter PID {} survived SIGKILL", w.pid)));
            }
            ctx.log.info(format!("ended the standby's waiter PID {}", w.pid));
        }
        let _ = fs::remove_file(&self.waiter);
        Ok(())
    }
}

/// Start (unpromoted): the standby JVM waiting for its store; where the partition is mounted,
/// the waiter that starts it once the partition has gone.
pub fn start(ctx: &Ctx) -> OcfResult {
    let amq = Server::of(ctx)?.as_standby();
    let files = Files::new(ctx);
    let _lock = files.serialize(ctx.deadline)?;
    if let Found::Running(pid) = amq.locate(&files.inst) {
        ctx.log.info(format!("the broker PID {pid} already runs"));
        return Ok(OcfStatus::Success);
    }
    if files.waiter().is_some() {
        return Ok(OcfStatus::Success);
    }
    warn_slow_locker(ctx, &amq);
    let account = checks::account("user", &amq.user)?;
    let started = match place(&amq.data_dir, &account)? {
        Place::Away => service::start(&amq, ctx)?,
        Place::Here => spawn_waiter(ctx, &files, &_lock)?,
    };
    promotion_score(ctx, Some(PROMOTION_SCORE));
    Ok(started)
}

/// Sets (or deletes) this node's promotion score with `crm_attribute --promotion`. A failure is
/// logged, not fatal (outside a cluster there is none to set); a probe sets it again.
fn promotion_score(ctx: &Ctx, score: Option<u32>) {
    let resource = ctx.env.resource().split(':').next().unwrap_or("");
    if resource.is_empty() {
        return;
    }
    let mut cmd = std::process::Command::new("crm_attribute");
    cmd.arg(format!("--promotion={resource}"));
    match score {
        Some(s) => cmd.args(["--update", &s.to_string()]),
        None => cmd.arg("--delete"),
    };
    match proc::run(&mut cmd, ctx.deadline.at_most(Duration::from_secs(10))) {
        Ok(out) if out.success() => ctx.log.debug(format!("promotion score of {resource}: {score:?}")),
        Ok(out) => ctx.log.warn(format!("crm_attribute --promotion={resource} failed: {}", out.message().trim())),
        Err(e) => ctx.log.warn(format!("cannot run crm_attribute: {e:?}")),
    }
}

/// KahaDB's default lockAcquireSleepInterval is 10 s: a promote would wait up to that long.
fn warn_slow_locker(ctx: &Ctx, amq: &Server) {
    if let Source::Xml(config) = &amq.source {
        if fs::read_to_string(config).is_ok_and(|x| !x.contains("lockAcquireSleepInterval")) {
            ctx.log.warn(format!(
                "{} sets no lockAcquireSleepInterval: the standby takes its store up to 10 s after the partition \
                 is mounted (set <shared-file-locker lockAcquireSleepInterval=\"100\"/> in <kahaDB><locker>)",
                config.display()
            ));
        }
    }
}

/// Promote: the warm JVM takes its store (the partition is mounted here by now) and serves;
/// with none, the broker starts cold.
pub fn promote(ctx: &Ctx) -> OcfResult {
    if !ctx.env.promotable() {
        return Err(OcfError::unimplemented("promote needs a promotable clone (meta promotable=true)"));
    }
    ctx.log.debug("promote: checking this host as a start does");
    crate::ocf::Agent::validate(&super::Activemq, ctx, VALIDATE_HOST)?;
    let amq = Server::of(ctx)?;
    let files = Files::new(ctx);
    let _lock = files.serialize(ctx.deadline)?;
    files.end_waiter(ctx)?;
    if !amq.data_dir.is_dir() {
        return Err(OcfError::generic(format!(
            "data directory {} (parameter 'data_dir') does not exist: the partition is not mounted here (order the \
             promote after the filesystem)",
            amq.data_dir.display()
        )));
    }
    files.set_promoted(true)?;
    match amq.locate(&files.inst) {
        Found::Running(pid) => take_store(&amq, ctx, pid),
        _ => service::start(&amq, ctx),
    }
}

/// Waits until the warm JVM serves (the STOMP handshake start waits for), or fails with its
/// last lines if it exits. A late one is left running for the demote or stop that follows.
fn take_store(amq: &Server, ctx: &Ctx, pid: i32) -> OcfResult {
    let Some(id) = Identity::of(pid) else { return Err(OcfError::generic(format!("the broker PID {pid} exited"))) };
    let mark = logtail::mark(&amq.log);
    let (mut not_yet, mut failed) = (None, None);
    let readiness = proc::wait_ready(
        ctx.deadline,
        || id.is_alive(),
        || match amq.ready(ctx, pid) {
            Probe::Ready | Probe::ReadyAt(_) => true,
            Probe::NotYet(why) => {
                not_yet = why;
                false
            }
            Probe::Failed(why) => {
                failed = Some(why);
                true
            }
        },
    );
    let quoted = || {
        let lines = logtail::lines_since(&amq.log, mark);
        let quoted = service::Quote::LAST_LINES.quote(&lines);
        if quoted.is_empty() {
            String::new()
        } else {
            format!("; last output: {quoted}")
        }
    };
    match (readiness, failed) {
        (Readiness::Ready, None) => {
            ctx.log.info(format!("the standby broker PID {pid} took its store and serves"));
            Ok(OcfStatus::Success)
        }
        (Readiness::Ready, Some(why)) => Err(OcfError::generic(format!("the broker PID {pid} cannot serve: {why}"))),
        (Readiness::Died, _) => {
            Err(OcfError::generic(format!("the standby broker PID {pid} exited as it took its store{}", quoted())))
        }
        (Readiness::TimedOut, _) => Err(OcfError::generic(format!(
            "the standby broker PID {pid} did not serve within the promote timeout{}{}",
            not_yet.map(|w| format!("; {w}")).unwrap_or_default(),
            quoted()
        ))),
    }
}

/// Demote: the broker stops (cleanly, as stop does) and the waiter starts the next standby JVM
/// once the partition has left this node.
pub fn demote(ctx: &Ctx) -> OcfResult {
    if !ctx.env.promotable() {
        return Err(OcfError::unimplemented("demote needs a promotable clone (meta promotable=true)"));
    }
    let amq = Server::of(ctx)?;
    let files = Files::new(ctx);
    let lock = files.serialize(ctx.deadline)?;
    files.end_waiter(ctx)?;
    service::stop(&amq, ctx)?;
    files.set_promoted(false)?;
    spawn_waiter(ctx, &files, &lock)?;
    promotion_score(ctx, Some(PROMOTION_SCORE));
    Ok(OcfStatus::Success)
}

/// Stop: the waiter, the JVM (whatever its role), the marker.
pub fn stop(ctx: &Ctx) -> OcfResult {
    let amq = Server::of(ctx)?;
    let files = Files::new(ctx);
    let _lock = files.serialize(ctx.deadline)?;
    files.end_waiter(ctx)?;
    service::stop(&amq, ctx)?;
    files.set_promoted(false)?;
    promotion_score(ctx, None);
    // Nothing else can wait on it now (the waiter is gone, Pacemaker runs one action at a time).
    let _ = fs::remove_file(&files.lock);
    Ok(OcfStatus::Success)
}

/// Monitor: 8 promoted and serving (the depth checks of a primitive, and not from the root
/// filesystem), 0 a standby that serves nothing or its waiter, 7 nothing. A probe that finds it
/// running sets the promotion score again (a restarted Pacemaker has dropped it).
pub fn monitor(ctx: &Ctx) -> OcfResult {
    let found = roles(ctx);
    if ctx.is_probe() && found.is_ok() {
        promotion_score(ctx, Some(PROMOTION_SCORE));
    }
    found
}

fn roles(ctx: &Ctx) -> OcfResult {
    let amq = Server::of(ctx)?;
    let files = Files::new(ctx);
    let main = match service::running(&amq, ctx) {
        Ok(main) => main,
        Err(e) if e.status == OcfStatus::NotRunning && !files.is_promoted() && files.waiter().is_some() => {
            return Ok(OcfStatus::Success);
        }
        Err(e) => return Err(e),
    };
    let serving = listeners::listens_on(&[main], amq.stomp_port);
    if serving && on_root_filesystem(&amq.data_dir) {
        return Err(OcfError::generic(format!(
            "the broker PID {main} serves from {} on the root filesystem, not from the replicated partition",
            amq.data_dir.display()
        )));
    }
    if files.is_promoted() {
        amq.check(ctx, main)?;
        return Ok(OcfStatus::RunningPromoted);
    }
    if serving {
        // The partition was mounted here ahead of the promote: the standby took its store.
        ctx.log
            .info(format!("the standby broker PID {main} took its store (partition mounted here), not promoted yet"));
    }
    Ok(OcfStatus::Success)
}

/// Starts the waiter: a detached process that polls the mount table until the partition has left
/// this node ([`place`] says `Away`), then starts the standby JVM, records it and exits. It gives
/// up (logging why) if the store becomes creatable; monitor then finds nothing (7).
fn spawn_waiter(ctx: &Ctx, files: &Files, held: &Flock<File>) -> OcfResult {
    let amq = Server::of(ctx)?.as_standby();
    let account = checks::account("user", &amq.user)?;
    // The child must not keep the action's lock through the inherited descriptor.
    let inherited = held.as_fd().as_raw_fd();
    let job = || {
        // SAFETY: closes the child's copy of the action's lock file descriptor, nothing else.
        unsafe { libc::close(inherited) };
        // A working directory on the partition would keep it from being unmounted.
        let _ = std::env::set_current_dir("/");
        let log = ctx.log.detached();
        match wait_away(&amq, &account) {
            Ok(()) => match launch_standby(ctx, files, &amq, &account) {
                Ok(pid) => {
                    log.info(format!("the partition has left this node: standby broker PID {pid} started"));
                    0
                }
                Err(e) => {
                    log.error(format!("cannot start the standby broker: {}", e.reason));
                    1
                }
            },
            Err(e) => {
                log.error(format!("no warm standby: {}", e.reason));
                let _ = fs::remove_file(&files.waiter);
                1
            }
        }
    };
    let pid = proc::detach(job).map_err(|e| OcfError::generic(format!("cannot start the standby's waiter: {e}")))?;
    if let Some(id) = Identity::of(pid.as_raw()) {
        identity::save_identity(&files.waiter, id)
            .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", files.waiter.display())))?;
    }
    ctx.log.info(format!(
        "the partition is mounted here: waiter PID {pid} starts the standby broker once it has left this node"
    ));
    Ok(OcfStatus::Success)
}

/// Returns once the data directory is away (re-checked at each change of the mount table, and
/// every 2 s for changes that are not mounts), or with the reason it is unsafe.
fn wait_away(amq: &Server, account: &Account) -> OcfResult<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        // Opened before the check: a change after it wakes the poll.
        let mountinfo = File::open("/proc/self/mountinfo").ok();
        if place(&amq.data_dir, account)? == Place::Away {
            return Ok(());
        }
        match &mountinfo {
            Some(f) => {
                let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLPRI)];
                let _ = poll(&mut fds, PollTimeout::from(2000u16));
            }
            None => std::thread::sleep(Duration::from_secs(2)),
        }
    }
}

/// The waiter's launch, under the instance's lock: the JVM (output to its log), its identity
/// saved where monitor and stop look, the waiter's own file removed.
fn launch_standby(ctx: &Ctx, files: &Files, amq: &Server, account: &Account) -> OcfResult<i32> {
    let _lock = files.serialize(Deadline::after(Duration::from_secs(60)))?;
    let out = open_log(&amq.log, None)?;
    let err = out.try_clone().map_err(|e| OcfError::generic(format!("{}: {e}", amq.log.display())))?;
    let mut cmd = super::java_command(ctx, amq)?;
    account.apply(&mut cmd);
    cmd.stdout(out).stderr(err);
    let child = proc::spawn_daemon(&mut cmd).map_err(|e| OcfError::generic(format!("cannot run java: {e}")))?;
    let pid = child.id() as i32;
    files.inst.remember(pid)?;
    let _ = fs::remove_file(&files.waiter);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> Account {
        Account::lookup(name).unwrap().unwrap()
    }

    #[test]
    fn a_store_the_user_could_create_is_refused_by_name() {
        let nobody = account("nobody");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mnt/data");
        // The mount point is root's: nobody cannot create data there.
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        if nix::unistd::geteuid().is_root() {
            assert_eq!(place(&data, &nobody).unwrap(), Place::Away);
        }
        let root = account("root");
        let e = place(&data, &root).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrArgs);
        assert!(e.reason.contains("parameter 'data_dir'") && e.reason.contains("could create it in"), "{}", e.reason);
    }

    #[test]
    fn a_data_directory_on_the_root_filesystem_is_refused() {
        let root = account("root");
        // /etc is on the root filesystem on every machine this runs on (a test VM, a node).
        if on_root_filesystem(Path::new("/etc")) {
            let e = place(Path::new("/etc"), &root).unwrap_err();
            assert!(e.reason.contains("on the root filesystem"), "{}", e.reason);
        }
    }
}
