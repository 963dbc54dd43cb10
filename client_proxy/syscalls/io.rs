// SPDX-License-Identifier: GPL-2.0

//! Implements remote `read(2)`, `write(2)`, `pread64(2)`, `pwrite64(2)`, the vectored forms
//! and `lseek(2)`: client offsets, pieces in flight, retained writes.

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

use super::proxy::Proxy;
use super::{call, done, errno, Dispatch, Outcome};
use crate::link::rpc;
use crate::link::rpc::request;
use crate::num::{
    access_ok, arg_i64, arg_u32, count_i64, len_u64, outcome, pos_u64, reg_i64, user_addr, wire_len,
};
use crate::proto::calls;
use crate::proto::syscall::{BufDesc, SyscallReq, DIR_IN, DIR_OUT, DIR_RET};
use crate::proto::sysno;
use crate::state::client;
use crate::state::Shared;

extern "C" {
    fn tether_retain() -> bool;
}

/// Where a transfer happens in a remote file.
#[derive(Clone, Copy)]
pub(crate) enum At {
    /// At the proxy file's offset; a file that cannot seek (a FIFO: `ESPIPE`) is read or
    /// written as a stream instead.
    FilePos(i64),
    /// At an explicit offset (`pread64`, `preadv`, ...): `ESPIPE` stays an error.
    Offset(i64),
    /// Where the server's file is: streams (FIFOs).
    Stream,
    /// At the end of the file (`O_APPEND`): each piece comes back with the offset where
    /// it ended (shadow call [`calls::APPEND`]).
    Append,
}

/// Largest piece of one remote read or write, and how many pieces of one call may be in
/// flight at once (so that copying, sending, the server's I/O and the reply overlap).
pub(crate) const PIECE: u64 = 128 * 1024;
pub(crate) const WINDOW: usize = 8;

/// The most one read, write, vectored transfer or `sendfile` moves (`MAX_RW_COUNT`:
/// `INT_MAX & PAGE_MASK`); larger requests are cut to it, as Linux cuts them.
pub(crate) const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// `rw_verify_area()` (`fs/read_write.c`) for `count` bytes at position `pos` of a file
/// with signed offsets (every file a shadow opens is one): `EINVAL` for a count beyond
/// `ssize_t`, a negative position, or an end beyond `loff_t`. The kernel makes this check
/// on the whole count before it cuts the count to [`MAX_RW_COUNT`] and before the file
/// system sees the call, so the client makes it too: a transfer in pieces would otherwise
/// check each piece alone.
pub(crate) fn verify_area(pos: i64, count: u64) -> Result {
    let count = i64::try_from(count).map_err(|_| EINVAL)?;
    if pos < 0 || pos.checked_add(count).is_none() {
        return Err(EINVAL);
    }
    Ok(())
}

/// The checks `vfs_read()`/`vfs_write()` make before any I/O, in their order: the access
/// mode (`EBADF`), the user buffer (`access_ok`: `EFAULT`), then [`verify_area`]. Returns
/// the count to move, at most [`MAX_RW_COUNT`].
pub(crate) fn verify_rw(p: &Proxy, write: bool, buf: u64, count: u64, pos: i64) -> Result<u64> {
    let mode = if write { p.writable() } else { p.readable() };
    if !mode {
        return Err(EBADF);
    }
    if !access_ok(buf, count) {
        return Err(EFAULT);
    }
    verify_area(pos, count)?;
    Ok(count.min(MAX_RW_COUNT))
}

/// One piece of a remote write the server stored: its call, the bytes written and, for an
/// append, the offset where they ended.
pub(crate) struct Written {
    reply: rpc::Reply,
    len: usize,
    end: Option<i64>,
    /// Where the data starts in the request (after one buffer descriptor, or two for an
    /// append).
    at: usize,
}

