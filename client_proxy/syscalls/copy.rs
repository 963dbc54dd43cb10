// SPDX-License-Identifier: GPL-2.0

//! Implements remote `copy_file_range(2)` and `sendfile(2)` between two remote files.
//!
//! The client owns the offsets of proxy files, so both calls run on the server as one
//! `copy_file_range` with explicit offsets (taken from the caller's offset arguments or
//! from the proxy files' `f_pos`); the client then moves the offsets by the number of
//! bytes copied, as `fs/read_write.c` does. The server never uses its own file offsets.
//!
//! `sendfile` from a remote file to a local one (a socket, a pipe, a local file) reads
//! from the server and writes locally, with `do_sendfile()`'s checks of the output.
//!
//! In the other mixed cases the call runs locally and the kernel refuses it with a clear
//! error, because a proxy file is an anonymous inode with neither a file type nor splice
//! or copy operations (checked against Linux 7.3):
//! - `copy_file_range` with one remote file: `EINVAL` (`generic_file_rw_checks()`: not
//!   `S_ISREG`), or `EBADF` when the other fd is not open; where both were local files on
//!   different file systems Linux says `EXDEV`;
//! - `sendfile` from a local file to a remote one: `EINVAL` (`splice write not
//!   supported`, a `pr_debug`).
//!
//! Applications (`cp`, `cat`) fall back to `read`/`write` on these errors.
//!
//! Every handler here computes one [`Outcome`]: the count copied or the errno, whether the
//! server's file system or the client found it.

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

use crate::link::rpc::request;
use crate::num::{arg_i32, count_i64, len_u64, reg_i64, user_addr, wire_len};
use crate::proto::syscall::{BufDesc, DIR_IN};
use crate::proto::sysno;
use crate::syscalls::io::{verify_area, MAX_RW_COUNT};
use crate::syscalls::proxy::Proxy;
use crate::syscalls::{call, done, Dispatch, Outcome, MAX_IO};

extern "C" {
    fn tether_sendfile_out_check(fd: kernel::ffi::c_int) -> kernel::ffi::c_int;
    fn tether_sendfile_out_write(fd: kernel::ffi::c_int, buf: *const u8, len: usize) -> isize;
}

/// Positions below this need no check of the server's `s_maxbytes` (as `io::SURE_POS`:
/// every file system accepts them).
const SURE_POS: i64 = 0x7fff_ffff;

/// Reads a `loff_t` from user memory at `ptr` (`EFAULT` if it cannot).
fn read_off(ptr: u64) -> Result<i64> {
    let mut b = [0u8; 8];
    UserSlice::new(UserPtr::from_addr(user_addr(ptr)?), 8)
        .reader()
        .read_slice(&mut b)?;
    Ok(i64::from_ne_bytes(b))
}

/// Writes a `loff_t` to user memory at `ptr` (`EFAULT` if it cannot).
fn write_off(ptr: u64, off: i64) -> Result {
    UserSlice::new(UserPtr::from_addr(user_addr(ptr)?), 8)
        .writer()
        .write_slice(&off.to_ne_bytes())
}

/// The offset a call uses: `*ptr` if the caller passed one, else the file's offset.
fn start(p: &Proxy, ptr: u64) -> Result<i64> {
    if ptr == 0 {
        Ok(p.pos())
    } else {
        read_off(ptr)
    }
}

/// Runs `copy_file_range(sfd_in, &pos_in, sfd_out, &pos_out, len, flags)` in the caller's
/// shadow; returns the server's outcome, never more than `len`.
fn remote_copy(
    rpid: u32,
    (pin, pos_in): (&Proxy, i64),
    (pout, pos_out): (&Proxy, i64),
    len: u64,
    flags: u64,
) -> Outcome {
    // The offsets travel as input buffers: the shadow passes pointers to its copies, which
    // the server's kernel updates and nobody reads back (the client adds the result).
    let off = |arg| BufDesc {
        arg,
        dir: DIR_IN,
        len: 8,
    };
    let req = request(
        sysno::COPY_FILE_RANGE,
        [pin.sfd_arg(), 0, pout.sfd_arg(), 0, len, flags],
        &[off(1), off(3)],
    );
    let copied = call(
        rpid,
        &req,
        &[&pos_in.to_ne_bytes(), &pos_out.to_ne_bytes()],
        &mut [],
    )?;
    // The server copies at most `len` bytes: never trust it with more.
    Ok(copied.min(len))
}

