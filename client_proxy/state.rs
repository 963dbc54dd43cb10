// SPDX-License-Identifier: GPL-2.0

//! Module state: configuration, connection state, counters, and their sysfs view (debugfs:
//! the live log and the bench).

use core::fmt;
use kernel::{
    debugfs, new_condvar, new_mutex, new_spinlock,
    prelude::*,
    sync::{
        atomic::{Atomic, Relaxed},
        Arc, CondVar, Mutex, SpinLock,
    },
    time::{delay::fsleep, Delta},
};

use crate::global::Global;
use crate::intercept::hook::Hooks;
use crate::latency::Latency;
use crate::link::bench::{BenchReq, BenchResult};
use crate::link::connection::Recovery;
use crate::link::rpc::{Pending, ProcEvent};
use crate::proto::peer::{Peer, Server};
use crate::recovery::journal::Log;
use crate::recovery::retain::Retained;
use crate::syscalls::shmap::SharedMaps;
use crate::sysfs::{self, FileSpec};
use crate::transport::{check_link_params, random_u64, OwnedQueue, Sender, Socket, Stats};
use crate::{link::connection, module_parameters as params};

/// Most servers in `servers=`.
const MAX_SERVERS: usize = 8;
/// How long unload waits for the server to close the connection after its goodbye.
const GOODBYE_WAIT_MS: u32 = 1000;

extern "C" {
    fn tether_servers() -> *const kernel::ffi::c_char;
}

/// Settings taken from the module parameters at load time.
pub(crate) struct Config {
    /// The servers (`servers=`, else `server_cid=`:`port=` alone): `servers[..nservers]`.
    servers: [Server; MAX_SERVERS],
    nservers: usize,
    pub(crate) port: u32,
    pub(crate) heartbeat_ms: u32,
    pub(crate) max_frame: u32,
    pub(crate) split: usize,
    pub(crate) reconnect_max_ms: u32,
    pub(crate) log_persist_ms: u32,
    /// The shared key (`key_file=`); `None` with `no_auth=1`.
    pub(crate) key: Option<crate::auth::Key>,
}

impl Config {
    fn from_params() -> Result<Self> {
        let (servers, nservers) = parse_servers(params::server_cid.value(), params::port.value())?;
        let c = Self {
            servers,
            nservers,
            port: params::port.value(),
            heartbeat_ms: params::heartbeat_ms.value(),
            max_frame: params::max_frame.value(),
            split: params::split.value() as usize,
            reconnect_max_ms: params::reconnect_max_ms.value(),
            log_persist_ms: params::log_persist_ms.value(),
            key: None,
        };
        check_link_params(c.max_frame, c.split, c.heartbeat_ms)?;
        if !(50..=600000).contains(&c.reconnect_max_ms) {
            pr_err!(
                "reconnect_max_ms={} is outside 50..=600000\n",
                c.reconnect_max_ms
            );
            return Err(EINVAL);
        }
        if !(10..=600000).contains(&c.log_persist_ms) {
            pr_err!(
                "log_persist_ms={} is outside 10..=600000\n",
                c.log_persist_ms
            );
            return Err(EINVAL);
        }
        // Last: every other parameter is fine.
        let key = crate::auth::Key::load(params::no_auth.value())?;
        Ok(Self { key, ..c })
    }
}

/// The `servers=` list (entries `CID`, `vsock:CID[:PORT]` or `tcp:A.B.C.D[:PORT]`, see
/// [`Server::parse`]), or `server_cid` alone when it is empty; `port` is the default port.
fn parse_servers(server_cid: u32, port: u32) -> Result<([Server; MAX_SERVERS], usize)> {
    // SAFETY: The parameter is a NUL-terminated string that lives as long as the module.
    let list = unsafe { kernel::str::CStr::from_char_ptr(tether_servers()) }.to_bytes();
    let first = Server {
        peer: Peer::Vsock(server_cid),
        port,
    };
    let mut servers = [first; MAX_SERVERS];
    if list.is_empty() {
        return Ok((servers, 1));
    }
    let mut n = 0;
    for item in list.split(|&c| c == b',') {
        let server = core::str::from_utf8(item)
            .ok()
            .and_then(|s| Server::parse(s.trim(), port).ok());
        match (server, servers.get_mut(n)) {
            (Some(server), Some(slot)) => *slot = server,
            _ => {
                pr_err!(
                    "servers= takes up to {} comma-separated servers: CIDs above 2 (vsock:CID[:PORT]) or tcp:A.B.C.D[:PORT]\n",
                    MAX_SERVERS
                );
                return Err(EINVAL);
            }
        }
        n = n.saturating_add(1);
    }
    Ok((servers, n))
}

