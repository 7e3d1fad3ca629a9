//! The alert agent's environment as Pacemaker sets it (src/alert): `CRM_alert_*` variables and
//! the alert's instance attributes, one `NAME=VALUE` per line (the prefix is optional). Runs
//! what a run does before it sends anything: the routine decision (the same rule the ELF
//! constructor's early exit applies), the classification, the recipient's channel, the
//! attributes, the fencing description, the report and its JSON.
//!
//! Properties: nothing panics; an event is ignored exactly when the shared routine rule says
//! so; the report is JSON that carries every variable's value unchanged (the recipient left
//! out); a fencing description built from parts parses back into those parts; every bad
//! attribute is named in its message and falls back to the default.

#![no_main]

use std::collections::BTreeMap;

use hastack::alert::clock::Stamp;
use hastack::alert::event::{decide, parse_fencing_desc, routine, AlertEnv, Decision};
use hastack::alert::report::{Cluster, Event, Report, Reporter, Time};
use hastack::alert::settings::{parse_duration, Channel, Settings};
use hastack::alert::snapshot::Snapshot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs = hastack_fuzz::pairs(&text);
    let env = AlertEnv::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    // Later lines win, as in an environment.
    let vars: BTreeMap<String, String> =
        pairs.iter().map(|(k, v)| (k.strip_prefix("CRM_alert_").unwrap_or(k).to_string(), v.clone())).collect();

    let decision = decide(&env);
    let why = routine(|name| env.get(name));
    assert_eq!(matches!(decision, Decision::Ignore(_)), why.is_some(), "{decision:?}");
    let classified = match decision {
        Decision::Ignore(_) => return,
        Decision::Report(c) => c,
    };
    assert!(!classified.summary.is_empty());

    let _ = Channel::from_recipient(env.recipient());
    let (settings, problems) = Settings::read(|name| vars.get(name).cloned());
    assert!(settings.deadline.as_secs() <= 600 && !settings.deadline.is_zero());
    for p in &problems {
        assert!(vars.keys().any(|k| p.starts_with(&format!("{k}='"))), "{p}");
    }
    for v in vars.values() {
        let _ = parse_duration(v);
    }

    let time = Time::of(&env, Stamp { epoch: 1_700_000_000, usec: 0 });
    assert!(time.usec < 1_000_000);
    let event = Event::new(&env, &classified, time, Vec::new());
    let cluster = Cluster::identify(env.get("cluster_id").map(str::to_string), None);
    let reporter = Reporter { node: "node1".into(), hostname: "node1".into() };
    let report = Report::new(cluster, reporter, event, Snapshot::missing("fuzz"));
    let json: serde_json::Value = serde_json::from_slice(&report.to_json()).expect("the report is JSON");
    let raw = &json["event"]["raw"];
    for (k, v) in &vars {
        if k == "recipient" {
            assert!(raw.get(k).is_none(), "the recipient is in the report");
        } else {
            assert_eq!(raw[k].as_str(), Some(v.as_str()), "variable {k}");
        }
    }

    // The fencing description: parts without the separators parse back.
    let desc = env.get("desc").unwrap_or("");
    let _ = parse_fencing_desc(desc);
    let part = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect() };
    let action = part(vars.get("kind").map_or("off", String::as_str));
    let (target, who) = (part(env.get("node").unwrap_or("n2")), part(desc));
    if [&action, &target, &who].iter().all(|p| !p.is_empty()) {
        let built = format!("Operation {action} of {target} by {who} for {who}@{who}: {who} ({who}) (ref={who})");
        let f = parse_fencing_desc(&built).unwrap_or_else(|| panic!("{built}"));
        assert_eq!((f.action.as_str(), f.target.as_str(), f.executioner.as_str()), (&*action, &*target, &*who));
        assert_eq!((f.client.as_str(), f.origin.as_str(), f.status.as_str()), (&*who, &*who, &*who));
        assert_eq!((f.reason.as_deref(), f.reference.as_deref()), (Some(&*who), Some(&*who)));
    }
});
