//! The lab's ClusterLabs mode (`hastack lab up --agents clusterlabs`): the same stack, CIB and
//! fencing, with each hastack agent that Debian's resource-agents has an equivalent for replaced
//! by that agent (`ocf:heartbeat:*`), so that `lab bench` measures both sets on the same cluster
//! with the same client, ledger and driver. The CIB is still rendered by `hastack config` from
//! the stack file; only its primitives are swapped here, after rendering's model is built: ids,
//! groups, clones, constraints and operations stay exactly as rendered, but for a warm-standby
//! layer, rendered cold (below).
//!
//! Fencing too is what an administrator without hastack runs: fence-agents has no agent for a
//! serial APC Smart UPS, so such a user has cluster-glue's `apcsmart` stonith plugin, which
//! Pacemaker runs through `stonith:fence_legacy` (`plugin=apcsmart`; every other parameter
//! becomes an environment variable of `stonith -t apcsmart -E`). Each fence_ups device becomes
//! one on the same serial port (`ttydev`) for the same node (`hostlist`), with the same id,
//! `pcmk_*` parameters, operations and location constraints. Pacemaker's `reboot` is the
//! plugin's reset: `S`, refused on line power, then `@000`, a hibernation after the UPS's 20 s
//! grace period, from which the UPS wakes by itself (src/lab/power.rs boots the node then), so
//! the ClusterLabs side's "cut -> first transaction" includes its own fencing, as the issue's
//! outside baseline (26.1 s) did. The plugin takes a UUCP lock in /var/lock: the nodes' init
//! makes /run/lock in this mode (src/lab/init.rs).
//!
//! resource-agents has no HAProxy and no ActiveMQ agent: those layers keep hastack's. The
//! broker keeps hastack's agent, configured by activemq.xml as an administrator without hastack
//! runs ActiveMQ (Debian's default, its packaged instance; a stack with `broker_uri` has it
//! swapped back to the activemq.xml `lab up` writes in its `conf_dir`), and **cold**: a
//! `warm_standby` layer (hastack's standby JVM on every node, promoted where the partition is
//! mounted) becomes the plain `parallel` layer it is without it, started after the partition
//! and VIP2 like the other data layers. Nothing in resource-agents or Debian's ActiveMQ gives
//! such an administrator a standby that takes a store it cannot see until the failover: the
//! partition is replicated by DRBD, not shared, so ActiveMQ's own shared-file master/slave has
//! no file to share.

use anyhow::{bail, Result};

use crate::config::model::{Class, Cluster, Nv, Primitive, Resource};

/// Which agents run the stack's services.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Agents {
    /// hastack's agents (`ocf:hastack:*`), as `hastack config` renders them.
    #[default]
    Hastack,
    /// The ClusterLabs agents from Debian's resource-agents (`ocf:heartbeat:*`) where it has one.
    Clusterlabs,
}

impl Agents {
    pub fn name(self) -> &'static str {
        match self {
            Agents::Hastack => "hastack",
            Agents::Clusterlabs => "clusterlabs",
        }
    }

    pub fn parse(text: &str) -> Option<Agents> {
        [Agents::Hastack, Agents::Clusterlabs].into_iter().find(|a| a.name() == text.trim())
    }
}

/// resource-agents' provider.
pub const PROVIDER: &str = "heartbeat";

/// Debian's paths the ClusterLabs agents are given (they have no defaults that fit Debian).
pub const TOMCAT_HOME: &str = "/usr/share/tomcat10";
pub const JAVA_HOME: &str = "/usr/lib/jvm/default-java";
pub const NGINX: &str = "/usr/sbin/nginx";
/// Where the tomcat agent keeps Tomcat's PID. resource-agents 4.12 (Debian 12) sets its default
/// (this directory) only for `start`, so every monitor finds no PID file and reports "not
/// running" (fixed upstream in ClusterLabs/resource-agents#2028): the lab gives the path
/// explicitly and each node's init makes the directory at boot, as the fixed agent would.
/// Under /run, so a PID from before a power cut is never taken for a live Tomcat.
pub const TOMCAT_STATE_DIR: &str = "/run/resource-agents/tomcat_tomcatstate";

