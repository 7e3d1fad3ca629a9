//! `drbd`: a DRBD resource as a promotable clone (anchor: LINBIT's `ocf:linbit:drbd`).
//!
//! start brings the resource up as Secondary, promote/demote switch its role, stop demotes if
//! needed and takes it down. The state comes from `drbdsetup events2 --now` (parsed in
//! [`state`]), which drbd-utils 9 answers on DRBD 9 and, through its 8.4 compatibility binaries,
//! on the 8.4 module of mainline kernels. The promotion score follows the data (see
//! [`state::ResourceState::promotion_score`]) and is set with `crm_attribute --promotion`.
//!
//! Unlike the shell agent, no action loops until Pacemaker kills it: every retry (a promote
//! while the lost peer is still seen as Primary, a demote while the device is still open) runs
//! against the action's deadline and ends with an exit reason.

pub mod state;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::ocf::agent::VALIDATE_HOST;
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use crate::sys::proc::{run, Output, RunError};
use state::{parse_events2, parse_proc_version, ResourceState, ScoreChange};

pub struct Drbd;

static SPEC: AgentSpec = AgentSpec {
    name: "drbd",
    shortdesc: "DRBD replicated block device (promotable clone)",
    longdesc: "Manages one DRBD resource as a promotable clone: start brings it up as Secondary, \
promote makes it Primary, demote Secondary again, stop takes it down. Monitor reports the role \
(0 Secondary, 8 Primary, 7 down, 9 a Primary without access to UpToDate data) and 190/191 when \
the resource runs without full redundancy (a peer disconnected or not UpToDate, or local data not \
UpToDate). The promotion score follows the data: 10000 UpToDate with every peer's state known \
(or already Primary), 1000 UpToDate with a peer unknown, 5 Consistent, none for Outdated, \
Inconsistent or Diskless data; it is removed on stop. Works with the DRBD 8.4 module of mainline \
kernels and with DRBD 9, through drbd-utils 9.",
    params: &[
        ParamSpec::string("drbd_resource")
            .required()
            .unique()
            .short("DRBD resource name")
            .long("The name of the DRBD resource, as defined in the DRBD configuration."),
        ParamSpec::string("drbdconf")
            .default("/etc/drbd.conf")
            .short("DRBD configuration file")
            .long("The DRBD configuration file drbdadm reads (its -c option)."),
    ],
    actions: &[
        ActionSpec::new("start", "240s"),
        ActionSpec::new("stop", "100s"),
        ActionSpec::new("promote", "90s"),
        ActionSpec::new("demote", "90s"),
        ActionSpec::new("notify", "90s"),
        ActionSpec::monitor("15s", "20s").role("Promoted"),
        ActionSpec::monitor("29s", "20s").role("Unpromoted"),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "30s"),
    ],
};

/// Most drbdadm/drbdsetup calls answer in milliseconds; a hung one must not eat the budget.
const STEP_LIMIT: Duration = Duration::from_secs(30);
/// The pause between attempts of a state change DRBD refused for a passing reason.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// drbdsetup/drbdadm: a state change refused because no UpToDate data is reachable.
const EXIT_NO_UPTODATE_DATA: i32 = 17;

