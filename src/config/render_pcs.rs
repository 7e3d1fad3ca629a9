//! The cluster as a pcs command script (pcs 0.11). Every word is quoted for sh: the script is an
//! artifact an operator runs, and no value can break out of its argument.

use super::model::{Alert, Class, Cluster, Constraint, Nv, Op, Primitive, Resource};

const HEADER: &str = r#"#!/bin/sh
# Rendered by `hastack config render --format pcs`; the same cluster as the cib and crm renderings.
# Usage: sh THIS_SCRIPT [CIB_FILE]
#   With CIB_FILE (e.g. made by `pcs cluster cib CIB_FILE`), builds the configuration offline in
#   that file (`pcs -f`), to review and then push with `pcs cluster cib-push CIB_FILE --config`.
#   Without, applies it to the running cluster, one command at a time.
# --no-default-ops: the operations listed are the whole set, as in the CIB rendering.
# --force on create: `hastack config` has checked every parameter against the agents' own tables,
#   and pcs would refuse an agent that is not installed on the machine running this script.
set -eu
cib="${1:-}"
run() {
    if [ -n "$cib" ]; then pcs -f "$cib" "$@"; else pcs "$@"; fi
}
"#;

pub fn render(cluster: &Cluster) -> String {
    let mut commands: Vec<Vec<String>> = Vec::new();
    commands.push(words(&["property", "set"], cluster.properties.iter().map(pair)));
    commands.push(words(&["resource", "defaults", "update"], cluster.rsc_defaults.iter().map(pair)));
    commands.extend(cluster.resources.iter().flat_map(resource));
    commands.extend(cluster.constraints.iter().map(constraint));
    commands.extend(cluster.alerts.iter().flat_map(alert));
    let mut out = HEADER.to_string();
    for command in commands {
        out.push_str("run");
        for word in command {
            out.push(' ');
            out.push_str(&sh_quote(&word));
        }
        out.push('\n');
    }
    for a in &cluster.alerts {
        out.push_str(&select_filters(a));
    }
    out
}

/// A pcs command: fixed words, then the rest.
fn words(fixed: &[&str], rest: impl IntoIterator<Item = String>) -> Vec<String> {
    fixed.iter().map(|w| w.to_string()).chain(rest).collect()
}

/// The commands that create a resource: a primitive, each member of a group, or a clone.
fn resource(r: &Resource) -> Vec<Vec<String>> {
    match r {
        Resource::Primitive(p) => vec![create(p, &[])],
        Resource::Group(g) => g.members.iter().map(|p| create(p, &["--group".to_string(), g.id.clone()])).collect(),
        Resource::Clone(c) => {
            let kind = if c.promotable { "promotable" } else { "clone" };
            let mut tail = vec![kind.to_string(), c.id.clone()];
            // pcs sets promotable=true itself for `promotable`.
            tail.extend(c.meta.iter().filter(|(k, _)| k != "promotable").map(pair));
            vec![create(&c.child, &tail)]
        }
    }
}

fn constraint(c: &Constraint) -> Vec<String> {
    match c {
        Constraint::Location { id, rsc, node, score } => {
            // `--` so that pcs takes a negative score as a score, not an option.
            words(
                &["constraint", "location", "add"],
                [id.clone(), rsc.clone(), node.clone(), "--".into(), score.clone()],
            )
        }
        Constraint::Colocation { id, rsc, rsc_role, with_rsc, with_role, score } => words(
            &["constraint", "colocation", "add"],
            rsc_role.iter().cloned().chain([rsc.clone(), "with".into()]).chain(with_role.iter().cloned()).chain([
                with_rsc.clone(),
                score.clone(),
                format!("id={id}"),
            ]),
        ),
        Constraint::Order { id, first, first_action, then, then_action, symmetrical } => words(
            &["constraint", "order"],
            [
                first_action.clone(),
                first.clone(),
                "then".into(),
                then_action.clone(),
                then.clone(),
                format!("id={id}"),
                "kind=Mandatory".into(),
            ]
            .into_iter()
            .chain((!symmetrical).then(|| "symmetrical=false".to_string())),
        ),
    }
}

/// An alert with its options and meta attributes, and its recipients.
fn alert(a: &Alert) -> Vec<Vec<String>> {
    let mut create = words(&["alert", "create"], [format!("id={}", a.id), format!("path={}", a.path)]);
    if !a.params.is_empty() {
        create.push("options".into());
        create.extend(a.params.iter().map(pair));
    }
    if !a.meta.is_empty() {
        create.push("meta".into());
        create.extend(a.meta.iter().map(pair));
    }
    let recipients = a.recipients.iter().map(|(id, value)| {
        words(&["alert", "recipient", "add"], [a.id.clone(), format!("value={value}"), format!("id={id}")])
    });
    std::iter::once(create).chain(recipients).collect()
}

/// pcs cannot set an alert's select filters (ClusterLabs/pcs #198): cibadmin adds them to the
/// alert pcs created, on the same CIB (file or cluster).
fn select_filters(a: &Alert) -> String {
    let kinds: String = a.select.iter().map(|k| format!("<select_{k}/>")).collect();
    let xml = format!("<alert id=\"{}\"><select>{kinds}</select></alert>", xml_escape(&a.id));
    let q = sh_quote(&xml);
    format!(
        "# pcs cannot set alert select filters (ClusterLabs/pcs #198): cibadmin adds them.\n\
         if [ -n \"$cib\" ]; then CIB_file=\"$cib\" cibadmin --modify --scope alerts --xml-text {q}; \
         else cibadmin --modify --scope alerts --xml-text {q}; fi\n"
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn pair((k, v): &Nv) -> String {
    format!("{k}={v}")
}

fn create(p: &Primitive, tail: &[String]) -> Vec<String> {
    let kind = match p.class {
        Class::Ocf(_) => "resource",
        Class::Stonith => "stonith",
    };
    let agent = match p.class {
        Class::Ocf(_) => p.agent_spec(),
        Class::Stonith => p.agent.clone(),
    };
    let mut v = vec![kind.to_string(), "create".into(), p.id.clone(), agent];
    v.extend(p.params.iter().map(pair));
    for op in &p.ops {
        v.extend(op_words(op));
    }
    if !p.meta.is_empty() {
        v.push("meta".into());
        v.extend(p.meta.iter().map(pair));
    }
    v.extend(tail.iter().cloned());
    v.extend(["--no-default-ops".to_string(), "--force".to_string()]);
    v
}

fn op_words(op: &Op) -> Vec<String> {
    let mut v =
        vec!["op".into(), op.name.clone(), format!("interval={}", op.interval), format!("timeout={}", op.timeout)];
    if let Some(role) = &op.role {
        v.push(format!("role={role}"));
    }
    v
}

/// A word for sh: bare when it holds only characters sh treats literally, else single-quoted.
pub fn sh_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '=' | '@' | ',' | '+'));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
