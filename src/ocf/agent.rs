//! The action dispatcher every resource agent goes through, and the trait agents implement.
//!
//! The runtime owns everything the OCF contract fixes: which actions exist (from the agent's
//! table), meta-data, parameter syntax, the time budget, the exit reason and the final log line.
//! An agent only says what start, stop and monitor mean for its service.

use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ocf::log::Level;
pub use crate::ocf::metadata::{ActionSpec, AgentSpec};
use crate::ocf::{Deadline, Logger, OcfEnv, OcfError, OcfResult, OcfStatus, Params};

/// Everything one action of an agent needs.
pub struct Ctx<'a> {
    pub action: &'a str,
    pub env: &'a OcfEnv,
    pub params: Params,
    pub deadline: Deadline,
    pub log: &'a Logger,
}

impl Ctx<'_> {
    /// `OCF_CHECK_LEVEL` for monitor and validate-all.
    pub fn check_level(&self) -> u32 {
        self.env.check_level()
    }
    /// A monitor with interval 0: Pacemaker asking whether the resource runs here.
    pub fn is_probe(&self) -> bool {
        self.env.is_probe(self.action)
    }
    /// Whether the administrator gave this parameter (not just its default).
    pub fn is_set(&self, name: &str) -> bool {
        self.params.is_set(name, &self.env.params)
    }
}

/// Validation depth, as `OCF_CHECK_LEVEL` gives it to validate-all.
pub const VALIDATE_SYNTAX: u32 = 0;
/// Level 10: also check this host (binaries, devices, interfaces).
pub const VALIDATE_HOST: u32 = 10;

pub trait Agent: Sync {
    fn spec(&self) -> &'static AgentSpec;

    /// Checks beyond the table's types. Level 0: the parameters alone (inherently wrong: 6).
    /// Level 10: also this host (software missing: 5; a parameter invalid here: 2).
    fn validate(&self, _ctx: &Ctx, _level: u32) -> OcfResult<()> {
        Ok(())
    }
    fn start(&self, ctx: &Ctx) -> OcfResult;
    fn stop(&self, ctx: &Ctx) -> OcfResult;
    fn monitor(&self, ctx: &Ctx) -> OcfResult;
    fn promote(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("promote is not implemented"))
    }
    fn demote(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("demote is not implemented"))
    }
    fn notify(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("notify is not implemented"))
    }
    fn reload(&self, _ctx: &Ctx) -> OcfResult {
        Err(OcfError::unimplemented("reload is not implemented"))
    }
}

/// The actions the runtime knows how to route.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    MetaData,
    ValidateAll,
    Promote,
    Demote,
    Notify,
    Reload,
    Usage,
}

impl Action {
    pub fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "start" => Action::Start,
            "stop" => Action::Stop,
            // `status` is the LSB-era name some tools still send.
            "monitor" | "status" => Action::Monitor,
            "meta-data" | "meta_data" => Action::MetaData,
            "validate-all" => Action::ValidateAll,
            "promote" => Action::Promote,
            "demote" => Action::Demote,
            "notify" => Action::Notify,
            "reload" => Action::Reload,
            "usage" | "help" | "--help" | "-h" => Action::Usage,
            _ => return None,
        })
    }
}

/// Runs one agent action with the process environment; prints meta-data or the exit reason;
/// returns the exit code.
pub fn run_agent(agent: &dyn Agent, action: Option<&str>) -> i32 {
    let env = OcfEnv::from_process();
    let (code, out) = run_agent_with(agent, action, &env);
    if !out.is_empty() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }
    code
}

/// The testable core of [`run_agent`]: the exit code and what goes to stdout.
pub fn run_agent_with(agent: &dyn Agent, action: Option<&str>, env: &OcfEnv) -> (i32, String) {
    let spec = agent.spec();
    let Some(action_name) = action else {
        eprintln!("{}", usage(spec));
        return (OcfStatus::ErrArgs.code(), String::new());
    };
    let parsed = Action::parse(action_name);
    match parsed {
        Some(Action::MetaData) => return (0, spec.metadata_xml()),
        Some(Action::Usage) => return (0, format!("{}\n", usage(spec))),
        _ => {}
    }
    let log = Logger::new(spec.name, env, action_name);
    let known = parsed.is_some_and(|a| a == Action::Monitor || spec.has_action(action_name));
    let result = if known {
        let action = parsed.expect("known action");
        let canonical = if action == Action::Monitor { "monitor" } else { action_name };
        catch_unwind(AssertUnwindSafe(|| dispatch(agent, action, canonical, env, &log))).unwrap_or_else(|_| {
            Err(OcfError::generic(format!("internal error in {} {action_name} (see the log)", spec.name)))
        })
    } else {
        Err(OcfError::unimplemented(format!("action '{action_name}' is not implemented by {}", spec.name)))
    };
    (finish(&log, result), String::new())
}

