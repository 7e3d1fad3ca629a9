//! The .deb and .rpm (issues 7 and 11) and `make install` (issue 11): built and installed by the
//! commands README.md shows (`make packages`, `make install`, run from the repository root), the
//! .deb installed into a fresh Debian 12 root (a cached debootstrap root under an overlay, so every
//! run starts clean and the cache is never changed), checked there with Pacemaker's own tools,
//! and removed without leaving anything behind.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;

/// A cold `cargo build --release` on two busy cores, then the packages.
const MAKE_DEADLINE: Duration = Duration::from_secs(1200);

/// Where the alert agent the example stacks name is installed (an applet link to the binary).
const ALERT_AGENT: &str = "/usr/lib/hastack/alert";
/// Its spool directory's tmpfiles.d entry and its flush timer.
const ALERT_FILES: &[&str] = &[
    "/usr/lib/tmpfiles.d/hastack.conf",
    "/usr/lib/systemd/system/hastack-alert-flush.service",
    "/usr/lib/systemd/system/hastack-alert-flush.timer",
];

/// The console's binary, which `hastack console` runs.
const CONSOLE_BINARY: &str = "/usr/sbin/hastack-console";

/// The repository root, where README.md's commands are run.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `make ARGS` from the repository root, as a user types it (no make of ours around it).
fn make(args: &[&str]) -> Outcome {
    let mut cmd = Command::new("make");
    cmd.args(args).current_dir(repo()).env_remove("MAKEFLAGS").env_remove("MFLAGS").env_remove("MAKELEVEL");
    run_with_deadline(&mut cmd, MAKE_DEADLINE)
}

/// The packages `make packages` built in this test run.
struct Packages {
    deb: PathBuf,
    rpm: PathBuf,
}

/// The names README.md gives the packages, under target/packages/.
fn package_names() -> (String, String) {
    let version = env!("CARGO_PKG_VERSION");
    let deb_arch = sh("dpkg", &["--print-architecture"]).trim().to_string();
    let rpm_arch = sh("uname", &["-m"]).trim().to_string();
    (format!("hastack_{version}_{deb_arch}.deb"), format!("hastack-{version}-1.{rpm_arch}.rpm"))
}

/// nextest runs every test in its own process: the packaging tests take turns under this lock
/// to run `make packages` (held until the returned guard drops).
fn packages_lock() -> nix::fcntl::Flock<std::fs::File> {
    let lock = std::fs::File::create(Path::new(env!("CARGO_TARGET_TMPDIR")).join("make-packages.lock")).unwrap();
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap()
}

/// This test run's copy of the packages: made once per run (nextest's run id) from what
/// `make packages` built, and never changed afterwards, so a test can read it while another
/// runs `make packages` again.
fn run_copy() -> PathBuf {
    let run = std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("process-{}", std::process::id()));
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("packages-{run}"))
}

/// Copies target/packages' two packages into [`run_copy`] (under the lock), replacing the
/// copies of earlier runs.
fn keep_for_this_run() {
    let dir = run_copy();
    let tmp = dir.parent().unwrap();
    for entry in std::fs::read_dir(tmp).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("packages-") && path != dir {
            std::fs::remove_dir_all(&path).unwrap();
        }
    }
    let partial = tmp.join(".packages.partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir(&partial).unwrap();
    let (deb, rpm) = package_names();
    for name in [deb, rpm] {
        let built = repo().join("target/packages").join(&name);
        assert!(built.is_file(), "make packages did not write target/packages/{name}");
        std::fs::copy(&built, partial.join(&name)).unwrap();
    }
    std::fs::rename(&partial, &dir).unwrap();
}

/// The packages of this test run: the first packaging test of the run runs `make packages`,
/// the others use its packages.
fn packages() -> &'static Packages {
    static PACKAGES: OnceLock<Packages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let _lock = packages_lock();
        if !run_copy().is_dir() {
            make(&["packages"]).expect(0);
            keep_for_this_run();
        }
        let (deb, rpm) = package_names();
        Packages { deb: run_copy().join(deb), rpm: run_copy().join(rpm) }
    })
}

