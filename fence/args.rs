//! The fence-agent argument contract (fence-contract.md §1.1): `name=value` lines on stdin when
//! argv is empty, GNU-style options otherwise. One option table drives both parsers and the
//! metadata (metadata.rs), so a parameter cannot be documented and parsed differently.
//! Pure: no I/O here, the caller reads stdin.

use std::collections::BTreeMap;

/// What a parameter holds; also its `<content type=..>` in the metadata.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Content {
    String,
    Boolean,
    Second,
    Integer,
    Select(&'static [&'static str]),
}

/// One parameter: its stdin name, its command-line spellings and its metadata.
#[derive(Debug)]
pub struct Opt {
    /// The stdin name (and metadata `name`).
    pub name: &'static str,
    /// The name the value is stored under: deprecated aliases store under their successor.
    pub key: &'static str,
    pub short: Option<char>,
    /// The long option without `--`; empty for options with no command-line form.
    pub long: &'static str,
    pub metavar: &'static str,
    pub content: Content,
    pub default: Option<&'static str>,
    pub required: bool,
    pub deprecated: bool,
    pub obsoletes: Option<&'static str>,
    /// Accepted quietly but not documented (what Pacemaker sends on its own).
    pub hidden: bool,
    pub shortdesc: &'static str,
}

const fn opt(name: &'static str, long: &'static str, content: Content, shortdesc: &'static str) -> Opt {
    Opt {
        name,
        key: name,
        short: None,
        long,
        metavar: "",
        content,
        default: None,
        required: false,
        deprecated: false,
        obsoletes: None,
        hidden: false,
        shortdesc,
    }
}

impl Opt {
    const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    const fn metavar(mut self, m: &'static str) -> Self {
        self.metavar = m;
        self
    }
    const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    /// A deprecated spelling whose value is stored as `successor`.
    const fn deprecated_for(mut self, successor: &'static str) -> Self {
        self.deprecated = true;
        self.key = successor;
        self
    }
    const fn obsoletes(mut self, old: &'static str) -> Self {
        self.obsoletes = Some(old);
        self
    }
    const fn hidden(mut self) -> Self {
        self.hidden = true;
        self
    }

    pub fn takes_value(&self) -> bool {
        self.content != Content::Boolean
    }
}

pub const ACTIONS: &[&str] = &["on", "off", "reboot", "status", "list", "monitor", "metadata", "validate-all"];
pub const TRANSPORTS: &[&str] = &["apcsmart", "nut"];

use Content::{Boolean, Integer, Second, Select, String as Str};

