//! What a stack file means for the lab: its nodes and their two addresses, which UPS's serial
//! cable is plugged into which node, the shared disks, the client's address. The lab builds a
//! machine for the stack; a stack it cannot build is refused here with the reason, before
//! anything is made.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use anyhow::{bail, Result};

use crate::config::stack::{param_text, Layer, Stack};
use crate::config::Loaded;

/// The lab's networks are /24s: a node's two links, the virtual IPs and the client share them.
pub const PREFIX: u8 = 24;

/// The OCF agents the lab writes configuration for (`services`).
pub const AGENTS: &[&str] = &["vip", "filesystem", "haproxy", "nginx", "tomcat", "activemq", "postgresql"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    pub name: String,
    /// Position in the stack, from 1: names the node's host-side interfaces.
    pub index: usize,
    /// Link 0 (crossover cable) and link 1 (public network).
    pub links: [Ipv4Addr; 2],
}

/// A UPS's serial cable: the UPS powering `powers` is reached from `plugged_into` at `port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cable {
    pub powers: String,
    pub plugged_into: String,
    /// The device path inside `plugged_into` (the fence device's `serial_port`).
    pub port: String,
    /// The serial number the fence device expects (`ups_serial`), which the simulator reports.
    pub serial: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub nodes: Vec<NodePlan>,
    pub cables: Vec<Cable>,
    /// The block devices the `filesystem` layers mount, as named inside the nodes.
    pub disks: Vec<String>,
    /// The virtual IPs (resource id, address).
    pub vips: Vec<(String, Ipv4Addr)>,
    pub client: Ipv4Addr,
}

