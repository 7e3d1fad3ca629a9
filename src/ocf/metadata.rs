//! An agent's description (name, parameter table, actions) and the meta-data XML made from it.
//!
//! The XML must satisfy three readers at once: ocf-tester (`xmllint --valid` against
//! resource-agents' ra-api-1.dtd, which needs the DOCTYPE, fixes the element order and allows only
//! string/integer/boolean/time content, a fixed list of action names and, on a parameter, only
//! `name`, `required` and `unique`), pcs (its OCF RelaxNG) and crm_resource. So: DOCTYPE,
//! `select` parameters rendered as strings, no `reload-agent`, and `<version>1.0</version>`:
//! pcs (0.11) enforces `unique="1"` only for agents claiming OCF 1.0 (for 1.1 it reads only
//! `unique-group`, which the DTD rejects). Claiming 1.0 changes nothing else in Pacemaker but
//! reloads: an agent with a `reload` action (haproxy) is reloaded, not restarted, when a
//! parameter that is not unique changes (see `OCF_VERSION`).

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use crate::ocf::params::{ParamSpec, ParamType};

/// The OCF version the meta-data claims. 1.0, not 1.1, for pcs's sake: pcs refuses a second
/// resource with the value of a `unique="1"` parameter (two virtual IPs with the same address)
/// only for OCF 1.0 agents, and the only 1.1 form it reads (`unique-group`) is invalid for
/// ra-api-1.dtd. Exit codes, roles and everything else stay as OCF 1.1 defines them; Pacemaker
/// reads the version for reloads only (`reload` instead of `reload-agent`, and a parameter is
/// reloadable unless unique).
pub const OCF_VERSION: &str = "1.0";

/// Everything Pacemaker, pcs and the man page learn about an agent.
#[derive(Debug)]
pub struct AgentSpec {
    pub name: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [ParamSpec],
    pub actions: &'static [ActionSpec],
}

/// One `<action>` element: its advised timeout and, for monitors, interval, depth and role.
#[derive(Copy, Clone, Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub timeout: &'static str,
    pub interval: Option<&'static str>,
    pub depth: Option<u32>,
    pub role: Option<&'static str>,
}

impl ActionSpec {
    pub const fn new(name: &'static str, timeout: &'static str) -> Self {
        ActionSpec { name, timeout, interval: None, depth: None, role: None }
    }
    pub const fn monitor(interval: &'static str, timeout: &'static str) -> Self {
        ActionSpec { name: "monitor", timeout, interval: Some(interval), depth: Some(0), role: None }
    }
    pub const fn role(mut self, role: &'static str) -> Self {
        self.role = Some(role);
        self
    }
    pub const fn depth(mut self, depth: u32) -> Self {
        self.depth = Some(depth);
        self
    }
}

impl AgentSpec {
    pub fn has_action(&self, name: &str) -> bool {
        self.actions.iter().any(|a| a.name == name)
    }

    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }

    /// The timeout the meta-data advises for an operation (what pcs takes as its default and
    /// crmsh warns below). A monitor's is that of the depth-0 monitor of its role; a monitor
    /// without a role on a promotable agent runs on the unpromoted instances.
    pub fn advised_timeout(&self, action: &str, role: Option<&str>) -> Option<&'static str> {
        let of_role = |r: Option<&str>| {
            self.actions
                .iter()
                .find(|a| a.name == action && a.role == r && a.depth.unwrap_or(0) == 0)
                .map(|a| a.timeout)
        };
        match (action, role) {
            ("monitor", None) => of_role(None).or_else(|| of_role(Some("Unpromoted"))),
            _ => of_role(role),
        }
    }

    /// The meta-data document, as `meta-data` prints it.
    pub fn metadata_xml(&self) -> String {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        self.write(&mut w).expect("writing XML to memory cannot fail");
        let body = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
        // quick-xml writes no DOCTYPE; the DTD validator (ocf-tester) requires one.
        let (decl, rest) = body.split_once('\n').expect("declaration line");
        format!("{decl}\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n{rest}\n")
    }

    fn write(&self, w: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
        w.create_element("resource-agent")
            .with_attributes([("name", self.name), ("version", env!("CARGO_PKG_VERSION"))])
            .write_inner_content(|w| {
                w.create_element("version").write_text_content(BytesText::new(OCF_VERSION))?;
                desc(w, "longdesc", self.longdesc)?;
                desc(w, "shortdesc", self.shortdesc)?;
                w.create_element("parameters").write_inner_content(|w| {
                    for p in self.params {
                        write_param(w, p)?;
                    }
                    Ok(())
                })?;
                w.create_element("actions").write_inner_content(|w| {
                    for a in self.actions {
                        write_action(w, a)?;
                    }
                    Ok(())
                })?;
                Ok(())
            })?;
        Ok(())
    }
}

