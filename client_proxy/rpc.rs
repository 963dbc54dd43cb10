// SPDX-License-Identifier: GPL-2.0

//! Remote calls: a tethered task sends one `CLIENT_SYSTEM_CALL` and sleeps until the
//! connection worker hands it the `SERVER_REPLY` with the same sequence number.
//!
//! Lock order: `Conn::tx` → `Shared::events`, `Conn::tx` → `Shared::log` (while flushing
//! fork and exit events); `Shared::link`, `Shared::calls` and `Shared::log` are otherwise
//! never held together; `Conn::tx` is
//! taken alone.

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::atomic::{Atomic, Relaxed, Release},
    sync::Arc,
};

use crate::client::Shared;
use crate::fs;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::process::SignalMsg;
use crate::proto::syscall::{SyscallReply, SyscallReq, DIR_OUT};
use crate::transport::Sender;

static NEXT_SEQ: Atomic<u64> = Atomic::new(1);

/// A fresh sequence number (frames of every kind share one space).
pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Relaxed)
}

/// A process fork or exit the server has to hear about before the next call.
#[derive(Clone, Copy)]
pub(crate) enum ProcEvent {
    Fork { parent: u32, child: u32 },
    Exit { tgid: u32 },
}

/// Called from the fork and exit hooks (`hook.c`, atomic context): queues the event.
#[no_mangle]
extern "C" fn tether_process_event(parent: bindings::pid_t, tgid: bindings::pid_t, exit: bool) {
    let Some(shared) = fs::client() else { return };
    let ev = if exit {
        ProcEvent::Exit { tgid: tgid as u32 }
    } else {
        ProcEvent::Fork {
            parent: parent as u32,
            child: tgid as u32,
        }
    };
    let mut events = shared.events.lock();
    // While the server is unreachable the queue must not grow without bound; the server
    // drops every shadow of a session that ends anyway.
    if events.len() >= MAX_EVENTS || events.push(ev, GFP_ATOMIC).is_err() {
        pr_notice!(
            "cannot queue the fork or exit of pid {} for the server\n",
            tgid
        );
    }
}

/// Most fork and exit events kept while they cannot be sent.
const MAX_EVENTS: usize = 4096;

/// Sends the queued fork and exit events, in order, on `tx` (whose lock the caller holds,
/// so that they precede the caller's own frame).
pub(crate) fn flush_events(shared: &Shared, tx: &mut Sender, session: u32) -> Result {
    let events = core::mem::take(&mut *shared.events.lock());
    if !events.is_empty() {
        let mut log = shared.log.lock();
        for ev in events.iter() {
            let _ = match *ev {
                ProcEvent::Fork { parent, child } => log.forked(parent, child),
                ProcEvent::Exit { tgid } => {
                    log.exited(tgid);
                    Ok(())
                }
            };
        }
    }
    for ev in events.iter() {
        let (kind, rpid, body) = match *ev {
            ProcEvent::Fork { parent, child } => (Kind::ClientFork, parent, child.to_le_bytes()),
            ProcEvent::Exit { tgid } => (Kind::ClientExit, tgid, [0; 4]),
        };
        let hdr = Header {
            session,
            rpid,
            seq: next_seq(),
            ..Header::new(kind, 0)
        };
        let body: &[u8] = if kind == Kind::ClientFork { &body } else { &[] };
        tx.send(hdr, body)?;
    }
    Ok(())
}

/// A remote call waiting for its reply.
pub(crate) struct Pending {
    seq: u64,
    /// The reply body, or why there will be none.
    reply: Option<Result<KVVec<u8>>>,
    /// Signals the server raised for the call (`SERVER_SIGNAL`): bit `n` for signal `n`.
    signals: u32,
    /// Set (after `reply`) when the caller may take the reply; read without the lock.
    done: Arc<Atomic<i32>>,
}

extern "C" {
    fn tether_call_wake();
    fn tether_call_wait(done: *const i32) -> kernel::ffi::c_int;
}

impl Pending {
    /// Stores the outcome and lets the caller go on (`Shared::calls` held).
    fn finish(&mut self, reply: Result<KVVec<u8>>) {
        self.reply = Some(reply);
        self.done.store(1, Release);
    }
}

fn wake_callers() {
    // SAFETY: No preconditions.
    unsafe { tether_call_wake() };
}

/// Hands a reply to the task waiting for `seq` (connection worker).
pub(crate) fn deliver(shared: &Shared, seq: u64, body: &[u8]) {
    let mut copy = KVVec::new();
    let reply = copy
        .extend_from_slice(body, GFP_KERNEL)
        .map(|()| copy)
        .map_err(|_| ENOMEM);
    let mut calls = shared.calls.lock();
    if let Some(p) = calls.iter_mut().find(|p| p.seq == seq) {
        p.finish(reply);
        drop(calls);
        wake_callers();
    }
}

