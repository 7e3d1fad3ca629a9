//! DRBD's state as `drbdsetup events2 --now RESOURCE` prints it, and the decisions the agent
//! derives from it: the monitor's exit code and the promotion score. Pure: no I/O, tested on
//! literal lines (as drbd-reactor does).
//!
//! `events2` is the one machine-readable state both kernels offer: drbd-utils 9 answers it
//! itself on DRBD 9 and through its `drbdsetup-84` compatibility binary on the 8.4 module that
//! mainline kernels carry (`status --json` exists only on 9). Lines look like
//! `exists device name:r0 volume:0 minor:0 disk:UpToDate`; `exists -` ends the dump.

use crate::ocf::OcfStatus;

/// One resource's state. `role` is None when the resource is not configured in the kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceState {
    pub role: Option<String>,
    /// `suspended:` of the resource line (`no`, or why I/O is frozen: `user`, `quorum`...).
    pub suspended: Option<String>,
    pub connections: Vec<Connection>,
    pub devices: Vec<Device>,
    pub peer_devices: Vec<PeerDevice>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub peer_node_id: String,
    /// `Connected`, `Connecting`, `StandAlone`, `Disconnecting`... (8.4 reports its one
    /// connection even when StandAlone).
    pub state: String,
    pub peer_role: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub volume: String,
    pub minor: String,
    /// `UpToDate`, `Consistent`, `Outdated`, `Inconsistent`, `Diskless`, `Failed`,
    /// `Attaching`, `Negotiating`, `DUnknown`.
    pub disk: String,
    /// DRBD 9 only; None when not reported (8.4, or quorum not configured).
    pub quorum: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDevice {
    pub peer_node_id: String,
    pub volume: String,
    /// `Established`, `Off`, `SyncSource`, `SyncTarget`...
    pub replication: String,
    pub peer_disk: String,
}

/// Parses the `exists` lines of `events2 --now` (other lines are ignored).
pub fn parse_events2(text: &str) -> ResourceState {
    let mut state = ResourceState::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("exists") {
            continue;
        }
        let Some(object) = words.next() else { continue };
        let fields: Vec<(&str, &str)> = words.filter_map(|w| w.split_once(':')).collect();
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
        let text = |key: &str| get(key).unwrap_or_default();
        match object {
            "resource" => {
                state.role = get("role");
                state.suspended = get("suspended");
            }
            "connection" => state.connections.push(Connection {
                peer_node_id: text("peer-node-id"),
                state: text("connection"),
                peer_role: text("role"),
            }),
            "device" => state.devices.push(Device {
                volume: text("volume"),
                minor: text("minor"),
                disk: text("disk"),
                quorum: get("quorum").map(|q| q == "yes"),
            }),
            "peer-device" => state.peer_devices.push(PeerDevice {
                peer_node_id: text("peer-node-id"),
                volume: text("volume"),
                replication: text("replication"),
                peer_disk: text("peer-disk"),
            }),
            _ => {}
        }
    }
    state
}

/// The kernel module's version from the first line of /proc/drbd (`version: 8.4.11 (api:...`).
pub fn parse_proc_version(text: &str) -> Option<(u32, u32)> {
    let rest = text.lines().next()?.strip_prefix("version:")?;
    let mut parts = rest.split_whitespace().next()?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Promotion scores, the values LINBIT's agent uses by default, so mixed clusters and habits
/// carry over.
pub const SCORE_UPTODATE_PEER_KNOWN: u32 = 10000;
pub const SCORE_UPTODATE_PEER_UNKNOWN: u32 = 1000;
pub const SCORE_CONSISTENT: u32 = 5;

/// What to do with this node's promotion score.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ScoreChange {
    Set(u32),
    /// No score: this node must not be promoted (Outdated, Inconsistent, Diskless, no quorum).
    Remove,
    /// A transitional disk state (attaching, negotiating): decide at the next look.
    Keep,
}

impl ResourceState {
    pub fn is_up(&self) -> bool {
        self.role.is_some()
    }

    pub fn is_primary(&self) -> bool {
        self.role.as_deref() == Some("Primary")
    }

    fn disks_all(&self, ok: impl Fn(&str) -> bool) -> bool {
        !self.devices.is_empty() && self.devices.iter().all(|d| ok(&d.disk))
    }

