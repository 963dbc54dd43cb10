// SPDX-License-Identifier: GPL-2.0

//! Dispatch of a session's requests: `CLIENT_SYSTEM_CALL` (checked against the call table,
//! then queued to the shadow of its process), `CLIENT_FORK`, `CLIENT_EXIT` and
//! `CLIENT_ATTRS` (the process's identity, mapped by its export's rule). Each request runs
//! once per seq: a re-sent one is answered from the reply cache (`session.rs`).

use kernel::{
    prelude::*,
    sync::{atomic::Relaxed, Arc},
};

use crate::auth::may_log_refusal;
use crate::faults::Point;
use crate::proto::calls;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::process::{ProcAttrs, ThreadMsg, THREAD_STARTED};
use crate::proto::syscall::{SyscallReply, SyscallReq, MAX_BUFS};
use crate::reply_cache::Seen;
use crate::server::Shared;
use crate::session::Session;

/// Whether request `hdr` runs: each request runs once per seq. A re-sent one is answered
/// from the reply cache, or not at all while it is still pending (its reply goes out when
/// ready); a stale one is refused with `ESTALE`, one past `max_pending` with `EAGAIN`.
fn admit(shared: &Shared, s: &Arc<Session>, gen: u64, hdr: &Header) -> Result<bool> {
    match s.seen(gen, hdr, shared.config.max_pending)? {
        Seen::New => Ok(true),
        Seen::Answered => {
            shared.cache_hits.add(1, Relaxed);
            Ok(false)
        }
        Seen::Pending => {
            shared.dup_pending.add(1, Relaxed);
            Ok(false)
        }
        Seen::Stale => {
            pr_notice!(
                "session {}: request seq {} is older than the reply cache: refused with ESTALE\n",
                s.id,
                hdr.seq
            );
            let h = Header {
                session: s.id,
                rpid: hdr.rpid,
                seq: hdr.seq,
                ..Header::new(Kind::ServerReply, 0)
            };
            s.send(
                gen,
                h,
                &SyscallReply::bare(neg_errno(kernel::bindings::ESTALE)),
            )?;
            Ok(false)
        }
        Seen::Full => {
            shared.limit_notice(s, "pending requests", shared.config.max_pending);
            reply_bare(s, hdr, neg_errno(kernel::bindings::EAGAIN));
            Ok(false)
        }
    }
}

/// A `CLIENT_FORK` or `CLIENT_EXIT`, once per seq ([`admit`]).
pub(crate) fn request(
    shared: &Shared,
    s: &Arc<Session>,
    gen: u64,
    hdr: &Header,
    body: &[u8],
) -> Result {
    if !admit(shared, s, gen, hdr)? {
        return Ok(());
    }
    match hdr.kind {
        Kind::ClientFork if shared.exports.is_denied(s.id, hdr.rpid) => {
            reply_bare(s, hdr, neg_errno(kernel::bindings::EPERM));
            Ok(())
        }
        Kind::ClientFork => fork(shared, s, hdr, body).inspect_err(|_| s.unpend(hdr.seq)),
        _ => {
            if let Some(shadow) = shared.find_process(s.id, hdr.rpid) {
                shadow.exit();
                if shadow.is_gone() {
                    shared.remove_shadow(&shadow);
                }
            }
            reply_bare(s, hdr, 0);
            Ok(())
        }
    }
}

/// `CLIENT_FORK`: process `hdr.rpid` forked child `body` (`u32`). The parent's shadow
/// forks too (its reply answers the frame); without a parent shadow the child gets a fresh
/// one at its first call.
fn fork(shared: &Shared, s: &Arc<Session>, hdr: &Header, body: &[u8]) -> Result {
    let child = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(EINVAL)?;
    let Some(parent) = shared.find_process(s.id, hdr.rpid) else {
        s.unpend(hdr.seq);
        return Ok(());
    };
    let shadow = shared.add_forked_shadow(s, child)?;
    if parent.push_fork(hdr.seq, shadow.token, child).is_err() {
        // The parent's server state is gone: so is the child's.
        shadow.fail_all(kernel::bindings::EIO);
        s.unpend(hdr.seq);
    }
    Ok(())
}