/// Moves `len` bytes between user memory at `buf` and proxy file `p` at `at` (`write`:
/// from user memory to the file). Returns the bytes moved: the first short or failed piece
/// ends the transfer, like a short `read`/`write`; a failure before any byte moved is the
/// result (an errno from the server, or a local error). The caller has checked the
/// arguments ([`verify_rw`]): `len` is at most [`MAX_RW_COUNT`] and the range fits `loff_t`.
///
/// The pieces written are retained (`retain.rs`), appends at the offsets where they
/// landed; `end` is then where the last append ended. Writes to a FIFO are not retained.
/// A write error the fd has to report (`Proxy::take_write_error`) fails a write before
/// any byte moves.
pub(crate) fn transfer(
    p: &Proxy,
    buf: u64,
    len: u64,
    at: At,
    write: bool,
    end: &mut Option<i64>,
) -> Outcome {
    if let Some(e) = write.then(|| p.take_write_error()).flatten() {
        return Err(e);
    }
    let mut written = KVec::new();
    let r = match transfer_at(p, buf, len, at, write, &mut written) {
        Err(e) if e == ESPIPE && matches!(at, At::FilePos(_)) => {
            return transfer_at(p, buf, len, At::Stream, write, &mut KVec::new());
        }
        r => r,
    };
    *end = written.last().and_then(|w| w.end);
    match at {
        At::FilePos(pos) | At::Offset(pos) => retain(p, Some(pos), written),
        At::Append => retain(p, None, written),
        At::Stream => (),
    }
    r
}

/// Retains the pieces `written` to `p`: the first at offset `start` and the others after
/// it, or (appends) each where it ended less its length.
pub(crate) fn retain(p: &Proxy, start: Option<i64>, written: KVec<Written>) {
    // SAFETY: No preconditions.
    if written.is_empty() || !unsafe { tether_retain() } {
        return;
    }
    let Some(shared) = client() else { return };
    let log = shared.log.lock();
    let attrs = log.attrs(p.rpid).map(|(_, a)| a);
    let mut retained = shared.retained.lock();
    let mut pos = start;
    let mut failed = None;
    for w in written {
        let len = count_i64(len_u64(w.len)).ok();
        let kept = pos
            .or_else(|| w.end.zip(len).and_then(|(e, l)| e.checked_sub(l)))
            .filter(|off| *off >= 0)
            .ok_or(ESPIPE)
            .and_then(|off| {
                let path = log.path(p.rpid, p.sfd).ok_or(ENOENT)?;
                let mut copy = KVVec::new();
                copy.extend_from_slice(path, GFP_KERNEL)?;
                retained.keep(w.reply.seq, copy, off, attrs, w.reply.req, w.at, w.len)
            });
        failed = failed.or(kept.err());
        pos = pos.zip(len).and_then(|(p, l)| p.checked_add(l));
    }
    if let Some(e) = failed {
        pr_notice!(
            "cannot retain a write of pid {} to server fd {} ({:?}): a server crash before it is flushed loses it\n",
            p.rpid,
            p.sfd,
            e
        );
    }
}

