//! The `vip` agent against the real kernel: every test builds its own little LAN out of network
//! namespaces (`support::Lan`) and runs the agent inside a host with `ip netns exec`. Everything
//! goes with the guards.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

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

/// A claim frame for one address seen on a host's eth0.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    kind: Kind,
    /// The sending MAC.
    from: String,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// Who has the address? (ARP from 0.0.0.0; a neighbour solicitation from ::)
    Probe,
    /// The address is here. (ARP whose sender is the address; a neighbour advertisement)
    Announcement,
}

/// Captures, from inside namespace `ns`, the probes and announcements for `ip` arriving on its
/// eth0, for `window`; returns once the capture socket is open.
fn capture_claims(ns: &str, ip: &str, window: Duration) -> std::thread::JoinHandle<Vec<Seen>> {
    use hastack::net::{arp::ArpPacket, ndisc, netlink, packet};
    let (ns, ip): (String, std::net::IpAddr) = (ns.to_string(), ip.parse().unwrap());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        // A network namespace is per thread: only this capture thread enters it.
        let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread with a valid namespace fd.
        assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) }, 0);
        let link = netlink::link_by_name("eth0").unwrap().unwrap();
        let ethertype = if ip.is_ipv4() { packet::ETH_P_ARP } else { packet::ETH_P_IPV6 };
        let socket = packet::PacketSocket::open(link.index, ethertype).unwrap();
        ready_tx.send(()).unwrap();
        let until = Instant::now() + window;
        let mut seen = Vec::new();
        let mut buf = [0u8; 2048];
        while let Some((n, origin)) = socket.recv_until(&mut buf, until).unwrap() {
            if origin.outgoing {
                continue;
            }
            let frame = &buf[..n];
            let kind = match ip {
                std::net::IpAddr::V4(v4) => match ArpPacket::decode(frame) {
                    Some(p) if p.sender_ip == v4 => Some(Kind::Announcement),
                    Some(p) if p.sender_ip.is_unspecified() && p.target_ip == v4 => Some(Kind::Probe),
                    _ => None,
                },
                std::net::IpAddr::V6(v6) => {
                    let solicitation = n >= 64 && frame[6] == 58 && frame[40] == 135;
                    if ndisc::parse_advertisement(frame).is_some_and(|na| na.target == v6) {
                        Some(Kind::Announcement)
                    } else if solicitation && frame[8..24] == [0; 16] && frame[48..64] == v6.octets() {
                        Some(Kind::Probe)
                    } else {
                        None
                    }
                }
            };
            if let Some(kind) = kind {
                seen.push(Seen { at: Instant::now(), kind, from: packet::format_mac(&origin.src_mac) });
            }
        }
        seen
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).expect("capture did not start");
    handle
}

fn of_kind(seen: &[Seen], kind: Kind) -> Vec<Seen> {
    seen.iter().filter(|s| s.kind == kind).cloned().collect()
}

#[test]
fn vip_announcements_arrive_counted_and_spaced() {
    if !ready("vip announcement count") {
        return;
    }
    let lan = Lan::new(2);
    // Inline: all of arp_count before start returns, arp_interval apart.
    let ip = lan.v4(72);
    let capture = capture_claims(lan.ns(2), &ip, Duration::from_secs(2));
    let run = vip(&lan, 1, &ip)
        .param("nic", "eth0")
        .param("arp_bg", "false")
        .param("arp_count", "3")
        .param("arp_interval", "150");
    let out = run.run("start");
    out.expect(0);
    assert!(out.elapsed >= Duration::from_millis(300), "start returned after {:?}", out.elapsed);
    let seen = of_kind(&capture.join().unwrap(), Kind::Announcement);
    assert_eq!(seen.len(), 3, "announcements seen by host 2");
    for pair in seen.windows(2) {
        assert!(pair[1].at - pair[0].at >= Duration::from_millis(100), "{:?} apart", pair[1].at - pair[0].at);
    }
    run.run("stop").expect(0);

    // Background (the default): start returns after the first one, the rest still arrive.
    let ip = lan.v4(73);
    let capture = capture_claims(lan.ns(2), &ip, Duration::from_secs(2));
    let out = vip(&lan, 1, &ip).param("nic", "eth0").run("start");
    out.expect(0);
    assert!(out.elapsed < Duration::from_millis(700), "start waited for the announcements: {:?}", out.elapsed);
    assert_eq!(of_kind(&capture.join().unwrap(), Kind::Announcement).len(), 5, "default arp_count");
}

