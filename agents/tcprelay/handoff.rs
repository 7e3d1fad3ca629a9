//! The transfer of the migration state from the source node to the target node.
//!
//! The source's relay, once frozen, serves the state on `handoff_port` of every address of the
//! source node; migrate_from on the target fetches it from the address the Pacemaker node name
//! `CRM_meta_migrate_source` resolves to (as VirtualDomain reaches its migration target). Both
//! ends prove they hold the cluster's shared key (default `/etc/corosync/authkey`, the same file
//! on every node) by HMAC-SHA-256 over fresh nonces of both sides, before the state is sent; the
//! state carries an HMAC too. The state is not encrypted: it holds the clients' bytes as they
//! cross the network anyway (ciphertext for TLS clients), and sequence numbers a listener on the
//! path sees already. Every step has a deadline; the source serves one exchange at a time.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::net::scram::hmac;
use crate::net::wire;
use crate::ocf::Deadline;

use super::state::MAX_STATE;

const HELLO: &[u8; 12] = b"HSTHANDOFF1\n";
const NONCE: usize = 32;
/// The shortest key accepted (corosync-keygen writes 256 bytes).
const MIN_KEY: usize = 16;
/// The longest any one step of an exchange may take on the source (a silent peer is dropped).
pub const STEP: Duration = Duration::from_secs(5);
const OK: u8 = 0;
const REFUSED: u8 = 1;

/// The shared key both nodes hold.
pub struct Key(Vec<u8>);

impl Key {
    pub fn load(path: &Path) -> Result<Key, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read the handoff key {}: {e}", path.display()))?;
        if bytes.len() < MIN_KEY {
            return Err(format!(
                "the handoff key {} holds {} bytes, fewer than {MIN_KEY} (corosync-keygen makes one)",
                path.display(),
                bytes.len()
            ));
        }
        Ok(Key(bytes))
    }

    #[cfg(test)]
    fn from(bytes: &[u8]) -> Key {
        Key(bytes.to_vec())
    }

    /// HMAC of a label and length-prefixed parts (no part can be shifted into another).
    fn mac(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut data = Vec::with_capacity(label.len() + parts.iter().map(|p| p.len() + 4).sum::<usize>());
        data.extend_from_slice(label.as_bytes());
        for p in parts {
            data.extend_from_slice(&(p.len() as u32).to_be_bytes());
            data.extend_from_slice(p);
        }
        hmac(&self.0, &data)
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn nonce() -> Result<[u8; NONCE], String> {
    let mut n = [0u8; NONCE];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut n))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(n)
}

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn read_u32(s: &mut TcpStream, deadline: Deadline, what: &str) -> Result<u32, String> {
    let mut b = [0u8; 4];
    wire::read_exact(s, &mut b, deadline).map_err(io(what))?;
    Ok(u32::from_be_bytes(b))
}

fn read_vec(s: &mut TcpStream, n: usize, deadline: Deadline, what: &str) -> Result<Vec<u8>, String> {
    wire::read_body(s, n, deadline).map_err(io(what))
}

/// The target's side: fetches the state of `resource` from the source at `addr`.
pub fn fetch(addr: SocketAddr, key: &Key, resource: &str, deadline: Deadline) -> Result<Vec<u8>, String> {
    let left = deadline.remaining();
    if left.is_zero() {
        return Err("no time left".into());
    }
    let mut s = TcpStream::connect_timeout(&addr, left).map_err(io("connect"))?;
    s.set_nodelay(true).ok();
    let mine = nonce()?;
    let mut hello = HELLO.to_vec();
    hello.extend_from_slice(&(resource.len() as u32).to_be_bytes());
    hello.extend_from_slice(resource.as_bytes());
    hello.extend_from_slice(&mine);
    wire::write_all(&mut s, &hello, deadline).map_err(io("sending the request"))?;
    let theirs = read_vec(&mut s, NONCE, deadline, "the source's answer")?;
    let proof = read_vec(&mut s, 32, deadline, "the source's answer")?;
    if !same(&proof, &key.mac("source", &[resource.as_bytes(), &mine, &theirs])) {
        return Err("the source does not hold the same handoff key".into());
    }
    let answer = key.mac("target", &[resource.as_bytes(), &theirs, &mine]);
    wire::write_all(&mut s, &answer, deadline).map_err(io("sending the proof"))?;
    let mut status = [0u8; 1];
    wire::read_exact(&mut s, &mut status, deadline).map_err(io("the source's verdict"))?;
    if status[0] != OK {
        let n = read_u32(&mut s, deadline, "the source's refusal")? as usize;
        let why = read_vec(&mut s, n.min(4096), deadline, "the source's refusal")?;
        return Err(format!("the source refused: {}", String::from_utf8_lossy(&why)));
    }
    let mut len = [0u8; 8];
    wire::read_exact(&mut s, &mut len, deadline).map_err(io("the state's length"))?;
    let len = u64::from_be_bytes(len) as usize;
    if len > MAX_STATE {
        return Err(format!("the source announced a state of {len} bytes"));
    }
    let state = read_vec(&mut s, len, deadline, "the state")?;
    let mac = read_vec(&mut s, 32, deadline, "the state's MAC")?;
    if !same(&mac, &key.mac("state", &[&mine, &theirs, &state])) {
        return Err("the state arrived damaged (its MAC does not match)".into());
    }
    wire::write_all(&mut s, b"OK", deadline).map_err(io("acknowledging the state"))?;
    Ok(state)
}

