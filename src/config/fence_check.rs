//! A fence device's parameters checked by fence_ups's own code (one binary: the same parser and
//! the same checks its `validate-all` runs), plus what a stack must not set because Pacemaker or
//! the stack itself sets it.

use crate::fence::args::{self, parse_pairs};
use crate::fence::config as fence_config;

use super::layer_check::ParamProblem;

/// The stonith agents a fence device may use.
pub fn agent_names() -> Vec<&'static str> {
    crate::fence::FENCE_AGENTS.iter().map(|(name, _)| *name).collect()
}

/// Why a parameter has no place in a stack's fence device, if it has none.
fn not_for_a_stack(name: &str) -> Option<&'static str> {
    Some(match args::canonical_name(name).unwrap_or(name) {
        "action" => "Pacemaker passes the action itself (pcmk_<action>_action renames one)",
        "plug" | "nodename" | "nodeid" => "Pacemaker passes the node to fence itself; `fences` names it",
        "pcmk_host_list" => "the stack sets it from `fences`",
        "help" | "version" => "every action would print it and succeed without touching the UPS",
        _ => return None,
    })
}

/// Every problem with a fence_ups device's `params` (None for a value that is no string, number
/// or boolean), each naming its parameter where one is to blame.
pub fn check_params(params: &[(&str, Option<String>)]) -> Vec<ParamProblem> {
    let mut problems = Vec::new();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for (name, value) in params {
        let named = Some(name.to_string());
        match (value, not_for_a_stack(name)) {
            (None, _) => problems.push((named, format!("parameter '{name}' must be a string, number or boolean"))),
            (Some(_), Some(why)) => problems.push((named, format!("parameter '{name}' does not belong here: {why}"))),
            (Some(v), None) => pairs.push((name, v)),
        }
    }
    let mut given = match parse_pairs(pairs.iter().copied()) {
        Ok(a) => a,
        Err(e) => {
            problems.push((blamed(&e, params), e));
            return problems;
        }
    };
    for name in &given.unknown {
        let hint = crate::suggest::hint(name, args::known_names());
        problems.push((
            Some(name.clone()),
            format!("unknown parameter '{name}'{hint}: fence_ups does not know it (its names: `fence_ups -h`)"),
        ));
    }
    // What `pcs stonith create` and `stonith_admin --validate` have fence_ups check.
    given.set("action", "validate-all");
    if let Err(e) = fence_config::check(&given) {
        problems.push((blamed(&e, params), e));
    }
    problems
}

/// The parameter a fence_ups message is about: the first given name it mentions as a word
/// (its messages say `parameter serial_port: ...`, without quotes).
fn blamed(message: &str, params: &[(&str, Option<String>)]) -> Option<String> {
    let is_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    params
        .iter()
        .filter_map(|(name, _)| {
            message
                .match_indices(name)
                .find(|(at, _)| {
                    !is_word(message[..*at].chars().last()) && !is_word(message[at + name.len()..].chars().next())
                })
                .map(|(at, _)| (at, name.to_string()))
        })
        .min()
        .map(|(_, n)| n)
}

/// The name a device parameter is rendered under: the current one (`ipaddr` → `ip`, `login` →
/// `username`), so pcs finds no deprecated name in the configuration.
pub fn rendered_name(name: &str) -> &str {
    args::canonical_name(name).unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(pairs: &[(&str, &str)]) -> Vec<ParamProblem> {
        let params: Vec<(&str, Option<String>)> = pairs.iter().map(|(k, v)| (*k, Some(v.to_string()))).collect();
        check_params(&params)
    }

    #[test]
    fn what_fence_ups_accepts() {
        assert!(problems(&[("serial_port", "/dev/ttyS0")]).is_empty());
        assert!(problems(&[("ip", "192.0.2.5"), ("ups_name", "u")]).is_empty());
        assert!(problems(&[("transport", "nut"), ("ip", "192.0.2.5"), ("ups_name", "u")]).is_empty());
        assert!(problems(&[("ipaddr", "192.0.2.5"), ("ups_name", "u"), ("login", "f"), ("passwd", "p")]).is_empty());
        assert!(problems(&[("serial_port", "/dev/ttyS0"), ("pcmk_delay_max", "5s")]).is_empty());
    }

    #[test]
    fn what_fence_ups_refuses_names_its_parameter() {
        let p = problems(&[("serial_port", "ttyS0")]);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0.as_deref(), Some("serial_port"));
        let p = problems(&[("serial_port", "/dev/ttyS0"), ("ip", "192.0.2.5"), ("ups_name", "u")]);
        assert!(p[0].1.contains("both transports"), "{p:?}");
        let p = problems(&[("serial_port", "/dev/ttyS0"), ("ups_seiral", "QS1")]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0.as_deref(), Some("ups_seiral"));
        assert!(p[0].1.contains("did you mean 'ups_serial'"), "{p:?}");
        let p = problems(&[("serial_port", "/dev/ttyS0"), ("verbose", "maybe")]);
        assert_eq!(p[0].0.as_deref(), Some("verbose"), "{p:?}");
        let p = problems(&[("serial_port", "/dev/ttyS0"), ("port", "node1"), ("pcmk_host_list", "node1")]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p.iter().all(|(_, m)| m.contains("does not belong here")), "{p:?}");
        let p = problems(&[("ip", "192.0.2.5"), ("ups_name", "u"), ("ipport", "99999")]);
        assert_eq!(p[0].0.as_deref(), Some("ipport"), "{p:?}");
    }

    #[test]
    fn current_names_are_rendered() {
        assert_eq!(rendered_name("ipaddr"), "ip");
        assert_eq!(rendered_name("passwd"), "password");
        assert_eq!(rendered_name("serial_port"), "serial_port");
        assert_eq!(rendered_name("pcmk_delay_max"), "pcmk_delay_max");
    }
}
