//! The `vip` agent against the real kernel: every test builds its own little LAN out of network
//! namespaces (a bridge in a namespace of its own, each host a namespace with a veth `eth0` into
//! it) and runs the agent inside a host with `ip netns exec`. Everything goes with the guards.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A LAN of hosts: 10.<net>.0.<n>/24 and 2001:db8:<net>::<n>/64 on each host's eth0, n from 1.
struct Lan {
    hosts: Vec<Netns>,
    /// Held for its drop: the bridge's namespace, deleted after the hosts.
    bridge: Netns,
    net: u8,
}

impl Lan {
    fn new(hosts: usize) -> Lan {
        let bridge = Netns::new("br");
        bridge.exec("ip", &["link", "add", "br0", "type", "bridge"]);
        bridge.exec("ip", &["link", "set", "br0", "up"]);
        let net = 100 + (std::process::id() % 50) as u8;
        let mut lan = Lan { hosts: Vec::new(), bridge, net };
        for n in 1..=hosts {
            let host = Netns::new("h");
            let (veth, port) = (unique_name("v"), format!("p{n}"));
            sh(
                "ip",
                &[
                    "link",
                    "add",
                    &veth,
                    "netns",
                    &host.name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &port,
                    "netns",
                    &lan.bridge.name,
                ],
            );
            lan.bridge.exec("ip", &["link", "set", &port, "master", "br0", "up"]);
            host.exec("ip", &["link", "set", &veth, "name", "eth0"]);
            host.exec("ip", &["link", "set", "eth0", "up"]);
            host.exec("ip", &["addr", "add", &format!("{}/24", lan.v4(n as u8)), "dev", "eth0"]);
            host.exec("ip", &["addr", "add", &format!("{}/64", lan.v6(n as u8)), "dev", "eth0", "nodad"]);
            // Neighbour entries may be replaced by every gratuitous ARP, not once a second.
            host.exec("sysctl", &["-q", "-w", "net.ipv4.neigh.eth0.locktime=0"]);
            lan.hosts.push(host);
        }
        lan
    }

    fn v4(&self, n: u8) -> String {
        format!("10.{}.0.{n}", self.net)
    }
    fn v6(&self, n: u8) -> String {
        format!("2001:db8:{}::{n}", self.net)
    }
    fn host(&self, n: usize) -> &Netns {
        &self.hosts[n - 1]
    }
    fn ns(&self, n: usize) -> &str {
        &self.hosts[n - 1].name
    }
    fn mac(&self, n: usize) -> String {
        let out = self.host(n).exec("cat", &["/sys/class/net/eth0/address"]);
        out.trim().to_string()
    }
    /// The addresses on a host's interface as `ip -o addr` prints them.
    fn addrs(&self, n: usize, dev: &str) -> String {
        self.host(n).exec("ip", &["-o", "addr", "show", "dev", dev])
    }
    /// The link-layer address host `n` has for `ip` in its neighbour table.
    fn neighbour(&self, n: usize, ip: &str) -> Option<String> {
        let out = self.host(n).exec("ip", &["neigh", "show", "to", ip, "dev", "eth0"]);
        let words: Vec<&str> = out.split_whitespace().collect();
        words.iter().position(|w| *w == "lladdr").and_then(|i| words.get(i + 1)).map(|s| s.to_string())
    }
    /// The bridge's port for host `n` (taking it down takes host n's carrier away).
    fn port_down(&self, n: usize) {
        self.bridge.exec("ip", &["link", "set", &format!("p{n}"), "down"]);
    }
}

fn vip(lan: &Lan, host: usize, ip: &str) -> AgentRun {
    AgentRun::new("vip").param("ip", ip).in_netns(lan.ns(host))
}

fn ready(what: &str) -> bool {
    need_root(what) && need_program("ip", "iproute2")
}

#[test]
fn vip_ipv4_start_monitor_stop_idempotent() {
    if !ready("vip ipv4 lifecycle") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v4(50);
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("cidr_netmask", "24");
    run.clone().recurring().run("monitor").expect(7).reason_contains(&ip);
    run.run("monitor").expect(7); // probe
    run.run("start").expect(0);
    assert!(
        lan.addrs(1, "eth0").contains(&format!("inet {ip}/24 brd 10.{}.0.255", lan.net)),
        "{}",
        lan.addrs(1, "eth0")
    );
    run.clone().recurring().run("monitor").expect(0);
    run.run("start").expect(0);
    assert_eq!(lan.addrs(1, "eth0").matches(&format!("inet {ip}/")).count(), 1);
    run.run("stop").expect(0);
    assert!(!lan.addrs(1, "eth0").contains(&format!("inet {ip}/")));
    run.run("stop").expect(0);
    run.clone().recurring().run("monitor").expect(7);
    // The host's own address is untouched.
    assert!(lan.addrs(1, "eth0").contains(&format!("inet {}/24", lan.v4(1))));
}

