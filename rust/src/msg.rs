//! Message bodies of the handshake, errors and transfer checks.

use super::auth::{MAC_LEN, NONCE_LEN};
use super::codec::{Reader, Writer};
use super::error::{ProtoError, Result};
use super::frame::{MAX_FRAME, MIN_FRAME, VERSION};

/// `HELLO`: what the client speaks and wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Lowest protocol version the client speaks.
    pub min_version: u16,
    /// Highest protocol version the client speaks.
    pub max_version: u16,
    /// Changes whenever the client's module is (re)loaded.
    pub boot_verifier: u64,
    /// Largest body the client accepts.
    pub max_frame: u32,
    /// The client's heartbeat interval.
    pub heartbeat_ms: u32,
    /// Bitmap of the kinds the client will use ([`super::kind::Kind::bit`]).
    pub kinds: u64,
    /// Session the client wants to resume (0: a new session). Optional on the wire: a
    /// [`Hello::LEN_V1`] body (an older client) decodes with 0 here.
    pub resume_session: u32,
    /// Random id of this client instance, chosen at client module load; only the same
    /// instance may resume a session (0: the session cannot be resumed).
    pub instance: u64,
    /// The client's fresh random nonce (optional on the wire: a [`Hello::LEN_V2`] body
    /// decodes with zeros here, which no server that requires authentication accepts).
    pub nonce: [u8; NONCE_LEN],
    /// HMAC-SHA256 with the shared key over [`super::auth::hello_mac_input`]: the server's
    /// challenge nonce, `nonce` and the first [`Hello::LEN_V2`] bytes of this body.
    pub mac: [u8; MAC_LEN],
}

impl Hello {
    /// Encoded size.
    pub const LEN: usize = 104;
    /// Size of the body without the resume fields (clients before crash recovery).
    pub const LEN_V1: usize = 28;
    /// Size of the body without the authentication fields: the part the MAC covers.
    pub const LEN_V2: usize = 40;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u16(self.min_version)?;
        w.u16(self.max_version)?;
        w.u64(self.boot_verifier)?;
        w.u32(self.max_frame)?;
        w.u32(self.heartbeat_ms)?;
        w.u64(self.kinds)?;
        w.u32(self.resume_session)?;
        w.u64(self.instance)?;
        w.bytes(&self.nonce)?;
        w.bytes(&self.mac)?;
        Ok(w.len())
    }

    /// Decodes a `HELLO` body: [`Hello::LEN_V1`] bytes at least; the resume fields, then
    /// the authentication fields, when present (all of a group: a body cut inside one is
    /// truncated). Trailing bytes (fields of later versions) are ignored.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut h = Self {
            min_version: r.u16()?,
            max_version: r.u16()?,
            boot_verifier: r.u64()?,
            max_frame: r.u32()?,
            heartbeat_ms: r.u32()?,
            kinds: r.u64()?,
            resume_session: 0,
            instance: 0,
            nonce: [0; NONCE_LEN],
            mac: [0; MAC_LEN],
        };
        if !r.rest().is_empty() {
            h.resume_session = r.u32()?;
            h.instance = r.u64()?;
        }
        if !r.rest().is_empty() {
            h.nonce.copy_from_slice(r.bytes(NONCE_LEN)?);
            h.mac.copy_from_slice(r.bytes(MAC_LEN)?);
        }
        Ok(h)
    }
}

/// `WELCOME`: the server's answer to [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version both sides now speak.
    pub version: u16,
    /// Changes whenever the server's module is (re)loaded: a new value means the server
    /// lost every session's state.
    pub boot_verifier: u64,
    /// Largest body either side may send from now on.
    pub max_frame: u32,
    /// The server's heartbeat interval.
    pub heartbeat_ms: u32,
    /// Session id; every later frame of this connection carries it.
    pub session: u32,
    /// Bitmap of the kinds the server supports.
    pub kinds: u64,
    /// `W_*` bits (absent in the 30-byte body of older servers: 0).
    pub flags: u32,
    /// HMAC-SHA256 with the shared key over [`super::auth::welcome_mac_input`]: both
    /// nonces, the first [`Welcome::LEN_V2`] bytes of this body and the `HELLO`'s MAC
    /// (zeros from a server without a key, or in an older 34-byte body).
    pub mac: [u8; MAC_LEN],
}

/// `WELCOME.flags`: the session named in `HELLO.resume_session` was resumed: same session
/// id, its server processes and open files untouched.
pub const W_RESUMED: u32 = 1 << 0;

