//! `crm_mon --output-as=xml --inactive` as the alert agent reads it for its findings
//! (src/alert/snapshot.rs, src/alert/findings.rs): another Pacemaker version's output, a
//! truncated one, or whatever the command printed.
//!
//! Properties: nothing panics; a group found to have no node left has a reason for every node
//! of the cluster, and none when one node could still take it.

#![no_main]

use hastack::alert::findings::{all_without_node, no_node_left};
use hastack::alert::snapshot::Facts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Some(facts) = Facts::parse(&text) else { return };
    let first = facts.nodes.first().map(|n| n.name.clone()).unwrap_or_default();
    for gone in [vec![], vec![first.as_str()]] {
        for finding in all_without_node(&facts, &gone) {
            assert_eq!(finding.nodes.len(), facts.nodes.len());
            let _ = finding.sentence();
            let _ = serde_json::to_string(&finding).expect("a finding serialises");
        }
    }
    for unit in &facts.units {
        for m in unit.members.iter().filter(|m| !m.contains(':')) {
            assert!(facts.unit_of(m).is_some(), "{m}");
        }
        let _ = no_node_left(&facts, unit, &[]);
    }
});
