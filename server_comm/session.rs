// SPDX-License-Identifier: GPL-2.0

//! One client session: its connection (handshake, heartbeats, the requests it serves), and
//! what outlives a lost connection for `resume_ms`: the shadows (in `Shared`), the reply
//! cache that answers re-sent requests without running them twice, and the durability
//! bookkeeping of the flusher (`flusher.rs`).
//!
//! Lock order: `Shared::inner` → `Session::link`; `Session::link` is otherwise taken alone.

use core::fmt;
use kernel::{
    alloc::KVVec,
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    time::{Instant, Monotonic},
};

use crate::auth::{self, may_log_bad_frame, may_log_refusal};
use crate::keeper::Keeper;
use crate::proto::auth::{hello_mac_input, welcome_mac_input, Challenge, C_AUTH, MAC_LEN};
use crate::proto::calls;
use crate::proto::codec::{sum64, SUM_INIT};
use crate::proto::error::ProtoError;
use crate::proto::frame::{Header, F_ACK_REQ, F_REPLY, HANDSHAKE_MAX_FRAME, HEADER_LEN, VERSION};
use crate::proto::kind::Kind;
use crate::proto::msg::{negotiate, ErrorMsg, Flushed, Hello, SinkAck, Welcome, W_RESUMED};
use crate::proto::process::{ProcAttrs, SignalMsg};
use crate::proto::syscall::{SyscallReply, SyscallReq, MAX_BUFS};
use crate::server::Shared;
use crate::transport::{random_u64, Counters, Receiver, RecvError, Sender, Socket, Stats};

/// The server's answer to a `HELLO`: the `WELCOME` (session id, flags and verifier are
/// filled in when the connection is attached), the `HELLO`'s seq, and `seal`, which writes
/// the server's MAC into the encoded body.
pub(crate) struct Greeting<'a> {
    pub(crate) welcome: Welcome,
    pub(crate) hello_seq: u64,
    pub(crate) seal: &'a dyn Fn(&mut [u8; Welcome::LEN]),
}

/// One cached reply.
struct Cached {
    seq: u64,
    rpid: u32,
    /// `SERVER_SIGNAL`s that go before the reply (bit `n` for signal `n`).
    signals: u32,
    body: KVVec<u8>,
}

/// Sends the reply `body` to call `seq` of `rpid`, preceded by one `SERVER_SIGNAL` per signal
/// in `signals` (bit `n` for signal `n`).
fn send_reply(
    tx: &mut Sender,
    session: u32,
    rpid: u32,
    seq: u64,
    signals: u32,
    body: &[u8],
) -> Result {
    let hdr = |kind| Header {
        session,
        rpid,
        seq,
        ..Header::new(kind, 0)
    };
    for signo in (1..32u32).filter(|n| signals & (1 << n) != 0) {
        let mut msg = [0u8; SignalMsg::LEN];
        let n = SignalMsg { signo }.encode(&mut msg).map_err(|_| EINVAL)?;
        tx.send(hdr(Kind::ServerSignal), msg.get(..n).ok_or(EINVAL)?)?;
    }
    tx.send(hdr(Kind::ServerReply), body)
}

/// What a request's seq says about it.
enum Seen {
    /// Never seen: run it (it is now pending).
    New,
    /// Answered before: answered again from the cache.
    Answered,
    /// Queued or running: its reply goes out when ready.
    Pending,
    /// Older than the oldest cached reply and not pending: it may have run; refused.
    Stale,
    /// New, but the session has `max_pending` requests queued or running: refused with
    /// `EAGAIN`, not run.
    Full,
}

/// The fields [`Session::link`] guards.
pub(crate) struct Link {
    /// The current connection's socket and sender (`None` while the session waits for
    /// its client to come back).
    conn: Option<(Arc<Socket>, Sender)>,
    /// Bumped by every new connection: a connection worker acts only while its
    /// generation is current.
    gen: u64,
    /// When the connection was lost (`None` while connected or once ended).
    detached_at: Option<Instant<Monotonic>>,
    /// The session ended: nothing is sent any more.
    ended: bool,
    /// The client said (`HELLO.kinds`) it takes `SERVER_FLUSHED`.
    wants_flushed: bool,
    /// The last replies, oldest first (at most `reply_cache` entries and
    /// `reply_cache_kb` bytes, but always the newest).
    cache: KVec<Cached>,
    /// Bytes of reply bodies in `cache`.
    cache_bytes: usize,
    /// Highest seq evicted from `cache`.
    cache_floor: u64,
    /// Seqs of requests queued or running.
    pending: KVec<u64>,
    /// Highest seq answered.
    answered_max: u64,
    /// A sync started after `answered_max` was `mark`; `late_min` is the lowest seq
    /// answered since.
    syncing: bool,
    mark: u64,
    late_min: u64,
    /// The last `SERVER_FLUSHED` sent: its `up_to_seq` and verifier.
    acked: u64,
    acked_verifier: u64,
}

