// SPDX-License-Identifier: GPL-2.0

//! Module state: configuration, the session registry, counters and the debugfs view.
//!
//! Lock order: `Shared::inner` → `Shadow::inner` (see `shadow.rs`).

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
};

use crate::shadow::{self, Shadow, ShadowFile};
use crate::transport::{check_link_params, random_u64, OwnedQueue, Sender, Socket, Stats};
use crate::{listener, module_parameters as params};

/// Settings taken from the module parameters at load time.
pub(crate) struct Config {
    pub(crate) port: u32,
    pub(crate) heartbeat_ms: u32,
    pub(crate) max_frame: u32,
    pub(crate) split: usize,
    pub(crate) max_sessions: usize,
}

impl Config {
    fn from_params() -> Result<Self> {
        let c = Self {
            port: params::port.value(),
            heartbeat_ms: params::heartbeat_ms.value(),
            max_frame: params::max_frame.value(),
            split: params::split.value() as usize,
            max_sessions: params::max_sessions.value() as usize,
        };
        check_link_params(c.max_frame, c.split)?;
        if !(10..=60000).contains(&c.heartbeat_ms) {
            pr_err!("heartbeat_ms={} is outside 10..=60000\n", c.heartbeat_ms);
            return Err(EINVAL);
        }
        Ok(c)
    }
}

/// One connected client.
pub(crate) struct Session {
    pub(crate) id: u32,
    pub(crate) cid: u32,
    pub(crate) sock: Arc<Socket>,
    pub(crate) stats: Arc<Stats>,
}

/// The fields [`Shared::inner`] guards.
struct Inner {
    /// Sessions being served.
    sessions: KVec<Arc<Session>>,
    /// Shadows of the client processes of every session.
    shadows: KVec<Arc<Shadow>>,
    /// Id of the next session.
    next_id: u32,
    /// Set once at unload: no session may be added afterwards.
    stopping: bool,
}

/// State shared by the listener, every session and the debugfs view.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Random at every load: tells clients that all session state is new.
    pub(crate) boot_verifier: u64,
    /// Traffic of all sessions.
    pub(crate) totals: Arc<Stats>,
    /// Connections accepted from allowed CIDs.
    pub(crate) accepted: Atomic<u64>,
    /// Connections refused (CID not allowed, too many sessions).
    pub(crate) rejected: Atomic<u64>,
    /// Connections dropped for breaking the protocol.
    pub(crate) bad_frames: Atomic<u64>,
    /// Sessions dropped because the client fell silent.
    pub(crate) heartbeat_misses: Atomic<u64>,
    /// Copy of [`Shared::inner`]'s `stopping`, readable without the lock.
    stopping: Atomic<bool>,
    #[pin]
    inner: Mutex<Inner>,
}

impl Shared {
    /// Whether the module is being unloaded.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    /// Registers a new session for `sock` from `cid`, unless the module is stopping or
    /// `max_sessions` are being served.
    pub(crate) fn add_session(&self, sock: Arc<Socket>, cid: u32) -> Result<Arc<Session>> {
        let mut inner = self.inner.lock();
        if inner.stopping {
            return Err(ESHUTDOWN);
        }
        if inner.sessions.len() >= self.config.max_sessions {
            return Err(EBUSY);
        }
        inner.next_id = inner.next_id.wrapping_add(1).max(1);
        let session = Arc::new(
            Session {
                id: inner.next_id,
                cid,
                sock,
                stats: Arc::new(Stats::new(), GFP_KERNEL)?,
            },
            GFP_KERNEL,
        )?;
        inner.sessions.push(session.clone(), GFP_KERNEL)?;
        Ok(session)
    }

