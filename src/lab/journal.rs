//! What a lab made, one line per object, appended **before** the object is made: whatever
//! happens to `up` (an error, ^C, a kill), `down` finds everything that may exist and removes
//! what does. Power processes and node boots append too (a node's namespace and links are made
//! again at each boot); duplicates are harmless, every removal accepts "already gone".

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::sys::identity::Identity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Made {
    /// A directory, removed with everything in it.
    Dir(PathBuf),
    Bridge(String),
    /// The host end of a veth pair (deleting it deletes its peer).
    Link(String),
    Netns(String),
    /// A loop device over an image file: detached only if it still has that backing file.
    Loop {
        device: String,
        image: PathBuf,
    },
    /// A process of the lab (a UPS's power process, a node's PID 1), killed if still the same.
    Process {
        role: String,
        id: Identity,
    },
}

impl Made {
    pub fn to_line(&self) -> String {
        match self {
            Made::Dir(p) => format!("dir {}", p.display()),
            Made::Bridge(n) => format!("bridge {n}"),
            Made::Link(n) => format!("link {n}"),
            Made::Netns(n) => format!("netns {n}"),
            Made::Loop { device, image } => format!("loop {device} {}", image.display()),
            Made::Process { role, id } => format!("proc {} {} {role}", id.pid, id.starttime),
        }
    }

    pub fn parse(line: &str) -> Option<Made> {
        let (kind, rest) = line.split_once(' ')?;
        Some(match kind {
            "dir" => Made::Dir(PathBuf::from(rest)),
            "bridge" => Made::Bridge(rest.to_string()),
            "link" => Made::Link(rest.to_string()),
            "netns" => Made::Netns(rest.to_string()),
            "loop" => {
                let (device, image) = rest.split_once(' ')?;
                Made::Loop { device: device.to_string(), image: PathBuf::from(image) }
            }
            "proc" => {
                let mut it = rest.splitn(3, ' ');
                let id = Identity { pid: it.next()?.parse().ok()?, starttime: it.next()?.parse().ok()? };
                Made::Process { role: it.next()?.to_string(), id }
            }
            _ => return None,
        })
    }
}

/// Appends one entry (one short write: concurrent writers do not interleave within a line).
pub fn record(path: &Path, made: &Made) -> Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the lab journal {}", path.display()))?;
    f.write_all(format!("{}\n", made.to_line()).as_bytes())
        .with_context(|| format!("cannot write the lab journal {}", path.display()))
}

/// Every entry, in the order they were made, without repeats (first occurrence kept).
pub fn read(path: &Path) -> Vec<Made> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out: Vec<Made> = Vec::new();
    for made in text.lines().filter_map(Made::parse) {
        if !out.contains(&made) {
            out.push(made);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_repeat_once() {
        let all = vec![
            Made::Dir(PathBuf::from("/run/hastack-lab/hsl")),
            Made::Bridge("hsl-x".into()),
            Made::Link("hsl-1x".into()),
            Made::Netns("hsl-node1".into()),
            Made::Loop { device: "/dev/loop3".into(), image: PathBuf::from("/var/lib/hastack-lab/hsl/disk1.img") },
            Made::Process { role: "power node1".into(), id: Identity { pid: 42, starttime: 7 } },
        ];
        for m in &all {
            assert_eq!(Made::parse(&m.to_line()).as_ref(), Some(m));
        }
        let dir = tempfile::tempdir().unwrap();
        let j = dir.path().join("journal");
        for m in all.iter().chain(all.iter()) {
            record(&j, m).unwrap();
        }
        std::fs::write(&j, std::fs::read_to_string(&j).unwrap() + "garbage line\n").unwrap();
        assert_eq!(read(&j), all);
        assert!(read(&dir.path().join("none")).is_empty());
    }
}
