// SPDX-License-Identifier: GPL-2.0

//! Shadow processes: for every client process the server runs a real process, started from
//! the `tether-shadow` binary, that makes the client's system calls with the standard entry
//! points. Shadows talk to this module through the misc device `/dev/tether_shadow`
//! (`proto::device`: the ioctls and their arguments), naming themselves by the random token
//! they were started (or forked) with, which they get in their environment: `NEXT` waits
//! for a request body (already checked against the call table, `proto::calls`), `REPLY`
//! sends the reply body back to the client. A client `fork` reaches the parent's shadow as
//! a `NEXT` with op [`OP_FORK`]: it forks, and the child goes on with the child's token.
//! The first `NEXT` or `REPLY` on an open device file binds it to its token's session: the
//! file (which forked shadows share) serves that session's tokens only.
//!
//! The shadow's identity and file-size limit follow the client process's: a `CLIENT_ATTRS`
//! queues them (mapped by policy) in line with the calls, and `NEXT` applies them in the
//! shadow's own context before it hands over the next call. The shadow blocks the signals
//! the kernel raises for file-system calls (`SIGPIPE`, `SIGXFSZ`), collects them after
//! each call and reports them with `REPLY`; they go to the client as `SERVER_SIGNAL`
//! frames ahead of the reply.
//!
//! A shadow runs the calls of its process's threads at once, on **lanes** (docs/DESIGN.md
//! §2.4, `proto::device`): every request is queued on one, and each thread of the shadow
//! process takes the requests of its own lane with `NEXT`. Lane [`LANE_MAIN`] (the shadow's
//! first thread) runs the leader's calls and forks; when the client process starts its
//! first thread, the main thread is asked (ahead of its calls) to start a spawner, which
//! serves [`LANE_SPAWNER`] and starts a thread for each client thread's first call. A
//! `CLIENT_ATTRS` is queued on every lane; a thread that cannot be started makes the
//! process's calls run on the main lane, in turn.
//!
//! Lock order: `Shared::inner` → `Shadow::inner`; `Session::link` is never taken with
//! `Shadow::inner` held.

use core::fmt;
use kernel::{
    alloc::KVVec,
    fs::File,
    ioctl::{_IOW, _IOWR},
    miscdevice::{MiscDevice, MiscDeviceRegistration},
    new_condvar, new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, Mutex,
    },
    time::{Instant, Monotonic},
    uaccess::{UserPtr, UserSlice},
};

use crate::dispatch::neg_errno;
use crate::faults::Point;
use crate::global::Global;
use crate::latency::Stage;
use crate::proto::device::{
    NextArgs, ReplyArgs, ReplyNextArgs, LANE_MAIN, LANE_SPAWNER, OP_CALL, OP_FORK, OP_LANE_END,
    OP_SPAWNER, OP_THREAD, SHADOW_KEEPER, SHADOW_NEXT, SHADOW_REPLY, SHADOW_REPLY_NEXT,
};
use crate::proto::process::{ProcAttrs, FORWARDED_SIGNALS, REDO_RPID};
use crate::proto::syscall::SyscallReply;
use crate::server::Shared;
use crate::session::Session;

/// The argument structures of the device's ioctls are the protocol crate's.
// SAFETY: Plain integers; any bit pattern is valid.
unsafe impl kernel::transmute::FromBytes for NextArgs {}
// SAFETY: Plain integers without padding (48 bytes: a host test checks the layout).
unsafe impl kernel::transmute::AsBytes for NextArgs {}
// SAFETY: Plain integers; any bit pattern is valid.
unsafe impl kernel::transmute::FromBytes for ReplyArgs {}

// The protocol crate computes the ioctl numbers as the kernel's macros do.
const _: () = assert!(SHADOW_NEXT == _IOWR::<NextArgs>(b'T' as u32, 2));
const _: () = assert!(SHADOW_REPLY == _IOW::<ReplyArgs>(b'T' as u32, 3));
const _: () = assert!(SHADOW_KEEPER == _IOW::<u64>(b'T' as u32, 4));
const _: () = assert!(SHADOW_REPLY_NEXT == _IOWR::<ReplyNextArgs>(b'T' as u32, 5));

