//! The CIB as `hastack agent apply` sees it: Pacemaker's own tools run on the live cluster
//! (`cibadmin`, `crm_diff`, `crm_verify`, `crm_resource`) or on a file copy (`CIB_file`), the
//! version triple read from the `<cib>` element, and the elements found with their place in the
//! text (the saved fragment a rollback restores).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// What a tool printed and its exit code.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == 0
    }
    /// The tool's own words, for a report.
    pub fn said(&self) -> String {
        let (err, out) = (self.stderr.trim(), self.stdout.trim());
        let text = if err.is_empty() || out.is_empty() { format!("{err}{out}") } else { format!("{err}\n{out}") };
        let text = if text.is_empty() { "(no output)".to_string() } else { text };
        if text.len() > 2000 {
            {
                let mut cut = 2000;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}…", &text[..cut])
            }
        } else {
            text
        }
    }
}

/// Runs a cluster tool; `cib_file` makes it work on a file copy instead of the live CIB.
pub fn tool(program: &str, args: &[&str], cib_file: Option<&Path>) -> Result<Ran> {
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null());
    if let Some(f) = cib_file {
        cmd.env("CIB_file", f);
    }
    let out = cmd.output().with_context(|| format!("cannot run {program} (is Pacemaker installed?)"))?;
    Ok(Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `cibadmin --query`: the whole live CIB.
pub fn query() -> Result<String> {
    let ran = tool("cibadmin", &["--query"], None)?;
    if !ran.ok() {
        anyhow::bail!("cibadmin --query failed ({}): {}", ran.code, ran.said());
    }
    Ok(ran.stdout)
}

/// admin_epoch.epoch.num_updates, compared in that order (as Pacemaker does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub admin_epoch: u64,
    pub epoch: u64,
    pub num_updates: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.admin_epoch, self.epoch, self.num_updates)
    }
}

impl Version {
    pub fn of(cib: &str) -> Result<Version> {
        let root = elements(cib)?.into_iter().find(|e| e.name == "cib").context("no <cib> element")?;
        let num = |n: &str| root.attrs.get(n).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(Version { admin_epoch: num("admin_epoch"), epoch: num("epoch"), num_updates: num("num_updates") })
    }
}

/// An element of the CIB: its attributes, the `id` of the primitive it is in, and its span in
/// the text it was read from.
#[derive(Debug, Clone)]
pub struct Elem {
    pub name: String,
    pub attrs: HashMap<String, String>,
    /// The nearest enclosing `<primitive>`'s id.
    pub primitive: Option<String>,
    /// The parent element's name.
    pub parent: Option<String>,
    pub start: usize,
    pub end: usize,
}

impl Elem {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }
    pub fn text<'a>(&self, xml: &'a str) -> &'a str {
        &xml[self.start..self.end]
    }
}

fn attrs(e: &BytesStart) -> HashMap<String, String> {
    e.attributes()
        .filter_map(|a| a.ok())
        .filter_map(|a| {
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            a.unescape_value().ok().map(|v| (key, v.into_owned()))
        })
        .collect()
}

/// Every element of `xml`, in document order.
pub fn elements(xml: &str) -> Result<Vec<Elem>> {
    let mut reader = Reader::from_str(xml);
    let mut out: Vec<Elem> = Vec::new();
    // Open elements: their index in `out`.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().context("the CIB is not well-formed XML")?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let empty = after > 1 && xml.as_bytes()[after - 2] == b'/';
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let parent = open.last().map(|&i| out[i].name.clone());
                let primitive = open.iter().rev().map(|&i| &out[i]).find(|p| p.name == "primitive");
                let primitive = primitive.and_then(|p| p.attrs.get("id").cloned());
                out.push(Elem { name, attrs: attrs(&e), primitive, parent, start: before, end: after });
                if !empty {
                    open.push(out.len() - 1);
                }
            }
            Event::End(_) => {
                if let Some(i) = open.pop() {
                    out[i].end = after;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// Escapes an attribute value for XML text.
pub fn escape(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
