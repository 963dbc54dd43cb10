// SPDX-License-Identifier: GPL-2.0

//! The connection worker: connect, handshake, heartbeats, dead-server detection, backoff.

use kernel::{
    new_mutex,
    prelude::*,
    sync::{atomic::Relaxed, Arc, Mutex},
    time::{delay::fsleep, Delta, Instant, Monotonic},
};

use crate::auth;
use crate::link::{bench, rpc};
use crate::proto::auth::{hello_mac_input, welcome_mac_input, Challenge, C_AUTH, MAC_LEN};
use crate::proto::error::ProtoError;
use crate::proto::frame::{max_misses, Header, F_REPLY, HANDSHAKE_MAX_FRAME, MIN_FRAME, VERSION};
use crate::proto::kind::Kind;
use crate::proto::msg::{ErrorMsg, Flushed, Hello, Welcome, W_RESUMED};
use crate::state::{LinkState, Shared};
use crate::transport::{Counters, Receiver, RecvError, Sender, Socket};

/// What the connection worker asks of crash recovery (`recovery/replay.rs`). The module
/// state hands it these, so that the link does not depend on recovery.
pub(crate) struct Recovery {
    /// On a connection to a restarted server (or another one): rebuild every process's
    /// shadow, after writing the retained data again.
    pub(crate) replay: fn(&Shared, &mut Conn) -> Result,
    /// After a writeback error (a new verifier): write the retained data again.
    pub(crate) redo: fn(&Shared, &mut Conn) -> Result,
}

/// First wait before reconnecting; doubles up to `reconnect_max_ms`.
const BACKOFF_MIN_MS: u32 = 50;
/// Granularity of sleeps that must notice an unload.
const SLEEP_SLICE_MS: u32 = 50;

/// A live, handshaken connection.
pub(crate) struct Conn {
    /// Shared with tasks making remote calls (`Shared::link`).
    pub(crate) tx: Arc<Mutex<Sender>>,
    pub(crate) rx: Receiver,
    pub(crate) session: u32,
    pub(crate) max_frame: u32,
    pub(crate) last_rx: Instant<Monotonic>,
    /// The server resumed this client's session: it still holds its shadows.
    pub(crate) resumed: bool,
    /// The resumed session's server rotated its verifier (a writeback error) while the
    /// client was away: what is retained must be written again.
    rotated: bool,
    /// When the connection attempt began.
    started: Instant<Monotonic>,
    /// Heartbeat intervals of silence that end it: more over TCP than over vsock.
    max_misses: u32,
}

impl Conn {
    /// A header of `kind` for this session with the next sequence number.
    pub(crate) fn header(&mut self, kind: Kind) -> Header {
        Header {
            session: self.session,
            seq: rpc::next_seq(),
            ..Header::new(kind, 0)
        }
    }
}

/// How a connection ended.
enum End {
    Stopping,
    /// The server went silent: for how long (ms), and how many heartbeat intervals end
    /// a connection over its transport.
    Silent(i64, u32),
    Closed,
    Bad(ProtoError),
    Io(Error),
}

/// Runs until the module is unloaded.
pub(crate) fn run(shared: Arc<Shared>) {
    let cfg = &shared.config;
    let mut backoff = BACKOFF_MIN_MS;
    let mut reported_unreachable = false;
    while !shared.is_stopping() {
        // After unload's goodbye no connection is made again.
        if shared.is_leaving() {
            sleep(&shared, SLEEP_SLICE_MS);
            continue;
        }
        shared.set_state(LinkState::Connecting);
        match connect(&shared) {
            Ok(mut conn) => {
                backoff = BACKOFF_MIN_MS;
                reported_unreachable = false;
                let end = match start(&shared, &mut conn) {
                    Ok(()) => serve(&shared, &mut conn),
                    Err(e) => End::Io(e),
                };
                shared.disconnects.add(1, Relaxed);
                report(&shared, end);
            }
            Err(e) => {
                if !reported_unreachable && !shared.is_stopping() {
                    pr_info!(
                        "server {} unreachable ({:?}), retrying\n",
                        shared.server(),
                        e
                    );
                    reported_unreachable = true;
                }
                next_server(&shared);
            }
        }
        let _ = shared.set_socket(None);
        // Calls in flight wait for the next connection (and replay) to be sent again.
        rpc::withdraw_link(&shared);
        shared.set_state(LinkState::Down);
        bench::fail_pending(&shared, ENOTCONN);
        sleep(&shared, backoff);
        backoff = backoff.saturating_mul(2).min(cfg.reconnect_max_ms);
    }
    // Tethered tasks keep the module loaded, so normally no call is left to fail.
    rpc::fail_all(&shared, ESHUTDOWN);
}

