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

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    uaccess::{UserPtr, UserSlice},
};

use crate::proto::syscall::{BufDesc, DIR_IN, DIR_OUT, DIR_RET};
use crate::proto::sysno;
use crate::syscalls::fs::{call, errno, request, Dispatch, Proxy, MAX_IO};

extern "C" {
    fn tether_sendfile_out_check(fd: kernel::ffi::c_int) -> kernel::ffi::c_int;
    fn tether_sendfile_out_write(fd: kernel::ffi::c_int, buf: *const u8, len: usize) -> isize;
}

/// The most one read, write or sendfile moves (`MAX_RW_COUNT`: `INT_MAX & PAGE_MASK`).
const MAX_RW_COUNT: u64 = 0x7fff_f000;

/// Whether `p` was opened for reading (`FMODE_READ`).
fn readable(p: &Proxy) -> bool {
    p.flags() & bindings::O_ACCMODE != bindings::O_WRONLY
}

/// Whether `p` was opened for writing (`FMODE_WRITE`).
fn writable(p: &Proxy) -> bool {
    matches!(
        p.flags() & bindings::O_ACCMODE,
        bindings::O_WRONLY | bindings::O_RDWR
    )
}

/// Reads a `loff_t` from user memory at `ptr` (`EFAULT` if it cannot).
fn read_off(ptr: u64) -> Result<i64> {
    let mut b = [0u8; 8];
    UserSlice::new(UserPtr::from_addr(ptr as usize), 8)
        .reader()
        .read_slice(&mut b)?;
    Ok(i64::from_ne_bytes(b))
}

/// Writes a `loff_t` to user memory at `ptr` (`EFAULT` if it cannot).
fn write_off(ptr: u64, off: i64) -> Result {
    UserSlice::new(UserPtr::from_addr(ptr as usize), 8)
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
/// shadow; returns the server's result (`-errno` on failure).
fn remote_copy(
    rpid: u32,
    (sfd_in, pos_in): (i32, i64),
    (sfd_out, pos_out): (i32, i64),
    len: u64,
    flags: u64,
) -> Result<i64> {
    // The offsets travel as input buffers: the shadow passes pointers to its copies, which
    // the server's kernel updates and nobody reads back (the client adds the result).
    let off = |arg| BufDesc {
        arg,
        dir: DIR_IN,
        len: 8,
    };
    let req = request(
        sysno::COPY_FILE_RANGE,
        [sfd_in as u64, 0, sfd_out as u64, 0, len, flags],
        &[off(1), off(3)],
    );
    call(
        rpid,
        &req,
        &[&pos_in.to_ne_bytes(), &pos_out.to_ne_bytes()],
        &mut [],
    )
}

/// Implements remote `copy_file_range(2)` when both fds are remote (see the module
/// documentation for the other cases). The server's kernel makes every check (`flags`,
/// regular files, access modes, `O_APPEND` output: `EBADF`, overlapping ranges of one
/// file: `EINVAL`, file systems: `EXDEV`); a short copy moves the offsets by what it
/// copied, like Linux.
pub(crate) fn copy_file_range(a: &[u64; 6]) -> Dispatch {
    let (Some(pin), Some(pout)) = (Proxy::get(a[0]), Proxy::get(a[2])) else {
        return Dispatch::Local;
    };
    let (off_in, off_out) = (a[1], a[3]);
    let (pos_in, pos_out) = match (start(&pin, off_in), start(&pout, off_out)) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), _) | (_, Err(e)) => return errno(e),
    };
    let ret = match remote_copy(pin.rpid, (pin.sfd, pos_in), (pout.sfd, pos_out), a[4], a[5]) {
        Ok(ret) => ret,
        Err(e) => return errno(e),
    };
    // The server copies at most `len` bytes: never trust it with more.
    let mut ret = ret.min(a[4].min(i64::MAX as u64) as i64) as isize;
    if ret > 0 {
        let n = ret as i64;
        for (p, ptr, pos) in [(&pin, off_in, pos_in), (&pout, off_out, pos_out)] {
            if ptr == 0 {
                p.set_pos(pos.saturating_add(n));
            } else if write_off(ptr, pos.saturating_add(n)).is_err() {
                ret = EFAULT.to_errno() as isize;
            }
        }
    }
    Dispatch::Done(ret)
}

