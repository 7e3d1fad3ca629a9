//! The node agent's side of the console's configuration push: `hastack agent apply` polls the
//! console for a cluster's desired changes and applies each one to the CIB with PLAN, COMMIT,
//! VERIFY and ROLLBACK (README.md, "Configuration changes from the console"). It links none of
//! the console: the wire type lives in `spec`, HTTP is ureq (as in the alert agent).

pub mod apply;
pub mod cib;
pub mod spec;
