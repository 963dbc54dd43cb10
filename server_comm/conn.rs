// SPDX-License-Identifier: GPL-2.0

//! The connection worker: one per accepted connection. It sends the `CHALLENGE`, checks the
//! `HELLO` (version, key proof), attaches the connection to a new or resumed session
//! (`WELCOME`), then receives that session's frames until the connection ends: heartbeats,
//! echo and sink (link tests) are answered here, requests go to `dispatch.rs`. A lost
//! connection leaves its session detached for its client to resume.

use core::fmt;
use kernel::{
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    time::{Instant, Monotonic},
};

use crate::auth::{self, may_log_bad_frame, may_log_refusal};
use crate::dispatch::{request, set_attrs, system_call, thread_event};
use crate::proto::auth::{hello_mac_input, welcome_mac_input, Challenge, C_AUTH, MAC_LEN};
use crate::proto::codec::{sum64, SUM_INIT};
use crate::proto::device::LANE_MAIN;
use crate::proto::error::ProtoError;
use crate::proto::frame::{
    max_misses, Header, F_ACK_REQ, F_REPLY, HANDSHAKE_MAX_FRAME, HEADER_LEN, VERSION,
};
use crate::proto::kind::Kind;
use crate::proto::msg::{negotiate, ErrorMsg, Hello, SinkAck, Welcome};
use crate::proto::peer::Peer;
use crate::proto::process::{split_thread_call, ProcAttrs, ThreadMsg};
use crate::proto::syscall::SyscallReq;
use crate::server::Shared;
use crate::session::{Greeting, Session};
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
        Kind::ServerFlushed,
        Kind::Challenge,
        Kind::ClientThread,
        Kind::ClientThreadCall,
    ]
    .iter()
    .fold(0, |m, k| m | k.bit())
}

/// How a connection ended.
enum End {
    /// The client closed the connection (end of stream).
    Closed,
    /// The client sent `ERROR`: it ends the session for good.
    Goodbye,
    /// The module is being unloaded.
    Stopping,
    /// Nothing arrived for as many heartbeat intervals as end a connection over its
    /// transport (`frame::max_misses`).
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
    peer: Peer,
    code: ProtoError,
    reason: fmt::Arguments<'_>,
) {
    shared.rejected.add(1, Relaxed);
    if may_log_refusal() {
        pr_notice!("dropping connection from {}: {}\n", peer, reason);
    }
    let body = error_body(code, 0);
    let Ok(len) = u32::try_from(ErrorMsg::LEN) else {
        return;
    };
    let mut frame = [0u8; HEADER_LEN + ErrorMsg::LEN];
    let hdr = Header::new(Kind::Error, len).encode();
    frame[..HEADER_LEN].copy_from_slice(&hdr);
    frame[HEADER_LEN..].copy_from_slice(&body);
    let _ = sock.send_nowait(&frame);
}

