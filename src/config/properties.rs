//! A stack's `[cluster] properties`: Pacemaker's cluster options (`cib-bootstrap-options`),
//! checked against what Pacemaker 2.1.5 knows (the metadata of pacemaker-controld,
//! pacemaker-schedulerd and pacemaker-based), so a misspelt name or a value Pacemaker would
//! quietly ignore is refused before anything is loaded.

use super::validate::duration_ms;

/// What a property's value must look like (Pacemaker's metadata `type`).
enum Kind {
    Boolean,
    Integer,
    /// An integer or ±INFINITY (node health scores).
    Score,
    Time,
    Percentage,
    Choice(&'static [&'static str]),
    Text,
}

/// Pacemaker 2.1.5's cluster options, by name. Those a stack may not set are in `not_settable`.
const KNOWN: &[(&str, Kind)] = &[
    ("batch-limit", Kind::Integer),
    ("cluster-delay", Kind::Time),
    ("cluster-ipc-limit", Kind::Integer),
    ("cluster-recheck-interval", Kind::Time),
    ("concurrent-fencing", Kind::Boolean),
    ("dc-deadtime", Kind::Time),
    ("election-timeout", Kind::Time),
    ("enable-acl", Kind::Boolean),
    ("enable-startup-probes", Kind::Boolean),
    ("fence-reaction", Kind::Choice(&["stop", "panic"])),
    ("join-finalization-timeout", Kind::Time),
    ("join-integration-timeout", Kind::Time),
    ("load-threshold", Kind::Percentage),
    ("maintenance-mode", Kind::Boolean),
    ("migration-limit", Kind::Integer),
    ("no-quorum-policy", Kind::Choice(&["stop", "freeze", "ignore", "demote", "suicide"])),
    ("node-action-limit", Kind::Integer),
    ("node-health-base", Kind::Score),
    ("node-health-green", Kind::Score),
    ("node-health-red", Kind::Score),
    ("node-health-strategy", Kind::Choice(&["none", "migrate-on-red", "only-green", "progressive", "custom"])),
    ("node-health-yellow", Kind::Score),
    ("pe-error-series-max", Kind::Integer),
    ("pe-input-series-max", Kind::Integer),
    ("pe-warn-series-max", Kind::Integer),
    ("placement-strategy", Kind::Choice(&["default", "utilization", "minimal", "balanced"])),
    ("priority-fencing-delay", Kind::Time),
    ("remove-after-stop", Kind::Boolean),
    ("shutdown-escalation", Kind::Time),
    ("shutdown-lock", Kind::Boolean),
    ("shutdown-lock-limit", Kind::Time),
    ("start-failure-is-fatal", Kind::Boolean),
    ("startup-fencing", Kind::Boolean),
    ("stonith-action", Kind::Choice(&["reboot", "off", "poweroff"])),
    ("stonith-max-attempts", Kind::Integer),
    ("stonith-timeout", Kind::Time),
    ("stonith-watchdog-timeout", Kind::Text),
    ("stop-all-resources", Kind::Boolean),
    ("stop-orphan-actions", Kind::Boolean),
    ("stop-orphan-resources", Kind::Boolean),
    ("symmetric-cluster", Kind::Boolean),
    ("transition-delay", Kind::Time),
    // Set by Pacemaker or by the stack itself: refused by `not_settable`.
    ("cluster-infrastructure", Kind::Text),
    ("cluster-name", Kind::Text),
    ("dc-version", Kind::Text),
    ("have-watchdog", Kind::Boolean),
    ("stonith-enabled", Kind::Boolean),
];

/// Why a known property has no place in a stack, if it has none.
fn not_settable(name: &str) -> Option<&'static str> {
    Some(match name {
        "stonith-enabled" => "the stack always fences (the failover waits for the fence to confirm); it sets true",
        "cluster-name" => "[cluster] name sets it",
        "dc-version" | "cluster-infrastructure" | "have-watchdog" => "Pacemaker sets it itself",
        _ => return None,
    })
}

