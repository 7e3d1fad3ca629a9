//! What the source node's relay hands to the target's in a live migration: every carried
//! connection's TCP state (sequence numbers, options, windows, queues) and the bytes the relay
//! itself held in either direction. A small versioned binary format, pure encode/decode, so it is
//! tested without sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::net::tcprepair::{RepairWindow, TcpState};

const MAGIC: &[u8; 8] = b"HSTRLY01";
/// A state larger than this is refused before it is read (a garbled length).
pub const MAX_STATE: usize = 1 << 30;

/// The relay's whole state at the moment the source released the address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    pub resource: String,
    /// The virtual address and port the clients connect to.
    pub listen: SocketAddr,
    /// Wall-clock milliseconds (CLOCK_REALTIME) when the source stopped reading its clients
    /// and when it removed the address: the target reports the freeze from them.
    pub frozen_at_ms: u64,
    pub released_at_ms: u64,
    pub connections: Vec<Carried>,
}

/// One client connection on its way to the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Carried {
    pub tcp: TcpState,
    /// Bytes read from the client and not yet given to the application (at most the start of
    /// one message: what follows the last complete one).
    pub to_backend: Vec<u8>,
    /// Bytes the application answered that were not yet written to the client's socket.
    pub to_client: Vec<u8>,
}

impl Migration {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64 + self.connections.iter().map(Carried::size).sum::<usize>());
        w.extend_from_slice(MAGIC);
        put_bytes(&mut w, self.resource.as_bytes());
        put_addr(&mut w, &self.listen);
        put_u64(&mut w, self.frozen_at_ms);
        put_u64(&mut w, self.released_at_ms);
        put_u32(&mut w, self.connections.len() as u32);
        for c in &self.connections {
            let t = &c.tcp;
            put_addr(&mut w, &t.local);
            put_addr(&mut w, &t.peer);
            put_u32(&mut w, t.send_seq);
            put_bytes(&mut w, &t.send_queue);
            put_u32(&mut w, t.unsent);
            put_u32(&mut w, t.recv_seq);
            put_bytes(&mut w, &t.recv_queue);
            put_u32(&mut w, t.mss);
            match t.wscale {
                Some((snd, rcv)) => w.extend_from_slice(&[1, snd, rcv]),
                None => w.extend_from_slice(&[0, 0, 0]),
            }
            w.push(t.sack as u8);
            match t.timestamp {
                Some(ts) => {
                    w.push(1);
                    put_u32(&mut w, ts);
                }
                None => w.push(0),
            }
            let win = &t.window;
            for v in [win.snd_wl1, win.snd_wnd, win.max_window, win.rcv_wnd, win.rcv_wup, t.rcvbuf, t.sndbuf] {
                put_u32(&mut w, v);
            }
            put_bytes(&mut w, &c.to_backend);
            put_bytes(&mut w, &c.to_client);
        }
        w
    }

    pub fn decode(data: &[u8]) -> Result<Migration, String> {
        let mut r = Reader { data, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err("not a hastack tcprelay migration state (or another version)".into());
        }
        let resource = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| "resource name is not UTF-8")?;
        let listen = r.addr()?;
        let frozen_at_ms = r.u64()?;
        let released_at_ms = r.u64()?;
        let count = r.u32()? as usize;
        let mut connections = Vec::with_capacity(count.min(65536));
        for _ in 0..count {
            let local = r.addr()?;
            let peer = r.addr()?;
            let send_seq = r.u32()?;
            let send_queue = r.bytes()?.to_vec();
            let unsent = r.u32()?;
            if unsent as usize > send_queue.len() {
                return Err(format!(
                    "connection from {peer}: {unsent} unsent bytes in a send queue of {}",
                    send_queue.len()
                ));
            }
            let recv_seq = r.u32()?;
            let recv_queue = r.bytes()?.to_vec();
            let mss = r.u32()?;
            let ws = r.take(3)?;
            let wscale = (ws[0] == 1).then_some((ws[1], ws[2]));
            let sack = r.take(1)?[0] == 1;
            let timestamp = if r.take(1)?[0] == 1 { Some(r.u32()?) } else { None };
            let window = RepairWindow {
                snd_wl1: r.u32()?,
                snd_wnd: r.u32()?,
                max_window: r.u32()?,
                rcv_wnd: r.u32()?,
                rcv_wup: r.u32()?,
            };
            let (rcvbuf, sndbuf) = (r.u32()?, r.u32()?);
            let to_backend = r.bytes()?.to_vec();
            let to_client = r.bytes()?.to_vec();
            let tcp = TcpState {
                local,
                peer,
                send_seq,
                send_queue,
                unsent,
                recv_seq,
                recv_queue,
                mss,
                wscale,
                sack,
                timestamp,
                window,
                rcvbuf,
                sndbuf,
            };
            connections.push(Carried { tcp, to_backend, to_client });
        }
        if r.at != data.len() {
            return Err(format!("{} bytes of garbage after the state", data.len() - r.at));
        }
        Ok(Migration { resource, listen, frozen_at_ms, released_at_ms, connections })
    }

    /// Totals for the log: (sent and unacknowledged, unsent, unread, held by the relay).
    pub fn totals(&self) -> (usize, usize, usize, usize) {
        self.connections.iter().fold((0, 0, 0, 0), |(a, u, r, h), c| {
            let t = &c.tcp;
            (
                a + t.sent_part().len(),
                u + t.unsent_part().len(),
                r + t.recv_queue.len(),
                h + c.to_backend.len() + c.to_client.len(),
            )
        })
    }
}