fn dispatch(agent: &dyn Agent, action: Action, action_name: &str, env: &OcfEnv, log: &Logger) -> OcfResult {
    let deadline = Deadline::from_timeout(env.timeout().unwrap_or(crate::ocf::deadline::DEFAULT_TIMEOUT));
    let params = match Params::from_env(agent.spec().params, &env.params) {
        Ok(p) => p,
        Err(e) => return invalid_parameters(action, log, e),
    };
    let ctx = Ctx { action: action_name, env, params, deadline, log };
    log.debug(format!("parameters: {}", ctx.params.describe()));
    if let Err(e) = agent.validate(&ctx, VALIDATE_SYNTAX) {
        return invalid_parameters(action, log, e);
    }
    if matches!(action, Action::Start | Action::ValidateAll) {
        for name in &ctx.params.unknown {
            log.warn(format!("parameter '{name}' is not a parameter of {}; ignored", agent.spec().name));
        }
    }
    match action {
        Action::ValidateAll => {
            if ctx.check_level() >= VALIDATE_HOST {
                agent.validate(&ctx, VALIDATE_HOST)?;
            }
            Ok(OcfStatus::Success)
        }
        Action::Start => {
            agent.validate(&ctx, VALIDATE_HOST)?;
            agent.start(&ctx)
        }
        // A successful stop is 0, never 7.
        Action::Stop => agent.stop(&ctx).map(|s| if s == OcfStatus::NotRunning { OcfStatus::Success } else { s }),
        Action::Monitor => agent.monitor(&ctx),
        Action::Promote => agent.promote(&ctx),
        Action::Demote => agent.demote(&ctx),
        Action::Notify => agent.notify(&ctx),
        Action::Reload => agent.reload(&ctx),
        Action::MetaData | Action::Usage => unreachable!("answered before dispatch"),
    }
}

/// Level-0 validation of one parameter set, as every action of the agent begins: the table's
/// types and required values, then the agent's own syntax checks. Nothing on this host is looked
/// at. `meta` holds meta attributes as Pacemaker would pass them (`clone-max`, `promotable`...).
/// `hastack config` runs each layer of a stack through this, so it refuses what the agent would.
pub fn validate_syntax(
    agent: &dyn Agent,
    params: &BTreeMap<String, String>,
    meta: &BTreeMap<String, String>,
) -> Result<(), OcfError> {
    let env = OcfEnv {
        params: params.clone(),
        meta: meta.iter().map(|(k, v)| (k.replace('-', "_"), v.clone())).collect(),
        ..OcfEnv::default()
    };
    let log = Logger::new(agent.spec().name, &env, "validate-all");
    let params = Params::from_env(agent.spec().params, &env.params)?;
    let deadline = Deadline::from_timeout(crate::ocf::deadline::DEFAULT_TIMEOUT);
    let ctx = Ctx { action: "validate-all", env: &env, params, deadline, log: &log };
    catch_unwind(AssertUnwindSafe(|| agent.validate(&ctx, VALIDATE_SYNTAX))).unwrap_or_else(|_| {
        Err(OcfError::generic(format!("internal error in {}'s parameter checks", agent.spec().name)))
    })
}

/// Parameters that fail the syntax check. Stop succeeds: with these parameters start always
/// refused, so nothing of ours can be running (Pacemaker stops with the parameters of the last
/// start), and a failed stop would get the node fenced.
fn invalid_parameters(action: Action, log: &Logger, e: OcfError) -> OcfResult {
    if action == Action::Stop {
        log.warn(format!("{}; nothing can have been started with these parameters", e.reason));
        return Ok(OcfStatus::Success);
    }
    Err(e)
}

/// Logs the one result line, prints the exit reason, returns the exit code.
fn finish(log: &Logger, result: OcfResult) -> i32 {
    let ms = log.elapsed_ms();
    match result {
        Ok(status) => {
            log.info(format!("{} in {ms} ms", status));
            status.code()
        }
        Err(e) => {
            // A probe that finds nothing is routine, not an error worth an ERROR line.
            let level = if e.status == OcfStatus::NotRunning { Level::Info } else { Level::Error };
            // The reason goes to stderr as the exit reason; this line to the other sinks only.
            log.log_beside_exit_reason(level, &format!("{} in {ms} ms: {}", e.status, e.reason));
            let reason = e.reason.replace('\n', " | ");
            let _ = writeln!(std::io::stderr(), "ocf-exit-reason:{reason}");
            e.status.code()
        }
    }
}

pub fn usage(spec: &AgentSpec) -> String {
    let mut actions: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
    actions.dedup();
    format!("usage: {} {{{}}}", spec.name, actions.join("|"))
}

