// SPDX-License-Identifier: GPL-2.0

//! Replay (DESIGN §3.4): a server that does not hold this client's state any more (it
//! rebooted, or another server took over its disk) gets it back from the log before any
//! task's call goes out again. Each remote process's shadow is created by its first
//! replayed call and gets the process's cwd, its umask and every open file at its old server
//! fd number (open, then `dup3` onto the old number). Then the connection is published and
//! the calls that were in flight are sent again by their tasks (`rpc::publish_link`).
//!
//! A result that contradicts the log (an open file that is gone, a cwd that cannot be
//! entered) is a divergence: one dmesg line and a count in debugfs `state`; a file that
//! could not be reopened is marked lost in the log, and the app's reads and writes on it
//! fail with `EIO` (its server slot stays empty, so nothing reaches another file). Not
//! replayed yet: unflushed writes and namespace operations (they need the server's
//! durability acks).

use kernel::{alloc::KVVec, prelude::*, sync::atomic::Relaxed, time::Instant};

use crate::attrs;
use crate::client::Shared;
use crate::connection::{silent_too_long, Conn};
use crate::fs::request;
use crate::log::{FileRec, ProcRec};
use crate::proto::frame::{Header, F_REPLY};
use crate::proto::kind::Kind;
use crate::proto::syscall::{BufDesc, SyscallReply, SyscallReq, DIR_IN};
use crate::rpc;
use crate::transport::RecvError;

const AT_FDCWD: i64 = -100;
/// Flags that must not act again when a file is reopened.
const O_ONCE: u32 = 0o100 | 0o200 | 0o1000; // O_CREAT | O_EXCL | O_TRUNC

/// Rebuilds every logged process's state on the server of `conn`.
pub(crate) fn run(shared: &Shared, conn: &mut Conn) -> Result {
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
    let ret = path_call(shared, conn, p.rpid, 80, [0; 6], 0, &p.cwd)?;
    if ret < 0 {
        diverged(shared, p.rpid, "chdir", &p.cwd, ret);
    }
    if let Some(mask) = p.umask {
        call(
            shared,
            conn,
            p.rpid,
            &request(95, [mask.into(), 0, 0, 0, 0, 0], &[]),
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
    let args = [
        AT_FDCWD as u64,
        0,
        u64::from(f.flags & !O_ONCE),
        u64::from(f.mode),
        0,
        0,
    ];
    let fd = path_call(shared, conn, rpid, 257, args, 1, &f.path)?;
    if fd < 0 {
        shared.log.lock().lose(rpid, f.sfd);
        diverged(shared, rpid, "reopen", &f.path, fd);
        return Ok(());
    }
    if fd != i64::from(f.sfd) {
        let sfd = f.sfd as u64;
        let ret = call(
            shared,
            conn,
            rpid,
            &request(292, [fd as u64, sfd, 0, 0, 0, 0], &[]),
            &[],
        )?;
        call(
            shared,
            conn,
            rpid,
            &request(3, [fd as u64, 0, 0, 0, 0, 0], &[]),
            &[],
        )?;
        if ret < 0 {
            diverged(shared, rpid, "dup3 to its old fd", &f.path, ret);
        }
    }
    Ok(())
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
    let mut buf = KVVec::with_capacity(path.len() + 1, GFP_KERNEL)?;
    buf.extend_from_slice(path, GFP_KERNEL)?;
    buf.push(0, GFP_KERNEL)?;
    let desc = BufDesc {
        arg,
        dir: DIR_IN,
        len: buf.len() as u32,
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
    let mut body = KVVec::new();
    body.resize(SyscallReq::head_len(req.bufs().len()), 0, GFP_KERNEL)?;
    req.encode(&mut body).map_err(|_| EINVAL)?;
    for b in ins {
        body.extend_from_slice(b, GFP_KERNEL)?;
    }
    let hdr = Header {
        session: conn.session,
        rpid,
        seq: rpc::next_seq(),
        ..Header::new(Kind::ClientSystemCall, 0)
    };
    conn.tx.lock().send(hdr, &body)?;
    loop {
        match conn.rx.recv(conn.max_frame) {
            Ok((h, b)) => {
                conn.last_rx = Instant::now();
                if h.kind == Kind::ServerReply && h.seq == hdr.seq {
                    return SyscallReply::decode(b)
                        .map(|(rep, _)| rep.ret)
                        .map_err(|_| EPROTO);
                }
                if h.kind == Kind::Heartbeat && h.flags & F_REPLY == 0 {
                    let reply = Header {
                        flags: F_REPLY,
                        len: 0,
                        ..h
                    };
                    conn.tx.lock().send(reply, &[])?;
                }
            }
            Err(RecvError::Timeout)
                if !shared.is_stopping() && !silent_too_long(shared, conn.last_rx) => {}
            Err(_) => return Err(ECONNRESET),
        }
    }
}