/// Unload: tells the server that session `session` ends for good (it need not keep it
/// for a resume). Best effort.
pub(crate) fn goodbye(tx: &Mutex<Sender>, session: u32) {
    let mut body = [0u8; ErrorMsg::LEN];
    let msg = ErrorMsg {
        code: ProtoError::Goodbye as u32,
        detail: 0,
    };
    if msg.encode(&mut body).is_ok() {
        let h = Header {
            session,
            seq: rpc::next_seq(),
            ..Header::new(Kind::Error, 0)
        };
        let _ = tx.lock().send(h, &body);
    }
}

/// After a failed attempt: the next server of `servers=` is tried next.
fn next_server(shared: &Shared) {
    let n = shared.config.servers().len();
    let cur = shared.server_index.load(Relaxed);
    let next = cur
        .checked_add(1)
        .filter(|&i| usize::try_from(i).is_ok_and(|i| i < n))
        .unwrap_or(0);
    if next != cur {
        shared.server_index.store(next, Relaxed);
        pr_info!("trying server {} next\n", shared.server());
    }
}

fn report(shared: &Shared, end: End) {
    let server = shared.server();
    match end {
        End::Stopping => (),
        End::Silent(ms, misses) => {
            shared
                .last_down_detect_ms
                .store(u64::try_from(ms).unwrap_or(0), Relaxed);
            pr_notice!(
                "server {} silent for {} ms ({} heartbeats): connection down\n",
                server,
                ms,
                misses
            );
        }
        End::Closed => pr_notice!("server {} closed the connection\n", server),
        End::Bad(e) => pr_notice!("server {} broke the protocol: {}\n", server, e.name()),
        End::Io(e) => pr_notice!("connection to server {} failed: {:?}\n", server, e),
    }
}

/// Sleeps `ms`, returning early when the module is unloaded.
fn sleep(shared: &Shared, ms: u32) {
    let mut left = ms;
    while left > 0 && !shared.is_stopping() {
        let step = left.min(SLEEP_SLICE_MS);
        fsleep(Delta::from_millis(i64::from(step)));
        left = left.saturating_sub(step);
    }
}

/// The receive timeout: a quarter heartbeat, so silence is noticed soon after it passes
/// [`Conn::max_misses`] intervals.
fn poll_ms(shared: &Shared) -> u32 {
    (shared.config.heartbeat_ms / 4).max(10)
}

