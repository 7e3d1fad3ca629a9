//! `vip`: a virtual IPv4 or IPv6 address on a network interface (ClusterLabs anchor: IPaddr2).
//!
//! Start adds the address through netlink at once and claims it on the link RFC 5227's way: a
//! probe for another owner goes out just before the add, the first announcement (gratuitous ARP
//! or unsolicited neighbour advertisement) just after, and the rest, with more probes and
//! listening for another owner, from a detached process for a bounded window (`watch`). If
//! another host answers, the address is withdrawn and recorded (`conflict`): the next monitor
//! fails naming the other MAC (one virtual IP, one owner). Monitor: no standing conflict, the
//! address on the interface and the link up, from one failed open() and two netlink requests, no
//! child process (an address on a downed link is a failure, 1: only an absent address is 7).
//! Stop removes the address, also from a downed link. Start also aborts this node's TCP
//! connections to the address, made while another node held it: their clients reconnect at once
//! instead of waiting seconds for TCP to give them up.

mod conflict;
mod watch;

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use crate::net::arp::ArpMode;
use crate::net::claim::{self, Claim};
use crate::net::netlink::{self, Addr, Change, Family, Link};
use crate::net::packet::format_mac;
use crate::ocf::agent::VALIDATE_HOST;
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Logger, OcfError, OcfResult, OcfStatus, ParamSpec, Params};
use conflict::{Conflict, Records};
use watch::{Outcome, Plan, DAD_PROBES};

pub struct Vip;

/// Longest interface name (and IPv4 label) the kernel takes: IFNAMSIZ - 1.
const IFNAME_MAX: usize = 15;

/// The address parameters, shared with every agent that owns a virtual IP (tcprelay): the same
/// names, defaults and checks, and the same code behind them.
pub const VIP_PARAMS: [ParamSpec; 10] = [
    ParamSpec::string("ip")
        .required()
        .unique()
        .short("Virtual IPv4 or IPv6 address")
        .long("The virtual address, e.g. 10.0.0.10 or 2001:db8::10. IPv6 may be written in any notation."),
    ParamSpec::string("cidr_netmask").short("Prefix length").long(
        "The prefix length of the address: 1-32 for IPv4 (a dotted quad such as 255.255.255.0 is \
         accepted too), 1-128 for IPv6. Default: the prefix of the on-link route that leads to the \
         address; with an explicit nic and no such route, 32 (IPv4) or 128 (IPv6).",
    ),
    ParamSpec::string("nic").short("Network interface").long(
        "The interface to add the address to. Default: the interface of the on-link route to the \
         address in the main routing table (longest prefix, then lowest metric; default, gateway and \
         unreachable routes do not count), as IPaddr2's findif chooses it.",
    ),
    ParamSpec::string("label").short("IPv4 address label").long(
        "IPv4 only: a label for the address, appended to the interface name (eth0:LABEL, at most 15 \
         characters in all), as ifconfig-era tools show aliases.",
    ),
    ParamSpec::integer("arp_count", Some(0), Some(100))
        .default("5")
        .short("Announcements to send")
        .long("How many gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) start sends; 0 sends none."),
    ParamSpec::integer("arp_interval", Some(10), Some(10000))
        .default("200")
        .short("Milliseconds between announcements")
        .long("The interval between two announcements, in milliseconds."),
    ParamSpec::select("arp_mode", &["request", "reply"])
        .default("request")
        .short("Gratuitous ARP form")
        .long("request: ARP requests for the address (RFC 5227 announcements); reply: ARP replies, for switches and routers that only learn from replies. IPv6 always sends neighbour advertisements."),
    ParamSpec::boolean("arp_bg").default("true").short("Announce in the background").long(
        "Send the first announcement before start returns and the rest (with the duplicate \
         probes and the listening of dad_check) from a detached process, which stops as soon as \
         the address is no longer on the interface (so a stop is never followed by stale \
         announcements). false: start does it all before it returns.",
    ),
    ParamSpec::boolean("dad_check").default("true").short("Withdraw an address another host uses").long(
        "Probe the link for another owner of the address (ARP probes from 0.0.0.0 for IPv4, RFC \
         5227; neighbour solicitations from :: for IPv6, RFC 4862) and listen for its answer, from \
         just before the address is added until the later of dad_timeout and the last announcement. \
         If another host answers, the address is withdrawn: start fails if the answer came before \
         it returned, otherwise the next monitor fails, naming the other owner's MAC address. \
         After such a conflict the next start probes for dad_timeout before it adds the address. \
         Set false only where a proxy answers for the address.",
    ),
    ParamSpec::integer("dad_timeout", Some(50), Some(900))
        .default("300")
        .short("Duplicate probe window (ms)")
        .long("How long the duplicate probes last at least, in milliseconds (3 probes are sent within it); the listening goes on through the announcements."),
];

