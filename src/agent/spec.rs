//! The wire type of a configuration change, shared by the console (which records it) and the
//! node agent (`hastack agent apply`, which applies it): no server crate here, so the agents'
//! binary can read it without linking the console.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// What an operator may ask a cluster to change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Spec {
    /// A resource operation's interval and/or timeout (found by name and current interval).
    Operation {
        resource: String,
        operation: String,
        #[serde(default)]
        interval: Option<String>,
        #[serde(default)]
        new_interval: Option<String>,
        #[serde(default)]
        new_timeout: Option<String>,
    },
    /// One instance attribute of a resource.
    Parameter { resource: String, name: String, value: String },
    /// migration-threshold of a resource, or of every resource (rsc_defaults) without one.
    MigrationThreshold {
        #[serde(default)]
        resource: Option<String>,
        value: u32,
    },
    /// The cluster's maintenance-mode property.
    Maintenance { enabled: bool },
    /// Corosync's totem timing: never pushed (it needs every node restarted); refused with the
    /// manual steps.
    CorosyncTiming { name: String, value: String },
}

/// The step a change is in, as the agent reported it.
pub const STEPS: [&str; 5] = ["plan", "commit", "verify", "rollback", "refused"];
/// A change's final states.
pub const FINAL: [&str; 4] = ["applied", "rolled_back", "refused", "failed"];

fn id_like(what: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if !ok {
        bail!("{what} {v:?}: expected a CIB id (letters, digits, - _ . :)");
    }
    Ok(())
}

fn duration(what: &str, v: &Option<String>) -> Result<()> {
    if let Some(d) = v {
        if crate::config::validate::duration_ms(d).is_none() {
            bail!("{what} {d:?}: expected a Pacemaker duration such as \"10s\" or \"2min\"");
        }
    }
    Ok(())
}

impl Spec {
    /// Checks the request; a Corosync timing change is refused with the manual steps.
    pub fn validate(&self) -> Result<()> {
        match self {
            Spec::Operation { resource, operation, interval, new_interval, new_timeout } => {
                id_like("resource", resource)?;
                id_like("operation", operation)?;
                duration("interval", interval)?;
                duration("new_interval", new_interval)?;
                duration("new_timeout", new_timeout)?;
                if new_interval.is_none() && new_timeout.is_none() {
                    bail!("an operation change needs new_interval or new_timeout");
                }
            }
            Spec::Parameter { resource, name, value } => {
                id_like("resource", resource)?;
                id_like("name", name)?;
                if value.len() > 4096 || value.contains('\0') {
                    bail!("value: at most 4096 bytes, no NUL");
                }
            }
            Spec::MigrationThreshold { resource, value } => {
                if let Some(r) = resource {
                    id_like("resource", r)?;
                }
                if *value == 0 {
                    bail!("value 0: use 1 or more (0 means INFINITY to Pacemaker; set it explicitly elsewhere)");
                }
            }
            Spec::Maintenance { .. } => {}
            Spec::CorosyncTiming { name, value } => bail!(
                "corosync {name}={value} is never pushed: it needs every node's corosync restarted. Manual steps: \
                 1. edit totem.{name} in /etc/corosync/corosync.conf on one node; 2. `pcs cluster sync` (or copy the \
                 file to every node); 3. `corosync-cfgtool -R` to reload, or in a maintenance window \
                 `pcs cluster stop --all && pcs cluster start --all`; 4. check `corosync-cmapctl | grep totem.{name}` \
                 on each node"
            ),
        }
        Ok(())
    }
}
