//! fence_ups's metadata XML, rendered from the option table in args.rs in fence-agents' format
//! (valid for fence-agents' metadata.rng; what `stonith_admin --metadata` and pcs read).

use super::args::{Content, ACTIONS, OPTIONS};

const SHORTDESC: &str = "Fence agent for UPSes: cuts a node's power over APC Smart serial or NUT's upsd";
const LONGDESC: &str = "fence_ups fences a node by cutting the load of the UPS that feeds it: directly over a \
serial line speaking APC's Smart protocol (transport=apcsmart, serial_port=...), or through NUT's upsd \
(transport=nut, ip=..., ups_name=...). It confirms that the load is off before it reports success, refuses \
to act on a UPS whose serial number differs from ups_serial, and never writes the UPS's EEPROM.";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

pub fn render(agent: &str) -> String {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    x.push_str(&format!("<resource-agent name=\"{}\" shortdesc=\"{}\" >\n", escape(agent), escape(SHORTDESC)));
    x.push_str(&format!("<longdesc>{}</longdesc>\n", escape(LONGDESC)));
    x.push_str("<vendor-url>https://networkupstools.org/</vendor-url>\n<parameters>\n");
    for o in OPTIONS.iter().filter(|o| !o.hidden) {
        let mut attrs = format!("name=\"{}\" unique=\"0\" required=\"{}\"", o.name, u8::from(o.required));
        if o.deprecated {
            attrs.push_str(" deprecated=\"1\"");
        }
        if let Some(old) = o.obsoletes {
            attrs.push_str(&format!(" obsoletes=\"{old}\""));
        }
        x.push_str(&format!("\t<parameter {attrs}>\n"));
        x.push_str(&format!("\t\t<getopt mixed=\"{}\" />\n", escape(&getopt(o))));
        let default = o.default.map(|d| format!(" default=\"{}\"", escape(d))).unwrap_or_default();
        match o.content {
            Content::Select(values) => {
                x.push_str(&format!("\t\t<content type=\"select\"{default} >\n"));
                for v in values {
                    x.push_str(&format!("\t\t\t<option value=\"{v}\" />\n"));
                }
                x.push_str("\t\t</content>\n");
            }
            c => x.push_str(&format!("\t\t<content type=\"{}\"{default} />\n", content_type(c))),
        }
        x.push_str(&format!("\t\t<shortdesc lang=\"en\">{}</shortdesc>\n\t</parameter>\n", escape(o.shortdesc)));
    }
    x.push_str("</parameters>\n<actions>\n");
    for a in ACTIONS {
        // `on` is not automatic: unfencing by power-on at start-up is the operator's choice.
        let extra = if *a == "on" { " automatic=\"0\"" } else { "" };
        x.push_str(&format!("\t<action name=\"{a}\"{extra} />\n"));
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
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
fn getopt(o: &super::args::Opt) -> String {
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
        assert!(x.contains("<getopt mixed=\"-o, --action=[action]\" />"));
        assert!(x.contains("<getopt mixed=\"-v, --verbose\" />"));
        assert!(x.contains("<option value=\"nut\" />"));
        assert!(x.contains("<action name=\"validate-all\" />"));
        assert!(!x.contains("nodename"));
        assert_eq!(x.matches("<parameter ").count(), OPTIONS.iter().filter(|o| !o.hidden).count());
    }
}
