// SPDX-License-Identifier: GPL-2.0

//! Remote file-system calls of tethered tasks.
//!
//! Every handler has the same signature: it gets the call's six arguments and either runs
//! the call on the server (through the process's shadow) or lets it run locally. Paths
//! under a local prefix (`/dev`, `/proc`, `/sys`) and fds that are not proxy files stay
//! local; remote fds are proxy files (`proxy.c`) whose offsets live on the client.

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    uaccess::{UserPtr, UserSlice},
};

use crate::global::Global;
use crate::link::rpc;
use crate::proto::calls::{self, Arg, Len, Spec, F_GETFL, F_SETFL, LOCK_CMDS};
use crate::proto::syscall::{BufDesc, SyscallReq, DIR_IN, DIR_OUT, DIR_RET};
use crate::proto::sysno;
use crate::state::Shared;

/// The outcome of a handler.
pub(crate) enum Dispatch {
    /// Run the original system call on this machine.
    Local,
    /// The call's return value.
    Done(isize),
}

/// A remote-call handler: gets the six syscall arguments.
pub(crate) type Handler = fn(&[u64; 6]) -> Dispatch;

/// The module state, for the handlers (which run in tethered tasks). The module publishes
/// it before installing the hooks and withdraws it after removing them.
pub(crate) static CLIENT: Global<Shared> = Global::new();

/// The module state, if the module is loaded.
pub(crate) fn client() -> Option<Arc<Shared>> {
    CLIENT.get()
}

extern "C" {
    fn tether_local_prefixes() -> *const kernel::ffi::c_char;
    fn tether_retain() -> bool;
}

/// Whether `path` lies under one of the `local_prefixes` (module parameter).
fn is_local(path: &[u8]) -> bool {
    // `/dev/../etc` is not under `/dev`: compare the path with its dot components resolved.
    let normalized;
    let path = if path.first() == Some(&b'/') && path.windows(2).any(|w| w == b"/.") {
        normalized = crate::recovery::journal::normalize(path);
        match &normalized {
            Ok(p) => &p[..],
            // Without memory to tell, the path goes to the server, never wrongly local.
            Err(_) => return false,
        }
    } else {
        path
    };
    // SAFETY: The parameter is a NUL-terminated string that lives as long as the module.
    let prefixes = unsafe { CStr::from_char_ptr(tether_local_prefixes()) };
    prefixes
        .to_bytes()
        .split(|&c| c == b':')
        .filter(|p| !p.is_empty())
        .any(|p| path.starts_with(p) && matches!(path.get(p.len()), None | Some(b'/')))
}

const AT_FDCWD: i32 = -100;
const PATH_MAX: usize = 4096;
/// Largest data transfer per remote call (the rest of a frame is headers).
pub(crate) const MAX_IO: usize = 512 * 1024;

/// A path argument copied from the task, with its NUL.
struct PathArg {
    buf: KVVec<u8>,
}

impl PathArg {
    fn from_user(ptr: u64) -> Result<Self> {
        let mut buf = KVVec::new();
        buf.resize(PATH_MAX, 0, GFP_KERNEL)?;
        let len = UserSlice::new(UserPtr::from_addr(ptr as usize), PATH_MAX)
            .reader()
            .strcpy_into_buf(&mut buf)?
            .to_bytes_with_nul()
            .len();
        buf.truncate(len);
        Ok(Self { buf })
    }

    /// The path without its NUL.
    fn bytes(&self) -> &[u8] {
        self.buf.split_last().map_or(&[], |(_, p)| p)
    }

    fn is_absolute(&self) -> bool {
        self.bytes().first() == Some(&b'/')
    }
}

/// A proxy file (a reference to it) and what it stands for.
pub(crate) struct Proxy {
    file: *mut ffi::file,
    pub(crate) rpid: u32,
    pub(crate) sfd: i32,
}

mod ffi {
    use kernel::ffi::{c_int, c_uint};

    /// `struct file`, only ever handled through pointers.
    #[repr(C)]
    pub(super) struct file {
        _opaque: [u8; 0],
        _pin: core::marker::PhantomData<(*mut u8, core::marker::PhantomPinned)>,
    }

    extern "C" {
        pub(super) fn tether_proxy_install(rpid: u32, sfd: c_int, flags: c_uint) -> c_int;
        pub(super) fn tether_proxy_get(fd: c_int, rpid: *mut u32, sfd: *mut c_int) -> *mut file;
        pub(super) fn tether_proxy_put(f: *mut file);
        pub(super) fn tether_proxy_pos(f: *mut file) -> *mut i64;
        pub(super) fn tether_proxy_flags(f: *mut file) -> c_uint;
        pub(super) fn tether_proxy_setfl(f: *mut file, arg: c_uint);
    }
}

