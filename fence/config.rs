//! Parsed arguments → a checked configuration. Pure: validate-all is exactly this, and it never
//! touches the device. Every error names the parameter.

use std::path::PathBuf;
use std::time::Duration;

use super::args::{Args, ACTIONS};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    ApcSmart { serial_port: PathBuf },
    Nut { host: String, port: u16, ups_name: String, username: Option<String>, password: Password },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    None,
    /// Given directly (stdin, or `-p` by a person at a shell).
    Value(String),
    /// A program and its arguments, run without a shell; its first output line is the password.
    Script(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Config {
    pub action: String,
    pub transport: Transport,
    pub plug: Option<String>,
    pub hostlist: Vec<String>,
    pub ups_serial: Option<String>,
    pub power_timeout: Duration,
    pub delay: Duration,
}

const SERIAL_ONLY: &[&str] = &["serial_port"];
const NUT_ONLY: &[&str] = &["ip", "ups_name", "username", "password", "password_script"];

/// The action, normalised (`meta-data` → `metadata`); Err is fence-agents' message.
pub fn action(args: &Args) -> Result<String, String> {
    let a = args.get_or_default("action").unwrap_or("reboot").to_ascii_lowercase();
    let a = if a == "meta-data" { "metadata".to_string() } else { a };
    if ACTIONS.contains(&a.as_str()) {
        Ok(a)
    } else {
        Err(format!("Unrecognised action '{a}'"))
    }
}

/// The longest wait a time parameter may ask for: a day.
const MAX_SECONDS: f64 = 86_400.0;

fn seconds(args: &Args, name: &str) -> Result<Duration, String> {
    let raw = args.get_or_default(name).unwrap_or("0");
    match raw.trim().parse::<f64>() {
        Ok(s) if s.is_nan() => Err(format!("parameter {name}: '{raw}' is not a number of seconds")),
        Ok(s) if s < 0.0 => Err(format!("parameter {name}: {raw} is negative")),
        Ok(s) if s > MAX_SECONDS => {
            Err(format!("parameter {name}: {raw} seconds is more than the limit of {MAX_SECONDS} (a day)"))
        }
        Ok(s) => Ok(Duration::from_secs_f64(s)),
        Err(_) => Err(format!("parameter {name}: '{raw}' is not a number of seconds")),
    }
}

pub fn hostlist(raw: Option<&str>) -> Vec<String> {
    raw.unwrap_or("").split([',', ' ', ';']).map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect()
}

pub fn check(args: &Args) -> Result<Config, String> {
    let action = action(args)?;
    let given = |keys: &[&str]| -> Vec<String> {
        keys.iter().filter(|k| args.get(k).is_some()).map(|k| k.to_string()).collect()
    };
    let serial_given = given(SERIAL_ONLY);
    let nut_given = given(NUT_ONLY);
    let transport = match args.get("transport") {
        Some("apcsmart") => "apcsmart",
        Some("nut") => "nut",
        Some(other) => return Err(format!("parameter transport: '{other}' is not one of apcsmart, nut")),
        None if !serial_given.is_empty() && !nut_given.is_empty() => {
            return Err(format!(
                "parameters of both transports are set: {} (apcsmart) and {} (nut); a device uses one: set serial_port, or ip and ups_name",
                serial_given.join(", "),
                nut_given.join(", ")
            ))
        }
        None if !serial_given.is_empty() => "apcsmart",
        None if !nut_given.is_empty() => "nut",
        None => return Err("no UPS given: set serial_port (APC Smart over a serial line) or ip and ups_name (NUT's upsd)".into()),
    };

    let transport = if transport == "apcsmart" {
        if !nut_given.is_empty() {
            return Err(format!(
                "parameter {} belongs to transport nut, but the transport is apcsmart",
                nut_given.join(", ")
            ));
        }
        let port = args
            .get("serial_port")
            .ok_or("parameter serial_port is required for transport apcsmart (e.g. serial_port=/dev/ttyS0)")?;
        if !port.starts_with('/') {
            return Err(format!("parameter serial_port: '{port}' is not an absolute path (e.g. /dev/ttyS0)"));
        }
        Transport::ApcSmart { serial_port: PathBuf::from(port) }
    } else {
        if !serial_given.is_empty() {
            return Err("parameter serial_port belongs to transport apcsmart, but the transport is nut".into());
        }
        let host = args.get("ip").ok_or("parameter ip (ipaddr) is required for transport nut: the address of upsd")?;
        if host.trim().is_empty() || host.chars().any(char::is_whitespace) {
            return Err(format!("parameter ip: '{host}' is not an address or host name (it contains white space)"));
        }
        let ups_name =
            args.get("ups_name").ok_or("parameter ups_name is required for transport nut: the UPS's name in upsd")?;
        if ups_name.chars().any(char::is_whitespace) {
            return Err(format!("parameter ups_name: '{ups_name}' contains white space"));
        }
        let raw_port = args.get_or_default("ipport").unwrap_or("3493");
        let port = raw_port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("parameter ipport: '{raw_port}' is not a TCP port (1-65535)"))?;
        let password = match (args.get("password"), args.get("password_script")) {
            (Some(_), Some(_)) => return Err("parameters password and password_script are both set: give one".into()),
            (Some(p), None) => Password::Value(p.to_string()),
            (None, Some(s)) => {
                let argv: Vec<String> = s.split_whitespace().map(String::from).collect();
                match argv.first() {
                    None => {
                        return Err("parameter password_script is blank: give the program (an absolute path) that prints the password".into())
                    }
                    Some(program) if !program.starts_with('/') => {
                        return Err(format!("parameter password_script: '{program}' is not an absolute path"))
                    }
                    Some(_) => Password::Script(argv),
                }
            }
            (None, None) => Password::None,
        };
        let username = args.get("username").map(String::from);
        if username.is_some() != (password != Password::None) {
            return Err(
                "parameters username and password (or password_script) go together: upsd needs both to allow load.off"
                    .into(),
            );
        }
        Transport::Nut { host: host.to_string(), port, ups_name: ups_name.to_string(), username, password }
    };

    let hostlist = hostlist(args.get("hostlist"));
    let plug = args.get("plug").map(String::from);
    // validate-all checks the device's configuration, not a target: Pacemaker validates with a
    // placeholder target ("node1", lib/fencing/st_client.c), which must not fail a good device.
    if let (Some(p), false, false) = (&plug, hostlist.is_empty(), action == "validate-all") {
        if !hostlist.iter().any(|h| h.eq_ignore_ascii_case(p)) {
            return Err(format!("unknown plug '{p}': this UPS feeds {} (hostlist)", hostlist.join(", ")));
        }
    }
    let ups_serial = args.get("ups_serial").map(String::from);
    if let Some(s) = &ups_serial {
        if !s.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!("parameter ups_serial: '{s}' contains characters a UPS serial number does not have"));
        }
    }
    let power_timeout = seconds(args, "power_timeout")?;
    if power_timeout < Duration::from_secs(2) {
        return Err(format!(
            "parameter power_timeout: {}s is too short: a load-off takes two commands 1.5 s apart",
            power_timeout.as_secs_f64()
        ));
    }
    let delay = seconds(args, "delay")?;
    Ok(Config { action, transport, plug, hostlist, ups_serial, power_timeout, delay })
}

