//! The .deb and .rpm (issue 7): built from the binary under test by packaging/build.sh, the .deb
//! installed into a fresh Debian 12 root (a cached debootstrap root under an overlay, so every
//! run starts clean and the cache is never changed), checked there with Pacemaker's own tools,
//! and removed without leaving anything behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::support::*;

struct Packages {
    _dir: tempfile::TempDir,
    deb: PathBuf,
    rpm: PathBuf,
}

/// Builds both packages once per test process.
fn packages() -> &'static Packages {
    static PACKAGES: OnceLock<Packages> = OnceLock::new();
    PACKAGES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out =
            run_with_deadline(Command::new("packaging/build.sh").arg(bin()).arg(dir.path()), Duration::from_secs(300));
        out.expect(0);
        let find = |ext: &str| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == ext))
                .unwrap_or_else(|| panic!("no .{ext} built:\n{}", out.stdout))
        };
        Packages { deb: find("deb"), rpm: find("rpm"), _dir: dir }
    })
}

fn can_build() -> bool {
    need_root("building packages with root-owned files")
        && need_program("dpkg-deb", "dpkg")
        && need_program("dpkg-shlibdeps", "dpkg-dev")
        && need_program("rpmbuild", "rpm")
}

fn applets() -> Vec<(String, String)> {
    let out = run_with_deadline(Command::new(bin()).arg("list"), Duration::from_secs(5));
    out.stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string())
        })
        .collect()
}

/// Files and links (not directories) a package carries, as absolute paths.
fn deb_files(deb: &Path) -> BTreeSet<String> {
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
            let name = l.split_whitespace().nth(5).unwrap();
            name.trim_start_matches('.').to_string()
        })
        .collect()
}

#[test]
fn rpm_carries_the_same_files_as_the_deb_and_no_scriptlets() {
    if !can_build() {
        return;
    }
    let p = packages();
    let rpm_list: BTreeSet<String> =
        sh("rpm", &["-qlp", p.rpm.to_str().unwrap()]).lines().map(str::to_string).collect();
    assert_eq!(rpm_list, deb_files(&p.deb));
    for (name, kind) in applets() {
        let path =
            if kind == "ocf" { format!("/usr/lib/ocf/resource.d/hastack/{name}") } else { format!("/usr/sbin/{name}") };
        assert!(rpm_list.contains(&path), "{path} missing from the rpm");
    }
    // The links are in the payload: no scriptlet has to create them.
    let scripts = sh("rpm", &["-qp", "--scripts", p.rpm.to_str().unwrap()]);
    assert!(scripts.trim().is_empty(), "unexpected scriptlets:\n{scripts}");
}

#[test]
fn lintian_reports_no_errors() {
    if !can_build() || !need_program("lintian", "lintian") {
        return;
    }
    let out = run_with_deadline(
        Command::new("lintian").args(["--no-tag-display-limit"]).arg(&packages().deb),
        Duration::from_secs(300),
    );
    let errors: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "lintian errors:\n{}", out.stdout);
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

    root.run(&["apt-get", "remove", "-y", "hastack"]).expect(0);
    let after = root.snapshot();
    let left: Vec<&String> = after.difference(&before).collect();
    assert!(left.is_empty(), "left behind after apt remove: {left:?}");
}
