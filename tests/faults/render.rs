//! The matrix as files: each agent's test writes its row (`target/fault-matrix/<agent>.tsv`),
//! then renders `target/fault-matrix.md` from every row there, in the agents' order.

use std::path::PathBuf;

use super::{Cell, Expected, Fault};

const AGENTS: [&str; 9] =
    ["haproxy", "apache", "nginx", "tomcat", "app", "postgresql", "mariadb", "activemq", "rabbitmq"];

fn target() -> PathBuf {
    // CARGO_TARGET_TMPDIR is target/tmp.
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().to_path_buf()
}

fn clean(text: &str) -> String {
    text.replace(['\t', '\n'], " ").replace('|', "\\|")
}

/// One line per cell: agent, fault, expected code, expected fragment (or n/a reason), code,
/// time (ms), budget (ms), verdict, exit reason.
pub fn write_row(agent: &str, cells: &[Cell]) {
    let dir = target().join("fault-matrix");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tsv = String::new();
    for c in cells {
        let (want, fragment) = match &c.expected {
            Expected::Code(code, f) => (code.to_string(), f.join("` `")),
            Expected::NotApplicable(why) => ("n/a".to_string(), why.to_string()),
        };
        let (code, ms, budget, reason) = match &c.got {
            Some(g) => (
                g.code.to_string(),
                g.elapsed.as_millis().to_string(),
                g.budget.as_millis().to_string(),
                g.reason.clone(),
            ),
            None => (String::new(), String::new(), String::new(), String::new()),
        };
        let verdict = match (&c.expected, &c.failure) {
            (Expected::NotApplicable(_), _) => "n/a".to_string(),
            (_, None) => "ok".to_string(),
            (_, Some(f)) => format!("FAIL: {f}"),
        };
        let fields = [c.fault.key().to_string(), want, fragment, code, ms, budget, verdict, reason];
        tsv.push_str(&format!("{agent}\t{}\n", fields.iter().map(|f| clean(f)).collect::<Vec<_>>().join("\t")));
    }
    std::fs::write(dir.join(format!("{agent}.tsv")), tsv).unwrap();
    render_all();
}

/// `target/fault-matrix.md`: the grid (agent × fault → code and time), then every cell with its
/// expectation, budget and exit reason.
fn render_all() {
    let dir = target().join("fault-matrix");
    let rows: Vec<Vec<Vec<String>>> = AGENTS
        .iter()
        .filter_map(|a| std::fs::read_to_string(dir.join(format!("{a}.tsv"))).ok())
        .map(|t| t.lines().map(|l| l.split('\t').map(str::to_string).collect()).collect())
        .collect();
    let mut md = String::from("| agent |");
    for f in Fault::ALL {
        md.push_str(&format!(" {} |", f.title()));
    }
    md.push_str("\n|---|");
    md.push_str(&"---|".repeat(Fault::ALL.len()));
    md.push('\n');
    for row in &rows {
        md.push_str(&format!("| {} |", row[0][0]));
        for cell in row {
            md.push_str(&format!(" {} |", grid_cell(cell)));
        }
        md.push('\n');
    }
    md.push_str("\n| agent | fault | expected | got | time / budget | exit reason |\n|---|---|---|---|---|---|\n");
    for cell in rows.iter().flatten() {
        let [agent, fault, want, fragment, code, ms, budget, verdict, reason] = &cell[..] else { continue };
        if want == "n/a" {
            md.push_str(&format!("| {agent} | {fault} | n/a: {fragment} | | | |\n"));
            continue;
        }
        let mark = if verdict == "ok" { String::new() } else { format!(" **{verdict}**") };
        md.push_str(&format!(
            "| {agent} | {fault} | {want} `{fragment}` | {code}{mark} | {} / {} s | {} |\n",
            seconds(ms),
            seconds(budget),
            shorten(reason, 200)
        ));
    }
    std::fs::write(target().join("fault-matrix.md"), md).unwrap();
}

fn grid_cell(cell: &[String]) -> String {
    let [_, _, want, _, code, ms, _, verdict, _] = cell else { return "?".into() };
    if want == "n/a" {
        return "n/a".into();
    }
    let shown = if code.is_empty() { "-".to_string() } else { format!("{code} · {} s", seconds(ms)) };
    if verdict == "ok" {
        shown
    } else {
        format!("**FAIL** {shown} (expected {want})")
    }
}

fn seconds(ms: &str) -> String {
    ms.parse::<f64>().map(|m| format!("{:.2}", m / 1000.0)).unwrap_or_else(|_| "-".into())
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
