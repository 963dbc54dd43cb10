//! Per-process state that travels next to the system calls: the `CLIENT_ATTRS` body (the
//! identity and file-size limit the shadow must have) and the `SERVER_SIGNAL` body (a
//! signal the server raised for the shadow while it ran a call).
//!
//! ```text
//! CLIENT_ATTRS:  u32 uid, euid, fsuid, gid, egid, fsgid, u64 fsize_cur, fsize_max,
//!                u32 ngroups, u32 0, ngroups x u32 gid               (48 + 4 n bytes)
//! SERVER_SIGNAL: u32 signo, u32 0                                    (8 bytes)
//! CLIENT_THREAD: u32 tid, u32 event (THREAD_STARTED, THREAD_EXITED)   (8 bytes)
//! CLIENT_THREAD_CALL: u32 tid, then a CLIENT_SYSTEM_CALL body
//! ```
//! Ids are the client kernel's (initial user namespace); `u32::MAX` (`-1`) is not an id.
//! `fsize_*` are `RLIMIT_FSIZE`, [`RLIM_INFINITY`] for no limit.

use super::codec::{Reader, Writer};
use super::error::{ProtoError, Result};

/// Most supplementary groups a `CLIENT_ATTRS` carries (a client truncates longer lists).
pub const MAX_GROUPS: usize = 64;
/// `RLIM_INFINITY` on the wire.
pub const RLIM_INFINITY: u64 = u64::MAX;
/// The id the server maps root to when it squashes root (`nobody`, `nogroup`).
pub const ANON_ID: u32 = 65534;

/// The process id of the client's redo shadow, which writes retained data again after a
/// server restart (DESIGN §3.4): no client process has it (pids stay below 2^22).
pub const REDO_RPID: u32 = u32::MAX - 1;

/// `SIGPIPE`: write to a pipe or FIFO without readers.
pub const SIGPIPE: u32 = 13;
/// `SIGXFSZ`: write at or past `RLIMIT_FSIZE`.
pub const SIGXFSZ: u32 = 25;
/// The signals a server may forward (bit `n` for signal `n`): those the kernel raises
/// for the caller of a file-system call. Anything else in a `SERVER_SIGNAL` is refused.
pub const FORWARDED_SIGNALS: u32 = (1 << SIGPIPE) | (1 << SIGXFSZ);

/// The identity and file-size limit of a client process (`CLIENT_ATTRS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcAttrs {
    /// Real, effective and file-system user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// File-system user id (owner of created files, permission checks).
    pub fsuid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// File-system group id.
    pub fsgid: u32,
    /// `RLIMIT_FSIZE` soft limit.
    pub fsize_cur: u64,
    /// `RLIMIT_FSIZE` hard limit.
    pub fsize_max: u64,
    /// Number of valid entries in `groups`.
    pub ngroups: u32,
    /// Supplementary groups.
    pub groups: [u32; MAX_GROUPS],
}

impl Default for ProcAttrs {
    fn default() -> Self {
        Self {
            uid: 0,
            euid: 0,
            fsuid: 0,
            gid: 0,
            egid: 0,
            fsgid: 0,
            fsize_cur: RLIM_INFINITY,
            fsize_max: RLIM_INFINITY,
            ngroups: 0,
            groups: [0; MAX_GROUPS],
        }
    }
}

impl ProcAttrs {
    /// Encoded size of the fixed part.
    pub const HEAD_LEN: usize = 48;
    /// Largest encoded size.
    pub const MAX_LEN: usize = Self::HEAD_LEN + 4 * MAX_GROUPS;

    /// The supplementary groups in use.
    pub fn groups(&self) -> &[u32] {
        self.groups.get(..self.ngroups as usize).unwrap_or(&[])
    }

    fn ids(&self) -> [u32; 6] {
        [
            self.uid, self.euid, self.fsuid, self.gid, self.egid, self.fsgid,
        ]
    }

