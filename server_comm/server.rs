// SPDX-License-Identifier: GPL-2.0

//! Module state: configuration, the session registry, counters, and their sysfs view
//! (debugfs: the test controls).
//!
//! Lock order: `Shared::inner` → `Session::link` (see `session.rs`) and
//! `Shared::inner` → `Shadow::inner` (see `shadow.rs`); `Session::link` and
//! `Shadow::inner` are never held together.

use core::fmt;
use kernel::{
    debugfs,
    miscdevice::{MiscDeviceOptions, MiscDeviceRegistration},
    new_mutex,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, Mutex,
    },
    uaccess::UserSliceReader,
    xarray::{AllocKind, XArray},
};

use crate::auth::may_log_refusal;
use crate::faults::Faults;
use crate::latency::Latency;
use crate::proto::calls::Refusal;
use crate::proto::msg::Hello;
use crate::proto::peer::Peer;
use crate::session::{Greeting, Session};
use crate::shadow::{self, Shadow, ShadowFile};
use crate::sysfs::{self, FileSpec};
use crate::transport::{check_link_params, random_u64, OwnedQueue, Socket, Stats};
use crate::{flusher, listener, module_parameters as params};

/// Settings taken from the module parameters at load time.
pub(crate) struct Config {
    pub(crate) port: u32,
    /// TCP port to listen on too (0: none).
    pub(crate) tcp_port: u32,
    pub(crate) heartbeat_ms: u32,
    pub(crate) max_frame: u32,
    pub(crate) split: usize,
    pub(crate) max_sessions: usize,
    pub(crate) flush_ms: u32,
    pub(crate) flush_dirty_bytes: u64,
    pub(crate) resume_ms: u32,
    pub(crate) reply_cache: usize,
    pub(crate) reply_cache_bytes: usize,
    /// Per session: requests queued or running, and shadows.
    pub(crate) max_pending: usize,
    pub(crate) max_shadows: usize,
    /// Per session: shadow threads besides each shadow's first (per shadow too: lanes).
    pub(crate) max_shadow_threads: usize,
    /// Per session: MiB of memory its shadows' cgroup may use (0: no limit).
    pub(crate) session_memory_mb: u32,
    /// Per shadow: bytes of queued request bodies.
    pub(crate) max_queued_bytes: usize,
    /// Admit clients from any source port, not only reserved ones.
    pub(crate) insecure: bool,
    /// A connection's handshake must be done within this many ms.
    pub(crate) handshake_ms: u32,
    /// Most connections before their `HELLO` at once.
    pub(crate) max_handshakes: u32,
    /// Most sessions of one CID.
    pub(crate) max_sessions_per_cid: usize,
    /// The shared key (`key_file=`); `None` with `no_auth=1`.
    pub(crate) key: Option<crate::auth::Key>,
}