#[cfg(test)]
mod tests {
    use super::super::args::{parse_argv, parse_stdin};
    use super::*;

    fn cfg(s: &str) -> Result<Config, String> {
        check(&parse_stdin(s).unwrap())
    }

    #[test]
    fn transport_inferred_and_checked() {
        let c = cfg("action=off\nserial_port=/dev/ttyS0\n").unwrap();
        assert_eq!(c.transport, Transport::ApcSmart { serial_port: "/dev/ttyS0".into() });
        let c = cfg("ipaddr=127.0.0.1\nups_name=fake\nlogin=f\npasswd=p\nipport=13493").unwrap();
        assert!(matches!(c.transport, Transport::Nut { port: 13493, .. }));
        assert!(cfg("action=off").unwrap_err().contains("serial_port"));
        assert!(cfg("transport=apcsmart").unwrap_err().contains("serial_port is required"));
        assert!(cfg("transport=nut\nups_name=x").unwrap_err().contains("parameter ip"));
        assert!(cfg("ip=127.0.0.1").unwrap_err().contains("ups_name"));
        let mixed = cfg("serial_port=/dev/ttyS0\nip=127.0.0.1\nups_name=u").unwrap_err();
        assert!(mixed.contains("both transports") && mixed.contains("serial_port") && mixed.contains("ip"), "{mixed}");
        assert!(cfg("transport=apcsmart\nserial_port=/dev/ttyS0\nups_name=u").unwrap_err().contains("ups_name"));
        assert!(cfg("transport=serial\nserial_port=/dev/ttyS0").unwrap_err().contains("transport"));
        assert!(cfg("serial_port=ttyS0").unwrap_err().contains("absolute"));
    }