/// Implements remote `sendfile(2)` (`sendfile64`) when both fds are remote (see the module
/// documentation for the other cases), as one server `copy_file_range`. Checks made here
/// in Linux's order, because `copy_file_range` would answer differently: input not
/// readable or output not writable: `EBADF`; a negative offset: `EINVAL`; an `O_APPEND`
/// output: `EINVAL`. Where the server refuses the copy (`EXDEV` across file systems,
/// `EINVAL` for overlapping ranges of one file, which `sendfile` allows), the data goes
/// through the client in `pread`/`pwrite` pieces instead. Known difference: a FIFO input
/// fails with `ESPIPE` even without an offset.
pub(crate) fn sendfile(a: &[u64; 6]) -> Dispatch {
    let (pout, pin) = match (Proxy::get(a[0]), Proxy::get(a[1])) {
        (Some(pout), Some(pin)) => (pout, pin),
        (None, Some(pin)) => return sendfile_local(a[0] as i32, &pin, a[2], a[3]),
        _ => return Dispatch::Local,
    };
    let off = a[2];
    let pos = match start(&pin, off) {
        Ok(pos) => pos,
        Err(e) => return errno(e),
    };
    let out_pos = pout.pos();
    let ret = match sendfile_at(&pin, pos, &pout, out_pos, a[3].min(MAX_RW_COUNT)) {
        Ok(ret) => ret,
        Err(e) => return errno(e),
    };
    if ret > 0 {
        pout.set_pos(out_pos.saturating_add(ret));
    }
    sendfile_done(&pin, off, pos, ret)
}

/// The end of a `sendfile(2)` from `pin` at `pos` that returned `ret` (bytes moved or
/// `-errno`): the input's new offset goes to `*off`, which Linux writes back whether or
/// not anything moved (`EFAULT` if it cannot), or else to `pin`'s file offset.
fn sendfile_done(pin: &Proxy, off: u64, pos: i64, ret: i64) -> Dispatch {
    let end = pos.saturating_add(ret.max(0));
    if off != 0 {
        if write_off(off, end).is_err() {
            return errno(EFAULT);
        }
    } else if ret > 0 {
        pin.set_pos(end);
    }
    Dispatch::Done(ret as isize)
}

/// Copies up to `count` bytes from `pin` at `pos` to `pout` at `out_pos`; returns the
/// number of bytes copied or `-errno` (`Err` when the server was not reached).
fn sendfile_at(pin: &Proxy, pos: i64, pout: &Proxy, out_pos: i64, count: u64) -> Result<i64> {
    if !readable(pin) {
        return Ok(EBADF.to_errno().into());
    }
    if pos < 0 {
        return Ok(EINVAL.to_errno().into());
    }
    if !writable(pout) {
        return Ok(EBADF.to_errno().into());
    }
    if pout.flags() & bindings::O_APPEND != 0 {
        return Ok(EINVAL.to_errno().into());
    }
    let ret =
        remote_copy(pin.rpid, (pin.sfd, pos), (pout.sfd, out_pos), count, 0)?.min(count as i64);
    let ret = if ret == EXDEV.to_errno().into() || ret == EINVAL.to_errno().into() {
        bounce(pin, pos, pout, out_pos, count)?
    } else {
        ret
    };
    // A directory: `sendfile` cannot splice from it.
    Ok(if ret == EISDIR.to_errno().into() {
        EINVAL.to_errno().into()
    } else {
        ret
    })
}

/// Reads `buf.len()` bytes of remote file `pin` at `at` into `buf`: the server's result.
fn pread_piece(pin: &Proxy, at: i64, buf: &mut [u8]) -> Result<i64> {
    let out = BufDesc {
        arg: 1,
        dir: DIR_OUT | DIR_RET,
        len: buf.len() as u32,
    };
    let args = [pin.sfd as u64, 0, buf.len() as u64, at as u64, 0, 0];
    call(
        pin.rpid,
        &request(sysno::PREAD64, args, &[out]),
        &[],
        &mut [buf],
    )
}