/// One queued request.
struct Request {
    /// The shadow thread that takes it: [`LANE_MAIN`], [`LANE_SPAWNER`] or a client thread.
    lane: u32,
    seq: u64,
    /// Its call number (`None`: a fork or identity change), for the fault points.
    nr: Option<u32>,
    what: Work,
    /// When it was queued.
    queued: Instant<Monotonic>,
}

/// What a queued request asks of the shadow.
enum Work {
    /// A `CLIENT_SYSTEM_CALL` body, checked against the call table.
    Call(KVVec<u8>),
    /// The client process forked: the shadow forks too, the child serves `token` as pid
    /// `pid` (when that pid is free).
    Fork { token: u64, pid: u32 },
    /// Not a call: the identity and limit to take on before the next call (mapped).
    Attrs(KBox<ProcAttrs>),
    /// Not a call (main thread): start the spawner thread.
    Spawner,
    /// Not a call (spawner): start a thread for this lane.
    Thread(u32),
    /// Not a call (a lane's thread): its client thread exited.
    LaneEnd,
}

impl Work {
    /// Bytes of request data it holds (counted against `max_queued_kb`).
    fn bytes(&self) -> usize {
        match self {
            Work::Call(body) => body.len(),
            _ => 0,
        }
    }

    /// Whether the client waits for an answer to it (a call or a fork).
    fn answered(&self) -> bool {
        matches!(self, Work::Call(_) | Work::Fork { .. })
    }
}

impl Request {
    /// Work that is not a client's request (no seq, never answered).
    fn internal(lane: u32, what: Work) -> Self {
        Self {
            lane,
            seq: 0,
            nr: None,
            what,
            queued: Instant::now(),
        }
    }
}

/// The fields [`Shadow::inner`] guards.
struct ShadowInner {
    queue: KVec<Request>,
    /// Bytes of the request bodies in `queue`.
    queued_bytes: usize,
    /// Requests handed to the shadow process and not answered yet: seq, call number and
    /// when it was handed over.
    in_flight: KVec<(u64, Option<u32>, Instant<Monotonic>)>,
    /// The shadow process's pid, once it asked for a request.
    pid: i32,
    /// The shadow must exit (client process exited, session or module gone).
    exiting: bool,
    /// The shadow process died: the client process lost its server state, and its calls
    /// fail with `EIO` (rather than reaching a fresh shadow that knows nothing of it).
    dead: bool,
    /// The lanes besides [`LANE_MAIN`] that have a thread (or will, once the spawner
    /// started it): client thread ids.
    lanes: KVec<u32>,
    /// The spawner thread was asked for.
    spawner: bool,
    /// A thread could not be started: every lane's calls go to [`LANE_MAIN`] from now on.
    one_lane: bool,
    /// The identity and limit last queued, for the first call of a new lane.
    attrs: Option<ProcAttrs>,
}

impl ShadowInner {
    /// Asks the main thread for the spawner, ahead of its calls, unless it was asked.
    fn want_spawner(&mut self) -> Result {
        if !self.spawner {
            self.queue.reserve(1, GFP_KERNEL)?;
            self.queue
                .insert_within_capacity(0, Request::internal(LANE_MAIN, Work::Spawner))
                .map_err(|_| ENOMEM)?;
            self.spawner = true;
        }
        Ok(())
    }

