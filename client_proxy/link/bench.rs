// SPDX-License-Identifier: GPL-2.0

//! Module-to-module transfer measurements through the debugfs `bench` file.
//!
//! Writing `ping COUNT SIZE` measures COUNT echo round trips of SIZE-byte bodies; writing
//! `bulk TOTAL MSG` streams TOTAL bytes in MSG-byte frames that the server counts and
//! checksums. The write returns when the run is over; reading the file shows the result.
//! The connection worker runs the measurement on its own connection.

use core::fmt;
use kernel::{
    alloc::KVVec,
    prelude::*,
    sync::Arc,
    time::{Instant, Monotonic},
    uaccess::UserSliceReader,
};

use crate::link::connection::{handle_frame, Conn, Handled};
use crate::num::{len_u64, len_usize};
use crate::proto::codec::{sum64, SUM_INIT};
use crate::proto::frame::{Header, F_ACK_REQ};
use crate::proto::kind::Kind;
use crate::proto::msg::SinkAck;
use crate::state::Shared;
use crate::transport::RecvError;

/// A requested measurement.
#[derive(Clone, Copy)]
pub(crate) enum BenchReq {
    Ping { count: u32, size: u32 },
    Bulk { total: u64, msg: u32 },
}

/// A finished measurement.
pub(crate) enum BenchResult {
    Ping {
        count: u32,
        size: u32,
        min_ns: u64,
        p50_ns: u64,
        p99_ns: u64,
    },
    Bulk {
        bytes: u64,
        msg: u32,
        ns: u64,
        verified: bool,
    },
}

fn parse(line: &str) -> Result<BenchReq> {
    let mut it = line.split_whitespace();
    let (what, a, b) = (it.next(), it.next(), it.next());
    if it.next().is_some() {
        return Err(EINVAL);
    }
    let a: u64 = a.ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?;
    let b: u32 = b.ok_or(EINVAL)?.parse().map_err(|_| EINVAL)?;
    match what {
        Some("ping") if (1..=1_000_000).contains(&a) && b <= 65536 => Ok(BenchReq::Ping {
            count: u32::try_from(a).map_err(|_| EINVAL)?,
            size: b,
        }),
        Some("bulk")
            if (1..=1u64 << 36).contains(&a) && (8..=1 << 20).contains(&b) && b % 8 == 0 =>
        {
            Ok(BenchReq::Bulk { total: a, msg: b })
        }
        _ => Err(EINVAL),
    }
}

/// debugfs write: queues a measurement and waits for its end.
pub(crate) fn request(shared: &Arc<Shared>, reader: &mut UserSliceReader) -> Result {
    let mut buf = [0u8; 64];
    let n = reader.len();
    let dst = buf.get_mut(..n).ok_or(EINVAL)?;
    reader.read_slice(dst)?;
    let req = parse(core::str::from_utf8(dst).map_err(|_| EINVAL)?)?;
    let mut inner = shared.inner.lock();
    if inner.stopping {
        return Err(ESHUTDOWN);
    }
    if !shared.is_connected() {
        return Err(ENOTCONN);
    }
    if inner.bench_busy {
        return Err(EBUSY);
    }
    inner.bench_busy = true;
    inner.bench_req = Some(req);
    inner.bench_result = None;
    while inner.bench_result.is_none() && !inner.stopping {
        if shared.bench_done.wait_interruptible(&mut inner) {
            return Err(ERESTARTSYS);
        }
    }
    match &inner.bench_result {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(*e),
        None => Err(ESHUTDOWN),
    }
}

/// debugfs read: the last result.
pub(crate) fn show(shared: &Arc<Shared>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match &shared.inner.lock().bench_result {
        None => writeln!(f, "none"),
        Some(Err(e)) => writeln!(f, "error {:?}", e),
        Some(Ok(BenchResult::Ping {
            count,
            size,
            min_ns,
            p50_ns,
            p99_ns,
        })) => writeln!(
            f,
            "ping count={count} size={size} min_ns={min_ns} p50_ns={p50_ns} p99_ns={p99_ns}"
        ),
        Some(Ok(BenchResult::Bulk {
            bytes,
            msg,
            ns,
            verified,
        })) => {
            let mb_per_s = bytes
                .saturating_mul(1000)
                .checked_div((*ns).max(1))
                .unwrap_or(0);
            writeln!(
                f,
                "bulk bytes={bytes} msg={msg} ns={ns} mb_per_s={mb_per_s} verified={}",
                u8::from(*verified)
            )
        }
    }
}

