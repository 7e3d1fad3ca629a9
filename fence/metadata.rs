//! fence_ups's metadata XML, rendered from the option table in args.rs in fence-agents' format
//! (valid for fence-agents' metadata.rng; what `stonith_admin --metadata` and pcs read).

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::args::{Content, Opt, ACTIONS, OPTIONS};

const SHORTDESC: &str = "Fence agent for UPSes: cuts a node's power over APC Smart serial or NUT's upsd";
const LONGDESC: &str = "fence_ups fences a node by cutting the load of the UPS that feeds it: directly over a \
serial line speaking APC's Smart protocol (transport=apcsmart, serial_port=...), or through NUT's upsd \
(transport=nut, ip=..., ups_name=...). It confirms that the load is off before it reports success, refuses \
to act on a UPS whose serial number differs from ups_serial, and never writes the UPS's EEPROM.";

/// The metadata document, as `-o metadata` prints it. quick-xml escapes every text and
/// attribute, as on the OCF side (`ocf::metadata`).
pub fn render(agent: &str) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b'\t', 1);
    write(&mut w, agent).expect("writing XML to memory cannot fail");
    let mut xml = String::from_utf8(w.into_inner()).expect("XML is UTF-8");
    xml.push('\n');
    xml
}

fn write(w: &mut Writer<Vec<u8>>, agent: &str) -> std::io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    w.create_element("resource-agent")
        .with_attributes([("name", agent), ("shortdesc", SHORTDESC)])
        .write_inner_content(|w| {
            w.create_element("longdesc").write_text_content(BytesText::new(LONGDESC))?;
            w.create_element("vendor-url").write_text_content(BytesText::new("https://networkupstools.org/"))?;
            w.create_element("parameters")
                .write_inner_content(|w| OPTIONS.iter().filter(|o| !o.hidden).try_for_each(|o| write_option(w, o)))?;
            w.create_element("actions").write_inner_content(|w| {
                for a in ACTIONS {
                    let mut el = w.create_element("action").with_attribute(("name", *a));
                    // `on` is not automatic: unfencing by power-on at start-up is the operator's choice.
                    if *a == "on" {
                        el = el.with_attribute(("automatic", "0"));
                    }
                    el.write_empty()?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// One `<parameter>`: its getopt form, content type (with a select's values) and description.
fn write_option(w: &mut Writer<Vec<u8>>, o: &Opt) -> std::io::Result<()> {
    let mut el = w.create_element("parameter").with_attributes([
        ("name", o.name),
        ("unique", "0"),
        ("required", if o.required { "1" } else { "0" }),
    ]);
    if o.deprecated {
        el = el.with_attribute(("deprecated", "1"));
    }
    if let Some(old) = o.obsoletes {
        el = el.with_attribute(("obsoletes", old));
    }
    el.write_inner_content(|w| {
        w.create_element("getopt").with_attribute(("mixed", getopt(o).as_str())).write_empty()?;
        let mut content = w.create_element("content").with_attribute(("type", content_type(o.content)));
        if let Some(d) = o.default {
            content = content.with_attribute(("default", d));
        }
        match o.content {
            Content::Select(values) => {
                content.write_inner_content(|w| {
                    for v in values {
                        w.create_element("option").with_attribute(("value", *v)).write_empty()?;
                    }
                    Ok(())
                })?;
            }
            _ => {
                content.write_empty()?;
            }
        }
        w.create_element("shortdesc").with_attribute(("lang", "en")).write_text_content(BytesText::new(o.shortdesc))?;
        Ok(())
    })?;
    Ok(())
}

/// `--help`: the options, as fence-agents prints them.
pub fn usage(agent: &str) -> String {
    let mut u = format!("Usage:\n\t{agent} [options]\n\t{agent} < name=value lines (what Pacemaker sends)\nOptions:\n");
    for o in OPTIONS.iter().filter(|o| !o.hidden && !o.deprecated) {
        let default = o.default.map(|d| format!(" (default {d})")).unwrap_or_default();
        u.push_str(&format!("   {:<32} {}{default}\n", getopt(o), o.shortdesc));
    }
    u.push_str(&format!("Actions: {}\n", ACTIONS.join(", ")));
    u
}

/// `fence_ups(8)`, from the same option table as the metadata.
pub fn man_page(agent: &str) -> String {
    use crate::doc::roff_escape as esc;
    let mut m = format!(
        ".TH \"{}\" \"8\" \"\" \"hastack {}\" \"System Administration\"\n.nh\n.ad l\n",
        agent.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    );
    m.push_str(&format!(".SH NAME\n{} \\- {}\n", esc(agent), esc(SHORTDESC)));
    m.push_str(&format!(
        ".SH SYNOPSIS\n.B {}\n[\\fIOPTIONS\\fR]\n.br\n.B {}\n< name=value lines\n",
        esc(agent),
        esc(agent)
    ));
    m.push_str(&format!(".SH DESCRIPTION\n{}\n", esc(LONGDESC)));
    m.push_str(".PP\nExit codes: 0 success (status: the load is on), 2 status: the load is off, 1 any error.\n");
    m.push_str(".SH OPTIONS\n");
    for o in OPTIONS.iter().filter(|o| !o.hidden && !o.deprecated) {
        let default = o.default.map(|d| format!(" (default {d})")).unwrap_or_default();
        m.push_str(&format!(".TP\n.B {}\n", esc(&getopt(o))));
        m.push_str(&format!("{}{}. On stdin: \\fB{}\\fR.\n", esc(o.shortdesc), esc(&default), esc(o.name)));
    }
    m.push_str(&format!(".SH ACTIONS\n{}\n", esc(&ACTIONS.join(", "))));
    m.push_str(".SH EXAMPLE\n.nf\n");
    m.push_str(&esc("echo -e 'action=status\\nserial_port=/dev/ttyS0' | fence_ups"));
    m.push_str("\n.fi\n.SH SEE ALSO\nhastack(8), stonith_admin(8), pcs(8)\n");
    m
}

fn content_type(c: Content) -> &'static str {
    match c {
        Content::String => "string",
        Content::Boolean => "boolean",
        Content::Second => "second",
        Content::Integer => "integer",
        Content::Select(_) => "select",
    }
}

/// fence-agents' `getopt mixed`: "-o, --action=[action]".
fn getopt(o: &Opt) -> String {
    let long = if o.takes_value() { format!("--{}=[{}]", o.long, o.metavar) } else { format!("--{}", o.long) };
    match o.short {
        Some(c) => format!("-{c}, {long}"),
        None => long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_lists_current_options() {
        let m = man_page("fence_ups");
        assert!(m.starts_with(".TH \"FENCE_UPS\" \"8\""));
        assert!(m.contains("\\-\\-serial\\-port=[path]"), "{m}");
        assert!(m.contains("On stdin: \\fBpassword\\fR"));
        assert!(!m.contains("On stdin: \\fBpasswd\\fR"), "deprecated spellings are left out");
        assert!(!m.contains("nodename"));
    }

    #[test]
    fn lists_parameters_actions_and_hides_pacemaker_extras() {
        let x = render("fence_ups");
        assert!(x.starts_with("<?xml"));
        assert!(x.contains("<resource-agent name=\"fence_ups\""));
        assert!(x.contains("<parameter name=\"plug\" unique=\"0\" required=\"0\" obsoletes=\"port\">"));
        assert!(x.contains("<parameter name=\"port\" unique=\"0\" required=\"0\" deprecated=\"1\">"));
        assert!(x.contains("<getopt mixed=\"-o, --action=[action]\"/>"));
        assert!(x.contains("<getopt mixed=\"-v, --verbose\"/>"));
        assert!(x.contains("<option value=\"nut\"/>"));
        assert!(x.contains("<action name=\"validate-all\"/>"));
        assert!(!x.contains("nodename"));
        assert_eq!(x.matches("<parameter ").count(), OPTIONS.iter().filter(|o| !o.hidden).count());
    }
}
