// SPDX-License-Identifier: GPL-2.0

//! Remote calls: a tethered task sends one `CLIENT_SYSTEM_CALL` and sleeps until the
//! connection worker hands it the `SERVER_REPLY` with the same sequence number.
//!
//! A call outlives its connection: while the server is unreachable calls wait (killable),
//! queued; when the worker is connected again (after replay, `replay.rs`) it sends every
//! call without a reply again, with its original sequence number ([`publish_link`]).
//!
//! A call that makes earlier writes durable (`retain.rs`) frees their retained data when
//! it succeeds. A call whose server restarted while it was out (its reply was lost with the
//! server) ran again there: an `EEXIST` of a `mkdir`, or an `ENOENT` of an `unlink` or a
//! `rename`, then only says that its first run had reached the disk, and is success.
//!
//! Lock order: `Shared::calls` → `Shared::link`; `Conn::tx` → `Shared::events`,
//! `Conn::tx` → `Shared::log` (while flushing fork and exit events);
//! `Shared::log` → `Shared::retained`.

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::atomic::{Acquire, Atomic, Relaxed, Release},
    sync::{aref::ARef, Arc, Mutex},
    task::Task,
    time::{Instant, Monotonic},
};

use crate::latency::Stage;
use crate::link::attrs;
use crate::proto::calls::{self, Effect};
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::process::{SignalMsg, ThreadMsg, THREAD_EXITED, THREAD_STARTED};
use crate::proto::syscall::{BufDesc, SyscallReply, SyscallReq, DIR_OUT, REPLY_SYNCED_ALL};
use crate::proto::sysno;
use crate::state::Shared;
use crate::syscalls::shmap;
use crate::transport::Sender;

static NEXT_SEQ: Atomic<u64> = Atomic::new(1);

/// A fresh sequence number (frames of every kind share one space).
pub(crate) fn next_seq() -> u64 {
    NEXT_SEQ.fetch_add(1, Relaxed)
}

/// A process fork or exit the server has to hear about before the next call.
#[derive(Clone, Copy)]
pub(crate) enum ProcEvent {
    Fork {
        parent: u32,
        child: u32,
    },
    Exit {
        tgid: u32,
    },
    /// Thread `tid` of process `tgid` started, or exited without ending its process.
    Thread {
        tgid: u32,
        tid: u32,
        started: bool,
    },
}

/// Called from the fork and exit hooks (`hook.c`, atomic context): queues the event.
#[no_mangle]
extern "C" fn tether_process_event(parent: bindings::pid_t, tgid: bindings::pid_t, exit: bool) {
    let Some(shared) = crate::state::client() else {
        return;
    };
    // Pids are positive.
    let pid = |p: bindings::pid_t| u32::try_from(p).unwrap_or_default();
    let ev = if exit {
        // Its shared mappings are written back first (by the exit work, which then queues
        // the exit): the shadow must still be there to write them.
        if shmap::any(&shared) {
            let mut exits = shared.exits_to_write_back.lock();
            if exits.len() < MAX_EVENTS && exits.push(pid(tgid), GFP_ATOMIC).is_ok() {
                return;
            }
        }
        ProcEvent::Exit { tgid: pid(tgid) }
    } else {
        ProcEvent::Fork {
            parent: pid(parent),
            child: pid(tgid),
        }
    };
    if !queue(&mut shared.events.lock(), ev) {
        pr_notice!(
            "cannot queue the fork or exit of pid {} for the server\n",
            tgid
        );
    }
}