impl Config {
    /// The servers to try, in order.
    pub(crate) fn servers(&self) -> &[Server] {
        self.servers.get(..self.nservers).unwrap_or(&[])
    }
}

/// Connection state, as the `state` file names it.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum LinkState {
    /// Not connected; waiting before the next attempt.
    Down = 0,
    /// Connecting or in the handshake.
    Connecting = 1,
    /// Handshake done; heartbeats flowing.
    Connected = 2,
}

impl LinkState {
    fn name(v: u32) -> &'static str {
        match v {
            1 => "connecting",
            2 => "connected",
            _ => "down",
        }
    }
}

/// The fields [`Shared::inner`] guards.
pub(crate) struct Inner {
    /// The current connection's socket, so that unload can shut it down.
    pub(crate) sock: Option<Arc<Socket>>,
    /// Set once at unload.
    pub(crate) stopping: bool,
    /// A benchmark waiting for the connection worker.
    pub(crate) bench_req: Option<BenchReq>,
    /// The last benchmark's outcome.
    pub(crate) bench_result: Option<Result<BenchResult>>,
    /// A benchmark is queued or running.
    pub(crate) bench_busy: bool,
}

/// State shared by the connection worker and the sysfs and debugfs files.
#[pin_data]
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// What the connection worker calls to recover from a server restart.
    pub(crate) recovery: Recovery,
    /// Random at every load.
    pub(crate) boot_verifier: u64,
    /// Random at every load, never 0: lets the server know a reconnect comes from this
    /// instance of the module (only then may it resume the session).
    pub(crate) instance: u64,
    pub(crate) totals: Arc<Stats>,
    /// Per-call latency of remote calls (the `calls` file).
    pub(crate) latency: Latency,
    /// A [`LinkState`].
    pub(crate) state: Atomic<u32>,
    pub(crate) session: Atomic<u32>,
    /// Which of `config.servers()` is connected to, or tried next.
    pub(crate) server_index: Atomic<u32>,
    pub(crate) peer_boot_verifier: Atomic<u64>,
    /// The kinds the server said it serves (`WELCOME.kinds`).
    pub(crate) server_kinds: Atomic<u64>,
    pub(crate) connects: Atomic<u64>,
    pub(crate) disconnects: Atomic<u64>,
    /// Replays run (connections to a server that did not hold our state).
    pub(crate) replays: Atomic<u64>,
    /// Connections to a server that did not hold our session (it restarted, or another
    /// server took over), the first connection aside.
    pub(crate) restarts: Atomic<u64>,
    /// The server lost this client's state and no replay has rebuilt it completely yet.
    pub(crate) replay_due: Atomic<bool>,
    /// The last connection's time from its start to calls going out (handshake, replay).
    pub(crate) last_resume_us: Atomic<u64>,
    /// The last rewrite of retained data ([`crate::recovery::replay::redo`]).
    pub(crate) last_redo_us: Atomic<u64>,
    /// Replay results that contradicted the log (e.g. an open file that is gone).
    pub(crate) divergences: Atomic<u64>,
    /// Retained writes the redo could not write again: each is an error the app sees at
    /// its next write, `fsync` or close of the file (`Log::write_failed`).
    pub(crate) redo_errors: Atomic<u64>,
    pub(crate) heartbeats_sent: Atomic<u64>,
    pub(crate) heartbeat_misses: Atomic<u64>,
    pub(crate) last_down_detect_ms: Atomic<u64>,
    /// Reconnects that got the previous session back (`WELCOME` flag `W_RESUMED`).
    pub(crate) resumed: Atomic<u64>,
    /// The highest `up_to_seq` of a `SERVER_FLUSHED`, its verifier, the number received,
    /// verifier changes they announced, and ignored (bad) ones.
    pub(crate) flushed_up_to: Atomic<u64>,
    pub(crate) flushed_verifier: Atomic<u64>,
    pub(crate) flushed_count: Atomic<u64>,
    pub(crate) verifier_changes: Atomic<u64>,
    pub(crate) bad_flushed: Atomic<u64>,
    /// Copy of `inner.stopping`, readable without the lock.
    stopping: Atomic<bool>,
    /// Unload said goodbye: the connection worker does not connect again.
    leaving: Atomic<bool>,
    #[pin]
    pub(crate) inner: Mutex<Inner>,
    /// Signalled when a benchmark finishes.
    #[pin]
    pub(crate) bench_done: CondVar,
    /// The live connection's sender and session id, for remote calls.
    #[pin]
    pub(crate) link: Mutex<Option<(Arc<Mutex<Sender>>, u32)>>,
    /// Forks and exits of tethered processes not yet sent (filled in atomic context).
    #[pin]
    pub(crate) events: SpinLock<KVec<ProcEvent>>,
    /// The syscall log.
    #[pin]
    pub(crate) log: Mutex<Log>,
    /// Remote calls waiting for their reply.
    #[pin]
    pub(crate) calls: Mutex<KVec<Pending>>,
    /// Writes the server has not made durable yet.
    #[pin]
    pub(crate) retained: Mutex<Retained>,
    /// Shared writable mappings of remote files (`syscalls/shmap.rs`).
    #[pin]
    pub(crate) shmaps: Mutex<SharedMaps>,
    /// The number of mappings in `shmaps`, readable without its lock (atomic context).
    pub(crate) shmap_count: Atomic<u32>,
    /// Processes that exited while shared mappings existed: their exit events wait until
    /// their mappings are written back (`rpc.rs`; filled in atomic context).
    #[pin]
    pub(crate) exits_to_write_back: SpinLock<KVec<u32>>,
}