/// One client session.
#[pin_data]
pub(crate) struct Session {
    pub(crate) id: u32,
    pub(crate) cid: u32,
    /// The client instance that may resume this session (0: it cannot be resumed).
    pub(crate) instance: u64,
    pub(crate) stats: Arc<Stats>,
    /// Times the session was resumed.
    resumes: Atomic<u64>,
    /// Bounds of the reply cache: entries and bytes.
    cache_max: usize,
    cache_max_bytes: usize,
    #[pin]
    link: Mutex<Link>,
    /// The init of the session's pid namespace, where its shadows run.
    #[pin]
    pub(crate) keeper: Keeper,
}

impl Session {
    /// A new session, not connected yet.
    pub(crate) fn new(
        id: u32,
        cid: u32,
        instance: u64,
        cache_max: usize,
        cache_max_bytes: usize,
    ) -> Result<Arc<Self>> {
        let stats = Arc::new(Stats::new(), GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                id,
                cid,
                instance,
                stats,
                resumes: Atomic::new(0),
                cache_max,
                cache_max_bytes,
                link <- new_mutex!(
                    Link {
                        conn: None,
                        gen: 0,
                        detached_at: None,
                        ended: false,
                        wants_flushed: false,
                        cache: KVec::new(),
                        cache_bytes: 0,
                        cache_floor: 0,
                        pending: KVec::new(),
                        answered_max: 0,
                        syncing: false,
                        mark: 0,
                        late_min: u64::MAX,
                        acked: 0,
                        acked_verifier: 0,
                    },
                    "Session::link"
                ),
                keeper <- Keeper::new(random_u64()),
            }),
            GFP_KERNEL,
        )
    }

    /// Makes `sock` the session's connection (shutting a previous one down) and sends
    /// `welcome` on it first. Returns the connection's generation.
    pub(crate) fn connect(
        &self,
        shared: &Shared,
        sock: &Arc<Socket>,
        hello: &Hello,
        greeting: &Greeting<'_>,
        resumed: bool,
    ) -> Result<u64> {
        let (welcome, hello_seq) = (greeting.welcome, greeting.hello_seq);
        let counters = Counters {
            link: Some(self.stats.clone()),
            total: shared.totals.clone(),
        };
        let mut tx = Sender::new(sock.clone(), shared.config.split, counters);
        let welcome = Welcome {
            session: self.id,
            flags: if resumed { W_RESUMED } else { 0 },
            boot_verifier: shared.verifier(),
            ..welcome
        };
        let mut body = [0u8; Welcome::LEN];
        welcome.encode(&mut body).map_err(|_| EINVAL)?;
        // The server's proof of the key, over the final fields.
        (greeting.seal)(&mut body);
        let mut link = self.link.lock();
        if link.ended {
            return Err(ESHUTDOWN);
        }
        if let Some((old, _)) = link.conn.take() {
            old.shutdown();
        }
        link.gen = link.gen.wrapping_add(1);
        link.detached_at = None;
        link.wants_flushed = hello.kinds & Kind::ServerFlushed.bit() != 0;
        // The WELCOME tells the client the current verifier.
        link.acked_verifier = welcome.boot_verifier;
        let h = Header {
            session: self.id,
            seq: hello_seq,
            ..Header::new(Kind::Welcome, 0)
        };
        // A failed send shows up as a failed receive in the connection worker.
        let _ = tx.send(h, &body);
        link.conn = Some((sock.clone(), tx));
        if resumed {
            self.resumes.add(1, Relaxed);
        }
        Ok(link.gen)
    }

    /// Sends a frame on connection `gen` (`ENOTCONN` once it is not current).
    fn send(&self, gen: u64, hdr: Header, body: &[u8]) -> Result {
        let mut link = self.link.lock();
        if link.gen != gen {
            return Err(ENOTCONN);
        }
        match link.conn.as_mut() {
            Some((_, tx)) => tx.send(hdr, body),
            None => Err(ENOTCONN),
        }
    }

    /// Shuts the current connection down (its worker then detaches or ends the session);
    /// whether there was one.
    pub(crate) fn shutdown(&self) -> bool {
        match &self.link.lock().conn {
            Some((sock, _)) => {
                sock.shutdown();
                true
            }
            None => false,
        }
    }

    /// Connection `gen` was lost: keep the session for its client to resume. False when a
    /// newer connection already took it over (or it ended).
    fn detach(&self, gen: u64) -> bool {
        let mut link = self.link.lock();
        if link.gen != gen || link.ended {
            return false;
        }
        link.conn = None;
        link.detached_at = Some(Instant::now());
        true
    }

    /// Ends the session (when `gen` is `None` or still current): true when this call did.
    pub(crate) fn end(&self, gen: Option<u64>) -> bool {
        let mut link = self.link.lock();
        if link.ended || gen.is_some_and(|g| g != link.gen) {
            return false;
        }
        link.ended = true;
        link.conn = None;
        link.detached_at = None;
        link.cache.clear();
        link.pending.clear();
        true
    }

    /// How long the session has been waiting for its client (`None`: connected or ended).
    pub(crate) fn detached_ms(&self) -> Option<i64> {
        self.link
            .lock()
            .detached_at
            .map(|t| t.elapsed().as_millis())
    }

    /// Looks `hdr.seq` up; a new one becomes pending (unless `max_pending` are), an
    /// answered one is answered again on connection `gen`.
    fn seen(&self, gen: u64, hdr: &Header, max_pending: usize) -> Result<Seen> {
        let mut link = self.link.lock();
        let l = &mut *link;
        if let Some(c) = l.cache.iter().find(|c| c.seq == hdr.seq) {
            if l.gen == gen {
                if let Some((_, tx)) = l.conn.as_mut() {
                    send_reply(tx, self.id, c.rpid, c.seq, c.signals, &c.body)?;
                }
            }
            return Ok(Seen::Answered);
        }
        if l.pending.contains(&hdr.seq) {
            return Ok(Seen::Pending);
        }
        if hdr.seq <= l.cache_floor {
            return Ok(Seen::Stale);
        }
        if l.pending.len() >= max_pending {
            return Ok(Seen::Full);
        }
        l.pending.push(hdr.seq, GFP_KERNEL)?;
        Ok(Seen::New)
    }

    /// Forgets the pending request `seq` that will get no reply.
    fn unpend(&self, seq: u64) {
        self.link.lock().pending.retain(|s| *s != seq);
    }

    /// Answers request `seq` of process `rpid` with `body`, after `signals` (bit `n` for
    /// `SERVER_SIGNAL` `n`): records it (answered, cached)
    /// and sends it when the session is connected. Never fails: a lost reply is sent
    /// again from the cache when the client re-sends the request.
    pub(crate) fn reply(&self, rpid: u32, seq: u64, body: &[u8], signals: u32) {
        let mut copy = KVVec::new();
        let cached = copy.extend_from_slice(body, GFP_KERNEL).is_ok();
        let mut link = self.link.lock();
        let l = &mut *link;
        if l.ended {
            return;
        }
        l.pending.retain(|s| *s != seq);
        l.answered_max = l.answered_max.max(seq);
        if l.syncing {
            l.late_min = l.late_min.min(seq);
        }
        let entry = Cached {
            seq,
            rpid,
            signals,
            body: copy,
        };
        if cached && l.cache.push(entry, GFP_KERNEL).is_ok() {
            l.cache_bytes = l.cache_bytes.saturating_add(body.len());
            while l.cache.len() > 1
                && (l.cache.len() > self.cache_max || l.cache_bytes > self.cache_max_bytes)
            {
                if let Ok(old) = l.cache.remove(0) {
                    l.cache_bytes = l.cache_bytes.saturating_sub(old.body.len());
                    l.cache_floor = l.cache_floor.max(old.seq);
                }
            }
        } else {
            pr_notice!(
                "session {}: no memory to cache the reply of seq {}: a re-send is refused\n",
                self.id,
                seq
            );
            l.cache_floor = l.cache_floor.max(seq);
        }
        if let Some((_, tx)) = l.conn.as_mut() {
            // A failed send shows up as a failed receive in the connection worker.
            let _ = send_reply(tx, self.id, rpid, seq, signals, body);
        }
    }

    /// Flusher, before its sync: records the highest answered seq. Whether the session
    /// has answers not acked yet.
    pub(crate) fn sync_start(&self) -> bool {
        let mut l = self.link.lock();
        if l.ended || !l.wants_flushed {
            return false;
        }
        l.syncing = true;
        l.mark = l.answered_max;
        l.late_min = u64::MAX;
        l.mark > l.acked
    }

    /// Flusher, after its sync: sends `SERVER_FLUSHED` when the sync succeeded and covers
    /// more than the last one, or when the verifier changed (a writeback error: nothing new
    /// is acked). Calls answered while the sync ran are not covered: `up_to_seq` stays
    /// below them. Returns whether a frame went out.
    pub(crate) fn sync_done(&self, ok: bool, verifier: u64) -> bool {
        let mut link = self.link.lock();
        let l = &mut *link;
        if !l.syncing {
            return false;
        }
        l.syncing = false;
        let up_to = if ok {
            l.mark.min(l.late_min.saturating_sub(1)).max(l.acked)
        } else {
            l.acked
        };
        if up_to == l.acked && verifier == l.acked_verifier {
            return false;
        }
        let Some((_, tx)) = l.conn.as_mut() else {
            return false;
        };
        let mut body = [0u8; Flushed::LEN];
        let msg = Flushed {
            up_to_seq: up_to,
            boot_verifier: verifier,
        };
        if msg.encode(&mut body).is_err() {
            return false;
        }
        let h = Header {
            session: self.id,
            ..Header::new(Kind::ServerFlushed, 0)
        };
        if tx.send(h, &body).is_err() {
            return false;
        }
        l.acked = up_to;
        l.acked_verifier = verifier;
        true
    }

    /// This session's line of the debugfs `state` file (it has `shadows` shadows).
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>, shadows: usize) -> fmt::Result {
        let keeper = self.keeper.running().unwrap_or(0);
        let l = self.link.lock();
        writeln!(
            f,
            "session id={} cid={} connected={} resumes={} shadows={} keeper={} answered={} acked={} pending={} cached={} frames_in={} frames_out={} bytes_in={} bytes_out={}",
            self.id,
            self.cid,
            u8::from(l.conn.is_some()),
            self.resumes.load(Relaxed),
            shadows,
            keeper,
            l.answered_max,
            l.acked,
            l.pending.len(),
            l.cache.len(),
            self.stats.frames_in.load(Relaxed),
            self.stats.frames_out.load(Relaxed),
            self.stats.bytes_in.load(Relaxed),
            self.stats.bytes_out.load(Relaxed),
        )
    }
}

