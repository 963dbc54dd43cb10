// SPDX-License-Identifier: GPL-2.0

//! Replay (DESIGN §3.4): a server that does not hold this client's state any more (it
//! rebooted, or another server took over its disk) gets it back from the log before any
//! task's call goes out again. Each remote process's shadow is created by its first
//! replayed call and gets the process's cwd, its umask and every open file at its old server
//! fd number (open, then `dup3` onto the old number). Then the connection is published and
//! the calls that were in flight are sent again by their tasks (`rpc::publish_link`).
//!
//! Before that, the writes the server had not made durable are written again ([`redo`],
//! `retain.rs`), in their order, at their offsets, by a shadow of their own; the same
//! happens on a live connection when the server's verifier changes (a writeback error).
//! Namespace operations need no replay: the server commits each before answering it.
//!
//! Files are reopened (and retained data written again) by the shadow call `REOPEN`: an
//! `openat` that lends a file's owner the mode bits it lacks, so that a file its process
//! created read-only (mode 0444, written through the fd the create gave) comes back too.
//!
//! A result that contradicts the log (an open file that is gone, a cwd that cannot be
//! entered, a retained write whose file is gone) is a divergence: one dmesg line and a
//! count in debugfs `state`; a file that could not be reopened is marked lost in the log,
//! and the app's reads and writes on it fail with `EIO` (its server slot stays empty, so
//! nothing reaches another file).

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::atomic::Relaxed,
    time::{Instant, Monotonic},
};

use crate::link::attrs;
use crate::link::connection::{handle_frame, silent_for, Conn, Handled};
use crate::link::rpc;
use crate::link::rpc::request;
use crate::num::{len_u64, outcome, reg_i32, reg_i64, wire_len};
use crate::proto::calls;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::process::{ProcAttrs, REDO_RPID};
use crate::proto::syscall::{BufDesc, SyscallReply, SyscallReq, DIR_IN, DIR_OUT};
use crate::proto::sysno;
use crate::recovery::journal::{FileRec, Lock, ProcRec};
use crate::recovery::retain::WriteRec;
use crate::state::Shared;
use crate::transport::RecvError;

/// Flags that must not act again when a file is reopened.
const O_ONCE: u32 = bindings::O_CREAT | bindings::O_EXCL | bindings::O_TRUNC;

/// Heartbeat intervals a replay step may wait for its answer, whatever else arrives
/// meanwhile (heartbeats do not extend it): a server's session sends nothing while it
/// starts a shadow (a user-mode helper: seconds on a loaded machine), and the first
/// replayed call of each process starts one. A step past it (a call that blocks on the
/// server) ends the connection: the replay starts again on the next one.
const REPLAY_MISSES: i64 = 20;

/// Rebuilds every logged process's state on the server of `conn`.
pub(crate) fn run(shared: &Shared, conn: &mut Conn) -> Result {
    redo(shared, conn)?;
    let procs = shared.log.lock().snapshot()?;
    if procs.is_empty() {
        return Ok(());
    }
    shared.replays.add(1, Relaxed);
    let files: usize = procs.iter().map(|p| p.files.len()).sum();
    pr_info!(
        "replaying {} processes, {} open files on session {}\n",
        procs.len(),
        files,
        conn.session
    );
    for p in procs.iter() {
        process(shared, conn, p)?;
    }
    Ok(())
}

/// Writes every retained write again on the server of `conn`, oldest first. Each keeps its
/// data until a later `SERVER_FLUSHED` covers the seq of its new write.
pub(crate) fn redo(shared: &Shared, conn: &mut Conn) -> Result {
    let started = Instant::<Monotonic>::now();
    let mut recs = shared.retained.lock().take();
    let r = redo_all(shared, conn, &mut recs);
    shared.last_redo_us.store(elapsed_us(started), Relaxed);
    // Put back even after a failure: the next connection writes them again.
    let back = shared.retained.lock().put_back(recs);
    r.and(back)
}

/// Microseconds since `started` (0 if the clock went backwards).
fn elapsed_us(started: Instant<Monotonic>) -> u64 {
    u64::try_from(started.elapsed().as_nanos() / 1000).unwrap_or(0)
}