/// [`transfer`] at one kind of position: pieces of at most [`PIECE`] bytes, up to
/// [`WINDOW`] of them in flight (one for streams, which must not read ahead), answered
/// in order by the shadow. A transfer of 0 bytes still asks the server once, which says
/// what the file makes of it (a directory: `EISDIR`).
///
/// Pieces already sent when an earlier one comes back short are not undone: a write that
/// fails half-way (`ENOSPC`) may have stored data past the length it returns.
pub(crate) fn transfer_at(
    p: &Proxy,
    buf: u64,
    len: u64,
    at: At,
    write: bool,
    written: &mut KVec<Written>,
) -> Outcome {
    let shared = client().ok_or(EIO)?;
    let window = if matches!(at, At::Stream | At::Append) {
        1
    } else {
        WINDOW
    };
    let mut flight = KVec::with_capacity(window, GFP_KERNEL)?;
    let (mut sent, mut done) = (0u64, 0u64);
    let mut first = true;
    // A local failure (a fault in the user buffer, no memory) while sending.
    let mut stop = None;
    loop {
        while stop.is_none() && (sent < len || first) && flight.len() < window {
            first = false;
            let n = len.saturating_sub(sent).min(PIECE);
            match send_piece(&shared, p, buf, n, at, sent, write)
                .and_then(|t| Ok(flight.push((t, n), GFP_KERNEL)?))
            {
                Ok(()) => sent = sent.saturating_add(n),
                Err(e) => stop = Some(e),
            }
        }
        if flight.is_empty() {
            break;
        }
        let (ticket, n) = flight.remove(0).map_err(|_| EINVAL)?;
        let r = ticket
            .wait()
            .and_then(|reply| piece_done(reply, n, buf, done, at, write, written));
        match r {
            Ok(got) => {
                done = done.saturating_add(got);
                if got < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
    }
    match stop {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// Takes the reply to one piece of `n` bytes, `done` bytes into a transfer from or to user
/// memory at `buf`: copies what a read got to the user, keeps what a write stored for
/// retention. Returns the bytes moved (never more than `n`, whatever the server says).
pub(crate) fn piece_done(
    reply: rpc::Reply,
    n: u64,
    buf: u64,
    done: u64,
    at: At,
    write: bool,
    written: &mut KVec<Written>,
) -> Outcome {
    let got = outcome(reply.ret)?.min(n);
    let got_len = usize::try_from(got).map_err(|_| EPROTO)?;
    if write {
        if got > 0 {
            let append = matches!(at, At::Append);
            let end = append
                .then(|| reply.outs().next())
                .flatten()
                .and_then(|o| o.try_into().ok())
                .map(i64::from_ne_bytes)
                .filter(|e| *e >= 0);
            let bufs = if append { 2 } else { 1 };
            written.push(
                Written {
                    reply,
                    len: got_len,
                    end,
                    at: SyscallReq::head_len(bufs),
                },
                GFP_KERNEL,
            )?;
        }
    } else {
        let data = reply
            .outs()
            .next()
            .and_then(|d| d.get(..got_len))
            .ok_or(EPROTO)?;
        let dst = user_addr(buf.checked_add(done).ok_or(EFAULT)?)?;
        UserSlice::new(UserPtr::from_addr(dst), got_len)
            .writer()
            .write_slice(data)?;
    }
    Ok(got)
}

/// Sends one piece of a [`transfer`]: `n` bytes at user address `buf + off`, `off` bytes
/// into the transfer.
pub(crate) fn send_piece<'a>(
    shared: &'a Shared,
    p: &Proxy,
    buf: u64,
    n: u64,
    at: At,
    off: u64,
    write: bool,
) -> Result<rpc::Ticket<'a>> {
    let len = crate::num::len_usize(n)?;
    let dir = if write { DIR_IN } else { DIR_OUT | DIR_RET };
    let desc = [
        BufDesc {
            arg: 1,
            dir,
            len: wire_len(len)?,
        },
        BufDesc {
            arg: 3,
            dir: DIR_OUT,
            len: 8,
        },
    ];
    // `verify_area` made sure that the transfer's end fits `loff_t`.
    let at_off = |pos: i64| pos.checked_add(count_i64(off)?).ok_or(EINVAL);
    let (nr, pos) = match (at, write) {
        (At::FilePos(pos) | At::Offset(pos), false) => (sysno::PREAD64, at_off(pos)?),
        (At::FilePos(pos) | At::Offset(pos), true) => (sysno::PWRITE64, at_off(pos)?),
        (At::Stream, false) => (sysno::READ, 0),
        (At::Stream, true) => (sysno::WRITE, 0),
        (At::Append, _) => (calls::APPEND, 0),
    };
    let bufs = if nr == calls::APPEND {
        &desc[..]
    } else {
        &desc[..1]
    };
    let req = request(nr, [p.sfd_arg(), 0, n, reg_i64(pos), 0, 0], bufs);
    if !write {
        return rpc::submit(shared, p.rpid, &req, &[]);
    }
    let mut data = KVVec::new();
    let src = user_addr(buf.checked_add(off).ok_or(EFAULT)?)?;
    UserSlice::new(UserPtr::from_addr(src), len).read_all(&mut data, GFP_KERNEL)?;
    rpc::submit(shared, p.rpid, &req, &[&data])
}

/// Implements remote `read(2)`: a `pread64` at the proxy file's offset.
pub(crate) fn read(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    done(at_file_pos(&p, a[1], a[2], false))
}

/// Implements remote `write(2)`: a `pwrite64` at the proxy file's offset; `O_APPEND`
/// files append on the server.
pub(crate) fn write(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    done(at_file_pos(&p, a[1], a[2], true))
}

/// `read(2)` or `write(2)` of `count` bytes at user address `buf`, at `p`'s offset, which
/// moves by what was moved (after an append: to where it ended, as in Linux).
pub(crate) fn at_file_pos(p: &Proxy, buf: u64, count: u64, write: bool) -> Outcome {
    let pos = p.pos();
    let count = verify_rw(p, write, buf, count, pos)?;
    let append = write && p.flags() & bindings::O_APPEND != 0;
    let at = if append { At::Append } else { At::FilePos(pos) };
    let mut end = None;
    let n = transfer(p, buf, count, at, write, &mut end)?;
    match end {
        Some(end) if append && n > 0 => p.set_pos(end),
        _ if !append => p.set_pos(pos.checked_add(count_i64(n)?).ok_or(EOVERFLOW)?),
        _ => (),
    }
    Ok(n)
}

/// Implements remote `pread64(2)`.
pub(crate) fn pread64(a: &[u64; 6]) -> Dispatch {
    positional(a, false)
}

/// Implements remote `pwrite64(2)`.
pub(crate) fn pwrite64(a: &[u64; 6]) -> Dispatch {
    positional(a, true)
}

pub(crate) fn positional(a: &[u64; 6], write: bool) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    let pos = arg_i64(a[3]);
    // `ksys_pread64()` refuses a negative position before it looks at the fd.
    if pos < 0 {
        return errno(EINVAL);
    }
    done(
        verify_rw(&p, write, a[1], a[2], pos)
            .and_then(|count| transfer(&p, a[1], count, At::Offset(pos), write, &mut None)),
    )
}

/// The `RWF_*` flags of `preadv2`/`pwritev2` (`include/uapi/linux/fs.h`; bindgen skips
/// them: their macros cast to `__kernel_rwf_t`).
pub(crate) const RWF_DSYNC: u32 = 0x2;
pub(crate) const RWF_SYNC: u32 = 0x4;
pub(crate) const RWF_APPEND: u32 = 0x10;
pub(crate) const RWF_NOAPPEND: u32 = 0x20;
pub(crate) const RWF_ATOMIC: u32 = 0x40;
/// Every flag Linux 7.3 knows (`RWF_SUPPORTED`: `HIPRI` to `NOSIGNAL`).
pub(crate) const RWF_SUPPORTED: u32 = 0x1ff;

/// The checks `kiocb_set_rw_flags()` makes of `preadv2`/`pwritev2` flags that do not depend
/// on the file: unknown flags (`EOPNOTSUPP`), `RWF_APPEND` with `RWF_NOAPPEND` (`EINVAL`),
/// `RWF_ATOMIC` on a read (`EOPNOTSUPP`). The other flags are accepted; `RWF_APPEND`
/// appends and `RWF_DSYNC`/`RWF_SYNC` make the write durable before it returns
/// ([`vec_io_inner`]); the rest are not forwarded (known limit: `RWF_NOWAIT` may wait,
/// `RWF_ATOMIC` writes are not atomic).
pub(crate) fn check_rwf(flags: u32, write: bool) -> Result {
    if flags & !RWF_SUPPORTED != 0 {
        return Err(EOPNOTSUPP);
    }
    if flags & RWF_APPEND != 0 && flags & RWF_NOAPPEND != 0 {
        return Err(EINVAL);
    }
    if flags & RWF_ATOMIC != 0 && !write {
        return Err(EOPNOTSUPP);
    }
    Ok(())
}

/// Where a vectored transfer happens.
#[derive(Clone, Copy)]
pub(crate) enum VecAt {
    /// At the file offset (`readv`, `writev`, `preadv2`/`pwritev2` at `-1`).
    File,
    /// At the position argument (`preadv`, `pwritev`, `preadv2`/`pwritev2` otherwise).
    Explicit(i64),
}

/// Size of a `struct iovec`, and where its `iov_len` starts.
pub(crate) const IOVEC_SIZE: usize = 16;
pub(crate) const IOVEC_LEN_AT: usize = 8;

/// Reads the iovec array of a vectored call and checks it as `import_iovec()` does: more
/// than `UIO_MAXIOV` entries (`EINVAL`), an unreadable array (`EFAULT`), a length beyond
/// `ssize_t` (`EINVAL`, for any entry before the buffers are checked), a buffer outside
/// user space (`EFAULT`). Lengths are cut so that the total stays within
/// [`MAX_RW_COUNT`] (with one entry, before its buffer is checked, as Linux does).
pub(crate) fn import_iovec(vec: u64, vlen: u32) -> Result<KVec<(u64, u64)>> {
    let mut segs = KVec::new();
    if vlen == 0 {
        return Ok(segs);
    }
    if vlen > bindings::UIO_MAXIOV {
        return Err(EINVAL);
    }
    let n = usize::try_from(vlen).map_err(|_| EINVAL)?;
    let size = n.checked_mul(IOVEC_SIZE).ok_or(EINVAL)?;
    let mut raw = KVVec::new();
    UserSlice::new(UserPtr::from_addr(user_addr(vec)?), size).read_all(&mut raw, GFP_KERNEL)?;
    for v in raw.chunks_exact(IOVEC_SIZE) {
        let (base, len) = v.split_at(IOVEC_LEN_AT);
        let base = u64::from_ne_bytes(base.try_into().map_err(|_| EINVAL)?);
        let len = u64::from_ne_bytes(len.try_into().map_err(|_| EINVAL)?);
        if i64::try_from(len).is_err() {
            return Err(EINVAL);
        }
        segs.push((base, len), GFP_KERNEL)?;
    }
    let single = segs.len() == 1;
    let mut total = 0u64;
    for (base, len) in segs.iter_mut() {
        if single {
            *len = (*len).min(MAX_RW_COUNT);
        }
        if !access_ok(*base, *len) {
            return Err(EFAULT);
        }
        *len = (*len).min(MAX_RW_COUNT.saturating_sub(total));
        total = total.saturating_add(*len);
    }
    Ok(segs)
}

/// Implements remote `readv(2)`, `writev(2)`, `preadv(2)`, `pwritev(2)`, `preadv2(2)` and
/// `pwritev2(2)` (`flags`: `RWF_*` of the last two): the checks of `vfs_readv()` and
/// `vfs_writev()` in their order, then one remote transfer per iovec, at `at`.
pub(crate) fn vec_io(a: &[u64; 6], write: bool, at: VecAt, flags: u32) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    done(vec_io_inner(&p, a, write, at, flags))
}

