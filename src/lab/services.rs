//! Each node's files: the directories bound over the host's in the node (init::NODE_BINDS),
//! corosync.conf and its key, and the configuration of every service of the stack, written where
//! the stack's parameters say (under /srv, which is the node's own). Generated from the stack:
//! HAProxy listens on its group's virtual IP and balances over every node's nginx; nginx
//! proxies to the Tomcat of its node (the other node's as a backup); Tomcat serves the lab's
//! application; ActiveMQ and PostgreSQL keep their data on the shared disk.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::init::{gid_of, uid_of};
use super::layout::Lab;
use super::plan::{self, param, NodePlan, Plan};
use crate::config::stack::Stack;

pub const HTTP_PORT: u16 = 80;
pub const NGINX_PORT: u16 = 8081;
pub const TOMCAT_PORT: u16 = 8080;
pub const OPENWIRE_PORT: u16 = 61616;
pub const STOMP_PORT: u16 = 61613;
pub const PG_PORT: u16 = 5432;
/// The database the application writes, its owner and password (a lab, not a secret).
pub const DB_NAME: &str = "lab";
pub const DB_USER: &str = "lab";
pub const DB_PASSWORD: &str = "lab";

/// The host path of a file the node sees at `inner` (which must be under /srv, the node's own).
pub fn host_path(lab: &Lab, node: &str, inner: &str) -> Result<PathBuf> {
    match inner.strip_prefix("/srv/") {
        Some(rest) if !rest.is_empty() && !rest.split('/').any(|c| c == "..") => {
            Ok(lab.node_dir(node).join("srv").join(rest))
        }
        _ => bail!("'{inner}': the lab writes each node's files under /srv (the node's own directory)"),
    }
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("mkdir {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn mkdir(path: &Path, mode: u32, owner: Option<(&str, &str)>) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("mkdir {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some((u, g)) = owner {
        nix::unistd::chown(path, uid_of(u), gid_of(g)).with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

fn chown_tree(path: &Path, user: &str) -> Result<()> {
    super::host::run("chown", &["-R", &format!("{user}:{user}"), &path.display().to_string()]).map(|_| ())
}

/// Where the application finds its data layer: the virtual IPs of the groups the broker and the
/// database belong to.
pub fn app_settings(plan: &Plan, stack: &Stack, webapp: &Path, node: &str) -> Result<crate::lab::app::Settings> {
    let of = |agent: &str| -> Result<Ipv4Addr> {
        let layer = plan::layers(stack)
            .into_iter()
            .find(|l| l.agent.get_ref() == agent)
            .with_context(|| format!("the lab's application needs a {agent} layer"))?;
        group_vip(stack, plan, layer.id.get_ref())
    };
    let db = format!("postgresql://{DB_USER}:{DB_PASSWORD}@{}:{PG_PORT}/{DB_NAME}", of("postgresql")?);
    Ok(crate::lab::app::Settings {
        webapp: webapp.to_path_buf(),
        broker: format!("{}:{OPENWIRE_PORT}", of("activemq")?),
        db: crate::lab::ledger::DbUrl::parse(&db).map_err(|e| anyhow::anyhow!("{db}: {e}"))?,
        queue: "hastack.lab.tx".into(),
        table: LEDGER_TABLE.into(),
        consumers: 4,
        commit_wait_ms: 2000,
        io_timeout_ms: 3000,
        node: Some(node.to_string()),
    })
}

/// The application's ledger table.
pub const LEDGER_TABLE: &str = "hastack_ledger";

/// The database URL the ledger check uses (from the client's namespace).
pub fn ledger_url(plan: &Plan, stack: &Stack) -> Result<String> {
    let layer = plan::layers(stack)
        .into_iter()
        .find(|l| l.agent.get_ref() == "postgresql")
        .context("the stack has no postgresql layer")?;
    let vip = group_vip(stack, plan, layer.id.get_ref())?;
    Ok(format!("postgresql://{DB_USER}:{DB_PASSWORD}@{vip}:{PG_PORT}/{DB_NAME}"))
}

/// The application's URL through the load balancer's virtual IP.
pub fn app_url(plan: &Plan, stack: &Stack) -> Result<String> {
    let layer = plan::layers(stack)
        .into_iter()
        .find(|l| l.agent.get_ref() == "haproxy")
        .context("the stack has no haproxy layer")?;
    Ok(format!("http://{}:{HTTP_PORT}/lab", group_vip(stack, plan, layer.id.get_ref())?))
}

/// Writes every node's directory; `corosync_conf` is the rendered corosync.conf, `authkey` the
/// cluster's key, `webapp` the built application Tomcat deploys.
pub fn write_nodes(
    lab: &Lab,
    plan: &Plan,
    stack: &Stack,
    corosync_conf: &str,
    authkey: &[u8],
    webapp: &Path,
) -> Result<()> {
    for node in &plan.nodes {
        let root = lab.node_dir(&node.name);
        let hacluster = Some(("hacluster", "haclient"));
        mkdir(&root.join("etc/corosync"), 0o755, None)?;
        write(&root.join("etc/corosync/corosync.conf"), corosync_conf)?;
        write(&root.join("etc/corosync/authkey"), "")?;
        fs::write(root.join("etc/corosync/authkey"), authkey)?;
        fs::set_permissions(root.join("etc/corosync/authkey"), fs::Permissions::from_mode(0o400))?;
        mkdir(&root.join("var/lib/pacemaker"), 0o750, hacluster)?;
        for sub in ["cib", "pengine", "blackbox", "cores"] {
            mkdir(&root.join("var/lib/pacemaker").join(sub), 0o750, hacluster)?;
        }
        mkdir(&root.join("var/lib/corosync"), 0o700, None)?;
        mkdir(&root.join("var/log"), 0o755, None)?;
        mkdir(&root.join("var/log/pacemaker"), 0o2770, hacluster)?;
        mkdir(&root.join("var/log/corosync"), 0o750, None)?;
        mkdir(&root.join("var/log/nginx"), 0o755, None)?;
        mkdir(&root.join("var/log/postgresql"), 0o1775, Some(("postgres", "postgres")))?;
        mkdir(&root.join("var/log/activemq"), 0o755, Some(("activemq", "activemq")))?;
        fs::File::create(root.join(super::init::INIT_LOG))?;
        // The alert agent's spool, as the packages' tmpfiles.d entry makes it.
        mkdir(&root.join("var/spool"), 0o755, None)?;
        mkdir(&root.join("var/spool/hastack"), 0o750, hacluster)?;
        mkdir(&root.join(super::init::ALERT_SPOOL), 0o750, hacluster)?;
        mkdir(&root.join("srv/data"), 0o755, None)?;
        for layer in plan::layers(stack) {
            write_service(lab, plan, stack, node, layer, webapp)?;
        }
        // The alert agent runs as hacluster and appends to a file recipient, which must exist
        // and be its to write (README.md "Alert agent"): the lab makes those under /var/log.
        if let Some(alert) = &stack.alert {
            let alert = alert.get_ref();
            let files = alert.recipient.iter().chain(alert.recipients.iter().flatten());
            for inner in files.map(|r| r.get_ref()).filter(|r| r.starts_with("/var/log/")) {
                let path = root.join(inner.trim_start_matches('/'));
                fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
                fs::set_permissions(&path, fs::Permissions::from_mode(0o640))?;
                nix::unistd::chown(&path, uid_of("hacluster"), gid_of("haclient"))
                    .with_context(|| format!("chown {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn required(layer: &crate::config::stack::Layer, name: &str) -> Result<String> {
    param(layer, name).with_context(|| {
        format!("layer '{}': the lab needs the '{name}' parameter (a path under /srv)", layer.id.get_ref())
    })
}

fn write_service(
    lab: &Lab,
    plan: &Plan,
    stack: &Stack,
    node: &NodePlan,
    layer: &crate::config::stack::Layer,
    webapp: &Path,
) -> Result<()> {
    let at = |inner: &str| host_path(lab, &node.name, inner);
    match layer.agent.get_ref().as_str() {
        "haproxy" => {
            let vip = group_vip(stack, plan, layer.id.get_ref())?;
            let path = at(&required(layer, "configfile")?)?;
            write(&path, &haproxy_cfg(vip, &plan.nodes))?;
        }
        "nginx" => {
            let path = at(&required(layer, "configfile")?)?;
            let pidfile = param(layer, "pidfile").unwrap_or_else(|| "/run/nginx.pid".into());
            let dir = path.parent().expect("a file path").to_path_buf();
            let inner_dir = required(layer, "configfile")?.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap();
            mkdir(&dir.join("tmp"), 0o700, Some(("www-data", "www-data")))?;
            let peers: Vec<Ipv4Addr> = plan.nodes.iter().filter(|n| n.name != node.name).map(|n| n.links[1]).collect();
            write(&path, &nginx_conf(&pidfile, &format!("{inner_dir}/tmp"), &peers))?;
        }
        "tomcat" => {
            let base = at(&required(layer, "catalina_base")?)?;
            write_tomcat_base(&base)?;
            // The application at /lab, reaching the data layer through its virtual IP.
            let xml = crate::lab::app::context_xml(&app_settings(plan, stack, webapp, &node.name)?)?;
            crate::lab::app::write_context(&base.join("conf/Catalina/localhost/lab.xml"), &xml)?;
        }
        "activemq" => {
            // activemq.conf: the logging configuration, and the broker's activemq.xml, which the
            // agent reads when the layer sets `config` and the ClusterLabs side always does (a
            // `broker_uri` layer says the same broker, clusterlabs::broker_from_activemq_xml).
            let (conf_dir, xml) = if param(layer, "broker_uri").is_some() {
                let dir = required(layer, "conf_dir")?;
                let xml = activemq_xml_in(&dir);
                (dir, xml)
            } else {
                let xml = required(layer, "config")?;
                let dir = param(layer, "conf_dir")
                    .unwrap_or_else(|| xml.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default());
                (dir, xml)
            };
            write(&at(&xml)?, &activemq_xml())?;
            write(&at(&conf_dir)?.join("log4j.properties"), ACTIVEMQ_LOG4J)?;
        }
        "postgresql" => {
            let inner = required(layer, "config")?;
            let path = at(&inner)?;
            let hba = inner.rsplit_once('/').map(|(d, _)| format!("{d}/pg_hba.conf")).unwrap();
            write(&path, &postgresql_conf(&hba))?;
            write(&at(&hba)?, &pg_hba(plan))?;
        }
        _ => {}
    }
    Ok(())
}

/// The virtual IP of the group `layer_id` belongs to.
pub fn group_vip(stack: &Stack, plan: &Plan, layer_id: &str) -> Result<Ipv4Addr> {
    let group = stack
        .groups
        .iter()
        .map(|g| g.get_ref())
        .find(|g| g.layers.iter().any(|l| l.get_ref().id.get_ref() == layer_id))
        .with_context(|| format!("layer '{layer_id}': the lab runs HAProxy in a group with its virtual IP"))?;
    group
        .layers
        .iter()
        .find_map(|l| plan.vips.iter().find(|(id, _)| id == l.get_ref().id.get_ref()).map(|v| v.1))
        .with_context(|| format!("layer '{layer_id}': its group has no virtual IP for HAProxy to listen on"))
}

/// HAProxy on the public virtual IP, balancing over every node's nginx. A dead node's server
/// is found by a failed connect within 100 ms (the nodes share one bridge: a live one answers a
/// SYN in well under a millisecond), marked down at that first failure, and the request
/// redispatched to another. HAProxy starts every server up: one started on the survivor of a
/// failover sent every other request to the fenced node's nginx until its health check failed,
/// and each waited the whole connect timeout (500 ms then; BENCHMARKS.md "lab").
pub fn haproxy_cfg(vip: Ipv4Addr, nodes: &[NodePlan]) -> String {
    let mut out = format!(
        "# Written by `hastack lab up`.\n\
         global\n    stats socket /run/haproxy-lab.sock mode 600 level admin\n\n\
         defaults\n    mode http\n    timeout connect 100ms\n    timeout client 30s\n    timeout server 30s\n\
         \x20   retries 3\n    option redispatch 1\n\n\
         frontend lab\n    bind {vip}:{HTTP_PORT}\n    default_backend web\n\n\
         backend web\n    balance roundrobin\n    default-server check inter 500ms fall 1 rise 1 observe layer4 error-limit 1 on-error mark-down\n"
    );
    for n in nodes {
        let _ = writeln!(out, "    server {} {}:{NGINX_PORT}", n.name, n.links[1]);
    }
    out
}

/// nginx on every address of the node, in front of this node's Tomcat (the peers' as backups).
pub fn nginx_conf(pidfile: &str, tmp: &str, peers: &[Ipv4Addr]) -> String {
    let mut backups = String::new();
    for p in peers {
        let _ = writeln!(backups, "        server {p}:{TOMCAT_PORT} backup;");
    }
    format!(
        "# Written by `hastack lab up`.\n\
         user www-data;\nworker_processes 2;\npid {pidfile};\nerror_log /var/log/nginx/lab-error.log;\n\n\
         events {{ worker_connections 256; }}\n\n\
         http {{\n    access_log off;\n\
         \x20   client_body_temp_path {tmp}; proxy_temp_path {tmp};\n\
         \x20   fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n\
         \x20   upstream tomcat {{\n        server 127.0.0.1:{TOMCAT_PORT} max_fails=1 fail_timeout=2s;\n{backups}    }}\n\
         \x20   server {{\n        listen {NGINX_PORT};\n        location / {{\n\
         \x20           proxy_pass http://tomcat;\n            proxy_connect_timeout 1s;\n\
         \x20           proxy_next_upstream error timeout;\n        }}\n    }}\n}}\n"
    )
}

fn tomcat_server_xml() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- Written by `hastack lab up`. -->\n\
         <Server port=\"-1\" shutdown=\"SHUTDOWN\">\n  <Service name=\"Catalina\">\n\
         \x20   <Connector port=\"{TOMCAT_PORT}\" protocol=\"HTTP/1.1\" connectionTimeout=\"20000\"/>\n\
         \x20   <Engine name=\"Catalina\" defaultHost=\"localhost\">\n\
         \x20     <Host name=\"localhost\" appBase=\"webapps\" unpackWARs=\"false\" autoDeploy=\"false\"/>\n\
         \x20   </Engine>\n  </Service>\n</Server>\n"
    )
}

/// A CATALINA_BASE of the node's own: Debian's configuration files, our server.xml, a ROOT page.
fn write_tomcat_base(base: &Path) -> Result<()> {
    let conf = base.join("conf");
    mkdir(&conf, 0o755, None)?;
    // Debian's /var/lib/tomcat10/conf is a link to /etc/tomcat10: copy the files, never the link.
    for entry in fs::read_dir("/etc/tomcat10").context("read /etc/tomcat10 (is tomcat10 installed?)")? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), conf.join(entry.file_name()))?;
        }
    }
    write(&conf.join("server.xml"), &tomcat_server_xml())?;
    for sub in ["webapps/ROOT", "logs", "work", "temp", "conf/Catalina/localhost"] {
        fs::create_dir_all(base.join(sub))?;
    }
    write(&base.join("webapps/ROOT/index.html"), "ok\n")?;
    chown_tree(base, "tomcat")
}

/// The activemq.xml `lab up` writes in a broker's `conf_dir` beside its `broker_uri`.
pub fn activemq_xml_in(conf_dir: &str) -> String {
    format!("{}/activemq.xml", conf_dir.trim_end_matches('/'))
}

/// The lab's broker as activemq.xml: the same connectors, name and persistence as the broker
/// lab.toml describes (a test holds them together). KahaDB's locker retries every 100 ms, not
/// every 10 s: a warm standby (lab.toml's `warm_standby`) takes its store within 0.1 s of the
/// partition's mount (agents/activemq/standby.rs); a cold broker finds its store free at once.
fn activemq_xml() -> String {
    format!(
        r#"<!-- Written by `hastack lab up`: the store under ${{activemq.data}} (on the shared disk). -->
<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
  http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <bean class="org.springframework.beans.factory.config.PropertyPlaceholderConfigurer"/>
  <broker xmlns="http://activemq.apache.org/schema/core" useJmx="false" brokerName="lab" dataDirectory="${{activemq.data}}">
    <persistenceAdapter>
      <kahaDB directory="${{activemq.data}}/kahadb"><locker><shared-file-locker lockAcquireSleepInterval="100"/></locker></kahaDB>
    </persistenceAdapter>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://0.0.0.0:{OPENWIRE_PORT}"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{STOMP_PORT}"/>
    </transportConnectors>
  </broker>
</beans>
"#
    )
}

const ACTIVEMQ_LOG4J: &str = "log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d | %-5p | %m%n
";

fn postgresql_conf(hba: &str) -> String {
    format!(
        "# Written by `hastack lab up`. The agent sets data_directory, port, listen_addresses and\n\
         # the socket directory (listen_addresses here too, for the ClusterLabs pgsql agent,\n\
         # which takes it from this file).\nlisten_addresses = '*'\nhba_file = '{hba}'\nmax_connections = 100\nshared_buffers = 64MB\n\
         fsync = on\nsynchronous_commit = on\nlogging_collector = off\nlog_line_prefix = '%m [%p] '\n\
         # Crash recovery (every failover) syncs the data directory first: one syncfs() instead of\n\
         # an fsync() per file (measured here: 3.8 s of a 4.4 s start).\nrecovery_init_sync_method = syncfs\n"
    )
}

fn pg_hba(plan: &Plan) -> String {
    let public = plan.nodes.first().map(|n| n.links[1].octets()).unwrap_or_default();
    format!(
        "# Written by `hastack lab up`: the monitor by peer, the application over the public network.\n\
         local all all peer\nhost {DB_NAME} {DB_USER} {}.{}.{}.0/{} scram-sha-256\n",
        public[0],
        public[1],
        public[2],
        plan::PREFIX
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_balances_over_every_nginx_behind_the_vip() {
        let p = plan::plan(&crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap()).unwrap();
        let cfg = haproxy_cfg(p.vips[0].1, &p.nodes);
        assert!(cfg.contains("bind 10.250.1.10:80"), "{cfg}");
        assert!(
            cfg.contains("server node1 10.250.1.11:8081") && cfg.contains("server node2 10.250.1.12:8081"),
            "{cfg}"
        );
        assert!(cfg.contains("stats socket"), "the agent needs the stats socket");
        // A fenced node's nginx costs a request 100 ms, once: its server is marked down then.
        assert!(cfg.contains("timeout connect 100ms") && cfg.contains("on-error mark-down"), "{cfg}");
        let ngx = nginx_conf("/run/nginx-lab.pid", "/srv/conf/nginx/tmp", &[p.nodes[1].links[1]]);
        assert!(ngx.contains("server 10.250.1.12:8080 backup;") && ngx.contains("listen 8081;"), "{ngx}");
    }

    /// lab.toml's broker reads the activemq.xml `lab up` writes in its conf_dir: the ports the
    /// application and the agent use, one name, no JMX, persistent, and the locker interval a
    /// warm standby needs (one activemq.xml for both sides: the ClusterLabs side runs it cold).
    #[test]
    fn the_lab_broker_reads_an_activemq_xml_fit_for_a_warm_standby() {
        let stack = crate::config::parse("lab.toml", super::super::LAB_TOML).unwrap().stack;
        let broker = plan::layers(&stack).into_iter().find(|l| l.agent.get_ref() == "activemq").unwrap();
        assert!(broker.is_warm_standby());
        assert_eq!(param(broker, "broker_uri"), None, "a broker: URI cannot set the locker's interval");
        let conf_dir = param(broker, "conf_dir").unwrap();
        assert_eq!(conf_dir, "/srv/conf/activemq");
        assert_eq!(param(broker, "config"), Some(activemq_xml_in(&conf_dir)));
        let xml = activemq_xml();
        for c in [format!("tcp://0.0.0.0:{OPENWIRE_PORT}"), format!("stomp://127.0.0.1:{STOMP_PORT}")] {
            assert!(xml.contains(&format!("uri=\"{c}\"")), "{c} is not in activemq.xml:\n{xml}");
        }
        assert_eq!(xml.matches("<transportConnector ").count(), 2);
        for attr in ["brokerName=\"lab\"", "useJmx=\"false\"", "<shared-file-locker lockAcquireSleepInterval=\"100\"/>"]
        {
            assert!(xml.contains(attr), "{attr} is not in activemq.xml:\n{xml}");
        }
        assert!(!xml.contains("persistent="), "persistent by default");
    }

    #[test]
    fn node_files_stay_under_the_nodes_srv() {
        let lab = Lab::new("hsl").unwrap();
        assert_eq!(
            host_path(&lab, "node1", "/srv/conf/x.cfg").unwrap(),
            PathBuf::from("/var/lib/hastack-lab/hsl/nodes/node1/srv/conf/x.cfg")
        );
        for bad in ["/etc/haproxy/haproxy.cfg", "/srv/", "/srv/../etc/passwd", "srv/x"] {
            assert!(host_path(&lab, "node1", bad).is_err(), "{bad}");
        }
    }
}
