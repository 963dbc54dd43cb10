// SPDX-License-Identifier: GPL-2.0

//! The syscall log (DESIGN §3.1): what replay will need, compacted as calls complete, so
//! that its size follows the open state, not the history: per remote process its cwd, the
//! identity and file-size limit its shadow was last given, and its open files (server fd,
//! path at open time, flags, mode, the locks held through it). Shown in debugfs `log`
//! (`tetherctl log`).

use core::fmt;
use kernel::{alloc::KVVec, bindings, prelude::*};

use crate::num::arg_i64;
use crate::proto::calls::{FLOCK_LEN, F_SETLK, SETFL_MASK};
use crate::proto::process::ProcAttrs;
use crate::syscalls::paths::join;

/// One open remote file.
pub(crate) struct FileRec {
    pub(crate) sfd: i32,
    pub(crate) flags: u32,
    pub(crate) mode: u32,
    /// The server path at open time, made absolute.
    pub(crate) path: KVVec<u8>,
    /// Replay could not reopen it: its calls fail with `EIO`.
    pub(crate) lost: bool,
    /// Data written through it could not be written again after the server lost it
    /// ([`Log::write_failed`]): the next write, `fsync` or close of the fd fails with this
    /// error, once.
    pub(crate) write_error: Option<Error>,
    /// The locks taken (and record locks released) through it, in order, compacted
    /// ([`Log::locked`]): replay takes them again.
    pub(crate) locks: KVec<Lock>,
}

/// The size of `struct flock` (x86-64).
pub(crate) const FLOCK_SIZE: usize = 32;
const _: () = assert!(FLOCK_SIZE == FLOCK_LEN as usize);

/// Most lock operations kept per open file; beyond, a lock is not taken again by a replay
/// (a notice says so).
const MAX_LOCKS: usize = 64;

/// A lock operation a replay makes again (DESIGN §3.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    /// `flock(2)` with `LOCK_SH` or `LOCK_EX`: the lock of the open file description.
    Flock(u32),
    /// A record lock or unlock by `fcntl(2)`: `cmd` `F_SETLK` (the process's lock) or
    /// `F_OFD_SETLK` (the open file description's), with the `struct flock` the app passed.
    Record { cmd: u64, flock: [u8; FLOCK_SIZE] },
}

impl Lock {
    /// A record lock's `l_type`.
    fn l_type(flock: &[u8; FLOCK_SIZE]) -> i16 {
        i16::from_ne_bytes([flock[0], flock[1]])
    }

    /// The bytes a record operation covers, `[start, end)` (`None`: to the end of any
    /// file), when it gives them absolutely (`SEEK_SET`) and validly.
    fn range(&self) -> Option<(i64, Option<i64>)> {
        let Lock::Record { flock, .. } = self else {
            return None;
        };
        let whence = i16::from_ne_bytes([flock[2], flock[3]]);
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(flock.get(at..at.checked_add(8)?)?);
            Some(i64::from_ne_bytes(b))
        };
        let (start, len) = (word(8)?, word(16)?);
        if whence != 0 || start < 0 {
            return None;
        }
        match len {
            0 => Some((start, None)),
            l if l > 0 => Some((start, Some(start.checked_add(l)?))),
            l => Some((start.checked_add(l).filter(|s| *s >= 0)?, Some(start))),
        }
    }

    /// Whether this is a record operation of `cmd`.
    fn is_record(&self, of: u64) -> bool {
        matches!(self, Lock::Record { cmd, .. } if *cmd == of)
    }
}

/// Whether the range `outer` covers all of `inner` (ranges as [`Lock::range`] gives them).
fn covers(outer: (i64, Option<i64>), inner: (i64, Option<i64>)) -> bool {
    outer.0 <= inner.0
        && match (outer.1, inner.1) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(o), Some(i)) => i <= o,
        }
}

/// One tethered process that made remote calls.
pub(crate) struct ProcRec {
    pub(crate) rpid: u32,
    /// Its working directory on the server.
    pub(crate) cwd: KVVec<u8>,
    /// Its umask, once it set one (else the shadow's own).
    pub(crate) umask: Option<u32>,
    pub(crate) files: KVec<FileRec>,
    calls: u64,
    /// The identity and limit last sent for its shadow, and the session they went to.
    pub(crate) attrs: Option<(u32, ProcAttrs)>,
}

