//! `hastack lab`: the whole stack on a real two-node Corosync/Pacemaker cluster on one machine
//! (README.md, "The lab"). Each node is a network + mount + UTS + PID namespace with its own
//! Corosync and Pacemaker (`init`), powered by a simulated APC Smart UPS on the host (`power`)
//! that the other node's fence_ups (with `--agents clusterlabs`, cluster-glue's apcsmart
//! plugin: `clusterlabs`) switches off through a serial cable; the shared disk is a
//! loop device (`disk`). `up` builds it all from a stack file (`plan`, `services`) and records
//! every object in a journal before making it (`journal`), which `down` undoes. The servlet
//! application the nodes' Tomcats run (`app`), the transaction client (`client`) and the ledger
//! check (`ledger`) have hidden subcommands of their own.

pub mod app;
pub mod bench;
pub mod client;
pub mod clusterlabs;
pub mod crm;
pub mod disk;
pub mod down;
pub mod host;
pub mod init;
pub mod journal;
pub mod layout;
pub mod ledger;
pub mod net;
pub mod node;
pub mod packages;
pub mod plan;
pub mod power;
pub mod services;
pub mod status;
pub mod timeline;
pub mod up;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

pub use layout::Lab;

/// The stack the lab runs by default: crm-config/lab.toml, built in.
pub const LAB_TOML: &str = include_str!("../../crm-config/lab.toml");

