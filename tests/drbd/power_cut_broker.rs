//! A broker under a real power cut: ActiveMQ with its KahaDB store on DRBD in the two VMs, run by
//! the agents (drbd, filesystem, vip, activemq) with KahaDB's defaults; a producer outside both
//! VMs sends persistent messages with STOMP receipts through the data-layer VIP; qemu of the
//! primary is killed mid-stream (its page cache dies with it); the agents bring the survivor up
//! (KahaDB recovers from its journal); one consumer must then receive every receipted message,
//! by content, once, and nothing but them (the message in flight at the cut excepted).
//!
//! Debian's ActiveMQ 5.17 runs on this machine's Java 17 from a read-only second disk
//! (`tests/vm/build-amq-overlay.sh`). Under TCG the JVM gets options that make it compile little
//! (TCG_JAVA_OPTS): the agent's start then takes 80-110 s there (BENCHMARKS.md), where RabbitMQ's
//! took 270-520 s (power_cut_data.rs).

use std::time::{Duration, Instant};

use super::*;
use crate::vm::{build_amq_initramfs, VmExtras};

/// Where the DRBD filesystem is mounted and the broker's data directory (KahaDB) on it.
const AMQ_DATA: &str = "/mnt/amq";

/// The `activemq` agent in a VM: the runtime from the read-only disk (/sw), the overlay's
/// configuration `flavour` (durable: KahaDB's defaults; nosync: the negative control's).
fn activemq(vm: &mut Vm, action: &str, flavour: &str, java_opts: &str, timeout_ms: u64) -> Outcome {
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=amq-data OCF_RESKEY_java=/sw/jvm/bin/java \
         OCF_RESKEY_home=/sw/activemq OCF_RESKEY_config=/etc/hst-amq/{flavour}/activemq.xml \
         OCF_RESKEY_data_dir={AMQ_DATA} OCF_RESKEY_log=/run/amq.log 'OCF_RESKEY_java_opts={java_opts}' \
         OCF_RESKEY_CRM_meta_timeout={timeout_ms} /usr/lib/ocf/resource.d/hastack/activemq {action}"
    );
    vm.sh(&command, Duration::from_millis(timeout_ms) + CMD_LIMIT)
}

/// JVM options for a JVM under qemu's TCG: every piece of machine code the JIT writes is
/// translated again by TCG, so compile little (C1 only, one compiler thread), the serial
/// collector, the runtime's class-data archive, a small heap.
const TCG_JAVA_OPTS: &str =
    "-Xms64m -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:CICompilerCount=1 -Xshare:auto";