impl Shared {
    /// The server connected to, or tried next.
    pub(crate) fn server(&self) -> Server {
        let i = usize::try_from(self.server_index.load(Relaxed)).unwrap_or(0);
        // `next_server` keeps the index below `nservers`; the first entry is always set.
        *self
            .config
            .servers()
            .get(i)
            .unwrap_or(&self.config.servers[0])
    }

    /// Whether the module is being unloaded.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    /// Whether unload said goodbye to the server (the worker must not connect again).
    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Relaxed)
    }

    pub(crate) fn set_state(&self, s: LinkState) {
        self.state.store(s as u32, Relaxed);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.state.load(Relaxed) == LinkState::Connected as u32
    }

    /// Publishes the socket of a new connection (`None` when it is gone). Fails once the
    /// module is stopping, so that unload never misses a socket to shut down.
    pub(crate) fn set_socket(&self, sock: Option<Arc<Socket>>) -> Result {
        let mut inner = self.inner.lock();
        if inner.stopping && sock.is_some() {
            return Err(ESHUTDOWN);
        }
        inner.sock = sock;
        Ok(())
    }

    fn stop(&self) {
        // Say goodbye first, so that the server ends the session rather than keeping it for
        // a resume that will not come, and let the server close the connection: closed
        // from here, the server may see the close before the goodbye (a send of its own
        // fails first) and keep the session. No connection is made after it.
        self.leaving.store(true, Relaxed);
        let link = self.link.lock().clone();
        if let Some((tx, session)) = link {
            connection::goodbye(&tx, session);
            let mut waited = 0;
            while self.is_connected() && waited < GOODBYE_WAIT_MS {
                fsleep(Delta::from_millis(5));
                waited = waited.saturating_add(5);
            }
        }
        let mut inner = self.inner.lock();
        inner.stopping = true;
        self.stopping.store(true, Relaxed);
        if let Some(s) = &inner.sock {
            s.shutdown();
        }
        self.bench_done.notify_all();
    }

    /// The `calls` file ([`Latency::show`]).
    pub(crate) fn show_calls(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        this.latency.show(f)
    }

    /// The debugfs `log` file (also what `persist.rs` writes).
    pub(crate) fn show_log(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        this.log.lock().show(f)?;
        this.retained.lock().show(f)
    }

    /// The `state` file.
    fn show(this: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &this.config;
        writeln!(f, "state={}", LinkState::name(this.state.load(Relaxed)))?;
        let server = this.server();
        let cid = match server.peer {
            Peer::Vsock(cid) => cid,
            Peer::Ipv4(_) => 0,
        };
        writeln!(f, "server_cid={cid}")?;
        writeln!(f, "server={server}")?;
        write!(f, "servers=")?;
        for (i, s) in c.servers().iter().enumerate() {
            write!(f, "{}{s}", if i > 0 { "," } else { "" })?;
        }
        writeln!(f)?;
        writeln!(f, "port={}", c.port)?;
        writeln!(f, "session={}", this.session.load(Relaxed))?;
        writeln!(f, "boot_verifier={:#018x}", this.boot_verifier)?;
        writeln!(
            f,
            "peer_boot_verifier={:#018x}",
            this.peer_boot_verifier.load(Relaxed)
        )?;
        writeln!(f, "heartbeat_ms={}", c.heartbeat_ms)?;
        writeln!(f, "split={}", c.split)?;
        writeln!(f, "connects={}", this.connects.load(Relaxed))?;
        writeln!(f, "disconnects={}", this.disconnects.load(Relaxed))?;
        writeln!(f, "replays={}", this.replays.load(Relaxed))?;
        writeln!(f, "divergences={}", this.divergences.load(Relaxed))?;
        writeln!(f, "redo_errors={}", this.redo_errors.load(Relaxed))?;
        writeln!(f, "restarts={}", this.restarts.load(Relaxed))?;
        writeln!(f, "last_resume_us={}", this.last_resume_us.load(Relaxed))?;
        writeln!(f, "last_redo_us={}", this.last_redo_us.load(Relaxed))?;
        {
            let r = this.retained.lock();
            let (writes, bytes) = r.size();
            writeln!(f, "retained_writes={writes}")?;
            writeln!(f, "retained_bytes={bytes}")?;
            writeln!(f, "retained_total={}", r.kept)?;
            writeln!(f, "redone_writes={}", r.redone)?;
            writeln!(f, "redone_bytes={}", r.redone_bytes)?;
        }
        writeln!(f, "heartbeats_sent={}", this.heartbeats_sent.load(Relaxed))?;
        writeln!(
            f,
            "heartbeat_misses={}",
            this.heartbeat_misses.load(Relaxed)
        )?;
        writeln!(
            f,
            "last_down_detect_ms={}",
            this.last_down_detect_ms.load(Relaxed)
        )?;
        writeln!(f, "resumed={}", this.resumed.load(Relaxed))?;
        writeln!(f, "flushed_up_to={}", this.flushed_up_to.load(Relaxed))?;
        writeln!(
            f,
            "flushed_verifier={:#018x}",
            this.flushed_verifier.load(Relaxed)
        )?;
        writeln!(f, "flushed={}", this.flushed_count.load(Relaxed))?;
        writeln!(
            f,
            "verifier_changes={}",
            this.verifier_changes.load(Relaxed)
        )?;
        writeln!(f, "bad_flushed={}", this.bad_flushed.load(Relaxed))?;
        this.totals.show(f)
    }
}

