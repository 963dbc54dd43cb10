// SPDX-License-Identifier: GPL-2.0

//! Transport shared by both modules: kernel vsock and TCP (IPv4) sockets, split sends,
//! framed receives. Both carry the same frames; only the addresses differ ([`Peer`]).
//!
//! vhost-device-vsock 0.3.0 truncates guest-to-guest sends above about 3.7 KiB, so every
//! vsock send is cut into pieces of at most `split` bytes (a module parameter, default
//! [`DEFAULT_SPLIT`](crate::proto::frame::DEFAULT_SPLIT)); TCP sends are not cut.

use core::ptr::NonNull;
use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::atomic::{Atomic, Relaxed},
    sync::Arc,
    time::{Instant, Monotonic},
    workqueue::Queue,
};

use crate::proto::error::ProtoError;
use crate::proto::frame::{Header, HEADER_LEN};
use crate::proto::peer::{Peer, Server};

mod ffi {
    use kernel::bindings::workqueue_struct;
    use kernel::ffi::{c_char, c_int, c_uint, c_void};

    /// `struct socket`, only ever handled through pointers.
    #[repr(C)]
    pub(crate) struct socket {
        _opaque: [u8; 0],
        _pin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
    }

    extern "C" {
        pub(super) fn tether_vsock_listen(
            port: u32,
            backlog: c_int,
            res: *mut *mut socket,
        ) -> c_int;
        pub(super) fn tether_tcp_listen(port: u32, backlog: c_int, res: *mut *mut socket) -> c_int;
        pub(super) fn tether_sock_accept(
            l: *mut socket,
            res: *mut *mut socket,
            cid: *mut u32,
            ip: *mut u8,
            port: *mut u32,
        ) -> c_int;
        pub(super) fn tether_vsock_connect(
            cid: u32,
            port: u32,
            reserved: bool,
            res: *mut *mut socket,
        ) -> c_int;
        pub(super) fn tether_tcp_connect(
            ip: *const u8,
            port: u32,
            reserved: bool,
            timeout_ms: c_uint,
            res: *mut *mut socket,
        ) -> c_int;
        pub(super) fn tether_sock_send(s: *mut socket, buf: *const c_void, len: usize) -> c_int;
        pub(super) fn tether_sock_recv(s: *mut socket, buf: *mut c_void, len: usize) -> c_int;
        pub(super) fn tether_sock_send_nowait(
            s: *mut socket,
            buf: *const c_void,
            len: usize,
        ) -> c_int;
        pub(super) fn tether_sock_set_timeouts(s: *mut socket, rcv_ms: c_uint, snd_ms: c_uint);
        pub(super) fn tether_sock_shutdown(s: *mut socket);
        pub(super) fn tether_sock_release(s: *mut socket);
        pub(super) fn tether_wq_alloc(name: *const c_char) -> *mut workqueue_struct;
    }
}