/// Every parameter fence_ups knows, fence-agents' names where one exists (deprecated spellings
/// after their successor, as fence-agents 4.12 emits them).
pub static OPTIONS: &[Opt] = &[
    opt("action", "action", Str, "Fencing action").short('o').metavar("action").default("reboot").required(),
    opt("plug", "plug", Str, "Node to fence: one of hostlist (any node if hostlist is empty)")
        .short('n')
        .metavar("id")
        .obsoletes("port"),
    opt("port", "plug", Str, "Node to fence: one of hostlist (any node if hostlist is empty)")
        .short('n')
        .metavar("id")
        .deprecated_for("plug"),
    opt(
        "transport",
        "transport",
        Select(TRANSPORTS),
        "How to reach the UPS (default: apcsmart if serial_port is set, nut if ip is set)",
    )
    .metavar("transport"),
    opt("serial_port", "serial-port", Str, "apcsmart: serial port the UPS's smart cable is on, e.g. /dev/ttyS0")
        .metavar("path"),
    opt("ip", "ip", Str, "nut: address or host name of upsd").short('a').metavar("ip").obsoletes("ipaddr"),
    opt("ipaddr", "ip", Str, "nut: address or host name of upsd").short('a').metavar("ip").deprecated_for("ip"),
    opt("ipport", "ipport", Integer, "nut: TCP port of upsd").short('u').metavar("port").default("3493"),
    opt("ups_name", "ups-name", Str, "nut: the UPS's name in upsd (ups.conf section)").metavar("name"),
    opt("username", "username", Str, "nut: upsd user allowed the instant commands load.off and load.on")
        .short('l')
        .metavar("name")
        .obsoletes("login"),
    opt("login", "username", Str, "nut: upsd user allowed the instant commands load.off and load.on")
        .short('l')
        .metavar("name")
        .deprecated_for("username"),
    opt("password", "password", Str, "nut: the upsd user's password")
        .short('p')
        .metavar("password")
        .obsoletes("passwd"),
    opt("passwd", "password", Str, "nut: the upsd user's password")
        .short('p')
        .metavar("password")
        .deprecated_for("password"),
    opt("password_script", "password-script", Str, "nut: program (run without a shell) that prints the password")
        .short('S')
        .metavar("script")
        .obsoletes("passwd_script"),
    opt("passwd_script", "password-script", Str, "nut: program (run without a shell) that prints the password")
        .short('S')
        .metavar("script")
        .deprecated_for("password_script"),
    opt("ups_serial", "ups-serial", Str, "Refuse to cut power unless the UPS reports this serial number")
        .metavar("serial"),
    opt("hostlist", "hostlist", Str, "Nodes this UPS feeds, comma-separated (what list prints; plug must be one)")
        .metavar("nodes"),
    opt("power_timeout", "power-timeout", Second, "Seconds to wait for the UPS to confirm a power change")
        .metavar("seconds")
        .default("20"),
    opt("delay", "delay", Second, "Wait seconds before fencing (off, reboot)").metavar("seconds").default("0"),
    opt("verbose", "verbose", Boolean, "Verbose mode: log every exchange with the UPS").short('v'),
    opt("debug_file", "debug-file", Str, "Write debugging output to this file").short('D').metavar("debugfile"),
    opt("version", "version", Boolean, "Display version information and exit").short('V'),
    opt("help", "help", Boolean, "Display help and exit").short('h'),
    // Sent by Pacemaker on its own: accepted quietly, never documented.
    opt("nodename", "", Str, "").hidden(),
    opt("nodeid", "", Str, "").hidden(),
];

fn by_name(name: &str) -> Option<&'static Opt> {
    OPTIONS.iter().find(|o| o.name == name || (!o.long.is_empty() && o.long.replace('-', "_") == name))
}

/// The name a parameter is stored under (`ipaddr` → `ip`, `login` → `username`, `port` → `plug`),
/// which is also its current stdin name; None for a name fence_ups does not know.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    by_name(name).map(|o| o.key)
}

/// Every name fence_ups accepts on stdin (for "did you mean").
pub fn known_names() -> impl Iterator<Item = &'static str> {
    OPTIONS.iter().filter(|o| !o.hidden).map(|o| o.name)
}

/// Parameters Pacemaker handles itself: the fencer never passes them to an agent
/// (lib/fencing/st_actions.c `append_config_arg`: `pcmk_*`, `provides`, `stonith-timeout`,
/// `CRM_meta_*`, `crm_feature_set`), so one that reaches fence_ups was meant for Pacemaker and is
/// not a typo of ours.
pub fn is_pacemaker_own(name: &str) -> bool {
    name.starts_with("pcmk_")
        || name.contains("CRM_meta")
        || matches!(name, "provides" | "stonith-timeout" | "stonith_timeout" | "crm_feature_set")
}

/// Parsed parameters, keyed by the canonical names (`plug`, `ip`, `username`, `password`, ...).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Args {
    values: BTreeMap<&'static str, String>,
    /// Names given that fence_ups does not know and Pacemaker does not own: probably typos
    /// (validate-all fails on them, other actions warn).
    pub unknown: Vec<String>,
}

impl Args {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }
    /// The value or the table's default.
    pub fn get_or_default(&self, key: &str) -> Option<&str> {
        self.get(key).or_else(|| OPTIONS.iter().find(|o| o.name == key).and_then(|o| o.default))
    }
    pub fn flag(&self, key: &str) -> bool {
        self.get(key) == Some("1")
    }
    pub fn set(&mut self, key: &'static str, value: &str) {
        self.values.insert(key, value.to_string());
    }
    /// The canonical keys given (for "parameters of the other transport" checks).
    pub fn keys(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.values.iter().filter(|(_, v)| !v.is_empty()).map(|(k, _)| *k)
    }

    fn store(&mut self, o: &'static Opt, raw: &str) -> Result<(), String> {
        let value =
            if o.content == Content::Boolean { parse_bool(raw).ok_or_else(|| not_bool(o.name, raw))? } else { raw };
        self.values.insert(o.key, value.to_string());
        Ok(())
    }
}