    /// The lane that runs a call of client thread `lane`: its own (started now when it has
    /// none and `max_threads` allows one more), else [`LANE_MAIN`].
    fn lane_for(&mut self, lane: u32, max_threads: usize) -> Result<u32> {
        // No client thread has the spawner's id.
        if lane == LANE_SPAWNER {
            return Ok(LANE_MAIN);
        }
        if lane == LANE_MAIN || self.lanes.contains(&lane) {
            return Ok(lane);
        }
        if self.one_lane || self.lanes.len() >= max_threads {
            return Ok(LANE_MAIN);
        }
        self.want_spawner()?;
        self.queue.push(
            Request::internal(LANE_SPAWNER, Work::Thread(lane)),
            GFP_KERNEL,
        )?;
        if let Some(a) = self.attrs {
            let attrs = KBox::new(a, GFP_KERNEL)?;
            self.queue
                .push(Request::internal(lane, Work::Attrs(attrs)), GFP_KERNEL)?;
        }
        self.lanes.push(lane, GFP_KERNEL)?;
        Ok(lane)
    }

    /// Lane `lane`'s thread could not be started ([`LANE_SPAWNER`]: the spawner): its
    /// calls, and from now on every lane's, go to [`LANE_MAIN`].
    fn lane_failed(&mut self, lane: u32) {
        self.one_lane = true;
        let gone = |r: &Request| r.lane == lane || (lane == LANE_SPAWNER && r.lane != LANE_MAIN);
        // What is not a call goes: their identity changes are in the main lane's queue
        // too, in order; there are no threads to start or end.
        self.queue.retain(|r| !gone(r) || r.what.answered());
        for r in self.queue.iter_mut().filter(|r| gone(r)) {
            r.lane = LANE_MAIN;
        }
        if lane == LANE_SPAWNER {
            self.lanes.clear();
        } else {
            self.lanes.retain(|l| *l != lane);
        }
    }
}

/// The server side of one client process.
#[pin_data]
pub(crate) struct Shadow {
    pub(crate) session: u32,
    pub(crate) rpid: u32,
    /// Identifies the shadow to the process started for it.
    pub(crate) token: u64,
    /// The session, for replies (it outlives a lost connection).
    link: Arc<Session>,
    /// When the shadow was created.
    started: Instant<Monotonic>,
    #[pin]
    inner: Mutex<ShadowInner>,
    /// Signalled when a request is queued or the shadow must exit.
    #[pin]
    wake: CondVar,
}