impl Agent for Drbd {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        let res = ctx.params.str("drbd_resource");
        if res.starts_with('-') || res.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(OcfError::configured(format!(
                "parameter 'drbd_resource' ('{res}') is not a DRBD resource name"
            )));
        }
        // The loaded module's version is a fact of this host: level 10 only, so level 0 stays
        // a check of the parameters alone (hastack config runs it on any machine).
        validate_clone_meta(ctx, if level >= VALIDATE_HOST { drbd_version() } else { None })?;
        if level >= VALIDATE_HOST {
            let conf = ctx.params.str("drbdconf");
            if !Path::new(conf).exists() {
                return Err(OcfError::installed(format!("parameter 'drbdconf': {conf} does not exist")));
            }
            let dump = drbdadm(ctx, &["dump", res], ctx.deadline.at_most(STEP_LIMIT))?;
            if !dump.success() {
                return Err(OcfError::args(format!(
                    "parameter 'drbd_resource': '{res}' is not usable on this host: {}",
                    last_line(&dump.message())
                )));
            }
            if ctx.env.promoted_max().unwrap_or(1) > 1 && !allows_two_primaries(&dump.stdout) {
                return Err(OcfError::configured(format!(
                    "promoted-max is {} but resource '{res}' does not set allow-two-primaries",
                    ctx.env.promoted_max().unwrap_or(1)
                )));
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let res = ctx.params.str("drbd_resource");
        load_module(ctx)?;
        let before = read_state(ctx)?;
        let (verb, what) = if before.is_up() { ("adjust", "adjusted") } else { ("up", "brought up") };
        let out = drbdadm(ctx, &[verb, res], ctx.deadline.at_most(STEP_LIMIT))?;
        if !out.success() {
            return Err(OcfError::generic(format!("drbdadm {verb} {res} failed: {}", last_line(&out.message()))));
        }
        // `up` returns once attached; wait out the transitional disk states so the first score
        // reflects the data, not the attach.
        let state = ctx
            .deadline
            .poll(Duration::from_millis(50), || {
                read_state(ctx).ok().filter(|s| s.is_up() && s.promotion_score() != ScoreChange::Keep)
            })
            .ok_or_else(|| OcfError::generic(format!("{res} did not finish attaching its disk in time")))?;
        ctx.log.info(format!(
            "{res} {what}: {}, disk {}, {}",
            role(&state),
            state.disk_summary(),
            state.connection_summary()
        ));
        update_score(ctx, &state);
        Ok(OcfStatus::Success)
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        let result = stop_resource(ctx);
        // Always: a score left behind would let Pacemaker promote a stopped node's stale data.
        set_score(ctx, ScoreChange::Remove);
        result
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let res = ctx.params.str("drbd_resource");
        let state = read_state(ctx)?;
        if !state.is_up() {
            // A probe of a stopped resource leaves the score alone (it may be set by a start in
            // flight); a recurring monitor finding it down takes it away.
            if !ctx.is_probe() {
                set_score(ctx, ScoreChange::Remove);
            }
            return Err(OcfError::not_running(format!("{res} is down")));
        }
        update_score(ctx, &state);
        let status = state.monitor_status();
        if status != OcfStatus::Success && status != OcfStatus::RunningPromoted {
            ctx.log.info(format!(
                "{res} {}: disk {}, {}",
                role(&state),
                state.disk_summary(),
                state.connection_summary()
            ));
        }
        if status == OcfStatus::FailedPromoted {
            return Err(OcfError::new(
                status,
                format!("{res} is Primary without access to UpToDate data (disk {})", state.disk_summary()),
            ));
        }
        Ok(status)
    }

    fn promote(&self, ctx: &Ctx) -> OcfResult {
        let res = ctx.params.str("drbd_resource");
        let state = read_state(ctx)?;
        if !state.is_up() {
            return Err(OcfError::generic(format!("cannot promote {res}: it is down (not started)")));
        }
        if state.is_primary() {
            return Ok(OcfStatus::Success);
        }
        if !state.promotable_data() {
            set_score(ctx, ScoreChange::Remove);
            return Err(OcfError::generic(format!(
                "refusing to promote {res}: local data is {} ({})",
                state.disk_summary(),
                state.connection_summary()
            )));
        }
        // DRBD refuses while it still sees a lost peer as Primary (until its ping timeout): retry.
        let mut last = String::new();
        loop {
            let out = drbdadm(ctx, &["primary", res], ctx.deadline.at_most(STEP_LIMIT))
                .map_err(|e| earlier_reason(e, &format!("could not promote {res} in time"), &last))?;
            if out.success() {
                break;
            }
            last = last_line(&out.message());
            if out.status.code() == Some(EXIT_NO_UPTODATE_DATA) {
                set_score(ctx, ScoreChange::Remove);
                return Err(OcfError::generic(format!(
                    "refusing to promote {res}: no access to UpToDate data: {last}"
                )));
            }
            ctx.log.debug(format!("drbdadm primary {res}: {last}; retrying"));
            if ctx.deadline.remaining() <= RETRY_PAUSE {
                return Err(OcfError::generic(format!("could not promote {res} in time: {last}")));
            }
            std::thread::sleep(RETRY_PAUSE);
        }
        let state = read_state(ctx)?;
        update_score(ctx, &state);
        if !state.is_primary() {
            return Err(OcfError::generic(format!("{res} is {} after drbdadm primary {last}", role(&state))));
        }
        ctx.log.info(format!("{res} promoted: disk {}, {}", state.disk_summary(), state.connection_summary()));
        Ok(OcfStatus::Success)
    }

    fn demote(&self, ctx: &Ctx) -> OcfResult {
        let res = ctx.params.str("drbd_resource");
        let state = read_state(ctx)?;
        if !state.is_up() {
            return Err(OcfError::not_running(format!("cannot demote {res}: it is down")));
        }
        if state.is_primary() {
            make_secondary(ctx, ctx.deadline)?;
        }
        update_score(ctx, &read_state(ctx)?);
        Ok(OcfStatus::Success)
    }

    /// Never fails (Pacemaker ignores notify errors anyway): a peer's start is the moment to
    /// re-apply the configuration (reconnect a StandAlone resource), and after any operation
    /// the score is re-read from the data.
    fn notify(&self, ctx: &Ctx) -> OcfResult {
        let res = ctx.params.str("drbd_resource");
        let (kind, op) = (ctx.env.notify_type().unwrap_or(""), ctx.env.notify_operation().unwrap_or(""));
        ctx.log.debug(format!(
            "notify {kind}-{op}: start {:?} promote {:?} promoted {:?}",
            ctx.env.notify_list("start_uname"),
            ctx.env.notify_list("promote_uname"),
            ctx.env.notify_list("promoted_uname"),
        ));
        let state = match read_state(ctx) {
            Ok(s) if s.is_up() => s,
            Ok(_) => return Ok(OcfStatus::Success),
            Err(e) => {
                ctx.log.warn(format!("notify {kind}-{op}: {}", e.reason));
                return Ok(OcfStatus::Success);
            }
        };
        if op == "start" {
            match drbdadm(ctx, &["adjust", res], ctx.deadline.at_most(STEP_LIMIT)) {
                Ok(out) if !out.success() => {
                    ctx.log.warn(format!("drbdadm adjust {res}: {}", last_line(&out.message())))
                }
                Err(e) => ctx.log.warn(e.reason),
                Ok(_) => {}
            }
        }
        if kind == "post" {
            update_score(ctx, &read_state(ctx).unwrap_or(state));
        }
        Ok(OcfStatus::Success)
    }
}

