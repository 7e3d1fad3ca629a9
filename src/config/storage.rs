//! Where the data lives. A failover is only as good as the data the other node finds: a data
//! layer (postgresql, mariadb, activemq, rabbitmq) in a group keeps its data directory
//!   (the parameters its agent marks `data`) on a filesystem that group mounts before it; outside
//!   it, the node that takes over starts from its own local copy (refused). A group that mounts
//!   nothing gets a warning: its storage may be managed outside the cluster, but probably is not.

use std::path::{Path, PathBuf};

use super::layer_check;
use super::stack::{param_text, Group, Layer, Stack};
use super::validate::Problem;

pub fn check(stack: &Stack) -> Vec<Problem> {
    let mut problems = Vec::new();
    for group in &stack.groups {
        data_on_the_partition(group.get_ref(), &mut problems);
    }
    problems
}

fn text(layer: &Layer, name: &str) -> Option<(String, Option<std::ops::Range<usize>>)> {
    let value = layer.params.get_ref().get(name)?;
    param_text(value.get_ref()).map(|t| (t, Some(value.span())))
}

/// A path as mount tables show it: components only (no trailing `/`, no `//`).
fn clean(path: &str) -> PathBuf {
    Path::new(path.trim()).components().collect()
}

fn data_on_the_partition(g: &Group, problems: &mut Vec<Problem>) {
    let gid = g.id.get_ref();
    // (position in the group, layer id, mount point) of each filesystem layer.
    let filesystems: Vec<(usize, &Layer)> =
        g.layers.iter().map(|l| l.get_ref()).enumerate().filter(|(_, l)| l.agent.get_ref() == "filesystem").collect();
    let mounts: Vec<(usize, &str, PathBuf)> = filesystems
        .iter()
        .filter_map(|(i, l)| Some((*i, l.id.get_ref().as_str(), text(l, "directory")?.0)))
        .filter(|(_, _, dir)| dir.trim().starts_with('/'))
        .map(|(i, id, dir)| (i, id, clean(&dir)))
        .collect();
    if mounts.is_empty() && !filesystems.is_empty() {
        return; // its directory is refused already; nothing to measure against
    }
    for (i, layer) in g.layers.iter().enumerate() {
        let l = layer.get_ref();
        let id = l.id.get_ref();
        let Some(agent) = layer_check::agent(l.agent.get_ref()) else { continue };
        for spec in agent.spec().params.iter().filter(|p| p.data) {
            let (value, span, how) = match text(l, spec.name) {
                Some((v, span)) => (v, span, ""),
                None => match spec.default {
                    Some(d) => (d.to_string(), None, " (the default)"),
                    None => continue,
                },
            };
            if !value.trim().starts_with('/') {
                continue; // the agent's own check refuses it
            }
            let at = span.unwrap_or_else(|| l.agent.span());
            let name = spec.name;
            let path = clean(&value);
            if mounts.is_empty() {
                problems.push(Problem::warning(
                    at,
                    format!(
                        "layer '{id}': {name} {value}{how} stays on each node's own disk: group '{gid}' mounts no \
filesystem, so after a failover the service starts from the other node's copy (put a filesystem \
layer for the replicated or shared partition first in the group, and {name} on it)"
                    ),
                ));
                continue;
            }
            // The innermost mount holding the path is where the data really lands.
            match mounts
                .iter()
                .filter(|(_, _, dir)| path.starts_with(dir))
                .max_by_key(|(_, _, dir)| dir.components().count())
            {
                Some((at_fs, fs, dir)) if *at_fs > i => problems.push(Problem::error(
                    at,
                    format!(
                        "layer '{id}': {name} {value} is on {} which layer '{fs}' mounts only after it: put '{fs}' \
before '{id}' in group '{gid}'",
                        dir.display()
                    ),
                )),
                Some(_) => {}
                None => {
                    let dirs: Vec<String> =
                        mounts.iter().map(|(_, fs, d)| format!("{} (mounted by layer '{fs}')", d.display())).collect();
                    problems.push(Problem::error(
                        at,
                        format!(
                            "layer '{id}': {name} {value}{how} is outside the partition of group '{gid}', {}: a \
failover would start it from the other node's local disk; set {name} below {}",
                            dirs.join(" or "),
                            mounts[0].2.display()
                        ),
                    ));
                }
            }
        }
    }
}