    /// Forgets session `id`.
    pub(crate) fn remove_session(&self, id: u32) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.sessions.iter().position(|s| s.id == id) {
            let _ = inner.sessions.remove(i);
        }
    }

    /// Stops accepting sessions, shuts every session's socket down, tells every shadow to
    /// exit.
    fn stop(&self) {
        let mut inner = self.inner.lock();
        inner.stopping = true;
        self.stopping.store(true, Relaxed);
        for s in inner.sessions.iter() {
            s.sock.shutdown();
        }
        for s in inner.shadows.iter() {
            s.exit();
        }
    }

    /// Registers a new shadow for process `rpid` of `session` (replies go out on `tx`):
    /// `Ok(Err(existing))` when it has one already.
    fn add_shadow(
        &self,
        session: u32,
        rpid: u32,
        tx: &Arc<Mutex<Sender>>,
    ) -> Result<core::result::Result<Arc<Shadow>, Arc<Shadow>>> {
        let mut inner = self.inner.lock();
        if let Some(s) = inner
            .shadows
            .iter()
            .find(|s| s.session == session && s.rpid == rpid)
        {
            return Ok(Err(s.clone()));
        }
        if inner.stopping {
            return Err(ESHUTDOWN);
        }
        let shadow = Shadow::new(session, rpid, random_u64(), tx.clone())?;
        inner.shadows.push(shadow.clone(), GFP_KERNEL)?;
        Ok(Ok(shadow))
    }

    /// The shadow of process `rpid` of `session`; started when there is none yet.
    pub(crate) fn shadow_for(
        &self,
        session: u32,
        rpid: u32,
        tx: &Arc<Mutex<Sender>>,
    ) -> Result<Arc<Shadow>> {
        let shadow = match self.add_shadow(session, rpid, tx)? {
            Ok(new) => new,
            Err(existing) => return Ok(existing),
        };
        if let Err(e) = shadow::spawn(&shadow) {
            pr_err!(
                "cannot start a shadow for session {} pid {}: {:?}\n",
                session,
                rpid,
                e
            );
            self.remove_shadow(&shadow);
            return Err(e);
        }
        Ok(shadow)
    }

    /// Registers the shadow of a child process `rpid` of `session`, whose process the
    /// parent's shadow will fork.
    pub(crate) fn add_forked_shadow(
        &self,
        session: u32,
        rpid: u32,
        tx: &Arc<Mutex<Sender>>,
    ) -> Result<Arc<Shadow>> {
        self.add_shadow(session, rpid, tx)?.map_err(|_| EEXIST)
    }

    /// The shadow of process `rpid` of `session`, if it has one.
    pub(crate) fn find_process(&self, session: u32, rpid: u32) -> Option<Arc<Shadow>> {
        self.inner
            .lock()
            .shadows
            .iter()
            .find(|s| s.session == session && s.rpid == rpid)
            .cloned()
    }

    /// The shadow started with `token`.
    pub(crate) fn find_shadow(&self, token: u64) -> Option<Arc<Shadow>> {
        self.inner
            .lock()
            .shadows
            .iter()
            .find(|s| s.token == token)
            .cloned()
    }

    /// Forgets `shadow`.
    pub(crate) fn remove_shadow(&self, shadow: &Arc<Shadow>) {
        let mut inner = self.inner.lock();
        if let Some(i) = inner.shadows.iter().position(|s| Arc::ptr_eq(s, shadow)) {
            let _ = inner.shadows.remove(i);
        }
    }

    /// Fails the requests of every shadow of `session` whose process died, and forgets it.
    pub(crate) fn reap_shadows(&self, session: u32) {
        let mut dead = KVec::new();
        for s in self
            .inner
            .lock()
            .shadows
            .iter()
            .filter(|s| s.session == session)
        {
            if s.is_dead() && dead.push(s.clone(), GFP_KERNEL).is_err() {
                break;
            }
        }
        for s in dead.iter() {
            pr_notice!(
                "shadow of client pid {} (session {}) died: its calls fail with EIO\n",
                s.rpid,
                s.session
            );
            s.fail_all(kernel::bindings::EIO);
        }
    }

    /// Tells every shadow of `session` to exit (the client is gone).
    pub(crate) fn end_shadows(&self, session: u32) {
        let mut inner = self.inner.lock();
        for s in inner.shadows.iter().filter(|s| s.session == session) {
            s.exit();
        }
        // Dead shadows have no process left to notice.
        inner
            .shadows
            .retain(|s| s.session != session || !s.is_gone());
    }

    /// The debugfs `state` file.
    fn show(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &this.config;
        writeln!(f, "port={}", c.port)?;
        writeln!(f, "boot_verifier={:#018x}", this.boot_verifier)?;
        writeln!(f, "heartbeat_ms={}", c.heartbeat_ms)?;
        writeln!(f, "max_frame={}", c.max_frame)?;
        writeln!(f, "split={}", c.split)?;
        let inner = this.inner.lock();
        writeln!(f, "sessions={}", inner.sessions.len())?;
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
            writeln!(
                f,
                "session id={} cid={} frames_in={} frames_out={} bytes_in={} bytes_out={}",
                s.id,
                s.cid,
                s.stats.frames_in.load(Relaxed),
                s.stats.frames_out.load(Relaxed),
                s.stats.bytes_in.load(Relaxed),
                s.stats.bytes_out.load(Relaxed),
            )?;
        }
        Ok(())
    }
}