/// Queues `ev` for the server, unless it cancels an event still queued: a process that
/// forked and exits before either reached the server (a shell loop while the server is
/// away) leaves nothing for it, nor does a thread that starts and exits; so an outage does
/// not fill the queue with processes and threads that are gone. While the server is
/// unreachable the queue must still not grow without bound ([`MAX_EVENTS`]): false when it
/// is full (the server drops every shadow of a session that ends anyway).
fn queue(events: &mut KVec<ProcEvent>, ev: ProcEvent) -> bool {
    let is_fork_of =
        |e: &ProcEvent, pid: u32| matches!(e, ProcEvent::Fork { child, .. } if *child == pid);
    let is_thread_of =
        |e: &ProcEvent, pid: u32| matches!(e, ProcEvent::Thread { tgid, .. } if *tgid == pid);
    match ev {
        ProcEvent::Exit { tgid } => {
            // Its fork, unless a child of its own was queued after it (that fork needs it).
            let fork = events.iter().rposition(|e| is_fork_of(e, tgid));
            if let Some(at) = fork.filter(|&at| {
                !events
                    .iter()
                    .skip(at.saturating_add(1))
                    .any(|e| matches!(e, ProcEvent::Fork { parent, .. } if *parent == tgid))
            }) {
                // Its thread events after its fork go with it (before: an earlier process
                // with the same pid).
                let mut i = events.len();
                while i > at {
                    i = i.saturating_sub(1);
                    if i > at && events.get(i).is_some_and(|e| is_thread_of(e, tgid)) {
                        let _ = events.remove(i);
                    }
                }
                let _ = events.remove(at);
                return true;
            }
        }
        ProcEvent::Thread {
            tgid,
            tid,
            started: false,
        } => {
            let start = events.iter().rposition(|e| {
                matches!(e, ProcEvent::Thread { tgid: g, tid: t, started: true } if *g == tgid && *t == tid)
            });
            if let Some(at) = start {
                let _ = events.remove(at);
                return true;
            }
        }
        _ => (),
    }
    events.len() < MAX_EVENTS && events.push(ev, GFP_ATOMIC).is_ok()
}

/// Called from the fork and exit hooks (`hook.c`, atomic context) for a new thread, or one
/// that exits without ending its process: queues its start or exit for the server, which
/// runs the calls of each thread of a process on a shadow thread of its own
/// (`CLIENT_THREAD_CALL`).
#[no_mangle]
extern "C" fn tether_thread_event(tgid: bindings::pid_t, tid: bindings::pid_t, started: bool) {
    let Some(shared) = crate::state::client() else {
        return;
    };
    let pid = |p: bindings::pid_t| u32::try_from(p).unwrap_or_default();
    let ev = ProcEvent::Thread {
        tgid: pid(tgid),
        tid: pid(tid),
        started,
    };
    if !queue(&mut shared.events.lock(), ev) {
        pr_notice!(
            "cannot queue the start or exit of thread {} for the server\n",
            tid
        );
    }
}

/// Whether the server runs the calls of a process's threads at once (`WELCOME.kinds`).
pub(crate) fn server_has_threads(shared: &Shared) -> bool {
    shared.server_kinds.load(Relaxed) & Kind::ClientThreadCall.bit() != 0
}

/// Sends the queued fork and exit events on the current link, if there is one (the work
/// item the fork and exit hooks schedule, `hook.c`): a new process's shadow forks on the
/// server while the process still runs locally, so its first call need not wait for it.
#[no_mangle]
extern "C" fn tether_flush_events() {
    let Some(shared) = crate::state::client() else {
        return;
    };
    let exits = core::mem::take(&mut *shared.exits_to_write_back.lock());
    for &tgid in exits.iter() {
        shmap::process_ended(&shared, tgid);
        if !queue(&mut shared.events.lock(), ProcEvent::Exit { tgid }) {
            pr_notice!("cannot queue the exit of pid {} for the server\n", tgid);
        }
    }
    let link = shared.link.lock().clone();
    if let Some((tx, session)) = link {
        // A failed send is the connection's end: the worker notices, and the next
        // connection's calls send what is still queued.
        let _ = flush_events(&shared, &mut tx.lock(), session);
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
            match *ev {
                ProcEvent::Fork { parent, child } => {
                    if let Err(e) = log.forked(parent, child) {
                        pr_notice!(
                            "syscall log: cannot record the fork of pid {} from {} ({:?}): a replay does not restore it\n",
                            child,
                            parent,
                            e
                        );
                    }
                }
                ProcEvent::Exit { tgid } => log.exited(tgid),
                ProcEvent::Thread { .. } => (),
            }
        }
    }
    let threads = server_has_threads(shared);
    for ev in events.iter() {
        let mut buf = [0u8; ThreadMsg::LEN];
        let (kind, rpid, len) = match *ev {
            ProcEvent::Fork { parent, child } => {
                buf[..4].copy_from_slice(&child.to_le_bytes());
                (Kind::ClientFork, parent, 4)
            }
            ProcEvent::Exit { tgid } => (Kind::ClientExit, tgid, 0),
            ProcEvent::Thread { .. } if !threads => continue,
            ProcEvent::Thread { tgid, tid, started } => {
                let event = if started {
                    THREAD_STARTED
                } else {
                    THREAD_EXITED
                };
                let len = ThreadMsg { tid, event }
                    .encode(&mut buf)
                    .map_err(|_| EINVAL)?;
                (Kind::ClientThread, tgid, len)
            }
        };
        let hdr = Header {
            session,
            rpid,
            seq: next_seq(),
            ..Header::new(kind, 0)
        };
        tx.send(hdr, buf.get(..len).unwrap_or_default())?;
    }
    Ok(())
}

