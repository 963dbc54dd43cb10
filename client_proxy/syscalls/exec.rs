// SPDX-License-Identifier: GPL-2.0

//! Implements remote `execve(2)` and `execveat(2)`: a tethered task runs a program that
//! lives on the server (an absolute path outside `local_prefixes`, or a path relative to
//! its remote working directory).
//!
//! Until remote paging exists (DESIGN §4) a program is copied: its bytes are read from the
//! server into a file of the client's shmem (`mapcopy.rs`) named after it, and the task
//! execs that copy through `/proc/self/fd/N` (a close-on-exec fd); the new program's name
//! (`comm`) is then set to the file's. A `#!` script is not copied: as the kernel's
//! `binfmt_script` does, its interpreter runs with the script's path (as the caller gave
//! it) in place of `argv[0]`, and opens the script itself, on the server. The checks Linux
//! makes come from the server: that the caller may execute the file
//! (`faccessat2(X_OK, AT_EACCESS)`) and that it is not a directory (`EACCES`).
//!
//! Known differences: set-user-ID and set-group-ID bits and file capabilities are ignored;
//! `/proc/PID/exe` names the copy and `AT_EXECFN` is `/proc/self/fd/N`; a script whose
//! interpreter is itself a script on the server fails with `ENOEXEC`; `execveat` of a
//! remote fd (`AT_EMPTY_PATH`, `fexecve`) fails as before, with the error of a file that
//! cannot be executed.

use kernel::{
    alloc::KVVec,
    bindings, ffi,
    prelude::*,
    str::CString,
    uaccess::{UserPtr, UserSlice},
};

use super::mapcopy::{pread, MapCopy};
use super::open::close_remote;
use super::paths::{is_local, remote_dirfd, PathArg};
use super::{call, rpid};
use crate::link::rpc::request;
use crate::num::{arg_i32, len_u64, outcome, reg_i32, user_addr};
use crate::proto::calls::AT_FDCWD;
use crate::proto::sysno;

extern "C" {
    fn tether_user_alloc(len: usize) -> ffi::c_long;
    fn tether_user_free(addr: usize, len: usize);
    fn tether_close_fd(fd: ffi::c_int);
    fn tether_set_comm(name: *const ffi::c_char);
}

/// `faccessat2`'s execute check (`X_OK`, which no uapi header defines); with `AT_EACCESS`
/// it uses the effective ids, as exec does.
const X_OK: u64 = 1;
/// How much of a file the kernel reads to tell its format (`BINPRM_BUF_SIZE`): a `#!`
/// line is cut there.
const BINPRM_BUF_SIZE: usize = 256;
/// The largest `loff_t`: a copy reads up to the end of the file.
const MAX_LOFF: u64 = 0x7fff_ffff_ffff_ffff;
/// Most arguments a remote script's interpreter gets (`E2BIG` beyond).
const MAX_ARGS: usize = 1 << 20;

/// The arguments of an `execve` or `execveat` (`at`) call.
pub(crate) struct ExecCall {
    pub(crate) at: bool,
    pub(crate) dirfd: u64,
    pub(crate) path: u64,
    pub(crate) argv: u64,
    pub(crate) flags: u64,
}

/// For a tethered task's exec: runs it as the module documentation says when its file
/// lives on the server, and returns the result (`None`: it runs locally, unchanged).
/// `run(file, argv)` runs the original system call with file name `file` and argument
/// vector `argv` (user addresses, `AT_FDCWD` and no flags for `execveat`), the rest as the
/// caller passed it.
pub(crate) fn exec(c: &ExecCall, run: impl Fn(u64, u64) -> isize) -> Option<isize> {
    if c.flags & u64::from(bindings::AT_EMPTY_PATH) != 0 {
        return None;
    }
    let path = PathArg::from_user(c.path).ok()?;
    if path.bytes().is_empty() {
        return None;
    }
    let dirfd = if c.at { c.dirfd } else { reg_i32(AT_FDCWD) };
    let dirfd = remote_dirfd(dirfd, &path)?;
    // A path relative to a remote dirfd would name another file for a script's
    // interpreter, which opens it relative to its cwd.
    if !path.is_absolute() && arg_i32(dirfd) != AT_FDCWD {
        return None;
    }
    let r = remote(c, dirfd, &path, &run);
    Some(r.unwrap_or_else(|e| isize::try_from(e.to_errno()).unwrap_or(-1)))
}

