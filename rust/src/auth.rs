//! Connection authentication: the server's `CHALLENGE` and what the shared-key MACs of
//! `HELLO` and `WELCOME` cover.
//!
//! ```text
//! server                                   client
//!   accept (source port < 1024 unless the server is insecure)
//!   CHALLENGE {nonce_s[32], u32 flags, u32 0}  ─►
//!                                          ◄─  HELLO {fields (40 B), nonce_c[32], mac_c[32]}
//!        mac_c = HMAC(key, HELLO_LABEL ‖ nonce_s ‖ nonce_c ‖ HELLO[..40])
//!   WELCOME {fields (34 B), mac_s[32]}     ─►
//!        mac_s = HMAC(key, WELCOME_LABEL ‖ nonce_s ‖ nonce_c ‖ WELCOME[..34] ‖ mac_c)
//! ```
//! Both sides prove knowledge of the key over a nonce the other side chose fresh, so a
//! recorded `HELLO` or `WELCOME` is worth nothing on another connection, and the labels keep
//! one side's MAC from being reflected as the other's. The MAC is HMAC-SHA256 (the kernel's
//! `lib/crypto` on both modules); this module only fixes the bytes it covers, so every
//! implementation (kernel, test programs) feeds the same input.

use super::codec::{Reader, Writer};
use super::error::{ProtoError, Result};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 32;
/// Bytes of a MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// Shortest shared key accepted.
pub const MIN_KEY_LEN: usize = 16;
/// Longest shared key accepted.
pub const MAX_KEY_LEN: usize = 256;
/// Domain separation of the client's MAC.
pub const HELLO_LABEL: &[u8; 16] = b"tether-hello-v1\0";
/// Domain separation of the server's MAC.
pub const WELCOME_LABEL: &[u8; 16] = b"tether-welcome1\0";

/// `CHALLENGE.flags`: the server requires an authenticated `HELLO`.
pub const C_AUTH: u32 = 1 << 0;
/// Every flag this version defines.
pub const C_ALL: u32 = C_AUTH;

/// `CHALLENGE`: the server's first frame on every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// Fresh random bytes the client's MAC must cover.
    pub nonce: [u8; NONCE_LEN],
    /// `C_*` bits.
    pub flags: u32,
}

impl Challenge {
    /// Encoded size.
    pub const LEN: usize = NONCE_LEN + 8;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.bytes(&self.nonce)?;
        w.u32(self.flags)?;
        w.u32(0)?;
        Ok(w.len())
    }

    /// Decodes a body: at least [`Challenge::LEN`] bytes (trailing bytes are fields of
    /// later versions), known flags only, the reserved word 0.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(r.bytes(NONCE_LEN)?);
        let flags = r.u32()?;
        if flags & !C_ALL != 0 || r.u32()? != 0 {
            return Err(ProtoError::BadValue);
        }
        Ok(Self { nonce, flags })
    }
}

/// The pieces the client's MAC covers, in order: feed them to HMAC-SHA256 one after the
/// other. `hello` is the encoded `HELLO` body; only its first
/// [`super::msg::Hello::LEN_V2`] bytes count (`Truncated` when it is shorter).
pub fn hello_mac_input<'a>(
    server_nonce: &'a [u8; NONCE_LEN],
    client_nonce: &'a [u8; NONCE_LEN],
    hello: &'a [u8],
) -> Result<[&'a [u8]; 4]> {
    let fields = hello
        .get(..super::msg::Hello::LEN_V2)
        .ok_or(ProtoError::Truncated)?;
    Ok([HELLO_LABEL, server_nonce, client_nonce, fields])
}

/// The pieces the server's MAC covers, in order. `welcome` is the encoded `WELCOME` body;
/// only its first [`super::msg::Welcome::LEN_V2`] bytes count; `hello_mac` is the MAC of
/// the `HELLO` it answers.
pub fn welcome_mac_input<'a>(
    server_nonce: &'a [u8; NONCE_LEN],
    client_nonce: &'a [u8; NONCE_LEN],
    welcome: &'a [u8],
    hello_mac: &'a [u8; MAC_LEN],
) -> Result<[&'a [u8]; 5]> {
    let fields = welcome
        .get(..super::msg::Welcome::LEN_V2)
        .ok_or(ProtoError::Truncated)?;
    Ok([WELCOME_LABEL, server_nonce, client_nonce, fields, hello_mac])
}

