//! The data layer under a real power cut: PostgreSQL on DRBD in the two VMs, started by the
//! agents (drbd, filesystem, vip, postgresql) with their defaults; a client outside both VMs
//! commits numbered rows through the data-layer VIP; qemu of the primary is killed mid-stream (its
//! page cache dies with it, unlike a SIGKILL of the server on a living kernel); the agents bring
//! the survivor up; every acknowledged row must be there.
//!
//! The client is Debian's psql in a network namespace of the test, on a bridge with one tap NIC
//! per VM (eth1); the qemu processes run in that namespace (their VM-to-VM link is its loopback).
//!
//! The broker's proof is ActiveMQ's (power_cut_broker.rs). RabbitMQ is not used there: its start
//! takes 270-520 s in these TCG VMs, CPU spent loading code (Erlang/OTP 25 in Debian is JIT-only,
//! so every module is compiled to machine code on load, which qemu's TCG then translates again);
//! measurements in BENCHMARKS.md.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::vm::build_pg_initramfs;

const VIP: &str = "10.98.0.100";
const PGDATA: &str = "/mnt/pgdata";
/// Rows acknowledged before the power cut (the client keeps committing while A dies).
const ROWS_BEFORE_CUT: usize = 150;
/// The id of the first commit after the failover (outside the numbered stream).
const AFTER_FAILOVER_ID: u32 = 1_000_000;

/// The `vip` agent with the data-layer address on the client network's NIC.
fn vip(vm: &mut Vm, action: &str) -> Outcome {
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip-data OCF_RESKEY_ip={VIP} OCF_RESKEY_cidr_netmask=24 \
         OCF_RESKEY_nic=eth1 OCF_RESKEY_CRM_meta_timeout=20000 /usr/lib/ocf/resource.d/hastack/vip {action}"
    );
    vm.sh(&command, Duration::from_millis(20_000) + CMD_LIMIT)
}

/// The `postgresql` agent on the DRBD filesystem, listening on the VIP. Every durability setting
/// is the agent's default (it sets none: initdb's postgresql.conf, fsync and synchronous_commit
/// on) unless `options` adds server arguments (the negative control).
fn postgresql(vm: &mut Vm, action: &str, options: &str) -> Outcome {
    let options = if options.is_empty() { String::new() } else { format!("'OCF_RESKEY_options={options}'") };
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=pg-data OCF_RESKEY_pgdata={PGDATA} \
         OCF_RESKEY_config={PGDATA}/postgresql.conf OCF_RESKEY_listen_addresses={VIP} \
         OCF_RESKEY_socket_dir=/run/postgresql OCF_RESKEY_logfile=/run/pg.log OCF_RESKEY_CRM_meta_timeout=120000 \
         {options} /usr/lib/ocf/resource.d/hastack/postgresql {action}"
    );
    vm.sh(&command, Duration::from_millis(120_000) + CMD_LIMIT)
}