/// Refuses a connection past a limit (`ERROR Busy`), counted in `limit_refusals`; how its
/// handshake ends.
fn busy(shared: &Shared, sock: &Arc<Socket>, peer: Peer, why: fmt::Arguments<'_>) -> End {
    shared.limit_refusals.add(1, Relaxed);
    refuse(shared, sock, peer, ProtoError::Busy, why);
    End::Stopping
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

/// Serves the connection `sock` from `peer`: handshake, then its session's requests until
/// the connection ends; then the session waits for its client to resume it (connection
/// lost, the client can resume) or ends.
pub(crate) fn serve(shared: Arc<Shared>, sock: Arc<Socket>, peer: Peer) {
    let cfg = &shared.config;
    let counters = Counters {
        link: None,
        total: shared.totals.clone(),
    };
    let misses = max_misses(peer.is_tcp());
    sock.set_timeouts(cfg.heartbeat_ms, cfg.heartbeat_ms.saturating_mul(misses));
    let mut tx0 = Sender::new(sock.clone(), cfg.split, counters.clone());
    let hs = match Receiver::new(sock.clone(), HANDSHAKE_MAX_FRAME, counters) {
        Ok(mut rx) => {
            rx.set_deadline(Some(cfg.handshake_ms));
            handshake(&shared, peer, misses, &sock, &mut tx0, &mut rx)
        }
        Err(e) => Err(End::Io(e)),
    };
    // The connection counted as one before its HELLO since the listener admitted it.
    shared.handshaking.add(-1, Relaxed);
    let (s, gen, max_frame) = match hs {
        Ok(h) => h,
        Err(end) => {
            return report(&shared, peer, 0, end, &mut |body| {
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
        Ok(mut rx) => run(&shared, &s, gen, &mut rx, max_frame, misses),
        Err(e) => End::Io(e),
    };
    let resumable = matches!(end, End::Closed | End::Silent | End::Io(_))
        && s.instance != 0
        && cfg.resume_ms > 0
        && !shared.is_stopping();
    report(&shared, peer, s.id, end, &mut |body| {
        let h = Header {
            session: s.id,
            ..Header::new(Kind::Error, 0)
        };
        let _ = s.send(gen, h, body);
    });
    if resumable {
        if s.detach(gen) {
            pr_info!(
                "session {} ({}) lost its connection: kept {} ms for its client to resume\n",
                s.id,
                peer,
                cfg.resume_ms
            );
        }
    } else {
        shared.end_session(&s, Some(gen));
    }
}

/// Logs how connection of session `id` (0: before the handshake) ended; `send` sends
/// an `ERROR` body to a client that broke the protocol.
fn report(shared: &Shared, peer: Peer, id: u32, end: End, send: &mut dyn FnMut(&[u8])) {
    // Anyone who reaches the port can make a connection fail: those lines are rate-limited.
    let limited = id == 0 || matches!(end, End::Bad(..) | End::Silent);
    let quiet = limited && !may_log_bad_frame();
    match end {
        End::Bad(code, detail) if quiet => {
            shared.bad_frames.add(1, Relaxed);
            send(&error_body(code, detail));
        }
        End::Silent if quiet => {
            shared.heartbeat_misses.add(1, Relaxed);
        }
        _ if quiet && id == 0 => (),
        End::Closed => pr_info!("session {} ({}) closed\n", id, peer),
        End::Goodbye => pr_info!("session {} ({}) ended by the client\n", id, peer),
        End::Stopping => (),
        End::Silent => {
            shared.heartbeat_misses.add(1, Relaxed);
            pr_notice!(
                "dropping connection from {}: silent for {} heartbeats\n",
                peer,
                max_misses(peer.is_tcp())
            );
        }
        End::Bad(code, detail) => {
            shared.bad_frames.add(1, Relaxed);
            pr_notice!("dropping connection from {}: {}\n", peer, code.name());
            send(&error_body(code, detail));
        }
        End::Io(e) => pr_info!("session {} ({}) failed: {:?}\n", id, peer, e),
    }
}

/// Serves session `s` on connection `gen` until it ends: after `max_misses` silent
/// heartbeat intervals at the latest.
fn run(
    shared: &Shared,
    s: &Arc<Session>,
    gen: u64,
    rx: &mut Receiver,
    max_frame: u32,
    max_misses: u32,
) -> End {
    let reply = |kind, seq| Header {
        session: s.id,
        seq,
        ..Header::new(kind, 0)
    };
    let (mut sink_bytes, mut sink_sum) = (0u64, SUM_INIT);
    let mut misses = 0u32;
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
                misses = misses.saturating_add(1);
                if misses >= max_misses {
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
            Kind::ClientSystemCall | Kind::ClientThreadCall => {
                let call = if hdr.kind == Kind::ClientThreadCall {
                    split_thread_call(body)
                } else {
                    Ok((LANE_MAIN, body))
                };
                match call.and_then(|(lane, body)| Ok(((lane, body), SyscallReq::decode(body)?))) {
                    Ok((call, (req, data))) => {
                        system_call(shared, s, gen, &hdr, call, (&req, data))
                    }
                    Err(e) => return End::Bad(e, hdr.kind as u32),
                }
            }
            Kind::ClientThread => match ThreadMsg::decode(body) {
                Ok(msg) => {
                    thread_event(shared, s, &hdr, &msg);
                    Ok(())
                }
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
                    "{} closed session {}: {}\n",
                    s.peer,
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

/// Waits for `HELLO` (at most `max_misses` heartbeat intervals), attaches the connection to
/// its session (sending `WELCOME`); returns the session, the connection's generation and the
/// negotiated maximum body length.
fn handshake(
    shared: &Shared,
    peer: Peer,
    max_misses: u32,
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
    let mut misses = 0u32;
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
            Err(RecvError::Timeout) if misses.saturating_add(1) < max_misses => {
                misses = misses.saturating_add(1)
            }
            Err(RecvError::Io(e)) if e == ETIMEDOUT => {
                return Err(busy(
                    shared,
                    sock,
                    peer,
                    fmt!("handshake not done within {} ms", cfg.handshake_ms),
                ));
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
            peer,
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
    let (s, gen, resumed) = match shared.attach(&hello, peer, sock, &greeting) {
        Ok(a) => a,
        Err(e) if e == EBUSY => {
            let limit = cfg.max_sessions;
            return Err(busy(
                shared,
                sock,
                peer,
                fmt!("too many sessions ({limit})"),
            ));
        }
        Err(e) if e == EUSERS => {
            let limit = cfg.max_sessions_per_cid;
            let why = "max_sessions_per_cid";
            return Err(busy(
                shared,
                sock,
                peer,
                fmt!("too many sessions of this client ({limit}, {why})"),
            ));
        }
        Err(e) if e == ESHUTDOWN => return Err(End::Stopping),
        Err(e) => return Err(End::Io(e)),
    };
    if resumed {
        pr_info!(
            "session {} ({}) resumed: max_frame {}\n",
            s.id,
            peer,
            max_frame
        );
    } else {
        pr_info!("session {} ({}) up: max_frame {}\n", s.id, peer, max_frame);
    }
    Ok((s, gen, max_frame))
}