/// Copies up to `count` bytes from `pin` at `pos` to `pout` at `out_pos` through the
/// client, in pieces of at most [`MAX_IO`] bytes; stops at a short piece. Returns the
/// number of bytes copied, or the first piece's `-errno`.
fn bounce(pin: &Proxy, pos: i64, pout: &Proxy, out_pos: i64, count: u64) -> Result<i64> {
    let mut data = KVVec::new();
    data.resize((count as usize).min(MAX_IO), 0, GFP_KERNEL)?;
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(MAX_IO as u64) as usize;
        let got = match pread_piece(pin, pos.saturating_add(done as i64), &mut data[..n]) {
            Ok(got) if got > 0 => (got as usize).min(n),
            Ok(got) if got < 0 && done == 0 => return Ok(got),
            Err(e) if done == 0 => return Err(e),
            _ => break,
        };
        let inb = BufDesc {
            arg: 1,
            dir: DIR_IN,
            len: got as u32,
        };
        let at = out_pos.saturating_add(done as i64) as u64;
        let req = request(
            sysno::PWRITE64,
            [pout.sfd as u64, 0, got as u64, at, 0, 0],
            &[inb],
        );
        let put = match call(pout.rpid, &req, &[&data[..got]], &mut []) {
            Ok(put) if put >= 0 => (put as usize).min(got),
            Ok(err) if done == 0 => return Ok(err),
            Err(e) if done == 0 => return Err(e),
            _ => break,
        };
        done += put as u64;
        if put < n {
            break;
        }
    }
    // Its writes are not retained (`retain.rs`): they are made durable before it returns.
    if done > 0 {
        let args = [pout.sfd as u64, 0, 0, 0, 0, 0];
        call(
            pout.rpid,
            &request(sysno::FDATASYNC, args, &[]),
            &[],
            &mut [],
        )?;
    }
    Ok(done as i64)
}

/// Implements remote `sendfile(2)` from a remote file `pin` (at `*off`, or its offset when
/// `off` is null) to the local fd `out`: `pread` pieces from the server, written with
/// `kernel_write` at `out`'s offset. A pipe takes everything (Linux may move less at a
/// time); the first failing piece's error is the result when nothing moved.
fn sendfile_local(out: i32, pin: &Proxy, off: u64, count: u64) -> Dispatch {
    let pos = match start(pin, off) {
        Ok(pos) => pos,
        Err(e) => return errno(e),
    };
    match to_local(pin, pos, out, count.min(MAX_RW_COUNT)) {
        Ok(ret) => sendfile_done(pin, off, pos, ret),
        Err(e) => errno(e),
    }
}

/// Copies up to `count` bytes from `pin` at `pos` to the local fd `out`; returns the
/// number of bytes copied or `-errno` (`Err` when the server was not reached).
fn to_local(pin: &Proxy, pos: i64, out: i32, count: u64) -> Result<i64> {
    if !readable(pin) {
        return Ok(EBADF.to_errno().into());
    }
    if pos < 0 {
        return Ok(EINVAL.to_errno().into());
    }
    // SAFETY: No preconditions; any fd value is fine.
    let r = unsafe { tether_sendfile_out_check(out) };
    if r < 0 {
        return Ok(r.into());
    }
    let mut data = KVVec::new();
    data.resize((count as usize).min(MAX_IO), 0, GFP_KERNEL)?;
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(MAX_IO as u64) as usize;
        let got = match pread_piece(pin, pos.saturating_add(done as i64), &mut data[..n]) {
            Ok(got) if got > 0 => (got as usize).min(n),
            // A directory cannot be spliced from.
            Ok(got) if got == EISDIR.to_errno().into() && done == 0 => {
                return Ok(EINVAL.to_errno().into())
            }
            Ok(got) if got < 0 && done == 0 => return Ok(got),
            Err(e) if done == 0 => return Err(e),
            _ => break,
        };
        // SAFETY: `data[..got]` is initialized kernel memory that outlives the call.
        let put = unsafe { tether_sendfile_out_write(out, data.as_ptr(), got) };
        if put < 0 {
            if done == 0 {
                return Ok(put as i64);
            }
            break;
        }
        let put = (put as usize).min(got);
        done += put as u64;
        if put < n {
            break;
        }
    }
    Ok(done as i64)
}