impl Carried {
    fn size(&self) -> usize {
        128 + self.tcp.send_queue.len() + self.tcp.recv_queue.len() + self.to_backend.len() + self.to_client.len()
    }
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(w: &mut Vec<u8>, b: &[u8]) {
    put_u32(w, b.len() as u32);
    w.extend_from_slice(b);
}

fn put_addr(w: &mut Vec<u8>, a: &SocketAddr) {
    match a {
        SocketAddr::V4(v4) => {
            w.push(4);
            w.extend_from_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            w.push(6);
            w.extend_from_slice(&v6.ip().octets());
            put_u32(w, v6.scope_id());
        }
    }
    w.extend_from_slice(&a.port().to_be_bytes());
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.data.len()).ok_or("the state is truncated")?;
        let out = &self.data[self.at..end];
        self.at = end;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn addr(&mut self) -> Result<SocketAddr, String> {
        let family = self.take(1)?[0];
        let (ip, scope) = match family {
            4 => (IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).expect("4 bytes"))), 0),
            6 => {
                let ip = Ipv6Addr::from(<[u8; 16]>::try_from(self.take(16)?).expect("16 bytes"));
                (IpAddr::V6(ip), self.u32()?)
            }
            other => return Err(format!("unknown address family {other} in the state")),
        };
        let port = u16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        Ok(match ip {
            IpAddr::V6(v6) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)),
            v4 => SocketAddr::new(v4, port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Migration {
        let tcp = |peer: &str, ts: Option<u32>, wscale: Option<(u8, u8)>| TcpState {
            local: "10.1.0.10:8080".parse().unwrap(),
            peer: peer.parse().unwrap(),
            send_seq: 4_294_967_000,
            send_queue: b"sent and unacked|never sent".to_vec(),
            unsent: 10,
            recv_seq: 7,
            recv_queue: b"unread".to_vec(),
            mss: 1448,
            wscale,
            sack: true,
            timestamp: ts,
            window: RepairWindow { snd_wl1: 1, snd_wnd: 2, max_window: 3, rcv_wnd: 4, rcv_wup: 5 },
            rcvbuf: 131072,
            sndbuf: 16384,
        };
        Migration {
            resource: "relay1".into(),
            listen: "10.1.0.10:8080".parse().unwrap(),
            frozen_at_ms: 1_700_000_000_000,
            released_at_ms: 1_700_000_000_012,
            connections: vec![
                Carried {
                    tcp: tcp("10.1.0.3:40000", Some(123), Some((7, 9))),
                    to_backend: b"half a li".to_vec(),
                    to_client: vec![],
                },
                Carried {
                    tcp: tcp("[2001:db8::3%2]:40001", None, None),
                    to_backend: vec![],
                    to_client: b"answer\n".to_vec(),
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let data = m.encode();
        assert_eq!(Migration::decode(&data).unwrap(), m);
        let c = &m.connections[0].tcp;
        assert_eq!(c.sent_part(), b"sent and unacked|");
        assert_eq!(c.unsent_part(), b"never sent");
        assert_eq!(m.totals(), (34, 20, 12, 16));
    }

    #[test]
    fn refuses_truncated_foreign_and_padded_input() {
        let data = sample().encode();
        for cut in [0, 5, 8, 20, data.len() - 1] {
            assert!(Migration::decode(&data[..cut]).is_err(), "{cut}");
        }
        let mut other = data.clone();
        other[7] = b'9';
        assert!(Migration::decode(&other).unwrap_err().contains("another version"));
        let mut padded = data.clone();
        padded.push(0);
        assert!(Migration::decode(&padded).unwrap_err().contains("garbage"));
    }
}
