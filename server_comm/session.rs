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

use crate::durability::Durability;
use crate::keeper::Keeper;
use crate::proto::frame::Header;
use crate::proto::kind::Kind;
use crate::proto::msg::{Flushed, Hello, Welcome, W_RESUMED};
use crate::proto::peer::Peer;
use crate::proto::process::SignalMsg;
use crate::reply_cache::{Cached, ReplyCache, Seen};
use crate::server::Shared;
use crate::transport::{random_u64, Counters, Sender, Socket, Stats};

/// The server's answer to a `HELLO`: the `WELCOME` (session id, flags and verifier are
/// filled in when the connection is attached), the `HELLO`'s seq, and `seal`, which writes
/// the server's MAC into the encoded body.
pub(crate) struct Greeting<'a> {
    pub(crate) welcome: Welcome,
    pub(crate) hello_seq: u64,
    pub(crate) seal: &'a dyn Fn(&mut [u8; Welcome::LEN]),
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
    /// The last replies (at most `reply_cache` entries and `reply_cache_kb` bytes, but
    /// always the newest) and the requests queued or running.
    cache: ReplyCache,
    /// What `SERVER_FLUSHED` may promise.
    marks: Durability,
}

/// One client session.
#[pin_data]
pub(crate) struct Session {
    pub(crate) id: u32,
    pub(crate) peer: Peer,
    /// The client instance that may resume this session (0: it cannot be resumed).
    pub(crate) instance: u64,
    /// Created for a client that asked to resume a session this server did not have: the
    /// client replays its state here (fault point `in_replay`, `faults.rs`).
    pub(crate) adopted: bool,
    pub(crate) stats: Arc<Stats>,
    /// Times the session was resumed.
    resumes: Atomic<u64>,
    #[pin]
    link: Mutex<Link>,
    /// The init of the session's pid namespace, where its shadows run.
    #[pin]
    pub(crate) keeper: Keeper,
}

impl Session {
    /// A new session, not connected yet (`adopted`: its client asked to resume a session
    /// this server did not have).
    pub(crate) fn new(
        id: u32,
        peer: Peer,
        instance: u64,
        adopted: bool,
        cache_max: usize,
        cache_max_bytes: usize,
    ) -> Result<Arc<Self>> {
        let stats = Arc::new(Stats::new(), GFP_KERNEL)?;
        Arc::pin_init(
            pin_init!(Self {
                id,
                peer,
                instance,
                adopted,
                stats,
                resumes: Atomic::new(0),
                link <- new_mutex!(
                    Link {
                        conn: None,
                        gen: 0,
                        detached_at: None,
                        ended: false,
                        wants_flushed: false,
                        cache: ReplyCache::new(cache_max, cache_max_bytes),
                        marks: Durability::new(),
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
        link.marks.acked_verifier = welcome.boot_verifier;
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
        true
    }

    /// How long the session has been waiting for its client (`None`: connected or ended).
    pub(crate) fn detached_ms(&self) -> Option<i64> {
        self.link
            .lock()
            .detached_at
            .map(|t| t.elapsed().as_millis())
    }

    /// Looks `hdr.seq` up in the reply cache: a new one becomes pending (unless
    /// `max_pending` are), an answered one is answered again on connection `gen`.
    pub(crate) fn seen(&self, gen: u64, hdr: &Header, max_pending: usize) -> Result<Seen> {
        let mut link = self.link.lock();
        let l = &mut *link;
        let seen = l.cache.lookup(hdr.seq, max_pending)?;
        if matches!(seen, Seen::Answered) && l.gen == gen {
            if let (Some(c), Some((_, tx))) = (l.cache.get(hdr.seq), l.conn.as_mut()) {
                send_reply(tx, self.id, c.rpid, c.seq, c.signals, &c.body)?;
            }
        }
        Ok(seen)
    }

    /// Forgets the pending request `seq` that will get no reply.
    pub(crate) fn unpend(&self, seq: u64) {
        self.link.lock().cache.unpend(seq);
    }

    /// Answers request `seq` of process `rpid` with `body`, after `signals` (bit `n` for
    /// `SERVER_SIGNAL` `n`): records it (answered, cached) and sends it when the session is
    /// connected. Never fails: a lost reply is sent again from the cache when the client
    /// re-sends the request.
    pub(crate) fn reply(&self, rpid: u32, seq: u64, body: &[u8], signals: u32) {
        let mut copy = KVVec::new();
        let entry = copy
            .extend_from_slice(body, GFP_KERNEL)
            .ok()
            .map(|()| Cached {
                seq,
                rpid,
                signals,
                body: copy,
            });
        let mut link = self.link.lock();
        let l = &mut *link;
        if l.ended {
            return;
        }
        l.marks.answered(seq);
        if !l.cache.insert(seq, entry) {
            pr_notice!(
                "session {}: no memory to cache the reply of seq {}: a re-send is refused\n",
                self.id,
                seq
            );
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
        l.marks.start()
    }

    /// Flusher, after its sync: sends `SERVER_FLUSHED` when the sync succeeded and covers
    /// more than the last one, or when the verifier changed (a writeback error: nothing new
    /// is acked). Returns whether a frame went out.
    pub(crate) fn sync_done(&self, ok: bool, verifier: u64) -> bool {
        let mut link = self.link.lock();
        let l = &mut *link;
        let Some(up_to) = l.marks.finish(ok, verifier) else {
            return false;
        };
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
        l.marks.sent(up_to, verifier);
        true
    }

    /// This session's line of the `state` file (it has `shadows` shadows).
    pub(crate) fn show(&self, f: &mut fmt::Formatter<'_>, shadows: usize) -> fmt::Result {
        let keeper = self.keeper.running().unwrap_or(0);
        let l = self.link.lock();
        writeln!(
            f,
            "session id={} peer={} connected={} resumes={} shadows={} keeper={} answered={} acked={} pending={} cached={} frames_in={} frames_out={} bytes_in={} bytes_out={}",
            self.id,
            self.peer.addr(),
            u8::from(l.conn.is_some()),
            self.resumes.load(Relaxed),
            shadows,
            keeper,
            l.marks.answered_max(),
            l.marks.acked,
            l.cache.pending(),
            l.cache.len(),
            self.stats.frames_in.load(Relaxed),
            self.stats.frames_out.load(Relaxed),
            self.stats.bytes_in.load(Relaxed),
            self.stats.bytes_out.load(Relaxed),
        )
    }
}