    pub fn local_up_to_date(&self) -> bool {
        self.disks_all(|d| d == "UpToDate")
    }

    /// Every configured peer is connected (an unconfigured peer list is not "connected").
    pub fn peers_connected(&self) -> bool {
        !self.connections.is_empty() && self.connections.iter().all(|c| c.state == "Connected")
    }

    /// We know every peer's disk state: the replication link is (or was just) established.
    fn peer_disks_known(&self) -> bool {
        self.peers_connected() && self.peer_devices.iter().all(|p| p.peer_disk != "DUnknown")
    }

    /// Some connected peer holds UpToDate data for every volume (reads can go there).
    fn peer_up_to_date(&self) -> bool {
        self.connections.iter().filter(|c| c.state == "Connected").any(|c| {
            let disks: Vec<&PeerDevice> =
                self.peer_devices.iter().filter(|p| p.peer_node_id == c.peer_node_id).collect();
            !disks.is_empty() && disks.iter().all(|p| p.peer_disk == "UpToDate")
        })
    }

    /// UpToDate data reachable from here, locally or through a connected peer: what DRBD needs
    /// to accept a promotion.
    pub fn has_good_data(&self) -> bool {
        self.local_up_to_date() || self.peer_up_to_date()
    }

    /// Local data this agent lets DRBD promote: UpToDate, or Consistent (after a cluster-wide
    /// crash DRBD decides, with its fencing policy). Never Outdated, Inconsistent or Diskless,
    /// even with an UpToDate peer: the same rule as the promotion score.
    pub fn promotable_data(&self) -> bool {
        self.disks_all(|d| d == "UpToDate" || d == "Consistent")
    }

    /// The local disk states, for messages (`UpToDate`, or `0:Outdated 1:UpToDate`).
    pub fn disk_summary(&self) -> String {
        match self.devices.as_slice() {
            [] => "none attached".to_string(),
            [one] => one.disk.clone(),
            many => many.iter().map(|d| format!("{}:{}", d.volume, d.disk)).collect::<Vec<_>>().join(" "),
        }
    }

