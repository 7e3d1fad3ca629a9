//! Unix-socket connections for the database probes, made under a chosen effective user: servers
//! that authenticate local clients by the socket's peer credentials (PostgreSQL `peer`,
//! MariaDB `unix_socket`) then accept the monitor without any password.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::unistd::{geteuid, seteuid, Uid};

use crate::ocf::Deadline;

/// Connects to `path` as effective user `uid` (when running as root), then becomes root again.
/// The kernel records the peer credentials at connect time, so only the connect needs the uid.
pub fn connect_as(path: &Path, uid: Option<Uid>, deadline: Deadline) -> std::io::Result<UnixStream> {
    let switch = uid.filter(|u| geteuid().is_root() && !u.is_root());
    if let Some(u) = switch {
        seteuid(u).map_err(std::io::Error::from)?;
    }
    let stream = UnixStream::connect(path);
    if switch.is_some() {
        seteuid(Uid::from_raw(0)).map_err(std::io::Error::from)?;
    }
    let stream = stream?;
    let t = deadline.remaining().max(Duration::from_millis(1));
    stream.set_read_timeout(Some(t))?;
    stream.set_write_timeout(Some(t))?;
    Ok(stream)
}