/// A remote call waiting for its reply.
pub(crate) struct Pending {
    seq: u64,
    /// Whether it went out on the current connection.
    sent: bool,
    /// The reply body, or why there will be none.
    reply: Option<Result<KVVec<u8>>>,
    /// Signals the server raised for the call (`SERVER_SIGNAL`): bit `n` for signal `n`.
    signals: u32,
    /// When the connection worker received the reply.
    received: Option<Instant<Monotonic>>,
    /// [`DONE`] (after `reply`) when the caller may take the reply, [`RESEND`] when it
    /// must send the call again; read without the lock.
    done: Arc<Atomic<i32>>,
    /// The task waiting for it: woken alone when `done` changes (no wake-all).
    waiter: ARef<Task>,
}

/// Values of [`Pending::done`] besides 0 (waiting).
const DONE: i32 = 1;
const RESEND: i32 = 2;

extern "C" {
    fn tether_call_wait(done: *const i32) -> kernel::ffi::c_int;
}

impl Pending {
    /// Stores the outcome and lets the caller go on (`Shared::calls` held).
    fn finish(&mut self, reply: Result<KVVec<u8>>) {
        self.reply = Some(reply);
        self.set_done(DONE);
    }

    /// Sets `done` and wakes the waiting task (`tether_call_wait` checks `done` after it
    /// sets its state, and `wake_up_process` orders the store before the wake-up).
    fn set_done(&self, v: i32) {
        self.done.store(v, Release);
        self.waiter.wake_up();
    }
}

/// Hands a reply to the task waiting for `seq` (connection worker).
pub(crate) fn deliver(shared: &Shared, seq: u64, body: &[u8]) {
    let received = Instant::<Monotonic>::now();
    let mut copy = KVVec::new();
    let reply = copy
        .extend_from_slice(body, GFP_KERNEL)
        .map(|()| copy)
        .map_err(|_| ENOMEM);
    let mut calls = shared.calls.lock();
    if let Some(p) = calls.iter_mut().find(|p| p.seq == seq) {
        p.received = Some(received);
        p.finish(reply);
    }
}

/// Records a `SERVER_SIGNAL` for the call waiting for `seq` (connection worker): its
/// caller raises the signal once it has the reply ([`Ticket::wait`]). A body that is not a
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
        p.signals |= 1u32.checked_shl(signo).unwrap_or(0);
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

/// Fails every waiting call with `err` (the module is going away).
pub(crate) fn fail_all(shared: &Shared, err: Error) {
    let mut calls = shared.calls.lock();
    for p in calls.iter_mut().filter(|p| p.reply.is_none()) {
        p.finish(Err(err));
    }
}

/// A remote call sent and not yet answered (see [`submit`]). Dropping it forgets the call:
/// the server still runs it, its reply is discarded.
pub(crate) struct Ticket<'a> {
    shared: &'a Shared,
    rpid: u32,
    /// The calling thread, when it is not its process's leader and the server runs a
    /// process's threads at once (0: the process's main lane).
    lane: u32,
    seq: u64,
    /// The request, to send it again on a new connection.
    body: KVVec<u8>,
    /// How many output buffers the request has (and the reply must have).
    nouts: usize,
    /// Set when the reply (or the call's failure) is there; see [`Pending::done`].
    done: Arc<Atomic<i32>>,
    nr: u32,
    /// What the call makes durable once it succeeded, and the retention stamp when it was
    /// submitted.
    durable: Option<(Durable, u64)>,
    /// `Shared::restarts` when the call was first sent (`None`: not sent yet).
    restarts: Option<u64>,
    /// When it was submitted.
    since: Instant<Monotonic>,
    /// When it was sent last (when submitted, until it is sent).
    sent: Instant<Monotonic>,
}