fn redo_all(shared: &Shared, conn: &mut Conn, recs: &mut KVec<WriteRec>) -> Result {
    if recs.is_empty() {
        return Ok(());
    }
    let bytes: usize = recs.iter().map(|r| r.data().len()).sum();
    pr_info!(
        "writing {} retained writes ({} bytes) again on session {}\n",
        recs.len(),
        bytes,
        conn.session
    );
    // The file open in the redo shadow, the identity it was given, and the writes out.
    let mut open: Option<(KVVec<u8>, i64)> = None;
    let mut identity: Option<ProcAttrs> = None;
    let mut window = Window::default();
    let r = (|| -> Result {
        for i in 0..recs.len() {
            let r = &recs[i];
            let other_file = open.as_ref().is_none_or(|(p, _)| p[..] != r.path[..]);
            let other_identity = r.attrs.is_some() && r.attrs != identity;
            if other_file || other_identity {
                window.drain(shared, conn, recs)?;
                close(shared, conn, open.take())?;
            }
            let r = &recs[i];
            if other_identity {
                if let Some(a) = &r.attrs {
                    attrs::send_only(&mut conn.tx.lock(), conn.session, REDO_RPID, a)?;
                }
                identity = r.attrs;
            }
            if open.is_none() {
                let fd = open_for_redo(shared, conn, &r.path)?;
                // Gone: only a removal in flight at the crash (it runs again after the
                // replay) can have taken it; committed ones freed what was kept before.
                if fd == REPLACED {
                    pr_info!(
                        "retained write to {} not written again: a rename that was out when the server went down replaced the file\n",
                        core::str::from_utf8(&r.path).unwrap_or("(path not UTF-8)")
                    );
                } else if fd == i64::from(ENOENT.to_errno()) {
                    pr_info!(
                        "retained write to {} not written again: the file is gone\n",
                        core::str::from_utf8(&r.path).unwrap_or("(path not UTF-8)")
                    );
                } else if fd < 0 {
                    redo_failed(shared, "open to write again", &r.path, fd);
                }
                let mut path = KVVec::new();
                path.extend_from_slice(&r.path, GFP_KERNEL)?;
                open = Some((path, fd));
            }
            let Some((_, fd)) = open.as_ref().filter(|(_, fd)| *fd >= 0) else {
                continue;
            };
            let data = r.data();
            let desc = BufDesc {
                arg: 1,
                dir: DIR_IN,
                len: wire_len(data.len())?,
            };
            let args = [reg_i64(*fd), 0, len_u64(data.len()), reg_i64(r.off), 0, 0];
            let seq = rpc::next_seq();
            send(
                conn,
                REDO_RPID,
                &request(sysno::PWRITE64, args, &[desc]),
                &[data],
                seq,
            )?;
            recs[i].seq = seq;
            window.out.push((seq, i), GFP_KERNEL)?;
            if window.out.len() == REDO_WINDOW {
                window.finish_one(shared, conn, recs)?;
            }
        }
        window.drain(shared, conn, recs)?;
        close(shared, conn, open.take())
    })();
    let mut retained = shared.retained.lock();
    retained.redone = retained.redone.saturating_add(window.writes);
    retained.redone_bytes = retained.redone_bytes.saturating_add(window.bytes);
    drop(retained);
    // The redo shadow goes away (the server closes what it left open).
    let hdr = Header {
        session: conn.session,
        rpid: REDO_RPID,
        seq: rpc::next_seq(),
        ..Header::new(Kind::ClientExit, 0)
    };
    let exit = conn.tx.lock().send(hdr, &[]);
    r.and(exit)
}

/// What [`open_for_redo`] returns for a file a rename replaced: no fd, and no divergence.
const REPLACED: i64 = i64::MIN;

/// Opens the file of a retained write to `path` in the redo shadow: its server fd, a
/// negative errno, or [`REPLACED`].
///
/// A rename that was out when the server went down may have run there (its reply was lost
/// with the server, and it runs again after the replay). If it replaced the file at `path`,
/// the data retained for that file is not written again: the name now reaches the rename's
/// source. If it moved the file from `path`, the data follows it to its new name.
fn open_for_redo(shared: &Shared, conn: &mut Conn, path: &[u8]) -> Result<i64> {
    if replaced(shared, conn, REDO_RPID, path)? {
        return Ok(REPLACED);
    }
    let wronly = u64::from(bindings::O_WRONLY);
    let args = [reg_i32(calls::AT_FDCWD), 0, wronly, 0, 0, 0];
    reopen_path(shared, conn, REDO_RPID, args, path)
}

/// Opens `path` in process `rpid`'s shadow by the shadow call `REOPEN` (`args`: its
/// `openat` arguments): its server fd or a negative errno. A file that is gone may have
/// been moved by a rename that was out when the server went down (it runs again after the
/// replay, and the log then follows it): it is opened under its new name.
fn reopen_path(
    shared: &Shared,
    conn: &mut Conn,
    rpid: u32,
    args: [u64; 6],
    path: &[u8],
) -> Result<i64> {
    let fd = path_call(shared, conn, rpid, calls::REOPEN, args, 1, path)?;
    if fd != i64::from(ENOENT.to_errno()) {
        return Ok(fd);
    }
    let moved = shared.log.lock().pending_name(path);
    match moved {
        Some(to) => path_call(shared, conn, rpid, calls::REOPEN, args, 1, &to),
        None => Ok(fd),
    }
}