static SPEC: AgentSpec = AgentSpec {
    name: "vip",
    shortdesc: "Virtual IPv4/IPv6 address",
    longdesc: "Manages a virtual IPv4 or IPv6 address on a network interface, as IPaddr2 does, without \
        forking: the address is changed through netlink, the gratuitous ARP (IPv4) or unsolicited \
        neighbour advertisements (IPv6) are sent by the agent itself. Start adds the address at once \
        and keeps probing the link for another host that uses it during a short window after start \
        (RFC 5227 ongoing conflict detection); if one answers, the address is withdrawn and the next \
        monitor fails naming the other host's MAC (one virtual IP, one owner). Monitor checks that \
        the address is on the interface (IPv6 compared as addresses, any notation) and that the link \
        is up.",
    params: &VIP_PARAMS,
    actions: &[
        ActionSpec::new("start", "20s"),
        ActionSpec::new("stop", "20s"),
        ActionSpec::monitor("10s", "20s"),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "20s"),
    ],
};

/// The parameters, checked for syntax (validation level 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipConfig {
    pub ip: IpAddr,
    pub prefix: Option<u8>,
    pub nic: Option<String>,
    pub label: Option<String>,
    pub arp_count: u32,
    pub arp_interval: Duration,
    pub arp_mode: ArpMode,
    pub arp_bg: bool,
    pub dad_check: bool,
    pub dad_timeout: Duration,
}

impl VipConfig {
    pub fn from_params(p: &Params) -> OcfResult<VipConfig> {
        let ip = parse_ip(p.str("ip"))?;
        let prefix = p.get("cidr_netmask").map(|m| parse_prefix(m, &ip)).transpose()?;
        let nic = p.get("nic").map(|n| check_ifname(n).map(|_| n.to_string())).transpose()?;
        if let IpAddr::V6(v6) = ip {
            if nic.is_none() && (v6.segments()[0] & 0xffc0) == 0xfe80 {
                return Err(OcfError::configured(format!(
                    "parameter 'nic' is required for the link-local address {ip} given in 'ip'"
                )));
            }
        }
        let label = p.get("label").map(|l| check_label(l, &ip, nic.as_deref())).transpose()?;
        Ok(VipConfig {
            ip,
            prefix,
            nic,
            label,
            arp_count: p.int("arp_count").unwrap_or(5) as u32,
            arp_interval: Duration::from_millis(p.int("arp_interval").unwrap_or(200) as u64),
            arp_mode: if p.str("arp_mode") == "reply" { ArpMode::Reply } else { ArpMode::Request },
            arp_bg: p.bool("arp_bg"),
            dad_check: p.bool("dad_check"),
            dad_timeout: Duration::from_millis(p.int("dad_timeout").unwrap_or(300) as u64),
        })
    }
}

fn parse_ip(value: &str) -> OcfResult<IpAddr> {
    let ip: IpAddr = value
        .trim()
        .parse()
        .map_err(|_| OcfError::configured(format!("parameter 'ip' is not an IPv4 or IPv6 address: '{value}'")))?;
    let unusable = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if unusable {
        return Err(OcfError::configured(format!(
            "parameter 'ip' {ip} is an unspecified, multicast or broadcast address, not a host address"
        )));
    }
    Ok(ip)
}

