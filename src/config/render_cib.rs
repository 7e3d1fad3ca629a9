//! The cluster as a CIB document (what `cibadmin --replace --xml-file` or `crm_verify -x` takes).

use quick_xml::events::{BytesDecl, Event};
use quick_xml::Writer;

use super::model::{Class, Cluster, Constraint, Nv, Primitive, Resource};

/// The schema the rendered CIB validates with: Pacemaker 2.1's, the first with Promoted/Unpromoted.
pub const SCHEMA: &str = "pacemaker-3.9";
/// The feature set `cibadmin --empty` writes on Pacemaker 2.1.5. Without one the scheduler takes
/// the CIB for a pre-3.0.13 one and ignores per-operation fail counts (so migration-threshold).
pub const FEATURE_SET: &str = "3.16.1";

type W = Writer<Vec<u8>>;
type Res = std::io::Result<()>;

pub fn render(cluster: &Cluster) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    write(&mut w, cluster).expect("writing XML to memory cannot fail");
    let mut text = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
    text.push('\n');
    text
}

fn write(w: &mut W, c: &Cluster) -> Res {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("cib")
        .with_attributes([
            ("crm_feature_set", FEATURE_SET),
            ("validate-with", SCHEMA),
            ("epoch", "1"),
            ("num_updates", "0"),
            ("admin_epoch", "0"),
        ])
        .write_inner_content(|w| {
            w.create_element("configuration").write_inner_content(|w| {
                w.create_element("crm_config").write_inner_content(|w| {
                    nvset(w, "cluster_property_set", "cib-bootstrap-options", &c.properties)
                })?;
                w.create_element("nodes").write_empty()?;
                w.create_element("resources").write_inner_content(|w| {
                    for r in &c.resources {
                        resource(w, r)?;
                    }
                    Ok(())
                })?;
                w.create_element("constraints").write_inner_content(|w| {
                    for con in &c.constraints {
                        constraint(w, con)?;
                    }
                    Ok(())
                })?;
                w.create_element("rsc_defaults")
                    .write_inner_content(|w| nvset(w, "meta_attributes", "rsc-options", &c.rsc_defaults))?;
                if !c.alerts.is_empty() {
                    w.create_element("alerts").write_inner_content(|w| {
                        for a in &c.alerts {
                            w.create_element("alert")
                                .with_attributes([("id", a.id.as_str()), ("path", a.path.as_str())])
                                .write_inner_content(|w| {
                                    nvset(w, "meta_attributes", &format!("{}-meta_attributes", a.id), &a.meta)?;
                                    nvset(
                                        w,
                                        "instance_attributes",
                                        &format!("{}-instance_attributes", a.id),
                                        &a.params,
                                    )?;
                                    w.create_element("select").write_inner_content(|w| {
                                        for kind in &a.select {
                                            w.create_element(format!("select_{kind}").as_str()).write_empty()?;
                                        }
                                        Ok(())
                                    })?;
                                    for (id, value) in &a.recipients {
                                        w.create_element("recipient")
                                            .with_attributes([("id", id.as_str()), ("value", value.as_str())])
                                            .write_empty()?;
                                    }
                                    Ok(())
                                })?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
            w.create_element("status").write_empty()?;
            Ok(())
        })?;
    Ok(())
}

/// An attribute set whose nvpair ids follow the `<set id>-<name>` convention pcs and crmsh use.
fn nvset(w: &mut W, tag: &str, id: &str, pairs: &[Nv]) -> Res {
    if pairs.is_empty() {
        return Ok(());
    }
    w.create_element(tag).with_attribute(("id", id)).write_inner_content(|w| {
        for (name, value) in pairs {
            let nv_id = format!("{id}-{name}");
            w.create_element("nvpair")
                .with_attributes([("id", nv_id.as_str()), ("name", name.as_str()), ("value", value.as_str())])
                .write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

fn resource(w: &mut W, r: &Resource) -> Res {
    match r {
        Resource::Primitive(p) => primitive(w, p),
        Resource::Group(g) => {
            w.create_element("group").with_attribute(("id", g.id.as_str())).write_inner_content(|w| {
                for p in &g.members {
                    primitive(w, p)?;
                }
                Ok(())
            })?;
            Ok(())
        }
        Resource::Clone(c) => {
            w.create_element("clone").with_attribute(("id", c.id.as_str())).write_inner_content(|w| {
                nvset(w, "meta_attributes", &format!("{}-meta_attributes", c.id), &c.meta)?;
                primitive(w, &c.child)
            })?;
            Ok(())
        }
    }
}

fn primitive(w: &mut W, p: &Primitive) -> Res {
    let mut el = w.create_element("primitive").with_attributes([("id", p.id.as_str())]);
    el = match p.class {
        Class::Ocf(provider) => el.with_attributes([("class", "ocf"), ("provider", provider)]),
        Class::Stonith => el.with_attribute(("class", "stonith")),
    };
    el.with_attribute(("type", p.agent.as_str())).write_inner_content(|w| {
        nvset(w, "instance_attributes", &format!("{}-instance_attributes", p.id), &p.params)?;
        nvset(w, "meta_attributes", &format!("{}-meta_attributes", p.id), &p.meta)?;
        w.create_element("operations").write_inner_content(|w| {
            for op in &p.ops {
                let id = format!("{}-{}-interval-{}", p.id, op.name, op.interval);
                let mut el = w.create_element("op").with_attributes([
                    ("id", id.as_str()),
                    ("name", op.name.as_str()),
                    ("interval", op.interval.as_str()),
                    ("timeout", op.timeout.as_str()),
                ]);
                if let Some(role) = &op.role {
                    el = el.with_attribute(("role", role.as_str()));
                }
                el.write_empty()?;
            }
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

fn constraint(w: &mut W, c: &Constraint) -> Res {
    match c {
        Constraint::Location { id, rsc, node, score } => {
            w.create_element("rsc_location")
                .with_attributes([("id", id.as_str()), ("rsc", rsc), ("node", node), ("score", score)])
                .write_empty()?;
        }
        Constraint::Colocation { id, rsc, rsc_role, with_rsc, with_role, score } => {
            let mut el = w.create_element("rsc_colocation").with_attributes([("id", id.as_str()), ("rsc", rsc)]);
            // Roles only where one matters, as pcs and crmsh write them: with a role on one side,
            // both also write the other side's as Started.
            let (rsc_role, with_role) = both_roles(rsc_role, with_role);
            if let Some(role) = rsc_role {
                el = el.with_attribute(("rsc-role", role));
            }
            el = el.with_attributes([("with-rsc", with_rsc.as_str()), ("score", score.as_str())]);
            if let Some(role) = with_role {
                el = el.with_attribute(("with-rsc-role", role));
            }
            el.write_empty()?;
        }
        Constraint::Order { id, first, first_action, then, then_action, symmetrical } => {
            let mut el = w.create_element("rsc_order").with_attributes([
                ("id", id.as_str()),
                ("first", first),
                ("first-action", first_action),
                ("then", then),
                ("then-action", then_action),
                ("kind", "Mandatory"),
            ]);
            if !symmetrical {
                el = el.with_attribute(("symmetrical", "false"));
            }
            el.write_empty()?;
        }
    }
    Ok(())
}

/// A colocation's two roles as written: none, or both (Started for the side that has none).
pub fn both_roles<'a>(
    rsc_role: &'a Option<String>,
    with_role: &'a Option<String>,
) -> (Option<&'a str>, Option<&'a str>) {
    match (rsc_role.as_deref(), with_role.as_deref()) {
        (None, None) => (None, None),
        (r, w) => (Some(r.unwrap_or("Started")), Some(w.unwrap_or("Started"))),
    }
}