fn can_build() -> bool {
    need_root("building packages with root-owned files")
        && need_program("make", "make")
        && need_program("dpkg-deb", "dpkg")
        && need_program("dpkg-shlibdeps", "dpkg-dev")
        && need_program("rpmbuild", "rpm")
}

fn applets() -> Vec<(String, String)> {
    listed_applets()
}

/// The man page that documents an applet: `ocf_hastack_<type>(7)` or `<fence agent>(8)`.
fn man_page(name: &str, kind: &str) -> (String, u8) {
    match kind {
        "ocf" => (format!("ocf_hastack_{name}"), 7),
        // hastack(8) documents the alert agent with `hastack alert flush`.
        "alert" => ("hastack".to_string(), 8),
        _ => (name.to_string(), 8),
    }
}

/// Files and links (not directories) a .deb carries: absolute path → `ls -l` mode.
fn deb_files(deb: &Path) -> BTreeMap<String, String> {
    let listing = Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -tv")
        .arg("sh")
        .arg(deb)
        .output()
        .unwrap();
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter(|l| !l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[5].trim_start_matches('.').to_string(), f[0].to_string())
        })
        .collect()
}

/// Files and links an .rpm carries: absolute path → `ls -l` mode.
fn rpm_files(rpm: &Path) -> BTreeMap<String, String> {
    // mode, links, user, group, size, month, day, time or year, path [-> target]
    sh("rpm", &["-qlvp", rpm.to_str().unwrap()])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[8].to_string(), f[0].to_string())
        })
        .collect()
}

/// Every entry below `root`: relative path → its kind and mode, a link's target or a file's
/// content hash, so two trees compare equal only with the same files, modes and contents.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.is_dir() {
                walk(root, &path, out);
                format!("dir {mode:o}")
            } else if meta.is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else {
                let mut hash = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&path).unwrap().hash(&mut hash);
                format!("file {mode:o} {} bytes, hash {:x}", meta.len(), hash.finish())
            };
            out.insert(path.strip_prefix(root).unwrap().display().to_string(), what);
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn make_packages_as_readme_shows_builds_the_deb_and_the_rpm() {
    if !can_build() {
        return;
    }
    // From the repository root with README's relative output directory (issue 11: the staging
    // path was relative and rpmbuild's %install runs elsewhere). Always run here, even when
    // another test of this run has built the packages already.
    let _lock = packages_lock();
    make(&["packages"]).expect(0);
    let (deb, rpm) = package_names();
    let out = repo().join("target/packages");
    let deb_list = deb_files(&out.join(&deb));
    assert!(deb_list.contains_key("/usr/sbin/hastack"), "target/packages/{deb}: {deb_list:?}");
    let rpm_list = rpm_files(&out.join(&rpm));
    assert!(rpm_list.contains_key("/usr/sbin/hastack"), "target/packages/{rpm}: {rpm_list:?}");
    // The console's own binary, beside the agents' (hastack console runs it).
    for (name, list) in [(&deb, &deb_list), (&rpm, &rpm_list)] {
        assert_eq!(list.get(CONSOLE_BINARY).map(String::as_str), Some("-rwxr-xr-x"), "target/packages/{name}");
        assert!(list.contains_key("/usr/share/man/man8/hastack-console.8.gz"), "target/packages/{name}");
    }
    if !run_copy().is_dir() {
        keep_for_this_run();
    }
}

