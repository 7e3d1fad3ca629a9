//! The cluster as a pcs command script (pcs 0.11). Every word is quoted for sh: the script is an
//! artifact an operator runs, and no value can break out of its argument.

use super::model::{Class, Cluster, Constraint, Nv, Op, Primitive, Resource};

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
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut cmd = |words: Vec<String>| lines.push(words);
    let w = |s: &str| s.to_string();

    let mut props = vec![w("property"), w("set")];
    props.extend(cluster.properties.iter().map(pair));
    cmd(props);
    let mut defaults = vec![w("resource"), w("defaults"), w("update")];
    defaults.extend(cluster.rsc_defaults.iter().map(pair));
    cmd(defaults);

    for r in &cluster.resources {
        match r {
            Resource::Primitive(p) => cmd(create(p, &[])),
            Resource::Group(g) => {
                for p in &g.members {
                    cmd(create(p, &[w("--group"), g.id.clone()]));
                }
            }
            Resource::Clone(c) => {
                let kind = if c.promotable { "promotable" } else { "clone" };
                let mut tail = vec![w(kind), c.id.clone()];
                // pcs sets promotable=true itself for `promotable`.
                tail.extend(c.meta.iter().filter(|(k, _)| k != "promotable").map(pair));
                cmd(create(&c.child, &tail));
            }
        }
    }

    for c in &cluster.constraints {
        cmd(match c {
            Constraint::Location { id, rsc, node, score } => {
                // `--` so that pcs takes a negative score as a score, not an option.
                vec![
                    w("constraint"),
                    w("location"),
                    w("add"),
                    id.clone(),
                    rsc.clone(),
                    node.clone(),
                    w("--"),
                    score.clone(),
                ]
            }
            Constraint::Colocation { id, rsc, with_rsc, with_role, score } => {
                let mut v = vec![w("constraint"), w("colocation"), w("add"), rsc.clone(), w("with")];
                v.extend(with_role.iter().cloned());
                v.extend([with_rsc.clone(), score.clone(), format!("id={id}")]);
                v
            }
            Constraint::Order { id, first, first_action, then, then_action, symmetrical } => vec![
                w("constraint"),
                w("order"),
                first_action.clone(),
                first.clone(),
                w("then"),
                then_action.clone(),
                then.clone(),
                format!("id={id}"),
                w("kind=Mandatory"),
            ]
            .into_iter()
            .chain((!symmetrical).then(|| w("symmetrical=false")))
            .collect(),
        });
    }

    for a in &cluster.alerts {
        let mut create = vec![w("alert"), w("create"), format!("id={}", a.id), format!("path={}", a.path)];
        if !a.params.is_empty() {
            create.push(w("options"));
            create.extend(a.params.iter().map(pair));
        }
        if !a.meta.is_empty() {
            create.push(w("meta"));
            create.extend(a.meta.iter().map(pair));
        }
        cmd(create);
        for (id, value) in &a.recipients {
            cmd(vec![w("alert"), w("recipient"), w("add"), a.id.clone(), format!("value={value}"), format!("id={id}")]);
        }
    }

    let mut out = HEADER.to_string();
    for words in lines {
        out.push_str("run");
        for word in words {
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

/// pcs cannot set an alert's select filters (ClusterLabs/pcs #198): cibadmin adds them to the
/// alert pcs created, on the same CIB (file or cluster).
fn select_filters(a: &super::model::Alert) -> String {
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
        Class::Ocf => "resource",
        Class::Stonith => "stonith",
    };
    let agent = match p.class {
        Class::Ocf => p.agent_spec(),
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
