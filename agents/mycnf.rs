//! MariaDB option files, read for one question: which file sets an option the server rejected
//! (its message names the option, not the file). The option file given with --defaults-file and
//! what it includes (`!include FILE`, `!includedir DIR`: DIR's `*.cnf`, in name order), the
//! server's groups only.

use std::fs;
use std::path::{Path, PathBuf};

/// How deep `!include`s are followed (MariaDB's own limit is 10).
const MAX_DEPTH: usize = 10;

/// The option the server rejected, from its error log: `unknown variable 'NAME=VALUE'`,
/// `unknown option '--NAME'`, `Error while setting value 'V' to 'NAME'`.
pub fn rejected_option(log: &str) -> Option<String> {
    let between = |start: &str| crate::agents::service::config_fault::last_between(log, start, "'");
    let raw = between("unknown variable '").or_else(|| between("unknown option '")).or_else(|| {
        log.rfind("Error while setting value '")
            .and_then(|at| crate::agents::service::config_fault::last_between(&log[at..], "' to '", "'"))
    })?;
    // Canonical first: a name of blanks only (`'--\n='`) is no name.
    let name = canonical(raw.trim().trim_start_matches('-').split('=').next().unwrap_or(""));
    (!name.is_empty()).then_some(name)
}

/// The file a server-side syntax error names: `... in config file: F at line: N` (or without
/// the colons, as older versions write it).
pub fn file_in_error(log: &str) -> Option<PathBuf> {
    let tail = &log[log.rfind("config file")? + "config file".len()..];
    let tail = tail.trim_start_matches(':').trim_start();
    let end = tail.find(" at line").unwrap_or(tail.len());
    Some(PathBuf::from(tail[..end].trim())).filter(|p| p.is_absolute())
}

/// Option names as the server compares them: `-` and `_` alike, case-insensitive.
pub fn canonical(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('-', "_")
}

/// The groups mariadbd reads.
fn server_group(group: &str) -> bool {
    let g = group.trim().to_ascii_lowercase();
    matches!(g.as_str(), "mysqld" | "server" | "mariadbd" | "mariadb" | "client-server" | "galera" | "embedded")
        || ["mysqld-", "mariadbd-", "mariadb-"].iter().any(|p| g.starts_with(p))
}

/// Every file (the option file and what it includes) whose server groups set `option`.
pub fn files_setting(option_file: &Path, option: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    visit(option_file, &canonical(option), 0, &mut found);
    found
}

fn visit(file: &Path, option: &str, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(text) = fs::read_to_string(file) else { return };
    let mut in_server_group = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("!includedir") {
            if depth < MAX_DEPTH {
                let mut files: Vec<PathBuf> = fs::read_dir(rest.trim())
                    .map(|d| {
                        d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "cnf")).collect()
                    })
                    .unwrap_or_default();
                files.sort();
                for f in files {
                    visit(&f, option, depth + 1, found);
                }
            }
        } else if let Some(rest) = line.strip_prefix("!include") {
            if depth < MAX_DEPTH {
                visit(Path::new(rest.trim()), option, depth + 1, found);
            }
        } else if let Some(group) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            in_server_group = server_group(group);
        } else if in_server_group && !line.starts_with('#') && !line.starts_with(';') {
            // A `loose-` option the server does not know is ignored, never rejected.
            let key = canonical(line.split('=').next().unwrap_or(""));
            if key == option && !found.iter().any(|f| f == file) {
                found.push(file.to_path_buf());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rejected_option_from_the_log() {
        let log = "[Note] x | [ERROR] /usr/sbin/mariadbd: unknown variable 'no_such_option=1' | [ERROR] Aborting";
        assert_eq!(rejected_option(log).as_deref(), Some("no_such_option"));
        assert_eq!(rejected_option("[ERROR] mariadbd: unknown option '--bogus-opt'").as_deref(), Some("bogus_opt"));
        let set = "[ERROR] Buffered error: /usr/sbin/mariadbd: Error while setting value 'abc' to 'max_connections'";
        assert_eq!(rejected_option(set).as_deref(), Some("max_connections"));
        assert_eq!(rejected_option("[ERROR] Can't start server: Bind on TCP/IP port"), None);
        // Found by the log_tail fuzz target: an option of blanks named the option ''.
        assert_eq!(rejected_option("unknown option '--\n\n=x'"), None);
        assert_eq!(rejected_option("unknown variable ' '"), None);
    }

    #[test]
    fn the_file_a_syntax_error_names() {
        let log =
            "error: Found option without preceding group in config file: /etc/mysql/x.cnf at line: 1 | Fatal error";
        assert_eq!(file_in_error(log), Some(PathBuf::from("/etc/mysql/x.cnf")));
        assert_eq!(
            file_in_error("error: Found option without preceding group in config file /a.cnf at line 1"),
            Some("/a.cnf".into())
        );
        assert_eq!(file_in_error("nothing here"), None);
    }

    #[test]
    fn finds_the_file_that_sets_an_option_through_includes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("conf.d")).unwrap();
        fs::write(
            d.join("my.cnf"),
            format!(
                "[client]\nno_such=1\n[mysqld]\nport=3306\n!include {}\n!includedir {}\n",
                d.join("extra.cnf").display(),
                d.join("conf.d").display()
            ),
        )
        .unwrap();
        fs::write(d.join("extra.cnf"), "[mysqld]\nmax-connections = abc\n").unwrap();
        fs::write(d.join("conf.d/50-server.cnf"), "[mariadbd]\n# no_such=1\nloose-absent = 1\nno-such = 2\n").unwrap();
        fs::write(d.join("conf.d/ignored.txt"), "[mysqld]\nno_such=1\n").unwrap();
        assert_eq!(files_setting(&d.join("my.cnf"), "max_connections"), vec![d.join("extra.cnf")]);
        // The [client] group is not the server's; the commented line and the .txt do not count.
        assert_eq!(files_setting(&d.join("my.cnf"), "no_such"), vec![d.join("conf.d/50-server.cnf")]);
        assert!(files_setting(&d.join("my.cnf"), "absent").is_empty());
    }
}