/// Whether a rename that was out when the server went down replaced the file at `path`:
/// one whose target is `path` (or a directory above it) and whose source is gone, so it
/// ran. Asked in process `rpid`'s shadow.
fn replaced(shared: &Shared, conn: &mut Conn, rpid: u32, path: &[u8]) -> Result<bool> {
    const F_OK: u64 = 0;
    let nofollow = u64::from(bindings::AT_SYMLINK_NOFOLLOW);
    let source = shared.log.lock().replaced_by(path)?;
    let Some(source) = source else {
        return Ok(false);
    };
    let args = [reg_i32(calls::AT_FDCWD), 0, F_OK, nofollow, 0, 0];
    let ret = path_call(shared, conn, rpid, sysno::FACCESSAT2, args, 1, &source)?;
    Ok(ret == i64::from(ENOENT.to_errno()))
}

/// Redo writes out at once: like a task's transfer (`io::transfer`), sending, the server's
/// writing and the replies overlap, so the redo runs at the link's pace.
const REDO_WINDOW: usize = 8;

/// The redo's writes in flight (seq, index of the record) and what was written so far.
#[derive(Default)]
struct Window {
    out: KVec<(u64, usize)>,
    writes: u64,
    bytes: u64,
}

impl Window {
    /// Waits for the reply to one write in flight.
    fn finish_one(&mut self, shared: &Shared, conn: &mut Conn, recs: &[WriteRec]) -> Result {
        let (seq, ret) = reply(shared, conn, |seq| self.out.iter().any(|o| o.0 == seq))?;
        let Some(at) = self.out.iter().position(|o| o.0 == seq) else {
            return Err(EPROTO);
        };
        let (_, i) = self.out.remove(at)?;
        let r = &recs[i];
        let len = r.data().len();
        if i64::try_from(len).ok() != Some(ret) {
            redo_failed(shared, "write again to", &r.path, ret);
        }
        self.writes = self.writes.saturating_add(1);
        self.bytes = self.bytes.saturating_add(len_u64(len));
        Ok(())
    }

    /// Waits for the replies to every write in flight.
    fn drain(&mut self, shared: &Shared, conn: &mut Conn, recs: &[WriteRec]) -> Result {
        while !self.out.is_empty() {
            self.finish_one(shared, conn, recs)?;
        }
        Ok(())
    }
}

/// Closes the file open in the redo shadow, if any.
fn close(shared: &Shared, conn: &mut Conn, open: Option<(KVVec<u8>, i64)>) -> Result {
    if let Some((_, fd)) = open.filter(|(_, fd)| *fd >= 0) {
        call(
            shared,
            conn,
            REDO_RPID,
            &request(sysno::CLOSE, [reg_i64(fd), 0, 0, 0, 0, 0], &[]),
            &[],
        )?;
    }
    Ok(())
}

/// Data retained for the file at `path` could not be written again (`ret`: the result of
/// the redo's open or write): a divergence, and an error that every fd open on the file
/// reports at its next write, `fsync` or close (the errno, or `EIO` for a short write), as
/// NFS reports a write-back error. The data is not kept for another try: the disk is full,
/// or the file cannot be written any more.
fn redo_failed(shared: &Shared, what: &str, path: &[u8], ret: i64) {
    diverged(shared, REDO_RPID, what, path, ret);
    let err = outcome(ret).err().unwrap_or(EIO);
    let fds = shared.log.lock().write_failed(path, err);
    shared.redo_errors.add(1, Relaxed);
    pr_info!(
        "write error {} for {}: reported to {} open fds\n",
        err.to_errno(),
        core::str::from_utf8(path).unwrap_or("(path not UTF-8)"),
        fds
    );
}

/// Reports a divergence.
fn diverged(shared: &Shared, rpid: u32, what: &str, path: &[u8], ret: i64) {
    shared.divergences.add(1, Relaxed);
    pr_notice!(
        "replay diverged: process {}: {} {} failed ({})\n",
        rpid,
        what,
        core::str::from_utf8(path).unwrap_or("(path not UTF-8)"),
        ret
    );
}

