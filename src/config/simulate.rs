//! Pacemaker's own checkers on a rendered CIB: `crm_verify` for the configuration, `crm_simulate`
//! for what the scheduler does when nodes are lost or monitors fail. Neither runs an agent, so the
//! agents need not be installed. Every spawn of those tools is in this module.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::graph::Transition;
use crate::ocf::Deadline;
use crate::sys::proc::{run, Output};

/// Generous: crm_simulate on a small CIB takes well under a second.
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);
/// A settled cluster needs no more than a few transitions (start, then promote, then monitors).
const MAX_SETTLE_ROUNDS: usize = 8;

fn tool(program: &str, args: &[&str], cib_file: Option<&Path>) -> Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(file) = cib_file {
        cmd.env("CIB_file", file);
    }
    run(&mut cmd, Deadline::after(TOOL_TIMEOUT)).map_err(|e| anyhow::anyhow!("{program}: {e}"))
}

/// What crm_verify said about a CIB.
pub struct Verdict {
    pub ok: bool,
    /// Its messages (errors and warnings), one per line.
    pub messages: String,
}

/// Runs `crm_verify` on a CIB file. Warnings are reported but do not fail the check.
pub fn verify(cib: &Path) -> Result<Verdict> {
    let path = cib.to_str().context("CIB path is not UTF-8")?;
    let out = tool("crm_verify", &["--verbose", "--xml-file", path], None)?;
    Ok(Verdict { ok: out.success(), messages: format!("{}{}", out.stdout, out.stderr).trim().to_string() })
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulated cluster: a CIB with a status section that each step feeds to crm_simulate and
/// replaces with the state after the transition.
pub struct Sim {
    dir: Scratch,
    state: PathBuf,
    steps: usize,
}

/// One simulated transition.
pub struct Step {
    pub transition: Transition,
    /// crm_simulate's own account (`Transition Summary`, executed actions).
    pub text: String,
    /// The transition graph as crm_simulate saved it (`--save-graph`), for checks by other tools.
    pub graph: PathBuf,
}

impl Sim {
    /// The rendered CIB with every node up and all resources started, as the cluster would be after
    /// its first transitions. `promotable` are the primitives of promotable clones: each node gets
    /// the promotion score their agent sets once its data is up to date (`master-<id>`), as the
    /// DRBD agent does on a healthy pair.
    pub fn start(cib_xml: &str, nodes: &[String], promotable: &[String]) -> Result<Sim> {
        let mut sim = Sim::new(cib_xml)?;
        let mut args = vec!["--quorum".to_string(), "true".to_string()];
        for node in nodes {
            args.extend(["--node-up".to_string(), node.clone()]);
        }
        sim.step(&args)?;
        for node in nodes {
            for rsc in promotable {
                sim.set_node_attribute(node, &format!("master-{rsc}"), "10000")?;
            }
        }
        sim.settle()?;
        Ok(sim)
    }

    /// A simulation of the CIB as given (no node up yet).
    pub fn new(cib_xml: &str) -> Result<Sim> {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hastack-sim-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = Scratch(dir);
        let state = dir.0.join("state-0.xml");
        std::fs::write(&state, cib_xml)?;
        Ok(Sim { dir, state, steps: 0 })
    }

    /// The current state (CIB with status), e.g. for crm_mon.
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// Sets a transient node attribute, as an agent (crm_attribute) or attrd would.
    pub fn set_node_attribute(&self, node: &str, name: &str, value: &str) -> Result<()> {
        let args = ["--node", node, "--name", name, "--update", value, "--lifetime", "reboot"];
        let out = tool("crm_attribute", &args, Some(&self.state))?;
        if !out.success() {
            bail!("crm_attribute {}: {}{}", args.join(" "), out.stdout, out.stderr);
        }
        Ok(())
    }

    /// Runs one transition with extra crm_simulate options (`--node-fail N`, `--op-inject OP@N=RC`)
    /// and keeps the state after it. (`--in-place` on a copy: in Pacemaker 2.1.5 `--save-output`
    /// saves the state *before* the transition.)
    pub fn step(&mut self, args: &[String]) -> Result<Step> {
        self.steps += 1;
        let graph = self.dir.0.join(format!("graph-{}.xml", self.steps));
        let next = self.dir.0.join(format!("state-{}.xml", self.steps));
        std::fs::copy(&self.state, &next).with_context(|| format!("cannot copy {}", self.state.display()))?;
        let mut argv: Vec<String> =
            vec!["--xml-file".into(), path_str(&next)?, "--in-place".into(), "--save-graph".into(), path_str(&graph)?];
        argv.extend(args.iter().cloned());
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = tool("crm_simulate", &argv, None)?;
        if !out.success() {
            bail!("crm_simulate {}: {}{}", argv.join(" "), out.stdout, out.stderr);
        }
        let xml =
            std::fs::read_to_string(&graph).with_context(|| format!("crm_simulate wrote no {}", graph.display()))?;
        let transition = Transition::parse(&xml).map_err(|e| anyhow::anyhow!(e))?;
        self.state = next;
        Ok(Step { transition, text: out.stdout, graph })
    }

    /// Runs transitions until one has nothing to do but monitors.
    pub fn settle(&mut self) -> Result<()> {
        for _ in 0..MAX_SETTLE_ROUNDS {
            let step = self.step(&[])?;
            if step.transition.resource_actions().next().is_none() && step.transition.fenced_nodes().is_empty() {
                return Ok(());
            }
        }
        bail!("the cluster did not settle after {MAX_SETTLE_ROUNDS} transitions")
    }

    /// Where each resource runs now: (resource id, role, node), clone instances once per node.
    pub fn placement(&self) -> Result<Vec<(String, String, String)>> {
        let out = tool("crm_mon", &["--one-shot", "--output-as=xml", "--inactive"], Some(&self.state))?;
        if !out.success() {
            bail!("crm_mon: {}{}", out.stdout, out.stderr);
        }
        Ok(parse_placement(&out.stdout))
    }

    /// The nodes `rsc` (a primitive id) is active on.
    pub fn nodes_of(&self, rsc: &str) -> Result<Vec<String>> {
        Ok(self.placement()?.into_iter().filter(|(id, _, _)| id == rsc).map(|(_, _, node)| node).collect())
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).context("path is not UTF-8")
}

/// crm_mon's XML `<resource id role ...><node name/></resource>` as (id, role, node) triples.
pub fn parse_placement(xml: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    let attr = |e: &quick_xml::events::BytesStart, n: &str| {
        e.try_get_attribute(n).ok().flatten().and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
    };
    while let Ok(event) = reader.read_event() {
        match event {
            Event::Start(e) if e.name().as_ref() == b"resource" => {
                current = Some((attr(&e, "id").unwrap_or_default(), attr(&e, "role").unwrap_or_default()));
            }
            // A resource element without children runs nowhere (a stopped instance).
            Event::Empty(e) if e.name().as_ref() == b"resource" => current = None,
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"node" => {
                if let (Some((id, role)), Some(name)) = (current.as_ref(), attr(&e, "name")) {
                    out.push((id.clone(), role.clone(), name));
                }
            }
            Event::End(e) if e.name().as_ref() == b"resource" => current = None,
            Event::Eof => break,
            _ => {}
        }
    }
    out
}