impl Config {
    fn from_params() -> Result<Self> {
        let c = Self {
            port: params::port.value(),
            tcp_port: params::tcp_port.value(),
            heartbeat_ms: params::heartbeat_ms.value(),
            max_frame: params::max_frame.value(),
            split: params::split.value() as usize,
            max_sessions: params::max_sessions.value() as usize,
            flush_ms: params::flush_ms.value(),
            flush_dirty_bytes: u64::from(params::flush_dirty_kb.value()).saturating_mul(1024),
            resume_ms: params::resume_ms.value(),
            reply_cache: params::reply_cache.value() as usize,
            reply_cache_bytes: (params::reply_cache_kb.value() as usize).saturating_mul(1024),
            max_pending: params::max_pending.value() as usize,
            max_shadows: params::max_shadows.value() as usize,
            max_shadow_threads: params::max_shadow_threads.value() as usize,
            session_memory_mb: params::session_memory_mb.value(),
            max_queued_bytes: (params::max_queued_kb.value() as usize).saturating_mul(1024),
            insecure: params::insecure.value(),
            handshake_ms: params::handshake_ms.value(),
            max_handshakes: params::max_handshakes.value(),
            max_sessions_per_cid: params::max_sessions_per_cid.value() as usize,
            key: None,
        };
        check_link_params(c.max_frame, c.split, c.heartbeat_ms)?;
        if !(10..=600000).contains(&c.flush_ms) {
            pr_err!("flush_ms={} is outside 10..=600000\n", c.flush_ms);
            return Err(EINVAL);
        }
        if c.resume_ms > 3_600_000 {
            pr_err!("resume_ms={} is above 3600000\n", c.resume_ms);
            return Err(EINVAL);
        }
        if !(1..=65536).contains(&c.reply_cache) {
            pr_err!("reply_cache={} is outside 1..=65536\n", c.reply_cache);
            return Err(EINVAL);
        }
        for (name, v) in [
            ("max_pending", c.max_pending),
            ("max_shadows", c.max_shadows),
        ] {
            if !(1..=1 << 20).contains(&v) {
                pr_err!("{}={} is outside 1..=1048576\n", name, v);
                return Err(EINVAL);
            }
        }
        if c.max_shadow_threads > 65536 {
            pr_err!(
                "max_shadow_threads={} is above 65536\n",
                c.max_shadow_threads
            );
            return Err(EINVAL);
        }
        if c.session_memory_mb > 1 << 22 {
            pr_err!(
                "session_memory_mb={} is above 4194304\n",
                c.session_memory_mb
            );
            return Err(EINVAL);
        }
        if !(100..=60000).contains(&c.handshake_ms) {
            pr_err!("handshake_ms={} is outside 100..=60000\n", c.handshake_ms);
            return Err(EINVAL);
        }
        if !(1..=1024).contains(&c.max_handshakes) {
            pr_err!("max_handshakes={} is outside 1..=1024\n", c.max_handshakes);
            return Err(EINVAL);
        }
        if !(1..=c.max_sessions.max(1)).contains(&c.max_sessions_per_cid) {
            pr_err!(
                "max_sessions_per_cid={} is outside 1..=max_sessions ({})\n",
                c.max_sessions_per_cid,
                c.max_sessions
            );
            return Err(EINVAL);
        }
        if c.tcp_port > u32::from(u16::MAX) {
            pr_err!("tcp_port={} is above 65535\n", c.tcp_port);
            return Err(EINVAL);
        }
        if c.insecure {
            pr_warn!("insecure=1: clients are admitted from any source port, also unprivileged processes\n");
        }
        // Last: every other parameter is fine.
        let key = crate::auth::Key::load(params::no_auth.value())?;
        if c.tcp_port != 0 && key.is_none() {
            // Anyone on the network can reach a TCP port: only the key tells clients apart.
            pr_err!("tcp_port= needs the shared key (key_file=), not no_auth=1\n");
            return Err(EINVAL);
        }
        Ok(Self { key, ..c })
    }
}

/// The fields [`Shared::inner`] guards.
pub(crate) struct Inner {
    /// Sessions: connected, or kept for resumption.
    sessions: KVec<Arc<Session>>,
    /// Shadows of the client processes of every session.
    pub(crate) shadows: KVec<Arc<Shadow>>,
    /// Id of the next session.
    next_id: u32,
    /// Set once at unload: no session may be added afterwards.
    pub(crate) stopping: bool,
}

