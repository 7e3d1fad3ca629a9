//! Where a lab keeps its things and what its kernel objects are called. One lab name (default
//! `hsl`) prefixes every bridge, interface and network namespace (`hsl-x`, `hsl-1p`,
//! `hsl-node1`), so a lab never takes a name a user's own set-up might use, and two labs with
//! different names can run side by side (their addresses live on their own bridges).

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The default lab name: `hastack lab` without `--name`.
pub const DEFAULT_NAME: &str = "hsl";
/// Runtime state (journal, PID files, UPS ports): gone with a reboot, as the namespaces are.
pub const RUN_ROOT: &str = "/run/hastack-lab";
/// Persistent files: node directories, the disk image, the rendered configuration, logs.
pub const DATA_ROOT: &str = "/var/lib/hastack-lab";

/// The two networks of the source design, one bridge each.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Net {
    /// Corosync link 0: the crossover cable between the nodes.
    Crossover,
    /// Corosync link 1, the virtual IPs and the client.
    Public,
}

impl Net {
    pub const BOTH: [Net; 2] = [Net::Crossover, Net::Public];

    fn letter(self) -> char {
        match self {
            Net::Crossover => 'x',
            Net::Public => 'p',
        }
    }

    /// The interface name inside a node: eth0 on the crossover cable, eth1 on the public network.
    pub fn node_ifname(self) -> &'static str {
        match self {
            Net::Crossover => "eth0",
            Net::Public => "eth1",
        }
    }

    /// Corosync link number and index into a node's `links`.
    pub fn link(self) -> usize {
        match self {
            Net::Crossover => 0,
            Net::Public => 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Lab {
    pub name: String,
    pub run_dir: PathBuf,
    pub dir: PathBuf,
}

impl Lab {
    /// A lab by name: 2-6 characters, lower-case letters and digits, starting with a letter, so
    /// that every interface name stays within the kernel's 15 bytes.
    pub fn new(name: &str) -> Result<Lab> {
        let ok = (2..=6).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            bail!("lab name '{name}': 2 to 6 lower-case letters or digits, starting with a letter");
        }
        Ok(Lab {
            name: name.to_string(),
            run_dir: PathBuf::from(RUN_ROOT).join(name),
            dir: PathBuf::from(DATA_ROOT).join(name),
        })
    }

    pub fn bridge(&self, net: Net) -> String {
        format!("{}-{}", self.name, net.letter())
    }

    /// The host end of a node's veth on `net`; `index` is the node's position (1-9).
    pub fn host_veth(&self, index: usize, net: Net) -> String {
        format!("{}-{index}{}", self.name, net.letter())
    }

    pub fn netns(&self, node: &str) -> String {
        format!("{}-{node}", self.name)
    }

    pub fn client_netns(&self) -> String {
        format!("{}-client", self.name)
    }

    pub fn client_veth(&self) -> String {
        format!("{}-cp", self.name)
    }

    /// What `up` made, in order (see `journal`).
    pub fn journal(&self) -> PathBuf {
        self.run_dir.join("journal")
    }

    /// The identity (PID, start time) of a running node's PID 1, absent while it is off.
    pub fn node_pid_file(&self, node: &str) -> PathBuf {
        self.run_dir.join(format!("{node}.pid"))
    }

    /// Serialises power changes of one node (the UPS's power process and the CLI).
    pub fn node_lock(&self, node: &str) -> PathBuf {
        self.run_dir.join(format!("{node}.lock"))
    }

    /// The pseudo-terminal of the UPS that powers `node` (a link made by the simulator).
    pub fn ups_port(&self, node: &str) -> PathBuf {
        self.run_dir.join(format!("ups-{node}"))
    }

    /// `on` or `off`: the load of the UPS that powers `node`, as its power process last saw it.
    pub fn ups_load_file(&self, node: &str) -> PathBuf {
        self.run_dir.join(format!("ups-{node}.load"))
    }

    pub fn power_log(&self, node: &str) -> PathBuf {
        self.dir.join(format!("power-{node}.log"))
    }

    /// The node's own files: bound over /etc/corosync, /var/lib/pacemaker, /var/log, /srv... in it.
    pub fn node_dir(&self, node: &str) -> PathBuf {
        self.dir.join("nodes").join(node)
    }

    /// `DEVICE-IN-NODE LOOP-DEVICE` lines: the shared disks and the loop devices behind them.
    pub fn disks_file(&self) -> PathBuf {
        self.run_dir.join("disks")
    }

    pub fn disk_image(&self, index: usize) -> PathBuf {
        self.dir.join(format!("disk{index}.img"))
    }

    /// The lab's copy of the binary that ran `up`: its nodes' agents and fence_ups, its power
    /// processes, nodes' PID 1 and client all run this one, whatever happens to the host's
    /// installation (or the build tree) meanwhile.
    pub fn binary(&self) -> PathBuf {
        self.dir.join("bin/hastack")
    }

    /// The nodes' /usr/lib/ocf/resource.d/hastack: links to `binary`, one per agent.
    pub fn agents_dir(&self) -> PathBuf {
        self.dir.join("agents")
    }

    /// The stack the lab runs (a copy of the file given to `up`, or the shipped lab.toml).
    pub fn stack_file(&self) -> PathBuf {
        self.dir.join("stack.toml")
    }

    /// Which agents the lab runs (`up --agents`): `hastack` or `clusterlabs`.
    pub fn agent_set_file(&self) -> PathBuf {
        self.dir.join("agent-set")
    }

    /// Present when `up --pacemaker-debug` was given: every boot of a node reads it (its PID 1
    /// clears the environment, so nothing else carries the choice to a reboot).
    pub fn pacemaker_debug_file(&self) -> PathBuf {
        self.dir.join("pacemaker-debug")
    }

    /// A node's pacemaker.log, seen from this machine.
    pub fn pacemaker_log(&self, node: &str) -> PathBuf {
        self.node_dir(node).join("var/log/pacemaker/pacemaker.log")
    }

    pub fn cib_file(&self) -> PathBuf {
        self.dir.join("stack.cib.xml")
    }

    pub fn corosync_conf(&self) -> PathBuf {
        self.dir.join("corosync.conf")
    }

    /// Written when `up` has finished: the lab is whole (an `up` that finds it does nothing).
    pub fn complete_marker(&self) -> PathBuf {
        self.run_dir.join("up-complete")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_kernel_and_carry_the_lab_name() {
        let lab = Lab::new("hsl").unwrap();
        assert_eq!(lab.bridge(Net::Crossover), "hsl-x");
        assert_eq!(lab.host_veth(2, Net::Public), "hsl-2p");
        assert_eq!(lab.netns("node1"), "hsl-node1");
        assert_eq!(lab.run_dir, PathBuf::from("/run/hastack-lab/hsl"));
        let long = Lab::new("abcdef").unwrap();
        for name in [long.bridge(Net::Public), long.host_veth(9, Net::Crossover), long.client_veth()] {
            assert!(name.len() <= 15, "{name}");
        }
        for bad in ["", "a", "abcdefg", "Lab", "1ab", "a-b", "a/b"] {
            assert!(Lab::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