/// The kinds this server serves (`WELCOME.kinds`).
fn served_kinds() -> u64 {
    [
        Kind::Hello,
        Kind::Heartbeat,
        Kind::Error,
        Kind::EchoReq,
        Kind::Sink,
        Kind::ClientSystemCall,
        Kind::ClientFork,
        Kind::ClientExit,
        Kind::ClientAttrs,
        Kind::ServerFlushed,
        Kind::Challenge,
    ]
    .iter()
    .fold(0, |m, k| m | k.bit())
}

/// Receive timeouts in a row after which a client counts as dead.
const MAX_MISSES: u32 = 3;

/// How a connection ended.
enum End {
    /// The client closed the connection (end of stream).
    Closed,
    /// The client sent `ERROR`: it ends the session for good.
    Goodbye,
    /// The module is being unloaded.
    Stopping,
    /// Nothing arrived for [`MAX_MISSES`] heartbeat intervals.
    Silent,
    /// The client broke the protocol.
    Bad(ProtoError, u32),
    /// The socket failed.
    Io(Error),
}

impl From<RecvError> for End {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Closed => End::Closed,
            // Callers count timeouts themselves; one reaching here is a stall.
            RecvError::Timeout => End::Silent,
            RecvError::Proto(p) => End::Bad(p, 0),
            RecvError::Io(e) => End::Io(e),
        }
    }
}