/// The files of `/sys/kernel/tether_client`: the stable view `tetherctl` uses.
const SYSFS_FILES: [FileSpec<Arc<Shared>>; 4] = [
    FileSpec::read(c"state", Shared::show),
    FileSpec::read(c"calls", Shared::show_calls),
    FileSpec::read(c"tasks", crate::intercept::hook::show_tasks::<Arc<Shared>>),
    FileSpec::write(
        c"tether",
        crate::intercept::hook::tether_store::<Arc<Shared>>,
    ),
];

/// The loaded module.
///
/// Field order is drop order: the sysfs view and the debugfs files go first, the debugfs
/// directory last.
pub(crate) struct TetherClient {
    hooks: Option<Hooks>,
    _sysfs: sysfs::Dir<Arc<Shared>>,
    _log_file: Pin<KBox<debugfs::File<Arc<Shared>>>>,
    _bench_file: Pin<KBox<debugfs::File<Arc<Shared>>>>,
    shared: Arc<Shared>,
    /// The persisted copy of the log (`None`: `log_file` is empty).
    persist: Option<Arc<crate::recovery::persist::Persist>>,
    queue: Option<OwnedQueue>,
    _dir: debugfs::Dir,
}

impl kernel::Module for TetherClient {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let config = Config::from_params()?;
        let totals = Arc::new(Stats::new(), GFP_KERNEL)?;
        let shared = Arc::pin_init(
            pin_init!(Shared {
                recovery: Recovery {
                    replay: crate::recovery::replay::run,
                    redo: crate::recovery::replay::redo,
                },
                config,
                boot_verifier: random_u64(),
                instance: random_u64().max(1),
                totals,
                state: Atomic::new(LinkState::Down as u32),
                session: Atomic::new(0),
                server_index: Atomic::new(0),
                peer_boot_verifier: Atomic::new(0),
                server_kinds: Atomic::new(0),
                connects: Atomic::new(0),
                disconnects: Atomic::new(0),
                replays: Atomic::new(0),
                restarts: Atomic::new(0),
                replay_due: Atomic::new(false),
                last_resume_us: Atomic::new(0),
                last_redo_us: Atomic::new(0),
                divergences: Atomic::new(0),
                redo_errors: Atomic::new(0),
                heartbeats_sent: Atomic::new(0),
                heartbeat_misses: Atomic::new(0),
                last_down_detect_ms: Atomic::new(0),
                resumed: Atomic::new(0),
                flushed_up_to: Atomic::new(0),
                flushed_verifier: Atomic::new(0),
                flushed_count: Atomic::new(0),
                verifier_changes: Atomic::new(0),
                bad_flushed: Atomic::new(0),
                latency: Latency::new(),
                stopping: Atomic::new(false),
                leaving: Atomic::new(false),
                inner <- new_mutex!(
                    Inner {
                        sock: None,
                        stopping: false,
                        bench_req: None,
                        bench_result: None,
                        bench_busy: false,
                    },
                    "Shared::inner"
                ),
                bench_done <- new_condvar!("Shared::bench_done"),
                link <- new_mutex!(None, "Shared::link"),
                events <- new_spinlock!(KVec::new(), "Shared::events"),
                calls <- new_mutex!(KVec::new(), "Shared::calls"),
                log <- new_mutex!(Log::new(), "Shared::log"),
                retained <- new_mutex!(Retained::new(), "Shared::retained"),
                shmaps <- new_mutex!(SharedMaps::new(), "Shared::shmaps"),
                shmap_count: Atomic::new(0),
                exits_to_write_back <- new_spinlock!(KVec::new(), "Shared::exits_to_write_back"),
            }),
            GFP_KERNEL,
        )?;
        let queue = OwnedQueue::new(c"tether_client")?;
        let dir = debugfs::Dir::new(c"tether_client");
        let bench_file = KBox::pin_init(
            dir.read_write_callback_file(
                c"bench",
                shared.clone(),
                &crate::link::bench::show,
                &crate::link::bench::request,
            ),
            GFP_KERNEL,
        )?;
        let log_file = KBox::pin_init(
            dir.read_callback_file(c"log", shared.clone(), &Shared::show_log),
            GFP_KERNEL,
        )?;
        let sysfs = sysfs::Dir::new(c"tether_client", shared.clone(), &SYSFS_FILES)?;
        let persist = crate::recovery::persist::Persist::from_params(shared.config.log_persist_ms)?;
        if let Some(p) = &persist {
            p.keep_previous();
            let (sh, p) = (shared.clone(), p.clone());
            queue
                .queue()
                .try_spawn(GFP_KERNEL, move || crate::recovery::persist::run(sh, p))?;
        }
        let sh = shared.clone();
        // (Any failure from here on stops the workers, which the queue's drop waits for.)
        queue
            .queue()
            .try_spawn(GFP_KERNEL, move || connection::run(sh))
            .inspect_err(|_| shared.stop())?;
        pr_info!(
            "connecting to {}, boot verifier {:#x}\n",
            shared.server(),
            shared.boot_verifier
        );
        CLIENT.publish(Some(shared.clone()));
        let hooks = Hooks::start().inspect_err(|_| {
            CLIENT.publish(None);
            shared.stop();
        })?;
        Ok(Self {
            hooks: Some(hooks),
            _sysfs: sysfs,
            _log_file: log_file,
            _bench_file: bench_file,
            shared,
            persist,
            queue: Some(queue),
            _dir: dir,
        })
    }
}

impl Drop for TetherClient {
    fn drop(&mut self) {
        // No task can be in a remote call: each tethered task holds a module reference.
        drop(self.hooks.take());
        CLIENT.publish(None);
        self.shared.stop();
        // Waits for the connection worker and the log's writer to return.
        drop(self.queue.take());
        // The log as the module leaves it, written synchronously.
        if let Some(p) = self.persist.take() {
            p.write(&self.shared);
        }
        pr_info!("unloaded\n");
    }
}

/// The module state, for the handlers (which run in tethered tasks). The module publishes
/// it before installing the hooks and withdraws it after removing them.
pub(crate) static CLIENT: Global<Shared> = Global::new();

/// The module state, if the module is loaded.
pub(crate) fn client() -> Option<Arc<Shared>> {
    CLIENT.get()
}
