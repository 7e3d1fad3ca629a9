//! The stack description as written in STACK.toml (field reference: crm-config/README.md).
//!
//! Values the validator may need to point at are `Spanned`, so an error names the line where the
//! value was written. Unknown fields are rejected: a typo must not silently drop a setting.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stack {
    pub cluster: Cluster,
    #[serde(rename = "node", default)]
    pub nodes: Vec<Spanned<Node>>,
    #[serde(rename = "fence", default)]
    pub fences: Vec<Spanned<Fence>>,
    #[serde(rename = "group", default)]
    pub groups: Vec<Spanned<Group>>,
    #[serde(rename = "clone", default)]
    pub clones: Vec<Spanned<Clone>>,
    pub alert: Option<Spanned<Alert>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub name: Spanned<String>,
    /// Failures of a resource on one node before it is moved away (rsc_defaults).
    #[serde(default = "default_migration_threshold")]
    pub migration_threshold: Spanned<i64>,
    /// Preference to stay where a resource runs: no automatic failback (rsc_defaults).
    #[serde(default = "default_stickiness")]
    pub resource_stickiness: Spanned<i64>,
    /// When a failure is forgotten (rsc_defaults `failure-timeout`); none by default.
    pub failure_timeout: Option<Spanned<String>>,
    /// Two-node clusters: the delay (`pcmk_delay_base`) put on the device that fences the first
    /// node, so that in a split that node shoots first and survives.
    pub fence_delay: Option<Spanned<String>>,
    /// Corosync's token timeout (`totem.token`): how long without the token before a node is
    /// declared lost; Corosync's default (3 s, plus consensus 1.2 × token) when absent.
    pub token: Option<Spanned<String>>,
    /// Corosync's consensus timeout (`totem.consensus`): how long to wait for consensus before
    /// a new membership round; Corosync's default (1.2 × token) when absent. Corosync accepts
    /// anything from its join timeout (50 ms) up; for two nodes corosync.conf(5) calls a
    /// consensus between join and token safe.
    pub consensus: Option<Spanned<String>>,
    /// Pacemaker cluster options (`cib-bootstrap-options`) beyond those the stack sets, e.g.
    /// `{ "node-action-limit" = 8 }`; checked against Pacemaker's own list (`properties`).
    #[serde(default = "no_params")]
    pub properties: Params,
}

fn default_migration_threshold() -> Spanned<i64> {
    Spanned::new(0..0, 3)
}
fn default_stickiness() -> Spanned<i64> {
    Spanned::new(0..0, 100)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    pub name: Spanned<String>,
    /// Corosync knet links: link 0 (the crossover cable), link 1 (the public network).
    pub links: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fence {
    pub id: Spanned<String>,
    /// The stonith agent (`fence_ups`).
    #[serde(default = "default_fence_agent")]
    pub agent: Spanned<String>,
    /// The node this UPS powers (the one the device fences).
    pub fences: Spanned<String>,
    /// The node the UPS's serial cable is plugged into: the only node the device may run on.
    pub cable: Option<Spanned<String>>,
    #[serde(default = "no_params")]
    pub params: Params,
    pub monitor: Option<Spanned<Monitor>>,
}

fn default_fence_agent() -> Spanned<String> {
    Spanned::new(0..0, "fence_ups".to_string())
}

/// Resources that run together on one node, started in the listed order, stopped in reverse.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub id: Spanned<String>,
    /// The node the group runs on when it can.
    pub prefer: Option<Spanned<String>>,
    /// Ordered list of the nodes the group may move to after `prefer`; when given, the group
    /// never runs anywhere else.
    pub failover: Option<Spanned<Vec<Spanned<String>>>>,
    /// Id of a promotable clone: the group runs where it is promoted, started after the promotion.
    pub with_promoted: Option<Spanned<String>>,
    /// The group's last layers, by id: they start together once the layers before them have
    /// started (rendered outside the group, colocated with it and ordered after it).
    pub parallel: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "layer")]
    pub layers: Vec<Spanned<Layer>>,
}

impl Group {
    /// How many layers, from the first, start one after the other (the Pacemaker group); the
    /// rest start together after them (`parallel`).
    pub fn sequential_len(&self) -> usize {
        let parallel = self.parallel.as_ref().map_or(0, |p| p.get_ref().len());
        self.layers.len().saturating_sub(parallel)
    }
}

/// One resource running on every node (or a promotable one, promoted on one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clone {
    pub id: Spanned<String>,
    #[serde(default)]
    pub promotable: bool,
    /// Groups whose first start this clone waits for (an optional order: a later move of those
    /// groups does not restart the clone's instances).
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    pub layer: Spanned<Layer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub id: Spanned<String>,
    /// The `ocf:hastack:<agent>` type.
    pub agent: Spanned<String>,
    #[serde(default = "no_params")]
    pub params: Params,
    pub monitor: Option<Spanned<Monitor>>,
    /// Promotable clones: the monitor of the promoted instance (its interval must differ).
    pub promoted_monitor: Option<Spanned<Monitor>>,
    /// Timeouts of the other operations, e.g. `{ start = "120s", stop = "60s" }`.
    #[serde(default)]
    pub timeouts: BTreeMap<String, Spanned<String>>,
    /// Overrides the cluster's `migration_threshold` for this resource.
    pub migration_threshold: Option<Spanned<i64>>,
    /// A planned move is a live migration (meta `allow-migrate=true`, operations migrate_to and
    /// migrate_from): only for layers of a group whose agent has those actions (tcprelay).
    pub allow_migrate: Option<Spanned<bool>>,
    /// A `parallel` layer of a group run as a promotable clone: an unpromoted instance (warm
    /// standby) on every node, promoted where the group runs, after the group's start. Only for
    /// agents with promote and demote (activemq).
    pub warm_standby: Option<Spanned<bool>>,
}

impl Layer {
    /// Whether the layer asks to be a warm standby (`warm_standby = true`).
    pub fn is_warm_standby(&self) -> bool {
        self.warm_standby.as_ref().is_some_and(|w| *w.get_ref())
    }

    /// The Pacemaker action after which the layer serves: a warm standby's promotion, else its
    /// start.
    pub fn serving_action(&self) -> &'static str {
        if self.is_warm_standby() {
            "promote"
        } else {
            "start"
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    pub interval: Spanned<String>,
    pub timeout: Spanned<String>,
}

/// A Pacemaker alert: the operator hears about resource failures and fencing, the console gets
/// reports (README.md "Alert agent").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub id: Spanned<String>,
    /// The alert agent (an executable on every node); default hastack's, /usr/lib/hastack/alert.
    pub path: Option<Spanned<String>>,
    /// Where the agent delivers (a file, mail addresses, a console URL; CRM_alert_recipient).
    pub recipient: Option<Spanned<String>>,
    /// More recipients (Pacemaker runs the agent once per recipient).
    pub recipients: Option<Vec<Spanned<String>>>,
    /// The agent's instance attributes (hastack's: cluster_id, token_file, ...).
    pub options: Option<Params>,
}

/// Agent parameters: strings, integers or booleans, kept as text for Pacemaker.
pub type Params = Spanned<BTreeMap<String, Spanned<toml::Value>>>;

/// A parameter's text as Pacemaker gets it, or None for a value that has none (a table, array).
pub fn param_text(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

fn no_params() -> Params {
    Spanned::new(0..0, BTreeMap::new())
}