#[test]
fn vip_ipv6_compared_canonically() {
    if !ready("vip ipv6 lifecycle") {
        return;
    }
    let lan = Lan::new(1);
    let long = format!("2001:0db8:{:04}:0:0::50", lan.net);
    let short = format!("2001:db8:{}::50", lan.net);
    let upper = format!("2001:DB8:{}:0::0:50", lan.net);
    let start = vip(&lan, 1, &long).param("nic", "eth0").param("cidr_netmask", "64");
    start.run("monitor").expect(7);
    start.run("start").expect(0);
    assert!(lan.addrs(1, "eth0").contains(&format!("inet6 {short}/64")), "{}", lan.addrs(1, "eth0"));
    vip(&lan, 1, &short).param("nic", "eth0").recurring().run("monitor").expect(0);
    vip(&lan, 1, &upper).param("nic", "eth0").recurring().run("monitor").expect(0);
    vip(&lan, 1, &short).param("nic", "eth0").run("start").expect(0);
    assert_eq!(lan.addrs(1, "eth0").matches(&format!("inet6 {short}/")).count(), 1);
    vip(&lan, 1, &upper).param("nic", "eth0").run("stop").expect(0);
    assert!(!lan.addrs(1, "eth0").contains(&format!("inet6 {short}/")));
    start.run("stop").expect(0);
    start.clone().recurring().run("monitor").expect(7);
}

#[test]
fn vip_label_and_dotted_netmask() {
    if !ready("vip label") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v4(51);
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("cidr_netmask", "255.255.255.0").param("label", "web");
    run.run("start").expect(0);
    let addrs = lan.addrs(1, "eth0");
    assert!(addrs.lines().any(|l| l.contains(&format!("inet {ip}/24")) && l.contains("eth0:web")), "{addrs}");
    run.recurring().run("monitor").expect(0);
    vip(&lan, 1, &ip).param("nic", "eth0").param("label", "web").run("stop").expect(0);
    assert!(!lan.addrs(1, "eth0").contains(&ip));
}

#[test]
fn vip_nic_found_from_the_routing_table() {
    if !ready("vip nic auto-detection") {
        return;
    }
    let lan = Lan::new(1);
    let h = lan.host(1);
    // A second interface (a veth whose peer stays in the host, so it has a carrier).
    h.exec("ip", &["link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"]);
    h.exec("ip", &["link", "set", "eth1p", "up"]);
    h.exec("ip", &["link", "set", "eth1", "up"]);
    h.exec("ip", &["addr", "add", "10.88.0.1/16", "dev", "eth1"]);
    // Longest prefix wins: 10.88.1.0/24 goes out of eth0 although eth1 holds 10.88.0.0/16.
    h.exec("ip", &["route", "add", "10.88.1.0/24", "dev", "eth0"]);
    // Same prefix: the lower metric wins.
    h.exec("ip", &["route", "add", "10.88.3.0/24", "dev", "eth1", "metric", "50"]);
    h.exec("ip", &["route", "add", "10.88.3.0/24", "dev", "eth0", "metric", "10"]);
    // A default route through a gateway and an unreachable route never count.
    h.exec("ip", &["route", "add", "default", "via", &lan.v4(254), "dev", "eth0"]);
    h.exec("ip", &["route", "add", "unreachable", "10.99.0.0/16"]);

    for (ip, dev, prefix) in [
        ("10.88.1.5".to_string(), "eth0", 24),
        ("10.88.2.5".to_string(), "eth1", 16),
        ("10.88.3.5".to_string(), "eth0", 24),
        (lan.v4(60), "eth0", 24),
        (format!("2001:db8:{}::60", lan.net), "eth0", 64),
    ] {
        let run = vip(&lan, 1, &ip);
        run.run("start").expect(0);
        let addrs = lan.addrs(1, dev);
        assert!(addrs.contains(&format!("{ip}/{prefix}")), "{ip} not on {dev} as /{prefix}: {addrs}");
        run.clone().recurring().run("monitor").expect(0);
        run.run("stop").expect(0);
        assert!(!lan.addrs(1, dev).contains(&format!("{ip}/")));
    }

    // No on-link route: invalid on this host (2) for start and level-10 validation; monitor and
    // stop know the address cannot be here.
    for ip in ["10.99.0.5", "10.200.0.5", "2001:db8:ffff::5"] {
        let run = vip(&lan, 1, ip);
        run.run("start").expect(2).reason_contains("'nic'");
        run.clone().depth(10).run("validate-all").expect(2).reason_contains("no on-link route");
        run.run("validate-all").expect(0);
        run.run("monitor").expect(7);
        run.run("stop").expect(0);
    }
}

