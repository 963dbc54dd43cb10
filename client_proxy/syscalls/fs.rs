// SPDX-License-Identifier: GPL-2.0

//! Remote file-system calls of tethered tasks.
//!
//! Every handler has the same signature: it gets the call's six arguments and either runs
//! the call on the server (through the process's shadow) or lets it run locally. Paths
//! under a local prefix (`/dev`, `/proc`, `/sys`) and fds that are not proxy files stay
//! local; remote fds are proxy files (`proxy.c`) whose offsets live on the client.
//!
//! Every value a task passes is checked before it is used in arithmetic or converted (see
//! `num.rs`); the lints below keep it so.
#![deny(clippy::arithmetic_side_effects, clippy::cast_possible_truncation)]
#![deny(clippy::cast_possible_wrap, clippy::cast_sign_loss)]

use kernel::{
    alloc::KVVec,
    bindings,
    prelude::*,
    sync::{atomic::Relaxed, Arc},
    uaccess::{UserPtr, UserSlice},
};

use crate::global::Global;
use crate::link::rpc;
use crate::num::{
    access_ok, arg_i32, arg_i64, arg_u32, count_i64, len_u64, outcome, pos_u64, reg_i32, reg_i64,
    ret_isize, user_addr, wire_len,
};
use crate::proto::calls::{self, Arg, Len, Spec, F_GETFL, F_SETFL, LOCK_CMDS};
use crate::proto::syscall::{BufDesc, SyscallReq, DIR_IN, DIR_OUT, DIR_RET};
use crate::proto::sysno;
use crate::state::Shared;

/// The outcome of a handler.
pub(crate) enum Dispatch {
    /// Run the original system call on this machine.
    Local,
    /// The call's return value (`-errno` on failure), for the task's `regs->ax`.
    Done(isize),
}

