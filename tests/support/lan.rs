//! A little LAN of network namespaces: a bridge in a namespace of its own, each host a namespace
//! with a veth `eth0` into it. Removed with its guards (hosts first, then the bridge).

use super::{sh, unique_name, Netns};

/// A LAN of hosts: 10.<net>.0.<n>/24 and 2001:db8:<net>::<n>/64 on each host's eth0, n from 1.
pub struct Lan {
    pub hosts: Vec<Netns>,
    /// Held for its drop: the bridge's namespace, deleted after the hosts.
    pub bridge: Netns,
    pub net: u8,
}

impl Lan {
    pub fn new(hosts: usize) -> Lan {
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

    pub fn v4(&self, n: u8) -> String {
        format!("10.{}.0.{n}", self.net)
    }
    pub fn v6(&self, n: u8) -> String {
        format!("2001:db8:{}::{n}", self.net)
    }
    pub fn host(&self, n: usize) -> &Netns {
        &self.hosts[n - 1]
    }
    pub fn ns(&self, n: usize) -> &str {
        &self.hosts[n - 1].name
    }
    pub fn mac(&self, n: usize) -> String {
        let out = self.host(n).exec("cat", &["/sys/class/net/eth0/address"]);
        out.trim().to_string()
    }
    /// The addresses on a host's interface as `ip -o addr` prints them.
    pub fn addrs(&self, n: usize, dev: &str) -> String {
        self.host(n).exec("ip", &["-o", "addr", "show", "dev", dev])
    }
    /// The link-layer address host `n` has for `ip` in its neighbour table.
    pub fn neighbour(&self, n: usize, ip: &str) -> Option<String> {
        let out = self.host(n).exec("ip", &["neigh", "show", "to", ip, "dev", "eth0"]);
        let words: Vec<&str> = out.split_whitespace().collect();
        words.iter().position(|w| *w == "lladdr").and_then(|i| words.get(i + 1)).map(|s| s.to_string())
    }
    /// The bridge's port for host `n` (taking it down takes host n's carrier away).
    pub fn port_down(&self, n: usize) {
        self.bridge.exec("ip", &["link", "set", &format!("p{n}"), "down"]);
    }
    pub fn port_up(&self, n: usize) {
        self.bridge.exec("ip", &["link", "set", &format!("p{n}"), "up"]);
    }
    /// The processes living in host `n`'s network namespace (the agent's detached watcher).
    pub fn processes(&self, n: usize) -> Vec<i32> {
        use std::os::unix::fs::MetadataExt;
        let ns = std::fs::metadata(format!("/run/netns/{}", self.ns(n))).unwrap().ino();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ns))
            .collect()
    }
}

/// The vip agent's conflict records live in /run/hastack/vip, keyed by address and namespace:
/// the test's go with its namespaces.
impl Drop for Lan {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        let inodes: Vec<String> = self
            .hosts
            .iter()
            .filter_map(|h| std::fs::metadata(format!("/run/netns/{}", h.name)).ok())
            .map(|m| format!("@net{}.", m.ino()))
            .collect();
        for entry in std::fs::read_dir("/run/hastack/vip").into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if inodes.iter().any(|i| name.contains(i.as_str())) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