impl From<Error> for End {
    fn from(e: Error) -> Self {
        End::Io(e)
    }
}

/// Refuses a connection: one (rate-limited) log line, an `ERROR` frame sent only if it fits
/// the peer's send credit now (a peer that grants none must not hold the accept loop, nor a
/// worker), close.
pub(crate) fn refuse(
    shared: &Shared,
    sock: &Arc<Socket>,
    cid: u32,
    code: ProtoError,
    reason: fmt::Arguments<'_>,
) {
    shared.rejected.add(1, Relaxed);
    if may_log_refusal() {
        pr_notice!("dropping connection from cid {}: {}\n", cid, reason);
    }
    let body = error_body(code, 0);
    let mut frame = [0u8; HEADER_LEN + ErrorMsg::LEN];
    let hdr = Header::new(Kind::Error, ErrorMsg::LEN as u32).encode();
    frame[..HEADER_LEN].copy_from_slice(&hdr);
    frame[HEADER_LEN..].copy_from_slice(&body);
    let _ = sock.send_nowait(&frame);
}

fn error_body(code: ProtoError, detail: u32) -> [u8; ErrorMsg::LEN] {
    let mut body = [0u8; ErrorMsg::LEN];
    let msg = ErrorMsg {
        code: code as u32,
        detail,
    };
    let _ = msg.encode(&mut body);
    body
}