/// The feasibility measurement (BENCHMARKS.md, "drbd: data layer under a real power cut"): one
/// VM, a plain ext4 disk, the agent's start timed with JVM option sets, each a fresh store
/// then a restart on it. Ignored (a measurement, minutes of CPU): run by hand with
/// `cargo nextest run --run-ignored only -E 'test(/bench_activemq_start_in_a_tcg_vm/)' --no-capture`;
/// `HST_AMQ_JAVA_OPTS='OPTS|OPTS...'` measures other option sets than TCG_JAVA_OPTS.
#[test]
#[ignore]
fn bench_activemq_start_in_a_tcg_vm() {
    if !need_root("booting qemu VMs") || !need_program("qemu-system-x86_64", "qemu-system-x86") {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        skip_or_fail("no /boot/vmlinuz-* with drbd.ko (Debian package linux-image-amd64)");
        return;
    };
    let dir = tempfile::Builder::new().prefix("hst-amq-bench").tempdir().unwrap();
    let (initramfs, sw) = build_amq_initramfs(dir.path(), &kernel);
    let disk = dir.path().join("vma.img");
    std::fs::File::create(&disk).unwrap().set_len(256 << 20).unwrap();
    let (port_a, port_b) = free_udp_ports();
    let spec = VmSpec { node: "vma", ip: "10.99.0.1", mac: "52:54:00:99:00:01", udp_local: port_a, udp_peer: port_b };
    let extras = VmExtras { mem_mib: Some(768), ro_disk: Some(&sw), ..Default::default() };
    let booting = Instant::now();
    let mut vm = Vm::start_with(dir.path(), &kernel, &initramfs, &disk, &spec, &extras);
    vm.wait_ready(BOOT_LIMIT);
    eprintln!("booted in {:.1} s", booting.elapsed().as_secs_f64());
    vm.ok(
        &format!("mkfs.ext4 -q /dev/vda && mount /dev/vda /mnt && mkdir -p /sw && mount -o ro /dev/vdb /sw && mkdir {AMQ_DATA}"),
        CMD_LIMIT,
    );
    let java_version = vm.sh("time /sw/jvm/bin/java -Xshare:auto -XX:TieredStopAtLevel=1 -version", CMD_LIMIT);
    eprintln!("java -version in the VM: {}\n{}", java_version.code, java_version.stderr);
    let sets: Vec<String> = std::env::var("HST_AMQ_JAVA_OPTS")
        .map(|v| v.split('|').map(str::to_string).collect())
        .unwrap_or_else(|_| vec![TCG_JAVA_OPTS.to_string()]);
    for opts in &sets {
        vm.ok(&format!("rm -rf {AMQ_DATA}/* && chown activemq: {AMQ_DATA} && : >/run/amq.log"), CMD_LIMIT);
        for run in ["fresh store", "restart"] {
            let start = activemq(&mut vm, "start", "durable", opts, 900_000);
            let log = vm.sh("tail -n 12 /run/amq.log", CMD_LIMIT).stdout;
            eprintln!(
                "java_opts `{opts}`, {run}: start answered {} in {:.1} s\n{}\n{log}",
                start.code,
                start.elapsed.as_secs_f64(),
                start.stderr
            );
            let stop = activemq(&mut vm, "stop", "durable", opts, 120_000);
            eprintln!("stop answered {} in {:.1} s", stop.code, stop.elapsed.as_secs_f64());
            if start.code != 0 {
                break;
            }
        }
    }
}

/// The data-layer VIP on the client network (the PostgreSQL test's address and network).
const VIP: &str = "10.98.0.100";
/// The broker's STOMP port in the VMs (their own network stack: no host port is taken).
const STOMP: &str = "10.98.0.100:61613";
const QUEUE: &str = "/queue/orders";
/// Messages receipted before the power cut (the producer keeps sending while A dies).
const SENT_BEFORE_CUT: usize = 150;

/// The `vip` agent with the data-layer address on the client network's NIC.
fn vip(vm: &mut Vm, action: &str) -> Outcome {
    let command = format!(
        "env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=vip-data OCF_RESKEY_ip={VIP} OCF_RESKEY_cidr_netmask=24 \
         OCF_RESKEY_nic=eth1 OCF_RESKEY_CRM_meta_timeout=20000 /usr/lib/ocf/resource.d/hastack/vip {action}"
    );
    vm.sh(&command, Duration::from_millis(20_000) + CMD_LIMIT)
}

/// A STOMP 1.2 client written here from the protocol (not the product's `net::stomp`, which
/// the agent's probes use): a connection from inside the test's network namespace.
struct Client {
    stream: std::net::TcpStream,
    pending: Vec<u8>,
}