fn connect(shared: &Shared) -> Result<Conn> {
    let cfg = &shared.config;
    let started = Instant::now();
    // From a reserved port: the server admits no other (only a privileged process can
    // bind one).
    let server = shared.server();
    let misses = max_misses(server.peer.is_tcp());
    let silent_ms = cfg.heartbeat_ms.saturating_mul(misses);
    let sock = Arc::new(Socket::connect(&server, true, silent_ms)?, GFP_KERNEL)?;
    sock.set_timeouts(poll_ms(shared), silent_ms);
    shared.set_socket(Some(sock.clone()))?;
    let counters = Counters {
        link: None,
        total: shared.totals.clone(),
    };
    let sender = Sender::new(sock.clone(), cfg.split, counters.clone());
    let mut conn = Conn {
        tx: Arc::pin_init(new_mutex!(sender, "Conn::tx"), GFP_KERNEL)?,
        rx: Receiver::new(sock, HANDSHAKE_MAX_FRAME, counters)?,
        session: 0,
        max_frame: HANDSHAKE_MAX_FRAME,
        last_rx: Instant::now(),
        resumed: false,
        rotated: false,
        started,
        max_misses: misses,
    };
    // After a lost connection: ask for the same session back (the server keeps it, its
    // shadows and their open files, for a while).
    let resume_session = if shared.connects.load(Relaxed) > 0 {
        shared.session.load(Relaxed)
    } else {
        0
    };
    let started = Instant::<Monotonic>::now();
    // The server speaks first: a fresh nonce our MAC must cover.
    let challenge = loop {
        match conn.rx.recv(HANDSHAKE_MAX_FRAME) {
            Ok((hdr, body)) if hdr.kind == Kind::Challenge => {
                break Challenge::decode(body).map_err(|_| EPROTO)?
            }
            Ok((hdr, body)) if hdr.kind == Kind::Error => return Err(refused(body)),
            Ok(_) => return Err(EPROTO),
            Err(RecvError::Timeout)
                if !shared.is_stopping() && !silent_too_long(shared, conn.max_misses, started) => {}
            Err(_) => return Err(ECONNRESET),
        }
    };
    if challenge.flags & C_AUTH != 0 && cfg.key.is_none() {
        pr_notice!("server requires the shared key, and this client has none (no_auth=1)\n");
        return Err(EACCES);
    }
    let client_nonce = auth::nonce();
    let mut hello = Hello {
        min_version: VERSION,
        max_version: VERSION,
        boot_verifier: shared.boot_verifier,
        max_frame: cfg.max_frame,
        heartbeat_ms: cfg.heartbeat_ms,
        kinds: Kind::all_bits(),
        resume_session,
        instance: shared.instance,
        nonce: client_nonce,
        mac: [0; MAC_LEN],
    };
    let mut body = [0u8; Hello::LEN];
    hello.encode(&mut body).map_err(|_| EINVAL)?;
    if let Some(key) = &cfg.key {
        let parts = hello_mac_input(&challenge.nonce, &client_nonce, &body).map_err(|_| EINVAL)?;
        hello.mac = key.mac(&parts);
        hello.encode(&mut body).map_err(|_| EINVAL)?;
    }
    let h = conn.header(Kind::Hello);
    conn.tx.lock().send(h, &body)?;
    let started = Instant::<Monotonic>::now();
    let (welcome, wbody) = loop {
        match conn.rx.recv(HANDSHAKE_MAX_FRAME) {
            Ok((hdr, body)) if hdr.kind == Kind::Welcome => {
                let w = Welcome::decode(body).map_err(|_| EPROTO)?;
                let mut wbody = [0u8; Welcome::LEN];
                w.encode(&mut wbody).map_err(|_| EPROTO)?;
                break (w, wbody);
            }
            Ok((hdr, body)) if hdr.kind == Kind::Error => return Err(refused(body)),
            Ok(_) => return Err(EPROTO),
            Err(RecvError::Timeout)
                if !shared.is_stopping() && !silent_too_long(shared, conn.max_misses, started) => {}
            Err(_) => return Err(ECONNRESET),
        }
    };
    // The server proves it has the key too, over both nonces and this very HELLO.
    if let Some(key) = &cfg.key {
        let parts = welcome_mac_input(&challenge.nonce, &client_nonce, &wbody, &hello.mac)
            .map_err(|_| EPROTO)?;
        if !auth::mac_eq(&key.mac(&parts), &welcome.mac) {
            pr_notice!(
                "server {} did not prove knowledge of the shared key (WELCOME MAC): refused\n",
                shared.server()
            );
            return Err(EACCES);
        }
    }
    if welcome.version != VERSION || !(MIN_FRAME..=cfg.max_frame).contains(&welcome.max_frame) {
        pr_notice!(
            "server offered version {} max_frame {}: refused\n",
            welcome.version,
            welcome.max_frame
        );
        return Err(EPROTO);
    }
    conn.rx.set_max_frame(welcome.max_frame)?;
    conn.max_frame = welcome.max_frame;
    let resumed = welcome.flags & W_RESUMED != 0;
    if resumed && welcome.session != resume_session {
        pr_notice!(
            "server resumed session {} when asked for {}: refused\n",
            welcome.session,
            resume_session
        );
        return Err(EPROTO);
    }
    conn.session = welcome.session;
    conn.resumed = resumed;
    shared.server_kinds.store(welcome.kinds, Relaxed);
    conn.last_rx = Instant::now();
    shared.session.store(welcome.session, Relaxed);
    let old = shared
        .peer_boot_verifier
        .xchg(welcome.boot_verifier, Relaxed);
    if resumed {
        shared.resumed.add(1, Relaxed);
        conn.rotated = old != welcome.boot_verifier;
        if conn.rotated {
            shared.verifier_changes.add(1, Relaxed);
            pr_notice!(
                "server boot verifier changed {:#x} -> {:#x} while the session was detached (writeback error on the server): retained data must be sent again\n",
                old,
                welcome.boot_verifier
            );
        }
    }
    shared.connects.add(1, Relaxed);
    pr_info!(
        "connected to server {} (session {}{}, server boot verifier {:#x})\n",
        shared.server(),
        welcome.session,
        if resumed { " resumed" } else { "" },
        welcome.boot_verifier
    );
    Ok(conn)
}

/// Logs the reason of a server's `ERROR` during the handshake.
fn refused(body: &[u8]) -> Error {
    let why = ErrorMsg::decode(body)
        .ok()
        .and_then(|m| ProtoError::from_u32(m.code));
    pr_notice!(
        "server refused the handshake: {}\n",
        why.map_or("unknown reason", ProtoError::name)
    );
    if why == Some(ProtoError::AuthFailed) {
        EACCES
    } else {
        ECONNREFUSED
    }
}