#[test]
fn rpm_carries_the_same_files_as_the_deb_and_no_scriptlets() {
    if !can_build() {
        return;
    }
    let p = packages();
    let rpm_list = rpm_files(&p.rpm);
    assert_eq!(rpm_list, deb_files(&p.deb));
    for (name, kind) in applets() {
        let path = match kind.as_str() {
            "ocf" => format!("/usr/lib/ocf/resource.d/hastack/{name}"),
            "alert" => format!("/usr/lib/hastack/{name}"),
            _ => format!("/usr/sbin/{name}"),
        };
        assert!(rpm_list.contains_key(&path), "{path} missing from the rpm");
        let (page, section) = man_page(&name, &kind);
        let page = format!("/usr/share/man/man{section}/{page}.{section}.gz");
        assert!(rpm_list.contains_key(&page), "{page} missing from the rpm");
    }
    // The links are in the payload: no scriptlet has to create them.
    let scripts = sh("rpm", &["-qp", "--scripts", p.rpm.to_str().unwrap()]);
    assert!(scripts.trim().is_empty(), "unexpected scriptlets:\n{scripts}");
}

#[test]
fn packages_install_the_alert_agent_executable() {
    if !can_build() {
        return;
    }
    let p = packages();
    for (what, files) in [("deb", deb_files(&p.deb)), ("rpm", rpm_files(&p.rpm))] {
        assert_eq!(files.get(ALERT_AGENT).map(String::as_str), Some("lrwxrwxrwx"), "{ALERT_AGENT} in the .{what}");
        for f in ALERT_FILES {
            assert_eq!(files.get(*f).map(String::as_str), Some("-rw-r--r--"), "{f} in the .{what}");
        }
    }
}

#[test]
fn lintian_reports_no_errors_or_warnings() {
    if !can_build() || !need_program("lintian", "lintian") {
        return;
    }
    let out = run_with_deadline(
        Command::new("lintian").args(["--fail-on", "error,warning", "--tag-display-limit", "0"]).arg(&packages().deb),
        Duration::from_secs(300),
    );
    out.expect(0);
    let tags: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("E:") || l.starts_with("W:")).collect();
    assert!(tags.is_empty(), "lintian:\n{}", out.stdout);
}

#[test]
fn make_install_destdir_stages_exactly_what_the_deb_carries() {
    if !can_build() {
        return;
    }
    let staged = tempfile::Builder::new().prefix("hst-destdir").tempdir().unwrap();
    make(&["install", &format!("DESTDIR={}", staged.path().display())]).expect(0);
    let unpacked = tempfile::Builder::new().prefix("hst-deb").tempdir().unwrap();
    sh("dpkg-deb", &["-x", packages().deb.to_str().unwrap(), unpacked.path().to_str().unwrap()]);
    let (staged, unpacked) = (tree(staged.path()), tree(unpacked.path()));
    assert!(staged.contains_key("usr/sbin/hastack"), "{staged:?}");
    assert_eq!(staged, unpacked, "make install DESTDIR=... (left) and the .deb (right) differ");
}