/// Implements remote `copy_file_range(2)` when both fds are remote (see the module
/// documentation for the other cases). The server's kernel makes every check (`flags`,
/// regular files, access modes, `O_APPEND` output: `EBADF`, overlapping ranges of one
/// file: `EINVAL`, file systems: `EXDEV`, offsets: `EINVAL`, `EOVERFLOW`, `EFBIG`) on the
/// same values Linux would see; a short copy moves the offsets by what it copied, like
/// Linux.
pub(crate) fn copy_file_range(a: &[u64; 6]) -> Dispatch {
    let (Some(pin), Some(pout)) = (Proxy::get(a[0]), Proxy::get(a[2])) else {
        return Dispatch::Local;
    };
    done(copy_inner(&pin, a[1], &pout, a[3], a[4], a[5]))
}

fn copy_inner(
    pin: &Proxy,
    off_in: u64,
    pout: &Proxy,
    off_out: u64,
    len: u64,
    flags: u64,
) -> Outcome {
    let pos_in = start(pin, off_in)?;
    let pos_out = start(pout, off_out)?;
    let copied = remote_copy(pin.rpid, (pin, pos_in), (pout, pos_out), len, flags)?;
    if copied > 0 {
        let n = count_i64(copied)?;
        let mut r = Ok(copied);
        for (p, ptr, pos) in [(pin, off_in, pos_in), (pout, off_out, pos_out)] {
            // The server checked that `pos + len` does not wrap (`EOVERFLOW`).
            let end = pos.checked_add(n).ok_or(EOVERFLOW)?;
            if ptr == 0 {
                p.set_pos(end);
            } else if write_off(ptr, end).is_err() {
                r = Err(EFAULT);
            }
        }
        return r;
    }
    Ok(copied)
}

/// Implements remote `sendfile(2)` (`sendfile64`) when both fds are remote (see the module
/// documentation for the other cases), as one server `copy_file_range`. Checks made here
/// in Linux's order, because `copy_file_range` would answer differently: input not
/// readable (`EBADF`), `rw_verify_area()` of the input range (`EINVAL`), output not
/// writable (`EBADF`), an input position at or past the file system's largest file size
/// (`EOVERFLOW`), an `O_APPEND` output (`EINVAL`). Where the server refuses the copy
/// (`EXDEV` across file systems, `EINVAL` for overlapping ranges of one file, which
/// `sendfile` allows), the data goes through the client in `pread`/`pwrite` pieces
/// instead. Known difference: a FIFO input fails with `ESPIPE` even without an offset.
pub(crate) fn sendfile(a: &[u64; 6]) -> Dispatch {
    let (pout, pin) = match (Proxy::get(a[0]), Proxy::get(a[1])) {
        (Some(pout), Some(pin)) => (pout, pin),
        (None, Some(pin)) => return sendfile_local(arg_i32(a[0]), &pin, a[2], a[3]),
        _ => return Dispatch::Local,
    };
    let off = a[2];
    let pos = match start(&pin, off) {
        Ok(pos) => pos,
        Err(e) => return done(Err(e)),
    };
    let out_pos = pout.pos();
    let r = sendfile_at(&pin, pos, &pout, out_pos, a[3]);
    if let Ok(n) = r {
        if let Some(end) = count_i64(n).ok().and_then(|n| out_pos.checked_add(n)) {
            pout.set_pos(end);
        }
    }
    sendfile_done(&pin, off, pos, r)
}

