//! Documentation generated from the same tables as the meta-data: a man page per OCF agent
//! (`ocf_hastack_<type>(7)`, named like resource-agents' `ocf_heartbeat_<type>(7)`), one for the
//! `hastack` command (from its clap definition), and shell completions. `hastack doc --out DIR`
//! writes them all; packaging ships them.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::ocf::metadata::{param_longdesc, AgentSpec};
use crate::ocf::ParamType;

/// Escapes text for roff: backslashes, hyphens, and a leading control character.
pub fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Paragraphs of a description: blank lines separate them; each line escaped.
fn paragraphs(out: &mut String, text: &str) {
    for para in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        out.push_str(".PP\n");
        for line in para.lines() {
            let _ = writeln!(out, "{}", roff_escape(line.trim()));
        }
    }
}

fn header(out: &mut String, name: &str, section: u8, manual: &str) {
    let _ = writeln!(
        out,
        ".TH \"{}\" \"{section}\" \"\" \"hastack {}\" \"{manual}\"",
        name.to_uppercase(),
        env!("CARGO_PKG_VERSION")
    );
    out.push_str(".nh\n.ad l\n");
}

/// The man page name of an OCF agent.
pub fn agent_page_name(spec: &AgentSpec) -> String {
    format!("ocf_hastack_{}", spec.name)
}

/// `ocf_hastack_<type>(7)`: description, parameters, actions, an example, from the agent's table.
pub fn agent_man_page(spec: &AgentSpec) -> String {
    let page = agent_page_name(spec);
    let mut out = String::new();
    header(&mut out, &page, 7, "OCF resource agents");
    let _ = writeln!(out, ".SH NAME\n{} \\- {}", roff_escape(&page), roff_escape(spec.shortdesc));
    let mut actions: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
    actions.dedup();
    let _ = writeln!(out, ".SH SYNOPSIS\n\\fB{}\\fR [{}]", roff_escape(spec.name), roff_escape(&actions.join(" | ")));
    out.push_str(".SH DESCRIPTION\n");
    paragraphs(&mut out, spec.longdesc);
    out.push_str(".SH SUPPORTED PARAMETERS\n");
    for p in spec.params {
        let ty = match p.ty {
            ParamType::String | ParamType::Select(_) => "string",
            ParamType::Integer { .. } => "integer",
            ParamType::Boolean => "boolean",
        };
        let mut facts = vec![if p.required { "required" } else { "optional" }];
        if p.unique {
            facts.push("unique");
        }
        facts.push(ty);
        let default = match p.default {
            Some(d) => format!("default \"{d}\""),
            None => "no default".to_string(),
        };
        let _ = writeln!(out, ".PP\n\\fB{}\\fR\n.RS 4", roff_escape(p.name));
        paragraphs(&mut out, &param_longdesc(p));
        let _ = writeln!(out, ".sp\n({}, {})\n.RE", facts.join(", "), roff_escape(&default));
    }
    out.push_str(".SH SUPPORTED ACTIONS\n");
    for a in spec.actions {
        let mut facts = vec![format!("timeout {}", a.timeout)];
        if let Some(i) = a.interval {
            facts.push(format!("interval {i}"));
        }
        if let Some(d) = a.depth {
            facts.push(format!("depth {d}"));
        }
        if let Some(r) = a.role {
            facts.push(format!("role {r}"));
        }
        let _ = writeln!(out, ".TP\n\\fB{}\\fR\n{}", roff_escape(a.name), roff_escape(&facts.join(", ")));
    }
    let required: Vec<String> = spec.params.iter().filter(|p| p.required).map(|p| format!("{}=...", p.name)).collect();
    let _ = writeln!(
        out,
        ".SH EXAMPLE\n.PP\nCreate a resource with pcs (or crm configure primitive):\n.PP\n.nf\n.RS 4\npcs resource create my\\-{} ocf:hastack:{} {}\n.RE\n.fi",
        roff_escape(spec.name),
        roff_escape(spec.name),
        roff_escape(&required.join(" "))
    );
    out.push_str(".SH SEE ALSO\n\\fBhastack\\fR(8), \\fBpcs\\fR(8), \\fBcrm_resource\\fR(8)\n");
    out
}