impl Plan {
    pub fn node(&self, name: &str) -> Result<&NodePlan> {
        match self.nodes.iter().find(|n| n.name == name) {
            Some(n) => Ok(n),
            None => bail!(
                "no node '{name}' in this lab (nodes: {})",
                self.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// The cables plugged into `node`: the UPSes it can switch off.
    pub fn cables_into<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a Cable> + 'a {
        self.cables.iter().filter(move |c| c.plugged_into == node)
    }

    /// The serial number of the UPS powering `node`.
    pub fn ups_serial(&self, node: &str) -> Option<&str> {
        self.cables.iter().find(|c| c.powers == node).and_then(|c| c.serial.as_deref())
    }
}

/// Every layer of the stack with the id of the group or clone it belongs to.
pub fn layers(stack: &Stack) -> Vec<&Layer> {
    let grouped = stack.groups.iter().flat_map(|g| g.get_ref().layers.iter().map(|l| l.get_ref()));
    grouped.chain(stack.clones.iter().map(|c| c.get_ref().layer.get_ref())).collect()
}

/// A layer's parameter as text.
pub fn param(layer: &Layer, name: &str) -> Option<String> {
    layer.params.get_ref().get(name).and_then(|v| param_text(v.get_ref()))
}

pub fn plan(loaded: &Loaded) -> Result<Plan> {
    let stack = &loaded.stack;
    let mut problems = Vec::new();
    if stack.clones.iter().any(|c| c.get_ref().layer.get_ref().agent.get_ref() == "drbd") {
        problems.push(
            "the stack has a drbd clone, but the lab has no DRBD (this kernel has no DRBD module): its \
             replicated partition is a loop device both nodes see; use crm-config/lab.toml or drop the clone"
                .to_string(),
        );
    }
    let mut nodes = Vec::new();
    for (i, node) in stack.nodes.iter().enumerate() {
        let n = node.get_ref();
        let name = n.name.get_ref().clone();
        let addrs: Vec<Option<Ipv4Addr>> = n.links.get_ref().iter().map(|a| a.get_ref().parse().ok()).collect();
        match addrs.as_slice() {
            [Some(a), Some(b)] => nodes.push(NodePlan { name, index: i + 1, links: [*a, *b] }),
            _ => problems.push(format!("node '{name}': the lab needs two IPv4 link addresses")),
        }
    }
    if !(2..=9).contains(&nodes.len()) {
        problems.push(format!("the lab runs 2 to 9 nodes, the stack has {}", stack.nodes.len()));
    }
    for link in 0..2 {
        let nets: BTreeSet<u32> = nodes.iter().map(|n| network(n.links[link])).collect();
        if nets.len() > 1 {
            problems.push(format!("link {link}: the nodes' addresses must share one /{PREFIX} (one bridge)"));
        }
    }
    let mut cables = Vec::new();
    for fence in &stack.fences {
        let f = fence.get_ref();
        let id = f.id.get_ref();
        let port = f.params.get_ref().get("serial_port").and_then(|v| param_text(v.get_ref()));
        match (f.agent.get_ref().as_str(), port, &f.cable) {
            ("fence_ups", Some(port), Some(cable)) if port.starts_with("/dev/") => cables.push(Cable {
                powers: f.fences.get_ref().clone(),
                plugged_into: cable.get_ref().clone(),
                port,
                serial: f.params.get_ref().get("ups_serial").and_then(|v| param_text(v.get_ref())),
            }),
            _ => problems.push(format!(
                "fence device '{id}': the lab simulates APC Smart UPSes: agent fence_ups with a serial_port \
                 under /dev/ and a cable node"
            )),
        }
    }
    let mut disks = Vec::new();
    let mut vips = Vec::new();
    for layer in layers(stack) {
        let (id, agent) = (layer.id.get_ref(), layer.agent.get_ref().as_str());
        match agent {
            "filesystem" => match param(layer, "device") {
                Some(dev) if dev.starts_with("/dev/") && !dev[5..].contains('/') => {
                    if !disks.contains(&dev) {
                        disks.push(dev)
                    }
                }
                _ => problems.push(format!("layer '{id}': the lab's disks are named /dev/NAME in the nodes")),
            },
            "vip" => match param(layer, "ip").and_then(|ip| ip.parse::<Ipv4Addr>().ok()) {
                Some(ip) if nodes.first().is_some_and(|n| network(n.links[1]) == network(ip)) => {
                    vips.push((id.clone(), ip))
                }
                _ => problems.push(format!("layer '{id}': the lab's virtual IPs are IPv4 on the public network")),
            },
            a if AGENTS.contains(&a) => {}
            other => problems.push(format!(
                "layer '{id}': the lab writes configuration for {} only, not for '{other}'",
                AGENTS.join(", ")
            )),
        }
    }
    if !problems.is_empty() {
        bail!("the lab cannot run this stack:\n  {}", problems.join("\n  "));
    }
    let client = client_address(&nodes, &vips)?;
    Ok(Plan { nodes, cables, disks, vips, client })
}

fn network(a: Ipv4Addr) -> u32 {
    u32::from(a) >> (32 - PREFIX)
}

/// The client's address on the public network: host 100 of its /24, or the next free one.
fn client_address(nodes: &[NodePlan], vips: &[(String, Ipv4Addr)]) -> Result<Ipv4Addr> {
    let Some(first) = nodes.first() else { bail!("no nodes") };
    let taken: BTreeSet<Ipv4Addr> = nodes.iter().map(|n| n.links[1]).chain(vips.iter().map(|v| v.1)).collect();
    let base = u32::from(first.links[1]) & !0xff;
    (100..255)
        .map(|h| Ipv4Addr::from(base | h))
        .find(|a| !taken.contains(a))
        .ok_or_else(|| anyhow::anyhow!("no free address for the client on the public network"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_toml() -> Loaded {
        crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap()
    }

    #[test]
    fn the_shipped_lab_stack_is_buildable() {
        let p = plan(&lab_toml()).unwrap();
        assert_eq!(p.nodes.len(), 2);
        assert_eq!(p.nodes[1].index, 2);
        assert_eq!(p.disks, vec!["/dev/labdisk".to_string()]);
        // Cross cabling: node1's serial port reaches node2's UPS and the other way round.
        assert_eq!(p.cables_into("node1").map(|c| c.powers.as_str()).collect::<Vec<_>>(), ["node2"]);
        assert_eq!(p.cables_into("node2").map(|c| c.powers.as_str()).collect::<Vec<_>>(), ["node1"]);
        assert!(p.vips.len() == 2 && !p.vips.iter().any(|v| v.1 == p.client));
        assert_eq!(p.client.octets()[3], 100);
    }

    #[test]
    fn the_production_example_is_refused_with_the_reasons() {
        let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crm-config/stack.toml")).unwrap();
        let err = plan(&crate::config::parse("stack.toml", &src).unwrap()).unwrap_err().to_string();
        assert!(err.contains("the stack has a drbd clone") && err.contains("no DRBD module"), "{err}");
    }
}