fn not_bool(name: &str, raw: &str) -> String {
    format!("parameter {name}: '{raw}' is not a boolean (1/yes/on/true or 0/no/off/false)")
}

/// fence-agents' booleans; unlike fencing.py a false value really is false.
pub fn parse_bool(raw: &str) -> Option<&'static str> {
    match raw.to_ascii_lowercase().as_str() {
        "" | "1" | "yes" | "y" | "on" | "true" => Some("1"),
        "0" | "no" | "n" | "off" | "false" => Some("0"),
        _ => None,
    }
}

/// Parses `name=value` lines as Pacemaker writes them to stdin: comments and blank lines
/// skipped, split at the first `=`, surrounding quotes removed, the last duplicate wins,
/// unknown names collected in `unknown`.
pub fn parse_stdin(text: &str) -> Result<Args, String> {
    let pairs = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(|line| {
        match line.split_once('=') {
            Some((n, v)) => (n.trim(), strip_quotes(v.trim())),
            None => (line, ""),
        }
    });
    parse_pairs(pairs)
}

/// Parameters given as (name, value) pairs, named as on stdin (the stack files of
/// `hastack config` use this too): the last duplicate wins, unknown names are collected in
/// `unknown`, Pacemaker's own are skipped.
pub fn parse_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Args, String> {
    let mut args = Args::default();
    for (name, value) in pairs {
        match by_name(name) {
            Some(o) => args.store(o, value)?,
            None if is_pacemaker_own(name) => {}
            None if !args.unknown.iter().any(|u| u == name) => args.unknown.push(name.to_string()),
            None => {}
        }
    }
    Ok(args)
}

