//! An agent's environment as Pacemaker (or an administrator) sets it: the first line names the
//! agent, the others are `NAME=VALUE` variables (`OCF_RESKEY_` is added to a name that has no
//! prefix). Runs what every action runs first: the parameter table's checks and the agent's own
//! level-0 validation (what `hastack config` calls too), and reads every typed value.
//!
//! Properties: nothing panics (a panic inside the agent's checks would be caught by the
//! dispatcher and become "internal error"; the fuzzer aborts on it first); a value refused by
//! the table names its parameter; a table that passed gives every typed value without failing.

#![no_main]

use hastack::agents::AGENTS;
use hastack::ocf::agent::validate_syntax;
use hastack::ocf::{OcfEnv, OcfStatus, ParamType, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let agent = AGENTS
        .iter()
        .find(|a| a.spec().name == first.trim())
        .unwrap_or(&AGENTS[data.first().map_or(0, |b| *b as usize) % AGENTS.len()]);
    let vars = hastack_fuzz::pairs(rest).into_iter().map(|(k, v)| {
        let known = ["OCF_", "HA_", "PCMK_"].iter().any(|p| k.starts_with(p)) || k == "trace_ra";
        (if known { k } else { format!("OCF_RESKEY_{k}") }, v)
    });
    let env = OcfEnv::from_vars(vars);

    // What the dispatcher reads of the environment besides the parameters.
    let _ = (env.timeout(), env.interval(), env.is_probe("monitor"), env.check_level(), env.resource());
    let _ = (env.clone_instance(), env.clone_max(), env.clone_node_max(), env.promotable());
    let _ = (env.promoted_max(), env.promoted_node_max(), env.globally_unique(), env.notify_enabled());
    let _ = (env.notify_type(), env.notify_operation(), env.notify_list("promote_uname"));
    let _ = hastack::ocf::Deadline::from_timeout(env.timeout().unwrap_or(hastack::ocf::deadline::DEFAULT_TIMEOUT));

    let table = agent.spec().params;
    match Params::from_env(table, &env.params) {
        Ok(params) => {
            for spec in table {
                let _ = params.get(spec.name);
                let _ = params.is_set(spec.name, &env.params);
                match spec.ty {
                    ParamType::Integer { min, max } => {
                        if let Some(n) = params.int(spec.name) {
                            assert!(min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m), "{} = {n}", spec.name);
                        }
                    }
                    ParamType::Boolean => {
                        let _ = params.bool(spec.name);
                    }
                    ParamType::Select(choices) => {
                        if let Some(v) = params.get(spec.name) {
                            assert!(choices.contains(&v), "{} = {v}", spec.name);
                        }
                    }
                    ParamType::String => {}
                }
                if spec.required || spec.default.is_some() {
                    let _ = params.str(spec.name);
                }
            }
            let _ = params.describe();
        }
        Err(e) => {
            assert_eq!(e.status, OcfStatus::ErrConfigured);
            assert!(
                table.iter().any(|p| e.reason.contains(&format!("'{}'", p.name))),
                "the reason names no parameter: {}",
                e.reason
            );
        }
    }

    // The agent's own checks at level 0, through the entry point `hastack config` uses.
    let meta = env.meta.iter().map(|(k, v)| (k.replace('_', "-"), v.clone())).collect();
    if let Err(e) = validate_syntax(*agent, &env.params, &meta) {
        assert!(!e.reason.contains("internal error"), "{}", e.reason);
        assert!(!e.reason.trim().is_empty());
    }
});