    fn check(&self) -> Result<()> {
        if self.ngroups as usize > MAX_GROUPS
            || self.fsize_cur > self.fsize_max
            || self
                .ids()
                .iter()
                .chain(self.groups())
                .any(|&id| id == u32::MAX)
        {
            return Err(ProtoError::BadValue);
        }
        Ok(())
    }

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        self.check()?;
        let mut w = Writer::new(buf);
        for id in self.ids() {
            w.u32(id)?;
        }
        w.u64(self.fsize_cur)?;
        w.u64(self.fsize_max)?;
        w.u32(self.ngroups)?;
        w.u32(0)?;
        for g in self.groups() {
            w.u32(*g)?;
        }
        Ok(w.len())
    }

    /// Decodes and checks a body: known sizes, no invalid id (`-1`), soft limit not above
    /// the hard one, exactly `ngroups` groups.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let mut a = Self {
            uid: r.u32()?,
            euid: r.u32()?,
            fsuid: r.u32()?,
            gid: r.u32()?,
            egid: r.u32()?,
            fsgid: r.u32()?,
            fsize_cur: r.u64()?,
            fsize_max: r.u64()?,
            ngroups: r.u32()?,
            ..Default::default()
        };
        if r.u32()? != 0 || a.ngroups as usize > MAX_GROUPS {
            return Err(ProtoError::BadValue);
        }
        for g in a.groups.iter_mut().take(a.ngroups as usize) {
            *g = r.u32()?;
        }
        if !r.rest().is_empty() {
            return Err(ProtoError::BadValue);
        }
        a.check()?;
        Ok(a)
    }

    /// The identity the server gives the shadow: with `squash_root`, id 0 (user or
    /// group, supplementary groups too) becomes [`ANON_ID`]; every other id is kept.
    pub fn mapped(&self, squash_root: bool) -> Self {
        let map = |id: u32| if squash_root && id == 0 { ANON_ID } else { id };
        let mut m = *self;
        for id in [
            &mut m.uid,
            &mut m.euid,
            &mut m.fsuid,
            &mut m.gid,
            &mut m.egid,
            &mut m.fsgid,
        ] {
            *id = map(*id);
        }
        for g in m.groups.iter_mut() {
            *g = map(*g);
        }
        m
    }
}

/// A signal the server raised for a shadow while it ran the call with the frame's `seq`
/// (`SERVER_SIGNAL`); it precedes that call's `SERVER_REPLY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalMsg {
    /// The signal number, one of [`FORWARDED_SIGNALS`].
    pub signo: u32,
}

impl SignalMsg {
    /// Encoded size.
    pub const LEN: usize = 8;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u32(self.signo)?;
        w.u32(0)?;
        Ok(w.len())
    }

    /// Decodes a body: exactly [`Self::LEN`] bytes, a signal of [`FORWARDED_SIGNALS`].
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let signo = r.u32()?;
        if r.u32()? != 0 || !r.rest().is_empty() || !is_forwarded(signo) {
            return Err(ProtoError::BadValue);
        }
        Ok(Self { signo })
    }
}

/// [`ThreadMsg::event`]: the process started a thread (its first besides its leader
/// makes the shadow ready to run calls of several threads at once).
pub const THREAD_STARTED: u32 = 0;
/// [`ThreadMsg::event`]: a thread of the process exited (not its leader).
pub const THREAD_EXITED: u32 = 1;

/// A thread of process `rpid` started or exited (`CLIENT_THREAD`, not answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadMsg {
    /// The thread's id (a client pid).
    pub tid: u32,
    /// [`THREAD_STARTED`] or [`THREAD_EXITED`].
    pub event: u32,
}

impl ThreadMsg {
    /// Encoded size.
    pub const LEN: usize = 8;

    /// Encodes into `buf`, returning the length used.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        w.u32(self.tid)?;
        w.u32(self.event)?;
        Ok(w.len())
    }

    /// Decodes a body: exactly [`Self::LEN`] bytes, a known event, a tid that is not 0.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let (tid, event) = (r.u32()?, r.u32()?);
        if !r.rest().is_empty() || tid == 0 || event > THREAD_EXITED {
            return Err(ProtoError::BadValue);
        }
        Ok(Self { tid, event })
    }
}

/// Splits a `CLIENT_THREAD_CALL` body into the calling thread's id (not 0) and its
/// `CLIENT_SYSTEM_CALL` body.
pub fn split_thread_call(body: &[u8]) -> Result<(u32, &[u8])> {
    let mut r = Reader::new(body);
    let tid = r.u32()?;
    if tid == 0 {
        return Err(ProtoError::BadValue);
    }
    Ok((tid, r.rest()))
}

