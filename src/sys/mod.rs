//! The operating-system edge: processes, mounts. Pure parsers sit next to the thin I/O that
//! feeds them, so the parsers are tested on literal lines.

pub mod argv;
pub mod daemon;
pub mod direct_io;
pub mod fs_types;
pub mod holders;
pub mod mount;
pub mod mount_options;
pub mod proc;
