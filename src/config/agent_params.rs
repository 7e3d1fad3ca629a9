//! What a layer's parameters are checked against: the agent's own parameter table when the agent
//! is registered in this binary (the table its meta-data comes from), otherwise the small table of
//! required parameters below.

use crate::ocf::ParamSpec;

/// The resource agent types a stack may use (`ocf:hastack:<type>`).
pub const OCF_TYPES: &[&str] = &[
    "vip",
    "filesystem",
    "drbd",
    "haproxy",
    "apache",
    "nginx",
    "tomcat",
    "activemq",
    "rabbitmq",
    "postgresql",
    "mariadb",
    "app",
];

/// The stonith agent types a fence device may use.
pub const FENCE_TYPES: &[&str] = &["fence_ups"];

/// Agents not registered in this binary yet: their required and unique parameters only (from
/// their issues). REPLACE each entry by the agent's real table as soon as the agent is registered:
/// `rules` already prefers a registered agent's table, so a stale entry here is simply unused.
struct PendingAgent {
    name: &'static str,
    required: &'static [&'static str],
    /// Parameters whose value must differ between all layers of this agent (e.g. an address).
    unique: &'static [&'static str],
}

const PENDING: &[PendingAgent] = &[
    PendingAgent { name: "drbd", required: &["drbd_resource"], unique: &["drbd_resource"] },
    // fence_ups: which of serial_port / ipaddr is required depends on `transport`; see
    // validate::check_fence_params.
    PendingAgent { name: "fence_ups", required: &[], unique: &[] },
];

/// The parameter rules of one agent type.
pub enum Rules {
    /// The agent's own table: unknown names, missing required values and bad values are errors.
    Table(&'static [ParamSpec]),
    /// Only required and unique names are known; other names pass.
    Pending { required: &'static [&'static str], unique: &'static [&'static str] },
}

/// The rules for `agent`, or None when the type is not one the stack may use.
pub fn rules(agent: &str) -> Option<Rules> {
    if !OCF_TYPES.contains(&agent) && !FENCE_TYPES.contains(&agent) {
        return None;
    }
    if let Some(registered) = crate::applets::find_agent(agent) {
        return Some(Rules::Table(registered.spec().params));
    }
    PENDING.iter().find(|p| p.name == agent).map(|p| Rules::Pending { required: p.required, unique: p.unique })
}

impl Rules {
    /// Problems with one layer's parameters, each naming the parameter (None = the whole set).
    pub fn check(&self, params: &[(&str, Option<String>)]) -> Vec<(Option<String>, String)> {
        let given = |name: &str| params.iter().any(|(n, _)| *n == name);
        let mut problems = Vec::new();
        for (name, value) in params {
            let Some(value) = value else {
                problems
                    .push((Some(name.to_string()), format!("parameter '{name}' must be a string, number or boolean")));
                continue;
            };
            if let Rules::Table(table) = self {
                match table.iter().find(|p| p.name == *name) {
                    None => {
                        let known: Vec<&str> = table.iter().map(|p| p.name).collect();
                        problems.push((
                            Some(name.to_string()),
                            format!("unknown parameter '{name}' (known: {})", known.join(", ")),
                        ));
                    }
                    Some(spec) => {
                        if let Err(e) = spec.check(value) {
                            problems.push((Some(name.to_string()), e.reason));
                        }
                    }
                }
            }
        }
        for required in self.required() {
            if !given(required) {
                problems.push((None, format!("missing required parameter '{required}'")));
            }
        }
        problems
    }

    pub fn required(&self) -> Vec<&'static str> {
        match self {
            Rules::Table(table) => table.iter().filter(|p| p.required).map(|p| p.name).collect(),
            Rules::Pending { required, .. } => required.to_vec(),
        }
    }

    pub fn unique(&self) -> Vec<&'static str> {
        match self {
            Rules::Table(table) => table.iter().filter(|p| p.unique).map(|p| p.name).collect(),
            Rules::Pending { unique, .. } => unique.to_vec(),
        }
    }
}