/// A prefix length for the address's family; IPv4 also takes a dotted-quad netmask.
fn parse_prefix(value: &str, ip: &IpAddr) -> OcfResult<u8> {
    let family = Family::of(ip);
    let max = family.max_prefix();
    let bad = |why: String| OcfError::configured(format!("parameter 'cidr_netmask' {why}"));
    let value = value.trim();
    if let Ok(n) = value.parse::<u8>() {
        if (1..=max).contains(&n) {
            return Ok(n);
        }
        return Err(bad(format!(
            "{n} is not a prefix length for the {} address {ip} given in 'ip' (1-{max})",
            if family == Family::V4 { "IPv4" } else { "IPv6" }
        )));
    }
    if let Ok(mask) = value.parse::<Ipv4Addr>() {
        if family == Family::V6 {
            return Err(bad(format!("{value} is an IPv4 netmask, but 'ip' {ip} is IPv6: give a prefix length 1-128")));
        }
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() == 32 && bits != 0 {
            return Ok(bits.leading_ones() as u8);
        }
        return Err(bad(format!("{value} is not a contiguous netmask")));
    }
    Err(bad(format!("must be a prefix length (1-{max}) or, for IPv4, a dotted netmask; got '{value}'")))
}

fn check_ifname(name: &str) -> OcfResult<()> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(OcfError::configured(format!(
            "parameter 'nic' '{name}' is not an interface name (1-{IFNAME_MAX} characters, no '/', ':' or spaces; use 'label' for an alias)"
        )))
    }
}

/// The label as the kernel stores it (`nic:label`); its length is checked once the nic is known.
fn check_label(label: &str, ip: &IpAddr, nic: Option<&str>) -> OcfResult<String> {
    if ip.is_ipv6() {
        return Err(OcfError::configured(format!(
            "parameter 'label' is IPv4 only; 'ip' {ip} is IPv6 (the kernel has no labels for IPv6 addresses)"
        )));
    }
    if label.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(OcfError::configured(format!("parameter 'label' '{label}' contains spaces or '/'")));
    }
    if let Some(nic) = nic {
        full_label(nic, label).map_err(OcfError::configured)?;
    }
    Ok(label.to_string())
}

fn full_label(nic: &str, label: &str) -> Result<String, String> {
    let full = format!("{nic}:{label}");
    if full.len() > IFNAME_MAX {
        return Err(format!(
            "parameter 'label': '{full}' (nic:label) is longer than the kernel's {IFNAME_MAX} characters"
        ));
    }
    Ok(full)
}

/// The parameters resolved on this host: the interface and prefix the address goes on.
#[derive(Debug)]
pub(crate) struct Placement {
    pub link: Link,
    pub prefix: u8,
    pub label: Option<String>,
}

/// A netlink or socket error as an OCF error: EPERM/EACCES is OCF_ERR_PERM, anything else generic.
pub(crate) fn net_error(what: &str, e: io::Error) -> OcfError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            OcfError::perm(format!("{what}: {e} (needs root / CAP_NET_ADMIN and CAP_NET_RAW)"))
        }
        _ => OcfError::generic(format!("{what}: {e}")),
    }
}

/// Finds the interface and prefix (level-10 validation and start). A missing interface, or no
/// route to find one, makes the parameters invalid on this host: OCF_ERR_ARGS (2), so Pacemaker
/// bans the resource from this node and tries another.
pub(crate) fn place(cfg: &VipConfig) -> OcfResult<Placement> {
    let family = Family::of(&cfg.ip);
    let (link, route_prefix) = match &cfg.nic {
        Some(nic) => {
            let link = netlink::link_by_name(nic)
                .map_err(|e| net_error(&format!("cannot look up interface '{nic}'"), e))?
                .ok_or_else(|| {
                    OcfError::args(format!("parameter 'nic': interface '{nic}' does not exist on this host"))
                })?;
            let prefix = if cfg.prefix.is_none() {
                let routes = netlink::main_routes(family).map_err(|e| net_error("cannot read the routing table", e))?;
                netlink::pick_onlink_route(&routes, &cfg.ip, Some(link.index)).map(|r| r.prefix_len)
            } else {
                None
            };
            (link, prefix)
        }
        None => {
            let routes = netlink::main_routes(family).map_err(|e| net_error("cannot read the routing table", e))?;
            let route = netlink::pick_onlink_route(&routes, &cfg.ip, None).ok_or_else(|| {
                OcfError::args(format!(
                    "parameter 'nic' is not set and no on-link route on this host leads to 'ip' {}: set 'nic' (and 'cidr_netmask')",
                    cfg.ip
                ))
            })?;
            let index = route.oif.expect("on-link routes have an interface");
            let link = netlink::link_by_index(index)
                .map_err(|e| net_error("cannot look up the route's interface", e))?
                .ok_or_else(|| {
                    OcfError::generic(format!("the route to {} names interface {index}, which vanished", cfg.ip))
                })?;
            (link, Some(route.prefix_len))
        }
    };
    let prefix = cfg.prefix.or(route_prefix).unwrap_or(family.max_prefix());
    let label = match &cfg.label {
        Some(l) => Some(full_label(&link.name, l).map_err(OcfError::args)?),
        None => None,
    };
    Ok(Placement { link, prefix, label })
}