/// State shared by the listener, every session, the flusher and the sysfs view.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Random at every load, and again after a writeback error: a client seeing a new value
    /// sends again whatever it retained (see `flusher.rs`).
    pub(crate) boot_verifier: Atomic<u64>,
    /// Traffic of all sessions.
    pub(crate) totals: Arc<Stats>,
    /// Connections accepted from allowed CIDs.
    pub(crate) accepted: Atomic<u64>,
    /// Connections refused (CID not allowed, too many sessions).
    pub(crate) rejected: Atomic<u64>,
    /// Connections dropped for breaking the protocol.
    pub(crate) bad_frames: Atomic<u64>,
    /// Connections refused for their source port (not reserved).
    pub(crate) port_refusals: Atomic<u64>,
    /// Handshakes refused for a missing, wrong or replayed MAC.
    pub(crate) auth_failures: Atomic<u64>,
    /// Connections refused at a limit (connections before `HELLO`, sessions per CID, all
    /// sessions) or for a handshake not done within `handshake_ms`.
    pub(crate) limit_refusals: Atomic<u64>,
    /// `CLIENT_ATTRS` refused (ids outside the CID's ranges).
    pub(crate) attrs_refused: Atomic<u64>,
    /// Connections accepted that have not finished their handshake.
    pub(crate) handshaking: Atomic<i32>,
    /// Who may connect, their export roots and id policy.
    #[pin]
    pub(crate) exports: crate::exports::Exports,
    /// Sessions dropped because the client fell silent.
    pub(crate) heartbeat_misses: Atomic<u64>,
    /// Per-call time in the shadows (the `calls` file).
    pub(crate) latency: Latency,
    /// Sessions resumed by their client.
    pub(crate) resumed: Atomic<u64>,
    /// Sessions ended because their client did not come back within `resume_ms`.
    pub(crate) expired: Atomic<u64>,
    /// Re-sent requests answered from a reply cache.
    pub(crate) cache_hits: Atomic<u64>,
    /// Re-sent requests that were still queued or running (not queued again).
    pub(crate) dup_pending: Atomic<u64>,
    /// Request bytes received since the last sync (the flusher's dirty estimate).
    pub(crate) dirty: Atomic<u64>,
    /// Syncs of the export root done, and failed.
    pub(crate) syncs: Atomic<u64>,
    pub(crate) sync_errors: Atomic<u64>,
    /// `SERVER_FLUSHED` frames sent.
    pub(crate) flushed_sent: Atomic<u64>,
    /// How long the flusher's last sync of the export root took, in µs.
    pub(crate) last_flush_us: Atomic<u64>,
    /// Test knob (debugfs `control`: `fail_flush`): the next sync counts as failed.
    pub(crate) inject_sync_error: Atomic<bool>,
    /// Debugfs `control`: `flush` asks for a sync now.
    pub(crate) flush_now: Atomic<bool>,
    /// Requests refused by the limits or the call table.
    pub(crate) refused: Atomic<u64>,
    /// Test knobs: the armed fault point, `hold_flush` (`faults.rs`).
    #[pin]
    pub(crate) faults: Faults,
    /// Copy of [`Shared::inner`]'s `stopping`, readable without the lock.
    stopping: Atomic<bool>,
    /// Every registered shadow by its token (see `shadows.rs`).
    #[pin]
    pub(crate) by_token: XArray<Arc<Shadow>>,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
}

impl Shared {
    /// Whether the module is being unloaded.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    /// The current boot verifier.
    pub(crate) fn verifier(&self) -> u64 {
        self.boot_verifier.load(Relaxed)
    }

    /// Counts a refused request; whether a notice may be printed now (the kernel's
    /// rate limit for refusals, `auth.rs`: a flood prints a few lines, not one per request).
    fn refuse_and_may_print(&self) -> bool {
        self.refused.add(1, Relaxed);
        may_log_refusal()
    }

    /// A request of session `s` refused by limit `what` (`limit`): counted, and one
    /// rate-limited dmesg line.
    pub(crate) fn limit_notice(&self, s: &Session, what: &str, limit: usize) {
        if self.refuse_and_may_print() {
            pr_notice!(
                "session {} ({}): more than {} {}: refused with EAGAIN (rate-limited)\n",
                s.id,
                s.peer,
                limit,
                what
            );
        }
    }

    /// A call of process `rpid` of session `s` refused by the call table: counted, and one
    /// rate-limited dmesg line.
    pub(crate) fn refusal_notice(&self, s: &Session, rpid: u32, nr: u32, r: Refusal) {
        if self.refuse_and_may_print() {
            pr_notice!(
                "session {} ({}) pid {}: call {:#x} refused ({:?}, errno {}) (rate-limited)\n",
                s.id,
                s.peer,
                rpid,
                nr,
                r,
                r.errno()
            );
        }
    }