/// Brings a handshaken connection into use: replays the log when the server does not hold
/// this client's state (a new session after the first: the server rebooted, or dropped the
/// session), then lets remote calls through; the calls in flight go out again either way
/// (a resumed session answers those it already ran from its reply cache).
fn start(shared: &Shared, conn: &mut Conn) -> Result {
    if !conn.resumed && shared.connects.load(Relaxed) > 1 {
        shared.restarts.add(1, Relaxed);
        shared.replay_due.store(true, Relaxed);
    }
    // A replay cut short by a lost connection runs again, also on a session resumed
    // afterwards (everything it does can be done twice).
    if shared.replay_due.load(Relaxed) {
        let seen = shared.verifier_changes.load(Relaxed);
        (shared.recovery.replay)(shared, conn)?;
        // A writeback error reported during the replay: what is retained goes out again.
        if shared.verifier_changes.load(Relaxed) != seen {
            redo(shared, conn)?;
        }
        shared.replay_due.store(false, Relaxed);
    } else if conn.rotated {
        redo(shared, conn)?;
    }
    rpc::publish_link(shared, &conn.tx, conn.session);
    // From the connection's start (the server answered it) to calls going out again.
    shared.last_resume_us.store(
        u64::try_from(conn.started.elapsed().as_nanos() / 1000).unwrap_or(0),
        Relaxed,
    );
    shared.set_state(LinkState::Connected);
    Ok(())
}