pub(crate) fn vec_io_inner(p: &Proxy, a: &[u64; 6], write: bool, at: VecAt, flags: u32) -> Outcome {
    // `do_preadv()` refuses a negative position before it looks at the fd.
    if matches!(at, VecAt::Explicit(pos) if pos < 0) {
        return Err(EINVAL);
    }
    let mode = if write { p.writable() } else { p.readable() };
    if !mode {
        return Err(EBADF);
    }
    // `import_iovec()` takes the count as `unsigned int`.
    let segs = import_iovec(a[1], arg_u32(a[2]))?;
    let total = segs
        .iter()
        .try_fold(0u64, |t, (_, len)| t.checked_add(*len))
        .ok_or(EINVAL)?;
    if total == 0 {
        return Ok(0);
    }
    let start = match at {
        VecAt::File => p.pos(),
        VecAt::Explicit(pos) => pos,
    };
    verify_area(start, total)?;
    check_rwf(flags, write)?;
    let o_append = p.flags() & bindings::O_APPEND != 0;
    let append = write && (flags & RWF_APPEND != 0 || (matches!(at, VecAt::File) && o_append));
    if append && !o_append {
        // The server's file appends only with `O_APPEND`: its offset goes to the end, where
        // the pieces (written at the server file's offset) then land.
        let args = [p.sfd_arg(), 0, u64::from(bindings::SEEK_END), 0, 0, 0];
        call(p.rpid, &request(sysno::LSEEK, args, &[]), &[], &mut [])?;
    }
    let mut pos = start;
    let mut moved = 0u64;
    let mut end = None;
    for &(base, len) in segs.iter().filter(|s| s.1 > 0) {
        let piece_at = match at {
            _ if append => At::Append,
            VecAt::Explicit(_) => At::Offset(pos),
            VecAt::File => At::FilePos(pos),
        };
        match transfer(p, base, len, piece_at, write, &mut end) {
            Ok(n) => {
                moved = moved.saturating_add(n);
                pos = pos.checked_add(count_i64(n)?).ok_or(EOVERFLOW)?;
                if n < len {
                    break;
                }
            }
            Err(e) if moved == 0 => return Err(e),
            Err(_) => break,
        }
    }
    if matches!(at, VecAt::File) {
        if !append {
            p.set_pos(pos);
        } else if let (true, Some(end)) = (moved > 0, end) {
            p.set_pos(end);
        }
    }
    if write && moved > 0 && flags & (RWF_DSYNC | RWF_SYNC) != 0 {
        // As `generic_write_sync()`: the written range durable before the call returns, or
        // the sync's error as the result. The reply frees the data retained for the file.
        let nr = if flags & RWF_SYNC != 0 {
            sysno::FSYNC
        } else {
            sysno::FDATASYNC
        };
        call(
            p.rpid,
            &request(nr, [p.sfd_arg(), 0, 0, 0, 0, 0], &[]),
            &[],
            &mut [],
        )?;
    }
    Ok(moved)
}