/// The problem with one property, naming it; None when Pacemaker takes it as given.
pub fn check(name: &str, value: Option<&str>) -> Option<String> {
    let Some((_, kind)) = KNOWN.iter().find(|(known, _)| *known == name) else {
        let hint = crate::suggest::hint(name, KNOWN.iter().map(|(known, _)| *known));
        return Some(format!("properties: '{name}' is not a Pacemaker cluster option{hint}"));
    };
    if let Some(why) = not_settable(name) {
        return Some(format!("properties: '{name}' cannot be set here: {why}"));
    }
    let Some(value) = value else {
        return Some(format!("properties: '{name}' needs a string, number or boolean"));
    };
    let expected = match kind {
        // The project's one boolean rule, the spellings Pacemaker's crm_is_true takes.
        Kind::Boolean if crate::ocf::params::parse_bool(value).is_some() => return None,
        Kind::Boolean => "true or false".to_string(),
        Kind::Integer if value.parse::<i64>().is_ok() => return None,
        Kind::Integer => "an integer".to_string(),
        Kind::Score if is_score(value) => return None,
        Kind::Score => "an integer, INFINITY or -INFINITY".to_string(),
        Kind::Time if duration_ms(value).is_some() => return None,
        Kind::Time => "a duration (e.g. 500ms, 60s, 15min)".to_string(),
        Kind::Percentage if is_percentage(value) => return None,
        Kind::Percentage => "a percentage (e.g. 80%)".to_string(),
        Kind::Choice(choices) if choices.contains(&value) => return None,
        Kind::Choice(choices) => format!("one of {}", choices.join(", ")),
        Kind::Text if !value.is_empty() => return None,
        Kind::Text => "a value".to_string(),
    };
    Some(format!("properties: {name} = '{value}' is not {expected}"))
}

fn is_score(v: &str) -> bool {
    ["INFINITY", "+INFINITY", "-INFINITY"].contains(&v) || v.parse::<i64>().is_ok()
}

fn is_percentage(v: &str) -> bool {
    v.strip_suffix('%').unwrap_or(v).parse::<f64>().is_ok_and(|p| p.is_finite() && p >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_property_with_a_value_of_its_kind_passes() {
        for (name, value) in [
            ("node-action-limit", "8"),
            ("no-quorum-policy", "freeze"),
            ("cluster-recheck-interval", "5min"),
            ("load-threshold", "150%"),
            ("node-health-red", "-INFINITY"),
            ("maintenance-mode", "false"),
        ] {
            assert_eq!(check(name, Some(value)), None, "{name} = {value}");
        }
    }

    #[test]
    fn a_misspelt_name_is_refused_with_the_option_it_resembles() {
        let why = check("node-action-limt", Some("8")).expect("refused");
        assert!(why.contains("'node-action-limt' is not a Pacemaker cluster option"), "{why}");
        assert!(why.contains("node-action-limit"), "{why}");
    }

    #[test]
    fn a_value_of_the_wrong_kind_names_the_property_and_the_kind() {
        let why = check("node-action-limit", Some("eight")).expect("refused");
        assert_eq!(why, "properties: node-action-limit = 'eight' is not an integer");
        let why = check("no-quorum-policy", Some("stay")).expect("refused");
        assert!(why.contains("one of stop, freeze, ignore, demote, suicide"), "{why}");
        assert!(check("transition-delay", Some("soon")).is_some());
        assert!(check("node-action-limit", None).expect("refused").contains("needs a string, number or boolean"));
    }

    #[test]
    fn what_pacemaker_or_the_stack_sets_is_refused() {
        let why = check("stonith-enabled", Some("false")).expect("refused");
        assert!(why.contains("the stack always fences"), "{why}");
        assert!(check("cluster-name", Some("x")).expect("refused").contains("[cluster] name"));
        assert!(check("dc-version", Some("2.1.5")).is_some());
    }
}
