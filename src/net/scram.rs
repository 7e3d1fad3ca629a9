//! SCRAM-SHA-256 (RFC 5802, RFC 7677), the password authentication PostgreSQL uses by default
//! since version 14, for `pgwire` connections over TCP: the lab's ledger check connects to the
//! database through the data-layer address as the application's role, with its password.
//!
//! SHA-256, HMAC and PBKDF2 are written out here (about a hundred lines, checked against the
//! published test vectors below) rather than pulled in as three crates for one login.
//! Passwords are used as given (no SASLprep): fine for the ASCII passwords the lab generates.

/// SHA-256 (FIPS 180-4).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
        0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
        0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
        0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
        0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
        0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
        0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] =
        [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

/// HMAC-SHA-256 (RFC 2104).
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(data);
    let mut outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

/// PBKDF2-HMAC-SHA-256 with one output block (32 bytes): SCRAM's `Hi()`.
pub fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut u = hmac(password, &first);
    let mut out = u;
    for _ in 1..iterations {
        u = hmac(password, &u);
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | ((*b as u32) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The most PBKDF2 iterations the client computes for a server (PostgreSQL's `scram_iterations`,
/// 4096 by default). The count comes from the server: without a bound, a wrong or hostile
/// server could keep the client hashing for hours (2^32 iterations) whatever its deadline;
/// this many take well under a second here.
pub const MAX_ITERATIONS: u32 = 1_000_000;

/// One SCRAM-SHA-256 exchange, client side.
pub struct Scram {
    password: String,
    max_iterations: u32,
    client_first_bare: String,
    nonce: String,
    /// The server signature the last message must carry (set by `client_final`).
    expected_server_signature: Option<[u8; 32]>,
}

impl Scram {
    /// `user` may be empty: PostgreSQL takes the user from the startup message and ignores it here.
    pub fn new(user: &str, password: &str, nonce: &str) -> Scram {
        Scram {
            password: password.to_string(),
            max_iterations: MAX_ITERATIONS,
            client_first_bare: format!("n={},r={nonce}", user.replace('=', "=3D").replace(',', "=2C")),
            nonce: nonce.to_string(),
            expected_server_signature: None,
        }
    }

    /// Lowers the iteration bound (the fuzz target keeps each input cheap this way).
    pub fn with_max_iterations(mut self, max: u32) -> Scram {
        self.max_iterations = max;
        self
    }

    /// A client nonce of 18 random bytes from the kernel, base64.
    pub fn random_nonce() -> std::io::Result<String> {
        use std::io::Read;
        let mut bytes = [0u8; 18];
        std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(base64(&bytes))
    }

    /// client-first-message (no channel binding).
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// client-final-message for the server-first-message `server_first`.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, String> {
        let field = |k: &str| {
            server_first.split(',').find_map(|f| f.strip_prefix(k)).ok_or(format!("SCRAM: server message lacks '{k}'"))
        };
        let nonce = field("r=")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("SCRAM: the server's nonce does not extend ours".into());
        }
        let salt = unbase64(field("s=")?).ok_or("SCRAM: bad salt")?;
        let iterations: u32 = field("i=")?.parse().map_err(|_| "SCRAM: bad iteration count")?;
        if iterations == 0 {
            return Err("SCRAM: bad iteration count".into());
        }
        if iterations > self.max_iterations {
            return Err(format!(
                "SCRAM: the server asks for {iterations} iterations; this client computes at most {}",
                self.max_iterations
            ));
        }
        let salted = pbkdf2(self.password.as_bytes(), &salt, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(signature).map(|(k, s)| k ^ s).collect();
        let server_key = hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", base64(&proof)))
    }

    /// Checks the server-final-message: the server proves it knows the password too.
    pub fn verify_server(&self, server_final: &str) -> Result<(), String> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(format!("SCRAM: the server refused: {e}"));
        }
        let got = server_final.strip_prefix("v=").and_then(unbase64).ok_or("SCRAM: bad server-final message")?;
        match self.expected_server_signature {
            Some(want) if got == want => Ok(()),
            _ => Err("SCRAM: the server's signature is wrong (not the server we meant?)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_hmac_pbkdf2_match_published_vectors() {
        assert_eq!(hex(&sha256(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(hex(&sha256(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // Two blocks (56 bytes of input need a second block for the length).
        assert_eq!(
            hex(&sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // RFC 4231 test cases 2 and 6 (a key longer than a block).
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            hex(&pbkdf2(b"password", b"salt", 1)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&pbkdf2(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }

    #[test]
    fn base64_round_trips() {
        for (raw, text) in [(&b""[..], ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"foob", "Zm9vYg==")] {
            assert_eq!(base64(raw), text);
            assert_eq!(unbase64(text).unwrap(), raw);
        }
        assert!(unbase64("a*b").is_none());
    }

    #[test]
    fn scram_exchange_of_rfc7677() {
        let mut s = Scram::new("user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(s.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            s.client_final(server_first).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        s.verify_server("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert!(s.verify_server("v=AAAA").is_err());
        assert!(s.verify_server("e=invalid-proof").unwrap_err().contains("invalid-proof"));
        // A server that does not extend our nonce is refused.
        assert!(Scram::new("", "x", "abc").client_final("r=xyz1,s=AA==,i=1").is_err());
    }

    #[test]
    fn a_server_cannot_ask_for_unbounded_iterations() {
        let first = |i: u64| format!("r=abcdef,s=AA==,i={i}");
        let err = Scram::new("", "x", "abc").client_final(&first(u32::MAX as u64)).unwrap_err();
        assert_eq!(err, "SCRAM: the server asks for 4294967295 iterations; this client computes at most 1000000");
        assert!(Scram::new("", "x", "abc").client_final(&first(4096)).is_ok());
        let low = || Scram::new("", "x", "abc").with_max_iterations(16);
        assert!(low().client_final(&first(16)).is_ok());
        assert!(low().client_final(&first(17)).unwrap_err().contains("at most 16"));
    }
}