/// The measurement waiting for the connection worker, if any.
pub(crate) fn take_pending(shared: &Shared) -> Option<BenchReq> {
    shared.inner.lock().bench_req.take()
}

/// Publishes the outcome of a measurement and wakes its requester.
pub(crate) fn complete(shared: &Shared, result: Result<BenchResult>) {
    let mut inner = shared.inner.lock();
    inner.bench_result = Some(result);
    inner.bench_busy = false;
    shared.bench_done.notify_all();
}

/// Fails a measurement that is still waiting (the connection went down).
pub(crate) fn fail_pending(shared: &Shared, err: Error) {
    if take_pending(shared).is_some() {
        complete(shared, Err(err));
    }
}

/// Runs `req` on `conn`. Tethered tasks go on meanwhile: their calls share the
/// connection, and the frames the run does not own (their replies, signals, flush
/// notices, heartbeats) take the normal receive path.
pub(crate) fn run(shared: &Shared, conn: &mut Conn, req: &BenchReq) -> Result<BenchResult> {
    match *req {
        BenchReq::Ping { count, size } => ping(shared, conn, count, size),
        BenchReq::Bulk { total, msg } => bulk(shared, conn, total, msg),
    }
}

/// How long a run waits for one answer before it gives up.
const REPLY_TIMEOUT_MS: i64 = 10_000;

/// Receives until a frame of `kind` answering `seq` arrives. Every other frame goes to the
/// connection's normal receive path (`connection::handle_frame`): a task's `SERVER_REPLY`
/// that arrives during a run reaches its task. A writeback error reported meanwhile is
/// handled by the worker after the run (it compares `verifier_changes`). A stale answer of
/// an earlier run (one that gave up) is dropped.
fn await_reply(shared: &Shared, conn: &mut Conn, kind: Kind, seq: u64) -> Result<Header> {
    let started = Instant::<Monotonic>::now();
    loop {
        match conn.rx.recv(conn.max_frame) {
            Ok((hdr, _)) if hdr.kind == kind && hdr.seq == seq => {
                conn.last_rx = Instant::now();
                return Ok(hdr);
            }
            Ok((hdr, _)) if matches!(hdr.kind, Kind::EchoReply | Kind::SinkAck) => {
                conn.last_rx = Instant::now();
            }
            Ok((hdr, body)) => {
                conn.last_rx = Instant::now();
                match handle_frame(shared, conn.session, &conn.tx, &hdr, body)? {
                    Handled::Done | Handled::Redo => (),
                    Handled::Closed => return Err(ECONNRESET),
                    Handled::Bad(e) => {
                        pr_notice!("bench: server sent an unexpected frame: {}\n", e.name());
                        return Err(EPROTO);
                    }
                }
            }
            // A lost server is noticed by the connection worker once the run gives up.
            Err(RecvError::Timeout) if started.elapsed().as_millis() < REPLY_TIMEOUT_MS => (),
            Err(_) => return Err(EIO),
        }
    }
}