/// What a remote call gives, on one channel: its non-negative result, or the errno it
/// failed with, whether the server's file system said so or the client did (bad user
/// memory, no memory, no server). Every function below that runs a call returns it;
/// [`done`] turns it into the task's return value once.
pub(crate) type Outcome = Result<u64>;

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
        let len = UserSlice::new(UserPtr::from_addr(user_addr(ptr)?), PATH_MAX)
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

    /// Its descriptor as input buffer of argument `arg`.
    fn desc(&self, arg: u8) -> Result<BufDesc> {
        Ok(BufDesc {
            arg,
            dir: DIR_IN,
            len: wire_len(self.buf.len())?,
        })
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
        // SAFETY: The out-pointers are valid; any fd value is fine (the kernel takes an fd
        // argument as `unsigned int`: its low 32 bits).
        let file = unsafe { ffi::tether_proxy_get(arg_i32(fd), &mut opener, &mut sfd) };
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

    /// Whether it was opened for reading (`FMODE_READ`; access mode 3 allows neither).
    pub(crate) fn readable(&self) -> bool {
        matches!(
            self.flags() & bindings::O_ACCMODE,
            bindings::O_RDONLY | bindings::O_RDWR
        )
    }

    /// Whether it was opened for writing (`FMODE_WRITE`).
    pub(crate) fn writable(&self) -> bool {
        matches!(
            self.flags() & bindings::O_ACCMODE,
            bindings::O_WRONLY | bindings::O_RDWR
        )
    }

    /// Its server fd, as a syscall argument.
    pub(crate) fn sfd_arg(&self) -> u64 {
        reg_i32(self.sfd)
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

/// The calling process's id on the server: its thread-group id (a pid: never negative).
pub(crate) fn rpid() -> u32 {
    u32::try_from(kernel::current!().tgid()).unwrap_or_default()
}

/// A failed call's return value.
pub(crate) fn errno(e: Error) -> Dispatch {
    done(Err(e))
}

/// A call's return value: its result or `-errno`.
pub(crate) fn done(r: Outcome) -> Dispatch {
    Dispatch::Done(ret_isize(r))
}

/// A request for syscall `nr` with arguments `args` and buffers `bufs` (at most
/// `MAX_BUFS`: the rest are dropped).
pub(crate) fn request(nr: u32, args: [u64; 6], bufs: &[BufDesc]) -> SyscallReq {
    let mut req = SyscallReq {
        nr,
        args,
        ..Default::default()
    };
    for (slot, b) in req.bufs.iter_mut().zip(bufs) {
        *slot = *b;
        req.nbufs = req.nbufs.saturating_add(1);
    }
    req
}

/// Runs `req` in process `rpid`'s shadow: the call's result, or its errno (from the
/// server, or a failure to get it there and back).
pub(crate) fn call(rpid: u32, req: &SyscallReq, ins: &[&[u8]], outs: &mut [&mut [u8]]) -> Outcome {
    let shared = client().ok_or(EIO)?;
    outcome(rpc::call(&shared, rpid, req, ins, outs)?)
}

/// Resolves a `(dirfd, path)` pair: `None` when the call stays local, else the dirfd to
/// use on the server.
fn remote_dirfd(dirfd: u64, path: &PathArg) -> Option<u64> {
    if is_local(path.bytes()) {
        return None;
    }
    if path.is_absolute() || arg_i32(dirfd) == AT_FDCWD {
        return Some(dirfd);
    }
    Proxy::get(dirfd).map(|p| p.sfd_arg())
}

/// Implements remote `openat(2)`.
pub(crate) fn openat(a: &[u64; 6]) -> Dispatch {
    open_common(a[0], a[1], a[2], a[3])
}

/// The size of `struct open_how` version 0 (`OPEN_HOW_SIZE_VER0`).
const OPEN_HOW_SIZE_VER0: u64 = 24;
/// The largest `struct open_how` `openat2` reads (`copy_struct_from_user` up to a page).
const OPEN_HOW_SIZE_MAX: u64 = 4096;

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
fn opened(r: Result<rpc::Reply>) -> Result<i32> {
    let sfd = outcome(r?.ret)?;
    i32::try_from(sfd).map_err(|_| EPROTO)
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
    open_common(reg_i32(AT_FDCWD), a[0], u64::from(flags), a[1])
}

/// Implements remote `open(2)`.
pub(crate) fn open(a: &[u64; 6]) -> Dispatch {
    open_common(reg_i32(AT_FDCWD), a[0], a[1], a[2])
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
fn install(rpid: u32, sfd: i32, dirfd: u64, path: &PathArg, flags: u64, mode: u64) -> Outcome {
    // The kernel takes open flags and modes as `int`/`umode_t`: their low 32 bits.
    let (flags, mode) = (arg_u32(flags), arg_u32(mode));
    // SAFETY: No preconditions beyond valid values.
    let fd = unsafe { ffi::tether_proxy_install(rpid, sfd, flags) };
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

/// Implements remote `chdir(2)`; the log keeps the new cwd.
pub(crate) fn chdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::CHDIR, a);
    if let (Dispatch::Done(0), Some(shared)) = (&d, client()) {
        let rpid = rpid();
        let logged = PathArg::from_user(a[0]).and_then(|path| {
            let mut log = shared.log.lock();
            log.resolve(rpid, None, path.bytes())
                .and_then(|abs| log.chdir(rpid, abs))
        });
        journal_failed(logged, "chdir", rpid);
    }
    d
}

/// Reports a journal update that failed after its call succeeded (no memory, or the task
/// changed its path argument meanwhile): the call's result stands, but a replay after a
/// server crash restores the state the journal has.
fn journal_failed(r: Result, what: &str, rpid: u32) {
    if let Err(e) = r {
        pr_notice!(
            "syscall log: cannot record the {} of pid {} ({:?}): a replay restores the previous state\n",
            what,
            rpid,
            e
        );
    }
}

/// Implements remote `umask(2)`; the log keeps the mask for replay.
pub(crate) fn umask(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::UMASK, a);
    if let (Dispatch::Done(old), Some(shared)) = (&d, client()) {
        if *old >= 0 {
            let rpid = rpid();
            let logged = shared.log.lock().umask(rpid, arg_u32(a[0]) & 0o777);
            journal_failed(logged, "umask", rpid);
        }
    }
    d
}

/// Implements remote `fchdir(2)`; the log keeps the new cwd.
pub(crate) fn fchdir(a: &[u64; 6]) -> Dispatch {
    let d = generic(sysno::FCHDIR, a);
    if let (Dispatch::Done(0), Some(p), Some(shared)) = (&d, Proxy::get(a[0]), client()) {
        let logged = shared.log.lock().fchdir(p.rpid, p.sfd);
        journal_failed(logged, "fchdir", p.rpid);
    }
    d
}

/// Implements remote `rename(2)`; the log's open files and cwds follow.
pub(crate) fn rename(a: &[u64; 6]) -> Dispatch {
    let cwd = reg_i32(AT_FDCWD);
    renaming(sysno::RENAME, a, [cwd, a[0], cwd, a[1]], 0)
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
        (!path.is_absolute() && arg_i32(fd) != AT_FDCWD)
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

/// Closes server fd `sfd` of process `rpid`. Nobody waits for the result: a close whose
/// fd is gone (the shadow died, the server restarted) has nothing left to close.
fn close_remote(rpid: u32, sfd: i32) {
    let req = request(sysno::CLOSE, [reg_i32(sfd), 0, 0, 0, 0, 0], &[]);
    if let Err(e) = call(rpid, &req, &[], &mut []) {
        pr_debug!("close of server fd {} of pid {}: {:?}\n", sfd, rpid, e);
    }
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
const PIECE: u64 = 128 * 1024;
const WINDOW: usize = 8;

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
fn verify_rw(p: &Proxy, write: bool, buf: u64, count: u64, pos: i64) -> Result<u64> {
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
/// result (an errno from the server, or a local error). The caller has checked the
/// arguments ([`verify_rw`]): `len` is at most [`MAX_RW_COUNT`] and the range fits `loff_t`.
///
/// The pieces written are retained (`retain.rs`), appends at the offsets where they
/// landed; `end` is then where the last append ended. Writes to a FIFO are not retained.
fn transfer(p: &Proxy, buf: u64, len: u64, at: At, write: bool, end: &mut Option<i64>) -> Outcome {
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
fn transfer_at(
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
fn piece_done(
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
fn send_piece<'a>(
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
fn at_file_pos(p: &Proxy, buf: u64, count: u64, write: bool) -> Outcome {
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

fn positional(a: &[u64; 6], write: bool) -> Dispatch {
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

/// The `RWF_*` flags of `preadv2`/`pwritev2` (`include/uapi/linux/fs.h`).
const RWF_APPEND: u32 = 0x10;
const RWF_NOAPPEND: u32 = 0x20;
const RWF_ATOMIC: u32 = 0x40;
/// Every flag Linux 7.3 knows (`RWF_SUPPORTED`: `HIPRI` to `NOSIGNAL`).
const RWF_SUPPORTED: u32 = 0x1ff;

/// The checks `kiocb_set_rw_flags()` makes of `preadv2`/`pwritev2` flags that do not depend
/// on the file: unknown flags (`EOPNOTSUPP`), `RWF_APPEND` with `RWF_NOAPPEND` (`EINVAL`),
/// `RWF_ATOMIC` on a read (`EOPNOTSUPP`). The other flags are accepted and, but for
/// `RWF_APPEND`, not forwarded (known limit: `RWF_DSYNC`/`RWF_SYNC` writes are durable
/// only as plain writes are, `RWF_NOWAIT` may wait, `RWF_ATOMIC` writes are not atomic).
fn check_rwf(flags: u32, write: bool) -> Result {
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
enum VecAt {
    /// At the file offset (`readv`, `writev`, `preadv2`/`pwritev2` at `-1`).
    File,
    /// At the position argument (`preadv`, `pwritev`, `preadv2`/`pwritev2` otherwise).
    Explicit(i64),
}

/// Size of a `struct iovec`, and where its `iov_len` starts.
const IOVEC_SIZE: usize = 16;
const IOVEC_LEN_AT: usize = 8;

/// Reads the iovec array of a vectored call and checks it as `import_iovec()` does: more
/// than `UIO_MAXIOV` entries (`EINVAL`), an unreadable array (`EFAULT`), a length beyond
/// `ssize_t` (`EINVAL`, for any entry before the buffers are checked), a buffer outside
/// user space (`EFAULT`). Lengths are cut so that the total stays within
/// [`MAX_RW_COUNT`] (with one entry, before its buffer is checked, as Linux does).
fn import_iovec(vec: u64, vlen: u32) -> Result<KVec<(u64, u64)>> {
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
fn vec_io(a: &[u64; 6], write: bool, at: VecAt, flags: u32) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    done(vec_io_inner(&p, a, write, at, flags))
}

fn vec_io_inner(p: &Proxy, a: &[u64; 6], write: bool, at: VecAt, flags: u32) -> Outcome {
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
    Ok(moved)
}

/// The position argument of `preadv2`/`pwritev2`: `-1` means the file offset.
fn v2_at(pos: u64) -> VecAt {
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
                // The kernel takes `F_SETFL`'s argument as `unsigned int`.
                p.set_status_flags(arg_u32(a[2]));
            }
            d
        }
        cmd if LOCK_CMDS.contains(&cmd) => generic(sysno::FCNTL, a),
        _ => Dispatch::Local,
    }
}

/// File positions every file system a shadow may open accepts (ext4 directories with
/// 32-bit hashes end at `EXT4_HTREE_EOF_32BIT`, `0x7fffffff`; regular files of every
/// Linux file system go further): `lseek` sets them on the client alone. Farther
/// positions are checked by the server's file system (its `s_maxbytes`, a directory's
/// hash range).
const SURE_POS: i64 = 0x7fff_ffff;

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

fn lseek_inner(p: &Proxy, off: i64, whence: u32) -> Outcome {
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

/// Implements remote `getdents64(2)`: the listing goes on from the proxy file's position,
/// which the client keeps as for a regular file, so that `lseek`/`rewinddir` work and a
/// restarted server goes on with a listing where the crashed one was.
pub(crate) fn getdents64(a: &[u64; 6]) -> Dispatch {
    let Some(p) = Proxy::get(a[0]) else {
        return Dispatch::Local;
    };
    // The count is an `unsigned int`; more than `MAX_IO` at once is never needed.
    let count = usize::try_from(arg_u32(a[2])).map_or(MAX_IO, |c| c.min(MAX_IO));
    done(getdents64_inner(&p, a[1], count))
}

fn getdents64_inner(p: &Proxy, buf: u64, n: usize) -> Outcome {
    let descs = [
        BufDesc {
            arg: 1,
            dir: DIR_OUT | DIR_RET,
            len: wire_len(n)?,
        },
        BufDesc {
            arg: 3,
            dir: DIR_OUT,
            len: 8,
        },
    ];
    let req = request(
        calls::GETDENTS,
        [p.sfd_arg(), 0, len_u64(n), 0, reg_i64(p.pos()), 0],
        &descs,
    );
    let mut out = KVVec::new();
    out.resize(n, 0, GFP_KERNEL)?;
    let mut end = [0u8; 8];
    let ret = call(p.rpid, &req, &[], &mut [&mut out[..], &mut end[..]])?;
    let len = usize::try_from(ret)
        .ok()
        .filter(|&l| l <= n)
        .ok_or(EPROTO)?;
    let end = i64::from_le_bytes(end);
    if end < 0 {
        return Err(EPROTO);
    }
    let data = out.get(..len).ok_or(EPROTO)?;
    UserSlice::new(UserPtr::from_addr(user_addr(buf)?), len)
        .writer()
        .write_slice(data)?;
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
        Ok(Some(ret)) => done(ret),
        Ok(None) => Dispatch::Local,
        Err(e) => errno(e),
    }
}

fn buf_len(len: Len, a: &[u64; 6]) -> usize {
    let n = match len {
        Len::Fixed(n) => u64::from(n),
        Len::Arg(i) => a.get(usize::from(i)).copied().unwrap_or(0),
    };
    usize::try_from(n).map_or(MAX_IO, |n| n.min(MAX_IO))
}

/// One buffer argument of a generic call: what goes to the server, what comes back.
struct Buf {
    desc: BufDesc,
    input: KVVec<u8>,
    output: KVVec<u8>,
}

/// Runs a generic call: `None` when it stays local, else its outcome.
fn generic_inner(spec: &Spec, a: &[u64; 6]) -> Result<Option<Outcome>> {
    let mut args = *a;
    let mut kinds = [Arg::Val; 6];
    for (i, k) in kinds.iter_mut().enumerate() {
        // A command no shadow runs (fcntl): not forwarded.
        *k = spec.arg(i, a).ok_or(EINVAL)?;
    }
    let mut paths: [Option<PathArg>; 6] = Default::default();
    for ((arg, &ai), slot) in kinds.iter().zip(a).zip(&mut paths) {
        if matches!(arg, Arg::Path | Arg::Str) && ai != 0 {
            let path = PathArg::from_user(ai)?;
            if matches!(arg, Arg::Path) && is_local(path.bytes()) {
                return Ok(None);
            }
            *slot = Some(path);
        }
    }
    let mut bufs: KVec<Buf> = KVec::new();
    for (i, (arg, &ai)) in kinds.iter().zip(a).enumerate() {
        let Some(slot) = args.get_mut(i) else {
            return Err(EINVAL);
        };
        let (dir, len) = match *arg {
            Arg::Val | Arg::ByCommand => continue,
            Arg::Fd => match Proxy::get(ai) {
                Some(p) => {
                    *slot = p.sfd_arg();
                    continue;
                }
                None => return Ok(None),
            },
            Arg::DirFd(p) => {
                // Without a path (`utimensat(fd, NULL, ...)`) the dirfd is the file itself.
                let path = paths.get(usize::from(p)).and_then(Option::as_ref);
                if path.is_none_or(|p| !p.is_absolute()) && arg_i32(ai) != AT_FDCWD {
                    match Proxy::get(ai) {
                        Some(p) => *slot = p.sfd_arg(),
                        None => return Ok(None),
                    }
                }
                continue;
            }
            Arg::Path | Arg::Str => match paths.get(i).and_then(Option::as_ref) {
                Some(path) => (DIR_IN, path.buf.len()),
                None => continue,
            },
            // A null buffer stays null: the call decides what that means.
            Arg::In(_) | Arg::InOut(_) | Arg::Out(_) | Arg::OutRet(_) if ai == 0 => continue,
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
                *v = len_u64(len);
            }
        }
        let mut buf = Buf {
            desc: BufDesc {
                arg: u8::try_from(i).map_err(|_| EINVAL)?,
                dir,
                len: wire_len(len)?,
            },
            input: KVVec::new(),
            output: KVVec::new(),
        };
        if let Some(path) = paths.get(i).and_then(Option::as_ref) {
            buf.input.extend_from_slice(&path.buf, GFP_KERNEL)?;
        } else if dir & DIR_IN != 0 {
            UserSlice::new(UserPtr::from_addr(user_addr(ai)?), len)
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
        call(rpid(), &req, &ins, &mut outs)
    };
    if let Ok(ret) = ret {
        for b in bufs.iter().filter(|b| b.desc.dir & DIR_OUT != 0) {
            let n = if b.desc.dir & DIR_RET != 0 {
                usize::try_from(ret).map_or(b.output.len(), |r| r.min(b.output.len()))
            } else {
                b.output.len()
            };
            let addr = a.get(usize::from(b.desc.arg)).copied().ok_or(EINVAL)?;
            let data = b.output.get(..n).ok_or(EINVAL)?;
            UserSlice::new(UserPtr::from_addr(user_addr(addr)?), n)
                .writer()
                .write_slice(data)?;
        }
    }
    Ok(Some(ret))
}
