// SPDX-License-Identifier: GPL-2.0

//! One client connection: handshake, heartbeats, and the requests it serves.

use kernel::{
    new_mutex,
    prelude::*,
    sync::{atomic::Relaxed, Arc, Mutex},
    time::{Instant, Monotonic},
};

use crate::proto::codec::{sum64, SUM_INIT};
use crate::proto::error::ProtoError;
use crate::proto::frame::{Header, F_ACK_REQ, F_REPLY, HANDSHAKE_MAX_FRAME, VERSION};
use crate::proto::kind::Kind;
use crate::proto::msg::{negotiate, ErrorMsg, Hello, SinkAck, Welcome};
use crate::proto::process::ProcAttrs;
use crate::proto::syscall::{SyscallReply, SyscallReq};
use crate::server::{Session, Shared};
use crate::shadow::FORK_NR;
use crate::transport::{Counters, Receiver, RecvError, Sender, Socket};

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
    ]
    .iter()
    .fold(0, |m, k| m | k.bit())
}

/// Receive timeouts in a row after which a client counts as dead.
const MAX_MISSES: u32 = 3;

/// How a session ended.
enum End {
    /// The client closed the connection (or sent `ERROR`).
    Closed,
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

/// Refuses a connection: one log line, a best-effort `ERROR` frame, close.
pub(crate) fn refuse(
    shared: &Shared,
    sock: &Arc<Socket>,
    cid: u32,
    code: ProtoError,
    reason: &str,
) {
    shared.rejected.add(1, Relaxed);
    pr_notice!("dropping connection from cid {}: {}\n", cid, reason);
    let stats = Counters {
        link: None,
        total: shared.totals.clone(),
    };
    let mut tx = Sender::new(sock.clone(), shared.config.split, stats);
    send_error(&mut tx, 0, code, 0);
}

fn send_error(tx: &mut Sender, session: u32, code: ProtoError, detail: u32) {
    let mut body = [0u8; ErrorMsg::LEN];
    let msg = ErrorMsg {
        code: code as u32,
        detail,
    };
    if msg.encode(&mut body).is_ok() {
        let _ = tx.send(
            Header {
                session,
                ..Header::new(Kind::Error, 0)
            },
            &body,
        );
    }
}

/// Serves session `s` until it ends, then forgets it.
pub(crate) fn serve(shared: Arc<Shared>, s: Arc<Session>) {
    let cfg = &shared.config;
    let stats = Counters {
        link: Some(s.stats.clone()),
        total: shared.totals.clone(),
    };
    s.sock.set_timeouts(
        cfg.heartbeat_ms,
        cfg.heartbeat_ms.saturating_mul(MAX_MISSES),
    );
    let sender = Sender::new(s.sock.clone(), cfg.split, stats.clone());
    let Ok(tx) = Arc::pin_init(new_mutex!(sender, "Session::tx"), GFP_KERNEL) else {
        shared.remove_session(s.id);
        return;
    };
    let end = match Receiver::new(s.sock.clone(), HANDSHAKE_MAX_FRAME, stats) {
        Ok(mut rx) => run(&shared, &s, &mut rx, &tx),
        Err(e) => End::Io(e),
    };
    shared.end_shadows(s.id);
    match end {
        End::Closed => pr_info!("session {} (cid {}) closed\n", s.id, s.cid),
        End::Stopping => (),
        End::Silent => {
            shared.heartbeat_misses.add(1, Relaxed);
            pr_notice!(
                "dropping connection from cid {}: silent for {} heartbeats\n",
                s.cid,
                MAX_MISSES
            );
        }
        End::Bad(code, detail) => {
            shared.bad_frames.add(1, Relaxed);
            pr_notice!("dropping connection from cid {}: {}\n", s.cid, code.name());
            send_error(&mut tx.lock(), s.id, code, detail);
        }
        End::Io(e) => pr_info!("session {} (cid {}) failed: {:?}\n", s.id, s.cid, e),
    }
    shared.remove_session(s.id);
}

fn run(shared: &Shared, s: &Session, rx: &mut Receiver, tx: &Arc<Mutex<Sender>>) -> End {
    let max_frame = match handshake(shared, s, rx, &mut tx.lock()) {
        Ok(m) => m,
        Err(end) => return end,
    };
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
                if let Err(e) = tx.lock().send(reply(Kind::Heartbeat, heartbeat_seq), &[]) {
                    return End::Io(e);
                }
                continue;
            }
            Err(e) => return e.into(),
        };
        misses = 0;
        let sent = match hdr.kind {
            Kind::Heartbeat if hdr.flags & F_REPLY == 0 => tx.lock().send(
                Header {
                    flags: F_REPLY,
                    ..reply(Kind::Heartbeat, hdr.seq)
                },
                &[],
            ),
            Kind::Heartbeat => Ok(()),
            Kind::EchoReq => tx.lock().send(reply(Kind::EchoReply, hdr.seq), body),
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
                    tx.lock().send(reply(Kind::SinkAck, hdr.seq), &ack)
                }
            }
            Kind::ClientSystemCall => match SyscallReq::decode(body) {
                Ok(_) => system_call(shared, s, tx, &hdr, body),
                Err(e) => return End::Bad(e, hdr.kind as u32),
            },
            Kind::ClientFork => fork(shared, s, tx, &hdr, body),
            Kind::ClientAttrs => match ProcAttrs::decode(body) {
                Ok(attrs) => set_attrs(shared, s, tx, &hdr, &attrs),
                Err(e) => return End::Bad(e, hdr.kind as u32),
            },
            Kind::ClientExit => {
                if let Some(shadow) = shared.find_process(s.id, hdr.rpid) {
                    shadow.exit();
                    if shadow.is_gone() {
                        shared.remove_shadow(&shadow);
                    }
                }
                reply_bare(tx, s.id, &hdr, 0)
            }
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
                return End::Closed;
            }
            other => return End::Bad(ProtoError::Unexpected, other as u32),
        };
        if let Err(e) = sent {
            return End::Io(e);
        }
    }
}

