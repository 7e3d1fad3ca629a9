//! The operating-system edge: processes, mounts, daemons. Pure parsers sit next to the thin I/O
//! that feeds them, so the parsers are tested on literal lines.
//!
//! What a service agent needs of the system, one job per module: `proc` (reading /proc, running
//! and spawning commands), `identity` (a daemon known by PID and start time), `tree` (its
//! processes, and stopping them with escalation), `locks` (who holds a file lock), `listeners`
//! (who listens on a port), `logtail` (the end of its log).

pub mod argv;
pub mod direct_io;
pub mod fs_types;
pub mod holders;
pub mod identity;
pub mod listeners;
pub mod locks;
pub mod logtail;
pub mod mount;
pub mod mount_options;
pub mod proc;
pub mod tree;