/// The position argument of `preadv2`/`pwritev2`: `-1` means the file offset.
pub(crate) fn v2_at(pos: u64) -> VecAt {
    match arg_i64(pos) {
        -1 => VecAt::File,
        pos => VecAt::Explicit(pos),
    }
}

/// Implements remote `readv(2)`.
pub(crate) fn readv(a: &[u64; 6]) -> Dispatch {
    vec_io(a, false, VecAt::File, 0)
}

/// Implements remote `writev(2)`.
pub(crate) fn writev(a: &[u64; 6]) -> Dispatch {
    vec_io(a, true, VecAt::File, 0)
}

/// Implements remote `preadv(2)`: a position of `-1` is `EINVAL`, as any negative one.
pub(crate) fn preadv(a: &[u64; 6]) -> Dispatch {
    vec_io(a, false, VecAt::Explicit(arg_i64(a[3])), 0)
}

/// Implements remote `pwritev(2)`.
pub(crate) fn pwritev(a: &[u64; 6]) -> Dispatch {
    vec_io(a, true, VecAt::Explicit(arg_i64(a[3])), 0)
}

/// Implements remote `preadv2(2)`: at the file offset when the position is `-1`; `flags`
/// as [`check_rwf`] says.
pub(crate) fn preadv2(a: &[u64; 6]) -> Dispatch {
    vec_io(a, false, v2_at(a[3]), arg_u32(a[5]))
}