impl Shadow {
    /// A shadow of client process `rpid` of `session`, not started yet.
    pub(crate) fn new(link: Arc<Session>, rpid: u32, token: u64) -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(Self {
                session: link.id,
                rpid,
                token,
                link,
                started: Instant::now(),
                inner <- new_mutex!(
                    ShadowInner {
                        queue: KVec::new(),
                        queued_bytes: 0,
                        in_flight: KVec::new(),
                        pid: 0,
                        exiting: false,
                        dead: false,
                        lanes: KVec::new(),
                        spawner: false,
                        one_lane: false,
                        attrs: None,
                    },
                    "Shadow::inner"
                ),
                wake <- new_condvar!("Shadow::wake"),
            }),
            GFP_KERNEL,
        )
    }

    /// Queues the request body of call `nr` of client thread `lane` ([`LANE_MAIN`]: the
    /// process's leader), unless the shadow already holds `max_bytes` of queued request
    /// data (`EAGAIN`). A thread's first call asks for a shadow thread of its own (up to
    /// `max_threads`; else it shares the main thread).
    pub(crate) fn push(
        &self,
        seq: u64,
        nr: u32,
        body: &[u8],
        max_bytes: usize,
        (lane, max_threads): (u32, usize),
    ) -> Result {
        let mut copy = KVVec::new();
        copy.extend_from_slice(body, GFP_KERNEL)?;
        let req = Request {
            lane,
            seq,
            nr: Some(nr),
            what: Work::Call(copy),
            queued: Instant::now(),
        };
        self.enqueue(req, max_bytes, max_threads)
    }

    /// Queues a client `fork` (answered by the shadow); the child shadow serves `token`.
    pub(crate) fn push_fork(&self, seq: u64, token: u64, pid: u32) -> Result {
        let req = Request {
            lane: LANE_MAIN,
            seq,
            nr: None,
            what: Work::Fork { token, pid },
            queued: Instant::now(),
        };
        self.enqueue(req, usize::MAX, 0)
    }

    /// Queues a change of identity and file-size limit (already mapped by policy) on every
    /// lane: each thread takes it on after the calls queued before it, before those queued
    /// after.
    pub(crate) fn push_attrs(&self, attrs: &ProcAttrs) -> Result {
        let mut inner = self.inner.lock();
        if inner.dead || inner.exiting {
            return Ok(());
        }
        inner.attrs = Some(*attrs);
        let inner = &mut *inner;
        inner
            .queue
            .reserve(inner.lanes.len().saturating_add(1), GFP_KERNEL)?;
        for &lane in Iterator::chain(core::iter::once(&LANE_MAIN), inner.lanes.iter()) {
            let req = Request::internal(lane, Work::Attrs(KBox::new(*attrs, GFP_KERNEL)?));
            inner.queue.push(req, GFP_KERNEL)?;
        }
        self.wake.notify_all();
        Ok(())
    }

    /// Client thread `tid` started (the process has several threads now: the spawner is
    /// asked for while the main thread is idle) or exited (its lane's thread ends after
    /// its queued calls).
    pub(crate) fn thread_event(&self, tid: u32, started: bool) -> Result {
        let mut inner = self.inner.lock();
        if inner.dead || inner.exiting {
            return Ok(());
        }
        if started {
            if !inner.one_lane {
                inner.want_spawner()?;
            }
        } else if let Some(i) = inner.lanes.iter().position(|&l| l == tid) {
            inner
                .queue
                .push(Request::internal(tid, Work::LaneEnd), GFP_KERNEL)?;
            let _ = inner.lanes.remove(i);
        }
        self.wake.notify_all();
        Ok(())
    }

    /// Queues `req` unless the shadow is dead (`EIO`), exiting (`ESRCH`) or would hold more
    /// than `max_bytes` of request data (`EAGAIN`); on the lane [`ShadowInner::lane_for`]
    /// picks.
    fn enqueue(&self, mut req: Request, max_bytes: usize, max_threads: usize) -> Result {
        let mut inner = self.inner.lock();
        if inner.dead {
            return Err(EIO);
        }
        if inner.exiting {
            return Err(ESRCH);
        }
        let bytes = inner
            .queued_bytes
            .checked_add(req.what.bytes())
            .filter(|&b| b <= max_bytes || inner.queue.is_empty())
            .ok_or(EAGAIN)?;
        req.lane = inner.lane_for(req.lane, max_threads)?;
        inner.queue.push(req, GFP_KERNEL)?;
        inner.queued_bytes = bytes;
        // Each thread waits for its own lane.
        self.wake.notify_all();
        Ok(())
    }

    /// Its line in the `state` file: `shadow session=ID rpid=CLIENT_PID pid=PID threads=N
    /// queued=N in_flight=N dead=0|1` (`pid` 0: not started yet; `threads`: the lanes
    /// besides the main one).
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        writeln!(
            f,
            "shadow session={} rpid={} pid={} threads={} queued={} in_flight={} dead={}",
            self.session,
            self.rpid,
            inner.pid,
            inner.lanes.len(),
            inner.queue.len(),
            inner.in_flight.len(),
            u8::from(inner.dead)
        )
    }

    /// Whether the shadow process died (or never started) with requests unanswered.
    pub(crate) fn is_dead(&self) -> bool {
        let inner = self.inner.lock();
        if inner.exiting {
            return false;
        }
        if inner.pid == 0 {
            return self.started.elapsed().as_millis() > SPAWN_TIMEOUT_MS
                && !inner.queue.is_empty();
        }
        // SAFETY: No preconditions; any pid value is fine.
        !unsafe { tether_pid_alive(inner.pid) }
    }

    /// Whether the shadow's process died: its process's later calls fail with `EIO`.
    pub(crate) fn is_gone(&self) -> bool {
        self.inner.lock().dead
    }

    /// Marks the shadow dead and fails every request it left.
    pub(crate) fn fail_all(&self, errno: u32) {
        let (queued, in_flight) = {
            let mut inner = self.inner.lock();
            inner.exiting = true;
            inner.dead = true;
            inner.queued_bytes = 0;
            (
                core::mem::take(&mut inner.queue),
                core::mem::take(&mut inner.in_flight),
            )
        };
        let calls = queued.iter().filter(|r| r.what.answered()).map(|r| r.seq);
        for seq in Iterator::chain(calls, in_flight.iter().map(|&(seq, _, _)| seq)) {
            self.fail(seq, errno);
        }
    }

    /// Tells the shadow process to exit once it asks for the next request.
    pub(crate) fn exit(&self) {
        self.inner.lock().exiting = true;
        self.wake.notify_all();
    }

    /// Sends a reply body to the client (or keeps it for a re-send while the session
    /// waits for its client), preceded by one `SERVER_SIGNAL` per signal in `signals` (bit
    /// `n` for signal `n`, only [`FORWARDED_SIGNALS`]).
    fn reply(&self, seq: u64, body: &[u8], signals: u32) {
        self.link
            .reply(self.rpid, seq, body, signals & FORWARDED_SIGNALS);
    }

    /// Answers `seq` with `-errno` and no output.
    pub(crate) fn fail(&self, seq: u64, errno: u32) {
        self.reply(seq, &SyscallReply::bare(neg_errno(errno)), 0);
    }

    /// Gives the calling shadow process `attrs` (NEXT, in the shadow's context).
    fn apply(&self, attrs: &ProcAttrs) -> Result {
        let ids = [
            attrs.uid,
            attrs.euid,
            attrs.fsuid,
            attrs.gid,
            attrs.egid,
            attrs.fsgid,
        ];
        let groups = attrs.groups();
        let ngroups = u32::try_from(groups.len()).map_err(|_| EINVAL)?;
        // SAFETY: `ids` holds six ids and `groups` `groups.len()` ids, both live for the
        // call; the shim changes only the calling task's credentials and limit.
        kernel::error::to_result(unsafe {
            tether_shadow_set_attrs(
                ids.as_ptr(),
                groups.as_ptr(),
                ngroups,
                attrs.fsize_cur,
                attrs.fsize_max,
            )
        })
    }
}