/// Where the address is now: on the configured interface, or anywhere when no nic is set (the
/// route that found the interface at start may be gone with the link, the address is not).
struct Holders {
    addrs: Vec<Addr>,
    /// The configured interface, when it was looked up (only if the address is somewhere).
    nic: Option<Link>,
}

/// Ok(None) when the configured interface does not exist.
fn holders(cfg: &VipConfig) -> OcfResult<Option<Holders>> {
    let mut addrs = netlink::find_address(&cfg.ip).map_err(|e| net_error("cannot list addresses", e))?;
    let mut nic_link = None;
    if let (Some(nic), false) = (&cfg.nic, addrs.is_empty()) {
        match netlink::link_by_name(nic).map_err(|e| net_error(&format!("cannot look up interface '{nic}'"), e))? {
            Some(link) => {
                addrs.retain(|a| a.index == link.index);
                nic_link = Some(link);
            }
            None => return Ok(None),
        }
    }
    Ok(Some(Holders { addrs, nic: nic_link }))
}

impl Agent for Vip {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let cfg = VipConfig::from_params(&ctx.params)?;
        if level >= VALIDATE_HOST {
            place(&cfg)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let cfg = VipConfig::from_params(&ctx.params)?;
        let place = place(&cfg)?;
        let link = &place.link;
        let on_link = netlink::find_address(&cfg.ip).map_err(|e| net_error("cannot list addresses", e))?;
        if on_link.iter().any(|a| a.index == link.index) {
            ctx.log.info(format!("{} is already on {}", cfg.ip, link.name));
            return Ok(OcfStatus::Success);
        }
        if let Some(why) = link.down_reason() {
            return Err(OcfError::generic(format!("{why}; not adding {}", cfg.ip)));
        }
        let mac = link.ethernet_mac().filter(|_| !link.noarp);
        if mac.is_none() {
            ctx.log.info(format!("{} has no ARP/neighbour discovery: no duplicate probe, no announcements", link.name));
        }
        let records = Records::for_address(&cfg.ip);
        // With dad_check the claim's socket is open before the add, so the first probe's answer
        // is queued even if it comes before the address is there.
        let mut claim = match (cfg.dad_check, mac) {
            (true, Some(mac)) => {
                let claim = open_claim(&cfg, link, mac).map_err(|e| {
                    net_error(
                        &format!("cannot open a socket to probe for another owner of {} on {}", cfg.ip, link.name),
                        e,
                    )
                })?;
                probe_first_after_a_conflict(ctx, &cfg, link, &claim, &records)?;
                claim
                    .probe()
                    .map_err(|e| net_error(&format!("duplicate-address probe for {} on {}", cfg.ip, link.name), e))?;
                Some(claim)
            }
            _ => None,
        };
        let t0 = Instant::now();
        match netlink::add_address(link.index, cfg.ip, place.prefix, place.label.as_deref())
            .map_err(|e| net_error(&format!("cannot add {}/{} to {}", cfg.ip, place.prefix, link.name), e))?
        {
            Change::Done => {
                ctx.log.info(format!("added {}/{} to {}", cfg.ip, place.prefix, link.name));
                if on_link.is_empty() {
                    abort_stale_connections(ctx, &cfg.ip);
                }
            }
            Change::AlreadyThere => ctx.log.info(format!("{} was already on {}", cfg.ip, link.name)),
        }
        records.clear();
        if let Some(claim) = &claim {
            // Whatever answered the first probe by now (on a LAN: within a millisecond).
            if let Ok(Some(other)) = claim.other_owner(Instant::now()) {
                return Err(withdraw(ctx.log, &cfg, &place, &records, other, t0).unwrap_or_else(|e| e));
            }
        }
        let Some(mac) = mac else { return Ok(OcfStatus::Success) };
        if claim.is_none() && cfg.arp_count > 0 {
            match open_claim(&cfg, link, mac) {
                Ok(c) => claim = Some(c),
                Err(e) => {
                    ctx.log.warn(format!("cannot announce {}: {e}", cfg.ip));
                    return Ok(OcfStatus::Success);
                }
            }
        }
        let Some(claim) = claim else { return Ok(OcfStatus::Success) };
        announce_and_watch(ctx, &cfg, &place, claim, &records, t0)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let cfg = VipConfig::from_params(&ctx.params)?;
        let records = Records::for_address(&cfg.ip);
        // Under the records' lock, a watcher cannot record a conflict for the address once this
        // stop has removed it.
        let lock = records.lock();
        if let Err(e) = &lock {
            ctx.log.warn(format!("cannot lock {}: {e}; stopping anyway", conflict::DIR));
        }
        let stopped = remove_address(ctx, &cfg)?;
        records.demote();
        Ok(stopped)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let cfg = VipConfig::from_params(&ctx.params)?;
        if let Some(c) = Records::for_address(&cfg.ip).standing_conflict() {
            // Not 7: the failure stands until Pacemaker has stopped the resource here.
            return Err(OcfError::generic(format!(
                "duplicate address: another host (MAC {}) answered for {} on {} at {}, after start; the address was \
                 withdrawn (one virtual IP, one owner). Stop clears this; the next start probes before adding it",
                c.mac, cfg.ip, c.nic, c.at
            )));
        }
        let where_ = cfg.nic.as_deref().map(|n| format!(" on {n}")).unwrap_or_default();
        let found = match holders(&cfg)? {
            None => {
                return Err(OcfError::not_running(format!(
                    "parameter 'nic': interface '{}' does not exist",
                    cfg.nic.as_deref().unwrap_or("")
                )))
            }
            Some(found) => found,
        };
        let Some(addr) = found.addrs.first() else {
            if ctx.is_probe() {
                return Ok(OcfStatus::NotRunning);
            }
            return Err(OcfError::not_running(format!("{} is not configured{where_}", cfg.ip)));
        };
        if addr.dad_failed {
            return Err(OcfError::generic(format!("the kernel found a duplicate of {}{where_}", cfg.ip)));
        }
        // With a nic, holders() already has the link; otherwise one more request.
        let link = match found.nic {
            Some(link) => link,
            None => netlink::link_by_index(addr.index)
                .map_err(|e| net_error("cannot look up the interface", e))?
                .ok_or_else(|| OcfError::not_running(format!("the interface holding {} vanished", cfg.ip)))?,
        };
        // Still configured here, so not "safely stopped" (7, after which Pacemaker never calls
        // stop and starts the address on the peer: two owners once the link is back). A failure
        // makes Pacemaker stop it here first.
        if let Some(why) = link.down_reason() {
            return Err(OcfError::generic(format!("{} is on {} but {why}", cfg.ip, link.name)));
        }
        Ok(OcfStatus::Success)
    }
}