impl Proxy {
    /// The proxy file behind `fd`, if it is one.
    ///
    /// Calls on it go to the calling process's shadow: a forked child's shadow, forked from
    /// its parent's, has the same server fds (the proxy's own `rpid`, the opener, is only
    /// for the close at release).
    pub(crate) fn get(fd: u64) -> Option<Self> {
        let (mut opener, mut sfd) = (0, 0);
        // SAFETY: The out-pointers are valid; any fd value is fine.
        let file = unsafe { ffi::tether_proxy_get(fd as i32, &mut opener, &mut sfd) };
        // Not `then_some`: it would build (and drop, i.e. put) a proxy for a null file.
        if file.is_null() {
            return None;
        }
        let p = Self {
            file,
            rpid: rpid(),
            sfd,
        };
        // A file replay could not reopen stays with the client kernel, whose proxy file
        // answers reads and writes with EIO (`proxy.c`); its server slot is empty.
        let lost = client().is_some_and(|s| {
            s.divergences.load(Relaxed) != 0 && s.log.lock().is_lost(p.rpid, p.sfd)
        });
        (!lost).then_some(p)
    }

    pub(crate) fn pos(&self) -> i64 {
        // SAFETY: `file` is a live proxy file we hold a reference to.
        unsafe { *ffi::tether_proxy_pos(self.file) }
    }

    pub(crate) fn set_pos(&self, pos: i64) {
        // SAFETY: As in `pos`.
        unsafe { *ffi::tether_proxy_pos(self.file) = pos };
    }

    /// The proxy file's `f_flags`: the access mode and the `F_SETFL` status flags.
    pub(crate) fn flags(&self) -> u32 {
        // SAFETY: As in `pos`.
        unsafe { ffi::tether_proxy_flags(self.file) }
    }

    /// Sets the `F_SETFL` status flags as `setfl()` in `fs/fcntl.c` does.
    fn set_status_flags(&self, arg: u32) {
        // SAFETY: As in `pos`; the shim takes the file's `f_lock`.
        unsafe { ffi::tether_proxy_setfl(self.file, arg) };
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // SAFETY: We own the reference `tether_proxy_get` took.
        unsafe { ffi::tether_proxy_put(self.file) };
    }
}

/// The calling process's id on the server: its thread-group id.
pub(crate) fn rpid() -> u32 {
    kernel::current!().tgid() as u32
}

pub(crate) fn errno(e: Error) -> Dispatch {
    Dispatch::Done(e.to_errno() as isize)
}

pub(crate) fn done(r: Result<i64>) -> Dispatch {
    match r {
        Ok(v) => Dispatch::Done(v as isize),
        Err(e) => errno(e),
    }
}

/// A request for syscall `nr` with arguments `args` and buffers `bufs`.
pub(crate) fn request(nr: u32, args: [u64; 6], bufs: &[BufDesc]) -> SyscallReq {
    let mut req = SyscallReq {
        nr,
        args,
        nbufs: bufs.len() as u32,
        ..Default::default()
    };
    for (slot, b) in req.bufs.iter_mut().zip(bufs) {
        *slot = *b;
    }
    req
}

/// Runs `req` in process `rpid`'s shadow: `Ok` holds the call's result (`-errno` when it
/// failed on the server), `Err` a failure to get it there and back.
pub(crate) fn call(
    rpid: u32,
    req: &SyscallReq,
    ins: &[&[u8]],
    outs: &mut [&mut [u8]],
) -> Result<i64> {
    let shared = client().ok_or(EIO)?;
    rpc::call(&shared, rpid, req, ins, outs)
}

fn path_buf(arg: u8, path: &PathArg) -> BufDesc {
    BufDesc {
        arg,
        dir: DIR_IN,
        len: path.buf.len() as u32,
    }
}

/// Resolves a `(dirfd, path)` pair: `None` when the call stays local, else the dirfd to
/// use on the server.
fn remote_dirfd(dirfd: u64, path: &PathArg) -> Option<u64> {
    if is_local(path.bytes()) {
        return None;
    }
    if path.is_absolute() || dirfd as i32 == AT_FDCWD {
        return Some(dirfd);
    }
    Proxy::get(dirfd).map(|p| p.sfd as u64)
}

/// Implements remote `openat(2)`.
pub(crate) fn openat(a: &[u64; 6]) -> Dispatch {
    open_common(a[0], a[1], a[2], a[3])
}

