//! The `drbd` agent on real DRBD (Debian's kernel module, 8.4) in two qemu VMs (tests/vm), and
//! its promotion scores through Pacemaker's scheduler (`crm_simulate`, no VM).
//!
//! In the VMs `crm_attribute` is a stub that appends its arguments to /run/crm_attribute.log,
//! so the scores the agent sets are asserted call by call.

use std::time::{Duration, Instant};

use crate::support::*;
use crate::vm::{build_initramfs, debian_kernel, free_udp_ports, Vm, VmSpec};

/// ActiveMQ on DRBD in the VMs under a power cut (issue 17).
mod power_cut_broker;
/// PostgreSQL on DRBD in the VMs under a power cut (issue 17).
mod power_cut_data;

const BOOT_LIMIT: Duration = Duration::from_secs(240);
const CMD_LIMIT: Duration = Duration::from_secs(60);
const AGENT: &str = "/usr/lib/ocf/resource.d/hastack/drbd";
/// The clone's meta attributes as Pacemaker passes them to every action.
const CLONE_META: &str = "OCF_RESKEY_CRM_meta_clone_max=2 OCF_RESKEY_CRM_meta_clone_node_max=1 \
OCF_RESKEY_CRM_meta_promotable=true OCF_RESKEY_CRM_meta_promoted_max=1 OCF_RESKEY_CRM_meta_promoted_node_max=1 \
OCF_RESKEY_CRM_meta_notify=true";

/// One agent action in the VM with the environment Pacemaker would give it; `extra` adds
/// variables (`NAME=value ...`). The action's own deadline is `timeout_ms`.
fn agent(vm: &mut Vm, action: &str, timeout_ms: u64, extra: &str) -> Outcome {
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=drbd-r0 OCF_RESKEY_drbd_resource=r0 \
         OCF_RESKEY_CRM_meta_timeout={timeout_ms} {CLONE_META} {extra} {AGENT} {action}"
    );
    vm.sh(&command, Duration::from_millis(timeout_ms) + CMD_LIMIT)
}

/// The `filesystem` agent on the DRBD device, as the data group runs it after the promote.
fn filesystem(vm: &mut Vm, action: &str, extra: &str) -> Outcome {
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=fs-r0 OCF_RESKEY_device=/dev/drbd0 \
         OCF_RESKEY_directory=/mnt OCF_RESKEY_fstype=ext4 OCF_RESKEY_CRM_meta_timeout=20000 {extra} \
         /usr/lib/ocf/resource.d/hastack/filesystem {action}"
    );
    vm.sh(&command, Duration::from_millis(20_000) + CMD_LIMIT)
}

/// A recurring monitor (a probe has no interval).
fn monitor(vm: &mut Vm) -> Outcome {
    agent(vm, "monitor", 20_000, "OCF_RESKEY_CRM_meta_interval=15000")
}

/// The crm_attribute calls recorded since the last look (the log is emptied).
fn score_calls(vm: &mut Vm) -> Vec<String> {
    let out = vm.ok("cat /run/crm_attribute.log 2>/dev/null; : >/run/crm_attribute.log", CMD_LIMIT);
    out.lines().map(str::to_string).collect()
}

/// The last recorded score call must be `expected` (`--update N` or `--delete`).
#[track_caller]
fn assert_last_score(vm: &mut Vm, expected: &str) {
    let calls = score_calls(vm);
    let want = format!("--promotion=drbd-r0 {expected}");
    assert_eq!(calls.last().map(String::as_str), Some(want.as_str()), "{}: score calls {calls:?}", vm.node);
}

