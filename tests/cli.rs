//! The `hastack` CLI and the argv[0] dispatch.

use std::time::Duration;

use predicates::prelude::*;

use crate::support::*;

fn hastack(args: &[&str]) -> assert_cmd::assert::Assert {
    hastack_cmd(Duration::from_secs(10)).args(args).assert()
}

fn stdout(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

fn ocf_agents() -> Vec<String> {
    listed_ocf_agents()
}

#[test]
fn list_shows_every_applet_with_kind_and_path() {
    let out = stdout(&hastack(&["list"]).code(0));
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "{line}");
        match fields[1] {
            "ocf" => assert_eq!(fields[2], format!("/usr/lib/ocf/resource.d/hastack/{}", fields[0])),
            "fence" => assert_eq!(fields[2], format!("/usr/sbin/{}", fields[0])),
            "alert" => assert_eq!(fields[2], format!("/usr/lib/hastack/{}", fields[0])),
            other => panic!("unknown kind {other}"),
        }
    }
    for agent in ["vip", "filesystem"] {
        assert!(ocf_agents().iter().any(|a| a == agent), "{agent} missing from:\n{out}");
    }
    assert!(out.lines().any(|l| l.split_whitespace().eq(["alert", "alert", "/usr/lib/hastack/alert"])), "{out}");
}

#[test]
fn install_is_idempotent_and_links_to_the_binary() {
    let root = tempfile::tempdir().unwrap();
    let root_arg = root.path().to_str().unwrap();
    hastack(&["install", "--root", root_arg]).code(0);
    for agent in ocf_agents() {
        let link = root.path().join("usr/lib/ocf/resource.d/hastack").join(&agent);
        assert_eq!(std::fs::read_link(&link).unwrap(), bin().canonicalize().unwrap_or(bin()), "{agent}");
    }
    // A second install changes no link.
    hastack(&["install", "--root", root_arg]).code(0).stdout(predicate::str::is_empty());

    // A link pointing elsewhere is corrected.
    let link = root.path().join("usr/lib/ocf/resource.d/hastack/vip");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/bin/false", &link).unwrap();
    hastack(&["install", "--root", root_arg]).code(0);
    assert_ne!(std::fs::read_link(&link).unwrap(), std::path::PathBuf::from("/bin/false"));
}

#[test]
fn every_agent_answers_meta_data_without_environment_and_rejects_unknown_actions() {
    for agent in ocf_agents() {
        program_cmd(agent_path(&agent), Duration::from_secs(5))
            .arg("meta-data")
            .env_clear()
            .assert()
            .code(0)
            .stdout(predicate::str::contains(format!("<resource-agent name=\"{agent}\"")));

        AgentRun::new(&agent).run("frobnicate").expect(3).reason_contains("frobnicate");
        // The debug entry point behaves the same.
        hastack_cmd(Duration::from_secs(5)).args(["ocf", &agent, "frobnicate"]).assert().code(3);
        hastack_cmd(Duration::from_secs(5)).args(["ocf", &agent, "meta-data"]).assert().code(0);
    }
}

#[test]
fn unknown_agent_in_debug_entry_point_is_an_error() {
    hastack(&["ocf", "nosuch", "monitor"]).code(1).stderr(predicate::str::contains("unknown OCF agent 'nosuch'"));
}

/// The console is its own binary (`hastack console` execs `hastack-console`): the agents' binary
/// must not carry its HTTP server, async runtime, databases or pages (their relocations and page
/// faults made the alert's routine event 2.4x `/bin/true`; bench/console.sh startup).
#[test]
fn the_agents_binary_links_none_of_the_console() {
    if !need_program("nm", "binutils") {
        return;
    }
    let symbols = |binary: &std::path::Path| sh("nm", &["-C", binary.to_str().unwrap()]);
    let console_crates = ["tokio::", "axum::", "hyper::", "rusqlite::", "libsqlite3", "tokio_postgres::", "maud::"];
    let console_code = |line: &&str| {
        console_crates.iter().any(|c| line.contains(c))
            || (line.contains("hastack::console::")
                && !line.contains("hastack::console::args::")
                && !line.contains("hastack::console::launch::"))
    };
    let agents = symbols(&bin());
    let linked: Vec<&str> = agents.lines().filter(console_code).take(20).collect();
    assert!(linked.is_empty(), "{} links console code:\n{}", bin().display(), linked.join("\n"));
    // The check can see the console where it is.
    let console = symbols(std::path::Path::new(env!("CARGO_BIN_EXE_hastack-console")));
    for c in ["tokio::", "axum::", "rusqlite::", "hastack::console::server::"] {
        assert!(console.contains(c), "no {c} symbol in hastack-console");
    }
}

/// `hastack console` without `hastack-console` beside it or in /usr/sbin (a tmpfs hides the
/// installed one): the shell's "command not found" code and where it looked.
#[test]
fn console_without_its_binary_says_where_it_looked_and_exits_127() {
    if !need_root("a private mount over /usr/sbin") {
        return;
    }
    let dir = tempfile::Builder::new().prefix("hst-noconsole").tempdir().unwrap();
    let alone = dir.path().join("hastack");
    std::fs::copy(bin(), &alone).unwrap();
    let mut cmd = std::process::Command::new(&alone);
    cmd.args(["console", "cluster", "list", "--db", "sqlite:///nonexistent/console.db"]);
    in_private_mounts(&mut cmd, vec![MountStep::Tmpfs("/usr/sbin".into())]);
    let out = run_with_deadline(&mut cmd, std::time::Duration::from_secs(10));
    out.expect(127);
    let beside = dir.path().join("hastack-console");
    assert!(
        out.stderr.contains("the console is not installed")
            && out.stderr.contains(&beside.display().to_string())
            && out.stderr.contains("/usr/sbin/hastack-console"),
        "{}",
        out.stderr
    );
}

/// Beside it, it is run with the arguments after `console`, as `hastack console` would: same
/// output, same exit code (a usage error is clap's 2 from `hastack` itself, before any exec).
#[test]
fn console_runs_hastack_console_beside_the_binary_with_its_arguments() {
    let dir = tempfile::Builder::new().prefix("hst-console-beside").tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("console.db").display());
    let run = |args: &[&str]| run_with_deadline(std::process::Command::new(bin()).args(args), Duration::from_secs(30));
    let out = run(&["console", "cluster", "add", "store-1", "--db", &db]);
    out.expect(0);
    assert!(out.stdout.starts_with("hsc_"), "{}", out.stdout);
    let list = run(&["console", "cluster", "list", "--db", &db]);
    list.expect(0);
    assert!(list.stdout.lines().any(|l| l.starts_with("store-1 ")), "{}", list.stdout);
    let bad = run(&["console", "cluster", "frobnicate"]);
    bad.expect(2);
    assert!(bad.stderr.contains("Usage: hastack console cluster"), "{}", bad.stderr);
}