/// Clone meta attributes DRBD can honour: one instance per node, at most two nodes on 8.4, one
/// Primary unless dual-primary is configured (checked against the configuration at level 10).
fn validate_clone_meta(ctx: &Ctx, version: Option<(u32, u32)>) -> OcfResult<()> {
    let env = ctx.env;
    if env.clone_max().is_none() {
        return Ok(()); // not run as a clone (crm_resource --validate, ocf-tester)
    }
    if !env.promotable() {
        return Err(OcfError::configured("drbd must run as a promotable clone (meta promotable=true)"));
    }
    if env.clone_node_max().is_some_and(|n| n != 1) {
        return Err(OcfError::configured("meta attribute clone-node-max must be 1 for drbd"));
    }
    if env.promoted_node_max().is_some_and(|n| n != 1) {
        return Err(OcfError::configured("meta attribute promoted-node-max must be 1 for drbd"));
    }
    if env.promoted_max().is_some_and(|n| n > 2) {
        return Err(OcfError::configured("meta attribute promoted-max must be 1 (or 2 with dual-primary)"));
    }
    if let (Some(max), Some((major, minor))) = (env.clone_max(), version) {
        if major < 9 && max > 2 {
            return Err(OcfError::configured(format!(
                "meta attribute clone-max is {max}, but DRBD {major}.{minor} replicates between two nodes only"
            )));
        }
    }
    Ok(())
}

