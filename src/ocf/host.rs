//! Level-10 checks of this host that every service agent makes, with the OCF code they mean.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::ocf::{OcfError, OcfResult};

/// An executable a parameter names (or implies): missing or not executable means the software is
/// not installed on this node (5), and the reason names the parameter.
pub fn require_executable(param: &str, path: &Path) -> OcfResult<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(_) => {
            Err(OcfError::installed(format!("{} (parameter '{param}') is not an executable file", path.display())))
        }
        Err(e) => Err(OcfError::installed(format!("{} (parameter '{param}'): {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::OcfStatus;

    #[test]
    fn executables_and_the_rest() {
        assert!(require_executable("binary", Path::new("/bin/sh")).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
        let missing = dir.path().join("missing");
        for path in [missing.to_str().unwrap(), plain.to_str().unwrap(), dir.path().to_str().unwrap()] {
            let e = require_executable("binary", Path::new(path)).unwrap_err();
            assert_eq!(e.status, OcfStatus::ErrInstalled);
            assert!(e.reason.contains("'binary'") && e.reason.contains(path), "{}", e.reason);
        }
    }
}
