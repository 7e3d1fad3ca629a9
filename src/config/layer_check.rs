//! A layer checked by its agent's own code, so `hastack config` refuses what the agent would:
//! the parameter table (unknown names, types, required values), then the agent's level-0
//! validation (`ocf::agent::validate_syntax`, what every action of the agent starts with), and
//! the operation timeouts its meta-data advises.

use std::collections::BTreeMap;

use crate::ocf::agent::validate_syntax;
use crate::ocf::Agent;

/// The OCF agent of a layer's `agent` name (`ocf:hastack:<name>`).
pub fn agent(name: &str) -> Option<&'static dyn Agent> {
    crate::agents::AGENTS.iter().copied().find(|a| a.spec().name == name)
}

/// Whether an agent's meta-data has promote and demote: it can run as a promotable clone.
pub fn is_promotable(agent: &dyn Agent) -> bool {
    let has = |op: &str| agent.spec().actions.iter().any(|a| a.name == op);
    has("promote") && has("demote")
}

/// The agent names a layer may use.
pub fn agent_names() -> Vec<&'static str> {
    crate::agents::AGENTS.iter().map(|a| a.spec().name).collect()
}

/// One problem with a layer's parameters: the parameter it is about (None: the whole set).
pub type ParamProblem = (Option<String>, String);

/// Every problem with `params` (name → value as Pacemaker gets it; None for a value that is no
/// string, number or boolean). `meta`: the meta attributes the resource runs with.
pub fn check_params(
    agent: &dyn Agent,
    params: &BTreeMap<String, Option<String>>,
    meta: &BTreeMap<String, String>,
) -> Vec<ParamProblem> {
    let table = agent.spec().params;
    let mut problems = Vec::new();
    // The values that pass the table: the agent's own checks see only these.
    let mut clean: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in params {
        let Some(value) = value else {
            problems.push((Some(name.clone()), format!("parameter '{name}' must be a string, number or boolean")));
            continue;
        };
        match table.iter().find(|p| p.name == name) {
            None => {
                let known: Vec<&str> = table.iter().map(|p| p.name).collect();
                let hint = crate::suggest::hint(name, known.iter().copied());
                problems.push((
                    Some(name.clone()),
                    format!("unknown parameter '{name}'{hint} (known: {})", known.join(", ")),
                ));
            }
            Some(spec) => match spec.check(value) {
                Err(e) => problems.push((Some(name.clone()), e.reason)),
                Ok(()) => {
                    clean.insert(name.clone(), value.clone());
                }
            },
        }
    }
    let missing: Vec<&str> =
        table.iter().filter(|p| p.required && !params.contains_key(p.name)).map(|p| p.name).collect();
    for name in &missing {
        problems.push((None, format!("missing required parameter '{name}'")));
    }
    if !missing.is_empty()
        || table.iter().any(|p| p.required && params.contains_key(p.name) && !clean.contains_key(p.name))
    {
        return problems; // the agent's checks need its required values
    }
    // The agent stops at its first objection: take the objected parameter out and ask again, so
    // every bad optional parameter is reported (a bad required one ends the questions).
    for _ in 0..=clean.len() {
        let Err(e) = validate_syntax(agent, &clean, meta) else { break };
        let named = named_parameter(&e.reason, clean.keys().map(String::as_str));
        problems.push((named.clone(), e.reason));
        match named {
            Some(name) if !table.iter().any(|p| p.name == name && p.required) => {
                clean.remove(&name);
            }
            _ => break,
        }
    }
    problems
}

/// The parameter an agent's message is about: the first of `names` it quotes (`'nic'`).
pub fn named_parameter<'a>(message: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    names.filter_map(|n| message.find(&format!("'{n}'")).map(|at| (at, n))).min().map(|(_, n)| n.to_string())
}

/// The timeout an agent's meta-data advises for an operation; for the Promoted monitor of an
/// agent that advises none for that role (activemq), its monitor's.
pub fn advised_timeout(agent: &dyn Agent, op: &str, role: Option<&str>) -> Option<&'static str> {
    let spec = agent.spec();
    spec.advised_timeout(op, role).or_else(|| match (op, role) {
        ("monitor", Some("Promoted")) => spec.advised_timeout(op, None),
        _ => None,
    })
}

/// An operation timeout below what the agent advises: `(operation, timeout, advised)`.
pub fn short_timeout(agent: &dyn Agent, op: &str, role: Option<&str>, timeout_ms: u64) -> Option<&'static str> {
    let advised = advised_timeout(agent, op, role)?;
    let advised_ms = super::validate::duration_ms(advised)?;
    (timeout_ms < advised_ms).then_some(advised)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
    }

    fn problems(name: &str, pairs: &[(&str, &str)]) -> Vec<ParamProblem> {
        check_params(agent(name).unwrap(), &params(pairs), &BTreeMap::new())
    }

    #[test]
    fn the_agents_own_checks_are_run() {
        let p = problems("vip", &[("ip", "999.1.1.1")]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0.as_deref(), Some("ip"));
        let p = problems("vip", &[("ip", "10.0.0.1"), ("cidr_netmask", "99"), ("nic", "a/b"), ("arp_count", "x")]);
        let named: Vec<Option<&str>> = p.iter().map(|(n, _)| n.as_deref()).collect();
        assert_eq!(named, vec![Some("arp_count"), Some("cidr_netmask"), Some("nic")], "{p:?}");
        assert!(problems("vip", &[("ip", "10.0.0.1"), ("cidr_netmask", "24")]).is_empty());
        let p = problems("filesystem", &[("device", "/dev/drbd0"), ("directory", "srv/data"), ("fstype", "ext44")]);
        assert_eq!(p.len(), 1, "a bad required parameter ends the questions: {p:?}");
        assert!(p[0].1.contains("'directory' must be an absolute path"), "{p:?}");
        let p = problems("filesystem", &[("device", "/dev/drbd0"), ("directory", "/srv/data"), ("fstype", "ext44")]);
        assert!(p[0].1.contains("did you mean 'ext4'"), "{p:?}");
        let p = problems("nginx", &[("statusurl", "https://127.0.0.1/")]);
        assert!(p[0].1.contains("https is not supported"), "{p:?}");
        let p = problems("postgresql", &[("pgdta", "/srv/data/pg")]);
        assert!(p[0].1.contains("unknown parameter 'pgdta' (did you mean 'pgdata'?)"), "{p:?}");
    }

    #[test]
    fn advised_timeouts() {
        let pg = agent("postgresql").unwrap();
        assert_eq!(short_timeout(pg, "start", None, 60_000), Some("120s"));
        assert_eq!(short_timeout(pg, "start", None, 120_000), None);
        assert_eq!(short_timeout(pg, "promote", None, 1), None, "no advice, no warning");
        assert_eq!(
            named_parameter("parameter 'nic' is required for 'ip'", ["ip", "nic"].into_iter()),
            Some("nic".into())
        );
    }
}