/// Convenience for unit tests: an environment from pairs.
#[cfg(test)]
pub fn env_from(pairs: &[(&str, &str)]) -> OcfEnv {
    OcfEnv::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::ParamSpec;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Demo {
        stops: AtomicU32,
    }
    static SPEC: AgentSpec = AgentSpec {
        name: "demo",
        shortdesc: "demo",
        longdesc: "demo",
        params: &[ParamSpec::string("name").required(), ParamSpec::integer("n", Some(1), None).default("1")],
        actions: &[
            ActionSpec::new("start", "20s"),
            ActionSpec::new("stop", "20s"),
            ActionSpec::monitor("10s", "20s"),
            ActionSpec::new("meta-data", "5s"),
            ActionSpec::new("validate-all", "20s"),
        ],
    };
    impl Agent for Demo {
        fn spec(&self) -> &'static AgentSpec {
            &SPEC
        }
        fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
            if ctx.params.str("name") == "bad" {
                return Err(OcfError::configured("parameter 'name' is bad"));
            }
            if level >= VALIDATE_HOST && ctx.params.str("name") == "absent" {
                return Err(OcfError::installed("'absent' is not installed"));
            }
            Ok(())
        }
        fn start(&self, _: &Ctx) -> OcfResult {
            Ok(OcfStatus::Success)
        }
        fn stop(&self, _: &Ctx) -> OcfResult {
            self.stops.fetch_add(1, Ordering::SeqCst);
            Ok(OcfStatus::NotRunning)
        }
        fn monitor(&self, ctx: &Ctx) -> OcfResult {
            if ctx.params.str("name") == "panic" {
                panic!("boom");
            }
            Ok(OcfStatus::NotRunning)
        }
    }

    fn run(action: Option<&str>, pairs: &[(&str, &str)]) -> (i32, String) {
        run_agent_with(&Demo { stops: AtomicU32::new(0) }, action, &env_from(pairs))
    }

    #[test]
    fn meta_data_needs_no_parameters() {
        let (code, out) = run(Some("meta-data"), &[]);
        assert_eq!(code, 0);
        assert!(out.contains("<resource-agent name=\"demo\""));
    }

    #[test]
    fn unknown_and_unlisted_actions_are_unimplemented() {
        assert_eq!(run(Some("frobnicate"), &[("OCF_RESKEY_name", "x")]).0, 3);
        assert_eq!(run(Some("promote"), &[("OCF_RESKEY_name", "x")]).0, 3);
        assert_eq!(run(None, &[]).0, 2);
    }

    #[test]
    fn bad_parameters_fail_everything_but_stop() {
        assert_eq!(run(Some("start"), &[]).0, 6);
        assert_eq!(run(Some("monitor"), &[("OCF_RESKEY_name", "bad")]).0, 6);
        assert_eq!(run(Some("validate-all"), &[("OCF_RESKEY_name", "x"), ("OCF_RESKEY_n", "0")]).0, 6);
        assert_eq!(run(Some("stop"), &[]).0, 0);
        assert_eq!(run(Some("stop"), &[("OCF_RESKEY_name", "bad")]).0, 0);
    }

    #[test]
    fn syntax_validation_alone_runs_the_table_and_the_agent_level_0() {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let none = BTreeMap::new();
        let demo = Demo { stops: AtomicU32::new(0) };
        assert!(validate_syntax(&demo, &pairs(&[("name", "x")]), &none).is_ok());
        assert!(validate_syntax(&demo, &pairs(&[("name", "absent")]), &none).is_ok(), "level 10 is not run");
        let e = validate_syntax(&demo, &pairs(&[("name", "bad")]), &none).unwrap_err();
        assert_eq!((e.status, e.reason.as_str()), (OcfStatus::ErrConfigured, "parameter 'name' is bad"));
        assert!(validate_syntax(&demo, &pairs(&[("name", "x"), ("n", "0")]), &none)
            .unwrap_err()
            .reason
            .contains("'n'"));
        assert!(validate_syntax(&demo, &pairs(&[]), &none).unwrap_err().reason.contains("'name'"));
    }

    #[test]
    fn validate_levels() {
        assert_eq!(run(Some("validate-all"), &[("OCF_RESKEY_name", "absent")]).0, 0);
        assert_eq!(run(Some("validate-all"), &[("OCF_RESKEY_name", "absent"), ("OCF_CHECK_LEVEL", "10")]).0, 5);
        assert_eq!(run(Some("start"), &[("OCF_RESKEY_name", "absent")]).0, 5);
    }

    #[test]
    fn stop_never_returns_not_running_and_panics_are_errors() {
        assert_eq!(run(Some("stop"), &[("OCF_RESKEY_name", "x")]).0, 0);
        assert_eq!(run(Some("monitor"), &[("OCF_RESKEY_name", "x")]).0, 7);
        assert_eq!(run(Some("status"), &[("OCF_RESKEY_name", "x")]).0, 7);
        assert_eq!(run(Some("monitor"), &[("OCF_RESKEY_name", "panic")]).0, 1);
    }
}