#[test]
fn vip_stop_ends_background_announcements() {
    if !ready("vip announcements after stop") {
        return;
    }
    let lan = Lan::new(2);
    let ip = lan.v4(74);
    let capture = capture_claims(lan.ns(2), &ip, Duration::from_secs(3));
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("arp_count", "10");
    run.run("start").expect(0);
    run.run("stop").expect(0);
    let stopped = Instant::now();
    let seen = capture.join().unwrap();
    let announced = of_kind(&seen, Kind::Announcement).len();
    assert!(announced > 0 && announced < 10, "{announced} announcements");
    // Another node may own the address now: nothing of ours may follow the stop, no probe either.
    assert!(seen.iter().all(|s| s.at <= stopped + Duration::from_millis(20)), "a frame came after stop: {seen:?}");
}

/// A stop ends the detached watcher too: it neither probes nor listens afterwards, so an owner
/// that appears after the stop is nobody's conflict here (monitor says 7, not 1).
#[test]
fn vip_stop_ends_the_background_watch() {
    if !ready("vip watch after stop") {
        return;
    }
    let lan = Lan::new(2);
    let ip = lan.v4(75);
    // A window of 30 s: announcements and probes every second.
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("arp_count", "31").param("arp_interval", "1000");
    run.run("start").expect(0);
    assert!(!lan.processes(1).is_empty(), "the watcher runs in host 1's namespace");
    run.run("stop").expect(0);
    wait_for("the watcher to end after stop", Duration::from_secs(10), || lan.processes(1).is_empty());
    lan.host(2).exec("ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    run.clone().recurring().run("monitor").expect(7);
    run.run("monitor").expect(7);
}

/// A free address: start adds it without waiting for the probe window; the probes and the
/// announcements go out, the later ones from the detached watcher after start has returned.
#[test]
fn vip_start_adds_a_free_address_at_once_and_claims_it_in_the_background() {
    if !ready("vip start without waiting for the probes") {
        return;
    }
    let lan = Lan::new(2);
    let host1 = lan.mac(1);
    for (ip, prefix) in [(lan.v4(82), 24), (lan.v6(82), 64)] {
        // Probes 225 ms apart up to 900 ms; announcements and probes at 0, 1 s and 2 s.
        let capture = capture_claims(lan.ns(2), &ip, Duration::from_secs(4));
        let run = vip(&lan, 1, &ip)
            .param("nic", "eth0")
            .param("dad_timeout", "900")
            .param("arp_count", "3")
            .param("arp_interval", "1000");
        run.run("start").expect(0);
        let returned = Instant::now();
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/{prefix}")), "{}", lan.addrs(1, "eth0"));
        run.clone().recurring().run("monitor").expect(0);
        let seen = capture.join().unwrap();
        assert!(seen.iter().all(|s| s.from == host1), "only host 1 claims {ip}: {seen:?}");
        let (probes, announcements) = (of_kind(&seen, Kind::Probe), of_kind(&seen, Kind::Announcement));
        assert_eq!(probes.len(), 3 + 2, "3 probes within dad_timeout, one with each later announcement: {seen:?}");
        assert_eq!(announcements.len(), 3, "{seen:?}");
        assert!(
            announcements.iter().filter(|s| s.at > returned).count() >= 2,
            "the later announcements come after start returned: {seen:?}"
        );
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")), "nobody answered: the address stays");
        run.clone().recurring().run("monitor").expect(0);
        run.run("stop").expect(0);
    }
}

/// The exit reason, or the log, of a conflict names the other MAC.
#[track_caller]
fn names_the_conflict(text: &str, other_mac: &str) {
    assert!(text.contains("duplicate address") && text.contains(other_mac), "no conflict with {other_mac} in:\n{text}");
}

/// Another host owns the address before start: start adds it and the conflict is found within
/// the window (before start returns: start fails; after: the watcher); either way the address is
/// withdrawn, the reason logged, monitor fails with 1 naming the other MAC until stop, and the
/// next start probes before adding and refuses.
#[test]
fn vip_another_owner_from_the_start_is_withdrawn_and_fails_the_monitor() {
    if !ready("vip duplicate owner") {
        return;
    }
    let lan = Lan::new(2);
    let other_mac = lan.mac(2);
    let dir = tempfile::tempdir().unwrap();
    for (ip, prefix) in [(lan.v4(80), 24), (lan.v6(80), 64)] {
        lan.host(2).exec("ip", &["addr", "add", &format!("{ip}/{prefix}"), "dev", "eth0", "nodad"]);
        let log = dir.path().join(format!("ha-{}.log", prefix));
        let run = vip(&lan, 1, &ip).param("nic", "eth0").env("HA_LOGFILE", log.display());
        let out = run.run("start");
        match out.code {
            0 => {}
            1 => names_the_conflict(out.exit_reason().unwrap_or(""), &other_mac),
            code => panic!("start answered {code}: {out:?}"),
        }
        wait_for("the address to be withdrawn", Duration::from_secs(10), || {
            !lan.addrs(1, "eth0").contains(&format!("{ip}/"))
        });
        wait_for("the conflict in the log", Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&other_mac))
        });
        names_the_conflict(&std::fs::read_to_string(&log).unwrap(), &other_mac);
        // Not 7 (safely stopped): Pacemaker must stop it here, and it will.
        let monitor = run.clone().recurring().run("monitor");
        monitor.expect(1);
        names_the_conflict(monitor.exit_reason().unwrap(), &other_mac);
        run.run("monitor").expect(1);
        run.run("stop").expect(0);
        run.clone().recurring().run("monitor").expect(7);
        run.run("monitor").expect(7);

        // The next start probes first (the old behaviour) and refuses without adding it.
        let capture = capture_claims(lan.ns(2), &ip, Duration::from_secs(2));
        let out = run.run("start");
        out.expect(1);
        names_the_conflict(out.exit_reason().unwrap(), &other_mac);
        let seen = capture.join().unwrap();
        let ours: Vec<&Seen> = seen.iter().filter(|s| s.from == lan.mac(1)).collect();
        assert!(ours.iter().all(|s| s.kind == Kind::Probe), "probes only, no announcement: {seen:?}");
        assert!(!ours.is_empty());
        assert!(!lan.addrs(1, "eth0").contains(&format!("{ip}/")), "the address was added anyway");
        run.clone().recurring().run("monitor").expect(7);
        run.run("stop").expect(0);

        // dad_check off: the address is added, nothing is withdrawn.
        let unchecked = run.clone().param("dad_check", "false");
        unchecked.run("start").expect(0);
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
        unchecked.clone().recurring().run("monitor").expect(0);
        unchecked.run("stop").expect(0);

        // The other owner gone: a start probes, finds the address free and forgets the conflict.
        lan.host(2).exec("ip", &["addr", "del", &format!("{ip}/{prefix}"), "dev", "eth0"]);
        run.run("start").expect(0);
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
        run.clone().recurring().run("monitor").expect(0);
        run.run("stop").expect(0);
    }
}