fn copy(bytes: &[u8]) -> Result<KVVec<u8>> {
    let mut v = KVVec::new();
    v.extend_from_slice(bytes, GFP_KERNEL)?;
    Ok(v)
}

impl ProcRec {
    /// A copy of this process's state, for process `rpid`; without its locks for a forked
    /// child (`locks` false): a child does not inherit its parent's record locks, and the
    /// locks of the open file descriptions they share are taken again for the parent.
    fn try_clone(&self, rpid: u32, locks: bool) -> Result<Self> {
        let mut files = KVec::with_capacity(self.files.len(), GFP_KERNEL)?;
        for f in self.files.iter() {
            let mut kept = KVec::new();
            if locks {
                kept.extend_from_slice(&f.locks, GFP_KERNEL)?;
            }
            files.push(
                FileRec {
                    sfd: f.sfd,
                    flags: f.flags,
                    mode: f.mode,
                    path: copy(&f.path)?,
                    lost: f.lost,
                    write_error: f.write_error,
                    locks: kept,
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Self {
            rpid,
            cwd: copy(&self.cwd)?,
            umask: self.umask,
            files,
            calls: 0,
            // A forked child's shadow is forked from the parent's.
            attrs: self.attrs,
        })
    }
}

/// The compacted log.
pub(crate) struct Log {
    procs: KVec<ProcRec>,
    /// Remote calls completed since load.
    calls: u64,
    /// Renames sent and not answered yet: id, old and new absolute path.
    renames: KVec<(u64, KVVec<u8>, KVVec<u8>)>,
    next_rename: u64,
}

/// What follows `dir` in `path`, if `path` is `dir` or a path below it.
fn under<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    let rest = path.strip_prefix(dir)?;
    (rest.is_empty() || rest.first() == Some(&b'/')).then_some(rest)
}

/// `path` with its prefix `from` (a whole component) replaced by `to`, if it has it.
fn moved(path: &[u8], from: &[u8], to: &[u8]) -> Result<Option<KVVec<u8>>> {
    let Some(rest) = under(path, from) else {
        return Ok(None);
    };
    let mut m = copy(to)?;
    m.extend_from_slice(rest, GFP_KERNEL)?;
    Ok(Some(m))
}

impl Log {
    pub(crate) const fn new() -> Self {
        Self {
            procs: KVec::new(),
            renames: KVec::new(),
            next_rename: 0,
            calls: 0,
        }
    }

    fn find(&mut self, rpid: u32) -> Option<&mut ProcRec> {
        self.procs.iter_mut().find(|p| p.rpid == rpid)
    }

    fn proc_mut(&mut self, rpid: u32) -> Result<&mut ProcRec> {
        if self.find(rpid).is_none() {
            let mut cwd = KVVec::new();
            cwd.push(b'/', GFP_KERNEL)?;
            self.procs.push(
                ProcRec {
                    rpid,
                    cwd,
                    umask: None,
                    files: KVec::new(),
                    calls: 0,
                    attrs: None,
                },
                GFP_KERNEL,
            )?;
        }
        self.find(rpid).ok_or(ENOENT)
    }

    /// A remote call of `rpid` completed: how many of its calls had before.
    pub(crate) fn called(&mut self, rpid: u32) -> u64 {
        // Statistics: saturating.
        self.calls = self.calls.saturating_add(1);
        self.proc_mut(rpid).map_or(0, |p| {
            let before = p.calls;
            p.calls = before.saturating_add(1);
            before
        })
    }

    /// The absolute server path of `path` as process `rpid` resolves it against `dirfd`
    /// (`None`: its cwd).
    pub(crate) fn resolve(
        &mut self,
        rpid: u32,
        dirfd: Option<i32>,
        path: &[u8],
    ) -> Result<KVVec<u8>> {
        let p = self.proc_mut(rpid)?;
        let base = match dirfd {
            None => &p.cwd[..],
            Some(fd) => p
                .files
                .iter()
                .find(|f| f.sfd == fd)
                .map_or(&b"/?"[..], |f| &f.path[..]),
        };
        join(base, path)
    }