/// The module state, for `open` of the misc device: published before the device is
/// registered, withdrawn after it is deregistered.
pub(crate) static SHARED: Global<Shared> = Global::new();

/// An open `/dev/tether_shadow` (shared by a shadow and the shadows it forks).
///
/// # Invariants
///
/// `session` is 0 until the first `NEXT` or `REPLY`, then the id of its token's session
/// plus one, and never changes again.
pub(crate) struct ShadowFile {
    shared: Arc<Shared>,
    session: Atomic<u64>,
}

#[vtable]
impl MiscDevice for ShadowFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, _misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        let shared = SHARED.get().ok_or(ENODEV)?;
        KBox::new(
            Self {
                shared,
                session: Atomic::new(0),
            },
            GFP_KERNEL,
        )
        .map_err(Into::into)
    }

    fn ioctl(me: &ShadowFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            SHADOW_NEXT => me.next(arg),
            SHADOW_REPLY => me.reply(arg),
            // `ReplyNextArgs` is a `ReplyArgs` followed by a `NextArgs`.
            SHADOW_REPLY_NEXT => {
                me.reply(arg)?;
                let next = arg
                    .checked_add(core::mem::size_of::<ReplyArgs>())
                    .ok_or(EFAULT)?;
                // The reply went out: a wait cut by a signal must not restart the whole
                // call (the reply would go out twice). `EINTR`: the shadow asks again with
                // `NEXT` alone.
                me.next(next)
                    .map_err(|e| if e == ERESTARTSYS { EINTR } else { e })
            }
            SHADOW_KEEPER => me.keeper(arg),
            _ => Err(ENOTTY),
        }
    }
}