/// Implements remote `openat2(2)`: the flags come from `struct open_how`.
pub(crate) fn openat2(a: &[u64; 6]) -> Dispatch {
    let mut how = KVVec::new();
    let size = (a[3] as usize).min(64);
    if size < 24 {
        return errno(EINVAL);
    }
    if let Err(e) =
        UserSlice::new(UserPtr::from_addr(a[2] as usize), size).read_all(&mut how, GFP_KERNEL)
    {
        return errno(e);
    }
    let flags = u64::from_le_bytes(how[..8].try_into().unwrap_or_default());
    let path = match PathArg::from_user(a[1]) {
        Ok(p) => p,
        Err(e) => return errno(e),
    };
    let Some(dirfd) = remote_dirfd(a[0], &path) else {
        return Dispatch::Local;
    };
    // The shadow must not create the fd close-on-exec on its side only: strip O_CLOEXEC.
    how[..8].copy_from_slice(&(flags & !u64::from(bindings::O_CLOEXEC)).to_le_bytes());
    let rpid = rpid();
    let bufs = [
        path_buf(1, &path),
        BufDesc {
            arg: 2,
            dir: DIR_IN,
            len: size as u32,
        },
    ];
    let req = request(sysno::OPENAT2, [dirfd, 0, 0, size as u64, 0, 0], &bufs);
    let open = |how: &[u8]| {
        let shared = client().ok_or(EIO)?;
        let ticket = rpc::submit(&shared, rpid, &req, &[&path.buf, how])?;
        ticket.wait()
    };
    let mut r = open(&how);
    if created_by_first_run(&r, flags) {
        let excl = u64::from(bindings::O_CLOEXEC | bindings::O_EXCL);
        how[..8].copy_from_slice(&(flags & !excl).to_le_bytes());
        r = open(&how);
    }
    match r.map(|rep| rep.ret) {
        Ok(sfd) if sfd >= 0 => install(rpid, sfd as i32, dirfd, &path, flags, 0),
        other => done(other),
    }
}

/// Whether `r`, the reply to an exclusive create (`flags`) whose server restarted while it
/// was out and ran it again, says `EEXIST` because its first run created the file (it was
/// committed before the reply was lost): the caller opens it again without `O_EXCL`.
fn created_by_first_run(r: &Result<rpc::Reply>, flags: u64) -> bool {
    flags & u64::from(bindings::O_EXCL) != 0
        && matches!(r, Ok(rep) if rep.rerun && rep.ret == EEXIST.to_errno().into())
}

/// Implements remote `creat(2)`.
pub(crate) fn creat(a: &[u64; 6]) -> Dispatch {
    let flags = bindings::O_CREAT | bindings::O_WRONLY | bindings::O_TRUNC;
    open_common(AT_FDCWD as u64, a[0], u64::from(flags), a[1])
}

/// Implements remote `open(2)`.
pub(crate) fn open(a: &[u64; 6]) -> Dispatch {
    open_common(AT_FDCWD as u64, a[0], a[1], a[2])
}

fn open_common(dirfd: u64, path: u64, flags: u64, mode: u64) -> Dispatch {
    let path = match PathArg::from_user(path) {
        Ok(p) => p,
        Err(e) => return errno(e),
    };
    let Some(dirfd) = remote_dirfd(dirfd, &path) else {
        return Dispatch::Local;
    };
    let rpid = rpid();
    let cloexec = u64::from(bindings::O_CLOEXEC);
    let mut req = request(
        sysno::OPENAT,
        [dirfd, 0, flags & !cloexec, mode, 0, 0],
        &[path_buf(1, &path)],
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
    match r.map(|rep| rep.ret) {
        Ok(sfd) if sfd >= 0 => install(rpid, sfd as i32, dirfd, &path, flags, mode),
        other => done(other),
    }
}

/// Installs a proxy for server fd `sfd` that process `rpid` opened as `path` (relative to
/// server dirfd `dirfd`), and logs it.
fn install(rpid: u32, sfd: i32, dirfd: u64, path: &PathArg, flags: u64, mode: u64) -> Dispatch {
    // SAFETY: No preconditions beyond valid values.
    let fd = unsafe { ffi::tether_proxy_install(rpid, sfd, flags as u32) };
    if fd < 0 {
        close_remote(rpid, sfd);
    } else if let Some(shared) = client() {
        let mut log = shared.log.lock();
        let at = (dirfd as i32 != AT_FDCWD).then_some(dirfd as i32);
        let logged = log
            .resolve(rpid, at, path.bytes())
            .and_then(|abs| log.opened(rpid, sfd, flags as u32, mode as u32, abs));
        if logged.is_err() {
            pr_notice!("syscall log: no memory to record an open of pid {}\n", rpid);
        }
    }
    Dispatch::Done(fd as isize)
}

/// Implements remote `chdir(2)`; the log keeps the new cwd.
pub(crate) fn chdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::CHDIR, a);
    if let (Dispatch::Done(0), Ok(path), Some(shared)) = (&d, PathArg::from_user(a[0]), client()) {
        let mut log = shared.log.lock();
        let rpid = rpid();
        let _ = log
            .resolve(rpid, None, path.bytes())
            .and_then(|abs| log.chdir(rpid, abs));
    }
    d
}