/// The end of a `sendfile(2)` from `pin` at `pos` with outcome `r`: the input's new offset
/// goes to `*off`, which Linux writes back whether or not anything moved (`EFAULT` if it
/// cannot), or else to `pin`'s file offset.
fn sendfile_done(pin: &Proxy, off: u64, pos: i64, r: Outcome) -> Dispatch {
    let moved = r.as_ref().map_or(0, |n| *n);
    let end = count_i64(moved)
        .ok()
        .and_then(|n| pos.checked_add(n))
        .unwrap_or(pos);
    if off != 0 {
        if write_off(off, end).is_err() {
            return done(Err(EFAULT));
        }
    } else if moved > 0 {
        pin.set_pos(end);
    }
    done(r)
}

/// The input checks of `do_sendfile()` for `count` bytes of `pin` at `pos`, in its order:
/// not readable (`EBADF`), `rw_verify_area()` (`EINVAL`); returns the count cut to
/// [`MAX_RW_COUNT`].
fn sendfile_in_checks(pin: &Proxy, pos: i64, count: u64) -> Result<u64> {
    if !pin.readable() {
        return Err(EBADF);
    }
    verify_area(pos, count)?;
    Ok(count.min(MAX_RW_COUNT))
}

/// `do_sendfile()`'s check of the input position against the largest file size of the
/// input's file system (`s_maxbytes`): `EOVERFLOW` at or past it. Only a far position is
/// checked, by asking the server to seek there (its file system refuses positions past
/// its largest file size). Known limit: a position exactly at that size passes.
fn sendfile_max_check(pin: &Proxy, pos: i64) -> Result {
    if pos <= SURE_POS {
        return Ok(());
    }
    let args = [
        pin.sfd_arg(),
        reg_i64(pos),
        u64::from(bindings::SEEK_SET),
        0,
        0,
        0,
    ];
    match call(pin.rpid, &request(sysno::LSEEK, args, &[]), &[], &mut []) {
        Err(e) if e == EINVAL => Err(EOVERFLOW),
        // A file that cannot seek (`ESPIPE`) has no such limit.
        _ => Ok(()),
    }
}

/// Copies up to `count` bytes from `pin` at `pos` to `pout` at `out_pos`.
fn sendfile_at(pin: &Proxy, pos: i64, pout: &Proxy, out_pos: i64, count: u64) -> Outcome {
    let count = sendfile_in_checks(pin, pos, count)?;
    if !pout.writable() {
        return Err(EBADF);
    }
    sendfile_max_check(pin, pos)?;
    verify_area(out_pos, count)?;
    if pout.flags() & bindings::O_APPEND != 0 {
        return Err(EINVAL);
    }
    let r = match remote_copy(pin.rpid, (pin, pos), (pout, out_pos), count, 0) {
        Err(e) if e == EXDEV || e == EINVAL => bounce(pin, pos, pout, out_pos, count),
        r => r,
    };
    // A directory: `sendfile` cannot splice from it.
    match r {
        Err(e) if e == EISDIR => Err(EINVAL),
        r => r,
    }
}

/// Reads `buf.len()` bytes of remote file `pin` at `at` into `buf`: the bytes read.
fn pread_piece(pin: &Proxy, at: i64, buf: &mut [u8]) -> Outcome {
    crate::syscalls::mapcopy::pread(pin.rpid, pin.sfd_arg(), buf, at).map(len_u64)
}

/// The position `done` bytes after `pos` (the caller checked the range with
/// [`verify_area`]).
fn advance(pos: i64, done: u64) -> Result<i64> {
    pos.checked_add(count_i64(done)?).ok_or(EINVAL)
}

/// The size of the next piece of a copy of `count` bytes of which `done` moved.
fn next_piece(count: u64, done: u64) -> usize {
    usize::try_from(count.saturating_sub(done)).map_or(MAX_IO, |n| n.min(MAX_IO))
}

