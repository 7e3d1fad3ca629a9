//! One typed parameter table per agent: it produces the meta-data, validates the environment and
//! gives the agent typed values. An agent never reads `OCF_RESKEY_*` itself.

use std::collections::BTreeMap;

use crate::ocf::status::OcfError;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ParamType {
    String,
    /// An integer, optionally bounded (inclusive).
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    /// OCF truth values: yes/true/1/on (and their opposites), case-insensitive.
    Boolean,
    /// One of a fixed list. Rendered as `string` with the choices in the description, because
    /// ocf-tester's ra-api-1.dtd has no `select` type.
    Select(&'static [&'static str]),
}

#[derive(Copy, Clone, Debug)]
pub struct ParamSpec {
    pub name: &'static str,
    pub ty: ParamType,
    pub default: Option<&'static str>,
    pub required: bool,
    pub unique: bool,
    /// A secret: never logged. (ra-api-1.dtd has no `private` attribute; Pacemaker treats
    /// parameters named `password`/`passwd` as private when none is marked.)
    pub private: bool,
    /// The directory the service keeps its data in: it belongs on the replicated partition
    /// (`hastack config` refuses a stack whose group mounts the partition elsewhere).
    pub data: bool,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl ParamSpec {
    const fn new(name: &'static str, ty: ParamType) -> Self {
        ParamSpec {
            name,
            ty,
            default: None,
            required: false,
            unique: false,
            private: false,
            data: false,
            shortdesc: "",
            longdesc: "",
        }
    }
    pub const fn string(name: &'static str) -> Self {
        Self::new(name, ParamType::String)
    }
    pub const fn integer(name: &'static str, min: Option<i64>, max: Option<i64>) -> Self {
        Self::new(name, ParamType::Integer { min, max })
    }
    pub const fn boolean(name: &'static str) -> Self {
        Self::new(name, ParamType::Boolean)
    }
    pub const fn select(name: &'static str, choices: &'static [&'static str]) -> Self {
        Self::new(name, ParamType::Select(choices))
    }
    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn unique(mut self) -> Self {
        self.unique = true;
        self
    }
    pub const fn private(mut self) -> Self {
        self.private = true;
        self
    }
    pub const fn data(mut self) -> Self {
        self.data = true;
        self
    }
    pub const fn short(mut self, text: &'static str) -> Self {
        self.shortdesc = text;
        self
    }
    pub const fn long(mut self, text: &'static str) -> Self {
        self.longdesc = text;
        self
    }

    /// Checks one value against the type; the error names the parameter.
    pub fn check(&self, value: &str) -> Result<(), OcfError> {
        let bad = |what: String| Err(OcfError::configured(format!("parameter '{}' {what}", self.name)));
        match self.ty {
            ParamType::String => Ok(()),
            ParamType::Boolean => match parse_bool(value) {
                Some(_) => Ok(()),
                None => bad(format!("must be a boolean (true/false), got '{value}'")),
            },
            ParamType::Integer { min, max } => match value.trim().parse::<i64>() {
                Err(_) => bad(format!("must be an integer, got '{value}'")),
                Ok(n) if min.is_some_and(|m| n < m) => bad(format!("must be at least {}, got {n}", min.unwrap())),
                Ok(n) if max.is_some_and(|m| n > m) => bad(format!("must be at most {}, got {n}", max.unwrap())),
                Ok(_) => Ok(()),
            },
            ParamType::Select(choices) => {
                if choices.contains(&value) {
                    Ok(())
                } else {
                    bad(format!("must be one of {}, got '{value}'", choices.join(", ")))
                }
            }
        }
    }
}

/// OCF truth (ocf_is_true): yes, true, 1, on, y; case-insensitive.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "1" | "on" | "y" => Some(true),
        "no" | "false" | "0" | "off" | "n" => Some(false),
        _ => None,
    }
}

pub fn is_true(value: &str) -> bool {
    parse_bool(value).unwrap_or(false)
}

/// Parameter values checked against the table: every value present has the right type, every
/// required one is present, defaults are filled in. Typed getters cannot fail on a checked table.
#[derive(Clone, Debug)]
pub struct Params {
    table: &'static [ParamSpec],
    values: BTreeMap<&'static str, String>,
    /// Names Pacemaker passed that the table does not know (logged as a warning).
    pub unknown: Vec<String>,
}

