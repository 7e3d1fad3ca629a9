//! A stack file (crm-config/*.toml) as `hastack config` reads it: parsed, validated (every
//! layer through its agent's own checks, fence devices through fence_ups's), built into the
//! cluster model and rendered as a CIB, a pcs script, a crmsh script and corosync.conf.
//!
//! Properties: nothing panics; every problem names a line of the file; a stack that passes
//! renders
//! - a CIB that is well-formed XML, with every id unique, whose primitives read back as the
//!   model's (id, class, provider, type and every parameter with its exact value): the CIB
//!   carries the model, whatever characters the values hold;
//! - a pcs script that sh splits into the intended words: every primitive's create command
//!   carries its id, its agent and each `name=value` exactly;
//! - a crmsh script whose every line starts a statement or continues one (no value breaks a
//!   line).

#![no_main]

use std::collections::{BTreeMap, HashSet};

use hastack::config::model::{Class, Cluster, Primitive, Resource, OCF_PROVIDER};
use hastack::config::Format;
use libfuzzer_sys::fuzz_target;
use quick_xml::events::{BytesStart, Event};

/// A primitive as the CIB holds it.
#[derive(Debug, Default, PartialEq)]
struct CibPrimitive {
    class: String,
    provider: Option<String>,
    agent: String,
    params: Vec<(String, String)>,
}

fn primitives(cluster: &Cluster) -> Vec<&Primitive> {
    let mut out = Vec::new();
    for r in &cluster.resources {
        match r {
            Resource::Primitive(p) => out.push(p),
            Resource::Group(g) => out.extend(g.members.iter()),
            Resource::Clone(c) => out.push(&c.child),
        }
    }
    out
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).expect("attributes are well-formed").map(|a| a.unescape_value().unwrap().into_owned())
}

/// Reads every primitive back from the CIB, checking well-formedness and id uniqueness.
fn read_cib(xml: &str) -> BTreeMap<String, CibPrimitive> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut ids = HashSet::new();
    let mut found: BTreeMap<String, CibPrimitive> = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    loop {
        let event = reader.read_event().unwrap_or_else(|e| panic!("the CIB is not well-formed XML: {e}\n{xml}"));
        let (e, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                if path.pop().as_deref() == Some("primitive") {
                    current = None;
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        if let Some(id) = attr(e, "id") {
            assert!(ids.insert(id.clone()), "id '{id}' is used twice in the CIB\n{xml}");
        }
        match name.as_str() {
            "primitive" => {
                let id = attr(e, "id").expect("a primitive has an id");
                let p = CibPrimitive {
                    class: attr(e, "class").unwrap_or_default(),
                    provider: attr(e, "provider"),
                    agent: attr(e, "type").unwrap_or_default(),
                    params: Vec::new(),
                };
                found.insert(id.clone(), p);
                current = Some(id);
            }
            "nvpair" if path.last().map(String::as_str) == Some("instance_attributes") => {
                if let Some(p) = current.as_ref().and_then(|id| found.get_mut(id)) {
                    p.params.push((attr(e, "name").unwrap_or_default(), attr(e, "value").unwrap_or_default()));
                }
            }
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
    assert!(path.is_empty(), "unclosed elements {path:?}");
    found
}

fn check_cib(cluster: &Cluster, xml: &str) {
    let found = read_cib(xml);
    let model = primitives(cluster);
    assert_eq!(found.len(), model.len(), "primitives in the CIB: {:?}", found.keys().collect::<Vec<_>>());
    for p in model {
        let want = CibPrimitive {
            class: match p.class {
                Class::Ocf(_) => "ocf".into(),
                Class::Stonith => "stonith".into(),
            },
            // `hastack config` renders only hastack's agents (the lab swaps providers later).
            provider: match p.class {
                Class::Ocf(provider) => {
                    assert_eq!(provider, OCF_PROVIDER, "primitive {}", p.id);
                    Some(provider.to_string())
                }
                Class::Stonith => None,
            },
            agent: p.agent.clone(),
            params: p.params.clone(),
        };
        assert_eq!(found.get(&p.id), Some(&want), "primitive {}", p.id);
    }
}

fn check_pcs(cluster: &Cluster, script: &str) {
    let commands = hastack_fuzz::sh_commands(script).unwrap_or_else(|| panic!("unterminated quoting\n{script}"));
    for p in primitives(cluster) {
        let create = commands
            .iter()
            .find(|c| c.len() > 4 && c[0] == "run" && c[2] == "create" && c[3] == p.id)
            .unwrap_or_else(|| panic!("no create command for {}\n{script}", p.id));
        let agent = match p.class {
            Class::Ocf(_) => p.agent_spec(),
            Class::Stonith => p.agent.clone(),
        };
        assert_eq!(create[4], agent);
        for (k, v) in &p.params {
            let word = format!("{k}={v}");
            assert!(create.contains(&word), "{word:?} is not a word of {create:?}");
        }
    }
}

const CRM_STATEMENTS: &[&str] =
    &["property ", "rsc_defaults ", "primitive ", "group ", "clone ", "location ", "colocation ", "order ", "alert "];

fn check_crm(script: &str) {
    let mut continued = false;
    for line in script.lines() {
        if !continued {
            assert!(CRM_STATEMENTS.iter().any(|s| line.starts_with(s)), "line {line:?} starts no statement\n{script}");
        } else {
            assert!(line.starts_with("    "), "line {line:?} does not continue the statement\n{script}");
        }
        continued = line.ends_with(" \\");
    }
    assert!(!continued, "the last statement is continued\n{script}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    let loaded = match hastack::config::parse("fuzz.toml", src) {
        Ok(loaded) => loaded,
        Err(e) => {
            let lines = src.lines().count().max(1);
            for l in &e.lines {
                let n: usize = l
                    .strip_prefix("fuzz.toml:")
                    .and_then(|r| r.split(':').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("problem without a line: {l}"));
                assert!((1..=lines + 1).contains(&n), "line {n} of {lines}: {l}");
            }
            return;
        }
    };
    let _ = loaded.node_names();
    check_cib(&loaded.cluster, &loaded.render(Format::Cib));
    check_pcs(&loaded.cluster, &loaded.render(Format::Pcs));
    check_crm(&loaded.render(Format::Crm));
    let _ = loaded.render(Format::Corosync);
});