impl VipConfig {
    fn watch_settings(&self) -> watch::Settings {
        watch::Settings {
            dad_check: self.dad_check,
            dad_timeout: self.dad_timeout,
            arp_count: self.arp_count,
            arp_interval: self.arp_interval,
        }
    }
}

/// Aborts this node's TCP connections to the address it has just taken (SOCK_DESTROY): they
/// were made while another node held it, and that node is gone (fenced, or it removed the
/// address). Left alone, a local client (an application server whose database or broker just
/// moved here) waits on each for its next retransmission or its keepalive, which answers
/// "reset" only seconds later; aborted, it reconnects at once to the service now here. A kernel
/// without CONFIG_INET_DIAG_DESTROY only loses that speed: a warning, not a failed start.
fn abort_stale_connections(ctx: &Ctx, ip: &IpAddr) {
    match crate::net::sockdiag::destroy_tcp_connections_to(*ip) {
        Ok(0) => {}
        Ok(n) => ctx.log.info(format!("aborted {n} local TCP connection(s) to {ip}, made to its previous holder")),
        Err(e) => {
            ctx.log.warn(format!("cannot abort the local TCP connections to {ip} made to its previous holder: {e}"))
        }
    }
}

fn open_claim(cfg: &VipConfig, link: &Link, mac: [u8; 6]) -> io::Result<Claim> {
    Claim::open(link.index, mac, cfg.ip, cfg.arp_mode)
}

