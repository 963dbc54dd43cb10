//! The frame header that starts every message on the wire.
//!
//! ```text
//! offset size field
//!      0    4 magic   "TTHR"
//!      4    2 version protocol version (1)
//!      6    2 kind    super::kind::Kind
//!      8    4 flags   F_*
//!     12    4 len     body length in bytes
//!     16    4 session session id given by WELCOME (0 before)
//!     20    4 rpid    remote process id the frame is about (0: the connection)
//!     24    8 seq     per-session request id; replies carry the request's
//! ```
//! All fields are little-endian.

use super::codec::{Reader, Writer};
use super::error::{ProtoError, Result};
use super::kind::Kind;

/// First four bytes of every frame.
pub const MAGIC: u32 = u32::from_le_bytes(*b"TTHR");
/// The protocol version this code speaks.
pub const VERSION: u16 = 1;
/// Size of the encoded header.
pub const HEADER_LEN: usize = 32;
/// Upper bound of any negotiated maximum body length (1 MiB).
pub const MAX_FRAME: u32 = 1 << 20;
/// Maximum body length before the handshake has negotiated one.
pub const HANDSHAKE_MAX_FRAME: u32 = 4096;
/// Smallest maximum body length a peer may ask for.
pub const MIN_FRAME: u32 = 512;
/// Default size at which transports split a send (vhost-device-vsock 0.3.0 truncates
/// guest-to-guest sends above about 3.7 KiB).
pub const DEFAULT_SPLIT: usize = 3584;
/// The heartbeat intervals (`heartbeat_ms`) both modules accept, in ms. The client waits
/// for frames a quarter interval at a time, at least 10 ms.
pub const HEARTBEAT_MS: core::ops::RangeInclusive<u32> = 40..=60_000;
/// Heartbeat intervals of silence after which either side counts its peer as dead, over
/// vsock.
pub const MAX_MISSES: u32 = 3;
/// The same over TCP: a segment lost on the way is sent again only after the sender's
/// retransmission timeout (200 ms at least, doubled at each loss in a row), so a live TCP
/// connection over a lossy path (QEMU's datagram network between two loaded VMs) can be
/// silent for 1.5 s.
pub const MAX_MISSES_TCP: u32 = 2 * MAX_MISSES;

/// Heartbeat intervals of silence after which a connection over vsock or (`tcp`) TCP
/// counts as dead.
pub const fn max_misses(tcp: bool) -> u32 {
    if tcp {
        MAX_MISSES_TCP
    } else {
        MAX_MISSES
    }
}

/// Set on a frame that answers one of the same kind (heartbeat answers).
pub const F_REPLY: u32 = 1 << 0;
/// On a [`Kind::Sink`] frame: answer with [`Kind::SinkAck`].
pub const F_ACK_REQ: u32 = 1 << 1;
/// Every flag this version defines.
pub const F_ALL: u32 = F_REPLY | F_ACK_REQ;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// What the body holds.
    pub kind: Kind,
    /// `F_*` bits.
    pub flags: u32,
    /// Body length in bytes.
    pub len: u32,
    /// Session id (0 before WELCOME).
    pub session: u32,
    /// Remote process id the frame concerns (0: the connection itself).
    pub rpid: u32,
    /// Request id; a reply carries the id of its request.
    pub seq: u64,
}

impl Header {
    /// A header of `kind` with body length `len` and every other field zero.
    pub fn new(kind: Kind, len: u32) -> Self {
        Self {
            kind,
            flags: 0,
            len,
            session: 0,
            rpid: 0,
            seq: 0,
        }
    }

    /// Encodes the header into its wire form.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer::new(&mut out);
        // The buffer is exactly HEADER_LEN bytes, so none of these can fail.
        let _ = w.u32(MAGIC);
        let _ = w.u16(VERSION);
        let _ = w.u16(self.kind as u16);
        let _ = w.u32(self.flags);
        let _ = w.u32(self.len);
        let _ = w.u32(self.session);
        let _ = w.u32(self.rpid);
        let _ = w.u64(self.seq);
        out
    }

    /// Decodes and checks a header: magic, version, kind, flags, and `len <= max_len`.
    ///
    /// The checks run in wire order, so the first bad field is the one reported.
    pub fn decode(buf: &[u8], max_len: u32) -> Result<Self> {
        let mut r = Reader::new(buf);
        if r.u32()? != MAGIC {
            return Err(ProtoError::BadMagic);
        }
        if r.u16()? != VERSION {
            return Err(ProtoError::BadVersion);
        }
        let kind = Kind::from_u16(r.u16()?).ok_or(ProtoError::UnknownKind)?;
        let flags = r.u32()?;
        if flags & !F_ALL != 0 {
            return Err(ProtoError::BadValue);
        }
        let len = r.u32()?;
        if len > max_len {
            return Err(ProtoError::TooLong);
        }
        Ok(Self {
            kind,
            flags,
            len,
            session: r.u32()?,
            rpid: r.u32()?,
            seq: r.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::EchoReq,
            flags: F_REPLY,
            len: 100,
            session: 7,
            rpid: 42,
            seq: u64::MAX,
        }
    }

    #[test]
    fn round_trip() {
        let h = sample();
        assert_eq!(Header::decode(&h.encode(), 100), Ok(h));
    }

    #[test]
    fn rejects_each_bad_field() {
        let good = sample().encode();
        let mut b = good;
        b[0] ^= 1;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadMagic));
        let mut b = good;
        b[4] = 2;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadVersion));
        let mut b = good;
        b[6] = 0xee;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::UnknownKind));
        let mut b = good;
        b[11] = 0x80;
        assert_eq!(Header::decode(&b, 100), Err(ProtoError::BadValue));
        assert_eq!(Header::decode(&good, 99), Err(ProtoError::TooLong));
        for n in 0..HEADER_LEN {
            assert_eq!(Header::decode(&good[..n], 100), Err(ProtoError::Truncated));
        }
    }
}