/// One frame: its command, headers and body.
struct Frame {
    command: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Client {
    /// Connects to the broker through the VIP from the namespace `ns` (the calling thread
    /// enters it: only this thread's sockets are there).
    fn connect(ns: &str) -> std::io::Result<Client> {
        let netns = std::fs::File::open(format!("/run/netns/{ns}"))?;
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let stream = std::net::TcpStream::connect_timeout(&STOMP.parse().unwrap(), Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        let mut client = Client { stream, pending: Vec::new() };
        client.send("CONNECT", &[("accept-version", "1.2"), ("host", "hst")], "")?;
        let frame = client.read(Duration::from_secs(30))?;
        if frame.command != "CONNECTED" {
            return Err(std::io::Error::other(format!("CONNECT answered {}: {}", frame.command, frame.body)));
        }
        Ok(client)
    }

    fn send(&mut self, command: &str, headers: &[(&str, &str)], body: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut frame = format!("{command}\n");
        for (k, v) in headers {
            frame.push_str(&format!("{k}:{v}\n"));
        }
        frame.push('\n');
        frame.push_str(body);
        frame.push('\0');
        self.stream.write_all(frame.as_bytes())
    }

    /// The next frame, within `limit` (a TimedOut error after it).
    fn read(&mut self, limit: Duration) -> std::io::Result<Frame> {
        use std::io::Read;
        let deadline = Instant::now() + limit;
        loop {
            // Heart-beat newlines between frames.
            while self.pending.first() == Some(&b'\n') || self.pending.first() == Some(&b'\r') {
                self.pending.remove(0);
            }
            if let Some(end) = self.pending.iter().position(|&b| b == 0) {
                let raw: Vec<u8> = self.pending.drain(..=end).collect();
                let text = String::from_utf8_lossy(&raw[..end]).into_owned();
                let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
                let mut lines = head.lines();
                let command = lines.next().unwrap_or("").to_string();
                let headers =
                    lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
                return Ok(Frame { command, headers, body: body.to_string() });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no frame in time"));
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk)? {
                0 => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the broker closed")),
                n => self.pending.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a persistent message and waits for its receipt: acknowledged once this returns Ok.
    fn send_receipted(&mut self, body: &str, receipt: &str, limit: Duration) -> std::io::Result<()> {
        self.send("SEND", &[("destination", QUEUE), ("persistent", "true"), ("receipt", receipt)], body)?;
        let frame = self.read(limit)?;
        if frame.command == "RECEIPT" && frame.header("receipt-id") == Some(receipt) {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("SEND {receipt} answered {} {:?}", frame.command, frame.body)))
        }
    }
}

/// What the producer saw: the messages receipted (in order) and the one in flight at the end.
#[derive(Default)]
struct Ledger {
    acked: Vec<u32>,
    in_flight: Option<u32>,
    error: Option<String>,
}

/// The producer: one connection sending "order N" persistent with a receipt, one at a time,
/// until `stop` or an error. A receipt is the broker's acknowledgement that the message is
/// stored (ActiveMQ answers a receipted persistent SEND after the store).
fn produce(
    ns: String,
    ledger: std::sync::Arc<std::sync::Mutex<Ledger>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut client = match Client::connect(&ns) {
            Ok(c) => c,
            Err(e) => {
                ledger.lock().unwrap().error = Some(format!("connect: {e}"));
                return;
            }
        };
        for id in 0u32.. {
            ledger.lock().unwrap().in_flight = Some(id);
            let sent = client.send(
                "SEND",
                &[("destination", QUEUE), ("persistent", "true"), ("receipt", &format!("r{id}"))],
                &format!("order {id}"),
            );
            if sent.is_err() {
                return;
            }
            // The receipt, polled so the power cut (which leaves the connection silent) ends the loop.
            loop {
                match client.read(Duration::from_millis(500)) {
                    Ok(f) if f.command == "RECEIPT" && f.header("receipt-id") == Some(&format!("r{id}")) => {
                        let mut l = ledger.lock().unwrap();
                        l.acked.push(id);
                        l.in_flight = None;
                        break;
                    }
                    Ok(f) => {
                        ledger.lock().unwrap().error = Some(format!("SEND r{id} answered {} {:?}", f.command, f.body));
                        return;
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock =>
                    {
                        if stop.load(std::sync::atomic::Ordering::SeqCst) {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        }
    })
}

/// What one broker power-cut run measured.
struct Run {
    acked: std::collections::BTreeSet<u32>,
    in_flight: Option<u32>,
    /// Bodies received on the survivor before the sentinel, in order (duplicates kept).
    received: Vec<String>,
    /// Whether anything arrived after the sentinel.
    after_sentinel: Option<String>,
    recovery_log: String,
}

/// The body of the message sent after the failover: everything stored before it is delivered
/// before it (one queue, one consumer), so receiving up to it drains the recovered messages.
const SENTINEL: &str = "sentinel after failover";

/// The whole scenario with the overlay's configuration `flavour` (durable, or nosync for the
/// negative control).
fn broker_power_cut_run(flavour: &str) -> Option<Run> {
    if !need_root("booting qemu VMs in a network namespace")
        || !need_program("qemu-system-x86_64", "qemu-system-x86")
        || !need_program("java", "default-jre-headless")
    {
        return None;
    }
    if !std::path::Path::new("/usr/share/activemq/bin/activemq.jar").exists()
        && !skip_or_fail("ActiveMQ (package activemq) is not installed")
    {
        return None;
    }
    let Some(kernel) = debian_kernel() else {
        skip_or_fail("no /boot/vmlinuz-* with drbd.ko (Debian package linux-image-amd64)");
        return None;
    };
    let test_started = Instant::now();
    let step = |what: &str| eprintln!("[{:6.1} s] {what}", test_started.elapsed().as_secs_f64());
    let pair = boot_client_net_pair("pb", "hst-drbd-amq", &kernel, |dir| {
        let (initramfs, sw) = build_amq_initramfs(dir, &kernel);
        (initramfs, Some(sw))
    });
    let ns = &pair.ns;
    // Declared after the pair: dropped (qemu killed) before its namespace and files.
    let (mut a, mut b) = (pair.a, pair.b);
    step("booted");

    // The broker's runtime from the read-only disk.
    drbd_pair_up_to_date(&mut a, &mut b, "mkdir -p /sw && mount -o ro /dev/vdb /sw");
    step("DRBD UpToDate on both");

    // A: promote, filesystem, the broker's data directory made once, vip, activemq.
    agent(&mut a, "promote", 30_000, "").expect(0);
    a.ok("mkfs.ext4 -q /dev/drbd0", CMD_LIMIT);
    filesystem(&mut a, "start", "").expect(0);
    a.ok(&format!("mkdir {AMQ_DATA} && chown activemq: {AMQ_DATA} && sync"), CMD_LIMIT);
    vip(&mut a, "start").expect(0);
    let started = activemq(&mut a, "start", flavour, TCG_JAVA_OPTS, 600_000);
    step(&format!("activemq start on A answered {} in {:.1} s", started.code, started.elapsed.as_secs_f64()));
    started.expect(0);

    // The producer sends without pause; A loses power once enough messages are receipted.
    let ledger = std::sync::Arc::new(std::sync::Mutex::new(Ledger::default()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = produce(ns.name.clone(), ledger.clone(), stop.clone());
    let stream_started = Instant::now();
    wait_for("messages receipted before the cut", Duration::from_secs(300), || {
        let l = ledger.lock().unwrap();
        assert!(l.error.is_none(), "producer: {:?}", l.error);
        l.acked.len() >= SENT_BEFORE_CUT
    });
    a.power_cut();
    step(&format!("power cut, {:.1} s into the stream", stream_started.elapsed().as_secs_f64()));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    producer.join().unwrap();
    let (acked, in_flight) = {
        let l = ledger.lock().unwrap();
        assert!(l.error.is_none(), "producer: {:?}", l.error);
        (l.acked.iter().copied().collect::<std::collections::BTreeSet<u32>>(), l.in_flight)
    };

    // B, by the agents: promote, filesystem, vip, activemq (KahaDB recovery).
    let failover = Instant::now();
    agent(&mut b, "promote", 60_000, "").expect(0);
    filesystem(&mut b, "start", "").expect(0);
    vip(&mut b, "start").expect(0);
    let started = activemq(&mut b, "start", flavour, TCG_JAVA_OPTS, 600_000);
    step(&format!("activemq start on B answered {} in {:.1} s", started.code, started.elapsed.as_secs_f64()));
    started.expect(0);
    activemq(&mut b, "monitor", flavour, TCG_JAVA_OPTS, 30_000).expect(0);
    let recovery_log = b.ok("grep -iE 'recover|journal|kahadb|corrupt' /run/amq.log || true", CMD_LIMIT);
    eprintln!("B's broker log on its store:\n{recovery_log}");

    // The sentinel, then one consumer reads up to it.
    let ns_name = ns.name.clone();
    let (received, after_sentinel) = std::thread::spawn(move || {
        let mut c = Client::connect(&ns_name).expect("connect to B's broker through the VIP");
        c.send_receipted(SENTINEL, "sentinel", Duration::from_secs(60)).expect("the sentinel receipted");
        c.send("SUBSCRIBE", &[("id", "0"), ("destination", QUEUE), ("ack", "auto")], "").unwrap();
        let mut received = Vec::new();
        loop {
            let f = c.read(Duration::from_secs(120)).expect("messages up to the sentinel");
            assert_eq!(f.command, "MESSAGE", "{}: {}", f.command, f.body);
            if f.body == SENTINEL {
                break;
            }
            received.push(f.body);
        }
        // Nothing may follow the sentinel: a marker sent now is dispatched after anything
        // still stored, so up to it every delivery is a message the queue still held.
        c.send("SEND", &[("destination", QUEUE), ("persistent", "true"), ("receipt", "end")], "end marker").unwrap();
        let (mut receipted, mut after) = (false, None);
        loop {
            let f = c.read(Duration::from_secs(60)).expect("the end marker receipted and delivered");
            match f.command.as_str() {
                "RECEIPT" => receipted = true,
                "MESSAGE" if f.body == "end marker" => {
                    if receipted {
                        break;
                    }
                    // The delivery may overtake the receipt.
                    let r = c.read(Duration::from_secs(60)).expect("the end marker's receipt");
                    assert_eq!(r.command, "RECEIPT", "{}: {}", r.command, r.body);
                    break;
                }
                "MESSAGE" => {
                    after.get_or_insert(f.body);
                }
                other => panic!("{other}: {}", f.body),
            }
        }
        (received, after)
    })
    .join()
    .unwrap();
    step(&format!(
        "{} messages consumed from B; failover → consumed {:.1} s",
        received.len(),
        failover.elapsed().as_secs_f64()
    ));
    eprintln!(
        "drbd+activemq power cut ({flavour}): {} receipted before the cut (in flight: {in_flight:?}); {} received on B; whole run {:.1} s",
        acked.len(),
        received.len(),
        test_started.elapsed().as_secs_f64()
    );
    activemq(&mut b, "stop", flavour, TCG_JAVA_OPTS, 120_000).expect(0);
    drop(a);
    drop(b);
    Some(Run { acked, in_flight, received, after_sentinel, recovery_log })
}

/// The ids of "order N" bodies; panics on anything else.
fn order_ids(bodies: &[String]) -> Vec<u32> {
    bodies
        .iter()
        .map(|b| {
            b.strip_prefix("order ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("unexpected body {b:?}"))
        })
        .collect()
}

#[test]
fn drbd_activemq_power_cut_keeps_every_receipted_message() {
    let Some(run) = broker_power_cut_run("durable") else { return };
    // The broker really crashed: B's KahaDB found its store shut down uncleanly.
    assert!(
        run.recovery_log.contains("prior unclean shutdown"),
        "B's KahaDB did not recover from an unclean shutdown:\n{}",
        run.recovery_log
    );
    let ids = order_ids(&run.received);
    let present: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(present.len(), ids.len(), "a message was delivered twice: {ids:?}");
    let lost: Vec<u32> = run.acked.difference(&present).copied().collect();
    assert!(lost.is_empty(), "receipted messages lost by the power cut: {lost:?}\nB's log:\n{}", run.recovery_log);
    // Only the message in flight may be there unreceipted (stored, its receipt lost with the power).
    let extra: Vec<u32> = present.difference(&run.acked).copied().collect();
    assert!(
        extra.is_empty() || extra == run.in_flight.into_iter().collect::<Vec<_>>(),
        "messages nobody sent: {extra:?} (in flight: {:?})",
        run.in_flight
    );
    assert_eq!(run.after_sentinel, None, "a message after the sentinel: the queue was not drained in order");
}

/// The negative control: KahaDB with `journalDiskSyncStrategy="never"` receipts a persistent
/// message before its journal write reaches the disk, so the power cut must lose receipted
/// messages; this shows the test above can fail. Ignored (it asserts a loss the setting
/// permits, not a guarantee); run by hand with
/// `cargo nextest run --run-ignored only -E 'test(/drbd_activemq_power_cut_negative/)' --no-capture`.
#[test]
#[ignore]
fn drbd_activemq_power_cut_negative_control_nosync_loses_receipted_messages() {
    let Some(run) = broker_power_cut_run("nosync") else { return };
    let present: std::collections::BTreeSet<u32> = order_ids(&run.received).into_iter().collect();
    let lost: Vec<u32> = run.acked.difference(&present).copied().collect();
    eprintln!("journalDiskSyncStrategy=never lost {} receipted messages: {lost:?}", lost.len());
    assert!(!lost.is_empty(), "journalDiskSyncStrategy=never lost nothing this time");
}