fn ping(shared: &Shared, conn: &mut Conn, count: u32, size: u32) -> Result<BenchResult> {
    let mut body = KVVec::new();
    body.resize(len_usize(size.into())?, 0, GFP_KERNEL)?;
    for (i, b) in body.iter_mut().enumerate() {
        *b = low_byte(len_u64(i)).wrapping_mul(31);
    }
    let mut times = KVVec::with_capacity(len_usize(count.into())?, GFP_KERNEL)?;
    for i in 0..count {
        if let Some(first) = body.first_mut() {
            *first = low_byte(i.into());
        }
        let t0 = Instant::<Monotonic>::now();
        let h = conn.header(Kind::EchoReq);
        conn.tx.lock().send(h, &body)?;
        let reply = await_reply(shared, conn, Kind::EchoReply, h.seq)?;
        let ns = t0.elapsed().as_nanos();
        if conn.rx.last_body(&reply) != &body[..] {
            pr_notice!("bench: echo {} came back different\n", i);
            return Err(EIO);
        }
        times.push(u64::try_from(ns).unwrap_or(0), GFP_KERNEL)?;
    }
    heapsort(&mut times);
    let at = |q: usize| {
        let i = times.len().saturating_mul(q) / 100;
        times.get(i).copied().unwrap_or(0)
    };
    Ok(BenchResult::Ping {
        count,
        size,
        min_ns: at(0),
        p50_ns: at(50),
        p99_ns: at(99),
    })
}

/// Sorts `v` in place. (`core`'s sorts trip objtool in modules on Linux 7.3.)
fn heapsort(v: &mut [u64]) {
    fn sift_down(v: &mut [u64], mut root: usize, end: usize) {
        loop {
            // The children of `root`: `2 * root + 1` and the one after.
            let Some(mut child) = root.checked_mul(2).and_then(|c| c.checked_add(1)) else {
                return;
            };
            if child >= end {
                return;
            }
            // `child < end`: no overflow.
            let right = child.saturating_add(1);
            if right < end && v[child] < v[right] {
                child = right;
            }
            if v[root] >= v[child] {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    }
    for i in (0..v.len() / 2).rev() {
        sift_down(v, i, v.len());
    }
    for end in (1..v.len()).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// The low byte of `v` (a pattern byte).
fn low_byte(v: u64) -> u8 {
    v.to_le_bytes()[0]
}

/// The length of message `i` of a bulk run of `total` bytes in `msg`-byte messages.
fn msg_len(total: u64, i: u64, msg: u64) -> usize {
    let left = total.saturating_sub(i.saturating_mul(msg)).min(msg);
    usize::try_from(left).unwrap_or(0)
}

/// Fills `msg` with the content of message `i` of a bulk run.
fn fill(msg: &mut [u8], i: u64) {
    for (j, chunk) in msg.chunks_mut(8).enumerate() {
        let w = i
            .wrapping_mul(0x1_0000_0001)
            .wrapping_add(len_u64(j))
            .to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

fn bulk(shared: &Shared, conn: &mut Conn, total: u64, msg: u32) -> Result<BenchResult> {
    let mut buf = KVVec::new();
    buf.resize(len_usize(msg.min(conn.max_frame).into())?, 0, GFP_KERNEL)?;
    let msg = len_u64(buf.len());
    let messages = total.div_ceil(msg);
    let t0 = Instant::<Monotonic>::now();
    let mut last_seq = 0;
    for i in 0..messages {
        let len = msg_len(total, i, msg);
        fill(&mut buf[..len], i);
        let mut h = conn.header(Kind::Sink);
        if i.checked_add(1) == Some(messages) {
            h.flags = F_ACK_REQ;
            last_seq = h.seq;
        }
        conn.tx.lock().send(h, &buf[..len])?;
    }
    let reply = await_reply(shared, conn, Kind::SinkAck, last_seq)?;
    let ns = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(0);
    let ack = SinkAck::decode(conn.rx.last_body(&reply)).map_err(|_| EPROTO)?;
    // The expected checksum is computed after the clock stopped.
    let mut sum = SUM_INIT;
    for i in 0..messages {
        let len = msg_len(total, i, msg);
        fill(&mut buf[..len], i);
        sum = sum64(sum, &buf[..len]);
    }
    let verified = ack.bytes == total && ack.sum == sum;
    if !verified {
        pr_notice!(
            "bench: server received {} bytes (sum {:#x}), sent {} (sum {:#x})\n",
            ack.bytes,
            ack.sum,
            total,
            sum
        );
    }
    Ok(BenchResult::Bulk {
        bytes: total,
        msg: u32::try_from(msg).unwrap_or(u32::MAX),
        ns,
        verified,
    })
}