/// The stonith agent that runs a cluster-glue plugin for Pacemaker (Pacemaker's package ships it).
pub const FENCE_LEGACY: &str = "fence_legacy";
/// cluster-glue's plugin for an APC Smart UPS on a serial port.
pub const GLUE_PLUGIN: &str = "apcsmart";

/// The heartbeat agent that replaces a hastack agent, if resource-agents has one.
pub fn replacement(hastack_agent: &str) -> Option<&'static str> {
    Some(match hastack_agent {
        "vip" => "IPaddr2",
        "filesystem" => "Filesystem",
        "postgresql" => "pgsql",
        "nginx" => "nginx",
        "tomcat" => "tomcat",
        _ => return None,
    })
}

/// Swaps every hastack primitive that has a ClusterLabs equivalent; an agent parameter that has
/// no equivalent there is refused by name (the stack would not mean the same).
pub fn translate(cluster: &mut Cluster) -> Result<()> {
    let mut problems = Vec::new();
    for resource in &mut cluster.resources {
        let primitives: Vec<&mut Primitive> = match resource {
            Resource::Primitive(p) => vec![p],
            Resource::Group(g) => g.members.iter_mut().collect(),
            Resource::Clone(c) => vec![&mut c.child],
        };
        for p in primitives {
            let swapped = if p.class == Class::Stonith { swap_fence(p) } else { swap(p) };
            if let Err(e) = swapped {
                problems.push(e.to_string());
            }
        }
    }
    if !problems.is_empty() {
        bail!("the lab cannot run this stack with the ClusterLabs agents:\n  {}", problems.join("\n  "));
    }
    Ok(())
}

fn swap(p: &mut Primitive) -> Result<()> {
    if p.class != Class::Ocf(crate::config::model::OCF_PROVIDER) {
        return Ok(());
    }
    if p.agent == "activemq" {
        return broker_from_activemq_xml(p);
    }
    let Some(agent) = replacement(&p.agent) else { return Ok(()) };
    let mut params: Vec<Nv> = Vec::new();
    let mut put = |k: &str, v: &str| params.push((k.to_string(), v.to_string()));
    let mut unknown = Vec::new();
    let mut bindir = super::disk::PG_BINDIR.to_string();
    for (name, value) in &p.params {
        let renamed = match (p.agent.as_str(), name.as_str()) {
            ("vip", "ip" | "cidr_netmask" | "nic") => Some(name.as_str()),
            ("vip", "label") => Some("iflabel"),
            ("filesystem", "device" | "directory" | "fstype" | "options") => Some(name.as_str()),
            ("postgresql", "pgdata" | "config" | "logfile") => Some(name.as_str()),
            ("postgresql", "socket_dir") => Some("socketdir"),
            ("postgresql", "port") => Some("pgport"),
            // pgsql takes the addresses from postgresql.conf, which the lab writes with them.
            ("postgresql", "listen_addresses") => None,
            ("postgresql", "bindir") => {
                bindir = value.clone();
                None
            }
            ("nginx", "configfile") => Some(name.as_str()),
            // The heartbeat agent reads the PID file's path from the configuration file.
            ("nginx", "pidfile") => None,
            ("tomcat", "catalina_base" | "statusurl" | "java_opts" | "catalina_opts") => Some(name.as_str()),
            _ => {
                unknown.push(name.clone());
                None
            }
        };
        if let Some(renamed) = renamed {
            put(renamed, value);
        }
    }
    if !unknown.is_empty() {
        bail!("layer '{}': ocf:{PROVIDER}:{agent} has no equivalent of {}", p.id, unknown.join(", "));
    }
    match p.agent.as_str() {
        "postgresql" => {
            put("pgctl", &format!("{bindir}/pg_ctl"));
            put("psql", &format!("{bindir}/psql"));
            put("pgdba", "postgres");
        }
        "nginx" => put("httpd", NGINX),
        "tomcat" => {
            put("catalina_home", TOMCAT_HOME);
            put("java_home", JAVA_HOME);
            put("tomcat_user", "tomcat");
            put("catalina_pid", &format!("{TOMCAT_STATE_DIR}/catalina.pid"));
        }
        _ => {}
    }
    p.class = Class::Ocf(PROVIDER);
    p.agent = agent.to_string();
    p.params = params;
    Ok(())
}