/// Serves the connection `sock` from `cid`: handshake, then its session's requests until
/// the connection ends; then the session waits for its client to resume it (connection
/// lost, the client can resume) or ends.
pub(crate) fn serve(shared: Arc<Shared>, sock: Arc<Socket>, cid: u32) {
    let cfg = &shared.config;
    let counters = Counters {
        link: None,
        total: shared.totals.clone(),
    };
    sock.set_timeouts(
        cfg.heartbeat_ms,
        cfg.heartbeat_ms.saturating_mul(MAX_MISSES),
    );
    let mut tx0 = Sender::new(sock.clone(), cfg.split, counters.clone());
    let hs = match Receiver::new(sock.clone(), HANDSHAKE_MAX_FRAME, counters) {
        Ok(mut rx) => {
            rx.set_deadline(Some(cfg.handshake_ms));
            handshake(&shared, cid, &sock, &mut tx0, &mut rx)
        }
        Err(e) => Err(End::Io(e)),
    };
    // The connection counted as one before its HELLO since the listener admitted it.
    shared.handshaking.add(-1, Relaxed);
    let (s, gen, max_frame) = match hs {
        Ok(h) => h,
        Err(end) => {
            return report(&shared, cid, 0, end, &mut |body| {
                let h = Header::new(Kind::Error, 0);
                let _ = tx0.send(h, body);
            })
        }
    };
    let counters = Counters {
        link: Some(s.stats.clone()),
        total: shared.totals.clone(),
    };
    let end = match Receiver::new(sock.clone(), max_frame, counters) {
        Ok(mut rx) => run(&shared, &s, gen, &mut rx, max_frame),
        Err(e) => End::Io(e),
    };
    let resumable = matches!(end, End::Closed | End::Silent | End::Io(_))
        && s.instance != 0
        && cfg.resume_ms > 0
        && !shared.is_stopping();
    report(&shared, cid, s.id, end, &mut |body| {
        let h = Header {
            session: s.id,
            ..Header::new(Kind::Error, 0)
        };
        let _ = s.send(gen, h, body);
    });
    if resumable {
        if s.detach(gen) {
            pr_info!(
                "session {} (cid {}) lost its connection: kept {} ms for its client to resume\n",
                s.id,
                cid,
                cfg.resume_ms
            );
        }
    } else {
        shared.end_session(&s, Some(gen));
    }
}

/// Logs how connection of session `id` (0: before the handshake) ended; `send` sends
/// an `ERROR` body to a client that broke the protocol.
fn report(shared: &Shared, cid: u32, id: u32, end: End, send: &mut dyn FnMut(&[u8])) {
    // Anyone who reaches the port can make a connection fail: those lines are rate-limited.
    let quiet = !may_log_bad_frame();
    match end {
        End::Bad(code, detail) if quiet => {
            shared.bad_frames.add(1, Relaxed);
            send(&error_body(code, detail));
        }
        End::Silent if quiet => {
            shared.heartbeat_misses.add(1, Relaxed);
        }
        _ if quiet && id == 0 => (),
        End::Closed => pr_info!("session {} (cid {}) closed\n", id, cid),
        End::Goodbye => pr_info!("session {} (cid {}) ended by the client\n", id, cid),
        End::Stopping => (),
        End::Silent => {
            shared.heartbeat_misses.add(1, Relaxed);
            pr_notice!(
                "dropping connection from cid {}: silent for {} heartbeats\n",
                cid,
                MAX_MISSES
            );
        }
        End::Bad(code, detail) => {
            shared.bad_frames.add(1, Relaxed);
            pr_notice!("dropping connection from cid {}: {}\n", cid, code.name());
            send(&error_body(code, detail));
        }
        End::Io(e) => pr_info!("session {} (cid {}) failed: {:?}\n", id, cid, e),
    }
}