/// The loaded module.
///
/// Field order is drop order: the debugfs view goes first, the directory last.
pub(crate) struct TetherServer {
    _shadow_dev: Pin<KBox<MiscDeviceRegistration<ShadowFile>>>,
    _state_file: Pin<KBox<debugfs::File<Arc<Shared>>>>,
    shared: Arc<Shared>,
    listener: Arc<Socket>,
    queue: Option<OwnedQueue>,
    _dir: debugfs::Dir,
}

impl kernel::Module for TetherServer {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let config = Config::from_params()?;
        let port = config.port;
        let totals = Arc::new(Stats::new(), GFP_KERNEL)?;
        let shared = Arc::pin_init(
            pin_init!(Shared {
                config,
                boot_verifier: random_u64(),
                totals,
                accepted: Atomic::new(0),
                rejected: Atomic::new(0),
                bad_frames: Atomic::new(0),
                heartbeat_misses: Atomic::new(0),
                stopping: Atomic::new(false),
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
        let listener = Arc::new(
            Socket::listen(port, 16)
                .inspect_err(|e| pr_err!("cannot listen on vsock port {}: {:?}\n", port, e))?,
            GFP_KERNEL,
        )?;
        let queue = OwnedQueue::new(c"tether_server")?;
        let dir = debugfs::Dir::new(c"tether_server");
        let state_file = KBox::pin_init(
            dir.read_callback_file(c"state", shared.clone(), &Shared::show),
            GFP_KERNEL,
        )?;
        shadow::SHARED.publish(Some(shared.clone()));
        let shadow_dev = KBox::pin_init(
            MiscDeviceRegistration::register(MiscDeviceOptions {
                name: c"tether_shadow",
            }),
            GFP_KERNEL,
        )
        .inspect_err(|_| shadow::SHARED.publish(None))?;
        listener::start(&queue, shared.clone(), listener.clone())
            .inspect_err(|_| shadow::SHARED.publish(None))?;
        pr_info!(
            "listening on vsock port {}, boot verifier {:#x}\n",
            port,
            shared.boot_verifier
        );
        Ok(Self {
            _shadow_dev: shadow_dev,
            _state_file: state_file,
            shared,
            listener,
            queue: Some(queue),
            _dir: dir,
        })
    }
}

impl Drop for TetherServer {
    fn drop(&mut self) {
        self.shared.stop();
        self.listener.shutdown();
        // Waits for the listener and every session to return.
        drop(self.queue.take());
        shadow::SHARED.publish(None);
        pr_info!("unloaded\n");
    }
}
