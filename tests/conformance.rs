//! Meta-data against the readers users have: ocf-tester's DTD, pcs's OCF 1.1 RelaxNG, and
//! Pacemaker's own crm_resource (agents installed under /usr/lib/ocf/resource.d/hastack).

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const DTD: &str = "/usr/share/resource-agents/ra-api-1.dtd";
const PCS_RNG: &str = "/usr/share/pcs/data/ocf-1.1.rng";

fn ocf_agents() -> Vec<String> {
    let out = run_with_deadline(Command::new(bin()).arg("list"), Duration::from_secs(5));
    out.stdout
        .lines()
        .filter(|l| l.contains(" ocf "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn metadata_file(agent: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let out = run_with_deadline(Command::new(agent_path(agent)).arg("meta-data"), Duration::from_secs(5));
    out.expect(0);
    let path = dir.join(format!("{agent}.xml"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

#[test]
fn metadata_is_valid_for_ocf_tester_dtd_and_pcs_rng() {
    if !need_program("xmllint", "libxml2-utils")
        || !std::path::Path::new(DTD).exists() && !skip_or_fail("ra-api-1.dtd missing (resource-agents)")
    {
        return;
    }
    if !std::path::Path::new(PCS_RNG).exists() && !skip_or_fail("pcs's ocf-1.1.rng missing (pcs)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for agent in ocf_agents() {
        let xml = metadata_file(&agent, dir.path());
        let x = xml.to_str().unwrap();
        let dtd =
            run_with_deadline(Command::new("xmllint").args(["--noout", "--dtdvalid", DTD, x]), Duration::from_secs(10));
        assert_eq!(dtd.code, 0, "{agent}: DTD: {}", dtd.stderr);
        let rng = run_with_deadline(
            Command::new("xmllint").args(["--noout", "--relaxng", PCS_RNG, x]),
            Duration::from_secs(10),
        );
        assert_eq!(rng.code, 0, "{agent}: pcs RNG: {}", rng.stderr);
    }
}

/// Installs the agents into the real OCF root, where Pacemaker's tools look.
pub fn install_system_links() {
    let out = run_with_deadline(Command::new(bin()).args(["install", "--root", "/"]), Duration::from_secs(10));
    out.expect(0);
}

#[test]
fn crm_resource_lists_and_describes_every_agent() {
    if !need_root("installing agents under /usr/lib/ocf") || !need_program("crm_resource", "pacemaker-cli-utils") {
        return;
    }
    install_system_links();
    let list =
        run_with_deadline(Command::new("crm_resource").args(["--list-agents", "ocf:hastack"]), Duration::from_secs(20));
    list.expect(0);
    for agent in ocf_agents() {
        assert!(list.stdout.lines().any(|l| l.trim() == agent), "{agent} not listed:\n{}", list.stdout);
        let meta = run_with_deadline(
            Command::new("crm_resource").args(["--show-metadata", &format!("ocf:hastack:{agent}")]),
            Duration::from_secs(20),
        );
        meta.expect(0);
        assert!(meta.stdout.contains(&format!("name=\"{agent}\"")));
    }
}

#[test]
fn pcs_describes_every_agent() {
    if !need_root("installing agents under /usr/lib/ocf") || !need_program("pcs", "pcs") {
        return;
    }
    install_system_links();
    for agent in ocf_agents() {
        let out = run_with_deadline(
            Command::new("pcs").args(["resource", "describe", &format!("ocf:hastack:{agent}")]),
            Duration::from_secs(60),
        );
        out.expect(0);
        assert!(!out.stderr.contains("Warning") && !out.stderr.contains("Error"), "{agent}: {}", out.stderr);
        assert!(out.stdout.contains("Resource options:"), "{agent}: {}", out.stdout);
    }
}