    pub fn connection_summary(&self) -> String {
        match self.connections.as_slice() {
            [] => "no peer configured".to_string(),
            conns => conns
                .iter()
                .map(|c| {
                    let disks: Vec<&str> = self
                        .peer_devices
                        .iter()
                        .filter(|p| p.peer_node_id == c.peer_node_id)
                        .map(|p| p.peer_disk.as_str())
                        .collect();
                    format!("peer {} {} {} disk {}", c.peer_node_id, c.state, c.peer_role, disks.join(","))
                })
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The monitor's answer for a resource that is up.
    ///
    /// Degraded rule: running and fully redundant (every local disk UpToDate, every peer
    /// Connected with every peer disk UpToDate) is 0/8; running with anything less (a peer
    /// disconnected or resyncing, local data not UpToDate) is 190/191, which Pacemaker shows but
    /// does not recover from. A Primary without access to any UpToDate data (its disk failed
    /// and no peer has good data) is a failed Primary: 9.
    pub fn monitor_status(&self) -> OcfStatus {
        let redundant = self.local_up_to_date()
            && self.peers_connected()
            && self.peer_devices.iter().all(|p| p.peer_disk == "UpToDate");
        match (self.is_primary(), redundant) {
            (true, _) if !self.has_good_data() => OcfStatus::FailedPromoted,
            (true, true) => OcfStatus::RunningPromoted,
            (true, false) => OcfStatus::DegradedPromoted,
            (false, true) => OcfStatus::Success,
            (false, false) => OcfStatus::Degraded,
        }
    }

    /// The promotion score the data deserves: UpToDate with every peer's state known (or
    /// already Primary) > UpToDate with a peer unknown > Consistent; nothing for Outdated,
    /// Inconsistent or Diskless data, nor without quorum (DRBD 9).
    pub fn promotion_score(&self) -> ScoreChange {
        if !self.is_up() || self.devices.is_empty() {
            return ScoreChange::Remove;
        }
        if self.devices.iter().any(|d| d.quorum == Some(false)) {
            return ScoreChange::Remove;
        }
        if self.devices.iter().any(|d| matches!(d.disk.as_str(), "Attaching" | "Negotiating" | "DUnknown")) {
            return ScoreChange::Keep;
        }
        if self.local_up_to_date() {
            if self.is_primary() || self.peer_disks_known() {
                ScoreChange::Set(SCORE_UPTODATE_PEER_KNOWN)
            } else {
                ScoreChange::Set(SCORE_UPTODATE_PEER_UNKNOWN)
            }
        } else if self.disks_all(|d| d == "UpToDate" || d == "Consistent") {
            ScoreChange::Set(SCORE_CONSISTENT)
        } else {
            ScoreChange::Remove
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from drbd-utils 9.22 on Debian's 6.1 kernel (DRBD 8.4.11) in the test VMs.
    const SECONDARY_CONNECTED: &str = "\
exists resource name:r0 role:Secondary suspended:no
exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary
exists device name:r0 volume:0 minor:0 disk:UpToDate
exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:UpToDate resync-suspended:no
exists -
";
    const SECONDARY_PEER_LOST: &str = "\
exists resource name:r0 role:Secondary suspended:no
exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connecting role:Unknown
exists device name:r0 volume:0 minor:0 disk:UpToDate
exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Off peer-disk:DUnknown resync-suspended:no
exists -
";
    const OUTDATED_STANDALONE: &str = "\
exists resource name:r0 role:Secondary suspended:no
exists connection name:r0 peer-node-id:0 connection:StandAlone role:Unknown
exists device name:r0 volume:0 minor:0 disk:Outdated
exists peer-device name:r0 peer-node-id:0 volume:0 replication:Off peer-disk:DUnknown resync-suspended:no
exists -
";
    const BOTH_INCONSISTENT: &str = "\
exists resource name:r0 role:Secondary suspended:no
exists connection name:r0 peer-node-id:0 conn-name:peer connection:Connected role:Secondary
exists device name:r0 volume:0 minor:0 disk:Inconsistent
exists peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 replication:Established peer-disk:Inconsistent resync-suspended:no
exists -
";
    const DOWN: &str = "exists -\n";
    // DRBD 9 (drbd-utils documentation, drbd-reactor's test data): quorum and client fields.
    const DRBD9_PRIMARY_TWO_PEERS: &str = "\
exists resource name:data role:Primary suspended:no write-ordering:flush
exists connection name:data peer-node-id:1 conn-name:beta connection:Connected role:Secondary
exists connection name:data peer-node-id:2 conn-name:gamma connection:Connecting role:Unknown
exists device name:data volume:0 minor:1000 disk:UpToDate client:no quorum:yes
exists peer-device name:data peer-node-id:1 conn-name:beta volume:0 replication:Established peer-disk:UpToDate peer-client:no resync-suspended:no
exists peer-device name:data peer-node-id:2 conn-name:gamma volume:0 replication:Off peer-disk:DUnknown peer-client:no resync-suspended:no
exists -
";

    fn with_role(text: &str, role: &str) -> ResourceState {
        parse_events2(&text.replace("role:Secondary suspended", &format!("role:{role} suspended")))
    }

    #[test]
    fn parses_every_object() {
        let s = parse_events2(SECONDARY_CONNECTED);
        assert_eq!(s.role.as_deref(), Some("Secondary"));
        assert_eq!(s.suspended.as_deref(), Some("no"));
        assert_eq!(
            s.connections,
            vec![Connection { peer_node_id: "0".into(), state: "Connected".into(), peer_role: "Secondary".into() }]
        );
        assert_eq!(
            s.devices,
            vec![Device { volume: "0".into(), minor: "0".into(), disk: "UpToDate".into(), quorum: None }]
        );
        assert_eq!(s.peer_devices[0].replication, "Established");
        assert_eq!(s.peer_devices[0].peer_disk, "UpToDate");
        let nine = parse_events2(DRBD9_PRIMARY_TWO_PEERS);
        assert_eq!(nine.devices[0].quorum, Some(true));
        assert_eq!(nine.connections.len(), 2);
    }

    #[test]
    fn a_resource_not_in_the_kernel_is_down() {
        let s = parse_events2(DOWN);
        assert!(!s.is_up());
        assert_eq!(s.promotion_score(), ScoreChange::Remove);
        assert!(!parse_events2("").is_up());
    }

    #[test]
    fn monitor_codes() {
        assert_eq!(parse_events2(SECONDARY_CONNECTED).monitor_status(), OcfStatus::Success);
        assert_eq!(with_role(SECONDARY_CONNECTED, "Primary").monitor_status(), OcfStatus::RunningPromoted);
        assert_eq!(parse_events2(SECONDARY_PEER_LOST).monitor_status(), OcfStatus::Degraded);
        assert_eq!(with_role(SECONDARY_PEER_LOST, "Primary").monitor_status(), OcfStatus::DegradedPromoted);
        assert_eq!(parse_events2(OUTDATED_STANDALONE).monitor_status(), OcfStatus::Degraded);
        assert_eq!(parse_events2(DRBD9_PRIMARY_TWO_PEERS).monitor_status(), OcfStatus::DegradedPromoted);
        // A Primary whose disk failed still serves I/O through an UpToDate peer: degraded.
        let diskless = SECONDARY_CONNECTED.replace("disk:UpToDate\n", "disk:Diskless\n");
        assert_eq!(with_role(&diskless, "Primary").monitor_status(), OcfStatus::DegradedPromoted);
        // ...and without one it has no data at all: failed.
        let alone = SECONDARY_PEER_LOST.replace("disk:UpToDate", "disk:Failed");
        assert_eq!(with_role(&alone, "Primary").monitor_status(), OcfStatus::FailedPromoted);
    }

    #[test]
    fn scores_follow_the_data() {
        assert_eq!(parse_events2(SECONDARY_CONNECTED).promotion_score(), ScoreChange::Set(10000));
        assert_eq!(parse_events2(SECONDARY_PEER_LOST).promotion_score(), ScoreChange::Set(1000));
        assert_eq!(with_role(SECONDARY_PEER_LOST, "Primary").promotion_score(), ScoreChange::Set(10000));
        let consistent = SECONDARY_PEER_LOST.replace("disk:UpToDate", "disk:Consistent");
        assert_eq!(parse_events2(&consistent).promotion_score(), ScoreChange::Set(5));
        assert_eq!(parse_events2(OUTDATED_STANDALONE).promotion_score(), ScoreChange::Remove);
        assert_eq!(parse_events2(BOTH_INCONSISTENT).promotion_score(), ScoreChange::Remove);
        // Inconsistent but resyncing from an UpToDate peer: still never a score.
        let target = SECONDARY_CONNECTED.replace("disk:UpToDate\n", "disk:Inconsistent\n");
        assert_eq!(parse_events2(&target).promotion_score(), ScoreChange::Remove);
        let attaching = SECONDARY_CONNECTED.replace("disk:UpToDate\n", "disk:Attaching\n");
        assert_eq!(parse_events2(&attaching).promotion_score(), ScoreChange::Keep);
        let no_quorum = DRBD9_PRIMARY_TWO_PEERS.replace("quorum:yes", "quorum:no");
        assert_eq!(parse_events2(&no_quorum).promotion_score(), ScoreChange::Remove);
    }

    #[test]
    fn good_data_decides_promotion() {
        assert!(parse_events2(SECONDARY_CONNECTED).has_good_data());
        assert!(parse_events2(SECONDARY_PEER_LOST).has_good_data());
        assert!(!parse_events2(OUTDATED_STANDALONE).has_good_data());
        assert!(!parse_events2(BOTH_INCONSISTENT).has_good_data());
        let target = SECONDARY_CONNECTED.replace("disk:UpToDate\n", "disk:Inconsistent\n");
        assert!(parse_events2(&target).has_good_data());
        assert!(!parse_events2(&target).promotable_data());
        assert!(parse_events2(SECONDARY_PEER_LOST).promotable_data());
        assert!(!parse_events2(OUTDATED_STANDALONE).promotable_data());
    }

    #[test]
    fn summaries_and_versions() {
        let s = parse_events2(OUTDATED_STANDALONE);
        assert_eq!(s.disk_summary(), "Outdated");
        assert_eq!(s.connection_summary(), "peer 0 StandAlone Unknown disk DUnknown");
        assert_eq!(parse_proc_version("version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F7"), Some((8, 4)));
        assert_eq!(parse_proc_version("version: 9.2.12 (api:2/proto:86-122)\n"), Some((9, 2)));
        assert_eq!(parse_proc_version("garbage"), None);
    }
}