fn desc(w: &mut Writer<Vec<u8>>, tag: &str, text: &str) -> std::io::Result<()> {
    w.create_element(tag).with_attribute(("lang", "en")).write_text_content(BytesText::new(text))?;
    Ok(())
}

/// The long description a parameter shows, with the allowed values of a select appended.
pub fn param_longdesc(p: &ParamSpec) -> String {
    let mut text = if p.longdesc.is_empty() { p.shortdesc.to_string() } else { p.longdesc.to_string() };
    if let ParamType::Select(choices) = p.ty {
        text.push_str(&format!(" Allowed values: {}.", choices.join(", ")));
    }
    text
}

fn write_param(w: &mut Writer<Vec<u8>>, p: &ParamSpec) -> std::io::Result<()> {
    let flag = |b: bool| if b { "1" } else { "0" };
    w.create_element("parameter")
        .with_attributes([("name", p.name), ("unique", flag(p.unique)), ("required", flag(p.required))])
        .write_inner_content(|w| {
            desc(w, "longdesc", &param_longdesc(p))?;
            desc(w, "shortdesc", p.shortdesc)?;
            let ty = match p.ty {
                ParamType::String | ParamType::Select(_) => "string",
                ParamType::Integer { .. } => "integer",
                ParamType::Boolean => "boolean",
            };
            let mut content = w.create_element("content").with_attribute(("type", ty));
            if let Some(d) = p.default {
                content = content.with_attribute(("default", d));
            }
            content.write_empty()?;
            Ok(())
        })?;
    Ok(())
}

fn write_action(w: &mut Writer<Vec<u8>>, a: &ActionSpec) -> std::io::Result<()> {
    let depth = a.depth.map(|d| d.to_string());
    let mut el = w.create_element("action").with_attributes([("name", a.name), ("timeout", a.timeout)]);
    if let Some(i) = a.interval {
        el = el.with_attribute(("interval", i));
    }
    if let Some(d) = depth.as_deref() {
        el = el.with_attribute(("depth", d));
    }
    if let Some(r) = a.role {
        el = el.with_attribute(("role", r));
    }
    el.write_empty()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: AgentSpec = AgentSpec {
        name: "demo",
        shortdesc: "A demo & test",
        longdesc: "Long <text>",
        params: &[
            ParamSpec::string("ip").required().unique().short("Address"),
            ParamSpec::select("mode", &["a", "b"]).default("a").short("Mode"),
        ],
        actions: &[ActionSpec::new("start", "20s"), ActionSpec::monitor("10s", "20s")],
    };

    #[test]
    fn renders_doctype_escapes_and_selects() {
        let xml = SPEC.metadata_xml();
        assert!(xml.starts_with("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n"));
        assert!(xml.contains("A demo &amp; test"));
        assert!(xml.contains("Long &lt;text&gt;"));
        assert!(xml.contains("<version>1.0</version>"));
        assert!(xml.contains("Allowed values: a, b."));
        assert!(xml.contains(r#"<content type="string" default="a"/>"#));
        assert!(xml.contains(r#"<action name="monitor" timeout="20s" interval="10s" depth="0"/>"#));
        assert!(xml.contains(r#"<parameter name="ip" unique="1" required="1">"#));
    }

    #[test]
    fn advised_timeouts_by_action_and_role() {
        assert_eq!(SPEC.advised_timeout("start", None), Some("20s"));
        assert_eq!(SPEC.advised_timeout("monitor", None), Some("20s"));
        assert_eq!(SPEC.advised_timeout("promote", None), None);
        static PROMOTABLE: AgentSpec = AgentSpec {
            name: "p",
            shortdesc: "",
            longdesc: "",
            params: &[],
            actions: &[
                ActionSpec::monitor("15s", "25s").role("Promoted"),
                ActionSpec::monitor("29s", "35s").role("Unpromoted"),
                ActionSpec::monitor("30s", "90s").role("Unpromoted").depth(10),
            ],
        };
        assert_eq!(PROMOTABLE.advised_timeout("monitor", Some("Promoted")), Some("25s"));
        assert_eq!(PROMOTABLE.advised_timeout("monitor", None), Some("35s"));
    }
}