    /// Gives the connection `sock` from `peer`, which said `hello`, its session: the one
    /// `hello` resumes when it names a session of the same client instance and peer that
    /// has not ended, else a new one (unless the module is stopping: `ESHUTDOWN`, or
    /// `max_sessions` exist: `EBUSY`, or `max_sessions_per_cid` of `peer`: `EUSERS`). Sends
    /// the greeting's `WELCOME` (session id, flags and MAC filled in) before any reply of
    /// the session can go out on the new connection. Returns the
    /// session, the connection's generation and whether it was resumed.
    pub(crate) fn attach(
        &self,
        hello: &Hello,
        peer: Peer,
        sock: &Arc<Socket>,
        greeting: &Greeting<'_>,
    ) -> Result<(Arc<Session>, u64, bool)> {
        let mut inner = self.inner.lock();
        if inner.stopping {
            return Err(ESHUTDOWN);
        }
        if hello.resume_session != 0 && hello.instance != 0 {
            if let Some(s) = inner.sessions.iter().find(|s| {
                s.id == hello.resume_session && s.peer == peer && s.instance == hello.instance
            }) {
                let gen = s.connect(self, sock, hello, greeting, true)?;
                self.resumed.add(1, Relaxed);
                return Ok((s.clone(), gen, true));
            }
            pr_info!(
                "{} asked to resume session {}, which this server does not have: new session\n",
                peer,
                hello.resume_session
            );
        }
        if inner.sessions.len() >= self.config.max_sessions {
            return Err(EBUSY);
        }
        if inner.sessions.iter().filter(|s| s.peer == peer).count()
            >= self.config.max_sessions_per_cid
        {
            return Err(EUSERS);
        }
        inner.next_id = inner.next_id.wrapping_add(1).max(1);
        let s = Session::new(
            inner.next_id,
            peer,
            hello.instance,
            hello.resume_session != 0 && hello.instance != 0,
            self.config.reply_cache,
            self.config.reply_cache_bytes,
        )?;
        inner.sessions.push(s.clone(), GFP_KERNEL)?;
        let gen = s.connect(self, sock, hello, greeting, false)?;
        Ok((s, gen, false))
    }

    /// Ends session `s` for good when connection `gen` is still its current one (else a
    /// newer connection took the session over): its shadows exit, it is forgotten.
    pub(crate) fn end_session(&self, s: &Arc<Session>, gen: Option<u64>) {
        if !s.end(gen) {
            return;
        }
        self.end_shadows(s.id);
        self.exports.forget_session(s.id);
        s.keeper.kill();
        let mut inner = self.inner.lock();
        if let Some(i) = inner.sessions.iter().position(|x| Arc::ptr_eq(x, s)) {
            let _ = inner.sessions.remove(i);
        }
    }

    /// Ends the sessions whose client has not come back within `resume_ms`.
    pub(crate) fn expire_sessions(&self) {
        let limit = i64::from(self.config.resume_ms);
        let mut old = KVec::new();
        for s in self.inner.lock().sessions.iter() {
            if s.detached_ms().is_some_and(|ms| ms >= limit)
                && old.push(s.clone(), GFP_KERNEL).is_err()
            {
                break;
            }
        }
        for s in old.iter() {
            pr_info!(
                "session {} ({}) not resumed within {} ms: ended, its shadows exit\n",
                s.id,
                s.peer,
                limit
            );
            self.expired.add(1, Relaxed);
            self.end_session(s, None);
        }
    }

