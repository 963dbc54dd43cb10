// SPDX-License-Identifier: GPL-2.0

//! Implements remote `open(2)`, `openat(2)`, `openat2(2)`, `creat(2)`: a proxy file for the
//! server fd, recorded in the journal.

use kernel::{alloc::KVVec, bindings, prelude::*, uaccess::UserPtr, uaccess::UserSlice};

use super::paths::{remote_dirfd, PathArg};
use super::proxy::Proxy;
use super::{call, done, errno, rpid, Dispatch, Outcome};
use crate::link::rpc;
use crate::link::rpc::request;
use crate::num::{arg_i32, arg_u32, outcome, reg_i32, user_addr, wire_len};
use crate::proto::calls::AT_FDCWD;
use crate::proto::syscall::{BufDesc, SyscallReq, DIR_IN};
use crate::proto::sysno;
use crate::state::client;

/// Implements remote `openat(2)`.
pub(crate) fn openat(a: &[u64; 6]) -> Dispatch {
    open_common(a[0], a[1], a[2], a[3])
}

/// The size of `struct open_how` version 0 (`OPEN_HOW_SIZE_VER0`).
pub(crate) const OPEN_HOW_SIZE_VER0: u64 = 24;
/// The largest `struct open_how` `openat2` reads (`copy_struct_from_user` up to a page).
pub(crate) const OPEN_HOW_SIZE_MAX: u64 = 4096;

/// Implements remote `openat2(2)`: the flags come from `struct open_how`, which goes to the
/// server whole (it checks the fields and that an unknown tail is zero, `E2BIG`).
pub(crate) fn openat2(a: &[u64; 6]) -> Dispatch {
    let size = a[3];
    if size > OPEN_HOW_SIZE_MAX {
        return errno(E2BIG);
    }
    if size < OPEN_HOW_SIZE_VER0 {
        return errno(EINVAL);
    }
    let mut how = KVVec::new();
    let read = user_addr(a[2]).and_then(|addr| {
        let len = crate::num::len_usize(size)?;
        UserSlice::new(UserPtr::from_addr(addr), len).read_all(&mut how, GFP_KERNEL)
    });
    if let Err(e) = read {
        return errno(e);
    }
    let Some(flags_bytes) = how.first_chunk::<8>() else {
        return errno(EINVAL);
    };
    let flags = u64::from_le_bytes(*flags_bytes);
    let path = match PathArg::from_user(a[1]) {
        Ok(p) => p,
        Err(e) => return errno(e),
    };
    let Some(dirfd) = remote_dirfd(a[0], &path) else {
        return Dispatch::Local;
    };
    let set_flags = |how: &mut KVVec<u8>, flags: u64| {
        if let Some(f) = how.first_chunk_mut::<8>() {
            *f = flags.to_le_bytes();
        }
    };
    // The shadow must not create the fd close-on-exec on its side only: strip O_CLOEXEC.
    set_flags(&mut how, flags & !u64::from(bindings::O_CLOEXEC));
    let rpid = rpid();
    let bufs = match (path.desc(1), wire_len(how.len())) {
        (Ok(p), Ok(len)) => [
            p,
            BufDesc {
                arg: 2,
                dir: DIR_IN,
                len,
            },
        ],
        (Err(e), _) | (_, Err(e)) => return errno(e),
    };
    let req = request(sysno::OPENAT2, [dirfd, 0, 0, size, 0, 0], &bufs);
    let open = |how: &[u8]| {
        let shared = client().ok_or(EIO)?;
        let ticket = rpc::submit(&shared, rpid, &req, &[&path.buf, how])?;
        ticket.wait()
    };
    let mut r = open(&how);
    if created_by_first_run(&r, flags) {
        let excl = u64::from(bindings::O_CLOEXEC | bindings::O_EXCL);
        set_flags(&mut how, flags & !excl);
        r = open(&how);
    }
    done(opened(r).and_then(|sfd| install(rpid, sfd, dirfd, &path, flags, 0)))
}

/// The server fd an open's reply carries.
pub(crate) fn opened(r: Result<rpc::Reply>) -> Result<i32> {
    let sfd = outcome(r?.ret)?;
    i32::try_from(sfd).map_err(|_| EPROTO)
}

/// Whether `r`, the reply to an exclusive create (`flags`) whose server restarted while it
/// was out and ran it again, says `EEXIST` because its first run created the file (it was
/// committed before the reply was lost): the caller opens it again without `O_EXCL`.
pub(crate) fn created_by_first_run(r: &Result<rpc::Reply>, flags: u64) -> bool {
    flags & u64::from(bindings::O_EXCL) != 0
        && matches!(r, Ok(rep) if rep.rerun && rep.ret == EEXIST.to_errno().into())
}