#[test]
fn vip_gratuitous_arp_and_na_update_the_neighbours() {
    if !ready("vip announcements") {
        return;
    }
    let lan = Lan::new(2);
    let new_mac = lan.mac(1);
    for (ip, mode) in [(lan.v4(70), "request"), (lan.v4(71), "reply"), (lan.v6(70), "request")] {
        // Host 2 believes the address lives at an old MAC (a failed-over peer's).
        lan.host(2)
            .exec("ip", &["neigh", "replace", &ip, "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "stale"]);
        assert_eq!(lan.neighbour(2, &ip).as_deref(), Some("02:00:00:00:00:99"));
        vip(&lan, 1, &ip).param("nic", "eth0").param("arp_mode", mode).run("start").expect(0);
        wait_for(&format!("host 2 to learn {ip} at {new_mac} ({mode})"), Duration::from_secs(5), || {
            lan.neighbour(2, &ip).as_deref() == Some(new_mac.as_str())
        });
    }
}

/// Captures, from inside namespace `ns`, the ARP packets on eth0 whose sender address is `ip`,
/// for `window`; returns once the capture socket is open. The join handle yields arrival times.
fn capture_arp(ns: &str, ip: &str, window: Duration) -> std::thread::JoinHandle<Vec<Instant>> {
    use hastack::net::{arp::ArpPacket, netlink, packet};
    let (ns, ip): (String, std::net::Ipv4Addr) = (ns.to_string(), ip.parse().unwrap());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // A network namespace is per thread: only this capture thread enters it.
        let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread with a valid namespace fd.
        assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) }, 0);
        let link = netlink::link_by_name("eth0").unwrap().unwrap();
        let socket = packet::PacketSocket::open(link.index, packet::ETH_P_ARP).unwrap();
        ready_tx.send(()).unwrap();
        let until = Instant::now() + window;
        let mut seen = Vec::new();
        let mut buf = [0u8; 1500];
        while let Some((n, origin)) = socket.recv_until(&mut buf, until).unwrap() {
            if let Some(p) = ArpPacket::decode(&buf[..n]) {
                if !origin.outgoing && p.sender_ip == ip {
                    seen.push(Instant::now());
                }
            }
        }
        seen
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).expect("capture did not start");
    handle
}

#[test]
fn vip_announcements_arrive_counted_and_spaced() {
    if !ready("vip announcement count") {
        return;
    }
    let lan = Lan::new(2);
    // Inline: all of arp_count before start returns, arp_interval apart.
    let ip = lan.v4(72);
    let capture = capture_arp(lan.ns(2), &ip, Duration::from_secs(2));
    let run = vip(&lan, 1, &ip)
        .param("nic", "eth0")
        .param("arp_bg", "false")
        .param("arp_count", "3")
        .param("arp_interval", "150");
    let out = run.run("start");
    out.expect(0);
    assert!(out.elapsed >= Duration::from_millis(300), "start returned after {:?}", out.elapsed);
    let seen = capture.join().unwrap();
    assert_eq!(seen.len(), 3, "announcements seen by host 2");
    for pair in seen.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(100), "announcements {:?} apart", pair[1] - pair[0]);
    }
    run.run("stop").expect(0);

    // Background (the default): start returns after the first one, the rest still arrive.
    let ip = lan.v4(73);
    let capture = capture_arp(lan.ns(2), &ip, Duration::from_secs(2));
    let out = vip(&lan, 1, &ip).param("nic", "eth0").run("start");
    out.expect(0);
    assert!(out.elapsed < Duration::from_millis(700), "start waited for the announcements: {:?}", out.elapsed);
    assert_eq!(capture.join().unwrap().len(), 5, "default arp_count");
}

#[test]
fn vip_stop_ends_background_announcements() {
    if !ready("vip announcements after stop") {
        return;
    }
    let lan = Lan::new(2);
    let ip = lan.v4(74);
    let capture = capture_arp(lan.ns(2), &ip, Duration::from_secs(3));
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("arp_count", "10");
    run.run("start").expect(0);
    run.run("stop").expect(0);
    let stopped = Instant::now();
    let seen = capture.join().unwrap();
    assert!(!seen.is_empty() && seen.len() < 10, "{} announcements", seen.len());
    // Another node may own the address now: nothing of ours may follow the stop.
    assert!(seen.iter().all(|t| *t <= stopped + Duration::from_millis(20)), "an announcement came after stop");
}