impl Welcome {
    /// Encoded size.
    pub const LEN: usize = 66;
    /// Size of the body without `flags` (servers before crash recovery).
    pub const LEN_V1: usize = 30;
    /// Size of the body without `mac`: the part the MAC covers.
    pub const LEN_V2: usize = 34;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u16(self.version)?;
        w.u64(self.boot_verifier)?;
        w.u32(self.max_frame)?;
        w.u32(self.heartbeat_ms)?;
        w.u32(self.session)?;
        w.u64(self.kinds)?;
        w.u32(self.flags)?;
        w.bytes(&self.mac)?;
        Ok(w.len())
    }

    /// Decodes a `WELCOME` body: [`Welcome::LEN_V1`] bytes at least, then `flags` and
    /// then `mac` when present (a body cut inside `mac` is truncated). Trailing bytes are
    /// ignored.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut w = Self {
            version: r.u16()?,
            boot_verifier: r.u64()?,
            max_frame: r.u32()?,
            heartbeat_ms: r.u32()?,
            session: r.u32()?,
            kinds: r.u64()?,
            flags: 0,
            mac: [0; MAC_LEN],
        };
        if !r.rest().is_empty() {
            w.flags = r.u32()?;
        }
        if !r.rest().is_empty() {
            w.mac.copy_from_slice(r.bytes(MAC_LEN)?);
        }
        Ok(w)
    }
}

/// `SERVER_FLUSHED`: the server made data durable.
///
/// Every call of the session with `seq <= up_to_seq` whose `SERVER_REPLY` the client
/// received before this frame is durable: the server records the highest seq answered
/// before its sync starts, lowers it below any call answered while the sync runs, and
/// sends this frame (in order with the replies) once the sync succeeded. A changed
/// `boot_verifier` means a writeback error (or a server reboot): nothing retained under
/// the old verifier is durable, the client must send it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flushed {
    /// Highest seq covered (see above).
    pub up_to_seq: u64,
    /// The server's boot verifier when the sync finished.
    pub boot_verifier: u64,
}

impl Flushed {
    /// Encoded size.
    pub const LEN: usize = 16;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u64(self.up_to_seq)?;
        w.u64(self.boot_verifier)?;
        Ok(w.len())
    }

    /// Decodes a `SERVER_FLUSHED` body. Trailing bytes are ignored.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        Ok(Self {
            up_to_seq: r.u64()?,
            boot_verifier: r.u64()?,
        })
    }
}

/// What the server settles on for a [`Hello`]: `(version, max_frame)`.
///
/// Fails with [`ProtoError::BadVersion`] when the version ranges do not meet and with
/// [`ProtoError::BadValue`] for a nonsensical maximum frame size.
pub fn negotiate(hello: &Hello, server_max_frame: u32) -> Result<(u16, u32)> {
    if hello.min_version > hello.max_version || hello.min_version > VERSION || hello.max_version < 1
    {
        return Err(ProtoError::BadVersion);
    }
    if hello.max_frame < MIN_FRAME {
        return Err(ProtoError::BadValue);
    }
    let version = hello.max_version.min(VERSION);
    Ok((
        version,
        hello.max_frame.min(server_max_frame).min(MAX_FRAME),
    ))
}

/// `ERROR`: why the sender is closing the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    /// A [`ProtoError`] number.
    pub code: u32,
    /// Kind-specific detail (e.g. the unknown kind number).
    pub detail: u32,
}

impl ErrorMsg {
    /// Encoded size.
    pub const LEN: usize = 8;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u32(self.code)?;
        w.u32(self.detail)?;
        Ok(w.len())
    }

    /// Decodes an `ERROR` body.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        Ok(Self {
            code: r.u32()?,
            detail: r.u32()?,
        })
    }
}

/// `SINK_ACK`: what the server received in `SINK` bodies since the previous ack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SinkAck {
    /// Number of body bytes.
    pub bytes: u64,
    /// [`super::codec::sum64`] of the bodies, in order.
    pub sum: u64,
}

