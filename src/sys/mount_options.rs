//! A mount(8)-style option string (`ro,noatime,errors=remount-ro`) split the way mount(2) wants
//! it: the generic VFS options become `MS_*` flags, the filesystem's own options stay in the
//! data string, and fstab-only options (`defaults`, `nofail`, `_netdev`, `x-*`...) are dropped.

use nix::mount::MsFlags;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Filesystem-specific options, comma-separated, passed as mount(2)'s data.
    pub data: String,
    /// Options that only mean something to fstab/mount(8); ignored here.
    pub ignored: Vec<String>,
}

/// Flags an option sets (`true`) or clears (`false`).
const FLAG_OPTIONS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("suid", MsFlags::MS_NOSUID, false),
    ("nodev", MsFlags::MS_NODEV, true),
    ("dev", MsFlags::MS_NODEV, false),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("atime", MsFlags::MS_NOATIME, false),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
    ("lazytime", MsFlags::MS_LAZYTIME, true),
    ("nolazytime", MsFlags::MS_LAZYTIME, false),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("silent", MsFlags::MS_SILENT, true),
    ("loud", MsFlags::MS_SILENT, false),
];

/// fstab and mount(8) options the kernel never sees.
const USERSPACE_ONLY: &[&str] =
    &["defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group"];

/// Options that change what kind of mount this is; this agent mounts a device, nothing else.
const UNSUPPORTED: &[&str] =
    &["bind", "rbind", "move", "remount", "loop", "shared", "rshared", "private", "rprivate", "slave", "rslave"];

/// Splits at commas outside double quotes (SELinux `context="a,b"` keeps its comma).
fn split_options(options: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in options.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&options[start..]);
    out.into_iter().map(str::trim).filter(|o| !o.is_empty()).collect()
}

/// Parses an option string; the error names the option mount(2) cannot take.
pub fn parse(options: &str) -> Result<MountOptions, String> {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    let mut ignored = Vec::new();
    for opt in split_options(options) {
        let name = opt.split('=').next().unwrap_or(opt);
        if let Some((_, flag, set)) = FLAG_OPTIONS.iter().find(|(n, _, _)| *n == opt) {
            flags.set(*flag, *set);
        } else if USERSPACE_ONLY.contains(&name) || name.starts_with("x-") || name == "comment" {
            ignored.push(opt.to_string());
        } else if UNSUPPORTED.contains(&name) || name.starts_with("make-") {
            return Err(format!(
                "option '{opt}' is not supported (this agent mounts a device; no bind, move or loop mounts)"
            ));
        } else {
            data.push(opt);
        }
    }
    Ok(MountOptions { flags, data: data.join(","), ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_flags_data_and_fstab_options() {
        let o = parse("defaults,ro,noatime,errors=remount-ro,_netdev,x-systemd.automount,data=ordered").unwrap();
        assert_eq!(o.flags, MsFlags::MS_RDONLY | MsFlags::MS_NOATIME);
        assert_eq!(o.data, "errors=remount-ro,data=ordered");
        assert_eq!(o.ignored, vec!["defaults", "_netdev", "x-systemd.automount"]);
    }

    #[test]
    fn later_options_win_and_empty_is_fine() {
        assert_eq!(parse("ro,rw").unwrap().flags, MsFlags::empty());
        assert_eq!(parse("").unwrap(), MountOptions { flags: MsFlags::empty(), data: String::new(), ignored: vec![] });
        assert_eq!(parse(" nodev , ,nosuid ").unwrap().flags, MsFlags::MS_NODEV | MsFlags::MS_NOSUID);
    }

    #[test]
    fn quoted_commas_stay_in_one_option() {
        let o = parse("context=\"system_u:object_r:tmp_t:s0:c127,c456\",noexec").unwrap();
        assert_eq!(o.data, "context=\"system_u:object_r:tmp_t:s0:c127,c456\"");
        assert_eq!(o.flags, MsFlags::MS_NOEXEC);
    }

    #[test]
    fn bind_and_loop_are_refused_by_name() {
        assert!(parse("bind").unwrap_err().contains("'bind'"));
        assert!(parse("rw,loop=/dev/loop3").unwrap_err().contains("'loop=/dev/loop3'"));
        assert!(parse("make-private").is_err());
    }
}
