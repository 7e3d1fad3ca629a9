//! Dispatch on the name the binary was called under (DESIGN.md §1): an OCF agent's name runs
//! that agent with the action in argv[1]; a fence agent's name runs the fence agent; `alert` is
//! the Pacemaker alert agent; any other name (`hastack`) is the CLI.

use std::ffi::OsString;
use std::path::Path;

use crate::ocf::Agent;

#[derive(Copy, Clone)]
pub enum Kind {
    /// An OCF resource agent, linked as /usr/lib/ocf/resource.d/hastack/<name>.
    Ocf(&'static dyn Agent),
    /// A fence agent, linked as /usr/sbin/<name>; gets the whole argv.
    Fence(crate::fence::FenceMain),
    /// The Pacemaker alert agent, linked as /usr/lib/hastack/<name>; reads only its environment.
    Alert,
}

#[derive(Copy, Clone)]
pub struct Applet {
    pub name: &'static str,
    pub kind: Kind,
}

impl Applet {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Ocf(_) => "ocf",
            Kind::Fence(_) => "fence",
            Kind::Alert => "alert",
        }
    }

    /// Where `hastack install` links this applet, relative to the root.
    pub fn link_path(&self) -> String {
        match self.kind {
            Kind::Ocf(_) => format!("{OCF_PROVIDER_DIR}/{}", self.name),
            Kind::Fence(_) => format!("/usr/sbin/{}", self.name),
            Kind::Alert => format!("{ALERT_DIR}/{}", self.name),
        }
    }
}

pub const OCF_PROVIDER_DIR: &str = "/usr/lib/ocf/resource.d/hastack";
/// Where the alert agent is linked (the path a CIB `<alert>` names).
pub const ALERT_DIR: &str = "/usr/lib/hastack";

/// Every applet, OCF agents first, in the order `hastack list` shows them.
pub fn all() -> Vec<Applet> {
    let ocf = crate::agents::AGENTS.iter().map(|a| Applet { name: a.spec().name, kind: Kind::Ocf(*a) });
    let fence = crate::fence::FENCE_AGENTS.iter().map(|(name, run)| Applet { name, kind: Kind::Fence(*run) });
    let alert = std::iter::once(Applet { name: "alert", kind: Kind::Alert });
    ocf.chain(fence).chain(alert).collect()
}

pub fn find(name: &str) -> Option<Applet> {
    all().into_iter().find(|a| a.name == name)
}

pub fn find_agent(name: &str) -> Option<&'static dyn Agent> {
    find(name).and_then(|a| match a.kind {
        Kind::Ocf(agent) => Some(agent),
        Kind::Fence(_) | Kind::Alert => None,
    })
}

/// The process entry point; returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    // The alert agent runs for every cluster event, most of them routine: it is recognised
    // before anything else is built (the applet table holds every agent).
    if args.first().and_then(|a| Path::new(a).file_name()).is_some_and(|n| n == "alert") {
        return crate::alert::main();
    }
    let called_as =
        args.first().and_then(|a| Path::new(a).file_name()).and_then(|n| n.to_str()).unwrap_or("hastack").to_string();
    match find(&called_as) {
        Some(Applet { kind: Kind::Ocf(agent), .. }) => {
            let action = args.get(1).map(|a| a.to_string_lossy().into_owned());
            crate::ocf::run_agent(agent, action.as_deref())
        }
        Some(Applet { kind: Kind::Fence(run), .. }) => run(&args),
        Some(Applet { kind: Kind::Alert, .. }) => crate::alert::main(),
        None => crate::cli::main(args),
    }
}