/// Records a `SERVER_SIGNAL` for the call waiting for `seq` (connection worker): its
/// caller raises the signal once it has the reply ([`call`]). A body that is not a
/// forwardable signal is logged and ignored; so is a signal for a call nobody waits for
/// any more (its caller was killed).
pub(crate) fn signal(shared: &Shared, hdr: &Header, body: &[u8]) {
    let signo = match SignalMsg::decode(body) {
        Ok(m) => m.signo,
        Err(e) => {
            pr_notice!(
                "server sent a bad SERVER_SIGNAL for pid {} (seq {}, {} bytes): {}; ignored\n",
                hdr.rpid,
                hdr.seq,
                body.len(),
                e.name()
            );
            return;
        }
    };
    let mut calls = shared.calls.lock();
    if let Some(p) = calls
        .iter_mut()
        .find(|p| p.seq == hdr.seq && p.reply.is_none())
    {
        p.signals |= 1 << signo;
    }
}

extern "C" {
    fn tether_send_sig(sig: kernel::ffi::c_int);
}

/// Raises in the calling thread the signals (bit `n` for signal `n`) the server raised for
/// its call, as the kernel raises them for a local call.
fn raise(signals: u32) {
    for signo in (1..32).filter(|n| signals & (1 << n) != 0) {
        // SAFETY: No preconditions; `signo` is a valid signal number.
        unsafe { tether_send_sig(signo) };
    }
}

/// Sends a frame of `kind` about process `rpid` that nobody answers, after the queued
/// fork and exit events; returns the session it went to.
pub(crate) fn notify(shared: &Shared, kind: Kind, rpid: u32, body: &[u8]) -> Result<u32> {
    let (tx, session) = shared.link.lock().clone().ok_or(EIO)?;
    let hdr = Header {
        session,
        rpid,
        seq: next_seq(),
        ..Header::new(kind, 0)
    };
    let mut tx = tx.lock();
    flush_events(shared, &mut tx, session)?;
    tx.send(hdr, body)?;
    Ok(session)
}

/// Fails every waiting call with `err` (the connection went down).
pub(crate) fn fail_all(shared: &Shared, err: Error) {
    let mut calls = shared.calls.lock();
    for p in calls.iter_mut().filter(|p| p.reply.is_none()) {
        p.finish(Err(err));
    }
    drop(calls);
    wake_callers();
}

/// Runs `req` in the shadow of process `rpid`: `ins` are the input buffers and `outs` the
/// output buffers, in the order of `req.bufs()`. Returns the call's return value.
pub(crate) fn call(
    shared: &Shared,
    rpid: u32,
    req: &SyscallReq,
    ins: &[&[u8]],
    outs: &mut [&mut [u8]],
) -> Result<i64> {
    let (tx, session) = shared.link.lock().clone().ok_or(EIO)?;
    let mut body = KVVec::new();
    body.resize(SyscallReq::head_len(req.bufs().len()), 0, GFP_KERNEL)?;
    req.encode(&mut body).map_err(|_| EINVAL)?;
    for b in ins {
        body.extend_from_slice(b, GFP_KERNEL)?;
    }
    let seq = next_seq();
    let done = Arc::new(Atomic::new(0), GFP_KERNEL)?;
    let pending = Pending {
        seq,
        reply: None,
        signals: 0,
        done: done.clone(),
    };
    shared.calls.lock().push(pending, GFP_KERNEL)?;
    let hdr = Header {
        session,
        rpid,
        seq,
        ..Header::new(Kind::ClientSystemCall, 0)
    };
    let sent = {
        let mut tx = tx.lock();
        flush_events(shared, &mut tx, session).and_then(|()| tx.send(hdr, &body))
    };
    // Killable: SIGKILL ends the wait (the process is going away, so nobody sees the
    // outcome); any other signal waits for the reply, so no call fails spuriously.
    // SAFETY: `done` lives until the end of this function.
    let killed = sent.is_ok() && unsafe { tether_call_wait(done.as_ptr()) } != 0;
    let (reply, signals) = {
        let mut calls = shared.calls.lock();
        let i = calls.iter().position(|p| p.seq == seq).ok_or(EIO)?;
        let pending = calls.remove(i).map_err(|_| EIO)?;
        sent?;
        if killed {
            return Err(EINTR);
        }
        (pending.reply.ok_or(EIO)??, pending.signals)
    };
    // The signals the call raised on the server are raised here, before it returns.
    raise(signals);
    let (rep, mut data) = SyscallReply::decode(&reply).map_err(|_| EPROTO)?;
    shared.log.lock().called(rpid);
    let out_dirs = req.bufs().iter().filter(|b| b.dir & DIR_OUT != 0).count();
    if rep.nbufs as usize != out_dirs || outs.len() != out_dirs {
        return Err(EPROTO);
    }
    for (out, &len) in outs.iter_mut().zip(rep.lens.iter()) {
        let len = len as usize;
        let (head, rest) = data.split_at_checked(len).ok_or(EPROTO)?;
        out.get_mut(..len).ok_or(EPROTO)?.copy_from_slice(head);
        data = rest;
    }
    Ok(rep.ret)
}
