//! A configuration the server rejected, and the exit code that follows from where it lives
//! (DESIGN.md rule 10). 6 stops the resource on every node, so it is only for a fault that is
//! the same everywhere: a file on the replicated partition (inside the data directory, which
//! moves with the service) or the agent's own parameters. A node-local file (`/etc/...`) is 2:
//! banned on this node, the peer, with its own copy, takes over. When the agent cannot tell
//! which file it was, it says so and answers 2: a wrong 2 costs one more failed start on the
//! peer, a wrong 6 takes the service down cluster-wide.

use std::path::{Component, Path, PathBuf};

use crate::ocf::OcfError;

/// What the server rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// The file the server named (or the one that sets the option it rejected).
    File(PathBuf),
    /// An agent parameter the server rejected (an option the agent passes on its command line).
    Parameter(String),
    /// A fault the agent could not tie to one file, described (e.g. "option file X or a file
    /// it includes"): treated as node-local.
    Unplaced(String),
}

/// The error for a server that refused its configuration: `server` names it in the reason,
/// `data_dir` is the directory on the replicated partition (None for the front layer, which
/// has none: every file it reads is node-local), `lines` what the server said.
pub fn rejected(server: &str, culprit: &Culprit, data_dir: Option<&Path>, lines: &str) -> OcfError {
    let said = if lines.is_empty() { String::new() } else { format!(": {lines}") };
    match culprit {
        Culprit::File(file) if data_dir.is_some_and(|d| is_inside(file, d)) => OcfError::configured(format!(
            "configuration file {} on the replicated partition rejected by {server}: fatal everywhere{said}",
            file.display()
        )),
        Culprit::File(file) => OcfError::args(format!(
            "node-local configuration file {} rejected by {server}: banned on this node{said}",
            file.display()
        )),
        Culprit::Parameter(param) => {
            OcfError::configured(format!("parameter '{param}' rejected by {server}: fatal everywhere{said}"))
        }
        Culprit::Unplaced(what) => {
            OcfError::args(format!("node-local configuration ({what}) rejected by {server}: banned on this node{said}"))
        }
    }
}

/// Whether `file` lies inside `dir`, by path components after resolving symbolic links and
/// `..` in both (a symlink in the data directory to /etc is node-local; a data directory given
/// through a symlink still contains its files). A path that cannot be resolved (a file that
/// does not exist) is compared as written, made absolute and normalised.
pub fn is_inside(file: &Path, dir: &Path) -> bool {
    let resolve = |p: &Path| p.canonicalize().unwrap_or_else(|_| normalize(p));
    resolve(file).starts_with(resolve(dir))
}

/// `.` and `..` removed lexically; relative paths taken from the root (agent paths are absolute).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The text between `start` and the next `end` after it, in the last line of `text` that has
/// `start` (servers name the file in their final, fatal line).
pub fn last_between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let at = text.rfind(start)? + start.len();
    let rest = &text[at..];
    let stop = rest.find(end).unwrap_or(rest.len());
    Some(rest[..stop].trim()).filter(|s| !s.is_empty())
}

/// The first absolute path that follows `start` in `text`, up to `end` (servers name the
/// file at fault as `... of /etc/x.conf:`, `parsing [/etc/x.cfg:5]`, `in /etc/x.conf:3`).
pub fn path_after(text: &str, start: &str, end: char) -> Option<PathBuf> {
    text.match_indices(start).find_map(|(at, _)| {
        let rest = &text[at + start.len()..];
        let path = &rest[..rest.find(end).unwrap_or(rest.len())];
        path.starts_with('/').then(|| PathBuf::from(path.trim_end()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfStatus;

    #[test]
    fn inside_by_components_not_by_prefix() {
        assert!(is_inside(Path::new("/srv/data/pg/postgresql.auto.conf"), Path::new("/srv/data/pg")));
        assert!(is_inside(Path::new("/srv/data/pg/conf.d/../x.conf"), Path::new("/srv/data/pg/")));
        assert!(!is_inside(Path::new("/srv/data/pg2/postgresql.conf"), Path::new("/srv/data/pg")));
        assert!(!is_inside(Path::new("/srv/data/pg/../etc.conf"), Path::new("/srv/data/pg")));
        assert!(!is_inside(Path::new("/etc/postgresql/15/main/postgresql.conf"), Path::new("/srv/data/pg")));
    }

    #[test]
    fn symlinks_are_resolved_on_both_sides() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("node.conf"), "").unwrap();
        std::fs::write(data.join("auto.conf"), "").unwrap();
        // A link inside the data directory to a node-local file: node-local.
        std::os::unix::fs::symlink(etc.join("node.conf"), data.join("linked.conf")).unwrap();
        assert!(!is_inside(&data.join("linked.conf"), &data));
        // The data directory named through a link: its files are inside.
        let link = dir.path().join("pgdata");
        std::os::unix::fs::symlink(&data, &link).unwrap();
        assert!(is_inside(&data.join("auto.conf"), &link));
        assert!(is_inside(&link.join("auto.conf"), &data));
    }

    #[test]
    fn codes_and_reasons_say_where() {
        let data = Path::new("/srv/data/pg");
        let local = rejected("postgres", &Culprit::File("/etc/pg.conf".into()), Some(data), "FATAL: x");
        assert_eq!(local.status, OcfStatus::ErrArgs);
        assert_eq!(
            local.reason,
            "node-local configuration file /etc/pg.conf rejected by postgres: banned on this node: FATAL: x"
        );
        let shared = rejected("postgres", &Culprit::File("/srv/data/pg/a.conf".into()), Some(data), "");
        assert_eq!(shared.status, OcfStatus::ErrConfigured);
        assert_eq!(
            shared.reason,
            "configuration file /srv/data/pg/a.conf on the replicated partition rejected by postgres: fatal everywhere"
        );
        // The front layer has no replicated directory: its files are node-local.
        assert_eq!(rejected("nginx", &Culprit::File("/srv/data/n.conf".into()), None, "").status, OcfStatus::ErrArgs);
        let param = rejected("postgres", &Culprit::Parameter("options".into()), Some(data), "");
        assert_eq!(param.status, OcfStatus::ErrConfigured);
        assert!(param.reason.starts_with("parameter 'options' rejected by postgres: fatal everywhere"));
        let unplaced = rejected("mariadbd", &Culprit::Unplaced("option file /x.cnf".into()), Some(data), "");
        assert_eq!(unplaced.status, OcfStatus::ErrArgs);
    }

    #[test]
    fn finds_the_first_path_after_a_marker() {
        let apache = "AH00526: Syntax error on line 38 of /etc/apache2/sites-enabled/x.conf: | Invalid command 'X', perhaps misspelled";
        assert_eq!(path_after(apache, " of ", ':'), Some("/etc/apache2/sites-enabled/x.conf".into()));
        let skip = "line 1 of the file | line 2 of /etc/b.conf:";
        assert_eq!(path_after(skip, " of ", ':'), Some("/etc/b.conf".into()));
        assert_eq!(
            path_after("parsing [/etc/haproxy/haproxy.cfg:5] : unknown", "parsing [", ':'),
            Some("/etc/haproxy/haproxy.cfg".into())
        );
        assert_eq!(path_after("nothing", " of ", ':'), None);
    }

    #[test]
    fn finds_the_last_named_file() {
        let log = "LOG: x in file \"/a.conf\" line 3 | FATAL:  configuration file \"/b.conf\" contains errors";
        assert_eq!(last_between(log, "configuration file \"", "\""), Some("/b.conf"));
        assert_eq!(last_between(log, "nothing", "\""), None);
    }
}