/// A remote call's answer: its return value and its output buffers.
pub(crate) struct Reply {
    pub(crate) ret: i64,
    body: KVVec<u8>,
    rep: SyscallReply,
    /// Where the output data starts in `body`.
    data: usize,
    /// The call's seq and request (a write's data, which may have to be retained).
    pub(crate) seq: u64,
    pub(crate) req: KVVec<u8>,
    /// Its server restarted while it was out: it ran again on the new one.
    pub(crate) rerun: bool,
}

impl Reply {
    /// The output buffers, in the order of the request's.
    pub(crate) fn outs(&self) -> impl Iterator<Item = &[u8]> {
        let mut data = self.body.get(self.data..).unwrap_or(&[]);
        // `SyscallReply::decode` checked that the lengths add up to the data.
        self.rep
            .lens
            .iter()
            .take(usize::try_from(self.rep.nbufs).unwrap_or(0))
            .map(move |&l| {
                let l = usize::try_from(l).unwrap_or(usize::MAX);
                let (head, rest) = data.split_at_checked(l).unwrap_or((data, &[]));
                data = rest;
                head
            })
    }
}

/// Sends `req` to the shadow of process `rpid` (`ins`: its input buffers, in the order of
/// `req.bufs()`) without waiting: several calls of one task may be in flight at once; the
/// shadow runs them in the order they were sent.
pub(crate) fn submit<'a>(
    shared: &'a Shared,
    rpid: u32,
    req: &SyscallReq,
    ins: &[&[u8]],
) -> Result<Ticket<'a>> {
    let since = Instant::<Monotonic>::now();
    let mut body = KVVec::new();
    body.resize(SyscallReq::head_len(req.bufs().len()), 0, GFP_KERNEL)?;
    req.encode(&mut body).map_err(|_| EINVAL)?;
    for b in ins {
        body.extend_from_slice(b, GFP_KERNEL)?;
    }
    let seq = next_seq();
    let done = Arc::new(Atomic::new(0), GFP_KERNEL)?;
    let durable = durable(req.nr, &req.args, ins.get(1).copied())
        .map(|d| (d, shared.retained.lock().stamp()));
    let link = {
        // With the link read under `calls`, a call is either sent here or by
        // `publish_link`, never by both and never by neither.
        let mut calls = shared.calls.lock();
        let link = shared.link.lock().clone();
        calls.push(
            Pending {
                seq,
                sent: link.is_some(),
                reply: None,
                signals: 0,
                received: None,
                done: done.clone(),
                waiter: ARef::from(&**kernel::current!()),
            },
            GFP_KERNEL,
        )?;
        link
    };
    let restarts = link.is_some().then(|| shared.restarts.load(Relaxed));
    let mut sent = since;
    let lane = lane(shared, rpid);
    if let Some((tx, session)) = link {
        // A failed send is the connection's end: the worker notices and the call goes
        // out again on the next connection.
        let _ = send_call(shared, &mut tx.lock(), session, (rpid, lane), seq, &body);
        sent = Instant::now();
        shared.latency.stage(Stage::Send, since, sent);
    }
    Ok(Ticket {
        shared,
        rpid,
        lane,
        seq,
        body,
        nouts: req.bufs().iter().filter(|b| b.dir & DIR_OUT != 0).count(),
        done,
        nr: req.nr,
        durable,
        restarts,
        since,
        sent,
    })
}

/// The lane of a call of process `rpid` made by the calling task: its thread id when it
/// is one of `rpid`'s threads but not its leader and the server runs threads at once, else
/// 0 (the process's main lane).
fn lane(shared: &Shared, rpid: u32) -> u32 {
    let task = kernel::current!();
    let (pid, tgid) = (task.pid(), task.tgid());
    if i64::from(rpid) != i64::from(tgid) || pid == tgid || !server_has_threads(shared) {
        return 0;
    }
    u32::try_from(pid).unwrap_or_default()
}