// Log lines name peers and servers as the protocol crate prints them.
impl kernel::fmt::Display for Peer {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

impl kernel::fmt::Display for Server {
    fn fmt(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// A kernel vsock or TCP stream socket.
///
/// # Invariants
///
/// `sock` points to a `struct socket` created by the socket layer and owned by this value;
/// it is released exactly once, on drop. `tcp` says whether it is an `AF_INET` socket.
pub(crate) struct Socket {
    sock: NonNull<ffi::socket>,
    tcp: bool,
    /// [`Socket::shutdown`] ran: an end of stream is ours, not the peer's.
    shut: Atomic<bool>,
}

// SAFETY: The socket layer serialises concurrent calls on one socket internally; sending,
// receiving and shutting down from different threads is allowed.
unsafe impl Send for Socket {}
// SAFETY: As above: every method takes `&self` and the socket layer does the locking.
unsafe impl Sync for Socket {}

impl Socket {
    fn from_raw(ret: i32, sock: *mut ffi::socket, tcp: bool) -> Result<Self> {
        kernel::error::to_result(ret)?;
        // INVARIANT: the shim returned 0, so `sock` is a new socket of the family the
        // caller asked for, that we now own.
        Ok(Self {
            sock: NonNull::new(sock).ok_or(EINVAL)?,
            tcp,
            shut: Atomic::new(false),
        })
    }

    /// A socket listening on `port`: vsock of any local CID, or (`tcp`) TCP of any local
    /// IPv4 address.
    pub(crate) fn listen(port: u32, backlog: i32, tcp: bool) -> Result<Self> {
        let mut sock = core::ptr::null_mut();
        // SAFETY: `sock` is a valid out-pointer for the duration of the call.
        let ret = unsafe {
            if tcp {
                ffi::tether_tcp_listen(port, backlog, &mut sock)
            } else {
                ffi::tether_vsock_listen(port, backlog, &mut sock)
            }
        };
        Self::from_raw(ret, sock, tcp)
    }

    /// Accepts one connection; returns it with the peer and its source port. `EAGAIN`
    /// after the receive timeout.
    pub(crate) fn accept(&self) -> Result<(Self, Peer, u32)> {
        let mut sock = core::ptr::null_mut();
        let (mut cid, mut ip, mut port) = (0u32, [0u8; 4], 0u32);
        // SAFETY: `self.sock` is valid by the type invariant; the out-pointers are valid,
        // `ip` for the 4 bytes the shim writes.
        let ret = unsafe {
            ffi::tether_sock_accept(
                self.sock.as_ptr(),
                &mut sock,
                &mut cid,
                ip.as_mut_ptr(),
                &mut port,
            )
        };
        let peer = if self.tcp {
            Peer::Ipv4(ip)
        } else {
            Peer::Vsock(cid)
        };
        Ok((Self::from_raw(ret, sock, self.tcp)?, peer, port))
    }

    /// Connects to `server`, from a reserved source port (below 1024) when `reserved` is
    /// set; over TCP gives up after `timeout_ms` (`ETIMEDOUT`; vsock has its own limit).
    pub(crate) fn connect(server: &Server, reserved: bool, timeout_ms: u32) -> Result<Self> {
        let mut sock = core::ptr::null_mut();
        // SAFETY: `sock` is a valid out-pointer for the duration of the call; `ip` is
        // readable for the 4 bytes the shim reads.
        let ret = unsafe {
            match &server.peer {
                Peer::Vsock(cid) => {
                    ffi::tether_vsock_connect(*cid, server.port, reserved, &mut sock)
                }
                Peer::Ipv4(ip) => ffi::tether_tcp_connect(
                    ip.as_ptr(),
                    server.port,
                    reserved,
                    timeout_ms,
                    &mut sock,
                ),
            }
        };
        Self::from_raw(ret, sock, server.peer.is_tcp())
    }

    /// Sets the receive (and accept) and send timeouts; 0 waits forever.
    pub(crate) fn set_timeouts(&self, rcv_ms: u32, snd_ms: u32) {
        // SAFETY: `self.sock` is valid by the type invariant.
        unsafe { ffi::tether_sock_set_timeouts(self.sock.as_ptr(), rcv_ms, snd_ms) };
    }

    /// Shuts both directions down: blocked and later sends and receives return at once.
    pub(crate) fn shutdown(&self) {
        self.shut.store(true, Relaxed);
        // SAFETY: `self.sock` is valid by the type invariant.
        unsafe { ffi::tether_sock_shutdown(self.sock.as_ptr()) };
    }

    /// Sends all of `buf`, in pieces of at most `split` bytes.
    fn send_all(&self, mut buf: &[u8], split: usize) -> Result {
        while !buf.is_empty() {
            let n = buf.len().min(split);
            // SAFETY: `self.sock` is valid; `buf` is readable for `n <= buf.len()` bytes.
            let ret = unsafe { ffi::tether_sock_send(self.sock.as_ptr(), buf.as_ptr().cast(), n) };
            kernel::error::to_result(ret)?;
            // A short send (timeout or signal after some bytes) just continues.
            let sent = usize::try_from(ret).map_err(|_| EIO)?.min(n);
            if sent == 0 {
                return Err(EPIPE);
            }
            buf = &buf[sent..];
        }
        Ok(())
    }

    /// Sends what fits of `buf` now, without waiting for send credit: the bytes sent
    /// (`EAGAIN`: none fit).
    pub(crate) fn send_nowait(&self, buf: &[u8]) -> Result<usize> {
        // SAFETY: `self.sock` is valid; `buf` is readable for its length.
        let ret = unsafe {
            ffi::tether_sock_send_nowait(self.sock.as_ptr(), buf.as_ptr().cast(), buf.len())
        };
        kernel::error::to_result(ret)?;
        usize::try_from(ret).map_err(|_| EIO)
    }

    /// Receives up to `buf.len()` bytes: `Ok(0)` at end of stream, `EAGAIN` on timeout.
    fn recv_some(&self, buf: &mut [u8]) -> Result<usize> {
        // SAFETY: `self.sock` is valid; `buf` is writable for `buf.len()` bytes.
        let ret = unsafe {
            ffi::tether_sock_recv(self.sock.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        kernel::error::to_result(ret)?;
        usize::try_from(ret).map_err(|_| EIO)
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: By the type invariant we own the socket and this is the only release.
        unsafe { ffi::tether_sock_release(self.sock.as_ptr()) };
    }
}

/// Traffic counters of one link (or the sum of several).
pub(crate) struct Stats {
    pub(crate) frames_in: Atomic<u64>,
    pub(crate) frames_out: Atomic<u64>,
    pub(crate) bytes_in: Atomic<u64>,
    pub(crate) bytes_out: Atomic<u64>,
}

impl Stats {
    /// All counters at zero.
    pub(crate) fn new() -> Self {
        Self {
            frames_in: Atomic::new(0),
            frames_out: Atomic::new(0),
            bytes_in: Atomic::new(0),
            bytes_out: Atomic::new(0),
        }
    }

    /// Writes the counters as `key=value` lines.
    pub(crate) fn show(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "frames_in={}", self.frames_in.load(Relaxed))?;
        writeln!(f, "frames_out={}", self.frames_out.load(Relaxed))?;
        writeln!(f, "bytes_in={}", self.bytes_in.load(Relaxed))?;
        writeln!(f, "bytes_out={}", self.bytes_out.load(Relaxed))
    }

    fn count(frames: &Atomic<u64>, bytes: &Atomic<u64>, n: usize) {
        frames.add(1, Relaxed);
        bytes.add(u64::try_from(n).unwrap_or(u64::MAX), Relaxed);
    }
}

/// Why receiving a frame failed.
pub(crate) enum RecvError {
    /// The peer closed the stream between frames, or this side shut the socket down (even
    /// in the middle of a frame: the connection was lost, the peer broke nothing).
    Closed,
    /// No byte arrived within the receive timeout (between frames).
    Timeout,
    /// The bytes broke the protocol.
    Proto(ProtoError),
    /// The socket failed (including a peer that stalled in the middle of a frame).
    Io(Error),
}

impl From<ProtoError> for RecvError {
    fn from(e: ProtoError) -> Self {
        RecvError::Proto(e)
    }
}

/// Receive timeouts in a row after which a frame that started arriving is given up.
const MAX_STALLS: u32 = 3;

/// The counters a link updates: its own (if it has any) and the module's totals.
#[derive(Clone)]
pub(crate) struct Counters {
    pub(crate) link: Option<Arc<Stats>>,
    pub(crate) total: Arc<Stats>,
}

impl Counters {
    fn count_in(&self, n: usize) {
        if let Some(s) = &self.link {
            Stats::count(&s.frames_in, &s.bytes_in, n);
        }
        Stats::count(&self.total.frames_in, &self.total.bytes_in, n);
    }

    fn count_out(&self, n: usize) {
        if let Some(s) = &self.link {
            Stats::count(&s.frames_out, &s.bytes_out, n);
        }
        Stats::count(&self.total.frames_out, &self.total.bytes_out, n);
    }
}

/// The sending half of a framed connection.
pub(crate) struct Sender {
    sock: Arc<Socket>,
    split: usize,
    stats: Counters,
}

impl Sender {
    /// Sends frames on `sock` in pieces of at most `split` bytes (vsock; TCP sends whole
    /// frames).
    pub(crate) fn new(sock: Arc<Socket>, split: usize, stats: Counters) -> Self {
        let split = if sock.tcp { usize::MAX } else { split };
        Self {
            sock,
            split: split.max(HEADER_LEN),
            stats,
        }
    }

    /// Sends one frame: `hdr` (its `len` is set from `body`) then `body`.
    pub(crate) fn send(&mut self, hdr: Header, body: &[u8]) -> Result {
        self.send_prefixed(hdr, &[], body)
    }

    /// Sends one frame whose body is `prefix` (at most 64 bytes) followed by `body`.
    pub(crate) fn send_prefixed(&mut self, mut hdr: Header, prefix: &[u8], body: &[u8]) -> Result {
        if prefix.len() > 64 {
            return Err(EINVAL);
        }
        let total = prefix.len().checked_add(body.len()).ok_or(EMSGSIZE)?;
        hdr.len = u32::try_from(total).map_err(|_| EMSGSIZE)?;
        // The header and the prefix go out with the start of the body: one send for small
        // frames.
        let mut piece = [0u8; 512];
        // At most 32 + 64 bytes: within `piece`.
        let at = HEADER_LEN.saturating_add(prefix.len());
        let first = body
            .len()
            .min(piece.len().min(self.split).saturating_sub(at));
        let (head, rest) = body.split_at(first);
        piece[..HEADER_LEN].copy_from_slice(&hdr.encode());
        piece[HEADER_LEN..at].copy_from_slice(prefix);
        let end = at.saturating_add(first);
        piece[at..end].copy_from_slice(head);
        self.sock.send_all(&piece[..end], self.split)?;
        self.sock.send_all(rest, self.split)?;
        self.stats.count_out(HEADER_LEN.saturating_add(total));
        Ok(())
    }
}

/// The receiving half of a framed connection.
pub(crate) struct Receiver {
    sock: Arc<Socket>,
    buf: KVVec<u8>,
    stats: Counters,
    /// Receiving fails with `ETIMEDOUT` once this passed (checked after every receive
    /// timeout and every piece received), however slowly bytes trickle in.
    deadline: Option<(Instant<Monotonic>, i64)>,
}

impl Receiver {
    /// Receives frames from `sock` with bodies of at most `max_frame` bytes.
    pub(crate) fn new(sock: Arc<Socket>, max_frame: u32, stats: Counters) -> Result<Self> {
        let mut rx = Self {
            sock,
            buf: KVVec::new(),
            stats,
            deadline: None,
        };
        rx.set_max_frame(max_frame)?;
        Ok(rx)
    }

    /// Resizes the receive buffer for a newly negotiated maximum body length.
    pub(crate) fn set_max_frame(&mut self, max_frame: u32) -> Result {
        let n = usize::try_from(max_frame).map_err(|_| EINVAL)?;
        self.buf.clear();
        self.buf.resize(n, 0, GFP_KERNEL)?;
        Ok(())
    }

    /// Receiving fails with `ETIMEDOUT` once `ms` from now passed (`None`: no deadline).
    pub(crate) fn set_deadline(&mut self, ms: Option<u32>) {
        self.deadline = ms.map(|ms| (Instant::<Monotonic>::now(), i64::from(ms)));
    }

    /// The body of the frame `hdr` that [`Receiver::recv`] returned last.
    pub(crate) fn last_body(&self, hdr: &Header) -> &[u8] {
        self.buf.get(..hdr.len as usize).unwrap_or_default()
    }

    fn max_frame(&self) -> u32 {
        u32::try_from(self.buf.len()).unwrap_or(u32::MAX)
    }

    /// Fills `buf` from the stream. `first` marks the first bytes of a frame: only there is
    /// a timeout or an end of stream a normal outcome.
    fn recv_exact(
        sock: &Socket,
        buf: &mut [u8],
        first: bool,
        deadline: Option<(Instant<Monotonic>, i64)>,
    ) -> core::result::Result<(), RecvError> {
        let mut got = 0;
        let mut stalls = 0;
        while got < buf.len() {
            if deadline.is_some_and(|(start, ms)| start.elapsed().as_millis() >= ms) {
                return Err(RecvError::Io(ETIMEDOUT));
            }
            match sock.recv_some(&mut buf[got..]) {
                Ok(0) if (first && got == 0) || sock.shut.load(Relaxed) => {
                    return Err(RecvError::Closed)
                }
                Ok(0) => return Err(RecvError::Proto(ProtoError::Truncated)),
                Ok(n) => {
                    got = got.saturating_add(n);
                    stalls = 0;
                }
                Err(e) if e == EAGAIN && first && got == 0 => return Err(RecvError::Timeout),
                Err(e) if e == EAGAIN && stalls < MAX_STALLS => stalls = stalls.saturating_add(1),
                Err(e) if e == EAGAIN => return Err(RecvError::Io(ETIMEDOUT)),
                Err(e) => return Err(RecvError::Io(e)),
            }
        }
        Ok(())
    }

    /// Receives one frame whose body is at most `limit` bytes (and at most the buffer):
    /// its checked header and its body.
    pub(crate) fn recv(&mut self, limit: u32) -> core::result::Result<(Header, &[u8]), RecvError> {
        let mut head = [0u8; HEADER_LEN];
        Self::recv_exact(&self.sock, &mut head, true, self.deadline)?;
        let hdr = Header::decode(&head, limit.min(self.max_frame()))?;
        // `decode` checked `hdr.len <= self.buf.len()`.
        let body = &mut self.buf[..hdr.len as usize];
        Self::recv_exact(&self.sock, body, false, self.deadline)?;
        self.stats.count_in(HEADER_LEN.saturating_add(body.len()));
        Ok((hdr, body))
    }
}

/// A workqueue owned by a module: sessions and listeners run as its work items.
///
/// # Invariants
///
/// `wq` was returned by `alloc_workqueue` and is destroyed exactly once, on drop.
pub(crate) struct OwnedQueue {
    wq: NonNull<bindings::workqueue_struct>,
}

// SAFETY: Workqueues may be used and destroyed from any thread.
unsafe impl Send for OwnedQueue {}
// SAFETY: Enqueueing through a shared reference is what workqueues are for.
unsafe impl Sync for OwnedQueue {}

impl OwnedQueue {
    /// Allocates an unbound workqueue called `name`.
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that outlives the queue.
        let wq = unsafe { ffi::tether_wq_alloc(name.as_char_ptr()) };
        // INVARIANT: a non-null result is a new workqueue we own.
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    /// The queue, to enqueue work on.
    pub(crate) fn queue(&self) -> &Queue {
        // SAFETY: `wq` is valid until `self` is dropped, which the returned lifetime ensures.
        unsafe { Queue::from_raw(self.wq.as_ptr()) }
    }
}

impl Drop for OwnedQueue {
    fn drop(&mut self) {
        // SAFETY: By the type invariant this is the only destruction. It waits for every
        // work item, including ones they queue while draining.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}

/// Checks the link parameters both modules share: `max_frame`, `split` and `heartbeat_ms`.
pub(crate) fn check_link_params(max_frame: u32, split: usize, heartbeat_ms: u32) -> Result {
    use crate::proto::frame::{HEARTBEAT_MS, MAX_FRAME, MIN_FRAME};
    if !(MIN_FRAME..=MAX_FRAME).contains(&max_frame) {
        pr_err!(
            "max_frame={} is outside {}..={}\n",
            max_frame,
            MIN_FRAME,
            MAX_FRAME
        );
        return Err(EINVAL);
    }
    if !(HEADER_LEN + 1..=65536).contains(&split) {
        pr_err!("split={} is outside {}..=65536\n", split, HEADER_LEN + 1);
        return Err(EINVAL);
    }
    if !HEARTBEAT_MS.contains(&heartbeat_ms) {
        pr_err!(
            "heartbeat_ms={} is outside {}..={}\n",
            heartbeat_ms,
            HEARTBEAT_MS.start(),
            HEARTBEAT_MS.end()
        );
        return Err(EINVAL);
    }
    Ok(())
}

/// A random 64-bit number (boot verifiers).
pub(crate) fn random_u64() -> u64 {
    // SAFETY: `get_random_u64` has no preconditions.
    unsafe { bindings::get_random_u64() }
}