#[derive(clap::Args, Debug)]
pub struct LabArgs {
    /// The lab's name: prefixes its namespaces, bridges and interfaces (2-6 letters/digits).
    #[arg(long, env = "HASTACK_LAB_NAME", default_value = layout::DEFAULT_NAME, global = true)]
    pub name: String,
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum LabCommand {
    /// Install what is missing, build the two-node cluster and start the stack on it.
    Up {
        /// The stack to run (default: the built-in crm-config/lab.toml).
        stack: Option<PathBuf>,
        /// Corosync's token timeout (e.g. 1000ms), overriding the stack's.
        #[arg(long)]
        token: Option<String>,
        /// Corosync's consensus timeout (e.g. 200ms, at least 50ms), overriding the stack's; by
        /// default Corosync's, 1.2 × token.
        #[arg(long)]
        consensus: Option<String>,
        /// How long a node takes to boot once its UPS's load is on again (a real server's
        /// firmware takes minutes; 0s boots at once).
        #[arg(long, default_value = "20s")]
        boot_delay: String,
        /// Which resource agents run the services: hastack's, or the ClusterLabs agents of
        /// Debian's resource-agents (IPaddr2, Filesystem, pgsql, nginx, tomcat; HAProxy and
        /// ActiveMQ keep hastack's agents, resource-agents has none) for a side-by-side bench;
        /// the ClusterLabs side fences with cluster-glue's apcsmart plugin (`fence_legacy`).
        #[arg(long, value_enum, default_value_t = clusterlabs::Agents::Hastack)]
        agents: clusterlabs::Agents,
        /// Run every pacemakerd of the lab (also after a node's reboot) with the controller's
        /// debug lines and a trace of the CIB callbacks, in each node's pacemaker.log.
        #[arg(long)]
        pacemaker_debug: bool,
    },
    /// Show the nodes, their power, the membership and crm_mon.
    Status,
    /// Cut a node's power, as an outage would (not through its UPS).
    Fail { node: String },
    /// Power a node back on (its UPS's load on, then boot).
    Boot { node: String },
    /// Power cuts of the node running the data layers, timed from Pacemaker's records.
    Bench(bench::BenchArgs),
    /// Remove everything the lab made (also after a failed `up`).
    Down,
    /// A node's PID 1 (started by the lab).
    #[command(hide = true)]
    Init { node: String },
    /// A node's UPS and power supply (started by the lab).
    #[command(hide = true)]
    Power {
        node: String,
        /// Milliseconds between the load coming on and the boot.
        #[arg(long, default_value_t = 0)]
        boot_delay_ms: u64,
    },
    /// Build the lab's servlet application into DIR/webapp (only if its sources changed).
    #[command(hide = true)]
    BuildApp {
        /// The build directory (kept between builds: the cache).
        dir: PathBuf,
    },
    /// Print (or write) the Tomcat Context file that deploys the application with its data layer.
    #[command(hide = true)]
    AppContext(app::ContextArgs),
    /// Send numbered transactions at a steady rate and log every send and acknowledgement.
    #[command(hide = true)]
    Client(client::ClientArgs),
    /// Compare a client log with the ledger: exit 1 if an acknowledged transaction is missing
    /// or one is recorded twice, 2 if the check cannot be made.
    #[command(hide = true)]
    Verify(ledger::VerifyArgs),
}

pub fn run(args: LabArgs) -> Result<i32> {
    // The application's tools need no lab (and no root).
    let command = match args.command {
        LabCommand::BuildApp { dir } => {
            return app::build(&dir).map(|b| {
                let how = if b.compiled { "built" } else { "up to date" };
                println!("{} ({how}, {} ms)", b.webapp.display(), b.millis);
                0
            })
        }
        LabCommand::AppContext(args) => {
            let xml = args.settings().and_then(|s| app::context_xml(&s))?;
            match &args.output {
                Some(path) => app::write_context(path, &xml)?,
                None => print!("{xml}"),
            }
            return Ok(0);
        }
        LabCommand::Client(args) => {
            return client::run(args).map(|s| {
                println!(
                    "started {} acknowledged {} abandoned {} resent {}",
                    s.started, s.acknowledged, s.abandoned, s.resent
                );
                0
            })
        }
        LabCommand::Verify(args) => {
            return Ok(match ledger::verify(&args) {
                Ok(report) => {
                    print!("{}", report.text());
                    if report.ok() {
                        0
                    } else {
                        ledger::FAILED
                    }
                }
                // Could not check at all: not the same as a check that found a loss.
                Err(e) => {
                    eprintln!("hastack: {e:#}");
                    2
                }
            });
        }
        other => other,
    };
    if !nix::unistd::geteuid().is_root() {
        bail!("the lab needs root (namespaces, bridges, loop devices, mounts)");
    }
    let lab = Lab::new(&args.name)?;
    match command {
        LabCommand::Up { stack, token, consensus, boot_delay, agents, pacemaker_debug } => {
            let timing = up::Timing { token: token.as_deref(), consensus: consensus.as_deref() };
            up::up(&lab, stack.as_deref(), &timing, &boot_delay, agents, pacemaker_debug).map(|_| 0).map_err(|e| {
            let down = if lab.name == layout::DEFAULT_NAME { String::new() } else { format!(" --name {}", lab.name) };
            e.context(format!(
                "lab up failed; what it made is kept for inspection (logs under {}), `hastack lab{down} down` removes it",
                lab.dir.display()
            ))
        })
        }
        LabCommand::Status => status::status(&lab),
        LabCommand::Fail { node } => {
            let plan = load_plan(&lab)?;
            let was = node::cut(&lab, &plan, &node)?;
            println!("{node}: power cut{}", if was { "" } else { " (it was off already)" });
            Ok(0)
        }
        LabCommand::Boot { node } => {
            let plan = load_plan(&lab)?;
            plan.node(&node)?;
            power::switch_on(&lab, &node)?;
            let id = node::boot(&lab, &plan, &node)?;
            println!("{node}: booted (PID 1 is {} on the host)", id.pid);
            Ok(0)
        }
        LabCommand::Bench(args) => bench::run(&lab, args),
        LabCommand::Down => down::down(&lab).map(|_| 0),
        LabCommand::Init { node } => init::launch(&lab, &load_plan(&lab)?, &node),
        LabCommand::Power { node, boot_delay_ms } => {
            power::run(&lab, &load_plan(&lab)?, &node, Duration::from_millis(boot_delay_ms)).map(|_| 0)
        }
        LabCommand::BuildApp { .. } | LabCommand::AppContext(_) | LabCommand::Client(_) | LabCommand::Verify(_) => {
            unreachable!("handled above")
        }
    }
}

/// The stack a lab that is up runs, as `up` saved it.
pub fn load_stack(lab: &Lab) -> Result<crate::config::Loaded> {
    let path = lab.stack_file();
    if !path.exists() {
        bail!("lab '{}' is not up (no {})", lab.name, path.display());
    }
    crate::config::load(&path)
}

/// The agents a lab that is up runs its services with, as `up` saved them.
pub fn load_agents(lab: &Lab) -> clusterlabs::Agents {
    std::fs::read_to_string(lab.agent_set_file()).ok().and_then(|t| clusterlabs::Agents::parse(&t)).unwrap_or_default()
}

pub fn load_plan(lab: &Lab) -> Result<plan::Plan> {
    plan::plan(&load_stack(lab)?).context("the lab's saved stack")
}

/// The last `n` lines of a log of the lab's (a client's console, a UPS's power log), joined for
/// an error message.
fn tail(path: &std::path::Path, n: usize) -> String {
    let lines = crate::sys::logtail::lines_since(path, 0);
    crate::sys::logtail::last(&lines, n).join(" | ")
}
