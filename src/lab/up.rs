//! `hastack lab up`: from nothing to the whole stack running on two nodes. Every object is
//! journalled before it is made, so a failed or interrupted `up` leaves nothing `down` cannot
//! remove; an `up` of a lab that is whole does nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::clusterlabs::{self, Agents};
use super::journal::{self, Made};
use super::layout::{Lab, Net};
use super::{crm, disk, down, net, node, packages, plan, power, services, status};
use crate::config::{self, Format};
use crate::ocf::Deadline;

/// Corosync timing that overrides the stack's `[cluster]` (`up --token`, `--consensus`).
#[derive(Debug, Default)]
pub struct Timing<'a> {
    pub token: Option<&'a str>,
    pub consensus: Option<&'a str>,
}

impl Timing<'_> {
    /// The overrides written into the stack, each checked as the stack's own field is.
    fn apply(&self, cluster: &mut config::stack::Cluster) -> Result<()> {
        if let Some(t) = self.token {
            if config::validate::duration_ms(t).is_none_or(|ms| ms == 0) {
                bail!("--token '{t}': not a duration above 0 (e.g. 1000ms)");
            }
            cluster.token = Some(toml::Spanned::new(0..0, t.to_string()));
        }
        if let Some(c) = self.consensus {
            // Corosync refuses a consensus below its join timeout (50 ms by default).
            if config::validate::duration_ms(c).is_none_or(|ms| ms < 50) {
                bail!("--consensus '{c}': not a duration of at least 50ms (Corosync's join timeout), e.g. 200ms");
            }
            cluster.consensus = Some(toml::Spanned::new(0..0, c.to_string()));
        }
        Ok(())
    }

    /// ", Corosync token 1000ms, consensus 200ms" for `up`'s summary line.
    fn describe(&self) -> String {
        let parts: Vec<String> = [("token", self.token), ("consensus", self.consensus)]
            .into_iter()
            .filter_map(|(name, v)| v.map(|v| format!("{name} {v}")))
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(", Corosync {}", parts.join(", "))
        }
    }
}

