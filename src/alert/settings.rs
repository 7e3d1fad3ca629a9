//! How one alert run is configured: the recipient selects the channel (a console URL, mail
//! addresses, a file), the alert's instance attributes (environment variables under their own
//! names, as Pacemaker passes them) tune it. Every value is checked; a bad one names itself.

use std::path::PathBuf;
use std::time::Duration;

use super::event::Severity;

/// Where the recipient sends the event besides syslog (which always gets it).
#[derive(Clone, Debug, PartialEq)]
pub enum Channel {
    /// No recipient configured: syslog only.
    SyslogOnly,
    /// `http://` or `https://`: a report to the console, spooled first.
    Console(String),
    /// One or more addresses (`a@example.com` or `a@example.com,b@example.com`).
    Mail(Vec<String>),
    /// An absolute path: one line appended per event.
    File(PathBuf),
}

impl Channel {
    pub fn from_recipient(recipient: &str) -> Result<Channel, String> {
        let r = recipient.trim();
        if r.is_empty() {
            return Ok(Channel::SyslogOnly);
        }
        if r.starts_with("http://") || r.starts_with("https://") {
            return Ok(Channel::Console(r.to_string()));
        }
        if r.starts_with('/') {
            return Ok(Channel::File(PathBuf::from(r)));
        }
        let addresses: Vec<String> = r.split([',', ' ']).filter(|a| !a.is_empty()).map(str::to_string).collect();
        if !addresses.is_empty() && addresses.iter().all(|a| is_address(a)) {
            return Ok(Channel::Mail(addresses));
        }
        Err(format!("recipient '{r}' is neither an http(s):// console URL, mail addresses nor an absolute file path"))
    }
}

/// `local@domain` without spaces, slashes or shell-looking characters (sendmail gets it as an
/// argument after `--`, so this is about catching typos, not about safety).
fn is_address(a: &str) -> bool {
    match a.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !a.starts_with('-')
                && a.chars()
                    .all(|c| c.is_ascii_graphic() && !matches!(c, '/' | '<' | '>' | '(' | ')' | ',' | ';' | '"'))
        }
        None => false,
    }
}

/// Every instance attribute the agent reads (`hastack config` refuses others).
pub const ATTRIBUTES: &[&str] = &[
    "cluster_id",
    "cluster_name",
    "token_file",
    "ca_file",
    "spool_dir",
    "snapshot",
    "snapshot_timeout",
    "send_timeout",
    "deadline",
    "min_severity",
    "sendmail",
    "mail_from",
];

pub const DEFAULT_SPOOL_DIR: &str = "/var/spool/hastack/alert";
pub const DEFAULT_TOKEN_FILE: &str = "/etc/hastack/console.token";

/// The instance attributes (README.md "Alert agent").
#[derive(Clone, Debug)]
pub struct Settings {
    pub cluster_id: Option<String>,
    pub cluster_name: Option<String>,
    pub spool_dir: PathBuf,
    /// The bearer token's file; `token_file_explicit` tells whether a missing file is an error.
    pub token_file: PathBuf,
    pub token_file_explicit: bool,
    pub ca_file: Option<PathBuf>,
    pub snapshot: bool,
    pub snapshot_timeout: Duration,
    pub send_timeout: Duration,
    /// The whole run's budget: keep it at most half the alert's timeout (default 30 s).
    pub deadline: Duration,
    pub sendmail: PathBuf,
    pub mail_from: Option<String>,
    pub min_severity: Severity,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_id: None,
            cluster_name: None,
            spool_dir: PathBuf::from(DEFAULT_SPOOL_DIR),
            token_file: PathBuf::from(DEFAULT_TOKEN_FILE),
            token_file_explicit: false,
            ca_file: None,
            snapshot: true,
            snapshot_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(3),
            deadline: Duration::from_secs(15),
            sendmail: PathBuf::from("/usr/sbin/sendmail"),
            mail_from: None,
            min_severity: Severity::Info,
        }
    }
}

