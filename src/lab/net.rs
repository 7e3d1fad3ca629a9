//! The lab's networks: a bridge per network (the crossover cable, the public network), a veth
//! per node and network, network namespaces. Through `ip` (iproute2): the lab's set-up runs a
//! handful of these once per boot, where clarity matters more than a fork.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{bail, Result};

use super::host;
use super::plan::PREFIX;
use crate::ocf::Deadline;

pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// A bridge, up, unless it exists already. Its frames bypass the host's firewall (with
/// br_netfilter loaded, a FORWARD policy of DROP, as Docker sets, would cut the nodes off).
pub fn add_bridge(name: &str) -> Result<()> {
    if !link_exists(name) {
        host::run(
            "ip",
            &[
                "link",
                "add",
                name,
                "type",
                "bridge",
                "nf_call_iptables",
                "0",
                "nf_call_ip6tables",
                "0",
                "nf_call_arptables",
                "0",
            ],
        )?;
    }
    host::run("ip", &["link", "set", name, "up"])?;
    Ok(())
}

pub fn add_netns(name: &str) -> Result<()> {
    if !netns_exists(name) {
        host::run("ip", &["netns", "add", name])?;
    }
    host::run("ip", &["-n", name, "link", "set", "lo", "up"])?;
    Ok(())
}

/// A veth from `bridge` (host end `host_end`) into namespace `ns` as `inner` with `addr`/24.
pub fn plug(bridge: &str, host_end: &str, ns: &str, inner: &str, addr: Ipv4Addr) -> Result<()> {
    host::run("ip", &["link", "add", host_end, "type", "veth", "peer", "name", inner, "netns", ns])?;
    host::run("ip", &["link", "set", host_end, "master", bridge, "up"])?;
    host::run("ip", &["-n", ns, "addr", "add", &format!("{addr}/{PREFIX}"), "dev", inner])?;
    host::run("ip", &["-n", ns, "link", "set", inner, "up"])?;
    Ok(())
}

/// Takes a link down (the cable pulled); nothing if it is gone already.
pub fn link_down(name: &str) {
    if link_exists(name) {
        let _ = host::run("ip", &["link", "set", name, "down"]);
    }
}

pub fn delete_link(name: &str) -> Result<()> {
    if link_exists(name) {
        host::run("ip", &["link", "delete", name])?;
    }
    Ok(())
}

/// Deletes a namespace after killing whatever still runs in it (a process that entered it
/// with `ip netns exec` is in no PID namespace of the lab's).
pub fn delete_netns(name: &str) -> Result<()> {
    if !netns_exists(name) {
        return Ok(());
    }
    if let Ok(pids) = host::run("ip", &["netns", "pids", name]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            crate::sys::proc::signal(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    host::run("ip", &["netns", "delete", name])?;
    Ok(())
}

/// Waits until a link is gone: a deleted namespace's veths disappear when the kernel has freed
/// it, a moment after the last process left.
pub fn wait_link_gone(name: &str, limit: Duration) -> Result<()> {
    if Deadline::after(limit).poll(Duration::from_millis(20), || (!link_exists(name)).then_some(())).is_none() {
        bail!("interface {name} is still there {limit:?} after its namespace was deleted");
    }
    Ok(())
}
