//! Parameters checked by syntax (validate-all level 0: wrong everywhere, 6) and on this host
//! (level 10 and start: missing here, 5; a port or directory in use, 1), with reasons that
//! name the parameter.

use std::fs;
use std::path::Path;

use crate::net::http;
use crate::ocf::{OcfError, OcfResult, Params};
use crate::sys::proc::{self, Account};
use crate::sys::{argv, listeners};

/// Paths must be absolute: the agent's working directory means nothing to an administrator (6).
pub fn require_absolute(param: &str, path: &str) -> OcfResult<()> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(OcfError::configured(format!("parameter '{param}' must be an absolute path, got '{path}'")))
    }
}

/// Every one of `names` that is set (or has a default) is an absolute path.
pub fn require_absolute_params(params: &Params, names: &[&str]) -> OcfResult<()> {
    names.iter().filter_map(|n| params.get(n).map(|v| (n, v))).try_for_each(|(n, v)| require_absolute(n, v))
}

/// An executable parameter on this host: missing is "not installed" (5).
pub fn require_executable(param: &str, path: impl AsRef<Path>) -> OcfResult<()> {
    let path = path.as_ref();
    require_absolute(param, &path.to_string_lossy())?;
    crate::ocf::host::require_executable(param, path)
}

/// A file or directory parameter on this host: missing is "not installed here" (5; it may
/// live on a filesystem not mounted on this node yet).
pub fn require_path(param: &str, path: impl AsRef<Path>, dir: bool) -> OcfResult<()> {
    let path = path.as_ref();
    require_absolute(param, &path.to_string_lossy())?;
    match fs::metadata(path) {
        Ok(m) if m.is_dir() == dir => Ok(()),
        Ok(_) => Err(OcfError::installed(format!(
            "parameter '{param}': {} is not a {}",
            path.display(),
            if dir { "directory" } else { "file" }
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(OcfError::installed(format!("parameter '{param}': {} does not exist", path.display())))
        }
        Err(e) => Err(OcfError::installed(format!("parameter '{param}': {}: {e}", path.display()))),
    }
}

/// A parameter of extra arguments or a command, as words by `sys::argv`'s rules (which its
/// meta-data states with `word_rules!`); none when unset, 6 naming the parameter when it
/// cannot be split.
pub fn words(params: &Params, name: &str) -> OcfResult<Vec<String>> {
    match params.get(name) {
        Some(text) => argv::split(text).map_err(|e| OcfError::configured(format!("parameter '{name}': {e}"))),
        None => Ok(Vec::new()),
    }
}

/// A URL parameter must be a plain http URL (6 otherwise).
pub fn require_url(param: &str, url: Option<&str>) -> OcfResult<()> {
    match url {
        Some(u) => {
            http::parse_url(u).map(|_| ()).map_err(|e| OcfError::configured(format!("parameter '{param}': {e}")))
        }
        None => Ok(()),
    }
}

/// A name made of letters, digits and underscores (a table or database the agent creates).
pub fn require_identifier(param: &str, value: &str) -> OcfResult<()> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(OcfError::configured(format!("parameter '{param}' must be letters, digits and underscores, got '{value}'")))
    }
}

/// The account a server runs as. Missing means the package is not installed here (5); a user
/// database that cannot answer is a failure here (1), with its error, not a missing user.
pub fn account(param: &str, name: &str) -> OcfResult<Account> {
    match Account::lookup(name) {
        Ok(Some(account)) => Ok(account),
        Ok(None) => {
            Err(OcfError::installed(format!("user '{name}' (parameter '{param}') does not exist on this node")))
        }
        Err(e) => Err(OcfError::generic(format!("cannot look up user '{name}' (parameter '{param}'): {e}"))),
    }
}

/// The data directory must be there: on the replicated partition it is missing exactly when the
/// partition is not mounted on this node. That is a fact about this node, not about the
/// configuration, so 5 (hard error here, try another node), not 6 (stop everywhere).
pub fn require_data_dir(param: &str, dir: &Path) -> OcfResult<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(OcfError::installed(format!(
            "data directory {} (parameter '{param}') does not exist on this node (is the replicated partition mounted?)",
            dir.display()
        )))
    }
}

/// The data directory must be writable by the server's account (4 otherwise): its mode, and its
/// filesystem mounted read-write. A filesystem mounted read-only (ext4 `errors=remount-ro` after
/// an I/O error on this node's disk, a partition mounted `ro`) is a fault of this node, as a
/// permission is: 4, naming the directory, before the server starts and fails (or, a broker,
/// waits) on its own words.
pub fn require_writable_data_dir(param: &str, dir: &Path, owner: &Account) -> OcfResult<()> {
    if on_read_only_filesystem(dir) {
        return Err(OcfError::perm(format!(
            "data directory {} (parameter '{param}') is on a read-only filesystem",
            dir.display()
        )));
    }
    if writable_by(dir, owner) {
        Ok(())
    } else {
        Err(OcfError::perm(format!(
            "data directory {} (parameter '{param}') is not writable by user '{}'",
            dir.display(),
            owner.name
        )))
    }
}