    #[test]
    fn plug_must_be_in_hostlist_when_there_is_one() {
        assert!(cfg("serial_port=/dev/ttyS0\nplug=anything").is_ok());
        assert!(cfg("serial_port=/dev/ttyS0\nhostlist=node1,node2\nport=NODE2").is_ok());
        let e = cfg("serial_port=/dev/ttyS0\nhostlist=node1,node2\nplug=node3").unwrap_err();
        assert!(e.contains("unknown plug 'node3'") && e.contains("node1, node2"), "{e}");
        assert!(
            cfg("action=validate-all\nserial_port=/dev/ttyS0\nhostlist=node2\nport=node1").is_ok(),
            "Pacemaker's placeholder"
        );
    }

    #[test]
    fn numbers_actions_and_secrets() {
        assert!(cfg("serial_port=/dev/x\npower_timeout=abc").unwrap_err().contains("power_timeout"));
        assert!(cfg("serial_port=/dev/x\npower_timeout=1").unwrap_err().contains("too short"));
        assert!(cfg("serial_port=/dev/x\ndelay=-1").unwrap_err().contains("delay: -1 is negative"));
        let long = cfg("serial_port=/dev/x\npower_timeout=86401").unwrap_err();
        assert!(long.contains("more than the limit of 86400"), "{long}");
        assert!(cfg("serial_port=/dev/x\npower_timeout=86400").is_ok());
        for odd in ["NaN", "inf", "-inf", "1e400", ""] {
            let e = cfg(&format!("serial_port=/dev/x\ndelay={odd}"));
            assert!(odd.is_empty() || e.unwrap_err().contains("delay"), "{odd}");
        }
        assert!(cfg("ip=h\nups_name=u\nipport=70000").unwrap_err().contains("ipport"));
        assert_eq!(cfg("serial_port=/dev/x\naction=bogus").unwrap_err(), "Unrecognised action 'bogus'");
        assert_eq!(cfg("serial_port=/dev/x\naction=meta-data").unwrap().action, "metadata");
        assert_eq!(cfg("serial_port=/dev/x").unwrap().action, "reboot");
        let c = cfg("ip=h\nups_name=u\nusername=f\npassword_script=/bin/echo  s3cret").unwrap();
        assert!(
            matches!(c.transport, Transport::Nut { password: Password::Script(ref a), .. } if a == &["/bin/echo", "s3cret"])
        );
        assert!(cfg("ip=h\nups_name=u\nusername=f").unwrap_err().contains("go together"));
        let blank = check(
            &parse_argv(&["--ip=h", "--ups-name=u", "-l", "f", "--password-script", " "].map(String::from)).unwrap(),
        );
        assert!(blank.unwrap_err().contains("password_script is blank"));
        let blank = check(&parse_argv(&["--ip", " ", "--ups-name=u"].map(String::from)).unwrap());
        assert!(blank.unwrap_err().contains("parameter ip"));
        assert!(cfg("ip=h\nups_name=u\nusername=f\npassword=a\npassword_script=/bin/x")
            .unwrap_err()
            .contains("both set"));
    }
}