/// Implements remote `pwritev2(2)`: at the file offset when the position is `-1`;
/// `RWF_APPEND` appends.
pub(crate) fn pwritev2(a: &[u64; 6]) -> Dispatch {
    vec_io(a, true, v2_at(a[3]), arg_u32(a[5]))
}

/// File positions every file system a shadow may open accepts (ext4 directories with
/// 32-bit hashes end at `EXT4_HTREE_EOF_32BIT`, `0x7fffffff`; regular files of every
/// Linux file system go further): `lseek` sets them on the client alone. Farther
/// positions are checked by the server's file system (its `s_maxbytes`, a directory's
/// hash range).
pub(crate) const SURE_POS: i64 = 0x7fff_ffff;

/// Implements remote `lseek(2)`: `SEEK_SET`/`SEEK_CUR` on the client, as
/// `generic_file_llseek_size()` computes them (a negative or overflowing position:
/// `EINVAL`), with positions past [`SURE_POS`] checked by the server's file; the others
/// (which need the file's size or layout) on the server. Known limit: a FIFO accepts
/// `SEEK_SET`/`SEEK_CUR` to a near position where Linux says `ESPIPE`.
pub(crate) fn lseek(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    // `whence` is an `unsigned int`.
    done(lseek_inner(&p, arg_i64(a[1]), arg_u32(a[2])))
}

pub(crate) fn lseek_inner(p: &Proxy, off: i64, whence: u32) -> Outcome {
    let server_lseek = |off: i64, whence: u32| {
        let args = [p.sfd_arg(), reg_i64(off), u64::from(whence), 0, 0, 0];
        call(p.rpid, &request(sysno::LSEEK, args, &[]), &[], &mut [])
    };
    let target = match whence {
        bindings::SEEK_SET => off,
        // The position query: no check, no change.
        bindings::SEEK_CUR if off == 0 => return pos_u64(p.pos()),
        bindings::SEEK_CUR => p.pos().checked_add(off).ok_or(EINVAL)?,
        w if w <= bindings::SEEK_MAX => {
            let pos = server_lseek(off, w)?;
            p.set_pos(i64::try_from(pos).map_err(|_| EPROTO)?);
            return Ok(pos);
        }
        _ => return Err(EINVAL),
    };
    if target < 0 {
        return Err(EINVAL);
    }
    if target > SURE_POS {
        server_lseek(target, bindings::SEEK_SET)?;
    }
    p.set_pos(target);
    pos_u64(target)
}