/// A fence_ups device as cluster-glue's apcsmart plugin through fence_legacy (module doc):
/// `serial_port` becomes `ttydev`, the node it fences (`pcmk_host_list`) the plugin's
/// `hostlist`; Pacemaker's own `pcmk_*` parameters stay. `ups_serial` goes: the plugin cannot
/// check which UPS answers (it reads no serial number), which is part of what the comparison
/// shows. Any other fence_ups parameter is refused by name.
fn swap_fence(p: &mut Primitive) -> Result<()> {
    if p.agent != "fence_ups" {
        bail!("fence device '{}': the lab's ClusterLabs side replaces fence_ups only, not {}", p.id, p.agent);
    }
    let value = |k: &str| p.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (Some(tty), Some(hosts)) = (value("serial_port"), value("pcmk_host_list")) else {
        bail!("fence device '{}': the apcsmart plugin needs serial_port and pcmk_host_list", p.id);
    };
    let mut params: Vec<Nv> =
        vec![("plugin".into(), GLUE_PLUGIN.into()), ("ttydev".into(), tty), ("hostlist".into(), hosts)];
    let mut unknown = Vec::new();
    for (name, value) in &p.params {
        match name.as_str() {
            "serial_port" | "ups_serial" => {}
            n if crate::fence::args::is_pacemaker_own(n) => params.push((name.clone(), value.clone())),
            _ => unknown.push(name.clone()),
        }
    }
    if !unknown.is_empty() {
        bail!(
            "fence device '{}': stonith:{FENCE_LEGACY} ({GLUE_PLUGIN}) has no equivalent of {}",
            p.id,
            unknown.join(", ")
        );
    }
    p.agent = FENCE_LEGACY.to_string();
    p.params = params;
    Ok(())
}

/// hastack's activemq agent as a site without hastack would configure the broker: `broker_uri`
/// swapped back to `config`, the activemq.xml `lab up` writes in `conf_dir` (module doc).
fn broker_from_activemq_xml(p: &mut Primitive) -> Result<()> {
    let Some(at) = p.params.iter().position(|(k, _)| k == "broker_uri") else { return Ok(()) };
    let Some(conf_dir) = p.params.iter().find(|(k, _)| k == "conf_dir").map(|(_, v)| v.clone()) else {
        bail!("layer '{}': with broker_uri the lab needs conf_dir (where it writes activemq.xml)", p.id);
    };
    p.params[at] = ("config".into(), super::services::activemq_xml_in(&conf_dir));
    Ok(())
}

/// The CIB the lab loads: `hastack config`'s rendering of the stack, with the ClusterLabs
/// agents swapped in when asked. Their side runs every layer cold: a `warm_standby` layer is
/// rendered as the plain `parallel` layer it would be without it (module doc).
pub fn render_cib(loaded: &mut crate::config::Loaded, agents: Agents) -> Result<String> {
    if agents == Agents::Clusterlabs {
        let warm = loaded.stack.groups.iter_mut().flat_map(|g| g.get_mut().layers.iter_mut());
        for layer in warm.map(|l| l.get_mut()).filter(|l| l.is_warm_standby()) {
            layer.warm_standby = None;
        }
        loaded.cluster = crate::config::build::build(&loaded.stack);
        translate(&mut loaded.cluster)?;
    }
    Ok(loaded.render(crate::config::Format::Cib))
}