/// An owner that appears while start's window is still open (here: right after start returned)
/// answers one of the later probes: the watcher withdraws the address and the next monitor fails.
#[test]
fn vip_an_owner_that_appears_within_the_window_is_caught() {
    if !ready("vip late duplicate owner") {
        return;
    }
    let lan = Lan::new(2);
    let other_mac = lan.mac(2);
    for (ip, prefix) in [(lan.v4(83), 24), (lan.v6(83), 64)] {
        // A window of 30 s, a probe every second.
        let run = vip(&lan, 1, &ip).param("nic", "eth0").param("arp_count", "31").param("arp_interval", "1000");
        run.run("start").expect(0);
        assert!(lan.addrs(1, "eth0").contains(&format!("{ip}/")));
        lan.host(2).exec("ip", &["addr", "add", &format!("{ip}/{prefix}"), "dev", "eth0", "nodad"]);
        wait_for("the address to be withdrawn", Duration::from_secs(10), || {
            !lan.addrs(1, "eth0").contains(&format!("{ip}/"))
        });
        let monitor = run.clone().recurring().run("monitor");
        monitor.expect(1);
        names_the_conflict(monitor.exit_reason().unwrap(), &other_mac);
        run.run("stop").expect(0);
        run.clone().recurring().run("monitor").expect(7);
        lan.host(2).exec("ip", &["addr", "del", &format!("{ip}/{prefix}"), "dev", "eth0"]);
    }
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
    let lan = Lan::new(2);
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
    // Another owner (host 2): start fails (soft), the failure stands until stop, the next start
    // refuses before adding anything.
    let taken = lan.v4(32);
    lan.host(2).exec("ip", &["addr", "add", &format!("{taken}/24"), "dev", "eth0"]);
    let failed = crm(&["--force-start"], &taken);
    let reasons = format!("{}{}", failed.stdout, failed.stderr);
    match failed.code {
        1 => assert!(reasons.contains("duplicate address"), "{reasons}"),
        code => assert_eq!(code, 0, "{reasons}"),
    }
    wait_for("the address to be withdrawn", Duration::from_secs(10), || {
        !lan.addrs(1, "eth0").contains(&format!("{taken}/"))
    });
    crm(&["--force-check"], &taken).expect(1);
    crm(&["--force-stop"], &taken).expect(0);
    crm(&["--force-check"], &taken).expect(7);
    crm(&["--force-start"], &taken).expect(1);
    assert!(!lan.addrs(1, "eth0").contains(&format!("{taken}/")));
    crm(&["--force-stop"], &taken).expect(0);
    // Pacemaker's own mapping of the agent's 6 (OCF_ERR_CONFIGURED).
    let bad = crm(&["--validate"], "not-an-address");
    bad.expect(6);
    assert!(bad.stdout.contains("'ip'") || bad.stderr.contains("'ip'"), "{bad:?}");
}