pub fn up(
    lab: &Lab,
    stack_path: Option<&Path>,
    timing: &Timing,
    boot_delay: &str,
    agents: Agents,
    pacemaker_debug: bool,
) -> Result<()> {
    let Some(boot_delay_ms) = config::validate::duration_ms(boot_delay) else {
        bail!("--boot-delay '{boot_delay}': not a duration (e.g. 20s, 0s)");
    };
    if lab.complete_marker().exists() {
        if let Ok(plan) = super::load_plan(lab) {
            if plan.nodes.iter().all(|n| node::running(lab, &n.name).is_some()) {
                println!("lab '{}' is up already (`hastack lab status`; `hastack lab down` removes it)", lab.name);
                if pacemaker_debug != super::init::pacemaker_debug(lab) {
                    println!(
                        "--pacemaker-debug is {} for this lab: it is chosen when the lab is built (`down`, then `up`)",
                        if pacemaker_debug { "not in effect" } else { "still in effect" }
                    );
                }
                return Ok(());
            }
        }
    }
    if lab.journal().exists() || lab.dir.exists() || lab.run_dir.exists() {
        println!("lab '{}': removing what an earlier `up` left", lab.name);
        down::down(lab)?;
    }

    let (name, src) = match stack_path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => ("lab.toml (built in)".to_string(), super::LAB_TOML.to_string()),
    };
    let mut loaded = config::parse(&name, &src)?;
    timing.apply(&mut loaded.stack.cluster)?;
    let plan = plan::plan(&loaded)?;
    let cib = clusterlabs::render_cib(&mut loaded, agents)?;
    let started = Instant::now();

    packages::ensure(packages::PACKAGES)?;
    if agents == Agents::Clusterlabs {
        packages::ensure(packages::CLUSTERLABS_PACKAGES)?;
    }
    // The nodes see the lab's copy of this binary over the host's agent links, which must
    // therefore exist; an installation that is there is left as it is.
    if !Path::new(crate::applets::OCF_PROVIDER_DIR).is_dir()
        || !Path::new("/usr/sbin/fence_ups").exists()
        || !Path::new(super::init::ALERT_AGENT).exists()
    {
        crate::cli::install(Path::new("/"), None)?;
    }

    for (dir, what) in [(&lab.run_dir, "runtime state"), (&lab.dir, "files")] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the lab's {what} in {}", dir.display()))?;
        journal::record(&lab.journal(), &Made::Dir(dir.clone()))?;
    }
    install_binary(lab)?;
    std::fs::write(lab.stack_file(), &src)?;
    std::fs::write(lab.agent_set_file(), agents.name())?;
    std::fs::write(lab.cib_file(), &cib)?;
    if pacemaker_debug {
        std::fs::write(lab.pacemaker_debug_file(), "")?;
    }
    let corosync_conf = loaded.render(Format::Corosync);
    std::fs::write(lab.corosync_conf(), &corosync_conf)?;
    let mut authkey = vec![0u8; 256];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut authkey)?;
    let app = super::app::build(&lab.dir.join("app")).context("building the lab's application")?;
    services::write_nodes(lab, &plan, &loaded.stack, &corosync_conf, &authkey, &app.webapp)?;
    println!(
        "lab '{}': {} nodes, stack {name}{}, {} agents",
        lab.name,
        plan.nodes.len(),
        timing.describe(),
        agents.name()
    );
    if pacemaker_debug {
        println!("{}", status::pacemaker_debug_line(lab, &plan));
    }
    if agents == Agents::Clusterlabs {
        let specs = clusterlabs::agent_specs(&loaded.cluster);
        let list: Vec<String> = specs.iter().map(|(id, spec)| format!("{id} {spec}")).collect();
        println!(
            "agents: the ClusterLabs agents of resource-agents where it has one (it has no HAProxy \
             or ActiveMQ agent: those stay hastack's): {}",
            list.join(", ")
        );
        println!(
            "fencing: stonith:{} with cluster-glue's {} plugin on the same serial cables (fence-agents \
             has no agent for a serial APC Smart UPS; Pacemaker's reboot is the plugin's reset, which \
             hibernates the UPS after its 20 s grace period)",
            clusterlabs::FENCE_LEGACY,
            clusterlabs::GLUE_PLUGIN
        );
    }

    println!(
        "storage: this kernel has no DRBD module, so the replicated partition is a loop device both \
         nodes see ({}), mounted by the filesystem agent; the drbd agent is proven by its VM tests",
        plan.disks.join(", ")
    );
    for (inner, dev) in disk::create(lab, &plan)? {
        println!("  {inner} in the nodes is {dev} on this machine");
    }

    for which in Net::BOTH {
        let bridge = lab.bridge(which);
        journal::record(&lab.journal(), &Made::Bridge(bridge.clone()))?;
        net::add_bridge(&bridge)?;
    }
    let client_ns = lab.client_netns();
    journal::record(&lab.journal(), &Made::Netns(client_ns.clone()))?;
    net::add_netns(&client_ns)?;
    journal::record(&lab.journal(), &Made::Link(lab.client_veth()))?;
    net::plug(&lab.bridge(Net::Public), &lab.client_veth(), &client_ns, "eth0", plan.client)?;
    println!(
        "networks: {} (crossover cable), {} (public; the client is {} in namespace {client_ns})",
        lab.bridge(Net::Crossover),
        lab.bridge(Net::Public),
        plan.client
    );

    for n in &plan.nodes {
        power::start(lab, &n.name, boot_delay_ms)?;
    }
    for n in &plan.nodes {
        let id = node::boot(lab, &plan, &n.name)?;
        println!(
            "{}: booted (PID 1 is {} on this machine), UPS {} on {}",
            n.name,
            id.pid,
            plan.ups_serial(&n.name).unwrap_or(power::DEFAULT_SERIAL),
            lab.ups_port(&n.name).display()
        );
    }
    let first = &plan.nodes[0].name;
    wait_for(lab, first, "every node online", Duration::from_secs(240), |s| Ok(s.online().len() == plan.nodes.len()))?;
    println!("membership: {} online ({:.0?} since up)", plan.nodes.len(), started.elapsed());

    disk::prepare(lab, &loaded.stack, first)?;
    node::run_on(
        lab,
        first,
        "cibadmin",
        &["--replace", "--scope", "configuration", "--xml-file", &lab.cib_file().display().to_string()],
        Duration::from_secs(60),
    )?;
    println!(
        "configuration loaded (rendered by `hastack config render --format cib`{}); starting the stack",
        if agents == Agents::Clusterlabs { ", the ClusterLabs agents swapped in" } else { "" }
    );
    wait_for(lab, first, "the stack to start", Duration::from_secs(600), |s| {
        if s.failures.is_empty() {
            return Ok(s.settled() && status::idle(lab, first, s));
        }
        // Idle with a failed action: Pacemaker has done all it will (restarted, moved or given
        // up); a lab that comes up with a failure is not up, and waiting longer changes nothing.
        if status::idle(lab, first, s) {
            bail!("the stack failed to start: {}", s.failures.join("; "));
        }
        Ok(false)
    })?;
    std::fs::write(lab.complete_marker(), "")?;
    println!(
        "lab '{}' is up ({:.0?}); the application answers at {} (from namespace {})",
        lab.name,
        started.elapsed(),
        services::app_url(&plan, &loaded.stack)?,
        lab.client_netns()
    );
    status::print_cluster(lab, &plan)?;
    Ok(())
}