#[test]
fn vip_refuses_an_address_another_host_owns() {
    if !ready("vip duplicate owner") {
        return;
    }
    let lan = Lan::new(2);
    let other_mac = lan.mac(2);
    for (ip, prefix) in [(lan.v4(80), 24), (lan.v6(80), 64)] {
        lan.host(2).exec("ip", &["addr", "add", &format!("{ip}/{prefix}"), "dev", "eth0", "nodad"]);
        let run = vip(&lan, 1, &ip).param("nic", "eth0");
        let out = run.run("start");
        out.expect(1).reason_contains("duplicate address").reason_contains(&other_mac);
        assert!(out.elapsed < Duration::from_secs(1), "the probe took {:?}", out.elapsed);
        assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")), "the address was added anyway");
        run.clone().recurring().run("monitor").expect(7);
        // The probe is what refused it: with dad_check off the address is added.
        let unchecked = run.clone().param("dad_check", "false");
        unchecked.run("start").expect(0);
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
        unchecked.run("stop").expect(0);
    }
    // A free address passes the probe.
    vip(&lan, 1, &lan.v4(81)).param("nic", "eth0").run("start").expect(0);
}

/// A downed link with the address still on it is a failure (1), never "safely stopped" (7):
/// after a 7 Pacemaker never calls stop here, starts the address on the peer, and when the link
/// comes back two nodes hold it. Stop removes the address from the downed link; only then is
/// monitor's answer 7.
#[test]
fn vip_monitor_on_a_downed_link_fails_until_stop_removes_the_address() {
    if !ready("vip link down") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v6(90);
    let run = vip(&lan, 1, &ip).param("nic", "eth0");
    run.run("start").expect(0);
    run.clone().recurring().run("monitor").expect(0);
    lan.port_down(1);
    wait_for("eth0 to lose its carrier", Duration::from_secs(5), || {
        lan.host(1).exec("ip", &["-o", "link", "show", "eth0"]).contains("NO-CARRIER")
    });
    // The address is still there: only the link is down.
    assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
    run.clone().recurring().run("monitor").expect(1).reason_contains("down");
    // A probe (interval 0) sees the same: the address is here, so Pacemaker must stop it here.
    run.run("monitor").expect(1).reason_contains("down");
    // Without nic the address is found on whichever interface holds it.
    vip(&lan, 1, &ip).recurring().run("monitor").expect(1).reason_contains("down");
    // A down link refuses a start elsewhere on it, and stop still removes the address.
    vip(&lan, 1, &lan.v6(91)).param("nic", "eth0").run("start").expect(1).reason_contains("down");
    run.run("stop").expect(0);
    assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")));
    // Now the address is gone: safely stopped, even though the link is still down.
    run.clone().recurring().run("monitor").expect(7);
    run.run("monitor").expect(7);
    run.run("stop").expect(0);
}

#[test]
fn vip_bad_input_exit_codes_and_reasons() {
    if !ready("vip bad input") {
        return;
    }
    let lan = Lan::new(1);
    let bare = AgentRun::new("vip").in_netns(lan.ns(1));
    for action in ["start", "monitor", "validate-all"] {
        bare.run(action).expect(6).reason_contains("'ip'");
    }
    bare.run("stop").expect(0);
    vip(&lan, 1, "10.0.0.300").run("start").expect(6).reason_contains("'ip'");
    vip(&lan, 1, "not-an-address").run("validate-all").expect(6).reason_contains("'ip'");
    let v4 = lan.v4(40);
    vip(&lan, 1, &v4).param("cidr_netmask", "64").run("start").expect(6).reason_contains("'cidr_netmask'");
    vip(&lan, 1, &v4).param("cidr_netmask", "64").run("validate-all").expect(6).reason_contains("IPv4");
    vip(&lan, 1, &lan.v6(40)).param("label", "x").run("start").expect(6).reason_contains("'label'");
    vip(&lan, 1, &v4).param("arp_mode", "loud").run("start").expect(6).reason_contains("'arp_mode'");
    vip(&lan, 1, &v4).param("dad_timeout", "5000").run("start").expect(6).reason_contains("'dad_timeout'");
    vip(&lan, 1, &v4).param("nic", "eth0:1").run("start").expect(6).reason_contains("'nic'");

    // A NIC this host does not have: invalid here (2), but the parameters are fine (level 0),
    // the address cannot be running (7) and there is nothing to stop (0).
    let missing = vip(&lan, 1, &v4).param("nic", "hstnope0");
    missing.run("start").expect(2).reason_contains("'nic'").reason_contains("does not exist");
    missing.clone().depth(10).run("validate-all").expect(2).reason_contains("hstnope0");
    missing.run("validate-all").expect(0);
    missing.run("monitor").expect(7);
    missing.run("stop").expect(0);
    assert!(!lan.addrs(1, "eth0").contains(&format!("{v4}/")));
}

