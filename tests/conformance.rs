//! Meta-data against the readers users have: ocf-tester's DTD, pcs's OCF RelaxNG schemas, and
//! Pacemaker's own crm_resource (agents installed under /usr/lib/ocf/resource.d/hastack).

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const DTD: &str = "/usr/share/resource-agents/ra-api-1.dtd";
/// pcs validates meta-data with the RelaxNG of the OCF version it claims (1.0, see
/// `ocf::metadata::OCF_VERSION`); both must accept ours.
const PCS_RNGS: [&str; 2] = ["/usr/share/pcs/data/ocf-1.0.rng", "/usr/share/pcs/data/ocf-1.1.rng"];

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
    if PCS_RNGS.iter().any(|r| !std::path::Path::new(r).exists()) && !skip_or_fail("pcs's ocf-1.*.rng missing (pcs)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for agent in ocf_agents() {
        let xml = metadata_file(&agent, dir.path());
        let x = xml.to_str().unwrap();
        let dtd =
            run_with_deadline(Command::new("xmllint").args(["--noout", "--dtdvalid", DTD, x]), Duration::from_secs(10));
        assert_eq!(dtd.code, 0, "{agent}: DTD: {}", dtd.stderr);
        for schema in PCS_RNGS {
            let rng = run_with_deadline(
                Command::new("xmllint").args(["--noout", "--relaxng", schema, x]),
                Duration::from_secs(10),
            );
            assert_eq!(rng.code, 0, "{agent}: {schema}: {}", rng.stderr);
        }
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

/// A parameter of an agent's meta-data: its name and whether it is unique and required.
struct MetaParam {
    name: String,
    unique: bool,
    required: bool,
}

fn meta_params(xml: &str) -> Vec<MetaParam> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut params = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) if e.name().as_ref() == b"parameter" => {
                let attr = |n: &str| {
                    e.try_get_attribute(n)
                        .unwrap()
                        .map(|a| a.unescape_value().unwrap().into_owned())
                        .unwrap_or_default()
                };
                params.push(MetaParam {
                    name: attr("name"),
                    unique: attr("unique") == "1",
                    required: attr("required") == "1",
                });
            }
            Event::Eof => break,
            _ => {}
        }
    }
    params
}

/// pcs refuses a second resource of an agent with the value of a `unique` parameter another
/// resource of that agent already has (as it refuses two IPaddr2 with the same ip): for every
/// unique parameter of every agent, through `pcs -f` on a CIB file. pcs runs with this build's
/// links (`hastack install`) on /usr/lib/ocf/resource.d/hastack in a mount namespace of its own:
/// tests of other builds relink the machine's directory meanwhile.
#[test]
fn pcs_refuses_a_duplicate_value_of_every_unique_parameter() {
    if !need_root("a private mount of the agent directory")
        || !need_program("pcs", "pcs")
        || !need_program("cibadmin", "pacemaker-cli-utils")
    {
        return;
    }
    let system = std::path::Path::new("/usr/lib/ocf/resource.d/hastack");
    std::fs::create_dir_all(system).unwrap();
    let ours = install_root().join("usr/lib/ocf/resource.d/hastack");
    let dir = tempfile::tempdir().unwrap();
    let pcs = |cib: &std::path::Path, args: &[String]| {
        let mut cmd = Command::new("pcs");
        cmd.arg("-f").arg(cib).args(args);
        in_private_mounts(&mut cmd, vec![MountStep::Bind(ours.clone(), system.to_path_buf())]);
        run_with_deadline(&mut cmd, Duration::from_secs(60))
    };
    // One agent's unique parameters, each refused when repeated; returns how many.
    let check = |agent: &str| -> usize {
        let meta = run_with_deadline(Command::new(agent_path(agent)).arg("meta-data"), Duration::from_secs(5));
        meta.expect(0);
        let params = meta_params(&meta.stdout);
        let uniques: Vec<&MetaParam> = params.iter().filter(|p| p.unique).collect();
        if uniques.is_empty() {
            return 0;
        }
        let cib = dir.path().join(format!("{agent}.xml"));
        let empty = run_with_deadline(Command::new("cibadmin").arg("--empty"), Duration::from_secs(10));
        empty.expect(0);
        std::fs::write(&cib, &empty.stdout).unwrap();
        let value = |n: u32| if agent == "vip" { format!("192.0.2.{n}") } else { format!("/srv/hst/{n}") };
        // A resource whose parameter `shared` has the value of "first" (10), the others `n`.
        let create = |id: &str, shared: Option<&str>, n: u32| {
            let mut args: Vec<String> =
                vec!["resource".into(), "create".into(), id.into(), format!("ocf:hastack:{agent}")];
            for p in params.iter().filter(|p| p.unique || p.required) {
                let v = if shared == Some(p.name.as_str()) { value(10) } else { value(n) };
                args.push(format!("{}={v}", p.name));
            }
            pcs(&cib, &args)
        };
        create("first", None, 10).expect(0);
        for (i, unique) in uniques.iter().enumerate() {
            let dup = create(&format!("dup{i}"), Some(&unique.name), 20 + i as u32);
            assert_eq!(dup.code, 1, "{agent}: pcs accepted a second '{}' of the same value: {dup:?}", unique.name);
            assert!(
                dup.stderr.contains(&format!("of option '{}' is not unique", unique.name)),
                "{agent}: {}",
                dup.stderr
            );
        }
        if agent == "vip" {
            create("other", None, 11).expect(0);
        }
        uniques.len()
    };
    // pcs costs about a second of CPU a call: two agents at a time.
    let agents = ocf_agents();
    let (left, right) = agents.split_at(agents.len() / 2);
    let checked: usize = std::thread::scope(|s| {
        let a = s.spawn(|| left.iter().map(|agent| check(agent)).sum::<usize>());
        let b = s.spawn(|| right.iter().map(|agent| check(agent)).sum::<usize>());
        a.join().unwrap() + b.join().unwrap()
    });
    assert!(checked >= 14, "only {checked} unique parameters found");
}