/// `hastack(8)`, from the clap definition of the CLI.
pub fn cli_man_page(cmd: &clap::Command) -> String {
    let mut out = String::new();
    header(&mut out, "hastack", 8, "System Administration");
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let _ = writeln!(out, ".SH NAME\nhastack \\- {}", roff_escape(&about));
    out.push_str(".SH SYNOPSIS\n\\fBhastack\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n");
    out.push_str(".SH DESCRIPTION\n");
    paragraphs(
        &mut out,
        "hastack is one binary that is, by the name it is called under, an OCF resource agent for \
         each layer of a clustered middleware stack (links in /usr/lib/ocf/resource.d/hastack/), the \
         fence agent fence_ups (/usr/sbin/fence_ups), the Pacemaker alert agent (/usr/lib/hastack/alert: \
         syslog, a file or mail for the operator, and reports with a crm_mon snapshot for a console, \
         spooled until the console has them; README.md, section Alert agent), and this command, which \
         does the things around them.",
    );
    out.push_str(".SH COMMANDS\n");
    commands(&mut out, cmd, "", false);
    out.push_str(".SH FILES\n.TP\n/usr/lib/ocf/resource.d/hastack/\nthe OCF agents (links to /usr/sbin/hastack)\n");
    out.push_str(".TP\n/usr/lib/hastack/alert\nthe Pacemaker alert agent (a link to /usr/sbin/hastack)\n");
    out.push_str(".TP\n/usr/sbin/hastack\\-console\nthe console's own binary, which \\fBhastack console\\fR runs (\\fBhastack\\-console\\fR(8))\n");
    out.push_str(".TP\n/var/spool/hastack/alert/\nreports waiting for the console (hacluster:haclient 0750)\n");
    out.push_str(".TP\n/etc/hastack/console.token\nthe console's bearer token (readable by group haclient)\n");
    let pages: Vec<String> = crate::agents::AGENTS
        .iter()
        .map(|a| format!("\\fB{}\\fR(7)", roff_escape(&agent_page_name(a.spec()))))
        .collect();
    let _ = writeln!(out, ".SH SEE ALSO\n{}", pages.join(", "));
    out
}

/// One `.TP` entry per visible subcommand of `cmd`, with its options; with `nested`, one per
/// leaf (`PREFIX NAME SUB`) instead of one per group.
fn commands(out: &mut String, cmd: &clap::Command, prefix: &str, nested: bool) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let args: Vec<String> = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && a.get_id() != "help")
            .map(|a| match a.get_long() {
                Some(l) => format!("[\\-\\-{}]", roff_escape(l)),
                None => format!("\\fI{}\\fR", roff_escape(&a.get_id().to_string().to_uppercase())),
            })
            .collect();
        let name = format!("{prefix}{}", sub.get_name());
        if nested && sub.has_subcommands() {
            commands(out, sub, &format!("{name} "), true);
            continue;
        }
        let _ = writeln!(out, ".TP\n\\fB{}\\fR {}", roff_escape(&name), args.join(" "));
        let _ = writeln!(out, "{}", roff_escape(&sub.get_about().map(|a| a.to_string()).unwrap_or_default()));
        for a in sub.get_arguments().filter(|a| !a.is_hide_set() && a.get_id() != "help") {
            if let (Some(long), Some(help)) = (a.get_long(), a.get_help()) {
                let _ = writeln!(out, ".RS\n.TP\n\\-\\-{}\n{}\n.RE", roff_escape(long), roff_escape(&help.to_string()));
            }
        }
    }
}