/// Removes the address from wherever it is (stop's work).
fn remove_address(ctx: &Ctx, cfg: &VipConfig) -> OcfResult {
    let Some(Holders { addrs: found, .. }) = holders(cfg)? else {
        ctx.log.info(format!(
            "interface '{}' does not exist: {} cannot be on it",
            cfg.nic.as_deref().unwrap_or(""),
            cfg.ip
        ));
        return Ok(OcfStatus::Success);
    };
    for a in &found {
        let dev = netlink::link_by_index(a.index).ok().flatten().map(|l| l.name).unwrap_or(a.index.to_string());
        netlink::del_address(a.index, a.ip, a.prefix_len)
            .map_err(|e| net_error(&format!("cannot remove {}/{} from {dev}", a.ip, a.prefix_len), e))?;
        ctx.log.info(format!("removed {}/{} from {dev}", a.ip, a.prefix_len));
    }
    match holders(cfg)? {
        Some(left) if !left.addrs.is_empty() => {
            Err(OcfError::generic(format!("{} is still on interface {} after removal", cfg.ip, left.addrs[0].index)))
        }
        _ => Ok(OcfStatus::Success),
    }
}

/// After a conflict (recorded by an earlier start, standing or stopped), this start probes for
/// the whole dad_timeout before it adds the address, as every start did before: a failover that
/// just met another owner is not the clean case, and a start that fails here (1, start-failure-
/// is-fatal) makes Pacemaker move the address instead of restarting it into the same conflict.
fn probe_first_after_a_conflict(
    ctx: &Ctx,
    cfg: &VipConfig,
    link: &Link,
    claim: &Claim,
    records: &Records,
) -> OcfResult<()> {
    let Some(last) = records.last_conflict() else { return Ok(()) };
    ctx.log.info(format!(
        "another host (MAC {}) answered for {} at {}: probing for {:?} before adding it",
        last.mac, cfg.ip, last.at, cfg.dad_timeout
    ));
    let until = Instant::now() + ctx.deadline.at_most(cfg.dad_timeout).remaining();
    let owner = claim::probe_owner(claim, DAD_PROBES, until)
        .map_err(|e| net_error(&format!("duplicate-address probe for {} on {} failed", cfg.ip, link.name), e))?;
    let Some(other) = owner else { return Ok(()) };
    let other = format_mac(&other);
    let _ = records.record_stopped(&Conflict { mac: other.clone(), nic: link.name.clone(), at: now() });
    Err(OcfError::generic(format!(
        "duplicate address: {} is already in use on {} by another host (MAC {other}); not adding it: one virtual IP, one owner",
        cfg.ip, link.name
    )))
}

/// Another host answered for the address after we added it: RFC 5227 §2.4 (a), we give it up
/// (README: a cluster's takeover must not fight the host that was there first). Under the
/// records' lock and only while the address is still ours (a stop may have removed it): record
/// the conflict, remove the address. Returns the error start or the log reports.
fn withdraw(
    log: &Logger,
    cfg: &VipConfig,
    place: &Placement,
    records: &Records,
    other: [u8; 6],
    t0: Instant,
) -> Result<OcfError, OcfError> {
    let link = &place.link;
    let other = format_mac(&other);
    let after = t0.elapsed().as_millis();
    let _lock = records.lock();
    if !still_ours(link.index, &cfg.ip) {
        log.info(format!("another host (MAC {other}) answered for {} after it was removed here", cfg.ip));
        return Ok(OcfError::generic(format!(
            "{} was removed while another host (MAC {other}) answered for it",
            cfg.ip
        )));
    }
    let conflict = Conflict { mac: other.clone(), nic: link.name.clone(), at: now() };
    if let Err(e) = records.record(&conflict) {
        log.error(format!("cannot record the conflict in {}: {e}", conflict::DIR));
    }
    let removed = netlink::del_address(link.index, cfg.ip, place.prefix);
    let what = format!(
        "duplicate address: another host (MAC {other}) answered for {} on {} {after} ms after it was added here",
        cfg.ip, link.name
    );
    match removed {
        Ok(_) => {
            let msg = format!("{what}; withdrawn: one virtual IP, one owner");
            log.error(&msg);
            Ok(OcfError::generic(msg))
        }
        Err(e) => {
            let msg = format!("{what}; withdrawing it failed: {e}");
            log.error(&msg);
            Err(OcfError::generic(msg))
        }
    }
}

