//! Who listens on which TCP port: whether a service listens (monitor), and who holds a port a
//! service needs (the exit reason of a start that could not bind).

use std::fs;

use crate::sys::proc;

/// TCP sockets in LISTEN state (sock_diag, else /proc/net/tcp and tcp6): (port, socket inode).
pub fn listening_sockets() -> Vec<(u16, u64)> {
    // The kernel's sock_diag answers in microseconds; /proc/net/tcp costs milliseconds per read.
    if let Ok(found) = crate::net::sockdiag::tcp_listeners() {
        return found;
    }
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| parse_listeners(&text))
        .collect()
}

/// Parses /proc/net/tcp{,6}: `sl local_address rem_address st ... inode`; state 0A = LISTEN.
pub fn parse_listeners(text: &str) -> Vec<(u16, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3)? != &"0A" {
                return None;
            }
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            Some((port, f.get(9)?.parse().ok()?))
        })
        .collect()
}

/// Socket inodes a process holds open.
pub fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(|e| {
        let target = fs::read_link(e.ok()?.path()).ok()?;
        target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// Whether any of `pids` listens on TCP `port`.
pub fn listens_on(pids: &[i32], port: u16) -> bool {
    let inodes: Vec<u64> = listening_sockets().into_iter().filter(|(p, _)| *p == port).map(|(_, i)| i).collect();
    !inodes.is_empty() && pids.iter().any(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i)))
}

/// The PIDs (from all processes) that listen on TCP `port`: who holds a port we need.
pub fn port_holders(port: u16) -> Vec<i32> {
    let inodes: Vec<u64> = listening_sockets().into_iter().filter(|(p, _)| *p == port).map(|(_, i)| i).collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    proc::all_pids().into_iter().filter(|pid| socket_inodes(*pid).iter().any(|i| inodes.contains(i))).collect()
}

/// The TCP ports any of `pids` listens on, sorted and without duplicates.
pub fn listening_ports(pids: &[i32]) -> Vec<u16> {
    let mine: Vec<u64> = pids.iter().flat_map(|p| socket_inodes(*p)).collect();
    let mut ports: Vec<u16> =
        listening_sockets().into_iter().filter(|(_, inode)| mine.contains(inode)).map(|(port, _)| port).collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// "port 8080 is already held by PID 123 (nginx)" for the first of `ports` some process other
/// than `ours` listens on: the exit reason when a daemon could not bind, or would not.
pub fn describe_port_holder(ports: &[u16], ours: &[i32]) -> Option<String> {
    ports.iter().find_map(|&port| {
        let holders: Vec<i32> = port_holders(port).into_iter().filter(|p| !ours.contains(p)).collect();
        (!holders.is_empty()).then(|| format!("port {port} is already held by {}", proc::describe(&holders)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_listeners() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(parse_listeners(text), vec![(8080, 12345)]);
    }

    #[test]
    fn own_listener_is_found() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        assert!(listens_on(&[me], port));
        assert!(port_holders(port).contains(&me));
        drop(l);
        assert!(!listens_on(&[me], port));
    }

    #[test]
    fn names_the_holder_of_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let me = std::process::id() as i32;
        let text = describe_port_holder(&[port], &[]).unwrap();
        assert!(text.contains(&format!("port {port} is already held by PID {me}")), "{text}");
        assert!(describe_port_holder(&[port], &[me]).is_none());
        assert!(listening_ports(&[me]).contains(&port));
    }
}
