//! `hastack lab status`: each node's power and UPS, the membership, and `crm_mon` from a node
//! that runs. Exit 0 when every node runs and is online, 1 when the lab is up but not whole,
//! 3 when it is not up (as `systemctl status` answers for a stopped unit).

use std::time::Duration;

use anyhow::Result;

use super::crm::{self, ClusterState};
use super::layout::Lab;
use super::plan::Plan;
use super::{node, power};

/// The cluster as crm_mon on `node` sees it.
pub fn cluster_state(lab: &Lab, node: &str) -> Result<ClusterState> {
    let xml = node::run_on(lab, node, "crm_mon", &["-1", "--output-as=xml"], Duration::from_secs(30))?;
    Ok(crm::parse(&xml))
}

/// Whether the cluster's controller (asked on `node`) is idle: no transition in progress. A
/// recurring monitor that fails while the transition that started it still runs is not acted
/// on by Pacemaker 2.1 (its action is already confirmed), so the lab faults only an idle cluster.
pub fn idle(lab: &Lab, node: &str, state: &ClusterState) -> bool {
    let Some(dc) = &state.dc else { return false };
    node::run_on(lab, node, "crmadmin", &["-q", "-S", dc], Duration::from_secs(30))
        .is_ok_and(|out| out.trim() == "S_IDLE")
}

pub fn status(lab: &Lab) -> Result<i32> {
    if !lab.stack_file().exists() {
        println!("lab '{}' is not up", lab.name);
        return Ok(3);
    }
    let plan = super::load_plan(lab)?;
    if super::init::pacemaker_debug(lab) {
        println!("{}", pacemaker_debug_line(lab, &plan));
    }
    let whole = print_cluster(lab, &plan)?;
    Ok(if whole { 0 } else { 1 })
}

/// Says that Pacemaker's debug logging is on (`up --pacemaker-debug`) and where its logs are.
pub fn pacemaker_debug_line(lab: &Lab, plan: &Plan) -> String {
    let logs: Vec<String> = plan.nodes.iter().map(|n| lab.pacemaker_log(&n.name).display().to_string()).collect();
    let env: Vec<String> = super::init::PACEMAKER_DEBUG_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "Pacemaker debug logging: on ({}; also after a node's reboot): {}; the 1 s sleeps are \"Re-asking for the CIB\" lines",
        env.join(" "),
        logs.join(", ")
    )
}

/// Prints power, membership and crm_mon; whether every node runs and is online.
pub fn print_cluster(lab: &Lab, plan: &Plan) -> Result<bool> {
    let mut running = Vec::new();
    for n in &plan.nodes {
        let power = match node::running(lab, &n.name) {
            Some(id) => {
                running.push(n.name.clone());
                format!("on (PID 1 is {} on this machine)", id.pid)
            }
            None => "off".to_string(),
        };
        let ups = match power::load_on(lab, &n.name) {
            Some(true) => "load on",
            Some(false) => "load OFF",
            None => "not running",
        };
        println!(
            "{}: power {power}; UPS {} ({ups}); addresses {} (crossover), {} (public)",
            n.name,
            lab.ups_port(&n.name).display(),
            n.links[0],
            n.links[1]
        );
    }
    let Some(first) = running.first() else {
        println!("no node runs");
        return Ok(false);
    };
    let state = cluster_state(lab, first).ok();
    let online =
        state.as_ref().map(|s| s.online().iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap_or_default();
    println!(
        "membership (seen from {first}): {}",
        if online.is_empty() { "none yet".to_string() } else { online.join(", ") }
    );
    for (id, ip) in &plan.vips {
        println!("{id}: {ip}");
    }
    let app = super::load_stack(lab).ok().and_then(|l| super::services::app_url(plan, &l.stack).ok());
    println!(
        "client: namespace {} ({}), e.g. `ip netns exec {} curl {}/health`",
        lab.client_netns(),
        plan.client,
        lab.client_netns(),
        app.unwrap_or_else(|| "http://VIP1/lab".into())
    );
    match node::run_on(lab, first, "crm_mon", &["-1"], Duration::from_secs(30)) {
        Ok(text) => print!("{text}"),
        Err(e) => println!("crm_mon on {first}: {e:#}"),
    }
    Ok(running.len() == plan.nodes.len() && online.len() == plan.nodes.len())
}