/// `CLIENT_FORK`: process `hdr.rpid` forked child `body` (`u32`). The parent's shadow
/// forks too (its reply answers the frame); without a parent shadow the child gets a fresh
/// one at its first call.
fn fork(
    shared: &Shared,
    s: &Session,
    tx: &Arc<Mutex<Sender>>,
    hdr: &Header,
    body: &[u8],
) -> Result {
    let child = body
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)
        .ok_or(EINVAL)?;
    let Some(parent) = shared.find_process(s.id, hdr.rpid) else {
        return Ok(());
    };
    let shadow = shared.add_forked_shadow(s.id, child, tx)?;
    let req = SyscallReq {
        nr: FORK_NR,
        args: [shadow.token, 0, 0, 0, 0, 0],
        ..Default::default()
    };
    let mut msg = [0u8; SyscallReq::head_len(0)];
    req.encode(&mut msg).map_err(|_| EINVAL)?;
    if parent.push(hdr.seq, &msg).is_err() {
        // The parent's server state is gone: so is the child's.
        shadow.fail_all(kernel::bindings::EIO);
    }
    Ok(())
}

/// Hands a `CLIENT_SYSTEM_CALL` to the shadow of its process (started on first use). A
/// shadow that cannot take it (dead: `EIO`, exiting: `ESRCH`) answers at once with that
/// error; the session goes on.
fn system_call(
    shared: &Shared,
    s: &Session,
    tx: &Arc<Mutex<Sender>>,
    hdr: &Header,
    body: &[u8],
) -> Result {
    match shared.shadow_for(s.id, hdr.rpid, tx) {
        Ok(shadow) => {
            if let Err(e) = shadow.push(hdr.seq, body) {
                return shadow.fail(hdr.seq, e.to_errno().unsigned_abs());
            }
            Ok(())
        }
        Err(e) => reply_bare(tx, s.id, hdr, i64::from(e.to_errno())),
    }
}

/// `CLIENT_ATTRS`: the shadow of process `hdr.rpid` (started now when it has none) takes
/// on `attrs`, mapped by the `squash_root` policy, before its next call. A dead or exiting
/// shadow ignores them: its calls fail anyway.
fn set_attrs(
    shared: &Shared,
    s: &Session,
    tx: &Arc<Mutex<Sender>>,
    hdr: &Header,
    attrs: &ProcAttrs,
) -> Result {
    extern "C" {
        fn tether_squash_root() -> bool;
    }
    // SAFETY: No preconditions: reads a module parameter.
    let squash = unsafe { tether_squash_root() };
    // A shadow that cannot start is reported by the call that follows (and a shadow
    // without attributes runs as nobody).
    if let Ok(shadow) = shared.shadow_for(s.id, hdr.rpid, tx) {
        let _ = shadow.push_attrs(&attrs.mapped(squash));
    }
    Ok(())
}

/// Answers request `hdr` with `ret` (`0` or `-errno`) and no output.
fn reply_bare(tx: &Arc<Mutex<Sender>>, session: u32, hdr: &Header, ret: i64) -> Result {
    let h = Header {
        session,
        rpid: hdr.rpid,
        seq: hdr.seq,
        ..Header::new(Kind::ServerReply, 0)
    };
    tx.lock().send(h, &SyscallReply::bare(ret))
}

/// Waits for `HELLO`, answers `WELCOME`; returns the negotiated maximum body length.
fn handshake(shared: &Shared, s: &Session, rx: &mut Receiver, tx: &mut Sender) -> Result<u32, End> {
    let cfg = &shared.config;
    let mut misses = 0;
    let (hdr, hello) = loop {
        match rx.recv(HANDSHAKE_MAX_FRAME) {
            Ok((hdr, body)) if hdr.kind == Kind::Hello => {
                break (hdr, Hello::decode(body).map_err(|e| End::Bad(e, 0))?)
            }
            Ok((hdr, _)) => return Err(End::Bad(ProtoError::Unexpected, hdr.kind as u32)),
            Err(RecvError::Timeout) if shared.is_stopping() => return Err(End::Stopping),
            Err(RecvError::Timeout) if misses + 1 < MAX_MISSES => misses += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let (version, max_frame) =
        negotiate(&hello, cfg.max_frame).map_err(|e| End::Bad(e, u32::from(VERSION)))?;
    rx.set_max_frame(max_frame)?;
    let welcome = Welcome {
        version,
        boot_verifier: shared.boot_verifier,
        max_frame,
        heartbeat_ms: cfg.heartbeat_ms,
        session: s.id,
        kinds: served_kinds(),
    };
    let mut body = [0u8; Welcome::LEN];
    welcome.encode(&mut body).map_err(|e| End::Bad(e, 0))?;
    tx.send(
        Header {
            session: s.id,
            seq: hdr.seq,
            ..Header::new(Kind::Welcome, 0)
        },
        &body,
    )?;
    pr_info!(
        "session {} (cid {}) up: max_frame {}\n",
        s.id,
        s.cid,
        max_frame
    );
    Ok(max_frame)
}