/// The `ocf:PROVIDER:TYPE` of every primitive, in the CIB's order (for `up`'s output and tests).
pub fn agent_specs(cluster: &Cluster) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for r in &cluster.resources {
        let ps: Vec<&Primitive> = match r {
            Resource::Primitive(p) => vec![p],
            Resource::Group(g) => g.members.iter().collect(),
            Resource::Clone(c) => vec![&c.child],
        };
        out.extend(ps.into_iter().map(|p| (p.id.clone(), p.agent_spec())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_cluster() -> Cluster {
        crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap().cluster
    }

    #[test]
    fn the_lab_stack_gets_resource_agents_where_they_exist() {
        let mut c = lab_cluster();
        translate(&mut c).unwrap();
        let specs = agent_specs(&c);
        let get = |id: &str| specs.iter().find(|(i, _)| i == id).map(|(_, s)| s.as_str()).unwrap();
        assert_eq!(get("vip1"), "ocf:heartbeat:IPaddr2");
        assert_eq!(get("vip2"), "ocf:heartbeat:IPaddr2");
        assert_eq!(get("fs"), "ocf:heartbeat:Filesystem");
        assert_eq!(get("db"), "ocf:heartbeat:pgsql");
        assert_eq!(get("web"), "ocf:heartbeat:nginx");
        assert_eq!(get("tomcat"), "ocf:heartbeat:tomcat");
        // No HAProxy or ActiveMQ agent in resource-agents: hastack's stay.
        assert_eq!(get("haproxy"), "ocf:hastack:haproxy");
        assert_eq!(get("broker"), "ocf:hastack:activemq");
        assert_eq!(get("fence-node1"), "stonith:fence_legacy");
        assert_eq!(get("fence-node2"), "stonith:fence_legacy");
        // The broker reads activemq.xml on this side (module doc), in the conf_dir of lab.toml's.
        let broker = member(&c, "broker");
        let param = |k: &str| broker.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(param("config"), Some("/srv/conf/activemq/activemq.xml"));
        assert_eq!(param("broker_uri"), None);
        let db = c
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Group(g) => g.members.iter().find(|m| m.id == "db"),
                Resource::Primitive(p) => Some(p).filter(|p| p.id == "db"),
                _ => None,
            })
            .unwrap();
        let param = |k: &str| db.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(param("socketdir"), Some("/run/postgresql"));
        assert_eq!(param("pgctl"), Some("/usr/lib/postgresql/15/bin/pg_ctl"));
        assert_eq!(param("listen_addresses"), None);
    }

    fn member<'a>(c: &'a Cluster, id: &str) -> &'a Primitive {
        c.resources
            .iter()
            .find_map(|r| match r {
                Resource::Group(g) => g.members.iter().find(|m| m.id == id),
                Resource::Primitive(p) => Some(p).filter(|p| p.id == id),
                Resource::Clone(c) => Some(&c.child).filter(|p| p.id == id),
            })
            .unwrap()
    }

    /// hastack's side runs lab.toml's broker as a warm standby (a promotable clone promoted after
    /// the data group); the ClusterLabs side runs the same broker cold: a primitive of its own
    /// started after the group, as a `parallel` layer without `warm_standby` (module doc).
    #[test]
    fn the_clusterlabs_side_runs_the_warm_standby_broker_cold() {
        let render = |agents| {
            let mut loaded = crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap();
            let cib = render_cib(&mut loaded, agents).unwrap();
            (cib, loaded.cluster)
        };
        let (hastack_cib, hastack) = render(Agents::Hastack);
        let clone = hastack.resources.iter().find(|r| r.id() == "broker-clone");
        assert!(matches!(clone, Some(Resource::Clone(c)) if c.promotable && c.child.id == "broker"), "{clone:?}");
        assert!(hastack_cib.contains(r#"then="broker-clone" then-action="promote""#), "{hastack_cib}");
        let (cib, clusterlabs) = render(Agents::Clusterlabs);
        assert!(!cib.contains("broker-clone") && !cib.contains("promote"), "{cib}");
        let broker = clusterlabs.resources.iter().find(|r| r.id() == "broker");
        assert!(
            matches!(broker, Some(Resource::Primitive(p)) if p.agent_spec() == "ocf:hastack:activemq"),
            "{broker:?}"
        );
        assert!(cib.contains(r#"first="data" first-action="start" then="broker" then-action="start""#), "{cib}");
        // Both sides run under the same cluster options (lab.toml's `properties`).
        for side in [&hastack_cib, &cib] {
            assert!(side.contains(r#"name="node-action-limit" value="8"/>"#), "{side}");
        }
    }

    /// Each node is fenced as a ClusterLabs user fences it: cluster-glue's apcsmart plugin on
    /// the serial port fence_ups used (the other node's cable), for the same node; no fence_ups.
    #[test]
    fn fencing_becomes_the_apcsmart_plugin_on_the_same_cable() {
        let mut c = lab_cluster();
        translate(&mut c).unwrap();
        for (id, node) in [("fence-node1", "node1"), ("fence-node2", "node2")] {
            let p = member(&c, id);
            assert_eq!(p.agent_spec(), "stonith:fence_legacy");
            let params: Vec<(&str, &str)> = p.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            assert_eq!(
                params,
                [("plugin", "apcsmart"), ("ttydev", "/dev/ttyS0"), ("hostlist", node), ("pcmk_host_list", node)],
                "{id}"
            );
            assert_eq!(p.ops.len(), 1, "{id}: the rendered monitor stays");
        }
        // The constraints that keep each device on the node its cable is plugged into stay.
        let cib = {
            let mut loaded = crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap();
            render_cib(&mut loaded, Agents::Clusterlabs).unwrap()
        };
        assert!(!cib.contains("fence_ups"), "{cib}");
        assert!(cib.contains(r#"rsc="fence-node1" node="node1" score="-INFINITY""#), "{cib}");
        assert!(cib.contains(r#"rsc="fence-node2" node="node2" score="-INFINITY""#), "{cib}");
        // A delay the stack asks for (fence_delay) is Pacemaker's: it stays.
        let src = super::super::LAB_TOML
            .replace("resource_stickiness = 100", "resource_stickiness = 100\nfence_delay = \"5s\"");
        let mut c = crate::config::parse("lab.toml", &src).unwrap().cluster;
        translate(&mut c).unwrap();
        assert!(member(&c, "fence-node1").params.contains(&("pcmk_delay_base".into(), "5s".into())));
    }

    #[test]
    fn a_fence_parameter_without_equivalent_is_refused_by_name() {
        let src = super::super::LAB_TOML
            .replace("ups_serial = \"QS0000000002\" }", "ups_serial = \"QS0000000002\", power_timeout = 20 }");
        assert_ne!(src, super::super::LAB_TOML);
        let mut c = crate::config::parse("lab.toml", &src).unwrap().cluster;
        let err = translate(&mut c).unwrap_err().to_string();
        assert!(err.contains("fence device 'fence-node2'") && err.contains("power_timeout"), "{err}");
    }

    #[test]
    fn a_parameter_without_equivalent_is_refused_by_name() {
        let src = super::super::LAB_TOML.replace(
            "params = { ip = \"10.250.1.20\", cidr_netmask = 24 }",
            "params = { ip = \"10.250.1.20\", cidr_netmask = 24, dad_timeout = 100 }",
        );
        let mut c = crate::config::parse("lab.toml", &src).unwrap().cluster;
        let err = translate(&mut c).unwrap_err().to_string();
        assert!(err.contains("layer 'vip2'") && err.contains("dad_timeout"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for a in [Agents::Hastack, Agents::Clusterlabs] {
            assert_eq!(Agents::parse(a.name()), Some(a));
        }
        assert_eq!(Agents::parse("linbit"), None);
    }
}
