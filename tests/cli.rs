//! The `hastack` CLI and the argv[0] dispatch.

use std::process::Command;

use crate::support::*;

fn hastack(args: &[&str]) -> Outcome {
    run_with_deadline(Command::new(bin()).args(args), std::time::Duration::from_secs(10))
}

fn ocf_agents() -> Vec<String> {
    let out = hastack(&["list"]);
    out.expect(0);
    out.stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("ocf"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn list_shows_every_applet_with_kind_and_path() {
    let out = hastack(&["list"]);
    out.expect(0);
    for line in out.stdout.lines() {
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
        assert!(ocf_agents().iter().any(|a| a == agent), "{agent} missing from:\n{}", out.stdout);
    }
    assert!(
        out.stdout.lines().any(|l| l.split_whitespace().eq(["alert", "alert", "/usr/lib/hastack/alert"])),
        "{}",
        out.stdout
    );
}

#[test]
fn install_is_idempotent_and_links_to_the_binary() {
    let root = tempfile::tempdir().unwrap();
    let first = hastack(&["install", "--root", root.path().to_str().unwrap()]);
    first.expect(0);
    for agent in ocf_agents() {
        let link = root.path().join("usr/lib/ocf/resource.d/hastack").join(&agent);
        assert_eq!(std::fs::read_link(&link).unwrap(), bin().canonicalize().unwrap_or(bin()), "{agent}");
    }
    let second = hastack(&["install", "--root", root.path().to_str().unwrap()]);
    second.expect(0);
    assert!(second.stdout.is_empty(), "a second install changed links: {}", second.stdout);

    // A link pointing elsewhere is corrected.
    let link = root.path().join("usr/lib/ocf/resource.d/hastack/vip");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("/bin/false", &link).unwrap();
    hastack(&["install", "--root", root.path().to_str().unwrap()]).expect(0);
    assert_ne!(std::fs::read_link(&link).unwrap(), std::path::PathBuf::from("/bin/false"));
}

#[test]
fn every_agent_answers_meta_data_without_environment_and_rejects_unknown_actions() {
    for agent in ocf_agents() {
        let mut cmd = Command::new(agent_path(&agent));
        cmd.arg("meta-data").env_clear();
        let out = run_with_deadline(&mut cmd, std::time::Duration::from_secs(5));
        out.expect(0);
        assert!(out.stdout.contains(&format!("<resource-agent name=\"{agent}\"")), "{agent}");

        AgentRun::new(&agent).run("frobnicate").expect(3).reason_contains("frobnicate");
        // The debug entry point behaves the same.
        run_with_deadline(Command::new(bin()).args(["ocf", &agent, "frobnicate"]), std::time::Duration::from_secs(5))
            .expect(3);
        run_with_deadline(Command::new(bin()).args(["ocf", &agent, "meta-data"]), std::time::Duration::from_secs(5))
            .expect(0);
    }
}

#[test]
fn unknown_agent_in_debug_entry_point_is_an_error() {
    let out = hastack(&["ocf", "nosuch", "monitor"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("unknown OCF agent 'nosuch'"), "{}", out.stderr);
}