fn process(shared: &Shared, conn: &mut Conn, p: &ProcRec) -> Result {
    // The identity first: the shadow starts as nobody.
    if let Some((_, a)) = &p.attrs {
        attrs::send(shared, &mut conn.tx.lock(), conn.session, p.rpid, a)?;
    }
    let ret = path_call(shared, conn, p.rpid, sysno::CHDIR, [0; 6], 0, &p.cwd)?;
    if ret < 0 {
        diverged(shared, p.rpid, "chdir", &p.cwd, ret);
    }
    if let Some(mask) = p.umask {
        call(
            shared,
            conn,
            p.rpid,
            &request(sysno::UMASK, [mask.into(), 0, 0, 0, 0, 0], &[]),
            &[],
        )?;
    }
    // In fd order, so that each open lands at or below its old number.
    let mut last = i32::MIN;
    while let Some(f) = p
        .files
        .iter()
        .filter(|f| f.sfd > last)
        .min_by_key(|f| f.sfd)
    {
        reopen(shared, conn, p.rpid, f)?;
        last = f.sfd;
    }
    Ok(())
}

/// Reopens `f` in process `rpid`'s shadow at its old server fd.
fn reopen(shared: &Shared, conn: &mut Conn, rpid: u32, f: &FileRec) -> Result {
    // Never blocks: a FIFO opened for reading or writing alone waits for its other end,
    // which nobody on a restarted server holds. Without a reader a FIFO's writer cannot be
    // reopened (ENXIO: a divergence); what was in the pipe is gone either way. The file's
    // own status flags are set again below.
    let args = [
        reg_i32(calls::AT_FDCWD),
        0,
        u64::from((f.flags & !O_ONCE) | bindings::O_NONBLOCK),
        u64::from(f.mode),
        0,
        0,
    ];
    // A rename that was out when the server went down may have replaced it: the file is
    // gone, like an unlinked open file.
    let fd = if replaced(shared, conn, rpid, &f.path)? {
        i64::from(ENOENT.to_errno())
    } else {
        reopen_path(shared, conn, rpid, args, &f.path)?
    };
    if fd < 0 {
        shared.log.lock().lose(rpid, f.sfd);
        diverged(shared, rpid, "reopen", &f.path, fd);
        return Ok(());
    }
    if fd != i64::from(f.sfd) {
        let sfd = reg_i32(f.sfd);
        let ret = call(
            shared,
            conn,
            rpid,
            &request(sysno::DUP3, [reg_i64(fd), sfd, 0, 0, 0, 0], &[]),
            &[],
        )?;
        call(
            shared,
            conn,
            rpid,
            &request(sysno::CLOSE, [reg_i64(fd), 0, 0, 0, 0, 0], &[]),
            &[],
        )?;
        if ret < 0 {
            diverged(shared, rpid, "dup3 to its old fd", &f.path, ret);
        }
    }
    if f.flags & bindings::O_NONBLOCK == 0 {
        let sfd = reg_i32(f.sfd);
        let flags = u64::from(f.flags & !O_ONCE);
        let ret = call(
            shared,
            conn,
            rpid,
            &request(sysno::FCNTL, [sfd, calls::F_SETFL, flags, 0, 0, 0], &[]),
            &[],
        )?;
        if ret < 0 {
            diverged(shared, rpid, "restore the status flags of", &f.path, ret);
        }
    }
    // An appending fd's offset is where its last append ended (the client learns it from
    // there after each append, `io::transfer`): the end of the file, once the retained
    // writes are back.
    if f.flags & bindings::O_APPEND != 0 {
        let (sfd, end) = (reg_i32(f.sfd), u64::from(bindings::SEEK_END));
        call(
            shared,
            conn,
            rpid,
            &request(sysno::LSEEK, [sfd, 0, end, 0, 0, 0], &[]),
            &[],
        )?;
    }
    for lock in f.locks.iter() {
        if !relock(shared, conn, rpid, f, lock)? {
            break;
        }
    }
    Ok(())
}

