//! The cluster as a crmsh configuration (the `crm configure show` language, crmsh 4.x), applied
//! with `crm configure load update FILE`.

use super::model::{Cluster, Constraint, Nv, Primitive, Resource};

// No comments in the output: crmsh keeps them, as XML comments, in the CIB it writes.

pub fn render(cluster: &Cluster) -> String {
    let mut out = String::new();
    out.push_str(&format!("property cib-bootstrap-options:{}\n", pairs(&cluster.properties)));
    out.push_str(&format!("rsc_defaults rsc-options:{}\n", pairs(&cluster.rsc_defaults)));
    for r in &cluster.resources {
        match r {
            Resource::Primitive(p) => out.push_str(&primitive(p)),
            Resource::Group(g) => {
                for p in &g.members {
                    out.push_str(&primitive(p));
                }
                let members: Vec<&str> = g.members.iter().map(|p| p.id.as_str()).collect();
                out.push_str(&format!("group {} {}\n", g.id, members.join(" ")));
            }
            Resource::Clone(c) => {
                out.push_str(&primitive(&c.child));
                out.push_str(&format!("clone {} {} \\\n    meta{}\n", c.id, c.child.id, pairs(&c.meta)));
            }
        }
    }
    for c in &cluster.constraints {
        out.push_str(&match c {
            Constraint::Location { id, rsc, node, score } => {
                format!("location {id} {rsc} {}: {node}\n", score_word(score))
            }
            Constraint::Colocation { id, rsc, rsc_role, with_rsc, with_role, score } => {
                let pair = match super::render_cib::both_roles(rsc_role, with_role) {
                    (Some(role), Some(with_role)) => format!("{rsc}:{role} {with_rsc}:{with_role}"),
                    _ => format!("{rsc} {with_rsc}"),
                };
                format!("colocation {id} {}: {pair}\n", score_word(score))
            }
            Constraint::Order { id, first, first_action, then, then_action, symmetrical } => {
                let sym = if *symmetrical { String::new() } else { " symmetrical=false".into() };
                format!("order {id} Mandatory: {first}:{first_action} {then}:{then_action}{sym}\n")
            }
        });
    }
    for a in &cluster.alerts {
        out.push_str(&format!("alert {} {}", a.id, quote(&a.path)));
        if !a.params.is_empty() {
            let attrs: Vec<String> = a.params.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
            out.push_str(&format!(" \\\n    attributes {}", attrs.join(" ")));
        }
        if !a.meta.is_empty() {
            let meta: Vec<String> = a.meta.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
            out.push_str(&format!(" \\\n    meta {}", meta.join(" ")));
        }
        out.push_str(&format!(" \\\n    select {}", a.select.join(" ")));
        // crmsh names recipients itself; ids are not part of what the cluster does.
        for (_, value) in &a.recipients {
            out.push_str(&format!(" \\\n    to {}", quote(value)));
        }
        out.push('\n');
    }
    out
}

fn score_word(score: &str) -> String {
    match score {
        "INFINITY" => "inf".into(),
        "-INFINITY" => "-inf".into(),
        other => other.into(),
    }
}

fn pairs(nvs: &[Nv]) -> String {
    nvs.iter().map(|(k, v)| format!(" {k}={}", quote(v))).collect()
}

fn primitive(p: &Primitive) -> String {
    let mut s = format!("primitive {} {}", p.id, p.agent_spec());
    if !p.params.is_empty() {
        s.push_str(&format!(" \\\n    params{}", pairs(&p.params)));
    }
    if !p.meta.is_empty() {
        s.push_str(&format!(" \\\n    meta{}", pairs(&p.meta)));
    }
    for op in &p.ops {
        s.push_str(&format!(" \\\n    op {} interval={} timeout={}", op.name, op.interval, op.timeout));
        if let Some(role) = &op.role {
            s.push_str(&format!(" role={role}"));
        }
    }
    s.push('\n');
    s
}

/// A value for crmsh's lexer: bare when safe, else double-quoted with `\` and `"` escaped.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | ',' | '+'));
    if plain {
        value.to_string()
    } else {
        format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
    }
}