/// Implements remote `umask(2)`; the log keeps the mask for replay.
pub(crate) fn umask(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::UMASK, a);
    if let (Dispatch::Done(old), Some(shared)) = (&d, client()) {
        if *old >= 0 {
            let _ = shared.log.lock().umask(rpid(), (a[0] & 0o777) as u32);
        }
    }
    d
}

/// Implements remote `fchdir(2)`; the log keeps the new cwd.
pub(crate) fn fchdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::FCHDIR, a);
    if let (Dispatch::Done(0), Some(p), Some(shared)) = (&d, Proxy::get(a[0]), client()) {
        let _ = shared.log.lock().fchdir(p.rpid, p.sfd);
    }
    d
}

/// Implements remote `rename(2)`; the log's open files and cwds follow.
pub(crate) fn rename(a: &[u64; 6]) -> Dispatch {
    renaming(
        sysno::RENAME,
        a,
        [AT_FDCWD as u64, a[0], AT_FDCWD as u64, a[1]],
        0,
    )
}

/// Implements remote `renameat(2)`; the log's open files and cwds follow.
pub(crate) fn renameat(a: &[u64; 6]) -> Dispatch {
    renaming(sysno::RENAMEAT, a, [a[0], a[1], a[2], a[3]], 0)
}

/// Implements remote `renameat2(2)`; the log's open files and cwds follow.
pub(crate) fn renameat2(a: &[u64; 6]) -> Dispatch {
    renaming(sysno::RENAMEAT2, a, [a[0], a[1], a[2], a[3]], a[4])
}

/// Runs rename call `nr` of `(olddirfd, oldpath, newdirfd, newpath)` with `flags`. The
/// log knows it while it is out (a replay then may find the files it moved under their new
/// names: its reply may be lost with the server after it ran) and follows it once it
/// succeeded.
fn renaming(nr: u32, a: &[u64; 6], at: [u64; 4], flags: u64) -> Dispatch {
    const RENAME_EXCHANGE: u64 = 2;
    let Some(shared) = client() else {
        return generic(nr, a);
    };
    let paths = rename_paths(&shared, at);
    let id = paths
        .as_ref()
        .ok()
        .and_then(|(o, n)| shared.log.lock().begin_rename(o, n).ok());
    let d = generic(nr, a);
    let mut log = shared.log.lock();
    if let Some(id) = id {
        log.end_rename(id);
    }
    if let (Dispatch::Done(0), Ok((o, n))) = (&d, &paths) {
        if log.renamed(o, n, flags & RENAME_EXCHANGE != 0).is_err() {
            pr_notice!(
                "syscall log: no memory to follow a rename of pid {}\n",
                rpid()
            );
        }
    }
    d
}

/// The absolute server paths of a rename's `(olddirfd, oldpath, newdirfd, newpath)`.
fn rename_paths(shared: &Shared, at: [u64; 4]) -> Result<(KVVec<u8>, KVVec<u8>)> {
    let (old, new) = (PathArg::from_user(at[1])?, PathArg::from_user(at[3])?);
    // The dirfds' server fds, looked up before the log is locked (`Proxy::get` takes it).
    let dir = |fd: u64, path: &PathArg| {
        (!path.is_absolute() && fd as i32 != AT_FDCWD)
            .then(|| Proxy::get(fd).map(|p| p.sfd))
            .flatten()
    };
    let (odir, ndir) = (dir(at[0], &old), dir(at[2], &new));
    let rpid = rpid();
    let mut log = shared.log.lock();
    let o = log.resolve(rpid, odir, old.bytes())?;
    let n = log.resolve(rpid, ndir, new.bytes())?;
    Ok((o, n))
}

fn close_remote(rpid: u32, sfd: i32) {
    let _ = call(
        rpid,
        &request(sysno::CLOSE, [sfd as u64, 0, 0, 0, 0, 0], &[]),
        &[],
        &mut [],
    );
}

/// Called by `proxy.c` when the last reference to a proxy file goes (but not when its
/// opener is exiting: its shadow closes everything then).
#[no_mangle]
extern "C" fn tether_proxy_released(rpid: u32, sfd: i32) {
    close_remote(rpid, sfd);
    if let Some(shared) = client() {
        shared.log.lock().closed(rpid, sfd);
    }
}

/// Where a transfer happens in a remote file.
#[derive(Clone, Copy)]
enum At {
    /// At the proxy file's offset; a file that cannot seek (a FIFO: `ESPIPE`) is read or
    /// written as a stream instead.
    FilePos(i64),
    /// At an explicit offset (`preadv`, `pwritev`): `ESPIPE` stays an error.
    Offset(i64),
    /// Where the server's file is: streams (FIFOs).
    Stream,
    /// At the end of the file (`O_APPEND`): each piece comes back with the offset where
    /// it ended (shadow call [`calls::APPEND`]).
    Append,
}

/// Largest piece of one remote read or write, and how many pieces of one call may be in
/// flight at once (so that copying, sending, the server's I/O and the reply overlap).
const PIECE: usize = 128 * 1024;
const WINDOW: usize = 8;