#[test]
fn make_install_as_readme_shows_installs_man_pages_completions_and_the_alert_agent() {
    let bash_completion = Path::new("/usr/share/bash-completion/bash_completion");
    if !need_root("make install into /")
        || !need_program("make", "make")
        || !need_program("man", "man-db")
        || (!bash_completion.exists()
            && !skip_or_fail("bash-completion is not installed (tests/setup/install-deps.sh installs it)"))
    {
        return;
    }
    // What an earlier run installed must not make this one pass: the pages and completions go
    // first (only these tests read them; the binary and the links stay, other tests run them).
    let applets = applets();
    let completions =
        ["/usr/share/zsh/vendor-completions/_hastack", "/usr/share/fish/vendor_completions.d/hastack.fish"];
    let pages = applets.iter().map(|(name, kind)| man_page(name, kind)).chain([("hastack".to_string(), 8)]);
    let earlier = pages
        .map(|(page, section)| format!("/usr/share/man/man{section}/{page}.{section}.gz"))
        .chain(completions.iter().map(|c| c.to_string()))
        .chain(["/usr/share/bash-completion/completions/hastack".to_string()]);
    for old in earlier {
        if let Err(e) = std::fs::remove_file(&old) {
            assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{old}: {e}");
        }
    }

    let out = make(&["install"]);
    out.expect(0);
    // The Makefile ends by showing what Pacemaker lists.
    for (name, _) in applets.iter().filter(|(_, kind)| kind == "ocf") {
        assert!(out.stdout.lines().any(|l| l.trim() == name), "{name} not listed by make install:\n{}", out.stdout);
    }

    // Every page README.md points to, where man finds it.
    for (name, kind) in &applets {
        let (page, section) = man_page(name, kind);
        let found = run_with_deadline(Command::new("man").args(["-w", &page]), Duration::from_secs(30));
        found.expect(0);
        assert_eq!(found.stdout.trim(), format!("/usr/share/man/man{section}/{page}.{section}.gz"));
    }
    for (page, title) in
        [("ocf_hastack_vip", "OCF_HASTACK_VIP(7)"), ("fence_ups", "FENCE_UPS(8)"), ("hastack", "HASTACK(8)")]
    {
        let shown = run_with_deadline(Command::new("man").args(["-P", "cat", page]), Duration::from_secs(30));
        shown.expect(0);
        assert!(shown.stdout.contains(title), "man {page}:\n{}", shown.stdout);
    }

    // bash-completion's own loader finds the completion; zsh and fish look in fixed directories.
    let bash = run_with_deadline(
        Command::new("bash")
            .arg("-c")
            .arg(format!(". {} && __load_completion hastack && complete -p hastack", bash_completion.display())),
        Duration::from_secs(30),
    );
    bash.expect(0);
    assert!(bash.stdout.trim_end().ends_with(" hastack"), "{}", bash.stdout);
    for completion in completions {
        let text = std::fs::read_to_string(completion).unwrap_or_else(|e| panic!("{completion}: {e}"));
        assert!(text.contains("hastack"), "{completion}");
    }

    // The alert agent the example stacks name, and its spool owned by the user Pacemaker runs
    // alert agents as.
    assert_eq!(std::fs::canonicalize(ALERT_AGENT).unwrap(), Path::new("/usr/sbin/hastack"), "{ALERT_AGENT}");
    let spool = std::fs::metadata("/var/spool/hastack/alert").expect("make install creates the spool");
    let hacluster = nix::unistd::User::from_name("hacluster").unwrap().expect("hacluster exists with Pacemaker");
    assert_eq!((spool.uid(), spool.permissions().mode() & 0o7777), (hacluster.uid.as_raw(), 0o750));
}

/// A throw-away root: an overlay over the cached debootstrap root, with /proc, /sys and /dev.
struct Chroot {
    dir: tempfile::TempDir,
    merged: PathBuf,
    mounts: Vec<PathBuf>,
}

impl Chroot {
    fn new(base: &Path) -> Chroot {
        let dir = tempfile::Builder::new().prefix("hst-chroot").tempdir().unwrap();
        for d in ["upper", "work", "merged"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let merged = dir.path().join("merged");
        let mut root = Chroot { merged: merged.clone(), mounts: Vec::new(), dir };
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.display(),
            root.dir.path().join("upper").display(),
            root.dir.path().join("work").display()
        );
        sh("mount", &["-t", "overlay", "overlay", "-o", &opts, merged.to_str().unwrap()]);
        root.mounts.push(merged.clone());
        for (fs, target, extra) in [("proc", "proc", None), ("sysfs", "sys", None), ("", "dev", Some("/dev"))] {
            let t = merged.join(target);
            match extra {
                Some(src) => sh("mount", &["--bind", src, t.to_str().unwrap()]),
                None => sh("mount", &["-t", fs, fs, t.to_str().unwrap()]),
            };
            root.mounts.push(t);
        }
        root
    }

    fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("chroot");
        cmd.arg(&self.merged)
            .args(["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LANG=C"])
            .args(args);
        run_with_deadline(&mut cmd, Duration::from_secs(120))
    }

    /// Every file, link and directory, except what the package manager and caches own.
    fn snapshot(&self) -> BTreeSet<String> {
        let out = self.run(&[
            "find",
            "/",
            "-xdev",
            "(",
            "-path",
            "/proc",
            "-o",
            "-path",
            "/sys",
            "-o",
            "-path",
            "/dev",
            "-o",
            "-path",
            "/tmp",
            "-o",
            "-path",
            "/var/lib/dpkg",
            "-o",
            "-path",
            "/var/cache",
            "-o",
            "-path",
            "/var/log",
            "-o",
            "-path",
            "/run",
            "-o",
            "-path",
            "/var/lib/apt",
            ")",
            "-prune",
            "-o",
            "-print",
        ]);
        out.expect(0);
        out.stdout.lines().map(str::to_string).collect()
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for m in self.mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}

#[test]
fn deb_installs_into_fresh_debian_and_removes_cleanly() {
    if !can_build() || !need_program("debootstrap", "debootstrap") {
        return;
    }
    let base = run_with_deadline(&mut Command::new("tests/setup/debootstrap-root.sh"), Duration::from_secs(900));
    base.expect(0);
    let root = Chroot::new(Path::new(base.stdout.trim()));
    let before = root.snapshot();

    std::fs::copy(&packages().deb, root.merged.join("tmp/hastack.deb")).unwrap();
    root.run(&["dpkg", "-i", "/tmp/hastack.deb"]).expect(0);

    let applets = applets();
    let listed = root.run(&["crm_resource", "--list-agents", "ocf:hastack"]);
    listed.expect(0);
    for (name, kind) in &applets {
        if kind == "ocf" {
            assert!(listed.stdout.lines().any(|l| l.trim() == name), "{name} not listed:\n{}", listed.stdout);
            let man = root.run(&["man", "-P", "cat", &format!("ocf_hastack_{name}")]);
            man.expect(0);
            assert!(man.stdout.contains(&format!("ocf_hastack_{name}")), "{}", man.stdout);
        }
    }
    let fences: Vec<&String> = applets.iter().filter(|(_, k)| k == "fence").map(|(n, _)| n).collect();
    if !fences.is_empty() {
        let installed = root.run(&["stonith_admin", "--list-installed"]);
        for name in &fences {
            assert!(
                installed.stdout.contains(name.as_str()),
                "{name} not in:\n{}{}",
                installed.stdout,
                installed.stderr
            );
            let man = root.run(&["man", "-P", "cat", name]);
            man.expect(0);
        }
    }
    let man = root.run(&["man", "-P", "cat", "hastack"]);
    man.expect(0);
    assert!(man.stdout.contains("HASTACK(8)"));

    // The console, as README shows it, runs from the package (hastack execs hastack-console).
    let token = root.run(&["hastack", "console", "cluster", "add", "store-042", "--db", "sqlite:///tmp/console.db"]);
    token.expect(0);
    assert!(token.stdout.starts_with("hsc_"), "{}", token.stdout);
    let man = root.run(&["man", "-P", "cat", "hastack-console"]);
    man.expect(0);
    assert!(man.stdout.contains("HASTACK-CONSOLE(8)"), "{}", man.stdout);

    // The alert agent runs as Pacemaker runs it: CRM_alert_* in the environment.
    root.run(&[
        "env",
        "CRM_alert_version=2.1.5",
        "CRM_alert_kind=node",
        "CRM_alert_node=node2",
        "CRM_alert_desc=lost",
        "CRM_alert_recipient=/tmp/alerts.log",
        ALERT_AGENT,
    ])
    .expect(0);
    let alerts = std::fs::read_to_string(root.merged.join("tmp/alerts.log")).unwrap();
    assert!(alerts.contains("warning: node node2 left the cluster (lost)"), "{alerts}");

    root.run(&["apt-get", "remove", "-y", "hastack"]).expect(0);
    let after = root.snapshot();
    let left: Vec<&String> = after.difference(&before).collect();
    assert!(left.is_empty(), "left behind after apt remove: {left:?}");
}