impl ShadowFile {
    /// The shadow with `token`, in this file's session: the first lookup binds the file to
    /// the session of the token it found.
    fn shadow(&self, token: u64) -> Result<Arc<Shadow>> {
        let bound = self.session.load(Relaxed);
        let shadow = self.shared.find_shadow(token).ok_or(ENOENT)?;
        let id = u64::from(shadow.session).saturating_add(1);
        if bound == id {
            return Ok(shadow);
        }
        // INVARIANT: set once, from 0 to the session's id plus one.
        match self.session.cmpxchg(0, id, Relaxed) {
            Ok(_) => Ok(shadow),
            Err(old) if old == id => Ok(shadow),
            // Another session's token: as if it did not exist.
            Err(_) => Err(ENOENT),
        }
    }

    fn keeper(&self, arg: usize) -> Result<isize> {
        // A shadow's file serves its session's shadows only.
        if self.session.load(Relaxed) != 0 {
            return Err(EPERM);
        }
        let token: u64 = UserSlice::new(UserPtr::from_addr(arg), 8).reader().read()?;
        let sessions = self.shared.sessions();
        if sessions.iter().any(|s| s.keeper.register(token)) {
            Ok(0)
        } else {
            Err(ENOENT)
        }
    }

    fn next(&self, arg: usize) -> Result<isize> {
        let slice = UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<NextArgs>());
        let (mut reader, mut writer) = slice.reader_writer();
        let mut args: NextArgs = reader.read()?;
        let shadow = self.shadow(args.token)?;
        if args.failed_lane != LANE_MAIN {
            pr_notice!(
                "shadow of client pid {} (session {}) could not start a thread: its process's calls run one at a time\n",
                shadow.rpid,
                shadow.session
            );
            shadow.inner.lock().lane_failed(args.failed_lane);
            shadow.wake.notify_all();
        }
        let req = loop {
            let req = {
                let mut inner = shadow.inner.lock();
                loop {
                    if inner.exiting {
                        drop(inner);
                        self.shared.remove_shadow(&shadow);
                        return Ok(0);
                    }
                    if let Some(i) = inner.queue.iter().position(|r| r.lane == args.lane) {
                        inner.pid = kernel::current!().tgid();
                        let req = inner.queue.remove(i).map_err(|_| EINVAL)?;
                        inner.queued_bytes = inner.queued_bytes.saturating_sub(req.what.bytes());
                        if req.what.answered() {
                            inner
                                .in_flight
                                .push((req.seq, req.nr, Instant::now()), GFP_KERNEL)?;
                        }
                        break req;
                    }
                    if shadow.wake.wait_interruptible(&mut inner) {
                        return Err(ERESTARTSYS);
                    }
                }
            };
            let Work::Attrs(attrs) = &req.what else {
                break req;
            };
            if let Err(e) = shadow.apply(attrs) {
                // Its calls must not run as someone else: the process loses its server state.
                pr_err!(
                    "cannot give the shadow of client pid {} (session {}) uid {} gid {}: {:?}; its calls fail with EIO\n",
                    shadow.rpid,
                    shadow.session,
                    attrs.fsuid,
                    attrs.fsgid,
                    e
                );
                // Like a dead shadow it stays registered, so no fresh one replaces it.
                shadow.fail_all(kernel::bindings::EIO);
                return Ok(0);
            }
        };
        args.seq = req.seq;
        if req.nr.is_some() {
            self.shared
                .latency
                .stage(Stage::Queue, req.queued, Instant::now());
        }
        match req.what {
            Work::Call(body) => {
                let len = u32::try_from(body.len()).map_err(|_| EMSGSIZE)?;
                if len > args.cap {
                    shadow.fail(req.seq, kernel::bindings::E2BIG);
                    return Err(EMSGSIZE);
                }
                let buf = usize::try_from(args.buf).map_err(|_| EFAULT)?;
                UserSlice::new(UserPtr::from_addr(buf), body.len())
                    .writer()
                    .write_slice(&body)?;
                args.op = OP_CALL;
                args.len = len;
            }
            Work::Fork { token, pid } => {
                args.op = OP_FORK;
                args.len = 0;
                args.fork_token = token;
                args.fork_pid = pid;
            }
            Work::Spawner => {
                args.op = OP_SPAWNER;
                args.len = 0;
            }
            Work::Thread(lane) => {
                args.op = OP_THREAD;
                args.len = 0;
                args.fork_pid = lane;
            }
            Work::LaneEnd => {
                args.op = OP_LANE_END;
                args.len = 0;
            }
            Work::Attrs(_) => return Err(EINVAL),
        }
        writer.write(&args)?;
        Ok(1)
    }

    fn reply(&self, arg: usize) -> Result<isize> {
        let entered = Instant::<Monotonic>::now();
        let args: ReplyArgs =
            UserSlice::new(UserPtr::from_addr(arg), core::mem::size_of::<ReplyArgs>())
                .reader()
                .read()?;
        let shadow = self.shadow(args.token)?;
        if args.len > self.shared.config.max_frame {
            return Err(EMSGSIZE);
        }
        let mut body = KVVec::new();
        let buf = usize::try_from(args.buf).map_err(|_| EFAULT)?;
        UserSlice::new(UserPtr::from_addr(buf), args.len as usize)
            .read_all(&mut body, GFP_KERNEL)?;
        SyscallReply::decode(&body).map_err(|_| EINVAL)?;
        let nr = {
            let mut inner = shadow.inner.lock();
            let Some(i) = inner.in_flight.iter().position(|s| s.0 == args.seq) else {
                return Err(ENOENT);
            };
            let (_, nr, since) = inner.in_flight.remove(i).map_err(|_| ENOENT)?;
            if let Some(nr) = nr {
                self.shared.latency.record(nr, since, false);
            }
            nr
        };
        if args.signals & !FORWARDED_SIGNALS != 0 {
            pr_notice!(
                "shadow of client pid {} reported signals {:#x}; only {:#x} are forwarded, the rest are dropped\n",
                shadow.rpid,
                args.signals,
                FORWARDED_SIGNALS
            );
        }
        let faults = &self.shared.faults;
        if shadow.rpid == REDO_RPID {
            faults.reached(Point::InRedo, nr);
        } else if shadow.link.adopted {
            faults.reached(Point::InReplay, nr);
        }
        faults.reached(Point::BeforeReply, nr);
        shadow.reply(args.seq, &body, args.signals);
        if nr.is_some() {
            self.shared
                .latency
                .stage(Stage::Reply, entered, Instant::now());
        }
        faults.reached(Point::AfterReply, nr);
        Ok(0)
    }
}