/// One piece of a remote write the server stored: its call, the bytes written and, for an
/// append, the offset where they ended.
struct Written {
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
/// result (a negative errno from the server, or a local error).
///
/// The pieces written are retained (`retain.rs`), appends at the offsets where they
/// landed; `end` is then where the last append ended. Writes to a FIFO are not retained.
fn transfer(
    p: &Proxy,
    buf: u64,
    len: u64,
    at: At,
    write: bool,
    end: &mut Option<i64>,
) -> Result<i64> {
    let espipe = -i64::from(bindings::ESPIPE);
    let mut written = KVec::new();
    let r = match transfer_at(p, buf, len, at, write, &mut written) {
        Ok(r) if r == espipe && matches!(at, At::FilePos(_)) => {
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
fn retain(p: &Proxy, start: Option<i64>, written: KVec<Written>) {
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
        let len = w.len as i64;
        let kept = pos
            .or(w.end.map(|e| e - len))
            .filter(|off| *off >= 0)
            .ok_or(ESPIPE)
            .and_then(|off| {
                let path = log.path(p.rpid, p.sfd).ok_or(ENOENT)?;
                let mut copy = KVVec::new();
                copy.extend_from_slice(path, GFP_KERNEL)?;
                retained.keep(w.reply.seq, copy, off, attrs, w.reply.req, w.at, w.len)
            });
        failed = failed.or(kept.err());
        pos = pos.map(|p| p + len);
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
/// in order by the shadow.
///
/// Pieces already sent when an earlier one comes back short are not undone: a write that
/// fails half-way (`ENOSPC`) may have stored data past the length it returns.
fn transfer_at(
    p: &Proxy,
    buf: u64,
    len: u64,
    at: At,
    write: bool,
    written: &mut KVec<Written>,
) -> Result<i64> {
    let shared = client().ok_or(EIO)?;
    let window = if matches!(at, At::Stream | At::Append) {
        1
    } else {
        WINDOW
    };
    let mut flight = KVec::with_capacity(window, GFP_KERNEL)?;
    let (mut sent, mut done) = (0u64, 0u64);
    // A local failure (a fault in the user buffer, no memory) while sending.
    let mut stop = None;
    loop {
        while stop.is_none() && sent < len && flight.len() < window {
            let n = (len - sent).min(PIECE as u64) as usize;
            match send_piece(&shared, p, buf + sent, n, at, sent, write)
                .and_then(|t| Ok(flight.push((t, n), GFP_KERNEL)?))
            {
                Ok(()) => sent += n as u64,
                Err(e) => stop = Some(e),
            }
        }
        if flight.is_empty() {
            break;
        }
        let (ticket, n) = flight.remove(0).map_err(|_| EINVAL)?;
        let r = ticket.wait().and_then(|reply| {
            if reply.ret < 0 {
                return Ok(reply.ret);
            }
            let got = (reply.ret as usize).min(n);
            if write {
                if got > 0 {
                    let end = matches!(at, At::Append)
                        .then(|| reply.outs().next())
                        .flatten()
                        .and_then(|o| o.try_into().ok())
                        .map(i64::from_ne_bytes)
                        .filter(|e| *e >= 0);
                    let bufs = if matches!(at, At::Append) { 2 } else { 1 };
                    written.push(
                        Written {
                            reply,
                            len: got,
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
                    .and_then(|d| d.get(..got))
                    .ok_or(EPROTO)?;
                UserSlice::new(UserPtr::from_addr((buf + done) as usize), got)
                    .writer()
                    .write_slice(data)?;
            }
            Ok(got as i64)
        });
        match r {
            Ok(got) if got >= 0 => {
                done += got as u64;
                if (got as usize) < n {
                    break;
                }
            }
            r if done == 0 => return r,
            _ => break,
        }
    }
    match stop {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done as i64),
    }
}

/// Sends one piece of a [`transfer`]: `n` bytes at user address `buf`, `off` bytes into
/// the transfer.
fn send_piece<'a>(
    shared: &'a Shared,
    p: &Proxy,
    buf: u64,
    n: usize,
    at: At,
    off: u64,
    write: bool,
) -> Result<rpc::Ticket<'a>> {
    let dir = if write { DIR_IN } else { DIR_OUT | DIR_RET };
    let desc = [
        BufDesc {
            arg: 1,
            dir,
            len: n as u32,
        },
        BufDesc {
            arg: 3,
            dir: DIR_OUT,
            len: 8,
        },
    ];
    let (nr, pos) = match (at, write) {
        (At::FilePos(pos) | At::Offset(pos), false) => (sysno::PREAD64, pos + off as i64),
        (At::FilePos(pos) | At::Offset(pos), true) => (sysno::PWRITE64, pos + off as i64),
        (At::Stream, false) => (sysno::READ, 0),
        (At::Stream, true) => (sysno::WRITE, 0),
        (At::Append, _) => (calls::APPEND, 0),
    };
    let bufs = if nr == calls::APPEND {
        &desc[..]
    } else {
        &desc[..1]
    };
    let req = request(nr, [p.sfd as u64, 0, n as u64, pos as u64, 0, 0], bufs);
    if !write {
        return rpc::submit(shared, p.rpid, &req, &[]);
    }
    let mut data = KVVec::new();
    UserSlice::new(UserPtr::from_addr(buf as usize), n).read_all(&mut data, GFP_KERNEL)?;
    rpc::submit(shared, p.rpid, &req, &[&data])
}

/// Implements remote `read(2)`: a `pread64` at the proxy file's offset.
pub(crate) fn read(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    let r = transfer(&p, a[1], a[2], At::FilePos(p.pos()), false, &mut None);
    if let Ok(n) = r {
        p.set_pos(p.pos() + n.max(0));
    }
    done(r)
}

/// Implements remote `pread64(2)`.
pub(crate) fn pread64(a: &[u64; 6]) -> Dispatch {
    positional(a, false)
}

/// Implements remote `pwrite64(2)`.
pub(crate) fn pwrite64(a: &[u64; 6]) -> Dispatch {
    positional(a, true)
}

fn positional(a: &[u64; 6], write: bool) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    if (a[3] as i64) < 0 {
        return errno(EINVAL);
    }
    done(transfer(
        &p,
        a[1],
        a[2],
        At::Offset(a[3] as i64),
        write,
        &mut None,
    ))
}

/// Implements remote `write(2)`: a `pwrite64` at the proxy file's offset; `O_APPEND`
/// files append on the server.
pub(crate) fn write(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    let append = p.flags() & bindings::O_APPEND != 0;
    let at = if append {
        At::Append
    } else {
        At::FilePos(p.pos())
    };
    let mut end = None;
    let r = transfer(&p, a[1], a[2], at, true, &mut end);
    match (r, end) {
        // After an append the offset is where it ended, as in Linux.
        (Ok(n), Some(end)) if append && n > 0 => p.set_pos(end),
        (Ok(n), _) if !append => p.set_pos(p.pos() + n.max(0)),
        _ => {}
    }
    done(r)
}

/// Most iovecs one call may carry (`UIO_MAXIOV`).
const IOV_MAX: u64 = 1024;

/// Implements remote `readv(2)`, `writev(2)`, `preadv(2)`, `pwritev(2)`, `preadv2(2)` and
/// `pwritev2(2)`: one remote transfer per iovec, at the proxy file's offset or at the
/// offset in argument `pos_arg` (where `-1` means the file's offset).
fn vec_io(a: &[u64; 6], write: bool, pos_arg: Option<usize>) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    if a[2] > IOV_MAX {
        return errno(EINVAL);
    }
    let mut iov = KVVec::new();
    let len = a[2] as usize * 16;
    if let Err(e) =
        UserSlice::new(UserPtr::from_addr(a[1] as usize), len).read_all(&mut iov, GFP_KERNEL)
    {
        return errno(e);
    }
    let explicit = pos_arg.map(|i| a[i] as i64).filter(|pos| *pos != -1);
    let append = write && explicit.is_none() && p.flags() & bindings::O_APPEND != 0;
    let mut pos = explicit.unwrap_or_else(|| p.pos());
    let mut total = 0i64;
    let mut end = None;
    for v in iov.chunks_exact(16) {
        let base = u64::from_le_bytes(v[..8].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(v[8..].try_into().unwrap_or_default());
        if len == 0 {
            continue;
        }
        let at = match explicit {
            Some(_) => At::Offset(pos),
            None if append => At::Append,
            None => At::FilePos(pos),
        };
        let r = transfer(&p, base, len, at, write, &mut end);
        match r {
            Ok(n) if n >= 0 => {
                total += n;
                pos += n;
                if (n as u64) < len {
                    break;
                }
            }
            Ok(err) if total == 0 => return Dispatch::Done(err as isize),
            Err(e) if total == 0 => return errno(e),
            _ => break,
        }
    }
    if explicit.is_none() && !append {
        p.set_pos(pos);
    } else if let (true, Some(end)) = (append && total > 0, end) {
        p.set_pos(end);
    }
    Dispatch::Done(total as isize)
}

/// Implements remote `readv(2)`.
pub(crate) fn readv(a: &[u64; 6]) -> Dispatch {
    vec_io(a, false, None)
}

/// Implements remote `writev(2)`.
pub(crate) fn writev(a: &[u64; 6]) -> Dispatch {
    vec_io(a, true, None)
}

/// Implements remote `preadv(2)` and `preadv2(2)` (flags are not supported remotely).
pub(crate) fn preadv(a: &[u64; 6]) -> Dispatch {
    vec_io(a, false, Some(3))
}

/// Implements remote `pwritev(2)` and `pwritev2(2)`.
pub(crate) fn pwritev(a: &[u64; 6]) -> Dispatch {
    vec_io(a, true, Some(3))
}

/// Implements remote `fcntl(2)`: record locks (`F_GETLK`, `F_SETLK`, `F_SETLKW` and their
/// OFD forms) and the file status flags run on the server's file. `F_GETFL` returns the
/// server file's flags (what the open made of them: `O_LARGEFILE`, `O_DIRECT`, ...);
/// `F_SETFL` sets them there and, once the server accepted them, on the proxy file too,
/// where `write` looks for `O_APPEND`. The other commands work on the proxy file itself:
/// `F_GETFD`/`F_SETFD` (close-on-exec is per client fd), `F_DUPFD`/`F_DUPFD_CLOEXEC` (a
/// client fd for the same proxy file, so the same server fd and offset).
pub(crate) fn fcntl(a: &[u64; 6]) -> Dispatch {
    match a[1] {
        F_GETFL => generic(sysno::FCNTL, a),
        F_SETFL => {
            let Some(p) = Proxy::get(a[0]) else {
                return Dispatch::Local;
            };
            let d = generic(sysno::FCNTL, a);
            if let Dispatch::Done(0) = d {
                p.set_status_flags(a[2] as u32);
            }
            d
        }
        cmd if LOCK_CMDS.contains(&cmd) => generic(sysno::FCNTL, a),
        _ => Dispatch::Local,
    }
}

/// Implements remote `lseek(2)`: `SEEK_SET`/`SEEK_CUR` on the client, the others (which
/// need the file's size or layout) on the server.
pub(crate) fn lseek(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    let off = a[1] as i64;
    let pos = match a[2] {
        0 => off,
        1 => p.pos().saturating_add(off),
        _ => match call(
            p.rpid,
            &request(sysno::LSEEK, [p.sfd as u64, a[1], a[2], 0, 0, 0], &[]),
            &[],
            &mut [],
        ) {
            Ok(pos) => pos,
            Err(e) => return errno(e),
        },
    };
    if pos < 0 {
        return errno(EINVAL);
    }
    p.set_pos(pos);
    Dispatch::Done(pos as isize)
}

/// Implements remote `getdents64(2)`: the listing goes on from the proxy file's position,
/// which the client keeps as for a regular file, so that `lseek`/`rewinddir` work and a
/// restarted server goes on with a listing where the crashed one was.
pub(crate) fn getdents64(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    done(getdents64_inner(&p, a[1], (a[2] as usize).min(MAX_IO)))
}

fn getdents64_inner(p: &Proxy, buf: u64, n: usize) -> Result<i64> {
    let descs = [
        BufDesc {
            arg: 1,
            dir: DIR_OUT | DIR_RET,
            len: n as u32,
        },
        BufDesc {
            arg: 3,
            dir: DIR_OUT,
            len: 8,
        },
    ];
    let req = request(
        calls::GETDENTS,
        [p.sfd as u64, 0, n as u64, 0, p.pos() as u64, 0],
        &descs,
    );
    let mut out = KVVec::new();
    out.resize(n, 0, GFP_KERNEL)?;
    let mut end = [0u8; 8];
    let ret = call(p.rpid, &req, &[], &mut [&mut out[..], &mut end[..]])?;
    if ret < 0 {
        return Ok(ret);
    }
    let len = usize::try_from(ret)
        .ok()
        .filter(|&l| l <= n)
        .ok_or(EPROTO)?;
    let end = i64::from_le_bytes(end);
    if end < 0 {
        return Err(EPROTO);
    }
    UserSlice::new(UserPtr::from_addr(buf as usize), len)
        .writer()
        .write_slice(&out[..len])?;
    p.set_pos(end);
    Ok(ret)
}

/// Implements the remote version of call `nr` as its spec in the call table
/// ([`calls::CALLS`]) says: reads paths and input buffers from the task, maps fds, runs the
/// call in the process's shadow, copies output buffers back.
pub(crate) fn generic(nr: u32, a: &[u64; 6]) -> Dispatch {
    let Some(spec) = calls::spec(nr) else {
        return errno(ENOSYS);
    };
    match generic_inner(spec, a) {
        Ok(Some(ret)) => Dispatch::Done(ret as isize),
        Ok(None) => Dispatch::Local,
        Err(e) => errno(e),
    }
}

fn buf_len(len: Len, a: &[u64; 6]) -> usize {
    match len {
        Len::Fixed(n) => n as usize,
        Len::Arg(i) => (a[i as usize] as usize).min(MAX_IO),
    }
}

/// One buffer argument of a generic call: what goes to the server, what comes back.
struct Buf {
    desc: BufDesc,
    input: KVVec<u8>,
    output: KVVec<u8>,
}

fn generic_inner(spec: &Spec, a: &[u64; 6]) -> Result<Option<i64>> {
    let mut args = *a;
    let mut kinds = [Arg::Val; 6];
    for (i, k) in kinds.iter_mut().enumerate() {
        // A command no shadow runs (fcntl): not forwarded.
        *k = spec.arg(i, a).ok_or(EINVAL)?;
    }
    let mut paths: [Option<PathArg>; 6] = Default::default();
    for (i, arg) in kinds.iter().enumerate() {
        if matches!(arg, Arg::Path | Arg::Str) && a[i] != 0 {
            let path = PathArg::from_user(a[i])?;
            if matches!(arg, Arg::Path) && is_local(path.bytes()) {
                return Ok(None);
            }
            paths[i] = Some(path);
        }
    }
    let mut bufs: KVec<Buf> = KVec::new();
    for (i, arg) in kinds.iter().enumerate() {
        let (dir, len) = match *arg {
            Arg::Val | Arg::ByCommand => continue,
            Arg::Fd => match Proxy::get(a[i]) {
                Some(p) => {
                    args[i] = p.sfd as u64;
                    continue;
                }
                None => return Ok(None),
            },
            Arg::DirFd(p) => {
                // Without a path (`utimensat(fd, NULL, ...)`) the dirfd is the file itself.
                let path = paths.get(p as usize).and_then(Option::as_ref);
                if path.is_none_or(|p| !p.is_absolute()) && a[i] as i32 != AT_FDCWD {
                    match Proxy::get(a[i]) {
                        Some(p) => args[i] = p.sfd as u64,
                        None => return Ok(None),
                    }
                }
                continue;
            }
            Arg::Path | Arg::Str => match &paths[i] {
                Some(path) => (DIR_IN, path.buf.len()),
                None => continue,
            },
            // A null buffer stays null: the call decides what that means.
            Arg::In(_) | Arg::InOut(_) | Arg::Out(_) | Arg::OutRet(_) if a[i] == 0 => continue,
            Arg::In(len) => (DIR_IN, buf_len(len, a)),
            Arg::InOut(len) => (DIR_IN | DIR_OUT, buf_len(len, a)),
            Arg::Out(len) => (DIR_OUT, buf_len(len, a)),
            Arg::OutRet(len) => (DIR_OUT | DIR_RET, buf_len(len, a)),
        };
        // The server checks that a length argument is its buffer's length (capped here).
        if let Arg::In(Len::Arg(j))
        | Arg::InOut(Len::Arg(j))
        | Arg::Out(Len::Arg(j))
        | Arg::OutRet(Len::Arg(j)) = *arg
        {
            if let Some(v) = args.get_mut(usize::from(j)) {
                *v = len as u64;
            }
        }
        let mut buf = Buf {
            desc: BufDesc {
                arg: i as u8,
                dir,
                len: len as u32,
            },
            input: KVVec::new(),
            output: KVVec::new(),
        };
        if let Some(path) = &paths[i] {
            buf.input.extend_from_slice(&path.buf, GFP_KERNEL)?;
        } else if dir & DIR_IN != 0 {
            UserSlice::new(UserPtr::from_addr(a[i] as usize), len)
                .read_all(&mut buf.input, GFP_KERNEL)?;
        }
        if dir & DIR_OUT != 0 {
            buf.output.resize(len, 0, GFP_KERNEL)?;
        }
        bufs.push(buf, GFP_KERNEL)?;
    }
    if bufs.len() > crate::proto::syscall::MAX_BUFS {
        return Err(EINVAL);
    }
    let mut descs = [BufDesc::default(); crate::proto::syscall::MAX_BUFS];
    for (d, b) in descs.iter_mut().zip(bufs.iter()) {
        *d = b.desc;
    }
    let req = request(spec.nr, args, &descs[..bufs.len()]);
    let ret = {
        let mut ins: KVec<&[u8]> = KVec::new();
        let mut outs: KVec<&mut [u8]> = KVec::new();
        for b in bufs.iter_mut() {
            if b.desc.dir & DIR_IN != 0 {
                ins.push(&b.input[..], GFP_KERNEL)?;
            }
            if b.desc.dir & DIR_OUT != 0 {
                outs.push(&mut b.output[..], GFP_KERNEL)?;
            }
        }
        call(rpid(), &req, &ins, &mut outs)?
    };
    if ret >= 0 {
        for b in bufs.iter().filter(|b| b.desc.dir & DIR_OUT != 0) {
            let n = if b.desc.dir & DIR_RET != 0 {
                (ret as usize).min(b.output.len())
            } else {
                b.output.len()
            };
            UserSlice::new(UserPtr::from_addr(a[b.desc.arg as usize] as usize), n)
                .writer()
                .write_slice(&b.output[..n])?;
        }
    }
    Ok(Some(ret))
}
