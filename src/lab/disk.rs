//! The shared disk. This kernel has no DRBD module, so the lab's replicated partition is a loop
//! device over an image file that both nodes see (bound into each node's /dev under the name
//! the stack gives it), with ext4 on it; the `filesystem` agent mounts it where the data group
//! runs. `prepare` puts the data layers' initial data on it from the first node, before
//! Pacemaker starts anything.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::journal::{self, Made};
use super::layout::Lab;
use super::plan::{self, param, Plan};
use super::services::{DB_NAME, DB_PASSWORD, DB_USER};
use crate::config::stack::Stack;

pub const IMAGE_SIZE: u64 = 1 << 30;
pub const PG_BINDIR: &str = "/usr/lib/postgresql/15/bin";

/// Makes an image, its filesystem and a loop device for each of the plan's disks; writes the
/// disks file the nodes' PID 1 reads.
pub fn create(lab: &Lab, plan: &Plan) -> Result<Vec<(String, String)>> {
    let mut disks = Vec::new();
    for (i, inner) in plan.disks.iter().enumerate() {
        let image = lab.disk_image(i + 1);
        let f = std::fs::File::create(&image).with_context(|| format!("cannot create {}", image.display()))?;
        f.set_len(IMAGE_SIZE)?;
        drop(f);
        super::host::run("mkfs.ext4", &["-q", "-F", "-L", "labdisk", &image.display().to_string()])?;
        // Journalled before it exists: `down` then looks the device up by its image.
        journal::record(&lab.journal(), &Made::Loop { device: String::new(), image: image.clone() })?;
        let device =
            super::host::run("losetup", &["--find", "--show", &image.display().to_string()])?.trim().to_string();
        journal::record(&lab.journal(), &Made::Loop { device: device.clone(), image: image.clone() })?;
        disks.push((inner.clone(), device));
    }
    let text: String = disks.iter().map(|(inner, dev)| format!("{inner} {dev}\n")).collect();
    crate::config::write_atomically(&lab.disks_file(), &text)?;
    Ok(disks)
}

/// The loop devices whose backing file is `image` (`losetup -j`).
pub fn loops_of(image: &std::path::Path) -> Vec<String> {
    let out = super::host::run("losetup", &["-j", &image.display().to_string()]).unwrap_or_default();
    out.lines().filter_map(|l| l.split(':').next()).map(str::to_string).collect()
}

/// On `node` (running, nothing started by Pacemaker yet): mounts each filesystem layer's disk
/// and makes the initial data of the data layers below it: a PostgreSQL cluster with the
/// application's role and database, ActiveMQ's data directory. Then unmounts.
pub fn prepare(lab: &Lab, stack: &Stack, node: &str) -> Result<()> {
    let on = |program: &str, args: &[&str]| super::node::run_on(lab, node, program, args, Duration::from_secs(180));
    let layers = plan::layers(stack);
    for fs_layer in layers.iter().filter(|l| l.agent.get_ref() == "filesystem") {
        let device = param(fs_layer, "device").context("filesystem layer without a device")?;
        let dir = param(fs_layer, "directory").context("filesystem layer without a directory")?;
        let fstype = param(fs_layer, "fstype").unwrap_or_else(|| "ext4".into());
        on("mkdir", &["-p", &dir])?;
        on("mount", &["-t", &fstype, &device, &dir])?;
        let result = prepare_data(lab, node, &layers, &dir);
        let unmounted = on("umount", &[&dir]);
        result?;
        unmounted?;
    }
    Ok(())
}

fn prepare_data(lab: &Lab, node: &str, layers: &[&crate::config::stack::Layer], mount: &str) -> Result<()> {
    let on = |program: &str, args: &[&str]| super::node::run_on(lab, node, program, args, Duration::from_secs(180));
    let below = |p: &str| p.starts_with(&format!("{mount}/"));
    for layer in layers {
        match layer.agent.get_ref().as_str() {
            "postgresql" => {
                let Some(pgdata) = param(layer, "pgdata").filter(|p| below(p)) else { continue };
                let bindir = param(layer, "bindir").unwrap_or_else(|| PG_BINDIR.into());
                on("install", &["-d", "-o", "postgres", "-g", "postgres", "-m", "700", &pgdata])?;
                on(
                    "runuser",
                    &["-u", "postgres", "--", &format!("{bindir}/initdb"), "-D", &pgdata, "-A", "peer", "-E", "UTF8"],
                )?;
                let sql = format!(
                    "CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}';\nCREATE DATABASE {DB_NAME} OWNER {DB_USER};\n"
                );
                single_user_sql(lab, node, &bindir, &pgdata, &sql)?;
            }
            "activemq" => {
                let Some(data) = param(layer, "data_dir").filter(|p| below(p)) else { continue };
                on("install", &["-d", "-o", "activemq", "-g", "activemq", "-m", "750", &data])?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Runs SQL through `postgres --single` (no server, no network), as the initdb'd cluster's owner.
fn single_user_sql(lab: &Lab, node: &str, bindir: &str, pgdata: &str, sql: &str) -> Result<()> {
    let mut cmd = super::node::command_on(lab, node, "runuser")?;
    cmd.args(["-u", "postgres", "--", &format!("{bindir}/postgres"), "--single", "-D", pgdata, "postgres"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("cannot run postgres --single")?;
    child.stdin.take().expect("piped").write_all(sql.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || text.contains("ERROR") {
        bail!("postgres --single on {node} failed: {}", text.trim());
    }
    Ok(())
}