fn run(shared: &Shared, s: &Arc<Session>, gen: u64, rx: &mut Receiver, max_frame: u32) -> End {
    let reply = |kind, seq| Header {
        session: s.id,
        seq,
        ..Header::new(kind, 0)
    };
    let (mut sink_bytes, mut sink_sum) = (0u64, SUM_INIT);
    let mut misses = 0;
    let mut heartbeat_seq = 0u64;
    let mut last_reap = Instant::<Monotonic>::now();
    loop {
        if shared.is_stopping() {
            return End::Stopping;
        }
        if last_reap.elapsed().as_millis() >= i64::from(shared.config.heartbeat_ms) {
            shared.reap_shadows(s.id);
            last_reap = Instant::now();
        }

        let (hdr, body) = match rx.recv(max_frame) {
            Ok(frame) => frame,
            Err(RecvError::Timeout) => {
                misses += 1;
                if misses >= MAX_MISSES {
                    return End::Silent;
                }
                heartbeat_seq = heartbeat_seq.wrapping_add(1);
                if let Err(e) = s.send(gen, reply(Kind::Heartbeat, heartbeat_seq), &[]) {
                    return End::Io(e);
                }
                continue;
            }
            Err(e) => return e.into(),
        };
        misses = 0;
        let sent = match hdr.kind {
            Kind::Heartbeat if hdr.flags & F_REPLY == 0 => s.send(
                gen,
                Header {
                    flags: F_REPLY,
                    ..reply(Kind::Heartbeat, hdr.seq)
                },
                &[],
            ),
            Kind::Heartbeat => Ok(()),
            Kind::EchoReq => s.send(gen, reply(Kind::EchoReply, hdr.seq), body),
            Kind::Sink => {
                sink_bytes = sink_bytes.wrapping_add(body.len() as u64);
                sink_sum = sum64(sink_sum, body);
                if hdr.flags & F_ACK_REQ == 0 {
                    Ok(())
                } else {
                    let mut ack = [0u8; SinkAck::LEN];
                    let _ = SinkAck {
                        bytes: sink_bytes,
                        sum: sink_sum,
                    }
                    .encode(&mut ack);
                    (sink_bytes, sink_sum) = (0, SUM_INIT);
                    s.send(gen, reply(Kind::SinkAck, hdr.seq), &ack)
                }
            }
            Kind::ClientSystemCall => match SyscallReq::decode(body) {
                Ok(_) => request(shared, s, gen, &hdr, body),
                Err(e) => return End::Bad(e, hdr.kind as u32),
            },
            Kind::ClientFork | Kind::ClientExit => request(shared, s, gen, &hdr, body),
            Kind::ClientAttrs => match ProcAttrs::decode(body) {
                Ok(attrs) => set_attrs(shared, s, &hdr, &attrs),
                Err(e) => return End::Bad(e, hdr.kind as u32),
            },
            Kind::Error => {
                let why = ErrorMsg::decode(body)
                    .ok()
                    .and_then(|m| ProtoError::from_u32(m.code));
                pr_info!(
                    "cid {} closed session {}: {}\n",
                    s.cid,
                    s.id,
                    why.map_or("unknown reason", ProtoError::name)
                );
                return End::Goodbye;
            }
            other => return End::Bad(ProtoError::Unexpected, other as u32),
        };
        if let Err(e) = sent {
            return End::Io(e);
        }
    }
}