/// Sends one `CLIENT_SYSTEM_CALL` of process `rpid` (`CLIENT_THREAD_CALL` when `lane`, its
/// calling thread, is not 0), after the queued fork and exit events and, for the calling
/// process's own calls, its identity and file-size limit when its shadow does not have
/// them yet (`attrs.rs`).
fn send_call(
    shared: &Shared,
    tx: &mut Sender,
    session: u32,
    (rpid, lane): (u32, u32),
    seq: u64,
    body: &[u8],
) -> Result {
    let kind = if lane == 0 {
        Kind::ClientSystemCall
    } else {
        Kind::ClientThreadCall
    };
    let hdr = Header {
        session,
        rpid,
        seq,
        ..Header::new(kind, 0)
    };
    flush_events(shared, tx, session)?;
    if i64::from(rpid) == i64::from(kernel::current!().tgid()) {
        attrs::sync(shared, tx, session, rpid)?;
    }
    if lane == 0 {
        tx.send(hdr, body)
    } else {
        tx.send_prefixed(hdr, &lane.to_le_bytes(), body)
    }
}

/// The connection is down: calls in flight will be sent again on the next one.
pub(crate) fn withdraw_link(shared: &Shared) {
    let mut calls = shared.calls.lock();
    *shared.link.lock() = None;
    for p in calls.iter_mut() {
        p.sent = false;
    }
}

/// Makes `tx` the link for remote calls, and has every call that has no reply and did not
/// go out on it sent again by its task, with its original sequence number (the server
/// answers a call it has already run from its reply cache).
pub(crate) fn publish_link(shared: &Shared, tx: &Arc<Mutex<Sender>>, session: u32) {
    let mut calls = shared.calls.lock();
    *shared.link.lock() = Some((tx.clone(), session));
    for p in calls.iter_mut().filter(|p| !p.sent && p.reply.is_none()) {
        p.set_done(RESEND);
    }
}

impl Ticket<'_> {
    /// Takes this call's entry out of the waiting list.
    fn take(&self) -> Option<Pending> {
        let mut calls = self.shared.calls.lock();
        let i = calls.iter().position(|p| p.seq == self.seq)?;
        calls.remove(i).ok()
    }

    /// Sends the call again on the current link, if there is one (else the next
    /// [`publish_link`] asks again).
    fn resend(&mut self) {
        let link = {
            let mut calls = self.shared.calls.lock();
            let Some(p) = calls.iter_mut().find(|p| p.seq == self.seq) else {
                return;
            };
            if p.reply.is_some() {
                return;
            }
            let link = self.shared.link.lock().clone();
            p.sent = link.is_some();
            self.done.store(0, Release);
            link
        };
        if let Some((tx, session)) = link {
            let now = self.shared.restarts.load(Relaxed);
            self.restarts.get_or_insert(now);
            let _ = send_call(
                self.shared,
                &mut tx.lock(),
                session,
                (self.rpid, self.lane),
                self.seq,
                &self.body,
            );
            self.sent = Instant::now();
        }
    }

    /// Waits for the reply.
    ///
    /// Killable: SIGKILL ends the wait (the process is going away, so nobody sees the
    /// outcome); any other signal waits for the reply, so no call fails spuriously.
    pub(crate) fn wait(mut self) -> Result<Reply> {
        loop {
            // SAFETY: `done` lives until the end of this function.
            if unsafe { tether_call_wait(self.done.as_ptr()) } != 0 {
                return Err(EINTR);
            }
            if self.done.load(Acquire) != RESEND {
                break;
            }
            self.resend();
        }
        let pending = self.take().ok_or(EIO)?;
        if let Some(received) = pending.received {
            let latency = &self.shared.latency;
            latency.stage(Stage::Wait, self.sent, received);
            latency.stage(Stage::Wake, received, Instant::now());
        }
        // The signals the call raised on the server are raised here, before it returns.
        raise(pending.signals);
        let body = pending.reply.ok_or(EIO)??;
        let (rep, data) = SyscallReply::decode(&body).map_err(|_| EPROTO)?;
        if usize::try_from(rep.nbufs).ok() != Some(self.nouts) {
            return Err(EPROTO);
        }
        // `data` is the tail of `body`.
        let data = body.len().checked_sub(data.len()).ok_or(EPROTO)?;
        let ret = self.settle(rep.ret, rep.flags);
        let rerun = self.rerun();
        let before = self.shared.log.lock().called(self.rpid);
        self.shared.latency.record(self.nr, self.since, before == 0);
        Ok(Reply {
            ret,
            body,
            rep,
            data,
            seq: self.seq,
            req: core::mem::replace(&mut self.body, KVVec::new()),
            rerun,
        })
    }

    /// Whether the call's server restarted since the call first went out.
    fn rerun(&self) -> bool {
        self.restarts
            .is_some_and(|r| r != self.shared.restarts.load(Relaxed))
    }

    /// The call's result `ret` (reply flags `flags`), after what its success means for the
    /// retained writes and, when its server restarted meanwhile, for a second run of it (see
    /// the module doc).
    fn settle(&self, ret: i64, flags: u32) -> i64 {
        const EEXIST: i64 = -(bindings::EEXIST as i64); // a small constant: no overflow
        const ENOENT: i64 = -(bindings::ENOENT as i64); // a small constant: no overflow
        let ret = match (self.nr, ret) {
            _ if !self.rerun() => ret,
            (
                sysno::MKDIR
                | sysno::MKDIRAT
                | sysno::LINK
                | sysno::LINKAT
                | sysno::SYMLINK
                | sysno::SYMLINKAT,
                EEXIST,
            ) => 0,
            (
                sysno::RMDIR
                | sysno::UNLINK
                | sysno::UNLINKAT
                | sysno::RENAME
                | sysno::RENAMEAT
                | sysno::RENAMEAT2,
                ENOENT,
            ) => 0,
            _ => ret,
        };
        let synced_all = flags & REPLY_SYNCED_ALL != 0;
        match self.durable {
            Some((Durable::All, stamp)) if ret >= 0 => self.shared.retained.lock().committed(stamp),
            Some((Durable::Commit, stamp)) if ret >= 0 && synced_all => {
                self.shared.retained.lock().committed(stamp)
            }
            Some((Durable::File(sfd), stamp)) if ret >= 0 => {
                let log = self.shared.log.lock();
                if let Some(path) = log.path(self.rpid, sfd) {
                    self.shared.retained.lock().synced(path, stamp);
                }
            }
            _ => (),
        }
        ret
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // Already gone when waited for; otherwise its reply is not wanted any more.
        drop(self.take());
    }
}

