//! `hastack config`: a whole stack's cluster configuration from one TOML file (crm-config/README.md),
//! rendered as a CIB, a pcs script or a crmsh script, and proven with Pacemaker's own scheduler.
//!
//! stack (the TOML model) → validate (every problem with its line: the layers through their
//! agents' own checks, `layer_check`; fence devices through fence_ups's, `fence_check`; where
//! the data lives, `storage`) → build (Pacemaker objects, `model`) → render_cib / render_pcs /
//! render_crm; `simulate` runs crm_verify and crm_simulate, `graph` reads the transitions they
//! produce.

pub mod build;
pub mod check;
pub mod fence_check;
pub mod graph;
pub mod layer_check;
pub mod model;
pub mod properties;
pub mod render_cib;
pub mod render_corosync;
pub mod render_crm;
pub mod render_pcs;
pub mod simulate;
pub mod stack;
pub mod storage;
pub mod validate;

use std::fmt;
use std::path::Path;

pub use model::Cluster;
pub use stack::Stack;

/// Output formats of `hastack config render`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Cib,
    Pcs,
    Crm,
    Corosync,
}

impl Format {
    pub const ALL: &'static [(&'static str, Format)] =
        &[("cib", Format::Cib), ("pcs", Format::Pcs), ("crm", Format::Crm), ("corosync", Format::Corosync)];

    pub fn parse(name: &str) -> Option<Format> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }
}

/// Why a stack file was refused: every problem, each as `FILE:LINE: message`.
#[derive(Debug)]
pub struct StackError {
    pub lines: Vec<String>,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines.join("\n"))
    }
}

impl std::error::Error for StackError {}

/// A stack read and validated; `stack` keeps the parsed file, `cluster` what it becomes,
/// `warnings` what is allowed but probably not meant (`FILE:LINE: warning: message`).
pub struct Loaded {
    pub stack: Stack,
    pub cluster: Cluster,
    pub warnings: Vec<String>,
}

impl Loaded {
    pub fn node_names(&self) -> Vec<String> {
        self.stack.nodes.iter().map(|n| n.get_ref().name.get_ref().clone()).collect()
    }

    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Cib => render_cib::render(&self.cluster),
            Format::Pcs => render_pcs::render(&self.cluster),
            Format::Crm => render_crm::render(&self.cluster),
            Format::Corosync => render_corosync::render(&self.stack),
        }
    }
}

/// Parses and validates stack text; `name` is how errors name the file.
pub fn parse(name: &str, src: &str) -> Result<Loaded, StackError> {
    let stack: Stack = toml::from_str(src).map_err(|e| {
        let line = e.span().map_or(1, |s| validate::line_of(src, s.start));
        StackError { lines: vec![format!("{name}:{line}: {}", e.message())] }
    })?;
    let problems = validate::check(&stack, src);
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            let kind = if p.warning { "warning: " } else { "" };
            format!("{name}:{}: {kind}{}", validate::line_of(src, p.span.start), p.message)
        })
        .collect();
    if problems.iter().any(|p| !p.warning) {
        return Err(StackError { lines });
    }
    let cluster = build::build(&stack);
    Ok(Loaded { stack, cluster, warnings: lines })
}

/// Reads and validates a stack file.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let src = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    Ok(parse(&path.display().to_string(), &src)?)
}

/// Writes `text` to `path` through a temporary file renamed over it: a reader never sees half a
/// file, and nothing is written at all unless everything before succeeded.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.hastack-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
