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