/// `SERVER_FLUSHED`: records how far the server's data is durable and frees the retained
/// writes it covers. A frame of another session or with a bad body is bad input: logged
/// and ignored (nothing is freed on it). Returns whether the verifier changed: what is
/// retained must then be written again.
fn flushed(shared: &Shared, session: u32, hdr: &Header, body: &[u8]) -> bool {
    let msg = match Flushed::decode(body) {
        Ok(m) if hdr.session == session => m,
        Ok(_) => {
            shared.bad_flushed.add(1, Relaxed);
            pr_notice!(
                "SERVER_FLUSHED for session {} on session {}: ignored\n",
                hdr.session,
                session
            );
            return false;
        }
        Err(e) => {
            shared.bad_flushed.add(1, Relaxed);
            pr_notice!(
                "SERVER_FLUSHED with a bad body ({}, {} bytes): ignored\n",
                e.name(),
                body.len()
            );
            return false;
        }
    };
    let old = shared.peer_boot_verifier.xchg(msg.boot_verifier, Relaxed);
    let changed = old != msg.boot_verifier;
    if changed {
        shared.verifier_changes.add(1, Relaxed);
        pr_notice!(
            "server boot verifier changed {:#x} -> {:#x} (writeback error on the server): retained data must be sent again\n",
            old,
            msg.boot_verifier
        );
    }
    shared.flushed_verifier.store(msg.boot_verifier, Relaxed);
    shared.flushed_count.add(1, Relaxed);
    let mut cur = shared.flushed_up_to.load(Relaxed);
    while msg.up_to_seq > cur {
        match shared.flushed_up_to.cmpxchg(cur, msg.up_to_seq, Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    // A frame that announces a new verifier follows a failed sync: it promises nothing,
    // and its up_to_seq (the last promise, repeated) may name writes answered after that
    // promise was made. Everything retained is written again instead.
    if !changed {
        shared.retained.lock().flushed(msg.up_to_seq);
    }
    changed
}

/// Whether `since` lies more than `misses` heartbeat intervals back: [`Conn::max_misses`]
/// end a connection.
fn silent_too_long(shared: &Shared, misses: u32, since: Instant<Monotonic>) -> bool {
    silent_for(shared, since, i64::from(misses))
}

/// Whether `since` lies more than `misses` heartbeat intervals back.
pub(crate) fn silent_for(shared: &Shared, since: Instant<Monotonic>, misses: i64) -> bool {
    since.elapsed().as_millis() >= misses.saturating_mul(i64::from(shared.config.heartbeat_ms))
}

/// What a frame of normal operation asks of the loop that received it.
pub(crate) enum Handled {
    /// Nothing more.
    Done,
    /// The server's boot verifier changed (a writeback error): what is retained must be
    /// written again ([`redo`]).
    Redo,
    /// The server ends the connection (`ERROR`).
    Closed,
    /// A frame that has no place in normal operation.
    Bad(ProtoError),
}

/// The one receive path for frames of normal operation, used by the connection worker's
/// loop ([`serve`]), the replay's (`replay.rs`) and the benchmark's (`bench.rs`) while they
/// wait for frames of their own: a `SERVER_REPLY` or `SERVER_SIGNAL` goes to the task that
/// waits for it, a heartbeat is answered, a `SERVER_FLUSHED` frees what it covers. The
/// caller has taken the frames it owns and updated `last_rx`. `Err`: the connection
/// failed (answering a heartbeat).
pub(crate) fn handle_frame(
    shared: &Shared,
    session: u32,
    tx: &Mutex<Sender>,
    hdr: &Header,
    body: &[u8],
) -> Result<Handled> {
    match hdr.kind {
        Kind::Heartbeat if hdr.flags & F_REPLY == 0 => {
            let reply = Header {
                flags: F_REPLY,
                len: 0,
                ..*hdr
            };
            tx.lock().send(reply, &[])?;
        }
        Kind::Heartbeat => (),
        Kind::ServerReply => rpc::deliver(shared, hdr.seq, body),
        Kind::ServerSignal => rpc::signal(shared, hdr, body),
        Kind::ServerFlushed if flushed(shared, session, hdr, body) => return Ok(Handled::Redo),
        Kind::ServerFlushed => (),
        Kind::Error => return Ok(Handled::Closed),
        _ => return Ok(Handled::Bad(ProtoError::Unexpected)),
    }
    Ok(Handled::Done)
}

/// After a writeback error on a live connection: calls wait while the retained writes go
/// out again (again as long as new errors come in meanwhile), then go out again
/// themselves (answered from the reply cache).
fn redo(shared: &Shared, conn: &mut Conn) -> Result {
    loop {
        let seen = shared.verifier_changes.load(Relaxed);
        (shared.recovery.redo)(shared, conn)?;
        if shared.verifier_changes.load(Relaxed) == seen {
            return Ok(());
        }
    }
}

fn serve(shared: &Shared, conn: &mut Conn) -> End {
    let interval = Delta::from_millis(i64::from(shared.config.heartbeat_ms));
    let mut last_heartbeat = Instant::<Monotonic>::now();
    let mut missed = 0;
    loop {
        if shared.is_stopping() {
            return End::Stopping;
        }
        if let Some(req) = bench::take_pending(shared) {
            let seen = shared.verifier_changes.load(Relaxed);
            let result = bench::run(shared, conn, &req);
            bench::complete(shared, result);
            if shared.verifier_changes.load(Relaxed) != seen {
                rpc::withdraw_link(shared);
                if let Err(e) = redo(shared, conn) {
                    return End::Io(e);
                }
                rpc::publish_link(shared, &conn.tx, conn.session);
            }
        }
        if let Err(e) = rpc::flush_events(shared, &mut conn.tx.lock(), conn.session) {
            return End::Io(e);
        }
        if last_heartbeat.elapsed() >= interval {
            let h = conn.header(Kind::Heartbeat);
            if let Err(e) = conn.tx.lock().send(h, &[]) {
                return End::Io(e);
            }
            shared.heartbeats_sent.add(1, Relaxed);
            last_heartbeat = Instant::now();
        }
        let (hdr, _) = match conn.rx.recv(conn.max_frame) {
            Ok(frame) => frame,
            Err(RecvError::Timeout) => {
                let silent = conn.last_rx.elapsed().as_millis();
                let now_missed = silent
                    .checked_div(i64::from(shared.config.heartbeat_ms))
                    .unwrap_or(0);
                if now_missed > missed {
                    shared
                        .heartbeat_misses
                        .add(now_missed.abs_diff(missed), Relaxed);
                    missed = now_missed;
                }
                if silent_too_long(shared, conn.max_misses, conn.last_rx) {
                    return End::Silent(silent, conn.max_misses);
                }
                continue;
            }
            Err(RecvError::Closed) => return End::Closed,
            Err(RecvError::Proto(e)) => return End::Bad(e),
            Err(RecvError::Io(e)) => return End::Io(e),
        };
        conn.last_rx = Instant::now();
        missed = 0;
        let body = conn.rx.last_body(&hdr);
        match handle_frame(shared, conn.session, &conn.tx, &hdr, body) {
            Ok(Handled::Done) => (),
            Ok(Handled::Redo) => {
                rpc::withdraw_link(shared);
                if let Err(e) = redo(shared, conn) {
                    return End::Io(e);
                }
                rpc::publish_link(shared, &conn.tx, conn.session);
            }
            Ok(Handled::Closed) => return End::Closed,
            Ok(Handled::Bad(e)) => return End::Bad(e),
            Err(e) => return End::Io(e),
        }
    }
}