impl Settings {
    /// Reads the attributes through `get` (the process environment in production). Returns the
    /// settings with every bad value replaced by its default, and one message per bad value:
    /// a typo must not cost the event.
    pub fn read(get: impl Fn(&str) -> Option<String>) -> (Settings, Vec<String>) {
        let mut s = Settings::default();
        let mut problems = Vec::new();
        let text = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        s.cluster_id = text("cluster_id");
        s.cluster_name = text("cluster_name");
        let path = |name: &str, problems: &mut Vec<String>| -> Option<PathBuf> {
            let v = text(name)?;
            if v.starts_with('/') {
                Some(PathBuf::from(v))
            } else {
                problems.push(format!("{name}='{v}' must be an absolute path; using the default"));
                None
            }
        };
        if let Some(p) = path("spool_dir", &mut problems) {
            s.spool_dir = p;
        }
        if let Some(p) = path("token_file", &mut problems) {
            s.token_file = p;
            s.token_file_explicit = true;
        }
        s.ca_file = path("ca_file", &mut problems);
        if let Some(p) = path("sendmail", &mut problems) {
            s.sendmail = p;
        }
        if let Some(v) = text("snapshot") {
            match crate::ocf::params::parse_bool(&v) {
                Some(on) => s.snapshot = on,
                None => problems.push(format!("snapshot='{v}' must be on or off; using on")),
            }
        }
        for (name, field, max) in [
            ("snapshot_timeout", &mut s.snapshot_timeout, 60),
            ("send_timeout", &mut s.send_timeout, 60),
            ("deadline", &mut s.deadline, 600),
        ] {
            if let Some(v) = text(name) {
                match parse_duration(&v) {
                    Some(d) if !d.is_zero() && d <= Duration::from_secs(max) => *field = d,
                    _ => problems.push(format!(
                        "{name}='{v}' must be a duration such as 5s or 500ms, at most {max}s; using {:?}",
                        *field
                    )),
                }
            }
        }
        s.mail_from = text("mail_from");
        if let Some(v) = text("min_severity") {
            match Severity::parse(&v) {
                Some(sev) => s.min_severity = sev,
                None => problems.push(format!("min_severity='{v}' must be info, warning or critical; using info")),
            }
        }
        (s, problems)
    }
}

/// `5`, `5s`, `500ms`, `1m` (Pacemaker's interval syntax without the ISO 8601 form).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit.trim() {
        "" | "s" | "sec" => Some(Duration::from_secs(n)),
        "ms" | "msec" => Some(Duration::from_millis(n)),
        // Checked: minutes near u64::MAX would wrap into a small, wrong timeout.
        "m" | "min" => n.checked_mul(60).map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_select_channels() {
        assert_eq!(Channel::from_recipient(""), Ok(Channel::SyslogOnly));
        assert_eq!(
            Channel::from_recipient("https://c.example/api/v1/reports"),
            Ok(Channel::Console("https://c.example/api/v1/reports".into()))
        );
        assert_eq!(Channel::from_recipient("/var/log/x.log"), Ok(Channel::File("/var/log/x.log".into())));
        assert_eq!(
            Channel::from_recipient("ops@example.com, oncall@example.com"),
            Ok(Channel::Mail(vec!["ops@example.com".into(), "oncall@example.com".into()]))
        );
        for bad in ["relative/path", "ops", "-oQ@x", "a@b/c", "ftp://x"] {
            assert!(Channel::from_recipient(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn minutes_too_many_to_count_are_no_duration() {
        // Found by the alert_env fuzz target: the multiplication overflowed.
        assert_eq!(parse_duration("8888888888888888879m"), None);
        assert_eq!(parse_duration("307445734561825861min"), None); // 60 × this is just above u64::MAX
        assert_eq!(parse_duration("307445734561825860min"), Some(Duration::from_secs(18_446_744_073_709_551_600)));
        assert_eq!(parse_duration("2min"), Some(Duration::from_secs(120)));
        let (s, problems) = Settings::read(|n| (n == "deadline").then(|| "8888888888888888879m".to_string()));
        assert_eq!(s.deadline, Settings::default().deadline);
        assert!(problems.iter().any(|p| p.starts_with("deadline='8888888888888888879m'")), "{problems:?}");
    }

    #[test]
    fn attributes_are_validated_and_fall_back() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
        };
        let (s, problems) = Settings::read(env(&[
            ("cluster_id", "store-042"),
            ("send_timeout", "500ms"),
            ("snapshot", "off"),
            ("spool_dir", "/tmp/x"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(s.cluster_id.as_deref(), Some("store-042"));
        assert_eq!(s.send_timeout, Duration::from_millis(500));
        assert!(!s.snapshot);
        assert_eq!(s.spool_dir, PathBuf::from("/tmp/x"));
        let (s, problems) =
            Settings::read(env(&[("deadline", "forever"), ("spool_dir", "spool"), ("min_severity", "x")]));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("spool_dir="), "{problems:?}");
        assert_eq!(s.deadline, Duration::from_secs(15));
        assert_eq!(s.spool_dir, PathBuf::from(DEFAULT_SPOOL_DIR));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("5 hours"), None);
        assert_eq!(parse_duration(""), None);
    }
}