fn strip_quotes(v: &str) -> &str {
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Parses command-line options (argv without the program name): `-o off`, `-ooff`,
/// `--action=off`, `--action off`, `-v`. Unlike stdin, an unknown option is an error: a person
/// typed it.
pub fn parse_argv(argv: &[String]) -> Result<Args, String> {
    let mut args = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        let (o, inline) = if let Some(long) = arg.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            // The first table entry with this long form is the current (non-deprecated) name.
            let o =
                OPTIONS.iter().find(|o| !o.long.is_empty() && o.long == name && !o.deprecated).ok_or_else(|| {
                    let longs = OPTIONS.iter().filter(|o| !o.long.is_empty() && !o.deprecated).map(|o| o.long);
                    format!("unrecognized option '--{name}'{}", crate::suggest::hint(name, longs))
                })?;
            (o, inline)
        } else if let Some(short) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let c = short.chars().next().unwrap();
            let o = OPTIONS
                .iter()
                .find(|o| o.short == Some(c) && !o.deprecated)
                .ok_or_else(|| format!("invalid option -- '{c}'"))?;
            let rest = &short[c.len_utf8()..];
            (o, if rest.is_empty() { None } else { Some(rest.to_string()) })
        } else {
            return Err(format!("unexpected argument '{arg}' (options are -o ACTION, -n PLUG, --name=value)"));
        };
        if o.takes_value() {
            let value = match inline {
                Some(v) => v,
                None => {
                    let v = argv.get(i).ok_or_else(|| format!("option '--{}' requires an argument", o.long))?;
                    i += 1;
                    v.clone()
                }
            };
            args.store(o, &value)?;
        } else {
            match inline {
                Some(v) if arg.starts_with("--") => args.store(o, &v)?,
                Some(_) => return Err(format!("option -{} takes no argument", o.short.unwrap_or('?'))),
                None => args.store(o, "1")?,
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn stdin_grammar_comments_quotes_last_wins_unknown_ignored() {
        let a = parse_stdin(
            "# comment\n\naction=off\n  serial_port = \"/dev/ttyS1\" \nport=node2\nnodename=node2\nnodeid=2\nfoo=bar\naction=status\n",
        )
        .unwrap();
        assert_eq!(a.get("action"), Some("status"));
        assert_eq!(a.get("serial_port"), Some("/dev/ttyS1"));
        assert_eq!(a.get("plug"), Some("node2"), "port is stored as plug");
        assert_eq!(a.get("nodename"), Some("node2"));
        assert_eq!(a.unknown, vec!["foo"]);
    }

    #[test]
    fn stdin_accepts_old_and_new_names_and_long_option_spelling() {
        let a = parse_stdin("ipaddr=127.0.0.1\nlogin=fence\npasswd=s3cret=x\nups-name=u\n").unwrap();
        assert_eq!(a.get("ip"), Some("127.0.0.1"));
        assert_eq!(a.get("username"), Some("fence"));
        assert_eq!(a.get("password"), Some("s3cret=x"), "split at the first '=' only");
        assert_eq!(a.get("ups_name"), None, "a dash is not a stdin name");
        let b = parse_stdin("ip=::1\nusername=f\npassword=p\nserial-port=/dev/x\n").unwrap();
        assert_eq!(b.get("ip"), Some("::1"));
        assert_eq!(b.get("serial_port"), None, "the long option's own spelling is not a stdin name");
        assert_eq!(b.unknown, vec!["serial-port"]);
    }

    #[test]
    fn pacemaker_own_names_are_not_unknown() {
        let a = parse_stdin(
            "nodename=n2\nnodeid=2\nport=n2\npcmk_host_list=n2\nprovides=unfencing\nCRM_meta_timeout=20000\nups_seiral=X\n",
        )
        .unwrap();
        assert_eq!(a.unknown, vec!["ups_seiral"]);
        assert_eq!(canonical_name("ipaddr"), Some("ip"));
        assert_eq!(canonical_name("passwd_script"), Some("password_script"));
        assert_eq!(canonical_name("ups_serial"), Some("ups_serial"));
        assert_eq!(canonical_name("ups_seiral"), None);
        assert!(known_names().any(|n| n == "ipaddr") && !known_names().any(|n| n == "nodename"));
    }

    #[test]
    fn booleans_on_stdin_false_is_false() {
        assert!(parse_stdin("verbose=1").unwrap().flag("verbose"));
        assert!(parse_stdin("verbose=yes").unwrap().flag("verbose"));
        assert!(parse_stdin("verbose").unwrap().flag("verbose"));
        assert!(!parse_stdin("verbose=0").unwrap().flag("verbose"));
        assert!(!parse_stdin("verbose=off").unwrap().flag("verbose"));
        let e = parse_stdin("verbose=maybe").unwrap_err();
        assert!(e.contains("verbose") && e.contains("maybe"), "{e}");
    }

    #[test]
    fn argv_short_long_inline_and_separate() {
        let a = parse_argv(&argv("-o off -nnode2 --serial-port=/dev/ttyS0 --ups-serial QS123 -v")).unwrap();
        assert_eq!(a.get("action"), Some("off"));
        assert_eq!(a.get("plug"), Some("node2"));
        assert_eq!(a.get("serial_port"), Some("/dev/ttyS0"));
        assert_eq!(a.get("ups_serial"), Some("QS123"));
        assert!(a.flag("verbose"));
        let b = parse_argv(&argv("--action=status --plug=n1 -a 127.0.0.1 -u 13493 -l f")).unwrap();
        assert_eq!(b.get("ip"), Some("127.0.0.1"));
        assert_eq!(b.get("ipport"), Some("13493"));
        assert_eq!(b.get("username"), Some("f"));
    }

    #[test]
    fn argv_errors_name_the_option() {
        assert!(parse_argv(&argv("--bogus=1")).unwrap_err().contains("--bogus"));
        assert!(parse_argv(&argv("--ups-seiral=X")).unwrap_err().contains("did you mean 'ups-serial'"));
        assert!(parse_argv(&argv("-Q")).unwrap_err().contains("'Q'"));
        assert!(parse_argv(&argv("-o")).unwrap_err().contains("--action"));
        assert!(parse_argv(&argv("off")).unwrap_err().contains("'off'"));
    }

    #[test]
    fn defaults_come_from_the_table() {
        let a = Args::default();
        assert_eq!(a.get_or_default("action"), Some("reboot"));
        assert_eq!(a.get_or_default("ipport"), Some("3493"));
        assert_eq!(a.get_or_default("power_timeout"), Some("20"));
        assert_eq!(a.get_or_default("ups_serial"), None);
    }
}