/// [`exec`] of remote file `path` (relative to server dirfd `dirfd`).
fn remote(
    c: &ExecCall,
    dirfd: u64,
    path: &PathArg,
    run: &dyn Fn(u64, u64) -> isize,
) -> Result<isize> {
    let rpid = rpid();
    let nofollow = c.flags & u64::from(bindings::AT_SYMLINK_NOFOLLOW);
    let sfd = open_exec(rpid, dirfd, path, nofollow)?;
    let r = (|| {
        let mut first = [0u8; BINPRM_BUF_SIZE];
        let n = head(rpid, sfd, &mut first)?;
        let first = first.get(..n).ok_or(EINVAL)?;
        match first.strip_prefix(b"#!") {
            Some(line) => script(rpid, c, line, path.bytes(), run),
            None => binary(rpid, sfd, path.bytes(), c.argv, run),
        }
    })();
    close_remote(rpid, sfd);
    r
}

/// Opens remote file `path` (relative to server dirfd `dirfd`, not following a last
/// symlink when `nofollow`) to execute it, after the server's execute check: its server fd.
fn open_exec(rpid: u32, dirfd: u64, path: &PathArg, nofollow: u64) -> Result<i32> {
    let desc = [path.desc(1)?];
    let how = u64::from(bindings::AT_EACCESS) | nofollow;
    let access = request(sysno::FACCESSAT2, [dirfd, 0, X_OK, how, 0, 0], &desc);
    call(rpid, &access, &[&path.buf], &mut [])?;
    let flags = if nofollow != 0 {
        u64::from(bindings::O_NOFOLLOW)
    } else {
        0
    };
    let open = request(sysno::OPENAT, [dirfd, 0, flags, 0, 0, 0], &desc);
    let sfd = call(rpid, &open, &[&path.buf], &mut [])?;
    i32::try_from(sfd).map_err(|_| EPROTO)
}

/// Reads the first `buf.len()` bytes of server fd `sfd`: how many it read. A directory is
/// `EACCES`, as for exec.
fn head(rpid: u32, sfd: i32, buf: &mut [u8]) -> Result<usize> {
    match pread(rpid, reg_i32(sfd), buf, 0) {
        Err(e) if e == EISDIR => Err(EACCES),
        r => r,
    }
}

/// The last component of `path`.
fn basename(path: &[u8]) -> &[u8] {
    let path = path.strip_suffix(b"/").unwrap_or(path);
    path.rsplit(|&c| c == b'/').next().unwrap_or(path)
}

/// Runs a copy of the binary open as server fd `sfd` (`path`) with argument vector
/// `argv`.
fn binary(
    rpid: u32,
    sfd: i32,
    path: &[u8],
    argv: u64,
    run: &dyn Fn(u64, u64) -> isize,
) -> Result<isize> {
    let name = basename(path);
    let copy = MapCopy::new(name)?;
    copy.fill(rpid, reg_i32(sfd), 0, MAX_LOFF)?;
    let fd = copy.install()?;
    drop(copy);
    let r = CString::try_from_fmt(fmt!("/proc/self/fd/{}", fd)).and_then(|file| {
        let file = file.to_bytes_with_nul();
        let mem = UserMem::new(file.len())?;
        mem.write(0, file)?;
        Ok(mem.run(|| run(mem.addr, argv)))
    });
    match r {
        Ok(0) => set_comm(name),
        // SAFETY: `fd` is the calling task's, installed above; the exec failed, so the
        // task is the one that installed it.
        _ => unsafe { tether_close_fd(fd) },
    }
    r
}