/// A request (`CLIENT_SYSTEM_CALL`, `CLIENT_FORK`, `CLIENT_EXIT`): run once per seq. A
/// re-sent one is answered from the reply cache, or not at all while it is still pending
/// (its reply goes out when ready).
fn request(shared: &Shared, s: &Arc<Session>, gen: u64, hdr: &Header, body: &[u8]) -> Result {
    match s.seen(gen, hdr, shared.config.max_pending)? {
        Seen::New => (),
        Seen::Answered => {
            shared.cache_hits.add(1, Relaxed);
            return Ok(());
        }
        Seen::Pending => {
            shared.dup_pending.add(1, Relaxed);
            return Ok(());
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
            return s.send(
                gen,
                h,
                &SyscallReply::bare(-i64::from(kernel::bindings::ESTALE)),
            );
        }
        Seen::Full => {
            shared.limit_notice(s, "pending requests", shared.config.max_pending);
            reply_bare(s, hdr, -i64::from(kernel::bindings::EAGAIN));
            return Ok(());
        }
    }
    match hdr.kind {
        Kind::ClientSystemCall => {
            shared.dirty.add(body.len() as u64, Relaxed);
            system_call(shared, s, hdr, body);
            Ok(())
        }
        Kind::ClientFork if shared.exports.is_denied(s.id, hdr.rpid) => {
            reply_bare(s, hdr, -i64::from(kernel::bindings::EPERM));
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

/// Hands a `CLIENT_SYSTEM_CALL` to the shadow of its process (started on first use). A
/// shadow that cannot take it (dead: `EIO`, exiting: `ESRCH`) answers at once with that
/// error; the session goes on.
fn system_call(shared: &Shared, s: &Arc<Session>, hdr: &Header, body: &[u8]) {
    if shared.exports.is_denied(s.id, hdr.rpid) {
        reply_bare(s, hdr, -i64::from(kernel::bindings::EPERM));
        return;
    }
    if let Err(refusal) = check_call(shared, s, hdr, body) {
        reply_bare(s, hdr, -i64::from(refusal.errno()));
        return;
    }
    match shared.shadow_for(s, hdr.rpid) {
        Ok(shadow) => {
            let max_bytes = shared.config.max_queued_bytes;
            if let Err(e) = shadow.push(hdr.seq, body, max_bytes) {
                if e == EAGAIN {
                    shared.limit_notice(s, "queued request bytes per process", max_bytes);
                }
                shadow.fail(hdr.seq, e.to_errno().unsigned_abs());
            }
        }
        Err(e) => reply_bare(s, hdr, i64::from(e.to_errno())),
    }
}

/// Checks a `CLIENT_SYSTEM_CALL` body against the call table (`proto::calls::check`): a
/// call no shadow runs, or whose buffers do not match its arguments, never reaches one.
fn check_call(
    shared: &Shared,
    s: &Session,
    hdr: &Header,
    body: &[u8],
) -> core::result::Result<(), calls::Refusal> {
    let (req, data) = SyscallReq::decode(body).map_err(|_| calls::Refusal::BadArgs)?;
    let max_out = shared
        .config
        .max_frame
        .saturating_sub(u32::try_from(SyscallReply::head_len(MAX_BUFS)).unwrap_or(u32::MAX));
    calls::check(&req, data, max_out)
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
fn set_attrs(shared: &Shared, s: &Arc<Session>, hdr: &Header, attrs: &ProcAttrs) -> Result {
    let rule = shared.exports.rule(s.cid);
    let Some(rule) = rule.filter(|r| r.allows(attrs)) else {
        // Its calls fail with EPERM until it claims ids its CID may use; no shadow starts
        // for it meanwhile.
        shared.attrs_refused.add(1, Relaxed);
        if may_log_refusal() {
            pr_notice!(
                "session {} (cid {}) pid {}: CLIENT_ATTRS claims ids outside the client's export ranges (uid {} euid {} fsuid {} gid {} egid {} fsgid {}, {} groups): its calls fail with EPERM\n",
                s.id,
                s.cid,
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

/// Answers request `hdr` with `ret` (`0` or `-errno`) and no output.
fn reply_bare(s: &Session, hdr: &Header, ret: i64) {
    s.reply(hdr.rpid, hdr.seq, &SyscallReply::bare(ret), 0);
}

/// Waits for `HELLO`, attaches the connection to its session (sending `WELCOME`);
/// returns the session, the connection's generation and the negotiated maximum body length.
fn handshake(
    shared: &Shared,
    cid: u32,
    sock: &Arc<Socket>,
    tx: &mut Sender,
    rx: &mut Receiver,
) -> Result<(Arc<Session>, u64, u32), End> {
    let cfg = &shared.config;
    // The server speaks first: a fresh nonce the client's MAC must cover.
    let challenge = Challenge {
        nonce: auth::nonce(),
        flags: if cfg.key.is_some() { C_AUTH } else { 0 },
    };
    let mut cbody = [0u8; Challenge::LEN];
    challenge.encode(&mut cbody).map_err(|_| End::Io(EINVAL))?;
    tx.send(Header::new(Kind::Challenge, 0), &cbody)
        .map_err(End::Io)?;
    let mut misses = 0;
    let (hdr, hello, authentic) = loop {
        match rx.recv(HANDSHAKE_MAX_FRAME) {
            Ok((hdr, body)) if hdr.kind == Kind::Hello => {
                let hello = Hello::decode(body).map_err(|e| End::Bad(e, 0))?;
                // Checked after the version (below): a peer without the key learns no more
                // than that it has none.
                let authentic = cfg.key.as_ref().is_none_or(|key| {
                    hello_mac_input(&challenge.nonce, &hello.nonce, body)
                        .is_ok_and(|parts| auth::mac_eq(&key.mac(&parts), &hello.mac))
                });
                break (hdr, hello, authentic);
            }
            Ok((hdr, _)) => return Err(End::Bad(ProtoError::Unexpected, hdr.kind as u32)),
            Err(RecvError::Timeout) if shared.is_stopping() => return Err(End::Stopping),
            Err(RecvError::Timeout) if misses + 1 < MAX_MISSES => misses += 1,
            Err(RecvError::Io(e)) if e == ETIMEDOUT => {
                shared.limit_refusals.add(1, Relaxed);
                refuse(
                    shared,
                    sock,
                    cid,
                    ProtoError::Busy,
                    fmt!("handshake not done within {} ms", cfg.handshake_ms),
                );
                return Err(End::Stopping);
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (version, max_frame) =
        negotiate(&hello, cfg.max_frame).map_err(|e| End::Bad(e, u32::from(VERSION)))?;
    if !authentic {
        shared.auth_failures.add(1, Relaxed);
        refuse(
            shared,
            sock,
            cid,
            ProtoError::AuthFailed,
            fmt!("HELLO without a valid MAC (no, wrong or replayed key proof)"),
        );
        return Err(End::Stopping);
    }
    let seal = |body: &mut [u8; Welcome::LEN]| {
        let Some(key) = &cfg.key else { return };
        let mac = match welcome_mac_input(&challenge.nonce, &hello.nonce, body, &hello.mac) {
            Ok(parts) => key.mac(&parts),
            Err(_) => return,
        };
        if let Some(dst) = body.get_mut(Welcome::LEN_V2..) {
            dst.copy_from_slice(&mac);
        }
    };
    let welcome = Welcome {
        version,
        boot_verifier: 0,
        max_frame,
        heartbeat_ms: cfg.heartbeat_ms,
        session: 0,
        kinds: served_kinds(),
        flags: 0,
        mac: [0; MAC_LEN],
    };
    let greeting = Greeting {
        welcome,
        hello_seq: hdr.seq,
        seal: &seal,
    };
    let (s, gen, resumed) = match shared.attach(&hello, cid, sock, &greeting) {
        Ok(a) => a,
        Err(e) if e == EBUSY => {
            shared.limit_refusals.add(1, Relaxed);
            refuse(
                shared,
                sock,
                cid,
                ProtoError::Busy,
                fmt!("too many sessions ({})", cfg.max_sessions),
            );
            return Err(End::Stopping);
        }
        Err(e) if e == EUSERS => {
            shared.limit_refusals.add(1, Relaxed);
            refuse(
                shared,
                sock,
                cid,
                ProtoError::Busy,
                fmt!(
                    "too many sessions of this client ({}, max_sessions_per_cid)",
                    cfg.max_sessions_per_cid
                ),
            );
            return Err(End::Stopping);
        }
        Err(e) if e == ESHUTDOWN => return Err(End::Stopping),
        Err(e) => return Err(End::Io(e)),
    };
    if resumed {
        pr_info!(
            "session {} (cid {}) resumed: max_frame {}\n",
            s.id,
            cid,
            max_frame
        );
    } else {
        pr_info!(
            "session {} (cid {}) up: max_frame {}\n",
            s.id,
            cid,
            max_frame
        );
    }
    Ok((s, gen, max_frame))
}