/// psql (Debian's, not the product's client) in the client namespace, through the VIP.
fn psql(ns: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", VIP, "-U", "postgres"])
        .args(["-d", "postgres"])
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

fn psql_c(ns: &str, sql: &str) -> Outcome {
    run_with_deadline(psql(ns).args(["-c", sql]), Duration::from_secs(60))
}

/// What the client saw: the ids acknowledged (in order) and the one in flight when it stopped.
#[derive(Default)]
struct Ledger {
    acked: Vec<u32>,
    in_flight: Option<u32>,
    unexpected: Vec<String>,
}

/// One psql session committing `INSERT ... RETURNING id` one row at a time (autocommit: psql
/// prints the id and the command tag only once the server reported the commit). Runs until
/// psql dies; a partial answer is not an acknowledgement.
fn commit_stream(ns: &str, ledger: Arc<Mutex<Ledger>>) -> (ChildGuard, std::thread::JoinHandle<()>) {
    // stdbuf: psql's stdout is a pipe here; each acknowledgement must reach the test at once.
    let mut cmd = psql(ns);
    let mut args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let exec_at = args.iter().position(|a| a == "psql").unwrap();
    args.splice(exec_at..exec_at, ["stdbuf".to_string(), "-oL".to_string()]);
    cmd = Command::new("ip");
    cmd.args(&args).env("PGCONNECT_TIMEOUT", "10");
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("psql");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let thread = std::thread::spawn(move || {
        for id in 0u32.. {
            ledger.lock().unwrap().in_flight = Some(id);
            if writeln!(stdin, "INSERT INTO orders VALUES ({id}) RETURNING id;").and_then(|_| stdin.flush()).is_err() {
                return;
            }
            // psql prints the returned id, then the command tag, once the commit is reported.
            let mut answer = String::new();
            for _ in 0..2 {
                if stdout.read_line(&mut answer).unwrap_or(0) == 0 {
                    return;
                }
            }
            let mut l = ledger.lock().unwrap();
            if answer == format!("{id}\nINSERT 0 1\n") {
                l.acked.push(id);
                l.in_flight = None;
            } else {
                l.unexpected.push(answer);
                return;
            }
        }
    });
    (ChildGuard(child), thread)
}

/// What one power-cut run measured.
struct Run {
    acked: BTreeSet<u32>,
    in_flight: Option<u32>,
    present: BTreeSet<u32>,
    failover_to_first_commit: Duration,
    recovery_log: String,
    booted: Duration,
}

/// The whole scenario; `options` are extra server arguments for the postgresql agent ("" for
/// its defaults).
fn power_cut_run(options: &str) -> Option<Run> {
    if !need_root("booting qemu VMs in a network namespace")
        || !need_program("qemu-system-x86_64", "qemu-system-x86")
        || !need_program("psql", "postgresql-client")
        || !need_program("stdbuf", "coreutils")
    {
        return None;
    }
    if !std::path::Path::new("/usr/lib/postgresql/15/bin/postgres").exists()
        && !skip_or_fail("PostgreSQL 15 (package postgresql) is not installed")
    {
        return None;
    }
    let Some(kernel) = debian_kernel() else {
        skip_or_fail("no /boot/vmlinuz-* with drbd.ko (Debian package linux-image-amd64)");
        return None;
    };
    let test_started = Instant::now();
    let pair = boot_client_net_pair("pc", "hst-drbd-pg", &kernel, |dir| (build_pg_initramfs(dir, &kernel), None));
    let ns = &pair.ns;
    // Declared after the pair: dropped (qemu killed) before its namespace and files.
    let (mut a, mut b) = (pair.a, pair.b);
    let booted = test_started.elapsed();
    // Progress with the time since the start, for a run that is slower than it should be.
    let step = |what: &str| eprintln!("[{:6.1} s] {what}", test_started.elapsed().as_secs_f64());
    step("booted");

    // /dev/shm for PostgreSQL's shared memory.
    drbd_pair_up_to_date(&mut a, &mut b, "mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm");

    // A: promote, filesystem, the data directory put on it once (and synced: setup, not the
    // stream under test), vip, postgresql.
    step("DRBD UpToDate on both");
    agent(&mut a, "promote", 30_000, "").expect(0);
    a.ok("mkfs.ext4 -q /dev/drbd0", CMD_LIMIT);
    filesystem(&mut a, "start", "").expect(0);
    a.ok(&format!("cp -a /pgseed {PGDATA} && sync"), CMD_LIMIT);
    vip(&mut a, "start").expect(0);
    postgresql(&mut a, "start", options).expect(0);
    psql_c(&ns.name, "CREATE TABLE orders (id int PRIMARY KEY)").expect(0);
    step("postgresql started on A");

    // The client commits without pause; A loses power once enough rows are acknowledged.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let (client, stream) = commit_stream(&ns.name, ledger.clone());
    let stream_started = Instant::now();
    wait_for("rows acknowledged before the cut", Duration::from_secs(180), || {
        let l = ledger.lock().unwrap();
        assert!(l.unexpected.is_empty(), "psql answered {:?}", l.unexpected);
        l.acked.len() >= ROWS_BEFORE_CUT
    });
    a.power_cut();
    step("power cut");
    let stream_time = stream_started.elapsed();
    // psql waits on a peer that is gone; what it printed so far is every acknowledgement.
    drop(client);
    stream.join().unwrap();
    let (acked, in_flight) = {
        let l = ledger.lock().unwrap();
        assert!(l.unexpected.is_empty(), "psql answered {:?}", l.unexpected);
        (l.acked.iter().copied().collect::<BTreeSet<u32>>(), l.in_flight)
    };

    // B, by the agents: promote (retries until DRBD noticed the peer is gone), filesystem,
    // vip, postgresql (crash recovery); then the first commit through the VIP.
    let failover = Instant::now();
    agent(&mut b, "promote", 60_000, "").expect(0);
    filesystem(&mut b, "start", "").expect(0);
    vip(&mut b, "start").expect(0);
    postgresql(&mut b, "start", options).expect(0);
    let first = format!("INSERT INTO orders VALUES ({AFTER_FAILOVER_ID})");
    let mut tries = 0;
    while psql_c(&ns.name, &first).code != 0 {
        tries += 1;
        assert!(failover.elapsed() < Duration::from_secs(240), "no commit through the VIP after the failover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let failover_to_first_commit = failover.elapsed();
    step("first commit on B");
    postgresql(&mut b, "monitor", "").expect(0);
    let recovery_log = b.ok("grep -E 'not properly shut down|redo|recovery' /run/pg.log || true", CMD_LIMIT);

    let rows = psql_c(&ns.name, "SELECT id FROM orders ORDER BY id");
    rows.expect(0);
    let mut present: BTreeSet<u32> = rows.stdout.lines().map(|l| l.trim().parse().expect("an id")).collect();
    assert!(present.remove(&AFTER_FAILOVER_ID), "the commit after the failover is missing");
    eprintln!(
        "drbd+postgresql power cut{}: booted in {:.1} s; {} rows acknowledged in {:.1} s before the cut (in flight: \
         {in_flight:?}); {} present after failover; promote→first commit {:.1} s ({tries} retries); whole run {:.1} s",
        if options.is_empty() { String::new() } else { format!(" with {options}") },
        booted.as_secs_f64(),
        acked.len(),
        stream_time.as_secs_f64(),
        present.len(),
        failover_to_first_commit.as_secs_f64(),
        test_started.elapsed().as_secs_f64()
    );
    drop(a);
    drop(b);
    Some(Run { acked, in_flight, present, failover_to_first_commit, recovery_log, booted })
}

#[test]
fn drbd_postgresql_power_cut_keeps_every_acknowledged_commit() {
    let Some(run) = power_cut_run("") else { return };
    // The server really crashed: B's start ran crash recovery.
    assert!(
        run.recovery_log.contains("not properly shut down"),
        "B's PostgreSQL did not run crash recovery:\n{}",
        run.recovery_log
    );
    let lost: Vec<u32> = run.acked.difference(&run.present).copied().collect();
    assert!(lost.is_empty(), "acknowledged commits lost by the power cut: {lost:?}");
    // Only the statement in flight may be there unacknowledged (committed, its answer lost
    // with the power); nothing else may appear.
    let extra: Vec<u32> = run.present.difference(&run.acked).copied().collect();
    assert!(
        extra.is_empty() || extra == run.in_flight.into_iter().collect::<Vec<_>>(),
        "rows nobody committed: {extra:?} (in flight: {:?})",
        run.in_flight
    );
    let _ = (run.failover_to_first_commit, run.booted);
}

/// The negative control: the same run with `synchronous_commit=off` (PostgreSQL acknowledges
/// before its WAL is flushed) must lose acknowledged commits, showing the test above can fail.
/// Measured once: 20 of 150 acknowledged commits lost (BENCHMARKS.md). Ignored (it asserts a
/// loss the server permits, not a guarantee); run by hand with
/// `cargo nextest run --run-ignored only -E 'test(/power_cut_negative/)' --no-capture`.
#[test]
#[ignore]
fn drbd_postgresql_power_cut_negative_control_synchronous_commit_off_loses_acknowledged_commits() {
    let Some(run) = power_cut_run("-c synchronous_commit=off") else { return };
    let lost: Vec<u32> = run.acked.difference(&run.present).copied().collect();
    eprintln!("synchronous_commit=off lost {} acknowledged commits: {lost:?}", lost.len());
    assert!(!lost.is_empty(), "synchronous_commit=off lost nothing this time");
}