#[test]
fn vip_without_net_admin_is_a_permission_error() {
    if !ready("vip EPERM") || !need_program("setpriv", "util-linux") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v4(45);
    // The agent without CAP_NET_ADMIN and CAP_NET_RAW (as root, via the bounding set).
    let run = |action: &str, dad: &str| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lan.ns(1), "setpriv", "--bounding-set=-net_admin,-net_raw", "--"])
            .arg(agent_path("vip"))
            .arg(action)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("OCF_ROOT", "/usr/lib/ocf")
            .env("OCF_RESKEY_ip", &ip)
            .env("OCF_RESKEY_nic", "eth0")
            .env("OCF_RESKEY_dad_check", dad);
        run_with_deadline(&mut cmd, Duration::from_secs(20))
    };
    run("start", "true").expect(4).reason_contains("probe");
    run("start", "false").expect(4).reason_contains("cannot add");
    assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")));
    // Reading needs no privilege.
    run("monitor", "true").expect(7);
}

#[test]
fn vip_monitor_forks_nothing() {
    if !ready("vip monitor without fork") || !need_program("strace", "strace") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v4(46);
    let run = vip(&lan, 1, &ip).param("nic", "eth0");
    run.run("start").expect(0);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", lan.ns(1), "strace", "-f", "-qq", "-e", "trace=process", "-o"])
        .arg(log.path())
        .arg(agent_path("vip"))
        .arg("monitor")
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESKEY_ip", &ip)
        .env("OCF_RESKEY_nic", "eth0")
        .env("OCF_RESKEY_CRM_meta_interval", "10000");
    run_with_deadline(&mut cmd, Duration::from_secs(20)).expect(0);
    let trace = std::fs::read_to_string(log.path()).unwrap();
    let execs = trace.lines().filter(|l| l.contains("execve(")).count();
    let forks =
        trace.lines().filter(|l| ["clone(", "clone3(", "fork(", "vfork("].iter().any(|c| l.contains(c))).count();
    assert_eq!((execs, forks), (1, 0), "monitor should exec once (itself) and fork nothing:\n{trace}");
    run.run("stop").expect(0);
}

#[test]
fn vip_passes_ocf_tester() {
    if !ready("vip ocf-tester") || !need_program("ocf-tester", "resource-agents") {
        return;
    }
    let lan = Lan::new(2);
    for ip in [lan.v4(30), lan.v6(30)] {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lan.ns(1), "ocf-tester", "-n", "vipX", "-o"])
            .arg(format!("ip={ip}"))
            .args(["-o", "nic=eth0"])
            .arg(agent_path("vip"));
        let out = run_with_deadline(&mut cmd, Duration::from_secs(120));
        out.expect(0);
        assert!(out.stdout.contains("passed all tests"), "{}", out.stdout);
        assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")), "ocf-tester's last stop left the address");
    }
}

#[test]
fn vip_through_crm_resource() {
    if !ready("vip crm_resource") || !need_program("crm_resource", "pacemaker-cli-utils") {
        return;
    }
    let lan = Lan::new(1);
    let ip = lan.v4(31);
    crate::conformance::install_system_links();
    let crm = |args: &[&str], ip: &str| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lan.ns(1), "crm_resource"])
            .args(args)
            .args(["--class", "ocf", "--provider", "hastack", "--agent", "vip", "--option"])
            .arg(format!("ip={ip}"))
            .args(["--option", "nic=eth0"]);
        run_with_deadline(&mut cmd, Duration::from_secs(60))
    };
    crm(&["--validate"], &ip).expect(0);
    crm(&["--force-check"], &ip).expect(7);
    crm(&["--force-start"], &ip).expect(0);
    assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
    crm(&["--force-check"], &ip).expect(0);
    crm(&["--force-stop"], &ip).expect(0);
    crm(&["--force-check"], &ip).expect(7);
    assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")));
    // Pacemaker's own mapping of the agent's 6 (OCF_ERR_CONFIGURED).
    let bad = crm(&["--validate"], "not-an-address");
    bad.expect(6);
    assert!(bad.stdout.contains("'ip'") || bad.stderr.contains("'ip'"), "{bad:?}");
}