/// Below this much space available to unprivileged users, a data directory is full: a server
/// cannot write its lock, PID or log files there, or (a broker) starts and then blocks every
/// persistent message.
pub const MIN_DATA_SPACE: u64 = 1 << 20;

/// A data directory whose filesystem is full refuses the start (1): the server would fail later
/// on its own words, or start and accept nothing. Not 4 or 5: the replicated partition is as
/// full on the peer, so a move would not help; freeing space and a cleanup will.
pub fn require_space(param: &str, dir: &Path) -> OcfResult<()> {
    let Ok(st) = nix::sys::statvfs::statvfs(dir) else { return Ok(()) };
    let available = st.blocks_available() * st.fragment_size();
    if available >= MIN_DATA_SPACE {
        return Ok(());
    }
    Err(OcfError::generic(format!(
        "data directory {} (parameter '{param}') is on a full filesystem: {} KiB left (No space left on device); free space before starting",
        dir.display(),
        available / 1024
    )))
}

/// Whether `dir` is on a filesystem mounted read-only (statvfs's ST_RDONLY, which covers a
/// read-only bind mount too).
pub fn on_read_only_filesystem(dir: &Path) -> bool {
    nix::sys::statvfs::statvfs(dir).is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Whether a directory can be written by `owner` (mode bits; root bypasses them, the server
/// does not).
pub fn writable_by(dir: &Path, owner: &Account) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::metadata(dir) else { return false };
    let mode = m.mode();
    if owner.uid.is_root() {
        return true;
    }
    if m.uid() == owner.uid.as_raw() {
        return mode & 0o200 != 0;
    }
    if m.gid() == owner.gid.as_raw() || owner.groups.iter().any(|g| g.as_raw() == m.gid()) {
        return mode & 0o020 != 0;
    }
    mode & 0o002 != 0
}

/// Creates a directory the server writes into (a socket or PID directory under /run, which is
/// empty after a reboot) owned by its account.
pub fn ensure_run_dir(param: &str, dir: &Path, owner: &Account) -> OcfResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)
        .and_then(|_| {
            nix::unistd::chown(dir, Some(owner.uid), Some(owner.gid)).map_err(std::io::Error::from)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o2775))
        })
        .map_err(|e| OcfError::generic(format!("cannot create {} (parameter '{param}'): {e}", dir.display())))
}

/// Refuses a start when another process already listens on a port the server needs: the server
/// would fail (or worse, half-start) later with a less clear message.
pub fn require_port_free(server: &str, param: &str, port: u16) -> OcfResult<()> {
    let holders = listeners::port_holders(port);
    if holders.is_empty() {
        Ok(())
    } else {
        Err(OcfError::generic(format!(
            "cannot start {server}: port {port} is already held by {}; parameter '{param}' names a port already in use",
            proc::describe(&holders)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter split into words says how, in the words `sys::argv` splits by.
    #[test]
    fn split_parameters_state_the_splitting_rules() {
        let split = [
            ("postgresql", "options"),
            ("mariadb", "options"),
            ("activemq", "java_opts"),
            ("tomcat", "java_opts"),
            ("app", "start_command"),
            ("app", "stop_command"),
            ("app", "health_command"),
        ];
        for (agent, param) in split {
            let spec = crate::agents::AGENTS.iter().map(|a| a.spec()).find(|s| s.name == agent).unwrap();
            let p = spec.param(param).unwrap_or_else(|| panic!("{agent} has no parameter {param}"));
            assert!(p.longdesc.ends_with(crate::word_rules!()), "{agent} {param}: {}", p.longdesc);
        }
    }

    #[test]
    fn words_name_the_parameter_they_cannot_split() {
        static TABLE: &[crate::ocf::ParamSpec] = &[crate::ocf::ParamSpec::string("options")];
        let given = |v: &str| [("options".to_string(), v.to_string())].into_iter().collect();
        let ok = Params::from_env(TABLE, &given("-c 'a b' -x")).unwrap();
        assert_eq!(words(&ok, "options").unwrap(), ["-c", "a b", "-x"]);
        let bad = Params::from_env(TABLE, &given("-c 'a")).unwrap();
        let e = words(&bad, "options").unwrap_err();
        assert_eq!(e.status, crate::ocf::OcfStatus::ErrConfigured);
        assert!(e.reason.contains("'options'") && e.reason.contains("quote"), "{}", e.reason);
        assert!(words(&Params::from_env(TABLE, &Default::default()).unwrap(), "options").unwrap().is_empty());
    }
}