/// A shadow that has not asked for its first request this long after its start is dead.
const SPAWN_TIMEOUT_MS: i64 = 5000;

extern "C" {
    fn tether_spawn_shadow(
        token: u64,
        keeper: i32,
        pid: u32,
        root: *const kernel::ffi::c_char,
    ) -> kernel::ffi::c_int;
    fn tether_pid_alive(pid: kernel::ffi::c_int) -> bool;
    fn tether_shadow_set_attrs(
        ids: *const u32,
        groups: *const u32,
        ngroups: kernel::ffi::c_uint,
        fsize_cur: u64,
        fsize_max: u64,
    ) -> kernel::ffi::c_int;
}

/// Starts the shadow process for `shadow` (returns once it exec'd): in the pid namespace
/// of `keeper` (`keeper.rs`) as its client process's pid, or without one in the initial
/// namespace; confined to `root`, its client's export root.
pub(crate) fn spawn(shadow: &Shadow, keeper: Option<i32>, root: &kernel::str::CStr) -> Result {
    // SAFETY: `root` is NUL-terminated and outlives the call (which returns once the
    // program exec'd); the shim starts `shadow_path` with these as arguments.
    kernel::error::to_result(unsafe {
        tether_spawn_shadow(
            shadow.token,
            keeper.unwrap_or(0),
            shadow.rpid,
            root.as_char_ptr(),
        )
    })
}
