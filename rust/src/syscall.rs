//! `CLIENT_SYSTEM_CALL` and `SERVER_REPLY` bodies: one system call and its outcome.
//!
//! A request carries the call number (a system call or a shadow call, see
//! [`calls`](super::calls)), its six register arguments and the buffers some arguments
//! point to. The shadow on the server puts each buffer in its own memory, sets the argument
//! to point there, makes the call, and replies with the return value and the output
//! buffers.
//!
//! ```text
//! request: u32 nr, u32 nbufs, u64 args[6], nbufs x {u8 arg, u8 dir, u16 0, u32 len},
//!          then the bytes of every input buffer, in order
//! reply:   i64 ret, u32 nbufs, u32 flags (REPLY_*), nbufs x u32 len, then the output bytes,
//!          in order
//! ```

use super::codec::{Reader, Writer};
use super::error::{ProtoError, Result};

/// Most buffers one call may carry.
pub const MAX_BUFS: usize = 4;

/// The buffer is read by the call (copied client → server).
pub const DIR_IN: u8 = 1 << 0;
/// The buffer is written by the call (copied server → client).
pub const DIR_OUT: u8 = 1 << 1;
/// With [`DIR_OUT`]: only the first `ret` bytes are meaningful (`read`, `readlink`).
pub const DIR_RET: u8 = 1 << 2;

/// Reply flag: after the call the server synced the whole export file system, so every
/// write answered before the call is durable (a committed call whose own commit could not be
/// narrowed to the names it changed, docs/DESIGN.md §3.2).
pub const REPLY_SYNCED_ALL: u32 = 1 << 0;

/// One buffer argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BufDesc {
    /// Which argument (0..6) points to it.
    pub arg: u8,
    /// `DIR_*` bits.
    pub dir: u8,
    /// Its length in bytes.
    pub len: u32,
}

impl BufDesc {
    fn check(&self) -> Result<()> {
        let known = DIR_IN | DIR_OUT | DIR_RET;
        let valid_dir = self.dir & !known == 0
            && self.dir & (DIR_IN | DIR_OUT) != 0
            && (self.dir & DIR_RET == 0 || self.dir & DIR_OUT != 0);
        if self.arg >= 6 || !valid_dir {
            return Err(ProtoError::BadValue);
        }
        Ok(())
    }
}

/// The fixed part of a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallReq {
    /// The call number: an x86-64 system call number ([`sysno`](super::sysno)) or one of the
    /// shadow calls numbered from the top of the `u32` range ([`APPEND`](super::calls::APPEND),
    /// [`GETDENTS`](super::calls::GETDENTS), [`REOPEN`](super::calls::REOPEN)); the server
    /// runs only the numbers [`calls::CALLS`](super::calls::CALLS) names.
    pub nr: u32,
    /// Register arguments; buffer arguments are replaced by the server.
    pub args: [u64; 6],
    /// Number of valid entries in `bufs`.
    pub nbufs: u32,
    /// Buffer arguments.
    pub bufs: [BufDesc; MAX_BUFS],
}

impl SyscallReq {
    /// Encoded size of the fixed part with `nbufs` buffer descriptors.
    pub const fn head_len(nbufs: usize) -> usize {
        56usize.saturating_add(nbufs.saturating_mul(8))
    }

    /// The buffer descriptors in use.
    pub fn bufs(&self) -> &[BufDesc] {
        self.bufs.get(..self.nbufs as usize).unwrap_or(&[])
    }

    /// Total input bytes that follow the fixed part.
    pub fn in_len(&self) -> u64 {
        self.bufs()
            .iter()
            .filter(|b| b.dir & DIR_IN != 0)
            .map(|b| u64::from(b.len))
            .sum()
    }

    /// Encodes the fixed part into `buf`; the caller appends the input bytes.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u32(self.nr)?;
        w.u32(self.nbufs)?;
        for a in self.args {
            w.u64(a)?;
        }
        for b in self.bufs() {
            b.check()?;
            w.bytes(&[b.arg, b.dir, 0, 0])?;
            w.u32(b.len)?;
        }
        Ok(w.len())
    }

    /// Decodes and checks a request body: returns the request and its input bytes, which
    /// must be exactly the sum of the input buffers' lengths.
    pub fn decode(buf: &[u8]) -> Result<(Self, &[u8])> {
        let mut r = Reader::new(buf);
        let mut req = SyscallReq {
            nr: r.u32()?,
            nbufs: r.u32()?,
            ..Default::default()
        };
        if req.nbufs as usize > MAX_BUFS {
            return Err(ProtoError::BadValue);
        }
        for a in req.args.iter_mut() {
            *a = r.u64()?;
        }
        for i in 0..req.nbufs as usize {
            let d = r.bytes(4)?;
            let b = BufDesc {
                arg: d.first().copied().unwrap_or(0),
                dir: d.get(1).copied().unwrap_or(0),
                len: r.u32()?,
            };
            b.check()?;
            if let Some(slot) = req.bufs.get_mut(i) {
                *slot = b;
            }
        }
        let data = r.rest();
        if data.len() as u64 != req.in_len() {
            return Err(ProtoError::BadValue);
        }
        Ok((req, data))
    }
}