/// Compares two MACs in time independent of where they differ.
pub fn mac_eq(a: &[u8; MAC_LEN], b: &[u8; MAC_LEN]) -> bool {
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The shared key in a key file's bytes: the content without trailing white space
/// (`\n`, `\r`, space, tab). `BadValue` when it is shorter than [`MIN_KEY_LEN`] or longer
/// than [`MAX_KEY_LEN`].
pub fn key_from_file(content: &[u8]) -> Result<&[u8]> {
    let mut end = content.len();
    while let Some(b) = end.checked_sub(1).and_then(|i| content.get(i)) {
        if !matches!(b, b'\n' | b'\r' | b' ' | b'\t') {
            break;
        }
        end = end.saturating_sub(1);
    }
    let key = content.get(..end).ok_or(ProtoError::Truncated)?;
    if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
        return Err(ProtoError::BadValue);
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Hello, Welcome};

    #[test]
    fn challenge_round_trip_and_refusals() {
        let c = Challenge {
            nonce: [7; NONCE_LEN],
            flags: C_AUTH,
        };
        let mut b = [0u8; 64];
        assert_eq!(c.encode(&mut b), Ok(Challenge::LEN));
        assert_eq!(Challenge::decode(&b[..Challenge::LEN]), Ok(c));
        // Trailing bytes: later fields.
        assert_eq!(Challenge::decode(&b[..Challenge::LEN + 3]), Ok(c));
        for n in 0..Challenge::LEN {
            assert_eq!(Challenge::decode(&b[..n]), Err(ProtoError::Truncated));
        }
        let mut bad = b;
        bad[NONCE_LEN] = 0x80;
        assert_eq!(Challenge::decode(&bad[..40]), Err(ProtoError::BadValue));
        let mut bad = b;
        bad[NONCE_LEN + 4] = 1;
        assert_eq!(Challenge::decode(&bad[..40]), Err(ProtoError::BadValue));
        assert_eq!(c.encode(&mut b[..39]), Err(ProtoError::TooLong));
    }

    #[test]
    fn mac_inputs_cover_the_fixed_fields_only() {
        let (s, c) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
        let body = [9u8; Hello::LEN];
        let parts = hello_mac_input(&s, &c, &body).unwrap_or([&[]; 4]);
        assert_eq!(parts[0], HELLO_LABEL);
        assert_eq!(parts[1], &s);
        assert_eq!(parts[2], &c);
        assert_eq!(parts[3].len(), Hello::LEN_V2);
        assert_eq!(
            hello_mac_input(&s, &c, &body[..Hello::LEN_V2 - 1]),
            Err(ProtoError::Truncated)
        );
        let wbody = [3u8; Welcome::LEN];
        let m = [4u8; MAC_LEN];
        let parts = welcome_mac_input(&s, &c, &wbody, &m).unwrap_or([&[]; 5]);
        assert_eq!(parts[0], WELCOME_LABEL);
        assert_eq!(parts[3].len(), Welcome::LEN_V2);
        assert_eq!(parts[4], &m);
        assert_ne!(HELLO_LABEL, WELCOME_LABEL);
        assert_eq!(
            welcome_mac_input(&s, &c, &wbody[..Welcome::LEN_V1], &m),
            Err(ProtoError::Truncated)
        );
    }

    #[test]
    fn mac_comparison() {
        let a = [5u8; MAC_LEN];
        let mut b = a;
        assert!(mac_eq(&a, &b));
        b[31] ^= 1;
        assert!(!mac_eq(&a, &b));
        b = a;
        b[0] ^= 0x80;
        assert!(!mac_eq(&a, &b));
    }

    #[test]
    fn key_files() {
        assert_eq!(
            key_from_file(b"0123456789abcdef\n"),
            Ok(&b"0123456789abcdef"[..])
        );
        assert_eq!(
            key_from_file(b"0123456789abcdef0 \r\n\t\n"),
            Ok(&b"0123456789abcdef0"[..])
        );
        assert_eq!(key_from_file(b""), Err(ProtoError::BadValue));
        assert_eq!(key_from_file(b"\n\n"), Err(ProtoError::BadValue));
        assert_eq!(key_from_file(b"short\n"), Err(ProtoError::BadValue));
        assert_eq!(
            key_from_file(&[b'k'; MAX_KEY_LEN]).map(<[u8]>::len),
            Ok(MAX_KEY_LEN)
        );
        assert_eq!(
            key_from_file(&[b'k'; MAX_KEY_LEN + 1]),
            Err(ProtoError::BadValue)
        );
    }
}