/// Implements remote `creat(2)`.
pub(crate) fn creat(a: &[u64; 6]) -> Dispatch {
    let flags = bindings::O_CREAT | bindings::O_WRONLY | bindings::O_TRUNC;
    open_common(reg_i32(AT_FDCWD), a[0], u64::from(flags), a[1])
}

/// Implements remote `open(2)`.
pub(crate) fn open(a: &[u64; 6]) -> Dispatch {
    open_common(reg_i32(AT_FDCWD), a[0], a[1], a[2])
}

pub(crate) fn open_common(dirfd: u64, path: u64, flags: u64, mode: u64) -> Dispatch {
    let path = match PathArg::from_user(path) {
        Ok(p) => p,
        Err(e) => return errno(e),
    };
    let Some(dirfd) = remote_dirfd(dirfd, &path) else {
        return Dispatch::Local;
    };
    let rpid = rpid();
    let cloexec = u64::from(bindings::O_CLOEXEC);
    let desc = match path.desc(1) {
        Ok(d) => d,
        Err(e) => return errno(e),
    };
    let mut req = request(
        sysno::OPENAT,
        [dirfd, 0, flags & !cloexec, mode, 0, 0],
        &[desc],
    );
    let open = |req: &SyscallReq| {
        let shared = client().ok_or(EIO)?;
        let ticket = rpc::submit(&shared, rpid, req, &[&path.buf])?;
        ticket.wait()
    };
    let mut r = open(&req);
    if created_by_first_run(&r, flags) {
        req.args[2] &= !u64::from(bindings::O_EXCL);
        r = open(&req);
    }
    done(opened(r).and_then(|sfd| install(rpid, sfd, dirfd, &path, flags, mode)))
}

/// Installs a proxy for server fd `sfd` that process `rpid` opened as `path` (relative to
/// server dirfd `dirfd`), and logs it. Returns the new client fd.
pub(crate) fn install(
    rpid: u32,
    sfd: i32,
    dirfd: u64,
    path: &PathArg,
    flags: u64,
    mode: u64,
) -> Outcome {
    // The kernel takes open flags and modes as `int`/`umode_t`: their low 32 bits.
    let (flags, mode) = (arg_u32(flags), arg_u32(mode));
    let fd = Proxy::install(rpid, sfd, flags);
    if fd < 0 {
        close_remote(rpid, sfd);
    } else if let Some(shared) = client() {
        let mut log = shared.log.lock();
        let at = (arg_i32(dirfd) != AT_FDCWD).then_some(arg_i32(dirfd));
        let logged = log
            .resolve(rpid, at, path.bytes())
            .and_then(|abs| log.opened(rpid, sfd, flags, mode, abs));
        if logged.is_err() {
            pr_notice!("syscall log: no memory to record an open of pid {}\n", rpid);
        }
    }
    outcome(fd.into())
}

/// Closes server fd `sfd` of process `rpid`. Nobody waits for the result: a close whose
/// fd is gone (the shadow died, the server restarted) has nothing left to close.
pub(crate) fn close_remote(rpid: u32, sfd: i32) {
    let req = request(sysno::CLOSE, [reg_i32(sfd), 0, 0, 0, 0, 0], &[]);
    if let Err(e) = call(rpid, &req, &[], &mut []) {
        pr_debug!("close of server fd {} of pid {}: {:?}\n", sfd, rpid, e);
    }
}

/// Called by `proxy.c` at each close of a proxy file (its `flush`): the calling process's
/// record locks on the file are gone, and the write error its server fd `sfd` has to
/// report is the result (as `-errno`, or 0), as in `Log::fd_closed`.
#[no_mangle]
extern "C" fn tether_proxy_flushed(sfd: i32) -> i32 {
    let Some(shared) = client() else {
        return 0;
    };
    let err = shared.log.lock().fd_closed(rpid(), sfd);
    err.map_or(0, |e| e.to_errno())
}

/// Called by `proxy.c` when the last reference to a proxy file goes (but not when its
/// opener is gone or exiting: its shadow closes everything as it exits, and a call for it
/// would start a fresh shadow under its pid that nothing ends).
///
/// The log forgets the file before the close goes out: once the server closed `sfd`, an
/// open in another thread may get the same number, and its log entry must stay. (A close
/// still out at a crash then finds no file after the replay: nothing is left to close.)
#[no_mangle]
extern "C" fn tether_proxy_released(rpid: u32, sfd: i32) {
    if let Some(shared) = client() {
        shared.log.lock().closed(rpid, sfd);
    }
    close_remote(rpid, sfd);
}