/// The announcements and the watch for another owner that follow the add (the first probe, if
/// any, already sent): in the background (arp_bg) or inline within the action's deadline.
fn announce_and_watch(
    ctx: &Ctx,
    cfg: &VipConfig,
    place: &Placement,
    claim: Claim,
    records: &Records,
    t0: Instant,
) -> OcfResult {
    if cfg.arp_count > 0 {
        if let Err(e) = claim.announce() {
            ctx.log.warn(format!("cannot announce {}: {e}", cfg.ip));
            return Ok(OcfStatus::Success);
        }
    }
    let plan = Plan::new(t0, cfg.watch_settings());
    if plan.is_empty() {
        return Ok(OcfStatus::Success);
    }
    if cfg.arp_bg {
        return watch_in_background(ctx, cfg, place, claim, plan, t0);
    }
    let plan = plan.until(Instant::now() + ctx.deadline.remaining());
    match watch::run(&claim, &plan, || still_ours(place.link.index, &cfg.ip)) {
        Outcome::Conflict(other) => Err(withdraw(ctx.log, cfg, place, records, other, t0).unwrap_or_else(|e| e)),
        Outcome::Failed(e) => {
            ctx.log.warn(format!("announcing {} / watching for another owner failed: {e}", cfg.ip));
            Ok(OcfStatus::Success)
        }
        Outcome::Done | Outcome::Gone => Ok(OcfStatus::Success),
    }
}

/// After another process of ours added the address at `t0` (tcprelay's migration target adds it
/// the moment its restored connections exist): the same announcements and the same watch for
/// another owner as after start, so a taken-over address is withdrawn on conflict like a
/// started one.
pub(crate) fn announce_and_watch_after_takeover(
    ctx: &Ctx,
    cfg: &VipConfig,
    place: &Placement,
    t0: Instant,
) -> OcfResult {
    let link = &place.link;
    let Some(mac) = link.ethernet_mac().filter(|_| !link.noarp) else { return Ok(OcfStatus::Success) };
    if !cfg.dad_check && cfg.arp_count == 0 {
        return Ok(OcfStatus::Success);
    }
    let claim = match open_claim(cfg, link, mac) {
        Ok(c) => c,
        Err(e) => {
            ctx.log.warn(format!("cannot announce {} or watch for another owner: {e}", cfg.ip));
            return Ok(OcfStatus::Success);
        }
    };
    if cfg.dad_check {
        if let Err(e) = claim.probe() {
            ctx.log.warn(format!("duplicate-address probe for {} on {}: {e}", cfg.ip, link.name));
        }
    }
    announce_and_watch(ctx, cfg, place, claim, &Records::for_address(&cfg.ip), t0)
}

/// The rest of the plan from a detached process, so start returns now. It logs what it finds
/// (syslog or the HA log files: its stderr is no longer read).
fn watch_in_background(
    ctx: &Ctx,
    cfg: &VipConfig,
    place: &Placement,
    claim: Claim,
    plan: Plan,
    t0: Instant,
) -> OcfResult {
    let window = plan.window(t0);
    let job = || {
        let log = ctx.log.detached();
        let records = Records::for_address(&cfg.ip);
        match watch::run(&claim, &plan, || still_ours(place.link.index, &cfg.ip)) {
            Outcome::Conflict(other) => {
                let _ = withdraw(&log, cfg, place, &records, other, t0);
            }
            Outcome::Failed(e) => log.warn(format!("announcing {} / watching for another owner failed: {e}", cfg.ip)),
            Outcome::Gone => log.debug(format!("{} was removed: no more announcements", cfg.ip)),
            Outcome::Done => log.debug(format!("no other owner of {} answered within {window:?}", cfg.ip)),
        }
        0
    };
    match crate::sys::proc::detach(job) {
        Ok(pid) => ctx
            .log
            .debug(format!("announcing {} and watching for another owner for {window:?} from process {pid}", cfg.ip)),
        Err(e) => ctx.log.warn(format!(
            "cannot start the announcer ({e}); sent one announcement only, and no more duplicate probes"
        )),
    }
    Ok(OcfStatus::Success)
}

/// Whether the address is still on the interface (a later stop ends the announcements).
fn still_ours(ifindex: u32, ip: &IpAddr) -> bool {
    netlink::find_address(ip).map(|f| f.iter().any(|a| a.index == ifindex)).unwrap_or(false)
}