/// Hands a `CLIENT_SYSTEM_CALL` of client thread `lane` (`body`, decoded as `req` with its
/// input bytes `data`) to the shadow of its process (started on first use), once per seq
/// ([`admit`]). A shadow
/// that cannot take it (dead: `EIO`, exiting: `ESRCH`) answers at once with that error;
/// the session goes on.
pub(crate) fn system_call(
    shared: &Shared,
    s: &Arc<Session>,
    gen: u64,
    hdr: &Header,
    (lane, body): (u32, &[u8]),
    (req, data): (&SyscallReq, &[u8]),
) -> Result {
    if !admit(shared, s, gen, hdr)? {
        return Ok(());
    }
    shared.faults.reached(Point::OnReceive, Some(req.nr));
    shared.dirty.add(body.len() as u64, Relaxed);
    if shared.exports.is_denied(s.id, hdr.rpid) {
        reply_bare(s, hdr, neg_errno(kernel::bindings::EPERM));
        return Ok(());
    }
    if let Err(refusal) = check_call(shared, s, hdr, req, data) {
        reply_bare(s, hdr, neg_errno(refusal.errno()));
        return Ok(());
    }
    match shared.shadow_for(s, hdr.rpid) {
        Ok(shadow) => {
            let max_bytes = shared.config.max_queued_bytes;
            let lane = (lane, shared.config.max_shadow_threads);
            if let Err(e) = shadow.push(hdr.seq, req.nr, body, max_bytes, lane) {
                if e == EAGAIN {
                    shared.limit_notice(s, "queued request bytes per process", max_bytes);
                }
                shadow.fail(hdr.seq, e.to_errno().unsigned_abs());
            }
        }
        Err(e) => reply_bare(s, hdr, i64::from(e.to_errno())),
    }
    Ok(())
}

/// Checks a `CLIENT_SYSTEM_CALL` against the call table (`proto::calls::check`): a call no
/// shadow runs, or whose buffers do not match its arguments, never reaches one.
fn check_call(
    shared: &Shared,
    s: &Session,
    hdr: &Header,
    req: &SyscallReq,
    data: &[u8],
) -> core::result::Result<(), calls::Refusal> {
    let max_out = shared
        .config
        .max_frame
        .saturating_sub(u32::try_from(SyscallReply::head_len(MAX_BUFS)).unwrap_or(u32::MAX));
    calls::check(req, data, max_out)
        .map(|_| ())
        .inspect_err(|r| {
            if !matches!(r, calls::Refusal::Device) {
                shared.refusal_notice(s, hdr.rpid, req.nr, *r);
            }
        })
}

/// `CLIENT_ATTRS`: the shadow of process `hdr.rpid` (started now when it has none) takes
/// on `attrs`, mapped by the `squash_root` policy, before its next call. A dead or exiting
/// shadow ignores them: its calls fail anyway.
pub(crate) fn set_attrs(
    shared: &Shared,
    s: &Arc<Session>,
    hdr: &Header,
    attrs: &ProcAttrs,
) -> Result {
    let rule = shared.exports.rule(s.peer);
    let Some(rule) = rule.filter(|r| r.allows(attrs)) else {
        // Its calls fail with EPERM until it claims ids its CID may use; no shadow starts
        // for it meanwhile.
        shared.attrs_refused.add(1, Relaxed);
        if may_log_refusal() {
            pr_notice!(
                "session {} ({}) pid {}: CLIENT_ATTRS claims ids outside the client's export ranges (uid {} euid {} fsuid {} gid {} egid {} fsgid {}, {} groups): its calls fail with EPERM\n",
                s.id,
                s.peer,
                hdr.rpid,
                attrs.uid,
                attrs.euid,
                attrs.fsuid,
                attrs.gid,
                attrs.egid,
                attrs.fsgid,
                attrs.ngroups
            );
        }
        if !shared.exports.deny(s.id, hdr.rpid) {
            return Err(EUSERS);
        }
        return Ok(());
    };
    shared.exports.allow(s.id, hdr.rpid);
    // A shadow that cannot start is reported by the call that follows (and a shadow
    // without attributes runs as nobody).
    if let Ok(shadow) = shared.shadow_for(s, hdr.rpid) {
        let _ = shadow.push_attrs(&rule.map(attrs));
    }
    Ok(())
}

/// `CLIENT_THREAD`: a thread of process `hdr.rpid` started or exited; its shadow, if it
/// has one, gets ready to run that thread's calls on a thread of its own, or ends that
/// thread. Not answered.
pub(crate) fn thread_event(shared: &Shared, s: &Session, hdr: &Header, msg: &ThreadMsg) {
    if let Some(shadow) = shared.find_process(s.id, hdr.rpid) {
        if let Err(e) = shadow.thread_event(msg.tid, msg.event == THREAD_STARTED) {
            pr_notice!(
                "session {} pid {}: cannot record thread {} ({:?})\n",
                s.id,
                hdr.rpid,
                msg.tid,
                e
            );
        }
    }
}

/// `-errno`, a failed call's return value (exact: a `u32` negated fits an `i64`).
pub(crate) fn neg_errno(errno: u32) -> i64 {
    0i64.saturating_sub(i64::from(errno))
}

/// Answers request `hdr` with `ret` (`0` or `-errno`) and no output.
fn reply_bare(s: &Session, hdr: &Header, ret: i64) {
    s.reply(hdr.rpid, hdr.seq, &SyscallReply::bare(ret), 0);
}