    /// A snapshot of the sessions.
    pub(crate) fn sessions(&self) -> KVec<Arc<Session>> {
        let mut out = KVec::new();
        for s in self.inner.lock().sessions.iter() {
            if out.push(s.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        out
    }

    /// Stops accepting sessions, shuts every session's socket down, tells every shadow to
    /// exit, forgets the sessions kept for resumption.
    fn stop(&self) {
        let mut inner = self.inner.lock();
        inner.stopping = true;
        self.stopping.store(true, Relaxed);
        for s in inner.sessions.iter() {
            s.shutdown();
            s.keeper.kill();
        }
        for s in inner.shadows.iter() {
            s.exit();
        }
        inner.sessions.clear();
    }

    /// The `exports` file (read).
    fn show_exports(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        this.exports.show(f)
    }

    /// The `exports` file (write: one entry, `del CID` or `clear`).
    fn apply_exports(this: &Arc<Shared>, line: &[u8]) -> Result {
        this.exports.apply(line)
    }

    /// The `calls` file ([`Latency::show`]).
    fn show_calls(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        this.latency.show(f)
    }

    /// The `state` file.
    fn show(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &this.config;
        writeln!(f, "port={}", c.port)?;
        writeln!(f, "tcp_port={}", c.tcp_port)?;
        writeln!(f, "boot_verifier={:#018x}", this.verifier())?;
        writeln!(f, "heartbeat_ms={}", c.heartbeat_ms)?;
        writeln!(f, "max_frame={}", c.max_frame)?;
        writeln!(f, "split={}", c.split)?;
        writeln!(f, "flush_ms={}", c.flush_ms)?;
        writeln!(f, "resume_ms={}", c.resume_ms)?;
        writeln!(f, "auth={}", u8::from(c.key.is_some()))?;
        writeln!(f, "insecure={}", u8::from(c.insecure))?;
        writeln!(f, "handshaking={}", this.handshaking.load(Relaxed))?;
        writeln!(f, "denied_processes={}", this.exports.denied())?;
        this.faults.show(f)?;
        for (k, v) in [
            ("resumed", &this.resumed),
            ("expired", &this.expired),
            ("cache_hits", &this.cache_hits),
            ("dup_pending", &this.dup_pending),
            ("syncs", &this.syncs),
            ("sync_errors", &this.sync_errors),
            ("flushed_sent", &this.flushed_sent),
            ("last_flush_us", &this.last_flush_us),
            ("refused", &this.refused),
            ("port_refusals", &this.port_refusals),
            ("auth_failures", &this.auth_failures),
            ("limit_refusals", &this.limit_refusals),
            ("attrs_refused", &this.attrs_refused),
        ] {
            writeln!(f, "{}={}", k, v.load(Relaxed))?;
        }
        let inner = this.inner.lock();
        writeln!(f, "sessions={}", inner.sessions.len())?;
        writeln!(
            f,
            "detached={}",
            inner
                .sessions
                .iter()
                .filter(|s| s.detached_ms().is_some())
                .count()
        )?;
        writeln!(f, "shadows={}", inner.shadows.len())?;
        writeln!(f, "accepted={}", this.accepted.load(Relaxed))?;
        writeln!(f, "rejected={}", this.rejected.load(Relaxed))?;
        writeln!(f, "bad_frames={}", this.bad_frames.load(Relaxed))?;
        writeln!(
            f,
            "heartbeat_misses={}",
            this.heartbeat_misses.load(Relaxed)
        )?;
        this.totals.show(f)?;
        for s in inner.sessions.iter() {
            let n = inner.shadows.iter().filter(|x| x.session == s.id).count();
            s.show(f, n)?;
            for shadow in inner.shadows.iter().filter(|x| x.session == s.id) {
                shadow.show(f)?;
            }
        }
        Ok(())
    }

    /// The debugfs `control` file: `drop_link [ID]` closes the connection of session ID
    /// (every session without ID) as a network failure would; `end_session ID` ends
    /// session ID now (its shadows exit: a session kept for resumption keeps the module
    /// busy through its shadows' open device files, so unload needs this first); `flush`
    /// runs the flusher now; `fail_flush` makes the next sync count as a writeback error.
    /// Test knobs (`faults.rs`, docs/DESIGN.md §3.5): `crash_at POINT CALL [N]` arms fault
    /// point POINT (`on_receive`, `before_reply` alias `after_exec`/`after_commit`,
    /// `after_reply`, `in_flush`, `in_redo`, `in_replay`) for call CALL (a name from the
    /// call table, or `any`): the Nth matching event (default 1) resets the machine as a
    /// power cut would; `crash_at off` disarms it; `hold_flush on|off` stops and restarts
    /// the flusher's periodic rounds (`flush` and `fail_flush` still run one).
    fn control(this: &Arc<Shared>, reader: &mut UserSliceReader) -> Result {
        let mut buf = [0u8; 64];
        let n = reader.len();
        let dst = buf.get_mut(..n).ok_or(EINVAL)?;
        reader.read_slice(dst)?;
        let text = core::str::from_utf8(dst).map_err(|_| EINVAL)?.trim();
        let (cmd, arg) = text.split_once(' ').unwrap_or((text, ""));
        match cmd {
            "drop_link" => {
                let id: Option<u32> = match arg.trim() {
                    "" => None,
                    a => Some(a.parse().map_err(|_| EINVAL)?),
                };
                let mut dropped = 0u32;
                for s in this.sessions().iter() {
                    if id.is_none_or(|id| id == s.id) && s.shutdown() {
                        pr_notice!(
                            "session {} ({}): connection closed on request (debugfs drop_link)\n",
                            s.id,
                            s.peer
                        );
                        dropped = dropped.saturating_add(1);
                    }
                }
                if dropped == 0 {
                    return Err(ENOENT);
                }
            }
            "end_session" => {
                let id: u32 = arg.trim().parse().map_err(|_| EINVAL)?;
                let s = this
                    .sessions()
                    .into_iter()
                    .find(|s| s.id == id)
                    .ok_or(ENOENT)?;
                pr_info!(
                    "session {} ({}) ended on request (debugfs end_session)\n",
                    s.id,
                    s.peer
                );
                s.shutdown();
                this.end_session(&s, None);
            }
            "crash_at" => {
                let mut words: KVec<&str> = KVec::new();
                for w in arg.split_ascii_whitespace() {
                    words.push(w, GFP_KERNEL)?;
                }
                this.faults.arm(&words)?;
            }
            "hold_flush" => {
                let on = match arg.trim() {
                    "on" | "1" => true,
                    "off" | "0" => false,
                    _ => return Err(EINVAL),
                };
                this.faults.hold_flush.store(on, Relaxed);
                pr_notice!(
                    "hold_flush {}: the flusher {} (debugfs control)\n",
                    if on { "on" } else { "off" },
                    if on { "does no rounds" } else { "runs again" }
                );
            }
            "flush" => this.flush_now.store(true, Relaxed),
            "fail_flush" => {
                this.inject_sync_error.store(true, Relaxed);
                this.flush_now.store(true, Relaxed);
            }
            _ => return Err(EINVAL),
        }
        Ok(())
    }
}

/// The files of `/sys/kernel/tether_server`: the stable view `tetherctl` uses.
const SYSFS_FILES: [FileSpec<Arc<Shared>>; 3] = [
    FileSpec::read(c"state", Shared::show),
    FileSpec::read(c"calls", Shared::show_calls),
    FileSpec::read_write(c"exports", Shared::show_exports, Shared::apply_exports),
];

/// The loaded module.
///
/// Field order is drop order: the sysfs view and the debugfs control file go first, the
/// debugfs directory last.
pub(crate) struct TetherServer {
    _shadow_dev: Pin<KBox<MiscDeviceRegistration<ShadowFile>>>,
    _sysfs: sysfs::Dir<Arc<Shared>>,
    _control_file: Pin<KBox<debugfs::File<Arc<Shared>>>>,
    shared: Arc<Shared>,
    listener: Arc<Socket>,
    /// The TCP listener (`tcp_port=`).
    tcp_listener: Option<Arc<Socket>>,
    queue: Option<OwnedQueue>,
    /// Dropped after `queue` (whose flusher syncs through it).
    _root: flusher::RootFile,
    _dir: debugfs::Dir,
}

impl kernel::Module for TetherServer {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let config = Config::from_params()?;
        let (port, tcp_port) = (config.port, config.tcp_port);
        let exports = crate::exports::Exports::new()?;
        let root = flusher::RootFile::open()
            .inspect_err(|e| pr_err!("cannot open the export root (root=): {:?}\n", e))?;
        let totals = Arc::new(Stats::new(), GFP_KERNEL)?;
        let shared = Arc::pin_init(
            pin_init!(Shared {
                config,
                boot_verifier: Atomic::new(random_u64()),
                totals,
                accepted: Atomic::new(0),
                rejected: Atomic::new(0),
                bad_frames: Atomic::new(0),
                port_refusals: Atomic::new(0),
                auth_failures: Atomic::new(0),
                limit_refusals: Atomic::new(0),
                attrs_refused: Atomic::new(0),
                handshaking: Atomic::new(0),
                exports <- exports,
                heartbeat_misses: Atomic::new(0),
                latency: Latency::new(),
                resumed: Atomic::new(0),
                expired: Atomic::new(0),
                cache_hits: Atomic::new(0),
                dup_pending: Atomic::new(0),
                dirty: Atomic::new(0),
                syncs: Atomic::new(0),
                sync_errors: Atomic::new(0),
                flushed_sent: Atomic::new(0),
                last_flush_us: Atomic::new(0),
                inject_sync_error: Atomic::new(false),
                flush_now: Atomic::new(false),
                refused: Atomic::new(0),
                faults <- Faults::new(),
                stopping: Atomic::new(false),
                by_token <- XArray::new(AllocKind::Alloc),
                inner <- new_mutex!(
                    Inner {
                        sessions: KVec::new(),
                        shadows: KVec::new(),
                        next_id: 0,
                        stopping: false
                    },
                    "Shared::inner"
                ),
            }),
            GFP_KERNEL,
        )?;
        shared.faults.arm_from_param()?;
        let listener = Arc::new(
            Socket::listen(port, 16, false)
                .inspect_err(|e| pr_err!("cannot listen on vsock port {}: {:?}\n", port, e))?,
            GFP_KERNEL,
        )?;
        let tcp_listener = match tcp_port {
            0 => None,
            p => Some(Arc::new(
                Socket::listen(p, 16, true)
                    .inspect_err(|e| pr_err!("cannot listen on TCP port {}: {:?}\n", p, e))?,
                GFP_KERNEL,
            )?),
        };
        let queue = OwnedQueue::new(c"tether_server")?;
        let dir = debugfs::Dir::new(c"tether_server");
        let control_file = KBox::pin_init(
            dir.write_callback_file(c"control", shared.clone(), &Shared::control),
            GFP_KERNEL,
        )?;
        let sysfs = sysfs::Dir::new(c"tether_server", shared.clone(), &SYSFS_FILES)?;
        shadow::SHARED.publish(Some(shared.clone()));
        let shadow_dev = KBox::pin_init(
            MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"tether_shadow",
            }),
            GFP_KERNEL,
        )
        .inspect_err(|_| shadow::SHARED.publish(None))?;
        let sh = shared.clone();
        if let Err(e) = queue
            .queue()
            .try_spawn(GFP_KERNEL, move || flusher::run(sh))
        {
            shadow::SHARED.publish(None);
            return Err(e.into());
        }
        for l in [Some(&listener), tcp_listener.as_ref()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = listener::start(&queue, shared.clone(), l.clone()) {
                shadow::SHARED.publish(None);
                shared.stop();
                return Err(e);
            }
        }
        if tcp_port != 0 {
            pr_info!("listening on TCP port {} too\n", tcp_port);
        }
        pr_info!(
            "listening on vsock port {}, boot verifier {:#x}\n",
            port,
            shared.verifier()
        );
        Ok(Self {
            _shadow_dev: shadow_dev,
            _sysfs: sysfs,
            _control_file: control_file,
            shared,
            listener,
            tcp_listener,
            queue: Some(queue),
            _root: root,
            _dir: dir,
        })
    }
}

impl Drop for TetherServer {
    fn drop(&mut self) {
        self.shared.stop();
        self.listener.shutdown();
        if let Some(l) = &self.tcp_listener {
            l.shutdown();
        }
        // Waits for the listener and every session to return.
        drop(self.queue.take());
        shadow::SHARED.publish(None);
        pr_info!("unloaded\n");
    }
}