/// Takes `lock` again through `f` in process `rpid`'s shadow, without waiting: whether it
/// was. One that cannot be taken (someone else holds it now: another client, or a process
/// on the server) is a divergence: the app believes it holds it, so the file is marked
/// lost and its calls fail with `EIO`.
fn relock(shared: &Shared, conn: &mut Conn, rpid: u32, f: &FileRec, lock: &Lock) -> Result<bool> {
    let sfd = reg_i32(f.sfd);
    let ret = match lock {
        Lock::Flock(op) => {
            let op = u64::from(op | bindings::LOCK_NB);
            let req = request(sysno::FLOCK, [sfd, op, 0, 0, 0, 0], &[]);
            call(shared, conn, rpid, &req, &[])?
        }
        Lock::Record { cmd, flock } => {
            // In and out, as the call table gives `fcntl`'s lock argument (the server
            // refuses another direction); what comes back is not needed.
            let desc = BufDesc {
                arg: 2,
                dir: DIR_IN | DIR_OUT,
                len: wire_len(flock.len())?,
            };
            let req = request(sysno::FCNTL, [sfd, *cmd, 0, 0, 0, 0], &[desc]);
            call(shared, conn, rpid, &req, &[&flock[..]])?
        }
    };
    if ret < 0 {
        shared.log.lock().lose(rpid, f.sfd);
        diverged(shared, rpid, "take a lock again on", &f.path, ret);
        return Ok(false);
    }
    Ok(true)
}

/// Syscall `nr` of process `rpid` whose argument `arg` is `path`.
fn path_call(
    shared: &Shared,
    conn: &mut Conn,
    rpid: u32,
    nr: u32,
    args: [u64; 6],
    arg: u8,
    path: &[u8],
) -> Result<i64> {
    let mut buf = KVVec::with_capacity(path.len().saturating_add(1), GFP_KERNEL)?;
    buf.extend_from_slice(path, GFP_KERNEL)?;
    buf.push(0, GFP_KERNEL)?;
    let desc = BufDesc {
        arg,
        dir: DIR_IN,
        len: wire_len(buf.len())?,
    };
    call(shared, conn, rpid, &request(nr, args, &[desc]), &[&buf])
}

/// Runs `req` in process `rpid`'s shadow and waits for the reply, on the worker's own
/// connection (nothing else is in flight on it yet). Errors: the connection failed.
fn call(
    shared: &Shared,
    conn: &mut Conn,
    rpid: u32,
    req: &SyscallReq,
    ins: &[&[u8]],
) -> Result<i64> {
    let seq = rpc::next_seq();
    send(conn, rpid, req, ins, seq)?;
    reply(shared, conn, |s| s == seq).map(|(_, ret)| ret)
}

/// Sends `req` for process `rpid`'s shadow with seq `seq`.
fn send(conn: &mut Conn, rpid: u32, req: &SyscallReq, ins: &[&[u8]], seq: u64) -> Result {
    let mut body = KVVec::new();
    body.resize(SyscallReq::head_len(req.bufs().len()), 0, GFP_KERNEL)?;
    req.encode(&mut body).map_err(|_| EINVAL)?;
    for b in ins {
        body.extend_from_slice(b, GFP_KERNEL)?;
    }
    let hdr = Header {
        session: conn.session,
        rpid,
        seq,
        ..Header::new(Kind::ClientSystemCall, 0)
    };
    conn.tx.lock().send(hdr, &body)
}

/// Waits for the reply to a call whose seq `mine` accepts: its seq and return value; at
/// most [`REPLAY_MISSES`] heartbeat intervals (`ETIMEDOUT`).
fn reply(shared: &Shared, conn: &mut Conn, mine: impl Fn(u64) -> bool) -> Result<(u64, i64)> {
    let asked = Instant::<Monotonic>::now();
    loop {
        match conn.rx.recv(conn.max_frame) {
            Ok((h, b)) => {
                conn.last_rx = Instant::now();
                if h.kind == Kind::ServerReply && mine(h.seq) {
                    return SyscallReply::decode(b)
                        .map(|(rep, _)| (h.seq, rep.ret))
                        .map_err(|_| EPROTO);
                }
                // The normal receive path takes the rest: on a live connection (a redo
                // after a writeback error) the tasks' calls are answered meanwhile; a
                // writeback error reported meanwhile makes the worker redo again (it
                // compares `verifier_changes`).
                match handle_frame(shared, conn.session, &conn.tx, &h, b)? {
                    Handled::Done | Handled::Redo => (),
                    Handled::Closed => return Err(ECONNRESET),
                    Handled::Bad(e) => {
                        pr_notice!("replay: server sent an unexpected frame: {}\n", e.name());
                        return Err(EPROTO);
                    }
                }
            }
            Err(RecvError::Timeout) if shared.is_stopping() => return Err(ECONNRESET),
            Err(RecvError::Timeout) if silent_for(shared, asked, REPLAY_MISSES) => {
                pr_notice!(
                    "replay: no answer in {} heartbeat intervals: the connection ends, the replay starts again on the next\n",
                    REPLAY_MISSES
                );
                return Err(ETIMEDOUT);
            }
            Err(RecvError::Timeout) => (),
            Err(_) => return Err(ECONNRESET),
        }
    }
}