impl SinkAck {
    /// Encoded size.
    pub const LEN: usize = 16;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u64(self.bytes)?;
        w.u64(self.sum)?;
        Ok(w.len())
    }

    /// Decodes a `SINK_ACK` body.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        Ok(Self {
            bytes: r.u64()?,
            sum: r.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            min_version: 1,
            max_version: 1,
            boot_verifier: 0xabcdef,
            max_frame: 65536,
            heartbeat_ms: 500,
            kinds: 0x1fe,
            resume_session: 7,
            instance: 0x1234_5678_9abc_def0,
            nonce: [0x5a; NONCE_LEN],
            mac: [0xa5; MAC_LEN],
        }
    }

    #[test]
    fn bodies_round_trip() {
        let mut b = [0u8; 128];
        let h = hello();
        assert_eq!(h.encode(&mut b), Ok(Hello::LEN));
        assert_eq!(Hello::decode(&b[..Hello::LEN]), Ok(h));
        let w = Welcome {
            version: 1,
            boot_verifier: 9,
            max_frame: 4096,
            heartbeat_ms: 250,
            session: 3,
            kinds: 6,
            flags: W_RESUMED,
            mac: [0x33; MAC_LEN],
        };
        assert_eq!(w.encode(&mut b), Ok(Welcome::LEN));
        assert_eq!(Welcome::decode(&b[..Welcome::LEN]), Ok(w));
        let e = ErrorMsg {
            code: 4,
            detail: 99,
        };
        assert_eq!(e.encode(&mut b), Ok(ErrorMsg::LEN));
        assert_eq!(ErrorMsg::decode(&b[..ErrorMsg::LEN]), Ok(e));
        let s = SinkAck {
            bytes: 1 << 40,
            sum: 5,
        };
        assert_eq!(s.encode(&mut b), Ok(SinkAck::LEN));
        assert_eq!(SinkAck::decode(&b[..SinkAck::LEN]), Ok(s));
        let f = Flushed {
            up_to_seq: 1 << 50,
            boot_verifier: 0xfeed_beef,
        };
        assert_eq!(f.encode(&mut b), Ok(Flushed::LEN));
        assert_eq!(Flushed::decode(&b[..Flushed::LEN]), Ok(f));
        for i in 0..Flushed::LEN {
            assert_eq!(Flushed::decode(&b[..i]), Err(ProtoError::Truncated));
        }
    }

    #[test]
    fn older_bodies_decode_without_the_new_fields() {
        let mut b = [0u8; 128];
        assert_eq!(hello().encode(&mut b), Ok(Hello::LEN));
        let old = Hello::decode(&b[..Hello::LEN_V1]);
        assert_eq!(
            old,
            Ok(Hello {
                resume_session: 0,
                instance: 0,
                nonce: [0; NONCE_LEN],
                mac: [0; MAC_LEN],
                ..hello()
            })
        );
        assert_eq!(
            Hello::decode(&b[..Hello::LEN_V2]),
            Ok(Hello {
                nonce: [0; NONCE_LEN],
                mac: [0; MAC_LEN],
                ..hello()
            })
        );
        // Cut inside the resume or the authentication fields: truncated, not silently zero.
        for n in (Hello::LEN_V1 + 1..Hello::LEN_V2).chain(Hello::LEN_V2 + 1..Hello::LEN) {
            assert_eq!(Hello::decode(&b[..n]), Err(ProtoError::Truncated));
        }
        let w = Welcome {
            version: 1,
            boot_verifier: 2,
            max_frame: 4096,
            heartbeat_ms: 500,
            session: 9,
            kinds: 3,
            flags: W_RESUMED,
            mac: [0x44; MAC_LEN],
        };
        assert_eq!(w.encode(&mut b), Ok(Welcome::LEN));
        assert_eq!(
            Welcome::decode(&b[..Welcome::LEN_V1]),
            Ok(Welcome {
                flags: 0,
                mac: [0; MAC_LEN],
                ..w
            })
        );
        assert_eq!(
            Welcome::decode(&b[..Welcome::LEN_V2]),
            Ok(Welcome {
                mac: [0; MAC_LEN],
                ..w
            })
        );
        for n in (Welcome::LEN_V1 + 1..Welcome::LEN_V2).chain(Welcome::LEN_V2 + 1..Welcome::LEN) {
            assert_eq!(Welcome::decode(&b[..n]), Err(ProtoError::Truncated));
        }
    }

    #[test]
    fn short_bodies_are_truncated() {
        let mut b = [0u8; 128];
        let n = hello().encode(&mut b).unwrap_or(0);
        for i in 0..Hello::LEN_V1.min(n) {
            assert_eq!(Hello::decode(&b[..i]), Err(ProtoError::Truncated));
        }
        assert_eq!(hello().encode(&mut b[..10]), Err(ProtoError::TooLong));
    }

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(&hello(), 1 << 20), Ok((1, 65536)));
        assert_eq!(negotiate(&hello(), 4096), Ok((1, 4096)));
        let h = Hello {
            max_frame: u32::MAX,
            ..hello()
        };
        assert_eq!(negotiate(&h, u32::MAX), Ok((1, MAX_FRAME)));
        let h = Hello {
            min_version: 2,
            max_version: 5,
            ..hello()
        };
        assert_eq!(negotiate(&h, 4096), Err(ProtoError::BadVersion));
        let h = Hello {
            min_version: 1,
            max_version: 7,
            ..hello()
        };
        assert_eq!(negotiate(&h, 4096), Ok((1, 4096)));
        let h = Hello {
            min_version: 0,
            max_version: 0,
            ..hello()
        };
        assert_eq!(negotiate(&h, 4096), Err(ProtoError::BadVersion));
        let h = Hello {
            max_frame: 100,
            ..hello()
        };
        assert_eq!(negotiate(&h, 4096), Err(ProtoError::BadValue));
    }
}