impl Params {
    /// Level-0 validation: syntax only. An empty value counts as unset (pcs writes `name=`).
    pub fn from_env(table: &'static [ParamSpec], given: &BTreeMap<String, String>) -> Result<Params, OcfError> {
        let mut values = BTreeMap::new();
        for spec in table {
            match given.get(spec.name).filter(|v| !v.is_empty()) {
                Some(v) => {
                    spec.check(v)?;
                    values.insert(spec.name, v.clone());
                }
                None if spec.required => {
                    return Err(OcfError::configured(format!("required parameter '{}' is not set", spec.name)));
                }
                None => {
                    if let Some(d) = spec.default {
                        values.insert(spec.name, d.to_string());
                    }
                }
            }
        }
        let unknown = given
            .keys()
            .filter(|k| !table.iter().any(|s| s.name == k.as_str()) && !is_pacemaker_internal(k))
            .cloned()
            .collect();
        Ok(Params { table, values, unknown })
    }

    fn spec(&self, name: &str) -> &ParamSpec {
        self.table
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("agent asked for parameter '{name}' that is not in its table"))
    }

    /// The value (or default); None if unset with no default.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spec(name);
        self.values.get(name).map(String::as_str)
    }

    /// A required parameter or one with a default.
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| panic!("parameter '{name}' has neither a value nor a default"))
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|v| v.trim().parse().expect("checked integer"))
    }

    pub fn bool(&self, name: &str) -> bool {
        self.get(name).and_then(parse_bool).unwrap_or(false)
    }

    /// Whether the administrator set this parameter (as opposed to a default applying).
    pub fn is_set(&self, name: &str, given: &BTreeMap<String, String>) -> bool {
        self.spec(name);
        given.get(name).is_some_and(|v| !v.is_empty())
    }

    /// Values for logging: private ones masked.
    pub fn describe(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| if self.spec(k).private { format!("{k}=***") } else { format!("{k}={v}") })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Parameters Pacemaker adds to every agent's environment.
fn is_pacemaker_internal(name: &str) -> bool {
    name == "crm_feature_set" || name.starts_with("CRM_meta") || name.starts_with("pcmk_")
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: &[ParamSpec] = &[
        ParamSpec::string("ip").required().unique(),
        ParamSpec::integer("count", Some(0), Some(100)).default("5"),
        ParamSpec::boolean("flag").default("false"),
        ParamSpec::select("mode", &["request", "reply"]).default("request"),
        ParamSpec::string("password").private(),
    ];

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_fill_in() {
        let p = Params::from_env(TABLE, &given(&[("ip", "1.2.3.4")])).unwrap();
        assert_eq!(p.str("ip"), "1.2.3.4");
        assert_eq!(p.int("count"), Some(5));
        assert!(!p.bool("flag"));
        assert_eq!(p.str("mode"), "request");
        assert_eq!(p.get("password"), None);
    }

    #[test]
    fn missing_required_names_the_parameter() {
        let e = Params::from_env(TABLE, &given(&[])).unwrap_err();
        assert_eq!(e.status, crate::ocf::OcfStatus::ErrConfigured);
        assert!(e.reason.contains("'ip'"), "{}", e.reason);
        let e = Params::from_env(TABLE, &given(&[("ip", "")])).unwrap_err();
        assert!(e.reason.contains("'ip'"));
    }

    #[test]
    fn type_errors_name_the_parameter() {
        for (k, v, needle) in [
            ("count", "x", "integer"),
            ("count", "101", "at most 100"),
            ("count", "-1", "at least 0"),
            ("flag", "maybe", "boolean"),
            ("mode", "both", "one of request, reply"),
        ] {
            let e = Params::from_env(TABLE, &given(&[("ip", "1.2.3.4"), (k, v)])).unwrap_err();
            assert!(e.reason.contains(&format!("'{k}'")) && e.reason.contains(needle), "{}", e.reason);
        }
    }

    #[test]
    fn ocf_truth_values() {
        for t in ["yes", "TRUE", "1", "on", "y"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["no", "False", "0", "off", "n"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        assert_eq!(parse_bool("2"), None);
    }

    #[test]
    fn private_values_are_masked_and_unknown_names_kept() {
        let p = Params::from_env(
            TABLE,
            &given(&[("ip", "1.2.3.4"), ("password", "s3cret"), ("typo", "x"), ("crm_feature_set", "3.16")]),
        )
        .unwrap();
        assert!(!p.describe().contains("s3cret"));
        assert_eq!(p.unknown, vec!["typo".to_string()]);
    }
}