/// `hastack-console(8)`: the console's binary, from the clap definition of `hastack console`.
pub fn console_man_page(cmd: &clap::Command) -> String {
    let mut out = String::new();
    header(&mut out, "hastack-console", 8, "System Administration");
    out.push_str(
        ".SH NAME\nhastack\\-console \\- the enterprise console: many clusters' alert reports, the fleet live\n",
    );
    out.push_str(".SH SYNOPSIS\n\\fBhastack console\\fR \\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n");
    out.push_str(".SH DESCRIPTION\n");
    paragraphs(
        &mut out,
        "The console stores the reports the clusters' alert agents send, derives incidents and \
         failover statistics, and serves the fleet's pages and a JSON API (README.md, section \
         Console; docs/console-api.md). It is its own binary, so that the agents' binary links none \
         of it: hastack console runs /usr/sbin/hastack-console with the same arguments (beside \
         the running hastack first); run it as hastack console.",
    );
    out.push_str(".SH COMMANDS\n");
    if let Some(console) = cmd.find_subcommand("console") {
        commands(&mut out, console, "", true);
    }
    out.push_str(".SH ENVIRONMENT\n.TP\nHASTACK_CONSOLE_DB\nthe database, as \\-\\-db takes it\n");
    out.push_str(".SH FILES\n.TP\n/var/lib/hastack/console/console.db\nthe default database (SQLite)\n");
    out.push_str(".SH SEE ALSO\n\\fBhastack\\fR(8)\n");
    out
}

/// Writes `man/man7/*.7`, `man/man8/{hastack,hastack-console}.8` and `completions/{hastack.bash,_hastack,hastack.fish}`
/// under `dir`.
pub fn write_all(dir: &Path, cmd: clap::Command) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    let mut put = |rel: String, text: String| -> Result<()> {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().expect("has a parent"))
            .with_context(|| format!("cannot create {}", path.display()))?;
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for agent in crate::agents::AGENTS {
        let spec = agent.spec();
        put(format!("man/man7/{}.7", agent_page_name(spec)), agent_man_page(spec))?;
    }
    for (name, page) in crate::fence::man_pages() {
        put(format!("man/man8/{name}.8"), page)?;
    }
    put("man/man8/hastack.8".into(), cli_man_page(&cmd))?;
    put("man/man8/hastack-console.8".into(), console_man_page(&cmd))?;
    for (shell, file) in [
        (clap_complete::Shell::Bash, "completions/hastack.bash"),
        (clap_complete::Shell::Zsh, "completions/_hastack"),
        (clap_complete::Shell::Fish, "completions/hastack.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "hastack", &mut buf);
        put(file.into(), String::from_utf8(buf).context("completion is not UTF-8")?)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::{ActionSpec, ParamSpec};

    static SPEC: AgentSpec = AgentSpec {
        name: "demo",
        shortdesc: "Manages a demo-thing",
        longdesc: "First paragraph.\n\n.starts with a dot\\",
        params: &[
            ParamSpec::string("ip").required().unique().short("Address").long("The address."),
            ParamSpec::select("mode", &["a", "b"]).default("a").short("Mode"),
        ],
        actions: &[ActionSpec::new("start", "20s"), ActionSpec::monitor("10s", "20s")],
    };

    #[test]
    fn agent_page_has_the_table_in_it() {
        let page = agent_man_page(&SPEC);
        assert!(page.contains(".SH NAME\nocf_hastack_demo \\- Manages a demo\\-thing\n"), "{page}");
        assert!(page.contains("\\fBip\\fR"));
        assert!(page.contains("(required, unique, string, no default)"));
        assert!(page.contains("Allowed values: a, b."));
        assert!(page.contains("(optional, string, default \"a\")"));
        assert!(page.contains("\\&.starts with a dot\\e"));
        assert!(page.contains("timeout 20s, interval 10s, depth 0"));
        assert!(page.contains("pcs resource create my\\-demo ocf:hastack:demo ip=..."));
    }
}