/// Copies this binary into the lab and makes the agents' directory the nodes see.
fn install_binary(lab: &Lab) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let bin = lab.binary();
    std::fs::create_dir_all(bin.parent().expect("a file"))?;
    std::fs::copy(&exe, &bin).with_context(|| format!("cannot copy {} to {}", exe.display(), bin.display()))?;
    std::fs::create_dir_all(lab.agents_dir())?;
    for applet in crate::applets::all().iter().filter(|a| a.kind_name() == "ocf") {
        std::os::unix::fs::symlink(&bin, lab.agents_dir().join(applet.name))?;
    }
    Ok(())
}

/// Polls crm_mon on `node` until `done` holds (or fails: a state that will not change); the
/// last state in the error.
fn wait_for(
    lab: &Lab,
    node: &str,
    what: &str,
    limit: Duration,
    done: impl Fn(&crm::ClusterState) -> Result<bool>,
) -> Result<()> {
    let deadline = Deadline::after(limit);
    let mut last;
    loop {
        match status::cluster_state(lab, node) {
            Ok(state) if done(&state)? => return Ok(()),
            Ok(state) => last = format!("{state:?}"),
            Err(e) => last = format!("{e:#}"),
        }
        if deadline.expired() {
            bail!("timed out after {limit:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_cluster() -> config::stack::Cluster {
        config::parse("lab.toml", super::super::LAB_TOML).unwrap().stack.cluster
    }

    #[test]
    fn timing_overrides_reach_corosync_conf_and_bad_ones_are_named() {
        let mut loaded = config::parse("lab.toml", super::super::LAB_TOML).unwrap();
        let timing = Timing { token: Some("1000ms"), consensus: Some("200ms") };
        timing.apply(&mut loaded.stack.cluster).unwrap();
        let conf = loaded.render(Format::Corosync);
        assert!(conf.contains("token: 1000\n") && conf.contains("consensus: 200\n"), "{conf}");
        assert_eq!(timing.describe(), ", Corosync token 1000ms, consensus 200ms");
        assert_eq!(Timing::default().describe(), "");

        for (bad, named) in [
            (Timing { token: Some("0ms"), consensus: None }, "--token '0ms'"),
            (Timing { token: Some("soon"), consensus: None }, "--token 'soon'"),
            (Timing { token: None, consensus: Some("40ms") }, "--consensus '40ms'"),
        ] {
            let err = bad.apply(&mut lab_cluster()).unwrap_err().to_string();
            assert!(err.starts_with(named), "{err}");
        }
    }
}