/// The time as the logs write it.
fn now() -> String {
    crate::ocf::log::timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn cfg(pairs: &[(&str, &str)]) -> OcfResult<VipConfig> {
        let given: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        VipConfig::from_params(&Params::from_env(SPEC.params, &given)?)
    }

    fn reason(pairs: &[(&str, &str)]) -> String {
        let e = cfg(pairs).unwrap_err();
        assert_eq!(e.status, OcfStatus::ErrConfigured, "{e}");
        e.reason
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("ip", "10.0.0.10")]).unwrap();
        assert_eq!(c.prefix, None);
        assert_eq!((c.arp_count, c.arp_interval, c.arp_mode), (5, Duration::from_millis(200), ArpMode::Request));
        assert!(c.dad_check && c.arp_bg);
        assert_eq!(c.dad_timeout, Duration::from_millis(300));
    }

    #[test]
    fn ipv6_in_any_notation_is_one_address() {
        let a = cfg(&[("ip", "2001:db8::1")]).unwrap().ip;
        let b = cfg(&[("ip", "2001:0db8:0::1")]).unwrap().ip;
        let c = cfg(&[("ip", "2001:DB8:0:0:0:0:0:1")]).unwrap().ip;
        assert!(a == b && b == c);
    }

    #[test]
    fn prefixes_by_family() {
        assert_eq!(cfg(&[("ip", "10.0.0.1"), ("cidr_netmask", "24")]).unwrap().prefix, Some(24));
        assert_eq!(cfg(&[("ip", "10.0.0.1"), ("cidr_netmask", "255.255.254.0")]).unwrap().prefix, Some(23));
        assert_eq!(cfg(&[("ip", "2001:db8::1"), ("cidr_netmask", "64")]).unwrap().prefix, Some(64));
        assert!(reason(&[("ip", "10.0.0.1"), ("cidr_netmask", "64")]).contains("'cidr_netmask' 64"));
        assert!(reason(&[("ip", "10.0.0.1"), ("cidr_netmask", "0")]).contains("'cidr_netmask'"));
        assert!(reason(&[("ip", "10.0.0.1"), ("cidr_netmask", "255.0.255.0")]).contains("contiguous"));
        assert!(reason(&[("ip", "2001:db8::1"), ("cidr_netmask", "255.255.255.0")]).contains("IPv6"));
        assert!(reason(&[("ip", "2001:db8::1"), ("cidr_netmask", "129")]).contains("'cidr_netmask'"));
        assert!(reason(&[("ip", "10.0.0.1"), ("cidr_netmask", "x")]).contains("'cidr_netmask'"));
    }

    #[test]
    fn bad_addresses_name_ip() {
        for bad in ["10.0.0", "10.0.0.256", "hello", "2001:db8::1::2", "0.0.0.0", "224.0.0.1", "::", "ff02::1"] {
            assert!(reason(&[("ip", bad)]).contains("'ip'"), "{bad}");
        }
        assert!(reason(&[]).contains("'ip'"));
    }

    #[test]
    fn nic_and_label_checks() {
        assert!(reason(&[("ip", "10.0.0.1"), ("nic", "eth0:1")]).contains("'nic'"));
        assert!(reason(&[("ip", "10.0.0.1"), ("nic", "averyveryverylongname")]).contains("'nic'"));
        assert!(reason(&[("ip", "fe80::5")]).contains("'nic'"));
        assert!(cfg(&[("ip", "fe80::5"), ("nic", "eth0")]).is_ok());
        assert!(reason(&[("ip", "2001:db8::1"), ("label", "web")]).contains("'label'"));
        assert!(reason(&[("ip", "10.0.0.1"), ("nic", "eth0"), ("label", "waytoolonglabel")]).contains("'label'"));
        assert_eq!(
            cfg(&[("ip", "10.0.0.1"), ("nic", "eth0"), ("label", "web")]).unwrap().label.as_deref(),
            Some("web")
        );
        assert_eq!(full_label("eth0", "web").unwrap(), "eth0:web");
    }

    #[test]
    fn bounded_settings() {
        assert!(cfg(&[("ip", "10.0.0.1"), ("dad_timeout", "1000")]).is_err());
        assert!(cfg(&[("ip", "10.0.0.1"), ("arp_mode", "gratuitous")]).is_err());
        assert_eq!(cfg(&[("ip", "10.0.0.1"), ("arp_mode", "reply")]).unwrap().arp_mode, ArpMode::Reply);
    }
}
