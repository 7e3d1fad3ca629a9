//! Where the data lives. A failover is only as good as the data the other node finds:
//! - a data layer (postgresql, mariadb, activemq, rabbitmq) in a group keeps its data directory
//!   (the parameters its agent marks `data`) on a filesystem that group mounts before it; outside
//!   it, the node that takes over starts from its own local copy (refused); a `parallel` layer
//!   cannot keep it on a filesystem another parallel layer mounts (they start together). A group that mounts
//!   nothing gets a warning: its storage may be managed outside the cluster, but probably is not;
//! - a filesystem on a DRBD device is mounted only where that DRBD is Promoted, after the
//!   promotion (its group `with_promoted` the DRBD clone); otherwise the scheduler may mount a
//!   Secondary, or move the mount without promoting DRBD (refused).

use std::path::{Path, PathBuf};

use super::layer_check;
use super::stack::{param_text, Group, Layer, Stack};
use super::validate::Problem;

pub fn check(stack: &Stack) -> Vec<Problem> {
    let mut problems = Vec::new();
    for group in &stack.groups {
        data_on_the_partition(group.get_ref(), &mut problems);
    }
    drbd_filesystems(stack, &mut problems);
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
    // Layers from `seq` on start together (`parallel`): none may wait for another's mount.
    let seq = g.sequential_len();
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
                Some((at_fs, fs, dir)) if *at_fs >= seq && i >= seq => problems.push(Problem::error(
                    at,
                    format!(
                        "layer '{id}': {name} {value} is on {} which layer '{fs}' mounts while '{id}' starts (both are in \
group '{gid}''s parallel): put '{fs}' before the parallel layers",
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

/// Which DRBD resource a device path belongs to: None if it is no DRBD device, Some(None) if the
/// path does not say which (`/dev/drbd0`: the minor is mapped in drbd.conf).
pub fn drbd_device(device: &str) -> Option<Option<String>> {
    let device = device.trim();
    if let Some(rest) = device.strip_prefix("/dev/drbd/by-res/") {
        return Some(rest.split('/').next().filter(|r| !r.is_empty()).map(String::from));
    }
    if device.starts_with("/dev/drbd/by-disk/") {
        return Some(None);
    }
    let minor = device.strip_prefix("/dev/drbd")?;
    (!minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit())).then_some(None)
}

fn drbd_filesystems(stack: &Stack, problems: &mut Vec<Problem>) {
    // (clone id, the DRBD resource its layer manages) of every promotable drbd clone.
    let drbd_clones: Vec<(&str, Option<String>)> = stack
        .clones
        .iter()
        .map(|c| c.get_ref())
        .filter(|c| c.promotable && c.layer.get_ref().agent.get_ref() == "drbd")
        .map(|c| (c.id.get_ref().as_str(), text(c.layer.get_ref(), "drbd_resource").map(|(r, _)| r)))
        .collect();
    let grouped = stack.groups.iter().flat_map(|g| g.get_ref().layers.iter().map(move |l| (l, Some(g.get_ref()))));
    let cloned = stack.clones.iter().map(|c| (&c.get_ref().layer, None));
    for (layer, group) in grouped.chain(cloned) {
        let l: &Layer = layer.get_ref();
        if l.agent.get_ref() != "filesystem" {
            continue;
        }
        let Some((device, Some(span))) = text(l, "device") else { continue };
        let Some(resource) = drbd_device(&device) else { continue };
        let mine: Vec<&str> = drbd_clones
            .iter()
            .filter(|(_, r)| resource.is_none() || r.as_ref() == resource.as_ref())
            .map(|(id, _)| *id)
            .collect();
        if let Some(message) = drbd_problem(l.id.get_ref(), &device, resource.as_deref(), group, &mine) {
            problems.push(Problem::error(span, message));
        }
    }
}

fn drbd_problem(
    id: &str,
    device: &str,
    resource: Option<&str>,
    group: Option<&Group>,
    mine: &[&str],
) -> Option<String> {
    let which = match resource {
        Some(r) => format!("DRBD resource '{r}'"),
        None => "a DRBD device".to_string(),
    };
    let suggestion = match mine {
        [] => match resource {
            Some(r) => format!("no promotable drbd clone in the stack manages '{r}' (drbd_resource = \"{r}\")"),
            None => "the stack has no promotable drbd clone".to_string(),
        },
        [one] => format!("set with_promoted = \"{one}\" on the group"),
        many => format!("set with_promoted to its clone on the group (one of {})", many.join(", ")),
    };
    let why = "it must be mounted only where DRBD is Promoted, after the promotion";
    match group {
        None => Some(format!(
            "layer '{id}': device {device} is {which}, and a clone would mount it on every node: {why}; put it in a \
group and {suggestion}"
        )),
        Some(g) => match g.with_promoted.as_ref().map(|p| p.get_ref().as_str()) {
            Some(p) if mine.contains(&p) => None,
            Some(p) => Some(format!(
                "layer '{id}': device {device} is {which}, but group '{}' follows '{p}', which does not manage it: \
{why}; {suggestion}",
                g.id.get_ref()
            )),
            None => Some(format!(
                "layer '{id}': device {device} is {which}, but group '{}' is not tied to its promotion: {why} (else \
the scheduler may mount it where DRBD is Secondary, or move the mount without promoting DRBD); {suggestion}",
                g.id.get_ref()
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drbd_device_paths() {
        assert_eq!(drbd_device("/dev/drbd0"), Some(None));
        assert_eq!(drbd_device("/dev/drbd12"), Some(None));
        assert_eq!(drbd_device("/dev/drbd/by-res/r0"), Some(Some("r0".into())));
        assert_eq!(drbd_device("/dev/drbd/by-res/r0/0"), Some(Some("r0".into())));
        assert_eq!(drbd_device("/dev/drbd/by-disk/vg0/data"), Some(None));
        assert_eq!(drbd_device("/dev/drbdx"), None);
        assert_eq!(drbd_device("/dev/sdb1"), None);
        assert_eq!(drbd_device("/dev/mapper/billing"), None);
    }
}