    /// The identity and limit last sent for the shadow of `rpid`, with their session.
    pub(crate) fn attrs(&self, rpid: u32) -> Option<(u32, ProcAttrs)> {
        self.procs
            .iter()
            .find(|p| p.rpid == rpid)
            .and_then(|p| p.attrs)
    }

    /// `attrs` were sent for the shadow of `rpid` in `session`.
    pub(crate) fn set_attrs(&mut self, rpid: u32, session: u32, attrs: &ProcAttrs) -> Result {
        self.proc_mut(rpid)?.attrs = Some((session, *attrs));
        Ok(())
    }

    /// Process `rpid` opened `path` (absolute) as server fd `sfd`.
    pub(crate) fn opened(
        &mut self,
        rpid: u32,
        sfd: i32,
        flags: u32,
        mode: u32,
        path: KVVec<u8>,
    ) -> Result {
        let p = self.proc_mut(rpid)?;
        p.files.retain(|f| f.sfd != sfd);
        p.files.push(
            FileRec {
                sfd,
                flags,
                mode,
                path,
                lost: false,
                write_error: None,
                locks: KVec::new(),
            },
            GFP_KERNEL,
        )?;
        Ok(())
    }

    /// `F_SETFL` set the status flags `arg` (those of [`SETFL_MASK`]) on server fd `sfd` of
    /// process `rpid`: a replay reopens the file with them.
    pub(crate) fn set_status_flags(&mut self, rpid: u32, sfd: i32, arg: u32) {
        let file = self
            .find(rpid)
            .and_then(|p| p.files.iter_mut().find(|f| f.sfd == sfd));
        if let Some(f) = file {
            f.flags = (f.flags & !SETFL_MASK) | (arg & SETFL_MASK);
        }
    }

    /// Replay could not reopen server fd `sfd` of process `rpid`.
    pub(crate) fn lose(&mut self, rpid: u32, sfd: i32) {
        if let Some(f) = self
            .find(rpid)
            .and_then(|p| p.files.iter_mut().find(|f| f.sfd == sfd))
        {
            f.lost = true;
        }
    }

    /// Data retained for the file at `path` could not be written again (`err`): every fd
    /// open on it reports `err` at its next write, `fsync` or close, as a write-back error
    /// of NFS would be. Returns how many fds will.
    pub(crate) fn write_failed(&mut self, path: &[u8], err: Error) -> usize {
        let files = self.procs.iter_mut().flat_map(|p| p.files.iter_mut());
        let mut n = 0usize;
        for f in files.filter(|f| f.path[..] == *path) {
            f.write_error = Some(err);
            n = n.saturating_add(1);
        }
        n
    }

    /// The write error server fd `sfd` of process `rpid` has to report, if any; it is
    /// reported once.
    pub(crate) fn take_write_error(&mut self, rpid: u32, sfd: i32) -> Option<Error> {
        self.find(rpid)?
            .files
            .iter_mut()
            .find(|f| f.sfd == sfd)?
            .write_error
            .take()
    }

    /// Process `rpid` took (or, record locks, released) `lock` through server fd `sfd`.
    ///
    /// Kept in order, so that a replay that makes them again in that order ends with the
    /// same locks; compacted as the kernel merges locks: a `flock` replaces the file's
    /// earlier one (`LOCK_UN`: none kept), and a record operation on an absolute range
    /// replaces the earlier ones of its kind on ranges it covers (an unlock with none left
    /// is not kept).
    pub(crate) fn locked(&mut self, rpid: u32, sfd: i32, lock: Lock) -> Result {
        let Some(f) = self
            .find(rpid)
            .and_then(|p| p.files.iter_mut().find(|f| f.sfd == sfd))
        else {
            return Ok(());
        };
        let keep = match lock {
            Lock::Flock(op) => {
                f.locks.retain(|l| !matches!(l, Lock::Flock(_)));
                op != bindings::LOCK_UN
            }
            Lock::Record { cmd, ref flock } => {
                if let Some(r) = lock.range() {
                    f.locks
                        .retain(|l| !(l.is_record(cmd) && l.range().is_some_and(|o| covers(r, o))));
                }
                let unlock = u32::try_from(Lock::l_type(flock)).ok() == Some(bindings::F_UNLCK);
                !unlock || f.locks.iter().any(|l| l.is_record(cmd))
            }
        };
        if !keep {
            return Ok(());
        }
        if f.locks.len() >= MAX_LOCKS {
            return Err(ENOSPC);
        }
        f.locks.push(lock, GFP_KERNEL)?;
        Ok(())
    }