/// Runs `req` in the shadow of process `rpid` and waits for it: `ins` are the input
/// buffers and `outs` the output buffers, in the order of `req.bufs()`. Returns the call's
/// return value.
pub(crate) fn call(
    shared: &Shared,
    rpid: u32,
    req: &SyscallReq,
    ins: &[&[u8]],
    outs: &mut [&mut [u8]],
) -> Result<i64> {
    let reply = submit(shared, rpid, req, ins)?.wait()?;
    if usize::try_from(reply.rep.nbufs).ok() != Some(outs.len()) {
        return Err(EPROTO);
    }
    for (out, data) in outs.iter_mut().zip(reply.outs()) {
        out.get_mut(..data.len())
            .ok_or(EPROTO)?
            .copy_from_slice(data);
    }
    Ok(reply.ret)
}

/// A request for syscall `nr` with arguments `args` and buffers `bufs` (at most
/// `MAX_BUFS`: the rest are dropped).
pub(crate) fn request(nr: u32, args: [u64; 6], bufs: &[BufDesc]) -> SyscallReq {
    let mut req = SyscallReq {
        nr,
        args,
        ..Default::default()
    };
    for (slot, b) in req.bufs.iter_mut().zip(bufs) {
        *slot = *b;
        req.nbufs = req.nbufs.saturating_add(1);
    }
    req
}

/// What a successful call makes durable on the server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durable {
    /// Every write answered before it (`syncfs`).
    All,
    /// What the committed call changed; every write answered before it when its reply
    /// says [`REPLY_SYNCED_ALL`]. The writes retained for a name it removed or moved are
    /// dropped by its handler (`syscalls/names.rs`).
    Commit,
    /// The writes to the file open as this server fd (`fsync`, `fdatasync`).
    File(i32),
}

/// What call `nr` with `args` (and, for `openat2`, its `struct open_how` in `how`) makes
/// durable once it succeeded, as the call table says (`proto::calls`, the table the
/// server's shadows commit by).
pub(crate) fn durable(nr: u32, args: &[u64; 6], how: Option<&[u8]>) -> Option<Durable> {
    match calls::effect(calls::spec(nr)?, args, how) {
        Effect::None => None,
        Effect::Commits | Effect::CommitsIfCreates => Some(Durable::Commit),
        Effect::SyncsAll => Some(Durable::All),
        Effect::SyncsFile => i32::try_from(args[0]).ok().map(Durable::File),
    }
}