/// The source's side of one exchange on an accepted connection. Ok(true) once the target has
/// acknowledged the whole state; Ok(false) when the peer was refused (it proved no key, or asked
/// for another resource); Err when it went away.
pub fn serve(mut s: TcpStream, key: &Key, resource: &str, state: &[u8]) -> Result<bool, String> {
    s.set_nodelay(true).ok();
    let step = || Deadline::after(STEP);
    let hello = read_vec(&mut s, HELLO.len(), step(), "the request")?;
    if hello != HELLO {
        return Ok(false);
    }
    let n = read_u32(&mut s, step(), "the request")? as usize;
    if n > 1024 {
        return Ok(false);
    }
    let asked = read_vec(&mut s, n, step(), "the request")?;
    let theirs = read_vec(&mut s, NONCE, step(), "the request")?;
    let mine = nonce()?;
    let mut answer = mine.to_vec();
    answer.extend_from_slice(&key.mac("source", &[&asked, &theirs, &mine]));
    wire::write_all(&mut s, &answer, step()).map_err(io("answering"))?;
    let proof = read_vec(&mut s, 32, step(), "the target's proof")?;
    let refuse = |s: &mut TcpStream, why: &str| {
        let mut msg = vec![REFUSED];
        msg.extend_from_slice(&(why.len() as u32).to_be_bytes());
        msg.extend_from_slice(why.as_bytes());
        let _ = wire::write_all(s, &msg, step());
        Ok(false)
    };
    if !same(&proof, &key.mac("target", &[&asked, &mine, &theirs])) {
        return refuse(&mut s, "the target does not hold the same handoff key");
    }
    if asked != resource.as_bytes() {
        return refuse(&mut s, &format!("this node holds the state of {resource}"));
    }
    let mut msg = vec![OK];
    msg.extend_from_slice(&(state.len() as u64).to_be_bytes());
    wire::write_all(&mut s, &msg, step()).map_err(io("sending the state"))?;
    // A large state gets a deadline in proportion (at least 10 MB/s).
    let budget = STEP + Duration::from_millis((state.len() / 10_000) as u64);
    wire::write_all(&mut s, state, Deadline::after(budget)).map_err(io("sending the state"))?;
    wire::write_all(&mut s, &key.mac("state", &[&theirs, &mine, state]), step()).map_err(io("sending the state"))?;
    let ack = read_vec(&mut s, 2, step(), "the target's acknowledgement")?;
    Ok(ack == b"OK")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn exchange(
        server_key: &[u8],
        client_key: &[u8],
        held: &str,
        asked: &str,
    ) -> (Result<Vec<u8>, String>, Result<bool, String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (sk, held) = (server_key.to_vec(), held.to_string());
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            serve(s, &Key::from(&sk), &held, b"the state")
        });
        let got = fetch(addr, &Key::from(client_key), asked, Deadline::after(Duration::from_secs(5)));
        (got, server.join().unwrap())
    }

    #[test]
    fn delivers_to_a_peer_with_the_key() {
        let (got, served) = exchange(b"0123456789abcdef", b"0123456789abcdef", "r1", "r1");
        assert_eq!(got.unwrap(), b"the state");
        assert!(served.unwrap());
    }

    #[test]
    fn refuses_other_keys_and_resources() {
        let (got, served) = exchange(b"0123456789abcdef", b"0123456789abcdeX", "r1", "r1");
        assert!(got.unwrap_err().contains("same handoff key"));
        assert!(!served.unwrap_or(false));
        let (got, served) = exchange(b"0123456789abcdef", b"0123456789abcdef", "r1", "r2");
        assert!(got.unwrap_err().contains("holds the state of r1"), "refused with a reason");
        assert!(!served.unwrap());
    }

    #[test]
    fn short_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, b"short").unwrap();
        assert!(Key::load(&path).err().unwrap().contains("fewer than 16"));
        assert!(Key::load(&dir.path().join("missing")).is_err());
    }
}
