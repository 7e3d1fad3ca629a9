//! Cluster tokens: 256 random bits, shown once by `cluster add`, stored as their SHA-256. A
//! slow password hash (argon2) would buy nothing for a random 256-bit secret and would cost every
//! report tens of milliseconds; SHA-256 also lets the token be looked up by its hash.

use std::io::Read;

use anyhow::{Context, Result};

use super::report::hex;

/// `hsc_` + 64 hex digits (the prefix lets secret scanners and people recognise it).
pub fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom")?;
    Ok(format!("hsc_{}", hex(&bytes)))
}

pub fn hash(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (super::generate().unwrap(), super::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert_eq!(super::hash(&a), super::hash(&format!("{a}\n")));
        assert_ne!(super::hash(&a), super::hash(&b));
    }
}