/// The fixed part of a reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallReply {
    /// The return value (negative errno on failure).
    pub ret: i64,
    /// Number of valid entries in `lens`.
    pub nbufs: u32,
    /// `REPLY_*` bits.
    pub flags: u32,
    /// Output bytes per output buffer of the request, in order.
    pub lens: [u32; MAX_BUFS],
}

impl SyscallReply {
    /// Encoded size of the fixed part with `nbufs` lengths.
    pub const fn head_len(nbufs: usize) -> usize {
        16usize.saturating_add(nbufs.saturating_mul(4))
    }

    /// The whole body of a reply without output: just `ret` (`0` or `-errno`).
    pub fn bare(ret: i64) -> [u8; 16] {
        let mut body = [0u8; 16];
        if let Some(b) = body.get_mut(..8) {
            b.copy_from_slice(&ret.to_le_bytes());
        }
        body
    }

    /// Encodes the fixed part into `buf`; the caller appends the output bytes.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        // The return value's bits (two's complement), little-endian.
        w.u64(u64::from_ne_bytes(self.ret.to_ne_bytes()))?;
        w.u32(self.nbufs)?;
        w.u32(self.flags)?;
        for l in self
            .lens
            .get(..self.nbufs as usize)
            .ok_or(ProtoError::BadValue)?
        {
            w.u32(*l)?;
        }
        Ok(w.len())
    }

    /// Decodes a reply body: the fixed part and the output bytes, which must be exactly
    /// the sum of `lens`.
    pub fn decode(buf: &[u8]) -> Result<(Self, &[u8])> {
        let mut r = Reader::new(buf);
        let mut rep = SyscallReply {
            ret: i64::from_ne_bytes(r.u64()?.to_ne_bytes()),
            nbufs: r.u32()?,
            flags: r.u32()?,
            ..Default::default()
        };
        if rep.nbufs as usize > MAX_BUFS {
            return Err(ProtoError::BadValue);
        }
        let mut total = 0u64;
        for i in 0..rep.nbufs as usize {
            let l = r.u32()?;
            total = total.saturating_add(u64::from(l));
            if let Some(slot) = rep.lens.get_mut(i) {
                *slot = l;
            }
        }
        let data = r.rest();
        if data.len() as u64 != total {
            return Err(ProtoError::BadValue);
        }
        Ok((rep, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openat_req() -> SyscallReq {
        let mut req = SyscallReq {
            nr: 257,
            nbufs: 1,
            args: [(-100i64) as u64, 0, 0o101, 0o644, 0, 0],
            ..Default::default()
        };
        req.bufs[0] = BufDesc {
            arg: 1,
            dir: DIR_IN,
            len: 7,
        };
        req
    }

    #[test]
    fn request_round_trip() {
        let req = openat_req();
        let mut b = [0u8; 128];
        let n = req.encode(&mut b).unwrap();
        assert_eq!(n, SyscallReq::head_len(1));
        b[n..n + 7].copy_from_slice(b"/etc/x\0");
        let (got, data) = SyscallReq::decode(&b[..n + 7]).unwrap();
        assert_eq!(got, req);
        assert_eq!(data, b"/etc/x\0");
        // Input bytes must match the descriptors exactly.
        assert_eq!(SyscallReq::decode(&b[..n + 6]), Err(ProtoError::BadValue));
        assert_eq!(SyscallReq::decode(&b[..n + 8]), Err(ProtoError::BadValue));
    }

    #[test]
    fn request_rejects_bad_descriptors() {
        let mut b = [0u8; 128];
        for (arg, dir) in [
            (6, DIR_IN),
            (0, 0),
            (0, DIR_RET),
            (0, DIR_IN | DIR_RET),
            (0, 0x80),
        ] {
            let mut req = openat_req();
            req.bufs[0] = BufDesc { arg, dir, len: 0 };
            assert_eq!(req.encode(&mut b), Err(ProtoError::BadValue));
            let n = openat_req().encode(&mut b).unwrap();
            b[56] = arg;
            b[57] = dir;
            b[60..64].copy_from_slice(&0u32.to_le_bytes());
            assert_eq!(SyscallReq::decode(&b[..n]), Err(ProtoError::BadValue));
        }
        let n = openat_req().encode(&mut b).unwrap();
        b[4] = 5;
        assert_eq!(SyscallReq::decode(&b[..n]), Err(ProtoError::BadValue));
    }

    #[test]
    fn bare_reply() {
        let body = SyscallReply::bare(-5);
        let (rep, data) = SyscallReply::decode(&body).unwrap();
        assert_eq!((rep.ret, rep.nbufs, data.len()), (-5, 0, 0));
    }

    #[test]
    fn reply_round_trip() {
        let rep = SyscallReply {
            ret: -2,
            nbufs: 2,
            flags: REPLY_SYNCED_ALL,
            lens: [3, 0, 0, 0],
        };
        let mut b = [0u8; 64];
        let n = rep.encode(&mut b).unwrap();
        b[n..n + 3].copy_from_slice(b"abc");
        let (got, data) = SyscallReply::decode(&b[..n + 3]).unwrap();
        assert_eq!(got, rep);
        assert_eq!(data, b"abc");
        assert_eq!(SyscallReply::decode(&b[..n + 2]), Err(ProtoError::BadValue));
        for i in 0..n {
            assert_eq!(
                SyscallReply::decode(&b[..i]).map(|r| r.0),
                Err(ProtoError::Truncated)
            );
        }
    }
}
