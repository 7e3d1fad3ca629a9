//! The Debian packages the lab runs, installed by `lab up` when missing (as
//! tests/setup/install-deps.sh does for the tests): a policy-rc.d that exits 101 keeps their
//! maintainer scripts from starting the services on the host, where they would hold the ports
//! and data directories the lab's nodes use.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use super::host;

/// What the lab's nodes run, and the tools `lab up` uses.
pub const PACKAGES: &[&str] = &[
    // the cluster
    "corosync",
    "pacemaker",
    "pacemaker-cli-utils",
    // the stack
    "haproxy",
    "nginx",
    "tomcat10",
    "default-jre-headless",
    "activemq",
    "postgresql",
    // the lab's application: compiled with javac against Debian's JMS and JDBC client jars
    "default-jdk-headless",
    "libpostgresql-jdbc-java",
    // namespaces, loop devices, ext4, nsenter
    "iproute2",
    "util-linux",
    "e2fsprogs",
];

/// What `lab up --agents clusterlabs` runs besides: the ClusterLabs resource agents, and
/// cluster-glue's stonith plugins, that side's fencing (`stonith:fence_legacy`, which Pacemaker's
/// package ships, runs cluster-glue's `stonith -t apcsmart`).
pub const CLUSTERLABS_PACKAGES: &[&str] = &["resource-agents", "cluster-glue"];

const POLICY: &str = "/usr/sbin/policy-rc.d";

pub fn missing(packages: &[&str]) -> Vec<String> {
    packages
        .iter()
        .filter(|p| {
            !host::run("dpkg-query", &["-W", "-f=${Status}", p]).is_ok_and(|s| s.contains("install ok installed"))
        })
        .map(|p| p.to_string())
        .collect()
}

/// Installs what is missing; prints what it does. Nothing to do is fast (one dpkg-query each).
pub fn ensure(packages: &[&str]) -> Result<()> {
    let missing = missing(packages);
    if missing.is_empty() {
        return Ok(());
    }
    println!("installing from Debian: {}", missing.join(" "));
    let placed = if Path::new(POLICY).exists() {
        false
    } else {
        std::fs::write(POLICY, "#!/bin/sh\n# hastack lab: no service starts during the install\nexit 101\n")?;
        std::fs::set_permissions(POLICY, std::fs::Permissions::from_mode(0o755))?;
        true
    };
    let result = install(&missing);
    if placed {
        let _ = std::fs::remove_file(POLICY);
    }
    result
}

fn install(missing: &[String]) -> Result<()> {
    let mut update = Command::new("apt-get");
    update.args(["update", "-q"]).env("DEBIAN_FRONTEND", "noninteractive");
    let lists_fresh = std::fs::read_dir("/var/lib/apt/lists").is_ok_and(|d| {
        d.filter_map(|e| e.ok()).any(|e| {
            e.file_name().to_string_lossy().ends_with("_Packages")
                && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() < 86400))
        })
    });
    if !lists_fresh {
        host::output(&mut update, Duration::from_secs(600))?;
    }
    let mut cmd = Command::new("apt-get");
    cmd.args(["install", "-y", "-q", "--no-install-recommends"]).args(missing).env("DEBIAN_FRONTEND", "noninteractive");
    host::output(&mut cmd, Duration::from_secs(1800))?;
    let still = missing.iter().filter(|p| !self::missing(&[p.as_str()]).is_empty()).cloned().collect::<Vec<_>>();
    if !still.is_empty() {
        bail!("apt-get did not install {}", still.join(" "));
    }
    Ok(())
}