/// Holds one connection on port 7070 of the address in argv[1] open, saying nothing.
const SILENT_SERVER: &str = r#"
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7070))
s.listen()
c, _ = s.accept()
time.sleep(600)
"#;

/// Connects to port 7070 of argv[1] (retrying until the server listens), says "connected", then
/// waits to read and says how the wait ended.
const WAITING_CLIENT: &str = r#"
import socket, sys, time
deadline = time.time() + 20
while True:
    try:
        s = socket.create_connection((sys.argv[1], 7070), timeout=1)
        break
    except OSError:
        if time.time() > deadline:
            print("no server", flush=True)
            sys.exit(1)
        time.sleep(0.05)
s.settimeout(None)
print("connected", flush=True)
try:
    print("data" if s.recv(1) else "closed", flush=True)
except OSError as e:
    print("error", e.errno, flush=True)
"#;

/// A client on this host connected to the address while another host held it. That host is
/// gone (its port down: no reset will ever come from it); start takes the address here and the
/// client's connection is aborted at once (ECONNABORTED, 103), instead of waiting for TCP to give
/// it up (here, with nothing to retransmit, forever).
#[test]
fn vip_start_aborts_local_connections_made_to_the_previous_holder() {
    use std::io::BufRead;
    use std::process::Stdio;
    if !ready("vip stale connections") || !need_program("python3", "python3") {
        return;
    }
    let lan = Lan::new(2);
    let ip = lan.v4(90);
    lan.host(2).exec("ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    let in_ns = |n: usize, code: &str| {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", lan.ns(n), "python3", "-u", "-c", code, &ip]).stdout(Stdio::piped());
        ChildGuard(cmd.spawn().unwrap())
    };
    let _server = in_ns(2, SILENT_SERVER);
    let mut client = in_ns(1, WAITING_CLIENT);
    let (tx, lines) = std::sync::mpsc::channel();
    let out = client.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || lines.recv_timeout(Duration::from_secs(25)).expect("the client said nothing");
    assert_eq!(next(), "connected");

    lan.port_down(2);
    let run = vip(&lan, 1, &ip).param("nic", "eth0").param("cidr_netmask", "24");
    let started = Instant::now();
    run.run("start").expect(0);
    let ended = lines.recv_timeout(Duration::from_secs(5)).expect("the stale connection is still open 5 s after start");
    assert_eq!(ended, "error 103", "aborted (ECONNABORTED), after {:?}", started.elapsed());
    run.run("stop").expect(0);
}