    /// Process `rpid` closed an fd of the file open as its server fd `sfd`: as in Linux,
    /// every record lock of the process on that file is gone (OFD locks and `flock`s stay
    /// with their open file description). Returns the write error the fd has to report,
    /// if any ([`Log::take_write_error`]): a close reports it, as NFS's does.
    pub(crate) fn fd_closed(&mut self, rpid: u32, sfd: i32) -> Option<Error> {
        let p = self.find(rpid)?;
        let at = p.files.iter().position(|f| f.sfd == sfd)?;
        let path = core::mem::take(&mut p.files[at].path);
        for f in p.files.iter_mut() {
            if f.sfd == sfd || f.path[..] == path[..] {
                f.locks.retain(|l| !l.is_record(F_SETLK));
            }
        }
        p.files[at].path = path;
        p.files[at].write_error.take()
    }

    /// Whether server fd `sfd` of process `rpid` was lost in a replay.
    pub(crate) fn is_lost(&self, rpid: u32, sfd: i32) -> bool {
        self.procs
            .iter()
            .find(|p| p.rpid == rpid)
            .is_some_and(|p| p.files.iter().any(|f| f.sfd == sfd && f.lost))
    }

    /// The server path of server fd `sfd` of process `rpid`.
    pub(crate) fn path(&self, rpid: u32, sfd: i32) -> Option<&[u8]> {
        self.procs
            .iter()
            .find(|p| p.rpid == rpid)?
            .files
            .iter()
            .find(|f| f.sfd == sfd)
            .map(|f| &f.path[..])
    }

    /// `old` was renamed to `new` (both absolute; `exchange`: they swapped places): the
    /// open files and working directories under either follow.
    pub(crate) fn renamed(&mut self, old: &[u8], new: &[u8], exchange: bool) -> Result {
        for p in self.procs.iter_mut() {
            let files = p.files.iter_mut().map(|f| &mut f.path);
            for path in Iterator::chain(core::iter::once(&mut p.cwd), files) {
                let moved = match moved(path, old, new)? {
                    None if exchange => moved(path, new, old)?,
                    m => m,
                };
                if let Some(m) = moved {
                    *path = m;
                }
            }
        }
        Ok(())
    }

    /// A rename of `old` to `new` goes out; returns its id for [`Log::end_rename`].
    pub(crate) fn begin_rename(&mut self, old: &[u8], new: &[u8]) -> Result<u64> {
        let id = self.next_rename;
        let next = id.checked_add(1).ok_or(EOVERFLOW)?;
        self.renames
            .push((id, copy(old)?, copy(new)?), GFP_KERNEL)?;
        self.next_rename = next;
        Ok(id)
    }

    /// The rename `id` was answered (or will not be).
    pub(crate) fn end_rename(&mut self, id: u64) {
        self.renames.retain(|(i, _, _)| *i != id);
    }

    /// `path` under the name a rename still out gives it, if one moves it.
    pub(crate) fn pending_name(&self, path: &[u8]) -> Option<KVVec<u8>> {
        self.renames
            .iter()
            .rev()
            .find_map(|(_, old, new)| moved(path, old, new).ok().flatten())
    }

    /// The source of the latest rename still out that replaces the file at `path` (its
    /// target is `path` or a directory above it), if there is one: once that rename ran, the
    /// name `path` no longer reaches the file it reached before.
    pub(crate) fn replaced_by(&self, path: &[u8]) -> Result<Option<KVVec<u8>>> {
        let found = self.renames.iter().rev();
        let mut found = found.filter(|(_, _, new)| under(path, new).is_some());
        found.next().map(|(_, old, _)| copy(old)).transpose()
    }

    /// Process `rpid` closed server fd `sfd`.
    pub(crate) fn closed(&mut self, rpid: u32, sfd: i32) {
        if let Some(p) = self.find(rpid) {
            p.files.retain(|f| f.sfd != sfd);
        }
    }

