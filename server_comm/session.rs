// SPDX-License-Identifier: GPL-2.0

//! One client session, and what outlives a lost connection for `resume_ms`: the reply
//! cache that answers re-sent requests without running them twice (`seen`, `reply`), and
//! the durability bookkeeping of the flusher (`sync_start`, `sync_done`, `flusher.rs`). Its
//! shadows are in the registry (`shadows.rs`); its connection worker is `conn.rs`, which
//! hands requests to `dispatch.rs`.
//!
//! Lock order (docs/DESIGN.md §8): `Shared::inner` → `Session::link`; `Session::link` is
//! otherwise taken alone.

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

use crate::conn::Greeting;
use crate::keeper::Keeper;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::msg::{Flushed, Hello, Welcome, W_RESUMED};
use crate::proto::process::SignalMsg;
use crate::server::Shared;
use crate::transport::{random_u64, Counters, Sender, Socket, Stats};

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
pub(crate) enum Seen {
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
    pub(crate) fn send(&self, gen: u64, hdr: Header, body: &[u8]) -> Result {
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
    pub(crate) fn detach(&self, gen: u64) -> bool {
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
    pub(crate) fn seen(&self, gen: u64, hdr: &Header, max_pending: usize) -> Result<Seen> {
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
    pub(crate) fn unpend(&self, seq: u64) {
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