fn allows_two_primaries(config: &str) -> bool {
    config.lines().any(|l| {
        let l = l.trim().trim_end_matches(';');
        l == "allow-two-primaries" || l == "allow-two-primaries yes"
    })
}

/// The loaded module's version; None when it is not loaded.
fn drbd_version() -> Option<(u32, u32)> {
    parse_proc_version(&std::fs::read_to_string("/proc/drbd").ok()?)
}

fn load_module(ctx: &Ctx) -> OcfResult<()> {
    if Path::new("/proc/drbd").exists() {
        return Ok(());
    }
    let out = tool(ctx, "modprobe", &["drbd"], ctx.deadline.at_most(STEP_LIMIT))?;
    if !out.success() || !Path::new("/proc/drbd").exists() {
        return Err(OcfError::installed(format!("cannot load the drbd kernel module: {}", last_line(&out.message()))));
    }
    Ok(())
}

fn stop_resource(ctx: &Ctx) -> OcfResult {
    let res = ctx.params.str("drbd_resource");
    let state = read_state(ctx)?;
    if !state.is_up() {
        return Ok(OcfStatus::Success);
    }
    if state.is_primary() {
        ctx.log.warn(format!("{res} is still Primary; demoting before stop"));
        make_secondary(ctx, ctx.deadline.fraction(0.5))?;
    }
    let mut last = String::new();
    loop {
        let out = drbdadm(ctx, &["down", res], ctx.deadline.at_most(STEP_LIMIT))
            .map_err(|e| earlier_reason(e, &format!("could not take {res} down"), &last))?;
        last = last_line(&out.message());
        if out.success() && !read_state(ctx)?.is_up() {
            ctx.log.info(format!("{res} is down"));
            return Ok(OcfStatus::Success);
        }
        if ctx.deadline.remaining() <= RETRY_PAUSE {
            return Err(OcfError::generic(format!("could not take {res} down: {last}")));
        }
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// `drbdadm secondary`, retried while the device is still held open (a filesystem being
/// unmounted by the resource stopped just before us, say).
fn make_secondary(ctx: &Ctx, deadline: Deadline) -> OcfResult<()> {
    let res = ctx.params.str("drbd_resource");
    let mut last = String::new();
    loop {
        let out = drbdadm(ctx, &["secondary", res], deadline.at_most(STEP_LIMIT))
            .map_err(|e| earlier_reason(e, &format!("could not demote {res} (is its device still open?)"), &last))?;
        if out.success() {
            ctx.log.info(format!("{res} demoted to Secondary"));
            return Ok(());
        }
        last = last_line(&out.message());
        if deadline.remaining() <= RETRY_PAUSE {
            return Err(OcfError::generic(format!("could not demote {res} (is its device still open?): {last}")));
        }
        ctx.log.debug(format!("drbdadm secondary {res}: {last}; retrying"));
        std::thread::sleep(RETRY_PAUSE);
    }
}

/// The resource's state; a resource the kernel does not know (or no module) is "down".
fn read_state(ctx: &Ctx) -> OcfResult<ResourceState> {
    if !Path::new("/proc/drbd").exists() {
        return Ok(ResourceState::default());
    }
    let res = ctx.params.str("drbd_resource");
    let out = tool(ctx, "drbdsetup", &["events2", "--now", res], ctx.deadline.at_most(STEP_LIMIT))?;
    if !out.success() {
        let msg = out.message();
        // DRBD 9 answers an unknown resource with an error rather than an empty dump.
        if msg.contains("No such resource") || msg.contains("Unknown resource") {
            return Ok(ResourceState::default());
        }
        return Err(OcfError::generic(format!("drbdsetup events2 {res} failed: {}", last_line(&msg))));
    }
    let state = parse_events2(&out.stdout);
    ctx.log.trace(format!("events2: {:?}", state));
    Ok(state)
}

fn role(state: &ResourceState) -> &str {
    state.role.as_deref().unwrap_or("down")
}

fn update_score(ctx: &Ctx, state: &ResourceState) {
    set_score(ctx, state.promotion_score());
}

/// Sets or removes this node's promotion score through `crm_attribute --promotion` (the
/// transient attribute `master-<resource>`). A failure is logged, not fatal: the role change
/// the action made is real, and the next monitor tries again. Tests point `crm_attribute` (by
/// PATH) at a stub that records its arguments.
fn set_score(ctx: &Ctx, change: ScoreChange) {
    let Some(args) = score_args(ctx.env.resource(), change) else {
        if change != ScoreChange::Keep {
            ctx.log.debug("no OCF_RESOURCE_INSTANCE: promotion score not changed");
        }
        return;
    };
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    match tool(ctx, "crm_attribute", &argv, ctx.deadline.at_most(Duration::from_secs(10))) {
        Ok(out) if out.success() => ctx.log.debug(format!("crm_attribute {}", argv.join(" "))),
        Ok(out) => ctx.log.warn(format!("crm_attribute {} failed: {}", argv.join(" "), last_line(&out.message()))),
        Err(e) => ctx.log.warn(format!("promotion score not changed: {}", e.reason)),
    }
}

/// The crm_attribute arguments for a score change; None for no call. The instance number of a
/// clone (`drbd:1`) is not part of the attribute name.
fn score_args(instance: &str, change: ScoreChange) -> Option<Vec<String>> {
    let resource = instance.split(':').next().unwrap_or("");
    if resource.is_empty() {
        return None;
    }
    let promotion = format!("--promotion={resource}");
    match change {
        ScoreChange::Set(score) => Some(vec![promotion, "--update".into(), score.to_string()]),
        ScoreChange::Remove => Some(vec![promotion, "--delete".into()]),
        ScoreChange::Keep => None,
    }
}

fn drbdadm(ctx: &Ctx, args: &[&str], deadline: Deadline) -> OcfResult<Output> {
    let conf = ctx.params.str("drbdconf");
    let mut argv = vec!["-c", conf];
    argv.extend_from_slice(args);
    tool(ctx, "drbdadm", &argv, deadline)
}

/// Runs a DRBD or Pacemaker tool within the deadline: missing is 5, hung is 1.
fn tool(ctx: &Ctx, program: &str, args: &[&str], deadline: Deadline) -> OcfResult<Output> {
    ctx.log.trace(format!("{program} {}", args.join(" ")));
    run(Command::new(program).args(args), deadline).map_err(|e| match e {
        RunError::Spawn(err) => OcfError::installed(format!("cannot run {program}: {err}")),
        RunError::TimedOut => OcfError::generic(format!("{program} {} did not finish in time", args.join(" "))),
    })
}

/// A retry cut short by the deadline: the reason the earlier attempts gave says more than "did
/// not finish in time".
fn earlier_reason(e: OcfError, what: &str, last: &str) -> OcfError {
    if last.is_empty() || e.status != OcfStatus::ErrGeneric {
        return e;
    }
    OcfError::generic(format!("{what}: {last}"))
}

/// The line of a tool's output worth an exit reason: the last one, skipping drbdadm's closing
/// "Command '...' terminated with exit code N" when the kernel's reason precedes it.
fn last_line(text: &str) -> String {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty()).rev();
    let last = lines.next().unwrap_or("no output");
    match lines.next() {
        Some(reason) if last.starts_with("Command '") => format!("{reason} ({last})"),
        _ => last.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::agent::env_from;
    use crate::ocf::{Logger, OcfEnv, Params};

    fn ctx_with<'a>(env: &'a OcfEnv, log: &'a Logger) -> Ctx<'a> {
        Ctx {
            action: "validate-all",
            env,
            params: Params::from_env(SPEC.params, &env.params).unwrap(),
            deadline: Deadline::after(Duration::from_secs(5)),
            log,
        }
    }

    fn check(meta: &[(&str, &str)], version: Option<(u32, u32)>) -> Result<(), String> {
        let mut pairs = vec![("OCF_RESKEY_drbd_resource", "r0")];
        let keys: Vec<String> = meta.iter().map(|(k, _)| format!("OCF_RESKEY_CRM_meta_{k}")).collect();
        pairs.extend(keys.iter().map(String::as_str).zip(meta.iter().map(|(_, v)| *v)));
        let env = env_from(&pairs);
        let log = Logger::stderr("drbd", "validate-all");
        validate_clone_meta(&ctx_with(&env, &log), version).map_err(|e| e.reason)
    }

    #[test]
    fn clone_meta_rules() {
        let good = [("clone_max", "2"), ("clone_node_max", "1"), ("promotable", "true"), ("promoted_max", "1")];
        assert_eq!(check(&good, Some((8, 4))), Ok(()));
        assert_eq!(check(&[], Some((8, 4))), Ok(()), "not a clone: nothing to check");
        assert!(check(&[("clone_max", "2")], None).unwrap_err().contains("promotable"));
        let three = [("clone_max", "3"), ("promotable", "true")];
        assert!(check(&three, Some((8, 4))).unwrap_err().contains("clone-max is 3"));
        assert_eq!(check(&three, Some((9, 2))), Ok(()));
        let node_max = [("clone_max", "2"), ("promotable", "true"), ("clone_node_max", "2")];
        assert!(check(&node_max, None).unwrap_err().contains("clone-node-max"));
        let legacy = [("clone_max", "2"), ("promotable", "true"), ("master_max", "3")];
        assert!(check(&legacy, None).unwrap_err().contains("promoted-max"));
    }

    #[test]
    fn score_arguments() {
        assert_eq!(
            score_args("drbd-r0:1", ScoreChange::Set(10000)),
            Some(vec!["--promotion=drbd-r0".to_string(), "--update".into(), "10000".into()])
        );
        assert_eq!(
            score_args("drbd-r0", ScoreChange::Remove),
            Some(vec!["--promotion=drbd-r0".to_string(), "--delete".into()])
        );
        assert_eq!(score_args("drbd-r0", ScoreChange::Keep), None);
        assert_eq!(score_args("", ScoreChange::Set(5)), None);
    }

    #[test]
    fn dual_primary_is_read_from_the_configuration() {
        assert!(allows_two_primaries("resource r0 {\n    net {\n        allow-two-primaries yes;\n    }\n}"));
        assert!(allows_two_primaries("        allow-two-primaries;"));
        assert!(!allows_two_primaries("resource r0 {\n    net {\n        protocol C;\n    }\n}"));
        assert!(!allows_two_primaries("        allow-two-primaries no;"));
    }

    #[test]
    fn exit_reasons_use_the_last_line() {
        assert_eq!(
            last_line("0: State change failed: (-2) Need access to UpToDate data\nCommand 'drbdsetup-84 primary 0' terminated with exit code 17\n"),
            "0: State change failed: (-2) Need access to UpToDate data (Command 'drbdsetup-84 primary 0' terminated with exit code 17)"
        );
        assert_eq!(last_line("one\ntwo\n"), "two");
        assert_eq!(last_line(""), "no output");
    }
}
