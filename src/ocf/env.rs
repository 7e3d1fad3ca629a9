//! What Pacemaker tells an agent through its environment (ocf-contract.md §1.4).
//!
//! Built from any list of variables, so it is tested without touching the process environment.

use std::collections::BTreeMap;
use std::time::Duration;

const RESKEY: &str = "OCF_RESKEY_";
const META: &str = "OCF_RESKEY_CRM_meta_";

#[derive(Clone, Debug, Default)]
pub struct OcfEnv {
    /// `OCF_RESKEY_<name>` instance parameters, without the prefix (meta attributes excluded).
    pub params: BTreeMap<String, String>,
    /// `OCF_RESKEY_CRM_meta_<name>` meta attributes, without the prefix.
    pub meta: BTreeMap<String, String>,
    /// `OCF_RESOURCE_INSTANCE`, the resource id (anonymous clones: without `:N`).
    pub instance: Option<String>,
    /// `OCF_CHECK_LEVEL`, unparsed.
    pub check_level: Option<String>,
    /// Logging and tracing variables (HA_*, PCMK_*, OCF_TRACE_*), by name.
    pub logging: BTreeMap<String, String>,
}

impl OcfEnv {
    pub fn from_process() -> Self {
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }

    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut env = OcfEnv::default();
        for (key, value) in vars {
            if let Some(name) = key.strip_prefix(META) {
                env.meta.insert(name.to_string(), value);
            } else if let Some(name) = key.strip_prefix(RESKEY) {
                env.params.insert(name.to_string(), value);
            } else if key == "OCF_RESOURCE_INSTANCE" {
                env.instance = Some(value);
            } else if key == "OCF_CHECK_LEVEL" {
                env.check_level = Some(value);
            } else if key.starts_with("HA_")
                || key.starts_with("PCMK_")
                || key.starts_with("OCF_TRACE")
                || key == "trace_ra"
            {
                env.logging.insert(key, value);
            }
        }
        env
    }

    /// A meta attribute by its Pacemaker name; `-` and `_` are the same (Pacemaker maps `-` to `_`).
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta.get(&name.replace('-', "_")).map(String::as_str)
    }

    fn meta_ms(&self, name: &str) -> Option<Duration> {
        self.meta(name)?.trim().parse::<u64>().ok().map(Duration::from_millis)
    }

    fn meta_u32(&self, name: &str) -> Option<u32> {
        self.meta(name)?.trim().parse().ok()
    }

    fn meta_bool(&self, name: &str) -> bool {
        self.meta(name).is_some_and(crate::ocf::params::is_true)
    }

    /// The operation timeout (`CRM_meta_timeout`, milliseconds), if Pacemaker gave one.
    pub fn timeout(&self) -> Option<Duration> {
        self.meta_ms("timeout").filter(|d| !d.is_zero())
    }

    /// The recurring interval; zero (or absent) for one-shot actions and probes.
    pub fn interval(&self) -> Duration {
        self.meta_ms("interval").unwrap_or_default()
    }

    /// A monitor with interval 0 is a probe: Pacemaker asking "is it running here?".
    pub fn is_probe(&self, action: &str) -> bool {
        action == "monitor" && self.interval().is_zero()
    }

    /// The monitor depth; unset or unparseable means 0. Agents map unsupported depths down.
    pub fn check_level(&self) -> u32 {
        self.check_level.as_deref().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn resource(&self) -> &str {
        self.instance.as_deref().unwrap_or("")
    }

    /// Clone facts (None when not a clone).
    pub fn clone_instance(&self) -> Option<u32> {
        self.meta_u32("clone")
    }
    pub fn clone_max(&self) -> Option<u32> {
        self.meta_u32("clone_max")
    }
    pub fn clone_node_max(&self) -> Option<u32> {
        self.meta_u32("clone_node_max")
    }
    /// A promotable clone's instance. Pacemaker (2.1.5, measured) does not pass the clone's
    /// `promotable` meta attribute to the agent: it passes `promoted_max` and `master_max` (and
    /// their `_node_` forms), and only for promotable clones; `promotable` itself counts too, as
    /// tests and hand runs set it.
    pub fn promotable(&self) -> bool {
        self.meta_bool("promotable") || self.promoted_max().is_some()
    }
    /// `promoted_max`, falling back to the legacy `master_max` Pacemaker still emits.
    pub fn promoted_max(&self) -> Option<u32> {
        self.meta_u32("promoted_max").or_else(|| self.meta_u32("master_max"))
    }
    pub fn promoted_node_max(&self) -> Option<u32> {
        self.meta_u32("promoted_node_max").or_else(|| self.meta_u32("master_node_max"))
    }
    pub fn globally_unique(&self) -> bool {
        self.meta_bool("globally_unique")
    }
    pub fn notify_enabled(&self) -> bool {
        self.meta_bool("notify")
    }

    /// `notify_type` (`pre`/`post`) and `notify_operation` (`start`, `stop`, `promote`, `demote`).
    pub fn notify_type(&self) -> Option<&str> {
        self.meta("notify_type")
    }
    pub fn notify_operation(&self) -> Option<&str> {
        self.meta("notify_operation")
    }

    /// A space-separated notify list, e.g. `notify_list("promote_uname")`.
    pub fn notify_list(&self, suffix: &str) -> Vec<String> {
        self.meta(&format!("notify_{suffix}"))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The node a live migration leaves (`migrate_source`) and the one it goes to
    /// (`migrate_target`): Pacemaker's node names, set for migrate_to and migrate_from alike.
    pub fn migrate_source(&self) -> Option<&str> {
        self.meta("migrate_source").filter(|v| !v.is_empty())
    }
    pub fn migrate_target(&self) -> Option<&str> {
        self.meta("migrate_target").filter(|v| !v.is_empty())
    }

    pub fn logging_var(&self, name: &str) -> Option<&str> {
        self.logging.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> OcfEnv {
        OcfEnv::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn splits_parameters_from_meta_attributes() {
        let e = env(&[
            ("OCF_RESKEY_ip", "10.0.0.1"),
            ("OCF_RESKEY_CRM_meta_timeout", "20000"),
            ("OCF_RESKEY_CRM_meta_interval", "10000"),
            ("OCF_RESOURCE_INSTANCE", "vip1"),
            ("OCF_CHECK_LEVEL", "10"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(e.params.get("ip").map(String::as_str), Some("10.0.0.1"));
        assert!(!e.params.contains_key("CRM_meta_timeout"));
        assert_eq!(e.timeout(), Some(Duration::from_secs(20)));
        assert_eq!(e.interval(), Duration::from_secs(10));
        assert_eq!(e.resource(), "vip1");
        assert_eq!(e.check_level(), 10);
        assert!(!e.is_probe("monitor"));
    }

    #[test]
    fn no_interval_is_a_probe() {
        let e = env(&[("OCF_RESKEY_CRM_meta_timeout", "20000")]);
        assert!(e.is_probe("monitor"));
        assert!(!e.is_probe("start"));
        assert_eq!(e.check_level(), 0);
    }

    #[test]
    fn clone_and_notify_facts() {
        let e = env(&[
            ("OCF_RESKEY_CRM_meta_clone", "1"),
            ("OCF_RESKEY_CRM_meta_clone_max", "2"),
            ("OCF_RESKEY_CRM_meta_master_max", "1"),
            ("OCF_RESKEY_CRM_meta_promotable", "true"),
            ("OCF_RESKEY_CRM_meta_notify", "true"),
            ("OCF_RESKEY_CRM_meta_notify_type", "pre"),
            ("OCF_RESKEY_CRM_meta_notify_operation", "promote"),
            ("OCF_RESKEY_CRM_meta_notify_promote_uname", "node1 node2 "),
        ]);
        assert_eq!(e.clone_instance(), Some(1));
        assert_eq!(e.clone_max(), Some(2));
        assert_eq!(e.promoted_max(), Some(1));
        assert!(e.promotable());
        assert!(e.notify_enabled());
        assert_eq!(e.notify_type(), Some("pre"));
        assert_eq!(e.notify_operation(), Some("promote"));
        assert_eq!(e.notify_list("promote_uname"), vec!["node1", "node2"]);
        assert_eq!(e.meta("clone-max"), Some("2"));
        // What Pacemaker passes a promotable clone's instance: no `promotable`, `promoted_max`.
        let pcmk = env(&[("OCF_RESKEY_CRM_meta_clone_max", "2"), ("OCF_RESKEY_CRM_meta_promoted_max", "1")]);
        assert!(pcmk.promotable());
        assert!(!env(&[("OCF_RESKEY_CRM_meta_clone_max", "2")]).promotable());
    }

    #[test]
    fn migration_nodes() {
        // As pacemaker-controld passes them (lib/pacemaker/pcmk_sched_migration.c, add_migration_meta).
        let e = env(&[
            ("OCF_RESKEY_CRM_meta_migrate_source", "node1"),
            ("OCF_RESKEY_CRM_meta_migrate_target", "node2"),
            ("OCF_RESKEY_CRM_meta_record_pending", "true"),
        ]);
        assert_eq!((e.migrate_source(), e.migrate_target()), (Some("node1"), Some("node2")));
        assert_eq!(env(&[]).migrate_target(), None);
    }
}