/// Whether a server may forward signal `signo` ([`FORWARDED_SIGNALS`]).
pub fn is_forwarded(signo: u32) -> bool {
    signo < 32 && FORWARDED_SIGNALS & (1u32 << signo) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_messages() {
        let m = ThreadMsg {
            tid: 77,
            event: THREAD_EXITED,
        };
        let mut b = [0u8; ThreadMsg::LEN];
        assert_eq!(m.encode(&mut b), Ok(8));
        assert_eq!(ThreadMsg::decode(&b), Ok(m));
        assert!(ThreadMsg::decode(&b[..7]).is_err());
        assert!(ThreadMsg::decode(&[0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(ThreadMsg::decode(&[1, 0, 0, 0, 2, 0, 0, 0]).is_err());
        assert_eq!(split_thread_call(&[5, 0, 0, 0, 9]), Ok((5, &[9u8][..])));
        assert!(split_thread_call(&[0, 0, 0, 0, 9]).is_err());
        assert!(split_thread_call(&[5, 0]).is_err());
    }

    fn sample() -> ProcAttrs {
        let mut a = ProcAttrs {
            uid: 1000,
            euid: 0,
            fsuid: 0,
            gid: 1000,
            egid: 0,
            fsgid: 100,
            fsize_cur: 4096,
            fsize_max: RLIM_INFINITY,
            ngroups: 3,
            ..Default::default()
        };
        a.groups[..3].copy_from_slice(&[0, 24, 1000]);
        a
    }

    #[test]
    fn attrs_round_trip() {
        let a = sample();
        let mut b = [0u8; ProcAttrs::MAX_LEN];
        let n = a.encode(&mut b).unwrap();
        assert_eq!(n, ProcAttrs::HEAD_LEN + 12);
        assert_eq!(ProcAttrs::decode(&b[..n]), Ok(a));
        for i in 0..n {
            assert!(ProcAttrs::decode(&b[..i]).is_err());
        }
        // One byte too many.
        assert_eq!(ProcAttrs::decode(&b[..n + 1]), Err(ProtoError::BadValue));
    }

    #[test]
    fn attrs_reject_bad_values() {
        let mut b = [0u8; ProcAttrs::MAX_LEN + 8];
        let n = sample().encode(&mut b).unwrap();
        let good = b;
        // ngroups above the maximum.
        b[40..44].copy_from_slice(&(MAX_GROUPS as u32 + 1).to_le_bytes());
        assert_eq!(ProcAttrs::decode(&b[..n]), Err(ProtoError::BadValue));
        // Reserved word set.
        let mut b = good;
        b[44] = 1;
        assert_eq!(ProcAttrs::decode(&b[..n]), Err(ProtoError::BadValue));
        // An invalid id, as uid and as a group.
        let mut b = good;
        b[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ProcAttrs::decode(&b[..n]), Err(ProtoError::BadValue));
        let mut b = good;
        b[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ProcAttrs::decode(&b[..n]), Err(ProtoError::BadValue));
        // Soft limit above the hard one.
        let mut a = sample();
        a.fsize_max = 1;
        assert_eq!(a.encode(&mut b), Err(ProtoError::BadValue));
        let mut b = good;
        b[32..40].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(ProcAttrs::decode(&b[..n]), Err(ProtoError::BadValue));
    }

    #[test]
    fn mapping_squashes_only_root() {
        let a = sample();
        assert_eq!(a.mapped(false), a);
        let m = a.mapped(true);
        assert_eq!(
            (m.uid, m.euid, m.fsuid, m.gid, m.egid, m.fsgid),
            (1000, ANON_ID, ANON_ID, 1000, ANON_ID, 100)
        );
        assert_eq!(m.groups(), &[ANON_ID, 24, 1000]);
        assert_eq!((m.fsize_cur, m.fsize_max), (a.fsize_cur, a.fsize_max));
    }

    #[test]
    fn signal_round_trip_and_refusals() {
        let mut b = [0u8; 16];
        for signo in [SIGPIPE, SIGXFSZ] {
            let n = SignalMsg { signo }.encode(&mut b).unwrap();
            assert_eq!(n, SignalMsg::LEN);
            assert_eq!(SignalMsg::decode(&b[..n]), Ok(SignalMsg { signo }));
            assert_eq!(SignalMsg::decode(&b[..n - 1]), Err(ProtoError::Truncated));
            assert_eq!(SignalMsg::decode(&b[..n + 1]), Err(ProtoError::BadValue));
        }
        for signo in [0, 9, 11, 19, 31, 32, 64, u32::MAX] {
            let n = SignalMsg { signo }.encode(&mut b).unwrap();
            assert_eq!(SignalMsg::decode(&b[..n]), Err(ProtoError::BadValue));
        }
        b[..8].copy_from_slice(&[25, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(SignalMsg::decode(&b[..8]), Err(ProtoError::BadValue));
    }
}