/// Runs the interpreter a `#!` script's first `line` (after the `#!`) names, as
/// `binfmt_script` does: `interpreter [argument] path argv[1..]`.
fn script(
    rpid: u32,
    c: &ExecCall,
    line: &[u8],
    path: &[u8],
    run: &dyn Fn(u64, u64) -> isize,
) -> Result<isize> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let line = line.split(|&b| b == b'\n').next().unwrap_or(line);
    let line = line.trim_ascii();
    let (interp, arg) = match line.iter().position(blank) {
        Some(i) => (
            line.get(..i).unwrap_or(line),
            line.get(i..).unwrap_or(&[]).trim_ascii(),
        ),
        None => (line, &[][..]),
    };
    if interp.is_empty() {
        return Err(ENOEXEC);
    }
    // The caller's arguments after argv[0].
    let mut args = KVec::new();
    let mut at = c.argv;
    while at != 0 {
        let p: u64 = UserSlice::new(UserPtr::from_addr(user_addr(at)?), 8)
            .reader()
            .read()?;
        if p == 0 {
            break;
        }
        if args.len() == MAX_ARGS {
            return Err(E2BIG);
        }
        args.push(p, GFP_KERNEL)?;
        at = at.checked_add(8).ok_or(EFAULT)?;
    }
    // Strings, then the new vector: interpreter, argument, the script's path (the
    // caller's string), argv[1..], NULL.
    let strings = interp
        .len()
        .checked_add(arg.len())
        .and_then(|n| n.checked_add(2))
        .ok_or(E2BIG)?;
    let vec_at = strings.checked_next_multiple_of(8).ok_or(E2BIG)?;
    let n = args.len().saturating_sub(1).checked_add(4).ok_or(E2BIG)?;
    let mem = UserMem::new(
        n.checked_mul(8)
            .and_then(|v| v.checked_add(vec_at))
            .ok_or(E2BIG)?,
    )?;
    let base = mem.addr;
    let interp_at = base;
    let arg_at = interp_at
        .checked_add(len_u64(interp.len()))
        .ok_or(EFAULT)?
        .checked_add(1)
        .ok_or(EFAULT)?;
    mem.write(0, interp)?;
    mem.write(interp.len(), &[0])?;
    mem.write(interp.len().checked_add(1).ok_or(EFAULT)?, arg)?;
    let mut vec = KVec::with_capacity(n, GFP_KERNEL)?;
    vec.push(interp_at, GFP_KERNEL)?;
    if !arg.is_empty() {
        vec.push(arg_at, GFP_KERNEL)?;
    }
    vec.push(c.path, GFP_KERNEL)?;
    for p in args.iter().skip(1) {
        vec.push(*p, GFP_KERNEL)?;
    }
    vec.push(0, GFP_KERNEL)?;
    let mut bytes = KVVec::with_capacity(vec.len().checked_mul(8).ok_or(E2BIG)?, GFP_KERNEL)?;
    for p in vec.iter() {
        bytes.extend_from_slice(&p.to_ne_bytes(), GFP_KERNEL)?;
    }
    mem.write(vec_at, &bytes)?;
    let argv = base.checked_add(len_u64(vec_at)).ok_or(EFAULT)?;
    let r = if interp.first() == Some(&b'/') && is_local(interp) {
        Ok(mem.run(|| run(interp_at, argv)))
    } else {
        // An interpreter on the server: run a copy of it (not another script).
        let mut ipath = KVVec::new();
        ipath.extend_from_slice(interp, GFP_KERNEL)?;
        ipath.push(0, GFP_KERNEL)?;
        let ipath = PathArg { buf: ipath };
        let sfd = open_exec(rpid, reg_i32(AT_FDCWD), &ipath, 0)?;
        let mut first = [0u8; 2];
        let r = head(rpid, sfd, &mut first).and_then(|n| {
            if first.get(..n) == Some(b"#!") {
                return Err(ENOEXEC);
            }
            binary(rpid, sfd, interp, argv, &|f, a| mem.run(|| run(f, a)))
        });
        close_remote(rpid, sfd);
        r
    };
    if let Ok(0) = r {
        set_comm(basename(path));
    }
    r
}

/// Names the calling task `name` (its first 15 bytes), after an exec that succeeded.
fn set_comm(name: &[u8]) {
    let mut comm = [0u8; 16];
    let n = name.len().min(15);
    if let (Some(dst), Some(src)) = (comm.get_mut(..n), name.get(..n)) {
        dst.copy_from_slice(src);
    }
    // SAFETY: `comm` is NUL-terminated and valid for the duration of the call.
    unsafe { tether_set_comm(comm.as_ptr().cast()) };
}

/// Fresh memory in the calling task, for the file names and argument vectors an exec
/// gets: given back when the exec fails (one that succeeds takes the old address space).
struct UserMem {
    addr: u64,
    len: usize,
    /// An exec ran and succeeded: the memory went with the old address space.
    gone: core::cell::Cell<bool>,
}

impl UserMem {
    fn new(len: usize) -> Result<Self> {
        // SAFETY: No preconditions; the task is in a system call.
        let addr = unsafe { tether_user_alloc(len) };
        let addr = outcome(i64::try_from(addr).map_err(|_| EINVAL)?)?;
        Ok(Self {
            addr,
            len,
            gone: core::cell::Cell::new(false),
        })
    }

    /// Writes `data` at offset `off`.
    fn write(&self, off: usize, data: &[u8]) -> Result {
        let at = self.addr.checked_add(len_u64(off)).ok_or(EFAULT)?;
        UserSlice::new(UserPtr::from_addr(user_addr(at)?), data.len())
            .writer()
            .write_slice(data)
    }

    /// Runs an exec that may use this memory; returns its result.
    fn run(&self, exec: impl FnOnce() -> isize) -> isize {
        let r = exec();
        if r == 0 {
            self.gone.set(true);
        }
        r
    }
}

impl Drop for UserMem {
    fn drop(&mut self) {
        if !self.gone.get() {
            if let Ok(addr) = user_addr(self.addr) {
                // SAFETY: `addr..addr + len` is the mapping `new` made in this task's
                // address space, which no exec replaced (`gone` is not set).
                unsafe { tether_user_free(addr, self.len) };
            }
        }
    }
}