/// Polls a shell condition in the VM until it holds.
#[track_caller]
fn wait_in(vm: &mut Vm, what: &str, limit: Duration, condition: &str) {
    let started = Instant::now();
    while vm.sh(condition, CMD_LIMIT).code != 0 {
        if started.elapsed() > limit {
            let state = vm.sh("drbdsetup events2 --now r0; cat /proc/drbd", CMD_LIMIT).stdout;
            panic!("{}: timed out after {limit:?} waiting for {what}\n{state}", vm.node);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A shell condition: `drbdsetup events2 --now` shows every one of `fields` (each on some line).
fn events_show(fields: &[&str]) -> String {
    let greps: Vec<String> = fields.iter().map(|f| format!("echo \"$s\" | grep -q '{f}'")).collect();
    format!("s=$(drbdsetup events2 --now r0) && {}", greps.join(" && "))
}

const BOTH_UPTODATE: &[&str] = &[" disk:UpToDate", "peer-disk:UpToDate", "connection:Connected"];

/// The two VMs of a power-cut test (power_cut_data.rs, power_cut_broker.rs) with a client
/// network: a network namespace of the test holds a bridge (10.98.0.254/24) and one tap NIC
/// per VM (its eth1), and qemu runs in it (the VM-to-VM link is the namespace's loopback).
/// Fields drop in order: the VMs (qemu killed) before their files, the namespace last.
struct ClientNetPair {
    a: Vm,
    b: Vm,
    _dir: tempfile::TempDir,
    ns: Netns,
}

/// Boots a [`ClientNetPair`]: 768 MiB each, a zeroed 256 MiB DRBD disk each; `build` makes the
/// initramfs (and the read-only second disk both VMs share, if any) in the pair's directory.
fn boot_client_net_pair(
    ns_tag: &str,
    dir_prefix: &str,
    kernel: &crate::vm::Kernel,
    build: impl FnOnce(&std::path::Path) -> (std::path::PathBuf, Option<std::path::PathBuf>),
) -> ClientNetPair {
    // Made first, dropped last (see the struct).
    let ns = Netns::new(ns_tag);
    let bridge = unique_name("br");
    let taps = [unique_name("tp"), unique_name("tp")];
    ns.exec("ip", &["link", "add", &bridge, "type", "bridge"]);
    ns.exec("ip", &["addr", "add", "10.98.0.254/24", "dev", &bridge]);
    ns.exec("ip", &["link", "set", &bridge, "up"]);
    for tap in &taps {
        ns.exec("ip", &["tuntap", "add", "dev", tap, "mode", "tap"]);
        ns.exec("ip", &["link", "set", tap, "master", &bridge, "up"]);
    }
    let dir = tempfile::Builder::new().prefix(dir_prefix).tempdir().unwrap();
    let (initramfs, ro_disk) = build(dir.path());
    let disks: Vec<_> = ["vma", "vmb"]
        .iter()
        .map(|n| {
            let path = dir.path().join(format!("{n}.img"));
            std::fs::File::create(&path).unwrap().set_len(256 << 20).unwrap();
            path
        })
        .collect();
    let (port_a, port_b) = free_udp_ports();
    let spec_a = VmSpec { node: "vma", ip: "10.99.0.1", mac: "52:54:00:99:00:01", udp_local: port_a, udp_peer: port_b };
    let spec_b = VmSpec { node: "vmb", ip: "10.99.0.2", mac: "52:54:00:99:00:02", udp_local: port_b, udp_peer: port_a };
    let extras = |tap, mac| crate::vm::VmExtras {
        mem_mib: Some(768),
        netns: Some(&ns.name),
        tap: Some((tap, mac)),
        ro_disk: ro_disk.as_deref(),
    };
    let mut a =
        Vm::start_with(dir.path(), kernel, &initramfs, &disks[0], &spec_a, &extras(&taps[0], "52:54:00:98:00:01"));
    let mut b =
        Vm::start_with(dir.path(), kernel, &initramfs, &disks[1], &spec_b, &extras(&taps[1], "52:54:00:98:00:02"));
    std::thread::scope(|s| {
        s.spawn(|| a.wait_ready(BOOT_LIMIT));
        b.wait_ready(BOOT_LIMIT);
    });
    ClientNetPair { a, b, _dir: dir, ns }
}

/// The administrator's one-time steps on both VMs: DRBD's meta-data, the client network's NIC
/// up, then `setup` (what the data layer needs); DRBD started and made an UpToDate pair without
/// the initial full sync (the disks are zeroed).
fn drbd_pair_up_to_date(a: &mut Vm, b: &mut Vm, setup: &str) {
    for vm in [&mut *a, &mut *b] {
        vm.ok(&format!("drbdadm -- --force create-md r0 && ip link set eth1 up && {setup}"), CMD_LIMIT);
        agent(vm, "start", 60_000, "").expect(0);
    }
    wait_in(a, "the VMs to connect", Duration::from_secs(60), &events_show(&["connection:Connected"]));
    a.ok("drbdadm -- --clear-bitmap new-current-uuid r0", CMD_LIMIT);
    wait_in(b, "UpToDate on both sides", Duration::from_secs(60), &events_show(BOTH_UPTODATE));
}

#[test]
fn drbd_vms_failover_after_power_cut_keeps_every_fsynced_byte() {
    if !need_root("booting qemu VMs with disk files") || !need_program("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        skip_or_fail("no /boot/vmlinuz-* with drbd.ko (Debian package linux-image-amd64)");
        return;
    };
    let test_started = Instant::now();
    let dir = tempfile::Builder::new().prefix("hst-drbd").tempdir().unwrap();
    let initramfs = build_initramfs(dir.path(), &kernel);
    let disks: Vec<_> = ["vma", "vmb"]
        .iter()
        .map(|n| {
            let path = dir.path().join(format!("{n}.img"));
            std::fs::File::create(&path).unwrap().set_len(64 << 20).unwrap();
            path
        })
        .collect();
    let (port_a, port_b) = free_udp_ports();
    let spec_a = VmSpec { node: "vma", ip: "10.99.0.1", mac: "52:54:00:99:00:01", udp_local: port_a, udp_peer: port_b };
    let spec_b = VmSpec { node: "vmb", ip: "10.99.0.2", mac: "52:54:00:99:00:02", udp_local: port_b, udp_peer: port_a };
    let mut a = Vm::start(dir.path(), &kernel, &initramfs, &disks[0], &spec_a);
    let mut b = Vm::start(dir.path(), &kernel, &initramfs, &disks[1], &spec_b);
    std::thread::scope(|s| {
        s.spawn(|| a.wait_ready(BOOT_LIMIT));
        b.wait_ready(BOOT_LIMIT);
    });
    let booted = test_started.elapsed();

    // The administrator's one-time step: DRBD meta-data on each disk.
    for vm in [&mut a, &mut b] {
        vm.ok("drbdadm -- --force create-md r0", CMD_LIMIT);
        // A probe of a resource that is down: 7, and the score is left alone.
        agent(vm, "monitor", 20_000, "").expect(7);
        assert_eq!(score_calls(vm), Vec::<String>::new(), "{}: a probe touched the score", vm.node);
        // Wrong resource name: invalid on this host (2); clone-max 3 on DRBD 8.4 (a fact of the
        // host, so validate-all checks it at depth 10): fatal (6).
        agent(vm, "start", 20_000, "OCF_RESKEY_drbd_resource=nope").expect(2).reason_contains("drbd_resource");
        // At depth 0 (pcs's default validate-all) only the parameters are judged.
        agent(vm, "validate-all", 20_000, "OCF_RESKEY_CRM_meta_clone_max=3").expect(0);
        agent(vm, "validate-all", 20_000, "OCF_CHECK_LEVEL=10 OCF_RESKEY_CRM_meta_clone_max=3")
            .expect(6)
            .reason_contains("clone-max");
    }

    // Start both: up as Secondary. Fresh meta-data is Inconsistent: running, degraded, no score.
    for vm in [&mut a, &mut b] {
        agent(vm, "start", 60_000, "").expect(0);
        assert_last_score(vm, "--delete");
    }
    wait_in(&mut a, "the VMs to connect", Duration::from_secs(60), &events_show(&["connection:Connected"]));
    monitor(&mut a).expect(190);
    agent(&mut a, "promote", 20_000, "").expect(1).reason_contains("Inconsistent");
    assert_last_score(&mut a, "--delete");

    // Skip the initial full sync (both disks are zeroes): both UpToDate, connected: score 10000.
    a.ok("drbdadm -- --clear-bitmap new-current-uuid r0", CMD_LIMIT);
    for vm in [&mut a, &mut b] {
        wait_in(vm, "UpToDate on both sides", Duration::from_secs(60), &events_show(BOTH_UPTODATE));
        monitor(vm).expect(0);
        assert_last_score(vm, "--update 10000");
    }

    // B outdated (disconnected by hand): no score, promote refused; A UpToDate, peer unknown: 1000.
    b.ok("drbdadm disconnect r0 && drbdadm outdate r0", CMD_LIMIT);
    monitor(&mut b).expect(190);
    assert_last_score(&mut b, "--delete");
    agent(&mut b, "promote", 20_000, "").expect(1).reason_contains("Outdated");
    wait_in(&mut a, "A to notice B left", Duration::from_secs(30), &events_show(&["connection:Connecting"]));
    monitor(&mut a).expect(190);
    assert_last_score(&mut a, "--update 1000");
    // A peer's start notification re-applies the configuration: B reconnects and resyncs.
    let notify = "OCF_RESKEY_CRM_meta_notify_type=post OCF_RESKEY_CRM_meta_notify_operation=start";
    agent(&mut b, "notify", 20_000, notify).expect(0);
    wait_in(&mut b, "B UpToDate again", Duration::from_secs(60), &events_show(BOTH_UPTODATE));
    monitor(&mut b).expect(0);
    assert_last_score(&mut b, "--update 10000");

    // Promote A (twice: idempotent), put a filesystem on it, write data with fsync.
    agent(&mut a, "promote", 30_000, "").expect(0);
    agent(&mut a, "promote", 30_000, "").expect(0);
    monitor(&mut a).expect(8);
    assert_last_score(&mut a, "--update 10000");
    // B cannot be promoted while A is Primary: the promote retries until its deadline, then says why.
    agent(&mut b, "promote", 6_000, "").expect(1).reason_contains("Multiple primaries");
    a.ok("mkfs.ext4 -q /dev/drbd0", CMD_LIMIT);
    filesystem(&mut a, "start", "").expect(0);
    let written =
        a.ok("dd if=/dev/urandom of=/mnt/data bs=4k count=512 conv=fsync 2>/dev/null && md5sum /mnt/data", CMD_LIMIT);

    // Power cut on A. B is promoted as soon as DRBD has noticed (the agent retries meanwhile).
    a.power_cut();
    let promote = agent(&mut b, "promote", 60_000, "");
    promote.expect(0);
    let failover = promote.elapsed;
    monitor(&mut b).expect(191);
    assert_last_score(&mut b, "--update 10000");
    filesystem(&mut b, "start", "").expect(0);
    filesystem(&mut b, "monitor", "OCF_RESKEY_CRM_meta_interval=20000 OCF_CHECK_LEVEL=20").expect(0);
    let read = b.ok("md5sum /mnt/data", CMD_LIMIT);
    assert_eq!(read, written, "data written with fsync on A before the power cut differs on B");

    // Demote and stop are idempotent; stop removes the score.
    agent(&mut b, "demote", 6_000, "").expect(1).reason_contains("still open");
    filesystem(&mut b, "stop", "").expect(0);
    filesystem(&mut b, "monitor", "OCF_RESKEY_CRM_meta_interval=20000").expect(7);
    agent(&mut b, "demote", 30_000, "").expect(0);
    agent(&mut b, "demote", 30_000, "").expect(0);
    monitor(&mut b).expect(190);
    agent(&mut b, "stop", 30_000, "").expect(0);
    assert_last_score(&mut b, "--delete");
    agent(&mut b, "stop", 30_000, "").expect(0);
    monitor(&mut b).expect(7);
    agent(&mut b, "monitor", 20_000, "").expect(7);
    agent(&mut b, "demote", 30_000, "").expect(7);
    agent(&mut b, "promote", 30_000, "").expect(1).reason_contains("down");

    eprintln!(
        "drbd VMs: booted in {:.1} s, promote after power cut {:.1} s, whole test {:.1} s",
        booted.as_secs_f64(),
        failover.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
}

/// A CIB file with a promotable clone of `drbd` on two online nodes, quorum ignored, no fencing:
/// what the scheduler sees, without a cluster. The monitor ops are the agent's own role
/// monitors, read from its meta-data.
fn promotable_clone_cib(dir: &std::path::Path) -> std::path::PathBuf {
    let cib = dir.join("cib.xml");
    std::fs::write(&cib, sh("cibadmin", &["--empty"])).unwrap();
    let metadata = AgentRun::new("drbd").run("meta-data");
    metadata.expect(0);
    let ops: String = metadata
        .stdout
        .lines()
        .filter(|l| l.contains(r#"name="monitor""#) && l.contains("role="))
        .map(|l| {
            let attr = |name: &str| l.split(&format!("{name}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap();
            let role = attr("role");
            format!(r#"<op id="drbd-r0-monitor-{role}" name="monitor" interval="{}" role="{role}"/>"#, attr("interval"))
        })
        .collect();
    assert_eq!(ops.matches("<op ").count(), 2, "two role monitors in the meta-data:\n{}", metadata.stdout);
    let clone = format!(
        r#"<clone id="drbd-clone"><meta_attributes id="drbd-clone-meta">
<nvpair id="drbd-clone-promotable" name="promotable" value="true"/>
<nvpair id="drbd-clone-promoted-max" name="promoted-max" value="1"/>
<nvpair id="drbd-clone-clone-max" name="clone-max" value="2"/>
<nvpair id="drbd-clone-clone-node-max" name="clone-node-max" value="1"/>
<nvpair id="drbd-clone-notify" name="notify" value="true"/></meta_attributes>
<primitive id="drbd-r0" class="ocf" provider="hastack" type="drbd">
<instance_attributes id="drbd-r0-params"><nvpair id="drbd-r0-res" name="drbd_resource" value="r0"/></instance_attributes>
<operations>{ops}</operations></primitive></clone>"#
    );
    let edit = |args: &[&str]| {
        let out = std::process::Command::new(args[0]).args(&args[1..]).env("CIB_file", &cib).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    edit(&["crm_attribute", "--name", "stonith-enabled", "--update", "false"]);
    edit(&["crm_attribute", "--name", "no-quorum-policy", "--update", "ignore"]);
    edit(&["cibadmin", "--create", "-o", "resources", "--xml-text", &clone]);
    for id in ["1", "2"] {
        edit(&["cibadmin", "--create", "-o", "nodes", "--xml-text", &format!(r#"<node id="{id}" uname="node{id}"/>"#)]);
        let state = format!(
            r#"<node_state id="{id}" uname="node{id}" in_ccm="true" crmd="online" join="member" expected="member"/>"#
        );
        edit(&["cibadmin", "--create", "-o", "status", "--xml-text", &state]);
    }
    cib
}

/// crm_simulate's transition for a CIB file: (summary lines, executed actions, revised status).
fn simulate(cib: &std::path::Path, save: Option<&std::path::Path>) -> String {
    let mut args = vec!["--xml-file".to_string(), cib.display().to_string(), "--simulate".into()];
    if let Some(out) = save {
        args.extend(["--save-output".to_string(), out.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sh("crm_simulate", &args)
}

/// The node crm_simulate's revised status shows as Promoted, if any.
fn promoted_node(simulation: &str) -> Option<String> {
    let revised = simulation.split("Revised Cluster Status").nth(1)?;
    let line = revised.lines().find(|l| l.trim_start().starts_with("* Promoted:"))?;
    Some(line.split('[').nth(1)?.split(']').next()?.trim().to_string())
}

/// Sets a node's promotion score in a CIB file the way the agent does: `crm_attribute
/// --promotion=RESOURCE`, the node taken from `OCF_RESKEY_CRM_meta_on_node`, as under Pacemaker.
fn score_on(cib: &std::path::Path, node: &str, args: &[&str]) {
    let out = std::process::Command::new("crm_attribute")
        .arg("--promotion=drbd-r0")
        .args(args)
        .env("CIB_file", cib)
        .env("OCF_RESKEY_CRM_meta_on_node", node)
        .output()
        .unwrap();
    assert!(out.status.success(), "crm_attribute {args:?} on {node}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn drbd_scores_decide_promotion_in_crm_simulate() {
    if !need_program("crm_simulate", "pacemaker-cli-utils") || !need_program("cibadmin", "pacemaker-cli-utils") {
        return;
    }
    let dir = tempfile::Builder::new().prefix("hst-drbd-sim").tempdir().unwrap();
    let cib = promotable_clone_cib(dir.path());
    let started = dir.path().join("started.xml");

    // No score anywhere (fresh, Inconsistent data): both instances start, none is promoted.
    let run = simulate(&cib, Some(&started));
    assert!(run.contains("start on node1") && run.contains("start on node2"), "{run}");
    assert!(run.contains("drbd-clone_post_notify_running_0"), "start notifications are scheduled:\n{run}");
    assert_eq!(promoted_node(&run), None, "promoted without a score:\n{run}");
    assert_eq!(promoted_node(&simulate(&started, None)), None);

    // UpToDate with the peer unknown (1000) loses to UpToDate with the peer known (10000).
    score_on(&started, "node1", &["--update", "1000"]);
    score_on(&started, "node2", &["--update", "10000"]);
    let run = simulate(&started, None);
    assert_eq!(promoted_node(&run).as_deref(), Some("node2"), "{run}");
    for step in ["pre_notify_promote", "post_notify_promoted", "notify on node1", "notify on node2"] {
        assert!(run.contains(step), "promotion notifications ({step}) missing:\n{run}");
    }

    // Consistent (5) is still promotable when nothing better exists...
    score_on(&started, "node2", &["--update", "5"]);
    score_on(&started, "node1", &["--delete"]);
    assert_eq!(promoted_node(&simulate(&started, None)).as_deref(), Some("node2"));

    // ...and the agent's own stop takes the score away through the real crm_attribute: with no
    // score left, nothing is promoted. (The resource name is absent from an empty DRBD
    // configuration, so stop touches no DRBD device on this host.)
    let conf = dir.path().join("drbd.conf");
    std::fs::write(&conf, "").unwrap();
    let drbd = AgentRun::new("drbd")
        .param("drbd_resource", "hst-absent")
        .param("drbdconf", conf.display())
        .env("OCF_RESOURCE_INSTANCE", "drbd-r0")
        .env("OCF_RESKEY_CRM_meta_on_node", "node2")
        .env("CIB_file", started.display());
    // A probe finding the resource down leaves the score alone; a recurring monitor removes it.
    drbd.run("monitor").expect(7);
    assert_eq!(promoted_node(&simulate(&started, None)).as_deref(), Some("node2"));
    drbd.run("stop").expect(0);
    let run = simulate(&started, None);
    assert_eq!(promoted_node(&run), None, "promoted after stop removed the score:\n{run}");
    score_on(&started, "node2", &["--update", "5"]);
    drbd.clone().recurring().run("monitor").expect(7);
    assert_eq!(promoted_node(&simulate(&started, None)), None);
}

/// Monitor cost of this agent against LINBIT's shell agent on the same resource in one VM
/// (BENCHMARKS.md). A measurement, not a test of speed: ignored by default, run with
/// `cargo nextest run --run-ignored only -E 'test(bench_drbd)' --no-capture`.
#[test]
#[ignore]
fn bench_drbd_monitor_cost_against_linbit() {
    if !need_root("booting qemu VMs") || !need_program("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        skip_or_fail("no /boot/vmlinuz-* with drbd.ko (Debian package linux-image-amd64)");
        return;
    };
    let dir = tempfile::Builder::new().prefix("hst-drbd-bench").tempdir().unwrap();
    let initramfs = build_initramfs(dir.path(), &kernel);
    let disk = dir.path().join("vma.img");
    std::fs::File::create(&disk).unwrap().set_len(64 << 20).unwrap();
    let (port_a, port_b) = free_udp_ports();
    let spec = VmSpec { node: "vma", ip: "10.99.0.1", mac: "52:54:00:99:00:01", udp_local: port_a, udp_peer: port_b };
    let mut vm = Vm::start(dir.path(), &kernel, &initramfs, &disk, &spec);
    vm.wait_ready(BOOT_LIMIT);
    // A lone Secondary with UpToDate data (forced once), its peer absent: score 1000 from both.
    vm.ok(
        "drbdadm -- --force create-md r0 && drbdadm up r0 && drbdadm disconnect r0 && drbdadm primary --force r0 && drbdadm secondary r0",
        CMD_LIMIT,
    );
    // LINBIT's agent wants the legacy clone names and a feature set; both agents get the same.
    let env = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=drbd-r0 OCF_RESKEY_drbd_resource=r0 \
         OCF_RESKEY_CRM_meta_timeout=20000 OCF_RESKEY_CRM_meta_interval=15000 {CLONE_META} \
         OCF_RESKEY_CRM_meta_master_max=1 OCF_RESKEY_CRM_meta_master_node_max=1 \
         OCF_RESKEY_crm_feature_set=3.16.1 HA_SBIN_DIR=/usr/sbin"
    );
    let runs = 20;
    let mut report = Vec::new();
    for (name, command, code, score) in [
        ("linbit drbd", format!("{env} /usr/lib/ocf/resource.d/linbit/drbd monitor"), 0, "-Q -l reboot -v 1000"),
        ("hastack drbd", format!("{env} {AGENT} monitor"), 190, "--promotion=drbd-r0 --update 1000"),
        ("/bin/true", "/bin/true".to_string(), 0, ""),
    ] {
        score_calls(&mut vm);
        let once = vm.sh(&command, CMD_LIMIT);
        assert_eq!(once.code, code, "{name}: {}", once.stderr);
        assert_eq!(score_calls(&mut vm).last().map(String::as_str).unwrap_or(""), score, "{name}");
        // busybox time over the loop: wall, user and system CPU of every process it spawned;
        // the last PID counter in /proc/loadavg counts the processes (and threads) created.
        let looped = vm.ok(
            &format!(
                "p0=$(cut -d' ' -f5 /proc/loadavg); time -p sh -c 'for i in $(seq {runs}); do {command} >/dev/null 2>&1; done' 2>&1; \
                 p1=$(cut -d' ' -f5 /proc/loadavg); echo tasks $((p1 - p0))"
            ),
            Duration::from_secs(600),
        );
        let field = |key: &str| -> f64 {
            looped.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().parse().ok()).unwrap_or(f64::NAN)
        };
        let per = |v: f64| v * 1000.0 / runs as f64;
        report.push(format!(
            "{name:14} wall {:6.1} ms  cpu {:6.1} ms  tasks {:4.1} per monitor",
            per(field("real ")),
            per(field("user ") + field("sys ")),
            field("tasks ") / runs as f64
        ));
    }
    eprintln!("drbd monitor cost in a TCG VM ({runs} runs each):\n{}", report.join("\n"));
}