    /// Process `rpid` changed its cwd to `path` (absolute).
    pub(crate) fn chdir(&mut self, rpid: u32, path: KVVec<u8>) -> Result {
        self.proc_mut(rpid)?.cwd = path;
        Ok(())
    }

    /// Process `rpid` changed its cwd to the directory open as server fd `sfd`.
    pub(crate) fn fchdir(&mut self, rpid: u32, sfd: i32) -> Result {
        let p = self.proc_mut(rpid)?;
        let Some(f) = p.files.iter().find(|f| f.sfd == sfd) else {
            return Ok(());
        };
        let mut cwd = KVVec::new();
        cwd.extend_from_slice(&f.path, GFP_KERNEL)?;
        p.cwd = cwd;
        Ok(())
    }

    /// Process `rpid` set its umask to `mask`.
    pub(crate) fn umask(&mut self, rpid: u32, mask: u32) -> Result {
        self.proc_mut(rpid)?.umask = Some(mask);
        Ok(())
    }

    /// Process `parent` forked `child`: the child starts with a copy of the parent's state.
    pub(crate) fn forked(&mut self, parent: u32, child: u32) -> Result {
        let Some(p) = self.procs.iter().find(|p| p.rpid == parent) else {
            return Ok(());
        };
        let copy = p.try_clone(child, false)?;
        self.procs.retain(|p| p.rpid != child);
        self.procs.push(copy, GFP_KERNEL)?;
        Ok(())
    }

    /// A copy of every process's state (for replay).
    pub(crate) fn snapshot(&self) -> Result<KVec<ProcRec>> {
        let mut procs = KVec::with_capacity(self.procs.len(), GFP_KERNEL)?;
        for p in self.procs.iter() {
            procs.push(p.try_clone(p.rpid, true)?, GFP_KERNEL)?;
        }
        Ok(procs)
    }

    /// Process `rpid` exited: its state is gone on the server too.
    pub(crate) fn exited(&mut self, rpid: u32) {
        self.procs.retain(|p| p.rpid != rpid);
    }

    /// The debugfs `log` file.
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: usize = self.procs.iter().map(|p| p.files.len()).sum();
        writeln!(
            f,
            "calls={} processes={} open_files={}",
            self.calls,
            self.procs.len(),
            files
        )?;
        for p in self.procs.iter() {
            write!(
                f,
                "process rpid={} calls={} cwd={}",
                p.rpid,
                p.calls,
                BStr(&p.cwd)
            )?;
            match p.umask {
                Some(m) => writeln!(f, " umask={m:#o}")?,
                None => writeln!(f)?,
            }
            if let Some((_, a)) = &p.attrs {
                writeln!(
                    f,
                    "  attrs uid={}/{}/{} gid={}/{}/{} groups={} fsize={}/{}",
                    a.uid,
                    a.euid,
                    a.fsuid,
                    a.gid,
                    a.egid,
                    a.fsgid,
                    a.ngroups,
                    // As `rlim_t` bits: `RLIM_INFINITY` shows as -1.
                    arg_i64(a.fsize_cur),
                    arg_i64(a.fsize_max)
                )?;
            }
            for r in p.files.iter() {
                write!(
                    f,
                    "  fd {} flags={:#o} mode={:#o} path={}",
                    r.sfd,
                    r.flags,
                    r.mode,
                    BStr(&r.path),
                )?;
                if !r.locks.is_empty() {
                    write!(f, " locks={}", r.locks.len())?;
                }
                if r.lost {
                    write!(f, " (lost in replay)")?;
                }
                match r.write_error {
                    Some(e) => writeln!(f, " (write error {} to report)", e.to_errno())?,
                    None => writeln!(f)?,
                }
            }
        }
        Ok(())
    }
}

/// Bytes shown as text, non-UTF-8 bytes escaped.
pub(crate) struct BStr<'a>(pub(crate) &'a [u8]);

impl fmt::Display for BStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &c in self.0 {
            if c.is_ascii_graphic() || c == b' ' {
                write!(f, "{}", c as char)?;
            } else {
                write!(f, "\\x{c:02x}")?;
            }
        }
        Ok(())
    }
}