/// Copies up to `count` bytes from `pin` at `pos` to `pout` at `out_pos` through the
/// client, in pieces of at most [`MAX_IO`] bytes; stops at a short piece. Returns the
/// number of bytes copied, or the first piece's error.
fn bounce(pin: &Proxy, pos: i64, pout: &Proxy, out_pos: i64, count: u64) -> Outcome {
    let mut data = KVVec::new();
    data.resize(next_piece(count, 0), 0, GFP_KERNEL)?;
    let mut done = 0u64;
    while done < count {
        let n = next_piece(count, done);
        let piece = data.get_mut(..n).ok_or(EINVAL)?;
        let got = match pread_piece(pin, advance(pos, done)?, piece) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let got_len = usize::try_from(got).map_err(|_| EPROTO)?;
        let inb = BufDesc {
            arg: 1,
            dir: DIR_IN,
            len: wire_len(got_len)?,
        };
        let at = reg_i64(advance(out_pos, done)?);
        let req = request(sysno::PWRITE64, [pout.sfd_arg(), 0, got, at, 0, 0], &[inb]);
        let src = data.get(..got_len).ok_or(EINVAL)?;
        let put = match call(pout.rpid, &req, &[src], &mut []) {
            Ok(put) => put.min(got),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done = done.saturating_add(put);
        if put < len_u64(n) {
            break;
        }
    }
    // Its writes are not retained (`retain.rs`): they are made durable before it returns.
    if done > 0 {
        let args = [pout.sfd_arg(), 0, 0, 0, 0, 0];
        call(
            pout.rpid,
            &request(sysno::FDATASYNC, args, &[]),
            &[],
            &mut [],
        )?;
    }
    Ok(done)
}

/// Implements remote `sendfile(2)` from a remote file `pin` (at `*off`, or its offset when
/// `off` is null) to the local fd `out`: `pread` pieces from the server, written with
/// `kernel_write` at `out`'s offset. A pipe takes everything (Linux may move less at a
/// time); the first failing piece's error is the result when nothing moved.
fn sendfile_local(out: i32, pin: &Proxy, off: u64, count: u64) -> Dispatch {
    let pos = match start(pin, off) {
        Ok(pos) => pos,
        Err(e) => return done(Err(e)),
    };
    sendfile_done(pin, off, pos, to_local(pin, pos, out, count))
}

/// Copies up to `count` bytes from `pin` at `pos` to the local fd `out`.
fn to_local(pin: &Proxy, pos: i64, out: i32, count: u64) -> Outcome {
    let count = sendfile_in_checks(pin, pos, count)?;
    // SAFETY: No preconditions; any fd value is fine.
    let r = unsafe { tether_sendfile_out_check(out) };
    crate::num::outcome(r.into())?;
    sendfile_max_check(pin, pos)?;
    let mut data = KVVec::new();
    data.resize(next_piece(count, 0), 0, GFP_KERNEL)?;
    let mut done = 0u64;
    while done < count {
        let n = next_piece(count, done);
        let piece = data.get_mut(..n).ok_or(EINVAL)?;
        let got = match pread_piece(pin, advance(pos, done)?, piece) {
            Ok(0) => break,
            Ok(got) => got,
            // A directory cannot be spliced from.
            Err(e) if e == EISDIR && done == 0 => return Err(EINVAL),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        let src = data
            .get(..usize::try_from(got).map_err(|_| EPROTO)?)
            .ok_or(EPROTO)?;
        // SAFETY: `src` is initialized kernel memory that outlives the call.
        let put = unsafe { tether_sendfile_out_write(out, src.as_ptr(), src.len()) };
        let put = match crate::num::outcome(put.try_into().unwrap_or(i64::MIN)) {
            Ok(put) => put.min(got),
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        };
        done = done.saturating_add(put);
        if put < len_u64(n) {
            break;
        }
    }
    Ok(done)
}
